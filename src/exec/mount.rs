//! Read-only inspection mounts, with a guard that always unmounts.
//!
//! `ro` alone is not enough to keep a device untouched: ext3/ext4 replay a journal that
//! needs recovery even on a read-only mount (NIX-FACTS.md), XFS replays its log and
//! btrfs its tree log. So each filesystem also gets its "do not replay" option.

use std::io;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};

/// The per-mount options of every inspection mount.
const BASE_OPTIONS: [&str; 4] = ["ro", "nosuid", "nodev", "noexec"];

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

/// A read-only mount that is undone when dropped (also while a panic unwinds).
#[derive(Debug)]
pub struct ReadOnlyMount {
    target: PathBuf,
    mounted: bool,
}

impl ReadOnlyMount {
    /// Mount `device` (filesystem `fs_type`) read-only at `target`.
    pub fn mount(device: &Path, target: &Path, fs_type: &str) -> Result<ReadOnlyMount, MountError> {
        let flags =
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        let data = no_replay_option(fs_type);
        nix::mount::mount(Some(device), target, Some(fs_type), flags, data).map_err(|errno| {
            MountError::Mount {
                device: device.to_path_buf(),
                target: target.to_path_buf(),
                options: inspection_options(fs_type).join(","),
                errno,
            }
        })?;
        Ok(ReadOnlyMount {
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

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        if self.mounted {
            let _ = unmount(&self.target);
        }
    }
}

/// Unmount `target`. A busy mount (a shell sitting in it) is retried for a moment, then
/// detached lazily: the kernel finishes the unmount when the last user leaves, and since
/// the mount is read-only nothing can be lost by that.
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
