//! multiple-active-keys: a user with two active keys for longer than the rotation overlap.

use std::collections::BTreeMap;

use super::{EvalCtx, Rule, RuleMeta, Source, fmt_time};
use crate::model::{CredentialKind, Finding, Severity};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "multiple-active-keys",
        title: "IAM user has more than one active access key",
        default_severity: Severity::Medium,
        rationale: "Two active keys are normal for the hours of a rotation (`key_overlap_hours`, \
                    24 h). Past that, the old key was never retired and doubles what can leak \
                    (CIS: one active key per user).",
        remediation: "Deactivate the older key once its consumers use the new one, then delete it.",
        sources: &[Source::IamKeys],
    },
    evaluate,
};

fn evaluate(ctx: &EvalCtx) -> Vec<Finding> {
    let overlap = ctx.hours(ctx.policy.key_overlap_hours);
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
            &RULE.meta,
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
