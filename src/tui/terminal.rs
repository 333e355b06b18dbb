//! The terminal is always given back as it was found: on a normal exit and on an error
//! (the guard's drop), on a panic (the hook), on SIGTERM and SIGHUP (the loop sees the
//! flag and leaves through the guard).

use std::io::{self, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, ThreadId};

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::{cursor, execute, terminal};

/// Raw mode and the alternate screen, undone when dropped.
pub struct TerminalGuard {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

/// Whether the terminal is in the wizard's hands (the panic hook restores it only then).
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// The thread that draws: a panic there restores the terminal before the message prints.
static UI_THREAD: OnceLock<ThreadId> = OnceLock::new();
/// Panics of other threads while the wizard is up, printed once the terminal is back.
static LATE_PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

impl TerminalGuard {
    /// Enter raw mode and the alternate screen; install the panic hook.
    pub fn enter() -> io::Result<TerminalGuard> {
        install_panic_hook();
        terminal::enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        let mut stdout = io::stdout();
        // From here on, a failure is undone by the guard's drop.
        let guard = |terminal| TerminalGuard { terminal };
        execute!(stdout, terminal::EnterAlternateScreen, cursor::Hide)
            .inspect_err(|_| restore())?;
        Terminal::new(CrosstermBackend::new(stdout))
            .map(guard)
            .inspect_err(|_| restore())
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
        let late = std::mem::take(
            &mut *LATE_PANICS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for message in late {
            eprintln!("{message}");
        }
    }
}

/// Leave the alternate screen and raw mode (once: later calls do nothing).
fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = execute!(io::stdout(), terminal::LeaveAlternateScreen, cursor::Show);
        let _ = terminal::disable_raw_mode();
    }
}

fn install_panic_hook() {
    if UI_THREAD.set(thread::current().id()).is_err() {
        return;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let on_ui = UI_THREAD.get() == Some(&thread::current().id());
        if on_ui || !ACTIVE.load(Ordering::SeqCst) {
            restore();
            previous(info);
        } else {
            // Printing now would scribble over the screen; the flow worker reports its
            // own panic as a failed run.
            let name = thread::current().name().unwrap_or("a worker").to_string();
            LATE_PANICS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(format!("lifeboat: {name} panicked: {info}"));
        }
    }));
}

/// A flag raised by SIGTERM, SIGHUP and SIGINT (Ctrl-C itself arrives as a key in raw mode).
pub fn signal_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGINT,
    ] {
        // Registration fails only for forbidden signals, which these are not.
        let _ = signal_hook::flag::register(signal, Arc::clone(&flag));
    }
    flag
}
