//! The Python test tools of tests/moto/ (moto's AWS emulator, the CloudTrail responders, the
//! throttling proxy): the venv's Python, a server started from a script that prints
//! `PORT <n>`, its JSON Lines logs, and the credaudit binary with a clean AWS environment. Shared by tests/aws_live.rs and tests/cloudtrail_lake.rs.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The repository path of `relative`.
fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The Python that has moto: `CREDAUDIT_MOTO_PYTHON`, else the venv scripts/test.sh makes.
pub fn python() -> PathBuf {
    let path = std::env::var_os("CREDAUDIT_MOTO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo("tests/moto/.venv/bin/python"));
    assert!(
        path.exists(),
        "the AWS emulator is not installed ({} is missing): run `bash scripts/test.sh`, which \
         creates tests/moto/.venv with moto[server]==5.2.5 from tests/moto/requirements.txt",
        path.display()
    );
    path
}

/// A Python helper server from tests/moto/, stopped (stdin closed, then killed) when dropped.
pub struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    pub port: u16,
}

impl Server {
    pub fn start(script: &str, args: &[&str], stderr_to: &Path) -> Server {
        let stderr = std::fs::File::create(stderr_to).unwrap();
        let mut child = Command::new(python())
            .arg(repo(&format!("tests/moto/{script}")))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {script}: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (send, receive) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = send.send(line);
        });
        let line = receive
            .recv_timeout(Duration::from_secs(300))
            .unwrap_or_default();
        let Some(port) = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse::<u16>().ok())
        else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{script} did not start (said {line:?}); its stderr:\n{}",
                std::fs::read_to_string(stderr_to).unwrap_or_default()
            );
        };
        Server { child, stdin, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The JSON Lines of `path` (none when it does not exist).
pub fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The credaudit binary with a clean AWS environment: fixed test keys, no profile files, no
/// instance metadata (nothing may leave loopback).
pub fn credaudit() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_credaudit"));
    cmd.env_clear()
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/credaudit-test/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/credaudit-test/credentials",
        )
        .env("TMPDIR", std::env::temp_dir());
    cmd
}

/// Runs `cmd`, showing its exit code and stderr in the test's output.
pub fn run(cmd: &mut Command) -> Output {
    let output = cmd.output().expect("credaudit runs");
    eprintln!(
        "credaudit exited {:?}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
