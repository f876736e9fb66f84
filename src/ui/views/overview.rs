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
use crate::ui::state::Scene;
use crate::ui::theme::{Item, Theme};
use crate::ui::widgets::{age, clock, count, percent, rate, sparkline_rows};

#[allow(clippy::too_many_lines)] // four panels of one screen
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

    let header = [
        "queue",
        "depth",
        "in flight",
        "scheduled",
        "oldest",
        "warn/shed",
        "DLQ",
        "dead",
    ];
    let widths = [
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Length(13),
        Constraint::Length(7),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(6),
    ];
    let text = figure(scene, theme, Item::Text);
    Grid {
        block: block(theme, " Queues "),
        header: &header,
        header_style: theme.style(Item::TableHeader),
        widths: &widths,
        len: store.queues.len(),
        selected: None,
    }
    .render(frame, top, |i| {
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

    let [rates_area, side] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(middle);
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
    let rates_inner = rates_block.inner(rates_area);
    frame.render_widget(rates_block, rates_area);
    let spark_width = rates_area.width.saturating_sub(28) as usize;
    let history = &store.history;
    let window = scene.ui.spark_points;
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
    let series: [(&str, String, Item, &[u64]); 4] = [
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
    ];
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
    let health_block = block(theme, " Health ");
    let health = health_block.inner(side);
    frame.render_widget(health_block, side);
    let buf = frame.buffer_mut();
    let (x, right) = (health.x, health.right());
    let dim = theme.style(Item::Dim);
    let summary = format!(
        "{} closed · {open} open · {half} half-open",
        store.breakers.len() - open - half
    );
    let mut y = health.y;
    let mut line = |y: u16, parts: &[(&str, Style)]| {
        if y < health.bottom() {
            let mut at = x;
            for (text, style) in parts {
                at = put(buf, at, y, right.saturating_sub(at), text, *style);
            }
        }
    };
    line(
        y,
        &[
            ("breakers  ", dim),
            (
                &summary,
                figure(scene, theme, if open > 0 { Item::Error } else { Item::Ok }),
            ),
        ],
    );
    for b in store
        .breakers
        .iter()
        .filter(|b| b.state != BreakerState::Closed)
        .take(3)
    {
        y += 1;
        let text = format!(
            "  {} {} {}",
            breaker_glyph(b.state),
            super::fit(&b.channel, 16),
            b.state.label()
        );
        line(y, &[(&text, figure(scene, theme, Item::Warn))]);
    }
    for (label, text, item) in alerting_lines(&store.alerting, health.width < 48) {
        y += 1;
        line(y, &[(label, dim), (&text, figure(scene, theme, item))]);
    }
    match scene.snapshot.slo.as_deref() {
        None => line(
            y + 1,
            &[("SLOs      ", dim), ("no source (slo.prometheus_url)", dim)],
        ),
        Some(section) if section.readings.is_empty() => {
            let why = section.error.as_deref().unwrap_or("not read yet");
            line(y + 1, &[("SLOs      ", dim), (&super::fit(why, 60), dim)]);
        }
        Some(section) if health.width >= 48 => {
            for (i, (text, state)) in super::parts::summary(section).iter().enumerate() {
                let label = if i == 0 { "SLOs      " } else { "          " };
                line(
                    y + 1 + i as u16,
                    &[
                        (label, dim),
                        (text, super::parts::state_style(scene, theme, *state)),
                    ],
                );
            }
        }
        Some(section) => {
            // Narrow: the whole name with a state glyph; a cut name could pass for another.
            for (i, reading) in section.readings.iter().enumerate() {
                let label = if i == 0 { "SLOs " } else { "     " };
                let state = reading.figures.state;
                let text = format!(
                    "{} {}",
                    super::parts::state_glyph(state),
                    super::fit(&reading.name, usize::from(health.width.saturating_sub(7)))
                );
                line(
                    y + 1 + i as u16,
                    &[
                        (label, dim),
                        (&text, super::parts::state_style(scene, theme, state)),
                    ],
                );
            }
        }
    }

    let recent_block = block(
        theme,
        if store.audit.is_empty() {
            " Recent actions · none yet "
        } else {
            " Recent actions "
        },
    );
    let recent = recent_block.inner(bottom);
    frame.render_widget(recent_block, bottom);
    let buf = frame.buffer_mut();
    let text_width = bottom.width.saturating_sub(12) as usize;
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
