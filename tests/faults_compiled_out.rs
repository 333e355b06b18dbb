//! lifeboat as built and shipped, without the `fault-injection` feature, ignores
//! `LIFEBOAT_FAULT`: a run told to panic before a step, or to wait before it for ever, runs
//! that step and ends as a run without the variable does. Compiled only without the
//! feature; `scripts/test.sh` runs it in a second, feature-less build.

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]
#![cfg(not(feature = "fault-injection"))]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nixos_lifeboat::sandbox::{VolumeContents, VolumeSpec};
use serde_json::Value;
use support::{
    TestSandbox, lifeboat_bin, mounts_under, require_private_mount_namespace, sha256_file,
};

/// Longer than an inspect of the seed volume takes; a run that honoured `pause:` would
/// never end.
const LIMIT: Duration = Duration::from_secs(120);

/// An `inspect --json` run with `fault` as `LIFEBOAT_FAULT`, or without the variable:
/// its exit code, the steps of its summary as (id, status), and its stderr.
fn inspect(config: &Path, fault: Option<&str>) -> (i32, Vec<(String, String)>, String) {
    let mut cmd = Command::new(lifeboat_bin());
    cmd.arg("-c")
        .arg(config)
        .args(["inspect", "--json"])
        .env_remove("LIFEBOAT_FAULT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(fault) = fault {
        cmd.env("LIFEBOAT_FAULT", fault);
    }
    let mut child = cmd.spawn().expect("run lifeboat");
    let started = Instant::now();
    while child.try_wait().expect("wait for lifeboat").is_none() {
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("LIFEBOAT_FAULT={fault:?}: the run did not end in {LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("collect lifeboat's output");
    let stdout = String::from_utf8(output.stdout).expect("stdout is UTF-8");
    let summary: Value = stdout
        .lines()
        .last()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .expect("some events");
    assert_eq!(summary["event"], "summary", "the summary comes last");
    let steps = summary["steps"]
        .as_array()
        .expect("the summary's steps")
        .iter()
        .map(|s| {
            let field = |name: &str| s[name].as_str().expect("a string").to_string();
            (field("id"), field("status"))
        })
        .collect();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().unwrap_or(-1), steps, stderr)
}

#[test]
fn lifeboat_fault_changes_nothing_without_the_feature() {
    require_private_mount_namespace();
    let sandbox = TestSandbox::new(&VolumeSpec {
        contents: VolumeContents::Seed,
        ..VolumeSpec::default()
    });
    let hash = sha256_file(&sandbox.image);
    let (code, plain, stderr) = inspect(&sandbox.config_path, None);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        plain
            .iter()
            .any(|(id, status)| id == "measure" && status == "passed"),
        "the plain run measures the volume: {plain:?}"
    );
    for fault in [
        "panic:measure",
        "pause:measure",
        "pause-in:scan",
        "pause-in:write:journal.json",
    ] {
        let (code, steps, stderr) = inspect(&sandbox.config_path, Some(fault));
        assert_eq!(code, 0, "LIFEBOAT_FAULT={fault}: {stderr}");
        assert_eq!(steps, plain, "LIFEBOAT_FAULT={fault}");
        assert!(
            !stderr.contains("LIFEBOAT_FAULT") && !stderr.contains("panicked"),
            "LIFEBOAT_FAULT={fault}: {stderr}"
        );
    }
    assert_eq!(sha256_file(&sandbox.image), hash, "the device changed");
    assert_eq!(mounts_under(&sandbox.dir), Vec::<PathBuf>::new());
}
