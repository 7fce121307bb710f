//! findings.json: the header, a summary, and every finding with its evidence.

use std::io::Write;

use serde::Serialize;

use super::{FindingView, ReportHeader, SCHEMA_VERSION, Summary};

#[derive(Serialize)]
struct FindingsDocument<'a> {
    schema_version: u32,
    #[serde(flatten)]
    header: &'a ReportHeader,
    summary: &'a Summary,
    findings: &'a [FindingView],
}

/// The findings document, pretty-printed, ending in a newline, serialised straight into `out`
/// (no document held in memory).
pub fn write_findings_json(
    header: &ReportHeader,
    summary: &Summary,
    views: &[FindingView],
    mut out: impl Write,
) -> std::io::Result<()> {
    let doc = FindingsDocument {
        schema_version: SCHEMA_VERSION,
        header,
        summary,
        findings: views,
    };
    serde_json::to_writer_pretty(&mut out, &doc)?;
    out.write_all(b"\n")
}
