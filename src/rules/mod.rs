//! The rule engine: rule metadata, the registry, and `evaluate`, which runs every rule over
//! one run's facts (joined by [`crate::join`]).

use serde::{Deserialize, Serialize};

use crate::join::EvalCtx;
use std::collections::BTreeMap;

use crate::model::{Facts, Finding, Policy, Severity, Timestamp};

mod registry;
pub use registry::{find, ids};

pub mod options;
pub use options::RuleOptions;

/// The catalogue: one line per rule declares its module (one file, `src/rules/<rule_id>.rs`,
/// exporting `RULE`) and puts it in [`RULES`], in the order `credaudit rules` lists them.
macro_rules! catalogue {
    ($($vis:vis mod $rule:ident;)*) => {
        $($vis mod $rule;)*

        /// Every rule credaudit runs, in catalogue order.
        pub static RULES: &[&Rule] = &[$(&$rule::RULE),*];
    };
}

catalogue! {
    mod unmanaged_credential;
    mod orphaned_inventory_entry;
    mod rotation_overdue;
    mod rotation_due_soon;
    mod unclassified_credential;
    mod unowned_credential;
    pub mod unused_credential;
    pub mod multiple_active_keys;
    mod root_access_key;
    pub mod inactive_key_lingering;
    mod rotation_not_automated;
    mod rotation_schedule_drift;
    pub mod rotation_failing;
    pub mod audit_trail_gap;
    pub mod tag_drift;
    mod credential_reuse;
    mod usage_limit_exceeded;
    pub mod anomalous_usage;
    pub mod auth_failure_spike;
    pub mod incident_not_remediated;
    pub mod secret_unused;
    mod waiver_expired;
}

/// What a rule is, for `credaudit rules`, `explain` and the reports.
#[derive(Debug)]
pub struct RuleMeta {
    /// Stable kebab-case id; control catalogues refer to it.
    pub id: &'static str,
    pub title: &'static str,
    /// What it finds, in one line with the default thresholds: the README's rule table
    /// (`credaudit rules --format markdown`), `explain` and the reports.
    pub finds: &'static str,
    pub default_severity: Severity,
    /// How the severity varies, when it is not always `default_severity` (e.g. "by class (A
    /// high, B medium, C/D low); critical past 1.5x"). See [`RuleMeta::severity_text`].
    pub severity_varies: Option<&'static str>,
    /// Why it matters.
    pub rationale: &'static str,
    /// What to do about a finding.
    pub remediation: &'static str,
    /// The evidence sources it reads. It runs only when the run had them (see
    /// [`Source::runnable`] and [`Source::missing`]); otherwise it is listed as not run, with
    /// the reason, and the controls it tests are not assessed.
    pub sources: &'static [Source],
}

impl RuleMeta {
    /// `text`, one of this rule's texts (title, finds, severity, rationale), with the numbers of
    /// `options` and `policy` filled in. A text names a number by placeholder: `{field}` of the
    /// rule's own options, `{class_a}` … `{class_d}` (intervals in days), `{due_soon_hours}`,
    /// `{breach_factor}`, `{breach_example_days}` (class B's interval times the breach factor);
    /// `{field%}` shows a share as a percentage and `{field:minutes}` a count of minutes in
    /// words. Texts never spell a default out, so what they say is what was configured.
    pub fn render(&self, text: &str, options: &RuleOptions, policy: &Policy) -> String {
        let mut values: BTreeMap<String, f64> = BTreeMap::new();
        if let Some(serde_json::Value::Object(fields)) = options.of_rule(self.id) {
            for (name, value) in fields {
                if let Some(number) = value.as_f64() {
                    values.insert(name, number);
                }
            }
        }
        for class in crate::model::RiskClass::ALL {
            values.insert(
                format!("class_{}", class.as_str().to_lowercase()),
                f64::from(policy.class_interval(Some(*class))),
            );
        }
        values.insert("due_soon_hours".into(), f64::from(policy.due_soon_hours));
        values.insert("breach_factor".into(), policy.breach_factor);
        values.insert(
            "breach_example_days".into(),
            (f64::from(policy.class_interval(Some(crate::model::RiskClass::B)))
                * policy.breach_factor)
                .round(),
        );
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                out.push_str(&rest[open..]);
                return out;
            };
            let placeholder = &after[..close];
            let (name, format) = match placeholder.split_once(':') {
                Some((name, format)) => (name, format),
                None => match placeholder.strip_suffix('%') {
                    Some(name) => (name, "%"),
                    None => (placeholder, ""),
                },
            };
            match (values.get(name), format) {
                (Some(&v), "") => out.push_str(&number(v)),
                (Some(&v), "%") => out.push_str(&number(v * 100.0)),
                (Some(&v), "minutes") => out.push_str(&minutes(v)),
                _ => {
                    out.push('{');
                    out.push_str(placeholder);
                    out.push('}');
                }
            }
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        out
    }

    /// [`RuleMeta::render`] with the default options and policy: what `credaudit rules`,
    /// `explain` and the README show.
    pub fn render_default(&self, text: &str) -> String {
        self.render(text, &RuleOptions::default(), &Policy::default())
    }

    /// The severity in words (with the default policy): how it varies when it does, else the
    /// default severity.
    pub fn severity_text(&self) -> String {
        match self.severity_varies {
            Some(varies) => self.render_default(varies),
            None => self.default_severity.as_str().to_string(),
        }
    }
}

/// A number as a text shows it: no fraction when it is whole, else at most six decimals.
fn number(value: f64) -> String {
    let rounded = (value * 1e6).round() / 1e6;
    if rounded.fract() == 0.0 && rounded.abs() < 1e15 {
        format!("{}", rounded as i64)
    } else {
        format!("{rounded}")
    }
}

/// A count of minutes in words: "an hour", "2 hours", "90 minutes".
fn minutes(value: f64) -> String {
    match value as i64 {
        60 => "an hour".to_string(),
        m if m > 0 && m % 60 == 0 => format!("{} hours", m / 60),
        m => format!("{m} minutes"),
    }
}

/// Evidence key prefix of a value a finding says something should be set to: tag-drift records
/// `set-tag:owner` = the declared owner, and the plan sets exactly those tags.
pub const SET_TAG_PREFIX: &str = "set-tag:";

/// An evidence source a rule reads. A run records which it had, per account and region (from
/// coverage), and whether a rotation history and an inventory were given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[derive(strum::IntoStaticStr, strum::Display, strum::VariantArray)]
#[strum(serialize_all = "kebab-case")]
pub enum Source {
    /// IAM users and their access keys (`iam:list-users`, `iam:list-access-keys`).
    IamKeys,
    /// The IAM credential report: key ages and last use, and the root user's keys.
    CredentialReport,
    /// Secrets Manager's list of secrets, per region (rotation settings, dates, tags).
    SecretsManager,
    /// CloudTrail logs: usage, authentication failures, lifecycle calls.
    #[serde(rename = "cloudtrail")]
    #[strum(serialize = "cloudtrail")]
    CloudTrail,
    /// The rotation history (JSON Lines) of the rotation pipeline.
    RotationHistory,
    /// The declared inventory (credentials, owners, classes).
    Inventory,
}

impl Source {
    /// Every source, in a fixed order.
    pub const ALL: &'static [Source] = <Self as strum::VariantArray>::VARIANTS;

    /// The kebab-case id, as stored and in reports.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The source in words, for reasons: "no CloudTrail in this run".
    pub fn describe(self) -> &'static str {
        match self {
            Source::IamKeys => "IAM access key listing",
            Source::CredentialReport => "IAM credential report",
            Source::SecretsManager => "Secrets Manager listing",
            Source::CloudTrail => "CloudTrail",
            Source::RotationHistory => "rotation history",
            Source::Inventory => "inventory",
        }
    }

    /// What the source cannot tell, shown beside it in the bundle's evidence sources.
    pub fn caveat(self) -> Option<&'static str> {
        match self {
            Source::CredentialReport => Some(
                "IAM regenerates the credential report at most every 4 hours: key ages and last \
                 use are as of its generation (GeneratedTime), and a key made since is not in it. \
                 A live scan lists keys from it unless --precise-last-used.",
            ),
            _ => None,
        }
    }

    /// The sources a coverage API name (`iam:list-access-keys`, `cloudtrail:logs`, …) stands
    /// for, if any.
    pub fn of_api(api: &str) -> Option<Source> {
        match api {
            "iam:list-access-keys" => Some(Source::IamKeys),
            "iam:credential-report" | "iam:get-credential-report" => Some(Source::CredentialReport),
            "secretsmanager:list-secrets" => Some(Source::SecretsManager),
            _ if api.starts_with("cloudtrail:") => Some(Source::CloudTrail),
            _ => None,
        }
    }

    /// Whether it lists AWS credentials. A rule names the listings it can evaluate; it runs
    /// over whichever of them the run had (a rule over keys and secrets runs on keys alone).
    pub fn is_listing(self) -> bool {
        matches!(
            self,
            Source::IamKeys | Source::CredentialReport | Source::SecretsManager
        )
    }

    /// Whether a rule needing `needed` can run on what the run `had`: at least one of the
    /// listings it names (if any) and at least one of its other sources (if any). It runs in
    /// part when [`Source::missing`] is not empty: its findings stand, but the controls it
    /// tests cannot pass (incident-not-remediated finds history's incidents without
    /// CloudTrail, not CloudTrail's authentication-failure spikes).
    pub fn runnable(needed: &[Source], had: &[Source]) -> bool {
        let (listings, others): (Vec<Source>, Vec<Source>) =
            needed.iter().copied().partition(|s| s.is_listing());
        let any_of = |list: &[Source]| list.is_empty() || list.iter().any(|s| had.contains(s));
        any_of(&listings) && any_of(&others)
    }

    /// Which of `needed` the run lacks, given the sources it `had`: every needed source that is
    /// not a listing, and the listings when it had none of the needed ones. Empty: it can run.
    pub fn missing(needed: &[Source], had: &[Source]) -> Vec<Source> {
        let mut missing: Vec<Source> = needed
            .iter()
            .copied()
            .filter(|s| !s.is_listing() && !had.contains(s))
            .collect();
        let listings: Vec<Source> = needed.iter().copied().filter(|s| s.is_listing()).collect();
        if !listings.is_empty() && !listings.iter().any(|s| had.contains(s)) {
            missing.extend(listings);
        }
        missing.sort();
        missing.dedup();
        missing
    }

    /// Why a rule needing the `missing` sources did not run, e.g. "no CloudTrail in this run",
    /// "no IAM access key listing or Secrets Manager listing in this run".
    pub fn reason(missing: &[Source]) -> String {
        let (listings, others): (Vec<Source>, Vec<Source>) =
            missing.iter().copied().partition(|s| s.is_listing());
        let mut parts: Vec<String> = others
            .iter()
            .map(|s| format!("no {}", s.describe()))
            .collect();
        if !listings.is_empty() {
            let names: Vec<&str> = listings.iter().map(|s| s.describe()).collect();
            parts.push(format!("no {}", names.join(" or ")));
        }
        format!("{} in this run", parts.join(", "))
    }
}

#[cfg(test)]
#[test]
fn source_ids_are_their_serialised_names() {
    for source in Source::ALL {
        assert_eq!(
            serde_json::to_string(&source).unwrap(),
            format!("\"{}\"", source.as_str())
        );
    }
    assert_eq!(
        Source::reason(&[Source::CloudTrail]),
        "no CloudTrail in this run"
    );
    let had = [Source::IamKeys, Source::RotationHistory];
    // Listings are alternatives; other sources are each needed, and one is enough to run.
    let needs = [Source::IamKeys, Source::SecretsManager];
    assert!(Source::missing(&needs, &had).is_empty());
    let needs = [Source::RotationHistory, Source::CloudTrail];
    assert!(Source::runnable(&needs, &had));
    assert_eq!(Source::missing(&needs, &had), [Source::CloudTrail]);
    assert!(!Source::runnable(&[Source::CloudTrail], &had));
    assert!(!Source::runnable(&[Source::SecretsManager], &had));
    assert_eq!(
        Source::reason(&Source::missing(
            &[Source::SecretsManager, Source::Inventory],
            &had
        )),
        "no inventory, no Secrets Manager listing in this run"
    );
}

/// A rule: its metadata and its evaluation.
pub struct Rule {
    pub meta: RuleMeta,
    /// Runs it over the joined facts with the run's rule options.
    pub evaluate: fn(&EvalCtx, &RuleOptions) -> Vec<Finding>,
}

/// Runs every rule, applies the waivers, and returns the findings in a stable order: severity (worst first), rule,
/// credential, message.
pub fn evaluate(facts: &Facts, as_of: Timestamp) -> Vec<Finding> {
    evaluate_selected(&EvalCtx::new(facts, as_of), |_| true)
}

/// Runs the rules `selected` accepts (the assessment leaves out those whose sources the run
/// lacks), applies the waivers, and returns the findings in the canonical order.
pub fn evaluate_selected(ctx: &EvalCtx, selected: impl Fn(&Rule) -> bool) -> Vec<Finding> {
    let options = RuleOptions::of(ctx.policy);
    let mut findings: Vec<Finding> = RULES
        .iter()
        .filter(|r| selected(r))
        .flat_map(|r| (r.evaluate)(ctx, &options))
        .collect();
    waiver_expired::apply(ctx, &mut findings);
    sort_findings(&mut findings);
    findings
}

/// The canonical order of findings in every output.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.rule.cmp(&b.rule))
            .then_with(|| a.credential.cmp(&b.credential))
            .then_with(|| a.message.cmp(&b.message))
    });
}

#[cfg(test)]
pub(crate) mod testkit;

#[cfg(test)]
mod tests {
    use super::testkit::{as_of, declare, event, facts, key, secret};
    use super::*;
    use crate::model::{AuthWindow, UsageBucket};
    use crate::model::{CredentialKind, EventType};

    #[test]
    fn rule_texts_show_the_configured_numbers() {
        let mut options = RuleOptions::default();
        let mut policy = Policy::default();
        let texts = |options: &RuleOptions, policy: &Policy| -> Vec<String> {
            RULES
                .iter()
                .flat_map(|r| {
                    let m = &r.meta;
                    [
                        m.title,
                        m.finds,
                        m.rationale,
                        m.severity_varies.unwrap_or(""),
                    ]
                    .map(|t| format!("{}: {}", m.id, m.render(t, options, policy)))
                })
                .collect()
        };
        for text in texts(&options, &policy) {
            assert!(!text.contains('{'), "a placeholder is left: {text}");
        }
        let secret = find("secret-unused").unwrap();
        assert_eq!(
            secret.meta.render_default(secret.meta.title),
            "Secret not accessed for 90 days"
        );
        options.secret_unused.days = 30;
        options.auth_failure_spike.min_rate = 0.07;
        options.incident_not_remediated.access_denied_burst_minutes = 90;
        options.unused_credential.grace_days = 3;
        policy.breach_factor = 2.0;
        policy.due_soon_hours = 12;
        let render = |id: &str, text: fn(&RuleMeta) -> &'static str| {
            let m = &find(id).unwrap().meta;
            m.render(text(m), &options, &policy)
        };
        assert_eq!(
            render("secret-unused", |m| m.title),
            "Secret not accessed for 30 days"
        );
        assert_eq!(
            render("rotation-due-soon", |m| m.title),
            "Rotation due within 12 hours"
        );
        assert!(render("auth-failure-spike", |m| m.finds).contains("above 7% of calls"));
        assert!(render("incident-not-remediated", |m| m.finds).contains("(5 within 90 minutes)"));
        assert!(render("unused-credential", |m| m.rationale).contains("a 3-day grace"));
        let overdue = render("rotation-overdue", |m| m.rationale);
        assert!(overdue.contains("2x the interval"), "{overdue}");
        assert!(
            overdue.contains("a 60-day-old key on a 30-day policy"),
            "{overdue}"
        );
    }

    /// Every rule at the widest numbers a policy type can hold (beyond what inventory.toml
    /// accepts) and at dates at the ends of time: nothing panics.
    #[test]
    fn no_rule_panics_on_extreme_numbers_or_dates() {
        let mut old = key("AKIAOLD0000000000001", "svc", 10);
        old.created_at = Some(Timestamp::MIN_UTC);
        old.last_used_at = Some(Timestamp::MIN_UTC);
        let mut future = key("AKIAFUTURE0000000001", "svc", 10);
        future.created_at = Some(Timestamp::MAX_UTC);
        let mut stuck = secret("prod/db", 3);
        stuck.last_rotated_at = Some(Timestamp::MAX_UTC);
        let mut declared = vec![
            declare(&old.id, CredentialKind::IamAccessKey),
            declare(&future.id, CredentialKind::IamAccessKey),
            declare("prod/db", CredentialKind::Secret),
        ];
        for d in &mut declared {
            d.interval_days = Some(u32::MAX);
            d.max_uses = Some(u64::MAX);
        }
        let events = vec![
            event(
                &old.id,
                EventType::RotationCompleted,
                Timestamp::MIN_UTC,
                None,
            ),
            event(
                &future.id,
                EventType::RotationCompleted,
                Timestamp::MAX_UTC,
                None,
            ),
        ];
        let mut facts = facts(vec![old.clone(), future, stuck], declared, events);
        let policy = &mut facts.inventory.policy;
        for interval in policy.classes.values_mut() {
            *interval = u32::MAX;
        }
        policy.due_soon_hours = u32::MAX;
        policy.breach_factor = f64::MAX;
        testkit::set_options(&mut facts, |o| {
            o.unused_credential.days = u32::MAX;
            o.unused_credential.grace_days = u32::MAX;
            o.multiple_active_keys.overlap_hours = u32::MAX;
            o.inactive_key_lingering.days = u32::MAX;
            o.secret_unused.days = u32::MAX;
            o.rotation_failing.stuck_hours = u32::MAX;
            o.audit_trail_gap.match_hours = u32::MAX;
            o.tag_drift.tolerance_hours = u32::MAX;
            o.anomalous_usage.detection_hours = u32::MAX;
            o.anomalous_usage.baseline_days = u32::MAX;
            o.anomalous_usage.rate_sigmas = f64::MAX;
            o.auth_failure_spike.detection_hours = u32::MAX;
        });
        facts.usage = [Timestamp::MIN_UTC, as_of()]
            .into_iter()
            .map(|hour| UsageBucket {
                credential_id: old.id.clone(),
                hour,
                calls: u64::MAX / 4,
                ..UsageBucket::default()
            })
            .collect();
        facts.auth_windows = vec![AuthWindow {
            credential_id: old.id.clone(),
            start: as_of(),
            calls: u64::MAX,
            auth_errors: u64::MAX,
        }];
        for at in [as_of(), Timestamp::MIN_UTC, Timestamp::MAX_UTC] {
            let findings = evaluate(&facts, at);
            let ctx = EvalCtx::new(&facts, at);
            for view in &ctx.credentials {
                let _ = ctx.due(view);
            }
            assert!(findings.iter().all(|f| !f.rule.is_empty()));
        }
        let config = crate::plan::PlanConfig {
            critical_hours: u32::MAX,
            ..Default::default()
        };
        assert_eq!(config.due(as_of(), Severity::Critical), Timestamp::MAX_UTC);
    }
}
