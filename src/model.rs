//! The owned domain types every stage shares: what was observed in AWS, what was declared, what
//! happened (rotation events), and what the rules found.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A point in time, always UTC.
pub type Timestamp = DateTime<Utc>;

/// The `FromStr` error of the domain enums: "one of a, b, c", every accepted name in order
/// (callers write "expected {error}").
fn one_of<T>(_: &str) -> String
where
    T: strum::VariantArray + Copy + Into<&'static str>,
{
    let names: Vec<&str> = T::VARIANTS.iter().map(|&v| v.into()).collect();
    format!("one of {}", names.join(", "))
}

/// The kind of credential. AWS kinds are discovered by scanning; the others are declared only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[derive(strum::IntoStaticStr, strum::Display, strum::EnumString, strum::VariantArray)]
#[strum(serialize_all = "kebab-case")]
#[strum(parse_err_ty = String, parse_err_fn = one_of::<CredentialKind>)]
pub enum CredentialKind {
    /// An IAM user's access key (AKIA…).
    IamAccessKey,
    /// The root user's access key, known only from the credential report.
    RootAccessKey,
    /// A Secrets Manager secret (database password, LLM provider key, …).
    Secret,
    /// An API key of an LLM or other SaaS provider, held outside AWS.
    LlmApiKey,
    /// A database password held outside Secrets Manager.
    DbPassword,
    /// An OAuth client secret.
    OauthClient,
    /// An X.509 certificate or its private key.
    Certificate,
    /// Anything else the organisation declares.
    Other,
}

impl CredentialKind {
    /// The kebab-case name, as stored and in reports.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether a scan of AWS can discover credentials of this kind (and so can tell that a
    /// declared one is missing).
    pub fn is_discoverable(self) -> bool {
        matches!(
            self,
            Self::IamAccessKey | Self::RootAccessKey | Self::Secret
        )
    }
}

/// Risk class of a credential; decides its rotation interval.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::Display,
    strum::EnumString,
    strum::VariantArray,
)]
#[strum(parse_err_ty = String, parse_err_fn = one_of::<RiskClass>)]
pub enum RiskClass {
    A,
    B,
    C,
    D,
}

impl RiskClass {
    /// Every class, A (the strictest) first.
    pub const ALL: &'static [RiskClass] = <Self as strum::VariantArray>::VARIANTS;

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Whether an access key can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyStatus {
    Active,
    Inactive,
}

/// A credential as found in AWS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedCredential {
    /// Public id: access key id, secret ARN, or `arn:aws:iam::ACCOUNT:root/access-key-N` for root keys.
    pub id: String,
    pub kind: CredentialKind,
    pub account: String,
    /// `global` for IAM.
    pub region: String,
    /// The IAM user holding the key, or the secret's name.
    pub name: String,
    pub status: KeyStatus,
    pub created_at: Option<Timestamp>,
    /// When its value last changed by rotation (the key's creation; a secret's LastRotatedDate).
    pub last_rotated_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub last_used_region: Option<String>,
    pub last_used_service: Option<String>,
    /// Secrets only: whether AWS rotation is switched on.
    pub rotation_enabled: Option<bool>,
    /// Secrets only: the AWS rotation interval in days (from AutomaticallyAfterDays or the
    /// ScheduleExpression).
    pub rotation_interval_days: Option<u32>,
    pub schedule_expression: Option<String>,
    pub next_rotation_at: Option<Timestamp>,
    pub last_changed_at: Option<Timestamp>,
    /// Secrets only: a version carries AWSPENDING without also being AWSCURRENT.
    pub pending_version: bool,
    /// The secret's tags, or the IAM user's tags for a key.
    pub tags: BTreeMap<String, String>,
    /// IAM only: the user has a console password.
    pub password_enabled: bool,
}

/// Whether a declared owner still works here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[derive(strum::IntoStaticStr)]
#[strum(serialize_all = "kebab-case")]
pub enum OwnerStatus {
    Active,
    Departed,
}

impl OwnerStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A person or team that answers for credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Owner {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub status: OwnerStatus,
}

/// A credential as the organisation declared it in its inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeclaredCredential {
    pub id: String,
    pub kind: CredentialKind,
    pub class: Option<RiskClass>,
    pub owner: Option<String>,
    pub consumers: Vec<String>,
    pub automated: bool,
    pub interval_days: Option<u32>,
    pub max_uses: Option<u64>,
    /// The account it lives in, where the declaration names one.
    pub account: Option<String>,
    pub description: Option<String>,
    /// Line of the declaration in the inventory file (for SARIF and error messages).
    pub line: usize,
}

/// Rotation policy every rule shares: the interval of each class, the "due soon" window and
/// the breach factor. The rules' own options ride along in the form `rules::RuleOptions` stores
/// them, so that these domain types depend on nothing else in the crate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    /// Rotation interval in days per class.
    pub classes: BTreeMap<RiskClass, u32>,
    /// "Due soon" window before a rotation is due.
    pub due_soon_hours: u32,
    /// Age past which an overdue credential is a policy breach (critical), as a multiple of its
    /// interval.
    pub breach_factor: f64,
    /// The rules' options as `rules::RuleOptions::store` wrote them, flat beside the shared
    /// policy (the stored layout of credaudit 0.1, kept so stored runs keep their hashes).
    /// Empty means every default; only `rules::RuleOptions` reads or writes it.
    #[serde(flatten)]
    pub rule_options: serde_json::Map<String, serde_json::Value>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            classes: RiskClass::ALL
                .iter()
                .map(|&c| (c, default_interval(c)))
                .collect(),
            due_soon_hours: 48,
            breach_factor: 1.5,
            rule_options: serde_json::Map::new(),
        }
    }
}

/// The rotation interval of a class when the policy does not set one.
fn default_interval(class: RiskClass) -> u32 {
    match class {
        RiskClass::A => 14,
        RiskClass::B => 30,
        RiskClass::C => 90,
        RiskClass::D => 365,
    }
}

impl Policy {
    /// The rotation interval of a class; an unclassified credential is treated as class A.
    pub fn class_interval(&self, class: Option<RiskClass>) -> u32 {
        let class = class.unwrap_or(RiskClass::A);
        self.classes
            .get(&class)
            .copied()
            .unwrap_or_else(|| default_interval(class))
    }
}

/// The whole declared inventory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub policy: Policy,
    pub owners: Vec<Owner>,
    pub credentials: Vec<DeclaredCredential>,
}

impl Inventory {
    /// The declared credential with this id.
    pub fn credential(&self, id: &str) -> Option<&DeclaredCredential> {
        self.credentials.iter().find(|c| c.id == id)
    }

    pub fn owner(&self, id: &str) -> Option<&Owner> {
        self.owners.iter().find(|o| o.id == id)
    }

    /// The declared credentials by id, built once for repeated lookups. As with
    /// [`Inventory::credential`], the first of a duplicated id wins.
    pub fn credentials_by_id(&self) -> HashMap<&str, &DeclaredCredential> {
        let mut by_id = HashMap::with_capacity(self.credentials.len());
        for c in &self.credentials {
            by_id.entry(c.id.as_str()).or_insert(c);
        }
        by_id
    }

    /// The owners by id, built once for repeated lookups. As with [`Inventory::owner`], the
    /// first of a duplicated id wins.
    pub fn owners_by_id(&self) -> HashMap<&str, &Owner> {
        let mut by_id = HashMap::with_capacity(self.owners.len());
        for o in &self.owners {
            by_id.entry(o.id.as_str()).or_insert(o);
        }
        by_id
    }
}

/// A 12-digit AWS account id.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Looks like an AWS region: dash-separated parts of lowercase letters and digits, at least
/// three, the first letters only, the last digits only (`us-east-1`, `us-gov-west-1`).
pub fn is_region_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
}

/// Bytes as lowercase hex, as every recorded hash is written.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(bytes))
}

/// One accepted risk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waiver {
    /// The rule it waives (a rule id).
    pub rule: String,
    /// The credential id, or a glob over ids (`*` any run of characters, `?` one character).
    pub credential: String,
    pub reason: String,
    pub approver: String,
    pub ticket: String,
    /// When it stops applying.
    pub expires: Timestamp,
    /// Line of the waiver in its file.
    pub line: usize,
}

/// A waiver as a finding carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppliedWaiver {
    pub reason: String,
    pub approver: String,
    pub ticket: String,
    pub expires: Timestamp,
}

impl Waiver {
    pub fn applied(&self) -> AppliedWaiver {
        AppliedWaiver {
            reason: self.reason.clone(),
            approver: self.approver.clone(),
            ticket: self.ticket.clone(),
            expires: self.expires,
        }
    }
}

/// What happened in a rotation history record.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::Display,
    strum::EnumString,
    strum::VariantArray,
)]
#[strum(parse_err_ty = String, parse_err_fn = one_of::<EventType>)]
pub enum EventType {
    #[serde(rename = "rotation.initiated")]
    #[strum(serialize = "rotation.initiated")]
    RotationInitiated,
    #[serde(rename = "rotation.completed")]
    #[strum(serialize = "rotation.completed")]
    RotationCompleted,
    #[serde(rename = "rotation.failed")]
    #[strum(serialize = "rotation.failed")]
    RotationFailed,
    #[serde(rename = "anomaly.detected")]
    #[strum(serialize = "anomaly.detected")]
    AnomalyDetected,
    #[serde(rename = "access.denied")]
    #[strum(serialize = "access.denied")]
    AccessDenied,
    #[serde(rename = "policy.updated")]
    #[strum(serialize = "policy.updated")]
    PolicyUpdated,
}

impl EventType {
    /// The dotted name of the history format (`rotation.completed`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What started a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[derive(strum::IntoStaticStr, strum::Display, strum::EnumString, strum::VariantArray)]
#[strum(serialize_all = "kebab-case")]
#[strum(parse_err_ty = String, parse_err_fn = one_of::<Trigger>)]
pub enum Trigger {
    Scheduled,
    Emergency,
    Anomaly,
    Event,
    Usage,
    Manual,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One record of rotation history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RotationEvent {
    pub time: Timestamp,
    pub credential_id: String,
    pub event_type: EventType,
    pub trigger: Option<Trigger>,
    /// Fingerprint of the credential a rotation issued (never the value itself).
    pub fingerprint: Option<String>,
    pub details: Option<String>,
    /// Where the record came from: `history` or `cloudtrail`.
    pub source: String,
}

/// Whether one API of one account and region could be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoverageEntry {
    pub account: String,
    pub region: String,
    /// The API or export file read, e.g. `iam:GenerateCredentialReport`.
    pub api: String,
    pub ok: bool,
    pub error: Option<String>,
    /// How many records it gave.
    pub records: u64,
}

/// How bad a finding is. Ordered, so gates are comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[derive(strum::IntoStaticStr, strum::Display, strum::EnumString, strum::VariantArray)]
#[strum(serialize_all = "lowercase")]
#[strum(parse_err_ty = String, parse_err_fn = one_of::<Severity>)]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One thing a rule found wrong with one credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub rule: String,
    pub severity: Severity,
    /// Public id of the credential: access key id, secret ARN, or declared id.
    pub credential: String,
    pub kind: CredentialKind,
    pub account: Option<String>,
    pub region: Option<String>,
    pub owner: Option<String>,
    /// Who holds the credential: the IAM user of an access key, `root` for the root user's
    /// key, the secret's name; `None` when the scan saw nothing that names one.
    #[serde(default)]
    pub principal: Option<String>,
    pub message: String,
    /// Ordered (key, value) pairs that back the finding.
    pub evidence: Vec<(String, String)>,
    /// The waiver that accepts this finding, if one is in force: the finding is reported but
    /// does not gate and does not fail controls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiver: Option<AppliedWaiver>,
}

impl Finding {
    /// Whether the finding counts: not accepted by a waiver in force.
    pub fn is_open(&self) -> bool {
        self.waiver.is_none()
    }

    /// Stable identity across runs: the rule and the credential, nothing that changes with time.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.rule, &self.credential)
    }
}

/// The stable fingerprint of a (rule, credential) pair: 16 hex digits of SHA-256.
pub fn fingerprint(rule: &str, credential: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{rule}\u{0}{credential}").as_bytes());
    hex(&digest[..8])
}

/// Everything an evaluation needs, as stored in one run of the snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    pub inventory: Inventory,
    pub observed: Vec<ObservedCredential>,
    /// Rotation history and lifecycle evidence, sorted by time.
    pub events: Vec<RotationEvent>,
    pub coverage: Vec<CoverageEntry>,
    /// Hourly CloudTrail usage per credential, sorted by (credential, hour).
    #[serde(default)]
    pub usage: Vec<UsageBucket>,
    /// 5-minute windows with authentication failures, sorted by (credential, start).
    #[serde(default)]
    pub auth_windows: Vec<AuthWindow>,
    /// Accepted risks, in file order.
    #[serde(default)]
    pub waivers: Vec<Waiver>,
    /// The IAM users of the credential reports read (the root user's row left out), sorted by
    /// (account, name). Empty for an account whose credential report was not read.
    #[serde(default)]
    pub users: Vec<IamUser>,
}

/// An IAM user as its account's credential report describes it: what CIS 1.11 and 1.12 judge
/// beside the keys (its console password and when that was last used). The root user is not
/// one: its row has no password facts (`not_supported`), and its use is CIS 1.7's concern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IamUser {
    pub account: String,
    /// The user name (`user`).
    pub name: String,
    pub arn: String,
    /// `user_creation_time`.
    pub created_at: Option<Timestamp>,
    /// `password_enabled`: the user can sign in to the console.
    pub password_enabled: bool,
    /// `password_last_used`; `None` when never used (`N/A`), or last used before IAM tracked
    /// it (`no_information`, before October 2014).
    pub password_last_used_at: Option<Timestamp>,
    /// `password_last_changed`: when the password was set; `None` without a password.
    pub password_last_changed_at: Option<Timestamp>,
}

impl IamUser {
    /// `ACCOUNT/USER`, as `controls::ScopeItem::iam_user` names a key's user.
    pub fn key(&self) -> String {
        format!("{}/{}", self.account, self.name)
    }

    /// The public id of its console password: `USER_ARN/console-password`, like a key
    /// derived from the report is `USER_ARN/access-key-N`.
    pub fn console_password_id(&self) -> String {
        format!("{}/console-password", self.arn)
    }
}

impl Facts {
    /// Whether `api` (e.g. `iam:list-access-keys`) was read successfully for `account`.
    pub fn covered(&self, account: &str, api_prefix: &str) -> bool {
        self.coverage
            .iter()
            .any(|c| c.ok && c.account == account && c.api.starts_with(api_prefix))
    }

    /// Accounts whose credentials were read (a successful IAM or Secrets Manager read), sorted.
    pub fn scanned_accounts(&self) -> Vec<&str> {
        let mut accounts: Vec<&str> = self
            .coverage
            .iter()
            // CloudTrail logs name the accounts they cover, but reading them is not a scan of
            // those accounts' credentials.
            .filter(|c| c.ok && !c.api.starts_with("cloudtrail:"))
            .map(|c| c.account.as_str())
            .collect();
        accounts.sort_unstable();
        accounts.dedup();
        accounts
    }
}

/// What one credential did in one clock hour, aggregated from CloudTrail. Kept in the snapshot
/// so a later scan's baseline needs no old logs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageBucket {
    /// Access key id, or secret ARN/name for GetSecretValue calls on a secret.
    pub credential_id: String,
    /// Start of the hour (UTC, minutes and seconds zero).
    pub hour: Timestamp,
    pub calls: u64,
    /// Calls that returned any error code.
    pub errors: u64,
    /// Calls that failed authentication or authorisation (AccessDenied, InvalidClientTokenId, …).
    pub auth_errors: u64,
    pub source_ips: Counts,
    pub regions: Counts,
    /// `eventSource:eventName`, e.g. `iam.amazonaws.com:CreateAccessKey`.
    pub operations: Counts,
    pub error_codes: Counts,
}

/// Counts by name (source IPs, regions, operations, error codes of one usage bucket): a vector
/// sorted by name. A bucket usually holds one or two names per kind, and a year of CloudTrail is
/// millions of buckets: a map's node per kind would cost ten times the counts. Serialised as
/// the map it stands for (names in order), so stored usage reads and hashes as before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts(Vec<(String, u64)>);

impl Counts {
    /// Adds `n` to the count of `name`, allocating the name only the first time it is seen.
    pub fn add(&mut self, name: &str, n: u64) {
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(name)) {
            Ok(i) => self.0[i].1 += n,
            Err(i) => self.0.insert(i, (name.to_owned(), n)),
        }
    }

    /// Adds every count of `other`.
    pub fn absorb(&mut self, other: Counts) {
        if self.0.is_empty() {
            *self = other;
            return;
        }
        for (name, n) in other.0 {
            self.add(&name, n);
        }
    }

    pub fn get(&self, name: &str) -> Option<u64> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The names, in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }

    /// (name, count), in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &u64)> {
        self.0.iter().map(|(k, n)| (k, n))
    }
}

impl<'a> IntoIterator for &'a Counts {
    type Item = (&'a String, &'a u64);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, u64)>,
        fn(&'a (String, u64)) -> (&'a String, &'a u64),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, n)| (k, n))
    }
}

impl FromIterator<(String, u64)> for Counts {
    /// Counts of the same name add up.
    fn from_iter<I: IntoIterator<Item = (String, u64)>>(iter: I) -> Self {
        let mut counts = Counts::default();
        for (name, n) in iter {
            counts.add(&name, n);
        }
        counts
    }
}

impl<const N: usize> From<[(String, u64); N]> for Counts {
    fn from(items: [(String, u64); N]) -> Self {
        items.into_iter().collect()
    }
}

impl From<BTreeMap<String, u64>> for Counts {
    fn from(map: BTreeMap<String, u64>) -> Self {
        Counts(map.into_iter().collect())
    }
}

impl Serialize for Counts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, n)| (k, n)))
    }
}

impl<'de> Deserialize<'de> for Counts {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<String, u64>::deserialize(deserializer).map(Counts::from)
    }
}

/// Calls and authentication failures of one credential in one 5-minute window; only windows
/// with at least one authentication failure are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthWindow {
    pub credential_id: String,
    /// Start of the 5-minute window.
    pub start: Timestamp,
    pub calls: u64,
    pub auth_errors: u64,
}

/// Error codes that mean a request failed authentication or authorisation.
pub const AUTH_ERROR_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "UnrecognizedClientException",
    "AuthFailure",
    "InvalidAccessKeyId",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "Client.UnauthorizedOperation",
];

/// Whether a CloudTrail `errorCode` is an authentication or authorisation failure.
pub fn is_auth_error(code: &str) -> bool {
    AUTH_ERROR_CODES.contains(&code)
}

/// The start of the last hour in which `id` made at least one successful call, from usage
/// sorted by (credential, hour).
pub fn last_access(usage: &[UsageBucket], id: &str) -> Option<Timestamp> {
    let start = usage.partition_point(|b| b.credential_id.as_str() < id);
    usage[start..]
        .iter()
        .take_while(|b| b.credential_id == id)
        .filter(|b| b.calls > b.errors)
        .map(|b| b.hour)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::VariantArray;

    /// `as_str`, `Display` and `FromStr` (strum) agree with the serde name (stored in the
    /// snapshot and hashed) for every variant.
    fn names_agree<T>(expected: &[&str])
    where
        T: VariantArray
            + Copy
            + PartialEq
            + std::fmt::Debug
            + std::fmt::Display
            + std::str::FromStr
            + Serialize
            + Into<&'static str>,
    {
        let names: Vec<&str> = T::VARIANTS.iter().map(|&v| v.into()).collect();
        assert_eq!(names, expected);
        for &v in T::VARIANTS {
            let name: &str = v.into();
            assert_eq!(serde_json::to_value(v).unwrap(), name);
            assert_eq!(v.to_string(), name);
            assert!(name.parse::<T>().is_ok_and(|p| p == v), "{name}");
        }
    }

    #[test]
    fn enum_names_are_the_stored_names() {
        names_agree::<CredentialKind>(&[
            "iam-access-key",
            "root-access-key",
            "secret",
            "llm-api-key",
            "db-password",
            "oauth-client",
            "certificate",
            "other",
        ]);
        names_agree::<RiskClass>(&["A", "B", "C", "D"]);
        names_agree::<EventType>(&[
            "rotation.initiated",
            "rotation.completed",
            "rotation.failed",
            "anomaly.detected",
            "access.denied",
            "policy.updated",
        ]);
        names_agree::<Trigger>(&[
            "scheduled",
            "emergency",
            "anomaly",
            "event",
            "usage",
            "manual",
        ]);
        names_agree::<Severity>(&["info", "low", "medium", "high", "critical"]);
        assert_eq!(OwnerStatus::Active.as_str(), "active");
        assert_eq!(OwnerStatus::Departed.as_str(), "departed");
        assert_eq!(
            serde_json::to_value(OwnerStatus::Departed).unwrap(),
            "departed"
        );
    }

    #[test]
    fn a_wrong_name_lists_the_right_ones() {
        assert_eq!("E".parse::<RiskClass>().unwrap_err(), "one of A, B, C, D");
        assert_eq!(
            "severe".parse::<Severity>().unwrap_err(),
            "one of info, low, medium, high, critical"
        );
        assert_eq!(
            "Info".parse::<Severity>().unwrap_err(),
            "one of info, low, medium, high, critical",
            "names are case-sensitive"
        );
        assert_eq!(
            "password".parse::<CredentialKind>().unwrap_err(),
            "one of iam-access-key, root-access-key, secret, llm-api-key, db-password, \
             oauth-client, certificate, other"
        );
        assert_eq!(
            "rotated".parse::<EventType>().unwrap_err(),
            "one of rotation.initiated, rotation.completed, rotation.failed, anomaly.detected, \
             access.denied, policy.updated"
        );
        assert_eq!(
            "cron".parse::<Trigger>().unwrap_err(),
            "one of scheduled, emergency, anomaly, event, usage, manual"
        );
    }

    #[test]
    fn counts_add_up_stay_in_order_and_serialise_as_the_map_they_stand_for() {
        let mut counts = Counts::default();
        for name in ["s3", "iam", "s3", "ec2", "iam", "s3"] {
            counts.add(name, 1);
        }
        let mut other = Counts::from([("kms".to_string(), 2), ("s3".to_string(), 4)]);
        other.absorb(Counts::default());
        counts.absorb(other);
        assert_eq!(
            counts
                .iter()
                .map(|(k, n)| (k.as_str(), *n))
                .collect::<Vec<_>>(),
            [("ec2", 1), ("iam", 2), ("kms", 2), ("s3", 7)]
        );
        assert_eq!((counts.get("s3"), counts.get("sts")), (Some(7), None));
        let map: BTreeMap<String, u64> = counts.iter().map(|(k, n)| (k.clone(), *n)).collect();
        let json = serde_json::to_string(&counts).unwrap();
        assert_eq!(json, serde_json::to_string(&map).unwrap());
        assert_eq!(json, r#"{"ec2":1,"iam":2,"kms":2,"s3":7}"#);
        assert_eq!(serde_json::from_str::<Counts>(&json).unwrap(), counts);
    }
}
