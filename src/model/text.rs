//! Untrusted text made safe for a terminal: control characters (ESC, so every ANSI and OSC
//! sequence, included), C1 controls and bidirectional overrides become visible `?`.

use std::borrow::Cow;

fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// `text` with every control and bidi-override character replaced by `?`.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    if text.chars().any(unsafe_char) {
        Cow::Owned(
            text.chars()
                .map(|c| if unsafe_char(c) { '?' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_ansi_and_bidi_and_keeps_the_rest() {
        assert_eq!(sanitize("disk full on db-1"), "disk full on db-1");
        assert!(matches!(sanitize("plain"), Cow::Borrowed(_)));
        assert_eq!(sanitize("\u{1b}[31mred\u{1b}[0m"), "?[31mred?[0m");
        assert_eq!(
            sanitize("a\u{1b}]52;c;ZXZpbA==\u{7}b"),
            "a?]52;c;ZXZpbA==?b"
        );
        assert_eq!(sanitize("x\u{202E}gnp.exe"), "x?gnp.exe");
        assert_eq!(sanitize("tab\tnew\nline\u{85}"), "tab?new?line?");
        assert_eq!(sanitize("ünïcødé ✓"), "ünïcødé ✓");
    }
}
