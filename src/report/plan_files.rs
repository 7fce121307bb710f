//! The remediation plan as bundle files: `remediation-plan.csv` (one row per action, for people
//! and spreadsheets) and `remediation-plan.json` (one job per credential, for a rotation
//! pipeline).

use std::borrow::Cow;
use std::io::Write;

use serde::Serialize;

use super::SCHEMA_VERSION;
use crate::output::write_csv;
use crate::plan::{Action, Job, Plan};

/// Columns of `remediation-plan.csv`, in order.
pub const PLAN_CSV_HEADER: [&str; 14] = [
    "priority",
    "action",
    "severity",
    "credential",
    "kind",
    "account",
    "region",
    "owner",
    "due",
    "description",
    "command",
    "rules",
    "controls",
    "fingerprints",
];

/// [`write_plan_csv`] into memory, for tests.
#[cfg(test)]
pub fn plan_csv(plan: &Plan) -> Vec<u8> {
    let mut bytes = Vec::new();
    write_plan_csv(plan, &mut bytes).expect("writing to memory cannot fail");
    bytes
}

/// `remediation-plan.csv`, streamed into `out` one row at a time: one row per action in plan
/// order; list cells are joined with a space. Every cell is neutralised against formula
/// injection.
pub fn write_plan_csv(plan: &Plan, out: impl Write) -> std::io::Result<()> {
    let header = PLAN_CSV_HEADER.iter().map(|h| Cow::Borrowed(*h)).collect();
    let rows = plan.actions.iter().map(|a| {
        vec![
            Cow::Owned(a.priority.to_string()),
            a.action.as_str().into(),
            a.severity.as_str().into(),
            a.credential.as_str().into(),
            a.kind.as_str().into(),
            a.account.as_str().into(),
            a.region.as_str().into(),
            a.owner.as_str().into(),
            a.due.as_str().into(),
            a.description.as_str().into(),
            a.command.as_deref().unwrap_or_default().into(),
            a.rules.join(" ").into(),
            a.controls.join(" ").into(),
            a.fingerprints.join(" ").into(),
        ]
    });
    write_csv(out, std::iter::once(header).chain(rows))
}

/// `remediation-plan.json`: the plan as a rotation pipeline reads it. A view of the plan, so
/// the stored [`Plan`] may change without changing this document (its `schema_version` does,
/// when its shape does).
#[derive(Debug, Serialize)]
pub struct PlanDocument<'a> {
    pub schema_version: u32,
    /// RFC 3339.
    pub as_of: &'a str,
    /// One job per credential, worst first.
    pub jobs: Jobs<'a>,
}

/// One job of `remediation-plan.json`: every action for one credential.
#[derive(Debug, Serialize)]
pub struct JobView<'a> {
    pub credential: &'a str,
    pub kind: &'a str,
    pub account: &'a str,
    pub region: &'a str,
    pub owner: &'a str,
    /// RFC 3339: the earliest due time of its actions.
    pub due: &'a str,
    pub severity: &'static str,
    /// True when the job asks for a rotation (rotate-now or emergency rotation).
    pub rotate: bool,
    pub emergency: bool,
    pub actions: Vec<ActionView<'a>>,
}

/// One action of a job.
#[derive(Debug, Serialize)]
pub struct ActionView<'a> {
    /// 1 = most urgent.
    pub priority: u32,
    /// Kebab-case action kind, e.g. `rotate-now`.
    pub action: &'static str,
    pub severity: &'static str,
    pub credential: &'a str,
    pub kind: &'a str,
    pub account: &'a str,
    pub region: &'a str,
    pub owner: &'a str,
    /// RFC 3339.
    pub due: &'a str,
    pub description: &'a str,
    /// The proposed AWS CLI command, shell-quoted; `null` when none applies.
    pub command: Option<&'a str>,
    pub rules: &'a [String],
    pub fingerprints: &'a [String],
    /// `framework:control` ids it restores.
    pub controls: &'a [String],
}

impl<'a> From<&'a Job> for JobView<'a> {
    fn from(job: &'a Job) -> Self {
        JobView {
            credential: &job.credential,
            kind: &job.kind,
            account: &job.account,
            region: &job.region,
            owner: &job.owner,
            due: &job.due,
            severity: job.severity.as_str(),
            rotate: job.rotate,
            emergency: job.emergency,
            actions: job.actions.iter().map(ActionView::from).collect(),
        }
    }
}

impl<'a> From<&'a Action> for ActionView<'a> {
    fn from(a: &'a Action) -> Self {
        ActionView {
            priority: a.priority,
            action: a.action.as_str(),
            severity: a.severity.as_str(),
            credential: &a.credential,
            kind: &a.kind,
            account: &a.account,
            region: &a.region,
            owner: &a.owner,
            due: &a.due,
            description: &a.description,
            command: a.command.as_deref(),
            rules: &a.rules,
            fingerprints: &a.fingerprints,
            controls: &a.controls,
        }
    }
}

/// [`write_plan_json`] into memory, for tests.
#[cfg(test)]
pub fn plan_json(plan: &Plan, as_of: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    write_plan_json(plan, as_of, &mut bytes).expect("writing to memory cannot fail");
    bytes
}

/// `remediation-plan.json`, serialised straight into `out`: `{"schema_version": 1, "as_of": …,
/// "jobs": […]}`, one job per credential (worst first) with its actions, pretty-printed and
/// ending in a newline. Each job's view is made as it is written, so no copy of the plan is
/// held in memory.
pub fn write_plan_json(plan: &Plan, as_of: &str, mut out: impl Write) -> std::io::Result<()> {
    let doc = PlanDocument {
        schema_version: SCHEMA_VERSION,
        as_of,
        jobs: Jobs(&plan.jobs),
    };
    serde_json::to_writer_pretty(&mut out, &doc)?;
    out.write_all(b"\n")
}

/// The jobs of a plan, serialised as a list of [`JobView`]s made one at a time.
#[derive(Debug)]
pub struct Jobs<'a>(pub &'a [Job]);

impl Serialize for Jobs<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(JobView::from))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{Finding, Severity};
    use crate::plan::{PlanConfig, build};
    use crate::rules::testkit::*;

    fn sample_plan() -> Plan {
        let k = key("AKIAKEY0000000000001", "svc-a", 60);
        let facts = facts(
            vec![k.clone()],
            declare_all(std::slice::from_ref(&k)),
            vec![],
        );
        let of_key = |rule: &str, severity| Finding {
            rule: rule.to_string(),
            severity,
            credential: k.id.clone(),
            kind: k.kind,
            account: Some(k.account.clone()),
            region: Some(k.region.clone()),
            owner: Some("team".into()),
            principal: None,
            message: format!("{rule} happened"),
            evidence: vec![],
            waiver: None,
        };
        let hostile = Finding {
            credential: "=HYPERLINK(\"http://evil\")".into(),
            owner: Some("@team".into()),
            principal: None,
            ..of_key("unmanaged-credential", Severity::High)
        };
        let findings = vec![
            of_key("rotation-overdue", Severity::Critical),
            of_key("credential-reuse", Severity::High),
            hostile,
        ];
        let controls = BTreeMap::from([(
            "rotation-overdue".to_string(),
            vec!["pci-dss:8.3.9".to_string(), "cis-aws:1.14".to_string()],
        )]);
        build(
            &facts,
            &findings,
            &controls,
            as_of(),
            &PlanConfig::default(),
        )
    }

    #[test]
    fn csv_has_one_neutralised_row_per_action() {
        let plan = sample_plan();
        let bytes = plan_csv(&plan);
        let mut reader = ::csv::Reader::from_reader(bytes.as_slice());
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(header, PLAN_CSV_HEADER);
        let rows: Vec<::csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), plan.actions.len());
        assert_eq!(rows.len(), 2);

        let rotate = &rows[0];
        assert_eq!(&rotate[0], "1");
        assert_eq!(&rotate[1], "rotate-now");
        assert_eq!(&rotate[2], "critical");
        assert_eq!(&rotate[3], "AKIAKEY0000000000001");
        assert_eq!(&rotate[8], "2026-11-02T00:00:00Z");
        assert_eq!(&rotate[10], "aws iam create-access-key --user-name svc-a");
        assert_eq!(&rotate[11], "credential-reuse rotation-overdue");
        assert_eq!(&rotate[12], "cis-aws:1.14 pci-dss:8.3.9");
        assert_eq!(rotate[13].split(' ').count(), 2);

        let hostile = &rows[1];
        assert_eq!(&hostile[1], "add-to-inventory");
        assert_eq!(&hostile[3], "'=HYPERLINK(\"http://evil\")");
        assert_eq!(&hostile[7], "'@team");
        assert_eq!(&hostile[10], "", "an inventory edit has no command");
    }

    #[test]
    fn json_has_one_job_per_credential() {
        let plan = sample_plan();
        let bytes = plan_json(&plan, "2026-11-01T00:00:00Z");
        assert_eq!(bytes.last(), Some(&b'\n'));
        let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(doc["schema_version"], 1);
        assert_eq!(doc["as_of"], "2026-11-01T00:00:00Z");
        let jobs = doc["jobs"].as_array().unwrap();
        assert_eq!(jobs.len(), 2);
        let first = &jobs[0];
        assert_eq!(first["credential"], "AKIAKEY0000000000001");
        assert_eq!(first["severity"], "critical");
        assert_eq!(first["rotate"], true);
        assert_eq!(first["emergency"], false);
        assert_eq!(first["due"], "2026-11-02T00:00:00Z");
        let actions = first["actions"].as_array().unwrap();
        assert_eq!(actions.len(), 1);
        assert_eq!(actions[0]["action"], "rotate-now");
        assert_eq!(
            actions[0]["rules"],
            serde_json::json!(["credential-reuse", "rotation-overdue"])
        );
        assert_eq!(jobs[1]["actions"][0]["command"], serde_json::Value::Null);
        // Same plan, same bytes.
        assert_eq!(plan_json(&sample_plan(), "2026-11-01T00:00:00Z"), bytes);
    }
}
