//! verify's `generations`: after the recovery the machine runs the newest generation of its
//! system profile, and no older generation still points at the machine that is gone. Such a
//! generation mounts a root filesystem (its `etc/fstab`'s `/` entry) that does not exist
//! here: rolling back to it, from the boot menu or with `nixos-rebuild switch --rollback`,
//! boots a disk that is no more. Deleting those generations and rewriting the boot menu is
//! offered, on confirmation.

use std::fs;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::escape::{escape_bytes, shown};
use crate::exec::host::CURRENT_SYSTEM;
use crate::exec::process::{self, CommandSpec};
use crate::flow::{Assent, Outcome};
use crate::report::Action;

use super::context::{Change, StepContext, ask_before, each_line};
use super::volume_store::{Generation, VolumeStore};

/// How many links a file of a system may go through before lifeboat gives up on it.
const MAX_LINKS: usize = 16;

/// The store that is `/nix` on the rebooted machine (`[nix_store].target`).
fn store(cfg: &Config) -> VolumeStore {
    VolumeStore::new(cfg.nix_store.target.clone())
}

/// The system profile, as `nix-env -p` names it.
fn profile(cfg: &Config) -> PathBuf {
    store(cfg).nix_dir.join("var/nix/profiles/system")
}

/// `nix-env -p PROFILE --delete-generations N…`.
fn delete_command(cfg: &Config, numbers: &[u32]) -> CommandSpec {
    let args = ["-p".to_string(), profile(cfg).display().to_string()]
        .into_iter()
        .chain(["--delete-generations".to_string()])
        .chain(numbers.iter().map(u32::to_string));
    CommandSpec::new("nix-env", args).package("nix")
}

/// `<running system>/bin/switch-to-configuration boot`: the boot menu from the profile's
/// generations as they are now, nothing activated.
fn boot_menu_command(running: &Path) -> CommandSpec {
    CommandSpec::new(
        running
            .join("bin/switch-to-configuration")
            .display()
            .to_string(),
        ["boot"],
    )
}

/// The actions of the step's fix, for the plan.
pub fn actions(cfg: &Config) -> Vec<Action> {
    let running = PathBuf::from(CURRENT_SYSTEM);
    vec![
        delete_command(cfg, &[]).describe(),
        boot_menu_command(&running).describe(),
    ]
}

/// `path` in the store at `store`, its links followed: a link into `/nix/` is read as one
/// into the store's directory, which is `/nix` itself on the rebooted machine.
fn follow(store: &VolumeStore, path: PathBuf) -> PathBuf {
    let mut path = path;
    for _ in 0..MAX_LINKS {
        let Ok(target) = fs::read_link(&path) else {
            return path;
        };
        path = match target.strip_prefix("/nix") {
            Ok(inside) => store.nix_dir.join(inside),
            Err(_) if target.is_absolute() => target,
            Err(_) => path
                .parent()
                .map_or(target.clone(), |dir| dir.join(&target)),
        };
    }
    path
}

/// The device of the `/` entry of `system`'s `etc/fstab` (NixOS writes `\040` for a space).
fn root_device(store: &VolumeStore, system: &Path) -> Option<String> {
    let name = system.file_name()?;
    let system = follow(store, store.nix_dir.join("store").join(name));
    let etc = follow(store, system.join("etc"));
    let fstab = fs::read_to_string(follow(store, etc.join("fstab"))).ok()?;
    fstab
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let mut fields = line.split_whitespace();
            let device = fields.next()?;
            (fields.next()? == "/").then(|| device.replace("\\040", " "))
        })
}

/// The device node or link an fstab device names (`UUID=…` is `/dev/disk/by-uuid/…`), when
/// it names one.
fn device_path(device: &str) -> Option<PathBuf> {
    let by = |dir: &str, name: &str| Path::new("/dev/disk").join(dir).join(name);
    match device.split_once('=') {
        Some(("UUID", id)) => Some(by("by-uuid", id)),
        Some(("LABEL", id)) => Some(by("by-label", id)),
        Some(("PARTUUID", id)) => Some(by("by-partuuid", id)),
        Some(("PARTLABEL", id)) => Some(by("by-partlabel", id)),
        _ if device.starts_with("/dev/") => Some(PathBuf::from(device)),
        // tmpfs, a network filesystem: nothing on this machine to look for.
        _ => None,
    }
}

/// A generation whose root filesystem is on a disk this machine does not have.
struct Gone {
    number: u32,
    device: String,
}

/// The generations (other than the running one) whose root device differs from the running
/// system's and does not exist here.
fn gone(store: &VolumeStore, generations: &[Generation], running: &Path) -> Vec<Gone> {
    let this_root = root_device(store, running);
    generations
        .iter()
        .filter(|g| g.system.file_name() != running.file_name())
        .filter_map(|g| {
            let device = root_device(store, &g.system)?;
            let missing = Some(&device) != this_root.as_ref()
                && device_path(&device).is_some_and(|path| !path.exists());
            missing.then_some(Gone {
                number: g.number,
                device,
            })
        })
        .collect()
}

/// The step: the running system is the newest generation, and no generation is built for
/// the machine that is gone (or those are deleted, once confirmed).
pub fn check(cfg: &Config, confirmed: bool, ctx: &StepContext) -> Outcome {
    let store = store(cfg);
    let running = match fs::canonicalize(CURRENT_SYSTEM) {
        Ok(running) => running,
        Err(e) => {
            return Outcome::Failed(format!(
                "{CURRENT_SYSTEM} cannot be resolved ({e}): is this a booted NixOS system?"
            ));
        }
    };
    let (generations, _) = match store.generations() {
        Ok(found) => found,
        Err(e) => {
            return Outcome::Failed(format!(
                "the system profile {} cannot be read: {e}",
                shown(&profile(cfg))
            ));
        }
    };
    let Some(newest) = generations.last() else {
        return Outcome::Failed(format!(
            "the system profile {} has no generation: the running system {} is not in it, so \
             garbage collection may remove it. Run recover again (its boot step adds it)",
            shown(&profile(cfg)),
            shown(&running)
        ));
    };
    if newest.system.file_name() != running.file_name() {
        return Outcome::Failed(format!(
            "the running system {} is not the newest generation of {} (generation {} is {}): \
             the boot menu and `nixos-rebuild switch --rollback` start from another system. \
             Run recover again (its boot step makes the running system the newest)",
            shown(&running),
            shown(&profile(cfg)),
            newest.number,
            shown(&newest.system)
        ));
    }
    let gone = gone(&store, &generations, &running);
    let newest_text = format!(
        "the running system is generation {}, the newest of {}",
        newest.number,
        shown(&profile(cfg))
    );
    if gone.is_empty() {
        return Outcome::Passed(format!(
            "{newest_text}; no generation is built for another machine"
        ));
    }
    let listed: Vec<String> = gone
        .iter()
        .map(|g| {
            format!(
                "generation {} (its root filesystem {})",
                g.number,
                escape_bytes(g.device.as_bytes())
            )
        })
        .collect();
    let numbers: Vec<u32> = gone.iter().map(|g| g.number).collect();
    let finding = format!(
        "{} built for the machine that is gone: rolling back to it boots a disk that no longer \
         exists",
        listed.join(", ")
    );
    ctx.output(format!("{newest_text}; {finding}"));
    let change = format!(
        "delete {} and rewrite the boot menu ({}; {})",
        if numbers.len() == 1 {
            "that generation"
        } else {
            "those generations"
        },
        process::shown_argv(delete_command(cfg, &numbers).argv()),
        process::shown_argv(boot_menu_command(&running).argv())
    );
    if let Some(outcome) = ask_before(ctx, confirmed, &Change::new(&change, Assent::Key)) {
        return outcome;
    }
    for spec in [delete_command(cfg, &numbers), boot_menu_command(&running)] {
        let mut on_line = each_line(ctx, |line| ctx.output(escape_bytes(line.bytes)));
        match ctx.run_streaming(&spec, &mut on_line) {
            Ok(finished) if finished.status.success() => {}
            Ok(finished) => {
                return Outcome::Warning(format!(
                    "{finding}; {} failed ({}): delete them by hand",
                    process::shown_argv(spec.argv()),
                    process::describe_status(finished.status)
                ));
            }
            Err(e) => return Outcome::Warning(format!("{finding}; {e}")),
        }
    }
    Outcome::Passed(format!(
        "{newest_text}; deleted {} built for the machine that is gone and rewrote the boot menu",
        listed.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A store with systems whose fstab puts `/` on the given devices, `etc` linked the way
    /// NixOS links it (an absolute link into the store).
    fn store_with(systems: &[(&str, &str)]) -> (tempfile::TempDir, VolumeStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = VolumeStore::new(dir.path().join("nix"));
        for (name, root) in systems {
            let etc = store.nix_dir.join(format!("store/{name}-etc/etc"));
            fs::create_dir_all(&etc).unwrap();
            fs::write(
                etc.join("fstab"),
                format!(
                    "# This is a generated file.  Do not edit!\n\n{root} / ext4 defaults 0 1\n\
                     /dev/disk/by-id/scsi-0HC_Volume_1 /home ext4 defaults 0 2\n"
                ),
            )
            .unwrap();
            let system = store.nix_dir.join(format!("store/{name}"));
            fs::create_dir_all(&system).unwrap();
            symlink(format!("/nix/store/{name}-etc/etc"), system.join("etc")).unwrap();
        }
        (dir, store)
    }

    fn generation(number: u32, name: &str) -> Generation {
        Generation {
            number,
            system: PathBuf::from(format!("/nix/store/{name}")),
        }
    }

    #[test]
    fn the_root_device_is_read_through_the_systems_links() {
        let (_dir, store) = store_with(&[("a-system", "/dev/disk/by-uuid/1234\\040x")]);
        assert_eq!(
            root_device(&store, Path::new("/nix/store/a-system")).as_deref(),
            Some("/dev/disk/by-uuid/1234 x")
        );
        assert_eq!(root_device(&store, Path::new("/nix/store/missing")), None);
    }

    #[test]
    fn a_generation_on_a_disk_that_is_not_here_is_gone_one_on_this_root_is_not() {
        let (_dir, store) = store_with(&[
            ("a-old", "/dev/disk/by-uuid/00000000-dead-disk"),
            ("b-older-here", "/dev/disk/by-uuid/11111111-this-disk"),
            ("c-tmpfs", "none"),
            ("d-new", "/dev/disk/by-uuid/11111111-this-disk"),
        ]);
        let generations = [
            generation(1, "a-old"),
            generation(2, "b-older-here"),
            generation(3, "c-tmpfs"),
            generation(4, "d-new"),
        ];
        let running = store.nix_dir.join("store/d-new");
        let gone = gone(&store, &generations, &running);
        let numbers: Vec<u32> = gone.iter().map(|g| g.number).collect();
        assert_eq!(numbers, [1]);
        assert_eq!(gone[0].device, "/dev/disk/by-uuid/00000000-dead-disk");
    }

    #[test]
    fn fstab_device_names_map_to_dev_paths() {
        assert_eq!(
            device_path("UUID=ab-cd"),
            Some(PathBuf::from("/dev/disk/by-uuid/ab-cd"))
        );
        assert_eq!(
            device_path("LABEL=nixos"),
            Some(PathBuf::from("/dev/disk/by-label/nixos"))
        );
        assert_eq!(device_path("/dev/sda1"), Some(PathBuf::from("/dev/sda1")));
        assert_eq!(device_path("none"), None);
        assert_eq!(device_path("server:/export"), None);
    }
}
