//! The rule engine: rule metadata, the evaluation context (declared and observed credentials
//! joined, at an explicit as-of time), and `evaluate`, which runs every rule over one run's facts.

use std::collections::HashMap;

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::inventory::Policy;
use crate::model::{
    CredentialKind, DeclaredCredential, EventType, Facts, Finding, KeyStatus, ObservedCredential,
    RiskClass, RotationEvent, Severity, Timestamp,
};

mod registry;
pub use registry::{RULES, find, ids};

pub mod anomalous_usage;
mod audit_trail_gap;
pub mod auth_failure_spike;
mod credential_reuse;
mod inactive_key_lingering;
pub mod incident_not_remediated;
mod multiple_active_keys;
mod orphaned_inventory_entry;
mod root_access_key;
mod rotation_due_soon;
mod rotation_failing;
mod rotation_not_automated;
mod rotation_overdue;
mod rotation_schedule_drift;
mod secret_unused;
mod tag_drift;
mod unclassified_credential;
mod unmanaged_credential;
mod unowned_credential;
mod unused_credential;
mod usage_limit_exceeded;
mod waiver_expired;

/// What a rule is, for `credaudit rules`, `explain` and the reports.
#[derive(Debug)]
pub struct RuleMeta {
    /// Stable kebab-case id; control catalogues refer to it.
    pub id: &'static str,
    pub title: &'static str,
    pub default_severity: Severity,
    /// Why it matters.
    pub rationale: &'static str,
    /// What to do about a finding.
    pub remediation: &'static str,
    /// The evidence sources it reads. It runs only when the run had them (see
    /// [`Source::runnable`] and [`Source::missing`]); otherwise it is listed as not run, with
    /// the reason, and the controls it tests are not assessed.
    pub sources: &'static [Source],
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
    pub evaluate: fn(&EvalCtx) -> Vec<Finding>,
}

/// One credential as the rules see it: what was observed, what was declared, or both.
#[derive(Debug, Clone, Copy)]
pub struct CredentialView<'a> {
    /// The public id: the observed id where there is one, else the declared id.
    pub id: &'a str,
    pub kind: CredentialKind,
    pub observed: Option<&'a ObservedCredential>,
    pub declared: Option<&'a DeclaredCredential>,
}

impl<'a> CredentialView<'a> {
    /// The declared class; `None` means unclassified (evaluated as class A).
    pub fn class(&self) -> Option<RiskClass> {
        self.declared.and_then(|d| d.class)
    }

    /// The class the policy applies: unclassified credentials are treated as class A.
    pub fn effective_class(&self) -> RiskClass {
        self.class().unwrap_or(RiskClass::A)
    }

    /// Whether the credential can be used now (deactivated keys cannot).
    pub fn is_active(&self) -> bool {
        self.observed.is_none_or(|o| o.status == KeyStatus::Active)
    }

    pub fn owner(&self) -> Option<&'a str> {
        self.declared.and_then(|d| d.owner.as_deref()).or_else(|| {
            self.observed
                .and_then(|o| o.tags.get("owner").map(String::as_str))
        })
    }

    pub fn account(&self) -> Option<&'a str> {
        self.observed
            .map(|o| o.account.as_str())
            .or_else(|| self.declared.and_then(|d| d.account.as_deref()))
    }

    pub fn region(&self) -> Option<&'a str> {
        self.observed.map(|o| o.region.as_str())
    }

    /// Who holds the credential: the IAM user of an access key, `root` for the root user's
    /// key, the secret's name (from AWS, else from a declared secret ARN or name).
    pub fn principal(&self) -> Option<String> {
        match (self.kind, self.observed) {
            (CredentialKind::RootAccessKey, _) => Some("root".to_string()),
            (_, Some(o)) if !o.name.is_empty() => Some(o.name.clone()),
            (CredentialKind::Secret, None) => Some(secret_name(self.id).to_string()),
            _ => None,
        }
    }
}

/// A secret's name from its ARN (`arn:aws:secretsmanager:region:account:secret:NAME-AbCdEf`,
/// without the six-character suffix AWS adds), or the id itself when it is a name.
fn secret_name(id: &str) -> &str {
    match id.strip_prefix("arn:") {
        Some(_) => {
            let name = id.splitn(7, ':').nth(6).unwrap_or(id);
            match name.rsplit_once('-') {
                Some((base, suffix))
                    if suffix.len() == 6 && suffix.bytes().all(|b| b.is_ascii_alphanumeric()) =>
                {
                    base
                }
                _ => name,
            }
        }
        None => id,
    }
}

/// Everything a rule may look at: the facts of one run, joined, at one point in time.
pub struct EvalCtx<'a> {
    pub as_of: Timestamp,
    pub policy: &'a Policy,
    pub facts: &'a Facts,
    /// Observed credentials (each joined to its declaration, if any), then declared credentials
    /// that matched nothing observed.
    pub credentials: Vec<CredentialView<'a>>,
    events_by_credential: HashMap<&'a str, Vec<&'a RotationEvent>>,
}

impl<'a> EvalCtx<'a> {
    pub fn new(facts: &'a Facts, as_of: Timestamp) -> Self {
        let inventory = &facts.inventory;
        let by_id: HashMap<&str, &DeclaredCredential> = inventory
            .credentials
            .iter()
            .map(|d| (d.id.as_str(), d))
            .collect();
        let mut matched: std::collections::HashSet<&str> = Default::default();
        let mut credentials =
            Vec::with_capacity(facts.observed.len() + inventory.credentials.len());
        for o in &facts.observed {
            let declared = by_id.get(o.id.as_str()).copied().or_else(|| {
                (o.kind == CredentialKind::Secret)
                    .then(|| by_id.get(o.name.as_str()).copied())
                    .flatten()
                    .filter(|d| d.account.as_deref().is_none_or(|a| a == o.account))
            });
            if let Some(d) = declared {
                matched.insert(d.id.as_str());
            }
            credentials.push(CredentialView {
                id: &o.id,
                kind: o.kind,
                observed: Some(o),
                declared,
            });
        }
        for d in &inventory.credentials {
            if !matched.contains(d.id.as_str()) {
                credentials.push(CredentialView {
                    id: &d.id,
                    kind: d.kind,
                    observed: None,
                    declared: Some(d),
                });
            }
        }
        let mut events_by_credential: HashMap<&str, Vec<&RotationEvent>> = HashMap::new();
        for e in &facts.events {
            events_by_credential
                .entry(e.credential_id.as_str())
                .or_default()
                .push(e);
        }
        for events in events_by_credential.values_mut() {
            events.sort_by_key(|e| e.time);
        }
        EvalCtx {
            as_of,
            policy: &inventory.policy,
            facts,
            credentials,
            events_by_credential,
        }
    }

    /// History and lifecycle events of a credential (by its public id, or its declared id
    /// where that differs), oldest first.
    pub fn events(&self, view: &CredentialView) -> Vec<&'a RotationEvent> {
        let mut events: Vec<&RotationEvent> = self
            .events_by_credential
            .get(view.id)
            .cloned()
            .unwrap_or_default();
        // The same credential may be named by its declared id, or (a secret) by its name.
        let mut aliases: Vec<&str> = Vec::new();
        if let Some(d) = view.declared {
            aliases.push(d.id.as_str());
        }
        if let Some(o) = view.observed
            && o.kind == CredentialKind::Secret
        {
            aliases.push(o.name.as_str());
        }
        aliases.sort_unstable();
        aliases.dedup();
        let mut extended = false;
        for alias in aliases.into_iter().filter(|a| *a != view.id) {
            if let Some(more) = self.events_by_credential.get(alias) {
                events.extend(more.iter().copied());
                extended = true;
            }
        }
        if extended {
            events.sort_by_key(|e| e.time);
        }
        events
    }

    /// Rotation interval of a credential: its declared override, else its class's.
    pub fn interval(&self, view: &CredentialView) -> Duration {
        let days = view
            .declared
            .and_then(|d| d.interval_days)
            .unwrap_or_else(|| self.policy.class_interval(view.class()));
        Duration::days(i64::from(days))
    }

    /// When the credential's value last changed: the latest of what AWS shows (a key's
    /// creation, a secret's last rotation or creation) and the last completed rotation in history.
    pub fn last_rotation(&self, view: &CredentialView) -> Option<Timestamp> {
        let aws = view
            .observed
            .and_then(|o| o.last_rotated_at.or(o.created_at));
        let history = self
            .events(view)
            .iter()
            .rev()
            .find(|e| e.event_type == EventType::RotationCompleted)
            .map(|e| e.time);
        aws.max(history)
    }

    /// When the next rotation is due (the end of time when that is past it).
    pub fn due(&self, view: &CredentialView) -> Option<Timestamp> {
        self.last_rotation(view)
            .map(|t| add_saturating(t, self.interval(view)))
    }

    /// Whether history was supplied at all (rules about history gaps need it).
    pub fn has_history(&self) -> bool {
        self.facts.events.iter().any(|e| e.source == "history")
    }

    pub fn hours(&self, hours: u32) -> Duration {
        Duration::hours(i64::from(hours))
    }

    /// A finding about `view`, filled with its kind, account, region and owner.
    pub fn finding(
        &self,
        rule: &RuleMeta,
        severity: Severity,
        view: &CredentialView,
        message: String,
        evidence: Vec<(&str, String)>,
    ) -> Finding {
        Finding {
            rule: rule.id.to_string(),
            severity,
            credential: view.id.to_string(),
            kind: view.kind,
            account: view.account().map(str::to_string),
            region: view.region().map(str::to_string),
            owner: view.owner().map(str::to_string),
            principal: view.principal(),
            message,
            evidence: evidence
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            waiver: None,
        }
    }
}

/// `t + d`, or the first or last representable time when that is out of range: no configured
/// or input-derived duration can make time arithmetic panic.
pub fn add_saturating(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add_signed(d).unwrap_or(if d < Duration::zero() {
        Timestamp::MIN_UTC
    } else {
        Timestamp::MAX_UTC
    })
}

/// `t - d`, saturating like [`add_saturating`].
pub fn sub_saturating(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_sub_signed(d).unwrap_or(if d < Duration::zero() {
        Timestamp::MAX_UTC
    } else {
        Timestamp::MIN_UTC
    })
}

/// A time as the evidence shows it.
pub fn fmt_time(t: Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// An age in whole days (rounded down), for messages.
pub fn days(d: Duration) -> i64 {
    d.num_days()
}

/// Runs every rule, applies the waivers, and returns the findings in a stable order: severity (worst first), rule,
/// credential, message.
pub fn evaluate(facts: &Facts, as_of: Timestamp) -> Vec<Finding> {
    evaluate_selected(&EvalCtx::new(facts, as_of), |_| true)
}

/// Runs the rules `selected` accepts (the assessment leaves out those whose sources the run
/// lacks), applies the waivers, and returns the findings in the canonical order.
pub fn evaluate_selected(ctx: &EvalCtx, selected: impl Fn(&Rule) -> bool) -> Vec<Finding> {
    let mut findings: Vec<Finding> = RULES
        .iter()
        .filter(|r| selected(r))
        .flat_map(|r| (r.evaluate)(ctx))
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

    #[test]
    fn every_finding_names_its_principal() {
        let user_key = key("AKIATEST000000000001", "svc-reader", 3);
        let mut root = key(
            "arn:aws:iam::111122223333:root/access-key-1",
            "<root_account>",
            3,
        );
        root.kind = CredentialKind::RootAccessKey;
        let observed_secret = secret("prod/db", 3);
        let view = |id: &'static str, kind, observed| CredentialView {
            id,
            kind,
            observed,
            declared: None,
        };
        assert_eq!(
            view(
                "AKIATEST000000000001",
                CredentialKind::IamAccessKey,
                Some(&user_key)
            )
            .principal()
            .as_deref(),
            Some("svc-reader")
        );
        assert_eq!(
            view("r", CredentialKind::RootAccessKey, Some(&root))
                .principal()
                .as_deref(),
            Some("root")
        );
        assert_eq!(
            view("s", CredentialKind::Secret, Some(&observed_secret))
                .principal()
                .as_deref(),
            Some("prod/db")
        );
        // Declared only: the name inside a secret ARN, without AWS's random suffix.
        let declared_arn =
            "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/api-key-Xy12Zq";
        assert_eq!(
            view(declared_arn, CredentialKind::Secret, None)
                .principal()
                .as_deref(),
            Some("prod/api-key")
        );
        assert_eq!(
            view("AKIANOTSEEN", CredentialKind::IamAccessKey, None).principal(),
            None
        );
    }

    #[test]
    fn time_arithmetic_saturates_at_the_ends_of_time() {
        let huge_days = Duration::days(i64::from(u32::MAX));
        let huge_hours = Duration::hours(i64::from(u32::MAX));
        assert_eq!(add_saturating(as_of(), huge_days), Timestamp::MAX_UTC);
        assert_eq!(sub_saturating(as_of(), huge_hours), Timestamp::MIN_UTC);
        assert_eq!(add_saturating(as_of(), -huge_days), Timestamp::MIN_UTC);
        assert_eq!(sub_saturating(as_of(), -huge_days), Timestamp::MAX_UTC);
        assert_eq!(
            add_saturating(Timestamp::MAX_UTC, Duration::MAX),
            Timestamp::MAX_UTC
        );
        assert_eq!(
            sub_saturating(Timestamp::MIN_UTC, Duration::MAX),
            Timestamp::MIN_UTC
        );
        assert_eq!(
            add_saturating(Timestamp::MIN_UTC, Duration::MIN),
            Timestamp::MIN_UTC
        );
        assert_eq!(
            sub_saturating(Timestamp::MAX_UTC, Duration::MIN),
            Timestamp::MAX_UTC
        );
        // In range, they are plain arithmetic.
        assert_eq!(
            add_saturating(as_of(), Duration::days(14)),
            as_of() + Duration::days(14)
        );
        assert_eq!(
            sub_saturating(as_of(), Duration::hours(24)),
            as_of() - Duration::hours(24)
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
        policy.unused_days = u32::MAX;
        policy.unused_grace_days = u32::MAX;
        policy.key_overlap_hours = u32::MAX;
        policy.inactive_key_days = u32::MAX;
        policy.secret_unused_days = u32::MAX;
        policy.pending_stuck_hours = u32::MAX;
        policy.audit_match_hours = u32::MAX;
        policy.tag_tolerance_hours = u32::MAX;
        policy.anomalous_usage.detection_hours = u32::MAX;
        policy.anomalous_usage.baseline_days = u32::MAX;
        policy.anomalous_usage.rate_sigmas = f64::MAX;
        policy.auth_failure_spike.detection_hours = u32::MAX;
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
