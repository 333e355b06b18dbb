//! `exec::process` against real programs: `sh -c` scripts, `sleep`, `head`.

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nixos_lifeboat::exec::process::{
    CAPTURE_LIMIT, CommandSpec, Finished, Line, MAX_CHUNK, ProcessError, TAIL_LINES, capture,
    run_streaming,
};
use nixos_lifeboat::report::Stream;

fn sh(script: &str) -> CommandSpec {
    CommandSpec::new("sh", ["-c", script])
}

/// A piece of output: its stream, its bytes, and whether the line goes on.
type Piece = (Stream, Vec<u8>, bool);

/// Run `spec` and collect every piece of output.
fn run_collect(spec: &CommandSpec) -> (Result<Finished, ProcessError>, Vec<Piece>) {
    let mut lines = Vec::new();
    let never = AtomicBool::new(false);
    let result = run_streaming(
        spec,
        &mut |line: Line<'_>| lines.push((line.stream, line.bytes.to_vec(), line.continues)),
        &never,
    );
    (result, lines)
}

fn text(lines: &[(Stream, Vec<u8>, bool)], stream: Stream) -> Vec<String> {
    lines
        .iter()
        .filter(|(s, _, _)| *s == stream)
        .map(|(_, bytes, _)| String::from_utf8_lossy(bytes).into_owned())
        .collect()
}

/// Is `pid` gone (or only a zombie nobody reaps: dead all the same)? Waits up to 10 s for it.
fn process_is_dead(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let dead = match fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        };
        if dead || Instant::now() > deadline {
            return dead;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn parse_pid(bytes: &[u8]) -> i32 {
    std::str::from_utf8(bytes).unwrap().trim().parse().unwrap()
}

/// Makes sure a process a test started is gone even when the test fails.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

#[test]
fn stdout_and_stderr_lines_arrive_in_the_order_they_were_written() {
    let spec =
        sh("echo out1; sleep 0.2; echo err1 >&2; sleep 0.2; echo out2; sleep 0.2; echo err2 >&2");
    let (result, lines) = run_collect(&spec);
    assert!(result.unwrap().status.success());
    let seen: Vec<(Stream, String)> = lines
        .iter()
        .map(|(s, b, c)| {
            assert!(!c);
            (*s, String::from_utf8_lossy(b).into_owned())
        })
        .collect();
    assert_eq!(
        seen,
        [
            (Stream::Stdout, "out1".to_string()),
            (Stream::Stderr, "err1".to_string()),
            (Stream::Stdout, "out2".to_string()),
            (Stream::Stderr, "err2".to_string()),
        ]
    );
}

#[test]
fn many_lines_on_both_streams_all_arrive_in_order() {
    let spec = sh("i=0; while [ $i -lt 2000 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done");
    let (result, lines) = run_collect(&spec);
    result.unwrap().ensure_success().unwrap();
    let expected = |prefix: &str| {
        (0..2000)
            .map(|i| format!("{prefix}{i}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(text(&lines, Stream::Stdout), expected("out"));
    assert_eq!(text(&lines, Stream::Stderr), expected("err"));
}

#[test]
fn exit_codes_are_reported_and_only_zero_is_success() {
    for code in [0, 1, 4, 100] {
        let (result, _) = run_collect(&sh(&format!("echo failing >&2; exit {code}")));
        let finished = result.unwrap();
        assert_eq!(finished.code(), Some(code));
        match finished.ensure_success() {
            Ok(_) => assert_eq!(code, 0),
            Err(ProcessError::Failed {
                argv,
                status,
                stderr_tail,
            }) => {
                assert_eq!(status.code(), Some(code));
                assert_eq!(argv[0], "sh");
                assert_eq!(stderr_tail, ["failing"]);
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
}

#[test]
fn a_command_killed_by_a_signal_has_no_exit_code() {
    let (result, _) = run_collect(&sh("kill -9 $$"));
    let err = result.unwrap().ensure_success().unwrap_err();
    assert!(err.to_string().contains("killed by signal 9"), "{err}");
}

#[test]
fn bytes_that_are_not_utf8_survive() {
    let (result, lines) = run_collect(&sh(r"printf 'a\377\376b\033[31m\r\n'; printf '\300' >&2"));
    result.unwrap();
    assert_eq!(
        lines,
        [
            (Stream::Stdout, b"a\xff\xfeb\x1b[31m\r".to_vec(), false),
            (Stream::Stderr, b"\xc0".to_vec(), false),
        ]
    );
}

/// Peak resident memory of this process (each test runs in its own process under nextest).
fn peak_rss_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_10_mb_line_arrives_in_bounded_pieces_and_is_never_held_whole() {
    const LEN: usize = 10 * 1024 * 1024;
    let peak_before = peak_rss_kib();
    let spec = sh(&format!(
        "head -c {LEN} /dev/zero | tr '\\0' a; echo; echo after"
    ));
    let mut pieces = Vec::new();
    let never = AtomicBool::new(false);
    let finished = run_streaming(
        &spec,
        &mut |line: Line<'_>| {
            assert!(line.bytes.len() <= MAX_CHUNK);
            assert!(line.bytes.iter().all(|&b| b == b'a') || line.bytes == b"after");
            pieces.push((line.bytes.len(), line.continues));
        },
        &never,
    )
    .unwrap();
    assert!(finished.status.success());
    let (last, first) = pieces.split_last().unwrap();
    assert_eq!(*last, (5, false), "the next line arrives whole");
    let (end_of_long, long) = first.split_last().unwrap();
    assert!(long.iter().all(|&(_, continues)| continues));
    assert!(!end_of_long.1);
    let total: usize = first.iter().map(|(len, _)| len).sum();
    assert_eq!(total, LEN);
    assert!(first.len() >= LEN / MAX_CHUNK);
    let grown_kib = peak_rss_kib().saturating_sub(peak_before);
    assert!(
        grown_kib < 4 * 1024,
        "peak memory grew by {grown_kib} KiB while streaming a 10 MiB line"
    );
}

#[test]
fn capture_keeps_stdout_and_the_tail_of_stderr() {
    let never = AtomicBool::new(false);
    let spec = sh(r#"printf '{"a": [1, 2]}'; echo warning >&2"#);
    let (stdout, finished) = capture(&spec, &never).unwrap();
    assert_eq!(stdout, br#"{"a": [1, 2]}"#);
    assert_eq!(finished.stderr_tail, ["warning"]);
    assert_eq!(finished.stdout_captured, None);
}

#[test]
fn run_streaming_captures_stdout_when_asked_and_still_streams_it() {
    let (result, lines) =
        run_collect(&sh("echo /nix/store/abc-system; echo log >&2").capture_stdout());
    let finished = result.unwrap();
    assert_eq!(
        finished.stdout_captured.as_deref(),
        Some(&b"/nix/store/abc-system\n"[..])
    );
    assert_eq!(text(&lines, Stream::Stdout), ["/nix/store/abc-system"]);
}

#[test]
fn capture_refuses_more_than_its_limit() {
    let never = AtomicBool::new(false);
    let spec = sh(&format!("head -c {} /dev/zero", CAPTURE_LIMIT + 1));
    match capture(&spec, &never) {
        Err(ProcessError::OutputTooLarge { limit, .. }) => assert_eq!(limit, CAPTURE_LIMIT),
        other => panic!("expected OutputTooLarge, got {other:?}"),
    }
}

/// A script that starts `sleep 1000` in the background, prints its pid and waits for it.
const SLEEPER: &str = "sleep 1000 & echo $!; wait";

#[test]
fn cancel_kills_the_command_and_the_processes_it_started() {
    let cancel = AtomicBool::new(false);
    let mut grandchild = None;
    let result = run_streaming(
        &sh(SLEEPER),
        &mut |line: Line<'_>| {
            grandchild = Some(parse_pid(line.bytes));
            cancel.store(true, Ordering::Relaxed);
        },
        &cancel,
    );
    let grandchild = grandchild.expect("the script printed the pid of its sleep");
    let _cleanup = KillOnDrop(grandchild);
    assert!(
        matches!(result, Err(ProcessError::Cancelled { .. })),
        "{result:?}"
    );
    assert!(
        process_is_dead(grandchild),
        "sleep {grandchild} survived the cancel"
    );
}

#[test]
fn cancel_falls_back_to_sigkill_for_commands_that_ignore_sigterm() {
    let cancel = AtomicBool::new(false);
    let mut grandchild = None;
    let result = run_streaming(
        &sh(&format!("trap '' TERM; {SLEEPER}")),
        &mut |line: Line<'_>| {
            grandchild = Some(parse_pid(line.bytes));
            cancel.store(true, Ordering::Relaxed);
        },
        &cancel,
    );
    let grandchild = grandchild.unwrap();
    let _cleanup = KillOnDrop(grandchild);
    assert!(
        matches!(result, Err(ProcessError::Cancelled { .. })),
        "{result:?}"
    );
    assert!(process_is_dead(grandchild));
}

#[test]
fn cancel_set_from_another_thread_stops_a_silent_command() {
    let cancel = AtomicBool::new(false);
    let result = thread::scope(|scope| {
        scope.spawn(|| {
            thread::sleep(Duration::from_millis(300));
            cancel.store(true, Ordering::Relaxed);
        });
        run_streaming(&CommandSpec::new("sleep", ["1000"]), &mut |_| {}, &cancel)
    });
    assert!(
        matches!(result, Err(ProcessError::Cancelled { .. })),
        "{result:?}"
    );
}

#[test]
fn a_panic_in_the_callback_kills_the_process_group() {
    let never = AtomicBool::new(false);
    let mut grandchild = None;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        run_streaming(
            &sh(SLEEPER),
            &mut |line: Line<'_>| {
                grandchild = Some(parse_pid(line.bytes));
                panic!("the front end fell over");
            },
            &never,
        )
    }));
    assert!(outcome.is_err());
    let grandchild = grandchild.unwrap();
    let _cleanup = KillOnDrop(grandchild);
    assert!(
        process_is_dead(grandchild),
        "sleep {grandchild} outlived the run"
    );
}

#[test]
fn a_timeout_stops_a_command_even_after_it_closed_its_output() {
    let spec = sh("exec >&- 2>&-; sleep 1000").timeout(Duration::from_millis(500));
    let (result, _) = run_collect(&spec);
    assert!(
        matches!(result, Err(ProcessError::TimedOut { .. })),
        "{result:?}"
    );
}

#[test]
fn a_background_process_holding_the_pipes_does_not_keep_the_run_waiting() {
    let (result, lines) = run_collect(&sh("sleep 1000 & echo $!; exit 3"));
    let leftover = parse_pid(&lines[0].1);
    let _cleanup = KillOnDrop(leftover);
    assert_eq!(result.unwrap().code(), Some(3));
    assert!(
        !process_is_dead_now(leftover),
        "a finished run leaves other processes alone"
    );
}

fn process_is_dead_now(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err()
}

#[test]
fn a_missing_program_is_named_with_its_package() {
    let (result, _) =
        run_collect(&CommandSpec::new("lifeboat-no-such-tool", ["x"]).package("lifeboat-tools"));
    match result {
        Err(err @ ProcessError::NotFound { .. }) => {
            let shown = err.to_string();
            assert!(shown.contains("lifeboat-no-such-tool"), "{shown}");
            assert!(shown.contains("lifeboat-tools"), "{shown}");
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[test]
fn a_missing_working_directory_is_not_a_missing_program() {
    let spec = CommandSpec::new("true", Vec::<String>::new()).current_dir("/nonexistent/lifeboat");
    let (result, _) = run_collect(&spec);
    match result {
        Err(err @ ProcessError::Spawn { .. }) => {
            assert!(err.to_string().contains("/nonexistent/lifeboat"), "{err}");
        }
        other => panic!("expected Spawn, got {other:?}"),
    }
}

#[test]
fn environment_working_directory_and_empty_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let spec = sh("echo \"$LIFEBOAT_TEST\"; pwd; cat; echo stdin-closed")
        .env("LIFEBOAT_TEST", "from the spec")
        .current_dir(dir.path());
    let (result, lines) = run_collect(&spec);
    result.unwrap().ensure_success().unwrap();
    let cwd = fs::canonicalize(dir.path()).unwrap();
    assert_eq!(
        text(&lines, Stream::Stdout),
        ["from the spec", cwd.to_str().unwrap(), "stdin-closed"]
    );
}

#[test]
fn the_stderr_tail_keeps_the_last_lines_escaped() {
    let spec = sh(
        r"i=0; while [ $i -lt 30 ]; do echo err$i >&2; i=$((i+1)); done; printf 'bad \033[2J\n' >&2; exit 1",
    );
    let (result, _) = run_collect(&spec);
    let err = result.unwrap().ensure_success().unwrap_err();
    assert!(err.to_string().ends_with(": bad \\e[2J"), "{err}");
    let ProcessError::Failed { stderr_tail, .. } = err else {
        panic!("expected Failed");
    };
    assert_eq!(stderr_tail.len(), TAIL_LINES);
    assert_eq!(stderr_tail[0], "err11");
    assert_eq!(stderr_tail[TAIL_LINES - 1], "bad \\e[2J");
}
