//! JSON for a terminal: serde_json escapes only C0 controls, quotes and backslashes, so DEL, C1
//! controls and bidi overrides in payload or operator text would reach the terminal raw when the
//! output is printed without `jq`. These are written as `\uXXXX` escapes instead (valid JSON,
//! the same strings once parsed).

use std::io;

use serde::Serialize;

/// Characters a terminal acts on or reorders text by.
fn needs_escape(c: char) -> bool {
    matches!(c,
        '\u{7f}'..='\u{9f}'
        | '\u{061c}'
        | '\u{200e}' | '\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}')
}

struct TerminalSafe;

impl serde_json::ser::Formatter for TerminalSafe {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (at, c) in fragment.char_indices() {
            if needs_escape(c) {
                writer.write_all(&fragment.as_bytes()[start..at])?;
                write!(writer, "\\u{:04x}", u32::from(c))?;
                start = at + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Compact JSON with terminal-active characters escaped.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut out = Vec::with_capacity(4096);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, TerminalSafe);
    value.serialize(&mut serializer)?;
    // Only whole strings and ASCII escapes were written.
    Ok(String::from_utf8(out).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_active_characters_are_escaped_and_parse_back_unchanged() {
        let hostile = "ok \u{1b}[31m red \u{9b}2J \u{202e}evil\u{2069} \u{7f} é ✓";
        let text = to_string(&serde_json::json!({ "m": hostile })).unwrap();
        assert_eq!(
            text,
            r#"{"m":"ok \u001b[31m red \u009b2J \u202eevil\u2069 \u007f é ✓"}"#
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["m"], hostile);
    }
}
