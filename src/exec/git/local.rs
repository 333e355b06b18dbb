//! What can be learned and done without a network: the repository's state, a diff summary,
//! committing changes to tracked files, and how a branch stands against its upstream.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use git2::{BranchType, ErrorCode, Repository, Signature, Status, StatusOptions};

use super::error::{Cause, GitError};

/// How a local branch stands against its upstream (`branch.<name>.merge` on its remote).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    Equal,
    /// Local commits the remote does not have: a push publishes them.
    Ahead(usize),
    /// Remote commits the branch does not have: a fast-forward brings them in.
    Behind(usize),
    /// Both sides have commits of their own: only a person can merge them.
    Diverged {
        ahead: usize,
        behind: usize,
    },
    /// No upstream is configured, or its remote-tracking branch does not exist yet.
    NoUpstream,
}

/// The state of a working tree, as `predestroy` must judge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoStatus {
    /// The branch HEAD is on; `None` when HEAD is detached.
    pub branch: Option<String>,
    /// The commit HEAD points at; `None` before the first commit.
    pub head: Option<String>,
    /// Tracked files whose content differs from HEAD, staged or not.
    pub changed: Vec<ChangedFile>,
    /// Files git does not track and does not ignore (inside untracked directories too):
    /// they die with the root disk unless copied somewhere.
    pub untracked: Vec<PathBuf>,
}

impl RepoStatus {
    /// Nothing uncommitted and nothing untracked.
    pub fn is_clean(&self) -> bool {
        self.changed.is_empty() && self.untracked.is_empty()
    }
}

/// A tracked file that is not as HEAD has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedFile {
    /// Relative to the working tree.
    pub path: PathBuf,
    pub change: Change,
}

/// How a tracked file differs from HEAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// New in the index (added with `git add`, not yet committed).
    Added,
    Modified,
    Deleted,
    Renamed,
    TypeChanged,
    /// An unresolved merge conflict.
    Conflicted,
}

/// What committing the tracked changes would record, for the operator to see first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiffSummary {
    pub files: Vec<FileDiff>,
    pub insertions: usize,
    pub deletions: usize,
}

/// One file's share of a [`DiffSummary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDiff {
    pub path: PathBuf,
    pub change: Change,
    pub insertions: usize,
    pub deletions: usize,
    /// Binary files have no line counts.
    pub binary: bool,
}

/// Open the repository whose working tree (or bare directory) is exactly `path`, with the
/// ownership refusal explained.
pub(super) fn open(path: &Path) -> Result<Repository, GitError> {
    Repository::open(path).map_err(|e| match e.code() {
        ErrorCode::Owner => GitError::NotOwned {
            path: path.to_path_buf(),
            owner: owner_of(path),
            cause: Cause::new(&e),
        },
        ErrorCode::NotFound => GitError::NotARepository {
            path: path.to_path_buf(),
        },
        _ => GitError::git("open", path.display(), &e),
    })
}

/// "user qwe (uid 1000)" for the owner of `path`, as far as it can be told.
fn owner_of(path: &Path) -> String {
    let Ok(meta) = std::fs::metadata(path) else {
        return "another user".to_string();
    };
    let uid = meta.uid();
    match nix::unistd::User::from_uid(uid.into()) {
        Ok(Some(user)) => format!("user {} (uid {uid})", user.name),
        _ => format!("uid {uid}"),
    }
}

/// Is `path` a repository, on which branch and commit, and what is not committed.
pub fn status(path: &Path) -> Result<RepoStatus, GitError> {
    let repo = open(path)?;
    let git_err = |e: git2::Error| GitError::git("status", path.display(), &e);
    let head_ref = repo.find_reference("HEAD").map_err(git_err)?;
    let branch = head_ref
        .symbolic_target_bytes()
        .and_then(|t| t.strip_prefix(b"refs/heads/"))
        .map(|name| String::from_utf8_lossy(name).into_owned());
    let head = match repo.head() {
        Ok(head) => head.target().map(|oid| oid.to_string()),
        Err(e) if e.code() == ErrorCode::UnbornBranch => None,
        Err(e) => return Err(git_err(e)),
    };
    let mut options = StatusOptions::new();
    options
        .include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false)
        .exclude_submodules(true);
    let statuses = repo.statuses(Some(&mut options)).map_err(git_err)?;
    let mut changed = Vec::new();
    let mut untracked = Vec::new();
    for entry in statuses.iter() {
        let path = bytes_path(entry.path_bytes());
        let flags = entry.status();
        if flags == Status::WT_NEW {
            untracked.push(path);
        } else if let Some(change) = change_of(flags) {
            changed.push(ChangedFile { path, change });
        }
    }
    Ok(RepoStatus {
        branch,
        head,
        changed,
        untracked,
    })
}

fn bytes_path(bytes: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(bytes))
}

/// The kind of change a status or delta reports, or `None` for an unchanged file.
fn change_of(flags: Status) -> Option<Change> {
    let any = |bits: Status| flags.intersects(bits);
    if any(Status::CONFLICTED) {
        Some(Change::Conflicted)
    } else if any(Status::INDEX_DELETED | Status::WT_DELETED) {
        Some(Change::Deleted)
    } else if any(Status::INDEX_RENAMED | Status::WT_RENAMED) {
        Some(Change::Renamed)
    } else if any(Status::INDEX_TYPECHANGE | Status::WT_TYPECHANGE) {
        Some(Change::TypeChanged)
    } else if any(Status::INDEX_NEW) {
        Some(Change::Added)
    } else if any(Status::INDEX_MODIFIED | Status::WT_MODIFIED) {
        Some(Change::Modified)
    } else {
        None
    }
}

fn change_of_delta(delta: git2::Delta) -> Change {
    match delta {
        git2::Delta::Added => Change::Added,
        git2::Delta::Deleted => Change::Deleted,
        git2::Delta::Renamed => Change::Renamed,
        git2::Delta::Typechange => Change::TypeChanged,
        git2::Delta::Conflicted => Change::Conflicted,
        _ => Change::Modified,
    }
}

/// Lines added and removed per tracked file, HEAD against the working tree: exactly what
/// [`commit_all_tracked`] would commit. Untracked files are not part of it.
pub fn diff_summary(path: &Path) -> Result<DiffSummary, GitError> {
    let repo = open(path)?;
    let git_err = |e: git2::Error| GitError::git("diff", path.display(), &e);
    let head_tree = match repo.head() {
        Ok(head) => Some(head.peel_to_tree().map_err(git_err)?),
        Err(e) if e.code() == ErrorCode::UnbornBranch => None,
        Err(e) => return Err(git_err(e)),
    };
    let diff = repo
        .diff_tree_to_workdir_with_index(head_tree.as_ref(), None)
        .map_err(git_err)?;
    let mut summary = DiffSummary::default();
    for index in 0..diff.deltas().len() {
        let Some(patch) = git2::Patch::from_diff(&diff, index).map_err(git_err)? else {
            continue;
        };
        let delta = patch.delta();
        let (_, insertions, deletions) = patch.line_stats().map_err(git_err)?;
        let file = delta
            .new_file()
            .path_bytes()
            .or(delta.old_file().path_bytes());
        summary.insertions += insertions;
        summary.deletions += deletions;
        summary.files.push(FileDiff {
            path: bytes_path(file.unwrap_or_default()),
            change: change_of_delta(delta.status()),
            insertions,
            deletions,
            binary: delta.flags().is_binary(),
        });
    }
    Ok(summary)
}

/// Stage every change to a tracked file (modifications and deletions; never an untracked
/// file, which may be a secret) and commit it on the current branch with `message`, as the
/// repository's configured identity or else `lifeboat <root@hostname>`. Returns the new
/// commit's id.
pub fn commit_all_tracked(path: &Path, message: &str) -> Result<String, GitError> {
    let repo = open(path)?;
    let git_err = |e: git2::Error| GitError::git("commit", path.display(), &e);
    let mut index = repo.index().map_err(git_err)?;
    index.update_all(["*"], None).map_err(git_err)?;
    let tree_id = index.write_tree().map_err(git_err)?;
    let parent = match repo.head() {
        Ok(head) => Some(head.peel_to_commit().map_err(git_err)?),
        Err(e) if e.code() == ErrorCode::UnbornBranch => None,
        Err(e) => return Err(git_err(e)),
    };
    if parent.as_ref().map(git2::Commit::tree_id) == Some(tree_id) {
        return Err(GitError::NothingToCommit {
            path: path.to_path_buf(),
        });
    }
    index.write().map_err(git_err)?;
    let tree = repo.find_tree(tree_id).map_err(git_err)?;
    let config = repo.config().map_err(git_err)?;
    let author = identity(&config).map_err(git_err)?;
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    let id = repo
        .commit(Some("HEAD"), &author, &author, message, &tree, &parents)
        .map_err(git_err)?;
    Ok(id.to_string())
}

/// `user.name`/`user.email` from the repository's configuration (local, global, system),
/// or `lifeboat <root@hostname>` when either is missing.
fn identity(config: &git2::Config) -> Result<Signature<'static>, git2::Error> {
    let name = config.get_string("user.name");
    let email = config.get_string("user.email");
    match (name, email) {
        (Ok(name), Ok(email)) if !name.is_empty() && !email.is_empty() => {
            Signature::now(&name, &email)
        }
        _ => Signature::now(
            "lifeboat",
            &format!("root@{}", crate::exec::host::hostname()),
        ),
    }
}

/// How local `branch` stands against its upstream, from the remote-tracking branch as the
/// last fetch left it (call [`super::remote::fetch`] first for the remote's current state).
pub fn ahead_behind(path: &Path, branch: &str) -> Result<Relation, GitError> {
    let repo = open(path)?;
    let git_err = |e: git2::Error| GitError::git("ahead/behind", path.display(), &e);
    let local = local_branch(&repo, path, branch)?;
    let upstream = match local.upstream() {
        Ok(upstream) => upstream,
        Err(e) if e.code() == ErrorCode::NotFound => return Ok(Relation::NoUpstream),
        Err(e) => return Err(git_err(e)),
    };
    let (Some(ours), Some(theirs)) = (local.get().target(), upstream.get().target()) else {
        return Ok(Relation::NoUpstream);
    };
    relation(&repo, ours, theirs).map_err(git_err)
}

pub(super) fn local_branch<'r>(
    repo: &'r Repository,
    path: &Path,
    branch: &str,
) -> Result<git2::Branch<'r>, GitError> {
    repo.find_branch(branch, BranchType::Local)
        .map_err(|e| match e.code() {
            ErrorCode::NotFound => GitError::NoSuchBranch {
                path: path.to_path_buf(),
                branch: branch.to_string(),
            },
            _ => GitError::git("find branch", path.display(), &e),
        })
}

pub(super) fn relation(
    repo: &Repository,
    ours: git2::Oid,
    theirs: git2::Oid,
) -> Result<Relation, git2::Error> {
    Ok(match repo.graph_ahead_behind(ours, theirs)? {
        (0, 0) => Relation::Equal,
        (ahead, 0) => Relation::Ahead(ahead),
        (0, behind) => Relation::Behind(behind),
        (ahead, behind) => Relation::Diverged { ahead, behind },
    })
}

/// The URL of `remote` in the repository at `path` (secrets included: compare it with
/// [`super::url::same_remote`], show it with [`super::url::redact_url`]); `None` when the remote
/// does not exist.
pub fn remote_url(path: &Path, remote: &str) -> Result<Option<String>, GitError> {
    let repo = open(path)?;
    match repo.find_remote(remote) {
        Ok(found) => Ok(Some(
            String::from_utf8_lossy(found.url_bytes()).into_owned(),
        )),
        Err(e) if matches!(e.code(), ErrorCode::NotFound | ErrorCode::InvalidSpec) => Ok(None),
        Err(e) => Err(GitError::git("find remote", path.display(), &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_identity_wins_and_its_absence_falls_back_to_lifeboat() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config");
        std::fs::write(&file, "").unwrap();
        let mut config = git2::Config::open(&file).unwrap();
        let fallback = identity(&config).unwrap();
        assert_eq!(fallback.name().unwrap(), "lifeboat");
        assert_eq!(
            fallback.email().unwrap(),
            format!("root@{}", crate::exec::host::hostname())
        );
        config.set_str("user.name", "Q").unwrap();
        assert_eq!(identity(&config).unwrap().name().unwrap(), "lifeboat");
        config.set_str("user.email", "q@example.org").unwrap();
        let configured = identity(&config).unwrap();
        assert_eq!(configured.name().unwrap(), "Q");
        assert_eq!(configured.email().unwrap(), "q@example.org");
    }
}
