//! The evidence bundle: builds the view model of a stored run and writes every file of the
//! bundle, then `manifest.json` with the SHA-256 of each; `verify` re-checks a bundle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::view::{
    ControlView, DiffView, EventView, FrameworkView, InventoryRow, MonthCount, ReportView,
    RuleView, RunView,
};
use super::{
    FindingView, ReportHeader, SCHEMA_VERSION, Summary, csv, json, junit, markdown, plan_files,
    sarif, write_atomic,
};
use crate::controls::{self, ControlFacts, ControlStatus, Framework, ScopeItem};
use crate::diff::Diff;
use crate::error::{Error, Result};
use crate::model::{EventType, Facts, Finding, KeyStatus, OwnerStatus};
use crate::plan::{self, PlanConfig};
use crate::rules::{EvalCtx, RULES, fmt_time};
use crate::snapshot::RunMeta;

use crate::collect::raw::RawFile;

/// `framework:control` ids per rule id, from the catalogues.
pub fn rule_controls(frameworks: &[Framework]) -> BTreeMap<String, Vec<String>> {
    controls::rule_map(frameworks)
        .into_iter()
        .map(|(rule, pairs)| {
            let ids = pairs.into_iter().map(|(f, c)| format!("{f}:{c}")).collect();
            (rule, ids)
        })
        .collect()
}

fn days_f(d: chrono::Duration) -> f64 {
    (d.num_seconds() as f64 / 86_400.0 * 10.0).round() / 10.0
}

/// The credentials every control is judged over: the active ones of the run.
fn scope(ctx: &EvalCtx) -> Vec<ScopeItem> {
    ctx.credentials
        .iter()
        .filter(|v| v.is_active())
        .map(|v| {
            let unused_since = v.observed.and_then(|o| o.last_used_at.or(o.created_at));
            ScopeItem {
                id: v.id.to_string(),
                kind: v.kind,
                rotation_age_days: ctx.last_rotation(v).map(|t| days_f(ctx.as_of - t)),
                unused_days: unused_since.map(|t| days_f(ctx.as_of - t)),
            }
        })
        .collect()
}

/// Builds the view model of a run.
pub fn build_view(
    run: &RunMeta,
    facts: &Facts,
    findings: &[Finding],
    diff: Option<&Diff>,
    frameworks: &[Framework],
    plan_config: &PlanConfig,
) -> ReportView {
    let as_of = run.as_of;
    let ctx = EvalCtx::new(facts, as_of);
    let in_scope = scope(&ctx);
    let rules_run = crate::rules::ids();
    let control_facts = ControlFacts {
        findings,
        in_scope: &in_scope,
        rules_run: &rules_run,
    };
    let frameworks_view = frameworks
        .iter()
        .map(|fw| {
            let controls: Vec<ControlView> = fw
                .controls
                .iter()
                .map(|c| {
                    let result = controls::evaluate(c, &control_facts);
                    ControlView {
                        id: c.id.clone(),
                        title: c.title.clone(),
                        reason: c.reason.clone(),
                        rules: c.rules.clone(),
                        status: result.status.as_str().to_string(),
                        findings: result.findings,
                        in_scope: result.in_scope,
                        failing_credentials: result.failing_credentials,
                    }
                })
                .collect();
            let count =
                |s: ControlStatus| controls.iter().filter(|c| c.status == s.as_str()).count();
            FrameworkView {
                id: fw.id.clone(),
                name: fw.name.clone(),
                version: fw.version.clone(),
                pass: count(ControlStatus::Pass),
                fail: count(ControlStatus::Fail),
                not_applicable: count(ControlStatus::NotApplicable),
                manual: count(ControlStatus::Manual),
                controls,
            }
        })
        .collect();

    let plan = plan::build(
        facts,
        findings,
        &rule_controls(frameworks),
        as_of,
        plan_config,
    );

    let mut findings_per_credential: BTreeMap<&str, usize> = BTreeMap::new();
    for f in findings {
        *findings_per_credential
            .entry(f.credential.as_str())
            .or_default() += 1;
    }
    let inventory = ctx
        .credentials
        .iter()
        .map(|v| {
            let reconciliation = match (v.declared.is_some(), v.observed.is_some()) {
                (true, true) => "reconciled",
                (false, true) => "unmanaged",
                (true, false) if v.kind.is_discoverable() => "orphaned",
                _ => "declared-only",
            };
            let owner = v.owner().unwrap_or_default();
            let owner_status = facts
                .inventory
                .owner(owner)
                .map(|o| match o.status {
                    OwnerStatus::Active => "active",
                    OwnerStatus::Departed => "departed",
                })
                .unwrap_or(if owner.is_empty() { "" } else { "undeclared" });
            let last_rotation = ctx.last_rotation(v);
            InventoryRow {
                credential: v.id.to_string(),
                kind: v.kind.to_string(),
                reconciliation: reconciliation.to_string(),
                declared: v.declared.is_some(),
                observed: v.observed.is_some(),
                class: v.class().map(|c| c.to_string()).unwrap_or_default(),
                owner: owner.to_string(),
                owner_status: owner_status.to_string(),
                account: v.account().unwrap_or_default().to_string(),
                region: v.region().unwrap_or_default().to_string(),
                principal: v.observed.map(|o| o.name.clone()).unwrap_or_default(),
                status: match v.observed.map(|o| o.status) {
                    Some(KeyStatus::Inactive) => "inactive",
                    Some(KeyStatus::Active) => "active",
                    None => "",
                }
                .to_string(),
                automated: v.declared.is_some_and(|d| d.automated),
                consumers: v
                    .declared
                    .map(|d| d.consumers.join(" "))
                    .unwrap_or_default(),
                last_rotation: last_rotation.map(fmt_time).unwrap_or_default(),
                last_used: v
                    .observed
                    .and_then(|o| o.last_used_at)
                    .map(fmt_time)
                    .unwrap_or_default(),
                age_days: last_rotation.map(|t| days_f(as_of - t)),
                interval_days: ctx.interval(v).num_days(),
                findings: findings_per_credential.get(v.id).copied().unwrap_or(0),
            }
        })
        .collect();

    let events: Vec<EventView> = facts
        .events
        .iter()
        .map(|e| EventView {
            time: fmt_time(e.time),
            credential: e.credential_id.clone(),
            event_type: e.event_type.as_str().to_string(),
            trigger: e
                .trigger
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
            fingerprint: e.fingerprint.clone().unwrap_or_default(),
            details: e.details.clone().unwrap_or_default(),
            source: e.source.clone(),
        })
        .collect();
    let mut months: BTreeMap<String, MonthCount> = BTreeMap::new();
    for e in &facts.events {
        let failed = match e.event_type {
            EventType::RotationCompleted => false,
            EventType::RotationFailed => true,
            _ => continue,
        };
        let month = e.time.format("%Y-%m").to_string();
        let entry = months.entry(month.clone()).or_insert(MonthCount {
            month,
            completed: 0,
            failed: 0,
        });
        if failed {
            entry.failed += 1;
        } else {
            entry.completed += 1;
        }
    }

    ReportView {
        schema_version: SCHEMA_VERSION,
        tool: "credaudit",
        version: env!("CARGO_PKG_VERSION"),
        run: RunView {
            id: run.id,
            as_of: fmt_time(as_of),
            recorded_at: fmt_time(run.recorded_at),
            source: run.source.clone(),
            status: run.status.clone(),
            content_hash: run.content_hash.clone(),
            accounts: facts
                .scanned_accounts()
                .iter()
                .map(|a| a.to_string())
                .collect(),
            credentials_observed: facts.observed.len(),
            credentials_declared: facts.inventory.credentials.len(),
        },
        summary: Summary::of(findings),
        findings: findings
            .iter()
            .map(|f| {
                let mut view = FindingView::from(f);
                view.inventory_line = facts.inventory.credential(&f.credential).map(|d| d.line);
                view
            })
            .collect(),
        frameworks: frameworks_view,
        plan,
        inventory,
        events,
        coverage: facts.coverage.clone(),
        rotations_by_month: months.into_values().collect(),
        rules: RULES
            .iter()
            .map(|r| RuleView {
                id: r.meta.id,
                title: r.meta.title,
                severity: r.meta.default_severity.as_str(),
                rationale: r.meta.rationale,
                remediation: r.meta.remediation,
            })
            .collect(),
        diff: diff.map(|d| DiffView {
            from_run: d.from_run,
            to_run: d.to_run,
            new: d.new.iter().map(FindingView::from).collect(),
            resolved: d.resolved.iter().map(FindingView::from).collect(),
            persisting: d.persisting,
        }),
        inventory_file: facts
            .inventory
            .credentials
            .first()
            .map(|_| "raw/inventory.toml".to_string()),
    }
}

fn controls_csv(view: &ReportView) -> Vec<u8> {
    let header = [
        "framework",
        "framework_version",
        "control",
        "title",
        "status",
        "findings",
        "in_scope",
        "failing_credentials",
        "rules",
        "reason",
    ];
    let mut rows: Vec<Vec<std::borrow::Cow<str>>> =
        vec![header.iter().map(|h| (*h).into()).collect()];
    for fw in &view.frameworks {
        for c in &fw.controls {
            rows.push(vec![
                fw.id.as_str().into(),
                fw.version.as_str().into(),
                c.id.as_str().into(),
                c.title.as_str().into(),
                c.status.as_str().into(),
                c.findings.to_string().into(),
                c.in_scope.to_string().into(),
                c.failing_credentials.len().to_string().into(),
                c.rules.join(" ").into(),
                c.reason.as_str().into(),
            ]);
        }
    }
    csv::to_csv(rows)
}

fn inventory_csv(view: &ReportView) -> Vec<u8> {
    let header = [
        "credential",
        "kind",
        "reconciliation",
        "declared",
        "observed",
        "class",
        "owner",
        "owner_status",
        "account",
        "region",
        "principal",
        "status",
        "automated",
        "consumers",
        "last_rotation",
        "last_used",
        "age_days",
        "interval_days",
        "findings",
    ];
    let mut rows: Vec<Vec<std::borrow::Cow<str>>> =
        vec![header.iter().map(|h| (*h).into()).collect()];
    for r in &view.inventory {
        rows.push(vec![
            r.credential.as_str().into(),
            r.kind.as_str().into(),
            r.reconciliation.as_str().into(),
            r.declared.to_string().into(),
            r.observed.to_string().into(),
            r.class.as_str().into(),
            r.owner.as_str().into(),
            r.owner_status.as_str().into(),
            r.account.as_str().into(),
            r.region.as_str().into(),
            r.principal.as_str().into(),
            r.status.as_str().into(),
            r.automated.to_string().into(),
            r.consumers.as_str().into(),
            r.last_rotation.as_str().into(),
            r.last_used.as_str().into(),
            r.age_days
                .map(|d| format!("{d:.1}"))
                .unwrap_or_default()
                .into(),
            r.interval_days.to_string().into(),
            r.findings.to_string().into(),
        ]);
    }
    csv::to_csv(rows)
}

fn events_csv(view: &ReportView) -> Vec<u8> {
    let header = [
        "time",
        "credential",
        "type",
        "trigger",
        "fingerprint",
        "source",
        "details",
    ];
    let mut rows: Vec<Vec<std::borrow::Cow<str>>> =
        vec![header.iter().map(|h| (*h).into()).collect()];
    for e in &view.events {
        rows.push(vec![
            e.time.as_str().into(),
            e.credential.as_str().into(),
            e.event_type.as_str().into(),
            e.trigger.as_str().into(),
            e.fingerprint.as_str().into(),
            e.source.as_str().into(),
            e.details.as_str().into(),
        ]);
    }
    csv::to_csv(rows)
}

/// One file in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

/// `manifest.json`: what the bundle is and the hash of every other file in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    pub tool: String,
    pub version: String,
    pub run_id: i64,
    pub run_content_hash: String,
    pub as_of: String,
    pub recorded_at: String,
    pub source: String,
    pub status: String,
    pub scope: Scope,
    pub coverage: Vec<crate::model::CoverageEntry>,
    pub files: Vec<ManifestFile>,
}

/// What the run looked at.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scope {
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub apis: Vec<String>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A raw file's relative path, checked to stay inside the bundle's `raw/` folder.
fn safe_relative(path: &str) -> Option<PathBuf> {
    let p = Path::new(path);
    let ok = !path.is_empty()
        && p.components().all(|c| match c {
            Component::Normal(s) => s.to_str().is_some_and(|s| {
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            }),
            _ => false,
        });
    ok.then(|| p.to_path_buf())
}

/// Writes the whole bundle into `out` and returns the manifest.
pub fn write_bundle(out: &Path, view: &ReportView, raw: &[RawFile]) -> Result<Manifest> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let header = ReportHeader {
        tool: view.tool,
        version: view.version,
        as_of: view.run.as_of.clone(),
    };
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (
            "index.html".into(),
            super::html::render_html(view)?.into_bytes(),
        ),
        (
            "findings.json".into(),
            json::findings_json(&header, &view.summary, &view.findings),
        ),
        ("findings.csv".into(), csv::findings_csv(&view.findings)),
        ("controls.csv".into(), controls_csv(view)),
        ("inventory.csv".into(), inventory_csv(view)),
        ("rotation-events.csv".into(), events_csv(view)),
        (
            "remediation-plan.csv".into(),
            plan_files::plan_csv(&view.plan),
        ),
        (
            "remediation-plan.json".into(),
            plan_files::plan_json(&view.plan, &view.run.as_of),
        ),
        ("findings.sarif".into(), sarif::findings_sarif(view)),
        ("junit.xml".into(), junit::controls_junit(view)),
        ("summary.md".into(), markdown::summary_markdown(view)),
    ];
    for (path, bytes) in raw {
        if let Some(rel) = safe_relative(path) {
            let rel = Path::new("raw").join(rel);
            files.push((rel.to_string_lossy().replace('\\', "/"), bytes.clone()));
        }
    }
    let mut entries = Vec::with_capacity(files.len());
    for (name, bytes) in &files {
        let path = out.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let (dir, file) = (
            path.parent().unwrap_or(out),
            path.file_name()
                .map(|f| f.to_string_lossy().to_string())
                .unwrap_or_default(),
        );
        write_atomic(dir, &file, bytes)?;
        entries.push(ManifestFile {
            path: name.clone(),
            sha256: sha256_hex(bytes),
            bytes: bytes.len() as u64,
        });
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let regions: BTreeSet<String> = view.coverage.iter().map(|c| c.region.clone()).collect();
    let apis: BTreeSet<String> = view.coverage.iter().map(|c| c.api.clone()).collect();
    let manifest = Manifest {
        schema_version: SCHEMA_VERSION,
        tool: view.tool.to_string(),
        version: view.version.to_string(),
        run_id: view.run.id,
        run_content_hash: view.run.content_hash.clone(),
        as_of: view.run.as_of.clone(),
        recorded_at: view.run.recorded_at.clone(),
        source: view.run.source.clone(),
        status: view.run.status.clone(),
        scope: Scope {
            accounts: view.run.accounts.clone(),
            regions: regions.into_iter().collect(),
            apis: apis.into_iter().collect(),
        },
        coverage: view.coverage.clone(),
        files: entries,
    };
    let mut bytes = serde_json::to_vec_pretty(&manifest).expect("plain data");
    bytes.push(b'\n');
    write_atomic(out, "manifest.json", &bytes)?;
    Ok(manifest)
}

/// Writes `<out>.tar.gz` holding the bundle folder (sorted entries, fixed times and modes, so
/// the same bundle gives the same archive).
pub fn write_archive(out: &Path, manifest: &Manifest) -> Result<PathBuf> {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .filter(|n| !n.is_empty() && n != "." && n != "..")
        .unwrap_or_else(|| "bundle".to_string());
    let archive = out.with_file_name(format!("{name}.tar.gz"));
    let file = std::fs::File::create(&archive).map_err(|e| Error::io(&archive, e))?;
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut paths: Vec<String> = manifest.files.iter().map(|f| f.path.clone()).collect();
    paths.push("manifest.json".into());
    paths.sort();
    for rel in paths {
        let src = out.join(&rel);
        let bytes = std::fs::read(&src).map_err(|e| Error::io(&src, e))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, format!("{name}/{rel}"), bytes.as_slice())
            .map_err(|e| Error::io(&archive, e))?;
    }
    let gz = tar.into_inner().map_err(|e| Error::io(&archive, e))?;
    gz.finish().map_err(|e| Error::io(&archive, e))?;
    Ok(archive)
}

/// What `verify` found wrong with a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tamper {
    Changed(String),
    Missing(String),
    Added(String),
}

impl std::fmt::Display for Tamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tamper::Changed(p) => write!(f, "changed: {p} (SHA-256 differs from the manifest)"),
            Tamper::Missing(p) => write!(f, "missing: {p} (listed in the manifest)"),
            Tamper::Added(p) => write!(f, "added: {p} (not in the manifest)"),
        }
    }
}

fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&path, base, out)?;
        } else {
            let rel = path.strip_prefix(base).unwrap_or(&path);
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

/// Re-checks a bundle against its manifest: every listed file present with its hash, and no
/// file that is not listed.
pub fn verify(dir: &Path) -> Result<(Manifest, Vec<Tamper>)> {
    let manifest_path = dir.join("manifest.json");
    let text = crate::error::read_to_string(&manifest_path)?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
        Error::input(
            &manifest_path,
            format!("line {}", e.line()),
            format!("expected a credaudit manifest: {e}"),
        )
    })?;
    let mut problems = Vec::new();
    let mut listed = BTreeSet::new();
    for f in &manifest.files {
        listed.insert(f.path.clone());
        let Some(rel) = safe_relative_bundle(&f.path) else {
            problems.push(Tamper::Changed(f.path.clone()));
            continue;
        };
        match std::fs::read(dir.join(rel)) {
            Ok(bytes) if sha256_hex(&bytes) == f.sha256 => {}
            Ok(_) => problems.push(Tamper::Changed(f.path.clone())),
            Err(_) => problems.push(Tamper::Missing(f.path.clone())),
        }
    }
    let mut present = Vec::new();
    walk(dir, dir, &mut present).map_err(|e| Error::io(dir, e))?;
    present.sort();
    for p in present {
        if p != "manifest.json" && !listed.contains(&p) {
            problems.push(Tamper::Added(p));
        }
    }
    Ok((manifest, problems))
}

/// A manifest path, which may contain `/` but never leave the bundle.
fn safe_relative_bundle(path: &str) -> Option<PathBuf> {
    let p = Path::new(path);
    p.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| p.to_path_buf())
}
