//! `index.html` of the evidence bundle: one self-contained page (inline CSS, one inline vanilla
//! script, server-rendered SVG charts, no network access of any kind) rendered with minijinja
//! from the [`ReportView`]; the templates are embedded in the binary.
//!
//! Two paths carry untrusted text (user and secret names, tag values, messages, evidence):
//! - server-rendered parts go through minijinja's HTML auto-escaping;
//! - the large tables (findings, remediation plan, inventory, rotation history) travel as compact
//!   columnar JSON, deflated (zlib) and base64-encoded in `<script type="application/octet-stream">`
//!   blocks (base64 holds no character that could end the element); the script inflates them with
//!   the browser's `DecompressionStream`, pages through them 100 rows at a time and inserts text
//!   with `textContent` only.
//!
//! The page is streamed to its file: the template (everything but the data) is rendered, and the
//! data blocks are serialised, deflated and encoded straight into the file where the template
//! has its data marker.
//!
//! A Content-Security-Policy allows nothing but the inline styles, images from `data:` URLs, and
//! the one inline script, by its SHA-256.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use base64::Engine as _;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::FindingView;
use super::view::{DiffView, InventoryRow, ReportView};
use crate::error::{Error, Result};
use crate::model::CoverageEntry;
use crate::plan::Score;

const INDEX_TEMPLATE: &str = include_str!("../../report-templates/index.html");
const MACROS_TEMPLATE: &str = include_str!("../../report-templates/macros.html");
/// The page's only script; the CSP names it by hash, so it is inserted verbatim.
const SCRIPT: &str = include_str!("../../report-templates/report.js");
const STYLE: &str = include_str!("../../report-templates/report.css");

/// Severities worst first; the JSON carries a finding's severity as an index into this list.
const SEVERITIES: [&str; 5] = ["critical", "high", "medium", "low", "info"];

/// Where the data blocks go in the rendered template (a comment no escaped string can forge:
/// every `<` from the view is escaped).
const DATA_MARKER: &str = "<!--credaudit:data-->";

/// Renders `index.html` for `view` into memory (tests; the bundle streams it with
/// [`write_html`]).
#[cfg(test)]
pub fn render_html(view: &ReportView) -> Result<String> {
    let mut bytes = Vec::new();
    write_html(view, &mut bytes).map_err(|e| Error::io(std::path::Path::new("index.html"), e))?;
    Ok(String::from_utf8(bytes).expect("the page is UTF-8"))
}

/// Writes `index.html` for `view` into `out`: the rendered template, with the data blocks
/// streamed in at its data marker.
pub fn write_html(view: &ReportView, out: &mut impl Write) -> std::io::Result<()> {
    let page = render_template(view).map_err(|e| std::io::Error::other(e.to_string()))?;
    let (head, tail) = page
        .split_once(DATA_MARKER)
        .ok_or_else(|| std::io::Error::other("the report template has no data marker"))?;
    out.write_all(head.as_bytes())?;
    write_data_blocks(view, out)?;
    out.write_all(tail.as_bytes())
}

/// The page without its data blocks (their place is marked with [`DATA_MARKER`]).
fn render_template(view: &ReportView) -> Result<String> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Every template of this page is HTML, whatever its name.
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.add_template("index.html", INDEX_TEMPLATE)
        .map_err(template_error)?;
    env.add_template("macros.html", MACROS_TEMPLATE)
        .map_err(template_error)?;
    let page = Page::new(view)?;
    let template = env.get_template("index.html").map_err(template_error)?;
    template
        .render(Value::from_serialize(&page))
        .map_err(template_error)
}

/// The `script-src` source of the inline script: `'sha256-<base64>'`.
pub fn script_hash_source() -> String {
    let digest = Sha256::digest(SCRIPT.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The Content-Security-Policy of the page.
fn content_security_policy() -> String {
    format!(
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src {}; \
         base-uri 'none'; form-action 'none'",
        script_hash_source()
    )
}

/// A broken embedded template is a bug, not bad input; it still surfaces as an error naming the
/// file rather than a panic.
fn template_error(e: minijinja::Error) -> Error {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    Error::io(
        std::path::Path::new("index.html"),
        std::io::Error::other(format!("rendering the report template failed: {message}")),
    )
}

/// Writes `value` as one data block: `<script type="application/octet-stream" id=…>` holding
/// its JSON, deflated (zlib format, which `DecompressionStream("deflate")` reads) and base64
/// encoded, streamed through both encoders. Base64 has no `<`, `>`, `&` or quote, so no string
/// of the data can end the element or be read as markup.
fn write_block<T: Serialize>(out: &mut impl Write, id: &str, value: &T) -> std::io::Result<()> {
    write!(
        out,
        "<script type=\"application/octet-stream\" id=\"{id}\">"
    )?;
    let base64 =
        base64::write::EncoderWriter::new(&mut *out, &base64::engine::general_purpose::STANDARD);
    let deflate = flate2::write::ZlibEncoder::new(base64, BLOCK_COMPRESSION);
    // The encoder gets large writes: each write to it prepares a whole output buffer, so the
    // serialiser's many small writes go through a buffer first.
    let mut json = std::io::BufWriter::with_capacity(1 << 16, deflate);
    serde_json::to_writer(&mut json, value)?;
    json.into_inner()
        .map_err(|e| e.into_error())?
        .finish()?
        .finish()?;
    out.write_all(b"</script>\n")
}

/// Deflate level of the data blocks: fast; the JSON is repetitive (indexes, small numbers), so
/// a higher level gains little for much more time.
const BLOCK_COMPRESSION: flate2::Compression = flate2::Compression::new(3);

/// One table of unique strings shared by every data block; rows refer to strings by index. The
/// most used strings come first (ties in order of first use), so the common values (rule, kind,
/// region, owner, account) get the shortest indexes; the script sorts the table once when a
/// column is first sorted.
#[derive(Default)]
struct Interner<'a> {
    ids: HashMap<&'a str, u32>,
    strings: Vec<&'a str>,
    uses: Vec<u32>,
}

impl<'a> Interner<'a> {
    fn id(&mut self, s: &'a str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            self.uses[id as usize] += 1;
            return id;
        }
        let id = u32::try_from(self.strings.len()).unwrap_or(u32::MAX);
        self.strings.push(s);
        self.uses.push(1);
        self.ids.insert(s, id);
        id
    }

    /// The final table, and for each provisional id its final one.
    fn finish(self) -> (Vec<&'a str>, Vec<u32>) {
        // Most used first, ties in order of first use: one integer key per string, so sorting
        // millions of strings never compares their text.
        let mut order: Vec<u64> = self
            .uses
            .iter()
            .enumerate()
            .map(|(id, uses)| (u64::from(u32::MAX - uses) << 32) | id as u64)
            .collect();
        order.sort_unstable();
        let order: Vec<u32> = order.into_iter().map(|key| key as u32).collect();
        let mut remap = vec![0u32; order.len()];
        for (new, old) in order.iter().enumerate() {
            remap[*old as usize] = new as u32;
        }
        let table = order.iter().map(|i| self.strings[*i as usize]).collect();
        (table, remap)
    }
}

/// One column of a JSON block.
#[derive(Serialize)]
#[serde(untagged)]
enum Column<'a> {
    /// The text itself, for columns whose values are nearly all different (times, fingerprints
    /// of events): a table entry would cost more than it saves.
    Text(Vec<&'a str>),
    /// Indexes into the string table.
    Strings(Vec<u32>),
    /// Lists of indexes into the string table (evidence pairs, rule lists).
    StringLists(Vec<Vec<u32>>),
    /// Small integers (severity ranks, counts, booleans as 0/1).
    Ints(Vec<i64>),
    /// Optional decimals (ages in days).
    Decimals(Vec<Option<f64>>),
}

impl Column<'_> {
    fn remap(&mut self, remap: &[u32]) {
        match self {
            Column::Strings(ids) => ids.iter_mut().for_each(|id| *id = remap[*id as usize]),
            Column::StringLists(lists) => lists
                .iter_mut()
                .flatten()
                .for_each(|id| *id = remap[*id as usize]),
            Column::Text(_) | Column::Ints(_) | Column::Decimals(_) => {}
        }
    }
}

/// A table in columnar form: `{"n": rows, "<column>": [...], ...}`.
#[derive(Serialize)]
struct Block<'a> {
    n: usize,
    #[serde(flatten)]
    columns: BTreeMap<&'static str, Column<'a>>,
}

impl<'a> Block<'a> {
    fn new(n: usize) -> Self {
        Block {
            n,
            columns: BTreeMap::new(),
        }
    }

    fn strings<T: 'a>(
        &mut self,
        name: &'static str,
        rows: impl IntoIterator<Item = &'a T>,
        table: &mut Interner<'a>,
        get: impl Fn(&'a T) -> &'a str,
    ) {
        let ids = rows.into_iter().map(|r| table.id(get(r))).collect();
        self.columns.insert(name, Column::Strings(ids));
    }

    /// A column of text kept in the rows (see [`Column::Text`]).
    fn text<T: 'a>(
        &mut self,
        name: &'static str,
        rows: impl IntoIterator<Item = &'a T>,
        get: impl Fn(&'a T) -> &'a str,
    ) {
        self.columns
            .insert(name, Column::Text(rows.into_iter().map(get).collect()));
    }

    fn ints<T: 'a>(
        &mut self,
        name: &'static str,
        rows: impl IntoIterator<Item = &'a T>,
        get: impl Fn(&'a T) -> i64,
    ) {
        self.columns
            .insert(name, Column::Ints(rows.into_iter().map(get).collect()));
    }

    fn remap(&mut self, remap: &[u32]) {
        self.columns.values_mut().for_each(|c| c.remap(remap));
    }
}

fn severity_rank(severity: &str) -> i64 {
    SEVERITIES
        .iter()
        .position(|s| *s == severity)
        .unwrap_or(SEVERITIES.len() - 1) as i64
}

/// Writes the data blocks of the page (see [`data_blocks`]).
fn write_data_blocks(view: &ReportView, out: &mut impl Write) -> std::io::Result<()> {
    // Controls, for the drill-down from the control matrix to the findings table.
    let controls = control_rows(view);
    let (strings, blocks) = data_blocks(view, &controls);
    write_block(out, "data-strings", &strings)?;
    for (id, block) in &blocks {
        write_block(out, id, block)?;
    }
    Ok(())
}

/// The string table and the columnar blocks of the page, by element id.
fn data_blocks<'a>(
    view: &'a ReportView,
    controls: &'a [(String, &'a str, &'a super::view::ControlView)],
) -> (Vec<&'a str>, [(&'static str, Block<'a>); 5]) {
    let mut table = Interner::default();
    let mut f = findings_block(view, &mut table);
    let mut a = actions_block(view, &mut table);
    let mut i = inventory_block(view, &mut table);
    let mut e = events_block(view, &mut table);
    let mut c = controls_block(controls, &mut table);

    let (strings, remap) = table.finish();
    for block in [&mut f, &mut a, &mut i, &mut e, &mut c] {
        block.remap(&remap);
    }
    (
        strings,
        [
            ("data-findings", f),
            ("data-actions", a),
            ("data-inventory", i),
            ("data-events", e),
            ("data-controls", c),
        ],
    )
}

/// The findings table.
fn findings_block<'a>(view: &'a ReportView, table: &mut Interner<'a>) -> Block<'a> {
    let findings = &view.findings;
    let mut f = Block::new(findings.len());
    f.ints("severity", findings, |x| severity_rank(x.severity.as_str()));
    f.strings("rule", findings, table, |x| &x.rule);
    f.strings("credential", findings, table, |x| &x.credential);
    f.strings("principal", findings, table, |x| &x.principal);
    f.strings("kind", findings, table, |x| &x.kind);
    f.strings("account", findings, table, |x| &x.account);
    f.strings("region", findings, table, |x| &x.region);
    f.strings("owner", findings, table, |x| &x.owner);
    f.strings("message", findings, table, |x| &x.message);
    f.strings("fingerprint", findings, table, |x| &x.fingerprint);
    let evidence = findings
        .iter()
        .map(|x| {
            x.evidence
                .iter()
                .flat_map(|e| [table.id(&e.key), table.id(&e.value)])
                .collect()
        })
        .collect();
    f.columns.insert("evidence", Column::StringLists(evidence));
    // [ticket, approver, reason, expires] of the waiver that accepts the finding, or [].
    let waivers = findings
        .iter()
        .map(|x| {
            x.waiver
                .iter()
                .flat_map(|w| [&w.ticket, &w.approver, &w.reason, &w.expires])
                .map(|s| table.id(s))
                .collect()
        })
        .collect();
    f.columns.insert("waiver", Column::StringLists(waivers));
    f
}

/// The remediation plan's actions.
fn actions_block<'a>(view: &'a ReportView, table: &mut Interner<'a>) -> Block<'a> {
    let actions = &view.plan.actions;
    let mut a = Block::new(actions.len());
    a.ints("priority", actions, |x| i64::from(x.priority));
    a.ints("severity", actions, |x| severity_rank(x.severity.as_str()));
    a.strings("action", actions, table, |x| x.action.as_str());
    a.strings("credential", actions, table, |x| &x.credential);
    a.strings("kind", actions, table, |x| &x.kind);
    a.strings("account", actions, table, |x| &x.account);
    a.strings("region", actions, table, |x| &x.region);
    a.strings("owner", actions, table, |x| &x.owner);
    a.strings("due", actions, table, |x| &x.due);
    a.strings("description", actions, table, |x| &x.description);
    a.strings("command", actions, table, |x| {
        x.command.as_deref().unwrap_or("")
    });
    let rules = actions
        .iter()
        .map(|x| x.rules.iter().map(|r| table.id(r)).collect())
        .collect();
    a.columns.insert("rules", Column::StringLists(rules));
    let controls = actions
        .iter()
        .map(|x| x.controls.iter().map(|c| table.id(c)).collect())
        .collect();
    a.columns.insert("controls", Column::StringLists(controls));
    a
}

/// The inventory table.
fn inventory_block<'a>(view: &'a ReportView, table: &mut Interner<'a>) -> Block<'a> {
    let inventory = &view.inventory;
    let mut i = Block::new(inventory.len());
    i.strings("credential", inventory, table, |x| &x.credential);
    i.strings("kind", inventory, table, |x| &x.kind);
    i.strings("reconciliation", inventory, table, |x| &x.reconciliation);
    i.ints("declared", inventory, |x| i64::from(x.declared));
    i.ints("observed", inventory, |x| i64::from(x.observed));
    i.strings("class", inventory, table, |x| &x.class);
    i.strings("owner", inventory, table, |x| &x.owner);
    i.strings("owner_status", inventory, table, |x| &x.owner_status);
    i.strings("account", inventory, table, |x| &x.account);
    i.strings("region", inventory, table, |x| &x.region);
    i.strings("principal", inventory, table, |x| &x.principal);
    i.strings("status", inventory, table, |x| &x.status);
    i.ints("automated", inventory, |x| i64::from(x.automated));
    i.strings("consumers", inventory, table, |x| &x.consumers);
    i.strings("last_rotation", inventory, table, |x| &x.last_rotation);
    i.strings("last_used", inventory, table, |x| &x.last_used);
    i.columns.insert(
        "age_days",
        Column::Decimals(inventory.iter().map(|x| x.age_days).collect()),
    );
    i.ints("interval_days", inventory, |x| x.interval_days);
    i.ints("findings", inventory, |x| x.findings as i64);
    i
}

/// The rotation events.
fn events_block<'a>(view: &'a ReportView, table: &mut Interner<'a>) -> Block<'a> {
    let events = &view.events;
    let mut e = Block::new(events.len());
    e.text("time", events, |x| &x.time);
    e.strings("credential", events, table, |x| x.credential());
    e.strings("event_type", events, table, |x| x.event_type());
    e.strings("trigger", events, table, |x| x.trigger());
    e.text("fingerprint", events, |x| x.fingerprint());
    e.text("details", events, |x| x.details());
    e.strings("source", events, table, |x| x.source());
    e
}

/// Each control of each framework with its `framework:control` key and framework name.
fn control_rows<'a>(
    view: &'a ReportView<'_>,
) -> Vec<(String, &'a str, &'a super::view::ControlView)> {
    view.frameworks
        .iter()
        .flat_map(|fw| {
            fw.controls
                .iter()
                .map(move |c| (format!("{}:{}", fw.id, c.id), fw.name.as_str(), c))
        })
        .collect()
}

/// The controls, from [`control_rows`].
fn controls_block<'a>(
    controls: &'a [(String, &'a str, &'a super::view::ControlView)],
    table: &mut Interner<'a>,
) -> Block<'a> {
    let mut c = Block::new(controls.len());
    c.strings("key", controls, table, |x| &x.0);
    c.strings("framework", controls, table, |x| x.1);
    c.strings("control", controls, table, |x| &x.2.id);
    c.strings("title", controls, table, |x| &x.2.title);
    c.strings("status", controls, table, |x| &x.2.status);
    c.strings("status_reason", controls, table, |x| &x.2.status_reason);
    let rules = controls
        .iter()
        .map(|x| x.2.rules.iter().map(|r| table.id(r)).collect())
        .collect();
    c.columns.insert("rules", Column::StringLists(rules));
    let failing = controls
        .iter()
        .map(|x| {
            x.2.failing_credentials
                .iter()
                .map(|r| table.id(r))
                .collect()
        })
        .collect();
    c.columns.insert("failing", Column::StringLists(failing));
    c
}

/// One horizontal bar.
#[derive(Serialize)]
struct Bar {
    label: String,
    value: usize,
    y: f64,
    width: f64,
    class: String,
}

/// A horizontal bar chart, laid out in a `width` x `height` view box.
#[derive(Serialize)]
struct BarChart {
    width: u32,
    height: u32,
    label_width: u32,
    bars: Vec<Bar>,
}

const CHART_WIDTH: u32 = 600;
const BAR_PITCH: f64 = 24.0;

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

impl BarChart {
    fn new(label_width: u32, rows: Vec<(String, usize, String)>) -> Self {
        let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
        // Room for the value printed after the longest bar.
        let plot = f64::from(CHART_WIDTH - label_width - 60);
        let bars = rows
            .into_iter()
            .enumerate()
            .map(|(i, (label, value, class))| Bar {
                label,
                value,
                y: round1(8.0 + i as f64 * BAR_PITCH),
                width: round1(plot * value as f64 / max as f64),
                class,
            })
            .collect::<Vec<_>>();
        BarChart {
            width: CHART_WIDTH,
            height: (16.0 + bars.len() as f64 * BAR_PITCH) as u32,
            label_width,
            bars,
        }
    }
}

/// One segment of a stacked bar.
#[derive(Serialize)]
struct Segment {
    x: f64,
    width: f64,
    class: &'static str,
    label: &'static str,
    count: usize,
}

/// One stacked bar: a credential class, split by age relative to the policy interval.
#[derive(Serialize)]
struct StackRow {
    label: String,
    total: usize,
    y: f64,
    segments: Vec<Segment>,
}

/// Credential age vs policy interval, one 100 % bar per class.
#[derive(Serialize)]
struct AgeChart {
    width: u32,
    height: u32,
    label_width: u32,
    rows: Vec<StackRow>,
    legend: Vec<(&'static str, &'static str)>,
}

/// Age buckets, as a share of the class interval.
const AGE_BUCKETS: [(&str, &str); 5] = [
    ("fresh", "under 50 % of interval"),
    ("within", "50-100 % (in policy)"),
    ("overdue", "100-150 % (overdue)"),
    ("breach", "over 150 % (policy breach)"),
    ("unknown", "age unknown"),
];

fn age_bucket(row: &InventoryRow) -> usize {
    match row.age_days {
        None => 4,
        Some(_) if row.interval_days <= 0 => 4,
        Some(age) => {
            let ratio = age / row.interval_days as f64;
            if ratio < 0.5 {
                0
            } else if ratio <= 1.0 {
                1
            } else if ratio <= 1.5 {
                2
            } else {
                3
            }
        }
    }
}

impl AgeChart {
    fn new(inventory: &[InventoryRow]) -> Self {
        let mut by_class: BTreeMap<String, [usize; 5]> = BTreeMap::new();
        for row in inventory {
            let class = if row.class.is_empty() {
                "unclassified".to_string()
            } else {
                format!("class {}", row.class)
            };
            by_class.entry(class).or_default()[age_bucket(row)] += 1;
        }
        let label_width = 110;
        let plot = f64::from(CHART_WIDTH - label_width - 70);
        let rows = by_class
            .into_iter()
            .enumerate()
            .map(|(i, (label, counts))| {
                let total: usize = counts.iter().sum();
                let mut x = 0.0;
                let segments = counts
                    .iter()
                    .zip(AGE_BUCKETS)
                    .filter(|(n, _)| **n > 0)
                    .map(|(n, (class, label))| {
                        let width = plot * *n as f64 / total.max(1) as f64;
                        let segment = Segment {
                            x: round1(x),
                            width: round1(width),
                            class,
                            label,
                            count: *n,
                        };
                        x += width;
                        segment
                    })
                    .collect();
                StackRow {
                    label,
                    total,
                    y: round1(8.0 + i as f64 * BAR_PITCH),
                    segments,
                }
            })
            .collect::<Vec<_>>();
        AgeChart {
            width: CHART_WIDTH,
            height: (16.0 + rows.len() as f64 * BAR_PITCH) as u32,
            label_width,
            rows,
            legend: AGE_BUCKETS.to_vec(),
        }
    }
}

/// One month of the rotations chart.
#[derive(Serialize)]
struct MonthColumn {
    x: f64,
    width: f64,
    label: String,
    show_label: bool,
    completed: usize,
    failed: usize,
    completed_y: f64,
    completed_h: f64,
    failed_y: f64,
    failed_h: f64,
}

/// A horizontal grid line with its value.
#[derive(Serialize)]
struct Tick {
    y: f64,
    label: String,
}

/// Rotations per month, completed and failed stacked.
#[derive(Serialize)]
struct RotationChart {
    width: u32,
    height: u32,
    left: f64,
    right: f64,
    bottom: f64,
    columns: Vec<MonthColumn>,
    ticks: Vec<Tick>,
}

/// The smallest 1/2/5 x 10^k step that covers `max` in four steps.
fn nice_step(max: usize) -> usize {
    let target = (max.max(1) as f64 / 4.0).ceil() as usize;
    let mut magnitude = 1usize;
    loop {
        for m in [1, 2, 5] {
            if m * magnitude >= target {
                return m * magnitude;
            }
        }
        magnitude = magnitude.saturating_mul(10);
    }
}

impl RotationChart {
    fn new(months: &[super::view::MonthCount]) -> Self {
        let (width, height) = (CHART_WIDTH, 220u32);
        let (left, right, top, bottom) = (44.0, f64::from(width) - 8.0, 10.0, 190.0);
        let max = months
            .iter()
            .map(|m| m.completed + m.failed)
            .max()
            .unwrap_or(0);
        let step = nice_step(max);
        let top_value = (step * 4) as f64;
        let scale = (bottom - top) / top_value;
        let ticks = (0..=4)
            .map(|k| Tick {
                y: round1(bottom - (k * step) as f64 * scale),
                label: (k * step).to_string(),
            })
            .collect();
        let pitch = (right - left) / months.len().max(1) as f64;
        // About eight labels fit under the plot without overlapping.
        let label_every = months.len().div_ceil(8).max(1);
        let columns = months
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let completed_h = m.completed as f64 * scale;
                let failed_h = m.failed as f64 * scale;
                MonthColumn {
                    x: round1(left + i as f64 * pitch + pitch * 0.15),
                    width: round1(pitch * 0.7),
                    label: m.month.clone(),
                    show_label: i % label_every == 0,
                    completed: m.completed,
                    failed: m.failed,
                    completed_y: round1(bottom - completed_h),
                    completed_h: round1(completed_h),
                    failed_y: round1(bottom - completed_h - failed_h),
                    failed_h: round1(failed_h),
                }
            })
            .collect();
        RotationChart {
            width,
            height,
            left,
            right,
            bottom,
            columns,
            ticks,
        }
    }
}

/// A (name, count) pair for tiles and legends.
#[derive(Serialize)]
struct Count {
    name: String,
    count: usize,
}

/// How many new and resolved findings the summary lists by name.
const DIFF_LISTED: usize = 10;

/// What changed since the previous run, for the summary.
#[derive(Serialize)]
struct DiffSummary<'a> {
    from_run: i64,
    new: usize,
    resolved: usize,
    persisting: usize,
    new_listed: &'a [FindingView],
    resolved_listed: &'a [FindingView],
}

impl<'a> DiffSummary<'a> {
    fn new(diff: &'a DiffView) -> Self {
        DiffSummary {
            from_run: diff.from_run,
            new: diff.new.len(),
            resolved: diff.resolved.len(),
            persisting: diff.persisting,
            new_listed: &diff.new[..diff.new.len().min(DIFF_LISTED)],
            resolved_listed: &diff.resolved[..diff.resolved.len().min(DIFF_LISTED)],
        }
    }
}

/// A rule of the catalogue with its number of findings in this run.
#[derive(Serialize)]
struct CatalogueRule<'a> {
    id: &'a str,
    title: &'a str,
    severity: &'a str,
    rationale: &'a str,
    remediation: &'a str,
    findings: usize,
    /// Source ids it needs, space-separated.
    sources: String,
    ran: bool,
    complete: bool,
    reason: &'a str,
}

/// Everything the template sees. The big lists are not here; they are in `data`.
#[derive(Serialize)]
struct Page<'a> {
    tool: &'a str,
    version: &'a str,
    schema_version: u32,
    csp: String,
    style: Value,
    script: Value,
    run: &'a super::view::RunView,
    partial: bool,
    /// Changes since the previous run, with at most [`DIFF_LISTED`] findings of each side.
    diff: Option<DiffSummary<'a>>,
    total_findings: usize,
    /// Findings accepted by a waiver in force (shown, but not counted against controls).
    waived_findings: usize,
    /// Waivers that matched no finding.
    unmatched_waivers: &'a [crate::report::view::UnmatchedWaiverView],
    severity_counts: Vec<Count>,
    rule_options: Vec<String>,
    fleet_score: &'a Score,
    /// Lowest score first, as the plan orders them.
    owner_scores: &'a [Score],
    score_note: &'static str,
    frameworks: &'a [super::view::FrameworkView],
    coverage: Vec<&'a CoverageEntry>,
    coverage_failed: Vec<&'a CoverageEntry>,
    /// The evidence sources the run had.
    sources: &'a [super::view::SourceView],
    /// Rules that did not run, or ran in part, with why.
    rules_not_run: Vec<&'a super::view::RuleView>,
    reconciliation: Vec<Count>,
    plan_actions: usize,
    plan_jobs: usize,
    plan_rotations: usize,
    plan_emergencies: usize,
    inventory_rows: usize,
    events: usize,
    catalogue: Vec<CatalogueRule<'a>>,
    severity_chart: BarChart,
    rule_chart: BarChart,
    age_chart: AgeChart,
    rotation_chart: RotationChart,
}

impl<'a> Page<'a> {
    fn new(view: &'a ReportView) -> Result<Self> {
        let severity_counts = severity_counts(view);
        let severity_chart = BarChart::new(
            90,
            severity_counts
                .iter()
                .map(|c| (c.name.clone(), c.count, format!("fill-{}", c.name)))
                .collect(),
        );
        Ok(Page {
            tool: view.tool,
            version: view.version,
            schema_version: view.schema_version,
            csp: content_security_policy(),
            style: Value::from_safe_string(STYLE.to_string()),
            script: Value::from_safe_string(SCRIPT.to_string()),
            run: &view.run,
            partial: view.run.status != "complete",
            diff: view.diff.as_ref().map(DiffSummary::new),
            total_findings: view.findings.len(),
            waived_findings: view.findings.iter().filter(|f| f.waiver.is_some()).count(),
            unmatched_waivers: &view.unmatched_waivers,
            severity_counts,
            rule_options: rule_options(view),
            fleet_score: &view.plan.fleet_score,
            owner_scores: &view.plan.owner_scores,
            score_note: crate::plan::SCORE_FORMULA,
            frameworks: &view.frameworks,
            // Failed reads first, where no one can miss them.
            coverage: view
                .coverage
                .iter()
                .filter(|c| !c.ok)
                .chain(view.coverage.iter().filter(|c| c.ok))
                .collect(),
            coverage_failed: view.coverage.iter().filter(|c| !c.ok).collect(),
            sources: &view.sources,
            rules_not_run: view.rules.iter().filter(|r| !r.complete).collect(),
            reconciliation: reconciliation_counts(view),
            plan_actions: view.plan.actions.len(),
            plan_jobs: view.plan.jobs.len(),
            plan_rotations: view.plan.jobs.iter().filter(|j| j.rotate).count(),
            plan_emergencies: view.plan.jobs.iter().filter(|j| j.emergency).count(),
            inventory_rows: view.inventory.len(),
            events: view.events.len(),
            catalogue: catalogue(view),
            severity_chart,
            rule_chart: rule_chart(view),
            age_chart: AgeChart::new(&view.inventory),
            rotation_chart: RotationChart::new(&view.rotations_by_month),
        })
    }
}

/// The number of findings of each severity, in the order of [`SEVERITIES`].
fn severity_counts(view: &ReportView) -> Vec<Count> {
    SEVERITIES
        .iter()
        .map(|s| Count {
            name: s.to_string(),
            count: view.summary.by_severity.get(*s).copied().unwrap_or(0),
        })
        .collect()
}

/// Findings per rule, most first.
fn rule_chart(view: &ReportView) -> BarChart {
    let mut by_rule: Vec<(&String, &usize)> = view.summary.by_rule.iter().collect();
    by_rule.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    BarChart::new(
        190,
        by_rule
            .iter()
            .map(|(rule, n)| (rule.to_string(), **n, "fill-rule".to_string()))
            .collect(),
    )
}

/// The rule filter's options: every rule of the view and of a finding, sorted.
fn rule_options(view: &ReportView) -> Vec<String> {
    let mut rule_options: Vec<String> = view.rules.iter().map(|r| r.id.to_string()).collect();
    for rule in view.summary.by_rule.keys() {
        if !rule_options.contains(rule) {
            rule_options.push(rule.clone());
        }
    }
    rule_options.sort();
    rule_options
}

/// Credentials per reconciliation state.
fn reconciliation_counts(view: &ReportView) -> Vec<Count> {
    // Known states in reading order, then any other the view carries.
    let mut reconciliation: Vec<Count> = ["reconciled", "unmanaged", "orphaned", "declared-only"]
        .into_iter()
        .map(|name| Count {
            name: name.to_string(),
            count: 0,
        })
        .collect();
    for row in &view.inventory {
        match reconciliation
            .iter_mut()
            .find(|c| c.name == row.reconciliation)
        {
            Some(c) => c.count += 1,
            None => reconciliation.push(Count {
                name: row.reconciliation.clone(),
                count: 1,
            }),
        }
    }
    reconciliation
}

/// The rule catalogue, with the findings of each rule.
fn catalogue<'a>(view: &'a ReportView<'_>) -> Vec<CatalogueRule<'a>> {
    view.rules
        .iter()
        .map(|r| CatalogueRule {
            id: r.id,
            title: &r.title,
            severity: r.severity,
            rationale: &r.rationale,
            remediation: r.remediation,
            findings: view.summary.by_rule.get(r.id).copied().unwrap_or(0),
            sources: r.sources.join(" "),
            ran: r.ran,
            complete: r.complete,
            reason: &r.reason,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CredentialKind, Finding, Severity};
    use crate::plan::{Action, ActionKind, Job, Plan};
    use crate::report::view::{
        ControlView, DiffView, EventView, FrameworkView, MonthCount, RuleView, RunView,
    };
    use crate::report::{Summary, WaiverView};

    const SCRIPT_PAYLOAD: &str = "<script>alert(1)</script>";
    const ATTR_PAYLOAD: &str = "\"><img src=x onerror=alert(1)>";

    /// Built through the model type, as the bundle builds them.
    fn finding(
        rule: &str,
        severity: Severity,
        credential: &str,
        owner: &str,
        message: &str,
    ) -> FindingView {
        FindingView::from(&Finding {
            rule: rule.into(),
            severity,
            credential: credential.into(),
            kind: CredentialKind::IamAccessKey,
            account: Some("111111111111".into()),
            region: Some("us-east-1".into()),
            owner: (!owner.is_empty()).then(|| owner.into()),
            principal: None,
            message: message.into(),
            evidence: vec![
                ("user".into(), format!("svc-{ATTR_PAYLOAD}")),
                ("tag:owner".into(), format!("team{SCRIPT_PAYLOAD}")),
            ],
            waiver: None,
        })
    }

    fn score(scope: &str, score: u32) -> Score {
        Score {
            scope: scope.into(),
            score,
            credentials: 2,
            automation: 0.5,
            in_policy: 0.5,
            finding_load: 3.5,
        }
    }

    fn inventory_row(
        credential: &str,
        principal: &str,
        class: &str,
        age: Option<f64>,
    ) -> InventoryRow {
        InventoryRow {
            credential: credential.into(),
            kind: "iam-access-key".into(),
            reconciliation: "unmanaged".into(),
            declared: false,
            observed: true,
            class: class.into(),
            owner: format!("owner{ATTR_PAYLOAD}"),
            owner_status: "undeclared".into(),
            account: "111111111111".into(),
            region: "us-east-1".into(),
            principal: principal.into(),
            status: "active".into(),
            automated: false,
            consumers: String::new(),
            last_rotation: "2024-01-01T00:00:00Z".into(),
            last_used: String::new(),
            age_days: age,
            interval_days: 30,
            findings: 1,
        }
    }

    /// A small run with payloads in a user name, a secret name, a tag value, a message and an
    /// owner, everywhere they can appear.
    pub(super) fn sample_view() -> ReportView<'static> {
        let secret = format!(
            "arn:aws:secretsmanager:us-east-1:111111111111:secret:prod/db{SCRIPT_PAYLOAD}-AbCdEf"
        );
        let user_key = "AKIAEXAMPLE000000001".to_string();
        let mut findings = vec![
            finding(
                "root-access-key",
                Severity::Critical,
                "arn:aws:iam::111111111111:root/access-key-1",
                "",
                "the root user has an active access key",
            ),
            finding(
                "rotation-overdue",
                Severity::High,
                &secret,
                &format!("team{SCRIPT_PAYLOAD}"),
                &format!("secret prod/db{SCRIPT_PAYLOAD} is 50 days old"),
            ),
            finding(
                "unowned-credential",
                Severity::High,
                &user_key,
                "",
                &format!("user svc-{ATTR_PAYLOAD} has no owner </script><script>alert(2)</script>"),
            ),
        ];
        findings[2].waiver = Some(WaiverView {
            ticket: "SEC-1".into(),
            approver: format!("ciso{ATTR_PAYLOAD}"),
            reason: format!("accepted {SCRIPT_PAYLOAD}"),
            expires: "2024-12-31T23:59:59Z".into(),
        });
        let mut by_severity = BTreeMap::new();
        for s in SEVERITIES {
            by_severity.insert(s.to_string(), 0);
        }
        let mut by_rule = BTreeMap::new();
        for f in &findings {
            *by_severity.entry(f.severity.to_string()).or_default() += 1;
            *by_rule.entry(f.rule.clone()).or_default() += 1;
        }
        let action = Action {
            priority: 2,
            action: ActionKind::RotateNow,
            severity: Severity::High,
            credential: secret.clone(),
            kind: "secret".into(),
            account: "111111111111".into(),
            region: "us-east-1".into(),
            owner: format!("team{SCRIPT_PAYLOAD}"),
            due: "2024-06-04T00:00:00Z".into(),
            description: format!("Rotate prod/db{SCRIPT_PAYLOAD} now."),
            command: Some(format!(
                "aws secretsmanager rotate-secret --secret-id '{secret}'"
            )),
            rules: vec!["rotation-overdue".into()],
            fingerprints: vec![findings[1].fingerprint.clone()],
            controls: vec!["soc2:CC6.1".into()],
        };
        ReportView {
            schema_version: crate::report::SCHEMA_VERSION,
            tool: "credaudit",
            version: "0.0.0-test",
            run: RunView {
                id: 7,
                as_of: "2024-06-01T00:00:00Z".into(),
                recorded_at: "2024-06-01T00:05:00Z".into(),
                source: format!("export:/tmp/{ATTR_PAYLOAD}"),
                status: "partial".into(),
                content_hash: "ab".repeat(32),
                accounts: vec!["111111111111".into()],
                credentials_observed: 3,
                credentials_declared: 1,
                shards: Vec::new(),
            },
            summary: Summary {
                total: findings.len(),
                by_severity,
                by_rule,
            },
            frameworks: vec![FrameworkView {
                id: "soc2".into(),
                name: "SOC 2".into(),
                version: "2017 TSC".into(),
                pass: 1,
                fail: 1,
                not_assessed: 1,
                not_applicable: 0,
                manual: 0,
                controls: vec![
                    ControlView {
                        id: "CC6.1".into(),
                        title: "Logical access security".into(),
                        reason: "credentials are access".into(),
                        rules: vec!["rotation-overdue".into(), "unowned-credential".into()],
                        status: "fail".into(),
                        status_reason: String::new(),
                        findings: 2,
                        in_scope: 3,
                        failing_credentials: vec![secret.clone(), user_key.clone()],
                    },
                    ControlView {
                        id: "CC6.2".into(),
                        title: "Provisioning".into(),
                        reason: "inventory".into(),
                        rules: vec!["unmanaged-credential".into()],
                        status: "pass".into(),
                        status_reason: String::new(),
                        findings: 0,
                        in_scope: 3,
                        failing_credentials: vec![],
                    },
                    ControlView {
                        id: "CC7.2".into(),
                        title: "Monitoring".into(),
                        reason: "anomalies".into(),
                        rules: vec!["anomalous-usage".into()],
                        status: "not-assessed".into(),
                        status_reason: format!(
                            "no CloudTrail in this run {ATTR_PAYLOAD} (anomalous-usage did not run)"
                        ),
                        findings: 0,
                        in_scope: 3,
                        failing_credentials: vec![],
                    },
                ],
            }],
            plan: Plan {
                actions: vec![action.clone()],
                jobs: vec![Job {
                    credential: secret.clone(),
                    kind: "secret".into(),
                    account: "111111111111".into(),
                    region: "us-east-1".into(),
                    owner: format!("team{SCRIPT_PAYLOAD}"),
                    due: action.due.clone(),
                    severity: Severity::High,
                    rotate: true,
                    emergency: false,
                    actions: vec![action],
                }],
                fleet_score: score("fleet", 42),
                owner_scores: vec![
                    score(&format!("team{SCRIPT_PAYLOAD}"), 30),
                    score("unowned", 55),
                ],
            },
            inventory: vec![
                inventory_row(&user_key, &format!("svc-{ATTR_PAYLOAD}"), "", Some(12.0)),
                inventory_row(&secret, "", "A", Some(50.0)),
                inventory_row("external:llm-key", "", "B", None),
            ],
            events: vec![EventView {
                time: "2024-05-01T00:00:00Z".into(),
                // Leaked: the view refers to the facts' events, and outlives this function.
                event: Box::leak(Box::new(crate::model::RotationEvent {
                    time: chrono::DateTime::parse_from_rfc3339("2024-05-01T00:00:00Z")
                        .unwrap()
                        .to_utc(),
                    credential_id: secret.clone(),
                    event_type: crate::model::EventType::RotationCompleted,
                    trigger: Some(crate::model::Trigger::Scheduled),
                    fingerprint: Some("sha256:0011".into()),
                    details: Some(format!("rotated by {SCRIPT_PAYLOAD}")),
                    source: "history".into(),
                })),
            }],
            coverage: vec![
                CoverageEntry {
                    account: "111111111111".into(),
                    region: "global".into(),
                    api: "iam:list-access-keys".into(),
                    ok: true,
                    error: None,
                    records: 2,
                },
                CoverageEntry {
                    account: "111111111111".into(),
                    region: "us-east-1".into(),
                    api: "secretsmanager:list-secrets".into(),
                    ok: false,
                    error: Some(format!("AccessDenied for {ATTR_PAYLOAD}")),
                    records: 0,
                },
            ],
            sources: vec![crate::report::view::SourceView {
                source: "iam-keys",
                name: "IAM access key listing",
                account: format!("1111{ATTR_PAYLOAD}"),
                region: "global".into(),
                records: 2,
                caveat: None,
            }],
            rotations_by_month: vec![
                MonthCount {
                    month: "2024-04".into(),
                    completed: 3,
                    failed: 1,
                },
                MonthCount {
                    month: "2024-05".into(),
                    completed: 5,
                    failed: 0,
                },
            ],
            rules: vec![
                RuleView {
                    id: "rotation-overdue",
                    title: "Credential older than its class interval".into(),
                    severity: "high",
                    rationale: "old credentials leak".into(),
                    remediation: "rotate it",
                    sources: vec!["iam-keys"],
                    ran: true,
                    complete: true,
                    reason: String::new(),
                },
                RuleView {
                    id: "root-access-key",
                    title: "Root user has an access key".into(),
                    severity: "critical",
                    rationale: "root is unrestricted".into(),
                    remediation: "delete it",
                    sources: vec!["credential-report"],
                    ran: false,
                    complete: false,
                    reason: format!("no IAM credential report in this run{ATTR_PAYLOAD}"),
                },
            ],
            diff: Some(DiffView {
                from_run: 6,
                to_run: 7,
                new: vec![findings[1].clone()],
                resolved: vec![finding(
                    "unused-credential",
                    Severity::Medium,
                    &format!("AKIAOLD{SCRIPT_PAYLOAD}"),
                    "",
                    "gone",
                )],
                persisting: 2,
            }),
            inventory_file: Some("inventory.toml".into()),
            unmatched_waivers: vec![crate::report::view::UnmatchedWaiverView {
                line: 3,
                rule: "rotation-overdue".into(),
                credential: format!("AKIA*{SCRIPT_PAYLOAD}"),
                ticket: format!("SEC-1{SCRIPT_PAYLOAD}"),
                expires: "2027-01-31T23:59:59Z".into(),
            }],
            findings,
        }
    }

    fn render() -> String {
        render_html(&sample_view()).expect("renders")
    }

    /// The JSON of each data block, by id: its text base64-decoded and inflated, as the page's
    /// script reads it.
    fn json_blocks(html: &str) -> Vec<(String, String)> {
        raw_blocks(html)
            .into_iter()
            .map(|(id, body)| {
                let deflated = base64::engine::general_purpose::STANDARD
                    .decode(&body)
                    .unwrap_or_else(|e| panic!("{id} is base64: {e}"));
                let mut json = String::new();
                std::io::Read::read_to_string(
                    &mut flate2::read::ZlibDecoder::new(deflated.as_slice()),
                    &mut json,
                )
                .unwrap_or_else(|e| panic!("{id} inflates to UTF-8: {e}"));
                (id, json)
            })
            .collect()
    }

    /// The text of each `<script type="application/octet-stream" id=…>` element, by id.
    fn raw_blocks(html: &str) -> Vec<(String, String)> {
        let open = "<script type=\"application/octet-stream\" id=\"";
        let mut blocks = Vec::new();
        let mut rest = html;
        while let Some(at) = rest.find(open) {
            let after = &rest[at + open.len()..];
            let id_end = after.find('"').expect("id ends");
            let body_start = after.find('>').expect("tag ends") + 1;
            let body_end = after.find("</script>").expect("element ends");
            blocks.push((
                after[..id_end].to_string(),
                after[body_start..body_end].to_string(),
            ));
            rest = &after[body_end..];
        }
        blocks
    }

    #[test]
    fn loads_nothing_from_the_network() {
        let html = render();
        assert!(!html.contains("http://"), "no http:// reference");
        assert!(!html.contains("https://"), "no https:// reference");
        for needle in [
            "<link", "@import", "url(", " src=\"", "<iframe", "<object", "<embed",
        ] {
            assert!(!html.contains(needle), "no external resource ({needle})");
        }
        let csp =
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src &#x27;none&#x27;;";
        assert!(html.contains(csp), "strict CSP meta tag");
    }

    #[test]
    fn data_urls_in_the_data_stay_data() {
        let mut view = sample_view();
        view.findings[0].message = "see https://example.com/runbook".into();
        let html = render_html(&view).expect("renders");
        // The one URL is the data's own, inside the deflated string table.
        assert_eq!(html.matches("https://").count(), 0);
        let (_, strings) = json_blocks(&html)
            .into_iter()
            .find(|(id, _)| id == "data-strings")
            .expect("string table");
        assert!(strings.contains("see https://example.com/runbook"));
    }

    #[test]
    fn untrusted_text_is_escaped_everywhere() {
        let html = render();
        for payload in [
            SCRIPT_PAYLOAD,
            ATTR_PAYLOAD,
            "<img src=x",
            "<script>alert",
            "onerror=alert(1)>",
        ] {
            assert!(
                !html.contains(payload),
                "raw payload {payload:?} in the page"
            );
        }
        // Server-rendered places show it escaped: owner score scope, coverage error, run source.
        assert!(html.contains("team&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"));
        assert!(html.contains("AccessDenied for &quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
        assert!(html.contains("export:&#x2f;tmp&#x2f;&quot;&gt;&lt;img"));
        // The unmatched waiver's ticket, in its banner.
        assert!(html.contains("id=\"unmatched-waivers\""));
        assert!(html.contains("SEC-1&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"));
    }

    #[test]
    fn data_cannot_close_the_json_blocks() {
        let html = render();
        for (id, body) in raw_blocks(&html) {
            assert!(
                body.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)),
                "{id} holds nothing but base64"
            );
        }
        let blocks = json_blocks(&html);
        let ids: Vec<&str> = blocks.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "data-strings",
                "data-findings",
                "data-actions",
                "data-inventory",
                "data-events",
                "data-controls"
            ]
        );
        // Six data blocks and the script: nothing else ends a script element.
        assert_eq!(html.matches("</script>").count(), 7);
        assert_eq!(html.matches("<script").count(), 7);
        for (id, body) in &blocks {
            serde_json::from_str::<serde_json::Value>(body).unwrap_or_else(|e| panic!("{id}: {e}"));
        }
        // The payloads survive the round trip exactly.
        let strings: Vec<String> = serde_json::from_str(&blocks[0].1).expect("string table");
        assert!(
            strings
                .iter()
                .any(|s| s.contains("</script><script>alert(2)</script>"))
        );
        assert!(strings.iter().any(|s| s == &format!("svc-{ATTR_PAYLOAD}")));
        let unique: std::collections::BTreeSet<&String> = strings.iter().collect();
        assert_eq!(unique.len(), strings.len(), "each string once");
    }

    #[test]
    fn data_go_where_the_template_marks_them_once() {
        let mut view = sample_view();
        // A marker in a server-rendered string is escaped, so it cannot move the data.
        view.run.source = DATA_MARKER.into();
        assert!(!SCRIPT.contains(DATA_MARKER) && !STYLE.contains(DATA_MARKER));
        let page = render_template(&view).expect("renders");
        assert_eq!(page.matches(DATA_MARKER).count(), 1);
        let html = render_html(&view).expect("renders");
        assert!(!html.contains(DATA_MARKER));
        assert!(html.contains("&lt;!--credaudit:data--&gt;"));
        let ids: Vec<String> = raw_blocks(&html).into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids.len(), 6);
    }

    #[test]
    fn event_times_fingerprints_and_details_travel_as_text() {
        let view = sample_view();
        assert!(!view.events.is_empty());
        let blocks = json_blocks(&render_html(&view).expect("renders"));
        let (id, events) = &blocks[4];
        assert_eq!(id, "data-events");
        let events: serde_json::Value = serde_json::from_str(events).expect("events");
        assert_eq!(events["n"], view.events.len());
        for (k, e) in view.events.iter().enumerate() {
            assert_eq!(events["time"][k], e.time.as_str());
            assert_eq!(events["fingerprint"][k], e.fingerprint());
            assert_eq!(events["details"][k], e.details());
            assert!(
                events["credential"][k].is_u64(),
                "credentials stay in the table"
            );
        }
    }

    #[test]
    fn findings_are_columnar_and_dictionary_encoded() {
        let html = render();
        let blocks = json_blocks(&html);
        let strings: Vec<String> = serde_json::from_str(&blocks[0].1).expect("strings");
        let findings: serde_json::Value = serde_json::from_str(&blocks[1].1).expect("findings");
        assert_eq!(findings["n"], 3);
        assert_eq!(findings["severity"], serde_json::json!([0, 1, 1]));
        let rule_of =
            |i: usize| strings[findings["rule"][i].as_u64().expect("id") as usize].as_str();
        assert_eq!(
            [rule_of(0), rule_of(1), rule_of(2)],
            ["root-access-key", "rotation-overdue", "unowned-credential"]
        );
        assert_eq!(findings["waiver"][0], serde_json::json!([]));
        let waiver = findings["waiver"][2].as_array().expect("waiver");
        assert_eq!(strings[waiver[0].as_u64().expect("id") as usize], "SEC-1");
        let evidence = findings["evidence"][2].as_array().expect("pairs");
        assert_eq!(evidence.len(), 4);
        assert_eq!(strings[evidence[0].as_u64().expect("id") as usize], "user");
    }

    #[test]
    fn csp_hash_matches_the_inline_script() {
        let html = render();
        assert!(
            !SCRIPT.contains("</script"),
            "the script cannot contain its own end tag"
        );
        let script = format!("<script>{SCRIPT}</script>");
        assert!(html.contains(&script), "script inserted verbatim");
        // The policy as the browser reads the attribute (entities decoded).
        let start = html
            .find("http-equiv=\"Content-Security-Policy\" content=\"")
            .expect("CSP meta tag")
            + "http-equiv=\"Content-Security-Policy\" content=\"".len();
        let end = start + html[start..].find('"').expect("attribute ends");
        let policy = html[start..end]
            .replace("&#x27;", "'")
            .replace("&#x2f;", "/")
            .replace("&amp;", "&");
        let digest = Sha256::digest(SCRIPT.as_bytes());
        let hash = base64::engine::general_purpose::STANDARD.encode(digest);
        assert_eq!(
            policy,
            format!(
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                 script-src 'sha256-{hash}'; base-uri 'none'; form-action 'none'"
            )
        );
    }

    #[test]
    fn a_partial_scan_is_unmistakable() {
        let html = render();
        assert!(html.contains("<title>PARTIAL SCAN - "));
        assert!(html.contains("id=\"partial-banner\""));
        assert!(html.contains("id=\"coverage-warning\""));
        assert!(html.contains("1 coverage entry failed."));

        let mut view = sample_view();
        view.run.status = "complete".into();
        view.coverage.retain(|c| c.ok);
        let html = render_html(&view).expect("renders");
        assert!(!html.contains("PARTIAL"));
        assert!(!html.contains("id=\"partial-banner\""));
        assert!(!html.contains("id=\"coverage-warning\""));
    }

    #[test]
    fn sections_and_charts_are_server_rendered() {
        let html = render();
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
            "chart-severity",
            "chart-rules",
            "chart-age",
            "chart-rotations",
            "findings-count",
            "score-formula",
        ] {
            assert!(html.contains(&format!("id=\"{id}\"")), "section {id}");
        }
        assert!(html.contains("data-control=\"soc2:CC6.1\""));
        assert!(html.contains("<h3>Since run 6</h3>"));
        assert!(html.contains("<div class=\"note\" id=\"waived-note\">1 waived</div>"));
        assert!(html.contains("<code>AKIAOLD&lt;script&gt;"));
        // Severity chart: one bar per severity; the rotations chart stacks failed on completed.
        assert!(html.matches("<rect class=\"fill-critical\"").count() == 1);
        assert!(html.contains("<title>2024-04: 3 completed, 1 failed</title>"));
        assert!(html.contains("class A: 1 over 150 % (policy breach)"));
    }

    #[test]
    fn renders_deterministically() {
        assert_eq!(render(), render());
    }

    #[test]
    fn renders_an_empty_run() {
        let mut view = sample_view();
        view.findings.clear();
        view.summary = Summary::default();
        view.plan.actions.clear();
        view.plan.jobs.clear();
        view.plan.owner_scores.clear();
        view.inventory.clear();
        view.events.clear();
        view.coverage.clear();
        view.rotations_by_month.clear();
        view.frameworks.clear();
        let html = render_html(&view).expect("renders");
        assert!(html.contains("No rotation events recorded"));
        assert!(html.contains("No coverage recorded"));
    }

    #[test]
    fn nice_steps_cover_the_maximum() {
        assert_eq!(nice_step(0), 1);
        assert_eq!(nice_step(4), 1);
        assert_eq!(nice_step(5), 2);
        assert_eq!(nice_step(17), 5);
        assert_eq!(nice_step(1234), 500);
    }
}
