//! Facts about this machine that several steps name.

use std::path::{Path, PathBuf};

/// The running system, as NixOS links it.
pub const CURRENT_SYSTEM: &str = "/run/current-system";

/// The machine's host name (the flake host when none is configured), or `localhost`.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Memory available for new work and in all, in bytes (`MemAvailable`, `MemTotal`).
pub fn memory() -> Option<(u64, u64)> {
    let mut system = sysinfo::System::new();
    system.refresh_memory();
    let total = system.total_memory();
    (total > 0).then(|| (system.available_memory(), total))
}

/// Seconds since the machine booted.
pub fn uptime() -> u64 {
    sysinfo::System::uptime()
}

/// The room on one mounted filesystem, in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSpace {
    pub mount: PathBuf,
    /// What an unprivileged user may still write (`statvfs`'s `f_bavail`).
    pub available: u64,
    pub total: u64,
}

/// The room on the filesystems mounted at `mounts`, in that order; a mount point that is
/// not mounted is left out.
pub fn disk_space(mounts: &[&Path]) -> Vec<DiskSpace> {
    let disks = sysinfo::Disks::new_with_refreshed_list();
    mounts
        .iter()
        .filter_map(|mount| {
            let disk = disks.list().iter().find(|d| d.mount_point() == *mount)?;
            Some(DiskSpace {
                mount: mount.to_path_buf(),
                available: disk.available_space(),
                total: disk.total_space(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_filesystem_has_room_and_an_unmounted_path_has_none() {
        let space = disk_space(&[Path::new("/"), Path::new("/no/such/mount")]);
        assert_eq!(space.len(), 1, "{space:?}");
        assert_eq!(space[0].mount, Path::new("/"));
        assert!(
            space[0].total > 0 && space[0].available <= space[0].total,
            "{space:?}"
        );
    }
}
