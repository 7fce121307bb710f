//! The content-addressed snapshot: a run that stores what an earlier one stored costs a
//! reference per section, blobs are written once, a damaged blob fails verify, the bundle's
//! raw/ is what was read, and a migrated 0.1.0 run renders as before.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use rusqlite::Connection;

fn count(db: &Path, sql: &str) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

/// (section, blob) of a run, without credaudit.
fn sections(db: &Path, run: i64) -> BTreeMap<String, String> {
    Connection::open(db)
        .unwrap()
        .prepare("SELECT name, blob FROM run_sections WHERE run_id = ?1")
        .unwrap()
        .query_map([run], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

fn ok(output: std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_second_scan_of_an_unchanged_fleet_costs_a_reference_per_section() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet");
    ok(credaudit()
        .args(["generate", "--agents", "400", "--out"])
        .arg(&fleet)
        .output()
        .unwrap());
    let db = dir.path().join("s.db");
    assert_eq!(scan(&fleet, &db, None, &["-q"]).0, 0);
    let first = size(&db);
    let (chunks, blobs) = (
        count(&db, "SELECT COUNT(*) FROM chunks"),
        count(&db, "SELECT COUNT(*) FROM blobs"),
    );
    assert_eq!(scan(&fleet, &db, None, &["-q"]).0, 0);
    let second = size(&db) - first;
    eprintln!("first run {first} bytes, an unchanged second run adds {second}");
    assert!(second * 20 <= first, "{second} > 5 % of {first}");
    // Every chunk and blob was written once: the second run added none.
    assert_eq!(count(&db, "SELECT COUNT(*) FROM chunks"), chunks);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM blobs"), blobs);
    assert_eq!(sections(&db, 1), sections(&db, 2));
    assert_eq!(sections(&db, 1).len(), 13);

    // A day later the evaluation changes (findings, ages), the facts do not: every facts and
    // raw section of run 3 is run 1's.
    let (code, _, stderr) = {
        let out = credaudit()
            .args(["scan", "-q", "--as-of", "2026-11-02T00:00:00Z", "--from"])
            .arg(&fleet)
            .arg("--db")
            .arg(&db)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::new(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(code, Some(0), "{stderr}");
    let (one, three) = (sections(&db, 1), sections(&db, 3));
    for (name, blob) in &one {
        if name == "findings" || name == "assessments" {
            assert_ne!(&three[name], blob, "{name}");
        } else {
            assert_eq!(&three[name], blob, "{name}");
        }
    }
    eprintln!(
        "a day later the run adds {} bytes",
        size(&db) - first - second
    );
    let verified = ok(credaudit()
        .args(["verify", "--db"])
        .arg(&db)
        .output()
        .unwrap());
    assert!(verified.starts_with("ok: 3 runs"), "{verified}");
}

#[test]
fn a_damaged_chunk_fails_verify() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    assert_eq!(scan(&repo("fixtures/demo-fleet"), &db, None, &["-q"]).0, 0);
    // The chunk of the owners section swapped for the policy's: both are valid deflate.
    let conn = Connection::open(&db).unwrap();
    let blob_of = |name: &str| -> String {
        conn.query_row(
            "SELECT blob FROM run_sections WHERE run_id = 1 AND name = ?1",
            [name],
            |r| r.get(0),
        )
        .unwrap()
    };
    let (owners, policy) = (blob_of("owners"), blob_of("run_policy"));
    conn.execute_batch(&format!(
        "DROP TRIGGER chunks_no_update;
         UPDATE chunks SET data = (SELECT data FROM chunks WHERE sha256 = '{policy}'),
                           size = (SELECT size FROM chunks WHERE sha256 = '{policy}')
           WHERE sha256 = '{owners}';"
    ))
    .unwrap();
    drop(conn);
    let out = credaudit()
        .args(["verify", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("run 1 is broken: its section owners is damaged")
            && stdout.contains("does not match its recorded SHA-256"),
        "{stdout}"
    );
}

/// The files under `dir`, by path relative to it.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                files.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

#[test]
fn raw_in_the_bundle_is_what_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let out = dir.path().join("out");
    let fleet = repo("fixtures/demo-fleet");
    assert_eq!(scan(&fleet, &db, Some(&out), &["-q"]).0, 0);
    let raw = tree(&out.join("raw"));
    let mut read = tree(&fleet.join("aws"))
        .into_iter()
        .map(|(path, bytes)| (format!("aws/{path}"), bytes))
        .collect::<BTreeMap<_, _>>();
    for name in ["inventory.toml", "history.jsonl"] {
        read.insert(name.into(), std::fs::read(fleet.join(name)).unwrap());
    }
    assert_eq!(
        raw.keys().collect::<Vec<_>>(),
        read.keys().collect::<Vec<_>>()
    );
    assert!(raw == read, "raw/ holds the bytes read");
    // `report` streams the same files from the snapshot.
    let again = dir.path().join("again");
    ok(credaudit()
        .args(["report", "--run", "1", "--db"])
        .arg(&db)
        .arg("--out")
        .arg(&again)
        .output()
        .unwrap());
    assert!(tree(&again.join("raw")) == raw);
    assert_eq!(
        std::fs::read(again.join("findings.json")).unwrap(),
        std::fs::read(out.join("findings.json")).unwrap()
    );
}

#[test]
fn a_migrated_0_1_0_run_renders_the_same_findings() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    std::fs::copy(repo("tests/fixtures/snapshot-0.1.0-schema2.db"), &db).unwrap();
    let report = |run: &str, out: &Path| {
        ok(credaudit()
            .args(["report", "--run", run, "--db"])
            .arg(&db)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap());
        (
            std::fs::read(out.join("findings.json")).unwrap(),
            tree(&out.join("raw")),
        )
    };
    // Read-only: upgraded in memory.
    let before: Vec<_> = ["1", "2"]
        .iter()
        .map(|run| report(run, &dir.path().join(format!("before-{run}"))))
        .collect();
    assert!(!before[1].1.is_empty(), "the old run kept raw files");
    // A scan migrates the file itself.
    assert_eq!(scan(&repo("fixtures/demo-fleet"), &db, None, &["-q"]).0, 0);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'observed_credentials'"
        ),
        0
    );
    for (run, expected) in ["1", "2"].iter().zip(&before) {
        let after = report(run, &dir.path().join(format!("after-{run}")));
        assert!(
            &after == expected,
            "run {run} renders differently after the migration"
        );
    }
    let verified = ok(credaudit()
        .args([
            "verify",
            "--head",
            // The migrated runs keep their hashes; run 3 is new.
            &Connection::open(&db)
                .unwrap()
                .query_row("SELECT content_hash FROM runs WHERE id = 3", [], |r| {
                    r.get::<_, String>(0)
                })
                .unwrap(),
            "--db",
        ])
        .arg(&db)
        .output()
        .unwrap());
    assert!(verified.starts_with("ok: 3 runs"), "{verified}");
    let old_head: String = Connection::open(&db)
        .unwrap()
        .query_row("SELECT content_hash FROM runs WHERE id = 2", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(
        old_head,
        "c990c49a9109887b96ebaf0579034e669475ecf6db1416e23a30d4e3859fc129"
    );
}
