//! The host's identity, which dies with the root disk unless carried: the SSH host keys sshd
//! uses (clients pin them, and sops-nix and agenix decrypt with them by default),
//! `/var/lib/nixos` (the uid and gid maps that give users without a fixed id their old one
//! back) and the paths `[host].carry` lists. predestroy saves them at the top of the volume,
//! readable by root alone; recover puts them back before the reboot.

use std::fs;
use std::path::{Path, PathBuf};

use crate::config::Config;

pub mod check;
pub mod digest;
pub mod restore;
pub mod save;

/// The directory at the top of the volume that holds the saved files: owned by root, mode
/// 0700, never inside a home a user can read.
pub const SAVED_DIR: &str = "lifeboat-host";

/// sshd's host keys when its config names none (OpenSSH's defaults).
const DEFAULT_HOST_KEYS: [&str; 3] = [
    "/etc/ssh/ssh_host_rsa_key",
    "/etc/ssh/ssh_host_ecdsa_key",
    "/etc/ssh/ssh_host_ed25519_key",
];

/// sshd's config, where its `HostKey` lines are.
const SSHD_CONFIG: &str = "/etc/ssh/sshd_config";

/// NixOS's record of the ids it gave out (`uid-map`, `gid-map`, `declarative-users`, …).
pub const NIXOS_IDS: &str = "/var/lib/nixos";

/// Why a path is carried: a private host key of sshd's, NixOS's id maps, or listed in
/// `[host].carry`.
pub use crate::card::SavedReason as Reason;

/// A path of the machine (absolute, as the machine sees it) that lifeboat carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carried {
    pub path: PathBuf,
    pub reason: Reason,
}

/// Where the machine's `path` is under `root` (`/` on a real machine, a fake root in tests).
pub fn on_machine(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// The uid NixOS's id map under `root` (`/var/lib/nixos/uid-map`) gives `user`: the id a
/// user without a fixed `uid` gets at activation.
pub fn mapped_uid(root: &Path, user: &str) -> Option<u32> {
    let map = on_machine(root, &Path::new(NIXOS_IDS).join("uid-map"));
    let ids: std::collections::BTreeMap<String, u32> =
        serde_json::from_slice(&fs::read(map).ok()?).ok()?;
    ids.get(user).copied()
}

/// Where the copy of the machine's `path` is in `saved_dir`: the same path below its
/// `files/` directory.
pub fn saved_path(saved_dir: &Path, path: &Path) -> PathBuf {
    on_machine(&saved_dir.join("files"), path)
}

/// The private host keys sshd uses: the `HostKey` lines of its config under `root`, else
/// OpenSSH's defaults; only those that exist.
pub fn host_keys(root: &Path) -> Vec<PathBuf> {
    let text = fs::read_to_string(on_machine(root, Path::new(SSHD_CONFIG))).unwrap_or_default();
    let named: Vec<PathBuf> = text
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let key = words.next()?;
            key.eq_ignore_ascii_case("HostKey")
                .then(|| words.next())
                .flatten()
                .map(PathBuf::from)
        })
        .filter(|path| path.is_absolute())
        .collect();
    let candidates = if named.is_empty() {
        DEFAULT_HOST_KEYS.iter().map(PathBuf::from).collect()
    } else {
        named
    };
    candidates
        .into_iter()
        .filter(|path| on_machine(root, path).exists())
        .collect()
}

/// Everything lifeboat carries from this machine, in the order it is saved.
pub fn carried(cfg: &Config) -> Vec<Carried> {
    let root = &cfg.host.root;
    let keys = host_keys(root).into_iter().map(|path| Carried {
        path,
        reason: Reason::HostKey,
    });
    let ids = Carried {
        path: PathBuf::from(NIXOS_IDS),
        reason: Reason::NixosIds,
    };
    let listed = cfg.host.carry.iter().map(|path| Carried {
        path: path.clone(),
        reason: Reason::Listed,
    });
    keys.chain([ids]).chain(listed).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_root(sshd_config: Option<&str>, keys: &[&str]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("etc/ssh")).unwrap();
        if let Some(text) = sshd_config {
            fs::write(root.path().join("etc/ssh/sshd_config"), text).unwrap();
        }
        for key in keys {
            fs::write(on_machine(root.path(), Path::new(key)), "key").unwrap();
        }
        root
    }

    #[test]
    fn the_host_keys_are_the_ones_sshd_names_else_its_defaults() {
        let root = fake_root(
            Some("Port 22\nHostKey /etc/ssh/ssh_host_ed25519_key\nhostkey /etc/ssh/other_key\n"),
            &["/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key"],
        );
        // /etc/ssh/other_key is named but missing; rsa exists but is not named.
        assert_eq!(
            host_keys(root.path()),
            [PathBuf::from("/etc/ssh/ssh_host_ed25519_key")]
        );
        let root = fake_root(
            None,
            &["/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key"],
        );
        assert_eq!(
            host_keys(root.path()),
            [
                PathBuf::from("/etc/ssh/ssh_host_rsa_key"),
                PathBuf::from("/etc/ssh/ssh_host_ed25519_key")
            ]
        );
    }

    #[test]
    fn carried_are_the_keys_the_id_maps_and_the_listed_paths() {
        let root = fake_root(None, &["/etc/ssh/ssh_host_ed25519_key"]);
        let mut cfg = Config::default();
        cfg.host.root = root.path().to_path_buf();
        cfg.host.carry = vec!["/var/lib/postgresql".into()];
        let reasons: Vec<(PathBuf, Reason)> = carried(&cfg)
            .into_iter()
            .map(|c| (c.path, c.reason))
            .collect();
        assert_eq!(
            reasons,
            [
                ("/etc/ssh/ssh_host_ed25519_key".into(), Reason::HostKey),
                ("/var/lib/nixos".into(), Reason::NixosIds),
                ("/var/lib/postgresql".into(), Reason::Listed),
            ]
        );
    }
}
