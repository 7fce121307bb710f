//! Opening untrusted input files: regular files only, inside the folder they were found in, and
//! no larger than the [`Limits`] a user can raise.
//!
//! An export directory or a CloudTrail folder may come from someone else. Without these checks a
//! symlink to `/dev/zero` grows memory without bound, a FIFO blocks the scan forever, and a link
//! to a file outside the export puts that file into the evidence. Every input file is opened
//! here, once; the bytes that were parsed are the bytes that are stored.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Caps on what one run reads, each raised with its own flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest input file, in bytes as stored on disk (`--max-file-size`).
    pub max_file_bytes: u64,
    /// Largest decompressed stream of one `.gz` file (`--max-decompressed-size`).
    pub max_decompressed_bytes: u64,
    /// Largest single CloudTrail record (`--max-record-size`).
    pub max_record_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 1 << 30,
            max_decompressed_bytes: 4 << 30,
            max_record_bytes: 16 << 20,
        }
    }
}

/// The flag that raises each limit, for error messages.
pub const MAX_FILE_FLAG: &str = "--max-file-size";
pub const MAX_DECOMPRESSED_FLAG: &str = "--max-decompressed-size";
pub const MAX_RECORD_FLAG: &str = "--max-record-size";

/// A byte count as people read it: `1 GiB`, `16 MiB`, `300 B`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            return if bytes % size == 0 {
                format!("{} {unit}", bytes / size)
            } else {
                format!("{:.1} {unit}", bytes as f64 / size as f64)
            };
        }
    }
    format!("{bytes} B")
}

/// Parses a size flag: a number of bytes with an optional unit (`K`, `M`, `G`, `T`, with or
/// without `i`/`B`: all binary), e.g. `512M`, `2GiB`, `1048576`.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("expected a size like 512M or 2GiB, found {text:?}"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(format!("unknown size unit in {text:?}: use K, M, G or T")),
    };
    let bytes = number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))?;
    if bytes == 0 {
        return Err("a size limit must be at least 1 byte".to_string());
    }
    Ok(bytes)
}

/// An open input file and what it is.
pub struct Opened {
    pub file: File,
    /// Its size on disk.
    pub size: u64,
    /// The path it was opened at (symlinks resolved).
    pub resolved: PathBuf,
}

/// `path` below `base` as a label for reports and raw evidence: its components joined with `/`
/// whatever the platform's separator. `None` when `path` is not under `base`; each caller
/// chooses its own fallback.
pub fn relative_label(base: &Path, path: &Path) -> Option<String> {
    path.strip_prefix(base).ok().map(slash_joined)
}

/// The components of `path` joined with `/`.
pub fn slash_joined(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The canonical form of a root folder, for [`open_regular`].
pub fn canonical_root(root: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(root).map_err(|e| Error::io(root, e))
}

/// Opens `path` for reading if it is a regular file no larger than `limits.max_file_bytes`.
///
/// With a `root` (canonical, from [`canonical_root`]) the file, after resolving every symlink,
/// must lie inside it: a link out of the export is refused, naming both ends. FIFOs, sockets
/// and devices are refused without blocking (the open is non-blocking and the type is checked on
/// the open descriptor, so swapping the file after a check does not help).
pub fn open_regular(path: &Path, root: Option<&Path>, limits: &Limits) -> Result<Opened> {
    let resolved = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
    if let Some(root) = root
        && !resolved.starts_with(root)
    {
        return Err(Error::input_file(
            path,
            format!(
                "is a link to {}, outside {}; an input must be a regular file inside the folder given",
                resolved.display(),
                root.display()
            ),
        ));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(&resolved)
        .map_err(|e| Error::io(path, e))?;
    let metadata = file.metadata().map_err(|e| Error::io(path, e))?;
    let file_type = metadata.file_type();
    if !file_type.is_file() {
        let what = if file_type.is_dir() {
            "a folder"
        } else if file_type.is_fifo() {
            "a FIFO"
        } else if file_type.is_socket() {
            "a socket"
        } else if file_type.is_char_device() || file_type.is_block_device() {
            "a device"
        } else {
            "not a regular file"
        };
        return Err(Error::input_file(
            path,
            format!("expected a regular file, found {what}"),
        ));
    }
    // The descriptor is what is read: make sure it is still the file inside the root (a
    // folder on the way may have been swapped for a link since the path was resolved).
    if let Some(root) = root
        && let Ok(actual) = std::fs::read_link(format!("/proc/self/fd/{}", fd_of(&file)))
        && !actual.starts_with(root)
    {
        return Err(Error::input_file(
            path,
            format!(
                "resolved to {}, outside {} while it was opened",
                actual.display(),
                root.display()
            ),
        ));
    }
    let size = metadata.len();
    if size > limits.max_file_bytes {
        return Err(too_large(path, size, limits.max_file_bytes));
    }
    Ok(Opened {
        file,
        size,
        resolved,
    })
}

fn fd_of(file: &File) -> i32 {
    use std::os::fd::AsRawFd;
    file.as_raw_fd()
}

/// The error for a file over `--max-file-size`.
pub fn too_large(path: &Path, size: u64, limit: u64) -> Error {
    Error::input_file(
        path,
        format!(
            "is {}, over the {} limit on one input file; raise it with {MAX_FILE_FLAG} if the file is genuine",
            human_bytes(size),
            human_bytes(limit)
        ),
    )
}

/// The whole of a regular input file (see [`open_regular`]), read once.
pub fn read_bytes(path: &Path, root: Option<&Path>, limits: &Limits) -> Result<Vec<u8>> {
    let opened = open_regular(path, root, limits)?;
    let mut bytes = Vec::with_capacity(opened.size as usize);
    // The file may grow after the size was checked: never read past the limit.
    opened
        .file
        .take(limits.max_file_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(too_large(path, bytes.len() as u64, limits.max_file_bytes));
    }
    Ok(bytes)
}

/// A limit that a stream went past: carried inside an `io::Error` out of a reader, so the
/// parser's error can be turned back into a message that names the limit and its flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitExceeded {
    /// What went over: "decompressed stream", "record".
    pub what: &'static str,
    pub limit: u64,
    pub flag: &'static str,
}

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} over the {} limit; raise it with {} if the file is genuine",
            self.what,
            human_bytes(self.limit),
            self.flag
        )
    }
}

impl std::error::Error for LimitExceeded {}

impl LimitExceeded {
    fn into_io(self) -> std::io::Error {
        std::io::Error::other(self)
    }

    /// The limit an I/O error reports, if it came from [`Capped`] or a record budget.
    pub fn of(error: &std::io::Error) -> Option<LimitExceeded> {
        error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<LimitExceeded>())
            .copied()
    }
}

/// A `Read` that fails once more than `limit` bytes came through it, naming the limit.
pub struct Capped<R> {
    inner: R,
    remaining: u64,
    exceeded: LimitExceeded,
}

impl<R> Capped<R> {
    pub fn new(inner: R, limit: u64, what: &'static str, flag: &'static str) -> Self {
        Capped {
            inner,
            remaining: limit,
            exceeded: LimitExceeded { what, limit, flag },
        }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.remaining == 0 {
            // One byte more tells a stream that ends exactly at the limit from a longer one.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(self.exceeded.into_io()),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// A byte budget for the record being parsed from a stream: [`Budgeted`] counts the bytes that
/// pass, and the parser calls [`RecordBudget::start`] as each record begins.
#[derive(Debug)]
pub struct RecordBudget {
    position: std::cell::Cell<u64>,
    start: std::cell::Cell<u64>,
    limit: u64,
}

impl RecordBudget {
    pub fn new(limit: u64) -> std::rc::Rc<RecordBudget> {
        std::rc::Rc::new(RecordBudget {
            position: std::cell::Cell::new(0),
            start: std::cell::Cell::new(0),
            limit,
        })
    }

    /// A new record (or the end of the record list) begins here.
    pub fn start(&self) {
        self.start.set(self.position.get());
    }
}

/// Counts the bytes of a stream against a shared [`RecordBudget`].
pub struct Budgeted<R> {
    pub inner: R,
    pub budget: std::rc::Rc<RecordBudget>,
}

impl<R: Read> Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let budget = &self.budget;
        let position = budget.position.get() + n as u64;
        budget.position.set(position);
        if position - budget.start.get() > budget.limit {
            return Err(LimitExceeded {
                what: "one record",
                limit: budget.limit,
                flag: MAX_RECORD_FLAG,
            }
            .into_io());
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: u64) -> Limits {
        Limits {
            max_file_bytes: max,
            ..Limits::default()
        }
    }

    #[test]
    fn the_flags_default_to_the_library_limits() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(["credaudit", "scan", "--from", "x"]).unwrap();
        let crate::cli::Command::Scan(args) = cli.command else {
            panic!("a scan");
        };
        assert_eq!(args.limits.limits(), Limits::default());
    }

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("4 kb"), Ok(4096));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12X").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert_eq!(human_bytes(16 << 20), "16 MiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }

    #[test]
    fn refuses_devices_fifos_and_links_out_of_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = canonical_root(dir.path()).unwrap();
        let zero = dir.path().join("zero.json");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let message = read_bytes(&zero, None, &Limits::default())
            .unwrap_err()
            .to_string();
        assert!(message.contains("found a device"), "{message}");

        let fifo = dir.path().join("fifo.json");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let message = read_bytes(&fifo, Some(&root), &Limits::default())
            .unwrap_err()
            .to_string();
        assert!(message.contains("found a FIFO"), "{message}");

        let outside = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(outside.path(), b"{}").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(outside.path(), &link).unwrap();
        let message = read_bytes(&link, Some(&root), &Limits::default())
            .unwrap_err()
            .to_string();
        assert!(message.contains("outside"), "{message}");
        // Without a root (a file named on the command line) the link is followed.
        assert_eq!(
            read_bytes(&link, None, &Limits::default()).unwrap(),
            b"{}".to_vec()
        );

        // A link inside the root is read.
        let inside = dir.path().join("inside.json");
        std::fs::write(&inside, b"[1]").unwrap();
        let alias = dir.path().join("alias.json");
        std::os::unix::fs::symlink(&inside, &alias).unwrap();
        assert_eq!(
            read_bytes(&alias, Some(&root), &Limits::default()).unwrap(),
            b"[1]".to_vec()
        );
    }

    #[test]
    fn caps_the_file_size_and_names_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.json");
        std::fs::write(&path, vec![b' '; 2048]).unwrap();
        let message = read_bytes(&path, None, &limits(1024))
            .unwrap_err()
            .to_string();
        assert!(message.contains("over the 1 KiB limit"), "{message}");
        assert!(message.contains(MAX_FILE_FLAG), "{message}");
        assert_eq!(read_bytes(&path, None, &limits(2048)).unwrap().len(), 2048);
    }

    #[test]
    fn record_budget_resets_at_each_record() {
        let budget = RecordBudget::new(10);
        let mut reader = Budgeted {
            inner: &[0u8; 30][..],
            budget: budget.clone(),
        };
        let mut buf = [0u8; 8];
        reader.read_exact(&mut buf).unwrap();
        budget.start();
        reader.read_exact(&mut buf).unwrap();
        let err = reader.read_exact(&mut buf).unwrap_err();
        assert_eq!(LimitExceeded::of(&err).map(|e| e.limit), Some(10));
    }

    #[test]
    fn capped_reader_stops_past_its_limit() {
        let mut out = Vec::new();
        let err = Capped::new(&[0u8; 100][..], 99, "stream", MAX_DECOMPRESSED_FLAG)
            .read_to_end(&mut out)
            .unwrap_err();
        let exceeded = LimitExceeded::of(&err).expect("a limit error");
        assert_eq!(exceeded.limit, 99);
        assert!(err.to_string().contains(MAX_DECOMPRESSED_FLAG), "{err}");
        let mut out = Vec::new();
        Capped::new(&[0u8; 100][..], 100, "stream", MAX_DECOMPRESSED_FLAG)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out.len(), 100);
    }
}
