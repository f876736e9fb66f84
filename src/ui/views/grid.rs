//! The one table shape every view uses: a bordered block, a header row and rows, of which only
//! the rows that fit are built and written. Drawn the way ratatui's `Table` draws them (columns
//! laid out from the start with one space between them, the selected row highlighted), but
//! without building rows that scroll out of sight and with plain ASCII written cell by cell.

use std::borrow::Cow;

use ratatui::Frame;
use ratatui::buffer::{Buffer, CellWidth};
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::Block;
use unicode_segmentation::UnicodeSegmentation;

use super::block;
use crate::ui::state::Scene;
use crate::ui::theme::{Item, Theme};

/// One cell: text already made safe (`widgets::fit` for untrusted text) and its style.
pub struct GridCell<'a> {
    text: Cow<'a, str>,
    style: Style,
}

/// Unstyled text.
pub fn raw<'a>(text: impl Into<Cow<'a, str>>) -> GridCell<'a> {
    GridCell {
        text: text.into(),
        style: Style::default(),
    }
}

pub fn styled<'a>(text: impl Into<Cow<'a, str>>, style: Style) -> GridCell<'a> {
    GridCell {
        text: text.into(),
        style,
    }
}

/// One row: its cells and a style under them (marked rows).
pub struct GridRow<'a> {
    cells: Vec<GridCell<'a>>,
    style: Style,
}

impl<'a> GridRow<'a> {
    pub fn new(cells: Vec<GridCell<'a>>) -> Self {
        Self {
            cells,
            style: Style::default(),
        }
    }

    #[must_use]
    pub fn style(mut self, style: Style) -> Self {
        self.style = style;
        self
    }
}

/// A table of `len` rows, of which `row(i)` builds the i-th when it is in sight.
pub struct Grid<'a> {
    pub block: Block<'a>,
    pub header: &'a [&'a str],
    pub header_style: Style,
    pub widths: &'a [Constraint],
    pub len: usize,
    /// The selected row and its highlight; the rows scroll so that it stays in sight.
    pub selected: Option<(usize, Style)>,
}

impl Grid<'_> {
    pub fn render<'r>(
        self,
        frame: &mut Frame,
        area: Rect,
        mut row: impl FnMut(usize) -> GridRow<'r>,
    ) {
        let inner = self.block.inner(area);
        frame.render_widget(self.block, area);
        if inner.is_empty() {
            return;
        }
        let columns = Layout::horizontal(self.widths.iter().copied())
            .flex(Flex::Start)
            .spacing(1)
            .split(Rect { height: 1, ..inner });
        let buf = frame.buffer_mut();
        let header_area = Rect { height: 1, ..inner };
        buf.set_style(header_area, self.header_style);
        for (column, title) in columns.iter().zip(self.header) {
            put(
                buf,
                column.x,
                inner.y,
                column.width,
                title,
                Style::default(),
            );
        }
        let visible = usize::from(inner.height.saturating_sub(1));
        let selected = self
            .selected
            .filter(|_| self.len > 0)
            .map(|(at, style)| (at.min(self.len - 1), style));
        // As a fresh `TableState` would: from the top, or with the selection on the last line.
        let first = selected.map_or(0, |(at, _)| (at + 1).saturating_sub(visible));
        for (line, index) in (first..self.len.min(first + visible)).enumerate() {
            let y = inner.y + 1 + line as u16;
            let built = row(index);
            let row_area = Rect {
                y,
                height: 1,
                ..inner
            };
            if built.style != Style::default() {
                buf.set_style(row_area, built.style);
            }
            for (column, cell) in columns.iter().zip(&built.cells) {
                // A cut is shown (`…`), never silent: a cut name must not pass for another.
                let width = usize::from(column.width);
                let text = if cell.text.len() > width
                    && unicode_width::UnicodeWidthStr::width(cell.text.as_ref()) > width
                {
                    Cow::Owned(crate::ui::widgets::fit(&cell.text, width))
                } else {
                    Cow::Borrowed(cell.text.as_ref())
                };
                put(buf, column.x, y, column.width, &text, cell.style);
            }
            if let Some((at, style)) = selected
                && at == index
            {
                buf.set_style(row_area, style);
            }
        }
    }
}

/// `text` at (x, y), cut to `width` columns and to the buffer, drawn as a `Span` draws it
/// (controls dropped, stopping at a character that does not fit); returns the column after it.
/// Runs of printable ASCII are written cell by cell, since each such character is one column and
/// a grapheme of its own; the rest goes through grapheme segmentation.
pub fn put(buf: &mut Buffer, x: u16, y: u16, width: u16, text: &str, style: Style) -> u16 {
    let bounds = buf.area;
    if y < bounds.y || y >= bounds.bottom() || x < bounds.x || x >= bounds.right() {
        return x;
    }
    let right = x + width.min(bounds.right() - x);
    if right == x {
        return x;
    }
    let bytes = text.as_bytes();
    let mut at = 0;
    let mut column = x;
    let mut drawn = false;
    // The cell before `column` is the hidden half of a wide character (no symbol of its own).
    let mut after_wide = false;
    while at < bytes.len() {
        let run = ascii_run(&bytes[at..]);
        let fits = run.min(usize::from(right - column));
        let start = buf.index_of(column, y);
        for (cell, &byte) in buf.content[start..start + fits]
            .iter_mut()
            .zip(&bytes[at..])
        {
            cell.set_char(char::from(byte)).set_style(style);
        }
        column += fits as u16;
        drawn |= fits > 0;
        after_wide &= fits == 0;
        if fits < run {
            return column;
        }
        at += run;
        if at == bytes.len() {
            break;
        }
        let end = next_ascii_pair(bytes, at);
        for grapheme in text[at..end].graphemes(true) {
            if grapheme.contains(char::is_control) {
                continue;
            }
            let cells = grapheme.cell_width();
            if column + cells > right {
                return column;
            }
            if drawn && (cells == 0 || column == x) {
                // Zero-width: joins the character before it (or the first cell).
                let joined = column.saturating_sub(1).max(x);
                let before = if after_wide && joined > x {
                    ""
                } else {
                    buf[(joined, y)].symbol()
                };
                let symbol = format!("{before}{grapheme}");
                buf[(joined, y)].set_symbol(&symbol).set_style(style);
            } else {
                buf[(column, y)].set_symbol(grapheme).set_style(style);
            }
            after_wide = cells > 1;
            drawn = true;
            for hidden in column + 1..column + cells {
                buf[(hidden, y)].reset();
            }
            column += cells;
        }
        at = end;
    }
    column
}

fn printable(byte: u8) -> bool {
    (0x20..0x7f).contains(&byte)
}

/// How many leading bytes are printable ASCII characters that are graphemes of their own: all of
/// a printable run but its last character when anything other than ASCII follows (it could be a
/// combining mark).
fn ascii_run(bytes: &[u8]) -> usize {
    match bytes.iter().position(|&b| !printable(b)) {
        None => bytes.len(),
        Some(at) if bytes[at].is_ascii() => at,
        Some(at) => at.saturating_sub(1),
    }
}

/// The end of the segment from `from` that needs grapheme segmentation: the first place after
/// its trouble where two printable ASCII characters meet, between which graphemes always break.
fn next_ascii_pair(bytes: &[u8], from: usize) -> usize {
    let trouble = bytes[from..]
        .iter()
        .position(|&b| !printable(b))
        .map_or(bytes.len(), |p| from + p);
    (trouble + 1..bytes.len())
        .find(|&j| printable(bytes[j - 1]) && printable(bytes[j]))
        .unwrap_or(bytes.len())
}

/// The columns a table shows at its width: each is (header, width, shown); rows are built
/// with every cell and keep those of the shown columns.
pub struct Columns<'a> {
    pub header: Vec<&'a str>,
    pub widths: Vec<Constraint>,
    shown: Vec<bool>,
}

impl<'a> Columns<'a> {
    pub fn new(specs: &[(&'a str, Constraint, bool)]) -> Self {
        let visible = || specs.iter().filter(|c| c.2);
        Self {
            header: visible().map(|c| c.0).collect(),
            widths: visible().map(|c| c.1).collect(),
            shown: specs.iter().map(|c| c.2).collect(),
        }
    }

    /// A row of the shown columns' cells, from one cell per column spec.
    pub fn row<'r>(&self, cells: Vec<GridCell<'r>>) -> GridRow<'r> {
        GridRow::new(
            cells
                .into_iter()
                .zip(&self.shown)
                .filter_map(|(cell, shown)| shown.then_some(cell))
                .collect(),
        )
    }
}

/// A table of the current view: the theme's header and selection, the app's selected row.
pub fn grid<'a>(
    scene: Scene<'_>,
    theme: &Theme,
    title: impl Into<Line<'a>>,
    header: &'a [&'a str],
    widths: &'a [Constraint],
    len: usize,
) -> Grid<'a> {
    Grid {
        block: block(theme, title),
        header,
        header_style: theme.style(Item::TableHeader),
        widths,
        len,
        selected: Some((scene.row_within(len), theme.style(Item::Selection))),
    }
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::style::{Color, Modifier};
    use ratatui::text::Span;
    use ratatui::widgets::{Borders, Row, Table, TableState, Widget};

    use super::*;

    fn texts(n: usize) -> Vec<[String; 3]> {
        (0..n)
            .map(|i| {
                [
                    format!("row {i}"),
                    // Within the column: a cut is the one place the grid differs (it marks it).
                    if i % 3 == 0 { "日本語" } else { "ascii" }.to_owned(),
                    format!("{}", i * 1_000_003),
                ]
            })
            .collect()
    }

    /// The grid draws what ratatui's `Table` draws for the same rows, selection and styles.
    #[test]
    fn draws_as_ratatui_table_does() {
        let widths = [
            Constraint::Length(7),
            Constraint::Length(6),
            Constraint::Min(4),
        ];
        let header = ["name", "text", "number"];
        let header_style = Style::default().add_modifier(Modifier::BOLD);
        let highlight = Style::default().bg(Color::Blue);
        let marked = Style::default().fg(Color::Yellow);
        for (n, selected) in [
            (0, None),
            (3, Some(1)),
            (30, Some(0)),
            (30, Some(25)),
            (30, None),
        ] {
            let rows = texts(n);
            let draw = |grid: bool| {
                let mut terminal = Terminal::new(TestBackend::new(30, 10)).unwrap();
                terminal
                    .draw(|frame| {
                        let block = Block::default().borders(Borders::ALL).title(" t ");
                        if grid {
                            Grid {
                                block,
                                header: &header,
                                header_style,
                                widths: &widths,
                                len: rows.len(),
                                selected: selected.map(|s| (s, highlight)),
                            }
                            .render(frame, frame.area(), |i| {
                                let row = GridRow::new(
                                    rows[i]
                                        .iter()
                                        .map(|t| {
                                            styled(t.as_str(), Style::default().fg(Color::Red))
                                        })
                                        .collect(),
                                );
                                if i % 4 == 1 { row.style(marked) } else { row }
                            });
                        } else {
                            let table_rows = rows.iter().enumerate().map(|(i, r)| {
                                let row = Row::new(
                                    r.iter()
                                        .map(|t| {
                                            Span::styled(
                                                t.as_str(),
                                                Style::default().fg(Color::Red),
                                            )
                                        })
                                        .collect::<Vec<_>>(),
                                );
                                if i % 4 == 1 { row.style(marked) } else { row }
                            });
                            let mut state = TableState::default().with_selected(selected);
                            frame.render_stateful_widget(
                                Table::new(table_rows, widths)
                                    .header(Row::new(header).style(header_style))
                                    .block(block)
                                    .row_highlight_style(highlight),
                                frame.area(),
                                &mut state,
                            );
                        }
                    })
                    .unwrap();
                terminal.backend().buffer().clone()
            };
            assert_eq!(draw(true), draw(false), "{n} rows, selected {selected:?}");
        }
    }

    /// A cell wider than its column ends in `…`, so a cut name never passes for another.
    #[test]
    fn a_cut_cell_is_marked() {
        let widths = [Constraint::Length(8), Constraint::Length(4)];
        let header = ["channel", "n"];
        let mut terminal = Terminal::new(TestBackend::new(20, 4)).unwrap();
        terminal
            .draw(|frame| {
                Grid {
                    block: Block::default(),
                    header: &header,
                    header_style: Style::default(),
                    widths: &widths,
                    len: 1,
                    selected: None,
                }
                .render(frame, frame.area(), |_| {
                    GridRow::new(vec![raw("delivery-success"), raw("12")])
                });
            })
            .unwrap();
        let line: String = (0..20)
            .map(|x| terminal.backend().buffer()[(x, 1)].symbol().to_owned())
            .collect();
        assert_eq!(line.trim_end(), "deliver… 12");
    }

    /// `put` draws every text as a `Span` would, at every width.
    #[test]
    fn put_draws_as_a_span_does() {
        let texts = [
            "plain ascii text",
            "cafe\u{301} au lait",
            "e\u{301}\u{302}x",
            "日本語テキスト and ascii",
            "a → b → c (scope)",
            "ctrl\u{1b}[31m red \u{7}bell\ttab\r\nnl",
            "family 👨\u{200d}👩\u{200d}👧 flags 🇫🇷🇩🇪 keycap 1\u{fe0f}\u{20e3}",
            "\u{600}1 arabic prepend, \u{1100}\u{1161}\u{11a8} hangul",
            "ｶﾞ halfwidth ▁▂▃█ bars",
            "",
            "\u{301}leading mark",
        ];
        for text in texts {
            for width in 0..30u16 {
                let area = Rect::new(0, 0, 32, 1);
                let mut ours = Buffer::empty(area);
                let end = put(
                    &mut ours,
                    1,
                    0,
                    width,
                    text,
                    Style::default().fg(Color::Red),
                );
                let mut theirs = Buffer::empty(area);
                Span::styled(text, Style::default().fg(Color::Red))
                    .render(Rect::new(1, 0, width, 1), &mut theirs);
                assert_eq!(ours, theirs, "{text:?} in {width} columns");
                assert!(
                    end <= 1 + width,
                    "{text:?} in {width} columns ended at {end}"
                );
            }
        }
    }

    proptest::proptest! {
        /// Any mix of ASCII, controls, combining marks, joiners, wide and emoji characters.
        #[test]
        fn put_draws_any_text_as_a_span_does(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "a", "Z", " ", "~", "\u{1b}", "\n", "\t", "\u{301}", "\u{200d}", "\u{200b}",
                    "\u{fe0f}", "日", "👨", "🇫", "\u{600}", "\u{1100}", "\u{1161}", "ﾞ", "é", "→",
                ]),
                0..24,
            ),
            width in 0u16..20,
        ) {
            let text = parts.concat();
            let area = Rect::new(0, 0, 24, 1);
            let mut ours = Buffer::empty(area);
            put(&mut ours, 2, 0, width, &text, Style::default());
            let mut theirs = Buffer::empty(area);
            Span::raw(text.as_str()).render(Rect::new(2, 0, width, 1), &mut theirs);
            proptest::prop_assert_eq!(ours, theirs, "{:?} in {} columns", text, width);
        }
    }

    #[test]
    fn put_cuts_to_width_and_buffer_and_drops_controls() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 8, 2));
        put(&mut buf, 2, 0, 3, "abcdef", Style::default());
        put(&mut buf, 5, 1, 10, "x\u{1b}[1my", Style::default());
        put(&mut buf, 0, 5, 10, "outside", Style::default());
        assert_eq!(buf, Buffer::with_lines(["  abc   ", "     x[1"]));
        // A combining accent stays with its letter; a wide character that does not fit stops.
        let mut buf = Buffer::empty(Rect::new(0, 0, 8, 1));
        let end = put(&mut buf, 0, 0, 8, "cafe\u{301} 日本", Style::default());
        assert_eq!(end, 7);
        assert_eq!(buf[(3, 0)].symbol(), "e\u{301}");
        assert_eq!(buf[(5, 0)].symbol(), "日");
        let mut buf = Buffer::empty(Rect::new(0, 0, 8, 1));
        assert_eq!(put(&mut buf, 0, 0, 8, "abcdefg日", Style::default()), 7);
    }
}
