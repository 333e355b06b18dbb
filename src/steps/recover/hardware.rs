//! `hardware-config`: generate `hardware-configuration.nix` for this machine, minus the
//! `fileSystems` entries that would break the boot: mount points the repository declares
//! itself (a second `fileSystems."/home"` is a conflicting definition), lifeboat's own
//! inspection mount point, and any mount of the volume. The edit is made on the parsed Nix
//! text, keeping every other byte. The file is staged so the flake can see it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use similar::TextDiff;

use crate::config::Config;
use crate::escape::{escape_bytes, shown};
use crate::exec::atomic::write_atomic;
use crate::exec::git;
use crate::exec::process::{self, CommandSpec};
use crate::flow::Outcome;
use crate::nixedit;
use crate::steps::context::StepContext;

/// The file, relative to the repository.
pub const FILE: &str = "hardware-configuration.nix";

/// The generated file, ready to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub text: String,
    /// Each dropped mount point with why.
    pub dropped: Vec<(String, String)>,
}

/// The generator's exact command.
pub fn command(cfg: &Config) -> CommandSpec {
    CommandSpec::from_prefix(
        &cfg.commands.nixos_generate_config,
        ["--show-hardware-config"],
    )
    .package("nixos-install-tools")
}

/// Mount points declared by the repository's own Nix files (not the hardware config),
/// each with the file that declares it.
fn declared_mounts(repo: &Path) -> BTreeMap<String, String> {
    let mut declared = BTreeMap::new();
    let mut pending = vec![repo.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() && name != ".git" {
                pending.push(path);
            } else if kind.is_file()
                && path.extension().is_some_and(|e| e == "nix")
                && path != repo.join(FILE)
            {
                let Ok(text) = fs::read_to_string(&path) else {
                    continue;
                };
                let rel = path
                    .strip_prefix(repo)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                for mount in nixedit::file_systems_mounts(&text).unwrap_or_default() {
                    declared
                        .entry(mount.mount_point)
                        .or_insert_with(|| rel.clone());
                }
            }
        }
    }
    declared
}

/// Run the generator and drop what must not be in the file.
pub fn generate(
    cfg: &Config,
    volume_uuid: Option<&str>,
    ctx: &StepContext,
) -> Result<Generated, Outcome> {
    let (stdout, finished) =
        process::capture(&command(cfg), ctx.cancel).map_err(|e| Outcome::Failed(e.to_string()))?;
    finished
        .ensure_success()
        .map_err(|e| Outcome::Failed(e.to_string()))?;
    let text = String::from_utf8(stdout)
        .map_err(|_| Outcome::Failed("the generated hardware config is not UTF-8".into()))?;
    let mounts = nixedit::file_systems_mounts(&text).map_err(|e| {
        Outcome::Failed(format!("the generated hardware config does not parse: {e}"))
    })?;
    let declared = declared_mounts(&cfg.config_repo.path);
    let inspection = cfg.inspect.mountpoint.display().to_string();
    let volume_device = volume_uuid.map(|uuid| format!("/dev/disk/by-uuid/{uuid}"));
    let mut dropped: Vec<(String, String)> = Vec::new();
    for mount in &mounts {
        let point = &mount.mount_point;
        let why = if let Some(file) = declared.get(point) {
            format!("declared in {file}")
        } else if *point == inspection {
            "lifeboat's inspection mount point".to_string()
        } else if volume_device.is_some() && mount.fields.device == volume_device {
            "a mount of the volume, which the repository mounts itself".to_string()
        } else {
            continue;
        };
        if !dropped.iter().any(|(p, _)| p == point) {
            dropped.push((point.clone(), why));
        }
    }
    let names: Vec<&str> = dropped.iter().map(|(p, _)| p.as_str()).collect();
    let edited = nixedit::drop_file_systems(&text, &names)
        .map_err(|e| Outcome::Failed(format!("cannot edit the generated hardware config: {e}")))?;
    Ok(Generated {
        text: edited.text,
        dropped,
    })
}

/// A unified diff of the committed file against the new text, escaped line by line.
pub fn diff(committed: &str, new: &str) -> Vec<String> {
    TextDiff::from_lines(committed, new)
        .unified_diff()
        .context_radius(2)
        .header("committed", "generated")
        .to_string()
        .lines()
        .map(|l| escape_bytes(l.as_bytes()))
        .collect()
}

/// Write the file (keeping a copy of an uncommitted one) and stage it.
pub fn write(repo: &Path, generated: &Generated) -> Result<String, String> {
    let path = repo.join(FILE);
    let rel = Path::new(FILE);
    let current = fs::read(&path).ok();
    let committed = git::committed(repo, rel).map_err(|e| e.to_string())?;
    let mut kept: Option<PathBuf> = None;
    if let Some(current) = current.as_ref().filter(|c| Some(*c) != committed.as_ref()) {
        let copy = crate::exec::atomic::aside_path(&path);
        write_atomic(&copy, current, 0o644).map_err(|e| format!("{}: {e}", shown(&copy)))?;
        kept = Some(copy);
    }
    write_atomic(&path, generated.text.as_bytes(), 0o644)
        .map_err(|e| format!("cannot write {}: {e}", shown(&path)))?;
    git::stage(repo, rel).map_err(|e| e.to_string())?;
    let mut message = format!("wrote and staged {}", shown(&path));
    if !generated.dropped.is_empty() {
        let dropped: Vec<String> = generated
            .dropped
            .iter()
            .map(|(p, why)| format!("{p} ({why})"))
            .collect();
        message.push_str(&format!(", without fileSystems {}", dropped.join(", ")));
    }
    if let Some(copy) = kept {
        message.push_str(&format!(
            "; the uncommitted file before it is kept as {}",
            shown(&copy)
        ));
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diff_is_unified_and_escaped() {
        let lines = diff("a\nb\n", "a\nc\x1b\n");
        assert_eq!(lines[0], "--- committed");
        assert!(lines.contains(&"-b".to_string()));
        assert!(lines.contains(&"+c\\e".to_string()));
    }
}
