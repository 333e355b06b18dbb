//! Operations that talk to a remote: fetch, push, clone, fast-forward, reachability, and
//! the bare mirror on the volume.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use git2::build::{CheckoutBuilder, RepoBuilder};
use git2::{
    AutotagOption, Direction, ErrorClass, ErrorCode, FetchOptions, FetchPrune, PushOptions,
};

use super::callbacks::{Credentials, Session, TransferProgress};
use super::error::GitError;
use super::local::{self, Relation, local_branch, open, relation};

/// The file lifeboat writes in a mirror after each update, holding the time (RFC 3339).
const MIRROR_STAMP: &str = "lifeboat-updated";

/// Bring `remote`'s `branch` into `refs/remotes/<remote>/<branch>` (tags follow).
pub fn fetch(
    path: &Path,
    remote: &str,
    branch: &str,
    creds: &Credentials,
    progress: &mut dyn FnMut(TransferProgress),
    cancel: &AtomicBool,
) -> Result<(), GitError> {
    let repo = open(path)?;
    fetch_into(&repo, path, remote, branch, creds, progress, cancel)
}

fn fetch_into(
    repo: &git2::Repository,
    path: &Path,
    remote: &str,
    branch: &str,
    creds: &Credentials,
    progress: &mut dyn FnMut(TransferProgress),
    cancel: &AtomicBool,
) -> Result<(), GitError> {
    let mut found = find_remote(repo, path, remote)?;
    let url = String::from_utf8_lossy(found.url_bytes()).into_owned();
    let session = Session::new(creds, &url, progress, cancel);
    let mut options = FetchOptions::new();
    options.remote_callbacks(session.callbacks());
    let refspec = format!("+refs/heads/{branch}:refs/remotes/{remote}/{branch}");
    found
        .fetch(&[refspec], Some(&mut options), None)
        .map_err(|e| fetch_error(&session, &e, branch))
}

fn find_remote<'r>(
    repo: &'r git2::Repository,
    path: &Path,
    remote: &str,
) -> Result<git2::Remote<'r>, GitError> {
    repo.find_remote(remote).map_err(|e| match e.code() {
        ErrorCode::NotFound | ErrorCode::InvalidSpec => GitError::NoSuchRemote {
            path: path.to_path_buf(),
            remote: remote.to_string(),
        },
        _ => GitError::git("find remote", path.display(), &e),
    })
}

/// A missing branch on the remote is reported by name; everything else as the session saw it.
fn fetch_error(session: &Session<'_>, error: &git2::Error, branch: &str) -> GitError {
    let missing = error.code() == ErrorCode::NotFound
        || (error.class() == ErrorClass::Reference && error.message().contains("not found"));
    if missing {
        GitError::NoSuchRemoteBranch {
            url: session.shown_url(),
            branch: branch.to_string(),
        }
    } else {
        session.error("fetch", error)
    }
}

/// Push local `branch` to the same name on `remote`, never forcing. A ref the remote
/// refuses is [`GitError::PushRejected`] with its reason. When the branch had no upstream,
/// `<remote>/<branch>` becomes its upstream, so [`super::local::ahead_behind`] can compare them.
pub fn push(
    path: &Path,
    remote: &str,
    branch: &str,
    creds: &Credentials,
    progress: &mut dyn FnMut(TransferProgress),
    cancel: &AtomicBool,
) -> Result<(), GitError> {
    let repo = open(path)?;
    let mut local = local_branch(&repo, path, branch)?;
    let mut found = find_remote(&repo, path, remote)?;
    let url = String::from_utf8_lossy(found.url_bytes()).into_owned();
    let session = Session::new(creds, &url, progress, cancel);
    let mut options = PushOptions::new();
    options.remote_callbacks(session.callbacks());
    let refspec = format!("refs/heads/{branch}:refs/heads/{branch}");
    found
        .push(&[refspec], Some(&mut options))
        .map_err(|e| push_error(&session, &e, remote, branch))?;
    if let Some(reason) = session.rejections() {
        return Err(GitError::PushRejected {
            remote: remote.to_string(),
            branch: branch.to_string(),
            reason,
        });
    }
    if local.upstream().is_err() {
        local
            .set_upstream(Some(&format!("{remote}/{branch}")))
            .map_err(|e| GitError::git("set upstream", path.display(), &e))?;
    }
    Ok(())
}

/// libgit2 itself refuses a non-fast-forward push to a local remote; say so as a rejection.
fn push_error(session: &Session<'_>, error: &git2::Error, remote: &str, branch: &str) -> GitError {
    if error.code() == ErrorCode::NotFastForward {
        return GitError::PushRejected {
            remote: remote.to_string(),
            branch: branch.to_string(),
            reason: format!(
                "{} (the remote has commits this branch does not have: fetch, merge or rebase, then push again; lifeboat never forces)",
                error.message()
            ),
        };
    }
    session.error("push", error)
}

/// Clone `branch` of `url` into `dest` (which must not exist, or be empty), reporting
/// transfer progress; `cancel` stops it. Returns the commit checked out.
///
/// The clone is made in a hidden sibling, `.lifeboat-<name>.clone`, and renamed into place
/// once it is checked out: a run killed half-way leaves `dest` as it was, never a
/// repository without its branch, and the next clone removes what it left.
pub fn clone(
    url: &str,
    branch: &str,
    dest: &Path,
    creds: &Credentials,
    progress: &mut dyn FnMut(TransferProgress),
    cancel: &AtomicBool,
) -> Result<String, GitError> {
    if dest.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        return Err(GitError::DestinationExists {
            path: dest.to_path_buf(),
        });
    }
    let staging = staging_dir(dest)?;
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| GitError::Io { path, source }
    };
    remove_stale(&staging).map_err(io_err(&staging))?;
    let session = Session::new(creds, url, progress, cancel);
    let mut options = FetchOptions::new();
    options.remote_callbacks(session.callbacks());
    let cloned = RepoBuilder::new()
        .branch(branch)
        .fetch_options(options)
        .clone(url, &staging)
        .map_err(|e| fetch_error(&session, &e, branch))
        .and_then(|repo| {
            let head = repo
                .head()
                .and_then(|h| h.peel_to_commit())
                .map_err(|e| GitError::git("clone", dest.display(), &e))?;
            // Renaming a directory over an empty one replaces it.
            std::fs::rename(&staging, dest).map_err(io_err(dest))?;
            Ok(head.id().to_string())
        });
    if cloned.is_err() {
        let _ = remove_stale(&staging);
    }
    cloned
}

/// `<parent>/.lifeboat-<name>.clone`, where [`clone`] builds the repository.
fn staging_dir(dest: &Path) -> Result<PathBuf, GitError> {
    let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
        return Err(GitError::Io {
            path: dest.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "no directory name"),
        });
    };
    let mut staging = std::ffi::OsString::from(".lifeboat-");
    staging.push(name);
    staging.push(".clone");
    Ok(parent.join(staging))
}

/// Remove what an earlier clone left in its staging directory (nothing is followed).
fn remove_stale(staging: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(staging) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Bring an existing clone up to `remote`'s `branch`: fetch, then fast-forward the checked
/// out branch. Refused when tracked files have uncommitted changes, when HEAD is on another
/// branch, or when the two have diverged. Returns how the branch stood before; after
/// `Behind(_)` it equals the remote, after `Ahead(_)` it was left as it was.
pub fn fast_forward(
    path: &Path,
    remote: &str,
    branch: &str,
    creds: &Credentials,
    progress: &mut dyn FnMut(TransferProgress),
    cancel: &AtomicBool,
) -> Result<Relation, GitError> {
    let state = local::status(path)?;
    if !state.changed.is_empty() {
        return Err(GitError::LocalChanges {
            path: path.to_path_buf(),
            files: state.changed.into_iter().map(|c| c.path).collect(),
        });
    }
    if state.branch.as_deref() != Some(branch) {
        return Err(GitError::WrongBranch {
            path: path.to_path_buf(),
            actual: state
                .branch
                .unwrap_or_else(|| "a detached HEAD".to_string()),
            wanted: branch.to_string(),
        });
    }
    let repo = open(path)?;
    fetch_into(&repo, path, remote, branch, creds, progress, cancel)?;
    let git_err = |e: git2::Error| GitError::git("fast-forward", path.display(), &e);
    let mut local_ref = local_branch(&repo, path, branch)?.into_reference();
    let tracking = repo
        .find_reference(&format!("refs/remotes/{remote}/{branch}"))
        .map_err(git_err)?;
    let (Some(ours), Some(theirs)) = (local_ref.target(), tracking.target()) else {
        return Err(GitError::NoSuchBranch {
            path: path.to_path_buf(),
            branch: branch.to_string(),
        });
    };
    let before = relation(&repo, ours, theirs).map_err(git_err)?;
    match before {
        Relation::Diverged { ahead, behind } => Err(GitError::Diverged {
            path: path.to_path_buf(),
            branch: branch.to_string(),
            ahead,
            behind,
        }),
        Relation::Behind(_) => {
            let target = repo.find_object(theirs, None).map_err(git_err)?;
            repo.checkout_tree(&target, Some(CheckoutBuilder::new().safe()))
                .map_err(git_err)?;
            local_ref
                .set_target(
                    theirs,
                    &format!("lifeboat: fast-forward to {remote}/{branch}"),
                )
                .map_err(git_err)?;
            Ok(before)
        }
        _ => Ok(before),
    }
}

/// Whether the remote at `url` can be reached and lets these credentials in (for
/// `recover`'s preflight): connects, authenticates, lists the branches it has.
pub fn ls_remote_reachable(url: &str, creds: &Credentials) -> Result<Vec<String>, GitError> {
    let cancel = AtomicBool::new(false);
    let mut ignore = |_| {};
    let session = Session::new(creds, url, &mut ignore, &cancel);
    let mut remote =
        git2::Remote::create_detached(url).map_err(|e| GitError::git("ls-remote", url, &e))?;
    let connection = remote
        .connect_auth(Direction::Fetch, Some(session.callbacks()), None)
        .map_err(|e| session.error("ls-remote", &e))?;
    let heads = connection
        .list()
        .map_err(|e| session.error("ls-remote", &e))?;
    Ok(heads
        .iter()
        .filter_map(|h| h.name().strip_prefix("refs/heads/"))
        .map(str::to_string)
        .collect())
}

/// What a mirror update left on the volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    pub dir: PathBuf,
    pub branches: usize,
    pub tags: usize,
    pub updated_at: jiff::Timestamp,
}

/// Create or update a bare mirror of the repository at `repo_path` in `mirror_dir`
/// (`<user>/nixos-config-backup.git` on the volume): every branch and tag, branches and
/// tags deleted at the source deleted here too, HEAD on the source's branch, and the time
/// of this update in a file [`mirror_updated_at`] reads back. `recover` clones from it
/// when the remote cannot be reached.
pub fn mirror_to(repo_path: &Path, mirror_dir: &Path) -> Result<Mirror, GitError> {
    let source = open(repo_path)?;
    let mirror = if mirror_dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        let mirror = open(mirror_dir)?;
        if !mirror.is_bare() {
            return Err(GitError::DestinationExists {
                path: mirror_dir.to_path_buf(),
            });
        }
        mirror
    } else {
        git2::Repository::init_bare(mirror_dir)
            .map_err(|e| GitError::git("init mirror", mirror_dir.display(), &e))?
    };
    let git_err = |e: git2::Error| GitError::git("mirror", mirror_dir.display(), &e);
    let source_url = repo_path.to_string_lossy().into_owned();
    let mut remote = mirror.remote_anonymous(&source_url).map_err(git_err)?;
    let mut options = FetchOptions::new();
    options
        .prune(FetchPrune::On)
        .download_tags(AutotagOption::None);
    let refspecs = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];
    remote
        .fetch(&refspecs, Some(&mut options), None)
        .map_err(git_err)?;
    if let Some(head) = source
        .find_reference("HEAD")
        .ok()
        .and_then(|h| String::from_utf8(h.symbolic_target_bytes()?.to_vec()).ok())
        .filter(|target| mirror.find_reference(target).is_ok())
    {
        mirror.set_head(&head).map_err(git_err)?;
    }
    let count = |glob: &str| mirror.references_glob(glob).map(std::iter::Iterator::count);
    let branches = count("refs/heads/*").map_err(git_err)?;
    let tags = count("refs/tags/*").map_err(git_err)?;
    let updated_at = jiff::Timestamp::now();
    let stamp = mirror_dir.join(MIRROR_STAMP);
    crate::exec::atomic::write_atomic(&stamp, format!("{updated_at}\n").as_bytes(), 0o644)
        .map_err(|source| GitError::Io {
            path: stamp,
            source,
        })?;
    Ok(Mirror {
        dir: mirror_dir.to_path_buf(),
        branches,
        tags,
        updated_at,
    })
}

/// When [`mirror_to`] last updated the mirror in `mirror_dir`; `None` when it never did
/// (no mirror, or one lifeboat did not write).
pub fn mirror_updated_at(mirror_dir: &Path) -> Result<Option<jiff::Timestamp>, GitError> {
    let stamp = mirror_dir.join(MIRROR_STAMP);
    match std::fs::read_to_string(&stamp) {
        Ok(text) => Ok(text.trim().parse().ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(GitError::Io {
            path: stamp,
            source,
        }),
    }
}
