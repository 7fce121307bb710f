//! inactive-key-lingering: a deactivated key not deleted within 30 days.

use super::options::{MAX_DAYS, OutOfRange, bounded};
use super::{Rule, RuleMeta, Source};

use crate::join::{EvalCtx, days, fmt_time};
use crate::model::{CredentialKind, Finding, KeyStatus, Severity};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "inactive-key-lingering",
        title: "Deactivated access key not deleted",
        finds: "a deactivated key not deleted after {days} days",
        default_severity: Severity::Low,
        severity_varies: None,
        rationale: "A deactivated key can be switched back on by anyone with iam:UpdateAccessKey. \
                    Deactivation is a step before deletion, not a resting state. IAM does not \
                    record when a key was deactivated, so the key's last sign of life (creation \
                    or last use) is taken as the latest it can have been active.",
        remediation: "Delete the key; a key kept \"just in case\" needs a waiver that says why.",
        sources: &[Source::IamKeys],
    },
    evaluate: |ctx, options| evaluate(ctx, &options.inactive_key_lingering),
};

/// Options of inactive-key-lingering, set in `[policy.inactive-key-lingering]` of inventory.toml
/// (any field left out keeps its default; the older spelling `inactive_key_days` in `[policy]` is
/// still accepted).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InactiveKeyLingeringOptions {
    /// A deactivated key should be deleted within this many days.
    pub days: u32,
}

impl Default for InactiveKeyLingeringOptions {
    fn default() -> Self {
        InactiveKeyLingeringOptions { days: 30 }
    }
}

impl InactiveKeyLingeringOptions {
    /// Checks every option against its bounds.
    pub fn check(&self) -> Result<(), OutOfRange> {
        bounded("days", self.days, (1, MAX_DAYS), " days")?;
        Ok(())
    }
}

fn evaluate(ctx: &EvalCtx, options: &InactiveKeyLingeringOptions) -> Vec<Finding> {
    let limit = chrono::Duration::days(i64::from(options.days));
    ctx.credentials
        .iter()
        .filter(|v| v.kind == CredentialKind::IamAccessKey)
        .filter_map(|v| v.observed.map(|o| (v, o)))
        .filter(|(_, o)| o.status == KeyStatus::Inactive)
        .filter_map(|(v, o)| o.created_at.max(o.last_used_at).map(|since| (v, since)))
        .filter(|(_, since)| ctx.as_of - *since > limit)
        .map(|(v, since)| {
            ctx.finding(
                RULE.meta.id,
                RULE.meta.default_severity,
                v,
                format!(
                    "inactive and not deleted; last active at least {} days ago",
                    days(ctx.as_of - since)
                ),
                vec![("inactive_since_at_least", fmt_time(since))],
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::*;

    #[test]
    fn flags_inactive_keys_past_the_limit() {
        let mut old = key("AKIAOLDINACTIVE00001", "a", 200);
        old.status = KeyStatus::Inactive;
        old.last_used_at = Some(days_ago(31));
        let mut recent = key("AKIARECENTINACTIVE01", "b", 200);
        recent.status = KeyStatus::Inactive;
        recent.last_used_at = Some(days_ago(10));
        let active = key("AKIAACTIVE0000000001", "c", 200);
        let all = vec![old, recent, active];
        let declared = declare_all(&all);
        assert_eq!(
            flagged(&RULE, &facts(all, declared, vec![])),
            vec!["AKIAOLDINACTIVE00001"]
        );
    }
}
