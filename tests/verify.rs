//! `lifeboat verify` on a machine as it looks after the reboot: the volume (a real loop
//! device) mounted at a home, the store bound from it, a user database and a
//! `/run/current-system`. Each run happens in its own mount namespace (`unshare -m`), where
//! the test may bind its own `/etc/passwd` and `/run` without touching the host.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use nixos_lifeboat::card::{CardNixStore, CardRepository, CardVolume, FORMAT, RecoveryCard};
use nixos_lifeboat::marker::PersistenceMarker;
use nixos_lifeboat::sandbox::VolumeSpec;
use serde_json::Value;
use support::{
    TestSandbox, lifeboat_bin, mounts_under, require_private_mount_namespace, sha256_file,
};

const SYSTEM: &str = "0123456789abcdfghijklmnpqrsvwxyz-nixos-system-devserver-25.11";

/// A practice volume with what predestroy leaves on it: a card, a marker, a system closure.
struct Machine {
    sandbox: TestSandbox,
    home: PathBuf,
    nix: PathBuf,
}

fn sh(script: &str) {
    let out = Command::new("sh").arg("-ec").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Machine {
    fn new(card_nonce: Option<&str>, mount: &str) -> Machine {
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
        let card = RecoveryCard {
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
            persistence_nonce: Some(card_nonce.unwrap_or(&marker.nonce).to_string()),
        };
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
        Machine { sandbox, home, nix }
    }

    fn config(&self, body: &str) -> PathBuf {
        let path = self.sandbox.dir.join("verify.toml");
        let text = format!(
            "{body}\n[state]\ndir = \"{}\"\n",
            self.sandbox.state_dir.display()
        );
        fs::write(&path, text).unwrap();
        path
    }

    fn full_config(&self) -> PathBuf {
        self.config(&format!(
            "user = \"qwe\"\nuid = 1000\n[[volume]]\ndevice = \"{}\"\nmount = \"{}\"\n\
             [nix_store]\nsource = \"{}/qwe/nix\"\ntarget = \"{}\"",
            self.sandbox.by_id_link.display(),
            self.home.display(),
            self.home.display(),
            self.nix.display()
        ))
    }

    /// Run `lifeboat verify --json` in a namespace of its own, after `setup` (shell).
    fn verify(&self, config: &Path, passwd_uid: u32, setup: &str) -> (i32, Vec<Value>) {
        let passwd = self.sandbox.dir.join("passwd");
        fs::write(
            &passwd,
            format!("root:x:0:0:root:/root:/bin/sh\nqwe:x:{passwd_uid}:100::/home/qwe:/bin/sh\n"),
        )
        .unwrap();
        let run = self.sandbox.dir.join("run");
        fs::create_dir_all(&run).unwrap();
        let script = format!(
            "set -e\nmount --bind {passwd} /etc/passwd\nmount --bind {run} /run\n\
             {setup}\nexec {bin} -c {config} verify --json",
            passwd = passwd.display(),
            run = run.display(),
            bin = lifeboat_bin().display(),
            config = config.display(),
        );
        let out = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
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

    /// Mount the volume at the home and bind its store at `nix`, as NixOS would.
    fn mounts(&self, home: &Path, nix: &Path) -> String {
        format!(
            "mount -o ro,noload {dev} {home}\nmount --bind {home}/qwe/nix {nix}\n\
             ln -sfn {nix}/store/{SYSTEM} /run/current-system",
            dev = self.sandbox.loop_device.display(),
            home = home.display(),
            nix = nix.display()
        )
    }
}

fn statuses(events: &[Value]) -> Vec<(String, String)> {
    let summary = events.last().unwrap();
    assert_eq!(summary["event"], "summary");
    summary["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().into(),
                s["status"].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn status_of(events: &[Value], id: &str) -> String {
    statuses(events)
        .into_iter()
        .find(|(s, _)| s == id)
        .unwrap()
        .1
}

fn message_of(events: &[Value], id: &str) -> String {
    let summary = events.last().unwrap();
    let step = summary["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap();
    step["message"].as_str().unwrap().to_string()
}

#[test]
fn everything_came_back() {
    let machine = Machine::new(None, "/unused");
    let hash = sha256_file(&machine.sandbox.image);
    let setup = machine.mounts(&machine.home, &machine.nix);
    let (code, events) = machine.verify(&machine.full_config(), 1000, &setup);
    assert_eq!(code, 0, "{events:#?}");
    for (id, status) in statuses(&events) {
        assert_eq!(status, "passed", "{id}: {events:#?}");
    }
    assert_eq!(
        sha256_file(&machine.sandbox.image),
        hash,
        "verify wrote to the volume"
    );
    assert!(mounts_under(&machine.sandbox.dir).is_empty());
}

#[test]
fn an_unbound_nix_a_changed_uid_and_a_home_on_the_root_disk_are_caught() {
    let machine = Machine::new(None, "/unused");
    let only_home = format!(
        "mount -o ro,noload {} {}",
        machine.sandbox.loop_device.display(),
        machine.home.display()
    );
    let (code, events) = machine.verify(&machine.full_config(), 1001, &only_home);
    assert_eq!(code, 1);
    assert_eq!(status_of(&events, "home-mounted"), "passed");
    assert_eq!(status_of(&events, "nix-bound"), "failed");
    assert!(message_of(&events, "nix-bound").contains("not a mount point"));
    assert_eq!(status_of(&events, "owner-uid"), "failed");
    assert!(message_of(&events, "owner-uid").contains("uid 1000"));
    assert_eq!(status_of(&events, "persistence-marker"), "passed");

    let (code, events) = machine.verify(&machine.full_config(), 1000, "true");
    assert_eq!(code, 1);
    assert!(message_of(&events, "home-mounted").contains("not a mount point"));
    assert_eq!(status_of(&events, "owner-uid"), "skipped");
}

#[test]
fn a_marker_that_does_not_match_the_card_fails() {
    let machine = Machine::new(Some("deadbeef"), "/unused");
    let setup = machine.mounts(&machine.home, &machine.nix);
    let (code, events) = machine.verify(&machine.full_config(), 1000, &setup);
    assert_eq!(code, 1);
    assert_eq!(status_of(&events, "persistence-marker"), "failed");
    assert!(message_of(&events, "persistence-marker").contains("deadbeef"));
}

#[test]
fn without_a_config_the_recovery_card_on_home_says_what_to_check() {
    let machine = Machine::new(None, "/home");
    // In its own namespace the test may mount the volume over /home and bind /nix.
    let setup = machine.mounts(Path::new("/home"), Path::new("/nix"));
    let setup = format!("mkdir -p /nix\n{setup}");
    let (code, events) = machine.verify(&machine.config(""), 1000, &setup);
    assert_eq!(code, 0, "{events:#?}");
    let summary = events.last().unwrap();
    assert_eq!(summary["user"], "qwe");
    assert!(
        summary["recovery_card"]
            .as_str()
            .unwrap()
            .ends_with("qwe/.lifeboat/recovery.toml")
    );
}
