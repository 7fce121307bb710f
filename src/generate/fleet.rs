//! The synthetic fleet in memory: what AWS holds (users, keys, secrets, root keys per account),
//! what the organisation declared (owners, credentials) and what the rotation history says.
//! [`super::build`] makes it, [`super::truth`] evaluates it, [`super::write`] writes it.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::model::{CredentialKind, EventType, OwnerStatus, RiskClass, Trigger};

pub(super) type Ts = DateTime<Utc>;

pub(super) const MINUTE: i64 = 60;
pub(super) const HOUR: i64 = 3_600;
pub(super) const DAY: i64 = 86_400;
/// How far back the rotation history reaches; it opens with a `policy.updated` event, so this is
/// also where the audit-trail window starts.
pub(super) const HISTORY_DAYS: i64 = 60;

// ---------------------------------------------------------------------------------------------
// The fleet

/// Everything generated: the AWS side per account, the declared side, the history, and what the
/// scenarios meant to plant.
pub(super) struct Fleet {
    pub accounts: Vec<Account>,
    pub regions: Vec<String>,
    pub owners: Vec<OwnerDecl>,
    pub declared: Vec<Declared>,
    /// Sorted by (time, credential, type).
    pub events: Vec<Event>,
    /// (rule, credential) pairs the scenarios planted; the ground-truth evaluation must agree.
    #[cfg_attr(not(test), allow(dead_code))]
    pub intended: BTreeSet<(String, String)>,
}

pub(super) struct Account {
    pub id: String,
    pub root: Root,
    /// Sorted by name.
    pub users: Vec<User>,
    /// One list per region, in the order of `Fleet::regions`, sorted by name.
    pub secrets: Vec<Vec<Secret>>,
}

pub(super) struct Root {
    pub created: Ts,
    pub password_last_used: Option<Ts>,
    pub keys: [Option<RootKey>; 2],
}

pub(super) struct RootKey {
    pub active: bool,
    pub last_rotated: Ts,
    pub last_used: Option<LastUse>,
}

pub(super) struct User {
    pub name: String,
    pub user_id: String,
    pub created: Ts,
    /// Console password: (last changed, last used).
    pub password: Option<(Ts, Option<Ts>)>,
    pub mfa: bool,
    pub tags: Vec<(String, String)>,
    /// Oldest first: slot 1 of the credential report is the older key.
    pub keys: Vec<Key>,
}

pub(super) struct Key {
    pub id: String,
    pub active: bool,
    pub created: Ts,
    pub last_used: Option<LastUse>,
}

pub(super) struct LastUse {
    pub time: Ts,
    pub region: String,
    pub service: String,
}

pub(super) struct Secret {
    pub name: String,
    pub arn: String,
    pub description: String,
    pub created: Ts,
    pub last_changed: Ts,
    pub last_rotated: Option<Ts>,
    /// Truncated to the day, as Secrets Manager reports it.
    pub last_accessed: Option<Ts>,
    pub rotation_enabled: bool,
    pub rotation: Option<RotationRule>,
    pub lambda_arn: Option<String>,
    pub next_rotation: Option<Ts>,
    pub tags: Vec<(String, String)>,
    pub versions: Vec<(String, Vec<&'static str>)>,
}

/// A Secrets Manager rotation schedule: every `days` days, written as `AutomaticallyAfterDays` or
/// as `rate(N days)`.
#[derive(Clone, Copy)]
pub(super) struct RotationRule {
    pub days: u32,
    pub as_rate: bool,
}

pub(super) struct OwnerDecl {
    pub id: &'static str,
    pub name: &'static str,
    pub email: &'static str,
    pub status: OwnerStatus,
}

pub(super) struct Declared {
    pub id: String,
    pub kind: CredentialKind,
    pub class: Option<RiskClass>,
    pub owner: Option<String>,
    pub consumers: Vec<String>,
    pub automated: bool,
    pub interval_days: Option<u32>,
    pub max_uses: Option<u64>,
    pub account: Option<String>,
    pub description: String,
}

pub(super) struct Event {
    pub time: Ts,
    pub kind: EventType,
    pub credential: String,
    pub trigger: Option<Trigger>,
    pub fingerprint: Option<String>,
    pub details: Option<String>,
}

/// The policy default interval of a class; unclassified is class A.
pub(super) fn class_days(class: Option<RiskClass>) -> u32 {
    match class.unwrap_or(RiskClass::A) {
        RiskClass::A => 14,
        RiskClass::B => 30,
        RiskClass::C => 90,
        RiskClass::D => 365,
    }
}

/// interval(c): the declared override, else the class interval.
pub(super) fn interval_days(class: Option<RiskClass>, override_days: Option<u32>) -> u32 {
    override_days.unwrap_or_else(|| class_days(class))
}

/// Truncated to the minute, as AWS reports last use.
pub(super) fn minute(t: Ts) -> Ts {
    let s = t.timestamp();
    DateTime::from_timestamp(s - s.rem_euclid(MINUTE), 0).unwrap_or(t)
}

/// Truncated to the day, as Secrets Manager reports last access.
pub(super) fn day(t: Ts) -> Ts {
    let s = t.timestamp();
    DateTime::from_timestamp(s - s.rem_euclid(DAY), 0).unwrap_or(t)
}
