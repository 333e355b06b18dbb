//! Fault injection (issue 7): every step of `inspect`, `recover`, `predestroy` and `verify`
//! is interrupted by SIGINT and by SIGTERM while the run waits before it
//! (`LIFEBOAT_FAULT=pause:<step>`, src/faults.rs), and chosen points are hit by SIGKILL.
//! Runs are also stopped *inside* operations (`LIFEBOAT_FAULT=pause-in:<point>`): mid-scan,
//! mid-clone, mid-copy (predestroy's rsync, recover's `nix copy`), and half-way through or
//! just before the rename of an atomic write (the journal, the card, the marker, a package
//! list, hardware-configuration.nix), by SIGKILL and by SIGINT or SIGTERM.
//! Afterwards the run exited 130 (or was killed), lifeboat's mounts are gone (or the next
//! run undoes them), the journal is whole JSON saying how the run ended, a file being
//! written is the old one or the new one (never part of it), no command the run started is
//! still running, no `.lifeboat-*` temporary is left on the root disk or the volume (a
//! killed run's is removed by the next), and the next run (`--resume --yes`) finishes the job.
//!
//! Each trial runs in one mount namespace of its scenario (tests/support/fresh_vps.rs,
//! tests/support/predestroy_host.rs, tests/support/verified_machine.rs; a bare one for
//! inspect), as one machine would: the
//! faulted run in the background (its pid in a file), then the next run. The test waits
//! until the faulted run reports the step running (or says it waits at its point), then
//! signals it from outside (same PID namespace), and looks for processes that outlived it
//! before it lets the next run start. Mount tables and temporaries are recorded inside the
//! namespace after each run, where the mounts are.

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

#[path = "support/fresh_vps.rs"]
mod fresh_vps;
#[path = "support/predestroy_host.rs"]
mod predestroy_host;
mod support;
#[path = "support/verified_machine.rs"]
mod verified_machine;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use fresh_vps::{FreshVps, FreshVpsOptions, quote};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use nixos_lifeboat::card::RecoveryCard;
use nixos_lifeboat::exec::mountinfo::parse_mountinfo;
use nixos_lifeboat::flow::FlowKind;
use nixos_lifeboat::marker::PersistenceMarker;
use nixos_lifeboat::sandbox::VolumeSpec;
use predestroy_host::Host;
use serde_json::Value;
use support::{TestSandbox, lifeboat_bin, require_private_mount_namespace, sh, sha256_file};
use verified_machine::VerifiedMachine;

/// The machine a flow runs on.
enum Scenario {
    /// A practice volume; the test's own namespace is private, each trial gets another.
    Inspect(TestSandbox),
    /// A fresh VPS whose `/etc/nixos` holds an installer's configuration.
    Recover(Box<FreshVps>),
    /// The machine about to be destroyed, with uncommitted and unpushed changes.
    Predestroy(Host),
    /// The machine after recover's reboot: the volume mounted at the home, the store bound
    /// from it, in each trial's namespace.
    Verify(VerifiedMachine),
}

impl Scenario {
    fn new(flow: FlowKind) -> Scenario {
        match flow {
            FlowKind::Inspect => {
                require_private_mount_namespace();
                Scenario::Inspect(TestSandbox::new(&VolumeSpec::default()))
            }
            FlowKind::Recover => Scenario::Recover(Box::new(FreshVps::new(FreshVpsOptions {
                existing_etc_nixos: Some("{ imports = [ ./hardware-configuration.nix ]; }\n"),
                ..FreshVpsOptions::default()
            }))),
            FlowKind::Predestroy => {
                let host = Host::new(true);
                host.make_dirty_and_unpushed();
                Scenario::Predestroy(host)
            }
            FlowKind::Verify => Scenario::Verify(VerifiedMachine::new(None, "/unused")),
        }
    }

    /// The scenario's directory: no temporary may be left anywhere below it.
    fn dir(&self) -> &Path {
        match self {
            Scenario::Inspect(sandbox) => &sandbox.dir,
            Scenario::Recover(vps) => &vps.dir,
            Scenario::Predestroy(host) => &host.sandbox.dir,
            Scenario::Verify(machine) => &machine.sandbox.dir,
        }
    }

    fn state(&self) -> &Path {
        match self {
            Scenario::Inspect(sandbox) => &sandbox.state_dir,
            Scenario::Recover(vps) => &vps.state,
            Scenario::Predestroy(host) => &host.sandbox.state_dir,
            Scenario::Verify(machine) => &machine.sandbox.state_dir,
        }
    }

    /// `lifeboat -c <config> <flow>`, quoted for `sh`.
    fn lifeboat(&self) -> String {
        let (config, flow) = match self {
            Scenario::Inspect(sandbox) => (sandbox.config_path.clone(), "inspect"),
            Scenario::Recover(vps) => (vps.config(), "recover"),
            Scenario::Predestroy(host) => (host.config(), "predestroy"),
            Scenario::Verify(machine) => (machine.full_config(), "verify"),
        };
        format!(
            "{} -c {} {flow}",
            quote(&lifeboat_bin().to_string_lossy()),
            quote(&config.to_string_lossy())
        )
    }

    /// `sh -ec script` in a new mount namespace set up as the machine.
    fn command(&self, script: &str) -> Command {
        match self {
            Scenario::Inspect(_) => {
                let mut command = Command::new("unshare");
                command.args(["-m", "--propagation", "private", "sh", "-ec", script]);
                command
            }
            Scenario::Recover(vps) => vps.shell_command(script),
            Scenario::Predestroy(host) => host.namespace_command(true, script),
            Scenario::Verify(machine) => {
                let mounts = machine.mounts(&machine.home, &machine.nix);
                machine.namespace_command(1000, &mounts, script)
            }
        }
    }

    /// Shell lines listing the temporaries on the volume, looked at in a namespace of their
    /// own (mounted read-only unless the machine has it mounted at the home). Inspect needs
    /// none: its volume's bytes are compared instead.
    fn volume_temporaries(&self) -> String {
        let (device, home) = match self {
            Scenario::Inspect(_) => return "true".into(),
            Scenario::Recover(vps) => (&vps.sandbox.loop_device, &vps.home),
            Scenario::Predestroy(host) => (&host.sandbox.loop_device, &host.home),
            Scenario::Verify(machine) => (&machine.sandbox.loop_device, &machine.home),
        };
        // A killed recover leaves the volume mounted read-write at its private place, where
        // a read-only mount of the same device is refused: look through that mount then.
        let look = format!(
            "if ! mountpoint -q {home}; then\n\
             \x20 mounted=$(findmnt -n -o TARGET --source {device} | head -n 1)\n\
             \x20 if [ -n \"$mounted\" ]; then mount --bind \"$mounted\" {home}\n\
             \x20 else mount -o ro,noload {device} {home}; fi\n\
             fi\n\
             find {home} -xdev -name '.lifeboat-*'",
            home = quote(&home.to_string_lossy()),
            device = quote(&device.to_string_lossy()),
        );
        format!("unshare -m --propagation private sh -ec {}", quote(&look))
    }

    /// Make the flow's copy last while the run is paused in it (`LIFEBOAT_FAULT` set), so
    /// that the signal reaches a copy still running: predestroy's rsync gets `--bwlimit=8`
    /// and a 2 MiB file to copy; recover's `nix copy --to` (closure-on-volume's) stays
    /// running after it copied (no knob slows Nix down). Without the variable both are the
    /// real commands.
    fn slow_copy(&self) {
        self.slow_copies("--to");
    }

    /// [`Scenario::slow_copy`] for recover's `nix copy` in `direction` (`--from`: the
    /// build's copy of the old system from the volume's store).
    fn slow_copies(&self, direction: &str) {
        let (bin, real, extra) = match self {
            Scenario::Predestroy(host) => {
                host.in_namespace(
                    false,
                    &format!(
                        "head -c 2M /dev/urandom >{home}/qwe/big\nchown 1000:100 {home}/qwe/big",
                        home = quote(&host.home.to_string_lossy())
                    ),
                );
                let stand_in = "[ -z \"$LIFEBOAT_FAULT\" ] || set -- --bwlimit=8 \"$@\"\n";
                (&host.bin, sh("command -v rsync"), stand_in.to_string())
            }
            Scenario::Recover(vps) => {
                let stand_in = format!(
                    "if [ -n \"$LIFEBOAT_FAULT\" ] && [ \"$1\" = copy ]; then\n\
                     \x20   case \" $* \" in *\" {direction} \"*)\n\
                     \x20       @real@ \"$@\" || exit\n\
                     \x20       while :; do sleep 1; done;;\n\
                     \x20   esac\n\
                     fi\n"
                );
                (&vps.bin, sh("command -v nix"), stand_in)
            }
            Scenario::Inspect(_) | Scenario::Verify(_) => panic!("inspect and verify copy nothing"),
        };
        let name = Path::new(&real).file_name().unwrap();
        let script = format!(
            "#!/bin/sh\n{}exec {real} \"$@\"\n",
            extra.replace("@real@", &real)
        );
        let path = bin.join(name);
        fs::write(&path, script).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// lifeboat's own read-only inspection mount point.
    fn inspection_mount(&self) -> Option<&Path> {
        match self {
            Scenario::Inspect(sandbox) => Some(&sandbox.mountpoint),
            Scenario::Recover(vps) => Some(&vps.mnt),
            Scenario::Predestroy(_) | Scenario::Verify(_) => None,
        }
    }
}

/// A run of a trial and the machine right after it.
struct Phase {
    name: &'static str,
    code: i32,
    events: Vec<Value>,
    stderr: String,
    /// `<state>/journal.json`, parsed.
    journal: Value,
    /// Mount points below the scenario's directory.
    mounts: Vec<PathBuf>,
    /// lifeboat's temporaries (`.lifeboat-*`: files being written, a clone being made) found
    /// on the root disk below the directory and on the volume.
    temporaries: String,
    /// The trial's watched file, when it exists.
    watched: Option<Vec<u8>>,
}

impl Phase {
    fn read(dir: &Path, name: &'static str, scenario: &Scenario) -> Phase {
        let file = |ext: &str| dir.join(format!("{name}.{ext}"));
        let text = |ext: &str| {
            fs::read_to_string(file(ext)).unwrap_or_else(|e| panic!("{}: {e}", file(ext).display()))
        };
        let events = text("events")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}")))
            .collect();
        let journal = serde_json::from_str(&text("journal"))
            .unwrap_or_else(|e| panic!("the journal after the {name} run is not JSON: {e}"));
        Phase {
            name,
            code: text("code").trim().parse().unwrap(),
            events,
            stderr: text("stderr"),
            journal,
            mounts: mounts_under(&fs::read(file("mounts")).unwrap(), scenario.dir()),
            temporaries: text("temporaries"),
            watched: fs::read(file("watched")).ok(),
        }
    }

    fn summary(&self) -> &Value {
        let last = self.events.last().expect("some events");
        assert_eq!(last["event"], "summary", "{}: {last}", self.name);
        last
    }

    /// Everything a failed assertion should show.
    fn describe(&self) -> String {
        format!(
            "{} run: exit {}\nstderr: {}\nevents: {:#?}",
            self.name, self.code, self.stderr, self.events
        )
    }
}

fn mounts_under(mountinfo: &[u8], dir: &Path) -> Vec<PathBuf> {
    parse_mountinfo(mountinfo)
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|m| m.starts_with(dir))
        .collect()
}

/// A faulted run and the run after it, in one namespace.
struct Trial {
    /// Mount points below the directory before the faulted run.
    before: Vec<PathBuf>,
    /// The watched file before the faulted run, when it existed.
    watched_before: Option<Vec<u8>>,
    faulted: Phase,
    /// Processes mentioning the scenario's directory that outlived the faulted run.
    survivors: Vec<String>,
    next: Phase,
}

/// Where the faulted run waits to be signalled.
#[derive(Debug, Clone, Copy)]
enum At<'a> {
    /// Before a step: `LIFEBOAT_FAULT=pause:<step>`.
    Before(&'a str),
    /// Inside an operation: `LIFEBOAT_FAULT=pause-in:<point>[@<step>]` (src/faults.rs).
    Inside(&'a str),
}

impl At<'_> {
    fn fault(&self) -> String {
        match self {
            At::Before(step) => format!("pause:{step}"),
            At::Inside(point) => format!("pause-in:{point}"),
        }
    }
}

/// Run the flow with `--yes`, paused `at` a point, send `signal` once it waits there, then
/// run it again with `--yes` and `next_args`. `watched` is a file (as the machine sees it)
/// whose contents are kept before and after each run.
fn trial(
    scenario: &Scenario,
    at: At,
    signal: Signal,
    next_args: &str,
    watched: Option<&Path>,
) -> Trial {
    let fault = at.fault();
    let files = scenario.dir().join(format!(
        "trial-{}-{}",
        fault.replace([':', '@'], "-"),
        signal.as_str()
    ));
    fs::create_dir(&files).unwrap();
    let watched = watched.map_or("/nonexistent".into(), |w| w.to_string_lossy().into_owned());
    let script = format!(
        "set +e\n\
         f={files}\n\
         keep() {{ [ ! -e {watched} ] || cat {watched} >$f/$1.watched; }}\n\
         cat /proc/self/mountinfo >$f/before.mounts\n\
         keep before\n\
         after() {{\n\
             cat /proc/self/mountinfo >$f/$1.mounts\n\
             cp {state}/journal.json $f/$1.journal\n\
             {{ find {dir} -xdev -name '.lifeboat-*'; {volume}; }} >$f/$1.temporaries 2>&1\n\
             keep $1\n\
         }}\n\
         LIFEBOAT_FAULT={fault} {lifeboat} --json --yes >$f/faulted.events 2>$f/faulted.stderr &\n\
         echo $! >$f/pid\n\
         wait $!\n\
         echo $? >$f/faulted.code\n\
         after faulted\n\
         touch $f/faulted.done\n\
         while [ ! -e $f/go ]; do sleep 0.05; done\n\
         {lifeboat} --json --yes {next_args} >$f/next.events 2>$f/next.stderr\n\
         echo $? >$f/next.code\n\
         after next\n",
        files = quote(&files.to_string_lossy()),
        watched = quote(&watched),
        state = quote(&scenario.state().to_string_lossy()),
        dir = quote(&scenario.dir().to_string_lossy()),
        volume = scenario.volume_temporaries(),
        lifeboat = scenario.lifeboat(),
    );
    let mut shell = scenario
        .command(&script)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = wait_until_paused(&mut shell, &files, scenario.state(), at);
    kill(pid, signal).unwrap();
    let stopped = || fs::metadata(files.join("faulted.done")).ok();
    poll(&mut shell, &files, &format!("stop on {signal}"), stopped);
    let survivors = survivors(scenario.dir(), shell.id());
    fs::write(files.join("go"), "").unwrap();
    let out = shell.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the trial's script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Trial {
        before: mounts_under(
            &fs::read(files.join("before.mounts")).unwrap(),
            scenario.dir(),
        ),
        watched_before: fs::read(files.join("before.watched")).ok(),
        faulted: Phase::read(&files, "faulted", scenario),
        survivors,
        next: Phase::read(&files, "next", scenario),
    }
}

/// The command lines of processes other than the trial's shell that mention `dir` (a
/// command the faulted run started, such as rsync or `nix copy`). A process killed with the
/// run may take a moment to go; only one still there after a minute counts.
fn survivors(dir: &Path, shell: u32) -> Vec<String> {
    let guard = Instant::now() + Duration::from_secs(60);
    loop {
        let found = processes_mentioning(dir, shell);
        if found.is_empty() || Instant::now() > guard {
            return found;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn processes_mentioning(dir: &Path, shell: u32) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != shell && *pid != std::process::id())
        .filter_map(|pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let shown = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            shown.contains(&needle).then(|| format!("{pid}: {shown}"))
        })
        .collect()
}

/// Wait until the faulted run waits `at` its point: for a step, once it reported the step
/// running and recorded that in the journal (the last thing before the pause); inside an
/// operation, once it said so on stderr. Its pid.
fn wait_until_paused(shell: &mut Child, files: &Path, state: &Path, at: At) -> Pid {
    let paused = || {
        let ready = match at {
            At::Before(step) => {
                reported_running(&files.join("faulted.events"), step)
                    && journal_running(state, step)
            }
            At::Inside(point) => {
                let name = point.rsplit_once('@').map_or(point, |(name, _)| name);
                let said = format!("LIFEBOAT_FAULT: paused in {name}");
                fs::read_to_string(files.join("faulted.stderr"))
                    .unwrap_or_default()
                    .lines()
                    .any(|l| l == said)
            }
        };
        faulted_pid(files).filter(|_| ready)
    };
    poll(shell, files, &format!("pause {at:?}"), paused)
}

fn faulted_pid(files: &Path) -> Option<Pid> {
    fs::read_to_string(files.join("pid"))
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .map(Pid::from_raw)
}

/// Poll `ready` until it gives a value. Panics, killing the trial, when the trial ends
/// first or after ten minutes: not a time limit on lifeboat, only a guard so that a run
/// that never pauses or never stops fails the test instead of hanging the suite.
fn poll<T>(shell: &mut Child, files: &Path, what: &str, ready: impl Fn() -> Option<T>) -> T {
    let guard = Instant::now() + Duration::from_secs(600);
    loop {
        if let Some(value) = ready() {
            return value;
        }
        let ended = shell.try_wait().unwrap();
        let faulted_done = files.join("faulted.done").exists();
        if ended.is_some() || faulted_done || Instant::now() > guard {
            if let Some(pid) = faulted_pid(files) {
                let _ = kill(pid, Signal::SIGKILL);
            }
            let _ = fs::write(files.join("go"), "");
            let _ = shell.kill();
            let _ = shell.wait();
            let events = fs::read_to_string(files.join("faulted.events")).unwrap_or_default();
            let stderr = fs::read_to_string(files.join("faulted.stderr")).unwrap_or_default();
            panic!("the faulted run did not {what} ({ended:?}):\n{stderr}\n{events}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn reported_running(events: &Path, step: &str) -> bool {
    fs::read_to_string(events)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .any(|e| e["event"] == "step" && e["step"] == step && e["status"] == "running")
}

fn journal_running(state: &Path, step: &str) -> bool {
    fs::read_to_string(state.join("journal.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .is_some_and(|journal| journal_says_running(&journal, step))
}

fn journal_says_running(journal: &Value, step: &str) -> bool {
    journal["steps"].as_array().is_some_and(|steps| {
        steps
            .iter()
            .any(|s| s["id"] == step && s["status"] == "running")
    })
}

/// No mount of lifeboat's is left after `phase`, no temporary anywhere, and no command the
/// faulted run started still running.
fn assert_nothing_left(scenario: &Scenario, trial: &Trial, phase: &Phase) {
    assert!(
        trial.survivors.is_empty(),
        "processes outlived the faulted run: {:#?}",
        trial.survivors
    );
    let allowed = trial.before.clone();
    let left: Vec<&PathBuf> = phase
        .mounts
        .iter()
        .filter(|m| !allowed.contains(m))
        .collect();
    assert!(
        left.is_empty(),
        "mounts left after the {} run: {left:?}\n{}",
        phase.name,
        phase.describe()
    );
    if let Some(mnt) = scenario.inspection_mount() {
        assert!(
            !phase.mounts.iter().any(|m| m == mnt),
            "the inspection mount is left after the {} run",
            phase.name
        );
    }
    assert_eq!(
        phase.temporaries.trim(),
        "",
        "half-written files after the {} run",
        phase.name
    );
}

/// The run after the fault finished the job.
fn assert_finished(scenario: &Scenario, trial: &Trial) {
    let next = &trial.next;
    assert_eq!(next.code, 0, "{}", next.describe());
    assert_eq!(next.summary()["status"], "passed", "{}", next.describe());
    assert_eq!(next.journal["finished"], "passed");
    assert_nothing_left(scenario, trial, next);
    if let Scenario::Predestroy(host) = scenario {
        assert_card_and_marker_whole(host);
    }
    if let Scenario::Recover(vps) = scenario {
        let parent = vps.etc_nixos.parent().unwrap();
        let asides: Vec<String> = fs::read_dir(parent)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("etc-nixos.before-lifeboat-"))
            .collect();
        assert_eq!(
            asides.len(),
            1,
            "the installer's /etc/nixos moved aside: {asides:?}"
        );
    }
}

/// What predestroy wrote on the volume for recover reads back whole.
fn assert_card_and_marker_whole(host: &Host) {
    let card = host
        .volume_file("qwe/.lifeboat/recovery.toml")
        .expect("a recovery card");
    let copy = host.sandbox.dir.join("card-read-back.toml");
    fs::write(&copy, card).unwrap();
    let card = RecoveryCard::load(&copy).unwrap_or_else(|e| panic!("the card: {e}"));
    let marker = host
        .volume_file("qwe/.lifeboat/persistence-marker")
        .expect("a persistence marker");
    let marker = PersistenceMarker::parse(&marker).expect("the marker parses");
    assert_eq!(
        card.persistence_nonce.as_deref(),
        Some(marker.nonce.as_str())
    );
}

/// Interrupt `flow` before `step` with SIGINT or SIGTERM: exit 130, nothing left behind, the
/// journal says interrupted, and the next run finishes. Inspect and verify only read the
/// volume: its bytes stay the same.
fn interrupted_then_finished(flow: FlowKind, step: &str, signal: Signal) {
    let scenario = Scenario::new(flow);
    let hash = sha256_file(&scenario_image(&scenario));
    let next_args = if flow == FlowKind::Inspect {
        ""
    } else {
        "--resume"
    };
    let trial = trial(&scenario, At::Before(step), signal, next_args, None);
    let faulted = &trial.faulted;
    assert_eq!(faulted.code, 130, "{}", faulted.describe());
    assert_eq!(faulted.summary()["status"], "interrupted");
    assert_eq!(
        faulted.journal["finished"], "interrupted",
        "{}",
        faulted.journal
    );
    assert_nothing_left(&scenario, &trial, faulted);
    assert_finished(&scenario, &trial);
    if matches!(flow, FlowKind::Inspect | FlowKind::Verify) {
        assert_eq!(
            sha256_file(&scenario_image(&scenario)),
            hash,
            "the device changed"
        );
    }
}

/// Kill `flow` with SIGKILL while it waits before `step`; `--resume --yes` finishes it.
/// Returns the trial for checks of the killed run's traces.
fn killed_then_resumed(flow: FlowKind, step: &str) -> (Scenario, Trial) {
    let scenario = Scenario::new(flow);
    let trial = trial(
        &scenario,
        At::Before(step),
        Signal::SIGKILL,
        "--resume",
        None,
    );
    let faulted = &trial.faulted;
    assert_eq!(faulted.code, 128 + 9, "{}", faulted.describe());
    assert_eq!(
        faulted.journal["finished"],
        Value::Null,
        "{}",
        faulted.journal
    );
    assert!(
        journal_says_running(&faulted.journal, step),
        "{}",
        faulted.journal
    );
    assert_eq!(faulted.temporaries.trim(), "");
    assert_finished(&scenario, &trial);
    (scenario, trial)
}

fn scenario_image(scenario: &Scenario) -> PathBuf {
    match scenario {
        Scenario::Inspect(sandbox) => sandbox.image.clone(),
        Scenario::Recover(vps) => vps.sandbox.image.clone(),
        Scenario::Predestroy(host) => host.sandbox.image.clone(),
        Scenario::Verify(machine) => machine.sandbox.image.clone(),
    }
}

/// One test per listed step, interrupting `$flow` there with `$signal`; `$list` names the
/// steps covered, so a test can hold them against the flow's steps.
macro_rules! interrupt_tests {
    ($list:ident, $flow:expr, $signal:expr; $($name:ident => $step:literal),+ $(,)?) => {
        const $list: &[&str] = &[$($step),+];
        $(
            #[test]
            fn $name() {
                interrupted_then_finished($flow, $step, $signal);
            }
        )+
    };
}

interrupt_tests!(INSPECT_SIGINT, FlowKind::Inspect, Signal::SIGINT;
    inspect_sigint_before_find_volume => "find-volume",
    inspect_sigint_before_identify_volume => "identify-volume",
    inspect_sigint_before_mount_readonly => "mount-readonly",
    inspect_sigint_before_check_layout => "check-layout",
    inspect_sigint_before_measure => "measure",
    inspect_sigint_before_unmount => "unmount",
);

interrupt_tests!(RECOVER_SIGINT, FlowKind::Recover, Signal::SIGINT;
    recover_sigint_before_preflight => "preflight",
    recover_sigint_before_find_volume => "find-volume",
    recover_sigint_before_inspect_volume => "inspect-volume",
    recover_sigint_before_restore_host_identity => "restore-host-identity",
    recover_sigint_before_clone_config => "clone-config",
    recover_sigint_before_hardware_config => "hardware-config",
    recover_sigint_before_boot_safety => "boot-safety",
    recover_sigint_before_mount_volume => "mount-volume",
    recover_sigint_before_build => "build",
    recover_sigint_before_closure_on_volume => "closure-on-volume",
    recover_sigint_before_boot => "boot",
    recover_sigint_before_reboot => "reboot",
);

interrupt_tests!(PREDESTROY_SIGINT, FlowKind::Predestroy, Signal::SIGINT;
    predestroy_sigint_before_config_repo_committed => "config-repo-committed",
    predestroy_sigint_before_config_repo_pushed => "config-repo-pushed",
    predestroy_sigint_before_rehearsal => "rehearsal",
    predestroy_sigint_before_home_on_volume => "home-on-volume",
    predestroy_sigint_before_nix_on_volume => "nix-on-volume",
    predestroy_sigint_before_docker_on_volume => "docker-on-volume",
    predestroy_sigint_before_root_disk_audit => "root-disk-audit",
    predestroy_sigint_before_config_mirror => "config-mirror",
    predestroy_sigint_before_package_lists => "package-lists",
    predestroy_sigint_before_host_identity => "host-identity",
    predestroy_sigint_before_persistence_marker => "persistence-marker",
    predestroy_sigint_before_recovery_card => "recovery-card",
    predestroy_sigint_before_backup => "backup",
);

interrupt_tests!(INSPECT_SIGTERM, FlowKind::Inspect, Signal::SIGTERM;
    inspect_sigterm_before_find_volume => "find-volume",
    inspect_sigterm_before_identify_volume => "identify-volume",
    inspect_sigterm_before_mount_readonly => "mount-readonly",
    inspect_sigterm_before_check_layout => "check-layout",
    inspect_sigterm_before_measure => "measure",
    inspect_sigterm_before_unmount => "unmount",
);

interrupt_tests!(RECOVER_SIGTERM, FlowKind::Recover, Signal::SIGTERM;
    recover_sigterm_before_preflight => "preflight",
    recover_sigterm_before_find_volume => "find-volume",
    recover_sigterm_before_inspect_volume => "inspect-volume",
    recover_sigterm_before_restore_host_identity => "restore-host-identity",
    recover_sigterm_before_clone_config => "clone-config",
    recover_sigterm_before_hardware_config => "hardware-config",
    recover_sigterm_before_boot_safety => "boot-safety",
    recover_sigterm_before_mount_volume => "mount-volume",
    recover_sigterm_before_build => "build",
    recover_sigterm_before_closure_on_volume => "closure-on-volume",
    recover_sigterm_before_boot => "boot",
    recover_sigterm_before_reboot => "reboot",
);

interrupt_tests!(PREDESTROY_SIGTERM, FlowKind::Predestroy, Signal::SIGTERM;
    predestroy_sigterm_before_config_repo_committed => "config-repo-committed",
    predestroy_sigterm_before_config_repo_pushed => "config-repo-pushed",
    predestroy_sigterm_before_rehearsal => "rehearsal",
    predestroy_sigterm_before_home_on_volume => "home-on-volume",
    predestroy_sigterm_before_nix_on_volume => "nix-on-volume",
    predestroy_sigterm_before_docker_on_volume => "docker-on-volume",
    predestroy_sigterm_before_root_disk_audit => "root-disk-audit",
    predestroy_sigterm_before_config_mirror => "config-mirror",
    predestroy_sigterm_before_package_lists => "package-lists",
    predestroy_sigterm_before_host_identity => "host-identity",
    predestroy_sigterm_before_persistence_marker => "persistence-marker",
    predestroy_sigterm_before_recovery_card => "recovery-card",
    predestroy_sigterm_before_backup => "backup",
);

interrupt_tests!(VERIFY_SIGINT, FlowKind::Verify, Signal::SIGINT;
    verify_sigint_before_home_mounted => "home-mounted",
    verify_sigint_before_nix_bound => "nix-bound",
    verify_sigint_before_owner_uid => "owner-uid",
    verify_sigint_before_host_identity => "host-identity",
    verify_sigint_before_persistence_marker => "persistence-marker",
    verify_sigint_before_closure_on_volume => "closure-on-volume",
    verify_sigint_before_generations => "generations",
);

interrupt_tests!(VERIFY_SIGTERM, FlowKind::Verify, Signal::SIGTERM;
    verify_sigterm_before_home_mounted => "home-mounted",
    verify_sigterm_before_nix_bound => "nix-bound",
    verify_sigterm_before_owner_uid => "owner-uid",
    verify_sigterm_before_host_identity => "host-identity",
    verify_sigterm_before_persistence_marker => "persistence-marker",
    verify_sigterm_before_closure_on_volume => "closure-on-volume",
    verify_sigterm_before_generations => "generations",
);

/// The steps the SIGINT and the SIGTERM tests of `flow` cover; a match, so that a new flow
/// does not compile here without its tests.
fn interrupted_steps(flow: FlowKind) -> [(&'static str, &'static [&'static str]); 2] {
    let (sigint, sigterm) = match flow {
        FlowKind::Inspect => (INSPECT_SIGINT, INSPECT_SIGTERM),
        FlowKind::Recover => (RECOVER_SIGINT, RECOVER_SIGTERM),
        FlowKind::Predestroy => (PREDESTROY_SIGINT, PREDESTROY_SIGTERM),
        FlowKind::Verify => (VERIFY_SIGINT, VERIFY_SIGTERM),
    };
    [("SIGINT", sigint), ("SIGTERM", sigterm)]
}

#[test]
fn sigint_and_sigterm_cover_every_step_of_every_flow() {
    let flows = [
        FlowKind::Inspect,
        FlowKind::Recover,
        FlowKind::Predestroy,
        FlowKind::Verify,
    ];
    for flow in flows {
        let ids: Vec<&str> = flow.steps().iter().map(|s| s.id.as_str()).collect();
        for (signal, covered) in interrupted_steps(flow) {
            assert_eq!(
                covered,
                ids,
                "{}: a step without a {signal} test",
                flow.id()
            );
        }
    }
}

#[test]
fn inspect_killed_before_measure_leaves_a_mount_that_resume_undoes() {
    let (scenario, trial) = killed_then_resumed(FlowKind::Inspect, "measure");
    let mnt = scenario.inspection_mount().unwrap();
    assert!(
        trial.faulted.mounts.iter().any(|m| m == mnt),
        "the killed run's mount: {:?}",
        trial.faulted.mounts
    );
    let undone = trial.next.events.iter().any(|e| {
        e["event"] == "output"
            && e["line"]
                .as_str()
                .is_some_and(|l| l.contains("undid the read-only mount"))
    });
    assert!(undone, "{}", trial.next.describe());
}

#[test]
fn recover_killed_before_build_is_finished_by_resume() {
    killed_then_resumed(FlowKind::Recover, "build");
}

#[test]
fn recover_killed_before_closure_on_volume_leaves_a_mount_that_resume_undoes() {
    let (scenario, trial) = killed_then_resumed(FlowKind::Recover, "closure-on-volume");
    let Scenario::Recover(vps) = &scenario else {
        unreachable!()
    };
    let private = vps.state.join("volume");
    assert!(
        trial.faulted.mounts.contains(&private),
        "the killed run's read-write mount: {:?}",
        trial.faulted.mounts
    );
    let undone = trial.next.events.iter().any(|e| {
        e["event"] == "output"
            && e["line"]
                .as_str()
                .is_some_and(|l| l.contains("undid the read-write mount"))
    });
    assert!(undone, "{}", trial.next.describe());
    assert!(vps.calls().iter().any(|c| c == "reboot"));
    assert_eq!(vps.volume_profile().0.len(), 2);
}

/// Killed after the copy, before the profile points at the new system (between writing
/// `system-2-link` and repointing `system`): the resumed run finishes the profile without
/// a second new generation and copies nothing twice.
#[test]
fn recover_killed_between_the_copy_and_the_profile_write_is_finished_by_resume() {
    let (scenario, _) = recover_scenario();
    let trial = killed_inside(&scenario, "write:system@boot", None);
    let Scenario::Recover(vps) = &scenario else {
        unreachable!()
    };
    assert!(journal_says_running(&trial.faulted.journal, "boot"));
    let resumed = &trial.next;
    assert_eq!(resumed.code, 0, "{}", resumed.describe());
    let (generations, current) = vps.volume_profile();
    assert_eq!(generations.len(), 2, "{generations:?}");
    assert_eq!(current, Some(generations[1].0));
    let copied_again = fresh_vps::step(&resumed.events, "closure-on-volume").1;
    assert!(
        copied_again.contains("is in the volume's store"),
        "{copied_again}"
    );
}

#[test]
fn predestroy_killed_before_recovery_card_is_finished_by_resume() {
    let (_, trial) = killed_then_resumed(FlowKind::Predestroy, "recovery-card");
    assert_eq!(trial.next.summary()["ready"], true);
}

/// SIGKILL the run where it waits inside an operation (`point`, see src/faults.rs); the
/// killed run left the journal whole, the `watched` file exactly as it was before (never
/// part-written), no command running, and `--resume --yes` finishes the job.
fn killed_inside(scenario: &Scenario, point: &str, watched: Option<&Path>) -> Trial {
    let trial = trial(
        scenario,
        At::Inside(point),
        Signal::SIGKILL,
        "--resume",
        watched,
    );
    let faulted = &trial.faulted;
    assert_eq!(faulted.code, 128 + 9, "{}", faulted.describe());
    assert_eq!(
        faulted.journal["finished"],
        Value::Null,
        "{}",
        faulted.journal
    );
    assert!(
        trial.survivors.is_empty(),
        "processes outlived the killed run: {:#?}",
        trial.survivors
    );
    assert!(
        faulted.watched == trial.watched_before,
        "the killed run changed {watched:?}: {:?}",
        faulted.watched.as_deref().map(String::from_utf8_lossy)
    );
    assert_finished(scenario, &trial);
    trial
}

/// Interrupt the run with `signal` where it waits inside an operation: exit 130, the
/// journal says interrupted, nothing left (no mount, no temporary, no command running),
/// and `--resume --yes` finishes the job.
fn interrupted_inside(
    scenario: &Scenario,
    point: &str,
    signal: Signal,
    watched: Option<&Path>,
) -> Trial {
    let trial = trial(scenario, At::Inside(point), signal, "--resume", watched);
    let faulted = &trial.faulted;
    assert_eq!(faulted.code, 130, "{}", faulted.describe());
    assert_eq!(faulted.summary()["status"], "interrupted");
    assert_eq!(
        faulted.journal["finished"], "interrupted",
        "{}",
        faulted.journal
    );
    assert_nothing_left(scenario, &trial, faulted);
    assert_finished(scenario, &trial);
    trial
}

/// The killed run left the temporary of `file`, which the next run removed.
fn assert_temporary_left(trial: &Trial, file: &str) {
    let name = format!(".lifeboat-{file}.tmp");
    assert!(
        trial
            .faulted
            .temporaries
            .lines()
            .any(|l| l.ends_with(&name)),
        "no {name} after the killed run: {:?}",
        trial.faulted.temporaries
    );
}

/// The faulted run's summary says `step` was cut short by the signal.
fn assert_step_interrupted(trial: &Trial, step: &str) {
    let (status, message) = fresh_vps::step(&trial.faulted.events, step);
    assert_eq!(
        (status, message),
        ("failed", "interrupted"),
        "{}",
        trial.faulted.describe()
    );
}

fn recover_scenario() -> (Scenario, PathBuf) {
    let scenario = Scenario::new(FlowKind::Recover);
    let Scenario::Recover(vps) = &scenario else {
        unreachable!()
    };
    let hardware = vps.etc_nixos.join("hardware-configuration.nix");
    (scenario, hardware)
}

fn predestroy_scenario() -> (Scenario, PathBuf) {
    let scenario = Scenario::new(FlowKind::Predestroy);
    let Scenario::Predestroy(host) = &scenario else {
        unreachable!()
    };
    let lifeboat_dir = host.home.join("qwe/.lifeboat");
    (scenario, lifeboat_dir)
}

#[test]
fn inspect_killed_mid_scan_leaves_a_mount_that_resume_undoes() {
    let scenario = Scenario::new(FlowKind::Inspect);
    let hash = sha256_file(&scenario_image(&scenario));
    let trial = killed_inside(&scenario, "scan", None);
    assert!(journal_says_running(&trial.faulted.journal, "measure"));
    let mnt = scenario.inspection_mount().unwrap();
    assert!(
        trial.faulted.mounts.iter().any(|m| m == mnt),
        "the killed run's mount: {:?}",
        trial.faulted.mounts
    );
    assert_eq!(sha256_file(&scenario_image(&scenario)), hash);
}

#[test]
fn inspect_sigint_mid_scan() {
    let scenario = Scenario::new(FlowKind::Inspect);
    let hash = sha256_file(&scenario_image(&scenario));
    let trial = interrupted_inside(&scenario, "scan", Signal::SIGINT, None);
    assert_step_interrupted(&trial, "measure");
    assert_eq!(sha256_file(&scenario_image(&scenario)), hash);
}

#[test]
fn inspect_killed_writing_the_journal_leaves_the_previous_journal() {
    let scenario = Scenario::new(FlowKind::Inspect);
    let trial = killed_inside(&scenario, "write:journal.json@measure", None);
    // The write that was cut off would have recorded how measure ended.
    assert!(journal_says_running(&trial.faulted.journal, "measure"));
    assert_temporary_left(&trial, "journal.json");
}

#[test]
fn inspect_killed_half_way_through_the_journal_leaves_the_previous_journal() {
    let scenario = Scenario::new(FlowKind::Inspect);
    let trial = killed_inside(&scenario, "half-write:journal.json@measure", None);
    assert!(journal_says_running(&trial.faulted.journal, "measure"));
    assert_temporary_left(&trial, "journal.json");
}

#[test]
fn recover_killed_mid_clone_is_finished_by_resume() {
    let (scenario, _) = recover_scenario();
    let trial = killed_inside(&scenario, "git-transfer", None);
    assert!(journal_says_running(&trial.faulted.journal, "clone-config"));
    assert!(
        trial
            .faulted
            .temporaries
            .lines()
            .any(|l| l.ends_with("/.lifeboat-etc-nixos.clone")),
        "the killed clone was not made aside: {}",
        trial.faulted.temporaries
    );
}

#[test]
fn recover_sigint_mid_clone() {
    let (scenario, _) = recover_scenario();
    let trial = interrupted_inside(&scenario, "git-transfer", Signal::SIGINT, None);
    assert_step_interrupted(&trial, "clone-config");
}

#[test]
fn recover_killed_mid_nix_copy_takes_the_copy_with_it() {
    let (scenario, _) = recover_scenario();
    scenario.slow_copy();
    let trial = killed_inside(&scenario, "copy@closure-on-volume", None);
    assert!(journal_says_running(
        &trial.faulted.journal,
        "closure-on-volume"
    ));
}

/// The build's copy of the old system from the volume's store, interrupted: the build
/// stops before anything is built, and `--resume` copies what is missing and builds.
#[test]
fn recover_sigint_mid_copy_from_the_volume_stops_the_build() {
    let (scenario, _) = recover_scenario();
    scenario.slow_copies("--from");
    let trial = interrupted_inside(&scenario, "copy@build", Signal::SIGINT, None);
    assert_step_interrupted(&trial, "build");
    // Stopped in the copy, before nixos-rebuild started.
    let rebuilt = trial.faulted.events.iter().any(|e| {
        e["step"] == "build"
            && e["line"]
                .as_str()
                .is_some_and(|l| l.starts_with("building "))
    });
    assert!(!rebuilt, "{}", trial.faulted.describe());
}

#[test]
fn recover_sigint_mid_nix_copy_stops_the_copy() {
    let (scenario, _) = recover_scenario();
    scenario.slow_copy();
    let trial = interrupted_inside(&scenario, "copy@closure-on-volume", Signal::SIGINT, None);
    assert_step_interrupted(&trial, "closure-on-volume");
}

/// `nixos-rebuild boot` is never stopped half-way: interrupted while it installs the boot
/// entry, it is left to finish (and the run says so), and the run stops after it, before the
/// reboot; `--resume` then finishes the job.
#[test]
fn recover_sigint_mid_boot_lets_it_finish() {
    let (scenario, _) = recover_scenario();
    let trial = interrupted_inside(&scenario, "activation", Signal::SIGINT, None);
    let faulted = &trial.faulted;
    let status = |id| fresh_vps::step(&faulted.events, id).0;
    assert_eq!(status("boot"), "passed", "{}", faulted.describe());
    assert_ne!(status("reboot"), "passed");
    let said_so = faulted.events.iter().any(|e| {
        e["step"] == "boot"
            && e["line"]
                .as_str()
                .is_some_and(|l| l.contains("left to finish"))
    });
    assert!(said_so, "{}", faulted.describe());
}

#[test]
fn recover_sigterm_mid_nix_copy_stops_the_copy() {
    let (scenario, _) = recover_scenario();
    scenario.slow_copy();
    interrupted_inside(&scenario, "copy@closure-on-volume", Signal::SIGTERM, None);
}

#[test]
fn recover_killed_writing_hardware_config_leaves_the_old_file() {
    let (scenario, hardware) = recover_scenario();
    let trial = killed_inside(
        &scenario,
        "write:hardware-configuration.nix",
        Some(&hardware),
    );
    assert_temporary_left(&trial, "hardware-configuration.nix");
    assert_ne!(trial.next.watched, trial.watched_before, "not rewritten");
}

#[test]
fn recover_killed_half_way_through_hardware_config_leaves_the_old_file() {
    let (scenario, hardware) = recover_scenario();
    let trial = killed_inside(
        &scenario,
        "half-write:hardware-configuration.nix",
        Some(&hardware),
    );
    assert_temporary_left(&trial, "hardware-configuration.nix");
    assert_ne!(trial.next.watched, trial.watched_before, "not rewritten");
}

#[test]
fn recover_sigint_writing_hardware_config_finishes_the_write() {
    let (scenario, hardware) = recover_scenario();
    let trial = interrupted_inside(
        &scenario,
        "write:hardware-configuration.nix",
        Signal::SIGINT,
        Some(&hardware),
    );
    // The file is written whole (the same text the next run writes), never in part.
    assert_eq!(trial.faulted.watched, trial.next.watched);
    assert_ne!(trial.faulted.watched, trial.watched_before);
}

/// A kill cannot be cleaned up after: the rehearsal's clone cut off by SIGKILL stays in
/// its staging directory beside `[state].dir/rehearsal`, and the next run removes it
/// before it clones again.
#[test]
fn predestroy_killed_mid_rehearsal_clone_leaves_it_for_the_next_run() {
    let (scenario, _) = predestroy_scenario();
    let trial = trial(
        &scenario,
        At::Inside("git-transfer@rehearsal"),
        Signal::SIGKILL,
        "--resume",
        None,
    );
    assert_eq!(trial.faulted.code, 128 + 9, "{}", trial.faulted.describe());
    assert!(journal_says_running(&trial.faulted.journal, "rehearsal"));
    assert!(
        trial
            .faulted
            .temporaries
            .lines()
            .any(|l| l.ends_with("/.lifeboat-rehearsal.clone")),
        "the killed clone was not left: {}",
        trial.faulted.temporaries
    );
    assert_finished(&scenario, &trial);
    assert_eq!(
        trial.next.temporaries.trim(),
        "",
        "the clone outlived the next run"
    );
    assert!(!scenario.state().join("rehearsal").exists());
}

/// Interrupted while it clones, the rehearsal removes its clone itself (no temporary is
/// left: `interrupted_inside`).
#[test]
fn predestroy_sigint_mid_rehearsal_clone_removes_it() {
    let (scenario, _) = predestroy_scenario();
    let trial = interrupted_inside(&scenario, "git-transfer@rehearsal", Signal::SIGINT, None);
    assert_step_interrupted(&trial, "rehearsal");
    assert!(!scenario.state().join("rehearsal").exists());
}

#[test]
fn predestroy_killed_mid_backup_takes_rsync_with_it() {
    let (scenario, _) = predestroy_scenario();
    scenario.slow_copy();
    let trial = killed_inside(&scenario, "copy", None);
    assert!(journal_says_running(&trial.faulted.journal, "backup"));
}

#[test]
fn predestroy_sigint_mid_backup_stops_rsync() {
    let (scenario, _) = predestroy_scenario();
    scenario.slow_copy();
    let trial = interrupted_inside(&scenario, "copy", Signal::SIGINT, None);
    assert_step_interrupted(&trial, "backup");
}

#[test]
fn predestroy_sigterm_mid_backup_stops_rsync() {
    let (scenario, _) = predestroy_scenario();
    scenario.slow_copy();
    interrupted_inside(&scenario, "copy", Signal::SIGTERM, None);
}

#[test]
fn predestroy_killed_writing_the_card_leaves_none() {
    let (scenario, dir) = predestroy_scenario();
    let card = dir.join("recovery.toml");
    let trial = killed_inside(&scenario, "write:recovery.toml", Some(&card));
    assert_eq!(trial.watched_before, None);
    assert_temporary_left(&trial, "recovery.toml");
}

#[test]
fn predestroy_killed_half_way_through_the_card_leaves_none() {
    let (scenario, dir) = predestroy_scenario();
    let card = dir.join("recovery.toml");
    let trial = killed_inside(&scenario, "half-write:recovery.toml", Some(&card));
    assert_temporary_left(&trial, "recovery.toml");
}

#[test]
fn predestroy_sigint_writing_the_card_finishes_the_write() {
    let (scenario, dir) = predestroy_scenario();
    let card = dir.join("recovery.toml");
    let trial = interrupted_inside(
        &scenario,
        "write:recovery.toml",
        Signal::SIGINT,
        Some(&card),
    );
    let written = trial
        .faulted
        .watched
        .as_deref()
        .expect("the card was written");
    let copy = scenario.dir().join("interrupted-card.toml");
    fs::write(&copy, written).unwrap();
    RecoveryCard::load(&copy).unwrap_or_else(|e| panic!("the card: {e}"));
}

#[test]
fn predestroy_killed_writing_the_marker_leaves_none() {
    let (scenario, dir) = predestroy_scenario();
    let marker = dir.join("persistence-marker");
    let trial = killed_inside(&scenario, "write:persistence-marker", Some(&marker));
    assert_temporary_left(&trial, "persistence-marker");
}

#[test]
fn predestroy_killed_writing_a_package_list_leaves_none() {
    let (scenario, dir) = predestroy_scenario();
    let list = dir.join("system-requisites.txt");
    let trial = killed_inside(&scenario, "half-write:system-requisites.txt", Some(&list));
    assert_temporary_left(&trial, "system-requisites.txt");
}

#[test]
fn predestroy_killed_writing_the_journal_leaves_the_previous_journal() {
    let (scenario, _) = predestroy_scenario();
    let trial = killed_inside(&scenario, "write:journal.json@backup", None);
    assert!(journal_says_running(&trial.faulted.journal, "backup"));
    assert_temporary_left(&trial, "journal.json");
}

#[test]
fn inspect_sigint_writing_the_journal_finishes_the_write() {
    let scenario = Scenario::new(FlowKind::Inspect);
    // The write records how check-layout ended; the run stops before measure.
    let trial = interrupted_inside(
        &scenario,
        "write:journal.json@check-layout",
        Signal::SIGINT,
        None,
    );
    assert_step_interrupted(&trial, "measure");
}

#[test]
fn predestroy_sigint_half_way_through_a_package_list_finishes_the_write() {
    let (scenario, dir) = predestroy_scenario();
    let list = dir.join("system-requisites.txt");
    let trial = interrupted_inside(
        &scenario,
        "half-write:system-requisites.txt",
        Signal::SIGINT,
        Some(&list),
    );
    let written = trial.faulted.watched.expect("the list was written");
    let written = String::from_utf8(written).unwrap();
    assert!(
        written.ends_with('\n') && written.lines().all(|l| l.starts_with("/nix/store/")),
        "{written}"
    );
}
