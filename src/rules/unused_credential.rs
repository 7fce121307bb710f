//! unused-credential: an active access key unused for 45 days, or never used after its grace.

use super::{EvalCtx, Rule, RuleMeta, days, fmt_time};
use crate::model::{CredentialKind, Finding, Severity};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "unused-credential",
        title: "Active access key not used for 45 days",
        default_severity: Severity::Medium,
        rationale: "A key nobody uses is pure risk: it can only be used by someone who should not \
                    have it. CIS disables credentials unused for 45 days; a new key that was never \
                    used gets a 7-day grace (`unused_grace_days`).",
        remediation: "Deactivate the key, then delete it once nothing breaks.",
    },
    evaluate,
};

fn evaluate(ctx: &EvalCtx) -> Vec<Finding> {
    let unused = chrono::Duration::days(i64::from(ctx.policy.unused_days));
    let grace = chrono::Duration::days(i64::from(ctx.policy.unused_grace_days));
    let mut findings = Vec::new();
    for v in ctx
        .credentials
        .iter()
        .filter(|v| v.kind == CredentialKind::IamAccessKey && v.is_active())
    {
        let Some(o) = v.observed else { continue };
        let (message, evidence) = match (o.last_used_at, o.created_at) {
            (Some(used), _) if ctx.as_of - used > unused => (
                format!("last used {} days ago", days(ctx.as_of - used)),
                vec![("last_used", fmt_time(used))],
            ),
            (None, Some(created)) if ctx.as_of - created > grace => (
                format!(
                    "never used since it was created {} days ago",
                    days(ctx.as_of - created)
                ),
                vec![
                    ("created", fmt_time(created)),
                    ("last_used", "never".to_string()),
                ],
            ),
            _ => continue,
        };
        findings.push(ctx.finding(&RULE.meta, RULE.meta.default_severity, v, message, evidence));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::*;

    #[test]
    fn flags_stale_and_never_used_keys_after_grace() {
        let used = key("AKIAUSED000000000001", "a", 10);
        let mut stale = key("AKIASTALE00000000001", "b", 100);
        stale.last_used_at = Some(days_ago(46));
        let mut never_old = key("AKIANEVEROLD00000001", "c", 8);
        never_old.last_used_at = None;
        let mut never_new = key("AKIANEVERNEW00000001", "d", 6);
        never_new.last_used_at = None;
        let mut inactive = key("AKIAINACTIVE00000001", "e", 100);
        inactive.last_used_at = Some(days_ago(90));
        inactive.status = crate::model::KeyStatus::Inactive;
        let all = vec![used, stale, never_old, never_new, inactive];
        let declared = declare_all(&all);
        assert_eq!(
            flagged(&RULE, &facts(all, declared, vec![])),
            vec!["AKIANEVEROLD00000001", "AKIASTALE00000000001"]
        );
    }
}
