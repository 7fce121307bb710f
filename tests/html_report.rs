//! The evidence page in a real headless Chromium: it renders offline with no console message,
//! a filter set in the URL fragment narrows the findings, and script payloads planted in a user
//! name, a secret name and a tag value show as text and never run.

#[path = "support/chromium.rs"]
mod chromium;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use credaudit::model::{CoverageEntry, Severity, fingerprint};
use credaudit::plan::{Action, ActionKind, Job, Plan, Score};
use credaudit::report::html::render_html;
use credaudit::report::view::{
    ControlView, EventView, FrameworkView, InventoryRow, MonthCount, ReportView, RuleView, RunView,
};
use credaudit::report::{EvidenceView, FindingView, SCHEMA_VERSION, Summary};

/// An IAM user name that would mark the body if its markup ran.
const USER_NAME: &str =
    "svc-<img src=x onerror=\"document.body.setAttribute('data-pwned','user')\">";
/// A secret name that would retitle the page if its script ran.
const SECRET_NAME: &str = "prod/<script>document.title='PWNED'</script>";
/// A tag value (the `owner` tag) that would mark the body if its markup ran.
const TAG_VALUE: &str = "\"><svg onload=\"document.body.setAttribute('data-pwned','tag')\">";

const ACCOUNT: &str = "111111111111";

fn secret_arn(name: &str) -> String {
    format!("arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{name}-AbCdEf")
}

fn finding(
    rule: &str,
    severity: Severity,
    credential: &str,
    owner: &str,
    message: &str,
) -> FindingView {
    FindingView {
        rule: rule.into(),
        severity,
        credential: credential.into(),
        kind: if credential.contains(":secret:") {
            "secret"
        } else {
            "iam-access-key"
        }
        .into(),
        account: ACCOUNT.into(),
        region: "us-east-1".into(),
        owner: owner.into(),
        message: message.into(),
        fingerprint: fingerprint(rule, credential),
        evidence: vec![EvidenceView {
            key: "tag:owner".into(),
            value: owner.into(),
        }],
    }
}

fn score(scope: &str, score: u32) -> Score {
    Score {
        scope: scope.into(),
        score,
        credentials: 3,
        automation: 0.25,
        in_policy: 0.5,
        finding_load: 4.0,
    }
}

fn inventory_row(credential: &str, principal: &str, owner: &str, age_days: f64) -> InventoryRow {
    InventoryRow {
        credential: credential.into(),
        kind: "iam-access-key".into(),
        reconciliation: "unmanaged".into(),
        declared: false,
        observed: true,
        class: "B".into(),
        owner: owner.into(),
        owner_status: "undeclared".into(),
        account: ACCOUNT.into(),
        region: "us-east-1".into(),
        principal: principal.into(),
        status: "active".into(),
        automated: false,
        consumers: String::new(),
        last_rotation: "2024-04-01T00:00:00Z".into(),
        last_used: String::new(),
        age_days: Some(age_days),
        interval_days: 30,
        findings: 1,
    }
}

/// Ten findings; `#q=prod%2Fdb&severity=high&rule=rotation-overdue` matches exactly two.
fn fleet_view() -> ReportView {
    let user_key = "AKIAEXAMPLEUSER00001";
    let payload_secret = secret_arn(SECRET_NAME);
    let findings = vec![
        finding(
            "root-access-key",
            Severity::Critical,
            &format!("arn:aws:iam::{ACCOUNT}:root/access-key-1"),
            "",
            "the root user has an active access key",
        ),
        finding(
            "rotation-overdue",
            Severity::High,
            &secret_arn("prod/db-main"),
            "team-data",
            "secret last rotated 40 days ago (class B, 30 days)",
        ),
        finding(
            "rotation-overdue",
            Severity::High,
            &secret_arn("prod/db-replica"),
            "team-data",
            "secret last rotated 41 days ago (class B, 30 days)",
        ),
        finding(
            "rotation-overdue",
            Severity::High,
            &secret_arn("staging/db-main"),
            "team-data",
            "secret last rotated 42 days ago (class B, 30 days)",
        ),
        finding(
            "rotation-overdue",
            Severity::High,
            &payload_secret,
            TAG_VALUE,
            &format!("secret {SECRET_NAME} last rotated 43 days ago"),
        ),
        finding(
            "unowned-credential",
            Severity::High,
            &secret_arn("prod/db-main"),
            "",
            "no owner declared",
        ),
        finding(
            "unused-credential",
            Severity::High,
            user_key,
            TAG_VALUE,
            &format!("access key of user {USER_NAME} unused for 60 days"),
        ),
        finding(
            "rotation-overdue",
            Severity::Medium,
            &secret_arn("prod/db-archive"),
            "team-data",
            "class C secret overdue",
        ),
        finding(
            "tag-drift",
            Severity::Medium,
            user_key,
            TAG_VALUE,
            &format!("tag owner={TAG_VALUE} names no declared owner"),
        ),
        finding(
            "inactive-key-lingering",
            Severity::Low,
            "AKIAEXAMPLEUSER00002",
            "team-data",
            "inactive for 45 days",
        ),
    ];
    let mut by_severity: BTreeMap<String, usize> = ["critical", "high", "medium", "low", "info"]
        .iter()
        .map(|s| (s.to_string(), 0))
        .collect();
    let mut by_rule = BTreeMap::new();
    for f in &findings {
        *by_severity.entry(f.severity.to_string()).or_default() += 1;
        *by_rule.entry(f.rule.clone()).or_default() += 1;
    }
    let action = Action {
        priority: 2,
        action: ActionKind::RotateNow,
        severity: Severity::High,
        credential: payload_secret.clone(),
        kind: "secret".into(),
        account: ACCOUNT.into(),
        region: "us-east-1".into(),
        owner: TAG_VALUE.into(),
        due: "2024-06-04T00:00:00Z".into(),
        description: format!("Rotate {SECRET_NAME} now."),
        command: Some(format!(
            "aws secretsmanager rotate-secret --secret-id '{payload_secret}'"
        )),
        rules: vec!["rotation-overdue".into()],
        fingerprints: vec![findings[4].fingerprint.clone()],
        controls: vec!["soc2:CC6.1".into()],
    };
    let control = |id: &str, rules: &[&str], status: &str, failing: Vec<String>| ControlView {
        id: id.into(),
        title: format!("Control {id}"),
        reason: "credentials grant access".into(),
        rules: rules.iter().map(|r| r.to_string()).collect(),
        status: status.into(),
        findings: failing.len(),
        in_scope: 8,
        failing_credentials: failing,
    };
    ReportView {
        schema_version: SCHEMA_VERSION,
        tool: "credaudit",
        version: env!("CARGO_PKG_VERSION"),
        run: RunView {
            id: 1,
            as_of: "2024-06-01T00:00:00Z".into(),
            recorded_at: "2024-06-01T00:01:00Z".into(),
            source: "export:tests/data/xss-fleet".into(),
            status: "complete".into(),
            content_hash: "0".repeat(64),
            accounts: vec![ACCOUNT.into()],
            credentials_observed: 8,
            credentials_declared: 0,
        },
        summary: Summary {
            total: findings.len(),
            by_severity,
            by_rule,
        },
        frameworks: vec![FrameworkView {
            id: "soc2".into(),
            name: "SOC 2".into(),
            version: "2017".into(),
            pass: 1,
            fail: 1,
            not_applicable: 0,
            manual: 0,
            controls: vec![
                control(
                    "CC6.1",
                    &["rotation-overdue", "root-access-key"],
                    "fail",
                    vec![payload_secret.clone(), secret_arn("prod/db-main")],
                ),
                control("CC6.2", &["unmanaged-credential"], "pass", vec![]),
            ],
        }],
        plan: Plan {
            actions: vec![action.clone()],
            jobs: vec![Job {
                credential: payload_secret.clone(),
                kind: "secret".into(),
                account: ACCOUNT.into(),
                region: "us-east-1".into(),
                owner: TAG_VALUE.into(),
                due: action.due.clone(),
                severity: Severity::High,
                rotate: true,
                emergency: false,
                actions: vec![action],
            }],
            fleet_score: score("fleet", 48),
            owner_scores: vec![score(TAG_VALUE, 20), score("team-data", 61)],
        },
        inventory: vec![
            inventory_row(user_key, USER_NAME, TAG_VALUE, 12.5),
            inventory_row(&payload_secret, "", TAG_VALUE, 43.0),
        ],
        events: vec![EventView {
            time: "2024-04-01T00:00:00Z".into(),
            credential: payload_secret,
            event_type: "rotation.completed".into(),
            trigger: "scheduled".into(),
            fingerprint: "sha256:00ff".into(),
            details: format!("rotated by {USER_NAME}"),
            source: "history".into(),
        }],
        coverage: vec![CoverageEntry {
            account: ACCOUNT.into(),
            region: "us-east-1".into(),
            api: "secretsmanager:list-secrets".into(),
            ok: true,
            error: None,
            records: 6,
        }],
        rotations_by_month: vec![MonthCount {
            month: "2024-04".into(),
            completed: 1,
            failed: 0,
        }],
        rules: vec![RuleView {
            id: "rotation-overdue",
            title: "Older than its class interval",
            severity: "high",
            rationale: "old credentials leak",
            remediation: "rotate",
        }],
        findings,
    }
}

/// Renders the fleet page into `dir` (optionally without its CSP meta tag) and returns its path.
fn write_page(dir: &Path, name: &str, strip_csp: bool) -> PathBuf {
    let mut html = render_html(&fleet_view()).expect("renders");
    if strip_csp {
        let start = html
            .find("<meta http-equiv=\"Content-Security-Policy\"")
            .expect("has a CSP");
        let end = start + html[start..].find('>').expect("meta ends") + 1;
        html.replace_range(start..end, "");
        assert!(!html.contains("http-equiv"));
    }
    let path = dir.join(name);
    std::fs::write(&path, html).expect("write page");
    path
}

fn assert_clean(loaded: &chromium::Loaded) {
    assert!(
        loaded.body_tag().contains("data-ready=\"1\""),
        "the script did not finish: {}\nconsole: {:#?}",
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

#[test]
fn page_renders_offline_without_console_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = write_page(dir.path(), "index.html", false);
    let loaded = chromium::load(&page, "");
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
    assert_eq!(loaded.text_of("findings-count"), Some("10 of 10 findings"));
    assert_eq!(findings_rows(&loaded), 10);
    assert_eq!(loaded.text_of("plan-count"), Some("1 of 1 actions"));
    assert_eq!(
        loaded.text_of("inventory-count"),
        Some("2 of 2 credentials")
    );
    assert_eq!(loaded.text_of("history-count"), Some("1 of 1 events"));
    assert!(
        loaded.title().starts_with("credaudit evidence: run 1"),
        "{}",
        loaded.title()
    );
}

#[test]
fn url_fragment_filters_the_findings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = write_page(dir.path(), "index.html", false);

    let loaded = chromium::load(&page, "q=prod%2Fdb&severity=high&rule=rotation-overdue");
    assert_clean(&loaded);
    assert_eq!(loaded.text_of("findings-count"), Some("2 of 10 findings"));
    assert_eq!(findings_rows(&loaded), 2);
    let table = loaded.element("findings-table", "table").expect("table");
    assert!(
        table.contains("secret:prod/db-main-AbCdEf")
            && table.contains("secret:prod/db-replica-AbCdEf")
    );
    assert!(!table.contains("staging/db-main"));

    // Each part narrows on its own too.
    let loaded = chromium::load(&page, "severity=medium");
    assert_eq!(loaded.text_of("findings-count"), Some("2 of 10 findings"));
    let loaded = chromium::load(&page, "q=PROD%2FDB");
    assert_eq!(loaded.text_of("findings-count"), Some("4 of 10 findings"));

    // Drill-down from a control: the findings of its rules, and its failing credentials.
    let loaded = chromium::load(&page, "control=soc2%3ACC6.1");
    assert_clean(&loaded);
    assert_eq!(loaded.text_of("findings-count"), Some("6 of 10 findings"));
    let chip = loaded
        .between("findings-control", "findings-table")
        .expect("control chip");
    assert!(
        chip.starts_with("id=\"findings-control\">"),
        "chip shown: {chip}"
    );
    assert!(chip.contains("Control CC6.1"), "{chip}");
    assert!(chip.contains("2 failing credentials"), "{chip}");
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
        !loaded.dom.contains("<script>document.title"),
        "a script element was injected"
    );

    // Shown as text (the serialised DOM escapes `<` and `>` in text nodes).
    let user = "svc-&lt;img src=x onerror=\"document.body.setAttribute('data-pwned','user')\"&gt;";
    let secret = "prod/&lt;script&gt;document.title='PWNED'&lt;/script&gt;";
    let tag = "\"&gt;&lt;svg onload=\"document.body.setAttribute('data-pwned','tag')\"&gt;";
    let findings = loaded
        .element("findings-table", "table")
        .expect("findings table");
    assert!(
        findings.contains(&format!("access key of user {user} unused")),
        "user name as text"
    );
    assert!(
        findings.contains(&format!(":secret:{secret}-AbCdEf")),
        "secret name as text"
    );
    assert!(
        findings.contains(&format!("tag owner={tag} names")),
        "tag value as text"
    );
    let inventory = loaded
        .element("inventory-table", "table")
        .expect("inventory table");
    assert!(inventory.contains(user) && inventory.contains(tag));
    // Server-rendered: the owner score table.
    let scores = loaded.element("scores", "table").expect("scores table");
    assert!(scores.contains(&format!("<td>{tag}</td>")), "{scores}");
}

#[test]
fn planted_payloads_show_as_text_and_never_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_payloads_inert(&write_page(dir.path(), "index.html", false));
}

#[test]
fn payloads_stay_inert_without_the_csp() {
    // The CSP would block an injected inline handler anyway; without it, escaping alone must
    // keep every payload inert.
    let dir = tempfile::tempdir().expect("tempdir");
    assert_payloads_inert(&write_page(dir.path(), "index-no-csp.html", true));
}

#[test]
fn the_harness_sees_a_payload_that_runs() {
    // The checks above can fail: the same payloads, unescaped, do run in this browser.
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("unsafe.html");
    std::fs::write(
        &page,
        format!("<!DOCTYPE html><html><head><title>t</title></head><body><p>{USER_NAME}</p><p>{SECRET_NAME}</p></body></html>"),
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
