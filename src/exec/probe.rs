//! Block devices: by-id discovery, filesystem identity from the superblock, and the mount table.
//! (interface stub: being implemented)

use std::path::{Path, PathBuf};

/// What the first bytes of a device say it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contents {
    /// A filesystem lifeboat can describe (ext2/3/4 in detail; others by name only).
    Filesystem(FsIdentity),
    /// Another recognised signature: `"swap"`, `"LUKS"`, `"xfs"`, `"btrfs"`, `"vfat"`, `"dos partition table"`, `"gpt partition table"`…
    Other(String),
    /// Only zero bytes where signatures live: no filesystem.
    Blank,
    /// Data, but no signature lifeboat recognises.
    Unknown,
}

/// Identity of a filesystem, read from its superblock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsIdentity {
    /// `ext4`, `ext3`, `ext2` (as blkid names them), or another type name.
    pub fs_type: String,
    /// Lower-case hyphenated UUID, as `blkid -s UUID` prints it.
    pub uuid: String,
    /// Volume label; empty when none.
    pub label: String,
    /// Filesystem size in bytes (blocks × block size).
    pub fs_size_bytes: u64,
    /// Bytes the superblock counts as used (its counters lag behind a mounted filesystem).
    pub used_bytes: u64,
    /// The journal holds transactions that a normal mount would replay (writes to the device).
    pub needs_recovery: bool,
}

/// A device path, what it resolves to, and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceProbe {
    /// The path given (often a by-id symlink).
    pub path: PathBuf,
    /// The path after resolving symlinks (`/dev/loop3`, `/dev/sdb`).
    pub resolved: PathBuf,
    /// `st_rdev` split into (major, minor).
    pub dev: (u32, u32),
    /// Size of the block device in bytes.
    pub size_bytes: u64,
    pub contents: Contents,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{path}: no such device")]
    Missing { path: PathBuf },
    #[error("{path}: not a block device ({kind})")]
    NotBlockDevice { path: PathBuf, kind: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Classify the first bytes of a device (at least 128 KiB when the device has them). Pure.
pub fn identify(_head: &[u8]) -> Contents {
    todo!()
}

/// Resolve, stat, size and identify a block device without writing to it.
pub fn probe_device(_path: &Path) -> Result<DeviceProbe, ProbeError> {
    todo!()
}

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_id: u32,
    pub parent_id: u32,
    /// Device number of the mounted filesystem.
    pub dev: (u32, u32),
    /// Path inside the filesystem that is mounted here (`/qwe/nix` for a bind).
    pub root: PathBuf,
    pub mount_point: PathBuf,
    /// Per-mount options (`ro`, `nosuid`, …).
    pub options: Vec<String>,
    pub fs_type: String,
    pub source: String,
    pub super_options: Vec<String>,
}

/// Parse mountinfo text (octal escapes such as `\040` decoded). Pure; malformed lines are skipped.
pub fn parse_mountinfo(_text: &[u8]) -> Vec<MountEntry> {
    todo!()
}

/// The calling process's mount table.
pub fn read_mountinfo() -> std::io::Result<Vec<MountEntry>> {
    todo!()
}

/// An entry of the by-id directory that matches the discovery pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub link: PathBuf,
    pub resolved: PathBuf,
}

/// Entries of `dir` whose file name satisfies `matches`, sorted by name, each resolved.
pub fn discover(_dir: &Path, _matches: &dyn Fn(&str) -> bool) -> std::io::Result<Vec<Candidate>> {
    todo!()
}
