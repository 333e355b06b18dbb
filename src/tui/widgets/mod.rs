//! Pieces the screens are built from, each in its own file.

pub mod diff_pane;
pub mod key_hints;
pub mod modal;
pub mod output_pane;
pub mod progress;
pub mod size_tree;
pub mod step_list;

use std::borrow::Cow;
use std::time::Duration;

use crate::escape::escape_bytes;

/// Text from outside as it may be drawn: the events carry escaped text already, this
/// makes sure no control character reaches the terminal even if one slipped through.
pub fn safe(text: &str) -> Cow<'_, str> {
    if text.chars().any(char::is_control) {
        Cow::Owned(escape_bytes(text.as_bytes()))
    } else {
        Cow::Borrowed(text)
    }
}

/// At most `width` characters, with `…` when cut.
pub fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// `text` as lines of at most `width` characters, broken at spaces (a longer word keeps a
/// line of its own): for text indented under a prefix, which plain wrapping would lose.
pub fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let needed =
            current.chars().count() + word.chars().count() + usize::from(!current.is_empty());
        if !current.is_empty() && needed > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}

/// The first cell of a row: a pointer at the selected one, so the selection shows
/// without colour (and in the text snapshots) too.
pub fn pointer(selected: bool) -> &'static str {
    if selected { "›" } else { " " }
}

/// A step's duration for people: `850ms`, `12.3s`, `4m05s`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", d.as_secs_f64()),
        _ => format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_never_get_through() {
        assert_eq!(safe("plain"), "plain");
        assert_eq!(safe("a\x1b[2Jb\r"), "a\\e[2Jb\\r");
    }

    #[test]
    fn words_wrap_at_spaces_and_long_words_keep_their_own_line() {
        assert_eq!(wrap_words("a bb ccc dd", 5), ["a bb", "ccc", "dd"]);
        assert_eq!(wrap_words("abcdefgh ij", 4), ["abcdefgh", "ij"]);
        assert_eq!(wrap_words("", 4), [""]);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(Duration::from_millis(850)), "850ms");
        assert_eq!(duration(Duration::from_millis(12_340)), "12.3s");
        assert_eq!(duration(Duration::from_secs(245)), "4m05s");
    }
}
