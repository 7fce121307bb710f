//! Run-to-run comparison: new, resolved and persisting findings, keyed by the stable
//! fingerprint (rule + credential), so a rotated key shows as one resolved and maybe one new.

use std::collections::HashSet;

use serde::Serialize;

use crate::model::Finding;

/// What changed between two runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diff {
    pub from_run: i64,
    pub to_run: i64,
    /// In the later run, not the earlier one.
    pub new: Vec<Finding>,
    /// In the earlier run, not the later one.
    pub resolved: Vec<Finding>,
    /// In both.
    pub persisting: usize,
}

/// Compares the findings of two runs (each in canonical order; the output keeps that order).
pub fn compare(from_run: i64, before: &[Finding], to_run: i64, after: &[Finding]) -> Diff {
    let before_keys: HashSet<String> = before.iter().map(Finding::fingerprint).collect();
    let after_keys: HashSet<String> = after.iter().map(Finding::fingerprint).collect();
    let new: Vec<Finding> = after
        .iter()
        .filter(|f| !before_keys.contains(&f.fingerprint()))
        .cloned()
        .collect();
    let resolved: Vec<Finding> = before
        .iter()
        .filter(|f| !after_keys.contains(&f.fingerprint()))
        .cloned()
        .collect();
    Diff {
        from_run,
        to_run,
        persisting: after.len() - new.len(),
        new,
        resolved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CredentialKind, Severity};

    fn f(rule: &str, credential: &str) -> Finding {
        Finding {
            rule: rule.into(),
            severity: Severity::High,
            credential: credential.into(),
            kind: CredentialKind::IamAccessKey,
            account: None,
            region: None,
            owner: None,
            principal: None,
            message: format!("{rule} on {credential}"),
            evidence: vec![],
            waiver: None,
        }
    }

    #[test]
    fn a_rotated_key_is_one_resolved_and_one_new() {
        let before = vec![
            f("rotation-overdue", "AKIAOLD"),
            f("unowned-credential", "db"),
        ];
        let mut after = vec![
            f("rotation-overdue", "AKIANEW"),
            f("unowned-credential", "db"),
        ];
        // The message may change between runs; identity does not.
        after[1].message = "changed".into();
        let d = compare(1, &before, 2, &after);
        assert_eq!(
            d.new
                .iter()
                .map(|f| f.credential.as_str())
                .collect::<Vec<_>>(),
            ["AKIANEW"]
        );
        assert_eq!(
            d.resolved
                .iter()
                .map(|f| f.credential.as_str())
                .collect::<Vec<_>>(),
            ["AKIAOLD"]
        );
        assert_eq!(d.persisting, 1);
    }
}
