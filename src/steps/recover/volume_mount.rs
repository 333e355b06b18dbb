//! `mount-volume`: the volume holding the Nix store, mounted read-write at a private place
//! of lifeboat's (`<[state].dir>/volume`), never where the new system will mount it:
//! nothing the new system declares is mounted before the reboot. The first write to the
//! volume, so it is confirmed; recorded in the journal before it is made, undone at the end
//! of every run and before the reboot, and a killed run's is undone by the next one.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::escape::shown;
use crate::exec::mount::{self, MountGuard};
use crate::exec::probe::DeviceProbe;
use crate::flow::Outcome;
use crate::journal::MountRecord;
use crate::report::Action;
use crate::steps::context::StepContext;
use crate::steps::readonly_mount::{explain_mount_error, forget, prepare_mountpoint};

/// The mount, undone when dropped.
#[derive(Debug)]
pub struct WritableMount {
    guard: MountGuard,
}

impl WritableMount {
    /// Where the volume's root is.
    pub fn root(&self) -> &Path {
        self.guard.target()
    }
}

/// Where recover mounts the volume: inside its own private state directory.
pub fn target(cfg: &Config) -> PathBuf {
    cfg.state.dir.join("volume")
}

/// The mount as the plan and the question show it.
pub fn action(device: &Path, target: &Path) -> Action {
    Action::Mount {
        device: shown(device),
        target: shown(target),
        options: mount::writable_options(),
    }
}

/// The mount command an operator would type for the same mount.
pub fn command_text(device: &Path, fs_type: &str, target: &Path) -> String {
    format!(
        "mount -t {fs_type} -o {} {} {}",
        mount::writable_options().join(","),
        shown(device),
        shown(target)
    )
}

/// Mount the probed device read-write at `target`, recorded in the journal first.
pub fn open(
    probe: &DeviceProbe,
    fs_type: &str,
    target: &Path,
    ctx: &StepContext,
) -> Result<WritableMount, Outcome> {
    prepare_mountpoint(target, "[state].dir", ctx)?;
    let record = MountRecord {
        device: probe.resolved.clone(),
        dev: probe.dev,
        target: target.to_path_buf(),
        writable: true,
    };
    ctx.journal
        .update(|j| j.mounts.push(record))
        .map_err(|e| Outcome::Failed(e.to_string()))?;
    match MountGuard::read_write(&probe.resolved, target, fs_type) {
        Ok(guard) => Ok(WritableMount { guard }),
        Err(e) => {
            forget(ctx, target)?;
            Err(Outcome::Failed(explain_mount_error(&e, &probe.resolved)))
        }
    }
}

/// Undo the mount, its writes on the device first; a line saying how it went.
pub fn close(mount: WritableMount, ctx: &StepContext) -> Result<String, String> {
    let target = mount.root().to_path_buf();
    nix::unistd::sync();
    mount.guard.unmount().map_err(|e| {
        format!(
            "{e}. Close what uses {} and run lifeboat again to undo it; do not reboot while \
             it is mounted.",
            shown(&target)
        )
    })?;
    forget(ctx, &target).map_err(|outcome| match outcome {
        Outcome::Failed(why) => why,
        other => format!("{other:?}"),
    })?;
    Ok(format!("unmounted the volume from {}", shown(&target)))
}
