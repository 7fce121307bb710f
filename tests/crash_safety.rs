//! Crash safety: a large scan killed with SIGKILL at many points spread over its ingest,
//! recording and rendering. After every kill the snapshot passes SQLite's `integrity_check`,
//! every earlier run is there with the same chain head, no half run is visible, `credaudit
//! verify --db` passes, the next scan succeeds, and `--out` either does not exist or holds a
//! complete bundle whose manifest verifies (the bundle is built in a hidden folder beside `--out`
//! and renamed into place).
//!
//! The phase a kill hit is read from the files the scan leaves while it works: SQLite's
//! rollback journal (`<db>-journal`) exists while the run is being recorded, and the hidden
//! `.credaudit-bundle-*` folder beside `--out` while the bundle is being written.
//!
//! `CREDAUDIT_CRASH_KILLS` (default 24) and `CREDAUDIT_CRASH_CREDENTIALS` (default 2000) scale
//! the test.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Ingest,
    Recording,
    Rendering,
}

/// When to kill a scan.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// This long after it started.
    Elapsed(Duration),
    /// This long after its rollback journal appeared (recording).
    AfterJournal(Duration),
    /// This long after its staging folder appeared (rendering).
    AfterStaging(Duration),
}

/// What watching a scan saw: when the journal and the staging folder first appeared, when it
/// ended, and (for a killed scan) the phase it was in.
#[derive(Debug, Default)]
struct Watched {
    journal: Option<Duration>,
    staging: Option<Duration>,
    end: Duration,
    killed_in: Option<Phase>,
    exit: Option<i32>,
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn binary() -> PathBuf {
    assert_cmd::cargo::cargo_bin("credaudit")
}

fn spawn_scan(fleet: &Path, db: &Path, out: Option<&Path>) -> Child {
    let mut cmd = Command::new(binary());
    cmd.arg("scan")
        .arg("--from")
        .arg(fleet)
        .arg("--db")
        .arg(db)
        .args(["--as-of", AS_OF, "--quiet"]);
    if let Some(out) = out {
        cmd.arg("--out").arg(out);
    }
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn journal_of(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-journal");
    PathBuf::from(name)
}

/// Hidden folders a bundle is staged in beside `out`.
fn staging_folders(out: &Path) -> usize {
    std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".credaudit-bundle-")
        })
        .count()
}

/// Runs `child` to its end, or kills it (SIGKILL) at `kill`; polls the journal and the staging
/// folder to tell the phase.
fn watch(mut child: Child, db: &Path, out: &Path, kill: Option<KillAt>) -> Watched {
    let start = Instant::now();
    let staged_before = staging_folders(out);
    let journal = journal_of(db);
    let mut seen = Watched::default();
    loop {
        let now = start.elapsed();
        if let Some(status) = child.try_wait().unwrap() {
            seen.end = now;
            seen.exit = status.code();
            return seen;
        }
        if seen.journal.is_none() && journal.exists() {
            seen.journal = Some(now);
        }
        if seen.staging.is_none() && staging_folders(out) > staged_before {
            seen.staging = Some(now);
        }
        let due = match kill {
            None => false,
            Some(KillAt::Elapsed(at)) => now >= at,
            Some(KillAt::AfterJournal(after)) => seen.journal.is_some_and(|j| now >= j + after),
            Some(KillAt::AfterStaging(after)) => seen.staging.is_some_and(|s| now >= s + after),
        };
        if due {
            // std's kill is SIGKILL on Unix: no handler, no cleanup, no flush.
            child.kill().unwrap();
            let status = child.wait().unwrap();
            seen.end = start.elapsed();
            seen.exit = status.code();
            seen.killed_in = Some(if seen.staging.is_some() {
                Phase::Rendering
            } else if seen.journal.is_some() {
                Phase::Recording
            } else {
                Phase::Ingest
            });
            return seen;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// (id, content hash) of every run, read through the library's read-only open.
fn runs(db: &Path) -> Vec<(i64, String, String)> {
    credaudit::snapshot::Snapshot::open_existing(db)
        .unwrap()
        .runs()
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.content_hash, r.prev_hash))
        .collect()
}

fn integrity(db: &Path) -> String {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// `credaudit verify --db DB [--head HEAD]` passes.
fn assert_chain(db: &Path, head: Option<&str>, context: &str) {
    let mut cmd = credaudit();
    cmd.arg("verify").arg("--db").arg(db);
    if let Some(head) = head {
        cmd.args(["--head", head]);
    }
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{context}: verify --db: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The run id of the bundle at `out` after `credaudit verify` passed on it; `None` when `out`
/// does not exist.
fn verified_bundle(out: &Path, context: &str) -> Option<(i64, String)> {
    if !out.exists() {
        return None;
    }
    let verify = credaudit().arg("verify").arg(out).output().unwrap();
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{context}: the bundle at --out is complete: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    Some((
        manifest["run_id"].as_i64().unwrap(),
        manifest["chain_head"].as_str().unwrap().to_string(),
    ))
}

#[test]
fn sigkill_anywhere_in_a_scan_loses_nothing() {
    let kills = env_number("CREDAUDIT_CRASH_KILLS", 24);
    let credentials = env_number("CREDAUDIT_CRASH_CREDENTIALS", 2000);
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet");
    let generated = credaudit()
        .args(["generate", "--quiet", "--credentials"])
        .arg(credentials.to_string())
        .arg("--out")
        .arg(&fleet)
        .output()
        .unwrap();
    assert!(generated.status.success());
    let small = repo("fixtures/demo-fleet");
    let db = dir.path().join("snapshot.db");
    let out = dir.path().join("bundle");

    // A first run, then a measured unkilled one (the steady state every later kill hits).
    let (code, _, stderr) = scan(&fleet, &db, Some(&out), &["--quiet"]);
    assert_eq!(code, 0, "{stderr}");
    let measured = watch(spawn_scan(&fleet, &db, Some(&out)), &db, &out, None);
    assert_eq!(measured.exit, Some(0));
    let (journal, staging, end) = (
        measured
            .journal
            .expect("the journal was seen while recording"),
        measured
            .staging
            .expect("the staging folder was seen while rendering"),
        measured.end,
    );
    eprintln!(
        "unkilled scan of {credentials} credentials: ingest 0-{journal:?}, recording \
         {journal:?}-{staging:?}, rendering {staging:?}-{end:?}"
    );
    let recording = staging - journal;
    let rendering = end - staging;

    // Half the kills spread over the whole run, a quarter each inside recording and rendering.
    let spread = kills / 2;
    let inside = (kills - spread) / 2;
    let fraction = |i: usize, n: usize| (i as f64 + 0.5) / n as f64;
    let mut plan: Vec<KillAt> = (0..spread)
        .map(|i| KillAt::Elapsed(end.mul_f64(fraction(i, spread))))
        .collect();
    plan.extend((0..inside).map(|i| KillAt::AfterJournal(recording.mul_f64(fraction(i, inside)))));
    plan.extend(
        (0..kills - spread - inside)
            .map(|i| KillAt::AfterStaging(rendering.mul_f64(fraction(i, kills - spread - inside)))),
    );

    let mut bundle_run = verified_bundle(&out, "after the measured run").map(|b| b.0);
    assert_eq!(bundle_run, Some(2));
    let mut hits: Vec<Phase> = Vec::new();
    let mut finished = 0;
    for (index, kill) in plan.iter().enumerate() {
        let before = runs(&db);
        let head = before.last().unwrap().1.clone();
        let seen = watch(spawn_scan(&fleet, &db, Some(&out)), &db, &out, Some(*kill));
        let context = format!("kill {index} at {kill:?} ({:?})", seen.killed_in);
        eprintln!("{context}: after {:?}", seen.end);

        // A read-only command first, as a user would run after a crash.
        assert_chain(&db, None, &context);
        let after = runs(&db);
        let new_runs = &after[before.len().min(after.len())..];
        assert_eq!(
            &after[..before.len()],
            &before[..],
            "{context}: earlier runs intact"
        );
        assert!(new_runs.len() <= 1, "{context}: {new_runs:?}");
        match seen.killed_in {
            None => {
                assert_eq!(seen.exit, Some(0), "{context}: finished before the kill");
                finished += 1;
            }
            Some(Phase::Ingest) => assert!(new_runs.is_empty(), "{context}: nothing recorded"),
            // Killed once the run was committed: it is whole, linked to the head before.
            Some(Phase::Rendering) => assert_eq!(new_runs.len(), 1, "{context}"),
            Some(Phase::Recording) => {}
        }
        if let Some(phase) = seen.killed_in {
            hits.push(phase);
        }
        let head_now = match new_runs {
            [] => head.clone(),
            [(_, hash, prev)] => {
                assert_eq!(prev, &head, "{context}: the new run links to the old head");
                hash.clone()
            }
            _ => unreachable!(),
        };
        assert_chain(&db, Some(&head_now), &context);
        assert_eq!(integrity(&db), "ok", "{context}");

        // The bundle: absent, or complete and verified (the previous one, or this run's if it
        // was renamed into place just before the kill).
        match verified_bundle(&out, &context) {
            None => bundle_run = None,
            Some((run, chain_head)) => {
                let newest = new_runs.first().map(|r| r.0);
                assert!(
                    Some(run) == bundle_run || Some(run) == newest,
                    "{context}: the bundle is of run {run}, expected {bundle_run:?} or {newest:?}"
                );
                let stored = after.iter().find(|r| r.0 == run).unwrap();
                assert_eq!(chain_head, stored.1, "{context}");
                bundle_run = Some(run);
            }
        }

        // The next scan succeeds: every fourth the same large scan with a bundle, otherwise the
        // small demo fleet (to keep the test short).
        let next = if index % 4 == 3 {
            let (code, _, stderr) = scan(&fleet, &db, Some(&out), &["--quiet"]);
            assert_eq!(code, 0, "{context}: the next scan: {stderr}");
            bundle_run = verified_bundle(&out, &context).map(|b| b.0);
            assert_eq!(bundle_run, Some(runs(&db).last().unwrap().0));
            code
        } else {
            scan(&small, &db, None, &["--quiet"]).0
        };
        assert_eq!(next, 0, "{context}: the next scan succeeds");
        assert_eq!(integrity(&db), "ok", "{context}: after the next scan");
    }
    let count = |phase| hits.iter().filter(|p| **p == phase).count();
    eprintln!(
        "{} kills: {} in ingest, {} in recording, {} in rendering; {finished} scans finished \
         before their kill time; {} staging folders left by killed renders",
        hits.len(),
        count(Phase::Ingest),
        count(Phase::Recording),
        count(Phase::Rendering),
        staging_folders(&out),
    );
    assert!(hits.len() >= 20.min(kills), "{hits:?}");
    for phase in [Phase::Ingest, Phase::Recording, Phase::Rendering] {
        assert!(count(phase) > 0, "no kill landed in {phase:?}: {hits:?}");
    }
}

/// Set in the environment of [`crash_writer`] when it runs as the crashing process.
const CRASH_WRITER_DB: &str = "CREDAUDIT_TEST_CRASH_WRITER_DB";

/// Run as a child of [`a_read_only_command_after_a_crash_mid_write_rolls_it_back`]: writes
/// far more than SQLite's page cache holds into one transaction (so changed pages reach the
/// file and only the journal can undo them), then dies without rolling back. Does nothing in
/// a normal test run.
#[test]
fn crash_writer() {
    let Some(db) = std::env::var_os(CRASH_WRITER_DB) else {
        return;
    };
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.pragma_update(None, "cache_size", 4).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    for i in 0..2000u32 {
        let data: Vec<u8> = (0..4096u32)
            .map(|b| (b.wrapping_mul(i + 7) >> 3) as u8)
            .collect();
        conn.execute(
            "INSERT INTO chunks (sha256, size, data) VALUES (?1, ?2, ?3)",
            rusqlite::params![format!("{i:064x}"), 4096, data],
        )
        .unwrap();
    }
    // No destructor runs: the transaction is neither committed nor rolled back.
    std::process::abort();
}

#[test]
fn a_read_only_command_after_a_crash_mid_write_rolls_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("snapshot.db");
    let (code, _, stderr) = scan(&repo("fixtures/demo-fleet"), &db, None, &["--quiet"]);
    assert_eq!(code, 0, "{stderr}");
    let before = std::fs::read(&db).unwrap();
    let runs_before = runs(&db);

    let crashed = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_writer", "--test-threads", "1"])
        .env(CRASH_WRITER_DB, &db)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!crashed.success());
    let journal = journal_of(&db);
    assert!(
        std::fs::metadata(&journal).unwrap().len() > 0,
        "the crash left a hot journal"
    );
    assert_ne!(
        std::fs::read(&db).unwrap(),
        before,
        "uncommitted pages reached the file"
    );

    // `verify --db` opens read-only: it must roll the journal back, not fail or read the
    // uncommitted pages.
    assert_chain(&db, Some(&runs_before.last().unwrap().1), "after the crash");
    assert!(!journal.exists(), "the journal was rolled back");
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the file is as committed"
    );
    assert_eq!(runs(&db), runs_before);
    assert_eq!(integrity(&db), "ok");
}
