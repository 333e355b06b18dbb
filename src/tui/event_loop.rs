//! The loop at the edge: draw the state, read keys, collect the worker's reports and
//! signals, feed them to [`State::update`] and carry out the commands it returns.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};
use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::crossterm::event::{self, Event as TermEvent};

use crate::flow::Msg as FlowMsg;
use crate::report::RunStatus;

use super::keys;
use super::screens;
use super::state::{Command, FromWorker, Msg, Quit, State};
use super::theme::Theme;
use super::worker::{self, Envelope, Machine, RunSpec};

/// How long to wait for a key before looking at the worker again.
const POLL: Duration = Duration::from_millis(50);
/// Reports taken per round, so a flood of progress events cannot starve the keys.
const BATCH: usize = 5_000;

/// What the loop needs from outside.
pub struct Wiring {
    pub machine: Arc<dyn Machine>,
    pub assume_yes: bool,
    pub dry_run: bool,
    /// Raised by SIGTERM/SIGHUP/SIGINT.
    pub signals: Arc<AtomicBool>,
    pub theme: Theme,
}

/// The running flow, if any, and how to talk to it.
struct Run {
    handle: Option<JoinHandle<()>>,
    cancel: Arc<AtomicBool>,
    reply: Option<Sender<FlowMsg>>,
}

/// Run the wizard until the operator quits; return the exit code.
pub fn run<B: Backend>(
    terminal: &mut Terminal<B>,
    mut state: State,
    first: Vec<Command>,
    wiring: &Wiring,
) -> io::Result<i32> {
    let started = Instant::now();
    let (to_ui, from_worker) = bounded::<Envelope>(4096);
    let mut run = Run {
        handle: None,
        cancel: Arc::new(AtomicBool::new(false)),
        reply: None,
    };
    let mut commands = first;
    let mut answers = Vec::new();
    loop {
        for command in commands.drain(..) {
            answers.extend(execute(command, &mut run, wiring, &to_ui)?);
        }
        if state.done() {
            break;
        }
        terminal.draw(|frame| screens::render(frame, &state, wiring.theme))?;
        let mut msgs = std::mem::take(&mut answers);
        if event::poll(POLL)? {
            if let TermEvent::Key(key) = event::read()? {
                msgs.extend(keys::from_crossterm(key).map(Msg::Key));
            }
        }
        if wiring.signals.swap(false, Ordering::SeqCst) {
            if state.quit == Quit::WhenIdle {
                // A second signal: leave now; the journal lets the next run undo a mount.
                return Ok(RunStatus::Interrupted.exit_code());
            }
            msgs.push(Msg::Signal);
        }
        let worker_gone = run.handle.as_ref().is_some_and(JoinHandle::is_finished);
        msgs.extend(reports(&from_worker, &mut run, started));
        msgs.push(Msg::Tick(started.elapsed()));
        for msg in msgs {
            commands.extend(state.update(msg));
        }
        if worker_gone {
            let panicked = run.handle.take().is_some_and(|h| h.join().is_err());
            if state.running() || panicked {
                // The worker ended without saying so: never leave the screen waiting.
                terminal.clear()?;
                let ended = Msg::Worker(started.elapsed(), FromWorker::Ended(RunStatus::Failed));
                commands.extend(state.update(ended));
            }
        }
    }
    if let Some(handle) = run.handle.take() {
        let _ = handle.join();
    }
    Ok(state.exit_code())
}

fn reports(from_worker: &Receiver<Envelope>, run: &mut Run, started: Instant) -> Vec<Msg> {
    from_worker
        .try_iter()
        .take(BATCH)
        .map(|envelope| {
            if envelope.reply.is_some() {
                run.reply = envelope.reply;
            }
            Msg::Worker(started.elapsed(), envelope.msg)
        })
        .collect()
}

/// Carry out `command`; what it learnt comes back as a message.
fn execute(
    command: Command,
    run: &mut Run,
    wiring: &Wiring,
    to_ui: &Sender<Envelope>,
) -> io::Result<Option<Msg>> {
    match command {
        Command::Start(kind) => {
            if let Some(previous) = run.handle.take() {
                // Only an ended run is re-run, so this returns at once.
                let _ = previous.join();
            }
            run.cancel = Arc::new(AtomicBool::new(false));
            run.reply = None;
            let spec = RunSpec {
                kind,
                assume_yes: wiring.assume_yes,
                dry_run: wiring.dry_run,
            };
            run.handle = Some(worker::spawn(
                spec,
                Arc::clone(&wiring.machine),
                Arc::clone(&run.cancel),
                to_ui.clone(),
            )?);
        }
        Command::Answer(answer) => {
            if let Some(reply) = run.reply.take() {
                let _ = reply.send(answer);
            }
        }
        Command::Cancel => run.cancel.store(true, Ordering::SeqCst),
        Command::RefreshHome => return Ok(Some(Msg::HomeFacts(wiring.machine.facts()))),
    }
    Ok(None)
}
