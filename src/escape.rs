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
    let mut out = String::with_capacity(bytes.len());
    // Checking the whole at once is much faster than walking it in chunks, and nearly all
    // output is valid UTF-8.
    if let Ok(text) = std::str::from_utf8(bytes) {
        escape_str(text, &mut out);
        return out;
    }
    for chunk in bytes.utf8_chunks() {
        escape_str(chunk.valid(), &mut out);
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Append `text` escaped. Runs of characters that stay as they are are copied whole: a
/// build log is mostly such text.
fn escape_str(mut text: &str, out: &mut String) {
    while let Some(at) = text.bytes().position(may_need_escape) {
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
