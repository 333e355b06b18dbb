//! What a run keeps on the machine: the lock, the journal and the transcript under
//! `[state].dir`. A dry run reads the previous journal but writes nothing.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::exec::lock::{LockError, RunLock};
use crate::journal::{Journal, JournalError};
use crate::steps::context::JournalHandle;
use crate::transcript::TranscriptSink;

/// The run's state on disk.
pub struct Session {
    pub journal: JournalHandle,
    pub transcript: Option<TranscriptSink>,
    /// The journal of the run before this one, if any.
    pub previous: Option<Journal>,
    _lock: Option<RunLock>,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot create the state directory {path}: {source}")]
    StateDir { path: PathBuf, source: io::Error },
    #[error("cannot create a transcript in {path}: {source}")]
    Transcript { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

impl Session {
    /// Take the lock, load the previous journal and start a new one for `flow`.
    /// Mounts the previous run left recorded are carried over, so this run undoes them.
    pub fn open(state_dir: &Path, flow: &str, dry_run: bool) -> Result<Session, SessionError> {
        let run_id = format!(
            "{}-{}",
            jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ"),
            std::process::id()
        );
        if dry_run {
            let previous = Journal::load(state_dir).ok().flatten();
            let mut journal = Journal::new(flow, run_id, None);
            journal.mounts = previous
                .as_ref()
                .map(|p| p.mounts.clone())
                .unwrap_or_default();
            return Ok(Session {
                journal: JournalHandle::new(journal, None),
                transcript: None,
                previous,
                _lock: None,
            });
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .map_err(|source| SessionError::StateDir {
                path: state_dir.to_path_buf(),
                source,
            })?;
        let lock = RunLock::acquire(state_dir)?;
        let previous = Journal::load(state_dir)?;
        let mut journal = Journal::new(flow, run_id.clone(), None);
        journal.mounts = previous
            .as_ref()
            .map(|p| p.mounts.clone())
            .unwrap_or_default();
        journal.save(state_dir)?;
        let transcript = TranscriptSink::create(state_dir, &run_id, flow).map_err(|source| {
            SessionError::Transcript {
                path: state_dir.to_path_buf(),
                source,
            }
        })?;
        Ok(Session {
            journal: JournalHandle::new(journal, Some(state_dir.to_path_buf())),
            transcript: Some(transcript),
            previous,
            _lock: Some(lock),
        })
    }
}
