//! Predestroy's and recover's end screens, built from the summary as the worker sends it.

use super::*;
use crate::flow::{PredestroyStep, RecoverStep, Skip, StepId, StepState};
use crate::nixlog::Moved;
use crate::summary::{Blocker, BuildReport, FlowDetails, PredestroyDetails, RecoverDetails};

/// predestroy's verdict with these blockers (step, how it ended).
fn verdict(blockers: &[(&'static str, StepState)]) -> FlowDetails {
    FlowDetails::Predestroy(PredestroyDetails {
        ready: blockers.is_empty(),
        blockers: blockers
            .iter()
            .map(|(step, state)| Blocker {
                step,
                why: state.message(),
                not_done: state.not_done(),
            })
            .collect(),
        root_disk: None,
    })
}

/// A step skipped because `needed` did not pass.
fn unmet(needed: StepId) -> StepState {
    StepState::Skipped(Skip::Unmet(needed))
}

/// recover's details: host qwe, the card read, the system and the build given.
fn recovered(system: Option<&str>, build: Option<BuildReport>) -> FlowDetails {
    FlowDetails::Recover(RecoverDetails {
        host: "qwe".into(),
        system: system.map(Into::into),
        recovery_card: true,
        build,
        ..RecoverDetails::default()
    })
}

/// A run of `kind` whose steps end as `statuses` say (the others pass), summarised with
/// `status` and `details`.
fn ended_with(
    kind: FlowKind,
    status: RunStatus,
    statuses: &[(&str, StepState)],
    details: FlowDetails,
) -> State {
    let mut state = State::flow(kind, "vps-qwe".into());
    let passed = StepState::Passed("ok".into());
    let outcome = |id: &str| {
        statuses
            .iter()
            .find(|(s, _)| *s == id)
            .map_or(&passed, |(_, ended)| ended)
    };
    for (i, def) in kind.steps().iter().enumerate() {
        let ended = outcome(def.id.as_str());
        let t = 100 * i as u64;
        if !matches!(ended, StepState::Skipped(_)) {
            step(&mut state, t, def.id.as_str(), StepStatus::Running, "");
        }
        step(
            &mut state,
            t + 60,
            def.id.as_str(),
            ended.status(),
            &ended.message(),
        );
    }
    let steps = kind
        .steps()
        .iter()
        .map(|def| {
            let ended = outcome(def.id.as_str());
            StepSummary {
                id: def.id.as_str(),
                status: ended.status(),
                message: ended.message(),
                duration_ms: 60,
                not_done: ended.not_done(),
            }
        })
        .collect();
    event(
        &mut state,
        5_000,
        Event::Summary {
            flow: kind.id(),
            status,
            dry_run: false,
            duration_ms: 5_000,
            steps,
            details: Box::new(details),
        },
    );
    ended(&mut state, 5_000, status);
    state
}

#[test]
fn predestroy_ready() {
    let state = ended_with(
        FlowKind::Predestroy,
        RunStatus::Passed,
        &[(
            "docker-on-volume",
            StepState::Warning("[docker] is configured but no daemon is running".into()),
        )],
        verdict(&[]),
    );
    snapshot("predestroy_ready", &state);
}

#[test]
fn predestroy_not_ready_lists_each_blocker_with_what_to_do() {
    let ended = [
        (
            "config-repo-pushed",
            StepState::Failed("2 commits on main are not on origin/main".into()),
        ),
        (
            "nix-on-volume",
            StepState::Failed("/nix is not a bind mount of /home/qwe/nix".into()),
        ),
        (
            "recovery-card",
            unmet(StepId::Predestroy(PredestroyStep::ConfigRepoPushed)),
        ),
    ];
    let state = ended_with(
        FlowKind::Predestroy,
        RunStatus::Failed,
        &ended,
        verdict(&ended),
    );
    snapshot("predestroy_not_ready", &state);
}

#[test]
fn recover_rebooting_says_to_verify_after_the_boot() {
    let state = ended_with(
        FlowKind::Recover,
        RunStatus::Passed,
        &[(
            "reboot",
            StepState::Passed(
                "rebooting: after it, run lifeboat verify (or lifeboat recover --resume)".into(),
            ),
        )],
        recovered(
            Some("/nix/store/9x7c…-nixos-system-qwe-25.05"),
            Some(BuildReport {
                from_volume: Moved {
                    paths: 2104,
                    bytes: 1_288_490_188,
                },
                built: 3,
                downloaded: Moved {
                    paths: 1,
                    bytes: 52_428_800,
                },
            }),
        ),
    );
    snapshot("recover_rebooting", &state);
}

#[test]
fn recover_failed_says_what_failed_and_how_to_resume() {
    let state = ended_with(
        FlowKind::Recover,
        RunStatus::Failed,
        &[
            (
                "build",
                StepState::Failed(
                    "nixos-rebuild build failed (exit status 1): error: builder for \
                     '/nix/store/abc-foo.drv' failed with exit code 2"
                        .into(),
                ),
            ),
            (
                "closure-on-volume",
                unmet(StepId::Recover(RecoverStep::Build)),
            ),
            ("boot", unmet(StepId::Recover(RecoverStep::ClosureOnVolume))),
            ("reboot", unmet(StepId::Recover(RecoverStep::Boot))),
        ],
        recovered(None, None),
    );
    snapshot("recover_failed", &state);
}

#[test]
fn tab_goes_from_the_end_screen_to_the_steps_and_back() {
    let mut state = ended_with(FlowKind::Predestroy, RunStatus::Passed, &[], verdict(&[]));
    let tab = |state: &State| match &state.screen {
        Screen::Flow(view) => view.tab,
        Screen::Home => panic!("not on the flow screen"),
    };
    assert_eq!(tab(&state), super::super::state::FlowTab::Results);
    keys(&mut state, &[Key::Tab]);
    assert_eq!(tab(&state), super::super::state::FlowTab::Steps);
    keys(&mut state, &[Key::Tab]);
    assert_eq!(tab(&state), super::super::state::FlowTab::Results);
}

#[test]
fn a_long_list_of_blockers_scrolls() {
    let why = "this check did not pass, and here is a long explanation of why it did not, \
               so that the line wraps on a narrow terminal";
    let failing: Vec<(&'static str, StepState)> = FlowKind::Predestroy
        .steps()
        .iter()
        .map(|def| (def.id.as_str(), StepState::Failed(why.into())))
        .collect();
    let mut state = ended_with(
        FlowKind::Predestroy,
        RunStatus::Failed,
        &failing,
        verdict(&failing),
    );
    let first = |state: &State| match &state.screen {
        Screen::Flow(view) => view.end.as_ref().map(|e| e.scroll.first),
        Screen::Home => None,
    };
    // Drawn, the screen knows how far it scrolls.
    let top = draw(&state, 80, 24);
    assert!(top.contains("↑↓ scroll"), "{top}");
    keys(&mut state, &[Key::End]);
    assert!(first(&state) > Some(0));
    snapshot("predestroy_not_ready_scrolled", &state);
    keys(&mut state, &[Key::Home]);
    assert_eq!(first(&state), Some(0));
}
