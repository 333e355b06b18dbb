//! Names and output from the volume are untrusted: they may hold escape sequences,
//! newlines or invalid UTF-8. Everything lifeboat prints goes through [`escape_bytes`].

use std::ffi::OsStr;
use std::fmt::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Printable text for arbitrary bytes: printable UTF-8 stays as it is, a backslash
/// becomes `\\`, control characters become `\n`, `\t`, `\e` or `\u{..}`, and bytes that are
/// not UTF-8 become `\xNN`. The result never contains a control character.
pub fn escape_bytes(bytes: &[u8]) -> String {
    // Checking the whole at once is much faster than walking it in chunks, and nearly all
    // output is valid UTF-8.
    if let Ok(text) = std::str::from_utf8(bytes) {
        return escape_text(text);
    }
    let mut out = String::with_capacity(bytes.len() + 16);
    for chunk in bytes.utf8_chunks() {
        escape_str(chunk.valid(), &mut out);
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// [`escape_bytes`] of text known to be UTF-8 (a string from Nix's JSON log), without
/// checking it again.
pub fn escape_text(text: &str) -> String {
    // Room for a few escapes, each a byte or two longer than what it stands for.
    let mut out = String::with_capacity(text.len() + 16);
    escape_str(text, &mut out);
    out
}

/// Append `text` escaped. Runs of characters that stay as they are are copied whole: a
/// build log is mostly such text.
fn escape_str(mut text: &str, out: &mut String) {
    while let Some(at) = find_byte(text.as_bytes(), may_need_escape_word, may_need_escape) {
        out.push_str(&text[..at]);
        let rest = &text[at..];
        let Some(c) = rest.chars().next() else {
            return;
        };
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x1b' => out.push_str("\\e"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
        text = &rest[c.len_utf8()..];
    }
    out.push_str(text);
}

/// Can the character starting at (or containing) byte `b` need escaping? The C0 controls,
/// DEL and the backslash are single bytes; the C1 controls (U+0080..U+009F) start with 0xC2.
fn may_need_escape(b: u8) -> bool {
    b < 0x20 || b == 0x7f || b == b'\\' || b == 0xc2
}

fn may_need_escape_word(word: u64) -> bool {
    has_less_than(word, 0x20)
        || has_byte(word, 0x7f)
        || has_byte(word, b'\\')
        || has_byte(word, 0xc2)
}

/// The first byte of `bytes` for which `byte` holds, looking at eight bytes at a time for
/// words where `word` says one may be: log lines are long runs that need nothing.
/// `word` may say yes where no byte is (it is only a filter), never no where one is.
pub(crate) fn find_byte(
    bytes: &[u8],
    word: impl Fn(u64) -> bool,
    byte: impl Fn(u8) -> bool,
) -> Option<usize> {
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in chunks.by_ref() {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(chunk);
        if word(u64::from_le_bytes(eight)) {
            if let Some(i) = chunk.iter().position(|&b| byte(b)) {
                return Some(at + i);
            }
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| byte(b))
        .map(|i| at + i)
}

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// Does any byte of `word` lie below `n` (at most 0x80)? Exact for the word as a whole.
pub(crate) fn has_less_than(word: u64, n: u8) -> bool {
    word.wrapping_sub(ONES * u64::from(n)) & !word & HIGHS != 0
}

/// Is any byte of `word` equal to `b`?
pub(crate) fn has_byte(word: u64, b: u8) -> bool {
    has_less_than(word ^ (ONES * u64::from(b)), 1)
}

/// [`escape_bytes`] of a file name.
pub fn escape_os(name: &OsStr) -> String {
    escape_bytes(name.as_bytes())
}

/// [`escape_bytes`] of a path: how every path is shown.
pub fn shown(path: &Path) -> String {
    escape_os(path.as_os_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(
            escape_bytes("qwe/nix/store/é".as_bytes()),
            "qwe/nix/store/é"
        );
    }

    #[test]
    fn control_characters_and_invalid_utf8_are_escaped() {
        let hostile = b"a\x1b[31mred\nline\\\x07\xff\xfe";
        let shown = escape_bytes(hostile);
        assert_eq!(shown, "a\\e[31mred\\nline\\\\\\u{7}\\xff\\xfe");
        assert!(!shown.chars().any(char::is_control));
    }

    #[test]
    fn the_word_filters_find_every_byte() {
        for b in 0..=255u8 {
            for place in 0..8 {
                let mut eight = [b'a'; 8];
                eight[place] = b;
                let word = u64::from_le_bytes(eight);
                assert!(has_byte(word, b));
                assert_eq!(has_less_than(word, 0x20), b < 0x20);
                assert_eq!(may_need_escape_word(word), may_need_escape(b), "{b:#x}");
            }
        }
        let text = b"0123456789abcdef\x1b tail";
        assert_eq!(
            find_byte(text, may_need_escape_word, may_need_escape),
            Some(16)
        );
        assert_eq!(
            find_byte(b"abc\\", may_need_escape_word, may_need_escape),
            Some(3)
        );
        assert_eq!(
            find_byte(b"plain", may_need_escape_word, may_need_escape),
            None
        );
    }

    #[test]
    fn c1_controls_are_escaped() {
        assert_eq!(escape_bytes("x\u{9b}y".as_bytes()), "x\\u{9b}y");
    }

    #[test]
    fn characters_near_the_escaped_ones_are_kept() {
        // U+00A0..U+00BF share the lead byte 0xC2 with the C1 controls.
        assert_eq!(
            escape_bytes("a\u{a9}b\u{9f}c".as_bytes()),
            "a\u{a9}b\\u{9f}c"
        );
        assert_eq!(escape_bytes(b"tab\tend\\"), "tab\\tend\\\\");
        assert_eq!(escape_bytes(b"\xc2"), "\\xc2");
    }
}
