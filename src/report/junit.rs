//! `junit.xml`: the control matrix as JUnit XML, so a CI system shows each compliance control as
//! a test: one `<testsuite>` per framework, one `<testcase>` per control. A failing control is a
//! failed test listing the credentials and findings that make it fail; `not-assessed`,
//! `manual` and `not-applicable` controls are skipped tests (a not-assessed one naming the
//! missing source); a passing control is a passed test.
//!
//! Written with `quick-xml`, which escapes the five XML metacharacters. Every value first goes
//! through [`attribute`] or [`text`], which add what quick-xml leaves to its caller: dropping
//! the characters XML 1.0 does not allow, and keeping tab, newline and carriage return as
//! character references where a parser would otherwise normalise them; so an id or message that
//! came from AWS or an input file cannot break the document.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use quick_xml::Writer;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::QName;

use super::FindingView;
use super::view::{ControlView, FrameworkView, ReportView};

/// `message` of a `manual` control's `<skipped>`.
pub const MANUAL_MESSAGE: &str = "manual: needs evidence no scan can give";

/// `message` of a `not-applicable` control's `<skipped>`.
pub const NOT_APPLICABLE_MESSAGE: &str = "not applicable: nothing in scope";

/// Start of the `message` of a `not-assessed` control's `<skipped>`, followed by the reason.
pub const NOT_ASSESSED_PREFIX: &str = "not assessed: ";

/// `type` of a failing control's `<failure>`.
pub const FAILURE_TYPE: &str = "control-failed";

/// [`write_controls_junit`] into memory, for tests.
#[cfg(test)]
pub fn controls_junit(view: &ReportView) -> Vec<u8> {
    let mut bytes = Vec::new();
    write_controls_junit(view, &mut bytes).expect("writing to memory cannot fail");
    bytes
}

/// Writes the control matrix of `view` into `out` as a JUnit XML document (UTF-8, two-space
/// indent, trailing newline).
pub fn write_controls_junit(view: &ReportView, out: impl std::io::Write) -> std::io::Result<()> {
    let mut xml = Writer::new_with_indent(out, b' ', 2);
    write_document(&mut xml, view)?;
    xml.into_inner().write_all(b"\n")
}

type Xml<W> = Writer<W>;

fn write_document<W: std::io::Write>(xml: &mut Xml<W>, view: &ReportView) -> std::io::Result<()> {
    let tests: usize = view.frameworks.iter().map(|f| f.controls.len()).sum();
    let failures: usize = view.frameworks.iter().map(|f| f.fail).sum();
    let skipped: usize = view
        .frameworks
        .iter()
        .map(|f| f.manual + f.not_applicable + f.not_assessed)
        .sum();
    xml.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    xml.write_event(Event::Start(element(
        "testsuites",
        &[
            ("name", view.tool),
            ("tests", &tests.to_string()),
            ("failures", &failures.to_string()),
            ("errors", "0"),
            ("skipped", &skipped.to_string()),
        ],
    )))?;
    let open = open_by_credential(view);
    for framework in &view.frameworks {
        write_suite(xml, view, framework, &open)?;
    }
    xml.write_event(Event::End(BytesEnd::new("testsuites")))
}

/// Open (unwaived) findings by credential, in report order: indexed once, so listing the
/// failing credentials of every control is one lookup each, never a walk over all findings.
type OpenFindings<'a> = HashMap<&'a str, Vec<&'a FindingView>>;

fn open_by_credential<'a>(view: &'a ReportView<'_>) -> OpenFindings<'a> {
    let mut open: OpenFindings = HashMap::new();
    for f in view.findings.iter().filter(|f| f.waiver.is_none()) {
        open.entry(f.credential.as_str()).or_default().push(f);
    }
    open
}

fn write_suite<W: std::io::Write>(
    xml: &mut Xml<W>,
    view: &ReportView,
    framework: &FrameworkView,
    open: &OpenFindings,
) -> std::io::Result<()> {
    let name = if framework.version.is_empty() {
        framework.name.clone()
    } else {
        format!("{} {}", framework.name, framework.version)
    };
    xml.write_event(Event::Start(element(
        "testsuite",
        &[
            ("name", &name),
            ("id", &framework.id),
            ("tests", &framework.controls.len().to_string()),
            ("failures", &framework.fail.to_string()),
            ("errors", "0"),
            (
                "skipped",
                &(framework.manual + framework.not_applicable + framework.not_assessed).to_string(),
            ),
            ("timestamp", view.run.as_of.trim_end_matches('Z')),
        ],
    )))?;
    xml.write_event(Event::Start(BytesStart::new("properties")))?;
    for (key, value) in [
        ("run-id", view.run.id.to_string()),
        ("as-of", view.run.as_of.clone()),
        ("status", view.run.status.clone()),
    ] {
        xml.write_event(Event::Empty(element(
            "property",
            &[("name", key), ("value", &value)],
        )))?;
    }
    xml.write_event(Event::End(BytesEnd::new("properties")))?;
    for control in &framework.controls {
        write_case(xml, framework, control, open)?;
    }
    xml.write_event(Event::End(BytesEnd::new("testsuite")))
}

fn write_case<W: std::io::Write>(
    xml: &mut Xml<W>,
    framework: &FrameworkView,
    control: &ControlView,
    open: &OpenFindings,
) -> std::io::Result<()> {
    let case = element(
        "testcase",
        &[
            ("classname", &framework.id),
            ("name", &format!("{} {}", control.id, control.title)),
        ],
    );
    let skipped = |message: &str| Event::Empty(element("skipped", &[("message", message)]));
    let child = match control.status.as_str() {
        "fail" => {
            xml.write_event(Event::Start(case))?;
            xml.write_event(Event::Start(element(
                "failure",
                &[
                    ("message", &failure_message(control)),
                    ("type", FAILURE_TYPE),
                ],
            )))?;
            xml.write_event(Event::Text(BytesText::from_escaped(text(&failure_text(
                open, control,
            )))))?;
            xml.write_event(Event::End(BytesEnd::new("failure")))?;
            return xml.write_event(Event::End(BytesEnd::new("testcase")));
        }
        "manual" => skipped(MANUAL_MESSAGE),
        "not-applicable" => skipped(NOT_APPLICABLE_MESSAGE),
        "not-assessed" => skipped(&format!("{NOT_ASSESSED_PREFIX}{}", control.status_reason)),
        _ => return xml.write_event(Event::Empty(case)),
    };
    xml.write_event(Event::Start(case))?;
    xml.write_event(child)?;
    xml.write_event(Event::End(BytesEnd::new("testcase")))
}

/// An element start with its attributes, each value escaped by [`attribute`].
fn element<'a>(name: &'a str, attributes: &[(&'a str, &str)]) -> BytesStart<'a> {
    let mut start = BytesStart::new(name);
    for &(key, value) in attributes {
        start.push_attribute(Attribute {
            key: QName(key.as_bytes()),
            value: Cow::Owned(attribute(value).into_bytes()),
        });
    }
    start
}

/// "3 findings", or, when only the control's own threshold fails it, "2 credentials beyond
/// the control's threshold".
fn failure_message(control: &ControlView) -> String {
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    if control.findings > 0 || control.failing_credentials.is_empty() {
        plural(control.findings, "finding", "findings")
    } else {
        format!(
            "{} beyond the control's threshold",
            plural(
                control.failing_credentials.len(),
                "credential",
                "credentials"
            )
        )
    }
}

/// The open findings of the control's rules on each failing credential, one line each (a
/// waived finding does not fail a control, so it is not listed).
fn failure_text(open: &OpenFindings, control: &ControlView) -> String {
    let rules: BTreeSet<&str> = control.rules.iter().map(String::as_str).collect();
    let mut text = format!(
        "{}: {}\nfailing credentials ({}):\n",
        control.id,
        control.title,
        control.failing_credentials.len()
    );
    for credential in &control.failing_credentials {
        let _ = writeln!(text, "- {credential}");
        let findings: Vec<&FindingView> = open
            .get(credential.as_str())
            .into_iter()
            .flatten()
            .copied()
            .filter(|f| rules.contains(f.rule.as_str()))
            .collect();
        if findings.is_empty() {
            let _ = writeln!(
                text,
                "    beyond the control's own threshold (no single rule finding)"
            );
        }
        for f in findings {
            let _ = writeln!(text, "    [{}] {}: {}", f.severity, f.rule, f.message);
        }
    }
    text
}

/// An attribute value for XML 1.0: `& < > " '` escaped (quick-xml), tab, newline and carriage
/// return as character references (a parser would turn them into spaces otherwise), every other
/// character XML 1.0 does not allow (other C0 controls, U+FFFE, U+FFFF) dropped.
pub fn attribute(value: &str) -> String {
    let allowed: String = value.chars().filter(|&c| is_xml_char(c)).collect();
    quick_xml::escape::escape(allowed.as_str())
        .replace('\t', "&#9;")
        .replace('\n', "&#10;")
        .replace('\r', "&#13;")
}

/// Element text for XML 1.0, like [`attribute`] but keeping tab and newline as they are (only a
/// carriage return becomes `&#13;`, so it survives line-end normalisation).
pub fn text(value: &str) -> String {
    let allowed: String = value.chars().filter(|&c| is_xml_char(c)).collect();
    quick_xml::escape::escape(allowed.as_str()).replace('\r', "&#13;")
}

/// Whether XML 1.0 allows `c` in a document (the `Char` production).
fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sarif::testview::{HOSTILE_ID, sample_view};

    fn parse(xml: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(xml).expect("well-formed XML")
    }

    fn render(view: &ReportView) -> String {
        String::from_utf8(controls_junit(view)).expect("UTF-8")
    }

    fn attr<'a>(node: roxmltree::Node<'a, 'a>, name: &str) -> &'a str {
        node.attribute(name)
            .unwrap_or_else(|| panic!("attribute {name}"))
    }

    fn count(node: roxmltree::Node, name: &str) -> usize {
        attr(node, name).parse().expect("a count")
    }

    #[test]
    fn counts_match_the_control_matrix() {
        let view = sample_view();
        let xml = render(&view);
        let doc = parse(&xml);
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "testsuites");
        assert_eq!(attr(root, "name"), "credaudit");
        let suites: Vec<_> = root
            .children()
            .filter(|n| n.has_tag_name("testsuite"))
            .collect();
        assert_eq!(suites.len(), view.frameworks.len());

        let mut all_tests = 0;
        let mut all_failures = 0;
        for (suite, framework) in suites.iter().zip(&view.frameworks) {
            assert_eq!(
                attr(*suite, "name"),
                format!("{} {}", framework.name, framework.version)
            );
            let cases: Vec<_> = suite
                .children()
                .filter(|n| n.has_tag_name("testcase"))
                .collect();
            let failed = cases
                .iter()
                .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
                .count();
            let skipped = cases
                .iter()
                .filter(|c| c.children().any(|n| n.has_tag_name("skipped")))
                .count();
            assert_eq!(cases.len(), framework.controls.len());
            assert_eq!(count(*suite, "tests"), cases.len());
            assert_eq!(count(*suite, "failures"), failed);
            assert_eq!(failed, framework.fail);
            assert_eq!(count(*suite, "skipped"), skipped);
            assert_eq!(
                skipped,
                framework.manual + framework.not_applicable + framework.not_assessed
            );
            for (case, control) in cases.iter().zip(&framework.controls) {
                assert_eq!(attr(*case, "classname"), framework.id);
                assert_eq!(
                    attr(*case, "name"),
                    format!("{} {}", control.id, control.title)
                );
                let child = case.children().find(|n| n.is_element());
                match control.status.as_str() {
                    "pass" => assert!(child.is_none(), "a passing control has no child"),
                    "manual" => assert_eq!(
                        child.map(|c| (c.tag_name().name(), attr(c, "message"))),
                        Some(("skipped", MANUAL_MESSAGE))
                    ),
                    "not-applicable" => assert_eq!(
                        child.map(|c| (c.tag_name().name(), attr(c, "message"))),
                        Some(("skipped", NOT_APPLICABLE_MESSAGE))
                    ),
                    "not-assessed" => {
                        let (tag, message) = child
                            .map(|c| (c.tag_name().name(), attr(c, "message")))
                            .unwrap();
                        assert_eq!(tag, "skipped");
                        assert!(message.starts_with(NOT_ASSESSED_PREFIX), "{message}");
                        assert!(message.contains("in this run"), "{message}");
                    }
                    _ => assert_eq!(child.map(|c| c.tag_name().name()), Some("failure")),
                }
            }
            all_tests += cases.len();
            all_failures += failed;
        }
        assert_eq!(count(root, "tests"), all_tests);
        assert_eq!(count(root, "failures"), all_failures);
        assert!(all_failures > 0, "the sample fleet fails some control");
        assert!(
            view.frameworks
                .iter()
                .flat_map(|f| &f.controls)
                .any(|c| c.status == "pass"),
            "and passes some"
        );
    }

    #[test]
    fn a_failing_control_lists_its_findings() {
        let view = sample_view();
        let xml = render(&view);
        let doc = parse(&xml);
        let (framework, control) = view
            .frameworks
            .iter()
            .flat_map(|f| f.controls.iter().map(move |c| (f, c)))
            .find(|(_, c)| c.status == "fail" && c.findings > 0)
            .expect("a control failed by findings");
        let case = doc
            .descendants()
            .find(|n| {
                n.has_tag_name("testcase")
                    && n.attribute("classname") == Some(framework.id.as_str())
                    && n.attribute("name")
                        .is_some_and(|name| name.starts_with(&format!("{} ", control.id)))
            })
            .expect("its testcase");
        let failure = case
            .children()
            .find(|n| n.has_tag_name("failure"))
            .expect("a failure element");
        assert_eq!(attr(failure, "type"), FAILURE_TYPE);
        assert_eq!(
            attr(failure, "message"),
            format!(
                "{} finding{}",
                control.findings,
                if control.findings == 1 { "" } else { "s" }
            )
        );
        let text = failure.text().expect("failure text");
        let rules: BTreeSet<&str> = control.rules.iter().map(String::as_str).collect();
        let listed: Vec<&FindingView> = view
            .findings
            .iter()
            .filter(|f| {
                rules.contains(f.rule.as_str())
                    && control.failing_credentials.contains(&f.credential)
            })
            .collect();
        assert!(!listed.is_empty());
        for f in listed {
            assert!(text.contains(&f.credential), "{text}");
            assert!(
                text.contains(&format!("{}: {}", f.rule, f.message)),
                "{text}"
            );
        }
    }

    #[test]
    fn waived_findings_are_not_listed() {
        let mut view = sample_view();
        let listed = |view: &ReportView| {
            let xml = render(view);
            let doc = parse(&xml);
            doc.descendants()
                .filter(|n| n.has_tag_name("failure"))
                .filter_map(|n| n.text())
                .collect::<String>()
        };
        let finding = view
            .findings
            .iter_mut()
            .find(|f| f.rule == "rotation-overdue")
            .expect("an overdue finding");
        let line = format!("{}: {}", finding.rule, finding.message);
        assert!(listed(&sample_view()).contains(&line));
        finding.waiver = Some(crate::report::sarif::testview::waiver());
        assert!(!listed(&view).contains(&line));
    }

    #[test]
    fn hostile_ids_are_escaped_and_round_trip() {
        let mut view = sample_view();
        // A control character XML 1.0 cannot carry, in a message.
        for f in &mut view.findings {
            if f.credential == HOSTILE_ID {
                f.message = format!("bad\u{1}byte\u{FFFF} & <b>{}", f.message);
            }
        }
        let xml = render(&view);
        assert!(!xml.contains("<script>"), "no raw markup from data");
        assert!(!xml.contains('\u{1}') && !xml.contains('\u{FFFF}'));
        let doc = parse(&xml);
        let failure_texts: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("failure"))
            .filter_map(|n| n.text())
            .collect();
        assert!(
            failure_texts.iter().any(|t| t.contains(HOSTILE_ID)),
            "the hostile id comes back intact from a failing control"
        );
        assert!(
            failure_texts.iter().any(|t| t.contains("badbyte & <b>")),
            "the message keeps its text, loses the control characters"
        );
    }

    #[test]
    fn escape_covers_metacharacters_and_invalid_characters() {
        assert_eq!(
            attribute("a<b>&\"c\"'d'"),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;"
        );
        assert_eq!(attribute("x\u{0}\u{8}\u{B}\u{C}\u{1F}y"), "xy");
        assert_eq!(attribute("l1\nl2\tt\r"), "l1&#10;l2&#9;t&#13;");
        assert_eq!(text("l1\nl2\tt\r<\u{1}"), "l1\nl2\tt&#13;&lt;");
        assert_eq!(attribute("é€😀"), "é€😀");
        // An attribute with every kind of hostile character parses back to the clean value.
        let xml = format!(
            "<a v=\"{}\">{}</a>",
            attribute("<&\">'\u{1}\n\r"),
            text("<&\">'\u{1}\n\r")
        );
        let doc = parse(&xml);
        assert_eq!(doc.root_element().attribute("v"), Some("<&\">'\n\r"));
        assert_eq!(doc.root_element().text(), Some("<&\">'\n\r"));
    }

    #[test]
    fn deterministic() {
        assert_eq!(
            controls_junit(&sample_view()),
            controls_junit(&sample_view())
        );
    }
}
