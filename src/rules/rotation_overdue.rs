//! rotation-overdue: older than its rotation interval; critical past the breach factor.

use super::{Rule, RuleMeta, Source};

use crate::join::{EvalCtx, add_saturating, days, fmt_time};
use crate::model::{CredentialKind, Finding, RiskClass, Severity};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "rotation-overdue",
        title: "Credential older than its rotation interval",
        finds: "older than its interval",
        default_severity: Severity::High,
        severity_varies: Some(
            "by class (A high, B medium, C/D low); critical past {breach_factor}x",
        ),
        rationale: "The longer a credential lives, the longer a leaked copy stays useful. Severity \
                    follows the class (A high, B medium, C and D low) and becomes critical past \
                    {breach_factor}x the interval (`breach_factor`): a {breach_example_days}-day-old key on a {class_b}-day policy is a \
                    policy breach, not a late rotation.",
        remediation: "Rotate it now and switch on automated rotation so it does not lapse again.",
        sources: &[
            Source::IamKeys,
            Source::CredentialReport,
            Source::SecretsManager,
        ],
    },
    evaluate: |ctx, _| evaluate(ctx),
};

fn evaluate(ctx: &EvalCtx) -> Vec<Finding> {
    let mut findings = Vec::new();
    for v in ctx
        .credentials
        .iter()
        .filter(|v| v.is_active() && v.kind != CredentialKind::RootAccessKey)
    {
        let interval = ctx.interval(v);
        let class = v.effective_class();
        let base = match class {
            RiskClass::A => Severity::High,
            RiskClass::B => Severity::Medium,
            RiskClass::C | RiskClass::D => Severity::Low,
        };
        match ctx.last_rotation(v) {
            Some(last) => {
                let age = ctx.as_of - last;
                if age <= interval {
                    continue;
                }
                let breach = age.num_seconds() as f64
                    > interval.num_seconds() as f64 * ctx.policy.breach_factor;
                let severity = if breach { Severity::Critical } else { base };
                findings.push(ctx.finding(
                    RULE.meta.id,
                    severity,
                    v,
                    format!(
                        "last rotated {} days ago; class {class} allows {} days{}",
                        days(age),
                        days(interval),
                        if breach { " (policy breach)" } else { "" }
                    ),
                    vec![
                        ("last_rotation", fmt_time(last)),
                        ("age_days", days(age).to_string()),
                        ("interval_days", days(interval).to_string()),
                        ("due", fmt_time(add_saturating(last, interval))),
                    ],
                ));
            }
            // Only declared-only credentials lack every date: nothing shows they were ever rotated.
            None if v.observed.is_none() => findings.push(ctx.finding(
                RULE.meta.id,
                base,
                v,
                format!(
                    "no rotation on record; class {class} requires one every {} days",
                    days(interval)
                ),
                vec![("interval_days", days(interval).to_string())],
            )),
            None => {}
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CredentialKind;
    use crate::rules::testkit::*;

    #[test]
    fn severity_follows_class_and_breach() {
        let fresh = key("AKIAFRESH00000000001", "svc-a", 10);
        let late = key("AKIALATE000000000001", "svc-b", 16);
        let breach = key("AKIABREACH0000000001", "svc-c", 22);
        let class_c = key("AKIACLASSC0000000001", "svc-d", 100);
        let mut declared =
            declare_all(&[fresh.clone(), late.clone(), breach.clone(), class_c.clone()]);
        declared[3].class = Some(RiskClass::C);
        let external = declare("openai-prod", CredentialKind::LlmApiKey);
        declared.push(external);
        let facts = facts(vec![fresh, late, breach, class_c], declared, vec![]);
        let mut got: Vec<(String, Severity)> = run(&RULE, &facts)
            .into_iter()
            .map(|f| (f.credential, f.severity))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("AKIABREACH0000000001".into(), Severity::Critical),
                ("AKIACLASSC0000000001".into(), Severity::Low),
                ("AKIALATE000000000001".into(), Severity::High),
                ("openai-prod".into(), Severity::High),
            ]
        );
    }

    #[test]
    fn a_completed_rotation_in_history_counts() {
        let mut declared = vec![declare("openai-prod", CredentialKind::LlmApiKey)];
        declared[0].interval_days = Some(30);
        let events = vec![event(
            "openai-prod",
            crate::model::EventType::RotationCompleted,
            days_ago(5),
            None,
        )];
        assert!(flagged(&RULE, &facts(vec![], declared, events)).is_empty());
    }
}
