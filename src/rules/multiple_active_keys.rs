//! multiple-active-keys: a user with two active keys for longer than the rotation overlap.

use std::collections::BTreeMap;

use super::options::{MAX_HOURS, OutOfRange, bounded};
use super::{Rule, RuleMeta, Source};

use crate::join::{EvalCtx, fmt_time};
use crate::model::{CredentialKind, Finding, Severity};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "multiple-active-keys",
        title: "IAM user has more than one active access key",
        finds: "two active keys on a user for more than {overlap_hours} h",
        default_severity: Severity::Medium,
        severity_varies: None,
        rationale: "Two active keys are normal for the hours of a rotation (`key_overlap_hours`, \
                    {overlap_hours} h). Past that, the old key was never retired and doubles what can leak \
                    (CIS: one active key per user).",
        remediation: "Deactivate the older key once its consumers use the new one, then delete it.",
        sources: &[Source::IamKeys],
    },
    evaluate: |ctx, options| evaluate(ctx, &options.multiple_active_keys),
};

/// Options of multiple-active-keys, set in `[policy.multiple-active-keys]` of inventory.toml (any
/// field left out keeps its default; the older spelling `key_overlap_hours` in `[policy]` is still
/// accepted).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MultipleActiveKeysOptions {
    /// Two active keys on one user are a rotation in progress for this many hours.
    pub overlap_hours: u32,
}

impl Default for MultipleActiveKeysOptions {
    fn default() -> Self {
        MultipleActiveKeysOptions { overlap_hours: 24 }
    }
}

impl MultipleActiveKeysOptions {
    /// Checks every option against its bounds.
    pub fn check(&self) -> Result<(), OutOfRange> {
        bounded(
            "overlap_hours",
            self.overlap_hours,
            (0, MAX_HOURS),
            " hours",
        )?;
        Ok(())
    }
}

fn evaluate(ctx: &EvalCtx, options: &MultipleActiveKeysOptions) -> Vec<Finding> {
    let overlap = ctx.hours(options.overlap_hours);
    let mut by_user: BTreeMap<(&str, &str), Vec<_>> = BTreeMap::new();
    for v in ctx
        .credentials
        .iter()
        .filter(|v| v.kind == CredentialKind::IamAccessKey && v.is_active())
    {
        if let Some(o) = v.observed {
            by_user
                .entry((o.account.as_str(), o.name.as_str()))
                .or_default()
                .push((v, o));
        }
    }
    let mut findings = Vec::new();
    for ((_, user), mut keys) in by_user {
        if keys.len() < 2 {
            continue;
        }
        keys.sort_by_key(|(_, o)| (o.created_at, o.id.as_str()));
        let (oldest, oldest_obs) = keys[0];
        let newest = keys[keys.len() - 1].1;
        let Some(newest_created) = newest.created_at else {
            continue;
        };
        if ctx.as_of - newest_created <= overlap {
            continue; // a rotation in progress
        }
        let others: Vec<&str> = keys[1..].iter().map(|(_, o)| o.id.as_str()).collect();
        findings.push(ctx.finding(
            RULE.meta.id,
            RULE.meta.default_severity,
            oldest,
            format!(
                "IAM user {user} has {} active keys; the newest was created {} h ago",
                keys.len(),
                (ctx.as_of - newest_created).num_hours()
            ),
            vec![
                ("user", user.to_string()),
                ("other_active_keys", others.join(" ")),
                (
                    "oldest_created",
                    oldest_obs.created_at.map(fmt_time).unwrap_or_default(),
                ),
                ("newest_created", fmt_time(newest_created)),
            ],
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::*;

    #[test]
    fn allows_the_rotation_overlap_then_flags_the_older_key() {
        let old_a = key("AKIAOLDA000000000001", "svc-a", 10);
        let new_a = key("AKIANEWA000000000001", "svc-a", 2);
        let old_b = key("AKIAOLDB000000000001", "svc-b", 10);
        let mut new_b = key("AKIANEWB000000000001", "svc-b", 0);
        new_b.created_at = Some(hours_ago(3));
        let single = key("AKIASINGLE0000000001", "svc-c", 10);
        let all = vec![old_a, new_a, old_b, new_b, single];
        let declared = declare_all(&all);
        assert_eq!(
            flagged(&RULE, &facts(all, declared, vec![])),
            vec!["AKIAOLDA000000000001"]
        );
    }
}
