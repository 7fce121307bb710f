//! usage-limit-exceeded: a credential with a declared `max_uses` used more often than that since
//! its last rotation.
//!
//! Uses are the calls CloudTrail recorded for the credential (failed ones included: a denied
//! call still presented the credential), counted from hourly usage: every bucket whose hour is at
//! or after the hour of the last rotation, up to as-of. Counting whole hours means calls made in
//! the rotation's hour but before it count too, so a credential rotated and used within the same
//! hour can be over-counted, never under-counted. Without a known rotation every recorded use
//! counts.

use super::anomalous_usage::{hour_of, usage_of};
use super::{Rule, RuleMeta, Source};
use crate::join::{EvalCtx, fmt_time};
use crate::model::{Finding, Severity};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "usage-limit-exceeded",
        title: "Credential used more often than its declared limit",
        finds: "used more often since its last rotation than its declared `max_uses`",
        default_severity: Severity::High,
        severity_varies: None,
        rationale: "A credential declared for a limited number of uses (a one-time bootstrap \
                    token, a break-glass secret) that is used more often is being replayed: by a \
                    consumer that should have rotated it, or by someone who copied it. Uses are \
                    counted from CloudTrail since the last rotation, to the hour.",
        remediation: "Rotate the credential now, find the caller of the extra uses in CloudTrail, \
                      and fix the consumer so it requests a fresh credential per use.",
        sources: &[Source::Inventory, Source::CloudTrail],
    },
    evaluate: |ctx, _| evaluate(ctx),
};

fn evaluate(ctx: &EvalCtx) -> Vec<Finding> {
    let mut findings = Vec::new();
    for view in &ctx.credentials {
        let Some(limit) = view.declared.and_then(|d| d.max_uses) else {
            continue;
        };
        let last_rotation = ctx.last_rotation(view);
        let since = last_rotation.map(hour_of);
        let counted: Vec<_> = usage_of(ctx, view)
            .into_iter()
            .filter(|b| since.is_none_or(|s| b.hour >= s) && b.hour <= ctx.as_of)
            .filter(|b| b.calls > 0)
            .collect();
        let uses: u64 = counted.iter().map(|b| b.calls).sum();
        if uses <= limit {
            continue;
        }
        let failed: u64 = counted.iter().map(|b| b.errors).sum();
        let mut evidence = vec![
            ("max_uses", limit.to_string()),
            ("uses", uses.to_string()),
            ("failed_uses", failed.to_string()),
            (
                "last_rotation",
                last_rotation
                    .map(fmt_time)
                    .unwrap_or_else(|| "unknown".into()),
            ),
            (
                "counted_from",
                since
                    .map(fmt_time)
                    .unwrap_or_else(|| "the first recorded use".into()),
            ),
        ];
        if let (Some(first), Some(last)) = (counted.first(), counted.last()) {
            evidence.push(("first_use_hour", fmt_time(first.hour)));
            evidence.push(("last_use_hour", fmt_time(last.hour)));
        }
        let since_text = last_rotation
            .map(|t| format!("since its last rotation at {}", fmt_time(t)))
            .unwrap_or_else(|| "with no rotation on record".into());
        findings.push(ctx.finding(
            RULE.meta.id,
            RULE.meta.default_severity,
            view,
            format!("used {uses} times {since_text}, over its limit of {limit}"),
            evidence,
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CredentialKind, EventType, Timestamp, UsageBucket};
    use crate::rules::testkit::*;
    use chrono::Duration;

    fn used(id: &str, hour: Timestamp, calls: u64) -> UsageBucket {
        UsageBucket {
            credential_id: id.into(),
            hour,
            calls,
            ..UsageBucket::default()
        }
    }

    #[test]
    fn counts_uses_since_the_last_rotation_hour() {
        // A one-time token (declared only), used once after issue: fine.
        // The same kind of token used three times after issue: replayed.
        // A secret allowed 10 reads, read 8 times since its rotation 5 days ago (and 50 times
        // before that, which no longer count).
        let once = "bootstrap-token-once";
        let replayed = "bootstrap-token-replayed";
        let secret_limited = secret("prod/break-glass", 5);
        let mut declared = vec![
            declare(once, CredentialKind::Other),
            declare(replayed, CredentialKind::Other),
            declare(&secret_limited.id, CredentialKind::Secret),
        ];
        for d in &mut declared {
            d.max_uses = Some(1);
        }
        declared[2].max_uses = Some(10);
        let issued = days_ago(2) + Duration::minutes(30);
        let events = vec![
            event(once, EventType::RotationCompleted, issued, None),
            event(replayed, EventType::RotationCompleted, issued, None),
        ];
        let mut f = facts(vec![secret_limited.clone()], declared, events);
        f.usage = vec![
            used(once, hour_of(issued) - Duration::hours(5), 4),
            used(once, hour_of(issued) + Duration::hours(1), 1),
            used(replayed, hour_of(issued), 1),
            used(replayed, hour_of(issued) + Duration::hours(20), 2),
            used(&secret_limited.id, days_ago(9), 50),
            used(&secret_limited.id, days_ago(1), 8),
        ];
        f.usage
            .sort_by(|a, b| (&a.credential_id, a.hour).cmp(&(&b.credential_id, b.hour)));
        let findings = run(&RULE, &f);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].credential, replayed);
        assert_eq!(
            findings[0].message,
            "used 3 times since its last rotation at 2026-10-30T00:30:00Z, over its limit of 1"
        );
        assert!(findings[0].evidence.contains(&(
            "counted_from".to_string(),
            "2026-10-30T00:00:00Z".to_string()
        )));

        // Read 3 more times: 11 reads of a secret allowed 10.
        f.usage.push(used(&secret_limited.id, hours_ago(2), 3));
        f.usage
            .sort_by(|a, b| (&a.credential_id, a.hour).cmp(&(&b.credential_id, b.hour)));
        let mut want = vec![replayed.to_string(), secret_limited.id];
        want.sort();
        assert_eq!(flagged(&RULE, &f), want);
    }
}
