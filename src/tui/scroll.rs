//! Scrolling a text that does not fit: the diff view, the diff in a confirmation, the end
//! screen. Pure.

use super::keys::Key;

/// How far PgUp/PgDn move.
const PAGE: usize = 10;

/// The first line shown after `key`, for the keys that scroll (arrows, PgUp/PgDn,
/// Home/End); `None` for every other key. Letters are left alone: where a word is typed,
/// they are the word.
pub fn scrolled(first: usize, key: Key, len: usize) -> Option<usize> {
    let last = len.saturating_sub(1);
    let to = match key {
        Key::Up => first.saturating_sub(1),
        Key::Down => first + 1,
        Key::PageUp => first.saturating_sub(PAGE),
        Key::PageDown => first + PAGE,
        Key::Home => 0,
        Key::End => last,
        _ => return None,
    };
    Some(to.min(last))
}

/// `j` and `k` as the arrows they stand for, where no word is typed.
pub fn vi(key: Key) -> Key {
    match key {
        Key::Char('k') => Key::Up,
        Key::Char('j') => Key::Down,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrolling_stays_inside_the_text_and_ignores_letters() {
        assert_eq!(scrolled(0, Key::Up, 30), Some(0));
        assert_eq!(scrolled(25, Key::PageDown, 30), Some(29));
        assert_eq!(scrolled(3, Key::End, 30), Some(29));
        assert_eq!(scrolled(3, Key::Char('j'), 30), None);
        assert_eq!(scrolled(3, vi(Key::Char('j')), 30), Some(4));
        assert_eq!(scrolled(0, Key::Down, 0), Some(0));
    }
}
