//! unmanaged-credential: exists in AWS, absent from the declared inventory.

use super::{Rule, RuleMeta, Source};

use crate::join::{EvalCtx, fmt_time};
use crate::model::{CredentialKind, Finding, Severity};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "unmanaged-credential",
        title: "Credential exists in AWS but is not in the inventory",
        finds: "in AWS, absent from the inventory",
        default_severity: Severity::High,
        severity_varies: None,
        rationale: "A credential nobody declared has no owner, no class and no rotation plan; it is \
                    how undocumented keys outlive the agents they were made for. It is evaluated \
                    as class A until someone classifies it.",
        remediation: "Add it to inventory.toml with its kind, class, owner and consumers, or \
                      delete it if nothing needs it.",
        sources: &[
            Source::IamKeys,
            Source::CredentialReport,
            Source::SecretsManager,
        ],
    },
    evaluate: |ctx, _| evaluate(ctx),
};

fn evaluate(ctx: &EvalCtx) -> Vec<Finding> {
    ctx.credentials
        .iter()
        .filter(|v| v.declared.is_none())
        .filter_map(|v| v.observed.map(|o| (v, o)))
        // Root keys have a rule of their own; they must not exist, declared or not.
        .filter(|(v, _)| v.kind != CredentialKind::RootAccessKey)
        .map(|(v, o)| {
            let what = match v.kind {
                CredentialKind::Secret => format!("secret {}", o.name),
                _ => format!("access key of IAM user {}", o.name),
            };
            let mut evidence = vec![("principal", o.name.clone())];
            if let Some(created) = o.created_at {
                evidence.push(("created", fmt_time(created)));
            }
            ctx.finding(
                RULE.meta.id,
                RULE.meta.default_severity,
                v,
                format!(
                    "{what} is in AWS account {} but not in the inventory",
                    o.account
                ),
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
    fn flags_only_undeclared_credentials() {
        let known = key("AKIAKNOWN00000000001", "svc-a", 3);
        let unknown = key("AKIAUNKNOWN000000001", "svc-b", 3);
        let secret_by_name = secret("prod/db", 3);
        let mut declared = declare_all(std::slice::from_ref(&known));
        declared.push(declare("prod/db", CredentialKind::Secret));
        let facts = facts(vec![known, unknown, secret_by_name], declared, vec![]);
        assert_eq!(flagged(&RULE, &facts), vec!["AKIAUNKNOWN000000001"]);
    }
}
