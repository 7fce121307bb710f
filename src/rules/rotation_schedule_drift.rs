//! rotation-schedule-drift: the AWS rotation schedule is longer than the declared interval.

use super::{Rule, RuleMeta, Source};

use crate::join::{EvalCtx, days};
use crate::model::{CredentialKind, Finding, Severity};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "rotation-schedule-drift",
        title: "AWS rotation schedule longer than the declared interval",
        finds: "AWS rotation schedule longer than the declared interval",
        default_severity: Severity::Medium,
        severity_varies: None,
        rationale: "Automated rotation only meets policy if its schedule does. A secret that AWS \
                    rotates every 90 days while its class demands 30 is out of policy on every \
                    cycle, however green the rotation dashboard looks.",
        remediation: "Set the secret's rotation schedule to the declared interval or shorter.",
        sources: &[Source::SecretsManager],
    },
    evaluate: |ctx, _| evaluate(ctx),
};

fn evaluate(ctx: &EvalCtx) -> Vec<Finding> {
    ctx.credentials
        .iter()
        .filter(|v| v.kind == CredentialKind::Secret)
        .filter_map(|v| v.observed.map(|o| (v, o)))
        .filter(|(_, o)| o.rotation_enabled == Some(true))
        .filter_map(|(v, o)| o.rotation_interval_days.map(|aws| (v, o, aws)))
        .filter(|(v, _, aws)| i64::from(*aws) > days(ctx.interval(v)))
        .map(|(v, o, aws)| {
            let declared = days(ctx.interval(v));
            let mut evidence = vec![
                ("aws_interval_days", aws.to_string()),
                ("declared_interval_days", declared.to_string()),
            ];
            if let Some(expr) = &o.schedule_expression {
                evidence.push(("schedule_expression", expr.clone()));
            }
            ctx.finding(
                RULE.meta.id,
                RULE.meta.default_severity,
                v,
                format!("AWS rotates every {aws} days; policy requires {declared}"),
                evidence,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::*;

    #[test]
    fn flags_schedules_longer_than_policy() {
        let ok = secret("prod/ok", 3);
        let mut slow = secret("prod/slow", 3);
        slow.rotation_interval_days = Some(30);
        let mut disabled = secret("prod/disabled", 3);
        disabled.rotation_interval_days = Some(90);
        disabled.rotation_enabled = Some(false);
        let all = vec![ok, slow.clone(), disabled];
        let declared = declare_all(&all);
        assert_eq!(flagged(&RULE, &facts(all, declared, vec![])), vec![slow.id]);
    }
}
