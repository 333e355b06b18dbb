//! Colours out of Nix's messages.

/// `text` without ANSI escape sequences (CSI `ESC [ … final`, OSC `ESC ] … BEL|ESC \`,
/// nF like `ESC ( B`, and two-character `ESC x`). Other control characters stay: the caller
/// escapes them.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                // Parameters and intermediates run up to a final byte in @..~.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\x07' || (c == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                        break;
                    }
                }
            }
            // nF sequences: intermediates in ' '..'/' up to a final byte (`ESC ( B`).
            Some(' '..='/') => {
                for c in chars.by_ref() {
                    if !(' '..='/').contains(&c) {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_sequences_are_stripped_and_other_text_stays() {
        assert_eq!(
            strip_ansi(
                "\x1b[35;1mwarning:\x1b[0m a\x1b]8;;http://x\x1b\\link\x1b]8;;\x07 b\x1b(B\tc"
            ),
            "warning: alink b\tc"
        );
        assert_eq!(strip_ansi("cut \x1b["), "cut ");
    }
}
