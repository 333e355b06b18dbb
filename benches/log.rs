//! Times following a build's log through lifeboat's headless front end against `cat` of the
//! same log into a file (and, for reference, `cat | cat`: the log through a pipe, as a build's
//! output reaches lifeboat; and the floor: the same stand-in build, its output read from the
//! pipe and written out as lifeboat writes it, as many bytes, with no work in between), and
//! compares lifeboat's peak memory for a short and a long log.
//!
//! The log is a generated `nix --log-format internal-json` stream shaped like the captures in
//! tests/fixtures/nix/: activities started and stopped, progress results, phases, messages
//! (some coloured), downloads, and mostly build log lines. lifeboat's side is the real path:
//! recover's `build` step runs `[commands].nixos_rebuild`, here a stand-in that `cat`s the log
//! to stderr, through `run_streaming` and the Nix log parser, and sends the events to the
//! `--json` printer (stdout, /dev/null here) and the run's transcript file. Each lifeboat run
//! is a fresh child process, so its peak RSS is its own.
//!
//! `LIFEBOAT_BENCH_DIR` is where the logs and transcripts go (default /var/tmp);
//! `LIFEBOAT_BENCH_LINES` sets the long log's length (default 1,000,000; the short one is a
//! tenth of it); `LIFEBOAT_BENCH_RUNS` the runs per measurement (default 5). With
//! `LIFEBOAT_BENCH_KEEP` set it only writes the logs, keeps them and says where, for profiling
//! one run by hand (`LIFEBOAT_BENCH_LOG_CHILD=LOG LIFEBOAT_BENCH_STATE=DIR valgrind …`).

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use generate::{Rng, env_number, peak_rss_kib};

mod common;
#[path = "common/generate.rs"]
mod generate;
#[path = "../tests/support/headless_build.rs"]
mod headless_build;

const CHILD_ENV: &str = "LIFEBOAT_BENCH_LOG_CHILD";
/// The floor's child: the log, and how many bytes to write to its transcript.
const FLOOR_ENV: &str = "LIFEBOAT_BENCH_FLOOR_CHILD";
const FLOOR_BYTES_ENV: &str = "LIFEBOAT_BENCH_FLOOR_BYTES";
/// What the stand-in prints on stdout at the end, as nixos-rebuild prints the system.
const SYSTEM: &str = "/nix/store/5f1cz2wyd0ajvrr5gfqz8ia8jc3pdd2w-nixos-system-bench-25.11";

fn main() {
    if let Ok(log) = std::env::var(CHILD_ENV) {
        return child_build(Path::new(&log));
    }
    if let Ok(log) = std::env::var(FLOOR_ENV) {
        return floor_child(Path::new(&log));
    }
    let lines: usize = env_number("LIFEBOAT_BENCH_LINES", 1_000_000);
    let runs: usize = env_number("LIFEBOAT_BENCH_RUNS", 5).max(1);
    let dir =
        tempfile::tempdir_in(std::env::var_os("LIFEBOAT_BENCH_DIR").unwrap_or("/var/tmp".into()))
            .expect("temporary directory");
    let long = generate(dir.path(), lines);
    let short = generate(dir.path(), lines / 10);
    if std::env::var_os("LIFEBOAT_BENCH_KEEP").is_some() {
        eprintln!("keeping the logs in {}", dir.keep().display());
        return;
    }
    let size = fs::metadata(&long).expect("log").len();

    println!(
        "\nlog streaming: {lines} lines ({:.0} MiB) of internal-json; medians of {runs} runs",
        size as f64 / f64::from(1 << 20)
    );
    let mut lifeboat = Vec::new();
    let mut cat = Vec::new();
    let mut piped = Vec::new();
    let mut floor = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..runs {
        let (sample, peak, transcript) = time_lifeboat(&long, dir.path());
        lifeboat.push(sample);
        rss.push(peak);
        cat.push(time_cat(&long, dir.path(), false));
        piped.push(time_cat(&long, dir.path(), true));
        floor.push(time_floor(&long, dir.path(), transcript));
    }
    let short_rss = (0..runs.min(3))
        .map(|_| time_lifeboat(&short, dir.path()).1)
        .max()
        .unwrap_or(0);
    let (lb, ct, pp) = (median(&lifeboat), median(&cat), median(&piped));
    let fl = median(&floor);
    println!(
        "{:<12} {:>9} {:>9} {:>12} {:>12}",
        "tool", "wall ms", "cpu ms", "lb/cat wall", "peak RSS KiB"
    );
    println!(
        "{:<12} {:>9.1} {:>9.1} {:>12.2} {:>12}",
        "lifeboat",
        ms(lb.wall),
        ms(lb.cpu),
        lb.wall.as_secs_f64() / ct.wall.as_secs_f64(),
        rss.iter().max().unwrap_or(&0)
    );
    println!("{:<12} {:>9.1} {:>9.1}", "cat", ms(ct.wall), ms(ct.cpu));
    for (tool, sample) in [("cat | cat", pp), ("floor", fl)] {
        println!(
            "{:<12} {:>9.1} {:>9.1} {:>12.2}",
            tool,
            ms(sample.wall),
            ms(sample.cpu),
            sample.wall.as_secs_f64() / ct.wall.as_secs_f64()
        );
    }
    let long_rss = rss.iter().copied().max().unwrap_or(0);
    println!(
        "peak RSS of lifeboat: {short_rss} KiB for {} lines, {long_rss} KiB for {lines} lines",
        lines / 10,
    );
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let what = format!("log, {lines} lines");
    common::summary_row(
        &format!("{what}: wall"),
        &format!("{:.0} ms", ms(lb.wall)),
        &format!("cat {:.0} ms", ms(ct.wall)),
        ratio(lb.wall, ct.wall),
        "<= 2",
    );
    common::summary_row(
        &format!("{what}: cat | cat"),
        &format!("{:.0} ms", ms(pp.wall)),
        &format!("cat {:.0} ms", ms(ct.wall)),
        ratio(pp.wall, ct.wall),
        "(pipe floor)",
    );
    common::summary_row(
        &format!("{what}: floor"),
        &format!("{:.0} ms", ms(fl.wall)),
        &format!("cat {:.0} ms", ms(ct.wall)),
        ratio(fl.wall, ct.wall),
        "(no work)",
    );
    common::summary_row(
        &format!("{what}: over the floor"),
        &format!("{:.0} ms", ms(lb.wall)),
        &format!("floor {:.0} ms", ms(fl.wall)),
        ratio(lb.wall, fl.wall),
        "",
    );
    common::summary_row(
        &format!("{what}: cpu"),
        &format!("{:.0} ms", ms(lb.cpu)),
        &format!("cat {:.0} ms", ms(ct.cpu)),
        ratio(lb.cpu, ct.cpu),
        "",
    );
    common::summary_row(
        &format!("{what}: peak RSS"),
        &format!("{long_rss} KiB"),
        &format!("{} lines {short_rss} KiB", lines / 10),
        long_rss as f64 / short_rss.max(1) as f64,
        "1.0 (flat)",
    );
}

/// Wall-clock and CPU (user+sys) time of one run, children included.
#[derive(Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu: Duration,
}

fn median(samples: &[Sample]) -> Sample {
    let pick = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    Sample {
        wall: pick(samples.iter().map(|s| s.wall).collect()),
        cpu: pick(samples.iter().map(|s| s.cpu).collect()),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Time `command` to its end, with the CPU time of it and its descendants.
fn time(command: &mut Command) -> (Sample, std::process::Output) {
    let (start, cpu) = (Instant::now(), children_cpu());
    let output = command.output().expect("run the benchmark's child");
    let sample = Sample {
        wall: start.elapsed(),
        cpu: children_cpu() - cpu,
    };
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (sample, output)
}

fn children_cpu() -> Duration {
    // SAFETY: an all-zero rusage is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we pass.
    let status = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(status, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// `cat LOG > transcript`, the floor for moving the log's bytes into a file; `piped`: through
/// a second `cat` on a pipe first, as a build's output reaches lifeboat, the least any
/// program that follows a build and keeps its log can take.
fn time_cat(log: &Path, dir: &Path, piped: bool) -> Sample {
    let out = dir.join("cat-transcript");
    let file = File::create(&out).expect("cat's transcript");
    let mut command = if piped {
        let mut sh = Command::new("sh");
        sh.args(["-c", "cat \"$0\" | cat"]).arg(log);
        sh
    } else {
        let mut cat = Command::new("cat");
        cat.arg(log);
        cat
    };
    let sample = time(command.stdout(file)).0;
    fs::remove_file(out).expect("remove cat's transcript");
    sample
}

/// One build in a fresh child process; its time, its peak RSS (KiB) and the size of the
/// transcript it wrote.
fn time_lifeboat(log: &Path, dir: &Path) -> (Sample, u64, u64) {
    let state = dir.join("state");
    let exe = std::env::current_exe().expect("current exe");
    let (sample, output) = time(
        Command::new(exe)
            .env(CHILD_ENV, log)
            .env("LIFEBOAT_BENCH_STATE", &state)
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let peak = String::from_utf8_lossy(&output.stderr)
        .trim()
        .parse()
        .expect("the child's peak RSS");
    let transcripts = fs::read_dir(state.join("transcripts")).expect("the run's transcripts");
    let transcript = transcripts
        .map(|entry| {
            entry
                .expect("a transcript")
                .metadata()
                .expect("its size")
                .len()
        })
        .sum();
    fs::remove_dir_all(&state).expect("remove the run's state");
    (sample, peak, transcript)
}

/// The floor in a fresh child process, writing `transcript` bytes as lifeboat's transcript.
fn time_floor(log: &Path, dir: &Path, transcript: u64) -> Sample {
    let exe = std::env::current_exe().expect("current exe");
    let out = dir.join("floor-transcript");
    let sample = time(
        Command::new(exe)
            .env(FLOOR_ENV, log)
            .env(FLOOR_BYTES_ENV, transcript.to_string())
            .env("LIFEBOAT_BENCH_FLOOR_OUT", &out)
            .stdout(Stdio::null()),
    )
    .0;
    fs::remove_file(out).expect("remove the floor's transcript");
    sample
}

/// The floor: the stand-in build as lifeboat runs it, its stderr read from the pipe 64 KiB
/// at a time and written to stdout (as `--json` prints) and to a transcript, bytes added to
/// each write so that the transcript is as large as lifeboat's. What following the build
/// costs the kernel and no more.
fn floor_child(log: &Path) {
    let transcript = env_number(FLOOR_BYTES_ENV, 0) as u64;
    let log_size = fs::metadata(log).expect("the log").len().max(1);
    let out = std::env::var_os("LIFEBOAT_BENCH_FLOOR_OUT").expect("the floor's transcript");
    let mut file = File::create(out).expect("create the floor's transcript");
    let mut child = Command::new("sh")
        .args(["-c", &format!("cat \"$0\" >&2 && echo {SYSTEM}")])
        .arg(log)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the stand-in");
    let mut pipe = child.stderr.take().expect("its stderr");
    let mut stdout = std::io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    let mut extra = Vec::new();
    let (mut read, mut written) = (0u64, 0u64);
    loop {
        let n = pipe.read(&mut buf).expect("read the build's output");
        if n == 0 {
            break;
        }
        read += n as u64;
        // As many bytes written as lifeboat's transcript holds by this point of the log.
        let due = (read * transcript / log_size).saturating_sub(written + n as u64) as usize;
        extra.resize(due, b'x');
        stdout.write_all(&buf[..n]).expect("write stdout");
        file.write_all(&buf[..n]).expect("write the transcript");
        file.write_all(&extra).expect("write the transcript");
        written += (n + due) as u64;
    }
    assert!(child.wait().expect("the stand-in").success());
}

/// The child: recover's build step with the stand-in, events to `--json` on stdout and to
/// the transcript; prints its peak RSS on stderr.
fn child_build(log: &Path) {
    let state = PathBuf::from(std::env::var_os("LIFEBOAT_BENCH_STATE").expect("state dir"));
    let stand_in = [
        "sh",
        "-c",
        &format!("cat \"$0\" >&2 && echo {SYSTEM}"),
        &log.display().to_string(),
    ]
    .map(String::from)
    .to_vec();
    headless_build::build(&state, "bench", stand_in);
    eprintln!("{}", peak_rss_kib());
}

const PACKAGES: &[&str] = &[
    "glibc",
    "bash",
    "coreutils",
    "openssl",
    "python3",
    "perl",
    "zlib",
    "curl",
    "git",
    "systemd",
    "ncurses",
    "readline",
    "libffi",
    "sqlite",
    "xz",
    "nix",
];
const PHASES: &[&str] = &[
    "unpackPhase",
    "patchPhase",
    "configurePhase",
    "buildPhase",
    "checkPhase",
    "installPhase",
    "fixupPhase",
];

/// Writes the log line by line, counting, and stops at the length asked for.
struct LogWriter {
    out: BufWriter<File>,
    written: usize,
    limit: usize,
    next_id: u64,
}

impl LogWriter {
    fn full(&self) -> bool {
        self.written >= self.limit
    }

    fn line(&mut self, text: &str) {
        if !self.full() {
            writeln!(self.out, "{text}").expect("write the log");
            self.written += 1;
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn start(&mut self, id: u64, kind: u32, level: u32, text: &str, fields: &str) {
        self.line(&format!(
            r#"@nix {{"action":"start",{fields}"id":{id},"level":{level},"text":"{text}","type":{kind}}}"#
        ));
    }

    fn stop(&mut self, id: u64) {
        self.line(&format!(r#"@nix {{"action":"stop","id":{id}}}"#));
    }

    fn result(&mut self, id: u64, kind: u32, fields: &str) {
        self.line(&format!(
            r#"@nix {{"action":"result","fields":[{fields}],"id":{id},"type":{kind}}}"#
        ));
    }

    fn msg(&mut self, level: u32, text: &str) {
        self.line(&format!(
            r#"@nix {{"action":"msg","level":{level},"msg":"{text}"}}"#
        ));
    }
}

/// `<dir>/nix-<lines>.log`: a build of derivation after derivation until `lines` lines.
fn generate(dir: &Path, lines: usize) -> PathBuf {
    let path = dir.join(format!("nix-{lines}.log"));
    let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ lines as u64);
    let mut log = LogWriter {
        out: BufWriter::new(File::create(&path).expect("create the log")),
        written: 0,
        limit: lines,
        next_id: 58_789_512_347_648,
    };
    let total = (lines / 1000).max(1);
    log.line("building the system configuration...");
    log.msg(3, &format!("these {total} derivations will be built:"));
    let (realise, builds, copies) = (log.id(), log.id(), log.id());
    log.start(realise, 102, 0, "", "");
    log.start(builds, 104, 0, "", "");
    log.start(copies, 103, 0, "", "");
    let mut built = 0;
    while !log.full() {
        let name = PACKAGES[rng.below(PACKAGES.len() as u64) as usize];
        let version = format!("{}.{}", rng.below(9), rng.below(30));
        let drv = format!("/nix/store/{}-{name}-{version}.drv", rng.hash());
        if rng.below(4) == 0 {
            download(&mut log, &mut rng, name, &version);
        }
        let id = log.id();
        log.start(
            id,
            105,
            3,
            &format!("building '{drv}'"),
            &format!(r#""fields":["{drv}","",1,1],"#),
        );
        log.result(builds, 105, &format!("{built},{total},1,0"));
        log.result(copies, 105, "0,0,0,0");
        log.result(realise, 106, "101,0");
        log.result(realise, 106, "100,0");
        for phase in PHASES {
            log.result(id, 104, &format!(r#""{phase}""#));
            for _ in 0..rng.below(300) {
                let text = build_line(&mut rng, name, &version);
                log.result(id, 101, &format!(r#""{text}""#));
            }
        }
        if rng.below(50) == 0 {
            // Nix reports errors it recovers from at level 0, as it does real ones.
            log.msg(
                0,
                &format!(
                    r"\u001b[31;1merror (ignored):\u001b[0m error: {name}-{version}: cannot connect to the substituter"
                ),
            );
        }
        if rng.below(10) == 0 {
            log.msg(
                1,
                &format!(
                    r"\u001b[35;1mwarning:\u001b[0m {name}-{version}: output path contains a reference to the build directory"
                ),
            );
        }
        log.stop(id);
        built += 1;
    }
    log.out.flush().expect("write the log");
    path
}

/// A file fetched from the cache: start, byte progress, stop.
fn download(log: &mut LogWriter, rng: &mut Rng, name: &str, version: &str) {
    let url = format!("https://cache.nixos.org/nar/{}.nar.xz", rng.hash());
    let id = log.id();
    log.start(
        id,
        101,
        4,
        &format!("downloading '{url}'"),
        &format!(r#""fields":["{url}"],"#),
    );
    let size = 10_000 + rng.below(5_000_000);
    for step in 0..=4 {
        log.result(id, 105, &format!("{},{size},0,0", size * step / 4));
    }
    log.stop(id);
    log.msg(
        4,
        &format!("copying path '/nix/store/{}-{name}-{version}'", rng.hash()),
    );
}

/// A line such as a build prints: compiler commands, configure checks, make, warnings.
fn build_line(rng: &mut Rng, name: &str, version: &str) -> String {
    let file = format!("src/{name}_{}.c", rng.below(400));
    let mut line = String::new();
    match rng.below(10) {
        0..=3 => {
            let _ = write!(
                line,
                "gcc -DHAVE_CONFIG_H -I. -I./include -I/nix/store/{}-zlib-1.3.1-dev/include -O2 -g -Wall -fPIC -c {file} -o {}.o",
                rng.hash(),
                file.trim_end_matches(".c")
            );
        }
        4..=5 => {
            let _ = write!(
                line,
                "checking for {name}_feature_{}... yes",
                rng.below(900)
            );
        }
        6 => {
            let _ = write!(
                line,
                "make[{}]: Entering directory '/build/{name}-{version}/src'",
                rng.below(4)
            );
        }
        7 => {
            let _ = write!(
                line,
                r"{file}:{}:{}: \u001b[1;35mwarning: \u001b[0munused variable 'tmp{}' [-Wunused-variable]",
                rng.below(2000),
                rng.below(80),
                rng.below(50)
            );
        }
        8 => line.push_str(r"  CCLD     libfoo.la\tdone"),
        _ => {
            let _ = write!(line, "PASS: test-{name}-{}", rng.below(300));
        }
    }
    line
}
