//! The terminal wizard (ratatui): the home screen and every flow as screens, over the
//! same driver and steps as the headless front end.
//!
//! [`state`] is the pure model, updated by messages; [`screens`] and [`widgets`] draw it
//! from `&State`; [`event_loop`] is the edge that reads keys, runs the flow on a worker
//! thread ([`worker`]) and carries out effects; [`terminal`] gives the terminal back.

mod diff;
mod end;
mod event_loop;
mod facts;
mod keys;
mod output;
mod results;
mod screens;
mod scroll;
pub mod state;
mod step_view;
mod terminal;
mod theme;
mod widgets;
mod worker;

#[cfg(test)]
mod tests;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use crate::cli::Options;
use crate::config::Config;
use crate::flow::FlowKind;
use crate::session::Session;
use crate::steps::runner::Runner;

use event_loop::Wiring;
use state::{Effect, State};
use terminal::TerminalGuard;
use theme::Theme;
use worker::Machine;

/// Draw `state` on `frame` as the wizard does (in colour): public so that a benchmark can
/// time whole frames on ratatui's `TestBackend`.
pub fn draw(frame: &mut ratatui::Frame, state: &State) {
    screens::render(frame, state, Theme { color: true });
}

/// Does this invocation get the wizard: stdout is a terminal and no headless mode was asked for?
pub fn wanted(options: &Options) -> bool {
    !options.json && !options.headless && std::io::stdout().is_terminal()
}

/// `lifeboat` on a terminal: the home screen over what lifeboat finds with `cfg`.
pub fn home(options: &Options, cfg: Config) -> i32 {
    let state = State::home(facts::gather(&cfg), state::HOME_FLOWS);
    run(options, cfg, None, state, Vec::new())
}

/// `lifeboat demo` on a terminal: the home screen over the practice sandbox's config,
/// offering only the flows that cannot touch this machine.
pub fn practice(options: &Options, cfg: Config) -> i32 {
    let state = State::home(facts::gather(&cfg), state::PRACTICE_FLOWS);
    run(options, cfg, None, state, Vec::new())
}

/// A flow named on the command line (`lifeboat inspect [DEVICE]`, …) on a terminal: the
/// flow screen, started at once (it stops at its first confirmation).
pub fn flow(options: &Options, cfg: Config, kind: FlowKind, device: Option<PathBuf>) -> i32 {
    let state = State::flow(kind, facts::hostname());
    run(options, cfg, device, state, vec![Effect::Start(kind)])
}

/// Builds each run's session and runner from the config and the device asked for.
struct Launcher {
    cfg: Config,
    device: Option<PathBuf>,
    dry_run: bool,
}

impl Machine for Launcher {
    fn prepare(&self, kind: FlowKind) -> Result<(Session, Box<dyn Runner + Send>), String> {
        let session = Session::open(&self.cfg.state.dir, kind.id(), self.dry_run)
            .map_err(|e| e.to_string())?;
        let runner = crate::steps::runner_for(kind, self.cfg.clone(), self.device.clone());
        Ok((session, runner))
    }

    fn facts(&self) -> facts::HomeFacts {
        facts::gather(&self.cfg)
    }
}

fn run(
    options: &Options,
    cfg: Config,
    device: Option<PathBuf>,
    state: State,
    first: Vec<Effect>,
) -> i32 {
    let wiring = Wiring {
        machine: Arc::new(Launcher {
            cfg,
            device,
            dry_run: options.dry_run,
        }),
        assume_yes: options.yes,
        dry_run: options.dry_run,
        signals: terminal::signal_flag(),
        theme: Theme::from_env(),
    };
    let result = TerminalGuard::enter()
        .and_then(|mut guard| event_loop::run(&mut guard.terminal, state, first, &wiring));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lifeboat: the terminal failed: {e}");
            crate::report::RunStatus::Failed.exit_code()
        }
    }
}
