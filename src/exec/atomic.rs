//! Files lifeboat writes are written whole or not at all: a temporary file in the same
//! directory, fsync, rename over the target, fsync the directory. A crash or SIGKILL at
//! any point leaves either the old file or the new one, never a half-written one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Replace `path` with `contents` atomically, with permission bits `mode`.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    write(path, contents, mode, None)
}

/// [`write_atomic`], the file owned by `owner` (uid, gid) from the moment it appears:
/// what lifeboat leaves in a user's home belongs to that user.
pub fn write_atomic_owned(
    path: &Path,
    contents: &[u8],
    mode: u32,
    owner: (u32, u32),
) -> io::Result<()> {
    write(path, contents, mode, Some(owner))
}

/// Create `dir` (and missing parents) private to `owner`, or make an existing one so.
pub fn private_dir(dir: &Path, owner: (u32, u32)) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    chown(dir, owner)
}

fn chown(path: &Path, (uid, gid): (u32, u32)) -> io::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
}

fn write(path: &Path, contents: &[u8], mode: u32, owner: Option<(u32, u32)>) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".lifeboat-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))?;
    if let Some(owner) = owner {
        chown(tmp.path(), owner)?;
    }
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// Make a rename in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)
        .and_then(|d: File| d.sync_all())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn replaces_the_file_whole_with_the_mode_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.json");
        fs::write(&path, "old").unwrap();
        write_atomic(&path, b"new contents", 0o600).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new contents");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n != "journal.json")
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }

    #[test]
    fn owned_files_and_private_dirs_belong_to_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("home/.lifeboat");
        private_dir(&private, (1234, 100)).unwrap();
        let meta = fs::metadata(&private).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o777),
            (1234, 100, 0o700)
        );
        let card = private.join("recovery.toml");
        write_atomic_owned(&card, b"x", 0o600, (1234, 100)).unwrap();
        let meta = fs::metadata(&card).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o777),
            (1234, 100, 0o600)
        );
    }

    #[test]
    fn a_missing_directory_is_an_error_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing/journal.json");
        assert!(write_atomic(&path, b"x", 0o600).is_err());
        assert!(!path.exists());
    }
}
