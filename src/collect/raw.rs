//! Raw evidence: the input files a run was made from, kept with the run so a bundle can ship them
//! and any report can be re-rendered later.
//!
//! Only what was parsed is kept, with the bytes that were parsed: the readers hand their files
//! over here as they read them, so nothing is read twice and no file outside the documented
//! layout (a `get-secret-value.json` dropped into an export, say) is ever stored. Members named
//! like a secret value (`SecretString`, `SecretBinary`, at any depth) are removed first.
//! CloudTrail logs are large and AWS's own: a run keeps each file's path, size and SHA-256 in
//! `cloudtrail-files.json`, and their bytes only when asked (`--keep-cloudtrail`).
//!
//! Kept files are not held in memory: each goes into a [`RawSpool`], deflated, as it is read,
//! and the snapshot copies them from there when the run is recorded.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, Write};
use std::os::unix::fs::FileExt;

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::input::{Capped, Limits, MAX_DECOMPRESSED_FLAG};

/// One raw evidence file: its path relative to the export directory, and its bytes.
pub type RawFile = (String, Vec<u8>);

/// One file in a [`RawSpool`]: its path in the raw evidence, size and SHA-256, and where its
/// deflated bytes are in the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpooledFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    offset: u64,
    stored: u64,
}

/// The raw evidence files of a run, as they were read: their bytes deflated into one temporary
/// file (owner-only, unlinked from the start, gone when the spool is dropped), their paths,
/// sizes and SHA-256 in memory.
#[derive(Debug, Default)]
pub struct RawSpool {
    /// Created with the first file.
    file: Option<File>,
    files: Vec<SpooledFile>,
}

impl RawSpool {
    pub fn new() -> Self {
        Self::default()
    }

    /// Spools `bytes` as the raw file `path`.
    pub fn add(&mut self, path: impl Into<String>, bytes: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            self.file = Some(tempfile::tempfile()?);
        }
        let file = self.file.as_mut().expect("created above");
        let offset = file.seek(io::SeekFrom::End(0))?;
        let mut encoder = DeflateEncoder::new(io::BufWriter::new(&mut *file), Compression::fast());
        encoder.write_all(bytes)?;
        encoder.finish()?.flush()?;
        let end = file.stream_position()?;
        self.files.push(SpooledFile {
            path: path.into(),
            size: bytes.len() as u64,
            sha256: crate::model::hex(&Sha256::digest(bytes)),
            offset,
            stored: end - offset,
        });
        Ok(())
    }

    /// The files spooled, in the order added (or by path after [`sort`](Self::sort)).
    pub fn files(&self) -> &[SpooledFile] {
        &self.files
    }

    /// Orders the files by path.
    pub fn sort(&mut self) {
        self.files.sort_by(|a, b| a.path.cmp(&b.path));
    }

    /// The bytes of a spooled file, inflated as they are read.
    pub fn open<'s>(&'s self, spooled: &SpooledFile) -> io::Result<impl Read + 's> {
        let file = self
            .file
            .as_ref()
            .ok_or_else(|| io::Error::other("the raw evidence spool holds no file"))?;
        let region = Region {
            file,
            position: spooled.offset,
            end: spooled.offset + spooled.stored,
        };
        Ok(DeflateDecoder::new(BufReader::new(region)).take(spooled.size))
    }
}

/// Two spools are equal when they hold the same files (path, size and SHA-256), in the same
/// order.
impl PartialEq for RawSpool {
    fn eq(&self, other: &Self) -> bool {
        let key = |f: &SpooledFile| (f.path.clone(), f.size, f.sha256.clone());
        self.files.iter().map(key).eq(other.files.iter().map(key))
    }
}

/// A range of bytes of a file, read by position (so several can be open at once).
struct Region<'f> {
    file: &'f File,
    position: u64,
    end: u64,
}

impl Read for Region<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = (self.end - self.position).min(buf.len() as u64) as usize;
        if left == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..left], self.position)?;
        self.position += n as u64;
        Ok(n)
    }
}

/// The raw evidence file that lists the CloudTrail files a run read.
pub const CLOUDTRAIL_INDEX: &str = "cloudtrail-files.json";

/// Whether a JSON member name is that of a secret value: `SecretString`, `SecretBinary`, in any
/// case and with any punctuation (`secret_string`, `secret-binary`).
pub fn is_secret_member(name: &str) -> bool {
    let folded: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    folded == "secretstring" || folded == "secretbinary"
}

/// Removes every member named like a secret value from `value`, at any depth (inside a
/// lookup-events `CloudTrailEvent`, which holds a record as a JSON string, too). Returns how
/// many were removed.
pub fn strip_secret_members(value: &mut Value) -> usize {
    match value {
        Value::Object(map) => {
            let before = map.len();
            map.retain(|name, _| !is_secret_member(name));
            let mut removed = before - map.len();
            for (name, member) in map.iter_mut() {
                if name == "CloudTrailEvent"
                    && let Value::String(text) = member
                    && let Ok(mut inner) = serde_json::from_str::<Value>(text)
                {
                    let inside = strip_secret_members(&mut inner);
                    if inside > 0 {
                        *text = inner.to_string();
                        removed += inside;
                    }
                } else {
                    removed += strip_secret_members(member);
                }
            }
            removed
        }
        Value::Array(items) => items.iter_mut().map(strip_secret_members).sum(),
        _ => 0,
    }
}

/// Whether `bytes` could hold a secret member at all: a name that [`is_secret_member`] accepts
/// (the text folded as it folds a name: ASCII letters and digits only, lowercased), or a `\u`
/// escape that could spell one. A cheap test that spares parsing files that cannot: a
/// `list-secrets.json`, full of `SecretList` and `secretsmanager` ARNs, is not parsed again.
fn may_hold_secret(bytes: &[u8]) -> bool {
    const FOLDED: [&[u8; 12]; 2] = [b"secretstring", b"secretbinary"];
    // The last twelve letters and digits seen, lowercased.
    let mut window = [0u8; 12];
    let mut rest = bytes.iter();
    while let Some(&b) = rest.next() {
        if b == b'\\' {
            // An escape: `\u` could spell any letter; the others (`\n`, `\"`, …) stand for
            // characters that folding drops, so their second byte is dropped too.
            match rest.next() {
                Some(b'u') => return true,
                _ => continue,
            }
        }
        if b.is_ascii_alphanumeric() {
            window.copy_within(1.., 0);
            window[11] = b.to_ascii_lowercase();
            if FOLDED.iter().any(|name| **name == window) {
                return true;
            }
        }
    }
    false
}

/// The bytes of a JSON document (one value, as the export files hold) fit to store: unchanged
/// when no member is named like a secret value, else re-serialised without them. Returns the
/// bytes and how many members were removed. `bytes` must already have parsed as JSON; if it
/// somehow does not, it is dropped whole rather than stored unchecked.
pub fn scrub_json(bytes: &[u8]) -> (Cow<'_, [u8]>, usize) {
    if !may_hold_secret(bytes) {
        return (Cow::Borrowed(bytes), 0);
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(mut value) => match strip_secret_members(&mut value) {
            0 => (Cow::Borrowed(bytes), 0),
            removed => {
                let mut out = serde_json::to_vec_pretty(&value).expect("JSON values serialise");
                out.push(b'\n');
                (Cow::Owned(out), removed)
            }
        },
        Err(_) => (Cow::Owned(Vec::new()), 1),
    }
}

/// [`scrub_json`] for JSON Lines: each line on its own; blank lines kept.
pub fn scrub_json_lines(bytes: &[u8]) -> (Cow<'_, [u8]>, usize) {
    if !may_hold_secret(bytes) {
        return (Cow::Borrowed(bytes), 0);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut removed = 0;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        if body.iter().all(u8::is_ascii_whitespace) {
            out.extend_from_slice(line);
            continue;
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(mut value) => match strip_secret_members(&mut value) {
                0 => out.extend_from_slice(line),
                n => {
                    removed += n;
                    out.extend_from_slice(value.to_string().as_bytes());
                    out.push(b'\n');
                }
            },
            // Never stored unchecked; the reader refuses such a line anyway.
            Err(_) => removed += 1,
        }
    }
    if removed == 0 {
        (Cow::Borrowed(bytes), 0)
    } else {
        (Cow::Owned(out), removed)
    }
}

/// One CloudTrail file a run read, as `cloudtrail-files.json` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrailFile {
    /// Where it was read: relative to the export directory for `DIR/cloudtrail/…`, else the path
    /// given on the command line (plus the part below it).
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
    /// Where its bytes are kept in the raw evidence (`--keep-cloudtrail`), if they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_as: Option<String>,
}

/// `cloudtrail-files.json`: the CloudTrail files read, sorted by path.
pub fn cloudtrail_index(files: &[TrailFile]) -> RawFile {
    let mut sorted = files.to_vec();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut bytes = serde_json::to_vec_pretty(&sorted).expect("plain data");
    bytes.push(b'\n');
    (CLOUDTRAIL_INDEX.to_string(), bytes)
}

/// A CloudTrail file's bytes fit to keep (`--keep-cloudtrail`): unchanged when no member is
/// named like a secret value, else the JSON without them (decompressed). Returns the bytes, the
/// extension to store them under (`json` or `json.gz`) and how many members were removed.
pub fn scrub_cloudtrail(
    bytes: &[u8],
    limits: &Limits,
) -> Result<(Vec<u8>, &'static str, usize), String> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        let (kept, removed) = scrub_json(bytes);
        return Ok((kept.into_owned(), "json", removed));
    }
    let mut json = Vec::new();
    Capped::new(
        flate2::read::MultiGzDecoder::new(bytes),
        limits.max_decompressed_bytes,
        "the decompressed stream",
        MAX_DECOMPRESSED_FLAG,
    )
    .read_to_end(&mut json)
    .map_err(|e| e.to_string())?;
    match scrub_json(&json) {
        (_, 0) => Ok((bytes.to_vec(), "json.gz", 0)),
        (kept, removed) => Ok((kept.into_owned(), "json", removed)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spooled_files_read_back_as_added() {
        let mut spool = RawSpool::new();
        let big: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
        spool.add("b.json", b"{}").unwrap();
        spool.add("a/big.bin", &big).unwrap();
        spool.add("c.json", b"").unwrap();
        spool.sort();
        let paths: Vec<&str> = spool.files().iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["a/big.bin", "b.json", "c.json"]);
        for (file, bytes) in spool.files().iter().zip([&big[..], b"{}", b""]) {
            let mut back = Vec::new();
            spool.open(file).unwrap().read_to_end(&mut back).unwrap();
            assert_eq!(back, bytes, "{}", file.path);
            assert_eq!(file.size, bytes.len() as u64);
            assert_eq!(file.sha256, crate::model::sha256_hex(bytes));
        }
        // Deflated in the spool.
        assert!(spool.files()[0].stored < big.len() as u64 / 2);
    }

    #[test]
    fn secret_members_are_named_in_any_spelling() {
        for name in [
            "SecretString",
            "secretString",
            "SECRET_BINARY",
            "secret-string",
        ] {
            assert!(is_secret_member(name), "{name}");
        }
        for name in ["SecretList", "Name", "ARN", "SecretStringVersion", "secret"] {
            assert!(!is_secret_member(name), "{name}");
        }
    }

    #[test]
    fn scrub_removes_secret_members_at_any_depth() {
        let text = br#"{"SecretList":[{"ARN":"a","SecretString":"hunter2-SUPERSECRET","Tags":[{"Key":"k","SecretBinary":"aGk="}]}]}"#;
        let (bytes, removed) = scrub_json(text);
        assert_eq!(removed, 2);
        let out = String::from_utf8(bytes.into_owned()).unwrap();
        assert!(!out.contains("hunter2"), "{out}");
        assert!(!out.contains("aGk="), "{out}");
        assert!(out.contains("\"ARN\": \"a\""), "{out}");
    }

    #[test]
    fn scrub_sees_through_escapes_and_lookup_events() {
        let text = br#"{"Secret\u0053tring":"hunter2"}"#;
        let (bytes, removed) = scrub_json(text);
        assert_eq!(removed, 1);
        assert!(!String::from_utf8_lossy(&bytes).contains("hunter2"));

        let event = r#"{"requestParameters":{"secretId":"x","secretString":"hunter2"}}"#;
        let text = serde_json::json!({"Events": [{"CloudTrailEvent": event}]}).to_string();
        let (bytes, removed) = scrub_json(text.as_bytes());
        assert_eq!(removed, 1);
        let out = String::from_utf8_lossy(&bytes);
        assert!(!out.contains("hunter2"), "{out}");
        assert!(out.contains("secretId"), "{out}");
    }

    #[test]
    fn clean_files_are_kept_byte_for_byte() {
        let text = b"{\n  \"Users\": [ {\"UserName\": \"alice\"} ]\n}\n";
        let (bytes, removed) = scrub_json(text);
        assert_eq!((bytes.as_ref(), removed), (&text[..], 0));
        let text = b"{\"SecretList\": [{\"Name\": \"prod/db\"}]}";
        let (bytes, removed) = scrub_json(text);
        assert_eq!((bytes.as_ref(), removed), (&text[..], 0));
    }

    #[test]
    fn secret_lists_are_kept_without_parsing() {
        let text = br#"{"SecretList": [{"ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf", "Name": "prod/db", "SecretVersionsToStages": {"v1": ["AWSCURRENT"]}}]}"#;
        assert!(!may_hold_secret(text));
        let (bytes, removed) = scrub_json(text);
        assert!(matches!(bytes, Cow::Borrowed(_)));
        assert_eq!((bytes.as_ref(), removed), (&text[..], 0));
        let (bytes, removed) = scrub_json_lines(text);
        assert!(matches!(bytes, Cow::Borrowed(_)));
        assert_eq!(removed, 0);
    }

    #[test]
    fn folded_names_are_found_across_punctuation_and_escapes() {
        for text in [
            &br#"{"secret_string": "hunter2"}"#[..],
            br#"{"SECRET-BINARY": "aGk="}"#,
            br#"{"Secret\nString": "hunter2"}"#,
        ] {
            assert!(may_hold_secret(text), "{}", String::from_utf8_lossy(text));
            let (bytes, removed) = scrub_json(text);
            assert_eq!(removed, 1, "{}", String::from_utf8_lossy(text));
            assert!(!String::from_utf8_lossy(&bytes).contains("hunter2"));
        }
        // An escaped backslash before a `u` is no `\u` escape.
        assert!(!may_hold_secret(br#"{"Path": "C:\\users"}"#));
    }

    #[test]
    fn json_lines_are_scrubbed_line_by_line() {
        let text = b"{\"a\":1}\n\n{\"details\":{\"SecretString\":\"hunter2\"}}\n";
        let (bytes, removed) = scrub_json_lines(text);
        assert_eq!(removed, 1);
        assert_eq!(
            String::from_utf8(bytes.into_owned()).unwrap(),
            "{\"a\":1}\n\n{\"details\":{}}\n"
        );
    }
}
