//! `findings.sarif`: the findings of a run as one SARIF 2.1.0 run, for code-scanning dashboards
//! (GitHub code scanning, Azure DevOps, any SARIF viewer).
//!
//! Every rule that ran is a `reportingDescriptor`; every open (unwaived) finding is a `result` keyed by its
//! stable fingerprint (`partialFingerprints["credaudit/v1"]`), so a dashboard tracks a finding
//! across nights the same way `credaudit diff` does. A finding about a declared credential
//! points at its line in the inventory file, where the fix usually starts; any other finding
//! names the credential as a logical location (`aws/<account>/<region>/<credential>`).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::FindingView;
use super::view::ReportView;
use crate::model::Severity;

/// The schema URI written into `$schema`.
pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The SARIF version written into `version`.
pub const SARIF_VERSION: &str = "2.1.0";

/// Key of the stable fingerprint in `partialFingerprints`.
pub const FINGERPRINT_KEY: &str = "credaudit/v1";

/// Inventory path used in locations when the view does not say where the inventory came from.
pub const DEFAULT_INVENTORY_FILE: &str = "inventory.toml";

/// SARIF `level` of a severity: critical and high are errors, medium a warning, the rest notes.
pub fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// The `security-severity` score (a string, as GitHub code scanning reads it) of a severity.
pub fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.0",
        Severity::High => "7.0",
        Severity::Medium => "5.0",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

/// [`write_findings_sarif`] into memory, for tests.
#[cfg(test)]
pub fn findings_sarif(view: &ReportView) -> Vec<u8> {
    let mut bytes = Vec::new();
    write_findings_sarif(view, &mut bytes).expect("writing to memory cannot fail");
    bytes
}

/// Writes the findings of `view` into `out` as a pretty-printed SARIF 2.1.0 log with a trailing
/// newline. The output depends only on the view, so the same run always gives the same bytes.
/// Each result is made as it is written, so the log is never held in memory whole.
pub fn write_findings_sarif(view: &ReportView, mut out: impl Write) -> std::io::Result<()> {
    // A waived finding is accepted risk, not an open result: it stays in findings.json and
    // findings.csv with its waiver, and out of code-scanning dashboards.
    let open: Vec<&FindingView> = view
        .findings
        .iter()
        .filter(|f| f.waiver.is_none())
        .collect();
    let (rules, rule_index) = rule_descriptors(view, &open);
    let results = OpenResults::new(view, &open, &rule_index);
    let invocation = invocation(view);
    let not_assessed = controls_not_assessed(view);

    let log = SarifLog {
        schema: SARIF_SCHEMA,
        version: SARIF_VERSION,
        runs: [SarifRun {
            tool: json!({
                "driver": {
                    "name": view.tool,
                    "version": view.version,
                    "semanticVersion": view.version,
                    "rules": rules,
                }
            }),
            invocations: [Value::Object(invocation)],
            results,
            properties: json!({
                "run-id": view.run.id,
                "as-of": view.run.as_of,
                "status": view.run.status,
                "content-hash": view.run.content_hash,
                "controls-not-assessed": not_assessed,
            }),
        }],
    };
    serde_json::to_writer_pretty(&mut out, &log)?;
    out.write_all(b"\n")
}

/// The log: one run. Small parts are JSON values; the results are written one at a time.
#[derive(Serialize)]
struct SarifLog<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: [SarifRun<'a>; 1],
}

#[derive(Serialize)]
struct SarifRun<'a> {
    tool: Value,
    invocations: [Value; 1],
    results: OpenResults<'a>,
    properties: Value,
}

/// Where each rule's descriptor sits in `tool.driver.rules`.
struct RuleIndex<'a> {
    /// The rules the view lists, by id.
    listed: BTreeMap<&'a str, usize>,
    /// The rules of open findings that the view does not list.
    extra: BTreeMap<String, usize>,
}

impl RuleIndex<'_> {
    /// The `ruleIndex` of a finding's rule (0 if it has no descriptor, which cannot happen).
    fn of(&self, rule: &str) -> usize {
        self.listed
            .get(rule)
            .or_else(|| self.extra.get(rule))
            .copied()
            .unwrap_or(0)
    }
}

/// A `reportingDescriptor` per rule of the view, then one per rule of an open finding that the
/// view does not list, with where each sits.
fn rule_descriptors<'a>(
    view: &'a ReportView,
    open: &[&FindingView],
) -> (Vec<Value>, RuleIndex<'a>) {
    let rule_tags = rule_tags(view);
    let mut rules: Vec<Value> = Vec::with_capacity(view.rules.len());
    let mut rule_index: BTreeMap<&str, usize> = BTreeMap::new();
    for rule in &view.rules {
        let severity = rule.severity.parse().unwrap_or(Severity::High);
        rule_index.entry(rule.id).or_insert(rules.len());
        rules.push(rule_descriptor(
            rule.id,
            &rule.title,
            &rule.rationale,
            rule.remediation,
            severity,
            rule_tags.get(rule.id),
        ));
    }
    // A finding of a rule the view does not list still needs a descriptor for its ruleIndex.
    let mut extra: Vec<(String, Severity)> = Vec::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for finding in open {
        if !rule_index.contains_key(finding.rule.as_str()) && seen.insert(finding.rule.as_str()) {
            extra.push((finding.rule.clone(), finding.severity));
        }
    }
    let mut extra_index: BTreeMap<String, usize> = BTreeMap::new();
    for (id, severity) in &extra {
        extra_index.insert(id.clone(), rules.len());
        rules.push(rule_descriptor(
            id,
            id,
            "",
            "",
            *severity,
            rule_tags.get(id.as_str()),
        ));
    }
    (
        rules,
        RuleIndex {
            listed: rule_index,
            extra: extra_index,
        },
    )
}

/// A `result` per open finding, with its `baselineState` when the view has a diff; serialised
/// as a list, each result made when it is written.
struct OpenResults<'a> {
    open: &'a [&'a FindingView],
    rule_index: &'a RuleIndex<'a>,
    inventory_uri: String,
    new_fingerprints: Option<HashSet<&'a str>>,
}

impl<'a> OpenResults<'a> {
    fn new(view: &'a ReportView, open: &'a [&'a FindingView], rule_index: &'a RuleIndex) -> Self {
        OpenResults {
            open,
            rule_index,
            inventory_uri: uri_reference(
                view.inventory_file
                    .as_deref()
                    .filter(|f| !f.trim().is_empty())
                    .unwrap_or(DEFAULT_INVENTORY_FILE),
            ),
            new_fingerprints: view
                .diff
                .as_ref()
                .map(|d| d.new.iter().map(|f| f.fingerprint.as_str()).collect()),
        }
    }
}

impl Serialize for OpenResults<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.open.iter().map(|finding| {
            let index = self.rule_index.of(&finding.rule);
            let state = self.new_fingerprints.as_ref().map(|new| {
                if new.contains(finding.fingerprint.as_str()) {
                    "new"
                } else {
                    "unchanged"
                }
            });
            result(finding, index, &self.inventory_uri, state)
        }))
    }
}

/// The invocation: whether it succeeded, with a notification per coverage failure and per rule
/// that did not run in full.
fn invocation(view: &ReportView) -> Map<String, Value> {
    let failed: Vec<Value> = view
        .coverage
        .iter()
        .filter(|c| !c.ok)
        .map(|c| {
            let mut text = format!("could not read {} in {}/{}", c.api, c.account, c.region);
            if let Some(error) = c.error.as_deref().filter(|e| !e.is_empty()) {
                text.push_str(": ");
                text.push_str(error);
            }
            json!({
                "level": "error",
                "message": { "text": text },
                "descriptor": { "id": "coverage-failure" },
            })
        })
        .collect();
    // A rule whose sources the run lacked did not run (or ran in part): a warning, not a
    // failed execution.
    let not_run: Vec<Value> = view
        .rules
        .iter()
        .filter(|r| !r.complete)
        .map(|r| {
            let how = if r.ran { "ran in part" } else { "did not run" };
            json!({
                "level": "warning",
                "message": { "text": format!("rule {} {how}: {}", r.id, r.reason) },
                "descriptor": { "id": "rule-not-run" },
                "associatedRule": { "id": r.id },
            })
        })
        .collect();
    let mut invocation = Map::new();
    invocation.insert(
        "executionSuccessful".into(),
        json!(view.run.status == "complete" && failed.is_empty()),
    );
    let notifications: Vec<Value> = failed.iter().cloned().chain(not_run).collect();
    if !notifications.is_empty() {
        invocation.insert(
            "toolExecutionNotifications".into(),
            Value::Array(notifications),
        );
    }
    invocation
}

/// The controls of the view that were not assessed, with why.
fn controls_not_assessed(view: &ReportView) -> Vec<Value> {
    view.frameworks
        .iter()
        .flat_map(|fw| {
            fw.controls
                .iter()
                .filter(|c| c.status == "not-assessed")
                .map(move |c| {
                    json!({
                        "control": format!("{}:{}", fw.id, c.id),
                        "reason": c.status_reason,
                    })
                })
        })
        .collect()
}

/// `framework:control` tags per rule id, from the controls that test the rule.
fn rule_tags<'a>(view: &'a ReportView<'_>) -> BTreeMap<&'a str, BTreeSet<String>> {
    let mut tags: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for framework in &view.frameworks {
        for control in &framework.controls {
            for rule in &control.rules {
                tags.entry(rule.as_str())
                    .or_default()
                    .insert(format!("{}:{}", framework.id, control.id));
            }
        }
    }
    tags
}

/// One `reportingDescriptor`.
fn rule_descriptor(
    id: &str,
    title: &str,
    rationale: &str,
    remediation: &str,
    severity: Severity,
    controls: Option<&BTreeSet<String>>,
) -> Value {
    let mut tags = vec!["security".to_string(), "credential-hygiene".to_string()];
    tags.extend(controls.into_iter().flatten().cloned());
    let mut rule = Map::new();
    rule.insert("id".into(), json!(id));
    rule.insert("name".into(), json!(pascal_case(id)));
    rule.insert("shortDescription".into(), json!({ "text": title }));
    if !rationale.is_empty() {
        rule.insert("fullDescription".into(), json!({ "text": rationale }));
    }
    if !remediation.is_empty() {
        rule.insert("help".into(), json!({ "text": remediation }));
    }
    rule.insert(
        "defaultConfiguration".into(),
        json!({ "level": level(severity) }),
    );
    rule.insert(
        "properties".into(),
        json!({
            "security-severity": security_severity(severity),
            "severity": severity.as_str(),
            "tags": tags,
        }),
    );
    Value::Object(rule)
}

/// One `result`, its members in the order SARIF viewers show them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    rule_id: &'a str,
    rule_index: usize,
    level: &'static str,
    message: Text<'a>,
    locations: [Location<'a>; 1],
    partial_fingerprints: Fingerprints<'a>,
    properties: ResultProperties<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline_state: Option<&'static str>,
}

#[derive(Serialize)]
struct Text<'a> {
    text: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Location<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    physical_location: Option<PhysicalLocation<'a>>,
    logical_locations: [LogicalLocation<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation<'a> {
    artifact_location: ArtifactLocation<'a>,
    region: Region,
}

#[derive(Serialize)]
struct ArtifactLocation<'a> {
    uri: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LogicalLocation<'a> {
    name: &'a str,
    fully_qualified_name: String,
    kind: &'static str,
}

/// `partialFingerprints`: the one key is [`FINGERPRINT_KEY`].
#[derive(Serialize)]
struct Fingerprints<'a> {
    #[serde(rename = "credaudit/v1")]
    fingerprint: &'a str,
}

#[derive(Serialize)]
struct ResultProperties<'a> {
    severity: &'static str,
    credential: &'a str,
    principal: &'a str,
    kind: &'a str,
    account: &'a str,
    region: &'a str,
    owner: &'a str,
    evidence: Evidence<'a>,
}

/// Evidence as an object, keys in first-seen order; evidence is a list of pairs, so a repeated
/// key keeps every value, in order, joined with `; `.
struct Evidence<'a>(Vec<(&'a str, Cow<'a, str>)>);

impl Serialize for Evidence<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// One `result`.
fn result<'a>(
    finding: &'a FindingView,
    rule_index: usize,
    inventory_uri: &'a str,
    baseline_state: Option<&'static str>,
) -> SarifResult<'a> {
    let mut evidence: Vec<(&str, Cow<str>)> = Vec::with_capacity(finding.evidence.len());
    for item in &finding.evidence {
        match evidence.iter_mut().find(|(k, _)| *k == item.key) {
            Some((_, existing)) => {
                let joined = existing.to_mut();
                joined.push_str("; ");
                joined.push_str(&item.value);
            }
            None => evidence.push((&item.key, Cow::Borrowed(&item.value))),
        }
    }
    let physical_location =
        finding
            .inventory_line
            .filter(|l| *l >= 1)
            .map(|line| PhysicalLocation {
                artifact_location: ArtifactLocation { uri: inventory_uri },
                region: Region { start_line: line },
            });
    SarifResult {
        rule_id: &finding.rule,
        rule_index,
        level: level(finding.severity),
        message: Text {
            text: &finding.message,
        },
        locations: [Location {
            physical_location,
            logical_locations: [LogicalLocation {
                name: &finding.credential,
                fully_qualified_name: qualified_name(finding),
                kind: "resource",
            }],
        }],
        partial_fingerprints: Fingerprints {
            fingerprint: &finding.fingerprint,
        },
        properties: ResultProperties {
            severity: finding.severity.as_str(),
            credential: &finding.credential,
            principal: &finding.principal,
            kind: &finding.kind,
            account: &finding.account,
            region: &finding.region,
            owner: &finding.owner,
            evidence: Evidence(evidence),
        },
        baseline_state,
    }
}

/// `aws/<account>/<region>/<credential>`, with `-` for a part that is not known.
fn qualified_name(finding: &FindingView) -> String {
    let part = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    format!(
        "aws/{}/{}/{}",
        part(&finding.account),
        part(&finding.region),
        finding.credential
    )
}

/// `rotation-overdue` → `RotationOverdue`: SARIF's `name` is an identifier, the id is kebab.
fn pascal_case(id: &str) -> String {
    id.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// A file path as a relative URI reference: `/`-separated, every byte outside the unreserved
/// set (and `/`) percent-encoded, so a space or `#` in a path cannot break the URI.
fn uri_reference(path: &str) -> String {
    let path = path.replace('\\', "/");
    let mut uri = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

/// A small view built from real facts, rules, controls and plan, shared by the SARIF, JUnit
/// and Markdown tests.
#[cfg(test)]
pub(crate) mod testview {
    use crate::controls;
    use crate::model::{EventType, Finding};
    use crate::plan::PlanConfig;
    use crate::report::WaiverView;
    use crate::report::bundle::build_view;
    use crate::report::view::ReportView;
    use crate::rules::testkit::{self, as_of, days_ago};
    use crate::snapshot::RunMeta;

    /// An undeclared key whose id carries HTML, Markdown table and XML metacharacters.
    pub const HOSTILE_ID: &str = "AKIA<script>alert(1)</script>a|b<&\">'";
    /// A declared key past its rotation interval (class A, 14 days): rotation-overdue.
    pub const OVERDUE_ID: &str = "AKIAOVERDUE000000001";
    /// A declared, healthy key.
    pub const HEALTHY_ID: &str = "AKIAHEALTHY000000002";
    /// Its line in the inventory file.
    pub const OVERDUE_LINE: usize = 12;
    /// A key with a finding in the earlier run of the diff only.
    pub const RESOLVED_ID: &str = "AKIARESOLVED00000003";

    /// A waiver in force, to attach to a finding of the view.
    pub fn waiver() -> WaiverView {
        WaiverView {
            ticket: "SEC-1".into(),
            approver: "ciso".into(),
            reason: "accepted until the migration".into(),
            expires: "2027-01-01T00:00:00Z".into(),
        }
    }

    fn run_meta(status: &str) -> RunMeta {
        RunMeta {
            id: 7,
            recorded_at: as_of(),
            as_of: as_of(),
            source: "export:fixtures/test".into(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            status: status.into(),
            content_hash: "sha256:00".into(),
            prev_hash: String::new(),
        }
    }

    /// The view of a small fleet: one overdue declared key, one healthy declared key, one
    /// undeclared key with a hostile id; no diff; the inventory at `inventory/fleet.toml`.
    pub fn sample_view() -> ReportView<'static> {
        fleet_view(false)
    }

    /// [`sample_view`] with a diff against run 6, which had every finding but those of the
    /// hostile key (so they are new), plus one finding on [`RESOLVED_ID`] (so it is resolved).
    pub fn sample_view_with_diff() -> ReportView<'static> {
        fleet_view(true)
    }

    /// Run 6 of the diff: every finding of run 7 but those of the hostile key, plus one on
    /// [`RESOLVED_ID`].
    fn earlier_findings(findings: &[Finding]) -> Vec<Finding> {
        let mut before: Vec<Finding> = findings
            .iter()
            .filter(|f| f.credential != HOSTILE_ID)
            .cloned()
            .collect();
        let mut resolved = findings
            .iter()
            .find(|f| f.credential == HOSTILE_ID)
            .expect("a finding on the hostile key")
            .clone();
        resolved.credential = RESOLVED_ID.into();
        before.push(resolved);
        crate::rules::sort_findings(&mut before);
        before
    }

    fn fleet_view(with_diff: bool) -> ReportView<'static> {
        let observed = vec![
            testkit::key(OVERDUE_ID, "svc-overdue", 40),
            testkit::key(HEALTHY_ID, "svc-healthy", 3),
            testkit::key(HOSTILE_ID, "svc-hostile", 3),
        ];
        let mut declared = testkit::declare_all(&observed[..2]);
        declared[0].line = OVERDUE_LINE;
        declared[1].line = 20;
        let events = observed[..2]
            .iter()
            .map(|o| {
                testkit::event(
                    &o.id,
                    EventType::RotationCompleted,
                    o.created_at.unwrap_or_else(|| days_ago(1)),
                    None,
                )
            })
            .collect();
        // Leaked: the view borrows the facts' events, and the view outlives this function.
        let facts: &'static _ = Box::leak(Box::new(testkit::facts(observed, declared, events)));
        let findings = crate::rules::evaluate(facts, as_of());
        let diff =
            with_diff.then(|| crate::diff::compare(6, &earlier_findings(&findings), 7, &findings));
        let frameworks = controls::builtin().expect("built-in controls load");
        let assessment = crate::assess::assess(facts, as_of(), &frameworks, &PlanConfig::default());
        assert_eq!(assessment.findings, findings);
        let mut view = build_view(&run_meta("complete"), facts, &assessment, diff.as_ref());
        view.inventory_file = Some("inventory/fleet.toml".into());
        assert!(
            view.findings.iter().any(|f| f.credential == OVERDUE_ID),
            "the overdue key has a finding"
        );
        assert!(
            view.findings.iter().any(|f| f.credential == HOSTILE_ID),
            "the hostile key has a finding"
        );
        view
    }
}

#[cfg(test)]
mod tests {
    use super::testview::{HOSTILE_ID, OVERDUE_ID, OVERDUE_LINE, sample_view};
    use super::*;
    use crate::rules::RULES;

    fn parse(view: &ReportView) -> Value {
        let bytes = findings_sarif(view);
        assert!(
            bytes.ends_with(b"}\n"),
            "pretty JSON with a trailing newline"
        );
        serde_json::from_slice(&bytes).expect("valid JSON")
    }

    fn schema_validator() -> jsonschema::Validator {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/sarif/sarif-schema-2.1.0.json"
        );
        let text = std::fs::read_to_string(path).expect("the SARIF schema is checked in");
        let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
        jsonschema::draft4::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("the SARIF schema compiles")
    }

    fn schema_errors(validator: &jsonschema::Validator, log: &Value) -> Vec<String> {
        validator
            .iter_errors(log)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }

    #[test]
    fn validates_against_the_official_sarif_schema() {
        let validator = schema_validator();
        for view in [sample_view(), super::testview::sample_view_with_diff()] {
            let log = parse(&view);
            let errors = schema_errors(&validator, &log);
            assert!(errors.is_empty(), "schema errors: {errors:#?}");
        }
    }

    #[test]
    fn the_schema_check_rejects_a_broken_log() {
        // Guards the test above: the validator really applies the schema.
        let validator = schema_validator();
        let mut log = parse(&sample_view());
        log["runs"][0]["results"][0]["level"] = json!("fatal");
        log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] =
            json!(0);
        assert!(!schema_errors(&validator, &log).is_empty());
        let mut log = parse(&sample_view());
        log["version"] = json!("2.0.0");
        assert!(!schema_errors(&validator, &log).is_empty());
    }

    #[test]
    fn header_and_tool() {
        let log = parse(&sample_view());
        assert_eq!(log["$schema"], SARIF_SCHEMA);
        assert_eq!(log["version"], "2.1.0");
        assert_eq!(log["runs"].as_array().map(Vec::len), Some(1));
        let driver = &log["runs"][0]["tool"]["driver"];
        assert_eq!(driver["name"], "credaudit");
        assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
        assert!(driver.get("informationUri").is_none());
    }

    #[test]
    fn rules_cover_every_rule_with_mapped_levels() {
        let view = sample_view();
        let log = parse(&view);
        let rules = log["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .expect("rules");
        let ids: Vec<&str> = rules.iter().filter_map(|r| r["id"].as_str()).collect();
        let expected = crate::rules::ids();
        assert_eq!(ids, expected, "one descriptor per rule, in catalogue order");
        for (descriptor, rule) in rules.iter().zip(RULES) {
            let meta = &rule.meta;
            assert_eq!(
                descriptor["shortDescription"]["text"],
                meta.render_default(meta.title)
            );
            assert_eq!(
                descriptor["fullDescription"]["text"],
                meta.render_default(meta.rationale)
            );
            assert_eq!(descriptor["help"]["text"], meta.remediation);
            let (level, score) = match meta.default_severity {
                Severity::Critical => ("error", "9.0"),
                Severity::High => ("error", "7.0"),
                Severity::Medium => ("warning", "5.0"),
                Severity::Low => ("note", "3.0"),
                Severity::Info => ("note", "0.0"),
            };
            assert_eq!(
                descriptor["defaultConfiguration"]["level"], level,
                "{}",
                meta.id
            );
            assert_eq!(descriptor["properties"]["security-severity"], score);
            assert!(
                descriptor["properties"]["tags"]
                    .as_array()
                    .is_some_and(|t| t.contains(&json!("security"))),
            );
        }
        let root = rules
            .iter()
            .find(|r| r["id"] == "root-access-key")
            .expect("root-access-key");
        assert_eq!(root["name"], "RootAccessKey");
        assert_eq!(root["defaultConfiguration"]["level"], "error");
        // Control ids ride along as tags.
        assert!(
            rules
                .iter()
                .any(|r| r["properties"]["tags"].as_array().is_some_and(|t| t
                    .iter()
                    .any(|t| t.as_str().is_some_and(|s| s.contains(':'))))),
            "some rule carries framework:control tags"
        );
    }

    #[test]
    fn levels_follow_finding_severity() {
        assert_eq!(level(Severity::Critical), "error");
        assert_eq!(level(Severity::High), "error");
        assert_eq!(level(Severity::Medium), "warning");
        assert_eq!(level(Severity::Low), "note");
        assert_eq!(level(Severity::Info), "note");
        let mut view = sample_view();
        let severities = [
            Severity::Critical,
            Severity::High,
            Severity::Medium,
            Severity::Low,
            Severity::Info,
        ];
        for (finding, severity) in view.findings.iter_mut().zip(severities.iter().cycle()) {
            finding.severity = *severity;
        }
        let log = parse(&view);
        for (result, finding) in log["runs"][0]["results"]
            .as_array()
            .expect("results")
            .iter()
            .zip(&view.findings)
        {
            assert_eq!(result["level"], level(finding.severity));
            assert_eq!(result["properties"]["severity"], finding.severity.as_str());
        }
    }

    #[test]
    fn one_result_per_finding_with_fingerprint_and_rule_index() {
        let view = sample_view();
        let log = parse(&view);
        let results = log["runs"][0]["results"].as_array().expect("results");
        assert_eq!(results.len(), view.findings.len());
        let rules = log["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .expect("rules");
        for (result, finding) in results.iter().zip(&view.findings) {
            assert_eq!(result["ruleId"], finding.rule.as_str());
            let index = result["ruleIndex"].as_u64().expect("ruleIndex") as usize;
            assert_eq!(rules[index]["id"], finding.rule.as_str());
            assert_eq!(result["message"]["text"], finding.message.as_str());
            assert_eq!(
                result["partialFingerprints"][FINGERPRINT_KEY],
                finding.fingerprint.as_str()
            );
            let evidence = result["properties"]["evidence"]
                .as_object()
                .expect("evidence object");
            for item in &finding.evidence {
                assert!(evidence.contains_key(&item.key));
            }
            assert!(
                result.get("baselineState").is_none(),
                "no diff, no baseline"
            );
        }
    }

    #[test]
    fn declared_findings_point_at_their_inventory_line() {
        let view = sample_view();
        let log = parse(&view);
        let results = log["runs"][0]["results"].as_array().expect("results");
        let declared = results
            .iter()
            .find(|r| r["properties"]["credential"] == OVERDUE_ID)
            .expect("a finding on the declared key");
        let physical = &declared["locations"][0]["physicalLocation"];
        assert_eq!(physical["artifactLocation"]["uri"], "inventory/fleet.toml");
        assert_eq!(physical["region"]["startLine"], OVERDUE_LINE);

        let undeclared = results
            .iter()
            .find(|r| r["properties"]["credential"] == HOSTILE_ID)
            .expect("a finding on the undeclared key");
        let location = &undeclared["locations"][0];
        assert!(location.get("physicalLocation").is_none());
        let logical = &location["logicalLocations"][0];
        assert_eq!(logical["name"], HOSTILE_ID);
        assert_eq!(logical["kind"], "resource");
        assert_eq!(
            logical["fullyQualifiedName"],
            format!("aws/{}/global/{HOSTILE_ID}", crate::rules::testkit::ACCOUNT)
        );
    }

    #[test]
    fn inventory_uri_defaults_and_is_encoded() {
        let mut view = sample_view();
        view.inventory_file = None;
        let log = parse(&view);
        let declared = log["runs"][0]["results"]
            .as_array()
            .and_then(|r| {
                r.iter()
                    .find(|r| r["properties"]["credential"] == OVERDUE_ID)
            })
            .expect("declared finding");
        assert_eq!(
            declared["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            DEFAULT_INVENTORY_FILE
        );
        assert_eq!(
            uri_reference(r"conf\my inv#1.toml"),
            "conf/my%20inv%231.toml"
        );
    }

    #[test]
    fn diff_sets_baseline_state() {
        let view = super::testview::sample_view_with_diff();
        let log = parse(&view);
        for result in log["runs"][0]["results"].as_array().expect("results") {
            let expected = if result["properties"]["credential"] == HOSTILE_ID {
                "new"
            } else {
                "unchanged"
            };
            assert_eq!(result["baselineState"], expected);
        }
    }

    #[test]
    fn a_partial_scan_says_so() {
        let mut view = sample_view();
        view.run.status = "partial".into();
        view.coverage[0].ok = false;
        view.coverage[0].error = Some("AccessDenied".into());
        let log = parse(&view);
        let invocation = &log["runs"][0]["invocations"][0];
        assert_eq!(invocation["executionSuccessful"], false);
        let text = invocation["toolExecutionNotifications"][0]["message"]["text"]
            .as_str()
            .expect("notification");
        assert!(text.contains("AccessDenied"), "{text}");
        let complete = parse(&sample_view());
        assert_eq!(
            complete["runs"][0]["invocations"][0]["executionSuccessful"],
            true
        );
    }

    #[test]
    fn waived_findings_are_left_out() {
        let mut view = sample_view();
        let all = view.findings.len();
        view.findings[0].waiver = Some(super::testview::waiver());
        let waived = view.findings[0].fingerprint.clone();
        let log = parse(&view);
        let results = log["runs"][0]["results"].as_array().expect("results");
        assert_eq!(results.len(), all - 1);
        assert!(
            results
                .iter()
                .all(|r| r["partialFingerprints"][FINGERPRINT_KEY] != waived.as_str())
        );
    }

    #[test]
    fn deterministic() {
        assert_eq!(
            findings_sarif(&sample_view()),
            findings_sarif(&sample_view())
        );
    }

    #[test]
    fn a_finding_of_an_unlisted_rule_gets_a_descriptor() {
        let mut view = sample_view();
        view.findings[0].rule = "from-the-future".into();
        let log = parse(&view);
        let rules = log["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .expect("rules");
        let index = log["runs"][0]["results"][0]["ruleIndex"]
            .as_u64()
            .expect("index") as usize;
        assert_eq!(rules[index]["id"], "from-the-future");
        assert_eq!(rules.len(), RULES.len() + 1);
        let errors = schema_errors(&schema_validator(), &log);
        assert!(errors.is_empty(), "{errors:#?}");
    }
}
