//! lifeboat's own mounts of a volume, with a guard that always unmounts: read-only for
//! inspection, read-write (at a private place) for recover's writes to the volume's store.
//!
//! `ro` alone is not enough to keep a device untouched: ext3/ext4 replay a journal that
//! needs recovery even on a read-only mount (ARCHITECTURE.md, "Facts about the tools"), XFS replays its log and
//! btrfs its tree log. So each inspection mount also gets its "do not replay" option.

use std::io;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};

/// The per-mount options of every inspection mount.
const BASE_OPTIONS: [&str; 4] = ["ro", "nosuid", "nodev", "noexec"];

/// The options of recover's read-write mount: nothing on the volume is run through it.
const WRITABLE_OPTIONS: [&str; 4] = ["rw", "nosuid", "nodev", "noexec"];

/// The option that stops `fs_type` from replaying its journal on mount, if it has one.
fn no_replay_option(fs_type: &str) -> Option<&'static str> {
    match fs_type {
        "ext3" | "ext4" => Some("noload"),
        "xfs" => Some("norecovery"),
        "btrfs" => Some("rescue=nologreplay"),
        _ => None,
    }
}

/// Every option of an inspection mount of `fs_type`, as the plan shows them.
pub fn inspection_options(fs_type: &str) -> Vec<String> {
    BASE_OPTIONS
        .iter()
        .copied()
        .chain(no_replay_option(fs_type))
        .map(String::from)
        .collect()
}

/// Every option of a read-write mount, as the plan shows them.
pub fn writable_options() -> Vec<String> {
    WRITABLE_OPTIONS.iter().copied().map(String::from).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("mount -o {options} {device} {target} failed: {errno}")]
    Mount {
        device: PathBuf,
        target: PathBuf,
        options: String,
        errno: Errno,
    },
    #[error("umount {target} failed: {errno}")]
    Unmount { target: PathBuf, errno: Errno },
    #[error("{target}: {source}")]
    Prepare { target: PathBuf, source: io::Error },
}

/// A mount of lifeboat's that is undone when dropped (also while a panic unwinds).
#[derive(Debug)]
pub struct MountGuard {
    target: PathBuf,
    mounted: bool,
}

impl MountGuard {
    /// Mount `device` (filesystem `fs_type`) read-only at `target`, its journal not replayed.
    pub fn read_only(
        device: &Path,
        target: &Path,
        fs_type: &str,
    ) -> Result<MountGuard, MountError> {
        let flags =
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        let options = inspection_options(fs_type).join(",");
        MountGuard::mount(
            device,
            target,
            fs_type,
            flags,
            no_replay_option(fs_type),
            options,
        )
    }

    /// Mount `device` read-write at `target`. An ext4 journal that needs recovery is
    /// replayed by this mount, as by any read-write one.
    pub fn read_write(
        device: &Path,
        target: &Path,
        fs_type: &str,
    ) -> Result<MountGuard, MountError> {
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        let options = writable_options().join(",");
        MountGuard::mount(device, target, fs_type, flags, None, options)
    }

    fn mount(
        device: &Path,
        target: &Path,
        fs_type: &str,
        flags: MsFlags,
        data: Option<&str>,
        options: String,
    ) -> Result<MountGuard, MountError> {
        nix::mount::mount(Some(device), target, Some(fs_type), flags, data).map_err(|errno| {
            MountError::Mount {
                device: device.to_path_buf(),
                target: target.to_path_buf(),
                options,
                errno,
            }
        })?;
        Ok(MountGuard {
            target: target.to_path_buf(),
            mounted: true,
        })
    }

    /// Where it is mounted.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Unmount now and report how it went.
    pub fn unmount(mut self) -> Result<(), MountError> {
        self.mounted = false;
        unmount(&self.target)
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        if self.mounted {
            let _ = unmount(&self.target);
        }
    }
}

/// Unmount `target`. A busy mount (a shell sitting in it) is retried for a moment, then
/// detached lazily: the kernel finishes the unmount when the last user leaves, and writes
/// still under way through a read-write mount are finished before the filesystem goes.
pub fn unmount(target: &Path) -> Result<(), MountError> {
    for _ in 0..10 {
        match nix::mount::umount2(target, MntFlags::empty()) {
            Ok(()) => return Ok(()),
            Err(Errno::EBUSY) => thread::sleep(Duration::from_millis(100)),
            Err(errno) => {
                return Err(MountError::Unmount {
                    target: target.to_path_buf(),
                    errno,
                });
            }
        }
    }
    nix::mount::umount2(target, MntFlags::MNT_DETACH).map_err(|errno| MountError::Unmount {
        target: target.to_path_buf(),
        errno,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journalled_filesystems_get_their_no_replay_option() {
        assert_eq!(
            inspection_options("ext4"),
            ["ro", "nosuid", "nodev", "noexec", "noload"]
        );
        assert_eq!(inspection_options("xfs").last().unwrap(), "norecovery");
        assert_eq!(
            inspection_options("btrfs").last().unwrap(),
            "rescue=nologreplay"
        );
        assert_eq!(
            inspection_options("ext2"),
            ["ro", "nosuid", "nodev", "noexec"]
        );
    }
}
