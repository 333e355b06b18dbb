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
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
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
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
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
}
