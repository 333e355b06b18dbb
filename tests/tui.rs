//! The wizard end to end: the real binary in a tmux pane on a practice volume. Reads the
//! screen, presses keys, and checks afterwards that the terminal is back in cooked mode
//! with echo, that no mount is left and that the device's bytes did not change.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::thread;
use std::time::Duration;

use nixos_lifeboat::sandbox::VolumeSpec;
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
