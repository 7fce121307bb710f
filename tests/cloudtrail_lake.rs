//! CloudTrail Lake (`--cloudtrail-lake`): the queries of src/collect/lake/*.sql, exactly as
//! credaudit sends them, run by DuckDB over real CloudTrail records (the invictus-ir data set and
//! the reader's test files) loaded as an event data store, and folded back: the usage, the
//! authentication windows, the coverage and the lifecycle events must equal what the file
//! reader gives for the same records. Then end to end: `scan --aws --cloudtrail-lake` against
//! moto plus a CloudTrail Lake responder that runs the received query text in DuckDB.
//!
//! DuckDB comes from tests/moto/.venv (pinned in tests/moto/requirements.txt).

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use credaudit::collect::cloudtrail::{self, CloudTrailData};
use credaudit::collect::input::Limits;
use credaudit::collect::lake::{self, EventDataStore, QueryEntry, QueryFile};
use serde_json::Value;

use common::repo;

/// The Python that has moto and DuckDB: `CREDAUDIT_MOTO_PYTHON`, else tests/moto/.venv.
fn python() -> PathBuf {
    let path = std::env::var_os("CREDAUDIT_MOTO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo("tests/moto/.venv/bin/python"));
    assert!(
        path.exists(),
        "the test tools are not installed ({} is missing): run `bash scripts/test.sh`, which \
         creates tests/moto/.venv from tests/moto/requirements.txt",
        path.display()
    );
    path
}

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn invictus() -> PathBuf {
    repo("fixtures/cloudtrail/invictus-aws-dataset/CloudTrail")
}

fn reader_files() -> Vec<PathBuf> {
    ["s3-delivery.json", "bare-array.json", "lake-mix.json"]
        .iter()
        .map(|f| repo("tests/data/cloudtrail").join(f))
        .collect()
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
    for secret in ["prod/a", "arn:aws:secretsmanager:eu-west-1:111122223333:secret:prod/b-AbCdEf"] {
        assert!(local.usage.iter().any(|b| b.credential_id == secret), "{secret}");
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
    let records = vec![repo("tests/data/cloudtrail/lake-mix.json")];
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
