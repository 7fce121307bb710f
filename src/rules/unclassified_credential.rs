//! unclassified-credential: declared without a class (evaluated as class A).

use super::{Rule, RuleMeta, Source};

use crate::join::EvalCtx;
use crate::model::{Finding, Severity};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "unclassified-credential",
        title: "Declared credential has no risk class",
        finds: "declared without a class (evaluated as A)",
        default_severity: Severity::Medium,
        severity_varies: None,
        rationale: "The class decides how often a credential must rotate. Without one the \
                    credential is held to class A ({class_a} days), which fails safe but hides the real \
                    risk decision nobody made.",
        remediation: "Set `class` (A to D) on its inventory entry.",
        sources: &[Source::Inventory],
    },
    evaluate: |ctx, _| evaluate(ctx),
};

fn evaluate(ctx: &EvalCtx) -> Vec<Finding> {
    ctx.credentials
        .iter()
        .filter_map(|v| v.declared.map(|d| (v, d)))
        .filter(|(_, d)| d.class.is_none())
        .map(|(v, d)| {
            ctx.finding(
                RULE.meta.id,
                RULE.meta.default_severity,
                v,
                "no class declared; evaluated as class A".to_string(),
                vec![("inventory_line", d.line.to_string())],
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::*;

    #[test]
    fn flags_declarations_without_class() {
        let a = key("AKIACLASSED000000001", "svc-a", 3);
        let b = key("AKIANOCLASS000000001", "svc-b", 3);
        let mut declared = declare_all(&[a.clone(), b.clone()]);
        declared[1].class = None;
        assert_eq!(
            flagged(&RULE, &facts(vec![a, b], declared, vec![])),
            vec!["AKIANOCLASS000000001"]
        );
    }
}
