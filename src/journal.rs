//! Run state on disk, under `[state].dir`, so that a run can be resumed and so that the
//! next run can undo what a killed one left behind (an inspection mount).
//!
//! The journal is rewritten atomically at every change; it is never half-written.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::exec::atomic::write_atomic;
use crate::report::{RunStatus, StepStatus};

/// Bumped when the format changes incompatibly.
const VERSION: u32 = 1;
const FILE_NAME: &str = "journal.json";

/// The state of the latest run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub version: u32,
    pub flow: String,
    pub run_id: String,
    pub pid: u32,
    /// The device the run works on, so `--resume` continues with the same one.
    pub device: Option<PathBuf>,
    pub steps: Vec<JournalStep>,
    /// Mounts made by the run and not yet undone. Written *before* mounting, so a run
    /// killed at any point is covered.
    pub mounts: Vec<MountRecord>,
    /// How the run ended; `None` while it runs (or when it was killed).
    pub finished: Option<RunStatus>,
    /// `recover` reached its reboot: the next step is `verify`.
    #[serde(default)]
    pub verify_due: bool,
}

/// A step's state as last recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalStep {
    pub id: String,
    pub status: StepStatus,
    pub message: String,
}

/// A mount lifeboat made: read-only for inspection, or recover's private read-write one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountRecord {
    pub device: PathBuf,
    /// Device number of the mounted filesystem, to recognise the mount in mountinfo.
    pub dev: (u32, u32),
    pub target: PathBuf,
    /// Read-write (recover's mount of the volume's store), not an inspection mount.
    #[serde(default)]
    pub writable: bool,
}

/// The journal could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot write the journal {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read the journal {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "the journal {path} is not a lifeboat journal this version understands ({detail}); move it aside to start afresh"
    )]
    Format { path: PathBuf, detail: String },
}

impl Journal {
    /// A fresh journal for a run of `flow` by this process.
    pub fn new(flow: &str, run_id: String, device: Option<PathBuf>) -> Journal {
        Journal {
            version: VERSION,
            flow: flow.to_string(),
            run_id,
            pid: std::process::id(),
            device,
            steps: Vec::new(),
            mounts: Vec::new(),
            finished: None,
            verify_due: false,
        }
    }

    /// The journal file inside `state_dir`.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(FILE_NAME)
    }

    /// The latest run's journal, or `None` when there has been none.
    pub fn load(state_dir: &Path) -> Result<Option<Journal>, JournalError> {
        let path = Journal::path(state_dir);
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(JournalError::Read { path, source }),
        };
        let journal: Journal = serde_json::from_slice(&text).map_err(|e| JournalError::Format {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        if journal.version != VERSION {
            return Err(JournalError::Format {
                path,
                detail: format!("version {}", journal.version),
            });
        }
        Ok(Some(journal))
    }

    /// Write the journal atomically (private: it names devices and paths of the machine).
    pub fn save(&self, state_dir: &Path) -> Result<(), JournalError> {
        let path = Journal::path(state_dir);
        let text = serde_json::to_vec_pretty(self).map_err(|e| JournalError::Write {
            path: path.clone(),
            source: io::Error::other(e),
        })?;
        write_atomic(&path, &text, 0o600).map_err(|source| JournalError::Write { path, source })
    }

    /// Record a step's latest state.
    pub fn record_step(&mut self, id: &str, status: StepStatus, message: &str) {
        let entry = JournalStep {
            id: id.to_string(),
            status,
            message: message.to_string(),
        };
        match self.steps.iter_mut().find(|s| s.id == id) {
            Some(existing) => *existing = entry,
            None => self.steps.push(entry),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_journal_loads_back_equal() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::new("inspect", "run-1".into(), Some("/dev/loop0".into()));
        journal.record_step("find-volume", StepStatus::Running, "");
        journal.record_step("find-volume", StepStatus::Passed, "found");
        journal.mounts.push(MountRecord {
            device: "/dev/loop0".into(),
            dev: (7, 0),
            target: "/mnt/data".into(),
            writable: false,
        });
        journal.save(dir.path()).unwrap();
        let loaded = Journal::load(dir.path()).unwrap().unwrap();
        assert_eq!(loaded, journal);
        assert_eq!(loaded.steps.len(), 1);
    }

    #[test]
    fn no_journal_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Journal::load(dir.path()).unwrap().is_none());
    }

    #[test]
    fn garbage_is_a_format_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(Journal::path(dir.path()), "{not json").unwrap();
        let err = Journal::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("journal.json"), "{err}");
        assert!(matches!(err, JournalError::Format { .. }));
    }
}
