//! One lifeboat run per machine at a time: an exclusive `flock` on `[state].dir/lock`.
//! The kernel drops the lock when its holder dies, so a lock left by a killed run is
//! never stale; the pid written inside only serves the message.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// Held for the whole run; released on drop or process exit.
#[derive(Debug)]
pub struct RunLock {
    _lock: Flock<File>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another lifeboat run (pid {pid}) is working on this machine; wait for it to finish, or stop it first (lock: {path})"
    )]
    Held { path: PathBuf, pid: String },
    #[error("cannot take the lock {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

impl RunLock {
    /// Take the lock in `state_dir` (which must exist) without waiting.
    pub fn acquire(state_dir: &Path) -> Result<RunLock, LockError> {
        let path = state_dir.join("lock");
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io_err)?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                return Err(LockError::Held {
                    path,
                    pid: pid.trim().to_string(),
                });
            }
            Err((_, errno)) => return Err(io_err(io::Error::from(errno))),
        };
        lock.set_len(0).map_err(io_err)?;
        lock.rewind().map_err(io_err)?;
        write!(lock, "{}", std::process::id()).map_err(io_err)?;
        Ok(RunLock { _lock: lock })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_pid_and_the_lock_frees_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        let err = RunLock::acquire(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains(&std::process::id().to_string()),
            "{err}"
        );
        drop(first);
        RunLock::acquire(dir.path()).unwrap();
    }
}
