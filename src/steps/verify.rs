//! The runner of `lifeboat verify`: after the reboot, `/home` and `/nix` come from the
//! volume, the home belongs to the user's uid, the persistence marker is intact, the
//! running system is in the volume's store and the newest generation of its profile. Without a config it takes what it needs from
//! the recovery card on the volume.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::card::{self, RecoveryCard};
use crate::config::Config;
use crate::escape::shown;
use crate::exec::host::CURRENT_SYSTEM;
use crate::exec::mountinfo::MountEntry;
use crate::flow::{Flow, Outcome, VerifyStep};
use crate::marker::PersistenceMarker;
use crate::report::Action;
use crate::summary::{FlowDetails, VerifyDetails};

use super::context::StepContext;
use super::runner::FlowRunner;
use super::{generations, host_identity, on_volume};

/// State of one verify run.
pub struct VerifyRunner {
    cfg: Config,
    card: Option<(PathBuf, RecoveryCard)>,
    /// Why the card could not be used, or where card and config disagree.
    notes: Vec<String>,
}

impl VerifyRunner {
    /// Complete `cfg` from the recovery card on the volume, when there is one.
    pub fn new(cfg: Config) -> VerifyRunner {
        let root = cfg
            .volumes
            .first()
            .map_or_else(|| PathBuf::from("/home"), |v| v.mount.clone());
        let mut notes = Vec::new();
        let card = match card::locate(&root, cfg.user.as_deref()) {
            None => {
                notes.push(format!("no recovery card under {}", shown(&root)));
                None
            }
            Some(path) => match RecoveryCard::load(&path) {
                Ok(card) => Some((path, card)),
                Err(e) => {
                    notes.push(e.to_string());
                    None
                }
            },
        };
        let cfg = match &card {
            Some((_, card)) => {
                let (filled, disagreements) = card::fill_config(&cfg, card);
                notes.extend(disagreements);
                filled
            }
            None => cfg,
        };
        VerifyRunner { cfg, card, notes }
    }

    fn home_mounted(&self, table: &[MountEntry], ctx: &StepContext) -> Outcome {
        for note in &self.notes {
            ctx.output(note.clone());
        }
        on_volume::all_volumes_mounted(table, &self.cfg.volumes)
    }

    fn nix_bound(&self, table: &[MountEntry]) -> Outcome {
        on_volume::store_on_volume(table, &self.cfg)
    }

    /// The user's home on the volume, when user and volume are known.
    fn home(&self) -> Result<(String, PathBuf), Outcome> {
        let user =
            self.cfg.user.clone().ok_or_else(|| {
                Outcome::Failed("the user is unknown: set user in the config".into())
            })?;
        let volume = self
            .cfg
            .volumes
            .first()
            .ok_or_else(|| Outcome::Failed("no volume is known".into()))?;
        let home = volume.mount.join(&user);
        Ok((user, home))
    }

    fn owner_uid(&self) -> Outcome {
        let (user, home) = match self.home() {
            Ok(found) => found,
            Err(outcome) => return outcome,
        };
        let owner = match fs::symlink_metadata(&home) {
            Ok(meta) => meta.uid(),
            Err(e) => return Outcome::Failed(format!("{}: {e}", shown(&home))),
        };
        let system_uid = match nix::unistd::User::from_name(&user) {
            Ok(Some(entry)) => entry.uid.as_raw(),
            Ok(None) => {
                return Outcome::Failed(format!(
                    "this system has no user {user}: add users.users.{user} to the NixOS config"
                ));
            }
            Err(e) => return Outcome::Failed(format!("cannot look up user {user}: {e}")),
        };
        if owner != system_uid {
            return Outcome::Failed(format!(
                "{} belongs to uid {owner}, but this system gives {user} uid {system_uid}: the \
                 data belongs to someone else now. Set users.users.{user}.uid = {owner}; and \
                 rebuild (or chown -R {user} {}).",
                shown(&home),
                shown(&home)
            ));
        }
        Outcome::Passed(format!("{} belongs to {user} (uid {owner})", shown(&home)))
    }

    fn host_identity(&self) -> Outcome {
        let Some((_, card)) = &self.card else {
            return Outcome::Warning(
                "no recovery card: nothing records the old machine's identity to compare".into(),
            );
        };
        let (_, home) = match self.home() {
            Ok(found) => found,
            Err(outcome) => return outcome,
        };
        let Some(volume) = self.cfg.volumes.first() else {
            return Outcome::Failed("no volume is known".into());
        };
        let owner = fs::symlink_metadata(&home).ok().map(|meta| meta.uid());
        host_identity::check::check(
            &self.cfg.host.root,
            &volume.mount.join(host_identity::SAVED_DIR),
            card,
            owner,
        )
    }

    fn persistence_marker(&self) -> Outcome {
        let (user, _) = match self.home() {
            Ok(found) => found,
            Err(outcome) => return outcome,
        };
        let Some(volume) = self.cfg.volumes.first() else {
            return Outcome::Failed("no volume is known".into());
        };
        let path = volume.mount.join(PersistenceMarker::relative_path(&user));
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                return Outcome::Failed(format!(
                    "the persistence marker {} cannot be read ({e}): this may not be the volume \
                     predestroy saw, or predestroy never ran",
                    shown(&path)
                ));
            }
        };
        let Some(marker) = PersistenceMarker::parse(&text) else {
            return Outcome::Failed(format!(
                "the persistence marker {} is damaged",
                shown(&path)
            ));
        };
        let expected = self
            .card
            .as_ref()
            .and_then(|(_, card)| card.persistence_nonce.clone());
        match expected {
            Some(nonce) if nonce == marker.nonce => Outcome::Passed(format!(
                "intact: written on {} at {}, nonce as recorded",
                marker.hostname, marker.written_at
            )),
            Some(nonce) => Outcome::Failed(format!(
                "the marker's nonce {} is not the one the recovery card recorded ({nonce}): the \
                 volume was changed or is another one",
                marker.nonce
            )),
            None => Outcome::Warning(format!(
                "present (written on {} at {}), but no recovery card records its nonce",
                marker.hostname, marker.written_at
            )),
        }
    }

    fn closure_on_volume(&self) -> Outcome {
        let Some(source) = self.cfg.store_place().map(|place| place.system_dir()) else {
            return Outcome::Failed("where the Nix store lies on the volumes is unknown".into());
        };
        let system = match fs::canonicalize(CURRENT_SYSTEM) {
            Ok(system) => system,
            Err(e) => {
                return Outcome::Failed(format!(
                    "{CURRENT_SYSTEM} cannot be resolved ({e}): is this a booted NixOS system?"
                ));
            }
        };
        let Some(name) = system.file_name() else {
            return Outcome::Failed(format!("{CURRENT_SYSTEM} points at {}", shown(&system)));
        };
        let on_volume = source.join("store").join(name);
        if fs::symlink_metadata(&on_volume).is_ok() {
            Outcome::Passed(format!("{} is in the volume's store", shown(&system)))
        } else {
            Outcome::Failed(format!(
                "the running system {} is not in the volume's store ({}): the next boot from \
                 the volume would not find it. Copy it: nix copy --no-check-sigs --to \
                 'local?root={}' {}",
                shown(&system),
                shown(&on_volume),
                shown(source.parent().unwrap_or(&source)),
                shown(&system)
            ))
        }
    }
}

impl FlowRunner for VerifyRunner {
    type Step = VerifyStep;

    fn actions(&self, step: VerifyStep) -> Vec<Action> {
        match step {
            VerifyStep::Generations => generations::actions(&self.cfg),
            // Checks that change nothing.
            VerifyStep::HomeMounted
            | VerifyStep::NixBound
            | VerifyStep::OwnerUid
            | VerifyStep::HostIdentity
            | VerifyStep::PersistenceMarker
            | VerifyStep::ClosureOnVolume => Vec::new(),
        }
    }

    fn run(&mut self, step: VerifyStep, confirmed: bool, ctx: &StepContext) -> Outcome {
        match step {
            VerifyStep::HomeMounted => match on_volume::mount_table() {
                Ok(table) => self.home_mounted(&table, ctx),
                Err(outcome) => outcome,
            },
            VerifyStep::NixBound => match on_volume::mount_table() {
                Ok(table) => self.nix_bound(&table),
                Err(outcome) => outcome,
            },
            VerifyStep::OwnerUid => self.owner_uid(),
            VerifyStep::HostIdentity => self.host_identity(),
            VerifyStep::PersistenceMarker => self.persistence_marker(),
            VerifyStep::ClosureOnVolume => self.closure_on_volume(),
            VerifyStep::Generations => generations::check(&self.cfg, confirmed, ctx),
        }
    }

    fn details(&self, _flow: &Flow) -> FlowDetails {
        FlowDetails::Verify(VerifyDetails {
            notes: self.notes.clone(),
            recovery_card: self.card.as_ref().map(|(path, _)| shown(path)),
            user: self.cfg.user.clone(),
        })
    }

    fn human_summary(&self, _flow: &Flow) -> Vec<String> {
        self.notes.iter().map(|n| format!("Note  {n}")).collect()
    }
}
