//! Names and output from the volume are untrusted: they may hold escape sequences,
//! newlines or invalid UTF-8. Everything lifeboat prints goes through [`escape_bytes`].

use std::borrow::Cow;
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
        return escape_text(text).into_owned();
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
/// checking it again; borrowed when nothing in it needs escaping, as nearly every line of
/// a build log.
pub fn escape_text(text: &str) -> Cow<'_, str> {
    if MAY_NEED_ESCAPE.find(text.as_bytes()).is_none() {
        return Cow::Borrowed(text);
    }
    // Room for a few escapes, each a byte or two longer than what it stands for.
    let mut out = String::with_capacity(text.len() + 16);
    escape_str(text, &mut out);
    Cow::Owned(out)
}

/// Append `text` escaped. Runs of characters that stay as they are are copied whole: a
/// build log is mostly such text.
fn escape_str(mut text: &str, out: &mut String) {
    while let Some(at) = MAY_NEED_ESCAPE.find(text.as_bytes()) {
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

/// Bytes where a character that needs escaping can start (or lie): the C0 controls, DEL
/// and the backslash are single bytes; the C1 controls (U+0080..U+009F) start with 0xC2.
const MAY_NEED_ESCAPE: ByteClass = ByteClass {
    below: 0x20,
    at_least: None,
    any_of: &[0x7f, b'\\', 0xc2],
};

/// Text that is shown and written into a JSON string as it is: printable ASCII without `"`
/// or `\`. Nearly every line of a build's log is such text; knowing it when the line is
/// read spares checking its UTF-8, escaping it for the screen and escaping it for JSON,
/// each a pass over the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plain<'a>(&'a str);

impl<'a> Plain<'a> {
    /// The longest plain start of `bytes`, and the rest.
    pub fn split(bytes: &'a [u8]) -> (Plain<'a>, &'a [u8]) {
        let (head, rest) = bytes.split_at(NOT_PLAIN.find(bytes).unwrap_or(bytes.len()));
        // SAFETY: every byte of `head` is below 0x7f (NOT_PLAIN holds the others), and
        // ASCII is UTF-8.
        (Plain(unsafe { std::str::from_utf8_unchecked(head) }), rest)
    }

    /// `text` when all of it is plain.
    pub fn new(text: &'a str) -> Option<Plain<'a>> {
        let (plain, rest) = Plain::split(text.as_bytes());
        rest.is_empty().then_some(plain)
    }

    pub fn as_str(self) -> &'a str {
        self.0
    }
}

/// Text from outside known to be UTF-8, and whether it is known to be [`Plain`] (as Nix's
/// log parser knows it of most of a build's lines, having looked at every byte already).
/// Equal when the text is.
#[derive(Debug, Clone)]
pub enum Text<'a> {
    Plain(Plain<'a>),
    Other(Cow<'a, str>),
}

impl Text<'_> {
    pub fn as_str(&self) -> &str {
        match self {
            Text::Plain(plain) => plain.as_str(),
            Text::Other(text) => text,
        }
    }

    /// The text copied, to keep.
    pub fn into_owned(self) -> Text<'static> {
        Text::Other(Cow::Owned(self.as_str().to_string()))
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(text: &'a str) -> Self {
        Text::Other(Cow::Borrowed(text))
    }
}

impl std::ops::Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Text<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text<'_> {}

/// The bytes that are not [`Plain`]: controls, `"`, `\`, DEL and every byte of a
/// character beyond ASCII.
const NOT_PLAIN: ByteClass = ByteClass {
    below: 0x20,
    at_least: Some(0x7f),
    any_of: b"\"\\",
};

/// The bytes a JSON string cannot hold as they are: `"`, `\` and the C0 controls.
pub(crate) const JSON_SPECIAL: ByteClass = ByteClass {
    below: 0x20,
    at_least: None,
    any_of: b"\"\\",
};

/// The end of a line.
pub(crate) const NEWLINE: ByteClass = ByteClass {
    below: 0,
    at_least: None,
    any_of: b"\n",
};

/// What [`ByteClass::find`] pads a short tail with.
const PAD: u8 = b'a';

/// A set of bytes to look for in a long run of text: every byte below `below`, every byte
/// from `at_least` on, and each of `any_of` (at most a few).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ByteClass {
    pub below: u8,
    pub at_least: Option<u8>,
    pub any_of: &'static [u8],
}

impl ByteClass {
    #[cfg(any(test, not(target_arch = "x86_64")))]
    fn contains(self, b: u8) -> bool {
        b < self.below || self.at_least.is_some_and(|low| b >= low) || self.any_of.contains(&b)
    }

    /// The first byte of `bytes` in the class. Sixteen bytes are tested at once: log lines
    /// are long runs in which nothing is found, scanned several times each.
    #[inline(always)]
    pub fn find(self, bytes: &[u8]) -> Option<usize> {
        let mut blocks = bytes.chunks_exact(16);
        for (index, block) in blocks.by_ref().enumerate() {
            let hits = self.block_hits(block.try_into().expect("blocks of sixteen bytes"));
            if hits != 0 {
                return Some(index * 16 + hits.trailing_zeros() as usize);
            }
        }
        let (whole, rest) = (bytes.len() - blocks.remainder().len(), blocks.remainder());
        // The last few bytes as a block of their own, padded with a byte that is in no
        // class lifeboat uses (checked in the tests): short strings are common too.
        let mut last = [PAD; 16];
        last[..rest.len()].copy_from_slice(rest);
        let hits = self.block_hits(&last) & ((1 << rest.len()) - 1);
        (hits != 0).then(|| whole + hits.trailing_zeros() as usize)
    }

    /// Bit `i` set when `block[i]` is in the class.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn block_hits(self, block: &[u8; 16]) -> u32 {
        use std::arch::x86_64::{
            _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_min_epu8, _mm_movemask_epi8,
            _mm_or_si128, _mm_set1_epi8, _mm_setzero_si128,
        };
        // SAFETY: SSE2 is in every x86_64 processor (the target's baseline), and the
        // unaligned load reads exactly the sixteen bytes of `block`.
        unsafe {
            let v = _mm_loadu_si128(block.as_ptr().cast());
            let mut hits = _mm_setzero_si128();
            if let Some(last) = self.below.checked_sub(1) {
                // b < below exactly when min(b, below - 1) == b (unsigned).
                let top = _mm_set1_epi8(last as i8);
                hits = _mm_cmpeq_epi8(_mm_min_epu8(v, top), v);
            }
            if let Some(low) = self.at_least {
                // b >= low exactly when max(b, low) == b (unsigned).
                let low = _mm_set1_epi8(low as i8);
                hits = _mm_or_si128(hits, _mm_cmpeq_epi8(_mm_max_epu8(v, low), v));
            }
            for &b in self.any_of {
                hits = _mm_or_si128(hits, _mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8)));
            }
            _mm_movemask_epi8(hits) as u32
        }
    }

    /// Bit `i` set when `block[i]` is in the class.
    #[cfg(not(target_arch = "x86_64"))]
    #[inline(always)]
    fn block_hits(self, block: &[u8; 16]) -> u32 {
        (0..16).fold(0, |hits, i| hits | u32::from(self.contains(block[i])) << i)
    }
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
    fn a_class_finds_the_first_of_its_bytes_in_blocks_and_the_rest() {
        for len in 0..40 {
            for place in 0..len {
                let mut text = vec![b'a'; len];
                text[place] = 0x1b;
                if place + 3 < len {
                    text[place + 3] = b'\\';
                }
                assert_eq!(MAY_NEED_ESCAPE.find(&text), Some(place), "{len} {place}");
            }
            assert_eq!(MAY_NEED_ESCAPE.find(&vec![b'a'; len]), None);
        }
        let none = ByteClass {
            below: 0,
            at_least: None,
            any_of: b"",
        };
        for b in 0..=255u8 {
            for place in [2, 20] {
                let mut text = [b'a'; 24];
                text[place] = b;
                for class in [MAY_NEED_ESCAPE, JSON_SPECIAL, NEWLINE, NOT_PLAIN, none] {
                    assert!(!class.contains(PAD));
                    let expected = class.contains(b).then_some(place);
                    assert_eq!(class.find(&text), expected, "{class:?} {b:#x}");
                }
            }
            assert_eq!(
                MAY_NEED_ESCAPE.contains(b),
                matches!(b, 0..0x20 | 0x7f | b'\\' | 0xc2)
            );
            assert_eq!(
                JSON_SPECIAL.contains(b),
                matches!(b, 0..0x20 | b'"' | b'\\')
            );
            assert_eq!(
                NOT_PLAIN.contains(b),
                !matches!(b, 0x20..0x7f) || JSON_SPECIAL.contains(b)
            );
        }
    }

    #[test]
    fn plain_text_needs_no_escape_for_the_screen_or_json() {
        for b in 0..=255u8 {
            let bytes = [b'x', b, b'y'];
            let (plain, rest) = Plain::split(&bytes);
            let Some(text) = std::str::from_utf8(&bytes).ok().and_then(Plain::new) else {
                assert_eq!((plain.as_str(), rest), ("x", &bytes[1..]), "{b:#x}");
                continue;
            };
            assert_eq!((plain, rest), (text, &b""[..]));
            assert!(matches!(escape_text(text.as_str()), Cow::Borrowed(_)));
            let json = serde_json::to_string(text.as_str()).unwrap();
            assert_eq!(json, format!("\"{}\"", text.as_str()), "{b:#x}");
        }
        let line = "gcc -O2 -c src/a.c -o src/a.o ".repeat(5);
        assert_eq!(Plain::new(&line).map(Plain::as_str), Some(line.as_str()));
        assert_eq!(Plain::new("caf\u{e9}"), None);
        let (plain, rest) = Plain::split(br#"checking for x... yes"],"id":1}"#);
        assert_eq!(
            (plain.as_str(), rest),
            ("checking for x... yes", &br#""],"id":1}"#[..])
        );
    }

    #[test]
    fn text_is_equal_when_its_characters_are() {
        let plain = Text::Plain(Plain::new("make all").unwrap());
        let other = Text::from("make all");
        assert_eq!(plain, other);
        assert_eq!(plain.clone().into_owned(), plain);
        assert_ne!(plain, Text::Other(Cow::Owned("make".into())));
        assert_eq!(&*plain, "make all");
    }

    #[test]
    fn text_that_needs_no_escape_is_borrowed() {
        assert!(matches!(escape_text("plain é ✓ text"), Cow::Borrowed(_)));
        assert_eq!(escape_text("tab\there"), "tab\\there");
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
