//! The loop at the edge: draw the state, read keys, collect the worker's reports and
//! signals, feed them to [`State::update`] and carry out the effects it returns.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Select, Sender, TryRecvError, bounded};
use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::crossterm::event::{self, Event as TermEvent};

use crate::flow;
use crate::report::RunStatus;

use super::keys::{self, Key};
use super::screens;
use super::state::{Effect, FromWorker, Msg, Quit, State};
use super::theme::Theme;
use super::worker::{self, Envelope, Machine, RunSpec};

/// How long to wait for a key or a report before drawing again (running steps' clocks).
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
    reply: Option<Sender<flow::Msg>>,
    /// A second signal: leave without waiting for the worker.
    abandoned: bool,
}

/// Run the wizard until the operator quits; return the exit code. The flow's worker has
/// ended (and cleaned up) when this returns, also when the terminal failed (SIGHUP closed
/// it): then the step is cancelled first. Only a second signal leaves without waiting.
pub fn run<B: Backend<Error = io::Error>>(
    terminal: &mut Terminal<B>,
    state: State,
    first: Vec<Effect>,
    wiring: &Wiring,
) -> io::Result<i32> {
    let (to_ui, from_worker) = bounded::<Envelope>(4096);
    let mut run = Run {
        handle: None,
        cancel: Arc::new(AtomicBool::new(false)),
        reply: None,
        abandoned: false,
    };
    let result = turns(
        terminal,
        state,
        first,
        wiring,
        &mut run,
        &to_ui,
        &from_worker,
    );
    if result.is_err() {
        run.cancel.store(true, Ordering::SeqCst);
    }
    // A question still waiting is cancelled, and a worker blocked on a full channel
    // gets an error instead of waiting for a screen that is gone.
    run.reply = None;
    drop(from_worker);
    if let Some(handle) = run.handle.take().filter(|_| !run.abandoned) {
        let _ = handle.join();
    }
    result
}

/// The loop itself: draw, read, update, execute, until the state is done.
fn turns<B: Backend<Error = io::Error>>(
    terminal: &mut Terminal<B>,
    mut state: State,
    first: Vec<Effect>,
    wiring: &Wiring,
    run: &mut Run,
    to_ui: &Sender<Envelope>,
    from_worker: &Receiver<Envelope>,
) -> io::Result<i32> {
    let started = Instant::now();
    let keys = key_reader()?;
    let mut effects = first;
    let mut answers = Vec::new();
    loop {
        for effect in effects.drain(..) {
            answers.extend(execute(effect, run, wiring, to_ui)?);
        }
        if state.done() {
            break;
        }
        terminal.draw(|frame| screens::render(frame, &state, wiring.theme))?;
        let mut msgs = std::mem::take(&mut answers);
        // Wake for a key or a report, else after a tick; then take whatever came.
        let mut ready = Select::new();
        ready.recv(&keys);
        ready.recv(from_worker);
        // Either is ready (or neither, after a tick): nothing is taken off a channel yet.
        let _ = ready.ready_timeout(POLL);
        match keys.try_recv() {
            Ok(key) => msgs.push(Msg::Key(key)),
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => {
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the terminal is gone",
                ));
            }
        }
        if wiring.signals.swap(false, Ordering::SeqCst) {
            if state.quit == Quit::WhenIdle {
                // A second signal: leave now; the journal lets the next run undo a mount.
                run.abandoned = true;
                return Ok(RunStatus::Interrupted.exit_code());
            }
            msgs.push(Msg::Signal);
        }
        let worker_gone = run.handle.as_ref().is_some_and(JoinHandle::is_finished);
        msgs.extend(reports(from_worker, run, started));
        msgs.push(Msg::Tick(started.elapsed()));
        for msg in msgs {
            effects.extend(state.update(msg));
        }
        if worker_gone {
            let panicked = run.handle.take().is_some_and(|h| h.join().is_err());
            if state.running() || panicked {
                // The worker ended without saying so: never leave the screen waiting.
                terminal.clear()?;
                let ended = Msg::Worker(started.elapsed(), FromWorker::Ended(RunStatus::Failed));
                effects.extend(state.update(ended));
            }
        }
    }
    Ok(state.exit_code())
}

/// Keys on a thread of their own, so the loop never blocks in the terminal: crossterm's
/// read spins forever on a terminal that hung up, and the loop must still see the signal
/// and let the worker clean up. The channel closes when the terminal cannot be read.
fn key_reader() -> io::Result<Receiver<Key>> {
    let (tx, rx) = bounded(64);
    thread::Builder::new()
        .name("lifeboat-keys".into())
        .spawn(move || {
            while let Ok(event) = event::read() {
                let key = match event {
                    TermEvent::Key(key) => keys::from_crossterm(key),
                    _ => None,
                };
                if key.is_some_and(|key| tx.send(key).is_err()) {
                    return;
                }
            }
        })?;
    Ok(rx)
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

/// Carry out `effect`; what it learnt comes back as a message.
fn execute(
    effect: Effect,
    run: &mut Run,
    wiring: &Wiring,
    to_ui: &Sender<Envelope>,
) -> io::Result<Option<Msg>> {
    match effect {
        Effect::Start(kind) => {
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
        Effect::Answer(answer) => {
            if let Some(reply) = run.reply.take() {
                let _ = reply.send(answer);
            }
        }
        Effect::Cancel => run.cancel.store(true, Ordering::SeqCst),
        Effect::RefreshHome => return Ok(Some(Msg::HomeFacts(wiring.machine.facts()))),
    }
    Ok(None)
}
