//! Every screen and modal, built from synthetic messages and drawn on ratatui's
//! `TestBackend` at 80×24 and 120×40, compared with the committed snapshots; and the
//! key handling of the state, which the snapshots cannot show.

mod diff_view;
mod end_screens;

use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::facts::{
    DiskFact, EtcNixos, HomeFacts, JournalFact, ReadinessFact, Unfinished, VolumeFact,
};
use super::keys::Key;
use super::screens;
use super::state::{
    Effect, FromWorker, HOME_FLOWS, Msg, Overlay, PRACTICE_FLOWS, Quit, Screen, State,
};
use super::theme::Theme;
use crate::exec::scan::PartialRow;
use crate::flow::{self, FlowKind, Question};
use crate::report::{Action, Event, PlannedStep, RunStatus, StepStatus, StepSummary, Stream, Unit};
use crate::summary::{
    Check, FlowDetails, InspectDetails, LayoutReport, Status, TreeRow, VolumeSummary,
};

fn draw(state: &State, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| screens::render(frame, state, Theme { color: true }))
        .unwrap();
    terminal.backend().to_string()
}

/// Snapshot `state` at both sizes the wizard is laid out for.
fn snapshot(name: &str, state: &State) {
    insta::assert_snapshot!(format!("{name}_80x24"), draw(state, 80, 24));
    insta::assert_snapshot!(format!("{name}_120x40"), draw(state, 120, 40));
}

fn facts() -> HomeFacts {
    HomeFacts {
        hostname: "vps-qwe".into(),
        os: "NixOS 25.05 (Warbler)".into(),
        volumes: Ok(vec![VolumeFact {
            link: "/dev/disk/by-id/scsi-0HC_Volume_103912881".into(),
            device: "/dev/sdb".into(),
            mounted_at: vec!["/home".into()],
        }]),
        discovery: "/dev/disk/by-id/scsi-0HC_Volume_*".into(),
        etc_nixos: EtcNixos::GitRepo,
        journal: JournalFact::Unfinished(Unfinished {
            flow: "inspect".into(),
            run_id: "20261126T090000Z-4242".into(),
            last_step: Some("measure".into()),
        }),
        memory: Some((3 << 30, 4 << 30)),
        uptime: 3 * 3600 + 12 * 60,
        disks: vec![
            DiskFact {
                mount: "/".into(),
                available: 30 << 30,
                total: 38 << 30,
            },
            DiskFact {
                mount: "/home".into(),
                available: 80 << 30,
                total: 100 << 30,
            },
        ],
        readiness: Some(ReadinessFact {
            ready: true,
            line: "5 h ago — ready".into(),
        }),
    }
}

fn at(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn event(state: &mut State, ms: u64, event: Event) -> Vec<Effect> {
    state.update(Msg::Worker(at(ms), FromWorker::Event(event)))
}

fn step(state: &mut State, ms: u64, id: &'static str, status: StepStatus, message: &str) {
    event(
        state,
        ms,
        Event::Step {
            flow: "inspect",
            step: id,
            status,
            message: message.into(),
        },
    );
}

fn output(state: &mut State, ms: u64, id: &'static str, line: &str) {
    event(
        state,
        ms,
        Event::Output {
            flow: "inspect",
            step: id,
            stream: Stream::Stdout,
            line: line.into(),
        },
    );
}

fn mount_action() -> Action {
    Action::Mount {
        device: "/dev/sdb".into(),
        target: "/mnt/lifeboat-inspect".into(),
        options: ["ro", "nosuid", "nodev", "noexec", "noload"]
            .map(String::from)
            .to_vec(),
    }
}

/// Inspect started from the command line, its plan received.
fn started() -> State {
    let mut state = State::flow(FlowKind::Inspect, "vps-qwe".into());
    let steps = FlowKind::Inspect
        .steps()
        .iter()
        .map(|def| PlannedStep {
            id: def.id.as_str(),
            title: def.title,
            actions: if def.id.as_str() == "mount-readonly" {
                vec![mount_action()]
            } else {
                Vec::new()
            },
        })
        .collect();
    event(
        &mut state,
        0,
        Event::Plan {
            flow: "inspect",
            dry_run: false,
            steps,
        },
    );
    state
}

fn passes(state: &mut State, from_ms: u64, steps: &[(&'static str, &str)]) {
    for (i, (id, message)) in steps.iter().enumerate() {
        let t = from_ms + 100 * i as u64;
        step(state, t, id, StepStatus::Running, "");
        step(state, t + 40, id, StepStatus::Passed, message);
    }
}

const FIRST_THREE: &[(&str, &str)] = &[
    (
        "find-volume",
        "found /dev/disk/by-id/scsi-0HC_Volume_103912881 (-> /dev/sdb)",
    ),
    (
        "identify-volume",
        "ext4, UUID 5f1c…, label \"home\", 40.0 GiB",
    ),
    (
        "mount-readonly",
        "mounted read-only at /mnt/lifeboat-inspect",
    ),
];

/// Measuring, with output and a progress count.
fn running() -> State {
    let mut state = started();
    passes(&mut state, 10, FIRST_THREE);
    passes(
        &mut state,
        400,
        &[("check-layout", "8 expected items found")],
    );
    step(&mut state, 500, "measure", StepStatus::Running, "");
    for i in 0..30 {
        output(
            &mut state,
            510 + i,
            "measure",
            &format!("scanning qwe/projects/repo-{i}"),
        );
    }
    output(
        &mut state,
        560,
        "measure",
        "a\\e[31mhostile\\e[0m name, escaped",
    );
    event(
        &mut state,
        600,
        Event::Progress {
            flow: "inspect",
            step: "measure",
            done: 12_345,
            total: None,
            unit: Unit::Files,
        },
    );
    state.update(Msg::Tick(at(2_700)));
    state
}

fn ended(state: &mut State, ms: u64, status: RunStatus) {
    state.update(Msg::Worker(at(ms), FromWorker::Ended(status)));
}

fn failed() -> State {
    let mut state = started();
    passes(&mut state, 10, FIRST_THREE);
    step(&mut state, 400, "check-layout", StepStatus::Running, "");
    output(
        &mut state,
        410,
        "check-layout",
        "qwe/.ssh: mode 0777, expected 0700",
    );
    output(&mut state, 420, "check-layout", "qwe/nix/store: missing");
    step(
        &mut state,
        450,
        "check-layout",
        StepStatus::Failed,
        "2 problems: qwe/.ssh is world-writable; the Nix store is missing",
    );
    step(
        &mut state,
        450,
        "measure",
        StepStatus::Skipped,
        "not run: check-layout failed",
    );
    step(&mut state, 460, "unmount", StepStatus::Running, "");
    step(
        &mut state,
        480,
        "unmount",
        StepStatus::Passed,
        "unmounted /mnt/lifeboat-inspect",
    );
    ended(&mut state, 500, RunStatus::Failed);
    state
}

fn refused() -> State {
    let mut state = started();
    passes(&mut state, 10, &FIRST_THREE[..1]);
    step(&mut state, 200, "identify-volume", StepStatus::Running, "");
    step(
        &mut state,
        230,
        "identify-volume",
        StepStatus::Refused,
        "/dev/sdb holds no filesystem (all zeros): lifeboat never formats a volume",
    );
    for id in ["mount-readonly", "check-layout", "measure"] {
        step(
            &mut state,
            230,
            id,
            StepStatus::Skipped,
            "not run: identify-volume refused to go on",
        );
    }
    step(&mut state, 240, "unmount", StepStatus::Running, "");
    step(
        &mut state,
        250,
        "unmount",
        StepStatus::Passed,
        "nothing to unmount",
    );
    ended(&mut state, 260, RunStatus::Refused);
    state
}

fn asking() -> State {
    let mut state = started();
    passes(&mut state, 10, &FIRST_THREE[..2]);
    step(&mut state, 300, "mount-readonly", StepStatus::Running, "");
    let question = "Mount /dev/sdb read-only at /mnt/lifeboat-inspect to look inside?";
    step(
        &mut state,
        320,
        "mount-readonly",
        StepStatus::NeedsConfirmation,
        question,
    );
    state.update(Msg::Worker(
        at(320),
        FromWorker::Ask {
            step: "mount-readonly",
            question: Question::key(question),
        },
    ));
    state
}

fn passed() -> State {
    let mut state = started();
    passes(&mut state, 10, FIRST_THREE);
    passes(
        &mut state,
        400,
        &[
            ("check-layout", "8 expected items found"),
            ("measure", "9 entries measured; the largest is qwe"),
            ("unmount", "unmounted /mnt/lifeboat-inspect"),
        ],
    );
    let check = |id, path: &str, status, detail: &str| Check {
        id,
        path: path.into(),
        status,
        detail: detail.into(),
    };
    let tree_row = |path: &str, bytes, files| TreeRow {
        path: path.into(),
        bytes,
        files,
    };
    let details = FlowDetails::Inspect(InspectDetails {
        volume: Some(VolumeSummary {
            device: "/dev/disk/by-id/scsi-0HC_Volume_103912881".into(),
            resolved: "/dev/sdb".into(),
            fs_type: "ext4".into(),
            uuid: "5f1c2d3e-0000-4000-8000-123456789abc".into(),
            label: "home\u{1b}[2J".into(),
            size_bytes: 42_949_672_960,
            fs_size_bytes: 42_949_672_960,
            used_bytes: 19_327_352_832,
            needs_recovery: false,
            mounted_at: Some("/mnt/lifeboat-inspect".into()),
            in_place: Some(false),
        }),
        layout: Some(LayoutReport {
            user: Some("qwe".into()),
            user_from: "config",
            checks: vec![
                check("home", "qwe", Status::Found, "owner uid 1000, mode 0755"),
                check("ssh", "qwe/.ssh", Status::Wrong, "mode 0777, expected 0700"),
                check(
                    "nix-store",
                    "qwe/nix/store",
                    Status::Found,
                    "4121 store paths",
                ),
                check("docker", "qwe/docker", Status::Missing, ""),
                check(
                    "card",
                    "qwe/.lifeboat/recovery.toml",
                    Status::Absent,
                    "written by lifeboat predestroy",
                ),
            ],
        }),
        tree: Some(vec![
            tree_row("lost+found", 16384, 1),
            tree_row("qwe", 19_000_000_000, 812_345),
            tree_row("qwe/nix", 15_000_000_000, 700_000),
            tree_row("qwe/projects", 3_000_000_000, 110_000),
            tree_row("qwe/.ssh", 20480, 5),
        ]),
    });
    let steps = FlowKind::Inspect
        .steps()
        .iter()
        .map(|def| StepSummary {
            id: def.id.as_str(),
            status: StepStatus::Passed,
            message: "ok".into(),
            duration_ms: 40,
            not_done: None,
        })
        .collect();
    event(
        &mut state,
        700,
        Event::Summary {
            flow: "inspect",
            status: RunStatus::Passed,
            dry_run: false,
            duration_ms: 700,
            steps,
            details: Box::new(details),
        },
    );
    ended(&mut state, 700, RunStatus::Passed);
    state
}

fn keys(state: &mut State, keys: &[Key]) -> Vec<Effect> {
    keys.iter()
        .flat_map(|key| state.update(Msg::Key(*key)))
        .collect()
}

fn typed(state: &mut State, text: &str) {
    for c in text.chars() {
        state.update(Msg::Key(Key::Char(c)));
    }
}

#[test]
fn home_screen() {
    snapshot("home", &State::home(facts(), HOME_FLOWS));
}

#[test]
fn home_screen_when_discovery_cannot_look() {
    let mut facts = facts();
    facts.volumes = Err("/dev/disk/by-id: No such file or directory (os error 2)".into());
    facts.etc_nixos = EtcNixos::Missing;
    facts.journal = JournalFact::Clean;
    snapshot("home_nothing_found", &State::home(facts, HOME_FLOWS));
}

#[test]
fn flow_screen_while_a_step_runs() {
    snapshot("flow_running", &running());
}

fn size_row(path: &str, bytes: u64, files: u64, walking: bool) -> PartialRow<TreeRow> {
    PartialRow {
        row: TreeRow {
            path: path.into(),
            bytes,
            files,
        },
        walking,
    }
}

/// Measuring, the walk halfway: some rows final, others still growing.
fn growing() -> State {
    let mut state = running();
    for (ms, nix_bytes) in [(610, 2_000_000_000u64), (710, 6_500_000_000)] {
        let rows = vec![
            size_row("lost+found", 16_384, 1, false),
            size_row(
                "qwe",
                7_100_000_000 + nix_bytes - 2_000_000_000,
                240_000,
                true,
            ),
            size_row("qwe/.ssh", 20_480, 5, false),
            size_row("qwe/nix", nix_bytes, 200_000, true),
            size_row("qwe/projects", 600_000_000, 40_000, true),
            size_row("srv", 3_000_000_000, 1_200, false),
        ];
        state.update(Msg::Worker(at(ms), FromWorker::Tree(rows)));
    }
    state
}

#[test]
fn flow_screen_while_the_size_tree_grows() {
    let state = growing();
    let Screen::Flow(view) = &state.screen else {
        unreachable!()
    };
    assert_eq!(view.results.as_ref().unwrap().tree.walking(), 1);
    snapshot("flow_tree_growing", &state);
}

#[test]
fn the_growing_tree_is_navigable_and_sortable_while_the_walk_goes_on() {
    let mut state = growing();
    keys(&mut state, &[Key::Tab, Key::Down]);
    snapshot("results_growing", &state);
    keys(&mut state, &[Key::Char('s')]);
    // The walk goes on: the figures change, the sort and the selected row stay.
    let rows = vec![
        size_row("lost+found", 16_384, 1, false),
        size_row("qwe", 19_000_000_000, 812_345, false),
        size_row("qwe/.ssh", 20_480, 5, false),
        size_row("qwe/nix", 15_000_000_000, 700_000, false),
        size_row("qwe/projects", 3_000_000_000, 110_000, false),
        size_row("srv", 3_000_000_000, 1_200, false),
    ];
    state.update(Msg::Worker(at(900), FromWorker::Tree(rows)));
    let Screen::Flow(view) = &state.screen else {
        unreachable!()
    };
    let tree = &view.results.as_ref().unwrap().tree;
    let visible: Vec<&str> = tree.visible().iter().map(|r| r.row.path.as_str()).collect();
    assert_eq!(
        visible,
        [
            "lost+found",
            "qwe",
            "qwe/.ssh",
            "qwe/nix",
            "qwe/projects",
            "srv"
        ]
    );
    assert_eq!(visible[tree.selected], "qwe/nix");
    assert_eq!(tree.walking(), 0);
}

#[test]
fn flow_screen_scrolled_and_searching() {
    let mut state = running();
    keys(&mut state, &[Key::Up, Key::PageUp, Key::Char('/')]);
    typed(&mut state, "repo-2");
    keys(&mut state, &[Key::Enter, Key::Char('n')]);
    snapshot("flow_search", &state);
}

#[test]
fn confirmation_modal() {
    snapshot("confirm", &asking());
}

/// Recover at its last step: the reboot asks, and wants the hostname typed.
fn asking_to_reboot() -> State {
    recover_asking(
        "reboot",
        vec![Action::Command {
            argv: vec!["systemctl".into(), "reboot".into()],
        }],
        "reboot now (systemctl reboot)? Afterwards run `lifeboat verify`.",
    )
}

/// Recover with every step before `asking` passed, and `asking` wanting the hostname typed
/// before it takes `actions`.
fn recover_asking(asking: &'static str, actions: Vec<Action>, question: &str) -> State {
    let mut state = recover_running(asking, actions);
    ask(&mut state, asking, Question::typed_hostname(question));
    state
}

/// Recover with every step before `running` passed and `running` running; only it has
/// `actions` in the plan.
fn recover_running(running: &'static str, actions: Vec<Action>) -> State {
    let mut state = State::flow(FlowKind::Recover, "vps-qwe".into());
    let steps = FlowKind::Recover
        .steps()
        .iter()
        .map(|def| PlannedStep {
            id: def.id.as_str(),
            title: def.title,
            actions: if def.id.as_str() == running {
                actions.clone()
            } else {
                Vec::new()
            },
        })
        .collect();
    event(
        &mut state,
        0,
        Event::Plan {
            flow: "recover",
            dry_run: false,
            steps,
        },
    );
    for (i, def) in FlowKind::Recover.steps().iter().enumerate() {
        let t = 1_000 * i as u64;
        step(&mut state, t, def.id.as_str(), StepStatus::Running, "");
        if def.id.as_str() == running {
            break;
        }
        step(
            &mut state,
            t + 900,
            def.id.as_str(),
            StepStatus::Passed,
            "ok",
        );
    }
    state
}

/// `step` asks `question`, as the worker puts it to the wizard.
fn ask(state: &mut State, step_id: &'static str, question: Question) {
    step(
        state,
        9_500,
        step_id,
        StepStatus::NeedsConfirmation,
        &question.text,
    );
    state.update(Msg::Worker(
        at(9_500),
        FromWorker::Ask {
            step: step_id,
            question,
        },
    ));
}

/// However long the question and its paths, how to answer stays in the box.
#[test]
fn a_long_question_never_pushes_the_typed_answer_out_of_view() {
    let long = "/etc/nixos-with-a-rather-long-name-that-an-operator-chose-years-ago";
    let aside = format!("{long}.before-lifeboat-20261126-125959");
    let url = "ssh://git@git.example.org:2222/infrastructure/hosts/vps-qwe-configuration.git";
    let mut state = recover_asking(
        "clone-config",
        vec![
            Action::Move {
                from: long.into(),
                to: aside.clone(),
            },
            Action::Git {
                op: "clone".into(),
                url: url.into(),
                path: long.into(),
            },
        ],
        &format!(
            "the SSH host key of git.example.org is not known: ssh-ed25519 \
             SHA256:2b6AxQ0uGm0cV7YzSg5bUhZc6k0i4dN9l8mXo2Yq1Ek; compare it with the fingerprint \
             the provider publishes, and then move {long} aside to {aside} (nothing is \
             deleted) and clone {url} (main) there"
        ),
    );
    typed(&mut state, "vps");
    for (width, height) in [(80, 24), (120, 40)] {
        let screen = draw(&state, width, height);
        assert!(
            screen.contains("and press Enter") && screen.contains("> vps"),
            "{width}x{height}:\n{screen}"
        );
    }
    snapshot("confirm_long_question", &state);
}

#[test]
fn confirmation_modal_that_wants_the_hostname_typed() {
    let mut state = asking_to_reboot();
    typed(&mut state, "vps");
    snapshot("confirm_word", &state);
}

#[test]
fn failure_view() {
    snapshot("failed", &failed());
}

#[test]
fn refused_view() {
    snapshot("refused", &refused());
}

#[test]
fn a_run_that_could_not_start() {
    let mut state = State::flow(FlowKind::Inspect, "vps-qwe".into());
    state.update(Msg::Worker(
        at(5),
        FromWorker::CouldNotStart(
            "another lifeboat run (pid 4242) holds /var/lib/lifeboat/lock".into(),
        ),
    ));
    assert_eq!(state.exit_code(), 1);
    snapshot("could_not_start", &state);
}

#[test]
fn inspect_results() {
    snapshot("results", &passed());
}

#[test]
fn inspect_results_sorted_by_name_and_navigated() {
    let mut state = passed();
    keys(
        &mut state,
        &[Key::Char('s'), Key::Down, Key::Down, Key::Enter],
    );
    snapshot("results_by_name", &state);
}

#[test]
fn help_overlay() {
    let mut state = running();
    keys(&mut state, &[Key::Char('?')]);
    snapshot("help", &state);
}

#[test]
fn quit_prompt_while_a_step_runs() {
    let mut state = running();
    assert!(keys(&mut state, &[Key::Char('q')]).is_empty());
    assert!(matches!(state.overlay, Some(Overlay::QuitPrompt { .. })));
    snapshot("quit_prompt", &state);
}

#[test]
fn too_small_terminal() {
    insta::assert_snapshot!(
        "too_small_79x24",
        draw(&State::home(facts(), HOME_FLOWS), 79, 24)
    );
}

#[test]
fn no_control_character_reaches_the_screen() {
    let mut state = passed();
    output_raw(&mut state);
    for text in [draw(&state, 120, 40), draw(&failed(), 80, 24)] {
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text}");
    }
}

fn output_raw(state: &mut State) {
    keys(state, &[Key::Tab]);
    output(state, 800, "unmount", "raw \u{1b}[2J\u{7} bell");
}

#[test]
fn enter_on_home_starts_the_chosen_flow() {
    for (moves, kind) in [
        (&[][..], FlowKind::Inspect),
        (&[Key::Up][..], FlowKind::Recover),
        (&[Key::Up, Key::Up, Key::Up][..], FlowKind::Predestroy),
        (&[Key::Down, Key::Down][..], FlowKind::Verify),
    ] {
        let mut state = State::home(facts(), HOME_FLOWS);
        keys(&mut state, moves);
        assert_eq!(keys(&mut state, &[Key::Enter]), [Effect::Start(kind)]);
        assert!(matches!(&state.screen, Screen::Flow(view) if view.kind == kind));
    }
}

#[test]
fn confirmation_needs_y_and_no_stray_key_confirms() {
    let mut state = asking();
    assert!(keys(&mut state, &[Key::Enter, Key::Char('q'), Key::Char(' ')]).is_empty());
    assert_eq!(
        keys(&mut state, &[Key::Char('y')]),
        [Effect::Answer(flow::Msg::Confirmed)]
    );
    let mut state = asking();
    assert_eq!(
        keys(&mut state, &[Key::Esc]),
        [Effect::Answer(flow::Msg::Declined)]
    );
}

#[test]
fn a_typed_word_confirms_only_when_it_matches() {
    let mut state = asking_to_reboot();
    assert!(keys(&mut state, &[Key::Char('y'), Key::Enter]).is_empty());
    keys(&mut state, &[Key::Backspace]);
    typed(&mut state, "vps-qwy");
    assert!(keys(&mut state, &[Key::Enter]).is_empty());
    assert_eq!(
        keys(&mut state, &[Key::Backspace, Key::Char('e'), Key::Enter]),
        [Effect::Answer(flow::Msg::Confirmed)]
    );
}

#[test]
fn ctrl_c_cancels_the_step_and_quits_after_cleanup() {
    let mut state = asking();
    assert_eq!(
        keys(&mut state, &[Key::Ctrl('c')]),
        [Effect::Cancel, Effect::Answer(flow::Msg::Cancel)]
    );
    assert_eq!(state.quit, Quit::WhenIdle);
    assert!(!state.done(), "waits for the worker to clean up");
    ended(&mut state, 900, RunStatus::Interrupted);
    assert!(state.done());
    assert_eq!(state.exit_code(), 130);
}

#[test]
fn a_signal_cancels_like_ctrl_c_and_q_asks_first_while_running() {
    let mut state = running();
    assert_eq!(state.update(Msg::Signal), [Effect::Cancel]);
    let mut state = running();
    keys(&mut state, &[Key::Char('q')]);
    assert_eq!(keys(&mut state, &[Key::Char('y')]), [Effect::Cancel]);
    let mut state = running();
    keys(&mut state, &[Key::Char('q'), Key::Char('n')]);
    assert_eq!(state.quit, Quit::No);
}

/// The question a step puts while the quit prompt is open waits under it: a `y` meant
/// for quitting cancels the run and its question, it never confirms the change.
#[test]
fn a_question_waits_under_the_quit_prompt() {
    let put_under_the_prompt = || {
        let mut state = running();
        keys(&mut state, &[Key::Char('q')]);
        ask(
            &mut state,
            "unmount",
            Question::key("Unmount /mnt/lifeboat-inspect?"),
        );
        assert!(matches!(
            &state.overlay,
            Some(Overlay::QuitPrompt { waiting: Some(_) })
        ));
        state
    };
    let mut state = put_under_the_prompt();
    assert_eq!(
        keys(&mut state, &[Key::Char('y')]),
        [Effect::Cancel, Effect::Answer(flow::Msg::Cancel)]
    );
    assert_eq!(state.overlay, None);
    let mut state = put_under_the_prompt();
    assert!(keys(&mut state, &[Key::Char('n')]).is_empty());
    assert!(matches!(&state.overlay, Some(Overlay::Confirm(c)) if c.step == "unmount"));
    assert_eq!(
        keys(&mut state, &[Key::Char('y')]),
        [Effect::Answer(flow::Msg::Confirmed)]
    );
}

/// A question takes the place of help, so the keys go where the eyes are.
#[test]
fn a_question_closes_help() {
    let mut state = running();
    keys(&mut state, &[Key::Char('?')]);
    assert_eq!(state.overlay, Some(Overlay::Help));
    ask(
        &mut state,
        "unmount",
        Question::key("Unmount /mnt/lifeboat-inspect?"),
    );
    assert!(matches!(&state.overlay, Some(Overlay::Confirm(_))));
    assert_eq!(
        keys(&mut state, &[Key::Char('n')]),
        [Effect::Answer(flow::Msg::Declined)]
    );
    assert_eq!(state.overlay, None);
}

#[test]
fn retry_starts_the_flow_afresh_and_quit_keeps_the_exit_code() {
    let mut state = failed();
    assert_eq!(
        keys(&mut state, &[Key::Char('r')]),
        [Effect::Start(FlowKind::Inspect)]
    );
    let Screen::Flow(view) = &state.screen else {
        panic!("not on the flow screen");
    };
    assert!(view.steps.iter().all(|s| s.status == StepStatus::Pending));
    assert!(view.output.is_empty());
    let mut state = failed();
    keys(&mut state, &[Key::Char('q')]);
    assert!(state.done());
    assert_eq!(state.exit_code(), 1);
}

#[test]
fn durations_come_from_the_events_and_the_summary() {
    let state = running();
    let Screen::Flow(view) = &state.screen else {
        panic!("not on the flow screen");
    };
    assert_eq!(view.steps[0].took, Some(at(40)));
    assert_eq!(view.steps[4].started, Some(at(500)));
    let state = passed();
    let Screen::Flow(view) = &state.screen else {
        panic!("not on the flow screen");
    };
    assert!(view.steps.iter().all(|s| s.took == Some(at(40))));
}

#[test]
fn a_run_that_stopped_on_an_internal_error() {
    let mut state = running();
    event(
        &mut state,
        3_000,
        Event::Output {
            flow: "inspect",
            step: "summary",
            stream: Stream::Stderr,
            line: "lifeboat stopped on an internal error: LIFEBOAT_FAULT: panic before measure"
                .into(),
        },
    );
    ended(&mut state, 3_000, RunStatus::Failed);
    snapshot("internal_error", &state);
}

#[test]
fn no_color_keeps_meaning_in_symbols_and_reversed_selection() {
    use ratatui::style::Modifier;
    let plain = Theme { color: false };
    for status in [StepStatus::Passed, StepStatus::Failed, StepStatus::Refused] {
        let (symbol, style) = plain.status(status);
        assert!(!symbol.trim().is_empty());
        assert_eq!(style.fg, None, "{status:?} is coloured under NO_COLOR");
    }
    assert!(plain.selected().add_modifier.contains(Modifier::REVERSED));
    assert!(Theme { color: true }.ok().fg.is_some());
}

#[test]
fn back_home_after_a_run_reads_the_facts_again() {
    let mut state = State::home(facts(), HOME_FLOWS);
    keys(&mut state, &[Key::Enter]);
    assert!(
        keys(&mut state, &[Key::Esc]).is_empty(),
        "no way back while running"
    );
    ended(&mut state, 100, RunStatus::Passed);
    assert_eq!(keys(&mut state, &[Key::Esc]), [Effect::RefreshHome]);
    assert!(matches!(state.screen, Screen::Home));
    let mut fresh = facts();
    fresh.journal = JournalFact::Clean;
    state.update(Msg::HomeFacts(fresh.clone()));
    assert_eq!(state.home, Some(fresh));
}

#[test]
fn a_checklist_with_several_failures_lists_them_all() {
    let mut state = State::flow(FlowKind::Predestroy, "vps-qwe".into());
    for (i, def) in FlowKind::Predestroy.steps().iter().enumerate() {
        let t = 100 * i as u64;
        step(&mut state, t, def.id.as_str(), StepStatus::Running, "");
        if i % 3 == 0 {
            output(
                &mut state,
                t + 10,
                def.id.as_str(),
                &format!("{}: checked", def.id.as_str()),
            );
            step(
                &mut state,
                t + 50,
                def.id.as_str(),
                StepStatus::Failed,
                &format!("{} is not ready", def.id.as_str()),
            );
        } else {
            step(
                &mut state,
                t + 50,
                def.id.as_str(),
                StepStatus::Passed,
                "ok",
            );
        }
    }
    ended(&mut state, 2_000, RunStatus::Failed);
    let Screen::Flow(view) = &state.screen else {
        panic!("not on the flow screen");
    };
    assert!(view.failed_steps().count() > 1);
    snapshot("checklist_failed", &state);
}

#[test]
fn the_practice_sandbox_offers_only_the_read_only_flows() {
    let mut state = State::home(facts(), PRACTICE_FLOWS);
    assert_eq!(
        keys(&mut state, &[Key::Enter]),
        [Effect::Start(FlowKind::Inspect)]
    );
    let mut state = State::home(facts(), PRACTICE_FLOWS);
    let pressed = keys(&mut state, &[Key::Down, Key::Down, Key::Down, Key::Enter]);
    assert_eq!(pressed, [Effect::Start(FlowKind::Verify)]);
    snapshot("home_practice", &State::home(facts(), PRACTICE_FLOWS));
}

#[test]
fn the_summary_has_the_final_word_on_steps_the_engine_skipped() {
    let mut state = started();
    passes(&mut state, 10, &FIRST_THREE[..1]);
    step(&mut state, 200, "identify-volume", StepStatus::Running, "");
    step(
        &mut state,
        230,
        "identify-volume",
        StepStatus::Refused,
        "blank",
    );
    let steps = FlowKind::Inspect
        .steps()
        .iter()
        .map(|def| {
            let (status, message) = match def.id.as_str() {
                "find-volume" => (StepStatus::Passed, "found"),
                "identify-volume" => (StepStatus::Refused, "blank"),
                _ => (
                    StepStatus::Skipped,
                    "not run: identify-volume refused to go on",
                ),
            };
            StepSummary {
                id: def.id.as_str(),
                status,
                message: message.into(),
                duration_ms: 0,
                not_done: None,
            }
        })
        .collect();
    event(
        &mut state,
        300,
        Event::Summary {
            flow: "inspect",
            status: RunStatus::Refused,
            dry_run: false,
            duration_ms: 300,
            steps,
            details: Box::new(FlowDetails::Inspect(InspectDetails::default())),
        },
    );
    ended(&mut state, 300, RunStatus::Refused);
    let Screen::Flow(view) = &state.screen else {
        panic!("not on the flow screen");
    };
    let measure = view
        .steps
        .iter()
        .find(|s| s.def.id.as_str() == "measure")
        .unwrap();
    assert_eq!(measure.status, StepStatus::Skipped);
    assert!(measure.message.contains("refused"));
    assert!(view.results.is_none(), "no results without details");
}
