//! The facts of a run as sections and back: each table of a run is written as its canonical
//! stream (see `canonical`) into a blob (see `store`), and read back by decoding that stream.
//! Also the conversion of the tables of schemas before version 6 into sections.

use std::io::Read;

use chrono::SecondsFormat;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::canonical::{self, Section, TABLES};
use super::store::{BlobReader, BlobWriter};
use crate::model::{
    AuthWindow, Counts, CoverageEntry, DeclaredCredential, Facts, Finding, IamUser, Inventory,
    KeyStatus, ObservedCredential, Owner, OwnerStatus, Policy, RotationEvent, Timestamp,
    UsageBucket, Waiver,
};
use crate::rules::RuleOptions;

pub fn ts(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn ts_opt(t: &Option<Timestamp>) -> Option<String> {
    t.as_ref().map(ts)
}

fn text(s: &str) -> ValueRef<'_> {
    ValueRef::Text(s.as_bytes())
}

fn opt_text(s: Option<&str>) -> ValueRef<'_> {
    s.map_or(ValueRef::Null, text)
}

fn int(i: i64) -> ValueRef<'static> {
    ValueRef::Integer(i)
}

fn opt_int(i: Option<i64>) -> ValueRef<'static> {
    i.map_or(ValueRef::Null, int)
}

fn flag(b: bool) -> ValueRef<'static> {
    ValueRef::Integer(b.into())
}

fn opt_flag(b: Option<bool>) -> ValueRef<'static> {
    b.map_or(ValueRef::Null, flag)
}

fn invalid(message: String) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(message.into())
}

fn json<T: Serialize + ?Sized>(value: &T) -> rusqlite::Result<String> {
    serde_json::to_string(value).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))
}

/// Writes the section of `table` as a blob; gives its SHA-256.
pub fn write_section(
    conn: &Connection,
    table: &str,
    fill: impl FnOnce(&mut Section<BlobWriter>) -> rusqlite::Result<()>,
) -> rusqlite::Result<String> {
    let mut writer = BlobWriter::new(conn);
    let mut section = Section::begin(&mut writer, table)?;
    fill(&mut section)?;
    section.end()?;
    Ok(writer.finish()?.0)
}

/// The per-bucket counts, stored as one JSON column (each a JSON object, names in order).
#[derive(Deserialize)]
struct UsageDetail {
    source_ips: Counts,
    regions: Counts,
    operations: Counts,
    error_codes: Counts,
}

/// [`UsageDetail`] as written: borrowed from the bucket.
#[derive(Serialize)]
struct UsageDetailRef<'a> {
    source_ips: &'a Counts,
    regions: &'a Counts,
    operations: &'a Counts,
    error_codes: &'a Counts,
}

/// Writes the sections of the facts' tables; gives (table, SHA-256) of each.
pub fn write_facts(
    conn: &Connection,
    facts: &Facts,
) -> rusqlite::Result<Vec<(&'static str, String)>> {
    let policy = RuleOptions::normalised(&facts.inventory.policy)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
    Ok(vec![
        (
            "run_policy",
            // Every rule option written out, in the stored layout (hash version 1
            // re-serialises the stored policy).
            write_section(conn, "run_policy", |s| s.row(&[text(&json(&policy)?)]))?,
        ),
        ("observed_credentials", write_observed(conn, facts)?),
        ("declared_credentials", write_declared(conn, facts)?),
        ("owners", write_owners(conn, facts)?),
        ("rotation_events", write_events(conn, facts)?),
        ("coverage", write_coverage(conn, facts)?),
        ("usage_buckets", write_usage(conn, facts)?),
        ("auth_windows", write_auth_windows(conn, facts)?),
        ("waivers", write_waivers(conn, facts)?),
        ("iam_users", write_users(conn, facts)?),
    ])
}

/// The observed credentials, in collection order.
fn write_observed(conn: &Connection, facts: &Facts) -> rusqlite::Result<String> {
    write_section(conn, "observed_credentials", |s| {
        for (seq, o) in facts.observed.iter().enumerate() {
            let times = [
                ts_opt(&o.created_at),
                ts_opt(&o.last_rotated_at),
                ts_opt(&o.last_used_at),
                ts_opt(&o.next_rotation_at),
                ts_opt(&o.last_changed_at),
            ];
            let tags = json(&o.tags)?;
            s.row(&[
                int(seq as i64),
                text(&o.id),
                text(o.kind.as_str()),
                text(&o.account),
                text(&o.region),
                text(&o.name),
                text(match o.status {
                    KeyStatus::Active => "active",
                    KeyStatus::Inactive => "inactive",
                }),
                opt_text(times[0].as_deref()),
                opt_text(times[1].as_deref()),
                opt_text(times[2].as_deref()),
                opt_text(o.last_used_region.as_deref()),
                opt_text(o.last_used_service.as_deref()),
                opt_flag(o.rotation_enabled),
                opt_int(o.rotation_interval_days.map(i64::from)),
                opt_text(o.schedule_expression.as_deref()),
                opt_text(times[3].as_deref()),
                opt_text(times[4].as_deref()),
                flag(o.pending_version),
                text(&tags),
                flag(o.password_enabled),
            ])?;
        }
        Ok(())
    })
}

/// The declared credentials of the inventory, in file order.
fn write_declared(conn: &Connection, facts: &Facts) -> rusqlite::Result<String> {
    write_section(conn, "declared_credentials", |s| {
        for (seq, d) in facts.inventory.credentials.iter().enumerate() {
            let consumers = json(&d.consumers)?;
            s.row(&[
                int(seq as i64),
                text(&d.id),
                text(d.kind.as_str()),
                opt_text(d.class.map(|c| c.as_str())),
                opt_text(d.owner.as_deref()),
                text(&consumers),
                flag(d.automated),
                opt_int(d.interval_days.map(i64::from)),
                opt_int(d.max_uses.map(|m| m as i64)),
                opt_text(d.account.as_deref()),
                opt_text(d.description.as_deref()),
                int(d.line as i64),
            ])?;
        }
        Ok(())
    })
}

/// The inventory's owners, in file order.
fn write_owners(conn: &Connection, facts: &Facts) -> rusqlite::Result<String> {
    write_section(conn, "owners", |s| {
        for (seq, o) in facts.inventory.owners.iter().enumerate() {
            s.row(&[
                int(seq as i64),
                text(&o.id),
                opt_text(o.name.as_deref()),
                opt_text(o.email.as_deref()),
                text(o.status.as_str()),
            ])?;
        }
        Ok(())
    })
}

/// The rotation events, in timeline order.
fn write_events(conn: &Connection, facts: &Facts) -> rusqlite::Result<String> {
    write_section(conn, "rotation_events", |s| {
        for (seq, e) in facts.events.iter().enumerate() {
            s.row(&[
                int(seq as i64),
                text(&ts(&e.time)),
                text(&e.credential_id),
                text(e.event_type.as_str()),
                opt_text(e.trigger.map(|t| t.as_str())),
                opt_text(e.fingerprint.as_deref()),
                opt_text(e.details.as_deref()),
                text(&e.source),
            ])?;
        }
        Ok(())
    })
}

/// What each collector read, per account, region and API.
fn write_coverage(conn: &Connection, facts: &Facts) -> rusqlite::Result<String> {
    write_section(conn, "coverage", |s| {
        for (seq, c) in facts.coverage.iter().enumerate() {
            s.row(&[
                int(seq as i64),
                text(&c.account),
                text(&c.region),
                text(&c.api),
                flag(c.ok),
                opt_text(c.error.as_deref()),
                int(c.records as i64),
            ])?;
        }
        Ok(())
    })
}

/// Items keyed by (credential id, time as stored), in that order (the order of the table's
/// primary key); a key twice is refused.
fn by_credential_and_time<'f, T>(
    items: &'f [T],
    key: impl Fn(&'f T) -> (&'f str, &'f Timestamp),
    what: &str,
) -> rusqlite::Result<Vec<(&'f str, String, &'f T)>> {
    let mut keyed: Vec<(&str, String, &T)> = items
        .iter()
        .map(|item| {
            let (credential, time) = key(item);
            (credential, ts(time), item)
        })
        .collect();
    keyed.sort_by(|a, b| (a.0.as_bytes(), a.1.as_bytes()).cmp(&(b.0.as_bytes(), b.1.as_bytes())));
    if let Some(pair) = keyed
        .windows(2)
        .find(|w| (w[0].0, &w[0].1) == (w[1].0, &w[1].1))
    {
        return Err(invalid(format!(
            "two {what} of credential {:?} at {}",
            pair[0].0, pair[0].1
        )));
    }
    Ok(keyed)
}

/// The hourly CloudTrail usage buckets, by credential and hour.
fn write_usage(conn: &Connection, facts: &Facts) -> rusqlite::Result<String> {
    let keyed = by_credential_and_time(
        &facts.usage,
        |u| (u.credential_id.as_str(), &u.hour),
        "usage buckets",
    )?;
    write_section(conn, "usage_buckets", |s| {
        for (credential, hour, u) in keyed {
            let detail = json(&UsageDetailRef {
                source_ips: &u.source_ips,
                regions: &u.regions,
                operations: &u.operations,
                error_codes: &u.error_codes,
            })?;
            s.row(&[
                text(credential),
                text(&hour),
                int(u.calls as i64),
                int(u.errors as i64),
                int(u.auth_errors as i64),
                text(&detail),
            ])?;
        }
        Ok(())
    })
}

/// The authentication-failure windows, by credential and start.
fn write_auth_windows(conn: &Connection, facts: &Facts) -> rusqlite::Result<String> {
    let keyed = by_credential_and_time(
        &facts.auth_windows,
        |w| (w.credential_id.as_str(), &w.start),
        "authentication-failure windows",
    )?;
    write_section(conn, "auth_windows", |s| {
        for (credential, start, w) in keyed {
            s.row(&[
                text(credential),
                text(&start),
                int(w.calls as i64),
                int(w.auth_errors as i64),
            ])?;
        }
        Ok(())
    })
}

/// The waivers, in file order.
fn write_waivers(conn: &Connection, facts: &Facts) -> rusqlite::Result<String> {
    write_section(conn, "waivers", |s| {
        for (seq, w) in facts.waivers.iter().enumerate() {
            s.row(&[
                int(seq as i64),
                text(&w.rule),
                text(&w.credential),
                text(&w.reason),
                text(&w.approver),
                text(&w.ticket),
                text(&ts(&w.expires)),
                int(w.line as i64),
            ])?;
        }
        Ok(())
    })
}

/// The IAM users of the credential report.
fn write_users(conn: &Connection, facts: &Facts) -> rusqlite::Result<String> {
    write_section(conn, "iam_users", |s| {
        for (seq, u) in facts.users.iter().enumerate() {
            let times = [
                ts_opt(&u.created_at),
                ts_opt(&u.password_last_used_at),
                ts_opt(&u.password_last_changed_at),
            ];
            s.row(&[
                int(seq as i64),
                text(&u.account),
                text(&u.name),
                text(&u.arn),
                opt_text(times[0].as_deref()),
                flag(u.password_enabled),
                opt_text(times[1].as_deref()),
                opt_text(times[2].as_deref()),
            ])?;
        }
        Ok(())
    })
}

/// The findings, in evaluation order.
pub fn write_findings(conn: &Connection, findings: &[Finding]) -> rusqlite::Result<String> {
    write_section(conn, "findings", |s| {
        for (seq, f) in findings.iter().enumerate() {
            let evidence = json(&f.evidence)?;
            let waiver = f.waiver.as_ref().map(json).transpose()?;
            s.row(&[
                int(seq as i64),
                text(&f.fingerprint()),
                text(&f.rule),
                text(f.severity.as_str()),
                text(&f.credential),
                text(f.kind.as_str()),
                opt_text(f.account.as_deref()),
                opt_text(f.region.as_deref()),
                opt_text(f.owner.as_deref()),
                text(&f.message),
                text(&evidence),
                opt_text(waiver.as_deref()),
                opt_text(f.principal.as_deref()),
            ])?;
        }
        Ok(())
    })
}

/// The assessment as JSON: one row, or none for a run recorded with findings only.
pub fn write_assessment(conn: &Connection, json: Option<&str>) -> rusqlite::Result<String> {
    write_section(conn, "assessments", |s| match json {
        Some(json) => s.row(&[text(json)]),
        None => Ok(()),
    })
}

/// One raw evidence file of a run: its path in the bundle's `raw/` and the blob of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub path: String,
    pub sha256: String,
}

/// The list of raw files, by path; a path twice is refused.
pub fn write_raw_list(conn: &Connection, files: &[RawEntry]) -> rusqlite::Result<String> {
    let mut sorted: Vec<&RawEntry> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    if let Some(pair) = sorted.windows(2).find(|w| w[0].path == w[1].path) {
        return Err(invalid(format!("raw file {:?} twice", pair[0].path)));
    }
    write_section(conn, "raw_files", |s| {
        for file in sorted {
            s.row(&[text(&file.path), text(&file.sha256)])?;
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Reading sections back

/// One value of a section, owned.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

impl Cell {
    fn kind(&self) -> &'static str {
        match self {
            Cell::Null => "NULL",
            Cell::Int(_) => "an integer",
            Cell::Real(_) => "a real",
            Cell::Text(_) => "text",
            Cell::Blob(_) => "a blob",
        }
    }
}

/// Decodes a section's canonical stream row by row.
struct SectionReader<R: Read> {
    input: R,
    columns: &'static [&'static str],
    rows: u64,
}

impl<R: Read> SectionReader<R> {
    fn begin(input: R, table: &str) -> Result<Self, String> {
        let (name, columns, _) = canonical::table(table);
        let mut reader = SectionReader {
            input,
            columns,
            rows: 0,
        };
        reader.expect(b'T', name)?;
        for column in columns {
            reader.expect(b'C', column)?;
        }
        Ok(reader)
    }

    fn expect(&mut self, tag: u8, name: &str) -> Result<(), String> {
        match self.field()? {
            (t, bytes) if t == tag && bytes == name.as_bytes() => Ok(()),
            (t, _) => Err(format!(
                "expected field {:?} {name:?}, found a field tagged {:?}",
                tag as char, t as char
            )),
        }
    }

    fn field(&mut self) -> Result<(u8, Vec<u8>), String> {
        let mut head = [0u8; 9];
        self.input
            .read_exact(&mut head)
            .map_err(|e| format!("ends inside a field header ({e})"))?;
        let len = u64::from_be_bytes(head[1..].try_into().expect("8 bytes"));
        // Sized to the field up front (a million rows of short texts must not each carry the
        // spare capacity of a growing buffer), but read as the bytes arrive: a corrupt length
        // reserves at most 64 KiB and only reads to the end of the stream.
        let mut bytes = Vec::with_capacity(len.min(64 * 1024) as usize);
        (&mut self.input)
            .take(len)
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())?;
        if bytes.len() as u64 != len {
            return Err(format!("ends inside a field of {len} bytes"));
        }
        Ok((head[0], bytes))
    }

    /// The next row into `row`; `false` after the last.
    fn next_row(&mut self, row: &mut Vec<Cell>) -> Result<bool, String> {
        let (tag, bytes) = self.field()?;
        let count = || {
            <[u8; 8]>::try_from(bytes.as_slice())
                .map(u64::from_be_bytes)
                .ok()
        };
        match tag {
            b'E' if count() == Some(self.rows) => {
                let mut rest = [0u8; 1];
                match self.input.read(&mut rest).map_err(|e| e.to_string())? {
                    0 => Ok(false),
                    _ => Err("holds bytes after its end".into()),
                }
            }
            b'R' if count() == Some(self.rows) => {
                row.clear();
                for _ in self.columns {
                    row.push(self.cell()?);
                }
                self.rows += 1;
                Ok(true)
            }
            _ => Err(format!(
                "expected row {} or the end, found a field tagged {:?}",
                self.rows, tag as char
            )),
        }
    }

    fn cell(&mut self) -> Result<Cell, String> {
        let (tag, bytes) = self.field()?;
        let number = || <[u8; 8]>::try_from(bytes.as_slice()).map_err(|_| "a bad number");
        Ok(match tag {
            b'N' => Cell::Null,
            b'I' => Cell::Int(i64::from_be_bytes(number()?)),
            b'F' => Cell::Real(f64::from_bits(u64::from_be_bytes(number()?))),
            b'T' => Cell::Text(bytes),
            b'B' => Cell::Blob(bytes),
            other => return Err(format!("a value tagged {:?}", other as char)),
        })
    }
}

/// A decoded row, with typed access by column index (the table's column order).
struct Row<'r> {
    cells: &'r mut [Cell],
    columns: &'static [&'static str],
}

impl Row<'_> {
    fn wrong(&self, index: usize, wanted: &str) -> String {
        format!(
            "column {} holds {}, expected {wanted}",
            self.columns[index],
            self.cells[index].kind()
        )
    }

    fn opt_text(&mut self, index: usize) -> Result<Option<String>, String> {
        match std::mem::replace(&mut self.cells[index], Cell::Null) {
            Cell::Null => Ok(None),
            Cell::Text(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| format!("column {} is not UTF-8", self.columns[index])),
            other => {
                self.cells[index] = other;
                Err(self.wrong(index, "text"))
            }
        }
    }

    fn text(&mut self, index: usize) -> Result<String, String> {
        match self.cells[index] {
            Cell::Null => Err(self.wrong(index, "text")),
            _ => self.opt_text(index).map(Option::unwrap_or_default),
        }
    }

    fn opt_int(&self, index: usize) -> Result<Option<i64>, String> {
        match self.cells[index] {
            Cell::Null => Ok(None),
            Cell::Int(i) => Ok(Some(i)),
            _ => Err(self.wrong(index, "an integer")),
        }
    }

    fn int(&self, index: usize) -> Result<i64, String> {
        self.opt_int(index)?
            .ok_or_else(|| self.wrong(index, "an integer"))
    }

    fn opt_count<T: TryFrom<i64>>(&self, index: usize) -> Result<Option<T>, String> {
        self.opt_int(index)?
            .map(|i| T::try_from(i).map_err(|_| self.wrong(index, "a count in range")))
            .transpose()
    }

    fn flag(&self, index: usize) -> Result<bool, String> {
        Ok(self.int(index)? != 0)
    }

    fn opt_flag(&self, index: usize) -> Result<Option<bool>, String> {
        Ok(self.opt_int(index)?.map(|i| i != 0))
    }

    fn opt_ts(&mut self, index: usize) -> Result<Option<Timestamp>, String> {
        self.opt_text(index)?
            .map(|s| {
                chrono::DateTime::parse_from_rfc3339(&s)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .map_err(|e| format!("column {}: {s:?} is no time: {e}", self.columns[index]))
            })
            .transpose()
    }

    fn ts(&mut self, index: usize) -> Result<Timestamp, String> {
        self.opt_ts(index)?
            .ok_or_else(|| self.wrong(index, "a time"))
    }

    fn parse<T: std::str::FromStr>(&mut self, index: usize) -> Result<T, String> {
        let s = self.text(index)?;
        s.parse()
            .map_err(|_| format!("column {}: unexpected value {s:?}", self.columns[index]))
    }

    fn opt_parse<T: std::str::FromStr>(&mut self, index: usize) -> Result<Option<T>, String> {
        match self.cells[index] {
            Cell::Null => Ok(None),
            _ => self.parse(index).map(Some),
        }
    }

    fn json<T: serde::de::DeserializeOwned>(&mut self, index: usize) -> Result<T, String> {
        let s = self.text(index)?;
        serde_json::from_str(&s).map_err(|e| format!("column {}: {e}", self.columns[index]))
    }
}

/// The blob of a run's section, `None` when the run has no section of `table`.
pub fn section_blob(
    conn: &Connection,
    run_id: i64,
    table: &str,
) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT blob FROM run_sections WHERE run_id = ?1 AND name = ?2")?
        .query_row(params![run_id, table], |r| r.get(0))
        .optional()
}

/// Decodes every row of a run's section of `table` (none without one) with `decode`.
fn rows<T>(
    conn: &Connection,
    run_id: i64,
    table: &str,
    mut decode: impl FnMut(&mut Row) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let at = |why: String| format!("run {run_id}, section {table}: {why}");
    let Some(blob) = section_blob(conn, run_id, table).map_err(|e| at(e.to_string()))? else {
        return Ok(Vec::new());
    };
    let reader = BlobReader::open(conn, &blob, false)
        .map_err(|e| at(e.to_string()))?
        .ok_or_else(|| at(format!("its blob {blob} is not stored")))?;
    let mut section = SectionReader::begin(reader, table).map_err(at)?;
    let mut cells = Vec::new();
    let mut out = Vec::new();
    while section.next_row(&mut cells).map_err(at)? {
        let mut row = Row {
            cells: &mut cells,
            columns: section.columns,
        };
        let index = out.len();
        out.push(decode(&mut row).map_err(|why| at(format!("row {index}: {why}")))?);
    }
    // Rows are many (a year of rotation history is a million events): no spare capacity.
    out.shrink_to_fit();
    Ok(out)
}

/// The facts stored for a run.
pub fn read_facts(conn: &Connection, run_id: i64) -> Result<Facts, String> {
    let policy_json = rows(conn, run_id, "run_policy", |r| r.text(0))?
        .pop()
        .ok_or_else(|| format!("run {run_id} has no policy"))?;
    let policy: Policy =
        serde_json::from_str(&policy_json).map_err(|e| format!("run {run_id}, its policy: {e}"))?;
    // Checks the rule options and fills those an older credaudit did not store with defaults.
    let policy =
        RuleOptions::normalised(&policy).map_err(|e| format!("run {run_id}, its policy: {e}"))?;
    let (usage, auth_windows) = read_usage(conn, run_id)?;
    Ok(Facts {
        users: rows(conn, run_id, "iam_users", user)?,
        waivers: rows(conn, run_id, "waivers", waiver)?,
        usage,
        auth_windows,
        inventory: Inventory {
            policy,
            owners: rows(conn, run_id, "owners", owner)?,
            credentials: rows(conn, run_id, "declared_credentials", declared)?,
        },
        observed: rows(conn, run_id, "observed_credentials", observed)?,
        events: rows(conn, run_id, "rotation_events", event)?,
        coverage: rows(conn, run_id, "coverage", coverage)?,
    })
}

fn observed(r: &mut Row) -> Result<ObservedCredential, String> {
    Ok(ObservedCredential {
        id: r.text(1)?,
        kind: r.parse(2)?,
        account: r.text(3)?,
        region: r.text(4)?,
        name: r.text(5)?,
        status: if r.text(6)? == "inactive" {
            KeyStatus::Inactive
        } else {
            KeyStatus::Active
        },
        created_at: r.opt_ts(7)?,
        last_rotated_at: r.opt_ts(8)?,
        last_used_at: r.opt_ts(9)?,
        last_used_region: r.opt_text(10)?,
        last_used_service: r.opt_text(11)?,
        rotation_enabled: r.opt_flag(12)?,
        rotation_interval_days: r.opt_count(13)?,
        schedule_expression: r.opt_text(14)?,
        next_rotation_at: r.opt_ts(15)?,
        last_changed_at: r.opt_ts(16)?,
        pending_version: r.flag(17)?,
        tags: r.json(18)?,
        password_enabled: r.flag(19)?,
    })
}

fn declared(r: &mut Row) -> Result<DeclaredCredential, String> {
    Ok(DeclaredCredential {
        id: r.text(1)?,
        kind: r.parse(2)?,
        class: r.opt_parse(3)?,
        owner: r.opt_text(4)?,
        consumers: r.json(5)?,
        automated: r.flag(6)?,
        interval_days: r.opt_count(7)?,
        max_uses: r.opt_int(8)?.map(|m| m as u64),
        account: r.opt_text(9)?,
        description: r.opt_text(10)?,
        line: r.int(11)? as usize,
    })
}

fn owner(r: &mut Row) -> Result<Owner, String> {
    Ok(Owner {
        id: r.text(1)?,
        name: r.opt_text(2)?,
        email: r.opt_text(3)?,
        status: if r.text(4)? == "departed" {
            OwnerStatus::Departed
        } else {
            OwnerStatus::Active
        },
    })
}

fn event(r: &mut Row) -> Result<RotationEvent, String> {
    Ok(RotationEvent {
        time: r.ts(1)?,
        credential_id: r.text(2)?,
        event_type: r.parse(3)?,
        trigger: r.opt_parse(4)?,
        fingerprint: r.opt_text(5)?,
        details: r.opt_text(6)?,
        source: r.text(7)?,
    })
}

fn coverage(r: &mut Row) -> Result<CoverageEntry, String> {
    Ok(CoverageEntry {
        account: r.text(1)?,
        region: r.text(2)?,
        api: r.text(3)?,
        ok: r.flag(4)?,
        error: r.opt_text(5)?,
        records: r.int(6)? as u64,
    })
}

fn waiver(r: &mut Row) -> Result<Waiver, String> {
    Ok(Waiver {
        rule: r.text(1)?,
        credential: r.text(2)?,
        reason: r.text(3)?,
        approver: r.text(4)?,
        ticket: r.text(5)?,
        expires: r.ts(6)?,
        line: r.int(7)? as usize,
    })
}

fn user(r: &mut Row) -> Result<IamUser, String> {
    Ok(IamUser {
        account: r.text(1)?,
        name: r.text(2)?,
        arn: r.text(3)?,
        created_at: r.opt_ts(4)?,
        password_enabled: r.flag(5)?,
        password_last_used_at: r.opt_ts(6)?,
        password_last_changed_at: r.opt_ts(7)?,
    })
}

/// A run's CloudTrail usage aggregates: hourly buckets and authentication-failure windows.
pub fn read_usage(
    conn: &Connection,
    run_id: i64,
) -> Result<(Vec<UsageBucket>, Vec<AuthWindow>), String> {
    let usage = rows(conn, run_id, "usage_buckets", |r| {
        let detail: UsageDetail = r.json(5)?;
        Ok(UsageBucket {
            credential_id: r.text(0)?,
            hour: r.ts(1)?,
            calls: r.int(2)? as u64,
            errors: r.int(3)? as u64,
            auth_errors: r.int(4)? as u64,
            source_ips: detail.source_ips,
            regions: detail.regions,
            operations: detail.operations,
            error_codes: detail.error_codes,
        })
    })?;
    let windows = rows(conn, run_id, "auth_windows", |r| {
        Ok(AuthWindow {
            credential_id: r.text(0)?,
            start: r.ts(1)?,
            calls: r.int(2)? as u64,
            auth_errors: r.int(3)? as u64,
        })
    })?;
    Ok((usage, windows))
}

/// The findings stored for a run, in evaluation order.
pub fn read_findings(conn: &Connection, run_id: i64) -> Result<Vec<Finding>, String> {
    rows(conn, run_id, "findings", |r| {
        Ok(Finding {
            rule: r.text(2)?,
            severity: r.parse(3)?,
            credential: r.text(4)?,
            kind: r.parse(5)?,
            account: r.opt_text(6)?,
            region: r.opt_text(7)?,
            owner: r.opt_text(8)?,
            principal: r.opt_text(12)?,
            message: r.text(9)?,
            evidence: r.json(10)?,
            waiver: match r.opt_text(11)? {
                Some(json) => Some(serde_json::from_str(&json).map_err(|e| e.to_string())?),
                None => None,
            },
        })
    })
}

/// The assessment JSON stored with a run, if any.
pub fn read_assessment_json(conn: &Connection, run_id: i64) -> Result<Option<String>, String> {
    Ok(rows(conn, run_id, "assessments", |r| r.text(0))?.pop())
}

/// The raw files of a run, by path.
pub fn read_raw_list(conn: &Connection, run_id: i64) -> Result<Vec<RawEntry>, String> {
    rows(conn, run_id, "raw_files", |r| {
        Ok(RawEntry {
            path: r.text(0)?,
            sha256: r.text(1)?,
        })
    })
}

// ---------------------------------------------------------------------------------------------
// The conversion of schema version 5's tables

/// Moves every run's rows from the tables of schema version 5 into sections, byte for byte the
/// streams hash versions 2 to 4 hashed, and raw file contents into blobs; then drops the
/// tables. A run gets a section for every table its hash version covers, and for any other
/// table that holds rows of it (verify names those); rows of a run that is not in `runs` are
/// converted too, so verify still names them.
pub fn convert_tables(conn: &Connection) -> rusqlite::Result<()> {
    let mut runs: std::collections::BTreeMap<i64, Option<i64>> = conn
        .prepare("SELECT id, hash_version FROM runs")?
        .query_map([], |r| Ok((r.get(0)?, Some(r.get(1)?))))?
        .collect::<rusqlite::Result<_>>()?;
    for (table, _, _) in TABLES {
        let ids: Vec<i64> = conn
            .prepare(&format!("SELECT DISTINCT run_id FROM {table}"))?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for id in ids {
            runs.entry(id).or_insert(None);
        }
    }
    for (&run_id, &version) in &runs {
        for (table, _, _) in TABLES {
            let rows: i64 = conn.query_row(
                &format!("SELECT COUNT(*) FROM {table} WHERE run_id = ?1"),
                [run_id],
                |r| r.get(0),
            )?;
            if rows == 0 && !version.is_some_and(|v| canonical::covers(v, table)) {
                continue;
            }
            if *table == "raw_files" {
                convert_raw_contents(conn, run_id)?;
            }
            let mut writer = BlobWriter::new(conn);
            canonical::table_section(conn, run_id, table, &mut writer)?;
            let (blob, _) = writer.finish()?;
            conn.execute(
                "INSERT INTO run_sections (run_id, name, blob) VALUES (?1, ?2, ?3)",
                params![run_id, table, blob],
            )?;
        }
    }
    for (table, _, _) in TABLES {
        conn.execute_batch(&format!("DROP TABLE {table}"))?;
    }
    Ok(())
}

/// Each raw file's content of a run as a blob (named by its bytes: a content that does not
/// match its recorded SHA-256 leaves that name without a blob, which verify reports).
fn convert_raw_contents(conn: &Connection, run_id: i64) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare("SELECT content FROM raw_files WHERE run_id = ?1")?;
    let mut rows = stmt.query([run_id])?;
    while let Some(row) = rows.next()? {
        let mut writer = BlobWriter::new(conn);
        match row.get_ref(0)? {
            ValueRef::Blob(bytes) | ValueRef::Text(bytes) => writer.put(bytes)?,
            _ => {}
        }
        writer.finish()?;
    }
    Ok(())
}
