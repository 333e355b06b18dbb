//! Times drawing the wizard's flow screen at 120×40 on ratatui's `TestBackend` while a
//! build's log fills the output pane: with the scrollback full (10,000 lines), a frame as
//! it is redrawn, and a frame after one more line came in.

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::Criterion;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use nixos_lifeboat::flow::FlowKind;
use nixos_lifeboat::report::{Event, PlannedStep, StepStatus, Stream, Unit};
use nixos_lifeboat::tui::state::{FromWorker, Msg, State};

mod common;

const LINES: usize = 10_000;
/// A frame at 60 Hz: what a frame's drawing is held against.
const FRAME_BUDGET_NS: f64 = 1e9 / 60.0;
const REDRAW: &str = "flow_120x40_10k_lines_redraw";
const NEW_LINE: &str = "flow_120x40_10k_lines_new_line";

fn event(state: &mut State, ms: u64, event: Event) {
    state.update(Msg::Worker(
        Duration::from_millis(ms),
        FromWorker::Event(event),
    ));
}

fn step(state: &mut State, ms: u64, id: &'static str, status: StepStatus) {
    let message = if status == StepStatus::Passed {
        "ok"
    } else {
        ""
    };
    event(
        state,
        ms,
        Event::Step {
            flow: "recover",
            step: id,
            status,
            message: message.into(),
        },
    );
}

/// A build log line like those `nixos-rebuild` shows (escaped, as steps hand them over).
fn log_line(n: usize) -> String {
    match n % 4 {
        0 => format!(
            "gcc -DHAVE_CONFIG_H -I. -I./include -O2 -g -Wall -fPIC -c src/lib_{n}.c -o src/lib_{n}.o"
        ),
        1 => format!("checking for feature_{n}... yes"),
        2 => format!(
            "src/lib_{n}.c:12:5: \\e[1;35mwarning: \\e[0munused variable 'tmp' [-Wunused-variable]"
        ),
        _ => format!("PASS: test-{n}"),
    }
}

fn output(state: &mut State, ms: u64, n: usize) {
    event(
        state,
        ms,
        Event::Output {
            flow: "recover",
            step: "build",
            stream: Stream::Stdout,
            line: log_line(n),
        },
    );
}

/// Recover with its steps up to `build` passed and the build running, its log filling the
/// scrollback.
fn building() -> State {
    let mut state = State::flow(FlowKind::Recover, "vps-qwe".into());
    let steps = FlowKind::Recover.steps();
    let plan = steps
        .iter()
        .map(|def| PlannedStep {
            id: def.id.as_str(),
            title: def.title,
            actions: Vec::new(),
        })
        .collect();
    event(
        &mut state,
        0,
        Event::Plan {
            flow: "recover",
            dry_run: false,
            steps: plan,
        },
    );
    for (i, def) in steps
        .iter()
        .take_while(|def| def.id.as_str() != "build")
        .enumerate()
    {
        step(
            &mut state,
            100 * i as u64,
            def.id.as_str(),
            StepStatus::Running,
        );
        step(
            &mut state,
            100 * i as u64 + 50,
            def.id.as_str(),
            StepStatus::Passed,
        );
    }
    step(&mut state, 2_000, "build", StepStatus::Running);
    for n in 0..LINES {
        output(&mut state, 2_000 + n as u64, n);
    }
    event(
        &mut state,
        12_000,
        Event::Progress {
            flow: "recover",
            step: "build",
            done: 812,
            total: Some(1_214),
            unit: Unit::Derivations,
        },
    );
    state
}

fn flow_screen(c: &mut Criterion) {
    let mut state = building();
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("test backend");
    c.bench_function(REDRAW, |b| {
        b.iter(|| {
            terminal
                .draw(|frame| nixos_lifeboat::tui::draw(frame, &state))
                .expect("draw");
        });
    });
    let mut n = LINES;
    c.bench_function(NEW_LINE, |b| {
        b.iter(|| {
            n += 1;
            output(&mut state, 12_000 + n as u64, n);
            terminal
                .draw(|frame| nixos_lifeboat::tui::draw(frame, &state))
                .expect("draw");
        });
    });
}

/// Criterion's estimate of the time of one iteration of benchmark `id` (the slope it prints,
/// else the mean), in nanoseconds; `None` when it did not measure (`--test`, a filter that
/// left it out).
fn estimate_ns(dir: &Path, id: &str) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join(id).join("new/estimates.json")).ok()?;
    let estimates: serde_json::Value = serde_json::from_str(&text).ok()?;
    estimates["slope"]["point_estimate"]
        .as_f64()
        .or_else(|| estimates["mean"]["point_estimate"].as_f64())
}

fn main() {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
        .join("criterion");
    let mut c = Criterion::default()
        .output_directory(&dir)
        .configure_from_args();
    flow_screen(&mut c);
    c.final_summary();
    for (id, what) in [(REDRAW, "redraw"), (NEW_LINE, "line added")] {
        let Some(took) = estimate_ns(&dir, id) else {
            eprintln!("no estimate of {id} under {}", dir.display());
            continue;
        };
        common::summary_row(
            &format!("TUI flow 120x40, {LINES}-line log: {what}"),
            &format!("{:.0} us", took / 1e3),
            "60 Hz frame 16667 us",
            took / FRAME_BUDGET_NS,
            "< 1",
        );
    }
}
