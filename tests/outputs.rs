//! The versioned outputs: one golden per JSON document (rules, controls, findings.json,
//! remediation-plan.json, diff, query), each with its `schema_version`; and the documentation
//! generated from the rule registry (the README's rule table, `explain`, the HTML catalogue).

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

/// Stdout of a successful credaudit run.
fn stdout_of(args: &[&str]) -> String {
    let out = credaudit().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The text with its volatile values redacted: the temporary folder and the tool's version.
fn redacted(text: &str, dir: &Path) -> String {
    text.replace(dir.to_str().unwrap(), "[dir]").replace(
        &format!("\"version\": \"{}\"", env!("CARGO_PKG_VERSION")),
        "\"version\": \"[version]\"",
    )
}

/// Parses a JSON document and checks its schema version.
fn versioned(text: &str, schema_version: u64) -> Value {
    let doc: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(doc["schema_version"], schema_version, "{text}");
    doc
}

/// A scan of the demo fleet as of [`AS_OF`] into `dir/s.db`, with its bundle in `dir/bundle`.
fn demo_run(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let db = dir.join("s.db");
    let out = dir.join("bundle");
    let (code, _, stderr) = scan(&repo("fixtures/demo-fleet"), &db, Some(&out), &["-q"]);
    assert_eq!(code, 0, "{stderr}");
    (db, out)
}

/// The table of README.md's "## Rules" section: from its header row to the first line that is
/// not a table row.
fn readme_rule_table() -> String {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let section = readme
        .split_once("\n## Rules\n")
        .expect("README.md has a \"## Rules\" section")
        .1;
    let start = section
        .find("\n| rule |")
        .expect("the Rules section has a table")
        + 1;
    section[start..]
        .lines()
        .take_while(|line| line.starts_with('|'))
        .map(|line| format!("{line}\n"))
        .collect()
}

#[test]
fn the_readme_rule_table_is_generated_from_the_registry() {
    let generated = stdout_of(&["rules", "--format", "markdown"]);
    assert!(generated.lines().count() > 20, "{generated}");
    let in_readme = readme_rule_table();
    assert!(
        in_readme == generated,
        "README.md's rule table differs from `credaudit rules --format markdown`.\n\
         Regenerate it: run `cargo run -q -- rules --format markdown` and paste its output over \
         the table in README.md's \"## Rules\" section (the rule metadata, in src/rules/, is the \
         source; edit it there, not in the README).\n\n--- README.md\n{in_readme}\n--- generated\n\
         {generated}"
    );
}

#[test]
fn explain_and_the_html_catalogue_read_the_registry_metadata() {
    let rules = versioned(&stdout_of(&["rules", "--format", "json"]), 1);
    let rules = rules["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 22);
    let dir = tempfile::tempdir().unwrap();
    let (_, bundle) = demo_run(dir.path());
    let html = std::fs::read_to_string(bundle.join("index.html")).unwrap();
    for rule in rules {
        let id = rule["id"].as_str().unwrap();
        let explained = stdout_of(&["explain", id]);
        for field in ["title", "finds", "severity", "rationale", "remediation"] {
            let text = rule[field].as_str().unwrap();
            assert!(
                explained.contains(text),
                "explain {id} does not show its {field} {text:?}:\n{explained}"
            );
        }
        let title = rule["title"].as_str().unwrap();
        assert!(
            html.contains(&format!("<td class=\"mono\">{id}</td>")),
            "the HTML catalogue lacks {id}"
        );
        assert!(
            html.contains(&format!("<td>{title}</td>")),
            "the HTML catalogue does not show {id}'s title {title:?}"
        );
    }
    // The severity in words is the metadata's, not a copy.
    let overdue = stdout_of(&["explain", "rotation-overdue"]);
    assert!(
        overdue.contains("by class (A high, B medium, C/D low); critical past 1.5x"),
        "{overdue}"
    );
}

#[test]
fn golden_rules_json() {
    let text = stdout_of(&["rules", "--format", "json"]);
    versioned(&text, 1);
    insta::assert_snapshot!("rules_json", text);
}

#[test]
fn golden_controls_json() {
    let text = stdout_of(&["controls", "--format", "json"]);
    let doc = versioned(&text, 1);
    let ids: Vec<&str> = doc["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"cis-aws") && ids.contains(&"pci-dss"),
        "{ids:?}"
    );
    insta::assert_snapshot!("controls_json", text);

    let one = versioned(
        &stdout_of(&["controls", "--format", "json", "--framework", "cis-aws"]),
        1,
    );
    assert_eq!(one["frameworks"].as_array().unwrap().len(), 1);
}

#[test]
fn golden_bundle_json_documents() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bundle) = demo_run(dir.path());
    let findings = std::fs::read_to_string(bundle.join("findings.json")).unwrap();
    let doc = versioned(&findings, 1);
    assert_eq!(doc["as_of"], AS_OF);
    assert!(!doc["findings"].as_array().unwrap().is_empty());
    insta::assert_snapshot!("findings_json", redacted(&findings, dir.path()));

    let plan = std::fs::read_to_string(bundle.join("remediation-plan.json")).unwrap();
    let doc = versioned(&plan, 1);
    assert_eq!(doc["as_of"], AS_OF);
    assert!(!doc["jobs"].as_array().unwrap().is_empty());
    insta::assert_snapshot!("remediation_plan_json", redacted(&plan, dir.path()));
}

#[test]
fn golden_query_json() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = demo_run(dir.path());
    let text = stdout_of(&[
        "query",
        "rotations",
        "--since",
        "2026-10-31T00:00:00Z",
        "--db",
        db.to_str().unwrap(),
        "--as-of",
        AS_OF,
        "--format",
        "json",
    ]);
    let doc = versioned(&text, 1);
    assert_eq!(doc["query"], "rotations");
    assert_eq!(doc["run"], 1);
    assert_eq!(doc["as_of"], AS_OF);
    let rows = doc["rows"].as_array().unwrap();
    assert!(!rows.is_empty(), "{text}");
    let columns = doc["columns"].as_array().unwrap();
    for row in rows {
        let keys: Vec<&String> = row.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            columns
                .iter()
                .map(|c| c.as_str().unwrap())
                .collect::<Vec<_>>()
        );
        assert!(row["time"].as_str().unwrap() >= "2026-10-31");
    }
    insta::assert_snapshot!("query_rotations_json", redacted(&text, dir.path()));
}

#[test]
fn golden_diff_json() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet");
    copy_dir(&repo("fixtures/demo-fleet"), &fleet);
    let db = dir.path().join("s.db");
    assert_eq!(scan(&fleet, &db, None, &["-q"]).0, 0);

    // A finding fixed: the root key of the first account is deleted.
    let report = fleet.join("aws/111122223333/iam/credential-report.csv");
    let text = std::fs::read_to_string(&report).unwrap();
    let fixed: Vec<String> = text
        .lines()
        .map(|line| {
            if line.starts_with("<root_account>") {
                let mut cells: Vec<&str> = line.split(',').collect();
                cells[8] = "false";
                cells.join(",")
            } else {
                line.to_string()
            }
        })
        .collect();
    std::fs::write(&report, fixed.join("\n") + "\n").unwrap();
    // A secret added outside the inventory.
    let secrets_path = fleet.join("aws/111122223333/secretsmanager/us-east-1/list-secrets.json");
    let mut secrets: Value =
        serde_json::from_slice(&std::fs::read(&secrets_path).unwrap()).unwrap();
    let mut added = secrets["SecretList"][0].clone();
    added["ARN"] =
        "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/new-agent/key-AbCdEf".into();
    added["Name"] = "prod/new-agent/key".into();
    secrets["SecretList"].as_array_mut().unwrap().push(added);
    std::fs::write(&secrets_path, serde_json::to_vec_pretty(&secrets).unwrap()).unwrap();
    let (code, _, stderr) = scan(&fleet, &db, None, &["-q"]);
    assert_eq!(code, 0, "{stderr}");

    let text = stdout_of(&["diff", "--format", "json", "--db", db.to_str().unwrap()]);
    let doc = versioned(&text, 1);
    assert_eq!(
        (doc["from_run"].as_i64(), doc["to_run"].as_i64()),
        (Some(1), Some(2))
    );
    let rules = |list: &str| -> Vec<String> {
        doc[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rule"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        rules("resolved").contains(&"root-access-key".to_string()),
        "{text}"
    );
    assert!(
        rules("new").contains(&"unmanaged-credential".to_string()),
        "{text}"
    );
    // Findings as every report shows them: a fingerprint, evidence as key/value objects.
    let first = &doc["new"][0];
    assert!(first["fingerprint"].is_string(), "{text}");
    insta::assert_snapshot!("diff_json", redacted(&text, dir.path()));
}
