//! Ground truth: the findings a correct scan of the generated fleet must produce, computed from
//! the fleet in memory by a small, independent reading of the rule definitions (not by the rule
//! engine, so each can check the other).

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::fleet::{DAY, Declared, Event, Fleet, HOUR, Ts, class_days};
use crate::model::{CredentialKind, EventType, OwnerStatus, RiskClass};

/// What the history says about one credential.
#[derive(Default)]
struct History {
    latest_completed: Option<Ts>,
    /// The latest of its initiated / completed / failed events.
    latest_attempt: Option<(Ts, EventType)>,
    /// Times of its initiated and completed events.
    rotations: Vec<Ts>,
    /// Times of its completed events.
    completed: Vec<Ts>,
    /// Times of its `anomaly.detected` events.
    anomalies: Vec<Ts>,
    /// Times of its `access.denied` events.
    denials: Vec<Ts>,
}

/// The policy thresholds the rules use (the defaults of the product design); the scale
/// generator's truth uses them too.
pub(super) const DUE_SOON: i64 = 48 * HOUR;
pub(super) const UNUSED: i64 = 45 * DAY;
pub(super) const UNUSED_GRACE: i64 = 7 * DAY;
pub(super) const KEY_OVERLAP: i64 = 24 * HOUR;
pub(super) const INACTIVE_KEY: i64 = 30 * DAY;
pub(super) const SECRET_UNUSED: i64 = 90 * DAY;
pub(super) const STUCK: i64 = 24 * HOUR;
pub(super) const AUDIT_MATCH: i64 = 24 * HOUR;
pub(super) const TAG_TOLERANCE: i64 = 24 * HOUR;
pub(super) const EMERGENCY: i64 = 24 * HOUR;
pub(super) const DENIED_BURST: usize = 5;
pub(super) const DENIED_BURST_WINDOW: i64 = HOUR;

/// Every (rule, credential) finding the rules produce for `fleet` at `as_of`.
pub(super) fn evaluate(fleet: &Fleet, as_of: Ts) -> BTreeSet<(String, String)> {
    let mut eval = Eval {
        as_of,
        out: BTreeSet::new(),
        histories: HashMap::new(),
        earliest: fleet.events.iter().map(|e| e.time).min(),
        declared: fleet.declared.iter().map(|d| (d.id.as_str(), d)).collect(),
        owners: fleet.owners.iter().map(|o| (o.id, o.status)).collect(),
    };
    for event in &fleet.events {
        eval.note(event);
    }
    eval.reuse(&fleet.events);

    let mut observed: HashSet<&str> = HashSet::new();
    for account in &fleet.accounts {
        for (slot, key) in account.root.keys.iter().enumerate() {
            if key.as_ref().is_some_and(|k| k.active) {
                eval.find(
                    "root-access-key",
                    &format!("arn:aws:iam::{}:root/access-key-{}", account.id, slot + 1),
                );
            }
        }
        for user in &account.users {
            eval.multiple_active_keys(user);
            for key in &user.keys {
                observed.insert(&key.id);
                eval.iam_key(user, key);
            }
        }
        for secret in account.secrets.iter().flatten() {
            observed.insert(&secret.arn);
            observed.insert(&secret.name);
            eval.secret(secret);
        }
    }
    let scanned: HashSet<&str> = fleet.accounts.iter().map(|a| a.id.as_str()).collect();
    for declared in &fleet.declared {
        eval.declared(declared, &observed, &scanned);
    }
    eval.out
}

/// How many distinct credentials the fleet holds: observed keys (root keys included) and
/// secrets, plus declared credentials not observed.
pub(super) fn count_credentials(fleet: &Fleet) -> usize {
    let mut ids: HashSet<&str> = HashSet::new();
    let mut names: HashSet<&str> = HashSet::new();
    let mut root_keys = 0;
    for account in &fleet.accounts {
        root_keys += account.root.keys.iter().flatten().count();
        for user in &account.users {
            ids.extend(user.keys.iter().map(|k| k.id.as_str()));
        }
        for secret in account.secrets.iter().flatten() {
            ids.insert(&secret.arn);
            names.insert(&secret.name);
        }
    }
    let declared_only = fleet
        .declared
        .iter()
        .filter(|d| !ids.contains(d.id.as_str()) && !names.contains(d.id.as_str()))
        .count();
    ids.len() + root_keys + declared_only
}

struct Eval<'a> {
    as_of: Ts,
    out: BTreeSet<(String, String)>,
    histories: HashMap<&'a str, History>,
    earliest: Option<Ts>,
    declared: HashMap<&'a str, &'a Declared>,
    owners: HashMap<&'static str, OwnerStatus>,
}

impl<'a> Eval<'a> {
    fn find(&mut self, rule: &str, credential: &str) {
        self.out.insert((rule.to_string(), credential.to_string()));
    }

    fn note(&mut self, event: &'a Event) {
        let history = self.histories.entry(&event.credential).or_default();
        match event.kind {
            EventType::RotationInitiated
            | EventType::RotationCompleted
            | EventType::RotationFailed => {
                if history.latest_attempt.is_none_or(|(t, _)| event.time >= t) {
                    history.latest_attempt = Some((event.time, event.kind));
                }
                if event.kind != EventType::RotationFailed {
                    history.rotations.push(event.time);
                }
                if event.kind == EventType::RotationCompleted {
                    history.latest_completed = history.latest_completed.max(Some(event.time));
                    history.completed.push(event.time);
                }
            }
            EventType::AnomalyDetected => history.anomalies.push(event.time),
            EventType::AccessDenied => history.denials.push(event.time),
            _ => {}
        }
    }

    /// credential-reuse: a completed rotation whose fingerprint an earlier one already had.
    fn reuse(&mut self, events: &'a [Event]) {
        let mut completed: Vec<&Event> = events
            .iter()
            .filter(|e| e.kind == EventType::RotationCompleted && e.fingerprint.is_some())
            .collect();
        completed.sort_by_key(|e| e.time);
        let mut first_seen: HashMap<&str, Ts> = HashMap::new();
        for event in completed {
            let Some(fingerprint) = event.fingerprint.as_deref() else {
                continue;
            };
            match first_seen.get(fingerprint) {
                Some(&first) if first < event.time => {
                    self.find("credential-reuse", &event.credential)
                }
                Some(_) => {}
                None => {
                    first_seen.insert(fingerprint, event.time);
                }
            }
        }
    }

    fn history(&self, id: &str) -> Option<&History> {
        self.histories.get(id)
    }

    fn latest_completed(&self, id: &str) -> Option<Ts> {
        self.history(id).and_then(|h| h.latest_completed)
    }

    /// rotation-overdue / rotation-due-soon for an active credential.
    fn rotation(&mut self, id: &str, last_rotation: Ts, interval_days: u32) {
        let interval = Duration::days(i64::from(interval_days));
        let due = last_rotation + interval;
        if self.as_of - last_rotation > interval {
            self.find("rotation-overdue", id);
        } else if due - self.as_of <= Duration::seconds(DUE_SOON) {
            self.find("rotation-due-soon", id);
        }
    }

    /// rotation-failing from history: the last attempt failed.
    fn failing_in_history(&self, id: &str) -> bool {
        self.history(id)
            .and_then(|h| h.latest_attempt)
            .is_some_and(|(_, kind)| kind == EventType::RotationFailed)
    }

    /// audit-trail-gap: an AWS rotation at `aws_rotation` inside the history window without a
    /// matching event, or a completed rotation in history more than a day after AWS's.
    fn audit_gap(&self, id: &str, aws_rotation: Option<Ts>) -> bool {
        let (Some(earliest), Some(aws)) = (self.earliest, aws_rotation) else {
            return false;
        };
        let window = Duration::seconds(AUDIT_MATCH);
        let history = self.history(id);
        let unmatched = aws >= earliest
            && !history.is_some_and(|h| h.rotations.iter().any(|&t| (t - aws).abs() <= window));
        let ahead = history
            .and_then(|h| h.latest_completed)
            .is_some_and(|h| aws < h - window);
        unmatched || ahead
    }

    /// incident-not-remediated: an anomaly, or the denial that makes five within an hour (a
    /// denial counts in one burst only), past its 24 h deadline with no rotation (completed in
    /// history, or `aws_rotation`) after it and by the deadline.
    fn incident(&mut self, id: &str, aws_rotation: Option<Ts>) {
        let Some(history) = self.history(id) else {
            return;
        };
        let mut incidents: Vec<Ts> = history.anomalies.clone();
        let mut denials = history.denials.clone();
        denials.sort();
        let mut burst: Vec<Ts> = Vec::new();
        for t in denials {
            burst.retain(|&start| t - start <= Duration::seconds(DENIED_BURST_WINDOW));
            burst.push(t);
            if burst.len() == DENIED_BURST {
                incidents.push(t);
                burst.clear();
            }
        }
        let rotations: Vec<Ts> = history
            .completed
            .iter()
            .copied()
            .chain(aws_rotation)
            .collect();
        let window = Duration::seconds(EMERGENCY);
        let unremediated = incidents.iter().any(|&t| {
            t + window < self.as_of
                && !rotations
                    .iter()
                    .any(|&r| r > t && r <= t + window && r <= self.as_of)
        });
        if unremediated {
            self.find("incident-not-remediated", id);
        }
    }

    fn tag_drift(
        &mut self,
        id: &str,
        tags: &[(String, String)],
        declared: &Declared,
        last: Ts,
        due: Ts,
    ) {
        let tolerance = Duration::seconds(TAG_TOLERANCE);
        let far = |text: &str, fact: Ts| match parse_tag_time(text) {
            Some(t) => (t - fact).abs() > tolerance,
            None => true,
        };
        let drift = tags.iter().any(|(key, value)| match key.as_str() {
            "owner" => declared.owner.as_deref() != Some(value.as_str()),
            "class" => declared.class.map(RiskClass::as_str) != Some(value.as_str()),
            "last-rotation-date" => far(value, last),
            "next-rotation-date" => far(value, due),
            _ => false,
        });
        if drift {
            self.find("tag-drift", id);
        }
    }

    fn interval(declared: Option<&Declared>) -> u32 {
        match declared {
            Some(d) => d.interval_days.unwrap_or_else(|| class_days(d.class)),
            None => class_days(None),
        }
    }

    fn multiple_active_keys(&mut self, user: &super::fleet::User) {
        let mut active: Vec<_> = user.keys.iter().filter(|k| k.active).collect();
        active.sort_by_key(|k| k.created);
        if let Some(newest) = active.last()
            && active.len() >= 2
            && self.as_of - newest.created > Duration::seconds(KEY_OVERLAP)
        {
            for older in &active[..active.len() - 1] {
                self.find("multiple-active-keys", &older.id);
            }
        }
    }

    fn iam_key(&mut self, user: &super::fleet::User, key: &super::fleet::Key) {
        let id = key.id.as_str();
        let declared = self.declared.get(id).copied();
        if declared.is_none() {
            self.find("unmanaged-credential", id);
        }
        let interval = Self::interval(declared);
        let last_rotation = self
            .latest_completed(id)
            .map_or(key.created, |t| t.max(key.created));
        let last_used = key.last_used.as_ref().map(|u| u.time);
        if key.active {
            self.incident(id, Some(key.created));
            self.rotation(id, last_rotation, interval);
            let unused = match last_used {
                Some(used) => self.as_of - used > Duration::seconds(UNUSED),
                None => self.as_of - key.created > Duration::seconds(UNUSED_GRACE),
            };
            if unused {
                self.find("unused-credential", id);
            }
        } else {
            let latest = last_used.map_or(key.created, |u| u.max(key.created));
            if self.as_of - latest > Duration::seconds(INACTIVE_KEY) {
                self.find("inactive-key-lingering", id);
            }
        }
        if self.failing_in_history(id) {
            self.find("rotation-failing", id);
        }
        if self.audit_gap(id, Some(key.created)) {
            self.find("audit-trail-gap", id);
        }
        if let Some(d) = declared {
            let due = last_rotation + Duration::days(i64::from(interval));
            self.tag_drift(id, &user.tags, d, last_rotation, due);
        }
    }

    fn secret(&mut self, secret: &super::fleet::Secret) {
        let id = secret.arn.as_str();
        let declared = self
            .declared
            .get(id)
            .or_else(|| self.declared.get(secret.name.as_str()))
            .copied();
        if declared.is_none() {
            self.find("unmanaged-credential", id);
        }
        let interval = Self::interval(declared);
        let observed_rotation = secret.last_rotated.unwrap_or(secret.created);
        let last_rotation = self
            .latest_completed(id)
            .map_or(observed_rotation, |t| t.max(observed_rotation));
        self.rotation(id, last_rotation, interval);
        self.incident(id, Some(observed_rotation));
        if declared.is_some_and(|d| d.automated) && !secret.rotation_enabled {
            self.find("rotation-not-automated", id);
        }
        if let (true, Some(rule)) = (secret.rotation_enabled, secret.rotation)
            && rule.days > interval
        {
            self.find("rotation-schedule-drift", id);
        }
        let stuck = Duration::seconds(STUCK);
        let pending_stuck =
            secret.versions.iter().any(|(_, stages)| {
                stages.contains(&"AWSPENDING") && !stages.contains(&"AWSCURRENT")
            }) && self.as_of - secret.last_changed > stuck;
        let next_missed =
            secret.rotation_enabled && secret.next_rotation.is_some_and(|n| self.as_of - n > stuck);
        if self.failing_in_history(id) || pending_stuck || next_missed {
            self.find("rotation-failing", id);
        }
        if self.audit_gap(id, secret.last_rotated) {
            self.find("audit-trail-gap", id);
        }
        let unused = match secret.last_accessed {
            Some(accessed) => self.as_of - accessed > Duration::seconds(SECRET_UNUSED),
            None => self.as_of - secret.created > Duration::seconds(SECRET_UNUSED),
        };
        if unused {
            self.find("secret-unused", id);
        }
        if let Some(d) = declared {
            let due = last_rotation + Duration::days(i64::from(interval));
            self.tag_drift(id, &secret.tags, d, last_rotation, due);
        }
    }

    fn declared(&mut self, d: &Declared, observed: &HashSet<&str>, scanned: &HashSet<&str>) {
        let id = d.id.as_str();
        if d.class.is_none() {
            self.find("unclassified-credential", id);
        }
        let owned = d
            .owner
            .as_deref()
            .and_then(|o| self.owners.get(o))
            .is_some_and(|s| *s == OwnerStatus::Active);
        if !owned {
            self.find("unowned-credential", id);
        }
        if matches!(d.class, None | Some(RiskClass::A) | Some(RiskClass::B)) && !d.automated {
            self.find("rotation-not-automated", id);
        }
        match d.kind {
            CredentialKind::IamAccessKey | CredentialKind::Secret => {
                let in_scope = d.account.as_deref().is_none_or(|a| scanned.contains(a));
                if !observed.contains(id) && in_scope {
                    self.find("orphaned-inventory-entry", id);
                    if self.failing_in_history(id) {
                        self.find("rotation-failing", id);
                    }
                }
            }
            CredentialKind::RootAccessKey => {}
            _ => {
                match self.latest_completed(id) {
                    Some(last) => self.rotation(id, last, Self::interval(Some(d))),
                    None => self.find("rotation-overdue", id),
                }
                if self.failing_in_history(id) {
                    self.find("rotation-failing", id);
                }
                self.incident(id, None);
            }
        }
    }
}

/// A date tag: `YYYY-MM-DD` (midnight UTC) or RFC 3339.
fn parse_tag_time(text: &str) -> Option<Ts> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return date.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
