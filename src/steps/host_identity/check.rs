//! verify's `host-identity`: after the reboot, the machine is the old one to its clients and
//! owns its data as before — each host key's fingerprint is the one the card recorded, each
//! carried path is back with the owner and mode of the saved copy, and the user's uid came
//! from the restored id map or the configuration.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::card::RecoveryCard;
use crate::escape::shown;
use crate::flow::Outcome;

use super::save::fingerprint;
use super::{Reason, mapped_uid, on_machine, saved_path};

/// Check the machine under `root` against `card`; `saved_dir` is the saved copies on the
/// volume, `owner` the uid that owns the user's home.
pub fn check(root: &Path, saved_dir: &Path, card: &RecoveryCard, owner: Option<u32>) -> Outcome {
    if card.saved.is_empty() {
        return Outcome::Warning(
            "the recovery card lists nothing saved from the old machine: its host keys and ids \
             were not carried"
                .into(),
        );
    }
    let mut problems = Vec::new();
    let mut keys = 0;
    for entry in &card.saved {
        let here = on_machine(root, &entry.path);
        match entry.reason {
            Reason::HostKey => {
                let Some(recorded) = &entry.fingerprint else {
                    continue;
                };
                let public = here.with_file_name(format!(
                    "{}.pub",
                    here.file_name().unwrap_or_default().to_string_lossy()
                ));
                match fingerprint(&public) {
                    Some(found) if found == *recorded => keys += 1,
                    Some(found) => problems.push(format!(
                        "the host key {} is {found}, not the old machine's {recorded}: clients \
                         will warn that the host identification changed, and secrets encrypted \
                         for the old key do not decrypt",
                        shown(&entry.path)
                    )),
                    None => problems.push(format!(
                        "the host key {} is missing (the old machine's was {recorded})",
                        shown(&entry.path)
                    )),
                }
            }
            Reason::Listed => {
                let saved = saved_path(saved_dir, &entry.path);
                match (fs::symlink_metadata(&here), fs::symlink_metadata(&saved)) {
                    (Ok(now), Ok(then))
                        if (now.uid(), now.gid(), now.mode())
                            != (then.uid(), then.gid(), then.mode()) =>
                    {
                        problems.push(format!(
                            "{} belongs to {}:{} mode {:o}, the old machine's to {}:{} mode {:o}",
                            shown(&entry.path),
                            now.uid(),
                            now.gid(),
                            now.mode() & 0o7777,
                            then.uid(),
                            then.gid(),
                            then.mode() & 0o7777
                        ));
                    }
                    (Err(e), _) => problems.push(format!(
                        "{} is not back ({e}): it was carried from the old machine",
                        shown(&entry.path)
                    )),
                    _ => {}
                }
            }
            Reason::NixosIds => {}
        }
    }
    let uid_source = uid_source(root, &card.user, owner);
    if problems.is_empty() {
        Outcome::Passed(format!(
            "{keys} host key(s) are the old machine's; the carried paths are back with their \
             owners; {uid_source}"
        ))
    } else {
        Outcome::Failed(format!("{}; {uid_source}", problems.join("; ")))
    }
}

/// Where the user's uid came from: the restored id map when it lists the home's owner.
fn uid_source(root: &Path, user: &str, owner: Option<u32>) -> String {
    match (mapped_uid(root, user), owner) {
        (Some(uid), Some(owner)) if uid == owner => {
            format!("{user}'s uid {uid} came from the restored id map")
        }
        (Some(uid), _) => format!(
            "the id map gives {user} uid {uid}, but the configuration pins another (owner-uid \
             says whether it owns the home)"
        ),
        (None, _) => format!("{user}'s uid is pinned by the configuration (not in the id map)"),
    }
}
