//! credential-reuse: a rotation re-issued a fingerprint seen before.

use std::collections::HashMap;

use super::{Rule, RuleMeta, Source};

use crate::join::{CredentialView, EvalCtx, fmt_time};
use crate::model::{EventType, Finding, Severity};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "credential-reuse",
        title: "Rotation re-issued an earlier credential",
        finds: "a rotation re-issued an earlier fingerprint",
        default_severity: Severity::High,
        severity_varies: None,
        rationale: "A rotation that puts back a value used before is no rotation: whoever held the \
                    old value holds the new one. Fingerprints of issued credentials in the \
                    rotation history are compared across all credentials.",
        remediation: "Rotate again with a freshly generated value and fix the generator that \
                      repeated it.",
        sources: &[Source::RotationHistory],
    },
    evaluate: |ctx, _| evaluate(ctx),
};

fn evaluate(ctx: &EvalCtx) -> Vec<Finding> {
    let mut first_seen: HashMap<&str, (&str, chrono::DateTime<chrono::Utc>)> = HashMap::new();
    let mut findings = Vec::new();
    let mut reported = std::collections::HashSet::new();
    // facts.events is sorted by time, so "earlier" is well defined.
    for e in ctx
        .facts
        .events
        .iter()
        .filter(|e| e.event_type == EventType::RotationCompleted)
    {
        let Some(fp) = e.fingerprint.as_deref() else {
            continue;
        };
        match first_seen.get(fp) {
            None => {
                first_seen.insert(fp, (e.credential_id.as_str(), e.time));
            }
            Some(&(first_credential, first_time)) => {
                if !reported.insert(e.credential_id.as_str()) {
                    continue;
                }
                let view = ctx
                    .credentials
                    .iter()
                    .find(|v| {
                        v.id == e.credential_id
                            || v.declared.is_some_and(|d| d.id == e.credential_id)
                    })
                    .copied()
                    .unwrap_or(CredentialView {
                        id: &e.credential_id,
                        kind: crate::model::CredentialKind::Other,
                        observed: None,
                        declared: None,
                    });
                let whose = if first_credential == e.credential_id {
                    "its own earlier rotation".to_string()
                } else {
                    format!("credential {first_credential}")
                };
                findings.push(ctx.finding(
                    RULE.meta.id,
                    RULE.meta.default_severity,
                    &view,
                    format!(
                        "rotation at {} re-issued the fingerprint of {whose}",
                        fmt_time(e.time)
                    ),
                    vec![
                        ("fingerprint", fp.to_string()),
                        ("first_issued", fmt_time(first_time)),
                        ("reissued", fmt_time(e.time)),
                    ],
                ));
            }
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CredentialKind;
    use crate::rules::testkit::*;

    #[test]
    fn flags_repeated_fingerprints() {
        let declared = vec![
            declare("db-a", CredentialKind::DbPassword),
            declare("db-b", CredentialKind::DbPassword),
            declare("db-c", CredentialKind::DbPassword),
        ];
        let events = vec![
            event(
                "db-a",
                EventType::RotationCompleted,
                days_ago(30),
                Some("sha256:1"),
            ),
            event(
                "db-a",
                EventType::RotationCompleted,
                days_ago(15),
                Some("sha256:2"),
            ),
            event(
                "db-a",
                EventType::RotationCompleted,
                days_ago(1),
                Some("sha256:1"),
            ),
            event(
                "db-b",
                EventType::RotationCompleted,
                days_ago(2),
                Some("sha256:3"),
            ),
            event(
                "db-c",
                EventType::RotationCompleted,
                days_ago(1),
                Some("sha256:3"),
            ),
            event(
                "db-c",
                EventType::RotationInitiated,
                days_ago(1),
                Some("sha256:2"),
            ),
        ];
        assert_eq!(
            flagged(&RULE, &facts(vec![], declared, events)),
            vec!["db-a", "db-c"]
        );
    }
}
