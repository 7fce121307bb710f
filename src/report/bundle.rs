//! The evidence bundle: builds the view model of a stored run and writes every file of the
//! bundle, then `manifest.json` with the SHA-256 of each; `verify` re-checks a bundle.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::view::{
    ControlView, DiffView, EventView, FrameworkView, InventoryRow, MonthCount, ReportView,
    RuleView, RunView, SourceView, UnmatchedWaiverView,
};
use super::{
    FindingView, ReportHeader, SCHEMA_VERSION, Summary, csv, json, junit, markdown, plan_files,
    sarif,
};
use crate::assess::{Assessment, RuleRun};
use crate::controls::ControlStatus;
use crate::diff::Diff;
use crate::error::{Error, Result};
use crate::join::fmt_time;
use crate::model::{EventType, Facts, Policy, sha256_hex};
use crate::output;
use crate::rules::RULES;
use crate::rules::RuleOptions;
use crate::snapshot::RunMeta;

/// `framework:control` ids per rule id, from the catalogues.
pub use crate::assess::rule_controls;

/// Builds the view model of an assessed run. It only renders: the findings, control results,
/// plan, rules run and inventory are the stored [`Assessment`]'s; nothing is evaluated here.
pub fn build_view<'a>(
    run: &RunMeta,
    facts: &'a Facts,
    assessment: &Assessment,
    diff: Option<&Diff>,
) -> ReportView<'a> {
    let findings = &assessment.findings;
    let inventory = inventory_rows(assessment);
    let events = event_views(facts);
    let declared = facts.inventory.credentials_by_id();

    ReportView {
        schema_version: SCHEMA_VERSION,
        tool: "credaudit",
        version: env!("CARGO_PKG_VERSION"),
        run: RunView {
            id: run.id,
            as_of: fmt_time(assessment.as_of),
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
            shards: Vec::new(),
        },
        summary: Summary::of(findings),
        findings: findings
            .iter()
            .map(|f| {
                let mut view = FindingView::from(f);
                view.inventory_line = declared.get(f.credential.as_str()).map(|d| d.line);
                view
            })
            .collect(),
        frameworks: framework_views(assessment),
        plan: assessment.plan.clone(),
        inventory,
        events,
        coverage: facts.coverage.clone(),
        sources: assessment
            .sources
            .iter()
            .map(|s| SourceView {
                source: s.source.as_str(),
                name: s.source.describe(),
                account: s.account.clone().unwrap_or_default(),
                region: s.region.clone().unwrap_or_default(),
                records: s.records,
                caveat: s.source.caveat(),
            })
            .collect(),
        rotations_by_month: rotations_by_month(facts),
        rules: rule_views(assessment, &facts.inventory.policy),
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
        unmatched_waivers: assessment
            .unmatched_waivers
            .iter()
            .map(|w| UnmatchedWaiverView {
                line: w.line,
                rule: w.rule.clone(),
                credential: w.credential.clone(),
                ticket: w.ticket.clone(),
                expires: fmt_time(w.expires),
            })
            .collect(),
    }
}

/// Each framework of the assessment with its control results.
fn framework_views(assessment: &Assessment) -> Vec<FrameworkView> {
    assessment
        .frameworks
        .iter()
        .map(|fw| FrameworkView {
            id: fw.id.clone(),
            name: fw.name.clone(),
            version: fw.version.clone(),
            pass: fw.count(ControlStatus::Pass),
            fail: fw.count(ControlStatus::Fail),
            not_assessed: fw.count(ControlStatus::NotAssessed),
            not_applicable: fw.count(ControlStatus::NotApplicable),
            manual: fw.count(ControlStatus::Manual),
            controls: fw
                .controls
                .iter()
                .map(|c| ControlView {
                    id: c.id.clone(),
                    title: c.title.clone(),
                    reason: c.reason.clone(),
                    rules: c.rules.clone(),
                    status: c.status.as_str().to_string(),
                    status_reason: c.note.clone().unwrap_or_default(),
                    findings: c.findings,
                    in_scope: c.in_scope,
                    failing_credentials: c.failing_credentials.clone(),
                })
                .collect(),
        })
        .collect()
}

/// One row per credential of the assessment, with the number of findings against it.
fn inventory_rows(assessment: &Assessment) -> Vec<InventoryRow> {
    let findings = &assessment.findings;
    let mut findings_per_credential: BTreeMap<&str, usize> = BTreeMap::new();
    for f in findings {
        *findings_per_credential
            .entry(f.credential.as_str())
            .or_default() += 1;
    }
    assessment
        .credentials
        .iter()
        .map(|c| InventoryRow {
            credential: c.id.clone(),
            kind: c.kind.to_string(),
            reconciliation: c.reconciliation.clone(),
            declared: c.declared,
            observed: c.observed,
            class: c.class.clone(),
            owner: c.owner.clone(),
            owner_status: c.owner_status.clone(),
            account: c.account.clone(),
            region: c.region.clone(),
            principal: c.principal.clone(),
            status: c.status.clone(),
            automated: c.automated,
            consumers: c.consumers.join(" "),
            last_rotation: c.last_rotation.map(fmt_time).unwrap_or_default(),
            last_used: c.last_used.map(fmt_time).unwrap_or_default(),
            age_days: c.age_days,
            interval_days: c.interval_days,
            findings: findings_per_credential
                .get(c.id.as_str())
                .copied()
                .unwrap_or(0),
        })
        .collect()
}

/// The rotation events of the run, in timeline order.
fn event_views(facts: &Facts) -> Vec<EventView<'_>> {
    facts
        .events
        .iter()
        .map(|e| EventView {
            time: fmt_time(e.time),
            event: e,
        })
        .collect()
}

/// Completed and failed rotations per month, oldest first.
fn rotations_by_month(facts: &Facts) -> Vec<MonthCount> {
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
    months.into_values().collect()
}

/// Every registered rule with whether it ran in this assessment, and why not.
fn rule_views(assessment: &Assessment, policy: &Policy) -> Vec<RuleView> {
    let options = RuleOptions::of(policy);
    let runs: BTreeMap<&str, &RuleRun> = assessment
        .rules
        .iter()
        .map(|r| (r.rule.as_str(), r))
        .collect();
    RULES
        .iter()
        .map(|r| {
            let run = runs.get(r.meta.id);
            RuleView {
                id: r.meta.id,
                title: r.meta.render(r.meta.title, &options, policy),
                severity: r.meta.default_severity.as_str(),
                rationale: r.meta.render(r.meta.rationale, &options, policy),
                remediation: r.meta.remediation,
                sources: r.meta.sources.iter().map(|s| s.as_str()).collect(),
                ran: run.is_some_and(|r| r.ran),
                complete: run.is_some_and(|r| r.complete()),
                reason: match run {
                    Some(run) => run.reason.clone().unwrap_or_default(),
                    None => "not in this run's assessment".to_string(),
                },
            }
        })
        .collect()
}

fn controls_csv(view: &ReportView, out: impl Write) -> std::io::Result<()> {
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
        // Last, so the columns before it keep their places: why it is not assessed.
        "status_reason",
    ];
    let header = header.iter().map(|h| (*h).into()).collect();
    let rows = view.frameworks.iter().flat_map(|fw| {
        fw.controls.iter().map(move |c| {
            vec![
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
                c.status_reason.as_str().into(),
            ]
        })
    });
    output::write_csv(out, std::iter::once(header).chain(rows))
}

fn inventory_csv(view: &ReportView, out: impl Write) -> std::io::Result<()> {
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
    let header = header.iter().map(|h| (*h).into()).collect();
    let rows = view.inventory.iter().map(|r| {
        vec![
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
        ]
    });
    output::write_csv(out, std::iter::once(header).chain(rows))
}

fn events_csv(view: &ReportView, out: impl Write) -> std::io::Result<()> {
    let header = [
        "time",
        "credential",
        "type",
        "trigger",
        "fingerprint",
        "source",
        "details",
    ];
    let header = header.iter().map(|h| (*h).into()).collect();
    let rows = view.events.iter().map(|e| {
        vec![
            e.time.as_str().into(),
            e.credential().into(),
            e.event_type().into(),
            e.trigger().into(),
            e.fingerprint().into(),
            e.source().into(),
            e.details().into(),
        ]
    });
    output::write_csv(out, std::iter::once(header).chain(rows))
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
    /// The snapshot's hash chain ends at this run: `credaudit verify --db DB --head` with it
    /// proves that no run was removed since (the same value as `run_content_hash`, named for
    /// what it is used for).
    #[serde(default)]
    pub chain_head: String,
    pub as_of: String,
    pub recorded_at: String,
    pub source: String,
    pub status: String,
    pub scope: Scope,
    pub coverage: Vec<crate::model::CoverageEntry>,
    /// A merged run's shards: each one's file, run id, chain head, as-of, accounts and
    /// coverage (absent for a scan's run).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<crate::merge::ShardSource>,
    pub files: Vec<ManifestFile>,
}

/// What the run looked at.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scope {
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub apis: Vec<String>,
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

/// The message of an `--out` folder that holds something else than a credaudit bundle.
fn foreign_out(out: &Path) -> Error {
    Error::Usage(format!(
        "--out {}: holds files that are not a credaudit bundle; choose an empty or new folder",
        out.display()
    ))
}

/// `out` with a plain last component (`out/.` is `out`), refused when it names no folder of its
/// own (`.`, `..`, `/`): the bundle replaces the folder as a whole.
fn bundle_path(out: &Path) -> Result<PathBuf> {
    let name = out.file_name().ok_or_else(|| {
        Error::Usage(format!(
            "--out {}: name a folder of its own (not `.`, `..` or `/`); the bundle replaces it whole",
            out.display()
        ))
    })?;
    Ok(output::parent_of(out).join(name))
}

/// Whether `dir` (a real folder) holds a previous bundle: a regular `manifest.json` that parses
/// as a credaudit manifest.
fn holds_bundle(dir: &Path) -> bool {
    let path = dir.join("manifest.json");
    std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file())
        && std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Manifest>(&bytes).ok())
            .is_some_and(|m| m.tool == "credaudit")
}

/// Checks that a bundle may be written to `out`: it does not exist, or it is a real folder (not
/// a symlink) that is empty or holds a previous credaudit bundle, which the new one replaces.
/// Anything else is refused, so a user's files are never deleted. Gives whether `out` exists.
pub fn check_out_dir(out: &Path) -> Result<bool> {
    let out = bundle_path(out)?;
    match std::fs::symlink_metadata(&out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(&out, e)),
        Ok(meta) if meta.file_type().is_dir() => {
            let empty = std::fs::read_dir(&out)
                .map_err(|e| Error::io(&out, e))?
                .next()
                .is_none();
            if empty || holds_bundle(&out) {
                Ok(true)
            } else {
                Err(foreign_out(&out))
            }
        }
        Ok(_) => Err(Error::Usage(format!(
            "--out {}: is a file or a symlink, not a folder; choose an empty or new folder",
            out.display()
        ))),
    }
}

/// Writes the whole bundle and returns the manifest. The bundle is built in a new owner-only
/// folder beside `out` and renamed into place, replacing a previous bundle as a whole (so no
/// stale file survives and nothing planted in `out` is written through); see [`check_out_dir`]
/// for what `out` may hold.
pub fn write_bundle(out: &Path, view: &ReportView, raw: &dyn RawEvidence) -> Result<Manifest> {
    check_out_dir(out)?;
    let out = bundle_path(out)?;
    let parent = output::parent_of(&out);
    output::create_private_dir_all(parent)?;
    let staging = tempfile::Builder::new()
        .prefix(".credaudit-bundle-")
        .permissions(std::fs::Permissions::from_mode(output::DIR_MODE))
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))?;
    output::make_private_dir(staging.path())?;
    let manifest = fill_bundle(staging.path(), view, raw)?;
    swap_in(staging, &out)?;
    Ok(manifest)
}

/// Renames the finished bundle `staging` to `out`; an existing `out` (checked again just
/// before) is first renamed aside, then removed.
fn swap_in(staging: tempfile::TempDir, out: &Path) -> Result<()> {
    let parent = output::parent_of(out);
    if !check_out_dir(out)? {
        let new = staging.keep();
        return std::fs::rename(&new, out).map_err(|e| {
            let _ = std::fs::remove_dir_all(&new);
            Error::io(out, e)
        });
    }
    // A fresh, empty, uniquely named folder to rename the old bundle over.
    let old = tempfile::Builder::new()
        .prefix(".credaudit-old-")
        .permissions(std::fs::Permissions::from_mode(output::DIR_MODE))
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))?;
    std::fs::rename(out, old.path()).map_err(|e| Error::io(out, e))?;
    let new = staging.keep();
    if let Err(e) = std::fs::rename(&new, out) {
        let _ = std::fs::remove_dir_all(&new);
        let old = old.keep();
        let _ = std::fs::rename(&old, out);
        return Err(Error::io(out, e));
    }
    // Dropping `old` removes the previous bundle.
    drop(old);
    Ok(())
}

/// The raw evidence a bundle ships in `raw/`, streamed: no file is held whole in memory.
pub trait RawEvidence {
    /// Calls `write` with each raw file's path (relative to `raw/`) and a reader of its bytes.
    fn each_raw(&self, write: &mut dyn FnMut(&str, &mut dyn Read) -> Result<()>) -> Result<()>;
}

/// Raw files held in memory, as (path, bytes): small bundles built without a snapshot.
impl RawEvidence for Vec<(String, Vec<u8>)> {
    fn each_raw(&self, write: &mut dyn FnMut(&str, &mut dyn Read) -> Result<()>) -> Result<()> {
        self.iter()
            .try_for_each(|(path, bytes)| write(path, &mut bytes.as_slice()))
    }
}

/// Streams each raw file whose path stays inside `raw/` into `dir/raw/`; gives their manifest
/// entries.
fn write_raw(dir: &Path, raw: &dyn RawEvidence) -> Result<Vec<ManifestFile>> {
    let mut entries = Vec::new();
    raw.each_raw(&mut |path, bytes| {
        let Some(rel) = safe_relative(path) else {
            return Ok(());
        };
        let name = Path::new("raw")
            .join(rel)
            .to_string_lossy()
            .replace('\\', "/");
        let target = dir.join(&name);
        output::create_private_dir_all(output::parent_of(&target))?;
        let mut hashed = (Sha256::new(), 0u64);
        output::write_with(&target, |file| {
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                let n = bytes.read(&mut buffer)?;
                if n == 0 {
                    return Ok(());
                }
                hashed.0.update(&buffer[..n]);
                hashed.1 += n as u64;
                file.write_all(&buffer[..n])?;
            }
        })?;
        entries.push(ManifestFile {
            path: name,
            sha256: crate::model::hex(&hashed.0.finalize()),
            bytes: hashed.1,
        });
        Ok(())
    })?;
    Ok(entries)
}

/// Writes every file of the bundle into the new folder `dir`, then `manifest.json`.
fn fill_bundle(dir: &Path, view: &ReportView, raw: &dyn RawEvidence) -> Result<Manifest> {
    let mut entries = write_reports(dir, view)?;
    entries.extend(write_raw(dir, raw)?);
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let regions: BTreeSet<String> = view.coverage.iter().map(|c| c.region.clone()).collect();
    let apis: BTreeSet<String> = view.coverage.iter().map(|c| c.api.clone()).collect();
    let manifest = Manifest {
        schema_version: SCHEMA_VERSION,
        tool: view.tool.to_string(),
        version: view.version.to_string(),
        run_id: view.run.id,
        run_content_hash: view.run.content_hash.clone(),
        chain_head: view.run.content_hash.clone(),
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
        shards: view.run.shards.clone(),
        files: entries,
    };
    let mut bytes = serde_json::to_vec_pretty(&manifest).expect("plain data");
    bytes.push(b'\n');
    output::write_atomic(dir, "manifest.json", &bytes)?;
    Ok(manifest)
}

/// Streams one report file of the bundle into the writer it is given.
pub type Fill<'a> = Box<dyn Fn(&mut output::Sink) -> std::io::Result<()> + 'a>;

/// The report files of the bundle (everything but `raw/` and the manifest), by name, in the
/// order they are written.
pub fn report_files<'a>(view: &'a ReportView<'_>) -> Vec<(&'static str, Fill<'a>)> {
    let header = ReportHeader {
        tool: view.tool,
        version: view.version,
        as_of: view.run.as_of.clone(),
    };
    vec![
        ("index.html", Box::new(|w| super::html::write_html(view, w))),
        (
            "findings.json",
            Box::new(move |w| json::write_findings_json(&header, &view.summary, &view.findings, w)),
        ),
        (
            "findings.csv",
            Box::new(|w| csv::write_findings_csv(&view.findings, w)),
        ),
        ("controls.csv", Box::new(|w| controls_csv(view, w))),
        ("inventory.csv", Box::new(|w| inventory_csv(view, w))),
        ("rotation-events.csv", Box::new(|w| events_csv(view, w))),
        (
            "remediation-plan.csv",
            Box::new(|w| plan_files::write_plan_csv(&view.plan, w)),
        ),
        (
            "remediation-plan.json",
            Box::new(|w| plan_files::write_plan_json(&view.plan, &view.run.as_of, w)),
        ),
        (
            "findings.sarif",
            Box::new(|w| sarif::write_findings_sarif(view, w)),
        ),
        (
            "junit.xml",
            Box::new(|w| junit::write_controls_junit(view, w)),
        ),
        (
            "summary.md",
            Box::new(|w| markdown::write_summary_markdown(view, w)),
        ),
    ]
}

/// Writes the report files of the bundle into `dir`, each streamed to its file and hashed as
/// it is written; gives their manifest entries.
pub fn write_reports(dir: &Path, view: &ReportView) -> Result<Vec<ManifestFile>> {
    report_files(view)
        .into_iter()
        .map(|(name, fill)| {
            let (sha256, bytes) = output::write_streamed(&dir.join(name), |w| fill(w))?;
            Ok(ManifestFile {
                path: name.to_string(),
                sha256,
                bytes,
            })
        })
        .collect()
}

/// Mode of the files in the archive (owner-only, as in the bundle folder).
const ARCHIVE_FILE_MODE: u32 = output::FILE_MODE;
/// Mode of the folders in the archive.
const ARCHIVE_DIR_MODE: u32 = output::DIR_MODE;

/// Writes `<out>.tar.gz` holding the bundle folder (sorted entries, fixed times, owner-only
/// modes, so the same bundle gives the same archive). The archive is written to a new temporary
/// file beside it and renamed into place: a file or symlink already at that path is replaced,
/// never written through. Each file is read back only if it is a regular file whose SHA-256
/// matches the manifest.
pub fn write_archive(out: &Path, manifest: &Manifest) -> Result<PathBuf> {
    let out = bundle_path(out)?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "bundle".to_string());
    let archive = output::parent_of(&out).join(format!("{name}.tar.gz"));

    let mut hashes: BTreeMap<String, Option<&str>> = manifest
        .files
        .iter()
        .map(|f| (f.path.clone(), Some(f.sha256.as_str())))
        .collect();
    hashes.insert("manifest.json".into(), None);
    // Folders first in sort order ("raw" < "raw/..."), each once.
    let mut folders: BTreeSet<String> = BTreeSet::new();
    let mut files: Vec<(String, Vec<u8>)> = Vec::with_capacity(hashes.len());
    for (rel, sha256) in &hashes {
        let Some(rel_path) = safe_relative_bundle(rel) else {
            return Err(Error::input_file(
                &out.join("manifest.json"),
                format!("lists {rel:?}, which leaves the bundle"),
            ));
        };
        let mut folder = rel_path.parent();
        while let Some(f) = folder.filter(|f| !f.as_os_str().is_empty()) {
            folders.insert(f.to_string_lossy().replace('\\', "/"));
            folder = f.parent();
        }
        let src = out.join(rel_path);
        let bytes = read_regular(&src)?;
        if sha256.is_some_and(|expected| sha256_hex(&bytes) != expected) {
            return Err(Error::input_file(
                &src,
                "changed since the bundle was written (SHA-256 differs from the manifest)",
            ));
        }
        files.push((rel.clone(), bytes));
    }

    let mut entries: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    entries.insert(name.clone(), None);
    for folder in folders {
        entries.insert(format!("{name}/{folder}"), None);
    }
    for (rel, bytes) in files {
        entries.insert(format!("{name}/{rel}"), Some(bytes));
    }
    output::write_with(&archive, |file| {
        let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        for (path, bytes) in &entries {
            let mut header = tar::Header::new_gnu();
            match bytes {
                Some(bytes) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(bytes.len() as u64);
                    header.set_mode(ARCHIVE_FILE_MODE);
                }
                None => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    header.set_mode(ARCHIVE_DIR_MODE);
                }
            }
            header.set_mtime(0);
            header.set_cksum();
            let data: &[u8] = bytes.as_deref().unwrap_or_default();
            tar.append_data(&mut header, path, data)?;
        }
        tar.into_inner()?.finish()?;
        Ok(())
    })?;
    Ok(archive)
}

/// The bytes of a regular file, refusing a symlink or anything else at `path`.
fn read_regular(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| Error::io(path, e))?;
    let Some(bytes) =
        read_same_file(path, meta.dev(), meta.ino()).map_err(|e| Error::io(path, e))?
    else {
        return Err(Error::input_file(
            path,
            "not a regular file (a symlink?); a bundle holds only regular files",
        ));
    };
    Ok(bytes)
}

/// Reads `path` if it is still the regular file `(dev, ino)` that `symlink_metadata` saw (so a
/// file swapped for a link in between is not followed); `None` otherwise.
fn read_same_file(path: &Path, dev: u64, ino: u64) -> std::io::Result<Option<Vec<u8>>> {
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.file_type().is_file() || meta.dev() != dev || meta.ino() != ino {
        return Ok(None);
    }
    let mut file = std::fs::File::open(path)?;
    let opened = file.metadata()?;
    if !opened.is_file() || opened.dev() != dev || opened.ino() != ino {
        return Ok(None);
    }
    let mut bytes = Vec::with_capacity(opened.len() as usize);
    std::io::Read::read_to_end(&mut file, &mut bytes)?;
    Ok(Some(bytes))
}

/// What `verify` found wrong with a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tamper {
    Changed(String),
    Missing(String),
    Added(String),
    /// A symlink, pipe, socket or device where a bundle holds only regular files and folders.
    NotRegular(String, &'static str),
}

impl std::fmt::Display for Tamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tamper::Changed(p) => write!(f, "changed: {p} (SHA-256 differs from the manifest)"),
            Tamper::Missing(p) => write!(f, "missing: {p} (listed in the manifest)"),
            Tamper::Added(p) => write!(f, "added: {p} (not in the manifest)"),
            Tamper::NotRegular(p, what) => write!(
                f,
                "not a regular file: {p} ({what}; a bundle holds only regular files, and verify never follows links)"
            ),
        }
    }
}

/// What the walk of a bundle found at a path (it never follows a link).
enum Entry {
    /// A regular file, by device and inode as `symlink_metadata` saw it.
    File { dev: u64, ino: u64 },
    /// Anything that is neither a regular file nor a folder.
    Other(&'static str),
}

fn describe(kind: std::fs::FileType) -> &'static str {
    if kind.is_symlink() {
        "a symlink"
    } else if kind.is_fifo() {
        "a named pipe"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// Every path under `dir` (relative to `base`, `/`-separated), recursing only into real folders.
fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<String, Entry>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let meta = std::fs::symlink_metadata(&path)?;
        let kind = meta.file_type();
        if kind.is_dir() {
            walk(&path, base, out)?;
            continue;
        }
        let rel = path
            .strip_prefix(base)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        let found = if kind.is_file() {
            Entry::File {
                dev: meta.dev(),
                ino: meta.ino(),
            }
        } else {
            Entry::Other(describe(kind))
        };
        out.insert(rel, found);
    }
    Ok(())
}

/// Re-checks a bundle against its manifest: every listed file present as a regular file with
/// its hash, no file that is not listed, and nothing but regular files and folders (a symlink
/// is tampering even when its target's bytes match; it is never followed).
pub fn verify(dir: &Path) -> Result<(Manifest, Vec<Tamper>)> {
    let mut present = BTreeMap::new();
    walk(dir, dir, &mut present).map_err(|e| Error::io(dir, e))?;

    let manifest_path = dir.join("manifest.json");
    let text = match present.get("manifest.json") {
        Some(Entry::File { dev, ino }) => read_same_file(&manifest_path, *dev, *ino)
            .map_err(|e| Error::io(&manifest_path, e))?
            .ok_or_else(|| {
                Error::input_file(&manifest_path, "changed while it was being verified")
            })?,
        Some(Entry::Other(what)) => {
            return Err(Error::input_file(
                &manifest_path,
                format!("is {what}, not a regular file; verify never follows links"),
            ));
        }
        None => {
            return Err(Error::io(
                &manifest_path,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
    };
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| {
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
        match present.get(&f.path) {
            Some(Entry::File { dev, ino }) => match read_same_file(&dir.join(rel), *dev, *ino) {
                Ok(Some(bytes)) if sha256_hex(&bytes) == f.sha256 => {}
                Ok(_) => problems.push(Tamper::Changed(f.path.clone())),
                Err(_) => problems.push(Tamper::Missing(f.path.clone())),
            },
            // Reported below, with what it is.
            Some(Entry::Other(_)) => {}
            None => problems.push(Tamper::Missing(f.path.clone())),
        }
    }
    for (p, found) in present {
        match found {
            Entry::Other(what) => problems.push(Tamper::NotRegular(p, what)),
            Entry::File { .. } if p != "manifest.json" && !listed.contains(&p) => {
                problems.push(Tamper::Added(p))
            }
            Entry::File { .. } => {}
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
