//! The credential pass of a scale fleet: walks the indices once, account block by account
//! block, and streams each credential into the export files of its account (credential report,
//! users, keys, last use, tags; secrets per region) and into `inventory.toml`, while keeping only
//! compact state for what comes later: history schedules, CloudTrail principals, findings.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::super::rng::Rng;
use super::cred::{self, Cred, DAY, Kind, OWNERS, Schedule, World, iso, zulu};
use super::truth::{self, Found};
use super::usage::{self, Principal, Summary};
use super::{GroundTruth, Progress};
use crate::error::{Error, Result};

/// A history schedule of one credential.
pub(super) struct Scheduled {
    pub id: Box<str>,
    pub schedule: Schedule,
    pub kind: Kind,
}

/// An extra history event: (time, index into the schedules, event).
pub(super) type Extra = (i64, u32, ExtraKind);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum ExtraKind {
    /// `rotation.initiated` before a failure.
    Initiated,
    Failed,
    Anomaly,
    Denied,
}

/// What the credential pass leaves for the later ones.
pub(super) struct Pass {
    pub schedules: Vec<Scheduled>,
    pub extras: Vec<Extra>,
    pub principals: Vec<Principal>,
    pub findings: Found,
    pub credentials: usize,
}

const REPORT_HEADER: [&str; 22] = crate::collect::credential_report::COLUMNS;

/// A JSON document written one element at a time: `open`, elements joined by commas, `close`.
struct JsonOut {
    path: PathBuf,
    w: BufWriter<File>,
    count: u64,
    close: &'static str,
}

impl JsonOut {
    fn create(path: PathBuf, open: &str, close: &'static str) -> Result<Self> {
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        let mut w = BufWriter::with_capacity(256 * 1024, file);
        w.write_all(open.as_bytes())
            .map_err(|e| Error::io(&path, e))?;
        Ok(JsonOut {
            path,
            w,
            count: 0,
            close,
        })
    }

    fn push(&mut self, item: &impl Serialize) -> Result<()> {
        let sep: &[u8] = if self.count == 0 { b"\n" } else { b",\n" };
        self.count += 1;
        self.w
            .write_all(sep)
            .and_then(|()| serde_json::to_writer(&mut self.w, item).map_err(Into::into))
            .map_err(|e| Error::io(&self.path, e))
    }

    fn finish(mut self) -> Result<()> {
        self.w
            .write_all(b"\n")
            .and_then(|()| self.w.write_all(self.close.as_bytes()))
            .and_then(|()| self.w.write_all(b"\n"))
            .and_then(|()| self.w.flush())
            .map_err(|e| Error::io(&self.path, e))
    }
}

/// The open files of one account.
struct AccountFiles {
    report_path: PathBuf,
    report: csv::Writer<BufWriter<File>>,
    users: JsonOut,
    keys: JsonOut,
    last_used: JsonOut,
    tags: JsonOut,
    secrets: Vec<JsonOut>,
}

fn create_dir(path: &Path) -> Result<()> {
    fs::create_dir_all(path).map_err(|e| Error::io(path, e))
}

impl AccountFiles {
    fn open(world: &World, out: &Path, a: usize) -> Result<Self> {
        let account = &world.spec.accounts[a];
        let iam = out.join("aws").join(account).join("iam");
        create_dir(&iam)?;
        let report_path = iam.join("credential-report.csv");
        let file = File::create(&report_path).map_err(|e| Error::io(&report_path, e))?;
        let report = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(BufWriter::with_capacity(256 * 1024, file));
        let mut secrets = Vec::new();
        for region in &world.spec.regions {
            let dir = out
                .join("aws")
                .join(account)
                .join("secretsmanager")
                .join(region);
            create_dir(&dir)?;
            secrets.push(JsonOut::create(
                dir.join("list-secrets.json"),
                "{\"SecretList\": [",
                "]}",
            )?);
        }
        let mut files = AccountFiles {
            report_path,
            report,
            users: JsonOut::create(iam.join("list-users.json"), "{\"Users\": [", "]}")?,
            keys: JsonOut::create(iam.join("list-access-keys.json"), "[", "]")?,
            last_used: JsonOut::create(iam.join("get-access-key-last-used.json"), "[", "]")?,
            tags: JsonOut::create(iam.join("list-user-tags.json"), "[", "]")?,
            secrets,
        };
        files.row(&REPORT_HEADER.map(String::from))?;
        files.row(&root_row(world, a))?;
        Ok(files)
    }

    fn row(&mut self, row: &[String]) -> Result<()> {
        self.report
            .write_record(row)
            .map_err(|e| Error::io(&self.report_path, e.into()))
    }

    fn finish(mut self) -> Result<()> {
        self.report
            .flush()
            .map_err(|e| Error::io(&self.report_path, e))?;
        for json in [self.users, self.keys, self.last_used, self.tags] {
            json.finish()?;
        }
        for json in self.secrets {
            json.finish()?;
        }
        Ok(())
    }
}

fn root_row(world: &World, a: usize) -> Vec<String> {
    let account = &world.spec.accounts[a];
    let mut rng = Rng::stream(world.spec.seed ^ 0x5CA1_E000_0000_0020, a as u64);
    let created = world.now - rng.range(1500 * DAY, 2500 * DAY);
    let mut row = vec![
        "<root_account>".to_string(),
        format!("arn:aws:iam::{account}:root"),
        iso(created),
        "not_supported".into(),
        iso(world.now - rng.range(20 * DAY, 200 * DAY)),
        "not_supported".into(),
        "not_supported".into(),
        "true".into(),
    ];
    let keys = cred::root_keys(world, a);
    for slot in 1..=2 {
        match keys.iter().find(|k| k.0 == slot) {
            Some(&(_, rotated, used)) => row.extend([
                "true".to_string(),
                iso(rotated),
                iso(used),
                world.spec.regions[0].clone(),
                "iam".to_string(),
            ]),
            None => row.extend(absent_key()),
        }
    }
    row.extend(no_certificates());
    row
}

fn absent_key() -> [String; 5] {
    ["false", "N/A", "N/A", "N/A", "N/A"].map(String::from)
}

fn no_certificates() -> [String; 4] {
    ["false", "N/A", "false", "N/A"].map(String::from)
}

/// Walks every credential: writes the export and the inventory, evaluates the ground truth.
pub(super) fn write_credentials(world: &World, out: &Path, progress: &Progress) -> Result<Pass> {
    let spec = world.spec;
    let mut pass = Pass {
        schedules: Vec::new(),
        extras: Vec::new(),
        principals: Vec::new(),
        findings: Vec::new(),
        credentials: 0,
    };
    let mut inventory = Inventory::open(world, out)?;
    let total = spec.credentials;
    let mut done = 0;
    for a in 0..world.accounts() {
        let mut files = AccountFiles::open(world, out, a)?;
        for (slot, _, _) in cred::root_keys(world, a) {
            let id = format!("arn:aws:iam::{}:root/access-key-{slot}", spec.accounts[a]);
            pass.findings.push((cred::ROOT as u8, id.into()));
            pass.credentials += 1;
        }
        for index in world.block(a) {
            let mut c = cred::build(world, index);
            let summary: Option<Summary> = c.usage.as_mut().map(|p| usage::summarise(world, p));
            let max_uses = max_uses(&c, summary.as_ref());
            truth::evaluate(world, &c, summary.as_ref(), max_uses, &mut pass.findings);
            write_one(world, &c, &mut files)?;
            inventory.declare(world, &c, max_uses)?;
            keep(&mut pass, &mut c);
            done += 1;
            progress.step("credentials", done, total);
        }
        files.finish()?;
    }
    inventory.finish()?;
    Ok(pass)
}

/// The declared `max_uses`: planted well under the uses since the last rotation, or (for a few
/// clean credentials) well over them.
fn max_uses(c: &Cred, summary: Option<&Summary>) -> Option<u64> {
    if !c.declared {
        return None;
    }
    let uses = summary.map_or(0, |s| truth::uses_since_rotation(c, s));
    if c.max_uses_planted && summary.is_some() {
        Some((uses / 3).max(1))
    } else if c.max_uses_clean {
        Some(uses * 3 + 100)
    } else {
        None
    }
}

/// Keeps the compact state of `c` for the history and CloudTrail passes, and counts it.
fn keep(pass: &mut Pass, c: &mut Cred) {
    pass.credentials += 1 + usize::from(c.newer.is_some() && c.observed);
    if let Some(schedule) = c.schedule {
        let at = pass.schedules.len() as u32;
        pass.schedules.push(Scheduled {
            id: c.id.as_str().into(),
            schedule,
            kind: c.kind,
        });
        if let Some(f) = c.failed_at {
            pass.extras.push((f - 40, at, ExtraKind::Initiated));
            pass.extras.push((f, at, ExtraKind::Failed));
        }
        if let Some(t) = c.anomaly_at {
            pass.extras.push((t, at, ExtraKind::Anomaly));
        }
        pass.extras
            .extend(c.denied.iter().map(|&t| (t, at, ExtraKind::Denied)));
    }
    if let (Some(newer), Some(schedule)) = (&c.newer, c.schedule)
        && c.observed
    {
        pass.schedules.push(Scheduled {
            id: newer.id.as_str().into(),
            schedule: Schedule {
                last: newer.created,
                floor: schedule.floor.max(newer.created),
                first_k: 0,
                ..schedule
            },
            kind: Kind::Key,
        });
    }
    if let Some(p) = c.usage.take() {
        pass.principals.push(p);
    }
}

fn write_one(world: &World, c: &Cred, files: &mut AccountFiles) -> Result<()> {
    if !c.observed {
        return Ok(());
    }
    match c.kind {
        Kind::Key => write_user(world, c, files),
        Kind::Secret => {
            let entry = secret_entry(world, c);
            files.secrets[c.region].push(&entry)
        }
        Kind::External(_) => Ok(()),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Tag<'a> {
    key: &'a str,
    value: String,
}

fn user_tags(c: &Cred) -> Vec<Tag<'static>> {
    let mut tags = Vec::new();
    if let Some(owner) = c.owner_tag() {
        tags.push(Tag {
            key: "owner",
            value: owner.to_string(),
        });
    }
    if let Some(class) = c.class {
        tags.push(Tag {
            key: "class",
            value: class.as_str().to_string(),
        });
    }
    if let Some((last, next)) = c.date_tag_values() {
        tags.push(Tag {
            key: "last-rotation-date",
            value: last,
        });
        tags.push(Tag {
            key: "next-rotation-date",
            value: next,
        });
    }
    tags
}

/// (id, active, created, last used) of the user's keys, oldest first.
fn keys_of(c: &Cred) -> Vec<(&str, bool, i64, Option<i64>)> {
    let mut keys = vec![(c.id.as_str(), c.active, c.created, c.last_used)];
    if let Some(newer) = &c.newer {
        keys.push((newer.id.as_str(), true, newer.created, newer.last_used));
    }
    keys
}

fn write_user(world: &World, c: &Cred, files: &mut AccountFiles) -> Result<()> {
    let account = &world.spec.accounts[c.account];
    let region = &world.spec.regions[c.region];
    let arn = format!("arn:aws:iam::{account}:user/{}", c.name);
    let user_created = c.created - 30 * DAY;
    let keys = keys_of(c);
    let service = ["s3", "sqs", "dynamodb", "bedrock", "logs"][(c.index % 5) as usize];
    let mut row = vec![
        c.name.clone(),
        arn.clone(),
        iso(user_created),
        "false".into(),
        "N/A".into(),
        "N/A".into(),
        "N/A".into(),
        "false".into(),
    ];
    for slot in 0..2 {
        match keys.get(slot) {
            Some(&(_, active, created, used)) => {
                let (used, region, service) = match used {
                    Some(t) => (iso(cred::minute(t)), region.clone(), service.to_string()),
                    None => ("N/A".into(), "N/A".into(), "N/A".into()),
                };
                row.extend([active.to_string(), iso(created), used, region, service]);
            }
            None => row.extend(absent_key()),
        }
    }
    row.extend(no_certificates());
    files.row(&row)?;
    files.users.push(&serde_json::json!({
        "Path": "/", "UserName": c.name, "UserId": c.user_id, "Arn": arn,
        "CreateDate": iso(user_created),
    }))?;
    let metadata: Vec<serde_json::Value> = keys
        .iter()
        .map(|&(id, active, created, _)| {
            serde_json::json!({
                "UserName": c.name, "AccessKeyId": id,
                "Status": if active { "Active" } else { "Inactive" }, "CreateDate": iso(created),
            })
        })
        .collect();
    files
        .keys
        .push(&serde_json::json!({ "AccessKeyMetadata": metadata }))?;
    for &(id, _, _, used) in &keys {
        let last = match used {
            Some(t) => serde_json::json!({
                "LastUsedDate": iso(cred::minute(t)), "ServiceName": service, "Region": region,
            }),
            None => serde_json::json!({ "ServiceName": "N/A", "Region": "N/A" }),
        };
        files.last_used.push(&serde_json::json!({
            "AccessKeyId": id, "UserName": c.name, "AccessKeyLastUsed": last,
        }))?;
    }
    files
        .tags
        .push(&serde_json::json!({ "UserName": c.name, "Tags": user_tags(c) }))
}

fn secret_entry(world: &World, c: &Cred) -> serde_json::Value {
    let spec = world.spec;
    let account = &spec.accounts[c.account];
    let region = &spec.regions[c.region];
    let mut rng = Rng::stream(spec.seed ^ 0x5CA1_E000_0000_0030, c.index);
    let mut tags = user_tags(c);
    tags.push(Tag {
        key: "agent",
        value: format!("agent-{:08}", c.index),
    });
    tags.push(Tag {
        key: "managed-by",
        value: if c.automated {
            "rotation-pipeline"
        } else {
            "manual"
        }
        .into(),
    });
    let mut versions = serde_json::Map::new();
    versions.insert(rng.uuid(), serde_json::json!(["AWSCURRENT"]));
    versions.insert(rng.uuid(), serde_json::json!(["AWSPREVIOUS"]));
    if c.pending_since.is_some() {
        versions.insert(rng.uuid(), serde_json::json!(["AWSPENDING"]));
    }
    let mut entry = serde_json::Map::new();
    entry.insert("ARN".into(), c.id.clone().into());
    entry.insert("Name".into(), c.name.clone().into());
    entry.insert(
        "Description".into(),
        format!("credential of agent-{:08}", c.index).into(),
    );
    entry.insert("RotationEnabled".into(), c.rotation_enabled.into());
    if let (true, Some((days, as_rate))) = (c.rotation_enabled, c.rule) {
        let slug = c.name.rsplit('/').next().unwrap_or("secret");
        entry.insert(
            "RotationLambdaARN".into(),
            format!("arn:aws:lambda:{region}:{account}:function:secrets-rotation-{slug}").into(),
        );
        let rules = if as_rate {
            serde_json::json!({ "ScheduleExpression": format!("rate({days} days)") })
        } else {
            serde_json::json!({ "AutomaticallyAfterDays": days })
        };
        entry.insert("RotationRules".into(), rules);
        entry.insert(
            "NextRotationDate".into(),
            iso(c.rotated + days * DAY).into(),
        );
    }
    entry.insert("LastRotatedDate".into(), iso(c.rotated).into());
    let last_changed = c.pending_since.unwrap_or(c.rotated + 5);
    entry.insert("LastChangedDate".into(), iso(last_changed).into());
    if let Some(t) = c.last_used {
        entry.insert("LastAccessedDate".into(), iso(t).into());
    }
    entry.insert(
        "Tags".into(),
        serde_json::to_value(&tags).unwrap_or_default(),
    );
    entry.insert("SecretVersionsToStages".into(), versions.into());
    entry.insert("CreatedDate".into(), iso(c.created).into());
    entry.into()
}

/// `inventory.toml`, written as the credentials are walked.
struct Inventory {
    path: PathBuf,
    w: BufWriter<File>,
}

impl Inventory {
    fn open(world: &World, out: &Path) -> Result<Self> {
        let path = out.join(super::super::write::INVENTORY);
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        let mut inventory = Inventory {
            w: BufWriter::with_capacity(256 * 1024, file),
            path,
        };
        let spec = world.spec;
        let mut head = format!(
            "# Declared inventory of a synthetic fleet (credaudit generate).\n\
             # seed = {}, credentials = {}, accounts = {}, days = {}, as-of {}.\n\
             # No [policy] table: the default class intervals apply (A 14, B 30, C 90, D 365 days).\n",
            spec.seed,
            spec.credentials,
            spec.accounts.len(),
            spec.days,
            zulu(world.now)
        );
        for (id, active) in OWNERS {
            let status = if active { "active" } else { "departed" };
            head.push_str(&format!(
                "\n[[owners]]\nid = \"{id}\"\nname = \"{id}\"\nemail = \"{id}@example.com\"\nstatus = \"{status}\"\n"
            ));
        }
        inventory.write(&head)?;
        Ok(inventory)
    }

    fn write(&mut self, text: &str) -> Result<()> {
        self.w
            .write_all(text.as_bytes())
            .map_err(|e| Error::io(&self.path, e))
    }

    fn declare(&mut self, world: &World, c: &Cred, max_uses: Option<u64>) -> Result<()> {
        if !c.declared {
            return Ok(());
        }
        self.entry(world, c, &c.id, max_uses)?;
        if let (Some(newer), true) = (&c.newer, c.observed) {
            self.entry(world, c, &newer.id, None)?;
        }
        Ok(())
    }

    /// One `[[credentials]]` table; every string in it is generated (ids, names, fixed words).
    fn entry(&mut self, world: &World, c: &Cred, id: &str, max_uses: Option<u64>) -> Result<()> {
        let kind = match c.kind {
            Kind::Key => "iam-access-key",
            Kind::Secret => "secret",
            Kind::External(k) => k.as_str(),
        };
        let mut text = format!("\n[[credentials]]\nid = \"{id}\"\nkind = \"{kind}\"\n");
        if let Some(class) = c.class {
            text.push_str(&format!("class = \"{}\"\n", class.as_str()));
        }
        if let Some(owner) = c.owner_id() {
            text.push_str(&format!("owner = \"{owner}\"\n"));
        }
        text.push_str(&format!(
            "consumers = [\"agent-{:08}\"]\nautomated = {}\n",
            c.index, c.automated
        ));
        if let Some(uses) = max_uses {
            text.push_str(&format!("max_uses = {uses}\n"));
        }
        if matches!(c.kind, Kind::Key | Kind::Secret) {
            text.push_str(&format!(
                "account = \"{}\"\n",
                world.spec.accounts[c.account]
            ));
        }
        text.push_str(&format!(
            "description = \"{kind} of agent-{:08}\"\n",
            c.index
        ));
        self.write(&text)
    }

    fn finish(mut self) -> Result<()> {
        self.w.flush().map_err(|e| Error::io(&self.path, e))
    }
}

/// `expected-findings.json`.
pub(super) fn write_truth(truth: &GroundTruth, out: &Path) -> Result<()> {
    let path = out.join(super::super::write::EXPECTED);
    let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
    let mut w = BufWriter::new(file);
    serde_json::to_writer_pretty(&mut w, truth)
        .map_err(std::io::Error::from)
        .and_then(|()| w.write_all(b"\n"))
        .and_then(|()| w.flush())
        .map_err(|e| Error::io(&path, e))
}
