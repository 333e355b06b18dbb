//! A transcript of every run under `[state].dir/transcripts/`: each event with its time,
//! one JSON object per line, so what happened can be read after the fact.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use nix::time::{ClockId, clock_gettime};

use crate::line_buffer::{BackgroundWriter, LineBuffer};
use crate::report::{Event, JsonLines, OutputLine};
use crate::steps::context::EventSink;

/// Appends events to the run's transcript file.
pub struct TranscriptSink {
    path: PathBuf,
    out: Mutex<Transcript>,
}

/// The open transcript: the file, the lines not written to it yet, the clock that times them.
/// A transcript that cannot be written must not stop the run it describes: write errors
/// are dropped.
struct Transcript {
    file: File,
    /// Writes output lines in the background (none when its thread could not start).
    writer: Option<BackgroundWriter>,
    pending: LineBuffer,
    clock: Clock,
}

impl Transcript {
    /// Start a line: `{"time":"…",`, the event's members follow.
    fn start_line(&mut self) -> &mut Vec<u8> {
        let line = self.pending.bytes();
        self.clock.write_time(line);
        line
    }

    /// Write out the pending lines, in the background when there is a writer thread:
    /// output lines, which the run need not wait for.
    fn write_later(&mut self) {
        match &mut self.writer {
            Some(writer) => writer.hand_over(&mut self.pending),
            None => {
                let _ = self.pending.write_to(&mut self.file);
            }
        }
    }

    /// Write out the pending lines and return once everything is written: an event that
    /// says where the run stands is on disk when it goes on.
    fn write_out(&mut self) {
        self.write_later();
        if let Some(writer) = &mut self.writer {
            writer.wait();
        }
    }
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
        let writer = file.try_clone().and_then(BackgroundWriter::spawn).ok();
        Ok(TranscriptSink {
            path,
            out: Mutex::new(Transcript {
                file,
                writer,
                pending: LineBuffer::new(),
                clock: Clock::default(),
            }),
        })
    }

    /// Where the transcript is written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Transcript> {
        self.out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Add an output line, its members written by `members`; written out with the next
    /// event, at a flush, or once 64 KiB wait.
    fn push_output(&self, members: impl FnOnce(&mut Vec<u8>)) {
        let mut transcript = self.lock();
        let line = transcript.start_line();
        members(line);
        line.push(b'\n');
        if transcript.pending.is_full() {
            transcript.write_later();
        }
    }
}

impl EventSink for TranscriptSink {
    fn emit(&self, event: &Event) {
        let mut json = Vec::with_capacity(256);
        if event.write_json(&mut json).is_ok() {
            self.emit_json(event, &json);
        }
    }

    fn emit_json(&self, event: &Event, json: &[u8]) {
        // `{"time":"…",` and then the event's own members: the same line as a struct with
        // the event flattened into it, without serde's slower path for flattening.
        let Some(members) = json.strip_prefix(b"{") else {
            return;
        };
        let mut transcript = self.lock();
        let line = transcript.start_line();
        line.extend_from_slice(members);
        line.push(b'\n');
        match event {
            Event::Progress { .. } if transcript.pending.is_full() => transcript.write_later(),
            Event::Progress { .. } => {}
            _ => transcript.write_out(),
        }
    }

    fn output(&self, line: OutputLine<'_>) {
        self.push_output(|json| line.write_json_members(json));
    }

    fn output_lines(&self, lines: &JsonLines) {
        let mut transcript = self.lock();
        // Lines handed over together were read together: one time for all.
        let mut time = Vec::with_capacity(48);
        transcript.clock.write_time(&mut time);
        for json in lines.lines() {
            let Some(members) = json.strip_prefix(b"{") else {
                continue;
            };
            let line = transcript.pending.bytes();
            line.extend_from_slice(&time);
            line.extend_from_slice(members);
            line.push(b'\n');
            if transcript.pending.is_full() {
                transcript.write_later();
            }
        }
    }

    fn wants_json(&self) -> bool {
        true
    }

    fn flush(&self) {
        self.lock().write_later();
    }
}

/// The time as jiff writes a timestamp (`2026-11-26T13:02:12.1234Z`: the fraction without
/// its trailing zeros, none when zero), with the date and time of day formatted once a
/// second: jiff's printer cost as much as the rest of a transcript line. The time is the
/// kernel's coarse real-time clock, which moves a tick (a few milliseconds) at a time and
/// costs a fraction of the precise one; a build's lines come faster than its ticks, and
/// each tick is formatted once.
#[derive(Default)]
struct Clock {
    second: Option<i64>,
    /// The date and time of day of `second`, without the `Z`.
    prefix: String,
    /// The last tick read and the whole timestamp of it.
    tick: Option<(i64, i64)>,
    stamp: Vec<u8>,
}

impl Clock {
    /// `{"time":"…",`, with which every line of the transcript starts.
    fn write_time(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"time\":\"");
        self.write_now(out);
        out.extend_from_slice(b"\",");
    }

    fn write_now(&mut self, out: &mut Vec<u8>) {
        let Ok(now) = clock_gettime(ClockId::CLOCK_REALTIME_COARSE) else {
            return self.write(jiff::Timestamp::now(), out);
        };
        let tick = (now.tv_sec(), now.tv_nsec());
        if self.tick != Some(tick) {
            let Ok(time) = jiff::Timestamp::new(tick.0, tick.1 as i32) else {
                return self.write(jiff::Timestamp::now(), out);
            };
            let mut stamp = std::mem::take(&mut self.stamp);
            stamp.clear();
            self.write(time, &mut stamp);
            (self.stamp, self.tick) = (stamp, Some(tick));
        }
        out.extend_from_slice(&self.stamp);
    }

    fn write(&mut self, time: jiff::Timestamp, out: &mut Vec<u8>) {
        let (second, nanos) = (time.as_second(), time.subsec_nanosecond());
        if nanos < 0 {
            // Before 1970: not worth a fast path.
            return out.extend_from_slice(time.to_string().as_bytes());
        }
        if self.second != Some(second) {
            let Ok(whole) = jiff::Timestamp::from_second(second) else {
                return out.extend_from_slice(time.to_string().as_bytes());
            };
            self.prefix = whole.to_string();
            self.prefix.pop();
            self.second = Some(second);
        }
        out.extend_from_slice(self.prefix.as_bytes());
        if nanos != 0 {
            let mut fraction = *b".000000000";
            let mut rest = nanos.unsigned_abs();
            for digit in fraction[1..].iter_mut().rev() {
                *digit = b'0' + (rest % 10) as u8;
                rest /= 10;
            }
            let end = fraction
                .iter()
                .rposition(|&b| b != b'0')
                .map_or(0, |i| i + 1);
            out.extend_from_slice(&fraction[..end]);
        }
        out.push(b'Z');
    }
}

impl Drop for TranscriptSink {
    fn drop(&mut self) {
        self.out
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .write_out();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{StepStatus, Stream};

    #[test]
    fn the_clock_writes_times_as_jiff_does() {
        let mut clock = Clock::default();
        let base = jiff::Timestamp::from_second(1_795_000_000).unwrap();
        let nanos = [
            0,
            1,
            10,
            999,
            1_000,
            120_000_000,
            123_456_789,
            999_999_999,
            500_000_000,
        ];
        for (i, nano) in nanos.into_iter().enumerate() {
            for time in [base, base + jiff::SignedDuration::from_secs(i as i64 % 3)] {
                let time = time + jiff::SignedDuration::from_nanos(nano);
                let mut text = Vec::new();
                clock.write(time, &mut text);
                assert_eq!(String::from_utf8(text).unwrap(), time.to_string());
            }
        }
        let old = jiff::Timestamp::from_second(-1).unwrap() + jiff::SignedDuration::from_nanos(5);
        let mut text = Vec::new();
        clock.write(old, &mut text);
        assert_eq!(String::from_utf8(text).unwrap(), old.to_string());
    }

    #[test]
    fn now_is_the_coarse_clock_written_as_jiff_writes_it() {
        let mut clock = Clock::default();
        // A tick is at most 10 ms (HZ 100): the coarse clock trails the precise one by less.
        let tick = jiff::SignedDuration::from_millis(20);
        for _ in 0..3 {
            let before = jiff::Timestamp::now();
            let mut text = Vec::new();
            clock.write_now(&mut text);
            let after = jiff::Timestamp::now();
            let text = String::from_utf8(text).unwrap();
            let time: jiff::Timestamp = text.parse().unwrap();
            assert_eq!(time.to_string(), text);
            assert!(
                before - tick <= time && time <= after,
                "{before} {time} {after}"
            );
            // Long enough that a stale stamp would fall outside the bounds.
            std::thread::sleep(std::time::Duration::from_millis(30));
        }
    }

    #[test]
    fn an_output_line_is_written_as_its_event_with_the_time() {
        let dir = tempfile::tempdir().unwrap();
        let sink = TranscriptSink::create(dir.path(), "run-1", "recover").unwrap();
        let line = OutputLine::new("recover", "build", Stream::Stderr, "a \"quoted\" \\ é\u{7}");
        sink.output(line);
        let mut lines = JsonLines::default();
        lines.push(line);
        lines.push(line);
        sink.output_lines(&lines);
        let path = sink.path().to_path_buf();
        drop(sink);
        let expected = serde_json::to_value(line.to_event()).unwrap();
        let text = fs::read_to_string(path).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        for written in text.lines() {
            let mut written: serde_json::Value = serde_json::from_str(written).unwrap();
            let time = written.as_object_mut().unwrap().remove("time").unwrap();
            assert!(time.as_str().unwrap().parse::<jiff::Timestamp>().is_ok());
            assert_eq!(written, expected);
        }
    }

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
