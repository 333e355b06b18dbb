//! `identify-volume`: what the device really holds, read from its superblock without
//! writing. lifeboat never formats: a blank device or an unexpected filesystem is refused.

use crate::escape::shown;
use crate::exec::probe::{self, Contents, DeviceProbe, ProbeError};
use crate::flow::Outcome;

use super::find_volume::FoundVolume;

/// Probe the device; refuse anything that is not the expected filesystem.
/// On success returns the probe and the step's outcome (passed, or a warning).
pub fn identify(found: &FoundVolume) -> Result<(DeviceProbe, Outcome), Outcome> {
    let expected = found.expected_fs_type();
    let probe = probe::probe_device(&found.path).map_err(refusal_for_probe_error)?;
    let device = shown(&probe.path);
    let never = "lifeboat never formats or converts a volume.";
    let outcome = match &probe.contents {
        Contents::Filesystem(fs) if fs.fs_type == expected => {
            let summary = format!(
                "{} UUID {} label \"{}\", {} on a {} device",
                fs.fs_type,
                fs.uuid,
                crate::escape::escape_bytes(fs.label.as_bytes()),
                human_bytes(fs.fs_size_bytes),
                human_bytes(probe.size_bytes)
            );
            if fs.needs_recovery {
                Outcome::Warning(format!(
                    "{summary}. Its journal needs recovery (it was not cleanly unmounted): \
                     lifeboat mounts it without replaying the journal, so the device stays \
                     untouched, but the last writes before the crash may not show."
                ))
            } else {
                Outcome::Passed(summary)
            }
        }
        Contents::Filesystem(fs) => {
            return Err(Outcome::Refused(format!(
                "{device} holds {} (UUID {}, label \"{}\"), not {expected} as configured. {never} \
                 If this is the right volume, set fs_type = \"{}\" in its [[volume]]; otherwise \
                 attach the volume that holds your data.",
                fs.fs_type,
                fs.uuid,
                crate::escape::escape_bytes(fs.label.as_bytes()),
                fs.fs_type
            )));
        }
        Contents::Blank => {
            return Err(Outcome::Refused(format!(
                "{device} has no filesystem: where filesystem signatures live it reads as \
                 zeros. This is a new, unformatted volume (created without --format) or the \
                 wrong device. {never} If it should hold your data, stop: check in the Hetzner \
                 console which volume is attached to this server."
            )));
        }
        Contents::Other(what) => {
            return Err(Outcome::Refused(format!(
                "{device} holds {what}, not a {expected} filesystem. {never} Check that the \
                 right volume is attached."
            )));
        }
        Contents::Unknown => {
            return Err(Outcome::Refused(format!(
                "{device} holds data with no filesystem signature lifeboat knows (expected \
                 {expected}). {never} Check that the right volume is attached; `blkid -p {device}` \
                 may say more."
            )));
        }
    };
    Ok((probe, outcome))
}

fn refusal_for_probe_error(err: ProbeError) -> Outcome {
    match err {
        ProbeError::Missing { path } => Outcome::Failed(format!(
            "{}: no such device. Is the volume attached? `lsblk` lists the disks.",
            shown(&path)
        )),
        ProbeError::NotBlockDevice { path, kind } => Outcome::Refused(format!(
            "{} is a {kind}, not a block device: lifeboat only inspects attached volumes \
             (/dev/disk/by-id/…, /dev/sdX).",
            shown(&path)
        )),
        ProbeError::Io { path, source } => Outcome::Failed(format!(
            "cannot read {}: {source}. Reading a device needs root.",
            shown(&path)
        )),
    }
}

/// Sizes for people: binary units with one decimal.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(10 * 1024 * 1024 * 1024), "10.0 GiB");
    }
}
