//! What a running step may use: where its events go, the cancel flag and the journal,
//! through a [`StepContext`]; and the gate every change passes.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::escape::{Text, escape_text};
use crate::exec::process::{self, Line, LongLines, Piece};
use crate::exec::scan::PartialRow;
use crate::flow::{Assent, Outcome, Question, StepId};
use crate::journal::{Journal, JournalError};
use crate::report::{Event, FileDiff, JsonLines, OutputLine, Stream, Unit};
use crate::summary::TreeRow;

/// Where events go: the headless printer, the transcript, the TUI's channel.
/// Steps emit from worker threads too, hence `Sync`.
pub trait EventSink: Sync {
    fn emit(&self, event: &Event);
    /// A line of a command's output: [`Event::Output`] without the copy an event needs, for
    /// sinks that write it out straight away (a build prints a million of them).
    fn output(&self, line: OutputLine<'_>) {
        self.emit(&line.to_event());
    }
    /// Output lines already written as JSON, for a sink that [`EventSink::wants_json`]:
    /// the `Tee` of a run writes each line's JSON once for all such sinks and hands them a
    /// read of a command's output at a time. No other sink is given them.
    fn output_lines(&self, _lines: &JsonLines) {}
    /// [`EventSink::emit`] with the event already written as JSON ([`Event::write_json`]),
    /// so that several sinks that write JSON serialise a build's line once between them.
    fn emit_json(&self, event: &Event, _json: &[u8]) {
        self.emit(event);
    }
    /// Does this sink write events as JSON (so that [`EventSink::emit_json`] and
    /// [`EventSink::output_lines`] are its paths)?
    fn wants_json(&self) -> bool {
        false
    }
    /// Write out what `emit` kept back. Sinks may buffer output lines; lifeboat calls this
    /// before it waits for more of a command's output, so that nothing shown so far sits in
    /// a buffer while the command is quiet. Every event but output flushes by itself.
    fn flush(&self) {}
    /// A diff step `step` produced, for front ends that show it as such; the others have
    /// its lines from [`Event::Output`] already.
    fn diff(&self, _step: &'static str, _diff: &FileDiff) {}

    /// The size tree as far as `measure`'s walk has come (a few times a second). It is no
    /// event of the JSON contract: only the wizard shows it, every other sink drops it.
    fn partial_tree(&self, _rows: &[PartialRow<TreeRow>]) {}
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
            .unwrap_or_else(std::sync::PoisonError::into_inner);
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
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// A change a step wants to make, as the operator is asked about it: what it does (a phrase
/// that follows "would": "install X as this machine's boot entry"), what to know before the
/// question and after it, and the assent it needs. [`ask_before`] says every change the
/// same way: the question, or in a dry run "dry run: would …".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    what: String,
    why: Option<String>,
    after: Option<String>,
    assent: Assent,
}

impl Change {
    pub fn new(what: impl Into<String>, assent: Assent) -> Change {
        Change {
            what: what.into(),
            why: None,
            after: None,
            assent,
        }
    }

    /// What the operator should know first: said before the question.
    pub fn because(mut self, why: impl Into<String>) -> Change {
        self.why = Some(why.into());
        self
    }

    /// Said after the question (what it will not do, another way out).
    pub fn then(mut self, after: impl Into<String>) -> Change {
        self.after = Some(after.into());
        self
    }

    /// One question for this change and then `next`: "… <what>, and then <next>?".
    pub fn followed_by(mut self, next: &str) -> Change {
        self.what = format!("{}, and then {next}", self.what);
        self
    }

    /// "<why>. <What>? <after>".
    pub fn question(&self) -> Question {
        let asked = match &self.why {
            Some(why) => format!("{why}. {}", capitalized(&self.what)),
            None => self.what.clone(),
        };
        let text = match &self.after {
            Some(after) => format!("{asked}? {after}"),
            None => format!("{asked}?"),
        };
        Question {
            text,
            assent: self.assent,
        }
    }

    /// "dry run: would <what> (<why>)".
    fn dry_run(&self) -> String {
        match &self.why {
            Some(why) => would(&format!("{} ({why})", self.what)),
            None => would(&self.what),
        }
    }
}

/// What a dry run says instead of doing `what`.
fn would(what: &str) -> String {
    format!("dry run: would {what}")
}

/// The gate before work nobody is asked about (a build into the store, a read-only mount,
/// the rehearsal): skipped in a dry run, saying what it would do as every change does.
pub fn skip_in_dry_run(ctx: &StepContext, what: &str) -> Option<Outcome> {
    ctx.dry_run.then(|| Outcome::Skipped(would(what)))
}

/// `text` with its first letter upper-case.
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// The gate before a change: in a dry run the step is skipped, saying what it would do;
/// not yet confirmed, it asks. `None` once the operator (or `--yes`) agreed.
pub fn ask_before(ctx: &StepContext, confirmed: bool, change: &Change) -> Option<Outcome> {
    if confirmed && !ctx.dry_run {
        return None;
    }
    Some(ask(ctx, change))
}

/// The gate for a change the step has just worked out (it asks even after an earlier
/// confirmation): skipped in a dry run, else the question.
pub fn ask(ctx: &StepContext, change: &Change) -> Outcome {
    if ctx.dry_run {
        Outcome::Skipped(change.dry_run())
    } else {
        Outcome::NeedsConfirmation(change.question())
    }
}

/// A line callback for [`process::run_streaming`] that hands `show` each line once (a
/// long line's first piece) and notes in the step's output how much of a long line was
/// left out.
pub fn each_line<'a>(
    ctx: &'a StepContext<'a>,
    mut show: impl FnMut(Line<'_>) + 'a,
) -> impl FnMut(Line<'_>) + 'a {
    let mut long = LongLines::default();
    move |line| match long.sort(line) {
        Piece::Show(line) => show(line),
        Piece::Skip => {}
        Piece::Cut { left_out, .. } => ctx.output(process::cut_note(left_out)),
    }
}

/// What a running step may use: the event sink, the cancel flag, the journal.
pub struct StepContext<'a> {
    pub flow: &'static str,
    pub step: StepId,
    pub sink: &'a dyn EventSink,
    pub cancel: &'a AtomicBool,
    pub dry_run: bool,
    pub journal: &'a JournalHandle,
}

impl StepContext<'_> {
    /// A line of output for the operator (already escaped where it comes from outside).
    pub fn output(&self, line: impl AsRef<str>) {
        let line = OutputLine::new(self.flow, self.step.as_str(), Stream::Stdout, line.as_ref());
        self.sink.output(line);
    }

    /// A line of text from outside (from Nix's JSON log): escaped for display, or handed
    /// over as plain text, known to need no escaping at all.
    pub fn output_text(&self, text: &Text<'_>) {
        match text {
            Text::Plain(plain) => {
                let line = OutputLine::plain(self.flow, self.step.as_str(), Stream::Stdout, *plain);
                self.sink.output(line);
            }
            Text::Other(text) => self.output(escape_text(text)),
        }
    }

    /// The changes to `file` as a unified diff: output lines for every front end, and the
    /// diff itself for those that can show it.
    pub fn diff(&self, file: String, lines: Vec<String>) {
        for line in &lines {
            self.output(line.clone());
        }
        self.sink
            .diff(self.step.as_str(), &FileDiff { file, lines });
    }

    pub fn progress(&self, done: u64, total: Option<u64>, unit: Unit) {
        self.sink.emit(&Event::Progress {
            flow: self.flow,
            step: self.step.as_str(),
            done,
            total,
            unit,
        });
    }

    /// The size tree so far, for the front ends that show it growing.
    pub fn partial_tree(&self, rows: &[PartialRow<TreeRow>]) {
        self.sink.partial_tree(rows);
    }

    /// [`process::run_streaming_with`] with this step's cancel flag, the sink flushed whenever
    /// lifeboat is about to wait for more output.
    pub fn run_streaming(
        &self,
        spec: &process::CommandSpec,
        on_line: &mut dyn FnMut(Line<'_>),
    ) -> Result<process::Finished, process::ProcessError> {
        process::run_streaming_with(spec, on_line, &|| self.sink.flush(), self.cancel)
    }

    /// Has Ctrl-C or SIGTERM asked the run to stop?
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
