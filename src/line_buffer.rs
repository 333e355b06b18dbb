//! Lines kept back to be written together: a command that prints a million lines costs a
//! write for every 64 KiB of them, not one each, and memory stays bounded. A
//! [`BackgroundWriter`] makes those writes on a thread of its own.

use std::io::{self, Write};
use std::mem;
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};
use std::thread::{self, JoinHandle};

/// Lines not written yet. The owner writes them out when [`LineBuffer::is_full`] says so,
/// and whenever what they say must be seen (lifeboat is about to wait, another event).
#[derive(Debug, Default)]
pub struct LineBuffer {
    bytes: Vec<u8>,
}

impl LineBuffer {
    /// Beyond this the owner writes at once.
    const LIMIT: usize = 64 * 1024;

    pub const fn new() -> LineBuffer {
        LineBuffer { bytes: Vec::new() }
    }

    /// Where the next line is appended (the owner adds its newline).
    pub fn bytes(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    pub fn is_full(&self) -> bool {
        self.bytes.len() >= Self::LIMIT
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Write everything kept to `out` and forget it, written or not: a stream that
    /// cannot be written must not make lifeboat hold a build's whole log.
    pub fn write_to(&mut self, out: &mut impl Write) -> io::Result<()> {
        if self.bytes.is_empty() {
            return Ok(());
        }
        let written = out.write_all(&self.bytes).and_then(|()| out.flush());
        self.bytes.clear();
        written
    }
}

/// Writes buffers out on a thread of its own, so that lifeboat goes on reading a build's
/// output while the kernel copies the last 64 KiB of the transcript: those writes were a
/// quarter of following a build. At most [`BackgroundWriter::WAITING`] buffers wait (memory
/// stays bounded; the one who hands over waits when they are all taken). Write errors are
/// dropped, as [`LineBuffer::write_to`]'s callers drop them.
pub struct BackgroundWriter {
    to_thread: Option<SyncSender<Vec<u8>>>,
    /// Buffers written and emptied, to be used again.
    written: Receiver<Vec<u8>>,
    /// Buffers handed over and not back yet.
    in_flight: usize,
    thread: Option<JoinHandle<()>>,
}

impl BackgroundWriter {
    const WAITING: usize = 2;

    /// Start the thread that writes to `out`.
    pub fn spawn(mut out: impl Write + Send + 'static) -> io::Result<BackgroundWriter> {
        let (to_thread, handed_over) = sync_channel::<Vec<u8>>(Self::WAITING);
        let (give_back, written) = channel();
        let thread = thread::Builder::new()
            .name("lifeboat-writer".into())
            .spawn(move || {
                for mut bytes in handed_over {
                    let _ = out.write_all(&bytes).and_then(|()| out.flush());
                    bytes.clear();
                    if give_back.send(bytes).is_err() {
                        return;
                    }
                }
            })?;
        Ok(BackgroundWriter {
            to_thread: Some(to_thread),
            written,
            in_flight: 0,
            thread: Some(thread),
        })
    }

    /// Hand over what `buffer` holds, to be written in the background; `buffer` is left
    /// empty (with a buffer already written, when one is back).
    pub fn hand_over(&mut self, buffer: &mut LineBuffer) {
        if buffer.is_empty() {
            return;
        }
        let spare = match self.written.try_recv() {
            Ok(spare) => {
                self.in_flight -= 1;
                spare
            }
            Err(_) => Vec::new(),
        };
        let bytes = mem::replace(buffer.bytes(), spare);
        if let Some(to_thread) = &self.to_thread
            && to_thread.send(bytes).is_ok()
        {
            self.in_flight += 1;
        }
    }

    /// Return once everything handed over is written.
    pub fn wait(&mut self) {
        while self.in_flight > 0 {
            if self.written.recv().is_err() {
                break;
            }
            self.in_flight -= 1;
        }
        self.in_flight = 0;
    }
}

impl Drop for BackgroundWriter {
    /// Write what is left, then end the thread.
    fn drop(&mut self) {
        drop(self.to_thread.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_written_together_and_forgotten_even_when_the_write_fails() {
        let mut buffer = LineBuffer::new();
        buffer.bytes().extend_from_slice(b"one\ntwo\n");
        assert!(!buffer.is_full());
        let mut out = Vec::new();
        buffer.write_to(&mut out).unwrap();
        assert_eq!(out, b"one\ntwo\n");
        buffer.write_to(&mut out).unwrap();
        assert_eq!(out, b"one\ntwo\n");

        buffer.bytes().resize(LineBuffer::LIMIT, b'x');
        assert!(buffer.is_full());
        let mut full = [0u8; 16];
        assert!(buffer.write_to(&mut &mut full[..]).is_err());
        assert!(!buffer.is_full());
    }

    /// A writer that records what it was given, in order.
    #[derive(Clone, Default)]
    struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Recorder {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_background_writer_writes_everything_in_order_and_waits_for_it() {
        let out = Recorder::default();
        let mut writer = BackgroundWriter::spawn(out.clone()).unwrap();
        let mut buffer = LineBuffer::new();
        let mut expected = Vec::new();
        for round in 0..100 {
            let line = format!("line {round}\n");
            buffer.bytes().extend_from_slice(line.as_bytes());
            expected.extend_from_slice(line.as_bytes());
            writer.hand_over(&mut buffer);
            assert!(buffer.is_empty());
            if round % 10 == 0 {
                writer.wait();
                assert_eq!(*out.0.lock().unwrap(), expected);
            }
        }
        buffer.bytes().extend_from_slice(b"last\n");
        expected.extend_from_slice(b"last\n");
        writer.hand_over(&mut buffer);
        drop(writer);
        assert_eq!(*out.0.lock().unwrap(), expected);
    }
}
