//! The recovery card: `<user>/.lifeboat/recovery.toml` on the volume, written by
//! `predestroy`, read by `recover` on a fresh machine that has no config yet. It holds
//! everything needed to rebuild: where the config lives, which host to build, whose data
//! the volume holds and how it is mounted.

use std::fs;
use std::path::{Path, PathBuf};

use crate::config::{Config, VolumeConfig};

mod contents;
pub mod sheet;
mod strict;

pub use contents::{
    CardNetwork, CardNixStore, CardRehearsal, CardRepository, CardSaved, CardStore, CardVolume,
    FORMAT, RecoveryCard, SavedReason,
};

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
mod tests {
    use super::contents::example;
    use super::*;

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
