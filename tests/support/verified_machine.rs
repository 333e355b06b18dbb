//! The `lifeboat verify` test scenario: a machine as it looks after the reboot. A practice
//! volume (a real loop device) holds what predestroy leaves on it (a recovery card, a
//! persistence marker, a system closure in the store); a run mounts it at a home and binds
//! the store from it, as NixOS would. Every run happens in a mount namespace of its own
//! (`unshare -m`), where the machine's own `/etc/passwd` and `/run` are bound without
//! touching the host. Include it next to `mod support;` with
//! `#[path = "support/verified_machine.rs"] mod verified_machine;`.

// Every test binary compiles this module for itself and uses only part of it.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use nixos_lifeboat::card::{CardNixStore, CardRepository, CardVolume, FORMAT, RecoveryCard};
use nixos_lifeboat::marker::PersistenceMarker;
use nixos_lifeboat::sandbox::VolumeSpec;
use serde_json::Value;

use crate::support::{TestSandbox, lifeboat_bin, require_private_mount_namespace, sh};

/// The running system's store path, in the volume's store.
pub const SYSTEM: &str = "0123456789abcdfghijklmnpqrsvwxyz-nixos-system-devserver-25.11";

/// A practice volume with what predestroy leaves on it: a card, a marker, a system closure.
pub struct VerifiedMachine {
    pub sandbox: TestSandbox,
    /// Where the volume is mounted (empty until a run's namespace mounts it).
    pub home: PathBuf,
    /// Where the store on the volume is bound.
    pub nix: PathBuf,
}

impl VerifiedMachine {
    /// The machine; the card records `card_nonce` (the marker's own nonce when `None`) and
    /// the volume's mount point `mount`.
    pub fn new(card_nonce: Option<&str>, mount: &str) -> VerifiedMachine {
        require_private_mount_namespace();
        let sandbox = TestSandbox::new(&VolumeSpec::default());
        let home = sandbox.dir.join("home");
        let nix = sandbox.dir.join("nix");
        fs::create_dir_all(&home).unwrap();
        fs::create_dir_all(&nix).unwrap();
        // What predestroy leaves on the volume, copied on in a namespace of its own: a
        // read-write mount visible here could be copied into a parallel test's namespace and
        // keep the filesystem busy there.
        let payload = sandbox.dir.join("payload");
        let lifeboat_dir = payload.join("qwe/.lifeboat");
        fs::create_dir_all(&lifeboat_dir).unwrap();
        let marker = PersistenceMarker::new("oldserver").unwrap();
        fs::write(
            lifeboat_dir.join("persistence-marker"),
            marker.to_toml().unwrap(),
        )
        .unwrap();
        let card = card(&sandbox, mount, card_nonce.unwrap_or(&marker.nonce));
        fs::write(lifeboat_dir.join("recovery.toml"), card.to_toml().unwrap()).unwrap();
        let staging = sandbox.dir.join("rw");
        fs::create_dir(&staging).unwrap();
        let script = format!(
            "mount {dev} {rw}; cp -a {payload}/qwe/.lifeboat {rw}/qwe/; \
             mkdir {rw}/qwe/nix/store/{SYSTEM}; umount {rw}",
            dev = sandbox.loop_device.display(),
            rw = staging.display(),
            payload = payload.display()
        );
        sh(&format!(
            "unshare -m --propagation private sh -ec '{script}'"
        ));
        VerifiedMachine { sandbox, home, nix }
    }

    /// Write a config of `body` and the machine's state directory; its path.
    pub fn config(&self, body: &str) -> PathBuf {
        let path = self.sandbox.dir.join("verify.toml");
        let text = format!(
            "{body}\n[state]\ndir = \"{}\"\n",
            self.sandbox.state_dir.display()
        );
        fs::write(&path, text).unwrap();
        path
    }

    /// A config naming the user, the volume at [`Self::home`] and the store at [`Self::nix`].
    pub fn full_config(&self) -> PathBuf {
        self.config(&format!(
            "user = \"qwe\"\nuid = 1000\n[[volume]]\ndevice = \"{}\"\nmount = \"{}\"\n\
             [nix_store]\nsource = \"{}/qwe/nix\"\ntarget = \"{}\"",
            self.sandbox.by_id_link.display(),
            self.home.display(),
            self.home.display(),
            self.nix.display()
        ))
    }

    /// `sh -ec` in a mount namespace of its own, with the machine's `/etc/passwd` (giving
    /// qwe `passwd_uid`) and `/run` bound, then `setup`, then `script`.
    pub fn namespace_command(&self, passwd_uid: u32, setup: &str, script: &str) -> Command {
        let passwd = self.sandbox.dir.join("passwd");
        fs::write(
            &passwd,
            format!("root:x:0:0:root:/root:/bin/sh\nqwe:x:{passwd_uid}:100::/home/qwe:/bin/sh\n"),
        )
        .unwrap();
        let run = self.sandbox.dir.join("run");
        fs::create_dir_all(&run).unwrap();
        let script = format!(
            "mount --bind {passwd} /etc/passwd\nmount --bind {run} /run\n{setup}\n{script}",
            passwd = passwd.display(),
            run = run.display(),
        );
        let mut command = Command::new("unshare");
        command.args(["-m", "--propagation", "private", "sh", "-ec", &script]);
        command
    }

    /// Run `lifeboat verify --json` in a namespace of its own, after `setup` (shell).
    pub fn verify(&self, config: &Path, passwd_uid: u32, setup: &str) -> (i32, Vec<Value>) {
        let run = format!(
            "exec {bin} -c {config} verify --json",
            bin = lifeboat_bin().display(),
            config = config.display(),
        );
        let out = self
            .namespace_command(passwd_uid, setup, &run)
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(
            !stdout.is_empty(),
            "no events: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let events = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (out.status.code().unwrap(), events)
    }

    /// Shell lines mounting the volume at `home`, binding its store at `nix` and pointing
    /// `/run/current-system` at the system in it, as NixOS would.
    pub fn mounts(&self, home: &Path, nix: &Path) -> String {
        format!(
            "mount -o ro,noload {dev} {home}\nmount --bind {home}/qwe/nix {nix}\n\
             ln -sfn {nix}/store/{SYSTEM} /run/current-system",
            dev = self.sandbox.loop_device.display(),
            home = home.display(),
            nix = nix.display()
        )
    }
}

/// The card predestroy would have written for the volume at `mount`.
fn card(sandbox: &TestSandbox, mount: &str, nonce: &str) -> RecoveryCard {
    RecoveryCard {
        format: FORMAT,
        written_at: "2026-11-26T09:00:00Z".into(),
        lifeboat_version: "0.1.0".into(),
        hostname: "oldserver".into(),
        nixos_version: None,
        user: "qwe".into(),
        uid: 1000,
        repository: CardRepository {
            url: "file:///srv/nixos-config.git".into(),
            branch: "main".into(),
            commit: "0".repeat(40),
            flake_host: "devserver".into(),
        },
        volumes: vec![CardVolume {
            device: sandbox.by_id_link.clone(),
            uuid: String::new(),
            mount: mount.into(),
            fs_type: "ext4".into(),
        }],
        nix_store: CardNixStore {
            source: Path::new(mount).join("qwe/nix"),
            target: "/nix".into(),
        },
        store: None,
        persistence_nonce: Some(nonce.to_string()),
    }
}
