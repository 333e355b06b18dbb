//! The fast path for the record nearly every line of a build is: a log line or a phase,
//! read without the general parser.

use std::borrow::Cow;

use crate::escape::{JSON_SPECIAL, Plain, Text};

use super::record::{Field, Record};

/// Whether [`quick_result`] reads the record `text` as the general parser does, or leaves it
/// to it: for the fuzzer and the tests, which hold the two paths to each other.
/// Both the first time and again, when the end of the record is known from the time before.
pub fn quick_path_agrees(text: &str) -> bool {
    let mut tail = QuickTail::default();
    let Some(quick) = quick_result(text.as_bytes(), &mut tail) else {
        return true;
    };
    let again = quick_result(text.as_bytes(), &mut tail);
    let Ok(mut record) = serde_json::from_str::<Record>(text) else {
        return false;
    };
    let mut agrees = |quick: QuickResult<'_>| {
        record.action.as_str() == Some("result")
            && record.id.as_u64() == Some(quick.id)
            && record.kind.as_u64() == Some(quick.kind)
            && record.fields().len() == 1
            && record.fields()[0].as_str() == quick.field.as_str()
    };
    agrees(quick) && again.is_some_and(agrees)
}

/// A result record read by [`quick_result`].
#[derive(Debug)]
pub(super) struct QuickResult<'a> {
    pub(super) id: u64,
    pub(super) kind: u64,
    pub(super) field: Field<'a>,
}

/// The record nearly every line of a build is, `{"action":"result","fields":["…"],"id":N,
/// "type":N}` exactly as Nix writes it (a log line, a phase), read without the general
/// parser, which cost half of following a build. `None` for anything else, even the same
/// record spaced differently: the general parser reads those, and rejects what is not JSON.
/// Read from the bytes: only a string that is not [`Plain`] has its UTF-8 checked, and an
/// end the same as the last record's is not read again.
pub(super) fn quick_result<'a>(json: &'a [u8], last: &mut QuickTail) -> Option<QuickResult<'a>> {
    let rest = json.strip_prefix(br#"{"action":"result","fields":["#)?;
    let (field, rest) = quick_string(rest)?;
    let (id, kind) = last.read(rest)?;
    Some(QuickResult {
        id,
        kind,
        field: Field::Str(field),
    })
}

/// The end of the last record [`quick_result`] read (`],"id":N,"type":N}`) and its numbers:
/// a build's log lines come in runs from one build, and end alike.
#[derive(Debug, Default)]
pub(super) struct QuickTail {
    text: Vec<u8>,
    id: u64,
    kind: u64,
}

impl QuickTail {
    /// The id and type of the end `text`, remembered for the next record.
    fn read(&mut self, text: &[u8]) -> Option<(u64, u64)> {
        if self.text.is_empty() || text != self.text {
            let rest = text.strip_prefix(br#"],"id":"#)?;
            let (id, rest) = quick_number(rest)?;
            let rest = rest.strip_prefix(br#","type":"#)?;
            let (kind, rest) = quick_number(rest)?;
            if rest != b"}" {
                return None;
            }
            self.text.clear();
            self.text.extend_from_slice(text);
            (self.id, self.kind) = (id, kind);
        }
        Some((self.id, self.kind))
    }
}

/// The JSON string `json` starts with, and what follows it. Borrowed when it holds no
/// escapes; escapes are decoded as serde_json decodes them, and what JSON does not allow
/// (a control character, an unknown escape, a lone surrogate, invalid UTF-8) is `None`.
fn quick_string(json: &[u8]) -> Option<(Text<'_>, &[u8])> {
    let rest = json.strip_prefix(b"\"")?;
    let (plain, after) = Plain::split(rest);
    if let Some(after) = after.strip_prefix(b"\"") {
        return Some((Text::Plain(plain), after));
    }
    let (decoded, after) = decode_string(std::str::from_utf8(rest).ok()?)?;
    Some((Text::Other(decoded), after.as_bytes()))
}

/// The JSON string whose text (after its opening quote) `text` starts with, decoded, and
/// what follows its closing quote.
fn decode_string(mut rest: &str) -> Option<(Cow<'_, str>, &str)> {
    let mut decoded = String::new();
    loop {
        let at = JSON_SPECIAL.find(rest.as_bytes())?;
        let (run, special) = rest.split_at(at);
        if let Some(after) = special.strip_prefix('"') {
            // Nothing decoded so far: no escape, the text is the string.
            if decoded.is_empty() {
                return Some((Cow::Borrowed(run), after));
            }
            decoded.push_str(run);
            return Some((Cow::Owned(decoded), after));
        }
        // A control character is invalid in a JSON string; what is left is a backslash.
        let (c, after) = unescape(special.strip_prefix('\\')?)?;
        // The decoded string is shorter than what is left of the record.
        decoded.reserve(rest.len());
        decoded.push_str(run);
        decoded.push(c);
        rest = after;
    }
}

/// The character of the escape `text` starts with (after its backslash), and the rest.
fn unescape(text: &str) -> Option<(char, &str)> {
    let simple = match text.as_bytes().first()? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\x08',
        b'f' => '\x0c',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => return unescape_unicode(&text[1..]),
        _ => return None,
    };
    Some((simple, &text[1..]))
}

/// `XXXX` of `\uXXXX`, or a UTF-16 surrogate pair `XXXX\uYYYY`, and the rest.
fn unescape_unicode(text: &str) -> Option<(char, &str)> {
    let unit = hex4(text)?;
    let rest = &text[4..];
    match unit {
        0xd800..=0xdbff => {
            let low =
                hex4(rest.strip_prefix("\\u")?).filter(|low| (0xdc00..=0xdfff).contains(low))?;
            let c = char::from_u32(0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00))?;
            Some((c, &rest[6..]))
        }
        _ => Some((char::from_u32(unit)?, rest)),
    }
}

/// The four hexadecimal digits `text` starts with, as a number.
fn hex4(text: &str) -> Option<u32> {
    let digits = text.as_bytes().get(..4)?;
    digits.iter().try_fold(0, |n, &b| {
        let digit = char::from(b).to_digit(16)?;
        Some(n << 4 | digit)
    })
}

/// The unsigned JSON number `json` starts with (no leading zero, fits in a u64), and the rest.
fn quick_number(json: &[u8]) -> Option<(u64, &[u8])> {
    let mut n: u64 = 0;
    let mut digits = 0;
    for &b in json.iter().take_while(|b| b.is_ascii_digit()) {
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        digits += 1;
    }
    if digits == 0 || (digits > 1 && json.starts_with(b"0")) {
        return None;
    }
    Some((n, &json[digits..]))
}
