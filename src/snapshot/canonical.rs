//! The canonical bytes of a run and its hash versions 2 to 5.
//!
//! Each table of a run is one *section*: a canonical byte stream of the table's name, its
//! column names and its rows in a fixed order, each value a type tag, a length and the bytes
//! SQLite would hold, so nothing depends on how in-memory types happen to serialise. A run
//! stores each section as a blob (see `store`) and facts are decoded from them.
//!
//! Hash versions 2 to 4 hash the run's metadata followed by its sections' bytes. Version 3
//! adds the run's assessment (`assessments`), version 4 its IAM users (`iam_users`); runs
//! recorded before a table existed hash without it, so they keep verifying, and verification
//! refuses a section of a table their version does not cover. Version 5 hashes the metadata
//! and each section's SHA-256, which verification checks against the section's bytes.

use rusqlite::Connection;
use rusqlite::types::{Value, ValueRef};
use sha2::{Digest, Sha256};

use super::store::BlobWriter;

/// The version new runs are written with.
pub const HASH_VERSION: i64 = 5;

/// The first hash version that covers each table added after version 2; other tables are
/// covered from version 2 on.
const INTRODUCED: &[(&str, i64)] = &[("assessments", 3), ("iam_users", 4)];

/// Whether a run hashed with `version` covers `table`.
pub fn covers(version: i64, table: &str) -> bool {
    let since = INTRODUCED
        .iter()
        .find(|(t, _)| *t == table)
        .map_or(2, |(_, v)| *v);
    version >= since
}

/// The tables added after hash version 2 that a run hashed with `version` does not cover. It
/// was recorded before they existed, so it holds no rows in them: rows there were added later
/// and would escape its hash.
pub fn uncovered(version: i64) -> impl Iterator<Item = &'static str> {
    INTRODUCED
        .iter()
        .filter(move |(_, since)| version < *since)
        .map(|(table, _)| *table)
}

/// The columns of `runs` a version 2 hash covers, in order (all but `content_hash`).
pub const RUN_COLUMNS: &[&str] = &[
    "prev_hash",
    "id",
    "recorded_at",
    "as_of",
    "source",
    "tool_version",
    "status",
    "hash_version",
];

/// Each table of a run in hashing order: its name, the columns hashed (every column but
/// `run_id`; `raw_files` hashes `sha256`, which verification checks against `content`) and
/// the order of its rows.
pub const TABLES: &[(&str, &[&str], &str)] = &[
    ("run_policy", &["policy_json"], "policy_json"),
    (
        "observed_credentials",
        &[
            "seq",
            "id",
            "kind",
            "account",
            "region",
            "name",
            "status",
            "created_at",
            "last_rotated_at",
            "last_used_at",
            "last_used_region",
            "last_used_service",
            "rotation_enabled",
            "rotation_interval_days",
            "schedule_expression",
            "next_rotation_at",
            "last_changed_at",
            "pending_version",
            "tags_json",
            "password_enabled",
        ],
        "seq",
    ),
    (
        "declared_credentials",
        &[
            "seq",
            "id",
            "kind",
            "class",
            "owner",
            "consumers_json",
            "automated",
            "interval_days",
            "max_uses",
            "account",
            "description",
            "line",
        ],
        "seq",
    ),
    ("owners", &["seq", "id", "name", "email", "status"], "seq"),
    (
        "rotation_events",
        &[
            "seq",
            "time",
            "credential_id",
            "type",
            "trigger",
            "fingerprint",
            "details",
            "source",
        ],
        "seq",
    ),
    (
        "coverage",
        &["seq", "account", "region", "api", "ok", "error", "records"],
        "seq",
    ),
    (
        "findings",
        &[
            "seq",
            "fingerprint",
            "rule",
            "severity",
            "credential",
            "kind",
            "account",
            "region",
            "owner",
            "message",
            "evidence_json",
            "waiver_json",
            "principal",
        ],
        "seq",
    ),
    (
        "usage_buckets",
        &[
            "credential_id",
            "hour",
            "calls",
            "errors",
            "auth_errors",
            "detail_json",
        ],
        "credential_id, hour",
    ),
    (
        "auth_windows",
        &["credential_id", "start", "calls", "auth_errors"],
        "credential_id, start",
    ),
    (
        "waivers",
        &[
            "seq",
            "rule",
            "credential",
            "reason",
            "approver",
            "ticket",
            "expires",
            "line",
        ],
        "seq",
    ),
    ("raw_files", &["path", "sha256"], "path"),
    ("assessments", &["assessment_json"], "run_id"),
    (
        "iam_users",
        &[
            "seq",
            "account",
            "name",
            "arn",
            "created_at",
            "password_enabled",
            "password_last_used_at",
            "password_last_changed_at",
        ],
        "seq",
    ),
];

/// Where canonical bytes go: a blob being written, or a hash being computed.
pub trait Sink {
    fn put(&mut self, bytes: &[u8]) -> rusqlite::Result<()>;
}

impl Sink for Sha256 {
    fn put(&mut self, bytes: &[u8]) -> rusqlite::Result<()> {
        self.update(bytes);
        Ok(())
    }
}

impl Sink for BlobWriter<'_> {
    fn put(&mut self, bytes: &[u8]) -> rusqlite::Result<()> {
        BlobWriter::put(self, bytes)
    }
}

/// One field: a tag, the length of the bytes (8 bytes big-endian) and the bytes.
fn field(sink: &mut impl Sink, tag: u8, bytes: &[u8]) -> rusqlite::Result<()> {
    sink.put(&[tag])?;
    sink.put(&(bytes.len() as u64).to_be_bytes())?;
    sink.put(bytes)
}

/// One value, tagged with its SQLite type.
fn value(sink: &mut impl Sink, value: ValueRef) -> rusqlite::Result<()> {
    match value {
        ValueRef::Null => field(sink, b'N', &[]),
        ValueRef::Integer(i) => field(sink, b'I', &i.to_be_bytes()),
        ValueRef::Real(f) => field(sink, b'F', &f.to_bits().to_be_bytes()),
        ValueRef::Text(t) => field(sink, b'T', t),
        ValueRef::Blob(b) => field(sink, b'B', b),
    }
}

/// The columns and row order of a table of [`TABLES`].
pub fn table(name: &str) -> (&'static str, &'static [&'static str], &'static str) {
    *TABLES
        .iter()
        .find(|(t, _, _)| *t == name)
        .unwrap_or_else(|| panic!("{name} is one of the tables of a run"))
}

/// Writes one section: the canonical stream of one table of a run, exactly the bytes hash
/// versions 2 to 4 hash for it (its name, its column names, each row's number and values, the
/// row count).
pub struct Section<'s, S: Sink> {
    sink: &'s mut S,
    columns: usize,
    rows: u64,
}

impl<'s, S: Sink> Section<'s, S> {
    pub fn begin(sink: &'s mut S, name: &str) -> rusqlite::Result<Self> {
        let (name, columns, _) = table(name);
        field(sink, b'T', name.as_bytes())?;
        for column in columns {
            field(sink, b'C', column.as_bytes())?;
        }
        Ok(Section {
            sink,
            columns: columns.len(),
            rows: 0,
        })
    }

    /// One row: a value per column, in the table's column order.
    pub fn row(&mut self, values: &[ValueRef]) -> rusqlite::Result<()> {
        assert_eq!(values.len(), self.columns, "one value per column");
        field(self.sink, b'R', &self.rows.to_be_bytes())?;
        for v in values {
            value(self.sink, *v)?;
        }
        self.rows += 1;
        Ok(())
    }

    pub fn end(self) -> rusqlite::Result<u64> {
        field(self.sink, b'E', &self.rows.to_be_bytes())?;
        Ok(self.rows)
    }
}

/// The section of `table` for run `run_id` from the tables of a schema before version 6 (the
/// migration to sections, and tests that build older snapshots).
pub fn table_section(
    conn: &Connection,
    run_id: i64,
    table: &str,
    sink: &mut impl Sink,
) -> rusqlite::Result<u64> {
    let (table, columns, order) = self::table(table);
    let list = columns
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let mut stmt = conn.prepare(&format!(
        "SELECT {list} FROM {table} WHERE run_id = ?1 ORDER BY {order}"
    ))?;
    let mut rows = stmt.query([run_id])?;
    let mut section = Section::begin(sink, table)?;
    while let Some(row) = rows.next()? {
        let values = (0..columns.len())
            .map(|index| row.get_ref(index))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        section.row(&values)?;
    }
    section.end()
}

/// The hash version a header claims (2 when it claims none).
fn header_version(header: &[Value]) -> i64 {
    RUN_COLUMNS
        .iter()
        .zip(header)
        .find_map(|(c, v)| match (c, v) {
            (&"hash_version", Value::Integer(v)) => Some(*v),
            _ => None,
        })
        .unwrap_or(2)
}

/// Starts a run hash: its label and the run's metadata.
fn header_hash(label: &[u8], header: &[Value]) -> rusqlite::Result<Sha256> {
    assert_eq!(header.len(), RUN_COLUMNS.len(), "one value per run column");
    let mut hasher = Sha256::new();
    field(&mut hasher, b'S', label)?;
    for (column, v) in RUN_COLUMNS.iter().zip(header) {
        field(&mut hasher, b'C', column.as_bytes())?;
        value(&mut hasher, v.into())?;
    }
    Ok(hasher)
}

/// The version 2, 3 or 4 hash of a run: `header` holds the values of [`RUN_COLUMNS`], whose
/// `hash_version` says which tables it covers, and `section` streams the section of each
/// covered table, in [`TABLES`] order, into the hash.
pub fn run_hash_v2(
    header: &[Value],
    mut section: impl FnMut(&str, &mut Sha256) -> crate::error::Result<()>,
) -> crate::error::Result<String> {
    let version = header_version(header);
    let mut hasher = header_hash(b"credaudit run hash v2", header).map_err(hash_err)?;
    for (table, _, _) in TABLES.iter().filter(|(t, _, _)| covers(version, t)) {
        section(table, &mut hasher)?;
    }
    Ok(crate::model::hex(&hasher.finalize()))
}

fn hash_err(e: rusqlite::Error) -> crate::error::Error {
    crate::error::Error::SnapshotFormat {
        path: Default::default(),
        message: e.to_string(),
    }
}

/// The version 5 hash of a run: its metadata and, for every table of [`TABLES`] in order, the
/// table's name and the SHA-256 of its section (a blob, which `verify` checks against its
/// bytes).
pub fn run_hash_v5(header: &[Value], sections: &[(&str, String)]) -> String {
    let mut hasher = header_hash(b"credaudit run hash v5", header).expect("hashing never fails");
    for (table, sha256) in sections {
        field(&mut hasher, b'T', table.as_bytes()).expect("hashing never fails");
        field(&mut hasher, b'H', sha256.as_bytes()).expect("hashing never fails");
    }
    crate::model::hex(&hasher.finalize())
}

/// The version 2 to 4 hash of run `run_id` from the tables of a schema before version 6
/// (tests that build older snapshots).
#[cfg(test)]
pub fn run_hash_of_tables(conn: &Connection, run_id: i64, header: &[Value]) -> String {
    run_hash_v2(header, |table, hasher| {
        table_section(conn, run_id, table, hasher)
            .map(|_| ())
            .map_err(hash_err)
    })
    .unwrap()
}

/// The [`RUN_COLUMNS`] of a stored run, as stored.
pub fn stored_header(conn: &Connection, run_id: i64) -> rusqlite::Result<Vec<Value>> {
    let list = RUN_COLUMNS.join(", ");
    conn.query_row(
        &format!("SELECT {list} FROM runs WHERE id = ?1"),
        [run_id],
        |r| {
            (0..RUN_COLUMNS.len())
                .map(|i| r.get::<_, Value>(i))
                .collect()
        },
    )
}

/// What covers each column the content-addressed schema stores, besides `run_id`: `runs` is
/// the chain itself (every column but `content_hash` is hashed, see [`RUN_COLUMNS`]); a run's
/// sections are hashed by name and blob (version 5; versions 2 to 4 hash the blob's bytes);
/// blobs and chunks are checked against their bytes by verify (a chunk's SHA-256, size and
/// data; a blob's size, chunk list and the SHA-256 of the whole).
#[cfg(test)]
pub const CHECKED_COLUMNS: &[(&str, &[&str])] = &[
    ("run_sections", &["name", "blob"]),
    ("blobs", &["sha256", "size", "chunks"]),
    ("chunks", &["id", "sha256", "size", "data"]),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::schema::MIGRATIONS;

    fn migrated(version: usize) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for migration in &MIGRATIONS[..version] {
            migration.apply(&conn).unwrap();
        }
        conn
    }

    fn columns(conn: &Connection, table: &str) -> Vec<String> {
        let mut stmt = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .unwrap();
        let mut names: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        names.sort();
        names
    }

    fn tables(conn: &Connection) -> Vec<String> {
        conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = names.iter().map(|c| c.to_string()).collect();
        names.sort();
        names
    }

    /// A column added by a later migration must be hashed or checked too, or stay outside on
    /// purpose here.
    #[test]
    fn every_stored_column_is_hashed_or_checked() {
        let conn = migrated(MIGRATIONS.len());
        for table in tables(&conn) {
            let mut stored = columns(&conn, &table);
            if table == "runs" {
                stored.retain(|c| c != "content_hash");
                assert_eq!(stored, sorted(RUN_COLUMNS), "runs");
                continue;
            }
            let (_, checked) = CHECKED_COLUMNS
                .iter()
                .find(|(name, _)| *name == table)
                .unwrap_or_else(|| panic!("table {table} is neither hashed nor checked"));
            stored.retain(|c| c != "run_id");
            assert_eq!(stored, sorted(checked), "{table}");
        }
    }

    /// Every column of the tables before the content-addressed schema goes into its section,
    /// so the conversion loses nothing (`content` of `raw_files` becomes a blob).
    #[test]
    fn every_column_of_the_older_tables_is_in_its_section() {
        let conn = migrated(5);
        for table in tables(&conn) {
            if table == "runs" {
                continue;
            }
            let (_, hashed, _) = self::table(&table);
            let mut stored = columns(&conn, &table);
            stored.retain(|c| c != "run_id" && !(table == "raw_files" && c == "content"));
            assert_eq!(stored, sorted(hashed), "{table}");
        }
    }

    impl Sink for Vec<u8> {
        fn put(&mut self, bytes: &[u8]) -> rusqlite::Result<()> {
            self.extend_from_slice(bytes);
            Ok(())
        }
    }

    fn owners(email: ValueRef) -> Vec<u8> {
        let mut out = Vec::new();
        let mut section = Section::begin(&mut out, "owners").unwrap();
        section
            .row(&[
                ValueRef::Integer(0),
                ValueRef::Text(b"o"),
                ValueRef::Null,
                email,
                ValueRef::Text(b"active"),
            ])
            .unwrap();
        section.end().unwrap();
        out
    }

    #[test]
    fn the_hash_covers_values_and_their_types() {
        let header = |source: &str, version: i64| -> Vec<Value> {
            vec![
                Value::Text(String::new()),
                Value::Integer(1),
                Value::Text("2026-11-01T00:00:00Z".into()),
                Value::Text("2026-11-01T00:00:00Z".into()),
                Value::Text(source.into()),
                Value::Text("0.1.0".into()),
                Value::Text("complete".into()),
                Value::Integer(version),
            ]
        };
        // A text and a blob of the same bytes are different values.
        let text = owners(ValueRef::Text(b"1"));
        let blob = owners(ValueRef::Blob(b"1"));
        assert_ne!(text, blob);
        let v2 = |source: &str, owners: &[u8]| {
            run_hash_v2(&header(source, 2), |table, hasher| {
                if table == "owners" {
                    hasher.update(owners);
                }
                Ok(())
            })
            .unwrap()
        };
        assert_ne!(v2("a", &text), v2("b", &text));
        assert_ne!(v2("a", &text), v2("a", &blob));
        // Version 5 hashes the metadata and the sections' names and hashes.
        let sections = |owners: &[u8]| vec![("owners", crate::model::sha256_hex(owners))];
        let v5 = |source: &str, owners: &[u8]| run_hash_v5(&header(source, 5), &sections(owners));
        assert_ne!(v5("a", &text), v5("b", &text));
        assert_ne!(v5("a", &text), v5("a", &blob));
        assert_ne!(
            v5("a", &text),
            run_hash_v5(
                &header("a", 5),
                &[("waivers", sections(&text)[0].1.clone())]
            )
        );
    }
}
