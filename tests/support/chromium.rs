//! Real headless Chromium for the HTML report tests: loads a page from a `file://` URL, lets its
//! scripts run, and returns the DOM as serialised after them plus every console message.
//!
//! Chromium is required, not optional: when it is missing the test fails, naming the package to
//! install (`scripts/test.sh` and `.ci/run` install it).

#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one page load may take before the test gives up.
const TIMEOUT: Duration = Duration::from_secs(120);

/// What Chromium saw after loading a page.
#[derive(Debug)]
pub struct Loaded {
    /// `document.documentElement.outerHTML` after the scripts ran.
    pub dom: String,
    /// Console messages (log, warning, error, uncaught exceptions, CSP violations), one a line.
    pub console: Vec<String>,
    /// Wall time of the whole run, start-up included.
    pub elapsed: Duration,
}

/// The Chromium binary: `$CHROMIUM` if set, else the Debian package's `/usr/bin/chromium`, else
/// `chromium` or `chromium-browser` on the PATH. Panics when none exists.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(path);
    }
    let debian = Path::new("/usr/bin/chromium");
    if debian.is_file() {
        return debian.to_path_buf();
    }
    for name in ["chromium", "chromium-browser"] {
        if let Some(dir) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&dir) {
                let candidate = dir.join(name);
                if candidate.is_file() {
                    return candidate;
                }
            }
        }
    }
    panic!(
        "headless Chromium is required for the HTML report tests and was not found: \
         install the Debian package (`apt-get install -y chromium`), or set CHROMIUM to its path"
    );
}

/// Loads `file` (plus `#fragment` when not empty) in a fresh headless Chromium profile and
/// returns the DOM after the scripts ran (up to 10 s of virtual time) and the console output.
pub fn load(file: &Path, fragment: &str) -> Loaded {
    let profile = tempfile::tempdir().expect("temporary Chromium profile");
    let file = file.canonicalize().expect("page exists");
    let mut url = format!("file://{}", file.display());
    if !fragment.is_empty() {
        url.push('#');
        url.push_str(fragment);
    }
    let start = Instant::now();
    let mut child = Command::new(binary())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", binary().display()));
    let mut stdout = child.stdout.take().expect("stdout piped");
    let mut stderr = child.stderr.take().expect("stderr piped");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).map(|_| s)
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).map(|_| s)
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for Chromium") {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("Chromium did not finish loading {url} within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = start.elapsed();
    let dom = out
        .join()
        .expect("stdout reader")
        .expect("Chromium stdout is UTF-8");
    let log = err.join().expect("stderr reader").unwrap_or_default();
    assert!(
        status.success() && dom.contains("</html>"),
        "Chromium failed on {url} ({status}):\n{log}"
    );
    let console = log
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .map(str::to_string)
        .collect();
    Loaded {
        dom,
        console,
        elapsed,
    }
}

impl Loaded {
    /// The text inside the element with `id`, up to its first child tag (entities left as
    /// serialised).
    pub fn text_of(&self, id: &str) -> Option<&str> {
        let at = self.dom.find(&format!("id=\"{id}\""))?;
        let rest = &self.dom[at..];
        let start = rest.find('>')? + 1;
        let end = rest[start..].find('<')? + start;
        Some(&rest[start..end])
    }

    /// The serialised element with `id`, up to its closing `</tag>` (not for nested same tags).
    pub fn element(&self, id: &str, tag: &str) -> Option<&str> {
        let at = self.dom.find(&format!("id=\"{id}\""))?;
        let open = self.dom[..at].rfind(&format!("<{tag}"))?;
        let close = self.dom[at..].find(&format!("</{tag}>"))? + at + tag.len() + 3;
        Some(&self.dom[open..close])
    }

    /// The serialised DOM from the element with `start_id` to the one with `end_id`, starting
    /// at `id="start_id"`.
    pub fn between(&self, start_id: &str, end_id: &str) -> Option<&str> {
        let start = self.dom.find(&format!("id=\"{start_id}\""))?;
        let end = self.dom[start..].find(&format!("id=\"{end_id}\""))? + start;
        Some(&self.dom[start..end])
    }

    /// The `<body …>` start tag.
    pub fn body_tag(&self) -> &str {
        let at = self.dom.find("<body").unwrap_or(0);
        let end = self.dom[at..]
            .find('>')
            .map(|e| at + e + 1)
            .unwrap_or(self.dom.len());
        &self.dom[at..end]
    }

    /// The document title.
    pub fn title(&self) -> &str {
        self.dom
            .find("<title>")
            .and_then(|at| {
                let rest = &self.dom[at + 7..];
                rest.find("</title>").map(|end| &rest[..end])
            })
            .unwrap_or("")
    }
}
