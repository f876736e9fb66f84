//! SLOs: per objective the target, availability over the period, the budget left (a clamped bar
//! and the exact number, negative when overspent), burn rates per window against the page and
//! ticket thresholds, the alert state and when the budget runs out. No traffic reads "no
//! traffic" and a missing series "absent", never 0 %.

use std::fmt::Write as _;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};

use super::figure;
use super::grid::{GridCell, GridRow, grid, put, raw, styled};
use super::parts::{state_style, unknown};
use crate::engine::slo::{Exhaustion, Measurement, Severity, SloFigures, WindowFigures};
use crate::sources::slo::{SloReading, SloSection};
use crate::ui::state::Scene;
use crate::ui::theme::{Item, Theme};
use crate::ui::widgets::{age, fit};

/// Cells of the budget bar.
const BAR: usize = 10;

pub fn draw(scene: Scene<'_>, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(section) = scene.snapshot.slo.as_deref() else {
        draw_no_source(theme, frame, area);
        return;
    };
    let wide = area.width >= 150;
    let (shown, header, widths) = columns(section, wide);
    let title = title(scene, section);
    let selected = section
        .readings
        .get(scene.row_within(section.readings.len()));
    let trend_height = if selected.is_some() && area.height >= 14 {
        6
    } else {
        0
    };
    let [table, trend_area] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(trend_height)]).areas(area);
    grid(
        scene,
        theme,
        title,
        &header,
        &widths,
        section.readings.len(),
    )
    .render(frame, table, |i| {
        let mut cells: Vec<Option<_>> = cells(scene, theme, &section.readings[i], wide)
            .into_iter()
            .map(Some)
            .collect();
        GridRow::new(shown.iter().filter_map(|&c| cells[c].take()).collect())
    });
    if let Some(reading) = selected
        && trend_height > 0
    {
        draw_trend(scene, theme, frame, trend_area, reading);
    }
}

/// What the view says when no SLO source is configured.
fn draw_no_source(theme: &Theme, frame: &mut Frame, area: Rect) {
    let block = super::block(theme, " SLOs ");
    frame.render_widget(
        ratatui::widgets::Paragraph::new(vec![
            ratatui::text::Line::raw("No SLO source: set slo.prometheus_url in the config to read"),
            ratatui::text::Line::raw(
                "the objectives from Prometheus (`ward demo` reads its own counters).",
            ),
        ])
        .style(theme.style(Item::Dim))
        .block(block),
        area,
    );
}

/// The columns shown at this width, their headers and widths: narrow terminals keep what
/// triage needs, and figures over less data than their window widen to say how much.
fn columns(
    section: &SloSection,
    wide: bool,
) -> (&'static [usize], Vec<&'static str>, Vec<Constraint>) {
    let header = [
        "objective",
        "target",
        "period",
        "availability",
        "budget",
        "left",
        "burn 5m",
        "1h",
        "6h",
        "1d",
        "3d",
        "page",
        "ticket",
        "state",
        "budget lasts",
    ];
    let mut widths = [
        Constraint::Length(24),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(12),
        Constraint::Length(BAR as u16),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(10),
        Constraint::Min(10),
    ];
    // Figures over less data than their window say how much: their columns widen for it.
    let partial = section
        .readings
        .iter()
        .any(|r| r.figures.period_covered_s.is_some());
    if partial {
        widths[0] = Constraint::Length(22);
        widths[5] = Constraint::Length(if wide { 15 } else { 13 });
        for burn in &mut widths[6..11] {
            *burn = Constraint::Length(if wide { 16 } else { 10 });
        }
    }
    // Narrow terminals keep what triage needs: name, state, budget, the fast burns, alerts
    // (the page only, when the figures carry how much data backs them).
    let shown: &[usize] = if !wide && partial {
        &[0, 13, 5, 6, 7, 11]
    } else if !wide {
        &[0, 13, 5, 6, 7, 11, 12]
    } else {
        &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
    };
    let header: Vec<&'static str> = shown.iter().map(|&c| header[c]).collect();
    let mut widths: Vec<Constraint> = shown.iter().map(|&c| widths[c]).collect();
    if let Some(last) = widths.last_mut() {
        *last = Constraint::Min(6);
    }
    (shown, header, widths)
}

/// One point of a burn line: a bar scaled to `peak`, red above the page's threshold; a gap
/// where the burn is unknown.
fn burn_bar(point: Option<f64>, peak: f64, threshold: f64) -> (&'static str, Item) {
    const BARS: [&str; 8] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"];
    match point {
        None => (" ", Item::Dim),
        Some(burn) => {
            let level = ((burn / peak) * 7.0).round().clamp(0.0, 7.0) as usize;
            let item = if burn > threshold {
                Item::Error
            } else {
                Item::Sparkline
            };
            (BARS[level], item)
        }
    }
}

/// The selected objective's fast-page burn rates over the last hour, against the threshold:
/// bars scaled to the larger of the threshold and the peak, red above the threshold, blank
/// where unknown.
fn draw_trend(
    scene: Scene<'_>,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
    reading: &SloReading,
) {
    let trend = &reading.trend;
    let title = format!(
        " {} · burn over the last hour, 5 m and 1 h windows · pages above {} ",
        fit(&reading.name, 30),
        trend.threshold
    );
    let block = super::block(theme, title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let peak = trend
        .short
        .iter()
        .chain(&trend.long)
        .flatten()
        .fold(trend.threshold, |a, &b| a.max(b));
    let dim = theme.style(Item::Dim);
    let buf = frame.buffer_mut();
    let lines = [("5m ", &trend.short), ("1h ", &trend.long)];
    for ((label, points), y) in lines.iter().zip(inner.y..inner.bottom()) {
        let mut x = put(buf, inner.x, y, inner.width, label, dim);
        for point in *points {
            if x >= inner.right() {
                break;
            }
            let (glyph, item) = burn_bar(*point, peak, trend.threshold);
            buf[(x, y)]
                .set_symbol(glyph)
                .set_style(figure(scene, theme, item));
            x += 1;
        }
        let now = points
            .last()
            .copied()
            .flatten()
            .map_or_else(|| "unknown".to_owned(), |b| format!("{b:.2}"));
        put(
            buf,
            x.saturating_add(1),
            y,
            inner.right().saturating_sub(x + 1),
            &format!("now {now}"),
            dim,
        );
    }
    if inner.height > 2 {
        put(
            buf,
            inner.x,
            inner.y + 2,
            inner.width,
            &format!(
                "scale: full bar = {peak:.1}; the page fires while both lines are above {}",
                trend.threshold
            ),
            dim,
        );
    }
    if inner.height > 3 && !reading.next_step.is_empty() {
        let style = state_style(scene, theme, reading.figures.state);
        put(
            buf,
            inner.x,
            inner.y + 3,
            inner.width,
            &fit(
                &format!("next: {}", reading.next_step),
                usize::from(inner.width),
            ),
            style,
        );
    }
}

/// Every column of one objective's row, in header order.
fn cells<'a>(
    scene: Scene<'_>,
    theme: &Theme,
    reading: &'a SloReading,
    wide: bool,
) -> Vec<GridCell<'a>> {
    let f = &reading.figures;
    let text = figure(scene, theme, Item::Text);
    let (bar, left, left_item) = budget(f);
    let mut cells = vec![
        raw(fit(&reading.name, 24)),
        styled(percent(f.target), text),
        raw(f.period.as_str()),
        styled(
            f.availability.map_or_else(|| unknown(&f.windows), percent),
            text,
        ),
        styled(bar, figure(scene, theme, Item::Gauge)),
        styled(left, figure(scene, theme, left_item)),
    ];
    for window in [0, 2, 4, 5, 6] {
        let w = &f.windows[window];
        let over = f
            .alerts
            .iter()
            .filter(|a| a.long_s == w.window_s || a.short_s == w.window_s)
            .any(|a| w.burn_rate.is_some_and(|b| b > a.factor));
        cells.push(styled(
            burn(w, wide),
            figure(scene, theme, if over { Item::Warn } else { Item::Text }),
        ));
    }
    for severity in [Severity::Page, Severity::Ticket] {
        let firing: Vec<Option<bool>> = f
            .alerts
            .iter()
            .filter(|a| a.severity == severity)
            .map(|a| a.firing)
            .collect();
        let (label, item) = if firing.contains(&Some(true)) {
            ("FIRING", Item::Error)
        } else if firing.iter().all(Option::is_none) {
            ("?", Item::Dim)
        } else {
            ("-", Item::Ok)
        };
        cells.push(styled(label, figure(scene, theme, item)));
    }
    let state = match (f.windows[0].measurement, reading.seen_at_ms) {
        (Measurement::Absent, Some(seen)) => {
            format!(
                "absent {}",
                age(u64::try_from(scene.ui.now_ms - seen).unwrap_or(0))
            )
        }
        (Measurement::Absent, None) => "absent".to_owned(),
        _ => f.state.as_str().to_owned(),
    };
    cells.push(styled(state, state_style(scene, theme, f.state)));
    cells.push(styled(lasts(f.exhaustion), text));
    cells
}

fn title(scene: Scene<'_>, section: &SloSection) -> String {
    let read = section.read_at_ms.map_or_else(
        || "not read yet".to_owned(),
        |at| {
            format!(
                "read {} ago",
                age(u64::try_from(scene.ui.now_ms - at).unwrap_or(0))
            )
        },
    );
    let mut title = format!(" SLOs · {} · {read} ", fit(&section.source, 50));
    if let Some(s) = section
        .readings
        .iter()
        .filter_map(|r| r.figures.period_covered_s)
        .max()
    {
        let _ = write!(
            title,
            "· {} of data so far, ( ) per figure ",
            age(s * 1_000)
        );
    }
    if let Some(error) = &section.error {
        let _ = write!(title, "· ERROR {} ", fit(error, 80));
    }
    title
}

/// `99.9%`, `99.95%`, `81.29%`: up to three decimals, no trailing zeros.
fn percent(ratio: f64) -> String {
    let text = format!("{:.3}", ratio * 100.0);
    format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
}

/// A burn rate, with the data behind it when that is less than its window: `1.89 (3m of 1h)`
/// (`1.89 (3m)` when narrow).
fn burn(w: &WindowFigures, wide: bool) -> String {
    let rate = match (w.burn_rate, w.measurement) {
        (Some(b), _) if b >= 100.0 => format!("{b:.0}"),
        (Some(b), _) => format!("{b:.2}"),
        (None, Measurement::Absent) => return "absent".to_owned(),
        (None, _) => return "—".to_owned(),
    };
    match w.covered_s {
        Some(s) if wide => format!(
            "{rate} ({} of {})",
            age(s * 1_000),
            crate::engine::slo::window_name(w.window_s)
        ),
        Some(s) => format!("{rate} ({})", age(s * 1_000)),
        None => rate,
    }
}

/// The remaining budget as a bar clamped to 0–100 % and the exact figure beside it.
fn budget(f: &SloFigures) -> (String, String, Item) {
    let Some(left) = f.budget_remaining else {
        return (" ".repeat(BAR), "—".to_owned(), Item::Dim);
    };
    let filled = ((left.clamp(0.0, 1.0) * BAR as f64).round() as usize).min(BAR);
    let bar = format!("{}{}", "█".repeat(filled), "░".repeat(BAR - filled));
    let item = if left <= 0.0 {
        Item::Error
    } else if left < 0.25 {
        Item::Warn
    } else {
        Item::Ok
    };
    // A budget from minutes of data is not the period's: say how much backs it.
    let number = match f.period_covered_s {
        Some(s) => format!("{:.1}% ({})", left * 100.0, age(s * 1_000)),
        None => format!("{:.1}%", left * 100.0),
    };
    (bar, number, item)
}

fn lasts(exhaustion: Exhaustion) -> String {
    match exhaustion {
        Exhaustion::Exhausted => "exhausted".to_owned(),
        Exhaustion::In { seconds } => format!("{} at 1h burn", age((seconds * 1_000.0) as u64)),
        Exhaustion::NotBurning => "not burning".to_owned(),
        Exhaustion::Unknown => "unknown".to_owned(),
    }
}
