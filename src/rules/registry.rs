//! Looking rules up in the catalogue ([`RULES`], declared in `rules/mod.rs`).

use super::{RULES, Rule};

/// Every rule id, in catalogue order.
pub fn ids() -> Vec<&'static str> {
    RULES.iter().map(|r| r.meta.id).collect()
}

/// The rule with this id.
pub fn find(id: &str) -> Option<&'static Rule> {
    RULES.iter().copied().find(|r| r.meta.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_kebab_case_and_documented() {
        let mut seen = HashSet::new();
        for rule in RULES {
            let m = &rule.meta;
            assert!(seen.insert(m.id), "duplicate rule id {}", m.id);
            assert!(
                !m.id.is_empty()
                    && m.id.split('-').all(|part| !part.is_empty()
                        && part
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())),
                "{} is not kebab-case",
                m.id
            );
            assert!(!m.title.is_empty(), "{} has no title", m.id);
            assert!(!m.finds.is_empty(), "{} does not say what it finds", m.id);
            assert!(
                m.severity_varies
                    .is_none_or(|v| !v.is_empty() && v != m.default_severity.as_str()),
                "{}: severity_varies is for a severity that varies; leave it None otherwise",
                m.id
            );
            assert!(m.rationale.len() > 40, "{} needs a rationale", m.id);
            assert!(m.remediation.len() > 20, "{} needs a remediation", m.id);
        }
    }

    #[test]
    fn every_rule_is_mapped_to_a_control_and_known_to_the_catalogues() {
        let frameworks = crate::controls::builtin().expect("built-in catalogues load");
        for rule in RULES {
            let id = rule.meta.id;
            let mapped = frameworks
                .iter()
                .flat_map(|f| &f.controls)
                .any(|c| c.rules.iter().any(|r| r == id));
            assert!(mapped, "{id} maps to no control");
        }
    }

    #[test]
    fn the_design_catalogue_is_implemented() {
        for id in [
            "unmanaged-credential",
            "orphaned-inventory-entry",
            "rotation-overdue",
            "rotation-due-soon",
            "unclassified-credential",
            "unowned-credential",
            "unused-credential",
            "multiple-active-keys",
            "root-access-key",
            "inactive-key-lingering",
            "rotation-not-automated",
            "rotation-schedule-drift",
            "rotation-failing",
            "audit-trail-gap",
            "tag-drift",
            "credential-reuse",
            "usage-limit-exceeded",
            "anomalous-usage",
            "auth-failure-spike",
            "incident-not-remediated",
            "secret-unused",
            "waiver-expired",
        ] {
            assert!(find(id).is_some(), "rule {id} is missing");
        }
    }
}
