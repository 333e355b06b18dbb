//! `exec::process` and `nixlog` together against a real `nix-build` (Debian's nix-bin, as
//! scripts/test.sh installs it), building tests/fixtures/nix/build-4-derivations.nix into a
//! store of its own in a temporary directory.

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use nixos_lifeboat::exec::process::{CommandSpec, Finished, Line, run_streaming};
use nixos_lifeboat::nixlog::{BuildProgress, Item, NixLog};
use nixos_lifeboat::report::Stream;

/// `nix-build` of `expression` into a fresh store under `store_dir`, with internal-json logs.
/// The build sandbox gets the host's /bin and libraries, so `/bin/sh` builders run.
fn nix_build(store_dir: &Path, expression: &Path) -> CommandSpec {
    let store = store_dir.join("store");
    CommandSpec::new(
        "nix-build",
        [
            "--store",
            store.to_str().unwrap(),
            "--no-out-link",
            "--log-format",
            "internal-json",
            "-v",
            "--option",
            "substituters",
            "",
            // Parallel test builds in stores of their own must not share build users:
            // Nix kills whatever runs as the user it picks.
            "--option",
            "build-users-group",
            "",
            "--option",
            "sandbox-paths",
            "/bin /lib /lib64 /usr",
            expression.to_str().unwrap(),
        ],
    )
    .package("nix")
    .capture_stdout()
}

fn run(spec: &CommandSpec) -> (Finished, Vec<Item<'static>>) {
    let mut log = NixLog::new();
    let mut items = Vec::new();
    let never = AtomicBool::new(false);
    let finished = run_streaming(
        spec,
        &mut |line: Line<'_>| {
            if line.stream == Stream::Stderr {
                items.extend(log.feed(line.bytes).map(Item::into_owned));
            }
        },
        &never,
    )
    .unwrap();
    (finished, items)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/nix")
        .join(name)
}

#[test]
fn a_real_build_streams_progress_to_four_of_four() {
    let dir = tempfile::tempdir().unwrap();
    let (finished, items) = run(&nix_build(dir.path(), &fixture("build-4-derivations.nix")));
    assert_eq!(finished.code(), Some(0), "{:?}", finished.stderr_tail);
    let stdout = String::from_utf8(finished.stdout_captured.unwrap()).unwrap();
    assert!(
        stdout.trim_end().ends_with("-nixos-system-devserver-25.11"),
        "{stdout}"
    );
    let last = items.iter().rev().find_map(|item| match item {
        Item::Progress(p) => Some(*p),
        _ => None,
    });
    assert_eq!(
        last,
        Some(BuildProgress {
            built: 4,
            total_builds: 4,
            ..BuildProgress::default()
        })
    );
    let started = items
        .iter()
        .filter(|item| matches!(item, Item::BuildStarted { .. }))
        .count();
    assert_eq!(started, 4);
    assert!(items.contains(&Item::BuildLog {
        drv: items.iter().find_map(|item| match item {
            Item::BuildStarted { drv } if drv.ends_with("-lib-a-1.0.drv") => Some(drv.clone()),
            _ => None,
        }),
        line: "lib-a-1.0 step 2".into(),
    }));
    assert!(!items.iter().any(|item| matches!(item, Item::Plain(_))));
}

#[test]
fn a_failing_build_exits_100_and_says_which_derivation_failed() {
    let dir = tempfile::tempdir().unwrap();
    let expression = dir.path().join("fails.nix");
    std::fs::write(
        &expression,
        r#"derivation {
  name = "lifeboat-fails";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [ "-c" "echo about to fail; exit 3" ];
}"#,
    )
    .unwrap();
    let (finished, items) = run(&nix_build(dir.path(), &expression));
    assert_eq!(finished.code(), Some(100));
    assert!(items.contains(&Item::BuildLog {
        drv: items.iter().find_map(|item| match item {
            Item::BuildStarted { drv } => Some(drv.clone()),
            _ => None,
        }),
        line: "about to fail".into(),
    }));
    let errors: Vec<&str> = items
        .iter()
        .filter_map(|item| match item {
            Item::Message { level: 0, text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        errors
            .iter()
            .any(|text| text.contains("-lifeboat-fails.drv' failed with exit code 3")),
        "{errors:?}"
    );
}
