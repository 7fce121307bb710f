//! The declared side: `inventory.toml` (credentials, owners, class policies and rule thresholds).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::model::{
    CredentialKind, DeclaredCredential, Inventory, Owner, OwnerStatus, Policy, RiskClass,
    is_account_id,
};
use crate::rules::options::{MAX_BREACH_FACTOR, MAX_COUNT, MAX_DAYS, MAX_HOURS, Written};
use crate::rules::{self, RuleOptions};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    #[serde(default)]
    policy: BTreeMap<String, toml::Spanned<PolicyEntry>>,
    #[serde(default)]
    owners: Vec<toml::Spanned<RawOwner>>,
    #[serde(default)]
    credentials: Vec<toml::Spanned<RawCredential>>,
}

/// A value of `[policy]` as written: a table, each of its values with its span (the classes
/// name the line of an interval out of bounds), or a single value.
enum PolicyEntry {
    Table(BTreeMap<String, toml::Spanned<toml::Value>>),
    Value(toml::Value),
}

impl<'de> Deserialize<'de> for PolicyEntry {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = PolicyEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number or a table")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<PolicyEntry, A::Error> {
                let mut table = BTreeMap::new();
                while let Some((key, value)) =
                    map.next_entry::<String, toml::Spanned<toml::Value>>()?
                {
                    table.insert(key, value);
                }
                Ok(PolicyEntry::Table(table))
            }
            fn visit_i64<E>(self, v: i64) -> std::result::Result<PolicyEntry, E> {
                Ok(PolicyEntry::Value(toml::Value::Integer(v)))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<PolicyEntry, E> {
                i64::try_from(v)
                    .map(|v| PolicyEntry::Value(toml::Value::Integer(v)))
                    .map_err(|_| E::custom(format!("{v} is too large")))
            }
            fn visit_f64<E>(self, v: f64) -> std::result::Result<PolicyEntry, E> {
                Ok(PolicyEntry::Value(toml::Value::Float(v)))
            }
            fn visit_bool<E>(self, v: bool) -> std::result::Result<PolicyEntry, E> {
                Ok(PolicyEntry::Value(toml::Value::Boolean(v)))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<PolicyEntry, E> {
                Ok(PolicyEntry::Value(toml::Value::String(v.to_string())))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<PolicyEntry, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<toml::Value>()? {
                    items.push(item);
                }
                Ok(PolicyEntry::Value(toml::Value::Array(items)))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl PolicyEntry {
    /// The entry as a plain TOML value (a table loses its values' spans).
    fn into_value(self) -> toml::Value {
        match self {
            PolicyEntry::Value(value) => value,
            PolicyEntry::Table(table) => toml::Value::Table(
                table
                    .into_iter()
                    .map(|(k, v)| (k, v.into_inner()))
                    .collect(),
            ),
        }
    }
}

/// Checks that `value` of `field` lies in `min..=max` (`unit` names what it counts); the error
/// names the file, the location, the field, the bounds and what was found.
fn bounded<T: PartialOrd + std::fmt::Display + Copy>(
    path: &Path,
    location: &str,
    field: &str,
    value: T,
    bounds: (T, T),
    unit: &str,
) -> Result<T> {
    rules::options::bounded("value", value, bounds, unit)
        .map_err(|e| Error::input(path, location, e.message(field)))?;
    Ok(value)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOwner {
    id: String,
    name: Option<String>,
    email: Option<String>,
    status: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredential {
    id: String,
    kind: String,
    class: Option<String>,
    owner: Option<String>,
    #[serde(default)]
    consumers: Vec<String>,
    #[serde(default)]
    automated: bool,
    interval_days: Option<u32>,
    max_uses: Option<u64>,
    account: Option<String>,
    description: Option<String>,
}

/// Reads and validates an inventory file.
pub fn load(path: &Path) -> Result<Inventory> {
    let text = crate::error::read_to_string(path)?;
    parse(&text, path)
}

/// Parses inventory TOML; `path` names the file in errors.
///
/// A large inventory is parsed in slices of [`SLICE_ENTRIES`] `[[credentials]]` entries (see
/// [`slices`]): a TOML parser's document takes many times the text's size, so one slice at a
/// time keeps that bounded. A slice that does not parse on its own sends the whole text through
/// the one-piece parse, so errors are those of the whole file.
pub fn parse(text: &str, path: &Path) -> Result<Inventory> {
    let lines = crate::error::LineIndex::new(text);
    if let Some(slices) = slices(text)
        && let Some(inventory) = parse_slices(text, &slices, path, &lines)?
    {
        return Ok(inventory);
    }
    let raw = parse_toml(text, 0, path, &lines)?;
    let policy = build_policy(raw.policy, path, &lines)?;
    let owners = build_owners(raw.owners, path, &lines)?;
    let mut credentials = Vec::with_capacity(raw.credentials.len());
    build_credentials(
        raw.credentials,
        0,
        path,
        &lines,
        &mut HashSet::new(),
        &mut credentials,
    )?;
    Ok(Inventory {
        policy,
        owners,
        credentials,
    })
}

/// `[[credentials]]` entries per slice of a large inventory.
const SLICE_ENTRIES: usize = 2_000;

/// `text` parsed as a [`RawInventory`]; `offset` is where it starts in the file, for the line
/// of an error.
fn parse_toml(
    text: &str,
    offset: usize,
    path: &Path,
    lines: &crate::error::LineIndex,
) -> Result<RawInventory> {
    toml::from_str(text).map_err(|e| {
        let location = e
            .span()
            .map(|s| format!("line {}", lines.line(offset + s.start)))
            .unwrap_or_else(|| "document".to_string());
        Error::input(path, location, e.message().trim().to_string())
    })
}

/// Where a large inventory can be cut: the byte offsets of every [`SLICE_ENTRIES`]th
/// `[[credentials]]` header, the first header first. Only for a text in which every table
/// header from the first `[[credentials]]` on is exactly `[[credentials]]` and that holds no
/// multi-line string (so a line that reads `[[credentials]]` is a header and nothing else):
/// then each slice is a run of whole entries, and everything else (`[policy]`, `[[owners]]`)
/// comes before the first. `None` for a small text or one of any other shape.
fn slices(text: &str) -> Option<Vec<usize>> {
    if text.len() < 1 << 20 || text.contains("\"\"\"") || text.contains("'''") {
        return None;
    }
    let mut cuts = Vec::new();
    let mut entries = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            if trimmed != "[[credentials]]" {
                if entries > 0 {
                    return None;
                }
            } else {
                if entries % SLICE_ENTRIES == 0 {
                    cuts.push(offset);
                }
                entries += 1;
            }
        }
        offset += line.len();
    }
    (cuts.len() > 1).then_some(cuts)
}

/// The inventory parsed slice by slice (see [`slices`]); `None` when a slice does not parse on
/// its own or the part before the first entry declares credentials too.
fn parse_slices(
    text: &str,
    cuts: &[usize],
    path: &Path,
    lines: &crate::error::LineIndex,
) -> Result<Option<Inventory>> {
    let Ok(head) = toml::from_str::<RawInventory>(&text[..cuts[0]]) else {
        return Ok(None);
    };
    if !head.credentials.is_empty() {
        return Ok(None);
    }
    let policy = build_policy(head.policy, path, lines)?;
    let owners = build_owners(head.owners, path, lines)?;
    let mut credentials = Vec::new();
    let mut ids = HashSet::new();
    for (index, &start) in cuts.iter().enumerate() {
        let end = cuts.get(index + 1).copied().unwrap_or(text.len());
        let Ok(slice) = toml::from_str::<RawInventory>(&text[start..end]) else {
            return Ok(None);
        };
        build_credentials(
            slice.credentials,
            start,
            path,
            lines,
            &mut ids,
            &mut credentials,
        )?;
    }
    Ok(Some(Inventory {
        policy,
        owners,
        credentials,
    }))
}

/// The `[[owners]]` as written, checked: ids present and unique, a known status.
fn build_owners(
    raw: Vec<toml::Spanned<RawOwner>>,
    path: &Path,
    lines: &crate::error::LineIndex,
) -> Result<Vec<Owner>> {
    let mut owners = Vec::with_capacity(raw.len());
    let mut owner_ids = HashSet::new();
    for spanned in raw {
        let line = lines.line(spanned.span().start);
        let o = spanned.into_inner();
        let at = || format!("line {line} (owner \"{}\")", o.id);
        if o.id.trim().is_empty() {
            return Err(Error::input(path, at(), "owner id must not be empty"));
        }
        if !owner_ids.insert(o.id.clone()) {
            return Err(Error::input(path, at(), "duplicate owner id"));
        }
        let status = match o.status.as_str() {
            "active" => OwnerStatus::Active,
            "departed" => OwnerStatus::Departed,
            other => {
                return Err(Error::input(
                    path,
                    at(),
                    format!("status \"{other}\": expected \"active\" or \"departed\""),
                ));
            }
        };
        owners.push(Owner {
            id: o.id,
            name: o.name,
            email: o.email,
            status,
        });
    }
    Ok(owners)
}

/// The `[[credentials]]` as written, checked and appended to `credentials`: ids present and
/// unique (`ids` holds those of earlier slices), a known kind and class, bounds, and account
/// ids. `offset` is where the text they were parsed from starts in the file.
fn build_credentials(
    raw: Vec<toml::Spanned<RawCredential>>,
    offset: usize,
    path: &Path,
    lines: &crate::error::LineIndex,
    ids: &mut HashSet<String>,
    credentials: &mut Vec<DeclaredCredential>,
) -> Result<()> {
    credentials.reserve(raw.len());
    for spanned in raw {
        let line = lines.line(offset + spanned.span().start);
        let c = spanned.into_inner();
        let at = || format!("line {line} (credential \"{}\")", c.id);
        if c.id.trim().is_empty() {
            return Err(Error::input(path, at(), "credential id must not be empty"));
        }
        if !ids.insert(c.id.clone()) {
            return Err(Error::input(
                path,
                at(),
                "duplicate credential id: each credential is declared once",
            ));
        }
        let kind: CredentialKind = c
            .kind
            .parse()
            .map_err(|e| Error::input(path, at(), format!("kind \"{}\": expected {e}", c.kind)))?;
        let class = c
            .class
            .as_deref()
            .map(|s| {
                s.parse::<RiskClass>()
                    .map_err(|e| Error::input(path, at(), format!("class \"{s}\": expected {e}")))
            })
            .transpose()?;
        if let Some(days) = c.interval_days {
            bounded(path, &at(), "interval_days", days, (1, MAX_DAYS), " days")?;
        }
        if let Some(uses) = c.max_uses {
            bounded(path, &at(), "max_uses", uses, (0, MAX_COUNT), "")?;
        }
        if let Some(account) = &c.account
            && !is_account_id(account)
        {
            return Err(Error::input(
                path,
                at(),
                format!("account \"{account}\": expected a 12-digit AWS account id"),
            ));
        }
        credentials.push(DeclaredCredential {
            id: c.id,
            kind,
            class,
            owner: c.owner.filter(|o| !o.trim().is_empty()),
            consumers: c.consumers,
            automated: c.automated,
            interval_days: c.interval_days,
            max_uses: c.max_uses,
            account: c.account,
            description: c.description,
            line,
        });
    }
    Ok(())
}

/// `value` of `key` as a `T`; the error names what was found.
fn typed<T: serde::de::DeserializeOwned>(
    path: &Path,
    location: &str,
    key: &str,
    value: toml::Value,
) -> Result<T> {
    value.try_into().map_err(|e: toml::de::Error| {
        Error::input(path, location, format!("{key}: {}", e.message().trim()))
    })
}

/// The shared policy and the rules' options from `[policy]`: `classes`, `due_soon_hours` and
/// `breach_factor` are read here, every other entry is a rule's ([`RuleOptions::from_written`]).
fn build_policy(
    raw: BTreeMap<String, toml::Spanned<PolicyEntry>>,
    path: &Path,
    lines: &crate::error::LineIndex,
) -> Result<Policy> {
    let at = |table: &str, line: usize| format!("line {line} ([{table}])");
    let mut policy = Policy::default();
    let mut written = Vec::new();
    for (key, entry) in raw {
        let line = lines.line(entry.span().start);
        let entry = entry.into_inner();
        let number = |entry: PolicyEntry| -> Result<toml::Value> {
            match entry {
                PolicyEntry::Value(value) => Ok(value),
                PolicyEntry::Table(_) => Err(Error::input(
                    path,
                    at("policy", line),
                    format!("{key}: expected a number, found a table"),
                )),
            }
        };
        match key.as_str() {
            "classes" => {
                let PolicyEntry::Table(classes) = entry else {
                    return Err(Error::input(
                        path,
                        at("policy", line),
                        "classes: expected a table of class = days",
                    ));
                };
                for (name, days) in classes {
                    let location = at("policy.classes", lines.line(days.span().start));
                    let class: RiskClass = name.parse().map_err(|e| {
                        Error::input(path, &location, format!("class \"{name}\": expected {e}"))
                    })?;
                    let days: u32 =
                        days.into_inner().try_into().map_err(|e: toml::de::Error| {
                            Error::input(path, &location, format!("{name}: {}", e.message().trim()))
                        })?;
                    let days = bounded(path, &location, &name, days, (1, MAX_DAYS), " days")?;
                    policy.classes.insert(class, days);
                }
            }
            "due_soon_hours" => {
                let hours: u32 = typed(path, &at("policy", line), &key, number(entry)?)?;
                policy.due_soon_hours = bounded(
                    path,
                    &at("policy", line),
                    "due_soon_hours",
                    hours,
                    (0, MAX_HOURS),
                    " hours",
                )?;
            }
            "breach_factor" => {
                let factor: f64 = typed(path, &at("policy", line), &key, number(entry)?)?;
                policy.breach_factor = bounded(
                    path,
                    &at("policy", line),
                    "breach_factor",
                    factor,
                    (1.0, MAX_BREACH_FACTOR),
                    " (a multiple of the interval)",
                )?;
            }
            _ if rules::options::is_rule_key(&key) => written.push(Written {
                key,
                line,
                value: entry.into_value(),
            }),
            _ => {
                return Err(Error::input(
                    path,
                    at("policy", line),
                    format!(
                        "unknown field `{key}`, expected `classes`, `due_soon_hours`, \
                         `breach_factor` or a rule's table ([policy.<rule-id>], one of {})",
                        RuleOptions::RULE_IDS.join(", ")
                    ),
                ));
            }
        }
    }
    written.sort_by_key(|w| w.line);
    let options = RuleOptions::from_written(written)
        .map_err(|e| Error::input(path, at(&e.table, e.line), e.message))?;
    options.store(&mut policy);
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(inv: &Inventory) -> RuleOptions {
        RuleOptions::of(&inv.policy)
    }

    fn parse_str(s: &str) -> Result<Inventory> {
        parse(s, Path::new("inventory.toml"))
    }

    #[test]
    fn parses_credentials_owners_and_policy() {
        let inv = parse_str(
            r#"
[policy]
unused_days = 30
[policy.classes]
B = 21

[[owners]]
id = "team-a"
status = "departed"

[[credentials]]
id = "AKIAEXAMPLE000000001"
kind = "iam-access-key"
class = "B"
owner = "team-a"
consumers = ["agent-1"]
automated = true
max_uses = 3
"#,
        )
        .unwrap();
        assert_eq!(options(&inv).unused_credential.days, 30);
        assert_eq!(inv.policy.class_interval(Some(RiskClass::B)), 21);
        assert_eq!(inv.policy.class_interval(Some(RiskClass::C)), 90);
        assert_eq!(inv.policy.class_interval(None), 14);
        assert_eq!(inv.owners[0].status, OwnerStatus::Departed);
        let c = &inv.credentials[0];
        assert_eq!(c.kind, CredentialKind::IamAccessKey);
        assert_eq!(c.class, Some(RiskClass::B));
        assert_eq!(c.max_uses, Some(3));
        assert_eq!(c.line, 11);
    }

    #[test]
    fn usage_rule_thresholds_are_configurable() {
        let inv = parse_str(
            "[policy.auth_failure_spike]\nmin_rate = 0.2\n[policy.anomalous_usage]\nbaseline_days = 7\n",
        )
        .unwrap();
        assert_eq!(options(&inv).auth_failure_spike.min_rate, 0.2);
        assert_eq!(
            options(&inv).auth_failure_spike.min_auth_errors,
            5,
            "unset fields keep defaults"
        );
        assert_eq!(options(&inv).anomalous_usage.baseline_days, 7);
        let err = parse_str("[policy.auth_failure_spike]\nrate = 0.2\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `rate`"), "{err}");
    }

    #[test]
    fn rule_tables_take_the_rule_id_and_the_old_spellings_still_work() {
        let new = parse_str(
            "[policy.unused-credential]\ndays = 30\ngrace_days = 3\n\
             [policy.secret-unused]\ndays = 60\n[policy.rotation-failing]\nstuck_hours = 12\n\
             [policy.anomalous-usage]\nbaseline_days = 7\n",
        )
        .unwrap();
        let old = parse_str(
            "[policy]\nunused_days = 30\nunused_grace_days = 3\nsecret_unused_days = 60\n\
             pending_stuck_hours = 12\n[policy.anomalous_usage]\nbaseline_days = 7\n",
        )
        .unwrap();
        assert_eq!(new.policy, old.policy, "the old spellings are aliases");
        let o = options(&new);
        assert_eq!(
            (o.unused_credential.days, o.unused_credential.grace_days),
            (30, 3)
        );
        assert_eq!(o.secret_unused.days, 60);
        assert_eq!(o.rotation_failing.stuck_hours, 12);
        assert_eq!(o.anomalous_usage.baseline_days, 7);
        assert_eq!(
            o.tag_drift.tolerance_hours, 24,
            "unset options keep defaults"
        );
        // An old key and the new table may set different options of one rule.
        let mixed =
            parse_str("[policy]\nunused_days = 30\n[policy.unused-credential]\ngrace_days = 3\n")
                .unwrap();
        assert_eq!(options(&mixed).unused_credential, o.unused_credential);
    }

    #[test]
    fn an_option_set_both_ways_is_an_error() {
        for (text, expected) in [
            (
                "[policy]\nunused_days = 30\n[policy.unused-credential]\ndays = 40\n",
                "line 2 ([policy]): unused_days in [policy] and days in [policy.unused-credential] \
                 set the same option: keep [policy.unused-credential] days (unused_days is its older \
                 spelling)",
            ),
            (
                "[policy.anomalous_usage]\nbaseline_days = 7\n[policy.anomalous-usage]\nrate_sigmas = 2.0\n",
                "both set the options of anomalous-usage: keep [policy.anomalous-usage] \
                 ([policy.anomalous_usage] is its older spelling)",
            ),
        ] {
            let err = parse_str(text).expect_err(text).to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn new_tables_are_checked_like_the_old_keys() {
        for (text, expected) in [
            (
                "[policy.unused-credential]\ndays = 0\n",
                "line 1 ([policy.unused-credential]): days = 0 is out of range: expected 1 to 36500 days",
            ),
            (
                "[policy.tag-drift]\ntolerance_hours = 4294967295\n",
                "([policy.tag-drift]): tolerance_hours = 4294967295 is out of range: expected 0 to 876000 hours",
            ),
            (
                "[policy.secret-unused]\nlimit = 3\n",
                "unknown field `limit`",
            ),
            (
                "[policy.no-such-rule]\ndays = 3\n",
                "unknown field `no-such-rule`",
            ),
            ("[policy]\nunused = 3\n", "unknown field `unused`"),
            ("[policy]\nunused_days = \"x\"\n", "line 2 ([policy])"),
        ] {
            let err = parse_str(text).expect_err(text).to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn rejects_numbers_out_of_bounds_naming_line_field_bound_and_value() {
        let cases = [
            (
                "[policy]\ndue_soon_hours = 48\nunused_days = 0\n",
                "inventory.toml: line 3 ([policy]): unused_days = 0 is out of range: expected 1 to 36500 days",
            ),
            (
                "[policy]\ntag_tolerance_hours = 4294967295\n",
                "line 2 ([policy]): tag_tolerance_hours = 4294967295 is out of range: expected 0 to 876000 hours",
            ),
            (
                "[policy]\nbreach_factor = 1e300\n",
                "breach_factor = 1000000",
            ),
            ("[policy]\nbreach_factor = nan\n", "breach_factor = NaN"),
            ("[policy]\nbreach_factor = 0.5\n", "expected 1 to 100"),
            (
                "[policy.classes]\nA = 14\nB = 4294967295\n",
                "line 3 ([policy.classes]): B = 4294967295 is out of range: expected 1 to 36500 days",
            ),
            ("[policy.classes]\nC = 0\n", "C = 0 is out of range"),
            (
                "[policy.anomalous_usage]\nbaseline_days = 4294967295\n",
                "([policy.anomalous_usage]): baseline_days = 4294967295 is out of range: expected 1 to 36500 days",
            ),
            (
                "[policy.anomalous_usage]\ndetection_hours = 0\n",
                "detection_hours = 0 is out of range: expected 1 to 876000 hours",
            ),
            (
                "[policy.anomalous_usage]\nrare_operation_share = 1.5\n",
                "rare_operation_share = 1.5 is out of range: expected 0 to 1",
            ),
            (
                "[policy.anomalous_usage]\nrate_sigmas = inf\n",
                "rate_sigmas = inf is out of range",
            ),
            (
                "[policy.anomalous_usage]\nrate_sigmas = 0.0\n",
                "more than 0",
            ),
            (
                "[policy.anomalous_usage]\nmin_baseline_calls = 10000000000001\n",
                "min_baseline_calls = 10000000000001 is out of range: expected 0 to 1000000000000 calls",
            ),
            (
                "[policy.auth_failure_spike]\ndetection_hours = 4294967295\n",
                "([policy.auth_failure_spike]): detection_hours = 4294967295 is out of range: expected 1 to 876000 hours",
            ),
            (
                "[policy.auth_failure_spike]\nmin_rate = -0.1\n",
                "min_rate = -0.1 is out of range: expected 0 to 1",
            ),
            (
                "[[credentials]]\nid = \"x\"\nkind = \"secret\"\ninterval_days = 4294967295\n",
                "line 1 (credential \"x\"): interval_days = 4294967295 is out of range: expected 1 to 36500 days",
            ),
            (
                "[[credentials]]\nid = \"x\"\nkind = \"secret\"\ninterval_days = 0\n",
                "interval_days = 0 is out of range",
            ),
            (
                "[[credentials]]\nid = \"x\"\nkind = \"secret\"\nmax_uses = 10000000000000\n",
                "max_uses = 10000000000000 is out of range: expected 0 to 1000000000000",
            ),
        ];
        for (text, expected) in cases {
            let err = parse_str(text).expect_err(text).to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
        // The bounds themselves are accepted, and so are zero grace and tolerance.
        let inv = parse_str(
            "[policy]\nunused_grace_days = 0\ntag_tolerance_hours = 0\nbreach_factor = 100\n\
             [policy.classes]\nD = 36500\n[policy.anomalous_usage]\nbaseline_days = 36500\n\
             detection_hours = 876000\nrare_operation_share = 0\n\
             [policy.auth_failure_spike]\ndetection_hours = 876000\nmin_rate = 1\n\
             [[credentials]]\nid = \"x\"\nkind = \"secret\"\ninterval_days = 36500\nmax_uses = 0\n",
        )
        .unwrap();
        assert_eq!(inv.policy.class_interval(Some(RiskClass::D)), 36_500);
        assert_eq!(options(&inv).anomalous_usage.baseline_days, 36_500);
        assert_eq!(inv.credentials[0].max_uses, Some(0));
    }

    #[test]
    fn incident_options_are_configurable_and_bounded() {
        let inv = parse_str("[policy.incident_not_remediated]\nemergency_hours = 4\n").unwrap();
        let o = &options(&inv).incident_not_remediated;
        assert_eq!(o.emergency_hours, 4);
        assert_eq!(
            (o.access_denied_burst, o.access_denied_burst_minutes),
            (5, 60),
            "unset fields keep defaults"
        );
        assert_eq!(
            options(&parse_str("").unwrap())
                .incident_not_remediated
                .emergency_hours,
            24
        );
        for (text, expected) in [
            (
                "[policy.incident_not_remediated]\nemergency_hours = 0\n",
                "line 1 ([policy.incident_not_remediated]): emergency_hours = 0 is out of range: expected 1 to 876000 hours",
            ),
            (
                "[policy.incident_not_remediated]\nemergency_hours = 876001\n",
                "emergency_hours = 876001 is out of range",
            ),
            (
                "[policy.incident_not_remediated]\naccess_denied_burst = 0\n",
                "access_denied_burst = 0 is out of range: expected 1 to 1000000000000 events",
            ),
            (
                "[policy.incident_not_remediated]\naccess_denied_burst_minutes = 4294967295\n",
                "access_denied_burst_minutes = 4294967295 is out of range: expected 1 to 52560000 minutes",
            ),
            (
                "[policy.incident_not_remediated]\nwindow = 3\n",
                "unknown field `window`",
            ),
        ] {
            let err = parse_str(text).expect_err(text).to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
        let inv = parse_str(
            "[policy.incident_not_remediated]\nemergency_hours = 876000\n\
             access_denied_burst = 1\naccess_denied_burst_minutes = 52560000\n",
        )
        .unwrap();
        assert_eq!(
            options(&inv).incident_not_remediated.emergency_hours,
            876_000
        );
    }

    #[test]
    fn rejects_unknown_class_with_line() {
        let err = parse_str("[[credentials]]\nid = \"x\"\nkind = \"secret\"\nclass = \"E\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("inventory.toml: line 1"), "{err}");
        assert!(
            err.contains("class \"E\": expected one of A, B, C, D"),
            "{err}"
        );
    }

    /// An inventory of `n` credentials (over 1 MiB from about 10,000), with a policy and an
    /// owner before them; `bad` replaces the text of credential `bad.0` with `bad.1`.
    fn large(n: usize, bad: Option<(usize, &str)>) -> String {
        let mut text = String::from(
            "[policy.classes]\nB = 45\n\n[[owners]]\nid = \"team\"\nstatus = \"active\"\n\n",
        );
        for i in 0..n {
            match bad {
                Some((at, entry)) if at == i => text.push_str(entry),
                _ => text.push_str(&format!(
                    "[[credentials]]\nid = \"cred-{i:06}\"\nkind = \"secret\"\nclass = \"B\"\nowner = \"team\"\nconsumers = [\"agent-{i}\", \"agent-x\"]\ndescription = \"a credential of a large fleet, number {i}\"\n\n"
                )),
            }
        }
        text
    }

    #[test]
    fn a_large_inventory_parses_in_slices_to_what_one_piece_gives() {
        let text = large(12_000, None);
        let cuts = slices(&text).expect("cut into slices");
        assert_eq!(cuts.len(), 6);
        assert!(text[cuts[1]..].starts_with("[[credentials]]\nid = \"cred-002000\""));
        let sliced = parse_str(&text).unwrap();
        // The one-piece parse of the same text, for comparison.
        let lines = crate::error::LineIndex::new(&text);
        let raw = parse_toml(&text, 0, Path::new("inventory.toml"), &lines).unwrap();
        let mut whole = Vec::new();
        build_credentials(
            raw.credentials,
            0,
            Path::new("inventory.toml"),
            &lines,
            &mut HashSet::new(),
            &mut whole,
        )
        .unwrap();
        assert_eq!(sliced.credentials, whole);
        assert_eq!(sliced.credentials.len(), 12_000);
        assert_eq!(sliced.credentials[11_999].line, 8 + 11_999 * 8);
        assert_eq!(sliced.owners.len(), 1);
        assert_eq!(sliced.policy, parse_str(&large(1, None)).unwrap().policy);
    }

    #[test]
    fn errors_in_a_late_slice_name_the_line_in_the_file() {
        // A duplicate id across slices, a bad class and a TOML syntax error, all past 10,000.
        let duplicate = "[[credentials]]\nid = \"cred-000001\"\nkind = \"secret\"\n\n";
        let err = parse_str(&large(12_000, Some((10_500, duplicate))))
            .unwrap_err()
            .to_string();
        let line = 8 + 10_500 * 8;
        assert!(
            err.contains(&format!("line {line} (credential \"cred-000001\")"))
                && err.contains("duplicate credential id"),
            "{err}"
        );
        let class = "[[credentials]]\nid = \"c\"\nkind = \"secret\"\nclass = \"E\"\n\n";
        let err = parse_str(&large(12_000, Some((10_500, class))))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("line {line} (credential \"c\")")),
            "{err}"
        );
        let syntax = "[[credentials]]\nid = \"c\"\nkind = = \"secret\"\n\n";
        let err = parse_str(&large(12_000, Some((10_500, syntax))))
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("line {}", line + 2)), "{err}");
        // [policy.classes] again after the entries is refused as in one piece, not merged.
        let mut twice = large(12_000, None);
        twice.push_str("[policy.classes]\nC = 100\n");
        assert!(slices(&twice).is_none());
        assert!(parse_str(&twice).is_err());
    }

    #[test]
    fn rejects_duplicate_ids() {
        let err = parse_str(
            "[[credentials]]\nid = \"x\"\nkind = \"secret\"\n[[credentials]]\nid = \"x\"\nkind = \"secret\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 4"), "{err}");
        assert!(err.contains("duplicate credential id"), "{err}");
    }

    #[test]
    fn rejects_unknown_fields_and_wrong_types() {
        let err = parse_str("[[credentials]]\nid = \"x\"\nkind = \"secret\"\nrotate = true\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `rotate`"), "{err}");
        let err = parse_str("[[credentials]]\nid = \"x\"\nkind = \"secret\"\nmax_uses = \"one\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 4"), "{err}");
    }

    #[test]
    fn rejects_unknown_kind_and_bad_account() {
        let err = parse_str("[[credentials]]\nid = \"x\"\nkind = \"password\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("kind \"password\": expected one of"), "{err}");
        let err = parse_str("[[credentials]]\nid = \"x\"\nkind = \"secret\"\naccount = \"12\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("12-digit"), "{err}");
    }
}
