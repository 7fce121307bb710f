//! `summary.md`: a short Markdown summary of a run, fit for a CI job summary
//! (`$GITHUB_STEP_SUMMARY`): status (a partial scan flagged with what could not be read),
//! findings by severity, what changed since the previous run, failing controls, the most urgent
//! remediation actions and the fleet hygiene score.
//!
//! Every string from the view goes through [`escape`] (or [`code`] where it is shown as code),
//! so an id, message or owner that came from AWS or an input file cannot add HTML, links or
//! table cells to the summary.

use std::fmt::Write as _;

use super::FindingView;
use super::view::{DiffView, FrameworkView, ReportView, UnmatchedWaiverView};
use crate::model::CoverageEntry;
use crate::output::escape_markdown as escape;
use crate::plan::{Action, Score};

/// How many new findings the diff section lists before "and N more".
pub const NEW_LIMIT: usize = 20;
/// How many resolved findings the diff section lists.
pub const RESOLVED_LIMIT: usize = 10;
/// How many remediation actions the summary lists.
pub const ACTION_LIMIT: usize = 10;

const SEVERITIES: [&str; 5] = ["critical", "high", "medium", "low", "info"];

/// [`summary_markdown`] written to `out` (the summary is short: its lists are capped).
pub fn write_summary_markdown(
    view: &ReportView,
    mut out: impl std::io::Write,
) -> std::io::Result<()> {
    out.write_all(&summary_markdown(view))
}

/// Renders the CI summary of `view` as Markdown (UTF-8, trailing newline).
pub fn summary_markdown(view: &ReportView) -> Vec<u8> {
    let mut md = String::new();
    let partial = view.run.status != "complete";
    let failed: Vec<_> = view.coverage.iter().filter(|c| !c.ok).collect();
    let incomplete = partial || !failed.is_empty();

    run_table(&mut md, view, incomplete);
    shards_section(&mut md, view);
    if incomplete {
        partial_scan_warning(&mut md, &failed, view.coverage.len());
    }
    findings_section(&mut md, view);
    unmatched_waivers_note(&mut md, &view.unmatched_waivers);
    if let Some(diff) = &view.diff {
        diff_section(&mut md, diff);
    }
    controls_section(&mut md, &view.frameworks);
    remediation_section(&mut md, &view.plan.actions);
    fleet_score_line(&mut md, &view.plan.fleet_score);
    md.into_bytes()
}

/// The title and the run table: id, as-of, status, credentials, score and chain head.
fn run_table(md: &mut String, view: &ReportView, incomplete: bool) {
    let _ = writeln!(md, "## {} — run {}\n", escape(view.tool), view.run.id);
    let status = if incomplete {
        format!("⚠️ **{}** (incomplete scan)", escape(&view.run.status))
    } else {
        format!("✅ {}", escape(&view.run.status))
    };
    md.push_str("| | |\n|---|---|\n");
    let _ = writeln!(md, "| Run | {} |", view.run.id);
    let _ = writeln!(md, "| As of | {} |", escape(&view.run.as_of));
    let _ = writeln!(md, "| Status | {status} |");
    let _ = writeln!(
        md,
        "| Credentials | {} observed, {} declared |",
        view.run.credentials_observed, view.run.credentials_declared
    );
    let _ = writeln!(
        md,
        "| Fleet hygiene score | **{}** / 100 |",
        view.plan.fleet_score.score
    );
    // The snapshot's hash chain ends at this run: `credaudit verify --db DB --head HASH`
    // right after the scan proves no run was removed since.
    let _ = writeln!(md, "| Chain head | {} |", code(&view.run.content_hash));
    md.push('\n');
}

/// A merged run's shards: file, run, chain head, as-of, accounts and failed coverage.
fn shards_section(md: &mut String, view: &ReportView) {
    if view.run.shards.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "### Shards\n\nMerged from {} shard snapshot(s), the latest run of each:\n",
        view.run.shards.len()
    );
    md.push_str("| Shard | Run | Chain head | As of | Accounts | Coverage gaps |\n");
    md.push_str("|---|---:|---|---|---|---:|\n");
    for s in &view.run.shards {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            code(&s.file),
            s.run_id,
            code(&s.chain_head),
            escape(&s.as_of),
            escape(&s.accounts.join(", ")),
            s.coverage.iter().filter(|c| !c.ok).count()
        );
    }
    md.push('\n');
}

/// The partial-scan warning, listing the `failed` coverage entries out of `coverage_total`.
fn partial_scan_warning(md: &mut String, failed: &[&CoverageEntry], coverage_total: usize) {
    let _ = writeln!(
        md,
        "> [!WARNING]\n> **Partial scan.** {} of {} coverage entries failed: findings below \
         cover only what could be read, and nothing unread is reported as clean.",
        failed.len(),
        coverage_total
    );
    for c in failed {
        let error = c
            .error
            .as_deref()
            .map(|e| format!(": {}", escape(e)))
            .unwrap_or_default();
        let _ = writeln!(
            md,
            "> - {} in {} / {}{error}",
            escape(&c.api),
            escape(&c.account),
            escape(&c.region)
        );
    }
    md.push('\n');
}

/// Findings by severity, the total, and how many of them are waived.
fn findings_section(md: &mut String, view: &ReportView) {
    let _ = writeln!(md, "### Findings\n");
    md.push_str("| Severity | Count |\n|---|---:|\n");
    for severity in SEVERITIES {
        let n = view.summary.by_severity.get(severity).copied().unwrap_or(0);
        let _ = writeln!(md, "| {severity} | {n} |");
    }
    let _ = writeln!(md, "| **total** | **{}** |\n", view.summary.total);
    let waived = view.findings.iter().filter(|f| f.waiver.is_some()).count();
    if waived > 0 {
        let _ = writeln!(
            md,
            "{waived} of them waived: accepted by a waiver in force, shown in the reports, not \
             failing controls.\n"
        );
    }
}

/// A note listing the waivers that match no finding, when there are any.
fn unmatched_waivers_note(md: &mut String, unmatched: &[UnmatchedWaiverView]) {
    if unmatched.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "> [!NOTE]\n> **{} waiver(s) match no finding** (stale, or written for another id):",
        unmatched.len()
    );
    for w in unmatched.iter().take(RESOLVED_LIMIT) {
        let _ = writeln!(
            md,
            "> - line {}: {} on {} ({}, expires {})",
            w.line,
            code(&w.rule),
            escape(&w.credential),
            escape(&w.ticket),
            escape(&w.expires)
        );
    }
    if unmatched.len() > RESOLVED_LIMIT {
        let _ = writeln!(md, "> - … and {} more", unmatched.len() - RESOLVED_LIMIT);
    }
    md.push('\n');
}

/// What changed since the previous run: counts, then the new and resolved findings.
fn diff_section(md: &mut String, diff: &DiffView) {
    let _ = writeln!(md, "### Since run {}\n", diff.from_run);
    let _ = writeln!(
        md,
        "**{} new**, {} resolved, {} persisting.\n",
        diff.new.len(),
        diff.resolved.len(),
        diff.persisting
    );
    if !diff.new.is_empty() {
        md.push_str("New findings:\n\n");
        findings_table(md, &diff.new, NEW_LIMIT);
    }
    if !diff.resolved.is_empty() {
        md.push_str("Resolved:\n\n");
        for f in diff.resolved.iter().take(RESOLVED_LIMIT) {
            let _ = writeln!(md, "- {} on {}", code(&f.rule), escape(&f.credential));
        }
        more(md, diff.resolved.len(), RESOLVED_LIMIT, "resolved findings");
        md.push('\n');
    }
}

/// The controls section: counts per framework, failing controls, then the not-assessed ones.
fn controls_section(md: &mut String, frameworks: &[FrameworkView]) {
    let _ = writeln!(md, "### Controls\n");
    md.push_str(
        "| Framework | Fail | Pass | Not assessed | Manual | N/A |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for fw in frameworks {
        let _ = writeln!(
            md,
            "| {} {} | {} | {} | {} | {} | {} |",
            escape(&fw.name),
            escape(&fw.version),
            fw.fail,
            fw.pass,
            fw.not_assessed,
            fw.manual,
            fw.not_applicable
        );
    }
    md.push('\n');
    failing_controls(md, frameworks);
    not_assessed_controls(md, frameworks);
}

/// The failing controls of each framework, or "No failing controls.".
fn failing_controls(md: &mut String, frameworks: &[FrameworkView]) {
    let mut any_failing = false;
    for fw in frameworks {
        let failing: Vec<String> = fw
            .controls
            .iter()
            .filter(|c| c.status == "fail")
            .map(|c| escape(&c.id))
            .collect();
        if !failing.is_empty() {
            any_failing = true;
            let _ = writeln!(
                md,
                "- **{}** failing: {}",
                escape(&fw.name),
                failing.join(", ")
            );
        }
    }
    if any_failing {
        md.push('\n');
    } else {
        md.push_str("No failing controls.\n\n");
    }
}

/// Controls that cannot pass on what this run collected, grouped by reason.
fn not_assessed_controls(md: &mut String, frameworks: &[FrameworkView]) {
    let mut not_assessed: Vec<(&str, Vec<String>)> = Vec::new();
    for fw in frameworks {
        for c in fw.controls.iter().filter(|c| c.status == "not-assessed") {
            let id = format!("{} {}", escape(&fw.name), escape(&c.id));
            match not_assessed
                .iter_mut()
                .find(|(reason, _)| *reason == c.status_reason)
            {
                Some((_, ids)) => ids.push(id),
                None => not_assessed.push((c.status_reason.as_str(), vec![id])),
            }
        }
    }
    if !not_assessed.is_empty() {
        md.push_str("Not assessed (a source their rules need was not collected):\n\n");
        for (reason, ids) in &not_assessed {
            let _ = writeln!(md, "- {}: {}", escape(reason), ids.join(", "));
        }
        md.push('\n');
    }
}

/// The most urgent remediation actions, or "Nothing to do.".
fn remediation_section(md: &mut String, actions: &[Action]) {
    let _ = writeln!(md, "### Top remediation actions\n");
    if actions.is_empty() {
        md.push_str("Nothing to do.\n\n");
        return;
    }
    md.push_str("| Priority | Action | Credential | Owner | Due |\n|---:|---|---|---|---|\n");
    for a in actions.iter().take(ACTION_LIMIT) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            a.priority,
            code(a.action.as_str()),
            escape(&a.credential),
            if a.owner.is_empty() {
                "—".to_string()
            } else {
                escape(&a.owner)
            },
            escape(&a.due)
        );
    }
    more(
        md,
        actions.len(),
        ACTION_LIMIT,
        "actions in `remediation-plan.csv`",
    );
    md.push('\n');
}

/// The closing line: the fleet hygiene score and its parts.
fn fleet_score_line(md: &mut String, score: &Score) {
    let _ = writeln!(
        md,
        "Fleet hygiene score **{}** / 100 over {} credentials: automation {:.0}%, in policy \
         {:.0}%, finding load {:.1}.",
        score.score,
        score.credentials,
        score.automation * 100.0,
        score.in_policy * 100.0,
        score.finding_load
    );
}

/// A table of findings, the first `limit` of them, then "and N more".
fn findings_table(md: &mut String, findings: &[FindingView], limit: usize) {
    md.push_str("| Severity | Rule | Credential | Message |\n|---|---|---|---|\n");
    for f in findings.iter().take(limit) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            f.severity,
            code(&f.rule),
            escape(&f.credential),
            escape(&f.message)
        );
    }
    more(md, findings.len(), limit, "new findings");
    md.push('\n');
}

fn more(md: &mut String, total: usize, limit: usize, what: &str) {
    if total > limit {
        let _ = writeln!(md, "\n…and {} more {what}.", total - limit);
    }
}

/// A trusted identifier (a rule id, an action kind) as inline code. Only for values made of
/// characters that cannot end a code span; anything else is escaped as text instead.
fn code(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        format!("`{text}`")
    } else {
        escape(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sarif::testview::{
        HOSTILE_ID, RESOLVED_ID, sample_view, sample_view_with_diff,
    };

    fn render(view: &ReportView) -> String {
        String::from_utf8(summary_markdown(view)).expect("UTF-8")
    }

    /// The cells of a Markdown table row, split on unescaped `|`.
    fn cells(row: &str) -> Vec<String> {
        let mut cells = Vec::new();
        let mut cell = String::new();
        let mut chars = row.trim().trim_start_matches('|').chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    cell.push(c);
                    if let Some(next) = chars.next() {
                        cell.push(next);
                    }
                }
                '|' => cells.push(std::mem::take(&mut cell)),
                c => cell.push(c),
            }
        }
        if !cell.trim().is_empty() {
            cells.push(cell);
        }
        cells
    }

    #[test]
    fn diff_section_only_with_a_diff() {
        let without = render(&sample_view());
        assert!(!without.contains("### Since run"), "{without}");
        assert!(!without.contains("persisting"));

        let view = sample_view_with_diff();
        let diff = view.diff.as_ref().expect("diff");
        let with = render(&view);
        assert!(with.contains("### Since run 6"), "{with}");
        assert!(with.contains(&format!(
            "**{} new**, 1 resolved, {} persisting.",
            diff.new.len(),
            diff.persisting
        )));
        assert!(with.contains(&format!("- `{}` on {RESOLVED_ID}", diff.resolved[0].rule)));
    }

    #[test]
    fn new_findings_are_capped_with_and_n_more() {
        let mut view = sample_view_with_diff();
        let diff = view.diff.as_mut().expect("diff");
        let template = diff.new[0].clone();
        diff.new = (0..25)
            .map(|i| {
                let mut f = template.clone();
                f.credential = format!("AKIANEW{i:02}");
                f
            })
            .collect();
        diff.resolved = (0..13)
            .map(|i| {
                let mut f = template.clone();
                f.credential = format!("AKIAGONE{i:02}");
                f
            })
            .collect();
        let md = render(&view);
        assert!(
            md.contains("AKIANEW19") && !md.contains("AKIANEW20"),
            "{md}"
        );
        assert!(md.contains("…and 5 more new findings."));
        assert!(md.contains("AKIAGONE09") && !md.contains("AKIAGONE10"));
        assert!(md.contains("…and 3 more resolved findings."));
    }

    #[test]
    fn hostile_strings_cannot_add_html_or_cells() {
        let view = sample_view_with_diff();
        let md = render(&view);
        assert!(HOSTILE_ID.contains("<script>alert(1)</script>") && HOSTILE_ID.contains("a|b"));
        assert!(!md.contains("<script>"), "no raw tag: {md}");
        assert!(md.contains(r"\<script\>alert(1)\</script\>"), "{md}");
        assert!(md.contains(r"a\|b"));
        assert!(!md.contains(HOSTILE_ID));
        // Every table row keeps its column count although the id holds a `|`.
        let mut tables = 0;
        let mut width = None;
        for line in md.lines() {
            if line.starts_with('|') {
                let n = cells(line).len();
                match width {
                    None => {
                        width = Some(n);
                        tables += 1;
                    }
                    Some(w) => assert_eq!(n, w, "row {line:?}"),
                }
            } else {
                width = None;
            }
        }
        assert!(
            tables >= 4,
            "summary, severity, new findings, controls, actions tables"
        );
        let row = md
            .lines()
            .find(|l| l.starts_with('|') && l.contains("alert(1)"))
            .expect("a row with the hostile id");
        assert_eq!(cells(row).len(), 4, "{row}");
    }

    #[test]
    fn escape_neutralises_markdown_and_html() {
        assert_eq!(
            escape("<img src=x onerror=alert(1)>"),
            r"\<img src=x onerror=alert(1)\>"
        );
        assert_eq!(escape("a|b"), r"a\|b");
        assert_eq!(escape("[x](javascript:y)"), r"\[x\](javascript:y)");
        assert_eq!(escape("*_`#~&\\"), r"\*\_\`\#\~\&\\");
        assert_eq!(escape("line1\nline2\r\tx\u{7}"), "line1 line2  x");
        assert_eq!(code("rotation-overdue"), "`rotation-overdue`");
        assert_eq!(code("a`b"), r"a\`b");
    }

    #[test]
    fn summary_sections() {
        let view = sample_view();
        let md = render(&view);
        assert!(md.starts_with("## credaudit — run 7\n"), "{md}");
        assert!(md.contains("| As of | 2026-11-01T00:00:00Z |"));
        assert!(md.contains("| Status | ✅ complete |"));
        assert!(!md.contains("Partial scan"));
        for severity in SEVERITIES {
            let n = view.summary.by_severity.get(severity).copied().unwrap_or(0);
            assert!(md.contains(&format!("| {severity} | {n} |")), "{severity}");
        }
        assert!(md.contains(&format!("| **total** | **{}** |", view.summary.total)));
        for fw in &view.frameworks {
            let failing: Vec<&str> = fw
                .controls
                .iter()
                .filter(|c| c.status == "fail")
                .map(|c| c.id.as_str())
                .collect();
            if !failing.is_empty() {
                assert!(
                    md.contains(&format!("- **{}** failing: ", escape(&fw.name))),
                    "{md}"
                );
                for id in failing {
                    assert!(md.contains(&escape(id)));
                }
            }
        }
        let first = &view.plan.actions[0];
        assert!(md.contains(&format!(
            "| {} | `{}` | {} |",
            first.priority,
            first.action.as_str(),
            escape(&first.credential)
        )));
        assert!(md.contains(&format!(
            "Fleet hygiene score **{}** / 100",
            view.plan.fleet_score.score
        )));
        assert!(md.ends_with(".\n"));
    }

    #[test]
    fn waived_findings_are_counted() {
        assert!(!render(&sample_view()).contains("waived"));
        let mut view = sample_view();
        view.findings[0].waiver = Some(crate::report::sarif::testview::waiver());
        assert!(render(&view).contains("\n1 of them waived: "));
    }

    #[test]
    fn a_partial_scan_is_flagged_with_its_failed_coverage() {
        let mut view = sample_view();
        view.run.status = "partial".into();
        view.coverage[1].ok = false;
        view.coverage[1].error = Some("AccessDenied <b>".into());
        let md = render(&view);
        assert!(md.contains("⚠️ **partial** (incomplete scan)"), "{md}");
        assert!(md.contains("**Partial scan.** 1 of 3 coverage entries failed"));
        assert!(md.contains(&format!(
            "> - {} in {} / {}: AccessDenied \\<b\\>",
            escape(&view.coverage[1].api),
            view.coverage[1].account,
            view.coverage[1].region
        )));
    }

    #[test]
    fn deterministic() {
        assert_eq!(
            summary_markdown(&sample_view_with_diff()),
            summary_markdown(&sample_view_with_diff())
        );
    }
}
