//! CloudTrail Lake (`--cloudtrail-lake`): the queries of [`crate::collect::lake`] over
//! `[as_of − window, as_of)`, run by the event data store's SQL engine with StartQuery, waited
//! for with DescribeQuery (backing off, for at most [`MAX_WAIT`]), and every page of their
//! results read with GetQueryResults and written as returned to
//! `cloudtrail-lake/<name>-NNNN.json`, beside `cloudtrail-lake/query.json` (the store, window,
//! query ids and statements). A query that fails, is cancelled, times out or is not done in
//! time is a coverage failure (`cloudtrail:lake-query`) with the error, never an empty result.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudtrail::types::QueryStatus;
use serde_json::{Value, json};

use super::AwsOptions;
use super::context::{Ctx, RegionName, describe, write_json};
use super::session::Account;
use crate::collect::lake::{self, EventDataStore, QueryEntry, QueryFile};
use crate::error::{Error, Result};
use crate::model::Timestamp;

/// The longest a query is waited for before it counts as failed.
pub const MAX_WAIT: Duration = Duration::from_secs(30 * 60);

/// The first wait between DescribeQuery calls; doubled after each, up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(250);
const MAX_POLL: Duration = Duration::from_secs(10);

/// The coverage API name of a failed query.
const API: &str = "cloudtrail:lake-query";

/// The event data store of `--cloudtrail-lake`, checked, and a window to read (a Lake query
/// over 0 days would read nothing: refused rather than silently empty).
pub fn store(options: &AwsOptions) -> Result<Option<crate::collect::lake::EventDataStore>> {
    let Some(given) = &options.cloudtrail_lake else {
        if options.cloudtrail_window_days > 90 {
            return Err(Error::Usage(
                "--cloudtrail-window over 90 days needs --cloudtrail-lake (LookupEvents keeps 90 days)"
                    .to_string(),
            ));
        }
        return Ok(None);
    };
    let store = crate::collect::lake::EventDataStore::parse(given)
        .map_err(|e| Error::Usage(format!("--cloudtrail-lake {given:?}: {e}")))?;
    if options.cloudtrail_window_days == 0 {
        return Err(Error::Usage(
            "--cloudtrail-lake needs a --cloudtrail-window of at least 1 day".to_string(),
        ));
    }
    Ok(Some(store))
}

/// Runs both queries on `store` (through `account` in `region`) and writes what they return.
pub async fn collect(
    ctx: Arc<Ctx>,
    account: Account,
    region: RegionName,
    store: EventDataStore,
    start: Timestamp,
    end: Timestamp,
) -> Result<()> {
    let client = account.cloudtrail(&region);
    let root = ctx
        .coverage_file()
        .parent()
        .expect("the export root")
        .to_path_buf();
    let mut file = QueryFile {
        event_data_store: store.given.clone(),
        start: start.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        end: end.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        queries: Vec::new(),
    };
    let fail = |error: String| ctx.fail(account.id.as_str(), region.as_str(), API, error);
    for (name, sql) in lake::QUERIES {
        ctx.status(format!("CloudTrail Lake {name} query on {}", store.id));
        let statement = lake::render(sql, &store, start, end);
        let started = ctx
            .call(
                "cloudtrail:StartQuery",
                client.start_query().query_statement(&statement).send(),
            )
            .await;
        let query_id = match started {
            Ok(output) => output.query_id().unwrap_or_default().to_string(),
            Err(error) => {
                fail(format!("{name} query: StartQuery: {}", describe(&error)));
                continue;
            }
        };
        let status = wait(&ctx, &client, &query_id).await;
        let mut entry = QueryEntry {
            name: name.to_string(),
            query_id: query_id.clone(),
            statement,
            status: status
                .as_ref()
                .map_or_else(|(s, _)| s.clone(), String::clone),
        };
        if let Err((status, error)) = status {
            fail(format!("{name} query {query_id} {status}: {error}"));
            file.queries.push(entry);
            continue;
        }
        if let Err(error) = read_pages(&ctx, &client, &root, name, &query_id).await? {
            fail(format!("{name} query {query_id}: {error}"));
            entry.status = "INCOMPLETE".to_string();
        }
        file.queries.push(entry);
    }
    let value = serde_json::to_value(&file).expect("plain data");
    write_json(&root.join(lake::FOLDER).join("query.json"), &value)
}

/// Waits for the query to finish: `Ok(status)` when FINISHED, else `Err((status, error))`.
async fn wait(
    ctx: &Ctx,
    client: &aws_sdk_cloudtrail::Client,
    query_id: &str,
) -> std::result::Result<String, (String, String)> {
    let deadline = tokio::time::Instant::now() + MAX_WAIT;
    let mut pause = FIRST_POLL;
    loop {
        let described = ctx
            .call(
                "cloudtrail:DescribeQuery",
                client.describe_query().query_id(query_id).send(),
            )
            .await;
        let output = described.map_err(|e| {
            (
                "UNKNOWN".to_string(),
                format!("DescribeQuery: {}", describe(&e)),
            )
        })?;
        let status = output.query_status().cloned();
        let shown = status
            .as_ref()
            .map_or("no status".to_string(), |s| s.as_str().to_string());
        match status {
            Some(QueryStatus::Finished) => return Ok(shown),
            Some(QueryStatus::Queued | QueryStatus::Running) => {}
            _ => {
                let error = output
                    .error_message()
                    .unwrap_or("the query did not finish (no error message)");
                return Err((shown, error.to_string()));
            }
        }
        if tokio::time::Instant::now() + pause > deadline {
            return Err((
                shown,
                format!("not finished after {} s; left running", MAX_WAIT.as_secs()),
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_POLL);
    }
}

/// Reads every page of a finished query's results into `<name>-NNNN.json`. An error reading
/// a page is `Ok(Err(..))` (a coverage failure); an error writing is `Err`.
async fn read_pages(
    ctx: &Ctx,
    client: &aws_sdk_cloudtrail::Client,
    root: &std::path::Path,
    name: &str,
    query_id: &str,
) -> Result<std::result::Result<(), String>> {
    let mut next_token: Option<String> = None;
    let mut page = 0u32;
    loop {
        let result = ctx
            .call(
                "cloudtrail:GetQueryResults",
                client
                    .get_query_results()
                    .query_id(query_id)
                    .set_next_token(next_token.clone())
                    .send(),
            )
            .await;
        let output = match result {
            Ok(output) => output,
            Err(error) => {
                return Ok(Err(format!(
                    "GetQueryResults after {page} page(s): {}",
                    describe(&error)
                )));
            }
        };
        page += 1;
        let rows: Vec<Value> = output
            .query_result_rows()
            .iter()
            .map(|row| {
                Value::Array(
                    row.iter()
                        .flat_map(|columns| {
                            let mut columns: Vec<(&String, &String)> = columns.iter().collect();
                            columns.sort();
                            columns
                                .into_iter()
                                .map(|(k, v)| json!({ k.as_str(): v }))
                                .collect::<Vec<_>>()
                        })
                        .collect(),
                )
            })
            .collect();
        let statistics = output.query_statistics().map(|s| {
            json!({
                "ResultsCount": s.results_count(),
                "TotalResultsCount": s.total_results_count(),
                "BytesScanned": s.bytes_scanned(),
            })
        });
        let mut doc = json!({
            "QueryStatus": output.query_status().map(|s| s.as_str()),
            "QueryResultRows": rows,
        });
        if let Some(statistics) = statistics {
            doc["QueryStatistics"] = statistics;
        }
        if let Some(token) = output.next_token() {
            doc["NextToken"] = Value::from(token);
        }
        write_json(&lake::page_path(root, name, page), &doc)?;
        next_token = output.next_token().map(str::to_string);
        if next_token.as_deref().is_none_or(str::is_empty) {
            return Ok(Ok(()));
        }
    }
}
