//! unowned-credential: no owner, an unknown owner, or an owner who has departed.

use super::{Rule, RuleMeta, Source};

use crate::join::EvalCtx;
use crate::model::{Finding, OwnerStatus, Severity};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "unowned-credential",
        title: "Credential has no active owner",
        finds: "no owner, unknown owner, or owner departed",
        default_severity: Severity::High,
        severity_varies: None,
        rationale: "Someone must answer for every credential: approve its access, rotate it, and \
                    revoke it when it is no longer needed. Keys of people who left are the classic \
                    way access outlives authorisation.",
        remediation: "Assign an active owner in inventory.toml (and reassign everything the \
                      departed owner held).",
        sources: &[Source::Inventory],
    },
    evaluate: |ctx, _| evaluate(ctx),
};

fn evaluate(ctx: &EvalCtx) -> Vec<Finding> {
    let inventory = &ctx.facts.inventory;
    let mut findings = Vec::new();
    for v in &ctx.credentials {
        let Some(d) = v.declared else { continue };
        let problem = match d.owner.as_deref() {
            None => "no owner declared".to_string(),
            Some(id) => match inventory.owner(id) {
                None => format!("owner \"{id}\" is not among the declared owners"),
                Some(o) if o.status == OwnerStatus::Departed => {
                    format!("owner \"{id}\" has departed")
                }
                Some(_) => continue,
            },
        };
        findings.push(ctx.finding(
            RULE.meta.id,
            RULE.meta.default_severity,
            v,
            problem,
            vec![("inventory_line", d.line.to_string())],
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Owner;
    use crate::rules::testkit::*;

    #[test]
    fn flags_missing_unknown_and_departed_owners() {
        let keys: Vec<_> = (1..=4)
            .map(|i| key(&format!("AKIAOWNER00000000000{i}"), "svc", 3))
            .collect();
        let mut declared = declare_all(&keys);
        declared[1].owner = None;
        declared[2].owner = Some("ghost".into());
        declared[3].owner = Some("bob".into());
        let mut facts = facts(keys, declared, vec![]);
        facts.inventory.owners.push(Owner {
            id: "bob".into(),
            name: None,
            email: None,
            status: OwnerStatus::Departed,
        });
        assert_eq!(
            flagged(&RULE, &facts),
            vec![
                "AKIAOWNER000000000002",
                "AKIAOWNER000000000003",
                "AKIAOWNER000000000004"
            ]
        );
    }
}
