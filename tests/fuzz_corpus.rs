//! Replays the fuzz seeds (`fuzz/seeds/<target>/`) and every crash reproducer kept after its
//! fix (`fuzz/regressions/<target>/`) through the fuzz target bodies, so that CI on a stable
//! toolchain checks the same invariants as `scripts/fuzz.sh` does on nightly.

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::fs;
use std::panic;
use std::path::{Path, PathBuf};

use nixos_lifeboat::fuzz_targets::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files directly in `dir`, sorted; none when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("{}: {e}", dir.display()),
    };
    files.retain(|path| path.is_file());
    files.sort();
    files
}

/// The files among `inputs` that `target` panics on.
fn failures(target: fn(&[u8]), inputs: &[PathBuf]) -> Vec<String> {
    inputs
        .iter()
        .filter(|path| {
            let data = fs::read(path).unwrap();
            panic::catch_unwind(|| target(&data)).is_err()
        })
        .map(|path| path.display().to_string())
        .collect()
}

#[test]
fn every_seed_and_regression_passes_its_target() {
    let mut failed = Vec::new();
    for &(name, target) in TARGETS {
        let seeds = files(&fuzz_dir().join("seeds").join(name));
        assert!(seeds.len() >= 3, "{name}: only {} seeds", seeds.len());
        let regressions = files(&fuzz_dir().join("regressions").join(name));
        failed.extend(failures(target, &[seeds, regressions].concat()));
    }
    assert!(failed.is_empty(), "failing inputs: {failed:#?}");
}

#[test]
fn every_fuzz_binary_is_a_known_target() {
    let binaries: BTreeSet<String> = files(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let known: BTreeSet<String> = TARGETS.iter().map(|(name, _)| name.to_string()).collect();
    assert_eq!(binaries, known);
}

#[test]
fn a_panicking_target_names_the_input() {
    fn broken(_: &[u8]) {
        panic!("a broken promise");
    }
    let seeds = files(&fuzz_dir().join("seeds").join("config"));
    let named: Vec<String> = seeds.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(failures(broken, &seeds), named);
}
