//! IAM of one account at the fewest requests: the credential report (generated, then polled with
//! exponential backoff under an overall timeout), the users with their tags from
//! GetAccountAuthorizationDetails, ListAccessKeys for the users that may hold keys, and
//! GetAccessKeyLastUsed only for keys the report cannot speak for (see [`collect`]) — every list
//! followed through all its pages. Written as the AWS CLI prints these outputs, into
//! `aws/<account>/iam/`.
//!
//! A call that fails is recorded (coverage) and its record left out; nothing is written that
//! would claim more than AWS said. In particular a key whose GetAccessKeyLastUsed failed gets no
//! last-used record: the export reader then takes its last use from the credential report.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_iam::Client;
use aws_sdk_iam::operation::generate_credential_report::GenerateCredentialReportError;
use aws_sdk_iam::operation::get_credential_report::GetCredentialReportError;
use aws_sdk_iam::types::{AccessKeyMetadata, EntityType, Tag, UserDetail};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::context::{
    AccountId, Ctx, GLOBAL, compact, describe, iso_opt, write_atomic, write_json,
};
use super::session::Account;
use crate::collect::credential_report::{self, ReportRow, SlotMatch};
use crate::error::Result;

/// How long to wait for the credential report, and how the polls are spaced.
#[derive(Debug, Clone, Copy)]
pub struct ReportPolling {
    pub timeout: Duration,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for ReportPolling {
    fn default() -> Self {
        ReportPolling {
            timeout: Duration::from_secs(120),
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

/// What GenerateCredentialReport answered.
#[derive(Debug)]
pub enum Generated {
    /// Started, in progress or complete.
    Started,
    /// Too many reports requested lately: wait and ask again.
    LimitExceeded,
    Failed(String),
}

/// What GetCredentialReport answered.
#[derive(Debug)]
pub enum Fetched {
    Ready(Vec<u8>),
    /// `ReportInProgress`: poll again.
    InProgress,
    /// `ReportNotPresent` or `ReportExpired`: generate one again.
    Missing,
    Failed(String),
}

/// Generates the credential report and polls until it is there, with exponential backoff, giving
/// up after `polling.timeout` in all (however the calls answer or hang).
pub async fn poll_report<G, GF, F, FF>(
    mut generate: G,
    mut fetch: F,
    polling: ReportPolling,
) -> Result<Vec<u8>, String>
where
    G: FnMut() -> GF,
    GF: Future<Output = Generated>,
    F: FnMut() -> FF,
    FF: Future<Output = Fetched>,
{
    let deadline = Instant::now() + polling.timeout;
    let give_up = || {
        format!(
            "the credential report was not ready after {} s",
            polling.timeout.as_secs_f64()
        )
    };
    let attempt = async {
        let mut delay = polling.first_delay;
        let mut need_report = true;
        let mut last_state = "not requested";
        loop {
            if need_report {
                match generate().await {
                    Generated::Started => need_report = false,
                    Generated::LimitExceeded => last_state = "LimitExceeded",
                    Generated::Failed(error) => return Err(error),
                }
            }
            if !need_report {
                match fetch().await {
                    Fetched::Ready(bytes) => return Ok(bytes),
                    Fetched::InProgress => last_state = "ReportInProgress",
                    Fetched::Missing => {
                        last_state = "ReportNotPresent";
                        need_report = true;
                    }
                    Fetched::Failed(error) => return Err(error),
                }
            }
            if Instant::now() + delay > deadline {
                return Err(format!("{} (last answer: {last_state})", give_up()));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(polling.max_delay);
        }
    };
    match tokio::time::timeout_at(deadline, attempt).await {
        Ok(result) => result,
        Err(_) => Err(give_up()),
    }
}

async fn generate(ctx: &Ctx, client: &Client) -> Generated {
    match ctx
        .call(
            "iam:GenerateCredentialReport",
            client.generate_credential_report().send(),
        )
        .await
    {
        Ok(_) => Generated::Started,
        Err(error) => match error.as_service_error() {
            Some(GenerateCredentialReportError::LimitExceededException(_)) => {
                Generated::LimitExceeded
            }
            _ => Generated::Failed(describe(&error)),
        },
    }
}

async fn fetch(ctx: &Ctx, client: &Client) -> Fetched {
    match ctx
        .call(
            "iam:GetCredentialReport",
            client.get_credential_report().send(),
        )
        .await
    {
        Ok(output) => match output.content() {
            Some(content) => Fetched::Ready(content.as_ref().to_vec()),
            None => Fetched::Failed("GetCredentialReport returned no Content".to_string()),
        },
        Err(error) => match error.as_service_error() {
            Some(GetCredentialReportError::CredentialReportNotReadyException(_)) => {
                Fetched::InProgress
            }
            Some(
                GetCredentialReportError::CredentialReportNotPresentException(_)
                | GetCredentialReportError::CredentialReportExpiredException(_),
            ) => Fetched::Missing,
            _ => Fetched::Failed(describe(&error)),
        },
    }
}

/// Follows every page of a paginator (a `PaginationStream`), calling `take` on each page; stops
/// at the first failure and returns it.
macro_rules! all_pages {
    ($ctx:expr, $op:expr, $stream:expr, |$page:ident| $take:expr) => {{
        let mut stream = $stream;
        let mut failure: Option<String> = None;
        loop {
            match $ctx.page($op, stream.next()).await {
                None => break,
                Some(Ok($page)) => $take,
                Some(Err(error)) => {
                    failure = Some(describe(&error));
                    break;
                }
            }
        }
        failure
    }};
}
pub(crate) use all_pages;

/// How much IAM to ask for.
#[derive(Debug, Clone, Copy, Default)]
pub struct IamOptions {
    /// One GetAccessKeyLastUsed and one ListAccessKeys for every key and user, instead of
    /// taking last use from the credential report (which IAM regenerates at most every 4 hours).
    pub precise_last_used: bool,
}

/// Reads the IAM of `account` into the export, at the fewest requests: the credential report;
/// the users with their tags from GetAccountAuthorizationDetails (pages of 1,000); ListAccessKeys
/// only for users the report shows with a key or does not know yet; GetAccessKeyLastUsed only for
/// a key whose slot in the report cannot be told (recorded in coverage). Without a report, or with
/// `precise_last_used`, every user's keys are listed and every key's last use asked for.
pub async fn collect(ctx: Arc<Ctx>, account: Account, options: IamOptions) -> Result<()> {
    let client = account.iam();
    let id = &account.id;
    ctx.status(format!("IAM of {id}"));
    let report = async {
        poll_report(
            || generate(&ctx, &client),
            || fetch(&ctx, &client),
            ReportPolling::default(),
        )
        .await
    };
    let (report, users) = tokio::join!(report, authorization_details(&ctx, &client, id));
    let rows = match report {
        Ok(csv) => {
            let path = ctx.iam_file(id, "credential-report.csv");
            write_atomic(&path, &csv)?;
            // What IAM sent is written as it is; the reader checks it. Here it only steers
            // which users and keys need asking about, so a report that does not parse is
            // as good as none.
            std::str::from_utf8(&csv)
                .ok()
                .and_then(|text| credential_report::parse_csv_file(&path, text).ok())
        }
        Err(error) => {
            ctx.fail(id.as_str(), GLOBAL, "iam:credential-report", error);
            None
        }
    };
    let users = users?;
    let precise = options.precise_last_used || rows.is_none();
    let rows = rows.unwrap_or_default();

    let listed: Vec<&str> = users.iter().filter_map(|u| u.user_name()).collect();
    let names = users_to_list(&rows, &listed, precise);
    let keys = list_all_keys(&ctx, &client, id, names).await;
    write_json(
        &ctx.iam_file(id, "list-access-keys.json"),
        &Value::Array(
            keys.iter()
                .map(|keys| json!({ "AccessKeyMetadata": keys.iter().map(key_json).collect::<Vec<_>>() }))
                .collect(),
        ),
    )?;

    // Whose last use to ask for: the keys the report cannot speak for.
    let rows_by_user: BTreeMap<&str, &ReportRow> =
        rows.iter().map(|row| (row.user.as_str(), row)).collect();
    let asked: Vec<String> = keys
        .iter()
        .flatten()
        .filter(|key| precise || !report_speaks_for(&rows_by_user, key))
        .filter_map(|key| key.access_key_id().map(str::to_string))
        .collect();
    if !precise && !asked.is_empty() {
        ctx.note(
            id.as_str(),
            GLOBAL,
            "iam:get-access-key-last-used:fallback",
            asked.len() as u64,
        );
    }
    if asked.is_empty() {
        return Ok(());
    }
    let records = last_used_of(&ctx, &client, id, asked).await;
    write_json(
        &ctx.iam_file(id, "get-access-key-last-used.json"),
        &Value::Array(records),
    )
}

/// Whose keys to list: with `precise` (or no report), every user's; else those the report shows
/// holding a key, and those it does not know (made since it was generated: GetAccountAuthorization
/// Details lists them). A user the report shows without a key who made one since is not listed
/// (the report's age, at most 4 hours, is said in the bundle's sources).
fn users_to_list(rows: &[ReportRow], listed: &[&str], precise: bool) -> BTreeSet<String> {
    let in_report: BTreeSet<&str> = rows
        .iter()
        .filter(|row| !row.is_root())
        .map(|row| row.user.as_str())
        .collect();
    let mut names: BTreeSet<String> = rows
        .iter()
        .filter(|row| !row.is_root())
        .filter(|row| {
            precise
                || row
                    .keys
                    .iter()
                    .any(|k| k.last_rotated.is_some() || k.active)
        })
        .map(|row| row.user.clone())
        .collect();
    names.extend(
        listed
            .iter()
            .filter(|name| precise || !in_report.contains(*name))
            .map(|name| name.to_string()),
    );
    names
}

/// Whether the credential report tells `key`'s last use: its user is in it and exactly one
/// slot was rotated when the key was made (or both, agreeing).
fn report_speaks_for(rows: &BTreeMap<&str, &ReportRow>, key: &AccessKeyMetadata) -> bool {
    let (Some(user), Some(created)) = (key.user_name(), key.create_date()) else {
        return false;
    };
    let Some(row) = rows.get(user) else {
        return false;
    };
    let Some(created) = chrono::DateTime::from_timestamp(created.secs(), 0) else {
        return false;
    };
    matches!(
        credential_report::slot_of_key(row, created),
        SlotMatch::Unique(_)
    )
}

/// Every user with its tags, from GetAccountAuthorizationDetails (`Filter=User`, pages of up to
/// 1,000), written as the CLI prints it (only the members the reader uses). A failure is
/// recorded and what was read kept.
async fn authorization_details(
    ctx: &Arc<Ctx>,
    client: &Client,
    account: &AccountId,
) -> Result<Vec<UserDetail>> {
    let mut users: Vec<UserDetail> = Vec::new();
    let failure = all_pages!(
        ctx,
        "iam:GetAccountAuthorizationDetails",
        client
            .get_account_authorization_details()
            .filter(EntityType::User)
            .max_items(1000)
            .into_paginator()
            .send(),
        |page| users.extend(page.user_detail_list().iter().cloned())
    );
    if let Some(error) = failure {
        ctx.fail(
            account.as_str(),
            GLOBAL,
            "iam:get-account-authorization-details",
            error,
        );
        if users.is_empty() {
            return Ok(users);
        }
    }
    write_json(
        &ctx.iam_file(account, "get-account-authorization-details.json"),
        &json!({ "UserDetailList": users.iter().map(user_detail_json).collect::<Vec<_>>() }),
    )?;
    Ok(users)
}

/// The keys of each user in `names`, all at once within the request bound; a user whose
/// listing failed is left out (and recorded).
async fn list_all_keys(
    ctx: &Arc<Ctx>,
    client: &Client,
    account: &AccountId,
    names: BTreeSet<String>,
) -> Vec<Vec<AccessKeyMetadata>> {
    let mut tasks = JoinSet::new();
    for (index, name) in names.into_iter().enumerate() {
        let ctx = ctx.clone();
        let client = client.clone();
        let account = account.clone();
        tasks.spawn(async move { (index, list_keys(&ctx, &client, &account, &name).await) });
    }
    let mut per_user: BTreeMap<usize, Vec<AccessKeyMetadata>> = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (index, keys) = joined.expect("IAM tasks do not panic");
        if let Some(keys) = keys {
            per_user.insert(index, keys);
        }
    }
    per_user.into_values().collect()
}

/// GetAccessKeyLastUsed of each key, within the request bound, in the order given.
async fn last_used_of(
    ctx: &Arc<Ctx>,
    client: &Client,
    account: &AccountId,
    keys: Vec<String>,
) -> Vec<Value> {
    let mut tasks = JoinSet::new();
    for (index, id) in keys.into_iter().enumerate() {
        let ctx = ctx.clone();
        let client = client.clone();
        let account = account.clone();
        tasks.spawn(async move { (index, last_used(&ctx, &client, &account, &id).await) });
    }
    let mut records: BTreeMap<usize, Value> = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (index, record) = joined.expect("IAM tasks do not panic");
        if let Some(record) = record {
            records.insert(index, record);
        }
    }
    records.into_values().collect()
}

async fn list_keys(
    ctx: &Ctx,
    client: &Client,
    account: &AccountId,
    user: &str,
) -> Option<Vec<AccessKeyMetadata>> {
    let mut keys = Vec::new();
    let failure = all_pages!(
        ctx,
        "iam:ListAccessKeys",
        client
            .list_access_keys()
            .user_name(user)
            .into_paginator()
            .send(),
        |page| keys.extend(page.access_key_metadata().iter().cloned())
    );
    match failure {
        None => Some(keys),
        Some(error) => {
            ctx.fail(
                account.as_str(),
                GLOBAL,
                "iam:list-access-keys",
                format!("user {user:?}: {error}"),
            );
            None
        }
    }
}

/// The `get-access-key-last-used` output of one key, with the `AccessKeyId` member the export
/// layout adds; `None` (recorded as a failure) when the call failed.
async fn last_used(ctx: &Ctx, client: &Client, account: &AccountId, key: &str) -> Option<Value> {
    let result = ctx
        .call(
            "iam:GetAccessKeyLastUsed",
            client.get_access_key_last_used().access_key_id(key).send(),
        )
        .await;
    match result {
        Ok(output) => {
            let used = output.access_key_last_used();
            Some(compact(json!({
                "UserName": output.user_name(),
                "AccessKeyLastUsed": used.map(|used| compact(json!({
                    "LastUsedDate": iso_opt(used.last_used_date()),
                    "ServiceName": used.service_name(),
                    "Region": used.region(),
                }))),
                "AccessKeyId": key,
            })))
        }
        Err(error) => {
            ctx.fail(
                account.as_str(),
                GLOBAL,
                "iam:get-access-key-last-used",
                format!("key {key}: {}", describe(&error)),
            );
            None
        }
    }
}

fn tag_json(tag: &Tag) -> Value {
    json!({ "Key": tag.key(), "Value": tag.value() })
}

fn user_detail_json(user: &UserDetail) -> Value {
    compact(json!({
        "Path": user.path(),
        "UserName": user.user_name(),
        "UserId": user.user_id(),
        "Arn": user.arn(),
        "CreateDate": iso_opt(user.create_date()),
        "Tags": user.tags().iter().map(tag_json).collect::<Vec<_>>(),
    }))
}

fn key_json(key: &AccessKeyMetadata) -> Value {
    compact(json!({
        "UserName": key.user_name(),
        "AccessKeyId": key.access_key_id(),
        "Status": key.status().map(|s| s.as_str()),
        "CreateDate": iso_opt(key.create_date()),
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn quick(timeout_ms: u64) -> ReportPolling {
        ReportPolling {
            timeout: Duration::from_millis(timeout_ms),
            first_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        }
    }

    fn block_on<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn row(user: &str, rotated: [Option<i64>; 2]) -> ReportRow {
        let key = |at: Option<i64>| credential_report::ReportKey {
            active: at.is_some(),
            last_rotated: at.and_then(|s| chrono::DateTime::from_timestamp(s, 0)),
            ..Default::default()
        };
        ReportRow {
            line: 2,
            user: user.to_string(),
            arn: format!("arn:aws:iam::111111111111:user/{user}"),
            created_at: None,
            password_enabled: false,
            password_last_used: None,
            password_last_changed: None,
            keys: [key(rotated[0]), key(rotated[1])],
        }
    }

    #[test]
    fn keys_are_listed_for_report_users_with_keys_and_users_newer_than_the_report() {
        let rows = vec![
            row(credential_report::ROOT_USER, [Some(1), None]),
            row("with-key", [Some(1_700_000_000), None]),
            row("second-slot", [None, Some(1_700_000_000)]),
            row("no-key", [None, None]),
        ];
        let listed = ["with-key", "second-slot", "no-key", "made-since"];
        let names: Vec<String> = users_to_list(&rows, &listed, false).into_iter().collect();
        assert_eq!(names, ["made-since", "second-slot", "with-key"]);
        let all: Vec<String> = users_to_list(&rows, &listed, true).into_iter().collect();
        assert_eq!(all, ["made-since", "no-key", "second-slot", "with-key"]);
        // Without GetAccountAuthorizationDetails, the report alone decides.
        let names: Vec<String> = users_to_list(&rows, &[], false).into_iter().collect();
        assert_eq!(names, ["second-slot", "with-key"]);
    }

    #[test]
    fn a_key_is_matched_to_its_slot_only_when_the_report_can_tell() {
        let at = 1_700_000_000;
        let rows = [
            row("one", [Some(at), Some(at + 60)]),
            row("twins", [Some(at), Some(at)]),
        ];
        let by_user: BTreeMap<&str, &ReportRow> =
            rows.iter().map(|r| (r.user.as_str(), r)).collect();
        let key = |user: &str, secs: i64| {
            AccessKeyMetadata::builder()
                .user_name(user)
                .create_date(aws_sdk_iam::primitives::DateTime::from_secs(secs))
                .build()
        };
        assert!(report_speaks_for(&by_user, &key("one", at)));
        assert!(report_speaks_for(&by_user, &key("one", at + 60)));
        assert!(
            !report_speaks_for(&by_user, &key("one", at + 1)),
            "no slot then"
        );
        assert!(
            !report_speaks_for(&by_user, &key("absent", at)),
            "user newer than the report"
        );
        // Two keys of one second whose slots agree (both unused here) are told apart enough.
        assert!(report_speaks_for(&by_user, &key("twins", at)));
        let mut differ = rows[1].clone();
        differ.keys[0].last_used_at = chrono::DateTime::from_timestamp(at + 5, 0);
        let by_user: BTreeMap<&str, &ReportRow> = [("twins", &differ)].into_iter().collect();
        assert!(!report_speaks_for(&by_user, &key("twins", at)));
    }

    #[test]
    fn report_is_polled_until_ready() {
        let answers = Mutex::new(vec![
            Fetched::Ready(b"user,arn\n".to_vec()),
            Fetched::InProgress,
            Fetched::Missing,
            Fetched::InProgress,
        ]);
        let generated = Mutex::new(0);
        let result = block_on(poll_report(
            || {
                *generated.lock().unwrap() += 1;
                async { Generated::Started }
            },
            || {
                let answer = answers.lock().unwrap().pop().unwrap();
                async move { answer }
            },
            quick(5_000),
        ));
        assert_eq!(result.unwrap(), b"user,arn\n");
        // Generated at first, and again after ReportNotPresent.
        assert_eq!(*generated.lock().unwrap(), 2);
    }

    #[test]
    fn limit_exceeded_is_retried() {
        let answers = Mutex::new(vec![Generated::Started, Generated::LimitExceeded]);
        let result = block_on(poll_report(
            || {
                let answer = answers.lock().unwrap().pop().unwrap();
                async move { answer }
            },
            || async { Fetched::Ready(Vec::new()) },
            quick(5_000),
        ));
        assert!(result.is_ok());
    }

    #[test]
    fn a_report_that_never_comes_times_out() {
        let started = std::time::Instant::now();
        let result = block_on(poll_report(
            || async { Generated::Started },
            || async { Fetched::InProgress },
            quick(150),
        ));
        let error = result.unwrap_err();
        assert!(error.contains("not ready after"), "{error}");
        assert!(error.contains("ReportInProgress"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_hanging_call_times_out() {
        let result = block_on(poll_report(
            || async { Generated::Started },
            std::future::pending::<Fetched>,
            quick(100),
        ));
        assert!(result.unwrap_err().contains("not ready after"));
    }

    #[test]
    fn errors_stop_the_polling() {
        let result = block_on(poll_report(
            || async { Generated::Failed("AccessDenied: no".to_string()) },
            || async { Fetched::InProgress },
            quick(5_000),
        ));
        assert_eq!(result.unwrap_err(), "AccessDenied: no");
    }
}
