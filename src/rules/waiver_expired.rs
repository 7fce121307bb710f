//! waiver-expired: a waiver past its expiry; the finding it hid is shown again.
//!
//! Waivers apply after every other rule has run (they accept findings, so they need them):
//! [`apply`] marks findings that a waiver in force accepts and raises this rule for each
//! credential whose finding is no longer covered because its waiver expired.

use std::collections::HashMap;

use super::{Rule, RuleMeta};

use crate::join::{CredentialView, EvalCtx, fmt_time};
use crate::model::Waiver;
use crate::model::{Finding, Severity};
use crate::waivers::CompiledWaiver;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "waiver-expired",
        title: "Waiver expired",
        finds: "a waiver past its expiry; the finding it hid counts again",
        default_severity: Severity::Medium,
        severity_varies: None,
        rationale: "A waiver is a risk someone accepted until a date. Past that date the risk is \
                    unaccepted again: the finding it hid counts again and gates CI, and the \
                    acceptance itself needs a decision (renew with a new approval, or fix).",
        remediation: "Fix the finding, or renew the waiver with a fresh approval, ticket and \
                      expiry in waivers.toml.",
        sources: &[],
    },
    // Raised by `apply`, which needs the other rules' findings.
    evaluate: |_, _| Vec::new(),
};

/// Marks waived findings and appends a `waiver-expired` finding per credential whose only
/// matching waivers have expired. Findings are otherwise left as they are.
pub fn apply(ctx: &EvalCtx, findings: &mut Vec<Finding>) {
    if ctx.facts.waivers.is_empty() {
        return;
    }
    let waivers = CompiledWaiver::compile(&ctx.facts.waivers);
    // The first credential with each id, as a linear search would find it.
    let mut by_id: HashMap<&str, CredentialView> = HashMap::with_capacity(ctx.credentials.len());
    for view in &ctx.credentials {
        by_id.entry(view.id).or_insert(*view);
    }
    let mut expired_findings = Vec::new();
    let mut reported = std::collections::HashSet::new();
    for finding in findings.iter_mut() {
        let matching: Vec<&Waiver> = waivers
            .iter()
            .filter(|w| w.matches(finding))
            .map(|w| w.waiver)
            .collect();
        if let Some(active) = matching.iter().find(|w| w.expires > ctx.as_of) {
            finding.waiver = Some(active.applied());
            continue;
        }
        let Some(expired) = matching.iter().max_by_key(|w| w.expires) else {
            continue;
        };
        if !reported.insert(finding.credential.clone()) {
            continue;
        }
        let view = by_id
            .get(finding.credential.as_str())
            .copied()
            .unwrap_or(CredentialView {
                id: &finding.credential,
                kind: finding.kind,
                observed: None,
                declared: None,
            });
        expired_findings.push(ctx.finding(
            RULE.meta.id,
            RULE.meta.default_severity,
            &view,
            format!(
                "waiver {} for {} (approved by {}) expired on {}; the finding counts again",
                expired.ticket,
                expired.rule,
                expired.approver,
                fmt_time(expired.expires)
            ),
            vec![
                ("ticket", expired.ticket.clone()),
                ("approver", expired.approver.clone()),
                ("waived_rule", expired.rule.clone()),
                ("expired", fmt_time(expired.expires)),
                ("waiver_line", expired.line.to_string()),
            ],
        ));
    }
    findings.extend(expired_findings);
}

#[cfg(test)]
mod tests {
    use crate::model::Waiver;
    use crate::rules::testkit::*;

    fn waiver(credential: &str, expires_in_days: i64) -> Waiver {
        Waiver {
            rule: "rotation-overdue".into(),
            credential: credential.into(),
            reason: "vendor rotates quarterly".into(),
            approver: "ciso".into(),
            ticket: "SEC-1".into(),
            expires: as_of() + chrono::Duration::days(expires_in_days),
            line: 1,
        }
    }

    #[test]
    fn active_waivers_accept_and_expired_ones_raise() {
        let waived = key("AKIAWAIVED0000000001", "a", 20);
        let lapsed = key("AKIALAPSED0000000001", "b", 20);
        let plain = key("AKIAPLAIN00000000001", "c", 20);
        let all = vec![waived, lapsed, plain];
        let declared = declare_all(&all);
        let mut facts = facts(all, declared, vec![]);
        facts.waivers = vec![
            waiver("AKIAWAIVED*", 10),
            waiver("AKIALAPSED0000000001", -1),
        ];
        let findings = crate::rules::evaluate(&facts, as_of());
        let overdue: Vec<_> = findings
            .iter()
            .filter(|f| f.rule == "rotation-overdue")
            .collect();
        assert_eq!(overdue.len(), 3);
        for f in &overdue {
            assert_eq!(
                f.waiver.is_some(),
                f.credential == "AKIAWAIVED0000000001",
                "{}",
                f.credential
            );
        }
        let expired: Vec<_> = findings
            .iter()
            .filter(|f| f.rule == "waiver-expired")
            .map(|f| f.credential.as_str())
            .collect();
        assert_eq!(expired, vec!["AKIALAPSED0000000001"]);
    }
}
