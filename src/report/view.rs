//! The versioned view model every bundle file renders from. Built from a stored run; the
//! templates and writers see only these types, never the internal ones.

use serde::Serialize;

use super::{FindingView, Summary};
use crate::model::{CoverageEntry, RotationEvent};
use crate::plan::Plan;

/// Everything the bundle shows about one run.
#[derive(Debug, Clone, Serialize)]
pub struct ReportView<'a> {
    pub schema_version: u32,
    pub tool: &'static str,
    pub version: &'static str,
    pub run: RunView,
    pub summary: Summary,
    /// In canonical order: severity (worst first), rule, credential.
    pub findings: Vec<FindingView>,
    pub frameworks: Vec<FrameworkView>,
    pub plan: Plan,
    /// Declared vs observed, one row per credential.
    pub inventory: Vec<InventoryRow>,
    /// Rotation history and lifecycle evidence, oldest first.
    pub events: Vec<EventView<'a>>,
    pub coverage: Vec<CoverageEntry>,
    /// The evidence sources the run had, per account and region (declared inputs without).
    pub sources: Vec<SourceView>,
    /// Rotations per calendar month (`YYYY-MM`), oldest first, for the chart.
    pub rotations_by_month: Vec<MonthCount>,
    /// Every rule, whether it ran (and why not), for the legend and drill-down.
    pub rules: Vec<RuleView>,
    /// What changed since the previous run of the same snapshot, when there is one.
    pub diff: Option<DiffView>,
    /// Where the declared inventory came from (for SARIF locations), if a file.
    pub inventory_file: Option<String>,
    /// Waivers that matched no finding of the run.
    pub unmatched_waivers: Vec<UnmatchedWaiverView>,
}

/// A waiver that matched no finding.
#[derive(Debug, Clone, Serialize)]
pub struct UnmatchedWaiverView {
    pub line: usize,
    pub rule: String,
    pub credential: String,
    pub ticket: String,
    pub expires: String,
}

/// New, resolved and persisting findings against an earlier run, keyed by fingerprint.
#[derive(Debug, Clone, Serialize)]
pub struct DiffView {
    pub from_run: i64,
    pub to_run: i64,
    /// Findings of this run that the earlier run did not have.
    pub new: Vec<FindingView>,
    /// Findings of the earlier run that this run no longer has.
    pub resolved: Vec<FindingView>,
    /// How many findings both runs have.
    pub persisting: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    pub id: i64,
    pub as_of: String,
    pub recorded_at: String,
    pub source: String,
    /// `complete` or `partial`.
    pub status: String,
    pub content_hash: String,
    pub accounts: Vec<String>,
    pub credentials_observed: usize,
    pub credentials_declared: usize,
    /// The shards of a run made by `credaudit merge` (empty for a scan's run).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<crate::merge::ShardSource>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FrameworkView {
    pub id: String,
    pub name: String,
    pub version: String,
    pub pass: usize,
    pub fail: usize,
    pub not_assessed: usize,
    pub not_applicable: usize,
    pub manual: usize,
    pub controls: Vec<ControlView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ControlView {
    pub id: String,
    pub title: String,
    pub reason: String,
    pub rules: Vec<String>,
    /// `pass`, `fail`, `not-assessed`, `not-applicable` or `manual`.
    pub status: String,
    /// Why it is `not-assessed` (e.g. "no CloudTrail in this run (anomalous-usage did not
    /// run)"); empty for every other status.
    pub status_reason: String,
    /// Open findings of its rules in scope.
    pub findings: usize,
    pub in_scope: usize,
    /// Credentials that make it fail (by a finding or by the control's own threshold).
    pub failing_credentials: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InventoryRow {
    pub credential: String,
    pub kind: String,
    /// `reconciled` (declared and observed), `unmanaged` (observed only), `orphaned` (declared,
    /// discoverable, not found), or `declared-only` (a kind no scan can see).
    pub reconciliation: String,
    pub declared: bool,
    pub observed: bool,
    pub class: String,
    pub owner: String,
    pub owner_status: String,
    pub account: String,
    pub region: String,
    pub principal: String,
    pub status: String,
    pub automated: bool,
    pub consumers: String,
    pub last_rotation: String,
    pub last_used: String,
    /// Days since the last rotation (one decimal), if known.
    pub age_days: Option<f64>,
    pub interval_days: i64,
    pub findings: usize,
}

#[derive(Debug, Clone, Serialize)]
/// One rotation event of the run's facts, with its time as shown (a year of history is a
/// million events: the view refers to them, it does not copy them).
pub struct EventView<'a> {
    pub time: String,
    pub event: &'a RotationEvent,
}

impl EventView<'_> {
    pub fn credential(&self) -> &str {
        &self.event.credential_id
    }

    pub fn event_type(&self) -> &'static str {
        self.event.event_type.as_str()
    }

    /// Empty when the event names no trigger.
    pub fn trigger(&self) -> &'static str {
        self.event.trigger.map(|t| t.as_str()).unwrap_or_default()
    }

    pub fn fingerprint(&self) -> &str {
        self.event.fingerprint.as_deref().unwrap_or_default()
    }

    pub fn details(&self) -> &str {
        self.event.details.as_deref().unwrap_or_default()
    }

    pub fn source(&self) -> &str {
        &self.event.source
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MonthCount {
    pub month: String,
    pub completed: usize,
    pub failed: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleView {
    pub id: &'static str,
    /// Its title and rationale with the run's policy numbers filled in.
    pub title: String,
    pub severity: &'static str,
    pub rationale: String,
    pub remediation: &'static str,
    /// The evidence sources it needs (kebab-case ids).
    pub sources: Vec<&'static str>,
    /// Whether it ran in this run.
    pub ran: bool,
    /// Whether it ran on every source it reads (false: it ran in part, or not at all).
    pub complete: bool,
    /// Why it did not run or ran in part, e.g. "no CloudTrail in this run"; empty when complete.
    pub reason: String,
}

/// One evidence source the run had, where.
#[derive(Debug, Clone, Serialize)]
pub struct SourceView {
    /// Kebab-case id, e.g. `cloudtrail`.
    pub source: &'static str,
    /// In words, e.g. `CloudTrail`.
    pub name: &'static str,
    /// Empty for a declared input (inventory, rotation history).
    pub account: String,
    pub region: String,
    pub records: u64,
    /// What the source cannot tell, e.g. the credential report's age.
    pub caveat: Option<&'static str>,
}
