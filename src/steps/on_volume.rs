//! `home-on-volume`, `nix-on-volume`, `docker-on-volume`: is what must survive really on
//! the volume? Compared by device number in the mount table, never by name: a by-id link,
//! `/dev/sdb` and `/dev/disk/by-uuid/…` are the same device, and a directory that merely
//! looks right on the root disk is not.

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::config::{Config, StorePlace, VolumeConfig};
use crate::escape::shown;
use crate::exec::mountinfo::MountEntry;
use crate::flow::Outcome;

/// The device number of a block device path (a by-id link is followed).
pub fn device_number(device: &Path) -> Result<(u32, u32), String> {
    let meta = fs::metadata(device).map_err(|e| {
        format!(
            "the volume device {} cannot be read: {e}. Is the volume attached?",
            shown(device)
        )
    })?;
    if !meta.file_type().is_block_device() {
        return Err(format!("{} is not a block device", shown(device)));
    }
    let rdev = meta.rdev();
    Ok((
        nix::sys::stat::major(rdev) as u32,
        nix::sys::stat::minor(rdev) as u32,
    ))
}

/// This process's mount table, or the step's failure.
pub fn mount_table() -> Result<Vec<MountEntry>, Outcome> {
    crate::exec::mountinfo::read_mountinfo()
        .map_err(|e| Outcome::Failed(format!("cannot read /proc/self/mountinfo: {e}")))
}

/// The path as the mount table spells it: symlinks resolved where the path exists.
fn canonical(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The mount visible at exactly `point` (the last one mounted there wins).
fn mounted_at<'a>(table: &'a [MountEntry], point: &Path) -> Option<&'a MountEntry> {
    table.iter().rev().find(|m| m.mount_point == point)
}

/// The mount that holds `path`: the one with the longest mount point above it.
pub fn mount_holding<'a>(table: &'a [MountEntry], path: &Path) -> Option<&'a MountEntry> {
    let path = canonical(path);
    table
        .iter()
        .rev()
        .filter(|m| path.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.components().count())
}

fn describe_mount(entry: &MountEntry) -> String {
    format!(
        "{} ({}:{}, {})",
        crate::escape::escape_bytes(entry.source.as_bytes()),
        entry.dev.0,
        entry.dev.1,
        entry.fs_type
    )
}

/// `[[volume]].mount` is mounted from that volume's device with its filesystem.
pub fn home_on_volume(table: &[MountEntry], volume: &VolumeConfig, dev: (u32, u32)) -> Outcome {
    let point = canonical(&volume.mount);
    let Some(entry) = mounted_at(table, &point) else {
        return Outcome::Failed(format!(
            "{} is not a mount point: it is on the root disk and everything in it dies with \
             this VPS. Mount the volume {} there (fileSystems.\"{}\" in the NixOS config) and \
             check again.",
            shown(&volume.mount),
            shown(&volume.device),
            shown(&volume.mount)
        ));
    };
    if entry.dev != dev {
        return Outcome::Failed(format!(
            "{} is mounted from {}, not from the volume {} ({}:{}): its files are not on the \
             volume.",
            shown(&volume.mount),
            describe_mount(entry),
            shown(&volume.device),
            dev.0,
            dev.1
        ));
    }
    if entry.fs_type != volume.fs_type {
        return Outcome::Failed(format!(
            "{} is the volume, but mounted as {} where the config says {}.",
            shown(&volume.mount),
            entry.fs_type,
            volume.fs_type
        ));
    }
    if entry.root != Path::new("/") {
        return Outcome::Warning(format!(
            "{} shows only {} of the volume (a bind mount), not its whole filesystem.",
            shown(&volume.mount),
            shown(&entry.root)
        ));
    }
    Outcome::Passed(format!(
        "{} is mounted from the volume {}",
        shown(&volume.mount),
        describe_mount(entry)
    ))
}

/// [`home_on_volume`] for every configured volume, as one outcome: failed when any is not
/// mounted from its volume, else a warning when any is only partly there.
pub fn all_volumes_mounted(table: &[MountEntry], volumes: &[VolumeConfig]) -> Outcome {
    if volumes.is_empty() {
        return Outcome::Failed(
            "no [[volume]] is configured (and no recovery card says which): lifeboat cannot \
             tell what must be on the volume"
                .into(),
        );
    }
    let outcomes: Vec<Outcome> = volumes
        .iter()
        .map(|volume| match device_number(&volume.device) {
            Ok(dev) => home_on_volume(table, volume, dev),
            Err(why) => Outcome::Failed(why),
        })
        .collect();
    let text = |o: &Outcome| match o {
        Outcome::Passed(m) | Outcome::Warning(m) | Outcome::Failed(m) => m.clone(),
        _ => String::new(),
    };
    let message = outcomes.iter().map(text).collect::<Vec<_>>().join("; ");
    if outcomes.iter().any(|o| matches!(o, Outcome::Failed(_))) {
        Outcome::Failed(message)
    } else if outcomes.iter().any(|o| matches!(o, Outcome::Warning(_))) {
        Outcome::Warning(message)
    } else {
        Outcome::Passed(message)
    }
}

/// `[nix_store].target` is a bind mount of `[nix_store].source`, which lies on the volume
/// mounted at `volume.mount`.
pub fn nix_bound(
    table: &[MountEntry],
    source: &Path,
    target: &Path,
    volume: &VolumeConfig,
    dev: (u32, u32),
) -> Outcome {
    let Ok(inside) = source.strip_prefix(&volume.mount) else {
        return Outcome::Failed(format!(
            "[nix_store].source {} is not under the volume's mount {}: the store would not \
             survive on the volume.",
            shown(source),
            shown(&volume.mount)
        ));
    };
    let expected_root = Path::new("/").join(inside);
    let Some(entry) = mounted_at(table, &canonical(target)) else {
        return Outcome::Failed(format!(
            "{} is not a mount point: the Nix store is on the root disk, not bound from {} on \
             the volume. It would be lost with this VPS. Add fileSystems.\"{}\" = {{ device = \
             \"{}\"; options = [ \"bind\" ]; }}; and rebuild before destroying.",
            shown(target),
            shown(source),
            shown(target),
            shown(source)
        ));
    };
    if entry.dev != dev || entry.root != expected_root {
        return Outcome::Failed(format!(
            "{} is mounted from {} at {}, not bound from {} on the volume ({}:{} at {}).",
            shown(target),
            describe_mount(entry),
            shown(&entry.root),
            shown(source),
            dev.0,
            dev.1,
            shown(&expected_root)
        ));
    }
    Outcome::Passed(format!(
        "{} is bound from {} on the volume",
        shown(target),
        shown(source)
    ))
}

/// The Nix store is on the volume, in either of the seed's layouts: `[nix_store].target`
/// bound from its source on a volume, or a volume of its own mounted there.
pub fn store_on_volume(table: &[MountEntry], cfg: &Config) -> Outcome {
    let Some(place) = cfg.store_place() else {
        return Outcome::Failed(
            "where the Nix store lies on the volumes is unknown: set user (the store is then \
             <volume>/<user>/nix), [nix_store].source, or a [[volume]] mounted at \
             [nix_store].target"
                .into(),
        );
    };
    let volume = place.volume();
    let dev = match device_number(&volume.device) {
        Ok(dev) => dev,
        Err(why) => return Outcome::Failed(why),
    };
    match &place {
        StorePlace::Bind { inside, .. } => nix_bound(
            table,
            &volume.mount.join(inside),
            &cfg.nix_store.target,
            volume,
            dev,
        ),
        StorePlace::OwnVolume { .. } => match home_on_volume(table, volume, dev) {
            Outcome::Passed(_) => Outcome::Passed(format!(
                "{} is the store's own volume {}",
                shown(&cfg.nix_store.target),
                shown(&volume.device)
            )),
            other => other,
        },
    }
}

/// The Docker data root (and the running daemon's root dir, when it runs) is on the volume.
pub fn docker_on_volume(
    table: &[MountEntry],
    data_root: &Path,
    daemon_root: Option<&Path>,
    dev: (u32, u32),
) -> Outcome {
    let on_volume = |path: &Path| mount_holding(table, path).is_some_and(|m| m.dev == dev);
    if !on_volume(data_root) {
        return Outcome::Failed(format!(
            "[docker].data_root {} is not on the volume: images, containers and volumes there \
             die with this VPS. Move it (virtualisation.docker.daemon.settings.data-root) onto \
             the volume.",
            shown(data_root)
        ));
    }
    match daemon_root {
        Some(root) if !on_volume(root) => Outcome::Failed(format!(
            "the running Docker daemon keeps its data in {}, which is not on the volume \
             (configured: {}). Restart Docker with the new data-root first.",
            shown(root),
            shown(data_root)
        )),
        Some(root) => Outcome::Passed(format!(
            "{} is on the volume, and the running daemon uses {}",
            shown(data_root),
            shown(root)
        )),
        None => Outcome::Passed(format!(
            "{} is on the volume (Docker is not running, so its live root dir was not checked)",
            shown(data_root)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::mountinfo::parse_mountinfo;

    const VOLUME: (u32, u32) = (8, 16);

    fn table() -> Vec<MountEntry> {
        parse_mountinfo(
            b"22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n\
              30 22 8:16 / /home rw,relatime - ext4 /dev/sdb rw\n\
              31 22 8:16 /qwe/nix /nix rw,relatime - ext4 /dev/sdb rw\n\
              32 22 0:25 / /run rw - tmpfs tmpfs rw\n",
        )
    }

    fn volume() -> VolumeConfig {
        VolumeConfig {
            device: "/dev/disk/by-id/scsi-0HC_Volume_1".into(),
            mount: "/home".into(),
            fs_type: "ext4".into(),
        }
    }

    fn passed(outcome: &Outcome) -> bool {
        matches!(outcome, Outcome::Passed(_))
    }

    #[test]
    fn home_from_the_volume_passes_and_from_elsewhere_fails() {
        assert!(passed(&home_on_volume(&table(), &volume(), VOLUME)));
        let other = home_on_volume(&table(), &volume(), (8, 32));
        assert!(
            matches!(&other, Outcome::Failed(m) if m.contains("/dev/sdb (8:16")),
            "{other:?}"
        );
        let no_mount: Vec<_> = table()
            .into_iter()
            .filter(|m| m.mount_point != Path::new("/home"))
            .collect();
        let root_disk = home_on_volume(&no_mount, &volume(), VOLUME);
        assert!(matches!(&root_disk, Outcome::Failed(m) if m.contains("not a mount point")));
        let xfs = VolumeConfig {
            fs_type: "xfs".into(),
            ..volume()
        };
        assert!(matches!(
            home_on_volume(&table(), &xfs, VOLUME),
            Outcome::Failed(_)
        ));
    }

    #[test]
    fn nix_must_be_a_bind_of_the_source_on_the_volume() {
        let source = Path::new("/home/qwe/nix");
        assert!(passed(&nix_bound(
            &table(),
            source,
            Path::new("/nix"),
            &volume(),
            VOLUME
        )));
        let wrong_source = nix_bound(
            &table(),
            Path::new("/home/other/nix"),
            Path::new("/nix"),
            &volume(),
            VOLUME,
        );
        assert!(matches!(wrong_source, Outcome::Failed(_)));
        let unbound: Vec<_> = table()
            .into_iter()
            .filter(|m| m.mount_point != Path::new("/nix"))
            .collect();
        let outcome = nix_bound(&unbound, source, Path::new("/nix"), &volume(), VOLUME);
        assert!(
            matches!(&outcome, Outcome::Failed(m) if m.contains("root disk")),
            "{outcome:?}"
        );
        let off_volume = nix_bound(
            &table(),
            Path::new("/srv/nix"),
            Path::new("/nix"),
            &volume(),
            VOLUME,
        );
        assert!(matches!(off_volume, Outcome::Failed(_)));
    }

    #[test]
    fn docker_data_root_and_daemon_root_must_be_on_the_volume() {
        let t = table();
        let root = Path::new("/home/qwe/docker");
        assert!(passed(&docker_on_volume(&t, root, None, VOLUME)));
        assert!(passed(&docker_on_volume(&t, root, Some(root), VOLUME)));
        let daemon = docker_on_volume(&t, root, Some(Path::new("/var/lib/docker")), VOLUME);
        assert!(matches!(daemon, Outcome::Failed(_)));
        let data = docker_on_volume(&t, Path::new("/var/lib/docker"), None, VOLUME);
        assert!(matches!(data, Outcome::Failed(_)));
    }

    #[test]
    fn the_deepest_mount_holds_a_path() {
        let t = table();
        assert_eq!(
            mount_holding(&t, Path::new("/home/qwe/x"))
                .unwrap()
                .mount_point,
            Path::new("/home")
        );
        assert_eq!(
            mount_holding(&t, Path::new("/etc/nixos"))
                .unwrap()
                .mount_point,
            Path::new("/")
        );
    }
}
