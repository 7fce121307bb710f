//! Reading AWS CLI JSON output: the date forms AWS prints (ISO-8601 strings, epoch numbers),
//! files that hold one output or an array of them, and typed access to the members we use with
//! errors that name the file and the record path (`SecretList[2].LastRotatedDate`).
//!
//! Records are deserialized into structs whose used members are `Option<Value>` and whose other
//! members are skipped by serde without being stored, so a `SecretString` that found its way into
//! a file is never held in memory as a value.

use std::fmt;
use std::marker::PhantomData;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::Timestamp;

/// Latest epoch second accepted (9999-12-31T23:59:59Z); larger numbers are most likely
/// milliseconds, which AWS CLI output never uses.
const MAX_EPOCH_SECONDS: i64 = 253_402_300_799;

/// Parses a date as AWS prints it in JSON: an ISO-8601 / RFC 3339 string with `Z` or an offset
/// (fractional seconds optional), or epoch seconds as a number (fraction optional).
///
/// The error is a message saying what was expected; callers add the file and field.
pub fn parse_date(value: &Value) -> Result<Timestamp, String> {
    match value {
        Value::String(text) => parse_date_str(text),
        Value::Number(number) => parse_epoch(number),
        other => Err(format!(
            "expected a date (ISO-8601 string or epoch seconds), found {}",
            describe(other)
        )),
    }
}

/// Parses an ISO-8601 / RFC 3339 date-time with `Z` or a numeric offset, e.g.
/// `2019-10-17T15:47:00.587000-06:00`, `2018-11-23T16:01:14+00:00`, `2024-01-02T03:04:05Z`.
/// An offset written without a colon (`+0000`) is accepted too. A date-time without an offset is
/// refused: it does not say which instant it means.
pub fn parse_date_str(text: &str) -> Result<Timestamp, String> {
    let parsed = DateTime::parse_from_rfc3339(text).or_else(|first| {
        DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z").map_err(|_| first)
    });
    match parsed {
        Ok(date) => Ok(date.with_timezone(&Utc)),
        Err(e) if e.kind() == chrono::format::ParseErrorKind::OutOfRange => Err(format!(
            "{} is not a real date and time (no such day, hour or offset)",
            quote(text)
        )),
        Err(_) => Err(format!(
            "expected an ISO-8601 date-time with Z or an offset (e.g. 2024-05-01T12:00:00Z), found {}",
            quote(text)
        )),
    }
}

/// Parses epoch seconds such as `1525747253.72`. The decimal text is read exactly (no float
/// rounding), so `1525747253.72` is 720 ms past the second.
fn parse_epoch(number: &serde_json::Number) -> Result<Timestamp, String> {
    let text = number.to_string();
    let out_of_range = || {
        format!(
            "epoch seconds {text} are out of range (expected seconds since 1970 up to year 9999, not milliseconds)"
        )
    };
    let (seconds, nanos) = if let Some(seconds) = number.as_i64() {
        (seconds, 0)
    } else if let Some((whole, fraction)) =
        text.split_once('.').filter(|_| !text.contains(['e', 'E']))
    {
        let seconds: i64 = whole.parse().map_err(|_| out_of_range())?;
        let digits: String = fraction
            .chars()
            .chain("000000000".chars())
            .take(9)
            .collect();
        let nanos: u32 = digits.parse().map_err(|_| out_of_range())?;
        (seconds, nanos)
    } else {
        // Exponent form or a huge integer: fall back to the float value.
        let float = number.as_f64().ok_or_else(out_of_range)?;
        if !float.is_finite() || float < 0.0 || float > MAX_EPOCH_SECONDS as f64 {
            return Err(out_of_range());
        }
        let seconds = float.floor();
        let nanos = ((float - seconds) * 1e9).round().min(999_999_999.0);
        (seconds as i64, nanos as u32)
    };
    if !(0..=MAX_EPOCH_SECONDS).contains(&seconds) || text.starts_with('-') {
        return Err(out_of_range());
    }
    DateTime::from_timestamp(seconds, nanos).ok_or_else(out_of_range)
}

/// A short description of a JSON value for error messages: its type, and for scalars the value.
pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {}", quote(s)),
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}

/// Quotes an untrusted string for an error message: escaped (no control characters reach the
/// terminal) and cut to a readable length.
pub fn quote(text: &str) -> String {
    const MAX_CHARS: usize = 80;
    if text.chars().count() > MAX_CHARS {
        let cut: String = text.chars().take(MAX_CHARS).collect();
        format!("{:?}…", cut)
    } else {
        format!("{text:?}")
    }
}

/// Parses a whole JSON file into `T`, mapping a syntax or shape error to an input error that
/// names the file, line and column.
pub fn from_file_text<T: for<'de> Deserialize<'de>>(file: &Path, text: &str) -> Result<T> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    serde_json::from_str(text).map_err(|e| json_error(file, &e))
}

/// An input error for a serde_json failure: location `line L column C`, and a message without
/// serde_json's own position suffix.
pub fn json_error(file: &Path, error: &serde_json::Error) -> Error {
    let location = format!("line {} column {}", error.line(), error.column());
    let full = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    let detail = full.strip_suffix(&suffix).unwrap_or(&full);
    let message = match error.classify() {
        serde_json::error::Category::Eof => {
            format!("the JSON ends early; the file looks truncated ({detail})")
        }
        serde_json::error::Category::Syntax => format!("invalid JSON: {detail}"),
        serde_json::error::Category::Data => format!("unexpected JSON shape: {detail}"),
        serde_json::error::Category::Io => format!("could not read JSON: {detail}"),
    };
    Error::input(file, location, message)
}

/// A file holding either one CLI output object or an array of them (one per page or per call).
#[derive(Debug)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    /// The outputs with the path prefix that locates each in the file: `""` for a lone object,
    /// `"[i]."` for the elements of an array.
    pub fn with_prefixes(self) -> Vec<(String, T)> {
        match self {
            OneOrMany::One(item) => vec![(String::new(), item)],
            OneOrMany::Many(items) => items
                .into_iter()
                .enumerate()
                .map(|(index, item)| (format!("[{index}]."), item))
                .collect(),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OneOrManyVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for OneOrManyVisitor<T> {
            type Value = OneOrMany<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object or an array of objects")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(OneOrMany::One)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(OneOrMany::Many(items))
            }
        }

        deserializer.deserialize_any(OneOrManyVisitor(PhantomData))
    }
}

/// Where a record sits in a file, for error messages: the file, the record's path
/// (`[1].SecretList[2]`) and an optional label naming it (`Name "db-password"`).
#[derive(Debug, Clone)]
pub struct Site<'a> {
    pub file: &'a Path,
    pub path: String,
    pub label: Option<String>,
}

impl<'a> Site<'a> {
    /// A record at `path` in `file`.
    pub fn new(file: &'a Path, path: impl Into<String>) -> Self {
        Site {
            file,
            path: path.into(),
            label: None,
        }
    }

    /// Adds a label `MEMBER "value"` when `value` is a string.
    pub fn labelled(mut self, member: &str, value: Option<&Value>) -> Self {
        if let Some(Value::String(text)) = value {
            self.label = Some(format!("{member} {}", quote(text)));
        }
        self
    }

    /// A nested record, e.g. `RotationRules` inside a secret.
    pub fn child(&self, member: &str) -> Site<'a> {
        Site {
            file: self.file,
            path: self.member_path(member),
            label: self.label.clone(),
        }
    }

    fn member_path(&self, member: &str) -> String {
        match self.path.as_str() {
            "" => member.to_string(),
            path if path.ends_with('.') => format!("{path}{member}"),
            path => format!("{path}.{member}"),
        }
    }

    /// The location text for `member` of this record.
    pub fn location(&self, member: &str) -> String {
        let path = self.member_path(member);
        match &self.label {
            Some(label) => format!("{path} ({label})"),
            None => path,
        }
    }

    /// An input error about `member` of this record.
    pub fn error(&self, member: &str, message: impl Into<String>) -> Error {
        Error::input(self.file, self.location(member), message)
    }

    /// A member that must be a non-empty string.
    pub fn required_str(&self, member: &str, value: Option<Value>) -> Result<String> {
        match self.optional_str(member, value)? {
            Some(text) if !text.is_empty() => Ok(text),
            Some(_) => Err(self.error(member, "expected a non-empty string, found \"\"")),
            None => Err(self.error(member, "missing; expected a string")),
        }
    }

    /// A member that, when present and not null, must be a string.
    pub fn optional_str(&self, member: &str, value: Option<Value>) -> Result<Option<String>> {
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(self.error(
                member,
                format!("expected a string, found {}", describe(&other)),
            )),
        }
    }

    /// A member that, when present and not null, must be `true` or `false`.
    pub fn optional_bool(&self, member: &str, value: Option<Value>) -> Result<Option<bool>> {
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(self.error(
                member,
                format!("expected true or false, found {}", describe(&other)),
            )),
        }
    }

    /// A member that, when present and not null, must be a whole number from 0 to 2^32-1.
    pub fn optional_u32(&self, member: &str, value: Option<Value>) -> Result<Option<u32>> {
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) => Ok(Some(n)),
                None => Err(self.error(
                    member,
                    format!("expected a whole number of days, found {n}"),
                )),
            },
            Some(other) => Err(self.error(
                member,
                format!("expected a whole number, found {}", describe(&other)),
            )),
        }
    }

    /// A member that, when present and not null, must be a date (see [`parse_date`]).
    pub fn optional_date(&self, member: &str, value: Option<Value>) -> Result<Option<Timestamp>> {
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(value) => parse_date(&value)
                .map(Some)
                .map_err(|message| self.error(member, message)),
        }
    }

    /// A member that must be a date.
    pub fn required_date(&self, member: &str, value: Option<Value>) -> Result<Timestamp> {
        self.optional_date(member, value)?
            .ok_or_else(|| self.error(member, "missing; expected a date"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn utc(text: &str) -> Timestamp {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn parses_iso_dates_with_z_offsets_and_fractions() {
        assert_eq!(
            parse_date(&json!("2019-10-17T15:47:00.587000-06:00")).unwrap(),
            utc("2019-10-17T21:47:00.587Z")
        );
        assert_eq!(
            parse_date(&json!("2018-11-23T16:01:14+00:00")).unwrap(),
            utc("2018-11-23T16:01:14Z")
        );
        assert_eq!(
            parse_date(&json!("2024-02-29T23:59:59Z")).unwrap(),
            utc("2024-02-29T23:59:59Z")
        );
        assert_eq!(
            parse_date_str("2019-10-16T18:00:00+0530").unwrap(),
            utc("2019-10-16T12:30:00Z")
        );
    }

    #[test]
    fn parses_epoch_numbers_exactly() {
        let date = parse_date(&json!(1525747253.72)).unwrap();
        assert_eq!(date, utc("2018-05-08T02:40:53.720Z"));
        assert_eq!(
            parse_date(&json!(1521534252)).unwrap(),
            utc("2018-03-20T08:24:12Z")
        );
        assert_eq!(
            parse_date(&json!(1523477145.729))
                .unwrap()
                .timestamp_subsec_millis(),
            729
        );
    }

    #[test]
    fn refuses_impossible_and_malformed_dates() {
        let err = parse_date_str("2026-02-30T00:00:00Z").unwrap_err();
        assert!(err.contains("not a real date"), "{err}");
        let err = parse_date_str("2026-01-01T25:00:00Z").unwrap_err();
        assert!(err.contains("not a real date"), "{err}");
        let err = parse_date_str("2026-01-01T10:00:00").unwrap_err();
        assert!(err.contains("expected an ISO-8601 date-time"), "{err}");
        let err = parse_date_str("yesterday").unwrap_err();
        assert!(err.contains("\"yesterday\""), "{err}");
        let err = parse_date(&json!(true)).unwrap_err();
        assert!(err.contains("found true"), "{err}");
        let err = parse_date(&json!(-5)).unwrap_err();
        assert!(err.contains("out of range"), "{err}");
        let err = parse_date(&json!(1525747253720u64)).unwrap_err();
        assert!(err.contains("not milliseconds"), "{err}");
    }

    #[test]
    fn one_or_many_locates_each_output() {
        #[derive(Deserialize)]
        struct Page {
            #[serde(rename = "N")]
            n: u32,
        }
        let one: OneOrMany<Page> = serde_json::from_str(r#"{"N": 1, "Extra": "x"}"#).unwrap();
        let pages = one.with_prefixes();
        assert_eq!(pages.len(), 1);
        assert_eq!(pages[0].0, "");
        assert_eq!(pages[0].1.n, 1);
        let many: OneOrMany<Page> = serde_json::from_str(r#"[{"N": 1}, {"N": 2}]"#).unwrap();
        let pages = many.with_prefixes();
        assert_eq!(pages[1].0, "[1].");
        assert_eq!(pages[1].1.n, 2);
        assert!(serde_json::from_str::<OneOrMany<Page>>("\"text\"").is_err());
    }

    #[test]
    fn site_names_the_member_path_and_label() {
        let file = Path::new("x/list-secrets.json");
        let site = Site::new(file, "[1].SecretList[2]").labelled("Name", Some(&json!("db")));
        let err = site
            .optional_date("LastRotatedDate", Some(json!(true)))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "x/list-secrets.json: [1].SecretList[2].LastRotatedDate (Name \"db\"): \
             expected a date (ISO-8601 string or epoch seconds), found true"
        );
        let top = Site::new(file, "");
        assert_eq!(top.location("ARN"), "ARN");
        assert_eq!(
            top.child("RotationRules").location("Duration"),
            "RotationRules.Duration"
        );
    }

    #[test]
    fn truncated_json_names_line_and_column() {
        let file = Path::new("f.json");
        let err = from_file_text::<Value>(file, "{\n  \"Users\": [\n").unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("f.json: line 3 column 0: the JSON ends early"),
            "{text}"
        );
    }
}
