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
use nixos_lifeboat::config::Config;
use nixos_lifeboat::marker::PersistenceMarker;
use nixos_lifeboat::sandbox::VolumeSpec;
use nixos_lifeboat::steps::host_identity;
use serde_json::Value;

use crate::support::{self, TestSandbox, lifeboat_bin, require_private_mount_namespace, sh};

/// The running system's store path, in the volume's store.
pub const SYSTEM: &str = "0123456789abcdfghijklmnpqrsvwxyz-nixos-system-devserver-25.11";
/// The dead machine's last system, which [`VerifiedMachine::add_gone_generation`] adds.
pub const OLD_SYSTEM: &str = "zyxwvsrqpnmlkjihgfdcba9876543210-nixos-system-devserver-25.05";
/// The root filesystems the two systems' fstabs name: this machine's, and one that is gone.
const ROOT: &str = "/dev/disk/by-uuid/849b340d-b31e-4604-b2eb-bd8422c06919";
const GONE_ROOT: &str = "/dev/disk/by-uuid/00000000-0000-4000-8000-00000000dead";

/// Shell lines making system `name` in the store at `nix`: its `etc/fstab` mounting `/` from
/// `root`, and a `bin/switch-to-configuration` that records its arguments in `calls`.
fn system_script(nix: &str, name: &str, root: &str, calls: &Path) -> String {
    let system = format!("{nix}/store/{name}");
    format!(
        "mkdir -p {system}/etc {system}/bin\n\
         printf '# This is a generated file.  Do not edit!\\n{root} / ext4 defaults 0 1\\n' \
         >{system}/etc/fstab\n\
         printf '#!/bin/sh\\necho \"switch-to-configuration $*\" >>{calls}\\n' \
         >{system}/bin/switch-to-configuration\n\
         chmod +x {system}/bin/switch-to-configuration\n",
        calls = calls.display()
    )
}

/// A practice volume with what predestroy leaves on it: a card, a marker, a system closure.
pub struct VerifiedMachine {
    pub sandbox: TestSandbox,
    /// Where the volume is mounted (empty until a run's namespace mounts it).
    pub home: PathBuf,
    /// Where the store on the volume is bound.
    pub nix: PathBuf,
    /// The machine's root disk (`[host].root`), with the old machine's identity restored:
    /// the host keys, id maps and PostgreSQL data predestroy saved on the volume.
    pub root: PathBuf,
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
        // The old machine's identity, saved as predestroy saves it and already back on this
        // machine's root disk, as recover leaves it.
        let root = support::root_disk::make(&sandbox.dir.join("root-disk"), "old", 1000);
        let mut old = Config::default();
        old.host.root = root.clone();
        old.host.carry = vec!["/var/lib/postgresql".into()];
        let saved = host_identity::save::save(
            &old,
            &host_identity::carried(&old),
            &payload.join(host_identity::SAVED_DIR),
        )
        .unwrap_or_else(|failed| panic!("{}: {}", failed.path.display(), failed.error));
        let mut card = card(&sandbox, mount, card_nonce.unwrap_or(&marker.nonce));
        card.saved = saved.entries;
        fs::write(lifeboat_dir.join("recovery.toml"), card.to_toml().unwrap()).unwrap();
        let staging = sandbox.dir.join("rw");
        fs::create_dir(&staging).unwrap();
        let calls = sandbox.dir.join("calls.log");
        let nix_dir = format!("{}/qwe/nix", staging.display());
        let script = format!(
            "mount {dev} {rw}\ncp -a {payload}/qwe/.lifeboat {rw}/qwe/\n\
             cp -a {payload}/{saved} {rw}/\n{system}\
             mkdir -p {nix_dir}/var/nix/profiles\n\
             ln -s /nix/store/{SYSTEM} {nix_dir}/var/nix/profiles/system-1-link\n\
             ln -s system-1-link {nix_dir}/var/nix/profiles/system\numount {rw}",
            dev = sandbox.loop_device.display(),
            rw = staging.display(),
            payload = payload.display(),
            saved = host_identity::SAVED_DIR,
            system = system_script(&nix_dir, SYSTEM, ROOT, &calls),
        );
        sh(&format!(
            "unshare -m --propagation private sh -ec {}",
            support::quote(&script)
        ));
        VerifiedMachine {
            sandbox,
            home,
            nix,
            root,
        }
    }

    /// Give the volume's system profile the dead machine's last system as its generation 1,
    /// the running one as 2 (as recover leaves the profile).
    pub fn add_gone_generation(&self) {
        let staging = self.sandbox.dir.join("rw");
        let nix_dir = format!("{}/qwe/nix", staging.display());
        let profiles = format!("{nix_dir}/var/nix/profiles");
        let script = format!(
            "mount {dev} {rw}\n{system}\
             mv {profiles}/system-1-link {profiles}/system-2-link\n\
             ln -s /nix/store/{OLD_SYSTEM} {profiles}/system-1-link\n\
             ln -sfn system-2-link {profiles}/system\numount {rw}",
            dev = self.sandbox.loop_device.display(),
            rw = staging.display(),
            system = system_script(&nix_dir, OLD_SYSTEM, GONE_ROOT, &self.calls_log()),
        );
        sh(&format!(
            "unshare -m --propagation private sh -ec {}",
            support::quote(&script)
        ));
    }

    /// Where the systems' `switch-to-configuration` records its calls.
    pub fn calls_log(&self) -> PathBuf {
        self.sandbox.dir.join("calls.log")
    }

    /// Write a config of `body` and the machine's state directory; its path.
    pub fn config(&self, body: &str) -> PathBuf {
        let path = self.sandbox.dir.join("verify.toml");
        let text = format!(
            "{body}\n[state]\ndir = \"{}\"\n\n[host]\nroot = \"{}\"\n",
            self.sandbox.state_dir.display(),
            self.root.display()
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
        self.verify_with(config, passwd_uid, setup, "")
    }

    /// [`Self::verify`] with more arguments (`--yes`).
    pub fn verify_with(
        &self,
        config: &Path,
        passwd_uid: u32,
        setup: &str,
        args: &str,
    ) -> (i32, Vec<Value>) {
        let run = format!(
            "exec {bin} -c {config} verify --json {args}",
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
        saved: Vec::new(),
        lifeboat_store_path: None,
        network: None,
        persistence_nonce: Some(nonce.to_string()),
        rehearsal: None,
    }
}
