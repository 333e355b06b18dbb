//! Room for the build: until the reboot the new system is built into the root disk's store,
//! so that disk must hold about as much as the old system's closure (which the build copies
//! there first). Checked before a build that would otherwise fill the disk half-way.

use std::path::Path;

use crate::config::Config;
use crate::escape::shown;
use crate::exec::host::space;
use crate::exec::process;
use crate::flow::Outcome;
use crate::steps::context::StepContext;
use crate::steps::identify::human_bytes;

use super::closure::{Closure, closure_of};
use super::rebuild;
use crate::steps::volume_store::VolumeStore;

/// The root disk's store, where `nixos-rebuild` builds before the reboot.
const ROOT_STORE: &str = "/nix/store";

/// Is there room on the root disk for a system the size of `old`'s closure? The closure,
/// when Nix could say what it is.
pub fn check(
    cfg: &Config,
    store: &VolumeStore,
    old: &Path,
    ctx: &StepContext,
) -> Result<Option<Closure>, Outcome> {
    let closure = match closure(cfg, store, old, ctx) {
        Ok(closure) => closure,
        Err(why) => {
            ctx.output(format!(
                "the old system's size is unknown ({why}): room on the root disk not checked"
            ));
            return Ok(None);
        }
    };
    let size = closure.total();
    let free = match space(Path::new(ROOT_STORE)) {
        Ok(space) => space.available,
        Err(e) => {
            ctx.output(format!(
                "the free space of {ROOT_STORE} is unknown ({e}): room not checked"
            ));
            return Ok(Some(closure));
        }
    };
    match too_little(size, free) {
        Some(why) => Err(Outcome::Failed(why)),
        None => {
            ctx.output(format!(
                "the old system's closure is {}; {ROOT_STORE} has {} free",
                human_bytes(size),
                human_bytes(free)
            ));
            Ok(Some(closure))
        }
    }
}

/// Why `free` bytes are too little for a closure of `closure` bytes, if they are.
fn too_little(closure: u64, free: u64) -> Option<String> {
    (closure > free).then(|| {
        format!(
            "the new system will take about as much as the old one, whose closure is {}, but \
             the root disk's store {ROOT_STORE} has only {} free: the build would fill the disk \
             half-way. Give the VPS a larger root disk, or free the installer's store with \
             `nix-collect-garbage -d`, then run recover again",
            human_bytes(closure),
            human_bytes(free)
        )
    })
}

/// The closure of `path` in the volume's store, from `nix path-info --json -r`.
fn closure(
    cfg: &Config,
    store: &VolumeStore,
    path: &Path,
    ctx: &StepContext,
) -> Result<Closure, String> {
    let spec = rebuild::closure_command(cfg, store, path);
    let finished = ctx
        .run_streaming(&spec, &mut |_| {})
        .map_err(|e| e.to_string())?;
    if !finished.status.success() {
        return Err(format!(
            "nix path-info {} {}",
            shown(path),
            process::describe_status(finished.status)
        ));
    }
    let stdout = finished.stdout_captured.unwrap_or_default();
    closure_of(&stdout).ok_or_else(|| "nix path-info said no sizes".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_little_room_names_both_numbers_and_what_to_do() {
        assert_eq!(too_little(1 << 30, 2 << 30), None);
        let why = too_little(3 << 30, 1 << 30).unwrap();
        assert!(why.contains("3.0 GiB") && why.contains("1.0 GiB"), "{why}");
        assert!(why.contains("nix-collect-garbage"), "{why}");
    }
}
