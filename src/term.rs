//! Terminal safety: untrusted text made inert before it is printed as plain text, so a value from
//! an input file or AWS cannot move the cursor, erase or recolour lines, or reorder what is shown.

use std::borrow::Cow;

/// Whether `c` would act on a terminal instead of showing itself: a control character (C0,
/// including ESC, DEL, C1 U+0080–U+009F), a Unicode bidi control (embeddings and overrides
/// U+202A–U+202E, isolates U+2066–U+2069, the marks U+200E, U+200F and U+061C) or a line or
/// paragraph separator (U+2028, U+2029).
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{061C}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// `text` with every [unsafe](is_unsafe) character written as a visible escape (`\u{1b}`, `\n`,
/// `\t`, `\u{202e}`); everything else, including a backslash, is kept as it is. Borrows when there
/// is nothing to escape.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            // escape_default writes `\t`, `\r`, `\n` or `\u{…}` for every character escaped here.
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_controls_and_keeps_the_rest() {
        assert_eq!(
            escape("SEC-1\u{1b}[1A\u{1b}[2Kall clear"),
            "SEC-1\\u{1b}[1A\\u{1b}[2Kall clear"
        );
        assert_eq!(escape("a\nb\r\tc\u{7f}"), "a\\nb\\r\\tc\\u{7f}");
        // C1: CSI (U+009B) starts an escape sequence on some terminals by itself.
        assert_eq!(escape("x\u{9b}31my\u{85}"), "x\\u{9b}31my\\u{85}");
        assert_eq!(
            escape("user\u{202e}gnp.exe\u{2066}\u{2069}\u{200f}"),
            "user\\u{202e}gnp.exe\\u{2066}\\u{2069}\\u{200f}"
        );
        assert_eq!(escape("l1\u{2028}l2\u{2029}"), "l1\\u{2028}l2\\u{2029}");
        assert_eq!(escape("\0"), "\\u{0}");
    }

    #[test]
    fn borrows_safe_text_unchanged() {
        for safe in [
            "",
            "AKIAIOSFODNN7EXAMPLE",
            "prod/db \\u{1b} (literal)",
            "Zoë 東京 🙂 é",
            "\u{a0}\u{3000}",
        ] {
            assert!(
                matches!(escape(safe), Cow::Borrowed(s) if s == safe),
                "{safe:?}"
            );
        }
    }
}
