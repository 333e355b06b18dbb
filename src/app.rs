//! From a parsed command line to an exit code: load the config, open the session, pick
//! the front end, run the flow.

use crate::exit;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::cli::{Cli, Command, Options};
use crate::config::Config;
use crate::driver::Driver;
use crate::flow::{Flow, FlowKind, Msg};
use crate::frontend::headless::{HumanSink, JsonSink, Tee};
use crate::journal::Journal;
use crate::report::RunStatus;
use crate::session::Session;
use crate::steps::inspect::InspectRunner;
use crate::steps::predestroy::PredestroyRunner;
use crate::steps::recover::RecoverRunner;
use crate::steps::verify::VerifyRunner;
use crate::steps::{EventSink, Runner};

/// Run what the command line asks for; return the process exit code.
pub fn run(cli: Cli) -> i32 {
    let options = cli.options;
    match cli.command {
        None => home(&options),
        Some(Command::Predestroy) => match load_config(&options) {
            Ok(cfg) => predestroy(&options, cfg),
            Err(code) => code,
        },
        Some(Command::Recover) => match load_config(&options) {
            Ok(cfg) => recover(&options, cfg),
            Err(code) => code,
        },
        Some(Command::Verify) => match load_config(&options) {
            Ok(cfg) => verify(&options, cfg),
            Err(code) => code,
        },
        Some(Command::Inspect { device }) => match load_config(&options) {
            Ok(cfg) => inspect(&options, cfg, device),
            Err(code) => code,
        },
        Some(Command::Demo { clean, dir }) => crate::demo::run(&options, clean, &dir),
    }
}

/// `lifeboat` alone: the wizard's home screen, which needs a terminal.
fn home(options: &Options) -> i32 {
    if !crate::tui::wanted(options) {
        eprintln!(
            "lifeboat: the wizard needs a terminal. Run a flow instead, e.g. \
             `lifeboat inspect --headless` or `--json`; see `lifeboat --help`."
        );
        return exit::USAGE;
    }
    match load_config(options) {
        Ok(cfg) => crate::tui::home(options, cfg),
        Err(code) => code,
    }
}

/// The config the options point at; a bad one is reported (file, line, key) as exit 2.
pub fn load_config(options: &Options) -> Result<Config, i32> {
    Config::locate_and_load(options.config.as_deref())
        .map(|(cfg, _)| cfg)
        .map_err(|e| {
            eprintln!("lifeboat: bad config: {e}");
            exit::USAGE
        })
}

/// `lifeboat inspect [DEVICE]` with the given config: the wizard on a terminal, else headless.
pub fn inspect(options: &Options, cfg: Config, device: Option<PathBuf>) -> i32 {
    if crate::tui::wanted(options) {
        return match recorded_device(options, &cfg, FlowKind::Inspect) {
            Ok(recorded) => crate::tui::flow(options, cfg, FlowKind::Inspect, device.or(recorded)),
            Err(code) => code,
        };
    }
    with_session(options, &cfg, FlowKind::Inspect, |session| {
        let device = if options.resume {
            device.or(resumed_device(
                session.previous.as_ref(),
                FlowKind::Inspect,
            )?)
        } else {
            device
        };
        Ok(Box::new(InspectRunner::new(cfg.clone(), device)))
    })
}

/// `lifeboat predestroy` with the given config.
fn predestroy(options: &Options, cfg: Config) -> i32 {
    if crate::tui::wanted(options) {
        return crate::tui::flow(options, cfg, FlowKind::Predestroy, None);
    }
    with_session(options, &cfg, FlowKind::Predestroy, |_| {
        Ok(Box::new(PredestroyRunner::new(cfg.clone())))
    })
}

/// `lifeboat recover`; with `--resume` after the reboot it ran, `verify` instead.
pub fn recover(options: &Options, cfg: Config) -> i32 {
    let after_reboot = options.resume
        && crate::journal::Journal::load(&cfg.state.dir)
            .ok()
            .flatten()
            .is_some_and(|j| j.flow == FlowKind::Recover.id() && j.verify_due);
    if after_reboot {
        eprintln!("lifeboat: recover rebooted this machine; verifying that everything came back.");
        return verify(options, cfg);
    }
    if crate::tui::wanted(options) {
        return crate::tui::flow(options, cfg, FlowKind::Recover, None);
    }
    with_session(options, &cfg, FlowKind::Recover, |_| {
        Ok(Box::new(RecoverRunner::new(cfg.clone())))
    })
}

/// `lifeboat verify` with the given config (completed from the recovery card).
pub fn verify(options: &Options, cfg: Config) -> i32 {
    if crate::tui::wanted(options) {
        return crate::tui::flow(options, cfg, FlowKind::Verify, None);
    }
    with_session(options, &cfg, FlowKind::Verify, |_| {
        Ok(Box::new(VerifyRunner::new(cfg.clone())))
    })
}

/// Open the session for `kind`, build its runner, run it; the exit code.
fn with_session(
    options: &Options,
    cfg: &Config,
    kind: FlowKind,
    runner: impl FnOnce(&Session) -> Result<Box<dyn Runner>, i32>,
) -> i32 {
    let session = match Session::open(&cfg.state.dir, kind.id(), options.dry_run) {
        Ok(session) => session,
        Err(e) => {
            eprintln!("lifeboat: {e}");
            return RunStatus::Failed.exit_code();
        }
    };
    match runner(&session) {
        Ok(mut runner) => run_flow(options, kind, runner.as_mut(), &session),
        Err(code) => code,
    }
}

/// With `--resume`, the device the journal's run worked on, read before the wizard opens
/// the session (on its worker thread).
fn recorded_device(
    options: &Options,
    cfg: &Config,
    kind: FlowKind,
) -> Result<Option<PathBuf>, i32> {
    if !options.resume {
        return Ok(None);
    }
    let previous = Journal::load(&cfg.state.dir).map_err(|e| {
        eprintln!("lifeboat: {e}");
        RunStatus::Failed.exit_code()
    })?;
    resumed_device(previous.as_ref(), kind)
}

/// The device the journal's run of `kind` worked on; a journal of another flow, or none,
/// is a usage error that says what to run instead.
fn resumed_device(previous: Option<&Journal>, kind: FlowKind) -> Result<Option<PathBuf>, i32> {
    match previous {
        None => {
            eprintln!("lifeboat: nothing to resume: no run is recorded in the journal");
            Err(exit::USAGE)
        }
        Some(previous) if previous.flow != kind.id() => {
            eprintln!(
                "lifeboat: the journal records a {0} run; continue it with `lifeboat {0} --resume`",
                previous.flow
            );
            Err(exit::USAGE)
        }
        Some(previous) => Ok(previous.device.clone()),
    }
}

/// Ctrl-C, SIGTERM and SIGHUP ask the running step to stop (it cleans up and the run
/// exits 130); a second one ends the process at once.
fn cancel_on_signals() -> Arc<AtomicBool> {
    let cancel = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        // Registration fails only for forbidden signals, which these are not.
        let _ = signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&cancel));
        let _ = signal_hook::flag::register(signal, Arc::clone(&cancel));
    }
    cancel
}

/// Drive `runner` through `kind` with the front end the options choose.
fn run_flow(options: &Options, kind: FlowKind, runner: &mut dyn Runner, session: &Session) -> i32 {
    let json = options.json;
    let human = HumanSink::new();
    let printer: &dyn EventSink = if json { &JsonSink } else { &human };
    let mut sinks = vec![printer];
    if let Some(transcript) = &session.transcript {
        sinks.push(transcript);
    }
    let tee = Tee::new(sinks);
    let cancel = cancel_on_signals();
    let driver = Driver {
        sink: &tee,
        journal: &session.journal,
        cancel: &cancel,
        dry_run: options.dry_run,
    };
    let mut flow = Flow::new(kind, options.yes);
    let status = driver.drive(&mut flow, runner, &mut |step, question| {
        if !json {
            eprintln!(
                "    {step} needs confirmation: {}\n    Run again with --yes to allow it.",
                question.text
            );
        }
        Msg::Declined
    });
    if !json {
        print_summary(runner, &flow, status, session);
    }
    status.exit_code()
}

fn print_summary(runner: &dyn Runner, flow: &Flow, status: RunStatus, session: &Session) {
    let mut out = runner.human_summary(flow);
    let word = serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    out.push(format!("Result  {word}"));
    if let Some(transcript) = &session.transcript {
        out.push(format!(
            "Transcript  {}",
            crate::escape::shown(transcript.path())
        ));
    }
    println!("{}", out.join("\n"));
}
