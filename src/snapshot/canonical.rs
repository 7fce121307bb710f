//! Hash versions 2 to 4 of a run: the run's metadata and the canonical bytes of every row it
//! stored, as stored. Version 3 adds the run's assessment (`assessments`), version 4 its IAM
//! users (`iam_users`); runs recorded before a table existed hash without it, so they keep
//! verifying, and verification refuses rows in a table their version does not cover. Each
//! table is read in a fixed order with a fixed column list and its rows ordered by primary key; each value is a type tag, a length and the bytes SQLite holds, so the hash
//! never depends on how in-memory types happen to serialise.

use rusqlite::Connection;
use rusqlite::types::{Value, ValueRef};
use sha2::{Digest, Sha256};

/// The version new runs are written with.
pub const HASH_VERSION: i64 = 4;

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

/// A SHA-256 over tagged, length-prefixed fields.
struct Encoder(Sha256);

impl Encoder {
    fn field(&mut self, tag: u8, bytes: &[u8]) {
        self.0.update([tag]);
        self.0.update((bytes.len() as u64).to_be_bytes());
        self.0.update(bytes);
    }

    fn value(&mut self, value: ValueRef) {
        match value {
            ValueRef::Null => self.field(b'N', &[]),
            ValueRef::Integer(i) => self.field(b'I', &i.to_be_bytes()),
            ValueRef::Real(f) => self.field(b'F', &f.to_bits().to_be_bytes()),
            ValueRef::Text(t) => self.field(b'T', t),
            ValueRef::Blob(b) => self.field(b'B', b),
        }
    }
}

/// The version 2, 3 or 4 hash of run `run_id`: `header` holds the values of [`RUN_COLUMNS`] (those
/// about to be inserted, or those read back), whose `hash_version` says which tables it
/// covers; the rows come from the database.
pub fn run_hash(conn: &Connection, run_id: i64, header: &[Value]) -> rusqlite::Result<String> {
    assert_eq!(header.len(), RUN_COLUMNS.len(), "one value per run column");
    let version = RUN_COLUMNS
        .iter()
        .zip(header)
        .find_map(|(c, v)| match (c, v) {
            (&"hash_version", Value::Integer(v)) => Some(*v),
            _ => None,
        })
        .unwrap_or(2);
    let mut encoder = Encoder(Sha256::new());
    encoder.field(b'S', b"credaudit run hash v2");
    for (column, value) in RUN_COLUMNS.iter().zip(header) {
        encoder.field(b'C', column.as_bytes());
        encoder.value(value.into());
    }
    for (table, columns, order) in TABLES.iter().filter(|(t, _, _)| covers(version, t)) {
        encoder.field(b'T', table.as_bytes());
        for column in *columns {
            encoder.field(b'C', column.as_bytes());
        }
        let list = columns
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let mut stmt = conn.prepare(&format!(
            "SELECT {list} FROM {table} WHERE run_id = ?1 ORDER BY {order}"
        ))?;
        let mut rows = stmt.query([run_id])?;
        let mut count: u64 = 0;
        while let Some(row) = rows.next()? {
            encoder.field(b'R', &count.to_be_bytes());
            for index in 0..columns.len() {
                encoder.value(row.get_ref(index)?);
            }
            count += 1;
        }
        encoder.field(b'E', &count.to_be_bytes());
    }
    Ok(crate::model::hex(&encoder.0.finalize()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::schema::MIGRATIONS;

    fn migrated() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for sql in MIGRATIONS {
            conn.execute_batch(sql).unwrap();
        }
        conn
    }

    fn columns(conn: &Connection, table: &str) -> Vec<String> {
        let mut stmt = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    /// A column added by a later migration must be hashed too, or stay outside on purpose here.
    #[test]
    fn every_stored_column_is_hashed() {
        let conn = migrated();
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        for table in tables {
            let mut stored = columns(&conn, &table);
            if table == "runs" {
                stored.retain(|c| c != "content_hash");
                let mut hashed: Vec<String> = RUN_COLUMNS.iter().map(|c| c.to_string()).collect();
                hashed.sort();
                stored.sort();
                assert_eq!(stored, hashed, "runs");
                continue;
            }
            let (_, hashed, _) = TABLES
                .iter()
                .find(|(name, _, _)| *name == table)
                .unwrap_or_else(|| panic!("table {table} is not hashed"));
            stored.retain(|c| c != "run_id" && !(table == "raw_files" && c == "content"));
            let mut hashed: Vec<String> = hashed.iter().map(|c| c.to_string()).collect();
            hashed.sort();
            stored.sort();
            assert_eq!(stored, hashed, "{table}");
        }
    }

    #[test]
    fn the_hash_covers_values_and_their_types() {
        let conn = migrated();
        let header = |source: &str| -> Vec<Value> {
            vec![
                Value::Text(String::new()),
                Value::Integer(1),
                Value::Text("2026-11-01T00:00:00Z".into()),
                Value::Text("2026-11-01T00:00:00Z".into()),
                Value::Text(source.into()),
                Value::Text("0.1.0".into()),
                Value::Text("complete".into()),
                Value::Integer(HASH_VERSION),
            ]
        };
        let empty = run_hash(&conn, 1, &header("a")).unwrap();
        assert_ne!(empty, run_hash(&conn, 1, &header("b")).unwrap());
        conn.execute(
            "INSERT INTO owners (run_id, seq, id, name, email, status) VALUES (1, 0, 'o', NULL, '1', 'active')",
            [],
        )
        .unwrap();
        let text_one = run_hash(&conn, 1, &header("a")).unwrap();
        assert_ne!(empty, text_one);
        conn.execute_batch(
            "DROP TRIGGER owners_no_delete; DELETE FROM owners;
             INSERT INTO owners (run_id, seq, id, name, email, status) VALUES (1, 0, 'o', NULL, x'31', 'active')",
        )
        .unwrap();
        assert_ne!(text_one, run_hash(&conn, 1, &header("a")).unwrap());
        // Another run's rows are not this run's.
        assert_eq!(
            run_hash(&conn, 2, &header("a")).unwrap(),
            run_hash(&conn, 3, &header("a")).unwrap()
        );
    }
}
