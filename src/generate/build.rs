//! Builds the synthetic fleet: per-agent IAM users, keys and secrets, shared secrets, declared-only
//! credentials and rotation history. Clean credentials come from here; [`scenarios`] reshapes one
//! credential per agent (or adds one) to plant a rule.
//!
//! Clean credentials keep wide margins from every threshold (rotated at least three days before
//! they are due, used within two days, accessed within a week), so only the planted ones trip a
//! rule. Every time is relative to the as-of time, so any as-of gives the same findings.

mod catalogue;
mod scenarios;

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Duration};

use self::catalogue::{AGENT_SECRETS, OWNERS, ROLES, Role, SHARED_SECRETS, SecretTemplate, tpl};
use self::scenarios::{PERIOD, SCENARIOS, Scenario};
use super::FleetSpec;
use super::fleet::{
    Account, DAY, Declared, Event, Fleet, HISTORY_DAYS, HOUR, Key, LastUse, MINUTE, Root, RootKey,
    RotationRule, Secret, Ts, User, class_days, day, interval_days, minute,
};
use super::rng::Rng;
use crate::model::{CredentialKind, EventType, RiskClass, Trigger};

const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// The declared TLS certificate of the fleet; the history's opening event names it.
const FLEET_CERTIFICATE: &str = "ext:cert:agents.internal.example.com";
const SERVICES: [&str; 6] = ["secretsmanager", "s3", "sqs", "bedrock", "dynamodb", "logs"];

// ---------------------------------------------------------------------------------------------
// Plans: what to materialise, before ids are drawn

/// How rotation date tags are written, if at all.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TagStyle {
    None,
    Date,
    Rfc3339,
}

impl TagStyle {
    fn random(rng: &mut Rng) -> Self {
        match rng.below(20) {
            0..=7 => TagStyle::None,
            8..=16 => TagStyle::Date,
            _ => TagStyle::Rfc3339,
        }
    }

    fn format(self, t: Ts) -> Option<String> {
        match self {
            TagStyle::None => None,
            TagStyle::Date => Some(t.format("%Y-%m-%d").to_string()),
            TagStyle::Rfc3339 => Some(t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        }
    }
}

/// An access key to create.
struct KeyPlan {
    declared: bool,
    class: Option<RiskClass>,
    owner: Option<String>,
    automated: bool,
    active: bool,
    created: Ts,
    last_used: Option<Ts>,
    /// Record the key's creation as a rotation in the history.
    history: bool,
    trigger: Trigger,
    /// An `anomaly.detected` event shortly before the rotation (an emergency rotation).
    anomaly: bool,
    /// An `anomaly.detected` event at this time that no rotation followed.
    open_anomaly: Option<Ts>,
    description: String,
    intended: Vec<&'static str>,
}

/// An IAM user to create, with its keys and tags.
struct UserPlan {
    name: String,
    created: Ts,
    owner_tag: Option<String>,
    class_tag: Option<RiskClass>,
    /// Date tags only make sense for a user with one key.
    date_tags: TagStyle,
    extra_tags: Vec<(String, String)>,
    password: Option<(Ts, Option<Ts>)>,
    mfa: bool,
    keys: Vec<KeyPlan>,
    consumers: Vec<String>,
}

/// A Secrets Manager secret to create, its declaration, history and tags.
struct SecretPlan {
    name: String,
    description: String,
    declared: bool,
    class: Option<RiskClass>,
    owner: Option<String>,
    owner_tag: bool,
    consumers: Vec<String>,
    agent: Option<String>,
    automated: bool,
    interval_days: Option<u32>,
    account_declared: bool,
    created: Ts,
    last_rotated: Option<Ts>,
    rotation: Option<RotationRule>,
    rotation_enabled: bool,
    last_accessed: Option<Ts>,
    /// An AWSPENDING version written at this time.
    pending_since: Option<Ts>,
    history: bool,
    trigger: Trigger,
    date_tags: TagStyle,
    tag_overrides: Vec<(&'static str, String)>,
    extra_events: Vec<(Ts, EventType, &'static str)>,
    intended: Vec<&'static str>,
}

/// A declared-only credential (held outside AWS) and its rotation history.
struct ExternalPlan {
    id: String,
    kind: CredentialKind,
    class: Option<RiskClass>,
    owner: Option<String>,
    automated: bool,
    max_uses: Option<u64>,
    consumers: Vec<String>,
    description: String,
    /// Latest rotation; earlier ones every `interval` days back to the history start.
    last_rotated: Option<Ts>,
    trigger: Trigger,
    intended: Vec<&'static str>,
}

// ---------------------------------------------------------------------------------------------
// Builder

/// Builds the whole fleet for a spec (already validated).
pub(super) fn build(spec: &FleetSpec) -> Fleet {
    let now = DateTime::from_timestamp(spec.as_of.timestamp(), 0).unwrap_or(spec.as_of);
    let mut builder = Builder {
        spec,
        now,
        history_start: now - Duration::seconds(HISTORY_DAYS * DAY),
        taken: HashSet::new(),
        fleet: Fleet {
            accounts: spec
                .accounts
                .iter()
                .map(|id| Account {
                    id: id.clone(),
                    root: Root {
                        created: now,
                        password_last_used: None,
                        keys: [None, None],
                    },
                    users: Vec::new(),
                    secrets: spec.regions.iter().map(|_| Vec::new()).collect(),
                })
                .collect(),
            regions: spec.regions.clone(),
            owners: OWNERS.into_iter().collect(),
            declared: Vec::new(),
            events: Vec::new(),
            intended: BTreeSet::new(),
        },
    };
    builder.account_basics();
    for index in 0..spec.agents {
        builder.agent(index);
    }
    builder.shared_secrets();
    builder.fleet_externals();
    // The history opens with a policy change, so the audit-trail window starts exactly here.
    builder.push_event(
        builder.history_start,
        EventType::PolicyUpdated,
        FLEET_CERTIFICATE,
        None,
        None,
        Some(
            "policy v3: class D certificates rotate yearly or on event; history export starts"
                .into(),
        ),
    );
    builder.finish()
}

struct Builder<'a> {
    spec: &'a FleetSpec,
    /// The as-of time in whole seconds.
    now: Ts,
    history_start: Ts,
    /// Every id drawn so far, to keep them unique.
    taken: HashSet<String>,
    fleet: Fleet,
}

struct AgentCtx {
    name: String,
    team: &'static str,
    account: usize,
    region: usize,
}

impl Builder<'_> {
    fn ago(&self, seconds: i64) -> Ts {
        self.now - Duration::seconds(seconds)
    }

    /// About `days` days ago, give or take three hours: real rotations do not all happen at the
    /// as-of time of day. Planted values keep margins of a day or more, so this never changes a
    /// finding.
    fn about(&self, rng: &mut Rng, days: i64) -> Ts {
        self.ago(days * DAY + rng.range(-3 * HOUR, 3 * HOUR))
    }

    fn region(&self, index: usize) -> String {
        self.fleet.regions[index].clone()
    }

    fn account_id(&self, index: usize) -> String {
        self.fleet.accounts[index].id.clone()
    }

    fn unique(&mut self, rng: &mut Rng, prefix: &str, alphabet: &[u8], len: usize) -> String {
        loop {
            let id = format!("{prefix}{}", rng.chars(alphabet, len));
            if self.taken.insert(id.clone()) {
                return id;
            }
        }
    }

    fn plant(&mut self, rule: &'static str, credential: &str) {
        self.fleet
            .intended
            .insert((rule.to_string(), credential.to_string()));
    }

    fn push_event(
        &mut self,
        time: Ts,
        kind: EventType,
        credential: &str,
        trigger: Option<Trigger>,
        fingerprint: Option<String>,
        details: Option<String>,
    ) -> usize {
        self.fleet.events.push(Event {
            time,
            kind,
            credential: credential.to_string(),
            trigger,
            fingerprint,
            details,
        });
        self.fleet.events.len() - 1
    }

    /// Records one rotation at `at` (the moment AWS shows the new value): `rotation.initiated`
    /// 40 s before, `rotation.completed` 2 s after with the new value's fingerprint. Rotations
    /// before the history start are not recorded, and no event ever precedes it. Returns the
    /// completed event's index.
    fn record_rotation(
        &mut self,
        rng: &mut Rng,
        credential: &str,
        at: Ts,
        trigger: Trigger,
        details: &str,
    ) -> Option<usize> {
        if at < self.history_start {
            return None;
        }
        let initiated = at - Duration::seconds(40);
        if initiated >= self.history_start {
            self.push_event(
                initiated,
                EventType::RotationInitiated,
                credential,
                Some(trigger),
                None,
                None,
            );
        }
        let fingerprint = format!("sha256:{}", rng.hex(32));
        Some(self.push_event(
            at + Duration::seconds(2),
            EventType::RotationCompleted,
            credential,
            Some(trigger),
            Some(fingerprint),
            Some(details.to_string()),
        ))
    }

    /// A last use between 5 minutes and 2 days ago, never before `created`; young keys are
    /// sometimes not used yet (inside the 7-day grace).
    fn recent_use(&self, rng: &mut Rng, created: Ts) -> Option<Ts> {
        let age = (self.now - created).num_seconds();
        if age < 5 * DAY && rng.percent(25) {
            return None;
        }
        let latest = (age * 9 / 10).min(2 * DAY);
        let used = self.ago(rng.range(5 * MINUTE, latest.max(5 * MINUTE)));
        Some(used.max(created + Duration::seconds(2 * MINUTE)))
    }

    /// A clean key: rotated between half a day and three days before it is due, used recently.
    fn clean_key(&self, rng: &mut Rng, class: RiskClass, owner: &str, user: &str) -> KeyPlan {
        let interval = i64::from(class_days(Some(class)));
        let created = self.ago(rng.range(DAY / 2, (interval - 3) * DAY));
        let last_used = self.recent_use(rng, created);
        KeyPlan {
            declared: true,
            class: Some(class),
            owner: Some(owner.to_string()),
            automated: true,
            active: true,
            created,
            last_used,
            history: true,
            trigger: Trigger::Scheduled,
            anomaly: false,
            open_anomaly: None,
            description: format!("access key of {user}"),
            intended: Vec::new(),
        }
    }

    /// A key with fixed ages, otherwise clean.
    fn key_at(
        &self,
        class: Option<RiskClass>,
        owner: &str,
        user: &str,
        created: Ts,
        last_used: Option<Ts>,
    ) -> KeyPlan {
        KeyPlan {
            declared: true,
            class,
            owner: Some(owner.to_string()),
            automated: true,
            active: true,
            created,
            last_used,
            history: true,
            trigger: Trigger::Scheduled,
            anomaly: false,
            open_anomaly: None,
            description: format!("access key of {user}"),
            intended: Vec::new(),
        }
    }

    // -- accounts -------------------------------------------------------------------------------

    /// Root, CI and break-glass users of every account.
    fn account_basics(&mut self) {
        let single = self.fleet.accounts.len() == 1;
        for account in 0..self.fleet.accounts.len() {
            let mut rng = Rng::stream(self.spec.seed, 1_000_000 + account as u64);
            let region = self.region(0);
            let root_created = self.ago(rng.range(1500 * DAY, 2500 * DAY));
            let root_key = |rng: &mut Rng, builder: &Self| RootKey {
                active: true,
                last_rotated: builder.ago(rng.range(400 * DAY, 900 * DAY)),
                last_used: Some(LastUse {
                    time: minute(builder.ago(rng.range(10 * DAY, 60 * DAY))),
                    region: region.clone(),
                    service: "iam".to_string(),
                }),
            };
            let keys = match (account, single) {
                (0, true) => [
                    Some(root_key(&mut rng, self)),
                    Some(root_key(&mut rng, self)),
                ],
                (0, false) => [Some(root_key(&mut rng, self)), None],
                (1, _) => [None, Some(root_key(&mut rng, self))],
                _ => [None, None],
            };
            let account_id = self.account_id(account);
            for (slot, key) in keys.iter().enumerate() {
                if key.is_some() {
                    self.plant(
                        "root-access-key",
                        &format!("arn:aws:iam::{account_id}:root/access-key-{}", slot + 1),
                    );
                }
            }
            self.fleet.accounts[account].root = Root {
                created: root_created,
                password_last_used: Some(self.ago(rng.range(20 * DAY, 200 * DAY))),
                keys,
            };

            for (name, class, owner) in [
                ("ci-deploy", RiskClass::A, "team-platform"),
                ("terraform-runner", RiskClass::A, "maria.garcia"),
            ] {
                let key = self.clean_key(&mut rng, class, owner, name);
                let plan = UserPlan {
                    name: name.to_string(),
                    created: self.ago(rng.range(400 * DAY, 1200 * DAY)),
                    owner_tag: Some(owner.to_string()),
                    class_tag: Some(class),
                    date_tags: TagStyle::Date,
                    extra_tags: vec![("managed-by".into(), "rotation-pipeline".into())],
                    password: None,
                    mfa: false,
                    keys: vec![key],
                    consumers: vec!["github-actions".into()],
                };
                self.add_user(&mut rng, account, 0, plan);
            }
            let changed = self.ago(rng.range(30 * DAY, 80 * DAY));
            let used = self.ago(rng.range(20 * DAY, 29 * DAY));
            let plan = UserPlan {
                name: "breakglass-admin".to_string(),
                created: self.ago(rng.range(400 * DAY, 1200 * DAY)),
                owner_tag: Some("team-security".into()),
                class_tag: None,
                date_tags: TagStyle::None,
                extra_tags: vec![("purpose".into(), "break-glass console access".into())],
                password: Some((changed, Some(used))),
                mfa: true,
                keys: Vec::new(),
                consumers: Vec::new(),
            };
            self.add_user(&mut rng, account, 0, plan);
        }
    }

    // -- agents ---------------------------------------------------------------------------------

    fn agent(&mut self, index: usize) {
        let mut rng = Rng::stream(self.spec.seed, index as u64 + 1);
        let role = &ROLES[index % ROLES.len()];
        let accounts = self.fleet.accounts.len();
        let ctx = AgentCtx {
            name: format!("agent-{}-{:02}", role.name, index + 1),
            team: role.team,
            account: index % accounts,
            region: (index / accounts) % self.fleet.regions.len(),
        };
        let scenario = SCENARIOS.get(index % PERIOD).copied();

        let user = self.agent_user(&mut rng, &ctx, role, scenario);
        self.add_user(&mut rng, ctx.account, ctx.region, user);
        if scenario == Some(Scenario::UnmanagedKey) {
            self.sandbox_user(&mut rng, &ctx);
        }

        let mut anthropic_fingerprint = None;
        let openai = if role.handles_pii {
            tpl("openai-api-key", "OpenAI API key", RiskClass::A, 14)
        } else {
            AGENT_SECRETS[0]
        };
        let templates = std::iter::once(openai)
            .chain(AGENT_SECRETS[1..].iter().copied())
            .chain(std::iter::once(role.extra));
        for template in templates {
            let targeted = scenario.filter(|s| s.secret_target() == Some(template.suffix));
            let mut plan = self.clean_secret(
                &mut rng,
                &format!("prod/{}/{}", ctx.name, template.suffix),
                &format!("{} used by {}", template.what, ctx.name),
                template,
                ctx.team,
                vec![ctx.name.clone()],
                Some(&ctx.name),
                targeted.is_none(),
            );
            if let Some(s) = targeted {
                self.plant_secret(&mut rng, s, &mut plan);
            }
            let completed = self.add_secret(&mut rng, ctx.account, ctx.region, plan);
            if template.suffix == "anthropic-api-key" {
                anthropic_fingerprint = completed
                    .iter()
                    .max_by_key(|&&i| self.fleet.events[i].time)
                    .and_then(|&i| self.fleet.events[i].fingerprint.clone());
            }
            if template.suffix == "openai-api-key" && targeted.is_none() && rng.percent(15) {
                // A consumer that lost access: noise that no rule here looks at.
                let arn = self.fleet.accounts[ctx.account].secrets[ctx.region]
                    .last()
                    .map(|s| s.arn.clone())
                    .unwrap_or_default();
                let at = self.ago(rng.range(DAY, 20 * DAY));
                self.push_event(
                    at,
                    EventType::AccessDenied,
                    &arn,
                    None,
                    None,
                    Some(format!(
                        "AccessDeniedException: role {}-runtime is not allowed secretsmanager:GetSecretValue",
                        ctx.name
                    )),
                );
            }
        }

        if index % 5 == 3 {
            let plan = ExternalPlan {
                id: format!("ext:mistral:{}", ctx.name),
                kind: CredentialKind::LlmApiKey,
                class: Some(RiskClass::B),
                owner: Some(ctx.team.to_string()),
                automated: true,
                max_uses: None,
                consumers: vec![ctx.name.clone()],
                description: format!(
                    "Mistral API key of {}, held in the provider console",
                    ctx.name
                ),
                last_rotated: Some(self.ago(rng.range(DAY, 27 * DAY))),
                trigger: Trigger::Scheduled,
                intended: Vec::new(),
            };
            self.add_external(&mut rng, plan);
        }

        if let Some(s) = scenario {
            self.agent_extras(&mut rng, &ctx, s, anthropic_fingerprint);
        }
    }

    /// The agent's IAM user: one clean key, or a rotation in progress, or a deactivated previous
    /// key awaiting deletion; a key scenario replaces the keys.
    fn agent_user(
        &self,
        rng: &mut Rng,
        ctx: &AgentCtx,
        role: &Role,
        scenario: Option<Scenario>,
    ) -> UserPlan {
        let user = format!("svc-{}", ctx.name);
        let class = role.key_class;
        let interval = i64::from(class_days(Some(class)));
        let mut plan = UserPlan {
            name: user.clone(),
            created: self.ago(rng.range(200 * DAY, 900 * DAY) + rng.range(0, DAY)),
            owner_tag: Some(ctx.team.to_string()),
            class_tag: Some(class),
            date_tags: TagStyle::random(rng),
            extra_tags: vec![("agent".into(), ctx.name.clone())],
            password: None,
            mfa: false,
            keys: Vec::new(),
            consumers: vec![ctx.name.clone()],
        };
        let team = ctx.team;
        match scenario.filter(|s| s.shapes_keys()) {
            None => {
                let variant = rng.below(100);
                if variant < 10 {
                    // Rotation in progress: the new key is less than 20 h old.
                    let old_age = interval * DAY * rng.range(60, 75) / 100;
                    let old_created = self.ago(old_age);
                    let old_used = self.recent_use(rng, old_created);
                    let new_created = self.ago(rng.range(HOUR, 20 * HOUR));
                    let new_used = if rng.percent(50) {
                        Some(self.ago(rng.range(5 * MINUTE, 50 * MINUTE)))
                    } else {
                        None
                    };
                    plan.keys = vec![
                        self.key_at(Some(class), team, &user, old_created, old_used),
                        self.key_at(Some(class), team, &user, new_created, new_used),
                    ];
                    plan.date_tags = TagStyle::None;
                } else if variant < 22 {
                    // The previous key, deactivated at the last rotation, not deleted yet.
                    let current = self.clean_key(rng, class, team, &user);
                    let previous_created =
                        current.created - Duration::seconds(interval * DAY + rng.range(0, DAY));
                    let previous_used =
                        current.created - Duration::seconds(rng.range(10 * MINUTE, 2 * HOUR));
                    let mut previous = self.key_at(
                        Some(class),
                        team,
                        &user,
                        previous_created,
                        Some(previous_used),
                    );
                    previous.active = false;
                    previous.description =
                        format!("previous access key of {user}, deactivated at rotation");
                    plan.keys = vec![previous, current];
                    plan.date_tags = TagStyle::None;
                } else {
                    let mut key = self.clean_key(rng, class, team, &user);
                    if rng.percent(8) {
                        key.anomaly = true;
                        key.trigger = Trigger::Anomaly;
                    }
                    plan.keys = vec![key];
                }
            }
            Some(s) => self.plant_keys(rng, s, &mut plan, role, ctx),
        }
        plan
    }

    // -- secrets --------------------------------------------------------------------------------

    /// A secret that exists and nothing more: never rotated, no rotation configured, undeclared
    /// until the caller says otherwise.
    fn bare_secret(&self, name: String, description: String, created: Ts) -> SecretPlan {
        SecretPlan {
            name,
            description,
            declared: true,
            class: None,
            owner: None,
            owner_tag: false,
            consumers: Vec::new(),
            agent: None,
            automated: false,
            interval_days: None,
            account_declared: true,
            created,
            last_rotated: None,
            rotation: None,
            rotation_enabled: false,
            last_accessed: Some(self.ago(DAY)),
            pending_since: None,
            history: false,
            trigger: Trigger::Manual,
            date_tags: TagStyle::None,
            tag_overrides: Vec::new(),
            extra_events: Vec::new(),
            intended: Vec::new(),
        }
    }

    /// A clean secret from a template: AWS rotation on schedule (or, for `aws_days` 0, rotated by
    /// hand long ago or never), accessed within the week. `vary` allows harmless variety (a
    /// rotation in progress).
    #[allow(clippy::too_many_arguments)]
    fn clean_secret(
        &self,
        rng: &mut Rng,
        name: &str,
        description: &str,
        template: SecretTemplate,
        owner: &str,
        consumers: Vec<String>,
        agent: Option<&str>,
        vary: bool,
    ) -> SecretPlan {
        let mut plan = self.bare_secret(
            name.to_string(),
            description.to_string(),
            self.ago(rng.range(120 * DAY, 700 * DAY) + rng.range(0, DAY)),
        );
        plan.class = Some(template.class);
        plan.owner = Some(owner.to_string());
        plan.owner_tag = true;
        plan.consumers = consumers;
        plan.agent = agent.map(str::to_string);
        plan.interval_days = template.interval_days;
        plan.account_declared = rng.percent(70);
        plan.last_accessed = Some(self.ago(rng.range(0, 5 * DAY)));
        plan.date_tags = TagStyle::random(rng);
        plan.history = true;
        if template.aws_days == 0 {
            // Rotated by hand (class D): long ago, or never.
            plan.automated = false;
            plan.trigger = Trigger::Manual;
            if rng.percent(50) {
                let rotated = self.ago(rng.range(70 * DAY, 300 * DAY));
                plan.last_rotated = Some(rotated);
                plan.created = rotated - Duration::seconds(rng.range(10 * DAY, 300 * DAY));
            } else {
                plan.created = self.ago(rng.range(30 * DAY, 300 * DAY));
            }
        } else {
            let days = i64::from(template.aws_days);
            plan.automated = true;
            plan.trigger = Trigger::Scheduled;
            plan.rotation = Some(RotationRule {
                days: template.aws_days,
                as_rate: rng.percent(30),
            });
            plan.rotation_enabled = true;
            plan.last_rotated = Some(self.ago(rng.range(DAY / 2, (days - 3) * DAY)));
            if vary && rng.percent(5) {
                // A rotation running right now: AWSPENDING written a few hours ago.
                let since = self.ago(rng.range(HOUR, 6 * HOUR));
                plan.pending_since = Some(since);
                plan.extra_events.push((
                    since,
                    EventType::RotationInitiated,
                    "RotateSecret started",
                ));
            }
        }
        plan
    }

    /// Shared service secrets, spread over the accounts and regions; consumed by the first few
    /// agents living there.
    fn shared_secrets(&mut self) {
        let accounts = self.fleet.accounts.len();
        let regions = self.fleet.regions.len();
        for (index, (template, owner)) in SHARED_SECRETS.into_iter().enumerate() {
            let mut rng = Rng::stream(self.spec.seed, 2_000_000 + index as u64);
            let account = index % accounts;
            let region = (index / accounts) % regions;
            let consumers = (0..self.spec.agents)
                .filter(|i| i % accounts == account && (i / accounts) % regions == region)
                .take(6)
                .map(|i| format!("agent-{}-{:02}", ROLES[i % ROLES.len()].name, i + 1))
                .collect();
            let plan = self.clean_secret(
                &mut rng,
                template.suffix,
                &format!("{}, shared", template.what),
                template,
                owner,
                consumers,
                None,
                true,
            );
            self.add_secret(&mut rng, account, region, plan);
        }
    }

    /// Declared-only credentials of the whole fleet: an OAuth app, a TLS certificate, a
    /// warehouse password, a one-time enrolment token.
    fn fleet_externals(&mut self) {
        let mut rng = Rng::stream(self.spec.seed, 3_000_000);
        let plans = [
            (
                "ext:github-app:agent-fleet",
                CredentialKind::OauthClient,
                RiskClass::B,
                "team-platform",
                true,
                None,
                "GitHub App client secret of the agent fleet",
                (DAY, 27 * DAY),
            ),
            (
                FLEET_CERTIFICATE,
                CredentialKind::Certificate,
                RiskClass::D,
                "team-security",
                false,
                None,
                "TLS certificate of the agents' internal endpoint",
                (40 * DAY, 55 * DAY),
            ),
            (
                "ext:db:warehouse/analytics-readonly",
                CredentialKind::DbPassword,
                RiskClass::C,
                "team-data",
                true,
                None,
                "read-only warehouse password held in the BI tool",
                (DAY, 50 * DAY),
            ),
            (
                "ext:enrollment:bootstrap-token",
                CredentialKind::Other,
                RiskClass::C,
                "team-platform",
                true,
                Some(1),
                "one-time enrolment token for new agents",
                (DAY, 10 * DAY),
            ),
        ];
        for (id, kind, class, owner, automated, max_uses, description, (lo, hi)) in plans {
            let plan = ExternalPlan {
                id: id.to_string(),
                kind,
                class: Some(class),
                owner: Some(owner.to_string()),
                automated,
                max_uses,
                consumers: Vec::new(),
                description: description.to_string(),
                last_rotated: Some(self.ago(rng.range(lo, hi))),
                trigger: if automated {
                    Trigger::Scheduled
                } else {
                    Trigger::Manual
                },
                intended: Vec::new(),
            };
            self.add_external(&mut rng, plan);
        }
    }

    // -- materialise ----------------------------------------------------------------------------

    /// Draws ids, records history and declarations, and stores the user.
    fn add_user(&mut self, rng: &mut Rng, account: usize, region: usize, mut plan: UserPlan) {
        let account_id = self.account_id(account);
        let region_name = self.region(region);
        let user_id = self.unique(rng, "AIDA", BASE32, 17);
        plan.keys.sort_by_key(|k| k.created);
        let single = plan.keys.len() == 1;
        let mut keys = Vec::with_capacity(plan.keys.len());
        let mut dates: Option<(Ts, Ts)> = None;
        for key in plan.keys {
            let id = self.unique(rng, "AKIA", BASE32, 16);
            let mut last_rotation = key.created;
            self.record_key_anomalies(&key, &id, &plan.name);
            if key.history {
                let details = format!("new access key for {}", plan.name);
                if let Some(i) = self.record_rotation(rng, &id, key.created, key.trigger, &details)
                {
                    last_rotation = last_rotation.max(self.fleet.events[i].time);
                }
            }
            if key.declared {
                self.fleet.declared.push(Declared {
                    id: id.clone(),
                    kind: CredentialKind::IamAccessKey,
                    class: key.class,
                    owner: key.owner.clone(),
                    consumers: plan.consumers.clone(),
                    automated: key.automated,
                    interval_days: None,
                    max_uses: None,
                    account: Some(account_id.clone()),
                    description: key.description.clone(),
                });
            }
            for rule in &key.intended {
                self.plant(rule, &id);
            }
            if single {
                let interval = i64::from(interval_days(key.class, None));
                dates = Some((
                    last_rotation,
                    last_rotation + Duration::seconds(interval * DAY),
                ));
            }
            keys.push(Key {
                id,
                active: key.active,
                created: key.created,
                last_used: key.last_used.map(|t| LastUse {
                    time: minute(t),
                    region: region_name.clone(),
                    service: rng.pick(&SERVICES).to_string(),
                }),
            });
        }

        let mut tags = Vec::new();
        if let Some(owner) = plan.owner_tag {
            tags.push(("owner".to_string(), owner));
        }
        if let Some(class) = plan.class_tag {
            tags.push(("class".to_string(), class.as_str().to_string()));
        }
        tags.extend(plan.extra_tags);
        if let Some((last, next)) = dates
            && let (Some(last), Some(next)) =
                (plan.date_tags.format(last), plan.date_tags.format(next))
        {
            tags.push(("last-rotation-date".to_string(), last));
            tags.push(("next-rotation-date".to_string(), next));
        }

        self.fleet.accounts[account].users.push(User {
            name: plan.name,
            user_id,
            created: plan.created,
            password: plan.password,
            mfa: plan.mfa,
            tags,
            keys,
        });
    }

    /// Records the anomalies of one access key of `user`: one 20 minutes before the key was
    /// made (when the history reaches back that far), and one still open.
    fn record_key_anomalies(&mut self, key: &KeyPlan, id: &str, user: &str) {
        if key.anomaly {
            let at = key.created - Duration::seconds(20 * MINUTE);
            if at >= self.history_start {
                self.push_event(
                    at,
                    EventType::AnomalyDetected,
                    id,
                    None,
                    None,
                    Some(format!("calls from an unexpected network for {user}")),
                );
            }
        }
        if let Some(at) = key.open_anomaly {
            self.push_event(
                at,
                EventType::AnomalyDetected,
                id,
                None,
                None,
                Some(format!(
                    "calls from an unexpected network and region for {user}"
                )),
            );
        }
    }

    /// Draws the ARN, records history and the declaration, and stores the secret. Returns the
    /// indices of its `rotation.completed` events.
    fn add_secret(
        &mut self,
        rng: &mut Rng,
        account: usize,
        region: usize,
        plan: SecretPlan,
    ) -> Vec<usize> {
        let account_id = self.account_id(account);
        let region_name = self.region(region);
        let arn = loop {
            let arn = format!(
                "arn:aws:secretsmanager:{region_name}:{account_id}:secret:{}-{}",
                plan.name,
                rng.chars(ALNUM, 6)
            );
            if self.taken.insert(arn.clone()) {
                break arn;
            }
        };

        let completed = self.record_secret_history(rng, &arn, &plan);

        let observed_rotation = plan.last_rotated.unwrap_or(plan.created);
        let last_rotation = completed
            .iter()
            .map(|&i| self.fleet.events[i].time)
            .fold(observed_rotation, Ts::max);
        let interval = i64::from(interval_days(plan.class, plan.interval_days));
        let due = last_rotation + Duration::seconds(interval * DAY);

        let tags = secret_tags(&plan, last_rotation, due);

        let mut versions = vec![(rng.uuid(), vec!["AWSCURRENT"])];
        if plan.last_rotated.is_some() {
            versions.push((rng.uuid(), vec!["AWSPREVIOUS"]));
        }
        let mut last_changed = observed_rotation + Duration::seconds(5);
        if let Some(since) = plan.pending_since {
            versions.push((rng.uuid(), vec!["AWSPENDING"]));
            last_changed = since;
        }
        // AWS schedules the next rotation one interval after the last.
        let next_rotation = match (plan.rotation_enabled, plan.rotation) {
            (true, Some(rule)) => {
                Some(observed_rotation + Duration::seconds(i64::from(rule.days) * DAY))
            }
            _ => None,
        };
        let slug = plan.name.rsplit('/').next().unwrap_or("secret");
        let lambda_arn = plan.rotation.map(|_| {
            format!("arn:aws:lambda:{region_name}:{account_id}:function:secrets-rotation-{slug}")
        });

        if plan.declared {
            self.fleet.declared.push(Declared {
                id: arn.clone(),
                kind: CredentialKind::Secret,
                class: plan.class,
                owner: plan.owner.clone(),
                consumers: plan.consumers.clone(),
                automated: plan.automated,
                interval_days: plan.interval_days,
                max_uses: None,
                account: plan.account_declared.then(|| account_id.clone()),
                description: plan.description.clone(),
            });
        }
        for rule in &plan.intended {
            self.plant(rule, &arn);
        }
        self.fleet.accounts[account].secrets[region].push(Secret {
            name: plan.name,
            arn,
            description: plan.description,
            created: plan.created,
            last_changed,
            last_rotated: plan.last_rotated,
            last_accessed: plan.last_accessed.map(day),
            rotation_enabled: plan.rotation_enabled,
            rotation: plan.rotation,
            lambda_arn,
            next_rotation,
            tags,
            versions,
        });
        completed
    }

    /// Records the rotation history of a secret: its rotations (back to the start of the
    /// history for a scheduled one) and extra events. Returns the indices of its
    /// `rotation.completed` events.
    fn record_secret_history(&mut self, rng: &mut Rng, arn: &str, plan: &SecretPlan) -> Vec<usize> {
        let mut completed = Vec::new();
        if let (true, Some(rotated)) = (plan.history, plan.last_rotated) {
            let details = if plan.rotation_enabled {
                "RotateSecret by the rotation lambda"
            } else {
                "PutSecretValue by hand (runbook RB-3)"
            };
            // The last rotation, and for a scheduled secret the earlier cycles back to the start
            // of the history.
            let cycle = plan
                .rotation
                .filter(|_| plan.rotation_enabled)
                .map(|rule| Duration::seconds(i64::from(rule.days) * DAY));
            let mut at = Some(rotated);
            while let Some(t) = at
                && let Some(i) = self.record_rotation(rng, arn, t, plan.trigger, details)
            {
                completed.push(i);
                at = cycle.map(|c| t - c);
            }
        }
        for (time, kind, details) in &plan.extra_events {
            let fingerprint =
                (*kind == EventType::RotationCompleted).then(|| format!("sha256:{}", rng.hex(32)));
            let i = self.push_event(
                *time,
                *kind,
                arn,
                Some(plan.trigger),
                fingerprint,
                Some(details.to_string()),
            );
            if *kind == EventType::RotationCompleted {
                completed.push(i);
            }
        }
        if plan.intended.contains(&"credential-reuse") && completed.len() >= 2 {
            // The latest rotation put back the value of the earliest one.
            completed.sort_by_key(|&i| self.fleet.events[i].time);
            let first = self.fleet.events[completed[0]].fingerprint.clone();
            let last = completed[completed.len() - 1];
            self.fleet.events[last].fingerprint = first;
        }
        completed
    }

    /// Declares an external credential and records its rotations. Returns the indices of its
    /// `rotation.completed` events.
    fn add_external(&mut self, rng: &mut Rng, plan: ExternalPlan) -> Vec<usize> {
        self.taken.insert(plan.id.clone());
        let interval = i64::from(interval_days(plan.class, None));
        let mut completed = Vec::new();
        let mut at = plan.last_rotated;
        while let Some(t) = at {
            match self.record_rotation(
                rng,
                &plan.id,
                t,
                plan.trigger,
                "new credential issued by the provider",
            ) {
                Some(i) => completed.push(i),
                None => break,
            }
            at = Some(t - Duration::seconds(interval * DAY));
        }
        for rule in &plan.intended {
            self.plant(rule, &plan.id);
        }
        self.fleet.declared.push(Declared {
            id: plan.id,
            kind: plan.kind,
            class: plan.class,
            owner: plan.owner,
            consumers: plan.consumers,
            automated: plan.automated,
            interval_days: None,
            max_uses: plan.max_uses,
            account: None,
            description: plan.description,
        });
        completed
    }

    fn finish(mut self) -> Fleet {
        for account in &mut self.fleet.accounts {
            account.users.sort_by(|a, b| a.name.cmp(&b.name));
            for secrets in &mut account.secrets {
                secrets.sort_by(|a, b| a.name.cmp(&b.name));
            }
        }
        self.fleet
            .events
            .sort_by(|a, b| (a.time, &a.credential, a.kind).cmp(&(b.time, &b.credential, b.kind)));
        self.fleet
    }
}

/// The tags of a secret that was last rotated at `last_rotation` and falls due at `due`, with
/// the plan's overrides applied.
fn secret_tags(plan: &SecretPlan, last_rotation: Ts, due: Ts) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> = Vec::new();
    if let (true, Some(owner)) = (plan.owner_tag, &plan.owner) {
        tags.push(("owner".into(), owner.clone()));
    }
    if let Some(class) = plan.class {
        tags.push(("class".into(), class.as_str().into()));
    }
    if let Some(agent) = &plan.agent {
        tags.push(("agent".into(), agent.clone()));
    }
    tags.push((
        "env".into(),
        if plan.name.starts_with("dev/") {
            "dev"
        } else {
            "prod"
        }
        .into(),
    ));
    tags.push((
        "managed-by".into(),
        if plan.automated {
            "rotation-pipeline"
        } else {
            "manual"
        }
        .into(),
    ));
    if let (Some(last), Some(next)) = (
        plan.date_tags.format(last_rotation),
        plan.date_tags.format(due),
    ) {
        tags.push(("last-rotation-date".into(), last));
        tags.push(("next-rotation-date".into(), next));
    }
    for (key, value) in &plan.tag_overrides {
        match tags.iter_mut().find(|(k, _)| k == key) {
            Some(tag) => tag.1 = value.clone(),
            None => tags.push((key.to_string(), value.clone())),
        }
    }
    tags
}
