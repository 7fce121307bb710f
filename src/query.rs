//! Ad-hoc questions over one run's facts, as an auditor asks them: every rotation event in a
//! period, the audit trail of one credential, and the proof that a credential was rotated within
//! its declared period. Each answer is a [`Table`] that renders as an aligned text table, RFC 4180
//! CSV (neutralised, through [`crate::output::to_csv`]) or a JSON array of objects.
//!
//! Queries only read the facts; they never evaluate rules. A credential may be named by its
//! public id (access key id, secret ARN), its declared id, or a secret's name, exactly as the
//! rules join them ([`EvalCtx::events`]).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{Duration, NaiveDate};

use crate::error::{Error, Result};
use crate::join::{CredentialView, EvalCtx, aliases, fmt_time};
use crate::model::{CredentialKind, EventType, Facts, RotationEvent, Timestamp, UsageBucket};

/// How a [`Table`] is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueryFormat {
    /// Aligned columns for a terminal.
    #[default]
    Table,
    /// RFC 4180 CSV with a header row, every cell neutralised against formula injection.
    Csv,
    /// A JSON array with one object per row, keyed by column name (all values are strings).
    Json,
}

/// The answer to a query: named columns and rows of text cells, in a stable order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these columns.
    pub fn new(columns: &[&'static str]) -> Self {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Writes the table in `format`. Untrusted cells are made safe for the medium: control
    /// characters are escaped in the text table, CSV cells are neutralised, JSON is escaped by
    /// the serializer.
    pub fn render(&self, format: QueryFormat) -> Vec<u8> {
        match format {
            QueryFormat::Table => self.to_text().into_bytes(),
            QueryFormat::Csv => self.to_csv(),
            QueryFormat::Json => self.to_json(),
        }
    }

    /// RFC 4180 CSV: the header, then one line per row.
    pub fn to_csv(&self) -> Vec<u8> {
        let header: Vec<Cow<str>> = self.columns.iter().map(|c| Cow::Borrowed(*c)).collect();
        let rows = self
            .rows
            .iter()
            .map(|row| row.iter().map(|c| Cow::Borrowed(c.as_str())).collect());
        crate::output::to_csv(std::iter::once(header).chain(rows))
    }

    fn to_json(&self) -> Vec<u8> {
        let rows: Vec<serde_json::Map<String, serde_json::Value>> = self
            .rows
            .iter()
            .map(|row| {
                self.columns
                    .iter()
                    .zip(row)
                    .map(|(c, v)| ((*c).to_string(), serde_json::Value::String(v.clone())))
                    .collect()
            })
            .collect();
        let mut out = serde_json::to_vec_pretty(&rows).expect("strings always serialize");
        out.push(b'\n');
        out
    }

    fn to_text(&self) -> String {
        let header: Vec<Cow<str>> = self.columns.iter().map(|c| Cow::Borrowed(*c)).collect();
        let body: Vec<Vec<Cow<str>>> = self
            .rows
            .iter()
            .map(|row| row.iter().map(|c| printable(c)).collect())
            .collect();
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in &body {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[Cow<str>]| {
            let mut out = String::new();
            for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
                if i > 0 {
                    out.push_str("  ");
                }
                out.push_str(cell);
                out.extend(std::iter::repeat_n(
                    ' ',
                    width.saturating_sub(cell.chars().count()),
                ));
            }
            let mut out = out.trim_end().to_string();
            out.push('\n');
            out
        };
        let mut text = line(&header);
        let rule: Vec<Cow<str>> = widths.iter().map(|w| "-".repeat(*w).into()).collect();
        text.push_str(&line(&rule));
        for row in &body {
            text.push_str(&line(row));
        }
        text
    }
}

/// A cell as a terminal may show it: control characters (escape sequences, newlines) and bidi
/// controls escaped ([`crate::term::escape`]).
fn printable(cell: &str) -> Cow<'_, str> {
    crate::term::escape(cell)
}

/// Columns of [`rotations`].
pub const ROTATION_COLUMNS: [&str; 8] = [
    "time",
    "credential",
    "recorded_id",
    "event",
    "trigger",
    "source",
    "fingerprint",
    "details",
];

/// Columns of [`trail`].
pub const TRAIL_COLUMNS: [&str; 12] = [
    "time",
    "record",
    "recorded_id",
    "event",
    "trigger",
    "source",
    "fingerprint",
    "calls",
    "errors",
    "auth_errors",
    "distinct_ips",
    "details",
];

/// Columns of [`proof`].
pub const PROOF_COLUMNS: [&str; 6] = [
    "time",
    "event",
    "sources",
    "gap_days",
    "interval_days",
    "verdict",
];

/// Whether an event is one of a rotation's steps.
pub(crate) fn is_rotation(e: &RotationEvent) -> bool {
    matches!(
        e.event_type,
        EventType::RotationInitiated | EventType::RotationCompleted | EventType::RotationFailed
    )
}

/// Every rotation event (`rotation.initiated`, `rotation.completed`, `rotation.failed`, from
/// history and CloudTrail) in `[since, until]` (`until` defaults to `as_of`), optionally of one
/// credential (matching its public id, declared id, or secret name), oldest first.
///
/// `credential` is the credential's public id where the event maps to a known credential,
/// `recorded_id` the id the record itself carries.
pub fn rotations(
    facts: &Facts,
    as_of: Timestamp,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    credential: Option<&str>,
) -> Table {
    let lookup = Lookup::new(facts, as_of);
    rotations_in(&lookup, since, until.unwrap_or(as_of), credential)
}

/// [`rotations`] over an existing lookup, with an explicit end.
pub(crate) fn rotations_in(
    lookup: &Lookup,
    since: Option<Timestamp>,
    until: Timestamp,
    credential: Option<&str>,
) -> Table {
    let aliases = credential.map(|c| lookup.alias_set(c, &lookup.matching(c)));
    let mut table = Table::new(&ROTATION_COLUMNS);
    let mut events: Vec<&RotationEvent> = lookup
        .ctx
        .facts
        .events
        .iter()
        .filter(|e| is_rotation(e))
        .filter(|e| since.is_none_or(|s| e.time >= s) && e.time <= until)
        .filter(|e| {
            aliases
                .as_ref()
                .is_none_or(|a| a.contains(e.credential_id.as_str()))
        })
        .collect();
    events.sort_by_key(|e| e.time);
    for e in events {
        table
            .rows
            .push(rotation_row(lookup.canonical(&e.credential_id), e));
    }
    table
}

/// One row of [`ROTATION_COLUMNS`].
pub(crate) fn rotation_row(credential: &str, e: &RotationEvent) -> Vec<String> {
    vec![
        fmt_time(e.time),
        credential.to_string(),
        e.credential_id.clone(),
        e.event_type.as_str().to_string(),
        e.trigger
            .map(|t| t.as_str())
            .unwrap_or_default()
            .to_string(),
        e.source.clone(),
        e.fingerprint.clone().unwrap_or_default(),
        e.details.clone().unwrap_or_default(),
    ]
}

/// The audit trail of one credential between two dates (inclusive): every event of any type
/// about it, plus its usage per day from the CloudTrail aggregates (calls, errors,
/// authentication errors, distinct source IPs), oldest first. A day's usage row is dated at the
/// start of the day and counts only the hours within `[from, to]`.
///
/// Fails with [`Error::Usage`] naming the id when no credential, event or usage record matches
/// it, or when `from` is after `to`.
pub fn trail(
    facts: &Facts,
    as_of: Timestamp,
    credential: &str,
    from: Timestamp,
    to: Timestamp,
) -> Result<Table> {
    if from > to {
        return Err(Error::Usage(format!(
            "trail of {credential:?}: the start {} is after the end {}",
            fmt_time(from),
            fmt_time(to)
        )));
    }
    let lookup = Lookup::new(facts, as_of);
    let views = lookup.matching(credential);
    let aliases = lookup.alias_set(credential, &views);
    let known = !views.is_empty()
        || facts
            .events
            .iter()
            .any(|e| aliases.contains(e.credential_id.as_str()))
        || aliases.iter().any(|a| lookup.usage.contains_key(a));
    if !known {
        return Err(unknown(credential));
    }
    let events: Vec<&RotationEvent> = facts
        .events
        .iter()
        .filter(|e| aliases.contains(e.credential_id.as_str()))
        .collect();
    Ok(lookup.trail_table(&events, &aliases, from, to))
}

fn unknown(credential: &str) -> Error {
    Error::Usage(format!(
        "no credential, event or usage record matches {credential:?} (give an access key id, a \
         secret ARN or name, or a declared id)"
    ))
}

/// Proof that a credential was rotated within its declared period: each completed rotation
/// (history, CloudTrail, and the rotation date AWS shows; records within the policy's
/// `audit_match_hours` of each other are one rotation), the credential's creation where AWS
/// shows it, the gap to the previous one, the interval in force, and a verdict per gap
/// (`within`, `late by N days` rounded up, or `unproven: …` where the gap began before the
/// rotation history does, so a rotation in between would not be on record), then a final row
/// for the current age as of `as_of`.
///
/// A credential known only from events (neither observed nor declared any more) is judged at
/// the interval of an unclassified credential (class A). The flag is true when every gap and
/// the current age are within the interval. Fails with
/// [`Error::Usage`] when nothing matches the id, or when it names more than one credential (a
/// secret name used in two accounts or regions).
pub fn proof(facts: &Facts, as_of: Timestamp, credential: &str) -> Result<(Table, bool)> {
    let lookup = Lookup::new(facts, as_of);
    let views = lookup.matching(credential);
    if views.len() > 1 {
        let ids: Vec<&str> = views.iter().map(|v| v.id).collect();
        return Err(Error::Usage(format!(
            "{credential:?} names {} credentials ({}): give one of their ids",
            views.len(),
            ids.join(", ")
        )));
    }
    let aliases = lookup.alias_set(credential, &views);
    let events: Vec<&RotationEvent> = facts
        .events
        .iter()
        .filter(|e| aliases.contains(e.credential_id.as_str()))
        .collect();
    if views.is_empty() && events.is_empty() {
        return Err(unknown(credential));
    }
    let proof = Proof::build(&lookup.ctx, views.first(), &events, history_start(facts));
    let mut table = Table::new(&PROOF_COLUMNS);
    table.rows = proof.rows.iter().map(ProofRow::cells).collect();
    Ok((table, proof.all_within()))
}

/// When the rotation history begins: its earliest record, if any.
pub(crate) fn history_start(facts: &Facts) -> Option<Timestamp> {
    facts
        .events
        .iter()
        .filter(|e| e.source == "history")
        .map(|e| e.time)
        .min()
}

/// The facts joined for queries: the rules' evaluation context, every alias of every credential,
/// and the usage aggregates by credential.
pub(crate) struct Lookup<'a> {
    pub(crate) ctx: EvalCtx<'a>,
    /// Alias (public id, declared id, secret name) → public id of the credential it names.
    canonical: HashMap<&'a str, &'a str>,
    usage: HashMap<&'a str, Vec<&'a UsageBucket>>,
}

impl<'a> Lookup<'a> {
    pub(crate) fn new(facts: &'a Facts, as_of: Timestamp) -> Self {
        let ctx = EvalCtx::new(facts, as_of);
        let mut canonical: HashMap<&str, &str> = HashMap::new();
        // Public ids first, then declared ids, then secret names: an id that is both one
        // credential's public id and another's alias names the first.
        for v in &ctx.credentials {
            canonical.entry(v.id).or_insert(v.id);
        }
        for v in &ctx.credentials {
            if let Some(d) = v.declared {
                canonical.entry(d.id.as_str()).or_insert(v.id);
            }
        }
        for v in &ctx.credentials {
            if let Some(o) = v.observed.filter(|o| o.kind == CredentialKind::Secret) {
                canonical.entry(o.name.as_str()).or_insert(v.id);
            }
        }
        let mut usage: HashMap<&str, Vec<&UsageBucket>> = HashMap::new();
        for bucket in &facts.usage {
            usage
                .entry(bucket.credential_id.as_str())
                .or_default()
                .push(bucket);
        }
        Lookup {
            ctx,
            canonical,
            usage,
        }
    }

    /// The credentials `id` names: by public id, declared id, or (secrets) name.
    pub(crate) fn matching(&self, id: &str) -> Vec<CredentialView<'a>> {
        self.ctx
            .credentials
            .iter()
            .filter(|v| aliases(v).contains(&id))
            .copied()
            .collect()
    }

    /// `id` and every alias of the credentials it names.
    fn alias_set<'b>(&self, id: &'b str, views: &[CredentialView<'b>]) -> BTreeSet<&'b str> {
        let mut set: BTreeSet<&str> = views.iter().flat_map(aliases).collect();
        set.insert(id);
        set
    }

    /// The public id of the credential a recorded id names, or the recorded id itself.
    pub(crate) fn canonical<'b>(&self, recorded: &'b str) -> &'b str
    where
        'a: 'b,
    {
        self.canonical.get(recorded).copied().unwrap_or(recorded)
    }

    /// The trail of `events` (already filtered to one credential) and of the usage of
    /// `aliases`, within `[from, to]`, oldest first, as [`TRAIL_COLUMNS`].
    pub(crate) fn trail_table(
        &self,
        events: &[&RotationEvent],
        aliases: &BTreeSet<&str>,
        from: Timestamp,
        to: Timestamp,
    ) -> Table {
        // (time, order within the same instant, row)
        let mut rows: Vec<(Timestamp, u8, Vec<String>)> = events
            .iter()
            .filter(|e| e.time >= from && e.time <= to)
            .map(|e| {
                (
                    e.time,
                    0,
                    vec![
                        fmt_time(e.time),
                        "event".to_string(),
                        e.credential_id.clone(),
                        e.event_type.as_str().to_string(),
                        e.trigger
                            .map(|t| t.as_str())
                            .unwrap_or_default()
                            .to_string(),
                        e.source.clone(),
                        e.fingerprint.clone().unwrap_or_default(),
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                        e.details.clone().unwrap_or_default(),
                    ],
                )
            })
            .collect();
        for day in self.usage_days(aliases, from, to) {
            let start = day
                .date
                .and_hms_opt(0, 0, 0)
                .expect("midnight exists")
                .and_utc();
            rows.push((
                start,
                1,
                vec![
                    fmt_time(start),
                    "usage-day".to_string(),
                    day.ids.into_iter().collect::<Vec<_>>().join(" "),
                    String::new(),
                    String::new(),
                    "cloudtrail".to_string(),
                    String::new(),
                    day.calls.to_string(),
                    day.errors.to_string(),
                    day.auth_errors.to_string(),
                    day.ips.len().to_string(),
                    String::new(),
                ],
            ));
        }
        rows.sort_by_key(|(time, order, _)| (*time, *order));
        let mut table = Table::new(&TRAIL_COLUMNS);
        table.rows = rows.into_iter().map(|(_, _, row)| row).collect();
        table
    }

    /// Usage of `aliases` per UTC day, counting the hours within `[from, to]`.
    fn usage_days<'b>(
        &'b self,
        aliases: &BTreeSet<&str>,
        from: Timestamp,
        to: Timestamp,
    ) -> Vec<UsageDay<'b>> {
        let mut days: BTreeMap<NaiveDate, UsageDay> = BTreeMap::new();
        for alias in aliases {
            for bucket in self.usage.get(alias).into_iter().flatten() {
                if bucket.hour < from || bucket.hour > to {
                    continue;
                }
                let date = bucket.hour.date_naive();
                let day = days.entry(date).or_insert_with(|| UsageDay {
                    date,
                    ..UsageDay::default()
                });
                day.calls += bucket.calls;
                day.errors += bucket.errors;
                day.auth_errors += bucket.auth_errors;
                day.ips.extend(bucket.source_ips.keys().map(String::as_str));
                day.ids.insert(bucket.credential_id.as_str());
            }
        }
        days.into_values().collect()
    }

    /// Whether `id` is a name of a known credential.
    pub(crate) fn is_known(&self, id: &str) -> bool {
        self.canonical.contains_key(id)
    }

    /// Whether any usage was recorded at all.
    pub(crate) fn has_usage(&self) -> bool {
        !self.usage.is_empty()
    }
}

#[derive(Default)]
struct UsageDay<'a> {
    date: NaiveDate,
    calls: u64,
    errors: u64,
    auth_errors: u64,
    ips: BTreeSet<&'a str>,
    ids: BTreeSet<&'a str>,
}

/// What a row of a proof says about the gap it closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The first record of the chain: `created` or `first on record`.
    Start(&'static str),
    Within,
    /// Late by this many days (rounded up).
    Late(i64),
    /// The gap cannot be judged: why.
    Unproven(String),
    /// No rotation and no creation date is on record.
    NoRotation,
}

impl Verdict {
    fn text(&self) -> String {
        match self {
            Verdict::Start(s) => (*s).to_string(),
            Verdict::Within => "within".to_string(),
            Verdict::Late(1) => "late by 1 day".to_string(),
            Verdict::Late(n) => format!("late by {n} days"),
            Verdict::Unproven(why) => format!("unproven: {why}"),
            Verdict::NoRotation => "no rotation on record".to_string(),
        }
    }
}

/// One row of a proof.
#[derive(Debug, Clone)]
pub(crate) struct ProofRow {
    pub(crate) time: Timestamp,
    /// `rotation`, `created`, `current age`, `lookback start`, or `none`.
    pub(crate) event: &'static str,
    pub(crate) sources: Vec<String>,
    pub(crate) gap: Option<Duration>,
    pub(crate) interval: Duration,
    pub(crate) verdict: Verdict,
}

impl ProofRow {
    pub(crate) fn cells(&self) -> Vec<String> {
        vec![
            fmt_time(self.time),
            self.event.to_string(),
            self.sources.join(" "),
            self.gap.map(fmt_days).unwrap_or_default(),
            self.interval.num_days().to_string(),
            self.verdict.text(),
        ]
    }
}

/// A duration in days with one decimal.
fn fmt_days(d: Duration) -> String {
    format!("{:.1}", d.num_seconds() as f64 / 86_400.0)
}

/// Whole days by which `gap` exceeds `interval`, rounded up (at least 1).
fn late_days(gap: Duration, interval: Duration) -> i64 {
    let excess = (gap - interval).num_seconds();
    ((excess + 86_399) / 86_400).max(1)
}

/// The rotation record of one credential, judged against its interval.
#[derive(Debug, Clone)]
pub(crate) struct Proof {
    /// Rotations (and the creation) oldest first, then the current age.
    pub(crate) rows: Vec<ProofRow>,
    pub(crate) interval: Duration,
}

impl Proof {
    /// Builds the proof of a credential from its events (already filtered to it; any type) and
    /// what AWS shows of it. `history_start` is when rotation history begins, if it exists.
    pub(crate) fn build(
        ctx: &EvalCtx,
        view: Option<&CredentialView>,
        events: &[&RotationEvent],
        history_start: Option<Timestamp>,
    ) -> Proof {
        let as_of = ctx.as_of;
        let interval = match view {
            Some(v) => ctx.interval(v),
            None => Duration::days(i64::from(ctx.policy.class_interval(None))),
        };
        let window = ctx.hours(
            crate::rules::RuleOptions::of(ctx.policy)
                .audit_trail_gap
                .match_hours,
        );
        let anchors = rotation_anchors(view, events, as_of);
        let observed = view.and_then(|v| v.observed);
        let clusters = clusters(anchors, window);

        let covered_from = |t: Timestamp| history_start.is_some_and(|h| t >= h);
        let why_unproven = || match history_start {
            Some(h) => format!(
                "the gap began before the rotation history starts ({})",
                h.date_naive()
            ),
            None => "no rotation history to show rotations in between".to_string(),
        };
        let mut rows = Vec::with_capacity(clusters.len() + 1);
        for (i, c) in clusters.iter().enumerate() {
            let event = if c.completed { "rotation" } else { "created" };
            let (gap, verdict) = match i.checked_sub(1).map(|p| &clusters[p]) {
                None => (
                    None,
                    Verdict::Start(if c.created {
                        "created"
                    } else {
                        "first on record"
                    }),
                ),
                Some(prev) => {
                    let gap = c.time - prev.time;
                    let verdict = if gap <= interval {
                        Verdict::Within
                    } else if covered_from(prev.time) {
                        Verdict::Late(late_days(gap, interval))
                    } else {
                        Verdict::Unproven(why_unproven())
                    };
                    (Some(gap), verdict)
                }
            };
            rows.push(ProofRow {
                time: c.time,
                event,
                sources: c.sources.iter().cloned().collect(),
                gap,
                interval,
                verdict,
            });
        }
        match clusters.last() {
            None => rows.push(ProofRow {
                time: as_of,
                event: "current age",
                sources: Vec::new(),
                gap: None,
                interval,
                verdict: Verdict::NoRotation,
            }),
            Some(last) => {
                let age = as_of - last.time;
                // AWS shows the latest rotation of what it holds, and history records any
                // rotation after it starts: either makes a long current age certain.
                let verdict = if age <= interval {
                    Verdict::Within
                } else if observed.is_some() || covered_from(last.time) {
                    Verdict::Late(late_days(age, interval))
                } else {
                    Verdict::Unproven(why_unproven())
                };
                rows.push(ProofRow {
                    time: as_of,
                    event: "current age",
                    sources: Vec::new(),
                    gap: Some(age),
                    interval,
                    verdict,
                });
            }
        }
        Proof { rows, interval }
    }

    /// Every gap and the current age are within the interval.
    pub(crate) fn all_within(&self) -> bool {
        self.rows
            .iter()
            .all(|r| matches!(r.verdict, Verdict::Within | Verdict::Start(_)))
    }
}

/// What shows a rotation (or the creation) of a credential up to `as_of`, oldest first:
/// (time, source, is the creation).
fn rotation_anchors(
    view: Option<&CredentialView>,
    events: &[&RotationEvent],
    as_of: Timestamp,
) -> Vec<(Timestamp, String, bool)> {
    let mut anchors: Vec<(Timestamp, String, bool)> = events
        .iter()
        .filter(|e| e.event_type == EventType::RotationCompleted && e.time <= as_of)
        .map(|e| (e.time, e.source.clone(), false))
        .collect();
    if let Some(o) = view.and_then(|v| v.observed) {
        if let Some(t) = o.last_rotated_at.filter(|t| *t <= as_of) {
            anchors.push((t, "aws:last-rotated".to_string(), false));
        }
        if let Some(t) = o.created_at.filter(|t| *t <= as_of) {
            anchors.push((t, "aws:created".to_string(), true));
        }
    }
    anchors.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    anchors
}

/// One rotation (or the creation) and the records that show it.
struct Cluster {
    time: Timestamp,
    sources: BTreeSet<String>,
    created: bool,
    completed: bool,
}

/// The anchors grouped into rotations: records within `window` of a rotation's first record
/// are that rotation.
fn clusters(anchors: Vec<(Timestamp, String, bool)>, window: Duration) -> Vec<Cluster> {
    let mut clusters: Vec<Cluster> = Vec::new();
    for (time, source, created) in anchors {
        match clusters.last_mut() {
            Some(c) if time - c.time <= window => {
                c.sources.insert(source);
                c.created |= created;
                c.completed |= !created;
            }
            _ => clusters.push(Cluster {
                time,
                sources: BTreeSet::from([source]),
                created,
                completed: !created,
            }),
        }
    }
    clusters
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{KeyStatus, UsageBucket};
    use crate::rules::testkit::*;

    fn rotation(id: &str, t: EventType, days: i64) -> RotationEvent {
        event(id, t, days_ago(days), None)
    }

    fn column<'t>(table: &'t Table, name: &str) -> Vec<&'t str> {
        let i = table.columns.iter().position(|c| *c == name).unwrap();
        table.rows.iter().map(|r| r[i].as_str()).collect()
    }

    fn sample() -> Facts {
        let key_a = key("AKIAQUERY00000000001", "svc-a", 40);
        let db = secret("prod/db", 5);
        let declared = declare_all(&[key_a.clone(), db.clone()]);
        let events = vec![
            rotation(&key_a.id, EventType::RotationInitiated, 40),
            rotation(&key_a.id, EventType::RotationCompleted, 40),
            // Named by the secret's name, not its ARN.
            rotation("prod/db", EventType::RotationFailed, 20),
            rotation("prod/db", EventType::RotationCompleted, 19),
            rotation(&db.id, EventType::AnomalyDetected, 10),
            rotation(&db.id, EventType::RotationCompleted, 5),
            rotation("AKIADELETED000000001", EventType::RotationCompleted, 30),
        ];
        facts(vec![key_a, db], declared, events)
    }

    #[test]
    fn rotations_filtered_by_dates_and_credential() {
        let facts = sample();
        let all = rotations(&facts, as_of(), None, None, None);
        assert_eq!(
            all.rows.len(),
            6,
            "anomaly.detected is not a rotation event"
        );
        let times = column(&all, "time");
        let mut sorted = times.clone();
        sorted.sort();
        assert_eq!(times, sorted, "oldest first");

        let recent = rotations(
            &facts,
            as_of(),
            Some(days_ago(25)),
            Some(days_ago(10)),
            None,
        );
        assert_eq!(
            column(&recent, "event"),
            vec!["rotation.failed", "rotation.completed"]
        );
        // Events recorded under the name map to the secret's ARN.
        let arn = &facts.observed[1].id;
        assert_eq!(column(&recent, "credential"), vec![arn, arn]);
        assert_eq!(column(&recent, "recorded_id"), vec!["prod/db", "prod/db"]);

        for name in ["prod/db", arn.as_str()] {
            let of_db = rotations(&facts, as_of(), None, None, Some(name));
            assert_eq!(column(&of_db, "time").len(), 3, "{name}");
        }
        let deleted = rotations(&facts, as_of(), None, None, Some("AKIADELETED000000001"));
        assert_eq!(column(&deleted, "credential"), vec!["AKIADELETED000000001"]);
        assert!(
            rotations(&facts, as_of(), None, None, Some("nothing"))
                .rows
                .is_empty()
        );
    }

    #[test]
    fn trail_has_events_and_usage_per_day() {
        let mut facts = sample();
        let arn = facts.observed[1].id.clone();
        let bucket = |id: &str, hours_before: i64, calls: u64, ips: &[&str]| UsageBucket {
            credential_id: id.into(),
            hour: days_ago(10) + Duration::hours(hours_before),
            calls,
            errors: 1,
            auth_errors: 0,
            source_ips: ips.iter().map(|ip| (ip.to_string(), 1)).collect(),
            ..UsageBucket::default()
        };
        facts.usage = vec![
            bucket(&arn, 1, 10, &["10.0.0.1"]),
            bucket(&arn, 2, 5, &["10.0.0.1", "10.0.0.2"]),
            bucket("prod/db", 3, 1, &["10.0.0.3"]),
            bucket(&arn, 30, 7, &["10.0.0.9"]),
        ];
        let table = trail(&facts, as_of(), "prod/db", days_ago(12), days_ago(3)).unwrap();
        assert_eq!(table.columns, TRAIL_COLUMNS);
        // The anomaly and the first usage day share an instant: the event comes first.
        assert_eq!(
            column(&table, "record"),
            vec!["event", "usage-day", "usage-day", "event"]
        );
        assert_eq!(column(&table, "calls"), vec!["", "16", "7", ""]);
        assert_eq!(column(&table, "errors"), vec!["", "3", "1", ""]);
        assert_eq!(column(&table, "distinct_ips"), vec!["", "3", "1", ""]);
        assert_eq!(
            column(&table, "event"),
            vec!["anomaly.detected", "", "", "rotation.completed"]
        );
        assert_eq!(
            column(&table, "recorded_id")[1],
            format!("{arn} prod/db"),
            "a day merges the usage recorded under every alias"
        );
    }

    #[test]
    fn trail_of_an_unknown_credential_names_it() {
        let err = trail(
            &sample(),
            as_of(),
            "AKIAUNKNOWN\u{1b}[2J",
            days_ago(30),
            as_of(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Usage(_)));
        let message = err.to_string();
        assert!(message.contains("\"AKIAUNKNOWN\\u{1b}[2J\""), "{message}");
        let err = proof(&sample(), as_of(), "nope").unwrap_err().to_string();
        assert!(err.contains("\"nope\""), "{err}");
    }

    #[test]
    fn proof_within_and_late() {
        // A secret rotated every 13 days by history, then late by 3 days, now 2 days old.
        let mut db = secret("prod/db", 2);
        db.created_at = Some(days_ago(60));
        let mut events: Vec<RotationEvent> = [60, 47, 34, 21, 2]
            .iter()
            .map(|d| rotation(&db.id, EventType::RotationCompleted, *d))
            .collect();
        events.push(rotation(&db.id, EventType::RotationFailed, 7));
        let facts = facts(vec![db.clone()], declare_all(&[db.clone()]), events);
        let (table, within) = proof(&facts, as_of(), "prod/db").unwrap();
        assert_eq!(table.columns, PROOF_COLUMNS);
        assert!(!within);
        assert_eq!(
            column(&table, "verdict"),
            vec![
                "created",
                "within",
                "within",
                "within",
                "late by 5 days",
                "within"
            ]
        );
        assert_eq!(
            column(&table, "gap_days"),
            vec!["", "13.0", "13.0", "13.0", "19.0", "2.0"]
        );
        assert_eq!(column(&table, "interval_days")[0], "14");
        assert_eq!(
            column(&table, "sources")[4],
            "aws:last-rotated history",
            "the AWS date and the history record are one rotation"
        );
        assert_eq!(column(&table, "event")[5], "current age");

        // A key created 10 days ago and rotated by the pipeline: within.
        let k = key("AKIAPROOF00000000001", "svc", 10);
        let facts2 = facts_with_key(&k, vec![rotation(&k.id, EventType::RotationCompleted, 10)]);
        let (table, within) = proof(&facts2, as_of(), &k.id).unwrap();
        assert!(within, "{table:?}");
        assert_eq!(table.rows.len(), 2);
        assert_eq!(
            column(&table, "sources")[0],
            "aws:created aws:last-rotated history"
        );

        // The same key 20 days old: its current age is late by 6 days, whatever the history.
        let old = key("AKIAPROOF00000000002", "svc", 20);
        let (table, within) = proof(&facts_with_key(&old, vec![]), as_of(), &old.id).unwrap();
        assert!(!within);
        assert_eq!(column(&table, "verdict"), vec!["created", "late by 6 days"]);
    }

    fn facts_with_key(k: &crate::model::ObservedCredential, events: Vec<RotationEvent>) -> Facts {
        facts(
            vec![k.clone()],
            declare_all(std::slice::from_ref(k)),
            events,
        )
    }

    #[test]
    fn proof_says_unproven_where_history_does_not_reach() {
        // History starts 30 days ago; the secret was created 100 days ago and last rotated by
        // AWS 5 days ago: the 95-day gap may hide rotations that were never recorded.
        let mut db = secret("prod/db", 5);
        db.created_at = Some(days_ago(100));
        let first = rotation("other", EventType::PolicyUpdated, 30);
        let facts = facts(vec![db.clone()], declare_all(&[db]), vec![first]);
        let (table, within) = proof(&facts, as_of(), "prod/db").unwrap();
        assert!(!within);
        let verdicts = column(&table, "verdict");
        assert_eq!(verdicts.len(), 3);
        assert!(
            verdicts[1].starts_with("unproven: the gap began before the rotation history starts"),
            "{verdicts:?}"
        );
        assert_eq!(verdicts[2], "within");
    }

    #[test]
    fn proof_of_a_credential_with_no_record() {
        let mut declared = declare("openai-prod", CredentialKind::LlmApiKey);
        declared.interval_days = Some(30);
        let facts = facts(vec![], vec![declared], vec![]);
        let (table, within) = proof(&facts, as_of(), "openai-prod").unwrap();
        assert!(!within);
        assert_eq!(column(&table, "verdict"), vec!["no rotation on record"]);
        assert_eq!(column(&table, "interval_days"), vec!["30"]);
    }

    #[test]
    fn proof_refuses_an_ambiguous_name() {
        let a = secret("prod/db", 3);
        let mut b = secret("prod/db", 3);
        b.id = b.id.replace("us-east-1", "eu-west-1");
        b.region = "eu-west-1".into();
        let facts = facts(vec![a, b], vec![], vec![]);
        let err = proof(&facts, as_of(), "prod/db").unwrap_err().to_string();
        assert!(err.contains("names 2 credentials"), "{err}");
    }

    #[test]
    fn outputs_are_neutralised_escaped_and_aligned() {
        let mut facts = sample();
        facts.events.push(RotationEvent {
            details: Some("=HYPERLINK(\"http://evil\")\u{1b}[31m".into()),
            ..rotation("@SUM(A1)", EventType::RotationFailed, 1)
        });
        let table = rotations(&facts, as_of(), Some(days_ago(2)), None, None);
        let csv = String::from_utf8(table.render(QueryFormat::Csv)).unwrap();
        assert!(
            csv.starts_with(
                "time,credential,recorded_id,event,trigger,source,fingerprint,details\r\n"
            ),
            "{csv}"
        );
        assert!(
            csv.contains(",'@SUM(A1),'@SUM(A1),rotation.failed,"),
            "{csv}"
        );
        assert!(csv.contains("\"'=HYPERLINK(\"\"http://evil\"\")"), "{csv}");

        let text = String::from_utf8(table.render(QueryFormat::Table)).unwrap();
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(text.contains("\\u{1b}[31m"), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("----"));
        assert_eq!(lines[0].find("credential"), lines[2].find("@SUM(A1)"));

        let json: serde_json::Value =
            serde_json::from_slice(&table.render(QueryFormat::Json)).unwrap();
        assert_eq!(json[0]["credential"], "@SUM(A1)");
        assert_eq!(json[0]["event"], "rotation.failed");
    }

    #[test]
    fn inactive_keys_still_have_a_trail() {
        let mut k = key("AKIAINACTIVE00000001", "svc", 90);
        k.status = KeyStatus::Inactive;
        let facts = facts_with_key(&k, vec![rotation(&k.id, EventType::PolicyUpdated, 3)]);
        let table = trail(&facts, as_of(), &k.id, days_ago(10), as_of()).unwrap();
        assert_eq!(column(&table, "event"), vec!["policy.updated"]);
    }
}
