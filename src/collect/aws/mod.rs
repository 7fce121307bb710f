//! Live AWS collection (read-only): writes the raw responses in the export-directory layout,
//! so a live scan and a replay of its export are read by the same code.
//!
//! - [`session`]: credentials (standard chain, `--profile`, `--assume-role`), regions, clients.
//! - [`org`]: the accounts of an AWS Organization (`--org`, `--include-ou`, `--exclude-account`).
//! - [`iam`]: credential report, users and their tags, access keys, their last use.
//! - [`secrets`]: Secrets Manager ListSecrets (and DescribeSecret where needed) per region.
//! - [`cloudtrail`]: LookupEvents per region, rate-limited.
//! - [`lake`]: CloudTrail Lake queries (`--cloudtrail-lake`): aggregates only.
//! - [`context`]: the request bound, counts, failures and notes (→ `coverage.json`), throttling
//!   (counted, and backed off collection-wide), progress, atomic writes.
//! - [`policy`]: the least-privilege IAM policy all of this needs.
//!
//! Everything is collected into a hidden staging folder inside the export directory and moved
//! into place at the end, so an export never mixes two collections. A hidden marker
//! (`.credaudit-export.json`) lists what was written; the next collection replaces only that,
//! and refuses an `aws/`, `cloudtrail/` or `coverage.json` it did not write.

mod cloudtrail;
mod context;
mod iam;
mod lake;
mod org;
mod policy;
mod secrets;
mod session;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::error::{Error, Result};
pub use context::THROTTLED;
use context::{Ctx, write_json};
use org::OrgAccount;
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
    /// CloudTrail Lake event data store (ARN or id) to aggregate usage from instead of
    /// LookupEvents, over the same window.
    pub cloudtrail_lake: Option<String>,
    /// Show a progress bar (only on a terminal).
    pub progress: bool,
    /// Without a terminal (a CI log), print a progress line this often instead; `None`: never.
    pub progress_lines: Option<std::time::Duration>,
    /// Ask GetAccessKeyLastUsed of every key instead of taking last use from the credential
    /// report (at most 4 hours old).
    pub precise_last_used: bool,
    /// Read every account of the AWS Organization instead of the base account and the
    /// `assume_roles`.
    pub org: Option<OrgOptions>,
}

/// Which accounts of the organisation to read, and how.
#[derive(Debug, Clone, Default)]
pub struct OrgOptions {
    /// The role assumed in each member account (`arn:aws:iam::<account>:role/<role>`).
    pub role: String,
    /// Accounts left out.
    pub exclude_accounts: Vec<String>,
    /// Only the accounts under these organisational units (or roots), at any depth.
    pub include_ous: Vec<String>,
}

/// What a collection did.
#[derive(Debug, Clone, Default)]
pub struct CollectSummary {
    pub accounts: Vec<String>,
    /// Requests (pages) made; `attempts` counts their HTTP attempts, retries included.
    pub requests: u64,
    pub attempts: u64,
    /// Answers that were throttling errors (each retried with backoff, or recorded as a
    /// failure when the last attempt was throttled too).
    pub throttled: u64,
    pub failures: u64,
}

/// What the collection writes at the top of the export; everything else there is left alone.
const OWNED: [&str; 4] = ["aws", "cloudtrail", "cloudtrail-lake", "coverage.json"];

/// Prefix of the hidden staging folder (the export reader skips names starting with a dot).
const STAGING: &str = ".credaudit-collect-";

/// The hidden file in which a collection lists what it wrote at the top of the export; the next
/// collection replaces only what this lists (the export reader skips names starting with a dot).
const MARKER: &str = ".credaudit-export.json";

/// The contents of [`MARKER`].
#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    tool: String,
    written: Vec<String>,
}

/// Reads every account and region and writes the export layout into `dir`.
///
/// A call that fails is recorded in `dir/coverage.json` (account, region, API, error) and the
/// collection goes on; only a failure to reach the base account at all (no usable credentials)
/// or to write the export stops it with an error, and then nothing in `dir` is changed.
pub fn collect_to_dir(
    options: &AwsOptions,
    dir: &Path,
    as_of: crate::model::Timestamp,
) -> Result<CollectSummary> {
    check_options(options)?;
    check_export_dir(dir)?;
    let staging = tempfile::Builder::new()
        .prefix(STAGING)
        .permissions(std::fs::Permissions::from_mode(crate::output::DIR_MODE))
        .tempdir_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    crate::output::make_private_dir(staging.path())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io(Path::new("<tokio runtime>"), e))?;
    let collected = runtime.block_on(collect(options, staging.path().to_path_buf(), as_of));
    drop(runtime);
    // On an error the staging folder is removed when `staging` drops; `dir` is untouched.
    let summary = collected?;
    publish(dir, staging.path())?;
    Ok(summary)
}

fn check_options(options: &AwsOptions) -> Result<()> {
    if let Some(org) = &options.org {
        org::check_options(org, !options.assume_roles.is_empty())?;
    }
    for arn in &options.assume_roles {
        if session::role_account(arn).is_none() {
            return Err(Error::Usage(format!(
                "--assume-role {arn:?}: expected a role ARN like arn:aws:iam::123456789012:role/credaudit-audit"
            )));
        }
    }
    lake::store(options)?;
    if options.external_id.is_some() && options.assume_roles.is_empty() && options.org.is_none() {
        return Err(Error::Usage(
            "--external-id needs --assume-role or --org".to_string(),
        ));
    }
    Ok(())
}

/// The top-level entries of `dir` that an earlier collection wrote, as its [`MARKER`] lists
/// them. Only a regular file that parses counts; anything else lists nothing.
fn marker_entries(dir: &Path) -> BTreeSet<&'static str> {
    let path = dir.join(MARKER);
    if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file()) {
        return BTreeSet::new();
    }
    let Some(marker) = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Marker>(&bytes).ok())
        .filter(|m| m.tool == "credaudit")
    else {
        return BTreeSet::new();
    };
    OWNED
        .into_iter()
        .filter(|name| marker.written.iter().any(|w| w == name))
        .collect()
}

/// Refuses a `dir` holding an `aws/`, `cloudtrail/` or `coverage.json` that its [`MARKER`] does
/// not list (a hand-made export, a user's CloudTrail logs, an optional empty `coverage.json`):
/// those are never replaced or deleted. Gives the entries that exist and may be replaced.
fn check_export_dir(dir: &Path) -> Result<BTreeSet<&'static str>> {
    let listed = marker_entries(dir);
    let mut ours = BTreeSet::new();
    for name in OWNED {
        let path = dir.join(name);
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e)),
            Ok(_) if listed.contains(name) => {
                ours.insert(name);
            }
            Ok(_) => {
                return Err(Error::Usage(format!(
                    "{}: already holds {name} that `credaudit collect` did not write (it is not \
                     listed in {MARKER}); it is left as it is: export into an empty or new folder",
                    dir.display()
                )));
            }
        }
    }
    Ok(ours)
}

/// Moves the staged collection into `dir`, replacing only what the marker of an earlier
/// collection lists (checked again here), then writes the marker listing what this one wrote.
fn publish(dir: &Path, staging: &Path) -> Result<()> {
    let replaced = check_export_dir(dir)?;
    let written: Vec<&str> = OWNED
        .into_iter()
        .filter(|name| std::fs::symlink_metadata(staging.join(name)).is_ok())
        .collect();
    // The earlier collection's entries go into the staging folder, removed with it.
    let old = staging.join("replaced");
    crate::output::create_private_dir_all(&old)?;
    for name in &replaced {
        let from = dir.join(name);
        std::fs::rename(&from, old.join(name)).map_err(|e| Error::io(&from, e))?;
    }
    for name in &written {
        let to = dir.join(name);
        if let Err(e) = std::fs::rename(staging.join(name), &to) {
            // Put back what nothing new has replaced yet (the old marker still lists it).
            for back in &replaced {
                if std::fs::symlink_metadata(dir.join(back)).is_err() {
                    let _ = std::fs::rename(old.join(back), dir.join(back));
                }
            }
            return Err(Error::io(&to, e));
        }
    }
    let marker = Marker {
        tool: "credaudit".to_string(),
        written: written.iter().map(|n| n.to_string()).collect(),
    };
    let mut bytes = serde_json::to_vec_pretty(&marker).expect("plain data");
    bytes.push(b'\n');
    crate::output::write_file(&dir.join(MARKER), &bytes)
}

async fn collect(
    options: &AwsOptions,
    root: PathBuf,
    as_of: crate::model::Timestamp,
) -> Result<CollectSummary> {
    let ctx = Arc::new(Ctx::new(root, options.concurrency, options.progress));
    let lines = options.progress_lines.map(|every| {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                ticks.tick().await;
                eprintln!("{}", ctx.progress_line());
            }
        })
    });
    let result = collect_accounts(&ctx, options, as_of).await;
    if let Some(lines) = lines {
        lines.abort();
    }
    ctx.finish_progress();
    let accounts = result?;
    write_json(&ctx.coverage_file(), &ctx.coverage())?;
    if std::env::var_os("CREDAUDIT_REQUEST_COUNTS").is_some() {
        print_request_counts(&ctx.requests_by_operation());
    }
    Ok(CollectSummary {
        accounts,
        requests: ctx.requests(),
        attempts: ctx.attempts.sent(),
        throttled: ctx.attempts.throttled(),
        failures: ctx.failed_calls(),
    })
}

/// Reads every account (base and assumed, or the organisation's) in every region; gives the
/// account ids read, sorted.
async fn collect_accounts(
    ctx: &Arc<Ctx>,
    options: &AwsOptions,
    as_of: crate::model::Timestamp,
) -> Result<Vec<String>> {
    let base_config = session::load_base(options).await;
    let regions = session::regions(options, &base_config)?;
    let base = Account::base(ctx, options, &base_config).await?;
    // An organisation's event data store is read through the base credentials, whichever
    // accounts are scanned.
    let lake_account = base.clone();

    let accounts: Vec<Account> = match &options.org {
        Some(org) => org_accounts(ctx, options, org, &base_config, base).await?,
        None => {
            let mut accounts = vec![base];
            for arn in &options.assume_roles {
                let arn_account = session::role_account(arn).expect("checked in check_options");
                if let Some(account) =
                    Account::assume(ctx, options, &base_config, arn, &arn_account).await
                {
                    if accounts.iter().any(|a| a.id == account.id) {
                        // Two ways into one account: read it once.
                        continue;
                    }
                    accounts.push(account);
                }
            }
            accounts
        }
    };
    ctx.set_accounts(accounts.len() as u64);

    let window = chrono::Duration::days(i64::from(options.cloudtrail_window_days));
    let iam_options = iam::IamOptions {
        precise_last_used: options.precise_last_used,
    };
    // One task per account, each reading its IAM and its regions at once; the request bound
    // of `ctx` is shared by all of them.
    let mut tasks = JoinSet::new();
    for account in &accounts {
        let ctx = ctx.clone();
        let account = account.clone();
        let regions = regions.clone();
        let lookup = (options.cloudtrail_window_days > 0 && options.cloudtrail_lake.is_none())
            .then(|| (as_of - window, as_of));
        tasks.spawn(async move {
            let mut parts = JoinSet::new();
            parts.spawn(iam::collect(ctx.clone(), account.clone(), iam_options));
            for region in &regions {
                parts.spawn(secrets::collect(
                    ctx.clone(),
                    account.clone(),
                    region.clone(),
                ));
                if let Some((start, end)) = lookup {
                    parts.spawn(cloudtrail::collect(
                        ctx.clone(),
                        account.clone(),
                        region.clone(),
                        start,
                        end,
                    ));
                }
            }
            let result = first_error(&mut parts).await;
            ctx.account_done();
            result
        });
    }
    if let Some(store) = lake::store(options)? {
        // An organisation's event data store is read once, through the base account, in its
        // own region (else the first region).
        let region = match &store.region {
            Some(name) => {
                context::RegionName::parse(name).expect("checked in EventDataStore::parse")
            }
            None => regions[0].clone(),
        };
        tasks.spawn(lake::collect(
            ctx.clone(),
            lake_account,
            region,
            store,
            as_of - window,
            as_of,
        ));
    }
    first_error(&mut tasks).await?;
    let mut ids: Vec<String> = accounts.iter().map(|a| a.id.to_string()).collect();
    ids.sort();
    Ok(ids)
}

/// Waits for every task of `tasks`; gives the first error any of them returned.
async fn first_error(tasks: &mut JoinSet<Result<()>>) -> Result<()> {
    let mut first = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined
            .map_err(|e| Error::Usage(format!("a collection task stopped unexpectedly: {e}")))?;
        if let Err(error) = result {
            first.get_or_insert(error);
        }
    }
    first.map_or(Ok(()), Err)
}

/// The organisation's accounts to read: listed from Organizations with the base credentials,
/// filtered, each reached through `org.role` (the base account with its own credentials). An
/// account whose role cannot be assumed is a coverage failure of that account, never skipped
/// quietly; one that is not ACTIVE is noted in coverage and left out.
async fn org_accounts(
    ctx: &Arc<Ctx>,
    options: &AwsOptions,
    org: &OrgOptions,
    base_config: &aws_config::SdkConfig,
    base: Account,
) -> Result<Vec<Account>> {
    let listed = org::list_accounts(ctx, &base, org).await?;
    let mut accounts = Vec::new();
    let mut assumed = JoinSet::new();
    for OrgAccount { id, active } in listed {
        if !active {
            ctx.note(
                id.as_str(),
                context::GLOBAL,
                "organizations:account-not-active",
                1,
            );
            continue;
        }
        if id == base.id {
            accounts.push(base.clone());
            continue;
        }
        let arn = format!("arn:{}:iam::{id}:role/{}", base.partition(), org.role);
        let ctx = ctx.clone();
        let options = options.clone();
        let base_config = base_config.clone();
        assumed
            .spawn(async move { Account::assume(&ctx, &options, &base_config, &arn, &id).await });
    }
    while let Some(joined) = assumed.join_next().await {
        let account = joined
            .map_err(|e| Error::Usage(format!("a collection task stopped unexpectedly: {e}")))?;
        accounts.extend(account);
    }
    accounts.sort_by(|a, b| a.id.cmp(&b.id));
    accounts.dedup_by(|a, b| a.id == b.id);
    Ok(accounts)
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

/// The policies of an organisation scan: the management (or delegated-admin) account's, which
/// lists the accounts and assumes `role` in each, and the member accounts' role policy.
pub fn org_iam_policies(role: &str) -> Result<String> {
    org::check_role_name(role)?;
    Ok(policy::org_documents(role))
}
