//! Live AWS collection against a real AWS emulator: moto's server (pinned in
//! tests/moto/requirements.txt, installed into tests/moto/.venv by scripts/test.sh), run
//! in-process by tests/moto/fleet_server.py with a fleet whose ages are backdated, plus a small
//! CloudTrail LookupEvents responder (moto has none). Every test runs the real binary.
//!
//! A test never passes because the emulator is missing: it fails and says how to install it.

mod common;
#[path = "support/moto.rs"]
mod moto;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use common::{AS_OF, findings};
use moto::{Server, credaudit, read_jsonl, run};

const BASE_ACCOUNT: &str = "123456789012";
const SECOND_ACCOUNT: &str = "222222222222";

/// moto with the test fleet, its manifest (key ids, secret ARNs, planted values) and its
/// request log.
struct Emulator {
    server: Server,
    manifest: Value,
    requests: PathBuf,
}

impl Emulator {
    fn start(dir: &Path) -> Emulator {
        Emulator::start_with(dir, &[])
    }

    /// moto with the fleet `fleet_args` ask of tests/moto/fleet_server.py (`--fleet bench …`).
    fn start_with(dir: &Path, fleet_args: &[&str]) -> Emulator {
        let manifest = dir.join("fleet.json");
        let requests = dir.join("moto-requests.jsonl");
        let mut args = vec![
            "--as-of",
            AS_OF,
            "--manifest",
            manifest.to_str().unwrap(),
            "--request-log",
            requests.to_str().unwrap(),
        ];
        args.extend(fleet_args);
        let server = Server::start("fleet_server.py", &args, &dir.join("moto.stderr"));
        let manifest = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
        Emulator {
            server,
            manifest,
            requests,
        }
    }

    fn key(&self, account: &str, user_slot: &str) -> String {
        self.manifest["accounts"][account]["keys"][user_slot]
            .as_str()
            .unwrap_or_else(|| panic!("no key {user_slot} in {account}"))
            .to_string()
    }

    fn secret(&self, account: &str, region_name: &str) -> String {
        self.manifest["accounts"][account]["secrets"][region_name]
            .as_str()
            .unwrap_or_else(|| panic!("no secret {region_name} in {account}"))
            .to_string()
    }

    fn planted(&self) -> Vec<String> {
        self.manifest["planted"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    /// The operations the scanner sent, in order (the log starts after the fleet was made).
    fn operations(&self) -> Vec<String> {
        read_jsonl(&self.requests)
            .iter()
            .map(|r| r["operation"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// The declared inventory of the test fleet: most of it, with class, owner and automation.
    fn write_inventory(&self, path: &Path) {
        let entry = |id: &str, kind: &str, class: &str, automated: bool| {
            format!(
                "[[credentials]]\nid = \"{id}\"\nkind = \"{kind}\"\nclass = \"{class}\"\n\
                 owner = \"team-payments\"\nautomated = {automated}\n\n"
            )
        };
        let mut toml = String::from("[[owners]]\nid = \"team-payments\"\nstatus = \"active\"\n\n");
        for (slot, class) in [
            ("alice/0", "B"),
            ("bob/0", "C"),
            ("carol/0", "C"),
            ("carol/1", "C"),
            ("erin/0", "C"),
        ] {
            toml += &entry(
                &self.key(BASE_ACCOUNT, slot),
                "iam-access-key",
                class,
                false,
            );
        }
        toml += &entry(
            &self.key(SECOND_ACCOUNT, "frank/0"),
            "iam-access-key",
            "B",
            false,
        );
        toml += &entry("prod/db-password", "secret", "B", true);
        toml += &entry("prod/api-key", "secret", "B", true);
        toml += &entry("prod/placeholder", "secret", "C", false);
        toml += &entry("team2/token", "secret", "B", true);
        std::fs::write(path, toml).unwrap();
    }
}

/// `--aws` arguments for the emulator: both accounts, both regions, no CloudTrail.
fn live_args(emulator: &Emulator) -> Vec<String> {
    [
        "--aws",
        "--endpoint-url",
        &emulator.server.url(),
        "--region",
        "us-east-1",
        "--region",
        "eu-west-1",
        "--assume-role",
        emulator.manifest["role"].as_str().unwrap(),
        "--external-id",
        emulator.manifest["external_id"].as_str().unwrap(),
        "--cloudtrail-window",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(files_under(&path));
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn live_scan_of_two_accounts_and_two_regions_finds_the_fleets_problems() {
    let tmp = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(tmp.path());
    let inventory = tmp.path().join("inventory.toml");
    emulator.write_inventory(&inventory);
    let (export, bundle, db) = (
        tmp.path().join("export"),
        tmp.path().join("bundle"),
        tmp.path().join("scan.db"),
    );

    let output = run(credaudit()
        .arg("scan")
        .args(live_args(&emulator))
        .arg("--export")
        .arg(&export)
        .arg("--inventory")
        .arg(&inventory)
        .args(["--as-of", AS_OF, "--db"])
        .arg(&db)
        .arg("--out")
        .arg(&bundle));
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("collected 2 account(s)"), "{stderr}");

    let found = findings(&bundle);
    let expect = [
        // 100-day-old key of a 30-day class.
        ("rotation-overdue", emulator.key(BASE_ACCOUNT, "alice/0")),
        // Created 60 days ago, never used.
        ("unused-credential", emulator.key(BASE_ACCOUNT, "bob/0")),
        // Two active keys for three days.
        (
            "multiple-active-keys",
            emulator.key(BASE_ACCOUNT, "carol/0"),
        ),
        // Not in the inventory.
        ("unmanaged-credential", emulator.key(BASE_ACCOUNT, "dave/0")),
        // Deactivated 150 days ago, never deleted.
        (
            "inactive-key-lingering",
            emulator.key(BASE_ACCOUNT, "erin/0"),
        ),
        // Declared automated, AWS rotation disabled.
        (
            "rotation-not-automated",
            emulator.secret(BASE_ACCOUNT, "us-east-1/prod/db-password"),
        ),
        // The second region and the second account are scanned.
        (
            "unmanaged-credential",
            emulator.secret(BASE_ACCOUNT, "eu-west-1/eu/llm-key"),
        ),
        ("rotation-overdue", emulator.key(SECOND_ACCOUNT, "frank/0")),
        (
            "unmanaged-credential",
            emulator.secret(SECOND_ACCOUNT, "eu-west-1/team2/eu-token"),
        ),
    ];
    for (rule, id) in &expect {
        assert!(
            found.contains(&(rule.to_string(), id.clone())),
            "expected {rule} for {id}; found {found:#?}"
        );
    }
    // And not what is fine: the secret AWS rotates as declared, the recent managed key.
    let api_key = emulator.secret(BASE_ACCOUNT, "us-east-1/prod/api-key");
    assert!(!found.iter().any(|(rule, id)| {
        id == &api_key
            && [
                "rotation-not-automated",
                "rotation-overdue",
                "unmanaged-credential",
            ]
            .contains(&rule.as_str())
    }));
    assert!(!found.iter().any(|(_, id)| id.contains("prod/retired")));

    // The two keys grace made in one second: the report cannot tell their slots apart, so
    // their last use was asked for; the used one is not called unused, the other is.
    assert!(found.contains(&(
        "unused-credential".to_string(),
        emulator.key(BASE_ACCOUNT, "grace/1")
    )));
    assert!(!found.contains(&(
        "unused-credential".to_string(),
        emulator.key(BASE_ACCOUNT, "grace/0")
    )));

    // Every file of the layout, written in both accounts; the deleted secret is left out.
    for account in [BASE_ACCOUNT, SECOND_ACCOUNT] {
        for file in [
            "credential-report.csv",
            "get-account-authorization-details.json",
            "list-access-keys.json",
        ] {
            assert!(
                export.join(format!("aws/{account}/iam/{file}")).is_file(),
                "{account} {file}"
            );
        }
        for region in ["us-east-1", "eu-west-1"] {
            let list = export.join(format!(
                "aws/{account}/secretsmanager/{region}/list-secrets.json"
            ));
            assert!(list.is_file(), "{}", list.display());
        }
    }
    // Last use asked for only where the report could not tell: grace's two keys.
    let asked: Value = serde_json::from_str(
        &std::fs::read_to_string(export.join(format!(
            "aws/{BASE_ACCOUNT}/iam/get-access-key-last-used.json"
        )))
        .unwrap(),
    )
    .unwrap();
    let asked: BTreeSet<&str> = asked
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["AccessKeyId"].as_str().unwrap())
        .collect();
    let grace: BTreeSet<String> = ["grace/0", "grace/1"]
        .iter()
        .map(|slot| emulator.key(BASE_ACCOUNT, slot))
        .collect();
    assert_eq!(
        asked,
        grace.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    assert!(
        !export
            .join(format!(
                "aws/{SECOND_ACCOUNT}/iam/get-access-key-last-used.json"
            ))
            .exists()
    );
    let list = std::fs::read_to_string(export.join(format!(
        "aws/{BASE_ACCOUNT}/secretsmanager/us-east-1/list-secrets.json"
    )))
    .unwrap();
    assert!(!list.contains("prod/retired"));
    // The placeholder secret (no value, so no version map) was described; nothing else was.
    let described: Value = serde_json::from_str(
        &std::fs::read_to_string(export.join(format!(
            "aws/{BASE_ACCOUNT}/secretsmanager/us-east-1/describe-secret.json"
        )))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(described.as_array().unwrap().len(), 1);
    assert_eq!(described[0]["Name"], "prod/placeholder");
    // Coverage: nothing failed; the two keys that took the per-key call are said.
    let coverage: Value =
        serde_json::from_str(&std::fs::read_to_string(export.join("coverage.json")).unwrap())
            .unwrap();
    assert_eq!(
        coverage,
        serde_json::json!([{
            "account": BASE_ACCOUNT,
            "region": "global",
            "api": "iam:get-access-key-last-used:fallback",
            "ok": true,
            "error": null,
            "records": 2,
        }])
    );

    // What was sent: only what the read-only policy allows (plus the AssumeRole the base
    // credentials make), never a secret value.
    let operations = emulator.operations();
    let policy: Value = serde_json::from_slice(&run(credaudit().arg("iam-policy")).stdout).unwrap();
    let allowed: BTreeSet<String> = policy["Statement"][0]["Action"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().split(':').nth(1).unwrap().to_string())
        .chain(["AssumeRole".to_string()])
        .collect();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for op in &operations {
        assert!(allowed.contains(op), "{op} is not in the policy");
        *counts.entry(op).or_default() += 1;
    }
    assert!(
        !operations.iter().any(|op| op.contains("SecretValue")),
        "{counts:?}"
    );
    assert_eq!(
        counts.get("GetAccountAuthorizationDetails"),
        Some(&2),
        "one page per account: {counts:?}"
    );
    assert_eq!(
        counts.get("ListAccessKeys"),
        Some(&7),
        "one per user the report shows with a key (6 + 1): {counts:?}"
    );
    for never in ["ListUsers", "ListUserTags"] {
        assert_eq!(counts.get(never), None, "{counts:?}");
    }
    assert_eq!(
        counts.get("ListSecrets"),
        Some(&4),
        "2 accounts × 2 regions: {counts:?}"
    );
    assert_eq!(
        counts.get("GetAccessKeyLastUsed"),
        Some(&2),
        "only grace's two keys, which the report cannot tell apart: {counts:?}"
    );
    assert_eq!(counts.get("DescribeSecret"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("AssumeRole"), Some(&1), "{counts:?}");

    // No planted secret value anywhere: export, snapshot, bundle.
    let planted = emulator.planted();
    assert!(planted.len() >= 5);
    let mut checked = 0;
    for file in files_under(&export)
        .into_iter()
        .chain(files_under(&bundle))
        .chain([db.clone()])
    {
        let bytes = std::fs::read(&file).unwrap();
        for value in &planted {
            assert!(
                !contains(&bytes, value),
                "{} holds a secret value",
                file.display()
            );
        }
        checked += 1;
    }
    assert!(checked > 20, "only {checked} files checked");
}

#[test]
fn an_export_replays_to_the_same_findings_as_the_live_scan() {
    let tmp = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(tmp.path());
    let inventory = tmp.path().join("inventory.toml");
    emulator.write_inventory(&inventory);
    let p = |name: &str| tmp.path().join(name);

    let live = run(credaudit()
        .arg("scan")
        .args(live_args(&emulator))
        .arg("--inventory")
        .arg(&inventory)
        .args(["--as-of", AS_OF, "--db"])
        .arg(p("live.db"))
        .arg("--out")
        .arg(p("A")));
    assert_eq!(live.status.code(), Some(0));

    let collect = run(credaudit()
        .arg("collect")
        .args(live_args(&emulator))
        .arg("--export")
        .arg(p("export")));
    assert_eq!(collect.status.code(), Some(0));

    let replay = run(credaudit()
        .arg("scan")
        .arg("--from")
        .arg(p("export"))
        .arg("--inventory")
        .arg(&inventory)
        .args(["--as-of", AS_OF, "--db"])
        .arg(p("replay.db"))
        .arg("--out")
        .arg(p("B")));
    assert_eq!(replay.status.code(), Some(0));

    let a = std::fs::read(p("A/findings.json")).unwrap();
    let b = std::fs::read(p("B/findings.json")).unwrap();
    assert!(findings(&p("A")).len() >= 9);
    assert!(a == b, "live and replayed findings.json differ");

    // Collecting again into the same folder replaces the earlier collection whole.
    let again = run(credaudit()
        .arg("collect")
        .args(live_args(&emulator))
        .arg("--export")
        .arg(p("export")));
    assert_eq!(again.status.code(), Some(0));
    assert!(!p("export/.credaudit-collect").exists());
    // A folder holding an export credaudit did not write is refused, not overwritten.
    std::fs::create_dir_all(p("handmade/aws")).unwrap();
    let refused = run(credaudit()
        .arg("collect")
        .args(live_args(&emulator))
        .arg("--export")
        .arg(p("handmade")));
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("did not write"));
}

#[test]
fn a_failing_region_gives_partial_results_a_coverage_entry_and_exit_3() {
    let tmp = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(tmp.path());
    let inventory = tmp.path().join("inventory.toml");
    emulator.write_inventory(&inventory);
    let export = tmp.path().join("export");

    // moto has no backend for a region it does not know: every call there answers HTTP 500.
    let output = run(credaudit()
        .arg("scan")
        .args([
            "--aws",
            "--endpoint-url",
            &emulator.server.url(),
            "--region",
            "us-east-1",
            "--region",
            "xx-nowhere-9",
            "--cloudtrail-window",
            "0",
        ])
        .arg("--export")
        .arg(&export)
        .arg("--inventory")
        .arg(&inventory)
        .args(["--as-of", AS_OF, "--db"])
        .arg(tmp.path().join("scan.db"))
        .arg("--out")
        .arg(tmp.path().join("bundle")));
    assert_eq!(output.status.code(), Some(3), "a partial scan exits 3");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "incomplete: {BASE_ACCOUNT} xx-nowhere-9 secretsmanager:list-secrets"
        )),
        "{stderr}"
    );

    let coverage: Value =
        serde_json::from_str(&std::fs::read_to_string(export.join("coverage.json")).unwrap())
            .unwrap();
    let entries: Vec<&Value> = coverage
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ok"] == false)
        .collect();
    assert_eq!(entries.len(), 1, "{coverage:#}");
    assert_eq!(entries[0]["account"], BASE_ACCOUNT);
    assert_eq!(entries[0]["region"], "xx-nowhere-9");
    assert_eq!(entries[0]["api"], "secretsmanager:list-secrets");
    assert_eq!(entries[0]["ok"], false);
    assert!(!entries[0]["error"].as_str().unwrap().is_empty());
    assert!(
        !export
            .join(format!("aws/{BASE_ACCOUNT}/secretsmanager/xx-nowhere-9"))
            .exists()
    );

    // What could be read still is.
    let found = findings(&tmp.path().join("bundle"));
    assert!(found.contains(&(
        "rotation-not-automated".to_string(),
        emulator.secret(BASE_ACCOUNT, "us-east-1/prod/db-password")
    )));
    assert!(found.contains(&(
        "rotation-overdue".to_string(),
        emulator.key(BASE_ACCOUNT, "alice/0")
    )));
    let manifest = std::fs::read_to_string(tmp.path().join("bundle/manifest.json")).unwrap();
    assert!(
        manifest.contains("xx-nowhere-9"),
        "the bundle shows the gap"
    );

    // The replay of the export is just as incomplete.
    let replay = run(credaudit()
        .arg("scan")
        .arg("--from")
        .arg(&export)
        .arg("--inventory")
        .arg(&inventory)
        .args(["--as-of", AS_OF, "--db"])
        .arg(tmp.path().join("replay.db")));
    assert_eq!(replay.status.code(), Some(3));
}

#[test]
fn cloudtrail_lookup_events_are_paged_spaced_and_written_as_the_cli_prints_them() {
    let tmp = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(tmp.path());
    let ct_log = tmp.path().join("cloudtrail-requests.jsonl");
    let responder = Server::start(
        "cloudtrail_responder.py",
        &["--request-log", ct_log.to_str().unwrap(), "--pages", "3"],
        &tmp.path().join("cloudtrail.stderr"),
    );
    let export = tmp.path().join("export");
    let output = run(credaudit()
        .env("AWS_ENDPOINT_URL_CLOUDTRAIL", responder.url())
        .arg("scan")
        .args([
            "--aws",
            "--endpoint-url",
            &emulator.server.url(),
            "--region",
            "us-east-1",
            "--region",
            "eu-west-1",
            "--cloudtrail-window",
            "30",
        ])
        .arg("--export")
        .arg(&export)
        .args(["--as-of", AS_OF, "--db"])
        .arg(tmp.path().join("scan.db")));
    assert_eq!(output.status.code(), Some(0));

    // The service-specific endpoint took CloudTrail away from moto.
    assert!(!emulator.operations().iter().any(|op| op == "LookupEvents"));
    let as_of = chrono::DateTime::parse_from_rfc3339(AS_OF)
        .unwrap()
        .timestamp();
    let requests = read_jsonl(&ct_log);
    assert_eq!(requests.len(), 6, "3 pages × 2 regions: {requests:#?}");
    for region in ["us-east-1", "eu-west-1"] {
        let mine: Vec<&Value> = requests.iter().filter(|r| r["region"] == region).collect();
        let tokens: Vec<&Value> = mine.iter().map(|r| &r["next_token"]).collect();
        assert_eq!(
            tokens,
            [&Value::Null, &Value::from("page-2"), &Value::from("page-3")]
        );
        for r in &mine {
            assert_eq!(r["start"].as_f64().unwrap() as i64, as_of - 30 * 86_400);
            assert_eq!(r["end"].as_f64().unwrap() as i64, as_of);
        }
        for pair in mine.windows(2) {
            let gap = pair[1]["time"].as_f64().unwrap() - pair[0]["time"].as_f64().unwrap();
            assert!(gap >= 0.49, "{region}: calls {gap:.3} s apart");
        }
        for page in 1..=3 {
            let file = export.join(format!(
                "cloudtrail/{BASE_ACCOUNT}/{region}/lookup-events-{page:04}.json"
            ));
            let doc: Value =
                serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            let events = doc["Events"].as_array().unwrap();
            assert_eq!(events.len(), 2);
            for event in events {
                for member in [
                    "EventId",
                    "EventName",
                    "EventTime",
                    "EventSource",
                    "CloudTrailEvent",
                ] {
                    assert!(
                        event.get(member).is_some(),
                        "{member} in {}",
                        file.display()
                    );
                }
                assert!(event["EventTime"].as_str().unwrap().ends_with('Z'));
                let record: Value =
                    serde_json::from_str(event["CloudTrailEvent"].as_str().unwrap()).unwrap();
                assert_eq!(record["awsRegion"], region);
            }
        }
        assert!(
            !export
                .join(format!(
                    "cloudtrail/{BASE_ACCOUNT}/{region}/lookup-events-0004.json"
                ))
                .exists()
        );
    }

    // A window of 0 days reads no CloudTrail at all.
    let output = run(credaudit()
        .env("AWS_ENDPOINT_URL_CLOUDTRAIL", responder.url())
        .arg("collect")
        .args([
            "--aws",
            "--endpoint-url",
            &emulator.server.url(),
            "--region",
            "us-east-1",
            "--cloudtrail-window",
            "0",
        ])
        .arg("--export")
        .arg(tmp.path().join("no-trail")));
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(read_jsonl(&ct_log).len(), 6);
    assert!(!tmp.path().join("no-trail/cloudtrail").exists());
}

#[test]
fn unreachable_aws_is_a_clear_error_not_an_empty_scan() {
    let tmp = tempfile::tempdir().unwrap();
    // A loopback port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = run(credaudit()
        .arg("collect")
        .args([
            "--aws",
            "--endpoint-url",
            &format!("http://127.0.0.1:{port}"),
            "--region",
            "us-east-1",
        ])
        .arg("--export")
        .arg(tmp.path().join("export")));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("sts:GetCallerIdentity"), "{stderr}");
    assert!(!tmp.path().join("export/aws").exists());
    assert!(!tmp.path().join("export/coverage.json").exists());
}

/// `credaudit scan ARGS` of the test inventory as of `AS_OF`, keeping everything under `dir` by
/// `name`: the export in `NAME-export`, the snapshot `NAME.db`, the bundle in `NAME`.
fn scan_named(dir: &Path, args: Vec<String>, inventory: &Path, name: &str) -> Output {
    run(credaudit()
        .arg("scan")
        .args(args)
        .arg("--export")
        .arg(dir.join(format!("{name}-export")))
        .arg("--inventory")
        .arg(inventory)
        .args(["--as-of", AS_OF, "--db"])
        .arg(dir.join(format!("{name}.db")))
        .arg("--out")
        .arg(dir.join(name)))
}

/// `--aws --org` arguments for the emulator's organisation: both regions, no CloudTrail.
fn org_args(emulator: &Emulator, extra: &[&str]) -> Vec<String> {
    [
        "--aws",
        "--endpoint-url",
        &emulator.server.url(),
        "--region",
        "us-east-1",
        "--region",
        "eu-west-1",
        "--cloudtrail-window",
        "0",
        "--org",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect()
}

/// The organisation of the test fleet: the base account manages 222222222222 (in an OU) and
/// 333333333333, whose audit role refuses to be assumed.
#[test]
fn org_scan_reads_every_member_account_and_a_refusing_one_is_a_coverage_gap() {
    let tmp = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(tmp.path());
    let inventory = tmp.path().join("inventory.toml");
    emulator.write_inventory(&inventory);
    let org = &emulator.manifest["organization"];
    let refusing = org["refusing"].as_str().unwrap();
    assert_eq!(
        org["accounts"],
        serde_json::json!([BASE_ACCOUNT, SECOND_ACCOUNT, refusing])
    );
    let p = |name: &str| tmp.path().join(name);
    let scan = |args: Vec<String>, name: &str| scan_named(tmp.path(), args, &inventory, name);

    // The whole organisation: two accounts read, the third a gap (exit 3), never skipped.
    let whole = scan(org_args(&emulator, &[]), "org");
    assert_eq!(whole.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&whole.stderr);
    assert!(stderr.contains("collected 2 account(s)"), "{stderr}");
    assert!(
        stderr.contains(&format!("incomplete: {refusing} global sts:assume-role")),
        "{stderr}"
    );
    let coverage: Value =
        serde_json::from_str(&std::fs::read_to_string(p("org-export/coverage.json")).unwrap())
            .unwrap();
    let gap = coverage
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["ok"] == false)
        .expect("a coverage failure");
    assert_eq!(gap["account"], refusing);
    assert!(
        gap["error"].as_str().unwrap().contains("AccessDenied"),
        "{gap}"
    );
    let manifest = std::fs::read_to_string(p("org/manifest.json")).unwrap();
    assert!(manifest.contains(refusing), "the bundle shows the gap");

    // It finds what the same two accounts read through --assume-role find.
    let assumed = scan(live_args(&emulator), "assumed");
    assert_eq!(assumed.status.code(), Some(0));
    assert_eq!(findings(&p("org")), findings(&p("assumed")));

    // Filters: only the OU (one account), or the refusing account excluded (exit 0).
    let ou = scan(
        org_args(&emulator, &["--include-ou", org["ou"].as_str().unwrap()]),
        "ou",
    );
    assert_eq!(ou.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&ou.stderr).contains("collected 1 account(s)"));
    assert!(p(&format!("ou-export/aws/{SECOND_ACCOUNT}")).is_dir());
    assert!(!p(&format!("ou-export/aws/{BASE_ACCOUNT}")).exists());
    let excluded = scan(
        org_args(&emulator, &["--exclude-account", refusing]),
        "excluded",
    );
    assert_eq!(excluded.status.code(), Some(0));
    assert_eq!(findings(&p("excluded")), findings(&p("assumed")));

    // What was sent is what `iam-policy --org` allows, and never a secret value.
    let policies: Value =
        serde_json::from_slice(&run(credaudit().args(["iam-policy", "--org"])).stdout).unwrap();
    let allowed: BTreeSet<String> = policies["management"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(|s| match &s["Action"] {
            Value::Array(list) => list
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect(),
            one => vec![one.as_str().unwrap().to_string()],
        })
        .map(|a| a.split(':').nth(1).unwrap().to_string())
        .collect();
    let operations = emulator.operations();
    assert!(operations.iter().any(|op| op == "ListAccounts"));
    assert!(operations.iter().any(|op| op == "ListAccountsForParent"));
    for op in &operations {
        assert!(allowed.contains(op), "{op} is not in the --org policy");
    }
}

/// Every third request answered with the service's throttling error: the scan retries with
/// backoff, finds the same as without throttling, and says it was throttled.
#[test]
fn throttled_requests_are_retried_with_backoff_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(tmp.path());
    let inventory = tmp.path().join("inventory.toml");
    emulator.write_inventory(&inventory);
    let proxy_log = tmp.path().join("proxy.jsonl");
    let proxy = Server::start(
        "throttling_proxy.py",
        &[
            "--upstream",
            &emulator.server.url(),
            "--every",
            "3",
            "--log",
            proxy_log.to_str().unwrap(),
        ],
        &tmp.path().join("proxy.stderr"),
    );
    let p = |name: &str| tmp.path().join(name);
    let scan = |endpoint: &str, name: &str| {
        let args: Vec<String> = live_args(&emulator)
            .into_iter()
            .map(|a| {
                if a == emulator.server.url() {
                    endpoint.to_string()
                } else {
                    a
                }
            })
            .collect();
        scan_named(tmp.path(), args, &inventory, name)
    };
    let direct = scan(&emulator.server.url(), "direct");
    assert_eq!(direct.status.code(), Some(0));
    let throttled = scan(&proxy.url(), "throttled");
    assert_eq!(
        throttled.status.code(),
        Some(0),
        "every request got through"
    );
    assert_eq!(findings(&p("throttled")), findings(&p("direct")));

    let log = read_jsonl(&proxy_log);
    let refused = log.iter().filter(|r| r["throttled"] == true).count();
    assert!(
        refused >= 10,
        "the proxy throttled {refused} of {}",
        log.len()
    );
    // Each throttled request was sent again until it went through: the requests that reached
    // the emulator are exactly those of the unthrottled scan.
    let mut through: BTreeMap<String, usize> = BTreeMap::new();
    for r in log.iter().filter(|r| r["throttled"] == false) {
        *through
            .entry(r["operation"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let mut direct_ops: BTreeMap<String, usize> = BTreeMap::new();
    let ops = emulator.operations();
    // The emulator's log holds both scans; the direct one came first and sent half.
    for op in &ops[..ops.len() / 2] {
        *direct_ops.entry(op.clone()).or_default() += 1;
    }
    assert_eq!(through, direct_ops);

    // Never silently: stderr gives the count, and coverage keeps it per account and region.
    let stderr = String::from_utf8_lossy(&throttled.stderr);
    let assume_throttled = log
        .iter()
        .filter(|r| r["throttled"] == true && r["operation"] == "AssumeRole")
        .count();
    assert!(
        stderr.contains(&format!("AWS throttled {} of", refused - assume_throttled)),
        "{stderr}"
    );
    let coverage: Value = serde_json::from_str(
        &std::fs::read_to_string(p("throttled-export/coverage.json")).unwrap(),
    )
    .unwrap();
    let noted: u64 = coverage
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["api"] == "aws:throttled-and-retried")
        .inspect(|e| assert_eq!(e["ok"], true))
        .map(|e| e["records"].as_u64().unwrap())
        .sum();
    assert!(noted > 0 && noted <= refused as u64, "{coverage:#}");
}

/// The request budget of a live scan: 1,000 users with keys and 1,000 secrets in one region
/// take the credential report, one GetAccountAuthorizationDetails, one ListAccessKeys per user
/// with a key and the ListSecrets pages — at most 1,100 requests, as the emulator counts them.
#[test]
fn a_thousand_users_and_secrets_take_at_most_1100_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let emulator = Emulator::start_with(
        tmp.path(),
        &[
            "--fleet",
            "bench",
            "--users",
            "1000",
            "--secrets",
            "1000",
            "--regions",
            "1",
        ],
    );
    let (server, requests) = (&emulator.server, &emulator.requests);
    let collect = |export: &str, extra: &[&str]| {
        let out = run(credaudit()
            .args(["collect", "--aws", "--endpoint-url", &server.url()])
            .args(["--region", "us-east-1", "--cloudtrail-window", "0"])
            .args(extra)
            .arg("--export")
            .arg(tmp.path().join(export)));
        assert_eq!(out.status.code(), Some(0), "collect into {export}");
    };
    collect("export", &[]);
    let log = read_jsonl(requests);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in &log {
        *counts
            .entry(r["operation"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert!(log.len() <= 1_100, "{} requests: {counts:?}", log.len());
    assert_eq!(counts.get("ListAccessKeys"), Some(&1_000), "{counts:?}");
    assert_eq!(counts.get("ListSecrets"), Some(&10), "{counts:?}");
    assert_eq!(counts.get("GetAccessKeyLastUsed"), None, "{counts:?}");
    assert_eq!(counts.get("ListUserTags"), None, "{counts:?}");

    // And nothing was lost: every key and secret is in the export, every key with its last
    // use from the report.
    let keys: Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join(format!(
            "export/aws/{BASE_ACCOUNT}/iam/list-access-keys.json"
        )))
        .unwrap(),
    )
    .unwrap();
    let listed: usize = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["AccessKeyMetadata"].as_array().unwrap().len())
        .sum();
    assert_eq!(listed, 2_000);
    // Asking every key's last use (--precise-last-used) finds exactly the same: the report
    // spoke for every key. It costs one request per key more.
    std::fs::write(requests, "").unwrap();
    collect("precise", &["--precise-last-used"]);
    let asked = read_jsonl(requests)
        .iter()
        .filter(|r| r["operation"] == "GetAccessKeyLastUsed")
        .count();
    assert_eq!(asked, 2_000);
    let scan = |export: &str| {
        let out = run(credaudit()
            .arg("scan")
            .arg("--from")
            .arg(tmp.path().join(export))
            .args(["--as-of", AS_OF, "--db"])
            .arg(tmp.path().join(format!("{export}.db")))
            .arg("--out")
            .arg(tmp.path().join(format!("{export}-bundle"))));
        assert_eq!(out.status.code(), Some(0));
        findings(&tmp.path().join(format!("{export}-bundle")))
    };
    let from_report = scan("export");
    assert!(
        from_report
            .iter()
            .any(|(rule, _)| rule == "unused-credential"),
        "the fleet has unused keys"
    );
    assert_eq!(from_report, scan("precise"));
}

/// An organisation scanned in two shards (one per account, as a CI matrix runs them) and merged
/// finds exactly what one scan of both accounts finds.
#[test]
fn two_org_shards_merged_equal_one_scan_of_both_accounts() {
    let tmp = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(tmp.path());
    let inventory = tmp.path().join("inventory.toml");
    emulator.write_inventory(&inventory);
    let org = &emulator.manifest["organization"];
    let refusing = org["refusing"].as_str().unwrap();
    let p = |name: &str| tmp.path().join(name);
    let scan = |extra: &[&str], name: &str| {
        let out = scan_named(tmp.path(), org_args(&emulator, extra), &inventory, name);
        assert_eq!(out.status.code(), Some(0), "{name}");
    };
    // Shard 1: the management account alone; shard 2: the OU (the second account).
    scan(
        &[
            "--exclude-account",
            SECOND_ACCOUNT,
            "--exclude-account",
            refusing,
        ],
        "shard-1",
    );
    scan(&["--include-ou", org["ou"].as_str().unwrap()], "shard-2");
    // The reference: one scan of both accounts.
    scan(&["--exclude-account", refusing], "whole");

    let merged = run(credaudit()
        .arg("merge")
        .arg(p("shard-1.db"))
        .arg(p("shard-2.db"))
        .arg("--db")
        .arg(p("org.db"))
        .arg("--out")
        .arg(p("org")));
    assert_eq!(merged.status.code(), Some(0));
    let whole = findings(&p("whole"));
    assert!(whole.len() >= 9, "{whole:#?}");
    assert_eq!(findings(&p("org")), whole);
    for file in ["findings.csv", "controls.csv", "remediation-plan.csv"] {
        assert_eq!(
            std::fs::read(p(&format!("org/{file}"))).unwrap(),
            std::fs::read(p(&format!("whole/{file}"))).unwrap(),
            "{file}"
        );
    }
    // Both shards are named in the provenance, and the merged snapshot verifies.
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(p("org/manifest.json")).unwrap()).unwrap();
    let shards = manifest["shards"]
        .as_array()
        .expect("shards in the manifest");
    assert_eq!(shards.len(), 2, "{manifest:#}");
    let accounts: BTreeSet<String> = shards
        .iter()
        .flat_map(|s| s["accounts"].as_array().unwrap().clone())
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        accounts,
        BTreeSet::from([BASE_ACCOUNT.to_string(), SECOND_ACCOUNT.to_string()])
    );
    let verify = run(credaudit().arg("verify").arg("--db").arg(p("org.db")));
    assert_eq!(verify.status.code(), Some(0));

    // Two shards that read the same account are refused.
    let overlap = run(credaudit()
        .arg("merge")
        .arg(p("shard-1.db"))
        .arg(p("whole.db"))
        .arg("--db")
        .arg(p("overlap.db")));
    assert_eq!(overlap.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&overlap.stderr).contains(BASE_ACCOUNT));
}
