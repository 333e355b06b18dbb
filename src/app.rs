//! From a parsed command line to an exit code: load the config, open the session, pick
//! the front end, run the flow.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::cli::{Cli, Command, Options};
use crate::config::Config;
use crate::driver::Driver;
use crate::exit;
use crate::flow::{Flow, FlowKind, Msg};
use crate::frontend::headless::{HumanSink, JsonSink, Tee};
use crate::journal::Journal;
use crate::report::RunStatus;
use crate::session::Session;
use crate::steps::context::EventSink;
use crate::steps::predestroy::readiness;
use crate::steps::runner::Runner;
use crate::steps::runner_for;
use crate::summary::FlowDetails;

/// The front end of a run, chosen once from the options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrontEnd {
    /// The terminal wizard (`tui`).
    Wizard,
    /// Progress on stderr and a summary, or JSON events (`frontend::headless`).
    Headless,
}

/// Run what the command line asks for; return the process exit code.
pub fn run(cli: Cli) -> i32 {
    let mut options = cli.options;
    if let Some(Command::Predestroy { refresh: true }) = cli.command {
        // A timer has no terminal and nobody to answer: never the wizard.
        options.refresh = true;
        options.headless |= !options.json;
    }
    let front = if crate::tui::wanted(&options) {
        FrontEnd::Wizard
    } else {
        FrontEnd::Headless
    };
    let (kind, device) = match cli.command {
        None => return home(&options, front),
        Some(Command::Demo { clean, dir }) => return demo(&options, front, clean, &dir),
        Some(Command::Predestroy { .. }) => (FlowKind::Predestroy, None),
        Some(Command::Recover) => (FlowKind::Recover, None),
        Some(Command::Verify) => (FlowKind::Verify, None),
        Some(Command::Inspect { device }) => (FlowKind::Inspect, device),
    };
    match load_config(&options) {
        Ok(cfg) => flow(&options, front, cfg, kind, device),
        Err(code) => code,
    }
}

/// `lifeboat demo`: a practice volume, then the wizard on it (or inspect headless).
fn demo(options: &Options, front: FrontEnd, clean: bool, dir: &Path) -> i32 {
    let practice = match crate::demo::prepare(options, clean, dir) {
        Ok(practice) => practice,
        Err(code) => return code,
    };
    let afterword = practice.afterword();
    let code = match front {
        FrontEnd::Wizard => crate::tui::practice(options, practice.cfg),
        FrontEnd::Headless => flow(options, front, practice.cfg, FlowKind::Inspect, None),
    };
    if !options.json {
        eprintln!("{afterword}");
    }
    code
}

/// `lifeboat` alone: the wizard's home screen, which needs a terminal.
fn home(options: &Options, front: FrontEnd) -> i32 {
    if front == FrontEnd::Headless {
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

/// Run flow `kind` (inspect's DEVICE in `device`) in the front end the options ask for: the
/// wizard on a terminal, else headless. `recover --resume` after the reboot it ran verifies.
fn flow(
    options: &Options,
    front: FrontEnd,
    cfg: Config,
    kind: FlowKind,
    device: Option<PathBuf>,
) -> i32 {
    let kind = if kind == FlowKind::Recover && rebooted(options, &cfg) {
        eprintln!("lifeboat: recover rebooted this machine; verifying that everything came back.");
        FlowKind::Verify
    } else {
        kind
    };
    // Only inspect works on a device of its own; --resume continues with the journal's.
    let resumed = |previous: Option<&Journal>| match (kind, options.resume) {
        (FlowKind::Inspect, true) => Ok(device.clone().or(resumed_device(previous, kind)?)),
        _ => Ok(device.clone()),
    };
    if front == FrontEnd::Wizard {
        let previous = if options.resume && kind == FlowKind::Inspect {
            match Journal::load(&cfg.state.dir) {
                Ok(previous) => previous,
                Err(e) => {
                    eprintln!("lifeboat: {e}");
                    return exit::FAILED;
                }
            }
        } else {
            None
        };
        return match resumed(previous.as_ref()) {
            Ok(device) => crate::tui::flow(options, cfg, kind, device),
            Err(code) => code,
        };
    }
    with_session(options, &cfg, kind, |session| {
        Ok(runner_for(
            kind,
            cfg.clone(),
            resumed(session.previous.as_ref())?,
        ))
    })
}

/// Did the run the journal records reach recover's reboot?
fn rebooted(options: &Options, cfg: &Config) -> bool {
    options.resume
        && Journal::load(&cfg.state.dir)
            .ok()
            .flatten()
            .is_some_and(|j| j.flow == FlowKind::Recover.id() && j.verify_due)
}

/// Open the session for `kind`, build its runner, run it; the exit code.
fn with_session(
    options: &Options,
    cfg: &Config,
    kind: FlowKind,
    runner: impl FnOnce(&Session) -> Result<Box<dyn Runner + Send>, i32>,
) -> i32 {
    let session = match Session::open(&cfg.state.dir, kind.id(), options.dry_run) {
        Ok(session) => session,
        Err(e) => {
            eprintln!("lifeboat: {e}");
            return RunStatus::Failed.exit_code();
        }
    };
    match runner(&session) {
        Ok(mut runner) => run_flow(options, cfg, kind, runner.as_mut(), &session),
        Err(code) => code,
    }
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
fn run_flow(
    options: &Options,
    cfg: &Config,
    kind: FlowKind,
    runner: &mut dyn Runner,
    session: &Session,
) -> i32 {
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
    let mut flow = if options.refresh {
        Flow::refreshing(kind)
    } else {
        Flow::new(kind, options.yes)
    };
    let status = driver.drive(&mut flow, runner, &mut |step, question| {
        if !json {
            eprintln!(
                "    {step} needs confirmation: {}\n    Run again with --yes to allow it.",
                question.text
            );
        }
        Msg::Declined
    });
    // An unattended refresh keeps its verdict (an interrupted one has none).
    let refreshed = match (options.refresh && status != RunStatus::Interrupted)
        .then(|| runner.details(&flow))
    {
        Some(FlowDetails::Predestroy(details)) => Some(readiness::Readiness::of(&details)),
        _ => None,
    };
    if let Some(verdict) = refreshed.as_ref().filter(|_| !options.dry_run) {
        for line in readiness::record(cfg, verdict) {
            eprintln!("lifeboat: {line}");
        }
    }
    if !json {
        print_summary(runner, &flow, status, session);
    }
    // A timer reads two answers: ready, or not (whatever kept it from ready).
    match refreshed {
        Some(verdict) if verdict.ready => exit::PASSED,
        Some(_) => exit::FAILED,
        None => status.exit_code(),
    }
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
