//! The declared side: `inventory.toml` (credentials, owners, class policies and rule thresholds).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{CredentialKind, DeclaredCredential, Owner, OwnerStatus, RiskClass};
use crate::rules::anomalous_usage::AnomalousUsageOptions;
use crate::rules::auth_failure_spike::AuthFailureSpikeOptions;

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
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            classes: RiskClass::ALL
                .into_iter()
                .map(|c| (c, default_interval(c)))
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

/// Policy as written: every field optional, classes merged over the defaults.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    classes: BTreeMap<String, u32>,
    due_soon_hours: Option<u32>,
    breach_factor: Option<f64>,
    unused_days: Option<u32>,
    unused_grace_days: Option<u32>,
    key_overlap_hours: Option<u32>,
    inactive_key_days: Option<u32>,
    secret_unused_days: Option<u32>,
    pending_stuck_hours: Option<u32>,
    audit_match_hours: Option<u32>,
    tag_tolerance_hours: Option<u32>,
    anomalous_usage: Option<AnomalousUsageOptions>,
    auth_failure_spike: Option<AuthFailureSpikeOptions>,
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

    let policy = build_policy(raw.policy.unwrap_or_default(), path)?;

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
        if c.interval_days == Some(0) {
            return Err(Error::input(path, at(), "interval_days must be at least 1"));
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

fn build_policy(raw: RawPolicy, path: &Path) -> Result<Policy> {
    let mut policy = Policy::default();
    for (name, days) in raw.classes {
        let class: RiskClass = name.parse().map_err(|e| {
            Error::input(
                path,
                "[policy.classes]",
                format!("class \"{name}\": expected {e}"),
            )
        })?;
        if days == 0 {
            return Err(Error::input(
                path,
                "[policy.classes]",
                format!("class {name}: interval must be at least 1 day"),
            ));
        }
        policy.classes.insert(class, days);
    }
    if let Some(f) = raw.breach_factor {
        if !(f.is_finite() && f >= 1.0) {
            return Err(Error::input(
                path,
                "[policy] breach_factor",
                "expected a number of at least 1.0",
            ));
        }
        policy.breach_factor = f;
    }
    let set = |slot: &mut u32, v: Option<u32>| {
        if let Some(v) = v {
            *slot = v;
        }
    };
    set(&mut policy.due_soon_hours, raw.due_soon_hours);
    set(&mut policy.unused_days, raw.unused_days);
    set(&mut policy.unused_grace_days, raw.unused_grace_days);
    set(&mut policy.key_overlap_hours, raw.key_overlap_hours);
    set(&mut policy.inactive_key_days, raw.inactive_key_days);
    set(&mut policy.secret_unused_days, raw.secret_unused_days);
    set(&mut policy.pending_stuck_hours, raw.pending_stuck_hours);
    set(&mut policy.audit_match_hours, raw.audit_match_hours);
    set(&mut policy.tag_tolerance_hours, raw.tag_tolerance_hours);
    if let Some(options) = raw.anomalous_usage {
        policy.anomalous_usage = options;
    }
    if let Some(options) = raw.auth_failure_spike {
        policy.auth_failure_spike = options;
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
