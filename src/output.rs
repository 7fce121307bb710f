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
