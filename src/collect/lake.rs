//! CloudTrail Lake: usage aggregated by the event data store's SQL engine instead of read record
//! by record, for trails far beyond LookupEvents (90 days, management events, 2 requests per
//! second) and beyond one machine's disk.
//!
//! Two queries, kept in `lake/usage.sql` and `lake/lifecycle.sql` (the text tests run):
//! - usage: one row per (access key, secret read, 5-minute window, `eventSource`, `eventName`,
//!   source IP, region, error code, account) with `count(*)`;
//! - lifecycle: one row per successful lifecycle call of a key or secret, with only the fields
//!   the lifecycle mapping reads.
//!
//! Both are folded by [`cloudtrail::Fold`], the code that folds records read from files, so
//! the usage buckets, authentication windows, coverage and lifecycle events are those the
//! file reader would give for the same records.
//!
//! # Export layout
//! `DIR/cloudtrail-lake/query.json` names the event data store, the window and each query
//! (name, id, statement as sent); `DIR/cloudtrail-lake/<name>-NNNN.json` are the query's
//! GetQueryResults pages as the API returned them (`QueryResultRows`: rows as lists of
//! single-member objects, every value a string).

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::cloudtrail::{self, Calls, CloudTrailData, Fold};
use super::input::{self, Limits};
use crate::error::{Error, Result};
use crate::model::Timestamp;

/// The usage aggregation (see the module docs).
pub const USAGE_SQL: &str = include_str!("lake/usage.sql");

/// The lifecycle calls (see the module docs).
pub const LIFECYCLE_SQL: &str = include_str!("lake/lifecycle.sql");

/// The queries run, by the name their pages are written under, in order.
pub const QUERIES: [(&str, &str); 2] = [("usage", USAGE_SQL), ("lifecycle", LIFECYCLE_SQL)];

/// The folder of the export holding what CloudTrail Lake returned.
pub const FOLDER: &str = "cloudtrail-lake";

/// Latest `windowStart` taken: the last second of year 9999, as for dates in AWS JSON.
const MAX_WINDOW_START: i64 = 253_402_300_799;

/// Most calls the usage rows of one export may add up to (2^53, far beyond any real account):
/// every count folded from them then fits the snapshot's 64-bit integers, with room to add
/// what log files give.
pub const MAX_LAKE_CALLS: u64 = 1 << 53;

/// An event data store as `--cloudtrail-lake` names it: its ARN or its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDataStore {
    /// As given (ARN or id).
    pub given: String,
    /// The id (the last part of the ARN): what a query names after FROM.
    pub id: String,
    /// The region and account of the ARN, when an ARN was given.
    pub region: Option<String>,
    pub account: Option<String>,
}

impl EventDataStore {
    /// Checks `given` strictly: an ARN `arn:<partition>:cloudtrail:<region>:<12-digit
    /// account>:eventdatastore/<id>` or a bare id, the id 1 to 128 ASCII letters, digits and
    /// hyphens, starting with a letter or digit. Nothing else can reach the SQL text.
    pub fn parse(given: &str) -> std::result::Result<EventDataStore, String> {
        let expected = "expected an event data store ARN \
            (arn:aws:cloudtrail:REGION:ACCOUNT:eventdatastore/ID) or id (letters, digits, hyphens)";
        let (id, region, account) = if let Some(rest) = given.strip_prefix("arn:") {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            let [partition, service, region, account, resource] = parts[..] else {
                return Err(expected.to_string());
            };
            let partition_ok = ["aws", "aws-cn", "aws-us-gov"].contains(&partition);
            let Some(id) = resource.strip_prefix("eventdatastore/") else {
                return Err(expected.to_string());
            };
            if !partition_ok
                || service != "cloudtrail"
                || !crate::model::is_region_name(region)
                || !crate::model::is_account_id(account)
            {
                return Err(expected.to_string());
            }
            (id, Some(region.to_string()), Some(account.to_string()))
        } else {
            (given, None, None)
        };
        let id_ok = (1..=128).contains(&id.len())
            && id.starts_with(|c: char| c.is_ascii_alphanumeric())
            && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !id_ok {
            return Err(expected.to_string());
        }
        Ok(EventDataStore {
            given: given.to_string(),
            id: id.to_string(),
            region,
            account,
        })
    }
}

/// `sql` with the event data store id and the window `[start, end)` filled in. The id is one
/// [`EventDataStore::parse`] checked; the times are formatted here (`YYYY-MM-DD hh:mm:ss`,
/// UTC), so nothing from outside is put in the text unchecked.
pub fn render(sql: &str, store: &EventDataStore, start: Timestamp, end: Timestamp) -> String {
    let time = |t: Timestamp| t.format("%Y-%m-%d %H:%M:%S").to_string();
    sql.replace("{event_data_store}", &store.id)
        .replace("{start}", &time(start))
        .replace("{end}", &time(end))
}

/// `DIR/cloudtrail-lake/query.json`: what was asked of which event data store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueryFile {
    /// The event data store as `--cloudtrail-lake` named it.
    pub event_data_store: String,
    /// The window read, `[start, end)`, RFC 3339.
    pub start: String,
    pub end: String,
    pub queries: Vec<QueryEntry>,
}

/// One query run: its name (its pages are `<name>-NNNN.json`), id and statement as sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueryEntry {
    pub name: String,
    pub query_id: String,
    pub statement: String,
    /// The final QueryStatus (FINISHED when its pages are complete).
    pub status: String,
}

/// The path of page `page` (from 1) of query `name` inside the export `dir`.
pub fn page_path(dir: &Path, name: &str, page: u32) -> PathBuf {
    dir.join(FOLDER).join(format!("{name}-{page:04}.json"))
}

/// What an export's `cloudtrail-lake/` held: the query file, the evidence folded from it, and
/// every file read (relative path, bytes) for the run's raw evidence.
#[derive(Debug)]
pub struct LakeData {
    pub query: QueryFile,
    pub trail: CloudTrailData,
    pub files: Vec<(String, Vec<u8>)>,
}

/// Reads `dir/cloudtrail-lake/` when it exists (`None` otherwise): the query file and the pages
/// of every FINISHED query it lists, folded. A file that is malformed stops the read with an
/// [`Error::Input`] naming it and the row.
pub fn read_export(dir: &Path, limits: &Limits) -> Result<Option<LakeData>> {
    let folder = dir.join(FOLDER);
    if !folder.is_dir() {
        return Ok(None);
    }
    let root = input::canonical_root(dir)?;
    let query_path = folder.join("query.json");
    let bytes = input::read_bytes(&query_path, Some(&root), limits)?;
    let query: QueryFile = serde_json::from_slice(&bytes)
        .map_err(|e| Error::input_file(&query_path, format!("expected the query file: {e}")))?;
    let mut files = vec![(format!("{FOLDER}/query.json"), bytes)];
    let mut fold = Fold::default();
    let mut calls = 0u64;
    for entry in &query.queries {
        let Some(kind) = QUERIES.iter().position(|(name, _)| *name == entry.name) else {
            return Err(Error::input_file(
                &query_path,
                format!("unknown query name {}", super::awsjson::quote(&entry.name)),
            ));
        };
        if entry.status != "FINISHED" {
            // A failed query is a coverage failure recorded by the collection; no pages.
            continue;
        }
        let mut page = 1;
        loop {
            let path = page_path(dir, &entry.name, page);
            if std::fs::symlink_metadata(&path).is_err() {
                break;
            }
            let bytes = input::read_bytes(&path, Some(&root), limits)?;
            let rows = parse_page(&path, &bytes)?;
            for (index, row) in rows.iter().enumerate() {
                let at = || format!("QueryResultRows[{index}]");
                let result = if kind == 0 {
                    fold_usage(&mut fold, row, &mut calls)
                } else {
                    fold_lifecycle(&mut fold, row)
                };
                result.map_err(|message| Error::input(&path, at(), message))?;
            }
            files.push((format!("{FOLDER}/{}-{page:04}.json", entry.name), bytes));
            page += 1;
        }
    }
    Ok(Some(LakeData {
        query,
        trail: fold.finish(),
        files,
    }))
}

/// One result row: column → value (`None` for a null, absent or empty value).
pub type Row = HashMap<String, Option<String>>;

/// The rows of a GetQueryResults page: `QueryResultRows` as lists of single-member objects.
pub fn parse_page(path: &Path, bytes: &[u8]) -> Result<Vec<Row>> {
    let page: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::input_file(path, format!("expected GetQueryResults JSON: {e}")))?;
    let Some(rows) = page.get("QueryResultRows") else {
        return Ok(Vec::new());
    };
    let Some(rows) = rows.as_array() else {
        return Err(Error::input(path, "QueryResultRows", "expected an array"));
    };
    let mut out = Vec::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        let bad = |what: &str| {
            Error::input(
                path,
                format!("QueryResultRows[{index}]"),
                format!("expected {what}"),
            )
        };
        let columns = row.as_array().ok_or_else(|| bad("a list of columns"))?;
        let mut map = Row::new();
        for column in columns {
            let object = column
                .as_object()
                .filter(|o| o.len() == 1)
                .ok_or_else(|| bad("each column an object with one member"))?;
            let (name, value) = object.iter().next().expect("one member");
            let value = match value {
                Value::Null => None,
                Value::String(s) if s.is_empty() => None,
                Value::String(s) => Some(s.clone()),
                _ => return Err(bad("string values")),
            };
            map.insert(name.clone(), value);
        }
        out.push(map);
    }
    Ok(out)
}

fn text<'r>(row: &'r Row, column: &str) -> Option<&'r str> {
    row.get(column).and_then(|v| v.as_deref())
}

/// A list column: a JSON array of strings, or Trino's `[a, b]` rendering of an array.
fn list(value: Option<&str>) -> Vec<Cow<'static, str>> {
    let Some(value) = value else {
        return Vec::new();
    };
    if let Ok(items) = serde_json::from_str::<Vec<String>>(value) {
        return items.into_iter().map(Cow::Owned).collect();
    }
    let inner = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Cow::Owned(s.to_string()))
        .collect()
}

/// A usage row folded: `windowStart` (epoch seconds), `calls` and the grouped columns. `total`
/// is the calls of the rows folded before, at most [`MAX_LAKE_CALLS`].
fn fold_usage(fold: &mut Fold, row: &Row, total: &mut u64) -> std::result::Result<(), String> {
    let number = |column: &str| -> std::result::Result<i64, String> {
        let value = text(row, column).ok_or(format!("no {column}"))?;
        value
            .parse::<i64>()
            .map_err(|_| format!("{column}: expected an integer, found {value:?}"))
    };
    let seconds = number("windowStart")?;
    let n = number("calls")?;
    if n < 0 {
        return Err(format!("calls: expected a count, found {n}"));
    }
    if !(0..=MAX_WINDOW_START).contains(&seconds) {
        return Err(format!(
            "windowStart: expected epoch seconds from 1970 to 9999, found {seconds}"
        ));
    }
    *total = total
        .checked_add(n as u64)
        .filter(|total| *total <= MAX_LAKE_CALLS)
        .ok_or_else(|| {
            format!("calls: the usage rows add up to more than {MAX_LAKE_CALLS} calls; expected counts of real calls")
        })?;
    let secret_id_list = list(text(row, "secretIdList"));
    fold.add_calls(&Calls {
        seconds,
        event_source: text(row, "eventSource").unwrap_or("unknown"),
        event_name: text(row, "eventName").unwrap_or("unknown"),
        region: text(row, "awsRegion"),
        source_ip: text(row, "sourceIPAddress"),
        error_code: text(row, "errorCode"),
        account: text(row, "account"),
        access_key_id: text(row, "accessKeyId"),
        secret_id: text(row, "secretId"),
        secret_id_list: &secret_id_list,
        n: n as u64,
    });
    Ok(())
}

/// A time as CloudTrail Lake prints it (`2023-07-10 12:20:00.000`, UTC) or RFC 3339.
pub fn parse_time(value: &str) -> Option<Timestamp> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

/// A lifecycle row folded: rebuilt as the CloudTrail record it came from (only the fields the
/// lifecycle mapping reads) and handed to the same mapping as a record read from a file.
fn fold_lifecycle(fold: &mut Fold, row: &Row) -> std::result::Result<(), String> {
    let time = text(row, "eventTime").ok_or("no eventTime")?;
    let time = parse_time(time).ok_or(format!("eventTime: expected a time, found {time:?}"))?;
    let stages = list(text(row, "versionStages"));
    let record = json!({
        "eventVersion": "1.08",
        "eventTime": time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        "eventSource": text(row, "eventSource"),
        "eventName": text(row, "eventName"),
        "userIdentity": {
            "arn": text(row, "userArn"),
            "invokedBy": text(row, "invokedBy"),
            "principalId": text(row, "principalId"),
            "type": text(row, "identityType"),
        },
        "sourceIPAddress": text(row, "sourceIPAddress"),
        "requestParameters": {
            "accessKeyId": text(row, "accessKeyId"),
            "status": text(row, "status"),
            "name": text(row, "name"),
            "secretId": text(row, "secretId"),
            "versionStage": text(row, "versionStage"),
            "versionStages": (!stages.is_empty()).then_some(stages),
            "moveToVersionId": text(row, "moveToVersionId"),
        },
        "responseElements": {
            "accessKey": { "accessKeyId": text(row, "createdAccessKeyId") },
            "arn": text(row, "arn"),
            "aRN": text(row, "aRN"),
        },
    });
    fold.add_lifecycle_record(&record.to_string())
}

/// Adds what CloudTrail Lake gave to what files gave (either may be absent).
pub fn with_files(files: Option<CloudTrailData>, lake: CloudTrailData) -> CloudTrailData {
    match files {
        None => lake,
        Some(mut data) => {
            cloudtrail::combine(&mut data, lake);
            data
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage_row(window_start: &str, calls: &str) -> Row {
        [
            ("accessKeyId", "AKIAEXAMPLE"),
            ("windowStart", window_start),
            ("calls", calls),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Some(v.to_string())))
        .collect()
    }

    #[test]
    fn usage_rows_out_of_range_are_refused_not_overflowed() {
        let mut fold = Fold::default();
        let mut total = 0;
        for bad in ["-9223372036854775808", "-1", "253402300800"] {
            let err = fold_usage(&mut fold, &usage_row(bad, "1"), &mut total).unwrap_err();
            assert!(
                err.starts_with("windowStart: expected epoch seconds"),
                "{err}"
            );
        }
        fold_usage(&mut fold, &usage_row("253402300799", "1"), &mut total).unwrap();
        let big = (MAX_LAKE_CALLS - 1).to_string();
        fold_usage(&mut fold, &usage_row("0", &big), &mut total).unwrap();
        assert_eq!(total, MAX_LAKE_CALLS);
        let err = fold_usage(&mut fold, &usage_row("0", "1"), &mut total).unwrap_err();
        assert!(err.contains("add up to more than"), "{err}");
        let err = fold_usage(
            &mut fold,
            &usage_row("0", &i64::MAX.to_string()),
            &mut total,
        )
        .unwrap_err();
        assert!(err.contains("add up to more than"), "{err}");
        let data = fold.finish();
        assert_eq!(data.records, MAX_LAKE_CALLS);
        assert_eq!(
            data.usage.iter().map(|u| u.calls).sum::<u64>(),
            MAX_LAKE_CALLS
        );
    }

    #[test]
    fn event_data_store_names_are_checked_strictly() {
        let arn = "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE";
        let store = EventDataStore::parse(arn).unwrap();
        assert_eq!(store.id, "EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE");
        assert_eq!(store.region.as_deref(), Some("us-east-1"));
        assert_eq!(store.account.as_deref(), Some("123456789012"));
        assert_eq!(EventDataStore::parse("abc-123").unwrap().region, None);
        for bad in [
            "",
            "-abc",
            "abc def",
            "abc;DROP",
            "abc' OR '1'='1",
            "abc\u{0}",
            "arn:aws:s3:us-east-1:123456789012:eventdatastore/abc",
            "arn:aws:cloudtrail:us-east-1:12345:eventdatastore/abc",
            "arn:aws:cloudtrail:nowhere:123456789012:eventdatastore/abc",
            "arn:aws:cloudtrail:us-east-1:123456789012:trail/abc",
            "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/a/b",
            &"a".repeat(129),
        ] {
            assert!(EventDataStore::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn rendering_fills_in_only_the_checked_id_and_our_times() {
        let store = EventDataStore::parse("eds-1").unwrap();
        let start = DateTime::parse_from_rfc3339("2023-07-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let end = DateTime::parse_from_rfc3339("2023-07-11T00:00:00.75Z")
            .unwrap()
            .with_timezone(&Utc);
        for (_, sql) in QUERIES {
            let text = render(sql, &store, start, end);
            assert!(text.contains("FROM eds-1\n"));
            assert!(text.contains(
                "eventTime >= '2023-07-01 00:00:00' AND eventTime < '2023-07-11 00:00:00'"
            ));
            assert!(!text.contains('{'), "{text}");
        }
    }

    #[test]
    fn a_page_must_have_the_api_shape() {
        let path = Path::new("usage-0001.json");
        let rows = parse_page(
            path,
            br#"{"QueryResultRows":[[{"a":"1"},{"b":null},{"c":""}]]}"#,
        )
        .unwrap();
        assert_eq!(rows[0]["a"].as_deref(), Some("1"));
        assert_eq!(rows[0]["b"], None);
        assert_eq!(rows[0]["c"], None);
        for bad in [
            &br#"{"QueryResultRows":{}}"#[..],
            br#"{"QueryResultRows":[{"a":"1"}]}"#,
            br#"{"QueryResultRows":[[{"a":"1","b":"2"}]]}"#,
            br#"{"QueryResultRows":[[{"a":1}]]}"#,
            br#"{"QueryResultRows":"#,
        ] {
            let error = parse_page(path, bad).unwrap_err().to_string();
            assert!(error.contains("usage-0001.json"), "{error}");
        }
    }

    #[test]
    fn lists_read_as_json_or_as_trino_prints_them() {
        assert_eq!(list(Some(r#"["a","b"]"#)), vec!["a", "b"]);
        assert_eq!(list(Some("[a, b]")), vec!["a", "b"]);
        assert!(list(None).is_empty());
    }
}
