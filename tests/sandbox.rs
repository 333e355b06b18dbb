//! Practice volumes: what `Sandbox::create` builds, and that `Sandbox::clean` leaves no trace.

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use nixos_lifeboat::sandbox::{Sandbox, SandboxError, VolumeContents, VolumeSpec};
use support::{TestSandbox, mounts_under, require_private_mount_namespace, sha256_file};

/// A small volume (64 MiB) with these contents; the seed fits with room to spare.
fn spec(contents: VolumeContents) -> VolumeSpec {
    VolumeSpec {
        contents,
        size_bytes: 64 << 20,
        ..VolumeSpec::default()
    }
}

/// Run a command that must succeed; its stdout.
fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// What `blkid` finds on the device itself (`-p`: its cache may remember a reused loop device).
fn blkid(device: &Path, tag: &str) -> String {
    run("blkid", &["-p", "-o", "value", "-s", tag, path_str(device)])
        .trim()
        .to_string()
}

fn mount(sandbox: &Sandbox, options: &str) {
    run(
        "mount",
        &[
            "-o",
            options,
            path_str(&sandbox.loop_device),
            path_str(&sandbox.mountpoint),
        ],
    );
}

/// Unmount and push everything the kernel wrote through the loop device into the image.
fn unmount(sandbox: &Sandbox) {
    run("umount", &[path_str(&sandbox.mountpoint)]);
    fs::File::open(&sandbox.loop_device)
        .and_then(|device| device.sync_all())
        .expect("flush the loop device");
}

/// Loop devices backed by `image`, as `losetup` reports them.
fn loops_of(image: &Path) -> Vec<String> {
    run(
        "losetup",
        &["--noheadings", "-O", "NAME", "-j", path_str(image)],
    )
    .lines()
    .map(str::to_string)
    .collect()
}

/// The backing file of a loop device, if it has one (`/dev/loop3` -> `/sys/block/loop3/...`).
fn backing_file(device: &str) -> Option<String> {
    let name = device.strip_prefix("/dev/").unwrap();
    fs::read_to_string(format!("/sys/block/{name}/loop/backing_file")).ok()
}

fn needs_recovery(image: &Path) -> bool {
    run("dumpe2fs", &["-h", path_str(image)])
        .lines()
        .any(|l| l.starts_with("Filesystem features:") && l.contains("needs_recovery"))
}

#[test]
fn create_attaches_a_labelled_ext4_image_behind_a_by_id_link() {
    let sandbox = TestSandbox::new(&VolumeSpec::default());

    assert_eq!(loops_of(&sandbox.image), [path_str(&sandbox.loop_device)]);
    assert_eq!(
        sandbox.by_id_link,
        sandbox.by_id_dir.join("scsi-0HC_Volume_100000001")
    );
    assert_eq!(
        fs::canonicalize(&sandbox.by_id_link).unwrap(),
        sandbox.loop_device
    );
    assert_eq!(blkid(&sandbox.loop_device, "TYPE"), "ext4");
    assert_eq!(blkid(&sandbox.loop_device, "LABEL"), "lifeboat-demo");

    let image = fs::metadata(&sandbox.image).unwrap();
    assert_eq!(image.len(), 256 << 20);
    assert!(
        image.blocks() * 512 < image.len() / 2,
        "image is not sparse: {} bytes allocated",
        image.blocks() * 512
    );
    assert!(sandbox.mountpoint.is_dir() && sandbox.state_dir.is_dir());
}

#[test]
fn the_config_points_at_the_sandbox() {
    let sandbox = TestSandbox::new(&VolumeSpec::default());
    let text = fs::read_to_string(&sandbox.config_path).unwrap();
    let config: toml::Table = text.parse().unwrap();
    let volume = &config["volume"].as_array().unwrap()[0];
    let expect = [
        (&config["user"], "qwe"),
        (&volume["device"], path_str(&sandbox.by_id_link)),
        (&volume["mount"], "/home"),
        (&volume["fs_type"], "ext4"),
        (&config["nix_store"]["source"], "/home/qwe/nix"),
        (
            &config["inspect"]["mountpoint"],
            path_str(&sandbox.mountpoint),
        ),
        (
            &config["discovery"]["by_id_dir"],
            path_str(&sandbox.by_id_dir),
        ),
        (&config["discovery"]["pattern"], "scsi-0HC_Volume_*"),
        (&config["state"]["dir"], path_str(&sandbox.state_dir)),
        (&config["docker"]["data_root"], "/home/qwe/docker"),
    ];
    for (value, wanted) in expect {
        assert_eq!(value.as_str(), Some(wanted), "{text}");
    }
    assert_eq!(config["uid"].as_integer(), Some(1000), "{text}");
}

#[test]
fn the_seed_tree_keeps_owners_modes_symlinks_and_hard_links() {
    require_private_mount_namespace();
    let sandbox = TestSandbox::new(&VolumeSpec {
        user: "ops".to_string(),
        uid: 1234,
        ..VolumeSpec::default()
    });
    mount(&sandbox, "ro,noload");
    let root = &sandbox.mountpoint;
    let home = root.join("ops");

    assert!(root.join("lost+found").is_dir());
    assert_eq!(fs::metadata(root).unwrap().uid(), 0);
    let mode = |path: &Path| fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777;
    for (path, wanted) in [
        (home.clone(), 0o755),
        (home.join(".ssh"), 0o700),
        (home.join(".ssh/id_ed25519"), 0o600),
        (home.join(".ssh/authorized_keys"), 0o600),
    ] {
        assert_eq!(mode(&path), wanted, "{}", path.display());
        assert_eq!(
            fs::metadata(&path).unwrap().uid(),
            1234,
            "{}",
            path.display()
        );
        assert_eq!(
            fs::metadata(&path).unwrap().gid(),
            1234,
            "{}",
            path.display()
        );
    }
    let backup = fs::read_to_string(home.join("nixos-config-backup/configuration.nix")).unwrap();
    assert!(backup.contains("users.users.ops"), "{backup}");
    assert!(home.join("nixos-config-backup/flake.nix").is_file());
    assert!(home.join("nix/var/nix/db/db.sqlite").is_file());
    assert!(home.join("docker").is_dir());

    let store = home.join("nix/store");
    let paths: Vec<PathBuf> = fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.ends_with(".links"))
        .collect();
    assert_eq!(paths.len(), 40);

    // Every license file is the same inode as one in .links, as `nix-store --optimise` leaves it.
    let links: Vec<fs::Metadata> = fs::read_dir(store.join(".links"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap())
        .collect();
    assert_eq!(links.len(), 3);
    let glibc = paths
        .iter()
        .find(|p| p.to_str().unwrap().ends_with("-glibc-2.40-66"))
        .unwrap();
    let license = fs::metadata(glibc.join("share/licenses/glibc/COPYING")).unwrap();
    assert!(license.nlink() > 2, "nlink {}", license.nlink());
    assert!(links.iter().any(|l| l.ino() == license.ino()));

    let relative = fs::read_link(glibc.join("lib/libglibc.so")).unwrap();
    assert_eq!(relative, Path::new("libglibc.so.2"));
    let profile = fs::read_link(home.join("nix/var/nix/profiles/default-1-link")).unwrap();
    assert!(profile.starts_with("/nix/store/"), "{}", profile.display());
    let environment = store.join(profile.file_name().unwrap());
    let absolute = fs::read_link(environment.join("bin/git")).unwrap();
    assert!(
        absolute.starts_with("/nix/store/"),
        "{}",
        absolute.display()
    );
    assert!(
        store
            .join(absolute.strip_prefix("/nix/store").unwrap())
            .is_file()
    );

    let archive = fs::metadata(glibc.join("lib/locale/locale-archive")).unwrap();
    assert_eq!(archive.len(), 32 << 20);
    assert!(archive.blocks() * 512 < archive.len() / 8, "not sparse");
    assert_eq!(archive.mtime(), 1);
}

#[test]
fn a_plain_read_only_mount_replays_a_journal_that_needs_recovery() {
    require_private_mount_namespace();
    let sandbox = TestSandbox::new(&spec(VolumeContents::SeedNeedsRecovery));
    assert!(needs_recovery(&sandbox.image));
    let before = sha256_file(&sandbox.image);

    mount(&sandbox, "ro,noload");
    unmount(&sandbox);
    assert_eq!(sha256_file(&sandbox.image), before, "ro,noload wrote");

    mount(&sandbox, "ro");
    unmount(&sandbox);
    assert_ne!(
        sha256_file(&sandbox.image),
        before,
        "plain ro did not write"
    );
    assert!(!needs_recovery(&sandbox.image));
}

#[test]
fn a_plain_read_only_mount_leaves_a_clean_seed_alone() {
    require_private_mount_namespace();
    let sandbox = TestSandbox::new(&spec(VolumeContents::Seed));
    assert!(!needs_recovery(&sandbox.image));
    let before = sha256_file(&sandbox.image);
    mount(&sandbox, "ro");
    unmount(&sandbox);
    assert_eq!(sha256_file(&sandbox.image), before);
}

#[test]
fn a_blank_volume_is_all_zeros() {
    let sandbox = TestSandbox::new(&spec(VolumeContents::Blank));
    let contents = fs::read(&sandbox.loop_device).unwrap();
    assert_eq!(contents.len(), 64 << 20);
    assert!(contents.iter().all(|&b| b == 0));
    let status = Command::new("blkid")
        .arg("-p")
        .arg(&sandbox.loop_device)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(2), "blkid found something");
}

#[test]
fn another_filesystem_is_what_its_program_made() {
    for (program, fs_type) in [("mkfs.ext2", "ext2"), ("mkswap", "swap")] {
        let sandbox = TestSandbox::new(&spec(VolumeContents::OtherFilesystem(program.into())));
        assert_eq!(blkid(&sandbox.loop_device, "TYPE"), fs_type, "{program}");
    }
}

#[test]
fn clean_unmounts_detaches_and_removes_and_can_run_twice() {
    require_private_mount_namespace();
    let sandbox = TestSandbox::new(&VolumeSpec::default());
    mount(&sandbox, "ro,noload");
    // A second attachment, as a run killed before recording its device would leave.
    run("losetup", &["--find", path_str(&sandbox.image)]);
    assert_eq!(loops_of(&sandbox.image).len(), 2);
    assert_eq!(mounts_under(&sandbox.dir), [sandbox.mountpoint.as_path()]);

    let devices = loops_of(&sandbox.image);

    Sandbox::clean(&sandbox.dir).unwrap();
    assert!(!sandbox.dir.exists());
    assert_eq!(mounts_under(&sandbox.dir), Vec::<PathBuf>::new());
    for device in &devices {
        // Detached, or already reused by another test's image. The kernel lets a loop
        // device go once its last user has (a detach of a busy device is deferred), so
        // give it a moment.
        let attached = || backing_file(device).filter(|b| b.starts_with(path_str(&sandbox.image)));
        let mut backing = attached();
        for _ in 0..50 {
            if backing.is_none() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            backing = attached();
        }
        assert!(backing.is_none(), "{device} still attached to {backing:?}");
    }
    Sandbox::clean(&sandbox.dir).unwrap();
}

#[test]
fn clean_refuses_a_directory_that_is_not_a_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let precious = dir.path().join("precious");
    fs::write(&precious, "keep me").unwrap();
    let refused = Sandbox::clean(dir.path());
    assert!(
        matches!(refused, Err(SandboxError::NotASandbox { .. })),
        "{refused:?}"
    );

    fs::write(
        dir.path().join("lifeboat-sandbox.json"),
        r#"{"format":"other"}"#,
    )
    .unwrap();
    let refused = Sandbox::clean(dir.path());
    assert!(
        matches!(refused, Err(SandboxError::NotASandbox { .. })),
        "{refused:?}"
    );
    assert!(precious.is_file());
}

#[test]
fn create_refuses_a_directory_with_something_in_it() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("precious"), "keep me").unwrap();
    let refused = Sandbox::create(dir.path(), &VolumeSpec::default());
    assert!(
        matches!(refused, Err(SandboxError::NotEmpty { .. })),
        "{refused:?}"
    );
    assert!(dir.path().join("precious").is_file());
}

#[test]
fn a_create_that_fails_halfway_leaves_nothing_behind() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("sandbox");

    let failed = Sandbox::create(&dir, &spec(VolumeContents::OtherFilesystem("false".into())));
    match failed {
        Err(SandboxError::CommandFailed {
            command, status, ..
        }) => {
            assert!(command.starts_with("false "), "{command}");
            assert_eq!(status.code(), Some(1));
        }
        other => panic!("expected a failed command, got {other:?}"),
    }
    assert!(!dir.exists());

    let program = "mkfs.lifeboat-none".to_string();
    let failed = Sandbox::create(&dir, &spec(VolumeContents::OtherFilesystem(program)));
    assert!(
        matches!(&failed, Err(SandboxError::MissingTool { program, .. }) if program == "mkfs.lifeboat-none"),
        "{failed:?}"
    );
    assert!(!dir.exists());
}

#[test]
fn open_finds_the_sandbox_and_reattaches_its_image() {
    let sandbox = TestSandbox::new(&spec(VolumeContents::Blank));
    assert_eq!(Sandbox::open(&sandbox.dir).unwrap(), *sandbox);

    // As after a reboot: no loop device holds the image any more.
    run("losetup", &["-d", path_str(&sandbox.loop_device)]);
    assert_eq!(loops_of(&sandbox.image), Vec::<String>::new());
    let reopened = Sandbox::open(&sandbox.dir).unwrap();
    assert_eq!(loops_of(&sandbox.image), [path_str(&reopened.loop_device)]);
    assert_eq!(
        fs::canonicalize(&reopened.by_id_link).unwrap(),
        reopened.loop_device
    );
    assert_eq!(Sandbox::open(&sandbox.dir).unwrap(), reopened);
}
