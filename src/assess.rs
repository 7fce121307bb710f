//! The evaluation stage, between the rules and the reports: turns one run's facts into an
//! [`Assessment`] (the sources the run had, the rules that ran and those that did not with
//! why, the findings, the credentials in scope, every control's result, and the remediation
//! plan). `scan` assesses once and the snapshot records the assessment with the run; `report`,
//! `simulate` and `query` read it back and never evaluate again.
//!
//! A rule runs only when the run had the evidence sources it declares
//! ([`crate::rules::RuleMeta::sources`]); a control passes only when every rule it depends on
//! ran over a non-empty scope, and is `not-assessed`, with the reason, otherwise.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::controls::{self, ConsolePassword, ControlFacts, ControlStatus, Framework, ScopeItem};
use crate::join::EvalCtx;
use crate::model::{CredentialKind, Facts, Finding, IamUser, KeyStatus, OwnerStatus, Timestamp};
use crate::plan::{self, Plan, PlanConfig};
use crate::rules::{RULES, Source};

/// Version of the stored assessment's JSON shape; bumped on any incompatible change. Version 2
/// stores no `scope`, `console_passwords` or `credentials` (see [`Assessment::restore`]);
/// version 1 stored them, and reads as version 2 does.
pub const ASSESSMENT_VERSION: u32 = 2;

/// The stored assessment versions this credaudit reads.
pub const READS_VERSIONS: [u32; 2] = [1, ASSESSMENT_VERSION];

/// Everything one evaluation of a run concluded. Stored with the run (the findings in their own
/// table, the rest as JSON), so every report renders what was assessed.
///
/// What the run's facts say as of its as-of without judging anything (the credentials in
/// scope, the console passwords, the reconciled inventory) is not stored a second time: those
/// lists are one row per credential whose ages change every day, so storing them would make
/// every nightly run of an unchanged fleet as large as the fleet. [`Assessment::restore`]
/// derives them again from the stored facts, which the run's hash covers. The judgments (the
/// findings, every control's result, the plan) are stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    pub version: u32,
    /// The evaluation time.
    pub as_of: Timestamp,
    /// In canonical order (see [`crate::rules::sort_findings`]). Stored in the `findings`
    /// table, not in the assessment's JSON.
    #[serde(skip)]
    pub findings: Vec<Finding>,
    /// The evidence sources the run had: per account and region for what AWS gave (from
    /// coverage), without either for the declared inputs (inventory, rotation history).
    pub sources: Vec<SourceEntry>,
    /// Every rule, in catalogue order: whether it ran, and if not, why.
    pub rules: Vec<RuleRun>,
    /// The credentials every control is judged over: the active ones of the run. Not stored.
    #[serde(skip)]
    pub scope: Vec<ScopeItem>,
    /// The console passwords of IAM users, which controls that include them (CIS 1.12) judge
    /// beside `scope`. Empty for a run recorded before they were read. Not stored.
    #[serde(skip)]
    pub console_passwords: Vec<ConsolePassword>,
    /// Every credential, declared and observed, reconciled (the bundle's inventory). Not
    /// stored.
    #[serde(skip)]
    pub credentials: Vec<CredentialRecord>,
    /// Each framework's control results, in framework then file order.
    pub frameworks: Vec<FrameworkResult>,
    pub plan: Plan,
    /// Waivers that accept no finding of this run: stale, or written for the wrong id.
    #[serde(default)]
    pub unmatched_waivers: Vec<UnmatchedWaiver>,
}

/// A waiver that matched no finding of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnmatchedWaiver {
    /// Its line in the waivers file.
    pub line: usize,
    pub rule: String,
    /// The credential id or glob it names.
    pub credential: String,
    pub ticket: String,
    pub expires: Timestamp,
}

impl Assessment {
    /// Fills in what is not stored (the scope, the console passwords and the reconciled
    /// credentials) from the facts of the run the assessment was read from, as of its as-of:
    /// the same values the evaluation derived when it judged the run.
    pub fn restore(&mut self, facts: &Facts) {
        let ctx = EvalCtx::new(facts, self.as_of);
        let users: BTreeMap<String, &IamUser> = facts.users.iter().map(|u| (u.key(), u)).collect();
        self.scope = scope(&ctx, &users);
        self.console_passwords = console_passwords(facts, self.as_of);
        self.credentials = credentials(&ctx);
    }
}

/// The waivers that match none of `findings` (findings indexed by rule first, so this is one
/// walk over the findings and, per waiver, over its rule's findings only).
fn unmatched_waivers(facts: &Facts, findings: &[Finding]) -> Vec<UnmatchedWaiver> {
    let mut by_rule: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for finding in findings {
        by_rule
            .entry(finding.rule.as_str())
            .or_default()
            .push(finding);
    }
    crate::waivers::CompiledWaiver::compile(&facts.waivers)
        .into_iter()
        .filter(|compiled| {
            !by_rule
                .get(compiled.waiver.rule.as_str())
                .is_some_and(|list| list.iter().any(|f| compiled.matches(f)))
        })
        .map(|compiled| compiled.waiver)
        .map(|w| UnmatchedWaiver {
            line: w.line,
            rule: w.rule.clone(),
            credential: w.credential.clone(),
            ticket: w.ticket.clone(),
            expires: w.expires,
        })
        .collect()
}

/// One evidence source the run had, where.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SourceEntry {
    pub source: Source,
    /// The AWS account it covers; `None` for a declared input.
    pub account: Option<String>,
    /// The region it covers (`global` for IAM); `None` for a declared input.
    pub region: Option<String>,
    /// How many records it gave.
    pub records: u64,
}

/// Whether a rule ran, on all the evidence it reads or only part of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleRun {
    pub rule: String,
    /// It ran (its findings are in the assessment).
    pub ran: bool,
    /// The sources it was missing: empty when it ran on all it reads. A rule that ran with
    /// some missing ran in part, and the controls it tests cannot pass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<Source>,
    /// Why it did not run, or ran in part, e.g. "no CloudTrail in this run".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl RuleRun {
    /// Ran on every source it reads.
    pub fn complete(&self) -> bool {
        self.ran && self.missing.is_empty()
    }
}

/// One credential as the bundle's inventory shows it: declared vs observed, reconciled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialRecord {
    pub id: String,
    pub kind: CredentialKind,
    /// `reconciled`, `unmanaged`, `orphaned` or `declared-only`.
    pub reconciliation: String,
    pub declared: bool,
    pub observed: bool,
    pub class: String,
    pub owner: String,
    /// `active`, `departed`, `undeclared`, or empty when there is no owner.
    pub owner_status: String,
    pub account: String,
    pub region: String,
    pub principal: String,
    /// `active`, `inactive`, or empty when not observed.
    pub status: String,
    pub automated: bool,
    pub consumers: Vec<String>,
    pub last_rotation: Option<Timestamp>,
    pub last_used: Option<Timestamp>,
    /// Days since the last rotation (one decimal), if known.
    pub age_days: Option<f64>,
    pub interval_days: i64,
}

/// One framework's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameworkResult {
    pub id: String,
    pub name: String,
    pub version: String,
    pub controls: Vec<ControlAssessment>,
}

impl FrameworkResult {
    /// How many of its controls have `status`.
    pub fn count(&self, status: ControlStatus) -> usize {
        self.controls.iter().filter(|c| c.status == status).count()
    }
}

/// One control's result, with what it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlAssessment {
    pub id: String,
    pub title: String,
    /// Why it applies to credentials.
    pub reason: String,
    pub rules: Vec<String>,
    pub status: ControlStatus,
    /// Why it is `not-assessed` (the missing source and the rules it kept from running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub findings: usize,
    pub in_scope: usize,
    pub failing_credentials: Vec<String>,
}

impl Assessment {
    /// The distinct sources the run had, sorted.
    pub fn sources_had(&self) -> Vec<Source> {
        let set: BTreeSet<Source> = self.sources.iter().map(|s| s.source).collect();
        set.into_iter().collect()
    }
}

/// `framework:control` ids per rule id, from the catalogues.
pub fn rule_controls(frameworks: &[Framework]) -> BTreeMap<String, Vec<String>> {
    controls::rule_map(frameworks)
        .into_iter()
        .map(|(rule, pairs)| {
            let ids = pairs.into_iter().map(|(f, c)| format!("{f}:{c}")).collect();
            (rule, ids)
        })
        .collect()
}

/// The evidence sources a run had: each successful coverage entry that stands for one (per
/// account and region, records summed), then the inventory when it declares anything and the
/// rotation history when it holds an event. Sorted.
pub fn sources_of(facts: &Facts) -> Vec<SourceEntry> {
    let mut by_place: BTreeMap<(Source, String, String), u64> = BTreeMap::new();
    for c in facts.coverage.iter().filter(|c| c.ok) {
        if let Some(source) = Source::of_api(&c.api) {
            *by_place
                .entry((source, c.account.clone(), c.region.clone()))
                .or_default() += c.records;
        }
    }
    let mut sources: Vec<SourceEntry> = by_place
        .into_iter()
        .map(|((source, account, region), records)| SourceEntry {
            source,
            account: Some(account),
            region: Some(region),
            records,
        })
        .collect();
    let inventory = &facts.inventory;
    if !inventory.credentials.is_empty() || !inventory.owners.is_empty() {
        sources.push(SourceEntry {
            source: Source::Inventory,
            account: None,
            region: None,
            records: inventory.credentials.len() as u64,
        });
    }
    let history = facts
        .events
        .iter()
        .filter(|e| e.source == "history")
        .count();
    if history > 0 {
        sources.push(SourceEntry {
            source: Source::RotationHistory,
            account: None,
            region: None,
            records: history as u64,
        });
    }
    sources.sort();
    sources
}

fn days_f(d: chrono::Duration) -> f64 {
    (d.num_seconds() as f64 / 86_400.0 * 10.0).round() / 10.0
}

/// The credentials every control is judged over: the active ones of the run. An active IAM
/// key whose user is in the credential report (`users`) carries whether that user has a
/// console password and whether the key was ever used (CIS 1.11).
fn scope(ctx: &EvalCtx, users: &BTreeMap<String, &IamUser>) -> Vec<ScopeItem> {
    ctx.credentials
        .iter()
        .filter(|v| v.is_active())
        .map(|v| {
            let unused_since = v.observed.and_then(|o| o.last_used_at.or(o.created_at));
            let active_key = v.observed.filter(|o| {
                o.kind == CredentialKind::IamAccessKey && o.status == KeyStatus::Active
            });
            let iam_user = active_key.map(|o| format!("{}/{}", o.account, o.name));
            // Its user is in the report, so the key's last use is the report's (N/A: never).
            let reported = iam_user.as_ref().and_then(|user| users.get(user));
            ScopeItem {
                id: v.id.to_string(),
                kind: v.kind,
                rotation_age_days: ctx.last_rotation(v).map(|t| days_f(ctx.as_of - t)),
                unused_days: unused_since.map(|t| days_f(ctx.as_of - t)),
                console_user: reported.map(|u| u.password_enabled),
                never_used: reported.and(active_key).map(|o| o.last_used_at.is_none()),
                iam_user,
            }
        })
        .collect()
}

/// The console passwords of the IAM users of `facts`, judged as CIS 1.12's audit does: days
/// since `password_last_used`, or, never used, since `password_last_changed`.
fn console_passwords(facts: &Facts, as_of: Timestamp) -> Vec<ConsolePassword> {
    facts
        .users
        .iter()
        .filter(|u| u.password_enabled)
        .map(|u| ConsolePassword {
            id: u.console_password_id(),
            iam_user: u.key(),
            unused_days: u
                .password_last_used_at
                .or(u.password_last_changed_at)
                .map(|t| days_f(as_of - t)),
        })
        .collect()
}

/// Why the IAM users are not known for every account whose IAM was read: no credential report
/// at all, or none for some accounts (named). `None` when every such account's report was read.
fn iam_users_unknown(sources: &[SourceEntry]) -> Option<String> {
    let accounts = |wanted: &[Source]| -> BTreeSet<&str> {
        sources
            .iter()
            .filter(|s| wanted.contains(&s.source))
            .filter_map(|s| s.account.as_deref())
            .collect()
    };
    let reported = accounts(&[Source::CredentialReport]);
    let unknown =
        "IAM users' console passwords and whether their keys were ever used are not known";
    if reported.is_empty() {
        return Some(format!(
            "{} ({unknown})",
            Source::reason(&[Source::CredentialReport])
        ));
    }
    let missing: Vec<&str> = accounts(&[Source::IamKeys])
        .difference(&reported)
        .copied()
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "no {} for account {} in this run ({unknown} there)",
            Source::CredentialReport.describe(),
            missing.join(", ")
        )
    })
}

/// Every credential, reconciled, for the bundle's inventory.
fn credentials(ctx: &EvalCtx) -> Vec<CredentialRecord> {
    let owners = ctx.facts.inventory.owners_by_id();
    ctx.credentials
        .iter()
        .map(|v| {
            let reconciliation = match (v.declared.is_some(), v.observed.is_some()) {
                (true, true) => "reconciled",
                (false, true) => "unmanaged",
                (true, false) if v.kind.is_discoverable() => "orphaned",
                _ => "declared-only",
            };
            let owner = v.owner().unwrap_or_default();
            let owner_status = owners
                .get(owner)
                .map(|o| match o.status {
                    OwnerStatus::Active => "active",
                    OwnerStatus::Departed => "departed",
                })
                .unwrap_or(if owner.is_empty() { "" } else { "undeclared" });
            let last_rotation = ctx.last_rotation(v);
            CredentialRecord {
                id: v.id.to_string(),
                kind: v.kind,
                reconciliation: reconciliation.to_string(),
                declared: v.declared.is_some(),
                observed: v.observed.is_some(),
                class: v.class().map(|c| c.to_string()).unwrap_or_default(),
                owner: owner.to_string(),
                owner_status: owner_status.to_string(),
                account: v.account().unwrap_or_default().to_string(),
                region: v.region().unwrap_or_default().to_string(),
                principal: v.observed.map(|o| o.name.clone()).unwrap_or_default(),
                status: match v.observed.map(|o| o.status) {
                    Some(KeyStatus::Inactive) => "inactive",
                    Some(KeyStatus::Active) => "active",
                    None => "",
                }
                .to_string(),
                automated: v.declared.is_some_and(|d| d.automated),
                consumers: v.declared.map(|d| d.consumers.clone()).unwrap_or_default(),
                last_rotation,
                last_used: v.observed.and_then(|o| o.last_used_at),
                age_days: last_rotation.map(|t| days_f(ctx.as_of - t)),
                interval_days: ctx.interval(v).num_days(),
            }
        })
        .collect()
}

/// Assesses one run's facts as of `as_of`: decides which rules can run from the sources the
/// run had, runs them, and judges their findings (see [`judge`]).
pub fn assess(
    facts: &Facts,
    as_of: Timestamp,
    frameworks: &[Framework],
    plan_config: &PlanConfig,
) -> Assessment {
    let sources = sources_of(facts);
    let rules = rule_runs(&sources);
    let ran: BTreeSet<&str> = rules
        .iter()
        .filter(|r| r.ran)
        .map(|r| r.rule.as_str())
        .collect();

    let ctx = EvalCtx::new(facts, as_of);
    let findings = crate::rules::evaluate_selected(&ctx, |r| ran.contains(r.meta.id));
    judge_in(&ctx, sources, rules, frameworks, plan_config, findings)
}

/// Judges given `findings` of one run's facts as of `as_of`, without evaluating any rule:
/// every control of `frameworks`, the plan and the unmatched waivers come from `findings`;
/// the sources, the rule runs, the scope and the credentials from the facts. For a run whose
/// findings were recorded before its assessment was.
pub fn judge(
    facts: &Facts,
    as_of: Timestamp,
    frameworks: &[Framework],
    plan_config: &PlanConfig,
    findings: Vec<Finding>,
) -> Assessment {
    let sources = sources_of(facts);
    let rules = rule_runs(&sources);
    let ctx = EvalCtx::new(facts, as_of);
    judge_in(&ctx, sources, rules, frameworks, plan_config, findings)
}

/// [`judge`] with the evaluation context, sources and rule runs already built.
fn judge_in(
    ctx: &EvalCtx,
    sources: Vec<SourceEntry>,
    rules: Vec<RuleRun>,
    frameworks: &[Framework],
    plan_config: &PlanConfig,
    findings: Vec<Finding>,
) -> Assessment {
    let (facts, as_of) = (ctx.facts, ctx.as_of);
    let users: BTreeMap<String, &IamUser> = facts.users.iter().map(|u| (u.key(), u)).collect();
    let in_scope = scope(ctx, &users);
    let passwords = console_passwords(facts, as_of);
    let users_unknown = iam_users_unknown(&sources);
    // Controls pass only on rules that ran on all their evidence.
    let rules_run: Vec<&str> = rules
        .iter()
        .filter(|r| r.complete())
        .map(|r| r.rule.as_str())
        .collect();
    let not_run: BTreeMap<String, (String, bool)> = rules
        .iter()
        .filter_map(|r| r.reason.clone().map(|why| (r.rule.clone(), (why, r.ran))))
        .collect();
    // Controls judge open findings only: a waived finding does not fail a control.
    let open: Vec<&Finding> = findings.iter().filter(|f| f.is_open()).collect();
    let control_facts = ControlFacts {
        findings: &open,
        in_scope: &in_scope,
        rules_run: &rules_run,
        console_passwords: &passwords,
        iam_users_unknown: users_unknown.as_deref(),
    };
    let frameworks_result = judge_frameworks(frameworks, &control_facts, &not_run);
    let plan = plan::build(
        facts,
        &findings,
        &rule_controls(frameworks),
        as_of,
        plan_config,
    );
    Assessment {
        version: ASSESSMENT_VERSION,
        as_of,
        sources,
        rules,
        scope: in_scope,
        console_passwords: passwords,
        credentials: credentials(ctx),
        frameworks: frameworks_result,
        plan,
        unmatched_waivers: unmatched_waivers(facts, &findings),
        findings,
    }
}

/// Every registered rule, and whether it can run on the sources the run had.
fn rule_runs(sources: &[SourceEntry]) -> Vec<RuleRun> {
    let had: Vec<Source> = sources
        .iter()
        .map(|s| s.source)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    RULES
        .iter()
        .map(|r| {
            let missing = Source::missing(r.meta.sources, &had);
            RuleRun {
                rule: r.meta.id.to_string(),
                ran: Source::runnable(r.meta.sources, &had),
                reason: (!missing.is_empty()).then(|| Source::reason(&missing)),
                missing,
            }
        })
        .collect()
}

/// The result of every control of `frameworks`, from the facts of the run and the rules that
/// did not run (with why, and whether they ran in part).
fn judge_frameworks(
    frameworks: &[Framework],
    control_facts: &ControlFacts,
    not_run: &BTreeMap<String, (String, bool)>,
) -> Vec<FrameworkResult> {
    frameworks
        .iter()
        .map(|fw| FrameworkResult {
            id: fw.id.clone(),
            name: fw.name.clone(),
            version: fw.version.clone(),
            controls: fw
                .controls
                .iter()
                .map(|c| {
                    let result = controls::evaluate_with(c, control_facts, not_run);
                    ControlAssessment {
                        id: c.id.clone(),
                        title: c.title.clone(),
                        reason: c.reason.clone(),
                        rules: c.rules.clone(),
                        status: result.status,
                        note: result.note,
                        findings: result.findings,
                        in_scope: result.in_scope,
                        failing_credentials: result.failing_credentials,
                    }
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CoverageEntry;
    use crate::rules::testkit::{self, ACCOUNT, days_ago};

    fn user(name: &str, password: bool, used: Option<i64>, changed: Option<i64>) -> IamUser {
        IamUser {
            account: ACCOUNT.into(),
            name: name.into(),
            arn: format!("arn:aws:iam::{ACCOUNT}:user/{name}"),
            created_at: Some(days_ago(400)),
            password_enabled: password,
            password_last_used_at: used.map(days_ago),
            password_last_changed_at: changed.map(days_ago),
        }
    }

    /// CIS 1.11 and 1.12's (status, failing credentials, note).
    fn cis(facts: &Facts) -> Vec<(ControlStatus, Vec<String>, Option<String>)> {
        let frameworks = controls::builtin().unwrap();
        let assessment = assess(facts, testkit::as_of(), &frameworks, &PlanConfig::default());
        let cis = assessment
            .frameworks
            .iter()
            .find(|f| f.id == "cis-aws")
            .unwrap();
        ["1.11", "1.12"]
            .iter()
            .map(|id| {
                let c = cis.controls.iter().find(|c| c.id == *id).unwrap();
                (c.status, c.failing_credentials.clone(), c.note.clone())
            })
            .collect()
    }

    fn fleet() -> Facts {
        let mut never_used = testkit::key("AKIAALICENEVERUSED01", "alice", 2);
        never_used.last_used_at = None;
        let mut bot = testkit::key("AKIABOTNEVERUSED0001", "bot", 2);
        bot.last_used_at = None;
        let keys = vec![
            never_used,
            testkit::key("AKIABOB0000000000001", "bob", 10),
            bot,
        ];
        let declared = testkit::declare_all(&keys);
        let mut facts = testkit::facts(keys, declared, vec![]);
        facts.users = vec![
            // Console user with a never-used key (1.11) who signed in 45 days ago (1.12 ok).
            user("alice", true, Some(45), Some(300)),
            // Signed in 46 days ago: 1.12 fails.
            user("bob", true, Some(46), Some(300)),
            // Never signed in, password set 46 days ago: 1.12 fails; set 44 days ago: passes.
            user("carol", true, None, Some(46)),
            user("dave", true, None, Some(44)),
            // No console password: its never-used key is not 1.11's, its password not 1.12's.
            user("bot", false, None, None),
        ];
        facts
    }

    #[test]
    fn cis_1_11_and_1_12_are_judged_on_the_credential_report_users() {
        let pw = |name: &str| format!("arn:aws:iam::{ACCOUNT}:user/{name}/console-password");
        assert_eq!(
            cis(&fleet()),
            [
                (
                    ControlStatus::Fail,
                    vec!["AKIAALICENEVERUSED01".to_string()],
                    None
                ),
                (ControlStatus::Fail, vec![pw("bob"), pw("carol")], None),
            ]
        );
        let mut clean = fleet();
        clean
            .users
            .retain(|u| ["bot", "dave"].contains(&u.name.as_str()));
        clean.observed.retain(|o| o.name != "alice");
        assert_eq!(
            cis(&clean)
                .into_iter()
                .map(|(status, _, _)| status)
                .collect::<Vec<_>>(),
            [ControlStatus::Pass, ControlStatus::Pass]
        );
    }

    #[test]
    fn without_the_credential_report_1_11_and_1_12_are_not_assessed() {
        let mut facts = fleet();
        facts.users.clear();
        facts.coverage.retain(|c| c.api != "iam:credential-report");
        let results = cis(&facts);
        for (status, failing, note) in &results {
            assert_eq!(*status, ControlStatus::NotAssessed);
            assert!(failing.is_empty());
            assert_eq!(
                note.as_deref(),
                Some(
                    "no IAM credential report in this run (IAM users' console passwords and \
                     whether their keys were ever used are not known)"
                )
            );
        }

        // A second account whose keys were listed without its report: named.
        let mut facts = fleet();
        facts.users.retain(|u| u.name == "dave");
        facts.observed.retain(|o| o.name == "bob");
        facts.coverage.push(CoverageEntry {
            account: "444455556666".into(),
            region: "global".into(),
            api: "iam:list-access-keys".into(),
            ok: true,
            error: None,
            records: 0,
        });
        let results = cis(&facts);
        assert_eq!(results[1].0, ControlStatus::NotAssessed);
        assert_eq!(
            results[1].2.as_deref(),
            Some(
                "no IAM credential report for account 444455556666 in this run (IAM users' \
                 console passwords and whether their keys were ever used are not known there)"
            )
        );
    }

    #[test]
    fn judging_given_findings_judges_the_controls_on_them() {
        let facts = fleet();
        let frameworks = controls::builtin().unwrap();
        let config = PlanConfig::default();
        let cis_1_4 = |a: &Assessment| {
            let cis = a.frameworks.iter().find(|f| f.id == "cis-aws").unwrap();
            cis.controls.iter().find(|c| c.id == "1.4").unwrap().clone()
        };
        let assessed = assess(&facts, testkit::as_of(), &frameworks, &config);
        assert!(
            assessed
                .findings
                .iter()
                .all(|f| f.rule != "root-access-key")
        );
        assert_eq!(cis_1_4(&assessed).status, ControlStatus::Pass);

        // Judging the findings the rules gave reproduces the assessment.
        let rejudged = judge(
            &facts,
            testkit::as_of(),
            &frameworks,
            &config,
            assessed.findings.clone(),
        );
        assert_eq!(rejudged, assessed);

        // A finding the facts would not produce still fails its control.
        let root = Finding {
            rule: "root-access-key".into(),
            severity: crate::model::Severity::Critical,
            credential: "AKIABOB0000000000001".into(),
            kind: CredentialKind::IamAccessKey,
            account: Some(ACCOUNT.into()),
            region: None,
            owner: None,
            principal: Some("root".into()),
            message: "root access key".into(),
            evidence: Vec::new(),
            waiver: None,
        };
        let judged = judge(
            &facts,
            testkit::as_of(),
            &frameworks,
            &config,
            vec![root.clone()],
        );
        assert_eq!(judged.findings, [root]);
        let control = cis_1_4(&judged);
        assert_eq!(
            (
                control.status,
                control.findings,
                control.failing_credentials
            ),
            (
                ControlStatus::Fail,
                1,
                vec!["AKIABOB0000000000001".to_string()]
            )
        );
        // The rule runs and the scope still come from the facts.
        assert_eq!(judged.rules, assessed.rules);
        assert_eq!(judged.scope, assessed.scope);
    }
}
