//! `lifeboat verify` on a machine as it looks after the reboot (tests/support/verified_machine.rs):
//! the volume (a real loop device) mounted at a home, the store bound from it, a user
//! database and a `/run/current-system`, each run in a mount namespace of its own.

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

mod support;
#[path = "support/verified_machine.rs"]
mod verified_machine;

use std::path::Path;

use serde_json::Value;
use support::{mounts_under, sha256_file};
use verified_machine::VerifiedMachine;

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
    let machine = VerifiedMachine::new(None, "/unused");
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
    let identity = message_of(&events, "host-identity");
    assert!(
        identity.contains("2 host key(s) are the old machine's"),
        "{identity}"
    );
    assert!(
        identity.contains("came from the restored id map"),
        "{identity}"
    );
}

/// A host key that is not the old machine's (sshd made a new one) and carried data that
/// came back with another owner are caught, each named.
#[test]
fn a_new_host_key_and_carried_data_with_another_owner_are_caught() {
    let machine = VerifiedMachine::new(None, "/unused");
    let key = machine.root.join(support::root_disk::HOST_KEYS[0]);
    std::fs::remove_file(&key).unwrap();
    std::fs::remove_file(format!("{}.pub", key.display())).unwrap();
    support::sh(&format!(
        "ssh-keygen -q -t ed25519 -N '' -f {0} && chown -R 0:0 {1}",
        key.display(),
        machine.root.join("var/lib/postgresql").display()
    ));
    let setup = machine.mounts(&machine.home, &machine.nix);
    let (code, events) = machine.verify(&machine.full_config(), 1000, &setup);
    assert_eq!(code, 1, "{events:#?}");
    assert_eq!(status_of(&events, "host-identity"), "failed");
    let message = message_of(&events, "host-identity");
    assert!(
        message.contains("the host key /etc/ssh/ssh_host_ed25519_key is SHA256:"),
        "{message}"
    );
    assert!(message.contains("not the old machine's"), "{message}");
    assert!(
        message.contains("/var/lib/postgresql belongs to 0:0"),
        "{message}"
    );
}

#[test]
fn an_unbound_nix_a_changed_uid_and_a_home_on_the_root_disk_are_caught() {
    let machine = VerifiedMachine::new(None, "/unused");
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
    let machine = VerifiedMachine::new(Some("deadbeef"), "/unused");
    let setup = machine.mounts(&machine.home, &machine.nix);
    let (code, events) = machine.verify(&machine.full_config(), 1000, &setup);
    assert_eq!(code, 1);
    assert_eq!(status_of(&events, "persistence-marker"), "failed");
    assert!(message_of(&events, "persistence-marker").contains("deadbeef"));
}

#[test]
fn without_a_config_the_recovery_card_on_home_says_what_to_check() {
    let machine = VerifiedMachine::new(None, "/home");
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

/// A profile that still holds the dead machine's generation: listed, and deleted (with the
/// boot menu rewritten) once confirmed; the running generation stays.
#[test]
fn a_generation_of_the_machine_that_is_gone_is_listed_and_deleted_on_confirmation() {
    let machine = VerifiedMachine::new(None, "/unused");
    machine.add_gone_generation();
    let config = machine.full_config();
    let setup = machine.mounts(&machine.home, &machine.nix);
    let (code, events) = machine.verify(&config, 1000, &setup);
    assert_eq!(code, 4, "{events:#?}");
    let said = events.iter().any(|e| {
        e["step"] == "generations"
            && e["line"].as_str().is_some_and(|l| {
                l.contains("generation 1 (its root filesystem /dev/disk/by-uuid/00000000-")
                    && l.contains("built for the machine that is gone")
                    && l.contains("the running system is generation 2, the newest")
            })
    });
    assert!(said, "{events:#?}");
    assert!(!machine.calls_log().exists());

    // Confirmed: nix-env deletes generation 1 (a store of the run's own stands in for /nix:
    // nix-env opens one), the running system rewrites the boot menu.
    let own_store = machine.sandbox.dir.join("own-nix");
    std::fs::create_dir_all(&own_store).unwrap();
    let writable = format!(
        "mount --bind {own} /nix\nmount {dev} {home}\nmount --bind {home}/qwe/nix {nix}\n\
         ln -sfn {nix}/store/{system} /run/current-system",
        own = own_store.display(),
        dev = machine.sandbox.loop_device.display(),
        home = machine.home.display(),
        nix = machine.nix.display(),
        system = verified_machine::SYSTEM,
    );
    let (code, events) = machine.verify_with(&config, 1000, &writable, "--yes");
    assert_eq!(code, 0, "{events:#?}");
    let message = message_of(&events, "generations");
    assert!(
        message.contains("deleted generation 1") && message.contains("rewrote the boot menu"),
        "{message}"
    );
    assert_eq!(
        std::fs::read_to_string(machine.calls_log()).unwrap(),
        "switch-to-configuration boot\n"
    );
    let (code, events) = machine.verify(&config, 1000, &setup);
    assert_eq!(code, 0, "{events:#?}");
    assert!(
        message_of(&events, "generations").contains("no generation is built for another machine")
    );
}
