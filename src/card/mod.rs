//! The recovery card: `<user>/.lifeboat/recovery.toml` on the volume, written by
//! `predestroy`, read by `recover` on a fresh machine that has no config yet. It holds
//! everything needed to rebuild: where the config lives, which host to build, whose data
//! the volume holds and how it is mounted.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{Config, VolumeConfig};

pub mod sheet;
mod strict;

/// Bumped when the card changes incompatibly.
pub const FORMAT: u32 = 1;

/// Everything `recover` needs, as `predestroy` saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryCard {
    pub format: u32,
    /// RFC 3339 time of writing.
    pub written_at: String,
    pub lifeboat_version: String,
    pub hostname: String,
    /// `nixos-version` of the system that wrote the card, when known.
    pub nixos_version: Option<String>,
    pub user: String,
    pub uid: u32,
    pub repository: CardRepository,
    pub volumes: Vec<CardVolume>,
    pub nix_store: CardNixStore,
    /// The running system's closure, for a sense of what a rebuild will fetch.
    pub store: Option<CardStore>,
    /// The nonce of the persistence marker written with this card.
    pub persistence_nonce: Option<String>,
    /// What predestroy saved of the root disk (host keys, NixOS's id maps, carried paths),
    /// under `<first volume>/lifeboat-host/files/`: never the content, only what proves it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub saved: Vec<CardSaved>,
    /// The store path predestroy ran from, when it ran from a Nix store: the fresh VPS can
    /// take lifeboat from the volume's store without the network (the recovery sheet says how).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifeboat_store_path: Option<PathBuf>,
    /// The old machine's public addresses and MACs: a new server gets new ones (unless the
    /// operator keeps the Primary IPs), so recover can name a configuration that pins these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<CardNetwork>,
    /// What predestroy's rehearsal proved: this commit evaluated, on the old machine, to
    /// this system with the volume mounted in stage 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rehearsal: Option<CardRehearsal>,
}

/// The commit predestroy rehearsed the recovery with, and the system it evaluated to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardRehearsal {
    pub commit: String,
    pub host: String,
    /// The system's `drvPath`.
    pub drv_path: String,
}

/// The public side of the old machine's network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardNetwork {
    /// `address/prefix` of each public address.
    pub addresses: Vec<String>,
    /// The MACs of the interfaces that carry them.
    pub macs: Vec<String>,
}

impl CardNetwork {
    /// This machine's, as the kernel has it.
    pub fn of(facts: &crate::exec::netfacts::NetFacts) -> CardNetwork {
        let mut network = CardNetwork::default();
        for interface in &facts.interfaces {
            let public: Vec<String> = interface
                .addresses
                .iter()
                .filter(|(address, _)| crate::exec::netfacts::is_public(*address))
                .map(|(address, prefix)| format!("{address}/{prefix}"))
                .collect();
            if public.is_empty() {
                continue;
            }
            network.addresses.extend(public);
            network.macs.extend(interface.mac.clone());
        }
        network
    }

    /// The addresses without their prefix.
    pub fn ips(&self) -> Vec<std::net::IpAddr> {
        self.addresses
            .iter()
            .filter_map(|a| a.split('/').next()?.parse().ok())
            .collect()
    }
}

/// One path of the old machine that predestroy saved onto the volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardSaved {
    /// Where it was on the machine (absolute); the copy is at the same path under the
    /// saved directory.
    pub path: PathBuf,
    pub reason: SavedReason,
    /// Regular files in it (1 for a file) and their bytes.
    pub files: u64,
    pub bytes: u64,
    /// SHA-256 of the copy: of the file, or of a directory's listing (names, kinds, modes,
    /// owners, each file's SHA-256), so recover can tell a damaged copy.
    pub sha256: String,
    /// A host key's public fingerprint (`SHA256:…`), as `ssh-keygen -l` shows it.
    pub fingerprint: Option<String>,
}

/// Why a path was saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SavedReason {
    HostKey,
    NixosIds,
    Listed,
}

/// Where the NixOS config lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardRepository {
    /// The remote's URL, with any credentials removed.
    pub url: String,
    pub branch: String,
    /// The commit that was pushed.
    pub commit: String,
    pub flake_host: String,
}

/// One volume and where it is mounted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardVolume {
    pub device: PathBuf,
    pub uuid: String,
    pub mount: PathBuf,
    pub fs_type: String,
}

/// The `/nix` bind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardNixStore {
    pub source: PathBuf,
    pub target: PathBuf,
}

/// Size of the running system's closure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardStore {
    pub paths: u64,
    pub bytes: u64,
}

/// A card that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    #[error("cannot read the recovery card {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the recovery card {path} is damaged or from another version: {detail}")]
    Format { path: PathBuf, detail: String },
    /// A value that would steer recover's writes somewhere else.
    #[error(
        "the recovery card {} is damaged: {} is {} ({}). recover writes to this machine from \
         the card, so it uses none of it; nothing was written. Read the card, then give \
         recover a config file with the right values and move the card aside",
        crate::escape::shown(.path), .damage.field, .damage.value, .damage.why
    )]
    Damaged {
        path: PathBuf,
        damage: strict::Damage,
    },
}

impl RecoveryCard {
    /// Where the card lies, relative to the volume's root.
    pub fn relative_path(user: &str) -> PathBuf {
        Path::new(user).join(".lifeboat/recovery.toml")
    }

    /// The card as TOML text, with a header saying what it is.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        let body = toml::to_string_pretty(self)?;
        Ok(format!(
            "# lifeboat recovery card: what `lifeboat recover` needs to rebuild this machine.\n\
             # Written by `lifeboat predestroy`; safe to read, no secrets inside.\n\n{body}"
        ))
    }

    /// Read and check a card.
    pub fn load(path: &Path) -> Result<RecoveryCard, CardError> {
        let text = fs::read_to_string(path).map_err(|source| CardError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let card: RecoveryCard = toml::from_str(&text).map_err(|e| CardError::Format {
            path: path.to_path_buf(),
            detail: e.message().to_string(),
        })?;
        if card.format != FORMAT {
            return Err(CardError::Format {
                path: path.to_path_buf(),
                detail: format!(
                    "format {} (this lifeboat reads format {FORMAT})",
                    card.format
                ),
            });
        }
        strict::check(&card).map_err(|damage| CardError::Damaged {
            path: path.to_path_buf(),
            damage,
        })?;
        Ok(card)
    }
}

/// The card under `volume_root` (the volume as mounted, e.g. `/home`): the user's when the
/// user is known, else the only one there is.
pub fn locate(volume_root: &Path, user: Option<&str>) -> Option<PathBuf> {
    if let Some(user) = user {
        let path = volume_root.join(RecoveryCard::relative_path(user));
        return path.is_file().then_some(path);
    }
    let mut cards = fs::read_dir(volume_root)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let user = entry.file_name().into_string().ok()?;
            let path = volume_root.join(RecoveryCard::relative_path(&user));
            path.is_file().then_some(path)
        });
    let only = cards.next()?;
    cards.next().is_none().then_some(only)
}

/// `cfg` completed from the card where the config leaves a value open (no user, no volumes,
/// no repository URL…) or at its built-in default (the `/nix` target, the branch), and a
/// line for each value both give differently.
pub fn fill_config(cfg: &Config, card: &RecoveryCard) -> (Config, Vec<String>) {
    let mut filled = cfg.clone();
    let mut disagreements = Vec::new();
    let mut differ = |what: &str, config: &dyn std::fmt::Display, card: &dyn std::fmt::Display| {
        disagreements.push(format!(
            "{what}: the config says {config}, the recovery card {card}"
        ));
    };
    match &cfg.user {
        None => filled.user = Some(card.user.clone()),
        Some(user) if *user != card.user => differ("user", user, &card.user),
        Some(_) => {}
    }
    match cfg.uid {
        None => filled.uid = Some(card.uid),
        Some(uid) if uid != card.uid => differ("uid", &uid, &card.uid),
        Some(_) => {}
    }
    if cfg.volumes.is_empty() {
        filled.volumes = card
            .volumes
            .iter()
            .map(|v| VolumeConfig {
                device: v.device.clone(),
                mount: v.mount.clone(),
                fs_type: v.fs_type.clone(),
            })
            .collect();
    } else {
        for (configured, carded) in cfg.volumes.iter().zip(&card.volumes) {
            if configured.device != carded.device {
                differ(
                    "volume device",
                    &configured.device.display(),
                    &carded.device.display(),
                );
            }
        }
    }
    if cfg.nix_store.source.is_none() {
        filled.nix_store.source = Some(card.nix_store.source.clone());
    }
    // Values with a built-in default: the card's wins where the config kept the default.
    let defaults = Config::default();
    if cfg.nix_store.target == defaults.nix_store.target {
        filled.nix_store.target = card.nix_store.target.clone();
    }
    if cfg.config_repo.branch == defaults.config_repo.branch {
        filled.config_repo.branch = card.repository.branch.clone();
    }
    match &cfg.config_repo.url {
        None => filled.config_repo.url = Some(card.repository.url.clone()),
        Some(url) if *url != card.repository.url => differ("repository", url, &card.repository.url),
        Some(_) => {}
    }
    match &cfg.config_repo.flake_host {
        None => filled.config_repo.flake_host = Some(card.repository.flake_host.clone()),
        Some(host) if *host != card.repository.flake_host => {
            differ("flake host", host, &card.repository.flake_host);
        }
        Some(_) => {}
    }
    (filled, disagreements)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn example() -> RecoveryCard {
        RecoveryCard {
            format: FORMAT,
            written_at: "2026-11-26T09:00:00Z".into(),
            lifeboat_version: "0.1.0".into(),
            hostname: "devserver".into(),
            nixos_version: Some("25.11".into()),
            user: "qwe".into(),
            uid: 1000,
            repository: CardRepository {
                url: "git@github.com:qwe/nixos-config.git".into(),
                branch: "main".into(),
                commit: "0123456789abcdef0123456789abcdef01234567".into(),
                flake_host: "devserver".into(),
            },
            volumes: vec![CardVolume {
                device: "/dev/disk/by-id/scsi-0HC_Volume_103912881".into(),
                uuid: "0b5c6a3e-0000-4000-8000-000000000001".into(),
                mount: "/home".into(),
                fs_type: "ext4".into(),
            }],
            nix_store: CardNixStore {
                source: "/home/qwe/nix".into(),
                target: "/nix".into(),
            },
            store: Some(CardStore {
                paths: 1234,
                bytes: 5_000_000_000,
            }),
            persistence_nonce: Some("00ff".into()),
            lifeboat_store_path: None,
            network: Some(CardNetwork {
                addresses: vec!["203.0.113.7/32".into(), "2001:db8:7::7/64".into()],
                macs: vec!["96:00:01:02:03:04".into()],
            }),
            rehearsal: None,
            saved: vec![CardSaved {
                path: "/etc/ssh/ssh_host_ed25519_key".into(),
                reason: SavedReason::HostKey,
                files: 1,
                bytes: 411,
                sha256: "0".repeat(64),
                fingerprint: Some("SHA256:abc".into()),
            }],
        }
    }

    #[test]
    fn a_written_card_reads_back_equal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recovery.toml");
        fs::write(&path, example().to_toml().unwrap()).unwrap();
        assert_eq!(RecoveryCard::load(&path).unwrap(), example());
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .starts_with("# lifeboat recovery card")
        );
    }

    #[test]
    fn the_card_fills_what_the_config_leaves_open_and_names_disagreements() {
        let (filled, disagreements) = fill_config(&Config::default(), &example());
        assert_eq!(filled.user.as_deref(), Some("qwe"));
        assert_eq!(filled.uid, Some(1000));
        assert_eq!(filled.volumes[0].mount, Path::new("/home"));
        assert_eq!(filled.config_repo.flake_host.as_deref(), Some("devserver"));
        assert!(disagreements.is_empty());
        let cfg = Config {
            uid: Some(1001),
            ..Config::default()
        };
        let (filled, disagreements) = fill_config(&cfg, &example());
        assert_eq!(filled.uid, Some(1001), "the config wins");
        assert_eq!(
            disagreements,
            ["uid: the config says 1001, the recovery card 1000"]
        );
    }

    #[test]
    fn the_only_card_on_a_volume_is_found() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(locate(dir.path(), None), None);
        let path = dir.path().join(RecoveryCard::relative_path("qwe"));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, "x").unwrap();
        assert_eq!(locate(dir.path(), None), Some(path.clone()));
        assert_eq!(locate(dir.path(), Some("qwe")), Some(path));
        assert_eq!(locate(dir.path(), Some("other")), None);
    }

    #[test]
    fn another_format_or_garbage_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recovery.toml");
        fs::write(
            &path,
            example()
                .to_toml()
                .unwrap()
                .replace("format = 1", "format = 9"),
        )
        .unwrap();
        let err = RecoveryCard::load(&path).unwrap_err().to_string();
        assert!(err.contains("format 9"), "{err}");
        fs::write(&path, "user = [").unwrap();
        assert!(matches!(
            RecoveryCard::load(&path),
            Err(CardError::Format { .. })
        ));
        assert!(matches!(
            RecoveryCard::load(&dir.path().join("missing")),
            Err(CardError::Read { .. })
        ));
    }
}
