//! What makes a `/nix` bound from the volume bootable (ARCHITECTURE.md, "Facts about the
//! tools"): stage 1 mounts `/nix`, so it must also mount the filesystem that
//! holds the bind's source. These helpers name the exact Nix lines that are missing.

use std::collections::BTreeMap;

use super::MountFields;
use super::edit::nix_string;

/// Mount points that stage 1 mounts whatever their options say (`pathsNeededForBoot` in
/// nixpkgs' nixos/lib/utils.nix).
pub const PATHS_NEEDED_FOR_BOOT: [&str; 9] = [
    "/",
    "/nix",
    "/nix/store",
    "/var",
    "/var/log",
    "/var/lib",
    "/var/lib/nixos",
    "/etc",
    "/usr",
];

/// A blocker for the boot-safety step and the Nix text that removes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFix {
    /// The `fileSystems` entry to add or change.
    pub mount_point: String,
    /// What is wrong, in a sentence for the operator.
    pub problem: String,
    /// The exact lines to put in the configuration.
    pub nix: String,
}

/// The line that makes stage 1 mount `mount_point`.
pub fn boot_fix_snippet(mount_point: &str) -> String {
    format!(
        "fileSystems.{}.neededForBoot = true;\n",
        nix_string(mount_point)
    )
}

/// The definition of `target` as a bind mount of `source`, as the seed writes it.
pub fn bind_snippet(target: &str, source: &str) -> String {
    format!(
        "fileSystems.{} = {{\n  device = {};\n  fsType = \"none\";\n  options = [ \"bind\" ];\n}};\n",
        nix_string(target),
        nix_string(source)
    )
}

/// Whether stage 1 mounts the entry at `mount_point`.
pub fn mounted_in_stage1(mount_point: &str, fields: &MountFields) -> bool {
    PATHS_NEEDED_FOR_BOOT.contains(&mount_point) || fields.needed_for_boot == Some(true)
}

/// The mount point among `mount_points` whose filesystem holds `path`: the longest one
/// that is `path` or a directory above it.
pub fn holding_mount<'a>(
    path: &str,
    mount_points: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    mount_points
        .into_iter()
        .filter(|mount| is_within(path, mount))
        .max_by_key(|mount| mount.trim_end_matches('/').len())
}

/// What stops the configuration in `file_systems` (mount point to entry, as `nix eval
/// --json` of `config.fileSystems` gives it) from booting with `target` bind-mounted from
/// `source`: `target` is not that bind, or the filesystem holding `source` is not mounted
/// in stage 1.
pub fn store_boot_fixes(
    file_systems: &BTreeMap<String, MountFields>,
    source: &str,
    target: &str,
) -> Vec<BootFix> {
    let mut fixes = Vec::new();
    let is_bind = file_systems.get(target).is_some_and(|entry| {
        entry.device.as_deref() == Some(source)
            && entry
                .options
                .as_ref()
                .is_some_and(|options| options.iter().any(|option| option == "bind"))
    });
    if !is_bind {
        let problem = match file_systems.get(target) {
            None => format!("{target} is not declared; it must be a bind mount of {source}"),
            Some(_) => format!("{target} is not a bind mount of {source}"),
        };
        fixes.push(BootFix {
            mount_point: target.to_owned(),
            problem,
            nix: bind_snippet(target, source),
        });
    }
    let others = file_systems
        .keys()
        .map(String::as_str)
        .filter(|mount| *mount != target);
    if let Some(holder) = holding_mount(source, others)
        && file_systems
            .get(holder)
            .is_some_and(|entry| !mounted_in_stage1(holder, entry))
    {
        fixes.push(BootFix {
            mount_point: holder.to_owned(),
            problem: format!(
                "{holder} holds {source}, which stage 1 bind-mounts at {target}, but stage 1 \
                 does not mount {holder}"
            ),
            nix: boot_fix_snippet(holder),
        });
    }
    fixes
}

/// Whether `path` is `mount` or below it, comparing whole path components.
fn is_within(path: &str, mount: &str) -> bool {
    let mount = mount.trim_end_matches('/');
    match path.strip_prefix(mount) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}
