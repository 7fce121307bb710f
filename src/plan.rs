//! Findings -> remediation plan: one concrete, dated action per open finding, grouped into one
//! job per credential for a rotation pipeline; and the hygiene score per owner and for the fleet.
//!
//! The plan never reads a secret value and never changes AWS: it only *proposes* AWS CLI
//! commands. Every value in a command that came from AWS or an input file is quoted for a POSIX
//! shell, so a hostile user or secret name cannot inject shell syntax.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::join::{CredentialView, EvalCtx, fmt_time};
use crate::model::{CredentialKind, Facts, Finding, Severity, Timestamp};

/// What to do about a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[derive(strum::IntoStaticStr, strum::Display, strum::VariantArray)]
#[strum(serialize_all = "kebab-case")]
pub enum ActionKind {
    RotateNow,
    DeactivateKey,
    DeleteKey,
    EnableRotation,
    AlignSchedule,
    AddToInventory,
    AssignOwner,
    Classify,
    RemoveStaleEntry,
    InvestigateAndEmergencyRotate,
    RenewWaiver,
    FixTags,
    FixRotation,
    RecordHistory,
    ScheduleRotation,
    /// A secret nothing reads: confirm no consumer needs it, then schedule its deletion (with a
    /// recovery window).
    ReviewAndDelete,
    /// A finding of a rule the plan has no remediation for: look at it.
    Investigate,
}

impl ActionKind {
    /// The kebab-case name, as in the CSV and JSON.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The action that resolves a finding of `rule`. A rule the plan does not know gets
    /// [`ActionKind::Investigate`]; this never fails.
    pub fn for_rule(rule: &str) -> ActionKind {
        match rule {
            "unmanaged-credential" => Self::AddToInventory,
            "orphaned-inventory-entry" => Self::RemoveStaleEntry,
            "rotation-overdue" | "credential-reuse" | "usage-limit-exceeded" => Self::RotateNow,
            "rotation-due-soon" => Self::ScheduleRotation,
            "unclassified-credential" => Self::Classify,
            "unowned-credential" => Self::AssignOwner,
            // multiple-active-keys reports the older key, so deactivating the finding's
            // credential retires the old one and keeps the new.
            "unused-credential" | "multiple-active-keys" => Self::DeactivateKey,
            "root-access-key" | "inactive-key-lingering" => Self::DeleteKey,
            "rotation-not-automated" => Self::EnableRotation,
            "rotation-schedule-drift" => Self::AlignSchedule,
            "rotation-failing" => Self::FixRotation,
            "audit-trail-gap" => Self::RecordHistory,
            "tag-drift" => Self::FixTags,
            "anomalous-usage" | "auth-failure-spike" | "incident-not-remediated" => {
                Self::InvestigateAndEmergencyRotate
            }
            "secret-unused" => Self::ReviewAndDelete,
            "waiver-expired" => Self::RenewWaiver,
            _ => Self::Investigate,
        }
    }

    /// Emergency actions are always priority 1, whatever their findings' severity.
    pub fn is_emergency(self) -> bool {
        self == Self::InvestigateAndEmergencyRotate
    }

    /// Whether the action changes the credential's value (a job with one asks for a rotation).
    pub fn is_rotation(self) -> bool {
        matches!(self, Self::RotateNow | Self::InvestigateAndEmergencyRotate)
    }
}

/// How soon an action is due, by the severity of its finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanConfig {
    pub critical_hours: u32,
    pub high_hours: u32,
    pub medium_hours: u32,
    pub low_hours: u32,
    pub info_hours: u32,
}

impl Default for PlanConfig {
    fn default() -> Self {
        PlanConfig {
            critical_hours: 24,
            high_hours: 72,
            medium_hours: 14 * 24,
            low_hours: 30 * 24,
            info_hours: 48,
        }
    }
}

impl PlanConfig {
    /// Hours from the as-of time until an action of this severity is due.
    pub fn hours(&self, severity: Severity) -> u32 {
        match severity {
            Severity::Critical => self.critical_hours,
            Severity::High => self.high_hours,
            Severity::Medium => self.medium_hours,
            Severity::Low => self.low_hours,
            Severity::Info => self.info_hours,
        }
    }

    /// When an action of this severity is due.
    pub fn due(&self, as_of: Timestamp, severity: Severity) -> Timestamp {
        crate::join::add_saturating(as_of, Duration::hours(i64::from(self.hours(severity))))
    }
}

/// Priority of an action: 1 for critical … 5 for info; emergency actions are always 1.
pub fn priority(severity: Severity, action: ActionKind) -> u32 {
    if action.is_emergency() {
        return 1;
    }
    match severity {
        Severity::Critical => 1,
        Severity::High => 2,
        Severity::Medium => 3,
        Severity::Low => 4,
        Severity::Info => 5,
    }
}

/// One action of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// 1 = most urgent. Actions are sorted by priority, then due time, then credential.
    pub priority: u32,
    pub action: ActionKind,
    pub severity: Severity,
    pub credential: String,
    pub kind: String,
    pub account: String,
    pub region: String,
    pub owner: String,
    /// RFC 3339.
    pub due: String,
    /// What to do, in a sentence.
    pub description: String,
    /// The AWS CLI command that carries it out, where one applies (never one that reads a
    /// secret value).
    pub command: Option<String>,
    /// Rule ids and finding fingerprints this action resolves.
    pub rules: Vec<String>,
    pub fingerprints: Vec<String>,
    /// `framework:control` ids this action restores.
    pub controls: Vec<String>,
}

/// One job per credential: every action for it, for a rotation pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub credential: String,
    pub kind: String,
    pub account: String,
    pub region: String,
    pub owner: String,
    /// The earliest due time of its actions.
    pub due: String,
    pub severity: Severity,
    /// True when the job asks for a rotation (rotate-now or emergency rotation).
    pub rotate: bool,
    pub emergency: bool,
    pub actions: Vec<Action>,
}

/// A 0-100 hygiene score and its parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Owner id, or `fleet`.
    pub scope: String,
    pub score: u32,
    pub credentials: usize,
    /// Share of credentials with automated rotation, 0-1.
    pub automation: f64,
    /// Share of credentials within their rotation interval, 0-1.
    pub in_policy: f64,
    /// Severity-weighted open findings per credential.
    pub finding_load: f64,
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub jobs: Vec<Job>,
    pub fleet_score: Score,
    pub owner_scores: Vec<Score>,
}

/// The hygiene score in one paragraph, for the HTML report and the docs.
pub const SCORE_FORMULA: &str = "The hygiene score (0-100) is computed per owner and for the \
whole fleet over the active credentials in scope: every observed credential that is not \
deactivated, plus every declared credential that was not observed. Credentials count towards \
their declared owner, or towards `unowned` when none is declared. Three parts: automation is the \
share of credentials declared with automated rotation; in-policy is the share whose last rotation \
is no older than their rotation interval (a credential with no known rotation counts as out of \
policy); finding load is the sum of severity weights of open findings about the scope's \
credentials (critical 10, high 5, medium 2, low 1, info 0) divided by the number of credentials. \
Score = round(100 x (0.3 x automation + 0.4 x in-policy + 0.3 x max(0, 1 - finding load / 5))), \
clamped to 0-100. A scope with no credentials scores 100 with both shares at 1. Findings about \
deactivated keys add to the load of their owner and of the fleet, but do not add credentials.";

/// Weight of an open finding in the score's finding load.
pub fn severity_weight(severity: Severity) -> u32 {
    match severity {
        Severity::Critical => 10,
        Severity::High => 5,
        Severity::Medium => 2,
        Severity::Low => 1,
        Severity::Info => 0,
    }
}

/// Scope name of credentials without a declared owner.
pub const UNOWNED: &str = "unowned";

/// Scope name of the fleet score.
pub const FLEET: &str = "fleet";

/// Builds the remediation plan for the open (unwaived) `findings` of a run.
///
/// Every finding becomes part of exactly one action; findings of one credential that call for
/// the same [`ActionKind`] merge into one action listing all their rules and fingerprints.
/// `rule_controls` maps a rule id to the `framework:control` ids it tests. The result depends
/// only on the inputs, not on the order of `findings`.
///
/// The hygiene score follows [`SCORE_FORMULA`].
pub fn build(
    facts: &Facts,
    findings: &[Finding],
    rule_controls: &BTreeMap<String, Vec<String>>,
    as_of: Timestamp,
    config: &PlanConfig,
) -> Plan {
    let ctx = EvalCtx::new(facts, as_of);
    let mut views: HashMap<&str, &CredentialView> = HashMap::new();
    for v in &ctx.credentials {
        views.entry(v.id).or_insert(v);
    }

    let mut groups: BTreeMap<(&str, ActionKind), Vec<&Finding>> = BTreeMap::new();
    for f in findings {
        groups
            .entry((f.credential.as_str(), ActionKind::for_rule(&f.rule)))
            .or_default()
            .push(f);
    }
    let mut actions: Vec<(Timestamp, Action)> = groups
        .into_iter()
        .map(|((credential, kind), mut group)| {
            group.sort_by(|a, b| {
                a.rule
                    .cmp(&b.rule)
                    .then_with(|| b.severity.cmp(&a.severity))
                    .then_with(|| a.message.cmp(&b.message))
            });
            let view = views.get(credential).copied();
            make_action(&ctx, view, credential, kind, &group, rule_controls, config)
        })
        .collect();
    actions.sort_by(|(a_due, a), (b_due, b)| {
        a.priority
            .cmp(&b.priority)
            .then_with(|| a_due.cmp(b_due))
            .then_with(|| a.credential.cmp(&b.credential))
            .then_with(|| a.action.cmp(&b.action))
    });

    let jobs = build_jobs(&actions);
    let (fleet_score, owner_scores) = scores(&ctx, &views, findings);
    Plan {
        actions: actions.into_iter().map(|(_, a)| a).collect(),
        jobs,
        fleet_score,
        owner_scores,
    }
}

/// One action for the findings `group` (all of `credential`, all resolved by `kind`), with the
/// time it is due.
fn make_action(
    ctx: &EvalCtx,
    view: Option<&CredentialView>,
    credential: &str,
    kind: ActionKind,
    group: &[&Finding],
    rule_controls: &BTreeMap<String, Vec<String>>,
    config: &PlanConfig,
) -> (Timestamp, Action) {
    let severity = group
        .iter()
        .map(|f| f.severity)
        .max()
        .unwrap_or(Severity::Info);
    let due = config.due(ctx.as_of, severity);
    let credential_kind = group
        .first()
        .map(|f| f.kind)
        .or(view.map(|v| v.kind))
        .unwrap_or(CredentialKind::Other);
    let account = group
        .iter()
        .find_map(|f| f.account.as_deref())
        .or_else(|| view.and_then(|v| v.account()))
        .unwrap_or_default();
    let region = group
        .iter()
        .find_map(|f| f.region.as_deref())
        .or_else(|| view.and_then(|v| v.region()))
        .unwrap_or_default();
    let owner = group
        .iter()
        .find_map(|f| f.owner.as_deref())
        .unwrap_or_default();

    let pairs: BTreeSet<(&str, String)> = group
        .iter()
        .map(|f| (f.rule.as_str(), f.fingerprint()))
        .collect();
    let rules: BTreeSet<&str> = pairs.iter().map(|(rule, _)| *rule).collect();
    let controls: BTreeSet<&String> = rules
        .iter()
        .filter_map(|rule| rule_controls.get(*rule))
        .flatten()
        .collect();

    let target = Target::of(view, credential, credential_kind);
    let remedy = remedy(ctx, view, &target, kind, group);
    let reasons: Vec<String> = group
        .iter()
        .map(|f| format!("{}: {}", f.rule, f.message))
        .collect();
    let description = format!("{} Findings: {}.", remedy.instruction, reasons.join("; "));

    let action = Action {
        priority: priority(severity, kind),
        action: kind,
        severity,
        credential: credential.to_string(),
        kind: credential_kind.to_string(),
        account: account.to_string(),
        region: region.to_string(),
        owner: owner.to_string(),
        due: fmt_time(due),
        description,
        command: remedy.command,
        rules: pairs.iter().map(|(rule, _)| rule.to_string()).collect(),
        fingerprints: pairs.into_iter().map(|(_, fp)| fp).collect(),
        controls: controls.into_iter().cloned().collect(),
    };
    (due, action)
}

/// Groups sorted actions into one job per credential, worst and soonest first.
fn build_jobs(actions: &[(Timestamp, Action)]) -> Vec<Job> {
    let mut by_credential: BTreeMap<&str, Vec<&(Timestamp, Action)>> = BTreeMap::new();
    for entry in actions {
        by_credential
            .entry(entry.1.credential.as_str())
            .or_default()
            .push(entry);
    }
    let mut jobs: Vec<(Timestamp, Job)> = by_credential
        .into_iter()
        .filter_map(|(credential, entries)| {
            let due = entries.iter().map(|(due, _)| *due).min()?;
            let first = &entries.first()?.1;
            let severity = entries.iter().map(|(_, a)| a.severity).max()?;
            let owner = entries
                .iter()
                .map(|(_, a)| a.owner.as_str())
                .find(|o| !o.is_empty())
                .unwrap_or_default();
            Some((
                due,
                Job {
                    credential: credential.to_string(),
                    kind: first.kind.clone(),
                    account: first.account.clone(),
                    region: first.region.clone(),
                    owner: owner.to_string(),
                    due: fmt_time(due),
                    severity,
                    rotate: entries.iter().any(|(_, a)| a.action.is_rotation()),
                    emergency: entries.iter().any(|(_, a)| a.action.is_emergency()),
                    actions: entries.iter().map(|(_, a)| a.clone()).collect(),
                },
            ))
        })
        .collect();
    jobs.sort_by(|(a_due, a), (b_due, b)| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a_due.cmp(b_due))
            .then_with(|| a.credential.cmp(&b.credential))
    });
    jobs.into_iter().map(|(_, job)| job).collect()
}

/// Counts of one scope, before they become a [`Score`].
#[derive(Default)]
struct Tally {
    credentials: usize,
    automated: usize,
    in_policy: usize,
    weight: u64,
}

impl Tally {
    fn score(&self, scope: &str) -> Score {
        if self.credentials == 0 {
            return Score {
                scope: scope.to_string(),
                score: 100,
                credentials: 0,
                automation: 1.0,
                in_policy: 1.0,
                finding_load: 0.0,
            };
        }
        let n = self.credentials as f64;
        let automation = self.automated as f64 / n;
        let in_policy = self.in_policy as f64 / n;
        let finding_load = self.weight as f64 / n;
        let raw = 100.0
            * (0.3 * automation + 0.4 * in_policy + 0.3 * (1.0 - finding_load / 5.0).max(0.0));
        Score {
            scope: scope.to_string(),
            score: raw.round().clamp(0.0, 100.0) as u32,
            credentials: self.credentials,
            automation,
            in_policy,
            finding_load,
        }
    }
}

/// The fleet score and the owner scores (lowest score first, then owner id), per
/// [`SCORE_FORMULA`]. Owners are listed when they have at least one active credential.
fn scores(
    ctx: &EvalCtx,
    views: &HashMap<&str, &CredentialView>,
    findings: &[Finding],
) -> (Score, Vec<Score>) {
    let owner_of = |v: &CredentialView| -> String {
        v.declared
            .and_then(|d| d.owner.clone())
            .unwrap_or_else(|| UNOWNED.to_string())
    };
    let mut fleet = Tally::default();
    let mut owners: BTreeMap<String, Tally> = BTreeMap::new();
    for v in ctx.credentials.iter().filter(|v| v.is_active()) {
        let automated = v.declared.is_some_and(|d| d.automated);
        let in_policy = ctx
            .last_rotation(v)
            .is_some_and(|last| ctx.as_of - last <= ctx.interval(v));
        for tally in [&mut fleet, owners.entry(owner_of(v)).or_default()] {
            tally.credentials += 1;
            tally.automated += usize::from(automated);
            tally.in_policy += usize::from(in_policy);
        }
    }
    for f in findings {
        let weight = u64::from(severity_weight(f.severity));
        fleet.weight += weight;
        let owner = views
            .get(f.credential.as_str())
            .map(|v| owner_of(v))
            .unwrap_or_else(|| UNOWNED.to_string());
        if let Some(tally) = owners.get_mut(&owner) {
            tally.weight += weight;
        }
    }
    let mut owner_scores: Vec<Score> = owners
        .iter()
        .map(|(owner, tally)| tally.score(owner))
        .collect();
    owner_scores.sort_by(|a, b| a.score.cmp(&b.score).then_with(|| a.scope.cmp(&b.scope)));
    (fleet.score(FLEET), owner_scores)
}

/// What an action acts on, as far as a command needs to know.
enum Target<'a> {
    /// An IAM user's access key.
    IamKey { user: &'a str, key: &'a str },
    /// The root user's access key: no API can touch it.
    RootKey,
    /// A Secrets Manager secret.
    Secret {
        arn: &'a str,
        name: &'a str,
        region: &'a str,
    },
    /// Declared but not observed, or not an AWS credential: no command applies.
    Unobserved { id: &'a str, kind: CredentialKind },
}

impl<'a> Target<'a> {
    fn of(view: Option<&CredentialView<'a>>, id: &'a str, kind: CredentialKind) -> Self {
        if kind == CredentialKind::RootAccessKey {
            return Target::RootKey;
        }
        match view.and_then(|v| v.observed) {
            Some(o) if o.kind == CredentialKind::IamAccessKey => Target::IamKey {
                user: &o.name,
                key: &o.id,
            },
            Some(o) if o.kind == CredentialKind::RootAccessKey => Target::RootKey,
            Some(o) if o.kind == CredentialKind::Secret => Target::Secret {
                arn: &o.id,
                name: &o.name,
                region: &o.region,
            },
            _ => Target::Unobserved { id, kind },
        }
    }
}

/// What to do, in words, and the command that does it, if any.
struct Remedy {
    instruction: String,
    command: Option<String>,
}

impl Remedy {
    fn manual(instruction: String) -> Self {
        Remedy {
            instruction,
            command: None,
        }
    }

    fn with(instruction: String, command: String) -> Self {
        Remedy {
            instruction,
            command: Some(command),
        }
    }
}

const ROOT_KEY_MANUAL: &str = "Root access keys can only be deleted by the root user, in the \
AWS console (account menu > Security credentials); no CLI command applies. Give the automation \
that used it an IAM role.";

fn remedy(
    ctx: &EvalCtx,
    view: Option<&CredentialView>,
    target: &Target,
    kind: ActionKind,
    group: &[&Finding],
) -> Remedy {
    let rules: BTreeSet<&str> = group.iter().map(|f| f.rule.as_str()).collect();
    match kind {
        ActionKind::RotateNow => rotate(view, target, "Rotate now"),
        ActionKind::ScheduleRotation => {
            let when = view
                .and_then(|v| ctx.due(v))
                .map(|t| format!("before it falls due at {}", fmt_time(t)))
                .unwrap_or_else(|| "before it falls due".to_string());
            rotate(view, target, &format!("Schedule its rotation {when}"))
        }
        ActionKind::InvestigateAndEmergencyRotate => rotate(
            view,
            target,
            "Investigate its recent activity in CloudTrail (source IPs, regions, APIs, \
             failures), then rotate it as an emergency",
        ),
        ActionKind::DeactivateKey => deactivate(target),
        ActionKind::DeleteKey => delete(target),
        ActionKind::EnableRotation | ActionKind::AlignSchedule => {
            set_schedule(ctx, view, target, kind)
        }
        ActionKind::FixRotation => fix_rotation(target),
        ActionKind::FixTags => fix_tags(group, target),
        ActionKind::ReviewAndDelete => review_and_delete(target),
        ActionKind::AddToInventory => Remedy::manual(
            "Declare it in inventory.toml with its kind, class, owner and consumers, or retire \
             it if nobody claims it."
                .to_string(),
        ),
        ActionKind::RemoveStaleEntry => Remedy::manual(
            "Remove its entry from inventory.toml, or record the id of the credential that \
             replaced it."
                .to_string(),
        ),
        ActionKind::Classify => Remedy::manual(
            "Give it a risk class (A-D) in inventory.toml; until then it is held to class A."
                .to_string(),
        ),
        ActionKind::AssignOwner => Remedy::manual(
            "Assign an active owner in inventory.toml (the owner is missing or has departed)."
                .to_string(),
        ),
        ActionKind::RecordHistory => Remedy::manual(
            "Record the missing rotation events in the rotation history, or find out why AWS \
             shows no rotation where the history claims one."
                .to_string(),
        ),
        ActionKind::RenewWaiver => Remedy::manual(
            "Renew the expired waiver (new expiry, approver and ticket), or fix the finding it \
             hid."
                .to_string(),
        ),
        ActionKind::Investigate => Remedy::manual(format!(
            "No remediation is known for rule {}; investigate the finding.",
            rules.iter().copied().collect::<Vec<_>>().join(", ")
        )),
    }
}

/// Deactivating a credential: the CLI command for an IAM key, by hand for anything else.
fn deactivate(target: &Target) -> Remedy {
    match target {
        Target::IamKey { user, key } => Remedy::with(
            format!(
                "Deactivate access key {key} of IAM user {user}; delete it once nothing \
                 breaks."
            ),
            iam_update_key_inactive(user, key),
        ),
        Target::RootKey => Remedy::manual(ROOT_KEY_MANUAL.to_string()),
        Target::Secret { name, .. } => Remedy::manual(format!(
            "Revoke the credential held in secret {name} where it is accepted."
        )),
        Target::Unobserved { id, kind } => Remedy::manual(format!(
            "Disable {kind} {id} with its issuer (not visible to the scan: no CLI command)."
        )),
    }
}

/// Deleting a credential: the CLI command for an IAM key, by hand for anything else.
fn delete(target: &Target) -> Remedy {
    match target {
        Target::IamKey { user, key } => Remedy::with(
            format!("Delete access key {key} of IAM user {user}."),
            iam_delete_key(user, key),
        ),
        Target::RootKey => Remedy::manual(ROOT_KEY_MANUAL.to_string()),
        Target::Secret { name, .. } => {
            Remedy::manual(format!("Retire secret {name} once nothing reads it."))
        }
        Target::Unobserved { id, kind } => Remedy::manual(format!(
            "Delete {kind} {id} with its issuer (not visible to the scan: no CLI command)."
        )),
    }
}

/// Switching on automated rotation, or aligning its schedule, to the declared interval.
fn set_schedule(
    ctx: &EvalCtx,
    view: Option<&CredentialView>,
    target: &Target,
    kind: ActionKind,
) -> Remedy {
    let interval_days = view.map(|v| ctx.interval(v).num_days());
    let days = interval_days.unwrap_or(i64::from(ctx.policy.class_interval(None)));
    let what = if kind == ActionKind::EnableRotation {
        "Switch on automated rotation"
    } else {
        "Set the rotation schedule"
    };
    match target {
        Target::Secret { arn, name, region } => Remedy::with(
            format!(
                "{what} of secret {name} to every {days} days (the declared interval) \
                 and declare it `automated = true`. Add --rotation-lambda-arn if the \
                 secret has no rotation function yet. AWS also rotates it once right \
                 away (add --no-rotate-immediately to only change the schedule)."
            ),
            secret_schedule(arn, region, days),
        ),
        Target::RootKey => Remedy::manual(ROOT_KEY_MANUAL.to_string()),
        Target::IamKey { .. } | Target::Unobserved { .. } => Remedy::manual(format!(
            "{what}: put it under the rotation pipeline every {days} days (the declared \
             interval) and declare it `automated = true` in inventory.toml."
        )),
    }
}

/// Fixing a failing rotation: the secret's rotation function, or the rotation pipeline.
fn fix_rotation(target: &Target) -> Remedy {
    match target {
        Target::Secret { arn, name, region } => Remedy::with(
            format!(
                "Read the rotation function's logs for secret {name}, fix the cause, then \
                 rotate it again and check the new version becomes AWSCURRENT."
            ),
            secret_rotate(arn, region),
        ),
        _ => Remedy::manual(
            "Read the rotation pipeline's logs, fix the cause, then rotate again.".to_string(),
        ),
    }
}

/// Retiring a credential nobody needs.
fn review_and_delete(target: &Target) -> Remedy {
    match target {
        Target::Secret { arn, name, region } => Remedy::with(
            format!(
                "Confirm no consumer needs secret {name}, revoke the credential it holds, \
                 then schedule its deletion (30-day recovery window)."
            ),
            secret_delete(arn, region),
        ),
        _ => Remedy::manual("Confirm no consumer needs it, revoke it, then delete it.".to_string()),
    }
}

/// A rotation: for IAM keys the four steps (the command creates the new key), for secrets the
/// rotation function, for anything else the issuer.
fn rotate(view: Option<&CredentialView>, target: &Target, lead: &str) -> Remedy {
    let consumers = view
        .and_then(|v| v.declared)
        .filter(|d| !d.consumers.is_empty())
        .map(|d| format!("its consumers ({})", d.consumers.join(", ")))
        .unwrap_or_else(|| "its consumers".to_string());
    match target {
        Target::IamKey { user, key } => Remedy::with(
            format!(
                "{lead}: access key {key} of IAM user {user}. 1) create a new key (the command); \
                 2) hand it to {consumers}; 3) deactivate {key} once they use the new key; \
                 4) delete {key} after a quiet period."
            ),
            iam_create_key(user),
        ),
        Target::Secret { arn, name, region } => Remedy::with(
            format!(
                "{lead}: secret {name}, through its rotation function; then check the new \
                 version is AWSCURRENT and {consumers} pick it up."
            ),
            secret_rotate(arn, region),
        ),
        Target::RootKey => Remedy::manual(format!(
            "{lead}: a root access key cannot be rotated safely. {ROOT_KEY_MANUAL}"
        )),
        Target::Unobserved { id, kind } => Remedy::manual(format!(
            "{lead}: {kind} {id} with its issuer (no AWS CLI command applies), hand the new \
             value to {consumers}, revoke the old one and record the rotation in the history."
        )),
    }
}

/// The tags that disagree with the facts, set to the values the tag-drift findings recorded
/// (`set-tag:<name>` evidence): the plan never re-derives the drift.
fn fix_tags(group: &[&Finding], target: &Target) -> Remedy {
    let tags = corrected_tags(group);
    let listed = tags
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    match target {
        Target::Secret { arn, name, region } if !tags.is_empty() => Remedy::with(
            format!("Set the rotation tags of secret {name} to the facts: {listed}."),
            secret_tag(arn, region, &tags),
        ),
        Target::IamKey { user, .. } if !tags.is_empty() => Remedy::with(
            format!(
                "Set the rotation tags of IAM user {user} (shared by all its keys) to the \
                 facts: {listed}."
            ),
            iam_tag_user(user, &tags),
        ),
        _ => Remedy::manual(
            "Correct its rotation tags (owner, class, last-rotation-date, next-rotation-date) \
             by hand: the declared value is not known."
                .to_string(),
        ),
    }
}

/// The tag values the tag-drift findings of `group` recorded, in the order recorded, each tag
/// once (the first value wins).
fn corrected_tags(group: &[&Finding]) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> = Vec::new();
    for f in group.iter().filter(|f| f.rule == "tag-drift") {
        for (key, value) in &f.evidence {
            if let Some(name) = key.strip_prefix(crate::rules::SET_TAG_PREFIX)
                && !tags.iter().any(|(n, _)| n == name)
            {
                tags.push((name.to_string(), value.clone()));
            }
        }
    }
    tags
}

/// Quotes `value` for a POSIX shell ([`shlex::try_quote`]: bare when it has no character a
/// shell treats specially, such as an access key id, else quoted). A NUL byte cannot be passed
/// in an argument at all; such a value is quoted with U+FFFD in its place, so the command names
/// no real resource (a shell would otherwise cut the value short, and could name another one).
pub fn shell_quote(value: &str) -> String {
    match shlex::try_quote(value) {
        Ok(quoted) => quoted.into_owned(),
        Err(_) => shell_quote(&value.replace('\0', "\u{FFFD}")),
    }
}

/// `--name value`, quoted; `--name=value` when the value starts with `-`, so the CLI cannot
/// take it for an option.
fn opt(name: &str, value: &str) -> String {
    if value.starts_with('-') {
        format!("--{name}={}", shell_quote(value))
    } else {
        format!("--{name} {}", shell_quote(value))
    }
}

/// ` --region R` for a regional resource.
fn region_opt(region: &str) -> String {
    if region.is_empty() || region == "global" {
        String::new()
    } else {
        format!(" {}", opt("region", region))
    }
}

fn iam_create_key(user: &str) -> String {
    format!("aws iam create-access-key {}", opt("user-name", user))
}

fn iam_update_key_inactive(user: &str, key: &str) -> String {
    format!(
        "aws iam update-access-key {} {} --status Inactive",
        opt("user-name", user),
        opt("access-key-id", key)
    )
}

fn iam_delete_key(user: &str, key: &str) -> String {
    format!(
        "aws iam delete-access-key {} {}",
        opt("user-name", user),
        opt("access-key-id", key)
    )
}

fn iam_tag_user(user: &str, tags: &[(String, String)]) -> String {
    format!(
        "aws iam tag-user {} --tags {}",
        opt("user-name", user),
        tags_arg(tags)
    )
}

fn secret_rotate(arn: &str, region: &str) -> String {
    format!(
        "aws secretsmanager rotate-secret {}{}",
        opt("secret-id", arn),
        region_opt(region)
    )
}

fn secret_schedule(arn: &str, region: &str, days: i64) -> String {
    format!(
        "aws secretsmanager rotate-secret {} --rotation-rules AutomaticallyAfterDays={days}{}",
        opt("secret-id", arn),
        region_opt(region)
    )
}

fn secret_delete(arn: &str, region: &str) -> String {
    format!(
        "aws secretsmanager delete-secret {} --recovery-window-in-days 30{}",
        opt("secret-id", arn),
        region_opt(region)
    )
}

fn secret_tag(arn: &str, region: &str, tags: &[(String, String)]) -> String {
    format!(
        "aws secretsmanager tag-resource {} --tags {}{}",
        opt("secret-id", arn),
        tags_arg(tags),
        region_opt(region)
    )
}

/// The `--tags` value: AWS shorthand (`Key=k,Value=v …`) when every key and value is plain, else
/// JSON, which has no characters the shorthand parser would misread. Shell-quoted either way.
fn tags_arg(tags: &[(String, String)]) -> String {
    let plain = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:/@+".contains(&b))
    };
    if tags.iter().all(|(k, v)| plain(k) && plain(v)) {
        tags.iter()
            .map(|(k, v)| shell_quote(&format!("Key={k},Value={v}")))
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        let json: Vec<serde_json::Value> = tags
            .iter()
            .map(|(k, v)| serde_json::json!({ "Key": k, "Value": v }))
            .collect();
        shell_quote(&serde_json::Value::Array(json).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{KeyStatus, ObservedCredential, RiskClass};
    use crate::rules::testkit::*;

    fn finding(rule: &str, severity: Severity, o: &ObservedCredential) -> Finding {
        Finding {
            rule: rule.into(),
            severity,
            credential: o.id.clone(),
            kind: o.kind,
            account: Some(o.account.clone()),
            region: Some(o.region.clone()),
            owner: Some("team".into()),
            principal: None,
            message: format!("{rule} happened"),
            evidence: vec![],
            waiver: None,
        }
    }

    /// `f` with the evidence the real rule records for its credential, where the plan reads it
    /// (tag-drift's `set-tag:` values).
    fn with_rule_evidence(facts: &Facts, mut f: Finding) -> Finding {
        if f.rule == "tag-drift"
            && let Some(real) = crate::rules::evaluate(facts, as_of())
                .into_iter()
                .find(|r| r.rule == f.rule && r.credential == f.credential)
        {
            f.evidence = real.evidence;
        }
        f
    }

    fn plan_of(facts: &Facts, findings: &[Finding]) -> Plan {
        build(
            facts,
            findings,
            &BTreeMap::new(),
            as_of(),
            &PlanConfig::default(),
        )
    }

    const RULE_ACTIONS: [(&str, ActionKind); 23] = [
        ("unmanaged-credential", ActionKind::AddToInventory),
        ("orphaned-inventory-entry", ActionKind::RemoveStaleEntry),
        ("rotation-overdue", ActionKind::RotateNow),
        ("rotation-due-soon", ActionKind::ScheduleRotation),
        ("unclassified-credential", ActionKind::Classify),
        ("unowned-credential", ActionKind::AssignOwner),
        ("unused-credential", ActionKind::DeactivateKey),
        ("multiple-active-keys", ActionKind::DeactivateKey),
        ("root-access-key", ActionKind::DeleteKey),
        ("inactive-key-lingering", ActionKind::DeleteKey),
        ("rotation-not-automated", ActionKind::EnableRotation),
        ("rotation-schedule-drift", ActionKind::AlignSchedule),
        ("rotation-failing", ActionKind::FixRotation),
        ("audit-trail-gap", ActionKind::RecordHistory),
        ("tag-drift", ActionKind::FixTags),
        ("credential-reuse", ActionKind::RotateNow),
        ("usage-limit-exceeded", ActionKind::RotateNow),
        ("anomalous-usage", ActionKind::InvestigateAndEmergencyRotate),
        (
            "auth-failure-spike",
            ActionKind::InvestigateAndEmergencyRotate,
        ),
        (
            "incident-not-remediated",
            ActionKind::InvestigateAndEmergencyRotate,
        ),
        ("secret-unused", ActionKind::ReviewAndDelete),
        ("waiver-expired", ActionKind::RenewWaiver),
        ("no-such-rule", ActionKind::Investigate),
    ];

    #[test]
    fn each_rule_becomes_its_action_kind() {
        let key = key("AKIAKEY0000000000001", "svc-a", 3);
        let facts = facts(
            vec![key.clone()],
            declare_all(std::slice::from_ref(&key)),
            vec![],
        );
        for (rule, want) in RULE_ACTIONS {
            assert_eq!(ActionKind::for_rule(rule), want, "{rule}");
            let plan = plan_of(&facts, &[finding(rule, Severity::Medium, &key)]);
            assert_eq!(plan.actions.len(), 1, "{rule}");
            let action = &plan.actions[0];
            assert_eq!(action.action, want, "{rule}");
            assert_eq!(action.rules, vec![rule.to_string()]);
            assert_eq!(
                action.fingerprints,
                vec![crate::model::fingerprint(rule, &key.id)]
            );
        }
        // Every rule the registry runs has a real remediation, not the generic fallback.
        for rule in crate::rules::RULES {
            assert_ne!(
                ActionKind::for_rule(rule.meta.id),
                ActionKind::Investigate,
                "{}",
                rule.meta.id
            );
        }
    }

    #[test]
    fn findings_of_one_credential_merge_by_action_kind() {
        let old = key("AKIAOLD0000000000001", "svc-a", 60);
        let other = key("AKIAOTHER00000000001", "svc-b", 60);
        let facts = facts(
            vec![old.clone(), other.clone()],
            declare_all(&[old.clone(), other.clone()]),
            vec![],
        );
        let findings = vec![
            finding("unused-credential", Severity::Medium, &old),
            finding("rotation-overdue", Severity::Critical, &old),
            finding("multiple-active-keys", Severity::Low, &old),
            finding("unused-credential", Severity::Medium, &other),
        ];
        let controls: BTreeMap<String, Vec<String>> = [
            ("unused-credential", vec!["pci-dss:8.2.6", "cis-aws:1.12"]),
            ("multiple-active-keys", vec!["cis-aws:1.13", "cis-aws:1.12"]),
            ("rotation-overdue", vec!["pci-dss:8.3.9"]),
        ]
        .into_iter()
        .map(|(r, c)| (r.to_string(), c.into_iter().map(str::to_string).collect()))
        .collect();
        let plan = build(
            &facts,
            &findings,
            &controls,
            as_of(),
            &PlanConfig::default(),
        );
        let summary: Vec<(&str, ActionKind)> = plan
            .actions
            .iter()
            .map(|a| (a.credential.as_str(), a.action))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("AKIAOLD0000000000001", ActionKind::RotateNow),
                ("AKIAOLD0000000000001", ActionKind::DeactivateKey),
                ("AKIAOTHER00000000001", ActionKind::DeactivateKey),
            ]
        );
        let deactivate = &plan.actions[1];
        assert_eq!(
            deactivate.rules,
            vec!["multiple-active-keys", "unused-credential"]
        );
        assert_eq!(
            deactivate.fingerprints,
            vec![
                crate::model::fingerprint("multiple-active-keys", &old.id),
                crate::model::fingerprint("unused-credential", &old.id),
            ]
        );
        assert_eq!(deactivate.severity, Severity::Medium);
        assert_eq!(deactivate.priority, 3);
        assert_eq!(
            deactivate.controls,
            vec!["cis-aws:1.12", "cis-aws:1.13", "pci-dss:8.2.6"]
        );
        assert_eq!(
            deactivate.command.as_deref(),
            Some(
                "aws iam update-access-key --user-name svc-a --access-key-id \
                 AKIAOLD0000000000001 --status Inactive"
            )
        );
        assert!(
            deactivate
                .description
                .contains("unused-credential: unused-credential happened")
        );
        assert!(
            deactivate
                .description
                .contains("multiple-active-keys: multiple-active-keys happened")
        );

        // One job per credential, worst first; the rotation makes it a rotate job.
        assert_eq!(plan.jobs.len(), 2);
        let job = &plan.jobs[0];
        assert_eq!(job.credential, old.id);
        assert_eq!(job.severity, Severity::Critical);
        assert!(job.rotate && !job.emergency);
        assert_eq!(job.due, "2026-11-02T00:00:00Z");
        assert_eq!(job.actions.len(), 2);
        assert_eq!(plan.jobs[1].credential, other.id);
        assert!(!plan.jobs[1].rotate);

        // The order of the findings does not matter.
        let mut reversed = findings.clone();
        reversed.reverse();
        assert_eq!(
            build(
                &facts,
                &reversed,
                &controls,
                as_of(),
                &PlanConfig::default()
            ),
            plan
        );
    }

    #[test]
    fn due_and_priority_follow_severity_and_config() {
        let keys: Vec<ObservedCredential> = (0..5)
            .map(|i| key(&format!("AKIAKEY000000000000{i}"), "svc", 3))
            .collect();
        let facts = facts(keys.clone(), declare_all(&keys), vec![]);
        let severities = [
            Severity::Critical,
            Severity::High,
            Severity::Medium,
            Severity::Low,
            Severity::Info,
        ];
        let findings: Vec<Finding> = severities
            .iter()
            .zip(&keys)
            .map(|(s, k)| finding("rotation-overdue", *s, k))
            .collect();
        let plan = plan_of(&facts, &findings);
        let got: Vec<(u32, &str, Severity)> = plan
            .actions
            .iter()
            .map(|a| (a.priority, a.due.as_str(), a.severity))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, "2026-11-02T00:00:00Z", Severity::Critical),
                (2, "2026-11-04T00:00:00Z", Severity::High),
                (3, "2026-11-15T00:00:00Z", Severity::Medium),
                (4, "2026-12-01T00:00:00Z", Severity::Low),
                (5, "2026-11-03T00:00:00Z", Severity::Info),
            ]
        );

        let config = PlanConfig {
            critical_hours: 1,
            high_hours: 2,
            medium_hours: 3,
            low_hours: 4,
            info_hours: 5,
        };
        let plan = build(&facts, &findings, &BTreeMap::new(), as_of(), &config);
        let dues: Vec<&str> = plan.actions.iter().map(|a| a.due.as_str()).collect();
        assert_eq!(
            dues,
            vec![
                "2026-11-01T01:00:00Z",
                "2026-11-01T02:00:00Z",
                "2026-11-01T03:00:00Z",
                "2026-11-01T04:00:00Z",
                "2026-11-01T05:00:00Z",
            ]
        );

        // An emergency is priority 1 whatever its severity (due by its severity), so it sorts
        // after a critical action due sooner and before a high one.
        let anomaly = finding("anomalous-usage", Severity::Medium, &keys[4]);
        let plan = build(
            &facts,
            &[findings[1].clone(), anomaly, findings[0].clone()],
            &BTreeMap::new(),
            as_of(),
            &config,
        );
        let got: Vec<(u32, ActionKind, &str)> = plan
            .actions
            .iter()
            .map(|a| (a.priority, a.action, a.due.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, ActionKind::RotateNow, "2026-11-01T01:00:00Z"),
                (
                    1,
                    ActionKind::InvestigateAndEmergencyRotate,
                    "2026-11-01T03:00:00Z"
                ),
                (2, ActionKind::RotateNow, "2026-11-01T02:00:00Z"),
            ]
        );
        let emergency_job = plan
            .jobs
            .iter()
            .find(|j| j.credential == keys[4].id)
            .unwrap();
        assert!(emergency_job.emergency && emergency_job.rotate);
        // Jobs: worst severity first, whatever the priority.
        let job_severities: Vec<Severity> = plan.jobs.iter().map(|j| j.severity).collect();
        assert_eq!(
            job_severities,
            vec![Severity::Critical, Severity::High, Severity::Medium]
        );
    }

    /// Runs `printf %s <quoted>` in a real POSIX shell and returns what it printed.
    fn through_shell(quoted: &str) -> String {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {quoted}"))
            .output()
            .expect("sh runs");
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn hostile_names_are_quoted_for_the_shell() {
        let user = "svc'x$(touch /tmp/pwned)`id`;rm -rf ~";
        let k = key("AKIAHOSTILE000000001", user, 3);
        let facts = facts(
            vec![k.clone()],
            declare_all(std::slice::from_ref(&k)),
            vec![],
        );
        let plan = plan_of(
            &facts,
            &[finding("inactive-key-lingering", Severity::Low, &k)],
        );
        assert_eq!(
            plan.actions[0].command.as_deref(),
            Some(
                "aws iam delete-access-key --user-name \"svc'x\"'$(touch /tmp/pwned)`id`;rm -rf \
                 ~' --access-key-id AKIAHOSTILE000000001"
            )
        );
        for value in [
            user,
            "",
            "-x",
            "a b",
            "'",
            "''",
            "\\'",
            "new\nline",
            "AKIA1",
        ] {
            assert_eq!(through_shell(&shell_quote(value)), value, "{value:?}");
        }
        assert_eq!(opt("user-name", "-rf"), "--user-name=-rf");
        assert_eq!(opt("user-name", "-r f"), "--user-name='-r f'");
        // A NUL byte cannot reach a command's argument: it becomes U+FFFD, naming nothing real.
        assert_eq!(through_shell(&shell_quote("a\0b;c")), "a\u{FFFD}b;c");
    }

    #[test]
    fn commands_per_credential_kind_and_never_read_a_secret() {
        let k = key("AKIAKEY0000000000001", "svc-a", 3);
        let mut s = secret("prod/db's", 3);
        s.tags.insert("owner".into(), "someone-else".into());
        s.tags
            .insert("next-rotation-date".into(), "2020-01-01".into());
        let mut root = key(
            &format!("arn:aws:iam::{ACCOUNT}:root/access-key-1"),
            "<root>",
            3,
        );
        root.kind = CredentialKind::RootAccessKey;
        let observed = vec![k.clone(), s.clone(), root.clone()];
        let mut declared = declare_all(&observed);
        declared[1].interval_days = Some(7);
        let mut llm = declare("openai-prod", CredentialKind::LlmApiKey);
        llm.class = Some(RiskClass::B);
        declared.push(llm);
        let facts = facts(observed, declared, vec![]);

        let mut findings = Vec::new();
        for (rule, _) in RULE_ACTIONS {
            for o in [&k, &s, &root] {
                findings.push(with_rule_evidence(&facts, finding(rule, Severity::High, o)));
            }
            findings.push(Finding {
                credential: "openai-prod".into(),
                kind: CredentialKind::LlmApiKey,
                ..finding(rule, Severity::High, &k)
            });
        }
        let plan = plan_of(&facts, &findings);
        // One action per action kind and credential: rules sharing a kind merge (3 rotate-now,
        // 3 emergency rotations, 2 deactivate-key, 2 delete-key: 6 fewer than the rules).
        assert_eq!(plan.actions.len(), 4 * (RULE_ACTIONS.len() - 6));
        for a in &plan.actions {
            if let Some(command) = &a.command {
                assert!(!command.contains("get-secret-value"), "{command}");
                assert!(command.starts_with("aws "), "{command}");
            }
            if a.credential == root.id || a.credential == "openai-prod" {
                assert_eq!(a.command, None, "{a:?}");
            }
        }
        let command = |cred: &str, kind: ActionKind| {
            plan.actions
                .iter()
                .find(|a| a.credential == cred && a.action == kind)
                .and_then(|a| a.command.clone())
        };
        // The `'` in the secret's name: double quotes, where `$`, `` ` ``, `\` and `"` would
        // need escaping and none is here.
        assert_eq!(
            s.id,
            "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db's-AbCdEf"
        );
        let arn = format!("\"{}\"", s.id);
        assert_eq!(through_shell(&arn), s.id);
        assert_eq!(
            command(&k.id, ActionKind::RotateNow).as_deref(),
            Some("aws iam create-access-key --user-name svc-a")
        );
        assert_eq!(
            command(&s.id, ActionKind::RotateNow),
            Some(format!(
                "aws secretsmanager rotate-secret --secret-id {arn} --region us-east-1"
            ))
        );
        assert_eq!(
            command(&s.id, ActionKind::EnableRotation),
            Some(format!(
                "aws secretsmanager rotate-secret --secret-id {arn} --rotation-rules \
                 AutomaticallyAfterDays=7 --region us-east-1"
            ))
        );
        assert_eq!(
            command(&s.id, ActionKind::AlignSchedule),
            command(&s.id, ActionKind::EnableRotation)
        );
        assert_eq!(
            command(&s.id, ActionKind::FixRotation),
            command(&s.id, ActionKind::RotateNow)
        );
        assert_eq!(
            command(&s.id, ActionKind::ReviewAndDelete),
            Some(format!(
                "aws secretsmanager delete-secret --secret-id {arn} --recovery-window-in-days 30 \
                 --region us-east-1"
            ))
        );
        // Last rotation 3 days ago, interval 7 days: next rotation 2026-11-05.
        assert_eq!(
            command(&s.id, ActionKind::FixTags),
            Some(format!(
                "aws secretsmanager tag-resource --secret-id {arn} --tags \
                 'Key=owner,Value=team' 'Key=next-rotation-date,Value=2026-11-05' \
                 --region us-east-1"
            ))
        );
        assert_eq!(
            command(&k.id, ActionKind::FixTags),
            None,
            "no tag on the user drifts"
        );
        assert_eq!(command(&k.id, ActionKind::EnableRotation), None);
        let root_delete = plan
            .actions
            .iter()
            .find(|a| a.credential == root.id && a.action == ActionKind::DeleteKey)
            .unwrap();
        assert!(
            root_delete
                .description
                .contains("only be deleted by the root user")
        );
        let rotate_key = plan
            .actions
            .iter()
            .find(|a| a.credential == k.id && a.action == ActionKind::RotateNow)
            .unwrap();
        assert!(rotate_key.description.contains("agent-1"));
        assert!(
            rotate_key
                .description
                .contains("deactivate AKIAKEY0000000000001")
        );
    }

    #[test]
    fn action_kind_names_are_the_serde_names() {
        use strum::VariantArray;
        assert_eq!(ActionKind::VARIANTS.len(), 17);
        for &kind in ActionKind::VARIANTS {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert_eq!(
            ActionKind::InvestigateAndEmergencyRotate.as_str(),
            "investigate-and-emergency-rotate"
        );
        assert_eq!(ActionKind::RotateNow.as_str(), "rotate-now");
    }

    #[test]
    fn tags_with_awkward_values_use_json() {
        let tags = vec![("owner".to_string(), "team a, b=c".to_string())];
        assert_eq!(
            tags_arg(&tags),
            r#"'[{"Key":"owner","Value":"team a, b=c"}]'"#
        );
        let mut k = key("AKIAKEY0000000000001", "svc-a", 3);
        k.tags.insert("class".into(), "B".into());
        let facts = facts(
            vec![k.clone()],
            declare_all(std::slice::from_ref(&k)),
            vec![],
        );
        let drift = with_rule_evidence(&facts, finding("tag-drift", Severity::Low, &k));
        let plan = plan_of(&facts, &[drift]);
        assert_eq!(
            plan.actions[0].command.as_deref(),
            Some("aws iam tag-user --user-name svc-a --tags 'Key=class,Value=A'")
        );
    }

    #[test]
    fn hygiene_score_of_a_small_fleet() {
        // team (interval 14 days, class A):
        //   k1 automated, rotated 3 days ago      -> automated, in policy
        //   k2 manual, rotated 20 days ago         -> out of policy
        //   k3 deactivated                         -> not counted
        //   declared-only, automated, no rotation  -> automated, out of policy
        // undeclared key, rotated 1 day ago -> unowned, in policy, not automated
        let k1 = key("AKIAK100000000000001", "svc-1", 3);
        let k2 = key("AKIAK200000000000001", "svc-2", 20);
        let mut k3 = key("AKIAK300000000000001", "svc-3", 200);
        k3.status = KeyStatus::Inactive;
        let stray = key("AKIASTRAY00000000001", "svc-4", 1);
        let mut declared = declare_all(&[k1.clone(), k2.clone(), k3.clone()]);
        declared[1].automated = false;
        declared.push(declare("openai-prod", CredentialKind::LlmApiKey));
        let facts = facts(
            vec![k1.clone(), k2.clone(), k3.clone(), stray.clone()],
            declared,
            vec![],
        );
        let findings = vec![
            finding("rotation-overdue", Severity::High, &k2), // team +5
            finding("rotation-not-automated", Severity::Medium, &k2), // team +2
            finding("inactive-key-lingering", Severity::Low, &k3), // team +1
            finding("unmanaged-credential", Severity::High, &stray), // unowned +5
            finding("tag-drift", Severity::Low, &k1),         // team +1
            finding("rotation-due-soon", Severity::Info, &k1), // +0
        ];
        let plan = plan_of(&facts, &findings);

        // Fleet: 4 credentials, automation 2/4, in policy 2/4, load 14/4 = 3.5.
        // 100 * (0.3*0.5 + 0.4*0.5 + 0.3*(1 - 3.5/5)) = 15 + 20 + 9 = 44.
        let fleet = &plan.fleet_score;
        assert_eq!(fleet.scope, "fleet");
        assert_eq!(fleet.credentials, 4);
        assert_eq!(fleet.automation, 0.5);
        assert_eq!(fleet.in_policy, 0.5);
        assert_eq!(fleet.finding_load, 3.5);
        assert_eq!(fleet.score, 44);

        // team: 3 credentials, automation 2/3, in policy 1/3, load 9/3 = 3.
        // 100 * (0.3*2/3 + 0.4/3 + 0.3*(1 - 3/5)) = 20 + 13.33 + 12 = 45.33 -> 45.
        // unowned: 1 credential, automation 0, in policy 1, load 5 (the load part floors at 0).
        // 100 * (0 + 0.4 + 0) = 40.
        let owners: Vec<(&str, u32, usize)> = plan
            .owner_scores
            .iter()
            .map(|s| (s.scope.as_str(), s.score, s.credentials))
            .collect();
        assert_eq!(owners, vec![("unowned", 40, 1), ("team", 45, 3)]);
        assert_eq!(plan.owner_scores[1].finding_load, 3.0);
        assert!((plan.owner_scores[1].automation - 2.0 / 3.0).abs() < 1e-12);

        // An empty fleet is clean.
        let empty = plan_of(&Facts::default(), &[]);
        assert_eq!(empty.fleet_score.score, 100);
        assert_eq!(empty.fleet_score.automation, 1.0);
        assert_eq!(empty.fleet_score.in_policy, 1.0);
        assert!(empty.owner_scores.is_empty() && empty.actions.is_empty() && empty.jobs.is_empty());
    }

    #[test]
    fn unknown_rules_and_unknown_credentials_do_not_panic() {
        let stray = Finding {
            rule: "from-the-future".into(),
            severity: Severity::Critical,
            credential: "not-in-facts".into(),
            kind: CredentialKind::Other,
            account: None,
            region: None,
            owner: None,
            principal: None,
            message: "something".into(),
            evidence: vec![],
            waiver: None,
        };
        let plan = plan_of(&Facts::default(), &[stray]);
        assert_eq!(plan.actions[0].action, ActionKind::Investigate);
        assert_eq!(plan.actions[0].command, None);
        assert!(plan.actions[0].description.contains("from-the-future"));
        assert_eq!(plan.jobs.len(), 1);
        // Its finding adds to the fleet's load, but there are no credentials to score.
        assert_eq!(plan.fleet_score.score, 100);
    }
}
