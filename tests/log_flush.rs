//! The `--json` printer and the transcript buffer a build's output lines, and write them
//! out whenever lifeboat is about to wait for more: a line the build printed before going
//! quiet is on stdout and on disk while the build still runs.
//!
//! The test runs itself again as the child (the `child` test, with an environment variable
//! set): recover's build step with a stand-in `nixos-rebuild` that prints a line and then
//! waits for a file the parent makes only after it has read the line's event.

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[path = "support/headless_build.rs"]
mod headless_build;

const CHILD_ENV: &str = "LIFEBOAT_TEST_FLUSH_CHILD";
const LINE: &str = "first line of the build";

#[test]
fn a_line_before_the_build_goes_quiet_is_out_while_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    let state = dir.path().join("state");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["child", "--exact", "--ignored", "--nocapture"])
        .env(CHILD_ENV, &gate)
        .env("LIFEBOAT_TEST_FLUSH_STATE", &state)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = false;
    let mut text = String::new();
    while !seen && stdout.read_line(&mut text).unwrap() > 0 {
        // The test harness may print its own words before the event on the same line.
        let json = text.find('{').map_or("", |at| text[at..].trim());
        seen = serde_json::from_str::<serde_json::Value>(json)
            .is_ok_and(|event| event["event"] == "output" && event["line"] == LINE);
        text.clear();
    }
    assert!(seen, "the line's event never came");
    // stdout and the transcript are written one after the other: give the second a moment,
    // while the build still waits on the gate.
    let on_disk = (0..300).any(|_| {
        transcript_has_line(&state) || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            false
        }
    });
    let running = child.try_wait().unwrap().is_none();
    fs::write(&gate, "").unwrap();
    let status = child.wait().unwrap();
    assert!(running, "the event came only once the build had ended");
    assert!(
        on_disk,
        "the transcript did not have the line while the build ran"
    );
    assert!(status.success());
}

fn transcript_has_line(state: &Path) -> bool {
    let Ok(entries) = fs::read_dir(state.join("transcripts")) else {
        return false;
    };
    entries
        .flatten()
        .any(|entry| fs::read_to_string(entry.path()).is_ok_and(|text| text.contains(LINE)))
}

/// The child's side, run only by the test above (ignored in an ordinary run).
#[test]
#[ignore = "the child of a_line_before_the_build_goes_quiet_is_out_while_it_runs"]
fn child() {
    let gate = std::env::var_os(CHILD_ENV)
        .map(PathBuf::from)
        .expect("the parent test names the gate");
    let state = PathBuf::from(std::env::var_os("LIFEBOAT_TEST_FLUSH_STATE").unwrap());
    // Prints the line, then waits (a minute at most) for the gate; then names a system.
    let script = format!(
        "echo '{LINE}' >&2; i=0; while [ ! -e \"$0\" ] && [ $i -lt 600 ]; do sleep 0.1; \
         i=$((i+1)); done; echo /nix/store/5f1cz2wyd0ajvrr5gfqz8ia8jc3pdd2w-nixos-system-flush"
    );
    let stand_in = vec!["sh".into(), "-c".into(), script, gate.display().to_string()];
    headless_build::build(&state, "flush", stand_in);
}
