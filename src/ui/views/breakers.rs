//! Breakers, sorted error first then volume: state (half-open and overrides included), failure
//! rate against the threshold or "not enough calls", time in state and time remaining.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};

use super::figure;
use super::grid::{GridRow, grid, raw, styled};
use super::overview::breaker_glyph;
use crate::engine::breaker::{BreakerState, FailureRate};
use crate::ui::app::App;
use crate::ui::theme::{Item, Theme};
use crate::ui::widgets::{age, fit};

pub fn draw(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(store) = app.snapshot.store.as_ref() else {
        return;
    };
    let header = [
        "channel",
        "state",
        "failure rate",
        "calls",
        "in state",
        "remaining",
        "refused",
        "flips",
        "by / why",
    ];
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
    let text = figure(app, theme, Item::Text);
    grid(app, theme, title, &header, &widths, store.breakers.len()).render(frame, area, |i| {
        let b = &store.breakers[i];
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
        GridRow::new(vec![
            raw(fit(&b.channel, 20)),
            styled(
                format!("{} {}", breaker_glyph(b.state), b.state.as_str()),
                figure(app, theme, item),
            ),
            styled(rate, text),
            styled(calls, text),
            styled(age(b.time_in_state_ms), text),
            styled(b.remaining_ms.map_or_else(|| "-".to_owned(), age), text),
            styled(b.not_permitted.to_string(), text),
            styled(b.transitions.to_string(), text),
            raw(fit(&who, 40)),
        ])
    });
}
