//! Waivers (`waivers.toml`): accepted risks that expire. A waived finding is still reported,
//! marked with its waiver, and does not gate CI; an expired waiver raises `waiver-expired` and
//! its finding counts again; a waiver that matches nothing is reported.

use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::model::{Finding, Timestamp, Waiver};

/// A waiver with its credential glob compiled, to check it against many findings.
#[derive(Debug, Clone)]
pub struct CompiledWaiver<'a> {
    pub waiver: &'a Waiver,
    glob: CredentialGlob,
}

impl<'a> CompiledWaiver<'a> {
    /// Compiles each waiver's glob once. A glob that does not compile (none can: [`parse`]
    /// rejects them) matches nothing.
    pub fn compile(waivers: &'a [Waiver]) -> Vec<CompiledWaiver<'a>> {
        waivers
            .iter()
            .filter_map(|waiver| {
                let glob = CredentialGlob::new(&waiver.credential).ok()?;
                Some(CompiledWaiver { waiver, glob })
            })
            .collect()
    }

    /// Whether this waiver is about `finding` (whatever its expiry).
    pub fn matches(&self, finding: &Finding) -> bool {
        self.waiver.rule == finding.rule && self.glob.matches(&finding.credential)
    }
}

/// A waiver's `credential`: an id, or a glob where only `*` (any run of characters, `/` and
/// `:` included, as ARNs have both) and `?` (exactly one character) are special; `[`, `]` and
/// everything else match themselves.
#[derive(Debug, Clone)]
pub struct CredentialGlob(glob::Pattern);

/// Ids are not paths: `*` and `?` cross `/`, a leading `.` is plain, case counts.
const MATCH_OPTIONS: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: false,
    require_literal_leading_dot: false,
};

impl CredentialGlob {
    pub fn new(pattern: &str) -> std::result::Result<Self, glob::PatternError> {
        // `glob` also knows `[...]` classes and `**` (a path component): escape the brackets, and
        // write a run of stars as one star, which matches the same.
        let mut escaped = String::with_capacity(pattern.len());
        let mut after_star = false;
        for c in pattern.chars() {
            match c {
                '*' if after_star => {}
                '[' | ']' => {
                    escaped.push('[');
                    escaped.push(c);
                    escaped.push(']');
                }
                c => escaped.push(c),
            }
            after_star = c == '*';
        }
        glob::Pattern::new(&escaped).map(Self)
    }

    pub fn matches(&self, id: &str) -> bool {
        self.0.matches_with(id, MATCH_OPTIONS)
    }
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
        if let Err(e) = CredentialGlob::new(&w.credential) {
            return Err(Error::input(
                path,
                &at,
                format!("credential: not an id or a glob with `*` and `?`: {e}"),
            ));
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

    fn glob_match(pattern: &str, id: &str) -> bool {
        CredentialGlob::new(pattern).unwrap().matches(id)
    }

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
        // `?` is one character, not one byte.
        assert!(glob_match("a?c", "a\u{e9}c"));
        assert!(glob_match("\u{e9}*", "\u{e9}t\u{e9}"));
    }

    #[test]
    fn stars_and_question_marks_cross_slashes_and_colons() {
        let secret = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:team/prod/db-AbCdEf";
        assert!(glob_match("arn:aws:secretsmanager:*:secret:team/*", secret));
        assert!(glob_match("*:secret:team/prod/*", secret));
        assert!(glob_match("*/db-??????", secret));
        assert!(!glob_match("*/db-?????", secret));
        assert!(glob_match(
            "arn:aws:secretsmanager:eu-west-1?111122223333*",
            secret
        ));
        assert!(!glob_match("arn:aws:secretsmanager:us-east-1:*", secret));
        let root = "arn:aws:iam::111122223333:root/access-key-1";
        assert!(glob_match("arn:aws:iam::*:root/*", root));
        assert!(glob_match("*root/access-key-?", root));
        // A run of stars is one star, also around a `/` (never a path-component wildcard).
        assert!(glob_match("arn:**", root));
        assert!(glob_match("arn:aws:iam::**/access-key-1", root));
        assert!(!glob_match(
            "arn:aws:iam::111122223333:root/**/access-key-1",
            root
        ));
        assert!(glob_match("*/.hidden", "team/.hidden"));
    }

    #[test]
    fn only_star_and_question_mark_are_special() {
        assert!(glob_match("db[1]", "db[1]"));
        assert!(!glob_match("db[12]", "db1"));
        assert!(glob_match("db[*]", "db[primary]"));
        assert!(glob_match("a]b", "a]b"));
        assert!(glob_match("[", "["));
        assert!(glob_match("{a,b}", "{a,b}"));
        assert!(!glob_match("{a,b}", "a"));
        assert!(glob_match("a\\b", "a\\b"));
        assert!(glob_match("!x", "!x"));
        assert!(!glob_match("AKIA*", "akiaxyz"));
    }

    #[test]
    fn compiled_waivers_match_rule_and_credential() {
        let waiver = |rule: &str, credential: &str| Waiver {
            rule: rule.into(),
            credential: credential.into(),
            reason: "r".into(),
            approver: "a".into(),
            ticket: "t".into(),
            expires: chrono::Utc::now(),
            line: 1,
        };
        let waivers = vec![
            waiver("rotation-overdue", "arn:aws:secretsmanager:*:secret:prod/*"),
            waiver("secret-unused", "AKIA[1]"),
        ];
        let compiled = CompiledWaiver::compile(&waivers);
        assert_eq!(compiled.len(), 2);
        let finding = |rule: &str, credential: &str| Finding {
            rule: rule.into(),
            severity: crate::model::Severity::Low,
            credential: credential.into(),
            kind: crate::model::CredentialKind::Secret,
            account: None,
            region: None,
            owner: None,
            principal: None,
            message: String::new(),
            evidence: vec![],
            waiver: None,
        };
        let prod = finding(
            "rotation-overdue",
            "arn:aws:secretsmanager:us-east-1:1:secret:prod/db-AbC",
        );
        assert!(compiled[0].matches(&prod));
        assert!(!compiled[1].matches(&prod));
        let other_rule = finding("secret-unused", &prod.credential);
        assert!(!compiled[0].matches(&other_rule));
        assert!(compiled[1].matches(&finding("secret-unused", "AKIA[1]")));
        assert!(!compiled[1].matches(&finding("secret-unused", "AKIA1")));
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
