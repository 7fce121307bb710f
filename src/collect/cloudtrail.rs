//! Reader for CloudTrail log files: turns records into lifecycle evidence (rotation events),
//! hourly usage per credential ([`UsageBucket`]) and 5-minute authentication-failure windows
//! ([`AuthWindow`]), streaming, so memory grows with the number of credentials × hours seen (and
//! the files in flight: one read window per thread) and never with the size of the logs.
//!
//! # Formats
//! Each file is sniffed, not trusted by its name:
//! - CloudTrail log files as delivered to S3: `{"Records": [ … ]}`, plain or gzip (`.json.gz`,
//!   detected by its magic bytes; multi-member gzip streams are read whole);
//! - a bare JSON array of records: `[ { … }, … ]`;
//! - `aws cloudtrail lookup-events` output: `{"Events": [{"CloudTrailEvent": "<record as a JSON
//!   string>", …}], "NextToken": …}`.
//!
//! A directory is walked recursively in sorted order and its `*.json` and `*.json.gz` files are
//! read; hidden entries, symlinked directories and CloudTrail digest files (`*CloudTrail-Digest*`)
//! are left out. A file named explicitly is read whatever its name.
//!
//! Files are read in parallel, one thread per core ([`read_paths_on`] picks the number): a
//! shared counter hands them out in path order and each thread folds its files into aggregates
//! of its own, merged at the end, so the result is the same on any number of threads.
//!
//! Each record is deserialised into a small struct holding only the fields used here (strings
//! borrowed where the input holds them unescaped), whose fields tolerate any JSON type (a field
//! of an unexpected type reads as absent), and is folded into hash maps keyed by (credential,
//! hour) and (credential, 5-minute window) before the next one is read. A file is read in
//! chunks, each record parsed from its bytes as soon as it is whole (the fast road, in
//! `cloudtrail/split.rs`); a file off that road (malformed, over a limit, unusual) is read again
//! from its start by the streaming parser (a serde visitor over a `Read`), whose result or error
//! is the file's.
//!
//! # Errors and skips
//! - A truncated or corrupt gzip stream, or JSON that ends early or is malformed, stops the read
//!   with [`Error::Input`] naming the file and the record (or the compressed byte offset).
//! - A record without `userIdentity` or `eventTime`, with an `eventTime` that is not RFC 3339,
//!   without `eventVersion` or with an `eventVersion` other than `1.x`, or a lookup event without
//!   `CloudTrailEvent`, is a counted skip ([`CloudTrailData::skip_reasons`]), not an error.
//!
//! # Lifecycle evidence
//! Successful calls only (no `errorCode`), each one [`RotationEvent`] with `source = "cloudtrail"`,
//! no trigger or fingerprint, and `details = "<eventName> by <userIdentity.arn> from
//! <sourceIPAddress>"` (plus the status or version stage where the call carries one):
//!
//! | call | event type | credential id |
//! |---|---|---|
//! | `iam:CreateAccessKey` | `rotation.completed` (a new key value was issued) | `responseElements.accessKey.accessKeyId` |
//! | `iam:UpdateAccessKey` | `policy.updated` (status change, not a rotation) | `requestParameters.accessKeyId` |
//! | `iam:DeleteAccessKey` | `policy.updated` | `requestParameters.accessKeyId` |
//! | `secretsmanager:CreateSecret` | `rotation.completed` (the first value was issued, as a key's creation is) | `responseElements.arn` (or `aRN`), else `requestParameters.name` |
//! | `secretsmanager:RotateSecret` | `rotation.initiated` (the rotation function finishes it) | `requestParameters.secretId` |
//! | `secretsmanager:PutSecretValue` | `rotation.completed` when the new value becomes `AWSCURRENT` (no `versionStages`, or they include it); `rotation.initiated` when it is only staged (e.g. `AWSPENDING` by a rotation function) | `requestParameters.secretId` |
//! | `secretsmanager:UpdateSecretVersionStage` | `rotation.completed` when it moves `AWSCURRENT` to a version; else `policy.updated` | `requestParameters.secretId` |
//! | `secretsmanager:DeleteSecret` | `policy.updated` | `requestParameters.secretId` (else `responseElements.aRN`) |
//!
//! These events are evidence that a credential's value changed (they move
//! `EvalCtx::last_rotation` and appear among the report's rotation events), but they are not
//! the rotation pipeline's own record: rules about gaps in that record must only count
//! `source == "history"` events.
//!
//! # Usage
//! Every record whose `userIdentity.accessKeyId` is set counts for that key (temporary `ASIA…`
//! keys included; rules only judge credentials the scan knows). A `GetSecretValue` call also
//! counts for the secret named in `requestParameters.secretId` (and `BatchGetSecretValue` for
//! each id of `secretIdList`), as the caller gave it: ARN, partial ARN or name. Per (credential,
//! hour): calls, calls with any `errorCode`, calls with an authentication error
//! ([`AUTH_ERROR_CODES`]), and counts per source IP, region, `eventSource:eventName` and error
//! code. Per (credential, 5-minute window): all calls and authentication errors, kept only for
//! windows with at least one authentication error.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Seek};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use sha2::{Digest, Sha256};

use super::input::{self, Budgeted, Capped, LimitExceeded, Limits, RecordBudget};

mod parallel;
mod split;

use crate::error::{Error, Result};
use crate::model::{AuthWindow, Counts, EventType, RotationEvent, Timestamp, UsageBucket};

/// What a set of CloudTrail files holds, aggregated and in a deterministic order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CloudTrailData {
    /// Lifecycle evidence (`source = "cloudtrail"`), sorted by time (then credential, type).
    pub events: Vec<RotationEvent>,
    /// Hourly usage, sorted by (credential_id, hour).
    pub usage: Vec<UsageBucket>,
    /// 5-minute windows with authentication errors, sorted by (credential_id, start).
    pub auth_windows: Vec<AuthWindow>,
    /// Records seen, skipped ones included.
    pub records: u64,
    /// Records left out; the sum of `skip_reasons`.
    pub skipped: u64,
    /// Why records were left out, with how many each.
    pub skip_reasons: BTreeMap<String, u64>,
    /// Every file read, sorted.
    pub files: Vec<PathBuf>,
    /// Each file read with its size and SHA-256 (and its bytes when [`ReadOptions::keep`]),
    /// in the order of `files`.
    pub sources: Vec<TrailSource>,
    /// Records used per (account, region) they were logged for (`recipientAccountId`, else
    /// the caller's account, and `awsRegion`), sorted: what the logs cover.
    pub covered: Vec<(String, String, u64)>,
    /// Records used that name no account or region.
    pub unattributed: u64,
}

/// One CloudTrail file as read: what the raw evidence records of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailSource {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
    /// The file's bytes, when they were asked for.
    pub content: Option<Vec<u8>>,
}

/// How to read CloudTrail files.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub limits: Limits,
    /// The export directory the scan reads: a folder inside it may hold links anywhere inside
    /// it (a folder outside it, only inside that folder).
    pub export_root: Option<PathBuf>,
    /// Keep each file's bytes (for `--keep-cloudtrail`); otherwise only its size and hash.
    pub keep: bool,
}

pub use crate::model::{AUTH_ERROR_CODES, is_auth_error};

/// Length of an [`AuthWindow`] in seconds.
pub const AUTH_WINDOW_SECONDS: i64 = 300;

const HOUR_SECONDS: i64 = 3600;

/// Reads CloudTrail files and directory trees of them (see the module docs for the formats).
///
/// Files are read in sorted path order, each once even if named twice. The first malformed file
/// stops the read with an [`Error::Input`] naming it; nothing is returned half-read.
pub fn read_paths(paths: &[PathBuf]) -> Result<CloudTrailData> {
    read_paths_with(paths, &ReadOptions::default())
}

/// [`read_paths`] with limits and the choice to keep the files' bytes. A file found by walking
/// a folder must be a regular file inside that folder (a symlink may point only inside it); a
/// file named explicitly must be a regular file. Each is read once, within `options.limits`.
///
/// Files are read in parallel, one thread per core (see [`read_paths_on`]).
pub fn read_paths_with(paths: &[PathBuf], options: &ReadOptions) -> Result<CloudTrailData> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    read_paths_on(paths, options, threads)
}

/// [`read_paths_with`] on `threads` threads (at least one, at most one per file). The result
/// does not depend on the number of threads: each thread folds the files it takes into its own
/// aggregates, which are merged into sorted output at the end; when files are malformed, the
/// error is the first one's in path order, as a single thread reading them in order would have
/// stopped at it.
pub fn read_paths_on(
    paths: &[PathBuf],
    options: &ReadOptions,
    threads: usize,
) -> Result<CloudTrailData> {
    let files = list_files(paths, options)?;
    let (aggregator, sources) = parallel::read_all(&files, options, threads)?;
    let mut data = aggregator.finish(files.into_iter().map(|(f, _)| f).collect());
    data.sources = sources;
    Ok(data)
}

/// The files to read, each with the folder it must stay inside (for files found by walking),
/// sorted and each once.
fn list_files(paths: &[PathBuf], options: &ReadOptions) -> Result<Vec<(PathBuf, Option<PathBuf>)>> {
    let mut files: Vec<(PathBuf, Option<PathBuf>)> = Vec::new();
    // Canonicalized at most once, when the first folder needs it.
    let mut export_root: Option<Option<PathBuf>> = None;
    for path in paths {
        let metadata = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if metadata.is_dir() {
            let folder = input::canonical_root(path)?;
            let export_root = match &export_root {
                Some(root) => root,
                None => export_root.insert(match &options.export_root {
                    Some(root) => Some(input::canonical_root(root)?),
                    None => None,
                }),
            };
            let root = match export_root {
                Some(root) if folder.starts_with(root) => root.clone(),
                _ => folder,
            };
            let mut found = Vec::new();
            walk(path, &mut found)?;
            files.extend(found.into_iter().map(|f| (f, Some(root.clone()))));
        } else {
            files.push((path.clone(), None));
        }
    }
    files.sort();
    // Each file once, even when named twice or reached again through a symlink: a record read
    // twice would count twice.
    let mut seen = std::collections::HashSet::new();
    files.retain(|(file, _)| {
        seen.insert(std::fs::canonicalize(file).unwrap_or_else(|_| file.clone()))
    });
    Ok(files)
}

/// Buckets of `new` replace those of `previous` with the same (credential, hour); the others of
/// `previous` are kept. So a later scan's baseline needs no old logs, and reading the same logs
/// again never counts twice. Reads should cover whole hours: a bucket from logs that cover only
/// part of an hour replaces the whole hour. Sorted by (credential_id, hour). The buckets are
/// moved, not copied: a year of logs is millions of them.
pub fn merge_usage(previous: Vec<UsageBucket>, new: Vec<UsageBucket>) -> Vec<UsageBucket> {
    merge_keyed(previous, new, |a, b| {
        (a.credential_id.as_str(), a.hour).cmp(&(b.credential_id.as_str(), b.hour))
    })
}

/// Windows of `new` replace those of `previous` with the same (credential, start); the others
/// are kept. Sorted by (credential_id, start).
pub fn merge_auth_windows(previous: Vec<AuthWindow>, new: Vec<AuthWindow>) -> Vec<AuthWindow> {
    merge_keyed(previous, new, |a, b| {
        (a.credential_id.as_str(), a.start).cmp(&(b.credential_id.as_str(), b.start))
    })
}

/// `previous` and `new` merged in the order of `cmp`: of items with the same key, the last of
/// `new` wins over the last of `previous`, as inserting them into a map in that order would.
fn merge_keyed<T>(
    previous: Vec<T>,
    new: Vec<T>,
    cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> Vec<T> {
    use std::cmp::Ordering;
    // Sorted (stable), then only the last of equal keys kept.
    let last_of_each = |mut items: Vec<T>| {
        items.sort_by(&cmp);
        items.reverse();
        items.dedup_by(|a, b| cmp(a, b) == Ordering::Equal);
        items.reverse();
        items
    };
    let (previous, new) = (last_of_each(previous), last_of_each(new));
    let mut merged = Vec::with_capacity(previous.len() + new.len());
    let mut previous = previous.into_iter().peekable();
    let mut new = new.into_iter().peekable();
    loop {
        let order = match (previous.peek(), new.peek()) {
            (Some(p), Some(n)) => cmp(p, n),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => break,
        };
        match order {
            Ordering::Less => merged.extend(previous.next()),
            Ordering::Greater => merged.extend(new.next()),
            Ordering::Equal => {
                previous.next();
                merged.extend(new.next());
            }
        }
    }
    merged
}

/// The start of the last hour in which `id` was used successfully (a call without an error
/// code), from usage sorted by (credential_id, hour) as [`read_paths`] and [`merge_usage`]
/// return it. For a secret this is its last `GetSecretValue` seen in CloudTrail, to the hour;
/// `id` must be spelled as callers named the secret (ARN or name).
pub fn last_access(usage: &[UsageBucket], id: &str) -> Option<Timestamp> {
    crate::model::last_access(usage, id)
}

/// Adds the CloudTrail files under `dir` to `out`, walking sub-directories in sorted order.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .collect::<io::Result<_>>()
        .map_err(|e| Error::io(dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let file_type = entry.file_type().map_err(|e| Error::io(&path, e))?;
        if file_type.is_dir() {
            walk(&path, out)?;
        } else if (file_type.is_file() || (file_type.is_symlink() && path.is_file()))
            && (name.ends_with(".json") || name.ends_with(".json.gz"))
            && !name.contains("CloudTrail-Digest")
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Counts and hashes the bytes read from a file, so a gzip error can say how far it got and the
/// raw evidence can name the file by its SHA-256 without reading it again.
struct Counting<R> {
    inner: R,
    count: u64,
    hasher: Sha256,
}

impl<R> Counting<R> {
    fn new(inner: R) -> Self {
        Counting {
            inner,
            count: 0,
            hasher: Sha256::new(),
        }
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

const BUFFER: usize = 256 * 1024;

/// Reads one file into aggregates of its own: on the fast road ([`split`]) when it takes it,
/// else with the streaming parser, which reads the same descriptor (or kept bytes) again from
/// the start and whose result, or error, is then the file's. `buffer` is the fast road's
/// window, kept from file to file.
fn read_file(
    path: &Path,
    root: Option<&Path>,
    options: &ReadOptions,
    buffer: &mut Vec<u8>,
) -> Result<(Aggregator, TrailSource)> {
    let limits = &options.limits;
    let opened = input::open_regular(path, root, limits)?;
    let size = opened.size;
    let mut file = opened.file;
    let content = if options.keep {
        // The descriptor already opened (and checked against the root) is what is read.
        let mut bytes = Vec::with_capacity(size as usize);
        // Never past the limit, even if the file grows while it is read.
        (&file)
            .take(limits.max_file_bytes + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(path, e))?;
        if bytes.len() as u64 > limits.max_file_bytes {
            return Err(input::too_large(
                path,
                bytes.len() as u64,
                limits.max_file_bytes,
            ));
        }
        Some(bytes)
    } else {
        None
    };
    let fast = match &content {
        Some(bytes) => read_fast(&bytes[..], size, limits, buffer),
        None => read_fast(
            (&file).take(limits.max_file_bytes + 1),
            size,
            limits,
            buffer,
        ),
    };
    let (aggregator, sha256) = match fast {
        Some(done) => done,
        None => match &content {
            Some(bytes) => read_streaming(path, &bytes[..], size, limits)?,
            None => {
                file.seek(io::SeekFrom::Start(0))
                    .map_err(|e| Error::io(path, e))?;
                read_streaming(path, file.take(limits.max_file_bytes + 1), size, limits)?
            }
        },
    };
    Ok((
        aggregator,
        TrailSource {
            path: path.to_path_buf(),
            bytes: size,
            sha256,
            content,
        },
    ))
}

/// The bytes of one CloudTrail file, read as [`read_paths`] reads a file named `path` (the fast
/// road, else the streaming parser, within `limits`) without opening anything: `path` only
/// names the file in errors. `buffer` is the fast road's window, kept from file to file as
/// [`read_paths`] keeps it. For the fuzz targets and their replay (`crate::fuzzing`).
pub fn read_file_bytes(
    path: &Path,
    bytes: &[u8],
    limits: &Limits,
    buffer: &mut Vec<u8>,
) -> Result<CloudTrailData> {
    let size = bytes.len() as u64;
    if size > limits.max_file_bytes {
        return Err(input::too_large(path, size, limits.max_file_bytes));
    }
    let (aggregator, _) = match read_fast(bytes, size, limits, buffer) {
        Some(done) => done,
        None => read_streaming(path, bytes, size, limits)?,
    };
    Ok(aggregator.finish(vec![path.to_path_buf()]))
}

/// The fast road: the file's aggregates and SHA-256, or `None` when the file must be read by
/// the streaming parser (see [`split`]).
fn read_fast<R: Read>(
    source: R,
    size: u64,
    limits: &Limits,
    buffer: &mut Vec<u8>,
) -> Option<(Aggregator, String)> {
    let mut counting = Counting::new(source);
    let mut reader = BufReader::with_capacity(BUFFER, &mut counting);
    let gzip = reader.fill_buf().ok()?.starts_with(&[0x1f, 0x8b]);
    // Within the streaming parser's record budget even with its read buffers full (see
    // split::read_stream): what is accepted here is accepted there.
    let max_span = limits.max_record_bytes.saturating_sub(2 * BUFFER as u64);
    let mut aggregator = Aggregator::default();
    let outcome = if gzip {
        let decoded = Capped::new(
            flate2::read::MultiGzDecoder::new(reader),
            limits.max_decompressed_bytes,
            "the decompressed stream",
            input::MAX_DECOMPRESSED_FLAG,
        );
        split::read_stream(decoded, buffer, max_span, &mut aggregator)
    } else {
        split::read_stream(reader, buffer, max_span, &mut aggregator)
    };
    if outcome.is_err() || counting.count > limits.max_file_bytes || counting.count != size {
        return None;
    }
    Some((aggregator, crate::model::hex(&counting.hasher.finalize())))
}

/// The streaming parser: reads `source` (a file's bytes from its start) into aggregates of its
/// own, each record within the record budget and a gzip stream within its limit, and returns
/// them with the file's SHA-256; any failure is an [`Error::Input`] naming the file and the
/// record (or the compressed byte offset).
fn read_streaming<R: Read>(
    path: &Path,
    source: R,
    size: u64,
    limits: &Limits,
) -> Result<(Aggregator, String)> {
    let mut counting = Counting::new(source);
    let mut reader = BufReader::with_capacity(BUFFER, &mut counting);
    let gzip = reader
        .fill_buf()
        .map_err(|e| Error::io(path, e))?
        .starts_with(&[0x1f, 0x8b]);
    let mut aggregator = Aggregator::default();
    let outcome = parse_file(reader, gzip, limits, &mut aggregator);
    outcome.map_err(|e| {
        json_error(
            path,
            e,
            aggregator.in_array.then_some(aggregator.file_records),
            gzip.then_some((counting.count, size)),
        )
    })?;
    check_read_whole(path, counting.count, size, limits)?;
    Ok((aggregator, crate::model::hex(&counting.hasher.finalize())))
}

/// Parses one file's stream (gzip or not) into the aggregator, each record within the record
/// budget and the decompressed stream within its limit.
fn parse_file<R: Read>(
    reader: BufReader<R>,
    gzip: bool,
    limits: &input::Limits,
    aggregator: &mut Aggregator,
) -> serde_json::Result<()> {
    aggregator.file_records = 0;
    aggregator.in_array = false;
    let budget = RecordBudget::new(limits.max_record_bytes);
    if gzip {
        let decoded = Capped::new(
            flate2::read::MultiGzDecoder::new(reader),
            limits.max_decompressed_bytes,
            "the decompressed stream",
            input::MAX_DECOMPRESSED_FLAG,
        );
        parse(
            BufReader::with_capacity(
                BUFFER,
                Budgeted {
                    inner: decoded,
                    budget: Rc::clone(&budget),
                },
            ),
            aggregator,
            &budget,
        )
    } else {
        parse(
            BufReader::with_capacity(
                BUFFER,
                Budgeted {
                    inner: reader,
                    budget: Rc::clone(&budget),
                },
            ),
            aggregator,
            &budget,
        )
    }
}

/// The whole file was read (`read` of its `size` bytes), and no more than the limit: anything
/// after the end of the data would be left out of its hash.
fn check_read_whole(path: &Path, read: u64, size: u64, limits: &input::Limits) -> Result<()> {
    if read > limits.max_file_bytes {
        return Err(input::too_large(path, read, limits.max_file_bytes));
    }
    if read != size {
        // The parser stops at the end of the JSON (or the last gzip member); anything after it
        // was not read, so the hash would not be the file's. Such a file is not a log file.
        return Err(Error::input_file(
            path,
            format!(
                "{} bytes follow the end of the CloudTrail data ({read} of {size} read); expected nothing after it",
                size.saturating_sub(read)
            ),
        ));
    }
    Ok(())
}

fn parse<R: Read>(
    reader: R,
    aggregator: &mut Aggregator,
    budget: &RecordBudget,
) -> serde_json::Result<()> {
    let mut deserializer = serde_json::Deserializer::from_reader(reader);
    TopLevel { aggregator, budget }.deserialize(&mut deserializer)?;
    deserializer.end()
}

/// Turns a parse failure into an input error naming the file and where it stopped.
/// `records` holds the records completed when the failure came inside the record array;
/// `gzip` the compressed bytes read so far and the file's size.
fn json_error(
    path: &Path,
    e: serde_json::Error,
    records: Option<u64>,
    gzip: Option<(u64, u64)>,
) -> Error {
    let done = records.unwrap_or(0);
    let position = format!("line {}, column {}", e.line(), e.column());
    let location = match records {
        Some(done) => format!("record {}", done + 1),
        None => position.clone(),
    };
    if e.is_io() {
        let source = io::Error::from(e);
        if let Some(exceeded) = LimitExceeded::of(&source) {
            return Error::input(path, location, exceeded.to_string());
        }
        return match gzip {
            Some((read, size)) => Error::input(
                path,
                format!("byte offset {read}"),
                format!(
                    "the gzip stream is truncated or corrupt after {done} complete records \
                     ({read} of {size} compressed bytes read): {source}"
                ),
            ),
            None => Error::io(path, source),
        };
    }
    if e.is_eof() {
        let what = if gzip.is_some() {
            "the decompressed JSON is truncated"
        } else {
            "the JSON is truncated"
        };
        let message = match records {
            Some(done) => {
                format!("{what}: it ends early after {done} complete records ({position})")
            }
            None => format!("{what} or empty: it ends before any record; expected {EXPECTED}"),
        };
        return Error::input(path, location, message);
    }
    let message = e.to_string();
    if e.is_syntax() {
        Error::input(path, location, format!("invalid JSON: {message}"))
    } else {
        Error::input(path, location, message)
    }
}

/// The top-level value: `{"Records": […]}`, `{"Events": […]}` or `[…]`.
struct TopLevel<'a> {
    aggregator: &'a mut Aggregator,
    budget: &'a RecordBudget,
}

const EXPECTED: &str = "a CloudTrail log file ({\"Records\": [...]}), a JSON array of records, or \
                        lookup-events output ({\"Events\": [...]})";

impl<'de> DeserializeSeed<'de> for TopLevel<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopLevel<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        Records {
            aggregator: self.aggregator,
            budget: self.budget,
        }
        .visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut found = false;
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match key.0.as_deref() {
                Some("Records") => {
                    found = true;
                    map.next_value_seed(Records {
                        aggregator: &mut *self.aggregator,
                        budget: self.budget,
                    })?;
                }
                Some("Events") => {
                    found = true;
                    map.next_value_seed(Events {
                        aggregator: &mut *self.aggregator,
                        budget: self.budget,
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if found {
            Ok(())
        } else {
            Err(de::Error::custom(format!(
                "expected {EXPECTED}; found an object with neither Records nor Events"
            )))
        }
    }
}

/// The `Records` array (or a bare array): each element one record.
struct Records<'a> {
    aggregator: &'a mut Aggregator,
    budget: &'a RecordBudget,
}

impl<'de> DeserializeSeed<'de> for Records<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Records<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of CloudTrail records")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.aggregator.in_array = true;
        self.budget.start();
        while let Some(record) = seq.next_element::<Obj<RawRecord<'de>>>()? {
            self.aggregator.add(record.0);
            self.budget.start();
        }
        self.aggregator.in_array = false;
        Ok(())
    }
}

/// The `Events` array of lookup-events output: each element holds its record as a JSON string.
struct Events<'a> {
    aggregator: &'a mut Aggregator,
    budget: &'a RecordBudget,
}

impl<'de> DeserializeSeed<'de> for Events<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Events<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of lookup-events events")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.aggregator.in_array = true;
        self.budget.start();
        while let Some(event) = seq.next_element::<Obj<LookupEvent<'de>>>()? {
            self.budget.start();
            let Some(text) = event.0.and_then(|e| e.cloud_trail_event.0) else {
                self.aggregator.records += 1;
                self.aggregator.file_records += 1;
                self.aggregator.skip("lookup event without CloudTrailEvent");
                continue;
            };
            let record: Obj<RawRecord> = serde_json::from_str(&text).map_err(|e| {
                de::Error::custom(format!(
                    "the CloudTrailEvent string is not a JSON record ({e} of the string)"
                ))
            })?;
            self.aggregator.add(record.0);
        }
        self.aggregator.in_array = false;
        Ok(())
    }
}

/// One element of lookup-events' `Events`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct LookupEvent<'a> {
    #[serde(rename = "CloudTrailEvent", borrow)]
    cloud_trail_event: Text<'a>,
}

/// The fields of a CloudTrail record this reader uses; strings are borrowed from the input
/// where it holds them unescaped.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawRecord<'a> {
    #[serde(borrow)]
    event_version: Text<'a>,
    #[serde(borrow)]
    user_identity: Obj<UserIdentity<'a>>,
    #[serde(borrow)]
    event_time: Text<'a>,
    #[serde(borrow)]
    event_source: Text<'a>,
    #[serde(borrow)]
    event_name: Text<'a>,
    #[serde(borrow)]
    aws_region: Text<'a>,
    #[serde(rename = "sourceIPAddress", borrow)]
    source_ip_address: Text<'a>,
    #[serde(borrow)]
    error_code: Text<'a>,
    #[serde(borrow)]
    request_parameters: Obj<RequestParameters<'a>>,
    #[serde(borrow)]
    response_elements: Obj<ResponseElements<'a>>,
    #[serde(borrow)]
    recipient_account_id: Text<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct UserIdentity<'a> {
    #[serde(rename = "type", borrow)]
    identity_type: Text<'a>,
    #[serde(borrow)]
    arn: Text<'a>,
    #[serde(borrow)]
    access_key_id: Text<'a>,
    #[serde(borrow)]
    invoked_by: Text<'a>,
    #[serde(borrow)]
    principal_id: Text<'a>,
    #[serde(borrow)]
    account_id: Text<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RequestParameters<'a> {
    #[serde(borrow)]
    access_key_id: Text<'a>,
    #[serde(borrow)]
    status: Text<'a>,
    #[serde(borrow)]
    secret_id: Text<'a>,
    #[serde(borrow)]
    secret_id_list: TextList<'a>,
    #[serde(borrow)]
    name: Text<'a>,
    #[serde(borrow)]
    version_stage: Text<'a>,
    #[serde(borrow)]
    version_stages: TextList<'a>,
    #[serde(borrow)]
    move_to_version_id: Text<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResponseElements<'a> {
    #[serde(rename = "accessKey", borrow)]
    access_key: Obj<AccessKey<'a>>,
    #[serde(borrow)]
    arn: Text<'a>,
    #[serde(rename = "aRN", borrow)]
    a_rn: Text<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AccessKey<'a> {
    #[serde(rename = "accessKeyId", borrow)]
    access_key_id: Text<'a>,
}

/// A string field, borrowed when the input holds it unescaped; any other JSON value (number,
/// object, null, …) reads as absent, so one odd field of some service's `requestParameters`
/// cannot fail a whole file.
#[derive(Default)]
struct Text<'a>(Option<Cow<'a, str>>);

impl Text<'_> {
    /// The value when it is a non-empty string.
    fn get(&self) -> Option<&str> {
        self.0.as_deref().filter(|s| !s.is_empty())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Owned(v))))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Text<'de>, A::Error> {
                IgnoredAny.visit_seq(seq)?;
                Ok(Text(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Text<'de>, A::Error> {
                IgnoredAny.visit_map(map)?;
                Ok(Text(None))
            }
        }
        deserializer.deserialize_any(TextVisitor)
    }
}

/// A list of strings; a single string is a list of one, anything else an empty list.
#[derive(Default)]
struct TextList<'a>(Vec<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for TextList<'a> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = TextList<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<TextList<'de>, E> {
                Ok(TextList(vec![Cow::Borrowed(v)]))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TextList<'de>, E> {
                Ok(TextList(vec![Cow::Owned(v.to_owned())]))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<TextList<'de>, E> {
                Ok(TextList::default())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<TextList<'de>, E> {
                Ok(TextList::default())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<TextList<'de>, E> {
                Ok(TextList::default())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<TextList<'de>, E> {
                Ok(TextList::default())
            }
            fn visit_unit<E: de::Error>(self) -> Result<TextList<'de>, E> {
                Ok(TextList::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TextList<'de>, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Text<'de>>()? {
                    items.extend(item.0);
                }
                Ok(TextList(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TextList<'de>, A::Error> {
                IgnoredAny.visit_map(map)?;
                Ok(TextList::default())
            }
        }
        deserializer.deserialize_any(ListVisitor)
    }
}

/// An object field read into `T`; any other JSON value reads as absent.
struct Obj<T>(Option<T>);

impl<T> Default for Obj<T> {
    fn default() -> Self {
        Obj(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjVisitor<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|t| Obj(Some(t)))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Obj<T>, E> {
                Ok(Obj(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Obj<T>, A::Error> {
                IgnoredAny.visit_seq(seq)?;
                Ok(Obj(None))
            }
        }
        deserializer.deserialize_any(ObjVisitor(PhantomData))
    }
}

/// Counters of one credential in one hour, before they become a [`UsageBucket`].
#[derive(Default)]
struct HourCounts {
    calls: u64,
    errors: u64,
    auth_errors: u64,
    source_ips: Counts,
    regions: Counts,
    operations: Counts,
    error_codes: Counts,
}

/// Adds one to `map[key]`, allocating the key only the first time it is seen.
fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(count) => *count += 1,
        None => {
            map.insert(key.to_owned(), 1);
        }
    }
}

/// Adds the counts of `other` to those of `map`.
fn add_counts(map: &mut BTreeMap<String, u64>, other: BTreeMap<String, u64>) {
    if map.is_empty() {
        *map = other;
        return;
    }
    for (key, count) in other {
        *map.entry(key).or_default() += count;
    }
}

/// Everything read so far, folded record by record.
#[derive(Default)]
struct Aggregator {
    /// Credential ids, interned: the maps below key on the index.
    ids: HashMap<String, u32>,
    names: Vec<String>,
    hours: HashMap<(u32, i64), HourCounts>,
    /// (calls, auth errors) per credential and 5-minute window start (epoch seconds).
    windows: HashMap<(u32, i64), (u64, u64)>,
    events: Vec<RotationEvent>,
    records: u64,
    skipped: u64,
    skip_reasons: BTreeMap<String, u64>,
    /// Records completed in the file being read, and whether its record array is open (for
    /// error locations).
    file_records: u64,
    in_array: bool,
    /// Scratch space for `eventSource:eventName`.
    operation: String,
    /// Records used per account and region (account → region → records) they were logged for.
    covered: BTreeMap<String, BTreeMap<String, u64>>,
    /// Records used that name no account or region.
    unattributed: u64,
}

/// What one record contributes to usage, borrowed from it.
struct Call<'r> {
    seconds: i64,
    operation: &'r str,
    region: Option<&'r str>,
    source_ip: Option<&'r str>,
    error_code: Option<&'r str>,
}

impl Aggregator {
    fn skip(&mut self, reason: &str) {
        self.skipped += 1;
        bump(&mut self.skip_reasons, reason);
    }

    /// Adds what `other` read (another file, or another thread's files) to this.
    fn absorb(&mut self, other: Aggregator) {
        if self.records == 0 && self.names.is_empty() && self.events.is_empty() {
            // Nothing read yet: take `other` whole.
            *self = other;
            return;
        }
        let index: Vec<u32> = other.names.iter().map(|name| self.intern(name)).collect();
        for ((id, hour), counts) in other.hours {
            let mine = self.hours.entry((index[id as usize], hour)).or_default();
            mine.calls += counts.calls;
            mine.errors += counts.errors;
            mine.auth_errors += counts.auth_errors;
            mine.source_ips.absorb(counts.source_ips);
            mine.regions.absorb(counts.regions);
            mine.operations.absorb(counts.operations);
            mine.error_codes.absorb(counts.error_codes);
        }
        for ((id, start), (calls, auth_errors)) in other.windows {
            let mine = self.windows.entry((index[id as usize], start)).or_default();
            mine.0 += calls;
            mine.1 += auth_errors;
        }
        self.events.extend(other.events);
        self.records += other.records;
        self.skipped += other.skipped;
        add_counts(&mut self.skip_reasons, other.skip_reasons);
        for (account, regions) in other.covered {
            add_counts(self.covered.entry(account).or_default(), regions);
        }
        self.unattributed += other.unattributed;
    }

    /// The index of a credential id, added the first time it is seen.
    fn intern(&mut self, credential: &str) -> u32 {
        match self.ids.get(credential) {
            Some(&index) => index,
            None => {
                let index = self.names.len() as u32;
                self.ids.insert(credential.to_owned(), index);
                self.names.push(credential.to_owned());
                index
            }
        }
    }

    fn add(&mut self, record: Option<RawRecord>) {
        self.records += 1;
        self.file_records += 1;
        let Some(record) = record else {
            self.skip("record is not a JSON object");
            return;
        };
        match record.event_version.get() {
            None => return self.skip("missing eventVersion"),
            Some(v) if !v.starts_with("1.") => {
                let shown: String = v.chars().take(16).collect();
                return self.skip(&format!("unsupported eventVersion {shown}"));
            }
            Some(_) => {}
        }
        let Some(identity) = &record.user_identity.0 else {
            return self.skip("missing userIdentity");
        };
        let Some(time) = record.event_time.get() else {
            return self.skip("missing eventTime");
        };
        let Ok(time) = DateTime::parse_from_rfc3339(time) else {
            return self.skip("eventTime is not an RFC 3339 time");
        };
        let time = time.with_timezone(&Utc);
        // The account whose trail logged the call (else the caller's), and its region: what
        // this log is evidence about, for coverage.
        let account = record
            .recipient_account_id
            .get()
            .or(identity.account_id.get())
            .filter(|a| crate::model::is_account_id(a));
        let region = record
            .aws_region
            .get()
            .filter(|r| crate::model::is_region_name(r));
        self.cover(account, region, 1);
        let source = record.event_source.get().unwrap_or("unknown");
        let name = record.event_name.get().unwrap_or("unknown");
        self.operation.clear();
        self.operation.push_str(source);
        self.operation.push(':');
        self.operation.push_str(name);
        let operation = std::mem::take(&mut self.operation);
        let call = Call {
            seconds: time.timestamp(),
            operation: &operation,
            region: record.aws_region.get(),
            source_ip: record.source_ip_address.get(),
            error_code: record.error_code.get(),
        };
        if let Some(key) = identity.access_key_id.get() {
            self.count(key, &call, 1);
        }
        if let Some(request) = record.request_parameters.0.as_ref() {
            for_each_secret_read(
                source,
                name,
                request.secret_id.get(),
                &request.secret_id_list.0,
                |secret| self.count(secret, &call, 1),
            );
        }
        if call.error_code.is_none() {
            self.lifecycle(&record, identity, source, name, time);
        }
        self.operation = operation;
    }

    /// Counts `n` calls alike (`call`) for `credential`: its hour and its 5-minute window.
    fn count(&mut self, credential: &str, call: &Call, n: u64) {
        let index = self.intern(credential);
        let auth = call.error_code.is_some_and(is_auth_error);
        let hour = self
            .hours
            .entry((index, call.seconds.div_euclid(HOUR_SECONDS) * HOUR_SECONDS))
            .or_default();
        hour.calls += n;
        hour.operations.add(call.operation, n);
        if let Some(region) = call.region {
            hour.regions.add(region, n);
        }
        if let Some(ip) = call.source_ip {
            hour.source_ips.add(ip, n);
        }
        if let Some(code) = call.error_code {
            hour.errors += n;
            hour.error_codes.add(code, n);
            if auth {
                hour.auth_errors += n;
            }
        }
        let window = self
            .windows
            .entry((
                index,
                call.seconds.div_euclid(AUTH_WINDOW_SECONDS) * AUTH_WINDOW_SECONDS,
            ))
            .or_default();
        window.0 += n;
        if auth {
            window.1 += n;
        }
    }

    /// Counts `n` records logged for `account` and `region` (either dropped unless it is an
    /// account id or a region name): what the logs cover.
    fn cover(&mut self, account: Option<&str>, region: Option<&str>, n: u64) {
        let account = account.filter(|a| crate::model::is_account_id(a));
        let region = region.filter(|r| crate::model::is_region_name(r));
        match (account, region) {
            (Some(account), Some(region)) => {
                // Looked up by `&str`: a key is allocated only the first time it is seen.
                let regions = match self.covered.get_mut(account) {
                    Some(regions) => regions,
                    None => self.covered.entry(account.to_string()).or_default(),
                };
                match regions.get_mut(region) {
                    Some(count) => *count += n,
                    None => {
                        regions.insert(region.to_string(), n);
                    }
                }
            }
            _ => self.unattributed += n,
        }
    }

    /// Records a successful lifecycle call (see the mapping in the module docs).
    fn lifecycle(
        &mut self,
        record: &RawRecord,
        identity: &UserIdentity,
        source: &str,
        name: &str,
        time: Timestamp,
    ) {
        let Some((event_type, credential, note)) = lifecycle_event(record, source, name) else {
            return;
        };
        let Some(credential_id) = credential else {
            return;
        };
        let who = identity
            .arn
            .get()
            .or(identity.invoked_by.get())
            .or(identity.principal_id.get())
            .or(identity.identity_type.get())
            .unwrap_or("unknown");
        let from = record.source_ip_address.get().unwrap_or("unknown");
        let note = note.map(|n| format!(" ({n})")).unwrap_or_default();
        self.events.push(RotationEvent {
            time,
            credential_id,
            event_type,
            trigger: None,
            fingerprint: None,
            details: Some(format!("{name}{note} by {who} from {from}")),
            source: "cloudtrail".to_string(),
        });
    }

    fn finish(self, files: Vec<PathBuf>) -> CloudTrailData {
        let at = |seconds: i64| DateTime::<Utc>::from_timestamp(seconds, 0);
        let names = &self.names;
        let mut usage: Vec<UsageBucket> = self
            .hours
            .into_iter()
            .filter_map(|((index, hour), c)| {
                Some(UsageBucket {
                    credential_id: names[index as usize].clone(),
                    hour: at(hour)?,
                    calls: c.calls,
                    errors: c.errors,
                    auth_errors: c.auth_errors,
                    source_ips: c.source_ips,
                    regions: c.regions,
                    operations: c.operations,
                    error_codes: c.error_codes,
                })
            })
            .collect();
        usage.sort_by(|a, b| {
            (a.credential_id.as_str(), a.hour).cmp(&(b.credential_id.as_str(), b.hour))
        });
        let mut auth_windows: Vec<AuthWindow> = self
            .windows
            .into_iter()
            .filter(|(_, (_, auth))| *auth > 0)
            .filter_map(|((index, start), (calls, auth_errors))| {
                Some(AuthWindow {
                    credential_id: names[index as usize].clone(),
                    start: at(start)?,
                    calls,
                    auth_errors,
                })
            })
            .collect();
        auth_windows.sort_by(|a, b| {
            (a.credential_id.as_str(), a.start).cmp(&(b.credential_id.as_str(), b.start))
        });
        let mut events = self.events;
        events.sort_by(|a, b| {
            (a.time, &a.credential_id, a.event_type, &a.details).cmp(&(
                b.time,
                &b.credential_id,
                b.event_type,
                &b.details,
            ))
        });
        // CloudTrail may deliver a record twice; identical evidence is kept once.
        events.dedup();
        CloudTrailData {
            events,
            usage,
            auth_windows,
            records: self.records,
            skipped: self.skipped,
            skip_reasons: self.skip_reasons,
            files,
            sources: Vec::new(),
            covered: self
                .covered
                .into_iter()
                .flat_map(|(account, regions)| {
                    regions
                        .into_iter()
                        .map(move |(region, records)| (account.clone(), region, records))
                })
                .collect(),
            unattributed: self.unattributed,
        }
    }
}

/// The event a successful lifecycle call records (see the mapping in the module docs): its
/// type, the credential it is about and a note, or `None` for a call that records none.
fn lifecycle_event<'a>(
    record: &RawRecord<'a>,
    source: &str,
    name: &str,
) -> Option<(EventType, Option<String>, Option<String>)> {
    let request = record.request_parameters.0.as_ref();
    let response = record.response_elements.0.as_ref();
    let request_text = |field: for<'r> fn(&'r RequestParameters<'a>) -> &'r Text<'a>| {
        request.and_then(|r| field(r).get()).map(str::to_owned)
    };
    let mapped = match (source, name) {
        ("iam.amazonaws.com", "CreateAccessKey") => (
            EventType::RotationCompleted,
            response
                .and_then(|r| r.access_key.0.as_ref())
                .and_then(|k| k.access_key_id.get())
                .map(str::to_owned),
            None,
        ),
        ("iam.amazonaws.com", "UpdateAccessKey") => (
            EventType::PolicyUpdated,
            request_text(|r| &r.access_key_id),
            request_text(|r| &r.status).map(|s| format!("status {s}")),
        ),
        ("iam.amazonaws.com", "DeleteAccessKey") => (
            EventType::PolicyUpdated,
            request_text(|r| &r.access_key_id),
            None,
        ),
        ("secretsmanager.amazonaws.com", "CreateSecret") => (
            EventType::RotationCompleted,
            response
                .and_then(|r| r.arn.get().or(r.a_rn.get()))
                .map(str::to_owned)
                .or_else(|| request_text(|r| &r.name)),
            None,
        ),
        ("secretsmanager.amazonaws.com", "RotateSecret") => (
            EventType::RotationInitiated,
            request_text(|r| &r.secret_id),
            None,
        ),
        ("secretsmanager.amazonaws.com", "PutSecretValue") => {
            let stages = request
                .map(|r| r.version_stages.0.as_slice())
                .unwrap_or(&[]);
            let current = stages.is_empty() || stages.iter().any(|s| s == "AWSCURRENT");
            (
                if current {
                    EventType::RotationCompleted
                } else {
                    EventType::RotationInitiated
                },
                request_text(|r| &r.secret_id),
                (!stages.is_empty()).then(|| format!("stages {}", stages.join(", "))),
            )
        }
        ("secretsmanager.amazonaws.com", "UpdateSecretVersionStage") => {
            let stage = request_text(|r| &r.version_stage);
            let moved = request.is_some_and(|r| r.move_to_version_id.get().is_some());
            (
                if moved && stage.as_deref() == Some("AWSCURRENT") {
                    EventType::RotationCompleted
                } else {
                    EventType::PolicyUpdated
                },
                request_text(|r| &r.secret_id),
                stage.map(|s| format!("stage {s}")),
            )
        }
        ("secretsmanager.amazonaws.com", "DeleteSecret") => (
            EventType::PolicyUpdated,
            request_text(|r| &r.secret_id)
                .or_else(|| response.and_then(|r| r.a_rn.get()).map(str::to_owned)),
            None,
        ),
        _ => return None,
    };
    Some(mapped)
}

/// Calls `f` with each secret whose value a call read, as the caller named it: the
/// `secretId` of a `GetSecretValue`, each non-empty id of a `BatchGetSecretValue`'s
/// `secretIdList`; none for any other call.
fn for_each_secret_read(
    source: &str,
    name: &str,
    secret_id: Option<&str>,
    secret_id_list: &[Cow<'_, str>],
    mut f: impl FnMut(&str),
) {
    if source != "secretsmanager.amazonaws.com" {
        return;
    }
    match name {
        "GetSecretValue" => {
            if let Some(secret) = secret_id.filter(|s| !s.is_empty()) {
                f(secret);
            }
        }
        "BatchGetSecretValue" => {
            for secret in secret_id_list {
                if !secret.is_empty() {
                    f(secret);
                }
            }
        }
        _ => {}
    }
}

/// Calls alike, already counted elsewhere (a row of a CloudTrail Lake aggregation): `n`
/// records of `event_source:event_name` in the 5-minute window starting at `seconds`, from one
/// source IP and region, with one error code (or none), logged for `account`.
#[derive(Debug, Clone, Copy)]
pub struct Calls<'r> {
    /// The start of the records' 5-minute window (or any second inside it), epoch seconds.
    pub seconds: i64,
    pub event_source: &'r str,
    pub event_name: &'r str,
    pub region: Option<&'r str>,
    pub source_ip: Option<&'r str>,
    pub error_code: Option<&'r str>,
    /// `recipientAccountId`, else the caller's account.
    pub account: Option<&'r str>,
    /// `userIdentity.accessKeyId`.
    pub access_key_id: Option<&'r str>,
    /// `requestParameters.secretId` (read for `GetSecretValue` only).
    pub secret_id: Option<&'r str>,
    /// `requestParameters.secretIdList` (read for `BatchGetSecretValue` only).
    pub secret_id_list: &'r [Cow<'r, str>],
    pub n: u64,
}

/// Usage and lifecycle evidence folded from what was aggregated elsewhere (CloudTrail Lake),
/// by the same code that folds records read from files: the same credentials counted (key,
/// secrets read), the same authentication-error classification, hours, 5-minute windows,
/// coverage and lifecycle mapping, so both roads give the same [`CloudTrailData`].
#[derive(Default)]
pub struct Fold(Aggregator);

impl Fold {
    /// Counts `calls.n` records alike.
    pub fn add_calls(&mut self, calls: &Calls) {
        let aggregator = &mut self.0;
        aggregator.records += calls.n;
        aggregator.cover(calls.account, calls.region, calls.n);
        let operation = format!("{}:{}", calls.event_source, calls.event_name);
        let call = Call {
            seconds: calls.seconds,
            operation: &operation,
            region: calls.region.filter(|s| !s.is_empty()),
            source_ip: calls.source_ip.filter(|s| !s.is_empty()),
            error_code: calls.error_code.filter(|s| !s.is_empty()),
        };
        if let Some(key) = calls.access_key_id.filter(|s| !s.is_empty()) {
            aggregator.count(key, &call, calls.n);
        }
        for_each_secret_read(
            calls.event_source,
            calls.event_name,
            calls.secret_id,
            calls.secret_id_list,
            |secret| aggregator.count(secret, &call, calls.n),
        );
    }

    /// Adds the lifecycle event of one CloudTrail record (JSON text, with at least the fields
    /// the lifecycle mapping reads), if it records one. Records nothing else: its usage is
    /// counted by [`Fold::add_calls`].
    pub fn add_lifecycle_record(&mut self, record: &str) -> std::result::Result<(), String> {
        let record: RawRecord =
            serde_json::from_str(record).map_err(|e| format!("not a CloudTrail record: {e}"))?;
        let Some(identity) = &record.user_identity.0 else {
            return Err("no userIdentity".to_string());
        };
        let time = record
            .event_time
            .get()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .ok_or("no RFC 3339 eventTime")?
            .with_timezone(&Utc);
        if record.error_code.get().is_none() {
            let source = record.event_source.get().unwrap_or("unknown");
            let name = record.event_name.get().unwrap_or("unknown");
            self.0.lifecycle(&record, identity, source, name, time);
        }
        Ok(())
    }

    /// The folded evidence, sorted as [`read_paths`] sorts it (no files).
    pub fn finish(self) -> CloudTrailData {
        self.0.finish(Vec::new())
    }
}

/// `extra` added to `data`: usage of the same (credential, hour) and windows of the same
/// (credential, start) summed, events merged (identical ones kept once), records, skips,
/// files and coverage added. For two sources of different records (CloudTrail Lake and files
/// of other accounts); the same records from both would count twice.
pub fn combine(data: &mut CloudTrailData, extra: CloudTrailData) {
    let mut usage: BTreeMap<(String, Timestamp), UsageBucket> = BTreeMap::new();
    for bucket in std::mem::take(&mut data.usage)
        .into_iter()
        .chain(extra.usage)
    {
        match usage.entry((bucket.credential_id.clone(), bucket.hour)) {
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(bucket);
            }
            std::collections::btree_map::Entry::Occupied(mut slot) => {
                let mine = slot.get_mut();
                mine.calls += bucket.calls;
                mine.errors += bucket.errors;
                mine.auth_errors += bucket.auth_errors;
                mine.source_ips.absorb(bucket.source_ips);
                mine.regions.absorb(bucket.regions);
                mine.operations.absorb(bucket.operations);
                mine.error_codes.absorb(bucket.error_codes);
            }
        }
    }
    data.usage = usage.into_values().collect();
    let mut windows: BTreeMap<(String, Timestamp), AuthWindow> = BTreeMap::new();
    for window in std::mem::take(&mut data.auth_windows)
        .into_iter()
        .chain(extra.auth_windows)
    {
        match windows.entry((window.credential_id.clone(), window.start)) {
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(window);
            }
            std::collections::btree_map::Entry::Occupied(mut slot) => {
                slot.get_mut().calls += window.calls;
                slot.get_mut().auth_errors += window.auth_errors;
            }
        }
    }
    data.auth_windows = windows.into_values().collect();
    data.events.extend(extra.events);
    data.events.sort_by(|a, b| {
        (a.time, &a.credential_id, a.event_type, &a.details).cmp(&(
            b.time,
            &b.credential_id,
            b.event_type,
            &b.details,
        ))
    });
    data.events.dedup();
    data.records += extra.records;
    data.skipped += extra.skipped;
    add_counts(&mut data.skip_reasons, extra.skip_reasons);
    data.files.extend(extra.files);
    data.sources.extend(extra.sources);
    let mut covered: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (account, region, n) in std::mem::take(&mut data.covered)
        .into_iter()
        .chain(extra.covered)
    {
        *covered.entry((account, region)).or_default() += n;
    }
    data.covered = covered
        .into_iter()
        .map(|((account, region), n)| (account, region, n))
        .collect();
    data.unattributed += extra.unattributed;
}

#[cfg(test)]
mod tests;
