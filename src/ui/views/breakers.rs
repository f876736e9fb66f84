//! Breakers, sorted error first then volume: state (half-open and overrides included), failure
//! rate against the threshold or "not enough calls", time in state and time remaining.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Row, Table, TableState};

use super::overview::breaker_glyph;
use super::{block, figure};
use crate::engine::breaker::{BreakerState, FailureRate};
use crate::ui::app::App;
use crate::ui::theme::{Item, Theme};
use crate::ui::widgets::{age, fit};

pub fn draw(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(store) = app.snapshot.store.as_ref() else {
        return;
    };
    let header = Row::new([
        "channel",
        "state",
        "failure rate",
        "calls",
        "in state",
        "remaining",
        "refused",
        "flips",
        "by / why",
    ])
    .style(theme.style(Item::TableHeader));
    let rows = store.breakers.iter().map(|b| {
        let item = match b.state {
            BreakerState::Closed => Item::Ok,
            BreakerState::HalfOpen | BreakerState::Disabled => Item::Warn,
            BreakerState::Open | BreakerState::ForcedOpen => Item::Error,
        };
        let (rate, calls) = match b.failure_rate {
            FailureRate::Known { rate, calls, .. } => (
                format!("{:.0}% / {:.0}%", rate * 100.0, b.threshold * 100.0),
                calls.to_string(),
            ),
            FailureRate::NotEnoughCalls { calls, minimum } => (
                format!("not enough calls ({calls}/{minimum})"),
                calls.to_string(),
            ),
        };
        let who = match (&b.owner, &b.reason) {
            (Some(owner), Some(reason)) => format!("{owner}: {reason}"),
            _ => String::new(),
        };
        Row::new(vec![
            Span::raw(fit(&b.channel, 20)),
            Span::styled(
                format!("{} {}", breaker_glyph(b.state), b.state.as_str()),
                figure(app, theme, item),
            ),
            Span::styled(rate, figure(app, theme, Item::Text)),
            Span::styled(calls, figure(app, theme, Item::Text)),
            Span::styled(age(b.time_in_state_ms), figure(app, theme, Item::Text)),
            Span::styled(
                b.remaining_ms.map_or_else(|| "-".to_owned(), age),
                figure(app, theme, Item::Text),
            ),
            Span::styled(b.not_permitted.to_string(), figure(app, theme, Item::Text)),
            Span::styled(b.transitions.to_string(), figure(app, theme, Item::Text)),
            Span::raw(fit(&who, 40)),
        ])
    });
    let widths = [
        Constraint::Length(16),
        Constraint::Length(14),
        Constraint::Length(26),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Min(10),
    ];
    let title = if store.breakers.is_empty() {
        " Breakers · none yet (a breaker appears with its channel's first delivery) ".to_owned()
    } else {
        format!(" Breakers · {} · error then volume ", store.breakers.len())
    };
    let mut state = TableState::default().with_selected(Some(app.row()));
    frame.render_stateful_widget(
        Table::new(rows, widths)
            .header(header)
            .block(block(theme, title))
            .row_highlight_style(theme.style(Item::Selection)),
        area,
        &mut state,
    );
}
