//! The failures lifeboat recognises in Nix's and nixos-rebuild's messages, and what to do
//! about each.

use super::ansi::strip_ansi;

/// A failure lifeboat recognises in Nix's or nixos-rebuild's messages, with what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KnownError {
    /// The flake is a git repository and `file` (relative to it) is not tracked, so Nix
    /// does not see it; typically a freshly generated `hardware-configuration.nix`.
    UntrackedInFlake { file: String },
    /// The configuration repository at `path` belongs to another user.
    RepositoryOwnership { path: String },
    /// `fileSystems."<mount_point>"` is defined twice.
    DuplicateFileSystem {
        mount_point: String,
        in_hardware_configuration: bool,
    },
    /// The flake has no `nixosConfigurations` entry called `host`.
    HostNotInFlake { host: String },
}

impl KnownError {
    /// Whether this is a missing host other than `host` (none when `None`): Nix's bare
    /// "attribute 'x' missing" is read as a missing host, but inside a configuration that
    /// does evaluate as `host`, it is an option or attribute the configuration lacks.
    pub fn names_another_host(&self, host: Option<&str>) -> bool {
        matches!(self, KnownError::HostNotInFlake { host: h } if Some(h.as_str()) != host)
    }
}

impl std::fmt::Display for KnownError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KnownError::UntrackedInFlake { file } => write!(
                f,
                "{file} is not tracked by git, and a flake only sees tracked files: `git add {file}` in the configuration repository"
            ),
            KnownError::RepositoryOwnership { path } => write!(
                f,
                "the repository {path} belongs to another user: run as its owner, or `git config --global --add safe.directory {path}`"
            ),
            KnownError::DuplicateFileSystem {
                mount_point,
                in_hardware_configuration,
            } => {
                write!(f, "fileSystems.\"{mount_point}\" is defined twice")?;
                if *in_hardware_configuration {
                    write!(
                        f,
                        ", once in hardware-configuration.nix: nixos-generate-config wrote an entry for a mount it saw; remove that entry (or regenerate with --no-filesystems)"
                    )?;
                }
                Ok(())
            }
            KnownError::HostNotInFlake { host } => write!(
                f,
                "the flake has no nixosConfigurations.\"{host}\": check the host name against flake.nix (`nix flake show`)"
            ),
        }
    }
}

/// The known failures among `messages` (message texts or plain lines, colours allowed),
/// each once, in the order first seen.
pub fn summarise_errors<'a>(messages: impl IntoIterator<Item = &'a str>) -> Vec<KnownError> {
    let mut known = Vec::new();
    for message in messages {
        let text = strip_ansi(message);
        for error in recognise(&text) {
            if !known.contains(&error) {
                known.push(error);
            }
        }
    }
    known
}

/// Every known failure one message describes.
fn recognise(text: &str) -> Vec<KnownError> {
    [
        untracked,
        ownership,
        duplicate_file_system,
        host_not_in_flake,
    ]
    .iter()
    .filter_map(|recogniser| recogniser(text))
    .collect()
}

fn untracked(text: &str) -> Option<KnownError> {
    // Nix ≥ 2.20: Path 'f' in the repository "/etc/nixos" is not tracked by Git.
    let file = between(text, "Path '", "' in the repository")
        .filter(|_| text.contains("is not tracked by Git"))
        .or_else(|| {
            // Nix 2.8: getting status of '/nix/store/…-source/f': No such file or directory
            let path = between(text, "getting status of '", "': No such file or directory")?;
            let (store_dir, file) = path.split_once("-source/")?;
            store_dir.starts_with("/nix/store/").then_some(file)
        })?;
    Some(KnownError::UntrackedInFlake {
        file: file.to_string(),
    })
}

fn ownership(text: &str) -> Option<KnownError> {
    let path = between(text, "repository path '", "' is not owned by current user")
        .or_else(|| between(text, "unsafe repository ('", "' is owned by someone else"))
        .or_else(|| between(text, "dubious ownership in repository at '", "'"))?;
    Some(KnownError::RepositoryOwnership {
        path: path.to_string(),
    })
}

fn duplicate_file_system(text: &str) -> Option<KnownError> {
    let (option, _) = text.split_once("has conflicting definition values")?;
    let mount_point = between(option, "fileSystems.\"", "\"")?;
    Some(KnownError::DuplicateFileSystem {
        mount_point: mount_point.to_string(),
        in_hardware_configuration: text.contains("hardware-configuration.nix"),
    })
}

fn host_not_in_flake(text: &str) -> Option<KnownError> {
    let attribute = between(text, "does not provide attribute '", "'")
        .or_else(|| between(text, "attribute '", "' missing"))?;
    let host = between(attribute, "nixosConfigurations.\"", "\"")
        .or_else(|| {
            let rest = attribute.split_once("nixosConfigurations.")?.1;
            rest.split('.').next()
        })
        .unwrap_or(attribute);
    Some(KnownError::HostNotInFlake {
        host: host.to_string(),
    })
}

/// The text between the first `start` and the next `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = &text[text.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn between_finds_the_first_pair() {
        assert_eq!(between("a 'x' b 'y'", "'", "'"), Some("x"));
        assert_eq!(between("a 'x", "'", "'"), None);
    }
}
