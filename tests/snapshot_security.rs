//! A tampered or foreign snapshot: planted triggers and views are refused before they run,
//! read-only commands never write, verify covers run metadata and notices a shortened chain,
//! and the file is owner-only.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::*;
use rusqlite::Connection;

/// (exit code, stdout, stderr) of `credaudit COMMAND --db DB ARGS…`, killed after two minutes
/// so that a hang fails the test instead of stalling it.
fn run(args: &[&str], db: &Path) -> (i32, String, String) {
    let output = credaudit()
        .arg(args[0])
        .arg("--db")
        .arg(db)
        .args(&args[1..])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn verify(db: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["verify"];
    args.extend_from_slice(extra);
    run(&args, db)
}

fn demo_scan(db: &Path, extra: &[&str]) -> (i32, String, String) {
    scan(&repo("fixtures/demo-fleet"), db, None, extra)
}

/// Runs in the file, counted without credaudit (which refuses a tampered file).
fn raw_run_count(db: &Path) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))
        .unwrap()
}

/// Changes a snapshot with its append-only triggers lifted, then puts them back exactly as
/// they were, so that only the hash chain can tell.
fn tamper(db: &Path, sql: &str) {
    let conn = Connection::open(db).unwrap();
    let triggers: Vec<(String, String)> = conn
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(triggers.len() >= 8, "the append-only triggers are there");
    for (name, _) in &triggers {
        conn.execute_batch(&format!("DROP TRIGGER {name}")).unwrap();
    }
    conn.execute_batch(sql).unwrap();
    for (_, create) in &triggers {
        conn.execute_batch(create).unwrap();
    }
}

/// The head printed by a successful `verify --db`.
fn head_of(db: &Path) -> String {
    let (code, stdout, stderr) = verify(db, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let head = stdout
        .trim()
        .rsplit_once("head ")
        .map(|(_, h)| h.to_string())
        .unwrap_or_default();
    assert_eq!(head.len(), 64, "{stdout}");
    head
}

#[test]
fn a_planted_trigger_cannot_hide_critical_findings() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    // The demo fleet has critical findings (two root access keys): the gate trips.
    let (code, _, stderr) = demo_scan(&db, &["-q", "--fail-on", "critical"]);
    assert_eq!(code, 1, "{stderr}");
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER zz BEFORE INSERT ON run_sections
               WHEN NEW.name = 'findings' BEGIN SELECT RAISE(IGNORE); END;",
        )
        .unwrap();

    let (code, _, stderr) = demo_scan(&db, &["-q", "--fail-on", "critical"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(r#"unknown trigger "zz""#), "{stderr}");
    assert!(stderr.contains(&db.display().to_string()), "{stderr}");
    assert_eq!(raw_run_count(&db), 1, "no run was recorded");

    let (code, stdout, stderr) = verify(&db, &[]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains(r#"unknown trigger "zz""#), "{stderr}");
    assert!(!stdout.contains("ok"), "{stdout}");
}

#[test]
fn a_recursive_trigger_is_refused_before_it_can_hang_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    assert_eq!(demo_scan(&db, &["-q"]).0, 0);
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER spin BEFORE INSERT ON runs BEGIN
               SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)
                                     SELECT x FROM c);
             END;",
        )
        .unwrap();
    let started = std::time::Instant::now();
    let (code, _, stderr) = demo_scan(&db, &["-q"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(r#"unknown trigger "spin""#), "{stderr}");
    for command in [&["verify"][..], &["diff"], &["query", "rotations"]] {
        let (code, _, stderr) = run(command, &db);
        assert_eq!(code, 2, "{command:?}: {stderr}");
        assert!(stderr.contains("spin"), "{command:?}: {stderr}");
    }
    assert!(started.elapsed() < Duration::from_secs(100));
}

#[test]
fn a_view_or_an_altered_guard_is_refused() {
    for sql in [
        "CREATE VIEW open_findings AS SELECT * FROM findings",
        "DROP TRIGGER runs_no_update;
         CREATE TRIGGER runs_no_update BEFORE UPDATE ON runs BEGIN SELECT 1; END;",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        assert_eq!(demo_scan(&db, &["-q"]).0, 0);
        Connection::open(&db).unwrap().execute_batch(sql).unwrap();
        let (code, _, stderr) = demo_scan(&db, &["-q"]);
        assert_eq!(code, 2, "{sql}: {stderr}");
        let (code, _, verify_stderr) = verify(&db, &[]);
        assert_eq!(code, 2, "{sql}: {verify_stderr}");
        for stderr in [stderr, verify_stderr] {
            assert!(
                stderr.contains(r#"unknown view "open_findings""#)
                    || stderr.contains(r#"altered trigger "runs_no_update""#),
                "{sql}: {stderr}"
            );
        }
        assert_eq!(raw_run_count(&db), 1);
    }
}

#[test]
fn verify_refuses_an_unrelated_sqlite_file_and_leaves_it_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notes.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me');")
        .unwrap();
    let bytes = std::fs::read(&db).unwrap();
    let mtime = std::fs::metadata(&db).unwrap().modified().unwrap();

    let (code, stdout, stderr) = verify(&db, &[]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(!stdout.contains("ok"), "{stdout}");
    assert!(
        stderr.contains("not a credaudit snapshot") && stderr.contains(r#"unknown table "notes""#),
        "{stderr}"
    );
    // A scan does not write credaudit's schema into it either.
    let (code, _, stderr) = demo_scan(&db, &["-q"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not a credaudit snapshot"), "{stderr}");

    assert_eq!(std::fs::read(&db).unwrap(), bytes);
    assert_eq!(std::fs::metadata(&db).unwrap().modified().unwrap(), mtime);
}

#[test]
fn verify_fails_on_an_empty_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    drop(credaudit::snapshot::Snapshot::open(&db).unwrap());
    let (code, stdout, stderr) = verify(&db, &[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("holds no runs"), "{stdout}");
    assert!(!stdout.contains("ok:"), "{stdout}");
    // An empty file is no snapshot at all.
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let (code, _, stderr) = verify(&empty, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no credaudit schema"), "{stderr}");
}

#[test]
fn edited_run_metadata_fails_verify() {
    for sql in [
        "UPDATE runs SET source = 'export:somewhere-else' WHERE id = 1",
        "UPDATE runs SET recorded_at = '2020-01-01T00:00:00Z' WHERE id = 1",
        "UPDATE runs SET status = 'partial' WHERE id = 1",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        for _ in 0..2 {
            assert_eq!(demo_scan(&db, &["-q"]).0, 0);
        }
        head_of(&db);
        tamper(&db, sql);
        let (code, stdout, stderr) = verify(&db, &[]);
        assert_eq!(code, 1, "{sql}: {stdout}{stderr}");
        assert!(
            stdout.contains("run 1 is broken: its content does not match its recorded hash"),
            "{sql}: {stdout}"
        );
    }
}

#[test]
fn a_deleted_newest_run_fails_verify_head() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let out = dir.path().join("out");
    for _ in 0..2 {
        assert_eq!(demo_scan(&db, &["-q"]).0, 0);
    }
    assert_eq!(
        scan(&repo("fixtures/demo-fleet"), &db, Some(&out), &["-q"]).0,
        0
    );
    let head = head_of(&db);
    // The bundle's manifest carries the same head.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["run_content_hash"], head.as_str());
    let (code, stdout, _) = verify(&db, &["--head", &head]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("ok: 3 runs, hash chain intact, head "),
        "{stdout}"
    );

    // A run is its row and its sections (the blobs they name may be shared with other runs).
    tamper(
        &db,
        "DELETE FROM run_sections WHERE run_id = 3; DELETE FROM runs WHERE id = 3;",
    );

    // What is left is a consistent chain of two runs; only the kept head tells.
    let shorter = head_of(&db);
    assert_ne!(shorter, head);
    let (code, stdout, _) = verify(&db, &["--head", &head]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains(&format!("has head {shorter}, expected {head}")),
        "{stdout}"
    );
}

#[test]
fn leftover_rows_of_a_deleted_run_fail_verify() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    for _ in 0..2 {
        assert_eq!(demo_scan(&db, &["-q"]).0, 0);
    }
    tamper(&db, "DELETE FROM runs WHERE id = 2");
    let (code, stdout, _) = verify(&db, &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("run 2 is broken") && stdout.contains("it is not in runs"),
        "{stdout}"
    );
}

#[test]
fn a_gap_in_run_ids_fails_verify() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    for _ in 0..3 {
        assert_eq!(demo_scan(&db, &["-q"]).0, 0);
    }
    tamper(&db, "DELETE FROM runs WHERE id = 2");
    let (code, stdout, _) = verify(&db, &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("run 3 is broken: run 2 before it is missing (ids jump from 1 to 3)"),
        "{stdout}"
    );

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    for _ in 0..2 {
        assert_eq!(demo_scan(&db, &["-q"]).0, 0);
    }
    tamper(&db, "DELETE FROM runs WHERE id = 1");
    let (code, stdout, _) = verify(&db, &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("run 2 is broken: the chain starts at run 2 instead of run 1"),
        "{stdout}"
    );
}

#[test]
fn read_only_commands_leave_the_snapshot_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    for _ in 0..2 {
        assert_eq!(demo_scan(&db, &["-q"]).0, 0);
    }
    let bytes = std::fs::read(&db).unwrap();
    let mtime = std::fs::metadata(&db).unwrap().modified().unwrap();
    let report_out = dir.path().join("report").display().to_string();
    let simulate_out = dir.path().join("sim").display().to_string();
    for command in [
        &["verify"][..],
        &["report", "--out", &report_out],
        &["diff"],
        &["query", "rotations"],
        &["simulate", "--out", &simulate_out],
    ] {
        let (code, stdout, stderr) = run(command, &db);
        assert_eq!(code, 0, "{command:?}: {stdout}{stderr}");
        assert_eq!(std::fs::read(&db).unwrap(), bytes, "{command:?}");
        assert_eq!(
            std::fs::metadata(&db).unwrap().modified().unwrap(),
            mtime,
            "{command:?}"
        );
    }
}

/// The head of the chain in tests/fixtures/snapshot-0.1.0-schema2.db.
const OLD_HEAD: &str = "c990c49a9109887b96ebaf0579034e669475ecf6db1416e23a30d4e3859fc129";

// A snapshot written by credaudit 0.1.0 keeps verifying: read-only commands read it through an
// in-memory upgrade and never write the file; only a scan upgrades it.
#[test]
fn a_snapshot_written_by_0_1_0_still_verifies_and_is_upgraded_only_by_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    std::fs::copy(repo("tests/fixtures/snapshot-0.1.0-schema2.db"), &db).unwrap();
    let bytes = std::fs::read(&db).unwrap();
    let report_out = dir.path().join("report").display().to_string();
    let simulate_out = dir.path().join("sim").display().to_string();
    let (code, stdout, stderr) = run(&["verify"], &db);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        stdout.trim(),
        format!("ok: 2 runs, hash chain intact, head {OLD_HEAD}")
    );
    for command in [
        &["verify", "--head", OLD_HEAD][..],
        &["report", "--run", "1", "--out", &report_out],
        &["diff"],
        &["query", "rotations"],
        &["simulate", "--out", &simulate_out],
    ] {
        let (code, stdout, stderr) = run(command, &db);
        assert_eq!(code, 0, "{command:?}: {stdout}{stderr}");
        assert_eq!(std::fs::read(&db).unwrap(), bytes, "{command:?} wrote");
    }
    let (code, _, _) = run(&["verify", "--head", &"0".repeat(64)], &db);
    assert_eq!(code, 1, "another head fails");

    // Only a scan upgrades the file; the old runs still verify after it.
    assert_eq!(demo_scan(&db, &["-q"]).0, 0);
    assert_ne!(std::fs::read(&db).unwrap(), bytes);
    assert_eq!(raw_run_count(&db), 3);
    let (code, stdout, stderr) = run(&["verify"], &db);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.starts_with("ok: 3 runs, hash chain intact"),
        "{stdout}"
    );
}

#[test]
fn the_snapshot_is_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("state");
    let db = folder.join("nightly").join("s.db");
    let (code, _, stderr) = demo_scan(&db, &["-q"]);
    assert_eq!(code, 0, "{stderr}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&db), 0o600);
    assert_eq!(mode(&folder), 0o700);
    assert_eq!(mode(&folder.join("nightly")), 0o700);

    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(demo_scan(&db, &["-q"]).0, 0);
    assert_eq!(mode(&db), 0o600, "a scan tightens a readable snapshot");
}
