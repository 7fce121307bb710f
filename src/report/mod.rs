//! Rendering: a versioned view model built from a run's findings, written as JSON and CSV.
//! Reports never compute findings; they only present them.

pub mod bundle;
pub mod csv;
pub mod html;
pub mod json;
pub mod junit;
pub mod listing;
pub mod markdown;
pub mod plan_files;
pub mod sarif;
pub mod view;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{Finding, Severity, Timestamp};
/// Report files are written atomically and owner-only, never through a symlink.
pub use crate::output::write_atomic;

/// Version of the report view model; bumped on any incompatible change to its JSON shape.
pub const SCHEMA_VERSION: u32 = 1;

/// One finding as every report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct FindingView {
    pub rule: String,
    pub severity: Severity,
    pub credential: String,
    /// Who holds the credential (IAM user, `root`, secret name); empty when unknown.
    pub principal: String,
    pub kind: String,
    pub account: String,
    pub region: String,
    pub owner: String,
    pub message: String,
    pub fingerprint: String,
    pub evidence: Vec<EvidenceView>,
    /// The waiver in force that accepts this finding, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiver: Option<WaiverView>,
    /// Line of the credential's declaration in the inventory file, when it is declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inventory_line: Option<usize>,
}

/// One (key, value) pair of evidence.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceView {
    pub key: String,
    pub value: String,
}

impl From<&Finding> for FindingView {
    fn from(f: &Finding) -> Self {
        FindingView {
            rule: f.rule.clone(),
            severity: f.severity,
            credential: f.credential.clone(),
            principal: f.principal.clone().unwrap_or_default(),
            kind: f.kind.to_string(),
            account: f.account.clone().unwrap_or_default(),
            region: f.region.clone().unwrap_or_default(),
            owner: f.owner.clone().unwrap_or_default(),
            message: f.message.clone(),
            fingerprint: f.fingerprint(),
            evidence: f
                .evidence
                .iter()
                .map(|(key, value)| EvidenceView {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
            waiver: f.waiver.as_ref().map(|w| WaiverView {
                ticket: w.ticket.clone(),
                approver: w.approver.clone(),
                reason: w.reason.clone(),
                expires: w.expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            }),
            inventory_line: None,
        }
    }
}

/// A waiver as reports show it.
#[derive(Debug, Clone, Serialize)]
pub struct WaiverView {
    pub ticket: String,
    pub approver: String,
    pub reason: String,
    pub expires: String,
}

/// Counts of findings, for summaries.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub total: usize,
    pub by_severity: BTreeMap<String, usize>,
    pub by_rule: BTreeMap<String, usize>,
}

impl Summary {
    pub fn of(findings: &[Finding]) -> Self {
        let mut summary = Summary {
            total: findings.len(),
            ..Default::default()
        };
        for severity in [
            Severity::Critical,
            Severity::High,
            Severity::Medium,
            Severity::Low,
            Severity::Info,
        ] {
            summary.by_severity.insert(severity.to_string(), 0);
        }
        for f in findings {
            *summary
                .by_severity
                .entry(f.severity.to_string())
                .or_default() += 1;
            *summary.by_rule.entry(f.rule.clone()).or_default() += 1;
        }
        summary
    }

    /// "3 critical, 12 high, …" with the zero counts left out.
    pub fn severity_line(&self) -> String {
        let parts: Vec<String> = ["critical", "high", "medium", "low", "info"]
            .iter()
            .filter_map(|s| {
                let n = self.by_severity.get(*s).copied().unwrap_or(0);
                (n > 0).then(|| format!("{n} {s}"))
            })
            .collect();
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// What a set of output files is about (nothing here varies between identical evaluations).
#[derive(Debug, Clone, Serialize)]
pub struct ReportHeader {
    pub tool: &'static str,
    pub version: &'static str,
    pub as_of: String,
}

impl ReportHeader {
    pub fn new(as_of: Timestamp) -> Self {
        ReportHeader {
            tool: "credaudit",
            version: env!("CARGO_PKG_VERSION"),
            as_of: as_of.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}
