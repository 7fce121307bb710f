//! secret-unused: a Secrets Manager secret not accessed for `[policy.secret-unused] days` (90).

use super::options::{MAX_DAYS, OutOfRange, bounded};
use super::{Rule, RuleMeta, Source};

use crate::join::{EvalCtx, days, fmt_time};
use crate::model::{CredentialKind, Finding, Severity};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "secret-unused",
        title: "Secret not accessed for {days} days",
        finds: "a secret not accessed for {days} days (CloudTrail reads stand in when AWS gives no LastAccessedDate)",
        default_severity: Severity::Medium,
        severity_varies: None,
        rationale: "A secret nothing reads is a credential nothing needs, still valid wherever it \
                    is accepted. Secrets Manager records the last access to the day; a secret \
                    never read counts from its creation (`secret_unused_days`).",
        remediation: "Confirm no consumer needs it, revoke the credential it holds, then schedule \
                      the secret for deletion.",
        sources: &[Source::SecretsManager],
    },
    evaluate: |ctx, options| evaluate(ctx, &options.secret_unused),
};

/// Options of secret-unused, set in `[policy.secret-unused]` of inventory.toml (any field left out
/// keeps its default; the older spelling `secret_unused_days` in `[policy]` is still accepted).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretUnusedOptions {
    /// A secret not accessed this many days is unused.
    pub days: u32,
}

impl Default for SecretUnusedOptions {
    fn default() -> Self {
        SecretUnusedOptions { days: 90 }
    }
}

impl SecretUnusedOptions {
    /// Checks every option against its bounds.
    pub fn check(&self) -> Result<(), OutOfRange> {
        bounded("days", self.days, (1, MAX_DAYS), " days")?;
        Ok(())
    }
}

fn evaluate(ctx: &EvalCtx, options: &SecretUnusedOptions) -> Vec<Finding> {
    let limit = chrono::Duration::days(i64::from(options.days));
    let mut findings = Vec::new();
    for v in ctx
        .credentials
        .iter()
        .filter(|v| v.kind == CredentialKind::Secret)
    {
        let Some(o) = v.observed else { continue };
        // Secrets Manager may give no LastAccessedDate; CloudTrail's reads then tell.
        let last_used = o.last_used_at.or_else(|| {
            [o.id.as_str(), o.name.as_str()]
                .into_iter()
                .filter_map(|id| crate::model::last_access(&ctx.facts.usage, id))
                .max()
        });
        let (message, evidence) = match (last_used, o.created_at) {
            (Some(used), _) if ctx.as_of - used > limit => (
                format!("last accessed {} days ago", days(ctx.as_of - used)),
                vec![("last_accessed", fmt_time(used))],
            ),
            (None, Some(created)) if ctx.as_of - created > limit => (
                format!(
                    "never accessed since it was created {} days ago",
                    days(ctx.as_of - created)
                ),
                vec![
                    ("created", fmt_time(created)),
                    ("last_accessed", "never".to_string()),
                ],
            ),
            _ => continue,
        };
        findings.push(ctx.finding(
            RULE.meta.id,
            RULE.meta.default_severity,
            v,
            message,
            evidence,
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::*;

    #[test]
    fn flags_secrets_unread_past_the_limit() {
        let read = secret("prod/read", 3);
        let mut stale = secret("prod/stale", 3);
        stale.last_used_at = Some(days_ago(91));
        let mut never = secret("prod/never", 3);
        never.last_used_at = None;
        let mut never_new = secret("prod/never-new", 3);
        never_new.last_used_at = None;
        never_new.created_at = Some(days_ago(20));
        let all = vec![read, stale.clone(), never.clone(), never_new];
        let declared = declare_all(&all);
        let mut want = vec![stale.id, never.id];
        want.sort();
        assert_eq!(flagged(&RULE, &facts(all, declared, vec![])), want);
    }

    #[test]
    fn cloudtrail_reads_stand_in_for_a_missing_last_accessed_date() {
        let mut read_recently = secret("prod/read-recently", 3);
        read_recently.last_used_at = None;
        let mut never_read = secret("prod/never-read", 3);
        never_read.last_used_at = None;
        let all = vec![read_recently.clone(), never_read.clone()];
        let declared = declare_all(&all);
        let mut facts = facts(all, declared, vec![]);
        facts.usage = vec![crate::model::UsageBucket {
            credential_id: read_recently.id.clone(),
            hour: days_ago(2),
            calls: 4,
            ..Default::default()
        }];
        assert_eq!(flagged(&RULE, &facts), vec![never_read.id]);
    }
}
