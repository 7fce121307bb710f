//! CloudTrail usage of a scale fleet: which credentials are principals (IAM keys calling AWS,
//! secrets read with `GetSecretValue` by agents' role sessions), the calls each makes in each
//! hour (a pure function of the principal and the hour), and their summary as the usage rules
//! read it.
//!
//! Normal use happens on weekdays, in a principal's working hours, from its few IPs and its home
//! region, with its few operations in turn. Calls are generated only in whole hours between the
//! start of the anomaly baseline (as-of − 24 h − 30 days) and the hour before as-of, so every
//! hourly bucket falls wholly in the baseline or the detection window. A detection hour never
//! holds more normal calls than the baseline's spike threshold minus a margin; planted anomalies
//! and failure spikes take a whole hour of their own.

use std::collections::{BTreeMap, BTreeSet};

use super::super::rng::Rng;
use super::cred::{
    ANOMALOUS, AUTH_SPIKE, Cred, DAY, HOUR, INCIDENT, Kind, ORPHANED, SECRET_UNUSED, UNUSED,
    USAGE_LIMIT, World,
};

const TRAIL_STREAM: u64 = 0x5CA1_E000_0000_0010;
const PLAN_STREAM: u64 = 0x5CA1_E000_0000_0011;
/// Thresholds of the usage rules (their defaults).
const BASELINE_DAYS: i64 = 30;
const DETECTION: i64 = 24 * HOUR;
pub(super) const MIN_BASELINE_CALLS: u64 = 50;
pub(super) const MIN_ACTIVE_HOURS: usize = 5;
pub(super) const RARE_SHARE: f64 = 0.01;
pub(super) const SIGMAS: f64 = 3.0;
pub(super) const WINDOW: i64 = 300;

/// Operations of normal use of an IAM key: (eventSource, eventName, read-only, data event).
pub(super) const OPS: [(&str, &str, bool, bool); 10] = [
    ("s3.amazonaws.com", "GetObject", true, true),
    ("s3.amazonaws.com", "PutObject", false, true),
    ("sqs.amazonaws.com", "ReceiveMessage", true, false),
    ("sqs.amazonaws.com", "SendMessage", false, false),
    ("dynamodb.amazonaws.com", "GetItem", true, false),
    ("dynamodb.amazonaws.com", "Query", true, false),
    ("bedrock.amazonaws.com", "InvokeModel", true, false),
    ("logs.amazonaws.com", "PutLogEvents", false, false),
    ("kms.amazonaws.com", "Decrypt", true, false),
    ("sts.amazonaws.com", "GetCallerIdentity", true, false),
];
/// Rare destructive operations planted as anomalies (none is a lifecycle call the CloudTrail
/// reader turns into rotation evidence).
pub(super) const RARE_OPS: [(&str, &str); 4] = [
    ("iam.amazonaws.com", "AttachUserPolicy"),
    ("s3.amazonaws.com", "DeleteBucket"),
    ("kms.amazonaws.com", "DisableKey"),
    ("ec2.amazonaws.com", "ModifySnapshotAttribute"),
];
/// Op codes: below 100 an index of `OPS`, 100.. of `RARE_OPS`, `SECRET_READ` GetSecretValue.
pub(super) const RARE_BASE: u8 = 100;
pub(super) const SECRET_READ: u8 = 200;
/// IP codes: below 100 an index of the account's pool, 100.. an address never seen before.
pub(super) const NEW_IP: u8 = 100;
/// Region codes: below 64 an index of the spec's regions, `FOREIGN` a region outside them.
pub(super) const FOREIGN: u8 = 64;
const IP_POOL: u64 = 6;

/// The CloudTrail hours, as epoch seconds.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window {
    /// The first hour (the first whole hour of the baseline).
    pub start: i64,
    /// Hours before this are baseline (as-of − 24 h), at or after it detection.
    pub detection_start: i64,
    pub baseline_start: i64,
    /// Number of hours.
    pub hours: u32,
}

impl Window {
    pub fn new(now: i64) -> Self {
        let detection_start = now - DETECTION;
        let baseline_start = detection_start - BASELINE_DAYS * DAY;
        let start = ceil_hour(baseline_start);
        let end = now.div_euclid(HOUR) * HOUR;
        Window {
            start,
            detection_start,
            baseline_start,
            hours: ((end - start) / HOUR).max(0) as u32,
        }
    }

    pub fn time(&self, hour: u32) -> i64 {
        self.start + i64::from(hour) * HOUR
    }

    pub fn is_detection(&self, hour: u32) -> bool {
        self.time(hour) >= self.detection_start
    }

    /// The first hour at or after `t`, as an index (may be past the end).
    fn index_at_or_after(&self, t: i64) -> u32 {
        ((ceil_hour(t) - self.start).max(0) / HOUR) as u32
    }
}

fn ceil_hour(t: i64) -> i64 {
    t.div_euclid(HOUR) * HOUR + if t.rem_euclid(HOUR) == 0 { 0 } else { HOUR }
}

/// One planted hour of a principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Planted {
    /// One call at an hour of day the principal is never active.
    OffHours,
    /// One call from a new IP in a new region.
    NewPlace,
    /// One call of a rare destructive operation.
    RareOp,
    /// Far more calls than the baseline's threshold.
    Spike,
    /// `errors` authentication failures and `ok` successful calls in the 5-minute window at
    /// `offset` seconds into the hour.
    Failures { offset: u16, errors: u8, ok: u8 },
}

/// A CloudTrail principal and its usage pattern (compact: kept for every principal while the
/// logs are written).
#[derive(Debug, Clone)]
pub(super) struct Principal {
    pub index: u64,
    pub secret: bool,
    pub account: u16,
    pub region: u8,
    /// No call before this hour.
    pub first_hour: u32,
    /// Working hours: [start_hod, start_hod + width).
    pub start_hod: u8,
    pub width: u8,
    pub p_active: f32,
    pub c_max: u16,
    /// Most normal calls in a detection hour (below the spike threshold).
    pub det_cap: u16,
    pub spike_calls: u16,
    pub ips: [u8; 3],
    pub n_ips: u8,
    pub ops: [u8; 4],
    pub n_ops: u8,
    /// Planted hours, sorted by hour.
    pub planted: Vec<(u32, Planted)>,
    /// Access key id or secret ARN; user name (keys); user id or role session key id.
    pub id: Box<str>,
    pub user: Box<str>,
    pub principal_id: Box<str>,
}

/// One call.
#[derive(Debug, Clone, Copy)]
pub(super) struct Call {
    pub second: u16,
    pub op: u8,
    pub ip: u8,
    pub region: u8,
    pub auth_error: bool,
}

/// Makes `cred` a CloudTrail principal when it is one, with its planted hours.
pub(super) fn plan(world: &World, cred: &mut Cred, d: u32, rng: &mut Rng) {
    let has = |r: usize| d & (1 << r) != 0;
    let eligible = world.spec.cloudtrail_events > 0
        && world.trail.hours > 0
        && cred.observed
        && cred.active
        && !has(ORPHANED)
        && !has(UNUSED)
        && !has(SECRET_UNUSED)
        && matches!(cred.kind, Kind::Key | Kind::Secret);
    let mut prng = Rng::stream(world.spec.seed ^ PLAN_STREAM, cred.index);
    let drawn = (prng.next_u64() as f64 / (u64::MAX as f64 + 1.0)) < world.trail_share;
    let wanted = has(ANOMALOUS) || has(AUTH_SPIKE) || has(USAGE_LIMIT);
    if !eligible || !(drawn || wanted) {
        return;
    }
    let secret = cred.kind == Kind::Secret;
    let window = &world.trail;
    let width = 6 + prng.below(4) as u8;
    let per_hour = world.calls_per_principal / (22.0 * f64::from(width));
    let (p_active, c_max) = if per_hour <= 1.5 {
        ((per_hour / 2.0) as f32, 3)
    } else {
        (
            1.0,
            (2.0 * per_hour - 1.0).round().clamp(1.0, 60_000.0) as u16,
        )
    };
    let n_ips = 2 + prng.below(2) as u8;
    let mut ips = [0u8; 3];
    let first_ip = prng.below(IP_POOL) as u8;
    for (k, ip) in ips.iter_mut().enumerate().take(n_ips as usize) {
        *ip = (first_ip + k as u8) % IP_POOL as u8;
    }
    let n_ops = if secret { 1 } else { 3 + prng.below(2) as u8 };
    let mut ops = [SECRET_READ; 4];
    if !secret {
        let first_op = prng.below(OPS.len() as u64) as u8;
        for (k, op) in ops.iter_mut().enumerate().take(n_ops as usize) {
            *op = (first_op + 3 * k as u8) % OPS.len() as u8;
        }
    }
    let first_time = if secret {
        cred.created
    } else {
        cred.created + 2
    };
    let mut p = Principal {
        index: cred.index,
        secret,
        account: cred.account as u16,
        region: cred.region as u8,
        first_hour: window.index_at_or_after(first_time),
        start_hod: 6 + prng.below(5) as u8,
        width,
        p_active,
        c_max,
        det_cap: u16::MAX,
        spike_calls: 0,
        ips,
        n_ips,
        ops,
        n_ops,
        planted: Vec::new(),
        id: cred.id.as_str().into(),
        user: cred.name.as_str().into(),
        principal_id: cred.user_id.as_str().into(),
    };
    if secret {
        let session = super::cred::unique_id("ASIA", world.spec.seed, cred.index ^ (1 << 61));
        p.principal_id = session.into();
    }
    plant(world, cred, &mut p, d, rng);
    p.planted.sort_by_key(|(h, _)| *h);
    cred.usage = Some(p);
}

/// Plants the anomaly, the detection-window failure spike and (for some incidents) an older
/// failure spike instead of a history event.
fn plant(world: &World, cred: &mut Cred, p: &mut Principal, d: u32, rng: &mut Rng) {
    let has = |r: usize| d & (1 << r) != 0;
    let window = world.trail;
    let working =
        |hod: u32| hod >= u32::from(p.start_hod) && hod < u32::from(p.start_hod + p.width);
    let detection: Vec<u32> = (0..window.hours)
        .filter(|&h| window.is_detection(h) && h >= p.first_hour)
        .collect();
    let hod = |h: u32| ((window.time(h) / HOUR) % 24) as u32;
    let mut taken: BTreeSet<u32> = BTreeSet::new();
    if has(ANOMALOUS) {
        let kinds: &[Planted] = if p.secret {
            &[Planted::OffHours, Planted::NewPlace, Planted::Spike]
        } else {
            &[
                Planted::OffHours,
                Planted::NewPlace,
                Planted::RareOp,
                Planted::Spike,
            ]
        };
        let kind = *rng.pick(kinds);
        let off = kind == Planted::OffHours;
        let hours: Vec<u32> = detection
            .iter()
            .copied()
            .filter(|&h| working(hod(h)) != off)
            .collect();
        if !hours.is_empty() {
            let h = *rng.pick(&hours);
            taken.insert(h);
            p.planted.push((h, kind));
        }
    }
    if has(AUTH_SPIKE) {
        let hours: Vec<u32> = detection
            .iter()
            .copied()
            .filter(|&h| working(hod(h)) && !taken.contains(&h))
            .collect();
        if !hours.is_empty() {
            let h = *rng.pick(&hours);
            taken.insert(h);
            p.planted.push((h, failures(rng)));
        }
    }
    // Half the incidents of a principal are an older failure spike, not a history event: at
    // least 37 h old, after the last rotation, in working hours of the baseline.
    let incident = has(INCIDENT) && (cred.anomaly_at.is_some() || !cred.denied.is_empty());
    if incident && rng.percent(50) {
        let after = cred.last_rotation() + HOUR;
        let hours: Vec<u32> = (p.first_hour..window.hours)
            .filter(|&h| {
                let t = window.time(h);
                !window.is_detection(h)
                    && working(hod(h))
                    && t >= after
                    && t + HOUR <= world.now - 37 * HOUR
            })
            .collect();
        if !hours.is_empty() {
            let h = *rng.pick(&hours);
            p.planted.push((h, failures(rng)));
            cred.anomaly_at = None;
            cred.denied.clear();
        }
    }
}

fn failures(rng: &mut Rng) -> Planted {
    Planted::Failures {
        offset: (rng.below(12) * WINDOW as u64) as u16,
        errors: 6 + rng.below(7) as u8,
        ok: rng.below(3) as u8,
    }
}

/// The calls of principal `p` in hour `hour`, into `out` (cleared first), in no set order.
pub(super) fn calls_in_hour(world: &World, p: &Principal, hour: u32, out: &mut Vec<Call>) {
    out.clear();
    if hour < p.first_hour {
        return;
    }
    let window = &world.trail;
    let t = window.time(hour);
    let planted = p.planted.binary_search_by_key(&hour, |(h, _)| *h);
    let weekday = matches!((t.div_euclid(DAY) + 4).rem_euclid(7), 1..=5);
    let hod = (t.div_euclid(HOUR) % 24) as u8;
    if planted.is_err() && (!weekday || hod < p.start_hod || hod >= p.start_hod + p.width) {
        return;
    }
    let mut rng = Rng::stream(
        world.spec.seed ^ TRAIL_STREAM ^ p.index.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        u64::from(hour),
    );
    let normal = |j: u64, second: u16| Call {
        second,
        op: p.ops[((u64::from(hour) + j) % u64::from(p.n_ops)) as usize],
        ip: p.ips[((u64::from(hour) + j) % u64::from(p.n_ips)) as usize],
        region: p.region,
        auth_error: false,
    };
    if let Ok(at) = planted {
        let second = |rng: &mut Rng| rng.below(HOUR as u64) as u16;
        match p.planted[at].1 {
            Planted::OffHours => out.push(normal(0, second(&mut rng))),
            Planted::NewPlace => out.push(Call {
                ip: NEW_IP + rng.below(100) as u8,
                region: FOREIGN,
                ..normal(0, second(&mut rng))
            }),
            Planted::RareOp => out.push(Call {
                op: RARE_BASE + rng.below(RARE_OPS.len() as u64) as u8,
                ..normal(0, second(&mut rng))
            }),
            Planted::Spike => {
                for j in 0..u64::from(p.spike_calls) {
                    out.push(normal(j, second(&mut rng)));
                }
            }
            Planted::Failures { offset, errors, ok } => {
                for j in 0..u64::from(errors) + u64::from(ok) {
                    let s = offset + rng.below(WINDOW as u64) as u16;
                    out.push(Call {
                        auth_error: j < u64::from(errors),
                        ..normal(j, s)
                    });
                }
            }
        }
        return;
    }
    let u = rng.next_u64() as f64 / (u64::MAX as f64 + 1.0);
    if u >= f64::from(p.p_active) {
        return;
    }
    let mut calls = 1 + rng.below(u64::from(p.c_max)) as u16;
    if window.is_detection(hour) {
        calls = calls.min(p.det_cap);
    }
    for j in 0..u64::from(calls) {
        out.push(normal(j, rng.below(HOUR as u64) as u16));
    }
}

/// What the usage rules read of a principal: per hour its calls, places and operations; per
/// 5-minute window with failures its calls and failures.
#[derive(Debug, Default)]
pub(super) struct Summary {
    /// (hour start, calls) of every hour with calls.
    pub hours: Vec<(i64, u64)>,
    pub baseline: Option<Baseline>,
    /// Detection hours: (hour start, calls, IPs, regions).
    pub detection: Vec<(i64, u64, BTreeSet<u8>, BTreeSet<u8>)>,
    pub detection_ops: BTreeMap<u8, u64>,
    /// (window start, calls, auth errors) of windows with auth errors.
    pub failure_windows: Vec<(i64, u64, u64)>,
}

/// The baseline's totals and its spike threshold.
#[derive(Debug, Default)]
pub(super) struct Baseline {
    pub calls: u64,
    pub active_hours: usize,
    pub hods: u32,
    pub ips: BTreeSet<u8>,
    pub regions: BTreeSet<u8>,
    pub ops: BTreeMap<u8, u64>,
    /// None when the baseline is too thin to judge by.
    pub threshold: Option<f64>,
}

/// Summarises `p`, setting its detection cap and spike size from its baseline first.
pub(super) fn summarise(world: &World, p: &mut Principal) -> Summary {
    let window = world.trail;
    let mut summary = Summary::default();
    let mut base = Baseline::default();
    let mut calls = Vec::new();
    let mut first_active: Option<i64> = None;
    let mut squares: Vec<u64> = Vec::new();
    for hour in p.first_hour..window.hours {
        if window.is_detection(hour) {
            break;
        }
        calls_in_hour(world, p, hour, &mut calls);
        if calls.is_empty() {
            continue;
        }
        let t = window.time(hour);
        first_active.get_or_insert(t);
        let n = calls.len() as u64;
        base.calls += n;
        base.active_hours += 1;
        base.hods |= 1 << ((t / HOUR) % 24);
        squares.push(n);
        for c in &calls {
            base.ips.insert(c.ip);
            base.regions.insert(c.region);
            *base.ops.entry(c.op).or_default() += 1;
        }
        summary.hours.push((t, n));
        failure_windows(&mut summary, t, &calls);
    }
    base.threshold = threshold(&window, &base, first_active, &squares);
    if let Some(thr) = base.threshold {
        p.det_cap = (thr - 0.25).floor().max(0.0) as u16;
        p.spike_calls = (2.0 * thr).ceil() as u16 + 5;
    } else {
        p.spike_calls = 20;
    }
    for hour in p.first_hour.max(first_detection(&window))..window.hours {
        calls_in_hour(world, p, hour, &mut calls);
        if calls.is_empty() {
            continue;
        }
        let t = window.time(hour);
        let n = calls.len() as u64;
        summary.hours.push((t, n));
        let ips = calls.iter().map(|c| c.ip).collect();
        let regions = calls.iter().map(|c| c.region).collect();
        summary.detection.push((t, n, ips, regions));
        for c in &calls {
            *summary.detection_ops.entry(c.op).or_default() += 1;
        }
        failure_windows(&mut summary, t, &calls);
    }
    summary.baseline = Some(base);
    summary
}

fn first_detection(window: &Window) -> u32 {
    (0..window.hours)
        .find(|&h| window.is_detection(h))
        .unwrap_or(window.hours)
}

fn failure_windows(summary: &mut Summary, t: i64, calls: &[Call]) {
    let mut windows: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    for c in calls {
        let w = windows
            .entry(t + i64::from(c.second) / WINDOW * WINDOW)
            .or_default();
        w.0 += 1;
        w.1 += u64::from(c.auth_error);
    }
    summary.failure_windows.extend(
        windows
            .into_iter()
            .filter(|(_, (_, errors))| *errors > 0)
            .map(|(start, (calls, errors))| (start, calls, errors)),
    );
}

/// The baseline's hourly spike threshold: mean + 3 × max(sd, √mean) over every hour from the
/// first active one to the detection window (idle hours included); None when the baseline has
/// under 50 calls or under 5 active hours.
fn threshold(window: &Window, base: &Baseline, first: Option<i64>, counts: &[u64]) -> Option<f64> {
    let first = first?;
    if base.calls < MIN_BASELINE_CALLS || base.active_hours < MIN_ACTIVE_HOURS {
        return None;
    }
    let span = (window.detection_start - first.max(window.baseline_start) + 3599) / 3600;
    let span = span.max(base.active_hours as i64).max(1) as f64;
    let mean = base.calls as f64 / span;
    let active: f64 = counts.iter().map(|&c| (c as f64 - mean).powi(2)).sum();
    let idle = span - base.active_hours as f64;
    let sd = ((active + idle * mean * mean) / span).sqrt();
    Some(mean + SIGMAS * sd.max(mean.sqrt()))
}
