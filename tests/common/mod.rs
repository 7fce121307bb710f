//! Shared helpers for the integration tests: run the real binary, copy fixtures.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub const AS_OF: &str = "2026-11-01T00:00:00Z";

/// The credaudit binary under test.
pub fn credaudit() -> Command {
    Command::cargo_bin("credaudit").expect("binary built")
}

pub fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Copies a directory tree (fixtures are small).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Runs a scan and returns (exit code, stdout, stderr).
pub fn scan(from: &Path, db: &Path, out: Option<&Path>, extra: &[&str]) -> (i32, String, String) {
    let mut cmd = credaudit();
    cmd.arg("scan")
        .arg("--from")
        .arg(from)
        .arg("--db")
        .arg(db)
        .args(["--as-of", AS_OF]);
    if let Some(out) = out {
        cmd.arg("--out").arg(out);
    }
    cmd.args(extra);
    let output = cmd.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Number of runs in a snapshot file.
pub fn run_count(db: &Path) -> usize {
    if !db.exists() {
        return 0;
    }
    credaudit::snapshot::Snapshot::open_existing(db)
        .unwrap()
        .runs()
        .unwrap()
        .len()
}

/// (rule, credential id) of every finding of a findings.json document.
pub fn rule_credential_pairs(findings: &serde_json::Value) -> BTreeSet<(String, String)> {
    findings["findings"]
        .as_array()
        .expect("findings.json has a findings array")
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["credential"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// (rule, credential id) of every finding in the findings.json of the bundle at `bundle`.
pub fn findings(bundle: &Path) -> BTreeSet<(String, String)> {
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("findings.json")).unwrap()).unwrap();
    rule_credential_pairs(&doc)
}
