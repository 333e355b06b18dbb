//! `lifeboat.toml`: built-in defaults and strict validation, so a bad file is caught before any
//! step runs, with file, line and key in the error.
//!
//! The text is parsed into `toml`'s spanned document tree ([`DeTable`]) and read by hand: that
//! gives every error the dotted key path (`volume[1].device`) and the line of the value at fault,
//! which a plain `serde` derive cannot.

use std::fmt::Display;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The whole configuration, after defaults are applied and validation passed.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Owner of the data on the volume (`qwe`); `None` when neither config nor card says.
    pub user: Option<String>,
    /// The user's uid as the NixOS config declares it.
    pub uid: Option<u32>,
    /// `[[volume]]` tables; empty when none is configured (discovery is used then).
    pub volumes: Vec<VolumeConfig>,
    /// Where the Nix store lives on the volume and where it is bind-mounted.
    pub nix_store: NixStoreConfig,
    /// The git repository holding the NixOS flake.
    pub config_repo: ConfigRepoConfig,
    /// Read-only inspection of a volume.
    pub inspect: InspectConfig,
    /// How volumes are found when none is configured.
    pub discovery: DiscoveryConfig,
    /// Programs lifeboat runs, swappable for tests and unusual hosts.
    pub commands: CommandsConfig,
    /// Where the journal and transcripts are kept.
    pub state: StateConfig,
    /// Docker's data on the volume, when the host runs Docker.
    pub docker: Option<DockerConfig>,
    /// The off-site backup, when there is one.
    pub backup: Option<BackupConfig>,
    /// The machine's root disk: what lifeboat carries from it and what may be lost.
    pub host: HostConfig,
    /// Where `predestroy --refresh` writes its verdict for node_exporter, when anywhere.
    pub metrics: Option<MetricsConfig>,
}

/// Readiness metrics for node_exporter's textfile collector.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    /// The collector's directory (`--collector.textfile.directory`).
    pub dir: PathBuf,
}

/// One persistent block volume and where it belongs.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeConfig {
    /// Stable device path, such as `/dev/disk/by-id/scsi-0HC_Volume_103912881`.
    pub device: PathBuf,
    /// Where the running system mounts it, such as `/home`.
    pub mount: PathBuf,
    /// The filesystem it must already carry; anything else is refused.
    pub fs_type: String,
}

/// The Nix store kept on the volume and bind-mounted over `/nix`.
#[derive(Debug, Clone, PartialEq)]
pub struct NixStoreConfig {
    /// Explicit `source`; see [`Config::nix_store_source`] for the derived default.
    pub source: Option<PathBuf>,
    /// Where the store is bind-mounted.
    pub target: PathBuf,
}

/// The flake repository that rebuilds the system.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigRepoConfig {
    /// Where the repository is checked out.
    pub path: PathBuf,
    /// The remote it is pushed to and cloned from.
    pub url: Option<String>,
    /// The branch that must be pushed and is cloned.
    pub branch: String,
    /// The `nixosConfigurations` attribute to build.
    pub flake_host: Option<String>,
    /// Key for the remote, relative to the volume root so it works from the inspection mount.
    pub ssh_key: Option<PathBuf>,
}

impl ConfigRepoConfig {
    /// The host to build: `flake_host`, else this machine's hostname (as nixos-rebuild does).
    pub fn host(&self) -> String {
        self.flake_host
            .clone()
            .unwrap_or_else(crate::exec::host::hostname)
    }
}

/// Read-only inspection of a volume.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectConfig {
    /// Where a volume is mounted read-only for inspection.
    pub mountpoint: PathBuf,
}

/// How volumes are found on a fresh VPS.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveryConfig {
    /// The directory of stable device names.
    pub by_id_dir: PathBuf,
    /// A glob over file names in `by_id_dir`.
    pub pattern: String,
    /// Where this machine's device names are: a `fileSystems` device `/dev/X` of the new
    /// system is looked for at `<dev_dir>/X`.
    pub dev_dir: PathBuf,
}

impl DiscoveryConfig {
    /// Where `device` (a path the new system names) is on this machine: under `dev_dir`
    /// when it is in `/dev`, else itself.
    pub fn on_this_machine(&self, device: &Path) -> PathBuf {
        match device.strip_prefix("/dev") {
            Ok(rest) => self.dev_dir.join(rest),
            Err(_) => device.to_path_buf(),
        }
    }
}

/// Argv prefixes of the programs lifeboat runs.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandsConfig {
    /// Builds the new system and installs it to boot (recover never switches).
    pub nixos_rebuild: Vec<String>,
    /// Writes the new VPS's hardware configuration.
    pub nixos_generate_config: Vec<String>,
    /// Evaluates, builds and copies store paths.
    pub nix: Vec<String>,
    /// The final reboot.
    pub reboot: Vec<String>,
}

/// Where the Nix store lives on the volumes.
#[derive(Debug, Clone, PartialEq)]
pub enum StorePlace<'a> {
    /// `[nix_store].target` is a bind of the directory `inside` of `volume` (`qwe/nix`).
    Bind {
        volume: &'a VolumeConfig,
        inside: PathBuf,
    },
    /// `volume` is mounted at `[nix_store].target` itself (the seed's "Multiple Volumes").
    OwnVolume { volume: &'a VolumeConfig },
}

impl StorePlace<'_> {
    /// The volume that holds the store.
    pub fn volume(&self) -> &VolumeConfig {
        match self {
            StorePlace::Bind { volume, .. } | StorePlace::OwnVolume { volume } => volume,
        }
    }

    /// Where the store's directory is on the running system (`/home/qwe/nix`, or the store
    /// volume's mount).
    pub fn system_dir(&self) -> PathBuf {
        self.nix_dir(&self.volume().mount)
    }

    /// Where the store's directory (what becomes `/nix`) is inside the volume mounted at `root`.
    pub fn nix_dir(&self, root: &Path) -> PathBuf {
        match self {
            StorePlace::Bind { inside, .. } => root.join(inside),
            StorePlace::OwnVolume { .. } => root.to_path_buf(),
        }
    }
}

/// The root disk, which dies with the VPS.
#[derive(Debug, Clone, PartialEq)]
pub struct HostConfig {
    /// The machine's root directory: `/` (tests point it at a fake root). The SSH host keys,
    /// `/var/lib/nixos` and `/etc/shadow` are read below it.
    pub root: PathBuf,
    /// Absolute paths on the root disk lifeboat copies onto the volume and puts back
    /// (`/etc/machine-id` only when listed: two live machines must not share it).
    pub carry: Vec<PathBuf>,
    /// Absolute paths on the root disk whose loss is accepted.
    pub accept: Vec<PathBuf>,
}

/// Lifeboat's own state on the root disk.
#[derive(Debug, Clone, PartialEq)]
pub struct StateConfig {
    /// Journal and transcripts.
    pub dir: PathBuf,
}

/// Docker, whose data must live on the volume to survive.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerConfig {
    /// Docker's `data-root`.
    pub data_root: PathBuf,
}

/// The off-site backup whose freshness is checked before destroy.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupConfig {
    /// An rsync destination such as `backup-server:/backups/qwe/`.
    pub rsync_target: String,
}

/// A config file that could not be read, parsed or validated.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    /// The file read, or the one that would have been.
    pub file: PathBuf,
    /// 1-based line of the value at fault; `None` when the file could not be read.
    pub line: Option<usize>,
    /// Dotted key path such as `volume[1].device`; `None` for read and syntax errors.
    pub key: Option<String>,
    /// What was found and what was expected; starts with the key when there is one.
    pub message: String,
}

/// The config file used when `--config` is not given, if it exists.
const DEFAULT_FILE: &str = "/etc/lifeboat.toml";

const ROOT_KEYS: &[&str] = &[
    "user",
    "uid",
    "volume",
    "nix_store",
    "config_repo",
    "inspect",
    "discovery",
    "commands",
    "state",
    "docker",
    "backup",
    "host",
    "metrics",
];
const VOLUME_KEYS: &[&str] = &["device", "mount", "fs_type"];
const NIX_STORE_KEYS: &[&str] = &["source", "target"];
const CONFIG_REPO_KEYS: &[&str] = &["path", "url", "branch", "flake_host", "ssh_key"];
const INSPECT_KEYS: &[&str] = &["mountpoint"];
const DISCOVERY_KEYS: &[&str] = &["by_id_dir", "pattern", "dev_dir"];
const COMMANDS_KEYS: &[&str] = &["nixos_rebuild", "nixos_generate_config", "nix", "reboot"];
const STATE_KEYS: &[&str] = &["dir"];
const DOCKER_KEYS: &[&str] = &["data_root"];
const BACKUP_KEYS: &[&str] = &["rsync_target"];
const HOST_KEYS: &[&str] = &["root", "carry", "accept"];
const METRICS_KEYS: &[&str] = &["dir"];

impl Default for Config {
    fn default() -> Self {
        let argv = |words: &[&str]| words.iter().map(std::string::ToString::to_string).collect();
        Config {
            user: None,
            uid: None,
            volumes: Vec::new(),
            nix_store: NixStoreConfig {
                source: None,
                target: "/nix".into(),
            },
            config_repo: ConfigRepoConfig {
                path: "/etc/nixos".into(),
                url: None,
                branch: "main".into(),
                flake_host: None,
                ssh_key: None,
            },
            inspect: InspectConfig {
                mountpoint: "/mnt/data".into(),
            },
            discovery: DiscoveryConfig {
                by_id_dir: "/dev/disk/by-id".into(),
                pattern: "scsi-0HC_Volume_*".into(),
                dev_dir: "/dev".into(),
            },
            commands: CommandsConfig {
                nixos_rebuild: argv(&["nixos-rebuild"]),
                nixos_generate_config: argv(&["nixos-generate-config"]),
                nix: argv(&["nix"]),
                reboot: argv(&["systemctl", "reboot"]),
            },
            state: StateConfig {
                dir: "/var/lib/lifeboat".into(),
            },
            docker: None,
            backup: None,
            host: HostConfig {
                root: "/".into(),
                carry: Vec::new(),
                accept: Vec::new(),
            },
            metrics: None,
        }
    }
}

impl Config {
    /// Parse and validate `text` as the contents of `file`.
    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let source = Source { file, text };
        let document = DeTable::parse(text).map_err(|e| source.syntax_error(&e))?;
        let names = (String::new(), "at the top level".to_owned());
        let root = Table::new(&source, document.get_ref(), names, 0..0, ROOT_KEYS)?;
        read_config(&root)
    }

    /// Read `file` and [`Config::parse`] it.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
            file: file.to_path_buf(),
            line: None,
            key: None,
            message: format!("cannot read the config file: {e}"),
        })?;
        Config::parse(&text, file)
    }

    /// `explicit` when given (must exist); else `/etc/lifeboat.toml` when it exists; else defaults.
    /// Returns the file that was used, if any.
    pub fn locate_and_load(
        explicit: Option<&Path>,
    ) -> Result<(Config, Option<PathBuf>), ConfigError> {
        locate_and_load_from(explicit, Path::new(DEFAULT_FILE))
    }

    /// Does a name in `by_id_dir` match `[discovery].pattern`?
    pub fn discovery_matches(&self, file_name: &str) -> bool {
        glob::Pattern::new(&self.discovery.pattern).is_ok_and(|p| p.matches(file_name))
    }

    /// Where the Nix store lives on the volumes (the seed's two layouts): a `[[volume]]`
    /// mounted at `[nix_store].target` holds it whole; otherwise the target is a bind of
    /// [`Config::nix_store_source`] on the volume whose mount holds that. `None` when
    /// neither is known.
    pub fn store_place(&self) -> Option<StorePlace<'_>> {
        if let Some(volume) = self
            .volumes
            .iter()
            .find(|v| v.mount == self.nix_store.target)
        {
            return Some(StorePlace::OwnVolume { volume });
        }
        let source = self.nix_store_source()?;
        let volume = self.volumes.iter().find(|v| source.starts_with(&v.mount))?;
        let inside = source.strip_prefix(&volume.mount).ok()?.to_path_buf();
        Some(StorePlace::Bind { volume, inside })
    }

    /// `[nix_store].source`, or `<first volume mount or /home>/<user>/nix` when only the user is known.
    pub fn nix_store_source(&self) -> Option<PathBuf> {
        if let Some(source) = &self.nix_store.source {
            return Some(source.clone());
        }
        let user = self.user.as_ref()?;
        let root = self
            .volumes
            .first()
            .map_or(Path::new("/home"), |v| v.mount.as_path());
        Some(root.join(user).join("nix"))
    }
}

/// [`Config::locate_and_load`] with the default file as a parameter, so tests need not touch /etc.
fn locate_and_load_from(
    explicit: Option<&Path>,
    default_file: &Path,
) -> Result<(Config, Option<PathBuf>), ConfigError> {
    let file = match explicit {
        Some(file) => file,
        // An error while checking (such as a permission problem) is reported by `load`.
        None if matches!(default_file.try_exists(), Ok(false)) => {
            return Ok((Config::default(), None));
        }
        None => default_file,
    };
    Ok((Config::load(file)?, Some(file.to_path_buf())))
}

fn read_config(root: &Table) -> Result<Config, ConfigError> {
    let d = Config::default();
    let volumes = read_volumes(root)?;
    Ok(Config {
        user: root.optional("user", |f| {
            f.text_where("a user name such as \"qwe\"", user_name_problem)
        })?,
        uid: root.optional("uid", Field::uid)?,
        host: root.section("host", HOST_KEYS, d.host, |t, d| read_host(t, d, &volumes))?,
        metrics: root.optional_section("metrics", METRICS_KEYS, |t| {
            Ok(MetricsConfig {
                dir: t
                    .required(
                        "dir",
                        "dir = \"/var/lib/prometheus-node-exporter-text-files\"",
                    )?
                    .absolute_path("/var/lib/prometheus-node-exporter-text-files")?,
            })
        })?,
        volumes,
        nix_store: root.section("nix_store", NIX_STORE_KEYS, d.nix_store, read_nix_store)?,
        config_repo: root.section(
            "config_repo",
            CONFIG_REPO_KEYS,
            d.config_repo,
            read_config_repo,
        )?,
        inspect: root.section("inspect", INSPECT_KEYS, d.inspect, |t, d| {
            Ok(InspectConfig {
                mountpoint: t.path_or("mountpoint", "/mnt/data", d.mountpoint)?,
            })
        })?,
        discovery: root.section("discovery", DISCOVERY_KEYS, d.discovery, read_discovery)?,
        commands: root.section("commands", COMMANDS_KEYS, d.commands, read_commands)?,
        state: root.section("state", STATE_KEYS, d.state, |t, d| {
            Ok(StateConfig {
                dir: t.path_or("dir", "/var/lib/lifeboat", d.dir)?,
            })
        })?,
        docker: root.optional_section("docker", DOCKER_KEYS, |t| {
            Ok(DockerConfig {
                data_root: t
                    .required("data_root", "data_root = \"/home/qwe/docker\"")?
                    .absolute_path("/home/qwe/docker")?,
            })
        })?,
        backup: root.optional_section("backup", BACKUP_KEYS, |t| {
            Ok(BackupConfig {
                rsync_target: t
                    .required(
                        "rsync_target",
                        "rsync_target = \"backup-server:/backups/qwe/\"",
                    )?
                    .non_empty_text(
                        "an rsync destination such as \"backup-server:/backups/qwe/\"",
                    )?,
            })
        })?,
    })
}

fn read_volumes(root: &Table) -> Result<Vec<VolumeConfig>, ConfigError> {
    let Some(field) = root.field("volume") else {
        return Ok(Vec::new());
    };
    let mut volumes: Vec<VolumeConfig> = Vec::new();
    for table in field.tables(VOLUME_KEYS)? {
        let device = table.required("device", "device = \"/dev/disk/by-id/scsi-0HC_Volume_1\"")?;
        let mount = table.required("mount", "mount = \"/home\"")?;
        let volume = VolumeConfig {
            device: device.absolute_path("/dev/disk/by-id/scsi-0HC_Volume_1")?,
            mount: mount.absolute_path("/home")?,
            fs_type: table
                .optional("fs_type", |f| {
                    f.text_where("a filesystem type such as \"ext4\"", fs_type_problem)
                })?
                .unwrap_or_else(|| "ext4".into()),
        };
        ensure_unique(&volumes, &device, &volume.device, |v| &v.device)?;
        ensure_unique(&volumes, &mount, &volume.mount, |v| &v.mount)?;
        volumes.push(volume);
    }
    Ok(volumes)
}

/// Two volumes on one device, or on one mount point, would hide each other's data.
fn ensure_unique(
    previous: &[VolumeConfig],
    field: &Field,
    value: &Path,
    get: fn(&VolumeConfig) -> &PathBuf,
) -> Result<(), ConfigError> {
    let name = field.key.rsplit('.').next().unwrap_or(&field.key);
    match previous.iter().enumerate().find(|(_, v)| get(v) == value) {
        Some((index, other)) => Err(field.error(format!(
            "{value:?} is the {name} of volume[{index}] too ({:?}); each volume needs its own {name}",
            get(other)
        ))),
        None => Ok(()),
    }
}

fn read_nix_store(t: &Table, d: NixStoreConfig) -> Result<NixStoreConfig, ConfigError> {
    Ok(NixStoreConfig {
        source: t.optional("source", |f| f.absolute_path("/home/qwe/nix"))?,
        target: t.path_or("target", "/nix", d.target)?,
    })
}

fn read_host(
    t: &Table,
    d: HostConfig,
    volumes: &[VolumeConfig],
) -> Result<HostConfig, ConfigError> {
    let paths = |key, example| {
        t.optional(key, |f| {
            f.paths(example, |path| root_disk_path_problem(path, volumes))
        })
    };
    Ok(HostConfig {
        root: t.path_or("root", "/", d.root)?,
        carry: paths("carry", "[\"/var/lib/postgresql\"]")?.unwrap_or(d.carry),
        accept: paths("accept", "[\"/srv/cache\"]")?.unwrap_or(d.accept),
    })
}

/// Why `path` is not a place on the root disk: it must be absolute, normalised, not the
/// whole root and not on a volume (what is there survives already).
fn root_disk_path_problem(path: &Path, volumes: &[VolumeConfig]) -> Option<String> {
    if path == Path::new("/") {
        return Some("it is the whole root".into());
    }
    normal_path_problem(path).or_else(|| {
        volumes
            .iter()
            .find(|v| path.starts_with(&v.mount))
            .map(|v| format!("it is on the volume mounted at {:?} already", v.mount))
    })
}

/// Why `path` is not absolute and normalised (no `.`, `..` or empty components).
pub(crate) fn normal_path_problem(path: &Path) -> Option<String> {
    let text = path.to_string_lossy();
    if !text.starts_with('/') {
        return Some("it is not an absolute path".into());
    }
    if text.contains("//") || (text.len() > 1 && text.ends_with('/')) {
        return Some("it is not normalised (an empty component)".into());
    }
    if path
        .components()
        .any(|c| matches!(c, Component::CurDir | Component::ParentDir))
    {
        return Some("it is not normalised (\".\" or \"..\")".into());
    }
    plain_text_problem(&text)
}

/// Why `text` is not one line of printable text.
pub(crate) fn plain_text_problem(text: &str) -> Option<String> {
    text.chars()
        .any(char::is_control)
        .then(|| "it holds a control character".to_string())
}

fn read_config_repo(t: &Table, d: ConfigRepoConfig) -> Result<ConfigRepoConfig, ConfigError> {
    Ok(ConfigRepoConfig {
        path: t.path_or("path", "/etc/nixos", d.path)?,
        url: t.optional("url", |f| {
            f.non_empty_text("a git remote such as \"git@github.com:qwe/nixos-config.git\"")
        })?,
        branch: t
            .optional("branch", |f| {
                f.text_where("a git branch name such as \"main\"", branch_problem)
            })?
            .unwrap_or(d.branch),
        flake_host: t.optional("flake_host", |f| {
            f.non_empty_text("a nixosConfigurations name such as \"devserver\"")
        })?,
        ssh_key: t
            .optional("ssh_key", |f| {
                f.text_where(
                    "a path relative to the volume root such as \"qwe/.ssh/id_ed25519\"",
                    ssh_key_problem,
                )
            })?
            .map(PathBuf::from),
    })
}

fn read_discovery(t: &Table, d: DiscoveryConfig) -> Result<DiscoveryConfig, ConfigError> {
    Ok(DiscoveryConfig {
        by_id_dir: t.path_or("by_id_dir", "/dev/disk/by-id", d.by_id_dir)?,
        pattern: t
            .optional("pattern", |f| {
                f.text_where(
                    "a glob over one file name such as \"scsi-0HC_Volume_*\"",
                    pattern_problem,
                )
            })?
            .unwrap_or(d.pattern),
        dev_dir: t.path_or("dev_dir", "/dev", d.dev_dir)?,
    })
}

fn read_commands(t: &Table, d: CommandsConfig) -> Result<CommandsConfig, ConfigError> {
    let argv = |key, default| Ok(t.optional(key, Field::argv)?.unwrap_or(default));
    Ok(CommandsConfig {
        nixos_rebuild: argv("nixos_rebuild", d.nixos_rebuild)?,
        nixos_generate_config: argv("nixos_generate_config", d.nixos_generate_config)?,
        nix: argv("nix", d.nix)?,
        reboot: argv("reboot", d.reboot)?,
    })
}

/// Why `name` is not a user name NixOS accepts (`[a-z_][a-z0-9_-]*`, at most 32 characters).
pub(crate) fn user_name_problem(name: &str) -> Option<String> {
    let mut chars = name.chars();
    match chars.next() {
        None => Some("it is empty".into()),
        Some(c) if !(c.is_ascii_lowercase() || c == '_') => {
            Some("it must start with a lower-case letter or \"_\"".into())
        }
        _ if name.len() > 32 => Some("it is longer than 32 characters".into()),
        _ => chars
            .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'))
            .map(|c| format!("{c:?} is not allowed: use a-z, 0-9, \"_\" and \"-\"")),
    }
}

/// Why `fs_type` is not a lower-case filesystem type name such as `ext4`.
pub(crate) fn fs_type_problem(fs_type: &str) -> Option<String> {
    match fs_type.chars().next() {
        None => Some("it is empty".into()),
        Some(c) if !c.is_ascii_lowercase() => Some("it must start with a lower-case letter".into()),
        _ => fs_type
            .chars()
            .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .map(|c| format!("{c:?} is not allowed: use a-z, 0-9 and \"_\"")),
    }
}

/// Why `branch` is not a plausible git branch name (the common rules of `git check-ref-format`).
pub(crate) fn branch_problem(branch: &str) -> Option<String> {
    let problem = if branch.is_empty() {
        "it is empty"
    } else if branch.starts_with('-') {
        "it starts with \"-\""
    } else if branch.contains("..") {
        "it contains \"..\""
    } else if branch.contains("@{") {
        "it contains \"@{\""
    } else if branch.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "it contains whitespace or a control character"
    } else if branch.contains(['~', '^', ':', '?', '*', '[', '\\']) {
        "it contains one of ~ ^ : ? * [ \\"
    } else if branch.starts_with('/') || branch.ends_with('/') || branch.contains("//") {
        "it has an empty path component"
    } else if branch.ends_with('.') || branch.ends_with(".lock") {
        "it ends with \".\" or \".lock\""
    } else {
        return None;
    };
    Some(problem.into())
}

/// Why `key` cannot be a key file inside the volume: it must be relative and stay inside.
fn ssh_key_problem(key: &str) -> Option<String> {
    let path = Path::new(key);
    if key.is_empty() {
        Some("it is empty".into())
    } else if path.is_absolute() {
        Some("it is absolute: write it without the volume's mount point".into())
    } else if path.components().any(|c| c == Component::ParentDir) {
        Some("it contains \"..\"".into())
    } else {
        None
    }
}

/// Why `pattern` cannot select device names in `by_id_dir`.
fn pattern_problem(pattern: &str) -> Option<String> {
    if pattern.is_empty() {
        Some("it is empty".into())
    } else if pattern.contains('/') {
        Some("it contains \"/\": it matches a file name, the directory is `by_id_dir`".into())
    } else {
        glob::Pattern::new(pattern)
            .err()
            .map(|e| format!("not a valid glob: {} at character {}", e.msg, e.pos))
    }
}

/// The text being read: turns byte offsets into line numbers and builds errors.
struct Source<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    /// The 1-based line holding byte `offset`.
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn error(&self, span: Range<usize>, key: &str, message: impl Display) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            line: Some(self.line(span.start)),
            key: Some(key.to_owned()),
            message: format!("{key}: {message}"),
        }
    }

    fn syntax_error(&self, error: &toml::de::Error) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            line: error.span().map(|span| self.line(span.start)),
            key: None,
            message: format!("not valid TOML: {}", error.message()),
        }
    }
}

/// A table being read; knows its dotted path so that every error names the full key.
struct Table<'a, 'i> {
    source: &'a Source<'a>,
    map: &'a DeTable<'i>,
    /// Dotted path of the table itself; empty for the top level.
    path: String,
    /// How messages name the table: `at the top level`, `in [inspect]`.
    title: String,
    span: Range<usize>,
}

impl<'a, 'i> Table<'a, 'i> {
    /// Wrap `map`, refusing any key not in `allowed` (the first one in the file is reported).
    fn new(
        source: &'a Source<'a>,
        map: &'a DeTable<'i>,
        (path, title): (String, String),
        span: Range<usize>,
        allowed: &[&str],
    ) -> Result<Self, ConfigError> {
        let table = Table {
            source,
            map,
            path,
            title,
            span,
        };
        let unknown = map
            .keys()
            .filter(|k| !allowed.contains(&k.get_ref().as_ref()))
            .min_by_key(|k| k.span().start);
        match unknown {
            Some(key) => Err(source.error(
                key.span(),
                &table.key_path(key.get_ref()),
                format!(
                    "unknown key {:?} {}; the valid keys are: {}",
                    key.get_ref(),
                    table.title,
                    allowed.join(", ")
                ),
            )),
            None => Ok(table),
        }
    }

    fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn field(&self, key: &str) -> Option<Field<'a, 'i>> {
        self.map.get(key).map(|value| Field {
            source: self.source,
            value,
            key: self.key_path(key),
        })
    }

    /// A key the table cannot do without; a missing one is reported at the table's header.
    fn required(&self, key: &str, example: &str) -> Result<Field<'a, 'i>, ConfigError> {
        self.field(key).ok_or_else(|| {
            self.source.error(
                self.span.clone(),
                &self.key_path(key),
                format!(
                    "missing key {key:?} {}, add a line such as {example}",
                    self.title
                ),
            )
        })
    }

    fn optional<T>(
        &self,
        key: &str,
        read: impl FnOnce(&Field<'a, 'i>) -> Result<T, ConfigError>,
    ) -> Result<Option<T>, ConfigError> {
        self.field(key).map(|f| read(&f)).transpose()
    }

    /// An absolute path, `default` when absent.
    fn path_or(&self, key: &str, example: &str, default: PathBuf) -> Result<PathBuf, ConfigError> {
        Ok(self
            .optional(key, |f| f.absolute_path(example))?
            .unwrap_or(default))
    }

    /// A sub-table whose absent keys keep the values of `default`.
    fn section<T>(
        &self,
        key: &str,
        allowed: &[&str],
        default: T,
        read: impl FnOnce(&Table, T) -> Result<T, ConfigError>,
    ) -> Result<T, ConfigError> {
        match self.field(key) {
            Some(field) => read(&field.table(allowed)?, default),
            None => Ok(default),
        }
    }

    /// A sub-table that is `None` when absent.
    fn optional_section<T>(
        &self,
        key: &str,
        allowed: &[&str],
        read: impl FnOnce(&Table) -> Result<T, ConfigError>,
    ) -> Result<Option<T>, ConfigError> {
        self.optional(key, |f| read(&f.table(allowed)?))
    }
}

/// One value with its key path, read as the type its key needs.
struct Field<'a, 'i> {
    source: &'a Source<'a>,
    value: &'a Spanned<DeValue<'i>>,
    key: String,
}

impl<'a, 'i> Field<'a, 'i> {
    fn error(&self, message: impl Display) -> ConfigError {
        self.source.error(self.value.span(), &self.key, message)
    }

    fn wrong_type(&self, expected: &str) -> ConfigError {
        self.error(format!(
            "expected {expected}, found {}",
            describe(self.value.get_ref())
        ))
    }

    fn text(&self) -> Result<&'a str, ConfigError> {
        match self.value.get_ref() {
            DeValue::String(s) => Ok(s.as_ref()),
            _ => Err(self.wrong_type("a string")),
        }
    }

    /// A string that `problem` finds nothing wrong with.
    fn text_where(
        &self,
        expected: &str,
        problem: impl Fn(&str) -> Option<String>,
    ) -> Result<String, ConfigError> {
        let text = self.text()?;
        match problem(text) {
            Some(problem) => {
                Err(self.error(format!("expected {expected}, found {text:?} ({problem})")))
            }
            None => Ok(text.to_owned()),
        }
    }

    fn non_empty_text(&self, expected: &str) -> Result<String, ConfigError> {
        self.text_where(expected, |t| t.is_empty().then(|| "it is empty".into()))
    }

    fn absolute_path(&self, example: &str) -> Result<PathBuf, ConfigError> {
        let expected = format!("an absolute path such as {example:?}");
        let path = self.text_where(&expected, |t| {
            (!t.starts_with('/')).then(|| "it does not start with \"/\"".into())
        })?;
        Ok(path.into())
    }

    fn uid(&self) -> Result<u32, ConfigError> {
        let DeValue::Integer(number) = self.value.get_ref() else {
            return Err(self.wrong_type("an integer uid such as 1000"));
        };
        i128::from_str_radix(number.as_str(), number.radix())
            .ok()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|&uid| uid != u32::MAX)
            .ok_or_else(|| {
                self.error(format!(
                    "expected a uid from 0 to 4294967294, found {number}"
                ))
            })
    }

    /// The elements of an array (`expected` says what it should have been otherwise).
    fn items(&self, expected: &str) -> Result<&'a [Spanned<DeValue<'i>>], ConfigError> {
        match self.value.get_ref() {
            DeValue::Array(items) => Ok(items),
            _ => Err(self.wrong_type(expected)),
        }
    }

    /// An array of paths, each one that `problem` finds nothing wrong with.
    fn paths(
        &self,
        example: &str,
        problem: impl Fn(&Path) -> Option<String>,
    ) -> Result<Vec<PathBuf>, ConfigError> {
        let expected = format!("an array of absolute paths such as {example}");
        self.items(&expected)?
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let fail = |message: String| {
                    self.source.error(
                        item.span(),
                        &self.key,
                        format!("element {index}: {message}"),
                    )
                };
                match item.get_ref() {
                    DeValue::String(text) => match problem(Path::new(text.as_ref())) {
                        Some(why) => Err(fail(format!("{text:?} cannot be used: {why}"))),
                        None => Ok(PathBuf::from(text.as_ref())),
                    },
                    other => Err(fail(format!(
                        "expected a string, found {}",
                        describe(other)
                    ))),
                }
            })
            .collect()
    }

    /// A command: a non-empty array of non-empty strings.
    fn argv(&self) -> Result<Vec<String>, ConfigError> {
        const EXPECTED: &str = "a non-empty array of strings such as [\"systemctl\", \"reboot\"]";
        let items = self.items(EXPECTED)?;
        if items.is_empty() {
            return Err(self.error(format!("expected {EXPECTED}, found an empty array")));
        }
        items
            .iter()
            .enumerate()
            .map(|(index, item)| match item.get_ref() {
                DeValue::String(s) if !s.is_empty() => Ok(s.to_string()),
                other => Err(self.source.error(
                    item.span(),
                    &self.key,
                    format!(
                        "element {index}: expected a non-empty string, found {}",
                        describe(other)
                    ),
                )),
            })
            .collect()
    }

    /// A table such as `[inspect]` or `inspect = { … }`.
    fn table(&self, allowed: &[&str]) -> Result<Table<'a, 'i>, ConfigError> {
        match self.value.get_ref() {
            DeValue::Table(map) => {
                let names = (self.key.clone(), format!("in [{}]", self.key));
                Table::new(self.source, map, names, self.value.span(), allowed)
            }
            _ => Err(self.wrong_type(&format!("a table [{}]", self.key))),
        }
    }

    /// An array of tables such as `[[volume]]`; each is named `volume[0]`, `volume[1]`, ….
    fn tables(&self, allowed: &[&str]) -> Result<Vec<Table<'a, 'i>>, ConfigError> {
        let expected = format!("an array of tables written as [[{}]]", self.key);
        self.items(&expected)?
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let key = format!("{}[{index}]", self.key);
                match item.get_ref() {
                    DeValue::Table(map) => {
                        let names = (key.clone(), format!("in [[{}]] {key}", self.key));
                        Table::new(self.source, map, names, item.span(), allowed)
                    }
                    other => Err(self.source.error(
                        item.span(),
                        &key,
                        format!("expected {expected}, found {}", describe(other)),
                    )),
                }
            })
            .collect()
    }
}

/// A value as a message shows it: its type, and the value itself when it is short.
fn describe(value: &DeValue) -> String {
    match value {
        DeValue::String(s) => format!("the string {s:?}"),
        DeValue::Integer(n) => format!("the integer {n}"),
        DeValue::Float(x) => format!("the float {x}"),
        DeValue::Boolean(b) => format!("the boolean {b}"),
        DeValue::Datetime(d) => format!("the datetime {d}"),
        DeValue::Array(_) => "an array".into(),
        DeValue::Table(_) => "a table".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The config example of lifeboat's design (`assets/lifeboat.toml` explains each key),
    /// verbatim: it must keep loading.
    const DESIGN_EXAMPLE: &str = r#"user = "qwe"                 # owner of the data on the volume
uid = 1000

[[volume]]                   # one or more (the seed's "multiple volumes" layout too)
device = "/dev/disk/by-id/scsi-0HC_Volume_103912881"
mount = "/home"
fs_type = "ext4"

[nix_store]
source = "/home/qwe/nix"     # bind-mounted ...
target = "/nix"              # ... here

[config_repo]
path = "/etc/nixos"
url = "git@github.com:qwe/nixos-config.git"
branch = "main"
flake_host = "devserver"
ssh_key = "qwe/.ssh/id_ed25519"   # relative to the volume root: usable from the inspection mount on a fresh VPS

[inspect]
mountpoint = "/mnt/data"

[discovery]
by_id_dir = "/dev/disk/by-id"
pattern = "scsi-0HC_Volume_*"

[commands]                   # argv prefixes, so a test or an unusual host can swap them
nixos_rebuild = ["nixos-rebuild"]
nixos_generate_config = ["nixos-generate-config"]
nix = ["nix"]
reboot = ["systemctl", "reboot"]

[state]
dir = "/var/lib/lifeboat"    # journal and transcripts

[docker]                     # optional
data_root = "/home/qwe/docker"

[backup]                     # optional
rsync_target = "backup-server:/backups/qwe/"
"#;

    const ASSET: &str = include_str!("../assets/lifeboat.toml");

    fn parse(text: &str) -> Config {
        match Config::parse(text, Path::new("/etc/lifeboat.toml")) {
            Ok(config) => config,
            Err(e) => panic!("{e}"),
        }
    }

    /// Parse `text`, which must be rejected, and return the error.
    fn reject(text: &str) -> ConfigError {
        match Config::parse(text, Path::new("/etc/lifeboat.toml")) {
            Ok(config) => panic!("accepted {text:?} as {config:?}"),
            Err(e) => e,
        }
    }

    /// Assert that `text` is rejected at `key` on `line`, with a message containing `fragments`.
    fn assert_rejected(text: &str, key: &str, line: usize, fragments: &[&str]) {
        let e = reject(text);
        assert_eq!(
            (e.key.as_deref(), e.line),
            (Some(key), Some(line)),
            "for {text:?}: {e}"
        );
        for fragment in fragments {
            assert!(e.message.contains(fragment), "{fragment:?} not in {e}");
        }
    }

    #[test]
    fn the_root_disks_paths_to_carry_and_to_accept_are_read_strictly() {
        let volume = "[[volume]]\ndevice = \"/dev/vdb\"\nmount = \"/home\"\n";
        let cfg = parse(&format!(
            "{volume}[host]\nroot = \"/srv/fake-root\"\ncarry = [\"/var/lib/postgresql\", \"/etc/machine-id\"]\naccept = [\"/srv/cache\"]\n"
        ));
        assert_eq!(cfg.host.root, Path::new("/srv/fake-root"));
        assert_eq!(
            cfg.host.carry,
            [
                Path::new("/var/lib/postgresql"),
                Path::new("/etc/machine-id")
            ]
        );
        assert_eq!(cfg.host.accept, [Path::new("/srv/cache")]);
        assert_eq!(parse("").host, Config::default().host);
        for (carry, why) in [
            (
                "\"/home/qwe/db\"",
                "on the volume mounted at \"/home\" already",
            ),
            ("\"var/lib/x\"", "not an absolute path"),
            ("\"/\"", "the whole root"),
            ("\"/var/lib/../x\"", "not normalised"),
            ("1", "expected a string"),
        ] {
            assert_rejected(
                &format!("{volume}[host]\ncarry = [\"/srv\", {carry}]\n"),
                "host.carry",
                5,
                &["element 1", why],
            );
        }
    }

    fn design_config() -> Config {
        Config {
            user: Some("qwe".into()),
            uid: Some(1000),
            volumes: vec![VolumeConfig {
                device: "/dev/disk/by-id/scsi-0HC_Volume_103912881".into(),
                mount: "/home".into(),
                fs_type: "ext4".into(),
            }],
            nix_store: NixStoreConfig {
                source: Some("/home/qwe/nix".into()),
                target: "/nix".into(),
            },
            config_repo: ConfigRepoConfig {
                path: "/etc/nixos".into(),
                url: Some("git@github.com:qwe/nixos-config.git".into()),
                branch: "main".into(),
                flake_host: Some("devserver".into()),
                ssh_key: Some("qwe/.ssh/id_ed25519".into()),
            },
            docker: Some(DockerConfig {
                data_root: "/home/qwe/docker".into(),
            }),
            backup: Some(BackupConfig {
                rsync_target: "backup-server:/backups/qwe/".into(),
            }),
            ..Config::default()
        }
    }

    #[test]
    fn defaults() {
        let d = Config::default();
        assert_eq!(parse(""), d);
        assert_eq!(parse("# nothing but a comment\n"), d);
        assert_eq!((d.user.as_deref(), d.uid), (None, None));
        assert!(d.volumes.is_empty());
        assert_eq!(d.nix_store.source, None);
        assert_eq!(d.nix_store.target, Path::new("/nix"));
        assert_eq!(d.config_repo.path, Path::new("/etc/nixos"));
        assert_eq!(d.config_repo.branch, "main");
        assert_eq!(
            (
                &d.config_repo.url,
                &d.config_repo.flake_host,
                &d.config_repo.ssh_key
            ),
            (&None, &None, &None)
        );
        assert_eq!(d.inspect.mountpoint, Path::new("/mnt/data"));
        assert_eq!(d.discovery.by_id_dir, Path::new("/dev/disk/by-id"));
        assert_eq!(d.discovery.pattern, "scsi-0HC_Volume_*");
        assert_eq!(d.commands.nixos_rebuild, ["nixos-rebuild"]);
        assert_eq!(d.commands.nixos_generate_config, ["nixos-generate-config"]);
        assert_eq!(d.commands.nix, ["nix"]);
        assert_eq!(d.commands.reboot, ["systemctl", "reboot"]);
        assert_eq!(d.state.dir, Path::new("/var/lib/lifeboat"));
        assert_eq!((d.docker, d.backup), (None, None));
    }

    #[test]
    fn design_example_parses_to_its_values() {
        assert_eq!(parse(DESIGN_EXAMPLE), design_config());
    }

    #[test]
    fn partial_tables_keep_defaults_for_missing_keys() {
        let config = parse(
            "[config_repo]\nurl = \"file:///srv/nixos.git\"\n\
             [commands]\nreboot = [\"true\"]\n\
             [[volume]]\ndevice = \"/dev/loop7\"\nmount = \"/home\"\n",
        );
        let d = Config::default();
        assert_eq!(
            config.config_repo.url.as_deref(),
            Some("file:///srv/nixos.git")
        );
        assert_eq!(config.config_repo.branch, d.config_repo.branch);
        assert_eq!(config.config_repo.path, d.config_repo.path);
        assert_eq!(config.commands.reboot, ["true"]);
        assert_eq!(config.commands.nix, d.commands.nix);
        assert_eq!(config.volumes[0].fs_type, "ext4");
        assert_eq!(config.nix_store, d.nix_store);
    }

    #[test]
    fn inline_tables_and_dotted_keys_are_the_same_tables() {
        let config = parse(
            "inspect = { mountpoint = \"/mnt/x\" }\nstate.dir = \"/tmp/state\"\n\
             volume = [{ device = \"/dev/vdb\", mount = \"/data\", fs_type = \"xfs\" }]\n",
        );
        assert_eq!(config.inspect.mountpoint, Path::new("/mnt/x"));
        assert_eq!(config.state.dir, Path::new("/tmp/state"));
        assert_eq!(config.volumes[0].fs_type, "xfs");
        assert_eq!(config.volumes[0].mount, Path::new("/data"));
    }

    #[test]
    fn asset_is_the_design_example() {
        // With the readiness metrics, which came after the design.
        let expected = Config {
            metrics: Some(MetricsConfig {
                dir: "/var/lib/prometheus-node-exporter-text-files".into(),
            }),
            ..design_config()
        };
        assert_eq!(parse(ASSET), expected);
    }

    /// Every dotted key in `table`, array-of-table elements counted as their array's key.
    fn keys_of(table: &DeTable, prefix: &str, out: &mut Vec<String>) {
        for (key, value) in table {
            let path = format!("{prefix}{}", key.get_ref());
            match value.get_ref() {
                DeValue::Table(inner) => keys_of(inner, &format!("{path}."), out),
                DeValue::Array(items)
                    if !items.is_empty() && items.iter().all(|i| i.get_ref().is_table()) =>
                {
                    for item in items {
                        if let DeValue::Table(inner) = item.get_ref() {
                            keys_of(inner, &format!("{path}."), out);
                        }
                    }
                }
                _ => out.push(path),
            }
        }
    }

    #[test]
    fn asset_holds_exactly_the_keys_the_loader_knows() {
        let sections: &[(&str, &[&str])] = &[
            ("volume", VOLUME_KEYS),
            ("nix_store", NIX_STORE_KEYS),
            ("config_repo", CONFIG_REPO_KEYS),
            ("inspect", INSPECT_KEYS),
            ("discovery", DISCOVERY_KEYS),
            ("commands", COMMANDS_KEYS),
            ("state", STATE_KEYS),
            ("docker", DOCKER_KEYS),
            ("backup", BACKUP_KEYS),
            ("host", HOST_KEYS),
            ("metrics", METRICS_KEYS),
        ];
        let mut known: Vec<String> = ROOT_KEYS
            .iter()
            .filter(|k| !sections.iter().any(|(s, _)| s == *k))
            .map(std::string::ToString::to_string)
            .collect();
        for (section, keys) in sections {
            assert!(ROOT_KEYS.contains(section), "{section}");
            known.extend(keys.iter().map(|k| format!("{section}.{k}")));
        }
        let document = DeTable::parse(ASSET).unwrap();
        let mut found = Vec::new();
        keys_of(document.get_ref(), "", &mut found);
        known.sort();
        found.sort();
        assert_eq!(found, known);
    }

    #[test]
    fn asset_explains_every_key_on_its_line() {
        for line in ASSET.lines().filter(|l| l.contains(" = ")) {
            assert!(line.contains(" # "), "no comment on {line:?}");
        }
    }

    #[test]
    fn relative_paths_are_rejected_where_paths_must_be_absolute() {
        let cases = [
            (
                "[[volume]]\ndevice = \"sdb\"\nmount = \"/home\"\n",
                "volume[0].device",
                2,
            ),
            (
                "[[volume]]\ndevice = \"/dev/sdb\"\n\nmount = \"home\"\n",
                "volume[0].mount",
                4,
            ),
            (
                "[nix_store]\nsource = \"home/qwe/nix\"\n",
                "nix_store.source",
                2,
            ),
            ("\n[nix_store]\ntarget = \"nix\"\n", "nix_store.target", 3),
            (
                "[config_repo]\npath = \"etc/nixos\"\n",
                "config_repo.path",
                2,
            ),
            (
                "[inspect]\nmountpoint = \"mnt/data\"\n",
                "inspect.mountpoint",
                2,
            ),
            ("[discovery]\nby_id_dir = \"\"\n", "discovery.by_id_dir", 2),
            ("[state]\n# journal\ndir = \"./state\"\n", "state.dir", 3),
            ("[docker]\ndata_root = \"docker\"\n", "docker.data_root", 2),
        ];
        for (text, key, line) in cases {
            assert_rejected(text, key, line, &["expected an absolute path such as \"/"]);
        }
        assert_rejected(
            "[inspect]\nmountpoint = \"mnt/data\"\n",
            "inspect.mountpoint",
            2,
            &["expected an absolute path such as \"/mnt/data\", found \"mnt/data\""],
        );
    }

    #[test]
    fn ssh_key_must_be_relative_and_stay_inside_the_volume() {
        assert_rejected(
            "[config_repo]\nbranch = \"main\"\nssh_key = \"/home/qwe/.ssh/id_ed25519\"\n",
            "config_repo.ssh_key",
            3,
            &[
                "relative to the volume root",
                "found \"/home/qwe/.ssh/id_ed25519\"",
            ],
        );
        assert_rejected(
            "[config_repo]\nssh_key = \"qwe/../../root/.ssh/id\"\n",
            "config_repo.ssh_key",
            2,
            &["\"..\""],
        );
        assert_rejected(
            "[config_repo]\nssh_key = \"\"\n",
            "config_repo.ssh_key",
            2,
            &["empty"],
        );
        let config = parse("[config_repo]\nssh_key = \"qwe/.ssh/id..old\"\n");
        assert_eq!(config.config_repo.ssh_key, Some("qwe/.ssh/id..old".into()));
    }

    #[test]
    fn discovery_pattern_must_be_a_glob_over_one_file_name() {
        assert_rejected(
            "[discovery]\npattern = \"by-id/scsi-*\"\n",
            "discovery.pattern",
            2,
            &["found \"by-id/scsi-*\"", "\"/\""],
        );
        assert_rejected(
            "[discovery]\n\npattern = \"\"\n",
            "discovery.pattern",
            3,
            &["empty"],
        );
        assert_rejected(
            "[discovery]\npattern = \"scsi-[\"\n",
            "discovery.pattern",
            2,
            &["not a valid glob"],
        );
    }

    #[test]
    fn discovery_matches_file_names() {
        let config = Config::default();
        assert!(config.discovery_matches("scsi-0HC_Volume_103912881"));
        assert!(!config.discovery_matches("scsi-0QEMU_QEMU_HARDDISK_drive-scsi0"));
        // The default glob also matches partition links: callers must tell disks from partitions.
        assert!(config.discovery_matches("scsi-0HC_Volume_1-part1"));
        let custom = parse("[discovery]\npattern = \"loop-test-?\"\n");
        assert!(custom.discovery_matches("loop-test-1"));
        assert!(!custom.discovery_matches("loop-test-12"));
    }

    #[test]
    fn user_and_uid_are_checked() {
        assert_rejected(
            "user = \"Qwe\"\n",
            "user",
            1,
            &["found \"Qwe\"", "lower-case"],
        );
        assert_rejected("uid = 1\nuser = \"q w\"\n", "user", 2, &["' '"]);
        assert_rejected(
            &format!("user = \"{}\"\n", "a".repeat(33)),
            "user",
            1,
            &["32"],
        );
        assert_rejected("user = \"\"\n", "user", 1, &["empty"]);
        assert_rejected("\nuid = -1\n", "uid", 2, &["0 to 4294967294", "found -1"]);
        assert_rejected("uid = 4294967295\n", "uid", 1, &["found 4294967295"]);
        assert_rejected(
            "uid = 99999999999999999999999\n",
            "uid",
            1,
            &["0 to 4294967294"],
        );
        let config = parse("user = \"_svc-1\"\nuid = 4294967294\n");
        assert_eq!(
            (config.user.as_deref(), config.uid),
            (Some("_svc-1"), Some(4294967294))
        );
        assert_eq!(parse("uid = 0x3e8\n").uid, Some(1000));
    }

    #[test]
    fn wrong_types_say_what_was_expected_and_found() {
        assert_rejected(
            "uid = \"1000\"\n",
            "uid",
            1,
            &["expected an integer", "the string \"1000\""],
        );
        assert_rejected(
            "user = 1000\n",
            "user",
            1,
            &["expected a string", "the integer 1000"],
        );
        assert_rejected(
            "[commands]\nreboot = \"systemctl reboot\"\n",
            "commands.reboot",
            2,
            &[
                "expected a non-empty array of strings",
                "the string \"systemctl reboot\"",
            ],
        );
        assert_rejected(
            "inspect = \"/mnt\"\n",
            "inspect",
            1,
            &["expected a table [inspect]"],
        );
        assert_rejected(
            "\n[volume]\ndevice = \"/dev/sdb\"\n",
            "volume",
            2,
            &[
                "expected an array of tables written as [[volume]]",
                "found a table",
            ],
        );
        assert_rejected("volume = [1]\n", "volume[0]", 1, &["found the integer 1"]);
        assert_rejected(
            "[state]\ndir = true\n",
            "state.dir",
            2,
            &["found the boolean true"],
        );
    }

    #[test]
    fn commands_must_be_non_empty_arrays_of_non_empty_strings() {
        assert_rejected(
            "[commands]\nnix = []\n",
            "commands.nix",
            2,
            &["found an empty array"],
        );
        assert_rejected(
            "[commands]\nreboot = [\n  \"systemctl\",\n  \"\",\n]\n",
            "commands.reboot",
            4,
            &["element 1", "non-empty string", "the string \"\""],
        );
        assert_rejected(
            "[commands]\nnixos_rebuild = [\"sudo\", 3]\n",
            "commands.nixos_rebuild",
            2,
            &["element 1", "the integer 3"],
        );
        let config = parse("[commands]\nnixos_rebuild = [\"/tmp/bin/nixos-rebuild\", \"-v\"]\n");
        assert_eq!(
            config.commands.nixos_rebuild,
            ["/tmp/bin/nixos-rebuild", "-v"]
        );
    }

    #[test]
    fn fs_type_must_be_a_lower_case_word() {
        let volume = "[[volume]]\ndevice = \"/dev/sdb\"\nmount = \"/home\"\n";
        assert_rejected(
            &format!("{volume}fs_type = \"EXT4\"\n"),
            "volume[0].fs_type",
            4,
            &["found \"EXT4\""],
        );
        assert_rejected(
            &format!("{volume}fs_type = \"\"\n"),
            "volume[0].fs_type",
            4,
            &["empty"],
        );
        assert_rejected(
            &format!("{volume}fs_type = \"ext 4\"\n"),
            "volume[0].fs_type",
            4,
            &["' '"],
        );
    }

    #[test]
    fn volumes_must_not_share_a_mount_or_a_device() {
        let text = "[[volume]]\ndevice = \"/dev/sdb\"\nmount = \"/home\"\n\n\
                    [[volume]]\ndevice = \"/dev/sdc\"\nmount = \"/home/\"\n";
        assert_rejected(text, "volume[1].mount", 7, &["\"/home\"", "volume[0]"]);
        let text = "[[volume]]\ndevice = \"/dev/sdb\"\nmount = \"/home\"\n\n\
                    [[volume]]\ndevice = \"/dev/sdb\"\nmount = \"/srv\"\n";
        assert_rejected(text, "volume[1].device", 6, &["\"/dev/sdb\"", "volume[0]"]);
        let text = "[[volume]]\ndevice = \"/dev/sdb\"\nmount = \"/home\"\n\n\
                    [[volume]]\ndevice = \"/dev/sdc\"\nmount = \"/srv\"\n";
        assert_eq!(parse(text).volumes.len(), 2);
    }

    #[test]
    fn required_keys_are_reported_at_their_table() {
        assert_rejected(
            "[[volume]]\ndevice = \"/dev/sdb\"\nmount = \"/home\"\n\n[[volume]]\nmount = \"/srv\"\n",
            "volume[1].device",
            5,
            &["missing key \"device\"", "device = "],
        );
        assert_rejected(
            "\n\n[docker]\n",
            "docker.data_root",
            3,
            &["missing key \"data_root\""],
        );
        assert_rejected("[backup]\n", "backup.rsync_target", 1, &["rsync_target = "]);
        assert_rejected(
            "[backup]\nrsync_target = \"\"\n",
            "backup.rsync_target",
            2,
            &["empty"],
        );
    }

    #[test]
    fn branch_must_be_a_plausible_ref_name() {
        for (branch, fragment) in [
            ("my branch", "whitespace"),
            ("a..b", "\"..\""),
            ("-main", "\"-\""),
            ("", "empty"),
            ("main.lock", ".lock"),
            ("feat:x", "~ ^ :"),
        ] {
            assert_rejected(
                &format!("[config_repo]\nurl = \"file:///x\"\nbranch = {branch:?}\n"),
                "config_repo.branch",
                3,
                &[fragment],
            );
        }
        assert_eq!(
            parse("[config_repo]\nbranch = \"release/24.11\"\n")
                .config_repo
                .branch,
            "release/24.11"
        );
    }

    #[test]
    fn unknown_keys_are_named_with_the_valid_ones() {
        assert_rejected(
            "user = \"qwe\"\nusr = \"qwe\"\n",
            "usr",
            2,
            &[
                "unknown key \"usr\" at the top level",
                "user, uid, volume, nix_store",
            ],
        );
        assert_rejected(
            "[[volume]]\ndevice = \"/dev/sdb\"\nmount = \"/home\"\n\n[[volume]]\ndevice = \"/dev/sdc\"\nmount = \"/srv\"\nfstype = \"ext4\"\n",
            "volume[1].fstype",
            8,
            &[
                "unknown key \"fstype\" in [[volume]] volume[1]",
                "device, mount, fs_type",
            ],
        );
        assert_rejected(
            "[inspect]\nmountpoint = \"/mnt/data\"\nread_only = true\n",
            "inspect.read_only",
            3,
            &["in [inspect]", "valid keys are: mountpoint"],
        );
        // The first unknown key in the file is reported, not the first in sorted order.
        assert_rejected("zzz = 1\naaa = 2\n", "zzz", 1, &[]);
        assert_rejected("[nix_store.extra]\nx = 1\n", "nix_store.extra", 1, &[]);
    }

    #[test]
    fn syntax_errors_carry_their_line() {
        let e = reject("user = \"qwe\"\n\n[inspect]\nmountpoint = /mnt/data\n");
        assert_eq!((e.key, e.line), (None, Some(4)));
        assert!(e.message.starts_with("not valid TOML: "), "{}", e.message);
        let e = reject("[state]\ndir = \"/a\"\n[state]\n");
        assert_eq!(e.line, Some(3));
        let e = reject("user = \"qwe\"\nuser = \"abc\"\n");
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn display_is_file_line_message() {
        let e = reject("\n[inspect]\nmountpoint = \"mnt/data\"\n");
        assert_eq!(
            e.to_string(),
            "/etc/lifeboat.toml:3: inspect.mountpoint: expected an absolute path such as \
             \"/mnt/data\", found \"mnt/data\" (it does not start with \"/\")"
        );
    }

    #[test]
    fn a_missing_file_says_what_the_os_said() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("absent.toml");
        let e = Config::load(&file).unwrap_err();
        assert_eq!((&e.file, e.line, &e.key), (&file, None, &None));
        assert!(e.message.contains("No such file or directory"), "{e}");
        assert!(
            e.to_string().starts_with(&format!("{}: ", file.display())),
            "{e}"
        );
        let e = Config::locate_and_load(Some(&file)).unwrap_err();
        assert_eq!(e.file, file);
    }

    #[test]
    fn load_reports_the_file_it_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lifeboat.toml");
        std::fs::write(&file, "[state]\ndir = \"state\"\n").unwrap();
        let e = Config::load(&file).unwrap_err();
        assert_eq!((&e.file, e.line), (&file, Some(2)));
        std::fs::write(&file, "user = \"qwe\"\n").unwrap();
        assert_eq!(Config::load(&file).unwrap().user.as_deref(), Some("qwe"));
    }

    #[test]
    fn locate_and_load_prefers_explicit_then_default_file_then_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let default_file = dir.path().join("etc-lifeboat.toml");
        let (config, used) = locate_and_load_from(None, &default_file).unwrap();
        assert_eq!((config, used), (Config::default(), None));

        std::fs::write(&default_file, "user = \"fromdefault\"\n").unwrap();
        let (config, used) = locate_and_load_from(None, &default_file).unwrap();
        assert_eq!(config.user.as_deref(), Some("fromdefault"));
        assert_eq!(used.as_deref(), Some(default_file.as_path()));

        let explicit = dir.path().join("explicit.toml");
        std::fs::write(&explicit, "user = \"explicit\"\n").unwrap();
        let (config, used) = locate_and_load_from(Some(&explicit), &default_file).unwrap();
        assert_eq!(config.user.as_deref(), Some("explicit"));
        assert_eq!(used.as_deref(), Some(explicit.as_path()));
    }

    #[test]
    fn the_store_is_a_bind_of_a_volume_directory_or_a_volume_of_its_own() {
        let bind = parse("user = \"qwe\"\n[[volume]]\ndevice = \"/dev/sdb\"\nmount = \"/home\"\n");
        let place = bind.store_place().unwrap();
        assert_eq!(place.volume().device, Path::new("/dev/sdb"));
        assert_eq!(
            place.nix_dir(Path::new("/var/lib/lifeboat/volume")),
            Path::new("/var/lib/lifeboat/volume/qwe/nix")
        );
        let own = parse(
            "user = \"qwe\"\n[[volume]]\ndevice = \"/dev/sdb\"\nmount = \"/home\"\n\
             [[volume]]\ndevice = \"/dev/sdc\"\nmount = \"/nix\"\n",
        );
        let place = own.store_place().unwrap();
        assert!(matches!(place, StorePlace::OwnVolume { .. }));
        assert_eq!(place.volume().device, Path::new("/dev/sdc"));
        assert_eq!(
            place.nix_dir(Path::new("/var/lib/lifeboat/volume")),
            Path::new("/var/lib/lifeboat/volume")
        );
        // A source on no configured volume, or nothing known: nowhere.
        assert_eq!(
            parse("[nix_store]\nsource = \"/srv/nix\"\n").store_place(),
            None
        );
        assert_eq!(Config::default().store_place(), None);
    }

    #[test]
    fn nix_store_source_is_explicit_or_derived_from_user_and_first_volume() {
        assert_eq!(Config::default().nix_store_source(), None);
        assert_eq!(
            parse("user = \"qwe\"\n").nix_store_source(),
            Some("/home/qwe/nix".into())
        );
        assert_eq!(
            parse("user = \"qwe\"\n[[volume]]\ndevice = \"/dev/sdb\"\nmount = \"/data\"\n")
                .nix_store_source(),
            Some("/data/qwe/nix".into())
        );
        assert_eq!(
            parse("user = \"qwe\"\n[nix_store]\nsource = \"/srv/nix\"\n").nix_store_source(),
            Some("/srv/nix".into())
        );
        assert_eq!(
            parse("[nix_store]\nsource = \"/srv/nix\"\n").nix_store_source(),
            Some("/srv/nix".into())
        );
    }
}
