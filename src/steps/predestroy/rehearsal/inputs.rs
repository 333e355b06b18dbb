//! The rehearsal's look at the pushed `flake.lock`: an input that lives on this machine's
//! root disk (a `path` input, a `git+file` or `file` URL outside the repository and the
//! volumes) will not exist on the new machine; one fetched over SSH needs a key there.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::config::Config;
use crate::escape::{escape_bytes, shown};
use crate::exec::git;

/// One input of the pushed flake that recover could not fetch as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub input: String,
    pub why: String,
}

/// The pushed lock's inputs judged: `Ok` with the warnings, or the blocker.
pub fn check(cfg: &Config, lock: Option<&Value>, short: &str) -> Result<Vec<String>, String> {
    let Some(lock) = lock else {
        return Ok(Vec::new());
    };
    let volumes: Vec<&Path> = cfg.volumes.iter().map(|v| v.mount.as_path()).collect();
    let (blockers, warnings) = inputs(lock, &cfg.config_repo.path, &volumes);
    let said = |findings: &[Finding]| {
        findings
            .iter()
            .map(|f| format!("input {}: {}", escape_bytes(f.input.as_bytes()), f.why))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if !blockers.is_empty() {
        return Err(format!(
            "the pushed commit {short} depends on what dies with this machine: {}. Move the \
             input into the repository or onto the volume, or fetch it from a remote; then \
             nix flake lock, commit and push",
            said(&blockers)
        ));
    }
    Ok(if warnings.is_empty() {
        Vec::new()
    } else {
        vec![said(&warnings)]
    })
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
