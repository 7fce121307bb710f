//! audit-trail-gap: a rotation visible in AWS without a matching history event, or a history
//! event AWS does not bear out.

use super::options::{MAX_HOURS, OutOfRange, bounded};
use super::{Rule, RuleMeta, Source};

use crate::join::{EvalCtx, fmt_time, sub_saturating};
use crate::model::{CredentialKind, EventType, Finding, Severity};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "audit-trail-gap",
        title: "Rotation history disagrees with AWS",
        finds: "a rotation in AWS without a history event, or the reverse",
        default_severity: Severity::Medium,
        severity_varies: None,
        rationale: "Auditors ask for the record of every change to authentication factors. A \
                    rotation AWS shows but the history lacks was made outside the pipeline; a \
                    completed rotation in history that AWS does not show never really happened. \
                    Only rotations inside the history's time span are judged, matched within \
                    {match_hours} h (`audit_match_hours`).",
        remediation: "Find who changed the credential and record the event, or fix the rotation \
                      pipeline that reports success without rotating.",
        sources: &[
            Source::RotationHistory,
            Source::IamKeys,
            Source::SecretsManager,
        ],
    },
    evaluate: |ctx, options| evaluate(ctx, &options.audit_trail_gap),
};

/// Options of audit-trail-gap, set in `[policy.audit-trail-gap]` of inventory.toml (any field left
/// out keeps its default; the older spelling `audit_match_hours` in `[policy]` is still accepted).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditTrailGapOptions {
    /// How many hours apart an AWS rotation and its history event may be and still match.
    pub match_hours: u32,
}

impl Default for AuditTrailGapOptions {
    fn default() -> Self {
        AuditTrailGapOptions { match_hours: 24 }
    }
}

impl AuditTrailGapOptions {
    /// Checks every option against its bounds.
    pub fn check(&self) -> Result<(), OutOfRange> {
        bounded("match_hours", self.match_hours, (0, MAX_HOURS), " hours")?;
        Ok(())
    }
}

fn evaluate(ctx: &EvalCtx, options: &AuditTrailGapOptions) -> Vec<Finding> {
    if !ctx.has_history() {
        return Vec::new();
    }
    // Only the rotation pipeline's own history counts: CloudTrail lifecycle events show that
    // something changed, not that the pipeline recorded it.
    let Some(history_start) = ctx
        .facts
        .events
        .iter()
        .filter(|e| e.source == "history")
        .map(|e| e.time)
        .min()
    else {
        return Vec::new();
    };
    let tolerance = ctx.hours(options.match_hours);
    let mut findings = Vec::new();
    for v in &ctx.credentials {
        let Some(o) = v.observed else { continue };
        let aws_rotation = match v.kind {
            CredentialKind::IamAccessKey => o.created_at,
            CredentialKind::Secret => o.last_rotated_at,
            _ => None,
        };
        let events: Vec<_> = ctx
            .events(v)
            .into_iter()
            .filter(|e| e.source == "history")
            .collect();
        let rotations: Vec<_> = events
            .iter()
            .filter(|e| {
                matches!(
                    e.event_type,
                    EventType::RotationCompleted | EventType::RotationInitiated
                )
            })
            .collect();
        if let Some(r) = aws_rotation
            && r >= history_start
            && !rotations.iter().any(|e| (e.time - r).abs() <= tolerance)
        {
            findings.push(ctx.finding(
                RULE.meta.id,
                RULE.meta.default_severity,
                v,
                "AWS shows a rotation that the history does not record".to_string(),
                vec![
                    ("aws_rotation", fmt_time(r)),
                    ("history_start", fmt_time(history_start)),
                ],
            ));
            continue;
        }
        let unconfirmed = events.iter().rev().find(|e| {
            e.event_type == EventType::RotationCompleted
                && aws_rotation.is_none_or(|r| r < sub_saturating(e.time, tolerance))
        });
        if let Some(e) = unconfirmed {
            findings.push(ctx.finding(
                RULE.meta.id,
                RULE.meta.default_severity,
                v,
                "history records a completed rotation that AWS does not show".to_string(),
                vec![
                    ("history_rotation", fmt_time(e.time)),
                    (
                        "aws_rotation",
                        aws_rotation.map(fmt_time).unwrap_or_else(|| "none".into()),
                    ),
                ],
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
    fn flags_gaps_in_both_directions() {
        let recorded = key("AKIARECORDED00000001", "a", 5);
        let unrecorded = key("AKIAUNRECORDED000001", "b", 5);
        let before_history = key("AKIAOLD0000000000001", "c", 40);
        let phantom = secret("prod/phantom", 20);
        let events = vec![
            event(
                &before_history.id,
                EventType::PolicyUpdated,
                days_ago(30),
                None,
            ),
            event(
                &recorded.id,
                EventType::RotationCompleted,
                days_ago(5) + chrono::Duration::hours(2),
                None,
            ),
            event(&phantom.id, EventType::RotationCompleted, days_ago(3), None),
        ];
        let all = vec![recorded, unrecorded, before_history, phantom.clone()];
        let declared = declare_all(&all);
        assert_eq!(
            flagged(&RULE, &facts(all, declared, events)),
            vec!["AKIAUNRECORDED000001".to_string(), phantom.id]
        );
    }

    #[test]
    fn silent_without_history() {
        let k = key("AKIAUNRECORDED000001", "b", 5);
        let declared = declare_all(std::slice::from_ref(&k));
        assert!(flagged(&RULE, &facts(vec![k], declared, vec![])).is_empty());
    }
}
