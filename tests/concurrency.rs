//! Concurrent scans into one snapshot: eight `credaudit scan` processes started at once each
//! either record their run (SQLite serialises them: every run is written in one `BEGIN
//! IMMEDIATE` transaction that waits for the one before, up to the busy timeout) or refuse with
//! exit 2 and a message that names the lock. Never a lost run, a broken chain or a corrupt file.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

const SCANS: usize = 8;

/// The message of a scan that waited for the lock longer than the busy timeout.
const BUSY_MESSAGE: &str = "another credaudit process kept it locked";

fn binary() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("credaudit")
}

/// `PRAGMA integrity_check` of the file, through SQLite itself.
fn integrity(db: &Path) -> String {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// Starts `SCANS` scans of `fleet` into `db` at once; gives each one's (exit code, stderr).
fn scan_at_once(fleet: &Path, db: &Path) -> Vec<(i32, String)> {
    let children: Vec<_> = (0..SCANS)
        .map(|_| {
            Command::new(binary())
                .arg("scan")
                .arg("--from")
                .arg(fleet)
                .arg("--db")
                .arg(db)
                .args(["--as-of", AS_OF])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            (
                output.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        })
        .collect()
}

/// Checks the outcome of concurrent scans into `db`, which held `runs_before` runs: every
/// success is one run (its id printed once), every failure names the lock, the chain verifies
/// and SQLite finds the file intact. Gives the number of successes.
fn check(db: &Path, runs_before: usize, results: &[(i32, String)]) -> usize {
    let mut succeeded = 0;
    let mut printed_ids = Vec::new();
    for (code, stderr) in results {
        assert!(!stderr.contains("panicked"), "{stderr}");
        match code {
            0 => {
                succeeded += 1;
                let id: i64 = stderr
                    .split_whitespace()
                    .nth(1)
                    .and_then(|id| id.parse().ok())
                    .unwrap_or_else(|| panic!("`run N as of` on a success: {stderr}"));
                printed_ids.push(id);
            }
            2 => assert!(
                stderr.contains(BUSY_MESSAGE) && stderr.contains(&db.display().to_string()),
                "a refused scan names the snapshot and the lock: {stderr}"
            ),
            other => panic!("exit {other}: {stderr}"),
        }
    }
    let runs = credaudit::snapshot::Snapshot::open_existing(db)
        .unwrap()
        .runs()
        .unwrap();
    assert_eq!(
        runs.len(),
        runs_before + succeeded,
        "no lost and no extra run"
    );
    let ids: Vec<i64> = runs.iter().map(|r| r.id).collect();
    assert_eq!(ids, (1..=runs.len() as i64).collect::<Vec<_>>());
    printed_ids.sort();
    assert_eq!(
        printed_ids,
        ids[runs_before..].to_vec(),
        "each success recorded the run it printed"
    );
    let verify = credaudit()
        .arg("verify")
        .arg("--db")
        .arg(db)
        .output()
        .unwrap();
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    assert_eq!(integrity(db), "ok");
    succeeded
}

#[test]
fn eight_scans_creating_one_snapshot_take_turns() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("snapshot.db");
    let results = scan_at_once(&repo("fixtures/demo-fleet"), &db);
    let succeeded = check(&db, 0, &results);
    // Well inside the busy timeout: every scan waits its turn.
    assert_eq!(succeeded, SCANS, "{results:?}");
    eprintln!("{succeeded} of {SCANS} concurrent scans creating one snapshot recorded a run");
}

#[test]
fn eight_scans_of_a_larger_fleet_into_one_snapshot_take_turns() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet");
    let generated = credaudit()
        .args(["generate", "--credentials", "1500", "--quiet", "--out"])
        .arg(&fleet)
        .output()
        .unwrap();
    assert!(generated.status.success());
    let db = dir.path().join("snapshot.db");
    let (code, _, stderr) = scan(&fleet, &db, None, &["--quiet"]);
    assert_eq!(code, 0, "{stderr}");
    let results = scan_at_once(&fleet, &db);
    let succeeded = check(&db, 1, &results);
    assert_eq!(succeeded, SCANS, "{results:?}");
    eprintln!("{succeeded} of {SCANS} concurrent scans of a 1,500-credential fleet recorded a run");
}
