//! CSV output: RFC 4180 with commas, every cell neutralised against formula injection. The one
//! CSV writer of the crate: every CSV file (bundle, plan, query, simulate) goes through [`to_csv`].

use super::FindingView;

/// Characters a spreadsheet may take as the start of a formula: `=`, `+`, `-`, `@` and their
/// fullwidth forms, which some spreadsheets fold to ASCII.
fn starts_formula(c: char) -> bool {
    matches!(
        c,
        '=' | '+' | '-' | '@' | '\u{FF1D}' | '\u{FF0B}' | '\u{FF0D}' | '\u{FF20}'
    )
}

/// Leading characters a spreadsheet may skip before it looks for a formula: any Unicode white
/// space (space, no-break space, ideographic space, tab, line breaks, vertical tab, form feed …)
/// and the byte-order mark.
fn is_leading_blank(c: char) -> bool {
    c.is_whitespace() || c == '\u{FEFF}'
}

/// Makes a cell safe to open in a spreadsheet: a cell that starts with a control character (tab,
/// carriage return, line feed, vertical tab, form feed …) or whose first character after any
/// leading white space is `=`, `+`, `-`, `@` or a fullwidth `＝ ＋ － ＠` is prefixed with `'` so it
/// is shown as text, never evaluated. That includes negative numbers (`-5` becomes `'-5`): a cell
/// cannot be told safe by its column.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    let starts_control = cell.chars().next().is_some_and(char::is_control);
    let first_visible = cell.chars().find(|c| !is_leading_blank(*c));
    if starts_control || first_visible.is_some_and(starts_formula) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// Writes rows (the first is the header) as RFC 4180 CSV with CRLF line ends. A cell is quoted
/// when it holds a comma, a quote, a line break or a `;` (spreadsheets in locales whose list
/// separator is `;` would otherwise split it).
pub fn to_csv<'a>(rows: impl IntoIterator<Item = Vec<std::borrow::Cow<'a, str>>>) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Necessary)
        // With `Necessary` quoting, the writer quotes every field that holds the comment byte:
        // that is how `;` gets quoted (nothing reads these files with comments).
        .comment(Some(b';'))
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

    #[test]
    fn quotes_cells_with_semicolons() {
        let out = String::from_utf8(to_csv(vec![vec![
            "x;=1+1;".into(),
            "a;b".into(),
            "plain".into(),
        ]]))
        .unwrap();
        assert_eq!(out, "\"x;=1+1;\",\"a;b\",plain\r\n");
    }

    #[test]
    fn neutralises_formulas_behind_leading_white_space() {
        for cell in [
            " =HYPERLINK(\"http://evil\")",
            "\u{a0}=HYPERLINK(\"http://evil\")",
            "\u{3000}=HYPERLINK(\"http://evil\")",
            "\u{feff}=1+1",
            "  \u{a0}@SUM(A1)",
            " +1",
            "\u{3000}-1",
        ] {
            assert_eq!(neutralise(cell), format!("'{cell}"), "{cell:?}");
        }
    }

    #[test]
    fn neutralises_fullwidth_formula_characters() {
        for cell in ["＝1+1", "＋1", "－1", "＠SUM(A1)", " ＝1+1", "\u{3000}＠x"] {
            assert_eq!(neutralise(cell), format!("'{cell}"), "{cell:?}");
        }
    }

    #[test]
    fn neutralises_cells_starting_with_control_characters() {
        for cell in [
            "\u{b}=1+1",
            "\u{b}x",
            "\u{c}x",
            "\nx",
            "\tx",
            "\rx",
            "\u{85}x",
        ] {
            assert_eq!(neutralise(cell), format!("'{cell}"), "{cell:?}");
        }
    }

    #[test]
    fn leaves_harmless_cells_alone() {
        for cell in [
            "plain",
            "",
            " ",
            "x=1",
            "a-b",
            " text = 1",
            "\u{a0}name",
            "東京",
            "5",
            "1.5",
        ] {
            assert!(
                matches!(neutralise(cell), std::borrow::Cow::Borrowed(c) if c == cell),
                "{cell:?}"
            );
        }
    }

    #[test]
    fn negative_numbers_are_neutralised_like_any_cell() {
        // The writer does not know a column's type: `-5` is prefixed as `-2` above is, so a
        // spreadsheet shows it as the text `-5` rather than evaluating it.
        assert_eq!(neutralise("-5"), "'-5");
        let out = String::from_utf8(to_csv(vec![
            vec!["age_days".into(), "late_days".into()],
            vec!["12".into(), "-5".into()],
        ]))
        .unwrap();
        assert_eq!(out, "age_days,late_days\r\n12,'-5\r\n");
    }
}
