//! `mount-readonly` and `unmount`: a view of the volume that cannot change it, and the
//! guarantee that it goes away again, including after a run that was killed.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::escape::shown;
use crate::exec::mount::{self, MountError, MountGuard};
use crate::exec::probe::DeviceProbe;
use crate::flow::Outcome;
use crate::journal::MountRecord;

use super::context::{StepContext, skip_in_dry_run};

/// Where the volume's root can be read, and whether lifeboat mounted it there.
#[derive(Debug)]
pub struct VolumeView {
    pub root: PathBuf,
    /// `None` when the volume was already mounted and is inspected in place.
    mount: Option<MountGuard>,
}

impl VolumeView {
    /// Inspected where the system already had it mounted.
    pub fn in_place(&self) -> bool {
        self.mount.is_none()
    }
}

/// Undo inspection mounts that the journal says an earlier run made and never undid
/// (it was killed). Only a mount of the recorded device at the recorded place is
/// touched. Returns a line per mount undone.
pub fn undo_stale_mounts(ctx: &StepContext) -> Result<Vec<String>, Outcome> {
    let records = ctx.journal.snapshot().mounts;
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let table = super::on_volume::mount_table()?;
    let mut undone = Vec::new();
    for record in records {
        let still_mounted = table
            .iter()
            .any(|m| m.mount_point == record.target && m.dev == record.dev);
        if still_mounted {
            let kind = if record.writable {
                "read-write"
            } else {
                "read-only"
            };
            if ctx.dry_run {
                undone.push(format!(
                    "would undo the {kind} mount of {} at {} left by an earlier run",
                    shown(&record.device),
                    shown(&record.target)
                ));
                continue;
            }
            mount::unmount(&record.target).map_err(|e| {
                Outcome::Failed(format!(
                    "an earlier run left {} mounted {kind} at {} and it cannot be unmounted: \
                     {e}. Close any shell or program using it and run lifeboat again.",
                    shown(&record.device),
                    shown(&record.target)
                ))
            })?;
            undone.push(format!(
                "undid the {kind} mount of {} at {} left by an earlier run that was stopped",
                shown(&record.device),
                shown(&record.target)
            ));
        }
        forget(ctx, &record.target)?;
    }
    Ok(undone)
}

/// The full-filesystem mount of `dev` the system already has, if any.
pub fn existing_mount(dev: (u32, u32)) -> Result<Option<PathBuf>, Outcome> {
    Ok(super::on_volume::mount_table()?
        .into_iter()
        .find(|m| m.dev == dev && m.root == Path::new("/"))
        .map(|m| m.mount_point))
}

/// Mount the probed device read-only at `target`, or use its existing mount.
pub fn open_view(
    probe: &DeviceProbe,
    fs_type: &str,
    target: &Path,
    ctx: &StepContext,
) -> Result<(VolumeView, String), Outcome> {
    if let Some(place) = existing_mount(probe.dev)? {
        let message = format!(
            "already mounted at {}: inspecting it there, no new mount",
            shown(&place)
        );
        return Ok((
            VolumeView {
                root: place,
                mount: None,
            },
            message,
        ));
    }
    let options = mount::inspection_options(fs_type).join(",");
    let mount = format!(
        "mount -o {options} {} {}",
        shown(&probe.resolved),
        shown(target)
    );
    if let Some(skipped) = skip_in_dry_run(ctx, &mount) {
        return Err(skipped);
    }
    prepare_mountpoint(target, "[inspect].mountpoint", ctx)?;
    let record = MountRecord {
        device: probe.resolved.clone(),
        dev: probe.dev,
        target: target.to_path_buf(),
        writable: false,
    };
    ctx.journal
        .update(|j| j.mounts.push(record))
        .map_err(|e| Outcome::Failed(e.to_string()))?;
    let mounted = match MountGuard::read_only(&probe.resolved, target, fs_type) {
        Ok(mounted) => mounted,
        Err(e) => {
            forget(ctx, target)?;
            return Err(Outcome::Failed(explain_mount_error(&e, &probe.resolved)));
        }
    };
    let message = format!(
        "mounted {} at {} with {options}",
        shown(&probe.resolved),
        shown(target)
    );
    Ok((
        VolumeView {
            root: mounted.target().to_path_buf(),
            mount: Some(mounted),
        },
        message,
    ))
}

/// Undo the view's mount (the `unmount` step).
pub fn close_view(view: Option<VolumeView>, ctx: &StepContext) -> Outcome {
    let Some(view) = view else {
        return Outcome::Skipped("nothing was mounted".into());
    };
    let Some(mounted) = view.mount else {
        return Outcome::Skipped(format!(
            "nothing to unmount: the volume was inspected where the system mounts it ({})",
            shown(&view.root)
        ));
    };
    let target = mounted.target().to_path_buf();
    if let Err(e) = mounted.unmount() {
        return Outcome::Failed(format!(
            "{e}. The mount is read-only, so the volume is safe; close what uses {} and run \
             lifeboat again to undo it.",
            shown(&target)
        ));
    }
    match forget(ctx, &target) {
        Ok(()) => Outcome::Passed(format!("unmounted {}", shown(&target))),
        Err(outcome) => outcome,
    }
}

/// Take the mount at `target` out of the journal, once it is undone.
pub fn forget(ctx: &StepContext, target: &Path) -> Result<(), Outcome> {
    ctx.journal
        .update(|j| j.mounts.retain(|m| m.target != target))
        .map_err(|e| Outcome::Failed(e.to_string()))
}

/// The mount point must be a directory that nothing is mounted on; create it if missing.
/// `setting` names where the place comes from, for the operator who must choose another.
pub fn prepare_mountpoint(target: &Path, setting: &str, ctx: &StepContext) -> Result<(), Outcome> {
    if let Some(other) = super::on_volume::mount_table()?
        .into_iter()
        .find(|m| m.mount_point == target)
    {
        return Err(Outcome::Refused(format!(
            "{} is already a mount point (of {}); lifeboat will not mount over it. Unmount it \
             or set another {setting}.",
            shown(target),
            crate::escape::escape_bytes(other.source.as_bytes())
        )));
    }
    match fs::symlink_metadata(target) {
        Ok(meta) if meta.is_dir() => {
            let has_entries = fs::read_dir(target)
                .map(|mut entries| entries.next().is_some())
                .unwrap_or(false);
            if has_entries {
                ctx.output(format!(
                    "{} is not empty: its files are hidden while the volume is mounted there, \
                     not touched",
                    shown(target)
                ));
            }
            Ok(())
        }
        Ok(_) => Err(Outcome::Refused(format!(
            "the mount point {} exists and is not a directory; set another {setting}.",
            shown(target)
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(target)
            .map(|()| ctx.output(format!("created the mount point {}", shown(target))))
            .map_err(|e| {
                Outcome::Failed(format!(
                    "cannot create the mount point {}: {e}",
                    shown(target)
                ))
            }),
        Err(e) => Err(Outcome::Failed(format!("{}: {e}", shown(target)))),
    }
}

/// The mount error with what it likely means.
pub fn explain_mount_error(err: &MountError, device: &Path) -> String {
    let hint = match err {
        MountError::Mount {
            errno: Errno::EPERM | Errno::EACCES,
            ..
        } => "Mounting needs root: run lifeboat as root.".to_string(),
        MountError::Mount {
            errno: Errno::EINVAL | Errno::EUCLEAN,
            ..
        } => format!(
            "The kernel refused the filesystem: it may be damaged. `e2fsck -n {}` checks it \
             without changing anything.",
            shown(device)
        ),
        MountError::Mount {
            errno: Errno::ENODEV,
            ..
        } => "This kernel lacks the filesystem's driver.".to_string(),
        _ => String::new(),
    };
    format!("{err}. {hint}").trim_end().to_string()
}
