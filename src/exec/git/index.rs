//! The index and working tree, file by file: what `recover` does to the fresh clone besides
//! cloning (stage a generated file so the flake can see it, point `origin` back at the real
//! remote after cloning from the mirror, read the committed version of a file to diff
//! against), and why a file of the checkout is missing from a commit (predestroy's
//! rehearsal).

use std::path::Path;

use super::error::GitError;
use super::local::open;
use super::url::redact_url;

/// `git add <file>` (a path relative to the working tree).
pub fn stage(path: &Path, file: &Path) -> Result<(), GitError> {
    let repo = open(path)?;
    let git_err = |e: git2::Error| GitError::git("add", file.display(), &e);
    let mut index = repo.index().map_err(git_err)?;
    index.add_path(file).map_err(git_err)?;
    index.write().map_err(git_err)
}

/// Is `file` staged exactly as it is in the working tree?
pub fn is_staged(path: &Path, file: &Path) -> Result<bool, GitError> {
    let status = status_of(path, file)?;
    Ok(!status.intersects(git2::Status::WT_NEW | git2::Status::WT_MODIFIED))
}

/// `git status` of one file, relative to the working tree.
fn status_of(path: &Path, file: &Path) -> Result<git2::Status, GitError> {
    open(path)?
        .status_file(file)
        .map_err(|e| GitError::git("status", file.display(), &e))
}

/// What git makes of a file of the working tree that a commit lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// Never added.
    Untracked,
    /// Matched by a `.gitignore`: git never commits it.
    Ignored,
    /// Added to the index but never committed.
    Staged,
    /// In HEAD: committed here (and not in the commit that lacks it).
    Committed,
}

impl std::fmt::Display for FileState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileState::Untracked => "untracked (never git added)",
            FileState::Ignored => "ignored by .gitignore",
            FileState::Staged => "staged but never committed",
            FileState::Committed => "committed here but not pushed",
        })
    }
}

/// The state of `file` (relative to the working tree) in the repository at `path`.
pub fn file_state(path: &Path, file: &Path) -> Result<FileState, GitError> {
    let status = status_of(path, file)?;
    Ok(if status.contains(git2::Status::IGNORED) {
        FileState::Ignored
    } else if status.contains(git2::Status::WT_NEW) {
        FileState::Untracked
    } else if status.contains(git2::Status::INDEX_NEW) {
        FileState::Staged
    } else {
        FileState::Committed
    })
}

/// Set the URL of `remote`.
pub fn set_remote_url(path: &Path, remote: &str, url: &str) -> Result<(), GitError> {
    let repo = open(path)?;
    repo.remote_set_url(remote, url)
        .map_err(|e| GitError::git("set remote url", redact_url(url), &e))
}

/// The content of `file` in the commit HEAD points at; `None` when it is not there.
pub fn committed(path: &Path, file: &Path) -> Result<Option<Vec<u8>>, GitError> {
    let repo = open(path)?;
    let git_err = |e: git2::Error| GitError::git("show", file.display(), &e);
    let Ok(head) = repo.head() else {
        return Ok(None);
    };
    let tree = head.peel_to_tree().map_err(git_err)?;
    let Ok(entry) = tree.get_path(file) else {
        return Ok(None);
    };
    let blob = entry
        .to_object(&repo)
        .and_then(|o| o.peel_to_blob())
        .map_err(git_err)?;
    Ok(Some(blob.content().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=T", "-c", "user.email=t@e"])
            .args(args)
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn a_generated_file_is_staged_and_the_committed_one_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        git(repo, &["init", "-q", "-b", "main"]);
        std::fs::write(repo.join("hw.nix"), "old\n").unwrap();
        git(repo, &["add", "hw.nix"]);
        git(repo, &["commit", "-q", "-m", "init"]);
        std::fs::write(repo.join("hw.nix"), "new\n").unwrap();
        assert!(!is_staged(repo, Path::new("hw.nix")).unwrap());
        stage(repo, Path::new("hw.nix")).unwrap();
        assert!(is_staged(repo, Path::new("hw.nix")).unwrap());
        assert_eq!(
            committed(repo, Path::new("hw.nix")).unwrap(),
            Some(b"old\n".to_vec())
        );
        assert_eq!(committed(repo, Path::new("missing.nix")).unwrap(), None);
        std::fs::write(repo.join("untracked.nix"), "x").unwrap();
        assert!(!is_staged(repo, Path::new("untracked.nix")).unwrap());
    }

    #[test]
    fn a_file_missing_from_a_commit_is_named_for_why() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        git(repo, &["init", "-q", "-b", "main"]);
        std::fs::write(repo.join(".gitignore"), "secret.nix\n").unwrap();
        for file in ["secret.nix", "new.nix", "staged.nix", "committed.nix"] {
            std::fs::write(repo.join(file), "{ }\n").unwrap();
        }
        git(repo, &["add", ".gitignore", "committed.nix"]);
        git(repo, &["commit", "-q", "-m", "init"]);
        git(repo, &["add", "staged.nix"]);
        let state = |file: &str| file_state(repo, Path::new(file)).unwrap();
        assert_eq!(state("secret.nix"), FileState::Ignored);
        assert_eq!(state("new.nix"), FileState::Untracked);
        assert_eq!(state("staged.nix"), FileState::Staged);
        assert_eq!(state("committed.nix"), FileState::Committed);
    }

    #[test]
    fn origin_can_be_pointed_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        git(repo, &["init", "-q"]);
        git(repo, &["remote", "add", "origin", "/mirror.git"]);
        set_remote_url(repo, "origin", "git@github.com:qwe/nixos-config.git").unwrap();
        assert_eq!(
            super::super::local::remote_url(repo, "origin")
                .unwrap()
                .as_deref(),
            Some("git@github.com:qwe/nixos-config.git")
        );
    }
}
