//! What credaudit writes is its own and nobody else's: symlinks planted in `--out` or at the
//! archive's path are replaced, never written through; a bundle replaces the previous one whole
//! (no stale file survives) and never a folder of someone else's files; `verify` never follows a
//! link; everything written is owner-only; `collect --export` replaces only what its own marker
//! lists, never a hand-made export.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

fn demo() -> PathBuf {
    repo("fixtures/demo-fleet")
}

/// `credaudit verify DIR`: (exit code, stdout).
fn verify(dir: &Path) -> (i32, String) {
    let out = credaudit().arg("verify").arg(dir).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn is_regular_file(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
}

/// Every path under `dir` (relative), with whether it is a folder.
fn tree(dir: &Path) -> BTreeMap<String, bool> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<String, bool>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let is_dir = std::fs::symlink_metadata(&path).unwrap().is_dir();
            out.insert(rel, is_dir);
            if is_dir {
                walk(&path, base, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn planted_symlinks_in_out_and_at_the_archive_are_replaced_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, db) = (tmp.path().join("out"), tmp.path().join("x.db"));
    let victims = [
        tmp.path().join("victim.txt"),
        tmp.path().join("victim2"),
        tmp.path().join("victim3"),
    ];
    for v in &victims {
        std::fs::write(v, b"precious").unwrap();
    }

    // A first scan makes `out` a bundle; then the links are planted in and beside it: the old
    // predictable temporary name, a bundle file itself, and the archive.
    assert_eq!(scan(&demo(), &db, Some(&out), &["-q"]).0, 0);
    symlink(&victims[0], out.join(".index.html.tmp")).unwrap();
    std::fs::remove_file(out.join("findings.csv")).unwrap();
    symlink(&victims[2], out.join("findings.csv")).unwrap();
    symlink(&victims[1], tmp.path().join("out.tar.gz")).unwrap();

    let (code, _, stderr) = scan(&demo(), &db, Some(&out), &["--archive"]);
    assert_eq!(code, 0, "{stderr}");
    for v in &victims {
        let bytes = std::fs::read(v).unwrap();
        assert!(bytes == b"precious", "{} was overwritten", v.display());
    }
    assert!(is_regular_file(&out.join("index.html")));
    assert!(is_regular_file(&out.join("findings.csv")));
    assert!(
        !out.join(".index.html.tmp").exists(),
        "the planted link survived"
    );
    assert!(is_regular_file(&tmp.path().join("out.tar.gz")));
    let (code, stdout) = verify(&out);
    assert_eq!(code, 0, "{stdout}");

    // A fresh `out` that holds nothing but a planted link is not a bundle: refused, untouched.
    let fresh = tmp.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    symlink(&victims[0], fresh.join(".index.html.tmp")).unwrap();
    let (code, _, stderr) = scan(&demo(), &db, Some(&fresh), &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(std::fs::read(&victims[0]).unwrap() == b"precious");
    assert!(!fresh.join("index.html").exists());
}

#[test]
fn a_stale_file_is_gone_after_a_second_scan_and_verify_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, db) = (tmp.path().join("out"), tmp.path().join("s.db"));
    assert_eq!(scan(&demo(), &db, Some(&out), &["-q"]).0, 0);
    std::fs::write(out.join("stale.txt"), "from an older run").unwrap();
    std::fs::write(out.join("raw/old-export.json"), "{}").unwrap();
    let (code, stdout) = verify(&out);
    assert_eq!(
        code, 1,
        "the planted files are not in the manifest: {stdout}"
    );

    let (code, _, stderr) = scan(&demo(), &db, Some(&out), &["-q"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!out.join("stale.txt").exists());
    assert!(!out.join("raw/old-export.json").exists());
    let (code, stdout) = verify(&out);
    assert_eq!(code, 0, "{stdout}");
    // No temporary folder is left beside the bundle.
    let beside: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(beside.is_empty(), "{beside:?}");
}

#[test]
fn an_out_folder_with_foreign_files_is_refused_and_its_files_survive() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("s.db");

    let mine = tmp.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "do not delete").unwrap();
    let (code, _, stderr) = scan(&demo(), &db, Some(&mine), &["-q"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not a credaudit bundle"), "{stderr}");
    assert!(
        stderr.contains("mine"),
        "the message names the folder: {stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(mine.join("notes.txt")).unwrap(),
        "do not delete"
    );
    assert_eq!(tree(&mine).len(), 1, "{:?}", tree(&mine));

    // Someone else's manifest.json is not a credaudit manifest.
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("manifest.json"), r#"{"name":"my-app"}"#).unwrap();
    let (code, _, stderr) = scan(&demo(), &db, Some(&other), &["-q"]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        std::fs::read_to_string(other.join("manifest.json")).unwrap(),
        r#"{"name":"my-app"}"#
    );

    // `--out` that is a symlink (even to an empty folder) is not written through.
    let target = tmp.path().join("target");
    std::fs::create_dir(&target).unwrap();
    let link = tmp.path().join("link");
    symlink(&target, &link).unwrap();
    let (code, _, stderr) = scan(&demo(), &db, Some(&link), &["-q"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(tree(&target).is_empty());
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // An empty folder is fine.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, _, stderr) = scan(&demo(), &db, Some(&empty), &["-q"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(is_regular_file(&empty.join("manifest.json")));
}

#[test]
fn verify_fails_on_a_symlinked_index_html_even_with_matching_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    assert_eq!(
        scan(&demo(), &tmp.path().join("s.db"), Some(&out), &["-q"]).0,
        0
    );
    let elsewhere = tmp.path().join("index-elsewhere.html");
    std::fs::rename(out.join("index.html"), &elsewhere).unwrap();
    symlink(&elsewhere, out.join("index.html")).unwrap();

    let (code, stdout) = verify(&out);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("not a regular file: index.html"),
        "{stdout}"
    );
    assert!(stdout.contains("symlink"), "{stdout}");

    // A symlinked folder is not walked into either.
    std::fs::remove_file(out.join("index.html")).unwrap();
    std::fs::rename(&elsewhere, out.join("index.html")).unwrap();
    assert_eq!(verify(&out).0, 0);
    let raw_elsewhere = tmp.path().join("raw-elsewhere");
    std::fs::rename(out.join("raw"), &raw_elsewhere).unwrap();
    symlink(&raw_elsewhere, out.join("raw")).unwrap();
    let (code, stdout) = verify(&out);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("not a regular file: raw "), "{stdout}");
}

#[test]
fn bundle_and_archive_are_owner_only_and_the_archive_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("s.db");
    let out = tmp.path().join("bundle");
    let (code, _, stderr) = scan(&demo(), &db, Some(&out), &["--archive", "-q"]);
    assert_eq!(code, 0, "{stderr}");

    assert_eq!(mode(&out), 0o700, "the bundle folder");
    let files = tree(&out);
    assert!(files.contains_key("raw"));
    for (rel, is_dir) in &files {
        let expected = if *is_dir { 0o700 } else { 0o600 };
        assert_eq!(mode(&out.join(rel)), expected, "{rel}");
    }
    let archive = tmp.path().join("bundle.tar.gz");
    assert_eq!(mode(&archive), 0o600);

    let bytes = std::fs::read(&archive).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
    let mut names = Vec::new();
    let mut dirs = 0;
    for entry in tar.entries().unwrap() {
        let entry = entry.unwrap();
        let header = entry.header();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        assert_eq!(header.mtime().unwrap(), 0, "{name}");
        if header.entry_type().is_dir() {
            dirs += 1;
            assert_eq!(header.mode().unwrap(), 0o700, "{name}");
        } else {
            assert!(header.entry_type().is_file(), "{name}");
            assert_eq!(header.mode().unwrap(), 0o600, "{name}");
        }
        names.push(name);
    }
    assert!(
        dirs >= 2,
        "the bundle folder and raw/ are entries: {names:?}"
    );
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries are sorted");
    assert!(names.iter().any(|n| n == "bundle/index.html"));
    // Exactly the bundle folder's contents, under the folder's name.
    assert_eq!(names.len(), files.len() + 1, "{names:?}");
    for name in &names {
        let rel = name.trim_end_matches('/');
        if rel != "bundle" {
            let rel = rel.strip_prefix("bundle/").unwrap();
            assert!(
                files.contains_key(rel),
                "{name} is not in the bundle folder"
            );
        }
    }

    // The same run re-rendered elsewhere gives the same archive, byte for byte.
    let again = tmp.path().join("again");
    std::fs::create_dir(&again).unwrap();
    let status = credaudit()
        .args(["report", "--run", "1", "--archive", "--db"])
        .arg(&db)
        .arg("--out")
        .arg(again.join("bundle"))
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(std::fs::read(again.join("bundle.tar.gz")).unwrap() == bytes);
}

/// A stand-in for AWS on loopback: `sts:GetCallerIdentity` answers account 123456789012, every
/// other call is denied (not retried), so a collection gets through and publishes with failures.
struct FakeAws {
    url: String,
}

impl FakeAws {
    fn start() -> FakeAws {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                std::thread::spawn(move || answer(stream));
            }
        });
        FakeAws { url }
    }
}

fn answer(mut stream: std::net::TcpStream) {
    let mut request = Vec::new();
    let mut buf = [0u8; 8192];
    let (head_end, length) = loop {
        let Ok(n) = stream.read(&mut buf) else { return };
        if n == 0 {
            return;
        }
        request.extend_from_slice(&buf[..n]);
        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    while request.len() < head_end + length {
        let Ok(n) = stream.read(&mut buf) else { return };
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
    let body = String::from_utf8_lossy(&request[head_end..]);
    let (status, content_type, extra, payload) = if body.contains("Action=GetCallerIdentity") {
        (
            "200 OK",
            "text/xml",
            "",
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
             <GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/auditor</Arn>\
             <UserId>AIDAAUDITOR</UserId><Account>123456789012</Account>\
             </GetCallerIdentityResult><ResponseMetadata><RequestId>1</RequestId>\
             </ResponseMetadata></GetCallerIdentityResponse>"
                .to_string(),
        )
    } else if head.contains("x-amz-json") {
        (
            "400 Bad Request",
            "application/x-amz-json-1.1",
            "x-amzn-ErrorType: AccessDeniedException\r\n",
            r#"{"__type":"AccessDeniedException","message":"denied by the test"}"#.to_string(),
        )
    } else {
        (
            "403 Forbidden",
            "text/xml",
            "",
            "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>\
             <Message>denied by the test</Message></Error><RequestId>1</RequestId>\
             </ErrorResponse>"
                .to_string(),
        )
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{extra}x-amzn-RequestId: 1\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

/// `credaudit collect --aws` against `endpoint` into `export`, with a clean AWS environment
/// (fixed test keys, no profile files, no instance metadata).
fn collect(endpoint: &str, export: &Path) -> Output {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_credaudit"))
        .env_clear()
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/credaudit-test/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/credaudit-test/credentials",
        )
        .env("TMPDIR", std::env::temp_dir())
        .args(["collect", "--aws", "--quiet", "--endpoint-url", endpoint])
        .args([
            "--region",
            "us-east-1",
            "--cloudtrail-window",
            "0",
            "--export",
        ])
        .arg(export)
        .output()
        .unwrap();
    eprintln!(
        "collect exited {:?}: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Every file under `dir` with its bytes.
fn snapshot_of(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    tree(dir)
        .into_iter()
        .filter(|(_, is_dir)| !is_dir)
        .map(|(rel, _)| {
            let bytes = std::fs::read(dir.join(&rel)).unwrap();
            (rel, bytes)
        })
        .collect()
}

#[test]
fn collect_leaves_a_hand_made_export_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let export = tmp.path().join("export");
    copy_dir(&demo().join("aws"), &export.join("aws"));
    std::fs::create_dir_all(export.join("cloudtrail")).unwrap();
    std::fs::write(export.join("cloudtrail/trail.json"), r#"{"Records":[]}"#).unwrap();
    // An empty coverage.json is documented as optional input; it does not make the folder ours.
    std::fs::write(export.join("coverage.json"), "").unwrap();
    let before = snapshot_of(&export);
    assert!(before.len() > 3);

    // AWS answers (the calls get through and fail): refused before anything is replaced.
    let aws = FakeAws::start();
    let output = collect(&aws.url, &export);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("did not write"), "{stderr}");
    assert_eq!(snapshot_of(&export), before, "the hand-made export changed");

    // AWS cannot be reached at all: the same.
    let output = collect("http://127.0.0.1:9", &export);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(snapshot_of(&export), before);

    // A marker that lists only coverage.json does not make aws/ or cloudtrail/ ours.
    std::fs::write(
        export.join(".credaudit-export.json"),
        r#"{"tool":"credaudit","written":["coverage.json"]}"#,
    )
    .unwrap();
    let output = collect(&aws.url, &export);
    assert_eq!(output.status.code(), Some(2));
    let mut expected = before.clone();
    expected.insert(
        ".credaudit-export.json".into(),
        br#"{"tool":"credaudit","written":["coverage.json"]}"#.to_vec(),
    );
    assert_eq!(snapshot_of(&export), expected);
}

#[test]
fn collect_replaces_only_what_its_marker_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let export = tmp.path().join("export");
    std::fs::create_dir(&export).unwrap();
    std::fs::write(export.join("inventory.toml"), "# mine\n").unwrap();

    // Base account unreachable: an error, and nothing is written.
    let output = collect("http://127.0.0.1:9", &export);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(tree(&export).keys().collect::<Vec<_>>(), ["inventory.toml"]);

    // Every call but GetCallerIdentity fails: a partial collection, published with its marker.
    let aws = FakeAws::start();
    let output = collect(&aws.url, &export);
    assert_eq!(output.status.code(), Some(3));
    let marker: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.join(".credaudit-export.json")).unwrap())
            .unwrap();
    assert_eq!(marker["tool"], "credaudit");
    let written: Vec<&str> = marker["written"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(written.contains(&"coverage.json"), "{marker}");
    assert!(
        !written.contains(&"cloudtrail"),
        "no CloudTrail was read: {marker}"
    );
    for name in &written {
        let path = export.join(name);
        let expected = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&path), expected, "{name}");
    }
    assert_eq!(mode(&export.join(".credaudit-export.json")), 0o600);
    let coverage: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.join("coverage.json")).unwrap()).unwrap();
    assert!(!coverage.as_array().unwrap().is_empty(), "{coverage}");

    // Its own entries are replaced by the next collection.
    let output = collect(&aws.url, &export);
    assert_eq!(output.status.code(), Some(3));

    // A user's cloudtrail/ put there since is not in the marker: refused, kept.
    std::fs::create_dir(export.join("cloudtrail")).unwrap();
    std::fs::write(export.join("cloudtrail/trail.json"), r#"{"Records":[]}"#).unwrap();
    let before = snapshot_of(&export);
    let output = collect(&aws.url, &export);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(snapshot_of(&export), before);
    assert_eq!(
        std::fs::read_to_string(export.join("inventory.toml")).unwrap(),
        "# mine\n"
    );
    let hidden: Vec<String> = tree(&export)
        .into_keys()
        .filter(|n| n.starts_with(".credaudit-collect"))
        .collect();
    assert!(hidden.is_empty(), "staging left behind: {hidden:?}");
}
