//! `find-volume`: which device holds the data. The DEVICE argument wins, then the
//! configured `[[volume]]`, then discovery in the by-id directory. lifeboat never guesses
//! between several candidates.

use std::io;
use std::path::{Path, PathBuf};

use crate::config::{Config, VolumeConfig};
use crate::escape::shown;
use crate::exec::by_id::{self, Candidate};
use crate::flow::Outcome;

/// How the device was chosen, for the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Argument,
    Configured,
    Discovered,
}

/// The device to work on.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundVolume {
    pub path: PathBuf,
    pub source: Source,
    /// The `[[volume]]` that names this device (by path or by what it resolves to).
    pub volume: Option<VolumeConfig>,
}

impl FoundVolume {
    /// The filesystem the volume must have.
    pub fn expected_fs_type(&self) -> &str {
        self.volume.as_ref().map_or("ext4", |v| v.fs_type.as_str())
    }

    /// Where the volume is mounted on the running system (`/home`), to place configured
    /// absolute paths such as `[docker].data_root` on it.
    pub fn system_mount(&self) -> &Path {
        self.volume
            .as_ref()
            .map_or(Path::new("/home"), |v| v.mount.as_path())
    }
}

/// Find the device, or say why not as the step's outcome.
pub fn find(cfg: &Config, device_arg: Option<&Path>) -> Result<FoundVolume, Outcome> {
    if let Some(path) = device_arg {
        return existing(cfg, path, Source::Argument);
    }
    // With the store on a volume of its own (the seed's "Multiple Volumes"), the volume that
    // holds the data and the recovery card is the other one.
    let data: Vec<&VolumeConfig> = cfg
        .volumes
        .iter()
        .filter(|v| v.mount != cfg.nix_store.target)
        .collect();
    if let ([_, _, ..], [volume]) = (cfg.volumes.as_slice(), data.as_slice()) {
        return existing(cfg, &volume.device, Source::Configured);
    }
    match cfg.volumes.as_slice() {
        [] => discover(cfg),
        [volume] => existing(cfg, &volume.device, Source::Configured),
        several => Err(Outcome::Refused(format!(
            "{} volumes are configured; name the one to inspect: {}",
            several.len(),
            several
                .iter()
                .map(|v| format!("lifeboat inspect {}", shown(&v.device)))
                .collect::<Vec<_>>()
                .join(" or ")
        ))),
    }
}

fn existing(cfg: &Config, path: &Path, source: Source) -> Result<FoundVolume, Outcome> {
    if path.symlink_metadata().is_err() {
        let whose = match source {
            Source::Argument => "",
            Source::Configured | Source::Discovered => "the configured device ",
        };
        return Err(Outcome::Failed(format!(
            "{whose}{} does not exist. Is the volume attached to this server (hcloud volume attach \
             --server NAME VOLUME)? By-id links appear a moment after attaching, from udev. `lsblk` \
             lists the disks this machine has.",
            shown(path)
        )));
    }
    Ok(FoundVolume {
        path: path.to_path_buf(),
        source,
        volume: matching_volume(cfg, path),
    })
}

fn discover(cfg: &Config) -> Result<FoundVolume, Outcome> {
    let dir = &cfg.discovery.by_id_dir;
    let pattern = &cfg.discovery.pattern;
    let whole_disk = |name: &str| cfg.discovery_matches(name) && !is_partition_link(name);
    let candidates = by_id::discover(dir, &whole_disk).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            Outcome::Failed(format!(
                "{} does not exist, so no volume can be discovered. udev creates it: is udev \
                 running (a rescue system may lack it)? Name the device instead: lifeboat \
                 inspect /dev/sdb (lsblk lists the disks).",
                shown(dir)
            ))
        } else {
            Outcome::Failed(format!("cannot read {}: {e}", shown(dir)))
        }
    })?;
    match candidates.as_slice() {
        [] => Err(Outcome::Failed(format!(
            "no volume found: nothing in {} matches {pattern}. Is the volume attached to this \
             server (hcloud volume attach --server NAME VOLUME)? udev adds the link a moment \
             after attaching. Or name the device: lifeboat inspect /dev/sdb (lsblk lists the disks).",
            shown(dir)
        ))),
        [one] => Ok(FoundVolume {
            path: one.link.clone(),
            source: Source::Discovered,
            volume: matching_volume(cfg, &one.link),
        }),
        several => Err(Outcome::Refused(format!(
            "{} volumes match {pattern} in {}: {}. lifeboat will not guess which one holds your \
             data: name it, e.g. lifeboat inspect {}",
            several.len(),
            shown(dir),
            describe(several),
            shown(&several[0].link)
        ))),
    }
}

/// udev names a partition's link after its disk plus `-partN`
/// (`scsi-0HC_Volume_1-part1`); discovery looks for whole volumes.
fn is_partition_link(name: &str) -> bool {
    name.rsplit_once("-part")
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn describe(candidates: &[Candidate]) -> String {
    candidates
        .iter()
        .map(|c| format!("{} -> {}", shown(&c.link), shown(&c.resolved)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The configured volume whose device is `path`, comparing what both resolve to.
fn matching_volume(cfg: &Config, path: &Path) -> Option<VolumeConfig> {
    let resolved = path.canonicalize().ok();
    cfg.volumes
        .iter()
        .find(|v| {
            v.device == path || (resolved.is_some() && v.device.canonicalize().ok() == resolved)
        })
        .cloned()
}

/// The `find-volume` step of a flow: undo a mount an earlier, killed run left, find the
/// device, record it in the journal (so `--resume` continues with it). The device and the
/// step's message.
pub fn find_volume_step(
    cfg: &Config,
    device_arg: Option<&Path>,
    ctx: &crate::steps::context::StepContext,
) -> Result<(FoundVolume, String), Outcome> {
    for line in super::readonly_mount::undo_stale_mounts(ctx)? {
        ctx.output(line);
    }
    let found = find(cfg, device_arg)?;
    let resolved = found
        .path
        .canonicalize()
        .unwrap_or_else(|_| found.path.clone());
    let device = found.path.clone();
    if let Err(e) = ctx.journal.update(|j| j.device = Some(device)) {
        ctx.output(format!("{e} (--resume will not know the device)"));
    }
    let message = describe_found(&found, &resolved);
    Ok((found, message))
}

/// The step's success message.
pub fn describe_found(found: &FoundVolume, resolved: &Path) -> String {
    let how = match found.source {
        Source::Argument => "as given",
        Source::Configured => "from the config",
        Source::Discovered => "discovered",
    };
    format!("{} -> {} ({how})", shown(&found.path), shown(resolved))
}

#[cfg(test)]
mod tests {
    use super::is_partition_link;

    #[test]
    fn partition_links_are_recognised() {
        assert!(is_partition_link("scsi-0HC_Volume_1-part1"));
        assert!(is_partition_link("scsi-0HC_Volume_1-part12"));
        assert!(!is_partition_link("scsi-0HC_Volume_1"));
        assert!(!is_partition_link("scsi-0HC_Volume_1-part"));
        assert!(!is_partition_link("scsi-0HC_Volume_party"));
    }
}
