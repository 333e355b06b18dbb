//! What the home screen says about this machine: hostname, OS, the volumes discovery
//! finds and where they are mounted, `/etc/nixos`, a half-finished run. [`gather`] reads
//! them once (the only I/O here); everything is escaped as it is read.

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::config::Config;
use crate::escape::{escape_bytes, shown};
use crate::exec::by_id;
use crate::exec::mountinfo::{self, MountEntry};
use crate::journal::Journal;
use crate::steps::predestroy::readiness;

/// A volume discovery found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeFact {
    pub link: String,
    pub device: String,
    /// Where the device is mounted now (empty: not mounted).
    pub mounted_at: Vec<String>,
}

/// How `/etc/nixos` stands: recover moves it aside, so the operator should know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtcNixos {
    Missing,
    Directory,
    GitRepo,
    Unreadable(String),
}

/// The journal's latest run, when it did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    pub flow: String,
    pub run_id: String,
    /// The last step it recorded.
    pub last_step: Option<String>,
}

/// The journal as the home screen reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalFact {
    /// No run recorded, or the last one finished.
    Clean,
    Unfinished(Unfinished),
    Unreadable(String),
}

/// Everything the home screen shows about the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeFacts {
    pub hostname: String,
    pub os: String,
    /// The volumes found, or why discovery could not look.
    pub volumes: Result<Vec<VolumeFact>, String>,
    /// Where discovery looked (`/dev/disk/by-id/scsi-0HC_Volume_*`).
    pub discovery: String,
    pub etc_nixos: EtcNixos,
    pub journal: JournalFact,
    /// The last `predestroy --refresh`, when there was one.
    pub readiness: Option<ReadinessFact>,
    /// Memory available and in all, in bytes, when it can be read.
    pub memory: Option<(u64, u64)>,
    /// Seconds since the boot.
    pub uptime: u64,
    /// The room on the root filesystem and on each mounted volume.
    pub disks: Vec<DiskFact>,
}

/// The room on one mounted filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskFact {
    /// The mount point, escaped.
    pub mount: String,
    pub available: u64,
    pub total: u64,
}

/// The last refresh's verdict, described for the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadinessFact {
    pub ready: bool,
    /// "5 h ago — ready", or the blockers.
    pub line: String,
}

/// Read the facts of this machine under `cfg`.
pub fn gather(cfg: &Config) -> HomeFacts {
    let os = fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| pretty_name(&text))
        .unwrap_or_else(|| "unknown".into());
    let volumes = volumes(cfg);
    HomeFacts {
        hostname: hostname(),
        os,
        disks: disks(volumes.as_deref().unwrap_or_default()),
        volumes,
        discovery: shown(&cfg.discovery.by_id_dir.join(&cfg.discovery.pattern)),
        etc_nixos: etc_nixos(Path::new("/etc/nixos")),
        journal: journal_fact(Journal::load(&cfg.state.dir)),
        memory: crate::exec::host::memory(),
        uptime: crate::exec::host::uptime(),
        readiness: readiness::load(&cfg.state.dir).map(|r| ReadinessFact {
            ready: r.ready,
            line: readiness::describe(&r, jiff::Timestamp::now().as_second()),
        }),
    }
}

/// This machine's name, escaped (`unknown` when it cannot be read).
pub fn hostname() -> String {
    fs::read("/proc/sys/kernel/hostname")
        .map(|b| escape_bytes(b.trim_ascii()))
        .unwrap_or_else(|_| "unknown".into())
}

/// `PRETTY_NAME` (else `NAME`) of an os-release file, unquoted and escaped.
pub fn pretty_name(text: &str) -> Option<String> {
    let value = |key: &str| {
        text.lines().find_map(|line| {
            let rest = line.strip_prefix(key)?.strip_prefix('=')?;
            Some(rest.trim().trim_matches('"').trim_matches('\'').to_string())
        })
    };
    value("PRETTY_NAME")
        .or_else(|| value("NAME"))
        .map(|v| escape_bytes(v.as_bytes()))
}

/// The room on `/` and where each found volume is mounted, each mount point once (one
/// whose name had to be escaped is not looked up).
fn disks(volumes: &[VolumeFact]) -> Vec<DiskFact> {
    let mut mounts = vec![Path::new("/")];
    for mount in volumes.iter().flat_map(|v| &v.mounted_at) {
        if !mounts.contains(&Path::new(mount)) {
            mounts.push(Path::new(mount));
        }
    }
    mounts
        .into_iter()
        .filter_map(|mount| {
            let space = crate::exec::host::space(mount).ok()?;
            Some(DiskFact {
                mount: shown(mount),
                available: space.available,
                total: space.total,
            })
        })
        .collect()
}

fn volumes(cfg: &Config) -> Result<Vec<VolumeFact>, String> {
    let found = by_id::discover(&cfg.discovery.by_id_dir, &|name| {
        cfg.discovery_matches(name)
    })
    .map_err(|e| format!("{}: {e}", shown(&cfg.discovery.by_id_dir)))?;
    let mounts = mountinfo::read_mountinfo().unwrap_or_default();
    Ok(found
        .iter()
        .map(|c| VolumeFact {
            link: shown(&c.link),
            device: shown(&c.resolved),
            mounted_at: mounted_at(&c.resolved, &mounts),
        })
        .collect())
}

/// Mount points of the filesystem on block device `device` (matched by device number).
fn mounted_at(device: &Path, mounts: &[MountEntry]) -> Vec<String> {
    let Some(dev) = fs::metadata(device)
        .ok()
        .filter(|m| m.file_type().is_block_device())
        .map(|m| {
            (
                nix::sys::stat::major(m.rdev()) as u32,
                nix::sys::stat::minor(m.rdev()) as u32,
            )
        })
    else {
        return Vec::new();
    };
    mounts
        .iter()
        .filter(|m| m.dev == dev)
        .map(|m| shown(&m.mount_point))
        .collect()
}

fn etc_nixos(path: &Path) -> EtcNixos {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => EtcNixos::Missing,
        Err(e) => EtcNixos::Unreadable(e.to_string()),
        Ok(_) if path.join(".git").exists() => EtcNixos::GitRepo,
        Ok(_) => EtcNixos::Directory,
    }
}

fn journal_fact(loaded: Result<Option<Journal>, crate::journal::JournalError>) -> JournalFact {
    match loaded {
        Err(e) => JournalFact::Unreadable(e.to_string()),
        Ok(Some(journal)) if journal.finished.is_none() => JournalFact::Unfinished(Unfinished {
            flow: escape_bytes(journal.flow.as_bytes()),
            run_id: escape_bytes(journal.run_id.as_bytes()),
            last_step: journal.steps.last().map(|s| escape_bytes(s.id.as_bytes())),
        }),
        Ok(_) => JournalFact::Clean,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_pretty_name_wins_and_is_unquoted() {
        let text = "NAME=NixOS\nPRETTY_NAME=\"NixOS 25.05 (Warbler)\"\nID=nixos\n";
        assert_eq!(pretty_name(text).as_deref(), Some("NixOS 25.05 (Warbler)"));
        assert_eq!(pretty_name("NAME='Debian'\n").as_deref(), Some("Debian"));
        assert_eq!(pretty_name("ID=x\n"), None);
    }

    #[test]
    fn control_characters_in_os_release_are_escaped() {
        assert_eq!(
            pretty_name("PRETTY_NAME=\"a\x1b[2Jb\"").as_deref(),
            Some("a\\e[2Jb")
        );
    }

    #[test]
    fn an_unfinished_journal_is_reported_with_its_last_step() {
        let mut journal = Journal::new("inspect", "run-1".into(), None);
        journal.record_step("measure", crate::report::StepStatus::Running, "");
        let JournalFact::Unfinished(run) = journal_fact(Ok(Some(journal.clone()))) else {
            panic!("not unfinished");
        };
        assert_eq!(run.last_step.as_deref(), Some("measure"));
        journal.finished = Some(crate::report::RunStatus::Passed);
        assert_eq!(journal_fact(Ok(Some(journal))), JournalFact::Clean);
    }
}
