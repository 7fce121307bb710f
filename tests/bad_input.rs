//! Bad input: every malformed file gives exit 2, one clear message naming the file and the
//! record, and leaves the snapshot exactly as it was.

mod common;

use std::path::Path;

use common::*;

/// A scan that works, then `mutate` breaks one input; the broken scan must exit 2 with a
/// message containing every `expected` fragment, and add no run.
fn assert_rejected(mutate: impl FnOnce(&Path), expected: &[&str]) {
    assert_rejected_with(mutate, &[], expected);
}

/// [`assert_rejected`] with `extra` arguments for the broken scan.
fn assert_rejected_with(mutate: impl FnOnce(&Path), extra: &[&str], expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet");
    copy_dir(&repo("fixtures/demo-fleet"), &fleet);
    let db = dir.path().join("snapshot.db");
    let (code, _, stderr) = scan(&fleet, &db, None, &["--quiet"]);
    assert_eq!(code, 0, "the intact fleet scans: {stderr}");
    let before = std::fs::read(&db).unwrap();

    mutate(&fleet);
    let (code, stdout, stderr) = scan(&fleet, &db, None, extra);
    assert_eq!(code, 2, "stdout: {stdout}\nstderr: {stderr}");
    for fragment in expected {
        assert!(stderr.contains(fragment), "{fragment:?} not in: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one clear message: {stderr}");
    assert_eq!(run_count(&db), 1);
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the snapshot is untouched"
    );
}

fn edit(path: &Path, f: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, f(text)).unwrap();
}

fn first_account(fleet: &Path) -> std::path::PathBuf {
    let mut accounts: Vec<_> = std::fs::read_dir(fleet.join("aws"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    accounts.sort();
    accounts.remove(0)
}

#[test]
fn malformed_csv_row() {
    assert_rejected(
        |fleet| {
            edit(
                &first_account(fleet).join("iam/credential-report.csv"),
                |t| {
                    let mut lines: Vec<String> = t.lines().map(str::to_string).collect();
                    let cut = lines[3].rfind(',').unwrap();
                    lines[3].truncate(cut);
                    lines.join("\n") + "\n"
                },
            )
        },
        &["credential-report.csv", "line 4", "expected 22 fields"],
    );
}

/// A credential report row longer than --max-record-size stops at the cap, naming its line.
#[test]
fn csv_row_over_the_record_limit() {
    let report = repo("fixtures/demo-fleet/aws/111122223333/iam/credential-report.csv");
    let line = std::fs::read_to_string(report).unwrap().lines().count() + 1;
    assert_rejected_with(
        |fleet| {
            edit(
                &first_account(fleet).join("iam/credential-report.csv"),
                |t| format!("{t}{}\n", "x,".repeat(100_000)),
            )
        },
        &["--max-record-size", "64K"],
        &[
            "credential-report.csv",
            &format!("line {line}:"),
            "one record over the 64 KiB limit",
            "--max-record-size",
        ],
    );
}

/// A history line longer than --max-record-size is refused before it is parsed.
#[test]
fn history_line_over_the_record_limit() {
    let fleet = repo("fixtures/demo-fleet/history.jsonl");
    let line = std::fs::read_to_string(fleet).unwrap().lines().count() + 1;
    assert_rejected_with(
        |fleet| {
            edit(&fleet.join("history.jsonl"), |t| {
                format!(
                    "{t}{{\"time\":\"2026-02-03T00:00:00Z\",\"type\":\"rotation.completed\",\"credential_id\":\"x\",\"details\":\"{}\"}}\n",
                    "y".repeat(70_000)
                )
            })
        },
        &["--max-record-size", "64K"],
        &[
            "history.jsonl",
            &format!("line {line}:"),
            "one line over the 64 KiB limit",
            "--max-record-size",
        ],
    );
}

#[test]
fn truncated_json() {
    assert_rejected(
        |fleet| {
            edit(
                &first_account(fleet).join("iam/list-access-keys.json"),
                |t| t[..t.len() / 2].to_string(),
            )
        },
        &["list-access-keys.json", "truncated"],
    );
}

#[test]
fn wrong_type_in_json() {
    assert_rejected(
        |fleet| {
            edit(
                &first_account(fleet).join("iam/list-access-keys.json"),
                |t| {
                    let at = t.find("\"CreateDate\": \"").unwrap();
                    let end = t[at + 15..].find('"').unwrap() + at + 16;
                    format!("{}\"CreateDate\": true{}", &t[..at], &t[end..])
                },
            )
        },
        &["list-access-keys.json", "CreateDate", "expected a date"],
    );
}

#[test]
fn unknown_class() {
    assert_rejected(
        |fleet| {
            edit(&fleet.join("inventory.toml"), |t| {
                t.replacen("class = \"B\"", "class = \"E\"", 1)
            })
        },
        &[
            "inventory.toml",
            "line ",
            "class \"E\": expected one of A, B, C, D",
        ],
    );
}

#[test]
fn unknown_inventory_field() {
    assert_rejected(
        |fleet| {
            edit(&fleet.join("inventory.toml"), |t| {
                t.replacen("automated = ", "rotates = true\nautomated = ", 1)
            })
        },
        &["inventory.toml", "unknown field `rotates`"],
    );
}

#[test]
fn duplicate_inventory_id() {
    assert_rejected(
        |fleet| {
            edit(&fleet.join("inventory.toml"), |t| {
                let start = t.find("[[credentials]]").unwrap();
                let end = t[start + 1..].find("[[credentials]]").unwrap() + start + 1;
                let block = t[start..end].to_string();
                format!("{t}\n{block}")
            })
        },
        &["inventory.toml", "duplicate credential id"],
    );
}

#[test]
fn impossible_date_in_history() {
    assert_rejected(
        |fleet| {
            edit(&fleet.join("history.jsonl"), |t| {
                format!(
                    "{t}{{\"time\":\"2026-02-30T00:00:00Z\",\"type\":\"rotation.completed\",\"credential_id\":\"x\"}}\n"
                )
            })
        },
        &["history.jsonl", "line ", "2026-02-30"],
    );
}

#[test]
fn wrong_type_in_history() {
    assert_rejected(
        |fleet| {
            edit(&fleet.join("history.jsonl"), |t| {
                format!(
                    "{t}{{\"time\":\"2026-02-03T00:00:00Z\",\"type\":\"rotation.completed\",\"credential_id\":7}}\n"
                )
            })
        },
        &["history.jsonl", "line ", "invalid type"],
    );
}

#[test]
fn bad_as_of_and_missing_dir_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let out = credaudit()
        .args(["scan", "--from"])
        .arg(repo("fixtures/demo-fleet"))
        .arg("--db")
        .arg(&db)
        .args(["--as-of", "yesterday"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--as-of \"yesterday\""));
    let out = credaudit()
        .args(["scan", "--from", "/nonexistent/fleet", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/fleet"));
    assert!(
        !db.exists(),
        "no snapshot is created for a scan that cannot start"
    );
}

#[test]
fn a_file_that_is_not_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    std::fs::write(&db, "name,value\nnot,sqlite\n".repeat(20)).unwrap();
    let (code, _, stderr) = scan(&repo("fixtures/demo-fleet"), &db, None, &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("s.db"), "{stderr}");
}
