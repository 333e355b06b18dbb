//! Step runners: the code that checks or does what a step of a flow stands for.
//! They do their I/O through `exec/` and report through a [`StepContext`].

pub mod credentials;
pub mod find_volume;
pub mod identify;
pub mod inspect;
pub mod layout;
pub mod measure;
pub mod on_volume;
pub mod predestroy;
pub mod readonly_mount;
pub mod recover;
pub mod verify;

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::flow::{Flow, Outcome};
use crate::journal::{Journal, JournalError};
use crate::report::{Action, Event, Stream, Unit};

/// The running system, as NixOS links it.
pub const CURRENT_SYSTEM: &str = "/run/current-system";

/// Where events go: the headless printer, the transcript, the TUI's channel.
/// Steps emit from worker threads too, hence `Sync`.
pub trait EventSink: Sync {
    fn emit(&self, event: &Event);

    /// The size tree as far as `measure`'s walk has come (a few times a second). It is no
    /// event of the JSON contract: only the wizard shows it, every other sink drops it.
    fn partial_tree(&self, _rows: &[measure::PartialTreeRow]) {}
}

/// A flow's step runners, driven step by step by the front end.
pub trait Runner {
    /// The exact actions step `id` may take, for the plan event and `--dry-run`.
    fn actions(&self, id: &str) -> Vec<Action>;
    /// Run the step `id`. `confirmed` once the operator agreed to its change.
    fn run(&mut self, id: &'static str, confirmed: bool, ctx: &StepContext) -> Outcome;
    /// Flow-specific facts for the summary event, once `flow` is over.
    fn details(&self, flow: &Flow) -> serde_json::Map<String, serde_json::Value>;
    /// The same facts as lines for people (the headless summary on stdout).
    fn human_summary(&self, flow: &Flow) -> Vec<String>;
    /// Undo what a step left for later ones (a mount) when the run ends before they did.
    /// Called once, after the last step, whatever happened.
    fn finish(&mut self, _ctx: &StepContext) {}
}

/// The journal of the run, shared by the driver and the steps that record mounts.
/// Without a state directory (`--dry-run`) it is kept in memory only.
pub struct JournalHandle {
    state_dir: Option<PathBuf>,
    journal: Mutex<Journal>,
}

impl JournalHandle {
    pub fn new(journal: Journal, state_dir: Option<PathBuf>) -> JournalHandle {
        JournalHandle {
            state_dir,
            journal: Mutex::new(journal),
        }
    }

    /// Change the journal and write it to disk before returning.
    pub fn update(&self, change: impl FnOnce(&mut Journal)) -> Result<(), JournalError> {
        let mut journal = self
            .journal
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut journal);
        match &self.state_dir {
            Some(dir) => journal.save(dir),
            None => Ok(()),
        }
    }

    /// A copy of the journal as it stands.
    pub fn snapshot(&self) -> Journal {
        self.journal
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// The gate before a change: in a dry run the step is skipped, saying what it would do;
/// not yet confirmed, it asks. `None` once the operator (or `--yes`) agreed.
pub fn ask_before(ctx: &StepContext, confirmed: bool, change: &str) -> Option<Outcome> {
    if ctx.dry_run {
        return Some(Outcome::Skipped(format!("dry run: would {change}")));
    }
    (!confirmed).then(|| Outcome::NeedsConfirmation(format!("{change}?")))
}

/// What a running step may use: the event sink, the cancel flag, the journal.
pub struct StepContext<'a> {
    pub flow: &'static str,
    pub step: &'static str,
    pub sink: &'a dyn EventSink,
    pub cancel: &'a AtomicBool,
    pub dry_run: bool,
    pub journal: &'a JournalHandle,
}

impl StepContext<'_> {
    /// A line of output for the operator (already escaped where it comes from outside).
    pub fn output(&self, line: impl Into<String>) {
        self.sink.emit(&Event::Output {
            flow: self.flow,
            step: self.step,
            stream: Stream::Stdout,
            line: line.into(),
        });
    }

    pub fn progress(&self, done: u64, total: Option<u64>, unit: Unit) {
        self.sink.emit(&Event::Progress {
            flow: self.flow,
            step: self.step,
            done,
            total,
            unit,
        });
    }

    /// The size tree so far, for the front ends that show it growing.
    pub fn partial_tree(&self, rows: &[measure::PartialTreeRow]) {
        self.sink.partial_tree(rows);
    }

    /// Has Ctrl-C or SIGTERM asked the run to stop?
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}
