//! The SQLite snapshot: versioned schema, append-only hash-chained runs, and typed reads.
//!
//! A run holds every fact a scan collected (observed and declared credentials, owners, policy,
//! rotation events, coverage), the findings evaluated from them and the rest of their
//! assessment (sources had, rules run, control results, plan), and its raw evidence files.
//! It is written in one transaction: an interrupted scan leaves no half run, and earlier runs
//! are never changed (triggers refuse UPDATE and DELETE).
//!
//! Storage is content-addressed (see `store`): each table of a run is one section, its
//! canonical stream (see `canonical`), kept as a blob, and so is each raw file; a run refers to
//! them by SHA-256. A run that stores what an earlier one stored (the same fleet, history and
//! inventory) costs a reference per section, and a change costs the chunks around it.
//!
//! The file is untrusted when opened: its schema must be exactly the one the migrations
//! produce (a planted trigger or view would run hidden SQL), checked under a bound on SQLite's
//! work. Only `scan` and `merge` (its `--db`) open it read-write and migrate; every other
//! command (and `merge`, its shards) opens it read-only, after rolling back what a scan killed
//! while recording left in SQLite's journal. Concurrent scans take turns: each records its run
//! in one `BEGIN IMMEDIATE` transaction, waiting up to [`BUSY_TIMEOUT`] for the one before.

mod canonical;
#[cfg(test)]
mod legacy;
mod schema;
mod sections;
mod store;

pub use sections::RawEntry;

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rusqlite::config::DbConfig;
use rusqlite::types::Value;
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
    params_from_iter,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::assess::Assessment;
use crate::collect::raw::RawSpool;
use crate::error::{Error, Result};
use crate::model::{AuthWindow, Facts, Finding, Timestamp, UsageBucket, hex};

/// What an evaluation gives [`Snapshot::record_run`] to store: the findings (always), and the
/// rest of an [`Assessment`] as JSON.
pub trait Evaluation {
    fn findings(&self) -> &[Finding];
    /// `None`: findings only, no assessment row.
    fn assessment_json(&self) -> Option<String>;
}

impl Evaluation for Vec<Finding> {
    fn findings(&self) -> &[Finding] {
        self
    }
    fn assessment_json(&self) -> Option<String> {
        None
    }
}

impl Evaluation for Assessment {
    fn findings(&self) -> &[Finding] {
        &self.findings
    }
    fn assessment_json(&self) -> Option<String> {
        Some(serde_json::to_string(self).expect("an assessment always serialises"))
    }
}

/// What a run is, apart from its facts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunMeta {
    pub id: i64,
    /// Wall-clock time the run was recorded (from the CLI; never read here).
    pub recorded_at: Timestamp,
    /// The evaluation time.
    pub as_of: Timestamp,
    /// Where the facts came from, e.g. `export:fixtures/demo-fleet`.
    pub source: String,
    pub tool_version: String,
    /// `complete`, or `partial` when coverage records a failure.
    pub status: String,
    pub content_hash: String,
    pub prev_hash: String,
}

/// The outcome of [`Snapshot::verify_chain`].
#[derive(Debug, Clone, PartialEq)]
pub struct ChainReport {
    pub runs: usize,
    /// The first run whose hash or link is wrong, and why.
    pub first_broken: Option<(i64, String)>,
    /// The newest run's content hash: keep it to notice later that runs were removed.
    pub head: Option<String>,
}

/// An open snapshot file.
pub struct Snapshot {
    conn: Connection,
    path: PathBuf,
    /// Append-only triggers absent from a snapshot opened read-only (reading is unaffected;
    /// `verify` reports them). A read-write open refuses such a snapshot.
    missing_guards: Vec<String>,
}

/// How a snapshot is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// `scan`: may create and migrate the file.
    ReadWrite,
    /// Every other command: no write of any kind.
    ReadOnly,
}

/// How long a statement waits for another process's lock on the snapshot before it gives up
/// with [`Error::Snapshot`] naming the wait. Concurrent scans into one snapshot take turns: each
/// records its run in one `BEGIN IMMEDIATE` transaction, which waits here for the one before.
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// SQLite virtual-machine instructions between two calls of the progress handler.
const PROGRESS_STEP: i32 = 1_000;
/// Calls of the progress handler after which opening a snapshot is interrupted: checking
/// credaudit's own schema takes a few thousand instructions, a hostile one may never end.
const PROGRESS_LIMIT: u64 = 10_000;

/// Creates a missing snapshot as an empty owner-only file (0600), in owner-only folders (0700)
/// where they are missing, before SQLite opens it: SQLite would create it with the umask.
fn create_owner_only(path: &Path) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.exists()
    {
        crate::output::create_private_dir_all(parent)?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(crate::output::FILE_MODE)
        .open(path)
    {
        Ok(_) => Ok(()),
        // Another process created it meanwhile: `tighten_mode` sees to its mode.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Makes an existing snapshot owner-only (0600) when its group or others may access it.
fn tighten_mode(path: &Path) -> Result<()> {
    let mode = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(
            path,
            std::fs::Permissions::from_mode(crate::output::FILE_MODE),
        )
        .map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

use sections::ts;

impl Snapshot {
    /// Opens (creating if needed, owner-only) a snapshot read-write, checks its schema, brings
    /// it up to date and checks it again. Only `scan` and `merge` (its `--db`) do this.
    pub fn open(path: &Path) -> Result<Self> {
        create_owner_only(path)?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| Error::Snapshot {
            path: path.to_path_buf(),
            source,
        })?;
        let mut snapshot = Snapshot {
            conn,
            path: path.to_path_buf(),
            missing_guards: Vec::new(),
        };
        snapshot.harden()?;
        let version = snapshot.check_schema(Access::ReadWrite)?;
        tighten_mode(path)?;
        // The schema is credaudit's now, and a migration may legitimately touch every row.
        snapshot.unbound();
        snapshot.migrate(version)?;
        snapshot.bound();
        snapshot.check_schema(Access::ReadWrite)?;
        snapshot.unbound();
        Ok(snapshot)
    }

    /// Opens an existing snapshot read-only: no migration and no write, so the file's bytes
    /// and mtime stay as they are. A missing file, a schema that is not credaudit's and an
    /// older schema version (a scan upgrades it) are errors.
    pub fn open_existing(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::Usage(format!(
                "snapshot {} does not exist: run `credaudit scan` first",
                path.display()
            )));
        }
        Self::roll_back_interrupted(path)?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| Error::Snapshot {
            path: path.to_path_buf(),
            source,
        })?;
        let mut snapshot = Snapshot {
            conn,
            path: path.to_path_buf(),
            missing_guards: Vec::new(),
        };
        snapshot.harden()?;
        let version = snapshot.check_schema(Access::ReadOnly)?;
        if version < schema::MIGRATIONS.len() {
            snapshot.upgrade_in_memory(version)?;
        }
        snapshot.unbound();
        Ok(snapshot)
    }

    /// Rolls back the rollback journal a scan killed while recording left beside the snapshot
    /// (`<path>-journal`), as the next scan would: SQLite refuses a read-only connection to a
    /// file with such a "hot" journal, and the journal's pages are what the file held at the
    /// last commit, so rolling back changes nothing any command could read. A journal that a
    /// scan still recording holds is not hot, and SQLite leaves it alone.
    fn roll_back_interrupted(path: &Path) -> Result<()> {
        let mut journal = path.as_os_str().to_owned();
        journal.push("-journal");
        let journal = PathBuf::from(journal);
        if !std::fs::symlink_metadata(&journal).is_ok_and(|m| m.is_file() && m.len() > 0) {
            return Ok(());
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| Error::SnapshotFormat {
            path: path.to_path_buf(),
            message: format!(
                "a scan was interrupted while recording and left {} to roll back, which needs \
                 write access to the snapshot ({source}); run credaudit as the snapshot's owner",
                journal.display()
            ),
        })?;
        let mut snapshot = Snapshot {
            conn,
            path: path.to_path_buf(),
            missing_guards: Vec::new(),
        };
        snapshot.harden()?;
        // The first read takes a shared lock, and SQLite rolls a hot journal back then.
        snapshot
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .map_err(|e| snapshot.bounded_err(e))?;
        Ok(())
    }

    /// A snapshot written by an older credaudit, opened read-only: its pages are copied into
    /// memory and the copy is migrated, so every command can read old snapshots (and verify
    /// their chains) while the file itself is never written. Only `scan` and `merge` (its `--db`) upgrade a file.
    fn upgrade_in_memory(&mut self, version: usize) -> Result<()> {
        let mut memory = Connection::open_in_memory().map_err(|e| self.err(e))?;
        {
            let backup =
                rusqlite::backup::Backup::new(&self.conn, &mut memory).map_err(|e| self.err(e))?;
            backup
                .run_to_completion(4096, std::time::Duration::ZERO, None)
                .map_err(|e| self.err(e))?;
        }
        self.conn = memory;
        self.harden()?;
        // The schema was checked at its version; a migration may touch every row.
        self.unbound();
        self.migrate(version)?;
        self.bound();
        self.check_schema(Access::ReadOnly)?;
        Ok(())
    }

    /// Append-only triggers missing from a snapshot opened read-only.
    pub fn missing_guards(&self) -> &[String] {
        &self.missing_guards
    }

    fn err(&self, source: rusqlite::Error) -> Error {
        Error::Snapshot {
            path: self.path.clone(),
            source,
        }
    }

    fn format_err(&self, message: String) -> Error {
        Error::SnapshotFormat {
            path: self.path.clone(),
            message,
        }
    }

    /// An error while the progress handler bounds the work: an interruption is named as such.
    fn bounded_err(&self, source: rusqlite::Error) -> Error {
        match source.sqlite_error_code() {
            Some(rusqlite::ErrorCode::OperationInterrupted) => self.format_err(format!(
                "checking its schema took more than {} SQLite steps; credaudit's own schema \
                 needs a few thousand, so this file was changed to make queries run forever",
                PROGRESS_LIMIT * PROGRESS_STEP as u64
            )),
            _ => self.err(source),
        }
    }

    /// Settings for an untrusted file: functions in the schema may not have side effects, the
    /// schema itself cannot be written through SQL, and the work is bounded until the schema
    /// has been checked.
    fn harden(&mut self) -> Result<()> {
        self.conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| self.err(e))?;
        self.conn
            .pragma_update(None, "trusted_schema", "OFF")
            .map_err(|e| self.err(e))?;
        self.conn
            .set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)
            .map_err(|e| self.err(e))?;
        self.bound();
        Ok(())
    }

    /// Interrupts any statement after [`PROGRESS_LIMIT`] progress calls from now on.
    fn bound(&mut self) {
        let mut calls: u64 = 0;
        self.conn.progress_handler(
            PROGRESS_STEP,
            Some(move || {
                calls += 1;
                calls > PROGRESS_LIMIT
            }),
        );
    }

    /// Lifts the bound once the schema is known to be credaudit's (a large snapshot's reads
    /// legitimately take many steps).
    fn unbound(&mut self) {
        self.conn.progress_handler(0, None::<fn() -> bool>);
    }

    /// Compares every object of the file's schema with what the migrations produce at its
    /// `user_version`; returns that version. Unknown or altered objects are always an error;
    /// a missing append-only trigger is one for a read-write open and is remembered for
    /// `verify` on a read-only one.
    fn check_schema(&mut self, access: Access) -> Result<usize> {
        // One read transaction for the version and the objects: another scan creating or
        // migrating the same file commits between two statements otherwise, and the version
        // read would not be the version of the objects read.
        let read = self
            .conn
            .unchecked_transaction()
            .map_err(|e| self.bounded_err(e))?;
        let version: i64 = read
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.bounded_err(e))?;
        let known = schema::MIGRATIONS.len();
        let version = match usize::try_from(version) {
            Ok(v) if v <= known => v,
            _ => {
                return Err(self.format_err(format!(
                    "schema version {version} is newer than this credaudit understands ({known}); upgrade credaudit"
                )));
            }
        };
        let actual = schema::objects(&read).map_err(|e| self.bounded_err(e))?;
        drop(read);
        let expected = schema::expected(version).map_err(|e| self.err(e))?;
        let (tolerated, fatal): (Vec<_>, Vec<_>) = schema::compare(&actual, &expected)
            .into_iter()
            .partition(|d| {
                access == Access::ReadOnly
                    && matches!(d, schema::Difference::Missing { kind, .. } if kind == "trigger")
            });
        if !fatal.is_empty() {
            let list = fatal
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            return Err(self.format_err(if version == 0 {
                format!(
                    "not a credaudit snapshot: it holds {list} and no credaudit schema \
                     (user_version 0); expected a file written by `credaudit scan`"
                )
            } else {
                format!(
                    "schema differs from credaudit's schema version {version}: {list}; expected \
                     exactly the tables, indexes and triggers credaudit creates (the file was \
                     changed outside credaudit: restore it from a copy you trust)"
                )
            }));
        }
        if access == Access::ReadOnly {
            if version == 0 {
                return Err(self.format_err(
                    "holds no credaudit schema (user_version 0): run `credaudit scan` to create \
                     a snapshot"
                        .into(),
                ));
            }
            self.missing_guards = tolerated
                .iter()
                .filter_map(|d| match d {
                    schema::Difference::Missing { name, .. } => Some(name.clone()),
                    _ => None,
                })
                .collect();
        }
        Ok(version)
    }

    /// Applies the migrations after `version` (already checked), each in its own transaction
    /// (with the data it converts).
    fn migrate(&mut self, version: usize) -> Result<()> {
        let path = self.path.clone();
        let wrap = |source| Error::Snapshot {
            path: path.clone(),
            source,
        };
        for (index, migration) in schema::MIGRATIONS.iter().enumerate().skip(version) {
            // Immediate: the write lock is taken before the version is read, so two scans
            // creating one snapshot at once apply each migration once, one after the other.
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(wrap)?;
            let applied: i64 = tx
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(wrap)?;
            if applied > index as i64 {
                continue;
            }
            migration.apply(&tx).map_err(wrap)?;
            tx.pragma_update(None, "user_version", index as i64 + 1)
                .map_err(wrap)?;
            tx.commit().map_err(wrap)?;
        }
        Ok(())
    }

    /// Records a run: writes the raw files and the facts, reads the facts back, lets `evaluate`
    /// assess what was stored (findings, and for an [`Assessment`] the rest of it), writes
    /// that, and commits, all in one transaction. The facts are dropped once written: what is
    /// evaluated, and given back, is the copy read back.
    pub fn record_run<E: Evaluation>(
        &mut self,
        source: &str,
        recorded_at: Timestamp,
        as_of: Timestamp,
        facts: Facts,
        raw: &RawSpool,
        evaluate: impl FnOnce(&Facts) -> E,
    ) -> Result<(RunMeta, Facts, E)> {
        let path = self.path.clone();
        let wrap = |source| Error::Snapshot {
            path: path.clone(),
            source,
        };
        // Immediate: the write lock is taken before the chain head is read, so a concurrent
        // scan waits (up to BUSY_TIMEOUT) instead of failing to upgrade a read lock.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(wrap)?;
        let (run_id, prev_hash): (i64, String) = tx
            .query_row(
                "SELECT COALESCE(MAX(id), 0) + 1,
                        COALESCE((SELECT content_hash FROM runs ORDER BY id DESC LIMIT 1), '')
                 FROM runs",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(wrap)?;
        let status = if facts.coverage.iter().all(|c| c.ok) {
            "complete"
        } else {
            "partial"
        };
        let mut written = sections::write_facts(&tx, &facts).map_err(wrap)?;
        drop(facts);
        let raw_list = write_raw(&tx, raw, &path)?;
        written.push((
            "raw_files",
            sections::write_raw_list(&tx, &raw_list).map_err(wrap)?,
        ));
        insert_sections(&tx, run_id, &written).map_err(wrap)?;
        let stored =
            sections::read_facts(&tx, run_id).map_err(|message| Error::SnapshotFormat {
                path: path.clone(),
                message,
            })?;
        let evaluation = evaluate(&stored);
        let judged = [
            (
                "findings",
                sections::write_findings(&tx, evaluation.findings()).map_err(wrap)?,
            ),
            (
                "assessments",
                sections::write_assessment(&tx, evaluation.assessment_json().as_deref())
                    .map_err(wrap)?,
            ),
        ];
        insert_sections(&tx, run_id, &judged).map_err(wrap)?;
        written.extend(judged);
        let meta = insert_run(
            &tx,
            &path,
            (run_id, &prev_hash, status),
            (recorded_at, as_of, source),
            written,
        )?;
        tx.commit().map_err(wrap)?;
        Ok((meta, stored, evaluation))
    }

    /// Every run, oldest first.
    pub fn runs(&self) -> Result<Vec<RunMeta>> {
        let mut stmt = self
            .conn
            .prepare(&format!("{META_SELECT} ORDER BY id"))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], meta_from_row)
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))?;
        rows.into_iter().collect()
    }

    /// The newest run, if any.
    pub fn latest_run(&self) -> Result<Option<RunMeta>> {
        Ok(self.runs()?.pop())
    }

    /// The run just before `run_id`, if any.
    pub fn run_before(&self, run_id: i64) -> Result<Option<RunMeta>> {
        Ok(self.runs()?.into_iter().rev().find(|r| r.id < run_id))
    }

    /// Recomputes every run's content hash from what is stored and checks the chain: ids run
    /// 1, 2, 3… without a gap, each run links to the one before, its hash matches (with the
    /// algorithm of its `hash_version`, which never goes back), every blob it refers to hashes
    /// to its name (each chunk to its own), every raw file matches its recorded SHA-256, and
    /// no run's sections belong to a run that is not there.
    pub fn verify_chain(&self) -> Result<ChainReport> {
        let runs = self.runs()?;
        let head = runs.last().map(|r| r.content_hash.clone());
        let first_broken = match self.first_broken_run(&runs)? {
            Some(broken) => Some(broken),
            None => self.first_orphaned_run()?,
        };
        Ok(ChainReport {
            runs: runs.len(),
            first_broken,
            head,
        })
    }

    /// The first run of the chain that does not verify, and why.
    fn first_broken_run(&self, runs: &[RunMeta]) -> Result<Option<(i64, String)>> {
        let mut prev = String::new();
        let mut newest_version = 1;
        // Blobs already found intact: a section or file shared by many runs is read once.
        let mut intact = HashSet::new();
        for (index, run) in runs.iter().enumerate() {
            if let Some(why) =
                self.run_break(index, run, &prev, &mut newest_version, &mut intact)?
            {
                return Ok(Some((run.id, why)));
            }
            prev = run.content_hash.clone();
        }
        Ok(None)
    }

    /// Why the run at `index` of the chain does not verify, after a run hashed `prev` with hash
    /// version `newest_version` (which it moves on to the run's version), or `None`.
    fn run_break(
        &self,
        index: usize,
        run: &RunMeta,
        prev: &str,
        newest_version: &mut i64,
        intact: &mut HashSet<String>,
    ) -> Result<Option<String>> {
        if let Some(why) = link_break(index, run, prev) {
            return Ok(Some(why));
        }
        let version: i64 = self
            .conn
            .query_row(
                "SELECT hash_version FROM runs WHERE id = ?1",
                [run.id],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        if version < *newest_version {
            return Ok(Some(format!(
                "it claims hash version {version} after a run with version {newest_version}: a run's hash version never goes back"
            )));
        }
        if !(1..=canonical::HASH_VERSION).contains(&version) {
            return Ok(Some(format!(
                "its hash version {version} is unknown (this credaudit knows 1 to {})",
                canonical::HASH_VERSION
            )));
        }
        *newest_version = version;
        let sections = self.sections_of(run.id)?;
        if let Some(why) = sections_break(version, &sections) {
            return Ok(Some(why));
        }
        for (name, blob) in &sections {
            if !intact.contains(blob) {
                if let Some(why) = store::blob_fault(&self.conn, blob).map_err(|e| self.err(e))? {
                    return Ok(Some(format!("its section {name} is damaged: {why}")));
                }
                intact.insert(blob.clone());
            }
        }
        if let Some(why) = self.raw_break(run.id, intact)? {
            return Ok(Some(why));
        }
        let recomputed = match version {
            1 => self.recompute_v1(run)?,
            2..=4 => self.recompute_v2(run.id, &sections)?,
            _ => {
                let header =
                    canonical::stored_header(&self.conn, run.id).map_err(|e| self.err(e))?;
                canonical::run_hash_v5(&header, &sections)
            }
        };
        if recomputed != run.content_hash {
            return Ok(Some("its content does not match its recorded hash".into()));
        }
        Ok(None)
    }

    /// A run's sections, as (table, blob), in [`canonical::TABLES`] order (unknown names last).
    fn sections_of(&self, run_id: i64) -> Result<Vec<(&'static str, String)>> {
        let mut stored: HashMap<String, String> = self
            .conn
            .prepare_cached("SELECT name, blob FROM run_sections WHERE run_id = ?1")
            .and_then(|mut s| {
                s.query_map([run_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()
            })
            .map_err(|e| self.err(e))?;
        let mut sections: Vec<(&'static str, String)> = canonical::TABLES
            .iter()
            .filter_map(|(table, _, _)| stored.remove(*table).map(|blob| (*table, blob)))
            .collect();
        sections.extend(stored.into_keys().map(|name| (UNKNOWN_SECTION, name)));
        Ok(sections)
    }

    /// Why a raw file of the run does not match its recorded SHA-256, or `None`.
    fn raw_break(&self, run_id: i64, intact: &mut HashSet<String>) -> Result<Option<String>> {
        for file in sections::read_raw_list(&self.conn, run_id).map_err(|m| self.format_err(m))? {
            if intact.contains(&file.sha256) {
                continue;
            }
            if store::blob_fault(&self.conn, &file.sha256)
                .map_err(|e| self.err(e))?
                .is_some()
            {
                return Ok(Some(format!(
                    "raw file {:?} does not match its recorded SHA-256",
                    file.path
                )));
            }
            intact.insert(file.sha256);
        }
        Ok(None)
    }

    /// Hash versions 2 to 4: the run's metadata, then the bytes of each section it covers.
    fn recompute_v2(&self, run_id: i64, sections: &[(&'static str, String)]) -> Result<String> {
        let header = canonical::stored_header(&self.conn, run_id).map_err(|e| self.err(e))?;
        canonical::run_hash_v2(&header, |table, hasher| {
            let blob = sections
                .iter()
                .find(|(name, _)| *name == table)
                .map(|(_, blob)| blob)
                .expect("sections_break checked every covered section is there");
            let mut reader = store::BlobReader::open(&self.conn, blob, false)
                .map_err(|e| self.err(e))?
                .ok_or_else(|| self.format_err(format!("blob {blob} is not stored")))?;
            std::io::copy(&mut reader, &mut HashWriter(hasher))
                .map_err(|e| self.format_err(e.to_string()))?;
            Ok(())
        })
        .map_err(|e| match e {
            Error::SnapshotFormat { message, .. } => self.format_err(message),
            other => other,
        })
    }

    /// The first run id that has sections without the run being there.
    fn first_orphaned_run(&self) -> Result<Option<(i64, String)>> {
        let orphan: Option<i64> = self
            .conn
            .query_row(
                "SELECT MIN(run_id) FROM run_sections WHERE run_id NOT IN (SELECT id FROM runs)",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        Ok(orphan.map(|id| {
            (
                id,
                "table run_sections holds rows of it, but it is not in runs: a run was removed"
                    .to_string(),
            )
        }))
    }

    /// Hash version 1 (runs recorded before hash version 2): the run's as-of and its facts and
    /// findings as serialised JSON, and the hash of each raw file's content (checked against
    /// the content before this).
    fn recompute_v1(&self, run: &RunMeta) -> Result<String> {
        let facts = self.facts(run.id)?;
        let findings = self.findings(run.id)?;
        let raw_hashes: Vec<(String, String)> = sections::read_raw_list(&self.conn, run.id)
            .map_err(|m| self.format_err(m))?
            .into_iter()
            .map(|f| (f.path, f.sha256))
            .collect();
        Ok(content_hash_v1(
            &run.prev_hash,
            &ts(&run.as_of),
            &facts,
            &findings,
            &raw_hashes,
        ))
    }

    /// The facts stored for a run.
    pub fn facts(&self, run_id: i64) -> Result<Facts> {
        sections::read_facts(&self.conn, run_id).map_err(|m| self.format_err(m))
    }

    /// The assessment stored with a run, its findings read from its findings and what is not
    /// stored restored from `facts`, the run's facts (see [`Assessment::restore`]); `None` for
    /// a run recorded before assessments were stored.
    pub fn assessment(&self, run_id: i64, facts: &Facts) -> Result<Option<Assessment>> {
        let json =
            sections::read_assessment_json(&self.conn, run_id).map_err(|m| self.format_err(m))?;
        let Some(json) = json else {
            return Ok(None);
        };
        let mut assessment: Assessment = serde_json::from_str(&json).map_err(|e| {
            self.format_err(format!(
                "the assessment of run {run_id} is not one this credaudit reads: {e}"
            ))
        })?;
        if !crate::assess::READS_VERSIONS.contains(&assessment.version) {
            return Err(self.format_err(format!(
                "the assessment of run {run_id} has version {}, this credaudit reads versions up to {}",
                assessment.version,
                crate::assess::ASSESSMENT_VERSION
            )));
        }
        assessment.findings = self.findings(run_id)?;
        assessment.restore(facts);
        Ok(Some(assessment))
    }

    /// The findings stored for a run, in evaluation order.
    pub fn findings(&self, run_id: i64) -> Result<Vec<Finding>> {
        sections::read_findings(&self.conn, run_id).map_err(|m| self.format_err(m))
    }

    /// A run's CloudTrail usage aggregates, without the rest of its facts.
    pub fn usage(&self, run_id: i64) -> Result<(Vec<UsageBucket>, Vec<AuthWindow>)> {
        sections::read_usage(&self.conn, run_id).map_err(|m| self.format_err(m))
    }

    /// The raw evidence files stored with a run, by path.
    pub fn raw_files(&self, run_id: i64) -> Result<Vec<RawEntry>> {
        sections::read_raw_list(&self.conn, run_id).map_err(|m| self.format_err(m))
    }

    /// The bytes of a stored raw file, streamed.
    pub fn open_raw(&self, file: &RawEntry) -> Result<impl std::io::Read + '_> {
        store::BlobReader::open(&self.conn, &file.sha256, false)
            .map_err(|e| self.err(e))?
            .ok_or_else(|| {
                self.format_err(format!(
                    "raw file {:?} names blob {}, which is not stored",
                    file.path, file.sha256
                ))
            })
    }

    /// A run's metadata.
    pub fn run(&self, run_id: i64) -> Result<RunMeta> {
        read_meta(&self.conn, run_id)
            .map_err(|e| self.err(e))?
            .ok_or_else(|| Error::Usage(format!("no run {run_id} in {}", self.path.display())))
    }
}

/// The raw evidence of a run streams from its snapshot into a bundle's `raw/`.
impl crate::report::bundle::RawEvidence for (&Snapshot, &[RawEntry]) {
    fn each_raw(
        &self,
        write: &mut dyn FnMut(&str, &mut dyn std::io::Read) -> Result<()>,
    ) -> Result<()> {
        let (snapshot, files) = *self;
        for file in files {
            write(&file.path, &mut snapshot.open_raw(file)?)?;
        }
        Ok(())
    }
}

/// The name [`Snapshot::sections_of`] gives a section of no table credaudit knows.
const UNKNOWN_SECTION: &str = "";

/// Why a run's link to the chain is broken (its id out of sequence, its link to the previous
/// run wrong), or `None`.
fn link_break(index: usize, run: &RunMeta, prev: &str) -> Option<String> {
    let expected_id = index as i64 + 1;
    if run.id != expected_id {
        return Some(if index == 0 {
            format!(
                "the chain starts at run {} instead of run 1: earlier runs were removed",
                run.id
            )
        } else {
            format!(
                "run {expected_id} before it is missing (ids jump from {} to {}): a run was removed",
                expected_id - 1,
                run.id
            )
        });
    }
    (run.prev_hash != prev).then(|| "its link to the previous run does not match".into())
}

/// Why a run of hash `version` has the wrong set of sections: one of a table credaudit does not
/// know, one of a table its version does not cover (added after it was recorded), or a
/// covered one missing (from version 2 on every covered table has one).
fn sections_break(version: i64, sections: &[(&'static str, String)]) -> Option<String> {
    if let Some((_, name)) = sections.iter().find(|(table, _)| *table == UNKNOWN_SECTION) {
        return Some(format!(
            "it has a section {name:?} of no table credaudit knows"
        ));
    }
    if let Some(table) =
        canonical::uncovered(version).find(|t| sections.iter().any(|(s, _)| s == t))
    {
        return Some(format!(
            "table {table} holds rows of it, which its hash version {version} does not cover: they were added after it was recorded"
        ));
    }
    if version >= 2 {
        let missing = canonical::TABLES
            .iter()
            .map(|(table, _, _)| *table)
            .find(|table| {
                canonical::covers(version, table) && !sections.iter().any(|(s, _)| s == table)
            });
        if let Some(table) = missing {
            return Some(format!("its section {table} is missing"));
        }
    }
    None
}

/// Feeds what is written into a hash.
struct HashWriter<'h>(&'h mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Copies each spooled raw file into a blob (unless a blob of its bytes is stored already);
/// gives the run's list of raw files.
fn write_raw(tx: &Transaction, raw: &RawSpool, path: &Path) -> Result<Vec<RawEntry>> {
    let wrap = |source| Error::Snapshot {
        path: path.to_path_buf(),
        source,
    };
    let mut list = Vec::with_capacity(raw.files().len());
    for file in raw.files() {
        if !store::has_blob(tx, &file.sha256).map_err(wrap)? {
            let mut writer = store::BlobWriter::new(tx);
            let spooled = raw
                .open(file)
                .map_err(|e| Error::io(Path::new("<raw evidence spool>"), e))?;
            std::io::copy(&mut { spooled }, &mut writer)
                .map_err(|e| Error::io(Path::new("<raw evidence spool>"), e))?;
            let (sha256, _) = writer.finish().map_err(wrap)?;
            if sha256 != file.sha256 {
                return Err(Error::SnapshotFormat {
                    path: path.to_path_buf(),
                    message: format!(
                        "raw file {:?} changed in the spool before it was recorded",
                        file.path
                    ),
                });
            }
        }
        list.push(RawEntry {
            path: file.path.clone(),
            sha256: file.sha256.clone(),
        });
    }
    Ok(list)
}

/// Records which blob holds each of the run's sections.
fn insert_sections(
    tx: &Transaction,
    run_id: i64,
    sections: &[(&'static str, String)],
) -> rusqlite::Result<()> {
    let mut insert =
        tx.prepare_cached("INSERT INTO run_sections (run_id, name, blob) VALUES (?1, ?2, ?3)")?;
    for (name, blob) in sections {
        insert.execute(params![run_id, name, blob])?;
    }
    Ok(())
}

/// Inserts the run's row last: it carries the hash of its metadata and its sections (hash
/// version 5). Gives the run as stored.
fn insert_run(
    tx: &Transaction,
    path: &Path,
    (run_id, prev_hash, status): (i64, &str, &str),
    (recorded_at, as_of, source): (Timestamp, Timestamp, &str),
    mut sections: Vec<(&'static str, String)>,
) -> Result<RunMeta> {
    let wrap = |source| Error::Snapshot {
        path: path.to_path_buf(),
        source,
    };
    let order = |name: &str| canonical::TABLES.iter().position(|(t, _, _)| *t == name);
    sections.sort_by_key(|(name, _)| order(name));
    let header = vec![
        Value::Text(prev_hash.to_string()),
        Value::Integer(run_id),
        Value::Text(ts(&recorded_at)),
        Value::Text(ts(&as_of)),
        Value::Text(source.to_string()),
        Value::Text(env!("CARGO_PKG_VERSION").to_string()),
        Value::Text(status.to_string()),
        Value::Integer(canonical::HASH_VERSION),
    ];
    let content_hash = canonical::run_hash_v5(&header, &sections);
    let placeholders = (1..=header.len() + 1)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    tx.execute(
        &format!(
            "INSERT INTO runs ({}, content_hash) VALUES ({placeholders})",
            canonical::RUN_COLUMNS.join(", ")
        ),
        params_from_iter(header.iter().chain([&Value::Text(content_hash)])),
    )
    .map_err(wrap)?;
    // What verify will recompute from the stored row must be what was just hashed.
    let stored_header = canonical::stored_header(tx, run_id).map_err(wrap)?;
    let format_err = |message: String| Error::SnapshotFormat {
        path: path.to_path_buf(),
        message,
    };
    if stored_header != header {
        return Err(format_err(format!(
            "run {run_id} as stored does not hash to what was written"
        )));
    }
    read_meta(tx, run_id)
        .map_err(wrap)?
        .ok_or_else(|| format_err("run vanished while being written".into()))
}

/// Hash version 1, kept so that runs recorded with it still verify: it covers the previous
/// hash, the as-of, the facts and findings re-serialised, and the raw files' hashes, but not
/// the rest of the run's metadata.
/// Members added to the serialised facts after hash version 1 was frozen, as JSON paths from
/// the root (`*` for every element of an array). Version 1 hashed `serde_json::to_vec` of the
/// in-memory types, so each member added since must be left out to reproduce its bytes; a
/// test pins the version 1 hash of a snapshot written by credaudit 0.1.0.
const FACTS_ADDED_AFTER_V1: &[&[&str]] = &[
    &["inventory", "policy", "incident_not_remediated"],
    &["users"],
];

/// Members added to a serialised finding list after hash version 1 was frozen.
const FINDING_ADDED_AFTER_V1: &[&[&str]] = &[&["*", "principal"]];

/// `value` serialised as hash version 1 did: `serde_json::to_vec` with the members added later
/// removed.
fn legacy_v1_json<T: Serialize + ?Sized>(value: &T, added: &[&[&str]]) -> Vec<u8> {
    fn remove(value: &mut serde_json::Value, path: &[&str]) {
        match (path, value) {
            ([], _) => {}
            (["*", rest @ ..], serde_json::Value::Array(items)) => {
                for item in items {
                    remove(item, rest);
                }
            }
            ([last], serde_json::Value::Object(map)) => {
                map.shift_remove(*last);
            }
            ([first, rest @ ..], serde_json::Value::Object(map)) => {
                if let Some(child) = map.get_mut(*first) {
                    remove(child, rest);
                }
            }
            _ => {}
        }
    }
    let mut json = serde_json::to_value(value).expect("plain data serialises");
    for path in added {
        remove(&mut json, path);
    }
    serde_json::to_vec(&json).expect("JSON values serialise")
}

fn content_hash_v1(
    prev_hash: &str,
    as_of: &str,
    facts: &Facts,
    findings: &[Finding],
    raw_hashes: &[(String, String)],
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update([0]);
    hasher.update(as_of.as_bytes());
    hasher.update([0]);
    hasher.update(legacy_v1_json(facts, FACTS_ADDED_AFTER_V1));
    hasher.update([0]);
    hasher.update(legacy_v1_json(findings, FINDING_ADDED_AFTER_V1));
    for (path, hash) in raw_hashes {
        hasher.update([0]);
        hasher.update(path.as_bytes());
        hasher.update([0]);
        hasher.update(hash.as_bytes());
    }
    hex(&hasher.finalize())
}

const META_SELECT: &str = "SELECT id, recorded_at, as_of, source, tool_version, status, content_hash, prev_hash FROM runs";

fn meta_from_row(r: &rusqlite::Row) -> rusqlite::Result<Result<RunMeta>> {
    let recorded_at: String = r.get(1)?;
    let as_of: String = r.get(2)?;
    Ok((|| {
        Ok(RunMeta {
            id: r.get(0)?,
            recorded_at: parse_ts(&recorded_at)?,
            as_of: parse_ts(&as_of)?,
            source: r.get(3)?,
            tool_version: r.get(4)?,
            status: r.get(5)?,
            content_hash: r.get(6)?,
            prev_hash: r.get(7)?,
        })
    })()
    .map_err(|e: rusqlite::Error| Error::SnapshotFormat {
        path: PathBuf::new(),
        message: e.to_string(),
    }))
}

fn parse_ts(s: &str) -> rusqlite::Result<Timestamp> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
}

fn read_meta(conn: &Connection, run_id: i64) -> rusqlite::Result<Option<RunMeta>> {
    conn.query_row(&format!("{META_SELECT} WHERE id = ?1"), [run_id], |r| {
        meta_from_row(r)
    })
    .optional()
    .map(|o| o.and_then(|r| r.ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::IamUser;
    use crate::rules::{RuleOptions, testkit};

    fn spool(files: &[(&str, &[u8])]) -> RawSpool {
        let mut spool = RawSpool::new();
        for (path, bytes) in files {
            spool.add(*path, bytes).unwrap();
        }
        spool
    }

    fn no_raw() -> RawSpool {
        RawSpool::new()
    }

    /// Rewrites run `run_id`'s facts with `change` as someone with write access could: new
    /// blobs for the sections that change, the run pointed at them, the guards put back.
    fn tamper_facts(conn: &Connection, run_id: i64, change: impl FnOnce(&mut Facts)) {
        let mut facts = sections::read_facts(conn, run_id).unwrap();
        change(&mut facts);
        let rewritten = sections::write_facts(conn, &facts).unwrap();
        repoint(conn, run_id, &rewritten);
    }

    /// Points run `run_id`'s sections at other blobs, past the append-only guard.
    fn repoint(conn: &Connection, run_id: i64, sections: &[(&str, String)]) {
        conn.execute_batch("DROP TRIGGER run_sections_no_update")
            .unwrap();
        for (name, blob) in sections {
            conn.execute(
                "UPDATE run_sections SET blob = ?3 WHERE run_id = ?1 AND name = ?2",
                params![run_id, name, blob],
            )
            .unwrap();
        }
        conn.execute_batch(
            schema::MIGRATIONS[5]
                .sql
                .lines()
                .find(|l| l.contains("run_sections_no_update"))
                .unwrap(),
        )
        .unwrap();
    }

    fn sample_facts() -> Facts {
        let k = testkit::key("AKIATEST000000000001", "svc", 3);
        let declared = testkit::declare_all(std::slice::from_ref(&k));
        let mut facts = testkit::facts(vec![k], declared, vec![]);
        facts.users = vec![
            IamUser {
                account: testkit::ACCOUNT.into(),
                name: "alice".into(),
                arn: format!("arn:aws:iam::{}:user/alice", testkit::ACCOUNT),
                created_at: Some(testkit::days_ago(300)),
                password_enabled: true,
                password_last_used_at: None,
                password_last_changed_at: Some(testkit::days_ago(299)),
            },
            IamUser {
                account: testkit::ACCOUNT.into(),
                name: "svc".into(),
                arn: format!("arn:aws:iam::{}:user/svc", testkit::ACCOUNT),
                created_at: None,
                password_enabled: false,
                password_last_used_at: None,
                password_last_changed_at: None,
            },
        ];
        facts
    }

    /// The facts of a release before `iam_users` existed.
    fn facts_without_users() -> Facts {
        Facts {
            users: Vec::new(),
            ..sample_facts()
        }
    }

    #[test]
    fn a_run_round_trips_and_chains() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let facts = sample_facts();
        let mut snap = Snapshot::open(&path).unwrap();
        let (first, stored, _) = snap
            .record_run(
                "test",
                testkit::as_of(),
                testkit::as_of(),
                facts.clone(),
                &no_raw(),
                |f| crate::rules::evaluate(f, testkit::as_of()),
            )
            .unwrap();
        // Read back, the policy holds every rule option (the defaults written out).
        let mut written = facts.clone();
        written.inventory.policy = RuleOptions::normalised(&facts.inventory.policy).unwrap();
        assert_eq!(stored, written, "what is read back is what was written");
        let (second, _, _) = snap
            .record_run(
                "test",
                testkit::as_of(),
                testkit::as_of(),
                facts.clone(),
                &no_raw(),
                |_| vec![],
            )
            .unwrap();
        assert_eq!(first.prev_hash, "");
        assert_eq!(second.prev_hash, first.content_hash);
        assert_eq!(second.id, first.id + 1);
        drop(snap);
        let reopened = Snapshot::open_existing(&path).unwrap();
        assert_eq!(reopened.runs().unwrap().len(), 2);
        assert_eq!(reopened.facts(first.id).unwrap(), written);
    }

    #[test]
    fn runs_are_append_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut snap = Snapshot::open(&path).unwrap();
        let raw = spool(&[("aws/a.json", b"{}")]);
        let (_, _, findings) = snap
            .record_run(
                "test",
                testkit::as_of(),
                testkit::as_of(),
                sample_facts(),
                &raw,
                |f| {
                    let mut f = f.clone();
                    f.inventory.credentials.clear();
                    crate::rules::evaluate(&f, testkit::as_of())
                },
            )
            .unwrap();
        assert!(!findings.is_empty());
        for sql in [
            "DELETE FROM chunks",
            "UPDATE chunks SET size = 0",
            "DELETE FROM blobs",
            "UPDATE blobs SET size = 0",
            "UPDATE runs SET status = 'partial'",
            "DELETE FROM runs",
            "UPDATE run_sections SET blob = 'x'",
            "DELETE FROM run_sections",
        ] {
            let err = snap.conn.execute(sql, []).unwrap_err().to_string();
            assert!(err.contains("append-only"), "{sql}: {err}");
        }
    }

    #[test]
    fn a_failed_run_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut snap = Snapshot::open(&path).unwrap();
        snap.record_run(
            "ok",
            testkit::as_of(),
            testkit::as_of(),
            sample_facts(),
            &no_raw(),
            |_| vec![],
        )
        .unwrap();
        // The same raw path twice violates the primary key halfway through the write.
        let raw = spool(&[("a.json", b"{}"), ("a.json", b"[]")]);
        assert!(
            snap.record_run(
                "broken",
                testkit::as_of(),
                testkit::as_of(),
                sample_facts(),
                &raw,
                |_| vec![]
            )
            .is_err()
        );
        assert_eq!(snap.runs().unwrap().len(), 1);
        let orphans: i64 = snap
            .conn
            .query_row(
                "SELECT COUNT(*) FROM run_sections WHERE run_id = 2",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(orphans, 0);
        // The raw file's blob went with the run.
        assert!(!store::has_blob(&snap.conn, &crate::model::sha256_hex(b"[]")).unwrap());
    }

    #[test]
    fn verify_chain_names_the_first_tampered_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut snap = Snapshot::open(&path).unwrap();
        for _ in 0..3 {
            snap.record_run(
                "t",
                testkit::as_of(),
                testkit::as_of(),
                sample_facts(),
                &no_raw(),
                |f| {
                    let mut f = f.clone();
                    f.inventory.credentials.clear();
                    crate::rules::evaluate(&f, testkit::as_of())
                },
            )
            .unwrap();
        }
        assert_eq!(snap.verify_chain().unwrap().first_broken, None);
        // Someone with write access rewrites history in run 2: its findings downgraded.
        let mut findings = snap.findings(2).unwrap();
        for f in &mut findings {
            f.severity = crate::model::Severity::Low;
        }
        let blob = sections::write_findings(&snap.conn, &findings).unwrap();
        repoint(&snap.conn, 2, &[("findings", blob)]);
        let report = snap.verify_chain().unwrap();
        assert_eq!(report.runs, 3);
        assert_eq!(report.first_broken.map(|(id, _)| id), Some(2));
    }

    /// A snapshot as the release before hash version 2 wrote it: schema version 2, every run
    /// hashed with version 1.
    /// A snapshot written by credaudit 0.1.0 (schema 2, hash version 1, two runs of
    /// tests/data/short-history, the second with CloudTrail); see tests/fixtures/README.md.
    fn old_snapshot(path: &Path) {
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/snapshot-0.1.0-schema2.db"),
            path,
        )
        .unwrap();
    }

    fn hash_versions(snap: &Snapshot) -> Vec<i64> {
        snap.conn
            .prepare("SELECT hash_version FROM runs ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn old_runs_keep_verifying_after_a_scan_upgrades_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        old_snapshot(&path);
        let before = std::fs::read(&path).unwrap();
        // Read-only, the old file is upgraded in memory and verifies; the file is not touched.
        let snap = Snapshot::open_existing(&path).unwrap();
        let report = snap.verify_chain().unwrap();
        assert_eq!((report.runs, report.first_broken), (2, None));
        assert_eq!(hash_versions(&snap), [1, 1]);
        drop(snap);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "read-only open wrote"
        );

        let mut snap = Snapshot::open(&path).unwrap();
        let report = snap.verify_chain().unwrap();
        assert_eq!((report.runs, report.first_broken), (2, None));
        snap.record_run(
            "new",
            testkit::as_of(),
            testkit::as_of(),
            sample_facts(),
            &no_raw(),
            |_| vec![],
        )
        .unwrap();
        assert_eq!(hash_versions(&snap), [1, 1, canonical::HASH_VERSION]);
        let report = snap.verify_chain().unwrap();
        assert_eq!((report.runs, report.first_broken), (3, None));
        assert_eq!(
            report.head,
            Some(snap.runs().unwrap()[2].content_hash.clone())
        );
        drop(snap);
        let snap = Snapshot::open_existing(&path).unwrap();
        assert_eq!(snap.verify_chain().unwrap().first_broken, None);
        drop(snap);

        // Version 1 still catches changed facts.
        let conn = Connection::open(&path).unwrap();
        tamper_facts(&conn, 2, |f| {
            f.inventory.owners[0].email = Some("x@example.com".into())
        });
        let snap = Snapshot::open_existing(&path).unwrap();
        assert_eq!(
            snap.verify_chain().unwrap().first_broken.map(|(id, _)| id),
            Some(2)
        );
    }

    #[test]
    fn a_run_cannot_go_back_to_hash_version_1() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut snap = Snapshot::open(&path).unwrap();
        for _ in 0..2 {
            snap.record_run(
                "t",
                testkit::as_of(),
                testkit::as_of(),
                sample_facts(),
                &no_raw(),
                |_| vec![],
            )
            .unwrap();
        }
        snap.conn
            .execute_batch(
                "DROP TRIGGER runs_no_update; UPDATE runs SET hash_version = 1 WHERE id = 2;",
            )
            .unwrap();
        let (id, why) = snap.verify_chain().unwrap().first_broken.unwrap();
        assert_eq!(id, 2);
        assert!(why.contains("never goes back"), "{why}");
    }

    #[test]
    fn run_metadata_and_raw_files_are_in_the_hash() {
        let deflated_zero = {
            use std::io::Write;
            let mut e =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(b"[]").unwrap();
            hex(&e.finish().unwrap())
        };
        let raw_chunk = sha256_of(b"{}");
        let tampering = [
            ("UPDATE runs SET source = 'export:elsewhere' WHERE id = 2".to_string(), 2),
            ("UPDATE runs SET recorded_at = '2020-01-01T00:00:00Z' WHERE id = 2".into(), 2),
            ("UPDATE runs SET tool_version = '9.9.9' WHERE id = 2".into(), 2),
            ("UPDATE runs SET status = 'partial' WHERE id = 2".into(), 2),
            // The raw file's bytes are shared by both runs: the first breaks.
            (format!("UPDATE chunks SET data = x'{deflated_zero}' WHERE sha256 = '{raw_chunk}'"), 1),
            (format!("UPDATE chunks SET sha256 = 'ab' WHERE sha256 = '{raw_chunk}'"), 1),
            (format!("UPDATE chunks SET size = 3 WHERE sha256 = '{raw_chunk}'"), 1),
            (format!("UPDATE blobs SET size = 3 WHERE sha256 = '{raw_chunk}'"), 1),
            (format!("UPDATE blobs SET chunks = x'' WHERE sha256 = '{raw_chunk}'"), 1),
            // A section pointed at another blob, or renamed.
            ("UPDATE run_sections SET blob = (SELECT blob FROM run_sections WHERE run_id = 2 AND name = 'waivers') WHERE run_id = 2 AND name = 'owners'".into(), 2),
            ("UPDATE run_sections SET name = 'extra' WHERE run_id = 2 AND name = 'waivers'".into(), 2),
            ("DELETE FROM run_sections WHERE run_id = 2 AND name = 'waivers'".into(), 2),
        ];
        for (sql, broken_run) in tampering {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s.db");
            let mut snap = Snapshot::open(&path).unwrap();
            let raw = spool(&[("aws/a.json", b"{}")]);
            let mut facts = sample_facts();
            facts.usage = vec![UsageBucket {
                credential_id: "AKIATEST000000000001".into(),
                hour: testkit::as_of(),
                calls: 1,
                ..Default::default()
            }];
            for _ in 0..2 {
                snap.record_run(
                    "t",
                    testkit::as_of(),
                    testkit::as_of(),
                    facts.clone(),
                    &raw,
                    |_| vec![],
                )
                .unwrap();
            }
            assert_eq!(snap.verify_chain().unwrap().first_broken, None);
            snap.conn
                .execute_batch(
                    "DROP TRIGGER runs_no_update; DROP TRIGGER chunks_no_update;
                     DROP TRIGGER blobs_no_update; DROP TRIGGER run_sections_no_update;
                     DROP TRIGGER run_sections_no_delete;",
                )
                .unwrap();
            assert_eq!(snap.conn.execute(&sql, []).unwrap(), 1, "{sql}");
            let broken = snap.verify_chain().unwrap().first_broken;
            assert_eq!(broken.map(|(id, _)| id), Some(broken_run), "{sql}");
        }
        // Usage rewritten in run 2 alone.
        let dir = tempfile::tempdir().unwrap();
        let mut snap = Snapshot::open(&dir.path().join("s.db")).unwrap();
        let mut facts = sample_facts();
        facts.usage = vec![UsageBucket {
            credential_id: "AKIATEST000000000001".into(),
            hour: testkit::as_of(),
            calls: 1,
            ..Default::default()
        }];
        for _ in 0..2 {
            snap.record_run(
                "t",
                testkit::as_of(),
                testkit::as_of(),
                facts.clone(),
                &no_raw(),
                |_| vec![],
            )
            .unwrap();
        }
        tamper_facts(&snap.conn, 2, |f| f.usage[0].calls += 1);
        let broken = snap.verify_chain().unwrap().first_broken;
        assert_eq!(broken.map(|(id, _)| id), Some(2));
    }

    fn sha256_of(bytes: &[u8]) -> String {
        crate::model::sha256_hex(bytes)
    }

    fn assess(facts: &Facts) -> Assessment {
        let frameworks = crate::controls::builtin().unwrap();
        crate::assess::assess(
            facts,
            testkit::as_of(),
            &frameworks,
            &crate::plan::PlanConfig::default(),
        )
    }

    #[test]
    fn an_assessment_round_trips_and_is_in_the_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut snap = Snapshot::open(&path).unwrap();
        let mut facts = sample_facts();
        facts.inventory.credentials.clear();
        let (run, _, recorded) = snap
            .record_run(
                "t",
                testkit::as_of(),
                testkit::as_of(),
                facts.clone(),
                &no_raw(),
                assess,
            )
            .unwrap();
        assert!(!recorded.findings.is_empty());
        let stored = snap
            .assessment(run.id, &snap.facts(run.id).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(stored, recorded, "what is read back is what was assessed");
        assert!(!recorded.credentials.is_empty() && !recorded.scope.is_empty());
        // The per-credential lists are restored from the facts, not stored a second time.
        let json = sections::read_assessment_json(&snap.conn, run.id)
            .unwrap()
            .unwrap();
        let stored_json: serde_json::Value = serde_json::from_str(&json).unwrap();
        for derived in ["scope", "console_passwords", "credentials"] {
            assert!(stored_json.get(derived).is_none(), "{derived} is stored");
        }
        assert_eq!(hash_versions(&snap), [canonical::HASH_VERSION]);
        assert_eq!(snap.verify_chain().unwrap().first_broken, None);
        // A run recorded with findings only has no assessment.
        let (old, _, _) = snap
            .record_run(
                "t",
                testkit::as_of(),
                testkit::as_of(),
                facts,
                &no_raw(),
                |_| Vec::<Finding>::new(),
            )
            .unwrap();
        assert_eq!(
            snap.assessment(old.id, &snap.facts(old.id).unwrap())
                .unwrap(),
            None
        );
        // Rewriting a stored assessment breaks the chain at its run.
        let json = sections::read_assessment_json(&snap.conn, 1)
            .unwrap()
            .unwrap();
        let passed = json.replace("\"fail\"", "\"pass\"");
        assert_ne!(json, passed);
        let blob = sections::write_assessment(&snap.conn, Some(&passed)).unwrap();
        repoint(&snap.conn, 1, &[("assessments", blob)]);
        let (id, _) = snap.verify_chain().unwrap().first_broken.unwrap();
        assert_eq!(id, 1);
        let err = snap
            .conn
            .execute("DELETE FROM run_sections WHERE name = 'assessments'", [])
            .unwrap_err()
            .to_string();
        assert!(err.contains("append-only"), "{err}");
    }

    #[test]
    fn version_2_runs_keep_verifying_and_cannot_be_claimed_after_version_3() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        // A snapshot as the release before assessments wrote it: schema 3, a run hashed with
        // version 2.
        old_schema_snapshot(&path, 3, 2, "0.0.9");
        let mut snap = Snapshot::open(&path).unwrap();
        for _ in 0..2 {
            snap.record_run(
                "new",
                testkit::as_of(),
                testkit::as_of(),
                sample_facts(),
                &no_raw(),
                assess,
            )
            .unwrap();
        }
        let v = canonical::HASH_VERSION;
        assert_eq!(hash_versions(&snap), [2, v, v]);
        assert_eq!(snap.verify_chain().unwrap().first_broken, None);
        // Claiming version 2 for a later run would leave its assessment out of the hash.
        snap.conn
            .execute_batch(
                "DROP TRIGGER runs_no_update; UPDATE runs SET hash_version = 2 WHERE id = 3;",
            )
            .unwrap();
        let (id, why) = snap.verify_chain().unwrap().first_broken.unwrap();
        assert_eq!(id, 3);
        assert!(why.contains("never goes back"), "{why}");
    }

    /// A snapshot as the release before `iam_users` wrote it: schema 4, one run hashed with
    /// version 3.
    fn version_3_snapshot(path: &Path) {
        old_schema_snapshot(path, 4, 3, "0.2.0");
    }

    /// A snapshot at schema `schema` holding one run hashed with `hash_version`, as release
    /// `tool_version` wrote it.
    fn old_schema_snapshot(path: &Path, schema: usize, hash_version: i64, tool_version: &str) {
        let mut conn = Connection::open(path).unwrap();
        for migration in &schema::MIGRATIONS[..schema] {
            migration.apply(&conn).unwrap();
        }
        conn.pragma_update(None, "user_version", schema as i64)
            .unwrap();
        let tx = conn.transaction().unwrap();
        legacy::write_facts(&tx, 1, &facts_without_users()).unwrap();
        let header = vec![
            Value::Text(String::new()),
            Value::Integer(1),
            Value::Text(ts(&testkit::as_of())),
            Value::Text(ts(&testkit::as_of())),
            Value::Text("old".into()),
            Value::Text(tool_version.into()),
            Value::Text("complete".into()),
            Value::Integer(hash_version),
        ];
        let hash = canonical::run_hash_of_tables(&tx, 1, &header);
        tx.execute(
            &format!(
                "INSERT INTO runs ({}, content_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                canonical::RUN_COLUMNS.join(", ")
            ),
            params_from_iter(header.iter().chain([&Value::Text(hash)])),
        )
        .unwrap();
        tx.commit().unwrap();
    }

    #[test]
    fn iam_users_round_trip_and_are_hashed_from_version_4() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        version_3_snapshot(&path);
        let mut snap = Snapshot::open(&path).unwrap();
        let facts = sample_facts();
        let (run, stored, _) = snap
            .record_run(
                "new",
                testkit::as_of(),
                testkit::as_of(),
                facts.clone(),
                &no_raw(),
                assess,
            )
            .unwrap();
        assert_eq!(
            stored.users, facts.users,
            "what is read back is what was written"
        );
        assert_eq!(snap.facts(run.id).unwrap().users, facts.users);
        assert_eq!(snap.facts(1).unwrap().users, []);
        assert_eq!(hash_versions(&snap), [3, 5]);
        assert_eq!(canonical::HASH_VERSION, 5);
        assert_eq!(snap.verify_chain().unwrap().first_broken, None);
        let err = snap
            .conn
            .execute("DELETE FROM run_sections WHERE name = 'iam_users'", [])
            .unwrap_err()
            .to_string();
        assert!(err.contains("append-only"), "{err}");

        // Rewriting a stored user breaks the chain at its run.
        tamper_facts(&snap.conn, 2, |f| {
            f.users[0].password_last_used_at = Some(testkit::days_ago(1))
        });
        let (id, _) = snap.verify_chain().unwrap().first_broken.unwrap();
        assert_eq!(id, 2);

        // A user slipped into a version 3 run would escape its hash: refused.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        version_3_snapshot(&path);
        let snap = Snapshot::open(&path).unwrap();
        assert_eq!(snap.verify_chain().unwrap().first_broken, None);
        let mut mallory = sample_facts();
        mallory.users.truncate(1);
        let users = sections::write_facts(&snap.conn, &mallory)
            .unwrap()
            .into_iter()
            .find(|(name, _)| *name == "iam_users")
            .unwrap()
            .1;
        snap.conn
            .execute(
                "INSERT INTO run_sections (run_id, name, blob) VALUES (1, 'iam_users', ?1)",
                [users],
            )
            .unwrap();
        let (id, why) = snap.verify_chain().unwrap().first_broken.unwrap();
        assert_eq!(id, 1);
        assert!(why.contains("hash version 3 does not cover"), "{why}");
    }

    #[test]
    fn a_missing_guard_is_refused_read_write_and_reported_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        Snapshot::open(&path).unwrap();
        Connection::open(&path)
            .unwrap()
            .execute_batch("DROP TRIGGER runs_no_delete")
            .unwrap();
        let err = Snapshot::open(&path).err().unwrap().to_string();
        assert!(err.contains(r#"missing trigger "runs_no_delete""#), "{err}");
        let snap = Snapshot::open_existing(&path).unwrap();
        assert_eq!(snap.missing_guards(), ["runs_no_delete"]);
    }

    #[test]
    fn the_work_of_opening_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut snap = Snapshot::open(&dir.path().join("s.db")).unwrap();
        snap.harden().unwrap();
        let started = std::time::Instant::now();
        let err = snap
            .conn
            .query_row(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|e| snap.bounded_err(e))
            .unwrap_err()
            .to_string();
        assert!(err.contains("SQLite steps"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
        // Once the schema is checked, reads are not bounded.
        snap.unbound();
        let n: i64 = snap
            .conn
            .query_row(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) SELECT count(*) FROM c",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 3_000_000);
    }

    #[test]
    fn refuses_a_newer_schema_and_a_non_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", 99).unwrap();
        }
        let err = Snapshot::open(&path).err().unwrap().to_string();
        assert!(
            err.contains("newer than this credaudit understands"),
            "{err}"
        );
        let junk = dir.path().join("junk.db");
        std::fs::write(
            &junk,
            b"this is not a database, it is a text file of some length..........",
        )
        .unwrap();
        assert!(Snapshot::open(&junk).is_err());
    }
}
