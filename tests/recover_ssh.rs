//! `lifeboat recover` cloning the config over SSH (tests/support/fresh_vps.rs, with the
//! remote served by a real sshd on 127.0.0.1): the client key and known_hosts live on the
//! volume, in the user's `~/.ssh`, and are read from the read-only inspection mount.
//! No ssh-agent is offered to lifeboat, so only the key on the volume can log in.

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

#[path = "support/fresh_vps.rs"]
mod fresh_vps;
mod support;

use std::fs;
use std::path::{Path, PathBuf};

use fresh_vps::{FreshVps, FreshVpsOptions, git, step};
use serde_json::Value;
use support::sshd::{Sshd, fingerprint, generate_key};

/// Where `[config_repo].ssh_key` points, relative to the volume root.
const KEY_ON_VOLUME: &str = "qwe/.ssh/id_lifeboat";
const KNOWN_HOSTS_ON_VOLUME: &str = "qwe/.ssh/known_hosts";
/// Run lifeboat without an agent, whatever the test runner's environment has.
const NO_AGENT: &str = "env -u SSH_AUTH_SOCK";

/// Every line and message the run reported for step `id`, in order.
fn said_in(events: &[Value], id: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["step"] == id)
        .filter_map(|e| e["line"].as_str().or(e["message"].as_str()))
        .map(str::to_string)
        .collect()
}

/// The scenario with its remote served over SSH, and the client key the server accepts.
struct SshVps {
    vps: FreshVps,
    sshd: Sshd,
    /// The authorized client key (outside the volume; the volume gets a copy).
    key: PathBuf,
    keys: tempfile::TempDir,
}

impl SshVps {
    fn new() -> SshVps {
        let vps = FreshVps::new(FreshVpsOptions::default());
        let sshd = Sshd::start();
        let keys = tempfile::tempdir().unwrap();
        let key = generate_key(keys.path(), "id_lifeboat");
        sshd.authorize(&key);
        SshVps {
            vps,
            sshd,
            key,
            keys,
        }
    }

    fn url(&self) -> String {
        self.sshd.url(&self.vps.remote)
    }

    /// Put private key `key` on the volume where the config's `ssh_key` points.
    fn put_key(&self, key: &Path) {
        let text = fs::read_to_string(key).unwrap();
        self.vps.write_volume_file(KEY_ON_VOLUME, &text, 0o600);
    }

    /// Add `line` to the known_hosts the old machine left on the volume.
    fn add_known_host(&self, line: &str) {
        let old = self
            .vps
            .volume_file(KNOWN_HOSTS_ON_VOLUME)
            .unwrap_or_default();
        let text = format!("{old}\n{line}");
        self.vps
            .write_volume_file(KNOWN_HOSTS_ON_VOLUME, &text, 0o644);
    }

    /// The scenario's config with the SSH URL and the key on the volume.
    fn config(&self) -> PathBuf {
        let config = self.vps.config();
        let text = fs::read_to_string(&config).unwrap();
        let file_url = format!("url = \"{}\"", self.vps.url());
        assert!(text.contains(&file_url), "{text}");
        let ssh = format!("url = \"{}\"\nssh_key = \"{KEY_ON_VOLUME}\"", self.url());
        fs::write(&config, text.replace(&file_url, &ssh)).unwrap();
        config
    }

    fn run(&self, args: &[&str]) -> (i32, Vec<Value>) {
        self.vps.run_env(&self.config(), NO_AGENT, args)
    }

    /// The run cloned the remote's head from the SSH URL into `/etc/nixos`.
    fn assert_cloned_over_ssh(&self, code: i32, events: &[Value]) {
        let vps = &self.vps;
        assert_eq!(
            code,
            0,
            "{events:#?}\n{}\nsshd:\n{}",
            vps.stderr(),
            self.sshd.log()
        );
        assert_eq!(git(&vps.etc_nixos, "rev-parse HEAD"), vps.remote_head());
        assert_eq!(git(&vps.etc_nixos, "remote get-url origin"), self.url());
        let (status, message) = step(events, "clone-config");
        assert_eq!(status, "passed", "{message}");
        assert!(!message.contains("mirror"), "{message}");
    }

    /// The run stopped at `clone-config` with exit `code` and cloned nothing, not even
    /// from the mirror. Returns the step's message.
    fn assert_not_cloned<'a>(&self, code: i32, events: &'a [Value], expected: i32) -> &'a str {
        assert_eq!(code, expected, "{events:#?}\n{}", self.vps.stderr());
        assert!(!self.vps.etc_nixos.exists(), "something was cloned");
        for line in said_in(events, "clone-config") {
            assert!(!line.contains("mirror"), "the mirror was offered: {line}");
        }
        assert_eq!(step(events, "hardware-config").0, "skipped");
        assert!(self.vps.calls().is_empty(), "{:?}", self.vps.calls());
        step(events, "clone-config").1
    }
}

#[test]
fn the_config_is_cloned_over_ssh_with_the_key_and_known_hosts_on_the_volume() {
    let s = SshVps::new();
    s.put_key(&s.key);
    s.add_known_host(&s.sshd.known_hosts_line());
    let (code, events) = s.run(&["--yes"]);
    s.assert_cloned_over_ssh(code, &events);
    // The server let in the key that lies on the volume (no agent was there to offer another).
    let log = s.sshd.log();
    let accepted = "Accepted publickey for root";
    assert!(
        log.contains(accepted) && log.contains(&fingerprint(&s.key)),
        "{log}"
    );
    // The key was read where it lies: no copy of it anywhere the run wrote (the clone, the
    // state, the transcript, the journal), nor in any event.
    let secret = key_body(&s.key);
    let copies = files_holding(&s.vps.dir, &secret, &s.vps.sandbox.image);
    assert!(copies.is_empty(), "the key was copied to {copies:?}");
    assert!(!format!("{events:?}").contains(&secret));
}

/// A line from the middle of private key `key`: text no other file holds by chance.
fn key_body(key: &Path) -> String {
    let text = fs::read_to_string(key).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len() / 2].to_string()
}

/// The files below `dir`, other than `except`, that hold `needle`.
fn files_holding(dir: &Path, needle: &str, except: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            found.extend(files_holding(&path, needle, except));
        } else if meta.is_file() && path != except {
            let bytes = fs::read(&path).unwrap();
            if bytes
                .windows(needle.len())
                .any(|window| window == needle.as_bytes())
            {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn an_unknown_host_key_is_asked_about_with_its_fingerprint_and_trusted_only_with_consent() {
    let s = SshVps::new();
    s.put_key(&s.key);
    let fingerprint = s.sshd.fingerprint();

    let (code, events) = s.run(&[]);
    s.assert_not_cloned(code, &events, 4);
    // The first (and only) question the step asks is whether to trust the host key.
    let asked: Vec<&str> = events
        .iter()
        .filter(|e| e["step"] == "clone-config" && e["status"] == "needs-confirmation")
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(!asked.is_empty(), "{events:#?}");
    for question in asked {
        assert!(
            question.contains(&fingerprint) && question.contains("not known"),
            "{question}"
        );
    }
    assert_eq!(step(&events, "clone-config").0, "skipped");

    let (code, events) = s.run(&["--yes"]);
    s.assert_cloned_over_ssh(code, &events);
}

#[test]
fn a_changed_host_key_is_refused_and_the_mirror_is_not_used() {
    let s = SshVps::new();
    s.put_key(&s.key);
    let impostor = generate_key(s.keys.path(), "impostor_host_key");
    s.add_known_host(&s.sshd.known_hosts_line_for(&impostor));
    let (code, events) = s.run(&["--yes"]);
    let message = s.assert_not_cloned(code, &events, 1);
    assert_eq!(step(&events, "clone-config").0, "failed");
    assert!(
        message.contains("CHANGED") && message.contains(&s.sshd.fingerprint()),
        "{message}"
    );
    // The file is named where the operator can reach it once the inspection mount is gone.
    assert!(
        message.contains(&format!("-f /mnt/{KNOWN_HOSTS_ON_VOLUME}")),
        "{message}"
    );
}

#[test]
fn a_key_the_remote_refuses_fails_clearly_and_the_mirror_is_not_used() {
    let s = SshVps::new();
    let stranger = generate_key(s.keys.path(), "stranger");
    s.put_key(&stranger);
    s.add_known_host(&s.sshd.known_hosts_line());
    let (code, events) = s.run(&["--yes"]);
    let message = s.assert_not_cloned(code, &events, 1);
    assert_eq!(step(&events, "clone-config").0, "failed");
    let key = s.vps.mnt.join(KEY_ON_VOLUME);
    assert!(
        message.contains("refused the credentials")
            && message.contains(&format!("SSH key {}", key.display())),
        "{message}"
    );
}
