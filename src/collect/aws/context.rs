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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_iam::config::http::HttpResponse;
use aws_sdk_iam::config::interceptors::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_iam::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_iam::error::BoxError;
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
    /// Calls that went as they should but that coverage reports, with their record counts.
    notes: Mutex<BTreeMap<(String, String, &'static str), u64>>,
    /// Every HTTP attempt and every throttled answer, across all clients.
    pub attempts: Arc<Attempts>,
    accounts: AtomicU64,
    accounts_done: AtomicU64,
    progress: ProgressBar,
}

impl Ctx {
    /// Writes under `root` with at most `concurrency` requests in flight.
    pub fn new(root: PathBuf, concurrency: usize, progress: bool) -> Ctx {
        let bar = if progress {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {prefix} {bar:25} {pos}/{len} AWS requests {wide_msg}",
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
            notes: Mutex::new(BTreeMap::new()),
            attempts: Arc::new(Attempts::default()),
            accounts: AtomicU64::new(0),
            accounts_done: AtomicU64::new(0),
            progress: bar,
        }
    }

    /// Runs one AWS request (`operation` like `iam:ListUsers`) within the concurrency bound,
    /// counting it and moving the progress bar.
    pub async fn call<T>(&self, operation: &'static str, request: impl Future<Output = T>) -> T {
        self.progress.inc_length(1);
        self.attempts.wait_turn().await;
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
        self.attempts.wait_turn().await;
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
        self.attempts.wait_turn().await;
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

    /// How many accounts the collection reads (shown as `accounts done/all` on the bar).
    pub fn set_accounts(&self, accounts: u64) {
        self.accounts.store(accounts, Ordering::Relaxed);
        self.show_accounts();
    }

    /// One more account read completely.
    pub fn account_done(&self) {
        self.accounts_done.fetch_add(1, Ordering::Relaxed);
        self.show_accounts();
    }

    fn show_accounts(&self) {
        self.progress.set_prefix(format!(
            "accounts {}/{}",
            self.accounts_done.load(Ordering::Relaxed),
            self.accounts.load(Ordering::Relaxed)
        ));
    }

    /// One line of progress for a log without a terminal: accounts done, requests, throttled.
    pub fn progress_line(&self) -> String {
        let throttled = self.attempts.throttled();
        format!(
            "collecting: accounts {}/{} done, {} requests{}",
            self.accounts_done.load(Ordering::Relaxed),
            self.accounts.load(Ordering::Relaxed),
            self.requests(),
            if throttled > 0 {
                format!(", {throttled} throttled and retried")
            } else {
                String::new()
            }
        )
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

    /// Records a successful step that coverage should show (`ok: true`) with the records it
    /// gave, e.g. `iam:get-access-key-last-used:fallback` and how many keys took it.
    pub fn note(&self, account: &str, region: &str, api: &'static str, records: u64) {
        *self
            .notes
            .lock()
            .expect("note lock")
            .entry((account.to_string(), region.to_string(), api))
            .or_default() += records;
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
        let notes = self.notes.lock().expect("note lock");
        let mut entries: BTreeMap<&(String, String, &'static str), Value> = BTreeMap::new();
        for (key, tally) in failures.iter() {
            let error = if tally.failed == 1 {
                tally.first.clone()
            } else {
                format!("{} calls failed; the first: {}", tally.failed, tally.first)
            };
            entries.insert(key, entry_json(key, false, Some(error), 0));
        }
        for (key, records) in notes.iter() {
            entries.insert(key, entry_json(key, true, None, *records));
        }
        let throttled = self.attempts.throttled_by_place();
        for (key, records) in throttled.iter() {
            entries.insert(key, entry_json(key, true, None, *records));
        }
        Value::Array(entries.into_values().collect())
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

/// The coverage api name of requests that AWS throttled and the SDK retried (adaptive backoff,
/// at most `MAX_ATTEMPTS` attempts): an `ok` entry whose records count the throttled answers,
/// so a slowed-down collection says so. A request still throttled on its last attempt fails
/// and is recorded as that call's failure.
pub const THROTTLED: &str = "aws:throttled-and-retried";

/// Counts of HTTP attempts and throttled answers, shared by every client's [`AttemptWatch`].
#[derive(Debug, Default)]
pub struct Attempts {
    attempts: AtomicU64,
    throttled_total: AtomicU64,
    throttled: Mutex<BTreeMap<(String, String, &'static str), u64>>,
    backoff: Mutex<Backoff>,
}

/// The collection-wide backoff: every throttled answer raises the level and holds back new
/// requests of every task for `BACKOFF_BASE × 2^(level−1)` (with jitter, at most
/// `BACKOFF_MAX`); every few answers that are not throttled lower it again. The SDK retries
/// the throttled request itself (exponential backoff with jitter, bounded attempts); this makes
/// the rest of the collection slow down with it instead of running into the same limit.
#[derive(Debug, Default)]
struct Backoff {
    level: u32,
    /// Answers not throttled since the level last changed.
    calm: u32,
    until: Option<tokio::time::Instant>,
}

const BACKOFF_BASE: std::time::Duration = std::time::Duration::from_millis(100);
const BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(10);
/// Answers not throttled that lower the backoff level by one.
const CALM_TO_EASE: u32 = 4;

impl Attempts {
    /// HTTP attempts sent, retries included.
    pub fn sent(&self) -> u64 {
        self.attempts.load(Ordering::Relaxed)
    }

    /// Answers that were throttling errors.
    pub fn throttled(&self) -> u64 {
        self.throttled_total.load(Ordering::Relaxed)
    }

    fn throttled_by_place(&self) -> BTreeMap<(String, String, &'static str), u64> {
        self.throttled.lock().expect("attempt lock").clone()
    }

    /// Waits while the collection is backing off.
    pub async fn wait_turn(&self) {
        loop {
            let until = self.backoff.lock().expect("backoff lock").until;
            match until {
                Some(until) if until > tokio::time::Instant::now() => {
                    tokio::time::sleep_until(until).await;
                }
                _ => return,
            }
        }
    }

    fn answered(&self, throttled: bool) {
        let mut backoff = self.backoff.lock().expect("backoff lock");
        if throttled {
            backoff.level = (backoff.level + 1).min(16);
            backoff.calm = 0;
            let full = BACKOFF_BASE
                .saturating_mul(1 << (backoff.level - 1).min(10))
                .min(BACKOFF_MAX);
            // Half fixed, half jitter, so waiting tasks do not all come back at once.
            let jitter = full.mul_f64(rand_fraction() / 2.0);
            let until = tokio::time::Instant::now() + full / 2 + jitter;
            backoff.until = Some(backoff.until.map_or(until, |u| u.max(until)));
        } else if backoff.level > 0 {
            backoff.calm += 1;
            if backoff.calm >= CALM_TO_EASE {
                backoff.level -= 1;
                backoff.calm = 0;
            }
        }
    }
}

/// A number in [0, 1) from the clock's nanoseconds: jitter only, not for anything secret.
fn rand_fraction() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    f64::from(nanos % 1_000_000) / 1_000_000.0
}

#[cfg(test)]
impl Attempts {
    fn backoff_level(&self) -> u32 {
        self.backoff.lock().unwrap().level
    }
}

/// An SDK interceptor on every client: counts each HTTP attempt, and each answer that is a
/// throttling error, for the account and region of the client.
#[derive(Debug, Clone)]
pub struct AttemptWatch {
    pub attempts: Arc<Attempts>,
    /// The account and region the client reads; `None` before the account is known (the
    /// base credentials' first GetCallerIdentity), counted in the total only.
    pub place: Option<(String, String)>,
}

/// The error codes AWS services throttle with (those the SDK's retry classifier retries as
/// throttling).
const THROTTLING_CODES: [&str; 8] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "SlowDown",
];

/// Whether an answer is a throttling error: HTTP 429, or a 4xx whose body names a throttling
/// code (as `<Code>…</Code>` in XML or `"__type":"…"` in JSON).
fn is_throttling(status: u16, body: &[u8]) -> bool {
    if status == 429 {
        return true;
    }
    if !(400..500).contains(&status) {
        return false;
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]);
    THROTTLING_CODES.iter().any(|code| {
        text.contains(&format!("<Code>{code}</Code>"))
            || text.contains(&format!("\"{code}\""))
            || text.contains(&format!("#{code}\""))
    })
}

impl Intercept for AttemptWatch {
    fn name(&self) -> &'static str {
        "credaudit-attempt-watch"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.attempts.attempts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(response) = context.response() {
            let body = response.body().bytes().unwrap_or_default();
            let throttled = is_throttling(response.status().as_u16(), body);
            self.attempts.answered(throttled);
            if throttled {
                self.attempts
                    .throttled_total
                    .fetch_add(1, Ordering::Relaxed);
                if let Some((account, region)) = &self.place {
                    *self
                        .attempts
                        .throttled
                        .lock()
                        .expect("attempt lock")
                        .entry((account.clone(), region.clone(), THROTTLED))
                        .or_default() += 1;
                }
            }
        }
        Ok(())
    }
}

/// One coverage entry in the `CoverageEntry` shape of the model.
fn entry_json(
    (account, region, api): &(String, String, &'static str),
    ok: bool,
    error: Option<String>,
    records: u64,
) -> Value {
    json!({
        "account": account,
        "region": region,
        "api": api,
        "ok": ok,
        "error": error,
        "records": records,
    })
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
    fn the_progress_line_counts_accounts_requests_and_throttling() {
        let ctx = Ctx::new(PathBuf::from("/nonexistent"), 2, false);
        ctx.set_accounts(3);
        ctx.account_done();
        ctx.count("iam:ListAccessKeys");
        ctx.count("iam:ListAccessKeys");
        assert_eq!(
            ctx.progress_line(),
            "collecting: accounts 1/3 done, 2 requests"
        );
        ctx.attempts.throttled_total.fetch_add(4, Ordering::Relaxed);
        assert_eq!(
            ctx.progress_line(),
            "collecting: accounts 1/3 done, 2 requests, 4 throttled and retried"
        );
    }

    #[test]
    fn throttling_raises_the_backoff_and_calm_answers_lower_it() {
        let attempts = Attempts::default();
        attempts.answered(true);
        attempts.answered(true);
        assert_eq!(attempts.backoff_level(), 2);
        assert!(attempts.backoff.lock().unwrap().until.is_some());
        for _ in 0..CALM_TO_EASE {
            attempts.answered(false);
        }
        assert_eq!(attempts.backoff_level(), 1);
        for _ in 0..CALM_TO_EASE * 3 {
            attempts.answered(false);
        }
        assert_eq!(attempts.backoff_level(), 0, "never below zero");
        for _ in 0..40 {
            attempts.answered(true);
        }
        assert_eq!(attempts.backoff_level(), 16, "bounded");
        let until = attempts.backoff.lock().unwrap().until.unwrap();
        assert!(until <= tokio::time::Instant::now() + BACKOFF_MAX);
    }

    #[test]
    fn throttling_answers_are_recognised_in_every_protocol() {
        let xml = br#"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>
            <Message>Rate exceeded</Message></Error></ErrorResponse>"#;
        assert!(is_throttling(400, xml));
        let json = br#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
        assert!(is_throttling(400, json));
        let namespaced = br#"{"__type":"com.amazonaws#TooManyRequestsException"}"#;
        assert!(is_throttling(400, namespaced));
        assert!(is_throttling(429, b""));
        assert!(!is_throttling(
            400,
            br#"{"__type":"AccessDeniedException"}"#
        ));
        assert!(!is_throttling(500, xml), "a server error is not throttling");
        assert!(!is_throttling(200, json));
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
