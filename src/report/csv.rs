//! CSV output: RFC 4180 with commas, every cell neutralised against formula injection.

use super::FindingView;

/// Makes a cell safe to open in a spreadsheet: a cell starting with `=`, `+`, `-`, `@`, tab or
/// carriage return is prefixed with `'` so it is shown as text, never evaluated.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// Writes rows (the first is the header) as RFC 4180 CSV with CRLF line ends.
pub fn to_csv<'a>(rows: impl IntoIterator<Item = Vec<std::borrow::Cow<'a, str>>>) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for row in rows {
        let cells: Vec<std::borrow::Cow<str>> = row.iter().map(|c| neutralise(c)).collect();
        writer
            .write_record(cells.iter().map(|c| c.as_ref()))
            .expect("writing to memory cannot fail");
    }
    writer.into_inner().expect("writing to memory cannot fail")
}

/// findings.csv: one row per finding.
pub fn findings_csv(findings: &[FindingView]) -> Vec<u8> {
    let header = [
        "rule",
        "severity",
        "credential",
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
    to_csv(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutralises_formula_cells_and_quotes() {
        let out = String::from_utf8(to_csv(vec![
            vec![
                "=cmd|' /C calc'!A0".into(),
                "+1".into(),
                "-2".into(),
                "@SUM(A1)".into(),
            ],
            vec![
                "\tx".into(),
                "\rx".into(),
                "a,b".into(),
                "say \"hi\"".into(),
            ],
            vec![
                "plain".into(),
                "".into(),
                "x=1".into(),
                "line\nbreak".into(),
            ],
        ]))
        .unwrap();
        assert_eq!(
            out,
            "'=cmd|' /C calc'!A0,'+1,'-2,'@SUM(A1)\r\n'\tx,\"'\rx\",\"a,b\",\"say \"\"hi\"\"\"\r\nplain,,x=1,\"line\nbreak\"\r\n"
        );
    }
}
