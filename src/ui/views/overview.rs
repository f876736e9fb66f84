//! Overview: queues (depth, in flight, oldest age, thresholds), rates with sparklines, the DLQ
//! and its growth, breakers, workers, and the SLO slot.

use std::fmt::Write as _;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;

use super::grid::{Grid, GridRow, put, styled};
use super::parts::breaker_glyph;
use super::{block, figure};
use crate::engine::breaker::BreakerState;
use crate::sources::StoreSection;
use crate::ui::state::Scene;
use crate::ui::theme::{Item, Theme};
use crate::ui::widgets::{age, clock, count, percent, rate, sparkline_rows};

/// Four panels of one screen: queues, rates, health, recent actions.
pub fn draw(scene: Scene<'_>, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(store) = scene.snapshot.store.as_ref() else {
        return;
    };
    let unhealthy = store
        .breakers
        .iter()
        .filter(|b| b.state != BreakerState::Closed)
        .count()
        .min(3);
    let slos = scene
        .snapshot
        .slo
        .as_ref()
        .map_or(0, |s| s.readings.len())
        .max(1);
    // Rates need 5 lines; health one per unhealthy breaker and per SLO besides the summary,
    // and two for alerts and silences.
    let middle_height = (5 + unhealthy + slos).clamp(7, 16) as u16;
    // With no actions to list, the Recent actions box yields its space to the panels above.
    let [top, middle, bottom] = if store.audit.is_empty() {
        Layout::vertical([
            Constraint::Length(store.queues.len() as u16 + 3),
            Constraint::Min(middle_height),
            Constraint::Length(3),
        ])
        .areas(area)
    } else {
        Layout::vertical([
            Constraint::Length(store.queues.len() as u16 + 3),
            Constraint::Length(middle_height),
            Constraint::Min(3),
        ])
        .areas(area)
    };
    draw_queues(scene, theme, frame, top, store);
    let [rates_area, side] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(middle);
    draw_rates(scene, theme, frame, rates_area, store);
    draw_health(scene, theme, frame, side, store);
    draw_recent(theme, frame, bottom, store);
}

/// The queues table's columns.
const QUEUE_HEADER: [&str; 8] = [
    "queue",
    "depth",
    "in flight",
    "scheduled",
    "oldest",
    "warn/shed",
    "DLQ",
    "dead",
];
const QUEUE_WIDTHS: [Constraint; 8] = [
    Constraint::Length(10),
    Constraint::Length(8),
    Constraint::Length(9),
    Constraint::Length(13),
    Constraint::Length(7),
    Constraint::Length(10),
    Constraint::Length(7),
    Constraint::Length(6),
];

/// Each queue's depth, in flight, scheduled, oldest age, thresholds and failure sets.
fn draw_queues(
    scene: Scene<'_>,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
    store: &StoreSection,
) {
    let text = figure(scene, theme, Item::Text);
    Grid {
        block: block(theme, " Queues "),
        header: &QUEUE_HEADER,
        header_style: theme.style(Item::TableHeader),
        widths: &QUEUE_WIDTHS,
        len: store.queues.len(),
        selected: None,
    }
    .render(frame, area, |i| {
        let q = &store.queues[i];
        let s = &q.stats;
        let depth_item = if q.over_shed {
            Item::Error
        } else if q.over_warn {
            Item::Warn
        } else {
            Item::Text
        };
        let thresholds = format!(
            "{}/{}",
            q.warn_at.map_or_else(|| "-".to_owned(), count),
            q.shed_at.map_or_else(|| "-".to_owned(), count)
        );
        GridRow::new(vec![
            styled(s.queue.to_string(), text),
            styled(count(s.depth), figure(scene, theme, depth_item)),
            styled(count(s.in_flight), text),
            styled(
                super::scheduled_cell(scene.ui.now_ms, s),
                figure(
                    scene,
                    theme,
                    if s.scheduled > 0 {
                        Item::Warn
                    } else {
                        Item::Text
                    },
                ),
            ),
            styled(s.oldest_age_ms.map_or_else(|| "-".to_owned(), age), text),
            styled(thresholds, figure(scene, theme, Item::Dim)),
            styled(
                count(s.dlq),
                figure(
                    scene,
                    theme,
                    if s.dlq > 0 { Item::Warn } else { Item::Text },
                ),
            ),
            styled(count(s.dead), text),
        ])
    });
}

/// Rates over the workers' last beat with a sparkline each.
fn draw_rates(
    scene: Scene<'_>,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
    store: &StoreSection,
) {
    // Every figure names its span: rates over the workers' last heartbeat interval, sparklines
    // over the reads they show, each scaled to its own largest point.
    let rates_title = format!(
        " Rates per {} · sparks {} ",
        store
            .rates
            .window_ms
            .map_or_else(|| "? (waiting for 2 beats)".to_owned(), age),
        age(store.history.span_ms(scene.ui.spark_points)),
    );
    let rates_block = block(theme, rates_title);
    let rates_inner = rates_block.inner(area);
    frame.render_widget(rates_block, area);
    let spark_width = area.width.saturating_sub(28) as usize;
    let window = scene.ui.spark_points;
    let series = rate_series(store);
    let footer = format!(
        "ingested {}   sparks scaled to own max",
        rate(store.rates.ingested_per_s)
    );
    let (x, right) = (rates_inner.x, rates_inner.right());
    let buf = frame.buffer_mut();
    let mut y = rates_inner.y;
    // Room to spare (a tall terminal, no recent actions) makes the sparklines taller.
    let rows = usize::from(rates_inner.height.saturating_sub(1) / 4).clamp(1, 4);
    for (label, value, item, points) in series {
        if y + rows as u16 > rates_inner.bottom() {
            break;
        }
        let points = &points[points.len().saturating_sub(window)..];
        let spark_style = figure(scene, theme, Item::Sparkline);
        for line in sparkline_rows(points, spark_width, rows) {
            for (column, bar) in (x.saturating_add(25)..right).zip(line) {
                buf[(column, y)].set_symbol(bar).set_style(spark_style);
            }
            y += 1;
        }
        // The label and value sit on the band's bottom line, beside the bars' base.
        let y = y - 1;
        let label = format!("{label:<10}");
        let value = format!("{value:>14} ");
        put(buf, x, y, right - x, &label, theme.style(Item::Dim));
        let value_x = x.saturating_add(10).min(right);
        put(
            buf,
            value_x,
            y,
            right - value_x,
            &value,
            figure(scene, theme, item),
        );
    }
    if y < rates_inner.bottom() {
        put(buf, x, y, right - x, &footer, theme.style(Item::Dim));
    }
}

/// The four rates the panel shows: label, value, its colour and its history.
fn rate_series(store: &StoreSection) -> [(&'static str, String, Item, &[u64]); 4] {
    let history = &store.history;
    let growth = store
        .rates
        .dlq_growth_per_min
        .map_or_else(|| "unknown".to_owned(), |g| format!("{g:+.0}/min"));
    let error_item = match store.rates.error_ratio {
        Some(r) if r >= 0.5 => Item::Error,
        Some(r) if r >= 0.05 => Item::Warn,
        _ => Item::Ok,
    };
    let dlq_item = if store.dlq_total() > 0 {
        Item::Warn
    } else {
        Item::Text
    };
    [
        (
            "delivered",
            rate(store.rates.delivered_per_s),
            Item::Text,
            &history.delivered_per_s,
        ),
        (
            "errors",
            percent(store.rates.error_ratio),
            error_item,
            &history.error_permille,
        ),
        (
            "depth",
            count(store.queues.iter().map(|q| q.stats.depth).sum()),
            Item::Text,
            &history.depth,
        ),
        (
            "DLQ",
            format!("{} {growth}", count(store.dlq_total())),
            dlq_item,
            &history.dlq,
        ),
    ]
}

/// Breakers, what alerting holds back, and the SLOs.
fn draw_health(
    scene: Scene<'_>,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
    store: &StoreSection,
) {
    let health_block = block(theme, " Health ");
    let health = health_block.inner(area);
    frame.render_widget(health_block, area);
    let dim = theme.style(Item::Dim);
    let mut lines = breaker_lines(scene, theme, store);
    for (label, text, item) in alerting_lines(&store.alerting, health.width < 48) {
        lines.push(vec![
            (label.to_owned(), dim),
            (text, figure(scene, theme, item)),
        ]);
    }
    lines.extend(slo_lines(scene, theme, health.width));
    let buf = frame.buffer_mut();
    let right = health.right();
    for (y, parts) in (health.y..health.bottom()).zip(&lines) {
        let mut at = health.x;
        for (text, style) in parts {
            at = put(buf, at, y, right.saturating_sub(at), text, *style);
        }
    }
}

/// The breakers' summary, then each of (up to three) not closed.
fn breaker_lines(
    scene: Scene<'_>,
    theme: &Theme,
    store: &StoreSection,
) -> Vec<Vec<(String, Style)>> {
    let open = store
        .breakers
        .iter()
        .filter(|b| matches!(b.state, BreakerState::Open | BreakerState::ForcedOpen))
        .count();
    let half = store
        .breakers
        .iter()
        .filter(|b| b.state == BreakerState::HalfOpen)
        .count();
    let summary = format!(
        "{} closed · {open} open · {half} half-open",
        store.breakers.len() - open - half
    );
    let mut lines = vec![vec![
        ("breakers  ".to_owned(), theme.style(Item::Dim)),
        (
            summary,
            figure(scene, theme, if open > 0 { Item::Error } else { Item::Ok }),
        ),
    ]];
    for b in store
        .breakers
        .iter()
        .filter(|b| b.state != BreakerState::Closed)
        .take(3)
    {
        let text = format!(
            "  {} {} {}",
            breaker_glyph(b.state),
            super::fit(&b.channel, 16),
            b.state.label()
        );
        lines.push(vec![(text, figure(scene, theme, Item::Warn))]);
    }
    lines
}

/// The SLO lines: a summary per state on a wide panel, every objective's whole name with its
/// state glyph on a narrow one (a cut name could pass for another).
fn slo_lines(scene: Scene<'_>, theme: &Theme, width: u16) -> Vec<Vec<(String, Style)>> {
    let dim = theme.style(Item::Dim);
    let label = |i: usize, wide: &str, narrow: &str| if i == 0 { wide } else { narrow }.to_owned();
    match scene.snapshot.slo.as_deref() {
        None => vec![vec![
            ("SLOs      ".to_owned(), dim),
            ("no source (slo.prometheus_url)".to_owned(), dim),
        ]],
        Some(section) if section.readings.is_empty() => {
            let why = section.error.as_deref().unwrap_or("not read yet");
            vec![vec![
                ("SLOs      ".to_owned(), dim),
                (super::fit(why, 60), dim),
            ]]
        }
        Some(section) if width >= 48 => super::parts::summary(section)
            .into_iter()
            .enumerate()
            .map(|(i, (text, state))| {
                vec![
                    (label(i, "SLOs      ", "          "), dim),
                    (text, super::parts::state_style(scene, theme, state)),
                ]
            })
            .collect(),
        Some(section) => section
            .readings
            .iter()
            .enumerate()
            .map(|(i, reading)| {
                let state = reading.figures.state;
                let text = format!(
                    "{} {}",
                    super::parts::state_glyph(state),
                    super::fit(&reading.name, usize::from(width.saturating_sub(7)))
                );
                vec![
                    (label(i, "SLOs ", "     "), dim),
                    (text, super::parts::state_style(scene, theme, state)),
                ]
            })
            .collect(),
    }
}

/// The newest audit records.
fn draw_recent(theme: &Theme, frame: &mut Frame, area: Rect, store: &StoreSection) {
    let dim = theme.style(Item::Dim);
    let recent_block = block(
        theme,
        if store.audit.is_empty() {
            " Recent actions · none yet "
        } else {
            " Recent actions "
        },
    );
    let recent = recent_block.inner(area);
    frame.render_widget(recent_block, area);
    let buf = frame.buffer_mut();
    let text_width = area.width.saturating_sub(12) as usize;
    for (y, entry) in (recent.y..recent.bottom()).zip(&store.audit) {
        let r = &entry.record;
        let at = put(
            buf,
            recent.x,
            y,
            recent.width,
            &format!("{} ", clock(r.at_ms)),
            dim,
        );
        let summary = format!("{} {} → {} ({})", r.who, r.action, r.result, r.scope);
        put(
            buf,
            at,
            y,
            recent.right().saturating_sub(at),
            &super::fit(&summary, text_width),
            Style::default(),
        );
    }
}

/// The Health panel's alerts and silences lines: what is held back now, and the silences
/// doing it (with those about to end); shorter on a narrow panel.
fn alerting_lines(
    alerting: &crate::sources::AlertingView,
    narrow: bool,
) -> [(&'static str, String, Item); 2] {
    let held = alerting.silenced_now + alerting.inhibited_now;
    let (firing, silenced, inhibited) = (
        alerting.firing_now,
        alerting.silenced_now,
        alerting.inhibited_now,
    );
    let alerts = (
        if narrow { "alerts " } else { "alerts    " },
        if narrow {
            format!("{firing} firing · {held} held back")
        } else {
            format!("{firing} firing · {silenced} silenced · {inhibited} inhibited")
        },
        if held > 0 { Item::Info } else { Item::Text },
    );
    let mut text = format!("{} active", alerting.active);
    if alerting.ending_soon > 0 {
        let _ = write!(text, " · {} ends <5m", alerting.ending_soon);
    }
    if !narrow {
        let _ = write!(text, " · {} pending", alerting.pending);
    }
    let silences = (
        if narrow { "silences " } else { "silences  " },
        text,
        if alerting.ending_soon > 0 {
            Item::Warn
        } else {
            Item::Text
        },
    );
    [alerts, silences]
}
