//! rotation-not-automated: class A/B rotated by hand, or AWS rotation off though declared automated.

use super::{Rule, RuleMeta, Source};

use crate::join::EvalCtx;
use crate::model::{CredentialKind, Finding, RiskClass, Severity};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "rotation-not-automated",
        title: "Rotation is not automated",
        finds: "class A/B rotated by hand, or AWS rotation off though declared automated",
        default_severity: Severity::Medium,
        severity_varies: None,
        rationale: "At fleet scale, hand rotation of {class_a}- and {class_b}-day credentials does not keep up \
                    (500 agents x 10 credentials at 30 days is ~167 rotations a day). Class A and \
                    B credentials must rotate automatically, and a secret declared automated must \
                    have AWS rotation switched on.",
        remediation: "Enable automated rotation (Secrets Manager rotation, or the rotation \
                      pipeline for keys) and set `automated = true`.",
        sources: &[Source::Inventory],
    },
    evaluate: |ctx, _| evaluate(ctx),
};

fn evaluate(ctx: &EvalCtx) -> Vec<Finding> {
    let mut findings = Vec::new();
    for v in ctx.credentials.iter().filter(|v| v.is_active()) {
        let Some(d) = v.declared else { continue };
        let class = v.effective_class();
        let message = if !d.automated && matches!(class, RiskClass::A | RiskClass::B) {
            format!("class {class} credential is rotated by hand")
        } else if d.automated
            && v.kind == CredentialKind::Secret
            && v.observed.and_then(|o| o.rotation_enabled) == Some(false)
        {
            "declared automated, but AWS rotation is disabled on the secret".to_string()
        } else {
            continue;
        };
        findings.push(ctx.finding(
            RULE.meta.id,
            RULE.meta.default_severity,
            v,
            message,
            vec![
                ("class", class.to_string()),
                ("declared_automated", d.automated.to_string()),
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
    fn flags_manual_a_b_and_disabled_aws_rotation() {
        let manual_a = key("AKIAMANUALA000000001", "a", 3);
        let manual_c = key("AKIAMANUALC000000001", "b", 3);
        let auto = key("AKIAAUTO000000000001", "c", 3);
        let mut off = secret("prod/off", 3);
        off.rotation_enabled = Some(false);
        let all = vec![manual_a, manual_c, auto, off.clone()];
        let mut declared = declare_all(&all);
        declared[0].automated = false;
        declared[1].automated = false;
        declared[1].class = Some(RiskClass::C);
        assert_eq!(
            flagged(&RULE, &facts(all, declared, vec![])),
            vec!["AKIAMANUALA000000001".to_string(), off.id]
        );
    }
}
