//! The wall display: a few figures in large type, readable across a room, with their age:
//! the work not delivered yet, then health (breakers, alerts held back, workers).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::{block, figure};
use crate::engine::breaker::BreakerState;
use crate::sources::StoreSection;
use crate::ui::state::Scene;
use crate::ui::theme::{Item, Theme};
use crate::ui::widgets::{big_text, count};

pub fn draw(scene: Scene<'_>, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(store) = scene.snapshot.store.as_ref() else {
        return;
    };
    let tiles = tiles(store);
    let rows = Layout::vertical([Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)]).split(area);
    // The work not delivered yet leads the first row; health the second.
    let (first, second) = tiles.split_at(4);
    for (row, tiles) in rows.iter().zip([first, second]) {
        let cells = Layout::horizontal(vec![Constraint::Ratio(1, tiles.len() as u32); tiles.len()])
            .split(*row);
        for ((label, value, item), cell) in tiles.iter().zip(cells.iter()) {
            let mut lines = vec![Line::raw("")];
            lines.extend(
                big_text(value)
                    .into_iter()
                    .map(|l| Line::styled(l, figure(scene, theme, *item))),
            );
            frame.render_widget(
                Paragraph::new(lines)
                    .alignment(ratatui::layout::Alignment::Center)
                    .block(block(theme, format!(" {label} "))),
                *cell,
            );
        }
    }
}

/// The eight tiles, each a label, its figure and its colour.
fn tiles(store: &StoreSection) -> [(String, String, Item); 8] {
    let depth: u64 = store.queues.iter().map(|q| q.stats.depth).sum();
    let scheduled: u64 = store.queues.iter().map(|q| q.stats.scheduled).sum();
    let open = store
        .breakers
        .iter()
        .filter(|b| matches!(b.state, BreakerState::Open | BreakerState::ForcedOpen))
        .count();
    let delivered = store
        .rates
        .delivered_per_s
        .map_or_else(|| "?".to_owned(), |r| count(r.round() as u64));
    let errors = store
        .rates
        .error_ratio
        .map_or_else(|| "?".to_owned(), |r| format!("{:.0}%", r * 100.0));
    let held_back = store.alerting.silenced_now + store.alerting.inhibited_now;
    // The figure counts what drains the queues; ingest-only processes are named apart.
    let workers_label = match store.workers.live_ingest_only() {
        0 => "live workers".to_owned(),
        n => format!("live workers, +{n} ingest-only"),
    };
    [
        (
            "queued".to_owned(),
            count(depth),
            if store.queues.iter().any(|q| q.over_shed) {
                Item::Error
            } else {
                Item::Text
            },
        ),
        (
            "waiting to retry".to_owned(),
            count(scheduled),
            if scheduled > 0 { Item::Warn } else { Item::Ok },
        ),
        ("delivered /s".to_owned(), delivered, Item::Ok),
        (
            "errors".to_owned(),
            errors,
            if store.rates.error_ratio.unwrap_or(0.0) >= 0.05 {
                Item::Error
            } else {
                Item::Ok
            },
        ),
        (
            "DLQ".to_owned(),
            count(store.dlq_total()),
            if store.dlq_total() > 0 {
                Item::Warn
            } else {
                Item::Ok
            },
        ),
        (
            "open breakers".to_owned(),
            open.to_string(),
            if open > 0 { Item::Error } else { Item::Ok },
        ),
        (
            // Alerts silenced or inhibited now: firing, and not sent.
            "held back".to_owned(),
            held_back.to_string(),
            if held_back > 0 { Item::Warn } else { Item::Ok },
        ),
        (
            workers_label,
            store.workers.live_consumers.to_string(),
            if store.workers.live_consumers == 0 {
                Item::Error
            } else {
                Item::Ok
            },
        ),
    ]
}
