//! The runner of `lifeboat recover`: rebuild this fresh VPS from the volume and the git
//! remote, and prove it will boot before rebooting. Every change is confirmed first, and
//! every step is safe to run again, so an interrupted run is finished by running it again.

mod boot_safety;
mod clone;
mod hardware;
mod preflight;
mod rebuild;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::card::{self, RecoveryCard};
use crate::config::Config;
use crate::escape::shown;
use crate::exec::git::{self, Credentials};
use crate::exec::mount;
use crate::exec::probe::{self, DeviceProbe};
use crate::exec::process::{self, CommandSpec};
use crate::flow::{Assent, Flow, Outcome, Question};
use crate::report::Action;

use super::credentials;
use super::find_volume::{self, FoundVolume};
use super::identify;
use super::layout::{self, Expectations};
use super::on_volume;
use super::readonly_mount::{self, VolumeView};
use super::{CURRENT_SYSTEM, Runner, StepContext, ask_before};

use boot_safety::{Attached, Verdict};
use clone::{Pending, Target};

/// State of one recover run.
pub struct RecoverRunner {
    cfg: Config,
    found: Option<FoundVolume>,
    probe: Option<DeviceProbe>,
    view: Option<VolumeView>,
    /// Where the volume was read, for the mirror and the key while it is mounted.
    volume_root: Option<PathBuf>,
    owner_uid: Option<u32>,
    card: Option<RecoveryCard>,
    creds: Credentials,
    clone_pending: Option<Pending>,
    hardware: Option<hardware::Generated>,
    rewrite: Option<boot_safety::Rewrite>,
    system: Option<PathBuf>,
}

impl RecoverRunner {
    pub fn new(cfg: Config) -> RecoverRunner {
        let creds = credentials::for_repo(&cfg, None);
        RecoverRunner {
            cfg,
            found: None,
            probe: None,
            view: None,
            volume_root: None,
            owner_uid: None,
            card: None,
            creds,
            clone_pending: None,
            hardware: None,
            rewrite: None,
            system: None,
        }
    }

    fn host(&self) -> String {
        self.cfg
            .config_repo
            .flake_host
            .clone()
            .unwrap_or_else(crate::exec::host::hostname)
    }

    fn find(&mut self, ctx: &StepContext) -> Outcome {
        match find_volume::find_volume_step(&self.cfg, None, ctx) {
            Ok((found, message)) => {
                self.found = Some(found);
                Outcome::Passed(message)
            }
            Err(outcome) => outcome,
        }
    }

    fn inspect(&mut self, ctx: &StepContext) -> Outcome {
        let Some(found) = self.found.clone() else {
            return Outcome::Failed("no volume was found".into());
        };
        let (probe, identity) = match identify::identify(&found) {
            Ok(found) => found,
            Err(outcome) => return outcome,
        };
        let mountpoint = self.cfg.inspect.mountpoint.clone();
        let (view, mounted) =
            match readonly_mount::open_view(&probe, found.expected_fs_type(), &mountpoint, ctx) {
                Ok(opened) => opened,
                Err(outcome) => return outcome,
            };
        let root = view.root.clone();
        self.probe = Some(probe);
        self.view = Some(view);
        self.volume_root = Some(root.clone());
        let mut notes = Vec::new();
        if let Some(path) = card::locate(&root, self.cfg.user.as_deref()) {
            match RecoveryCard::load(&path) {
                Ok(card) => {
                    let (filled, disagreements) = card::fill_config(&self.cfg, &card);
                    notes.extend(disagreements);
                    ctx.output(format!(
                        "recovery card {}: {} ({}), host {}, written {} on {}",
                        shown(&path),
                        card.repository.url,
                        card.repository.branch,
                        card.repository.flake_host,
                        card.written_at,
                        card.hostname
                    ));
                    self.cfg = filled;
                    self.card = Some(card);
                }
                Err(e) => notes.push(e.to_string()),
            }
        }
        let report = layout::check(
            &root,
            &Expectations {
                user: self.cfg.user.clone(),
                uid: None,
                nix_dir: None,
                docker_dir: None,
            },
        );
        for problem in report.problems() {
            notes.push(format!("{} {}", problem.path, problem.detail));
        }
        if self.cfg.user.is_none() {
            self.cfg.user = report.user.clone();
        }
        if let Some(user) = &self.cfg.user {
            self.owner_uid = std::fs::symlink_metadata(root.join(user))
                .ok()
                .map(|m| m.uid());
        }
        self.creds = credentials::for_repo(&self.cfg, Some(&root));
        let summary = format!("{}; {mounted}", identity_text(&identity));
        if notes.is_empty() {
            Outcome::Passed(summary)
        } else {
            Outcome::Warning(format!("{summary}; {}", notes.join("; ")))
        }
    }

    fn target(&self) -> Result<Target<'_>, Outcome> {
        let url = self.cfg.config_repo.url.as_deref().ok_or_else(|| {
            Outcome::Failed(
                "the repository URL is unknown: set [config_repo].url, or keep the recovery card \
                 (lifeboat predestroy writes it) on the volume"
                    .into(),
            )
        })?;
        let mirror = self
            .volume_root
            .as_ref()
            .zip(self.cfg.user.as_ref())
            .map(|(root, user)| root.join(user).join(credentials::MIRROR));
        Ok(Target {
            path: &self.cfg.config_repo.path,
            url,
            branch: &self.cfg.config_repo.branch,
            mirror,
            volume_root: self.volume_root.as_deref(),
        })
    }

    fn clone_config(&mut self, confirmed: bool, ctx: &StepContext) -> Outcome {
        let target = match self.target() {
            Ok(target) => target,
            Err(outcome) => return outcome,
        };
        if !confirmed {
            if ctx.dry_run {
                let question = clone::question(&target, &clone::plan(&target));
                return Outcome::Skipped(format!(
                    "dry run: would {}",
                    question.trim_end_matches('?')
                ));
            }
            return match clone::first_question(&target, &self.creds) {
                Ok((pending, question)) => {
                    self.clone_pending = Some(pending);
                    Outcome::NeedsConfirmation(question)
                }
                Err(outcome) => outcome,
            };
        }
        let Some(pending) = self.clone_pending.take() else {
            return Outcome::Failed("nothing was planned for the clone".into());
        };
        let mut creds = self.creds.clone();
        let target = match self.target() {
            Ok(target) => target,
            Err(outcome) => return outcome,
        };
        match clone::run(&target, pending, &mut creds, ctx) {
            Ok(outcome) => {
                self.creds = creds;
                outcome
            }
            Err(next) => {
                let question = clone::follow_up_question(&target, &next);
                self.clone_pending = Some(next);
                Outcome::NeedsConfirmation(question)
            }
        }
    }

    fn hardware_config(&mut self, confirmed: bool, ctx: &StepContext) -> Outcome {
        let repo = self.cfg.config_repo.path.clone();
        if confirmed {
            let Some(generated) = self.hardware.take() else {
                return Outcome::Failed("nothing was generated".into());
            };
            return match hardware::write(&repo, &generated) {
                Ok(message) => Outcome::Passed(message),
                Err(why) => Outcome::Failed(why),
            };
        }
        if let Some(outcome) = self.close_inspection_mount(ctx) {
            return outcome;
        }
        let uuid = self.volume_uuid();
        let generated = match hardware::generate(&self.cfg, uuid.as_deref(), ctx) {
            Ok(generated) => generated,
            Err(outcome) => return outcome,
        };
        let file = Path::new(hardware::FILE);
        let committed = git::committed(&repo, file)
            .ok()
            .flatten()
            .unwrap_or_default();
        ctx.diff(
            shown(&repo.join(file)),
            hardware::diff(&String::from_utf8_lossy(&committed), &generated.text),
        );
        let current = std::fs::read_to_string(repo.join(file)).ok();
        let staged = git::is_staged(&repo, file).unwrap_or(false);
        if current.as_deref() == Some(generated.text.as_str()) && staged {
            return Outcome::Passed(format!(
                "{} is up to date and staged",
                shown(&repo.join(file))
            ));
        }
        let dropped: Vec<String> = generated
            .dropped
            .iter()
            .map(|(p, why)| format!("{p} ({why})"))
            .collect();
        let question = Question::key(format!(
            "write {}{} and git add it (diff above)?",
            shown(&repo.join(file)),
            if dropped.is_empty() {
                String::new()
            } else {
                format!(" without fileSystems {}", dropped.join(", "))
            }
        ));
        if ctx.dry_run {
            return Outcome::Skipped(format!(
                "dry run: would {}",
                question.text.trim_end_matches('?')
            ));
        }
        self.hardware = Some(generated);
        Outcome::NeedsConfirmation(question)
    }

    /// `nixos-generate-config` turns every mount into a fileSystems entry: the inspection
    /// mount must be gone first.
    fn close_inspection_mount(&mut self, ctx: &StepContext) -> Option<Outcome> {
        let view = self.view.take()?;
        match readonly_mount::close_view(Some(view), ctx) {
            Outcome::Passed(message) | Outcome::Skipped(message) => {
                ctx.output(message);
                None
            }
            other => Some(other),
        }
    }

    fn volume_uuid(&self) -> Option<String> {
        match &self.probe.as_ref()?.contents {
            probe::Contents::Filesystem(fs) => Some(fs.uuid.clone()),
            _ => None,
        }
    }

    fn boot_safety(&mut self, confirmed: bool, ctx: &StepContext) -> Outcome {
        if confirmed && let Some(rewrite) = self.rewrite.take() {
            match boot_safety::apply(&self.cfg, &rewrite) {
                Ok(message) => ctx.output(message),
                Err(why) => return Outcome::Failed(why),
            }
        }
        let (Some(found), Some(probe)) = (&self.found, &self.probe) else {
            return Outcome::Failed("the volume was not identified".into());
        };
        let attached = Attached {
            path: &found.path,
            dev: probe.dev,
            owner_uid: self.owner_uid,
        };
        match boot_safety::check(&self.cfg, &self.host(), &attached, ctx) {
            Verdict::Safe(message) => Outcome::Passed(message),
            Verdict::EvalFailed(why) => Outcome::Failed(why),
            Verdict::Blocked(blockers) => Outcome::Refused(boot_safety::describe(&blockers)),
            Verdict::DeviceMoved(rewrite) => {
                let question = format!(
                    "the repository mounts {} from {}, which is not on this machine; the attached \
                     volume is {}. Rewrite the device in {} and commit?",
                    rewrite.mount,
                    rewrite.old,
                    rewrite.new,
                    shown(&rewrite.file)
                );
                if ctx.dry_run {
                    return Outcome::Skipped(format!("dry run: {question}"));
                }
                self.rewrite = Some(rewrite);
                Outcome::NeedsConfirmation(Question::key(question))
            }
        }
    }

    fn build(&mut self, ctx: &StepContext) -> Outcome {
        if ctx.dry_run {
            return Outcome::Skipped("dry run: would build".into());
        }
        match rebuild::build(&self.cfg, &self.host(), ctx) {
            Ok(system) => {
                let message = format!("built {}", shown(&system));
                self.system = Some(system);
                Outcome::Passed(message)
            }
            Err(outcome) => outcome,
        }
    }

    fn switch(&self, confirmed: bool, ctx: &StepContext) -> Outcome {
        let Some(system) = &self.system else {
            return Outcome::Failed("no system was built".into());
        };
        if rebuild::running(system) {
            return Outcome::Passed(format!("already running {}", shown(system)));
        }
        if !confirmed {
            return Outcome::NeedsConfirmation(Question::typed_hostname(format!(
                "switch this machine to {} ({})?",
                shown(system),
                process::shown_argv(rebuild::switch_command(&self.cfg, &self.host()).argv())
            )));
        }
        rebuild::switch(&self.cfg, &self.host(), ctx)
    }

    fn closure_on_volume(&self, confirmed: bool, ctx: &StepContext) -> Outcome {
        let Some(system) = &self.system else {
            return Outcome::Failed("no system was built".into());
        };
        let Some(source) = self.cfg.nix_store_source() else {
            return Outcome::Failed("[nix_store].source is unknown".into());
        };
        let (Some(volume), Some(probe)) = (self.cfg.volumes.first(), &self.probe) else {
            return Outcome::Failed("no volume is known".into());
        };
        let table = match probe::read_mountinfo() {
            Ok(table) => table,
            Err(e) => return Outcome::Failed(format!("cannot read the mount table: {e}")),
        };
        if let Outcome::Failed(why) = on_volume::home_on_volume(&table, volume, probe.dev) {
            return Outcome::Failed(format!(
                "after the switch the volume should be mounted, but: {why}"
            ));
        }
        let Some(name) = system.file_name() else {
            return Outcome::Failed(format!("{} is not a store path", shown(system)));
        };
        let on_volume = source.join("store").join(name);
        if on_volume.exists() {
            return Outcome::Passed(format!(
                "{} is in the volume's store, where /nix will be after the reboot",
                shown(system)
            ));
        }
        let Some(root) = source.parent().filter(|_| source.ends_with("nix")) else {
            return Outcome::Failed(format!(
                "[nix_store].source {} does not end in /nix, so nix copy cannot address it",
                shown(&source)
            ));
        };
        let change = format!(
            "copy the closure of {} into the volume's store, which becomes /nix after the \
             reboot ({})",
            shown(system),
            process::shown_argv(rebuild::copy_command(&self.cfg, root, system).argv())
        );
        if let Some(outcome) = ask_before(ctx, confirmed, &change, Assent::Key) {
            return outcome;
        }
        if let Err(outcome) = rebuild::copy(&self.cfg, root, &volume.mount, system, ctx) {
            return outcome;
        }
        if on_volume.exists() {
            Outcome::Passed(format!("copied {} into the volume's store", shown(system)))
        } else {
            Outcome::Failed(format!(
                "nix copy succeeded but {} is not there",
                shown(&on_volume)
            ))
        }
    }

    fn reboot_command(&self) -> CommandSpec {
        CommandSpec::from_prefix(&self.cfg.commands.reboot, Vec::<String>::new()).package("systemd")
    }

    fn reboot(&self, confirmed: bool, ctx: &StepContext) -> Outcome {
        let command = self.reboot_command();
        let change = format!(
            "reboot now ({}), then run `lifeboat verify` (or `lifeboat recover --resume`)",
            process::shown_argv(command.argv())
        );
        if let Some(outcome) = ask_before(ctx, confirmed, &change, Assent::TypedHostname) {
            return outcome;
        }
        if let Err(e) = ctx.journal.update(|j| j.verify_due = true) {
            return Outcome::Failed(format!("{e}: not rebooting without the journal"));
        }
        match ctx.run_streaming(
            &command,
            &mut super::each_line(ctx, |l| ctx.output(crate::escape::escape_bytes(l.bytes))),
        ) {
            Ok(finished) if finished.status.success() => Outcome::Passed(
                "rebooting: after it, run lifeboat verify (or lifeboat recover --resume)".into(),
            ),
            Ok(finished) => Outcome::Failed(format!(
                "the reboot command failed ({})",
                process::describe_status(finished.status)
            )),
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }

    fn planned_actions(&self, id: &str) -> Vec<Action> {
        let cfg = &self.cfg;
        let host = self.host();
        let url = cfg
            .config_repo
            .url
            .as_deref()
            .map_or_else(|| "(from the recovery card)".to_string(), git::redact_url);
        match id {
            "inspect-volume" => vec![Action::Mount {
                device: cfg.volumes.first().map_or_else(
                    || shown(&cfg.discovery.by_id_dir.join(&cfg.discovery.pattern)),
                    |v| shown(&v.device),
                ),
                target: shown(&cfg.inspect.mountpoint),
                options: mount::inspection_options(
                    cfg.volumes.first().map_or("ext4", |v| v.fs_type.as_str()),
                ),
            }],
            "clone-config" => match self.target() {
                Ok(target) => clone::actions(&target, &clone::plan(&target)),
                Err(_) => vec![Action::Git {
                    op: "clone".into(),
                    url,
                    path: shown(&cfg.config_repo.path),
                }],
            },
            "hardware-config" => vec![
                hardware::command(cfg).describe(),
                Action::Write {
                    path: shown(&cfg.config_repo.path.join(hardware::FILE)),
                },
            ],
            "boot-safety" => vec![
                boot_safety::eval_command(
                    cfg,
                    &format!("nixosConfigurations.{host}.config.fileSystems"),
                    None,
                )
                .describe(),
            ],
            "build" => vec![rebuild::action(&rebuild::build_command(cfg, &host))],
            "switch" => vec![rebuild::action(&rebuild::switch_command(cfg, &host))],
            "closure-on-volume" => cfg
                .nix_store_source()
                .and_then(|s| s.parent().map(Path::to_path_buf))
                .map(|root| {
                    rebuild::copy_command(cfg, &root, Path::new("/nix/store/<built system>"))
                        .describe()
                })
                .into_iter()
                .collect(),
            "reboot" => vec![self.reboot_command().describe()],
            _ => Vec::new(),
        }
    }
}

fn identity_text(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Passed(m) | Outcome::Warning(m) => m.clone(),
        _ => String::new(),
    }
}

impl Runner for RecoverRunner {
    fn actions(&self, id: &str) -> Vec<Action> {
        self.planned_actions(id)
    }

    fn run(&mut self, id: &'static str, confirmed: bool, ctx: &StepContext) -> Outcome {
        match id {
            "preflight" => preflight::check(&self.cfg, &self.creds),
            "find-volume" => self.find(ctx),
            "inspect-volume" => self.inspect(ctx),
            "clone-config" => self.clone_config(confirmed, ctx),
            "hardware-config" => self.hardware_config(confirmed, ctx),
            "boot-safety" => self.boot_safety(confirmed, ctx),
            "build" => self.build(ctx),
            "switch" => self.switch(confirmed, ctx),
            "closure-on-volume" => self.closure_on_volume(confirmed, ctx),
            "reboot" => self.reboot(confirmed, ctx),
            other => Outcome::Failed(format!("recover has no step {other}")),
        }
    }

    fn finish(&mut self, ctx: &StepContext) {
        if self.view.is_some() {
            match readonly_mount::close_view(self.view.take(), ctx) {
                Outcome::Passed(m) | Outcome::Skipped(m) | Outcome::Failed(m) => ctx.output(m),
                _ => {}
            }
        }
    }

    fn details(&self, _flow: &Flow) -> Map<String, Value> {
        let mut details = Map::new();
        details.insert("host".into(), json!(self.host()));
        details.insert(
            "system".into(),
            json!(self.system.as_ref().map(|s| shown(s))),
        );
        details.insert("recovery_card".into(), json!(self.card.is_some()));
        details.insert(
            "current_system".into(),
            json!(
                std::fs::canonicalize(CURRENT_SYSTEM)
                    .ok()
                    .map(|s| shown(&s))
            ),
        );
        details
    }

    fn human_summary(&self, _flow: &Flow) -> Vec<String> {
        let mut lines = vec![format!("Host    {}", self.host())];
        if let Some(system) = &self.system {
            lines.push(format!("System  {}", shown(system)));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Assent;
    use crate::steps::testing::with_context;

    /// Run `id` unconfirmed: how much agreeing to it takes.
    fn assent(runner: &mut RecoverRunner, id: &'static str) -> Assent {
        match with_context("recover", id, |ctx| runner.run(id, false, ctx)) {
            Outcome::NeedsConfirmation(question) => question.assent,
            other => panic!("{id} did not ask: {other:?}"),
        }
    }

    #[test]
    fn switching_and_rebooting_want_the_hostname_typed() {
        let mut runner = RecoverRunner::new(Config::default());
        runner.system = Some(PathBuf::from(
            "/nix/store/00000000000000000000000000000000-nixos-system-test",
        ));
        assert_eq!(assent(&mut runner, "switch"), Assent::TypedHostname);
        assert_eq!(assent(&mut runner, "reboot"), Assent::TypedHostname);
    }

    #[test]
    fn clone_config_wants_the_hostname_only_to_move_a_directory_aside() {
        let dir = tempfile::tempdir().unwrap();
        let existing = dir.path().join("nixos");
        std::fs::create_dir(&existing).unwrap();
        let mut cfg = Config::default();
        cfg.config_repo.url = Some(dir.path().join("nowhere.git").display().to_string());
        cfg.config_repo.path = existing;
        let mut runner = RecoverRunner::new(cfg.clone());
        assert_eq!(assent(&mut runner, "clone-config"), Assent::TypedHostname);
        cfg.config_repo.path = dir.path().join("absent");
        let mut runner = RecoverRunner::new(cfg);
        assert_eq!(assent(&mut runner, "clone-config"), Assent::Key);
    }
}
