//! The wizard end to end: the real binary in a tmux pane on a practice volume. Reads the
//! screen, presses keys, and checks afterwards that the terminal is back in cooked mode
//! with echo, that no mount is left and that the device's bytes did not change.

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

#[path = "support/fresh_vps.rs"]
mod fresh_vps;
#[path = "support/predestroy_host.rs"]
mod predestroy_host;
mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::thread;
use std::time::Duration;

use fresh_vps::{FreshVps, FreshVpsOptions, quote};
use nixos_lifeboat::sandbox::VolumeSpec;
use predestroy_host::{Host, git, sh};
use serde_json::{Value, json};
use support::{
    TestSandbox, lifeboat_bin, mounts_under, require_private_mount_namespace, sha256_file,
};

/// How often the screen is read before a test gives up, and how long it waits between reads.
const TRIES: usize = 600;
const PAUSE: Duration = Duration::from_millis(100);

/// A tmux server of its own (so it shares this test's mount namespace), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Start `command` in a detached 120×40 pane; after it ends the pane prints its exit
    /// code and `stty -a`, then stays open to be read.
    fn start(name: &str, command: &str) -> Tmux {
        let tmux = Tmux {
            socket: format!("lifeboat-test-{name}-{}", std::process::id()),
        };
        let script = format!("{command}; echo \"exit=$?\"; stty -a; exec sleep 600");
        let output = tmux.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            "120",
            "-y",
            "40",
            &script,
        ]);
        assert!(output.status.success(), "tmux new-session: {output:?}");
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .env("TERM", "xterm-256color")
            .env_remove("LIFEBOAT_FAULT")
            .env_remove("NO_COLOR")
            .output()
            .expect("run tmux (Debian package tmux)")
    }

    /// The PID of the program the pane's shell runs (lifeboat, while it runs).
    #[cfg(feature = "fault-injection")]
    fn child_pid(&self) -> i32 {
        let output = self.run(&["display-message", "-p", "#{pane_pid}"]);
        let shell = String::from_utf8_lossy(&output.stdout).trim().to_string();
        let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
            .unwrap_or_else(|e| panic!("children of the pane's shell {shell}: {e}"));
        children
            .split_whitespace()
            .next()
            .and_then(|pid| pid.parse().ok())
            .unwrap_or_else(|| panic!("the pane's shell {shell} runs nothing"))
    }

    fn screen(&self) -> String {
        let output = self.run(&["capture-pane", "-p"]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend_from_slice(keys);
        assert!(self.run(&args).status.success(), "tmux send-keys {keys:?}");
    }

    /// Read the screen until it holds every one of `texts`; panic with the screen if it never does.
    fn wait_for(&self, texts: &[&str]) -> String {
        let mut screen = String::new();
        for _ in 0..TRIES {
            screen = self.screen();
            if texts.iter().all(|t| screen.contains(t)) {
                return screen;
            }
            thread::sleep(PAUSE);
        }
        panic!("the screen never showed {texts:?}:\n{screen}");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn lifeboat_command(config: &Path, args: &str) -> String {
    format!(
        "'{}' -c '{}' {args}",
        lifeboat_bin().display(),
        config.display()
    )
}

/// After lifeboat exited: its exit code, and the terminal in cooked mode with echo.
fn check_exit_and_terminal(tmux: &Tmux, code: i32) {
    let screen = tmux.wait_for(&["exit=", "icanon"]);
    assert!(
        screen.contains(&format!("exit={code}")),
        "expected exit={code}:\n{screen}"
    );
    let flags: Vec<&str> = screen.split_whitespace().collect();
    for flag in ["icanon", "echo"] {
        assert!(
            flags.contains(&flag),
            "{flag} is off after lifeboat:\n{screen}"
        );
        assert!(
            !flags.contains(&format!("-{flag}").as_str()),
            "{flag} is off after lifeboat:\n{screen}"
        );
    }
}

fn sandbox() -> (TestSandbox, String) {
    require_private_mount_namespace();
    let sandbox = TestSandbox::new(&VolumeSpec::default());
    let hash = sha256_file(&sandbox.image);
    (sandbox, hash)
}

fn check_untouched(sandbox: &TestSandbox, hash: &str) {
    assert_eq!(mounts_under(&sandbox.dir), Vec::<std::path::PathBuf>::new());
    assert_eq!(
        sha256_file(&sandbox.image),
        hash,
        "the volume's bytes changed"
    );
}

/// Each step of a journal with its status, in order.
fn step_statuses(journal: &Value) -> Vec<Value> {
    journal["steps"]
        .as_array()
        .expect("the journal's steps")
        .iter()
        .map(|s| json!([s["id"], s["status"]]))
        .collect()
}

#[test]
fn inspect_shows_identity_and_sizes_and_gives_the_terminal_back() {
    let (sandbox, hash) = sandbox();
    let tmux = Tmux::start(
        "inspect",
        &lifeboat_command(&sandbox.config_path, "inspect"),
    );
    let screen = tmux.wait_for(&["inspect · passed", "Sizes (by size)", "Device"]);
    for expected in [
        "scsi-0HC_Volume_100000001",
        "ext4",
        "label \"lifeboat-demo\"",
        "qwe",
        "nix",
        "files",
    ] {
        assert!(
            screen.contains(expected),
            "no {expected:?} on screen:\n{screen}"
        );
    }
    tmux.keys(&["q"]);
    check_exit_and_terminal(&tmux, 0);
    check_untouched(&sandbox, &hash);
}

#[test]
fn the_home_screen_starts_inspect_on_enter() {
    let (sandbox, hash) = sandbox();
    let tmux = Tmux::start("home", &lifeboat_command(&sandbox.config_path, ""));
    let screen = tmux.wait_for(&["This machine", "Flows"]);
    assert!(
        screen.contains("scsi-0HC_Volume_100000001") && screen.contains("not mounted"),
        "the home screen does not show the sandbox's volume:\n{screen}"
    );
    // Below 80×24 the wizard says it needs more room, and comes back when there is.
    assert!(
        tmux.run(&["resize-window", "-x", "70", "-y", "20"])
            .status
            .success()
    );
    tmux.wait_for(&["needs more room", "70×20"]);
    assert!(
        tmux.run(&["resize-window", "-x", "120", "-y", "40"])
            .status
            .success()
    );
    tmux.wait_for(&["This machine", "Flows"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["inspect · passed", "Sizes (by size)"]);
    tmux.keys(&["Escape"]);
    tmux.wait_for(&["This machine"]);
    tmux.keys(&["q"]);
    check_exit_and_terminal(&tmux, 0);
    check_untouched(&sandbox, &hash);
}

#[test]
#[cfg(feature = "fault-injection")]
fn ctrl_c_while_a_step_runs_unmounts_before_quitting() {
    let (sandbox, hash) = sandbox();
    let command = format!(
        "LIFEBOAT_FAULT=pause:measure {}",
        lifeboat_command(&sandbox.config_path, "inspect")
    );
    let tmux = Tmux::start("cancel", &command);
    tmux.wait_for(&["▶ measure"]);
    assert_eq!(
        mounts_under(&sandbox.dir).len(),
        1,
        "the volume is mounted while measure waits"
    );
    tmux.keys(&["C-c"]);
    check_exit_and_terminal(&tmux, 130);
    check_untouched(&sandbox, &hash);
}

#[test]
#[cfg(feature = "fault-injection")]
fn sigterm_while_a_step_runs_cleans_up_and_gives_the_terminal_back() {
    let (sandbox, hash) = sandbox();
    let command = format!(
        "LIFEBOAT_FAULT=pause:measure {}",
        lifeboat_command(&sandbox.config_path, "inspect")
    );
    let tmux = Tmux::start("sigterm", &command);
    tmux.wait_for(&["▶ measure"]);
    let pid = nix::unistd::Pid::from_raw(tmux.child_pid());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("send SIGTERM");
    check_exit_and_terminal(&tmux, 130);
    check_untouched(&sandbox, &hash);
}

#[test]
#[cfg(feature = "fault-injection")]
fn a_panic_in_the_flow_is_a_failed_run_and_the_terminal_comes_back() {
    let (sandbox, hash) = sandbox();
    let command = format!(
        "LIFEBOAT_FAULT=panic:measure {}",
        lifeboat_command(&sandbox.config_path, "inspect")
    );
    let tmux = Tmux::start("panic", &command);
    tmux.wait_for(&["inspect · failed", "internal error"]);
    tmux.keys(&["q"]);
    check_exit_and_terminal(&tmux, 1);
    let screen = tmux.screen();
    assert!(
        screen.contains("panicked"),
        "the panic is reported once the terminal is back:\n{screen}"
    );
    check_untouched(&sandbox, &hash);
}

#[test]
fn without_a_terminal_lifeboat_alone_is_a_usage_error() {
    let output = Command::new(lifeboat_bin()).output().expect("run lifeboat");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("needs a terminal"), "{stderr}");
}

#[test]
fn demo_opens_the_wizard_on_the_practice_volume() {
    require_private_mount_namespace();
    let parent = tempfile::tempdir().expect("a temporary directory");
    let demo = support::DemoDir(parent.path().join("demo"));
    let command = format!(
        "'{}' demo --dir '{}'",
        lifeboat_bin().display(),
        demo.0.display()
    );
    let tmux = Tmux::start("demo", &command);
    let screen = tmux.wait_for(&["This machine", "scsi-0HC_Volume_100000001"]);
    assert!(
        screen.contains("practice volume") && !screen.contains("predestroy"),
        "the demo offers only the read-only flows:\n{screen}"
    );
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["inspect · passed", "label \"lifeboat-demo\""]);
    tmux.keys(&["q"]);
    check_exit_and_terminal(&tmux, 0);
    assert!(
        tmux.screen().contains("That was a practice volume"),
        "the demo says what it was once the wizard is gone"
    );
    assert_eq!(mounts_under(&demo.0), Vec::<std::path::PathBuf>::new());
}

/// The journal's record of the last run, without what differs between two runs of it.
fn journal_outcome(state_dir: &Path) -> serde_json::Value {
    let text = std::fs::read(state_dir.join("journal.json")).expect("read the journal");
    let mut journal: serde_json::Value = serde_json::from_slice(&text).expect("a JSON journal");
    for varying in ["run_id", "pid"] {
        journal
            .as_object_mut()
            .expect("a journal object")
            .remove(varying);
    }
    journal
}

#[test]
fn the_wizard_and_json_leave_the_same_state_on_disk() {
    let (sandbox, hash) = sandbox();
    let tmux = Tmux::start("same", &lifeboat_command(&sandbox.config_path, "inspect"));
    tmux.wait_for(&["inspect · passed"]);
    tmux.keys(&["q"]);
    check_exit_and_terminal(&tmux, 0);
    let through_wizard = journal_outcome(&sandbox.state_dir);
    let output = Command::new(lifeboat_bin())
        .arg("-c")
        .arg(&sandbox.config_path)
        .args(["inspect", "--json"])
        .env_remove("LIFEBOAT_FAULT")
        .output()
        .expect("run lifeboat --json");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(journal_outcome(&sandbox.state_dir), through_wizard);
    assert_eq!(through_wizard["finished"], "passed");
    check_untouched(&sandbox, &hash);
}

#[test]
#[cfg(feature = "fault-injection")]
fn closing_the_terminal_while_a_step_runs_still_unmounts() {
    let (sandbox, hash) = sandbox();
    let command = format!(
        "LIFEBOAT_FAULT=pause:measure {}",
        lifeboat_command(&sandbox.config_path, "inspect")
    );
    let tmux = Tmux::start("hangup", &command);
    tmux.wait_for(&["▶ measure"]);
    let pid = tmux.child_pid();
    // The pane goes away: lifeboat gets SIGHUP and its terminal is gone.
    assert!(tmux.run(&["kill-session"]).status.success());
    let gone = (0..TRIES).any(|_| {
        thread::sleep(PAUSE);
        !Path::new(&format!("/proc/{pid}")).exists()
    });
    assert!(gone, "lifeboat {pid} still runs after its terminal closed");
    check_untouched(&sandbox, &hash);
}

/// The step whose confirmation is up (the modal's title `Confirm: STEP`), if one is.
fn confirming(screen: &str) -> Option<String> {
    let (_, after) = screen.split_once("Confirm: ")?;
    let step: String = after
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    (!step.is_empty()).then_some(step)
}

/// Answer every confirmation of the `flow` running in `tmux` as an operator would (`y`, or
/// the hostname typed out where the modal asks for it) until the run ends; the steps asked
/// about, in order, and the last screen. `typed` names the steps that want the hostname
/// (moving /etc/nixos aside, installing to boot, rebooting), for when a long question pushes the
/// modal's last line out of view; a prompt on the screen goes first.
fn confirm_until_the_end(tmux: &Tmux, flow: &str, typed: &[&str]) -> (Vec<String>, String) {
    let hostname = nix::unistd::gethostname()
        .expect("this machine's hostname")
        .to_string_lossy()
        .into_owned();
    let ends =
        ["passed", "failed", "refused", "stopped", "interrupted"].map(|s| format!("{flow} · {s}"));
    let mut asked: Vec<String> = Vec::new();
    let mut screen = String::new();
    for _ in 0..TRIES {
        screen = tmux.screen();
        if ends.iter().any(|end| screen.contains(end)) {
            return (asked, screen);
        }
        match confirming(&screen) {
            // Still on the screen a moment after the answer: wait for the next question.
            Some(step) if asked.last() == Some(&step) => {}
            Some(step) => {
                let wants_word = screen.contains("and press Enter to confirm")
                    || (!screen.contains("y yes, run it") && typed.contains(&step.as_str()));
                if wants_word {
                    tmux.keys(&["-l", &hostname]);
                    tmux.keys(&["Enter"]);
                } else {
                    tmux.keys(&["y"]);
                }
                asked.push(step);
            }
            None => {}
        }
        thread::sleep(PAUSE);
    }
    panic!("{flow} never ended; asked {asked:?}:\n{screen}");
}

/// What a predestroy run left on disk, in terms two identical hosts share: the commits on
/// the remote (subjects and the files each changed: the hashes differ with the time and
/// the host's directory, which the flake names) and the files pushed, the files lifeboat
/// wrote on the volume with their owners and modes, the package lists, the recovery card
/// without its time stamp and nonce, the mirror, the backup (without what the rehearsal's
/// evaluation adds to the store: the flake's source and derivations, whose hashes differ
/// with the host's directory), and the journal's steps.
fn predestroy_outcome(host: &Host) -> Value {
    let head = git(&host.repo, "rev-parse HEAD");
    let volume = host.in_namespace(
        false,
        &format!(
            "cd {home}/qwe\n\
             {{ find .lifeboat; find nixos-config-backup.git -maxdepth 1; }} | sort | xargs stat -c '%n %U:%G %a %F'\n\
             cat .lifeboat/*-packages.txt .lifeboat/system-requisites.txt\n\
             git -c safe.directory='*' -C nixos-config-backup.git rev-parse main",
            home = host.home.display()
        ),
    );
    let card: toml::Table = toml::from_str(
        &host
            .volume_file("qwe/.lifeboat/recovery.toml")
            .expect("a recovery card on the volume"),
    )
    .expect("the card is TOML");
    let mut card = serde_json::to_value(card).expect("the card as JSON");
    let fields = card.as_object_mut().expect("a card table");
    for varying in ["written_at", "persistence_nonce"] {
        assert!(fields.remove(varying).is_some(), "no {varying} in the card");
    }
    // The rehearsed system's derivation differs with the host's directory, which its flake
    // names.
    let rehearsal = fields["rehearsal"]
        .as_object_mut()
        .expect("a rehearsal in the card");
    assert!(
        rehearsal.remove("drv_path").is_some(),
        "no drv_path in the card"
    );
    // Each host's keys are its own (ssh-keygen): their size, digest and fingerprint differ.
    for saved in fields["saved"]
        .as_array_mut()
        .expect("saved files in the card")
    {
        if saved["reason"] == "host-key" {
            for varying in ["bytes", "sha256", "fingerprint"] {
                saved
                    .as_object_mut()
                    .expect("a saved entry")
                    .remove(varying);
            }
        }
    }
    let marker = host
        .volume_file("qwe/.lifeboat/persistence-marker")
        .expect("a persistence marker");
    let backup = host.in_namespace(
        false,
        &format!(
            "cd {} && find . -printf '%p %u %m %y\\n' | sort | \
             grep -v -E '\\.drv |-source(/| )' | \
             sed -E 's#pack-[0-9a-f]{{40}}#pack-<hash>#; s#gcroots/auto/[0-9a-z]{{32}}#gcroots/auto/<hash>#'",
            host.backup.display()
        ),
    );
    let journal = journal_outcome(&host.sandbox.state_dir);
    let steps = step_statuses(&journal);
    let outcome = json!({
        "remote": git(&host.remote, "log --format=%s --name-status main"),
        "pushed_files": sh(&format!(
            "cd {} && git ls-tree -r --name-only main | while read -r f; do echo \"== $f\"; git show \"main:$f\"; done",
            host.remote.display()
        )),
        "pushed": git(&host.remote, "rev-parse main") == head,
        "worktree": git(&host.repo, "status --porcelain"),
        "volume": volume,
        "card": card,
        "marker_names_the_card": marker.contains(card_nonce(host).as_str()),
        "backup": backup,
        "journal": {"flow": journal["flow"], "finished": journal["finished"], "steps": steps},
    });
    // Each host lives in a directory of its own, and has a volume and a commit of its own.
    let uuid = host.in_namespace(
        false,
        &format!(
            "blkid -s UUID -o value {}",
            host.sandbox.loop_device.display()
        ),
    );
    let text = outcome
        .to_string()
        .replace(&host.sandbox.dir.display().to_string(), "<host>")
        .replace(&uuid, "<volume uuid>")
        .replace(&head, "<head>");
    serde_json::from_str(&text).expect("JSON")
}

fn card_nonce(host: &Host) -> String {
    let text = host
        .volume_file("qwe/.lifeboat/recovery.toml")
        .expect("a recovery card on the volume");
    let card: toml::Table = toml::from_str(&text).expect("the card is TOML");
    card["persistence_nonce"]
        .as_str()
        .expect("a nonce in the card")
        .to_string()
}

#[test]
fn predestroy_through_the_wizard_and_json_leave_the_same_state_on_disk() {
    let (wizard_host, json_host) = (Host::new(true), Host::new(true));
    for host in [&wizard_host, &json_host] {
        host.make_dirty_and_unpushed();
    }

    let script = wizard_host.sandbox.dir.join("wizard.sh");
    let run = format!(
        "exec {}",
        lifeboat_command(&wizard_host.config(), "predestroy")
    );
    std::fs::write(&script, wizard_host.namespace_script(true, &run)).expect("write the script");
    let tmux = Tmux::start(
        "predestroy",
        &format!(
            "unshare -m --propagation private sh -e '{}'",
            script.display()
        ),
    );
    let (asked, screen) = confirm_until_the_end(&tmux, "predestroy", &[]);
    assert!(
        screen.contains("predestroy · passed"),
        "asked {asked:?}:\n{screen}"
    );
    assert!(
        asked.iter().any(|s| s == "config-repo-committed")
            && asked.iter().any(|s| s == "config-repo-pushed"),
        "the wizard asked before committing and pushing: {asked:?}"
    );
    tmux.keys(&["q"]);
    check_exit_and_terminal(&tmux, 0);

    let (code, events) = json_host.predestroy(true, "--yes");
    assert_eq!(code, 0, "{events:#?}");

    let through_wizard = predestroy_outcome(&wizard_host);
    assert_eq!(through_wizard["journal"]["finished"], "passed");
    assert_eq!(through_wizard["pushed"], true);
    assert_eq!(through_wizard["marker_names_the_card"], true);
    assert_same(&predestroy_outcome(&json_host), &through_wizard);
}

/// Equal, or a panic with the lines that differ.
fn assert_same(json: &Value, wizard: &Value) {
    if json == wizard {
        return;
    }
    let pretty = |v: &Value| {
        serde_json::to_string_pretty(v)
            .expect("JSON")
            .replace("\\n", "\n")
    };
    let (json, wizard) = (pretty(json), pretty(wizard));
    let diff = similar::TextDiff::from_lines(&json, &wizard);
    panic!(
        "--json (-) and the wizard (+) left different states:\n{}",
        diff.unified_diff().context_radius(2)
    );
}

/// What a recover run left on the machine, in terms two identical fresh VPSs share: the
/// clone and what was moved aside, the hardware configuration, the tools that ran (build,
/// boot, reboot), the system booted into and copied to the volume's store, and the
/// journal's steps.
fn recover_outcome(vps: &FreshVps) -> Value {
    let parent = vps.etc_nixos.parent().expect("the config's parent");
    let mut aside: Vec<String> = std::fs::read_dir(parent)
        .expect("the config's parent")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.starts_with("etc-nixos.before-lifeboat-"))
        .collect();
    aside.sort();
    let aside_files: Vec<String> = aside
        .iter()
        .map(|name| {
            let dir = parent.join(name);
            let mut files: Vec<String> = std::fs::read_dir(&dir)
                .expect("the copy aside")
                .map(|e| {
                    e.expect("an entry")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            files.sort();
            files.join(" ")
        })
        .collect();
    let system = vps
        .current_system()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let journal = journal_outcome(&vps.state);
    let steps = step_statuses(&journal);
    let head = vps.remote_head();
    let outcome = json!({
        "clone_head": git(&vps.etc_nixos, "rev-parse HEAD"),
        "clone_status": git(&vps.etc_nixos, "status --porcelain"),
        "hardware": std::fs::read_to_string(vps.etc_nixos.join("hardware-configuration.nix"))
            .expect("a hardware configuration"),
        "moved_aside": aside.len(),
        "aside_files": aside_files,
        "calls": vps.calls(),
        // The store hash follows the host's paths, which the config names.
        "booted_into": system.split_once('-').map_or("", |(_, name)| name),
        "in_volume_store": vps.in_volume_store(&system),
        "rebooted": vps.rebooted(),
        "mounts_left": mounts_under(&vps.dir),
        "journal": {
            "flow": journal["flow"],
            "finished": journal["finished"],
            "verify_due": journal["verify_due"],
            "steps": steps,
        },
    });
    let text = outcome
        .to_string()
        .replace(&vps.dir.display().to_string(), "<host>")
        .replace(&head, "<head>");
    serde_json::from_str(&text).expect("JSON")
}

#[test]
fn recover_through_the_wizard_and_json_leave_the_same_state_on_disk() {
    let options = || FreshVpsOptions {
        existing_etc_nixos: Some("{ imports = [ ./hardware-configuration.nix ]; }\n"),
        ..FreshVpsOptions::default()
    };
    let (wizard_vps, json_vps) = (FreshVps::new(options()), FreshVps::new(options()));

    let inner = wizard_vps.dir.join("wizard-inner.sh");
    let run = format!("exec {}", lifeboat_command(&wizard_vps.config(), "recover"));
    std::fs::write(&inner, wizard_vps.shell_script(&run)).expect("write the script");
    let mut outer: String = wizard_vps
        .shell_env()
        .iter()
        .map(|(name, value)| format!("export {name}={}\n", quote(value)))
        .collect();
    outer.push_str(&format!(
        "exec unshare -m --propagation private sh -e {}\n",
        quote(&inner.to_string_lossy())
    ));
    let outer_path = wizard_vps.dir.join("wizard.sh");
    std::fs::write(&outer_path, outer).expect("write the script");
    let tmux = Tmux::start(
        "recover",
        &format!("sh {}", quote(&outer_path.to_string_lossy())),
    );
    let (asked, screen) =
        confirm_until_the_end(&tmux, "recover", &["clone-config", "boot", "reboot"]);
    assert!(
        screen.contains("recover · passed"),
        "asked {asked:?}:\n{screen}"
    );
    for step in ["clone-config", "mount-volume", "boot", "reboot"] {
        assert!(
            asked.iter().any(|s| s == step),
            "the wizard did not ask before {step}: {asked:?}"
        );
    }
    tmux.keys(&["q"]);
    check_exit_and_terminal(&tmux, 0);

    let (code, events) = json_vps.run(&["--yes"]);
    assert_eq!(code, 0, "{events:#?}\n{}", json_vps.stderr());

    let through_wizard = recover_outcome(&wizard_vps);
    assert_eq!(through_wizard["clone_head"], "<head>");
    assert_eq!(through_wizard["moved_aside"], 1);
    assert_eq!(through_wizard["rebooted"], true);
    assert_eq!(through_wizard["in_volume_store"], true);
    assert_eq!(through_wizard["journal"]["finished"], "passed");
    assert_same(&recover_outcome(&json_vps), &through_wizard);
}
