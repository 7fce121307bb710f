//! rotation-failing: the last rotation attempt failed, AWSPENDING is stuck, or a scheduled
//! rotation did not happen.

use super::options::{MAX_HOURS, OutOfRange, bounded};
use super::{Rule, RuleMeta, Source};

use crate::join::{EvalCtx, fmt_time};
use crate::model::{EventType, Finding, Severity};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "rotation-failing",
        title: "Rotation is failing",
        finds: "last attempt failed, AWSPENDING stuck, or NextRotationDate passed",
        default_severity: Severity::High,
        severity_varies: None,
        rationale: "Failed rotations fail silently: the credential keeps working, the dashboard \
                    says rotation is on, and the value never changes. Signs: the latest attempt in \
                    history failed; a secret version has been AWSPENDING for over {stuck_hours} h \
                    (`pending_stuck_hours`); or AWS's NextRotationDate passed by more than that.",
        remediation: "Read the rotation function's logs, fix the cause, and rotate again.",
        sources: &[Source::SecretsManager],
    },
    evaluate: |ctx, options| evaluate(ctx, &options.rotation_failing),
};

/// Options of rotation-failing, set in `[policy.rotation-failing]` of inventory.toml (any field
/// left out keeps its default; the older spelling `pending_stuck_hours` in `[policy]` is still
/// accepted).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RotationFailingOptions {
    /// An AWSPENDING version older than this many hours is a stuck rotation; also the grace after a
    /// missed NextRotationDate.
    pub stuck_hours: u32,
}

impl Default for RotationFailingOptions {
    fn default() -> Self {
        RotationFailingOptions { stuck_hours: 24 }
    }
}

impl RotationFailingOptions {
    /// Checks every option against its bounds.
    pub fn check(&self) -> Result<(), OutOfRange> {
        bounded("stuck_hours", self.stuck_hours, (0, MAX_HOURS), " hours")?;
        Ok(())
    }
}

fn evaluate(ctx: &EvalCtx, options: &RotationFailingOptions) -> Vec<Finding> {
    let stuck = ctx.hours(options.stuck_hours);
    let mut findings = Vec::new();
    for v in ctx.credentials.iter().filter(|v| v.is_active()) {
        let mut reasons = Vec::new();
        let mut evidence = Vec::new();
        let last_attempt = ctx.events(v).into_iter().rev().find(|e| {
            matches!(
                e.event_type,
                EventType::RotationInitiated
                    | EventType::RotationCompleted
                    | EventType::RotationFailed
            )
        });
        if let Some(e) = last_attempt.filter(|e| e.event_type == EventType::RotationFailed) {
            reasons.push("the last rotation attempt failed".to_string());
            evidence.push(("failed_at", fmt_time(e.time)));
            if let Some(details) = &e.details {
                evidence.push(("failure_details", details.clone()));
            }
        }
        if let Some(o) = v.observed {
            if o.pending_version
                && let Some(changed) = o.last_changed_at
                && ctx.as_of - changed > stuck
            {
                reasons.push(format!(
                    "a version has been AWSPENDING for {} h",
                    (ctx.as_of - changed).num_hours()
                ));
                evidence.push(("pending_since", fmt_time(changed)));
            }
            if o.rotation_enabled == Some(true)
                && let Some(next) = o.next_rotation_at
                && ctx.as_of - next > stuck
            {
                reasons.push("the scheduled rotation date passed without a rotation".to_string());
                evidence.push(("next_rotation_date", fmt_time(next)));
            }
        }
        if !reasons.is_empty() {
            findings.push(ctx.finding(
                RULE.meta.id,
                RULE.meta.default_severity,
                v,
                reasons.join("; "),
                evidence,
            ));
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::*;

    #[test]
    fn flags_failed_stuck_and_missed_rotations() {
        let healthy = secret("prod/healthy", 3);
        let failed = secret("prod/failed", 3);
        let mut recovered = secret("prod/recovered", 3);
        recovered.id.push('1');
        let mut stuck = secret("prod/stuck", 3);
        stuck.pending_version = true;
        stuck.last_changed_at = Some(hours_ago(30));
        let mut fresh_pending = secret("prod/fresh-pending", 3);
        fresh_pending.pending_version = true;
        fresh_pending.last_changed_at = Some(hours_ago(2));
        let mut missed = secret("prod/missed", 30);
        missed.next_rotation_at = Some(days_ago(16));
        let events = vec![
            event(&failed.id, EventType::RotationFailed, days_ago(1), None),
            event(&recovered.id, EventType::RotationFailed, days_ago(2), None),
            event(
                &recovered.id,
                EventType::RotationCompleted,
                days_ago(1),
                None,
            ),
        ];
        let all = vec![
            healthy,
            failed.clone(),
            recovered,
            stuck.clone(),
            fresh_pending,
            missed.clone(),
        ];
        let declared = declare_all(&all);
        let mut want = vec![failed.id, stuck.id, missed.id];
        want.sort();
        assert_eq!(flagged(&RULE, &facts(all, declared, events)), want);
    }
}
