//! The SQLite snapshot: versioned schema, append-only hash-chained runs, and typed reads.
//!
//! A run holds every fact a scan collected (observed and declared credentials, owners, policy,
//! rotation events, coverage), the findings evaluated from them and the rest of their
//! assessment (sources had, rules run, control results, plan). It is written in one
//! transaction: an interrupted scan leaves no half run, and earlier runs are never changed
//! (triggers refuse UPDATE and DELETE).
//!
//! The file is untrusted when opened: its schema must be exactly the one the migrations
//! produce (a planted trigger or view would run hidden SQL), checked under a bound on SQLite's
//! work. Only `scan` opens it read-write and migrates; every other command opens it read-only.

mod canonical;
mod schema;

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::SecondsFormat;
use rusqlite::config::DbConfig;
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params, params_from_iter};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::assess::Assessment;
use crate::error::{Error, Result};
use crate::model::{
    AuthWindow, CoverageEntry, DeclaredCredential, Facts, Finding, IamUser, Inventory, KeyStatus,
    ObservedCredential, Owner, OwnerStatus, Policy, RotationEvent, Timestamp, UsageBucket, Waiver,
    hex, sha256_hex,
};
use crate::rules::RuleOptions;

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

fn ts(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn ts_opt(t: &Option<Timestamp>) -> Option<String> {
    t.as_ref().map(ts)
}

impl Snapshot {
    /// Opens (creating if needed, owner-only) a snapshot read-write, checks its schema, brings
    /// it up to date and checks it again. Only `scan` does this.
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

    /// A snapshot written by an older credaudit, opened read-only: its pages are copied into
    /// memory and the copy is migrated, so every command can read old snapshots (and verify
    /// their chains) while the file itself is never written. Only `scan` upgrades the file.
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
            .busy_timeout(std::time::Duration::from_secs(10))
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
        let version: i64 = self
            .conn
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
        let actual = schema::objects(&self.conn).map_err(|e| self.bounded_err(e))?;
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

    /// Applies the migrations after `version` (already checked), each in its own transaction.
    fn migrate(&mut self, version: usize) -> Result<()> {
        let path = self.path.clone();
        let wrap = |source| Error::Snapshot {
            path: path.clone(),
            source,
        };
        for (index, sql) in schema::MIGRATIONS.iter().enumerate().skip(version) {
            let tx = self.conn.transaction().map_err(wrap)?;
            tx.execute_batch(sql).map_err(wrap)?;
            tx.pragma_update(None, "user_version", index as i64 + 1)
                .map_err(wrap)?;
            tx.commit().map_err(wrap)?;
        }
        Ok(())
    }

    /// Records a run: writes the facts, reads them back, lets `evaluate` assess what was stored
    /// (findings, and for an [`Assessment`] the rest of it), writes that, and commits, all in
    /// one transaction.
    pub fn record_run<E: Evaluation>(
        &mut self,
        source: &str,
        recorded_at: Timestamp,
        as_of: Timestamp,
        facts: &Facts,
        raw: &[(String, Vec<u8>)],
        evaluate: impl FnOnce(&Facts) -> E,
    ) -> Result<(RunMeta, Facts, E)> {
        let path = self.path.clone();
        let wrap = |source| Error::Snapshot {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(wrap)?;
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
        write_facts(&tx, run_id, facts).map_err(wrap)?;
        write_raw(&tx, run_id, raw).map_err(wrap)?;

        let stored = read_facts(&tx, run_id, &path)?;
        let evaluation = evaluate(&stored);
        write_findings(&tx, run_id, evaluation.findings()).map_err(wrap)?;
        if let Some(json) = evaluation.assessment_json() {
            tx.execute(
                "INSERT INTO assessments (run_id, assessment_json) VALUES (?1, ?2)",
                params![run_id, json],
            )
            .map_err(wrap)?;
        }

        // The run row goes in last, so it can carry the hash of everything above: its own
        // metadata (the values about to be inserted) and the rows as stored.
        let header = vec![
            Value::Text(prev_hash),
            Value::Integer(run_id),
            Value::Text(ts(&recorded_at)),
            Value::Text(ts(&as_of)),
            Value::Text(source.to_string()),
            Value::Text(env!("CARGO_PKG_VERSION").to_string()),
            Value::Text(status.to_string()),
            Value::Integer(canonical::HASH_VERSION),
        ];
        let content_hash = canonical::run_hash(&tx, run_id, &header).map_err(wrap)?;
        let placeholders = (1..=header.len() + 1)
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        tx.execute(
            &format!(
                "INSERT INTO runs ({}, content_hash) VALUES ({placeholders})",
                canonical::RUN_COLUMNS.join(", ")
            ),
            params_from_iter(header.iter().chain([&Value::Text(content_hash.clone())])),
        )
        .map_err(wrap)?;
        // What verify will recompute from the stored row must be what was just written: the
        // rows were hashed as stored, so the header read back must equal the one hashed.
        let stored_header = canonical::stored_header(&tx, run_id).map_err(wrap)?;
        if stored_header != header {
            return Err(Error::SnapshotFormat {
                path: self.path.clone(),
                message: format!("run {run_id} as stored does not hash to what was written"),
            });
        }
        let meta = read_meta(&tx, run_id).map_err(wrap)?;
        tx.commit().map_err(wrap)?;
        Ok((
            meta.ok_or_else(|| Error::SnapshotFormat {
                path: self.path.clone(),
                message: "run vanished while being written".into(),
            })?,
            stored,
            evaluation,
        ))
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
    /// algorithm of its `hash_version`, which never goes back), every raw file matches its
    /// recorded SHA-256, and no table holds rows of a run that is not there.
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
        for (index, run) in runs.iter().enumerate() {
            if let Some(why) = self.run_break(index, run, &prev, &mut newest_version)? {
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
    ) -> Result<Option<String>> {
        let expected_id = index as i64 + 1;
        if run.id != expected_id {
            return Ok(Some(if index == 0 {
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
            }));
        }
        if run.prev_hash != prev {
            return Ok(Some("its link to the previous run does not match".into()));
        }
        let version: i64 = self
            .conn
            .query_row(
                "SELECT hash_version FROM runs WHERE id = ?1",
                [run.id],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        let recomputed = match version {
            _ if version < *newest_version => {
                return Ok(Some(format!(
                    "it claims hash version {version} after a run with version {newest_version}: a run's hash version never goes back"
                )));
            }
            1 => self.recompute_v1(run)?,
            2..=canonical::HASH_VERSION => {
                let header =
                    canonical::stored_header(&self.conn, run.id).map_err(|e| self.err(e))?;
                canonical::run_hash(&self.conn, run.id, &header).map_err(|e| self.err(e))?
            }
            other => {
                return Ok(Some(format!(
                    "its hash version {other} is unknown (this credaudit knows 1 to {})",
                    canonical::HASH_VERSION
                )));
            }
        };
        *newest_version = version;
        if recomputed != run.content_hash {
            return Ok(Some("its content does not match its recorded hash".into()));
        }
        for table in canonical::uncovered(version) {
            let rows: i64 = self
                .conn
                .query_row(
                    &format!("SELECT COUNT(*) FROM {table} WHERE run_id = ?1"),
                    [run.id],
                    |r| r.get(0),
                )
                .map_err(|e| self.err(e))?;
            if rows > 0 {
                return Ok(Some(format!(
                    "table {table} holds rows of it, which its hash version {version} does not cover: they were added after it was recorded"
                )));
            }
        }
        if let Some(path) = self.first_mismatched_raw_file(run.id)? {
            return Ok(Some(format!(
                "raw file {path:?} does not match its recorded SHA-256"
            )));
        }
        Ok(None)
    }

    /// The first run id that a table holds rows of without the run being there.
    fn first_orphaned_run(&self) -> Result<Option<(i64, String)>> {
        for (table, _, _) in canonical::TABLES {
            let orphan: Option<i64> = self
                .conn
                .query_row(
                    &format!(
                        "SELECT MIN(run_id) FROM {table} WHERE run_id NOT IN (SELECT id FROM runs)"
                    ),
                    [],
                    |r| r.get(0),
                )
                .map_err(|e| self.err(e))?;
            if let Some(id) = orphan {
                return Ok(Some((
                    id,
                    format!(
                        "table {table} holds rows of it, but it is not in runs: a run was removed"
                    ),
                )));
            }
        }
        Ok(None)
    }

    /// Hash version 1 (runs recorded before hash version 2): the run's as-of and its facts and
    /// findings as serialised JSON, and the hash of each raw file's content.
    fn recompute_v1(&self, run: &RunMeta) -> Result<String> {
        let facts = self.facts(run.id)?;
        let findings = self.findings(run.id)?;
        let raw_hashes: Vec<(String, String)> = self
            .raw_files(run.id)?
            .iter()
            .map(|(p, bytes)| (p.clone(), sha256_hex(bytes)))
            .collect();
        Ok(content_hash_v1(
            &run.prev_hash,
            &ts(&run.as_of),
            &facts,
            &findings,
            &raw_hashes,
        ))
    }

    /// The first raw file of a run whose content does not hash to its `sha256` column.
    fn first_mismatched_raw_file(&self, run_id: i64) -> Result<Option<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT path, sha256, content FROM raw_files WHERE run_id = ?1 ORDER BY path")
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([run_id]).map_err(|e| self.err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let path: String = row.get(0).map_err(|e| self.err(e))?;
            let recorded: String = row.get(1).map_err(|e| self.err(e))?;
            let content: Vec<u8> = row.get(2).map_err(|e| self.err(e))?;
            if sha256_hex(&content) != recorded {
                return Ok(Some(path));
            }
        }
        Ok(None)
    }

    /// The facts stored for a run.
    pub fn facts(&self, run_id: i64) -> Result<Facts> {
        read_facts(&self.conn, run_id, &self.path)
    }

    /// The assessment stored with a run, its findings read from `findings`; `None` for a run
    /// recorded before assessments were stored.
    pub fn assessment(&self, run_id: i64) -> Result<Option<Assessment>> {
        let json: Option<String> = self
            .conn
            .query_row(
                "SELECT assessment_json FROM assessments WHERE run_id = ?1",
                [run_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some(json) = json else {
            return Ok(None);
        };
        let mut assessment: Assessment = serde_json::from_str(&json).map_err(|e| {
            self.format_err(format!(
                "the assessment of run {run_id} is not one this credaudit reads: {e}"
            ))
        })?;
        if assessment.version != crate::assess::ASSESSMENT_VERSION {
            return Err(self.format_err(format!(
                "the assessment of run {run_id} has version {}, this credaudit reads version {}",
                assessment.version,
                crate::assess::ASSESSMENT_VERSION
            )));
        }
        assessment.findings = self.findings(run_id)?;
        Ok(Some(assessment))
    }

    /// The findings stored for a run, in evaluation order.
    pub fn findings(&self, run_id: i64) -> Result<Vec<Finding>> {
        read_findings(&self.conn, run_id).map_err(|e| self.err(e))
    }

    /// A run's CloudTrail usage aggregates, without the rest of its facts.
    pub fn usage(&self, run_id: i64) -> Result<(Vec<UsageBucket>, Vec<AuthWindow>)> {
        read_usage(&self.conn, run_id).map_err(|e| self.err(e))
    }

    /// The raw evidence files stored with a run, sorted by path.
    pub fn raw_files(&self, run_id: i64) -> Result<Vec<(String, Vec<u8>)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT path, content FROM raw_files WHERE run_id = ?1 ORDER BY path")
            .map_err(|e| self.err(e))?;
        stmt.query_map([run_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// A run's metadata.
    pub fn run(&self, run_id: i64) -> Result<RunMeta> {
        read_meta(&self.conn, run_id)
            .map_err(|e| self.err(e))?
            .ok_or_else(|| Error::Usage(format!("no run {run_id} in {}", self.path.display())))
    }
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

fn read_meta(conn: &Connection, run_id: i64) -> rusqlite::Result<Option<RunMeta>> {
    conn.query_row(&format!("{META_SELECT} WHERE id = ?1"), [run_id], |r| {
        meta_from_row(r)
    })
    .optional()
    .map(|o| o.and_then(|r| r.ok()))
}

fn parse_ts(s: &str) -> rusqlite::Result<Timestamp> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
}

fn parse_ts_opt(s: Option<String>) -> rusqlite::Result<Option<Timestamp>> {
    s.as_deref().map(parse_ts).transpose()
}

fn json_err(e: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
}

fn parse_enum<T: std::str::FromStr>(s: &str) -> rusqlite::Result<T> {
    s.parse().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("unexpected value {s:?}").into(),
        )
    })
}

fn write_facts(tx: &Transaction, run_id: i64, facts: &Facts) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO run_policy (run_id, policy_json) VALUES (?1, ?2)",
        params![
            run_id,
            // Every rule option written out, in the stored layout (hash version 1 re-serialises
            // the stored policy).
            serde_json::to_string(
                &RuleOptions::normalised(&facts.inventory.policy).map_err(json_err)?
            )
            .map_err(json_err)?
        ],
    )?;
    write_observed(tx, run_id, facts)?;
    write_declared(tx, run_id, facts)?;
    write_owners(tx, run_id, facts)?;
    write_events(tx, run_id, facts)?;
    write_coverage(tx, run_id, facts)?;
    write_usage_buckets(tx, run_id, facts)?;
    write_auth_windows(tx, run_id, facts)?;
    write_waivers(tx, run_id, facts)?;
    write_users(tx, run_id, facts)?;
    Ok(())
}

/// The observed credentials, in collection order.
fn write_observed(tx: &Transaction, run_id: i64, facts: &Facts) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare(
        "INSERT INTO observed_credentials (run_id, seq, id, kind, account, region, name, status, created_at,
           last_rotated_at, last_used_at, last_used_region, last_used_service, rotation_enabled,
           rotation_interval_days, schedule_expression, next_rotation_at, last_changed_at,
           pending_version, tags_json, password_enabled)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
    )?;
    for (seq, o) in facts.observed.iter().enumerate() {
        stmt.execute(params![
            run_id,
            seq as i64,
            o.id,
            o.kind.as_str(),
            o.account,
            o.region,
            o.name,
            match o.status {
                KeyStatus::Active => "active",
                KeyStatus::Inactive => "inactive",
            },
            ts_opt(&o.created_at),
            ts_opt(&o.last_rotated_at),
            ts_opt(&o.last_used_at),
            o.last_used_region,
            o.last_used_service,
            o.rotation_enabled,
            o.rotation_interval_days,
            o.schedule_expression,
            ts_opt(&o.next_rotation_at),
            ts_opt(&o.last_changed_at),
            o.pending_version,
            serde_json::to_string(&o.tags).map_err(json_err)?,
            o.password_enabled,
        ])?;
    }
    Ok(())
}

/// The declared credentials of the inventory, in file order.
fn write_declared(tx: &Transaction, run_id: i64, facts: &Facts) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare(
        "INSERT INTO declared_credentials (run_id, seq, id, kind, class, owner, consumers_json, automated,
           interval_days, max_uses, account, description, line)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    for (seq, d) in facts.inventory.credentials.iter().enumerate() {
        stmt.execute(params![
            run_id,
            seq as i64,
            d.id,
            d.kind.as_str(),
            d.class.map(|c| c.as_str()),
            d.owner,
            serde_json::to_string(&d.consumers).map_err(json_err)?,
            d.automated,
            d.interval_days,
            d.max_uses.map(|m| m as i64),
            d.account,
            d.description,
            d.line as i64,
        ])?;
    }
    Ok(())
}

/// The inventory's owners, in file order.
fn write_owners(tx: &Transaction, run_id: i64, facts: &Facts) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare(
        "INSERT INTO owners (run_id, seq, id, name, email, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (seq, o) in facts.inventory.owners.iter().enumerate() {
        stmt.execute(params![
            run_id,
            seq as i64,
            o.id,
            o.name,
            o.email,
            o.status.as_str()
        ])?;
    }
    Ok(())
}

/// The rotation events, in timeline order.
fn write_events(tx: &Transaction, run_id: i64, facts: &Facts) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare(
        "INSERT INTO rotation_events (run_id, seq, time, credential_id, type, trigger, fingerprint, details, source)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for (seq, e) in facts.events.iter().enumerate() {
        stmt.execute(params![
            run_id,
            seq as i64,
            ts(&e.time),
            e.credential_id,
            e.event_type.as_str(),
            e.trigger.map(|t| t.as_str()),
            e.fingerprint,
            e.details,
            e.source,
        ])?;
    }
    Ok(())
}

/// What each collector read, per account, region and API.
fn write_coverage(tx: &Transaction, run_id: i64, facts: &Facts) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare(
        "INSERT INTO coverage (run_id, seq, account, region, api, ok, error, records)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for (seq, c) in facts.coverage.iter().enumerate() {
        stmt.execute(params![
            run_id,
            seq as i64,
            c.account,
            c.region,
            c.api,
            c.ok,
            c.error,
            c.records as i64
        ])?;
    }
    Ok(())
}

/// The hourly CloudTrail usage buckets.
fn write_usage_buckets(tx: &Transaction, run_id: i64, facts: &Facts) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare(
        "INSERT INTO usage_buckets (run_id, credential_id, hour, calls, errors, auth_errors, detail_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for u in &facts.usage {
        let detail = UsageDetail {
            source_ips: u.source_ips.clone(),
            regions: u.regions.clone(),
            operations: u.operations.clone(),
            error_codes: u.error_codes.clone(),
        };
        stmt.execute(params![
            run_id,
            u.credential_id,
            ts(&u.hour),
            u.calls as i64,
            u.errors as i64,
            u.auth_errors as i64,
            serde_json::to_string(&detail).map_err(json_err)?,
        ])?;
    }
    Ok(())
}

/// The authentication-failure windows.
fn write_auth_windows(tx: &Transaction, run_id: i64, facts: &Facts) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare(
        "INSERT INTO auth_windows (run_id, credential_id, start, calls, auth_errors)
             VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for w in &facts.auth_windows {
        stmt.execute(params![
            run_id,
            w.credential_id,
            ts(&w.start),
            w.calls as i64,
            w.auth_errors as i64
        ])?;
    }
    Ok(())
}

/// The waivers, in file order.
fn write_waivers(tx: &Transaction, run_id: i64, facts: &Facts) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare(
        "INSERT INTO waivers (run_id, seq, rule, credential, reason, approver, ticket, expires, line)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for (seq, w) in facts.waivers.iter().enumerate() {
        stmt.execute(params![
            run_id,
            seq as i64,
            w.rule,
            w.credential,
            w.reason,
            w.approver,
            w.ticket,
            ts(&w.expires),
            w.line as i64
        ])?;
    }
    Ok(())
}

/// The IAM users of the credential report.
fn write_users(tx: &Transaction, run_id: i64, facts: &Facts) -> rusqlite::Result<()> {
    // No statement without rows: the facts of a run without a credential report write as they
    // did before the table existed (tests recreate older schemas with them).
    if !facts.users.is_empty() {
        let mut stmt = tx.prepare(
            "INSERT INTO iam_users (run_id, seq, account, name, arn, created_at, password_enabled,
               password_last_used_at, password_last_changed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for (seq, u) in facts.users.iter().enumerate() {
            stmt.execute(params![
                run_id,
                seq as i64,
                u.account,
                u.name,
                u.arn,
                ts_opt(&u.created_at),
                u.password_enabled,
                ts_opt(&u.password_last_used_at),
                ts_opt(&u.password_last_changed_at),
            ])?;
        }
    }
    Ok(())
}

/// A run's CloudTrail usage aggregates: hourly buckets and authentication-failure windows.
fn read_usage(
    conn: &Connection,
    run_id: i64,
) -> rusqlite::Result<(Vec<UsageBucket>, Vec<AuthWindow>)> {
    let mut stmt = conn.prepare(
        "SELECT credential_id, hour, calls, errors, auth_errors, detail_json
         FROM usage_buckets WHERE run_id = ?1 ORDER BY credential_id, hour",
    )?;
    let usage = stmt
        .query_map([run_id], |r| {
            let detail: String = r.get(5)?;
            let detail: UsageDetail = serde_json::from_str(&detail).map_err(json_err)?;
            Ok(UsageBucket {
                credential_id: r.get(0)?,
                hour: parse_ts(&r.get::<_, String>(1)?)?,
                calls: r.get::<_, i64>(2)? as u64,
                errors: r.get::<_, i64>(3)? as u64,
                auth_errors: r.get::<_, i64>(4)? as u64,
                source_ips: detail.source_ips,
                regions: detail.regions,
                operations: detail.operations,
                error_codes: detail.error_codes,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;

    let mut stmt = conn.prepare(
        "SELECT credential_id, start, calls, auth_errors
         FROM auth_windows WHERE run_id = ?1 ORDER BY credential_id, start",
    )?;
    let auth_windows = stmt
        .query_map([run_id], |r| {
            Ok(AuthWindow {
                credential_id: r.get(0)?,
                start: parse_ts(&r.get::<_, String>(1)?)?,
                calls: r.get::<_, i64>(2)? as u64,
                auth_errors: r.get::<_, i64>(3)? as u64,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((usage, auth_windows))
}

/// The per-bucket maps, stored as one JSON column.
#[derive(Serialize, serde::Deserialize)]
struct UsageDetail {
    source_ips: std::collections::BTreeMap<String, u64>,
    regions: std::collections::BTreeMap<String, u64>,
    operations: std::collections::BTreeMap<String, u64>,
    error_codes: std::collections::BTreeMap<String, u64>,
}

fn read_facts(conn: &Connection, run_id: i64, path: &Path) -> Result<Facts> {
    read_facts_inner(conn, run_id).map_err(|source| Error::Snapshot {
        path: path.to_path_buf(),
        source,
    })
}

fn read_facts_inner(conn: &Connection, run_id: i64) -> rusqlite::Result<Facts> {
    let policy_json: String = conn.query_row(
        "SELECT policy_json FROM run_policy WHERE run_id = ?1",
        [run_id],
        |r| r.get(0),
    )?;
    let policy: Policy = serde_json::from_str(&policy_json).map_err(json_err)?;
    // Checks the rule options and fills those an older credaudit did not store with defaults.
    let policy = RuleOptions::normalised(&policy).map_err(json_err)?;
    let observed = read_observed(conn, run_id)?;
    let credentials = read_declared(conn, run_id)?;
    let owners = read_owners(conn, run_id)?;
    let events = read_events(conn, run_id)?;
    let coverage = read_coverage(conn, run_id)?;
    let (usage, auth_windows) = read_usage(conn, run_id)?;
    let waivers = read_waivers(conn, run_id)?;
    let users = read_users(conn, run_id)?;

    Ok(Facts {
        users,
        waivers,
        usage,
        auth_windows,
        inventory: Inventory {
            policy,
            owners,
            credentials,
        },
        observed,
        events,
        coverage,
    })
}

/// The observed credentials of a run, in collection order.
fn read_observed(conn: &Connection, run_id: i64) -> rusqlite::Result<Vec<ObservedCredential>> {
    let mut stmt = conn.prepare(
        "SELECT id, kind, account, region, name, status, created_at, last_rotated_at, last_used_at,
           last_used_region, last_used_service, rotation_enabled, rotation_interval_days,
           schedule_expression, next_rotation_at, last_changed_at, pending_version, tags_json,
           password_enabled
         FROM observed_credentials WHERE run_id = ?1 ORDER BY seq",
    )?;
    let observed = stmt
        .query_map([run_id], |r| {
            let kind: String = r.get(1)?;
            let status: String = r.get(5)?;
            let tags: String = r.get(17)?;
            Ok(ObservedCredential {
                id: r.get(0)?,
                kind: parse_enum(&kind)?,
                account: r.get(2)?,
                region: r.get(3)?,
                name: r.get(4)?,
                status: if status == "inactive" {
                    KeyStatus::Inactive
                } else {
                    KeyStatus::Active
                },
                created_at: parse_ts_opt(r.get(6)?)?,
                last_rotated_at: parse_ts_opt(r.get(7)?)?,
                last_used_at: parse_ts_opt(r.get(8)?)?,
                last_used_region: r.get(9)?,
                last_used_service: r.get(10)?,
                rotation_enabled: r.get(11)?,
                rotation_interval_days: r.get(12)?,
                schedule_expression: r.get(13)?,
                next_rotation_at: parse_ts_opt(r.get(14)?)?,
                last_changed_at: parse_ts_opt(r.get(15)?)?,
                pending_version: r.get(16)?,
                tags: serde_json::from_str(&tags).map_err(json_err)?,
                password_enabled: r.get(18)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(observed)
}

/// The declared credentials of a run's inventory, in file order.
fn read_declared(conn: &Connection, run_id: i64) -> rusqlite::Result<Vec<DeclaredCredential>> {
    let mut stmt = conn.prepare(
        "SELECT id, kind, class, owner, consumers_json, automated, interval_days, max_uses, account,
           description, line
         FROM declared_credentials WHERE run_id = ?1 ORDER BY seq",
    )?;
    let credentials = stmt
        .query_map([run_id], |r| {
            let kind: String = r.get(1)?;
            let class: Option<String> = r.get(2)?;
            let consumers: String = r.get(4)?;
            let max_uses: Option<i64> = r.get(7)?;
            let line: i64 = r.get(10)?;
            Ok(DeclaredCredential {
                id: r.get(0)?,
                kind: parse_enum(&kind)?,
                class: class.as_deref().map(parse_enum).transpose()?,
                owner: r.get(3)?,
                consumers: serde_json::from_str(&consumers).map_err(json_err)?,
                automated: r.get(5)?,
                interval_days: r.get(6)?,
                max_uses: max_uses.map(|m| m as u64),
                account: r.get(8)?,
                description: r.get(9)?,
                line: line as usize,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(credentials)
}

/// The owners of a run's inventory, in file order.
fn read_owners(conn: &Connection, run_id: i64) -> rusqlite::Result<Vec<Owner>> {
    let mut stmt =
        conn.prepare("SELECT id, name, email, status FROM owners WHERE run_id = ?1 ORDER BY seq")?;
    let owners = stmt
        .query_map([run_id], |r| {
            let status: String = r.get(3)?;
            Ok(Owner {
                id: r.get(0)?,
                name: r.get(1)?,
                email: r.get(2)?,
                status: if status == "departed" {
                    OwnerStatus::Departed
                } else {
                    OwnerStatus::Active
                },
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(owners)
}

/// The rotation events of a run, in timeline order.
fn read_events(conn: &Connection, run_id: i64) -> rusqlite::Result<Vec<RotationEvent>> {
    let mut stmt = conn.prepare(
        "SELECT time, credential_id, type, trigger, fingerprint, details, source
         FROM rotation_events WHERE run_id = ?1 ORDER BY seq",
    )?;
    let events = stmt
        .query_map([run_id], |r| {
            let event_type: String = r.get(2)?;
            let trigger: Option<String> = r.get(3)?;
            Ok(RotationEvent {
                time: parse_ts(&r.get::<_, String>(0)?)?,
                credential_id: r.get(1)?,
                event_type: parse_enum(&event_type)?,
                trigger: trigger.as_deref().map(parse_enum).transpose()?,
                fingerprint: r.get(4)?,
                details: r.get(5)?,
                source: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(events)
}

/// What each collector of a run read.
fn read_coverage(conn: &Connection, run_id: i64) -> rusqlite::Result<Vec<CoverageEntry>> {
    let mut stmt = conn.prepare(
        "SELECT account, region, api, ok, error, records FROM coverage WHERE run_id = ?1 ORDER BY seq",
    )?;
    let coverage = stmt
        .query_map([run_id], |r| {
            let records: i64 = r.get(5)?;
            Ok(CoverageEntry {
                account: r.get(0)?,
                region: r.get(1)?,
                api: r.get(2)?,
                ok: r.get(3)?,
                error: r.get(4)?,
                records: records as u64,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(coverage)
}

/// The waivers of a run, in file order.
fn read_waivers(conn: &Connection, run_id: i64) -> rusqlite::Result<Vec<Waiver>> {
    let mut stmt = conn.prepare(
        "SELECT rule, credential, reason, approver, ticket, expires, line
         FROM waivers WHERE run_id = ?1 ORDER BY seq",
    )?;
    let waivers = stmt
        .query_map([run_id], |r| {
            Ok(Waiver {
                rule: r.get(0)?,
                credential: r.get(1)?,
                reason: r.get(2)?,
                approver: r.get(3)?,
                ticket: r.get(4)?,
                expires: parse_ts(&r.get::<_, String>(5)?)?,
                line: r.get::<_, i64>(6)? as usize,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(waivers)
}

/// The IAM users of a run's credential report.
fn read_users(conn: &Connection, run_id: i64) -> rusqlite::Result<Vec<IamUser>> {
    let mut stmt = conn.prepare(
        "SELECT account, name, arn, created_at, password_enabled, password_last_used_at,
           password_last_changed_at
         FROM iam_users WHERE run_id = ?1 ORDER BY seq",
    )?;
    let users = stmt
        .query_map([run_id], |r| {
            Ok(IamUser {
                account: r.get(0)?,
                name: r.get(1)?,
                arn: r.get(2)?,
                created_at: parse_ts_opt(r.get(3)?)?,
                password_enabled: r.get(4)?,
                password_last_used_at: parse_ts_opt(r.get(5)?)?,
                password_last_changed_at: parse_ts_opt(r.get(6)?)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(users)
}

fn write_raw(tx: &Transaction, run_id: i64, raw: &[(String, Vec<u8>)]) -> rusqlite::Result<()> {
    let mut stmt = tx
        .prepare("INSERT INTO raw_files (run_id, path, sha256, content) VALUES (?1, ?2, ?3, ?4)")?;
    for (path, bytes) in raw {
        stmt.execute(params![run_id, path, sha256_hex(bytes), bytes])?;
    }
    Ok(())
}

fn write_findings(tx: &Transaction, run_id: i64, findings: &[Finding]) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare(
        "INSERT INTO findings (run_id, seq, fingerprint, rule, severity, credential, kind, account, region, owner, message, evidence_json, waiver_json, principal)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?;
    for (seq, f) in findings.iter().enumerate() {
        stmt.execute(params![
            run_id,
            seq as i64,
            f.fingerprint(),
            f.rule,
            f.severity.as_str(),
            f.credential,
            f.kind.as_str(),
            f.account,
            f.region,
            f.owner,
            f.message,
            serde_json::to_string(&f.evidence).map_err(json_err)?,
            f.waiver
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(json_err)?,
            f.principal,
        ])?;
    }
    Ok(())
}

fn read_findings(conn: &Connection, run_id: i64) -> rusqlite::Result<Vec<Finding>> {
    let mut stmt = conn.prepare(
        "SELECT rule, severity, credential, kind, account, region, owner, message, evidence_json,
           waiver_json, principal
         FROM findings WHERE run_id = ?1 ORDER BY seq",
    )?;
    stmt.query_map([run_id], |r| {
        let severity: String = r.get(1)?;
        let kind: String = r.get(3)?;
        let evidence: String = r.get(8)?;
        let waiver: Option<String> = r.get(9)?;
        Ok(Finding {
            rule: r.get(0)?,
            severity: parse_enum(&severity)?,
            credential: r.get(2)?,
            kind: parse_enum(&kind)?,
            account: r.get(4)?,
            region: r.get(5)?,
            owner: r.get(6)?,
            principal: r.get(10)?,
            message: r.get(7)?,
            evidence: serde_json::from_str(&evidence).map_err(json_err)?,
            waiver: waiver
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(json_err)?,
        })
    })?
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit;

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
                &facts,
                &[],
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
                &facts,
                &[],
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
        let raw = vec![("aws/a.json".to_string(), b"{}".to_vec())];
        let (_, _, findings) = snap
            .record_run(
                "test",
                testkit::as_of(),
                testkit::as_of(),
                &sample_facts(),
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
            "DELETE FROM raw_files",
            "UPDATE runs SET status = 'partial'",
            "DELETE FROM runs",
            "UPDATE observed_credentials SET id = 'x'",
            "DELETE FROM findings",
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
            &sample_facts(),
            &[],
            |_| vec![],
        )
        .unwrap();
        // The same raw path twice violates the primary key halfway through the write.
        let raw = vec![
            ("a.json".to_string(), b"{}".to_vec()),
            ("a.json".to_string(), b"[]".to_vec()),
        ];
        assert!(
            snap.record_run(
                "broken",
                testkit::as_of(),
                testkit::as_of(),
                &sample_facts(),
                &raw,
                |_| vec![]
            )
            .is_err()
        );
        assert_eq!(snap.runs().unwrap().len(), 1);
        let orphans: i64 = snap
            .conn
            .query_row(
                "SELECT COUNT(*) FROM observed_credentials WHERE run_id = 2",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(orphans, 0);
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
                &sample_facts(),
                &[],
                |f| {
                    let mut f = f.clone();
                    f.inventory.credentials.clear();
                    crate::rules::evaluate(&f, testkit::as_of())
                },
            )
            .unwrap();
        }
        assert_eq!(snap.verify_chain().unwrap().first_broken, None);
        // Someone with write access drops the guard and rewrites history in run 2.
        snap.conn
            .execute_batch(
                "DROP TRIGGER findings_no_update;
                 UPDATE findings SET severity = 'low' WHERE run_id = 2;",
            )
            .unwrap();
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
            &sample_facts(),
            &[],
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
        conn.execute_batch(
            "DROP TRIGGER owners_no_update; UPDATE owners SET email = 'x@example.com' WHERE run_id = 2;",
        )
        .unwrap();
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
                &sample_facts(),
                &[],
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
        let tampering = [
            "UPDATE runs SET source = 'export:elsewhere' WHERE id = 2",
            "UPDATE runs SET recorded_at = '2020-01-01T00:00:00Z' WHERE id = 2",
            "UPDATE runs SET tool_version = '9.9.9' WHERE id = 2",
            "UPDATE runs SET status = 'partial' WHERE id = 2",
            "UPDATE raw_files SET content = x'00' WHERE run_id = 2",
            "UPDATE raw_files SET sha256 = 'ab', content = x'00' WHERE run_id = 2",
            "UPDATE usage_buckets SET calls = calls + 1 WHERE run_id = 2",
        ];
        for sql in tampering {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s.db");
            let mut snap = Snapshot::open(&path).unwrap();
            let raw = vec![("aws/a.json".to_string(), b"{}".to_vec())];
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
                    &facts,
                    &raw,
                    |_| vec![],
                )
                .unwrap();
            }
            assert_eq!(snap.verify_chain().unwrap().first_broken, None);
            snap.conn
                .execute_batch(
                    "DROP TRIGGER runs_no_update; DROP TRIGGER raw_no_update; DROP TRIGGER usage_no_update;",
                )
                .unwrap();
            snap.conn.execute(sql, []).unwrap();
            let broken = snap.verify_chain().unwrap().first_broken;
            assert_eq!(broken.map(|(id, _)| id), Some(2), "{sql}");
        }
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
            .record_run("t", testkit::as_of(), testkit::as_of(), &facts, &[], |f| {
                assess(f)
            })
            .unwrap();
        assert!(!recorded.findings.is_empty());
        let stored = snap.assessment(run.id).unwrap().unwrap();
        assert_eq!(stored, recorded, "what is read back is what was assessed");
        assert_eq!(hash_versions(&snap), [canonical::HASH_VERSION]);
        assert_eq!(snap.verify_chain().unwrap().first_broken, None);
        // A run recorded with findings only has no assessment.
        let (old, _, _) = snap
            .record_run("t", testkit::as_of(), testkit::as_of(), &facts, &[], |_| {
                Vec::<Finding>::new()
            })
            .unwrap();
        assert_eq!(snap.assessment(old.id).unwrap(), None);
        // Rewriting a stored assessment breaks the chain at its run.
        snap.conn
            .execute_batch(
                "DROP TRIGGER assessments_no_update;
                 UPDATE assessments SET assessment_json = replace(assessment_json, '\"fail\"', '\"pass\"') WHERE run_id = 1;",
            )
            .unwrap();
        let (id, _) = snap.verify_chain().unwrap().first_broken.unwrap();
        assert_eq!(id, 1);
        let err = snap
            .conn
            .execute("DELETE FROM assessments", [])
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
                &sample_facts(),
                &[],
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
        for sql in &schema::MIGRATIONS[..schema] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", schema as i64)
            .unwrap();
        let tx = conn.transaction().unwrap();
        write_facts(&tx, 1, &facts_without_users()).unwrap();
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
        let hash = canonical::run_hash(&tx, 1, &header).unwrap();
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
                &facts,
                &[],
                assess,
            )
            .unwrap();
        assert_eq!(
            stored.users, facts.users,
            "what is read back is what was written"
        );
        assert_eq!(snap.facts(run.id).unwrap().users, facts.users);
        assert_eq!(snap.facts(1).unwrap().users, []);
        assert_eq!(hash_versions(&snap), [3, 4]);
        assert_eq!(canonical::HASH_VERSION, 4);
        assert_eq!(snap.verify_chain().unwrap().first_broken, None);
        let err = snap
            .conn
            .execute("DELETE FROM iam_users", [])
            .unwrap_err()
            .to_string();
        assert!(err.contains("append-only"), "{err}");

        // Rewriting a stored user breaks the chain at its run.
        snap.conn
            .execute_batch(
                "DROP TRIGGER iam_users_no_update;
                 UPDATE iam_users SET password_last_used_at = '2026-10-31T00:00:00Z' WHERE run_id = 2;",
            )
            .unwrap();
        let (id, _) = snap.verify_chain().unwrap().first_broken.unwrap();
        assert_eq!(id, 2);

        // A user slipped into a version 3 run would escape its hash: refused.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        version_3_snapshot(&path);
        let snap = Snapshot::open(&path).unwrap();
        assert_eq!(snap.verify_chain().unwrap().first_broken, None);
        snap.conn
            .execute(
                "INSERT INTO iam_users (run_id, seq, account, name, arn, password_enabled)
                 VALUES (1, 0, '111122223333', 'mallory', 'arn:aws:iam::111122223333:user/mallory', 1)",
                [],
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
