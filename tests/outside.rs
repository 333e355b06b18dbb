//! Failures from outside lifeboat, each with real parts: a volume that is full (a real
//! loop ext4 filled to its last block), a read-only `/etc`, a flake that does not evaluate,
//! `nixos-rebuild` exiting 1, 4 and 100 or printing a 10 MiB line and bytes that are not
//! UTF-8, and a device that stops answering while the volume is walked. Each must end with
//! a message that says what happened and what to do, the exit code of the design, and no
//! file lost or replaced by a truncated one.

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

#[path = "support/fresh_vps.rs"]
mod fresh_vps;
#[path = "support/predestroy_host.rs"]
mod predestroy_host;
mod support;

use std::fs;
use std::path::Path;

use serde_json::Value;

/// Status and message of step `id` in the summary, which comes last.
fn step<'a>(events: &'a [Value], id: &str) -> (&'a str, &'a str) {
    fresh_vps::step(events, id)
}

/// Fill the filesystem mounted at `mount` to its last block, the blocks reserved for root
/// included (lifeboat runs as root), with files outside the user's home, so the backup
/// does not copy them: until writing a few bytes more fails.
fn fill_script(mount: &Path) -> String {
    format!(
        "cd {mount}\n\
         fallocate -l $(( $(stat -f -c %f .) * $(stat -f -c %S .) - (16 << 20) )) fill\n\
         i=0\n\
         while echo probe 2>/dev/null >probe-$i; do\n\
         \x20   dd if=/dev/zero of=fill-$i bs=1024 2>/dev/null || true\n\
         \x20   sync\n\
         \x20   i=$((i + 1)); [ $i -lt 50 ]\n\
         done",
        mount = fresh_vps::quote(&mount.to_string_lossy())
    )
}

/// The volume's files that predestroy writes, by their path relative to the volume root.
const PREDESTROY_FILES: [&str; 7] = [
    "qwe/.lifeboat/nix-env-packages.txt",
    "qwe/.lifeboat/system-requisites.txt",
    "qwe/.lifeboat/home-manager-packages.txt",
    "qwe/.lifeboat/persistence-marker",
    "qwe/.lifeboat/recovery.toml",
    "lifeboat-host/files/etc/ssh/ssh_host_ed25519_key.pub",
    "lifeboat-host/files/var/lib/nixos/uid-map",
];

mod full_volume {
    use super::*;
    use predestroy_host::{Host, git};

    #[test]
    fn predestroy_on_a_full_volume_fails_each_write_and_keeps_every_earlier_file() {
        let host = Host::new(true);
        let (code, events) = host.predestroy(true, "--yes");
        assert_eq!(code, 0, "{events:#?}");
        let before: Vec<Option<String>> = PREDESTROY_FILES
            .iter()
            .map(|f| host.volume_file(f))
            .collect();
        assert!(before.iter().all(Option::is_some), "{before:?}");
        let mirror_head = || {
            host.in_namespace(
                false,
                &format!(
                    "git -c safe.directory='*' -C {}/qwe/nixos-config-backup.git rev-parse main",
                    host.home.display()
                ),
            )
        };
        let mirror_before = mirror_head();

        // What the next run would write differs: a new commit, another package.
        fs::write(host.repo.join("hosts.nix"), "{ }\n").unwrap();
        git(&host.repo, "add hosts.nix");
        git(&host.repo, "commit -q -m hosts");
        fs::write(
            host.bin.join("home-manager"),
            "#!/bin/sh\necho hello-2.12.1\necho ripgrep-14.1.0\necho jq-1.7\n",
        )
        .unwrap();
        host.in_namespace(false, &fill_script(&host.home));

        let (code, events) = host.predestroy(true, "--yes");
        assert_eq!(code, 1, "{events:#?}");
        for id in [
            "config-mirror",
            "package-lists",
            "host-identity",
            "persistence-marker",
            "recovery-card",
        ] {
            let (status, message) = step(&events, id);
            assert_eq!(status, "failed", "{id}: {message}");
            assert!(
                message.contains("full")
                    && message.contains("ENOSPC")
                    && message.contains(&host.home.display().to_string())
                    && message.contains("Free space"),
                "{id}: {message}"
            );
        }
        // The backup only reads the volume: a full one does not stop it.
        assert_eq!(step(&events, "backup").0, "passed");
        let after: Vec<Option<String>> = PREDESTROY_FILES
            .iter()
            .map(|f| host.volume_file(f))
            .collect();
        assert_eq!(before, after, "a file on the full volume changed");
        assert_eq!(mirror_head(), mirror_before);
        let leftovers = host.in_namespace(
            false,
            &format!(
                "find {} -name '.lifeboat-*.tmp'",
                host.home.join("qwe").display()
            ),
        );
        assert_eq!(leftovers, "", "temporary files left on the volume");
    }
}

mod full_volume_recover {
    use super::*;
    use fresh_vps::{FreshVps, FreshVpsOptions, quote};

    /// Fill the volume through a read-write mount in a namespace of its own.
    fn fill(vps: &FreshVps) {
        let rw = vps.dir.join("rw");
        fs::create_dir_all(&rw).unwrap();
        vps.shell(&format!(
            "mount {dev} {rw}\n{fill}\ncd /\numount {rw}",
            dev = quote(&vps.sandbox.loop_device.to_string_lossy()),
            rw = quote(&rw.to_string_lossy()),
            fill = fill_script(&rw),
        ));
        fs::remove_dir(&rw).unwrap();
    }

    #[test]
    fn a_closure_that_does_not_fit_on_the_volume_stops_before_the_reboot() {
        let vps = FreshVps::new(FreshVpsOptions::default());
        let card = vps.volume_file("qwe/.lifeboat/recovery.toml");
        let marker = vps.volume_file("qwe/.lifeboat/persistence-marker");
        fill(&vps);
        let (code, events) = vps.run(&["--yes"]);
        assert_eq!(code, 1, "{events:#?}\n{}", vps.stderr());
        let (status, message) = step(&events, "closure-on-volume");
        assert_eq!(status, "failed");
        assert!(
            message.contains(&format!("volume at {} is full", vps.home.display()))
                && message.contains("ENOSPC")
                && message.contains("Free space"),
            "{message}"
        );
        assert_eq!(step(&events, "reboot").0, "skipped");
        assert!(!vps.calls().iter().any(|c| c == "reboot"));
        assert_eq!(vps.volume_file("qwe/.lifeboat/recovery.toml"), card);
        assert_eq!(vps.volume_file("qwe/.lifeboat/persistence-marker"), marker);
    }
}

mod read_only_etc {
    use super::*;
    use fresh_vps::{FreshVps, FreshVpsOptions, quote};

    /// A run whose `[config_repo].path` is `<dir>/etc/nixos`, with `<dir>/etc` bound
    /// read-only for the run (holding an installer's config when `existing`).
    fn run_with_read_only_etc(existing: Option<&str>) -> (FreshVps, i32, Vec<Value>) {
        let vps = FreshVps::new(FreshVpsOptions::default());
        let etc = vps.dir.join("etc");
        let path = etc.join("nixos");
        fs::create_dir_all(&etc).unwrap();
        if let Some(text) = existing {
            fs::create_dir(&path).unwrap();
            fs::write(path.join("configuration.nix"), text).unwrap();
        }
        let config = vps.config();
        let text = fs::read_to_string(&config).unwrap().replace(
            &format!("path = \"{}\"", vps.etc_nixos.display()),
            &format!("path = \"{}\"", path.display()),
        );
        fs::write(&config, text).unwrap();
        let etc = quote(&etc.to_string_lossy());
        let prelude = format!("mount --bind {etc} {etc}\nmount -o remount,bind,ro {etc}");
        let (code, events) = vps.run_after(&config, &prelude, &["--yes"]);
        (vps, code, events)
    }

    fn assert_refused_clearly(vps: &FreshVps, code: i32, events: &[Value]) {
        assert_eq!(code, 1, "{events:#?}\n{}", vps.stderr());
        let (status, message) = step(events, "clone-config");
        assert_eq!(status, "failed");
        let etc = vps.dir.join("etc");
        assert!(
            message.contains(&format!("{} is on a read-only filesystem", etc.display()))
                && message.contains("nothing was moved or cloned")
                && message.contains("[config_repo].path"),
            "{message}"
        );
        assert_eq!(step(events, "build").0, "skipped");
    }

    #[test]
    fn an_installer_config_in_a_read_only_etc_is_left_where_it_is() {
        let (vps, code, events) = run_with_read_only_etc(Some("{ }\n"));
        assert_refused_clearly(&vps, code, &events);
        let etc = vps.dir.join("etc");
        let names: Vec<String> = fs::read_dir(&etc)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["nixos"]);
        let kept = fs::read_to_string(etc.join("nixos/configuration.nix")).unwrap();
        assert_eq!(kept, "{ }\n");
    }

    #[test]
    fn no_clone_is_started_in_a_read_only_etc() {
        let (vps, code, events) = run_with_read_only_etc(None);
        assert_refused_clearly(&vps, code, &events);
        assert_eq!(fs::read_dir(vps.dir.join("etc")).unwrap().count(), 0);
    }
}

mod nix_eval_errors {
    use super::*;
    use fresh_vps::{FreshVps, FreshVpsOptions};

    /// Push `contents` as `file` to the remote, run recover, and return boot-safety's
    /// failure message after checking that nothing was built.
    fn eval_failure(file: &str, contents: impl Fn(&str) -> String) -> String {
        let vps = FreshVps::new(FreshVpsOptions::default());
        let original = fs::read_to_string(vps.author.join(file)).unwrap();
        vps.push_file(file, &contents(&original));
        let (code, events) = vps.run(&["--yes"]);
        assert_eq!(code, 1, "{events:#?}\n{}", vps.stderr());
        let (status, message) = step(&events, "boot-safety");
        assert_eq!(status, "failed", "{message}");
        assert_eq!(step(&events, "build").0, "skipped");
        assert!(
            !vps.calls().iter().any(|c| c.contains("nixos-rebuild")),
            "{:?}",
            vps.calls()
        );
        assert!(
            message.contains("fix") && message.contains("push"),
            "no advice: {message}"
        );
        assert!(!message.contains('\u{1b}'), "raw escape: {message:?}");
        message.to_string()
    }

    #[test]
    fn a_syntax_error_in_the_configuration_is_shown_with_its_place() {
        let message = eval_failure("configuration.nix", |text| {
            text.replacen("  imports = [", "  oops = ;\n  imports = [", 1)
        });
        assert!(message.contains("syntax error"), "{message}");
        // Named where the operator can fix it: in the clone, not in the store's copy.
        assert!(
            message.contains("etc-nixos/configuration.nix:"),
            "{message}"
        );
    }

    #[test]
    fn a_syntax_error_in_the_flake_is_shown() {
        let message = eval_failure("flake.nix", |text| format!("{text}\n}}\n"));
        assert!(message.contains("syntax error"), "{message}");
        assert!(message.contains("flake.nix"), "{message}");
    }

    #[test]
    fn a_missing_attribute_in_the_configuration_is_not_taken_for_a_missing_host() {
        let message = eval_failure("configuration.nix", |text| {
            text.replacen(
                "  imports = [",
                "  fileSystems.\"/x\".device = config.nonexistent.device;\n  imports = [",
                1,
            )
        });
        assert!(message.contains("'nonexistent' missing"), "{message}");
        assert!(!message.contains("the flake has no"), "{message}");
    }

    #[test]
    fn a_throw_in_the_configuration_is_shown_escaped() {
        let message = eval_failure("configuration.nix", |text| {
            text.replacen(
                "  imports = [",
                "  fileSystems.\"/x\" = throw \"no disks here \u{1b}[31m\\n(second line)\";\n  imports = [",
                1,
            )
        });
        assert!(
            message.contains("no disks here") && message.contains("(second line)"),
            "{message}"
        );
    }
}

mod nixos_rebuild_exits {
    use super::*;
    use fresh_vps::{FreshVps, FreshVpsOptions};

    /// Run with `action` exiting `code` (its stderr `stderr`, when given); the step's status
    /// and message, after checking the run's exit code and that no reboot ran.
    fn run_exiting(
        action: &str,
        code: i32,
        stderr: Option<&str>,
        expected: i32,
    ) -> (String, String) {
        let vps = FreshVps::new(FreshVpsOptions::default());
        vps.set_exit(action, code);
        if let Some(text) = stderr {
            fs::write(vps.dir.join(format!("{action}-stderr")), text).unwrap();
        }
        let (exit, events) = vps.run(&["--yes"]);
        assert_eq!(exit, expected, "{events:#?}\n{}", vps.stderr());
        if expected != 0 {
            assert!(!vps.calls().iter().any(|c| c == "reboot"));
            assert_eq!(step(&events, "reboot").0, "skipped");
        }
        let (status, message) = step(&events, action);
        (status.to_string(), message.to_string())
    }

    #[test]
    fn a_build_that_exits_1_is_an_error_before_building_and_says_what_nix_said() {
        let (status, message) = run_exiting(
            "build",
            1,
            Some(
                "error: attribute 'enable' missing\n\n       at /etc/nixos/configuration.nix:9:3:\n",
            ),
            1,
        );
        assert_eq!(status, "failed");
        assert!(message.contains("exit status 1"), "{message}");
        assert!(message.contains("attribute 'enable' missing"), "{message}");
        assert!(
            message.contains("Nothing was installed to boot"),
            "{message}"
        );
        assert!(message.contains("run recover again"), "{message}");
    }

    #[test]
    fn a_build_that_exits_100_names_the_failed_derivation_and_what_to_do() {
        let (status, message) = run_exiting("build", 100, None, 1);
        assert_eq!(status, "failed");
        assert!(message.contains("exit status 100"), "{message}");
        assert!(message.contains("failed to build"), "{message}");
        assert!(
            message.contains("nixos-system-devserver-25.11.drv"),
            "{message}"
        );
        assert!(message.contains("nix log"), "{message}");
        assert!(
            message.contains("Nothing was installed to boot"),
            "{message}"
        );
    }

    #[test]
    fn a_boot_that_exits_100_built_nothing_and_installed_nothing() {
        let (status, message) = run_exiting("boot", 100, None, 1);
        assert_eq!(status, "failed");
        assert!(message.contains("failed to build"), "{message}");
        assert!(
            message.contains("Nothing was installed to boot"),
            "{message}"
        );
    }

    #[test]
    fn a_boot_that_exits_1_says_installing_failed_and_not_to_reboot() {
        let (status, message) = run_exiting("boot", 1, None, 1);
        assert_eq!(status, "failed");
        assert!(message.contains("exit status 1"), "{message}");
        assert!(
            message.contains("installing it to boot failed"),
            "{message}"
        );
        assert!(message.contains("do not reboot"), "{message}");
        assert!(message.contains("not rebooted"), "{message}");
    }
}

mod hostile_output {
    use super::*;
    use fresh_vps::{FreshVps, FreshVpsOptions};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread;
    use std::time::Duration;

    const LONG: usize = 10 << 20;
    /// `exec::process::MAX_CHUNK`: the most of one line a step shows.
    const SHOWN: usize = 64 << 10;

    /// The highest peak resident memory (KiB) seen of the lifeboat processes whose command
    /// line names `dir`, sampled until `done`.
    fn watch_peak_rss(dir: &Path, done: &AtomicBool) -> u64 {
        let bin = support::lifeboat_bin();
        let mark = dir.to_string_lossy().into_owned();
        let mut peak = 0;
        while !done.load(Ordering::Relaxed) {
            for entry in fs::read_dir("/proc").unwrap().flatten() {
                let proc_dir = entry.path();
                let ours = fs::read_link(proc_dir.join("exe")).is_ok_and(|exe| exe == bin)
                    && fs::read(proc_dir.join("cmdline"))
                        .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&mark));
                let status = fs::read_to_string(proc_dir.join("status")).unwrap_or_default();
                let hwm = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok());
                if let (true, Some(hwm)) = (ours, hwm) {
                    peak = peak.max(hwm);
                }
            }
            thread::sleep(Duration::from_millis(20));
        }
        peak
    }

    /// Run recover with the build printing `noise` on stderr; exit code, events, the
    /// transcript's text and lifeboat's peak memory in KiB.
    fn run_with_noise(noise: Option<&[u8]>) -> (i32, Vec<Value>, String, u64) {
        let vps = FreshVps::new(FreshVpsOptions::default());
        if let Some(noise) = noise {
            fs::write(vps.dir.join("build-noise"), noise).unwrap();
        }
        let done = AtomicBool::new(false);
        let (code, events, peak) = thread::scope(|scope| {
            let watcher = scope.spawn(|| watch_peak_rss(&vps.dir, &done));
            let (code, events) = vps.run(&["--yes"]);
            done.store(true, Ordering::Relaxed);
            (code, events, watcher.join().unwrap())
        });
        assert_eq!(code, 0, "{}", vps.stderr());
        let transcripts = vps.state.join("transcripts");
        let transcript = fs::read_dir(&transcripts)
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().ends_with("-recover.jsonl"))
            .map(|e| fs::read_to_string(e.path()).unwrap())
            .unwrap();
        (code, events, transcript, peak)
    }

    fn build_output(events: &[Value]) -> Vec<&str> {
        events
            .iter()
            .filter(|e| e["event"] == "output" && e["step"] == "build")
            .map(|e| e["line"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn a_10_mib_line_and_bytes_that_are_not_utf8_are_shown_escaped_cut_and_in_bounded_memory() {
        let (_, _, _, baseline) = run_with_noise(None);
        let mut noise = b"plain \xff\xfe not utf-8 \x1b[31mred\x1b[0m\n".to_vec();
        noise.extend(std::iter::repeat_n(b'a', LONG));
        noise.extend(b"\nafter the long line\n");
        let (_, events, transcript, peak) = run_with_noise(Some(&noise));

        let lines = build_output(&events);
        let odd = lines.iter().find(|l| l.contains("not utf-8")).unwrap();
        assert_eq!(*odd, "plain \\xff\\xfe not utf-8 \\e[31mred\\e[0m");
        let long: Vec<usize> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.starts_with("aaaa"))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(long.len(), 1, "the long line is shown once");
        assert_eq!(lines[long[0]].len(), SHOWN);
        let note = format!("went on for {} more bytes", LONG - SHOWN);
        assert!(lines[long[0] + 1].contains(&note), "{}", lines[long[0] + 1]);
        assert_eq!(lines[long[0] + 2], "after the long line");
        assert!(!transcript.contains('\u{1b}'));
        assert!(transcript.contains(&note));
        assert!(
            transcript.len() < 1 << 20,
            "transcript of {} bytes",
            transcript.len()
        );
        // Memory: not the line whole, nor its escaped copies.
        assert!(baseline > 0 && peak > 0);
        assert!(
            peak < baseline + 8 * 1024,
            "peak {peak} KiB against {baseline} KiB without the noise"
        );
    }
}

mod device_gone {
    use super::*;
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    use nixos_lifeboat::sandbox::VolumeSpec;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use support::{TestSandbox, lifeboat_bin, mounts_under, require_private_mount_namespace, sh};

    /// Give the user's home thousands of directories (through a read-write mount in a
    /// namespace of its own), so that walking them takes many reads from the device.
    fn add_many_directories(sandbox: &TestSandbox) {
        let rw = sandbox.dir.join("rw");
        fs::create_dir_all(&rw).unwrap();
        sh(&format!(
            "unshare -m --propagation private sh -ec 'mount {dev} {rw}\n\
             mkdir {rw}/qwe/many\ncd {rw}/qwe/many\nseq 1 4000 | xargs mkdir\ncd /\numount {rw}'",
            dev = sandbox.loop_device.display(),
            rw = rw.display(),
        ));
        fs::remove_dir(&rw).unwrap();
    }

    /// The device goes away as a detached volume does: its size drops to zero (the image
    /// truncated, the loop device told), so every read that the kernel's cache cannot
    /// answer fails with EIO. What the run read before (the root, the layout's entries) is
    /// still cached, so the walk starts and fails in the directories below.
    fn pull_the_device(sandbox: &TestSandbox) {
        sh(&format!(
            "truncate -s 0 {image}\nlosetup -c {dev}",
            image = sandbox.image.display(),
            dev = sandbox.loop_device.display()
        ));
    }

    #[test]
    fn a_device_that_fails_mid_scan_fails_measure_names_the_error_and_unmounts() {
        require_private_mount_namespace();
        let sandbox = TestSandbox::new(&VolumeSpec::default());
        add_many_directories(&sandbox);
        // Nothing of the volume cached before the run: it reads only what it needs.
        sh(&format!(
            "blockdev --flushbufs {}",
            sandbox.loop_device.display()
        ));
        let mut child = Command::new(lifeboat_bin())
            .arg("-c")
            .arg(&sandbox.config_path)
            .args(["inspect", "--json"])
            .arg(&sandbox.by_id_link)
            .env_remove("LIFEBOAT_FAULT")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        let mut events: Vec<Value> = Vec::new();
        let mut pulled = false;
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let event: Value = serde_json::from_str(&line.unwrap()).unwrap();
            // Stopped between the layout check and the walk (or early in it), the device
            // goes away, and the run goes on: the root is listed from the cache, the
            // entries below fail.
            if !pulled && event["step"] == "check-layout" && event["status"] == "passed" {
                kill(pid, Signal::SIGSTOP).unwrap();
                pull_the_device(&sandbox);
                kill(pid, Signal::SIGCONT).unwrap();
                pulled = true;
            }
            events.push(event);
        }
        let status = child.wait().unwrap();
        assert!(pulled, "{events:#?}");
        assert_eq!(status.code(), Some(1), "{events:#?}");
        let (status, message) = step(&events, "measure");
        assert_eq!(status, "failed", "{message}");
        assert!(
            message.contains("the device stopped answering")
                && message.contains("I/O error (EIO)")
                && message.contains(&format!("{}/", sandbox.mountpoint.display()))
                && message.contains("more entries could not be read")
                && message.contains("dmesg"),
            "{message}"
        );
        assert_eq!(step(&events, "unmount").0, "passed");
        assert_eq!(mounts_under(&sandbox.dir), Vec::<std::path::PathBuf>::new());
    }
}
