//! rotation-due-soon: due within the "due soon" window (48 h); feeds the remediation plan.

use super::{Rule, RuleMeta, Source};

use crate::join::{EvalCtx, add_saturating, fmt_time};
use crate::model::{CredentialKind, Finding, Severity};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "rotation-due-soon",
        title: "Rotation due within {due_soon_hours} hours",
        finds: "due within {due_soon_hours} h",
        default_severity: Severity::Info,
        severity_varies: None,
        rationale: "A rotation that is about to fall due is cheapest to handle before it becomes \
                    overdue; listing it lets the rotation pipeline schedule it.",
        remediation: "Make sure the scheduled rotation runs before the due time.",
        sources: &[
            Source::IamKeys,
            Source::CredentialReport,
            Source::SecretsManager,
        ],
    },
    evaluate: |ctx, _| evaluate(ctx),
};

fn evaluate(ctx: &EvalCtx) -> Vec<Finding> {
    let window = ctx.hours(ctx.policy.due_soon_hours);
    ctx.credentials
        .iter()
        .filter(|v| v.is_active() && v.kind != CredentialKind::RootAccessKey)
        .filter_map(|v| ctx.due(v).map(|due| (v, due)))
        .filter(|(_, due)| *due >= ctx.as_of && *due <= add_saturating(ctx.as_of, window))
        .map(|(v, due)| {
            let hours = (due - ctx.as_of).num_hours();
            ctx.finding(
                RULE.meta.id,
                RULE.meta.default_severity,
                v,
                format!("rotation due in {hours} h"),
                vec![("due", fmt_time(due))],
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::*;

    #[test]
    fn flags_keys_due_within_the_window() {
        let soon = key("AKIASOON000000000001", "svc-a", 13);
        let later = key("AKIALATER00000000001", "svc-b", 5);
        let overdue = key("AKIAOVERDUE000000001", "svc-c", 15);
        let declared = declare_all(&[soon.clone(), later.clone(), overdue.clone()]);
        let facts = facts(vec![soon, later, overdue], declared, vec![]);
        assert_eq!(flagged(&RULE, &facts), vec!["AKIASOON000000000001"]);
    }
}
