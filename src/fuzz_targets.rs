//! The bodies of the fuzz targets in `fuzz/`, in the library so that the replay test
//! (`tests/fuzz_corpus.rs`) runs every seed and every crash ever found through the same checks
//! on a stable toolchain, without cargo-fuzz.
//!
//! Each target takes arbitrary bytes, must not panic, and asserts what its parser promises
//! beyond that; a broken promise panics, which the fuzzer reports as a crash.

use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use crate::config::{Config, ConfigError};
use crate::escape::escape_bytes;
use crate::exec::mountinfo::{MountEntry, parse_mountinfo};
use crate::exec::probe::{Contents, FsIdentity, identify};
use crate::nixlog::{self, Item, Moved, NixLog, Transfers};

/// A fuzz target: a name (the binary in `fuzz/` and the directory of its seeds) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, by name.
pub const TARGETS: &[Target] = &[
    ("config", config),
    ("nixlog", nixlog),
    ("mountinfo", mountinfo),
    ("probe", probe),
];

/// `bytes` shown through [`escape_bytes`] holds no control character.
fn assert_printable(bytes: &[u8]) {
    let shown = escape_bytes(bytes);
    assert!(!shown.chars().any(char::is_control), "{shown:?}");
}

/// The config loader: an error names the file and a line inside the text (and its key first
/// when it has one); an accepted config holds only what validation lets through.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let file = Path::new("/etc/lifeboat.toml");
    match Config::parse(&text, file) {
        Ok(config) => assert_valid_config(&config),
        Err(e) => assert_located(&e, &text, file),
    }
}

fn assert_located(e: &ConfigError, text: &str, file: &Path) {
    let lines = text.bytes().filter(|&b| b == b'\n').count() + 1;
    assert_eq!(e.file, file);
    let line = e.line.unwrap_or_else(|| panic!("no line in {e}"));
    assert!((1..=lines).contains(&line), "line {line} of {lines}: {e}");
    if let Some(key) = &e.key {
        assert!(e.message.starts_with(key.as_str()), "{e}");
    }
    assert!(
        e.to_string()
            .starts_with(&format!("{}:{line}: ", file.display())),
        "{e}"
    );
}

fn assert_valid_config(config: &Config) {
    let absolute = |path: &Path| assert!(path.is_absolute(), "{path:?}");
    for (i, volume) in config.volumes.iter().enumerate() {
        absolute(&volume.device);
        absolute(&volume.mount);
        assert!(!volume.fs_type.is_empty());
        for other in &config.volumes[..i] {
            assert_ne!(other.device, volume.device);
            assert_ne!(other.mount, volume.mount);
        }
    }
    for path in [
        &config.nix_store.target,
        &config.config_repo.path,
        &config.inspect.mountpoint,
        &config.discovery.by_id_dir,
        &config.state.dir,
    ] {
        absolute(path);
    }
    if let Some(source) = config.nix_store_source() {
        absolute(&source);
    }
    if let Some(key) = &config.config_repo.ssh_key {
        assert!(key.is_relative(), "{key:?}");
        assert!(!key.components().any(|c| c == Component::ParentDir));
    }
    if let Some(user) = &config.user {
        assert!(!user.is_empty() && !user.contains('/'), "{user:?}");
    }
    let commands = &config.commands;
    for argv in [
        &commands.nixos_rebuild,
        &commands.nixos_generate_config,
        &commands.nix,
        &commands.reboot,
    ] {
        assert!(!argv.is_empty() && argv.iter().all(|word| !word.is_empty()));
    }
    let pattern = &config.discovery.pattern;
    assert!(!pattern.is_empty() && !pattern.contains('/'));
    assert!(glob::Pattern::new(pattern).is_ok(), "{pattern:?}");
}

/// The Nix log parser, fed the input line by line: its quick path reads records as its
/// general parser does, plain lines come back untouched, messages without escape
/// sequences, counts never say more done than expected, transfers count at most one path
/// or build a line and never go back, and everything it yields is printable once escaped.
pub fn nixlog(data: &[u8]) {
    let mut log = NixLog::new();
    let mut texts = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        if let Some(Ok(json)) = line.strip_prefix(b"@nix ").map(std::str::from_utf8) {
            assert!(nixlog::quick_path_agrees(json), "{json:?}");
        }
        let before = log.transfers();
        let item = log.feed(line);
        assert_transfers_follow(before, log.transfers(), item.as_ref());
        match item {
            Some(Item::Plain(bytes)) => {
                assert_eq!(bytes, line);
                texts.push(String::from_utf8_lossy(&bytes).into_owned());
            }
            Some(Item::Message { text, coloured, .. }) => {
                assert!(!text.contains('\x1b'), "{text:?}");
                assert_eq!(text, nixlog::strip_ansi(&coloured));
                assert_printable(text.as_bytes());
                texts.push(coloured);
            }
            Some(Item::Progress(progress)) => {
                assert!(progress.built <= progress.total_builds, "{progress:?}");
                assert!(
                    progress.downloaded <= progress.total_downloads,
                    "{progress:?}"
                );
                assert_eq!(log.progress(), progress);
            }
            Some(Item::BuildStarted { drv }) => assert_printable(drv.as_bytes()),
            Some(Item::BuildLog { line, .. }) => assert_printable(line.as_bytes()),
            Some(Item::Phase { phase, .. }) => assert_printable(phase.as_bytes()),
            Some(Item::Copying { path, .. }) => assert_printable(path.as_bytes()),
            None => {}
        }
    }
    for error in nixlog::summarise_errors(texts.iter().map(String::as_str)) {
        assert_printable(error.to_string().as_bytes());
    }
    assert!(!nixlog::strip_ansi(&String::from_utf8_lossy(data)).contains('\x1b'));
    assert_printable(data);
}

/// One line moved the transfers from `before` to `after`, yielding `item`: nothing went back,
/// at most one path or build was counted, and not with bytes (those come with a path's
/// progress), and a path exactly when `item` says which one was copying.
fn assert_transfers_follow(before: Transfers, after: Transfers, item: Option<&Item<'_>>) {
    let moved = |before: Moved, after: Moved| {
        assert!(after.paths >= before.paths && after.bytes >= before.bytes);
        after.paths - before.paths
    };
    let local = moved(before.from_local, after.from_local);
    let downloaded = moved(before.downloaded, after.downloaded);
    assert!(after.built >= before.built);
    let counted = local + downloaded + (after.built - before.built);
    assert!(counted <= 1, "{before:?} -> {after:?}");
    if counted == 1 {
        let bytes = |t: Transfers| (t.from_local.bytes, t.downloaded.bytes);
        assert_eq!(bytes(before), bytes(after));
    }
    match item {
        Some(Item::Copying { from_local, .. }) => {
            assert_eq!(
                (local, downloaded),
                if *from_local { (1, 0) } else { (0, 1) }
            );
        }
        _ => assert_eq!(local + downloaded, 0, "{before:?} -> {after:?}"),
    }
}

/// The mount-table parser: at most one entry per line, every path printable once escaped, and
/// an entry written back in the kernel's format parses to itself.
pub fn mountinfo(data: &[u8]) {
    let entries = parse_mountinfo(data);
    assert!(entries.len() <= data.split(|&b| b == b'\n').count());
    for entry in &entries {
        assert_printable(entry.mount_point.as_os_str().as_bytes());
        assert_printable(entry.root.as_os_str().as_bytes());
        let line = mountinfo_line(entry);
        assert_eq!(
            parse_mountinfo(&line),
            std::slice::from_ref(entry),
            "{line:?}"
        );
    }
}

/// `entry` as the kernel writes it: spaces, tabs, newlines, backslashes (and commas, which
/// separate options) as `\ooo`; the optional fields are left out.
fn mountinfo_line(entry: &MountEntry) -> Vec<u8> {
    let escaped = |bytes: &[u8]| -> Vec<u8> {
        bytes
            .iter()
            .flat_map(|&b| match b {
                b' ' | b'\t' | b'\n' | b'\\' | b',' => format!("\\{b:03o}").into_bytes(),
                b => vec![b],
            })
            .collect()
    };
    let options = |options: &[String]| -> Vec<u8> {
        let escaped: Vec<Vec<u8>> = options.iter().map(|o| escaped(o.as_bytes())).collect();
        escaped.join(&b","[..])
    };
    let head = format!(
        "{} {} {}:{} ",
        entry.mount_id, entry.parent_id, entry.dev.0, entry.dev.1
    );
    [
        head.into_bytes(),
        escaped(entry.root.as_os_str().as_bytes()),
        b" ".to_vec(),
        escaped(entry.mount_point.as_os_str().as_bytes()),
        b" ".to_vec(),
        options(&entry.options),
        b" - ".to_vec(),
        escaped(entry.fs_type.as_bytes()),
        b" ".to_vec(),
        escaped(entry.source.as_bytes()),
        b" ".to_vec(),
        options(&entry.super_options),
    ]
    .concat()
}

/// The superblock probe on a device's first bytes: blank exactly when every byte is zero, and
/// an ext identity that is well formed.
pub fn probe(data: &[u8]) {
    let contents = identify(data);
    assert_eq!(
        contents == Contents::Blank,
        data.iter().all(|&b| b == 0),
        "{contents:?}"
    );
    match &contents {
        Contents::Filesystem(identity) => assert_ext_identity(identity),
        Contents::Other(name) => assert_printable(name.as_bytes()),
        Contents::Blank | Contents::Unknown => {}
    }
}

fn assert_ext_identity(id: &FsIdentity) {
    assert!(matches!(id.fs_type.as_str(), "ext2" | "ext3" | "ext4"));
    assert!(!(id.needs_recovery && id.fs_type == "ext2"), "{id:?}");
    assert!(id.used_bytes <= id.fs_size_bytes, "{id:?}");
    let uuid_ok = id.uuid.len() == 36
        && id.uuid.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        });
    assert!(uuid_ok, "{:?}", id.uuid);
    assert!(!id.label.contains('\0'), "{:?}", id.label);
    assert!(!id.label.ends_with(|c: char| c.is_ascii_whitespace()));
    assert_printable(id.label.as_bytes());
}
