//! `credaudit merge`: shards of a generated two-account fleet, each scanned into its own
//! snapshot by the real binary, merged into an organisation snapshot; the merged run is
//! compared with one scan of the whole fleet. Every refusal leaves the shards byte-for-byte
//! unchanged and writes no organisation snapshot.

mod common;

use std::path::{Path, PathBuf};

use common::{AS_OF, copy_dir, credaudit, findings};
use sha2::{Digest, Sha256};

/// (exit code, stdout, stderr) of `credaudit ARGS`.
fn run(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let output = credaudit().args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn os<S: AsRef<std::ffi::OsStr> + ?Sized>(s: &S) -> &std::ffi::OsStr {
    s.as_ref()
}

/// A two-account fleet with CloudTrail logs, and its export split by account into two export
/// directories (each with the org-wide declared files and logs, as each CI job would have).
struct Fleet {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    whole: PathBuf,
    accounts: Vec<String>,
}

impl Fleet {
    fn new() -> Fleet {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let whole = root.join("fleet");
        let (code, _, err) = run(&[
            os("generate"),
            os("--out"),
            whole.as_os_str(),
            os("--credentials"),
            os("200"),
            os("--accounts"),
            os("2"),
            os("--cloudtrail-events"),
            os("300"),
            os("--as-of"),
            os(AS_OF),
            os("-q"),
        ]);
        assert_eq!(code, 0, "{err}");
        let mut accounts: Vec<String> = std::fs::read_dir(whole.join("aws"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        accounts.sort();
        assert_eq!(accounts.len(), 2);
        Fleet {
            _tmp: tmp,
            root,
            whole,
            accounts,
        }
    }

    /// An export directory holding `accounts` of the fleet, its declared files and its logs.
    fn shard_dir(&self, name: &str, accounts: &[&str]) -> PathBuf {
        let dir = self.root.join(name);
        for account in accounts {
            copy_dir(
                &self.whole.join("aws").join(account),
                &dir.join("aws").join(account),
            );
        }
        copy_dir(&self.whole.join("cloudtrail"), &dir.join("cloudtrail"));
        for file in ["inventory.toml", "history.jsonl"] {
            std::fs::copy(self.whole.join(file), dir.join(file)).unwrap();
        }
        dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// `scan --from DIR --db DB` as of `as_of`; the exit code.
    fn scan(&self, dir: &Path, db: &Path, out: Option<&Path>, as_of: &str) -> i32 {
        let mut args = vec![
            os("scan"),
            os("--from"),
            dir.as_os_str(),
            os("--db"),
            db.as_os_str(),
            os("--as-of"),
            os(as_of),
            os("-q"),
        ];
        if let Some(out) = out {
            args.extend([os("--out"), out.as_os_str()]);
        }
        let (code, _, err) = run(&args);
        assert!(code == 0 || code == 3, "scan {}: {err}", dir.display());
        code
    }

    /// Two shards, one account each, scanned as of AS_OF into a.db and b.db.
    fn two_shards(&self) -> (PathBuf, PathBuf) {
        let (a, b) = (self.path("a.db"), self.path("b.db"));
        let dir_a = self.shard_dir("shard-a", &[&self.accounts[0]]);
        let dir_b = self.shard_dir("shard-b", &[&self.accounts[1]]);
        assert_eq!(self.scan(&dir_a, &a, None, AS_OF), 0);
        assert_eq!(self.scan(&dir_b, &b, None, AS_OF), 0);
        (a, b)
    }
}

/// `credaudit merge SHARDS --db DB EXTRA…`, run in `cwd`.
fn merge(cwd: &Path, shards: &[&Path], db: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut cmd = credaudit();
    cmd.current_dir(cwd).arg("merge");
    for s in shards {
        cmd.arg(s);
    }
    cmd.arg("--db").arg(db).args(extra);
    let output = cmd.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn sha256(path: &Path) -> String {
    hex(&Sha256::digest(std::fs::read(path).unwrap()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The head `verify --db` prints for a snapshot whose chain verifies.
fn head_of(db: &Path) -> String {
    let (code, stdout, stderr) = run(&[os("verify"), os("--db"), db.as_os_str()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let head = stdout.trim().rsplit_once("head ").unwrap().1.to_string();
    assert_eq!(head.len(), 64, "{stdout}");
    head
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn manifest(bundle: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap()
}

/// The merged run's findings, control results and plan are those of one scan of the whole
/// fleet; its provenance names both shards with their run ids and chain heads.
#[test]
fn merged_shards_equal_one_scan_of_every_account() {
    let fleet = Fleet::new();
    let whole_out = fleet.path("whole-bundle");
    assert_eq!(
        fleet.scan(
            &fleet.whole,
            &fleet.path("whole.db"),
            Some(&whole_out),
            AS_OF
        ),
        0
    );
    let (a, b) = fleet.two_shards();
    let before = (sha256(&a), sha256(&b));
    let (head_a, head_b) = (head_of(&a), head_of(&b));

    let org = fleet.path("org.db");
    let out = fleet.path("org-bundle");
    let (code, _, err) = merge(
        &fleet.root,
        &[Path::new("a.db"), Path::new("b.db")],
        &org,
        &["--out", out.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        (sha256(&a), sha256(&b)),
        before,
        "the shards are not written"
    );

    let whole = findings(&whole_out);
    assert!(whole.len() > 10, "the fleet has findings: {whole:?}");
    for account in &fleet.accounts {
        let shard_credentials = read(&whole_out.join("findings.csv"));
        assert!(shard_credentials.contains(account.as_str()));
    }
    assert_eq!(findings(&out), whole);
    for file in [
        "findings.csv",
        "controls.csv",
        "remediation-plan.csv",
        "remediation-plan.json",
        "inventory.csv",
        "rotation-events.csv",
    ] {
        assert_eq!(
            read(&out.join(file)),
            read(&whole_out.join(file)),
            "{file} differs from one scan of every account"
        );
    }

    // Provenance: the run's source, the manifest, the summary and the raw evidence.
    let m = manifest(&out);
    assert_eq!(m["source"], "merge:a.db,b.db");
    let shards = m["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 2);
    for (shard, (file, head, account)) in shards.iter().zip([
        ("a.db", &head_a, &fleet.accounts[0]),
        ("b.db", &head_b, &fleet.accounts[1]),
    ]) {
        assert_eq!(shard["file"], file);
        assert_eq!(shard["run_id"], 1);
        assert_eq!(shard["chain_head"].as_str(), Some(head.as_str()));
        assert_eq!(shard["as_of"], AS_OF);
        assert_eq!(shard["accounts"], serde_json::json!([account]));
        assert!(!shard["coverage"].as_array().unwrap().is_empty());
    }
    assert_eq!(
        m["scope"]["accounts"],
        serde_json::json!(fleet.accounts),
        "the org run covers both accounts"
    );
    let summary = read(&out.join("summary.md"));
    assert!(summary.contains("### Shards"), "{summary}");
    assert!(
        summary.contains(&format!("| `a.db` | 1 | `{head_a}` |")),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("| `b.db` | 1 | `{head_b}` |")),
        "{summary}"
    );
    let raw: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("raw/merge-shards.json")).unwrap()).unwrap();
    assert_eq!(raw["shards"], m["shards"]);

    // The org snapshot's chain verifies and ends at the bundle's run; the bundle verifies.
    assert_eq!(head_of(&org), m["chain_head"].as_str().unwrap());
    let (code, stdout, _) = run(&[os("verify"), out.as_os_str()]);
    assert_eq!(code, 0, "{stdout}");

    // `report` re-renders the merged run with its shards.
    let again = fleet.path("again");
    let (code, _, err) = run(&[
        os("report"),
        os("--db"),
        org.as_os_str(),
        os("--out"),
        again.as_os_str(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(manifest(&again)["shards"], m["shards"]);

    // The next night's merge appends a second run, diffed against the first.
    let (code, _, err) = merge(&fleet.root, &[&a, &b], &org, &["--fail-on-new", "info"]);
    assert_eq!(code, 0, "nothing is new: {err}");
    assert!(err.contains("0 new, 0 resolved"), "{err}");
    assert_eq!((sha256(&a), sha256(&b)), before);
    let (code, stdout, _) = run(&[os("verify"), os("--db"), org.as_os_str()]);
    assert_eq!(code, 0);
    assert!(stdout.contains("ok: 2 runs"), "{stdout}");

    // The gate is scan's: findings at or above --fail-on exit 1.
    let (code, _, _) = merge(&fleet.root, &[&a, &b], &org, &["--fail-on", "info", "-q"]);
    assert_eq!(code, 1);
}

/// Shards evaluated at different times merge as of the latest of them (or `--as-of`); a shard
/// scanned without the declared files takes the other's; shards with different declared
/// inventories are refused.
#[test]
fn as_of_and_declared_inputs_of_shards() {
    let fleet = Fleet::new();
    let later = "2026-11-03T00:00:00Z";
    let whole_out = fleet.path("whole-later");
    fleet.scan(
        &fleet.whole,
        &fleet.path("whole.db"),
        Some(&whole_out),
        later,
    );

    let a = fleet.path("a.db");
    let dir_a = fleet.shard_dir("shard-a", &[&fleet.accounts[0]]);
    assert_eq!(fleet.scan(&dir_a, &a, None, AS_OF), 0);
    // Shard B without inventory.toml and history.jsonl, scanned two days later.
    let b = fleet.path("b.db");
    let dir_b = fleet.shard_dir("shard-b", &[&fleet.accounts[1]]);
    std::fs::remove_file(dir_b.join("inventory.toml")).unwrap();
    std::fs::remove_file(dir_b.join("history.jsonl")).unwrap();
    assert_eq!(fleet.scan(&dir_b, &b, None, later), 0);

    let out = fleet.path("org-bundle");
    let org = fleet.path("org.db");
    let (code, _, err) = merge(
        &fleet.root,
        &[&a, &b],
        &org,
        &["--out", out.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("evaluated at different times"), "{err}");
    assert_eq!(manifest(&out)["as_of"], later);
    assert_eq!(findings(&out), findings(&whole_out));
    assert_eq!(
        read(&out.join("controls.csv")),
        read(&whole_out.join("controls.csv"))
    );
    assert_eq!(
        read(&out.join("remediation-plan.csv")),
        read(&whole_out.join("remediation-plan.csv"))
    );

    // --as-of overrides: as of the earlier time, the merge equals a whole scan then.
    let early_whole = fleet.path("whole-early");
    fleet.scan(
        &fleet.whole,
        &fleet.path("whole2.db"),
        Some(&early_whole),
        AS_OF,
    );
    let early = fleet.path("org-early");
    let (code, _, err) = merge(
        &fleet.root,
        &[&a, &b],
        &fleet.path("org2.db"),
        &["--as-of", AS_OF, "--out", early.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(manifest(&early)["as_of"], AS_OF);
    assert_eq!(findings(&early), findings(&early_whole));
    assert_ne!(
        findings(&early),
        findings(&out),
        "the as-of changes what is found"
    );

    // A shard scanned with another inventory is refused, naming both shards.
    let c = fleet.path("c.db");
    let dir_c = fleet.shard_dir("shard-c", &[&fleet.accounts[1]]);
    let inventory = read(&dir_c.join("inventory.toml"));
    // The first owner has left: the same ids, another declaration.
    let changed = inventory.replacen("status = \"active\"", "status = \"departed\"", 1);
    assert_ne!(changed, inventory);
    std::fs::write(dir_c.join("inventory.toml"), changed).unwrap();
    assert_eq!(fleet.scan(&dir_c, &c, None, AS_OF), 0);
    let before = (sha256(&a), sha256(&c));
    let org3 = fleet.path("org3.db");
    let (code, _, err) = merge(&fleet.root, &[&a, &c], &org3, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("different inventory"), "{err}");
    assert!(err.contains("a.db") && err.contains("c.db"), "{err}");
    assert_eq!((sha256(&a), sha256(&c)), before);
    assert!(!org3.exists(), "a refused merge writes no snapshot");
}

/// Every refusal exits with the code named, says which files, writes no organisation snapshot
/// and leaves the shards byte-for-byte as they were.
#[test]
fn refusals_leave_the_shards_untouched() {
    let fleet = Fleet::new();
    let (a, b) = fleet.two_shards();
    let org = fleet.path("org.db");
    let before = (sha256(&a), sha256(&b));
    let refused = |shards: &[&Path], code: i32, wanted: &[&str]| {
        let (got, stdout, err) = merge(&fleet.root, shards, &org, &[]);
        assert_eq!(got, code, "{wanted:?}: {stdout}{err}");
        for w in wanted {
            assert!(err.contains(w), "{w:?} not in: {err}");
        }
        assert!(!org.exists(), "a refused merge writes no snapshot");
        assert_eq!((sha256(&a), sha256(&b)), before, "the shards are unchanged");
    };

    // Overlapping accounts: shard C holds both accounts.
    let c = fleet.path("c.db");
    let dir_c = fleet.shard_dir("shard-c", &[&fleet.accounts[0], &fleet.accounts[1]]);
    assert_eq!(fleet.scan(&dir_c, &c, None, AS_OF), 0);
    let c_hash = sha256(&c);
    refused(&[&b, &c], 2, &[&fleet.accounts[1], "b.db", "c.db"]);
    assert_eq!(sha256(&c), c_hash);

    // The same shard twice, also spelt another way.
    refused(&[&a, &b, &a], 2, &["given twice", "a.db"]);
    let dotted = fleet.root.join(".").join("a.db");
    refused(&[&a, &dotted], 2, &["given twice"]);
    let linked = fleet.path("linked.db");
    std::fs::hard_link(&a, &linked).unwrap();
    refused(&[&linked, &b, &a], 2, &["given twice", "linked.db"]);

    // The organisation snapshot among the shards.
    let (code, _, err) = merge(&fleet.root, &[&a, &b], &a, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is the organisation snapshot"), "{err}");
    assert_eq!((sha256(&a), sha256(&b)), before);

    // A file that is not a snapshot.
    let text = fleet.path("notes.db");
    std::fs::write(&text, "not a database\n").unwrap();
    refused(&[&a, &text], 2, &["notes.db"]);
    let missing = fleet.path("missing.db");
    refused(&[&a, &missing], 2, &["missing.db", "does not exist"]);

    // A shard of a newer schema than this build knows.
    let newer = fleet.path("newer.db");
    std::fs::copy(&b, &newer).unwrap();
    rusqlite::Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let newer_hash = sha256(&newer);
    refused(
        &[&a, &newer],
        2,
        &["newer.db", "schema version 99 is newer"],
    );
    assert_eq!(sha256(&newer), newer_hash);

    // A shard without a run.
    let empty = fleet.path("empty.db");
    drop(credaudit::snapshot::Snapshot::open(&empty).unwrap());
    refused(&[&a, &empty], 2, &["empty.db", "holds no run"]);

    // A shard whose chain was tampered with: the exit `verify` gives a broken chain.
    let tampered = fleet.path("tampered.db");
    std::fs::copy(&b, &tampered).unwrap();
    {
        let conn = rusqlite::Connection::open(&tampered).unwrap();
        let triggers: Vec<(String, String)> = conn
            .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        for (name, _) in &triggers {
            conn.execute_batch(&format!("DROP TRIGGER {name}")).unwrap();
        }
        conn.execute_batch("UPDATE runs SET as_of = '2020-01-01T00:00:00Z' WHERE id = 1")
            .unwrap();
        for (_, sql) in &triggers {
            conn.execute_batch(sql).unwrap();
        }
    }
    let (verify_code, _, _) = run(&[os("verify"), os("--db"), tampered.as_os_str()]);
    let tampered_hash = sha256(&tampered);
    refused(
        &[&a, &tampered],
        verify_code,
        &["tampered.db", "run 1 is broken"],
    );
    assert_eq!(verify_code, 1);
    assert_eq!(sha256(&tampered), tampered_hash);

    // No shard at all: a usage error from the command line.
    let (code, _, err) = merge(&fleet.root, &[], &org, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(!org.exists());
}

/// A coverage gap in one shard is a gap of the organisation run: exit 3, in its coverage, and
/// named against the shard in the summary.
#[test]
fn a_coverage_gap_in_a_shard_makes_the_merged_run_incomplete() {
    let fleet = Fleet::new();
    // Each shard reads its own account's CloudTrail logs only (a trail per account).
    let own_logs = |dir: &Path, other: &str| {
        let logs = dir.join("cloudtrail/AWSLogs").join(other);
        assert!(logs.is_dir(), "{}", logs.display());
        std::fs::remove_dir_all(logs).unwrap();
    };
    let a = fleet.path("a.db");
    let dir_a = fleet.shard_dir("shard-a", &[&fleet.accounts[0]]);
    own_logs(&dir_a, &fleet.accounts[1]);
    assert_eq!(fleet.scan(&dir_a, &a, None, AS_OF), 0);
    let b = fleet.path("b.db");
    let dir_b = fleet.shard_dir("shard-b", &[&fleet.accounts[1]]);
    own_logs(&dir_b, &fleet.accounts[0]);
    let gap = serde_json::json!([{
        "account": fleet.accounts[1],
        "region": "ap-south-1",
        "api": "secretsmanager:list-secrets",
        "ok": false,
        "error": "AccessDenied: not authorised",
        "records": 0
    }]);
    std::fs::write(dir_b.join("coverage.json"), gap.to_string()).unwrap();
    assert_eq!(fleet.scan(&dir_b, &b, None, AS_OF), 3);

    let out = fleet.path("org-bundle");
    let (code, _, err) = merge(
        &fleet.root,
        &[&a, &b],
        &fleet.path("org.db"),
        &["--out", out.to_str().unwrap()],
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("ap-south-1"), "{err}");
    let m = manifest(&out);
    assert_eq!(m["status"], "partial");
    let failed: Vec<&serde_json::Value> = m["coverage"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        failed[0]["account"].as_str(),
        Some(fleet.accounts[1].as_str())
    );
    assert_eq!(failed[0]["region"], "ap-south-1");
    let shard_b = &m["shards"][1];
    assert_eq!(shard_b["status"], "partial");
    assert!(
        shard_b["coverage"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["ok"] == false)
    );
    let summary = read(&out.join("summary.md"));
    assert!(summary.contains("Partial scan"), "{summary}");
    assert!(summary.contains("b.db"), "{summary}");

    // Raw evidence: what the shards agree on once (the declared files), what differs per shard
    // (the CloudTrail files each read), the gap's coverage.json from the shard that had it.
    let raw = out.join("raw");
    for kept in [
        "inventory.toml",
        "history.jsonl",
        "coverage.json",
        "merge-shards.json",
    ] {
        assert!(raw.join(kept).is_file(), "raw/{kept}");
    }
    assert!(!raw.join("cloudtrail-files.json").exists());
    let listed = |n: usize| read(&raw.join(format!("shards/{n}/cloudtrail-files.json")));
    assert!(listed(1).contains(&fleet.accounts[0]) && !listed(1).contains(&fleet.accounts[1]));
    assert!(listed(2).contains(&fleet.accounts[1]) && !listed(2).contains(&fleet.accounts[0]));
    let (code, stdout, _) = run(&[os("verify"), out.as_os_str()]);
    assert_eq!(code, 0, "{stdout}");
}
