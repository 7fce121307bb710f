//! The rule engine: rule metadata, the evaluation context (declared and observed credentials
//! joined, at an explicit as-of time), and `evaluate`, which runs every rule over one run's facts.

use std::collections::HashMap;

use chrono::Duration;

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

    /// When the next rotation is due.
    pub fn due(&self, view: &CredentialView) -> Option<Timestamp> {
        self.last_rotation(view).map(|t| t + self.interval(view))
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
            message,
            evidence: evidence
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            waiver: None,
        }
    }
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
    let ctx = EvalCtx::new(facts, as_of);
    let mut findings: Vec<Finding> = RULES.iter().flat_map(|r| (r.evaluate)(&ctx)).collect();
    waiver_expired::apply(&ctx, &mut findings);
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
