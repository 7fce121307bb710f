//! `generate --credentials`: fleets at scale whose ground truth a scan must reproduce exactly.
//! Each case generates a fleet with the real binary, scans it at the same as-of, and compares
//! the (rule, credential) pairs of the findings with `expected-findings.json`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// Every rule the generator plants, at `rate`.
fn all_rates(rate: &str) -> String {
    credaudit::generate::PLANTED_AT_SCALE
        .map(|rule| format!("{rule}={rate}"))
        .join(",")
}

fn generate(out: &Path, as_of: &str, args: &[&str]) {
    let output = credaudit()
        .args(["generate", "--quiet", "--as-of", as_of, "--out"])
        .arg(out)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "generate {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn pairs(list: &Value) -> BTreeSet<(String, String)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["credential"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Generates, scans at the same as-of, and requires the findings to equal the truth. Returns the
/// truth's findings per rule.
fn check(name: &str, as_of: &str, args: &[&str]) -> BTreeMap<String, usize> {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet");
    generate(&fleet, as_of, args);
    let out = dir.path().join("bundle");
    let output = credaudit()
        .args(["scan", "--quiet", "--as-of", as_of, "--from"])
        .arg(&fleet)
        .arg("--db")
        .arg(dir.path().join("s.db"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{name}: scan failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let truth = read_json(&fleet.join("expected-findings.json"));
    let expected = pairs(&truth["expected"]);
    let got = pairs(&read_json(&out.join("findings.json"))["findings"]);
    let missing: Vec<_> = expected.difference(&got).collect();
    let extra: Vec<_> = got.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{name} ({args:?}):\nmissing {missing:#?}\nextra {extra:#?}"
    );
    let mut per_rule = BTreeMap::new();
    for (rule, _) in &expected {
        *per_rule.entry(rule.clone()).or_insert(0) += 1;
    }
    per_rule
}

#[test]
fn high_rates_over_a_month_with_cloudtrail() {
    let high = all_rates("0.3");
    // A small fleet with every defect at 30 %, a month of history and CloudTrail.
    let rules = check(
        "high rates, 30 days",
        AS_OF,
        &[
            "--credentials",
            "700",
            "--seed",
            "5",
            "--days",
            "30",
            "--rate",
            &high,
            "--cloudtrail-events",
            "30000",
        ],
    );
    // At 30 % every rule fires, the usage rules included.
    for rule in [
        "anomalous-usage",
        "auth-failure-spike",
        "usage-limit-exceeded",
        "incident-not-remediated",
        "credential-reuse",
        "multiple-active-keys",
        "rotation-schedule-drift",
        "secret-unused",
    ] {
        assert!(rules.get(rule).is_some_and(|&n| n > 0), "{rule}: {rules:?}");
    }
}

#[test]
fn default_rates_over_a_year_without_cloudtrail() {
    // Default rates, a year of history, three accounts and regions, no CloudTrail.
    check(
        "defaults, no CloudTrail",
        AS_OF,
        &[
            "--credentials",
            "2500",
            "--seed",
            "11",
            "--accounts",
            "3",
            "--regions",
            "us-east-1,eu-west-1,ap-south-1",
        ],
    );
}

#[test]
fn mixed_rates_at_an_as_of_off_the_hour() {
    // Given account ids, one region, an as-of off the hour, some defects off and the usage
    // rules high.
    let rules = check(
        "mixed rates, odd as-of",
        "2026-03-15T13:37:11Z",
        &[
            "--credentials",
            "1200",
            "--seed",
            "21",
            "--accounts",
            "111111111111,222222222222",
            "--regions",
            "ap-southeast-2",
            "--rate",
            "rotation-overdue=0,unmanaged-credential=0",
            "--rate",
            "anomalous-usage=0.2,auth-failure-spike=0.2,incident-not-remediated=0.2",
            "--cloudtrail-events",
            "40000",
        ],
    );
    assert!(!rules.contains_key("rotation-overdue"), "{rules:?}");
    assert!(!rules.contains_key("unmanaged-credential"), "{rules:?}");
}

#[test]
fn every_defect_off_gives_a_clean_fleet() {
    // Every defect off: a clean fleet.
    let rules = check(
        "all off",
        AS_OF,
        &[
            "--credentials",
            "200",
            "--seed",
            "3",
            "--rate",
            &all_rates("0"),
            "--cloudtrail-events",
            "10000",
        ],
    );
    assert!(rules.is_empty(), "{rules:?}");
}

/// Every file under `dir`, by relative path.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn same_arguments_give_identical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let args = |seed: &'static str| {
        [
            "--credentials",
            "300",
            "--seed",
            seed,
            "--days",
            "60",
            "--cloudtrail-events",
            "5000",
        ]
    };
    generate(&dir.path().join("a"), AS_OF, &args("1"));
    generate(&dir.path().join("b"), AS_OF, &args("1"));
    generate(&dir.path().join("c"), AS_OF, &args("2"));
    let (a, b, c) = (
        files(&dir.path().join("a")),
        files(&dir.path().join("b")),
        files(&dir.path().join("c")),
    );
    assert!(
        a.keys().any(|p| p.starts_with("cloudtrail")),
        "{:?}",
        a.keys()
    );
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, bytes) in &a {
        assert!(bytes == &b[path], "{} differs", path.display());
    }
    for name in ["inventory.toml", "history.jsonl", "expected-findings.json"] {
        assert_ne!(a[Path::new(name)], c[Path::new(name)], "{name}");
    }
    // Regenerating in place replaces the logs of the earlier fleet.
    generate(&dir.path().join("a"), AS_OF, &args("2"));
    assert_eq!(files(&dir.path().join("a")), c);
}

#[test]
fn bad_rates_are_usage_errors_naming_the_value() {
    let dir = tempfile::tempdir().unwrap();
    for (rate, expected) in [
        ("no-such-rule=0.1", "\"no-such-rule=0.1\": unknown rule"),
        (
            "rotation-overdue=1.5",
            "\"rotation-overdue=1.5\": expected a rate",
        ),
        (
            "rotation-overdue=-0.1",
            "\"rotation-overdue=-0.1\": expected a rate",
        ),
        ("rotation-overdue", "\"rotation-overdue\": expected RULE=P"),
    ] {
        let output = credaudit()
            .args(["generate", "--credentials", "10", "--rate", rate, "--out"])
            .arg(dir.path().join("x"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{rate}: {stderr}");
        assert!(stderr.contains(expected), "{rate}: {stderr}");
    }
    assert!(!dir.path().join("x").join("history.jsonl").exists());
}
