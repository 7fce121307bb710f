//! Waivers (`waivers.toml`): accepted risks that expire. A waived finding is still reported,
//! marked with its waiver, and does not gate CI; an expired waiver raises `waiver-expired` and
//! its finding counts again; a waiver that matches nothing is reported.

use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{Finding, Timestamp};

/// One accepted risk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waiver {
    /// The rule it waives (a rule id).
    pub rule: String,
    /// The credential id, or a glob over ids (`*` any run of characters, `?` one character).
    pub credential: String,
    pub reason: String,
    pub approver: String,
    pub ticket: String,
    /// When it stops applying.
    pub expires: Timestamp,
    /// Line of the waiver in its file.
    pub line: usize,
}

/// A waiver as a finding carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppliedWaiver {
    pub reason: String,
    pub approver: String,
    pub ticket: String,
    pub expires: Timestamp,
}

impl Waiver {
    /// Whether this waiver is about `finding` (whatever its expiry).
    pub fn matches(&self, finding: &Finding) -> bool {
        self.rule == finding.rule && glob_match(&self.credential, &finding.credential)
    }

    pub fn applied(&self) -> AppliedWaiver {
        AppliedWaiver {
            reason: self.reason.clone(),
            approver: self.approver.clone(),
            ticket: self.ticket.clone(),
            expires: self.expires,
        }
    }
}

/// `*` matches any run of characters, `?` exactly one; everything else literally.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with backtracking to the last star: linear in practice, no recursion.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    waivers: Vec<toml::Spanned<RawWaiver>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWaiver {
    rule: String,
    credential: String,
    reason: String,
    approver: String,
    ticket: String,
    expires: toml::Value,
}

/// Reads a waivers file; `known_rules` are the rule ids a waiver may name.
pub fn load(path: &Path, known_rules: &[&str]) -> Result<Vec<Waiver>> {
    let text = crate::error::read_to_string(path)?;
    parse(&text, path, known_rules)
}

/// Parses waivers TOML. Every field is required; `expires` is a date (`2026-12-31`, the end of
/// that day UTC) or an RFC 3339 time.
pub fn parse(text: &str, path: &Path, known_rules: &[&str]) -> Result<Vec<Waiver>> {
    let lines = crate::error::LineIndex::new(text);
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let location = e
            .span()
            .map(|s| format!("line {}", lines.line(s.start)))
            .unwrap_or_else(|| "document".to_string());
        Error::input(path, location, e.message().trim().to_string())
    })?;
    let mut waivers = Vec::with_capacity(raw.waivers.len());
    for spanned in raw.waivers {
        let line = lines.line(spanned.span().start);
        let w = spanned.into_inner();
        let at = format!(
            "line {line} (waiver for {} on \"{}\")",
            w.rule, w.credential
        );
        if !known_rules.contains(&w.rule.as_str()) {
            return Err(Error::input(
                path,
                at,
                format!("unknown rule \"{}\"; `credaudit rules` lists them", w.rule),
            ));
        }
        for (field, value) in [
            ("credential", &w.credential),
            ("reason", &w.reason),
            ("approver", &w.approver),
            ("ticket", &w.ticket),
        ] {
            if value.trim().is_empty() {
                return Err(Error::input(
                    path,
                    &at,
                    format!("{field} must not be empty"),
                ));
            }
        }
        let expires = parse_expiry(&w.expires).map_err(|m| Error::input(path, &at, m))?;
        waivers.push(Waiver {
            rule: w.rule,
            credential: w.credential,
            reason: w.reason,
            approver: w.approver,
            ticket: w.ticket,
            expires,
            line,
        });
    }
    Ok(waivers)
}

fn parse_expiry(value: &toml::Value) -> std::result::Result<Timestamp, String> {
    const EXPECTED: &str = "expires: expected a date such as 2026-12-31 or an RFC 3339 time";
    let text = match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Datetime(d) => d.to_string(),
        _ => return Err(EXPECTED.to_string()),
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(&text) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(&text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(23, 59, 59))
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("{EXPECTED} (found \"{text}\")"))
}

/// How a set of waivers applied to one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WaiverOutcome {
    /// Indexes of waivers that matched no finding.
    pub unmatched: Vec<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &[&str] = &["rotation-overdue"];

    #[test]
    fn globs() {
        assert!(glob_match("AKIA*", "AKIAXYZ"));
        assert!(glob_match(
            "arn:*:secret:prod/*",
            "arn:aws:secretsmanager:us-east-1:1:secret:prod/db-AbC"
        ));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "abbc"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("AKIA", "AKIAX"));
        assert!(glob_match("*x*y*", "aaxbbyc"));
    }

    #[test]
    fn parses_and_requires_every_field() {
        let ok = parse(
            "[[waivers]]\nrule = \"rotation-overdue\"\ncredential = \"AKIA*\"\nreason = \"vendor\"\napprover = \"ciso\"\nticket = \"SEC-1\"\nexpires = 2026-12-31\n",
            Path::new("waivers.toml"),
            RULES,
        )
        .unwrap();
        assert_eq!(ok[0].expires.to_rfc3339(), "2026-12-31T23:59:59+00:00");
        let err = parse(
            "[[waivers]]\nrule = \"rotation-overdue\"\ncredential = \"AKIA*\"\nreason = \"vendor\"\nticket = \"SEC-1\"\nexpires = \"2026-12-31\"\n",
            Path::new("waivers.toml"),
            RULES,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("waivers.toml: line 1"), "{err}");
        assert!(err.contains("missing field `approver`"), "{err}");
        let err = parse(
            "[[waivers]]\nrule = \"rotation-overdue\"\ncredential = \"x\"\nreason = \"r\"\napprover = \"a\"\nticket = \"t\"\nexpires = \"next year\"\n",
            Path::new("waivers.toml"),
            RULES,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("expected a date"), "{err}");
        let err = parse(
            "[[waivers]]\nrule = \"rotate\"\ncredential = \"x\"\nreason = \"r\"\napprover = \"a\"\nticket = \"t\"\nexpires = \"2026-01-01\"\n",
            Path::new("waivers.toml"),
            RULES,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown rule \"rotate\""), "{err}");
    }
}
