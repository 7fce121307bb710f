//! Writing output safely: every file credaudit writes (bundle, archive, export, simulation) goes
//! through a fresh temporary file in the target's folder (created exclusively, with a random
//! name, so nothing planted there is followed), is flushed to disk, made owner-only and renamed
//! over the target. A rename replaces a symlink at the target; it never writes through it.

use std::fs::{DirBuilder, File, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Mode of every file credaudit writes: owner read and write only.
pub const FILE_MODE: u32 = 0o600;

/// Mode of every folder credaudit creates: owner only.
pub const DIR_MODE: u32 = 0o700;

/// Prefix of the temporary files; hidden, so the export reader and raw evidence skip them.
const TEMP_PREFIX: &str = ".credaudit-";

/// The folder a path lives in (`.` for a bare name).
pub fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Creates `dir` and any missing parents as owner-only folders (existing ones are left as
/// they are).
pub fn create_private_dir_all(dir: &Path) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(|e| Error::io(dir, e))
}

/// Sets `path` (a folder credaudit made) to owner-only, whatever the umask did.
pub fn make_private_dir(path: &Path) -> Result<()> {
    std::fs::set_permissions(path, Permissions::from_mode(DIR_MODE)).map_err(|e| Error::io(path, e))
}

/// Writes a file at `path` (whose folder must exist) with what `fill` writes: into a new
/// temporary file beside it, fsynced, mode 0600, then renamed over `path`. A reader never sees
/// half a file, and a symlink at `path` is replaced, not followed.
pub fn write_with(path: &Path, fill: impl FnOnce(&mut File) -> std::io::Result<()>) -> Result<()> {
    let dir = parent_of(path);
    let mut temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .permissions(Permissions::from_mode(FILE_MODE))
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    let io = |e: std::io::Error| Error::io(path, e);
    let file = temp.as_file_mut();
    // The umask may have narrowed the mode at creation, never widened it; set it exactly.
    file.set_permissions(Permissions::from_mode(FILE_MODE))
        .map_err(io)?;
    fill(file).map_err(io)?;
    file.flush().map_err(io)?;
    file.sync_all().map_err(io)?;
    temp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// A writer that passes every byte through to `inner` and keeps their SHA-256 and count, so a
/// file's manifest entry comes from the stream that wrote it, never from a copy in memory.
pub struct HashingWriter<W> {
    inner: W,
    hasher: sha2::Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: sha2::Digest::new(),
            bytes: 0,
        }
    }

    /// The SHA-256 (lowercase hex) and the number of the bytes written so far.
    pub fn finish(self) -> (String, u64) {
        let digest = sha2::Digest::finalize(self.hasher);
        let hex = digest.iter().map(|b| format!("{b:02x}")).collect();
        (hex, self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// What a streamed file's writer is: a buffer in front of the hashing of the bytes that reach
/// the file.
pub type Sink<'a> = std::io::BufWriter<HashingWriter<&'a mut File>>;

/// Size of the buffer of a streamed file.
const SINK_BUFFER: usize = 256 * 1024;

/// Writes a file at `path` atomically and owner-only (see [`write_with`]) with what `fill`
/// streams into it through a buffer; gives the SHA-256 (lowercase hex) and size of what was
/// written. Nothing of the file is held in memory beyond the buffer.
pub fn write_streamed(
    path: &Path,
    fill: impl FnOnce(&mut Sink) -> std::io::Result<()>,
) -> Result<(String, u64)> {
    let mut written = None;
    write_with(path, |file| {
        let mut sink = std::io::BufWriter::with_capacity(SINK_BUFFER, HashingWriter::new(file));
        fill(&mut sink)?;
        let hashing = sink.into_inner().map_err(|e| e.into_error())?;
        written = Some(hashing.finish());
        Ok(())
    })?;
    Ok(written.expect("the fill ran"))
}

/// Writes `bytes` to `path` atomically and owner-only (see [`write_with`]).
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |file| file.write_all(bytes))
}

/// Writes `bytes` to `dir/name` atomically and owner-only; gives the path written.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf> {
    let path = dir.join(name);
    write_file(&path, bytes)?;
    Ok(path)
}

// CSV

/// Characters a spreadsheet may take as the start of a formula: `=`, `+`, `-`, `@` and their
/// fullwidth forms, which some spreadsheets fold to ASCII.
fn starts_formula(c: char) -> bool {
    matches!(
        c,
        '=' | '+' | '-' | '@' | '\u{FF1D}' | '\u{FF0B}' | '\u{FF0D}' | '\u{FF20}'
    )
}

/// Leading characters a spreadsheet may skip before it looks for a formula: any Unicode white
/// space (space, no-break space, ideographic space, tab, line breaks, vertical tab, form feed …)
/// and the byte-order mark.
fn is_leading_blank(c: char) -> bool {
    c.is_whitespace() || c == '\u{FEFF}'
}

/// Makes a cell safe to open in a spreadsheet: a cell that starts with a control character (tab,
/// carriage return, line feed, vertical tab, form feed …) or whose first character after any
/// leading white space is `=`, `+`, `-`, `@` or a fullwidth `＝ ＋ － ＠` is prefixed with `'` so it
/// is shown as text, never evaluated. That includes negative numbers (`-5` becomes `'-5`): a cell
/// cannot be told safe by its column.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    let starts_control = cell.chars().next().is_some_and(char::is_control);
    let first_visible = cell.chars().find(|c| !is_leading_blank(*c));
    if starts_control || first_visible.is_some_and(starts_formula) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// Writes rows (the first is the header) as RFC 4180 CSV with CRLF line ends. A cell is quoted
/// when it holds a comma, a quote, a line break or a `;` (spreadsheets in locales whose list
/// separator is `;` would otherwise split it). Every cell is [`neutralise`]d.
pub fn to_csv<'a>(rows: impl IntoIterator<Item = Vec<std::borrow::Cow<'a, str>>>) -> Vec<u8> {
    let mut bytes = Vec::new();
    write_csv(&mut bytes, rows).expect("writing to memory cannot fail");
    bytes
}

/// [`to_csv`], streamed into `out` row by row.
pub fn write_csv<'a, W: Write>(
    out: W,
    rows: impl IntoIterator<Item = Vec<std::borrow::Cow<'a, str>>>,
) -> std::io::Result<()> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Necessary)
        // With `Necessary` quoting, the writer quotes every field that holds the comment byte:
        // that is how `;` gets quoted (nothing reads these files with comments).
        .comment(Some(b';'))
        .from_writer(out);
    for row in rows {
        writer.write_record(
            row.iter()
                .map(|c| neutralise(c))
                .collect::<Vec<_>>()
                .iter()
                .map(|c| c.as_bytes()),
        )?;
    }
    writer.flush()
}

// Markdown

/// Markdown text safe to embed anywhere in a Markdown document (a table cell, a list item, a
/// heading): every character Markdown or inline HTML gives a meaning is escaped with `\\`, line
/// breaks and other white space controls become a space, and any other control or bidirectional
/// override ([`crate::term::is_unsafe`]) is dropped. The one Markdown escaper of the crate
/// (summary.md, the simulation's answers).
pub fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '~' | '&' => {
                out.push('\\');
                out.push(c);
            }
            c if crate::term::is_unsafe(c) && c.is_whitespace() => out.push(' '),
            c if crate::term::is_unsafe(c) => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod markdown_tests {
    use super::escape_markdown;

    #[test]
    fn escapes_markdown_and_html_and_drops_controls() {
        assert_eq!(
            escape_markdown("<img src=x onerror=alert(1)>"),
            r"\<img src=x onerror=alert(1)\>"
        );
        assert_eq!(escape_markdown("a|b"), r"a\|b");
        assert_eq!(escape_markdown("[x](javascript:y)"), r"\[x\](javascript:y)");
        assert_eq!(escape_markdown("*_`#~&\\"), r"\*\_\`\#\~\&\\");
        // Line breaks and tabs become spaces; other controls and bidi overrides go.
        assert_eq!(escape_markdown("line1\nline2\r\tx\u{7}"), "line1 line2  x");
        assert_eq!(
            escape_markdown("a\u{202e}b\u{2028}c\u{1b}[31m"),
            "ab c\\[31m"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().mode() & 0o777
    }

    #[test]
    fn writes_owner_only_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_atomic(dir.path(), "a.json", b"{}").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
        assert_eq!(mode(&path), FILE_MODE);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.json"]);
    }

    #[test]
    fn replaces_a_symlink_instead_of_writing_through_it() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, b"precious").unwrap();
        let target = dir.path().join("index.html");
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        // The old predictable temporary name, planted too.
        std::os::unix::fs::symlink(&victim, dir.path().join(".index.html.tmp")).unwrap();
        write_file(&target, b"report").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        let meta = std::fs::symlink_metadata(&target).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(std::fs::read(&target).unwrap(), b"report");
    }

    #[test]
    fn folders_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        create_private_dir_all(&deep).unwrap();
        assert_eq!(mode(&dir.path().join("a")), DIR_MODE);
        assert_eq!(mode(&deep), DIR_MODE);
    }
}

#[cfg(test)]
mod csv_tests {
    use super::*;

    #[test]
    fn neutralises_formula_cells_and_quotes() {
        let out = String::from_utf8(to_csv(vec![
            vec![
                "=cmd|' /C calc'!A0".into(),
                "+1".into(),
                "-2".into(),
                "@SUM(A1)".into(),
            ],
            vec![
                "\tx".into(),
                "\rx".into(),
                "a,b".into(),
                "say \"hi\"".into(),
            ],
            vec![
                "plain".into(),
                "".into(),
                "x=1".into(),
                "line\nbreak".into(),
            ],
        ]))
        .unwrap();
        assert_eq!(
            out,
            "'=cmd|' /C calc'!A0,'+1,'-2,'@SUM(A1)\r\n'\tx,\"'\rx\",\"a,b\",\"say \"\"hi\"\"\"\r\nplain,,x=1,\"line\nbreak\"\r\n"
        );
    }

    #[test]
    fn quotes_cells_with_semicolons() {
        let out = String::from_utf8(to_csv(vec![vec![
            "x;=1+1;".into(),
            "a;b".into(),
            "plain".into(),
        ]]))
        .unwrap();
        assert_eq!(out, "\"x;=1+1;\",\"a;b\",plain\r\n");
    }

    #[test]
    fn neutralises_formulas_behind_leading_white_space() {
        for cell in [
            " =HYPERLINK(\"http://evil\")",
            "\u{a0}=HYPERLINK(\"http://evil\")",
            "\u{3000}=HYPERLINK(\"http://evil\")",
            "\u{feff}=1+1",
            "  \u{a0}@SUM(A1)",
            " +1",
            "\u{3000}-1",
        ] {
            assert_eq!(neutralise(cell), format!("'{cell}"), "{cell:?}");
        }
    }

    #[test]
    fn neutralises_fullwidth_formula_characters() {
        for cell in ["＝1+1", "＋1", "－1", "＠SUM(A1)", " ＝1+1", "\u{3000}＠x"] {
            assert_eq!(neutralise(cell), format!("'{cell}"), "{cell:?}");
        }
    }

    #[test]
    fn neutralises_cells_starting_with_control_characters() {
        for cell in [
            "\u{b}=1+1",
            "\u{b}x",
            "\u{c}x",
            "\nx",
            "\tx",
            "\rx",
            "\u{85}x",
        ] {
            assert_eq!(neutralise(cell), format!("'{cell}"), "{cell:?}");
        }
    }

    #[test]
    fn leaves_harmless_cells_alone() {
        for cell in [
            "plain",
            "",
            " ",
            "x=1",
            "a-b",
            " text = 1",
            "\u{a0}name",
            "東京",
            "5",
            "1.5",
        ] {
            assert!(
                matches!(neutralise(cell), std::borrow::Cow::Borrowed(c) if c == cell),
                "{cell:?}"
            );
        }
    }

    #[test]
    fn negative_numbers_are_neutralised_like_any_cell() {
        // The writer does not know a column's type: `-5` is prefixed as `-2` above is, so a
        // spreadsheet shows it as the text `-5` rather than evaluating it.
        assert_eq!(neutralise("-5"), "'-5");
        let out = String::from_utf8(to_csv(vec![
            vec!["age_days".into(), "late_days".into()],
            vec!["12".into(), "-5".into()],
        ]))
        .unwrap();
        assert_eq!(out, "age_days,late_days\r\n12,'-5\r\n");
    }
}
