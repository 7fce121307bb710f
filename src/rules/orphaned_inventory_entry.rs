//! orphaned-inventory-entry: declared, but not found where it was scanned.

use super::{Rule, RuleMeta, Source};

use crate::join::EvalCtx;
use crate::model::{CredentialKind, Finding, Severity};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "orphaned-inventory-entry",
        title: "Declared credential not found in AWS",
        finds: "declared, not found in the scanned accounts",
        default_severity: Severity::Medium,
        severity_varies: None,
        rationale: "An inventory entry for a credential that no longer exists makes the inventory \
                    untrustworthy: reviews sign off on keys that are gone while the real ones go \
                    unreviewed. Only entries whose kind and account were scanned are judged.",
        remediation: "Remove the entry from inventory.toml, or record the id of the credential \
                      that replaced it.",
        sources: &[Source::Inventory, Source::IamKeys, Source::SecretsManager],
    },
    evaluate: |ctx, _| evaluate(ctx),
};

fn evaluate(ctx: &EvalCtx) -> Vec<Finding> {
    let scanned = ctx.facts.scanned_accounts();
    ctx.credentials
        .iter()
        .filter(|v| v.observed.is_none())
        .filter_map(|v| v.declared.map(|d| (v, d)))
        .filter(|(v, _)| v.kind.is_discoverable())
        .filter(|(v, d)| {
            let api = match v.kind {
                CredentialKind::Secret => "secretsmanager:",
                _ => "iam:",
            };
            match &d.account {
                Some(account) => ctx.facts.covered(account, api),
                None => scanned.iter().any(|a| ctx.facts.covered(a, api)),
            }
        })
        .map(|(v, d)| {
            let scope = d.account.clone().unwrap_or_else(|| scanned.join(", "));
            ctx.finding(
                RULE.meta.id,
                RULE.meta.default_severity,
                v,
                format!(
                    "declared {} was not found in the scanned account(s) {scope}",
                    v.kind
                ),
                vec![
                    ("inventory_line", d.line.to_string()),
                    ("scanned_accounts", scope),
                ],
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::*;

    #[test]
    fn flags_declared_aws_credentials_missing_from_a_scanned_account() {
        let present = key("AKIAPRESENT000000001", "svc-a", 3);
        let mut declared = declare_all(std::slice::from_ref(&present));
        declared.push(declare(
            "AKIAGONE000000000001",
            CredentialKind::IamAccessKey,
        ));
        // Not discoverable: an LLM key is never "missing" from AWS.
        declared.push(declare("openai-prod", CredentialKind::LlmApiKey));
        // In an account that was not scanned: no verdict.
        let mut elsewhere = declare("AKIAELSEWHERE0000001", CredentialKind::IamAccessKey);
        elsewhere.account = Some("999999999999".into());
        declared.push(elsewhere);
        let facts = facts(vec![present], declared, vec![]);
        assert_eq!(flagged(&RULE, &facts), vec!["AKIAGONE000000000001"]);
    }
}
