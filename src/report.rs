//! The events a flow run produces (the `--json` contract, ARCHITECTURE.md "Events") and the
//! actions a step describes before it runs.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::escape::{JSON_SPECIAL, Plain};
use crate::exit;
use crate::summary::{FlowDetails, NotDone};

/// Something a step will do to the machine, described exactly, before it does it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Action {
    Command {
        argv: Vec<String>,
    },
    Git {
        op: String,
        url: String,
        path: String,
    },
    Mount {
        device: String,
        target: String,
        options: Vec<String>,
    },
    Write {
        path: String,
    },
    Move {
        from: String,
        to: String,
    },
}

impl Action {
    /// One line for people: what `--dry-run` and the headless front end print.
    pub fn describe(&self) -> String {
        match self {
            Action::Command { argv } => format!("run {}", argv.join(" ")),
            Action::Git { op, url, path } => format!("git {op} {url} {path}"),
            Action::Mount {
                device,
                target,
                options,
            } => format!("mount -o {} {device} {target}", options.join(",")),
            Action::Write { path } => format!("write {path}"),
            Action::Move { from, to } => format!("move {from} to {to}"),
        }
    }
}

/// A step as the plan event lists it.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedStep {
    pub id: &'static str,
    pub title: &'static str,
    pub actions: Vec<Action>,
}

/// How a step stands, as events and the summary name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    Pending,
    Running,
    Passed,
    Warning,
    Failed,
    Skipped,
    Refused,
    NeedsConfirmation,
}

/// How a whole run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Passed,
    Failed,
    Refused,
    Stopped,
    Interrupted,
}

impl RunStatus {
    /// The process exit code for this outcome.
    pub fn exit_code(self) -> i32 {
        match self {
            RunStatus::Passed => exit::PASSED,
            RunStatus::Failed => exit::FAILED,
            RunStatus::Refused => exit::REFUSED,
            RunStatus::Stopped => exit::STOPPED,
            RunStatus::Interrupted => exit::INTERRUPTED,
        }
    }
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// What a progress count counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Files,
    Bytes,
    Objects,
    Derivations,
}

/// One step's line in the summary.
#[derive(Debug, Clone, Serialize)]
pub struct StepSummary {
    pub id: &'static str,
    pub status: StepStatus,
    pub message: String,
    pub duration_ms: u64,
    /// Why it did no work, when the engine knows.
    #[serde(skip)]
    pub not_done: Option<NotDone>,
}

/// A file's changes as a unified diff (escaped lines), the committed version against the
/// new one: for a front end that can show more than lines (the TUI's diff view). Not part
/// of the JSON contract; the same lines are emitted as output too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDiff {
    /// The file, as shown to people.
    pub file: String,
    pub lines: Vec<String>,
}

/// One event of a run; `--json` prints each as one line.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Event {
    Plan {
        flow: &'static str,
        dry_run: bool,
        steps: Vec<PlannedStep>,
    },
    Step {
        flow: &'static str,
        step: &'static str,
        status: StepStatus,
        message: String,
    },
    Output {
        flow: &'static str,
        step: &'static str,
        stream: Stream,
        line: String,
    },
    Progress {
        flow: &'static str,
        step: &'static str,
        done: u64,
        total: Option<u64>,
        unit: Unit,
    },
    Summary {
        flow: &'static str,
        status: RunStatus,
        dry_run: bool,
        duration_ms: u64,
        steps: Vec<StepSummary>,
        /// What the flow found (`volume`, `layout`, `tree` for inspect…).
        #[serde(flatten)]
        details: Box<FlowDetails>,
    },
}

impl Event {
    /// Append the event as one line of JSON without the newline, byte for byte what
    /// `serde_json::to_writer` writes. Output, nearly every event of a build, has a
    /// hand-written path: serde's generic one cost a third of following a build's log.
    pub fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let Some(line) = self.as_output_line() else {
            return serde_json::to_writer(out, self);
        };
        out.push(b'{');
        line.write_json_members(out);
        Ok(())
    }

    /// An output event as the line sinks take.
    pub fn as_output_line(&self) -> Option<OutputLine<'_>> {
        match self {
            Event::Output {
                flow,
                step,
                stream,
                line,
            } => Some(OutputLine::new(flow, step, *stream, line)),
            _ => None,
        }
    }
}

/// A line of output as a step hands it to the sinks: [`Event::Output`] borrowed, so that a
/// sink that writes it out (the `--json` printer, the transcript) copies it once, into its
/// own buffer, and a build's million lines cost no allocation each.
#[derive(Debug, Clone, Copy)]
pub struct OutputLine<'a> {
    pub flow: &'static str,
    pub step: &'static str,
    pub stream: Stream,
    /// Already escaped where it comes from outside.
    pub line: &'a str,
    /// `line` is [`Plain`]: JSON holds it as it is.
    plain: bool,
}

impl<'a> OutputLine<'a> {
    pub fn new(flow: &'static str, step: &'static str, stream: Stream, line: &'a str) -> Self {
        OutputLine {
            flow,
            step,
            stream,
            line,
            plain: false,
        }
    }

    /// A line known to be plain text, which is written without looking for what to escape.
    pub fn plain(flow: &'static str, step: &'static str, stream: Stream, line: Plain<'a>) -> Self {
        OutputLine {
            plain: true,
            ..OutputLine::new(flow, step, stream, line.as_str())
        }
    }

    /// The event, for a sink that keeps it.
    pub fn to_event(self) -> Event {
        Event::Output {
            flow: self.flow,
            step: self.step,
            stream: self.stream,
            line: self.line.to_string(),
        }
    }

    /// Append the event's JSON after its opening brace: `"event":"output",…,"line":"…"}`,
    /// byte for byte as serde writes it.
    pub fn write_json_members(self, out: &mut Vec<u8>) {
        self.write_json_head(out);
        self.write_json_tail(out);
    }

    /// The members up to the line's text: the same for every line of a step's stream.
    fn write_json_head(self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\"event\":\"output\",\"flow\":");
        push_json_str(out, self.flow);
        out.extend_from_slice(b",\"step\":");
        push_json_str(out, self.step);
        out.extend_from_slice(match self.stream {
            Stream::Stdout => b",\"stream\":\"stdout\",\"line\":",
            Stream::Stderr => b",\"stream\":\"stderr\",\"line\":",
        });
    }

    /// The line's text as a JSON string, and the closing brace.
    fn write_json_tail(self, out: &mut Vec<u8>) {
        if self.plain {
            out.reserve(self.line.len() + 3);
            out.push(b'"');
            out.extend_from_slice(self.line.as_bytes());
            out.extend_from_slice(b"\"}");
        } else {
            // Room for a few escapes.
            out.reserve(self.line.len() + 16);
            push_json_str(out, self.line);
            out.push(b'}');
        }
    }

    /// Is the head of this line's JSON the same as `other`'s? Flow and step names are
    /// static strings, the same one for every line of a step: compared by where they are,
    /// not byte by byte (names equal but elsewhere only cost writing the head again).
    fn same_head(self, other: OutputLine<'_>) -> bool {
        std::ptr::eq(self.flow, other.flow)
            && std::ptr::eq(self.step, other.step)
            && self.stream == other.stream
    }
}

/// Output lines as JSON, `{…}\n` each, as the `--json` printer writes them: made once for
/// all the sinks that write JSON and handed to them together (a read of a command's output
/// at a time) rather than line by line, which cost each sink a lock, a clock reading and a
/// call per line of a build. The members before a line's text, the same for every line of
/// a step, are copied from the line before.
#[derive(Debug, Default)]
pub struct JsonLines {
    bytes: Vec<u8>,
    /// Where each line starts in `bytes`.
    starts: Vec<usize>,
    /// The last line's head (`{"event":"output",…,"line":`): whose it is and where.
    head: Option<(OutputLine<'static>, Range<usize>)>,
}

impl JsonLines {
    /// Beyond this the holder hands the lines over at once.
    const LIMIT: usize = 64 * 1024;

    /// Add `line`.
    pub fn push(&mut self, line: OutputLine<'_>) {
        let start = self.bytes.len();
        match &self.head {
            Some((last, head)) if last.same_head(line) => {
                self.bytes.extend_from_within(head.clone());
            }
            _ => {
                self.bytes.push(b'{');
                line.write_json_head(&mut self.bytes);
                let key = OutputLine::new(line.flow, line.step, line.stream, "");
                self.head = Some((key, start..self.bytes.len()));
            }
        }
        line.write_json_tail(&mut self.bytes);
        self.bytes.push(b'\n');
        self.starts.push(start);
    }

    pub fn is_full(&self) -> bool {
        self.bytes.len() >= Self::LIMIT
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// All the lines, each with its newline.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Each line's JSON object, without its newline.
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> {
        let ends = self.starts.iter().skip(1).copied();
        self.starts
            .iter()
            .zip(ends.chain([self.bytes.len()]))
            .map(|(&start, end)| &self.bytes[start..end - 1])
    }

    /// Forget the lines (once handed over).
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.starts.clear();
        self.head = None;
    }
}

/// Append `text` as a JSON string as serde_json writes it: `"` and `\\` escaped with a
/// backslash, `\b \f \n \r \t` by name, the other C0 controls as `\u00xx`. Runs that need
/// nothing are found sixteen bytes at a time and copied whole.
fn push_json_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.push(b'"');
    let mut start = 0;
    while let Some(offset) = JSON_SPECIAL.find(&bytes[start..]) {
        let at = start + offset;
        out.extend_from_slice(&bytes[start..at]);
        let b = bytes[at];
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
        start = at + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::RecoverDetails;
    use serde_json::json;

    #[test]
    fn output_is_written_as_serde_writes_it() {
        let mut texts: Vec<String> = (0u32..0x100)
            .filter_map(char::from_u32)
            .map(|c| format!("a{c}b\"q\\{c}{c}"))
            .collect();
        texts.push(String::new());
        texts.push("plain text longer than a block of sixteen bytes, é and ✓".into());
        texts.push("\u{1b}[31mred\u{1b}[0m\t\"quoted\"\\x".into());
        for line in texts {
            for stream in [Stream::Stdout, Stream::Stderr] {
                let event = Event::Output {
                    flow: "recover",
                    step: "build",
                    stream,
                    line: line.clone(),
                };
                let mut fast = Vec::new();
                event.write_json(&mut fast).unwrap();
                assert_eq!(
                    String::from_utf8(fast).unwrap(),
                    serde_json::to_string(&event).unwrap()
                );
            }
        }
    }

    #[test]
    fn lines_written_together_are_each_written_as_serde_writes_them() {
        let mut json = JsonLines::default();
        // The same names elsewhere in memory too.
        let build: &'static str = String::from("build").leak();
        let steps = [
            ("recover", "build"),
            ("recover", "boot"),
            ("inspect", "build"),
            ("recover", build),
        ];
        let texts = ["make all", "", "tab\there \"q\"", "é", "gcc -c a.c"];
        let mut expected = Vec::new();
        for round in 0..40 {
            let (flow, step) = steps[round % 7 % 4];
            let stream = [Stream::Stdout, Stream::Stderr][round % 5 % 2];
            let text = texts[round % texts.len()];
            let line = match Plain::new(text) {
                Some(plain) if round % 2 == 0 => OutputLine::plain(flow, step, stream, plain),
                _ => OutputLine::new(flow, step, stream, text),
            };
            json.push(line);
            expected.push(serde_json::to_string(&line.to_event()).unwrap());
            if round == 17 {
                assert!(!json.is_empty());
                json.clear();
                expected.clear();
            }
        }
        let lines: Vec<&str> = json
            .lines()
            .map(|line| std::str::from_utf8(line).unwrap())
            .collect();
        assert_eq!(lines, expected);
        let all = expected
            .iter()
            .map(|line| format!("{line}\n"))
            .collect::<String>();
        assert_eq!(json.as_bytes(), all.as_bytes());
        json.clear();
        assert!(json.is_empty());
        assert_eq!(json.lines().count(), 0);
    }

    #[test]
    fn events_serialise_to_the_contract_shapes() {
        let plan = Event::Plan {
            flow: "inspect",
            dry_run: true,
            steps: vec![PlannedStep {
                id: "mount-readonly",
                title: "Mount read-only",
                actions: vec![Action::Mount {
                    device: "/dev/loop0".into(),
                    target: "/mnt/data".into(),
                    options: vec!["ro".into(), "nosuid".into()],
                }],
            }],
        };
        assert_eq!(
            serde_json::to_value(&plan).unwrap(),
            json!({"event":"plan","flow":"inspect","dry_run":true,"steps":[{"id":"mount-readonly",
              "title":"Mount read-only","actions":[{"kind":"mount","device":"/dev/loop0",
              "target":"/mnt/data","options":["ro","nosuid"]}]}]})
        );
        let step = Event::Step {
            flow: "inspect",
            step: "find-volume",
            status: StepStatus::NeedsConfirmation,
            message: String::new(),
        };
        assert_eq!(
            serde_json::to_value(&step).unwrap()["status"],
            json!("needs-confirmation")
        );
        let progress = Event::Progress {
            flow: "inspect",
            step: "measure",
            done: 5,
            total: None,
            unit: Unit::Files,
        };
        assert_eq!(
            serde_json::to_value(&progress).unwrap(),
            json!({"event":"progress","flow":"inspect","step":"measure","done":5,"total":null,"unit":"files"})
        );
    }

    #[test]
    fn summary_flattens_flow_details() {
        let details = FlowDetails::Recover(RecoverDetails {
            host: "qwe".into(),
            ..RecoverDetails::default()
        });
        let summary = Event::Summary {
            flow: "inspect",
            status: RunStatus::Refused,
            dry_run: false,
            duration_ms: 3,
            steps: vec![],
            details: Box::new(details),
        };
        let value = serde_json::to_value(&summary).unwrap();
        assert_eq!(value["event"], "summary");
        assert_eq!(value["status"], "refused");
        assert_eq!(value["host"], "qwe");
        assert_eq!(value["system"], serde_json::Value::Null);
    }

    #[test]
    fn exit_codes_follow_the_contract() {
        assert_eq!(RunStatus::Passed.exit_code(), 0);
        assert_eq!(RunStatus::Failed.exit_code(), 1);
        assert_eq!(RunStatus::Refused.exit_code(), 3);
        assert_eq!(RunStatus::Stopped.exit_code(), 4);
        assert_eq!(RunStatus::Interrupted.exit_code(), 130);
    }
}
