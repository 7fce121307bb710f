//! The compliance simulation: asks a run the questions an auditor asks (kept as data in
//! `simulate/questions.toml`, embedded at build time), answers each one with a built-in function,
//! and scores how completely the facts on record answer them.
//!
//! Each answer is `complete`, `partial` (naming what is missing: evidence that was never kept,
//! such as rotation history that starts late, or credentials for which the asked-for proof does
//! not exist) or `unanswerable`, with a one-line answer and its evidence as `<question-id>.csv`.
//! Completeness averages complete = 1, partial = 0.5, unanswerable = 0 over the questions.
//! `simulation.json` and `simulation.md` summarise the run.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use chrono::{Duration, Months};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::join::{CredentialView, fmt_time};
use crate::model::{
    CredentialKind, EventType, Facts, Finding, OwnerStatus, RotationEvent, Timestamp,
};
use crate::output::escape_markdown;
use crate::query::{
    self, Lookup, PROOF_COLUMNS, Proof, ProofRow, ROTATION_COLUMNS, TRAIL_COLUMNS, Table, Verdict,
};

/// The question catalogue as shipped.
const QUESTIONS_TOML: &str = include_str!("../simulate/questions.toml");

/// How the catalogue is named in errors.
const QUESTIONS_PATH: &str = "simulate/questions.toml";

/// One question of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// Kebab-case; names the evidence file `<id>.csv`.
    pub id: String,
    /// The question as an auditor puts it.
    pub question: String,
    /// The framework controls it serves, `<framework>:<control id>` (e.g. `soc2:CC6.1`).
    pub controls: Vec<String>,
    /// The name of the built-in function that answers it (see [`answer_names`]).
    pub answer: String,
    /// How far back it looks, in days.
    #[serde(default)]
    pub lookback_days: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Catalogue {
    questions: Vec<Question>,
}

/// How completely a question could be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[derive(strum::IntoStaticStr)]
#[strum(serialize_all = "kebab-case")]
pub enum AnswerStatus {
    /// Everything the question asks for is on record.
    Complete,
    /// Some of it is; `missing` says what is not.
    Partial,
    /// Nothing on record can answer it.
    Unanswerable,
}

impl AnswerStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Its weight in the completeness score.
    pub fn score(self) -> f64 {
        match self {
            Self::Complete => 1.0,
            Self::Partial => 0.5,
            Self::Unanswerable => 0.0,
        }
    }
}

/// The answer to one question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    pub id: String,
    pub question: String,
    pub status: AnswerStatus,
    /// One line.
    pub answer: String,
    /// What is missing for a complete answer, one line each.
    pub missing: Vec<String>,
    /// `<id>.csv`, unless the question was unanswerable.
    pub evidence_file: Option<String>,
    pub controls: Vec<String>,
}

/// The outcome of a simulation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Simulation {
    pub as_of: String,
    pub run_id: i64,
    pub answers: Vec<Answer>,
    /// 0–100, one decimal: complete = 1, partial = 0.5, unanswerable = 0, averaged.
    pub completeness: f64,
}

/// What an answering function returns.
struct Outcome {
    status: AnswerStatus,
    answer: String,
    missing: Vec<String>,
    evidence: Table,
}

impl Outcome {
    fn unanswerable(why: impl Into<String>, evidence: Table) -> Self {
        let why = why.into();
        Outcome {
            status: AnswerStatus::Unanswerable,
            answer: format!("cannot be answered: {why}"),
            missing: vec![why],
            evidence,
        }
    }

    /// Complete when nothing is missing, else partial.
    fn judged(answer: String, missing: Vec<String>, evidence: Table) -> Self {
        Outcome {
            status: if missing.is_empty() {
                AnswerStatus::Complete
            } else {
                AnswerStatus::Partial
            },
            answer,
            missing,
            evidence,
        }
    }
}

/// Everything an answering function may look at.
struct Inputs<'a> {
    lookup: Lookup<'a>,
    facts: &'a Facts,
    findings: &'a [Finding],
    as_of: Timestamp,
    history_start: Option<Timestamp>,
}

impl<'a> Inputs<'a> {
    /// Every credential, sorted by public id.
    fn credentials(&self) -> Vec<CredentialView<'a>> {
        let mut views = self.lookup.ctx.credentials.clone();
        views.sort_by(|a, b| a.id.cmp(b.id));
        views
    }
}

/// A built-in answering function.
struct Answerer {
    name: &'static str,
    needs_lookback: bool,
    run: fn(&Inputs, &Question) -> Outcome,
}

static ANSWERERS: &[Answerer] = &[
    Answerer {
        name: "rotation-events",
        needs_lookback: true,
        run: rotation_events,
    },
    Answerer {
        name: "credential-trails",
        needs_lookback: true,
        run: credential_trails,
    },
    Answerer {
        name: "rotation-proof",
        needs_lookback: true,
        run: rotation_proof,
    },
    Answerer {
        name: "owners",
        needs_lookback: false,
        run: owners,
    },
    Answerer {
        name: "inventory",
        needs_lookback: false,
        run: inventory,
    },
    Answerer {
        name: "failed-rotation-follow-up",
        needs_lookback: true,
        run: failed_rotation_follow_up,
    },
];

/// The names of the built-in answering functions a question's `answer` may name.
pub fn answer_names() -> Vec<&'static str> {
    ANSWERERS.iter().map(|a| a.name).collect()
}

fn answerer(name: &str) -> Option<&'static Answerer> {
    ANSWERERS.iter().find(|a| a.name == name)
}

/// The question catalogue compiled into the binary, validated: ids kebab-case and unique, every
/// `answer` a known function, a lookback wherever the function needs one, controls written
/// `<framework>:<control id>`.
pub fn catalogue() -> Result<Vec<Question>> {
    parse_catalogue(QUESTIONS_TOML)
}

fn parse_catalogue(text: &str) -> Result<Vec<Question>> {
    let path = Path::new(QUESTIONS_PATH);
    let catalogue: Catalogue =
        toml::from_str(text).map_err(|e| Error::input_file(path, e.message().trim()))?;
    let mut seen = HashSet::new();
    for q in &catalogue.questions {
        let at = format!("question \"{}\"", q.id);
        let kebab = !q.id.is_empty()
            && q.id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !q.id.starts_with('-');
        if !kebab {
            return Err(Error::input(path, at, "id must be kebab-case"));
        }
        if !seen.insert(q.id.as_str()) {
            return Err(Error::input(path, at, "duplicate id"));
        }
        let Some(a) = answerer(&q.answer) else {
            return Err(Error::input(
                path,
                at,
                format!(
                    "answer \"{}\" is not a built-in function (expected one of {})",
                    q.answer,
                    answer_names().join(", ")
                ),
            ));
        };
        if a.needs_lookback && q.lookback_days.is_none_or(|d| d == 0) {
            return Err(Error::input(
                path,
                at,
                format!("answer \"{}\" needs lookback_days (at least 1)", q.answer),
            ));
        }
        if let Some(c) = q.controls.iter().find(|c| {
            !c.split_once(':')
                .is_some_and(|(f, i)| !f.is_empty() && !i.is_empty())
        }) {
            return Err(Error::input(
                path,
                at,
                format!("control \"{c}\" must be written <framework>:<control id>"),
            ));
        }
    }
    Ok(catalogue.questions)
}

/// Asks every question of the catalogue of one run (its facts and findings) as of `as_of`.
/// When `out` is given, writes there (creating it) each answered question's evidence as
/// `<question-id>.csv`, then `simulation.json` and `simulation.md`; every file is written whole
/// or not at all. The same input gives byte-identical files.
pub fn simulate(
    facts: &Facts,
    findings: &[Finding],
    run_id: i64,
    as_of: Timestamp,
    out: Option<&Path>,
) -> Result<Simulation> {
    let questions = catalogue()?;
    let inputs = Inputs {
        lookup: Lookup::new(facts, as_of),
        facts,
        findings,
        as_of,
        history_start: query::history_start(facts),
    };
    let mut answers = Vec::with_capacity(questions.len());
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for q in &questions {
        let run = answerer(&q.answer)
            .expect("catalogue() checked every answer")
            .run;
        let outcome = run(&inputs, q);
        let evidence_file = (outcome.status != AnswerStatus::Unanswerable).then(|| {
            let name = format!("{}.csv", q.id);
            files.push((name.clone(), outcome.evidence.to_csv()));
            name
        });
        answers.push(Answer {
            id: q.id.clone(),
            question: q.question.clone(),
            status: outcome.status,
            answer: outcome.answer,
            missing: outcome.missing,
            evidence_file,
            controls: q.controls.clone(),
        });
    }
    let completeness = completeness(&answers);
    let simulation = Simulation {
        as_of: fmt_time(as_of),
        run_id,
        answers,
        completeness,
    };
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        files.push(("simulation.json".to_string(), simulation.to_json()));
        files.push((
            "simulation.md".to_string(),
            simulation.to_markdown().into_bytes(),
        ));
        for (name, bytes) in &files {
            crate::report::write_atomic(dir, name, bytes)?;
        }
    }
    Ok(simulation)
}

/// The completeness score, 0–100 with one decimal.
fn completeness(answers: &[Answer]) -> f64 {
    if answers.is_empty() {
        return 0.0;
    }
    let mean = answers.iter().map(|a| a.status.score()).sum::<f64>() / answers.len() as f64;
    (mean * 1000.0).round() / 10.0
}

impl Simulation {
    /// `simulation.json`.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a simulation always serializes");
        out.push(b'\n');
        out
    }

    /// `simulation.md`: a readable summary; every string is escaped for Markdown.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        md.push_str("# Compliance simulation\n\n");
        md.push_str(&format!(
            "- As of: {}\n- Run: {}\n- Completeness: **{:.1} %** (complete = 1, partial = 0.5, \
             unanswerable = 0, averaged over {} questions)\n\n",
            escape_markdown(&self.as_of),
            self.run_id,
            self.completeness,
            self.answers.len()
        ));
        md.push_str(
            "A status says how completely the records answer a question: a partial answer names \
             what is missing, be it evidence that was never kept or credentials for which the \
             asked-for proof does not exist.\n\n",
        );
        md.push_str("| Question | Status | Answer |\n|---|---|---|\n");
        for a in &self.answers {
            md.push_str(&format!(
                "| {} | {} | {} |\n",
                escape_markdown(&a.id),
                a.status.as_str(),
                escape_markdown(&a.answer)
            ));
        }
        for a in &self.answers {
            md.push_str(&format!(
                "\n## {}\n\n{}\n\n- Status: **{}**\n- Answer: {}\n",
                escape_markdown(&a.id),
                escape_markdown(&a.question),
                a.status.as_str(),
                escape_markdown(&a.answer)
            ));
            if !a.missing.is_empty() {
                md.push_str("- Missing:\n");
                for m in &a.missing {
                    md.push_str(&format!("  - {}\n", escape_markdown(m)));
                }
            }
            md.push_str(&format!(
                "- Evidence: {}\n- Controls: {}\n",
                a.evidence_file
                    .as_deref()
                    .map(escape_markdown)
                    .unwrap_or_else(|| "none".to_string()),
                escape_markdown(&a.controls.join(", "))
            ));
        }
        md
    }
}

/// The period a question looks back over.
struct Lookback {
    start: Timestamp,
    /// `12-month`, `90-day`, …
    label: String,
}

fn lookback(q: &Question, as_of: Timestamp) -> Lookback {
    let days = q.lookback_days.unwrap_or(365);
    let label = if days % 365 == 0 {
        format!("{}-month", days / 365 * 12)
    } else if days % 30 == 0 {
        format!("{}-month", days / 30)
    } else {
        format!("{days}-day")
    };
    Lookback {
        start: crate::join::sub_saturating(as_of, Duration::days(i64::from(days))),
        label,
    }
}

/// What is missing when the rotation history starts inside the lookback, e.g. `history starts
/// 2026-07-03, 8 months into the 12-month lookback (from 2025-11-01)`.
fn history_gap(history_start: Option<Timestamp>, lb: &Lookback) -> Option<String> {
    let start = history_start?;
    if start <= lb.start {
        return None;
    }
    let months = (1..)
        .take_while(|m| {
            lb.start
                .checked_add_months(Months::new(*m))
                .is_some_and(|t| t <= start)
        })
        .count();
    let into = match months {
        0 => plural((start - lb.start).num_days().max(1) as usize, "day", "days"),
        m => plural(m, "month", "months"),
    };
    Some(format!(
        "history starts {}, {into} into the {} lookback (from {})",
        start.date_naive(),
        lb.label,
        lb.start.date_naive()
    ))
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// "7 of 448 credentials have no owner" (or "1 of 448 credentials has …").
fn share(k: usize, n: usize, noun: &str, has: &str, have: &str, rest: &str) -> String {
    let verb = if k == 1 { has } else { have };
    if rest.is_empty() {
        format!("{k} of {n} {noun} {verb}")
    } else {
        format!("{k} of {n} {noun} {verb} {rest}")
    }
}

/// Up to five ids, then how many more: `a, b, c and 4 more`.
fn some_ids(ids: &[&str]) -> String {
    const SHOWN: usize = 5;
    let mut ids: Vec<&str> = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let shown = ids[..ids.len().min(SHOWN)].join(", ");
    match ids.len().saturating_sub(SHOWN) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

/// A table whose columns are `credential` followed by `columns`.
fn per_credential(columns: &[&'static str]) -> Table {
    let mut all = vec!["credential"];
    all.extend_from_slice(columns);
    Table::new(&all)
}

/// Whether a declared AWS credential is known not to exist: it was not found, and its account
/// and service were read.
fn known_absent(facts: &Facts, view: &CredentialView) -> bool {
    let Some(d) = view.declared else {
        return false;
    };
    if view.observed.is_some() || !view.kind.is_discoverable() {
        return false;
    }
    let api = match view.kind {
        CredentialKind::Secret => "secretsmanager:",
        _ => "iam:",
    };
    match &d.account {
        Some(account) => facts.covered(account, api),
        None => facts
            .scanned_accounts()
            .iter()
            .any(|a| facts.covered(a, api)),
    }
}

/// Every rotation event of the lookback, from history and CloudTrail.
fn rotation_events(inp: &Inputs, q: &Question) -> Outcome {
    let lb = lookback(q, inp.as_of);
    let table = query::rotations_in(&inp.lookup, Some(lb.start), inp.as_of, None);
    let any_rotation_record = inp.facts.events.iter().any(query::is_rotation);
    let mut missing = Vec::new();
    match inp.history_start {
        None if !any_rotation_record => {
            return Outcome::unanswerable(
                "no rotation history and no CloudTrail rotation records",
                table,
            );
        }
        None => missing.push(
            "no rotation history: only CloudTrail lifecycle records, which show no initiated or \
             failed rotations of credentials held outside AWS"
                .to_string(),
        ),
        Some(_) => missing.extend(history_gap(inp.history_start, &lb)),
    }
    let event = ROTATION_COLUMNS.iter().position(|c| *c == "event");
    let credential = ROTATION_COLUMNS.iter().position(|c| *c == "credential");
    let count = |t: EventType| {
        table
            .rows
            .iter()
            .filter(|r| event.is_some_and(|i| r[i] == t.as_str()))
            .count()
    };
    let credentials: BTreeSet<&str> = table
        .rows
        .iter()
        .filter_map(|r| credential.map(|i| r[i].as_str()))
        .collect();
    let answer = format!(
        "{} for {} between {} and {}: {} completed, {} failed, {} initiated",
        plural(table.rows.len(), "rotation event", "rotation events"),
        plural(credentials.len(), "credential", "credentials"),
        lb.start.date_naive(),
        inp.as_of.date_naive(),
        count(EventType::RotationCompleted),
        count(EventType::RotationFailed),
        count(EventType::RotationInitiated),
    );
    Outcome::judged(answer, missing, table)
}

/// An audit trail (events of any type, usage per day) for every credential over the lookback.
fn credential_trails(inp: &Inputs, q: &Question) -> Outcome {
    let lb = lookback(q, inp.as_of);
    let mut table = per_credential(&TRAIL_COLUMNS);
    let views = inp.credentials();
    if views.is_empty() {
        return Outcome::unanswerable("no credential was observed or declared", table);
    }
    if inp.facts.events.is_empty() && !inp.lookup.has_usage() {
        return Outcome::unanswerable(
            "no rotation history, CloudTrail lifecycle records or usage records to build a trail \
             from",
            table,
        );
    }
    let mut without_events: Vec<&str> = Vec::new();
    let (mut events_total, mut usage_days) = (0, 0);
    for v in &views {
        let events: Vec<&RotationEvent> = inp
            .lookup
            .ctx
            .events(v)
            .into_iter()
            .filter(|e| e.time >= lb.start && e.time <= inp.as_of)
            .collect();
        let aliases: BTreeSet<&str> = crate::join::aliases(v).into_iter().collect();
        let trail = inp
            .lookup
            .trail_table(&events, &aliases, lb.start, inp.as_of);
        events_total += events.len();
        usage_days += trail.rows.len() - events.len();
        if events.is_empty() {
            without_events.push(v.id);
        }
        if trail.rows.is_empty() {
            let mut row = vec![v.id.to_string(), String::new(), "none".to_string()];
            row.resize(table.columns.len(), String::new());
            table.rows.push(row);
        }
        for row in trail.rows {
            let mut full = Vec::with_capacity(row.len() + 1);
            full.push(v.id.to_string());
            full.extend(row);
            table.rows.push(full);
        }
    }
    let mut missing = Vec::new();
    match inp.history_start {
        None => missing.push(
            "no rotation history: the trails hold only CloudTrail lifecycle and usage records"
                .to_string(),
        ),
        Some(_) => missing.extend(history_gap(inp.history_start, &lb)),
    }
    if !without_events.is_empty() {
        missing.push(format!(
            "{} ({})",
            share(
                without_events.len(),
                views.len(),
                "credentials",
                "has",
                "have",
                &format!("no event in the {} lookback", lb.label)
            ),
            some_ids(&without_events)
        ));
    }
    let answer = format!(
        "{} over the {} lookback ({}, {} of usage)",
        share(
            views.len() - without_events.len(),
            views.len(),
            "credentials",
            "has an audit trail",
            "have an audit trail",
            ""
        ),
        lb.label,
        plural(events_total, "event", "events"),
        plural(usage_days, "day", "days"),
    );
    Outcome::judged(answer, missing, table)
}

/// How one credential fared over the lookback.
#[derive(PartialEq)]
enum ProofOutcome {
    Within,
    Late,
    Unproven,
    NoRotation,
}

/// Proof of rotation within the declared period, per active credential, over the lookback.
fn rotation_proof(inp: &Inputs, q: &Question) -> Outcome {
    let lb = lookback(q, inp.as_of);
    let ctx = &inp.lookup.ctx;
    let mut table = per_credential(&PROOF_COLUMNS);
    // Deactivated keys cannot be used, and a declared credential that is known not to exist
    // (the inventory question reports it) has nothing left to rotate.
    let views: Vec<CredentialView> = inp
        .credentials()
        .into_iter()
        .filter(|v| v.is_active() && !known_absent(inp.facts, v))
        .collect();
    if views.is_empty() {
        return Outcome::unanswerable("no active credential was observed or declared", table);
    }
    let mut late: Vec<&str> = Vec::new();
    let mut unproven: Vec<&str> = Vec::new();
    let mut none: Vec<&str> = Vec::new();
    for v in &views {
        let events = ctx.events(v);
        let proof = Proof::build(ctx, Some(v), &events, inp.history_start);
        let rows = rows_in_lookback(&proof, &lb);
        let outcome = proof_outcome(&rows);
        match outcome {
            ProofOutcome::Late => late.push(v.id),
            ProofOutcome::Unproven => unproven.push(v.id),
            ProofOutcome::NoRotation => none.push(v.id),
            ProofOutcome::Within => {}
        }
        for row in rows {
            let mut cells = vec![v.id.to_string()];
            cells.extend(row.cells());
            table.rows.push(cells);
        }
    }
    if none.len() == views.len() {
        return Outcome::unanswerable(
            "no rotation is on record for any credential: no rotation history and no rotation \
             or creation dates from AWS",
            table,
        );
    }
    let n = views.len();
    let missing = rotation_proof_missing(inp, &lb, n, &late, &unproven, &none);
    let answer = rotation_proof_answer(&lb, n, late.len(), unproven.len(), none.len());
    Outcome::judged(answer, missing, table)
}

/// How a credential fared, from its proof rows in the lookback.
fn proof_outcome(rows: &[ProofRow]) -> ProofOutcome {
    if rows.iter().all(|r| r.verdict == Verdict::NoRotation) {
        ProofOutcome::NoRotation
    } else if rows.iter().any(|r| matches!(r.verdict, Verdict::Late(_))) {
        ProofOutcome::Late
    } else if rows
        .iter()
        .any(|r| matches!(r.verdict, Verdict::Unproven(_)))
    {
        ProofOutcome::Unproven
    } else {
        ProofOutcome::Within
    }
}

/// What keeps the rotation proof from passing: the `late`, `unproven` and `none` (no rotation
/// on record) credentials among `n`.
fn rotation_proof_missing(
    inp: &Inputs,
    lb: &Lookback,
    n: usize,
    late: &[&str],
    unproven: &[&str],
    none: &[&str],
) -> Vec<String> {
    let mut missing = Vec::new();
    if !late.is_empty() {
        missing.push(format!(
            "{} ({})",
            share(
                late.len(),
                n,
                "active credentials",
                "went",
                "went",
                "longer than the declared period without rotation"
            ),
            some_ids(late)
        ));
    }
    if !unproven.is_empty() {
        let why = history_gap(inp.history_start, lb).unwrap_or_else(|| {
            if inp.history_start.is_none() {
                "no rotation history".to_string()
            } else {
                "no rotation record for part of the lookback".to_string()
            }
        });
        missing.push(format!(
            "{} ({}): {why}",
            share(
                unproven.len(),
                n,
                "active credentials",
                "cannot be proven rotated in time",
                "cannot be proven rotated in time",
                ""
            ),
            some_ids(unproven)
        ));
    }
    if !none.is_empty() {
        missing.push(format!(
            "{} ({})",
            share(
                none.len(),
                n,
                "active credentials",
                "has",
                "have",
                "no rotation on record"
            ),
            some_ids(none)
        ));
    }
    missing
}

/// The rotation proof's answer, from the number of `late`, `unproven` and `none` credentials
/// among `n`.
fn rotation_proof_answer(
    lb: &Lookback,
    n: usize,
    late: usize,
    unproven: usize,
    none: usize,
) -> String {
    let within = n - late - unproven - none;
    let mut answer = format!(
        "{} over the {} lookback",
        share(
            within,
            n,
            "active credentials",
            "is proven rotated within its declared period",
            "are proven rotated within their declared period",
            ""
        ),
        lb.label
    );
    let tail: Vec<String> = [
        (late, "late"),
        (unproven, "unproven"),
        (none, "with no rotation on record"),
    ]
    .into_iter()
    .filter(|(k, _)| *k > 0)
    .map(|(k, what)| format!("{k} {what}"))
    .collect();
    if !tail.is_empty() {
        answer.push_str(&format!("; {}", tail.join(", ")));
    }
    answer
}

/// The rows of a proof that speak for the lookback: every rotation that closes a gap inside it,
/// and the current age; when the first record falls inside the lookback and is not the
/// credential's creation, a `lookback start` row says whether the time before it is proven.
fn rows_in_lookback(proof: &Proof, lb: &Lookback) -> Vec<ProofRow> {
    let mut rows = Vec::new();
    if let Some(first) = proof.rows.first()
        && first.time > lb.start
        && first.verdict == Verdict::Start("first on record")
    {
        let gap = first.time - lb.start;
        let verdict = if gap <= proof.interval {
            Verdict::Within
        } else {
            Verdict::Unproven(format!(
                "no rotation on record from the lookback start to {}",
                first.time.date_naive()
            ))
        };
        rows.push(ProofRow {
            time: lb.start,
            event: "lookback start",
            sources: Vec::new(),
            gap: None,
            interval: proof.interval,
            verdict,
        });
    }
    rows.extend(
        proof
            .rows
            .iter()
            .filter(|r| r.event == "current age" || r.time >= lb.start)
            .cloned(),
    );
    rows
}

/// An active owner for every credential.
fn owners(inp: &Inputs, _q: &Question) -> Outcome {
    let inventory = &inp.facts.inventory;
    let mut table = Table::new(&[
        "credential",
        "kind",
        "declared",
        "owner",
        "owner_source",
        "owner_status",
    ]);
    let views = inp.credentials();
    if views.is_empty() {
        return Outcome::unanswerable("no credential was observed or declared", table);
    }
    if inventory.credentials.is_empty() && inventory.owners.is_empty() {
        return Outcome::unanswerable("no declared inventory: no owner is on record", table);
    }
    let (mut no_owner, mut departed, mut unknown) = (Vec::new(), Vec::new(), Vec::new());
    for v in &views {
        let declared_owner = v.declared.and_then(|d| d.owner.as_deref());
        let owner = v.owner();
        let source = match (declared_owner, owner) {
            (Some(_), _) => "inventory",
            (None, Some(_)) => "tag",
            (None, None) => "",
        };
        let status = match owner {
            None => {
                no_owner.push(v.id);
                "none"
            }
            Some(id) => match inventory.owner(id) {
                None => {
                    unknown.push(v.id);
                    "not a declared owner"
                }
                Some(o) if o.status == OwnerStatus::Departed => {
                    departed.push(v.id);
                    "departed"
                }
                Some(_) => "active",
            },
        };
        table.rows.push(vec![
            v.id.to_string(),
            v.kind.to_string(),
            if v.declared.is_some() { "yes" } else { "no" }.to_string(),
            owner.unwrap_or_default().to_string(),
            source.to_string(),
            status.to_string(),
        ]);
    }
    let n = views.len();
    let mut missing = Vec::new();
    for (ids, rest) in [
        (&no_owner, "no owner"),
        (&departed, "an owner who has departed"),
        (&unknown, "an owner who is not among the declared owners"),
    ] {
        if !ids.is_empty() {
            missing.push(format!(
                "{} ({})",
                share(ids.len(), n, "credentials", "has", "have", rest),
                some_ids(ids)
            ));
        }
    }
    let owned = n - no_owner.len() - departed.len() - unknown.len();
    let answer = share(owned, n, "credentials", "has", "have", "an active owner");
    Outcome::judged(answer, missing, table)
}

/// The inventory and AWS reconcile both ways: nothing in AWS undeclared, every declared AWS
/// credential found where it was scanned.
fn inventory(inp: &Inputs, _q: &Question) -> Outcome {
    let facts = inp.facts;
    let mut table = Table::new(&[
        "credential",
        "kind",
        "account",
        "region",
        "declared",
        "found_in_aws",
        "status",
    ]);
    let scanned = facts.scanned_accounts();
    if scanned.is_empty() {
        return Outcome::unanswerable(
            "no AWS account was read: there is nothing to reconcile the inventory with",
            table,
        );
    }
    let (mut unmanaged, mut not_found, mut unverified) = (Vec::new(), Vec::new(), Vec::new());
    let (mut in_aws, mut declared_in_aws) = (0, 0);
    for v in &inp.credentials() {
        let (found, status) = match (v.observed, v.declared) {
            (Some(_), Some(_)) => {
                in_aws += 1;
                declared_in_aws += 1;
                ("yes", "reconciled")
            }
            (Some(_), None) => {
                in_aws += 1;
                unmanaged.push(v.id);
                ("yes", "unmanaged: not in the inventory")
            }
            (None, Some(_)) if !v.kind.is_discoverable() => {
                ("not discoverable", "declared; held outside AWS")
            }
            (None, Some(_)) => {
                declared_in_aws += 1;
                if known_absent(facts, v) {
                    not_found.push(v.id);
                    ("no", "declared but not found where it was scanned")
                } else {
                    unverified.push(v.id);
                    (
                        "not scanned",
                        "unverified: its account or service was not read",
                    )
                }
            }
            (None, None) => continue,
        };
        table.rows.push(vec![
            v.id.to_string(),
            v.kind.to_string(),
            v.account().unwrap_or_default().to_string(),
            v.region().unwrap_or_default().to_string(),
            if v.declared.is_some() { "yes" } else { "no" }.to_string(),
            found.to_string(),
            status.to_string(),
        ]);
    }
    let mut missing =
        inventory_missing(in_aws, declared_in_aws, &unmanaged, &not_found, &unverified);
    missing.extend(unread_sources(facts));
    let answer = format!(
        "{} found in AWS, {} not in the inventory; {} declared in AWS, {} not found, {} unverified",
        plural(in_aws, "credential", "credentials"),
        unmanaged.len(),
        declared_in_aws,
        not_found.len(),
        unverified.len()
    );
    Outcome::judged(answer, missing, table)
}

/// What keeps the inventory from reconciling: the `unmanaged` credentials among the `in_aws`
/// ones, and the `not_found` and `unverified` ones among the `declared_in_aws`.
fn inventory_missing(
    in_aws: usize,
    declared_in_aws: usize,
    unmanaged: &[&str],
    not_found: &[&str],
    unverified: &[&str],
) -> Vec<String> {
    let mut missing = Vec::new();
    if !unmanaged.is_empty() {
        missing.push(format!(
            "{} ({})",
            share(
                unmanaged.len(),
                in_aws,
                "credentials found in AWS",
                "is",
                "are",
                "not in the inventory"
            ),
            some_ids(unmanaged)
        ));
    }
    if !not_found.is_empty() {
        missing.push(format!(
            "{} ({})",
            share(
                not_found.len(),
                declared_in_aws,
                "declared AWS credentials",
                "was",
                "were",
                "not found in a scanned account"
            ),
            some_ids(not_found)
        ));
    }
    if !unverified.is_empty() {
        missing.push(format!(
            "{} ({})",
            share(
                unverified.len(),
                declared_in_aws,
                "declared AWS credentials",
                "is",
                "are",
                "in an account or service that was not read"
            ),
            some_ids(unverified)
        ));
    }
    missing
}

/// The sources that could not be read (the first five), if any.
fn unread_sources(facts: &Facts) -> Option<String> {
    let failed: Vec<String> = facts
        .coverage
        .iter()
        .filter(|c| !c.ok)
        .map(|c| {
            format!(
                "{} in account {} region {}: {}",
                c.api,
                c.account,
                c.region,
                c.error.as_deref().unwrap_or("failed")
            )
        })
        .collect();
    if !failed.is_empty() {
        let shown: Vec<&str> = failed.iter().take(5).map(String::as_str).collect();
        let more = failed.len().saturating_sub(shown.len());
        return Some(format!(
            "{} could not be read: {}{}",
            plural(failed.len(), "source", "sources"),
            shown.join("; "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
    None
}

/// Every failed rotation of the lookback is followed by a completed one or by an open
/// `rotation-failing` finding of this run.
fn failed_rotation_follow_up(inp: &Inputs, q: &Question) -> Outcome {
    let lb = lookback(q, inp.as_of);
    let mut table = Table::new(&[
        "failed_at",
        "credential",
        "recorded_id",
        "details",
        "follow_up",
        "followed_up",
    ]);
    if inp.history_start.is_none() {
        return Outcome::unanswerable(
            "no rotation history: failed rotations are recorded only there",
            table,
        );
    }
    let mut rows = failed_rotation_rows(inp, &lb);
    rows.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let total = rows.len();
    let unfollowed: Vec<String> = rows
        .iter()
        .filter(|(_, _, ok)| !ok)
        .map(|(_, cells, _)| cells[1].clone())
        .collect();
    let recovered = rows
        .iter()
        .filter(|(_, cells, _)| cells[4].starts_with("rotation.completed"))
        .count();
    table.rows = rows.into_iter().map(|(_, cells, _)| cells).collect();
    let mut missing: Vec<String> = history_gap(inp.history_start, &lb).into_iter().collect();
    if !unfollowed.is_empty() {
        let ids: Vec<&str> = unfollowed.iter().map(String::as_str).collect();
        missing.push(format!(
            "{} ({})",
            share(
                unfollowed.len(),
                total,
                "failed rotations",
                "was",
                "were",
                "followed by neither a success nor an open rotation-failing finding"
            ),
            some_ids(&ids)
        ));
    }
    let answer = if total == 0 {
        format!("no failed rotation in the {} lookback", lb.label)
    } else {
        format!(
            "{} in the {} lookback: {} followed by a success, {} by an open rotation-failing \
             finding, {} by neither",
            plural(total, "failed rotation", "failed rotations"),
            lb.label,
            recovered,
            total - recovered - unfollowed.len(),
            unfollowed.len()
        )
    };
    Outcome::judged(answer, missing, table)
}

/// A row per failed rotation of the lookback, with its time and whether it was followed up.
fn failed_rotation_rows(inp: &Inputs, lb: &Lookback) -> Vec<(Timestamp, Vec<String>, bool)> {
    let open_failing: HashSet<&str> = inp
        .findings
        .iter()
        .filter(|f| f.rule == "rotation-failing" && f.is_open())
        .map(|f| f.credential.as_str())
        .collect();
    let in_lookback = |e: &RotationEvent| e.time >= lb.start && e.time <= inp.as_of;
    let mut rows: Vec<(Timestamp, Vec<String>, bool)> = Vec::new();
    let mut judge = |credential: &str, failed: &RotationEvent, later: &[&RotationEvent]| {
        let success = later
            .iter()
            .find(|e| e.event_type == EventType::RotationCompleted && e.time <= inp.as_of);
        let (follow_up, ok) = match success {
            Some(s) => (format!("rotation.completed at {}", fmt_time(s.time)), true),
            None if open_failing.contains(credential) => {
                ("open rotation-failing finding".to_string(), true)
            }
            None => ("none".to_string(), false),
        };
        rows.push((
            failed.time,
            vec![
                fmt_time(failed.time),
                credential.to_string(),
                failed.credential_id.clone(),
                failed.details.clone().unwrap_or_default(),
                follow_up,
                if ok { "yes" } else { "no" }.to_string(),
            ],
            ok,
        ));
    };
    for v in &inp.credentials() {
        let events = inp.lookup.ctx.events(v);
        for (i, e) in events.iter().enumerate() {
            if e.event_type == EventType::RotationFailed && in_lookback(e) {
                judge(v.id, e, &events[i + 1..]);
            }
        }
    }
    // Failures of credentials that are neither observed nor declared any more.
    let orphans: Vec<&RotationEvent> = inp
        .facts
        .events
        .iter()
        .filter(|e| !inp.lookup.is_known(&e.credential_id))
        .collect();
    for (i, e) in orphans.iter().enumerate() {
        if e.event_type == EventType::RotationFailed && in_lookback(e) {
            let later: Vec<&RotationEvent> = orphans[i + 1..]
                .iter()
                .filter(|n| n.credential_id == e.credential_id && n.time >= e.time)
                .copied()
                .collect();
            judge(&e.credential_id, e, &later);
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CoverageEntry, KeyStatus};
    use crate::rules::testkit::*;

    fn answer<'s>(sim: &'s Simulation, id: &str) -> &'s Answer {
        sim.answers
            .iter()
            .find(|a| a.id == id)
            .unwrap_or_else(|| panic!("no answer {id}"))
    }

    fn mean_score(sim: &Simulation) -> f64 {
        let sum: f64 = sim.answers.iter().map(|a| a.status.score()).sum();
        (sum / sim.answers.len() as f64 * 1000.0).round() / 10.0
    }

    #[test]
    fn catalogue_answers_are_known_functions_and_controls_exist() {
        let questions = catalogue().unwrap();
        assert!(questions.len() >= 6);
        let known = answer_names();
        let frameworks = crate::controls::builtin().unwrap();
        for q in &questions {
            assert!(known.contains(&q.answer.as_str()), "{}: {}", q.id, q.answer);
            assert!(!q.controls.is_empty(), "{} serves no control", q.id);
            for c in &q.controls {
                let (framework, control) = c.split_once(':').unwrap();
                let f = frameworks
                    .iter()
                    .find(|f| f.id == framework)
                    .unwrap_or_else(|| panic!("{}: unknown framework in {c}", q.id));
                assert!(
                    f.control(control).is_some(),
                    "{}: unknown control {c}",
                    q.id
                );
            }
        }
        // Every built-in function is asked at least once.
        for name in known {
            assert!(questions.iter().any(|q| q.answer == name), "{name} unused");
        }
    }

    #[test]
    fn catalogue_errors_name_the_question_and_the_problem() {
        let bad = |answer: &str, lookback: &str| {
            parse_catalogue(&format!(
                "[[questions]]\nid = \"q-1\"\nquestion = \"?\"\ncontrols = [\"soc2:CC6.1\"]\n\
                 answer = \"{answer}\"\n{lookback}"
            ))
            .unwrap_err()
            .to_string()
        };
        let err = bad("guess", "");
        assert!(
            err.starts_with("simulate/questions.toml: question \"q-1\": answer \"guess\" is not"),
            "{err}"
        );
        assert!(err.contains("rotation-events"), "{err}");
        let err = bad("rotation-events", "");
        assert!(err.contains("needs lookback_days"), "{err}");
        assert!(bad("owners", "lookback_days = 1\nextra = 2").contains("extra"));
        let err = parse_catalogue(
            "[[questions]]\nid = \"../x\"\nquestion = \"?\"\ncontrols = []\nanswer = \"owners\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("kebab-case"), "{err}");
    }

    #[test]
    fn history_gap_names_the_start_and_how_far_into_the_lookback() {
        let q = Question {
            id: "q".into(),
            question: "?".into(),
            controls: vec![],
            answer: "rotation-events".into(),
            lookback_days: Some(365),
        };
        let lb = lookback(&q, as_of());
        assert_eq!(lb.label, "12-month");
        let start = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 7, 3, 0, 0, 0).unwrap();
        assert_eq!(
            history_gap(Some(start), &lb).unwrap(),
            "history starts 2026-07-03, 8 months into the 12-month lookback (from 2025-11-01)"
        );
        assert_eq!(
            history_gap(Some(lb.start + Duration::days(3)), &lb).unwrap(),
            "history starts 2025-11-04, 3 days into the 12-month lookback (from 2025-11-01)"
        );
        assert_eq!(history_gap(Some(lb.start), &lb), None);
        assert_eq!(history_gap(None, &lb), None);
    }

    /// Reads an export directory with its inventory and history, as `scan` does.
    fn load_dir(dir: &Path) -> Facts {
        let export = crate::collect::read_export_dir(dir).unwrap();
        Facts {
            inventory: crate::inventory::load(&dir.join("inventory.toml")).unwrap(),
            observed: export.observed,
            events: crate::history::load(&dir.join("history.jsonl")).unwrap(),
            coverage: export.coverage,
            ..Facts::default()
        }
    }

    #[test]
    fn short_history_answers_in_part() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/short-history");
        let facts = load_dir(&dir);
        let findings = crate::rules::evaluate(&facts, as_of());
        let out = tempfile::tempdir().unwrap();
        let sim = simulate(&facts, &findings, 7, as_of(), Some(out.path())).unwrap();
        assert_eq!(sim.as_of, "2026-11-01T00:00:00Z");
        assert_eq!(sim.run_id, 7);

        let events = answer(&sim, "rotation-events-12m");
        assert_eq!(events.status, AnswerStatus::Partial);
        assert_eq!(
            events.missing,
            vec![
                "history starts 2026-07-03, 8 months into the 12-month lookback (from 2025-11-01)"
            ]
        );
        assert!(
            events.answer.starts_with(
                "30 rotation events for 5 credentials between 2025-11-01 and 2026-11-01: 14 \
                 completed, 2 failed, 14 initiated"
            ),
            "{}",
            events.answer
        );

        let trails = answer(&sim, "credential-audit-trails");
        assert_eq!(trails.status, AnswerStatus::Partial);
        assert_eq!(
            trails.missing[1],
            "3 of 8 credentials have no event in the 12-month lookback (AKIASHORTGONE0000001, \
             AKIASHORTLEGACY00001, ext:openai-research)"
        );

        let proof = answer(&sim, "rotation-within-period");
        assert_eq!(proof.status, AnswerStatus::Partial);
        assert_eq!(
            proof.answer,
            "2 of 7 active credentials are proven rotated within their declared period over the \
             12-month lookback; 3 late, 1 unproven, 1 with no rotation on record"
        );

        let owners = answer(&sim, "credential-owners");
        assert_eq!(owners.status, AnswerStatus::Partial);
        assert_eq!(
            owners.missing,
            vec![
                "1 of 8 credentials has no owner (AKIASHORTLEGACY00001)",
                "1 of 8 credentials has an owner who has departed (AKIASHORTREPORTS0001)",
            ]
        );

        let inventory = answer(&sim, "inventory-complete");
        assert_eq!(inventory.status, AnswerStatus::Partial);
        assert_eq!(
            inventory.missing,
            vec![
                "1 of 6 credentials found in AWS is not in the inventory (AKIASHORTLEGACY00001)",
                "1 of 6 declared AWS credentials was not found in a scanned account \
                 (AKIASHORTGONE0000001)",
            ]
        );

        // Both failures were followed up: one by a success, one by the open finding; only the
        // short history keeps the answer partial.
        let failed = answer(&sim, "failed-rotations-followed-up");
        assert_eq!(failed.status, AnswerStatus::Partial);
        assert_eq!(failed.missing.len(), 1);
        assert!(failed.missing[0].starts_with("history starts 2026-07-03"));
        assert_eq!(
            failed.answer,
            "2 failed rotations in the 12-month lookback: 1 followed by a success, 1 by an open \
             rotation-failing finding, 0 by neither"
        );

        assert!(sim.completeness < 100.0);
        assert_eq!(sim.completeness, mean_score(&sim));
        assert_eq!(sim.completeness, 50.0);

        for a in &sim.answers {
            let file = a.evidence_file.as_deref().unwrap();
            assert_eq!(file, format!("{}.csv", a.id));
            let csv = std::fs::read_to_string(out.path().join(file)).unwrap();
            assert!(csv.lines().count() > 1, "{file} holds rows");
        }
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.path().join("simulation.json")).unwrap())
                .unwrap();
        assert_eq!(json["completeness"], 50.0);
        assert_eq!(json["answers"][0]["status"], "partial");
        assert_eq!(
            json["answers"][0]["evidence_file"],
            "rotation-events-12m.csv"
        );
        assert_eq!(json["answers"][0]["controls"][0], "soc2:CC8.1");
        let md = std::fs::read_to_string(out.path().join("simulation.md")).unwrap();
        assert!(md.contains("Completeness: **50.0 %**"), "{md}");
        assert!(
            md.contains("| rotation\\-events\\-12m |") || md.contains("| rotation-events-12m |")
        );

        let proof_csv =
            std::fs::read_to_string(out.path().join("rotation-within-period.csv")).unwrap();
        assert!(
            proof_csv.contains(
                "ext:openai-research,2026-11-01T00:00:00Z,current age,,,30,no rotation on record"
            ),
            "{proof_csv}"
        );
        let follow_up =
            std::fs::read_to_string(out.path().join("failed-rotations-followed-up.csv")).unwrap();
        assert!(
            follow_up.contains("open rotation-failing finding,yes"),
            "{follow_up}"
        );

        // Same input, same bytes.
        let again = tempfile::tempdir().unwrap();
        simulate(&facts, &findings, 7, as_of(), Some(again.path())).unwrap();
        for a in &sim.answers {
            let file = a.evidence_file.as_deref().unwrap();
            assert_eq!(
                std::fs::read(out.path().join(file)).unwrap(),
                std::fs::read(again.path().join(file)).unwrap()
            );
        }
        for file in ["simulation.json", "simulation.md"] {
            assert_eq!(
                std::fs::read(out.path().join(file)).unwrap(),
                std::fs::read(again.path().join(file)).unwrap()
            );
        }
    }

    /// A key and a secret, declared and owned, with a year and more of on-time rotations.
    fn well_kept() -> Facts {
        let k = key("AKIAWELLKEPT00000001", "svc", 10);
        let mut s = secret("prod/db", 4);
        s.created_at = Some(days_ago(400));
        let mut events = vec![event(
            &k.id,
            EventType::RotationCompleted,
            days_ago(10),
            None,
        )];
        events.extend((0..=33).map(|i| {
            event(
                &s.id,
                EventType::RotationCompleted,
                days_ago(400 - 12 * i),
                None,
            )
        }));
        events.sort_by_key(|e| e.time);
        let declared = declare_all(&[k.clone(), s.clone()]);
        let mut facts = facts(vec![k, s], declared, events);
        for c in &mut facts.coverage {
            c.region = "global".into();
        }
        facts
    }

    #[test]
    fn a_well_kept_fleet_answers_everything() {
        let facts = well_kept();
        let findings = crate::rules::evaluate(&facts, as_of());
        let sim = simulate(&facts, &findings, 1, as_of(), None).unwrap();
        for a in &sim.answers {
            assert_eq!(
                a.status,
                AnswerStatus::Complete,
                "{}: {} {:?}",
                a.id,
                a.answer,
                a.missing
            );
            assert!(a.missing.is_empty());
        }
        assert_eq!(sim.completeness, 100.0);
        assert_eq!(
            answer(&sim, "failed-rotations-followed-up").answer,
            "no failed rotation in the 12-month lookback"
        );
        assert_eq!(
            answer(&sim, "rotation-within-period").answer,
            "2 of 2 active credentials are proven rotated within their declared period over the \
             12-month lookback"
        );
    }

    #[test]
    fn without_history_the_history_questions_are_unanswerable() {
        let mut facts = well_kept();
        facts.events.clear();
        let out = tempfile::tempdir().unwrap();
        let sim = simulate(&facts, &[], 2, as_of(), Some(out.path())).unwrap();
        let status = |id: &str| answer(&sim, id).status;
        assert_eq!(status("rotation-events-12m"), AnswerStatus::Unanswerable);
        assert_eq!(
            status("credential-audit-trails"),
            AnswerStatus::Unanswerable
        );
        assert_eq!(
            status("failed-rotations-followed-up"),
            AnswerStatus::Unanswerable
        );
        // AWS still shows when each credential last changed, but not what happened before.
        assert_eq!(status("rotation-within-period"), AnswerStatus::Partial);
        assert_eq!(status("credential-owners"), AnswerStatus::Complete);
        assert_eq!(status("inventory-complete"), AnswerStatus::Complete);
        let events = answer(&sim, "rotation-events-12m");
        assert_eq!(
            events.missing,
            vec!["no rotation history and no CloudTrail rotation records"]
        );
        assert_eq!(events.evidence_file, None);
        assert!(!out.path().join("rotation-events-12m.csv").exists());
        assert!(out.path().join("credential-owners.csv").exists());
        // (0 + 0 + 0.5 + 1 + 1 + 0) / 6
        assert_eq!(sim.completeness, 41.7);
        assert_eq!(sim.completeness, mean_score(&sim));
    }

    #[test]
    fn nothing_scanned_leaves_the_inventory_question_unanswerable() {
        let mut facts = well_kept();
        facts.coverage.clear();
        facts.observed.clear();
        let sim = simulate(&facts, &[], 3, as_of(), None).unwrap();
        assert_eq!(
            answer(&sim, "inventory-complete").status,
            AnswerStatus::Unanswerable
        );
    }

    #[test]
    fn failed_coverage_and_unfollowed_failures_are_missing() {
        let mut facts = well_kept();
        let s = facts.observed[1].id.clone();
        facts
            .events
            .push(event(&s, EventType::RotationFailed, days_ago(2), None));
        facts.coverage.push(CoverageEntry {
            account: ACCOUNT.into(),
            region: "eu-west-1".into(),
            api: "secretsmanager:list-secrets".into(),
            ok: false,
            error: Some("AccessDenied".into()),
            records: 0,
        });
        facts.observed[0].status = KeyStatus::Active;
        // Without the run's findings, nothing answers the failure.
        let sim = simulate(&facts, &[], 4, as_of(), None).unwrap();
        let failed = answer(&sim, "failed-rotations-followed-up");
        assert_eq!(failed.status, AnswerStatus::Partial);
        assert_eq!(
            failed.missing,
            vec![format!(
                "1 of 1 failed rotations was followed by neither a success nor an open \
                 rotation-failing finding ({s})"
            )]
        );
        let inventory = answer(&sim, "inventory-complete");
        assert_eq!(
            inventory.missing,
            vec![
                "1 source could not be read: secretsmanager:list-secrets in account 111122223333 \
                 region eu-west-1: AccessDenied"
            ]
        );
        // With them, the open rotation-failing finding is the follow-up.
        let findings = crate::rules::evaluate(&facts, as_of());
        let sim = simulate(&facts, &findings, 4, as_of(), None).unwrap();
        assert_eq!(
            answer(&sim, "failed-rotations-followed-up").status,
            AnswerStatus::Complete
        );
    }

    #[test]
    fn markdown_escapes_untrusted_text() {
        assert_eq!(
            escape_markdown("a|b\n# `x` <script>*_[y](z)\\\r"),
            "a\\|b \\# \\`x\\` \\<script\\>\\*\\_\\[y\\](z)\\\\ "
        );
        let sim = Simulation {
            as_of: "2026-11-01T00:00:00Z".into(),
            run_id: 1,
            answers: vec![Answer {
                id: "q".into(),
                question: "?".into(),
                status: AnswerStatus::Partial,
                answer: "x".into(),
                missing: vec![
                    "1 of 2 credentials has no owner (<img src=x onerror=alert(1)>|\n# h)".into(),
                ],
                evidence_file: Some("q.csv".into()),
                controls: vec!["soc2:CC6.1".into()],
            }],
            completeness: 50.0,
        };
        let md = sim.to_markdown();
        let unescaped = md
            .char_indices()
            .filter(|(i, c)| *c == '<' && !md[..*i].ends_with('\\'))
            .count();
        assert_eq!(unescaped, 0, "{md}");
        assert!(
            md.contains("\\<img src=x onerror=alert(1)\\>\\| \\# h)"),
            "{md}"
        );
        assert!(!md.lines().any(|l| l.starts_with("# h")));
    }
}
