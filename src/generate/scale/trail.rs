//! CloudTrail logs of a scale fleet, as S3 delivers them: gzip files of `{"Records": […]}` under
//! `cloudtrail/AWSLogs/<account>/CloudTrail/<region>/<yyyy>/<mm>/<dd>/`, at most a few thousand
//! records each, one day at a time. Each day's calls are regenerated hour by hour from the
//! principals' compact patterns, sorted by (account, region, time) with compact keys, and written
//! out before the next day, so memory holds one day of calls.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;

use super::super::rng::Rng;
use super::Progress;
use super::cred::{DAY, World};
use super::usage::{self, Call, FOREIGN, NEW_IP, OPS, Principal, RARE_BASE, RARE_OPS, SECRET_READ};
use crate::error::{Error, Result};

/// Records per file at most.
const PER_FILE: usize = 2_500;
const FILE_STREAM: u64 = 0x5CA1_E000_0000_0050;
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// Regions a planted call may come from: the first one the spec does not list.
const FAR_REGIONS: [&str; 6] = [
    "ap-southeast-1",
    "sa-east-1",
    "af-south-1",
    "me-south-1",
    "ap-northeast-3",
    "il-central-1",
];
const USER_AGENT: &str =
    "Boto3/1.34.2 md/Botocore#1.34.2 ua/2.0 os/linux#6.1.0 md/arch#x86_64 lang/python#3.12.1";

/// One call of the hour, with its sort key.
struct Row {
    account: u16,
    region: u8,
    hour: u32,
    second: u16,
    principal: u32,
    seq: u32,
    call: Call,
}

/// Writes the CloudTrail logs of `principals` under `out/cloudtrail`.
pub(super) fn write(
    world: &World,
    principals: &[Principal],
    out: &Path,
    progress: &Progress,
) -> Result<()> {
    // Records are formatted here and compressed by a second thread, a few files in flight.
    std::thread::scope(|scope| {
        let (send, receive) = std::sync::mpsc::sync_channel::<(PathBuf, Vec<u8>)>(4);
        let compressor = scope.spawn(move || compress_all(receive));
        let walked = walk(world, principals, out, send, progress);
        let compressed = compressor.join().unwrap_or_else(|_| {
            Err(Error::Usage(
                "generate: the compressing thread failed".into(),
            ))
        });
        compressed?;
        let (records, files) = walked?;
        progress.note(&format!("{records} CloudTrail records in {files} files"));
        Ok(())
    })
}

/// Writes each (path, JSON) it receives as a gzip file, until the sender hangs up.
fn compress_all(receive: std::sync::mpsc::Receiver<(PathBuf, Vec<u8>)>) -> Result<()> {
    for (path, bytes) in receive {
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        let mut gz = GzEncoder::new(BufWriter::with_capacity(1 << 18, file), Compression::fast());
        gz.write_all(&bytes)
            .and_then(|()| gz.finish())
            .and_then(|mut w| w.flush())
            .map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}

/// Regenerates the calls a day at a time and hands each file to `send`; returns the numbers of
/// records and files.
fn walk(
    world: &World,
    principals: &[Principal],
    out: &Path,
    send: std::sync::mpsc::SyncSender<(PathBuf, Vec<u8>)>,
    progress: &Progress,
) -> Result<(u64, u64)> {
    let foreign = FAR_REGIONS
        .iter()
        .find(|r| !world.spec.regions.iter().any(|s| s == *r))
        .copied()
        .unwrap_or("ap-southeast-1");
    let mut writer = Writer {
        world,
        principals,
        root: out.join("cloudtrail").join("AWSLogs"),
        foreign,
        files: 0,
        send,
    };
    let mut rows: Vec<Row> = Vec::new();
    let mut calls = Vec::new();
    let hours = world.trail.hours;
    let mut records: u64 = 0;
    let day_of = |hour: u32| world.trail.time(hour).div_euclid(DAY);
    for hour in 0..hours {
        for (index, p) in principals.iter().enumerate() {
            usage::calls_in_hour(world, p, hour, &mut calls);
            rows.extend(calls.iter().enumerate().map(|(seq, &call)| Row {
                account: p.account,
                region: call.region,
                hour,
                second: call.second,
                principal: index as u32,
                seq: seq as u32,
                call,
            }));
        }
        // A day of calls at a time, so files hold a few thousand records even in a small fleet.
        if hour + 1 < hours && day_of(hour + 1) == day_of(hour) {
            continue;
        }
        rows.sort_unstable_by_key(|r| (r.account, r.region, r.hour, r.second, r.principal, r.seq));
        for group in rows.chunk_by(|a, b| (a.account, a.region) == (b.account, b.region)) {
            for chunk in group.chunks(PER_FILE) {
                writer.file(chunk)?;
            }
        }
        records += rows.len() as u64;
        rows.clear();
        progress.step("CloudTrail hours", u64::from(hour) + 1, u64::from(hours));
    }
    Ok((records, writer.files))
}

struct Writer<'a> {
    world: &'a World<'a>,
    principals: &'a [Principal],
    root: PathBuf,
    foreign: &'a str,
    files: u64,
    send: std::sync::mpsc::SyncSender<(PathBuf, Vec<u8>)>,
}

impl Writer<'_> {
    fn region(&self, code: u8) -> &str {
        if code >= FOREIGN {
            self.foreign
        } else {
            &self.world.spec.regions[code as usize]
        }
    }

    /// One delivery file of `rows` (one account and region, sorted by time).
    fn file(&mut self, rows: &[Row]) -> Result<()> {
        let Some(last) = rows.last() else {
            return Ok(());
        };
        let spec = self.world.spec;
        let account = &spec.accounts[rows[0].account as usize];
        let region = self.region(rows[0].region).to_string();
        let delivered = time(self.world.trail.time(last.hour) + i64::from(last.second) + 5 * 60);
        let mut rng = Rng::stream(spec.seed ^ FILE_STREAM, self.files);
        self.files += 1;
        let dir = self
            .root
            .join(account)
            .join("CloudTrail")
            .join(&region)
            .join(delivered.format("%Y/%m/%d").to_string());
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let path = dir.join(format!(
            "{account}_CloudTrail_{region}_{}_{}.json.gz",
            delivered.format("%Y%m%dT%H%MZ"),
            rng.chars(ALNUM, 16)
        ));
        let mut buffer = Vec::with_capacity(rows.len() * 900 + 16);
        buffer.extend_from_slice(b"{\"Records\":[");
        for (n, row) in rows.iter().enumerate() {
            if n > 0 {
                buffer.push(b',');
            }
            self.record(&mut buffer, &mut rng, row);
        }
        buffer.extend_from_slice(b"]}\n");
        // A closed channel means the compressor stopped on an error, which `write` reports.
        let _ = self.send.send((path, buffer));
        Ok(())
    }

    /// One record. Every string in it is generated: ids, names, fixed words, validated account
    /// ids and region names, so none needs escaping.
    fn record(&self, out: &mut Vec<u8>, rng: &mut Rng, row: &Row) {
        let p = &self.principals[row.principal as usize];
        let account = &self.world.spec.accounts[p.account as usize];
        let call = &row.call;
        let (source, name, read_only, data) = match call.op {
            SECRET_READ => (
                "secretsmanager.amazonaws.com",
                "GetSecretValue",
                true,
                false,
            ),
            op if op >= RARE_BASE => {
                let (source, name) = RARE_OPS[(op - RARE_BASE) as usize];
                (source, name, false, false)
            }
            op => OPS[op as usize],
        };
        let when = time(self.world.trail.time(row.hour) + i64::from(call.second))
            .format("%Y-%m-%dT%H:%M:%SZ");
        let _ = write!(out, "{{\"eventVersion\":\"1.09\",\"userIdentity\":");
        let caller = if p.secret {
            let role = format!(
                "arn:aws:sts::{account}:assumed-role/agent-runtime/agent-{:08}",
                p.index
            );
            let _ = write!(
                out,
                "{{\"type\":\"AssumedRole\",\"principalId\":\"AROA{}:agent-{:08}\",\"arn\":\"{role}\",\"accountId\":\"{account}\",\"accessKeyId\":\"{}\",\"sessionContext\":{{\"sessionIssuer\":{{\"type\":\"Role\",\"arn\":\"arn:aws:iam::{account}:role/agent-runtime\",\"accountId\":\"{account}\",\"userName\":\"agent-runtime\"}},\"attributes\":{{\"mfaAuthenticated\":\"false\"}}}}}}",
                &p.principal_id[4..],
                p.index,
                p.principal_id
            );
            role
        } else {
            let arn = format!("arn:aws:iam::{account}:user/{}", p.user);
            let _ = write!(
                out,
                "{{\"type\":\"IAMUser\",\"principalId\":\"{}\",\"arn\":\"{arn}\",\"accountId\":\"{account}\",\"accessKeyId\":\"{}\",\"userName\":\"{}\"}}",
                p.principal_id, p.id, p.user
            );
            arn
        };
        let _ = write!(
            out,
            ",\"eventTime\":\"{when}\",\"eventSource\":\"{source}\",\"eventName\":\"{name}\",\"awsRegion\":\"{}\",\"sourceIPAddress\":\"{}\",\"userAgent\":\"{USER_AGENT}\"",
            self.region(call.region),
            ip(p.account, call.ip)
        );
        if call.auth_error {
            let (code, action) = if p.secret {
                ("AccessDeniedException", "secretsmanager:GetSecretValue")
            } else {
                ("AccessDenied", name)
            };
            let _ = write!(
                out,
                ",\"errorCode\":\"{code}\",\"errorMessage\":\"User: {caller} is not authorized to perform: {action}\""
            );
        }
        if call.op == SECRET_READ {
            let _ = write!(out, ",\"requestParameters\":{{\"secretId\":\"{}\"}}", p.id);
        } else {
            out.extend_from_slice(b",\"requestParameters\":null");
        }
        let _ = write!(
            out,
            ",\"responseElements\":null,\"requestID\":\"{}\",\"eventID\":\"{}\",\"readOnly\":{read_only},\"eventType\":\"AwsApiCall\",\"managementEvent\":{},\"recipientAccountId\":\"{account}\",\"eventCategory\":\"{}\"}}",
            rng.uuid(),
            rng.uuid(),
            !data,
            if data { "Data" } else { "Management" }
        );
    }
}

fn time(t: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(t, 0).unwrap_or_default()
}

/// The source IP of an IP code: the account's NAT pool, or an address never seen before.
fn ip(account: u16, code: u8) -> String {
    if code >= NEW_IP {
        return format!("185.220.101.{}", u16::from(code - NEW_IP) + 1);
    }
    let a = u32::from(account);
    format!(
        "54.{}.{}.{}",
        10 + a % 200,
        20 + u32::from(code) * 17,
        1 + (a * 31 + u32::from(code) * 7) % 250
    )
}
