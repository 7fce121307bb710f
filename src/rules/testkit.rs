//! Small builders for rule tests: a fleet of a few credentials at a pinned as-of time.

use std::collections::BTreeMap;

use chrono::{Duration, TimeZone, Utc};

use super::{Rule, RuleOptions};

use crate::join::EvalCtx;
use crate::model::{
    CoverageEntry, CredentialKind, DeclaredCredential, EventType, Facts, Finding, KeyStatus,
    ObservedCredential, Owner, OwnerStatus, RiskClass, RotationEvent, Timestamp, Trigger,
};

pub const ACCOUNT: &str = "111122223333";

/// The pinned evaluation time of every rule test.
pub fn as_of() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
}

pub fn days_ago(days: i64) -> Timestamp {
    as_of() - Duration::days(days)
}

pub fn hours_ago(hours: i64) -> Timestamp {
    as_of() - Duration::hours(hours)
}

/// An active IAM key of `user`, created `age` days ago and used yesterday.
pub fn key(id: &str, user: &str, age: i64) -> ObservedCredential {
    ObservedCredential {
        id: id.into(),
        kind: CredentialKind::IamAccessKey,
        account: ACCOUNT.into(),
        region: "global".into(),
        name: user.into(),
        status: KeyStatus::Active,
        created_at: Some(days_ago(age)),
        last_rotated_at: Some(days_ago(age)),
        last_used_at: Some(days_ago(1)),
        last_used_region: Some("us-east-1".into()),
        last_used_service: Some("s3".into()),
        rotation_enabled: None,
        rotation_interval_days: None,
        schedule_expression: None,
        next_rotation_at: None,
        last_changed_at: None,
        pending_version: false,
        tags: BTreeMap::new(),
        password_enabled: false,
    }
}

/// A secret rotated by AWS every 14 days, last `age` days ago, accessed yesterday.
pub fn secret(name: &str, age: i64) -> ObservedCredential {
    ObservedCredential {
        id: format!("arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{name}-AbCdEf"),
        kind: CredentialKind::Secret,
        account: ACCOUNT.into(),
        region: "us-east-1".into(),
        name: name.into(),
        status: KeyStatus::Active,
        created_at: Some(days_ago(400)),
        last_rotated_at: Some(days_ago(age)),
        last_used_at: Some(days_ago(1)),
        last_used_region: None,
        last_used_service: None,
        rotation_enabled: Some(true),
        rotation_interval_days: Some(14),
        schedule_expression: None,
        next_rotation_at: Some(days_ago(age) + Duration::days(14)),
        last_changed_at: Some(days_ago(age)),
        pending_version: false,
        tags: BTreeMap::new(),
        password_enabled: false,
    }
}

/// A class-A declaration owned by the active owner `team`, automated.
pub fn declare(id: &str, kind: CredentialKind) -> DeclaredCredential {
    DeclaredCredential {
        id: id.into(),
        kind,
        class: Some(RiskClass::A),
        owner: Some("team".into()),
        consumers: vec!["agent-1".into()],
        automated: true,
        interval_days: None,
        max_uses: None,
        account: None,
        description: None,
        line: 1,
    }
}

/// Declares every observed credential (class A, owned, automated).
pub fn declare_all(observed: &[ObservedCredential]) -> Vec<DeclaredCredential> {
    observed.iter().map(|o| declare(&o.id, o.kind)).collect()
}

pub fn event(
    credential: &str,
    event_type: EventType,
    time: Timestamp,
    fingerprint: Option<&str>,
) -> RotationEvent {
    RotationEvent {
        time,
        credential_id: credential.into(),
        event_type,
        trigger: Some(Trigger::Scheduled),
        fingerprint: fingerprint.map(str::to_string),
        details: None,
        source: "history".into(),
    }
}

/// Facts with the active owner `team`, full coverage of the account, and the given parts.
pub fn facts(
    observed: Vec<ObservedCredential>,
    declared: Vec<DeclaredCredential>,
    events: Vec<RotationEvent>,
) -> Facts {
    let mut facts = Facts::default();
    facts.inventory.owners.push(Owner {
        id: "team".into(),
        name: None,
        email: None,
        status: OwnerStatus::Active,
    });
    facts.inventory.credentials = declared;
    facts.observed = observed;
    facts.events = events;
    facts.coverage = [
        "iam:list-access-keys",
        "iam:credential-report",
        "secretsmanager:list-secrets",
    ]
    .into_iter()
    .map(|api| CoverageEntry {
        account: ACCOUNT.into(),
        region: "global".into(),
        api: api.into(),
        ok: true,
        error: None,
        records: 1,
    })
    .collect();
    facts
}

/// Changes the rule options of `facts`.
pub fn set_options(facts: &mut Facts, change: impl FnOnce(&mut RuleOptions)) {
    let mut options = RuleOptions::of(&facts.inventory.policy);
    change(&mut options);
    options.store(&mut facts.inventory.policy);
}

/// Runs one rule alone and returns (rule, credential) of its findings.
pub fn run(rule: &Rule, facts: &Facts) -> Vec<Finding> {
    let ctx = EvalCtx::new(facts, as_of());
    let findings = (rule.evaluate)(&ctx, &RuleOptions::of(&facts.inventory.policy));
    for f in &findings {
        assert_eq!(f.rule, rule.meta.id, "a rule reports under its own id");
    }
    findings
}

/// The credential ids a rule flagged, sorted.
pub fn flagged(rule: &Rule, facts: &Facts) -> Vec<String> {
    let mut ids: Vec<String> = run(rule, facts).into_iter().map(|f| f.credential).collect();
    ids.sort();
    ids
}
