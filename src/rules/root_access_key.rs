//! root-access-key: the root user has an active access key.

use super::{Rule, RuleMeta, Source};

use crate::join::{EvalCtx, fmt_time};
use crate::model::{CredentialKind, Finding, Severity};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "root-access-key",
        title: "Root user has an access key",
        finds: "the root user has an access key",
        default_severity: Severity::Critical,
        severity_varies: None,
        rationale: "The root user cannot be restricted by any policy. A root access key is \
                    unlimited, long-lived access to the whole account (CIS: no root access keys).",
        remediation: "Delete the root access key; give automation an IAM role instead.",
        sources: &[Source::CredentialReport],
    },
    evaluate: |ctx, _| evaluate(ctx),
};

fn evaluate(ctx: &EvalCtx) -> Vec<Finding> {
    ctx.credentials
        .iter()
        .filter(|v| v.kind == CredentialKind::RootAccessKey && v.is_active())
        .filter_map(|v| v.observed.map(|o| (v, o)))
        .map(|(v, o)| {
            let mut evidence = vec![("account", o.account.clone())];
            if let Some(t) = o.created_at {
                evidence.push(("created", fmt_time(t)));
            }
            evidence.push((
                "last_used",
                o.last_used_at
                    .map(fmt_time)
                    .unwrap_or_else(|| "never".into()),
            ));
            ctx.finding(
                RULE.meta.id,
                RULE.meta.default_severity,
                v,
                format!(
                    "the root user of account {} has an active access key",
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
    fn flags_active_root_keys_only() {
        let mut root = key(
            &format!("arn:aws:iam::{ACCOUNT}:root/access-key-1"),
            "<root_account>",
            300,
        );
        root.kind = CredentialKind::RootAccessKey;
        let mut inactive_root = root.clone();
        inactive_root.id = format!("arn:aws:iam::{ACCOUNT}:root/access-key-2");
        inactive_root.status = crate::model::KeyStatus::Inactive;
        let user_key = key("AKIAUSER000000000001", "svc", 3);
        assert_eq!(
            flagged(
                &RULE,
                &facts(vec![root, inactive_root, user_key], vec![], vec![])
            ),
            vec![format!("arn:aws:iam::{ACCOUNT}:root/access-key-1")]
        );
    }
}
