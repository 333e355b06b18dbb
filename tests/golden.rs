//! Golden `--json` event streams of every flow in the test scenarios, so a refactor can
//! prove it changed no byte a script reads. Each test runs the real binary in its scenario,
//! masks only what differs between runs and machines (see [`mask`]) and compares the stream
//! with `tests/golden/<name>.jsonl` line by line. `LIFEBOAT_GOLDEN_UPDATE=1` records them.

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

#[path = "support/fresh_vps.rs"]
mod fresh_vps;
#[path = "support/predestroy_host.rs"]
mod predestroy_host;
mod support;
#[path = "support/verified_machine.rs"]
mod verified_machine;

use std::fs;
use std::path::Path;
use std::process::Command;

use fresh_vps::{FreshVps, FreshVpsOptions};
use nixos_lifeboat::sandbox::{VolumeContents, VolumeSpec};
use predestroy_host::Host;
use support::{TestSandbox, lifeboat_bin, quote, require_private_mount_namespace, sh};
use verified_machine::VerifiedMachine;

/// Values only the scenario knows, each replaced by its placeholder before the patterns run.
type Literals = Vec<(String, String)>;

/// Times written by the scenarios themselves (the cards' `written_at`): fixed, so kept.
const FIXED_TIMES: &[&str] = &["2026-11-26T09:00:00Z"];

/// The filesystem UUID `mkfs` gave `device` (new on every run; empty for a blank one).
/// `-p` probes the device: blkid's cache may still hold the UUID of an earlier volume on
/// the same loop device.
fn fs_uuid(device: &Path) -> String {
    sh(&format!(
        "blkid -p -s UUID -o value {} || true",
        quote(&device.to_string_lossy())
    ))
}

/// What a scenario knows varies: literal values and the numbers of its loop devices.
#[derive(Default)]
struct Masks {
    literals: Literals,
    devices: Vec<(String, String)>,
}

impl Masks {
    /// What `sandbox` made fresh, under names ending in `suffix`: its directory, its
    /// volume's UUID, its loop device's number.
    fn sandbox(mut self, sandbox: &TestSandbox, suffix: &str) -> Masks {
        self.literals
            .push((sandbox.dir.display().to_string(), format!("<dir{suffix}>")));
        self.literals.push((
            fs_uuid(&sandbox.loop_device),
            format!("<volume{suffix}-uuid>"),
        ));
        self.devices.push(device_number(&sandbox.loop_device));
        self
    }

    fn with(mut self, literals: Literals) -> Masks {
        self.literals.extend(literals);
        self
    }
}

/// Every commit of `repos` (which carry their time, so change with every run), oldest first,
/// as `<commitN>`, and the 12-digit prefix messages show as `<commitN:12>`.
fn commit_literals(repos: &[&Path]) -> Literals {
    let mut commits: Vec<String> = Vec::new();
    for repo in repos.iter().filter(|r| r.exists()) {
        let listed = sh(&format!(
            "git -C {} rev-list --all --topo-order --reverse",
            quote(&repo.to_string_lossy())
        ));
        for id in listed.lines() {
            if !commits.iter().any(|c| c == id) {
                commits.push(id.to_string());
            }
        }
    }
    let full = commits
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), format!("<commit{}>", i + 1)));
    let short = commits
        .iter()
        .enumerate()
        .map(|(i, id)| (id[..12].to_string(), format!("<commit{}:12>", i + 1)));
    full.chain(short).collect()
}

/// The nonce of the persistence marker in `text` (random).
fn nonce_literal(text: &str) -> Literals {
    let table: toml::Table = text.parse().expect("a marker in TOML");
    let nonce = table["nonce"].as_str().expect("a nonce").to_string();
    vec![(nonce, "<nonce>".into())]
}

/// `major:minor` of a loop device, as a message names it (whichever one was free).
fn device_number(device: &Path) -> (String, String) {
    use std::os::unix::fs::MetadataExt;
    let rdev = fs::metadata(device).unwrap().rdev();
    let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
    (format!("{major}:{minor}"), format!("{major}:<N>"))
}

/// `text` with every match of `matcher` (given the line's bytes and an offset, the length
/// of a match starting there) replaced by `with`.
fn replace_matches(
    text: &str,
    with: &str,
    matcher: impl Fn(&[u8], usize) -> Option<usize>,
) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut i, mut copied) = (0, 0);
    while i < bytes.len() {
        match matcher(bytes, i).filter(|&n| n > 0 && text.is_char_boundary(i + n)) {
            Some(n) if text.is_char_boundary(i) => {
                out.push_str(&text[copied..i]);
                out.push_str(with);
                i += n;
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// Length of the run of bytes from `at` that satisfy `class`, at most `max`.
fn run_of(bytes: &[u8], at: usize, max: usize, class: impl Fn(u8) -> bool) -> usize {
    bytes[at.min(bytes.len())..]
        .iter()
        .take(max)
        .take_while(|&&b| class(b))
        .count()
}

/// Whether `bytes[at..]` is `shape`, where `D` is a digit and any other byte itself.
fn shaped(bytes: &[u8], at: usize, shape: &str) -> bool {
    let shape = shape.as_bytes();
    bytes.len() >= at + shape.len()
        && shape.iter().zip(&bytes[at..]).all(|(s, b)| match s {
            b'D' => b.is_ascii_digit(),
            s => s == b,
        })
}

/// Whether the byte before `at` cannot continue a word (so a match starts a token).
fn starts_token(bytes: &[u8], at: usize) -> bool {
    at == 0 || !bytes[at - 1].is_ascii_alphanumeric()
}

/// An RFC 3339 time: `2026-11-26T09:00:00`, optional fraction, `Z` or an offset; not
/// one of [`FIXED_TIMES`].
fn rfc3339(bytes: &[u8], at: usize) -> Option<usize> {
    if !starts_token(bytes, at) || !shaped(bytes, at, "DDDD-DD-DDTDD:DD:DD") {
        return None;
    }
    let mut n = 19;
    if bytes.get(at + n) == Some(&b'.') {
        let digits = run_of(bytes, at + n + 1, 9, |b| b.is_ascii_digit());
        if digits > 0 {
            n += 1 + digits;
        }
    }
    let n = match bytes.get(at + n) {
        Some(b'Z') => n + 1,
        Some(b'+' | b'-') if shaped(bytes, at + n + 1, "DD:DD") => n + 6,
        _ => return None,
    };
    let fixed = FIXED_TIMES
        .iter()
        .any(|t| bytes[at..].starts_with(t.as_bytes()) && t.len() == n);
    (!fixed).then_some(n)
}

/// A run id (`<UTC time>-<pid>`, session.rs), which names the transcript too.
fn run_id(bytes: &[u8], at: usize) -> Option<usize> {
    if !starts_token(bytes, at) || !shaped(bytes, at, "DDDDDDDDTDDDDDDZ-") {
        return None;
    }
    let pid = run_of(bytes, at + 17, 10, |b| b.is_ascii_digit());
    (pid > 0).then_some(17 + pid)
}

/// An SSH key's fingerprint, `SHA256:` and 43 characters of base64: the scenario's keys
/// are made afresh by `ssh-keygen`.
fn key_fingerprint(bytes: &[u8], at: usize) -> Option<usize> {
    const PREFIX: &[u8] = b"SHA256:";
    let base64 = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
    (bytes[at..].starts_with(PREFIX) && run_of(bytes, at + PREFIX.len(), 43, base64) == 43)
        .then_some(PREFIX.len() + 43)
}

/// The local time in the name of what recover moves aside (`<name>.before-lifeboat-<stamp>`).
fn aside_stamp(bytes: &[u8], at: usize) -> Option<usize> {
    const PREFIX: &str = "before-lifeboat-";
    (bytes[at..].starts_with(PREFIX.as_bytes())
        && shaped(bytes, at + PREFIX.len(), "DDDDDDDD-DDDDDD"))
    .then_some(PREFIX.len() + 15)
}

/// `"duration_ms":N`, wall time.
fn duration(bytes: &[u8], at: usize) -> Option<usize> {
    const KEY: &str = "\"duration_ms\":";
    if !bytes[at..].starts_with(KEY.as_bytes()) {
        return None;
    }
    let digits = run_of(bytes, at + KEY.len(), 20, |b| b.is_ascii_digit());
    (digits > 0).then_some(KEY.len() + digits)
}

/// `/dev/loopN`: whichever loop device was free.
fn loop_device(bytes: &[u8], at: usize) -> Option<usize> {
    const PREFIX: &str = "/dev/loop";
    if !bytes[at..].starts_with(PREFIX.as_bytes()) {
        return None;
    }
    let digits = run_of(bytes, at + PREFIX.len(), 6, |b| b.is_ascii_digit());
    (digits > 0).then_some(PREFIX.len() + digits)
}

/// The hash of a store path (`/store/` and 32 characters of Nix's base 32, then `-`): it
/// covers the scenario's directory, which the flake's paths name.
fn store_hash(bytes: &[u8], at: usize) -> Option<usize> {
    const PREFIX: &str = "/store/";
    const NIX32: &[u8] = b"0123456789abcdfghijklmnpqrsvwxyz";
    if !bytes[at..].starts_with(PREFIX.as_bytes()) {
        return None;
    }
    let n = run_of(bytes, at + PREFIX.len(), 32, |b| NIX32.contains(&b));
    (n == 32 && bytes.get(at + PREFIX.len() + 32) == Some(&b'-')).then_some(PREFIX.len() + 32)
}

/// The free space of the root disk's store in recover's room check (`/nix/store has 62.5
/// GiB free`): the test machine's disk.
fn free_space(bytes: &[u8], at: usize) -> Option<usize> {
    const PREFIX: &str = " has ";
    const UNITS: [&str; 5] = [
        " B free",
        " KiB free",
        " MiB free",
        " GiB free",
        " TiB free",
    ];
    if !bytes[at..].starts_with(PREFIX.as_bytes()) {
        return None;
    }
    let number = run_of(bytes, at + PREFIX.len(), 12, |b| {
        b.is_ascii_digit() || b == b'.'
    });
    let unit_at = at + PREFIX.len() + number;
    let unit = UNITS
        .iter()
        .find(|u| bytes[unit_at..].starts_with(u.as_bytes()))?;
    (number > 0).then_some(PREFIX.len() + number + unit.len())
}

/// `text` (standing alone: no digit or `:` on either side), for a device number.
fn token(text: &str) -> impl Fn(&[u8], usize) -> Option<usize> + '_ {
    move |bytes: &[u8], at: usize| {
        let apart = |b: Option<&u8>| !b.is_some_and(|b| b.is_ascii_digit() || *b == b':');
        (bytes[at..].starts_with(text.as_bytes())
            && apart(at.checked_sub(1).map(|i| &bytes[i]))
            && apart(bytes.get(at + text.len())))
        .then_some(text.len())
    }
}

/// `"KEY":N`, for the numbers of a progress event.
fn number_of(key: &'static str) -> impl Fn(&[u8], usize) -> Option<usize> {
    move |bytes: &[u8], at: usize| {
        let key_len = key.len() + 3;
        let quoted = bytes[at..].starts_with(b"\"")
            && bytes[at + 1..].starts_with(key.as_bytes())
            && bytes[at + 1 + key.len()..].starts_with(b"\":");
        let digits = run_of(bytes, at + key_len, 20, |b| b.is_ascii_digit());
        (quoted && digits > 0).then_some(key_len + digits)
    }
}

/// rsync's byte counts in predestroy's backup: the home holds the config mirror that this
/// run pushed to, whose commit objects compress to a byte more or less as their times vary.
const BACKUP_PROGRESS: &str = r#"{"event":"progress","flow":"predestroy","step":"backup","#;

/// One line of a stream with what varies between runs and machines replaced, every other
/// byte kept: the scenario's `literals` (directories, UUIDs, nonces, commits), then wall
/// times, clock times, run ids, the stamps of what recover moves aside, loop devices and
/// their numbers, store hashes (the flakes name the scenario's directory), free space, and
/// the backup's byte counts.
fn mask(line: &str, masks: &Masks) -> String {
    let mut text = line.to_string();
    for (value, placeholder) in &masks.literals {
        if !value.is_empty() {
            text = text.replace(value.as_str(), placeholder);
        }
    }
    let mut text = replace_matches(&text, "\"duration_ms\":0", duration);
    text = replace_matches(&text, "<time>", rfc3339);
    text = replace_matches(&text, "<run-id>", run_id);
    text = replace_matches(&text, "before-lifeboat-<stamp>", aside_stamp);
    text = replace_matches(&text, "/dev/loop<N>", loop_device);
    for (number, placeholder) in &masks.devices {
        text = replace_matches(&text, placeholder, token(number));
    }
    text = replace_matches(&text, "/store/<hash>", store_hash);
    text = replace_matches(&text, " has <free> free", free_space);
    text = replace_matches(&text, "SHA256:<fingerprint>", key_fingerprint);
    if text.starts_with(BACKUP_PROGRESS) {
        text = replace_matches(&text, "\"done\":0", number_of("done"));
        text = replace_matches(&text, "\"total\":0", number_of("total"));
    }
    text
}

/// The one line recover's stand-in `nixos-rebuild` prints on stdout: the built system
/// (masked).
const SYSTEM_ON_STDOUT: &str = r#""line":"/nix/store/<hash>-nixos-system-devserver-25.11"}"#;

/// A progress event of inspect's walk of the volume.
const MEASURE_PROGRESS: &str = r#"{"event":"progress","flow":"inspect","step":"measure","#;

/// A progress event of predestroy's walk of the root disk.
const AUDIT_PROGRESS: &str = r#"{"event":"progress","flow":"predestroy","step":"root-disk-audit","#;

/// `lines` with two orders that depend on timing made canonical; every other order is kept.
/// - The walk of the volume (and predestroy's of the root disk) reports its count every
///   50 ms and once at its end: only the last of a row of reports is kept, the one with the
///   final count.
/// - lifeboat reads a command's stdout and stderr from two pipes, so a stdout line written
///   right after a stderr line may be read first: the stand-in `nixos-rebuild`'s one
///   stdout line (the system; `boot` prints `Done. The new configuration is` on stderr
///   just before it) goes after the output and progress events that follow it in its step.
/// - `nix copy` copies paths that do not depend on each other in parallel: a row of copies
///   (each line with the progress events after it) is sorted by the path.
fn settle(mut lines: Vec<String>) -> Vec<String> {
    let kept: Vec<bool> = lines
        .iter()
        .zip(lines.iter().skip(1).map(Some).chain([None]))
        .map(|(line, next)| {
            [MEASURE_PROGRESS, AUDIT_PROGRESS]
                .iter()
                .all(|p| !(line.starts_with(p) && next.is_some_and(|n| n.starts_with(p))))
        })
        .collect();
    let mut kept = kept.into_iter();
    lines.retain(|_| kept.next().unwrap_or(true));
    for step in ["build", "boot"] {
        let same_step = [
            format!(r#"{{"event":"output","flow":"recover","step":"{step}","#),
            format!(r#"{{"event":"progress","flow":"recover","step":"{step}","#),
        ];
        let Some(at) = lines
            .iter()
            .position(|l| l.starts_with(&same_step[0]) && l.ends_with(SYSTEM_ON_STDOUT))
        else {
            continue;
        };
        let after = lines[at + 1..]
            .iter()
            .take_while(|l| same_step.iter().any(|p| l.starts_with(p.as_str())))
            .count();
        lines[at..=at + after].rotate_left(1);
    }
    sort_copies(lines)
}

/// `lines` with each row of copies sorted by the copied path (see [`settle`]).
fn sort_copies(lines: Vec<String>) -> Vec<String> {
    let is_copy =
        |l: &str| l.starts_with(r#"{"event":"output","#) && l.contains(r#""line":"copying "#);
    let is_progress = |l: &str| l.starts_with(r#"{"event":"progress","#);
    let mut out = Vec::with_capacity(lines.len());
    let mut row: Vec<Vec<String>> = Vec::new();
    for line in lines {
        if is_copy(&line) {
            row.push(vec![line]);
        } else if is_progress(&line)
            && let Some(copy) = row.last_mut()
        {
            copy.push(line);
        } else {
            row.sort();
            out.extend(row.drain(..).flatten());
            out.push(line);
        }
    }
    row.sort();
    out.extend(row.into_iter().flatten());
    out
}

/// Mask `stdout` and compare it with `tests/golden/<name>.jsonl` (or write that file when
/// `LIFEBOAT_GOLDEN_UPDATE` is set); the masked stream is also left in the target dir.
fn check(name: &str, stdout: &str, masks: &Masks) {
    let masked = settle(stdout.lines().map(|l| mask(l, masks)).collect());
    assert!(!masked.is_empty(), "{name}: no events on stdout");
    for line in &masked {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("{name}: not JSON after masking ({e}): {line}"));
    }
    let text: String = masked.iter().map(|l| format!("{l}\n")).collect();
    let actual = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("golden")
        .join(format!("{name}.jsonl"));
    fs::create_dir_all(actual.parent().unwrap()).unwrap();
    fs::write(&actual, &text).unwrap();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.jsonl"));
    if std::env::var_os("LIFEBOAT_GOLDEN_UPDATE").is_some_and(|v| !v.is_empty() && v != "0") {
        fs::create_dir_all(golden.parent().unwrap()).unwrap();
        fs::write(&golden, &text).unwrap();
        return;
    }
    let expected = fs::read_to_string(&golden).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (record it with LIFEBOAT_GOLDEN_UPDATE=1)",
            golden.display()
        )
    });
    let expected: Vec<&str> = expected.lines().collect();
    for (i, (want, got)) in expected.iter().zip(&masked).enumerate() {
        assert!(
            want == got,
            "{name}: line {} differs from {}\n--- golden\n{want}\n+++ actual\n{got}\n(whole actual stream: {})",
            i + 1,
            golden.display(),
            actual.display()
        );
    }
    assert!(
        expected.len() == masked.len(),
        "{name}: {} lines in {}, {} now; first extra line:\n{}\n(whole actual stream: {})",
        expected.len(),
        golden.display(),
        masked.len(),
        expected
            .get(masked.len())
            .copied()
            .or(masked.get(expected.len()).map(String::as_str))
            .unwrap_or_default(),
        actual.display()
    );
}

/// The exit code, with stderr for the message when it is not `want`.
fn expect_code(name: &str, code: i32, want: i32, stderr: &str) {
    assert_eq!(code, want, "{name}: exit code; stderr:\n{stderr}");
}

// inspect: a practice volume on a loop device, the binary run in the test's namespace.

/// `lifeboat -c <config> inspect --json ARGS` on a fresh practice volume of `contents`.
fn inspect(name: &str, contents: VolumeContents, args: &[&str], want: i32) {
    require_private_mount_namespace();
    let sandbox = TestSandbox::new(&VolumeSpec {
        contents,
        ..VolumeSpec::default()
    });
    let out = Command::new(lifeboat_bin())
        .arg("-c")
        .arg(&sandbox.config_path)
        .arg("inspect")
        .args(args)
        .arg("--json")
        .env_remove("LIFEBOAT_FAULT")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    expect_code(name, out.status.code().unwrap_or(-1), want, &stderr);
    let masks = Masks::default().sandbox(&sandbox, "");
    check(name, &String::from_utf8(out.stdout).unwrap(), &masks);
}

#[test]
fn inspect_found_by_discovery() {
    inspect("inspect", VolumeContents::Seed, &[], 0);
}

#[test]
fn inspect_dry_run() {
    inspect("inspect-dry-run", VolumeContents::Seed, &["--dry-run"], 0);
}

#[test]
fn inspect_refuses_a_blank_device() {
    inspect("inspect-blank-refused", VolumeContents::Blank, &[], 3);
}

// predestroy: the machine about to be destroyed (tests/support/predestroy_host.rs).

/// `lifeboat predestroy --json ARGS` on the host, after `prepare`.
fn predestroy(name: &str, prepare: impl Fn(&Host), args: &str, want: i32) {
    let host = Host::new(true);
    prepare(&host);
    let (code, _) = host.predestroy(true, args);
    let dir = &host.sandbox.dir;
    let stderr = fs::read_to_string(dir.join("events.jsonl.err")).unwrap_or_default();
    expect_code(name, code, want, &stderr);
    let stdout = fs::read_to_string(dir.join("events.jsonl")).unwrap();
    let mut masks = Masks::default()
        .sandbox(&host.sandbox, "")
        .with(commit_literals(&[&host.repo, &host.remote]));
    if let Some(marker) = host.volume_file("qwe/.lifeboat/persistence-marker") {
        masks = masks.with(nonce_literal(&marker));
    }
    check(name, &stdout, &masks);
}

#[test]
fn predestroy_ready_with_yes() {
    predestroy(
        "predestroy-ready-yes",
        Host::make_dirty_and_unpushed,
        "--yes",
        0,
    );
}

#[test]
fn predestroy_dirty_without_yes_is_not_ready() {
    predestroy(
        "predestroy-dirty-not-ready",
        Host::make_dirty_and_unpushed,
        "",
        4,
    );
}

#[test]
fn predestroy_clean_without_yes_is_not_ready() {
    predestroy("predestroy-clean-not-ready", |_| {}, "", 4);
}

// recover: a fresh VPS with the old volume attached (tests/support/fresh_vps.rs).

/// The length of the scenarios' directories when the streams were recorded
/// (`/tmp/lifeboat-test-XXXXXX`).
const RECORDED_DIR_LEN: usize = 25;

/// `lifeboat recover --json ARGS` on a fresh VPS made with `options`.
fn recover(name: &str, options: FreshVpsOptions, args: &[&str], want: i32) {
    let vps = FreshVps::new(options);
    // The store paths name the directory, so their sizes, which the streams show, follow
    // its length.
    assert_eq!(
        vps.dir.as_os_str().len(),
        RECORDED_DIR_LEN,
        "{name}: {} is not as long as the recorded /tmp/lifeboat-test-XXXXXX: store sizes \
         would differ (is TMPDIR set?)",
        vps.dir.display()
    );
    let (code, _) = vps.run(args);
    expect_code(name, code, want, &vps.stderr());
    let stdout = fs::read_to_string(vps.dir.join("events.jsonl")).unwrap();
    let mut masks = Masks::default();
    if let Some(store) = &vps.store_sandbox {
        masks = masks.sandbox(store, "-store");
    }
    let masks = masks
        .sandbox(&vps.sandbox, "")
        .with(vec![(vps.marker_nonce.clone(), "<nonce>".into())])
        .with(commit_literals(&[&vps.remote, &vps.etc_nixos]));
    check(name, &stdout, &masks);
}

/// The fresh install's `/etc/nixos`, which recover moves aside.
const INSTALLER_CONFIG: &str = "{ imports = [ ./hardware-configuration.nix ]; }\n";

#[test]
fn recover_full_with_yes() {
    recover(
        "recover-yes",
        FreshVpsOptions {
            existing_etc_nixos: Some(INSTALLER_CONFIG),
            ..FreshVpsOptions::default()
        },
        &["--yes"],
        0,
    );
}

#[test]
fn recover_full_with_the_store_on_a_volume_of_its_own() {
    recover(
        "recover-yes-store-volume",
        FreshVpsOptions {
            existing_etc_nixos: Some(INSTALLER_CONFIG),
            store_volume: true,
            ..FreshVpsOptions::default()
        },
        &["--yes"],
        0,
    );
}

#[test]
fn recover_without_yes_stops_at_the_first_confirmation() {
    recover("recover-no-yes", FreshVpsOptions::default(), &[], 4);
}

#[test]
fn recover_dry_run() {
    recover(
        "recover-dry-run",
        FreshVpsOptions::default(),
        &["--dry-run", "--yes"],
        0,
    );
}

#[test]
fn recover_refused_by_boot_safety() {
    recover(
        "recover-boot-safety-refused",
        FreshVpsOptions {
            needed_for_boot: false,
            ..FreshVpsOptions::default()
        },
        &["--yes"],
        3,
    );
}

// verify: the machine after the reboot (tests/support/verified_machine.rs).

/// `lifeboat verify --json` with the user at `passwd_uid`, after `setup` (shell) mounted
/// what the case needs.
fn verify(
    name: &str,
    prepare: impl Fn(&VerifiedMachine),
    passwd_uid: u32,
    setup: impl Fn(&VerifiedMachine) -> String,
    want: i32,
) {
    let machine = VerifiedMachine::new(None, "/unused");
    prepare(&machine);
    let config = machine.full_config();
    let run = format!(
        "exec {} -c {} verify --json",
        quote(&lifeboat_bin().to_string_lossy()),
        quote(&config.to_string_lossy())
    );
    let out = machine
        .namespace_command(passwd_uid, &setup(&machine), &run)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    expect_code(name, out.status.code().unwrap_or(-1), want, &stderr);
    // The scenario leaves what it copied onto the volume in `payload`.
    let marker = machine
        .sandbox
        .dir
        .join("payload/qwe/.lifeboat/persistence-marker");
    let masks = Masks::default()
        .sandbox(&machine.sandbox, "")
        .with(nonce_literal(&fs::read_to_string(marker).unwrap()));
    check(name, &String::from_utf8(out.stdout).unwrap(), &masks);
}

/// The volume mounted at the home and its store bound, as NixOS would.
fn mounted(machine: &VerifiedMachine) -> String {
    machine.mounts(&machine.home, &machine.nix)
}

#[test]
fn verify_everything_came_back() {
    verify("verify-passed", |_| {}, 1000, mounted, 0);
}

#[test]
fn verify_unbound_nix_and_changed_uid_fail() {
    let only_home = |m: &VerifiedMachine| {
        format!(
            "mount -o ro,noload {} {}",
            m.sandbox.loop_device.display(),
            m.home.display()
        )
    };
    verify("verify-failed", |_| {}, 1001, only_home, 1);
}

#[test]
fn verify_stops_before_deleting_a_gone_machines_generation() {
    verify(
        "verify-gone-generation-unconfirmed",
        VerifiedMachine::add_gone_generation,
        1000,
        mounted,
        4,
    );
}
