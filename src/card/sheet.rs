//! The recovery sheet: `<user>/.lifeboat/RECOVERY.md` beside the card, rewritten with it.
//! The exact commands for recovery day for this machine, for an operator who finds the
//! volume without the tool (or without this documentation) and follows it by hand.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::steps::volume_store::VolumeStore;

use super::contents::RecoveryCard;

/// The sheet's file name, beside the card.
pub const FILE: &str = "RECOVERY.md";

/// Where the sheet tells the operator to mount the volume for a look or a copy.
const MOUNT: &str = "/mnt/lifeboat-volume";

/// The sheet for `card` (as `cfg` places the store).
pub fn sheet(card: &RecoveryCard, cfg: &Config) -> String {
    let mut out = String::new();
    let volume = card.volumes.first();
    let by_id = volume.map_or_else(
        || "<the volume's by-id path>".into(),
        |v| v.device.display().to_string(),
    );
    let mount = volume.map_or_else(|| PathBuf::from("/home"), |v| v.mount.clone());
    let repo = &card.repository;
    let _ = writeln!(
        out,
        "# Recovering {host} with lifeboat\n\n\
         Written {time} by `lifeboat predestroy` on {host}, with the recovery card\n\
         (`recovery.toml`) beside this file. Everything below is for this machine.\n\n\
         - The volume: `{by_id}` ({fs}, UUID {uuid}), mounted at `{mount}`. Never format it.\n\
         - The configuration: `{url}`, branch `{branch}`, commit `{commit}`, host `{flake_host}`.\n\
         - The user: `{user}`, uid {uid}; the home is `{home}`.\n",
        host = card.hostname,
        time = card.written_at,
        fs = volume.map_or("ext4", |v| v.fs_type.as_str()),
        uuid = volume.map_or("unknown", |v| v.uuid.as_str()),
        mount = mount.display(),
        url = repo.url,
        branch = repo.branch,
        commit = repo.commit,
        flake_host = repo.flake_host,
        user = card.user,
        uid = card.uid,
        home = mount.join(&card.user).display(),
    );
    let _ = writeln!(out, "{}\n", rehearsal_line(card));
    let _ = writeln!(
        out,
        "## On the fresh VPS, as root\n\n\
         1. Attach the volume in the provider's console, then check it is there:\n\n\
         \x20      ls -l {by_id}\n"
    );
    match (&card.lifeboat_store_path, store_on_volume(cfg)) {
        (Some(path), Some((device, store))) => {
            let _ = writeln!(
                out,
                "2. Take lifeboat from the volume's own store (no network needed):\n\n\
                 \x20      mkdir -p {MOUNT} && mount {device} {MOUNT}\n\
                 \x20      nix --extra-experimental-features nix-command copy --no-check-sigs \\\n\
                 \x20        --from '{uri}' {path}\n\
                 \x20      umount {MOUNT}\n\n\
                 \x20  (With Nix 2.17 or later the volume may be mounted read-only: add\n\
                 \x20  `&read-only=true` to the store and `--extra-experimental-features\n\
                 \x20  read-only-local-store`.) Then run it as `{path}/bin/lifeboat`.\n",
                device = device.display(),
                uri = store.uri(),
                path = path.display(),
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "2. Get lifeboat: `nix run <lifeboat's flake> -- recover`, or the binary you keep.\n"
            );
        }
    }
    let _ = writeln!(
        out,
        "3. Recover: `lifeboat recover` (it reads the card on the volume: no config file is\n\
         \x20  needed). It shows every change before it makes it; run it again after any\n\
         \x20  interruption.\n\
         4. After the reboot: `lifeboat verify`.\n\n\
         ## By hand, without lifeboat\n\n\
         \x20      mount {by_id} {mount}\n\
         \x20      git clone -b {branch} {url} /etc/nixos\n\
         \x20      nixos-generate-config --show-hardware-config > /etc/nixos/hardware-configuration.nix\n\
         \x20      nixos-rebuild boot --flake /etc/nixos#{flake_host}\n\
         \x20      reboot\n\n\
         Check that `hardware-configuration.nix` does not declare `{mount}` itself. Never\n\
         `nixos-rebuild switch` on the fresh VPS: it mounts the volume and binds its store over\n\
         /nix in the middle of the switch, hiding the system it has just built.",
        mount = mount.display(),
        branch = repo.branch,
        url = repo.url,
        flake_host = repo.flake_host,
    );
    out
}

/// The device holding the Nix store and the store as seen once it is mounted at [`MOUNT`].
/// What predestroy's rehearsal proved, or that it did not run with this card.
fn rehearsal_line(card: &RecoveryCard) -> String {
    match &card.rehearsal {
        Some(rehearsed) => format!(
            "- Rehearsed: commit `{}` evaluated on this machine, with its hardware \
             configuration, to `{}`: a system that mounts the volume at boot.",
            rehearsed.commit, rehearsed.drv_path
        ),
        None => "- Not rehearsed: the configuration was not evaluated before this card was \
                 written; recover checks it on the fresh VPS."
            .into(),
    }
}

fn store_on_volume(cfg: &Config) -> Option<(PathBuf, VolumeStore)> {
    let place = cfg.store_place()?;
    Some((
        place.volume().device.clone(),
        VolumeStore::new(place.nix_dir(Path::new(MOUNT))),
    ))
}

/// The store path lifeboat runs from (`/nix/store/<hash>-lifeboat-…`), when it runs from a
/// Nix store: the fresh VPS can take it from the volume's store.
pub fn own_store_path(exe: &Path) -> Option<PathBuf> {
    let rest = exe.strip_prefix("/nix/store/").ok()?;
    let name = rest.components().next()?;
    Some(Path::new("/nix/store").join(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::contents::{CardRehearsal, example};
    use crate::config::VolumeConfig;

    #[test]
    fn the_sheet_names_this_machines_volume_commit_host_and_uid() {
        let mut card = example();
        card.lifeboat_store_path =
            Some("/nix/store/0123456789abcdfghijklmnpqrsvwxyz-lifeboat-0.1.0".into());
        let cfg = Config {
            user: Some("qwe".into()),
            volumes: vec![VolumeConfig {
                device: card.volumes[0].device.clone(),
                mount: "/home".into(),
                fs_type: "ext4".into(),
            }],
            ..Config::default()
        };
        let text = sheet(&card, &cfg);
        for expected in [
            "/dev/disk/by-id/scsi-0HC_Volume_103912881",
            "0123456789abcdef0123456789abcdef01234567",
            "host `devserver`",
            "uid 1000",
            "--from 'local?root=/mnt/lifeboat-volume/qwe' /nix/store/0123456789abcdfghijklmnpqrsvwxyz-lifeboat-0.1.0",
            "nixos-rebuild boot --flake /etc/nixos#devserver",
        ] {
            assert!(text.contains(expected), "{expected:?} not in:\n{text}");
        }
        assert!(text.contains("- Not rehearsed"), "{text}");
        card.lifeboat_store_path = None;
        card.rehearsal = Some(CardRehearsal {
            commit: card.repository.commit.clone(),
            host: "devserver".into(),
            drv_path: "/nix/store/x-nixos-system-devserver-25.11.drv".into(),
        });
        let text = sheet(&card, &cfg);
        assert!(text.contains("nix run"));
        assert!(
            text.contains("/nix/store/x-nixos-system-devserver-25.11.drv`: a system that mounts"),
            "{text}"
        );
    }

    #[test]
    fn only_a_binary_in_the_store_has_a_store_path() {
        assert_eq!(
            own_store_path(Path::new("/nix/store/abc-lifeboat-0.1.0/bin/lifeboat")),
            Some("/nix/store/abc-lifeboat-0.1.0".into())
        );
        assert_eq!(own_store_path(Path::new("/usr/local/bin/lifeboat")), None);
    }
}
