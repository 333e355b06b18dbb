//! The `lifeboat recover` test scenario itself (tests/support/fresh_vps.rs), checked
//! without lifeboat: the remote clones, the test flake evaluates and builds with the real
//! Nix like a NixOS configuration, the stand-ins behave like the tools they replace, and
//! the volume carries what `predestroy` leaves on it.

#[path = "support/fresh_vps.rs"]
mod fresh_vps;
mod support;

use std::fs;
use std::path::Path;

use fresh_vps::{FreshVps, FreshVpsOptions, quote};
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
    assert_eq!(build.code, 0, "{}", build.stderr);
    assert!(
        build.stdout.starts_with("/nix/store/")
            && build.stdout.ends_with(&format!("-{}", vps.system_name())),
        "{}",
        build.stdout
    );
    assert!(
        build
            .stderr
            .contains("building the system configuration...")
    );
    assert!(
        build.stderr.contains("@nix {\"action\":\"start\""),
        "{}",
        build.stderr
    );
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
fn switch_mounts_the_home_but_not_the_store_and_exits_as_asked() {
    let vps = FreshVps::new(FreshVpsOptions::default());
    let flake = clone_to_etc_nixos(&vps);
    let switch = format!("switch --flake {flake}");

    let ok = rebuild(&vps, &switch);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(ok.stdout.ends_with(&vps.system_name()));
    assert!(ok.stderr.contains("activating the configuration..."));
    assert!(
        ok.stderr
            .contains(&format!("Done. The new configuration is {}", ok.stdout)),
        "{}",
        ok.stderr
    );
    assert!(ok.home_mounted && !ok.nix_bound);
    assert_eq!(vps.current_system(), Some(ok.stdout.clone().into()));
    // The mount stays until the reboot: later namespaces find the volume at the home.
    assert!(vps.home_mounted());
    assert!(
        vps.volume_file("qwe/.lifeboat/persistence-marker")
            .is_some()
    );
    let options = vps.shell(&format!("findmnt -n -o OPTIONS {}", vps.home.display()));
    assert!(options.starts_with("rw,"), "{options}");

    vps.set_exit("switch", 4);
    let units_failed = rebuild(&vps, &switch);
    assert_eq!(units_failed.code, 4);
    assert!(
        units_failed
            .stderr
            .contains("warning: the following units failed: ollama-model-loader.service")
    );
    assert!(units_failed.home_mounted && !units_failed.nix_bound);

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
        !build_failed.home_mounted,
        "activation ran after a failed build"
    );
    assert_eq!(build_failed.stdout, "");
    assert!(!vps.home_mounted());

    assert_eq!(vps.calls(), vec![format!("nixos-rebuild {switch}"); 4]);
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
