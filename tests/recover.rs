//! `lifeboat recover` on a fresh VPS (tests/support/fresh_vps.rs): a real loop-device
//! volume with a recovery card and a mirror, a bare git remote holding a self-contained
//! flake, real `nix eval`/`nix build`/`nix copy` in a store of the test's own, and
//! stand-ins for nixos-rebuild, nixos-generate-config and reboot.

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

#[path = "support/fresh_vps.rs"]
mod fresh_vps;
mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use fresh_vps::{
    FRESH_ROOT_UUID, FreshVps, FreshVpsOptions, OLD_ROOT_UUID, git, quote, step, summary,
};
use serde_json::Value;
use support::{mounts_under, sha256_file};

/// The store path name of the system the run built, from its summary.
fn built_system(events: &[Value]) -> String {
    let system = summary(events)["system"].as_str().expect("a built system");
    system.rsplit('/').next().unwrap().to_string()
}

fn rebuild_calls(vps: &FreshVps) -> Vec<String> {
    vps.calls()
        .into_iter()
        .filter(|c| c.contains("nixos-rebuild"))
        .collect()
}

/// Nothing of the machine changed: no clone, no tool ran, no mount left, the volume as it was.
fn assert_nothing_changed(vps: &FreshVps, hash: &str) {
    assert!(!vps.etc_nixos.exists(), "the config was cloned");
    assert!(rebuild_calls(vps).is_empty(), "{:?}", vps.calls());
    assert!(!vps.calls().iter().any(|c| c == "reboot"));
    assert_eq!(mounts_under(&vps.dir), Vec::<std::path::PathBuf>::new());
    assert_eq!(sha256_file(&vps.sandbox.image), hash);
}

/// The whole recovery with `--yes`: built from the volume's store, installed to boot, put in
/// the volume's profile, rebooted last; in either store layout.
fn a_full_recovery(store_volume: bool) {
    let vps = FreshVps::new(FreshVpsOptions {
        existing_etc_nixos: Some("{ imports = [ ./hardware-configuration.nix ]; }\n"),
        store_volume,
        ..FreshVpsOptions::default()
    });
    let (code, events) = vps.run(&["--yes"]);
    assert_eq!(code, 0, "{events:#?}\n{}", vps.stderr());

    // The path is a clone of the remote's branch head; what was there survives beside it.
    assert_eq!(git(&vps.etc_nixos, "rev-parse HEAD"), vps.remote_head());
    let siblings: Vec<String> = fs::read_dir(vps.etc_nixos.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("etc-nixos.before-lifeboat-"))
        .collect();
    assert_eq!(siblings.len(), 1, "{siblings:?}");
    let kept = vps
        .etc_nixos
        .parent()
        .unwrap()
        .join(&siblings[0])
        .join("configuration.nix");
    assert!(
        fs::read_to_string(kept)
            .unwrap()
            .contains("hardware-configuration.nix")
    );

    // hardware-configuration.nix: the generated text minus the dropped entries, staged.
    let hardware = fs::read_to_string(vps.etc_nixos.join("hardware-configuration.nix")).unwrap();
    let home = format!("fileSystems.\"{}\"", vps.home.display());
    let mnt = format!("fileSystems.\"{}\"", vps.mnt.display());
    assert!(
        !hardware.contains(&home) && !hardware.contains(&mnt),
        "{hardware}"
    );
    assert!(hardware.contains("fileSystems.\"/\""), "{hardware}");
    let capture = fs::read_to_string(&vps.hardware_capture).unwrap();
    assert!(capture.contains(&home) && capture.contains(&mnt));
    let staged = git(&vps.etc_nixos, "diff --cached --name-only");
    assert_eq!(staged, "hardware-configuration.nix");

    // nixos-rebuild ran build (fed by the volume's store) then boot with --flake
    // path#host, never switch; reboot ran once, last.
    let flake = format!("--flake {}#devserver", vps.etc_nixos.display());
    let rebuilds = rebuild_calls(&vps);
    assert_eq!(rebuilds.len(), 2, "{rebuilds:?}");
    assert!(
        rebuilds[0].starts_with("nixos-rebuild build ") && rebuilds[0].contains(&flake),
        "{rebuilds:?}"
    );
    assert!(
        rebuilds[0].contains("--option extra-substituters local?")
            && rebuilds[0].ends_with("&trusted=1"),
        "{rebuilds:?}"
    );
    let private = vps.state.join("volume");
    let substituter = if store_volume {
        format!(
            "local?real={0}/store&state={0}/var/nix&trusted=1",
            private.display()
        )
    } else {
        format!("local?root={}/qwe&trusted=1", private.display())
    };
    assert!(rebuilds[0].contains(&substituter), "{rebuilds:?}");
    assert_eq!(rebuilds[1], format!("nixos-rebuild boot {flake}"));
    assert!(!vps.calls().iter().any(|c| c.contains(" switch ")));
    let calls = vps.calls();
    assert_eq!(
        calls.last().map(String::as_str),
        Some("reboot"),
        "{calls:?}"
    );
    assert_eq!(calls.iter().filter(|c| *c == "reboot").count(), 1);

    // Nothing the old machine built was built again, nothing downloaded: the expensive
    // derivation was built once, by the old machine.
    assert_eq!(vps.expensive_builds(), 1, "{events:#?}");
    let build = &summary(&events)["build"];
    assert!(
        build["from_volume"]["paths"].as_u64().unwrap() > 0,
        "{build}"
    );
    // Nix reports no bytes for a local copy: they are the copied paths' NAR sizes.
    assert!(
        build["from_volume"]["bytes"].as_u64().unwrap() > 400 * 1024,
        "{build}"
    );
    assert_eq!(build["downloaded"]["paths"], 0, "{build}");
    let (status, message) = step(&events, "build");
    assert_eq!(status, "passed", "{message}");
    assert!(
        message.contains("paths from the volume's store"),
        "{message}"
    );

    // The old machine's identity is back: its host keys byte for byte, private to root (the
    // fresh machine's moved aside), its ids for the names this machine had not given one,
    // the carried PostgreSQL data with its owner.
    let (status, message) = step(&events, "restore-host-identity");
    assert_eq!(status, "passed", "{message}");
    assert!(message.contains("qwe: uid 1000"), "{message}");
    for key in support::root_disk::HOST_KEYS {
        let (old, here) = (vps.old_root.join(key), vps.root.join(key));
        assert_eq!(fs::read(&here).unwrap(), fs::read(&old).unwrap(), "{key}");
        assert_eq!(fs::metadata(&here).unwrap().mode() & 0o7777, 0o600, "{key}");
        let public = format!("{key}.pub");
        assert_eq!(
            fs::read(vps.root.join(&public)).unwrap(),
            fs::read(vps.old_root.join(&public)).unwrap()
        );
        let name = here.file_name().unwrap().to_string_lossy().into_owned();
        let asides = fs::read_dir(here.parent().unwrap())
            .unwrap()
            .filter(|e| {
                let file = e.as_ref().unwrap().file_name();
                file.to_string_lossy()
                    .starts_with(&format!("{name}.before-lifeboat-"))
            })
            .count();
        assert_eq!(asides, 1, "the fresh {key} moved aside");
    }
    // An sshd on the restored key shows clients the old machine's fingerprint.
    let sshd = support::sshd::Sshd::start_with_host_key_files(&[vps
        .root
        .join(support::root_disk::HOST_KEYS[0])]);
    let scanned = support::sh(&format!(
        "ssh-keyscan -t ed25519 -p {} 127.0.0.1 2>/dev/null | ssh-keygen -lf -",
        sshd.port
    ));
    let old_fingerprint =
        support::sshd::fingerprint(&vps.old_root.join(support::root_disk::HOST_KEYS[0]));
    assert!(
        scanned.contains(&old_fingerprint),
        "{scanned} vs {old_fingerprint}"
    );
    drop(sshd);
    let uid_map = fs::read_to_string(vps.root.join("var/lib/nixos/uid-map")).unwrap();
    assert!(uid_map.contains("\"qwe\":1000"), "{uid_map}");
    let data = vps.root.join("var/lib/postgresql/16/base/1/1259");
    let meta = fs::metadata(&data).unwrap();
    assert_eq!(meta.uid(), support::root_disk::POSTGRES_UID);
    assert_eq!(fs::read(&data).unwrap().len(), 64 * 1024);

    // The old system's closure was copied from the volume's store before the build, all
    // of it in one `nix copy` (the substituter alone would never copy the old system
    // itself, which the new one does not need).
    let old = vps.old_system();
    let fetched_old = format!("copying {} from the volume's store", old.display());
    let fetched = events
        .iter()
        .any(|e| e["event"] == "output" && e["step"] == "build" && e["line"] == fetched_old);
    assert!(fetched, "{events:#?}");

    // What changes from the old system to the new was shown before the boot entry.
    assert_eq!(summary(&events)["old_system"], old.display().to_string());
    let diff_shown = events.iter().any(|e| {
        e["event"] == "output"
            && e["step"] == "boot"
            && e["line"]
                .as_str()
                .is_some_and(|l| l.contains("nixos-system-devserver"))
    });
    assert!(diff_shown, "{events:#?}");

    // The system closure is in the volume's store, the newest generation of its profile;
    // the old machine's generation is still there.
    let system = built_system(&events);
    assert!(vps.in_volume_store(&system));
    assert!(system.ends_with(&vps.system_name()));
    let (status, _) = step(&events, "closure-on-volume");
    assert_eq!(status, "passed");
    let (generations, current) = vps.volume_profile();
    assert_eq!(generations.len(), 2, "{generations:?}");
    assert_eq!(generations[0].1, old.display().to_string());
    assert!(generations[1].1.ends_with(&system), "{generations:?}");
    assert_eq!(current, Some(generations[1].0));
    assert_eq!(summary(&events)["generation"], generations[1].0);
    assert_eq!(summary(&events)["recovery_card"], true);
    let durations = summary(&events)["steps"].as_array().unwrap();
    assert!(durations.iter().all(|s| s["duration_ms"].is_u64()));
    assert!(summary(&events)["duration_ms"].is_u64());
    assert_eq!(mounts_under(&vps.dir), Vec::<std::path::PathBuf>::new());
}

#[test]
fn a_full_recovery_builds_from_the_volumes_store_installs_to_boot_and_reboots_last() {
    a_full_recovery(false);
}

/// The seed's "Multiple Volumes": the store on a second volume, mounted at /nix.
#[test]
fn a_full_recovery_with_the_store_on_a_volume_of_its_own() {
    a_full_recovery(true);
}

#[test]
fn without_yes_it_stops_at_the_first_change_and_changes_nothing() {
    let vps = FreshVps::new(FreshVpsOptions::default());
    let hash = sha256_file(&vps.sandbox.image);
    let (code, events) = vps.run(&[]);
    assert_eq!(code, 4, "{events:#?}");
    assert_eq!(step(&events, "clone-config").0, "skipped");
    assert!(step(&events, "clone-config").1.contains("not confirmed"));
    assert_eq!(step(&events, "build").0, "skipped");
    assert_nothing_changed(&vps, &hash);
}

#[test]
fn dry_run_prints_every_action_and_changes_nothing() {
    let vps = FreshVps::new(FreshVpsOptions::default());
    let hash = sha256_file(&vps.sandbox.image);
    let (code, events) = vps.run(&["--dry-run", "--yes"]);
    assert_eq!(code, 0, "{events:#?}");
    let plan = &events[0];
    assert_eq!(plan["event"], "plan");
    let text = plan.to_string();
    for expected in [
        "\"kind\":\"mount\"",
        "\"op\":\"clone\"",
        "--show-hardware-config",
        "\"build\"",
        "\"boot\"",
        "\"copy\"",
        "extra-substituters",
        "/bin/reboot",
    ] {
        assert!(
            text.contains(expected),
            "{expected} not in the plan: {text}"
        );
    }
    assert!(
        step(&events, "inspect-volume")
            .1
            .starts_with("dry run: would mount")
    );
    assert_eq!(step(&events, "clone-config").0, "skipped");
    assert_nothing_changed(&vps, &hash);
}

/// Each blocker is refused with exit 3 before anything is built.
fn refused_before_build(options: FreshVpsOptions, expected: &[&str]) {
    let vps = FreshVps::new(options);
    let (code, events) = vps.run(&["--yes"]);
    assert_eq!(code, 3, "{events:#?}\n{}", vps.stderr());
    let (status, message) = step(&events, "boot-safety");
    assert_eq!(status, "refused");
    for text in expected {
        assert!(message.contains(text), "{text} not in: {message}");
    }
    assert!(
        rebuild_calls(&vps).is_empty(),
        "built anyway: {:?}",
        vps.calls()
    );
}

#[test]
fn a_home_not_mounted_in_stage_1_is_refused_with_the_line_to_add() {
    refused_before_build(
        FreshVpsOptions {
            needed_for_boot: false,
            ..FreshVpsOptions::default()
        },
        &["stage 1", "neededForBoot = true;"],
    );
}

#[test]
fn a_nix_that_is_not_a_bind_of_the_volume_is_refused() {
    refused_before_build(
        FreshVpsOptions {
            nix_bind: false,
            ..FreshVpsOptions::default()
        },
        &["bind"],
    );
}

#[test]
fn a_uid_that_does_not_own_the_home_is_refused() {
    refused_before_build(
        FreshVpsOptions {
            flake_uid: 1001,
            ..FreshVpsOptions::default()
        },
        &["uid 1001", "users.users.qwe.uid = 1000;"],
    );
}

/// boot-safety reads every fact it judges from one `nix eval` of the flake.
#[test]
fn boot_safety_evaluates_the_flake_once() {
    let vps = FreshVps::new(FreshVpsOptions::default());
    let evals = vps.dir.join("nix-evals.log");
    let wrapper = vps.dir.join("nix-counting");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif [ \"$1\" = eval ]; then echo \"$1 $5 $6\" >> {}; fi\nexec nix \"$@\"\n",
            quote(&evals.to_string_lossy())
        ),
    )
    .unwrap();
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    let config = vps.config();
    let text = fs::read_to_string(&config).unwrap().replace(
        "nix = [\"nix\"]",
        &format!("nix = [\"{}\"]", wrapper.display()),
    );
    fs::write(&config, text).unwrap();
    let (code, events) = vps.run_with(&config, &["--yes"]);
    assert_eq!(code, 0, "{events:#?}\n{}", vps.stderr());
    assert_eq!(step(&events, "boot-safety").0, "passed");
    let calls = fs::read_to_string(&evals).unwrap();
    assert_eq!(calls.lines().count(), 1, "{calls}");
    assert!(calls.contains("#nixosConfigurations --apply"), "{calls}");
}

/// A root pinned to the dead machine's disk, and a `/boot` by a label this machine lacks,
/// are refused with the file and line that set them and this machine's disks; a missing
/// device marked `nofail` is not.
#[test]
fn a_root_on_the_dead_disks_uuid_is_refused_with_where_it_is_set() {
    let vps = FreshVps::new(FreshVpsOptions::default());
    let original = fs::read_to_string(vps.author.join("configuration.nix")).unwrap();
    let pinned = original.replacen(
        "  users.users.qwe",
        &format!(
            "  fileSystems.\"/\" = {{ device = \"/dev/disk/by-uuid/{OLD_ROOT_UUID}\"; fsType = \"ext4\"; }};\n\
             \x20 fileSystems.\"/boot\" = {{ label = \"OLDBOOT\"; fsType = \"vfat\"; }};\n\
             \x20 fileSystems.\"/backup\" = {{ device = \"/dev/disk/by-label/gone\"; fsType = \"ext4\"; options = [ \"nofail\" ]; }};\n\
             \x20 users.users.qwe"
        ),
        1,
    );
    let line = |needle: &str| pinned.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let (root_line, boot_line) = (line("fileSystems.\"/\""), line("fileSystems.\"/boot\""));
    vps.push_file("configuration.nix", &pinned);
    let (code, events) = vps.run(&["--yes"]);
    assert_eq!(code, 3, "{events:#?}\n{}", vps.stderr());
    let (status, message) = step(&events, "boot-safety");
    assert_eq!(status, "refused");
    for expected in [
        format!("fileSystems.\"/\" mounts /dev/disk/by-uuid/{OLD_ROOT_UUID}"),
        format!("configuration.nix:{root_line}"),
        format!("/dev/disk/by-uuid/{FRESH_ROOT_UUID}"),
        "emergency shell".to_string(),
        "fileSystems.\"/boot\" mounts /dev/disk/by-label/OLDBOOT".to_string(),
        format!("configuration.nix:{boot_line}"),
    ] {
        assert!(message.contains(&expected), "{expected} not in: {message}");
    }
    assert!(!message.contains("/backup"), "{message}");
    assert!(rebuild_calls(&vps).is_empty(), "{:?}", vps.calls());
}

#[test]
fn a_host_the_flake_lacks_is_refused_with_the_hosts_it_has() {
    let vps = FreshVps::new(FreshVpsOptions::default());
    let config = vps.config();
    let text = fs::read_to_string(&config)
        .unwrap()
        .replace("flake_host = \"devserver\"", "flake_host = \"oldname\"");
    fs::write(&config, text).unwrap();
    let (code, events) = vps.run_with(&config, &["--yes"]);
    assert_eq!(code, 3, "{events:#?}");
    let message = step(&events, "boot-safety").1;
    assert!(
        message.contains("no host oldname") && message.contains("devserver"),
        "{message}"
    );
}

#[test]
fn a_volume_with_a_new_device_path_gets_its_device_rewritten_and_committed() {
    let vps = FreshVps::new(FreshVpsOptions {
        flake_device: Some("/dev/disk/by-id/scsi-0HC_Volume_999999".into()),
        ..FreshVpsOptions::default()
    });
    let (code, events) = vps.run(&["--yes"]);
    assert_eq!(code, 0, "{events:#?}\n{}", vps.stderr());
    let configuration = fs::read_to_string(vps.etc_nixos.join("configuration.nix")).unwrap();
    assert!(!configuration.contains("scsi-0HC_Volume_999999"));
    assert!(configuration.contains(&vps.device.display().to_string()));
    let log = git(&vps.etc_nixos, "log -1 --format=%s");
    assert!(log.contains("from the attached volume"), "{log}");
}

#[test]
fn a_build_failure_is_explained_and_nothing_is_installed_to_boot() {
    let vps = FreshVps::new(FreshVpsOptions::default());
    vps.set_exit("build", 100);
    let (code, events) = vps.run(&["--yes"]);
    assert_eq!(code, 1);
    let (status, message) = step(&events, "build");
    assert_eq!(status, "failed");
    assert!(message.contains("exit status 100"), "{message}");
    assert!(
        message.contains("Nothing was installed to boot"),
        "{message}"
    );
    assert_eq!(step(&events, "boot").0, "skipped");
    assert_eq!(mounts_under(&vps.dir), Vec::<std::path::PathBuf>::new());
}

#[test]
fn a_boot_that_fails_stops_before_the_reboot_with_the_profile_untouched() {
    let vps = FreshVps::new(FreshVpsOptions::default());
    vps.set_exit("boot", 1);
    let (code, events) = vps.run(&["--yes"]);
    assert_eq!(code, 1);
    let (status, message) = step(&events, "boot");
    assert_eq!(status, "failed");
    assert!(
        message.contains("installing it to boot failed"),
        "{message}"
    );
    assert_eq!(step(&events, "reboot").0, "skipped");
    assert!(!vps.calls().iter().any(|c| c == "reboot"));
    // The system is on the volume already (the copy comes first); the profile still
    // ends at the old machine's generation.
    assert!(vps.in_volume_store(&built_system(&events)));
    assert_eq!(vps.volume_profile().0.len(), 1);
    assert_eq!(mounts_under(&vps.dir), Vec::<std::path::PathBuf>::new());
}

#[test]
fn a_volume_store_nix_cannot_use_is_a_warning_and_the_build_goes_on_offline() {
    let vps = FreshVps::new(FreshVpsOptions {
        volume_store_db: false,
        ..FreshVpsOptions::default()
    });
    let (code, events) = vps.run(&["--yes"]);
    assert_eq!(code, 0, "{events:#?}\n{}", vps.stderr());
    let (status, message) = step(&events, "mount-volume");
    assert_eq!(status, "warning");
    assert!(message.contains("no database"), "{message}");
    assert!(message.contains("will download or build"), "{message}");
    let (status, message) = step(&events, "build");
    assert_eq!(status, "warning", "{message}");
    assert!(message.contains("could not be used"), "{message}");
    // Nothing is missing offline here, so the build still succeeds, building it all.
    assert_eq!(vps.expensive_builds(), 2);
    assert!(!rebuild_calls(&vps)[0].contains("extra-substituters"));
    assert_eq!(summary(&events)["build"]["from_volume"]["paths"], 0);
}

#[test]
fn a_failed_build_without_the_volumes_store_says_it_could_not_be_used() {
    let vps = FreshVps::new(FreshVpsOptions {
        volume_store_db: false,
        ..FreshVpsOptions::default()
    });
    vps.set_exit("build", 1);
    let (code, events) = vps.run(&["--yes"]);
    assert_eq!(code, 1);
    let message = step(&events, "build").1;
    assert!(
        message.contains("The store on the volume could not be used"),
        "{message}"
    );
}

#[test]
fn without_a_config_file_the_recovery_card_supplies_everything() {
    let vps = FreshVps::new(FreshVpsOptions {
        full_config: false,
        ..FreshVpsOptions::default()
    });
    let (code, events) = vps.run(&["--yes"]);
    assert_eq!(code, 0, "{events:#?}\n{}", vps.stderr());
    assert_eq!(summary(&events)["recovery_card"], true);
    assert_eq!(summary(&events)["host"], "devserver");
    assert_eq!(git(&vps.etc_nixos, "rev-parse HEAD"), vps.remote_head());
    assert!(vps.in_volume_store(&built_system(&events)));
    assert!(built_system(&events).ends_with(&vps.system_name()));
}

#[test]
fn an_unreachable_remote_falls_back_to_the_mirror_on_the_volume() {
    let vps = FreshVps::new(FreshVpsOptions::default());
    let head = vps.remote_head();
    let moved = vps.dir.join("remote-away.git");
    fs::rename(&vps.remote, &moved).unwrap();
    let (code, events) = vps.run(&["--yes"]);
    fs::rename(&moved, &vps.remote).unwrap();
    assert_eq!(code, 0, "{events:#?}\n{}", vps.stderr());
    let message = step(&events, "clone-config").1;
    assert!(message.contains("from the mirror"), "{message}");
    assert_eq!(git(&vps.etc_nixos, "rev-parse HEAD"), head);
    assert_eq!(git(&vps.etc_nixos, "remote get-url origin"), vps.url());
}

#[test]
#[cfg(feature = "fault-injection")]
fn a_run_that_died_is_finished_by_resume_without_a_second_copy_aside() {
    let vps = FreshVps::new(FreshVpsOptions {
        existing_etc_nixos: Some("{ }\n"),
        ..FreshVpsOptions::default()
    });
    let config = vps.config();
    let (code, _) = vps.run_env(&config, "LIFEBOAT_FAULT=panic:build", &["--yes"]);
    assert_eq!(code, 101);
    assert!(rebuild_calls(&vps).is_empty());
    let (code, events) = vps.run(&["--resume", "--yes"]);
    assert_eq!(code, 0, "{events:#?}\n{}", vps.stderr());
    assert!(
        step(&events, "clone-config")
            .1
            .contains("clone of the remote")
    );
    let asides = fs::read_dir(vps.etc_nixos.parent().unwrap())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy()
                .starts_with("etc-nixos.before-lifeboat-")
        })
        .count();
    assert_eq!(asides, 1);
    assert_eq!(mounts_under(&vps.mnt), Vec::<std::path::PathBuf>::new());
    // After the reboot it ran, resuming means verifying.
    let (_, events) = vps.run(&["--resume"]);
    assert_eq!(summary(&events)["flow"], "verify");
}

#[test]
fn a_duplicate_file_system_in_the_build_is_explained() {
    let vps = FreshVps::new(FreshVpsOptions::default());
    fs::write(
        vps.dir.join("build-stderr"),
        "@nix {\"action\":\"msg\",\"level\":0,\"msg\":\"error: The option `fileSystems.\\\"/home\\\".device' has conflicting definition values:\\n       - In `/nix/store/x-source/hardware-configuration.nix': \\\"/dev/disk/by-uuid/1\\\"\"}\n",
    )
    .unwrap();
    vps.set_exit("build", 1);
    let (code, events) = vps.run(&["--yes"]);
    assert_eq!(code, 1, "{events:#?}");
    let message = step(&events, "build").1;
    assert!(message.contains("defined twice"), "{message}");
}

#[test]
fn an_old_system_missing_from_the_volumes_store_is_left_to_the_build() {
    let vps = FreshVps::new(FreshVpsOptions::default());
    // The profile names a system its store no longer holds (collected by hand, say).
    let gone = "/nix/store/00000000000000000000000000000000-nixos-system-devserver-25.11";
    vps.with_volume_store(&format!(
        "ln -sfn {gone} /nix/var/nix/profiles/system-1-link"
    ));
    let (code, events) = vps.run(&["--yes"]);
    assert_eq!(code, 0, "{events:#?}\n{}", vps.stderr());
    let said = events.iter().any(|e| {
        e["event"] == "output"
            && e["step"] == "build"
            && e["line"].as_str().is_some_and(|l| {
                l.starts_with(&format!(
                    "copying the old system {gone} from the volume's store failed"
                )) && l.ends_with("the build takes what it needs from that store itself")
            })
    });
    assert!(said, "{events:#?}");
    // The build still took the expensive derivation from the volume as a substituter.
    assert_eq!(vps.expensive_builds(), 1, "{events:#?}");
    let build = &summary(&events)["build"];
    assert!(
        build["from_volume"]["paths"].as_u64().unwrap() > 0,
        "{build}"
    );
    assert_eq!(build["downloaded"]["paths"], 0, "{build}");
}

/// A card whose values would steer recover's writes elsewhere is refused as damaged, each
/// time naming the field and its value, and nothing is written.
#[test]
fn a_damaged_recovery_card_is_refused_and_nothing_is_written() {
    let vps = FreshVps::new(FreshVpsOptions {
        full_config: false,
        ..FreshVpsOptions::default()
    });
    let card_path = "qwe/.lifeboat/recovery.toml";
    let card = vps.volume_file(card_path).expect("predestroy's card");
    for (from, to, named) in [
        (
            "user = \"qwe\"",
            "user = \"../../../../tmp/evil\"",
            "user is \"../../../../tmp/evil\"",
        ),
        ("uid = 1000", "uid = 0", "uid is 0"),
        (
            &format!("mount = \"{}\"", vps.home.display()),
            "mount = \"/etc\"",
            "volumes[0].mount is \"/etc\"",
        ),
    ] {
        assert!(card.contains(from), "{from} not in the card: {card}");
        vps.write_volume_file(card_path, &card.replace(from, to), 0o644);
        let hash = sha256_file(&vps.sandbox.image);
        let (code, events) = vps.run(&["--yes"]);
        assert_eq!(code, 3, "{events:#?}\n{}", vps.stderr());
        let (status, message) = step(&events, "inspect-volume");
        assert_eq!(status, "refused", "{message}");
        assert!(message.contains("is damaged"), "{message}");
        assert!(message.contains(named), "{named} not in: {message}");
        assert!(message.contains("nothing was written"), "{message}");
        assert_nothing_changed(&vps, &hash);
    }
}

/// A saved copy on the volume that is not what predestroy saved (damaged, or changed by
/// someone) restores nothing: the fresh machine keeps its own keys and ids.
#[test]
fn a_saved_copy_that_is_not_what_predestroy_saved_restores_nothing() {
    let vps = FreshVps::new(FreshVpsOptions::default());
    let key = support::root_disk::HOST_KEYS[0];
    vps.write_volume_file(
        &format!("lifeboat-host/files/{key}"),
        "-----BEGIN OPENSSH PRIVATE KEY-----\nplanted\n-----END OPENSSH PRIVATE KEY-----\n",
        0o600,
    );
    let fresh_key = fs::read(vps.root.join(key)).unwrap();
    let fresh_ids = fs::read(vps.root.join("var/lib/nixos/uid-map")).unwrap();
    let (code, events) = vps.run(&["--yes"]);
    assert_eq!(code, 1, "{events:#?}");
    let (status, message) = step(&events, "restore-host-identity");
    assert_eq!(status, "failed", "{message}");
    assert!(message.contains("not what predestroy saved"), "{message}");
    assert!(message.contains("ssh_host_ed25519_key"), "{message}");
    assert_eq!(fs::read(vps.root.join(key)).unwrap(), fresh_key);
    assert_eq!(
        fs::read(vps.root.join("var/lib/nixos/uid-map")).unwrap(),
        fresh_ids
    );
    // No boot entry for a machine that would come up without its identity, no reboot.
    assert!(
        !rebuild_calls(&vps)
            .iter()
            .any(|c| c.starts_with("nixos-rebuild boot")),
        "{:?}",
        vps.calls()
    );
    assert!(!vps.calls().iter().any(|c| c == "reboot"));
}

/// The network and login the new system comes up with, against this machine's: each run
/// in a network namespace of its own whose interface the test makes with `ip` (a veth
/// pair, `eth0` with a MAC and public addresses); nothing is sent.
mod network {
    use super::*;

    const MAC: &str = "96:00:0a:0b:0c:0d";
    const OLD_MAC: &str = "96:00:01:02:03:04";
    const V4: &str = "203.0.113.7";
    const V6: &str = "2001:db8:7::7";

    /// This machine's network: eth0 with [`MAC`], [`V4`]/32 and [`V6`]/64 and Hetzner's
    /// gateways.
    fn this_machine() -> String {
        this_machine_with(true)
    }

    /// [`this_machine`], with or without its public IPv6 address.
    fn this_machine_with(v6: bool) -> String {
        let script = format!(
            "ip link add eth0 type veth peer name peer0\n\
             ip link set eth0 address {MAC}\n\
             ip link set eth0 up\nip link set peer0 up\n\
             ip addr add {V4}/32 dev eth0\n\
             ip -6 addr add {V6}/64 dev eth0 nodad\n\
             ip route add default via 172.31.1.1 dev eth0 onlink\n\
             ip -6 route add default via fe80::1 dev eth0\n"
        );
        if v6 {
            script
        } else {
            script.replace(&format!("ip -6 addr add {V6}/64 dev eth0 nodad\n"), "")
        }
    }

    /// `networking.nix` as nixos-infect writes it, for a server with these addresses and MAC.
    fn infect_networking(v4: &str, v6: &str, mac: &str) -> String {
        format!(
            "{{ lib, ... }}: {{\n  # This file was populated at runtime with the networking\n  \
             # details gathered from the active system.\n  networking = {{\n    \
             nameservers = [ \"185.12.64.1\" \"185.12.64.2\" ];\n    \
             defaultGateway = \"172.31.1.1\";\n    defaultGateway6 = {{\n      \
             address = \"fe80::1\";\n      interface = \"eth0\";\n    }};\n    \
             dhcpcd.enable = false;\n    usePredictableInterfaceNames = lib.mkForce false;\n    \
             interfaces = {{\n      eth0 = {{\n        ipv4.addresses = [\n          \
             {{ address=\"{v4}\"; prefixLength=32; }}\n        ];\n        ipv6.addresses = [\n          \
             {{ address=\"{v6}\"; prefixLength=64; }}\n          \
             {{ address=\"fe80::9400:1ff:fe02:304\"; prefixLength=64; }}\n        ];\n        \
             ipv4.routes = [ {{ address = \"172.31.1.1\"; prefixLength = 32; }} ];\n        \
             ipv6.routes = [ {{ address = \"fe80::1\"; prefixLength = 128; }} ];\n      }};\n    \
             }};\n  }};\n  services.udev.extraRules = ''\n    \
             ATTR{{address}}==\"{mac}\", NAME=\"eth0\"\n  '';\n}}\n"
        )
    }

    /// Push `networking.nix` (imported by configuration.nix) and configuration.nix with
    /// `edit` applied.
    fn push(vps: &FreshVps, networking: &str, edit: impl Fn(&str) -> String) {
        vps.push_file("networking.nix", networking);
        let original = fs::read_to_string(vps.author.join("configuration.nix")).unwrap();
        let importing = original.replacen(
            "imports = [ ./hardware-configuration.nix ];",
            "imports = [ ./hardware-configuration.nix ./networking.nix ];",
            1,
        );
        assert_ne!(importing, original);
        vps.push_file("configuration.nix", &edit(&importing));
    }

    /// [`push`] with configuration.nix's `services.openssh.enable = true;` replaced by `sshd`.
    fn push_sshd(vps: &FreshVps, networking: &str, sshd: &str) {
        push(vps, networking, |text| {
            text.replace("services.openssh.enable = true;", sshd)
        });
    }

    fn line_of(text: &str, needle: &str) -> usize {
        text.lines().position(|l| l.contains(needle)).unwrap() + 1
    }

    /// Run with `--yes` in [`this_machine`]'s network: refused with each of `expected` in
    /// the message, nothing built. The message.
    fn refused(vps: &FreshVps, expected: &[String]) -> String {
        refused_in(vps, &this_machine(), expected)
    }

    fn refused_in(vps: &FreshVps, network: &str, expected: &[String]) -> String {
        let (code, events) = vps.run_in_network(network, &["--yes"]);
        assert_eq!(code, 3, "{events:#?}\n{}", vps.stderr());
        let (status, message) = step(&events, "boot-safety");
        assert_eq!(status, "refused");
        for text in expected {
            assert!(message.contains(text.as_str()), "{text} not in: {message}");
        }
        assert!(rebuild_calls(vps).is_empty(), "{:?}", vps.calls());
        message.to_string()
    }

    /// This machine has no public IPv6 address to put in place of the old one, so no
    /// rewrite is offered.
    #[test]
    fn the_old_servers_static_addresses_are_refused_with_where_they_are_set() {
        let vps = FreshVps::new(FreshVpsOptions::default());
        let networking = infect_networking("198.51.100.9", "2a01:4f8:c17:1::1", OLD_MAC);
        push(&vps, &networking, str::to_string);
        refused_in(
            &vps,
            &this_machine_with(false),
            &[
                "networking.interfaces.eth0 gives the static address 198.51.100.9/32".into(),
                "which is the old server's (the recovery card records it)".into(),
                format!("networking.nix:{}", line_of(&networking, "198.51.100.9")),
                "static address 2a01:4f8:c17:1::1/64".into(),
                format!(
                    "networking.nix:{}",
                    line_of(&networking, "2a01:4f8:c17:1::1")
                ),
                format!("{V4}/32 on eth0"),
                "no DHCP".into(),
                "Primary IPs".into(),
            ],
        );
    }

    #[test]
    fn an_interface_named_after_a_missing_mac_and_no_sshd_are_refused() {
        let vps = FreshVps::new(FreshVpsOptions::default());
        let networking = infect_networking(V4, V6, OLD_MAC)
            .replace("eth0 = {", "wan0 = {")
            .replace("NAME=\"eth0\"", "NAME=\"wan0\"");
        push_sshd(&vps, &networking, "services.openssh.enable = false;");
        refused(
            &vps,
            &[
                format!("names the interface wan0 after the MAC {OLD_MAC}"),
                format!("networking.nix:{}", line_of(&networking, OLD_MAC)),
                format!("ATTR{{address}}==\"{MAC}\", NAME=\"wan0\""),
                "services.openssh is not enabled".into(),
            ],
        );
    }

    #[test]
    fn a_closed_ssh_port_and_no_keys_without_passwords_are_refused() {
        let vps = FreshVps::new(FreshVpsOptions::default());
        push_sshd(
            &vps,
            "{ }\n",
            "services.openssh = { enable = true; ports = [ 2222 ]; openFirewall = false; \
                 settings.PasswordAuthentication = false; };\n  \
                 networking.firewall.allowedTCPPorts = [ 80 443 ];",
        );
        // The practice volume's home has a key of its own: none there either.
        vps.write_volume_file("qwe/.ssh/authorized_keys", "# emptied\n", 0o600);
        let message = refused(
            &vps,
            &[
                "sshd listens on port 2222 but the firewall closes it".into(),
                "neither root nor qwe has an authorized key".into(),
            ],
        );
        // The network is DHCP's (the hardware configuration's useDHCP): nothing to say.
        assert!(
            !message.contains("address") && !message.contains("interface"),
            "{message}"
        );
    }

    /// This machine's addresses and MAC pass; the link-local address of the old MAC is
    /// a warning; a key for the user lets the user in without passwords.
    #[test]
    fn a_static_configuration_of_this_machine_passes_with_a_warning_for_the_old_link_local() {
        let vps = FreshVps::new(FreshVpsOptions::default());
        push_sshd(
            &vps,
            &infect_networking(V4, V6, MAC),
            "services.openssh = { enable = true; settings.PasswordAuthentication = false; };\n  \
                 users.users.qwe.openssh.authorizedKeys.keys = [ \"ssh-ed25519 AAAAC3Nza qwe@laptop\" ];",
        );
        let (code, events) = vps.run_in_network(&this_machine(), &["--yes"]);
        assert_eq!(code, 0, "{events:#?}\n{}", vps.stderr());
        let (status, message) = step(&events, "boot-safety");
        assert_eq!(status, "warning", "{message}");
        assert!(
            message.contains("link-local address fe80::9400:1ff:fe02:304")
                && message.contains(OLD_MAC),
            "{message}"
        );
        assert!(!message.contains("extraRules"), "{message}");
        assert_eq!(rebuild_calls(&vps).len(), 2, "{:?}", vps.calls());
    }

    /// The old server's addresses, gateway and MAC, with this machine's at hand: the rewrite of
    /// networking.nix is shown and asked about; confirmed, it is committed, evaluates to
    /// this machine's addresses, and recover goes on.
    #[test]
    fn the_old_servers_addresses_are_rewritten_to_this_machines_on_confirmation() {
        let vps = FreshVps::new(FreshVpsOptions::default());
        let networking = infect_networking("198.51.100.9", "2a01:4f8:c17:1::1", OLD_MAC).replace(
            "defaultGateway = \"172.31.1.1\"",
            "defaultGateway = \"172.31.1.254\"",
        );
        push(&vps, &networking, str::to_string);
        let (code, events) = vps.run_in_network(&this_machine(), &["--yes"]);
        assert_eq!(code, 0, "{events:#?}\n{}", vps.stderr());
        let diff: Vec<&str> = events
            .iter()
            .filter(|e| e["event"] == "output" && e["step"] == "boot-safety")
            .filter_map(|e| e["line"].as_str())
            .collect();
        assert!(
            diff.iter()
                .any(|l| l.starts_with('-') && l.contains("198.51.100.9"))
                && diff.iter().any(|l| l.starts_with('+') && l.contains(V4)),
            "{diff:#?}"
        );
        let (status, message) = step(&events, "boot-safety");
        assert_eq!(status, "passed", "{message}");
        let rewritten = fs::read_to_string(vps.etc_nixos.join("networking.nix")).unwrap();
        assert_eq!(
            rewritten,
            infect_networking(V4, V6, MAC)
                .replace("fe80::9400:1ff:fe02:304", "fe80::9400:aff:fe0b:c0d")
        );
        let log = git(&vps.etc_nixos, "log -1 --format=%s");
        assert!(log.contains("this server's addresses and MAC"), "{log}");
        let committed = git(&vps.etc_nixos, "show --name-only --format= HEAD");
        assert!(
            committed.lines().any(|l| l == "networking.nix"),
            "{committed}"
        );
        let addresses = vps.shell(&format!(
            "nix eval --json --extra-experimental-features 'nix-command flakes' \
             {}#nixosConfigurations.devserver.config.networking.interfaces.eth0.ipv4.addresses",
            quote(&vps.etc_nixos.to_string_lossy())
        ));
        assert_eq!(
            addresses,
            format!("[{{\"address\":\"{V4}\",\"prefixLength\":32}}]")
        );
        assert_eq!(rebuild_calls(&vps).len(), 2, "{:?}", vps.calls());
    }

    /// networkd with the old server's address on a network matched by name, DHCP off: the
    /// address is rewritten to this machine's, prefix kept.
    #[test]
    fn a_networkd_network_with_the_old_servers_address_gets_this_machines() {
        let vps = FreshVps::new(FreshVpsOptions::default());
        let networking = "{ lib, ... }: {\n  networking.useNetworkd = true;\n  \
                          networking.useDHCP = false;\n  systemd.network.networks.\"10-wan\" = {\n    \
                          matchConfig.Name = \"eth0\";\n    address = [ \"198.51.100.9/32\" ];\n    \
                          networkConfig.DHCP = \"no\";\n  };\n}\n";
        push(&vps, networking, str::to_string);
        let (code, events) = vps.run_in_network(&this_machine_with(false), &["--yes"]);
        assert_eq!(code, 0, "{events:#?}\n{}", vps.stderr());
        let rewritten = fs::read_to_string(vps.etc_nixos.join("networking.nix")).unwrap();
        assert_eq!(
            rewritten,
            networking.replace("198.51.100.9/32", &format!("{V4}/32"))
        );
    }

    /// Without passwords and without keys in the configuration, a key the user added by
    /// hand to `~/.ssh/authorized_keys` on the volume still lets the user in.
    #[test]
    fn a_key_in_the_users_authorized_keys_on_the_volume_is_a_way_in() {
        let vps = FreshVps::new(FreshVpsOptions::default());
        push_sshd(
            &vps,
            "{ }\n",
            "services.openssh = { enable = true; settings.PasswordAuthentication = false; };",
        );
        vps.write_volume_file(
            "qwe/.ssh/authorized_keys",
            "# by hand\nssh-ed25519 AAAAC3Nza qwe@laptop\n",
            0o600,
        );
        let (code, events) = vps.run_in_network(&this_machine(), &["--yes"]);
        assert_eq!(code, 0, "{events:#?}\n{}", vps.stderr());
        assert_eq!(step(&events, "boot-safety").0, "passed");
    }
}

/// sops-nix's secrets decrypt with the host key: carried and put back, the configuration
/// is safe; with a card from before the identity was saved, the fresh machine's own key
/// cannot decrypt them, and boot-safety refuses before anything is built.
#[test]
fn secrets_that_need_a_key_the_old_machine_took_with_it_are_refused() {
    const SOPS: &str = "  sops.secrets.db-password = { };\n  \
                        sops.age.sshKeyPaths = [ \"/etc/ssh/ssh_host_ed25519_key\" ];\n";
    let carried = FreshVps::new(FreshVpsOptions {
        extra_config: SOPS,
        ..FreshVpsOptions::default()
    });
    let (code, events) = carried.run(&["--yes"]);
    assert_eq!(code, 0, "{events:#?}\n{}", carried.stderr());

    let lost = FreshVps::new(FreshVpsOptions {
        extra_config: SOPS,
        saved_identity: false,
        ..FreshVpsOptions::default()
    });
    let (code, events) = lost.run(&["--yes"]);
    assert_eq!(code, 3, "{events:#?}\n{}", lost.stderr());
    let (status, message) = step(&events, "boot-safety");
    assert_eq!(status, "refused", "{message}");
    assert!(
        message.contains(
            "sops-nix decrypts the secrets with /etc/ssh/ssh_host_ed25519_key, which was not carried"
        ),
        "{message}"
    );
    assert!(message.contains("sops updatekeys"), "{message}");
    assert!(rebuild_calls(&lost).is_empty(), "{:?}", lost.calls());
}

/// lifeboat rides in the lifeboat: the old machine ran it from its store, so it is in the
/// volume's store, and the recovery sheet's commands take it from there into the fresh
/// machine's store without the network; it runs.
#[test]
fn the_recovery_sheets_commands_take_lifeboat_from_the_volumes_store() {
    let vps = FreshVps::new(FreshVpsOptions::default());
    // The old machine's lifeboat, a path of the volume's store.
    let package = vps.dir.join("lifeboat-0.1.0");
    fs::create_dir_all(package.join("bin")).unwrap();
    fs::copy(support::lifeboat_bin(), package.join("bin/lifeboat")).unwrap();
    let path = vps.with_volume_store(&format!(
        "nix-store --add {}",
        support::quote(&package.to_string_lossy())
    ));
    assert!(path.starts_with("/nix/store/"), "{path}");

    // The sheet predestroy writes beside a card that records it.
    let card_text = vps.volume_file("qwe/.lifeboat/recovery.toml").unwrap();
    let card_file = vps.dir.join("card.toml");
    fs::write(&card_file, card_text).unwrap();
    let mut card = nixos_lifeboat::card::RecoveryCard::load(&card_file).unwrap();
    card.lifeboat_store_path = Some(path.clone().into());
    let cfg = nixos_lifeboat::config::Config::load(&vps.config()).unwrap();
    let sheet = nixos_lifeboat::card::sheet::sheet(&card, &cfg);
    let commands: Vec<&str> = sheet
        .split("2. Take lifeboat")
        .nth(1)
        .and_then(|rest| rest.split("(With Nix 2.17").next())
        .unwrap_or_else(|| panic!("no bootstrap in the sheet:\n{sheet}"))
        .lines()
        .filter(|l| l.starts_with("       "))
        .collect();
    assert_eq!(commands.len(), 4, "{commands:?}");

    // On the fresh machine (its own, empty store at /nix), as the sheet says; /mnt is a
    // tmpfs of the namespace so that nothing is left on the host.
    assert!(
        !vps.shell(&format!("[ -e {path} ] && echo yes || echo no"))
            .contains("yes")
    );
    let out = vps.shell(&format!(
        "mount -t tmpfs none /mnt\n{}\n{path}/bin/lifeboat --version",
        commands.join("\n")
    ));
    assert!(out.contains("lifeboat"), "{out}");
}
