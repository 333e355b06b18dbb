//! Times recover's `build` and `closure-on-volume` steps, in a real `lifeboat recover --json
//! --yes` on the fresh-VPS scenario of the tests (tests/support/fresh_vps.rs), against the
//! plain Nix commands that do the same work, in the same run:
//!
//! - `build` (the old system's closure copied from the volume's store with `nix copy --from`,
//!   then `nixos-rebuild build` with that store a trusted extra substituter) against (a) the same `nixos-rebuild build` with the volume's store left
//!   out, every path built (standing in for downloading it), and (b) the floor: a plain
//!   `nix copy --no-check-sigs --from 'local?root=<volume>/qwe'` of exactly the paths the
//!   new system takes from the volume, into an empty store; and against the very `nixos-rebuild
//!   build` command lifeboat ran (from the stand-in's call log) alone, started from a shell
//!   with the volume mounted as lifeboat has it, on an empty store (the substituter alone);
//!   the build step is also split, from lifeboat's transcript, into the time before the
//!   first path copied from the volume, the copying, and the rest, and `nix eval` of the
//!   system on an empty store is timed for the evaluation's share;
//! - `closure-on-volume` against a plain `nix copy --no-check-sigs --to
//!   'local?root=<volume>/qwe'` of the same system into the volume's store in the same state
//!   (only the new system's own paths missing).
//!
//! The old machine's system: the test flake (fixtures/recover/flake.nix) with
//! `LIFEBOAT_BENCH_PATHS` (default 2,000) more store paths of `LIFEBOAT_BENCH_PATH_KIB`
//! (default 512) KiB of random, incompressible bytes each, which the toplevel references;
//! the "old VPS" builds it once into the volume's store (a sparse ext4 image on a loop
//! device, grown to hold it) and makes it generation 1 of the volume's system profile. The
//! new system differs from it only in its hardware configuration (its `etc` and toplevel),
//! so the build copies every other path from the volume.
//!
//! Every round starts from the same state: the fresh machine's store (the scenario's
//! `host-nix`, bound over `/nix`) empty, no clone, no journal, and the volume's store back
//! to the old machine's paths (the new ones deleted from it, its profile back to
//! generation 1). Within a round the tools take turns; medians of `LIFEBOAT_BENCH_RUNS`
//! (default 3) rounds. The page cache is warm (the old system was just written or read);
//! `LIFEBOAT_BENCH_COLD=1` drops it before each timed command and before lifeboat's run.
//! Every Nix command runs with `max-jobs = auto`, NixOS's default (`nix.settings.max-jobs`)
//! on the fresh machine, which Nix's own default of 1 would not be; `LIFEBOAT_BENCH_MAX_JOBS`
//! sets another value (with Nix 2.8 it bounds substitutions too, so the build's copies).
//! lifeboat's figures are the steps' own `duration_ms` from the JSON summary; the others are
//! timed in their mount namespace around the command alone. Each command runs in a fresh
//! `unshare -m --propagation private` namespace; nothing is written to the host's `/nix`.
//! Needs root. Everything (loop device, directories) is removed at the end, after a
//! failure, and after Ctrl-C or SIGTERM (the round stops at its next command); with
//! `LIFEBOAT_BENCH_KEEP` set the scenario is kept and its directory named, for a look at
//! the last round's transcript (`<dir>/state/transcripts/`) or a run by hand.

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fresh_vps::{FreshVps, FreshVpsOptions, HARDWARE_PLAIN, HOST, USER, quote, sh, summary};
use generate::env_number;
use serde_json::Value;

mod common;
#[path = "../tests/support/fresh_vps.rs"]
mod fresh_vps;
#[allow(dead_code)]
#[path = "common/generate.rs"]
mod generate;
#[path = "../tests/support/mod.rs"]
mod support;

/// Set in the copy of this benchmark that runs in a private mount namespace of its own.
const NAMESPACE_ENV: &str = "LIFEBOAT_BENCH_RECOVERY_NAMESPACE";

/// The line of the test flake's toplevel where the benchmark's paths go in: the system's
/// "expensive" part becomes a derivation that references the original and all of them.
const TOPLEVEL_INPUTS: &str = "inherit system etc release expensive;";

/// What replaces [`TOPLEVEL_INPUTS`]; `@paths@` and `@kib@` are filled in. The paths' names
/// go to the builder in a file: as one variable they would pass the kernel's 128 KiB limit.
const BENCH_INPUTS: &str = r#"inherit system etc release;
        # lifeboat's recovery benchmark (benches/recovery.rs): the bulk of a system.
        expensive = (original: derivation {
          name = "bench-closure";
          inherit system original;
          builder = "/bin/sh";
          PATH = "/usr/bin:/bin";
          paths = builtins.genList (i: derivation {
            name = "bench-path-${toString i}";
            inherit system;
            builder = "/bin/sh";
            PATH = "/usr/bin:/bin";
            args = [ "-c" "mkdir -p $out/share && head -c @kib@K /dev/urandom > $out/share/data" ];
          }) @paths@;
          passAsFile = [ "paths" ];
          args = [ "-c" "mkdir $out && ln -s $original $out/original && tr ' ' '\\n' < $pathsPath > $out/paths" ];
        }) expensive;"#;

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "the recovery benchmark needs root: it attaches a loop device and mounts it in \
             private mount namespaces"
        );
        std::process::exit(2);
    }
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&interrupted)).expect("signal handler");
    }
    if std::env::var_os(NAMESPACE_ENV).is_none() {
        std::process::exit(in_private_namespace(&interrupted));
    }
    let paths = env_number("LIFEBOAT_BENCH_PATHS", 2000).max(1);
    let kib = env_number("LIFEBOAT_BENCH_PATH_KIB", 512).max(1);
    let runs = env_number("LIFEBOAT_BENCH_RUNS", 3).max(1);
    let cold = std::env::var_os("LIFEBOAT_BENCH_COLD").is_some_and(|v| v != "0" && !v.is_empty());
    let max_jobs = std::env::var("LIFEBOAT_BENCH_MAX_JOBS").unwrap_or_else(|_| "auto".into());
    assert!(
        max_jobs == "auto" || max_jobs.parse::<u32>().is_ok(),
        "LIFEBOAT_BENCH_MAX_JOBS: a number or auto"
    );

    let bench = Bench::new(paths, kib, cold, max_jobs, interrupted);
    let mut rounds = Vec::new();
    for run in 0..runs {
        eprintln!("round {} of {runs}", run + 1);
        rounds.push(bench.round());
    }
    bench.report(&rounds);
    if std::env::var_os("LIFEBOAT_BENCH_KEEP").is_some() {
        eprintln!(
            "keeping the scenario in {} (its volume stays attached; remove both with \
             `lifeboat demo --clean --dir {}`)",
            bench.vps.dir.display(),
            bench.vps.dir.display()
        );
        std::mem::forget(bench);
    }
}

/// Run this benchmark again in `unshare -m --propagation private` (the scenario asks for a
/// mount namespace of its own), passing SIGINT and SIGTERM on; its exit code.
fn in_private_namespace(interrupted: &AtomicBool) -> i32 {
    let exe = std::env::current_exe().expect("this benchmark's path");
    let mut child = Command::new("unshare")
        .args(["-m", "--propagation", "private"])
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(NAMESPACE_ENV, "1")
        .spawn()
        .expect("run unshare");
    let mut forwarded = false;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the benchmark") {
            return status.code().unwrap_or(1);
        }
        if interrupted.load(Ordering::Relaxed) && !forwarded {
            // `unshare` without --fork runs the benchmark in its own process.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            forwarded = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The scenario with its big old system, and what every round compares.
struct Bench {
    vps: FreshVps,
    paths: usize,
    cold: bool,
    /// Nix's `max-jobs` for every command.
    max_jobs: String,
    interrupted: Arc<AtomicBool>,
    /// The old machine's system, in the volume's store.
    old_system: String,
    /// Its closure: path count and NAR bytes.
    old_paths: usize,
    old_bytes: u64,
    /// The volume image's size.
    volume_bytes: u64,
    /// Every valid path of the volume's store as the old machine left it, sorted, one a line.
    baseline: PathBuf,
}

/// One of a round's figures, for the table.
type Measure = fn(&Round) -> Duration;

/// One round's figures.
#[derive(Debug, Clone)]
struct Round {
    /// lifeboat's `build` and `closure-on-volume` steps (the summary's `duration_ms`).
    build: Duration,
    closure_on_volume: Duration,
    /// The build step, from lifeboat's transcript: up to its first path copied from the
    /// volume, from then to the last one starting, and from then to its end.
    before_copy: Duration,
    copying: Duration,
    after_copy: Duration,
    /// (a) the same build without the volume's store.
    build_everything: Duration,
    /// lifeboat's `nixos-rebuild build` command itself, run from a shell.
    same_build: Duration,
    /// (b) `nix copy --from` the volume of the paths the build took from it.
    copy_from: Duration,
    /// `nix copy --to` the volume of the new system.
    copy_to: Duration,
    /// `nix eval` of the system's derivation on an empty store.
    evaluation: Duration,
    from_volume_paths: u64,
    from_volume_bytes: u64,
    built: u64,
    copied_paths: u64,
}

impl Bench {
    fn new(
        paths: usize,
        kib: usize,
        cold: bool,
        max_jobs: String,
        interrupted: Arc<AtomicBool>,
    ) -> Bench {
        let started = Instant::now();
        let vps = FreshVps::new(FreshVpsOptions {
            old_machine: false,
            ..FreshVpsOptions::default()
        });
        let mut bench = Bench {
            baseline: vps.dir.join("bench-baseline-paths"),
            vps,
            paths,
            cold,
            max_jobs,
            interrupted,
            old_system: String::new(),
            old_paths: 0,
            old_bytes: 0,
            volume_bytes: 0,
        };
        let total = (paths * kib) as u64 * 1024;
        bench.grow_volume((4u64 << 30).max(2 * total + (1 << 30)));
        bench.push_flake(paths, kib);
        bench.check();
        eprintln!(
            "the old machine builds its system ({paths} paths of {kib} KiB) into the volume's store"
        );
        bench.old_machine();
        bench.check();
        eprintln!(
            "old system: {} paths, {:.2} GB ({:.0} MiB), on a {:.1} GiB volume; set up in {:.0} s",
            bench.old_paths,
            bench.old_bytes as f64 / 1e9,
            bench.old_bytes as f64 / f64::from(1 << 20),
            bench.volume_bytes as f64 / (1u64 << 30) as f64,
            started.elapsed().as_secs_f64()
        );
        assert!(
            bench.old_paths >= paths,
            "the old system has {} paths, fewer than the {paths} asked for",
            bench.old_paths
        );
        bench
    }

    /// Stop here after Ctrl-C or SIGTERM: the scenario is cleaned as the panic unwinds.
    fn check(&self) {
        if self.interrupted.load(Ordering::Relaxed) {
            panic!("interrupted");
        }
    }

    /// Grow the volume (256 MiB in the scenario) to `bytes`: the image, the loop device and
    /// the filesystem, which is not mounted anywhere between the scenario's commands.
    fn grow_volume(&mut self, bytes: u64) {
        let image = quote(&self.vps.sandbox.image.to_string_lossy());
        let device = quote(&self.vps.sandbox.loop_device.to_string_lossy());
        sh(&format!(
            "truncate -s {bytes} {image}\nlosetup -c {device}\n\
             e2fsck -fy {device} >/dev/null 2>&1 || [ $? -le 1 ]\nresize2fs -f {device} >/dev/null 2>&1"
        ));
        self.volume_bytes = bytes;
    }

    /// The remote's flake with the benchmark's paths in its toplevel.
    fn push_flake(&self, paths: usize, kib: usize) {
        let flake = fs::read_to_string(self.vps.author.join("flake.nix")).expect("the flake");
        assert!(
            flake.contains(TOPLEVEL_INPUTS),
            "tests/fixtures/recover/flake.nix changed: its toplevel has no `{TOPLEVEL_INPUTS}`"
        );
        let inputs = BENCH_INPUTS
            .replace("@paths@", &paths.to_string())
            .replace("@kib@", &kib.to_string());
        self.vps
            .push_file("flake.nix", &flake.replace(TOPLEVEL_INPUTS, &inputs));
    }

    /// What the old VPS did (as FreshVps does for its own flake): build the system with its
    /// own hardware configuration in a namespace whose `/nix` is the volume's store, and make
    /// it generation 1 of the volume's system profile. Then note the store's paths.
    fn old_machine(&mut self) {
        let old = self.vps.dir.join("old-machine");
        let flake = old.join("flake");
        fs::create_dir_all(&flake).unwrap();
        fs::create_dir_all(old.join("root")).unwrap();
        for file in ["flake.nix", "configuration.nix"] {
            fs::copy(self.vps.author.join(file), flake.join(file)).unwrap();
        }
        fs::write(
            flake.join("hardware-configuration.nix"),
            HARDWARE_PLAIN.replace(fresh_vps::FRESH_ROOT_UUID, fresh_vps::OLD_ROOT_UUID),
        )
        .unwrap();
        let installable = format!(
            "path:{}#nixosConfigurations.{HOST}.config.system.build.toplevel",
            flake.display()
        );
        let out = self.vps.with_volume_store(&format!(
            "export HOME={home}\n\
             json=$(nix build --extra-experimental-features 'nix-command flakes' --no-link \
             --max-jobs auto --json {installable})\n\
             system=$(printf '%s' \"$json\" | sed -n 's/.*\"out\":\"\\([^\"]*\\)\".*/\\1/p')\n\
             nix-env -p /nix/var/nix/profiles/system --set \"$system\"\n\
             nix path-info --all | sort >{baseline}\n\
             echo \"$system\"\nnix-store -qR \"$system\" | wc -l\n\
             nix path-info -S \"$system\" | awk '{{ print $2 }}'",
            home = quote(&old.join("root").to_string_lossy()),
            installable = quote(&installable),
            baseline = quote(&self.baseline.to_string_lossy()),
        ));
        let lines: Vec<&str> = out.lines().collect();
        let [system, count, bytes] = lines[lines.len().saturating_sub(3)..] else {
            panic!("the old machine's build said: {out}");
        };
        assert!(system.starts_with("/nix/store/"), "the old build: {out}");
        self.old_system = system.to_string();
        self.old_paths = count.trim().parse().expect("a path count");
        self.old_bytes = bytes.trim().parse().expect("a closure size");
        fs::remove_dir_all(&old).unwrap();
    }

    /// The fresh machine again: an empty store and `HOME`, no clone, no journal or
    /// transcript, none of the stand-ins' traces (no reboot happened).
    fn reset_machine(&self) {
        let dir = &self.vps.dir;
        self.empty_host_store();
        for d in [dir.join("root"), self.vps.state.clone()] {
            empty_dir(&d);
        }
        for entry in fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name();
            if name.to_string_lossy().starts_with("etc-nixos") {
                fs::remove_dir_all(dir.join(&name)).unwrap();
            }
        }
        for file in [
            "boot-entry",
            "current-system",
            "rebooted",
            "home-mounted",
            "nix-bound",
            "calls.log",
        ] {
            let _ = fs::remove_file(dir.join(file));
        }
    }

    fn empty_host_store(&self) {
        empty_dir(&self.vps.host_nix);
        sh("sync");
    }

    /// The volume's store as the old machine left it: generation 1 the only one, and every
    /// path it did not have deleted (they are garbage once their generation is gone).
    fn reset_volume(&self) {
        self.check();
        let now = self.vps.dir.join("bench-now-paths");
        let extra = self.vps.dir.join("bench-extra-paths");
        self.vps.with_volume_store(&format!(
            "cd /nix/var/nix/profiles\n\
             for link in system-*-link; do [ \"$link\" = system-1-link ] || rm -f \"$link\"; done\n\
             ln -sfn system-1-link system\n\
             nix path-info --all | sort >{now}\ncomm -13 {baseline} {now} >{extra}\n\
             if [ -s {extra} ]; then nix-store --delete $(cat {extra}) >/dev/null 2>&1 || \
             {{ nix-store --delete $(cat {extra}); exit 1; }}; fi\n\
             nix path-info --all | sort | cmp -s - {baseline} || {{ echo 'the volume store differs from the old machine'\"'\"'s'; exit 1; }}\n\
             rm -f {now} {extra}\nsync",
            now = quote(&now.to_string_lossy()),
            extra = quote(&extra.to_string_lossy()),
            baseline = quote(&self.baseline.to_string_lossy()),
        ));
    }

    /// `NIX_CONFIG=…` for a shell: the scenario's settings and [`Bench::max_jobs`].
    fn nix_config(&self) -> String {
        format!("NIX_CONFIG=\"$NIX_CONFIG\nmax-jobs = {}\"", self.max_jobs)
    }

    /// Shell lines that empty the page cache, or at least write out what is dirty, so one
    /// tool's writes are not paid by the next.
    fn settle(&self) -> &'static str {
        if self.cold {
            "sync\necho 3 >/proc/sys/vm/drop_caches\n"
        } else {
            "sync\n"
        }
    }

    /// `command` timed alone in a namespace of the scenario, after `setup`.
    fn timed(&self, setup: &str, command: &str) -> Duration {
        self.check();
        let out = self.vps.shell(&format!(
            "export {}\n{setup}\n{settle}t0=$(date +%s%N)\n{command}\nt1=$(date +%s%N)\n\
             echo $((t1 - t0))",
            self.nix_config(),
            settle = self.settle()
        ));
        self.check();
        let nanos = out.lines().last().unwrap_or_default().trim();
        Duration::from_nanos(nanos.parse().unwrap_or_else(|_| panic!("{out}")))
    }

    /// The volume mounted read-write where recover mounts it, with recover's options.
    fn mount_volume(&self) -> (String, String) {
        let mount = self.vps.state.join("volume");
        let mount_text = quote(&mount.to_string_lossy());
        (
            format!(
                "mkdir -p {mount_text}\nmount -o rw,nosuid,nodev,noexec {device} {mount_text}",
                device = quote(&self.vps.sandbox.loop_device.to_string_lossy()),
            ),
            format!("local?root={}/{USER}", mount.display()),
        )
    }

    fn round(&self) -> Round {
        // lifeboat.
        self.reset_machine();
        self.reset_volume();
        if self.cold {
            sh("sync; echo 3 >/proc/sys/vm/drop_caches");
        }
        self.check();
        let (code, events) = self
            .vps
            .run_env(&self.vps.config(), &self.nix_config(), &["--yes"]);
        self.check();
        assert_eq!(
            code,
            0,
            "lifeboat recover failed: {}\n{}",
            summary(&events),
            self.vps.stderr()
        );
        let summary = summary(&events);
        let step = |id: &str| -> Duration {
            let step = summary["steps"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["id"] == id)
                .unwrap_or_else(|| panic!("no step {id}: {summary}"));
            assert_eq!(step["status"], "passed", "{step}");
            Duration::from_millis(step["duration_ms"].as_u64().unwrap())
        };
        let (build, closure_on_volume) = (step("build"), step("closure-on-volume"));
        let report = &summary["build"];
        let number = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("{summary}"));
        let from_volume_paths = number(&report["from_volume"]["paths"]);
        let built = number(&report["built"]);
        let copied_paths = number(&summary["copied_to_volume"]["paths"]);
        // The benchmark measures what it says: the bulk came from the volume, only the new
        // system's own derivations were built, and closure-on-volume copied them.
        assert!(
            from_volume_paths >= self.paths as u64 && built <= 4,
            "the build did not take the old system from the volume: {report}"
        );
        assert_eq!(number(&report["downloaded"]["paths"]), 0, "{report}");
        assert!(
            copied_paths >= 1,
            "closure-on-volume copied nothing: {summary}"
        );
        let system = summary["system"].as_str().expect("the built system");
        let (before_copy, copying, after_copy) = self.build_phases();

        // The paths the build took from the volume: the new system's closure that the
        // volume's store has (the old machine's paths).
        let closure: BTreeSet<String> = self
            .vps
            .shell(&format!("nix-store -qR {}", quote(system)))
            .lines()
            .map(str::to_string)
            .collect();
        let baseline: BTreeSet<String> = fs::read_to_string(&self.baseline)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        let taken: Vec<&String> = closure.intersection(&baseline).collect();
        // The old system's closure is copied whole: the paths the new system takes, and the
        // old system's own few (its toplevel and `etc`).
        assert!(
            (taken.len() as u64..=taken.len() as u64 + 4).contains(&from_volume_paths),
            "the build copied {from_volume_paths} paths from the volume; the new system takes {}",
            taken.len()
        );
        let taken_file = self.vps.dir.join("bench-taken-paths");
        fs::write(
            &taken_file,
            taken.iter().map(|p| format!("{p}\n")).collect::<String>(),
        )
        .unwrap();

        // closure-on-volume's reference: the new system (in the fresh machine's store since
        // lifeboat's build) into the volume's store, back in the state lifeboat found it.
        self.reset_volume();
        let (mount, store) = self.mount_volume();
        let copy_to = self.timed(
            &mount,
            &format!(
                "nix copy --no-check-sigs --to {} {}",
                quote(&store),
                quote(system)
            ),
        );
        self.reset_volume();

        // (b) the floor: the same paths from the volume into an empty store.
        self.empty_host_store();
        let copy_from = self.timed(
            &mount,
            &format!(
                "nix copy --no-check-sigs --from {} $(cat {})",
                quote(&store),
                quote(&taken_file.to_string_lossy())
            ),
        );

        // Evaluation alone (and the derivations written), on an empty store.
        let flake = format!("{}#{HOST}", self.vps.etc_nixos.display());
        let attr = format!(
            "{}#nixosConfigurations.{HOST}.config.system.build.toplevel.drvPath",
            self.vps.etc_nixos.display()
        );
        self.empty_host_store();
        let evaluation = self.timed(
            "",
            &format!(
                "nix eval --extra-experimental-features 'nix-command flakes' --raw {} >/dev/null",
                quote(&attr)
            ),
        );

        // lifeboat's own build command alone, from a shell on an empty store: the substituter
        // without the copy before it.
        let rebuild = self
            .vps
            .calls()
            .into_iter()
            .find(|c| c.starts_with("nixos-rebuild build "))
            .expect("lifeboat ran nixos-rebuild build");
        self.empty_host_store();
        let same_build = self.timed(
            &format!("{mount}\ncd {}", quote(&self.vps.state.to_string_lossy())),
            &format!("{} >/dev/null 2>&1", shell_words(&rebuild)),
        );

        // (a) the same build as lifeboat's, without the volume's store: everything built.
        self.empty_host_store();
        let build_everything = self.timed(
            &format!("cd {}", quote(&self.vps.state.to_string_lossy())),
            &format!(
                "nixos-rebuild build --flake {} --log-format internal-json -v >/dev/null 2>&1",
                quote(&flake)
            ),
        );

        let round = Round {
            build,
            closure_on_volume,
            before_copy,
            copying,
            after_copy,
            build_everything,
            same_build,
            copy_from,
            copy_to,
            evaluation,
            from_volume_paths,
            from_volume_bytes: number(&report["from_volume"]["bytes"]),
            built,
            copied_paths,
        };
        eprintln!(
            "  build {} ms (a: {} ms, floor {} ms), closure-on-volume {} ms (nix copy --to {} ms)",
            round.build.as_millis(),
            round.build_everything.as_millis(),
            round.copy_from.as_millis(),
            round.closure_on_volume.as_millis(),
            round.copy_to.as_millis()
        );
        round
    }

    /// The build step's time, from the run's transcript: until the first path copied from
    /// the volume starts, from then until the last one starts, and the rest.
    fn build_phases(&self) -> (Duration, Duration, Duration) {
        let dir = self.vps.state.join("transcripts");
        let transcript = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .max()
            .expect("a transcript");
        let text = fs::read_to_string(&transcript).unwrap();
        let (mut start, mut end, mut first, mut last) = (None, None, None, None);
        for line in text.lines() {
            let Ok(event) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if event["step"] != "build" {
                continue;
            }
            let Some(time) = event["time"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            else {
                continue;
            };
            match event["event"].as_str() {
                Some("step") if event["status"] == "running" => start = start.or(Some(time)),
                Some("step") => end = Some(time),
                Some("output")
                    if event["line"]
                        .as_str()
                        .is_some_and(|l| l.starts_with("copying ")) =>
                {
                    first = first.or(Some(time));
                    last = Some(time);
                }
                _ => {}
            }
        }
        let (Some(start), Some(end), Some(first), Some(last)) = (start, end, first, last) else {
            panic!(
                "the transcript {} has no build step with copies",
                transcript.display()
            );
        };
        let span = |a: jiff::Timestamp, b: jiff::Timestamp| {
            Duration::try_from(b.duration_since(a)).unwrap_or_default()
        };
        (span(start, first), span(first, last), span(last, end))
    }

    fn report(&self, rounds: &[Round]) {
        let med = |f: Measure| median(rounds.iter().map(f).collect());
        let first = &rounds[0];
        // Short enough for the summary's 44 columns; the size is in the line above the table.
        let what = format!("recovery, {} paths", self.old_paths);
        println!(
            "\nrecovery: an old system of {} store paths, {:.2} GB ({:.0} MiB) of NAR, on a \
             {:.1} GiB loop volume; the build took {} paths ({:.0} MiB) from the volume and \
             built {} derivations; closure-on-volume copied {} paths; medians of {} runs, {} \
             page cache, max-jobs = {}",
            self.old_paths,
            self.old_bytes as f64 / 1e9,
            self.old_bytes as f64 / f64::from(1 << 20),
            self.volume_bytes as f64 / (1u64 << 30) as f64,
            first.from_volume_paths,
            first.from_volume_bytes as f64 / f64::from(1 << 20),
            first.built,
            first.copied_paths,
            rounds.len(),
            if self.cold { "cold" } else { "warm" },
            self.max_jobs
        );
        let rows: [(&str, Measure); 10] = [
            ("lifeboat: build step", |r| r.build),
            ("  until the first path copied", |r| r.before_copy),
            ("  copying from the volume", |r| r.copying),
            ("  after the last copy started", |r| r.after_copy),
            ("(a) build without the volume's store", |r| {
                r.build_everything
            }),
            ("(b) nix copy --from the volume", |r| r.copy_from),
            ("its rebuild alone, from a shell", |r| r.same_build),
            ("nix eval of the system (empty store)", |r| r.evaluation),
            ("lifeboat: closure-on-volume step", |r| r.closure_on_volume),
            ("nix copy --to the volume", |r| r.copy_to),
        ];
        println!("{:<40} {:>10}  runs (ms)", "measure", "median ms");
        for (name, f) in rows {
            let runs: Vec<String> = rounds
                .iter()
                .map(|r| f(r).as_millis().to_string())
                .collect();
            println!("{name:<40} {:>10}  {}", med(f).as_millis(), runs.join(" "));
        }
        let build = med(|r| r.build);
        let everything = med(|r| r.build_everything);
        let floor = med(|r| r.copy_from);
        let same = med(|r| r.same_build);
        let closure = med(|r| r.closure_on_volume);
        let copy_to = med(|r| r.copy_to);
        let rows = [
            (
                "build",
                build,
                format!("no volume store {}", secs(everything)),
                everything,
                "",
            ),
            (
                "build",
                build,
                format!("nix copy --from {}", secs(floor)),
                floor,
                "<= 1.3",
            ),
            (
                "build",
                build,
                format!("its rebuild alone {}", secs(same)),
                same,
                "",
            ),
            (
                "closure-on-volume",
                closure,
                format!("nix copy --to {}", secs(copy_to)),
                copy_to,
                "<= 1.2",
            ),
        ];
        println!(
            "\n{:<44} {:>10}  {:<24} {:>6}  target",
            "measure", "lifeboat", "reference", "ratio"
        );
        for (step, lifeboat, reference, against, target) in rows {
            let ratio = lifeboat.as_secs_f64() / against.as_secs_f64();
            let measure = format!("{what}: {step}");
            println!(
                "{measure:<44} {:>10}  {reference:<24} {ratio:>6.2}  {target}",
                secs(lifeboat)
            );
            common::summary_row(&measure, &secs(lifeboat), &reference, ratio, target);
        }
    }
}

/// The stand-in's logged argv (`nixos-rebuild build --flake P#H … --option NAME VALUE`) as
/// a shell command line: each word quoted (none holds a space).
fn shell_words(logged: &str) -> String {
    logged.split(' ').map(quote).collect::<Vec<_>>().join(" ")
}

/// Remove everything in `dir` (store paths are read-only; root may remove them anyway).
fn empty_dir(dir: &Path) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() && !path.is_symlink() {
            fs::remove_dir_all(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        } else {
            fs::remove_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// "12.3 s" or "850 ms".
fn secs(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}
