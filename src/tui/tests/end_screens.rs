//! Predestroy's and recover's end screens, built from the summary as the worker sends it.

use super::*;
use crate::nixlog::Moved;
use crate::summary::{Blocker, BuildReport, FlowDetails, PredestroyDetails, RecoverDetails};

/// predestroy's verdict with these blockers (step, why).
fn verdict(blockers: &[(&'static str, &str)]) -> FlowDetails {
    FlowDetails::Predestroy(PredestroyDetails {
        ready: blockers.is_empty(),
        blockers: blockers
            .iter()
            .map(|(step, why)| Blocker {
                step,
                why: (*why).into(),
            })
            .collect(),
        root_disk: None,
    })
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
    statuses: &[(&str, StepStatus, &str)],
    details: FlowDetails,
) -> State {
    let mut state = State::flow(kind, "vps-qwe".into());
    let outcome = |id: &str| {
        statuses
            .iter()
            .find(|(s, _, _)| *s == id)
            .map_or((StepStatus::Passed, "ok"), |(_, st, m)| (*st, *m))
    };
    for (i, def) in kind.steps().iter().enumerate() {
        let (status, message) = outcome(def.id.as_str());
        let t = 100 * i as u64;
        if !message.starts_with("not run:") {
            step(&mut state, t, def.id.as_str(), StepStatus::Running, "");
        }
        step(&mut state, t + 60, def.id.as_str(), status, message);
    }
    let steps = kind
        .steps()
        .iter()
        .map(|def| {
            let (status, message) = outcome(def.id.as_str());
            StepSummary {
                id: def.id.as_str(),
                status,
                message: message.into(),
                duration_ms: 60,
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
            StepStatus::Warning,
            "[docker] is configured but no daemon is running",
        )],
        verdict(&[]),
    );
    snapshot("predestroy_ready", &state);
}

#[test]
fn predestroy_not_ready_lists_each_blocker_with_what_to_do() {
    let pushed = "2 commits on main are not on origin/main";
    let nix = "/nix is not a bind mount of /home/qwe/nix";
    let card = "not run: it needs config-repo-pushed, which did not pass";
    let state = ended_with(
        FlowKind::Predestroy,
        RunStatus::Failed,
        &[
            ("config-repo-pushed", StepStatus::Failed, pushed),
            ("nix-on-volume", StepStatus::Failed, nix),
            ("recovery-card", StepStatus::Skipped, card),
        ],
        verdict(&[
            ("config-repo-pushed", pushed),
            ("nix-on-volume", nix),
            ("recovery-card", card),
        ]),
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
            StepStatus::Passed,
            "rebooting: after it, run lifeboat verify (or lifeboat recover --resume)",
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
                StepStatus::Failed,
                "nixos-rebuild build failed (exit status 1): error: builder for \
                 '/nix/store/abc-foo.drv' failed with exit code 2",
            ),
            (
                "closure-on-volume",
                StepStatus::Skipped,
                "not run: it needs build, which did not pass",
            ),
            (
                "boot",
                StepStatus::Skipped,
                "not run: it needs closure-on-volume, which did not pass",
            ),
            (
                "reboot",
                StepStatus::Skipped,
                "not run: it needs boot, which did not pass",
            ),
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
    let failing: Vec<(&str, StepStatus, &str)> = FlowKind::Predestroy
        .steps()
        .iter()
        .map(|def| (def.id.as_str(), StepStatus::Failed, why))
        .collect();
    let blockers: Vec<(&'static str, &str)> = FlowKind::Predestroy
        .steps()
        .iter()
        .map(|def| (def.id.as_str(), why))
        .collect();
    let mut state = ended_with(
        FlowKind::Predestroy,
        RunStatus::Failed,
        &failing,
        verdict(&blockers),
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
