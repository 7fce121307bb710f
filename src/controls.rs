//! Control catalogues: loads `controls/*.toml` (the five built in, plus any a user drops in a
//! folder), maps rule ids to the controls they test, and computes each control's status for a
//! run (pass, fail, not-assessed, not-applicable or manual). A control passes only when every
//! rule it depends on ran (the run had the sources they read); otherwise it is not-assessed,
//! naming why.
//!
//! A control fails on an open finding of one of its rules, or, where it carries its own threshold
//! (CIS 1.14's 90 days, PCI 8.2.6's 90 days unused, CIS 1.13's one active key per IAM user), on
//! any in-scope credential beyond it, even when no rule fired because the organisation's policy
//! allows more. Two thresholds judge the IAM users of the credential report: CIS 1.11's "no
//! never-used access key on a user with a console password" and CIS 1.12's inactivity limit
//! applied to console passwords; where that report was not read, such a control cannot pass.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{CredentialKind, Finding};

/// Why it fails, for CIS 1.11's own check, in [`Control::own_thresholds`].
const NEVER_USED_KEYS_ON_CONSOLE_USERS: &str =
    "no active access key never used on an IAM user with a console password";

/// Every rule id a catalogue may name: the rule registry's.
pub fn known_rules() -> Vec<&'static str> {
    crate::rules::ids()
}

/// The built-in catalogues: (file name under `controls/`, text).
const BUILTIN: [(&str, &str); 5] = [
    ("soc2.toml", include_str!("../controls/soc2.toml")),
    ("pci-dss.toml", include_str!("../controls/pci-dss.toml")),
    ("iso27001.toml", include_str!("../controls/iso27001.toml")),
    (
        "nist-800-53.toml",
        include_str!("../controls/nist-800-53.toml"),
    ),
    ("cis-aws.toml", include_str!("../controls/cis-aws.toml")),
];

/// `Framework::source` of a catalogue compiled into the binary.
pub const BUILTIN_SOURCE: &str = "built-in";

/// Largest control catalogue file read from `--controls-dir` (the built-in ones are ~10 KiB).
pub const MAX_CATALOGUE_BYTES: u64 = 4 << 20;

/// One compliance framework's catalogue of controls.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Framework {
    /// Kebab-case id used on the command line, e.g. `pci-dss`.
    pub id: String,
    /// Display name, e.g. `PCI DSS`.
    pub name: String,
    /// The version of the framework the control ids belong to, e.g. `4.0.1`.
    pub version: String,
    /// Controls in file order.
    pub controls: Vec<Control>,
    /// The file it was read from, or `built-in`.
    pub source: String,
}

impl Framework {
    /// The control with this id.
    pub fn control(&self, id: &str) -> Option<&Control> {
        self.controls.iter().find(|c| c.id == id)
    }

    /// The controls that name `rule` among their rules.
    pub fn controls_for_rule<'a>(
        &'a self,
        rule: &'a str,
    ) -> impl Iterator<Item = &'a Control> + 'a {
        self.controls.iter().filter(move |c| c.tests_rule(rule))
    }
}

/// One control (criterion, requirement, recommendation) and how a scan tests it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Control {
    /// The framework's own id, always a string: `CC6.1`, `8.6.3`, `A.5.17`, `IA-5f`, `AC-2(3)`,
    /// `1.14`.
    pub id: String,
    /// The official title (or criterion text) where known.
    pub title: String,
    /// One line: why it applies to credentials.
    pub reason: String,
    /// Rule ids whose open findings fail it.
    pub rules: Vec<String>,
    /// Needs evidence no scan gives: its status is always `manual`.
    pub manual: bool,
    /// The control's own rotation age limit in days, whatever the class policy says.
    pub max_age_days: Option<u32>,
    /// The control's own inactivity limit in days, whatever the policy says.
    pub max_unused_days: Option<u32>,
    /// The control's own limit on active access keys per IAM user, with no rotation overlap
    /// (CIS 1.13: one), whatever the policy's `key_overlap_hours` allows.
    pub max_active_keys_per_user: Option<u32>,
    /// CIS 1.11: an active access key that the credential report shows never used
    /// (`access_key_N_last_used_date` = `N/A`) on an IAM user with a console password
    /// (`password_enabled`) fails: it was set up with the user and is not needed.
    pub forbid_never_used_keys_on_console_users: bool,
    /// CIS 1.12: `max_unused_days` also judges the console passwords of IAM users (days since
    /// `password_last_used`, or since `password_last_changed` if never used).
    pub include_console_passwords: bool,
    /// The credential kinds it covers; `None` covers all.
    pub kinds: Option<Vec<CredentialKind>>,
}

impl Control {
    /// Whether `rule` is one of the rules that test it.
    pub fn tests_rule(&self, rule: &str) -> bool {
        self.rules.iter().any(|r| r == rule)
    }

    /// Whether credentials of `kind` are in its scope.
    pub fn covers(&self, kind: CredentialKind) -> bool {
        self.kinds
            .as_ref()
            .is_none_or(|kinds| kinds.contains(&kind))
    }

    /// Whether it carries a threshold of its own, judged on the facts rather than by rules.
    pub fn has_own_threshold(&self) -> bool {
        self.max_age_days.is_some()
            || self.max_unused_days.is_some()
            || self.max_active_keys_per_user.is_some()
            || self.forbid_never_used_keys_on_console_users
    }

    /// Whether it judges the IAM users of the credential report (their console passwords, or
    /// whether their keys were ever used), so that it cannot pass where that report was not
    /// read.
    pub fn judges_iam_users(&self) -> bool {
        self.forbid_never_used_keys_on_console_users || self.include_console_passwords
    }

    /// Its own thresholds in words, e.g. `at most 90 days since rotation`, in a fixed order;
    /// empty when it has none.
    pub fn own_thresholds(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(days) = self.max_age_days {
            out.push(format!("at most {days} days since rotation"));
        }
        if let Some(days) = self.max_unused_days {
            out.push(format!("unused at most {days} days"));
        }
        if self.forbid_never_used_keys_on_console_users {
            out.push(NEVER_USED_KEYS_ON_CONSOLE_USERS.to_string());
        }
        if let Some(keys) = self.max_active_keys_per_user {
            let noun = if keys == 1 { "key" } else { "keys" };
            out.push(format!(
                "at most {keys} active access {noun} per IAM user, no overlap"
            ));
        }
        out
    }

    /// What tests it, in one line for listings: its rules, its own thresholds and the kinds it
    /// covers, e.g. `own threshold: at most 90 days since rotation; on iam-access-key`; for a
    /// manual control, that it is manual and the rules whose findings are listed as evidence.
    pub fn tested_by(&self) -> String {
        let mut parts = Vec::new();
        if self.manual {
            parts.push("manual, needs evidence no scan gives".to_string());
            if !self.rules.is_empty() {
                parts.push(format!("related rules: {}", self.rules.join(", ")));
            }
        } else {
            if !self.rules.is_empty() {
                parts.push(self.rules.join(", "));
            }
            let thresholds = self.own_thresholds();
            if !thresholds.is_empty() {
                parts.push(format!("own threshold: {}", thresholds.join(", ")));
            }
        }
        let passwords = "IAM users' console passwords";
        match (&self.kinds, self.include_console_passwords && !self.manual) {
            (Some(kinds), with_passwords) => {
                let kinds: Vec<_> = kinds.iter().map(|k| k.as_str()).collect();
                let mut on = format!("on {}", kinds.join(", "));
                if with_passwords {
                    on.push_str(&format!(" and {passwords}"));
                }
                parts.push(on);
            }
            (None, true) => parts.push(format!("on every kind and {passwords}")),
            (None, false) => {}
        }
        parts.join("; ")
    }
}

/// A control's status for one run, written in reports as `pass`, `fail`, `not-assessed`,
/// `not-applicable` or `manual`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::Display,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum ControlStatus {
    /// Its rules and thresholds ran over in-scope credentials and found nothing open.
    Pass,
    /// An open finding of its rules, or a credential beyond its own threshold.
    Fail,
    /// A rule it depends on did not run: a source the rule needs (such as CloudTrail) was not
    /// collected in this run. It never passes on evidence that was not collected.
    NotAssessed,
    /// Nothing of the kinds it covers was evaluated.
    NotApplicable,
    /// Needs evidence no scan gives.
    Manual,
}

impl ControlStatus {
    /// The status as written in reports.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The five built-in catalogues, embedded from `controls/*.toml`, checked against [`known_rules`].
pub fn builtin() -> Result<Vec<Framework>> {
    let mut frameworks = BUILTIN
        .iter()
        .map(|(file, text)| {
            let path = Path::new("controls").join(file);
            let mut framework = parse(text, &path, &known_rules())?;
            framework.source = BUILTIN_SOURCE.to_string();
            Ok(framework)
        })
        .collect::<Result<Vec<_>>>()?;
    frameworks.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(frameworks)
}

/// The built-ins plus every `*.toml` in `dir` (a user can drop a framework file in). A file whose
/// framework id equals a built-in one replaces it; two files in `dir` with the same id are an
/// error. Sorted by framework id.
pub fn load(dir: Option<&Path>) -> Result<Vec<Framework>> {
    let mut by_id: BTreeMap<String, Framework> =
        builtin()?.into_iter().map(|f| (f.id.clone(), f)).collect();
    let Some(dir) = dir else {
        return Ok(by_id.into_values().collect());
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.extension().is_some_and(|ext| ext == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    let mut from_user: BTreeMap<String, PathBuf> = BTreeMap::new();
    for path in files {
        let text = crate::error::read_to_string_capped(&path, MAX_CATALOGUE_BYTES)?;
        let framework = parse(&text, &path, &known_rules())?;
        if let Some(earlier) = from_user.insert(framework.id.clone(), path.clone()) {
            return Err(Error::input(
                &path,
                "framework.id",
                format!(
                    "framework `{}` is also defined in {}; keep one file per framework",
                    framework.id,
                    earlier.display()
                ),
            ));
        }
        by_id.insert(framework.id.clone(), framework);
    }
    Ok(by_id.into_values().collect())
}

/// The catalogue file as written. Unknown keys are errors, so a typo cannot silently drop a
/// threshold.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogue {
    framework: toml::Spanned<toml::Value>,
    #[serde(default)]
    controls: Vec<toml::Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFramework {
    id: String,
    name: String,
    version: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawControl {
    id: String,
    title: String,
    reason: String,
    rules: Vec<String>,
    status: Option<RawStatus>,
    max_age_days: Option<u32>,
    max_unused_days: Option<u32>,
    max_active_keys_per_user: Option<u32>,
    #[serde(default)]
    forbid_never_used_keys_on_console_users: bool,
    #[serde(default)]
    include_console_passwords: bool,
    kinds: Option<Vec<CredentialKind>>,
}

/// The only status a catalogue may declare; the others are computed.
#[derive(Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
enum RawStatus {
    Manual,
}

/// Parses one catalogue. Errors name `source` and the place (`controls[3]`, zero-based, with its
/// line): unknown rule ids (checked against `known_rules`), duplicate control ids, missing or
/// unknown fields, and controls that could never fail.
pub fn parse(text: &str, source: &Path, known_rules: &[&str]) -> Result<Framework> {
    let raw: RawCatalogue = toml::from_str(text).map_err(|e| {
        let location = e
            .span()
            .map(|span| format!("line {}", line_of(text, span.start)))
            .unwrap_or_else(|| "document".to_string());
        // toml's syntax messages can span lines; keep the error on one.
        let message = e.message().trim().replace('\n', "; ");
        Error::input(source, location, message)
    })?;

    let framework_location = format!(
        "framework (line {})",
        line_of(text, raw.framework.span().start)
    );
    let framework: RawFramework =
        raw.framework
            .into_inner()
            .try_into()
            .map_err(|e: toml::de::Error| {
                Error::input(source, &framework_location, e.message().to_string())
            })?;
    if !is_kebab_case(&framework.id) {
        return Err(Error::input(
            source,
            &framework_location,
            format!(
                "id `{}` must be kebab-case (a-z, 0-9, single dashes)",
                framework.id
            ),
        ));
    }
    for (field, value) in [("name", &framework.name), ("version", &framework.version)] {
        if value.trim().is_empty() {
            return Err(Error::input(
                source,
                &framework_location,
                format!("`{field}` is empty"),
            ));
        }
    }
    if raw.controls.is_empty() {
        return Err(Error::input(source, "controls", "no [[controls]] entries"));
    }

    let mut controls = Vec::with_capacity(raw.controls.len());
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (index, spanned) in raw.controls.into_iter().enumerate() {
        let location = format!(
            "controls[{index}] (line {})",
            line_of(text, spanned.span().start)
        );
        let fail = |message: String| Error::input(source, &location, message);
        let control: RawControl = spanned
            .into_inner()
            .try_into()
            .map_err(|e: toml::de::Error| fail(e.message().to_string()))?;
        let control = check_control(control, known_rules).map_err(fail)?;
        if let Some(first) = seen.insert(control.id.clone(), index) {
            return Err(fail(format!(
                "duplicate control id `{}` (first at controls[{first}])",
                control.id
            )));
        }
        controls.push(control);
    }

    Ok(Framework {
        id: framework.id,
        name: framework.name,
        version: framework.version,
        controls,
        source: source.display().to_string(),
    })
}

/// Checks one control's fields and turns it into a [`Control`]; the message names the field.
fn check_control(raw: RawControl, known_rules: &[&str]) -> std::result::Result<Control, String> {
    for (field, value) in [
        ("id", &raw.id),
        ("title", &raw.title),
        ("reason", &raw.reason),
    ] {
        if value.trim().is_empty() {
            return Err(format!("`{field}` is empty"));
        }
    }
    let id = &raw.id;
    let mut rules_seen = BTreeSet::new();
    for rule in &raw.rules {
        if !known_rules.contains(&rule.as_str()) {
            return Err(format!(
                "control `{id}`: unknown rule id `{rule}`; known rules: {}",
                known_rules.join(", ")
            ));
        }
        if !rules_seen.insert(rule.as_str()) {
            return Err(format!("control `{id}`: rule `{rule}` is listed twice"));
        }
    }
    for (field, value) in [
        ("max_age_days", raw.max_age_days),
        ("max_unused_days", raw.max_unused_days),
        ("max_active_keys_per_user", raw.max_active_keys_per_user),
    ] {
        if value == Some(0) {
            return Err(format!("control `{id}`: `{field}` must be at least 1"));
        }
    }
    // Its kinds are checked and normalised last, after the checks below.
    let mut control = Control {
        id: raw.id,
        title: raw.title,
        reason: raw.reason,
        rules: raw.rules,
        manual: raw.status == Some(RawStatus::Manual),
        max_age_days: raw.max_age_days,
        max_unused_days: raw.max_unused_days,
        max_active_keys_per_user: raw.max_active_keys_per_user,
        forbid_never_used_keys_on_console_users: raw.forbid_never_used_keys_on_console_users,
        include_console_passwords: raw.include_console_passwords,
        kinds: raw.kinds,
    };
    let id = &control.id;
    let has_threshold = control.has_own_threshold();
    if control.manual && (has_threshold || control.include_console_passwords) {
        return Err(format!(
            "control `{id}`: a manual control is not judged, so it cannot carry max_age_days, max_unused_days, max_active_keys_per_user, forbid_never_used_keys_on_console_users or include_console_passwords"
        ));
    }
    if control.include_console_passwords && control.max_unused_days.is_none() {
        return Err(format!(
            "control `{id}`: include_console_passwords judges console passwords against max_unused_days, which is not set"
        ));
    }
    if control.forbid_never_used_keys_on_console_users
        && !control.covers(CredentialKind::IamAccessKey)
    {
        return Err(format!(
            "control `{id}`: forbid_never_used_keys_on_console_users judges IAM access keys, but `kinds` leaves out iam-access-key"
        ));
    }
    if !control.manual && !has_threshold && control.rules.is_empty() {
        return Err(format!(
            "control `{id}`: no rules and no threshold, so it could never fail; add rules, a threshold, or status = \"manual\""
        ));
    }
    if let Some(kinds) = &mut control.kinds {
        if kinds.is_empty() {
            return Err(format!(
                "control `{id}`: `kinds` is empty; leave it out to cover every kind"
            ));
        }
        kinds.sort();
        kinds.dedup();
    }
    Ok(control)
}

/// One-based line of a byte offset (clamped to the text, so any span is safe).
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn is_kebab_case(id: &str) -> bool {
    !id.is_empty()
        && id.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// Facts to judge a control for one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct ControlFacts<'a> {
    /// Open (unwaived) findings of the run.
    pub findings: &'a [&'a Finding],
    /// Every credential evaluated.
    pub in_scope: &'a [ScopeItem],
    /// Ids of the rules that ran. A control one of whose rules did not run cannot pass: it is
    /// `not-assessed` (unless an open finding or its own threshold already fails it).
    pub rules_run: &'a [&'a str],
    /// The console passwords of the IAM users, in the accounts whose credential report was
    /// read.
    pub console_passwords: &'a [ConsolePassword],
    /// Why the IAM users (their console passwords, whether their keys were ever used) are not
    /// known for every account of the run, e.g. "no IAM credential report in this run"; `None`
    /// when they are. A control that judges them cannot pass while it is set.
    pub iam_users_unknown: Option<&'a str>,
}

/// A credential the run evaluated, with the facts that controls' own thresholds judge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScopeItem {
    /// Public id, as in [`Finding::credential`].
    pub id: String,
    /// What kind of credential it is; a control's `kinds` filter applies to it.
    pub kind: CredentialKind,
    /// Days since the current value was issued (key creation, secret's last rotation), as of the
    /// run. `None` where unknown or not applicable, e.g. a deactivated key: an age limit is
    /// about usable credentials.
    pub rotation_age_days: Option<f64>,
    /// Days since last use of a usable credential, counted from creation if never used.
    /// `None` where unknown or for a disabled one (disabled is what inactivity controls ask).
    pub unused_days: Option<f64>,
    /// For an active IAM access key seen in AWS: its user, as `ACCOUNT/USER` (user names are
    /// unique only within an account). `None` for other kinds, a deactivated key, or a key not
    /// seen in AWS. `max_active_keys_per_user` counts the keys that share it.
    #[serde(default)]
    pub iam_user: Option<String>,
    /// For an active IAM access key in an account whose credential report was read: whether
    /// its user has a console password (`password_enabled`). `None` otherwise.
    #[serde(default)]
    pub console_user: Option<bool>,
    /// For the same keys: whether it was never used (`access_key_N_last_used_date` = `N/A`).
    /// `None` otherwise.
    #[serde(default)]
    pub never_used: Option<bool>,
}

/// The console password of an IAM user, as CIS 1.12 judges it. Not a credential of the
/// inventory (no rule judges it, nothing declares it): only controls that include console
/// passwords see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsolePassword {
    /// `USER_ARN/console-password`.
    pub id: String,
    /// Its user, as `ACCOUNT/USER`.
    pub iam_user: String,
    /// Days since it was last used to sign in, or, never used, since it was set (CIS 1.12's
    /// audit: `password_last_used`, else `password_last_changed`). `None` when neither is
    /// known.
    pub unused_days: Option<f64>,
}

/// A control's judgement for one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ControlResult {
    /// The judgement: pass, fail, not-assessed, not-applicable or manual.
    pub status: ControlStatus,
    /// Why it is `not-assessed`, e.g. "no CloudTrail in this run (anomalous-usage did not
    /// run)"; `None` for every other status.
    pub note: Option<String>,
    /// Open findings of its rules on credentials of the kinds it covers (for a manual control:
    /// the related findings an auditor may want to see).
    pub findings: usize,
    /// Distinct credentials of the kinds it covers.
    pub in_scope: usize,
    /// Credentials that fail it (by finding or by its own threshold), sorted, without
    /// duplicates. Empty for a manual control, which is not judged.
    pub failing_credentials: Vec<String>,
}

/// Judges one control, a rule absent from `facts.rules_run` having not run for no stated
/// reason. See [`evaluate_with`]. Only the tests judge without reasons.
#[cfg(test)]
pub fn evaluate(control: &Control, facts: &ControlFacts) -> ControlResult {
    evaluate_with(control, facts, &BTreeMap::new())
}

/// Why rules did not run fully: rule id → (reason, whether it ran in part), e.g.
/// `("no CloudTrail in this run", false)`.
pub type NotRun = BTreeMap<String, (String, bool)>;

/// Judges one control: manual → `manual`; an open finding of its rules, or an in-scope
/// credential beyond its own thresholds (see [`beyond_own_thresholds`]) → `fail`; one of its
/// rules is not in `facts.rules_run` (it did not run, or ran on part of its evidence) →
/// `not-assessed`, with the reason from `not_run` (e.g. "no CloudTrail in this run"); nothing
/// of its kinds evaluated → `not-applicable`; otherwise `pass`. A pass therefore means every
/// rule it depends on ran over a non-empty scope and found nothing open.
pub fn evaluate_with(control: &Control, facts: &ControlFacts, not_run: &NotRun) -> ControlResult {
    let findings: Vec<&Finding> = facts
        .findings
        .iter()
        .copied()
        .filter(|f| control.covers(f.kind) && control.tests_rule(&f.rule))
        .collect();
    let scope: Vec<&ScopeItem> = facts
        .in_scope
        .iter()
        .filter(|c| control.covers(c.kind))
        .collect();
    let passwords: &[ConsolePassword] = if control.include_console_passwords {
        facts.console_passwords
    } else {
        &[]
    };
    // A credential with a finding counts as in scope even if the caller left it out of
    // `in_scope`: a control with an open finding is never "not applicable".
    let in_scope: BTreeSet<&str> = scope
        .iter()
        .map(|c| c.id.as_str())
        .chain(passwords.iter().map(|p| p.id.as_str()))
        .chain(findings.iter().map(|f| f.credential.as_str()))
        .collect();

    let result = |status, note, failing: Vec<String>| ControlResult {
        status,
        note,
        findings: findings.len(),
        in_scope: in_scope.len(),
        failing_credentials: failing,
    };
    if control.manual {
        return result(ControlStatus::Manual, None, Vec::new());
    }

    let failing: BTreeSet<&str> = findings
        .iter()
        .map(|f| f.credential.as_str())
        .chain(beyond_own_thresholds(control, &scope))
        .chain(passwords_beyond(control, passwords))
        .collect();
    if !failing.is_empty() {
        let failing = failing.into_iter().map(str::to_string).collect();
        return result(ControlStatus::Fail, None, failing);
    }

    let missing: Vec<&str> = control
        .rules
        .iter()
        .map(String::as_str)
        .filter(|r| !facts.rules_run.contains(r))
        .collect();
    let users_unknown = facts
        .iam_users_unknown
        .filter(|_| control.judges_iam_users());
    if !missing.is_empty() || users_unknown.is_some() {
        let notes: Vec<String> = (!missing.is_empty())
            .then(|| not_assessed_note(&missing, not_run))
            .into_iter()
            .chain(users_unknown.map(str::to_string))
            .collect();
        return result(
            ControlStatus::NotAssessed,
            Some(notes.join("; ")),
            Vec::new(),
        );
    }
    if in_scope.is_empty() {
        return ControlResult {
            status: ControlStatus::NotApplicable,
            note: None,
            findings: 0,
            in_scope: 0,
            failing_credentials: Vec::new(),
        };
    }
    result(ControlStatus::Pass, None, Vec::new())
}

/// "no CloudTrail in this run (anomalous-usage, auth-failure-spike did not run;
/// usage-limit-exceeded ran without it)": each distinct reason once, in the order of the rules,
/// with the rules it kept from running and those that ran without it.
fn not_assessed_note(missing: &[&str], not_run: &NotRun) -> String {
    // reason → (rules that did not run, rules that ran in part)
    let mut reasons: Vec<(&str, Vec<&str>, Vec<&str>)> = Vec::new();
    for rule in missing {
        let (reason, partly) = not_run
            .get(*rule)
            .map_or(("the rule did not run", false), |(r, p)| (r.as_str(), *p));
        let index = match reasons.iter().position(|(r, _, _)| *r == reason) {
            Some(index) => index,
            None => {
                reasons.push((reason, Vec::new(), Vec::new()));
                reasons.len() - 1
            }
        };
        let entry = &mut reasons[index];
        if partly {
            entry.2.push(rule);
        } else {
            entry.1.push(rule);
        }
    }
    reasons
        .iter()
        .map(|(reason, not_run, partly)| {
            let mut parts = Vec::new();
            if !not_run.is_empty() {
                parts.push(format!("{} did not run", not_run.join(", ")));
            }
            if !partly.is_empty() {
                parts.push(format!("{} ran without it", partly.join(", ")));
            }
            format!("{reason} ({})", parts.join("; "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Whether `value` is known and above `limit` (when there is a limit).
fn beyond(value: Option<f64>, limit: Option<u32>) -> bool {
    match (value, limit) {
        (Some(value), Some(limit)) => value > f64::from(limit),
        _ => false,
    }
}

/// Ids of the credentials in `scope` (already filtered to the control's kinds) that break one of
/// the control's own thresholds: older than `max_age_days` since rotation, unused longer than
/// `max_unused_days`, an active key never used on a user with a console password (with
/// `forbid_never_used_keys_on_console_users`), or held by an IAM user with more than
/// `max_active_keys_per_user` active keys (every such key fails: which one to keep is the
/// owner's call). A fact that is unknown breaks nothing. Each threshold is judged in one pass
/// over the scope.
pub fn beyond_own_thresholds<'a>(control: &Control, scope: &[&'a ScopeItem]) -> BTreeSet<&'a str> {
    let never_used_on_console_user = |c: &ScopeItem| {
        control.forbid_never_used_keys_on_console_users
            && c.console_user == Some(true)
            && c.never_used == Some(true)
    };
    let mut failing: BTreeSet<&'a str> = scope
        .iter()
        .filter(|c| {
            beyond(c.rotation_age_days, control.max_age_days)
                || beyond(c.unused_days, control.max_unused_days)
                || never_used_on_console_user(c)
        })
        .map(|c| c.id.as_str())
        .collect();
    if let Some(limit) = control.max_active_keys_per_user {
        let mut by_user: BTreeMap<&str, BTreeSet<&'a str>> = BTreeMap::new();
        for item in scope {
            if let Some(user) = &item.iam_user {
                by_user.entry(user).or_default().insert(item.id.as_str());
            }
        }
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        failing.extend(
            by_user
                .into_values()
                .filter(|keys| keys.len() > limit)
                .flatten(),
        );
    }
    failing
}

/// Ids of the console passwords unused longer than the control's `max_unused_days`, where it
/// includes console passwords (`passwords` is empty otherwise). Unknown breaks nothing.
fn passwords_beyond<'a>(
    control: &Control,
    passwords: &'a [ConsolePassword],
) -> impl Iterator<Item = &'a str> {
    let limit = control.max_unused_days;
    passwords
        .iter()
        .filter(move |p| beyond(p.unused_days, limit))
        .map(|p| p.id.as_str())
}

/// For each rule id, the `(framework id, control id)` pairs that it tests, in framework then
/// file order. Rules no control names are absent.
pub fn rule_map(frameworks: &[Framework]) -> BTreeMap<String, Vec<(String, String)>> {
    let mut map: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for framework in frameworks {
        for control in &framework.controls {
            for rule in &control.rules {
                map.entry(rule.clone())
                    .or_default()
                    .push((framework.id.clone(), control.id.clone()));
            }
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Severity;

    fn finding(rule: &str, credential: &str, kind: CredentialKind) -> Finding {
        Finding {
            rule: rule.to_string(),
            severity: Severity::High,
            credential: credential.to_string(),
            kind,
            account: None,
            region: None,
            owner: None,
            principal: None,
            message: String::new(),
            evidence: Vec::new(),
            waiver: None,
        }
    }

    fn item(id: &str, kind: CredentialKind, age: Option<f64>, unused: Option<f64>) -> ScopeItem {
        ScopeItem {
            id: id.to_string(),
            kind,
            rotation_age_days: age,
            unused_days: unused,
            iam_user: None,
            console_user: None,
            never_used: None,
        }
    }

    /// An active IAM access key of `user`, recently rotated and used.
    fn key_of(id: &str, user: &str) -> ScopeItem {
        ScopeItem {
            iam_user: Some(user.to_string()),
            ..item(id, CredentialKind::IamAccessKey, Some(1.0), Some(0.1))
        }
    }

    /// Rules in `rules` that no control of `frameworks` names.
    fn unmapped<'a>(frameworks: &[Framework], rules: &[&'a str]) -> Vec<&'a str> {
        let map = rule_map(frameworks);
        rules
            .iter()
            .copied()
            .filter(|r| !map.contains_key(*r))
            .collect()
    }

    /// `file: rule` for every rule a catalogue text names that is not in `known`, read from the
    /// TOML itself rather than through [`parse`], so it holds even if the parser changes.
    fn unknown_rules_in(files: &[(&str, &str)], known: &[&str]) -> Vec<String> {
        let mut unknown = Vec::new();
        for (file, text) in files {
            let doc: toml::Table = text.parse().unwrap();
            for control in doc["controls"].as_array().unwrap() {
                for rule in control["rules"].as_array().unwrap() {
                    let rule = rule.as_str().unwrap();
                    if !known.contains(&rule) {
                        unknown.push(format!("{file}: {rule}"));
                    }
                }
            }
        }
        unknown
    }

    fn builtin_control(framework: &str, control: &str) -> Control {
        let frameworks = builtin().expect("built-ins parse");
        let framework = frameworks
            .iter()
            .find(|f| f.id == framework)
            .unwrap_or_else(|| panic!("no framework {framework}"));
        framework
            .control(control)
            .unwrap_or_else(|| panic!("no control {control} in {}", framework.id))
            .clone()
    }

    fn parse_str(text: &str) -> Result<Framework> {
        parse(text, Path::new("user/custom.toml"), &known_rules())
    }

    const MINIMAL: &str = r#"
[framework]
id = "acme"
name = "ACME policy"
version = "1"

[[controls]]
id = "K-1"
title = "Keys rotate"
reason = "because"
rules = ["rotation-overdue"]
"#;

    #[test]
    fn statuses_read_as_reports_write_them() {
        let all = [
            (ControlStatus::Pass, "pass"),
            (ControlStatus::Fail, "fail"),
            (ControlStatus::NotAssessed, "not-assessed"),
            (ControlStatus::NotApplicable, "not-applicable"),
            (ControlStatus::Manual, "manual"),
        ];
        for (status, text) in all {
            assert_eq!(status.as_str(), text);
            assert_eq!(status.to_string(), text);
            assert_eq!(serde_json::to_value(status).unwrap(), text);
        }
    }

    #[test]
    fn builtin_loads_all_five_frameworks() {
        let frameworks = builtin().expect("built-ins parse");
        let ids: Vec<_> = frameworks.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(
            ids,
            ["cis-aws", "iso27001", "nist-800-53", "pci-dss", "soc2"]
        );
        for f in &frameworks {
            assert_eq!(f.source, BUILTIN_SOURCE);
            assert!(!f.controls.is_empty(), "{} has no controls", f.id);
            assert!(!f.version.is_empty() && !f.name.is_empty());
        }
        let pci = frameworks.iter().find(|f| f.id == "pci-dss").unwrap();
        assert_eq!(pci.version, "4.0.1");
        let cis = frameworks.iter().find(|f| f.id == "cis-aws").unwrap();
        assert_eq!(cis.version, "3.0.0");
    }

    #[test]
    fn every_rule_is_mapped_by_some_control() {
        let frameworks = builtin().unwrap();
        let unmapped_rules = unmapped(&frameworks, &known_rules());
        assert!(
            unmapped_rules.is_empty(),
            "rules in the registry mapped to no control: {unmapped_rules:?}"
        );
        // The check can fail: a rule the catalogues do not name is reported.
        let mut with_new = known_rules();
        with_new.push("rule-added-without-controls");
        assert_eq!(
            unmapped(&frameworks, &with_new),
            ["rule-added-without-controls"]
        );
    }

    #[test]
    fn every_rule_in_the_files_exists() {
        // parse() already rejects unknown ids; check the files directly too.
        assert_eq!(
            unknown_rules_in(&BUILTIN, &known_rules()),
            Vec::<String>::new()
        );
        // The check can fail: with a rule removed from the registry, its mentions are reported.
        let without: Vec<_> = known_rules()
            .into_iter()
            .filter(|r| *r != "incident-not-remediated")
            .collect();
        let unknown = unknown_rules_in(&BUILTIN, &without);
        assert!(
            unknown.contains(&"soc2.toml: incident-not-remediated".to_string()),
            "{unknown:?}"
        );
        assert!(
            unknown
                .iter()
                .all(|u| u.ends_with(": incident-not-remediated"))
        );
    }

    #[test]
    fn rule_ids_are_unique() {
        let unique: BTreeSet<_> = known_rules().into_iter().collect();
        assert_eq!(unique.len(), known_rules().len());
    }

    #[test]
    fn nist_ids_use_nists_notation() {
        // `IA-5f` is item f of the base statement; `IA-5(f)` would read as an enhancement.
        let nist = builtin()
            .unwrap()
            .into_iter()
            .find(|f| f.id == "nist-800-53")
            .unwrap();
        for control in &nist.controls {
            let id = control.id.as_str();
            let (family, rest) = id.split_once('-').unwrap_or(("", ""));
            let number_end = rest
                .find(|ch: char| !ch.is_ascii_digit())
                .unwrap_or(rest.len());
            let (number, suffix) = rest.split_at(number_end);
            let enhancement = suffix
                .strip_prefix('(')
                .and_then(|s| s.strip_suffix(')'))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            let item = suffix.len() == 1 && suffix.bytes().all(|b| b.is_ascii_lowercase());
            assert!(
                family.len() == 2
                    && family.bytes().all(|b| b.is_ascii_uppercase())
                    && !number.is_empty()
                    && (suffix.is_empty() || enhancement || item),
                "{id} is not NIST notation (AC-2, AC-2e, AC-2(3))"
            );
        }
        for id in ["IA-5f", "IA-5d", "IA-4a", "AC-2b", "AC-2(12)", "IA-5(7)"] {
            assert!(nist.control(id).is_some(), "NIST {id} missing");
        }
    }

    #[test]
    fn builtin_control_ids_are_unique_per_framework() {
        for f in builtin().unwrap() {
            let ids: BTreeSet<_> = f.controls.iter().map(|c| &c.id).collect();
            assert_eq!(ids.len(), f.controls.len(), "{} repeats a control id", f.id);
        }
    }

    #[test]
    fn parser_rejects_duplicate_control_ids() {
        let text = format!(
            "{MINIMAL}\n[[controls]]\nid = \"K-1\"\ntitle = \"again\"\nreason = \"r\"\nrules = [\"tag-drift\"]\n"
        );
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(err.contains("duplicate control id `K-1`"), "{err}");
        assert!(err.contains("controls[1]"), "{err}");
    }

    #[test]
    fn unknown_rule_in_a_user_file_names_the_file_and_control() {
        let text = MINIMAL.replace("rotation-overdue", "rotaton-overdue");
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(err.contains("user/custom.toml"), "{err}");
        assert!(err.contains("controls[0] (line 7)"), "{err}");
        assert!(err.contains("unknown rule id `rotaton-overdue`"), "{err}");
    }

    #[test]
    fn missing_and_unknown_fields_are_rejected() {
        let missing = MINIMAL.replace("title = \"Keys rotate\"\n", "");
        let err = parse_str(&missing).unwrap_err().to_string();
        assert!(
            err.contains("controls[0]") && err.contains("title"),
            "{err}"
        );

        let unknown = MINIMAL.replace("rules =", "max_age = 3\nrules =");
        let err = parse_str(&unknown).unwrap_err().to_string();
        assert!(
            err.contains("controls[0]") && err.contains("max_age"),
            "{err}"
        );

        let top = format!("{MINIMAL}\n[extra]\nx = 1\n");
        let err = parse_str(&top).unwrap_err().to_string();
        assert!(err.contains("extra"), "{err}");

        let no_framework = MINIMAL.replace("[framework]", "[framewrk]");
        assert!(parse_str(&no_framework).is_err());

        let numeric_id = MINIMAL.replace("id = \"K-1\"", "id = 8.6");
        let err = parse_str(&numeric_id).unwrap_err().to_string();
        assert!(err.contains("controls[0]"), "{err}");
    }

    #[test]
    fn bad_values_are_rejected_without_panicking() {
        for (from, to, expect) in [
            ("id = \"acme\"", "id = \"ACME\"", "kebab-case"),
            (
                "rules = [\"rotation-overdue\"]",
                "rules = []",
                "could never fail",
            ),
            (
                "rules = [\"rotation-overdue\"]",
                "rules = [\"tag-drift\", \"tag-drift\"]",
                "twice",
            ),
            (
                "rules = [\"rotation-overdue\"]",
                "rules = []\nstatus = \"pass\"",
                "unknown variant",
            ),
            (
                "rules = [\"rotation-overdue\"]",
                "rules = []\nmax_age_days = 0",
                "at least 1",
            ),
            (
                "rules = [\"rotation-overdue\"]",
                "rules = []\nmax_age_days = -3",
                "controls[0]",
            ),
            (
                "rules = [\"rotation-overdue\"]",
                "rules = []\nstatus = \"manual\"\nmax_age_days = 9",
                "manual",
            ),
            (
                "rules = [\"rotation-overdue\"]",
                "rules = []\nmax_active_keys_per_user = 0",
                "max_active_keys_per_user` must be at least 1",
            ),
            (
                "rules = [\"rotation-overdue\"]",
                "rules = []\nstatus = \"manual\"\nmax_active_keys_per_user = 1",
                "max_active_keys_per_user",
            ),
            (
                "rules = [\"rotation-overdue\"]",
                "rules = [\"tag-drift\"]\nkinds = []",
                "kinds",
            ),
            (
                "rules = [\"rotation-overdue\"]",
                "rules = [\"tag-drift\"]\nkinds = [\"api-key\"]",
                "api-key",
            ),
            ("[[controls]]", "[[controls]\n", "line"),
        ] {
            let text = MINIMAL.replace(from, to);
            let err = parse_str(&text).expect_err(to).to_string();
            assert!(err.contains(expect), "{to}: {err}");
            assert!(err.starts_with("user/custom.toml"), "{err}");
        }
        assert!(parse_str("").is_err());
        assert!(parse_str("[framework]\nid = \"x\"\nname = \"x\"\nversion = \"1\"\n").is_err());
    }

    #[test]
    fn parses_optional_fields() {
        let text = MINIMAL.replace(
            "rules = [\"rotation-overdue\"]",
            "rules = []\nmax_age_days = 90\nmax_unused_days = 45\nkinds = [\"secret\", \"iam-access-key\", \"secret\"]",
        );
        let f = parse_str(&text).unwrap();
        let c = &f.controls[0];
        assert_eq!(f.source, "user/custom.toml");
        assert!(!c.manual);
        assert_eq!((c.max_age_days, c.max_unused_days), (Some(90), Some(45)));
        assert_eq!(
            c.kinds.as_deref(),
            Some(&[CredentialKind::IamAccessKey, CredentialKind::Secret][..])
        );
    }

    #[test]
    fn manual_control_is_manual_whatever_the_facts() {
        let control = builtin_control("nist-800-53", "CA-5");
        assert!(control.manual);
        let findings = [finding(
            "rotation-due-soon",
            "AKIA1",
            CredentialKind::IamAccessKey,
        )];
        let scope = [item(
            "AKIA1",
            CredentialKind::IamAccessKey,
            Some(12.0),
            None,
        )];
        let result = evaluate(
            &control,
            &ControlFacts {
                findings: &findings.each_ref(),
                in_scope: &scope,
                rules_run: &known_rules(),
                ..Default::default()
            },
        );
        assert_eq!(result.status, ControlStatus::Manual);
        assert_eq!(result.findings, 1);
        assert!(result.failing_credentials.is_empty());
    }

    #[test]
    fn control_whose_rules_did_not_run_is_not_assessed_never_pass() {
        let control = builtin_control("cis-aws", "1.4");
        let scope = [item("AKIA1", CredentialKind::IamAccessKey, Some(1.0), None)];
        let facts = |rules_run| ControlFacts {
            findings: &[],
            in_scope: &scope,
            rules_run,
            ..Default::default()
        };
        let not_run: NotRun = [(
            "root-access-key".to_string(),
            ("no IAM credential report in this run".to_string(), false),
        )]
        .into();
        let result = evaluate_with(&control, &facts(&[]), &not_run);
        assert_eq!(result.status, ControlStatus::NotAssessed);
        assert_eq!(
            result.note.as_deref(),
            Some("no IAM credential report in this run (root-access-key did not run)")
        );
        // Without a stated reason it still does not pass.
        assert_eq!(
            evaluate(&control, &facts(&[])).status,
            ControlStatus::NotAssessed
        );
        let ran = evaluate(&control, &facts(&["root-access-key"]));
        assert_eq!((ran.status, ran.note), (ControlStatus::Pass, None));
    }

    #[test]
    fn not_assessed_names_each_reason_once_and_a_finding_still_fails() {
        let control = builtin_control("soc2", "CC7.2");
        let scope = [item("AKIA1", CredentialKind::IamAccessKey, Some(1.0), None)];
        let cloudtrail = "no CloudTrail in this run".to_string();
        let not_run: NotRun = [
            ("anomalous-usage".to_string(), (cloudtrail.clone(), false)),
            (
                "auth-failure-spike".to_string(),
                (cloudtrail.clone(), false),
            ),
            (
                "usage-limit-exceeded".to_string(),
                (cloudtrail.clone(), true),
            ),
        ]
        .into();
        let ran: Vec<&str> = known_rules()
            .into_iter()
            .filter(|r| !not_run.contains_key(*r))
            .collect();
        let facts = ControlFacts {
            findings: &[],
            in_scope: &scope,
            rules_run: &ran,
            ..Default::default()
        };
        let result = evaluate_with(&control, &facts, &not_run);
        assert_eq!(result.status, ControlStatus::NotAssessed);
        let note = result.note.unwrap();
        assert_eq!(
            note.matches("no CloudTrail in this run").count(),
            1,
            "{note}"
        );
        assert!(
            note.contains("did not run") && note.contains("usage-limit-exceeded ran without it"),
            "{note}"
        );
        // What did run and found something fails the control whatever did not run.
        let open = [finding(
            "usage-limit-exceeded",
            "AKIA1",
            CredentialKind::IamAccessKey,
        )];
        let result = evaluate_with(
            &control,
            &ControlFacts {
                findings: &open.each_ref(),
                ..facts
            },
            &not_run,
        );
        assert_eq!((result.status, result.note), (ControlStatus::Fail, None));
        // Nothing in scope and a rule not run: not assessed, not "not applicable".
        let result = evaluate_with(
            &control,
            &ControlFacts {
                in_scope: &[],
                ..facts
            },
            &not_run,
        );
        assert_eq!(result.status, ControlStatus::NotAssessed);
    }

    #[test]
    fn control_with_nothing_of_its_kinds_is_not_applicable() {
        let control = builtin_control("cis-aws", "1.14");
        let scope = [item(
            "arn:aws:secretsmanager:eu-west-1:1:secret:db",
            CredentialKind::Secret,
            Some(400.0),
            None,
        )];
        let result = evaluate(
            &control,
            &ControlFacts {
                findings: &[],
                in_scope: &scope,
                rules_run: &known_rules(),
                ..Default::default()
            },
        );
        assert_eq!(result.status, ControlStatus::NotApplicable);
        assert_eq!(result.in_scope, 0);
        let result = evaluate(
            &control,
            &ControlFacts {
                findings: &[],
                in_scope: &[],
                rules_run: &known_rules(),
                ..Default::default()
            },
        );
        assert_eq!(result.status, ControlStatus::NotApplicable);
    }

    #[test]
    fn control_fails_on_an_open_finding_of_its_rules_in_scope() {
        let control = builtin_control("pci-dss", "8.6.3");
        let scope = [
            item("AKIA2", CredentialKind::IamAccessKey, Some(20.0), None),
            item("AKIA1", CredentialKind::IamAccessKey, Some(20.0), None),
            item("cert-1", CredentialKind::Certificate, Some(900.0), None),
        ];
        let findings = [
            finding("rotation-overdue", "AKIA2", CredentialKind::IamAccessKey),
            finding("credential-reuse", "AKIA2", CredentialKind::IamAccessKey),
            finding("rotation-overdue", "AKIA1", CredentialKind::IamAccessKey),
            // Not one of 8.6.3's rules.
            finding("tag-drift", "AKIA1", CredentialKind::IamAccessKey),
        ];
        let result = evaluate(
            &control,
            &ControlFacts {
                findings: &findings.each_ref(),
                in_scope: &scope,
                rules_run: &known_rules(),
                ..Default::default()
            },
        );
        assert_eq!(result.status, ControlStatus::Fail);
        assert_eq!(result.findings, 3);
        assert_eq!(result.in_scope, 2, "certificates are outside 8.6.3");
        assert_eq!(result.failing_credentials, ["AKIA1", "AKIA2"]);

        // A finding on a kind the control does not cover does not fail it.
        let cert_only = [finding(
            "rotation-overdue",
            "cert-1",
            CredentialKind::Certificate,
        )];
        let result = evaluate(
            &control,
            &ControlFacts {
                findings: &cert_only.each_ref(),
                in_scope: &scope,
                rules_run: &known_rules(),
                ..Default::default()
            },
        );
        assert_eq!(result.status, ControlStatus::Pass);
    }

    #[test]
    fn cis_1_14_fails_a_120_day_key_with_no_finding() {
        // A class D key (365-day policy) at 120 days: rotation-overdue did not fire, CIS 1.14
        // still fails on its own 90 days.
        let control = builtin_control("cis-aws", "1.14");
        assert_eq!(control.max_age_days, Some(90));
        let scope = [
            item(
                "AKIAOLD",
                CredentialKind::IamAccessKey,
                Some(120.0),
                Some(1.0),
            ),
            item(
                "AKIANEW",
                CredentialKind::IamAccessKey,
                Some(89.5),
                Some(1.0),
            ),
            item("arn:secret", CredentialKind::Secret, Some(300.0), None),
        ];
        let result = evaluate(
            &control,
            &ControlFacts {
                findings: &[],
                in_scope: &scope,
                rules_run: &known_rules(),
                ..Default::default()
            },
        );
        assert_eq!(result.status, ControlStatus::Fail);
        assert_eq!(result.findings, 0);
        assert_eq!(result.in_scope, 2);
        assert_eq!(result.failing_credentials, ["AKIAOLD"]);
    }

    #[test]
    fn own_inactivity_threshold_fails_and_passes() {
        let control = builtin_control("pci-dss", "8.2.6");
        assert_eq!(control.max_unused_days, Some(90));
        let stale = [item(
            "AKIA1",
            CredentialKind::IamAccessKey,
            Some(10.0),
            Some(91.0),
        )];
        let result = evaluate(
            &control,
            &ControlFacts {
                findings: &[],
                in_scope: &stale,
                rules_run: &known_rules(),
                ..Default::default()
            },
        );
        assert_eq!(
            (result.status, result.failing_credentials.len()),
            (ControlStatus::Fail, 1)
        );
        // 60 days unused breaks the 45-day policy (unused-credential) but not PCI's 90 days.
        let recent = [item(
            "AKIA1",
            CredentialKind::IamAccessKey,
            Some(10.0),
            Some(60.0),
        )];
        let policy_only = [finding(
            "unused-credential",
            "AKIA1",
            CredentialKind::IamAccessKey,
        )];
        let result = evaluate(
            &control,
            &ControlFacts {
                findings: &policy_only.each_ref(),
                in_scope: &recent,
                rules_run: &known_rules(),
                ..Default::default()
            },
        );
        assert_eq!(result.status, ControlStatus::Pass);
    }

    #[test]
    fn control_passes_when_its_scope_is_clean() {
        let control = builtin_control("cis-aws", "1.4");
        let scope = [
            item("AKIA1", CredentialKind::IamAccessKey, Some(10.0), Some(0.5)),
            item(
                "AKIA2",
                CredentialKind::IamAccessKey,
                Some(200.0),
                Some(100.0),
            ),
        ];
        let unrelated = [finding(
            "rotation-overdue",
            "AKIA2",
            CredentialKind::IamAccessKey,
        )];
        let result = evaluate(
            &control,
            &ControlFacts {
                findings: &unrelated.each_ref(),
                in_scope: &scope,
                rules_run: &known_rules(),
                ..Default::default()
            },
        );
        assert_eq!(result.status, ControlStatus::Pass);
        assert_eq!((result.findings, result.in_scope), (0, 2));
        assert!(result.failing_credentials.is_empty());

        let root = [finding(
            "root-access-key",
            "arn:aws:iam::1:root/access-key-1",
            CredentialKind::RootAccessKey,
        )];
        let result = evaluate(
            &control,
            &ControlFacts {
                findings: &root.each_ref(),
                in_scope: &scope,
                rules_run: &known_rules(),
                ..Default::default()
            },
        );
        assert_eq!(result.status, ControlStatus::Fail);
        assert_eq!(
            result.in_scope, 3,
            "a credential with a finding is in scope"
        );
    }

    #[test]
    fn status_serialises_kebab_case() {
        assert_eq!(
            serde_json::to_string(&ControlStatus::NotApplicable).unwrap(),
            "\"not-applicable\""
        );
        for s in [
            ControlStatus::Pass,
            ControlStatus::Fail,
            ControlStatus::NotAssessed,
            ControlStatus::NotApplicable,
            ControlStatus::Manual,
        ] {
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
    }

    #[test]
    fn load_adds_user_files_and_overrides_builtins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("acme.toml"), MINIMAL).unwrap();
        let own_cis = r#"
[framework]
id = "cis-aws"
name = "CIS AWS (house copy)"
version = "5.0.0"

[[controls]]
id = "1.13"
title = "Ensure access keys are rotated every 90 days or less"
reason = "v5 numbering"
rules = []
max_age_days = 90
kinds = ["iam-access-key"]
"#;
        std::fs::write(dir.path().join("cis-v5.toml"), own_cis).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a catalogue").unwrap();

        let frameworks = load(Some(dir.path())).unwrap();
        let ids: Vec<_> = frameworks.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "acme",
                "cis-aws",
                "iso27001",
                "nist-800-53",
                "pci-dss",
                "soc2"
            ]
        );
        let cis = frameworks.iter().find(|f| f.id == "cis-aws").unwrap();
        assert_eq!(cis.version, "5.0.0");
        assert_eq!(cis.controls.len(), 1);
        assert!(cis.source.ends_with("cis-v5.toml"), "{}", cis.source);
        let acme = frameworks.iter().find(|f| f.id == "acme").unwrap();
        assert!(acme.source.ends_with("acme.toml"));

        assert_eq!(load(None).unwrap(), builtin().unwrap());
    }

    #[test]
    fn a_catalogue_over_the_cap_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.toml");
        let line = "# padding padding padding padding padding padding padding padding\n";
        let size = MAX_CATALOGUE_BYTES as usize + line.len();
        std::fs::write(&path, line.repeat(size / line.len() + 1)).unwrap();
        let error = load(Some(dir.path())).unwrap_err().to_string();
        assert!(error.contains("huge.toml"), "{error}");
        assert!(
            error.contains(&format!("{MAX_CATALOGUE_BYTES}-byte limit")),
            "{error}"
        );
    }

    #[test]
    fn load_rejects_bad_user_files_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let bad = MINIMAL.replace("rotation-overdue", "no-such-rule");
        std::fs::write(dir.path().join("broken.toml"), bad).unwrap();
        let err = load(Some(dir.path())).unwrap_err().to_string();
        assert!(
            err.contains("broken.toml") && err.contains("no-such-rule"),
            "{err}"
        );

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), MINIMAL).unwrap();
        std::fs::write(dir.path().join("b.toml"), MINIMAL).unwrap();
        let err = load(Some(dir.path())).unwrap_err().to_string();
        assert!(err.contains("b.toml") && err.contains("a.toml"), "{err}");

        let missing = dir.path().join("nope");
        assert!(load(Some(&missing)).is_err());
    }

    #[test]
    fn rule_map_lists_controls_per_rule() {
        let map = rule_map(&builtin().unwrap());
        let overdue = &map["rotation-overdue"];
        assert!(overdue.contains(&("pci-dss".to_string(), "8.6.3".to_string())));
        assert!(overdue.contains(&("nist-800-53".to_string(), "IA-5f".to_string())));
        assert!(overdue.contains(&("soc2".to_string(), "CC6.1".to_string())));
    }

    #[test]
    fn cis_1_13_counts_active_keys_per_user_with_no_overlap() {
        // Judged on the facts: the rule with its 24 h overlap fired on nothing, yet a user with
        // two active keys fails, both keys named.
        let control = builtin_control("cis-aws", "1.13");
        assert_eq!(control.max_active_keys_per_user, Some(1));
        // The rule is listed for the plan's sake; the count alone decides.
        assert_eq!(control.rules, ["multiple-active-keys"]);
        let scope = [
            key_of("AKIAALICE1", "111122223333/alice"),
            key_of("AKIAALICE2", "111122223333/alice"),
            key_of("AKIABOB1", "111122223333/bob"),
            // Same user name in another account is another user.
            key_of("AKIAALICE3", "444455556666/alice"),
            // A key with no known user (not seen in AWS, or deactivated) is not counted.
            item("AKIAORPHAN", CredentialKind::IamAccessKey, Some(1.0), None),
            item("AKIAORPHAN2", CredentialKind::IamAccessKey, Some(1.0), None),
        ];
        // Its rule ran (a control passes only when every rule it depends on ran).
        let all_rules = known_rules();
        let facts = |scope| ControlFacts {
            findings: &[],
            in_scope: scope,
            rules_run: &all_rules,
            ..Default::default()
        };
        let result = evaluate(&control, &facts(&scope));
        assert_eq!(result.status, ControlStatus::Fail);
        assert_eq!(result.findings, 0);
        assert_eq!(result.in_scope, 6);
        assert_eq!(result.failing_credentials, ["AKIAALICE1", "AKIAALICE2"]);

        let result = evaluate(&control, &facts(&scope[2..]));
        assert_eq!(result.status, ControlStatus::Pass);

        // The same key listed twice is one key.
        let twice = [
            key_of("AKIABOB1", "111122223333/bob"),
            key_of("AKIABOB1", "111122223333/bob"),
        ];
        assert_eq!(
            evaluate(&control, &facts(&twice)).status,
            ControlStatus::Pass
        );
    }

    #[test]
    fn max_active_keys_per_user_is_a_threshold_of_its_own() {
        let text = MINIMAL.replace(
            "rules = [\"rotation-overdue\"]",
            "rules = []\nmax_active_keys_per_user = 2\nkinds = [\"iam-access-key\"]",
        );
        let control = parse_str(&text).unwrap().controls.remove(0);
        assert!(control.has_own_threshold());
        let scope = [key_of("AKIA1", "1/alice"), key_of("AKIA2", "1/alice")];
        let facts = ControlFacts {
            findings: &[],
            in_scope: &scope,
            rules_run: &[],
            ..Default::default()
        };
        assert_eq!(evaluate(&control, &facts).status, ControlStatus::Pass);
        let three = [
            key_of("AKIA1", "1/alice"),
            key_of("AKIA2", "1/alice"),
            key_of("AKIA3", "1/alice"),
        ];
        let result = evaluate(
            &control,
            &ControlFacts {
                in_scope: &three,
                ..facts
            },
        );
        assert_eq!(result.failing_credentials, ["AKIA1", "AKIA2", "AKIA3"]);
    }

    /// An active IAM access key of `user` whose user is in the credential report: with or
    /// without a console password, used or never used.
    fn reported_key(id: &str, user: &str, console_user: bool, never_used: bool) -> ScopeItem {
        ScopeItem {
            console_user: Some(console_user),
            never_used: Some(never_used),
            ..key_of(id, user)
        }
    }

    fn password(user: &str, unused_days: Option<f64>) -> ConsolePassword {
        ConsolePassword {
            id: format!("arn:aws:iam::111122223333:user/{user}/console-password"),
            iam_user: format!("111122223333/{user}"),
            unused_days,
        }
    }

    #[test]
    fn cis_1_11_fails_a_never_used_key_on_a_user_with_a_console_password() {
        let control = builtin_control("cis-aws", "1.11");
        assert!(!control.manual && control.forbid_never_used_keys_on_console_users);
        assert!(control.has_own_threshold() && control.judges_iam_users());
        assert!(control.rules.is_empty());
        let scope = [
            // Set up with the console user and never used: fails.
            reported_key("AKIAALICE1", "111122223333/alice", true, true),
            // A console user's key in use, a never-used key of a user without a password,
            // and a key whose user the report does not name (unknown breaks nothing): pass.
            reported_key("AKIAALICE2", "111122223333/alice", true, false),
            reported_key("AKIABOT1", "111122223333/bot", false, true),
            key_of("AKIAUNKNOWN", "111122223333/carol"),
            // Not an access key.
            item("arn:secret", CredentialKind::Secret, Some(1.0), None),
        ];
        let facts = ControlFacts {
            in_scope: &scope,
            ..Default::default()
        };
        let result = evaluate(&control, &facts);
        assert_eq!(result.status, ControlStatus::Fail);
        assert_eq!(result.failing_credentials, ["AKIAALICE1"]);
        assert_eq!(result.in_scope, 4);

        let result = evaluate(
            &control,
            &ControlFacts {
                in_scope: &scope[1..],
                ..facts
            },
        );
        assert_eq!((result.status, result.note), (ControlStatus::Pass, None));

        // Without the credential report it cannot pass, and says why; a failure still fails.
        let why = "no IAM credential report in this run (IAM users' console passwords and \
                   whether their keys were ever used are not known)";
        let unknown = ControlFacts {
            in_scope: &scope[1..],
            iam_users_unknown: Some(why),
            ..facts
        };
        let result = evaluate(&control, &unknown);
        assert_eq!(result.status, ControlStatus::NotAssessed);
        assert_eq!(result.note.as_deref(), Some(why));
        let result = evaluate(
            &control,
            &ControlFacts {
                in_scope: &scope,
                ..unknown
            },
        );
        assert_eq!(result.status, ControlStatus::Fail);
        // A control that does not judge IAM users is not held back by it.
        let c114 = builtin_control("cis-aws", "1.14");
        assert_eq!(evaluate(&c114, &unknown).status, ControlStatus::Pass);
        // No active key at all: nothing to judge.
        let result = evaluate(&control, &ControlFacts::default());
        assert_eq!(result.status, ControlStatus::NotApplicable);
    }

    #[test]
    fn cis_1_12_judges_console_passwords_at_45_days() {
        let control = builtin_control("cis-aws", "1.12");
        assert_eq!(control.max_unused_days, Some(45));
        assert!(control.include_console_passwords && control.judges_iam_users());
        let keys = [key_of("AKIABOB1", "111122223333/bob")];
        let passwords = [
            // Exactly 45 days is not beyond 45 (as for keys).
            password("at-limit", Some(45.0)),
            password("just-over", Some(45.1)),
            // Never used, set 46 days ago (the unused days count from password_last_changed).
            password("never-used-old", Some(46.0)),
            password("never-used-new", Some(3.0)),
            // Neither known: unknown breaks nothing.
            password("unknown", None),
        ];
        let facts = ControlFacts {
            in_scope: &keys,
            console_passwords: &passwords,
            ..Default::default()
        };
        let result = evaluate(&control, &facts);
        assert_eq!(result.status, ControlStatus::Fail);
        assert_eq!(
            result.failing_credentials,
            [
                "arn:aws:iam::111122223333:user/just-over/console-password",
                "arn:aws:iam::111122223333:user/never-used-old/console-password",
            ]
        );
        assert_eq!(result.in_scope, 6, "one key and five console passwords");

        // Console passwords alone are a scope: recent ones pass, even with no key.
        let recent = [password("at-limit", Some(45.0)), password("new", Some(0.5))];
        let only_passwords = ControlFacts {
            console_passwords: &recent,
            ..Default::default()
        };
        let result = evaluate(&control, &only_passwords);
        assert_eq!((result.status, result.in_scope), (ControlStatus::Pass, 2));
        // Keys are judged as before: a key unused 46 days fails beside clean passwords.
        let stale_key = [item(
            "AKIAOLD",
            CredentialKind::IamAccessKey,
            Some(50.0),
            Some(46.0),
        )];
        let result = evaluate(
            &control,
            &ControlFacts {
                in_scope: &stale_key,
                ..only_passwords
            },
        );
        assert_eq!(result.failing_credentials, ["AKIAOLD"]);

        // Without the credential report the password part is unknown: not assessed, never
        // pass, though the keys alone would pass.
        let why = "no IAM credential report in this run (…)";
        let result = evaluate(
            &control,
            &ControlFacts {
                in_scope: &keys,
                iam_users_unknown: Some(why),
                ..Default::default()
            },
        );
        assert_eq!(result.status, ControlStatus::NotAssessed);
        assert_eq!(result.note.as_deref(), Some(why));

        // A control that does not include console passwords does not see them (PCI 8.2.6's
        // 90 days judge keys and secrets only).
        let pci = builtin_control("pci-dss", "8.2.6");
        assert!(!pci.include_console_passwords);
        let result = evaluate(
            &pci,
            &ControlFacts {
                rules_run: &known_rules(),
                ..facts
            },
        );
        assert_eq!((result.status, result.in_scope), (ControlStatus::Pass, 1));
    }

    #[test]
    fn console_thresholds_are_checked_when_parsed() {
        for (to, expect) in [
            (
                "rules = []\ninclude_console_passwords = true\nmax_age_days = 9",
                "include_console_passwords judges console passwords against max_unused_days",
            ),
            (
                "rules = []\nforbid_never_used_keys_on_console_users = true\nkinds = [\"secret\"]",
                "leaves out iam-access-key",
            ),
            (
                "rules = []\nstatus = \"manual\"\nforbid_never_used_keys_on_console_users = true",
                "manual",
            ),
            (
                "rules = []\nstatus = \"manual\"\ninclude_console_passwords = true",
                "manual",
            ),
            (
                "rules = []\nforbid_never_used_keys_on_console_users = \"yes\"",
                "controls[0]",
            ),
        ] {
            let text = MINIMAL.replace("rules = [\"rotation-overdue\"]", to);
            let err = parse_str(&text).expect_err(to).to_string();
            assert!(err.contains(expect), "{to}: {err}");
        }
        // The flag alone is a threshold: a control with no rules can carry it.
        let text = MINIMAL.replace(
            "rules = [\"rotation-overdue\"]",
            "rules = []\nforbid_never_used_keys_on_console_users = true",
        );
        let control = parse_str(&text).unwrap().controls.remove(0);
        assert!(
            control.forbid_never_used_keys_on_console_users && !control.include_console_passwords
        );
    }

    #[test]
    fn tested_by_names_own_thresholds_kinds_and_manual_rules() {
        assert_eq!(
            builtin_control("cis-aws", "1.14").tested_by(),
            "own threshold: at most 90 days since rotation; on iam-access-key"
        );
        assert_eq!(
            builtin_control("cis-aws", "1.12").tested_by(),
            "own threshold: unused at most 45 days; on iam-access-key and IAM users' console passwords"
        );
        assert_eq!(
            builtin_control("cis-aws", "1.11").tested_by(),
            "own threshold: no active access key never used on an IAM user with a console \
             password; on iam-access-key"
        );
        assert_eq!(
            builtin_control("cis-aws", "1.13").tested_by(),
            "multiple-active-keys; own threshold: at most 1 active access key per IAM user, no overlap; \
             on iam-access-key"
        );
        assert_eq!(
            builtin_control("pci-dss", "8.2.6").tested_by(),
            "secret-unused; own threshold: unused at most 90 days; \
             on iam-access-key, root-access-key, secret, db-password"
        );
        assert_eq!(
            builtin_control("nist-800-53", "CA-5").tested_by(),
            "manual, needs evidence no scan gives; related rules: rotation-due-soon, waiver-expired"
        );
        assert_eq!(
            builtin_control("nist-800-53", "CA-7").tested_by(),
            "manual, needs evidence no scan gives"
        );
        assert_eq!(
            builtin_control("soc2", "CC7.4").tested_by(),
            "incident-not-remediated"
        );
        // Every built-in control says what tests it.
        for f in builtin().unwrap() {
            for c in &f.controls {
                assert!(!c.tested_by().is_empty(), "{}:{}", f.id, c.id);
            }
        }
    }
}
