//! Per-rule fixtures: every folder `tests/rules/<rule-id>/` is a minimal export (the layout of
//! docs/export-format.md, with the inventory, history, waivers and CloudTrail logs the rule needs)
//! holding at least one credential that passes the rule and one that fails it. Its
//! `expected.json` lists every finding a scan of the folder gives, of every rule, so the
//! comparison is exact: a rule that stops firing, fires twice, or fires on the passing credential
//! fails it. It also names the passing credentials, which must be among those scanned. Each
//! folder is scanned alone, into a fresh snapshot, as of 2026-11-01T00:00:00Z.
//!
//! Adding a rule means adding a folder; no test code. The registry and the folders must agree:
//! a rule without a folder and a folder that names no rule both fail.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Rules whose fixture is still to be written. Empty: every rule has its folder. Only ever
/// remove names from here; a rule listed here that has a folder fails the test.
const KNOWN_MISSING: &[&str] = &[];

/// One finding as compared: rule, credential, severity, and whether a waiver in force covers it.
type Key = (String, String, String, bool);

fn fixtures_dir() -> PathBuf {
    common::repo("tests/rules")
}

fn folders() -> BTreeSet<String> {
    std::fs::read_dir(fixtures_dir())
        .expect("tests/rules exists")
        .map(|e| e.expect("readable entry"))
        .filter(|e| e.file_type().expect("file type").is_dir())
        .map(|e| e.file_name().into_string().expect("UTF-8 folder name"))
        .collect()
}

fn field<'a>(finding: &'a Value, name: &str, whose: &str) -> &'a str {
    finding[name]
        .as_str()
        .unwrap_or_else(|| panic!("{whose}: finding without a string `{name}`: {finding}"))
}

/// What a folder's `expected.json` says: `{"passing": [credential ids], "findings": [{"rule",
/// "credential", "severity", "waived"?}]}`. `passing` names the credentials the folder's own rule
/// must not fire on; `findings` is every finding of every rule (extra members, such as `why`, are
/// notes for the reader).
struct Expected {
    passing: Vec<String>,
    findings: BTreeSet<Key>,
}

fn expected(folder: &Path) -> Expected {
    let path = folder.join("expected.json");
    let whose = path.display().to_string();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{whose}: {e}"));
    let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{whose}: {e}"));
    let passing: Vec<String> = json["passing"]
        .as_array()
        .unwrap_or_else(|| panic!("{whose}: expected a `passing` array of credential ids"))
        .iter()
        .map(|id| {
            id.as_str()
                .unwrap_or_else(|| panic!("{whose}: passing: {id} is not a string"))
                .to_string()
        })
        .collect();
    let mut findings = BTreeSet::new();
    for f in json["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("{whose}: expected a `findings` array"))
    {
        let key = (
            field(f, "rule", &whose).to_string(),
            field(f, "credential", &whose).to_string(),
            field(f, "severity", &whose).to_string(),
            f["waived"].as_bool().unwrap_or(false),
        );
        assert!(
            findings.insert(key.clone()),
            "{whose}: {key:?} listed twice"
        );
    }
    Expected { passing, findings }
}

/// What a scan of the folder gives: its findings, and the ids of every credential it knows
/// (observed or declared), from the bundle's inventory.csv.
struct Scanned {
    findings: Vec<Key>,
    credentials: BTreeSet<String>,
}

/// Scans the folder with the real binary, alone, into a fresh snapshot.
fn scan(folder: &Path) -> Scanned {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("snapshot.db");
    let out = tmp.path().join("out");
    let (code, stdout, stderr) = common::scan(folder, &db, Some(&out), &[]);
    assert_eq!(
        code,
        0,
        "scan of {} exited {code}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        folder.display()
    );
    let json: Value =
        serde_json::from_slice(&std::fs::read(out.join("findings.json")).unwrap()).unwrap();
    let whose = folder.display().to_string();
    let findings = json["findings"]
        .as_array()
        .expect("findings.json has a findings array")
        .iter()
        .map(|f| {
            (
                field(f, "rule", &whose).to_string(),
                field(f, "credential", &whose).to_string(),
                field(f, "severity", &whose).to_string(),
                !f["waiver"].is_null(),
            )
        })
        .collect();
    let inventory = std::fs::read_to_string(out.join("inventory.csv")).unwrap();
    let mut lines = inventory.lines();
    assert!(
        lines.next().is_some_and(|h| h.starts_with("credential,")),
        "inventory.csv starts with the credential column"
    );
    let credentials = lines
        .filter_map(|line| line.split(',').next())
        .map(str::to_string)
        .collect();
    Scanned {
        findings,
        credentials,
    }
}

#[test]
fn every_rule_has_a_fixture_and_every_fixture_a_rule() {
    let rules: BTreeSet<String> = credaudit::rules::ids()
        .into_iter()
        .map(str::to_string)
        .collect();
    let folders = folders();
    let known_missing: BTreeSet<String> = KNOWN_MISSING.iter().map(|s| s.to_string()).collect();
    let missing: Vec<&String> = rules
        .difference(&folders)
        .filter(|r| !known_missing.contains(*r))
        .collect();
    assert!(
        missing.is_empty(),
        "rules without a folder in tests/rules/ (add one: a minimal export, a passing and a \
         failing credential, expected.json): {missing:?}"
    );
    let stray: Vec<&String> = folders.difference(&rules).collect();
    assert!(
        stray.is_empty(),
        "folders in tests/rules/ that name no rule of the registry: {stray:?}"
    );
    let stale: Vec<&String> = known_missing.intersection(&folders).collect();
    assert!(
        stale.is_empty(),
        "KNOWN_MISSING lists rules that have a folder now; remove them: {stale:?}"
    );
    let unknown: Vec<&String> = known_missing.difference(&rules).collect();
    assert!(
        unknown.is_empty(),
        "KNOWN_MISSING lists ids that are not rules: {unknown:?}"
    );
}

#[test]
fn each_fixture_gives_exactly_its_expected_findings() {
    let mut failures = Vec::new();
    for name in folders() {
        let folder = fixtures_dir().join(&name);
        let expected = expected(&folder);
        let failing: BTreeSet<&str> = expected
            .findings
            .iter()
            .filter(|(rule, ..)| *rule == name)
            .map(|(_, credential, ..)| credential.as_str())
            .collect();
        assert!(
            !failing.is_empty() && !expected.passing.is_empty(),
            "{name}/expected.json: the folder needs a credential its rule fires on and one it \
             passes"
        );
        let scanned = scan(&folder);
        let found: BTreeSet<Key> = scanned.findings.iter().cloned().collect();
        assert_eq!(
            scanned.findings.len(),
            found.len(),
            "{name}: duplicate findings: {:?}",
            scanned.findings
        );
        let unexpected: Vec<&Key> = found.difference(&expected.findings).collect();
        let missed: Vec<&Key> = expected.findings.difference(&found).collect();
        if !unexpected.is_empty() || !missed.is_empty() {
            failures.push(format!(
                "{name}:\n  found but not expected: {unexpected:?}\n  expected but not found: {missed:?}"
            ));
        }
        for id in &expected.passing {
            if !scanned.credentials.contains(id) {
                failures.push(format!(
                    "{name}: passing credential {id} is not among the scanned credentials"
                ));
            }
            if failing.contains(id.as_str()) {
                failures.push(format!("{name}: {id} is listed as passing and failing"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
