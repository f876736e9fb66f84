//! A drawn frame as SVG and as plain text, from the ratatui `Buffer` itself, so screenshots and
//! exports can never drift from what the control room shows.

use std::fmt::Write as _;

use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

/// Cell size in SVG user units (a monospace cell is about 0.6 of its height).
const CELL_W: f64 = 8.4;
const CELL_H: f64 = 17.0;
const BACKGROUND: &str = "#1d1f21";
const FOREGROUND: &str = "#d7dae0";

/// The 16 ANSI colours as a common dark terminal profile draws them.
fn ansi(color: Color) -> Option<String> {
    let hex = match color {
        Color::Reset => return None,
        Color::Black => "#1d1f21",
        Color::Red => "#cc6666",
        Color::Green => "#8fbf60",
        Color::Yellow => "#e0b050",
        Color::Blue => "#6f98c9",
        Color::Magenta => "#b294bb",
        Color::Cyan => "#70c0b1",
        Color::Gray => "#c5c8c6",
        Color::DarkGray => "#707880",
        Color::LightRed => "#ff7b7b",
        Color::LightGreen => "#b5e890",
        Color::LightYellow => "#f0d080",
        Color::LightBlue => "#9cc4f0",
        Color::LightMagenta => "#d7b7e0",
        Color::LightCyan => "#a0e0d8",
        Color::White => "#ffffff",
        Color::Rgb(r, g, b) => return Some(format!("#{r:02x}{g:02x}{b:02x}")),
        Color::Indexed(i) => return Some(indexed(i)),
    };
    Some(hex.to_owned())
}

/// xterm's 256-colour cube and grey ramp (the first 16 as the ANSI names).
fn indexed(i: u8) -> String {
    const BASE: [Color; 16] = [
        Color::Black,
        Color::Red,
        Color::Green,
        Color::Yellow,
        Color::Blue,
        Color::Magenta,
        Color::Cyan,
        Color::Gray,
        Color::DarkGray,
        Color::LightRed,
        Color::LightGreen,
        Color::LightYellow,
        Color::LightBlue,
        Color::LightMagenta,
        Color::LightCyan,
        Color::White,
    ];
    match i {
        0..16 => ansi(BASE[usize::from(i)]).unwrap_or_else(|| FOREGROUND.to_owned()),
        16..232 => {
            let n = i - 16;
            let level = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
            format!(
                "#{:02x}{:02x}{:02x}",
                level(n / 36),
                level(n / 6 % 6),
                level(n % 6)
            )
        }
        _ => {
            let g = 8 + (i - 232) * 10;
            format!("#{g:02x}{g:02x}{g:02x}")
        }
    }
}

fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
}

/// The buffer as an SVG document: one rectangle per coloured background run, one text span per
/// cell with its colour and weight.
pub fn svg(buffer: &Buffer) -> String {
    let area = buffer.area;
    let width = f64::from(area.width) * CELL_W;
    let height = f64::from(area.height) * CELL_H;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.1} {height:.1}">"#
    );
    let _ = write!(
        out,
        r#"<rect width="100%" height="100%" fill="{BACKGROUND}"/><g font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="14px" xml:space="preserve">"#
    );
    for y in area.top()..area.bottom() {
        let top = f64::from(y - area.top()) * CELL_H;
        for x in area.left()..area.right() {
            let Some(cell) = buffer.cell((x, y)) else {
                continue;
            };
            let reversed = cell.modifier.contains(Modifier::REVERSED);
            let (mut fg, mut bg) = (ansi(cell.fg), ansi(cell.bg));
            if reversed {
                (fg, bg) = (
                    Some(bg.unwrap_or_else(|| BACKGROUND.to_owned())),
                    Some(fg.unwrap_or_else(|| FOREGROUND.to_owned())),
                );
            }
            let left = f64::from(x - area.left()) * CELL_W;
            if let Some(bg) = bg {
                let _ = write!(
                    out,
                    r#"<rect x="{left:.1}" y="{top:.1}" width="{:.1}" height="{CELL_H:.1}" fill="{bg}"/>"#,
                    CELL_W + 0.3
                );
            }
            let symbol = cell.symbol();
            if symbol.trim().is_empty() {
                continue;
            }
            let weight = if cell.modifier.contains(Modifier::BOLD) {
                r#" font-weight="bold""#
            } else {
                ""
            };
            let opacity = if cell.modifier.contains(Modifier::DIM) {
                r#" opacity="0.6""#
            } else {
                ""
            };
            let _ = write!(
                out,
                r#"<text x="{left:.1}" y="{:.1}" fill="{}"{weight}{opacity}>"#,
                top + CELL_H * 0.78,
                fg.unwrap_or_else(|| FOREGROUND.to_owned())
            );
            escape(symbol, &mut out);
            out.push_str("</text>");
        }
    }
    out.push_str("</g></svg>\n");
    out
}

/// The buffer's symbols, one line per row, trailing spaces trimmed.
pub fn text(buffer: &Buffer) -> String {
    let area = buffer.area;
    let mut out = String::new();
    for y in area.top()..area.bottom() {
        let mut line = String::new();
        for x in area.left()..area.right() {
            if let Some(cell) = buffer.cell((x, y)) {
                line.push_str(cell.symbol());
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use ratatui::layout::Rect;
    use ratatui::style::Style;

    use super::*;

    #[test]
    fn svg_escapes_markup_and_colours_cells() {
        let mut buffer = Buffer::empty(Rect::new(0, 0, 4, 1));
        buffer.set_string(0, 0, "<&>", Style::default().fg(Color::Red).bg(Color::Blue));
        let svg = svg(&buffer);
        assert!(svg.contains("&lt;") && svg.contains("&amp;") && svg.contains("&gt;"));
        assert!(svg.contains(r##"fill="#cc6666""##), "{svg}");
        assert!(svg.contains(r##"fill="#6f98c9""##), "{svg}");
        assert_eq!(text(&buffer), "<&>\n");
    }

    #[test]
    fn indexed_colours_follow_the_xterm_cube() {
        assert_eq!(indexed(16), "#000000");
        assert_eq!(indexed(231), "#ffffff");
        assert_eq!(indexed(232), "#080808");
    }
}
