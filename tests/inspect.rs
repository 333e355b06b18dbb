//! `lifeboat inspect` against real ext4 volumes on loop devices, driven through the real
//! binary. Every test checks that the device's bytes did not change and that no mount is
//! left behind.

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
#[cfg(feature = "fault-injection")]
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
#[cfg(feature = "fault-injection")]
use std::process::{Child, Stdio};
use std::process::{Command, Output};

use nixos_lifeboat::sandbox::{VolumeContents, VolumeSpec};
use serde_json::Value;
use support::{
    TestSandbox, lifeboat_bin, mounts_under, require_private_mount_namespace, sha256_file,
};

/// A finished run of the binary with its JSON events.
struct Run {
    code: i32,
    events: Vec<Value>,
    stderr: String,
}

impl Run {
    fn from_output(output: Output) -> Run {
        let stdout = String::from_utf8(output.stdout).expect("stdout is UTF-8");
        let events = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
            .collect();
        Run {
            code: output.status.code().unwrap_or(-1),
            events,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn summary(&self) -> &Value {
        let last = self.events.last().expect("some events");
        assert_eq!(last["event"], "summary", "the summary comes last: {last}");
        last
    }

    fn step(&self, id: &str) -> (String, String) {
        let step = self.summary()["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("no step {id}"));
        (
            step["status"].as_str().unwrap().to_string(),
            step["message"].as_str().unwrap().to_string(),
        )
    }
}

fn lifeboat(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(lifeboat_bin());
    cmd.arg("-c").arg(config).args(args);
    cmd.env_remove("LIFEBOAT_FAULT");
    cmd
}

fn run_json(config: &Path, args: &[&str]) -> Run {
    let mut cmd = lifeboat(config, args);
    cmd.arg("--json");
    Run::from_output(cmd.output().expect("run lifeboat"))
}

/// A sandbox and the image's hash before anything ran.
fn sandbox(contents: VolumeContents) -> (TestSandbox, String) {
    require_private_mount_namespace();
    let sandbox = TestSandbox::new(&VolumeSpec {
        contents,
        ..VolumeSpec::default()
    });
    let hash = sha256_file(&sandbox.image);
    (sandbox, hash)
}

/// The device is byte for byte what it was and nothing is mounted in the sandbox.
fn assert_untouched(sandbox: &TestSandbox, hash_before: &str) {
    assert_eq!(
        sha256_file(&sandbox.image),
        hash_before,
        "the device changed"
    );
    assert_eq!(
        mounts_under(&sandbox.dir),
        Vec::<PathBuf>::new(),
        "a mount was left behind"
    );
}

fn command_stdout(argv: &[&str]) -> String {
    let out = Command::new(argv[0]).args(&argv[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `du -sB1 -x` and `du --inodes -sx` of `path`.
fn du(path: &Path) -> (u64, u64) {
    let first = |s: String| s.split_whitespace().next().unwrap().parse().unwrap();
    let p = path.to_str().unwrap();
    (
        first(command_stdout(&["du", "-sB1", "-x", p])),
        first(command_stdout(&["du", "--inodes", "-sx", p])),
    )
}

#[test]
fn inspect_reports_identity_layout_and_sizes_equal_to_du() {
    let (sandbox, hash) = sandbox(VolumeContents::Seed);
    let device = sandbox.by_id_link.to_str().unwrap();
    let run = run_json(&sandbox.config_path, &["inspect", device]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_untouched(&sandbox, &hash);

    assert_eq!(run.events[0]["event"], "plan");
    assert!(
        run.events
            .iter()
            .any(|e| e["event"] == "progress" && e["unit"] == "files")
    );
    let summary = run.summary();
    assert_eq!(summary["status"], "passed");
    let volume = &summary["volume"];
    let loop_dev = sandbox.loop_device.to_str().unwrap();
    assert_eq!(volume["device"], device);
    assert_eq!(volume["resolved"], loop_dev);
    assert_eq!(volume["fs_type"], "ext4");
    assert_eq!(
        volume["uuid"],
        command_stdout(&["blkid", "-p", "-s", "UUID", "-o", "value", loop_dev])
    );
    assert_eq!(volume["label"], "lifeboat-demo");
    assert_eq!(
        volume["size_bytes"].as_u64().unwrap(),
        command_stdout(&["blockdev", "--getsize64", loop_dev])
            .parse::<u64>()
            .unwrap()
    );
    assert!(volume["used_bytes"].as_u64().unwrap() > 0);

    let checks = summary["layout"]["checks"].as_array().unwrap();
    let status_of = |id: &str| checks.iter().find(|c| c["id"] == id).unwrap()["status"].clone();
    for id in [
        "home",
        "ssh",
        "projects",
        "config",
        "nix-store",
        "nix-db",
        "docker",
        "config-backup",
    ] {
        assert_eq!(status_of(id), "found", "{id}: {checks:?}");
    }
    assert_eq!(status_of("recovery-card"), "absent");
    assert_eq!(summary["layout"]["user"], "qwe");

    // Every figure equals du of the same entry, on the same volume mounted read-only.
    let tree = summary["tree"].as_array().unwrap();
    let paths: Vec<&str> = tree.iter().map(|r| r["path"].as_str().unwrap()).collect();
    for expected in ["lost+found", "qwe", "qwe/nix", "qwe/.ssh", "qwe/projects"] {
        assert!(paths.contains(&expected), "{expected} not in {paths:?}");
    }
    let view = sandbox.dir.join("du-view");
    fs::create_dir(&view).unwrap();
    let mount = |args: &[&str]| command_stdout(&[&["mount"], args].concat());
    mount(&["-o", "ro,noload", loop_dev, view.to_str().unwrap()]);
    let mut mismatches = Vec::new();
    for row in tree {
        let path = row["path"].as_str().unwrap();
        let (bytes, files) = du(&view.join(path));
        if (
            row["bytes"].as_u64().unwrap(),
            row["files"].as_u64().unwrap(),
        ) != (bytes, files)
        {
            mismatches.push(format!(
                "{path}: lifeboat {row} du {bytes} bytes {files} files"
            ));
        }
    }
    command_stdout(&["umount", view.to_str().unwrap()]);
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    assert_eq!(sha256_file(&sandbox.image), hash);
}

#[test]
fn a_journal_that_needs_recovery_is_not_replayed() {
    let (sandbox, hash) = sandbox(VolumeContents::SeedNeedsRecovery);
    let run = run_json(&sandbox.config_path, &["inspect"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (status, message) = run.step("identify-volume");
    assert_eq!(status, "warning");
    assert!(message.contains("journal needs recovery"), "{message}");
    assert_eq!(run.summary()["volume"]["needs_recovery"], true);
    assert_untouched(&sandbox, &hash);
}

#[test]
fn a_blank_device_is_refused_and_left_untouched() {
    let (sandbox, hash) = sandbox(VolumeContents::Blank);
    let run = run_json(&sandbox.config_path, &["inspect"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let (status, message) = run.step("identify-volume");
    assert_eq!(status, "refused");
    assert!(
        message.contains("no filesystem") && message.contains("never formats"),
        "{message}"
    );
    assert_eq!(run.step("mount-readonly").0, "skipped");
    assert_eq!(run.summary()["status"], "refused");
    assert_untouched(&sandbox, &hash);
}

#[test]
fn another_filesystem_is_refused_and_left_untouched() {
    let (sandbox, hash) = sandbox(VolumeContents::OtherFilesystem("mkfs.ext2".into()));
    let run = run_json(&sandbox.config_path, &["inspect"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let (status, message) = run.step("identify-volume");
    assert_eq!(status, "refused");
    assert!(
        message.contains("holds ext2") && message.contains("not ext4"),
        "{message}"
    );
    assert_untouched(&sandbox, &hash);
}

#[test]
fn a_missing_device_gets_a_clear_message() {
    let (sandbox, hash) = sandbox(VolumeContents::Seed);
    let missing = sandbox.by_id_dir.join("scsi-0HC_Volume_999");
    let run = run_json(
        &sandbox.config_path,
        &["inspect", missing.to_str().unwrap()],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let (status, message) = run.step("find-volume");
    assert_eq!(status, "failed");
    assert!(
        message.contains("does not exist") && message.contains("attached"),
        "{message}"
    );
    assert_untouched(&sandbox, &hash);
}

#[test]
fn a_regular_file_is_refused_as_not_a_block_device() {
    let (sandbox, hash) = sandbox(VolumeContents::Seed);
    let run = run_json(
        &sandbox.config_path,
        &["inspect", sandbox.image.to_str().unwrap()],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.step("identify-volume").1.contains("not a block device"));
    assert_untouched(&sandbox, &hash);
}

/// A config with no `[[volume]]`, so the volume is discovered in the sandbox's by-id dir.
fn discovery_config(sandbox: &TestSandbox) -> PathBuf {
    let path = sandbox.dir.join("discovery.toml");
    fs::write(
        &path,
        format!(
            "[inspect]\nmountpoint = \"{}\"\n[discovery]\nby_id_dir = \"{}\"\n[state]\ndir = \"{}\"\n",
            sandbox.mountpoint.display(),
            sandbox.by_id_dir.display(),
            sandbox.state_dir.display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn discovery_finds_the_one_volume_and_recognises_the_user() {
    let (sandbox, hash) = sandbox(VolumeContents::Seed);
    let run = run_json(&discovery_config(&sandbox), &["inspect"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.step("find-volume").1.contains("discovered"));
    assert_eq!(run.summary()["layout"]["user"], "qwe");
    assert_eq!(run.summary()["layout"]["user_from"], "volume");
    assert_untouched(&sandbox, &hash);
}

#[test]
fn several_candidates_are_listed_and_none_is_guessed() {
    let (sandbox, hash) = sandbox(VolumeContents::Seed);
    let other = sandbox.by_id_dir.join("scsi-0HC_Volume_2");
    std::os::unix::fs::symlink(&sandbox.loop_device, &other).unwrap();
    let partition = sandbox.by_id_dir.join("scsi-0HC_Volume_3-part1");
    std::os::unix::fs::symlink(&sandbox.loop_device, &partition).unwrap();
    let run = run_json(&discovery_config(&sandbox), &["inspect"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let message = run.step("find-volume").1;
    assert!(message.contains("2 volumes match"), "{message}");
    assert!(
        message.contains("scsi-0HC_Volume_2") && !message.contains("part1"),
        "{message}"
    );
    assert_untouched(&sandbox, &hash);
}

#[test]
fn no_candidate_and_no_by_id_directory_are_explained() {
    let (sandbox, hash) = sandbox(VolumeContents::Seed);
    let config = discovery_config(&sandbox);
    fs::remove_file(&sandbox.by_id_link).unwrap();
    let run = run_json(&config, &["inspect"]);
    assert_eq!(run.code, 1);
    assert!(run.step("find-volume").1.contains("no volume found"));
    fs::remove_dir(&sandbox.by_id_dir).unwrap();
    let run = run_json(&config, &["inspect"]);
    assert_eq!(run.code, 1);
    assert!(run.step("find-volume").1.contains("udev"));
    assert_untouched(&sandbox, &hash);
}

#[test]
fn dry_run_shows_the_mount_and_mounts_nothing() {
    let (sandbox, hash) = sandbox(VolumeContents::Seed);
    let mountpoint_existed = sandbox.mountpoint.exists();
    let run = run_json(&sandbox.config_path, &["inspect", "--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plan = &run.events[0];
    assert_eq!(plan["event"], "plan");
    assert_eq!(plan["dry_run"], true);
    let mount_step = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "mount-readonly")
        .unwrap();
    let action = &mount_step["actions"][0];
    assert_eq!(action["kind"], "mount");
    assert_eq!(action["device"], sandbox.loop_device.to_str().unwrap());
    assert_eq!(action["target"], sandbox.mountpoint.to_str().unwrap());
    assert_eq!(
        action["options"],
        serde_json::json!(["ro", "nosuid", "nodev", "noexec", "noload"])
    );
    assert!(
        run.step("mount-readonly")
            .1
            .starts_with("dry run: would mount")
    );
    assert_eq!(
        sandbox.mountpoint.exists(),
        mountpoint_existed,
        "dry run created the mount point"
    );
    assert!(
        !sandbox.state_dir.join("journal.json").exists(),
        "dry run wrote a journal"
    );
    assert!(
        !sandbox.state_dir.join("transcripts").exists(),
        "dry run wrote a transcript"
    );
    assert_untouched(&sandbox, &hash);
}

#[test]
fn a_bad_config_is_exit_2_with_file_line_and_key() {
    let (sandbox, _) = sandbox(VolumeContents::Seed);
    let bad = sandbox.dir.join("bad.toml");
    fs::write(
        &bad,
        "user = \"qwe\"\n\n[inspect]\nmountpoint = \"mnt/data\"\n",
    )
    .unwrap();
    let run = run_json(&bad, &["inspect"]);
    assert_eq!(run.code, 2);
    assert!(run.events.is_empty());
    let expected = format!("{}:4:", bad.display());
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    assert!(run.stderr.contains("inspect.mountpoint"), "{}", run.stderr);
    fs::write(&bad, "[inspect]\nmountpoint = \"/mnt\"\ncolour = 1\n").unwrap();
    let run = run_json(&bad, &["inspect"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains(":3:") && run.stderr.contains("colour"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_already_mounted_volume_is_inspected_in_place_and_stays_mounted() {
    let (sandbox, _) = sandbox(VolumeContents::Seed);
    let home = sandbox.dir.join("home");
    fs::create_dir(&home).unwrap();
    let loop_dev = sandbox.loop_device.to_str().unwrap();
    command_stdout(&["mount", "-o", "ro,noload", loop_dev, home.to_str().unwrap()]);
    let run = run_json(&sandbox.config_path, &["inspect"]);
    command_stdout(&["umount", home.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.step("mount-readonly").1.contains("already mounted"));
    assert_eq!(run.step("unmount").0, "skipped");
    assert_eq!(
        run.summary()["volume"]["mounted_at"],
        home.to_str().unwrap()
    );
    assert_eq!(run.summary()["volume"]["in_place"], true);
    assert!(
        !sandbox.mountpoint.exists() || fs::read_dir(&sandbox.mountpoint).unwrap().next().is_none()
    );
}

#[test]
fn the_headless_summary_names_the_volume_and_its_sizes() {
    let (sandbox, hash) = sandbox(VolumeContents::Seed);
    let out = lifeboat(&sandbox.config_path, &["inspect", "--headless"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stdout.contains("ext4") && stdout.contains("qwe/nix") && stdout.contains("Result  passed"),
        "{stdout}"
    );
    assert!(stderr.contains("==> mount-readonly"), "{stderr}");
    assert!(!stdout.contains('\u{1b}') && !stderr.contains('\u{1b}'));
    assert_untouched(&sandbox, &hash);
}

#[test]
fn headless_output_lines_come_in_order_within_their_step() {
    let (sandbox, hash) = sandbox(VolumeContents::Seed);
    fs::create_dir_all(&sandbox.mountpoint).unwrap();
    fs::write(sandbox.mountpoint.join("left-here"), "x").unwrap();
    let out = lifeboat(&sandbox.config_path, &["inspect", "--headless"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    let at = |wanted: &dyn Fn(&str) -> bool| lines.iter().position(|l| wanted(l));
    let step = at(&|l| l == "==> mount-readonly").expect("the step starts");
    let note = at(&|l| l.starts_with("    | ") && l.ends_with("not touched")).expect("the note");
    let done = step
        + lines[step..]
            .iter()
            .position(|l| l.starts_with("    ok:"))
            .unwrap();
    assert!(step < note && note < done, "{stderr}");
    assert_untouched(&sandbox, &hash);
}

/// Start a JSON run that pauses before `step`, and wait until it is there.
#[cfg(feature = "fault-injection")]
fn start_paused(config: &Path, step: &str) -> (Child, Vec<Value>) {
    let mut child = lifeboat(config, &["inspect", "--json"])
        .env("LIFEBOAT_FAULT", format!("pause:{step}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut events = Vec::new();
    for line in lines.by_ref() {
        let event: Value = serde_json::from_str(&line.unwrap()).unwrap();
        let reached =
            event["event"] == "step" && event["step"] == step && event["status"] == "running";
        events.push(event);
        if reached {
            // Keep draining stdout in the background so the run never blocks on it.
            std::thread::spawn(move || lines.for_each(drop));
            return (child, events);
        }
    }
    let _ = child.kill();
    let status = child.wait();
    panic!("the run ended before {step} ({status:?}): {events:?}");
}

#[cfg(feature = "fault-injection")]
fn signal(child: &Child, signal: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, signal).unwrap();
}

#[test]
#[cfg(feature = "fault-injection")]
fn sigint_and_sigterm_mid_run_unmount_and_exit_130() {
    let (sandbox, hash) = sandbox(VolumeContents::Seed);
    for sig in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGTERM,
    ] {
        let (mut child, _) = start_paused(&sandbox.config_path, "measure");
        assert_eq!(mounts_under(&sandbox.dir), vec![sandbox.mountpoint.clone()]);
        signal(&child, sig);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "{sig}");
        assert_untouched(&sandbox, &hash);
    }
}

#[test]
#[cfg(feature = "fault-injection")]
fn a_killed_run_leaves_a_mount_that_the_next_run_undoes() {
    let (sandbox, hash) = sandbox(VolumeContents::Seed);
    let (mut child, _) = start_paused(&sandbox.config_path, "check-layout");
    signal(&child, nix::sys::signal::Signal::SIGKILL);
    child.wait().unwrap();
    assert_eq!(mounts_under(&sandbox.dir), vec![sandbox.mountpoint.clone()]);

    let run = run_json(&sandbox.config_path, &["inspect"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let undone = run.events.iter().any(|e| {
        e["event"] == "output"
            && e["line"]
                .as_str()
                .unwrap()
                .contains("undid the read-only mount")
    });
    assert!(undone, "{:?}", run.events);
    assert_untouched(&sandbox, &hash);
}

#[test]
#[cfg(feature = "fault-injection")]
fn a_panic_mid_run_still_unmounts() {
    let (sandbox, hash) = sandbox(VolumeContents::Seed);
    let out = lifeboat(&sandbox.config_path, &["inspect", "--json"])
        .env("LIFEBOAT_FAULT", "panic:measure")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(101));
    assert_untouched(&sandbox, &hash);
    let run = run_json(&sandbox.config_path, &["inspect"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
#[cfg(feature = "fault-injection")]
fn resume_continues_with_the_device_of_the_interrupted_run() {
    let (sandbox, hash) = sandbox(VolumeContents::Seed);
    let config = discovery_config(&sandbox);
    let mut cmd = lifeboat(
        &config,
        &["inspect", "--json", sandbox.by_id_link.to_str().unwrap()],
    );
    let mut child = cmd
        .env("LIFEBOAT_FAULT", "pause:measure")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the mount exists, i.e. the run reached the pause.
    while mounts_under(&sandbox.dir).is_empty() {
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    signal(&child, nix::sys::signal::Signal::SIGKILL);
    child.wait().unwrap();
    // Without --resume the same config discovers the volume; with it, the run takes the
    // device the journal recorded, as it was given.
    let run = run_json(&config, &["inspect", "--resume"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.step("find-volume").1.contains("as given"));
    assert_untouched(&sandbox, &hash);
}

#[test]
fn resume_without_a_journal_is_a_usage_error() {
    let (sandbox, _) = sandbox(VolumeContents::Seed);
    let run = run_json(&sandbox.config_path, &["inspect", "--resume"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("nothing to resume"), "{}", run.stderr);
}

#[test]
#[cfg(feature = "fault-injection")]
fn a_second_run_while_one_holds_the_lock_is_turned_away() {
    let (sandbox, hash) = sandbox(VolumeContents::Seed);
    let (mut child, _) = start_paused(&sandbox.config_path, "measure");
    let run = run_json(&sandbox.config_path, &["inspect"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("another lifeboat run"),
        "{}",
        run.stderr
    );
    signal(&child, nix::sys::signal::Signal::SIGINT);
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert_untouched(&sandbox, &hash);
}

#[test]
fn the_transcript_and_journal_record_the_run() {
    let (sandbox, _) = sandbox(VolumeContents::Seed);
    let run = run_json(&sandbox.config_path, &["inspect"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let journal: Value =
        serde_json::from_str(&fs::read_to_string(sandbox.state_dir.join("journal.json")).unwrap())
            .unwrap();
    assert_eq!(journal["flow"], "inspect");
    assert_eq!(journal["finished"], "passed");
    assert_eq!(journal["mounts"], serde_json::json!([]));
    let transcripts: Vec<_> = fs::read_dir(sandbox.state_dir.join("transcripts"))
        .unwrap()
        .collect();
    assert_eq!(transcripts.len(), 1);
    let text = fs::read_to_string(transcripts[0].as_ref().unwrap().path()).unwrap();
    let events = text.lines().count();
    assert_eq!(events, run.events.len(), "the transcript holds every event");
}

#[test]
fn demo_builds_inspects_and_cleans_its_sandbox() {
    require_private_mount_namespace();
    let dir = tempfile::tempdir().unwrap();
    let guard = support::DemoDir(dir.path().join("demo"));
    let sandbox_dir = guard.0.clone();
    let demo = |args: &[&str]| {
        Command::new(lifeboat_bin())
            .args(["demo", "--dir", sandbox_dir.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap()
    };
    let out = demo(&["--json"]);
    let run = Run::from_output(out);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.summary()["volume"]["fs_type"], "ext4");
    let out = demo(&["--clean"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!sandbox_dir.exists());
    let losetup = command_stdout(&["losetup", "-a"]);
    assert!(
        !losetup.contains(sandbox_dir.to_str().unwrap()),
        "{losetup}"
    );
}

#[test]
fn hostile_names_and_files_are_shown_escaped_and_never_followed() {
    let (sandbox, _) = sandbox(VolumeContents::Seed);
    let rw = sandbox.dir.join("rw");
    fs::create_dir(&rw).unwrap();
    // Written in a namespace of its own, so no read-write mount is visible to other tests.
    let script = format!(
        r#"mount {dev} {rw}
h={rw}/qwe/projects/hostile
mkdir "$h"
touch "$h/$(printf 'esc\033[31mred')" "$h/$(printf 'new\nline')" "$h/$(printf 'bad\377utf8')"
touch "{rw}/$(printf 'top\033]0;title\007')"
ln -s / "$h/root" && ln -s loop "$h/loop"
mknod "$h/disk" b 7 0 && mknod "$h/null" c 1 3 && mkfifo "$h/fifo"
touch "$h/setuid" && chmod 4755 "$h/setuid"
d="$h/deep"; for i in $(seq 300); do d="$d/d"; done; mkdir -p "$d"
umount {rw}"#,
        dev = sandbox.loop_device.display(),
        rw = rw.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-ec", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash = sha256_file(&sandbox.image);

    let out = lifeboat(&sandbox.config_path, &["inspect", "--headless"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for stream in [&out.stdout, &out.stderr] {
        let raw_control = stream.iter().any(|&b| b == 0x1b || b == 0x07 || b == 0xff);
        assert!(!raw_control, "raw control bytes reached the terminal");
    }
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains(r"top\e]0;title\u{7}"), "{stdout}");

    let run = run_json(&sandbox.config_path, &["inspect"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let tree = run.summary()["tree"].as_array().unwrap().clone();
    let projects = tree.iter().find(|r| r["path"] == "qwe/projects").unwrap();
    let view = sandbox.dir.join("du-view");
    fs::create_dir(&view).unwrap();
    let loop_dev = sandbox.loop_device.to_str().unwrap();
    command_stdout(&["mount", "-o", "ro,noload", loop_dev, view.to_str().unwrap()]);
    let (bytes, files) = du(&view.join("qwe/projects"));
    command_stdout(&["umount", view.to_str().unwrap()]);
    assert_eq!(
        (
            projects["bytes"].as_u64().unwrap(),
            projects["files"].as_u64().unwrap()
        ),
        (bytes, files)
    );
    assert_untouched(&sandbox, &hash);
}
