//! Who and where, for predestroy: the user, their uid and gid, the volume and the home on
//! it. Resolved once; every step that writes onto the volume needs them.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::config::{Config, VolumeConfig};
use crate::escape::shown;

/// The resolved facts.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    /// The volume holding the home (the first configured).
    pub volume: VolumeConfig,
    /// `<volume mount>/<user>`.
    pub home: PathBuf,
}

impl Settings {
    /// `<home>/.lifeboat`, where lifeboat keeps what it saves for the user.
    pub fn lifeboat_dir(&self) -> PathBuf {
        self.home.join(".lifeboat")
    }

    /// Owner of the files lifeboat writes in the home.
    pub fn owner(&self) -> (u32, u32) {
        (self.uid, self.gid)
    }

    /// From the config, the system's user database and the home itself.
    pub fn resolve(cfg: &Config) -> Result<Settings, String> {
        let user = cfg
            .user
            .clone()
            .ok_or("no user is configured: set user = \"…\" in lifeboat.toml")?;
        let volume = cfg
            .volumes
            .first()
            .cloned()
            .ok_or("no volume is configured: add a [[volume]] with device and mount")?;
        let home = volume.mount.join(&user);
        let meta = fs::symlink_metadata(&home)
            .map_err(|e| format!("the home {} cannot be read: {e}", shown(&home)))?;
        let system_uid = nix::unistd::User::from_name(&user)
            .ok()
            .flatten()
            .map(|u| u.uid.as_raw());
        let uid = cfg.uid.or(system_uid).unwrap_or(meta.uid());
        Ok(Settings {
            user,
            uid,
            gid: meta.gid(),
            volume,
            home,
        })
    }
}
