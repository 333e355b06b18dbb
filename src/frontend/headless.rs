//! The headless front end: `--json` prints one event per line on stdout; `--headless`
//! prints progress for people on stderr and a summary on stdout. Confirmations are
//! answered by `--yes` only: without it a run stops at the first change (exit 4).

use std::io::{self, Write};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::exec::scan::PartialRow;
use crate::line_buffer::LineBuffer;
use crate::report::{Event, FileDiff, JsonLines, OutputLine, StepStatus};
use crate::steps::context::EventSink;
use crate::summary::TreeRow;

/// JSON lines on stdout: the contract of ARCHITECTURE.md, "Events".
pub struct JsonSink;

/// The lines [`JsonSink`] has not written yet (stdout is one for the whole process).
static JSON_PENDING: Mutex<LineBuffer> = Mutex::new(LineBuffer::new());

impl EventSink for JsonSink {
    fn emit(&self, event: &Event) {
        let mut line = Vec::with_capacity(256);
        if event.write_json(&mut line).is_ok() {
            self.emit_json(event, &line);
        }
    }

    fn emit_json(&self, _event: &Event, json: &[u8]) {
        let mut pending = lock(&JSON_PENDING);
        pending.bytes().extend_from_slice(json);
        pending.bytes().push(b'\n');
        write_stdout(&mut pending);
    }

    fn output(&self, line: OutputLine<'_>) {
        push_output(|json| line.write_json_members(json));
    }

    fn output_lines(&self, lines: &JsonLines) {
        let mut pending = lock(&JSON_PENDING);
        write_stdout(&mut pending);
        let _ = io::stdout().lock().write_all(lines.as_bytes());
    }

    fn wants_json(&self) -> bool {
        true
    }

    fn flush(&self) {
        write_stdout(&mut lock(&JSON_PENDING));
    }
}

/// Add an output line, its members written by `members`. Output lines wait for the next
/// event or for the command to go quiet (`flush`): one write for many lines, not one each.
fn push_output(members: impl FnOnce(&mut Vec<u8>)) {
    let mut pending = lock(&JSON_PENDING);
    let json = pending.bytes();
    json.push(b'{');
    members(json);
    json.push(b'\n');
    if pending.is_full() {
        write_stdout(&mut pending);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Write what is pending to stdout. stdout gone (a closed pipe) must not stop the flow:
/// the transcript still has it.
fn write_stdout(pending: &mut LineBuffer) {
    let _ = pending.write_to(&mut io::stdout().lock());
}

/// Write what is pending to stderr, as [`write_stdout`] does to stdout.
fn write_stderr(pending: &mut LineBuffer) {
    let _ = pending.write_to(&mut io::stderr().lock());
}

/// Lines for people on stderr; progress at most once a second.
pub struct HumanSink {
    last_progress: Mutex<Option<Instant>>,
    /// Output lines not written yet, as [`JsonSink`] keeps them.
    pending: Mutex<LineBuffer>,
}

impl HumanSink {
    pub fn new() -> HumanSink {
        HumanSink {
            last_progress: Mutex::new(None),
            pending: Mutex::new(LineBuffer::new()),
        }
    }

    fn progress_due(&self) -> bool {
        let mut last = lock(&self.last_progress);
        let due = last.is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
        if due {
            *last = Some(Instant::now());
        }
        due
    }
}

impl Drop for HumanSink {
    /// Output lines still kept back are written: nothing the operator was to see is lost.
    fn drop(&mut self) {
        self.flush();
    }
}

impl Default for HumanSink {
    fn default() -> Self {
        HumanSink::new()
    }
}

impl EventSink for HumanSink {
    fn emit(&self, event: &Event) {
        if let Some(line) = event.as_output_line() {
            return self.output(line);
        }
        let text = match event {
            Event::Plan {
                flow,
                dry_run,
                steps,
            } => {
                let mut text = format!(
                    "lifeboat {flow}{}: {} steps\n",
                    if *dry_run {
                        " (dry run: nothing will change)"
                    } else {
                        ""
                    },
                    steps.len()
                );
                for step in steps {
                    text.push_str(&format!("  {:<18} {}\n", step.id, step.title));
                    for action in &step.actions {
                        text.push_str(&format!("  {:<18}   will {}\n", "", action.describe()));
                    }
                }
                text
            }
            Event::Step {
                step,
                status,
                message,
                ..
            } => match status {
                StepStatus::Running => format!("==> {step}\n"),
                StepStatus::Pending => return,
                other => format!("    {}: {message}\n", status_word(*other)),
            },
            // Written by `output`, above.
            Event::Output { .. } => return,
            Event::Progress {
                done, total, unit, ..
            } => {
                if !self.progress_due() {
                    return;
                }
                let unit = serde_json::to_value(unit)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default();
                match total {
                    Some(total) => format!("    ... {done} of {total} {unit}\n"),
                    None => format!("    ... {done} {unit}\n"),
                }
            }
            Event::Summary {
                steps, duration_ms, ..
            } => {
                let mut table = String::from("Steps\n");
                for step in steps {
                    table.push_str(&format!(
                        "  {:<22} {:<18} {:>8}\n",
                        step.id,
                        status_word(step.status),
                        seconds(step.duration_ms)
                    ));
                }
                table.push_str(&format!(
                    "  {:<22} {:<18} {:>8}\n",
                    "total",
                    "",
                    seconds(*duration_ms)
                ));
                self.flush();
                let _ = io::stdout().lock().write_all(table.as_bytes());
                return;
            }
        };
        let mut pending = lock(&self.pending);
        pending.bytes().extend_from_slice(text.as_bytes());
        write_stderr(&mut pending);
    }

    fn output(&self, line: OutputLine<'_>) {
        let mut pending = lock(&self.pending);
        let bytes = pending.bytes();
        bytes.extend_from_slice(b"    | ");
        bytes.extend_from_slice(line.line.as_bytes());
        bytes.push(b'\n');
        if pending.is_full() {
            write_stderr(&mut pending);
        }
    }

    fn flush(&self) {
        write_stderr(&mut lock(&self.pending));
    }
}

fn seconds(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

fn status_word(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Passed => "ok",
        StepStatus::Warning => "warning",
        StepStatus::Failed => "FAILED",
        StepStatus::Refused => "REFUSED",
        StepStatus::Skipped => "skipped",
        StepStatus::NeedsConfirmation => "needs confirmation",
        StepStatus::Pending | StepStatus::Running => "",
    }
}

/// Sends every event to several sinks (the printer and the transcript). Output lines for the
/// sinks that write JSON are written as JSON once and kept back ([`JsonLines`]) until the
/// command goes quiet (`flush`), another event comes, or 64 KiB wait; the other sinks get
/// each line as it comes.
pub struct Tee<'a> {
    sinks: Vec<&'a dyn EventSink>,
    /// Those of `sinks` that write JSON, and the others.
    json_sinks: Vec<&'a dyn EventSink>,
    line_sinks: Vec<&'a dyn EventSink>,
    /// Output lines not handed to `json_sinks` yet.
    pending: Mutex<JsonLines>,
}

impl<'a> Tee<'a> {
    pub fn new(sinks: Vec<&'a dyn EventSink>) -> Tee<'a> {
        let (json_sinks, line_sinks) = sinks.iter().partition(|sink| sink.wants_json());
        Tee {
            sinks,
            json_sinks,
            line_sinks,
            pending: Mutex::new(JsonLines::default()),
        }
    }

    /// Hand the output lines kept back to the sinks that write JSON.
    fn hand_over(&self, pending: &mut JsonLines) {
        if pending.is_empty() {
            return;
        }
        for sink in &self.json_sinks {
            sink.output_lines(pending);
        }
        pending.clear();
    }
}

impl Drop for Tee<'_> {
    /// Output lines still kept back are handed over: nothing is lost.
    fn drop(&mut self) {
        let pending = self.pending.get_mut().unwrap_or_else(|p| p.into_inner());
        let mut lines = std::mem::take(pending);
        self.hand_over(&mut lines);
    }
}

impl EventSink for Tee<'_> {
    fn emit(&self, event: &Event) {
        self.hand_over(&mut lock(&self.pending));
        // The printer and the transcript write the same JSON: make it once.
        let mut json = Vec::new();
        if self.json_sinks.len() > 1 && event.write_json(&mut json).is_ok() {
            return self.emit_json(event, &json);
        }
        for sink in &self.sinks {
            sink.emit(event);
        }
    }

    fn emit_json(&self, event: &Event, json: &[u8]) {
        self.hand_over(&mut lock(&self.pending));
        for sink in &self.sinks {
            sink.emit_json(event, json);
        }
    }

    fn output(&self, line: OutputLine<'_>) {
        for sink in &self.line_sinks {
            sink.output(line);
        }
        if self.json_sinks.is_empty() {
            return;
        }
        let mut pending = lock(&self.pending);
        pending.push(line);
        if pending.is_full() {
            self.hand_over(&mut pending);
        }
    }

    fn output_lines(&self, lines: &JsonLines) {
        self.hand_over(&mut lock(&self.pending));
        for sink in &self.json_sinks {
            sink.output_lines(lines);
        }
    }

    fn wants_json(&self) -> bool {
        self.sinks.iter().any(|sink| sink.wants_json())
    }

    fn flush(&self) {
        self.hand_over(&mut lock(&self.pending));
        for sink in &self.sinks {
            sink.flush();
        }
    }

    fn diff(&self, step: &'static str, diff: &FileDiff) {
        self.hand_over(&mut lock(&self.pending));
        for sink in &self.sinks {
            sink.diff(step, diff);
        }
    }

    fn partial_tree(&self, rows: &[PartialRow<TreeRow>]) {
        for sink in &self.sinks {
            sink.partial_tree(rows);
        }
    }
}
