//! The bad-input suite: one table, one row per malformed input, across every format a scan
//! reads (the credential report as CSV and as `get-credential-report` JSON, each export JSON
//! shape, `coverage.json`, CloudTrail files plain and gzipped, CloudTrail Lake pages, the
//! inventory, the history, waivers and a control catalogue). Each row is (name, how to make it,
//! expected substrings): a scan of the demo fleet with that one input broken must exit 2 with
//! one line naming the file, the record and what was expected, never panic, and leave the
//! snapshot (which holds an earlier good run) byte for byte as it was.
//!
//! Accepted on purpose, asserted as such (exit 0, the same findings as the intact fleet):
//! - CRLF line ends in every text format tried (the credential report CSV, export JSON, the
//!   inventory TOML, the history JSON Lines): each reader takes `\r\n` as a line end, and
//!   Windows tools write it.
//! - A UTF-8 byte-order mark at the start of the credential report CSV (spreadsheets add one),
//!   of an export JSON file and of the inventory: the readers skip it.
//! - Refused with a BOM, naming the file, line 1 and column 1: a CloudTrail file and the history
//!   (JSON Lines), whose readers take the bytes as AWS and pipelines write them.
//! - CloudTrail records CloudTrail's own variety could explain (an `eventTime` that is not RFC
//!   3339, members the reader does not use nested 100,000 deep) are a counted skip, printed with
//!   the scan's summary, by design (src/collect/cloudtrail.rs, "Errors and skips"); those rows
//!   assert the count and the reason instead.
//!
//! Unreadable files: `chmod 000` means nothing to root (CI runs as root), so that row is skipped
//! there and says so; the rows with a FIFO, a directory and a symlink to a device where a file
//! belongs make "cannot be read" meaningful for every user.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What a row expects of the scan.
#[derive(Clone, Copy)]
enum Expect {
    /// Exit 2, one line, holding every fragment.
    Rejected(&'static [&'static str]),
    /// Exit 0 and the findings of the intact fleet.
    Same,
    /// Exit 0, with every fragment in what the scan printed or in the bundle's list of the
    /// CloudTrail files read (a documented, counted skip, or a file read as it is).
    Skipped(&'static [&'static str]),
}

/// Where a row builds its input: the copied fleet, and a scratch folder outside it.
struct Ctx {
    fleet: PathBuf,
    scratch: PathBuf,
}

impl Ctx {
    /// The first account's folder.
    fn account(&self) -> PathBuf {
        self.fleet.join("aws/111122223333")
    }
    fn iam(&self, file: &str) -> PathBuf {
        self.account().join("iam").join(file)
    }
    fn secrets(&self) -> PathBuf {
        self.account()
            .join("secretsmanager/us-east-1/list-secrets.json")
    }
    fn cloudtrail(&self, name: &str) -> PathBuf {
        let dir = self.fleet.join("cloudtrail");
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }
    fn lake(&self, name: &str) -> PathBuf {
        let dir = self.fleet.join("cloudtrail-lake");
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }
    /// A copy of the built-in CIS catalogue in a folder given with `--controls-dir`.
    fn controls(&self) -> (PathBuf, Vec<String>) {
        let dir = self.scratch.join("controls");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("extra.toml");
        std::fs::write(&file, EXTRA_CONTROLS).unwrap();
        (
            file,
            vec!["--controls-dir".into(), dir.display().to_string()],
        )
    }
}

/// A small valid extra catalogue.
const EXTRA_CONTROLS: &str = r#"[framework]
id = "internal"
name = "Internal credential standard"
version = "1"

[[controls]]
id = "ICS-1"
title = "Keys rotate on time"
reason = "Stale keys leak."
rules = ["rotation-overdue"]
"#;

type Make = fn(&Ctx) -> Vec<String>;

struct Case {
    name: &'static str,
    make: Make,
    expect: Expect,
}

const fn case(name: &'static str, make: Make, expect: &'static [&'static str]) -> Case {
    Case {
        name,
        make,
        expect: Expect::Rejected(expect),
    }
}

const fn skipped(name: &'static str, make: Make, expect: &'static [&'static str]) -> Case {
    Case {
        name,
        make,
        expect: Expect::Skipped(expect),
    }
}

const fn accepted(name: &'static str, make: Make) -> Case {
    Case {
        name,
        make,
        expect: Expect::Same,
    }
}

// Helpers that break files.

fn edit(path: &Path, f: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, f(text)).unwrap();
}

fn edit_bytes(path: &Path, f: impl FnOnce(Vec<u8>) -> Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, f(bytes)).unwrap();
}

fn edit_json(path: &Path, f: impl FnOnce(&mut Value)) {
    let mut doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    f(&mut doc);
    std::fs::write(path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
}

fn truncate_half(path: &Path) {
    edit_bytes(path, |b| b[..b.len() / 2].to_vec());
}

fn crlf(path: &Path) {
    edit(path, |t| t.replace("\r\n", "\n").replace('\n', "\r\n"));
}

fn bom(path: &Path) {
    edit_bytes(path, |b| [b"\xef\xbb\xbf".as_slice(), &b].concat());
}

/// Replaces the first `from` with bytes that are not UTF-8.
fn invalid_utf8(path: &Path, from: &str) {
    edit_bytes(path, |b| {
        let at = b
            .windows(from.len())
            .position(|w| w == from.as_bytes())
            .expect("anchor present");
        [&b[..at], b"\xff\xfe\xc3(", &b[at + from.len()..]].concat()
    });
}

fn nul_pad(path: &Path) {
    edit_bytes(path, |mut b| {
        b.extend(std::iter::repeat_n(0u8, 4096));
        b
    });
}

/// `depth` nested arrays.
fn deep_json(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// Replaces line `n` (1-based) of a CSV file by what `f` makes of its fields.
fn csv_row(path: &Path, n: usize, f: impl FnOnce(&mut Vec<String>)) {
    edit(path, |t| {
        let mut lines: Vec<String> = t.lines().map(str::to_string).collect();
        let mut fields: Vec<String> = lines[n - 1].split(',').map(str::to_string).collect();
        f(&mut fields);
        lines[n - 1] = fields.join(",");
        lines.join("\n") + "\n"
    });
}

/// Index of a credential report column.
fn column(name: &str) -> usize {
    const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";
    HEADER.split(',').position(|c| c == name).unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A valid CloudTrail S3 delivery file of two records in the demo account.
fn trail() -> Value {
    serde_json::json!({"Records": [
        {"eventVersion": "1.08",
         "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::111122223333:user/ci-deploy",
                          "accountId": "111122223333", "accessKeyId": "AKIABBBYD3IDZRWLGVSG", "userName": "ci-deploy"},
         "eventTime": "2026-10-30T09:15:02Z", "eventSource": "sqs.amazonaws.com", "eventName": "SendMessage",
         "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.10", "userAgent": "aws-cli/2.15.0"},
        {"eventVersion": "1.08",
         "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::111122223333:user/ci-deploy",
                          "accountId": "111122223333", "accessKeyId": "AKIABBBYD3IDZRWLGVSG", "userName": "ci-deploy"},
         "eventTime": "2026-10-30T09:16:02Z", "eventSource": "sqs.amazonaws.com", "eventName": "SendMessage",
         "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.10", "userAgent": "aws-cli/2.15.0"}
    ]})
}

fn write_trail(ctx: &Ctx, f: impl FnOnce(&mut Value)) -> PathBuf {
    let mut doc = trail();
    f(&mut doc);
    let path = ctx.cloudtrail("2026-10-30.json");
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    path
}

/// A valid CloudTrail Lake folder: `query.json` and one usage page.
fn write_lake(ctx: &Ctx, page: Value) {
    let query = serde_json::json!({
        "eventDataStore": "eds-1",
        "start": "2026-10-02T00:00:00Z",
        "end": "2026-11-01T00:00:00Z",
        "queries": [{"name": "usage", "queryId": "q-1", "statement": "SELECT 1", "status": "FINISHED"}]
    });
    std::fs::write(ctx.lake("query.json"), serde_json::to_vec(&query).unwrap()).unwrap();
    std::fs::write(
        ctx.lake("usage-0001.json"),
        serde_json::to_vec(&page).unwrap(),
    )
    .unwrap();
}

fn lake_page(rows: Value) -> Value {
    serde_json::json!({"QueryStatus": "FINISHED", "QueryResultRows": rows})
}

fn lake_row(window_start: &str, calls: &str) -> Value {
    serde_json::json!([
        {"accessKeyId": "AKIABBBYD3IDZRWLGVSG"}, {"secretId": null}, {"secretIdList": null},
        {"windowStart": window_start}, {"eventSource": "sqs.amazonaws.com"},
        {"eventName": "SendMessage"}, {"sourceIPAddress": "203.0.113.10"},
        {"awsRegion": "us-east-1"}, {"errorCode": null}, {"account": "111122223333"},
        {"calls": calls}
    ])
}

fn waivers(ctx: &Ctx, text: &str) {
    std::fs::write(ctx.fleet.join("waivers.toml"), text).unwrap();
}

fn make_fifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

const VALID_WAIVER: &str = r#"[[waivers]]
rule = "unused-credential"
credential = "AKIABBBYD3IDZRWLGVSG"
reason = "migration"
approver = "ciso"
ticket = "SEC-1"
expires = 2027-01-31
"#;

fn cases() -> Vec<Case> {
    vec![
        // The credential report, CSV.
        case(
            "csv: truncated mid-row",
            |c| {
                edit(&c.iam("credential-report.csv"), |t| {
                    let cut = t.find("\n").unwrap() + 1 + (t[t.find('\n').unwrap()..].len() / 3);
                    t[..cut].to_string()
                });
                vec![]
            },
            &["credential-report.csv", "line ", "expected 22 fields"],
        ),
        case(
            "csv: a header column missing",
            |c| {
                edit(&c.iam("credential-report.csv"), |t| {
                    t.replacen(",mfa_active,", ",", 1)
                });
                vec![]
            },
            &["credential-report.csv", "mfa_active"],
        ),
        case(
            "csv: a boolean that is not one",
            |c| {
                csv_row(&c.iam("credential-report.csv"), 3, |f| {
                    f[column("password_enabled")] = "maybe".into()
                });
                vec![]
            },
            &[
                "credential-report.csv",
                "line 3",
                "password_enabled",
                "maybe",
            ],
        ),
        case(
            "csv: an impossible date",
            |c| {
                csv_row(&c.iam("credential-report.csv"), 3, |f| {
                    f[column("user_creation_time")] = "2026-02-30T00:00:00+00:00".into()
                });
                vec![]
            },
            &[
                "credential-report.csv",
                "line 3",
                "user_creation_time",
                "2026-02-30",
            ],
        ),
        case(
            "csv: a time zone out of range",
            |c| {
                csv_row(&c.iam("credential-report.csv"), 3, |f| {
                    f[column("user_creation_time")] = "2026-01-01T00:00:00+25:00".into()
                });
                vec![]
            },
            &[
                "credential-report.csv",
                "line 3",
                "user_creation_time",
                "+25:00",
            ],
        ),
        case(
            "csv: invalid UTF-8",
            |c| {
                invalid_utf8(&c.iam("credential-report.csv"), "breakglass-admin");
                vec![]
            },
            &[
                "credential-report.csv",
                "line 3, column 1",
                "expected UTF-8",
            ],
        ),
        accepted("csv: a byte-order mark is accepted", |c| {
            bom(&c.iam("credential-report.csv"));
            vec![]
        }),
        accepted("csv: CRLF line ends are accepted", |c| {
            crlf(&c.iam("credential-report.csv"));
            vec![]
        }),
        case(
            "csv: a 4 MiB field",
            |c| {
                csv_row(&c.iam("credential-report.csv"), 3, |f| {
                    f[column("password_last_used")] = "9".repeat(4 << 20)
                });
                vec![]
            },
            &["credential-report.csv", "line 3", "password_last_used"],
        ),
        case(
            "csv: 10^6 columns",
            |c| {
                edit(&c.iam("credential-report.csv"), |t| {
                    let (header, rest) = t.split_once('\n').unwrap();
                    let extra: String = (0..1_000_000).map(|i| format!(",x{i}")).collect();
                    format!("{header}{extra}\n{rest}")
                });
                vec![]
            },
            &["credential-report.csv", "line 2", "expected 1000022 fields"],
        ),
        case(
            "csv: the same user twice, the rows disagreeing",
            |c| {
                edit(&c.iam("credential-report.csv"), |t| {
                    let third = t.lines().nth(2).unwrap().replacen(",true,", ",false,", 1);
                    format!("{t}{third}\n")
                });
                vec![]
            },
            &[
                "credential-report.csv",
                "breakglass-admin",
                "listed twice (also at line 3)",
            ],
        ),
        case(
            "csv: empty file",
            |c| {
                std::fs::write(c.iam("credential-report.csv"), "").unwrap();
                vec![]
            },
            &["credential-report.csv", "header"],
        ),
        case(
            "csv: NUL padding",
            |c| {
                nul_pad(&c.iam("credential-report.csv"));
                vec![]
            },
            &["credential-report.csv", "line "],
        ),
        case(
            "csv: a row of another account",
            |c| {
                edit(&c.iam("credential-report.csv"), |t| {
                    t.replacen(
                        "arn:aws:iam::111122223333:user/breakglass-admin",
                        "arn:aws:iam::999999999999:user/breakglass-admin",
                        1,
                    )
                });
                vec![]
            },
            &[
                "credential-report.csv",
                "line 3",
                "999999999999",
                "111122223333",
            ],
        ),
        // The credential report, as `get-credential-report` JSON.
        case(
            "get-credential-report: Content is not base64",
            |c| {
                let csv = c.iam("credential-report.csv");
                std::fs::remove_file(&csv).unwrap();
                std::fs::write(
                    c.iam("get-credential-report.json"),
                    r#"{"Content": "!!not base64, not CSV!!", "GeneratedTime": "2026-10-31T00:00:00Z", "ReportFormat": "text/csv"}"#,
                )
                .unwrap();
                vec![]
            },
            &["get-credential-report.json", "Content"],
        ),
        case(
            "get-credential-report: Content of the wrong type",
            |c| {
                std::fs::remove_file(c.iam("credential-report.csv")).unwrap();
                std::fs::write(
                    c.iam("get-credential-report.json"),
                    r#"{"Content": 42, "GeneratedTime": "2026-10-31T00:00:00Z", "ReportFormat": "text/csv"}"#,
                )
                .unwrap();
                vec![]
            },
            &["get-credential-report.json", "Content", "expected"],
        ),
        case(
            "get-credential-report: truncated",
            |c| {
                let csv = std::fs::read_to_string(c.iam("credential-report.csv")).unwrap();
                std::fs::remove_file(c.iam("credential-report.csv")).unwrap();
                let doc = serde_json::json!({"Content": csv, "GeneratedTime": "2026-10-31T00:00:00Z", "ReportFormat": "text/csv"}).to_string();
                std::fs::write(c.iam("get-credential-report.json"), &doc[..doc.len() - 40])
                    .unwrap();
                vec![]
            },
            &["get-credential-report.json", "line 1"],
        ),
        case(
            "get-credential-report: a bad row inside base64 Content",
            |c| {
                use base64::Engine;
                let csv = std::fs::read_to_string(c.iam("credential-report.csv")).unwrap();
                std::fs::remove_file(c.iam("credential-report.csv")).unwrap();
                let csv = csv.replacen("07:11:07+00:00,true,", "07:11:07+00:00,perhaps,", 1);
                let content = base64::engine::general_purpose::STANDARD.encode(csv);
                std::fs::write(
                    c.iam("get-credential-report.json"),
                    serde_json::json!({"Content": content, "GeneratedTime": "2026-10-31T00:00:00Z", "ReportFormat": "text/csv"}).to_string(),
                )
                .unwrap();
                vec![]
            },
            &[
                "get-credential-report.json",
                "line 3",
                "password_enabled",
                "perhaps",
            ],
        ),
        case(
            "get-credential-report: disagrees with credential-report.csv",
            |c| {
                let csv = std::fs::read_to_string(c.iam("credential-report.csv")).unwrap();
                let other =
                    csv.replacen("2025-03-29T07:11:07+00:00", "2025-03-29T07:11:08+00:00", 1);
                std::fs::write(
                    c.iam("get-credential-report.json"),
                    serde_json::json!({"Content": other, "GeneratedTime": "2026-10-31T00:00:00Z", "ReportFormat": "text/csv"}).to_string(),
                )
                .unwrap();
                vec![]
            },
            &[
                "get-credential-report.json",
                "credential-report.csv",
                "different credential report",
            ],
        ),
        // list-users.json
        case(
            "list-users: truncated",
            |c| {
                truncate_half(&c.iam("list-users.json"));
                vec![]
            },
            &["list-users.json", "line ", "truncated"],
        ),
        case(
            "list-users: Users of the wrong type",
            |c| {
                std::fs::write(c.iam("list-users.json"), r#"{"Users": {"UserName": "x"}}"#)
                    .unwrap();
                vec![]
            },
            &["list-users.json", "line 1 column 10", "expected a sequence"],
        ),
        case(
            "list-users: a date without an offset",
            |c| {
                edit_json(&c.iam("list-users.json"), |d| {
                    d["Users"][1]["CreateDate"] = "2024-03-22T23:00:00".into()
                });
                vec![]
            },
            &[
                "list-users.json",
                "Users[1].CreateDate",
                "2024-03-22T23:00:00",
            ],
        ),
        case(
            "list-users: 100,000 nested arrays",
            |c| {
                std::fs::write(c.iam("list-users.json"), deep_json(100_000)).unwrap();
                vec![]
            },
            &["list-users.json", "line 1", "recursion limit"],
        ),
        case(
            "list-users: invalid UTF-8",
            |c| {
                invalid_utf8(&c.iam("list-users.json"), "ci-deploy");
                vec![]
            },
            &["list-users.json", "line 12, column", "expected UTF-8"],
        ),
        accepted(
            "list-users: a byte-order mark is accepted (export JSON)",
            |c| {
                bom(&c.iam("list-users.json"));
                vec![]
            },
        ),
        case(
            "list-users: a user of another account",
            |c| {
                edit_json(&c.iam("list-users.json"), |d| {
                    d["Users"][1]["Arn"] = "arn:aws:iam::999999999999:user/ci-deploy".into()
                });
                vec![]
            },
            &["list-users.json", "Users[1]", "999999999999"],
        ),
        case(
            "list-users: a directory where the file belongs",
            |c| {
                std::fs::remove_file(c.iam("list-users.json")).unwrap();
                std::fs::create_dir(c.iam("list-users.json")).unwrap();
                vec![]
            },
            &["list-users.json", "regular file"],
        ),
        case(
            "list-users: a FIFO where the file belongs",
            |c| {
                make_fifo(&c.iam("list-users.json"));
                vec![]
            },
            &["list-users.json", "regular file"],
        ),
        case(
            "list-users: a symlink out of the export directory",
            |c| {
                let outside = c.scratch.join("users.json");
                std::fs::copy(c.iam("list-users.json"), &outside).unwrap();
                std::fs::remove_file(c.iam("list-users.json")).unwrap();
                std::os::unix::fs::symlink(&outside, c.iam("list-users.json")).unwrap();
                vec![]
            },
            &["list-users.json", "outside"],
        ),
        case(
            "list-users: a symlink to a device",
            |c| {
                std::fs::remove_file(c.iam("list-users.json")).unwrap();
                std::os::unix::fs::symlink("/dev/zero", c.iam("list-users.json")).unwrap();
                vec![]
            },
            &["list-users.json"],
        ),
        // list-access-keys.json
        case(
            "list-access-keys: the same key twice",
            |c| {
                edit_json(&c.iam("list-access-keys.json"), |d| {
                    let page = d[1].clone();
                    d.as_array_mut().unwrap().push(page);
                });
                vec![]
            },
            &["list-access-keys.json", "AKIABBBYD3IDZRWLGVSG", "twice"],
        ),
        case(
            "list-access-keys: an unknown Status",
            |c| {
                edit_json(&c.iam("list-access-keys.json"), |d| {
                    d[1]["AccessKeyMetadata"][0]["Status"] = "Maybe".into()
                });
                vec![]
            },
            &[
                "list-access-keys.json",
                "[1].AccessKeyMetadata[0].Status",
                "Maybe",
            ],
        ),
        case(
            "list-access-keys: an epoch date out of range",
            |c| {
                edit_json(&c.iam("list-access-keys.json"), |d| {
                    d[1]["AccessKeyMetadata"][0]["CreateDate"] = serde_json::json!(1e20)
                });
                vec![]
            },
            &[
                "list-access-keys.json",
                "[1].AccessKeyMetadata[0].CreateDate",
                "out of range",
                "expected seconds since 1970",
            ],
        ),
        case(
            "list-access-keys: an impossible date",
            |c| {
                edit_json(&c.iam("list-access-keys.json"), |d| {
                    d[1]["AccessKeyMetadata"][0]["CreateDate"] = "2026-13-01T00:00:00Z".into()
                });
                vec![]
            },
            &[
                "list-access-keys.json",
                "[1].AccessKeyMetadata[0].CreateDate",
                "2026-13-01",
            ],
        ),
        accepted("list-access-keys: CRLF line ends are accepted", |c| {
            crlf(&c.iam("list-access-keys.json"));
            vec![]
        }),
        case(
            "list-access-keys: NUL padding",
            |c| {
                nul_pad(&c.iam("list-access-keys.json"));
                vec![]
            },
            &["list-access-keys.json", "line "],
        ),
        case(
            "list-access-keys: empty file",
            |c| {
                std::fs::write(c.iam("list-access-keys.json"), "").unwrap();
                vec![]
            },
            &["list-access-keys.json", "line 1"],
        ),
        case(
            "list-access-keys: a bare string",
            |c| {
                std::fs::write(c.iam("list-access-keys.json"), "\"AKIA\"").unwrap();
                vec![]
            },
            &["list-access-keys.json", "expected"],
        ),
        // get-access-key-last-used.json, list-user-tags.json
        case(
            "get-access-key-last-used: AccessKeyId missing",
            |c| {
                edit_json(&c.iam("get-access-key-last-used.json"), |d| {
                    d[0].as_object_mut().unwrap().remove("AccessKeyId");
                });
                vec![]
            },
            &["get-access-key-last-used.json", "[0]", "AccessKeyId"],
        ),
        case(
            "get-access-key-last-used: an impossible date",
            |c| {
                edit_json(&c.iam("get-access-key-last-used.json"), |d| {
                    d[0]["AccessKeyLastUsed"]["LastUsedDate"] = "2026-10-31T25:00:00Z".into()
                });
                vec![]
            },
            &[
                "get-access-key-last-used.json",
                "[0].AccessKeyLastUsed.LastUsedDate",
                "not a real date",
            ],
        ),
        case(
            "list-user-tags: Tags of the wrong type",
            |c| {
                edit_json(&c.iam("list-user-tags.json"), |d| {
                    d[0]["Tags"] = "owner=x".into()
                });
                vec![]
            },
            &[
                "list-user-tags.json",
                "line 4 column 21",
                "expected a sequence",
            ],
        ),
        case(
            "list-user-tags: UserName missing",
            |c| {
                edit_json(&c.iam("list-user-tags.json"), |d| {
                    d[0].as_object_mut().unwrap().remove("UserName");
                });
                vec![]
            },
            &["list-user-tags.json", "[0]", "UserName"],
        ),
        // list-secrets.json, describe-secret.json, folders
        case(
            "list-secrets: truncated",
            |c| {
                truncate_half(&c.secrets());
                vec![]
            },
            &["list-secrets.json", "line ", "truncated"],
        ),
        case(
            "list-secrets: the same ARN twice",
            |c| {
                edit_json(&c.secrets(), |d| {
                    let first = d["SecretList"][0].clone();
                    d["SecretList"].as_array_mut().unwrap().push(first);
                });
                vec![]
            },
            &["list-secrets.json", "SecretList", "twice"],
        ),
        case(
            "list-secrets: RotationEnabled of the wrong type",
            |c| {
                edit_json(&c.secrets(), |d| {
                    d["SecretList"][0]["RotationEnabled"] = "yes".into()
                });
                vec![]
            },
            &[
                "list-secrets.json",
                "SecretList[0].RotationEnabled",
                "expected",
            ],
        ),
        case(
            "list-secrets: a time zone out of range",
            |c| {
                edit_json(&c.secrets(), |d| {
                    d["SecretList"][0]["CreatedDate"] = "2026-01-01T00:00:00+24:30".into()
                });
                vec![]
            },
            &["list-secrets.json", "SecretList[0].CreatedDate", "+24:30"],
        ),
        case(
            "list-secrets: a number beyond f64",
            |c| {
                edit(&c.secrets(), |t| {
                    t.replacen(
                        "\"RotationEnabled\": true",
                        "\"RotationEnabled\": true, \"LastAccessedDate\": 1e400",
                        1,
                    )
                });
                vec![]
            },
            &["list-secrets.json", "line "],
        ),
        case(
            "list-secrets: a secret of another region",
            |c| {
                edit_json(&c.secrets(), |d| {
                    let arn = d["SecretList"][0]["ARN"]
                        .as_str()
                        .unwrap()
                        .replace(":us-east-1:", ":eu-west-1:");
                    d["SecretList"][0]["ARN"] = arn.into();
                });
                vec![]
            },
            &["list-secrets.json", "SecretList[0]", "eu-west-1"],
        ),
        accepted(
            "list-secrets: 100,000 nested objects in a member not read",
            |c| {
                edit(&c.secrets(), |t| {
                    let deep = format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
                    t.replacen(
                        "\"RotationEnabled\": true",
                        &format!("\"RotationEnabled\": true, \"Extra\": {deep}"),
                        1,
                    )
                });
                vec![]
            },
        ),
        case(
            "list-secrets: put in secretsmanager/ without a region folder",
            |c| {
                std::fs::copy(
                    c.secrets(),
                    c.account().join("secretsmanager/list-secrets.json"),
                )
                .unwrap();
                vec![]
            },
            &["secretsmanager/list-secrets.json", "region"],
        ),
        case(
            "export: a region folder that is not a region",
            |c| {
                std::fs::rename(
                    c.account().join("secretsmanager/us-east-1"),
                    c.account().join("secretsmanager/US_EAST"),
                )
                .unwrap();
                vec![]
            },
            &["US_EAST", "region"],
        ),
        case(
            "export: an account folder that is not an account id",
            |c| {
                std::fs::rename(c.account(), c.fleet.join("aws/1111")).unwrap();
                vec![]
            },
            &["aws/1111", "12-digit"],
        ),
        case(
            "describe-secret: RotationRules of the wrong type",
            |c| {
                let arn = {
                    let d: Value =
                        serde_json::from_slice(&std::fs::read(c.secrets()).unwrap()).unwrap();
                    d["SecretList"][0]["ARN"].clone()
                };
                std::fs::write(
                    c.secrets().with_file_name("describe-secret.json"),
                    serde_json::json!([{"ARN": arn, "RotationRules": [7]}]).to_string(),
                )
                .unwrap();
                vec![]
            },
            &[
                "describe-secret.json",
                "line 1 column",
                "expected struct RotationRules",
            ],
        ),
        // coverage.json
        case(
            "coverage: an object, not an array",
            |c| {
                std::fs::write(
                    c.fleet.join("coverage.json"),
                    r#"{"account": "111122223333"}"#,
                )
                .unwrap();
                vec![]
            },
            &["coverage.json", "expected"],
        ),
        case(
            "coverage: ok of the wrong type",
            |c| {
                std::fs::write(
                    c.fleet.join("coverage.json"),
                    r#"[{"account": "111122223333", "region": "global", "api": "iam:list-users", "ok": "no", "error": "AccessDenied", "records": 0}]"#,
                )
                .unwrap();
                vec![]
            },
            &["coverage.json", "line 1 column 84", "expected a boolean"],
        ),
        case(
            "coverage: api missing",
            |c| {
                std::fs::write(
                    c.fleet.join("coverage.json"),
                    r#"[{"account": "111122223333", "region": "global", "ok": false, "error": "AccessDenied", "records": 0}]"#,
                )
                .unwrap();
                vec![]
            },
            &["coverage.json", "line 1 column 100", "missing field `api`"],
        ),
        case(
            "coverage: truncated",
            |c| {
                std::fs::write(c.fleet.join("coverage.json"), r#"[{"account": "1111222233"#)
                    .unwrap();
                vec![]
            },
            &["coverage.json", "line 1"],
        ),
        // CloudTrail files, plain and gzipped.
        case(
            "cloudtrail: truncated",
            |c| {
                let path = write_trail(c, |_| {});
                truncate_half(&path);
                vec![]
            },
            &["2026-10-30.json", "truncated"],
        ),
        case(
            "cloudtrail: .gz stream cut short",
            |c| {
                let gz = gzip(&serde_json::to_vec(&trail()).unwrap());
                std::fs::write(c.cloudtrail("2026-10-30.json.gz"), &gz[..gz.len() / 2]).unwrap();
                vec![]
            },
            &["2026-10-30.json.gz"],
        ),
        case(
            "cloudtrail: .gz with a corrupt gzip header",
            |c| {
                std::fs::write(
                    c.cloudtrail("2026-10-30.json.gz"),
                    b"\x1f\x8b\x08\xff garbage, not deflate",
                )
                .unwrap();
                vec![]
            },
            &["2026-10-30.json.gz", "gzip"],
        ),
        skipped(
            "cloudtrail: plain JSON named .gz is read as JSON",
            |c| {
                std::fs::write(
                    c.cloudtrail("2026-10-30.json.gz"),
                    serde_json::to_vec(&trail()).unwrap(),
                )
                .unwrap();
                vec![]
            },
            &["cloudtrail/2026-10-30.json"],
        ),
        case(
            "cloudtrail: a gzip bomb",
            |c| {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                encoder.write_all(b"{\"Records\": [").unwrap();
                let zeros = vec![b' '; 1 << 20];
                for _ in 0..64 {
                    encoder.write_all(&zeros).unwrap();
                }
                std::fs::write(c.cloudtrail("bomb.json.gz"), encoder.finish().unwrap()).unwrap();
                vec!["--max-decompressed-size".into(), "16M".into()]
            },
            &["bomb.json.gz", "--max-decompressed-size"],
        ),
        // A record CloudTrail's own variety could explain is a counted skip, reported, by
        // design (src/collect/cloudtrail.rs, "Errors and skips").
        skipped(
            "cloudtrail: eventTime of the wrong type is a counted skip",
            |c| {
                write_trail(c, |d| d["Records"][1]["eventTime"] = 5.into());
                vec![]
            },
            &["skipped 1", "missing eventTime"],
        ),
        skipped(
            "cloudtrail: an impossible eventTime is a counted skip",
            |c| {
                write_trail(c, |d| {
                    d["Records"][1]["eventTime"] = "2026-02-30T00:00:00Z".into()
                });
                vec![]
            },
            &["skipped 1", "eventTime is not an RFC 3339 time"],
        ),
        case(
            "cloudtrail: a record over --max-record-size",
            |c| {
                write_trail(c, |d| {
                    d["Records"][1]["userAgent"] = "x".repeat(2 << 20).into()
                });
                vec!["--max-record-size".into(), "1M".into()]
            },
            &["2026-10-30.json", "--max-record-size"],
        ),
        skipped(
            "cloudtrail: 100,000 nested arrays in a member not read",
            |c| {
                let path = write_trail(c, |_| {});
                edit(&path, |t| {
                    t.replacen(
                        "\"userAgent\"",
                        &format!(
                            "\"requestParameters\": {}, \"userAgent\"",
                            deep_json(100_000)
                        ),
                        1,
                    )
                });
                vec![]
            },
            &["cloudtrail/2026-10-30.json"],
        ),
        case(
            "cloudtrail: invalid UTF-8",
            |c| {
                let path = write_trail(c, |_| {});
                invalid_utf8(&path, "SendMessage");
                vec![]
            },
            &["2026-10-30.json", "record 1", "invalid unicode code point"],
        ),
        case(
            "cloudtrail: a byte-order mark",
            |c| {
                let path = write_trail(c, |_| {});
                bom(&path);
                vec![]
            },
            &["2026-10-30.json", "line 1, column 1", "expected value"],
        ),
        case(
            "cloudtrail: Records of the wrong type",
            |c| {
                write_trail(c, |d| d["Records"] = 5.into());
                vec![]
            },
            &[
                "2026-10-30.json",
                "line 1, column 13",
                "expected an array of CloudTrail records",
            ],
        ),
        case(
            "cloudtrail: a symlink out of the export directory",
            |c| {
                let outside = c.scratch.join("trail.json");
                std::fs::write(&outside, serde_json::to_vec(&trail()).unwrap()).unwrap();
                std::os::unix::fs::symlink(&outside, c.cloudtrail("2026-10-30.json")).unwrap();
                vec![]
            },
            &["2026-10-30.json", "outside"],
        ),
        case(
            "cloudtrail: a FIFO given with --cloudtrail",
            |c| {
                let fifo = c.scratch.join("trail.json");
                make_fifo(&fifo);
                vec!["--cloudtrail".into(), fifo.display().to_string()]
            },
            &["trail.json", "regular file"],
        ),
        // CloudTrail Lake pages.
        case(
            "lake: query.json truncated",
            |c| {
                write_lake(c, lake_page(serde_json::json!([])));
                truncate_half(&c.lake("query.json"));
                vec![]
            },
            &["query.json", "line 1"],
        ),
        case(
            "lake: query.json with an unknown member",
            |c| {
                write_lake(c, lake_page(serde_json::json!([])));
                edit_json(&c.lake("query.json"), |d| d["region"] = "us-east-1".into());
                vec![]
            },
            &["query.json", "region"],
        ),
        case(
            "lake: an unknown query name",
            |c| {
                write_lake(c, lake_page(serde_json::json!([])));
                edit_json(&c.lake("query.json"), |d| {
                    d["queries"][0]["name"] = "everything".into()
                });
                vec![]
            },
            &["query.json", "everything"],
        ),
        case(
            "lake: a page that is not JSON",
            |c| {
                write_lake(c, lake_page(serde_json::json!([])));
                std::fs::write(c.lake("usage-0001.json"), "QueryResultRows: none").unwrap();
                vec![]
            },
            &["usage-0001.json", "line 1"],
        ),
        case(
            "lake: a value that is not a string",
            |c| {
                let mut row = lake_row("1793000000", "3");
                row[10] = serde_json::json!({"calls": 3});
                write_lake(
                    c,
                    lake_page(serde_json::json!([lake_row("1793000000", "1"), row])),
                );
                vec![]
            },
            &[
                "usage-0001.json",
                "QueryResultRows[1]",
                "expected string values",
            ],
        ),
        case(
            "lake: a windowStart that is not an integer",
            |c| {
                write_lake(
                    c,
                    lake_page(serde_json::json!([lake_row("yesterday", "1")])),
                );
                vec![]
            },
            &["usage-0001.json", "QueryResultRows[0]", "windowStart"],
        ),
        case(
            "lake: a row that is not a list of one-member objects",
            |c| {
                write_lake(c, lake_page(serde_json::json!([{"accessKeyId": "AKIA"}])));
                vec![]
            },
            &["usage-0001.json", "QueryResultRows[0]"],
        ),
        // The declared inventory.
        case(
            "inventory: truncated",
            |c| {
                edit(&c.fleet.join("inventory.toml"), |t| {
                    let at = t.find("[[credentials]]").unwrap() + 4;
                    t[..at].to_string()
                });
                vec![]
            },
            &["inventory.toml", "line "],
        ),
        case(
            "inventory: invalid UTF-8",
            |c| {
                invalid_utf8(&c.fleet.join("inventory.toml"), "Payments team");
                vec![]
            },
            &["inventory.toml", "line 7, column", "expected UTF-8"],
        ),
        accepted("inventory: a byte-order mark is accepted", |c| {
            bom(&c.fleet.join("inventory.toml"));
            vec![]
        }),
        accepted("inventory: CRLF line ends are accepted", |c| {
            crlf(&c.fleet.join("inventory.toml"));
            vec![]
        }),
        case(
            "inventory: automated of the wrong type",
            |c| {
                edit(&c.fleet.join("inventory.toml"), |t| {
                    t.replacen("automated = true", "automated = \"yes\"", 1)
                });
                vec![]
            },
            &["inventory.toml", "line 77", "expected a boolean"],
        ),
        case(
            "inventory: the same credential id twice",
            |c| {
                edit(&c.fleet.join("inventory.toml"), |t| {
                    let start = t.find("[[credentials]]").unwrap();
                    let end = t[start + 1..].find("[[credentials]]").unwrap() + start + 1;
                    let block = t[start..end].to_string();
                    format!("{t}\n{block}")
                });
                vec![]
            },
            &["inventory.toml", "duplicate credential id"],
        ),
        case(
            "inventory: 100,000 nested arrays",
            |c| {
                edit(&c.fleet.join("inventory.toml"), |t| {
                    format!("deep = {}\n{t}", deep_json(100_000))
                });
                vec![]
            },
            &["inventory.toml", "line 1"],
        ),
        case(
            "inventory: an interval beyond the calendar",
            |c| {
                edit(&c.fleet.join("inventory.toml"), |t| {
                    t.replacen(
                        "automated = ",
                        "interval_days = 9223372036854775807\nautomated = ",
                        1,
                    )
                });
                vec![]
            },
            &["inventory.toml", "line 77", "expected u32"],
        ),
        case(
            "inventory: a directory given with --inventory",
            |c| vec!["--inventory".into(), c.scratch.display().to_string()],
            &["regular file"],
        ),
        case(
            "inventory: a missing file given with --inventory",
            |c| {
                vec![
                    "--inventory".into(),
                    c.scratch.join("nope.toml").display().to_string(),
                ]
            },
            &["nope.toml"],
        ),
        // The rotation history.
        case(
            "history: the last line truncated",
            |c| {
                edit(&c.fleet.join("history.jsonl"), |t| {
                    let t = t.trim_end();
                    t[..t.len() - 20].to_string()
                });
                vec![]
            },
            &["history.jsonl", "line 1452"],
        ),
        case(
            "history: invalid UTF-8",
            |c| {
                invalid_utf8(&c.fleet.join("history.jsonl"), "policy v3");
                vec![]
            },
            &["history.jsonl", "line 1", "expected UTF-8"],
        ),
        case(
            "history: a byte-order mark",
            |c| {
                bom(&c.fleet.join("history.jsonl"));
                vec![]
            },
            &["history.jsonl", "line 1"],
        ),
        accepted("history: CRLF line ends are accepted", |c| {
            crlf(&c.fleet.join("history.jsonl"));
            vec![]
        }),
        case(
            "history: an impossible date",
            |c| {
                edit(&c.fleet.join("history.jsonl"), |t| {
                    format!(
                        "{t}{{\"time\":\"2026-02-30T00:00:00Z\",\"type\":\"rotation.completed\",\"credential_id\":\"x\"}}\n"
                    )
                });
                vec![]
            },
            &["history.jsonl", "line 1453", "2026-02-30"],
        ),
        case(
            "history: a time zone out of range",
            |c| {
                edit(&c.fleet.join("history.jsonl"), |t| {
                    format!(
                        "{t}{{\"time\":\"2026-02-03T00:00:00+99:00\",\"type\":\"rotation.completed\",\"credential_id\":\"x\"}}\n"
                    )
                });
                vec![]
            },
            &["history.jsonl", "line 1453", "+99:00"],
        ),
        case(
            "history: an unknown event type",
            |c| {
                edit(&c.fleet.join("history.jsonl"), |t| {
                    format!(
                        "{t}{{\"time\":\"2026-02-03T00:00:00Z\",\"type\":\"rotation.maybe\",\"credential_id\":\"x\"}}\n"
                    )
                });
                vec![]
            },
            &["history.jsonl", "line 1453", "rotation.maybe"],
        ),
        case(
            "history: 100,000 nested arrays in details",
            |c| {
                edit(&c.fleet.join("history.jsonl"), |t| {
                    format!(
                        "{{\"time\":\"2026-02-03T00:00:00Z\",\"type\":\"rotation.completed\",\"credential_id\":\"x\",\"details\":{}}}\n{t}",
                        deep_json(100_000)
                    )
                });
                vec![]
            },
            &["history.jsonl", "line 1", "recursion limit"],
        ),
        case(
            "history: a FIFO where the file belongs",
            |c| {
                make_fifo(&c.fleet.join("history.jsonl"));
                vec![]
            },
            &["history.jsonl", "regular file"],
        ),
        case(
            "history: unreadable (chmod 000)",
            |c| {
                let path = c.fleet.join("history.jsonl");
                std::fs::set_permissions(
                    &path,
                    std::os::unix::fs::PermissionsExt::from_mode(0o000),
                )
                .unwrap();
                vec![]
            },
            &["history.jsonl", "ermission denied"],
        ),
        // Waivers.
        case(
            "waivers: expires missing",
            |c| {
                waivers(c, &VALID_WAIVER.replace("expires = 2027-01-31\n", ""));
                vec![]
            },
            &["waivers.toml", "expires"],
        ),
        case(
            "waivers: an impossible expiry",
            |c| {
                waivers(c, &VALID_WAIVER.replace("2027-01-31", "2027-02-30"));
                vec![]
            },
            &["waivers.toml", "line 7"],
        ),
        case(
            "waivers: an unknown rule",
            |c| {
                waivers(
                    c,
                    &VALID_WAIVER.replace("unused-credential", "no-such-rule"),
                );
                vec![]
            },
            &["waivers.toml", "no-such-rule"],
        ),
        case(
            "waivers: truncated",
            |c| {
                waivers(c, &VALID_WAIVER[..VALID_WAIVER.len() / 2]);
                vec![]
            },
            &["waivers.toml", "line "],
        ),
        // A control catalogue from --controls-dir.
        case(
            "controls: truncated",
            |c| {
                let (file, args) = c.controls();
                edit(&file, |t| t[..t.len() - 30].to_string());
                args
            },
            &["extra.toml", "line "],
        ),
        case(
            "controls: an unknown rule id",
            |c| {
                let (file, args) = c.controls();
                edit(&file, |t| {
                    t.replace("rotation-overdue", "rotation-sometimes")
                });
                args
            },
            &["extra.toml", "rotation-sometimes"],
        ),
        case(
            "controls: the same control twice",
            |c| {
                let (file, args) = c.controls();
                edit(&file, |t| {
                    let block = t[t.find("[[controls]]").unwrap()..].to_string();
                    format!("{t}\n{block}")
                });
                args
            },
            &["extra.toml", "ICS-1"],
        ),
        case(
            "controls: rules of the wrong type",
            |c| {
                let (file, args) = c.controls();
                edit(&file, |t| {
                    t.replace(
                        "rules = [\"rotation-overdue\"]",
                        "rules = \"rotation-overdue\"",
                    )
                });
                args
            },
            &["extra.toml", "controls[0] (line 6)", "expected a sequence"],
        ),
        case(
            "controls: [framework] missing",
            |c| {
                let (file, args) = c.controls();
                edit(&file, |t| t[t.find("[[controls]]").unwrap()..].to_string());
                args
            },
            &["extra.toml", "framework"],
        ),
    ]
}

/// The intact fleet, scanned once: its snapshot (one good run) and its findings.
struct Baseline {
    _dir: tempfile::TempDir,
    fleet: PathBuf,
    db: PathBuf,
    findings: Value,
}

fn findings_of(bundle: &Path) -> Value {
    let doc: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("findings.json")).unwrap()).unwrap();
    doc["findings"].clone()
}

fn baseline() -> &'static Baseline {
    static BASELINE: OnceLock<Baseline> = OnceLock::new();
    BASELINE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let fleet = dir.path().join("fleet");
        copy_dir(&repo("fixtures/demo-fleet"), &fleet);
        let db = dir.path().join("snapshot.db");
        let bundle = dir.path().join("bundle");
        let (code, _, stderr) = scan(&fleet, &db, Some(&bundle), &["--quiet"]);
        assert_eq!(code, 0, "the intact fleet scans: {stderr}");
        let findings = findings_of(&bundle);
        assert!(!findings.as_array().unwrap().is_empty());
        Baseline {
            fleet,
            db,
            findings,
            _dir: dir,
        }
    })
}

fn sha256(path: &Path) -> String {
    Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs one row; gives why it failed, if it did.
fn run_case(case: &Case) -> Result<String, String> {
    let base = baseline();
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet");
    copy_dir(&base.fleet, &fleet);
    let scratch = dir.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let db = dir.path().join("snapshot.db");
    std::fs::copy(&base.db, &db).unwrap();
    let before = sha256(&db);

    let ctx = Ctx {
        fleet: fleet.clone(),
        scratch,
    };
    let extra = (case.make)(&ctx);
    let bundle = dir.path().join("bundle");
    let output = credaudit()
        .arg("scan")
        .arg("--from")
        .arg(&fleet)
        .arg("--db")
        .arg(&db)
        .args(["--as-of", AS_OF, "--out"])
        .arg(&bundle)
        .args(&extra)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let code = output.status.code().unwrap_or(-1);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let fail = |why: String| Err(format!("{why}\n    stderr: {}", stderr.trim_end()));
    if stderr.contains("panicked") {
        return fail("panicked".into());
    }
    match case.expect {
        Expect::Rejected(fragments) => {
            if code != 2 {
                return fail(format!("exit {code}, expected 2"));
            }
            let missing: Vec<_> = fragments.iter().filter(|f| !stderr.contains(**f)).collect();
            if !missing.is_empty() {
                return fail(format!("message lacks {missing:?}"));
            }
            if stderr.lines().count() != 1 {
                return fail("not one line".into());
            }
            if stderr.len() > 2000 {
                return fail(format!("a {}-byte message echoes the input", stderr.len()));
            }
            if sha256(&db) != before {
                return fail("the snapshot changed".into());
            }
            if bundle.exists() {
                return fail("a bundle was written".into());
            }
            Ok(stderr.trim_end().to_string())
        }
        Expect::Skipped(fragments) => {
            if code != 0 {
                return fail(format!("exit {code}, expected 0 (a counted skip)"));
            }
            // What the scan printed, and the list of CloudTrail files the run read.
            let read = std::fs::read_to_string(bundle.join("raw/cloudtrail-files.json"))
                .unwrap_or_default();
            let missing: Vec<_> = fragments
                .iter()
                .filter(|f| !stderr.contains(**f) && !read.contains(**f))
                .collect();
            if !missing.is_empty() {
                return fail(format!(
                    "output and raw/cloudtrail-files.json lack {missing:?}"
                ));
            }
            Ok(format!("accepted: {}", fragments.join(" … ")))
        }
        Expect::Same => {
            if code != 0 {
                return fail(format!("exit {code}, expected 0 (accepted input)"));
            }
            if findings_of(&bundle) != base.findings {
                return fail("findings differ from the intact fleet's".into());
            }
            Ok("accepted, same findings".into())
        }
    }
}

#[test]
fn every_malformed_input_is_rejected_cleanly() {
    let cases = cases();
    let root = running_as_root();
    let mut failures = Vec::new();
    let mut ran = 0;
    let mut skipped = Vec::new();
    for case in &cases {
        if root && case.name.contains("chmod 000") {
            // Root reads a file whatever its mode: the FIFO, directory and device rows above
            // make an unreadable input meaningful for root as well.
            skipped.push(case.name);
            continue;
        }
        ran += 1;
        match run_case(case) {
            Ok(message) => eprintln!("ok   {}: {message}", case.name),
            Err(why) => {
                eprintln!("FAIL {}: {why}", case.name);
                failures.push(case.name);
            }
        }
    }
    let rejected = cases
        .iter()
        .filter(|c| matches!(c.expect, Expect::Rejected(_)))
        .count();
    eprintln!(
        "bad-input suite: {ran} cases ran ({rejected} malformed inputs, {} accepted forms), \
         {} failed, {} skipped as root: {skipped:?}",
        cases.len() - rejected,
        failures.len(),
        skipped.len()
    );
    assert!(cases.len() >= 60, "{} cases", cases.len());
    assert!(failures.is_empty(), "failed: {failures:#?}");
}
