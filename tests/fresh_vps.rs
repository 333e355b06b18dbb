//! The `lifeboat recover` test scenario itself (tests/support/fresh_vps.rs), checked
//! without lifeboat: the remote clones, the test flake evaluates and builds with the real
//! Nix like a NixOS configuration, the stand-ins behave like the tools they replace (`boot`
//! mounts nothing, `switch` mounts every new filesystem), the volume carries what
//! `predestroy` leaves on it and what the old machine built, and its store feeds a fresh
//! build only when asked to.

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

#[path = "support/fresh_vps.rs"]
mod fresh_vps;
mod support;

use std::fs;
use std::path::{Path, PathBuf};

use fresh_vps::{FreshVps, FreshVpsOptions, profile_system, quote};
use nixos_lifeboat::card::RecoveryCard;
use nixos_lifeboat::config::Config;
use serde_json::Value;

/// `nix eval --json` of an attribute of the devserver configuration in a fresh clone of
/// the remote, with the feature flags lifeboat itself must pass.
fn eval(vps: &FreshVps, attr: &str) -> std::process::Output {
    let clone = vps.dir.join("clone");
    vps.shell_output(&format!(
        "rm -rf {clone}\ngit clone -q {url} {clone}\n\
         nix eval --json --extra-experimental-features 'nix-command flakes' \
         {clone}#nixosConfigurations.devserver.config.{attr}",
        clone = quote(&clone.to_string_lossy()),
        url = quote(&vps.url()),
    ))
}

fn eval_json(vps: &FreshVps, attr: &str) -> Value {
    let out = eval(vps, attr);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn key(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// `bin/nixos-rebuild ARGS` in the scenario: exit code, stdout, stderr, and whether the
/// home and the store target were mount points afterwards (in that namespace).
struct Rebuild {
    code: i32,
    stdout: String,
    stderr: String,
    home_mounted: bool,
    nix_bound: bool,
}

fn rebuild(vps: &FreshVps, args: &str) -> Rebuild {
    let (out, err) = (vps.dir.join("rebuild.out"), vps.dir.join("rebuild.err"));
    let report = vps.shell(&format!(
        "set +e\nnixos-rebuild {args} >{out} 2>{err}\necho $?\n\
         mountpoint -q {home} && echo home-mounted\nmountpoint -q {nix} && echo nix-bound\ntrue",
        out = out.display(),
        err = err.display(),
        home = vps.home.display(),
        nix = vps.nix.display()
    ));
    Rebuild {
        code: report.lines().next().unwrap().parse().unwrap(),
        stdout: fs::read_to_string(out).unwrap().trim().to_string(),
        stderr: fs::read_to_string(err).unwrap(),
        home_mounted: report.contains("home-mounted"),
        nix_bound: report.contains("nix-bound"),
    }
}

/// The stand-in built the scenario's system as nixos-rebuild does: exit 0, the store path
/// on stdout, its first line and Nix's JSON log on stderr.
fn assert_built(vps: &FreshVps, run: &Rebuild) {
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("/nix/store/")
            && run.stdout.ends_with(&format!("-{}", vps.system_name())),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .starts_with("building the system configuration...\n"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("@nix {\"action\":\"start\""),
        "{}",
        run.stderr
    );
}

fn clone_to_etc_nixos(vps: &FreshVps) -> String {
    fresh_vps::sh(&format!(
        "git clone -q {} {}",
        quote(&vps.url()),
        quote(&key(&vps.etc_nixos))
    ));
    format!("{}#devserver", vps.etc_nixos.display())
}

#[test]
fn the_remote_clones_and_the_flake_evaluates_like_a_nixos_configuration() {
    let vps = FreshVps::new(FreshVpsOptions::default());
    let file_systems = eval_json(&vps, "fileSystems");
    let home = &file_systems[key(&vps.home)];
    assert_eq!(home["device"], key(&vps.device));
    assert_eq!(home["fsType"], "ext4");
    assert_eq!(home["neededForBoot"], true);
    assert_eq!(home["mountPoint"], key(&vps.home));
    let nix = &file_systems[key(&vps.nix)];
    assert_eq!(nix["device"], key(&vps.home.join("qwe/nix")));
    assert_eq!(nix["fsType"], "none");
    assert_eq!(nix["options"], serde_json::json!(["bind"]));
    assert_eq!(nix["neededForBoot"], false);
    assert_eq!(
        file_systems["/"]["device"], "/dev/disk/by-uuid/849b340d-b31e-4604-b2eb-bd8422c06919",
        "the hardware configuration is merged in"
    );
    assert_eq!(file_systems.as_object().unwrap().len(), 3);
    assert_eq!(eval_json(&vps, "users.users.qwe.uid"), 1000);
    assert_eq!(eval_json(&vps, "users.users.qwe.home"), "/home/qwe");

    // Evaluating leaves nothing untracked behind (no flake.lock for a flake without inputs).
    let clone = vps.dir.join("clone");
    assert_eq!(fresh_vps::git(&clone, "status --porcelain"), "");
    assert_eq!(
        fresh_vps::git(&clone, "ls-files"),
        "configuration.nix\nflake.nix\nhardware-configuration.nix"
    );
    assert!(!vps.etc_nixos.exists());
    assert_eq!(
        fs::read_dir(&vps.home).unwrap().count(),
        0,
        "the home starts empty"
    );
}

#[test]
fn the_options_give_each_boot_safety_blocker() {
    let moved = Path::new("/dev/disk/by-id/scsi-0HC_Volume_999");
    let vps = FreshVps::new(FreshVpsOptions {
        needed_for_boot: false,
        nix_bind: false,
        flake_uid: 1001,
        flake_device: Some(moved.to_path_buf()),
        ..FreshVpsOptions::default()
    });
    let file_systems = eval_json(&vps, "fileSystems");
    let home = &file_systems[key(&vps.home)];
    assert_eq!(home["neededForBoot"], false);
    assert_eq!(home["device"], key(moved));
    assert!(file_systems.get(key(&vps.nix)).is_none());
    assert_eq!(eval_json(&vps, "users.users.qwe.uid"), 1001);
}

#[test]
fn a_second_home_entry_fails_with_the_nixos_message() {
    let vps = FreshVps::new(FreshVpsOptions::default());
    let capture = fs::read_to_string(&vps.hardware_capture).unwrap();
    vps.push_file("hardware-configuration.nix", &capture);
    let out = eval(&vps, "fileSystems");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "error: The option `fileSystems.\"{}\".device' has conflicting definition values:",
        vps.home.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(
        stderr.contains(
            "-source/hardware-configuration.nix': \"/dev/disk/by-uuid/1f6c2a9e-3d0b-4c55-9a0e-6b7f3e2d8c41\""
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "-source/configuration.nix': \"{}\"",
            vps.device.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "Use `lib.mkForce value` or `lib.mkDefault value` to change the priority on any of these definitions."
        ),
        "{stderr}"
    );

    // nixos-rebuild evaluates the same and fails the same way.
    let flake = clone_to_etc_nixos(&vps);
    let build = rebuild(&vps, &format!("build --flake {flake}"));
    assert_eq!(build.code, 1);
    assert!(build.stderr.contains(&expected), "{}", build.stderr);
    assert_eq!(build.stdout, "");
}

#[test]
fn an_untracked_hardware_configuration_is_invisible_to_the_flake_until_staged() {
    let vps = FreshVps::new(FreshVpsOptions::default());
    vps.push_removal("hardware-configuration.nix");
    let flake = clone_to_etc_nixos(&vps);
    fs::write(
        vps.etc_nixos.join("hardware-configuration.nix"),
        fresh_vps::HARDWARE_PLAIN,
    )
    .unwrap();
    let untracked = rebuild(&vps, &format!("build --flake {flake}"));
    assert_eq!(untracked.code, 1);
    assert!(
        untracked
            .stderr
            .contains("-source/hardware-configuration.nix': No such file or directory"),
        "{}",
        untracked.stderr
    );
    fresh_vps::git(&vps.etc_nixos, "add -N hardware-configuration.nix");
    let staged = rebuild(&vps, &format!("build --flake {flake}"));
    assert_eq!(staged.code, 0, "{}", staged.stderr);
}

#[test]
fn the_stand_in_rebuild_builds_the_real_system_and_logs_its_call() {
    let vps = FreshVps::new(FreshVpsOptions::default());
    let flake = clone_to_etc_nixos(&vps);
    let args = format!("build --flake {flake} --log-format internal-json -v");
    let build = rebuild(&vps, &args);
    assert_built(&vps, &build);
    // The system exists in the scenario's store (never the host's), with its /etc.
    let contents = vps.shell(&format!(
        "cat {system}/nixos-version; cat {system}/etc/fstab",
        system = build.stdout
    ));
    assert!(contents.starts_with("25.11\n"), "{contents}");
    assert!(contents.contains(&key(&vps.device)), "{contents}");
    assert!(
        !Path::new(&build.stdout).exists(),
        "built in the host's /nix"
    );
    assert!(!build.home_mounted, "build mounted something");
    assert_eq!(vps.calls(), [format!("nixos-rebuild {args}")]);

    vps.set_exit("build", 1);
    let failed = rebuild(&vps, &format!("build --flake {flake}"));
    assert_eq!((failed.code, failed.stdout.as_str()), (1, ""));
    assert_eq!(vps.calls().len(), 2);
}

#[test]
fn boot_sets_the_profile_and_the_boot_entry_mounts_nothing_and_exits_as_asked() {
    let vps = FreshVps::new(FreshVpsOptions::default());
    let flake = clone_to_etc_nixos(&vps);
    let args = format!("boot --flake {flake} --log-format internal-json -v");

    let ok = rebuild(&vps, &args);
    assert_built(&vps, &ok);
    assert!(ok.stderr.contains("\nupdating GRUB 2 menu...\n"));
    assert!(
        ok.stderr.ends_with("\nDone. The new configuration is\n"),
        "{}",
        ok.stderr
    );
    assert!(!ok.stderr.contains("activating"), "{}", ok.stderr);
    // Nothing mounted, now or in later namespaces; nothing activated.
    assert!(!ok.home_mounted && !ok.nix_bound);
    assert!(!vps.home_mounted() && !vps.nix_bound());
    assert_eq!(vps.current_system(), None);
    // The root disk's system profile (the scenario's own /nix) and the boot entry.
    let system = PathBuf::from(&ok.stdout);
    assert_eq!(vps.boot_entry(), Some(system.clone()));
    assert_eq!(vps.root_profile(), (vec![(1, ok.stdout.clone())], Some(1)));
    assert!(
        fs::symlink_metadata(vps.host_nix.join("var/nix/profiles/system-1-link")).is_ok(),
        "the profile is in the scenario's own /nix"
    );
    assert!(!system.exists(), "set in the host's /nix");
    // The volume's store and profile are untouched.
    let name = system.file_name().unwrap().to_string_lossy().into_owned();
    assert!(!vps.in_volume_store(&name));
    assert_eq!(vps.volume_profile().0.len(), 1);

    vps.set_exit("boot", 1);
    let failed = rebuild(&vps, &format!("boot --flake {flake}"));
    assert_eq!((failed.code, failed.stdout.as_str()), (1, ""));
    assert!(
        failed
            .stderr
            .ends_with("updating GRUB 2 menu...\nFailed to install bootloader\n"),
        "{}",
        failed.stderr
    );
    vps.set_exit("boot", 100);
    let build_failed = rebuild(&vps, &format!("boot --flake {flake}"));
    assert_eq!((build_failed.code, build_failed.stdout.as_str()), (100, ""));
    assert!(build_failed.stderr.contains("failed with exit code 1"));
    assert!(!build_failed.stderr.contains("GRUB"));
    assert_eq!(vps.boot_entry(), Some(system.clone()));
    assert!(!vps.home_mounted() && !vps.nix_bound());

    // With its closure copied into the volume's store, the reboot starts the boot entry's
    // system.
    assert!(!vps.boot_entry_in_volume_store());
    vps.shell(&format!(
        "mount {dev} {home}
         nix --extra-experimental-features nix-command copy --no-check-sigs \
         --to 'local?root={home}/qwe' {system}",
        dev = vps.sandbox.loop_device.display(),
        home = vps.home.display(),
        system = system.display()
    ));
    assert!(vps.boot_entry_in_volume_store());
    vps.shell("reboot");
    assert_eq!(vps.current_system(), Some(system));
    assert_eq!(
        vps.calls(),
        [
            format!("nixos-rebuild {args}"),
            format!("nixos-rebuild boot --flake {flake}"),
            format!("nixos-rebuild boot --flake {flake}"),
            "reboot".to_string()
        ]
    );
}

#[test]
fn switch_mounts_every_new_filesystem_burying_the_build_and_exits_as_asked() {
    let vps = FreshVps::new(FreshVpsOptions::default());
    let flake = clone_to_etc_nixos(&vps);
    let switch = format!("switch --flake {flake}");

    let ok = rebuild(&vps, &switch);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(ok.stdout.ends_with(&vps.system_name()));
    assert!(ok.stderr.contains("\nupdating GRUB 2 menu...\n"));
    assert!(ok.stderr.contains("activating the configuration..."));
    assert!(
        ok.stderr.ends_with("\nDone. The new configuration is\n"),
        "{}",
        ok.stderr
    );
    // switch-to-configuration mounts the new fstab's entries: the volume at the home and
    // the store target bound from it.
    assert!(ok.home_mounted && ok.nix_bound);
    let system = PathBuf::from(&ok.stdout);
    assert_eq!(vps.current_system(), Some(system.clone()));
    assert_eq!(vps.boot_entry(), Some(system.clone()));
    assert_eq!(
        profile_system(&vps.root_profile()),
        Some(ok.stdout.as_str())
    );
    // The mounts stay until the reboot: later namespaces find them.
    assert!(vps.home_mounted() && vps.nix_bound());
    assert!(
        vps.volume_file("qwe/.lifeboat/persistence-marker")
            .is_some()
    );
    let mounts = vps.shell(&format!(
        "findmnt -n -o OPTIONS {home}\nfindmnt -n -o FSROOT {nix}\nls {nix}/store",
        home = vps.home.display(),
        nix = vps.nix.display()
    ));
    assert!(mounts.starts_with("rw,"), "{mounts}");
    assert!(mounts.contains("\n/qwe/nix\n"), "{mounts}");
    // The store target shows the volume's store: the system just built is buried under it.
    let name = |path: &Path| path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(mounts.contains(&name(&vps.old_system())), "{mounts}");
    assert!(!mounts.contains(&name(&system)), "{mounts}");

    vps.set_exit("switch", 4);
    let units_failed = rebuild(&vps, &switch);
    assert_eq!(units_failed.code, 4);
    assert!(
        units_failed
            .stderr
            .contains("warning: the following units failed: ollama-model-loader.service")
    );
    assert!(units_failed.home_mounted && units_failed.nix_bound);

    vps.set_exit("switch", 1);
    let activation_failed = rebuild(&vps, &switch);
    assert_eq!(activation_failed.code, 1);
    assert!(
        activation_failed
            .stderr
            .contains("error(s) occurred while switching")
    );

    vps.set_exit("switch", 100);
    vps.forget_home_mount();
    let build_failed = rebuild(&vps, &switch);
    assert_eq!(build_failed.code, 100);
    assert!(build_failed.stderr.contains("failed with exit code 1"));
    assert!(
        !build_failed.home_mounted && !build_failed.nix_bound,
        "activation ran after a failed build"
    );
    assert_eq!(build_failed.stdout, "");
    assert!(!vps.home_mounted() && !vps.nix_bound());

    assert_eq!(vps.calls(), vec![format!("nixos-rebuild {switch}"); 4]);

    // The switched system was never copied into the volume's store: once the reboot puts
    // the volume's store at the store target, the boot entry's system is not found.
    vps.shell("reboot");
    assert_eq!(vps.boot_entry(), Some(system));
    assert!(!vps.boot_entry_in_volume_store());
    assert_eq!(vps.current_system(), None);
}

#[test]
fn a_switch_whose_home_device_is_missing_reports_its_mount_unit_failed() {
    let vps = FreshVps::new(FreshVpsOptions {
        flake_device: Some("/dev/disk/by-id/scsi-0HC_Volume_999".into()),
        old_machine: false,
        ..FreshVpsOptions::default()
    });
    let flake = clone_to_etc_nixos(&vps);
    let switch = rebuild(&vps, &format!("switch --flake {flake}"));
    assert_eq!(switch.code, 4, "{}", switch.stderr);
    // `systemd-escape -p --suffix=mount <home>`, for a temporary directory's name.
    let home_unit = format!(
        "{}.mount",
        key(&vps.home)[1..].replace('-', "\\x2d").replace('/', "-")
    );
    assert!(
        switch.stderr.contains(&format!(
            "warning: the following units failed: {home_unit}, "
        )),
        "{}",
        switch.stderr
    );
    // Nothing mounted; "switched, with failed units": the system is current and booted next.
    assert!(!switch.home_mounted && !vps.home_mounted());
    assert_eq!(switch.stdout, "");
    assert!(vps.current_system().is_some());
    assert_eq!(vps.current_system(), vps.boot_entry());
}

#[test]
fn the_old_machine_left_its_system_in_the_volumes_store_and_profile() {
    let vps = FreshVps::new(FreshVpsOptions::default());
    let old = vps.old_system();
    let name = old.file_name().unwrap().to_string_lossy().into_owned();
    assert!(old.starts_with("/nix/store"), "{}", old.display());
    assert!(name.ends_with(&vps.system_name()), "{name}");
    assert!(vps.in_volume_store(&name));
    let profile = vps.volume_profile();
    assert_eq!(profile, (vec![(1, key(&old))], Some(1)));
    assert_eq!(profile_system(&profile), Some(key(&old).as_str()));
    assert_eq!(vps.expensive_builds(), 1, "the old machine built it");
    assert_eq!(vps.root_profile(), (vec![], None));

    // With the volume's store at /nix, as on the old machine: its database knows the
    // closure, expensive derivation included, and its fstab names the old root disk.
    let seen = vps.with_volume_store(&format!(
        "nix-store --query --requisites {old}\ncat {old}/etc/fstab",
        old = old.display()
    ));
    assert!(seen.contains("-expensive-toolchain-1.0\n"), "{seen}");
    assert!(seen.contains(fresh_vps::OLD_ROOT_UUID), "{seen}");
    assert!(!seen.contains(fresh_vps::FRESH_ROOT_UUID), "{seen}");
    assert!(seen.contains(&key(&vps.device)), "{seen}");

    // The fresh machine's build of the same flake is another system (another root disk).
    let flake = clone_to_etc_nixos(&vps);
    let fresh = rebuild(&vps, &format!("build --flake {flake}"));
    assert_eq!(fresh.code, 0, "{}", fresh.stderr);
    assert_ne!(fresh.stdout, key(&old));
}

#[test]
fn the_volumes_store_feeds_a_fresh_build_only_when_asked_and_trusted() {
    let vps = FreshVps::new(FreshVpsOptions::default());
    let flake = clone_to_etc_nixos(&vps);
    let rw = vps.dir.join("rw");
    let substituter = format!("local?root={}/qwe", rw.display());
    // The volume mounted read-write (Nix 2.8 cannot open a read-only local store), then
    // nixos-rebuild build with ARGS; the store the root disk's is emptied of it afterwards.
    let build = |args: &str| {
        fs::create_dir_all(&rw).unwrap();
        let out = vps.shell(&format!(
            "mount {dev} {rw}\nnixos-rebuild build --flake {flake} {args}\n\
             nix-collect-garbage >/dev/null 2>&1",
            dev = vps.sandbox.loop_device.display(),
            rw = rw.display(),
        ));
        fs::remove_dir(&rw).unwrap();
        out
    };
    assert_eq!(vps.expensive_builds(), 1);
    let system = build(&format!(
        "--option extra-substituters '{substituter}&trusted=1'"
    ));
    assert!(system.ends_with(&vps.system_name()), "{system}");
    assert_eq!(vps.expensive_builds(), 1, "substituted from the volume");
    // Like the Python nixos-rebuild, the stand-in keeps only the last --option.
    build(&format!(
        "--option extra-substituters '{substituter}&trusted=1' --option cores 1"
    ));
    assert_eq!(vps.expensive_builds(), 2, "the substituter was dropped");
    // Locally built paths carry no signature: an untrusted store is not used.
    build(&format!("--option extra-substituters '{substituter}'"));
    assert_eq!(vps.expensive_builds(), 3);
    build("");
    assert_eq!(vps.expensive_builds(), 4);
}

#[test]
fn without_its_database_the_volumes_store_feeds_nothing() {
    let vps = FreshVps::new(FreshVpsOptions {
        volume_store_db: false,
        ..FreshVpsOptions::default()
    });
    let old = vps.old_system();
    assert!(vps.in_volume_store(&old.file_name().unwrap().to_string_lossy()));
    let db = vps.shell(&format!(
        "{}[ -e {}/var/nix/db ] && echo there || echo gone",
        vps.mount_volume_store(),
        vps.volume_store_dir().display()
    ));
    assert_eq!(db, "gone");
    assert_eq!(
        profile_system(&vps.volume_profile()),
        Some(key(&old).as_str())
    );

    let flake = clone_to_etc_nixos(&vps);
    let rw = vps.dir.join("rw");
    fs::create_dir_all(&rw).unwrap();
    vps.shell(&format!(
        "mount {dev} {rw}\nnixos-rebuild build --flake {flake} \
         --option extra-substituters 'local?root={rw}/qwe&trusted=1'",
        dev = vps.sandbox.loop_device.display(),
        rw = rw.display(),
    ));
    assert_eq!(vps.expensive_builds(), 2, "built again");
}

#[test]
fn without_an_old_machine_the_volumes_store_is_empty_but_real() {
    let vps = FreshVps::new(FreshVpsOptions {
        old_machine: false,
        ..FreshVpsOptions::default()
    });
    assert_eq!(vps.expensive_builds(), 0);
    assert_eq!(vps.volume_profile(), (vec![], None));
    let paths =
        vps.with_volume_store("nix --extra-experimental-features nix-command path-info --all");
    assert_eq!(paths, "");
}

#[test]
fn with_a_store_volume_the_store_is_a_second_volume_at_the_store_target() {
    let vps = FreshVps::new(FreshVpsOptions {
        store_volume: true,
        ..FreshVpsOptions::default()
    });
    let store = vps.store_device().unwrap();
    assert_eq!(store, vps.sandbox.by_id_dir.join("scsi-0HC_Volume_2"));
    assert_eq!(
        fs::read_link(&store).unwrap(),
        vps.store_loop_device().unwrap()
    );

    // The config: two volumes, the store recognised by its mount; no bind source.
    let cfg = Config::load(&vps.config()).unwrap();
    assert_eq!(cfg.volumes.len(), 2);
    assert_eq!(
        (&cfg.volumes[0].device, &cfg.volumes[0].mount),
        (&vps.device, &vps.home)
    );
    assert_eq!(
        (&cfg.volumes[1].device, &cfg.volumes[1].mount),
        (&store, &vps.nix)
    );
    assert_eq!(cfg.nix_store.source, None);
    assert_eq!(cfg.nix_store.target, vps.nix);
    // The flake declares it as a filesystem of its own, needed for boot.
    let file_systems = eval_json(&vps, "fileSystems");
    let nix = &file_systems[key(&vps.nix)];
    assert_eq!(nix["device"], key(&store));
    assert_eq!(nix["fsType"], "ext4");
    assert_eq!(nix["neededForBoot"], true);
    // The card lists both volumes.
    let card_path = vps.dir.join("card.toml");
    fs::write(
        &card_path,
        vps.volume_file("qwe/.lifeboat/recovery.toml").unwrap(),
    )
    .unwrap();
    let card = RecoveryCard::load(&card_path).unwrap();
    assert_eq!(card.volumes.len(), 2);
    assert_eq!(
        (&card.volumes[1].device, &card.volumes[1].mount),
        (&store, &vps.nix)
    );

    // The old machine's system and profile are at the store volume's root; the home volume
    // has no store.
    let old = vps.old_system();
    let name = old.file_name().unwrap().to_string_lossy().into_owned();
    assert!(vps.in_volume_store(&name));
    assert_eq!(
        profile_system(&vps.volume_profile()),
        Some(key(&old).as_str())
    );
    assert_eq!(vps.volume_store_dir(), vps.nix);
    let layout = vps.shell(&format!(
        "mount -o ro,noload {dev} {home}\n[ -e {home}/qwe/nix ] && echo store || echo none\n\
         mount -o ro,noload {store} {nix}\nls {nix}",
        dev = vps.sandbox.loop_device.display(),
        home = vps.home.display(),
        store = vps.store_loop_device().unwrap().display(),
        nix = vps.nix.display(),
    ));
    assert_eq!(layout, "none\nlost+found\nstore\nvar", "{layout}");
    assert_eq!(vps.expensive_builds(), 1);

    // Mounted at <m>/nix, it is the store `local?root=<m>` and feeds a fresh build.
    let flake = clone_to_etc_nixos(&vps);
    let rw = vps.dir.join("rw");
    vps.shell(&format!(
        "mkdir -p {rw}/nix\nmount {store} {rw}/nix\nnixos-rebuild build --flake {flake} \
         --option extra-substituters 'local?root={rw}&trusted=1'\numount {rw}/nix\nrm -r {rw}",
        store = vps.store_loop_device().unwrap().display(),
        rw = rw.display(),
    ));
    assert_eq!(
        vps.expensive_builds(),
        1,
        "substituted from the store volume"
    );

    // switch mounts the store volume at the store target; so does the reboot.
    let switch = rebuild(&vps, &format!("switch --flake {flake}"));
    assert_eq!(switch.code, 0, "{}", switch.stderr);
    assert!(switch.home_mounted && switch.nix_bound);
    let source = |vps: &FreshVps| {
        vps.shell(&format!(
            "findmnt -n -o SOURCE {home}\nfindmnt -n -o SOURCE {nix}",
            home = vps.home.display(),
            nix = vps.nix.display()
        ))
    };
    let expected = format!(
        "{}\n{}",
        vps.sandbox.loop_device.display(),
        vps.store_loop_device().unwrap().display()
    );
    assert_eq!(source(&vps), expected);
    vps.forget_home_mount();
    vps.shell("reboot");
    assert_eq!(source(&vps), expected);
}

#[test]
fn generate_config_prints_the_capture_with_the_inspection_mount_point() {
    let vps = FreshVps::new(FreshVpsOptions::default());
    let generate = vps.bin.join("nixos-generate-config");
    let shown = fresh_vps::sh(&format!("{} --show-hardware-config", generate.display()));
    assert!(shown.contains(&format!("fileSystems.\"{}\"", vps.mnt.display())));
    assert!(shown.contains(&format!("fileSystems.\"{}\"", vps.home.display())));
    assert!(shown.contains("fileSystems.\"/\""));
    assert!(!shown.contains("/mnt/data"));
    let bare = fresh_vps::sh(&format!(
        "{} --show-hardware-config --no-filesystems",
        generate.display()
    ));
    assert!(
        !bare.contains("fileSystems") && !bare.contains("swapDevices"),
        "{bare}"
    );
    assert!(bare.contains("boot.initrd.availableKernelModules"));
    assert_eq!(
        vps.calls(),
        [
            "nixos-generate-config --show-hardware-config",
            "nixos-generate-config --show-hardware-config --no-filesystems"
        ]
    );
    assert!(!vps.etc_nixos.exists(), "it wrote something");

    fresh_vps::sh(&vps.bin.join("reboot").to_string_lossy());
    assert_eq!(vps.calls().last().unwrap(), "reboot");
}

#[test]
fn the_volume_carries_card_marker_and_mirror_and_its_store_takes_a_closure() {
    let vps = FreshVps::new(FreshVpsOptions::default());
    let card_path = vps.dir.join("card.toml");
    fs::write(
        &card_path,
        vps.volume_file("qwe/.lifeboat/recovery.toml").unwrap(),
    )
    .unwrap();
    let card = RecoveryCard::load(&card_path).unwrap();
    assert_eq!(card.repository.url, vps.url());
    assert_eq!(card.repository.commit, vps.remote_head());
    assert_eq!(card.repository.flake_host, "devserver");
    assert_eq!((card.user.as_str(), card.uid), ("qwe", 1000));
    assert_eq!(card.volumes[0].device, vps.device);
    assert_eq!(card.volumes[0].mount, vps.home);
    assert_eq!(card.nix_store.source, vps.home.join("qwe/nix"));
    assert_eq!(card.nix_store.target, vps.nix);
    assert_eq!(card.persistence_nonce.as_ref(), Some(&vps.marker_nonce));
    let marker = vps.volume_file("qwe/.lifeboat/persistence-marker").unwrap();
    assert!(marker.contains(&vps.marker_nonce));
    let mirror = vps.shell(&format!(
        "mount -o ro,noload {} {home}\ngit -c safe.directory='*' --git-dir {home}/qwe/nixos-config-backup.git rev-parse main",
        vps.sandbox.loop_device.display(),
        home = vps.home.display()
    ));
    assert_eq!(mirror, vps.remote_head());

    // closure-on-volume by hand: the built system copied into the volume's store.
    let flake = clone_to_etc_nixos(&vps);
    let system = rebuild(&vps, &format!("build --flake {flake}")).stdout;
    let name = Path::new(&system)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(!vps.in_volume_store(&name));
    vps.shell(&format!(
        "mount {} {home}\nnix copy --no-check-sigs --to local?root={home}/qwe {system}",
        vps.sandbox.loop_device.display(),
        home = vps.home.display()
    ));
    assert!(vps.in_volume_store(&name));
    assert!(
        vps.in_volume_store(&format!("{name}/etc/fstab")),
        "the closure"
    );

    // After the reboot the store target is bound from the volume, holding the system.
    assert!(!vps.rebooted());
    vps.shell("reboot");
    assert!(vps.rebooted());
    let after = vps.shell(&format!(
        "findmnt -n -o TARGET {home}\nls {nix}/store",
        home = vps.home.display(),
        nix = vps.nix.display()
    ));
    assert!(after.starts_with(&key(&vps.home)), "{after}");
    assert!(after.contains(&name), "{after}");
    assert_eq!(vps.calls().last().unwrap(), "reboot");
}

#[test]
fn with_flakes_off_only_nix_calls_that_ask_for_them_work() {
    let vps = FreshVps::new(FreshVpsOptions {
        flakes_enabled: false,
        ..FreshVpsOptions::default()
    });
    let plain = vps.shell_output(&format!(
        "nix eval --json {}/remote.git#nixosConfigurations.devserver.config.users.users.qwe.uid",
        vps.dir.display()
    ));
    assert_eq!(plain.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(
        stderr.contains("experimental Nix feature 'nix-command' is disabled"),
        "{stderr}"
    );
    assert_eq!(eval_json(&vps, "users.users.qwe.uid"), 1000);
    let flake = clone_to_etc_nixos(&vps);
    assert_eq!(rebuild(&vps, &format!("build --flake {flake}")).code, 0);
}

#[test]
fn without_a_card_only_the_marker_and_mirror_are_there() {
    let vps = FreshVps::new(FreshVpsOptions {
        with_card: false,
        ..FreshVpsOptions::default()
    });
    assert_eq!(vps.volume_file("qwe/.lifeboat/recovery.toml"), None);
    assert!(
        vps.volume_file("qwe/.lifeboat/persistence-marker")
            .is_some()
    );
    assert!(
        vps.volume_file("qwe/nixos-config-backup.git/HEAD")
            .is_some()
    );
}

#[test]
fn the_configs_point_at_the_scenario_and_an_installer_config_is_there_when_asked() {
    let vps = FreshVps::new(FreshVpsOptions {
        existing_etc_nixos: Some("{ ... }: { boot.loader.grub.device = \"/dev/sda\"; }\n"),
        ..FreshVpsOptions::default()
    });
    let cfg = Config::load(&vps.config()).unwrap();
    assert_eq!(cfg.user.as_deref(), Some("qwe"));
    assert_eq!(cfg.volumes[0].device, vps.device);
    assert_eq!(cfg.volumes[0].mount, vps.home);
    assert_eq!(cfg.nix_store.source, Some(vps.home.join("qwe/nix")));
    assert_eq!(cfg.nix_store.target, vps.nix);
    assert_eq!(cfg.config_repo.url, Some(vps.url()));
    assert_eq!(cfg.config_repo.path, vps.etc_nixos);
    assert_eq!(
        cfg.commands.nixos_rebuild,
        [key(&vps.bin.join("nixos-rebuild"))]
    );
    assert_eq!(cfg.inspect.mountpoint, vps.mnt);
    assert!(
        fs::read_to_string(vps.etc_nixos.join("configuration.nix"))
            .unwrap()
            .contains("grub")
    );
    assert!(vps.etc_nixos.join("hardware-configuration.nix").is_file());

    let bare = FreshVps::new(FreshVpsOptions {
        full_config: false,
        ..FreshVpsOptions::default()
    });
    let cfg = Config::load(&bare.config()).unwrap();
    assert_eq!((cfg.user, cfg.uid, cfg.config_repo.url), (None, None, None));
    assert!(cfg.volumes.is_empty());
    assert_eq!(cfg.state.dir, bare.state);
}

#[test]
fn run_reports_lifeboats_exit_code_and_stderr() {
    let vps = FreshVps::new(FreshVpsOptions::default());
    let bad = vps.dir.join("bad.toml");
    fs::write(&bad, "user = [\n").unwrap();
    let (code, events) = vps.run_with(&bad, &["--yes"]);
    // A usage error: the bad config (or, until recover exists, the missing command).
    assert_eq!(code, 2, "{}", vps.stderr());
    assert!(events.is_empty());
    assert!(vps.stderr().starts_with("lifeboat: "), "{}", vps.stderr());
}
