//! Small drawing helpers shared by the views: ages, numbers, clock times, sparklines, and
//! sanitised, width-bounded text.

use unicode_width::UnicodeWidthChar;

use crate::model::sanitize;

pub use crate::model::format::{age, clock, count, percent, rate};

/// Untrusted text made inert and cut to `width` columns (with `…` when cut).
pub fn fit(text: &str, width: usize) -> String {
    let clean = sanitize(text);
    let mut out = String::new();
    let mut used = 0;
    let total: usize = clean.chars().map(|c| c.width().unwrap_or(0)).sum();
    if total <= width {
        return clean.into_owned();
    }
    for c in clean.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        used += w;
        out.push(c);
    }
    if width > 0 {
        out.push('…');
    }
    out
}

/// Untrusted text made inert and wrapped at words to lines of at most `width` columns; a word
/// longer than a line is broken, never cut.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let clean = sanitize(text);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut used = 0;
    for word in clean.split_whitespace() {
        let word_width: usize = word.chars().map(|c| c.width().unwrap_or(0)).sum();
        if used > 0 && used + 1 + word_width > width {
            lines.push(std::mem::take(&mut line));
            used = 0;
        }
        if used > 0 {
            line.push(' ');
            used += 1;
        }
        for c in word.chars() {
            let w = c.width().unwrap_or(0);
            if used + w > width {
                lines.push(std::mem::take(&mut line));
                used = 0;
            }
            line.push(c);
            used += w;
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// A one-line sparkline of the last `width` points, scaled to the largest shown: one bar glyph
/// per column, blanks first when there are fewer points than columns.
pub fn sparkline(points: &[u64], width: usize) -> impl Iterator<Item = &'static str> + '_ {
    const BARS: [&str; 8] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"];
    let shown = &points[points.len().saturating_sub(width)..];
    let max = shown.iter().copied().max().unwrap_or(0);
    let blanks = std::iter::repeat_n(" ", width.saturating_sub(shown.len()));
    blanks.chain(shown.iter().map(move |&p| {
        let level = if max == 0 {
            0
        } else {
            ((p as f64 / max as f64) * 7.0).round() as usize
        };
        BARS[level.min(7)]
    }))
}

/// A sparkline `rows` lines tall (top line first), each column filled in eighths of a line up
/// to its share of the largest point shown; the smallest point still shows a sliver.
pub fn sparkline_rows(points: &[u64], width: usize, rows: usize) -> Vec<Vec<&'static str>> {
    const BARS: [&str; 8] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"];
    let rows = rows.max(1);
    let shown = &points[points.len().saturating_sub(width)..];
    let max = shown.iter().copied().max().unwrap_or(0);
    let eighths = rows * 8;
    let filled: Vec<Option<usize>> = std::iter::repeat_n(None, width.saturating_sub(shown.len()))
        .chain(shown.iter().map(|&p| {
            Some(if max == 0 {
                1
            } else {
                1 + ((p as f64 / max as f64) * (eighths - 1) as f64).round() as usize
            })
        }))
        .collect();
    (0..rows)
        .map(|row| {
            let base = (rows - 1 - row) * 8;
            filled
                .iter()
                .map(|f| match f.map(|f| f.saturating_sub(base).min(8)) {
                    None | Some(0) => " ",
                    Some(n) => BARS[n - 1],
                })
                .collect()
        })
        .collect()
}

/// Digits and a few signs in a 3×5 block font, for the wall display.
pub fn big_text(text: &str) -> [String; 5] {
    const GLYPHS: &[(char, [&str; 5])] = &[
        ('0', ["███", "█ █", "█ █", "█ █", "███"]),
        ('1', [" █ ", "██ ", " █ ", " █ ", "███"]),
        ('2', ["███", "  █", "███", "█  ", "███"]),
        ('3', ["███", "  █", "███", "  █", "███"]),
        ('4', ["█ █", "█ █", "███", "  █", "  █"]),
        ('5', ["███", "█  ", "███", "  █", "███"]),
        ('6', ["███", "█  ", "███", "█ █", "███"]),
        ('7', ["███", "  █", "  █", "  █", "  █"]),
        ('8', ["███", "█ █", "███", "█ █", "███"]),
        ('9', ["███", "█ █", "███", "  █", "███"]),
        ('.', ["   ", "   ", "   ", "   ", " █ "]),
        ('%', ["█ █", "  █", " █ ", "█  ", "█ █"]),
        ('k', ["█  ", "█ █", "██ ", "█ █", "█ █"]),
        ('M', ["█ █", "███", "█ █", "█ █", "█ █"]),
        ('/', ["  █", "  █", " █ ", "█  ", "█  "]),
        ('s', ["   ", "███", "██ ", " ██", "███"]),
        ('?', ["███", "  █", " ██", "   ", " █ "]),
        ('-', ["   ", "   ", "███", "   ", "   "]),
        (' ', ["   ", "   ", "   ", "   ", "   "]),
    ];
    let mut rows: [String; 5] = Default::default();
    for c in text.chars() {
        let glyph = GLYPHS
            .iter()
            .find(|(g, _)| *g == c)
            .map_or(GLYPHS[16].1, |(_, rows)| *rows);
        for (row, part) in rows.iter_mut().zip(glyph) {
            row.push_str(part);
            row.push(' ');
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taller_sparkline_stacks_eighths_and_one_row_matches_the_flat_one() {
        let points = [0, 4, 8];
        let flat: Vec<&str> = sparkline(&points, 4).collect();
        assert_eq!(sparkline_rows(&points, 4, 1), vec![flat]);
        let two = sparkline_rows(&points, 3, 2);
        assert_eq!(two[0], [" ", "▁", "█"], "top row: only what passes half");
        assert_eq!(two[1], ["▁", "█", "█"], "bottom row: full under the top");
    }

    #[test]
    fn wrap_keeps_every_word_within_the_width() {
        let lines = wrap(
            "connection refused by \x1b[31mslack.example.com after 3 tries",
            12,
        );
        assert!(lines.iter().all(|l| l.chars().count() <= 12), "{lines:?}");
        assert!(lines.iter().all(|l| !l.contains('\x1b')), "{lines:?}");
        assert_eq!(lines[0], "connection");
        assert_eq!(lines.last().map(String::as_str), Some("tries"), "{lines:?}");
        assert_eq!(wrap("", 5), vec![String::new()]);
        assert_eq!(wrap("abcdefgh", 3), vec!["abc", "def", "gh"]);
    }

    #[test]
    fn formats_are_short_and_honest() {
        assert_eq!(age(12_500), "12s");
        assert_eq!(age(7_200_000), "2h");
        assert_eq!(count(1_234_567), "1.2M");
        assert_eq!(rate(None), "unknown");
        assert_eq!(clock(3_723_000), "01:02:03");
    }

    #[test]
    fn fit_sanitises_and_cuts_by_width() {
        assert_eq!(fit("\u{1b}[31mred", 20), "?[31mred");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("日本語テキスト", 5), "日本…");
    }

    #[test]
    fn sparkline_is_as_wide_as_asked() {
        let s: String = sparkline(&[0, 1, 2, 3, 4, 5, 6, 7], 10).collect();
        assert_eq!(s, "  ▁▂▃▄▅▆▇█");
        assert_eq!(sparkline(&[], 3).collect::<String>(), "   ");
    }
}
