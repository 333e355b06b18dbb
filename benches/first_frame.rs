//! Times from starting the real `lifeboat` binary on a 120×40 pseudo-terminal to its first
//! complete frame (the home screen's key hints, its last row, drawn), against `less` on the
//! same terminal from start to its first screen of a file.
//!
//! `LIFEBOAT_BENCH_CONFIG` (required) is the config the wizard opens with (bench.sh uses the
//! practice volume's, from `lifeboat demo`); `LIFEBOAT_BENCH_RUNS` the runs per program
//! (default 20; the programs take turns).

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

use std::fs::{self, File};
use std::io::{ErrorKind, Read};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

mod common;

const GIVE_UP: Duration = Duration::from_secs(10);

fn main() {
    let Some(config) = std::env::var_os("LIFEBOAT_BENCH_CONFIG") else {
        eprintln!("set LIFEBOAT_BENCH_CONFIG to a lifeboat.toml (bench.sh uses the practice one)");
        std::process::exit(2);
    };
    let runs: usize = std::env::var("LIFEBOAT_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
        .max(1);
    let dir = tempfile::tempdir().expect("temporary directory");
    let text = dir.path().join("text");
    let numbered: String = (1..=200).map(|n| format!("line {n:03}\n")).collect();
    fs::write(&text, numbered).expect("write the text for less");

    let mut lifeboat = Vec::new();
    let mut less = Vec::new();
    for _ in 0..runs {
        lifeboat.push(first_frame(
            Command::new(env!("CARGO_BIN_EXE_lifeboat"))
                .arg("-c")
                .arg(&config),
            "quit",
        ));
        less.push(first_frame(Command::new("less").arg(&text), "line 039"));
    }
    let (lb, ls) = (median(lifeboat), median(less));
    println!("\nfirst frame on a 120x40 terminal: medians of {runs} runs, ms");
    println!("{:<22} {:>9} {:>9}", "program", "ms", "/ less");
    println!(
        "{:<22} {:>9.2} {:>9.2}",
        "lifeboat (home)",
        ms(lb),
        lb.as_secs_f64() / ls.as_secs_f64()
    );
    println!("{:<22} {:>9.2} {:>9.2}", "less FILE", ms(ls), 1.0);
    common::summary_row(
        "first frame of the wizard",
        &format!("{:.1} ms", ms(lb)),
        &format!("less {:.1} ms", ms(ls)),
        lb.as_secs_f64() / ls.as_secs_f64(),
        "",
    );
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Start `command` on a fresh 120×40 terminal and time until `marker` shows in its output;
/// then kill it.
fn first_frame(command: &mut Command, marker: &str) -> Duration {
    let (master, slave) = open_pty(120, 40);
    let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup the terminal"));
    command
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .stdin(stdio(&slave))
        .stdout(stdio(&slave))
        .stderr(stdio(&slave));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let start = Instant::now();
    let child = command.spawn().expect("start the program");
    drop(slave);
    let took = wait_for(&mut File::from(master), marker.as_bytes(), start, &child);
    stop(child);
    took.unwrap_or_else(|| panic!("no {marker:?} within {GIVE_UP:?}"))
}

/// Read the terminal until `marker` appears; how long after `start`.
fn wait_for(master: &mut File, marker: &[u8], start: Instant, child: &Child) -> Option<Duration> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 65536];
    while start.elapsed() < GIVE_UP {
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(100u16)).unwrap_or(0) == 0 {
            continue;
        }
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            // EIO: the program closed the terminal.
            Err(_) => break,
        }
        if seen.windows(marker.len()).any(|w| w == marker) {
            return Some(start.elapsed());
        }
    }
    eprintln!(
        "pid {} printed: {}",
        child.id(),
        String::from_utf8_lossy(&seen)
    );
    None
}

fn stop(mut child: Child) {
    // SAFETY: kill takes any pid; the negative one names the program's process group, which
    // it leads (setsid), so nothing else is signalled.
    unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
    let _ = child.wait();
}

fn open_pty(cols: u16, rows: u16) -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (0, 0);
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty fills the two descriptors; the name and termios are not asked for.
    let status = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(status, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are new and owned here alone.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}
