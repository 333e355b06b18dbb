//! A transcript of every run under `[state].dir/transcripts/`: each event with its time,
//! one JSON object per line, so what happened can be read after the fact.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::report::Event;
use crate::steps::EventSink;

/// Appends events to the run's transcript file.
pub struct TranscriptSink {
    path: PathBuf,
    out: Mutex<BufWriter<File>>,
}

impl TranscriptSink {
    /// A new transcript for run `run_id` of `flow` (private: it names the machine's paths).
    pub fn create(state_dir: &Path, run_id: &str, flow: &str) -> io::Result<TranscriptSink> {
        let dir = state_dir.join("transcripts");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        let path = dir.join(format!("{run_id}-{flow}.jsonl"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        Ok(TranscriptSink {
            path,
            out: Mutex::new(BufWriter::new(file)),
        })
    }

    /// Where the transcript is written.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl EventSink for TranscriptSink {
    fn emit(&self, event: &Event) {
        // `{"time":"…",` and then the event's own members: the same line as a struct with
        // the event flattened into it, without serde's slower path for flattening.
        let mut json = Vec::with_capacity(256);
        if serde_json::to_writer(&mut json, event).is_err() {
            return;
        }
        let Some(members) = json.strip_prefix(b"{") else {
            return;
        };
        let time = jiff::Timestamp::now();
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        // A transcript that cannot be written must not stop the run it describes.
        let _ = write!(out, "{{\"time\":\"{time}\",");
        let _ = out.write_all(members);
        let _ = out.write_all(b"\n");
        if !matches!(event, Event::Progress { .. } | Event::Output { .. }) {
            let _ = out.flush();
        }
    }
}

impl Drop for TranscriptSink {
    fn drop(&mut self) {
        let out = self.out.get_mut().unwrap_or_else(|p| p.into_inner());
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{StepStatus, Stream};

    #[test]
    fn every_event_becomes_a_timed_json_line() {
        let dir = tempfile::tempdir().unwrap();
        let sink = TranscriptSink::create(dir.path(), "run-1", "inspect").unwrap();
        sink.emit(&Event::Output {
            flow: "inspect",
            step: "measure",
            stream: Stream::Stdout,
            line: "hello".into(),
        });
        sink.emit(&Event::Step {
            flow: "inspect",
            step: "measure",
            status: StepStatus::Passed,
            message: "done".into(),
        });
        let path = sink.path().to_path_buf();
        drop(sink);
        let text = fs::read_to_string(path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["line"], "hello");
        assert_eq!(lines[1]["status"], "passed");
        assert!(lines[1]["time"].as_str().unwrap().starts_with("20"));
    }
}
