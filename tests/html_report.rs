//! The evidence page of a real scan, in a real headless Chromium: it renders offline with no
//! console message, a filter set in the URL fragment narrows the findings, a control drills down
//! to its findings, and script payloads planted in a user name, a secret name, a tag value and an
//! owner id (`tests/data/xss-fleet`) show as text and never run.

#[path = "support/chromium.rs"]
mod chromium;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/xss-fleet");
const AS_OF: &str = "2024-06-01T00:00:00Z";

/// What the page must show as text, as Chromium serialises text nodes (`<`, `>` and `&`
/// escaped, quotes not).
const USER_TEXT: &str =
    "svc-&lt;img src=x onerror=\"document.body.setAttribute('data-pwned','user')\"&gt;";
const SECRET_TEXT: &str = "prod/&lt;script&gt;document.title='PWNED'&lt;/script&gt;";
const TAG_TEXT: &str =
    "\"&gt;&lt;svg onload=\"document.body.setAttribute('data-pwned','tag')\"&gt;";
const OWNER_TEXT: &str =
    "ops-&lt;img src=x onerror=\"document.body.setAttribute('data-pwned','owner')\"&gt;";

/// A scan of the fixture: the bundle folder, kept alive with its temporary directory.
struct Bundle {
    _dir: tempfile::TempDir,
    out: PathBuf,
}

impl Bundle {
    fn index(&self) -> PathBuf {
        self.out.join("index.html")
    }

    fn findings(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.out.join("findings.json")).expect("findings.json");
        let json: serde_json::Value = serde_json::from_str(&text).expect("findings.json is JSON");
        json["findings"].as_array().expect("findings array").clone()
    }

    /// (time, fingerprint) of every rotation event, from rotation-events.csv.
    fn events(&self) -> Vec<(String, String)> {
        let mut reader = csv::Reader::from_path(self.out.join("rotation-events.csv"))
            .expect("rotation-events.csv");
        reader
            .records()
            .map(|r| {
                let r = r.expect("rotation-events.csv record");
                (r[0].to_string(), r[4].to_string())
            })
            .collect()
    }

    /// (framework:control, rules, failing credentials) of every control, from controls.csv.
    fn controls(&self) -> Vec<(String, BTreeSet<String>, usize)> {
        let mut reader =
            csv::Reader::from_path(self.out.join("controls.csv")).expect("controls.csv");
        let headers = reader.headers().expect("header").clone();
        let column = |name: &str| headers.iter().position(|h| h == name).expect(name);
        let (fw, control, rules, failing) = (
            column("framework"),
            column("control"),
            column("rules"),
            column("failing_credentials"),
        );
        reader
            .records()
            .map(|r| {
                let r = r.expect("controls.csv record");
                (
                    format!("{}:{}", &r[fw], &r[control]),
                    r[rules].split_whitespace().map(str::to_string).collect(),
                    r[failing].parse().expect("failing_credentials is a count"),
                )
            })
            .collect()
    }
}

fn scan_fixture() -> Bundle {
    scan(FIXTURE, AS_OF)
}

fn scan(fixture: &str, as_of: &str) -> Bundle {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("bundle");
    let status = Command::new(env!("CARGO_BIN_EXE_credaudit"))
        .args(["scan", "--quiet", "--from", fixture, "--as-of", as_of])
        .arg("--db")
        .arg(dir.path().join("snapshot.db"))
        .arg("--out")
        .arg(&out)
        .status()
        .expect("run credaudit");
    assert!(status.success(), "credaudit scan failed: {status}");
    assert!(
        out.join("index.html").is_file(),
        "scan --out wrote no index.html"
    );
    Bundle { _dir: dir, out }
}

fn assert_clean(loaded: &chromium::Loaded) {
    assert!(
        loaded.body_tag().contains("data-ready=\"1\""),
        "the page script did not finish: {}\nconsole: {:#?}",
        loaded.body_tag(),
        loaded.console
    );
    assert!(
        loaded.console.is_empty(),
        "console messages: {:#?}",
        loaded.console
    );
}

fn findings_rows(loaded: &chromium::Loaded) -> usize {
    loaded
        .element("findings-table", "table")
        .expect("findings table")
        .matches("<tr class=\"row\"")
        .count()
}

fn count_text(shown: usize, total: usize) -> String {
    format!("{shown} of {total} findings")
}

#[test]
fn page_renders_offline_without_console_messages() {
    let bundle = scan_fixture();
    let total = bundle.findings().len();
    let loaded = chromium::load(&bundle.index(), "");
    assert_clean(&loaded);
    for id in [
        "summary",
        "charts",
        "controls",
        "findings",
        "plan",
        "inventory",
        "history",
        "coverage",
        "rules",
    ] {
        assert!(
            loaded.dom.contains(&format!("<section id=\"{id}\"")),
            "section {id}"
        );
    }
    for id in [
        "chart-severity",
        "chart-rules",
        "chart-age",
        "chart-rotations",
    ] {
        assert!(loaded.dom.contains(&format!("id=\"{id}\"")), "chart {id}");
    }
    assert_eq!(
        loaded.text_of("findings-count"),
        Some(count_text(total, total).as_str())
    );
    assert_eq!(findings_rows(&loaded), total);
    let inventory = loaded.text_of("inventory-count").expect("inventory count");
    assert!(
        inventory.ends_with(" credentials") && !inventory.starts_with("0 of"),
        "{inventory}"
    );
    assert!(
        loaded.title().starts_with("credaudit evidence: run 1"),
        "{}",
        loaded.title()
    );
}

#[test]
fn rotation_history_shows_its_times_and_fingerprints() {
    // Times, fingerprints and details travel as text in the events block, not as indexes.
    let bundle = scan(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/short-history"),
        "2026-09-01T00:00:00Z",
    );
    let events = bundle.events();
    assert!(!events.is_empty(), "the fixture has rotation events");
    let loaded = chromium::load(&bundle.index(), "");
    assert_clean(&loaded);
    assert_eq!(
        loaded.text_of("history-count"),
        Some(format!("{n} of {n} events", n = events.len()).as_str())
    );
    let history = loaded.element("history-table", "table").expect("history");
    for (time, fingerprint) in events.iter().take(100) {
        assert!(
            history.contains(&format!("<td class=\"mono nowrap\">{time}</td>")),
            "{time}: {history}"
        );
        assert!(
            history.contains(&format!("<td class=\"mono breakall\">{fingerprint}</td>")),
            "{fingerprint}: {history}"
        );
    }
}

#[test]
fn url_fragment_filters_the_findings() {
    let bundle = scan_fixture();
    let findings = bundle.findings();
    let total = findings.len();
    let page = bundle.index();

    // The fixture's design: prod/db-main and prod/db-replica (class A, 19 days) are the only
    // high rotation-overdue findings on a credential matching "prod/db".
    let expected = findings
        .iter()
        .filter(|f| {
            f["rule"] == "rotation-overdue"
                && f["severity"] == "high"
                && f["credential"]
                    .as_str()
                    .is_some_and(|c| c.contains("prod/db"))
        })
        .count();
    assert_eq!(expected, 2, "fixture changed");
    let loaded = chromium::load(&page, "q=prod%2Fdb&severity=high&rule=rotation-overdue");
    assert_clean(&loaded);
    assert_eq!(
        loaded.text_of("findings-count"),
        Some(count_text(2, total).as_str())
    );
    assert_eq!(findings_rows(&loaded), 2);
    let table = loaded.element("findings-table", "table").expect("table");
    assert!(table.contains("secret:prod/db-main-") && table.contains("secret:prod/db-replica-"));
    assert!(!table.contains("staging/db-main") && !table.contains("prod/db-archive"));

    // Each part narrows on its own, and the text filter ignores case.
    let high = findings.iter().filter(|f| f["severity"] == "high").count();
    let loaded = chromium::load(&page, "severity=high");
    assert_eq!(
        loaded.text_of("findings-count"),
        Some(count_text(high, total).as_str())
    );
    let prod_db = findings
        .iter()
        .filter(|f| f.to_string().to_lowercase().contains("prod/db"))
        .count();
    let loaded = chromium::load(&page, "q=PROD%2FDB");
    assert_eq!(
        loaded.text_of("findings-count"),
        Some(count_text(prod_db, total).as_str())
    );
    assert!(prod_db > 2 && prod_db < total);

    // Waived findings: shown, marked, and selectable.
    let waived = findings
        .iter()
        .filter(|f| f.get("waiver").is_some())
        .count();
    assert_eq!(waived, 1, "fixture changed");
    let loaded = chromium::load(&page, "status=waived");
    assert_clean(&loaded);
    assert_eq!(
        loaded.text_of("findings-count"),
        Some(count_text(1, total).as_str())
    );
    let table = loaded.element("findings-table", "table").expect("table");
    assert!(table.contains("<span class=\"badge st-waived\">waived</span>"));
    let loaded = chromium::load(&page, "status=open");
    assert_eq!(
        loaded.text_of("findings-count"),
        Some(count_text(total - 1, total).as_str())
    );

    // Sorting from the fragment too: credential, descending.
    let last = findings
        .iter()
        .filter_map(|f| f["credential"].as_str())
        .max()
        .expect("a finding");
    let loaded = chromium::load(&page, "sort=credential&dir=desc");
    assert_clean(&loaded);
    let table = loaded.element("findings-table", "table").expect("table");
    let first_row = &table[table.find("<tr class=\"row\"").expect("a row")..];
    let first_row = &first_row[..first_row.find("</tr>").expect("row ends")];
    assert!(first_row.contains(&format!(">{last}<")), "{first_row}");
    assert!(table.contains("aria-sort=\"descending\""));
}

#[test]
fn a_control_drills_down_to_its_findings() {
    let bundle = scan_fixture();
    let findings = bundle.findings();
    let total = findings.len();
    let (control, rules, failing) = bundle
        .controls()
        .into_iter()
        .find(|(_, rules, failing)| rules.contains("rotation-overdue") && *failing > 0)
        .expect("a failing control tested by rotation-overdue");
    let expected = findings
        .iter()
        .filter(|f| f["rule"].as_str().is_some_and(|r| rules.contains(r)))
        .count();
    assert!(expected > 0 && expected < total);

    let loaded = chromium::load(
        &bundle.index(),
        &format!("control={}", control.replace(':', "%3A")),
    );
    assert_clean(&loaded);
    assert_eq!(
        loaded.text_of("findings-count"),
        Some(count_text(expected, total).as_str())
    );
    let chip = loaded
        .between("findings-control", "findings-table")
        .expect("control panel");
    assert!(
        chip.starts_with("id=\"findings-control\">"),
        "panel shown: {chip}"
    );
    assert!(chip.contains(&format!("Control {control}")), "{chip}");
    let noun = if failing == 1 {
        "credential"
    } else {
        "credentials"
    };
    assert!(
        chip.contains(&format!("{failing} failing {noun}")),
        "{chip}"
    );
}

/// Loads `page` and checks that no planted payload ran and each shows as text.
fn assert_payloads_inert(page: &Path) {
    let loaded = chromium::load(page, "");
    assert_clean(&loaded);
    assert!(
        !loaded.body_tag().contains("data-pwned"),
        "payload ran: {}",
        loaded.body_tag()
    );
    assert!(
        !loaded.title().contains("PWNED"),
        "payload ran: title {}",
        loaded.title()
    );
    assert!(!loaded.dom.contains("<img"), "an img element was injected");
    assert!(
        !loaded.dom.contains("<svg onload"),
        "an svg element was injected"
    );
    assert!(
        !loaded.dom.contains("<script>document"),
        "a script element was injected"
    );

    // Client-rendered tables show them as text.
    let findings = loaded
        .element("findings-table", "table")
        .expect("findings table");
    assert!(
        findings.contains(USER_TEXT),
        "user name (in a message) as text"
    );
    assert!(
        findings.contains(&format!(":secret:{SECRET_TEXT}-")),
        "secret name as text"
    );
    assert!(
        findings.contains(&format!(">{TAG_TEXT}</td>")),
        "tag value (owner) as text"
    );
    let inventory = loaded
        .element("inventory-table", "table")
        .expect("inventory table");
    assert!(
        inventory.contains(&format!("<td>{USER_TEXT}</td>")),
        "user name as principal"
    );
    assert!(
        inventory.contains(&format!("<td>{SECRET_TEXT}</td>")),
        "secret name as principal"
    );
    // Server-rendered: the owner id in the score table.
    let scores = loaded.element("scores", "table").expect("scores table");
    assert!(
        scores.contains(&format!("<td>{OWNER_TEXT}</td>")),
        "{scores}"
    );
}

#[test]
fn planted_payloads_show_as_text_and_never_run() {
    let bundle = scan_fixture();
    assert_payloads_inert(&bundle.index());
}

#[test]
fn payloads_stay_inert_without_the_csp() {
    // The CSP would block an injected inline handler anyway; without it, escaping alone must
    // keep every payload inert.
    let bundle = scan_fixture();
    let mut html = std::fs::read_to_string(bundle.index()).expect("index.html");
    let start = html
        .find("<meta http-equiv=\"Content-Security-Policy\"")
        .expect("the page has a CSP");
    let end = start + html[start..].find('>').expect("meta ends") + 1;
    html.replace_range(start..end, "");
    assert!(!html.contains("http-equiv"));
    let page = bundle.out.join("index-without-csp.html");
    std::fs::write(&page, html).expect("write");
    assert_payloads_inert(&page);
}

#[test]
fn the_harness_sees_a_payload_that_runs() {
    // The checks above can fail: the fixture's payloads, unescaped, do run in this browser.
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("unsafe.html");
    let user = "svc-<img src=x onerror=\"document.body.setAttribute('data-pwned','user')\">";
    let secret = "prod/<script>document.title='PWNED'</script>";
    std::fs::write(
        &page,
        format!("<!DOCTYPE html><html><head><title>t</title></head><body><p>{user}</p><p>{secret}</p></body></html>"),
    )
    .expect("write");
    let loaded = chromium::load(&page, "");
    assert!(
        loaded.body_tag().contains("data-pwned=\"user\""),
        "{}",
        loaded.body_tag()
    );
    assert_eq!(loaded.title(), "PWNED");
}
