//! The IAM credential report: the CSV exactly as AWS returns it, either as a file of its own or
//! inside `aws iam get-credential-report` output (`Content`, base64 or plain text).

use std::path::Path;
use std::rc::Rc;

use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

use super::awsjson::{self, Site, quote};
use super::input::{Budgeted, LimitExceeded, Limits, RecordBudget};
use crate::error::{Error, Result};
use crate::model::Timestamp;

/// The user name AWS gives the root user's row.
pub const ROOT_USER: &str = "<root_account>";

/// The 22 columns of the report, in AWS's order. All must be present; extra ones are ignored.
pub const COLUMNS: [&str; 22] = [
    "user",
    "arn",
    "user_creation_time",
    "password_enabled",
    "password_last_used",
    "password_last_changed",
    "password_next_rotation",
    "mfa_active",
    "access_key_1_active",
    "access_key_1_last_rotated",
    "access_key_1_last_used_date",
    "access_key_1_last_used_region",
    "access_key_1_last_used_service",
    "access_key_2_active",
    "access_key_2_last_rotated",
    "access_key_2_last_used_date",
    "access_key_2_last_used_region",
    "access_key_2_last_used_service",
    "cert_1_active",
    "cert_1_last_rotated",
    "cert_2_active",
    "cert_2_last_rotated",
];

/// One user's row, reduced to what credaudit uses.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
    /// Line of the row in the CSV (1 is the header).
    pub line: u64,
    pub user: String,
    pub arn: String,
    /// `user_creation_time`.
    pub created_at: Option<Timestamp>,
    pub password_enabled: bool,
    /// `password_last_used` (absent: never used, or no password).
    pub password_last_used: Option<Timestamp>,
    /// `password_last_changed` (absent: no password).
    pub password_last_changed: Option<Timestamp>,
    /// Access key slots 1 and 2.
    pub keys: [ReportKey; 2],
}

impl ReportRow {
    /// Whether this is the `<root_account>` row.
    pub fn is_root(&self) -> bool {
        self.user == ROOT_USER
    }
}

/// One access key slot of a row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReportKey {
    pub active: bool,
    pub last_rotated: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub last_used_region: Option<String>,
    pub last_used_service: Option<String>,
}

/// How a listed access key finds its slot in its user's report row. The report names slots,
/// not key ids: a slot's `last_rotated` is the creation time of the key in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SlotMatch<'a> {
    /// Exactly one slot was rotated when the key was created.
    Unique(&'a ReportKey),
    /// Both slots were rotated in that second (two keys made together) and disagree on last
    /// use: which is the key's cannot be told from the report.
    Ambiguous([&'a ReportKey; 2]),
    /// No slot was rotated then (the key is newer than the report, or the user is not in it).
    None,
}

/// The slot of the key created at `created` (compared to the second, as the report prints it).
pub fn slot_of_key(row: &ReportRow, created: Timestamp) -> SlotMatch<'_> {
    let second = created.timestamp();
    let matching: Vec<&ReportKey> = row
        .keys
        .iter()
        .filter(|slot| slot.last_rotated.map(|t| t.timestamp()) == Some(second))
        .collect();
    match matching.as_slice() {
        [] => SlotMatch::None,
        [one] => SlotMatch::Unique(one),
        [a, b] if same_last_use(a, b) => SlotMatch::Unique(a),
        [a, b] => SlotMatch::Ambiguous([a, b]),
        _ => unreachable!("a row has two slots"),
    }
}

fn same_last_use(a: &ReportKey, b: &ReportKey) -> bool {
    a.last_used_at == b.last_used_at
        && a.last_used_region == b.last_used_region
        && a.last_used_service == b.last_used_service
}

/// Reads `credential-report.csv` with the default [`Limits`].
pub fn parse_csv_file(file: &Path, text: &str) -> Result<Vec<ReportRow>> {
    parse_csv_file_with(file, text, &Limits::default())
}

/// Reads `credential-report.csv`; a row (the header included) longer than
/// `limits.max_record_bytes` is refused naming the line and `--max-record-size`, before it is
/// held whole.
pub fn parse_csv_file_with(file: &Path, text: &str, limits: &Limits) -> Result<Vec<ReportRow>> {
    parse_csv(file, "", text, limits)
}

/// `aws iam get-credential-report` output. Other members (and any unknown ones) are ignored.
#[derive(Deserialize)]
struct GetCredentialReportOutput {
    #[serde(rename = "Content")]
    content: Option<Value>,
    #[serde(rename = "GeneratedTime")]
    generated_time: Option<Value>,
    #[serde(rename = "ReportFormat")]
    report_format: Option<Value>,
}

/// Reads `get-credential-report.json` with the default [`Limits`].
pub fn parse_json_file(file: &Path, text: &str) -> Result<Vec<ReportRow>> {
    parse_json_file_with(file, text, &Limits::default())
}

/// Reads `get-credential-report.json`: `Content` holds the CSV, base64-encoded as the API returns
/// it or already decoded; its rows are capped as in [`parse_csv_file_with`].
pub fn parse_json_file_with(file: &Path, text: &str, limits: &Limits) -> Result<Vec<ReportRow>> {
    let output: GetCredentialReportOutput = awsjson::from_file_text(file, text)?;
    let site = Site::new(file, "");
    site.optional_date("GeneratedTime", output.generated_time)?;
    if let Some(format) = site.optional_str("ReportFormat", output.report_format)? {
        if format != "text/csv" {
            return Err(site.error(
                "ReportFormat",
                format!("expected \"text/csv\", found {}", quote(&format)),
            ));
        }
    }
    let content = site.required_str("Content", output.content)?;
    let csv_text = decode_content(&content).ok_or_else(|| {
        site.error(
            "Content",
            "expected the credential report CSV, plain or base64-encoded",
        )
    })?;
    parse_csv(file, "Content, ", &csv_text, limits)
}

/// The CSV text from `Content`: as is when it already starts with the header, else base64.
fn decode_content(content: &str) -> Option<String> {
    let looks_like_csv = |text: &str| text.trim_start_matches('\u{feff}').starts_with("user,");
    if looks_like_csv(content) {
        return Some(content.to_string());
    }
    let compact: String = content
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    looks_like_csv(&text).then_some(text)
}

/// Column positions of the fields read, found by name in the header.
struct Columns {
    user: usize,
    arn: usize,
    created: usize,
    password_enabled: usize,
    password_last_used: usize,
    password_last_changed: usize,
    keys: [KeyColumns; 2],
    header_len: usize,
}

struct KeyColumns {
    active: usize,
    last_rotated: usize,
    last_used_date: usize,
    last_used_region: usize,
    last_used_service: usize,
}

fn parse_csv(file: &Path, prefix: &str, text: &str, limits: &Limits) -> Result<Vec<ReportRow>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Each row's bytes count against the record limit as the reader takes them (give or take
    // the reader's buffer), so a row of a million columns stops at the limit.
    let budget = RecordBudget::new(limits.max_record_bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(Budgeted {
            inner: text.as_bytes(),
            budget: Rc::clone(&budget),
        });
    let header = reader
        .headers()
        .map_err(|e| csv_error(file, prefix, &e))?
        .clone();
    if header.iter().all(str::is_empty) {
        return Err(Error::input(
            file,
            format!("{prefix}line 1"),
            format!(
                "empty; expected the credential report header ({})",
                COLUMNS.join(",")
            ),
        ));
    }
    let find = |name: &str| -> Result<usize> {
        header.iter().position(|column| column == name).ok_or_else(|| {
            Error::input(
                file,
                format!("{prefix}line 1"),
                format!(
                    "the header lacks the column {name:?}; expected the credential report columns {}",
                    COLUMNS.join(",")
                ),
            )
        })
    };
    // Check every column, so a report of another shape is refused even where we read nothing.
    for name in COLUMNS {
        find(name)?;
    }
    let key = |n: u8| -> Result<KeyColumns> {
        Ok(KeyColumns {
            active: find(&format!("access_key_{n}_active"))?,
            last_rotated: find(&format!("access_key_{n}_last_rotated"))?,
            last_used_date: find(&format!("access_key_{n}_last_used_date"))?,
            last_used_region: find(&format!("access_key_{n}_last_used_region"))?,
            last_used_service: find(&format!("access_key_{n}_last_used_service"))?,
        })
    };
    let columns = Columns {
        user: find("user")?,
        arn: find("arn")?,
        created: find("user_creation_time")?,
        password_enabled: find("password_enabled")?,
        password_last_used: find("password_last_used")?,
        password_last_changed: find("password_last_changed")?,
        keys: [key(1)?, key(2)?],
        header_len: header.len(),
    };

    let mut rows: Vec<ReportRow> = Vec::new();
    // A user's first line: AWS writes one row per user, and two rows that disagree would leave
    // the evidence ambiguous.
    let mut first_line: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let mut record = csv::StringRecord::new();
    loop {
        budget.start();
        let next_line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) if csv_limit(&e).is_some() => {
                return Err(csv_error_at(file, prefix, &e, next_line));
            }
            Err(e) => return Err(csv_error(file, prefix, &e)),
        }
        let line = record.position().map_or(0, |p| p.line());
        let row = parse_row(file, prefix, &columns, &record, line)?;
        if let Some(first) = first_line.insert(row.user.clone(), line) {
            return Err(Error::input(
                file,
                format!("{prefix}line {line} (user {})", quote(&row.user)),
                format!(
                    "the user is listed twice (also at line {first}); expected one row per user"
                ),
            ));
        }
        rows.push(row);
    }
    Ok(rows)
}

fn parse_row(
    file: &Path,
    prefix: &str,
    columns: &Columns,
    record: &csv::StringRecord,
    line: u64,
) -> Result<ReportRow> {
    if record.len() != columns.header_len {
        return Err(Error::input(
            file,
            format!("{prefix}line {line}"),
            format!(
                "expected {} fields as in the header, found {}",
                columns.header_len,
                record.len()
            ),
        ));
    }
    // Safe: the length matches the header, and every index came from the header.
    let field = |index: usize| record.get(index).unwrap_or_default();
    let user = field(columns.user).to_string();
    let cell = Cell {
        file,
        location: format!("{prefix}line {line}"),
        user: &user,
    };
    if user.is_empty() {
        return Err(cell.error("user", "expected a user name, found an empty field"));
    }
    let arn = field(columns.arn).to_string();
    if arn.is_empty() {
        return Err(cell.error("arn", "expected the user's ARN, found an empty field"));
    }
    let password_enabled = cell
        .boolean("password_enabled", field(columns.password_enabled))?
        .unwrap_or(false);
    let created_at = cell.date("user_creation_time", field(columns.created))?;
    let password_last_used = cell.date("password_last_used", field(columns.password_last_used))?;
    let password_last_changed = cell.date(
        "password_last_changed",
        field(columns.password_last_changed),
    )?;
    let mut keys: [ReportKey; 2] = Default::default();
    for (slot, (key, key_columns)) in keys.iter_mut().zip(&columns.keys).enumerate() {
        let n = slot + 1;
        *key = ReportKey {
            active: cell
                .boolean(&format!("access_key_{n}_active"), field(key_columns.active))?
                .unwrap_or(false),
            last_rotated: cell.date(
                &format!("access_key_{n}_last_rotated"),
                field(key_columns.last_rotated),
            )?,
            last_used_at: cell.date(
                &format!("access_key_{n}_last_used_date"),
                field(key_columns.last_used_date),
            )?,
            last_used_region: text(field(key_columns.last_used_region)),
            last_used_service: text(field(key_columns.last_used_service)),
        };
    }
    Ok(ReportRow {
        line,
        user,
        arn,
        created_at,
        password_enabled,
        password_last_used,
        password_last_changed,
        keys,
    })
}

/// Whether a report value means "absent".
fn is_absent(value: &str) -> bool {
    matches!(value, "" | "N/A" | "not_supported" | "no_information")
}

fn text(value: &str) -> Option<String> {
    (!is_absent(value)).then(|| value.to_string())
}

/// A row being read, for error messages naming the line, column and user.
struct Cell<'a> {
    file: &'a Path,
    location: String,
    user: &'a str,
}

impl Cell<'_> {
    fn error(&self, column: &str, message: impl Into<String>) -> Error {
        let user = if self.user.is_empty() {
            String::new()
        } else {
            format!(" (user {})", quote(self.user))
        };
        Error::input(
            self.file,
            format!("{}, {column}{user}", self.location),
            message,
        )
    }

    fn boolean(&self, column: &str, value: &str) -> Result<Option<bool>> {
        match value {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            value if is_absent(value) => Ok(None),
            value => Err(self.error(
                column,
                format!("expected true, false or N/A, found {}", quote(value)),
            )),
        }
    }

    fn date(&self, column: &str, value: &str) -> Result<Option<Timestamp>> {
        if is_absent(value) {
            return Ok(None);
        }
        awsjson::parse_date_str(value)
            .map(Some)
            .map_err(|message| self.error(column, message))
    }
}

/// The limit a CSV read error reports, if it is one.
fn csv_limit(error: &csv::Error) -> Option<LimitExceeded> {
    match error.kind() {
        csv::ErrorKind::Io(io) => LimitExceeded::of(io),
        _ => None,
    }
}

/// [`csv_error`] for an error that knows no position, placed at `line`.
fn csv_error_at(file: &Path, prefix: &str, error: &csv::Error, line: u64) -> Error {
    match error.position() {
        Some(_) => csv_error(file, prefix, error),
        None => Error::input(file, format!("{prefix}line {line}"), csv_message(error)),
    }
}

fn csv_error(file: &Path, prefix: &str, error: &csv::Error) -> Error {
    let location = match error.position() {
        Some(position) => format!("{prefix}line {}", position.line()),
        // The header is the only record read without a position of its own.
        None if csv_limit(error).is_some() => format!("{prefix}line 1"),
        None => format!("{prefix}line ?"),
    };
    Error::input(file, location, csv_message(error))
}

fn csv_message(error: &csv::Error) -> String {
    if let Some(exceeded) = csv_limit(error) {
        return exceeded.to_string();
    }
    match error.kind() {
        csv::ErrorKind::Utf8 { .. } => "expected UTF-8 text".to_string(),
        _ => format!("unreadable CSV: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";
    const BOB: &str = "bob,arn:aws:iam::111111111111:user/bob,2020-01-01T00:00:00+00:00,true,2024-04-01T10:00:00+00:00,2020-01-01T00:00:00+00:00,N/A,false,true,2024-01-01T00:00:00+00:00,2024-04-30T12:00:00+00:00,us-east-1,s3,false,2023-01-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,false,N/A";

    fn file() -> &'static Path {
        Path::new("credential-report.csv")
    }

    #[test]
    fn reads_rows_and_slots() {
        let rows = parse_csv_file(file(), &format!("{HEADER}\n{BOB}\n")).unwrap();
        assert_eq!(rows.len(), 1);
        let bob = &rows[0];
        assert_eq!(bob.line, 2);
        assert_eq!(bob.user, "bob");
        assert!(bob.password_enabled);
        assert!(bob.keys[0].active);
        assert_eq!(
            bob.keys[0].last_used_at.unwrap().to_rfc3339(),
            "2024-04-30T12:00:00+00:00"
        );
        assert_eq!(bob.keys[0].last_used_region.as_deref(), Some("us-east-1"));
        assert_eq!(bob.keys[0].last_used_service.as_deref(), Some("s3"));
        assert!(!bob.keys[1].active);
        assert!(bob.keys[1].last_rotated.is_some());
        assert_eq!(bob.keys[1].last_used_at, None);
        assert_eq!(bob.keys[1].last_used_region, None);
    }

    #[test]
    fn missing_column_is_named() {
        let header = HEADER.replace(",mfa_active", "");
        let err = parse_csv_file(file(), &format!("{header}\n")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(
                "credential-report.csv: line 1: the header lacks the column \"mfa_active\""
            ),
            "{text}"
        );
    }

    #[test]
    fn row_with_missing_fields_names_the_line() {
        let short = BOB.rsplitn(3, ',').nth(2).unwrap();
        let err = parse_csv_file(file(), &format!("{HEADER}\n{BOB}\n{short}\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "credential-report.csv: line 3: expected 22 fields as in the header, found 20"
        );
    }

    #[test]
    fn bad_values_name_line_column_and_user() {
        let bad = BOB.replace("2024-01-01T00:00:00+00:00", "2024-02-30T00:00:00+00:00");
        let err = parse_csv_file(file(), &format!("{HEADER}\n{bad}\n")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(
                "credential-report.csv: line 2, access_key_1_last_rotated (user \"bob\"): \"2024-02-30T00:00:00+00:00\" is not a real date"
            ),
            "{text}"
        );
        let bad = BOB.replacen(",true,", ",yes,", 1);
        let err = parse_csv_file(file(), &format!("{HEADER}\n{bad}\n")).unwrap_err();
        assert!(err.to_string().contains("line 2, password_enabled (user \"bob\"): expected true, false or N/A, found \"yes\""), "{err}");
    }

    #[test]
    fn a_row_over_the_record_limit_stops_at_the_limit_naming_its_line() {
        let limits = Limits {
            max_record_bytes: 64 << 10,
            ..Limits::default()
        };
        // A million columns: refused long before the row is held whole.
        let wide = format!("{HEADER}\n{BOB}\n{}\n", ",".repeat(1_000_000));
        let err = parse_csv_file_with(file(), &wide, &limits)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("credential-report.csv: line 3: one record over the 64 KiB limit"),
            "{err}"
        );
        assert!(err.contains("--max-record-size"), "{err}");
        // A quoted field spanning many short lines is one record too.
        let tall = format!("{HEADER}\n\"{}\n", "x\n".repeat(40_000));
        let err = parse_csv_file_with(file(), &tall, &limits)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2: one record over"), "{err}");
        // So is a header of a million columns.
        let header = format!("{HEADER}{}\n{BOB}\n", ",c".repeat(1_000_000));
        let err = parse_csv_file_with(file(), &header, &limits)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1: one record over"), "{err}");
        // Rows within the limit read as before, and the default limit is the library's.
        let rows = parse_csv_file_with(file(), &format!("{HEADER}\n{BOB}\n"), &limits).unwrap();
        assert_eq!(rows.len(), 1);
        let json = serde_json::json!({ "Content": wide });
        let err = parse_json_file_with(Path::new("g.json"), &json.to_string(), &limits)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Content, line 3: one record over"), "{err}");
    }

    #[test]
    fn empty_report_is_refused() {
        let err = parse_csv_file(file(), "").unwrap_err();
        assert!(err.to_string().contains("line 1: empty"), "{err}");
    }

    #[test]
    fn json_content_may_be_base64_or_plain() {
        let csv = format!("{HEADER}\n{BOB}\n");
        let encoded = base64::engine::general_purpose::STANDARD.encode(&csv);
        let json = serde_json::json!({"Content": encoded, "ReportFormat": "text/csv", "GeneratedTime": "2024-05-01T00:00:00Z"});
        let from_base64 = parse_json_file(Path::new("g.json"), &json.to_string()).unwrap();
        let json = serde_json::json!({"Content": csv});
        let from_plain = parse_json_file(Path::new("g.json"), &json.to_string()).unwrap();
        assert_eq!(from_base64, from_plain);
        assert_eq!(from_plain[0].user, "bob");

        let json = serde_json::json!({"Content": "bm90IGEgcmVwb3J0"});
        let err = parse_json_file(Path::new("g.json"), &json.to_string()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "g.json: Content: expected the credential report CSV, plain or base64-encoded"
        );
        let json =
            serde_json::json!({"Content": format!("{HEADER}\n{}", BOB.replace(",s3,", ",s3,x,"))});
        let err = parse_json_file(Path::new("g.json"), &json.to_string()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "g.json: Content, line 2: expected 22 fields as in the header, found 23"
        );
    }
}
