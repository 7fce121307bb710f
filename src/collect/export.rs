//! Reader for the export directory: the raw AWS responses of a scan (IAM credential report, access
//! keys, their last use, user tags; Secrets Manager secrets per region) laid out as described in
//! `docs/export-format.md`, merged into [`ObservedCredential`]s with a [`CoverageEntry`] for every
//! file read.
//!
//! Paths are built only from the fixed file names of the layout and from folder names that were
//! validated (12-digit account ids, region names); no string read from a file becomes a path.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::awsjson::{self, OneOrMany, Site, quote};
use super::credential_report::{self, ReportRow};
use super::input::{self, Limits};
use super::raw::{self, RawSpool};
use super::schedule::schedule_interval_days;
use crate::error::{Error, Result};
use crate::model::{
    CoverageEntry, CredentialKind, IamUser, KeyStatus, ObservedCredential, Timestamp,
    is_account_id, is_region_name,
};

/// What an export directory holds, merged and in a deterministic order.
#[derive(Debug, PartialEq)]
pub struct ExportData {
    /// Every credential found, sorted by (account, kind, region, id).
    pub observed: Vec<ObservedCredential>,
    /// One entry per account × region × file read, in reading order (accounts sorted; within an
    /// account the IAM files, then the Secrets Manager regions sorted).
    pub coverage: Vec<CoverageEntry>,
    /// The IAM users of the credential reports read (not the root user's row), sorted by
    /// (account, name).
    pub users: Vec<IamUser>,
    /// The account folders found, sorted.
    pub accounts: Vec<String>,
    /// The files of the layout that were read, as (path relative to the export, bytes parsed),
    /// with members named like a secret value removed, spooled as they were read; sorted by
    /// path.
    pub raw: RawSpool,
    /// Members named like a secret value (`SecretString`, `SecretBinary`) that were found and
    /// left out of `raw`, as (file, how many).
    pub scrubbed: Vec<(String, usize)>,
}

/// Region name used for IAM, which is global.
const GLOBAL: &str = "global";

/// How to read an export directory.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportOptions {
    pub limits: Limits,
    /// Accept records whose ARN names another account (or region) than the folder holding them,
    /// recording a coverage note for each file (`--allow-mislabelled`); by default they are
    /// bad input.
    pub allow_mislabelled: bool,
}

/// Reads the export directory `dir` (see `docs/export-format.md`) with the default options.
pub fn read_export_dir(dir: &Path) -> Result<ExportData> {
    read_export_dir_with(dir, &ExportOptions::default())
}

/// Reads the export directory `dir` (see `docs/export-format.md`).
///
/// Every file of the layout is optional; each one present is read once, and a malformed one
/// stops the read with an [`Error::Input`] naming the file, the line or record, and what was
/// expected. A file must be a regular file inside `dir` (a symlink may point only inside it)
/// and within `limits`. A directory without an `aws/` folder gives empty data (no coverage).
pub fn read_export_dir_with(dir: &Path, options: &ExportOptions) -> Result<ExportData> {
    let metadata = fs::metadata(dir).map_err(|e| Error::io(dir, e))?;
    if !metadata.is_dir() {
        return Err(Error::input_file(dir, "expected an export directory"));
    }
    let mut export = Collected {
        dir: dir.to_path_buf(),
        root: input::canonical_root(dir)?,
        limits: options.limits,
        allow_mislabelled: options.allow_mislabelled,
        ..Collected::default()
    };
    let aws = dir.join("aws");
    if is_dir(&aws)? {
        for entry in entries(&aws)? {
            if !entry.is_dir {
                continue;
            }
            if !is_account_id(&entry.name) {
                return Err(Error::input_file(
                    &entry.path,
                    format!(
                        "expected an account folder named by a 12-digit AWS account id, found {}",
                        quote(&entry.name)
                    ),
                ));
            }
            export.accounts.push(entry.name.clone());
            read_iam(&mut export, &entry.name, &entry.path.join("iam"))?;
            read_secrets(&mut export, &entry.name, &entry.path.join("secretsmanager"))?;
        }
    }
    let coverage = dir.join("coverage.json");
    read_collect_coverage(&mut export, &coverage)?;
    export.finish()
}

/// `DIR/coverage.json`, written by a live collection: the account × region × API calls that
/// failed (`ok: false`, with the error), as a JSON array of coverage entries. They are appended
/// after the entries of the files read, so a replayed export is as incomplete as the live scan.
fn read_collect_coverage(export: &mut Collected, path: &Path) -> Result<()> {
    let Some(text) = export.read_optional(path)? else {
        return Ok(());
    };
    let entries: Vec<CoverageEntry> = awsjson::from_file_text(path, &text)?;
    for (index, entry) in entries.iter().enumerate() {
        if entry.account.is_empty() || entry.api.is_empty() {
            return Err(Error::input(
                path,
                format!("[{index}]"),
                "expected non-empty account and api",
            ));
        }
    }
    export.coverage.extend(entries);
    Ok(())
}

/// Credentials with the file each came from (for the duplicate check), coverage and raw
/// evidence so far, and where and how to read.
#[derive(Default)]
struct Collected {
    observed: Vec<(ObservedCredential, PathBuf)>,
    users: Vec<IamUser>,
    coverage: Vec<CoverageEntry>,
    accounts: Vec<String>,
    raw: RawSpool,
    scrubbed: Vec<(String, usize)>,
    /// The export directory as given, and its canonical form (no input may leave it).
    dir: PathBuf,
    root: PathBuf,
    limits: Limits,
    allow_mislabelled: bool,
    /// Records accepted under `--allow-mislabelled`, per (file, folder account, folder region):
    /// (how many, the first one's description).
    mislabelled: BTreeMap<(String, String, String), (u64, String)>,
}

impl Collected {
    /// Checks that `arn` names the account (and, for a regional service, the region) of the
    /// folder holding its record. `at` names the record for the message.
    fn check_arn(
        &mut self,
        file: &Path,
        at: &str,
        arn: &str,
        account: &str,
        region: Option<&str>,
    ) -> Result<()> {
        // arn:partition:service:region:account:resource
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        if parts.len() < 6 || parts[0] != "arn" {
            return Ok(());
        }
        let (arn_region, arn_account) = (parts[3], parts[4]);
        let wrong_account = !arn_account.is_empty() && arn_account != account;
        let wrong_region = region.is_some_and(|r| !arn_region.is_empty() && arn_region != r);
        if !wrong_account && !wrong_region {
            return Ok(());
        }
        let what = if wrong_account {
            format!(
                "its ARN names account {}, but it is filed under account {account}",
                quote(arn_account)
            )
        } else {
            format!(
                "its ARN names region {}, but it is filed under region {}",
                quote(arn_region),
                region.unwrap_or_default()
            )
        };
        if !self.allow_mislabelled {
            return Err(Error::input(
                file,
                at,
                format!(
                    "{what}; evidence must sit in the folder of the account and region it is about (or pass --allow-mislabelled to accept it with a coverage note)"
                ),
            ));
        }
        let key = (
            self.relative(file),
            account.to_string(),
            region.unwrap_or(GLOBAL).to_string(),
        );
        let entry = self
            .mislabelled
            .entry(key)
            .or_insert_with(|| (0, format!("{at}: {what}")));
        entry.0 += 1;
        Ok(())
    }

    /// `path` relative to the export directory, with `/` separators (the whole path so joined
    /// when it is not inside it).
    fn relative(&self, path: &Path) -> String {
        input::relative_label(&self.dir, path).unwrap_or_else(|| input::slash_joined(path))
    }

    /// The text of `path`, or `None` when there is no such file. What is read is kept as raw
    /// evidence (secret-named members removed), so the evidence holds the bytes parsed.
    fn read_optional(&mut self, path: &Path) -> Result<Option<String>> {
        match fs::symlink_metadata(path) {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
            Ok(_) => {}
        }
        let bytes = input::read_bytes(path, Some(&self.root), &self.limits)?;
        let text = String::from_utf8(bytes)
            .map_err(|e| crate::error::not_utf8(path, e.as_bytes(), e.utf8_error()))?;
        if path.strip_prefix(&self.dir).is_err() {
            return Err(Error::input_file(path, "is outside the export directory"));
        }
        let relative = self.relative(path);
        let (stored, removed) = if relative.ends_with(".json") {
            raw::scrub_json(text.as_bytes())
        } else {
            (std::borrow::Cow::Borrowed(text.as_bytes()), 0)
        };
        if removed > 0 {
            self.scrubbed.push((relative.clone(), removed));
        }
        self.raw
            .add(relative, &stored)
            .map_err(|e| Error::io(path, e))?;
        Ok(Some(text))
    }

    fn cover(&mut self, account: &str, region: &str, api: &str, records: usize) {
        self.coverage.push(CoverageEntry {
            account: account.to_string(),
            region: region.to_string(),
            api: api.to_string(),
            ok: true,
            error: None,
            records: records as u64,
        });
    }

    fn finish(mut self) -> Result<ExportData> {
        for ((file, account, region), (records, first)) in std::mem::take(&mut self.mislabelled) {
            self.coverage.push(CoverageEntry {
                account,
                region,
                api: "export:mislabelled".to_string(),
                ok: true,
                error: Some(format!(
                    "{file}: {records} record(s) accepted with --allow-mislabelled; first: {first}"
                )),
                records,
            });
        }
        let mut seen: BTreeMap<&str, &Path> = BTreeMap::new();
        for (credential, file) in &self.observed {
            if let Some(first) = seen.insert(&credential.id, file) {
                return Err(Error::input_file(
                    file,
                    format!(
                        "credential {} is also in {}; each credential must appear once",
                        quote(&credential.id),
                        first.display()
                    ),
                ));
            }
        }
        self.observed.sort_by(|(a, _), (b, _)| {
            (&a.account, a.kind, &a.region, &a.id).cmp(&(&b.account, b.kind, &b.region, &b.id))
        });
        self.raw.sort();
        self.users
            .sort_by(|a, b| (&a.account, &a.name).cmp(&(&b.account, &b.name)));
        Ok(ExportData {
            observed: self.observed.into_iter().map(|(c, _)| c).collect(),
            users: self.users,
            coverage: self.coverage,
            accounts: self.accounts,
            raw: self.raw,
            scrubbed: self.scrubbed,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Directory walking

struct Entry {
    name: String,
    path: PathBuf,
    is_dir: bool,
}

/// The entries of `dir` sorted by name, hidden ones (`.…`) left out.
fn entries(dir: &Path) -> Result<Vec<Entry>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            return Err(Error::input_file(
                &path,
                "expected a UTF-8 file or folder name",
            ));
        };
        if name.starts_with('.') {
            continue;
        }
        let is_dir = fs::metadata(&path)
            .map_err(|e| Error::io(&path, e))?
            .is_dir();
        found.push(Entry { name, path, is_dir });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

fn is_dir(path: &Path) -> Result<bool> {
    match fs::metadata(path) {
        Ok(metadata) => Ok(metadata.is_dir()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(path, e)),
    }
}

// ---------------------------------------------------------------------------------------------
// AWS CLI output shapes. Only the members used are named; serde skips the others unstored.

#[derive(Deserialize)]
struct ListUsersOutput {
    #[serde(rename = "Users")]
    users: Vec<User>,
}

#[derive(Deserialize)]
struct AuthorizationDetailsOutput {
    #[serde(rename = "UserDetailList")]
    user_detail_list: Vec<User>,
}

#[derive(Deserialize)]
struct User {
    #[serde(rename = "UserName")]
    user_name: Option<Value>,
    #[serde(rename = "Arn")]
    arn: Option<Value>,
    #[serde(rename = "CreateDate")]
    create_date: Option<Value>,
    #[serde(rename = "Tags")]
    tags: Option<Vec<Tag>>,
}

#[derive(Deserialize)]
struct Tag {
    #[serde(rename = "Key")]
    key: Option<Value>,
    #[serde(rename = "Value")]
    value: Option<Value>,
}

#[derive(Deserialize)]
struct ListAccessKeysOutput {
    #[serde(rename = "AccessKeyMetadata")]
    access_key_metadata: Vec<AccessKeyMetadata>,
}

#[derive(Deserialize)]
struct AccessKeyMetadata {
    #[serde(rename = "UserName")]
    user_name: Option<Value>,
    #[serde(rename = "AccessKeyId")]
    access_key_id: Option<Value>,
    #[serde(rename = "Status")]
    status: Option<Value>,
    #[serde(rename = "CreateDate")]
    create_date: Option<Value>,
}

#[derive(Deserialize)]
struct GetAccessKeyLastUsedOutput {
    #[serde(rename = "UserName")]
    user_name: Option<Value>,
    /// Not in the CLI output; the exporter adds it so the record can be matched to its key.
    #[serde(rename = "AccessKeyId")]
    access_key_id: Option<Value>,
    #[serde(rename = "AccessKeyLastUsed")]
    access_key_last_used: Option<AccessKeyLastUsed>,
}

#[derive(Deserialize)]
struct AccessKeyLastUsed {
    #[serde(rename = "LastUsedDate")]
    last_used_date: Option<Value>,
    #[serde(rename = "ServiceName")]
    service_name: Option<Value>,
    #[serde(rename = "Region")]
    region: Option<Value>,
}

#[derive(Deserialize)]
struct ListUserTagsOutput {
    /// Not in the CLI output; the exporter adds it.
    #[serde(rename = "UserName")]
    user_name: Option<Value>,
    #[serde(rename = "Tags")]
    tags: Vec<Tag>,
}

#[derive(Deserialize)]
struct ListSecretsOutput {
    #[serde(rename = "SecretList")]
    secret_list: Vec<SecretListEntry>,
}

/// A list-secrets entry or a describe-secret output (they share these members). `SecretString`
/// and `SecretBinary` are deliberately not named: should a file hold them, serde skips them.
#[derive(Deserialize)]
struct SecretListEntry {
    #[serde(rename = "ARN")]
    arn: Option<Value>,
    #[serde(rename = "Name")]
    name: Option<Value>,
    #[serde(rename = "CreatedDate")]
    created_date: Option<Value>,
    #[serde(rename = "LastRotatedDate")]
    last_rotated_date: Option<Value>,
    #[serde(rename = "LastAccessedDate")]
    last_accessed_date: Option<Value>,
    #[serde(rename = "LastChangedDate")]
    last_changed_date: Option<Value>,
    #[serde(rename = "NextRotationDate")]
    next_rotation_date: Option<Value>,
    #[serde(rename = "DeletedDate")]
    deleted_date: Option<Value>,
    #[serde(rename = "RotationEnabled")]
    rotation_enabled: Option<Value>,
    #[serde(rename = "RotationRules")]
    rotation_rules: Option<RotationRules>,
    #[serde(rename = "Tags")]
    tags: Option<Vec<Tag>>,
    /// list-secrets' name for the version map.
    #[serde(rename = "SecretVersionsToStages")]
    secret_versions_to_stages: Option<Value>,
    /// describe-secret's name for the version map.
    #[serde(rename = "VersionIdsToStages")]
    version_ids_to_stages: Option<Value>,
}

#[derive(Deserialize)]
struct RotationRules {
    #[serde(rename = "AutomaticallyAfterDays")]
    automatically_after_days: Option<Value>,
    #[serde(rename = "ScheduleExpression")]
    schedule_expression: Option<Value>,
}

fn parse_tags(site: &Site, member: &str, tags: Vec<Tag>) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for (index, tag) in tags.into_iter().enumerate() {
        let tag_site = site.child(&format!("{member}[{index}]"));
        let key = tag_site.required_str("Key", tag.key)?;
        let value = tag_site
            .optional_str("Value", tag.value)?
            .unwrap_or_default();
        map.insert(key, value);
    }
    Ok(map)
}

// ---------------------------------------------------------------------------------------------
// IAM

/// An access key from list-access-keys.
struct AccessKey {
    id: String,
    user: String,
    status: KeyStatus,
    created_at: Timestamp,
}

/// Last use from get-access-key-last-used.
struct LastUse {
    at: Option<Timestamp>,
    region: Option<String>,
    service: Option<String>,
}

/// "N/A" (and empty) mean absent in last-used region and service.
fn known(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty() && v != "N/A")
}

fn read_iam(export: &mut Collected, account: &str, dir: &Path) -> Result<()> {
    if !is_dir(dir)? {
        return Ok(());
    }
    let report = read_credential_report(export, account, dir)?;
    let mut tags: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    read_list_users(export, account, dir, &mut tags)?;
    read_authorization_details(export, account, dir, &mut tags)?;
    let keys = read_access_keys(export, account, dir)?;
    let last_used = read_last_used(export, account, dir)?;
    read_user_tags(export, account, dir, &mut tags)?;
    merge_iam(export, account, report, keys, &last_used, &tags);
    Ok(())
}

/// The credential report of one account, from the CSV and/or the get-credential-report output
/// (the two must agree), with every user's ARN checked.
fn read_credential_report(
    export: &mut Collected,
    account: &str,
    dir: &Path,
) -> Result<Option<(PathBuf, Vec<ReportRow>)>> {
    // The credential report, from the CSV and/or the get-credential-report output.
    let csv_path = dir.join("credential-report.csv");
    let json_path = dir.join("get-credential-report.json");
    let mut report: Option<(PathBuf, Vec<ReportRow>)> = None;
    if let Some(text) = export.read_optional(&csv_path)? {
        let rows = credential_report::parse_csv_file_with(&csv_path, &text, &export.limits)?;
        export.cover(account, GLOBAL, "iam:credential-report", rows.len());
        report = Some((csv_path.clone(), rows));
    }
    if let Some(text) = export.read_optional(&json_path)? {
        let rows = credential_report::parse_json_file_with(&json_path, &text, &export.limits)?;
        export.cover(account, GLOBAL, "iam:get-credential-report", rows.len());
        match &report {
            Some((_, csv_rows)) if *csv_rows != rows => {
                return Err(Error::input_file(
                    &json_path,
                    format!(
                        "holds a different credential report than {}; keep only one of the two",
                        csv_path.display()
                    ),
                ));
            }
            Some(_) => {}
            None => report = Some((json_path, rows)),
        }
    }

    if let Some((path, rows)) = &report {
        for row in rows {
            export.check_arn(
                path,
                &format!("line {} (user {})", row.line, quote(&row.user)),
                &row.arn,
                account,
                None,
            )?;
        }
    }
    Ok(report)
}

/// The users of list-users.json: their ARNs are checked and their tags added to `tags`.
fn read_list_users(
    export: &mut Collected,
    account: &str,
    dir: &Path,
    tags: &mut BTreeMap<String, BTreeMap<String, String>>,
) -> Result<()> {
    let path = dir.join("list-users.json");
    if let Some(text) = export.read_optional(&path)? {
        let pages: OneOrMany<ListUsersOutput> = awsjson::from_file_text(&path, &text)?;
        let pages = pages
            .with_prefixes()
            .into_iter()
            .map(|(prefix, page)| (format!("{prefix}Users"), page.users));
        let count = read_users(export, account, &path, pages, tags)?;
        export.cover(account, GLOBAL, "iam:list-users", count);
    }
    Ok(())
}

/// The users and their tags from get-account-authorization-details.json (`--filter User`), as
/// a live collection writes them: one paged call instead of ListUsers and a ListUserTags per user.
fn read_authorization_details(
    export: &mut Collected,
    account: &str,
    dir: &Path,
    tags: &mut BTreeMap<String, BTreeMap<String, String>>,
) -> Result<()> {
    let path = dir.join("get-account-authorization-details.json");
    if let Some(text) = export.read_optional(&path)? {
        let pages: OneOrMany<AuthorizationDetailsOutput> = awsjson::from_file_text(&path, &text)?;
        let pages = pages
            .with_prefixes()
            .into_iter()
            .map(|(prefix, page)| (format!("{prefix}UserDetailList"), page.user_detail_list));
        let count = read_users(export, account, &path, pages, tags)?;
        export.cover(
            account,
            GLOBAL,
            "iam:get-account-authorization-details",
            count,
        );
    }
    Ok(())
}

/// Checks the users of `pages` (each a member path and its users) and takes their tags; gives
/// how many users there were.
fn read_users(
    export: &mut Collected,
    account: &str,
    path: &Path,
    pages: impl Iterator<Item = (String, Vec<User>)>,
    tags: &mut BTreeMap<String, BTreeMap<String, String>>,
) -> Result<usize> {
    let mut count = 0;
    for (member, users) in pages {
        for (index, user) in users.into_iter().enumerate() {
            let site = Site::new(path, format!("{member}[{index}]"))
                .labelled("UserName", user.user_name.as_ref());
            let name = site.required_str("UserName", user.user_name)?;
            if let Some(arn) = site.optional_str("Arn", user.arn)? {
                let at = format!("{} (UserName {})", site.path, quote(&name));
                export.check_arn(path, &at, &arn, account, None)?;
            }
            site.optional_date("CreateDate", user.create_date)?;
            if let Some(user_tags) = user.tags {
                tags.entry(name)
                    .or_default()
                    .extend(parse_tags(&site, "Tags", user_tags)?);
            }
            count += 1;
        }
    }
    Ok(count)
}

/// The access keys of list-access-keys.json, each listed once.
fn read_access_keys(
    export: &mut Collected,
    account: &str,
    dir: &Path,
) -> Result<Option<(PathBuf, Vec<AccessKey>)>> {
    let mut keys: Option<(PathBuf, Vec<AccessKey>)> = None;
    let path = dir.join("list-access-keys.json");
    if let Some(text) = export.read_optional(&path)? {
        let outputs: OneOrMany<ListAccessKeysOutput> = awsjson::from_file_text(&path, &text)?;
        let mut found: Vec<AccessKey> = Vec::new();
        let mut locations: BTreeMap<String, String> = BTreeMap::new();
        for (prefix, output) in outputs.with_prefixes() {
            for (index, key) in output.access_key_metadata.into_iter().enumerate() {
                let site = Site::new(&path, format!("{prefix}AccessKeyMetadata[{index}]"))
                    .labelled("UserName", key.user_name.as_ref());
                let user = site.required_str("UserName", key.user_name)?;
                let id = site.required_str("AccessKeyId", key.access_key_id)?;
                let status = match site.required_str("Status", key.status)?.as_str() {
                    "Active" => KeyStatus::Active,
                    // Expired keys cannot be used either.
                    "Inactive" | "Expired" => KeyStatus::Inactive,
                    other => {
                        return Err(site.error(
                            "Status",
                            format!(
                                "expected \"Active\" or \"Inactive\", found {}",
                                quote(other)
                            ),
                        ));
                    }
                };
                let created_at = site.required_date("CreateDate", key.create_date)?;
                if let Some(first) = locations.insert(id.clone(), site.path.clone()) {
                    return Err(site.error(
                        "AccessKeyId",
                        format!("key {} is listed twice (also at {first})", quote(&id)),
                    ));
                }
                found.push(AccessKey {
                    id,
                    user,
                    status,
                    created_at,
                });
            }
        }
        export.cover(account, GLOBAL, "iam:list-access-keys", found.len());
        keys = Some((path, found));
    }
    Ok(keys)
}

/// The last use of each access key, from get-access-key-last-used.json.
fn read_last_used(
    export: &mut Collected,
    account: &str,
    dir: &Path,
) -> Result<BTreeMap<String, LastUse>> {
    let mut last_used: BTreeMap<String, LastUse> = BTreeMap::new();
    let path = dir.join("get-access-key-last-used.json");
    if let Some(text) = export.read_optional(&path)? {
        let outputs: OneOrMany<GetAccessKeyLastUsedOutput> = awsjson::from_file_text(&path, &text)?;
        let mut count = 0;
        for (prefix, output) in outputs.with_prefixes() {
            let site =
                Site::new(&path, prefix).labelled("AccessKeyId", output.access_key_id.as_ref());
            site.optional_str("UserName", output.user_name)?;
            let id = site.required_str("AccessKeyId", output.access_key_id)?;
            let used = output.access_key_last_used.ok_or_else(|| {
                site.error(
                    "AccessKeyLastUsed",
                    "missing; expected an object with LastUsedDate, ServiceName and Region",
                )
            })?;
            let used_site = site.child("AccessKeyLastUsed");
            let last_use = LastUse {
                at: used_site.optional_date("LastUsedDate", used.last_used_date)?,
                region: known(used_site.optional_str("Region", used.region)?),
                service: known(used_site.optional_str("ServiceName", used.service_name)?),
            };
            if last_used.insert(id.clone(), last_use).is_some() {
                return Err(site.error(
                    "AccessKeyId",
                    format!("key {} has more than one record", quote(&id)),
                ));
            }
            count += 1;
        }
        export.cover(account, GLOBAL, "iam:get-access-key-last-used", count);
    }
    Ok(last_used)
}

/// The tags of list-user-tags.json, added to `tags`.
fn read_user_tags(
    export: &mut Collected,
    account: &str,
    dir: &Path,
    tags: &mut BTreeMap<String, BTreeMap<String, String>>,
) -> Result<()> {
    let path = dir.join("list-user-tags.json");
    if let Some(text) = export.read_optional(&path)? {
        let outputs: OneOrMany<ListUserTagsOutput> = awsjson::from_file_text(&path, &text)?;
        let mut count = 0;
        for (prefix, output) in outputs.with_prefixes() {
            let site = Site::new(&path, prefix).labelled("UserName", output.user_name.as_ref());
            let user = site.required_str("UserName", output.user_name)?;
            let user_tags = parse_tags(&site, "Tags", output.tags)?;
            tags.entry(user).or_default().extend(user_tags);
            count += 1;
        }
        export.cover(account, GLOBAL, "iam:list-user-tags", count);
    }
    Ok(())
}

/// Builds the IAM credentials of one account from what its files said.
fn merge_iam(
    export: &mut Collected,
    account: &str,
    report: Option<(PathBuf, Vec<ReportRow>)>,
    keys: Option<(PathBuf, Vec<AccessKey>)>,
    last_used: &BTreeMap<String, LastUse>,
    tags: &BTreeMap<String, BTreeMap<String, String>>,
) {
    let (report_path, rows) = match report {
        Some((path, rows)) => (Some(path), rows),
        None => (None, Vec::new()),
    };
    let mut rows_by_user: BTreeMap<&str, &ReportRow> = BTreeMap::new();
    for row in &rows {
        rows_by_user.entry(row.user.as_str()).or_insert(row);
    }

    // The users and their console passwords, for CIS 1.11 and 1.12. The root user's row is
    // left out: its password columns say `not_supported`, and its use is CIS 1.7's concern.
    export.users.extend(
        rows_by_user
            .values()
            .filter(|row| !row.is_root())
            .map(|row| IamUser {
                account: account.to_string(),
                name: row.user.clone(),
                arn: row.arn.clone(),
                created_at: row.created_at,
                password_enabled: row.password_enabled,
                password_last_used_at: row.password_last_used,
                password_last_changed_at: row.password_last_changed,
            }),
    );

    // Root keys exist only in the credential report.
    if let Some(path) = &report_path {
        merge_root_keys(export, account, path, &rows);
    }

    match (keys, &report_path) {
        (Some((path, keys)), _) => {
            merge_listed_keys(export, account, &path, keys, &rows_by_user, last_used, tags);
        }
        (None, Some(path)) => merge_report_keys(export, account, path, &rows, tags),
        (None, None) => {}
    }
}

/// The active root access keys of the credential report at `path`.
fn merge_root_keys(export: &mut Collected, account: &str, path: &Path, rows: &[ReportRow]) {
    for row in rows.iter().filter(|row| row.is_root()) {
        for (slot, key) in row.keys.iter().enumerate() {
            if !key.active {
                continue;
            }
            let mut credential = blank(
                format!("{}/access-key-{}", row.arn, slot + 1),
                CredentialKind::RootAccessKey,
                account,
                GLOBAL,
                &row.user,
            );
            credential.created_at = key.last_rotated;
            credential.last_rotated_at = key.last_rotated;
            credential.last_used_at = key.last_used_at;
            credential.last_used_region = key.last_used_region.clone();
            credential.last_used_service = key.last_used_service.clone();
            export.observed.push((credential, path.to_path_buf()));
        }
    }
}

/// The IAM access keys of list-access-keys.json at `path`, with their last use (from
/// get-access-key-last-used, else from the credential report) and their user's tags.
fn merge_listed_keys(
    export: &mut Collected,
    account: &str,
    path: &Path,
    keys: Vec<AccessKey>,
    rows_by_user: &BTreeMap<&str, &ReportRow>,
    last_used: &BTreeMap<String, LastUse>,
    tags: &BTreeMap<String, BTreeMap<String, String>>,
) {
    for key in keys {
        let row = rows_by_user.get(key.user.as_str()).copied();
        let mut credential = blank(
            key.id.clone(),
            CredentialKind::IamAccessKey,
            account,
            GLOBAL,
            &key.user,
        );
        credential.status = key.status;
        credential.created_at = Some(key.created_at);
        credential.last_rotated_at = Some(key.created_at);
        if let Some(used) = last_used.get(&key.id) {
            credential.last_used_at = used.at;
            credential.last_used_region = used.region.clone();
            credential.last_used_service = used.service.clone();
        } else if let Some(row) = row {
            let slot = match credential_report::slot_of_key(row, key.created_at) {
                credential_report::SlotMatch::Unique(slot) => Some(slot),
                // Two keys made in one second: the later use of the two, so that neither is
                // said to be unused on a use that may have been its own.
                credential_report::SlotMatch::Ambiguous([a, b]) => {
                    Some(if b.last_used_at > a.last_used_at {
                        b
                    } else {
                        a
                    })
                }
                credential_report::SlotMatch::None => None,
            };
            if let Some(slot) = slot {
                credential.last_used_at = slot.last_used_at;
                credential.last_used_region = slot.last_used_region.clone();
                credential.last_used_service = slot.last_used_service.clone();
            }
        }
        credential.password_enabled = row.is_some_and(|row| row.password_enabled);
        credential.tags = tags.get(&key.user).cloned().unwrap_or_default();
        export.observed.push((credential, path.to_path_buf()));
    }
}

/// Without list-access-keys.json, the IAM access keys of the credential report at `path`,
/// named by their user's ARN and slot.
fn merge_report_keys(
    export: &mut Collected,
    account: &str,
    path: &Path,
    rows: &[ReportRow],
    tags: &BTreeMap<String, BTreeMap<String, String>>,
) {
    // No key ids: name each key by its user's ARN and slot.
    let mut derived = 0;
    for row in rows.iter().filter(|row| !row.is_root()) {
        for (slot, key) in row.keys.iter().enumerate() {
            if key.last_rotated.is_none() {
                continue;
            }
            let mut credential = blank(
                format!("{}/access-key-{}", row.arn, slot + 1),
                CredentialKind::IamAccessKey,
                account,
                GLOBAL,
                &row.user,
            );
            credential.status = if key.active {
                KeyStatus::Active
            } else {
                KeyStatus::Inactive
            };
            credential.created_at = key.last_rotated;
            credential.last_rotated_at = key.last_rotated;
            credential.last_used_at = key.last_used_at;
            credential.last_used_region = key.last_used_region.clone();
            credential.last_used_service = key.last_used_service.clone();
            credential.password_enabled = row.password_enabled;
            credential.tags = tags.get(&row.user).cloned().unwrap_or_default();
            export.observed.push((credential, path.to_path_buf()));
            derived += 1;
        }
    }
    export.cover(
        account,
        GLOBAL,
        "iam:credential-report:access-keys",
        derived,
    );
}

/// A credential with only its identity set; the rest absent, empty or false.
fn blank(
    id: String,
    kind: CredentialKind,
    account: &str,
    region: &str,
    name: &str,
) -> ObservedCredential {
    ObservedCredential {
        id,
        kind,
        account: account.to_string(),
        region: region.to_string(),
        name: name.to_string(),
        status: KeyStatus::Active,
        created_at: None,
        last_rotated_at: None,
        last_used_at: None,
        last_used_region: None,
        last_used_service: None,
        rotation_enabled: None,
        rotation_interval_days: None,
        schedule_expression: None,
        next_rotation_at: None,
        last_changed_at: None,
        pending_version: false,
        tags: BTreeMap::new(),
        password_enabled: false,
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets Manager

/// A secret as one file described it; `None` means the file did not say.
struct SecretRecord {
    arn: String,
    name: String,
    created: Option<Timestamp>,
    last_rotated: Option<Timestamp>,
    last_accessed: Option<Timestamp>,
    last_changed: Option<Timestamp>,
    next_rotation: Option<Timestamp>,
    deleted: Option<Timestamp>,
    rotation_enabled: Option<bool>,
    /// RotationRules as a whole: (AutomaticallyAfterDays, ScheduleExpression).
    rules: Option<(Option<u32>, Option<String>)>,
    tags: Option<BTreeMap<String, String>>,
    pending: Option<bool>,
    file: PathBuf,
}

impl SecretRecord {
    /// This record with what `newer` (a describe-secret output) says laid over it.
    fn overlay(self, newer: SecretRecord) -> SecretRecord {
        SecretRecord {
            arn: newer.arn,
            name: newer.name,
            created: newer.created.or(self.created),
            last_rotated: newer.last_rotated.or(self.last_rotated),
            last_accessed: newer.last_accessed.or(self.last_accessed),
            last_changed: newer.last_changed.or(self.last_changed),
            next_rotation: newer.next_rotation.or(self.next_rotation),
            deleted: newer.deleted.or(self.deleted),
            rotation_enabled: newer.rotation_enabled.or(self.rotation_enabled),
            rules: newer.rules.or(self.rules),
            tags: newer.tags.or(self.tags),
            pending: newer.pending.or(self.pending),
            file: newer.file,
        }
    }

    fn into_credential(self, account: &str, region: &str) -> (ObservedCredential, PathBuf) {
        let mut credential = blank(
            self.arn,
            CredentialKind::Secret,
            account,
            region,
            &self.name,
        );
        credential.created_at = self.created;
        credential.last_rotated_at = self.last_rotated;
        credential.last_used_at = self.last_accessed;
        credential.last_changed_at = self.last_changed;
        credential.next_rotation_at = self.next_rotation;
        credential.rotation_enabled = Some(self.rotation_enabled.unwrap_or(false));
        let (after_days, schedule) = self.rules.unwrap_or_default();
        credential.rotation_interval_days =
            after_days.or_else(|| schedule.as_deref().and_then(schedule_interval_days));
        credential.schedule_expression = schedule;
        credential.pending_version = self.pending.unwrap_or(false);
        credential.tags = self.tags.unwrap_or_default();
        (credential, self.file)
    }
}

fn parse_secret(site: &Site, entry: SecretListEntry) -> Result<SecretRecord> {
    let rules = match entry.rotation_rules {
        Some(rules) => {
            let rules_site = site.child("RotationRules");
            let after_days = rules_site
                .optional_u32("AutomaticallyAfterDays", rules.automatically_after_days)?;
            let schedule =
                rules_site.optional_str("ScheduleExpression", rules.schedule_expression)?;
            Some((after_days, schedule))
        }
        None => None,
    };
    let pending = match (entry.version_ids_to_stages, entry.secret_versions_to_stages) {
        (Some(map), _) if !map.is_null() => pending_version(site, "VersionIdsToStages", map)?,
        (_, Some(map)) => pending_version(site, "SecretVersionsToStages", map)?,
        _ => None,
    };
    Ok(SecretRecord {
        arn: site.required_str("ARN", entry.arn)?,
        name: site.required_str("Name", entry.name)?,
        created: site.optional_date("CreatedDate", entry.created_date)?,
        last_rotated: site.optional_date("LastRotatedDate", entry.last_rotated_date)?,
        last_accessed: site.optional_date("LastAccessedDate", entry.last_accessed_date)?,
        last_changed: site.optional_date("LastChangedDate", entry.last_changed_date)?,
        next_rotation: site.optional_date("NextRotationDate", entry.next_rotation_date)?,
        deleted: site.optional_date("DeletedDate", entry.deleted_date)?,
        rotation_enabled: site.optional_bool("RotationEnabled", entry.rotation_enabled)?,
        rules,
        tags: entry
            .tags
            .map(|tags| parse_tags(site, "Tags", tags))
            .transpose()?,
        pending,
        file: site.file.to_path_buf(),
    })
}

/// Whether a version map (`{"version-id": ["AWSCURRENT", …]}`) has a version that is AWSPENDING
/// without being AWSCURRENT: a rotation that started and did not finish.
fn pending_version(site: &Site, member: &str, map: Value) -> Result<Option<bool>> {
    let versions = match map {
        Value::Null => return Ok(None),
        Value::Object(versions) => versions,
        other => {
            return Err(site.error(
                member,
                format!(
                    "expected an object of version ids to stage lists, found {}",
                    awsjson::describe(&other)
                ),
            ));
        }
    };
    let mut pending = false;
    for (version, stages) in versions {
        let Value::Array(stages) = stages else {
            return Err(site.error(
                &format!("{member}[{}]", quote(&version)),
                format!(
                    "expected a list of stage names, found {}",
                    awsjson::describe(&stages)
                ),
            ));
        };
        let mut names = Vec::with_capacity(stages.len());
        for stage in &stages {
            match stage {
                Value::String(name) => names.push(name.as_str()),
                other => {
                    return Err(site.error(
                        &format!("{member}[{}]", quote(&version)),
                        format!(
                            "expected stage names as strings, found {}",
                            awsjson::describe(other)
                        ),
                    ));
                }
            }
        }
        pending |= names.contains(&"AWSPENDING") && !names.contains(&"AWSCURRENT");
    }
    Ok(Some(pending))
}

fn read_secrets(export: &mut Collected, account: &str, dir: &Path) -> Result<()> {
    if !is_dir(dir)? {
        return Ok(());
    }
    for entry in entries(dir)? {
        if !entry.is_dir {
            if entry.name.ends_with(".json") {
                return Err(Error::input_file(
                    &entry.path,
                    "expected Secrets Manager files inside a region folder, e.g. secretsmanager/us-east-1/list-secrets.json",
                ));
            }
            continue;
        }
        if !is_region_name(&entry.name) {
            return Err(Error::input_file(
                &entry.path,
                format!(
                    "expected a region folder named like us-east-1, found {}",
                    quote(&entry.name)
                ),
            ));
        }
        read_secrets_region(export, account, &entry.name, &entry.path)?;
    }
    Ok(())
}

fn read_secrets_region(
    export: &mut Collected,
    account: &str,
    region: &str,
    dir: &Path,
) -> Result<()> {
    let mut secrets: BTreeMap<String, (SecretRecord, String)> = BTreeMap::new();

    let path = dir.join("list-secrets.json");
    if let Some(text) = export.read_optional(&path)? {
        let pages: OneOrMany<ListSecretsOutput> = awsjson::from_file_text(&path, &text)?;
        let mut count = 0;
        for (prefix, page) in pages.with_prefixes() {
            for (index, entry) in page.secret_list.into_iter().enumerate() {
                let site = Site::new(&path, format!("{prefix}SecretList[{index}]"))
                    .labelled("Name", entry.name.as_ref());
                let record = parse_secret(&site, entry)?;
                let at = format!("{} (Name {})", site.path, quote(&record.name));
                export.check_arn(&path, &at, &record.arn, account, Some(region))?;
                if record.deleted.is_none() {
                    count += 1;
                }
                if let Some((_, first)) = secrets.get(&record.arn) {
                    return Err(site.error(
                        "ARN",
                        format!(
                            "secret {} is listed twice (also at {first})",
                            quote(&record.arn)
                        ),
                    ));
                }
                secrets.insert(record.arn.clone(), (record, site.path.clone()));
            }
        }
        export.cover(account, region, "secretsmanager:list-secrets", count);
    }

    let path = dir.join("describe-secret.json");
    if let Some(text) = export.read_optional(&path)? {
        let outputs: OneOrMany<SecretListEntry> = awsjson::from_file_text(&path, &text)?;
        let mut count = 0;
        let mut described: BTreeSet<String> = BTreeSet::new();
        for (prefix, output) in outputs.with_prefixes() {
            let site = Site::new(&path, prefix).labelled("Name", output.name.as_ref());
            let record = parse_secret(&site, output)?;
            let at = format!("{} (Name {})", site.path, quote(&record.name));
            export.check_arn(&path, &at, &record.arn, account, Some(region))?;
            if !described.insert(record.arn.clone()) {
                return Err(site.error(
                    "ARN",
                    format!("secret {} is described twice", quote(&record.arn)),
                ));
            }
            let location = site.path.clone();
            let merged = match secrets.remove(&record.arn) {
                Some((listed, _)) => listed.overlay(record),
                None => record,
            };
            secrets.insert(merged.arn.clone(), (merged, location));
            count += 1;
        }
        export.cover(account, region, "secretsmanager:describe-secret", count);
    }

    for (record, _) in secrets.into_values() {
        if record.deleted.is_some() {
            continue;
        }
        export
            .observed
            .push(record.into_credential(account, region));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
