//! Shared helpers for lifeboat's integration tests (`mod support;`).
//! Tests build their volumes with `nixos_lifeboat::sandbox`, the same code as `lifeboat demo`.

// Every test binary compiles this module for itself and uses only part of it.
#![allow(dead_code)]

pub mod root_disk;
pub mod sshd;

use std::fs;
use std::io::Read;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Command;

use nixos_lifeboat::sandbox::{self, Sandbox, VolumeSpec};
use sha2::{Digest, Sha256};

/// Tests that mount must not touch the host's mount table: panic unless this process has a
/// mount namespace of its own, that is, one that PID 1 or another ancestor does not share.
pub fn require_private_mount_namespace() {
    let ours = fs::read_link("/proc/self/ns/mnt").expect("read /proc/self/ns/mnt");
    assert!(
        ancestor_mount_namespaces().iter().any(|ns| *ns != ours),
        "run tests via scripts/test.sh: they mount volumes and must run in `unshare -m --propagation private`"
    );
}

/// The mount namespaces of PID 1 and of this process's ancestors, where they can be read
/// (a PID 1 that is not dumpable hides its own, so the ancestors are asked too).
fn ancestor_mount_namespaces() -> Vec<PathBuf> {
    let mut namespaces = Vec::new();
    let mut pid = parent_of("self");
    while let Some(current) = pid {
        namespaces.extend(fs::read_link(format!("/proc/{current}/ns/mnt")).ok());
        pid = parent_of(&current.to_string()).filter(|_| current > 1);
    }
    namespaces.extend(fs::read_link("/proc/1/ns/mnt").ok());
    namespaces
}

/// The parent PID from `/proc/<pid>/stat` (the field after the parenthesised command name).
fn parent_of(pid: &str) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(1)?.parse().ok()
}

/// A [`Sandbox`] in a fresh temporary directory, cleaned (unmounted, loop device detached,
/// removed) when dropped, even when the test panics.
pub struct TestSandbox {
    sandbox: Sandbox,
}

impl TestSandbox {
    /// Create a sandbox for `spec`; panics when that fails.
    pub fn new(spec: &VolumeSpec) -> TestSandbox {
        let dir = tempfile::Builder::new()
            .prefix("lifeboat-test-")
            .tempdir()
            .expect("create a temporary directory")
            .keep();
        let sandbox = Sandbox::create(&dir, spec)
            .unwrap_or_else(|e| panic!("create a sandbox in {}: {e}", dir.display()));
        TestSandbox { sandbox }
    }
}

impl Deref for TestSandbox {
    type Target = Sandbox;

    fn deref(&self) -> &Sandbox {
        &self.sandbox
    }
}

impl Drop for TestSandbox {
    fn drop(&mut self) {
        if let Err(e) = Sandbox::clean(&self.sandbox.dir) {
            // A second panic while unwinding would abort and hide the first one.
            if std::thread::panicking() {
                eprintln!("cleaning {}: {e}", self.sandbox.dir.display());
            } else {
                panic!("cleaning {}: {e}", self.sandbox.dir.display());
            }
        }
    }
}

/// `text` in single quotes for `sh`.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Run `script` with `sh -ec`; its trimmed stdout, or a panic with its stderr.
pub fn sh(script: &str) -> String {
    let out = Command::new("sh").arg("-ec").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `git` in `dir`, with an identity for commits.
pub fn git(dir: &Path, args: &str) -> String {
    sh(&format!(
        "git -C '{}' -c user.name=Test -c user.email=test@example.org {args}",
        dir.display()
    ))
}

/// A `lifeboat demo` sandbox directory, cleaned (loop device detached) however the test
/// ends; cleaning an already clean one is fine.
pub struct DemoDir(pub PathBuf);

impl Drop for DemoDir {
    fn drop(&mut self) {
        if let Err(e) = Sandbox::clean(&self.0) {
            eprintln!("cleaning {}: {e}", self.0.display());
        }
    }
}

/// Lower-case hex SHA-256 of a file's contents (or a block device's).
pub fn sha256_file(path: &Path) -> String {
    let mut file = fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 20];
    loop {
        let n = file
            .read(&mut buffer)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Mount points at or below `path` in this process's mount namespace.
pub fn mounts_under(path: &Path) -> Vec<PathBuf> {
    sandbox::mounts_under(path).expect("read /proc/self/mountinfo")
}

/// The `lifeboat` binary cargo built for these tests.
pub fn lifeboat_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lifeboat"))
}
