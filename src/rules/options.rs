//! Rule options. A rule with thresholds declares its options struct next to its `evaluate`;
//! [`RuleOptions`] collects them. inventory.toml sets them in `[policy.<rule-id>]` tables (the
//! older spellings in [`OLD_KEYS`] and [`OLD_TABLES`] are still accepted), they are checked
//! against their bounds, and a run stores them in its [`Policy`] ([`RuleOptions::store`]).

use std::collections::BTreeMap;
use std::fmt::Display;

use serde::{Deserialize, Serialize};

use super::anomalous_usage::AnomalousUsageOptions;
use super::audit_trail_gap::AuditTrailGapOptions;
use super::auth_failure_spike::AuthFailureSpikeOptions;
use super::inactive_key_lingering::InactiveKeyLingeringOptions;
use super::incident_not_remediated::IncidentNotRemediatedOptions;
use super::multiple_active_keys::MultipleActiveKeysOptions;
use super::rotation_failing::RotationFailingOptions;
use super::secret_unused::SecretUnusedOptions;
use super::tag_drift::TagDriftOptions;
use super::unused_credential::UnusedCredentialOptions;
use crate::model::Policy;

// Bounds of the numbers in inventory.toml: wide enough for any real policy, narrow enough that
// no date computed from them leaves the representable range.

/// Longest interval or day count: 100 years.
pub const MAX_DAYS: u32 = 36_500;
/// Longest window in hours: 100 years.
pub const MAX_HOURS: u32 = 876_000;
/// Largest count (calls, failures, uses).
pub const MAX_COUNT: u64 = 1_000_000_000_000;
/// Largest breach factor (a multiple of the interval).
pub const MAX_BREACH_FACTOR: f64 = 100.0;
/// Largest number of standard deviations of a rate spike.
pub const MAX_RATE_SIGMAS: f64 = 100.0;

/// A number outside its bounds: the field, the value found and what was expected.
#[derive(Debug, Clone, PartialEq)]
pub struct OutOfRange {
    pub field: &'static str,
    pub value: String,
    pub expected: String,
}

impl OutOfRange {
    /// "`written` = value is out of range: expected …", `written` being the field as the user
    /// spelled it.
    pub fn message(&self, written: &str) -> String {
        format!(
            "{written} = {} is out of range: expected {}",
            self.value, self.expected
        )
    }
}

/// Checks that `value` of `field` lies in `min..=max` (`unit` names what it counts). NaN is
/// never in range.
pub fn bounded<T: PartialOrd + Display + Copy>(
    field: &'static str,
    value: T,
    (min, max): (T, T),
    unit: &str,
) -> Result<(), OutOfRange> {
    if value >= min && value <= max {
        return Ok(());
    }
    Err(OutOfRange {
        field,
        value: value.to_string(),
        expected: format!("{min} to {max}{unit}"),
    })
}

/// Declares [`RuleOptions`]: one field per rule that has options, with its rule id.
macro_rules! rule_options {
    ($($field:ident: $options:ty = $id:literal,)*) => {
        /// The options of every rule that has any, each declared in its rule's file.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct RuleOptions {
            $(#[doc = concat!("`[policy.", $id, "]`")] pub $field: $options,)*
        }

        impl RuleOptions {
            /// The ids of the rules that have options, which name their `[policy.<rule-id>]`.
            pub const RULE_IDS: &'static [&'static str] = &[$($id),*];

            /// Sets the options of rule `id` from its table as written.
            fn set(&mut self, id: &str, table: toml::Table) -> Result<(), toml::de::Error> {
                match id {
                    $($id => self.$field = toml::Value::Table(table).try_into()?,)*
                    _ => {}
                }
                Ok(())
            }

            /// Checks the bounds of the options of rule `id`.
            fn check(&self, id: &str) -> Result<(), OutOfRange> {
                match id {
                    $($id => self.$field.check(),)*
                    _ => Ok(()),
                }
            }

            /// The options of rule `id` as JSON (field name to value), for the rule's texts.
            pub fn of_rule(&self, id: &str) -> Option<serde_json::Value> {
                match id {
                    $($id => serde_json::to_value(&self.$field).ok(),)*
                    _ => None,
                }
            }
        }
    };
}

rule_options! {
    unused_credential: UnusedCredentialOptions = "unused-credential",
    multiple_active_keys: MultipleActiveKeysOptions = "multiple-active-keys",
    inactive_key_lingering: InactiveKeyLingeringOptions = "inactive-key-lingering",
    rotation_failing: RotationFailingOptions = "rotation-failing",
    audit_trail_gap: AuditTrailGapOptions = "audit-trail-gap",
    tag_drift: TagDriftOptions = "tag-drift",
    anomalous_usage: AnomalousUsageOptions = "anomalous-usage",
    auth_failure_spike: AuthFailureSpikeOptions = "auth-failure-spike",
    incident_not_remediated: IncidentNotRemediatedOptions = "incident-not-remediated",
    secret_unused: SecretUnusedOptions = "secret-unused",
}

/// Keys of `[policy]` accepted before rules owned their options, as aliases: (old key, rule id,
/// field of its options).
pub const OLD_KEYS: &[(&str, &str, &str)] = &[
    ("unused_days", "unused-credential", "days"),
    ("unused_grace_days", "unused-credential", "grace_days"),
    ("key_overlap_hours", "multiple-active-keys", "overlap_hours"),
    ("inactive_key_days", "inactive-key-lingering", "days"),
    ("secret_unused_days", "secret-unused", "days"),
    ("pending_stuck_hours", "rotation-failing", "stuck_hours"),
    ("audit_match_hours", "audit-trail-gap", "match_hours"),
    ("tag_tolerance_hours", "tag-drift", "tolerance_hours"),
];

/// Tables of `[policy]` accepted before rules owned their options, as aliases: (old table, rule
/// id).
pub const OLD_TABLES: &[(&str, &str)] = &[
    ("anomalous_usage", "anomalous-usage"),
    ("auth_failure_spike", "auth-failure-spike"),
    ("incident_not_remediated", "incident-not-remediated"),
];

/// One entry of `[policy]` as written that belongs to a rule: a `[policy.<rule-id>]` table (or
/// an old table), or an old flat key.
#[derive(Debug, Clone)]
pub struct Written {
    /// The key as written (`unused-credential`, `anomalous_usage`, `unused_days`).
    pub key: String,
    /// Its line in the file.
    pub line: usize,
    /// The table, or the flat value.
    pub value: toml::Value,
}

/// What is wrong with the options as written: where (line, table as written) and what.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenError {
    pub line: usize,
    /// `policy.<table as written>` or `policy`.
    pub table: String,
    pub message: String,
}

/// Whether `key` of `[policy]` belongs to a rule (a rule's table, an old table or an old key).
pub fn is_rule_key(key: &str) -> bool {
    RuleOptions::RULE_IDS.contains(&key)
        || OLD_TABLES.iter().any(|(old, _)| *old == key)
        || OLD_KEYS.iter().any(|(old, _, _)| *old == key)
}

/// Where one option of a rule was set: its key as written, the table and the line.
struct Origin {
    written: String,
    table: String,
    line: usize,
}

impl Origin {
    fn new(written: &str, table: &str, line: usize) -> Origin {
        Origin {
            written: written.to_string(),
            table: table.to_string(),
            line,
        }
    }
}

/// One rule's options as gathered from `[policy]`: its merged table, where it was last
/// written, and where each field came from.
struct Gathered {
    table: toml::Table,
    origin: Origin,
    fields: BTreeMap<String, Origin>,
}

impl Gathered {
    fn new(table: &str, line: usize) -> Gathered {
        Gathered {
            table: toml::Table::new(),
            origin: Origin::new("", table, line),
            fields: BTreeMap::new(),
        }
    }
}

/// The rules' entries of `[policy]`, gathered per rule before they are parsed and checked.
#[derive(Default)]
struct Gathering {
    rules: BTreeMap<&'static str, Gathered>,
    /// Per rule, the key its table was written under (its id or its old table name).
    table_keys: BTreeMap<&'static str, String>,
}

fn written_error(line: usize, table: &str, message: String) -> WrittenError {
    WrittenError {
        line,
        table: table.to_string(),
        message,
    }
}

/// The rule whose options table `key` is: its `[policy.<rule-id>]` table or an old table.
fn rule_of_table(key: &str) -> Option<&'static str> {
    RuleOptions::RULE_IDS
        .iter()
        .find(|id| **id == key)
        .or_else(|| {
            OLD_TABLES
                .iter()
                .find(|(old, _)| *old == key)
                .map(|(_, id)| id)
        })
        .copied()
}

impl Gathering {
    /// Adds one entry of `[policy]`: a rule's table, an old table or an old flat key.
    fn add(&mut self, entry: Written) -> Result<(), WrittenError> {
        if let Some(id) = rule_of_table(&entry.key) {
            self.add_table(id, entry)
        } else if let Some(&(old, id, field)) =
            OLD_KEYS.iter().find(|(old, _, _)| *old == entry.key)
        {
            self.add_old_key(old, id, field, entry)
        } else {
            Err(written_error(
                entry.line,
                "policy",
                format!("unknown field `{}`", entry.key),
            ))
        }
    }

    /// Adds the table of rule `id` written as `entry` (under its id or its old table name).
    fn add_table(&mut self, id: &'static str, entry: Written) -> Result<(), WrittenError> {
        let table_name = format!("policy.{}", entry.key);
        let toml::Value::Table(table) = entry.value else {
            return Err(written_error(
                entry.line,
                "policy",
                format!("{} must be a table ([{table_name}])", entry.key),
            ));
        };
        if let Some(other) = self.table_keys.insert(id, entry.key.clone()) {
            let older = if other == id { &entry.key } else { &other };
            return Err(written_error(
                entry.line,
                &table_name,
                format!(
                    "[policy.{other}] and [{table_name}] both set the options of {id}: \
                     keep [policy.{id}] ([policy.{older}] is its older spelling)"
                ),
            ));
        }
        let slot = self
            .rules
            .entry(id)
            .or_insert_with(|| Gathered::new(&table_name, entry.line));
        slot.origin = Origin::new("", &table_name, entry.line);
        for (field, value) in table {
            if let Some(old) = slot.fields.get(&field) {
                return Err(written_error(
                    old.line,
                    &old.table,
                    format!(
                        "{} in [{}] and {field} in [{table_name}] set the same option: \
                         keep [policy.{id}] {field} ({} is its older spelling)",
                        old.written, old.table, old.written
                    ),
                ));
            }
            slot.fields
                .insert(field.clone(), Origin::new(&field, &table_name, entry.line));
            slot.table.insert(field, value);
        }
        Ok(())
    }

    /// Adds the old flat key `old` of `[policy]`, which sets `field` of rule `id`.
    fn add_old_key(
        &mut self,
        old: &str,
        id: &'static str,
        field: &str,
        entry: Written,
    ) -> Result<(), WrittenError> {
        let slot = self
            .rules
            .entry(id)
            .or_insert_with(|| Gathered::new("policy", entry.line));
        if let Some(new) = slot.fields.get(field) {
            return Err(written_error(
                entry.line,
                "policy",
                format!(
                    "{old} in [policy] and {field} in [{}] set the same option: keep \
                     [policy.{id}] {field} ({old} is its older spelling)",
                    new.table
                ),
            ));
        }
        slot.fields
            .insert(field.to_string(), Origin::new(old, "policy", entry.line));
        slot.table.insert(field.to_string(), entry.value);
        Ok(())
    }

    /// Parses each rule's gathered table over the defaults and checks its bounds.
    fn into_options(self) -> Result<RuleOptions, WrittenError> {
        let mut options = RuleOptions::default();
        for (id, gathered) in self.rules {
            let Gathered {
                table,
                origin,
                fields,
            } = gathered;
            options.set(id, table).map_err(|e| WrittenError {
                line: origin.line,
                table: origin.table.clone(),
                message: e.message().trim().to_string(),
            })?;
            options.check(id).map_err(|e| {
                let at = fields.get(e.field).unwrap_or(&origin);
                let written = if at.written.is_empty() {
                    e.field
                } else {
                    &at.written
                };
                WrittenError {
                    line: at.line,
                    table: at.table.clone(),
                    message: e.message(written),
                }
            })?;
        }
        Ok(options)
    }
}

impl RuleOptions {
    /// Reads the rules' entries of `[policy]` (see [`is_rule_key`]), over the defaults, and
    /// checks their bounds. An option set both in its `[policy.<rule-id>]` table and by its old
    /// spelling is an error.
    pub fn from_written(entries: Vec<Written>) -> Result<RuleOptions, WrittenError> {
        let mut gathering = Gathering::default();
        for entry in entries {
            gathering.add(entry)?;
        }
        gathering.into_options()
    }

    /// The options stored in `policy` (defaults for those it does not hold). Fails only on a
    /// stored policy that is not one this credaudit wrote.
    pub fn read(policy: &Policy) -> Result<RuleOptions, serde_json::Error> {
        let stored: StoredRuleOptions =
            serde_json::from_value(serde_json::Value::Object(policy.rule_options.clone()))?;
        Ok(stored.into())
    }

    /// The options of `policy`, whose options were checked where it was read (inventory.toml
    /// by the inventory, a stored run by the snapshot).
    pub fn of(policy: &Policy) -> RuleOptions {
        RuleOptions::read(policy).unwrap_or_else(|e| {
            panic!("a policy's rule options are checked where it is read, yet: {e}")
        })
    }

    /// Stores these options in `policy`, in the stored layout.
    pub fn store(&self, policy: &mut Policy) {
        let stored = StoredRuleOptions::from(self.clone());
        policy.rule_options = match serde_json::to_value(stored) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => unreachable!("a struct of numbers serialises to a JSON object"),
        };
    }

    /// `policy` with its rule options in the stored layout, every option present.
    pub fn normalised(policy: &Policy) -> Result<Policy, serde_json::Error> {
        let mut policy = policy.clone();
        RuleOptions::read(&policy)?.store(&mut policy);
        Ok(policy)
    }
}

/// The stored layout of the rule options in a run's `policy_json`: credaudit 0.1's flat keys
/// and tables, in its order. Hash version 1 re-serialises the stored policy, so this layout
/// stays; options added later go at its end (and into `FACTS_ADDED_AFTER_V1` of the snapshot).
#[derive(Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct StoredRuleOptions {
    unused_days: u32,
    unused_grace_days: u32,
    key_overlap_hours: u32,
    inactive_key_days: u32,
    secret_unused_days: u32,
    pending_stuck_hours: u32,
    audit_match_hours: u32,
    tag_tolerance_hours: u32,
    anomalous_usage: AnomalousUsageOptions,
    auth_failure_spike: AuthFailureSpikeOptions,
    incident_not_remediated: IncidentNotRemediatedOptions,
}

impl Default for StoredRuleOptions {
    fn default() -> Self {
        RuleOptions::default().into()
    }
}

impl From<RuleOptions> for StoredRuleOptions {
    fn from(o: RuleOptions) -> Self {
        StoredRuleOptions {
            unused_days: o.unused_credential.days,
            unused_grace_days: o.unused_credential.grace_days,
            key_overlap_hours: o.multiple_active_keys.overlap_hours,
            inactive_key_days: o.inactive_key_lingering.days,
            secret_unused_days: o.secret_unused.days,
            pending_stuck_hours: o.rotation_failing.stuck_hours,
            audit_match_hours: o.audit_trail_gap.match_hours,
            tag_tolerance_hours: o.tag_drift.tolerance_hours,
            anomalous_usage: o.anomalous_usage,
            auth_failure_spike: o.auth_failure_spike,
            incident_not_remediated: o.incident_not_remediated,
        }
    }
}

impl From<StoredRuleOptions> for RuleOptions {
    fn from(s: StoredRuleOptions) -> Self {
        RuleOptions {
            unused_credential: UnusedCredentialOptions {
                days: s.unused_days,
                grace_days: s.unused_grace_days,
            },
            multiple_active_keys: MultipleActiveKeysOptions {
                overlap_hours: s.key_overlap_hours,
            },
            inactive_key_lingering: InactiveKeyLingeringOptions {
                days: s.inactive_key_days,
            },
            rotation_failing: RotationFailingOptions {
                stuck_hours: s.pending_stuck_hours,
            },
            audit_trail_gap: AuditTrailGapOptions {
                match_hours: s.audit_match_hours,
            },
            tag_drift: TagDriftOptions {
                tolerance_hours: s.tag_tolerance_hours,
            },
            anomalous_usage: s.anomalous_usage,
            auth_failure_spike: s.auth_failure_spike,
            incident_not_remediated: s.incident_not_remediated,
            secret_unused: SecretUnusedOptions {
                days: s.secret_unused_days,
            },
        }
    }
}
