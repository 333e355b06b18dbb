//! The runner of `lifeboat inspect`: find, identify, mount read-only, check, measure,
//! unmount. Holds what each step learns for the next one.

use std::os::unix::fs::FileTypeExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::config::{Config, StorePlace};
use crate::escape::shown;
use crate::exec::host::space;
use crate::exec::mount;
use crate::exec::probe::{Contents, DeviceProbe};
use crate::flow::{Flow, InspectStep, Outcome};
use crate::report::Action;
use crate::summary::{FlowDetails, InspectDetails, TreeRow, VolumeSummary};

use super::context::StepContext;
use super::find_volume::{self, FoundVolume};
use super::identify::{self, human_bytes};
use super::layout::{self, Expectations, LayoutReport, Status};
use super::measure;
use super::readonly_mount::{self, VolumeView};
use super::runner::FlowRunner;

/// State of one inspect run.
pub struct InspectRunner {
    cfg: Config,
    device_arg: Option<PathBuf>,
    found: Option<FoundVolume>,
    probe: Option<DeviceProbe>,
    view: Option<VolumeView>,
    /// Where the volume was read, and whether in place; kept after `unmount`.
    read_at: Option<(PathBuf, bool)>,
    used_bytes: Option<u64>,
    layout: Option<LayoutReport>,
    tree: Option<Vec<TreeRow>>,
}

impl InspectRunner {
    pub fn new(cfg: Config, device_arg: Option<PathBuf>) -> InspectRunner {
        InspectRunner {
            cfg,
            device_arg,
            found: None,
            probe: None,
            view: None,
            read_at: None,
            used_bytes: None,
            layout: None,
            tree: None,
        }
    }

    /// The device found, for the journal (so `--resume` continues with it).
    pub fn device(&self) -> Option<&Path> {
        self.found.as_ref().map(|f| f.path.as_path())
    }

    fn find(&mut self, ctx: &StepContext) -> Outcome {
        match find_volume::find_volume_step(&self.cfg, self.device_arg.as_deref(), ctx) {
            Ok((found, message)) => {
                self.found = Some(found);
                Outcome::Passed(message)
            }
            Err(outcome) => outcome,
        }
    }

    fn identify(&mut self) -> Outcome {
        let Some(found) = &self.found else {
            return Outcome::Failed("no volume was found".into());
        };
        match identify::identify(found) {
            Ok((probe, outcome)) => {
                self.probe = Some(probe);
                outcome
            }
            Err(outcome) => outcome,
        }
    }

    fn mount(&mut self, ctx: &StepContext) -> Outcome {
        let (Some(found), Some(probe)) = (&self.found, &self.probe) else {
            return Outcome::Failed("the volume was not identified".into());
        };
        match readonly_mount::open_view(
            probe,
            found.expected_fs_type(),
            &self.cfg.inspect.mountpoint,
            ctx,
        ) {
            Ok((view, message)) => {
                self.used_bytes = space(&view.root).ok().map(|s| s.used);
                self.read_at = Some((view.root.clone(), view.in_place()));
                self.view = Some(view);
                Outcome::Passed(message)
            }
            Err(outcome) => outcome,
        }
    }

    fn check_layout(&mut self, ctx: &StepContext) -> Outcome {
        let (Some(view), Some(found)) = (&self.view, &self.found) else {
            return not_mounted(ctx);
        };
        let report = layout::check(&view.root, &self.expectations(found.system_mount()));
        let problems: Vec<String> = report
            .problems()
            .map(|c| format!("{} {}", c.path, c.detail))
            .collect();
        let found_count = report
            .checks
            .iter()
            .filter(|c| c.status == Status::Found)
            .count();
        self.layout = Some(report);
        if problems.is_empty() {
            Outcome::Passed(format!("{found_count} expected items found"))
        } else {
            Outcome::Warning(format!(
                "{} item(s) need attention: {}",
                problems.len(),
                problems.join("; ")
            ))
        }
    }

    fn expectations(&self, system_mount: &Path) -> Expectations {
        let on_volume = |path: &Path| path.strip_prefix(system_mount).ok().map(Path::to_path_buf);
        Expectations {
            user: self.cfg.user.clone(),
            uid: self.cfg.uid,
            nix_dir: match self.cfg.store_place() {
                // The store is a volume of its own: nothing of it on this one.
                Some(StorePlace::OwnVolume { .. }) => None,
                _ => self.cfg.nix_store_source().as_deref().and_then(on_volume),
            },
            docker_dir: self
                .cfg
                .docker
                .as_ref()
                .map(|d| on_volume(&d.data_root).ok_or_else(|| d.data_root.clone())),
        }
    }

    fn measure(&mut self, ctx: &StepContext) -> Outcome {
        let Some(view) = &self.view else {
            return not_mounted(ctx);
        };
        let user = self.layout.as_ref().and_then(|l| l.user.clone());
        match measure::measure(&view.root, user.as_deref(), ctx) {
            Ok((rows, outcome)) => {
                self.tree = Some(rows);
                outcome
            }
            Err(outcome) => outcome,
        }
    }
}

fn not_mounted(ctx: &StepContext) -> Outcome {
    if ctx.dry_run {
        Outcome::Skipped("dry run: the volume is not mounted".into())
    } else {
        Outcome::Failed("the volume is not mounted".into())
    }
}

impl FlowRunner for InspectRunner {
    type Step = InspectStep;

    fn actions(&self, step: InspectStep) -> Vec<Action> {
        match step {
            InspectStep::MountReadonly => self.planned_mount().into_iter().collect(),
            InspectStep::FindVolume
            | InspectStep::IdentifyVolume
            | InspectStep::CheckLayout
            | InspectStep::Measure
            | InspectStep::Unmount => Vec::new(),
        }
    }

    fn run(&mut self, step: InspectStep, _confirmed: bool, ctx: &StepContext) -> Outcome {
        match step {
            InspectStep::FindVolume => self.find(ctx),
            InspectStep::IdentifyVolume => self.identify(),
            InspectStep::MountReadonly => self.mount(ctx),
            InspectStep::CheckLayout => self.check_layout(ctx),
            InspectStep::Measure => self.measure(ctx),
            InspectStep::Unmount => readonly_mount::close_view(self.view.take(), ctx),
        }
    }

    fn details(&self, _flow: &Flow) -> FlowDetails {
        FlowDetails::Inspect(InspectDetails {
            layout: self.layout.clone(),
            tree: self.tree.clone(),
            volume: self.volume_summary(),
        })
    }

    fn human_summary(&self, _flow: &Flow) -> Vec<String> {
        let mut lines = Vec::new();
        if let (Some(found), Some(probe)) = (&self.found, &self.probe) {
            lines.push(format!(
                "Volume  {} -> {}",
                shown(&found.path),
                shown(&probe.resolved)
            ));
            if let Contents::Filesystem(fs) = &probe.contents {
                lines.push(format!(
                    "        {}  UUID {}  label \"{}\"  {} device, {} used",
                    fs.fs_type,
                    fs.uuid,
                    crate::escape::escape_bytes(fs.label.as_bytes()),
                    human_bytes(probe.size_bytes),
                    human_bytes(self.used_bytes.unwrap_or(fs.used_bytes))
                ));
            }
        }
        if let Some(layout) = &self.layout {
            lines.push(format!(
                "Layout  user {} (from the {})",
                layout.user.as_deref().unwrap_or("unknown"),
                layout.user_from
            ));
            for check in &layout.checks {
                let mark = match check.status {
                    Status::Found => "ok  ",
                    Status::Missing => "MISS",
                    Status::Wrong => "BAD ",
                    Status::Absent => "--  ",
                };
                lines.push(format!("  {mark} {:<32} {}", check.path, check.detail));
            }
        }
        if let Some(tree) = &self.tree {
            lines.push("Sizes".into());
            for row in tree {
                let indent = if row.path.contains('/') { "    " } else { "  " };
                lines.push(format!(
                    "{indent}{:<36} {:>10}  {:>9} files",
                    row.path,
                    human_bytes(row.bytes),
                    row.files
                ));
            }
        }
        lines
    }
}

impl InspectRunner {
    /// The mount the plan shows: the device as far as it can be found without changing
    /// anything, or nothing when the volume is already mounted.
    fn planned_mount(&self) -> Option<Action> {
        let found = find_volume::find(&self.cfg, self.device_arg.as_deref()).ok();
        let device = match &found {
            Some(found) => found
                .path
                .canonicalize()
                .unwrap_or_else(|_| found.path.clone()),
            None => self
                .cfg
                .discovery
                .by_id_dir
                .join(&self.cfg.discovery.pattern),
        };
        let already = std::fs::metadata(&device)
            .ok()
            .filter(|m| m.file_type().is_block_device())
            .map(|m| {
                (
                    nix::sys::stat::major(m.rdev()) as u32,
                    nix::sys::stat::minor(m.rdev()) as u32,
                )
            })
            .and_then(|dev| readonly_mount::existing_mount(dev).ok().flatten());
        if already.is_some() {
            return None;
        }
        let fs_type = found.as_ref().map_or("ext4", |f| f.expected_fs_type());
        Some(Action::Mount {
            device: shown(&device),
            target: shown(&self.cfg.inspect.mountpoint),
            options: mount::inspection_options(fs_type),
        })
    }

    fn volume_summary(&self) -> Option<VolumeSummary> {
        let found = self.found.as_ref()?;
        let probe = self.probe.as_ref()?;
        let Contents::Filesystem(fs) = &probe.contents else {
            return None;
        };
        Some(VolumeSummary {
            device: shown(&found.path),
            resolved: shown(&probe.resolved),
            fs_type: fs.fs_type.clone(),
            uuid: fs.uuid.clone(),
            label: fs.label.clone(),
            size_bytes: probe.size_bytes,
            fs_size_bytes: fs.fs_size_bytes,
            used_bytes: self.used_bytes.unwrap_or(fs.used_bytes),
            needs_recovery: fs.needs_recovery,
            mounted_at: self.read_at.as_ref().map(|(root, _)| shown(root)),
            in_place: self.read_at.as_ref().map(|(_, in_place)| *in_place),
        })
    }
}
