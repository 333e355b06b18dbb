//! The runner of `lifeboat recover`: rebuild this fresh VPS from the volume and the git
//! remote, and prove it will boot before rebooting. Every change is confirmed first, and
//! every step is safe to run again, so an interrupted run is finished by running it again.

pub(in crate::steps) mod blocker;
pub(in crate::steps) mod boot_safety;
mod clone;
mod closure;
pub(in crate::steps) mod hardware;
pub(in crate::steps) mod network;
mod preflight;
mod rebuild;
mod room;
pub(in crate::steps) mod secrets;
mod volume_mount;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::card::{self, CardError, RecoveryCard};
use crate::config::{Config, StorePlace};
use crate::escape::{escape_bytes, shown};
use crate::exec::git::{self, Credentials};
use crate::exec::host::CURRENT_SYSTEM;
use crate::exec::mount;
use crate::exec::probe::{self, DeviceProbe};
use crate::exec::process::{self, CommandSpec};
use crate::flow::{Assent, Flow, Outcome, RecoverStep};
use crate::nixlog::Transfers;
use crate::report::Action;
use crate::summary::{BuildReport, FlowDetails, RecoverDetails};

use super::context::{Change, StepContext, ask, ask_before, each_line, skip_in_dry_run};
use super::credentials;
use super::find_volume::{self, FoundVolume, Source};
use super::identify::{self, human_bytes};
use super::layout::{self, Expectations};
use super::on_volume;
use super::readonly_mount::{self, VolumeView};
use super::runner::FlowRunner;

use super::host_identity::{self, restore};
use super::volume_store::VolumeStore;
use boot_safety::{Attached, Verdict};
use clone::{Pending, Target};
use rebuild::Built;
use volume_mount::WritableMount;

/// State of one recover run.
pub struct RecoverRunner {
    cfg: Config,
    found: Option<FoundVolume>,
    probe: Option<DeviceProbe>,
    view: Option<VolumeView>,
    /// Where the volume was read, for the mirror and the key while it is mounted.
    volume_root: Option<PathBuf>,
    owner_uid: Option<u32>,
    /// How many keys the user's `~/.ssh/authorized_keys` on the volume holds.
    volume_keys: usize,
    card: Option<RecoveryCard>,
    /// What restore-host-identity asked to do, carried out once confirmed.
    identity_plan: Option<restore::Plan>,
    creds: Credentials,
    clone_pending: Option<Pending>,
    hardware: Option<hardware::Generated>,
    rewrite: Option<boot_safety::Rewrite>,
    /// The renumbering boot-safety asked about, applied once confirmed.
    renumber: Option<boot_safety::Renumber>,
    /// The private read-write mount of the volume that holds the Nix store.
    writable: Option<WritableMount>,
    /// Why Nix cannot use the volume's store, when it cannot.
    store_unusable: Option<String>,
    /// The system the volume's profile pointed at before this run: the old machine's.
    old_system: Option<PathBuf>,
    built: Option<Built>,
    /// What `closure-on-volume` copied into the volume's store.
    copied: Option<Transfers>,
    /// The volume's system profile generation that is the new system.
    generation: Option<u32>,
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
            volume_keys: 0,
            card: None,
            identity_plan: None,
            creds,
            clone_pending: None,
            hardware: None,
            rewrite: None,
            renumber: None,
            writable: None,
            store_unusable: None,
            old_system: None,
            built: None,
            copied: None,
            generation: None,
        }
    }

    fn host(&self) -> String {
        self.cfg.config_repo.host()
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
                // recover would write to the machine from it: refused, not skipped.
                Err(e @ CardError::Damaged { .. }) => return Outcome::Refused(e.to_string()),
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
            self.volume_keys = network::authorized_keys(&root.join(user));
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
                let plan = clone::plan(&target);
                return ask(
                    ctx,
                    &Change::new(clone::change(&target, &plan), Assent::Key),
                );
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
                let rehearsal = self.card.as_ref().and_then(|card| card.rehearsal.as_ref());
                clone::against_rehearsal(&self.cfg.config_repo.path, rehearsal, outcome)
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
        let change = Change::new(
            format!(
                "write {}{} and git add it (diff above)",
                shown(&repo.join(file)),
                if dropped.is_empty() {
                    String::new()
                } else {
                    format!(" without fileSystems {}", dropped.join(", "))
                }
            ),
            Assent::Key,
        );
        self.hardware = Some(generated);
        ask(ctx, &change)
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

    fn restore_host_identity(&mut self, confirmed: bool, ctx: &StepContext) -> Outcome {
        // Nothing saved is a loss to say, not a reason to stop: the machine comes up with
        // new host keys and ids, as without lifeboat.
        let Some(saved) = self.card.as_ref().map(|card| card.saved.clone()) else {
            return Outcome::Warning(
                "no recovery card: the old machine's host keys and ids are not restored; this \
                 machine keeps its own (clients will see a new host key)"
                    .into(),
            );
        };
        if saved.is_empty() {
            return Outcome::Warning(
                "the recovery card lists nothing saved from the old machine (a card from before \
                 predestroy saved the host identity): this machine keeps its own host keys and \
                 ids"
                .into(),
            );
        }
        let Some(root) = self.volume_root.clone() else {
            return Outcome::Failed("the volume is not mounted for inspection".into());
        };
        let saved_dir = root.join(host_identity::SAVED_DIR);
        // Confirmed, the plan the question showed is carried out (the same asides, and the
        // saved copies not hashed twice).
        let plan = match self.identity_plan.take().filter(|_| confirmed) {
            Some(plan) => plan,
            None => match restore::plan(&self.cfg.host.root, &saved_dir, &saved) {
                Ok(plan) => {
                    for conflict in &plan.conflicts {
                        ctx.output(conflict.clone());
                    }
                    plan
                }
                Err(why) => return Outcome::Failed(why),
            },
        };
        if plan.changes.is_empty() {
            return identity_summary(&plan, "the old machine's identity is in place");
        }
        let actions: Vec<String> = plan.actions().iter().map(Action::describe).collect();
        let change = format!(
            "put back the old machine's identity from {}: {}",
            shown(&saved_dir),
            actions.join("; ")
        );
        if let Some(outcome) = ask_before(ctx, confirmed, &Change::new(&change, Assent::Key)) {
            if let Outcome::NeedsConfirmation(_) = outcome {
                self.identity_plan = Some(plan);
            }
            return outcome;
        }
        match restore::apply(&plan) {
            Ok(done) => {
                for line in &done {
                    ctx.output(line.clone());
                }
                identity_summary(&plan, &format!("restored {} change(s)", plan.changes.len()))
            }
            Err((path, e)) => Outcome::Failed(format!(
                "cannot restore {}: {e}. What was restored before it stays (the machine's own \
                 files are beside it, .before-lifeboat-…); fix the cause and run recover again",
                shown(&path)
            )),
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
        if confirmed && let Some(renumber) = self.renumber.take() {
            match boot_safety::apply_renumber(&self.cfg, &renumber) {
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
            volume_keys: self.volume_keys,
            carried_keys: self
                .card
                .as_ref()
                .map(|card| secrets::CarriedKey::from_card(&card.saved))
                .unwrap_or_default(),
            old_server: self
                .card
                .as_ref()
                .and_then(|card| card.network.as_ref())
                .map(card::CardNetwork::ips)
                .unwrap_or_default(),
        };
        match boot_safety::check(&self.cfg, &self.host(), &attached, ctx) {
            Verdict::Safe(message, warnings) if warnings.is_empty() => Outcome::Passed(message),
            Verdict::Safe(message, warnings) => {
                Outcome::Warning(format!("{message}; but: {}", warnings.join("; ")))
            }
            Verdict::EvalFailed(why) => Outcome::Failed(why),
            Verdict::Blocked(blockers) => Outcome::Refused(blocker::describe(&blockers)),
            Verdict::DeviceMoved(rewrite) => {
                let change = Change::new(
                    format!("rewrite the device in {} and commit", shown(&rewrite.file)),
                    Assent::Key,
                )
                .because(format!(
                    "the repository mounts {} from {}, which is not on this machine; the attached \
                     volume is {}",
                    rewrite.mount, rewrite.old, rewrite.new
                ));
                self.rewrite = Some(rewrite);
                ask(ctx, &change)
            }
            Verdict::Renumber(renumber) => {
                ctx.diff(
                    shown(&renumber.file),
                    hardware::diff(&renumber.before, &renumber.after),
                );
                let change = Change::new(
                    format!(
                        "rewrite {} to this machine's addresses and MAC (the diff above) and commit",
                        shown(&renumber.file)
                    ),
                    Assent::Key,
                )
                .because(format!(
                    "the configuration still has another server's addresses: {}",
                    renumber.problems.join("; ")
                ))
                .then(
                    "(Or move the old server's Primary IPs to this server in the provider's \
                     console and run again.)",
                );
                self.renumber = Some(renumber);
                ask(ctx, &change)
            }
        }
    }

    /// The probe of the volume that holds the store: the one inspected, or (the store on a
    /// volume of its own) that one, identified the same way.
    fn store_probe(&self, place: &StorePlace) -> Result<DeviceProbe, Outcome> {
        let volume = place.volume();
        let probe = self
            .probe
            .as_ref()
            .ok_or_else(|| Outcome::Failed("the volume was not identified".into()))?;
        let same = on_volume::device_number(&volume.device).is_ok_and(|dev| dev == probe.dev);
        if same || self.cfg.volumes.len() <= 1 {
            return Ok(probe.clone());
        }
        let found = FoundVolume {
            path: volume.device.clone(),
            source: Source::Configured,
            volume: Some(volume.clone()),
        };
        identify::identify(&found).map(|(probe, _)| probe)
    }

    fn mount_volume(&mut self, confirmed: bool, ctx: &StepContext) -> Outcome {
        if let (Some(mount), Some(store)) = (&self.writable, self.mounted_store()) {
            return Outcome::Passed(format!(
                "the volume is mounted read-write at {}; its store is {}",
                shown(mount.root()),
                shown(&store.nix_dir)
            ));
        }
        let Some(place) = self.cfg.store_place() else {
            return Outcome::Failed(
                "where the Nix store lies on the volume is unknown: set user (the store is \
                 <volume>/<user>/nix) or [nix_store], or keep the recovery card on the volume"
                    .into(),
            );
        };
        let probe = match self.store_probe(&place) {
            Ok(probe) => probe,
            Err(outcome) => return outcome,
        };
        let fs_type = place.volume().fs_type.clone();
        let target = volume_mount::target(&self.cfg);
        let replay = match &probe.contents {
            probe::Contents::Filesystem(fs) if fs.needs_recovery => {
                "; its journal needs recovery, and this mount replays it (the inspection did \
                 not: it mounted without replaying)"
            }
            _ => "",
        };
        let change = format!(
            "mount the volume read-write at {} ({}), the first write to it: its store feeds \
             the build and takes the new system{replay}",
            shown(&target),
            volume_mount::command_text(&probe.resolved, &fs_type, &target)
        );
        if let Some(outcome) = ask_before(ctx, confirmed, &Change::new(&change, Assent::Key)) {
            return outcome;
        }
        let mount = match volume_mount::open(&probe, &fs_type, &target, ctx) {
            Ok(mount) => mount,
            Err(outcome) => return outcome,
        };
        let store = VolumeStore::new(place.nix_dir(&target));
        let mounted = format!(
            "mounted {} read-write at {}",
            shown(&probe.resolved),
            shown(mount.root())
        );
        self.writable = Some(mount);
        self.old_system = store.current_system();
        self.store_unusable = store.unusable();

        match &self.store_unusable {
            Some(why) => Outcome::Warning(format!(
                "{mounted}, but Nix cannot use the store on the volume: {why}. The build will \
                 download or build everything it needs"
            )),
            None => Outcome::Passed(format!(
                "{mounted}; the store {} feeds the build{}",
                shown(&store.nix_dir),
                self.old_system
                    .as_ref()
                    .map(|old| format!(" (its system profile: {})", shown(old)))
                    .unwrap_or_default()
            )),
        }
    }

    /// The volume's store, its files under the private mount `mount-volume` makes (the
    /// plan names it before the mount is there).
    fn volume_store(&self) -> Option<VolumeStore> {
        let place = self.cfg.store_place()?;
        Some(VolumeStore::new(
            place.nix_dir(&volume_mount::target(&self.cfg)),
        ))
    }

    /// The volume's store while it is mounted.
    fn mounted_store(&self) -> Option<VolumeStore> {
        self.writable.as_ref().and(self.volume_store())
    }

    /// The volume's store while it is mounted and Nix can use it.
    fn usable_store(&self) -> Option<VolumeStore> {
        self.mounted_store()
            .filter(|_| self.store_unusable.is_none())
    }

    fn build(&mut self, ctx: &StepContext) -> Outcome {
        if let Some(skipped) = skip_in_dry_run(ctx, "build") {
            return skipped;
        }
        let fetched = match (self.usable_store(), &self.old_system) {
            (Some(store), Some(old)) => {
                let closure = match room::check(&self.cfg, &store, old, ctx) {
                    Ok(closure) => closure,
                    Err(outcome) => return outcome,
                };
                match rebuild::fetch(&self.cfg, &store, old, closure.as_ref(), ctx) {
                    Ok(fetched) => fetched,
                    Err(outcome) => return outcome,
                }
            }
            _ => Transfers::default(),
        };
        let substituter = self.usable_store().map(|store| store.substituter());
        match rebuild::build(&self.cfg, &self.host(), substituter.as_deref(), ctx) {
            Ok(mut built) => {
                built.transfers = fetched + built.transfers;
                let message = format!(
                    "built {}: {}",
                    shown(&built.system),
                    describe_transfers(&built.transfers)
                );
                self.built = Some(built);
                match &self.store_unusable {
                    Some(why) => Outcome::Warning(format!(
                        "{message}; the store on the volume could not be used ({why})"
                    )),
                    None => Outcome::Passed(message),
                }
            }
            Err(Outcome::Failed(why)) => match &self.store_unusable {
                Some(unusable) => Outcome::Failed(format!(
                    "{why} The store on the volume could not be used ({unusable}), so what it \
                     holds had to be built or downloaded again"
                )),
                None => Outcome::Failed(why),
            },
            Err(outcome) => outcome,
        }
    }

    /// Is `system` a valid path of the volume's store (its whole closure there, as Nix
    /// keeps it)?
    fn in_volume_store(&self, store: &VolumeStore, system: &Path, ctx: &StepContext) -> bool {
        let spec = rebuild::validity_command(&self.cfg, store, system);
        ctx.run_streaming(&spec, &mut |_| {})
            .is_ok_and(|finished| finished.status.success())
    }

    fn closure_on_volume(&mut self, confirmed: bool, ctx: &StepContext) -> Outcome {
        let Some(system) = self.built.as_ref().map(|b| b.system.clone()) else {
            return Outcome::Failed("no system was built".into());
        };
        let (Some(store), Some(place)) = (self.mounted_store(), self.cfg.store_place()) else {
            return Outcome::Failed("the volume is not mounted read-write".into());
        };
        let volume = place.volume().clone();
        // Asked only unconfirmed: the confirmed run follows that look at once. `boot` looks
        // again before it installs anything, so a copy is trusted when `nix copy` says so.
        if !confirmed && self.store_unusable.is_none() && self.in_volume_store(&store, &system, ctx)
        {
            return Outcome::Passed(format!(
                "{} is in the volume's store, which becomes /nix after the reboot",
                shown(&system)
            ));
        }
        let change = format!(
            "copy the closure of {} into the volume's store, which becomes /nix after the \
             reboot ({})",
            shown(&system),
            process::shown_argv(rebuild::copy_command(&self.cfg, &store, &system).argv())
        );
        if let Some(outcome) = ask_before(ctx, confirmed, &Change::new(&change, Assent::Key)) {
            return outcome;
        }
        match rebuild::copy(&self.cfg, &store, &volume, &system, ctx) {
            Ok(copied) => {
                self.copied = Some(copied);
                Outcome::Passed(format!(
                    "copied {} into the volume's store: {} paths{}",
                    shown(&system),
                    copied.from_local.paths,
                    // Nix reports no bytes for small paths copied between local stores.
                    match copied.from_local.bytes {
                        0 => String::new(),
                        bytes => format!(", {}", human_bytes(bytes)),
                    }
                ))
            }
            Err(outcome) => outcome,
        }
    }

    /// What changes between the old machine's system and the new one, as
    /// `nix store diff-closures` says (both are in the volume's store by now).
    fn show_closure_diff(&self, store: &VolumeStore, new: &Path, ctx: &StepContext) {
        let Some(old) = &self.old_system else {
            ctx.output(
                "the volume's system profile names no earlier system: nothing to compare the \
                 new system with",
            );
            return;
        };
        let spec = rebuild::diff_closures_command(&self.cfg, store, old, new);
        match ctx.run_streaming(&spec, &mut |_| {}) {
            Ok(finished) if finished.status.success() => {
                let stdout = finished.stdout_captured.unwrap_or_default();
                let lines: Vec<String> = String::from_utf8_lossy(&stdout)
                    .lines()
                    .map(|l| escape_bytes(crate::nixlog::strip_ansi(l).as_bytes()))
                    .collect();
                let title = format!("{} → {}", shown(old), shown(new));
                if lines.is_empty() {
                    ctx.output(format!("{title}: no package changes"));
                } else {
                    ctx.diff(title, lines);
                }
            }
            Ok(finished) => ctx.output(format!(
                "the old and new systems could not be compared ({}): {}",
                process::describe_status(finished.status),
                finished.stderr_tail.last().cloned().unwrap_or_default()
            )),
            Err(e) => ctx.output(format!(
                "the old and new systems could not be compared: {e}"
            )),
        }
    }

    fn boot(&mut self, confirmed: bool, ctx: &StepContext) -> Outcome {
        let Some(system) = self.built.as_ref().map(|b| b.system.clone()) else {
            return Outcome::Failed("no system was built".into());
        };
        let Some(store) = self.mounted_store() else {
            return Outcome::Failed("the volume is not mounted read-write".into());
        };
        if !confirmed {
            self.show_closure_diff(&store, &system, ctx);
            let change = Change::new(
                format!(
                    "install {} as this machine's boot entry ({})",
                    shown(&system),
                    process::shown_argv(rebuild::boot_command(&self.cfg, &self.host()).argv())
                ),
                Assent::TypedHostname,
            )
            .then("Nothing is activated before the reboot");
            return ask(ctx, &change);
        }
        // The invariant: no boot entry whose system is missing from the volume's store.
        if !self.in_volume_store(&store, &system, ctx) {
            return Outcome::Failed(format!(
                "{} is not in the volume's store, and a boot entry for it would not boot: \
                 closure-on-volume must pass first",
                shown(&system)
            ));
        }
        let installed = rebuild::boot(&self.cfg, &self.host(), ctx);
        if !matches!(installed, Outcome::Passed(_)) {
            return installed;
        }
        match store.add_generation(&system) {
            Ok((number, written)) => {
                self.generation = Some(number);
                Outcome::Passed(format!(
                    "installed the boot entry for {}; it is generation {number} of the \
                     volume's system profile{}",
                    shown(&system),
                    if written { "" } else { " already" }
                ))
            }
            Err(e) => Outcome::Failed(format!(
                "installed the boot entry, but the volume's system profile {} could not be \
                 pointed at the new system: {e}. Run recover again before rebooting",
                shown(&store.nix_dir.join("var/nix/profiles/system"))
            )),
        }
    }

    /// Undo the private mount (before the reboot, and at the end of every run).
    fn close_writable_mount(&mut self, ctx: &StepContext) -> Result<(), String> {
        match self.writable.take() {
            Some(mount) => volume_mount::close(mount, ctx).map(|line| ctx.output(line)),
            None => Ok(()),
        }
    }

    fn reboot_command(&self) -> CommandSpec {
        CommandSpec::from_prefix(&self.cfg.commands.reboot, Vec::<String>::new()).package("systemd")
    }

    fn reboot(&mut self, confirmed: bool, ctx: &StepContext) -> Outcome {
        let command = self.reboot_command();
        let change = format!(
            "reboot now ({}), then run `lifeboat verify` (or `lifeboat recover --resume`)",
            process::shown_argv(command.argv())
        );
        if let Some(outcome) =
            ask_before(ctx, confirmed, &Change::new(&change, Assent::TypedHostname))
        {
            return outcome;
        }
        if let Err(why) = self.close_writable_mount(ctx) {
            return Outcome::Failed(format!("not rebooting: {why}"));
        }
        if let Err(e) = ctx.journal.update(|j| j.verify_due = true) {
            return Outcome::Failed(format!("{e}: not rebooting without the journal"));
        }
        match ctx.run_streaming(
            &command,
            &mut each_line(ctx, |l| ctx.output(crate::escape::escape_bytes(l.bytes))),
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

    fn planned_actions(&self, step: RecoverStep) -> Vec<Action> {
        let cfg = &self.cfg;
        let host = self.host();
        let url = cfg
            .config_repo
            .url
            .as_deref()
            .map_or_else(|| "(from the recovery card)".to_string(), git::redact_url);
        match step {
            RecoverStep::InspectVolume => vec![Action::Mount {
                device: cfg.volumes.first().map_or_else(
                    || shown(&cfg.discovery.by_id_dir.join(&cfg.discovery.pattern)),
                    |v| shown(&v.device),
                ),
                target: shown(&cfg.inspect.mountpoint),
                options: mount::inspection_options(
                    cfg.volumes.first().map_or("ext4", |v| v.fs_type.as_str()),
                ),
            }],
            // Known once the card is read: the saved paths, each written back.
            RecoverStep::RestoreHostIdentity => match &self.card {
                Some(card) => card
                    .saved
                    .iter()
                    .map(|saved| Action::Write {
                        path: shown(&host_identity::on_machine(&cfg.host.root, &saved.path)),
                    })
                    .collect(),
                None => vec![Action::Write {
                    path: "<each path the recovery card lists as saved>".into(),
                }],
            },
            RecoverStep::CloneConfig => match self.target() {
                Ok(target) => clone::actions(&target, &clone::plan(&target)),
                Err(_) => vec![Action::Git {
                    op: "clone".into(),
                    url,
                    path: shown(&cfg.config_repo.path),
                }],
            },
            RecoverStep::HardwareConfig => vec![
                hardware::command(cfg).describe(),
                Action::Write {
                    path: shown(&cfg.config_repo.path.join(hardware::FILE)),
                },
            ],
            RecoverStep::BootSafety => {
                vec![boot_safety::eval_command(cfg, &host, boot_safety::Depth::Facts).describe()]
            }
            RecoverStep::MountVolume => cfg
                .store_place()
                .map(|place| {
                    volume_mount::action(&place.volume().device, &volume_mount::target(cfg))
                })
                .into_iter()
                .collect(),
            RecoverStep::Build => {
                let store = self.volume_store();
                let substituter = store.as_ref().map(VolumeStore::substituter);
                // The old system is known once the volume is mounted; the copy is left out
                // when its profile names none or Nix cannot use its store.
                let fetch = store.as_ref().and_then(|store| {
                    let old = if self.writable.is_none() {
                        PathBuf::from("/nix/store/<the old system>")
                    } else {
                        self.old_system
                            .clone()
                            .filter(|_| self.store_unusable.is_none())?
                    };
                    Some(rebuild::fetch_command(cfg, store, &old).describe())
                });
                fetch
                    .into_iter()
                    .chain([rebuild::action(&rebuild::build_command(
                        cfg,
                        &host,
                        substituter.as_deref(),
                    ))])
                    .collect()
            }
            RecoverStep::ClosureOnVolume => self
                .volume_store()
                .map(|store| {
                    let system = self.built.as_ref().map_or_else(
                        || PathBuf::from("/nix/store/<built system>"),
                        |b| b.system.clone(),
                    );
                    rebuild::copy_command(cfg, &store, &system).describe()
                })
                .into_iter()
                .collect(),
            RecoverStep::Boot => vec![rebuild::action(&rebuild::boot_command(cfg, &host))],
            RecoverStep::Reboot => vec![self.reboot_command().describe()],
            // Looking changes nothing.
            RecoverStep::Preflight | RecoverStep::FindVolume => Vec::new(),
        }
    }
}

/// What a build took from where, as the summary gives it.
fn build_report(t: &Transfers) -> BuildReport {
    BuildReport {
        from_volume: t.from_local,
        built: t.built,
        downloaded: t.downloaded,
    }
}

/// "12 paths from the volume's store (3.4 MiB), 2 derivations built, 0 paths downloaded".
fn describe_transfers(t: &Transfers) -> String {
    format!(
        "{} paths from the volume's store ({}), {} derivations built, {} paths downloaded ({})",
        t.from_local.paths,
        human_bytes(t.from_local.bytes),
        t.built,
        t.downloaded.paths,
        human_bytes(t.downloaded.bytes)
    )
}

/// restore-host-identity's verdict: what it did (`done`), what was in place, the ids it gave
/// back, and a warning when a name has another id here.
fn identity_summary(plan: &restore::Plan, done: &str) -> Outcome {
    let mut message = format!(
        "{done}; {} path(s) were in place already",
        plan.in_place.len()
    );
    if !plan.ids_given_back.is_empty() {
        message.push_str(&format!(
            "; ids given back: {}",
            plan.ids_given_back.join(", ")
        ));
    }
    match plan.conflicts.len() {
        0 => Outcome::Passed(message),
        n => Outcome::Warning(format!(
            "{message}; {n} name(s) have another id here (above)"
        )),
    }
}

fn identity_text(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Passed(m) | Outcome::Warning(m) => m.clone(),
        _ => String::new(),
    }
}

impl FlowRunner for RecoverRunner {
    type Step = RecoverStep;

    fn actions(&self, step: RecoverStep) -> Vec<Action> {
        self.planned_actions(step)
    }

    fn run(&mut self, step: RecoverStep, confirmed: bool, ctx: &StepContext) -> Outcome {
        match step {
            RecoverStep::Preflight => preflight::check(&self.cfg, &self.creds),
            RecoverStep::FindVolume => self.find(ctx),
            RecoverStep::InspectVolume => self.inspect(ctx),
            RecoverStep::RestoreHostIdentity => self.restore_host_identity(confirmed, ctx),
            RecoverStep::CloneConfig => self.clone_config(confirmed, ctx),
            RecoverStep::HardwareConfig => self.hardware_config(confirmed, ctx),
            RecoverStep::BootSafety => self.boot_safety(confirmed, ctx),
            RecoverStep::MountVolume => self.mount_volume(confirmed, ctx),
            RecoverStep::Build => self.build(ctx),
            RecoverStep::ClosureOnVolume => self.closure_on_volume(confirmed, ctx),
            RecoverStep::Boot => self.boot(confirmed, ctx),
            RecoverStep::Reboot => self.reboot(confirmed, ctx),
        }
    }

    fn clean_up(&mut self, ctx: &StepContext) {
        if self.view.is_some() {
            match readonly_mount::close_view(self.view.take(), ctx) {
                Outcome::Passed(m) | Outcome::Skipped(m) | Outcome::Failed(m) => ctx.output(m),
                _ => {}
            }
        }
        if let Err(why) = self.close_writable_mount(ctx) {
            ctx.output(why);
        }
    }

    fn details(&self, _flow: &Flow) -> FlowDetails {
        FlowDetails::Recover(RecoverDetails {
            build: self.built.as_ref().map(|b| build_report(&b.transfers)),
            copied_to_volume: self.copied.map(|c| c.from_local),
            current_system: std::fs::canonicalize(CURRENT_SYSTEM)
                .ok()
                .map(|s| shown(&s)),
            generation: self.generation,
            host: self.host(),
            old_system: self.old_system.as_ref().map(|s| shown(s)),
            recovery_card: self.card.is_some(),
            system: self.built.as_ref().map(|b| shown(&b.system)),
        })
    }

    fn human_summary(&self, _flow: &Flow) -> Vec<String> {
        let mut lines = vec![format!("Host    {}", self.host())];
        if let Some(built) = &self.built {
            lines.push(format!("System  {}", shown(&built.system)));
            lines.push(format!("Build   {}", describe_transfers(&built.transfers)));
        }
        if let Some(generation) = self.generation {
            lines.push(format!(
                "Profile generation {generation} of the volume's system profile"
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{Assent, StepId};
    use crate::steps::testing::with_context;

    /// Run `step` unconfirmed: how much agreeing to it takes.
    fn assent(runner: &mut RecoverRunner, step: RecoverStep) -> Assent {
        let outcome = with_context(StepId::Recover(step), |ctx| {
            FlowRunner::run(runner, step, false, ctx)
        });
        match outcome {
            Outcome::NeedsConfirmation(question) => question.assent,
            other => panic!("{step:?} did not ask: {other:?}"),
        }
    }

    #[test]
    fn rebooting_wants_the_hostname_typed() {
        let mut runner = RecoverRunner::new(Config::default());
        assert_eq!(
            assent(&mut runner, RecoverStep::Reboot),
            Assent::TypedHostname
        );
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
        assert_eq!(
            assent(&mut runner, RecoverStep::CloneConfig),
            Assent::TypedHostname
        );
        cfg.config_repo.path = dir.path().join("absent");
        let mut runner = RecoverRunner::new(cfg);
        assert_eq!(assent(&mut runner, RecoverStep::CloneConfig), Assent::Key);
    }
}
