//! The versioned documents of the listing commands: `rules`, `controls`, `diff` and `query …`
//! with `--format json`, and the README's rule table (`rules --format markdown`). Each document
//! is a view type made for the output, with its own `schema_version`, built from the internal
//! types but never one of them serialised directly: an internal type may change shape, a
//! published document changes only with its version.

use std::fmt::Write as _;

use serde::Serialize;

use super::FindingView;
use super::view::DiffView;
use crate::controls::{Control, Framework};
use crate::diff::Diff;
use crate::query::Table;
use crate::rules::{RULES, RuleMeta};

/// Version of `rules --format json`; bumped on any incompatible change to its shape.
pub const RULES_SCHEMA_VERSION: u32 = 1;
/// Version of `controls --format json`.
pub const CONTROLS_SCHEMA_VERSION: u32 = 1;
/// Version of `diff --format json`.
pub const DIFF_SCHEMA_VERSION: u32 = 1;
/// Version of `query … --format json`.
pub const QUERY_SCHEMA_VERSION: u32 = 1;

/// `rules --format json`: the catalogue in registry order.
#[derive(Debug, Clone, Serialize)]
pub struct RulesDocument {
    pub schema_version: u32,
    pub rules: Vec<RuleEntry>,
}

/// One rule of the catalogue, from its [`RuleMeta`], its texts showing the default policy.
#[derive(Debug, Clone, Serialize)]
pub struct RuleEntry {
    pub id: &'static str,
    pub title: String,
    /// What it finds, in one line (the README's "finds" column).
    pub finds: String,
    pub default_severity: &'static str,
    /// The severity in words: how it varies when it does, else the default (the README's
    /// "severity" column).
    pub severity: String,
    pub rationale: String,
    pub remediation: &'static str,
    /// The evidence sources it reads (kebab-case ids).
    pub sources: Vec<&'static str>,
}

impl From<&RuleMeta> for RuleEntry {
    fn from(m: &RuleMeta) -> Self {
        RuleEntry {
            id: m.id,
            title: m.render_default(m.title),
            finds: m.render_default(m.finds),
            default_severity: m.default_severity.as_str(),
            severity: m.severity_text(),
            rationale: m.render_default(m.rationale),
            remediation: m.remediation,
            sources: m.sources.iter().map(|s| s.as_str()).collect(),
        }
    }
}

impl RulesDocument {
    /// Every rule of the registry.
    pub fn of_registry() -> Self {
        RulesDocument {
            schema_version: RULES_SCHEMA_VERSION,
            rules: RULES.iter().map(|r| RuleEntry::from(&r.meta)).collect(),
        }
    }
}

/// The README's rule table: a header row, then one row per rule in registry order, each line
/// ending in a newline. The metadata is ours (trusted, with intended inline code), so only a
/// cell separator is escaped.
pub fn rules_markdown() -> String {
    let cell = |text: &str| text.replace('|', "\\|").replace('\n', " ");
    let mut md = String::from("| rule | severity | finds |\n|---|---|---|\n");
    for rule in RULES {
        let m = &rule.meta;
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            m.id,
            cell(&m.severity_text()),
            cell(&m.render_default(m.finds))
        );
    }
    md
}

/// `controls --format json`: the selected frameworks and their controls, in catalogue order.
#[derive(Debug, Clone, Serialize)]
pub struct ControlsDocument {
    pub schema_version: u32,
    pub frameworks: Vec<FrameworkEntry>,
}

/// One framework of `controls --format json`.
#[derive(Debug, Clone, Serialize)]
pub struct FrameworkEntry {
    pub id: String,
    pub name: String,
    pub version: String,
    /// The file it was read from, or `built-in`.
    pub source: String,
    pub controls: Vec<ControlEntry>,
}

/// One control and what tests it.
#[derive(Debug, Clone, Serialize)]
pub struct ControlEntry {
    pub id: String,
    pub title: String,
    pub reason: String,
    /// Rule ids whose open findings fail it.
    pub rules: Vec<String>,
    /// Needs evidence no scan gives: always `manual`.
    pub manual: bool,
    pub max_age_days: Option<u32>,
    pub max_unused_days: Option<u32>,
    pub max_active_keys_per_user: Option<u32>,
    pub forbid_never_used_keys_on_console_users: bool,
    pub include_console_passwords: bool,
    /// The credential kinds it covers; `null` covers all.
    pub kinds: Option<Vec<&'static str>>,
    /// In words, as the table shows it.
    pub tested_by: String,
}

impl From<&Control> for ControlEntry {
    fn from(c: &Control) -> Self {
        ControlEntry {
            id: c.id.clone(),
            title: c.title.clone(),
            reason: c.reason.clone(),
            rules: c.rules.clone(),
            manual: c.manual,
            max_age_days: c.max_age_days,
            max_unused_days: c.max_unused_days,
            max_active_keys_per_user: c.max_active_keys_per_user,
            forbid_never_used_keys_on_console_users: c.forbid_never_used_keys_on_console_users,
            include_console_passwords: c.include_console_passwords,
            kinds: c
                .kinds
                .as_ref()
                .map(|kinds| kinds.iter().map(|k| k.as_str()).collect()),
            tested_by: c.tested_by(),
        }
    }
}

impl ControlsDocument {
    /// The document of these frameworks.
    pub fn of<'a>(frameworks: impl IntoIterator<Item = &'a Framework>) -> Self {
        ControlsDocument {
            schema_version: CONTROLS_SCHEMA_VERSION,
            frameworks: frameworks
                .into_iter()
                .map(|f| FrameworkEntry {
                    id: f.id.clone(),
                    name: f.name.clone(),
                    version: f.version.clone(),
                    source: f.source.clone(),
                    controls: f.controls.iter().map(ControlEntry::from).collect(),
                })
                .collect(),
        }
    }
}

/// `diff --format json`: the bundle's diff view (findings as every report shows them), versioned.
#[derive(Debug, Clone, Serialize)]
pub struct DiffDocument {
    pub schema_version: u32,
    #[serde(flatten)]
    pub diff: DiffView,
}

impl From<&Diff> for DiffDocument {
    fn from(d: &Diff) -> Self {
        DiffDocument {
            schema_version: DIFF_SCHEMA_VERSION,
            diff: DiffView {
                from_run: d.from_run,
                to_run: d.to_run,
                new: d.new.iter().map(FindingView::from).collect(),
                resolved: d.resolved.iter().map(FindingView::from).collect(),
                persisting: d.persisting,
            },
        }
    }
}

/// `query … --format json`: which query, over which run and as of when, its columns in order,
/// and one object per row keyed by column name (every value a string).
#[derive(Debug, Clone, Serialize)]
pub struct QueryDocument {
    pub schema_version: u32,
    /// `rotations`, `trail` or `proof`.
    pub query: &'static str,
    pub run: i64,
    /// RFC 3339.
    pub as_of: String,
    pub columns: Vec<&'static str>,
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
}

impl QueryDocument {
    /// The document of `table`, the answer of `query` over `run` as of `as_of`.
    pub fn of(query: &'static str, run: i64, as_of: String, table: &Table) -> Self {
        QueryDocument {
            schema_version: QUERY_SCHEMA_VERSION,
            query,
            run,
            as_of,
            columns: table.columns.clone(),
            rows: table
                .rows
                .iter()
                .map(|row| {
                    table
                        .columns
                        .iter()
                        .zip(row)
                        .map(|(c, v)| ((*c).to_string(), serde_json::Value::String(v.clone())))
                        .collect()
                })
                .collect(),
        }
    }
}

/// A document pretty-printed, ending in a newline.
pub fn to_json(doc: &impl Serialize) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(doc).expect("view types serialise: plain data");
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_markdown_table_has_one_row_per_rule_with_its_severity_text() {
        let md = rules_markdown();
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines.len(), RULES.len() + 2);
        assert_eq!(lines[0], "| rule | severity | finds |");
        assert!(
            lines.contains(&"| root-access-key | critical | the root user has an access key |")
        );
        let overdue = lines
            .iter()
            .find(|l| l.starts_with("| rotation-overdue |"))
            .expect("rotation-overdue row");
        assert!(
            overdue.contains("| by class (A high, B medium, C/D low); critical past 1.5x |"),
            "{overdue}"
        );
        // Every row has exactly three cells.
        for line in &lines[2..] {
            assert_eq!(line.matches(" | ").count(), 2, "{line}");
        }
    }

    #[test]
    fn the_rules_document_is_versioned_and_complete() {
        let doc = serde_json::to_value(RulesDocument::of_registry()).unwrap();
        assert_eq!(doc["schema_version"], RULES_SCHEMA_VERSION);
        let rules = doc["rules"].as_array().unwrap();
        assert_eq!(rules.len(), RULES.len());
        let overdue = rules
            .iter()
            .find(|r| r["id"] == "rotation-overdue")
            .unwrap();
        assert_eq!(overdue["default_severity"], "high");
        assert_eq!(
            overdue["severity"],
            "by class (A high, B medium, C/D low); critical past 1.5x"
        );
    }
}
