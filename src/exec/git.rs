//! Everything `predestroy` and `recover` need from git, through libgit2 (`git2`): the state
//! of `/etc/nixos`, committing tracked changes, fetch/push/clone with progress and
//! cancellation, a bare mirror on the volume, and reaching a remote with the credentials at
//! hand while checking its SSH host key against the known_hosts files lifeboat trusts.
//! Nothing here forces a push, commits an untracked file or shows a secret: every URL in an
//! error goes through [`redact_url`] and the HTTPS token never leaves [`Token`].

mod callbacks;
mod error;
mod index;
mod known_hosts;
mod local;
mod remote;
mod url;

pub use callbacks::{Credentials, Phase, Token, TransferProgress};
pub use error::{Cause, GitError};
pub use index::{FileState, committed, file_state, is_staged, set_remote_url, stage};
pub use known_hosts::HostKey;
pub use local::{
    Change, ChangedFile, DiffSummary, FileDiff, Relation, RepoStatus, ahead_behind,
    commit_all_tracked, diff_summary, remote_url, status,
};
pub use remote::{
    Mirror, clone, fast_forward, fetch, ls_remote_reachable, mirror_to, mirror_updated_at, push,
};
pub use url::{redact_url, same_remote};
