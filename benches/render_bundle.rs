//! Benchmark (not a test) of the evidence-bundle writers: builds a report view with 100,000
//! findings over a 150,000-credential inventory and a rotation history of 2,000,000 events,
//! writes every report file of the bundle through the real writers (each timed, with its size),
//! then the whole bundle (`write_bundle`: every file, the manifest, the swap into place), and
//! prints wall time, size and the peak resident memory (VmHWM of /proc/self/status, reset
//! before each step).
//!
//! Run it with `scripts/bench-render.sh` or
//! `cargo bench --bench render_bundle -- --ignored --nocapture`. `RENDER_BENCH_FINDINGS`,
//! `RENDER_BENCH_CREDENTIALS` and `RENDER_BENCH_EVENTS` change the sizes, `RENDER_BENCH_OUT`
//! keeps the bundle in that folder (for a browser) instead of a temporary one.

use std::path::PathBuf;
use std::time::Instant;

use credaudit::model::{
    AppliedWaiver, CredentialKind, EventType, Finding, RotationEvent, Severity, Trigger,
};
use credaudit::output;
use credaudit::plan::{Action, ActionKind, Job, Plan, Score};
use credaudit::report::view::{
    ControlView, EventView, FrameworkView, InventoryRow, MonthCount, ReportView, RuleView, RunView,
};
use credaudit::report::{FindingView, SCHEMA_VERSION, Summary, bundle};

const SEVERITIES: [Severity; 5] = [
    Severity::Critical,
    Severity::High,
    Severity::Medium,
    Severity::Low,
    Severity::Info,
];

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn status_kb(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets VmHWM to the current RSS (Linux >= 4.0); false where that is not possible.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn credential_id(i: usize) -> String {
    format!("AKIA{i:016}")
}

fn rule_ids() -> Vec<&'static str> {
    credaudit::rules::RULES.iter().map(|r| r.meta.id).collect()
}

/// `n` findings over the first credentials, two rules per credential, in canonical order
/// (severity worst first, rule, credential); every tenth one waived.
fn findings(n: usize, rules: &[&str]) -> Vec<FindingView> {
    let mut findings: Vec<Finding> = (0..n)
        .map(|i| {
            let credential = i / 2;
            let rule = rules[(credential + i % 2) % rules.len()];
            Finding {
                rule: rule.to_string(),
                severity: SEVERITIES[i % SEVERITIES.len()],
                credential: credential_id(credential),
                kind: CredentialKind::IamAccessKey,
                account: Some(format!(
                    "{:012}",
                    111_111_111_111u64 + (credential % 4) as u64
                )),
                region: Some(["us-east-1", "eu-west-1", "ap-south-1"][credential % 3].to_string()),
                owner: Some(format!("team-{}", credential % 300)),
                principal: Some(format!("svc-{credential}")),
                message: format!(
                    "access key {} of svc-{credential} is {} days past its 90-day rotation",
                    credential_id(credential),
                    credential % 700
                ),
                evidence: vec![
                    ("user".into(), format!("svc-{credential}")),
                    ("age_days".into(), (credential % 700).to_string()),
                    ("last_rotation".into(), "2025-01-01T00:00:00Z".into()),
                ],
                waiver: (i % 10 == 0).then(|| AppliedWaiver {
                    ticket: format!("SEC-{i}"),
                    approver: "ciso@example.com".into(),
                    reason: "accepted until the migration".into(),
                    expires: chrono::DateTime::parse_from_rfc3339("2027-06-01T00:00:00Z")
                        .expect("time")
                        .with_timezone(&chrono::Utc),
                }),
            }
        })
        .collect();
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.rule.cmp(&b.rule))
            .then_with(|| a.credential.cmp(&b.credential))
    });
    findings
        .iter()
        .map(|f| {
            let mut view = FindingView::from(f);
            view.inventory_line = Some(3 + 4 * (f.credential.len() % 1000));
            view
        })
        .collect()
}

/// One action per finding's (credential, rule), one job per credential.
fn plan(findings: &[FindingView]) -> Plan {
    let actions: Vec<Action> = findings
        .iter()
        .filter(|f| f.waiver.is_none())
        .enumerate()
        .map(|(i, f)| Action {
            priority: 1 + (i % 12) as u32,
            action: ActionKind::for_rule(&f.rule),
            severity: f.severity,
            credential: f.credential.clone(),
            kind: f.kind.clone(),
            account: f.account.clone(),
            region: f.region.clone(),
            owner: f.owner.clone(),
            due: "2027-03-02T00:00:00Z".into(),
            description: format!(
                "Rotate the key, then deactivate the old one. Findings: {}: {}.",
                f.rule, f.message
            ),
            command: Some(format!(
                "aws iam create-access-key --user-name {}",
                f.principal
            )),
            rules: vec![f.rule.clone()],
            fingerprints: vec![f.fingerprint.clone()],
            controls: vec!["cis-aws:1.14".into(), "soc2:CC6.1".into()],
        })
        .collect();
    let mut jobs: Vec<Job> = Vec::new();
    for a in &actions {
        match jobs.last_mut().filter(|j| j.credential == a.credential) {
            Some(job) => job.actions.push(a.clone()),
            None => jobs.push(Job {
                credential: a.credential.clone(),
                kind: a.kind.clone(),
                account: a.account.clone(),
                region: a.region.clone(),
                owner: a.owner.clone(),
                due: a.due.clone(),
                severity: a.severity,
                rotate: a.action.is_rotation(),
                emergency: a.action.is_emergency(),
                actions: vec![a.clone()],
            }),
        }
    }
    let score = |scope: String| Score {
        scope,
        score: 61,
        credentials: 500,
        automation: 0.4,
        in_policy: 0.7,
        finding_load: 1.2,
    };
    Plan {
        actions,
        jobs,
        fleet_score: score("fleet".into()),
        owner_scores: (0..300).map(|o| score(format!("team-{o}"))).collect(),
    }
}

fn inventory(n: usize, findings: usize) -> Vec<InventoryRow> {
    (0..n)
        .map(|i| InventoryRow {
            credential: credential_id(i),
            kind: "iam-access-key".into(),
            reconciliation: ["reconciled", "unmanaged", "orphaned"][i % 3].into(),
            declared: i % 3 != 1,
            observed: i % 3 != 2,
            class: ["A", "B", "C"][i % 3].into(),
            owner: format!("team-{}", i % 300),
            owner_status: "active".into(),
            account: format!("{:012}", 111_111_111_111u64 + (i % 4) as u64),
            region: ["us-east-1", "eu-west-1", "ap-south-1"][i % 3].into(),
            principal: format!("svc-{i}"),
            status: "active".into(),
            automated: i % 2 == 0,
            consumers: format!("app-{} app-{}", i % 50, i % 70),
            last_rotation: format!("2026-{:02}-{:02}T00:00:00Z", 1 + i % 12, 1 + i % 28),
            last_used: format!("2026-11-{:02}T{:02}:00:00Z", 1 + i % 28, i % 24),
            age_days: Some((i % 700) as f64 + 0.5),
            interval_days: 90,
            findings: usize::from(i < findings / 2) * 2,
        })
        .collect()
}

/// The events the view refers to, as it refers to a run's facts: leaked here, in a benchmark
/// that renders once.
fn events(n: usize, credentials: usize) -> Vec<EventView<'static>> {
    let types = [
        EventType::RotationCompleted,
        EventType::RotationFailed,
        EventType::RotationInitiated,
    ];
    let triggers = [Trigger::Scheduled, Trigger::Manual, Trigger::Emergency];
    let events: &'static [RotationEvent] = Vec::leak(
        (0..n)
            .map(|i| RotationEvent {
                time: chrono::DateTime::from_timestamp(1_600_000_000 + i as i64 * 61, 0)
                    .expect("in range"),
                credential_id: credential_id(i % credentials.max(1)),
                event_type: types[i % 3],
                trigger: Some(triggers[i % 3]),
                fingerprint: Some(format!(
                    "{:016x}",
                    (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                )),
                details: (i % 5 == 0).then(|| format!("ticket OPS-{i}")),
                source: "history".into(),
            })
            .collect(),
    );
    events
        .iter()
        .map(|event| EventView {
            time: event.time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            event,
        })
        .collect()
}

/// Four frameworks of 25 controls, each tested by two rules; a failing control lists every
/// credential with an open finding of its rules.
fn frameworks(findings: &[FindingView], rules: &[&str]) -> Vec<FrameworkView> {
    let mut by_rule: std::collections::BTreeMap<&str, std::collections::BTreeSet<&str>> =
        Default::default();
    for f in findings.iter().filter(|f| f.waiver.is_none()) {
        by_rule
            .entry(f.rule.as_str())
            .or_default()
            .insert(&f.credential);
    }
    (0..4)
        .map(|fw| {
            let controls: Vec<ControlView> = (0..25)
                .map(|c| {
                    let tested = [
                        rules[(fw + c) % rules.len()],
                        rules[(fw + 2 * c + 1) % rules.len()],
                    ];
                    let failing: std::collections::BTreeSet<&str> = tested
                        .iter()
                        .flat_map(|r| by_rule.get(r).into_iter().flatten().copied())
                        .collect();
                    ControlView {
                        id: format!("{fw}.{c}"),
                        title: format!("Control {c} of framework {fw}"),
                        reason: "credentials are rotated within policy".into(),
                        rules: tested.iter().map(|r| r.to_string()).collect(),
                        status: if failing.is_empty() { "pass" } else { "fail" }.into(),
                        status_reason: String::new(),
                        findings: failing.len() * 2,
                        in_scope: 150_000,
                        failing_credentials: failing.into_iter().map(str::to_string).collect(),
                    }
                })
                .collect();
            let fail = controls.iter().filter(|c| c.status == "fail").count();
            FrameworkView {
                id: format!("framework-{fw}"),
                name: format!("Framework {fw}"),
                version: "2024".into(),
                pass: controls.len() - fail,
                fail,
                not_assessed: 0,
                not_applicable: 0,
                manual: 0,
                controls,
            }
        })
        .collect()
}

fn view(findings_n: usize, credentials: usize, events_n: usize) -> ReportView<'static> {
    let rules = rule_ids();
    let findings = findings(findings_n, &rules);
    let mut summary = Summary {
        total: findings.len(),
        ..Default::default()
    };
    for f in &findings {
        *summary
            .by_severity
            .entry(f.severity.to_string())
            .or_default() += 1;
        *summary.by_rule.entry(f.rule.clone()).or_default() += 1;
    }
    ReportView {
        schema_version: SCHEMA_VERSION,
        tool: "credaudit",
        version: env!("CARGO_PKG_VERSION"),
        run: RunView {
            id: 1,
            as_of: "2027-03-01T00:00:00Z".into(),
            recorded_at: "2027-03-01T00:00:05Z".into(),
            source: "export:/data/fleet".into(),
            status: "complete".into(),
            content_hash: "0".repeat(64),
            accounts: (0..4)
                .map(|a| format!("{:012}", 111_111_111_111u64 + a))
                .collect(),
            credentials_observed: credentials,
            credentials_declared: credentials,
            shards: Vec::new(),
        },
        summary,
        frameworks: frameworks(&findings, &rules),
        plan: plan(&findings),
        inventory: inventory(credentials, findings_n),
        events: events(events_n, credentials),
        coverage: Vec::new(),
        sources: Vec::new(),
        rotations_by_month: (0..84)
            .map(|m| MonthCount {
                month: format!("{}-{:02}", 2020 + m / 12, 1 + m % 12),
                completed: 20_000 + m * 10,
                failed: 300 + m,
            })
            .collect(),
        rules: credaudit::rules::RULES
            .iter()
            .map(|r| RuleView {
                id: r.meta.id,
                title: r.meta.title.to_string(),
                severity: r.meta.default_severity.as_str(),
                rationale: r.meta.rationale.to_string(),
                remediation: r.meta.remediation,
                sources: r.meta.sources.iter().map(|s| s.as_str()).collect(),
                ran: true,
                complete: true,
                reason: String::new(),
            })
            .collect(),
        diff: None,
        inventory_file: Some("raw/inventory.toml".into()),
        unmatched_waivers: Vec::new(),
        findings,
    }
}

#[test]
#[ignore = "benchmark: renders a 100,000-finding bundle; run scripts/bench-render.sh"]
fn render_a_large_bundle() {
    let findings_n = env_count("RENDER_BENCH_FINDINGS", 100_000);
    let credentials = env_count("RENDER_BENCH_CREDENTIALS", 150_000);
    let events_n = env_count("RENDER_BENCH_EVENTS", 2_000_000);
    let started = Instant::now();
    let view = view(findings_n, credentials, events_n);
    println!(
        "view: {findings_n} findings, {credentials} credentials, {events_n} events, {} actions \
         built in {:.2} s, RSS {} MB",
        view.plan.actions.len(),
        started.elapsed().as_secs_f64(),
        status_kb("VmRSS:").unwrap_or(0) / 1024
    );

    let temp = tempfile::tempdir().expect("tempdir");
    let files = temp.path().join("files");
    output::create_private_dir_all(&files).expect("folder");
    let baseline = status_kb("VmRSS:").unwrap_or(0);
    for (name, fill) in bundle::report_files(&view) {
        reset_peak();
        let started = Instant::now();
        let (_, bytes) = output::write_streamed(&files.join(name), |w| fill(w)).expect(name);
        let peak = status_kb("VmHWM:").unwrap_or(0);
        println!(
            "{name:<22} {:>7.2} s {:>9.1} MB  peak +{} MB",
            started.elapsed().as_secs_f64(),
            bytes as f64 / 1e6,
            peak.saturating_sub(baseline) / 1024
        );
    }

    let out = std::env::var_os("RENDER_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| temp.path().join("bundle"));
    reset_peak();
    let started = Instant::now();
    let manifest = bundle::write_bundle(&out, &view, &Vec::new()).expect("bundle");
    let total: u64 = manifest.files.iter().map(|f| f.bytes).sum();
    println!(
        "bundle: {} files, {:.1} MB in {:.2} s, peak +{} MB over the view ({} MB)",
        manifest.files.len() + 1,
        total as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        status_kb("VmHWM:").unwrap_or(0).saturating_sub(baseline) / 1024,
        baseline / 1024
    );
}
