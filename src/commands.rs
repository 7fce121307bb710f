//! What each subcommand does, on top of the library: the clap arguments of `cli` turned into the
//! library's plain options (`scan` runs the pipeline of [`crate::scan`]); returns an [`Outcome`]
//! that `main` maps to an exit code. The only place below `main` that reads the clock (the
//! default as-of, and the clock a scan records its run with).

use std::io::{IsTerminal, Write};
use std::path::Path;

use chrono::Utc;
use clap::CommandFactory;

use crate::assess::{self, Assessment};
use crate::cli::{
    AwsArgs, BundleArgs, Cli, CollectArgs, ControlsArgs, DiffArgs, Format, GenerateArgs,
    IamPolicyArgs, MergeArgs, Query, QueryArgs, QueryFormatArg, ReportArgs, RulesArgs, RulesFormat,
    RunSelect, ScanArgs, SeverityArg, SimulateArgs, VerifyArgs,
};
use crate::collect::aws::{self, AwsOptions};
use crate::diff;
use crate::error::{Error, Result};
use crate::model::{Facts, Severity, Timestamp};
use crate::plan::PlanConfig;
use crate::report::bundle;
use crate::report::listing::{self, ControlsDocument, DiffDocument, QueryDocument, RulesDocument};
use crate::rules::RULES;
use crate::scan::{BundleOptions, RecordedRun, ScanOptions, Source};
use crate::snapshot::{RunMeta, Snapshot};
use crate::term;
use crate::{collect, controls, generate, history, query, rules, simulate};

pub use crate::outcome::Outcome;

/// Parses `--as-of`, defaulting to now.
pub fn as_of(arg: Option<&str>) -> Result<Timestamp> {
    match arg {
        None => Ok(Utc::now()),
        Some(s) => history::parse_time(s).map_err(|m| Error::Usage(format!("--as-of {s:?}: {m}"))),
    }
}

/// `credaudit scan`: the arguments as [`ScanOptions`], then the pipeline of [`crate::scan`].
pub fn scan(args: &ScanArgs) -> Result<Outcome> {
    crate::scan::run(&scan_options(args)?)
}

/// The plain options of a scan from its arguments; `--as-of` defaults to now.
fn scan_options(args: &ScanArgs) -> Result<ScanOptions> {
    let source = match &args.from {
        Some(dir) => Source::Export(dir.clone()),
        None => Source::Live {
            aws: Box::new(aws_options(&args.aws, args.quiet)),
            export: args.aws.export.clone(),
        },
    };
    Ok(ScanOptions {
        as_of: as_of(args.as_of.as_deref())?,
        source,
        cloudtrail: args.cloudtrail.clone(),
        inventory: args.inventory.clone(),
        history: args.history.clone(),
        waivers: args.waivers.clone(),
        db: args.db.clone(),
        clock: Utc::now,
        bundle: bundle_options(&args.bundle),
        fail_on: args.gate.fail_on.map(severity),
        fail_on_new: args.gate.fail_on_new.map(severity),
        limits: args.limits.limits(),
        allow_mislabelled: args.allow_mislabelled,
        keep_cloudtrail: args.keep_cloudtrail,
        quiet: args.quiet,
    })
}

/// `credaudit merge`: the arguments as [`crate::merge::MergeOptions`], then the merge.
pub fn merge(args: &MergeArgs) -> Result<Outcome> {
    crate::merge::run(&crate::merge::MergeOptions {
        shards: args.shards.clone(),
        db: args.db.clone(),
        as_of: args
            .as_of
            .as_deref()
            .map(|t| parse_time_arg("--as-of", t))
            .transpose()?,
        clock: Utc::now,
        bundle: bundle_options(&args.bundle),
        fail_on: args.gate.fail_on.map(severity),
        fail_on_new: args.gate.fail_on_new.map(severity),
        quiet: args.quiet,
    })
}

fn bundle_options(args: &BundleArgs) -> BundleOptions {
    BundleOptions {
        out: args.out.clone(),
        archive: args.archive,
        controls_dir: args.controls_dir.clone(),
    }
}

/// The library's severity for a `--fail-on` value.
fn severity(arg: SeverityArg) -> Severity {
    match arg {
        SeverityArg::Info => Severity::Info,
        SeverityArg::Low => Severity::Low,
        SeverityArg::Medium => Severity::Medium,
        SeverityArg::High => Severity::High,
        SeverityArg::Critical => Severity::Critical,
    }
}

/// The library's table format for a `--format` value of `query`.
fn query_format(arg: QueryFormatArg) -> query::QueryFormat {
    match arg {
        QueryFormatArg::Table => query::QueryFormat::Table,
        QueryFormatArg::Csv => query::QueryFormat::Csv,
        QueryFormatArg::Json => query::QueryFormat::Json,
    }
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
            out.write_all(&listing::to_json(&DiffDocument::from(&d)))
                .map_err(stdout)?;
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
        cloudtrail_lake: args.cloudtrail_lake.clone(),
        progress: !quiet && std::io::stderr().is_terminal(),
        progress_lines: (!quiet && !std::io::stderr().is_terminal())
            .then_some(std::time::Duration::from_secs(30)),
        precise_last_used: args.precise_last_used,
        org: args.org.then(|| aws::OrgOptions {
            role: args.org_role.clone(),
            exclude_accounts: args.exclude_accounts.clone(),
            include_ous: args.include_ous.clone(),
        }),
    }
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
    crate::scan::collect_live(
        &aws_options(&args.aws, args.quiet),
        dir,
        Utc::now(),
        args.quiet,
    )?;
    let export = collect::read_export_dir(dir)?;
    Ok(if export.coverage.iter().all(|c| c.ok) {
        Outcome::Ok
    } else {
        Outcome::Incomplete
    })
}

/// `credaudit iam-policy`.
pub fn iam_policy(args: &IamPolicyArgs, out: &mut impl Write) -> Result<Outcome> {
    let text = if args.org {
        aws::org_iam_policies(&args.org_role)?
    } else {
        aws::iam_policy()
    };
    writeln!(out, "{text}").map_err(|e| Error::io(Path::new("<stdout>"), e))?;
    Ok(Outcome::Ok)
}

/// The assessment recorded with `run`. A run recorded before assessments were stored has none:
/// its recorded findings are judged now (see [`assess::judge`]), as of its own as-of, with the
/// current rule catalogue and the controls of `controls_dir` (or the built-in ones), and
/// stderr says so.
fn stored_assessment(
    snapshot: &Snapshot,
    run: &RunMeta,
    facts: &Facts,
    controls_dir: Option<&Path>,
) -> Result<Assessment> {
    if let Some(assessment) = snapshot.assessment(run.id, facts)? {
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
    // The findings recorded with the run stand: the controls, plan and unmatched waivers are
    // judged on them, not on a fresh evaluation of the rules.
    let findings = snapshot.findings(run.id)?;
    Ok(assess::judge(
        facts,
        run.as_of,
        &frameworks,
        &PlanConfig::default(),
        findings,
    ))
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
    let diff = crate::scan::previous_diff(&snapshot, &run, &assessment.findings)?;
    let run_id = run.id;
    let recorded = RecordedRun {
        run,
        facts,
        assessment,
        diff,
        raw,
    };
    crate::scan::render(out, args.bundle.archive, &recorded, &snapshot)?;
    eprintln!("wrote run {run_id} to {}", out.display());
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
            out.write_all(&listing::to_json(&ControlsDocument::of(
                selected.iter().copied(),
            )))
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
    let (_, run, facts, as_of) = select_run(&args.select)?;
    let optional =
        |flag: &str, v: &Option<String>| v.as_deref().map(|t| parse_time_arg(flag, t)).transpose();
    let (name, table, outcome) = match &args.query {
        Query::Rotations {
            since,
            until,
            credential,
        } => (
            "rotations",
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
            "trail",
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
            let outcome = if within {
                Outcome::Ok
            } else {
                Outcome::FindingsAtThreshold
            };
            ("proof", table, outcome)
        }
    };
    let bytes = match args.format {
        // A versioned document, not the bare rows of the table.
        QueryFormatArg::Json => listing::to_json(&QueryDocument::of(
            name,
            run.id,
            as_of.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            &table,
        )),
        format => table.render(query_format(format)),
    };
    out.write_all(&bytes)
        .map_err(|e| Error::io(Path::new("<stdout>"), e))?;
    Ok(outcome)
}

/// `credaudit rules`: the catalogue as a table, a versioned JSON document, or the README's
/// Markdown rule table.
pub fn rules_list(args: &RulesArgs, out: &mut impl Write) -> Result<Outcome> {
    let stdout = |e| Error::io(Path::new("<stdout>"), e);
    match args.format {
        RulesFormat::Json => {
            out.write_all(&listing::to_json(&RulesDocument::of_registry()))
                .map_err(stdout)?;
        }
        RulesFormat::Markdown => {
            out.write_all(listing::rules_markdown().as_bytes())
                .map_err(stdout)?;
        }
        RulesFormat::Table => {
            let width = RULES.iter().map(|r| r.meta.id.len()).max().unwrap_or(0);
            writeln!(out, "{:width$}  {:8}  DESCRIPTION", "RULE", "SEVERITY").map_err(stdout)?;
            for r in RULES {
                writeln!(
                    out,
                    "{:width$}  {:8}  {}",
                    r.meta.id,
                    r.meta.default_severity.as_str(),
                    r.meta.render_default(r.meta.title)
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
    let severity = match m.severity_varies {
        Some(varies) => format!(
            "{} by default; {}",
            m.default_severity,
            m.render_default(varies)
        ),
        None => format!("{} by default", m.default_severity),
    };
    writeln!(
        out,
        "{}  ({severity})\n\n{}\n\nFinds: {}\n\nWhy it matters:\n  {}\n\nWhat to do:\n  {}",
        m.id,
        m.render_default(m.title),
        m.render_default(m.finds),
        m.render_default(m.rationale),
        m.remediation
    )
    .map_err(|e| Error::io(Path::new("<stdout>"), e))?;
    Ok(Outcome::Ok)
}

/// `credaudit generate`.
pub fn generate(args: &GenerateArgs) -> Result<Outcome> {
    let as_of = as_of(Some(&args.as_of))?;
    let truth = match args.credentials {
        Some(credentials) => {
            let spec = generate::ScaleSpec {
                seed: args.seed,
                credentials,
                accounts: generate::accounts_from(args.seed, &args.accounts)?,
                regions: args
                    .regions
                    .split(',')
                    .map(|r| r.trim().to_string())
                    .collect(),
                days: args.days,
                rates: generate::Rates::parse(&args.rate)?,
                cloudtrail_events: args.cloudtrail_events,
                as_of,
                quiet: args.quiet,
            };
            generate::generate_scale(&spec, &args.out)?
        }
        None => {
            let mut spec = generate::FleetSpec::demo(as_of);
            spec.agents = args.agents;
            spec.seed = args.seed;
            generate::generate(&spec, &args.out)?
        }
    };
    if !args.quiet {
        eprintln!(
            "wrote a fleet of {} credentials ({} expected findings) to {}",
            truth.credentials,
            truth.expected.len(),
            args.out.display()
        );
    }
    Ok(Outcome::Ok)
}

/// `credaudit completions SHELL`: the shell's completion script, from the clap definition.
pub fn completions(shell: clap_complete::Shell, out: &mut impl Write) -> Result<Outcome> {
    clap_complete::generate(shell, &mut Cli::command(), "credaudit", out);
    Ok(Outcome::Ok)
}

/// `credaudit man`: the man page (roff), from the clap definition.
pub fn man(out: &mut impl Write) -> Result<Outcome> {
    clap_mangen::Man::new(Cli::command())
        .render(out)
        .map_err(|e| Error::io(Path::new("<stdout>"), e))?;
    Ok(Outcome::Ok)
}
