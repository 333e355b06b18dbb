//! What keeps the new system from booting with the volume, as `boot-safety` and the
//! network and secrets checks it runs find it: each problem with the Nix that fixes it,
//! and the places in the repository they point at.

use std::path::PathBuf;

use crate::escape::shown;

/// One thing that would keep the new system from booting with the volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    pub problem: String,
    /// The Nix to add or change.
    pub nix: String,
}

/// A place in the repository: the file and the line of a binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub file: PathBuf,
    pub line: usize,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", shown(&self.file), self.line)
    }
}

/// The blockers as one message: each problem and its Nix.
pub fn describe(blockers: &[Blocker]) -> String {
    let items: Vec<String> = blockers
        .iter()
        .map(|b| format!("{} — add or change: {}", b.problem, b.nix))
        .collect();
    format!(
        "the new system would not boot safely with the volume: {}",
        items.join("; ")
    )
}
