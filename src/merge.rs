//! `credaudit merge`: the snapshots of a sharded scan (one CI job per account or OU, each
//! `scan --db SHARD.db`) combined into one organisation run, recorded in its own snapshot and
//! evaluated by the same stages as a scan ([`crate::scan::record_facts`], then the bundle and
//! the gate), so the merged findings are those of one scan of every account with the same
//! declared inputs.
//!
//! Every shard is opened read-only (an older schema is migrated in memory, never in the file),
//! its hash chain verified, and its latest run read. Everything is checked before the
//! organisation snapshot is opened, so a refused merge writes nothing.
//!
//! How the facts combine:
//! - observed credentials, IAM users and coverage: the union (the shards' accounts must not
//!   overlap; a coverage entry two shards share, such as the CloudTrail logs of an organisation
//!   trail both read, counts once), so a gap in a shard is a gap of the merged run;
//! - declared inputs (inventory with its policy, rotation history, waivers): shards that declare
//!   one must declare the same one (as the same org-wide file gives); a shard that declares none
//!   takes the others'. Shards whose declared inputs differ are refused, naming both;
//! - CloudTrail rotation events: the union, an event two shards both read counted once; usage
//!   aggregates: per (credential, hour) as a scan merges them, the organisation snapshot's
//!   previous usage carried over first;
//! - the as-of: the latest of the shards' as-of, unless `--as-of` is given.
//!
//! The run records where it came from: its source is `merge:FILE,FILE…`, and the raw evidence
//! file `merge-shards.json` (hash-chained with the run) names each shard's file, run id, chain
//! head, as-of, accounts and coverage; `manifest.json` and `summary.md` show it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::collect::cloudtrail;
use crate::collect::raw::RawSpool;
use crate::error::{Error, Result};
use crate::join::fmt_time;
use crate::model::{
    AuthWindow, CoverageEntry, Facts, Inventory, RotationEvent, Severity, Timestamp, UsageBucket,
    Waiver,
};
use crate::outcome::Outcome;
use crate::report::bundle;
use crate::scan::{BundleOptions, NewRun};
use crate::snapshot::{RawEntry, RunMeta, Snapshot};
use crate::term;

/// The raw evidence file of a merged run that names its shards.
pub const PROVENANCE_FILE: &str = "merge-shards.json";

/// Version of [`PROVENANCE_FILE`]'s shape.
pub const PROVENANCE_VERSION: u32 = 1;

/// Everything a merge needs, free of the command line's types.
#[derive(Debug, Clone)]
pub struct MergeOptions {
    /// The shard snapshots, as given.
    pub shards: Vec<PathBuf>,
    /// The organisation snapshot to append the merged run to.
    pub db: PathBuf,
    /// Evaluate as of this time; `None`: the latest of the shards' as-of.
    pub as_of: Option<Timestamp>,
    /// The clock, read once when the run is recorded.
    pub clock: fn() -> Timestamp,
    pub bundle: BundleOptions,
    pub fail_on: Option<Severity>,
    pub fail_on_new: Option<Severity>,
    pub quiet: bool,
}

/// One shard of a merged run, as the run records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardSource {
    /// The shard's file name, as given on the command line.
    pub file: String,
    /// The id of the shard's run that was merged (its latest).
    pub run_id: i64,
    /// The shard's chain head: the content hash of that run (`verify --db FILE --head`).
    pub chain_head: String,
    /// The shard run's as-of and when it was recorded.
    pub as_of: String,
    pub recorded_at: String,
    /// The shard run's own source (`export:DIR`, `aws:live`, …) and status.
    pub source: String,
    pub status: String,
    /// The AWS accounts the shard read.
    pub accounts: Vec<String>,
    /// The shard run's coverage, as recorded (merged into the run's coverage).
    pub coverage: Vec<CoverageEntry>,
}

/// The document [`PROVENANCE_FILE`] holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Provenance {
    schema_version: u32,
    shards: Vec<ShardSource>,
}

/// The shards of a recorded run, read from its raw evidence; empty for a run that is not a
/// merge (or whose provenance this credaudit cannot read, which is said on stderr).
pub fn shards_of(snapshot: &Snapshot, raw: &[RawEntry]) -> Result<Vec<ShardSource>> {
    let Some(entry) = raw.iter().find(|e| e.path == PROVENANCE_FILE) else {
        return Ok(Vec::new());
    };
    let mut bytes = Vec::new();
    snapshot
        .open_raw(entry)?
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(Path::new(PROVENANCE_FILE), e))?;
    match serde_json::from_slice::<Provenance>(&bytes) {
        Ok(p) if p.schema_version == PROVENANCE_VERSION => Ok(p.shards),
        _ => {
            eprintln!(
                "note: the run's {PROVENANCE_FILE} is not one this credaudit reads; its shards are not shown"
            );
            Ok(Vec::new())
        }
    }
}

/// A shard, opened and checked: its latest run and facts.
struct Shard {
    path: PathBuf,
    snapshot: Snapshot,
    run: RunMeta,
    facts: Facts,
    /// Accounts it read or tried to read (coverage other than CloudTrail logs, and observed).
    accounts: BTreeSet<String>,
    /// Its run's raw evidence files.
    raw: Vec<RawEntry>,
}

impl Shard {
    /// Whether its run was given the declared file `name` (kept as raw evidence).
    fn declares(&self, name: &str) -> bool {
        self.raw.iter().any(|e| e.path == name)
    }
}

impl Shard {
    fn name(&self) -> String {
        self.path.display().to_string()
    }
}

/// How a merge ended before anything was recorded: refused with an error (exit 2), or refused
/// because a shard's chain does not verify (the exit `verify` gives a broken chain).
enum Refusal {
    Error(Error),
    BrokenChain(String),
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Refusal::Error(e)
    }
}

/// `credaudit merge`: open and check every shard, combine their latest runs, record the
/// combined run, render and gate it as a scan does.
pub fn run(options: &MergeOptions) -> Result<Outcome> {
    if let Some(out) = &options.bundle.out {
        bundle::check_out_dir(out)?;
    }
    let shards = match open_shards(options) {
        Ok(shards) => shards,
        Err(Refusal::Error(e)) => return Err(e),
        Err(Refusal::BrokenChain(message)) => {
            eprintln!("error: {}", term::escape(&message));
            return Ok(Outcome::FindingsAtThreshold);
        }
    };
    check_accounts(&shards)?;
    let declared = declared_inputs(&shards)?;
    let as_of = options
        .as_of
        .unwrap_or_else(|| shards.iter().map(|s| s.run.as_of).max().expect("one shard"));
    if !options.quiet {
        note_as_of(&shards, as_of, options.as_of.is_some());
    }
    let provenance: Vec<ShardSource> = shards.iter().map(shard_source).collect();
    let raw = merged_raw(&shards, &provenance)?;
    let source = format!(
        "merge:{}",
        shards.iter().map(Shard::name).collect::<Vec<_>>().join(",")
    );
    let (facts, usage) = merged_facts(shards, declared);

    // Opened only now: every shard has been read and checked.
    let mut snapshot = Snapshot::open(&options.db)?;
    let new_run = NewRun {
        db: &options.db,
        source: &source,
        recorded_at: (options.clock)(),
        as_of,
        controls_dir: options.bundle.controls_dir.as_deref(),
    };
    let recorded = crate::scan::record_facts(&mut snapshot, &new_run, facts, usage, &raw)?;
    drop(raw);
    if let Some(out) = &options.bundle.out {
        crate::scan::render(out, options.bundle.archive, &recorded, &snapshot)?;
    }
    if !options.quiet {
        for s in &provenance {
            eprintln!(
                "shard {}: run {} as of {}, head {}, {} account(s): {}",
                term::escape(&s.file),
                s.run_id,
                s.as_of,
                s.chain_head,
                s.accounts.len(),
                term::escape(&s.accounts.join(", "))
            );
        }
        crate::scan::tell(as_of, options.bundle.out.as_deref(), &recorded);
    }
    Ok(crate::scan::gate(
        options.fail_on,
        options.fail_on_new,
        &recorded,
    ))
}

/// Opens every shard read-only, in the order given: refuses the same file twice, the
/// organisation snapshot among the shards, a file that is not a snapshot this credaudit reads,
/// a chain that does not verify, and a shard without a run.
fn open_shards(options: &MergeOptions) -> std::result::Result<Vec<Shard>, Refusal> {
    if options.shards.is_empty() {
        return Err(Error::Usage("merge needs at least one shard snapshot".into()).into());
    }
    let org = identity(&options.db);
    let mut seen: HashMap<PathBuf, &Path> = HashMap::new();
    for path in &options.shards {
        if !path.is_file() {
            return Err(Error::Usage(format!(
                "shard {} does not exist (or is not a file)",
                path.display()
            ))
            .into());
        }
        let id = identity(path);
        if let Some(first) = seen.insert(id.clone(), path) {
            return Err(Error::Usage(format!(
                "shard {} is given twice (also as {}): each shard is merged once",
                path.display(),
                first.display()
            ))
            .into());
        }
        if id == org {
            return Err(Error::Usage(format!(
                "shard {} is the organisation snapshot --db {}: merge into another file",
                path.display(),
                options.db.display()
            ))
            .into());
        }
    }
    let mut shards = Vec::with_capacity(options.shards.len());
    for path in &options.shards {
        let snapshot = Snapshot::open_existing(path)?;
        let chain = snapshot.verify_chain()?;
        if let Some((run, why)) = &chain.first_broken {
            return Err(Refusal::BrokenChain(format!(
                "shard {}: run {run} is broken: {why}; its hash chain does not verify \
                 (`credaudit verify --db {}`), so it is not merged",
                path.display(),
                path.display()
            )));
        }
        if let Some(trigger) = snapshot.missing_guards().first() {
            return Err(Refusal::BrokenChain(format!(
                "shard {}: trigger {trigger} is missing: an append-only guard was removed \
                 outside credaudit, so it is not merged",
                path.display()
            )));
        }
        let run = snapshot.latest_run()?.ok_or_else(|| {
            Error::Usage(format!(
                "shard {} holds no run: scan into it first",
                path.display()
            ))
        })?;
        let facts = snapshot.facts(run.id)?;
        let mut accounts: BTreeSet<String> = facts
            .coverage
            .iter()
            .filter(|c| !c.api.starts_with("cloudtrail:"))
            .map(|c| c.account.clone())
            .collect();
        accounts.extend(facts.observed.iter().map(|c| c.account.clone()));
        let raw = snapshot.raw_files(run.id)?;
        shards.push(Shard {
            path: path.clone(),
            snapshot,
            run,
            facts,
            accounts,
            raw,
        });
    }
    Ok(shards)
}

/// What tells two paths are the same file: its device and inode (so a symlink, a hard link or
/// another spelling of the path is the same file), or for a file not made yet its canonical
/// folder and name.
fn identity(path: &Path) -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    if let Ok(meta) = std::fs::metadata(path) {
        return PathBuf::from(format!("inode:{}:{}", meta.dev(), meta.ino()));
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match (std::fs::canonicalize(parent), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

/// Refuses shards whose accounts overlap, naming the account and both shards.
fn check_accounts(shards: &[Shard]) -> Result<()> {
    let mut owner: BTreeMap<&str, &Shard> = BTreeMap::new();
    for shard in shards {
        for account in &shard.accounts {
            if let Some(first) = owner.insert(account, shard) {
                return Err(Error::Usage(format!(
                    "account {} is in both shard {} (run {}) and shard {} (run {}): shards must \
                     cover disjoint accounts",
                    account,
                    first.name(),
                    first.run.id,
                    shard.name(),
                    shard.run.id
                )));
            }
        }
    }
    Ok(())
}

/// The declared inputs of the merged run.
struct Declared {
    inventory: Inventory,
    history: Vec<RotationEvent>,
    waivers: Vec<Waiver>,
}

/// Whether a rotation event came from the declared history (not CloudTrail).
fn is_declared_event(e: &RotationEvent) -> bool {
    e.source == "history"
}

/// The declared inputs every shard that declares one agrees on; refuses shards that disagree.
fn declared_inputs(shards: &[Shard]) -> Result<Declared> {
    let inventory = agreed(
        shards,
        "inventory (inventory.toml, with its policy)",
        "inventory.toml",
        |f| f.inventory.clone(),
        inventory_difference,
    )?;
    let history = agreed(
        shards,
        "rotation history (history.jsonl)",
        "history.jsonl",
        |f| {
            f.events
                .iter()
                .filter(|e| is_declared_event(e))
                .cloned()
                .collect::<Vec<_>>()
        },
        |a, b| format!("{} against {} events", a.len(), b.len()),
    )?;
    let waivers = agreed(
        shards,
        "waivers (waivers.toml)",
        "waivers.toml",
        |f| f.waivers.clone(),
        |a, b| format!("{} against {} waivers", a.len(), b.len()),
    )?;
    Ok(Declared {
        inventory: inventory.unwrap_or_default(),
        history: history.unwrap_or_default(),
        waivers: waivers.unwrap_or_default(),
    })
}

/// The one value of a declared input among the shards whose run was given its file (`file`,
/// kept as raw evidence); an error naming the first two shards that disagree, and how
/// (`differ`).
fn agreed<T: PartialEq>(
    shards: &[Shard],
    what: &str,
    file: &str,
    of: impl Fn(&Facts) -> T,
    differ: impl Fn(&T, &T) -> String,
) -> Result<Option<T>> {
    let mut first: Option<(&Shard, T)> = None;
    for shard in shards.iter().filter(|s| s.declares(file)) {
        let value = of(&shard.facts);
        match &first {
            None => first = Some((shard, value)),
            Some((by, agreed)) if *agreed != value => {
                return Err(Error::Usage(format!(
                    "shards {} and {} were scanned with different {what} ({}): merge shards \
                     scanned with the same declared files",
                    by.name(),
                    shard.name(),
                    differ(agreed, &value)
                )));
            }
            Some(_) => {}
        }
    }
    Ok(first.map(|(_, value)| value))
}

/// The first difference of two inventories, for the refusal's message.
fn inventory_difference(a: &Inventory, b: &Inventory) -> String {
    if a.policy != b.policy {
        return "their rotation policies differ".into();
    }
    let ids = |inv: &Inventory| -> BTreeMap<String, String> {
        inv.credentials
            .iter()
            .map(|c| (c.id.clone(), format!("{c:?}")))
            .collect()
    };
    let (left, right) = (ids(a), ids(b));
    for (id, declared) in &left {
        match right.get(id) {
            None => return format!("credential {id:?} is declared in the first only"),
            Some(other) if other != declared => {
                return format!("credential {id:?} is declared differently");
            }
            Some(_) => {}
        }
    }
    if let Some(id) = right.keys().find(|id| !left.contains_key(*id)) {
        return format!("credential {id:?} is declared in the second only");
    }
    "their owners, or the order or lines of their declarations, differ".into()
}

/// What the run records of a shard.
fn shard_source(shard: &Shard) -> ShardSource {
    ShardSource {
        file: shard.name(),
        run_id: shard.run.id,
        chain_head: shard.run.content_hash.clone(),
        as_of: fmt_time(shard.run.as_of),
        recorded_at: fmt_time(shard.run.recorded_at),
        source: shard.run.source.clone(),
        status: shard.run.status.clone(),
        accounts: shard.accounts.iter().cloned().collect(),
        coverage: shard.facts.coverage.clone(),
    }
}

/// Says on stderr which as-of the merged run evaluates at when the shards' differ.
fn note_as_of(shards: &[Shard], as_of: Timestamp, given: bool) {
    let times: BTreeSet<Timestamp> = shards.iter().map(|s| s.run.as_of).collect();
    if times.len() > 1 {
        let list: Vec<String> = shards
            .iter()
            .map(|s| format!("{} {}", term::escape(&s.name()), fmt_time(s.run.as_of)))
            .collect();
        eprintln!(
            "note: the shards were evaluated at different times ({}); the merged run is \
             evaluated as of {}{}",
            list.join(", "),
            fmt_time(as_of),
            if given {
                " (--as-of)"
            } else {
                ", the latest of them"
            }
        );
    }
}

/// The raw evidence of the merged run: each shard's raw files, once where the shards that hold
/// a path agree on its bytes, and as `shards/N/PATH` (N: the shard's place on the command line,
/// from 1) for every shard where they do not (such as `cloudtrail-files.json` of shards that
/// read different logs); and the provenance file. A shard's own provenance file always goes
/// under `shards/N/`.
fn merged_raw(shards: &[Shard], provenance: &[ShardSource]) -> Result<RawSpool> {
    let mut by_path: BTreeMap<&str, Vec<(usize, &RawEntry)>> = BTreeMap::new();
    for (index, shard) in shards.iter().enumerate() {
        for entry in &shard.raw {
            by_path.entry(&entry.path).or_default().push((index, entry));
        }
    }
    let spool_err = |e| Error::io(Path::new("<raw evidence spool in the temporary folder>"), e);
    let mut spool = RawSpool::new();
    for (path, holders) in by_path {
        let agree = holders.iter().all(|(_, e)| e.sha256 == holders[0].1.sha256);
        let nest = !agree || path == PROVENANCE_FILE;
        for (index, entry) in &holders {
            let name = if nest {
                format!("shards/{}/{path}", index + 1)
            } else {
                path.to_string()
            };
            let mut bytes = Vec::new();
            shards[*index]
                .snapshot
                .open_raw(entry)?
                .read_to_end(&mut bytes)
                .map_err(|e| Error::io(&shards[*index].path, e))?;
            spool.add(name, &bytes).map_err(spool_err)?;
            if !nest {
                break;
            }
        }
    }
    let document = Provenance {
        schema_version: PROVENANCE_VERSION,
        shards: provenance.to_vec(),
    };
    let mut bytes = serde_json::to_vec_pretty(&document).expect("plain data");
    bytes.push(b'\n');
    spool.add(PROVENANCE_FILE, &bytes).map_err(spool_err)?;
    spool.sort();
    Ok(spool)
}

/// The facts of the merged run and the CloudTrail usage to merge on top of the organisation
/// snapshot's (see the module's documentation).
fn merged_facts(
    shards: Vec<Shard>,
    declared: Declared,
) -> (Facts, (Vec<UsageBucket>, Vec<AuthWindow>)) {
    let mut facts = Facts {
        inventory: declared.inventory,
        waivers: declared.waivers,
        events: declared.history,
        ..Facts::default()
    };
    let mut usage = Vec::new();
    let mut windows = Vec::new();
    let mut trail_events: Vec<RotationEvent> = Vec::new();
    let mut seen_events: HashSet<String> = HashSet::new();
    for shard in shards {
        let f = shard.facts;
        facts.observed.extend(f.observed);
        facts.users.extend(f.users);
        for c in f.coverage {
            if !facts.coverage.contains(&c) {
                facts.coverage.push(c);
            }
        }
        for e in f.events.into_iter().filter(|e| !is_declared_event(e)) {
            let key = serde_json::to_string(&e).expect("plain data");
            if seen_events.insert(key) {
                trail_events.push(e);
            }
        }
        usage = cloudtrail::merge_usage(usage, f.usage);
        windows = cloudtrail::merge_auth_windows(windows, f.auth_windows);
    }
    // The orders a scan of every account gives (see `collect::export` and `scan`).
    facts.observed.sort_by(|a, b| {
        (&a.account, a.kind, &a.region, &a.id).cmp(&(&b.account, b.kind, &b.region, &b.id))
    });
    facts
        .users
        .sort_by(|a, b| (&a.account, &a.name).cmp(&(&b.account, &b.name)));
    // A scan's coverage: the accounts' own entries by account, then the CloudTrail logs'.
    facts.coverage.sort_by(|a, b| {
        let logs = |c: &CoverageEntry| c.api.starts_with("cloudtrail:");
        (logs(a), &a.account)
            .cmp(&(logs(b), &b.account))
            .then_with(|| match logs(a) && logs(b) {
                true => (&a.account, &a.region).cmp(&(&b.account, &b.region)),
                false => std::cmp::Ordering::Equal,
            })
    });
    facts.events.extend(trail_events);
    facts.events.sort_by(|a, b| {
        (a.time, &a.credential_id, a.event_type).cmp(&(b.time, &b.credential_id, b.event_type))
    });
    (facts, (usage, windows))
}
