//! `lifeboat.toml`: serde types, built-in defaults, validation with file, line and key in errors.
//! (interface stub: being implemented)

use std::path::{Path, PathBuf};

/// The whole configuration, after defaults are applied and validation passed.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Owner of the data on the volume (`qwe`); `None` when neither config nor card says.
    pub user: Option<String>,
    /// The user's uid as the NixOS config declares it.
    pub uid: Option<u32>,
    /// `[[volume]]` tables; empty when none is configured (discovery is used then).
    pub volumes: Vec<VolumeConfig>,
    pub nix_store: NixStoreConfig,
    pub config_repo: ConfigRepoConfig,
    pub inspect: InspectConfig,
    pub discovery: DiscoveryConfig,
    pub commands: CommandsConfig,
    pub state: StateConfig,
    pub docker: Option<DockerConfig>,
    pub backup: Option<BackupConfig>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VolumeConfig {
    pub device: PathBuf,
    pub mount: PathBuf,
    pub fs_type: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NixStoreConfig {
    /// Explicit `source`; see [`Config::nix_store_source`] for the derived default.
    pub source: Option<PathBuf>,
    pub target: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConfigRepoConfig {
    pub path: PathBuf,
    pub url: Option<String>,
    pub branch: String,
    pub flake_host: Option<String>,
    pub ssh_key: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InspectConfig {
    pub mountpoint: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveryConfig {
    pub by_id_dir: PathBuf,
    pub pattern: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CommandsConfig {
    pub nixos_rebuild: Vec<String>,
    pub nixos_generate_config: Vec<String>,
    pub nix: Vec<String>,
    pub reboot: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StateConfig {
    pub dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DockerConfig {
    pub data_root: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BackupConfig {
    pub rsync_target: String,
}

/// A config file that could not be read, parsed or validated.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl Default for Config {
    fn default() -> Self {
        todo!()
    }
}

impl Config {
    /// Parse and validate `text` as the contents of `file`.
    pub fn parse(_text: &str, _file: &Path) -> Result<Config, ConfigError> {
        todo!()
    }
    /// Read `file` and [`Config::parse`] it.
    pub fn load(_file: &Path) -> Result<Config, ConfigError> {
        todo!()
    }
    /// `explicit` when given (must exist); else `/etc/lifeboat.toml` when it exists; else defaults.
    /// Returns the file that was used, if any.
    pub fn locate_and_load(
        _explicit: Option<&Path>,
    ) -> Result<(Config, Option<PathBuf>), ConfigError> {
        todo!()
    }
    /// Does a name in `by_id_dir` match `[discovery].pattern`?
    pub fn discovery_matches(&self, _file_name: &str) -> bool {
        todo!()
    }
    /// `[nix_store].source`, or `<first volume mount or /home>/<user>/nix` when only the user is known.
    pub fn nix_store_source(&self) -> Option<PathBuf> {
        todo!()
    }
}
