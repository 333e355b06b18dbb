//! The runner of `lifeboat predestroy`: prove it is safe to destroy this VPS, and fix what
//! can be fixed with one confirmation. Every check runs even after another failed, so the
//! verdict lists every blocker at once.

mod audit;
mod backup;
mod package_lists;
pub mod readiness;
mod rehearsal;
mod repo;
mod settings;

use std::fs;
use std::path::Path;

use crate::card::{
    CardNetwork, CardNixStore, CardRehearsal, CardRepository, CardSaved, CardStore, CardVolume,
    FORMAT, RecoveryCard, sheet,
};
use crate::config::Config;
use crate::escape::shown;
use crate::exec::atomic::{private_dir, write_atomic_owned};
use crate::exec::host::CURRENT_SYSTEM;
use crate::exec::mountinfo::MountEntry;
use crate::exec::netfacts;
use crate::exec::probe::{self, Contents};
use crate::exec::process::{self, CommandSpec};
use crate::flow::{Assent, Flow, Outcome, PredestroyStep};
use crate::marker::PersistenceMarker;
use crate::nixedit;
use crate::report::{Action, RunStatus};
use crate::summary::{Blocker, FlowDetails, PredestroyDetails, RootDiskGroup};

use super::context::{Change, StepContext, ask_before, skip_in_dry_run};
use super::identify::human_bytes;
use super::runner::FlowRunner;
use super::{host_identity, no_space, on_volume};

use settings::Settings;

/// State of one predestroy run.
pub struct PredestroyRunner {
    cfg: Config,
    settings: Result<Settings, String>,
    /// The running system's closure, measured by `package-lists`, for the card.
    store: Option<CardStore>,
    /// The nonce of the marker `persistence-marker` wrote, for the card.
    nonce: Option<String>,
    /// What `host-identity` saved, for the card.
    saved: Vec<CardSaved>,
    /// What `root-disk-audit` found on the root disk, for the summary.
    root_disk: Option<Vec<RootDiskGroup>>,
    /// What `rehearsal` proved, for the card.
    rehearsed: Option<CardRehearsal>,
}

impl PredestroyRunner {
    pub fn new(cfg: Config) -> PredestroyRunner {
        let settings = Settings::resolve(&cfg);
        PredestroyRunner {
            cfg,
            settings,
            store: None,
            nonce: None,
            saved: Vec::new(),
            root_disk: None,
            rehearsed: None,
        }
    }

    fn settings(&self) -> Result<&Settings, Outcome> {
        self.settings
            .as_ref()
            .map_err(|why| Outcome::Failed(why.clone()))
    }

    fn volume_dev(&self) -> Result<(&Settings, (u32, u32)), Outcome> {
        let settings = self.settings()?;
        let dev = on_volume::device_number(&settings.volume.device).map_err(Outcome::Failed)?;
        Ok((settings, dev))
    }

    fn nix_on_volume(&self, table: &[MountEntry]) -> Outcome {
        on_volume::store_on_volume(table, &self.cfg)
    }

    fn docker_on_volume(&self, table: &[MountEntry], ctx: &StepContext) -> Outcome {
        let Some(docker) = &self.cfg.docker else {
            return Outcome::Skipped("no [docker] is configured".into());
        };
        let (_, dev) = match self.volume_dev() {
            Ok(found) => found,
            Err(outcome) => return outcome,
        };
        let info = CommandSpec::new("docker", ["info", "--format", "{{.DockerRootDir}}"])
            .timeout(std::time::Duration::from_secs(20));
        let daemon_root = process::capture(&info, ctx.cancel)
            .ok()
            .filter(|(_, finished)| finished.status.success())
            .map(|(stdout, _)| String::from_utf8_lossy(&stdout).trim().to_string())
            .filter(|root| !root.is_empty());
        on_volume::docker_on_volume(
            table,
            &docker.data_root,
            daemon_root.as_deref().map(Path::new),
            dev,
        )
    }

    fn package_lists(&mut self, confirmed: bool, ctx: &StepContext) -> Outcome {
        let settings = match self.settings() {
            Ok(settings) => settings.clone(),
            Err(outcome) => return outcome,
        };
        let files = settings.lifeboat_dir();
        let change = format!(
            "save nix-env, home-manager and system package lists in {}",
            shown(&files)
        );
        if let Some(outcome) = ask_before(ctx, confirmed, &Change::new(&change, Assent::Key)) {
            return outcome;
        }
        let saved = package_lists::save(&settings, ctx);
        self.store = saved.store;
        saved.outcome
    }

    fn rehearsal(&mut self, ctx: &StepContext) -> Outcome {
        if let Some(skipped) = skip_in_dry_run(ctx, "clone the pushed branch and evaluate it") {
            return skipped;
        }
        let settings = match self.settings() {
            Ok(settings) => settings.clone(),
            Err(outcome) => return outcome,
        };
        let Some(url) = repo::clone_url(&self.cfg) else {
            return Outcome::Failed("the config repository has no remote URL".into());
        };
        let creds = super::credentials::for_repo(&self.cfg, Some(&settings.volume.mount));
        let (outcome, rehearsed) = rehearsal::run(&self.cfg, &settings, &url, &creds, ctx);
        self.rehearsed = rehearsed;
        outcome
    }

    fn host_identity(&mut self, confirmed: bool, ctx: &StepContext) -> Outcome {
        let settings = match self.settings() {
            Ok(settings) => settings.clone(),
            Err(outcome) => return outcome,
        };
        let saved_dir = settings.volume.mount.join(host_identity::SAVED_DIR);
        let carried = host_identity::carried(&self.cfg);
        let paths: Vec<String> = carried.iter().map(|c| shown(&c.path)).collect();
        let change = format!(
            "save {} into {} (readable by root alone)",
            paths.join(", "),
            shown(&saved_dir)
        );
        if let Some(outcome) = ask_before(ctx, confirmed, &Change::new(&change, Assent::Key)) {
            return outcome;
        }
        let saved = match host_identity::save::save(&self.cfg, &carried, &saved_dir) {
            Ok(saved) => saved,
            Err(failed) => {
                return Outcome::Failed(no_space::write_failed(
                    &failed.path,
                    &settings.volume.mount,
                    &failed.error,
                ));
            }
        };
        for entry in &saved.entries {
            ctx.output(format!(
                "saved {}: {} file(s), {}{}",
                shown(&entry.path),
                entry.files,
                human_bytes(entry.bytes),
                entry
                    .fingerprint
                    .as_ref()
                    .map(|f| format!(", host key {f}"))
                    .unwrap_or_default()
            ));
        }
        let keys = saved
            .entries
            .iter()
            .filter(|e| e.fingerprint.is_some())
            .count();
        let message = format!(
            "saved {} path(s) into {}: {keys} host key(s), {} in all",
            saved.entries.len(),
            shown(&saved_dir),
            human_bytes(saved.entries.iter().map(|e| e.bytes).sum())
        );
        self.saved = saved.entries;
        if saved.left_out.is_empty() {
            Outcome::Passed(message)
        } else {
            Outcome::Warning(format!("{message}; {}", saved.left_out.join("; ")))
        }
    }

    fn persistence_marker(&mut self, confirmed: bool, ctx: &StepContext) -> Outcome {
        let settings = match self.settings() {
            Ok(settings) => settings.clone(),
            Err(outcome) => return outcome,
        };
        let path = settings
            .volume
            .mount
            .join(PersistenceMarker::relative_path(&settings.user));
        let change = format!("write the marker {}", shown(&path));
        if let Some(outcome) = ask_before(ctx, confirmed, &Change::new(&change, Assent::Key)) {
            return outcome;
        }
        let written = PersistenceMarker::new(&crate::exec::host::hostname()).and_then(|marker| {
            let text = marker.to_toml().map_err(std::io::Error::other)?;
            private_dir(&settings.lifeboat_dir(), settings.owner())?;
            write_atomic_owned(&path, text.as_bytes(), 0o644, settings.owner())?;
            Ok(marker)
        });
        match written {
            Ok(marker) => {
                let message = format!("{} holds nonce {}", shown(&path), marker.nonce);
                self.nonce = Some(marker.nonce);
                Outcome::Passed(message)
            }
            Err(e) => Outcome::Failed(no_space::write_failed(&path, &settings.volume.mount, &e)),
        }
    }

    fn card(&self, settings: &Settings) -> Result<RecoveryCard, String> {
        let commit = repo::head(&self.cfg).ok_or("the config repository has no commit")?;
        let url = repo::remote_url(&self.cfg).ok_or("the config repository has no remote URL")?;
        let volumes = self
            .cfg
            .volumes
            .iter()
            .map(|v| {
                let uuid = match probe::probe_device(&v.device).map(|p| p.contents) {
                    Ok(Contents::Filesystem(fs)) => fs.uuid,
                    _ => String::new(),
                };
                CardVolume {
                    device: v.device.clone(),
                    uuid,
                    mount: v.mount.clone(),
                    fs_type: v.fs_type.clone(),
                }
            })
            .collect();
        Ok(RecoveryCard {
            format: FORMAT,
            written_at: jiff::Timestamp::now().to_string(),
            lifeboat_version: env!("CARGO_PKG_VERSION").into(),
            hostname: crate::exec::host::hostname(),
            nixos_version: fs::read_to_string(Path::new(CURRENT_SYSTEM).join("nixos-version"))
                .ok()
                .map(|v| v.trim().to_string()),
            user: settings.user.clone(),
            uid: settings.uid,
            repository: CardRepository {
                url,
                branch: self.cfg.config_repo.branch.clone(),
                commit,
                flake_host: self.cfg.config_repo.host(),
            },
            volumes,
            nix_store: CardNixStore {
                source: self.cfg.nix_store_source().unwrap_or_default(),
                target: self.cfg.nix_store.target.clone(),
            },
            store: self.store.clone(),
            persistence_nonce: self.nonce.clone(),
            saved: self.saved.clone(),
            lifeboat_store_path: std::env::current_exe()
                .ok()
                .and_then(|exe| sheet::own_store_path(&exe)),
            network: netfacts::read()
                .ok()
                .map(|facts| CardNetwork::of(&facts))
                .filter(|network| !network.addresses.is_empty()),
            rehearsal: self.rehearsed.clone(),
        })
    }

    fn recovery_card(&self, confirmed: bool, ctx: &StepContext) -> Outcome {
        let settings = match self.settings() {
            Ok(settings) => settings,
            Err(outcome) => return outcome,
        };
        let path = settings
            .volume
            .mount
            .join(RecoveryCard::relative_path(&settings.user));
        let change = format!(
            "write the recovery card {} and the recovery sheet {} beside it",
            shown(&path),
            sheet::FILE
        );
        if let Some(outcome) = ask_before(ctx, confirmed, &Change::new(&change, Assent::Key)) {
            return outcome;
        }
        let card = match self.card(settings) {
            Ok(card) => card,
            Err(why) => return Outcome::Failed(why),
        };
        let sheet_path = settings.lifeboat_dir().join(sheet::FILE);
        let written = card
            .to_toml()
            .map_err(std::io::Error::other)
            .and_then(|text| {
                private_dir(&settings.lifeboat_dir(), settings.owner())?;
                write_atomic_owned(&path, text.as_bytes(), 0o644, settings.owner())?;
                let sheet = sheet::sheet(&card, &self.cfg);
                write_atomic_owned(&sheet_path, sheet.as_bytes(), 0o644, settings.owner())
            });
        match written {
            Ok(()) => {
                let message = format!(
                    "{}: {} at {}, host {}",
                    shown(&path),
                    card.repository.url,
                    &card.repository.commit[..card.repository.commit.len().min(12)],
                    card.repository.flake_host
                );
                let pinned = card
                    .network
                    .as_ref()
                    .map(|network| pinned_addresses(&self.cfg, network))
                    .unwrap_or_default();
                if pinned.is_empty() {
                    Outcome::Passed(message)
                } else {
                    Outcome::Warning(format!(
                        "{message}; the configuration pins this server's addresses ({}): these \
                         addresses belong to this server; a new server gets new ones unless you \
                         keep its Primary IPs (turn off their auto-delete before destroying)",
                        pinned.join(", ")
                    ))
                }
            }
            Err(e) => Outcome::Failed(no_space::write_failed(&path, &settings.volume.mount, &e)),
        }
    }

    fn backup(&self, confirmed: bool, ctx: &StepContext) -> Outcome {
        let settings = match self.settings() {
            Ok(settings) => settings,
            Err(outcome) => return outcome,
        };
        let Some(target) = self.cfg.backup.as_ref().map(|b| b.rsync_target.as_str()) else {
            return Outcome::Warning(format!(
                "no [backup].rsync_target: the volume is the only copy of {}; a deleted or \
                 damaged volume loses it",
                shown(&settings.home)
            ));
        };
        let command = backup::command(settings, target);
        let change = format!("run {}", process::shown_argv(command.argv()));
        if let Some(outcome) = ask_before(ctx, confirmed, &Change::new(&change, Assent::Key)) {
            return outcome;
        }
        backup::run(settings, target, ctx)
    }

    fn planned_actions(&self, step: PredestroyStep) -> Vec<Action> {
        let settings = self.settings.as_ref().ok();
        let write = |rel: std::path::PathBuf| {
            settings
                .map(|s| Action::Write {
                    path: shown(&s.volume.mount.join(rel)),
                })
                .into_iter()
                .collect()
        };
        match (step, settings) {
            (PredestroyStep::ConfigRepoCommitted, _) => repo::plan_commit(&self.cfg),
            (PredestroyStep::ConfigRepoPushed, _) => repo::plan_push(&self.cfg),
            (PredestroyStep::ConfigMirror, _) => repo::plan_mirror(&self.cfg, settings),
            (PredestroyStep::PackageLists, Some(s)) => package_lists::plan(s),
            (PredestroyStep::HostIdentity, Some(s)) => {
                let saved_dir = s.volume.mount.join(host_identity::SAVED_DIR);
                host_identity::carried(&self.cfg)
                    .iter()
                    .map(|c| Action::Write {
                        path: shown(&host_identity::saved_path(&saved_dir, &c.path)),
                    })
                    .collect()
            }
            (PredestroyStep::PersistenceMarker, Some(s)) => {
                write(PersistenceMarker::relative_path(&s.user))
            }
            (PredestroyStep::RecoveryCard, Some(s)) => {
                let card = RecoveryCard::relative_path(&s.user);
                let sheet = card.with_file_name(sheet::FILE);
                [write(card), write(sheet)].concat()
            }
            (PredestroyStep::Backup, Some(s)) => self
                .cfg
                .backup
                .as_ref()
                .map(|b| backup::command(s, &b.rsync_target).describe())
                .into_iter()
                .collect(),
            (PredestroyStep::Rehearsal, _) => repo::clone_url(&self.cfg)
                .map(|url| rehearsal::actions(&self.cfg, &url))
                .unwrap_or_default(),
            // Checks change nothing; the writes need to know the volume.
            (
                PredestroyStep::HomeOnVolume
                | PredestroyStep::NixOnVolume
                | PredestroyStep::DockerOnVolume
                | PredestroyStep::RootDiskAudit,
                _,
            )
            | (
                PredestroyStep::PackageLists
                | PredestroyStep::HostIdentity
                | PredestroyStep::PersistenceMarker
                | PredestroyStep::RecoveryCard
                | PredestroyStep::Backup,
                None,
            ) => Vec::new(),
        }
    }
}

/// Where the repository sets one of `network`'s addresses as a string (`networking.nix` as
/// nixos-infect writes it): `<address> at <file>:<line>`.
fn pinned_addresses(cfg: &Config, network: &CardNetwork) -> Vec<String> {
    let sources = nixedit::Sources::read(&cfg.config_repo.path);
    network
        .ips()
        .iter()
        .filter_map(|ip| {
            let needle = ip.to_string();
            let (file, line) = sources.find_string(&needle, true)?;
            Some(format!("{needle} at {}:{line}", shown(file)))
        })
        .collect()
}

/// The steps that stand between this machine and "ready", with why.
fn blockers(flow: &Flow) -> Vec<Blocker> {
    flow.steps
        .iter()
        .filter(|step| step.state.blocks())
        .map(|step| Blocker {
            step: step.def.id.as_str(),
            why: step.state.message(),
            not_done: step.state.not_done(),
        })
        .collect()
}

impl FlowRunner for PredestroyRunner {
    type Step = PredestroyStep;

    fn actions(&self, step: PredestroyStep) -> Vec<Action> {
        self.planned_actions(step)
    }

    fn run(&mut self, step: PredestroyStep, confirmed: bool, ctx: &StepContext) -> Outcome {
        let settings = self.settings.as_ref().ok().cloned();
        match step {
            PredestroyStep::ConfigRepoCommitted => {
                repo::committed(&self.cfg, settings.as_ref(), confirmed, ctx)
            }
            PredestroyStep::ConfigRepoPushed => {
                let root = settings.as_ref().map(|s| s.volume.mount.as_path());
                let creds = super::credentials::for_repo(&self.cfg, root);
                repo::pushed(&self.cfg, &creds, confirmed, ctx)
            }
            PredestroyStep::Rehearsal => self.rehearsal(ctx),
            PredestroyStep::HomeOnVolume => match on_volume::mount_table() {
                Ok(table) => on_volume::all_volumes_mounted(&table, &self.cfg.volumes),
                Err(outcome) => outcome,
            },
            PredestroyStep::NixOnVolume => match on_volume::mount_table() {
                Ok(table) => self.nix_on_volume(&table),
                Err(outcome) => outcome,
            },
            PredestroyStep::DockerOnVolume => match on_volume::mount_table() {
                Ok(table) => self.docker_on_volume(&table, ctx),
                Err(outcome) => outcome,
            },
            PredestroyStep::RootDiskAudit => match audit::audit(&self.cfg, ctx) {
                Ok(found) => {
                    self.root_disk = Some(found.groups);
                    found.outcome
                }
                Err(outcome) => outcome,
            },
            PredestroyStep::ConfigMirror => match self.settings() {
                Ok(settings) => repo::mirror(&self.cfg, settings, confirmed, ctx),
                Err(outcome) => outcome,
            },
            PredestroyStep::PackageLists => self.package_lists(confirmed, ctx),
            PredestroyStep::HostIdentity => self.host_identity(confirmed, ctx),
            PredestroyStep::PersistenceMarker => self.persistence_marker(confirmed, ctx),
            PredestroyStep::RecoveryCard => self.recovery_card(confirmed, ctx),
            PredestroyStep::Backup => self.backup(confirmed, ctx),
        }
    }

    fn details(&self, flow: &Flow) -> FlowDetails {
        FlowDetails::Predestroy(PredestroyDetails {
            blockers: blockers(flow),
            ready: flow.result() == Some(RunStatus::Passed),
            root_disk: self.root_disk.clone(),
        })
    }

    fn human_summary(&self, flow: &Flow) -> Vec<String> {
        let blockers = blockers(flow);
        if flow.result() == Some(RunStatus::Passed) {
            return vec![
                "READY    this VPS can be destroyed: the config is in the remote and everything \
                 else that matters is on the volume. Keep the volume (hcloud volume \
                 enable-protection VOLUME delete)."
                    .into(),
            ];
        }
        let mut lines = vec![format!("NOT READY  {} blocker(s):", blockers.len())];
        lines.extend(
            blockers
                .into_iter()
                .map(|b| format!("  {}: {}", b.step, b.why)),
        );
        lines
    }
}
