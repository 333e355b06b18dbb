//! `root-disk-audit`: everything on the root disk that dies with it, grouped (a service's
//! directory under `/var/lib`, `/root`, each entry of `/etc`, `/srv`, `/opt`, `/usr/local`,
//! any other top-level entry) with its size and file count, and what becomes of each group:
//! lost, disposable, carried by lifeboat, or accepted in `[host].accept`.
//!
//! The walk keeps to the root's filesystem (a mount point is never entered) and leaves out
//! what NixOS makes anew and what lives elsewhere: the store, the volumes, the kernel's and
//! the runtime's directories, `/boot`, the links NixOS puts in `/etc` and the files it writes
//! there itself, and `/etc/nixos` (the repository steps cover it). Every path is read under
//! `[host].root`, so tests point it at a fake root.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::config::Config;
use crate::escape::shown;
use crate::exec::scan::{self, ScanError, Walk};
use crate::flow::Outcome;
use crate::report::Unit;
use crate::steps::context::StepContext;
use crate::steps::host_identity::{self, on_machine};
use crate::steps::identify::human_bytes;
use crate::summary::{RootDiskClass, RootDiskGroup};

/// Top-level entries the walk leaves out: the kernel's and the runtime's file systems, the
/// bootloader's, the store (and its bind), and the trees read entry by entry below.
const LEFT_OUT_TOP: [&str; 10] = [
    "proc", "sys", "dev", "run", "tmp", "boot", "nix", "etc", "var", "usr",
];

/// Entries of `/etc` NixOS writes itself (its activation, `update-users-groups.pl`, the
/// shadow tools' backups, resolvconf), and `/etc/nixos`, which the repository steps cover.
/// `/etc/machine-id` is not one of them: systemd made it once; the next machine gets a new
/// one (disposable, carried only when listed).
const NIXOS_ETC: [&str; 22] = [
    "passwd",
    "passwd-",
    "group",
    "group-",
    "shadow",
    "shadow-",
    "gshadow",
    "gshadow-",
    "subuid",
    "subuid-",
    "subgid",
    "subgid-",
    ".clean",
    ".pwd.lock",
    ".updated",
    "NIXOS",
    "static",
    "nixos",
    "mtab",
    "resolv.conf",
    "sudoers",
    "adjtime",
];

/// Where a link NixOS makes points: the machine makes it anew at boot or activation.
const REGENERATED_TARGETS: [&str; 5] = [
    "/nix/store",
    "/etc/static",
    "/etc/zoneinfo",
    "/run",
    "/proc",
];

/// Paths whose loss costs nothing: logs, caches, and state systemd and friends make anew.
const DISPOSABLE: [&str; 18] = [
    "/var/log",
    "/var/cache",
    "/var/tmp",
    "/var/.updated",
    "/var/db/sudo",
    "/var/lib/systemd/coredump",
    "/var/lib/systemd/timers",
    "/var/lib/systemd/random-seed",
    "/var/lib/systemd/catalog",
    "/var/lib/systemd/backlight",
    "/var/lib/systemd/rfkill",
    "/var/lib/systemd/timesync",
    "/var/lib/systemd/pstore",
    "/var/lib/systemd/ephemeral-trees",
    "/var/lib/logrotate.status",
    "/var/lib/dhcpcd",
    "/var/lib/lastlog",
    "/swapfile",
];

/// The machine id: systemd makes a new one at the first boot, so it is disposable; carried
/// only when listed, since two live machines must not share it.
const MACHINE_ID: &str = "/etc/machine-id";

/// A directory holding more entries than this is never taken for one of the few links NixOS
/// puts in `/bin`, `/usr/bin` or `/lib64`.
const FEW_LINKS: usize = 16;

/// How many lost groups the step's message names (the largest); the output lists them all.
const NAMED_LOSSES: usize = 8;

/// What the audit found, and the step's outcome.
pub struct Audit {
    pub groups: Vec<RootDiskGroup>,
    pub outcome: Outcome,
}

/// Walk `[host].root` and class every group of files on it.
pub fn audit(cfg: &Config, ctx: &StepContext) -> Result<Audit, Outcome> {
    let root = &cfg.host.root;
    let root_dev = fs::metadata(root)
        .map_err(|e| Outcome::Failed(format!("cannot read [host].root {}: {e}", shown(root))))?
        .dev();
    let classes = Classes::new(cfg);
    let mut walker = Walker {
        root,
        root_dev,
        ctx,
        counted: AtomicU64::new(0),
        unreadable: Vec::new(),
    };
    let mut found: Vec<Found> = Vec::new();

    let mut top_skip: Vec<PathBuf> = LEFT_OUT_TOP.iter().map(PathBuf::from).collect();
    let elsewhere = cfg
        .volumes
        .iter()
        .map(|v| v.mount.as_path())
        .chain([cfg.nix_store.target.as_path()]);
    top_skip.extend(elsewhere.filter_map(|mount| {
        let rel = mount.strip_prefix("/").ok()?;
        (rel.components().count() == 1).then(|| rel.to_path_buf())
    }));
    found.extend(walker.scan(Path::new("/"), None, &top_skip)?);
    found.extend(walker.scan(Path::new("/var"), None, &[PathBuf::from("lib")])?);
    let var_lib = walker.scan(Path::new("/var/lib"), Some("systemd"), &[])?;
    let systemd = Path::new("/var/lib/systemd");
    let split = var_lib.iter().any(|f| f.path.parent() == Some(systemd));
    found.extend(
        var_lib
            .into_iter()
            .filter(|f| !(split && f.path == systemd)),
    );
    found.extend(walker.scan(Path::new("/usr"), None, &[])?);

    let mut groups: Vec<RootDiskGroup> = found
        .into_iter()
        .filter(|f| !regenerated(root, f))
        .map(|f| {
            let mut group = classes.group(&f.path, f.bytes, f.files);
            if group.class == RootDiskClass::Lost {
                name_ssh_files(root, &f.path, &mut group);
            }
            group
        })
        .collect();
    groups.extend(etc_groups(root, root_dev, &classes));
    groups.extend(shadow_group(cfg, &classes));
    groups.sort_by(|a, b| a.path.cmp(&b.path));

    for group in &groups {
        ctx.output(line(group));
    }
    for (path, why) in walker.unreadable.iter().take(20) {
        ctx.output(format!("could not read {}: {why}", shown(path)));
    }
    let outcome = outcome(&groups, walker.unreadable.len());
    Ok(Audit { groups, outcome })
}

/// A group as the scan measured it, before it is classed.
struct Found {
    /// As the machine sees it.
    path: PathBuf,
    bytes: u64,
    files: u64,
}

/// The walks of one audit: where the root is, and what they counted so far.
struct Walker<'a> {
    root: &'a Path,
    root_dev: u64,
    ctx: &'a StepContext<'a>,
    /// Inodes counted by the walks already done, for one progress count across them.
    counted: AtomicU64,
    unreadable: Vec<(PathBuf, String)>,
}

impl Walker<'_> {
    /// A row per entry of the machine's `dir` (and of its `expand`), on the root's filesystem
    /// only; nothing when `dir` is missing, a link, or on another filesystem.
    fn scan(
        &mut self,
        dir: &Path,
        expand: Option<&str>,
        skip: &[PathBuf],
    ) -> Result<Vec<Found>, Outcome> {
        let at = on_machine(self.root, dir);
        let on_root = fs::symlink_metadata(&at)
            .is_ok_and(|m| m.is_dir() && m.dev() == self.root_dev)
            || dir == Path::new("/");
        if !on_root {
            return Ok(Vec::new());
        }
        let walk = Walk {
            expand: expand.map(OsStr::new),
            one_filesystem: true,
            skip,
        };
        let before = self.counted.load(Relaxed);
        let ctx = self.ctx;
        let report = scan::scan_walk(
            &at,
            &walk,
            &|progress| ctx.progress(before + progress.files, None, Unit::Files),
            ctx.cancel,
        )
        .map_err(|e| match e {
            ScanError::Cancelled => Outcome::Interrupted,
            ScanError::Io { .. } => Outcome::Failed(format!("cannot walk the root disk: {e}")),
        })?;
        self.counted.fetch_add(report.top_level_files(), Relaxed);
        self.unreadable.extend(
            report
                .unreadable
                .into_iter()
                .map(|(path, errno)| (dir.join(path), errno.desc().to_string())),
        );
        Ok(report
            .rows
            .into_iter()
            .map(|row| Found {
                path: dir.join(row.path),
                bytes: row.bytes,
                files: row.files,
            })
            .collect())
    }
}

/// The files of a lost group's `.ssh` (`/root/.ssh/authorized_keys`, a key a service uses),
/// added to its note: what is lost there is access.
fn name_ssh_files(root: &Path, path: &Path, group: &mut RootDiskGroup) {
    let ssh = path.join(".ssh");
    let Ok(entries) = fs::read_dir(on_machine(root, &ssh)) else {
        return;
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| shown(&ssh.join(e.file_name())))
        .collect();
    if names.is_empty() {
        return;
    }
    names.sort();
    let more = names.len().saturating_sub(5);
    names.truncate(5);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    let ssh_note = format!("holds {}{more}", names.join(", "));
    group.note = Some(match group.note.take() {
        Some(note) => format!("{ssh_note}; {note}"),
        None => ssh_note,
    });
}

/// Is this entry nothing to report: on another filesystem, an empty directory, a link NixOS
/// makes, or a directory of nothing but links into the store (`/bin/sh`, `/usr/bin/env`)?
fn regenerated(root: &Path, found: &Found) -> bool {
    if found.files == 0 {
        return true;
    }
    let at = on_machine(root, &found.path);
    let Ok(meta) = fs::symlink_metadata(&at) else {
        return true;
    };
    if meta.file_type().is_symlink() {
        return link_regenerated(&at, &found.path);
    }
    if !meta.is_dir() {
        return false;
    }
    if found.files == 1 {
        return true;
    }
    let Ok(entries) = fs::read_dir(&at) else {
        return false;
    };
    let entries: Vec<_> = entries.take(FEW_LINKS + 1).collect();
    entries.len() <= FEW_LINKS
        && entries.into_iter().all(|entry| {
            entry.is_ok_and(|e| {
                e.file_type().is_ok_and(|t| t.is_symlink())
                    && link_regenerated(&e.path(), &found.path.join(e.file_name()))
            })
        })
}

/// Does the link at `at` (the machine's `path`) point where the machine makes things anew?
fn link_regenerated(at: &Path, path: &Path) -> bool {
    let Ok(target) = fs::read_link(at) else {
        return false;
    };
    let target = lexical(&path.parent().unwrap_or(Path::new("/")).join(target));
    REGENERATED_TARGETS.iter().any(|t| target.starts_with(t))
}

/// `path` with `.` and `..` resolved by name alone (the link is never followed).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => out.push(name),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// What becomes of each path: the lists of what lifeboat carries, what is accepted and what
/// is disposable.
struct Classes {
    carried: Vec<PathBuf>,
    accepted: Vec<PathBuf>,
    disposable: Vec<PathBuf>,
}

impl Classes {
    fn new(cfg: &Config) -> Classes {
        let carried = host_identity::carried(cfg)
            .into_iter()
            .map(|c| c.path)
            .collect();
        let mut disposable: Vec<PathBuf> = DISPOSABLE.iter().map(PathBuf::from).collect();
        disposable.push(cfg.state.dir.clone());
        disposable.push(PathBuf::from(MACHINE_ID));
        Classes {
            carried,
            accepted: cfg.host.accept.clone(),
            disposable,
        }
    }

    /// The class of the machine's `path`: what its nearest listed ancestor (or itself) says.
    fn class(&self, path: &Path) -> RootDiskClass {
        let covers = |list: &[PathBuf]| list.iter().any(|p| path.starts_with(p));
        // A host key's public half goes with it: sshd can make it from the private one.
        let public_of_carried = path.extension().is_some_and(|e| e == "pub")
            && covers_exactly(&self.carried, &path.with_extension(""));
        if covers(&self.carried) || public_of_carried {
            RootDiskClass::Carried
        } else if covers(&self.accepted) {
            RootDiskClass::Accepted
        } else if covers(&self.disposable) {
            RootDiskClass::Disposable
        } else {
            RootDiskClass::Lost
        }
    }

    /// The group of the machine's `path`, with a note naming what inside it is carried or
    /// accepted when the whole is not.
    fn group(&self, path: &Path, bytes: u64, files: u64) -> RootDiskGroup {
        let class = self.class(path);
        let mut note = None;
        if class == RootDiskClass::Lost {
            let inside: Vec<String> = self
                .carried
                .iter()
                .chain(&self.accepted)
                .filter(|p| p.starts_with(path) && p.as_path() != path)
                .map(|p| shown(p))
                .collect();
            if !inside.is_empty() {
                note = Some(format!(
                    "only {} inside it is carried or accepted",
                    inside.join(", ")
                ));
            }
        }
        if path == Path::new(MACHINE_ID) && class != RootDiskClass::Carried {
            note = Some(
                "the next machine gets a new one; carried only when listed in [host].carry: \
                 two live machines must not share it"
                    .into(),
            );
        }
        RootDiskGroup {
            bytes,
            class,
            files,
            note,
            path: shown(path),
        }
    }
}

fn covers_exactly(list: &[PathBuf], path: &Path) -> bool {
    list.iter().any(|p| p == path)
}

/// The entries of `/etc` that are neither NixOS's links nor files it writes: each with what
/// inside it is not NixOS's, classed by the worst of its files.
fn etc_groups(root: &Path, root_dev: u64, classes: &Classes) -> Vec<RootDiskGroup> {
    let etc = on_machine(root, Path::new("/etc"));
    let on_root = fs::symlink_metadata(&etc).is_ok_and(|m| m.is_dir() && m.dev() == root_dev);
    let Ok(entries) = fs::read_dir(&etc)
        .map_err(drop)
        .and_then(|e| on_root.then_some(e).ok_or(()))
    else {
        return Vec::new();
    };
    // Files NixOS copied rather than linked (a mode was asked for) are listed in `.clean`.
    let copied: BTreeSet<PathBuf> = fs::read_to_string(etc.join(".clean"))
        .unwrap_or_default()
        .lines()
        .map(|l| Path::new("/etc").join(l.trim()))
        .collect();
    let mut names: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    names.sort();
    let mut groups = Vec::new();
    for name in names {
        if NIXOS_ETC.iter().any(|n| OsStr::new(n) == name) {
            continue;
        }
        let path = Path::new("/etc").join(&name);
        let mut files = Vec::new();
        residue(root, root_dev, &path, &copied, &mut files);
        let Some(class) = files.iter().map(|(p, _)| classes.class(p)).min() else {
            continue;
        };
        let worst: Vec<&(PathBuf, u64)> = files
            .iter()
            .filter(|(p, _)| classes.class(p) == class)
            .collect();
        let bytes = worst.iter().map(|(_, b)| b).sum();
        let mut group = classes.group(&path, bytes, worst.len() as u64);
        if group.class != class {
            group.class = class;
            group.note = None;
        }
        let is_dir = fs::symlink_metadata(on_machine(root, &path)).is_ok_and(|m| m.is_dir());
        if is_dir && class == RootDiskClass::Lost {
            let named: Vec<String> = worst.iter().take(5).map(|(p, _)| shown(p)).collect();
            let more = worst.len().saturating_sub(named.len());
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            group.note = Some(format!("{}{more}", named.join(", ")));
        }
        groups.push(group);
    }
    groups
}

/// The files under the machine's `path` (itself when it is no directory) that NixOS does not
/// make: not its links, not the files it copied; each with its allocated bytes. Keeps to the
/// root's filesystem and never follows a link.
fn residue(
    root: &Path,
    root_dev: u64,
    path: &Path,
    copied: &BTreeSet<PathBuf>,
    out: &mut Vec<(PathBuf, u64)>,
) {
    let at = on_machine(root, path);
    let Ok(meta) = fs::symlink_metadata(&at) else {
        return;
    };
    if meta.dev() != root_dev || copied.contains(path) {
        return;
    }
    if meta.file_type().is_symlink() {
        if !link_regenerated(&at, path) {
            out.push((path.to_path_buf(), meta.blocks() * 512));
        }
        return;
    }
    if !meta.is_dir() {
        out.push((path.to_path_buf(), meta.blocks() * 512));
        return;
    }
    let Ok(entries) = fs::read_dir(&at) else {
        out.push((path.to_path_buf(), meta.blocks() * 512));
        return;
    };
    let mut names: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for name in names {
        residue(root, root_dev, &path.join(name), copied, out);
    }
}

/// `/etc/shadow` when it holds a password set with `passwd` while `users.mutableUsers` is on
/// (then that password lives nowhere else); `None` otherwise.
fn shadow_group(cfg: &Config, classes: &Classes) -> Option<RootDiskGroup> {
    let path = Path::new("/etc/shadow");
    let at = on_machine(&cfg.host.root, path);
    let text = fs::read_to_string(&at).ok()?;
    let users = shadow_only_passwords(&text);
    if users.is_empty() || !mutable_users(&cfg.config_repo.path) {
        return None;
    }
    let bytes = fs::symlink_metadata(&at).map_or(0, |m| m.blocks() * 512);
    let mut group = classes.group(path, bytes, 1);
    group.note = Some(format!(
        "the passwords of {} were set with passwd and live only here (users.mutableUsers is \
         on): declare them (hashedPasswordFile) or accept their loss",
        users.join(", ")
    ));
    Some(group)
}

/// The users of a shadow file with a real password hash (not empty, `!`, `*` or locked).
fn shadow_only_passwords(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let user = fields.next()?;
            let hash = fields.next()?;
            let real = !hash.is_empty() && !hash.starts_with('!') && !hash.starts_with('*');
            real.then(|| crate::escape::escape_text(user).into_owned())
        })
        .collect()
}

/// Is `users.mutableUsers` on? Evaluating the flake is too slow here: it is taken as on (the
/// NixOS default) unless a `.nix` file of the config repository sets it to `false` literally.
fn mutable_users(repo: &Path) -> bool {
    let mut pending = vec![repo.to_path_buf()];
    let mut read = 0;
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() && entry.file_name() != ".git" {
                pending.push(path);
            } else if kind.is_file() && path.extension().is_some_and(|e| e == "nix") {
                read += 1;
                let text = fs::read_to_string(&path).unwrap_or_default();
                let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
                if compact.contains("mutableUsers=false") {
                    return false;
                }
            }
            if read > 1000 {
                return true;
            }
        }
    }
    true
}

/// The line of output for one group.
fn line(group: &RootDiskGroup) -> String {
    let note = group
        .note
        .as_ref()
        .map(|n| format!(" — {n}"))
        .unwrap_or_default();
    format!(
        "{:<10} {} ({}, {} files){note}",
        group.class.as_str(),
        group.path,
        human_bytes(group.bytes),
        group.files
    )
}

/// Failed when a group is lost and neither carried nor accepted; passed otherwise.
fn outcome(groups: &[RootDiskGroup], unreadable: usize) -> Outcome {
    let of = |class: RootDiskClass| groups.iter().filter(move |g| g.class == class);
    let total = |class| of(class).map(|g| g.bytes).sum::<u64>();
    let lower = if unreadable > 0 {
        format!("; {unreadable} entries could not be read, so the figures are lower bounds")
    } else {
        String::new()
    };
    let mut lost: Vec<&RootDiskGroup> = of(RootDiskClass::Lost).collect();
    if lost.is_empty() {
        return Outcome::Passed(format!(
            "nothing on the root disk is lost: {} disposable ({}), {} carried ({}), {} \
             accepted ({}){lower}",
            of(RootDiskClass::Disposable).count(),
            human_bytes(total(RootDiskClass::Disposable)),
            of(RootDiskClass::Carried).count(),
            human_bytes(total(RootDiskClass::Carried)),
            of(RootDiskClass::Accepted).count(),
            human_bytes(total(RootDiskClass::Accepted)),
        ));
    }
    // The largest first; the output lists every one.
    lost.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.path.cmp(&b.path)));
    let count = lost.len();
    let mut named: Vec<String> = lost
        .iter()
        .take(NAMED_LOSSES)
        .map(|g| format!("{} ({}, {} files)", g.path, human_bytes(g.bytes), g.files))
        .collect();
    if count > NAMED_LOSSES {
        named.push(format!("and {} more listed above", count - NAMED_LOSSES));
    }
    Outcome::Failed(format!(
        "{count} path(s) die with the root disk: {}. Declare each on the volume in the NixOS config \
         (e.g. services.postgresql.dataDir under the volume, or a bind mount from it) — the \
         lasting fix — or list it in [host].carry for lifeboat to carry a copy, or in \
         [host].accept to accept its loss{lower}",
        named.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{PredestroyStep, StepId};
    use crate::steps::testing::with_context;

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn link(root: &Path, rel: &str, target: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, path).unwrap();
    }

    fn run(cfg: &Config) -> Audit {
        let step = StepId::Predestroy(PredestroyStep::RootDiskAudit);
        with_context(step, |ctx| audit(cfg, ctx)).unwrap_or_else(|o| panic!("{o:?}"))
    }

    #[test]
    fn every_group_is_classed_and_what_nixos_makes_is_left_out() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        write(r, "var/lib/postgresql/16/base/1", &"x".repeat(9000));
        write(r, "var/lib/systemd/timers/stamp-x", "");
        write(r, "var/lib/systemd/linger/qwe", "");
        write(r, "var/lib/nixos/uid-map", "{}");
        write(r, "var/log/messages", "log");
        write(r, "root/.ssh/authorized_keys", "ssh-ed25519 AAAA");
        write(r, "etc/motd.local", "hello");
        write(r, "etc/machine-id", "0123456789abcdef0123456789abcdef\n");
        write(r, "etc/passwd", "root:x:0:0::/root:/bin/sh\n");
        write(r, "etc/ssh/ssh_host_ed25519_key", "key");
        write(r, "etc/ssh/ssh_host_ed25519_key.pub", "pub");
        link(r, "etc/ssh/sshd_config", "/etc/static/ssh/sshd_config");
        link(r, "etc/static", "/nix/store/x-etc/etc");
        link(r, "etc/hosts", "/etc/static/hosts");
        write(r, "etc/nixos/configuration.nix", "{ }");
        write(r, "nix/store/x-etc/etc/hosts", "");
        write(r, "proc/1/status", "");
        write(r, "usr/local/bin/tool", "#!/bin/sh");
        link(r, "usr/bin/env", "/nix/store/x-coreutils/bin/env");
        link(r, "bin/sh", "/nix/store/x-bash/bin/sh");
        fs::create_dir_all(r.join("srv")).unwrap();
        write(r, "opt/app/data", "data");
        let mut cfg = Config::default();
        cfg.host.root = r.to_path_buf();
        cfg.host.accept = vec!["/opt/app".into()];
        let found = run(&cfg);
        let classes: Vec<(&str, &str)> = found
            .groups
            .iter()
            .map(|g| (g.path.as_str(), g.class.as_str()))
            .collect();
        assert_eq!(
            classes,
            [
                ("/etc/machine-id", "disposable"),
                ("/etc/motd.local", "lost"),
                ("/etc/ssh", "carried"),
                ("/opt", "lost"),
                ("/root", "lost"),
                ("/usr/local", "lost"),
                ("/var/lib/nixos", "carried"),
                ("/var/lib/postgresql", "lost"),
                ("/var/lib/systemd/linger", "lost"),
                ("/var/lib/systemd/timers", "disposable"),
                ("/var/log", "disposable"),
            ]
        );
        let group = |p: &str| found.groups.iter().find(|g| g.path == p).unwrap();
        assert_eq!(group("/var/lib/postgresql").files, 4);
        assert!(group("/var/lib/postgresql").bytes >= 9000);
        let note = |p: &str| group(p).note.clone().unwrap_or_default();
        assert!(
            note("/root").contains("/root/.ssh/authorized_keys"),
            "{}",
            note("/root")
        );
        assert!(note("/opt").contains("/opt/app"), "{}", note("/opt"));
        assert!(note("/etc/machine-id").contains("[host].carry"));
        let Outcome::Failed(why) = &found.outcome else {
            panic!("{:?}", found.outcome);
        };
        assert!(why.contains("/var/lib/postgresql ("), "{why}");
        assert!(
            why.contains("[host].carry") && why.contains("[host].accept"),
            "{why}"
        );

        // Carried and accepted, nothing is lost.
        cfg.host.carry = vec!["/var/lib/postgresql".into()];
        cfg.host.accept = [
            "/opt",
            "/root",
            "/usr/local",
            "/etc/machine-id",
            "/etc/motd.local",
            "/var/lib/systemd/linger",
        ]
        .map(PathBuf::from)
        .to_vec();
        let found = run(&cfg);
        assert!(
            matches!(found.outcome, Outcome::Passed(_)),
            "{:?}",
            found.outcome
        );
        assert_eq!(group_class(&found, "/var/lib/postgresql"), "carried");
        assert_eq!(group_class(&found, "/root"), "accepted");
    }

    fn group_class(found: &Audit, path: &str) -> &'static str {
        found
            .groups
            .iter()
            .find(|g| g.path == path)
            .unwrap()
            .class
            .as_str()
    }

    #[test]
    fn only_real_hashes_count_as_passwords() {
        let text = "root:!:1::::::\nqwe:$y$j9T$abc$def:19000:0:99999:7:::\n\
                    nobody:*:1::::::\nalice::1::::::\nbob:!$6$x$y:1::::::\n";
        assert_eq!(shadow_only_passwords(text), ["qwe"]);
    }

    #[test]
    fn links_into_the_store_or_static_are_regenerated_others_not() {
        let dir = tempfile::tempdir().unwrap();
        let link = |name: &str, target: &str| {
            std::os::unix::fs::symlink(target, dir.path().join(name)).unwrap();
            link_regenerated(&dir.path().join(name), &Path::new("/var").join(name))
        };
        assert!(link("run", "../run"));
        assert!(link("a", "/etc/static/a"));
        assert!(link("b", "/nix/store/abc-b/b"));
        assert!(!link("c", "/srv/c"));
        assert!(!link("d", "../srv/d"));
    }

    #[test]
    fn the_nearest_list_decides_and_a_carried_keys_public_half_goes_with_it() {
        let classes = Classes {
            carried: vec![
                "/etc/ssh/ssh_host_ed25519_key".into(),
                "/var/lib/nixos".into(),
            ],
            accepted: vec!["/srv".into()],
            disposable: vec!["/var/log".into()],
        };
        let class = |p: &str| classes.class(Path::new(p));
        assert_eq!(class("/var/lib/nixos/uid-map"), RootDiskClass::Carried);
        assert_eq!(
            class("/etc/ssh/ssh_host_ed25519_key.pub"),
            RootDiskClass::Carried
        );
        assert_eq!(class("/etc/ssh/ssh_host_rsa_key.pub"), RootDiskClass::Lost);
        assert_eq!(class("/srv/www"), RootDiskClass::Accepted);
        assert_eq!(class("/var/log/journal"), RootDiskClass::Disposable);
        assert_eq!(class("/var/lib/postgresql"), RootDiskClass::Lost);
        assert_eq!(class("/srvx"), RootDiskClass::Lost);
    }

    #[test]
    fn mutable_users_is_on_unless_the_repository_turns_it_off_literally() {
        let repo = tempfile::tempdir().unwrap();
        fs::create_dir_all(repo.path().join("hosts")).unwrap();
        fs::write(repo.path().join("flake.nix"), "{ }").unwrap();
        assert!(mutable_users(repo.path()));
        fs::write(
            repo.path().join("hosts/users.nix"),
            "{ users.mutableUsers =\n  false; }",
        )
        .unwrap();
        assert!(!mutable_users(repo.path()));
    }
}
