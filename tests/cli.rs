//! Command-line habits: the run selection after a nested subcommand, shell completions and the
//! man page, all generated from the one clap definition.

mod common;

use std::path::Path;

use common::{AS_OF, credaudit, repo, scan};

/// A snapshot with one run of the demo fleet, in a folder that holds no `credaudit.db`.
fn demo_snapshot(dir: &Path) -> std::path::PathBuf {
    let db = dir.join("fleet.db");
    let (code, _, stderr) = scan(&repo("fixtures/demo-fleet"), &db, None, &["-q"]);
    assert_eq!(code, 0, "{stderr}");
    db
}

/// Runs credaudit in `dir` (so the default `credaudit.db` is absent) and returns its stdout,
/// failing on a non-zero exit.
fn stdout_of(dir: &Path, args: &[&str]) -> String {
    let out = credaudit().current_dir(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn query_takes_the_snapshot_after_the_nested_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_snapshot(dir.path());
    let db = db.to_str().unwrap();
    let after = stdout_of(dir.path(), &["query", "rotations", "--db", db]);
    let before = stdout_of(dir.path(), &["query", "--db", db, "rotations"]);
    assert_eq!(after, before);
    assert!(after.contains("rotation.completed"), "{after}");
}

#[test]
fn run_as_of_and_format_are_read_after_the_nested_subcommand_too() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_snapshot(dir.path());
    let db = db.to_str().unwrap();
    let after = stdout_of(
        dir.path(),
        &[
            "query",
            "rotations",
            "--since",
            "2026-10-25T00:00:00Z",
            "--db",
            db,
            "--run",
            "1",
            "--as-of",
            AS_OF,
            "--format",
            "json",
        ],
    );
    let before = stdout_of(
        dir.path(),
        &[
            "query",
            "--db",
            db,
            "--run",
            "1",
            "--as-of",
            AS_OF,
            "--format",
            "json",
            "rotations",
            "--since",
            "2026-10-25T00:00:00Z",
        ],
    );
    assert_eq!(after, before);
    let doc: serde_json::Value = serde_json::from_str(&after).unwrap();
    assert_eq!(doc["run"], 1, "{after}");
    assert!(!doc["rows"].as_array().unwrap().is_empty(), "{after}");

    // --run after the nested subcommand is the run asked for, not the latest.
    let out = credaudit()
        .current_dir(dir.path())
        .args(["query", "rotations", "--db", db, "--run", "7"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no run 7"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bash_completions_name_the_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let script = stdout_of(dir.path(), &["completions", "bash"]);
    assert!(script.contains("credaudit"), "{script}");
    for subcommand in ["scan", "query", "rotations", "completions"] {
        assert!(script.contains(subcommand), "no {subcommand} in {script}");
    }
    let out = credaudit()
        .args(["completions", "cmd.exe"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_man_page_is_roff() {
    let dir = tempfile::tempdir().unwrap();
    let page = stdout_of(dir.path(), &["man"]);
    assert!(page.contains(".TH credaudit 1"), "{page}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    assert!(page.contains("scan"), "{page}");
}
