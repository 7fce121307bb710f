//! unused-credential: an active access key unused for `[policy.unused-credential] days` (45), or
//! never used after its grace.
//!
//! Its last use is the later of IAM's last-used record (GetAccessKeyLastUsed, else the credential
//! report's `access_key_last_used_date`) and the last hour with a successful call in the
//! CloudTrail usage; the finding names which source gave
//! it, and says "never used" only when neither shows a use.

use super::options::{MAX_DAYS, OutOfRange, bounded};
use super::{Rule, RuleMeta, Source};
use crate::join::{self, CredentialView, EvalCtx, days, fmt_time};
use crate::model::{CredentialKind, Finding, ObservedCredential, Severity, Timestamp};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "unused-credential",
        title: "Active access key not used for {days} days",
        finds: "active key unused {days} days, or never used after {grace_days} days (last use: the later of IAM's last-used record and CloudTrail; the finding names which)",
        default_severity: Severity::Medium,
        severity_varies: None,
        rationale: "A key nobody uses is pure risk: it can only be used by someone who should not \
                    have it. CIS disables credentials unused for 45 days; a new key that was never \
                    used gets a {grace_days}-day grace (`unused_grace_days`). The last use is the later of \
                    IAM's last-used record and the last successful call in CloudTrail.",
        remediation: "Deactivate the key, then delete it once nothing breaks.",
        sources: &[Source::IamKeys, Source::CredentialReport],
    },
    evaluate: |ctx, options| evaluate(ctx, &options.unused_credential),
};

/// Options of unused-credential, set in `[policy.unused-credential]` of inventory.toml (any field
/// left out keeps its default; the older spelling `unused_days`, `unused_grace_days` in `[policy]`
/// is still accepted).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UnusedCredentialOptions {
    /// An active key unused this many days is a finding (CIS: 45 days).
    pub days: u32,
    /// A new key that was never used gets this many days before it counts as unused.
    pub grace_days: u32,
}

impl Default for UnusedCredentialOptions {
    fn default() -> Self {
        UnusedCredentialOptions {
            days: 45,
            grace_days: 7,
        }
    }
}

impl UnusedCredentialOptions {
    /// Checks every option against its bounds.
    pub fn check(&self) -> Result<(), OutOfRange> {
        bounded("days", self.days, (1, MAX_DAYS), " days")?;
        bounded("grace_days", self.grace_days, (0, MAX_DAYS), " days")?;
        Ok(())
    }
}

/// Where a key's last use was seen (not a [`Source`] of the run: IAM's last-used record may come
/// from GetAccessKeyLastUsed or the credential report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LastUseSource {
    IamLastUsed,
    CloudTrail,
}

impl LastUseSource {
    fn as_str(self) -> &'static str {
        match self {
            LastUseSource::IamLastUsed => "IAM's last-used record",
            LastUseSource::CloudTrail => "CloudTrail",
        }
    }
}

/// The latest use of a key and where it was seen: IAM's last-used record (to the minute) unless
/// CloudTrail shows a later successful call (to the hour).
fn last_use(
    report: Option<Timestamp>,
    cloudtrail: Option<Timestamp>,
) -> Option<(Timestamp, LastUseSource)> {
    match (report, cloudtrail) {
        (Some(r), Some(c)) if c > r => Some((c, LastUseSource::CloudTrail)),
        (Some(r), _) => Some((r, LastUseSource::IamLastUsed)),
        (None, Some(c)) => Some((c, LastUseSource::CloudTrail)),
        (None, None) => None,
    }
}

fn evaluate(ctx: &EvalCtx, options: &UnusedCredentialOptions) -> Vec<Finding> {
    let unused = chrono::Duration::days(i64::from(options.days));
    let grace = chrono::Duration::days(i64::from(options.grace_days));
    let mut findings = Vec::new();
    for v in ctx
        .credentials
        .iter()
        .filter(|v| v.kind == CredentialKind::IamAccessKey && v.is_active())
    {
        let Some(o) = v.observed else { continue };
        let cloudtrail_read = cloudtrail_read(ctx, v);
        let cloudtrail = join::aliases(v)
            .into_iter()
            .filter_map(|id| crate::model::last_access(&ctx.facts.usage, id))
            .filter(|t| *t <= ctx.as_of)
            .max();
        let (message, evidence) = match (last_use(o.last_used_at, cloudtrail), o.created_at) {
            (Some((used, source)), _) if ctx.as_of - used > unused => (
                format!(
                    "last used {} per {} ({} days ago)",
                    used.format("%Y-%m-%d"),
                    source.as_str(),
                    days(ctx.as_of - used)
                ),
                sources_evidence(
                    o,
                    cloudtrail,
                    cloudtrail_read,
                    vec![
                        ("last_used", fmt_time(used)),
                        ("last_used_source", source.as_str().to_string()),
                    ],
                ),
            ),
            (None, Some(created)) if ctx.as_of - created > grace => (
                format!(
                    "never used since it was created {} days ago, per IAM's last-used record{}",
                    days(ctx.as_of - created),
                    if cloudtrail_read {
                        " and CloudTrail"
                    } else {
                        " (CloudTrail not read)"
                    }
                ),
                sources_evidence(
                    o,
                    cloudtrail,
                    cloudtrail_read,
                    vec![
                        ("created", fmt_time(created)),
                        ("last_used", "never".to_string()),
                    ],
                ),
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

/// Whether CloudTrail was read for the key's own account: coverage of another account says
/// nothing about this key's use.
fn cloudtrail_read(ctx: &EvalCtx, v: &CredentialView) -> bool {
    let Some(account) = v.account() else {
        return false;
    };
    ctx.facts
        .coverage
        .iter()
        .any(|c| c.ok && c.account == account && Source::of_api(&c.api) == Some(Source::CloudTrail))
}

/// `evidence` followed by what each source says on its own.
fn sources_evidence(
    o: &ObservedCredential,
    cloudtrail: Option<Timestamp>,
    cloudtrail_read: bool,
    mut evidence: Vec<(&'static str, String)>,
) -> Vec<(&'static str, String)> {
    evidence.push((
        "iam_last_used",
        o.last_used_at.map_or_else(|| "never".to_string(), fmt_time),
    ));
    evidence.push((
        "cloudtrail_last_used",
        match (cloudtrail, cloudtrail_read) {
            (Some(t), _) => fmt_time(t),
            (None, true) => "no successful call in the logs read".to_string(),
            (None, false) => "not read".to_string(),
        },
    ));
    evidence
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CoverageEntry, UsageBucket};
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

    fn bucket(id: &str, hour: Timestamp, calls: u64, errors: u64) -> UsageBucket {
        UsageBucket {
            credential_id: id.into(),
            hour,
            calls,
            errors,
            ..UsageBucket::default()
        }
    }

    fn with_cloudtrail(
        mut facts: crate::model::Facts,
        mut usage: Vec<UsageBucket>,
    ) -> crate::model::Facts {
        usage.sort_by(|a, b| (&a.credential_id, a.hour).cmp(&(&b.credential_id, b.hour)));
        facts.usage = usage;
        facts.coverage.push(CoverageEntry {
            account: ACCOUNT.into(),
            region: "us-east-1".into(),
            api: "cloudtrail:logs".into(),
            ok: true,
            error: None,
            records: 1_100,
        });
        facts
    }

    fn evidence(finding: &Finding) -> Vec<(&str, &str)> {
        finding
            .evidence
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn cloudtrail_use_counts_as_use() {
        // The credential report says never used, but CloudTrail saw 1,100 successful calls.
        let mut busy = key("AKIABUSY000000000001", "a", 100);
        busy.last_used_at = None;
        // The report's last use is stale, CloudTrail's is recent.
        let mut report_stale = key("AKIAREPORTSTALE00001", "b", 100);
        report_stale.last_used_at = Some(days_ago(60));
        // CloudTrail only saw failed calls: they are not use.
        let mut failing = key("AKIAFAILING000000001", "c", 100);
        failing.last_used_at = None;
        // Both sources stale; CloudTrail's is the later one and names the source.
        let mut both_stale = key("AKIABOTHSTALE0000001", "d", 200);
        both_stale.last_used_at = Some(days_ago(90));
        // The report is later than CloudTrail: the report names the source.
        let mut report_later = key("AKIAREPORTLATER00001", "e", 200);
        report_later.last_used_at = Some(days_ago(50));
        let all = vec![
            busy.clone(),
            report_stale.clone(),
            failing.clone(),
            both_stale.clone(),
            report_later.clone(),
        ];
        let declared = declare_all(&all);
        let usage = vec![
            bucket(&busy.id, hours_ago(30), 1_100, 0),
            bucket(&report_stale.id, days_ago(2), 40, 1),
            bucket(&failing.id, days_ago(3), 12, 12),
            bucket(&both_stale.id, days_ago(48), 5, 0),
            bucket(&report_later.id, days_ago(70), 5, 0),
        ];
        let f = with_cloudtrail(facts(all, declared, vec![]), usage);
        assert_eq!(
            flagged(&RULE, &f),
            vec![
                "AKIABOTHSTALE0000001",
                "AKIAFAILING000000001",
                "AKIAREPORTLATER00001"
            ]
        );
        let findings = run(&RULE, &f);
        let by_id = |id: &str| {
            findings
                .iter()
                .find(|x| x.credential == id)
                .unwrap_or_else(|| panic!("{id}: {findings:#?}"))
        };
        let stale = by_id(&both_stale.id);
        assert_eq!(
            stale.message,
            "last used 2026-09-14 per CloudTrail (48 days ago)"
        );
        assert_eq!(
            evidence(stale),
            vec![
                ("last_used", "2026-09-14T00:00:00Z"),
                ("last_used_source", "CloudTrail"),
                ("iam_last_used", "2026-08-03T00:00:00Z"),
                ("cloudtrail_last_used", "2026-09-14T00:00:00Z"),
            ]
        );
        let later = by_id(&report_later.id);
        assert_eq!(
            later.message,
            "last used 2026-09-12 per IAM's last-used record (50 days ago)"
        );
        assert_eq!(
            evidence(later)[1],
            ("last_used_source", "IAM's last-used record")
        );
        let failing = by_id(&failing.id);
        assert_eq!(
            failing.message,
            "never used since it was created 100 days ago, per IAM's last-used record and CloudTrail"
        );
        assert_eq!(
            evidence(failing)[2..],
            [
                ("iam_last_used", "never"),
                (
                    "cloudtrail_last_used",
                    "no successful call in the logs read"
                ),
            ]
        );
        assert!(findings.iter().all(|x| {
            !(x.message.contains("never")
                && x.evidence
                    .iter()
                    .any(|(k, v)| k == "cloudtrail_last_used" && v.starts_with("20")))
        }));
    }

    #[test]
    fn cloudtrail_of_another_account_is_not_read() {
        let mut never = key("AKIANEVER00000000001", "a", 30);
        never.last_used_at = None;
        let all = vec![never];
        let declared = declare_all(&all);
        let mut f = with_cloudtrail(facts(all, declared, vec![]), vec![]);
        for c in &mut f.coverage {
            c.account = "999988887777".into();
        }
        let findings = run(&RULE, &f);
        assert_eq!(findings.len(), 1);
        assert_eq!(
            findings[0].message,
            "never used since it was created 30 days ago, per IAM's last-used record (CloudTrail not read)"
        );
        assert_eq!(
            evidence(&findings[0]).last(),
            Some(&("cloudtrail_last_used", "not read"))
        );
        // Failed coverage of its own account is not a read either.
        for c in &mut f.coverage {
            c.account = ACCOUNT.into();
            c.ok = false;
        }
        assert!(run(&RULE, &f)[0].message.ends_with("(CloudTrail not read)"));
        // Coverage of its own account is.
        f.coverage.iter_mut().for_each(|c| c.ok = true);
        assert!(run(&RULE, &f)[0].message.ends_with("and CloudTrail"));
    }

    #[test]
    fn says_when_cloudtrail_was_not_read() {
        let mut never = key("AKIANEVER00000000001", "a", 30);
        never.last_used_at = None;
        let all = vec![never];
        let declared = declare_all(&all);
        let findings = run(&RULE, &facts(all, declared, vec![]));
        assert_eq!(findings.len(), 1);
        assert_eq!(
            findings[0].message,
            "never used since it was created 30 days ago, per IAM's last-used record (CloudTrail not read)"
        );
        assert_eq!(
            evidence(&findings[0]).last(),
            Some(&("cloudtrail_last_used", "not read"))
        );
    }
}
