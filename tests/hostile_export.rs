//! A hostile export directory: secret values planted in it, links to devices and to files
//! outside it, FIFOs, decompression bombs, huge CloudTrail logs. Each test reproduces one way an
//! export once harmed the machine or the evidence, and checks that it no longer does.

mod common;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use sha2::{Digest, Sha256};

const SECRET: &str = "hunter2-SUPERSECRET";

fn demo_copy(dir: &Path) -> PathBuf {
    let fleet = dir.join("fleet");
    copy_dir(&repo("fixtures/demo-fleet"), &fleet);
    fleet
}

/// The folder of the first account's Secrets Manager files in us-east-1.
fn secrets_dir(fleet: &Path) -> PathBuf {
    fleet.join("aws/111122223333/secretsmanager/us-east-1")
}

/// Runs the binary with a time limit, so a scan that blocks fails the test instead of hanging it.
fn run(args: &[OsString]) -> (i32, String, String) {
    let output = credaudit()
        .args(args)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn scan_args(fleet: &Path, db: &Path) -> Vec<OsString> {
    vec![
        "scan".into(),
        "--from".into(),
        fleet.into(),
        "--db".into(),
        db.into(),
        "--as-of".into(),
        AS_OF.into(),
    ]
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Every file below `dir`, recursively.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_below(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A CloudTrail record of a call by an access key of the demo fleet.
fn record(key: &str, minute: u32, event_name: &str) -> serde_json::Value {
    serde_json::json!({
        "eventVersion": "1.08",
        "eventTime": format!("2026-10-30T10:{:02}:00Z", minute % 60),
        "eventSource": "s3.amazonaws.com",
        "eventName": event_name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userIdentity": {"type": "IAMUser", "accessKeyId": key,
                         "arn": "arn:aws:iam::111122223333:user/agent"},
    })
}

// Defect 1: secret values reached raw/, the archive and the snapshot.
#[test]
fn secret_values_never_reach_the_evidence_the_archive_or_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = demo_copy(dir.path());
    let secrets = secrets_dir(&fleet);
    // A file outside the documented layout, as `aws secretsmanager get-secret-value` prints it.
    std::fs::write(
        secrets.join("get-secret-value.json"),
        format!(
            r#"{{"ARN":"arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-AbCdEf","Name":"prod/db","SecretString":"{SECRET}"}}"#
        ),
    )
    .unwrap();
    // A value inside a file the reader does parse.
    let list = secrets.join("list-secrets.json");
    let mut value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&list).unwrap()).unwrap();
    let pointer = if value.is_array() {
        "/0/SecretList"
    } else {
        "/SecretList"
    };
    let first = value.pointer_mut(pointer).unwrap().as_array_mut().unwrap()[0]
        .as_object_mut()
        .unwrap();
    first.insert("SecretString".into(), SECRET.into());
    first.insert(
        "secret_binary".into(),
        "aHVudGVyMi1TVVBFUlNFQ1JFVA==".into(),
    );
    std::fs::write(&list, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
    // In the history's free details, and in a CloudTrail lookup-events record kept whole.
    let mut history = std::fs::OpenOptions::new()
        .append(true)
        .open(fleet.join("history.jsonl"))
        .unwrap();
    writeln!(
        history,
        r#"{{"time":"2026-10-20T02:00:00Z","type":"policy.updated","credential_id":"prod/db","details":{{"note":"x","SecretString":"{SECRET}"}}}}"#
    )
    .unwrap();
    std::fs::create_dir_all(fleet.join("cloudtrail")).unwrap();
    let mut event = record("AKIAIOSFODNN7EXAMPLE", 1, "PutSecretValue");
    event["requestParameters"] = serde_json::json!({"secretId": "prod/db", "secretString": SECRET});
    let lookup = serde_json::json!({"Events": [{"CloudTrailEvent": event.to_string()}]});
    std::fs::write(
        fleet.join("cloudtrail/lookup.json"),
        serde_json::to_vec(&lookup).unwrap(),
    )
    .unwrap();

    let db = dir.path().join("snapshot.db");
    let out = dir.path().join("out");
    let mut args = scan_args(&fleet, &db);
    args.extend([
        "--out".into(),
        out.clone().into(),
        "--archive".into(),
        "--keep-cloudtrail".into(),
    ]);
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, 0, "{stderr}");
    // Not in what the scan printed either (its logs).
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "{stderr}"
    );
    assert!(
        stderr.contains("list-secrets.json: left out 2 member(s) named like a secret value"),
        "{stderr}"
    );
    assert!(stderr.contains("history.jsonl: left out 1"), "{stderr}");
    assert!(
        stderr.contains("cloudtrail/lookup.json: left out 1"),
        "{stderr}"
    );

    let bundle = files_below(&out);
    assert!(!bundle.is_empty());
    for file in &bundle {
        let bytes = std::fs::read(file).unwrap();
        assert!(
            !contains(&bytes, SECRET),
            "{} holds the value",
            file.display()
        );
        assert!(
            !contains(&bytes, "aHVudGVyMi1TVVBFUlNFQ1JFVA"),
            "{}",
            file.display()
        );
    }
    assert!(
        !out.join("raw/aws/111122223333/secretsmanager/us-east-1/get-secret-value.json")
            .exists(),
        "a file outside the layout is not evidence"
    );
    // The parsed file is kept, without the value.
    let kept = std::fs::read_to_string(
        out.join("raw/aws/111122223333/secretsmanager/us-east-1/list-secrets.json"),
    )
    .unwrap();
    assert!(kept.contains("SecretList"), "{kept}");
    let index = std::fs::read_to_string(out.join("raw/cloudtrail-files.json")).unwrap();
    assert!(index.contains("\"kept_as\": \"cloudtrail/"), "{index}");

    let mut archive = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(dir.path().join("out.tar.gz")).unwrap())
        .read_to_end(&mut archive)
        .unwrap();
    assert!(
        contains(&archive, "list-secrets.json"),
        "the archive holds the raw files"
    );
    assert!(!contains(&archive, SECRET));
    let snapshot = std::fs::read(&db).unwrap();
    assert!(!contains(&snapshot, SECRET), "the snapshot holds the value");
    // What the snapshot stores is deflated chunks: every one of them, inflated.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mut stored = Vec::new();
    let mut stmt = conn.prepare("SELECT data FROM chunks ORDER BY id").unwrap();
    let mut rows = stmt.query([]).unwrap();
    while let Some(row) = rows.next().unwrap() {
        let data: Vec<u8> = row.get(0).unwrap();
        flate2::read::DeflateDecoder::new(data.as_slice())
            .read_to_end(&mut stored)
            .unwrap();
    }
    assert!(
        contains(&stored, "list-secrets.json") && contains(&stored, "SecretList"),
        "the snapshot holds the raw files"
    );
    assert!(!contains(&stored, SECRET), "the snapshot holds the value");
}

// Defect 2: a link to /dev/zero grew memory without bound; a FIFO blocked the scan forever.
#[test]
fn devices_fifos_and_links_out_of_the_export_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = demo_copy(dir.path());
    let db = dir.path().join("snapshot.db");
    let users = fleet.join("aws/111122223333/iam/list-users.json");
    let outside = dir.path().join("outside.json");
    std::fs::copy(&users, &outside).unwrap();

    type Plant = fn(&Path, &Path);
    let cases: [(&str, Plant, &str); 4] = [
        (
            "aws/111122223333/iam/list-users.json",
            |at, _| std::os::unix::fs::symlink("/dev/zero", at).unwrap(),
            "outside",
        ),
        (
            "coverage.json",
            |at, _| std::os::unix::fs::symlink("/dev/zero", at).unwrap(),
            "outside",
        ),
        (
            "aws/111122223333/iam/list-users.json",
            |at, _| {
                let status = std::process::Command::new("mkfifo")
                    .arg(at)
                    .status()
                    .unwrap();
                assert!(status.success());
            },
            "expected a regular file, found a FIFO",
        ),
        (
            "aws/111122223333/iam/list-users.json",
            |at, outside| std::os::unix::fs::symlink(outside, at).unwrap(),
            "an input must be a regular file inside the folder given",
        ),
    ];
    for (relative, plant, expected) in cases {
        let at = fleet.join(relative);
        let _ = std::fs::remove_file(&at);
        plant(&at, &outside);
        let (code, _, stderr) = run(&scan_args(&fleet, &db));
        assert_eq!(code, 2, "{relative}: {stderr}");
        assert!(stderr.contains(relative), "{relative}: {stderr}");
        assert!(stderr.contains(expected), "{relative}: {stderr}");
        std::fs::remove_file(&at).unwrap();
        if relative.ends_with("list-users.json") {
            std::fs::copy(&outside, &at).unwrap();
        }
    }
    // A FIFO where a declared file is expected.
    let status = std::process::Command::new("mkfifo")
        .arg(dir.path().join("inventory.fifo"))
        .status()
        .unwrap();
    assert!(status.success());
    let fifo = dir.path().join("inventory.fifo");
    let mut args = scan_args(&fleet, &db);
    args.extend(["--inventory".into(), fifo.into()]);
    let (code, _, stderr) = run(&args);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("found a FIFO"), "{stderr}");
    assert!(!db.exists(), "bad input never opens the snapshot");
    let (code, _, stderr) = run(&scan_args(&fleet, &db));
    assert_eq!(code, 0, "the intact fleet still scans: {stderr}");
}

// Defect 2: one gzip record with a 64 MiB eventName (a 1 GiB one reached 2.1 GB of memory).
#[test]
fn cloudtrail_streams_and_records_are_capped_with_limits_users_can_raise() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = demo_copy(dir.path());
    let db = dir.path().join("snapshot.db");
    std::fs::create_dir_all(fleet.join("cloudtrail")).unwrap();
    let bomb =
        serde_json::json!({"Records": [record("AKIAIOSFODNN7EXAMPLE", 0, &"A".repeat(64 << 20))]});
    let compressed = gzip(&serde_json::to_vec(&bomb).unwrap());
    assert!(compressed.len() < 1 << 20, "a small file on disk");
    std::fs::write(fleet.join("cloudtrail/bomb.json.gz"), compressed).unwrap();

    let (code, _, stderr) = run(&scan_args(&fleet, &db));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("cloudtrail/bomb.json.gz: record 1"),
        "{stderr}"
    );
    assert!(
        stderr.contains("one record over the 16 MiB limit; raise it with --max-record-size"),
        "{stderr}"
    );

    let mut args = scan_args(&fleet, &db);
    args.extend(["--max-decompressed-size".into(), "1M".into()]);
    let (code, _, stderr) = run(&args);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(
            "the decompressed stream over the 1 MiB limit; raise it with --max-decompressed-size"
        ),
        "{stderr}"
    );

    let mut args = scan_args(&fleet, &db);
    args.extend(["--max-file-size".into(), "2K".into()]);
    let (code, _, stderr) = run(&args);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("over the 2 KiB limit on one input file; raise it with --max-file-size"),
        "{stderr}"
    );
    assert!(!db.exists(), "bad input never opens the snapshot");

    // Raised, the same record is read.
    let mut args = scan_args(&fleet, &db);
    args.extend(["--max-record-size".into(), "128M".into(), "--quiet".into()]);
    let (code, _, stderr) = run(&args);
    assert_eq!(code, 0, "{stderr}");
}

// Defects 2 and 11: CloudTrail logs were copied whole into the snapshot on every run, and a log
// named with a space or reached through a symlink was read but never reached raw/.
#[test]
fn cloudtrail_files_are_recorded_by_size_and_hash_every_one_that_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = demo_copy(dir.path());
    let trail = fleet.join("cloudtrail");
    std::fs::create_dir_all(trail.join("2026/10/30")).unwrap();
    let records: Vec<_> = (0..20_000)
        .map(|i| record("AKIAIOSFODNN7EXAMPLE", i % 60, "GetObject"))
        .collect();
    let big = serde_json::to_vec(&serde_json::json!({ "Records": records })).unwrap();
    assert!(big.len() > 4 << 20);
    std::fs::write(trail.join("2026/10/30/big.json"), &big).unwrap();
    let spaced = gzip(
        &serde_json::to_vec(
            &serde_json::json!({"Records": [record("AKIAIOSFODNN7EXAMPLE", 5, "ListBuckets")]}),
        )
        .unwrap(),
    );
    std::fs::write(trail.join("my trail.json.gz"), &spaced).unwrap();
    let linked = serde_json::to_vec(&serde_json::json!([record(
        "AKIAIOSFODNN7EXAMPLE",
        7,
        "PutObject"
    )]))
    .unwrap();
    std::fs::write(dir.path().join("fleet/linked-target.json"), &linked).unwrap();
    std::os::unix::fs::symlink("../linked-target.json", trail.join("linked.json")).unwrap();

    let db = dir.path().join("snapshot.db");
    let out = dir.path().join("out");
    let (code, _, stderr) = scan(&fleet, &db, Some(&out), &["--quiet"]);
    assert_eq!(code, 0, "{stderr}");
    let after_one = std::fs::metadata(&db).unwrap().len();
    let out2 = dir.path().join("out2");
    let (code, _, stderr) = scan(&fleet, &db, Some(&out2), &["--quiet"]);
    assert_eq!(code, 0, "{stderr}");
    let growth = std::fs::metadata(&db).unwrap().len() - after_one;
    assert!(
        growth < (big.len() as u64) / 2,
        "a second run stores the {} byte log again: the snapshot grew by {growth}",
        big.len()
    );

    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("raw/cloudtrail-files.json")).unwrap())
            .unwrap();
    let listed: Vec<(String, u64, String)> = index
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["bytes"].as_u64().unwrap(),
                f["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            (
                "cloudtrail/2026/10/30/big.json".to_string(),
                big.len() as u64,
                sha256_hex(&big)
            ),
            (
                "cloudtrail/linked.json".to_string(),
                linked.len() as u64,
                sha256_hex(&linked)
            ),
            (
                "cloudtrail/my trail.json.gz".to_string(),
                spaced.len() as u64,
                sha256_hex(&spaced)
            ),
        ]
    );
    assert!(!out.join("raw/cloudtrail").exists(), "no copy unless asked");

    // Asked, the bytes are kept under their hash.
    let out3 = dir.path().join("out3");
    let (code, _, stderr) = scan(&fleet, &db, Some(&out3), &["--quiet", "--keep-cloudtrail"]);
    assert_eq!(code, 0, "{stderr}");
    let kept =
        std::fs::read(out3.join(format!("raw/cloudtrail/{}.json", sha256_hex(&big)))).unwrap();
    assert_eq!(kept, big);
    let kept = std::fs::read(out3.join(format!("raw/cloudtrail/{}.json.gz", sha256_hex(&spaced))))
        .unwrap();
    assert_eq!(kept, spaced);
}

// Defect 7: the declared files were read again after they were parsed, so a file swapped in
// between put other bytes into the evidence than the scan evaluated. Each input is opened once.
#[test]
fn every_input_file_is_opened_once() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = demo_copy(dir.path());
    std::fs::write(
        fleet.join("waivers.toml"),
        "[[waivers]]\nrule = \"rotation-overdue\"\ncredential = \"nothing-*\"\nreason = \"r\"\napprover = \"a@example.com\"\nticket = \"SEC-1\"\nexpires = 2027-01-31\n",
    )
    .unwrap();
    std::fs::create_dir_all(fleet.join("cloudtrail")).unwrap();
    std::fs::write(
        fleet.join("cloudtrail/trail.json"),
        serde_json::to_vec(&serde_json::json!([record(
            "AKIAIOSFODNN7EXAMPLE",
            1,
            "GetObject"
        )]))
        .unwrap(),
    )
    .unwrap();
    let db = dir.path().join("snapshot.db");
    let trace = dir.path().join("trace.txt");
    let binary = assert_cmd::cargo::cargo_bin("credaudit");
    let status = std::process::Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=open,openat,openat2", "-o"])
        .arg(&trace)
        .arg(&binary)
        .args(["scan", "--quiet", "--as-of", AS_OF, "--from"])
        .arg(&fleet)
        .arg("--db")
        .arg(&db)
        .status()
        .expect("strace runs (scripts/test.sh installs it)");
    assert!(status.success());
    let trace = std::fs::read_to_string(&trace).unwrap();
    let mut inputs: Vec<PathBuf> = files_below(&fleet)
        .into_iter()
        .filter(|p| !p.ends_with("expected-findings.json"))
        .collect();
    inputs.sort();
    assert!(inputs.len() > 10, "{inputs:?}");
    for input in inputs {
        let name = std::fs::canonicalize(&input).unwrap();
        let opens = trace
            .lines()
            .filter(|line| line.contains(&format!("\"{}\"", name.display())))
            .filter(|line| !line.contains("= -1"))
            .count();
        assert_eq!(opens, 1, "{} opened {opens} times", input.display());
    }
}
