//! Why a git operation failed ([`GitError`]) and the libgit2 error behind it ([`Cause`]),
//! every URL and token redacted.

use std::fmt;
use std::path::PathBuf;

use super::known_hosts::HostKey;
use super::url::redact_url;

/// A libgit2 error as it was, with every URL and the token redacted from its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub message: String,
    pub code: git2::ErrorCode,
    pub class: git2::ErrorClass,
}

impl Cause {
    pub(super) fn new(error: &git2::Error) -> Cause {
        Cause::scrubbed(error, redact_url(error.message()))
    }

    pub(super) fn scrubbed(error: &git2::Error, message: String) -> Cause {
        Cause {
            message,
            code: error.code(),
            class: error.class(),
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Why a git operation failed, and what the operator can do about it. No variant's text
/// holds a token or a URL's password.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error(
        "{path} is not a git repository (or does not exist); give the top directory of the repository that holds the flake"
    )]
    NotARepository { path: PathBuf },
    #[error(
        "{path} belongs to {owner}, not to the user running lifeboat, and git refuses to open a repository another user owns ({cause}). Either mark it safe for this user with `git config --global --add safe.directory {path}`, or give it to this user with `chown -R`"
    )]
    NotOwned {
        path: PathBuf,
        owner: String,
        cause: Cause,
    },
    #[error("{path} has no branch {branch}; `git branch` lists the branches it has")]
    NoSuchBranch { path: PathBuf, branch: String },
    #[error("{path} has no remote {remote}; `git remote -v` lists the remotes it has")]
    NoSuchRemote { path: PathBuf, remote: String },
    #[error("{path} is on {actual}, not on {wanted}; switch to {wanted} first")]
    WrongBranch {
        path: PathBuf,
        actual: String,
        wanted: String,
    },
    #[error("nothing to commit in {path}: no tracked file has changed")]
    NothingToCommit { path: PathBuf },
    #[error(
        "{path} has uncommitted changes to tracked files ({}); commit or stash them first",
        list_paths(files)
    )]
    LocalChanges { path: PathBuf, files: Vec<PathBuf> },
    #[error(
        "{branch} in {path} and its remote have diverged ({ahead} local and {behind} remote commits of their own); merge or rebase by hand, lifeboat never forces"
    )]
    Diverged {
        path: PathBuf,
        branch: String,
        ahead: usize,
        behind: usize,
    },
    #[error("{path} already exists and is not empty; move it aside first")]
    DestinationExists { path: PathBuf },
    #[error("{url} has no branch {branch}")]
    NoSuchRemoteBranch { url: String, branch: String },
    #[error("cannot reach {url}: {cause}; check the network, the host name and the port")]
    Unreachable { url: String, cause: Cause },
    #[error(
        "{url} refused the credentials (tried: {tried}): {cause}; check that the key or token is the one the remote knows, or load the key into ssh-agent"
    )]
    AuthRefused {
        url: String,
        tried: String,
        cause: Cause,
    },
    #[error(
        "the SSH host key of {host} is not known: {} {}; compare it with the fingerprint the provider publishes, and accept it only if they are the same{}",
        key.key_type(), key.fingerprint(), other_types_note(other_types)
    )]
    HostKeyUnknown {
        host: String,
        key: HostKey,
        other_types: Vec<String>,
    },
    #[error(
        "the SSH host key of {host} has CHANGED (now {} {}, line {line} of {} says otherwise): someone may be intercepting the connection, or the server was reinstalled; refused. If the provider confirms the new key, remove the old one with `ssh-keygen -R '{host}' -f {}`",
        key.key_type(), key.fingerprint(), file.display(), file.display()
    )]
    HostKeyChanged {
        host: String,
        key: HostKey,
        file: PathBuf,
        line: usize,
    },
    #[error("the push of {branch} to {remote} was rejected: {reason}")]
    PushRejected {
        remote: String,
        branch: String,
        reason: String,
    },
    #[error("cancelled")]
    Cancelled,
    #[error("git {op} with {target}: {cause}")]
    Git {
        op: &'static str,
        target: String,
        cause: Cause,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl GitError {
    /// The libgit2 error behind this one, when there is one.
    pub fn cause(&self) -> Option<&Cause> {
        match self {
            GitError::NotOwned { cause, .. }
            | GitError::Unreachable { cause, .. }
            | GitError::AuthRefused { cause, .. }
            | GitError::Git { cause, .. } => Some(cause),
            _ => None,
        }
    }

    pub(super) fn git(
        op: &'static str,
        target: impl fmt::Display,
        error: &git2::Error,
    ) -> GitError {
        GitError::Git {
            op,
            target: redact_url(&target.to_string()),
            cause: Cause::new(error),
        }
    }
}

fn list_paths(files: &[PathBuf]) -> String {
    const SHOWN: usize = 5;
    let mut list: Vec<String> = files
        .iter()
        .take(SHOWN)
        .map(|p| p.display().to_string())
        .collect();
    if files.len() > SHOWN {
        list.push(format!("and {} more", files.len() - SHOWN));
    }
    list.join(", ")
}

fn other_types_note(types: &[String]) -> String {
    if types.is_empty() {
        String::new()
    } else {
        format!(
            " (the known_hosts files know this host only by {} keys)",
            types.join(", ")
        )
    }
}
