//! The evidence bundle of the demo fleet: every file, golden contents, verify and tamper
//! detection, re-rendering a stored run, and the archive.

mod common;

use std::path::Path;

use common::*;

const BUNDLE_FILES: &[&str] = &[
    "index.html",
    "findings.json",
    "findings.csv",
    "controls.csv",
    "inventory.csv",
    "rotation-events.csv",
    "remediation-plan.csv",
    "remediation-plan.json",
    "findings.sarif",
    "junit.xml",
    "summary.md",
    "manifest.json",
];

fn demo_bundle(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("bundle");
    let (code, _, stderr) = scan(
        &repo("fixtures/demo-fleet"),
        &dir.join("s.db"),
        Some(&out),
        &["--archive"],
    );
    assert_eq!(code, 0, "{stderr}");
    out
}

fn verify(dir: &Path) -> (i32, String) {
    let out = credaudit().arg("verify").arg(dir).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn writes_every_file_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let out = demo_bundle(dir.path());
    for file in BUNDLE_FILES {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    assert!(out.join("raw/inventory.toml").is_file());
    assert!(out.join("raw/history.jsonl").is_file());
    assert!(
        out.join("raw/aws/111122223333/iam/credential-report.csv")
            .is_file()
    );
    let (code, stdout) = verify(&out);
    assert_eq!(code, 0, "{stdout}");

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["as_of"], AS_OF);
    assert_eq!(manifest["run_id"], 1);
    assert_eq!(manifest["status"], "complete");
    assert_eq!(
        manifest["scope"]["accounts"],
        serde_json::json!(["111122223333", "444455556666"])
    );

    let archive = dir.path().join("bundle.tar.gz");
    let mut names: Vec<String> = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&archive).unwrap(),
    ))
    .entries()
    .unwrap()
    .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
    .collect();
    names.sort();
    assert!(
        names.contains(&"bundle/manifest.json".to_string()),
        "{names:?}"
    );
    assert!(names.contains(&"bundle/index.html".to_string()));
}

#[test]
fn verify_catches_a_changed_a_deleted_and_an_added_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = demo_bundle(dir.path());

    let path = out.join("findings.csv");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let (code, stdout) = verify(&out);
    assert_eq!(code, 1);
    assert!(stdout.contains("changed: findings.csv"), "{stdout}");

    std::fs::remove_file(out.join("controls.csv")).unwrap();
    std::fs::write(out.join("raw/extra.json"), "{}").unwrap();
    let (code, stdout) = verify(&out);
    assert_eq!(code, 1);
    assert!(stdout.contains("missing: controls.csv"), "{stdout}");
    assert!(stdout.contains("added: raw/extra.json"), "{stdout}");
}

#[test]
fn report_rerenders_a_stored_run_identically() {
    let dir = tempfile::tempdir().unwrap();
    let out = demo_bundle(dir.path());
    let again = dir.path().join("again");
    let status = credaudit()
        .args(["report", "--run", "1", "--db"])
        .arg(dir.path().join("s.db"))
        .arg("--out")
        .arg(&again)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    for file in BUNDLE_FILES {
        assert_eq!(
            std::fs::read(out.join(file)).unwrap(),
            std::fs::read(again.join(file)).unwrap(),
            "{file} differs when re-rendered from the snapshot"
        );
    }
}

#[test]
fn golden_controls_and_plan() {
    let dir = tempfile::tempdir().unwrap();
    let out = demo_bundle(dir.path());
    let controls = std::fs::read_to_string(out.join("controls.csv")).unwrap();
    insta::assert_snapshot!("controls_csv", controls);
    let plan = std::fs::read_to_string(out.join("remediation-plan.csv")).unwrap();
    insta::assert_snapshot!("remediation_plan_csv", plan);

    // Every rule that fired is mapped by some control in controls.csv.
    let findings = std::fs::read_to_string(out.join("findings.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(findings.as_bytes());
    let mut mapped = String::new();
    let mut controls_reader = csv::Reader::from_reader(controls.as_bytes());
    for row in controls_reader.records() {
        mapped.push_str(&row.unwrap()[8]);
        mapped.push(' ');
    }
    for row in reader.records() {
        let rule = row.unwrap()[0].to_string();
        assert!(
            mapped.split(' ').any(|r| r == rule),
            "{rule} appears in no control"
        );
    }
}
