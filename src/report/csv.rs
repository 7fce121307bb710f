//! findings.csv, written by the crate's one CSV writer, [`crate::output::to_csv`].

use std::io::Write;

use super::FindingView;
use crate::output::write_csv;

/// findings.csv: one row per finding, streamed into `out` one row at a time.
pub fn write_findings_csv(findings: &[FindingView], out: impl Write) -> std::io::Result<()> {
    let header = [
        "rule",
        "severity",
        "credential",
        "principal",
        "kind",
        "account",
        "region",
        "owner",
        "message",
        "fingerprint",
        "evidence",
        "waiver",
    ];
    let rows = std::iter::once(header.iter().map(|h| (*h).into()).collect()).chain(
        findings.iter().map(|f| {
            let evidence = f
                .evidence
                .iter()
                .map(|e| format!("{}={}", e.key, e.value))
                .collect::<Vec<_>>()
                .join("; ");
            vec![
                f.rule.as_str().into(),
                f.severity.as_str().into(),
                f.credential.as_str().into(),
                f.principal.as_str().into(),
                f.kind.as_str().into(),
                f.account.as_str().into(),
                f.region.as_str().into(),
                f.owner.as_str().into(),
                f.message.as_str().into(),
                f.fingerprint.as_str().into(),
                evidence.into(),
                f.waiver
                    .as_ref()
                    .map(|w| {
                        format!(
                            "{} (approved by {}, expires {})",
                            w.ticket, w.approver, w.expires
                        )
                    })
                    .unwrap_or_default()
                    .into(),
            ]
        }),
    );
    write_csv(out, rows)
}
