//! Versioned schema migrations. `PRAGMA user_version` records how many have been applied; a
//! migration is never edited once released, only followed by a new one. A database is
//! credaudit's only if its `sqlite_master` is exactly what the migrations produce.

use std::collections::BTreeMap;

use rusqlite::Connection;

/// One schema migration: its SQL and, for one that moves data, the step that does it after the
/// SQL, in the same transaction.
pub struct Migration {
    pub sql: &'static str,
    pub convert: Option<fn(&Connection) -> rusqlite::Result<()>>,
}

impl Migration {
    const fn sql(sql: &'static str) -> Self {
        Migration { sql, convert: None }
    }

    /// Applies the migration to `conn` (the caller holds the transaction).
    pub fn apply(&self, conn: &Connection) -> rusqlite::Result<()> {
        conn.execute_batch(self.sql)?;
        match self.convert {
            Some(convert) => convert(conn),
            None => Ok(()),
        }
    }
}

/// Migrations in order; index + 1 is the schema version each one produces.
pub const MIGRATIONS: &[Migration] = &[
    Migration::sql(
        r#"
CREATE TABLE runs (
    id            INTEGER PRIMARY KEY,
    recorded_at   TEXT NOT NULL,
    as_of         TEXT NOT NULL,
    source        TEXT NOT NULL,
    tool_version  TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('complete', 'partial')),
    content_hash  TEXT NOT NULL,
    prev_hash     TEXT NOT NULL
);
CREATE TABLE run_policy (
    run_id       INTEGER NOT NULL,
    policy_json  TEXT NOT NULL
);
CREATE TABLE observed_credentials (
    run_id                 INTEGER NOT NULL,
    seq                    INTEGER NOT NULL,
    id                     TEXT NOT NULL,
    kind                   TEXT NOT NULL,
    account                TEXT NOT NULL,
    region                 TEXT NOT NULL,
    name                   TEXT NOT NULL,
    status                 TEXT NOT NULL,
    created_at             TEXT,
    last_rotated_at        TEXT,
    last_used_at           TEXT,
    last_used_region       TEXT,
    last_used_service      TEXT,
    rotation_enabled       INTEGER,
    rotation_interval_days INTEGER,
    schedule_expression    TEXT,
    next_rotation_at       TEXT,
    last_changed_at        TEXT,
    pending_version        INTEGER NOT NULL,
    tags_json              TEXT NOT NULL,
    password_enabled       INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX observed_by_id ON observed_credentials (id, run_id);
CREATE TABLE declared_credentials (
    run_id          INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    id              TEXT NOT NULL,
    kind            TEXT NOT NULL,
    class           TEXT,
    owner           TEXT,
    consumers_json  TEXT NOT NULL,
    automated       INTEGER NOT NULL,
    interval_days   INTEGER,
    max_uses        INTEGER,
    account         TEXT,
    description     TEXT,
    line            INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE owners (
    run_id  INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    id      TEXT NOT NULL,
    name    TEXT,
    email   TEXT,
    status  TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE rotation_events (
    run_id         INTEGER NOT NULL,
    seq            INTEGER NOT NULL,
    time           TEXT NOT NULL,
    credential_id  TEXT NOT NULL,
    type           TEXT NOT NULL,
    trigger        TEXT,
    fingerprint    TEXT,
    details        TEXT,
    source         TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX events_by_credential ON rotation_events (credential_id, time);
CREATE TABLE coverage (
    run_id   INTEGER NOT NULL,
    seq      INTEGER NOT NULL,
    account  TEXT NOT NULL,
    region   TEXT NOT NULL,
    api      TEXT NOT NULL,
    ok       INTEGER NOT NULL,
    error    TEXT,
    records  INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE findings (
    run_id         INTEGER NOT NULL,
    seq            INTEGER NOT NULL,
    fingerprint    TEXT NOT NULL,
    rule           TEXT NOT NULL,
    severity       TEXT NOT NULL,
    credential     TEXT NOT NULL,
    kind           TEXT NOT NULL,
    account        TEXT,
    region         TEXT,
    owner          TEXT,
    message        TEXT NOT NULL,
    evidence_json  TEXT NOT NULL,
    waiver_json    TEXT,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX findings_by_fingerprint ON findings (fingerprint, run_id);
CREATE TABLE usage_buckets (
    run_id         INTEGER NOT NULL,
    credential_id  TEXT NOT NULL,
    hour           TEXT NOT NULL,
    calls          INTEGER NOT NULL,
    errors         INTEGER NOT NULL,
    auth_errors    INTEGER NOT NULL,
    detail_json    TEXT NOT NULL,
    PRIMARY KEY (run_id, credential_id, hour)
);
CREATE TABLE auth_windows (
    run_id         INTEGER NOT NULL,
    credential_id  TEXT NOT NULL,
    start          TEXT NOT NULL,
    calls          INTEGER NOT NULL,
    auth_errors    INTEGER NOT NULL,
    PRIMARY KEY (run_id, credential_id, start)
);
CREATE TABLE waivers (
    run_id      INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    rule        TEXT NOT NULL,
    credential  TEXT NOT NULL,
    reason      TEXT NOT NULL,
    approver    TEXT NOT NULL,
    ticket      TEXT NOT NULL,
    expires     TEXT NOT NULL,
    line        INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE raw_files (
    run_id   INTEGER NOT NULL,
    path     TEXT NOT NULL,
    sha256   TEXT NOT NULL,
    content  BLOB NOT NULL,
    PRIMARY KEY (run_id, path)
);
"#,
    ), // Runs are append-only: no table of a run may be updated or deleted.
    Migration::sql(
        r#"
CREATE TRIGGER runs_no_update BEFORE UPDATE ON runs BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER runs_no_delete BEFORE DELETE ON runs BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER run_policy_no_update BEFORE UPDATE ON run_policy BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER run_policy_no_delete BEFORE DELETE ON run_policy BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER observed_no_update BEFORE UPDATE ON observed_credentials BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER observed_no_delete BEFORE DELETE ON observed_credentials BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER declared_no_update BEFORE UPDATE ON declared_credentials BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER declared_no_delete BEFORE DELETE ON declared_credentials BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER owners_no_update BEFORE UPDATE ON owners BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER owners_no_delete BEFORE DELETE ON owners BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER events_no_update BEFORE UPDATE ON rotation_events BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON rotation_events BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER coverage_no_update BEFORE UPDATE ON coverage BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER coverage_no_delete BEFORE DELETE ON coverage BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER findings_no_update BEFORE UPDATE ON findings BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER usage_no_update BEFORE UPDATE ON usage_buckets BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER usage_no_delete BEFORE DELETE ON usage_buckets BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER auth_windows_no_update BEFORE UPDATE ON auth_windows BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER auth_windows_no_delete BEFORE DELETE ON auth_windows BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER waivers_no_update BEFORE UPDATE ON waivers BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER waivers_no_delete BEFORE DELETE ON waivers BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER raw_no_update BEFORE UPDATE ON raw_files BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER raw_no_delete BEFORE DELETE ON raw_files BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER findings_no_delete BEFORE DELETE ON findings BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
"#,
    ), // Which algorithm chained a run: 1 (serialised facts, before this migration) or 2 (the
    // run's metadata and stored rows, see `canonical`). Adding a column recreates nothing, so
    // the append-only triggers above stay as they are. Findings name their principal (the IAM
    // user, the root user or the secret's name); runs before this have none.
    Migration::sql(
        r#"
ALTER TABLE runs ADD COLUMN hash_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE findings ADD COLUMN principal TEXT;
"#,
    ), // The assessment of a run (sources had, rules run and not run, control results, plan), as
    // JSON; its findings stay in `findings`. Runs before this have none. Hashed from hash
    // version 3 on.
    Migration::sql(
        r#"
CREATE TABLE assessments (
    run_id           INTEGER PRIMARY KEY,
    assessment_json  TEXT NOT NULL
);
CREATE TRIGGER assessments_no_update BEFORE UPDATE ON assessments BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER assessments_no_delete BEFORE DELETE ON assessments BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
"#,
    ), // The IAM users of the credential report (console password, its last use and change, the
    // user's creation), which CIS 1.11 and 1.12 judge. Runs before this have none. Hashed from
    // hash version 4 on.
    Migration::sql(
        r#"
CREATE TABLE iam_users (
    run_id                    INTEGER NOT NULL,
    seq                       INTEGER NOT NULL,
    account                   TEXT NOT NULL,
    name                      TEXT NOT NULL,
    arn                       TEXT NOT NULL,
    created_at                TEXT,
    password_enabled          INTEGER NOT NULL,
    password_last_used_at     TEXT,
    password_last_changed_at  TEXT,
    PRIMARY KEY (run_id, seq)
);
CREATE TRIGGER iam_users_no_update BEFORE UPDATE ON iam_users BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER iam_users_no_delete BEFORE DELETE ON iam_users BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
"#,
    ), // Content-addressed runs: every table of a run becomes one section (its canonical stream,
    // see `canonical`), stored as a blob, and raw files are blobs too. A blob is cut into
    // chunks by content; a chunk is stored once, deflated, under the SHA-256 of its bytes, and
    // a blob lists its chunk ids (8 bytes big-endian each). A run refers to its sections by
    // hash, so an unchanged table costs one row. The conversion writes every stored run's
    // tables as sections (byte for byte what hash versions 2 to 4 hashed) and drops the tables.
    Migration {
        sql: r#"
CREATE TABLE chunks (
    id      INTEGER PRIMARY KEY,
    sha256  TEXT NOT NULL UNIQUE,
    size    INTEGER NOT NULL,
    data    BLOB NOT NULL
);
CREATE TABLE blobs (
    sha256  TEXT PRIMARY KEY,
    size    INTEGER NOT NULL,
    chunks  BLOB NOT NULL
);
CREATE TABLE run_sections (
    run_id  INTEGER NOT NULL,
    name    TEXT NOT NULL,
    blob    TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
);
CREATE TRIGGER chunks_no_update BEFORE UPDATE ON chunks BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER chunks_no_delete BEFORE DELETE ON chunks BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER blobs_no_update BEFORE UPDATE ON blobs BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER blobs_no_delete BEFORE DELETE ON blobs BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER run_sections_no_update BEFORE UPDATE ON run_sections BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER run_sections_no_delete BEFORE DELETE ON run_sections BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
"#,
        convert: Some(super::sections::convert_tables),
    },
];

/// The schema objects of a database, keyed by (type, name), with their table and SQL text.
pub type Objects = BTreeMap<(String, String), (String, Option<String>)>;

/// How a database's schema differs from credaudit's at the same version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// An object credaudit never creates (a trigger, a view, a table, an index).
    Unknown { kind: String, name: String },
    /// An object with credaudit's name but another definition.
    Altered { kind: String, name: String },
    /// An object credaudit creates that is not there.
    Missing { kind: String, name: String },
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::Unknown { kind, name } => write!(f, "unknown {kind} {name:?}"),
            Difference::Altered { kind, name } => write!(f, "altered {kind} {name:?}"),
            Difference::Missing { kind, name } => write!(f, "missing {kind} {name:?}"),
        }
    }
}

/// Every row of `sqlite_master`: type, name, tbl_name and sql.
pub fn objects(conn: &Connection) -> rusqlite::Result<Objects> {
    let mut stmt = conn.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master")?;
    stmt.query_map([], |r| {
        Ok((
            (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
            (r.get::<_, String>(2)?, r.get::<_, Option<String>>(3)?),
        ))
    })?
    .collect()
}

/// The objects the first `version` migrations produce, built in a fresh in-memory database.
pub fn expected(version: usize) -> rusqlite::Result<Objects> {
    let conn = Connection::open_in_memory()?;
    for migration in MIGRATIONS.iter().take(version) {
        migration.apply(&conn)?;
    }
    objects(&conn)
}

/// The differences between `actual` and `expected`, in (type, name) order.
pub fn compare(actual: &Objects, expected: &Objects) -> Vec<Difference> {
    let mut differences = Vec::new();
    for ((kind, name), definition) in actual {
        let (kind, name) = (kind.clone(), name.clone());
        match expected.get(&(kind.clone(), name.clone())) {
            None => differences.push(Difference::Unknown { kind, name }),
            Some(wanted) if wanted != definition => {
                differences.push(Difference::Altered { kind, name })
            }
            Some(_) => {}
        }
    }
    for (kind, name) in expected.keys() {
        if !actual.contains_key(&(kind.clone(), name.clone())) {
            differences.push(Difference::Missing {
                kind: kind.clone(),
                name: name.clone(),
            });
        }
    }
    differences
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_version_matches_itself_and_differences_are_named() {
        for version in 0..=MIGRATIONS.len() {
            let wanted = expected(version).unwrap();
            assert_eq!(compare(&wanted, &wanted), vec![], "version {version}");
        }
        let conn = Connection::open_in_memory().unwrap();
        for migration in MIGRATIONS {
            migration.apply(&conn).unwrap();
        }
        conn.execute_batch(
            "DROP TRIGGER runs_no_delete;
             DROP TRIGGER runs_no_update;
             CREATE TRIGGER runs_no_update BEFORE UPDATE ON runs BEGIN SELECT 1; END;
             CREATE VIEW v AS SELECT 1;",
        )
        .unwrap();
        let differences = compare(
            &objects(&conn).unwrap(),
            &expected(MIGRATIONS.len()).unwrap(),
        );
        assert_eq!(
            differences
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [
                r#"altered trigger "runs_no_update""#,
                r#"unknown view "v""#,
                r#"missing trigger "runs_no_delete""#,
            ]
        );
    }
}
