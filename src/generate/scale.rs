//! Fleets at scale (`generate --credentials N`): about N credentials (IAM users' access keys, a
//! few root keys, Secrets Manager secrets in every region, declared-only external credentials)
//! over K accounts, a rotation history of `days` days, optional CloudTrail logs, and per-rule
//! defect rates. Every credential is a pure function of (seed, its index): each output file is
//! written by walking the indices once, so memory holds only compact per-credential state (the
//! history schedule, the CloudTrail usage pattern) and never a whole document.
//!
//! The ground truth is computed by [`truth`] from what [`cred`] planted (its own reading of the
//! rule definitions, never the rule engine), so a scan and the generator check each other.
//!
//! Layout added to the `--agents` one: `DIR/cloudtrail/AWSLogs/<account>/CloudTrail/<region>/
//! <yyyy>/<mm>/<dd>/<account>_CloudTrail_<region>_<yyyymmddThhmmZ>_<rand>.json.gz`.

mod cred;
mod files;
mod history;
mod trail;
mod truth;
mod usage;

use std::path::Path;

use chrono::{DateTime, Utc};

use super::rng::Rng;
use super::{ExpectedFinding, GroundTruth};
use crate::error::{Error, Result};

pub use self::cred::RULE_IDS;

/// What fleet to generate at scale.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleSpec {
    /// Seeds every random choice; the same spec gives the same files.
    pub seed: u64,
    /// About this many credentials in all.
    pub credentials: u64,
    /// 12-digit account ids; credentials are spread over them in contiguous blocks.
    pub accounts: Vec<String>,
    /// Regions of the secrets (and of the keys' usage).
    pub regions: Vec<String>,
    /// Days of rotation history before as-of.
    pub days: u32,
    /// Defect rate per rule.
    pub rates: Rates,
    /// About this many CloudTrail records (0: no CloudTrail).
    pub cloudtrail_events: u64,
    /// The time every date is relative to, and at which the expected findings hold.
    pub as_of: DateTime<Utc>,
    /// Print no progress.
    pub quiet: bool,
}

/// The chance that a credential carries the defect of each rule, in [`RULE_IDS`] order. For
/// `root-access-key` it is the chance of each of an account's two root key slots.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates(pub [f64; RULE_IDS.len()]);

impl Default for Rates {
    fn default() -> Self {
        let mut rates = [0.01; RULE_IDS.len()];
        rates[cred::ROOT] = 0.25;
        Rates(rates)
    }
}

impl Rates {
    /// The defaults with `RULE=P` settings applied (each value may hold several, comma
    /// separated). An unknown rule or a rate outside [0, 1] is a usage error naming the value.
    pub fn parse(values: &[String]) -> Result<Rates> {
        let mut rates = Rates::default();
        for setting in values.iter().flat_map(|v| v.split(',')) {
            let setting = setting.trim();
            if setting.is_empty() {
                continue;
            }
            let bad = |why: String| Error::Usage(format!("generate: --rate \"{setting}\": {why}"));
            let (rule, value) = setting
                .split_once('=')
                .ok_or_else(|| bad("expected RULE=P, e.g. rotation-overdue=0.05".into()))?;
            let index = RULE_IDS
                .iter()
                .position(|r| *r == rule.trim())
                .ok_or_else(|| {
                    bad(format!(
                        "unknown rule; the generator plants {}",
                        RULE_IDS.join(", ")
                    ))
                })?;
            let p: f64 = value
                .trim()
                .parse()
                .ok()
                .filter(|p: &f64| (0.0..=1.0).contains(p))
                .ok_or_else(|| bad("expected a rate between 0 and 1".into()))?;
            rates.0[index] = p;
        }
        Ok(rates)
    }
}

/// Account ids from `--accounts`: a count (ids drawn from the seed) or a comma list of ids.
pub fn accounts_from(seed: u64, text: &str) -> Result<Vec<String>> {
    let text = text.trim();
    if let Ok(count) = text.parse::<usize>() {
        if count == 0 || count > 10_000 {
            return Err(Error::Usage(format!(
                "generate: --accounts \"{text}\": expected 1 to 10000 accounts or a list of 12-digit ids"
            )));
        }
        let mut rng = Rng::stream(seed, 0xACC0_0000);
        let mut ids: Vec<String> = Vec::with_capacity(count);
        while ids.len() < count {
            let id = format!("{:012}", 100_000_000_000 + rng.below(899_999_999_999));
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        return Ok(ids);
    }
    let ids: Vec<String> = text.split(',').map(|s| s.trim().to_string()).collect();
    Ok(ids)
}

/// Checks the spec: plain account ids and regions (they become folder names), sane sizes.
fn validate(spec: &ScaleSpec) -> Result<()> {
    super::FleetSpec {
        seed: spec.seed,
        agents: 0,
        accounts: spec.accounts.clone(),
        regions: spec.regions.clone(),
        as_of: spec.as_of,
    }
    .validate()?;
    if spec.accounts.len() > u16::MAX as usize || spec.regions.len() > 64 {
        return Err(Error::Usage(
            "generate: at most 65535 accounts and 64 regions".into(),
        ));
    }
    if spec.credentials == 0 || spec.credentials > 100_000_000 {
        return Err(Error::Usage(format!(
            "generate: --credentials {}: expected 1 to 100000000",
            spec.credentials
        )));
    }
    if spec.days == 0 || spec.days > 3650 {
        return Err(Error::Usage(format!(
            "generate: --days {}: expected 1 to 3650",
            spec.days
        )));
    }
    Ok(())
}

/// Generates the fleet of `spec` into `out` and returns its ground truth (also written as
/// `expected-findings.json`). `out` is prepared as for [`super::generate`].
pub fn generate_scale(spec: &ScaleSpec, out: &Path) -> Result<GroundTruth> {
    validate(spec)?;
    super::prepare_out(out)?;
    let world = cred::World::new(spec);
    let progress = Progress::new(spec.quiet);
    let pass = files::write_credentials(&world, out, &progress)?;
    history::write(&world, pass.schedules, pass.extras, out, &progress)?;
    if spec.cloudtrail_events > 0 {
        trail::write(&world, &pass.principals, out, &progress)?;
    }
    let mut expected: Vec<(u8, Box<str>)> = pass.findings;
    expected.sort_unstable_by(|a, b| {
        (RULE_IDS[a.0 as usize], &a.1).cmp(&(RULE_IDS[b.0 as usize], &b.1))
    });
    expected.dedup();
    let truth = GroundTruth {
        expected: expected
            .into_iter()
            .map(|(rule, credential)| ExpectedFinding {
                rule: RULE_IDS[rule as usize].to_string(),
                credential: credential.into(),
            })
            .collect(),
        credentials: pass.credentials,
    };
    files::write_truth(&truth, out)?;
    Ok(truth)
}

/// Progress lines on stderr, unless quiet.
pub(super) struct Progress {
    quiet: bool,
}

impl Progress {
    fn new(quiet: bool) -> Self {
        Progress { quiet }
    }

    /// Prints `what` with `done` of `total` when `done` crosses a tenth of `total`.
    pub(super) fn step(&self, what: &str, done: u64, total: u64) {
        if self.quiet || total < 10_000 {
            return;
        }
        let tenth = total.div_ceil(10);
        if done % tenth == 0 || done == total {
            eprintln!("generate: {what} {done}/{total}");
        }
    }

    pub(super) fn note(&self, text: &str) {
        if !self.quiet {
            eprintln!("generate: {text}");
        }
    }
}
