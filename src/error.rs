//! Errors the library reports: each names what the user can fix (file, record, expectation).

use std::path::{Path, PathBuf};

/// Everything that can stop a command. All of them map to exit code 2 at the top.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input file is malformed: names the file, the line or record, and what was expected.
    #[error("{}{}: {message}", file.display(), location.as_deref().map(|l| format!(": {l}")).unwrap_or_default())]
    Input {
        file: PathBuf,
        location: Option<String>,
        message: String,
    },
    /// The command line asks for something impossible.
    #[error("{0}")]
    Usage(String),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The snapshot database refused an operation.
    #[error("snapshot {}: {}", path.display(), describe_sqlite(source))]
    Snapshot {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// The snapshot exists but is not one this version can use.
    #[error("snapshot {}: {message}", path.display())]
    SnapshotFormat { path: PathBuf, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// SQLite's message, with what to do when the snapshot stayed locked by another process (a
/// concurrent scan recording) for longer than the busy timeout.
fn describe_sqlite(source: &rusqlite::Error) -> String {
    match source.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => format!(
            "{source}: another credaudit process kept it locked for more than {} s; \
             run again once it has finished (a scan that stops here records nothing)",
            crate::snapshot::BUSY_TIMEOUT.as_secs()
        ),
        _ => source.to_string(),
    }
}

impl Error {
    /// An input error at a location (line, record) in a file.
    pub fn input(file: &Path, location: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Input {
            file: file.to_path_buf(),
            location: Some(location.into()),
            message: message.into(),
        }
    }

    /// An input error about a whole file.
    pub fn input_file(file: &Path, message: impl Into<String>) -> Self {
        Error::Input {
            file: file.to_path_buf(),
            location: None,
            message: message.into(),
        }
    }

    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The error of an input file that is not UTF-8: names the line and column (in bytes) of the
/// first byte that is not, and the byte.
pub fn not_utf8(path: &Path, bytes: &[u8], error: std::str::Utf8Error) -> Error {
    let at = error.valid_up_to();
    let before = &bytes[..at];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = at
        - before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    let found = bytes
        .get(at)
        .map(|b| format!(", found the byte 0x{b:02x}"))
        .unwrap_or_default();
    Error::input(
        path,
        format!("line {line}, column {column}"),
        format!("expected UTF-8 text{found}"),
    )
}

/// Reads a whole input file, naming it when that fails.
pub fn read_to_string(path: &Path) -> Result<String> {
    read_to_string_capped(
        path,
        crate::collect::input::Limits::default().max_file_bytes,
    )
}

/// [`read_to_string`] of a file of at most `cap` bytes: a larger one is bad input naming the
/// cap, and is never read whole.
pub fn read_to_string_capped(path: &Path, cap: u64) -> Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::new();
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > cap {
        return Err(Error::input_file(
            path,
            format!("larger than the {cap}-byte limit on this file; expected a smaller file"),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let error = e.utf8_error();
        not_utf8(path, e.as_bytes(), error)
    })
}

/// Maps byte offsets of a text to 1-based line numbers, for messages that name a line.
pub struct LineIndex {
    /// Byte offset where each line starts.
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(
                text.bytes()
                    .enumerate()
                    .filter(|&(_, b)| b == b'\n')
                    .map(|(i, _)| i + 1),
            )
            .collect();
        LineIndex { starts }
    }

    /// The 1-based line holding byte `offset`.
    pub fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::LineIndex;

    #[test]
    fn lines_of_offsets() {
        let index = LineIndex::new("a\nbc\n\nd");
        assert_eq!(
            [0, 1, 2, 4, 5, 6, 7, 100].map(|o| index.line(o)),
            [1, 1, 2, 2, 3, 4, 4, 4]
        );
    }
}
