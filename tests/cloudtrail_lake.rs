//! CloudTrail Lake (`--cloudtrail-lake`): the queries of src/collect/lake/*.sql, exactly as
//! credaudit sends them, run by DuckDB over real CloudTrail records (the invictus-ir data set and
//! the reader's test files) loaded as an event data store, and folded back: the usage, the
//! authentication windows, the coverage and the lifecycle events must equal what the file
//! reader gives for the same records. Then end to end: `scan --aws --cloudtrail-lake` against
//! moto plus a CloudTrail Lake responder that runs the received query text in DuckDB.
//!
//! DuckDB comes from tests/moto/.venv (pinned in tests/moto/requirements.txt).

mod common;
#[path = "support/moto.rs"]
mod moto;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Utc};
use credaudit::collect::cloudtrail::{self, CloudTrailData};
use credaudit::collect::input::Limits;
use credaudit::collect::lake::{self, EventDataStore, QueryEntry, QueryFile};
use serde_json::Value;

use common::{findings, repo};
use moto::{Server, credaudit, python, read_jsonl, run};

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn invictus() -> PathBuf {
    repo("fixtures/cloudtrail/invictus-aws-dataset/CloudTrail")
}

fn reader_files() -> Vec<PathBuf> {
    vec![
        repo("tests/data/cloudtrail/s3-delivery.json"),
        repo("tests/data/cloudtrail/bare-array.json"),
        repo("tests/data/cloudtrail-lake/lake-mix.json"),
    ]
}

/// Runs both queries (rendered for `store` over `[start, end)`) on DuckDB over `records`, and
/// lays out what they return as a collection writes it: `export/cloudtrail-lake/`.
fn query_with_duckdb(
    records: &[PathBuf],
    export: &Path,
    store: &EventDataStore,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    page_size: usize,
) {
    let folder = export.join(lake::FOLDER);
    std::fs::create_dir_all(&folder).unwrap();
    let mut queries = Vec::new();
    for (name, sql) in lake::QUERIES {
        let statement = lake::render(sql, store, start, end);
        let statement_file = export.join(format!("{name}.sql"));
        std::fs::write(&statement_file, &statement).unwrap();
        let output = Command::new(python())
            .arg(repo("tests/moto/lake_duckdb.py"))
            .arg("--records")
            .args(records)
            .arg("--statement-file")
            .arg(&statement_file)
            .args(["--store", &store.id, "--page-size", &page_size.to_string()])
            .arg("--out")
            .arg(&folder)
            .args(["--name", name])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "DuckDB did not run the {name} query:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        queries.push(QueryEntry {
            name: name.to_string(),
            query_id: format!("duckdb-{name}"),
            statement,
            status: "FINISHED".to_string(),
        });
    }
    let file = QueryFile {
        event_data_store: store.given.clone(),
        start: start.to_rfc3339(),
        end: end.to_rfc3339(),
        queries,
    };
    std::fs::write(
        folder.join("query.json"),
        serde_json::to_vec_pretty(&file).unwrap(),
    )
    .unwrap();
}

/// What the reader of exported Lake results gives for `export`.
fn lake_data(export: &Path) -> CloudTrailData {
    lake::read_export(export, &Limits::default())
        .unwrap()
        .expect("cloudtrail-lake/ is there")
        .trail
}

/// The usage facts of both roads must be equal, not just alike.
fn assert_same_evidence(local: &CloudTrailData, lake: &CloudTrailData) {
    // The queries leave out what the reader skips (no userIdentity, an eventVersion other
    // than 1.x); a record without eventTime is outside every window.
    assert_eq!(lake.records, local.records - local.skipped);
    assert_eq!(lake.usage.len(), local.usage.len());
    for (a, b) in local.usage.iter().zip(&lake.usage) {
        assert_eq!(a, b);
    }
    assert_eq!(lake.auth_windows, local.auth_windows);
    assert_eq!(lake.events, local.events);
    assert_eq!(lake.covered, local.covered);
    assert_eq!(lake.unattributed, local.unattributed);
}

#[test]
fn the_lake_queries_run_on_duckdb_fold_into_what_the_file_reader_gives() {
    let tmp = tempfile::tempdir().unwrap();
    let mut records = vec![invictus()];
    records.extend(reader_files());
    let store = EventDataStore::parse(
        "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE",
    )
    .unwrap();
    let export = tmp.path().join("export");
    // Small pages: the fold must not depend on where a page ends.
    query_with_duckdb(
        &records,
        &export,
        &store,
        time("2020-01-01T00:00:00Z"),
        time("2027-01-01T00:00:00Z"),
        97,
    );
    let local = cloudtrail::read_paths(&records).unwrap();
    let lake = lake_data(&export);
    assert_same_evidence(&local, &lake);

    // The comparison has something to compare: the records hold what the fold must get right.
    assert_eq!(local.records, 2900 + 10 + 2 + 19);
    assert_eq!(local.skipped, 3, "{:?}", local.skip_reasons);
    assert!(local.usage.len() > 50);
    assert!(local.usage.iter().any(|b| b.auth_errors > 0));
    assert!(local.usage.iter().any(|b| b.source_ips.len() > 1));
    assert!(local.usage.iter().any(|b| b.regions.len() > 1));
    assert!(local.usage.iter().any(|b| b.error_codes.len() > 1));
    assert!(local.auth_windows.len() > 2);
    for secret in [
        "prod/a",
        "arn:aws:secretsmanager:eu-west-1:111122223333:secret:prod/b-AbCdEf",
    ] {
        assert!(
            local.usage.iter().any(|b| b.credential_id == secret),
            "{secret}"
        );
    }
    let lifecycle: BTreeSet<&str> = local
        .events
        .iter()
        .filter_map(|e| e.details.as_deref())
        .filter_map(|d| d.split_whitespace().next())
        .collect();
    for name in [
        "CreateAccessKey",
        "UpdateAccessKey",
        "DeleteAccessKey",
        "CreateSecret",
        "RotateSecret",
        "PutSecretValue",
        "UpdateSecretVersionStage",
        "DeleteSecret",
    ] {
        assert!(lifecycle.contains(name), "{name} in {lifecycle:?}");
    }
    assert!(local.covered.len() > 2, "{:?}", local.covered);

    // Page files hold several pages; every one was read.
    assert!(export.join("cloudtrail-lake/usage-0003.json").exists());
}

#[test]
fn the_window_is_half_open_and_leaves_out_what_is_outside_it() {
    let tmp = tempfile::tempdir().unwrap();
    let records = vec![repo("tests/data/cloudtrail-lake/lake-mix.json")];
    let store = EventDataStore::parse("eds-1").unwrap();
    let export = tmp.path().join("export");
    // 11:00:00 is the end: the records of 10:xx are in, those from 11:00:00 on are not.
    query_with_duckdb(
        &records,
        &export,
        &store,
        time("2024-03-04T10:00:00Z"),
        time("2024-03-04T11:00:00Z"),
        1000,
    );
    let lake = lake_data(&export);
    let all = cloudtrail::read_paths(&records).unwrap();
    let hour = time("2024-03-04T10:00:00Z");
    let expected: Vec<_> = all.usage.iter().filter(|b| b.hour == hour).collect();
    assert!(!expected.is_empty());
    assert_eq!(lake.usage.iter().collect::<Vec<_>>(), expected);
    assert_eq!(lake.records, 8);
    assert!(lake.events.is_empty());
}
const BASE_ACCOUNT: &str = "123456789012";
const STORE_ID: &str = "EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE";

fn store_arn() -> String {
    format!("arn:aws:cloudtrail:us-east-1:{BASE_ACCOUNT}:eventdatastore/{STORE_ID}")
}

/// moto with the test fleet (tests/moto/fleet_server.py) and its manifest.
fn start_moto(dir: &Path) -> (Server, Value) {
    let manifest = dir.join("fleet.json");
    let server = Server::start(
        "fleet_server.py",
        &[
            "--as-of",
            common::AS_OF,
            "--manifest",
            manifest.to_str().unwrap(),
            "--request-log",
            dir.join("moto-requests.jsonl").to_str().unwrap(),
        ],
        &dir.join("moto.stderr"),
    );
    let manifest = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    (server, manifest)
}

fn key(manifest: &Value, slot: &str) -> String {
    manifest["accounts"][BASE_ACCOUNT]["keys"][slot]
        .as_str()
        .unwrap_or_else(|| panic!("no key {slot}"))
        .to_string()
}

/// CloudTrail records of the fleet's keys before as-of: alice's key used every day of the last
/// 20 from one IP and region, then in the last day from a new IP in a new region for a
/// destructive call (anomalous-usage); bob's key failing authentication 8 times in 10 calls
/// 2 hours before as-of (auth-failure-spike); a secret read.
fn fleet_records(manifest: &Value, path: &Path) {
    let as_of = time(common::AS_OF);
    let alice = key(manifest, "alice/0");
    let bob = key(manifest, "bob/0");
    let record = |at: DateTime<Utc>,
                  key: &str,
                  source: &str,
                  name: &str,
                  ip: &str,
                  region: &str,
                  error: Option<&str>,
                  request: Value| {
        let mut r = serde_json::json!({
            "eventVersion": "1.08",
            "userIdentity": {
                "type": "IAMUser",
                "principalId": "AIDAEXAMPLE",
                "arn": format!("arn:aws:iam::{BASE_ACCOUNT}:user/fleet"),
                "accountId": BASE_ACCOUNT,
                "accessKeyId": key,
                "userName": "fleet",
            },
            "eventTime": at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "eventSource": source,
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": ip,
            "requestParameters": request,
            "responseElements": null,
            "recipientAccountId": BASE_ACCOUNT,
        });
        if let Some(code) = error {
            r["errorCode"] = Value::from(code);
        }
        r
    };
    let mut records = Vec::new();
    for day in 2..22 {
        for hour in [9, 10, 11] {
            let at = as_of - chrono::Duration::days(day) + chrono::Duration::hours(hour);
            records.push(record(
                at,
                &alice,
                "s3.amazonaws.com",
                "ListBuckets",
                "198.51.100.7",
                "us-east-1",
                None,
                Value::Null,
            ));
        }
    }
    let late = as_of - chrono::Duration::hours(21);
    records.push(record(
        late,
        &alice,
        "iam.amazonaws.com",
        "DeleteUser",
        "203.0.113.99",
        "eu-west-1",
        None,
        serde_json::json!({"userName": "carol"}),
    ));
    let spike = as_of - chrono::Duration::hours(2);
    for i in 0..10 {
        let error = (i < 8).then_some("AccessDenied");
        records.push(record(
            spike + chrono::Duration::seconds(i * 20),
            &bob,
            "s3.amazonaws.com",
            "GetObject",
            "192.0.2.10",
            "us-east-1",
            error,
            Value::Null,
        ));
    }
    records.push(record(
        as_of - chrono::Duration::days(3),
        &alice,
        "secretsmanager.amazonaws.com",
        "GetSecretValue",
        "198.51.100.7",
        "us-east-1",
        None,
        serde_json::json!({"secretId": "prod/db-password"}),
    ));
    std::fs::write(
        path,
        serde_json::to_vec_pretty(&serde_json::json!({"Records": records})).unwrap(),
    )
    .unwrap();
}

fn lake_responder(dir: &Path, records: &Path, fail: Option<&str>) -> (Server, PathBuf) {
    let log = dir.join(format!("lake-requests-{}.jsonl", fail.unwrap_or("ok")));
    let mut args = vec![
        "--records",
        records.to_str().unwrap(),
        "--store",
        STORE_ID,
        "--request-log",
        log.to_str().unwrap(),
        "--page-size",
        "7",
    ];
    if let Some(query) = fail {
        args.extend(["--fail-query", query]);
    }
    let server = Server::start(
        "cloudtrail_lake_responder.py",
        &args,
        &dir.join("lake.stderr"),
    );
    (server, log)
}

fn aws_args(moto: &Server) -> Vec<String> {
    [
        "--aws",
        "--endpoint-url",
        &moto.url(),
        "--region",
        "us-east-1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn a_live_scan_through_cloudtrail_lake_finds_what_the_file_reader_finds() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name);
    let (moto, manifest) = start_moto(tmp.path());
    let records = p("records.json");
    fleet_records(&manifest, &records);
    let (responder, log) = lake_responder(tmp.path(), &records, None);

    let lake = run(credaudit()
        .env("AWS_ENDPOINT_URL_CLOUDTRAIL", responder.url())
        .arg("scan")
        .args(aws_args(&moto))
        .args([
            "--cloudtrail-lake",
            &store_arn(),
            "--cloudtrail-window",
            "30",
        ])
        .arg("--export")
        .arg(p("export"))
        .args(["--as-of", common::AS_OF, "--db"])
        .arg(p("lake.db"))
        .arg("--out")
        .arg(p("A")));
    assert_eq!(lake.status.code(), Some(0));

    // The same records read from a file, LookupEvents off.
    let local = run(credaudit()
        .arg("scan")
        .args(aws_args(&moto))
        .args(["--cloudtrail-window", "0", "--cloudtrail"])
        .arg(&records)
        .args(["--as-of", common::AS_OF, "--db"])
        .arg(p("local.db"))
        .arg("--out")
        .arg(p("B")));
    assert_eq!(local.status.code(), Some(0));

    let (a, b) = (findings(&p("A")), findings(&p("B")));
    assert_eq!(a, b);
    let alice = key(&manifest, "alice/0");
    let bob = key(&manifest, "bob/0");
    assert!(
        a.contains(&("anomalous-usage".to_string(), alice)),
        "{a:#?}"
    );
    assert!(
        a.contains(&("auth-failure-spike".to_string(), bob)),
        "{a:#?}"
    );

    // The queries sent are the tested text, for the window before as-of, and their results
    // were read over several pages; LookupEvents was not called.
    let as_of = time(common::AS_OF);
    let store = EventDataStore::parse(&store_arn()).unwrap();
    let requests = read_jsonl(&log);
    let sent: Vec<&str> = requests
        .iter()
        .filter(|r| r["target"].as_str().unwrap().ends_with("StartQuery"))
        .map(|r| r["body"]["QueryStatement"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = lake::QUERIES
        .iter()
        .map(|(_, sql)| lake::render(sql, &store, as_of - chrono::Duration::days(30), as_of))
        .collect();
    assert_eq!(sent, expected);
    let targets: Vec<&str> = requests
        .iter()
        .map(|r| r["target"].as_str().unwrap().rsplit('.').next().unwrap())
        .collect();
    assert!(
        targets.iter().filter(|t| **t == "DescribeQuery").count() >= 4,
        "{targets:?}"
    );
    assert!(
        targets.iter().filter(|t| **t == "GetQueryResults").count() >= 3,
        "{targets:?}"
    );
    assert!(p("export/cloudtrail-lake/usage-0002.json").exists());
    assert!(!p("export/cloudtrail").exists());
    let query: QueryFile = serde_json::from_str(
        &std::fs::read_to_string(p("export/cloudtrail-lake/query.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(query.event_data_store, store_arn());
    assert_eq!(query.queries.len(), 2);
    assert!(query.queries.iter().all(|q| q.status == "FINISHED"));
    // The bundle keeps where the usage came from: the store, window and query ids.
    let kept = std::fs::read_to_string(p("A/raw/cloudtrail-lake/query.json")).unwrap();
    assert!(kept.contains(STORE_ID) && kept.contains(&query.queries[0].query_id));

    // The export replays to the same findings.
    let replay = run(credaudit()
        .arg("scan")
        .arg("--from")
        .arg(p("export"))
        .args(["--as-of", common::AS_OF, "--db"])
        .arg(p("replay.db"))
        .arg("--out")
        .arg(p("C")));
    assert_eq!(replay.status.code(), Some(0));
    assert_eq!(findings(&p("C")), a);
}

#[test]
fn a_failed_lake_query_is_a_coverage_gap_with_its_error() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name);
    let (moto, manifest) = start_moto(tmp.path());
    let records = p("records.json");
    fleet_records(&manifest, &records);
    let (responder, _log) = lake_responder(tmp.path(), &records, Some("usage"));
    let output = run(credaudit()
        .env("AWS_ENDPOINT_URL_CLOUDTRAIL", responder.url())
        .arg("scan")
        .args(aws_args(&moto))
        .args(["--cloudtrail-lake", STORE_ID, "--cloudtrail-window", "30"])
        .arg("--export")
        .arg(p("export"))
        .args(["--as-of", common::AS_OF, "--db"])
        .arg(p("scan.db"))
        .arg("--out")
        .arg(p("A")));
    assert_eq!(output.status.code(), Some(3));
    let coverage = std::fs::read_to_string(p("export/coverage.json")).unwrap();
    assert!(coverage.contains("cloudtrail:lake-query"), "{coverage}");
    assert!(
        coverage.contains("FAILED: Query exhausted resources"),
        "{coverage}"
    );
    // The usage-driven findings are not made up from the lifecycle query that did finish.
    let found = findings(&p("A"));
    assert!(
        !found.iter().any(|(rule, _)| rule == "auth-failure-spike"),
        "{found:#?}"
    );

    // Bad names never reach AWS.
    for bad in [
        "eds' OR 1=1 --",
        "arn:aws:cloudtrail:us-east-1:1:eventdatastore/x",
    ] {
        let refused = run(credaudit()
            .arg("collect")
            .args(aws_args(&moto))
            .args(["--cloudtrail-lake", bad])
            .arg("--export")
            .arg(p("refused")));
        assert_eq!(refused.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&refused.stderr).contains("event data store"));
    }
    let zero = run(credaudit()
        .arg("collect")
        .args(aws_args(&moto))
        .args(["--cloudtrail-lake", STORE_ID, "--cloudtrail-window", "0"])
        .arg("--export")
        .arg(p("zero")));
    assert_eq!(zero.status.code(), Some(2));
}

#[test]
fn a_malformed_result_page_is_bad_input_naming_the_file_and_row() {
    let tmp = tempfile::tempdir().unwrap();
    let export = tmp.path().join("export");
    query_with_duckdb(
        &[repo("tests/data/cloudtrail-lake/lake-mix.json")],
        &export,
        &EventDataStore::parse("eds-1").unwrap(),
        time("2024-03-04T00:00:00Z"),
        time("2024-03-06T00:00:00Z"),
        5,
    );
    let page = export.join("cloudtrail-lake/usage-0002.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&page).unwrap()).unwrap();
    let row = doc["QueryResultRows"][3].as_array_mut().unwrap();
    let calls = row.iter_mut().find(|c| c.get("calls").is_some()).unwrap();
    *calls = serde_json::json!({"calls": "\u{1b}[31mmany"});
    std::fs::write(&page, serde_json::to_vec(&doc).unwrap()).unwrap();
    let output = run(Command::new(env!("CARGO_BIN_EXE_credaudit"))
        .arg("scan")
        .arg("--from")
        .arg(&export)
        .args(["--as-of", "2024-03-06T00:00:00Z", "--db"])
        .arg(tmp.path().join("scan.db")));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("usage-0002.json"), "{stderr}");
    assert!(stderr.contains("QueryResultRows[3]"), "{stderr}");
    assert!(stderr.contains("calls: expected an integer"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "terminal escapes pass through: {stderr}"
    );
}
