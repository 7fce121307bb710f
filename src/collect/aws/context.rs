//! What every collection task shares: the bounded request budget (a semaphore), request counts
//! per operation, the failures that become coverage entries, the progress bar, and atomic writes
//! into the export layout.
//!
//! Paths are built only from the fixed file names of the layout, a validated [`AccountId`] and a
//! validated [`RegionName`]; no string that came from AWS ever becomes a path component.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_iam::config::http::HttpResponse;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::primitives::DateTime;
use chrono::SecondsFormat;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::error::Result;

/// The region name IAM coverage entries carry (IAM is global), as the export reader uses it.
pub const GLOBAL: &str = "global";

/// A 12-digit AWS account id, checked before it is used as a folder name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId(String);

impl AccountId {
    /// `Some` when `id` is exactly 12 ASCII digits.
    pub fn parse(id: &str) -> Option<AccountId> {
        crate::model::is_account_id(id).then(|| AccountId(id.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An AWS region name (`us-east-1`, `us-gov-west-1`), checked before it is used as a folder name
/// (the same rule as the export reader's).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegionName(String);

impl RegionName {
    /// `Some` when `name` looks like a region: at least three dash-separated parts of lowercase
    /// letters and digits, the first letters only, the last digits only.
    pub fn parse(name: &str) -> Option<RegionName> {
        crate::model::is_region_name(name).then(|| RegionName(name.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RegionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Failed calls of one account × region × API: how many, and the first error.
#[derive(Debug, Clone)]
struct Tally {
    failed: u64,
    first: String,
}

/// The shared state of one collection.
pub struct Ctx {
    root: PathBuf,
    permits: Semaphore,
    requests: AtomicU64,
    per_operation: Mutex<BTreeMap<&'static str, u64>>,
    failures: Mutex<BTreeMap<(String, String, &'static str), Tally>>,
    progress: ProgressBar,
}

impl Ctx {
    /// Writes under `root` with at most `concurrency` requests in flight.
    pub fn new(root: PathBuf, concurrency: usize, progress: bool) -> Ctx {
        let bar = if progress {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:25} {pos}/{len} AWS requests {wide_msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        } else {
            ProgressBar::hidden()
        };
        Ctx {
            root,
            permits: Semaphore::new(concurrency.max(1)),
            requests: AtomicU64::new(0),
            per_operation: Mutex::new(BTreeMap::new()),
            failures: Mutex::new(BTreeMap::new()),
            progress: bar,
        }
    }

    /// Runs one AWS request (`operation` like `iam:ListUsers`) within the concurrency bound,
    /// counting it and moving the progress bar.
    pub async fn call<T>(&self, operation: &'static str, request: impl Future<Output = T>) -> T {
        self.progress.inc_length(1);
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        self.count(operation);
        let out = request.await;
        self.progress.inc(1);
        out
    }

    /// Fetches the next page of a paginator within the concurrency bound; counts a request
    /// only when there was a page to fetch (the end of the stream sends nothing).
    pub async fn page<T>(
        &self,
        operation: &'static str,
        next: impl Future<Output = Option<T>>,
    ) -> Option<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let out = next.await;
        if out.is_some() {
            self.count(operation);
            self.progress.inc_length(1);
            self.progress.inc(1);
        }
        out
    }

    /// Counts one request without the semaphore (for callers that hold a permit already).
    fn count(&self, operation: &'static str) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        *self
            .per_operation
            .lock()
            .expect("counter lock")
            .entry(operation)
            .or_default() += 1;
    }

    /// Waits for a request slot and counts the request; the slot is held while the guard lives.
    pub async fn slot(&self, operation: &'static str) -> tokio::sync::SemaphorePermit<'_> {
        self.progress.inc_length(1);
        let permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        self.count(operation);
        permit
    }

    /// Marks a request taken with [`Ctx::slot`] as done on the progress bar.
    pub fn done(&self) {
        self.progress.inc(1);
    }

    /// Shows what is being read next to the bar.
    pub fn status(&self, message: String) {
        self.progress.set_message(message);
    }

    /// Records a failed call: `api` in the export reader's naming (`iam:list-access-keys`), the
    /// region `global` for IAM.
    pub fn fail(&self, account: &str, region: &str, api: &'static str, error: String) {
        let mut failures = self.failures.lock().expect("failure lock");
        failures
            .entry((account.to_string(), region.to_string(), api))
            .and_modify(|t| t.failed += 1)
            .or_insert(Tally {
                failed: 1,
                first: error,
            });
    }

    /// Requests sent so far (retries inside the SDK not counted).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Requests per operation, sorted by operation.
    pub fn requests_by_operation(&self) -> BTreeMap<&'static str, u64> {
        self.per_operation.lock().expect("counter lock").clone()
    }

    /// Failed calls in all.
    pub fn failed_calls(&self) -> u64 {
        self.failures
            .lock()
            .expect("failure lock")
            .values()
            .map(|t| t.failed)
            .sum()
    }

    /// The coverage entries of the failures, sorted by account, region and API, in the
    /// `CoverageEntry` shape of the model.
    pub fn coverage(&self) -> Value {
        let failures = self.failures.lock().expect("failure lock");
        Value::Array(
            failures
                .iter()
                .map(|((account, region, api), tally)| {
                    let error = if tally.failed == 1 {
                        tally.first.clone()
                    } else {
                        format!("{} calls failed; the first: {}", tally.failed, tally.first)
                    };
                    json!({
                        "account": account,
                        "region": region,
                        "api": api,
                        "ok": false,
                        "error": error,
                        "records": 0,
                    })
                })
                .collect(),
        )
    }

    pub fn finish_progress(&self) {
        self.progress.finish_and_clear();
    }

    /// `aws/<account>/iam/<file>`.
    pub fn iam_file(&self, account: &AccountId, file: &'static str) -> PathBuf {
        self.root
            .join("aws")
            .join(account.as_str())
            .join("iam")
            .join(file)
    }

    /// `aws/<account>/secretsmanager/<region>/<file>`.
    pub fn secrets_file(
        &self,
        account: &AccountId,
        region: &RegionName,
        file: &'static str,
    ) -> PathBuf {
        self.root
            .join("aws")
            .join(account.as_str())
            .join("secretsmanager")
            .join(region.as_str())
            .join(file)
    }

    /// `cloudtrail/<account>/<region>/lookup-events-NNNN.json`.
    pub fn cloudtrail_page(&self, account: &AccountId, region: &RegionName, page: u32) -> PathBuf {
        self.root
            .join("cloudtrail")
            .join(account.as_str())
            .join(region.as_str())
            .join(format!("lookup-events-{page:04}.json"))
    }

    /// `coverage.json` at the top of the export.
    pub fn coverage_file(&self) -> PathBuf {
        self.root.join("coverage.json")
    }
}

/// Writes `value` as pretty JSON (with a final newline) to `path`, atomically.
pub fn write_json(path: &Path, value: &Value) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("JSON values always serialise");
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Writes `bytes` to `path` atomically and owner-only (see [`crate::output::write_file`]),
/// creating its folders (owner-only) first.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = path
        .parent()
        .expect("export paths always have a parent folder");
    crate::output::create_private_dir_all(parent)?;
    crate::output::write_file(path, bytes)
}

/// An AWS timestamp as the CLI prints it: RFC 3339 in UTC, with fractional seconds only when
/// there are any.
pub fn iso(date: &DateTime) -> String {
    chrono::DateTime::from_timestamp(date.secs(), date.subsec_nanos())
        .map(|d| d.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        // Out of chrono's range (year ±262,000): keep the epoch seconds the API sent.
        .unwrap_or_else(|| date.secs().to_string())
}

/// `iso` of an optional date, as a JSON value (`null` when absent).
pub fn iso_opt(date: Option<&DateTime>) -> Value {
    date.map(|d| Value::String(iso(d))).unwrap_or(Value::Null)
}

/// A JSON object without its `null` members, as the AWS CLI prints outputs.
pub fn compact(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).collect())
        }
        other => other,
    }
}

/// One line about a failed SDK call: the service's error code and message (or the HTTP status
/// when the answer was not an AWS error), or the chain of causes of a transport failure
/// (connection refused, timeout, no credentials).
pub fn describe<E>(error: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match error {
        SdkError::ServiceError(service) => {
            let err = service.err();
            let status = service.raw().status().as_u16();
            match (err.code(), err.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => format!("{code} (HTTP {status})"),
                _ => format!("HTTP {status} without an AWS error in the body"),
            }
        }
        other => {
            let mut line = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                let text = cause.to_string();
                if !line.ends_with(&text) {
                    line.push_str(": ");
                    line.push_str(&text);
                }
                source = cause.source();
            }
            line
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_twelve_digits() {
        assert!(AccountId::parse("111111111111").is_some());
        for bad in [
            "11111111111",
            "1111111111111",
            "11111111111a",
            "../111111111",
            "",
        ] {
            assert!(AccountId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn region_names_are_checked() {
        for good in ["us-east-1", "eu-west-2", "us-gov-west-1", "ap-southeast-12"] {
            assert!(RegionName::parse(good).is_some(), "{good}");
        }
        for bad in [
            "us-east",
            "US-east-1",
            "../x-1",
            "us/east-1",
            "1us-east-1",
            "us--1",
            "",
        ] {
            assert!(RegionName::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn dates_are_rfc3339_utc() {
        assert_eq!(
            iso(&DateTime::from_secs(1_525_747_253)),
            "2018-05-08T02:40:53Z"
        );
        assert_eq!(
            iso(&DateTime::from_fractional_secs(1_525_747_253, 0.5)),
            "2018-05-08T02:40:53.500Z"
        );
    }

    #[test]
    fn failures_become_sorted_coverage_entries() {
        let ctx = Ctx::new(PathBuf::from("/nonexistent"), 2, false);
        ctx.fail(
            "222222222222",
            "us-east-1",
            "secretsmanager:list-secrets",
            "boom".into(),
        );
        ctx.fail(
            "111111111111",
            GLOBAL,
            "iam:get-access-key-last-used",
            "first".into(),
        );
        ctx.fail(
            "111111111111",
            GLOBAL,
            "iam:get-access-key-last-used",
            "second".into(),
        );
        let coverage = ctx.coverage();
        assert_eq!(coverage[0]["account"], "111111111111");
        assert_eq!(coverage[0]["ok"], false);
        assert_eq!(coverage[0]["records"], 0);
        assert_eq!(coverage[0]["error"], "2 calls failed; the first: first");
        assert_eq!(coverage[1]["error"], "boom");
        assert_eq!(ctx.failed_calls(), 3);
        let entries: Vec<crate::model::CoverageEntry> =
            serde_json::from_value(coverage).expect("the model's shape");
        assert_eq!(entries.len(), 2);
    }
}
