//! Writes a generated fleet to disk: the export directory in AWS CLI shapes, `inventory.toml`,
//! `history.jsonl` and `expected-findings.json`. Every file streams through a `BufWriter`, and
//! nothing depends on hash order, so the same fleet gives the same bytes.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::ser::PrettyFormatter;

use super::GroundTruth;
use super::fleet::{Account, Fleet, Key, RootKey, Secret, Ts, User};
use crate::error::{Error, Result};

/// The file names the generator owns inside the output directory.
pub(super) const INVENTORY: &str = "inventory.toml";
pub(super) const HISTORY: &str = "history.jsonl";
pub(super) const EXPECTED: &str = "expected-findings.json";

/// The credential report header, exactly as IAM returns it.
const REPORT_HEADER: [&str; 22] = crate::collect::credential_report::COLUMNS;

/// Writes every file of the fleet into `out` (which exists).
pub(super) fn write_all(
    fleet: &Fleet,
    truth: &GroundTruth,
    header: &str,
    out: &Path,
) -> Result<()> {
    for (account_index, account) in fleet.accounts.iter().enumerate() {
        let iam = out.join("aws").join(&account.id).join("iam");
        create_dir(&iam)?;
        write_credential_report(account, &iam.join("credential-report.csv"))?;
        write_json(&iam.join("list-users.json"), &ListUsers(account))?;
        write_json(&iam.join("list-access-keys.json"), &ListAccessKeys(account))?;
        write_json(
            &iam.join("get-access-key-last-used.json"),
            &LastUsed(account),
        )?;
        write_json(&iam.join("list-user-tags.json"), &UserTags(account))?;
        for (region_index, region) in fleet.regions.iter().enumerate() {
            let dir = out
                .join("aws")
                .join(&account.id)
                .join("secretsmanager")
                .join(region);
            create_dir(&dir)?;
            // Half the files carry epoch-second dates, as some CLI configurations print them.
            let epoch = (account_index + region_index) % 2 == 1;
            let list = ListSecrets {
                secrets: &account.secrets[region_index],
                epoch,
            };
            write_json(&dir.join("list-secrets.json"), &list)?;
        }
    }
    write_inventory(fleet, header, &out.join(INVENTORY))?;
    write_history(fleet, &out.join(HISTORY))?;
    let path = out.join(EXPECTED);
    write_with(&path, |w| {
        serde_json::to_writer_pretty(&mut *w, truth)?;
        w.write_all(b"\n")
    })
}

fn create_dir(path: &Path) -> Result<()> {
    fs::create_dir_all(path).map_err(|e| Error::io(path, e))
}

/// Creates `path` and streams `body` into it through a buffer.
fn write_with(
    path: &Path,
    body: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut writer = BufWriter::new(file);
    body(&mut writer)
        .and_then(|()| writer.flush())
        .map_err(|e| Error::io(path, e))
}

/// JSON indented by four spaces, as the AWS CLI prints it.
fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    write_with(path, |w| {
        let mut serializer =
            serde_json::Serializer::with_formatter(&mut *w, PrettyFormatter::with_indent(b"    "));
        value.serialize(&mut serializer)?;
        w.write_all(b"\n")
    })
}

/// `2026-10-03T14:22:05+00:00`, the form of the credential report and the CLI's JSON.
fn iso(t: Ts) -> String {
    t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

// ---------------------------------------------------------------------------------------------
// IAM

fn write_credential_report(account: &Account, path: &Path) -> Result<()> {
    write_with(path, |w| {
        let mut csv = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(&mut *w);
        csv.write_record(REPORT_HEADER)?;
        csv.write_record(root_row(account))?;
        for user in &account.users {
            csv.write_record(user_row(account, user))?;
        }
        csv.flush()
    })
}

fn root_row(account: &Account) -> Vec<String> {
    let root = &account.root;
    let mut row = vec![
        "<root_account>".to_string(),
        format!("arn:aws:iam::{}:root", account.id),
        iso(root.created),
        "not_supported".into(),
        root.password_last_used
            .map_or_else(|| "no_information".to_string(), iso),
        "not_supported".into(),
        "not_supported".into(),
        "true".into(),
    ];
    for key in &root.keys {
        row.extend(root_key_columns(key.as_ref()));
    }
    row.extend(no_certificates());
    row
}

fn root_key_columns(key: Option<&RootKey>) -> [String; 5] {
    match key {
        None => absent_key(),
        Some(k) => {
            let (used, region, service) = match &k.last_used {
                Some(u) => (iso(u.time), u.region.clone(), u.service.clone()),
                None => na3(),
            };
            [
                k.active.to_string(),
                iso(k.last_rotated),
                used,
                region,
                service,
            ]
        }
    }
}

fn user_row(account: &Account, user: &User) -> Vec<String> {
    let (enabled, last_used, last_changed) = match &user.password {
        Some((changed, used)) => (
            "true".to_string(),
            used.map_or_else(|| "no_information".to_string(), iso),
            iso(*changed),
        ),
        None => ("false".to_string(), "N/A".to_string(), "N/A".to_string()),
    };
    let mut row = vec![
        user.name.clone(),
        user_arn(account, user),
        iso(user.created),
        enabled,
        last_used,
        last_changed,
        "N/A".into(),
        user.mfa.to_string(),
    ];
    for slot in 0..2 {
        row.extend(user.keys.get(slot).map_or_else(absent_key, key_columns));
    }
    row.extend(no_certificates());
    row
}

fn key_columns(key: &Key) -> [String; 5] {
    let (used, region, service) = match &key.last_used {
        Some(u) => (iso(u.time), u.region.clone(), u.service.clone()),
        None => na3(),
    };
    [
        key.active.to_string(),
        iso(key.created),
        used,
        region,
        service,
    ]
}

fn absent_key() -> [String; 5] {
    [
        "false".into(),
        "N/A".into(),
        "N/A".into(),
        "N/A".into(),
        "N/A".into(),
    ]
}

fn na3() -> (String, String, String) {
    ("N/A".into(), "N/A".into(), "N/A".into())
}

fn no_certificates() -> [String; 4] {
    ["false".into(), "N/A".into(), "false".into(), "N/A".into()]
}

fn user_arn(account: &Account, user: &User) -> String {
    format!("arn:aws:iam::{}:user/{}", account.id, user.name)
}

/// `{"Key": …, "Value": …}` tags.
struct Tags<'a>(&'a [(String, String)]);

impl Serialize for Tags<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Tag<'a> {
            key: &'a str,
            value: &'a str,
        }
        serializer.collect_seq(self.0.iter().map(|(key, value)| Tag { key, value }))
    }
}

/// `aws iam list-users`.
struct ListUsers<'a>(&'a Account);

impl Serialize for ListUsers<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct UserOut<'a> {
            path: &'a str,
            user_name: &'a str,
            user_id: &'a str,
            arn: String,
            create_date: String,
        }
        let account = self.0;
        let users: Vec<UserOut> = account
            .users
            .iter()
            .map(|u| UserOut {
                path: "/",
                user_name: &u.name,
                user_id: &u.user_id,
                arn: user_arn(account, u),
                create_date: iso(u.created),
            })
            .collect();
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("Users", &users)?;
        map.end()
    }
}

/// `aws iam list-access-keys`, once per user.
struct ListAccessKeys<'a>(&'a Account);

impl Serialize for ListAccessKeys<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Metadata<'a> {
            user_name: &'a str,
            access_key_id: &'a str,
            status: &'a str,
            create_date: String,
        }
        #[derive(serde::Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Output<'a> {
            access_key_metadata: Vec<Metadata<'a>>,
        }
        serializer.collect_seq(self.0.users.iter().map(|u| {
            Output {
                access_key_metadata: u
                    .keys
                    .iter()
                    .map(|k| Metadata {
                        user_name: &u.name,
                        access_key_id: &k.id,
                        status: if k.active { "Active" } else { "Inactive" },
                        create_date: iso(k.created),
                    })
                    .collect(),
            }
        }))
    }
}

/// `aws iam get-access-key-last-used`, once per key, with the key id added.
struct LastUsed<'a>(&'a Account);

impl Serialize for LastUsed<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Used<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            last_used_date: Option<String>,
            service_name: &'a str,
            region: &'a str,
        }
        #[derive(serde::Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Output<'a> {
            access_key_id: &'a str,
            user_name: &'a str,
            access_key_last_used: Used<'a>,
        }
        let outputs = self.0.users.iter().flat_map(|u| {
            u.keys.iter().map(move |k| Output {
                access_key_id: &k.id,
                user_name: &u.name,
                access_key_last_used: match &k.last_used {
                    Some(used) => Used {
                        last_used_date: Some(iso(used.time)),
                        service_name: &used.service,
                        region: &used.region,
                    },
                    None => Used {
                        last_used_date: None,
                        service_name: "N/A",
                        region: "N/A",
                    },
                },
            })
        });
        serializer.collect_seq(outputs)
    }
}

/// `aws iam list-user-tags`, once per user, with the user name added.
struct UserTags<'a>(&'a Account);

impl Serialize for UserTags<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Output<'a> {
            user_name: &'a str,
            tags: Tags<'a>,
        }
        serializer.collect_seq(self.0.users.iter().map(|u| Output {
            user_name: &u.name,
            tags: Tags(&u.tags),
        }))
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets Manager

/// A date as the CLI prints it: an ISO-8601 string, or epoch seconds with milliseconds.
struct AwsDate {
    time: Ts,
    epoch: bool,
}

impl Serialize for AwsDate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.epoch {
            let seconds = self.time.timestamp();
            // A millisecond part for realism; day-truncated dates stay on the day.
            let millis = if seconds % 86_400 == 0 {
                0
            } else {
                seconds.rem_euclid(997)
            };
            serializer.serialize_f64(seconds as f64 + millis as f64 / 1000.0)
        } else {
            serializer.serialize_str(&iso(self.time))
        }
    }
}

/// `aws secretsmanager list-secrets` for one region.
struct ListSecrets<'a> {
    secrets: &'a [Secret],
    epoch: bool,
}

impl Serialize for ListSecrets<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let epoch = self.epoch;
        let entries: Vec<SecretEntry> = self
            .secrets
            .iter()
            .map(|secret| SecretEntry { secret, epoch })
            .collect();
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("SecretList", &entries)?;
        map.end()
    }
}

struct SecretEntry<'a> {
    secret: &'a Secret,
    epoch: bool,
}

impl Serialize for SecretEntry<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let s = self.secret;
        let date = |time: Ts| AwsDate {
            time,
            epoch: self.epoch,
        };
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("ARN", &s.arn)?;
        map.serialize_entry("Name", &s.name)?;
        map.serialize_entry("Description", &s.description)?;
        map.serialize_entry("RotationEnabled", &s.rotation_enabled)?;
        if let Some(lambda) = &s.lambda_arn {
            map.serialize_entry("RotationLambdaARN", lambda)?;
        }
        if let Some(rule) = s.rotation {
            if rule.as_rate {
                let rules = [("ScheduleExpression", format!("rate({} days)", rule.days))];
                map.serialize_entry("RotationRules", &Pairs(&rules))?;
            } else {
                let rules = [("AutomaticallyAfterDays", rule.days)];
                map.serialize_entry("RotationRules", &Pairs(&rules))?;
            }
        }
        if let Some(t) = s.last_rotated {
            map.serialize_entry("LastRotatedDate", &date(t))?;
        }
        map.serialize_entry("LastChangedDate", &date(s.last_changed))?;
        if let Some(t) = s.last_accessed {
            map.serialize_entry("LastAccessedDate", &date(t))?;
        }
        if let Some(t) = s.next_rotation {
            map.serialize_entry("NextRotationDate", &date(t))?;
        }
        map.serialize_entry("Tags", &Tags(&s.tags))?;
        map.serialize_entry("SecretVersionsToStages", &Pairs(&s.versions))?;
        map.serialize_entry("CreatedDate", &date(s.created))?;
        map.end()
    }
}

/// Ordered (key, value) pairs serialised as a JSON object.
struct Pairs<'a, K, V>(&'a [(K, V)]);

impl<K: Serialize, V: Serialize> Serialize for Pairs<'_, K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

// ---------------------------------------------------------------------------------------------
// inventory.toml and history.jsonl

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn write_inventory(fleet: &Fleet, header: &str, path: &Path) -> Result<()> {
    write_with(path, |w| {
        for line in header.lines() {
            writeln!(w, "# {line}")?;
        }
        writeln!(
            w,
            "# No [policy] table: the default class intervals apply (A 14, B 30, C 90, D 365 days)."
        )?;
        for owner in &fleet.owners {
            writeln!(w)?;
            writeln!(w, "[[owners]]")?;
            writeln!(w, "id = {}", toml_str(owner.id))?;
            writeln!(w, "name = {}", toml_str(owner.name))?;
            writeln!(w, "email = {}", toml_str(owner.email))?;
            writeln!(w, "status = {}", toml_str(owner.status.as_str()))?;
        }
        for c in &fleet.declared {
            writeln!(w)?;
            writeln!(w, "[[credentials]]")?;
            writeln!(w, "id = {}", toml_str(&c.id))?;
            writeln!(w, "kind = {}", toml_str(c.kind.as_str()))?;
            if let Some(class) = c.class {
                writeln!(w, "class = {}", toml_str(class.as_str()))?;
            }
            if let Some(owner) = &c.owner {
                writeln!(w, "owner = {}", toml_str(owner))?;
            }
            let consumers: Vec<String> = c.consumers.iter().map(|s| toml_str(s)).collect();
            writeln!(w, "consumers = [{}]", consumers.join(", "))?;
            writeln!(w, "automated = {}", c.automated)?;
            if let Some(days) = c.interval_days {
                writeln!(w, "interval_days = {days}")?;
            }
            if let Some(uses) = c.max_uses {
                writeln!(w, "max_uses = {uses}")?;
            }
            if let Some(account) = &c.account {
                writeln!(w, "account = {}", toml_str(account))?;
            }
            writeln!(w, "description = {}", toml_str(&c.description))?;
        }
        Ok(())
    })
}

fn write_history(fleet: &Fleet, path: &Path) -> Result<()> {
    #[derive(serde::Serialize)]
    struct Line<'a> {
        time: String,
        #[serde(rename = "type")]
        kind: &'a str,
        credential_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        trigger: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        fingerprint: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        details: Option<&'a str>,
    }
    write_with(path, |w| {
        for e in &fleet.events {
            let line = Line {
                time: e.time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                kind: e.kind.as_str(),
                credential_id: &e.credential,
                trigger: e.trigger.map(|t| t.as_str()),
                fingerprint: e.fingerprint.as_deref(),
                details: e.details.as_deref(),
            };
            serde_json::to_writer(&mut *w, &line)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
}
