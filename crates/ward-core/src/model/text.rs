//! Untrusted text made safe: for a terminal, control characters (ESC, so every ANSI and OSC
//! sequence, included), C1 controls, bidirectional controls and other invisible format
//! characters become visible `?`; for storage, the invisible format characters are dropped.

use std::borrow::Cow;

/// Invisible characters that change how text reads: zero-width spaces and joiners, bidi marks,
/// embeddings, overrides and isolates, the BOM, and the other Unicode format (Cf) characters that
/// can hide or reorder text (soft hyphen, invisible operators, interlinear annotations, tags).
pub fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

fn unsafe_char(c: char) -> bool {
    c.is_control() || is_invisible_format(c)
}

/// `text` with every control, bidi and invisible format character replaced by `?`.
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

/// `text` without its invisible format characters ([`is_invisible_format`]): what error texts
/// keep when they are stored with a DLQ entry or an attempt, so no reader is misled by them.
pub fn strip_invisible(text: String) -> String {
    if text.chars().any(is_invisible_format) {
        text.chars().filter(|c| !is_invisible_format(*c)).collect()
    } else {
        text
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
        assert_eq!(sanitize("zero\u{200B}width\u{FEFF}"), "zero?width?");
    }

    #[test]
    fn strips_zero_width_bidi_and_format_characters_only() {
        let hostile = "a\u{202E}b\u{200B}c\u{200D}d\u{2066}e\u{2069}f\u{FEFF}g\u{2060}h\u{AD}i\u{E0041}j\u{061C}k";
        assert_eq!(strip_invisible(hostile.to_owned()), "abcdefghijk");
        // Visible text and ordinary whitespace are kept as they are.
        let plain = "500 Internal\tError\n日本 ünïcødé ✓";
        assert_eq!(strip_invisible(plain.to_owned()), plain);
        for c in hostile.chars().filter(|c| !c.is_ascii_lowercase()) {
            assert!(is_invisible_format(c), "{:04X}", u32::from(c));
        }
    }
}
