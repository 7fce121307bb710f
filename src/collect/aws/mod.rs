//! Live AWS collection (read-only): writes the raw responses in the export-directory layout,
//! so a live scan and a replay of its export are read by the same code.
//!
//! - [`session`]: credentials (standard chain, `--profile`, `--assume-role`), regions, clients.
//! - [`iam`]: credential report, users, access keys, their last use, user tags.
//! - [`secrets`]: Secrets Manager ListSecrets (and DescribeSecret where needed) per region.
//! - [`cloudtrail`]: LookupEvents per region, rate-limited.
//! - [`context`]: the request bound, counts, failures (→ `coverage.json`), atomic writes.
//! - [`policy`]: the least-privilege IAM policy all of this needs.
//!
//! Everything is collected into a hidden staging folder inside the export directory and moved
//! into place at the end, so an export never mixes two collections.

mod cloudtrail;
mod context;
mod iam;
mod policy;
mod secrets;
mod session;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::task::JoinSet;

use crate::error::{Error, Result};
use context::{Ctx, write_json};
use session::Account;

/// How to reach AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    pub profile: Option<String>,
    pub regions: Vec<String>,
    pub assume_roles: Vec<String>,
    pub external_id: Option<String>,
    pub endpoint_url: Option<String>,
    pub concurrency: usize,
    /// Days of CloudTrail LookupEvents to read (0 = none).
    pub cloudtrail_window_days: u32,
    /// Show a progress bar (only on a terminal).
    pub progress: bool,
}

/// What a collection did.
#[derive(Debug, Clone, Default)]
pub struct CollectSummary {
    pub accounts: Vec<String>,
    pub requests: u64,
    pub failures: u64,
}

/// What the collection writes at the top of the export; everything else there is left alone.
const OWNED: [&str; 3] = ["aws", "cloudtrail", "coverage.json"];

/// The hidden staging folder (the export reader skips names starting with a dot).
const STAGING: &str = ".credaudit-collect";

/// Reads every account and region and writes the export layout into `dir`.
///
/// A call that fails is recorded in `dir/coverage.json` (account, region, API, error) and the
/// collection goes on; only a failure to reach the base account at all (no usable credentials)
/// or to write the export stops it with an error.
pub fn collect_to_dir(
    options: &AwsOptions,
    dir: &Path,
    as_of: crate::model::Timestamp,
) -> Result<CollectSummary> {
    check_options(options)?;
    check_export_dir(dir)?;
    let staging = dir.join(STAGING);
    remove_path(&staging)?;
    std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io(Path::new("<tokio runtime>"), e))?;
    let collected = runtime.block_on(collect(options, staging.clone(), as_of));
    drop(runtime);
    match collected {
        Ok(summary) => {
            publish(dir, &staging)?;
            Ok(summary)
        }
        Err(error) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(error)
        }
    }
}

fn check_options(options: &AwsOptions) -> Result<()> {
    for arn in &options.assume_roles {
        if session::role_account(arn).is_none() {
            return Err(Error::Usage(format!(
                "--assume-role {arn:?}: expected a role ARN like arn:aws:iam::123456789012:role/credaudit-audit"
            )));
        }
    }
    if options.external_id.is_some() && options.assume_roles.is_empty() {
        return Err(Error::Usage(
            "--external-id needs at least one --assume-role".to_string(),
        ));
    }
    Ok(())
}

/// Refuses to replace `aws/` or `cloudtrail/` that a collection did not write (a hand-made
/// export or CloudTrail logs someone put there): only a folder with our `coverage.json` is ours.
fn check_export_dir(dir: &Path) -> Result<()> {
    let ours = dir.join("coverage.json").is_file();
    for name in ["aws", "cloudtrail"] {
        if dir.join(name).exists() && !ours {
            return Err(Error::Usage(format!(
                "{}: already holds {name}/ that `credaudit collect` did not write; export into an empty folder",
                dir.display()
            )));
        }
    }
    Ok(())
}

fn remove_path(path: &Path) -> Result<()> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
    };
    result.map_err(|e| Error::io(path, e))
}

/// Moves the staged collection into `dir`, replacing what an earlier collection left there.
fn publish(dir: &Path, staging: &Path) -> Result<()> {
    for name in OWNED {
        remove_path(&dir.join(name))?;
    }
    for name in OWNED {
        let from = staging.join(name);
        if from.exists() {
            let to = dir.join(name);
            std::fs::rename(&from, &to).map_err(|e| Error::io(&to, e))?;
        }
    }
    remove_path(staging)
}

async fn collect(
    options: &AwsOptions,
    root: PathBuf,
    as_of: crate::model::Timestamp,
) -> Result<CollectSummary> {
    let ctx = Arc::new(Ctx::new(root, options.concurrency, options.progress));
    let result = collect_accounts(&ctx, options, as_of).await;
    ctx.finish_progress();
    let accounts = result?;
    write_json(&ctx.coverage_file(), &ctx.coverage())?;
    if std::env::var_os("CREDAUDIT_REQUEST_COUNTS").is_some() {
        print_request_counts(&ctx.requests_by_operation());
    }
    Ok(CollectSummary {
        accounts,
        requests: ctx.requests(),
        failures: ctx.failed_calls(),
    })
}

/// Reads every account (base and assumed) in every region; gives the account ids read, sorted.
async fn collect_accounts(
    ctx: &Arc<Ctx>,
    options: &AwsOptions,
    as_of: crate::model::Timestamp,
) -> Result<Vec<String>> {
    let base = session::load_base(options).await;
    let regions = session::regions(options, &base)?;

    let mut accounts: Vec<Account> = vec![Account::base(ctx, options, &base).await?];
    for arn in &options.assume_roles {
        let arn_account = session::role_account(arn).expect("checked in check_options");
        if let Some(account) = Account::assume(ctx, options, &base, arn, &arn_account).await {
            if accounts.iter().any(|a| a.id == account.id) {
                // Two ways into one account: read it once.
                continue;
            }
            accounts.push(account);
        }
    }

    let window = chrono::Duration::days(i64::from(options.cloudtrail_window_days));
    let mut tasks = JoinSet::new();
    for account in &accounts {
        tasks.spawn(iam::collect(ctx.clone(), account.clone()));
        for region in &regions {
            tasks.spawn(secrets::collect(
                ctx.clone(),
                account.clone(),
                region.clone(),
            ));
            if options.cloudtrail_window_days > 0 {
                tasks.spawn(cloudtrail::collect(
                    ctx.clone(),
                    account.clone(),
                    region.clone(),
                    as_of - window,
                    as_of,
                ));
            }
        }
    }
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined
            .map_err(|e| Error::Usage(format!("a collection task stopped unexpectedly: {e}")))?;
        if let Err(error) = result {
            first_error.get_or_insert(error);
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    let mut ids: Vec<String> = accounts.iter().map(|a| a.id.to_string()).collect();
    ids.sort();
    Ok(ids)
}

/// Requests per operation on stderr (set `CREDAUDIT_REQUEST_COUNTS=1`; used by the benchmark).
fn print_request_counts(counts: &BTreeMap<&'static str, u64>) {
    for (operation, count) in counts {
        eprintln!("requests {operation} {count}");
    }
}

/// The least-privilege read-only IAM policy a live scan needs.
pub fn iam_policy() -> String {
    policy::document()
}
