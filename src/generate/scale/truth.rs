//! Ground truth of a scale fleet: the findings a correct scan must produce for one credential,
//! computed from what [`super::cred`] and [`super::usage`] planted by a small, independent
//! reading of the rule definitions and their default thresholds (never the rule engine).

use chrono::{DateTime, NaiveDate, Utc};

use super::cred::{self, Cred, DAY, HOUR, Kind, OWNERS, SecondKey, TagStyle, World};
use super::usage::{Baseline, RARE_SHARE, Summary};
use crate::generate::truth::{
    AUDIT_MATCH, DENIED_BURST, DENIED_BURST_WINDOW, DUE_SOON, EMERGENCY, INACTIVE_KEY, KEY_OVERLAP,
    SECRET_UNUSED, STUCK, TAG_TOLERANCE, UNUSED, UNUSED_GRACE,
};
use crate::model::RiskClass;

const SPIKE_ERRORS: u64 = 5;
const SPIKE_RATE: f64 = 0.05;

/// Findings as (rule index, credential id).
pub(super) type Found = Vec<(u8, Box<str>)>;

/// What the history says about a credential, as the rules read it.
struct History {
    /// Times of initiated and completed events.
    rotations: Vec<i64>,
    /// Times of completed events.
    completed: Vec<i64>,
    latest_failed: bool,
}

fn history(cred: &Cred, history_start: i64) -> History {
    let mut rotations = Vec::new();
    let mut completed = Vec::new();
    let mut latest: Option<(i64, bool)> = None;
    let mut attempt = |t: i64, failed: bool| {
        if latest.is_none_or(|(l, _)| t >= l) {
            latest = Some((t, failed));
        }
    };
    if let Some(s) = &cred.schedule {
        for t in s.times() {
            if t - 40 >= history_start {
                rotations.push(t - 40);
                attempt(t - 40, false);
            }
            rotations.push(t + 2);
            completed.push(t + 2);
            attempt(t + 2, false);
        }
    }
    if let Some(f) = cred.failed_at {
        rotations.push(f - 40);
        attempt(f - 40, false);
        attempt(f, true);
    }
    History {
        rotations,
        completed,
        latest_failed: latest.is_some_and(|(_, failed)| failed),
    }
}

/// Every finding about `cred` (and its user's newer key), with its usage summary.
pub(super) fn evaluate(
    world: &World,
    cred: &Cred,
    usage: Option<&Summary>,
    max_uses: Option<u64>,
    out: &mut Found,
) {
    let mut find = |rule: usize, id: &str| out.push((rule as u8, id.into()));
    one(world, cred, usage, &mut find);
    if let Some(newer) = &cred.newer {
        one(world, &newer_key(cred, newer), None, &mut find);
    }
    if let (Some(summary), true) = (usage, cred.observed) {
        usage_rules(world, cred, summary, max_uses, &mut find);
    }
}

/// The findings of one credential but its usage rules.
fn one(world: &World, cred: &Cred, usage: Option<&Summary>, find: &mut impl FnMut(usize, &str)) {
    let h = history(cred, world.history_start);
    if cred.declared {
        declared_side(cred, &h, world, find);
    }
    match cred.kind {
        Kind::Key if cred.observed => key(world, cred, &h, usage, find),
        Kind::Secret if cred.observed => secret(world, cred, &h, usage, find),
        _ => {}
    }
}

/// The user's newer key as a credential of its own: clean, with the user's tags.
fn newer_key(cred: &Cred, newer: &SecondKey) -> Cred {
    let mut other = cred.clone();
    other.id = newer.id.clone();
    other.created = newer.created;
    other.rotated = newer.created;
    other.last_used = newer.last_used;
    other.newer = None;
    other.failed_at = None;
    other.anomaly_at = None;
    other.denied = Vec::new();
    other.usage = None;
    if let Some(s) = other.schedule.as_mut() {
        s.last = newer.created;
        s.floor = s.floor.max(newer.created);
        s.first_k = 0;
    }
    other
}

fn declared_side(cred: &Cred, h: &History, world: &World, find: &mut impl FnMut(usize, &str)) {
    let id = cred.id.as_str();
    if cred.class.is_none() {
        find(cred::UNCLASSIFIED, id);
    }
    let owned = cred.owner.is_some_and(|o| OWNERS[o].1);
    if !owned {
        find(cred::UNOWNED, id);
    }
    // A deactivated key is not judged for how it rotates.
    if matches!(cred.class, None | Some(RiskClass::A | RiskClass::B))
        && !cred.automated
        && cred.active
    {
        find(cred::NOT_AUTOMATED, id);
    }
    if let Some(s) = &cred.schedule
        && s.reuse
        && s.count() >= 2
    {
        // The latest recorded rotation put back the value of the earliest.
        find(cred::REUSE, id);
    }
    if cred.observed {
        return;
    }
    // Declared only: rotated as far as the history tells; one with no rotation on record is
    // overdue.
    match h.completed.iter().max() {
        Some(&last) => rotation(world, id, last, cred.interval, find),
        None => find(cred::OVERDUE, id),
    }
    if h.latest_failed {
        find(cred::FAILING, id);
    }
    match cred.kind {
        Kind::Key | Kind::Secret => find(cred::ORPHANED, id),
        // AWS credentials declared but gone are not judged for incidents.
        Kind::External(_) => incident(world, cred, h, None, None, find),
    }
}

fn rotation(
    world: &World,
    id: &str,
    last: i64,
    interval_days: i64,
    find: &mut impl FnMut(usize, &str),
) {
    let interval = interval_days * DAY;
    if world.now - last > interval {
        find(cred::OVERDUE, id);
    } else if last + interval - world.now <= DUE_SOON {
        find(cred::DUE_SOON, id);
    }
}

fn key(
    world: &World,
    cred: &Cred,
    h: &History,
    usage: Option<&Summary>,
    find: &mut impl FnMut(usize, &str),
) {
    let id = cred.id.as_str();
    let now = world.now;
    if !cred.declared {
        find(cred::UNMANAGED, id);
    }
    let last_rotation = h.completed.iter().copied().fold(cred.created, i64::max);
    // IAM's last use is written to the minute. CloudTrail's last successful call never changes
    // the outcome: keys with usage were used within two days by IAM's record too.
    let last_used = cred.last_used.map(cred::minute);
    if cred.active {
        incident(world, cred, h, Some(cred.created), usage, find);
        rotation(world, id, last_rotation, cred.interval, find);
        let unused = match last_used {
            Some(used) => now - used > UNUSED,
            None => now - cred.created > UNUSED_GRACE,
        };
        if unused {
            find(cred::UNUSED, id);
        }
        if let Some(newer) = &cred.newer
            && now - newer.created > KEY_OVERLAP
            && newer.created > cred.created
        {
            find(cred::MULTI_KEYS, id);
        }
    } else {
        let latest = last_used.map_or(cred.created, |u| u.max(cred.created));
        if now - latest > INACTIVE_KEY {
            find(cred::INACTIVE, id);
        }
    }
    if h.latest_failed && cred.active {
        find(cred::FAILING, id);
    }
    if audit_gap(world, h, Some(cred.created)) {
        find(cred::AUDIT_GAP, id);
    }
    if cred.declared && tag_drift(cred, last_rotation) {
        find(cred::TAG_DRIFT, id);
    }
}

fn secret(
    world: &World,
    cred: &Cred,
    h: &History,
    usage: Option<&Summary>,
    find: &mut impl FnMut(usize, &str),
) {
    let id = cred.id.as_str();
    let now = world.now;
    if !cred.declared {
        find(cred::UNMANAGED, id);
    }
    let last_rotation = h.completed.iter().copied().fold(cred.rotated, i64::max);
    rotation(world, id, last_rotation, cred.interval, find);
    incident(world, cred, h, Some(cred.rotated), usage, find);
    if cred.declared && cred.automated && !cred.rotation_enabled {
        find(cred::NOT_AUTOMATED, id);
    }
    let rule_days = cred.rule.filter(|_| cred.rotation_enabled).map(|(d, _)| d);
    if rule_days.is_some_and(|d| d > cred.interval) {
        find(cred::DRIFT, id);
    }
    let last_changed = cred.pending_since.unwrap_or(cred.rotated + 5);
    let pending_stuck = cred.pending_since.is_some() && now - last_changed > STUCK;
    let next_missed = rule_days.is_some_and(|d| now - (cred.rotated + d * DAY) > STUCK);
    if h.latest_failed || pending_stuck || next_missed {
        find(cred::FAILING, id);
    }
    if audit_gap(world, h, Some(cred.rotated)) {
        find(cred::AUDIT_GAP, id);
    }
    let unused = match cred.last_used {
        Some(accessed) => now - accessed > SECRET_UNUSED,
        // Secrets without LastAccessedDate are never CloudTrail principals.
        None => now - cred.created > SECRET_UNUSED,
    };
    if unused {
        find(cred::SECRET_UNUSED, id);
    }
    if cred.declared && tag_drift(cred, last_rotation) {
        find(cred::TAG_DRIFT, id);
    }
}

/// An AWS rotation inside the history without a history rotation within a day, or a completed
/// rotation in history more than a day after AWS's.
fn audit_gap(world: &World, h: &History, aws: Option<i64>) -> bool {
    let Some(aws) = aws else { return false };
    let unmatched =
        aws >= world.history_start && !h.rotations.iter().any(|&t| (t - aws).abs() <= AUDIT_MATCH);
    let ahead = h
        .completed
        .iter()
        .max()
        .is_some_and(|&latest| aws < latest - AUDIT_MATCH);
    unmatched || ahead
}

/// An anomaly, an access-denied burst or a failure spike past its 24-hour deadline with no
/// rotation (completed in history, or `aws`) after it and by the deadline.
fn incident(
    world: &World,
    cred: &Cred,
    h: &History,
    aws: Option<i64>,
    usage: Option<&Summary>,
    find: &mut impl FnMut(usize, &str),
) {
    let mut incidents: Vec<i64> = cred.anomaly_at.into_iter().collect();
    let mut burst: Vec<i64> = Vec::new();
    for &t in &cred.denied {
        burst.retain(|&start| t - start <= DENIED_BURST_WINDOW);
        burst.push(t);
        if burst.len() == DENIED_BURST {
            incidents.push(t);
            burst.clear();
        }
    }
    if let Some(summary) = usage {
        incidents.extend(
            summary
                .failure_windows
                .iter()
                .filter(|(start, calls, errors)| *start <= world.now && is_spike(*calls, *errors))
                .map(|(start, _, _)| *start),
        );
    }
    let rotations: Vec<i64> = h.completed.iter().copied().chain(aws).collect();
    let unremediated = incidents.iter().any(|&t| {
        t + EMERGENCY < world.now
            && !rotations
                .iter()
                .any(|&r| r > t && r <= t + EMERGENCY && r <= world.now)
    });
    if unremediated {
        find(cred::INCIDENT, &cred.id);
    }
}

fn is_spike(calls: u64, errors: u64) -> bool {
    errors >= SPIKE_ERRORS && errors as f64 > SPIKE_RATE * calls as f64
}

fn tag_drift(cred: &Cred, last_rotation: i64) -> bool {
    let far = |text: &str, fact: i64| match parse_tag_time(text) {
        Some(t) => (t - fact).abs() > TAG_TOLERANCE,
        None => true,
    };
    let owner = cred
        .owner_tag()
        .is_some_and(|tag| cred.owner_id() != Some(tag));
    // The class tag is written from the declared class, so it always agrees.
    let dates = match (cred.date_tags, cred.date_tag_values()) {
        (TagStyle::None, _) | (_, None) => false,
        (_, Some((last, next))) => {
            far(&last, last_rotation) || far(&next, last_rotation + cred.interval * DAY)
        }
    };
    owner || dates
}

/// A date tag: `YYYY-MM-DD` (midnight UTC) or RFC 3339.
fn parse_tag_time(text: &str) -> Option<i64> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return date.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp());
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc).timestamp())
}

/// usage-limit-exceeded, anomalous-usage and auth-failure-spike.
fn usage_rules(
    world: &World,
    cred: &Cred,
    summary: &Summary,
    max_uses: Option<u64>,
    find: &mut impl FnMut(usize, &str),
) {
    let id = cred.id.as_str();
    if let Some(limit) = max_uses
        && uses_since_rotation(cred, summary) > limit
    {
        find(cred::USAGE_LIMIT, id);
    }
    if let Some(base) = &summary.baseline
        && anomalous(base, summary)
    {
        find(cred::ANOMALOUS, id);
    }
    let detection_start = world.trail.detection_start;
    if summary
        .failure_windows
        .iter()
        .any(|(start, calls, errors)| {
            *start >= detection_start && *start <= world.now && is_spike(*calls, *errors)
        })
    {
        find(cred::AUTH_SPIKE, id);
    }
}

/// Calls in the hours from the hour of the last rotation on.
pub(super) fn uses_since_rotation(cred: &Cred, summary: &Summary) -> u64 {
    let since = cred.last_rotation().div_euclid(HOUR) * HOUR;
    summary
        .hours
        .iter()
        .filter(|(t, _)| *t >= since)
        .map(|(_, n)| n)
        .sum()
}

fn anomalous(base: &Baseline, summary: &Summary) -> bool {
    let Some(threshold) = base.threshold else {
        return false;
    };
    if summary.detection.is_empty() {
        return false;
    }
    let off_hours = summary
        .detection
        .iter()
        .any(|(t, _, _, _)| base.hods & (1 << ((t / HOUR) % 24)) == 0);
    let new_place = summary.detection.iter().any(|(_, _, ips, regions)| {
        ips.iter().any(|ip| !base.ips.contains(ip))
            && regions.iter().any(|r| !base.regions.contains(r))
    });
    let rare = summary.detection_ops.keys().any(|op| {
        let seen = base.ops.get(op).copied().unwrap_or(0);
        (seen as f64) < RARE_SHARE * base.calls as f64
    });
    let spike = summary
        .detection
        .iter()
        .any(|(_, calls, _, _)| *calls as f64 > threshold);
    off_hours || new_place || rare || spike
}
