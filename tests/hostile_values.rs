//! Hostile values in the inputs: numbers at the edge of their type are refused with exit 2 and a
//! message naming the field (never a panic), and terminal escape sequences planted in input
//! strings are printed as visible escapes, never as the raw ESC byte.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// The CSI sequence "cursor up, erase line": printed raw, it would wipe the line above.
const ERASE_LINE_ABOVE: &str = "\u{1b}[1A\u{1b}[2K";
/// How it must show instead.
const SHOWN: &str = "\\u{1b}[1A\\u{1b}[2K";

/// A copy of the demo fleet in a temporary folder; returns (folder guard, fleet, snapshot path).
fn fleet_copy() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet");
    copy_dir(&repo("fixtures/demo-fleet"), &fleet);
    let db = dir.path().join("snapshot.db");
    (dir, fleet, db)
}

fn edit(path: &Path, f: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, f(text)).unwrap();
}

/// Scans the fleet with `inventory.toml` changed by `f`: the scan must exit 2 with one message
/// holding every `expected` fragment, and record nothing.
fn assert_inventory_rejected(f: impl FnOnce(String) -> String, expected: &[&str]) {
    let (_dir, fleet, db) = fleet_copy();
    edit(&fleet.join("inventory.toml"), f);
    let (code, stdout, stderr) = scan(&fleet, &db, None, &[]);
    assert_eq!(code, 2, "stdout: {stdout}\nstderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for fragment in expected {
        assert!(stderr.contains(fragment), "{fragment:?} not in: {stderr}");
    }
    assert_eq!(stderr.lines().count(), 1, "one clear message: {stderr}");
    assert_eq!(run_count(&db), 0, "nothing recorded");
}

/// Neither output holds the raw ESC byte (nor any other C0 control but the line ends).
fn assert_no_raw_controls(stdout: &str, stderr: &str) {
    for (name, text) in [("stdout", stdout), ("stderr", stderr)] {
        assert!(
            !text.bytes().any(|b| b == 0x1b),
            "raw ESC on {name}: {text:?}"
        );
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "raw control character on {name}: {text:?}"
        );
    }
}

#[test]
fn huge_credential_interval_is_refused_not_a_panic() {
    assert_inventory_rejected(
        |t| {
            let declared = "id = \"AKIABBBYD3IDZRWLGVSG\"\n";
            assert!(t.contains(declared));
            t.replace(declared, &format!("{declared}interval_days = 4294967295\n"))
        },
        &[
            "inventory.toml: line ",
            "(credential \"AKIABBBYD3IDZRWLGVSG\")",
            "interval_days = 4294967295 is out of range: expected 1 to 36500 days",
        ],
    );
}

#[test]
fn huge_class_interval_is_refused_not_a_panic() {
    assert_inventory_rejected(
        |t| format!("[policy.classes]\nB = 4294967295\n{t}"),
        &[
            "inventory.toml: line 2 ([policy.classes])",
            "B = 4294967295 is out of range: expected 1 to 36500 days",
        ],
    );
}

#[test]
fn huge_anomalous_usage_baseline_is_refused_not_a_panic() {
    assert_inventory_rejected(
        |t| format!("[policy.anomalous_usage]\nbaseline_days = 4294967295\n{t}"),
        &[
            "inventory.toml: line ",
            "[policy.anomalous_usage]",
            "baseline_days = 4294967295 is out of range: expected 1 to 36500 days",
        ],
    );
}

#[test]
fn huge_auth_failure_spike_window_is_refused_not_a_panic() {
    assert_inventory_rejected(
        |t| format!("[policy.auth_failure_spike]\ndetection_hours = 4294967295\n{t}"),
        &[
            "inventory.toml: line ",
            "[policy.auth_failure_spike]",
            "detection_hours = 4294967295 is out of range: expected 1 to 876000 hours",
        ],
    );
}

#[test]
fn escape_sequence_in_a_waiver_ticket_is_shown_not_run() {
    let (_dir, fleet, db) = fleet_copy();
    // TOML's \u001b is the ESC character itself.
    std::fs::write(
        fleet.join("waivers.toml"),
        r#"[[waivers]]
rule = "rotation-overdue"
credential = "AKIANOSUCHKEY0000001"
reason = "accepted"
approver = "ciso@example.com"
ticket = "SEC-1\u001b[1A\u001b[2Kall clear, 0 findings"
expires = 2027-01-31
"#,
    )
    .unwrap();
    let (code, stdout, stderr) = scan(&fleet, &db, None, &[]);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stderr.contains(&format!(
            "warning: waiver at line 1 (rotation-overdue on \"AKIANOSUCHKEY0000001\", SEC-1{SHOWN}all clear, 0 findings) matches no finding"
        )),
        "{stderr}"
    );
    assert_no_raw_controls(&stdout, &stderr);
}

#[test]
fn escape_sequence_in_a_user_name_is_shown_not_run_by_diff() {
    let (_dir, fleet, db) = fleet_copy();
    let (code, _, stderr) = scan(&fleet, &db, None, &["--quiet"]);
    assert_eq!(code, 0, "{stderr}");

    // The IAM user of a declared key gets a hostile name, and the key drops out of the
    // inventory: the second run has a new unmanaged-credential finding naming the user.
    let hostile = format!("ci-deploy{ERASE_LINE_ABOVE}all clear");
    let hostile_json = hostile.replace('\u{1b}', "\\u001b");
    let iam = fleet.join("aws/111122223333/iam");
    for entry in std::fs::read_dir(&iam).unwrap() {
        let path = entry.unwrap().path();
        edit(&path, |t| {
            if path.extension().is_some_and(|e| e == "json") {
                t.replace("\"ci-deploy\"", &format!("\"{hostile_json}\""))
                    .replace("user/ci-deploy\"", &format!("user/{hostile_json}\""))
            } else {
                t.replace("ci-deploy,", &format!("{hostile},"))
                    .replace("user/ci-deploy,", &format!("user/{hostile},"))
            }
        });
    }
    edit(&fleet.join("inventory.toml"), |t| {
        t.replace(
            "id = \"AKIABBBYD3IDZRWLGVSG\"",
            "id = \"AKIABBBYD3IDZRWLGVSX\"",
        )
    });
    let (code, stdout, stderr) = scan(&fleet, &db, None, &[]);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert_no_raw_controls(&stdout, &stderr);

    let output = credaudit()
        .args(["diff", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!(
            "unmanaged-credential       AKIABBBYD3IDZRWLGVSG  access key of IAM user ci-deploy{SHOWN}all clear"
        )),
        "{stdout}"
    );
    assert_no_raw_controls(&stdout, &stderr);
}

#[test]
fn escape_sequence_in_a_cloudtrail_event_version_is_shown_not_run() {
    let (_dir, fleet, db) = fleet_copy();
    let trail = fleet.join("cloudtrail");
    std::fs::create_dir_all(&trail).unwrap();
    std::fs::write(
        trail.join("hostile.json"),
        r#"{"Records": [{"eventVersion": "2\u001b[1A\u001b[2Kok"}]}"#,
    )
    .unwrap();
    let (code, stdout, stderr) = scan(&fleet, &db, None, &[]);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stderr.contains(&format!("unsupported eventVersion 2{SHOWN}ok")),
        "{stderr}"
    );
    assert_no_raw_controls(&stdout, &stderr);
}

#[test]
fn escape_sequence_in_an_error_message_is_shown_not_run() {
    let (_dir, fleet, db) = fleet_copy();
    edit(&fleet.join("inventory.toml"), |t| {
        t.replacen("class = \"A\"", "class = \"A\\u001b]0;pwned\\u0007\"", 1)
    });
    let (code, stdout, stderr) = scan(&fleet, &db, None, &[]);
    assert_eq!(code, 2, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stderr.contains("class \"A\\u{1b}]0;pwned\\u{7}\": expected one of A, B, C, D"),
        "{stderr}"
    );
    assert_no_raw_controls(&stdout, &stderr);
}
