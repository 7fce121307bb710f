//! One credential of a scale fleet, as a pure function of (seed, index): its kind, account,
//! declaration, AWS state, history schedule, tags and CloudTrail usage pattern, with the defects
//! it drew. Clean values keep wide margins from every threshold (rotated at least three days
//! before due, used within two days, accessed within three), and every planted value keeps a
//! margin of hours or days from the threshold it crosses, so the ground truth is exact.

use chrono::{DateTime, Utc};

use super::super::rng::Rng;
use super::ScaleSpec;
use super::usage::{self, Principal};
use crate::model::{CredentialKind, RiskClass, Trigger};

pub(super) const MINUTE: i64 = 60;
pub(super) const HOUR: i64 = 3_600;
pub(super) const DAY: i64 = 86_400;

/// Every rule the generator can plant, in the order of `--rate` bits.
pub const RULE_IDS: [&str; 21] = [
    "unmanaged-credential",
    "orphaned-inventory-entry",
    "rotation-overdue",
    "rotation-due-soon",
    "unclassified-credential",
    "unowned-credential",
    "unused-credential",
    "multiple-active-keys",
    "root-access-key",
    "inactive-key-lingering",
    "rotation-not-automated",
    "rotation-schedule-drift",
    "rotation-failing",
    "audit-trail-gap",
    "tag-drift",
    "credential-reuse",
    "usage-limit-exceeded",
    "anomalous-usage",
    "auth-failure-spike",
    "incident-not-remediated",
    "secret-unused",
];
pub(super) const UNMANAGED: usize = 0;
pub(super) const ORPHANED: usize = 1;
pub(super) const OVERDUE: usize = 2;
pub(super) const DUE_SOON: usize = 3;
pub(super) const UNCLASSIFIED: usize = 4;
pub(super) const UNOWNED: usize = 5;
pub(super) const UNUSED: usize = 6;
pub(super) const MULTI_KEYS: usize = 7;
pub(super) const ROOT: usize = 8;
pub(super) const INACTIVE: usize = 9;
pub(super) const NOT_AUTOMATED: usize = 10;
pub(super) const DRIFT: usize = 11;
pub(super) const FAILING: usize = 12;
pub(super) const AUDIT_GAP: usize = 13;
pub(super) const TAG_DRIFT: usize = 14;
pub(super) const REUSE: usize = 15;
pub(super) const USAGE_LIMIT: usize = 16;
pub(super) const ANOMALOUS: usize = 17;
pub(super) const AUTH_SPIKE: usize = 18;
pub(super) const INCIDENT: usize = 19;
pub(super) const SECRET_UNUSED: usize = 20;

const fn bits(rules: &[usize]) -> u32 {
    let mut out = 0;
    let mut i = 0;
    while i < rules.len() {
        out |= 1 << rules[i];
        i += 1;
    }
    out
}

/// The defects each kind can carry.
const KEY_DEFECTS: u32 = bits(&[
    UNMANAGED,
    ORPHANED,
    OVERDUE,
    DUE_SOON,
    UNCLASSIFIED,
    UNOWNED,
    UNUSED,
    MULTI_KEYS,
    INACTIVE,
    NOT_AUTOMATED,
    FAILING,
    AUDIT_GAP,
    TAG_DRIFT,
    USAGE_LIMIT,
    ANOMALOUS,
    AUTH_SPIKE,
    INCIDENT,
]);
const SECRET_DEFECTS: u32 = bits(&[
    UNMANAGED,
    ORPHANED,
    OVERDUE,
    DUE_SOON,
    UNCLASSIFIED,
    UNOWNED,
    NOT_AUTOMATED,
    DRIFT,
    FAILING,
    AUDIT_GAP,
    TAG_DRIFT,
    REUSE,
    USAGE_LIMIT,
    ANOMALOUS,
    AUTH_SPIKE,
    INCIDENT,
    SECRET_UNUSED,
]);
const EXTERNAL_DEFECTS: u32 = bits(&[
    OVERDUE,
    DUE_SOON,
    UNCLASSIFIED,
    UNOWNED,
    NOT_AUTOMATED,
    FAILING,
    REUSE,
    INCIDENT,
]);
/// Defects that need CloudTrail usage.
const TRAIL_DEFECTS: u32 = bits(&[USAGE_LIMIT, ANOMALOUS, AUTH_SPIKE]);

/// Declared owners: (id, active).
pub(super) const OWNERS: [(&str, bool); 10] = [
    ("team-platform", true),
    ("team-agents", true),
    ("team-data", true),
    ("team-security", true),
    ("team-payments", true),
    ("maria.garcia", true),
    ("chen.wei", true),
    ("amara.okafor", true),
    ("john.doe", false),
    ("team-legacy", false),
];
const ACTIVE_OWNERS: usize = 8;

const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const SECRET_KINDS: [&str; 6] = [
    "db-password",
    "llm-api-key",
    "oauth-client",
    "webhook-signing",
    "queue-token",
    "vector-store-key",
];

/// Salts of the independent random streams.
const BASE_STREAM: u64 = 0x5CA1_E000_0000_0001;
const DEFECT_STREAM: u64 = 0x5CA1_E000_0000_0002;
const ROOT_STREAM: u64 = 0x5CA1_E000_0000_0003;
const ID_SALT: u64 = 0x5CA1_E000_0000_0004;
/// Offset of the id space of the second (newer) key of a user.
pub(super) const SECOND_KEY: u64 = 1 << 40;

/// Everything shared by all credentials: the spec and the times derived from it.
pub(super) struct World<'a> {
    pub spec: &'a ScaleSpec,
    /// As-of in whole seconds.
    pub now: i64,
    /// Start of the history (its opening `policy.updated` event).
    pub history_start: i64,
    /// Expected CloudTrail calls per principal, and the chance an eligible credential is one.
    pub calls_per_principal: f64,
    pub trail_share: f64,
    /// The CloudTrail hours: [trail_start, trail_end), split at detection_start.
    pub trail: usage::Window,
}

impl<'a> World<'a> {
    pub fn new(spec: &'a ScaleSpec) -> Self {
        let now = spec.as_of.timestamp();
        // About 90 % of the credentials can be CloudTrail principals.
        let eligible = (spec.credentials as f64 * 0.9).max(1.0);
        let events = spec.cloudtrail_events as f64;
        // Weekends, young keys and the detection window's caps leave about 13 % of the
        // nominal calls unmade.
        let calls_per_principal = (1.15 * events / eligible).max(120.0);
        let trail_share = (1.15 * events / (calls_per_principal * eligible)).min(1.0);
        World {
            spec,
            now,
            history_start: now - i64::from(spec.days) * DAY,
            calls_per_principal,
            trail_share,
            trail: usage::Window::new(now),
        }
    }

    pub fn accounts(&self) -> usize {
        self.spec.accounts.len()
    }

    /// The block of indices of account `a`.
    pub fn block(&self, a: usize) -> std::ops::Range<u64> {
        let n = self.spec.credentials;
        let k = self.accounts() as u64;
        (a as u64 * n / k)..((a as u64 + 1) * n / k)
    }

    pub fn account_of(&self, index: u64) -> usize {
        let k = self.accounts() as u64;
        // The largest a with a * n / k <= index.
        let mut a = (index * k / self.spec.credentials) as usize;
        while a + 1 < self.accounts() && self.block(a + 1).start <= index {
            a += 1;
        }
        while self.block(a).start > index {
            a -= 1;
        }
        a
    }

    pub fn rate(&self, rule: usize) -> f64 {
        self.spec.rates.0[rule]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Key,
    Secret,
    External(CredentialKind),
}

/// How rotation date tags are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TagStyle {
    None,
    Date,
    Rfc3339,
}

/// The rotation schedule a credential's history records: rotations at `last - k * cycle`, k from
/// `first_k` up while at or after `floor`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Schedule {
    pub last: i64,
    pub cycle: i64,
    pub floor: i64,
    /// 1 when the latest rotation is left out (audit-trail-gap).
    pub first_k: i64,
    /// The latest recorded rotation reuses the fingerprint of the earliest.
    pub reuse: bool,
    pub trigger: Trigger,
}

impl Schedule {
    /// The recorded rotation times, oldest first.
    pub fn times(&self) -> impl Iterator<Item = i64> + '_ {
        let count = self.count();
        (0..count).map(move |j| self.last - (self.first_k + count - 1 - j) * self.cycle)
    }

    pub fn count(&self) -> i64 {
        if self.last - self.first_k * self.cycle < self.floor {
            return 0;
        }
        (self.last - self.first_k * self.cycle - self.floor) / self.cycle + 1
    }
}

/// An older, still active key of the same user (multiple-active-keys), or its newer one.
#[derive(Debug, Clone)]
pub(super) struct SecondKey {
    pub id: String,
    pub created: i64,
    pub last_used: Option<i64>,
}

/// One credential.
#[derive(Debug, Clone)]
pub(super) struct Cred {
    pub index: u64,
    pub kind: Kind,
    pub account: usize,
    pub region: usize,
    /// Access key id, secret ARN or external id.
    pub id: String,
    /// User name, secret name or external id.
    pub name: String,
    /// The IAM user id (keys).
    pub user_id: String,
    pub observed: bool,
    pub declared: bool,
    pub class: Option<RiskClass>,
    pub owner: Option<usize>,
    pub automated: bool,
    /// Interval in days (the class's, A when unclassified).
    pub interval: i64,
    pub created: i64,
    /// The rotation AWS shows: a key's creation, a secret's last rotation; an external's latest.
    pub rotated: i64,
    pub active: bool,
    /// IAM last use (keys) or LastAccessedDate (secrets, by the day).
    pub last_used: Option<i64>,
    /// The user's newer key (multiple-active-keys: this credential is the older one).
    pub newer: Option<SecondKey>,
    pub rotation_enabled: bool,
    /// Secrets Manager rotation rule: days, written as `rate(N days)`.
    pub rule: Option<(i64, bool)>,
    pub pending_since: Option<i64>,
    pub schedule: Option<Schedule>,
    pub failed_at: Option<i64>,
    pub anomaly_at: Option<i64>,
    /// The access.denied events of a burst.
    pub denied: Vec<i64>,
    pub date_tags: TagStyle,
    /// Tag drift: (owner tag of another owner, next-rotation-date shifted by these seconds).
    pub drift_owner: bool,
    pub drift_due: i64,
    pub max_uses_planted: bool,
    pub max_uses_clean: bool,
    pub usage: Option<Principal>,
}

fn class_days(class: Option<RiskClass>) -> i64 {
    match class.unwrap_or(RiskClass::A) {
        RiskClass::A => 14,
        RiskClass::B => 30,
        RiskClass::C => 90,
        RiskClass::D => 365,
    }
}

/// A bijection of u64 (the splitmix64 finaliser): distinct indices give distinct ids.
fn scramble(x: u64) -> u64 {
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `prefix` + 16 base32 characters encoding a scrambled `n` (unique per `n`).
pub(super) fn unique_id(prefix: &str, seed: u64, n: u64) -> String {
    let mut value = scramble(n ^ scramble(seed ^ ID_SALT));
    let mut out = String::with_capacity(prefix.len() + 16);
    out.push_str(prefix);
    // 13 characters hold the 64 bits; 3 more from the seed make it 16.
    let tail = scramble(seed.wrapping_add(n));
    for i in 0..16 {
        let digit = if i < 13 {
            let d = value & 31;
            value >>= 5;
            d
        } else {
            (tail >> (5 * (i - 13))) & 31
        };
        out.push(char::from(BASE32[digit as usize]));
    }
    out
}

/// Uniform in `[lo, hi]` seconds (`lo` when empty).
fn span(rng: &mut Rng, lo: i64, hi: i64) -> i64 {
    rng.range(lo, hi.max(lo))
}

/// The defects credential `index` drew, limited to those its kind can carry.
fn draw_defects(world: &World, index: u64, kind: Kind) -> u32 {
    let mut rng = Rng::stream(world.spec.seed ^ DEFECT_STREAM, index);
    let mut drawn = 0u32;
    for rule in 0..RULE_IDS.len() {
        // Always one draw per rule, so changing one rate does not reshuffle the others.
        let u = rng.next_u64() as f64 / (u64::MAX as f64 + 1.0);
        if u < world.rate(rule) {
            drawn |= 1 << rule;
        }
    }
    let allowed = match kind {
        Kind::Key => KEY_DEFECTS,
        Kind::Secret => SECRET_DEFECTS,
        Kind::External(_) => EXTERNAL_DEFECTS,
    };
    resolve(drawn & allowed, world.spec.cloudtrail_events > 0)
}

/// Drops the defects that another one excludes (a credential not in AWS has no usage, …).
fn resolve(mut d: u32, trail: bool) -> u32 {
    let has = |d: u32, r: usize| d & (1 << r) != 0;
    if has(d, ORPHANED) {
        d &= bits(&[ORPHANED, UNCLASSIFIED, UNOWNED, NOT_AUTOMATED]);
    }
    if has(d, UNMANAGED) {
        d &= !bits(&[
            UNCLASSIFIED,
            UNOWNED,
            NOT_AUTOMATED,
            TAG_DRIFT,
            USAGE_LIMIT,
            REUSE,
            FAILING,
            INCIDENT,
        ]);
    }
    if has(d, INACTIVE) {
        d &= !bits(&[
            OVERDUE,
            DUE_SOON,
            UNUSED,
            MULTI_KEYS,
            FAILING,
            USAGE_LIMIT,
            ANOMALOUS,
            AUTH_SPIKE,
            INCIDENT,
        ]);
    }
    if has(d, OVERDUE) {
        d &= !(1 << DUE_SOON);
    }
    if has(d, UNUSED) || has(d, SECRET_UNUSED) || !trail {
        d &= !TRAIL_DEFECTS;
    }
    d
}

/// Builds credential `index`.
pub(super) fn build(world: &World, index: u64) -> Cred {
    let spec = world.spec;
    let mut rng = Rng::stream(spec.seed ^ BASE_STREAM, index);
    let kind = match rng.below(100) {
        0..40 => Kind::Key,
        40..90 => Kind::Secret,
        _ => Kind::External(*rng.pick(&[
            CredentialKind::LlmApiKey,
            CredentialKind::DbPassword,
            CredentialKind::OauthClient,
            CredentialKind::Certificate,
            CredentialKind::Other,
        ])),
    };
    let account = world.account_of(index);
    let region = rng.below(spec.regions.len() as u64) as usize;
    let mut class = Some(match rng.below(100) {
        0..5 => RiskClass::A,
        5..30 => RiskClass::B,
        30..80 => RiskClass::C,
        _ => RiskClass::D,
    });
    let d = draw_defects(world, index, kind);
    let has = |r: usize| d & (1 << r) != 0;
    if has(UNCLASSIFIED) || has(UNMANAGED) {
        class = None;
    } else if has(NOT_AUTOMATED) && matches!(class, Some(RiskClass::C | RiskClass::D)) {
        class = Some(RiskClass::B);
    } else if has(DRIFT) && class == Some(RiskClass::D) {
        class = Some(RiskClass::C);
    }
    if let (Kind::External(_), Some(c)) = (kind, class) {
        // An external credential is known rotated only from history: its class must fit in it.
        let fits = |c: RiskClass| class_days(Some(c)) + 3 <= i64::from(spec.days);
        if !fits(c) {
            class = [RiskClass::C, RiskClass::B, RiskClass::A]
                .into_iter()
                .find(|c| fits(*c))
                .or(class);
        }
    }
    let owner = if has(UNOWNED) {
        // Half have no owner, half one who departed.
        rng.percent(50)
            .then(|| ACTIVE_OWNERS + rng.below(2) as usize)
    } else {
        Some(rng.below(ACTIVE_OWNERS as u64) as usize)
    };
    let mut cred = Cred {
        index,
        kind,
        account,
        region,
        id: String::new(),
        name: String::new(),
        user_id: String::new(),
        observed: !has(ORPHANED) && !matches!(kind, Kind::External(_)),
        declared: !has(UNMANAGED),
        class,
        owner,
        automated: !(has(NOT_AUTOMATED) && (kind != Kind::Secret || rng.percent(50))),
        interval: class_days(class),
        created: 0,
        rotated: 0,
        active: !has(INACTIVE),
        last_used: None,
        newer: None,
        rotation_enabled: false,
        rule: None,
        pending_since: None,
        schedule: None,
        failed_at: None,
        anomaly_at: None,
        denied: Vec::new(),
        date_tags: TagStyle::None,
        drift_owner: false,
        drift_due: 0,
        max_uses_planted: has(USAGE_LIMIT),
        max_uses_clean: rng.percent(3),
        usage: None,
    };
    name_it(world, &mut cred, &mut rng);
    let age = rotation_age(&cred, d, &mut rng);
    match kind {
        Kind::Key => key_state(world, &mut cred, d, age, &mut rng),
        Kind::Secret => secret_state(world, &mut cred, d, age, &mut rng),
        Kind::External(_) => external_state(world, &mut cred, age),
    }
    plant_events(world, &mut cred, d, &mut rng);
    tags(&mut cred, d, &mut rng);
    usage::plan(world, &mut cred, d, &mut rng);
    cred
}

/// Ids and names.
fn name_it(world: &World, cred: &mut Cred, rng: &mut Rng) {
    let spec = world.spec;
    let seed = spec.seed;
    let i = cred.index;
    match cred.kind {
        Kind::Key => {
            cred.id = unique_id("AKIA", seed, i);
            cred.user_id = unique_id("AIDA", seed, i ^ (1 << 62));
            cred.user_id.push('X');
            cred.name = format!("agent-{i:08}-svc");
        }
        Kind::Secret => {
            let env = if rng.percent(80) { "prod" } else { "dev" };
            cred.name = format!("{env}/agent-{i:08}/{}", rng.pick(&SECRET_KINDS));
            cred.id = format!(
                "arn:aws:secretsmanager:{}:{}:secret:{}-{}",
                spec.regions[cred.region],
                spec.accounts[cred.account],
                cred.name,
                rng.chars(ALNUM, 6)
            );
        }
        Kind::External(kind) => {
            cred.id = format!("ext:{}:agent-{i:08}", kind.as_str());
            cred.name = cred.id.clone();
        }
    }
}

/// Seconds since the rotation AWS (or the history) shows, chosen for the planted timing.
fn rotation_age(cred: &Cred, d: u32, rng: &mut Rng) -> i64 {
    let has = |r: usize| d & (1 << r) != 0;
    let interval = cred.interval * DAY;
    if has(OVERDUE) {
        return interval + span(rng, 2 * DAY, (interval / 2).max(3 * DAY));
    }
    if has(DUE_SOON) {
        return interval - span(rng, 6 * HOUR, 40 * HOUR);
    }
    // Some defects need time since the rotation: a key never used past its grace, an incident
    // past its deadline, a baseline of CloudTrail use, an older key beside a newer one.
    let min = if has(UNUSED) {
        10 * DAY
    } else if has(ANOMALOUS) || has(AUTH_SPIKE) || has(USAGE_LIMIT) {
        8 * DAY
    } else if has(MULTI_KEYS) {
        5 * DAY
    } else if has(INCIDENT) || has(FAILING) {
        3 * DAY
    } else {
        12 * HOUR
    };
    span(rng, min, interval - 3 * DAY)
}

fn key_state(world: &World, cred: &mut Cred, d: u32, age: i64, rng: &mut Rng) {
    let has = |r: usize| d & (1 << r) != 0;
    let now = world.now;
    if has(INACTIVE) {
        cred.created = now - span(rng, 35 * DAY, 400 * DAY);
        cred.last_used = rng
            .percent(50)
            .then(|| span(rng, cred.created + HOUR, now - 32 * DAY));
    } else {
        cred.created = now - age;
        cred.last_used = if has(UNUSED) {
            (age >= 52 * DAY).then(|| now - span(rng, 50 * DAY, age - DAY))
        } else if age < 5 * DAY && rng.percent(25) {
            None
        } else {
            let latest = (age * 9 / 10).min(2 * DAY);
            Some((now - span(rng, 5 * MINUTE, latest)).max(cred.created + 2 * MINUTE))
        };
    }
    cred.rotated = cred.created;
    if has(MULTI_KEYS) {
        let created = now - span(rng, 2 * DAY, (age - DAY).min(3 * DAY));
        cred.newer = Some(SecondKey {
            id: unique_id("AKIA", world.spec.seed, cred.index + SECOND_KEY),
            created,
            last_used: Some(now - span(rng, 5 * MINUTE, (now - created) / 2)),
        });
    }
    if cred.declared {
        cred.schedule = Some(Schedule {
            last: cred.created,
            cycle: cred.interval * DAY,
            floor: cred.created.max(world.history_start),
            first_k: i64::from(has(AUDIT_GAP)),
            reuse: false,
            trigger: Trigger::Scheduled,
        });
    }
}

fn secret_state(world: &World, cred: &mut Cred, d: u32, age: i64, rng: &mut Rng) {
    let has = |r: usize| d & (1 << r) != 0;
    let now = world.now;
    let mut age = age;
    cred.rotation_enabled = !(has(NOT_AUTOMATED) && cred.automated);
    let days = if has(DRIFT) {
        cred.interval + span(rng, 5, 30)
    } else {
        cred.interval
    };
    if cred.rotation_enabled {
        // Keep the next rotation date (last + rule) a day away from the 24-hour threshold of
        // rotation-failing.
        let missed_by = age - days * DAY;
        if (missed_by - DAY).abs() < 12 * HOUR {
            age += DAY;
        }
    }
    cred.rotated = now - age;
    cred.rule = Some((days, rng.percent(30)));
    let accessed = has(SECRET_UNUSED).then(|| span(rng, 100 * DAY, 300 * DAY));
    let oldest = accessed.map_or(age, |a| a.max(age)) + DAY;
    cred.created = now - span(rng, oldest, oldest + 600 * DAY);
    cred.last_used = match accessed {
        Some(a) if rng.percent(80) => Some(day(now - a)),
        Some(_) => None,
        None => Some(day((now - span(rng, 0, 3 * DAY)).max(cred.created))),
    };
    if has(FAILING) && age >= 40 * HOUR && rng.percent(50) {
        cred.pending_since = Some(now - span(rng, 36 * HOUR, (age - HOUR).min(10 * DAY)));
    }
    if cred.declared {
        let cycle = if cred.rotation_enabled {
            days
        } else {
            cred.interval
        };
        cred.schedule = Some(Schedule {
            last: cred.rotated,
            cycle: cycle * DAY,
            floor: cred.created.max(world.history_start),
            first_k: i64::from(has(AUDIT_GAP)),
            reuse: has(REUSE),
            trigger: if cred.rotation_enabled {
                Trigger::Scheduled
            } else {
                Trigger::Manual
            },
        });
    }
}

fn external_state(world: &World, cred: &mut Cred, age: i64) {
    cred.rotated = world.now - age;
    cred.created = cred.rotated;
    cred.schedule = Some(Schedule {
        last: cred.rotated,
        cycle: cred.interval * DAY,
        floor: world.history_start,
        first_k: 0,
        reuse: false,
        trigger: if cred.automated {
            Trigger::Scheduled
        } else {
            Trigger::Manual
        },
    });
}

/// The failed rotation, the incident (anomaly or access-denied burst) and reuse of the history.
fn plant_events(world: &World, cred: &mut Cred, d: u32, rng: &mut Rng) {
    let has = |r: usize| d & (1 << r) != 0;
    let now = world.now;
    let age = now - cred.rotated;
    if let Some(s) = cred.schedule.as_mut() {
        s.reuse = has(REUSE);
    }
    if has(FAILING) && cred.pending_since.is_none() && cred.schedule.is_some() {
        let at = now - span(rng, HOUR, (age - HOUR).min(5 * DAY));
        if at > world.history_start + HOUR {
            cred.failed_at = Some(at);
        }
    }
    // An incident at least 37 h old, after the last rotation, inside the history; CloudTrail
    // principals may get theirs as a spike of failures instead (see `usage::plan`).
    if has(INCIDENT) && cred.schedule.is_some() && age >= 38 * HOUR + HOUR {
        let at = now - span(rng, 37 * HOUR, age - HOUR);
        if at > world.history_start + 2 * HOUR {
            if rng.percent(50) {
                cred.anomaly_at = Some(at);
            } else {
                let burst = 5 + rng.below(3) as i64;
                // The fifth denial (which completes the burst) falls at `at`.
                cred.denied = (0..burst).map(|j| at + (j - 4) * 5 * MINUTE).collect();
            }
        }
    }
}

fn tags(cred: &mut Cred, d: u32, rng: &mut Rng) {
    let has = |r: usize| d & (1 << r) != 0;
    cred.date_tags = match rng.below(20) {
        0..8 => TagStyle::None,
        8..17 => TagStyle::Date,
        _ => TagStyle::Rfc3339,
    };
    if cred.newer.is_some() || !cred.active {
        cred.date_tags = TagStyle::None;
    }
    if has(TAG_DRIFT) {
        if cred.owner.is_some() && (rng.percent(50) || cred.newer.is_some() || !cred.active) {
            cred.drift_owner = true;
        } else {
            if cred.date_tags == TagStyle::None {
                cred.date_tags = TagStyle::Date;
            }
            cred.drift_due = span(rng, 5 * DAY, 20 * DAY);
        }
    }
}

/// Truncated to the day, as Secrets Manager reports last access.
pub(super) fn day(t: i64) -> i64 {
    t - t.rem_euclid(DAY)
}

/// Truncated to the minute, as IAM reports last use.
pub(super) fn minute(t: i64) -> i64 {
    t - t.rem_euclid(MINUTE)
}

/// A time as `2026-10-03T14:22:05Z`.
pub(super) fn zulu(t: i64) -> String {
    DateTime::<Utc>::from_timestamp(t, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A time as `2026-10-03T14:22:05+00:00`, the form of the credential report and the CLI.
pub(super) fn iso(t: i64) -> String {
    DateTime::<Utc>::from_timestamp(t, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string()
}

impl Cred {
    /// The latest completed rotation the history records.
    pub fn history_latest(&self) -> Option<i64> {
        let s = self.schedule.as_ref()?;
        s.times().last().map(|t| t + 2)
    }

    /// The last rotation the rules see: the later of AWS's and the history's.
    pub fn last_rotation(&self) -> i64 {
        match self.kind {
            Kind::External(_) => self.history_latest().unwrap_or(self.rotated),
            _ => self
                .history_latest()
                .map_or(self.rotated, |h| h.max(self.rotated)),
        }
    }

    pub fn due(&self) -> i64 {
        self.last_rotation() + self.interval * DAY
    }

    pub fn owner_id(&self) -> Option<&'static str> {
        self.owner.map(|o| OWNERS[o].0)
    }

    /// The owner tag written on the resource.
    pub fn owner_tag(&self) -> Option<&'static str> {
        let owner = self.owner?;
        Some(if self.drift_owner {
            OWNERS[(owner + 1) % ACTIVE_OWNERS].0
        } else {
            OWNERS[owner].0
        })
    }

    /// (last-rotation-date, next-rotation-date) tags.
    pub fn date_tag_values(&self) -> Option<(String, String)> {
        let format = |t: i64| {
            let time = DateTime::<Utc>::from_timestamp(t, 0).unwrap_or_default();
            match self.date_tags {
                TagStyle::None => None,
                TagStyle::Date => Some(time.format("%Y-%m-%d").to_string()),
                TagStyle::Rfc3339 => Some(time.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            }
        };
        Some((
            format(self.last_rotation())?,
            format(self.due() + self.drift_due)?,
        ))
    }
}

/// The active root keys of account `a`: for each of the two slots, (slot, last rotated, last
/// used).
pub(super) fn root_keys(world: &World, a: usize) -> Vec<(usize, i64, i64)> {
    let mut rng = Rng::stream(world.spec.seed ^ ROOT_STREAM, a as u64);
    let mut keys = Vec::new();
    for slot in 1..=2 {
        let u = rng.next_u64() as f64 / (u64::MAX as f64 + 1.0);
        let rotated = world.now - span(&mut rng, 400 * DAY, 900 * DAY);
        let used = minute(world.now - span(&mut rng, 10 * DAY, 60 * DAY));
        if u < world.rate(ROOT) {
            keys.push((slot, rotated, used));
        }
    }
    keys
}
