//! What goes wrong making, opening or cleaning a sandbox.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use nix::errno::Errno;

/// The file that marks a directory as a sandbox; [`Sandbox::clean`](super::Sandbox::clean)
/// removes nothing without it. Kept with the error, which names it when it is missing.
pub(super) const MANIFEST: &str = "lifeboat-sandbox.json";

/// Why a sandbox could not be created, opened or cleaned.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("`{program}` is not installed{}", package.map(|p| format!(" (Debian package `{p}`)")).unwrap_or_default())]
    MissingTool {
        program: String,
        package: Option<&'static str>,
    },
    #[error("`{command}` failed ({status}): {stderr_tail}")]
    CommandFailed {
        command: String,
        status: ExitStatus,
        stderr_tail: String,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a lifeboat sandbox (no valid {MANIFEST}); refusing to touch it", dir.display())]
    NotASandbox { dir: PathBuf },
    #[error("{}: exists and is not an empty directory", dir.display())]
    NotEmpty { dir: PathBuf },
    #[error("{}: the sandbox was never completed; clean it and create it again", dir.display())]
    Incomplete { dir: PathBuf },
    #[error("invalid volume spec: {0}")]
    InvalidSpec(String),
    #[error("unmounting {}: {source}", path.display())]
    Unmount { path: PathBuf, source: Errno },
    #[error("{}: still mounted after unmounting; nothing was removed", path.display())]
    StillMounted { path: PathBuf },
    #[error("{}: {message}", path.display())]
    Unexpected { path: PathBuf, message: String },
    #[error("{error}; cleaning up after it also failed: {cleanup}")]
    CleanupFailed {
        error: Box<SandboxError>,
        cleanup: Box<SandboxError>,
    },
}

pub(super) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SandboxError + '_ {
    move |source| SandboxError::Io {
        path: path.to_path_buf(),
        source,
    }
}
