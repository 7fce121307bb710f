//! Entry points for the fuzz targets (`fuzz/fuzz_targets/*.rs`, nightly + cargo-fuzz) and their
//! replay on stable (`tests/fuzz_corpus.rs`). Each takes the bytes of one input file and runs
//! the real parser on them as if they were that file, with the default [`Limits`]; an `Err` is
//! a fine answer to bad input. Only a panic, a hang or an unbounded allocation is a bug. Each
//! returns whether the parser accepted the input and read something from it, so the replay can
//! check that the seeds reach the parser. Not part of the product's interface.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::collect::input::Limits;
use crate::collect::{cloudtrail, credential_report, export, lake};

/// A target: the bytes of one input file in, whether the parser accepted them out.
pub type Target = fn(&[u8]) -> bool;

/// Every target by name (the folder names under `fuzz/corpus/` and `fuzz/regressions/`).
pub const TARGETS: [(&str, Target); 10] = [
    ("credential_report_csv", credential_report_csv),
    ("credential_report_json", credential_report_json),
    ("export_json", export_json),
    ("cloudtrail_json", cloudtrail_json),
    ("cloudtrail_gz", cloudtrail_gz),
    ("cloudtrail_lake", cloudtrail_lake),
    ("inventory", inventory),
    ("history", history),
    ("waivers", waivers),
    ("controls", controls),
];

/// The account folder the export targets file their inputs under.
const ACCOUNT: &str = "123456789012";

/// `aws/ACCOUNT/iam/credential-report.csv` from memory (the reader needs UTF-8 text).
pub fn credential_report_csv(data: &[u8]) -> bool {
    std::str::from_utf8(data).is_ok_and(|text| {
        credential_report::parse_csv_file_with(
            Path::new("aws/123456789012/iam/credential-report.csv"),
            text,
            &Limits::default(),
        )
        .is_ok()
    })
}

/// `aws/ACCOUNT/iam/get-credential-report.json` from memory.
pub fn credential_report_json(data: &[u8]) -> bool {
    std::str::from_utf8(data).is_ok_and(|text| {
        credential_report::parse_json_file_with(
            Path::new("aws/123456789012/iam/get-credential-report.json"),
            text,
            &Limits::default(),
        )
        .is_ok()
    })
}

/// The JSON files of the export layout, in the order the first byte of an input selects them
/// (byte modulo their number); the rest of the input is the file.
pub const EXPORT_SHAPES: [&str; 8] = [
    "aws/123456789012/iam/list-access-keys.json",
    "aws/123456789012/iam/get-access-key-last-used.json",
    "aws/123456789012/iam/get-account-authorization-details.json",
    "aws/123456789012/iam/list-users.json",
    "aws/123456789012/iam/list-user-tags.json",
    "aws/123456789012/secretsmanager/us-east-1/list-secrets.json",
    "aws/123456789012/secretsmanager/us-east-1/describe-secret.json",
    "coverage.json",
];

/// A scratch folder for the targets whose reader walks a directory, one per process, used by
/// one call at a time.
fn scratch() -> std::sync::MutexGuard<'static, PathBuf> {
    static DIR: OnceLock<(tempfile::TempDir, Mutex<PathBuf>)> = OnceLock::new();
    let (_, path) = DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("credaudit-fuzz-")
            .tempdir()
            .expect("a scratch folder for the fuzz targets");
        let path = Mutex::new(dir.path().to_path_buf());
        (dir, path)
    });
    path.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes `files` (relative path, bytes) under `dir`, runs `read`, and removes them again.
fn with_files<T>(dir: &Path, files: &[(&str, &[u8])], read: impl FnOnce() -> T) -> T {
    for (relative, bytes) in files {
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().expect("a file inside the folder"))
            .expect("scratch folders");
        std::fs::write(&path, bytes).expect("a scratch file");
    }
    let result = read();
    for (relative, _) in files {
        let _ = std::fs::remove_file(dir.join(relative));
    }
    result
}

/// One export JSON file: the first byte picks the file of [`EXPORT_SHAPES`], the rest is its
/// content, read by the export directory reader (the whole of it: every file of the layout is
/// optional, so the others are simply absent). Accepted: read with a coverage entry.
pub fn export_json(data: &[u8]) -> bool {
    let Some((&selector, content)) = data.split_first() else {
        return false;
    };
    let shape = EXPORT_SHAPES[usize::from(selector) % EXPORT_SHAPES.len()];
    let dir = scratch();
    // The account folder exists even when the file is coverage.json, as in a real export.
    std::fs::create_dir_all(dir.join("aws").join(ACCOUNT).join("iam")).expect("scratch folders");
    let read = with_files(&dir, &[(shape, content)], || {
        export::read_export_dir_with(&dir, &export::ExportOptions::default())
    });
    read.is_ok_and(|data| !data.coverage.is_empty())
}

/// The path the CloudTrail targets give their input, for messages.
const TRAIL: &str = "cloudtrail/123456789012_CloudTrail_us-east-1_20261001T0000Z_x.json";

/// [`cloudtrail::read_file_bytes`] with the fast road's window kept from call to call, as the
/// reader keeps it from file to file (a new 4 MiB window each time would slow fuzzing down).
fn read_trail(path: &Path, bytes: &[u8]) -> bool {
    thread_local! {
        static WINDOW: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    WINDOW.with_borrow_mut(|window| {
        cloudtrail::read_file_bytes(path, bytes, &Limits::default(), window)
            .is_ok_and(|trail| trail.records > 0)
    })
}

/// A CloudTrail log file (`{"Records":[…]}`, a bare array, lookup-events output) from memory.
/// Accepted: read, with at least one record.
pub fn cloudtrail_json(data: &[u8]) -> bool {
    read_trail(Path::new(TRAIL), data)
}

/// A CloudTrail `.json.gz` file from memory: the input as is when it starts with the gzip magic
/// bytes (so corrupt, truncated and multi-member streams are explored), else gzip-compressed
/// first (so mutations of the content still go through the decompressor).
pub fn cloudtrail_gz(data: &[u8]) -> bool {
    use std::io::Write;
    let path = PathBuf::from(format!("{TRAIL}.gz"));
    let gz = if data.starts_with(&[0x1f, 0x8b]) {
        std::borrow::Cow::Borrowed(data)
    } else {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).expect("gzip into memory");
        std::borrow::Cow::Owned(encoder.finish().expect("gzip into memory"))
    };
    read_trail(&path, &gz)
}

/// A CloudTrail Lake result page: the first byte's low bit picks the query it belongs to
/// (usage or lifecycle), the rest is page 1 of it, read by the Lake export reader with a query
/// file naming both queries as finished. Accepted: read, the page with it.
pub fn cloudtrail_lake(data: &[u8]) -> bool {
    let Some((&selector, page)) = data.split_first() else {
        return false;
    };
    let name = lake::QUERIES[usize::from(selector & 1)].0;
    let query = serde_json::json!({
        "eventDataStore": "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/fuzz",
        "start": "2026-10-01T00:00:00Z",
        "end": "2026-10-02T00:00:00Z",
        "queries": lake::QUERIES.iter().map(|(name, _)| serde_json::json!({
            "name": name,
            "queryId": "fuzz",
            "statement": "SELECT 1",
            "status": "FINISHED",
        })).collect::<Vec<_>>(),
    })
    .to_string();
    let page_file = format!("{}/{name}-0001.json", lake::FOLDER);
    let query_file = format!("{}/query.json", lake::FOLDER);
    let dir = scratch();
    let read = with_files(
        &dir,
        &[(&query_file, query.as_bytes()), (&page_file, page)],
        || lake::read_export(&dir, &Limits::default()),
    );
    read.is_ok_and(|lake| lake.is_some_and(|lake| lake.files.len() == 2))
}

/// `inventory.toml` from memory.
pub fn inventory(data: &[u8]) -> bool {
    std::str::from_utf8(data)
        .is_ok_and(|text| crate::inventory::parse(text, Path::new("inventory.toml")).is_ok())
}

/// `history.jsonl` from memory.
pub fn history(data: &[u8]) -> bool {
    crate::history::parse_with(data, Path::new("history.jsonl"), &Limits::default()).is_ok()
}

/// `waivers.toml` from memory, against the rule ids of this build.
pub fn waivers(data: &[u8]) -> bool {
    std::str::from_utf8(data).is_ok_and(|text| {
        crate::waivers::parse(text, Path::new("waivers.toml"), &crate::rules::ids()).is_ok()
    })
}

/// A control catalogue of `--controls-dir` from memory, against the rule ids of this build.
pub fn controls(data: &[u8]) -> bool {
    std::str::from_utf8(data).is_ok_and(|text| {
        crate::controls::parse(
            text,
            Path::new("controls/fuzz.toml"),
            &crate::controls::known_rules(),
        )
        .is_ok()
    })
}
