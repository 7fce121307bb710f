//! tag-drift: rotation tags (owner, class, last-rotation-date, next-rotation-date) disagree with
//! the facts.

use chrono::{DateTime, NaiveDate, Utc};

use super::options::{MAX_HOURS, OutOfRange, bounded};
use super::{Rule, RuleMeta, SET_TAG_PREFIX, Source};

use crate::join::{EvalCtx, fmt_time};
use crate::model::{Finding, Severity, Timestamp};

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "tag-drift",
        title: "Rotation tags disagree with the facts",
        finds: "owner/class/last-rotation-date/next-rotation-date tags contradict the facts",
        default_severity: Severity::Low,
        severity_varies: None,
        rationale: "Rotation tooling, cost reports and people read the `owner`, `class`, \
                    `last-rotation-date` and `next-rotation-date` tags. Tags that contradict the \
                    inventory or the real rotation dates send them the wrong way. Dates may differ \
                    by up to {tolerance_hours} h (`tag_tolerance_hours`).",
        remediation: "Correct the tags (or let the rotation pipeline write them after each rotation).",
        sources: &[Source::Inventory, Source::IamKeys, Source::SecretsManager],
    },
    evaluate: |ctx, options| evaluate(ctx, &options.tag_drift),
};

/// Options of tag-drift, set in `[policy.tag-drift]` of inventory.toml (any field left out keeps
/// its default; the older spelling `tag_tolerance_hours` in `[policy]` is still accepted).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TagDriftOptions {
    /// How many hours a date tag may be from the fact before it is drift.
    pub tolerance_hours: u32,
}

impl Default for TagDriftOptions {
    fn default() -> Self {
        TagDriftOptions {
            tolerance_hours: 24,
        }
    }
}

impl TagDriftOptions {
    /// Checks every option against its bounds.
    pub fn check(&self) -> Result<(), OutOfRange> {
        bounded(
            "tolerance_hours",
            self.tolerance_hours,
            (0, MAX_HOURS),
            " hours",
        )?;
        Ok(())
    }
}

/// A date tag: `YYYY-MM-DD` (midnight UTC) or RFC 3339.
fn parse_date_tag(value: &str) -> Option<Timestamp> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
        })
}

/// `fact` in the tag's own format: `YYYY-MM-DD` when the tag is a bare date, else RFC 3339.
fn date_like(tag: &str, fact: Timestamp) -> String {
    if NaiveDate::parse_from_str(tag, "%Y-%m-%d").is_ok() {
        fact.format("%Y-%m-%d").to_string()
    } else {
        fmt_time(fact)
    }
}

fn evaluate(ctx: &EvalCtx, options: &TagDriftOptions) -> Vec<Finding> {
    let tolerance = ctx.hours(options.tolerance_hours);
    let mut findings = Vec::new();
    for v in &ctx.credentials {
        let (Some(o), Some(d)) = (v.observed, v.declared) else {
            continue;
        };
        let mut problems = Vec::new();
        let mut evidence = Vec::new();
        // Each drifting tag's value, then (where the facts know it) the value it should have,
        // as `set-tag:<name>`: the plan sets exactly these, never re-deriving the drift.
        let mut fixes: Vec<(&str, String)> = Vec::new();
        if let Some(tag) = o.tags.get("owner")
            && d.owner.as_deref() != Some(tag.as_str())
        {
            problems.push(format!(
                "owner tag \"{tag}\" but declared owner \"{}\"",
                d.owner.as_deref().unwrap_or("none")
            ));
            evidence.push(("tag_owner", tag.clone()));
            if let Some(owner) = &d.owner {
                fixes.push(("owner", owner.clone()));
            }
        }
        if let Some(tag) = o.tags.get("class")
            && d.class.map(|c| c.as_str()) != Some(tag.as_str())
        {
            problems.push(format!(
                "class tag \"{tag}\" but declared class {}",
                d.class.map(|c| c.as_str()).unwrap_or("none")
            ));
            evidence.push(("tag_class", tag.clone()));
            if let Some(class) = d.class {
                fixes.push(("class", class.to_string()));
            }
        }
        for (tag_name, fact) in [
            ("last-rotation-date", ctx.last_rotation(v)),
            ("next-rotation-date", ctx.due(v)),
        ] {
            let Some(tag) = o.tags.get(tag_name) else {
                continue;
            };
            match (parse_date_tag(tag), fact) {
                (None, _) => {
                    problems.push(format!("{tag_name} tag \"{tag}\" is not a date"));
                    evidence.push((tag_name, tag.clone()));
                }
                (Some(t), Some(f)) if (t - f).abs() > tolerance => {
                    problems.push(format!(
                        "{tag_name} tag {tag} but the fact is {}",
                        fmt_time(f)
                    ));
                    evidence.push((tag_name, tag.clone()));
                }
                _ => continue,
            }
            if let Some(f) = fact {
                fixes.push((tag_name, date_like(tag, f)));
            }
        }
        let fixes: Vec<(String, String)> = fixes
            .into_iter()
            .map(|(name, value)| (format!("{SET_TAG_PREFIX}{name}"), value))
            .collect();
        if !problems.is_empty() {
            let mut finding = ctx.finding(
                RULE.meta.id,
                RULE.meta.default_severity,
                v,
                problems.join("; "),
                evidence,
            );
            finding.evidence.extend(fixes);
            findings.push(finding);
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::*;

    #[test]
    fn flags_tags_that_contradict_facts() {
        let mut good = secret("prod/good", 3);
        good.tags.insert("owner".into(), "team".into());
        good.tags.insert("class".into(), "A".into());
        good.tags
            .insert("last-rotation-date".into(), fmt_time(days_ago(3)));
        good.tags.insert(
            "next-rotation-date".into(),
            (days_ago(3) + chrono::Duration::days(14))
                .format("%Y-%m-%d")
                .to_string(),
        );
        let mut wrong_owner = secret("prod/wrong-owner", 3);
        wrong_owner
            .tags
            .insert("owner".into(), "someone-else".into());
        let mut stale_date = secret("prod/stale-date", 3);
        stale_date
            .tags
            .insert("last-rotation-date".into(), "2026-01-01".into());
        let mut garbage = secret("prod/garbage", 3);
        garbage
            .tags
            .insert("next-rotation-date".into(), "soon".into());
        let all = vec![
            good,
            wrong_owner.clone(),
            stale_date.clone(),
            garbage.clone(),
        ];
        let declared = declare_all(&all);
        let mut want = vec![
            wrong_owner.id.clone(),
            stale_date.id.clone(),
            garbage.id.clone(),
        ];
        want.sort();
        let facts = facts(all, declared, vec![]);
        assert_eq!(flagged(&RULE, &facts), want);
        // The finding carries the values the tags should have, for the plan.
        let ctx = EvalCtx::new(&facts, as_of());
        let findings = (RULE.evaluate)(&ctx, &crate::rules::RuleOptions::default());
        let fixes = |id: &str| -> Vec<(String, String)> {
            let f = findings.iter().find(|f| f.credential == id).unwrap();
            f.evidence
                .iter()
                .filter(|(k, _)| k.starts_with(SET_TAG_PREFIX))
                .cloned()
                .collect()
        };
        assert_eq!(
            fixes(&stale_date.id),
            [(
                "set-tag:last-rotation-date".to_string(),
                days_ago(3).format("%Y-%m-%d").to_string()
            )]
        );
        assert_eq!(
            fixes(&wrong_owner.id),
            [("set-tag:owner".to_string(), "team".to_string())]
        );
        // A garbage date is replaced by the fact in RFC 3339.
        let garbage_fix = fixes(&garbage.id);
        assert_eq!(garbage_fix.len(), 1);
        assert_eq!(garbage_fix[0].0, "set-tag:next-rotation-date");
        assert!(garbage_fix[0].1.ends_with('Z'), "{garbage_fix:?}");
    }
}
