//! Room for the build: until the reboot the new system is built into the root disk's store,
//! so that disk must hold about as much as the old system's closure. Checked before a build
//! that would otherwise fill the disk half-way through.

use std::path::Path;

use crate::config::Config;
use crate::escape::shown;
use crate::exec::process;
use crate::flow::Outcome;
use crate::steps::StepContext;
use crate::steps::identify::human_bytes;

use super::rebuild;
use crate::steps::volume_store::VolumeStore;

/// The root disk's store, where `nixos-rebuild` builds before the reboot.
const ROOT_STORE: &str = "/nix/store";

/// Is there room on the root disk for a system the size of `old`'s closure?
pub fn check(
    cfg: &Config,
    store: &VolumeStore,
    old: &Path,
    ctx: &StepContext,
) -> Result<(), Outcome> {
    let closure = match closure_size(cfg, store, old, ctx) {
        Ok(size) => size,
        Err(why) => {
            ctx.output(format!(
                "the old system's size is unknown ({why}): room on the root disk not checked"
            ));
            return Ok(());
        }
    };
    let free = match nix::sys::statvfs::statvfs(ROOT_STORE) {
        Ok(stat) => stat.blocks_available() * stat.fragment_size(),
        Err(e) => {
            ctx.output(format!(
                "the free space of {ROOT_STORE} is unknown ({e}): room not checked"
            ));
            return Ok(());
        }
    };
    match too_little(closure, free) {
        Some(why) => Err(Outcome::Failed(why)),
        None => {
            ctx.output(format!(
                "the old system's closure is {}; {ROOT_STORE} has {} free",
                human_bytes(closure),
                human_bytes(free)
            ));
            Ok(())
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

/// The closure size of `path` in the volume's store, from `nix path-info -S --json`.
fn closure_size(
    cfg: &Config,
    store: &VolumeStore,
    path: &Path,
    ctx: &StepContext,
) -> Result<u64, String> {
    let spec = rebuild::closure_size_command(cfg, store, path);
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
    closure_size_of(&stdout).ok_or_else(|| "nix path-info said no closure size".to_string())
}

/// `closureSize` from `nix path-info --json -S`: a list of objects (Nix before 2.19) or an
/// object keyed by store path (later).
fn closure_size_of(json: &[u8]) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_slice(json).ok()?;
    let info = match &value {
        serde_json::Value::Array(list) => list.first()?,
        serde_json::Value::Object(map) => map.values().next()?,
        _ => return None,
    };
    info.get("closureSize")?.as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes_of_path_info_give_the_closure_size() {
        let old = br#"[{"path":"/nix/store/a-top","narSize":520,"closureSize":300800}]"#;
        assert_eq!(closure_size_of(old), Some(300800));
        let new = br#"{"/nix/store/a-top":{"narSize":520,"closureSize":42}}"#;
        assert_eq!(closure_size_of(new), Some(42));
        assert_eq!(closure_size_of(b"[]"), None);
        assert_eq!(closure_size_of(b"not json"), None);
    }

    #[test]
    fn too_little_room_names_both_numbers_and_what_to_do() {
        assert_eq!(too_little(1 << 30, 2 << 30), None);
        let why = too_little(3 << 30, 1 << 30).unwrap();
        assert!(why.contains("3.0 GiB") && why.contains("1.0 GiB"), "{why}");
        assert!(why.contains("nix-collect-garbage"), "{why}");
    }
}
