//! Times `scan()` against `du -s` (and `diskus` when on PATH) on a generated Nix-store-like tree,
//! warm and cold cache, and reports how lifeboat's peak memory grows with the tree.
//!
//! `LIFEBOAT_BENCH_DIR` (required) is where the trees go, ideally a loop-mounted ext4 so cold runs
//! mean something; `LIFEBOAT_BENCH_FILES` sets the file count (default 200,000); `LIFEBOAT_BENCH_RUNS`
//! the runs per measurement (default 5). Cold runs drop the page cache, so run as root.
//! Trees are kept between runs (a marker file records what was generated).

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use generate::{Rng, env_number, peak_rss_kib};
use nixos_lifeboat::exec::scan::scan;

mod common;
#[path = "common/generate.rs"]
mod generate;

const CHILD_ENV: &str = "LIFEBOAT_BENCH_CHILD";

fn main() {
    if let Ok(root) = std::env::var(CHILD_ENV) {
        return child_scan(Path::new(&root));
    }
    let Some(dir) = std::env::var_os("LIFEBOAT_BENCH_DIR") else {
        eprintln!("set LIFEBOAT_BENCH_DIR to a scratch directory (ideally a loop-mounted ext4)");
        std::process::exit(2);
    };
    let files: usize = env_number("LIFEBOAT_BENCH_FILES", 200_000);
    let runs: usize = env_number("LIFEBOAT_BENCH_RUNS", 5);
    let dir = PathBuf::from(dir);
    let full = ensure_tree(&dir.join(format!("tree-{files}")), files);
    let quarter = ensure_tree(&dir.join(format!("tree-{}", files / 4)), files / 4);
    let diskus = on_path("diskus");

    println!(
        "\n{files} files; medians of {runs} runs, tools taking turns; wall and CPU (user+sys) ms"
    );
    println!(
        "{:<6} {:<9} {:>9} {:>9} {:>12} {:>12} {:>12} {:>12}",
        "cache", "tool", "wall", "cpu", "lb/du wall", "lb/du cpu", "lb/dsk wall", "lb/dsk cpu"
    );
    for (cache, cold) in [("warm", false), ("cold", true)] {
        let mut tools: Vec<Tool> = vec![
            ("lifeboat", Box::new(|| time_lifeboat(&full))),
            ("du -s", Box::new(|| time_command("du", &["-s"], &full))),
        ];
        if diskus {
            tools.push(("diskus", Box::new(|| time_command("diskus", &[], &full))));
        }
        let times = medians(runs, cold, &tools);
        let lb = times[0];
        for ((name, _), t) in tools.iter().zip(&times).skip(1) {
            common::summary_row(
                &format!("scan, {files} files, {cache}: wall"),
                &format!("{:.0} ms", ms(lb.wall)),
                &format!("{name} {:.0} ms", ms(t.wall)),
                lb.wall.as_secs_f64() / t.wall.as_secs_f64(),
                if *name == "diskus" { "<= 1" } else { "< 1" },
            );
        }
        for ((name, _), t) in tools.iter().zip(&times) {
            let ratios = |other: Option<&Sample>| match other.filter(|_| *name == "lifeboat") {
                Some(o) => [ratio(lb.wall, o.wall), ratio(lb.cpu, o.cpu)],
                None => [String::new(), String::new()],
            };
            let [du_wall, du_cpu] = ratios(times.get(1));
            let [dk_wall, dk_cpu] = ratios(times.get(2));
            println!(
                "{cache:<6} {name:<9} {:>9.1} {:>9.1} {du_wall:>12} {du_cpu:>12} {dk_wall:>12} {dk_cpu:>12}",
                ms(t.wall),
                ms(t.cpu),
            );
        }
    }

    let rss_full = child_rss_growth(&full);
    let rss_quarter = child_rss_growth(&quarter);
    println!(
        "\npeak RSS growth during scan: {} KiB for {files} files, {} KiB for {} files",
        rss_full,
        rss_quarter,
        files / 4
    );
    common::summary_row(
        &format!("scan, {files} files: peak RSS growth"),
        &format!("{rss_full} KiB"),
        &format!("{} files {rss_quarter} KiB", files / 4),
        rss_full as f64 / rss_quarter.max(1) as f64,
        "",
    );
}

fn on_path(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Wall-clock and CPU time of one run. CPU time shows the work done even when other processes
/// compete for the machine.
#[derive(Clone, Copy, Default)]
struct Sample {
    wall: Duration,
    cpu: Duration,
}

/// A name and how to time one run of it.
type Tool<'a> = (&'a str, Box<dyn Fn() -> Sample + 'a>);

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn ratio(a: Duration, b: Duration) -> String {
    format!("{:.2}", a.as_secs_f64() / b.as_secs_f64())
}

/// Each tool's medians over `runs` rounds, the tools taking turns within a round so that drift in
/// the machine's load hits them alike. Cold runs drop the page, dentry and inode caches first;
/// warm ones follow one unmeasured round.
fn medians(runs: usize, cold: bool, tools: &[Tool<'_>]) -> Vec<Sample> {
    let mut samples = vec![Vec::new(); tools.len()];
    let first = usize::from(cold);
    for round in first..=runs.max(1) {
        for ((_, tool), spent) in tools.iter().zip(&mut samples) {
            if cold {
                drop_caches();
            }
            let took = tool();
            if round > 0 {
                spent.push(took);
            }
        }
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    samples
        .into_iter()
        .map(|s| Sample {
            wall: median(s.iter().map(|t| t.wall).collect()),
            cpu: median(s.iter().map(|t| t.cpu).collect()),
        })
        .collect()
}

fn drop_caches() {
    Command::new("sync").status().expect("sync");
    fs::write("/proc/sys/vm/drop_caches", "3\n").expect("drop caches (needs root)");
}

fn time_lifeboat(root: &Path) -> Sample {
    let (start, cpu) = (Instant::now(), cpu_time(libc::RUSAGE_SELF));
    let report = scan(
        root,
        Some(OsStr::new("qwe")),
        &|_| {},
        &AtomicBool::new(false),
    )
    .expect("scan");
    let sample = Sample {
        wall: start.elapsed(),
        cpu: cpu_time(libc::RUSAGE_SELF) - cpu,
    };
    assert!(!report.rows.is_empty());
    sample
}

fn time_command(program: &str, args: &[&str], root: &Path) -> Sample {
    let (start, cpu) = (Instant::now(), cpu_time(libc::RUSAGE_CHILDREN));
    let status = Command::new(program)
        .args(args)
        .arg(root)
        .stdout(Stdio::null())
        .status()
        .expect(program);
    let sample = Sample {
        wall: start.elapsed(),
        cpu: cpu_time(libc::RUSAGE_CHILDREN) - cpu,
    };
    assert!(status.success(), "{program} failed");
    sample
}

fn rusage(who: libc::c_int) -> libc::rusage {
    // SAFETY: an all-zero rusage is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we pass.
    let status = unsafe { libc::getrusage(who, &mut usage) };
    assert_eq!(status, 0);
    usage
}

fn cpu_time(who: libc::c_int) -> Duration {
    let u = rusage(who);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Run one scan in a child process and read how much its peak RSS grew (KiB).
fn child_rss_growth(root: &Path) -> i64 {
    let exe = std::env::current_exe().expect("current exe");
    let out = Command::new(exe)
        .env(CHILD_ENV, root)
        .output()
        .expect("child scan");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("child output")
}

fn child_scan(root: &Path) {
    let before = peak_rss_kib();
    time_lifeboat(root);
    println!("{}", peak_rss_kib() - before);
}

/// Mostly small files, a few large ones, like a store.
fn file_size(rng: &mut Rng) -> usize {
    match rng.below(100) {
        0..=29 => rng.below(600) as usize,
        30..=84 => 600 + rng.below(12_000) as usize,
        85..=97 => 12_000 + rng.below(40_000) as usize,
        _ => 50_000 + rng.below(150_000) as usize,
    }
}

const NAMES: &[&str] = &[
    "glibc",
    "bash",
    "coreutils",
    "openssl",
    "python3",
    "perl",
    "gcc",
    "zlib",
    "curl",
    "git",
    "systemd",
    "ncurses",
    "readline",
    "libffi",
    "sqlite",
    "xz",
    "bzip2",
    "gnused",
    "gnugrep",
    "nix",
];

/// Generate `<root>/qwe/nix/store/<hash>-name-1.0/{bin,lib,share/...}` with about `files` regular
/// files, hard links between store paths and into `.links` (as `nix-store --optimise` leaves
/// them), and symlinks; plus a little of a home directory beside it.
fn ensure_tree(root: &Path, files: usize) -> PathBuf {
    let marker = root.join(".generated");
    if fs::read_to_string(&marker).is_ok_and(|m| m == files.to_string()) {
        return root.to_path_buf();
    }
    if root.exists() {
        fs::remove_dir_all(root).expect("remove old tree");
    }
    eprintln!("generating {files} files under {}", root.display());
    let store = root.join("qwe/nix/store");
    let links = store.join(".links");
    fs::create_dir_all(&links).expect("mkdir");
    for dir in ["qwe/projects/app/src", "qwe/.cache/nix", "qwe/.config"] {
        fs::create_dir_all(root.join(dir)).expect("mkdir");
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ files as u64);
    let mut made = 0;
    let mut previous: Vec<PathBuf> = Vec::new();
    let buf = vec![0x42u8; 200_000];
    while made < files {
        let name = NAMES[rng.below(NAMES.len() as u64) as usize];
        let path = store.join(format!(
            "{}-{name}-{}.{}",
            rng.hash(),
            rng.below(9),
            rng.below(30)
        ));
        let per_path = 5 + rng.below(40) as usize;
        let dirs = [
            "bin".to_string(),
            "lib".to_string(),
            format!("lib/{name}"),
            format!("share/doc/{name}"),
            "share/man/man1".to_string(),
        ];
        for d in &dirs {
            fs::create_dir_all(path.join(d)).expect("mkdir");
        }
        let mut here = Vec::new();
        for i in 0..per_path {
            let file = path.join(&dirs[i % dirs.len()]).join(format!("{name}-{i}"));
            let roll = rng.below(100);
            if roll < 8 && !previous.is_empty() {
                // Identical content in another store path: optimise hard-links them.
                let other = &previous[rng.below(previous.len() as u64) as usize];
                fs::hard_link(other, &file).expect("hard link");
            } else if roll < 13 {
                symlink(format!("{name}-{}", i / 2), &file).expect("symlink");
                continue;
            } else {
                fs::write(&file, &buf[..file_size(&mut rng)]).expect("write");
                if roll < 40 {
                    fs::hard_link(&file, links.join(rng.hash())).expect("link into .links");
                }
            }
            here.push(file);
            made += 1;
        }
        previous.extend(here.into_iter().take(3));
    }
    fs::write(&marker, files.to_string()).expect("marker");
    root.to_path_buf()
}
