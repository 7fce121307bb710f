//! The join of one run's facts, as rules, queries and the plan see them: each observed
//! credential matched to its declaration ([`CredentialView`]), the names a credential goes by
//! ([`aliases`]), the evaluation context at an explicit as-of time ([`EvalCtx`]), and the time
//! helpers they share (saturating arithmetic, [`fmt_time`]).

use std::collections::HashMap;

use chrono::Duration;

use crate::model::{
    CredentialKind, DeclaredCredential, EventType, Facts, Finding, KeyStatus, ObservedCredential,
    Policy, RiskClass, RotationEvent, Severity, Timestamp,
};

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

/// Every name a credential goes by: its public id, its declared id, and a secret's name
/// (history and CloudTrail may use any of them), sorted and without repeats.
pub fn aliases<'a>(view: &CredentialView<'a>) -> Vec<&'a str> {
    let mut names = vec![view.id];
    if let Some(d) = view.declared {
        names.push(d.id.as_str());
    }
    if let Some(o) = view.observed.filter(|o| o.kind == CredentialKind::Secret) {
        names.push(o.name.as_str());
    }
    names.sort_unstable();
    names.dedup();
    names
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
        let mut extended = false;
        for alias in aliases(view).into_iter().filter(|a| *a != view.id) {
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
        rule: &str,
        severity: Severity,
        view: &CredentialView,
        message: String,
        evidence: Vec<(&str, String)>,
    ) -> Finding {
        Finding {
            rule: rule.to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::{as_of, key, secret};

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
}
