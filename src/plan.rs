//! Findings -> remediation plan: one concrete, dated action per open finding, grouped into one
//! job per credential for a rotation pipeline; and the hygiene score per owner and for the fleet.

use serde::Serialize;

use crate::model::Severity;

/// What to do about a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
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

/// One action of the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub jobs: Vec<Job>,
    pub fleet_score: Score,
    pub owner_scores: Vec<Score>,
}
