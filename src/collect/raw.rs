//! Raw evidence: the export files a run was made from, kept byte for byte with the run so a
//! bundle can ship them and any report can be re-rendered later.

use std::path::Path;

use crate::error::{Error, Result};

/// One raw evidence file: its path relative to the export directory, and its bytes.
pub type RawFile = (String, Vec<u8>);

/// Extensions of the files an export directory holds.
const EVIDENCE_EXTENSIONS: &[&str] = &["json", "csv", "gz", "jsonl", "toml"];

/// A path component we are willing to copy into a bundle: plain ASCII names only.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn gather_dir(dir: &Path, rel: &str, out: &mut Vec<RawFile>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::io(dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().to_string();
        if !plain_name(&name) {
            continue;
        }
        let path = entry.path();
        let file_type = entry.file_type().map_err(|e| Error::io(&path, e))?;
        let child = format!("{rel}/{name}");
        if file_type.is_dir() {
            gather_dir(&path, &child, out)?;
        } else if file_type.is_file()
            && EVIDENCE_EXTENSIONS
                .iter()
                .any(|ext| name.ends_with(&format!(".{ext}")))
        {
            out.push((
                child,
                std::fs::read(&path).map_err(|e| Error::io(&path, e))?,
            ));
        }
    }
    Ok(())
}

/// The export files under `DIR/aws` and `DIR/cloudtrail`, `DIR/coverage.json`, plus the
/// inventory, history and waivers files used, as (relative path, bytes), sorted. Symbolic
/// links and oddly named files are skipped.
pub fn gather(
    dir: &Path,
    inventory: Option<&Path>,
    history: Option<&Path>,
    waivers: Option<&Path>,
) -> Result<Vec<RawFile>> {
    let mut out = Vec::new();
    for sub in ["aws", "cloudtrail"] {
        let path = dir.join(sub);
        if path.is_dir() && !path.is_symlink() {
            gather_dir(&path, sub, &mut out)?;
        }
    }
    let coverage = dir.join("coverage.json");
    if coverage.is_file() && !coverage.is_symlink() {
        out.push((
            "coverage.json".to_string(),
            std::fs::read(&coverage).map_err(|e| Error::io(&coverage, e))?,
        ));
    }
    for (file, name) in [
        (inventory, "inventory.toml"),
        (history, "history.jsonl"),
        (waivers, "waivers.toml"),
    ] {
        if let Some(file) = file {
            out.push((
                name.to_string(),
                std::fs::read(file).map_err(|e| Error::io(file, e))?,
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
