//! auth-failure-spike: a burst of authentication failures on one credential — someone probing
//! with it, or with a stolen copy whose permissions they do not know.

use chrono::Duration;

use super::anomalous_usage::{auth_windows_of, hour_of};
use super::options::{MAX_COUNT, MAX_HOURS, OutOfRange, bounded};
use super::{Rule, RuleMeta, Source};
use crate::join::{EvalCtx, fmt_time, sub_saturating};
use crate::model::is_auth_error;
use crate::model::{AuthWindow, Finding, Severity};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "auth-failure-spike",
        title: "Authentication failures spiking",
        finds: "authentication failures above {min_rate%}% of calls in a 5-minute window (plan: emergency rotation)",
        default_severity: Severity::High,
        severity_varies: None,
        rationale: "Bursts of AccessDenied, InvalidClientTokenId or UnauthorizedOperation are what \
                    an attacker's enumeration with a stolen credential looks like in CloudTrail. A \
                    5-minute window of the last {detection_hours} h with at least {min_auth_errors} authentication failures that \
                    make up more than {min_rate%}% of the credential's calls in it is a spike.",
        remediation: "Treat the credential as compromised: rotate it now as an emergency rotation \
                      (trigger `emergency`), deactivate the old value, and review the failed and \
                      the successful calls around the window for what the caller tried to reach.",
        sources: &[Source::CloudTrail],
    },
    evaluate: |ctx, options| evaluate_with(ctx, &options.auth_failure_spike),
};

/// Thresholds of auth-failure-spike, set in `[policy.auth-failure-spike]` of inventory.toml (any
/// field left out keeps its default; the older spelling `[policy.auth_failure_spike]` is still
/// accepted).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthFailureSpikeOptions {
    /// Hours before as-of whose windows are judged.
    pub detection_hours: u32,
    /// A window is a spike when its authentication errors exceed this share of its calls …
    pub min_rate: f64,
    /// … and number at least this many.
    pub min_auth_errors: u64,
}

impl Default for AuthFailureSpikeOptions {
    fn default() -> Self {
        AuthFailureSpikeOptions {
            detection_hours: 24,
            min_rate: 0.05,
            min_auth_errors: 5,
        }
    }
}

impl AuthFailureSpikeOptions {
    /// Checks every option against its bounds.
    pub fn check(&self) -> Result<(), OutOfRange> {
        bounded(
            "detection_hours",
            self.detection_hours,
            (1, MAX_HOURS),
            " hours",
        )?;
        bounded(
            "min_rate",
            self.min_rate,
            (0.0, 1.0),
            " (a share of the calls in a window)",
        )?;
        bounded("min_auth_errors", self.min_auth_errors, (0, MAX_COUNT), "")?;
        Ok(())
    }

    /// Whether a window's authentication failures are a spike: at least `min_auth_errors`, and
    /// more than `min_rate` of its calls. (incident-not-remediated judges spikes by this too.)
    pub fn is_spike(&self, window: &AuthWindow) -> bool {
        window.auth_errors >= self.min_auth_errors
            && window.auth_errors as f64 > self.min_rate * window.calls as f64
    }
}

/// Runs auth-failure-spike with explicit thresholds. One finding per credential, about its worst
/// window (most failures, then the earliest), with the number of spiking windows.
pub fn evaluate_with(ctx: &EvalCtx, options: &AuthFailureSpikeOptions) -> Vec<Finding> {
    let detection_start = sub_saturating(
        ctx.as_of,
        Duration::hours(i64::from(options.detection_hours)),
    );
    let mut findings = Vec::new();
    for view in &ctx.credentials {
        let spikes: Vec<_> = auth_windows_of(ctx, view)
            .into_iter()
            .filter(|w| w.start >= detection_start && w.start <= ctx.as_of)
            .filter(|w| options.is_spike(w))
            .collect();
        let Some(worst) = spikes
            .iter()
            .copied()
            .min_by_key(|w| (std::cmp::Reverse(w.auth_errors), w.start))
        else {
            continue;
        };
        let rate = 100.0 * worst.auth_errors as f64 / worst.calls.max(1) as f64;
        // The window's error codes are in the usage bucket of its hour.
        let hour = hour_of(worst.start);
        let usage = &ctx.facts.usage;
        let at = usage.partition_point(|b| {
            (b.credential_id.as_str(), b.hour) < (worst.credential_id.as_str(), hour)
        });
        let top_code = usage
            .get(at)
            .filter(|b| b.credential_id == worst.credential_id && b.hour == hour)
            .and_then(|b| {
                b.error_codes
                    .iter()
                    .filter(|(code, _)| is_auth_error(code))
                    .min_by_key(|(code, n)| (std::cmp::Reverse(**n), code.as_str()))
                    .map(|(code, n)| format!("{code} ({n} in that hour)"))
            })
            .unwrap_or_else(|| "unknown".to_string());
        let mut evidence = vec![
            ("window_start", fmt_time(worst.start)),
            ("window_calls", worst.calls.to_string()),
            ("auth_errors", worst.auth_errors.to_string()),
            ("auth_error_rate", format!("{rate:.1}%")),
            ("top_error_code", top_code),
            ("spiking_windows", spikes.len().to_string()),
        ];
        if spikes.len() > 1
            && let (Some(first), Some(last)) = (spikes.first(), spikes.last())
        {
            evidence.push(("first_spike", fmt_time(first.start)));
            evidence.push(("last_spike", fmt_time(last.start)));
        }
        findings.push(ctx.finding(
            RULE.meta.id,
            RULE.meta.default_severity,
            view,
            format!(
                "{} authentication failures in {} calls ({rate:.1}%) in the 5 minutes from {}",
                worst.auth_errors,
                worst.calls,
                fmt_time(worst.start)
            ),
            evidence,
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AuthWindow, Timestamp, UsageBucket};
    use crate::rules::testkit::*;

    fn window(id: &str, start: Timestamp, calls: u64, auth_errors: u64) -> AuthWindow {
        AuthWindow {
            credential_id: id.into(),
            start,
            calls,
            auth_errors,
        }
    }

    #[test]
    fn flags_windows_over_both_thresholds_in_the_detection_window() {
        let probing = "AKIAPROBING000000001";
        let busy = "AKIABUSY000000000001";
        let few = "AKIAFEW0000000000001";
        let old = "AKIAOLD0000000000001";
        let unknown = "ASIAUNKNOWNSESSION01";
        let observed: Vec<_> = [probing, busy, few, old]
            .iter()
            .map(|k| key(k, "agent", 10))
            .collect();
        let declared = declare_all(&observed);
        let mut f = facts(observed, declared, vec![]);
        let t = hours_ago(3);
        f.auth_windows = vec![
            // 6 failures in 5 minutes against 400 calls: 1.5%, normal friction.
            window(busy, t, 400, 6),
            // 4 failures out of 4 calls: too few to call a spike.
            window(few, t, 4, 4),
            // 30 of 30, but two days ago: outside the detection window.
            window(old, hours_ago(48), 30, 30),
            // 12 of 40 (30%), and a smaller second spike.
            window(probing, t, 40, 12),
            window(probing, t + Duration::minutes(10), 20, 5),
            // A spiking session key the scan does not know is not judged.
            window(unknown, t, 50, 50),
        ];
        f.auth_windows
            .sort_by(|a, b| (&a.credential_id, a.start).cmp(&(&b.credential_id, b.start)));
        f.usage = vec![UsageBucket {
            credential_id: probing.into(),
            hour: hour_of(t),
            calls: 60,
            errors: 20,
            auth_errors: 17,
            error_codes: [
                ("AccessDenied".to_string(), 12),
                ("InvalidClientTokenId".to_string(), 5),
                ("ThrottlingException".to_string(), 3),
            ]
            .into(),
            ..UsageBucket::default()
        }];
        let findings = run(&RULE, &f);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let finding = &findings[0];
        assert_eq!(finding.credential, probing);
        assert_eq!(finding.severity, Severity::High);
        let evidence: Vec<(&str, &str)> = finding
            .evidence
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            evidence,
            vec![
                ("window_start", "2026-10-31T21:00:00Z"),
                ("window_calls", "40"),
                ("auth_errors", "12"),
                ("auth_error_rate", "30.0%"),
                ("top_error_code", "AccessDenied (12 in that hour)"),
                ("spiking_windows", "2"),
                ("first_spike", "2026-10-31T21:00:00Z"),
                ("last_spike", "2026-10-31T21:10:00Z"),
            ]
        );
    }
}
