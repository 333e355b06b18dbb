//! What a predestroy or recover run came to, read from its summary, for the end screen:
//! predestroy's verdict with what to do about each blocker, recover's outcome with what
//! comes next. Pure state.

use std::cell::Cell;

use crate::flow::{FlowKind, RecoverStep, StepId};
use crate::report::{RunStatus, StepStatus};
use crate::steps::identify::human_bytes;
use crate::summary::{Blocker, BuildReport, FlowDetails, NotDone, RecoverDetails};

use super::step_view::StepView;

/// How a recover run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoverEnd {
    /// Every step passed and the reboot command ran.
    Rebooting {
        host: String,
        system: Option<String>,
        /// What the build took from the volume's store, built and downloaded.
        build: Option<String>,
    },
    /// A dry run: nothing changed.
    DryRun,
    /// The run ended at `step` before the reboot.
    Halted {
        status: RunStatus,
        step: &'static str,
        title: &'static str,
        why: String,
    },
}

/// What the end screen shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Predestroy { ready: bool, blockers: Vec<Blocker> },
    Recover(RecoverEnd),
}

/// How far the end screen is scrolled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndScroll {
    /// The first line shown.
    pub first: usize,
    /// The last useful `first`: only the screen knows (it wraps the text to its width),
    /// so it records it each time it draws.
    pub max: Cell<usize>,
}

/// A flow's end, for the end screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndReport {
    pub verdict: Verdict,
    /// Steps that passed with a warning: what to read before going on.
    pub warnings: Vec<(&'static str, String)>,
    pub scroll: EndScroll,
}

impl EndReport {
    /// The end of a run of `kind` that finished with `status`, its steps as the summary
    /// left them; `None` for the flows without an end screen of their own.
    pub fn from_summary(
        status: RunStatus,
        dry_run: bool,
        steps: &[StepView],
        details: &FlowDetails,
    ) -> Option<EndReport> {
        let verdict = match details {
            FlowDetails::Predestroy(verdict) => Verdict::Predestroy {
                ready: verdict.ready,
                blockers: verdict.blockers.clone(),
            },
            FlowDetails::Recover(recover) => {
                Verdict::Recover(recover_end(status, dry_run, steps, recover))
            }
            FlowDetails::Inspect(_) | FlowDetails::Verify(_) => return None,
        };
        let warnings = steps
            .iter()
            .filter(|s| s.status == StepStatus::Warning)
            .map(|s| (s.def.id.as_str(), s.message.clone()))
            .collect();
        Some(EndReport {
            verdict,
            warnings,
            scroll: EndScroll::default(),
        })
    }
}

fn recover_end(
    status: RunStatus,
    dry_run: bool,
    steps: &[StepView],
    details: &RecoverDetails,
) -> RecoverEnd {
    let rebooted = steps.iter().any(|s| {
        s.def.id == StepId::Recover(RecoverStep::Reboot) && s.status == StepStatus::Passed
    });
    if dry_run {
        return RecoverEnd::DryRun;
    }
    if status == RunStatus::Passed && rebooted {
        return RecoverEnd::Rebooting {
            host: details.host.clone(),
            system: details.system.clone(),
            build: details.build.as_ref().map(build_line),
        };
    }
    // Each recover step needs the one before: the last one that did not merely stand
    // aside (not run) is where the run ended.
    let last = steps.iter().rev().find(|s| {
        !(s.status == StepStatus::Pending
            || matches!(s.not_done, Some(NotDone::Unmet(_) | NotDone::NotRun)))
    });
    RecoverEnd::Halted {
        status,
        step: last.map_or("", |s| s.def.id.as_str()),
        title: last.map_or("", |s| s.def.title),
        why: last.map(|s| s.message.clone()).unwrap_or_default(),
    }
}

/// The summary's `build` in words: "12 paths (3.4 MiB) from the volume's store, 2
/// derivations built, nothing downloaded".
fn build_line(build: &BuildReport) -> String {
    let downloaded = if build.downloaded.paths == 0 {
        "nothing downloaded".to_string()
    } else {
        format!(
            "{} ({}) downloaded",
            paths(build.downloaded.paths),
            human_bytes(build.downloaded.bytes)
        )
    };
    format!(
        "{} ({}) from the volume's store, {} derivations built, {downloaded}",
        paths(build.from_volume.paths),
        human_bytes(build.from_volume.bytes),
        build.built
    )
}

fn paths(n: u64) -> String {
    if n == 1 {
        "1 path".into()
    } else {
        format!("{n} paths")
    }
}

/// What to do about a predestroy blocker, so that the next run passes.
pub fn remedy(blocker: &Blocker) -> String {
    match blocker.not_done {
        Some(NotDone::Declined) => {
            "run predestroy again and confirm this step (or run it with --yes)".into()
        }
        Some(NotDone::Interrupted | NotDone::NotRun) => "run predestroy again".into(),
        Some(NotDone::Unmet(needed)) => {
            format!("fix {needed} first; this step runs once it passes")
        }
        None => FlowKind::Predestroy
            .step_named(blocker.step)
            .and_then(|id| id.def().remedy)
            .unwrap_or("fix what it says, then run predestroy again")
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{PredestroyStep, Skip, StepState};
    use crate::nixlog::Moved;
    use crate::summary::{InspectDetails, PredestroyDetails};
    use std::time::Duration;

    /// A recover step skipped because `needed` did not pass.
    fn unmet(needed: RecoverStep) -> StepState {
        StepState::Skipped(Skip::Unmet(StepId::Recover(needed)))
    }

    /// Views of `kind`'s steps, ended as `ended` says (the others passed).
    fn views(kind: FlowKind, ended: &[(&str, StepState)]) -> Vec<StepView> {
        let passed = StepState::Passed("ok".into());
        kind.steps()
            .iter()
            .map(|def| {
                let state = ended
                    .iter()
                    .find(|(id, _)| *id == def.id.as_str())
                    .map_or(&passed, |(_, state)| state);
                StepView {
                    def,
                    status: state.status(),
                    message: state.message(),
                    not_done: state.not_done(),
                    actions: Vec::new(),
                    started: None,
                    took: Some(Duration::ZERO),
                }
            })
            .collect()
    }

    fn rebooted_into(system: &str) -> FlowDetails {
        FlowDetails::Recover(RecoverDetails {
            host: "qwe".into(),
            system: Some(system.into()),
            build: Some(BuildReport {
                from_volume: Moved {
                    paths: 2104,
                    bytes: 1_288_490_188,
                },
                built: 3,
                downloaded: Moved::default(),
            }),
            ..RecoverDetails::default()
        })
    }

    #[test]
    fn predestroy_reads_its_verdict_and_blockers_from_the_summary() {
        let steps = views(
            FlowKind::Predestroy,
            &[(
                "docker-on-volume",
                StepState::Warning("no daemon running".into()),
            )],
        );
        let details = FlowDetails::Predestroy(PredestroyDetails {
            ready: false,
            blockers: vec![Blocker {
                step: "config-repo-pushed",
                why: "2 commits not pushed".into(),
                not_done: None,
            }],
            root_disk: None,
        });
        let end = EndReport::from_summary(RunStatus::Failed, false, &steps, &details).unwrap();
        assert_eq!(
            end.verdict,
            Verdict::Predestroy {
                ready: false,
                blockers: vec![Blocker {
                    step: "config-repo-pushed",
                    why: "2 commits not pushed".into(),
                    not_done: None,
                }]
            }
        );
        assert_eq!(
            end.warnings,
            [("docker-on-volume", "no daemon running".to_string())]
        );
    }

    #[test]
    fn recover_ends_rebooting_or_where_it_halted() {
        let details = rebooted_into("/nix/store/x-system");
        let all = views(FlowKind::Recover, &[]);
        let end = EndReport::from_summary(RunStatus::Passed, false, &all, &details).unwrap();
        assert_eq!(
            end.verdict,
            Verdict::Recover(RecoverEnd::Rebooting {
                host: "qwe".into(),
                system: Some("/nix/store/x-system".into()),
                build: Some(
                    "2104 paths (1.2 GiB) from the volume's store, 3 derivations built, \
                     nothing downloaded"
                        .into()
                ),
            })
        );
        let failed = views(
            FlowKind::Recover,
            &[
                ("build", StepState::Failed("nix build failed".into())),
                ("closure-on-volume", unmet(RecoverStep::Build)),
                ("boot", unmet(RecoverStep::ClosureOnVolume)),
                ("reboot", unmet(RecoverStep::Boot)),
            ],
        );
        let end = EndReport::from_summary(RunStatus::Failed, false, &failed, &details).unwrap();
        assert_eq!(
            end.verdict,
            Verdict::Recover(RecoverEnd::Halted {
                status: RunStatus::Failed,
                step: "build",
                title: "Build",
                why: "nix build failed".into()
            })
        );
        let inspect = FlowDetails::Inspect(InspectDetails::default());
        assert!(EndReport::from_summary(RunStatus::Passed, false, &[], &inspect).is_none());
    }

    #[test]
    fn every_blocker_comes_with_something_to_do() {
        let blocker = |step: &'static str, state: StepState| Blocker {
            step,
            why: state.message(),
            not_done: state.not_done(),
        };
        let pushed = StepId::Predestroy(PredestroyStep::ConfigRepoPushed);
        assert!(
            remedy(&blocker(
                "recovery-card",
                StepState::Skipped(Skip::Unmet(pushed))
            ))
            .starts_with("fix config-repo-pushed first")
        );
        assert!(
            remedy(&blocker(
                "package-lists",
                StepState::Skipped(Skip::Declined)
            ))
            .contains("confirm")
        );
        assert_eq!(
            remedy(&blocker("backup", StepState::Interrupted)),
            "run predestroy again"
        );
        let failed = |why: &str| StepState::Failed(why.into());
        assert!(
            remedy(&blocker(
                "config-repo-pushed",
                failed("2 commits not pushed")
            ))
            .contains("push")
        );
        for def in FlowKind::Predestroy.steps() {
            assert!(!remedy(&blocker(def.id.as_str(), failed("broken"))).is_empty());
        }
    }
}
