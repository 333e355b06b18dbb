//! Lines kept back to be written together: a command that prints a million lines costs a
//! write for every 64 KiB of them, not one each, and memory stays bounded.

use std::io::{self, Write};

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
}
