//! Overview: queues (depth, in flight, oldest age, thresholds), rates with sparklines, the DLQ
//! and its growth, breakers, workers, and the SLO slot.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table};

use super::{block, figure};
use crate::engine::breaker::BreakerState;
use crate::ui::app::App;
use crate::ui::theme::{Item, Theme};
use crate::ui::widgets::{age, count, percent, rate, sparkline};

#[allow(clippy::too_many_lines)] // four panels of one screen
pub fn draw(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(store) = app.snapshot.store.as_ref() else {
        return;
    };
    let [top, middle, bottom] = Layout::vertical([
        Constraint::Length(store.queues.len() as u16 + 3),
        Constraint::Length(7),
        Constraint::Min(3),
    ])
    .areas(area);

    let header = Row::new([
        "queue",
        "depth",
        "in flight",
        "scheduled",
        "oldest",
        "warn/shed",
        "DLQ",
        "dead",
    ])
    .style(theme.style(Item::TableHeader));
    let rows = store.queues.iter().map(|q| {
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
        Row::new(vec![
            Span::styled(s.queue.to_string(), figure(app, theme, Item::Text)),
            Span::styled(count(s.depth), figure(app, theme, depth_item)),
            Span::styled(count(s.in_flight), figure(app, theme, Item::Text)),
            Span::styled(count(s.scheduled), figure(app, theme, Item::Text)),
            Span::styled(
                s.oldest_age_ms.map_or_else(|| "-".to_owned(), age),
                figure(app, theme, Item::Text),
            ),
            Span::styled(thresholds, figure(app, theme, Item::Dim)),
            Span::styled(
                count(s.dlq),
                figure(app, theme, if s.dlq > 0 { Item::Warn } else { Item::Text }),
            ),
            Span::styled(count(s.dead), figure(app, theme, Item::Text)),
        ])
    });
    let widths = [
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(11),
        Constraint::Length(8),
        Constraint::Length(8),
    ];
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(block(theme, " Queues ")),
        top,
    );

    let [rates_area, side] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(middle);
    let spark_width = rates_area.width.saturating_sub(28) as usize;
    let history = &store.history;
    let window = app.spark_points;
    let tail = |points: &[u64]| points[points.len().saturating_sub(window)..].to_vec();
    let growth = store
        .rates
        .dlq_growth_per_min
        .map_or_else(|| "unknown".to_owned(), |g| format!("{g:+.0}/min"));
    let line = |label: &'static str, value: String, item: Item, points: &[u64]| {
        Line::from(vec![
            Span::styled(format!("{label:<10}"), theme.style(Item::Dim)),
            Span::styled(format!("{value:>14} "), figure(app, theme, item)),
            Span::styled(
                sparkline(&tail(points), spark_width),
                figure(app, theme, Item::Sparkline),
            ),
        ])
    };
    let error_item = match store.rates.error_ratio {
        Some(r) if r >= 0.5 => Item::Error,
        Some(r) if r >= 0.05 => Item::Warn,
        _ => Item::Ok,
    };
    let lines = vec![
        line(
            "delivered",
            rate(store.rates.delivered_per_s),
            Item::Text,
            &history.delivered_per_s,
        ),
        line(
            "errors",
            percent(store.rates.error_ratio),
            error_item,
            &history.error_permille,
        ),
        line(
            "depth",
            count(store.queues.iter().map(|q| q.stats.depth).sum()),
            Item::Text,
            &history.depth,
        ),
        line(
            "DLQ",
            format!("{} {growth}", count(store.dlq_total())),
            if store.dlq_total() > 0 {
                Item::Warn
            } else {
                Item::Text
            },
            &history.dlq,
        ),
        Line::styled(
            format!(
                "ingested {}   window {} reads",
                rate(store.rates.ingested_per_s),
                window
            ),
            theme.style(Item::Dim),
        ),
    ];
    frame.render_widget(
        Paragraph::new(lines).block(block(theme, " Rates ")),
        rates_area,
    );

    let mut side_lines = Vec::new();
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
    side_lines.push(Line::from(vec![
        Span::styled("breakers  ", theme.style(Item::Dim)),
        Span::styled(
            format!(
                "{} closed · {open} open · {half} half-open",
                store.breakers.len() - open - half
            ),
            figure(app, theme, if open > 0 { Item::Error } else { Item::Ok }),
        ),
    ]));
    for b in store
        .breakers
        .iter()
        .filter(|b| b.state != BreakerState::Closed)
        .take(3)
    {
        side_lines.push(Line::styled(
            format!(
                "  {} {} {}",
                breaker_glyph(b.state),
                super::fit(&b.channel, 16),
                b.state.as_str()
            ),
            figure(app, theme, Item::Warn),
        ));
    }
    side_lines.push(Line::from(vec![
        Span::styled("SLOs      ", theme.style(Item::Dim)),
        Span::styled("none configured", theme.style(Item::Dim)),
    ]));
    frame.render_widget(
        Paragraph::new(side_lines).block(block(theme, " Health ")),
        side,
    );

    let audit_rows = store
        .audit
        .iter()
        .take(bottom.height.saturating_sub(2) as usize)
        .map(|e| {
            let r = &e.record;
            Line::from(vec![
                Span::styled(
                    format!("{} ", crate::ui::widgets::clock(r.at_ms)),
                    theme.style(Item::Dim),
                ),
                Span::raw(super::fit(
                    &format!("{} {} → {} ({})", r.who, r.action, r.result, r.scope),
                    bottom.width.saturating_sub(12) as usize,
                )),
            ])
        });
    frame.render_widget(
        Paragraph::new(audit_rows.collect::<Vec<_>>()).block(block(theme, " Recent actions ")),
        bottom,
    );
}

pub fn breaker_glyph(state: BreakerState) -> &'static str {
    match state {
        BreakerState::Closed => "●",
        BreakerState::Open => "○",
        BreakerState::HalfOpen => "◐",
        BreakerState::ForcedOpen => "⊘",
        BreakerState::Disabled => "◌",
    }
}
