//! The scan pipeline, one function per stage, in the order [`run`] calls them: `resolve` the
//! inputs, `gather` the evidence (export directory, declared files, CloudTrail), `record` the run
//! in the snapshot with its `evaluate`d assessment, [`render`] the bundle, and `gate` the exit.
//! Every input is read before anything is recorded, so bad input leaves the snapshot untouched.
//!
//! Free of the command line: `commands` turns the arguments into [`ScanOptions`].

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::assess::{self, Assessment};
use crate::collect::aws::{self, AwsOptions};
use crate::collect::cloudtrail::{self, CloudTrailData};
use crate::collect::input::Limits;
use crate::collect::raw::RawSpool;
use crate::controls::Framework;
use crate::diff::{self, Diff};
use crate::error::{Error, Result};
use crate::model::{CoverageEntry, Facts, Finding, RotationEvent, Severity, Timestamp};
use crate::outcome::Outcome;
use crate::plan::PlanConfig;
use crate::report::{self, Summary, bundle};
use crate::snapshot::{RawEntry, RunMeta, Snapshot};
use crate::{collect, controls, history, inventory, rules, term, waivers};

/// Where a scan reads its export directory from.
#[derive(Debug, Clone)]
pub enum Source {
    /// An export directory on disk (`--from DIR`).
    Export(PathBuf),
    /// AWS, live and read-only: collected into `export` (a temporary folder when `None`), then
    /// read like any export directory, so live and replayed scans share one reader.
    Live {
        aws: Box<AwsOptions>,
        export: Option<PathBuf>,
    },
}

/// Where the evidence bundle goes and what it maps to.
#[derive(Debug, Clone, Default)]
pub struct BundleOptions {
    /// Write the bundle here; no bundle when `None`.
    pub out: Option<PathBuf>,
    /// Also write `<out>.tar.gz`.
    pub archive: bool,
    /// Extra control catalogues beside the built-in ones.
    pub controls_dir: Option<PathBuf>,
}

/// Everything a scan needs, free of the command line's types.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub source: Source,
    /// CloudTrail files or folders given; `DIR/cloudtrail` is read too when present.
    pub cloudtrail: Vec<PathBuf>,
    /// Declared files named by the user; `None` reads `DIR/<default name>` when present.
    pub inventory: Option<PathBuf>,
    pub history: Option<PathBuf>,
    pub waivers: Option<PathBuf>,
    /// The snapshot to append the run to.
    pub db: PathBuf,
    /// The time every rule evaluates at.
    pub as_of: Timestamp,
    /// The clock, read once when the run is recorded (its `recorded_at`).
    pub clock: fn() -> Timestamp,
    pub bundle: BundleOptions,
    /// Gate on an open finding at or above this severity.
    pub fail_on: Option<Severity>,
    /// Gate on an open finding at or above this severity that is new since the previous run.
    pub fail_on_new: Option<Severity>,
    pub limits: Limits,
    pub allow_mislabelled: bool,
    pub keep_cloudtrail: bool,
    /// Print nothing but errors.
    pub quiet: bool,
}

/// A recorded run and what its bundle renders: the facts and assessment as read back, the
/// diff against the run before, the raw evidence files (whose bytes stay in the snapshot).
#[derive(Debug, Clone)]
pub struct RecordedRun {
    pub run: RunMeta,
    pub facts: Facts,
    pub assessment: Assessment,
    pub diff: Option<Diff>,
    pub raw: Vec<RawEntry>,
}

/// `credaudit scan`: the pipeline, stage by stage.
pub fn run(options: &ScanOptions) -> Result<Outcome> {
    let inputs = resolve(options)?;
    let gathered = gather(options, &inputs)?;
    // Opened only now: every input has been read, so bad input leaves the snapshot untouched.
    let mut snapshot = Snapshot::open(&options.db)?;
    let recorded = record(options, &mut snapshot, &inputs.source, gathered)?;
    if let Some(out) = &options.bundle.out {
        render(out, options.bundle.archive, &recorded, &snapshot)?;
    }
    if !options.quiet {
        tell(options.as_of, options.bundle.out.as_deref(), &recorded);
    }
    Ok(gate(options.fail_on, options.fail_on_new, &recorded))
}

/// The inputs of a scan, resolved: the export directory (collected first on a live scan), the
/// run's source label, and the declared files to read.
struct Inputs {
    dir: PathBuf,
    source: String,
    inventory: Option<PathBuf>,
    history: Option<PathBuf>,
    waivers: Option<PathBuf>,
    /// Keeps a live scan's temporary export directory until the scan ends.
    _temporary: Option<tempfile::TempDir>,
}

/// Stage 1: check the output folder and the export directory (collecting it on a live scan),
/// and find the declared files.
fn resolve(options: &ScanOptions) -> Result<Inputs> {
    // An --out that cannot take a bundle is refused before anything is collected or recorded.
    if let Some(out) = &options.bundle.out {
        bundle::check_out_dir(out)?;
    }
    let mut temporary = None;
    let (dir, source) = match &options.source {
        Source::Export(dir) => {
            if !dir.is_dir() {
                return Err(Error::Usage(format!(
                    "--from {}: not a directory (expected an export directory, see docs/export-format.md)",
                    dir.display()
                )));
            }
            (dir.clone(), format!("export:{}", dir.display()))
        }
        Source::Live { aws, export } => {
            let dir = match export {
                Some(dir) => dir.clone(),
                None => {
                    let tmp =
                        tempfile::tempdir().map_err(|e| Error::io(Path::new("<tempdir>"), e))?;
                    let dir = tmp.path().to_path_buf();
                    temporary = Some(tmp);
                    dir
                }
            };
            collect_live(aws, &dir, options.as_of, options.quiet)?;
            (dir, "aws:live".to_string())
        }
    };
    Ok(Inputs {
        inventory: input_or_default(options.inventory.as_deref(), &dir, "inventory.toml")?,
        history: input_or_default(options.history.as_deref(), &dir, "history.jsonl")?,
        waivers: input_or_default(options.waivers.as_deref(), &dir, "waivers.toml")?,
        dir,
        source,
        _temporary: temporary,
    })
}

/// Reads AWS live into `dir`, in the export-directory layout (also `credaudit collect`).
pub fn collect_live(aws: &AwsOptions, dir: &Path, as_of: Timestamp, quiet: bool) -> Result<()> {
    crate::output::create_private_dir_all(dir)?;
    let summary = aws::collect_to_dir(aws, dir, as_of)?;
    if !quiet {
        eprintln!(
            "collected {} account(s) with {} requests ({} failed) into {}",
            summary.accounts.len(),
            summary.requests,
            summary.failures,
            dir.display()
        );
    }
    // Throttling slowed the collection: said here, and kept in the run's coverage (even with
    // --quiet).
    if !quiet && summary.throttled > 0 {
        eprintln!(
            "AWS throttled {} of {} attempts; they were retried with adaptive backoff (the \
             throttled counts per account and region are in the coverage as {})",
            summary.throttled,
            summary.attempts,
            aws::THROTTLED
        );
    }
    Ok(())
}

/// The file given, or `default` inside `dir` when it exists.
fn input_or_default(given: Option<&Path>, dir: &Path, default: &str) -> Result<Option<PathBuf>> {
    // Anything at the path is read (and refused there if it is not a regular file): a FIFO or
    // a folder named inventory.toml must not pass silently for "no inventory".
    match given {
        Some(p) if std::fs::symlink_metadata(p).is_err() => {
            Err(Error::Usage(format!("{} does not exist", p.display())))
        }
        Some(p) => Ok(Some(p.to_path_buf())),
        None => {
            let p = dir.join(default);
            Ok(std::fs::symlink_metadata(&p).is_ok().then_some(p))
        }
    }
}

/// What a scan gathered: the facts to evaluate (CloudTrail events and coverage merged in), the
/// raw evidence kept with the run (spooled), and the CloudTrail data whose usage is still to be
/// merged with the snapshot's.
struct Gathered {
    facts: Facts,
    raw: RawSpool,
    trail: Option<CloudTrailData>,
}

/// Stage 2: read the export directory, the declared files and the CloudTrail logs into facts
/// and raw evidence. Nothing is written.
fn gather(options: &ScanOptions, inputs: &Inputs) -> Result<Gathered> {
    let from = inputs.dir.as_path();
    let export_options = collect::ExportOptions {
        limits: options.limits,
        allow_mislabelled: options.allow_mislabelled,
    };
    let mut export = collect::export::read_export_dir_with(from, &export_options)?;
    let mut raw = std::mem::take(&mut export.raw);
    let mut scrubbed = std::mem::take(&mut export.scrubbed);
    let declared = read_declared(options, inputs, &mut raw, &mut scrubbed)?;
    let mut facts = Facts {
        inventory: declared.inventory,
        observed: export.observed,
        users: export.users,
        events: declared.events,
        coverage: export.coverage,
        waivers: declared.waivers,
        ..Facts::default()
    };
    let mut trail = read_cloudtrail(options, from)?;
    if let Some(trail) = &trail {
        trail_evidence(from, trail, &options.limits, &mut raw, &mut scrubbed)?;
    }
    if let Some(lake) = collect::lake::read_export(from, &options.limits)? {
        // What CloudTrail Lake returned (the store, window, query ids and result pages) is
        // the run's raw evidence of that usage.
        for (name, bytes) in &lake.files {
            let (kept, removed) = collect::raw::scrub_json(bytes);
            if removed > 0 {
                scrubbed.push((name.clone(), removed));
            }
            raw.add(name.clone(), &kept).map_err(spool_err)?;
        }
        trail = Some(collect::lake::with_files(trail, lake.trail));
    }
    raw.sort();
    if !options.quiet {
        for (file, removed) in &scrubbed {
            eprintln!(
                "warning: {}: left out {removed} member(s) named like a secret value (SecretString, SecretBinary); credaudit never stores secret values",
                term::escape(file)
            );
        }
    }
    if let Some(trail) = &trail {
        merge_cloudtrail(&mut facts, trail, options.quiet);
    }
    Ok(Gathered { facts, raw, trail })
}

/// The declared files, parsed.
struct Declared {
    inventory: crate::model::Inventory,
    events: Vec<RotationEvent>,
    waivers: Vec<crate::model::Waiver>,
}

/// Reads the inventory, the rotation history and the waivers, one after the other. Each is read
/// once: the bytes parsed are the bytes kept as evidence, handed to `raw` as soon as they are
/// parsed and then dropped, so no two declared files are held at once. A default one inside
/// DIR must stay inside DIR; one named by the user is the user's.
fn read_declared(
    options: &ScanOptions,
    inputs: &Inputs,
    raw: &mut RawSpool,
    scrubbed: &mut Vec<(String, usize)>,
) -> Result<Declared> {
    let root = collect::input::canonical_root(&inputs.dir)?;
    let read = |path: &Path, named: bool| {
        collect::input::read_bytes(path, (!named).then_some(root.as_path()), &options.limits)
    };
    let inventory = match inputs.inventory.as_deref() {
        Some(path) => {
            let bytes = read(path, options.inventory.is_some())?;
            let inventory = inventory::parse(utf8(path, &bytes)?, path)?;
            keep_declared("inventory.toml", bytes, raw, scrubbed)?;
            inventory
        }
        None => {
            if !options.quiet {
                eprintln!(
                    "warning: no inventory given and none in {}: every credential is unmanaged",
                    inputs.dir.display()
                );
            }
            crate::model::Inventory::default()
        }
    };
    let events = match inputs.history.as_deref() {
        Some(path) => {
            let bytes = read(path, options.history.is_some())?;
            let events = history::parse_with(&bytes, path, &options.limits)?;
            keep_declared("history.jsonl", bytes, raw, scrubbed)?;
            events
        }
        None => Vec::new(),
    };
    let waivers = match inputs.waivers.as_deref() {
        Some(path) => {
            let bytes = read(path, options.waivers.is_some())?;
            let waivers = waivers::parse(utf8(path, &bytes)?, path, &rules::ids())?;
            keep_declared("waivers.toml", bytes, raw, scrubbed)?;
            waivers
        }
        None => Vec::new(),
    };
    Ok(Declared {
        inventory,
        events,
        waivers,
    })
}

/// The text of a declared file, borrowed from its bytes (kept as evidence, so not copied),
/// refused unless it is UTF-8.
fn utf8<'b>(path: &Path, bytes: &'b [u8]) -> Result<&'b str> {
    std::str::from_utf8(bytes).map_err(|e| crate::error::not_utf8(path, bytes, e))
}

/// Adds a declared file to the raw evidence, JSON Lines members named like a secret value
/// removed (and counted in `scrubbed`).
fn keep_declared(
    name: &'static str,
    bytes: Vec<u8>,
    raw: &mut RawSpool,
    scrubbed: &mut Vec<(String, usize)>,
) -> Result<()> {
    let (kept, removed) = if name.ends_with(".jsonl") {
        collect::raw::scrub_json_lines(&bytes)
    } else {
        (Cow::Borrowed(bytes.as_slice()), 0)
    };
    if removed > 0 {
        scrubbed.push((name.to_string(), removed));
    }
    raw.add(name, &kept).map_err(spool_err)
}

/// An error writing the raw evidence spool (a temporary file).
fn spool_err(e: std::io::Error) -> Error {
    Error::io(Path::new("<raw evidence spool in the temporary folder>"), e)
}

/// The CloudTrail logs: the files given, plus DIR/cloudtrail when present; `None` without any.
fn read_cloudtrail(options: &ScanOptions, from: &Path) -> Result<Option<CloudTrailData>> {
    let mut trail_paths = options.cloudtrail.clone();
    let trail_dir = from.join("cloudtrail");
    if trail_dir.is_dir() {
        trail_paths.insert(0, trail_dir);
    }
    if trail_paths.is_empty() {
        return Ok(None);
    }
    let read_options = cloudtrail::ReadOptions {
        limits: options.limits,
        export_root: Some(from.to_path_buf()),
        keep: options.keep_cloudtrail,
    };
    cloudtrail::read_paths_with(&trail_paths, &read_options).map(Some)
}

/// Merges CloudTrail's rotation events and coverage into the facts (its usage is merged when
/// the run is recorded, with the snapshot's).
fn merge_cloudtrail(facts: &mut Facts, trail: &CloudTrailData, quiet: bool) {
    facts.events.extend(trail.events.iter().cloned());
    facts.events.sort_by(|a, b| {
        (a.time, &a.credential_id, a.event_type).cmp(&(b.time, &b.credential_id, b.event_type))
    });
    // One entry per account and region the logs cover: a CloudTrail source is evidence
    // about those, never about "every account".
    for (account, region, records) in &trail.covered {
        facts.coverage.push(CoverageEntry {
            account: account.clone(),
            region: region.clone(),
            api: "cloudtrail:logs".into(),
            ok: true,
            error: None,
            records: *records,
        });
    }
    if !quiet && trail.skipped > 0 {
        let reasons: Vec<String> = trail
            .skip_reasons
            .iter()
            .map(|(r, n)| format!("{n} {}", term::escape(r)))
            .collect();
        eprintln!(
            "cloudtrail: read {} records from {} files, skipped {} ({})",
            trail.records,
            trail.files.len(),
            trail.skipped,
            reasons.join(", ")
        );
    }
}

/// The raw evidence of the CloudTrail files a scan read: `cloudtrail-files.json` (path, size and
/// SHA-256 of each) and, with `--keep-cloudtrail`, each file's bytes as `cloudtrail/<sha256>.json`
/// or `.json.gz`, with members named like a secret value removed.
fn trail_evidence(
    from: &Path,
    trail: &CloudTrailData,
    limits: &Limits,
    raw: &mut RawSpool,
    scrubbed: &mut Vec<(String, usize)>,
) -> Result<()> {
    let mut index = Vec::with_capacity(trail.sources.len());
    let mut kept_names = BTreeSet::new();
    for source in &trail.sources {
        let label = collect::input::relative_label(from, &source.path)
            .unwrap_or_else(|| source.path.display().to_string());
        let mut kept_as = None;
        if let Some(bytes) = &source.content {
            let (kept, extension, removed) = collect::raw::scrub_cloudtrail(bytes, limits)
                .map_err(|message| Error::input_file(&source.path, message))?;
            if removed > 0 {
                scrubbed.push((label.clone(), removed));
            }
            let name = format!("cloudtrail/{}.{extension}", source.sha256);
            if kept_names.insert(name.clone()) {
                raw.add(name.clone(), &kept).map_err(spool_err)?;
            }
            kept_as = Some(name);
        }
        index.push(collect::raw::TrailFile {
            path: label,
            bytes: source.bytes,
            sha256: source.sha256.clone(),
            kept_as,
        });
    }
    let (name, bytes) = collect::raw::cloudtrail_index(&index);
    raw.add(name, &bytes).map_err(spool_err)?;
    Ok(())
}

/// Stage 3: append the run to the snapshot. Usage aggregates carry over from the latest run (so
/// a baseline needs no old logs); the run is evaluated inside the recording transaction, so
/// its assessment is recorded with it, and every report renders the assessment as read back.
fn record(
    options: &ScanOptions,
    snapshot: &mut Snapshot,
    source: &str,
    gathered: Gathered,
) -> Result<RecordedRun> {
    let Gathered { facts, raw, trail } = gathered;
    let usage = trail.map(|t| (t.usage, t.auth_windows)).unwrap_or_default();
    let run = NewRun {
        db: &options.db,
        source,
        recorded_at: (options.clock)(),
        as_of: options.as_of,
        controls_dir: options.bundle.controls_dir.as_deref(),
    };
    record_facts(snapshot, &run, facts, usage, &raw)
}

/// What a new run is recorded as, apart from its facts.
pub(crate) struct NewRun<'a> {
    /// The snapshot's path, for messages.
    pub db: &'a Path,
    /// The run's source label (`export:DIR`, `aws:live`, `merge:A.db,B.db`).
    pub source: &'a str,
    pub recorded_at: Timestamp,
    pub as_of: Timestamp,
    pub controls_dir: Option<&'a Path>,
}

/// Appends `facts` as a run (stage 3 of a scan, and of `merge`): the usage of the snapshot's
/// latest run carried over, `usage` (new CloudTrail aggregates and authentication windows)
/// merged on top, evaluated in the recording transaction by the one evaluation stage.
pub(crate) fn record_facts(
    snapshot: &mut Snapshot,
    new_run: &NewRun,
    mut facts: Facts,
    usage: (
        Vec<crate::model::UsageBucket>,
        Vec<crate::model::AuthWindow>,
    ),
    raw: &RawSpool,
) -> Result<RecordedRun> {
    let (old_usage, old_windows) = match snapshot.latest_run()? {
        Some(run) => snapshot.usage(run.id)?,
        None => Default::default(),
    };
    let (new_usage, new_windows) = usage;
    facts.usage = cloudtrail::merge_usage(old_usage, new_usage);
    facts.auth_windows = cloudtrail::merge_auth_windows(old_windows, new_windows);

    let as_of = new_run.as_of;
    let frameworks = controls::load(new_run.controls_dir)?;
    let (run, facts, _) = snapshot.record_run(
        new_run.source,
        new_run.recorded_at,
        as_of,
        facts,
        raw,
        |f| evaluate(f, as_of, &frameworks),
    )?;
    let raw = snapshot.raw_files(run.id)?;
    let assessment = snapshot
        .assessment(run.id, &facts)?
        .ok_or_else(|| Error::SnapshotFormat {
            path: new_run.db.to_path_buf(),
            message: format!("run {} was recorded without its assessment", run.id),
        })?;
    let diff = previous_diff(snapshot, &run, &assessment.findings)?;
    Ok(RecordedRun {
        run,
        facts,
        assessment,
        diff,
        raw,
    })
}

/// Stage 4: the facts judged as of `as_of`: findings, control results, the remediation plan.
fn evaluate(facts: &Facts, as_of: Timestamp, frameworks: &[Framework]) -> Assessment {
    assess::assess(facts, as_of, frameworks, &PlanConfig::default())
}

/// The diff of a run against the run before it in the same snapshot, if there is one.
pub fn previous_diff(
    snapshot: &Snapshot,
    run: &RunMeta,
    findings: &[Finding],
) -> Result<Option<Diff>> {
    let Some(previous) = snapshot.run_before(run.id)? else {
        return Ok(None);
    };
    let before = snapshot.findings(previous.id)?;
    Ok(Some(diff::compare(previous.id, &before, run.id, findings)))
}

/// Stage 5: the evidence bundle of a recorded run in `out` (and `<out>.tar.gz` with `archive`),
/// its raw files streamed from `snapshot`; `credaudit report` renders a stored run through it
/// too.
pub fn render(
    out: &Path,
    archive: bool,
    recorded: &RecordedRun,
    snapshot: &Snapshot,
) -> Result<()> {
    let mut view = bundle::build_view(
        &recorded.run,
        &recorded.facts,
        &recorded.assessment,
        recorded.diff.as_ref(),
    );
    view.run.shards = crate::merge::shards_of(snapshot, &recorded.raw)?;
    let manifest = bundle::write_bundle(out, &view, &(snapshot, recorded.raw.as_slice()))?;
    if archive {
        bundle::write_archive(out, &manifest)?;
    }
    Ok(())
}

/// The terminal summary of a recorded run, on stderr: counts, the diff, unmatched waivers,
/// sources that could not be read, and where the bundle went.
pub(crate) fn tell(as_of: Timestamp, out: Option<&Path>, recorded: &RecordedRun) {
    let RecordedRun {
        run,
        facts,
        assessment,
        diff,
        ..
    } = recorded;
    let findings = &assessment.findings;
    let summary = Summary::of(findings);
    let waived = findings.iter().filter(|f| !f.is_open()).count();
    eprintln!(
        "run {} as of {}: {} credentials observed in {} account(s), {} declared; {} findings ({}){}",
        run.id,
        report::ReportHeader::new(as_of).as_of,
        facts.observed.len(),
        facts.scanned_accounts().len(),
        facts.inventory.credentials.len(),
        summary.total,
        summary.severity_line(),
        if waived > 0 {
            format!(", {waived} waived")
        } else {
            String::new()
        }
    );
    if let Some(d) = diff {
        eprintln!(
            "since run {}: {} new, {} resolved, {} persisting",
            d.from_run,
            d.new.len(),
            d.resolved.len(),
            d.persisting
        );
    }
    for w in &assessment.unmatched_waivers {
        eprintln!(
            "warning: waiver at line {} ({} on \"{}\", {}) matches no finding",
            w.line,
            term::escape(&w.rule),
            term::escape(&w.credential),
            term::escape(&w.ticket)
        );
    }
    for c in facts.coverage.iter().filter(|c| !c.ok) {
        eprintln!(
            "incomplete: {} {} {}: {}",
            term::escape(&c.account),
            term::escape(&c.region),
            term::escape(&c.api),
            term::escape(c.error.as_deref().unwrap_or("failed"))
        );
    }
    if let Some(out) = out {
        eprintln!("wrote {}", out.display());
    }
}

/// Stage 6: the exit. Incomplete when a source could not be read; findings at threshold when an
/// open finding reaches `fail_on`, or a new one reaches `fail_on_new` (every finding is new on
/// a snapshot's first run).
pub(crate) fn gate(
    fail_on: Option<Severity>,
    fail_on_new: Option<Severity>,
    recorded: &RecordedRun,
) -> Outcome {
    if recorded.facts.coverage.iter().any(|c| !c.ok) {
        return Outcome::Incomplete;
    }
    let reaches = |list: &[Finding], threshold: Option<Severity>| {
        threshold.is_some_and(|t| list.iter().any(|f| f.is_open() && f.severity >= t))
    };
    let findings = &recorded.assessment.findings;
    let new_findings = recorded
        .diff
        .as_ref()
        .map(|d| d.new.as_slice())
        .unwrap_or(findings);
    if reaches(findings, fail_on) || reaches(new_findings, fail_on_new) {
        Outcome::FindingsAtThreshold
    } else {
        Outcome::Ok
    }
}
