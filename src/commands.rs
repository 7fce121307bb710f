//! What each subcommand does, on top of the library; returns an [`Outcome`] that `main` maps
//! to an exit code. The only place below `main` that reads the clock (for the default as-of).

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::Utc;

use std::io::IsTerminal;

use crate::assess::{self, Assessment};
use crate::cli::{
    AwsArgs, BundleArgs, CollectArgs, ControlsArgs, DiffArgs, Format, GenerateArgs, Query,
    QueryArgs, ReportArgs, RulesArgs, RunSelect, ScanArgs, SimulateArgs, VerifyArgs,
};
use crate::collect::aws::{self, AwsOptions};
use crate::collect::cloudtrail;
use crate::collect::raw::RawFile;
use crate::diff::{self, Diff};
use crate::error::{Error, Result};
use crate::model::Finding;
use crate::model::{CoverageEntry, Facts, Severity, Timestamp};
use crate::plan::PlanConfig;
use crate::report::Summary;
use crate::report::bundle;
use crate::rules::RULES;
use crate::snapshot::RunMeta;
use crate::snapshot::Snapshot;
use crate::term;
use crate::{
    collect, controls, generate, history, inventory, query, report, rules, simulate, waivers,
};

/// How a command ended, short of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Ok,
    /// Exit 1: findings at or above `--fail-on`.
    FindingsAtThreshold,
    /// Exit 3: some source could not be read; partial results were recorded.
    Incomplete,
}

impl Outcome {
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Ok => 0,
            Outcome::FindingsAtThreshold => 1,
            Outcome::Incomplete => 3,
        }
    }
}

/// Parses `--as-of`, defaulting to now.
pub fn as_of(arg: Option<&str>) -> Result<Timestamp> {
    match arg {
        None => Ok(Utc::now()),
        Some(s) => history::parse_time(s).map_err(|m| Error::Usage(format!("--as-of {s:?}: {m}"))),
    }
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

/// `credaudit scan`: read every input first (so bad input leaves the snapshot untouched), then
/// record the run and its findings in one transaction, then write the outputs.
pub fn scan(args: &ScanArgs) -> Result<Outcome> {
    let as_of = as_of(args.as_of.as_deref())?;
    // An --out that cannot take a bundle is refused before anything is collected or recorded.
    if let Some(out) = &args.bundle.out {
        bundle::check_out_dir(out)?;
    }
    // A live scan collects into an export directory first (a temporary one unless --export),
    // then reads it like any other: live and replayed scans share one reader.
    let mut _temporary = None;
    let (from, source) = match &args.from {
        Some(dir) => {
            if !dir.is_dir() {
                return Err(Error::Usage(format!(
                    "--from {}: not a directory (expected an export directory, see docs/export-format.md)",
                    dir.display()
                )));
            }
            (dir.clone(), format!("export:{}", dir.display()))
        }
        None => {
            let dir = match &args.aws.export {
                Some(dir) => dir.clone(),
                None => {
                    let tmp =
                        tempfile::tempdir().map_err(|e| Error::io(Path::new("<tempdir>"), e))?;
                    let dir = tmp.path().to_path_buf();
                    _temporary = Some(tmp);
                    dir
                }
            };
            collect_live(&args.aws, &dir, as_of, args.quiet)?;
            (dir, "aws:live".to_string())
        }
    };
    let from = from.as_path();
    let limits = args.limits.limits();
    let inventory_path = input_or_default(args.inventory.as_deref(), from, "inventory.toml")?;
    let history_path = input_or_default(args.history.as_deref(), from, "history.jsonl")?;
    let waivers_path = input_or_default(args.waivers.as_deref(), from, "waivers.toml")?;

    let mut export = collect::export::read_export_dir_with(
        from,
        &collect::ExportOptions {
            limits,
            allow_mislabelled: args.allow_mislabelled,
        },
    )?;
    // The declared files are read once: the bytes parsed are the bytes kept as evidence. A
    // default one inside DIR must stay inside DIR; one named on the command line is the user's.
    let root = collect::input::canonical_root(from)?;
    let read_declared = |path: &Option<PathBuf>, named: bool| {
        path.as_deref()
            .map(|p| collect::input::read_bytes(p, (!named).then_some(root.as_path()), &limits))
            .transpose()
    };
    let inventory_bytes = read_declared(&inventory_path, args.inventory.is_some())?;
    let history_bytes = read_declared(&history_path, args.history.is_some())?;
    let waivers_bytes = read_declared(&waivers_path, args.waivers.is_some())?;
    let text = |path: &Option<PathBuf>, bytes: &Option<Vec<u8>>| -> Result<Option<String>> {
        match (path, bytes) {
            (Some(p), Some(b)) => String::from_utf8(b.clone())
                .map(Some)
                .map_err(|_| Error::input_file(p, "expected UTF-8 text")),
            _ => Ok(None),
        }
    };
    let inventory = match (&inventory_path, text(&inventory_path, &inventory_bytes)?) {
        (Some(p), Some(text)) => inventory::parse(&text, p)?,
        _ => {
            if !args.quiet {
                eprintln!(
                    "warning: no inventory given and none in {}: every credential is unmanaged",
                    from.display()
                );
            }
            inventory::Inventory::default()
        }
    };
    let events = match (&history_path, &history_bytes) {
        (Some(p), Some(bytes)) => history::parse(bytes, p)?,
        _ => Vec::new(),
    };
    let waivers = match (&waivers_path, text(&waivers_path, &waivers_bytes)?) {
        (Some(p), Some(text)) => waivers::parse(&text, p, &rules::ids())?,
        _ => Vec::new(),
    };
    let mut raw = std::mem::take(&mut export.raw);
    let mut scrubbed = std::mem::take(&mut export.scrubbed);
    for (name, bytes) in [
        ("inventory.toml", inventory_bytes),
        ("history.jsonl", history_bytes),
        ("waivers.toml", waivers_bytes),
    ] {
        if let Some(bytes) = bytes {
            let (kept, removed) = if name.ends_with(".jsonl") {
                collect::raw::scrub_json_lines(&bytes)
            } else {
                (std::borrow::Cow::Borrowed(bytes.as_slice()), 0)
            };
            if removed > 0 {
                scrubbed.push((name.to_string(), removed));
            }
            raw.push((name.to_string(), kept.into_owned()));
        }
    }
    let facts = Facts {
        inventory,
        observed: export.observed,
        events,
        coverage: export.coverage,
        waivers,
        ..Facts::default()
    };

    // CloudTrail: files given, plus DIR/cloudtrail when present.
    let mut trail_paths = args.cloudtrail.clone();
    let trail_dir = from.join("cloudtrail");
    if trail_dir.is_dir() {
        trail_paths.insert(0, trail_dir);
    }
    let trail = if trail_paths.is_empty() {
        None
    } else {
        let options = cloudtrail::ReadOptions {
            limits,
            export_root: Some(from.to_path_buf()),
            keep: args.keep_cloudtrail,
        };
        Some(cloudtrail::read_paths_with(&trail_paths, &options)?)
    };
    if let Some(trail) = &trail {
        trail_evidence(from, trail, &limits, &mut raw, &mut scrubbed)?;
    }
    raw.sort_by(|a, b| a.0.cmp(&b.0));
    if !args.quiet {
        for (file, removed) in &scrubbed {
            eprintln!(
                "warning: {}: left out {removed} member(s) named like a secret value (SecretString, SecretBinary); credaudit never stores secret values",
                crate::term::escape(file)
            );
        }
    }
    let mut facts = facts;
    if let Some(trail) = &trail {
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
        if !args.quiet && trail.skipped > 0 {
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

    let mut snapshot = Snapshot::open(&args.db)?;
    // Usage aggregates carry over from the latest run, so a baseline needs no old logs.
    let (old_usage, old_windows) = match snapshot.latest_run()? {
        Some(run) => snapshot.usage(run.id)?,
        None => Default::default(),
    };
    let (new_usage, new_windows) = trail.map(|t| (t.usage, t.auth_windows)).unwrap_or_default();
    facts.usage = cloudtrail::merge_usage(&old_usage, &new_usage);
    facts.auth_windows = cloudtrail::merge_auth_windows(&old_windows, &new_windows);

    // One assessment, recorded with the run; every report renders it as read back.
    let frameworks = controls::load(args.bundle.controls_dir.as_deref())?;
    let (run, facts, _) = snapshot.record_run(&source, Utc::now(), as_of, &facts, &raw, |f| {
        assess::assess(f, as_of, &frameworks, &PlanConfig::default())
    })?;
    let assessment = snapshot
        .assessment(run.id)?
        .ok_or_else(|| Error::SnapshotFormat {
            path: args.db.clone(),
            message: format!("run {} was recorded without its assessment", run.id),
        })?;
    let findings = &assessment.findings;
    let diff = previous_diff(&snapshot, &run, findings)?;

    if let Some(out) = &args.bundle.out {
        write_bundle(
            &args.bundle,
            out,
            &run,
            &facts,
            &assessment,
            diff.as_ref(),
            &raw,
        )?;
    }

    let summary = Summary::of(findings);
    let failed: Vec<_> = facts.coverage.iter().filter(|c| !c.ok).collect();
    if !args.quiet {
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
        if let Some(d) = &diff {
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
        for c in &failed {
            eprintln!(
                "incomplete: {} {} {}: {}",
                term::escape(&c.account),
                term::escape(&c.region),
                term::escape(&c.api),
                term::escape(c.error.as_deref().unwrap_or("failed"))
            );
        }
        if let Some(out) = &args.bundle.out {
            eprintln!("wrote {}", out.display());
        }
    }
    if !failed.is_empty() {
        return Ok(Outcome::Incomplete);
    }
    let gate = |list: &[Finding], threshold: Option<Severity>| {
        threshold.is_some_and(|t| list.iter().any(|f| f.is_open() && f.severity >= t))
    };
    let new_findings = diff.as_ref().map(|d| d.new.as_slice()).unwrap_or(findings);
    if gate(findings, args.fail_on) || gate(new_findings, args.fail_on_new) {
        return Ok(Outcome::FindingsAtThreshold);
    }
    Ok(Outcome::Ok)
}

/// The raw evidence of the CloudTrail files a scan read: `cloudtrail-files.json` (path, size and
/// SHA-256 of each) and, with `--keep-cloudtrail`, each file's bytes as `cloudtrail/<sha256>.json`
/// or `.json.gz`, with members named like a secret value removed.
fn trail_evidence(
    from: &Path,
    trail: &cloudtrail::CloudTrailData,
    limits: &collect::input::Limits,
    raw: &mut Vec<RawFile>,
    scrubbed: &mut Vec<(String, usize)>,
) -> Result<()> {
    let mut index = Vec::with_capacity(trail.sources.len());
    let mut kept_names = std::collections::BTreeSet::new();
    for source in &trail.sources {
        let label = match source.path.strip_prefix(from) {
            Ok(relative) => relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/"),
            Err(_) => source.path.display().to_string(),
        };
        let mut kept_as = None;
        if let Some(bytes) = &source.content {
            let (kept, extension, removed) = collect::raw::scrub_cloudtrail(bytes, limits)
                .map_err(|message| Error::input_file(&source.path, message))?;
            if removed > 0 {
                scrubbed.push((label.clone(), removed));
            }
            let name = format!("cloudtrail/{}.{extension}", source.sha256);
            if kept_names.insert(name.clone()) {
                raw.push((name.clone(), kept));
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
    raw.push(collect::raw::cloudtrail_index(&index));
    Ok(())
}

/// The diff of a run against the run before it in the same snapshot, if there is one.
fn previous_diff(snapshot: &Snapshot, run: &RunMeta, findings: &[Finding]) -> Result<Option<Diff>> {
    let Some(previous) = snapshot.run_before(run.id)? else {
        return Ok(None);
    };
    let before = snapshot.findings(previous.id)?;
    Ok(Some(diff::compare(previous.id, &before, run.id, findings)))
}

/// `credaudit diff`.
pub fn diff_runs(args: &DiffArgs, out: &mut impl Write) -> Result<Outcome> {
    let snapshot = Snapshot::open_existing(&args.db)?;
    let to = match args.to {
        Some(id) => snapshot.run(id)?,
        None => snapshot
            .latest_run()?
            .ok_or_else(|| Error::Usage(format!("{} holds no run yet", args.db.display())))?,
    };
    let from = match args.from {
        Some(id) => snapshot.run(id)?,
        None => snapshot.run_before(to.id)?.ok_or_else(|| {
            Error::Usage(format!(
                "run {} is the first run: nothing to compare with",
                to.id
            ))
        })?,
    };
    let d = diff::compare(
        from.id,
        &snapshot.findings(from.id)?,
        to.id,
        &snapshot.findings(to.id)?,
    );
    let stdout = |e| Error::io(Path::new("<stdout>"), e);
    match args.format {
        Format::Json => {
            let text = serde_json::to_string_pretty(&d).expect("plain data");
            writeln!(out, "{text}").map_err(stdout)?;
        }
        Format::Table => {
            writeln!(
                out,
                "run {} -> run {}: {} new, {} resolved, {} persisting",
                d.from_run,
                d.to_run,
                d.new.len(),
                d.resolved.len(),
                d.persisting
            )
            .map_err(stdout)?;
            for (mark, list) in [("+", &d.new), ("-", &d.resolved)] {
                for f in list {
                    writeln!(
                        out,
                        "{mark} {:8} {:26} {}  {}",
                        f.severity.as_str(),
                        term::escape(&f.rule),
                        term::escape(&f.credential),
                        term::escape(&f.message)
                    )
                    .map_err(stdout)?;
                }
            }
        }
    }
    Ok(Outcome::Ok)
}

/// Options of a live collection from the command line.
fn aws_options(args: &AwsArgs, quiet: bool) -> AwsOptions {
    AwsOptions {
        profile: args.profile.clone(),
        regions: args.regions.clone(),
        assume_roles: args.assume_roles.clone(),
        external_id: args.external_id.clone(),
        endpoint_url: args.endpoint_url.clone(),
        concurrency: args.concurrency.max(1),
        cloudtrail_window_days: args.cloudtrail_window,
        progress: !quiet && std::io::stderr().is_terminal(),
    }
}

fn collect_live(args: &AwsArgs, dir: &Path, as_of: Timestamp, quiet: bool) -> Result<()> {
    crate::output::create_private_dir_all(dir)?;
    let summary = aws::collect_to_dir(&aws_options(args, quiet), dir, as_of)?;
    if !quiet {
        eprintln!(
            "collected {} account(s) with {} requests ({} failed) into {}",
            summary.accounts.len(),
            summary.requests,
            summary.failures,
            dir.display()
        );
    }
    Ok(())
}

/// `credaudit collect --aws --export DIR`.
pub fn collect(args: &CollectArgs) -> Result<Outcome> {
    let dir = args
        .aws
        .export
        .as_deref()
        .ok_or_else(|| Error::Usage("collect needs --aws and --export DIR".to_string()))?;
    if !args.aws.aws {
        return Err(Error::Usage("collect needs --aws".to_string()));
    }
    collect_live(&args.aws, dir, Utc::now(), args.quiet)?;
    let export = collect::read_export_dir(dir)?;
    Ok(if export.coverage.iter().all(|c| c.ok) {
        Outcome::Ok
    } else {
        Outcome::Incomplete
    })
}

/// `credaudit iam-policy`.
pub fn iam_policy(out: &mut impl Write) -> Result<Outcome> {
    writeln!(out, "{}", aws::iam_policy()).map_err(|e| Error::io(Path::new("<stdout>"), e))?;
    Ok(Outcome::Ok)
}

/// Writes the evidence bundle of an assessed run (and its archive when asked).
fn write_bundle(
    args: &BundleArgs,
    out: &Path,
    run: &RunMeta,
    facts: &Facts,
    assessment: &Assessment,
    diff: Option<&Diff>,
    raw: &[RawFile],
) -> Result<()> {
    let view = bundle::build_view(run, facts, assessment, diff);
    let manifest = bundle::write_bundle(out, &view, raw)?;
    if args.archive {
        bundle::write_archive(out, &manifest)?;
    }
    Ok(())
}

/// The assessment recorded with `run`. A run recorded before assessments were stored has none:
/// it is assessed now, as of its own as-of, with the current rules and the controls of
/// `controls_dir` (or the built-in ones), and stderr says so.
fn stored_assessment(
    snapshot: &Snapshot,
    run: &RunMeta,
    facts: &Facts,
    controls_dir: Option<&Path>,
) -> Result<Assessment> {
    if let Some(assessment) = snapshot.assessment(run.id)? {
        if controls_dir.is_some() {
            eprintln!(
                "note: --controls-dir is ignored: the controls of run {} were judged when it was recorded",
                run.id
            );
        }
        return Ok(assessment);
    }
    eprintln!(
        "note: run {} was recorded before credaudit stored assessments; assessing it now, as of \
         its as-of, with this version's rules and controls (a later scan records its own)",
        run.id
    );
    let frameworks = controls::load(controls_dir)?;
    let mut assessment = assess::assess(facts, run.as_of, &frameworks, &PlanConfig::default());
    // The findings recorded with the run stand; only the rest is derived now.
    assessment.findings = snapshot.findings(run.id)?;
    Ok(assessment)
}

/// `credaudit report`: re-render a stored run from its recorded assessment; nothing is
/// re-evaluated or collected.
pub fn report(args: &ReportArgs) -> Result<Outcome> {
    let snapshot = Snapshot::open_existing(&args.db)?;
    let run = match args.run {
        Some(id) => snapshot.run(id)?,
        None => snapshot
            .latest_run()?
            .ok_or_else(|| Error::Usage(format!("{} holds no run yet", args.db.display())))?,
    };
    let out = args
        .bundle
        .out
        .as_deref()
        .ok_or_else(|| Error::Usage("report needs --out DIR".to_string()))?;
    let facts = snapshot.facts(run.id)?;
    let assessment =
        stored_assessment(&snapshot, &run, &facts, args.bundle.controls_dir.as_deref())?;
    let raw = snapshot.raw_files(run.id)?;
    let diff = previous_diff(&snapshot, &run, &assessment.findings)?;
    write_bundle(
        &args.bundle,
        out,
        &run,
        &facts,
        &assessment,
        diff.as_ref(),
        &raw,
    )?;
    eprintln!("wrote run {} to {}", run.id, out.display());
    Ok(Outcome::Ok)
}

/// `credaudit verify`: a bundle against its manifest, or a snapshot's hash chain.
pub fn verify(args: &VerifyArgs, out: &mut impl Write) -> Result<Outcome> {
    match (&args.dir, &args.db) {
        (_, Some(db)) => verify_db(db, args.head.as_deref(), out),
        (Some(dir), None) => verify_bundle(dir, out),
        (None, None) => Err(Error::Usage(
            "verify needs a bundle folder or --db FILE".into(),
        )),
    }
}

/// Exit 0 when the snapshot holds runs 1..n, each run's stored hash matches its content and
/// links to the run before, every append-only trigger is in place and, with `--head`, the
/// newest run's hash is `head`; 1 naming each problem. The snapshot is opened read-only.
fn verify_db(db: &Path, head: Option<&str>, out: &mut impl Write) -> Result<Outcome> {
    let snapshot = Snapshot::open_existing(db)?;
    let report = snapshot.verify_chain()?;
    let stdout = |e| Error::io(Path::new("<stdout>"), e);
    let mut failed = false;
    for trigger in snapshot.missing_guards() {
        let trigger = term::escape(trigger);
        writeln!(
            out,
            "FAILED: trigger {trigger} is missing: an append-only guard was removed outside credaudit"
        )
        .map_err(stdout)?;
        failed = true;
    }
    if let Some((run, why)) = &report.first_broken {
        let why = term::escape(why);
        writeln!(out, "FAILED: run {run} is broken: {why}").map_err(stdout)?;
        failed = true;
    }
    let actual_head = report.head.as_deref().map(term::escape);
    match report.head.as_deref() {
        None => {
            writeln!(
                out,
                "FAILED: {} holds no runs: there is no chain to verify",
                db.display()
            )
            .map_err(stdout)?;
            failed = true;
        }
        Some(actual) => {
            if let Some(wanted) = head.map(|h| h.trim().to_ascii_lowercase())
                && actual != wanted
            {
                writeln!(
                    out,
                    "FAILED: the newest of the {} runs has head {}, expected {}: runs were \
                     removed or added since that head was recorded",
                    report.runs,
                    term::escape(actual),
                    term::escape(&wanted)
                )
                .map_err(stdout)?;
                failed = true;
            }
        }
    }
    if failed {
        return Ok(Outcome::FindingsAtThreshold);
    }
    writeln!(
        out,
        "ok: {} runs, hash chain intact, head {}",
        report.runs,
        actual_head.unwrap_or_default()
    )
    .map_err(stdout)?;
    Ok(Outcome::Ok)
}

/// Exit 0 when the bundle matches its manifest, 1 naming each file that was changed, added
/// or removed.
fn verify_bundle(dir: &Path, out: &mut impl Write) -> Result<Outcome> {
    let (manifest, problems) = bundle::verify(dir)?;
    let stdout = |e| Error::io(Path::new("<stdout>"), e);
    if problems.is_empty() {
        writeln!(
            out,
            "ok: {} files match the manifest of run {} (as of {})",
            manifest.files.len(),
            manifest.run_id,
            term::escape(&manifest.as_of)
        )
        .map_err(stdout)?;
        return Ok(Outcome::Ok);
    }
    for p in &problems {
        writeln!(out, "{}", term::escape(&p.to_string())).map_err(stdout)?;
    }
    writeln!(
        out,
        "FAILED: {} problem(s) in {}",
        problems.len(),
        dir.display()
    )
    .map_err(stdout)?;
    Ok(Outcome::FindingsAtThreshold)
}

/// `credaudit controls`.
pub fn controls_list(args: &ControlsArgs, out: &mut impl Write) -> Result<Outcome> {
    let frameworks = controls::load(args.controls_dir.as_deref())?;
    let selected: Vec<_> = frameworks
        .iter()
        .filter(|f| args.framework.as_deref().is_none_or(|id| f.id == id))
        .collect();
    if selected.is_empty() {
        let ids: Vec<_> = frameworks.iter().map(|f| f.id.as_str()).collect();
        return Err(Error::Usage(format!(
            "no framework {:?}; known: {}",
            args.framework.as_deref().unwrap_or_default(),
            ids.join(", ")
        )));
    }
    let stdout = |e| Error::io(Path::new("<stdout>"), e);
    match args.format {
        Format::Json => {
            let doc: Vec<_> = selected
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "id": f.id, "name": f.name, "version": f.version,
                        "controls": f.controls.iter().map(|c| serde_json::json!({
                            "id": c.id, "title": c.title, "reason": c.reason,
                            "rules": c.rules, "manual": c.manual,
                            "max_age_days": c.max_age_days,
                            "max_unused_days": c.max_unused_days,
                            "max_active_keys_per_user": c.max_active_keys_per_user,
                            "kinds": c.kinds,
                            "tested_by": c.tested_by(),
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&doc).expect("plain data")
            )
            .map_err(stdout)?;
        }
        Format::Table => {
            for f in selected {
                writeln!(
                    out,
                    "{} {} ({})",
                    term::escape(&f.name),
                    term::escape(&f.version),
                    term::escape(&f.id)
                )
                .map_err(stdout)?;
                for c in &f.controls {
                    // Rules, own thresholds and kinds: a control judged only on its own
                    // threshold (CIS 1.14) must not read as tested by nothing.
                    writeln!(
                        out,
                        "  {:10} {}\n             tested by: {}",
                        term::escape(&c.id),
                        term::escape(&c.title),
                        term::escape(&c.tested_by())
                    )
                    .map_err(stdout)?;
                }
                writeln!(out).map_err(stdout)?;
            }
        }
    }
    Ok(Outcome::Ok)
}

/// The stored run a read-only command looks at, its facts, and the as-of time.
fn select_run(select: &RunSelect) -> Result<(Snapshot, RunMeta, Facts, Timestamp)> {
    let snapshot = Snapshot::open_existing(&select.db)?;
    let run = match select.run {
        Some(id) => snapshot.run(id)?,
        None => snapshot
            .latest_run()?
            .ok_or_else(|| Error::Usage(format!("{} holds no run yet", select.db.display())))?,
    };
    let as_of = match &select.as_of {
        Some(t) => parse_time_arg("--as-of", t)?,
        None => run.as_of,
    };
    let facts = snapshot.facts(run.id)?;
    Ok((snapshot, run, facts, as_of))
}

fn parse_time_arg(flag: &str, value: &str) -> Result<Timestamp> {
    history::parse_time(value).map_err(|m| Error::Usage(format!("{flag} {value:?}: {m}")))
}

/// `credaudit simulate`.
pub fn simulate(args: &SimulateArgs, out: &mut impl Write) -> Result<Outcome> {
    let (snapshot, run, facts, as_of) = select_run(&args.select)?;
    // The findings the run's assessment recorded: the simulation never evaluates.
    let assessment = stored_assessment(&snapshot, &run, &facts, None)?;
    let simulation = simulate::simulate(
        &facts,
        &assessment.findings,
        run.id,
        as_of,
        args.out.as_deref(),
    )?;
    out.write_all(simulation.to_markdown().as_bytes())
        .map_err(|e| Error::io(Path::new("<stdout>"), e))?;
    Ok(Outcome::Ok)
}

/// `credaudit query …`.
pub fn query(args: &QueryArgs, out: &mut impl Write) -> Result<Outcome> {
    // Queries read the facts only (no findings, no evaluation).
    let (_, _, facts, as_of) = select_run(&args.select)?;
    let optional =
        |flag: &str, v: &Option<String>| v.as_deref().map(|t| parse_time_arg(flag, t)).transpose();
    let (table, outcome) = match &args.query {
        Query::Rotations {
            since,
            until,
            credential,
        } => (
            query::rotations(
                &facts,
                as_of,
                optional("--since", since)?,
                optional("--until", until)?,
                credential.as_deref(),
            ),
            Outcome::Ok,
        ),
        Query::Trail {
            credential,
            from,
            to,
        } => (
            query::trail(
                &facts,
                as_of,
                credential,
                parse_time_arg("--from", from)?,
                parse_time_arg("--to", to)?,
            )?,
            Outcome::Ok,
        ),
        Query::Proof { credential } => {
            let (table, within) = query::proof(&facts, as_of, credential)?;
            (
                table,
                if within {
                    Outcome::Ok
                } else {
                    Outcome::FindingsAtThreshold
                },
            )
        }
    };
    out.write_all(&table.render(args.format))
        .map_err(|e| Error::io(Path::new("<stdout>"), e))?;
    Ok(outcome)
}

/// `credaudit rules`.
pub fn rules_list(args: &RulesArgs, out: &mut impl Write) -> Result<Outcome> {
    let stdout = |e| Error::io(Path::new("<stdout>"), e);
    match args.format {
        Format::Json => {
            let rules: Vec<_> = RULES
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "id": r.meta.id,
                        "title": r.meta.title,
                        "default_severity": r.meta.default_severity,
                        "rationale": r.meta.rationale,
                        "remediation": r.meta.remediation,
                    })
                })
                .collect();
            let text = serde_json::to_string_pretty(&rules).expect("plain data");
            writeln!(out, "{text}").map_err(stdout)?;
        }
        Format::Table => {
            let width = RULES.iter().map(|r| r.meta.id.len()).max().unwrap_or(0);
            writeln!(out, "{:width$}  {:8}  DESCRIPTION", "RULE", "SEVERITY").map_err(stdout)?;
            for r in RULES {
                writeln!(
                    out,
                    "{:width$}  {:8}  {}",
                    r.meta.id,
                    r.meta.default_severity.as_str(),
                    r.meta.title
                )
                .map_err(stdout)?;
            }
        }
    }
    Ok(Outcome::Ok)
}

/// `credaudit explain RULE`.
pub fn explain(id: &str, out: &mut impl Write) -> Result<Outcome> {
    let rule = rules::find(id)
        .ok_or_else(|| Error::Usage(format!("no rule {id:?}; `credaudit rules` lists them all")))?;
    let m = &rule.meta;
    writeln!(
        out,
        "{}  ({} by default)\n\n{}\n\nWhy it matters:\n  {}\n\nWhat to do:\n  {}",
        m.id, m.default_severity, m.title, m.rationale, m.remediation
    )
    .map_err(|e| Error::io(Path::new("<stdout>"), e))?;
    Ok(Outcome::Ok)
}

/// `credaudit generate`.
pub fn generate(args: &GenerateArgs) -> Result<Outcome> {
    let as_of = as_of(Some(&args.as_of))?;
    let mut spec = generate::FleetSpec::demo(as_of);
    spec.agents = args.agents;
    spec.seed = args.seed;
    let truth = generate::generate(&spec, &args.out)?;
    eprintln!(
        "wrote a fleet of {} credentials ({} expected findings) to {}",
        truth.credentials,
        truth.expected.len(),
        args.out.display()
    );
    Ok(Outcome::Ok)
}
