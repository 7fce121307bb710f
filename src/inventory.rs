//! The declared side: `inventory.toml` (credentials, owners, class policies and rule thresholds).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{CredentialKind, DeclaredCredential, Owner, OwnerStatus, RiskClass};
use crate::rules::anomalous_usage::AnomalousUsageOptions;
use crate::rules::auth_failure_spike::AuthFailureSpikeOptions;
use crate::rules::incident_not_remediated::IncidentNotRemediatedOptions;

/// Rotation policy and every rule threshold. Defaults are those of the product design.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Rotation interval in days per class.
    pub classes: BTreeMap<RiskClass, u32>,
    /// "Due soon" window before a rotation is due.
    pub due_soon_hours: u32,
    /// Age past which an overdue credential is a policy breach (critical), as a multiple of its
    /// interval.
    pub breach_factor: f64,
    /// An active key unused this long is a finding (CIS: 45 days).
    pub unused_days: u32,
    /// A new key that was never used gets this long before it counts as unused.
    pub unused_grace_days: u32,
    /// Two active keys on one user are a rotation in progress for this long.
    pub key_overlap_hours: u32,
    /// A deactivated key should be deleted within this many days.
    pub inactive_key_days: u32,
    /// A secret not accessed this long is unused.
    pub secret_unused_days: u32,
    /// An AWSPENDING version older than this is a stuck rotation; also the grace after a missed
    /// NextRotationDate.
    pub pending_stuck_hours: u32,
    /// How far apart an AWS rotation and its history event may be and still match.
    pub audit_match_hours: u32,
    /// How far a date tag may be from the fact before it is drift.
    pub tag_tolerance_hours: u32,
    /// Thresholds of anomalous-usage.
    pub anomalous_usage: AnomalousUsageOptions,
    /// Thresholds of auth-failure-spike.
    pub auth_failure_spike: AuthFailureSpikeOptions,
    /// Emergency window and access-denied burst of incident-not-remediated.
    pub incident_not_remediated: IncidentNotRemediatedOptions,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            classes: RiskClass::ALL
                .iter()
                .map(|&c| (c, default_interval(c)))
                .collect(),
            due_soon_hours: 48,
            breach_factor: 1.5,
            unused_days: 45,
            unused_grace_days: 7,
            key_overlap_hours: 24,
            inactive_key_days: 30,
            secret_unused_days: 90,
            pending_stuck_hours: 24,
            audit_match_hours: 24,
            tag_tolerance_hours: 24,
            anomalous_usage: AnomalousUsageOptions::default(),
            auth_failure_spike: AuthFailureSpikeOptions::default(),
            incident_not_remediated: IncidentNotRemediatedOptions::default(),
        }
    }
}

fn default_interval(class: RiskClass) -> u32 {
    match class {
        RiskClass::A => 14,
        RiskClass::B => 30,
        RiskClass::C => 90,
        RiskClass::D => 365,
    }
}

impl Policy {
    /// The rotation interval of a class; an unclassified credential is treated as class A.
    pub fn class_interval(&self, class: Option<RiskClass>) -> u32 {
        let class = class.unwrap_or(RiskClass::A);
        self.classes
            .get(&class)
            .copied()
            .unwrap_or_else(|| default_interval(class))
    }
}

/// The whole declared inventory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub policy: Policy,
    pub owners: Vec<Owner>,
    pub credentials: Vec<DeclaredCredential>,
}

impl Inventory {
    /// The declared credential with this id.
    pub fn credential(&self, id: &str) -> Option<&DeclaredCredential> {
        self.credentials.iter().find(|c| c.id == id)
    }

    pub fn owner(&self, id: &str) -> Option<&Owner> {
        self.owners.iter().find(|o| o.id == id)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    #[serde(default)]
    policy: Option<RawPolicy>,
    #[serde(default)]
    owners: Vec<toml::Spanned<RawOwner>>,
    #[serde(default)]
    credentials: Vec<toml::Spanned<RawCredential>>,
}

/// Policy as written: every field optional, classes merged over the defaults. Spans give the
/// line of a value that is out of bounds.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    classes: BTreeMap<String, toml::Spanned<u32>>,
    due_soon_hours: Option<toml::Spanned<u32>>,
    breach_factor: Option<toml::Spanned<f64>>,
    unused_days: Option<toml::Spanned<u32>>,
    unused_grace_days: Option<toml::Spanned<u32>>,
    key_overlap_hours: Option<toml::Spanned<u32>>,
    inactive_key_days: Option<toml::Spanned<u32>>,
    secret_unused_days: Option<toml::Spanned<u32>>,
    pending_stuck_hours: Option<toml::Spanned<u32>>,
    audit_match_hours: Option<toml::Spanned<u32>>,
    tag_tolerance_hours: Option<toml::Spanned<u32>>,
    anomalous_usage: Option<toml::Spanned<AnomalousUsageOptions>>,
    auth_failure_spike: Option<toml::Spanned<AuthFailureSpikeOptions>>,
    incident_not_remediated: Option<toml::Spanned<IncidentNotRemediatedOptions>>,
}

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

/// Checks that `value` of `field` lies in `min..=max` (`unit` names what it counts); the error
/// names the field, the bounds and what was found. NaN is never in range.
fn bounded<T: PartialOrd + std::fmt::Display>(
    path: &Path,
    location: &str,
    field: &str,
    value: T,
    (min, max): (T, T),
    unit: &str,
) -> Result<T> {
    if value >= min && value <= max {
        return Ok(value);
    }
    Err(Error::input(
        path,
        location,
        format!("{field} = {value} is out of range: expected {min} to {max}{unit}"),
    ))
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
pub fn parse(text: &str, path: &Path) -> Result<Inventory> {
    let lines = crate::error::LineIndex::new(text);
    let raw: RawInventory = toml::from_str(text).map_err(|e| {
        let location = e
            .span()
            .map(|s| format!("line {}", lines.line(s.start)))
            .unwrap_or_else(|| "document".to_string());
        Error::input(path, location, e.message().trim().to_string())
    })?;

    let policy = build_policy(raw.policy.unwrap_or_default(), path, &lines)?;

    let mut owners = Vec::with_capacity(raw.owners.len());
    let mut owner_ids = HashSet::new();
    for spanned in raw.owners {
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

    let mut credentials = Vec::with_capacity(raw.credentials.len());
    let mut ids = HashSet::new();
    for spanned in raw.credentials {
        let line = lines.line(spanned.span().start);
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

    Ok(Inventory {
        policy,
        owners,
        credentials,
    })
}

/// A 12-digit AWS account id.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn build_policy(raw: RawPolicy, path: &Path, lines: &crate::error::LineIndex) -> Result<Policy> {
    let at = |table: &str, span: std::ops::Range<usize>| {
        format!("line {} ([{table}])", lines.line(span.start))
    };
    let mut policy = Policy::default();
    for (name, days) in raw.classes {
        let location = at("policy.classes", days.span());
        let class: RiskClass = name.parse().map_err(|e| {
            Error::input(path, &location, format!("class \"{name}\": expected {e}"))
        })?;
        let days = bounded(
            path,
            &location,
            &name,
            days.into_inner(),
            (1, MAX_DAYS),
            " days",
        )?;
        policy.classes.insert(class, days);
    }
    if let Some(f) = raw.breach_factor {
        let location = at("policy", f.span());
        policy.breach_factor = bounded(
            path,
            &location,
            "breach_factor",
            f.into_inner(),
            (1.0, MAX_BREACH_FACTOR),
            " (a multiple of the interval)",
        )?;
    }
    // (slot, value as written, field, minimum, maximum, unit)
    let numbers = [
        (
            &mut policy.due_soon_hours,
            raw.due_soon_hours,
            "due_soon_hours",
            0,
            MAX_HOURS,
            " hours",
        ),
        (
            &mut policy.unused_days,
            raw.unused_days,
            "unused_days",
            1,
            MAX_DAYS,
            " days",
        ),
        (
            &mut policy.unused_grace_days,
            raw.unused_grace_days,
            "unused_grace_days",
            0,
            MAX_DAYS,
            " days",
        ),
        (
            &mut policy.key_overlap_hours,
            raw.key_overlap_hours,
            "key_overlap_hours",
            0,
            MAX_HOURS,
            " hours",
        ),
        (
            &mut policy.inactive_key_days,
            raw.inactive_key_days,
            "inactive_key_days",
            1,
            MAX_DAYS,
            " days",
        ),
        (
            &mut policy.secret_unused_days,
            raw.secret_unused_days,
            "secret_unused_days",
            1,
            MAX_DAYS,
            " days",
        ),
        (
            &mut policy.pending_stuck_hours,
            raw.pending_stuck_hours,
            "pending_stuck_hours",
            0,
            MAX_HOURS,
            " hours",
        ),
        (
            &mut policy.audit_match_hours,
            raw.audit_match_hours,
            "audit_match_hours",
            0,
            MAX_HOURS,
            " hours",
        ),
        (
            &mut policy.tag_tolerance_hours,
            raw.tag_tolerance_hours,
            "tag_tolerance_hours",
            0,
            MAX_HOURS,
            " hours",
        ),
    ];
    for (slot, value, field, min, max, unit) in numbers {
        if let Some(value) = value {
            let location = at("policy", value.span());
            *slot = bounded(path, &location, field, value.into_inner(), (min, max), unit)?;
        }
    }
    if let Some(options) = raw.anomalous_usage {
        let location = at("policy.anomalous_usage", options.span());
        let o = options.into_inner();
        let check = |field, value: u64, min, max, unit| {
            bounded(path, &location, field, value, (min, max), unit)
        };
        check(
            "detection_hours",
            o.detection_hours.into(),
            1,
            MAX_HOURS.into(),
            " hours",
        )?;
        check(
            "baseline_days",
            o.baseline_days.into(),
            1,
            MAX_DAYS.into(),
            " days",
        )?;
        check(
            "min_baseline_calls",
            o.min_baseline_calls,
            0,
            MAX_COUNT,
            " calls",
        )?;
        check(
            "min_baseline_active_hours",
            o.min_baseline_active_hours as u64,
            0,
            MAX_HOURS.into(),
            " hours",
        )?;
        bounded(
            path,
            &location,
            "rare_operation_share",
            o.rare_operation_share,
            (0.0, 1.0),
            " (a share of the baseline calls)",
        )?;
        if !(o.rate_sigmas > 0.0 && o.rate_sigmas <= MAX_RATE_SIGMAS) {
            return Err(Error::input(
                path,
                &location,
                format!(
                    "rate_sigmas = {} is out of range: expected more than 0 and at most {MAX_RATE_SIGMAS} (standard deviations)",
                    o.rate_sigmas
                ),
            ));
        }
        policy.anomalous_usage = o;
    }
    if let Some(options) = raw.auth_failure_spike {
        let location = at("policy.auth_failure_spike", options.span());
        let o = options.into_inner();
        bounded(
            path,
            &location,
            "detection_hours",
            o.detection_hours,
            (1, MAX_HOURS),
            " hours",
        )?;
        bounded(
            path,
            &location,
            "min_rate",
            o.min_rate,
            (0.0, 1.0),
            " (a share of the calls in a window)",
        )?;
        bounded(
            path,
            &location,
            "min_auth_errors",
            o.min_auth_errors,
            (0, MAX_COUNT),
            "",
        )?;
        policy.auth_failure_spike = o;
    }
    if let Some(options) = raw.incident_not_remediated {
        let location = at("policy.incident_not_remediated", options.span());
        let o = options.into_inner();
        bounded(
            path,
            &location,
            "emergency_hours",
            o.emergency_hours,
            (1, MAX_HOURS),
            " hours",
        )?;
        bounded(
            path,
            &location,
            "access_denied_burst",
            o.access_denied_burst,
            (1, MAX_COUNT),
            " events",
        )?;
        bounded(
            path,
            &location,
            "access_denied_burst_minutes",
            o.access_denied_burst_minutes,
            (1, MAX_HOURS * 60),
            " minutes",
        )?;
        policy.incident_not_remediated = o;
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(inv.policy.unused_days, 30);
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
        assert_eq!(inv.policy.auth_failure_spike.min_rate, 0.2);
        assert_eq!(
            inv.policy.auth_failure_spike.min_auth_errors, 5,
            "unset fields keep defaults"
        );
        assert_eq!(inv.policy.anomalous_usage.baseline_days, 7);
        let err = parse_str("[policy.auth_failure_spike]\nrate = 0.2\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `rate`"), "{err}");
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
        assert_eq!(inv.policy.anomalous_usage.baseline_days, 36_500);
        assert_eq!(inv.credentials[0].max_uses, Some(0));
    }

    #[test]
    fn incident_options_are_configurable_and_bounded() {
        let inv = parse_str("[policy.incident_not_remediated]\nemergency_hours = 4\n").unwrap();
        let o = &inv.policy.incident_not_remediated;
        assert_eq!(o.emergency_hours, 4);
        assert_eq!(
            (o.access_denied_burst, o.access_denied_burst_minutes),
            (5, 60),
            "unset fields keep defaults"
        );
        assert_eq!(
            parse_str("")
                .unwrap()
                .policy
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
        assert_eq!(inv.policy.incident_not_remediated.emergency_hours, 876_000);
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
