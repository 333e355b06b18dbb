//! predestroy's `rehearsal`: what recover will clone, cloned now, while mistakes are cheap.
//! The pushed commit of the branch recover clones is cloned fresh (the same credentials and
//! host-key checks) into `[state].dir/rehearsal`, removed afterwards and by the next run
//! after a kill, and its `flake.lock` is checked: an input that lives on this machine's
//! root disk (a `path` input, a `git+file` or `file` URL outside the repository and the
//! volumes) will not exist on the new machine; one fetched over SSH needs a key there.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::config::Config;
use crate::escape::{escape_bytes, shown};
use crate::exec::git::{self, Credentials};
use crate::flow::Outcome;
use crate::steps::StepContext;

/// The rehearsal's clone, lifeboat's own scratch space.
fn clone_dir(cfg: &Config) -> PathBuf {
    cfg.state.dir.join("rehearsal")
}

/// One input of the pushed flake that recover could not fetch as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub input: String,
    pub why: String,
}

/// Clone the pushed branch, check its inputs, remove the clone.
pub fn run(cfg: &Config, url: &str, creds: &Credentials, ctx: &StepContext) -> Outcome {
    let dir = clone_dir(cfg);
    // A killed run's clone: lifeboat's own, made to be thrown away.
    if let Err(e) = remove(&dir) {
        return Outcome::Failed(format!(
            "cannot remove the earlier rehearsal {}: {e}",
            shown(&dir)
        ));
    }
    let branch = &cfg.config_repo.branch;
    let cloned = git::clone(url, branch, &dir, creds, &mut |_| {}, ctx.cancel);
    let outcome = match cloned {
        Ok(commit) => judge(cfg, &dir, &commit),
        Err(_) if ctx.cancel.load(std::sync::atomic::Ordering::Relaxed) => Outcome::Interrupted,
        Err(e) => Outcome::Failed(format!(
            "the pushed branch {branch} could not be cloned as recover will clone it: {e}. \
             Recovery must not depend on the mirror on the volume: make the remote reachable \
             with the key recover will use"
        )),
    };
    // Left behind, the clone is removed by the next rehearsal; a pass says so, a blocker
    // stays one.
    let Err(e) = remove(&dir) else {
        return outcome;
    };
    let left = format!("the clone {} could not be removed ({e})", shown(&dir));
    match outcome {
        Outcome::Passed(message) => Outcome::Warning(format!("{message}; {left}")),
        other => {
            ctx.output(left);
            other
        }
    }
}

/// Remove `dir` when it is there.
fn remove(dir: &Path) -> std::io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The verdict on the clone of `commit` at `dir`.
fn judge(cfg: &Config, dir: &Path, commit: &str) -> Outcome {
    let short = &commit[..commit.len().min(12)];
    let Ok(lock) = fs::read(dir.join("flake.lock")) else {
        return Outcome::Passed(format!(
            "the pushed commit {short} clones as recover will clone it; it has no flake.lock \
             (no inputs to check)"
        ));
    };
    let Ok(lock) = serde_json::from_slice::<Value>(&lock) else {
        return Outcome::Failed(format!(
            "the pushed commit {short}'s flake.lock is not JSON: nix flake lock, commit, push"
        ));
    };
    let volumes: Vec<&Path> = cfg.volumes.iter().map(|v| v.mount.as_path()).collect();
    let (blockers, warnings) = inputs(&lock, &cfg.config_repo.path, &volumes);
    let said = |findings: &[Finding]| {
        findings
            .iter()
            .map(|f| format!("input {}: {}", escape_bytes(f.input.as_bytes()), f.why))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if !blockers.is_empty() {
        return Outcome::Failed(format!(
            "the pushed commit {short} depends on what dies with this machine: {}. Move the \
             input into the repository or onto the volume, or fetch it from a remote; then \
             nix flake lock, commit and push",
            said(&blockers)
        ));
    }
    if !warnings.is_empty() {
        return Outcome::Warning(format!(
            "the pushed commit {short} clones as recover will clone it, but {}",
            said(&warnings)
        ));
    }
    Outcome::Passed(format!(
        "the pushed commit {short} clones as recover will clone it, and none of its flake's \
         inputs lives on this machine's root disk"
    ))
}

/// The direct and indirect inputs of a `flake.lock` (version 7) that recover could not
/// fetch: blockers (on the root disk) and warnings (over SSH). `repo` is where the
/// repository is checked out on this machine; `volumes` are the volumes' mount points.
pub fn inputs(lock: &Value, repo: &Path, volumes: &[&Path]) -> (Vec<Finding>, Vec<Finding>) {
    let (mut blockers, mut warnings) = (Vec::new(), Vec::new());
    let Some(nodes) = lock.get("nodes").and_then(Value::as_object) else {
        return (blockers, warnings);
    };
    let root = lock.get("root").and_then(Value::as_str).unwrap_or("root");
    for (name, node) in nodes {
        if name == root {
            continue;
        }
        let Some(locked) = node.get("locked").or_else(|| node.get("original")) else {
            continue;
        };
        let kind = locked.get("type").and_then(Value::as_str).unwrap_or("");
        let url = locked.get("url").and_then(Value::as_str).unwrap_or("");
        let local = match kind {
            "path" => locked
                .get("path")
                .and_then(Value::as_str)
                .map(PathBuf::from),
            "git" | "file" | "tarball" => url.strip_prefix("file://").map(PathBuf::from),
            _ => None,
        };
        if let Some(path) = local {
            let kept = path.is_relative()
                || path.starts_with(repo)
                || volumes.iter().any(|v| path.starts_with(v));
            if !kept {
                blockers.push(Finding {
                    input: name.clone(),
                    why: format!(
                        "{} is on this machine's root disk, which the new machine will not have",
                        shown(&path)
                    ),
                });
            }
        } else if url.starts_with("ssh://") || url.contains("git@") {
            warnings.push(Finding {
                input: name.clone(),
                why: format!(
                    "{} is fetched over SSH: recover will need a key for it (the \
                     [config_repo].ssh_key on the volume, or an agent)",
                    git::redact_url(url)
                ),
            });
        }
    }
    (blockers, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_on_the_root_disk_block_and_ssh_ones_warn() {
        let lock = serde_json::json!({
            "nodes": {
                "root": { "inputs": { "nixpkgs": "nixpkgs", "secrets": "secrets" } },
                "nixpkgs": { "locked": { "type": "github", "owner": "NixOS", "repo": "nixpkgs" } },
                "secrets": { "locked": { "type": "path", "path": "/srv/secrets" } },
                "vendored": { "locked": { "type": "path", "path": "/etc/nixos/vendor" } },
                "data": { "locked": { "type": "git", "url": "file:///home/qwe/data.git" } },
                "local": { "locked": { "type": "git", "url": "file:///root/dotfiles" } },
                "private": { "locked": { "type": "git", "url": "ssh://git@github.com/qwe/private" } }
            },
            "root": "root",
            "version": 7
        });
        let (blockers, warnings) = inputs(&lock, Path::new("/etc/nixos"), &[Path::new("/home")]);
        let named: Vec<&str> = blockers.iter().map(|f| f.input.as_str()).collect();
        assert_eq!(named, ["local", "secrets"]);
        assert!(blockers[1].why.contains("/srv/secrets"), "{blockers:?}");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].input, "private");
    }
}
