//! Rotation history: `history.jsonl`, one event per line, as a rotation pipeline records it.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::collect::input::{LimitExceeded, Limits, MAX_RECORD_FLAG};
use crate::error::{Error, Result};
use crate::model::{EventType, RotationEvent, Trigger};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    time: String,
    #[serde(rename = "type")]
    event_type: String,
    credential_id: String,
    trigger: Option<String>,
    fingerprint: Option<String>,
    details: Option<serde_json::Value>,
}

/// Reads a history file. Blank lines are skipped; anything else that is not a valid event stops
/// the read with the file and line named.
pub fn load(path: &Path) -> Result<Vec<RotationEvent>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(&bytes, path)
}

/// Parses the bytes of a history file (see [`load`]) with the default [`Limits`]; `path` names
/// it in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Vec<RotationEvent>> {
    parse_with(bytes, path, &Limits::default())
}

/// Parses the bytes of a history file (see [`load`]); `path` names it in errors. A line longer
/// than `limits.max_record_bytes` is refused naming it and `--max-record-size`, before it is
/// parsed (a JSON document takes many times its text's size in memory).
pub fn parse_with(bytes: &[u8], path: &Path, limits: &Limits) -> Result<Vec<RotationEvent>> {
    let mut events = Vec::new();
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line_no = index + 1;
        if line.len() as u64 > limits.max_record_bytes {
            let exceeded = LimitExceeded {
                what: "one line",
                limit: limits.max_record_bytes,
                flag: MAX_RECORD_FLAG,
            };
            return Err(Error::input(
                path,
                format!("line {line_no}"),
                exceeded.to_string(),
            ));
        }
        let line = std::str::from_utf8(line)
            .map_err(|_| Error::input(path, format!("line {line_no}"), "expected UTF-8 text"))?;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        events.push(parse_line(line, path, line_no)?);
    }
    events.sort_by(|a, b| {
        (a.time, &a.credential_id, a.event_type).cmp(&(b.time, &b.credential_id, b.event_type))
    });
    Ok(events)
}

/// Parses one JSON Lines record.
pub fn parse_line(line: &str, path: &Path, line_no: usize) -> Result<RotationEvent> {
    let at = format!("line {line_no}");
    let raw: RawEvent = serde_json::from_str(line)
        .map_err(|e| Error::input(path, &at, format!("expected a history event: {e}")))?;
    let time = parse_time(&raw.time)
        .map_err(|m| Error::input(path, &at, format!("time \"{}\": {m}", raw.time)))?;
    let event_type: EventType = raw.event_type.parse().map_err(|e| {
        Error::input(
            path,
            &at,
            format!("type \"{}\": expected {e}", raw.event_type),
        )
    })?;
    let trigger = raw
        .trigger
        .as_deref()
        .map(|t| {
            t.parse::<Trigger>()
                .map_err(|e| Error::input(path, &at, format!("trigger \"{t}\": expected {e}")))
        })
        .transpose()?;
    if raw.credential_id.trim().is_empty() {
        return Err(Error::input(path, &at, "credential_id must not be empty"));
    }
    let mut details = raw.details;
    // A value has no place in the history; should one be there, it is never stored.
    if let Some(value) = details.as_mut() {
        crate::collect::raw::strip_secret_members(value);
    }
    let details = match details {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    };
    Ok(RotationEvent {
        time,
        credential_id: raw.credential_id,
        event_type,
        trigger,
        fingerprint: raw.fingerprint.filter(|f| !f.is_empty()),
        details,
        source: "history".to_string(),
    })
}

/// An RFC 3339 time, e.g. `2026-10-01T02:00:00Z`; impossible dates are rejected.
pub fn parse_time(s: &str) -> std::result::Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("expected an RFC 3339 time such as 2026-10-01T02:00:00Z ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<RotationEvent> {
        parse_line(line, Path::new("history.jsonl"), 3)
    }

    #[test]
    fn a_line_over_the_record_limit_is_refused_before_it_is_parsed() {
        let event = r#"{"time":"2026-10-01T02:00:00Z","type":"rotation.completed","credential_id":"AKIA1"}"#;
        let limits = Limits {
            max_record_bytes: event.len() as u64,
            ..Limits::default()
        };
        let path = Path::new("history.jsonl");
        // A line of exactly the limit is read; one byte more (even a malformed one) is not.
        assert_eq!(
            parse_with(event.as_bytes(), path, &limits).unwrap().len(),
            1
        );
        let text = format!("{event}\n\n{event} \n");
        let err = parse_with(text.as_bytes(), path, &limits)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("history.jsonl: line 3: one line over the 83 B limit"),
            "{err}"
        );
        assert!(err.contains("--max-record-size"), "{err}");
        let text = format!("{event}\n{{{}", "[".repeat(200));
        let err = parse_with(text.as_bytes(), path, &limits)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2: one line over"), "{err}");
    }

    #[test]
    fn parses_an_event() {
        let e = p(r#"{"time":"2026-10-01T02:00:00+02:00","type":"rotation.completed","credential_id":"AKIA1","trigger":"scheduled","fingerprint":"sha256:ab","details":{"by":"pipeline"}}"#).unwrap();
        assert_eq!(e.time.to_rfc3339(), "2026-10-01T00:00:00+00:00");
        assert_eq!(e.event_type, EventType::RotationCompleted);
        assert_eq!(e.trigger, Some(Trigger::Scheduled));
        assert_eq!(e.details.as_deref(), Some(r#"{"by":"pipeline"}"#));
    }

    #[test]
    fn names_the_line_and_the_problem() {
        let err =
            p(r#"{"time":"2026-02-30T00:00:00Z","type":"rotation.completed","credential_id":"x"}"#)
                .unwrap_err()
                .to_string();
        assert!(
            err.starts_with("history.jsonl: line 3: time \"2026-02-30T00:00:00Z\""),
            "{err}"
        );
        let err = p(r#"{"time":"2026-02-03T00:00:00Z","type":"rotated","credential_id":"x"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("type \"rotated\": expected one of rotation.initiated"),
            "{err}"
        );
        let err = p(r#"{"time":"2026-02-03T00:00:00Z","type":"rotation.completed""#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3: expected a history event"), "{err}");
        let err = p(r#"{"time":"2026-02-03T00:00:00Z","type":"rotation.completed","credential_id":"x","who":1}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `who`"), "{err}");
        let err = p(r#"{"time":1,"type":"rotation.completed","credential_id":"x"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid type"), "{err}");
    }
}
