//! Facts about this machine that several steps name.

use std::path::Path;

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

/// The room on a filesystem, in bytes, from `statvfs`: current, unlike the counters of a
/// mounted filesystem's superblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    pub total: u64,
    /// In use, as `df` counts it.
    pub used: u64,
    /// What an unprivileged user may still write (`f_bavail`).
    pub available: u64,
}

/// The room on the filesystem holding `path`; only that filesystem is asked (an
/// unreachable network mount elsewhere cannot hold this up).
pub fn space(path: &Path) -> nix::Result<Space> {
    let stat = nix::sys::statvfs::statvfs(path)?;
    let block = stat.fragment_size();
    Ok(Space {
        total: stat.blocks() * block,
        used: stat.blocks().saturating_sub(stat.blocks_free()) * block,
        available: stat.blocks_available() * block,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_filesystem_has_room_and_a_missing_path_has_none() {
        let root = space(Path::new("/")).unwrap();
        assert!(root.total > 0, "{root:?}");
        assert!(
            root.used <= root.total && root.available <= root.total,
            "{root:?}"
        );
        assert_eq!(space(Path::new("/no/such/path")), Err(nix::Error::ENOENT));
    }
}
