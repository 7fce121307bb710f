//! The nightly-CI workflow: diff across two scans of a changing fleet, --fail-on-new, waivers,
//! and the snapshot's hash chain.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

fn replace_in_tree(dir: &Path, from: &str, to: &str) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            replace_in_tree(&path, from, to);
        } else {
            let text = std::fs::read_to_string(&path).unwrap();
            if text.contains(from) {
                std::fs::write(&path, text.replace(from, to)).unwrap();
            }
        }
    }
}

/// The access key id of an IAM user in the demo fleet's first account.
fn key_of(fleet: &Path, user: &str) -> String {
    let doc: Value = serde_json::from_slice(
        &std::fs::read(fleet.join("aws/111122223333/iam/list-access-keys.json")).unwrap(),
    )
    .unwrap();
    doc.as_array()
        .unwrap()
        .iter()
        .flat_map(|page| page["AccessKeyMetadata"].as_array().unwrap())
        .find(|k| k["UserName"] == user)
        .map(|k| k["AccessKeyId"].as_str().unwrap().to_string())
        .unwrap()
}

fn diff_json(db: &Path) -> Value {
    let out = credaudit()
        .args(["diff", "--format", "json", "--db"])
        .arg(db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn pairs(list: &Value) -> Vec<(String, String)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().into(),
                f["credential"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[test]
fn diff_of_a_changing_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet");
    copy_dir(&repo("fixtures/demo-fleet"), &fleet);
    let db = dir.path().join("s.db");
    assert_eq!(scan(&fleet, &db, None, &["-q"]).0, 0);

    // A key rotated: same user, new key id (still too old, so still overdue under the new id).
    let old_key = key_of(&fleet, "svc-agent-coder-05");
    let new_key = "AKIAROTATED000000001";
    replace_in_tree(&fleet, &old_key, new_key);
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

    let (code, _, stderr) = scan(&fleet, &db, None, &["--fail-on-new", "critical"]);
    assert_eq!(code, 0, "nothing new is critical: {stderr}");
    assert!(stderr.contains("since run 1:"), "{stderr}");
    let d = diff_json(&db);
    assert_eq!(d["from_run"], 1);
    assert_eq!(d["to_run"], 2);
    let new = pairs(&d["new"]);
    let resolved = pairs(&d["resolved"]);
    assert!(
        new.contains(&("rotation-overdue".into(), new_key.into())),
        "{new:?}"
    );
    assert!(
        resolved.contains(&("rotation-overdue".into(), old_key.clone())),
        "{resolved:?}"
    );
    let added_arn =
        "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/new-agent/key-AbCdEf";
    assert!(
        new.contains(&("unmanaged-credential".into(), added_arn.into())),
        "{new:?}"
    );
    assert!(
        resolved.contains(&(
            "root-access-key".into(),
            "arn:aws:iam::111122223333:root/access-key-1".into()
        )),
        "{resolved:?}"
    );
    assert!(d["persisting"].as_u64().unwrap() > 20);

    // The unmanaged secret is new and high: gating on new high findings fails.
    assert_eq!(
        scan(&fleet, &db, None, &["-q", "--fail-on-new", "high"]).0,
        0,
        "run 3 has nothing new"
    );
    let (code, _, _) = scan(
        &repo("fixtures/demo-fleet"),
        &db,
        None,
        &["-q", "--fail-on-new", "critical"],
    );
    assert_eq!(code, 1, "the root key is back: new and critical");
}

fn write_waivers(fleet: &Path, body: &str) {
    std::fs::write(fleet.join("waivers.toml"), body).unwrap();
}

#[test]
fn waivers_active_expired_unmatched_and_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet");
    copy_dir(&repo("fixtures/demo-fleet"), &fleet);
    let db = dir.path().join("s.db");
    let out = dir.path().join("out");
    write_waivers(
        &fleet,
        r#"
[[waivers]]
rule = "root-access-key"
credential = "arn:aws:iam::111122223333:root/*"
reason = "break-glass key in the safe"
approver = "ciso"
ticket = "SEC-1"
expires = 2027-01-01

[[waivers]]
rule = "root-access-key"
credential = "arn:aws:iam::444455556666:root/*"
reason = "migration"
approver = "ciso"
ticket = "SEC-2"
expires = 2026-10-01

[[waivers]]
rule = "unused-credential"
credential = "AKIADOESNOTEXIST0000"
reason = "old"
approver = "ciso"
ticket = "SEC-3"
expires = 2027-01-01
"#,
    );
    let (code, _, stderr) = scan(&fleet, &db, Some(&out), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("SEC-3") && stderr.contains("matches no finding"),
        "{stderr}"
    );
    // The bundle says so too, not only the terminal: summary.md and the HTML name it.
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        summary.contains("**1 waiver(s) match no finding**")
            && summary.contains("`unused-credential` on AKIADOESNOTEXIST0000 (SEC-3"),
        "{summary}"
    );
    assert!(
        !summary.contains("SEC-1 "),
        "matched waivers are not listed"
    );
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("id=\"unmatched-waivers\""));
    assert!(
        html.contains("<code>AKIADOESNOTEXIST0000</code> (SEC-3"),
        "banner lists it"
    );
    let findings: Value =
        serde_json::from_slice(&std::fs::read(out.join("findings.json")).unwrap()).unwrap();
    let list = findings["findings"].as_array().unwrap();
    let root1 = list
        .iter()
        .find(|f| f["credential"] == "arn:aws:iam::111122223333:root/access-key-1")
        .unwrap();
    assert_eq!(root1["waiver"]["ticket"], "SEC-1", "{root1}");
    let root2 = list
        .iter()
        .find(|f| {
            f["rule"] == "root-access-key"
                && f["credential"] == "arn:aws:iam::444455556666:root/access-key-2"
        })
        .unwrap();
    assert!(
        root2.get("waiver").is_none_or(Value::is_null),
        "expired waivers do not apply"
    );
    assert!(
        list.iter().any(|f| f["rule"] == "waiver-expired"
            && f["credential"] == "arn:aws:iam::444455556666:root/access-key-2"),
        "an expired waiver raises waiver-expired"
    );
    // The waived critical no longer gates; the unwaived one still does.
    assert_eq!(
        scan(&fleet, &db, None, &["-q", "--fail-on", "critical"]).0,
        1
    );

    // A waiver with a field missing is bad input: exit 2, the file and line named, no run added.
    let runs = run_count(&db);
    write_waivers(
        &fleet,
        "[[waivers]]\nrule = \"root-access-key\"\ncredential = \"*\"\nreason = \"r\"\napprover = \"a\"\nexpires = 2027-01-01\n",
    );
    let (code, _, stderr) = scan(&fleet, &db, None, &[]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("waivers.toml") && stderr.contains("missing field `ticket`"),
        "{stderr}"
    );
    assert_eq!(run_count(&db), runs);
}

#[test]
fn verify_db_checks_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    for _ in 0..2 {
        assert_eq!(scan(&repo("fixtures/demo-fleet"), &db, None, &["-q"]).0, 0);
    }
    let verify = || {
        credaudit()
            .args(["verify", "--db"])
            .arg(&db)
            .output()
            .unwrap()
    };
    let ok = verify();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    // The bundle of the newest run carries the chain head that verify prints.
    let out = dir.path().join("out");
    assert_eq!(
        credaudit()
            .args(["report", "--db"])
            .arg(&db)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap()
            .status
            .code(),
        Some(0)
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let head = manifest["chain_head"].as_str().unwrap().to_string();
    assert_eq!(head.len(), 64);
    assert!(
        String::from_utf8_lossy(&ok.stdout).contains(&format!("head {head}")),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        summary.contains(&format!("| Chain head | `{head}` |")),
        "{summary}"
    );
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        // Run 1's observed credentials pointed at another section's bytes.
        conn.execute_batch(
            "DROP TRIGGER run_sections_no_update;
             UPDATE run_sections SET blob = (SELECT blob FROM run_sections WHERE run_id = 1 AND name = 'owners')
               WHERE run_id = 1 AND name = 'observed_credentials';",
        )
        .unwrap();
    }
    let bad = verify();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("run 1 is broken"));
}

#[test]
fn simulate_and_query_from_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    assert_eq!(scan(&repo("fixtures/demo-fleet"), &db, None, &["-q"]).0, 0);
    let sim = dir.path().join("sim");
    let out = credaudit()
        .args(["simulate", "--db"])
        .arg(&db)
        .arg("--out")
        .arg(&sim)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value =
        serde_json::from_slice(&std::fs::read(sim.join("simulation.json")).unwrap()).unwrap();
    // The demo history covers 60 days: the 12-month question can only be partly answered.
    let twelve = doc["answers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "rotation-events-12m")
        .unwrap();
    assert_eq!(twelve["status"], "partial");
    assert!(
        twelve["missing"][0]
            .as_str()
            .unwrap()
            .starts_with("history starts")
    );
    assert!(sim.join("rotation-events-12m.csv").is_file());
    let completeness = doc["completeness"].as_f64().unwrap();
    assert!(completeness > 0.0 && completeness < 100.0, "{completeness}");

    let out = credaudit()
        .args(["query", "--db"])
        .arg(&db)
        .args([
            "--format",
            "json",
            "rotations",
            "--since",
            "2026-10-25T00:00:00Z",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["schema_version"], 1);
    let rows = doc["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .all(|r| r["time"].as_str().unwrap() >= "2026-10-25")
    );

    let out = credaudit()
        .args(["query", "--db"])
        .arg(&db)
        .args(["proof", "no-such-credential"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-credential"));
}

#[test]
fn usage_baselines_carry_over_between_runs_without_the_old_logs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let logs = repo("fixtures/cloudtrail/invictus-aws-dataset/CloudTrail");
    let logs = logs.to_str().unwrap();
    let (code, _, stderr) = scan(
        &repo("fixtures/demo-fleet"),
        &db,
        None,
        &["-q", "--cloudtrail", logs],
    );
    assert_eq!(code, 0, "{stderr}");
    // The next night: no logs given, yet the usage learnt from them is still in the snapshot.
    assert_eq!(scan(&repo("fixtures/demo-fleet"), &db, None, &["-q"]).0, 0);
    let snapshot = credaudit::snapshot::Snapshot::open_existing(&db).unwrap();
    let (first, _) = snapshot.usage(1).unwrap();
    let (second, _) = snapshot.usage(2).unwrap();
    assert!(!first.is_empty(), "the real logs give usage");
    assert_eq!(first, second);
    let cloudtrail_events = snapshot
        .facts(1)
        .unwrap()
        .events
        .iter()
        .filter(|e| e.source == "cloudtrail")
        .count();
    assert!(
        cloudtrail_events > 0,
        "lifecycle calls in the logs become evidence"
    );
}
