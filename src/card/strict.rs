//! The card read as strictly as the config: recover writes to the machine from what it
//! lists (a home's owner, mount points, the store's place), so a value that would steer a
//! write somewhere else — a user name with `/`, uid 0, a volume mounted over `/etc`, a
//! store outside the volumes — makes the card damaged, not a value to use.

use std::path::Path;

use crate::config::{
    branch_problem, fs_type_problem, normal_path_problem, plain_text_problem, user_name_problem,
};
use crate::escape::escape_bytes;

use super::contents::RecoveryCard;

/// A field of the card that fails, its value and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub field: String,
    /// Escaped for the screen.
    pub value: String,
    pub why: String,
}

/// Directories of the root filesystem a volume must not be mounted over.
const SYSTEM_DIRS: [&str; 15] = [
    "/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/root", "/run", "/sbin",
    "/sys", "/tmp", "/usr", "/var",
];

/// The first field of `card` that fails.
pub fn check(card: &RecoveryCard) -> Result<(), Damage> {
    let fail = |field: &str, value: &str, why: String| Damage {
        field: field.to_string(),
        value: format!("\"{}\"", escape_bytes(value.as_bytes())),
        why,
    };
    let path_text = |path: &Path| path.to_string_lossy().into_owned();
    if let Some(why) = user_name_problem(&card.user) {
        return Err(fail("user", &card.user, why));
    }
    if card.uid == 0 || card.uid == u32::MAX {
        return Err(Damage {
            field: "uid".into(),
            value: card.uid.to_string(),
            why: "a home on the volume never belongs to root or to the nobody id".into(),
        });
    }
    for (field, text) in [
        ("hostname", &card.hostname),
        ("written_at", &card.written_at),
        ("repository.url", &card.repository.url),
        ("repository.commit", &card.repository.commit),
    ] {
        if let Some(why) = plain_text_problem(text) {
            return Err(fail(field, text, why));
        }
    }
    if let Some(why) = branch_problem(&card.repository.branch) {
        return Err(fail("repository.branch", &card.repository.branch, why));
    }
    if let Some(why) = attribute_name_problem(&card.repository.flake_host) {
        return Err(fail(
            "repository.flake_host",
            &card.repository.flake_host,
            why,
        ));
    }
    if card.volumes.is_empty() {
        return Err(Damage {
            field: "volumes".into(),
            value: "[]".into(),
            why: "predestroy always records the volume it checked".into(),
        });
    }
    for (index, volume) in card.volumes.iter().enumerate() {
        let field = |name: &str| format!("volumes[{index}].{name}");
        if let Some(why) = normal_path_problem(&volume.device) {
            return Err(fail(&field("device"), &path_text(&volume.device), why));
        }
        if let Some(why) = mount_point_problem(&volume.mount) {
            return Err(fail(&field("mount"), &path_text(&volume.mount), why));
        }
        if let Some(why) = fs_type_problem(&volume.fs_type) {
            return Err(fail(&field("fs_type"), &volume.fs_type, why));
        }
        if let Some(why) = plain_text_problem(&volume.uuid) {
            return Err(fail(&field("uuid"), &volume.uuid, why));
        }
        let earlier = &card.volumes[..index];
        if earlier.iter().any(|v| v.mount == volume.mount) {
            return Err(fail(
                &field("mount"),
                &path_text(&volume.mount),
                "another volume of the card is mounted there too".into(),
            ));
        }
    }
    let store = &card.nix_store;
    if let Some(why) = mount_point_problem(&store.target) {
        return Err(fail("nix_store.target", &path_text(&store.target), why));
    }
    // A store on a volume of its own is that volume; a bind's source must be on one.
    let own_volume = card.volumes.iter().any(|v| v.mount == store.target);
    if !own_volume {
        let on_a_volume = card
            .volumes
            .iter()
            .any(|v| store.source.starts_with(&v.mount) && store.source != v.mount);
        let why = normal_path_problem(&store.source).or_else(|| {
            (!on_a_volume).then(|| "it is not inside one of the card's volumes".to_string())
        });
        if let Some(why) = why {
            return Err(fail("nix_store.source", &path_text(&store.source), why));
        }
    }
    if let Some(path) = &card.lifeboat_store_path {
        let in_store = path
            .strip_prefix("/nix/store")
            .is_ok_and(|name| name.components().count() == 1);
        let why = normal_path_problem(path)
            .or_else(|| (!in_store).then(|| "it is not a path directly in /nix/store".to_string()));
        if let Some(why) = why {
            return Err(fail("lifeboat_store_path", &path_text(path), why));
        }
    }
    if let Some(network) = &card.network {
        for (index, address) in network.addresses.iter().enumerate() {
            let parsed = address.split_once('/').is_some_and(|(ip, prefix)| {
                ip.parse::<std::net::IpAddr>().is_ok() && prefix.parse::<u8>().is_ok()
            });
            if !parsed {
                return Err(fail(
                    &format!("network.addresses[{index}]"),
                    address,
                    "it is not an address/prefix".into(),
                ));
            }
        }
        for (index, mac) in network.macs.iter().enumerate() {
            let hex = mac.len() == 17
                && mac
                    .split(':')
                    .all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()));
            if !hex {
                return Err(fail(
                    &format!("network.macs[{index}]"),
                    mac,
                    "it is not a MAC address".into(),
                ));
            }
        }
    }
    check_saved(card)
}

/// The saved-file list: recover writes each entry to its path on the root disk, from the
/// same path under the saved directory.
fn check_saved(card: &RecoveryCard) -> Result<(), Damage> {
    for (index, saved) in card.saved.iter().enumerate() {
        let field = |name: &str| format!("saved[{index}].{name}");
        let path = &saved.path;
        let why = normal_path_problem(path)
            .or_else(|| (path == Path::new("/")).then(|| "it is the whole root".to_string()))
            .or_else(|| {
                card.volumes
                    .iter()
                    .any(|v| path.starts_with(&v.mount))
                    .then(|| "it is on a volume, not on the root disk".to_string())
            });
        if let Some(why) = why {
            return Err(Damage {
                field: field("path"),
                value: format!("\"{}\"", escape_bytes(path.as_os_str().as_encoded_bytes())),
                why,
            });
        }
        let is_sha256 = saved.sha256.len() == 64
            && saved
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !is_sha256 {
            return Err(Damage {
                field: field("sha256"),
                value: format!("\"{}\"", escape_bytes(saved.sha256.as_bytes())),
                why: "it is not a SHA-256 in hex".into(),
            });
        }
        if let Some(why) = saved.fingerprint.as_deref().and_then(plain_text_problem) {
            return Err(Damage {
                field: field("fingerprint"),
                value: format!(
                    "\"{}\"",
                    escape_bytes(saved.fingerprint.as_deref().unwrap_or_default().as_bytes())
                ),
                why,
            });
        }
    }
    Ok(())
}

/// Why `name` is not a `nixosConfigurations` name a flake reference can carry.
fn attribute_name_problem(name: &str) -> Option<String> {
    let mut chars = name.chars();
    match chars.next() {
        None => Some("it is empty".into()),
        Some(c) if !(c.is_ascii_alphabetic() || c == '_') => {
            Some("it must start with a letter or \"_\"".into())
        }
        _ => chars
            .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '\'')))
            .map(|c| format!("{c:?} is not allowed in a host name of the flake")),
    }
}

/// Why a volume or the store may not be mounted at `mount`.
fn mount_point_problem(mount: &Path) -> Option<String> {
    normal_path_problem(mount).or_else(|| {
        SYSTEM_DIRS
            .iter()
            .any(|dir| mount == Path::new(dir))
            .then(|| "a volume mounted there would hide the system's own files".to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::contents::example;

    fn damage(change: impl FnOnce(&mut RecoveryCard)) -> Damage {
        let mut card = example();
        change(&mut card);
        check(&card).expect_err("a damaged card")
    }

    #[test]
    fn a_card_predestroy_writes_passes() {
        assert_eq!(check(&example()), Ok(()));
        let mut own_volume = example();
        own_volume.volumes.push(crate::card::contents::CardVolume {
            device: "/dev/disk/by-id/scsi-0HC_Volume_2".into(),
            uuid: "0b5c6a3e-0000-4000-8000-000000000002".into(),
            mount: "/nix".into(),
            fs_type: "ext4".into(),
        });
        own_volume.nix_store.source = "/home/qwe/nix".into();
        assert_eq!(check(&own_volume), Ok(()));
    }

    #[test]
    fn values_that_would_steer_a_write_elsewhere_are_named_with_the_field() {
        let d = damage(|c| c.user = "../../../../tmp/evil".into());
        assert_eq!(d.field, "user");
        assert_eq!(d.value, "\"../../../../tmp/evil\"");
        let d = damage(|c| c.uid = 0);
        assert_eq!((d.field.as_str(), d.value.as_str()), ("uid", "0"));
        let d = damage(|c| c.volumes[0].mount = "/etc".into());
        assert_eq!(d.field, "volumes[0].mount");
        assert!(d.why.contains("hide the system"), "{}", d.why);
        let d = damage(|c| c.volumes[0].mount = "/home/../etc".into());
        assert!(d.why.contains("normalised"), "{}", d.why);
        let d = damage(|c| c.volumes[0].device = "dev/sdb".into());
        assert_eq!(d.field, "volumes[0].device");
        let d = damage(|c| c.nix_store.source = "/var/lib/nix".into());
        assert_eq!(d.field, "nix_store.source");
        assert!(d.why.contains("not inside"), "{}", d.why);
        let d = damage(|c| c.nix_store.source = "/home".into());
        assert_eq!(d.field, "nix_store.source");
        let d = damage(|c| c.nix_store.target = "/".into());
        assert_eq!(d.field, "nix_store.target");
        let d = damage(|c| c.volumes.clear());
        assert_eq!(d.field, "volumes");
        let d = damage(|c| c.repository.flake_host = "dev server".into());
        assert_eq!(d.field, "repository.flake_host");
        let d = damage(|c| c.repository.branch = "main..x".into());
        assert_eq!(d.field, "repository.branch");
    }

    #[test]
    fn saved_files_go_back_only_to_the_root_disk() {
        let d = damage(|c| c.saved[0].path = "/home/qwe/.ssh/authorized_keys".into());
        assert_eq!(d.field, "saved[0].path");
        assert!(d.why.contains("on a volume"), "{}", d.why);
        let d = damage(|c| c.saved[0].path = "/etc/ssh/../../root/.ssh".into());
        assert!(d.why.contains("normalised"), "{}", d.why);
        let d = damage(|c| c.saved[0].path = "etc/ssh/key".into());
        assert_eq!(d.field, "saved[0].path");
        let d = damage(|c| c.saved[0].path = "/".into());
        assert!(d.why.contains("whole root"), "{}", d.why);
        let d = damage(|c| c.saved[0].sha256 = "xyz".into());
        assert_eq!(d.field, "saved[0].sha256");
    }

    #[test]
    fn control_characters_are_shown_escaped() {
        let d = damage(|c| c.hostname = "dev\u{1b}[2Jserver".into());
        assert_eq!(d.field, "hostname");
        assert!(!d.value.contains('\u{1b}'), "{}", d.value);
        assert!(d.why.contains("control character"), "{}", d.why);
    }
}
