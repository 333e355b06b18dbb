//! Parallel size walk of a mounted tree, with the semantics of `du -sB1 -x`.
//! (interface stub: being implemented)

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// Disk usage of one reported entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeRow {
    /// Relative to the scanned root, e.g. `qwe/nix`.
    pub path: PathBuf,
    /// Allocated bytes (`st_blocks * 512`), each inode once: equals `du -sB1 -x <root>/<path>`.
    pub bytes: u64,
    /// Inodes counted: equals `du --inodes -sx <root>/<path>`.
    pub files: u64,
}

/// The result of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanReport {
    /// One row per top-level entry of the root, and one per entry under `expand` when given.
    pub rows: Vec<SizeRow>,
    /// Entries that could not be read (path relative to root, and why); the scan goes on past them.
    pub unreadable: Vec<(PathBuf, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("scan cancelled")]
    Cancelled,
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Walk `root` without following symlinks or leaving its filesystem.
/// `progress` gets the running count of inodes seen (called from worker threads, throttled).
pub fn scan(
    _root: &Path,
    _expand: Option<&OsStr>,
    _progress: &(dyn Fn(u64) + Sync),
    _cancel: &AtomicBool,
) -> Result<ScanReport, ScanError> {
    todo!()
}
