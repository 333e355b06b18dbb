//! recover's `restore-host-identity`: put back what predestroy saved, before the reboot.
//! Every copy is checked against the card's SHA-256 before anything is written; what the
//! fresh machine has in a restored place is moved aside, never deleted; NixOS's id maps are
//! merged (the old machine's id for every name this machine has not given one), and a name
//! with two ids is reported, never overwritten.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::card::CardSaved;
use crate::escape::shown;
use crate::exec::atomic::{aside_path, write_atomic};
use crate::report::Action;

use super::digest::digest;
use super::save::copy_tree;
use super::{Reason, on_machine, saved_path};

/// NixOS's maps of names to ids in `/var/lib/nixos` (update-users-groups.pl).
const ID_MAPS: [&str; 3] = ["uid-map", "gid-map", "auto-subuid-map"];
/// Its lists of the users and groups the configuration declared.
const NAME_LISTS: [&str; 2] = ["declarative-users", "declarative-groups"];

/// One change to the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Put the saved copy `from` at `to`, moving what is there to `aside` first.
    Put {
        from: PathBuf,
        to: PathBuf,
        aside: Option<PathBuf>,
    },
    /// Write a merged file of `/var/lib/nixos`, the machine's own moved to `aside`.
    Merge {
        to: PathBuf,
        text: String,
        aside: Option<PathBuf>,
    },
}

/// Everything to restore, and what was found on the way.
#[derive(Debug, Default)]
pub struct Plan {
    pub changes: Vec<Change>,
    /// Saved paths already in place.
    pub in_place: Vec<PathBuf>,
    /// Ids of the old machine given back (`qwe: uid 1000`).
    pub ids_given_back: Vec<String>,
    /// Names with one id here and another on the old machine, and what it means.
    pub conflicts: Vec<String>,
}

impl Plan {
    /// The actions, as the plan and the question show them.
    pub fn actions(&self) -> Vec<Action> {
        let mut actions = Vec::new();
        for change in &self.changes {
            let (to, aside) = match change {
                Change::Put { to, aside, .. } | Change::Merge { to, aside, .. } => (to, aside),
            };
            if let Some(aside) = aside {
                actions.push(Action::Move {
                    from: shown(to),
                    to: shown(aside),
                });
            }
            actions.push(Action::Write { path: shown(to) });
        }
        actions
    }
}

/// What restoring `saved` (the card's list) from `saved_dir` onto the machine under `root`
/// would change; an error naming every saved copy that is missing or not what predestroy
/// saved (nothing is restored then).
pub fn plan(root: &Path, saved_dir: &Path, saved: &[CardSaved]) -> Result<Plan, String> {
    let damaged: Vec<String> = saved
        .iter()
        .filter_map(|entry| {
            let copy = saved_path(saved_dir, &entry.path);
            match digest(&copy) {
                Ok(found) if found.sha256 == entry.sha256 => None,
                Ok(_) => Some(format!("{} (its SHA-256 is not the card's)", shown(&copy))),
                Err(e) => Some(format!("{} ({e})", shown(&copy))),
            }
        })
        .collect();
    if !damaged.is_empty() {
        return Err(format!(
            "the saved copies on the volume are not what predestroy saved: {}. Nothing was \
             restored; the old machine's identity cannot be trusted from them",
            damaged.join(", ")
        ));
    }
    let mut plan = Plan::default();
    for entry in saved {
        let from = saved_path(saved_dir, &entry.path);
        let to = on_machine(root, &entry.path);
        if entry.reason == Reason::NixosIds && to.is_dir() {
            merge_ids(&from, &to, &mut plan).map_err(|e| format!("{}: {e}", shown(&to)))?;
            continue;
        }
        let here = digest(&to).ok();
        if here.as_ref().is_some_and(|d| d.sha256 == entry.sha256) {
            plan.in_place.push(entry.path.clone());
            continue;
        }
        let aside = here.map(|_| aside_path(&to));
        plan.changes.push(Change::Put { from, to, aside });
    }
    Ok(plan)
}

/// Merge the saved `/var/lib/nixos` (`from`) into the machine's (`to`).
fn merge_ids(from: &Path, to: &Path, plan: &mut Plan) -> io::Result<()> {
    let mut names: Vec<_> = fs::read_dir(from)?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort();
    for name in names {
        let (saved, here) = (from.join(&name), to.join(&name));
        let file = name.to_string_lossy().into_owned();
        let merged = if ID_MAPS.contains(&file.as_str()) {
            merge_map(&file, &saved, &here, plan)?
        } else if NAME_LISTS.contains(&file.as_str()) {
            merge_list(&saved, &here)?
        } else if here.exists() {
            None
        } else {
            plan.changes.push(Change::Put {
                from: saved,
                to: here,
                aside: None,
            });
            continue;
        };
        if let Some(text) = merged {
            let aside = here.exists().then(|| aside_path(&here));
            plan.changes.push(Change::Merge {
                to: here,
                text,
                aside,
            });
        }
    }
    Ok(())
}

/// A JSON file of NixOS's id records (a map of name to id, a list of names); an absent
/// file is an empty one.
fn read_json<T: serde::de::DeserializeOwned + Default>(path: &Path) -> io::Result<T> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(io::Error::other),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(e),
    }
}

/// The machine's map with the old machine's id for every name it lacks, when that adds
/// anything; a name with two ids, or an old id this machine gave another name, is reported.
fn merge_map(file: &str, saved: &Path, here: &Path, plan: &mut Plan) -> io::Result<Option<String>> {
    let old: BTreeMap<String, u64> = read_json(saved)?;
    let mut merged: BTreeMap<String, u64> = read_json(here)?;
    let kind = if file == "gid-map" { "gid" } else { "uid" };
    let mut added = false;
    for (name, id) in old {
        match merged.get(&name) {
            Some(&ours) if ours == id => {}
            Some(&ours) => plan.conflicts.push(format!(
                "{name} has {kind} {ours} here and had {id} on the old machine ({file} kept \
                 as it is): files on the volume owned by {id} would belong to someone else; \
                 pin it in the configuration ({} = {id};)",
                if kind == "gid" {
                    format!("users.groups.{name}.gid")
                } else {
                    format!("users.users.{name}.uid")
                }
            )),
            None => match merged.iter().find(|&(_, &ours)| ours == id) {
                Some((other, _)) => plan.conflicts.push(format!(
                    "{name} had {kind} {id} on the old machine, which {other} has here ({file} \
                     kept as it is): {name} will get another id, and files on the volume owned \
                     by {id} belong to {other}"
                )),
                None => {
                    plan.ids_given_back.push(format!("{name}: {kind} {id}"));
                    merged.insert(name, id);
                    added = true;
                }
            },
        }
    }
    added
        .then(|| serde_json::to_string(&merged).map_err(io::Error::other))
        .transpose()
}

/// The machine's list with the old machine's names it lacks, when that adds any.
fn merge_list(saved: &Path, here: &Path) -> io::Result<Option<String>> {
    let mut merged: Vec<String> = read_json(here)?;
    let before = merged.len();
    for name in read_json::<Vec<String>>(saved)? {
        if !merged.contains(&name) {
            merged.push(name);
        }
    }
    (merged.len() > before)
        .then(|| serde_json::to_string(&merged).map_err(io::Error::other))
        .transpose()
}

/// Make the changes; a line for each. Stops at the first that fails, naming the path.
pub fn apply(plan: &Plan) -> Result<Vec<String>, (PathBuf, io::Error)> {
    let mut done = Vec::new();
    for change in &plan.changes {
        match change {
            Change::Put { from, to, aside } => {
                if let Some(aside) = aside {
                    move_aside(to, aside)?;
                    done.push(format!(
                        "moved this machine's {} aside to {}",
                        shown(to),
                        shown(aside)
                    ));
                }
                // Directories the machine lacks on the way are made as NixOS has them.
                copy_tree(from, to, 0o755)?;
                done.push(format!("restored {}", shown(to)));
            }
            Change::Merge { to, text, aside } => {
                if let Some(aside) = aside {
                    fs::copy(to, aside).map_err(|e| (aside.clone(), e))?;
                    done.push(format!(
                        "kept this machine's {} as {}",
                        shown(to),
                        shown(aside)
                    ));
                }
                write_atomic(to, text.as_bytes(), 0o644).map_err(|e| (to.clone(), e))?;
                done.push(format!("merged the old machine's ids into {}", shown(to)));
            }
        }
    }
    Ok(done)
}

fn move_aside(path: &Path, aside: &Path) -> Result<(), (PathBuf, io::Error)> {
    fs::rename(path, aside).map_err(|e| (path.to_path_buf(), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::SavedReason;
    use crate::steps::host_identity::digest::digest;

    fn entry(dir: &Path, path: &str, reason: SavedReason) -> CardSaved {
        let found = digest(&saved_path(dir, Path::new(path))).unwrap();
        CardSaved {
            path: path.into(),
            reason,
            files: found.files,
            bytes: found.bytes,
            sha256: found.sha256,
            fingerprint: None,
        }
    }

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn keys_replace_the_fresh_ones_which_are_moved_aside_and_ids_are_merged() {
        let saved = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let key = "/etc/ssh/ssh_host_ed25519_key";
        write(&saved_path(saved.path(), Path::new(key)), "old key");
        let ids = saved_path(saved.path(), Path::new("/var/lib/nixos"));
        write(
            &ids.join("uid-map"),
            r#"{"qwe":1000,"bob":1001,"eve":1002}"#,
        );
        write(&ids.join("declarative-users"), r#"["qwe","bob"]"#);
        write(&ids.join("gid-map"), r#"{"users":100}"#);
        let entries = [
            entry(saved.path(), key, SavedReason::HostKey),
            entry(saved.path(), "/var/lib/nixos", SavedReason::NixosIds),
        ];
        // The fresh machine: its own key, and ids of its own (eve got 1000 here).
        write(&on_machine(root.path(), Path::new(key)), "fresh key");
        let here = on_machine(root.path(), Path::new("/var/lib/nixos"));
        write(&here.join("uid-map"), r#"{"eve":1000}"#);
        write(&here.join("gid-map"), r#"{"users":100}"#);

        let plan = plan(root.path(), saved.path(), &entries).unwrap();
        assert_eq!(plan.ids_given_back, ["bob: uid 1001"]);
        assert_eq!(plan.conflicts.len(), 2, "{:?}", plan.conflicts);
        assert!(
            plan.conflicts
                .iter()
                .any(|c| c.starts_with("eve has uid 1000 here and had 1002"))
        );
        assert!(
            plan.conflicts
                .iter()
                .any(|c| c.starts_with("qwe had uid 1000 on the old machine, which eve has here"))
        );
        apply(&plan).unwrap();

        let key_here = on_machine(root.path(), Path::new(key));
        assert_eq!(fs::read_to_string(&key_here).unwrap(), "old key");
        let asides: Vec<String> = fs::read_dir(key_here.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("ssh_host_ed25519_key.before-lifeboat-"))
            .collect();
        assert_eq!(asides.len(), 1, "the fresh key moved aside");
        assert_eq!(
            fs::read_to_string(key_here.with_file_name(&asides[0])).unwrap(),
            "fresh key"
        );
        assert_eq!(
            fs::read_to_string(here.join("uid-map")).unwrap(),
            r#"{"bob":1001,"eve":1000}"#
        );
        assert_eq!(
            fs::read_to_string(here.join("declarative-users")).unwrap(),
            r#"["qwe","bob"]"#
        );

        // Run again: everything in place, nothing more to do.
        let again = super::plan(root.path(), saved.path(), &entries).unwrap();
        assert_eq!(again.changes, [], "{again:?}");
        assert_eq!(again.in_place, [PathBuf::from(key)]);
    }

    #[test]
    fn a_copy_that_is_not_what_was_saved_restores_nothing() {
        let saved = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let key = "/etc/ssh/ssh_host_ed25519_key";
        let copy = saved_path(saved.path(), Path::new(key));
        write(&copy, "old key");
        let entries = [entry(saved.path(), key, SavedReason::HostKey)];
        fs::write(&copy, "tampered").unwrap();
        let why = plan(root.path(), saved.path(), &entries).unwrap_err();
        assert!(why.contains("not what predestroy saved"), "{why}");
        assert!(why.contains("ssh_host_ed25519_key"), "{why}");
        assert!(!on_machine(root.path(), Path::new(key)).exists());
    }
}
