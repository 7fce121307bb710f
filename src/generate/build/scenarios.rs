//! The scenarios that plant the rules: each reshapes one credential of an agent (or adds one) so
//! that it trips exactly the rules it lists in `intended`, and nothing else.

use chrono::Duration;

use super::catalogue::{DEPARTED_OWNER, Role, UNKNOWN_OWNER};
use super::{ALNUM, AgentCtx, BASE32, Builder, ExternalPlan, SecretPlan, TagStyle, UserPlan};
use crate::generate::fleet::{DAY, Declared, HOUR, MINUTE, RotationRule};
use crate::generate::rng::Rng;
use crate::model::{CredentialKind, EventType, RiskClass, Trigger};

/// Scenarios repeat every this many agents, so a large fleet carries proportionally many.
pub(super) const PERIOD: usize = 40;

/// One planted problem. Agent `i` carries scenario `SCENARIOS[i % PERIOD]` (if any); everything
/// else about the agent is clean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scenario {
    /// unmanaged-credential: an undeclared sandbox user's key (its creation is in history).
    UnmanagedKey,
    /// unmanaged-credential: an undeclared scratch secret, never rotated.
    UnmanagedSecret,
    /// orphaned-inventory-entry: a declared key that no account holds.
    OrphanKey,
    /// orphaned-inventory-entry: a declared secret ARN that no region holds.
    OrphanSecret,
    /// rotation-overdue: a class B key 40 days old.
    OverdueKey,
    /// rotation-overdue: a class C secret rotated by hand 120 days ago.
    OverdueSecret,
    /// rotation-overdue: a class B LLM key last rotated 35 days ago.
    OverdueExternal,
    /// rotation-overdue: a declared certificate with no rotation in history.
    NeverRotatedExternal,
    /// rotation-due-soon: a class A key due in 20 hours.
    DueSoonKey,
    /// rotation-due-soon: a class B secret due in 30 hours.
    DueSoonSecret,
    /// unclassified-credential: a key declared without a class.
    UnclassifiedKey,
    /// unclassified-credential: a secret declared without a class (14-day schedule).
    UnclassifiedSecret,
    /// unowned-credential: a secret declared without an owner.
    NoOwnerSecret,
    /// unowned-credential: a key owned by a departed person.
    DepartedOwnerKey,
    /// unowned-credential: an OAuth client whose owner is not in `[[owners]]`.
    UnknownOwnerExternal,
    /// unused-credential: a key created 10 days ago, never used.
    NeverUsedKey,
    /// unused-credential: a class C key last used 50 days ago.
    LongUnusedKey,
    /// multiple-active-keys: the newer key is 2 days old (class B).
    TwoActiveKeysB,
    /// multiple-active-keys: the newer key is 5 days old (class C).
    TwoActiveKeysC,
    /// inactive-key-lingering: an inactive key last used 100 days ago.
    LingeringKey,
    /// inactive-key-lingering: an inactive key created 45 days ago, never used.
    LingeringNeverUsedKey,
    /// rotation-not-automated: a class A key rotated by hand.
    ManualClassAKey,
    /// rotation-not-automated: declared automated, but AWS rotation is off.
    AwsRotationDisabled,
    /// rotation-schedule-drift: a class A secret on a 30-day AWS schedule.
    ScheduleDriftDays,
    /// rotation-schedule-drift: a class B secret on `rate(90 days)`.
    ScheduleDriftRate,
    /// rotation-failing: the last attempt in history failed.
    FailedRotation,
    /// rotation-failing: an AWSPENDING version 3 days old.
    PendingStuck,
    /// rotation-failing: NextRotationDate 3 days ago.
    NextRotationPassed,
    /// audit-trail-gap: a key created 8 days ago with no history event.
    GapKeyWithoutHistory,
    /// audit-trail-gap: history says rotated 2 days ago, AWS says 15.
    GapHistoryAheadOfAws,
    /// tag-drift: `next-rotation-date` still shows the previous cycle.
    StaleNextRotationTag,
    /// tag-drift: the user's `owner` tag names another team.
    OwnerTagMismatch,
    /// tag-drift: `last-rotation-date = "TBD"`.
    UnparsableDateTag,
    /// credential-reuse: a rotation put back the value of the one before.
    ReusedFingerprintSameSecret,
    /// credential-reuse: an external key issued with the fingerprint of the agent's Anthropic secret.
    ReusedFingerprintAcross,
    /// secret-unused: last accessed 120 days ago.
    SecretNotAccessed,
    /// secret-unused: created 200 days ago, never accessed.
    SecretNeverAccessed,
    /// incident-not-remediated: an anomaly detected 3 days ago, the key never rotated since.
    UnremediatedAnomalyKey,
    /// incident-not-remediated: a burst of 6 access denials 2 days ago, no rotation since.
    UnremediatedDeniedBurst,
    /// No finding: a burst of access denials 4 days ago, then an emergency rotation 3 h later.
    RemediatedDeniedBurst,
}

/// In agent order; pairs that plant the same rule sit next to each other, so they land in
/// different accounts.
pub(super) const SCENARIOS: [Scenario; 40] = [
    Scenario::UnmanagedKey,
    Scenario::UnmanagedSecret,
    Scenario::OrphanKey,
    Scenario::OrphanSecret,
    Scenario::OverdueKey,
    Scenario::OverdueSecret,
    Scenario::OverdueExternal,
    Scenario::NeverRotatedExternal,
    Scenario::DueSoonKey,
    Scenario::DueSoonSecret,
    Scenario::UnclassifiedKey,
    Scenario::UnclassifiedSecret,
    Scenario::NoOwnerSecret,
    Scenario::DepartedOwnerKey,
    Scenario::UnknownOwnerExternal,
    Scenario::NeverUsedKey,
    Scenario::LongUnusedKey,
    Scenario::TwoActiveKeysB,
    Scenario::TwoActiveKeysC,
    Scenario::LingeringKey,
    Scenario::LingeringNeverUsedKey,
    Scenario::ManualClassAKey,
    Scenario::AwsRotationDisabled,
    Scenario::ScheduleDriftDays,
    Scenario::ScheduleDriftRate,
    Scenario::FailedRotation,
    Scenario::PendingStuck,
    Scenario::NextRotationPassed,
    Scenario::GapKeyWithoutHistory,
    Scenario::GapHistoryAheadOfAws,
    Scenario::StaleNextRotationTag,
    Scenario::OwnerTagMismatch,
    Scenario::UnparsableDateTag,
    Scenario::ReusedFingerprintSameSecret,
    Scenario::ReusedFingerprintAcross,
    Scenario::SecretNotAccessed,
    Scenario::SecretNeverAccessed,
    Scenario::UnremediatedAnomalyKey,
    Scenario::UnremediatedDeniedBurst,
    Scenario::RemediatedDeniedBurst,
];

impl Scenario {
    /// Whether it replaces the agent's IAM user's keys.
    pub(super) fn shapes_keys(self) -> bool {
        use Scenario::*;
        matches!(
            self,
            OverdueKey
                | DueSoonKey
                | UnclassifiedKey
                | DepartedOwnerKey
                | NeverUsedKey
                | LongUnusedKey
                | TwoActiveKeysB
                | TwoActiveKeysC
                | LingeringKey
                | LingeringNeverUsedKey
                | ManualClassAKey
                | GapKeyWithoutHistory
                | OwnerTagMismatch
                | UnremediatedAnomalyKey
        )
    }

    /// The suffix of the agent secret it reshapes, if any.
    pub(super) fn secret_target(self) -> Option<&'static str> {
        use Scenario::*;
        Some(match self {
            OverdueSecret | ReusedFingerprintSameSecret => "webhook-signing-key",
            DueSoonSecret | PendingStuck | UnremediatedDeniedBurst => "github-token",
            UnclassifiedSecret | FailedRotation | ReusedFingerprintAcross => "anthropic-api-key",
            NoOwnerSecret | GapHistoryAheadOfAws | RemediatedDeniedBurst => "vector-db-password",
            AwsRotationDisabled | NextRotationPassed => "jira-api-token",
            ScheduleDriftDays | StaleNextRotationTag => "openai-api-key",
            ScheduleDriftRate | UnparsableDateTag | SecretNotAccessed => "slack-bot-token",
            _ => return None,
        })
    }
}

impl Builder<'_> {
    /// Replaces the keys (and, where it matters, the tags) of an agent's user for a key scenario.
    pub(super) fn plant_keys(
        &self,
        rng: &mut Rng,
        scenario: Scenario,
        plan: &mut UserPlan,
        role: &Role,
        ctx: &AgentCtx,
    ) {
        use Scenario::*;
        match scenario {
            OverdueKey | DueSoonKey | NeverUsedKey | LongUnusedKey => {
                self.plant_aged_key(rng, scenario, plan, ctx)
            }
            UnclassifiedKey | DepartedOwnerKey | ManualClassAKey | OwnerTagMismatch => {
                self.plant_misdeclared_key(rng, scenario, plan, role, ctx)
            }
            TwoActiveKeysB | TwoActiveKeysC | LingeringKey | LingeringNeverUsedKey => {
                self.plant_two_keys(rng, scenario, plan, role, ctx)
            }
            GapKeyWithoutHistory | UnremediatedAnomalyKey => {
                self.plant_evidence_key(rng, scenario, plan, ctx)
            }
            _ => {}
        }
    }

    /// A key whose age or last use a rule judges.
    fn plant_aged_key(
        &self,
        rng: &mut Rng,
        scenario: Scenario,
        plan: &mut UserPlan,
        ctx: &AgentCtx,
    ) {
        use Scenario::*;
        let user = plan.name.clone();
        let team = ctx.team;
        let recent = |b: &Self, rng: &mut Rng| Some(b.ago(rng.range(10 * MINUTE, 6 * HOUR)));
        let set_class = |plan: &mut UserPlan, class: Option<RiskClass>| plan.class_tag = class;
        match scenario {
            OverdueKey => {
                set_class(plan, Some(RiskClass::B));
                let mut key = self.key_at(
                    Some(RiskClass::B),
                    team,
                    &user,
                    self.about(rng, 40),
                    recent(self, rng),
                );
                key.intended = vec!["rotation-overdue"];
                plan.keys = vec![key];
                plan.date_tags = TagStyle::Date;
            }
            DueSoonKey => {
                set_class(plan, Some(RiskClass::A));
                let created = self.ago(14 * DAY - 20 * HOUR);
                let mut key =
                    self.key_at(Some(RiskClass::A), team, &user, created, recent(self, rng));
                key.intended = vec!["rotation-due-soon"];
                plan.keys = vec![key];
                plan.date_tags = TagStyle::Rfc3339;
            }
            NeverUsedKey => {
                set_class(plan, Some(RiskClass::B));
                let mut key =
                    self.key_at(Some(RiskClass::B), team, &user, self.about(rng, 10), None);
                key.intended = vec!["unused-credential"];
                plan.keys = vec![key];
            }
            LongUnusedKey => {
                set_class(plan, Some(RiskClass::C));
                let used = Some(self.about(rng, 50));
                let mut key =
                    self.key_at(Some(RiskClass::C), team, &user, self.about(rng, 80), used);
                key.intended = vec!["unused-credential"];
                plan.keys = vec![key];
                plan.date_tags = TagStyle::Date;
            }
            _ => {}
        }
    }

    /// A key whose class, owner, automation or tags a rule judges.
    fn plant_misdeclared_key(
        &self,
        rng: &mut Rng,
        scenario: Scenario,
        plan: &mut UserPlan,
        role: &Role,
        ctx: &AgentCtx,
    ) {
        use Scenario::*;
        let user = plan.name.clone();
        let team = ctx.team;
        let recent = |b: &Self, rng: &mut Rng| Some(b.ago(rng.range(10 * MINUTE, 6 * HOUR)));
        let set_class = |plan: &mut UserPlan, class: Option<RiskClass>| plan.class_tag = class;
        match scenario {
            UnclassifiedKey => {
                set_class(plan, None);
                let mut key = self.key_at(None, team, &user, self.about(rng, 5), recent(self, rng));
                key.intended = vec!["unclassified-credential"];
                plan.keys = vec![key];
                plan.date_tags = TagStyle::None;
            }
            DepartedOwnerKey => {
                let mut key = self.clean_key(rng, role.key_class, DEPARTED_OWNER, &user);
                key.intended = vec!["unowned-credential"];
                plan.keys = vec![key];
                plan.owner_tag = Some(DEPARTED_OWNER.to_string());
            }
            ManualClassAKey => {
                set_class(plan, Some(RiskClass::A));
                let mut key = self.key_at(
                    Some(RiskClass::A),
                    team,
                    &user,
                    self.about(rng, 6),
                    recent(self, rng),
                );
                key.automated = false;
                key.trigger = Trigger::Manual;
                key.intended = vec!["rotation-not-automated"];
                plan.keys = vec![key];
            }
            OwnerTagMismatch => {
                let mut key = self.clean_key(rng, role.key_class, team, &user);
                key.intended = vec!["tag-drift"];
                plan.keys = vec![key];
                let other = if team == "team-research" {
                    "team-data"
                } else {
                    "team-research"
                };
                plan.owner_tag = Some(other.to_string());
            }
            _ => {}
        }
    }

    /// A user with a second access key: both active, or the old one deactivated and kept.
    fn plant_two_keys(
        &self,
        rng: &mut Rng,
        scenario: Scenario,
        plan: &mut UserPlan,
        role: &Role,
        ctx: &AgentCtx,
    ) {
        use Scenario::*;
        let user = plan.name.clone();
        let team = ctx.team;
        let recent = |b: &Self, rng: &mut Rng| Some(b.ago(rng.range(10 * MINUTE, 6 * HOUR)));
        let set_class = |plan: &mut UserPlan, class: Option<RiskClass>| plan.class_tag = class;
        match scenario {
            TwoActiveKeysB | TwoActiveKeysC => {
                let (class, old_days, new_days) = if scenario == TwoActiveKeysB {
                    (RiskClass::B, 25, 2)
                } else {
                    (RiskClass::C, 50, 5)
                };
                set_class(plan, Some(class));
                let mut old = self.key_at(
                    Some(class),
                    team,
                    &user,
                    self.about(rng, old_days),
                    recent(self, rng),
                );
                old.intended = vec!["multiple-active-keys"];
                let new = self.key_at(
                    Some(class),
                    team,
                    &user,
                    self.about(rng, new_days),
                    recent(self, rng),
                );
                plan.keys = vec![old, new];
                plan.date_tags = TagStyle::None;
            }
            LingeringKey | LingeringNeverUsedKey => {
                let current = self.clean_key(rng, role.key_class, team, &user);
                let (created, used) = if scenario == LingeringKey {
                    (self.about(rng, 120), Some(self.about(rng, 100)))
                } else {
                    (self.about(rng, 45), None)
                };
                let mut old = self.key_at(Some(role.key_class), team, &user, created, used);
                old.active = false;
                old.description = format!("deactivated access key of {user}");
                old.intended = vec!["inactive-key-lingering"];
                plan.keys = vec![old, current];
                plan.date_tags = TagStyle::None;
            }
            _ => {}
        }
    }

    /// A key whose rotation evidence or incident follow-up a rule judges.
    fn plant_evidence_key(
        &self,
        rng: &mut Rng,
        scenario: Scenario,
        plan: &mut UserPlan,
        ctx: &AgentCtx,
    ) {
        use Scenario::*;
        let user = plan.name.clone();
        let team = ctx.team;
        let recent = |b: &Self, rng: &mut Rng| Some(b.ago(rng.range(10 * MINUTE, 6 * HOUR)));
        let set_class = |plan: &mut UserPlan, class: Option<RiskClass>| plan.class_tag = class;
        match scenario {
            GapKeyWithoutHistory => {
                set_class(plan, Some(RiskClass::B));
                let mut key = self.key_at(
                    Some(RiskClass::B),
                    team,
                    &user,
                    self.about(rng, 8),
                    recent(self, rng),
                );
                key.history = false;
                key.intended = vec!["audit-trail-gap"];
                plan.keys = vec![key];
                plan.date_tags = TagStyle::None;
            }
            UnremediatedAnomalyKey => {
                set_class(plan, Some(RiskClass::B));
                let mut key = self.key_at(
                    Some(RiskClass::B),
                    team,
                    &user,
                    self.about(rng, 12),
                    recent(self, rng),
                );
                key.open_anomaly = Some(self.about(rng, 3));
                key.intended = vec!["incident-not-remediated"];
                plan.keys = vec![key];
            }
            _ => {}
        }
    }

    /// An undeclared user with one key that the onboarding script made (and logged).
    pub(super) fn sandbox_user(&mut self, rng: &mut Rng, ctx: &AgentCtx) {
        let name = format!("svc-{}-sandbox", ctx.name);
        let created = self.about(rng, 4);
        let mut key = self.key_at(None, ctx.team, &name, created, Some(self.ago(3 * HOUR)));
        key.declared = false;
        key.trigger = Trigger::Manual;
        key.intended = vec!["unmanaged-credential"];
        let plan = UserPlan {
            name,
            created: created - Duration::seconds(10 * MINUTE),
            owner_tag: None,
            class_tag: None,
            date_tags: TagStyle::None,
            extra_tags: vec![
                ("agent".into(), ctx.name.clone()),
                ("purpose".into(), "sandbox".into()),
            ],
            password: None,
            mfa: false,
            keys: vec![key],
            consumers: Vec::new(),
        };
        self.add_user(rng, ctx.account, ctx.region, plan);
    }

    /// Extra credentials a scenario adds: undeclared or unused secrets, declared-only external
    /// credentials, inventory entries that point at nothing.
    pub(super) fn agent_extras(
        &mut self,
        rng: &mut Rng,
        ctx: &AgentCtx,
        scenario: Scenario,
        anthropic_fingerprint: Option<String>,
    ) {
        use Scenario::*;
        match scenario {
            UnmanagedSecret | SecretNeverAccessed => self.add_stray_secret(rng, ctx, scenario),
            OrphanKey | OrphanSecret => self.add_orphaned_entry(rng, ctx, scenario),
            OverdueExternal
            | NeverRotatedExternal
            | UnknownOwnerExternal
            | ReusedFingerprintAcross => {
                self.declare_external(rng, ctx, scenario, anthropic_fingerprint)
            }
            _ => {}
        }
    }

    /// A secret in AWS that the inventory does not declare, or that nothing reads.
    fn add_stray_secret(&mut self, rng: &mut Rng, ctx: &AgentCtx, scenario: Scenario) {
        use Scenario::*;
        match scenario {
            UnmanagedSecret => {
                let created = self.about(rng, 3);
                let mut plan = self.bare_secret(
                    format!("dev/{}/scratch-token", ctx.name),
                    format!("scratch token created by hand while debugging {}", ctx.name),
                    created,
                );
                plan.declared = false;
                plan.agent = Some(ctx.name.clone());
                plan.last_accessed = Some(self.about(rng, 1));
                plan.intended = vec!["unmanaged-credential"];
                self.add_secret(rng, ctx.account, ctx.region, plan);
            }
            SecretNeverAccessed => {
                let mut plan = self.bare_secret(
                    format!("prod/{}/backup-encryption-key", ctx.name),
                    format!("backup encryption key of {}", ctx.name),
                    self.about(rng, 200),
                );
                plan.class = Some(RiskClass::D);
                plan.owner = Some(ctx.team.to_string());
                plan.owner_tag = true;
                plan.consumers = vec![ctx.name.clone()];
                plan.agent = Some(ctx.name.clone());
                plan.automated = true;
                plan.last_rotated = Some(self.about(rng, 100));
                plan.rotation = Some(RotationRule {
                    days: 180,
                    as_rate: false,
                });
                plan.rotation_enabled = true;
                plan.history = true;
                plan.last_accessed = None;
                plan.date_tags = TagStyle::Date;
                plan.intended = vec!["secret-unused"];
                self.add_secret(rng, ctx.account, ctx.region, plan);
            }
            _ => {}
        }
    }

    /// An inventory entry whose key or secret is not in AWS.
    fn add_orphaned_entry(&mut self, rng: &mut Rng, ctx: &AgentCtx, scenario: Scenario) {
        use Scenario::*;
        match scenario {
            OrphanKey => {
                let id = self.unique(rng, "AKIA", BASE32, 16);
                let account = self.account_id(ctx.account);
                self.fleet.declared.push(Declared {
                    id: id.clone(),
                    kind: CredentialKind::IamAccessKey,
                    class: Some(RiskClass::B),
                    owner: Some(ctx.team.to_string()),
                    consumers: vec![ctx.name.clone()],
                    automated: true,
                    interval_days: None,
                    max_uses: None,
                    account: Some(account),
                    description: format!(
                        "access key of svc-{}-batch (user deleted by hand)",
                        ctx.name
                    ),
                });
                let at = self.about(rng, 5);
                self.record_rotation(
                    rng,
                    &id,
                    at,
                    Trigger::Scheduled,
                    "new access key for batch jobs",
                );
                self.plant("orphaned-inventory-entry", &id);
            }
            OrphanSecret => {
                let account = self.account_id(ctx.account);
                let region = self.region(ctx.region);
                let suffix = rng.chars(ALNUM, 6);
                let id = format!(
                    "arn:aws:secretsmanager:{region}:{account}:secret:prod/{}/legacy-webhook-secret-{suffix}",
                    ctx.name
                );
                self.taken.insert(id.clone());
                self.fleet.declared.push(Declared {
                    id: id.clone(),
                    kind: CredentialKind::Secret,
                    class: Some(RiskClass::C),
                    owner: Some(ctx.team.to_string()),
                    consumers: vec![ctx.name.clone()],
                    automated: true,
                    interval_days: None,
                    max_uses: None,
                    account: Some(account),
                    description: format!("legacy webhook secret of {}", ctx.name),
                });
                let at = self.about(rng, 10);
                self.record_rotation(rng, &id, at, Trigger::Scheduled, "RotateSecret");
                self.plant("orphaned-inventory-entry", &id);
            }
            _ => {}
        }
    }

    /// A declared credential held outside AWS.
    fn declare_external(
        &mut self,
        rng: &mut Rng,
        ctx: &AgentCtx,
        scenario: Scenario,
        anthropic_fingerprint: Option<String>,
    ) {
        use Scenario::*;
        let external =
            |id: String, kind: CredentialKind, class: RiskClass, what: &str| ExternalPlan {
                id,
                kind,
                class: Some(class),
                owner: Some(ctx.team.to_string()),
                automated: true,
                max_uses: None,
                consumers: vec![ctx.name.clone()],
                description: format!("{what} of {}", ctx.name),
                last_rotated: None,
                trigger: Trigger::Scheduled,
                intended: Vec::new(),
            };
        match scenario {
            OverdueExternal => {
                let mut plan = external(
                    format!("ext:openai-batch:{}", ctx.name),
                    CredentialKind::LlmApiKey,
                    RiskClass::B,
                    "OpenAI batch API key",
                );
                plan.last_rotated = Some(self.about(rng, 35));
                plan.intended = vec!["rotation-overdue"];
                self.add_external(rng, plan);
            }
            NeverRotatedExternal => {
                let mut plan = external(
                    format!("ext:cert:{}.agents.example.com", ctx.name),
                    CredentialKind::Certificate,
                    RiskClass::C,
                    "client certificate",
                );
                plan.automated = false;
                plan.intended = vec!["rotation-overdue"];
                self.add_external(rng, plan);
            }
            UnknownOwnerExternal => {
                let mut plan = external(
                    format!("ext:google-oauth:{}", ctx.name),
                    CredentialKind::OauthClient,
                    RiskClass::C,
                    "Google Workspace OAuth client",
                );
                plan.owner = Some(UNKNOWN_OWNER.to_string());
                plan.last_rotated = Some(self.about(rng, 20));
                plan.intended = vec!["unowned-credential"];
                self.add_external(rng, plan);
            }
            ReusedFingerprintAcross => {
                let mut plan = external(
                    format!("ext:anthropic-console:{}", ctx.name),
                    CredentialKind::LlmApiKey,
                    RiskClass::B,
                    "Anthropic console workspace key",
                );
                plan.last_rotated = Some(self.about(rng, 6));
                plan.intended = vec!["credential-reuse"];
                let completed = self.add_external(rng, plan);
                // The "new" key is the one already stored in the agent's Anthropic secret.
                if let (Some(&latest), Some(fingerprint)) = (
                    completed.iter().max_by_key(|&&i| self.fleet.events[i].time),
                    anthropic_fingerprint,
                ) {
                    self.fleet.events[latest].fingerprint = Some(fingerprint);
                }
            }
            _ => {}
        }
    }

    /// Puts a secret on automated rotation every `days` days, last rotated `age_days` ago give
    /// or take `jitter` seconds, with nothing pending, no extra events and no date tags.
    fn rotating(
        &self,
        plan: &mut SecretPlan,
        class: Option<RiskClass>,
        days: u32,
        age_days: i64,
        jitter: i64,
    ) {
        plan.class = class;
        plan.interval_days = None;
        plan.rotation = Some(RotationRule {
            days,
            as_rate: false,
        });
        plan.rotation_enabled = true;
        plan.automated = true;
        plan.trigger = Trigger::Scheduled;
        plan.last_rotated = Some(self.ago(age_days * DAY + jitter));
        plan.pending_since = None;
        plan.extra_events.clear();
        plan.date_tags = TagStyle::None;
    }

    /// Reshapes the agent secret a scenario targets.
    pub(super) fn plant_secret(&self, rng: &mut Rng, scenario: Scenario, plan: &mut SecretPlan) {
        use Scenario::*;
        // Ages below are given or take three hours; every threshold is a day or more away.
        let jitter = rng.range(-3 * HOUR, 3 * HOUR);
        match scenario {
            OverdueSecret | DueSoonSecret | UnclassifiedSecret | NoOwnerSecret
            | AwsRotationDisabled | ScheduleDriftDays | ScheduleDriftRate => {
                self.plant_secret_schedule(rng, scenario, plan, jitter)
            }
            FailedRotation | PendingStuck | NextRotationPassed | GapHistoryAheadOfAws => {
                self.plant_secret_rotation_events(rng, scenario, plan, jitter)
            }
            StaleNextRotationTag
            | UnparsableDateTag
            | ReusedFingerprintSameSecret
            | ReusedFingerprintAcross
            | SecretNotAccessed
            | UnremediatedDeniedBurst
            | RemediatedDeniedBurst => self.plant_secret_tags_and_use(rng, scenario, plan, jitter),
            _ => {}
        }
    }

    /// A secret whose class, owner or rotation schedule a rule judges.
    fn plant_secret_schedule(
        &self,
        rng: &mut Rng,
        scenario: Scenario,
        plan: &mut SecretPlan,
        jitter: i64,
    ) {
        use Scenario::*;
        match scenario {
            OverdueSecret => {
                self.rotating(plan, Some(RiskClass::C), 90, 120, jitter);
                plan.rotation = None;
                plan.rotation_enabled = false;
                plan.automated = false;
                plan.trigger = Trigger::Manual;
                plan.created = self.about(rng, 400);
                plan.date_tags = TagStyle::Date;
                plan.intended = vec!["rotation-overdue"];
            }
            DueSoonSecret => {
                self.rotating(plan, Some(RiskClass::B), 30, 29, jitter);
                // Due 30 h after the as-of time: inside the 48 h window.
                plan.last_rotated = Some(self.ago(30 * DAY - 30 * HOUR));
                plan.date_tags = TagStyle::Rfc3339;
                plan.intended = vec!["rotation-due-soon"];
            }
            UnclassifiedSecret => {
                self.rotating(plan, None, 14, 4, jitter);
                plan.intended = vec!["unclassified-credential"];
            }
            NoOwnerSecret => {
                plan.owner = None;
                plan.owner_tag = false;
                plan.intended = vec!["unowned-credential"];
            }
            AwsRotationDisabled => {
                self.rotating(plan, Some(RiskClass::C), 60, 20, jitter);
                plan.rotation = None;
                plan.rotation_enabled = false;
                plan.trigger = Trigger::Manual;
                plan.date_tags = TagStyle::Date;
                plan.intended = vec!["rotation-not-automated"];
            }
            ScheduleDriftDays => {
                self.rotating(plan, Some(RiskClass::A), 30, 5, jitter);
                plan.intended = vec!["rotation-schedule-drift"];
            }
            ScheduleDriftRate => {
                self.rotating(plan, Some(RiskClass::B), 90, 10, jitter);
                plan.rotation = Some(RotationRule {
                    days: 90,
                    as_rate: true,
                });
                plan.intended = vec!["rotation-schedule-drift"];
            }
            _ => {}
        }
    }

    /// A secret whose rotation failed, is stuck, or is recorded only in the history.
    fn plant_secret_rotation_events(
        &self,
        rng: &mut Rng,
        scenario: Scenario,
        plan: &mut SecretPlan,
        jitter: i64,
    ) {
        use Scenario::*;
        match scenario {
            FailedRotation => {
                self.rotating(plan, Some(RiskClass::B), 30, 10, jitter);
                let started = self.ago(3 * HOUR + jitter / 4);
                plan.pending_since = Some(started);
                plan.extra_events = vec![
                    (
                        started,
                        EventType::RotationInitiated,
                        "RotateSecret started",
                    ),
                    (
                        started + Duration::seconds(50 * MINUTE),
                        EventType::RotationFailed,
                        "rotation lambda failed in setSecret: the provider rejected the new key",
                    ),
                ];
                plan.intended = vec!["rotation-failing"];
            }
            PendingStuck => {
                self.rotating(plan, Some(RiskClass::B), 30, 12, jitter);
                let started = self.about(rng, 3);
                plan.pending_since = Some(started);
                plan.extra_events = vec![(
                    started,
                    EventType::RotationInitiated,
                    "RotateSecret started",
                )];
                plan.intended = vec!["rotation-failing"];
            }
            NextRotationPassed => {
                // NextRotationDate = last rotation + 30 days = 3 days ago.
                self.rotating(plan, Some(RiskClass::C), 30, 33, jitter);
                plan.intended = vec!["rotation-failing"];
            }
            GapHistoryAheadOfAws => {
                self.rotating(plan, Some(RiskClass::B), 30, 15, jitter);
                let at = self.about(rng, 2);
                plan.extra_events = vec![
                    (
                        at - Duration::seconds(40),
                        EventType::RotationInitiated,
                        "rotation by runbook RB-7",
                    ),
                    (at, EventType::RotationCompleted, "rotated by runbook RB-7"),
                ];
                plan.intended = vec!["audit-trail-gap"];
            }
            _ => {}
        }
    }

    /// A secret whose tags, reused values or use a rule judges.
    fn plant_secret_tags_and_use(
        &self,
        rng: &mut Rng,
        scenario: Scenario,
        plan: &mut SecretPlan,
        jitter: i64,
    ) {
        use Scenario::*;
        match scenario {
            StaleNextRotationTag => {
                self.rotating(plan, Some(RiskClass::B), 30, 10, jitter);
                plan.date_tags = TagStyle::Date;
                // The tag still shows the previous cycle's due date, i.e. the last rotation.
                let stale = plan.last_rotated.and_then(|t| TagStyle::Date.format(t));
                plan.tag_overrides = vec![("next-rotation-date", stale.unwrap_or_default())];
                plan.intended = vec!["tag-drift"];
            }
            UnparsableDateTag => {
                self.rotating(plan, Some(RiskClass::C), 30, 8, jitter);
                plan.date_tags = TagStyle::Date;
                plan.tag_overrides = vec![("last-rotation-date", "TBD".to_string())];
                plan.intended = vec!["tag-drift"];
            }
            ReusedFingerprintSameSecret => {
                // Rotations 5 and 35 days ago; the later one re-issued the earlier value.
                self.rotating(plan, Some(RiskClass::C), 30, 5, jitter);
                plan.intended = vec!["credential-reuse"];
            }
            ReusedFingerprintAcross => {
                self.rotating(plan, Some(RiskClass::B), 30, 15, jitter);
            }
            SecretNotAccessed => {
                self.rotating(plan, Some(RiskClass::C), 30, 10, jitter);
                plan.last_accessed = Some(self.about(rng, 120));
                plan.intended = vec!["secret-unused"];
            }
            UnremediatedDeniedBurst | RemediatedDeniedBurst => {
                let remediated = scenario == RemediatedDeniedBurst;
                self.rotating(plan, Some(RiskClass::B), 30, 10, jitter);
                // Six denials within 40 minutes: a burst (5 within an hour), complete at the fifth.
                let start = self.about(rng, if remediated { 4 } else { 2 });
                plan.extra_events = [0, 3, 9, 17, 26, 38]
                    .into_iter()
                    .map(|minutes| {
                        (
                            start + Duration::seconds(minutes * MINUTE),
                            EventType::AccessDenied,
                            "AccessDeniedException: an unknown role called \
                             secretsmanager:GetSecretValue",
                        )
                    })
                    .collect();
                if remediated {
                    // The emergency rotation, 3 h after the burst: inside the 24 h window.
                    plan.last_rotated = Some(start + Duration::seconds(3 * HOUR));
                } else {
                    plan.intended = vec!["incident-not-remediated"];
                }
            }
            _ => {}
        }
    }
}
