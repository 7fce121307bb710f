//! Trustworthy evidence: a control never passes on a source the run did not collect, and a
//! stored run's assessment is what every report renders, byte for byte.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;

/// Rules that read CloudTrail (their `sources` name it).
const CLOUDTRAIL_RULES: &[&str] = &[
    "anomalous-usage",
    "auth-failure-spike",
    "usage-limit-exceeded",
    "incident-not-remediated",
];

/// Controls tested only by rules that need CloudTrail, with no finding in the demo fleet from
/// another source: without CloudTrail nothing can show whether they hold.
const CLOUDTRAIL_ONLY: &[(&str, &str)] = &[
    ("soc2", "CC7.2"),
    ("soc2", "CC7.3"),
    ("iso27001", "A.8.16"),
    ("iso27001", "A.5.25"),
    ("nist-800-53", "AC-2(12)"),
];

/// One row of controls.csv, by column name.
type Row = BTreeMap<String, String>;

fn controls_csv(out: &Path) -> Vec<Row> {
    let mut reader = csv::Reader::from_path(out.join("controls.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn control<'a>(rows: &'a [Row], framework: &str, id: &str) -> &'a Row {
    rows.iter()
        .find(|r| r["framework"] == framework && r["control"] == id)
        .unwrap_or_else(|| panic!("no control {framework}:{id} in controls.csv"))
}

/// Controls any of whose rules need CloudTrail.
fn cloudtrail_dependent(rows: &[Row]) -> Vec<&Row> {
    rows.iter()
        .filter(|r| {
            r["status"] != "manual"
                && r["rules"]
                    .split(' ')
                    .any(|rule| CLOUDTRAIL_RULES.contains(&rule))
        })
        .collect()
}

fn scan_demo(dir: &Path, extra: &[&str]) -> (std::path::PathBuf, std::path::PathBuf) {
    let db = dir.join("s.db");
    let out = dir.join("bundle");
    let (code, _, stderr) = scan(&repo("fixtures/demo-fleet"), &db, Some(&out), extra);
    assert_eq!(code, 0, "{stderr}");
    (db, out)
}

#[test]
fn without_cloudtrail_its_controls_are_not_assessed_and_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let (db, out) = scan_demo(dir.path(), &["-q"]);
    let rows = controls_csv(&out);

    let dependent = cloudtrail_dependent(&rows);
    assert!(dependent.len() >= CLOUDTRAIL_ONLY.len());
    for row in &dependent {
        let name = format!("{}:{}", row["framework"], row["control"]);
        // Never a pass: not assessed, or failed by a finding of a rule that did run.
        match row["status"].as_str() {
            "not-assessed" => assert!(
                row["status_reason"].contains("no CloudTrail in this run"),
                "{name}: {row:?}"
            ),
            "fail" => assert_ne!(row["findings"], "0", "{name} fails on findings"),
            other => panic!("{name} is {other} without CloudTrail: {row:?}"),
        }
    }
    for (framework, id) in CLOUDTRAIL_ONLY {
        let row = control(&rows, framework, id);
        assert_eq!(row["status"], "not-assessed", "{framework}:{id}");
        assert!(
            row["status_reason"].contains("no CloudTrail in this run"),
            "{row:?}"
        );
    }
    // Controls on sources that were read are still judged.
    assert_eq!(control(&rows, "cis-aws", "1.4")["status"], "fail");
    assert!(
        rows.iter().any(|r| r["status"] == "pass"),
        "controls whose rules ran can pass"
    );

    // summary.md lists them with the reason.
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("| Not assessed |"), "{summary}");
    let lines: Vec<&str> = summary
        .lines()
        .filter(|l| l.starts_with("- no CloudTrail in this run"))
        .collect();
    assert!(!lines.is_empty(), "no not-assessed line in {summary}");
    for (_, id) in CLOUDTRAIL_ONLY {
        assert!(
            lines.iter().any(|l| l.contains(&format!(" {id}"))),
            "{id} missing from {lines:?}"
        );
    }

    // junit.xml skips them, naming the missing source.
    let xml = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    for (framework, id) in CLOUDTRAIL_ONLY {
        let case = doc
            .descendants()
            .find(|n| {
                n.has_tag_name("testcase")
                    && n.attribute("classname") == Some(*framework)
                    && n.attribute("name")
                        .is_some_and(|name| name.starts_with(&format!("{id} ")))
            })
            .unwrap_or_else(|| panic!("no testcase for {framework}:{id}"));
        let skipped = case
            .children()
            .find(|n| n.has_tag_name("skipped"))
            .unwrap_or_else(|| panic!("{framework}:{id} is not skipped"));
        let message = skipped.attribute("message").unwrap();
        assert!(
            message.starts_with("not assessed: no CloudTrail in this run"),
            "{message}"
        );
    }

    // The HTML names the status and the reason; SARIF lists the rules that did not run.
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("st-not-assessed"));
    assert!(html.contains("no CloudTrail in this run"));
    let sarif: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("findings.sarif")).unwrap()).unwrap();
    let notes = sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"]
        .as_array()
        .unwrap();
    assert!(notes.iter().any(|n| {
        n["descriptor"]["id"] == "rule-not-run"
            && n["associatedRule"]["id"] == "anomalous-usage"
            && n["message"]["text"]
                .as_str()
                .unwrap()
                .contains("no CloudTrail in this run")
    }));
    let not_assessed = sarif["runs"][0]["properties"]["controls-not-assessed"]
        .as_array()
        .unwrap();
    assert!(not_assessed.iter().any(|c| c["control"] == "soc2:CC7.2"));

    // The snapshot records what ran and what did not, and the sources the run had.
    let snapshot = credaudit::snapshot::Snapshot::open_existing(&db).unwrap();
    let assessment = snapshot
        .assessment(1, &snapshot.facts(1).unwrap())
        .unwrap()
        .expect("stored with the run");
    let anomalous = assessment
        .rules
        .iter()
        .find(|r| r.rule == "anomalous-usage")
        .unwrap();
    assert!(!anomalous.ran);
    assert_eq!(
        anomalous.reason.as_deref(),
        Some("no CloudTrail in this run")
    );
    let had = assessment.sources_had();
    use credaudit::rules::Source;
    assert!(!had.contains(&Source::CloudTrail));
    for source in [
        Source::IamKeys,
        Source::CredentialReport,
        Source::SecretsManager,
        Source::RotationHistory,
        Source::Inventory,
    ] {
        assert!(had.contains(&source), "{source} missing from {had:?}");
    }
    // Per account and region: both accounts' IAM and each region's Secrets Manager.
    let secrets_places = assessment
        .sources
        .iter()
        .filter(|s| s.source == Source::SecretsManager)
        .count();
    assert_eq!(secrets_places, 4);
}

#[test]
fn with_cloudtrail_the_same_controls_pass_or_fail_on_their_findings() {
    let dir = tempfile::tempdir().unwrap();
    let logs = repo("fixtures/cloudtrail/invictus-aws-dataset/CloudTrail");
    let (db, out) = scan_demo(dir.path(), &["-q", "--cloudtrail", logs.to_str().unwrap()]);
    let rows = controls_csv(&out);
    for row in cloudtrail_dependent(&rows) {
        let name = format!("{}:{}", row["framework"], row["control"]);
        let failing = row["findings"] != "0" || row["failing_credentials"] != "0";
        match row["status"].as_str() {
            "pass" => assert!(!failing, "{name}: {row:?}"),
            "fail" => assert!(failing, "{name}: {row:?}"),
            other => panic!("{name} is {other} with CloudTrail: {row:?}"),
        }
        assert_eq!(row["status_reason"], "", "{name}");
    }
    for (framework, id) in CLOUDTRAIL_ONLY {
        assert_eq!(
            control(&rows, framework, id)["status"],
            "pass",
            "{framework}:{id}"
        );
    }
    let snapshot = credaudit::snapshot::Snapshot::open_existing(&db).unwrap();
    let assessment = snapshot
        .assessment(1, &snapshot.facts(1).unwrap())
        .unwrap()
        .unwrap();
    assert!(
        assessment.rules.iter().all(|r| r.complete()),
        "every rule ran"
    );
    // The CloudTrail source names the account and region its logs cover.
    let trail: Vec<_> = assessment
        .sources
        .iter()
        .filter(|s| s.source == credaudit::rules::Source::CloudTrail)
        .collect();
    assert!(!trail.is_empty());
    for s in trail {
        let account = s.account.as_deref().unwrap_or_default();
        assert!(
            account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()),
            "{s:?}"
        );
        assert!(s.region.as_deref().is_some_and(|r| !r.is_empty()), "{s:?}");
        assert!(s.records > 0, "{s:?}");
    }
}

/// Every file of a bundle folder, by relative path.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, base, out);
            } else {
                let rel = path
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .to_string();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn report_reproduces_the_stored_assessment_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (db, scanned) = scan_demo(dir.path(), &["-q"]);
    let scanned = files(&scanned);
    assert!(scanned.contains_key("controls.csv") && scanned.contains_key("manifest.json"));

    let again = dir.path().join("again");
    let out = credaudit()
        .args(["report", "--run", "1", "--db"])
        .arg(&db)
        .arg("--out")
        .arg(&again)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("assessing it now"), "{stderr}");
    let rendered = files(&again);
    assert_eq!(
        scanned.keys().collect::<Vec<_>>(),
        rendered.keys().collect::<Vec<_>>()
    );
    for (path, bytes) in &scanned {
        assert!(rendered[path] == *bytes, "{path} differs");
    }

    // A later scan with other evidence changes nothing of run 1's rendering: run 1 is
    // rendered from what it recorded, not re-evaluated.
    let logs = repo("fixtures/cloudtrail/invictus-aws-dataset/CloudTrail");
    let (code, _, stderr) = scan(
        &repo("fixtures/demo-fleet"),
        &db,
        None,
        &["-q", "--cloudtrail", logs.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{stderr}");
    let later = dir.path().join("later");
    let status = credaudit()
        .args(["report", "--run", "1", "--db"])
        .arg(&db)
        .arg("--out")
        .arg(&later)
        .output()
        .unwrap()
        .status;
    assert!(status.success());
    let later = files(&later);
    for (path, bytes) in &scanned {
        assert!(later[path] == *bytes, "{path} of run 1 changed after run 2");
    }
    // And run 2 is judged on its own sources.
    let run2 = dir.path().join("run2");
    let status = credaudit()
        .args(["report", "--db"])
        .arg(&db)
        .arg("--out")
        .arg(&run2)
        .output()
        .unwrap()
        .status;
    assert!(status.success());
    let rows = controls_csv(&run2);
    assert_eq!(control(&rows, "soc2", "CC7.2")["status"], "pass");
}
