//! findings.json: the header, a summary, and every finding with its evidence.

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

/// The findings document, pretty-printed, ending in a newline.
pub fn findings_json(header: &ReportHeader, summary: &Summary, views: &[FindingView]) -> Vec<u8> {
    let doc = FindingsDocument {
        schema_version: SCHEMA_VERSION,
        header,
        summary,
        findings: views,
    };
    let mut bytes = serde_json::to_vec_pretty(&doc).expect("view model serialises: plain data");
    bytes.push(b'\n');
    bytes
}
