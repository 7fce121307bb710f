//! IAM of one account: the credential report (generated, then polled with exponential backoff
//! under an overall timeout), ListUsers, and per user ListAccessKeys and ListUserTags, and per
//! key GetAccessKeyLastUsed — every list followed through all its pages. Written as the AWS CLI
//! prints these outputs, into `aws/<account>/iam/`.
//!
//! A call that fails is recorded (coverage) and its record left out; nothing is written that
//! would claim more than AWS said. In particular a key whose GetAccessKeyLastUsed failed gets no
//! last-used record: the export reader then takes its last use from the credential report.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_iam::Client;
use aws_sdk_iam::operation::generate_credential_report::GenerateCredentialReportError;
use aws_sdk_iam::operation::get_credential_report::GetCredentialReportError;
use aws_sdk_iam::types::{AccessKeyMetadata, Tag, User};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::context::{
    AccountId, Ctx, GLOBAL, compact, describe, iso, iso_opt, write_atomic, write_json,
};
use super::session::Account;
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

/// Reads the IAM of `account` into the export.
pub async fn collect(ctx: Arc<Ctx>, account: Account) -> Result<()> {
    let client = account.iam();
    ctx.status(format!("IAM of {}", account.id));
    let report = async {
        let polled = poll_report(
            || generate(&ctx, &client),
            || fetch(&ctx, &client),
            ReportPolling::default(),
        )
        .await;
        match polled {
            Ok(csv) => write_atomic(&ctx.iam_file(&account.id, "credential-report.csv"), &csv),
            Err(error) => {
                ctx.fail(account.id.as_str(), GLOBAL, "iam:credential-report", error);
                Ok(())
            }
        }
    };
    let (report, listing) = tokio::join!(report, users_and_keys(&ctx, &client, &account.id));
    report.and(listing)
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

/// One user's keys and tags; `None` where the call failed.
type UserListing = (Option<Vec<AccessKeyMetadata>>, Option<Vec<Tag>>);

async fn users_and_keys(ctx: &Arc<Ctx>, client: &Client, account: &AccountId) -> Result<()> {
    let mut users: Vec<User> = Vec::new();
    let failure = all_pages!(
        ctx,
        "iam:ListUsers",
        client.list_users().into_paginator().send(),
        |page| users.extend(page.users().iter().cloned())
    );
    if let Some(error) = failure {
        ctx.fail(account.as_str(), GLOBAL, "iam:list-users", error);
        if users.is_empty() {
            return Ok(());
        }
    }
    write_json(
        &ctx.iam_file(account, "list-users.json"),
        &json!({ "Users": users.iter().map(user_json).collect::<Vec<_>>() }),
    )?;

    // Per user: the keys and the tags, all users at once within the request bound.
    let mut tasks = JoinSet::new();
    for (index, user) in users.iter().enumerate() {
        let ctx = ctx.clone();
        let client = client.clone();
        let account = account.clone();
        let name = user.user_name().to_string();
        tasks.spawn(async move {
            let keys = list_keys(&ctx, &client, &account, &name).await;
            let tags = list_tags(&ctx, &client, &account, &name).await;
            (index, keys, tags)
        });
    }
    let mut per_user: Vec<UserListing> = vec![(None, None); users.len()];
    while let Some(joined) = tasks.join_next().await {
        let (index, keys, tags) = joined.expect("IAM tasks do not panic");
        per_user[index] = (keys, tags);
    }

    let keys: Vec<AccessKeyMetadata> = per_user
        .iter()
        .filter_map(|(keys, _)| keys.as_ref())
        .flatten()
        .cloned()
        .collect();
    let key_outputs: Vec<Value> = per_user
        .iter()
        .filter_map(|(keys, _)| keys.as_ref())
        .map(|keys| json!({ "AccessKeyMetadata": keys.iter().map(key_json).collect::<Vec<_>>() }))
        .collect();
    write_json(
        &ctx.iam_file(account, "list-access-keys.json"),
        &Value::Array(key_outputs),
    )?;
    let tag_outputs: Vec<Value> = users
        .iter()
        .zip(&per_user)
        .filter_map(|(user, (_, tags))| {
            tags.as_ref().map(|tags| {
                json!({ "Tags": tags.iter().map(tag_json).collect::<Vec<_>>(), "UserName": user.user_name() })
            })
        })
        .collect();
    write_json(
        &ctx.iam_file(account, "list-user-tags.json"),
        &Value::Array(tag_outputs),
    )?;

    // Per key: its last use.
    let mut tasks = JoinSet::new();
    for (index, key) in keys.iter().enumerate() {
        let Some(id) = key.access_key_id().map(str::to_string) else {
            continue;
        };
        let ctx = ctx.clone();
        let client = client.clone();
        let account = account.clone();
        tasks.spawn(async move { (index, last_used(&ctx, &client, &account, &id).await) });
    }
    let mut records: Vec<Option<Value>> = vec![None; keys.len()];
    while let Some(joined) = tasks.join_next().await {
        let (index, record) = joined.expect("IAM tasks do not panic");
        records[index] = record;
    }
    write_json(
        &ctx.iam_file(account, "get-access-key-last-used.json"),
        &Value::Array(records.into_iter().flatten().collect()),
    )
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

async fn list_tags(
    ctx: &Ctx,
    client: &Client,
    account: &AccountId,
    user: &str,
) -> Option<Vec<Tag>> {
    let mut tags = Vec::new();
    let failure = all_pages!(
        ctx,
        "iam:ListUserTags",
        client
            .list_user_tags()
            .user_name(user)
            .into_paginator()
            .send(),
        |page| tags.extend(page.tags().iter().cloned())
    );
    match failure {
        None => Some(tags),
        Some(error) => {
            ctx.fail(
                account.as_str(),
                GLOBAL,
                "iam:list-user-tags",
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

fn user_json(user: &User) -> Value {
    compact(json!({
        "Path": user.path(),
        "UserName": user.user_name(),
        "UserId": user.user_id(),
        "Arn": user.arn(),
        "CreateDate": iso(user.create_date()),
        "PasswordLastUsed": iso_opt(user.password_last_used()),
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
