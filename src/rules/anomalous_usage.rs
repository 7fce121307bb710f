//! anomalous-usage: a credential used in the last day in a way its own recent past does not
//! explain: at an hour it is never active, from a new IP in a new region, for an operation it
//! (almost) never calls, or at a rate far above its usual one.
//!
//! Works on the hourly CloudTrail usage of the snapshot. A bucket belongs to the window that holds
//! the start of its hour: the detection window is `[as_of − detection, as_of]`, the baseline the
//! `baseline` days before it. Buckets after as-of are ignored. The baseline's hourly mean and
//! standard deviation are taken over every hour from the credential's first baseline hour to the
//! detection window (zero-call hours included), so a credential younger than the baseline window
//! is not diluted by hours before it existed; and the deviation used is at least √mean (call
//! counts are at least Poisson-noisy), so a near-constant baseline does not turn one extra call
//! into a spike. Usage is looked up under the credential's public id, its declared id and, for a
//! secret, its name. Also home of those lookup helpers, shared by the other usage rules.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::Duration;

use super::options::{MAX_COUNT, MAX_DAYS, MAX_HOURS, MAX_RATE_SIGMAS, OutOfRange, bounded};
use super::{Rule, RuleMeta, Source};

use crate::join::{self, CredentialView, EvalCtx, fmt_time, sub_saturating};
use crate::model::{AuthWindow, Finding, Severity, Timestamp, UsageBucket};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "anomalous-usage",
        title: "Credential used unlike its baseline",
        finds: "off-hours call, new IP with a new region, rare or destructive operation, rate above mean + {rate_sigmas} sd",
        default_severity: Severity::High,
        severity_varies: Some("medium/high"),
        rationale: "A stolen credential is used by someone else, from somewhere else, for \
                    something else. Each credential is compared with its own last {baseline_days} days of \
                    CloudTrail use (at least {min_baseline_calls} calls in {min_baseline_active_hours} distinct hours before anything is \
                    judged): calls in an hour of the day it is never active (medium), a new source \
                    IP together with a new region (high), an operation under {rare_operation_share%}% of its baseline \
                    calls (high when destructive or exfiltrating: Delete*, Attach*, Update*, \
                    Put*Policy, CreateAccessKey, CreateUser, CreateLoginProfile, StopLogging, \
                    exports, bulk and secret reads; else medium), and an hourly call count above \
                    the baseline mean + {rate_sigmas} standard deviations (high).",
        remediation: "Ask the owner whether the listed calls were theirs. If not, rotate the \
                      credential at once (emergency trigger), review what the calls changed or \
                      read, and narrow its policy; if they were, record why so the next baseline \
                      includes it.",
        sources: &[Source::CloudTrail],
    },
    evaluate: |ctx, options| evaluate_with(ctx, &options.anomalous_usage),
};

/// Thresholds of anomalous-usage, set in `[policy.anomalous-usage]` of inventory.toml (any
/// field left out keeps its default; the older spelling `[policy.anomalous_usage]` is still
/// accepted).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnomalousUsageOptions {
    /// Hours before as-of whose use is judged.
    pub detection_hours: u32,
    /// Days before the detection window that make the baseline.
    pub baseline_days: u32,
    /// Baseline calls needed before any signal may fire.
    pub min_baseline_calls: u64,
    /// Distinct active baseline hours needed before any signal may fire.
    pub min_baseline_active_hours: usize,
    /// An operation making up less than this share of the baseline calls is rare.
    pub rare_operation_share: f64,
    /// Standard deviations above the baseline's hourly mean that make a rate spike.
    pub rate_sigmas: f64,
}

impl Default for AnomalousUsageOptions {
    fn default() -> Self {
        AnomalousUsageOptions {
            detection_hours: 24,
            baseline_days: 30,
            min_baseline_calls: 50,
            min_baseline_active_hours: 5,
            rare_operation_share: 0.01,
            rate_sigmas: 3.0,
        }
    }
}

impl AnomalousUsageOptions {
    /// Checks every option against its bounds.
    pub fn check(&self) -> Result<(), OutOfRange> {
        bounded(
            "detection_hours",
            self.detection_hours,
            (1, MAX_HOURS),
            " hours",
        )?;
        bounded("baseline_days", self.baseline_days, (1, MAX_DAYS), " days")?;
        bounded(
            "min_baseline_calls",
            self.min_baseline_calls,
            (0, MAX_COUNT),
            " calls",
        )?;
        bounded(
            "min_baseline_active_hours",
            self.min_baseline_active_hours as u64,
            (0, MAX_HOURS.into()),
            " hours",
        )?;
        bounded(
            "rare_operation_share",
            self.rare_operation_share,
            (0.0, 1.0),
            " (a share of the baseline calls)",
        )?;
        if !(self.rate_sigmas > 0.0 && self.rate_sigmas <= MAX_RATE_SIGMAS) {
            return Err(OutOfRange {
                field: "rate_sigmas",
                value: self.rate_sigmas.to_string(),
                expected: format!(
                    "more than 0 and at most {MAX_RATE_SIGMAS} (standard deviations)"
                ),
            });
        }
        Ok(())
    }
}

/// Operation names (the part after `eventSource:`) that change access or data, or read secrets
/// or data in bulk: a rare one of these is a high-severity signal.
const DESTRUCTIVE_PREFIXES: &[&str] = &["Delete", "Attach", "Update", "Disable", "Terminate"];
const DESTRUCTIVE_NAMES: &[&str] = &[
    "CreateAccessKey",
    "CreateUser",
    "CreateLoginProfile",
    "StopLogging",
    "GetSecretValue",
    "BatchGetSecretValue",
    "ModifySnapshotAttribute",
    "ModifyImageAttribute",
];
const DESTRUCTIVE_MARKERS: &[&str] = &["Export", "BatchGet"];

/// Whether `operation` (`eventSource:eventName`) is destructive or exfiltrating.
pub fn is_destructive(operation: &str) -> bool {
    let name = operation.rsplit(':').next().unwrap_or(operation);
    DESTRUCTIVE_PREFIXES.iter().any(|p| name.starts_with(p))
        || DESTRUCTIVE_NAMES.contains(&name)
        || DESTRUCTIVE_MARKERS.iter().any(|m| name.contains(m))
        || (name.starts_with("Put") && name.ends_with("Policy"))
}

/// The usage buckets of a credential under any of its ids, sorted by hour. Relies on
/// `Facts::usage` being sorted by (credential_id, hour).
pub(super) fn usage_of<'a>(ctx: &EvalCtx<'a>, view: &CredentialView<'a>) -> Vec<&'a UsageBucket> {
    let usage = &ctx.facts.usage;
    let mut buckets = Vec::new();
    for id in join::aliases(view) {
        let start = usage.partition_point(|b| b.credential_id.as_str() < id);
        buckets.extend(usage[start..].iter().take_while(|b| b.credential_id == id));
    }
    buckets.sort_by_key(|b| b.hour);
    buckets
}

/// The authentication-failure windows of a credential under any of its ids, sorted by start.
/// Relies on `Facts::auth_windows` being sorted by (credential_id, start).
pub(super) fn auth_windows_of<'a>(
    ctx: &EvalCtx<'a>,
    view: &CredentialView<'a>,
) -> Vec<&'a AuthWindow> {
    let all = &ctx.facts.auth_windows;
    let mut windows = Vec::new();
    for id in join::aliases(view) {
        let start = all.partition_point(|w| w.credential_id.as_str() < id);
        windows.extend(all[start..].iter().take_while(|w| w.credential_id == id));
    }
    windows.sort_by_key(|w| w.start);
    windows
}

/// The start of the hour holding `t`.
pub(super) fn hour_of(t: Timestamp) -> Timestamp {
    let seconds = t.timestamp().div_euclid(3600) * 3600;
    chrono::DateTime::from_timestamp(seconds, 0).unwrap_or(t)
}

/// At most `limit` items joined, with a count of the rest.
pub(super) fn list(items: &[String], limit: usize) -> String {
    let mut text = items
        .iter()
        .take(limit)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if items.len() > limit {
        text.push_str(&format!("; … and {} more", items.len() - limit));
    }
    text
}

/// What one credential did in one detection hour, over all the ids it is recorded under.
#[derive(Default)]
struct Hour<'a> {
    calls: u64,
    ips: BTreeSet<&'a str>,
    regions: BTreeSet<&'a str>,
}

/// Runs anomalous-usage with explicit thresholds.
pub fn evaluate_with(ctx: &EvalCtx, options: &AnomalousUsageOptions) -> Vec<Finding> {
    let detection_start = sub_saturating(
        ctx.as_of,
        Duration::hours(i64::from(options.detection_hours)),
    );
    let baseline_start = sub_saturating(
        detection_start,
        Duration::days(i64::from(options.baseline_days)),
    );
    let mut findings = Vec::new();
    for view in &ctx.credentials {
        let buckets = usage_of(ctx, view);
        let (baseline, detection): (Vec<&UsageBucket>, Vec<&UsageBucket>) = buckets
            .into_iter()
            .filter(|b| b.hour >= baseline_start && b.hour <= ctx.as_of)
            .partition(|b| b.hour < detection_start);
        if detection.is_empty() || baseline.is_empty() {
            continue;
        }
        let Some(base) = Baseline::of(&baseline, baseline_start, detection_start, options) else {
            continue;
        };
        let window = Detection::of(&detection);

        let mut signals = Signals {
            severity: None,
            names: Vec::new(),
            evidence: vec![(
                "baseline",
                format!(
                    "{} calls in {} active hours, {} to {}",
                    base.calls,
                    base.per_hour.len(),
                    fmt_time(baseline_start),
                    fmt_time(detection_start)
                ),
            )],
        };
        signals.judge(&base, &window, options);

        let Some(severity) = signals.severity else {
            continue;
        };
        let detection_calls: u64 = window.hours.values().map(|h| h.calls).sum();
        let mut evidence = signals.evidence;
        evidence.insert(
            0,
            (
                "detection",
                format!(
                    "{detection_calls} calls, {} to {}",
                    fmt_time(detection_start),
                    fmt_time(ctx.as_of)
                ),
            ),
        );
        findings.push(ctx.finding(
            RULE.meta.id,
            severity,
            view,
            format!(
                "used unlike its baseline in the last {} h: {}",
                options.detection_hours,
                signals.names.join("; ")
            ),
            evidence,
        ));
    }
    findings
}

/// What is normal for a credential: its baseline window's calls, active hours, places and
/// operations, and the hourly call rate above which an hour is a spike.
struct Baseline<'a> {
    calls: u64,
    /// Calls per active hour.
    per_hour: BTreeMap<Timestamp, u64>,
    active_hours_of_day: HashSet<u32>,
    known_ips: HashSet<&'a str>,
    known_regions: HashSet<&'a str>,
    known_operations: HashMap<&'a str, u64>,
    mean: f64,
    sd: f64,
    threshold: f64,
}

impl<'a> Baseline<'a> {
    /// The baseline of a credential's buckets in `[baseline_start, detection_start)`, or `None`
    /// when it has too few calls or active hours to judge anything by.
    fn of(
        baseline: &[&'a UsageBucket],
        baseline_start: Timestamp,
        detection_start: Timestamp,
        options: &AnomalousUsageOptions,
    ) -> Option<Self> {
        let baseline_calls: u64 = baseline.iter().map(|b| b.calls).sum();
        let mut per_hour: BTreeMap<Timestamp, u64> = BTreeMap::new();
        for b in baseline.iter().filter(|b| b.calls > 0) {
            *per_hour.entry(b.hour).or_default() += b.calls;
        }
        if baseline_calls < options.min_baseline_calls
            || per_hour.len() < options.min_baseline_active_hours
        {
            return None;
        }
        let active_hours_of_day: HashSet<u32> =
            per_hour.keys().map(chrono::Timelike::hour).collect();
        let known_ips: HashSet<&str> = baseline
            .iter()
            .flat_map(|b| b.source_ips.keys().map(String::as_str))
            .collect();
        let known_regions: HashSet<&str> = baseline
            .iter()
            .flat_map(|b| b.regions.keys().map(String::as_str))
            .collect();
        let mut known_operations: HashMap<&str, u64> = HashMap::new();
        for b in baseline {
            for (op, n) in &b.operations {
                *known_operations.entry(op.as_str()).or_default() += n;
            }
        }
        // Hourly rate over every hour of the baseline from the credential's first seen hour
        // (zero-call hours included), so a credential younger than the window is not diluted.
        let first = per_hour.keys().next().copied().unwrap_or(baseline_start);
        let span_hours =
            ((detection_start - first.max(baseline_start)).num_seconds() + 3599) / 3600;
        let span_hours = span_hours.max(per_hour.len() as i64).max(1) as f64;
        let mean = baseline_calls as f64 / span_hours;
        let active_squares: f64 = per_hour.values().map(|&c| (c as f64 - mean).powi(2)).sum();
        let idle_hours = span_hours - per_hour.len() as f64;
        let sd = ((active_squares + idle_hours * mean * mean) / span_hours).sqrt();
        // Call counts are at least Poisson-noisy: a near-constant baseline must not turn one
        // extra call into a spike.
        let threshold = mean + options.rate_sigmas * sd.max(mean.sqrt());
        Some(Baseline {
            calls: baseline_calls,
            per_hour,
            active_hours_of_day,
            known_ips,
            known_regions,
            known_operations,
            mean,
            sd,
            threshold,
        })
    }
}

/// What a credential did in the detection window: per hour, and its operations.
struct Detection<'a> {
    hours: BTreeMap<Timestamp, Hour<'a>>,
    operations: BTreeMap<&'a str, u64>,
}

impl<'a> Detection<'a> {
    fn of(detection: &[&'a UsageBucket]) -> Self {
        let mut hours: BTreeMap<Timestamp, Hour> = BTreeMap::new();
        let mut operations: BTreeMap<&str, u64> = BTreeMap::new();
        for b in detection {
            let hour = hours.entry(b.hour).or_default();
            hour.calls += b.calls;
            hour.ips.extend(b.source_ips.keys().map(String::as_str));
            hour.regions.extend(b.regions.keys().map(String::as_str));
            for (op, n) in &b.operations {
                *operations.entry(op.as_str()).or_default() += n;
            }
        }
        Detection { hours, operations }
    }
}

/// The signals a detection window raises against its baseline: the highest severity, what
/// each signal is, and the evidence.
struct Signals {
    severity: Option<Severity>,
    names: Vec<&'static str>,
    evidence: Vec<(&'static str, String)>,
}

impl Signals {
    fn raise(&mut self, severity: Severity, name: &'static str, key: &'static str, value: String) {
        self.severity = self.severity.max(Some(severity));
        self.names.push(name);
        self.evidence.push((key, value));
    }

    /// Raises every signal of the window: off-hours calls, a new IP in a new region, rare
    /// operations (destructive or not) and hourly rate spikes, in that order.
    fn judge(&mut self, base: &Baseline, window: &Detection, options: &AnomalousUsageOptions) {
        let off_hours = off_hours(base, window);
        if !off_hours.is_empty() {
            self.raise(
                Severity::Medium,
                "calls at an hour of day never active in the baseline",
                "off_hours",
                list(&off_hours, 10),
            );
        }

        let new_places = new_places(base, window);
        if !new_places.is_empty() {
            self.raise(
                Severity::High,
                "a new source IP in a new region",
                "new_ip_and_region",
                list(&new_places, 10),
            );
        }

        let (destructive, other): (Vec<_>, Vec<_>) = rare_operations(base, window, options)
            .into_iter()
            .partition(|(op, _, _)| is_destructive(op));
        if !destructive.is_empty() {
            self.raise(
                Severity::High,
                "rare destructive or exfiltrating operations",
                "rare_destructive_operations",
                describe_operations(&destructive),
            );
        }
        if !other.is_empty() {
            self.raise(
                Severity::Medium,
                "rare operations",
                "rare_operations",
                describe_operations(&other),
            );
        }

        let bursts: Vec<String> = window
            .hours
            .iter()
            .filter(|(_, hour)| hour.calls as f64 > base.threshold)
            .map(|(h, hour)| format!("{} ({} calls)", fmt_time(*h), hour.calls))
            .collect();
        if !bursts.is_empty() {
            self.raise(
                Severity::High,
                "an hourly call rate above the baseline mean + 3 sd",
                "rate_spikes",
                list(&bursts, 10),
            );
            self.evidence.push((
                "rate_threshold",
                format!(
                    "{:.1} calls/h (mean {:.1}, sd {:.1})",
                    base.threshold, base.mean, base.sd
                ),
            ));
        }
    }
}

/// The hours of the window with calls at an hour of the day the baseline is never active.
fn off_hours(base: &Baseline, window: &Detection) -> Vec<String> {
    window
        .hours
        .iter()
        .filter(|(h, hour)| {
            hour.calls > 0
                && !base
                    .active_hours_of_day
                    .contains(&chrono::Timelike::hour(*h))
        })
        .map(|(h, hour)| format!("{} ({} calls)", fmt_time(*h), hour.calls))
        .collect()
}

/// The hours of the window with a source IP and a region the baseline never saw.
fn new_places(base: &Baseline, window: &Detection) -> Vec<String> {
    window
        .hours
        .iter()
        .filter_map(|(h, hour)| {
            let ips: Vec<&str> = hour
                .ips
                .iter()
                .copied()
                .filter(|ip| !base.known_ips.contains(ip))
                .collect();
            let regions: Vec<&str> = hour
                .regions
                .iter()
                .copied()
                .filter(|r| !base.known_regions.contains(r))
                .collect();
            (!ips.is_empty() && !regions.is_empty()).then(|| {
                format!(
                    "{}: IPs {}; regions {}",
                    fmt_time(*h),
                    ips.join(", "),
                    regions.join(", ")
                )
            })
        })
        .collect()
}

/// The operations of the window that make up less than the rare share of the baseline's calls:
/// (operation, calls in the window, calls in the baseline).
fn rare_operations<'a>(
    base: &Baseline,
    window: &Detection<'a>,
    options: &AnomalousUsageOptions,
) -> Vec<(&'a str, u64, u64)> {
    window
        .operations
        .iter()
        .filter_map(|(op, &n)| {
            let seen = base.known_operations.get(op).copied().unwrap_or(0);
            ((seen as f64) < options.rare_operation_share * base.calls as f64)
                .then_some((*op, n, seen))
        })
        .collect()
}

/// Rare operations as evidence: each with its calls and its baseline calls.
fn describe_operations(ops: &[(&str, u64, u64)]) -> String {
    let items: Vec<String> = ops
        .iter()
        .map(|(op, n, seen)| format!("{op} ×{n} (baseline {seen})"))
        .collect();
    list(&items, 50)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::*;

    /// A bucket of `calls` calls of `operation` from one IP and region.
    fn bucket(
        id: &str,
        hour: Timestamp,
        calls: u64,
        operation: &str,
        ip: &str,
        region: &str,
    ) -> UsageBucket {
        UsageBucket {
            credential_id: id.into(),
            hour,
            calls,
            source_ips: [(ip.to_string(), calls)].into(),
            regions: [(region.to_string(), calls)].into(),
            operations: [(operation.to_string(), calls)].into(),
            ..UsageBucket::default()
        }
    }

    const READ: &str = "s3.amazonaws.com:GetObject";

    /// 20 days of office-hours use: 09:00–16:00 UTC, 10 calls an hour, one IP, one region.
    fn office_baseline(id: &str) -> Vec<UsageBucket> {
        let mut usage = Vec::new();
        for day in 2..22 {
            for hour in 9..17 {
                let t = days_ago(day) + Duration::hours(hour);
                usage.push(bucket(id, t, 10, READ, "10.0.0.1", "us-east-1"));
            }
        }
        usage
    }

    fn with_usage(keys: &[&str], mut usage: Vec<UsageBucket>) -> crate::model::Facts {
        let observed: Vec<_> = keys.iter().map(|k| key(k, "agent", 10)).collect();
        let declared = declare_all(&observed);
        let mut f = facts(observed, declared, vec![]);
        usage.sort_by(|a, b| (&a.credential_id, a.hour).cmp(&(&b.credential_id, b.hour)));
        f.usage = usage;
        f
    }

    #[test]
    fn usual_use_passes_and_each_signal_fires() {
        let quiet = "AKIAQUIET00000000001";
        let night = "AKIANIGHT00000000001";
        let moved = "AKIAMOVED00000000001";
        let admin = "AKIAADMIN00000000001";
        let burst = "AKIABURST00000000001";
        let young = "AKIAYOUNG00000000001";
        let mut usage = Vec::new();
        for k in [quiet, night, moved, admin, burst] {
            usage.extend(office_baseline(k));
        }
        let yesterday = days_ago(1);
        // Same hours, IP, region and operation as always.
        usage.push(bucket(
            quiet,
            yesterday + Duration::hours(10),
            12,
            READ,
            "10.0.0.1",
            "us-east-1",
        ));
        // 03:00 UTC, never active then.
        usage.push(bucket(
            night,
            yesterday + Duration::hours(3),
            5,
            READ,
            "10.0.0.1",
            "us-east-1",
        ));
        // A new IP and a new region in an office hour.
        usage.push(bucket(
            moved,
            yesterday + Duration::hours(11),
            8,
            READ,
            "198.51.100.9",
            "ap-south-1",
        ));
        // A never-seen destructive call in an office hour.
        usage.push(bucket(
            admin,
            yesterday + Duration::hours(11),
            1,
            "iam.amazonaws.com:CreateAccessKey",
            "10.0.0.1",
            "us-east-1",
        ));
        // 400 calls in an hour against a steady 10.
        usage.push(bucket(
            burst,
            yesterday + Duration::hours(12),
            400,
            READ,
            "10.0.0.1",
            "us-east-1",
        ));
        // Only 3 hours of baseline: too little to judge, whatever it does.
        for h in 9..12 {
            usage.push(bucket(
                young,
                days_ago(3) + Duration::hours(h),
                30,
                READ,
                "10.0.0.1",
                "us-east-1",
            ));
        }
        usage.push(bucket(
            young,
            yesterday + Duration::hours(3),
            500,
            "iam.amazonaws.com:DeleteUser",
            "203.0.113.5",
            "sa-east-1",
        ));
        let f = with_usage(&[quiet, night, moved, admin, burst, young], usage);
        let findings = run(&RULE, &f);
        let got: Vec<(&str, Severity)> = findings
            .iter()
            .map(|f| (f.credential.as_str(), f.severity))
            .collect();
        assert_eq!(
            got,
            vec![
                (night, Severity::Medium),
                (moved, Severity::High),
                (admin, Severity::High),
                (burst, Severity::High),
            ]
        );
        let evidence = |id: &str, key: &str| {
            findings
                .iter()
                .find(|f| f.credential == id)
                .and_then(|f| f.evidence.iter().find(|(k, _)| k == key))
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        assert_eq!(
            evidence(night, "off_hours"),
            "2026-10-31T03:00:00Z (5 calls)"
        );
        assert_eq!(
            evidence(moved, "new_ip_and_region"),
            "2026-10-31T11:00:00Z: IPs 198.51.100.9; regions ap-south-1"
        );
        assert_eq!(
            evidence(admin, "rare_destructive_operations"),
            "iam.amazonaws.com:CreateAccessKey ×1 (baseline 0)"
        );
        assert_eq!(
            evidence(burst, "rate_spikes"),
            "2026-10-31T12:00:00Z (400 calls)"
        );
        // 1,600 calls over the 471 h from the first baseline hour (09:00, 21 days ago) to the
        // detection window's start, zero-call hours included: mean 3.4, sd 4.7.
        assert_eq!(
            evidence(burst, "rate_threshold"),
            "17.6 calls/h (mean 3.4, sd 4.7)"
        );
    }

    #[test]
    fn a_rare_read_is_medium_and_signals_combine_into_one_finding() {
        let k = "AKIAMIXED00000000001";
        let mut usage = office_baseline(k);
        let t = days_ago(1) + Duration::hours(2);
        usage.push(bucket(
            k,
            t,
            3,
            "ec2.amazonaws.com:DescribeInstances",
            "10.0.0.1",
            "us-east-1",
        ));
        let findings = run(&RULE, &with_usage(&[k], usage.clone()));
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].severity, Severity::Medium);
        assert_eq!(
            findings[0].message,
            "used unlike its baseline in the last 24 h: calls at an hour of day never active in \
             the baseline; rare operations"
        );
        usage.push(bucket(
            k,
            t + Duration::hours(1),
            2,
            "iam.amazonaws.com:PutUserPolicy",
            "10.0.0.1",
            "us-east-1",
        ));
        let findings = run(&RULE, &with_usage(&[k], usage));
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].severity, Severity::High);
    }

    #[test]
    fn destructive_operations_are_named_by_a_clear_list() {
        for op in [
            "iam.amazonaws.com:DeleteAccessKey",
            "iam.amazonaws.com:AttachUserPolicy",
            "iam.amazonaws.com:PutRolePolicy",
            "iam.amazonaws.com:CreateLoginProfile",
            "secretsmanager.amazonaws.com:GetSecretValue",
            "dynamodb.amazonaws.com:ExportTableToPointInTime",
            "cloudtrail.amazonaws.com:StopLogging",
        ] {
            assert!(is_destructive(op), "{op}");
        }
        for op in [
            READ,
            "iam.amazonaws.com:ListUsers",
            "s3.amazonaws.com:PutObject",
        ] {
            assert!(!is_destructive(op), "{op}");
        }
    }

    /// The three usage rules over real CloudTrail data (fixtures/cloudtrail/invictus-aws-dataset):
    /// an attack simulation whose facts a scan right after it would hold.
    #[test]
    fn the_usage_rules_over_the_invictus_data_set() {
        use crate::collect::cloudtrail::read_paths;
        use crate::join::EvalCtx;
        use crate::model::KeyStatus;
        use crate::rules::{find, testkit};
        use chrono::TimeZone;

        let dataset = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/cloudtrail/invictus-aws-dataset");
        let d = read_paths(&[dataset]).expect("the data set reads");
        let at = |t: &str| {
            chrono::DateTime::parse_from_rfc3339(t)
                .expect("time")
                .with_timezone(&chrono::Utc)
        };
        // What a scan right after the simulation would know: the two IAM users' long-term keys
        // (created well before), and the three retrieve-secret secrets the simulation left behind
        // (0–19 were created; 6, 13 and 16 were never deleted). Two of those are declared as
        // limited-use secrets.
        let as_of = chrono::Utc
            .with_ymd_and_hms(2023, 7, 10, 12, 38, 0)
            .unwrap();
        let long_ago = chrono::Utc.with_ymd_and_hms(2023, 6, 1, 0, 0, 0).unwrap();
        let mut attacker = testkit::key("AKIATFQR7NSC8Q4X20BJ", "bert-jan", 0);
        let mut benjamin = testkit::key("AKIATFQR7NSCUXC3DDDP", "benjamin", 0);
        for k in [&mut attacker, &mut benjamin] {
            k.account = "123837392027".into();
            k.created_at = Some(long_ago);
            k.last_rotated_at = Some(long_ago);
        }
        let arn = |n: &str| {
            format!(
                "arn:aws:secretsmanager:us-east-1:123837392027:secret:stratus-red-team-retrieve-secret-{n}"
            )
        };
        let secrets: Vec<_> = [("6", "fAVH0t"), ("13", "nFvpuv"), ("16", "ZgthLn")]
            .iter()
            .map(|(n, suffix)| {
                let mut s = testkit::secret(&format!("stratus-red-team-retrieve-secret-{n}"), 0);
                s.id = arn(&format!("{n}-{suffix}"));
                s.account = "123837392027".into();
                s.created_at = Some(at("2023-07-10T11:57:48Z"));
                s.last_rotated_at = None;
                s.status = KeyStatus::Active;
                s
            })
            .collect();
        let mut observed = vec![attacker, benjamin];
        observed.extend(secrets);
        let mut declared = testkit::declare_all(&observed);
        declared[2].max_uses = Some(2);
        declared[3].max_uses = Some(3);
        let mut facts = testkit::facts(observed, declared, d.events.clone());
        facts.usage = d.usage.clone();
        facts.auth_windows = d.auth_windows.clone();
        let ctx = EvalCtx::new(&facts, as_of);
        let findings = |id: &str| -> Vec<(String, crate::model::Severity)> {
            let rule = find(id).unwrap_or_else(|| panic!("rule {id}"));
            (rule.evaluate)(&ctx, &crate::rules::RuleOptions::default())
                .into_iter()
                .map(|f| (f.credential, f.severity))
                .collect()
        };

        // anomalous-usage: nothing. The data set spans 56 minutes, all inside the 24-hour detection
        // window, so no credential has the 30-day baseline (50 calls in 5 active hours) needed to
        // judge it. (With a 1-hour detection window the 11:00 hour becomes a baseline: see below.)
        assert_eq!(findings("anomalous-usage"), vec![]);

        // auth-failure-spike: nothing among the credentials the scan knows. The attacker's key had
        // its worst window at 12:00 with 6 AccessDenied in 191 calls (3.1%, under 5%) and 3 of 15 at
        // 11:50 (under 5 failures). The windows that do spike belong to temporary ASIA… session
        // keys (29 of 29 UnauthorizedOperation at 11:50 while brute-forcing GetPasswordData, 15 of 15
        // at 12:00 with stolen instance credentials) that no inventory or IAM listing holds.
        assert_eq!(findings("auth-failure-spike"), vec![]);

        // usage-limit-exceeded: secret 6 (max 2) was given its value by PutSecretValue at 11:57:49
        // (CloudTrail evidence, a completed rotation) and then read three times (11:57:50, 11:57:53,
        // 12:07:57): 3 > 2. Secret 13 (max 3) was read three times too: within its limit. Secret 16
        // declares no limit.
        assert_eq!(
            findings("usage-limit-exceeded"),
            vec![(arn("6-fAVH0t"), crate::model::Severity::High)]
        );

        // The same data with a detection window of one hour and a baseline of at least one active
        // hour: the attacker's key, 479 calls at 11:00, turned at 12:00 to 1,625 calls (above
        // 479 + 3 × √479 = 544.7), at an hour of day it was not active before, calling dozens of
        // operations it never had, destructive ones among them (CreateAccessKey, DeleteSecret,
        // StopLogging, …). Same IP and region throughout, so no new-place signal. Benjamin's key
        // made only 39 calls before 11:38: too little baseline to judge.
        let options = AnomalousUsageOptions {
            detection_hours: 1,
            min_baseline_active_hours: 1,
            ..Default::default()
        };
        let found = evaluate_with(&ctx, &options);
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0];
        assert_eq!(f.credential, "AKIATFQR7NSC8Q4X20BJ");
        assert_eq!(f.severity, crate::model::Severity::High);
        assert_eq!(
            f.message,
            "used unlike its baseline in the last 1 h: calls at an hour of day never active in the \
             baseline; rare destructive or exfiltrating operations; rare operations; an hourly call \
             rate above the baseline mean + 3 sd"
        );
        let evidence = |key: &str| {
            f.evidence
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        assert_eq!(evidence("off_hours"), "2023-07-10T12:00:00Z (1625 calls)");
        assert_eq!(evidence("rate_spikes"), "2023-07-10T12:00:00Z (1625 calls)");
        assert!(
            evidence("rare_destructive_operations")
                .contains("iam.amazonaws.com:CreateAccessKey ×2 (baseline 0)"),
            "{}",
            evidence("rare_destructive_operations")
        );
        assert!(
            evidence("rare_destructive_operations")
                .contains("cloudtrail.amazonaws.com:StopLogging")
        );
    }
}
