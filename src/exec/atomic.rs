//! Files lifeboat writes are written whole or not at all: a temporary file in the same
//! directory, fsync, rename over the target, fsync the directory. A crash or SIGKILL at
//! any point leaves either the old file or the new one, never a half-written one; at most
//! the hidden temporary `.lifeboat-<name>.tmp` stays, and the next write of the file
//! removes it.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::faults::{self, Point};

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

/// The directory `path` is in (`.` for a bare name) and its file name.
fn dir_and_name(path: &Path) -> io::Result<(&Path, &OsStr)> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    Ok((dir, name))
}

fn write(path: &Path, contents: &[u8], mode: u32, owner: Option<(u32, u32)>) -> io::Result<()> {
    let (dir, name) = dir_and_name(path)?;
    let mut tmp = Temporary::create(dir.join(temporary_name(name)), mode)?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(&tmp.file, Some(uid), Some(gid))?;
    }
    let (first, rest) = contents.split_at(contents.len() / 2);
    tmp.file.write_all(first)?;
    faults::pause_in(Point::HalfWrite(name));
    tmp.file.write_all(rest)?;
    tmp.file.sync_all()?;
    faults::pause_in(Point::Write(name));
    fs::rename(&tmp.path, path)?;
    tmp.renamed = true;
    sync_dir(dir)
}

/// Copy the regular file `from` over `to` atomically, streamed (a carried directory may
/// hold large files), keeping `from`'s mode, owner and modification time; the SHA-256 of
/// what was written.
pub fn copy_atomic(from: &Path, to: &Path) -> io::Result<[u8; 32]> {
    use sha2::Digest;
    use std::os::unix::fs::MetadataExt;
    let mut source = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(from)?;
    let meta = source.metadata()?;
    let (dir, name) = dir_and_name(to)?;
    let mut tmp = Temporary::create(dir.join(temporary_name(name)), meta.mode() & 0o7777)?;
    std::os::unix::fs::fchown(&tmp.file, Some(meta.uid()), Some(meta.gid()))?;
    // chown clears set-id bits: the mode again, after it.
    tmp.file
        .set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = match io::Read::read(&mut source, &mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buffer[..read]);
        tmp.file.write_all(&buffer[..read])?;
    }
    tmp.file
        .set_times(fs::FileTimes::new().set_modified(meta.modified()?))?;
    tmp.file.sync_all()?;
    faults::pause_in(Point::Write(name));
    fs::rename(&tmp.path, to)?;
    tmp.renamed = true;
    sync_dir(dir)?;
    Ok(hasher.finalize().into())
}

/// Where lifeboat moves `path` aside instead of replacing it: `<name>.before-lifeboat-<local
/// time>` beside it.
pub fn aside_path(path: &Path) -> PathBuf {
    let stamp = jiff::ZonedDateTime::now()
        .strftime("%Y%m%d-%H%M%S")
        .to_string();
    let name = path
        .file_name()
        .map_or_else(|| "moved".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!("{name}.before-lifeboat-{stamp}"))
}

/// Make `link` a symlink to `target`, replacing what is there atomically: made under the
/// temporary name first, then renamed over `link`.
pub fn symlink_atomic(target: &Path, link: &Path) -> io::Result<()> {
    let (dir, name) = dir_and_name(link)?;
    let tmp = dir.join(temporary_name(name));
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::os::unix::fs::symlink(target, &tmp)?;
    faults::pause_in(Point::Write(name));
    if let Err(e) = fs::rename(&tmp, link) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

/// `.lifeboat-<name>.tmp`: one fixed name per target, so the next write of the same file
/// replaces what a killed run left, and hidden, so that nothing takes it for the file.
fn temporary_name(name: &OsStr) -> OsString {
    let mut tmp = OsString::from(".lifeboat-");
    tmp.push(name);
    tmp.push(".tmp");
    tmp
}

/// The temporary being written; removed again unless it was renamed over the target.
struct Temporary {
    path: PathBuf,
    file: File,
    renamed: bool,
}

impl Temporary {
    /// Create it afresh with `mode`, removing one a killed run left. `create_new` never
    /// follows a symlink planted under the name: it fails instead.
    fn create(path: PathBuf, mode: u32) -> io::Result<Temporary> {
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)?;
        let tmp = Temporary {
            path,
            file,
            renamed: false,
        };
        tmp.file.set_permissions(fs::Permissions::from_mode(mode))?;
        Ok(tmp)
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = fs::remove_file(&self.path);
        }
    }
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
    fn a_copy_keeps_mode_owner_and_time_and_says_its_digest() {
        use sha2::Digest;
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("ssh_host_ed25519_key");
        fs::write(&from, "secret").unwrap();
        fs::set_permissions(&from, fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&from, Some(1234), Some(100)).unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        File::options()
            .write(true)
            .open(&from)
            .unwrap()
            .set_times(fs::FileTimes::new().set_modified(old))
            .unwrap();
        let to = dir.path().join("copy");
        fs::write(&to, "older copy").unwrap();
        let digest = copy_atomic(&from, &to).unwrap();
        assert_eq!(digest, <[u8; 32]>::from(sha2::Sha256::digest(b"secret")));
        let meta = fs::metadata(&to).unwrap();
        assert_eq!(fs::read_to_string(&to).unwrap(), "secret");
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o7777),
            (1234, 100, 0o600)
        );
        assert_eq!(meta.modified().unwrap(), old);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&from, &link).unwrap();
        assert!(
            copy_atomic(&link, &dir.path().join("x")).is_err(),
            "a symlink is not followed"
        );
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
    fn a_temporary_a_killed_run_left_is_replaced_and_a_planted_symlink_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recovery.toml");
        let stale = dir.path().join(".lifeboat-recovery.toml.tmp");
        fs::write(&stale, "half of an old ca").unwrap();
        write_atomic(&path, b"card", 0o600).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "card");
        assert!(!stale.exists());
        let victim = dir.path().join("victim");
        fs::write(&victim, "untouched").unwrap();
        std::os::unix::fs::symlink(&victim, &stale).unwrap();
        write_atomic(&path, b"card 2", 0o600).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "untouched");
        assert_eq!(fs::read_to_string(&path).unwrap(), "card 2");
        assert!(fs::symlink_metadata(&stale).is_err());
    }

    #[test]
    fn a_symlink_is_replaced_whole_and_no_temporary_stays() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("system");
        std::os::unix::fs::symlink("system-1-link", &link).unwrap();
        fs::write(
            dir.path().join(".lifeboat-system.tmp"),
            "left by a killed run",
        )
        .unwrap();
        symlink_atomic(Path::new("system-2-link"), &link).unwrap();
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("system-2-link"));
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["system"]);
    }

    #[test]
    fn a_missing_directory_is_an_error_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing/journal.json");
        assert!(write_atomic(&path, b"x", 0o600).is_err());
        assert!(!path.exists());
    }
}
