//! incident-not-remediated: a security incident on a credential not followed by a completed
//! rotation within the policy's emergency window.
//!
//! Incidents are an `anomaly.detected` history event, a burst of `access.denied` history events
//! (at least `access_denied_burst` within `access_denied_burst_minutes`, dated by the event that
//! completes the burst), and an authentication-failure spike: a 5-minute CloudTrail window over
//! the thresholds of auth-failure-spike (`[policy.auth_failure_spike]`), dated by its start.
//! A rotation is a `rotation.completed` event (history, or CloudTrail lifecycle evidence) or the
//! rotation AWS shows (a key's creation, a secret's last rotation), strictly after the incident.
//!
//! An incident younger than `emergency_hours` is still in its window and not judged. Past its
//! deadline, it is remediated when a rotation came inside the window; a rotation that came later
//! still leaves the finding (medium: the exposure is closed, but the response missed its
//! deadline), and no rotation at all since the incident is the high finding. A deactivated access
//! key cannot be used and is not judged, nor are access keys and secrets declared but not found in
//! AWS (deleted; orphaned-inventory-entry reports them). One finding per credential, about its
//! latest unremediated incident.

use chrono::Duration;

use super::anomalous_usage::auth_windows_of;
use super::options::{MAX_COUNT, MAX_HOURS, OutOfRange, RuleOptions, bounded};
use super::{Rule, RuleMeta, Source};
use crate::join::{CredentialView, EvalCtx, add_saturating, fmt_time};
use crate::model::{CredentialKind, EventType, Finding, RotationEvent, Severity, Timestamp};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "incident-not-remediated",
        title: "Incident not followed by an emergency rotation",
        finds: "an `anomaly.detected` event, an `access.denied` burst ({access_denied_burst} within {access_denied_burst_minutes:minutes}) or an auth-failure spike not followed by a completed rotation within {emergency_hours} h (`[policy.incident_not_remediated]` `emergency_hours`, `access_denied_burst`, `access_denied_burst_minutes`; plan: emergency rotation)",
        default_severity: Severity::High,
        severity_varies: Some("high (medium if rotated late)"),
        rationale: "A detected anomaly, a burst of access denials ({access_denied_burst} within {access_denied_burst_minutes:minutes}) or \
                    an authentication-failure spike means the credential may be in someone \
                    else's hands, and until its value changes whoever holds a copy can keep using \
                    it. Detection closes nothing by itself: each incident must be followed by a \
                    completed rotation (history or CloudTrail) within the emergency window \
                    (`[policy.incident_not_remediated] emergency_hours`, {emergency_hours} h). No rotation since \
                    the incident is high; a rotation after the deadline is medium.",
        remediation: "Rotate the credential now as an emergency rotation (trigger `emergency`), \
                      deactivate the old value, review what the credential did since the \
                      incident, and record the `rotation.completed` event in the history.",
        sources: &[Source::RotationHistory, Source::CloudTrail],
    },
    evaluate,
};

/// Thresholds of incident-not-remediated, set in `[policy.incident-not-remediated]` of
/// inventory.toml (any field left out keeps its default; the older spelling
/// `[policy.incident_not_remediated]` is still accepted). Spikes use
/// `[policy.auth-failure-spike]`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IncidentNotRemediatedOptions {
    /// A rotation must complete within this many hours of an incident.
    pub emergency_hours: u32,
    /// This many `access.denied` events on one credential …
    pub access_denied_burst: u64,
    /// … within this many minutes are a burst.
    pub access_denied_burst_minutes: u32,
}

impl Default for IncidentNotRemediatedOptions {
    fn default() -> Self {
        IncidentNotRemediatedOptions {
            emergency_hours: 24,
            access_denied_burst: 5,
            access_denied_burst_minutes: 60,
        }
    }
}

impl IncidentNotRemediatedOptions {
    /// Checks every option against its bounds.
    pub fn check(&self) -> Result<(), OutOfRange> {
        bounded(
            "emergency_hours",
            self.emergency_hours,
            (1, MAX_HOURS),
            " hours",
        )?;
        bounded(
            "access_denied_burst",
            self.access_denied_burst,
            (1, MAX_COUNT),
            " events",
        )?;
        bounded(
            "access_denied_burst_minutes",
            self.access_denied_burst_minutes,
            (1, MAX_HOURS * 60),
            " minutes",
        )?;
        Ok(())
    }
}

/// One incident on a credential.
#[derive(Debug, Clone, PartialEq)]
struct Incident {
    kind: &'static str,
    time: Timestamp,
    detail: String,
}

fn evaluate(ctx: &EvalCtx, all: &RuleOptions) -> Vec<Finding> {
    let options = &all.incident_not_remediated;
    let window = Duration::hours(i64::from(options.emergency_hours));
    let mut findings = Vec::new();
    for view in &ctx.credentials {
        if !judged(view) {
            continue;
        }
        let events = ctx.events(view);
        let incidents = incidents(ctx, view, &events, all);
        if incidents.is_empty() {
            continue;
        }
        let rotations = rotations(ctx, view, &events);
        // Incidents past their deadline, each with the first rotation after it (if any).
        let unremediated: Vec<(&Incident, Timestamp, Option<Timestamp>)> = incidents
            .iter()
            .filter_map(|incident| {
                let deadline = add_saturating(incident.time, window);
                if deadline >= ctx.as_of {
                    return None; // still in its window
                }
                // `rotations` is sorted: the first one strictly after the incident.
                let first = rotations
                    .get(rotations.partition_point(|&r| r <= incident.time))
                    .copied();
                match first {
                    Some(r) if r <= deadline => None,
                    _ => Some((incident, deadline, first)),
                }
            })
            .collect();
        let Some(&(incident, deadline, rotation)) = unremediated.last() else {
            continue;
        };
        let (severity, message, rotation_seen) = match rotation {
            None => (
                RULE.meta.default_severity,
                format!(
                    "{} at {} not followed by a rotation: the emergency deadline {} has passed",
                    incident.kind,
                    fmt_time(incident.time),
                    fmt_time(deadline)
                ),
                match rotations.last() {
                    Some(&r) => {
                        format!("none since the incident (last {}, before it)", fmt_time(r))
                    }
                    None => "none".to_string(),
                },
            ),
            Some(r) => (
                Severity::Medium,
                format!(
                    "{} at {} rotated only at {}, {} h after the emergency deadline",
                    incident.kind,
                    fmt_time(incident.time),
                    fmt_time(r),
                    (r - deadline).num_hours()
                ),
                format!("{} (after the deadline)", fmt_time(r)),
            ),
        };
        let mut evidence = vec![
            ("incident", incident.kind.to_string()),
            ("incident_time", fmt_time(incident.time)),
            ("incident_detail", incident.detail.clone()),
            ("deadline", fmt_time(deadline)),
            ("rotation_seen", rotation_seen),
        ];
        if unremediated.len() > 1 {
            evidence.push(("unremediated_incidents", unremediated.len().to_string()));
        }
        findings.push(ctx.finding(RULE.meta.id, severity, view, message, evidence));
    }
    findings
}

/// Whether the credential can still be used by whoever holds a copy: deactivated keys cannot,
/// and AWS credentials declared but not found in AWS are gone (or out of the scan).
fn judged(view: &CredentialView) -> bool {
    match view.observed {
        Some(_) => view.is_active(),
        None => !matches!(
            view.kind,
            CredentialKind::IamAccessKey | CredentialKind::Secret | CredentialKind::RootAccessKey
        ),
    }
}

/// Every incident on a credential up to as-of, oldest first (`events`: the credential's, from
/// [`EvalCtx::events`]).
fn incidents(
    ctx: &EvalCtx,
    view: &CredentialView,
    events: &[&RotationEvent],
    all: &RuleOptions,
) -> Vec<Incident> {
    let options = &all.incident_not_remediated;
    let mut incidents: Vec<Incident> = events
        .iter()
        .filter(|e| e.event_type == EventType::AnomalyDetected && e.time <= ctx.as_of)
        .map(|e| Incident {
            kind: "anomaly.detected",
            time: e.time,
            detail: e
                .details
                .clone()
                .unwrap_or_else(|| format!("from {}", e.source)),
        })
        .collect();

    // access.denied bursts: `burst` denials within the burst window, each denial in one burst.
    let denials: Vec<Timestamp> = events
        .iter()
        .filter(|e| e.event_type == EventType::AccessDenied && e.time <= ctx.as_of)
        .map(|e| e.time)
        .collect();
    let burst = usize::try_from(options.access_denied_burst.max(1)).unwrap_or(usize::MAX);
    let burst_window = Duration::minutes(i64::from(options.access_denied_burst_minutes));
    let mut first = 0;
    while denials.len() - first >= burst {
        let last = first + burst - 1;
        if denials[last] - denials[first] <= burst_window {
            // The burst runs on while denials keep coming inside the window of its start.
            let mut end = last;
            while end + 1 < denials.len() && denials[end + 1] - denials[first] <= burst_window {
                end += 1;
            }
            incidents.push(Incident {
                kind: "access.denied burst",
                time: denials[last],
                detail: format!(
                    "{} access.denied events from {} to {}",
                    end - first + 1,
                    fmt_time(denials[first]),
                    fmt_time(denials[end])
                ),
            });
            first = end + 1;
        } else {
            first += 1;
        }
    }

    // Authentication-failure spikes, by auth-failure-spike's own thresholds.
    let spike = &all.auth_failure_spike;
    incidents.extend(
        auth_windows_of(ctx, view)
            .into_iter()
            .filter(|w| w.start <= ctx.as_of && spike.is_spike(w))
            .map(|w| Incident {
                kind: "auth-failure spike",
                time: w.start,
                detail: format!(
                    "{} authentication failures in {} calls in the 5 minutes from {}",
                    w.auth_errors,
                    w.calls,
                    fmt_time(w.start)
                ),
            }),
    );
    incidents.sort_by_key(|i| i.time);
    incidents
}

/// Times the credential's value changed, up to as-of, oldest first: completed rotations in
/// history and CloudTrail (`events`: the credential's, from [`EvalCtx::events`]), and the rotation
/// AWS shows (a key's creation, a secret's last rotation).
fn rotations(ctx: &EvalCtx, view: &CredentialView, events: &[&RotationEvent]) -> Vec<Timestamp> {
    let mut times: Vec<Timestamp> = events
        .iter()
        .filter(|e| e.event_type == EventType::RotationCompleted)
        .map(|e| e.time)
        .chain(
            view.observed
                .and_then(|o| o.last_rotated_at.or(o.created_at)),
        )
        .filter(|t| *t <= ctx.as_of)
        .collect();
    times.sort_unstable();
    times
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AuthWindow, RotationEvent, Trigger};
    use crate::rules::testkit::*;

    fn at(credential: &str, event_type: EventType, time: Timestamp) -> RotationEvent {
        let mut e = event(credential, event_type, time, None);
        if event_type == EventType::RotationCompleted {
            e.trigger = Some(Trigger::Emergency);
        }
        e
    }

    fn evidence(finding: &Finding) -> Vec<(&str, &str)> {
        finding
            .evidence
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// Keys created 30 days ago (their only rotation), each with one story of incident and
    /// response.
    #[test]
    fn flags_incidents_without_a_rotation_in_the_emergency_window() {
        let ids = [
            "AKIAANOMALYOPEN00001", // anomaly 3 days ago, never rotated since: high
            "AKIAANOMALYDONE00001", // anomaly 3 days ago, emergency rotation 5 h later: clean
            "AKIAANOMALYLATE00001", // anomaly 5 days ago, rotated 2 days later: medium
            "AKIAANOMALYNEW000001", // anomaly 10 h ago: still in its window
            "AKIABURST00000000001", // 5 denials within the hour, 2 days ago: high
            "AKIASCATTERED0000001", // 5 denials, hours apart: no burst
            "AKIAFOURDENIALS00001", // 4 denials within the hour: no burst
            "AKIASPIKE00000000001", // an auth-failure spike 30 h ago: high
            "AKIANOSPIKE000000001", // failures under the spike thresholds: clean
            "AKIAINACTIVE00000001", // anomaly, then the key was deactivated: not judged
            "AKIACLEAN00000000001", // nothing happened
        ];
        let mut observed: Vec<_> = ids.iter().map(|id| key(id, "svc", 30)).collect();
        observed[9].status = crate::model::KeyStatus::Inactive;
        let declared = declare_all(&observed);
        let mut events = vec![
            at(ids[0], EventType::AnomalyDetected, hours_ago(72)),
            at(ids[1], EventType::AnomalyDetected, hours_ago(72)),
            at(ids[1], EventType::RotationCompleted, hours_ago(67)),
            at(ids[2], EventType::AnomalyDetected, hours_ago(120)),
            at(ids[2], EventType::RotationCompleted, hours_ago(72)),
            at(ids[3], EventType::AnomalyDetected, hours_ago(10)),
            at(ids[9], EventType::AnomalyDetected, hours_ago(72)),
        ];
        for minutes in [0, 5, 20, 40, 59] {
            events.push(at(
                ids[4],
                EventType::AccessDenied,
                hours_ago(48) + Duration::minutes(minutes),
            ));
        }
        for hours in [100, 90, 80, 70, 60] {
            events.push(at(ids[5], EventType::AccessDenied, hours_ago(hours)));
        }
        for minutes in [0, 10, 20, 30] {
            events.push(at(
                ids[6],
                EventType::AccessDenied,
                hours_ago(48) + Duration::minutes(minutes),
            ));
        }
        events.sort_by_key(|e| e.time);
        let mut f = facts(observed, declared, events);
        f.auth_windows = vec![
            AuthWindow {
                credential_id: ids[7].into(),
                start: hours_ago(30),
                calls: 40,
                auth_errors: 12,
            },
            AuthWindow {
                credential_id: ids[8].into(),
                start: hours_ago(30),
                calls: 400,
                auth_errors: 6,
            },
        ];
        f.auth_windows
            .sort_by(|a, b| (&a.credential_id, a.start).cmp(&(&b.credential_id, b.start)));
        assert_eq!(
            flagged(&RULE, &f),
            vec![
                "AKIAANOMALYLATE00001",
                "AKIAANOMALYOPEN00001",
                "AKIABURST00000000001",
                "AKIASPIKE00000000001",
            ]
        );
        let findings = run(&RULE, &f);
        let by_id = |id: &str| findings.iter().find(|x| x.credential == id).unwrap();

        let open = by_id(ids[0]);
        assert_eq!(open.severity, Severity::High);
        assert_eq!(
            open.message,
            "anomaly.detected at 2026-10-29T00:00:00Z not followed by a rotation: the emergency \
             deadline 2026-10-30T00:00:00Z has passed"
        );
        assert_eq!(
            evidence(open),
            vec![
                ("incident", "anomaly.detected"),
                ("incident_time", "2026-10-29T00:00:00Z"),
                ("incident_detail", "from history"),
                ("deadline", "2026-10-30T00:00:00Z"),
                (
                    "rotation_seen",
                    "none since the incident (last 2026-10-02T00:00:00Z, before it)"
                ),
            ]
        );

        let late = by_id(ids[2]);
        assert_eq!(late.severity, Severity::Medium);
        assert_eq!(
            evidence(late)[3..],
            [
                ("deadline", "2026-10-28T00:00:00Z"),
                ("rotation_seen", "2026-10-29T00:00:00Z (after the deadline)"),
            ]
        );

        let burst = by_id(ids[4]);
        assert_eq!(
            evidence(burst)[..4],
            [
                ("incident", "access.denied burst"),
                ("incident_time", "2026-10-30T00:59:00Z"),
                (
                    "incident_detail",
                    "5 access.denied events from 2026-10-30T00:00:00Z to 2026-10-30T00:59:00Z"
                ),
                ("deadline", "2026-10-31T00:59:00Z"),
            ]
        );

        let spike = by_id(ids[7]);
        assert_eq!(spike.severity, Severity::High);
        assert_eq!(
            evidence(spike)[..2],
            [
                ("incident", "auth-failure spike"),
                ("incident_time", "2026-10-30T18:00:00Z"),
            ]
        );
    }

    #[test]
    fn secrets_count_aws_and_cloudtrail_rotations_and_the_options_apply() {
        // A secret AWS rotated 3 h after the anomaly (seen only as its LastRotatedDate).
        let mut aws_rotated = secret("prod/aws-rotated", 3);
        aws_rotated.last_rotated_at = Some(hours_ago(69));
        // A secret whose emergency rotation is only in CloudTrail (PutSecretValue), under its name.
        let mut trail = secret("prod/cloudtrail", 10);
        trail.last_rotated_at = Some(days_ago(10));
        let mut trail_rotation = at(
            "prod/cloudtrail",
            EventType::RotationCompleted,
            hours_ago(70),
        );
        trail_rotation.source = "cloudtrail".into();
        // An external key, declared only: history is all there is.
        let external = "ext:llm:agent-1";
        let all = vec![aws_rotated.clone(), trail.clone()];
        let mut declared = declare_all(&all);
        declared.push(declare(external, CredentialKind::LlmApiKey));
        let events = vec![
            at(&aws_rotated.id, EventType::AnomalyDetected, hours_ago(72)),
            at(&trail.id, EventType::AnomalyDetected, hours_ago(72)),
            at(external, EventType::AnomalyDetected, hours_ago(48)),
            trail_rotation,
        ];
        let mut f = facts(all, declared, events);
        f.events.sort_by_key(|e| e.time);
        assert_eq!(flagged(&RULE, &f), vec![external]);

        // A wider emergency window puts the external key's incident back inside it …
        set_options(&mut f, |o| o.incident_not_remediated.emergency_hours = 72);
        assert!(flagged(&RULE, &f).is_empty());
        // … and a narrower one makes the 2-3 h rotations late.
        set_options(&mut f, |o| o.incident_not_remediated.emergency_hours = 1);
        assert_eq!(
            flagged(&RULE, &f),
            vec![
                aws_rotated.id.clone(),
                trail.id.clone(),
                external.to_string()
            ]
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
        );
    }

    #[test]
    fn burst_size_and_window_are_options() {
        let k = key("AKIADENIED0000000001", "svc", 30);
        let declared = declare_all(std::slice::from_ref(&k));
        let events: Vec<_> = [0, 30, 90]
            .into_iter()
            .map(|m| {
                at(
                    &k.id,
                    EventType::AccessDenied,
                    hours_ago(48) + Duration::minutes(m),
                )
            })
            .collect();
        let mut f = facts(vec![k.clone()], declared, events);
        assert!(flagged(&RULE, &f).is_empty());
        set_options(&mut f, |o| {
            o.incident_not_remediated.access_denied_burst = 3
        });
        assert!(
            flagged(&RULE, &f).is_empty(),
            "90 minutes is not within the hour"
        );
        set_options(&mut f, |o| {
            o.incident_not_remediated.access_denied_burst_minutes = 90
        });
        let findings = run(&RULE, &f);
        assert_eq!(findings.len(), 1);
        assert_eq!(
            evidence(&findings[0])[1],
            ("incident_time", "2026-10-30T01:30:00Z")
        );
    }

    #[test]
    fn extreme_options_and_dates_do_not_panic() {
        let k = key("AKIAEXTREME000000001", "svc", 30);
        let declared = declare_all(std::slice::from_ref(&k));
        let events = vec![
            at(&k.id, EventType::AnomalyDetected, Timestamp::MIN_UTC),
            at(&k.id, EventType::AccessDenied, Timestamp::MIN_UTC),
            at(&k.id, EventType::AccessDenied, Timestamp::MAX_UTC),
            at(&k.id, EventType::AnomalyDetected, Timestamp::MAX_UTC),
        ];
        let mut f = facts(vec![k], declared, events);
        for (hours, burst, minutes) in [(u32::MAX, u64::MAX, u32::MAX), (0, 0, 0), (1, 1, 0)] {
            set_options(&mut f, |o| {
                let o = &mut o.incident_not_remediated;
                o.emergency_hours = hours;
                o.access_denied_burst = burst;
                o.access_denied_burst_minutes = minutes;
            });
            let _ = run(&RULE, &f);
        }
    }
}
