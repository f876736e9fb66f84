//! Breakers, sorted error first then volume: state (half-open and overrides included), failure
//! rate against the threshold or "not enough calls", time in state and time remaining.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};

use super::figure;
use super::grid::{Columns, grid, raw, styled};
use super::parts::breaker_glyph;
use crate::engine::breaker::{BreakerState, FailureRate};
use crate::ui::state::Scene;
use crate::ui::theme::{Item, Theme};
use crate::ui::widgets::{age, fit};

pub fn draw(scene: Scene<'_>, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(store) = scene.snapshot.store.as_ref() else {
        return;
    };
    // Rates and calls cover the breaker's sliding window; refusals count since it opened.
    let window = store.breakers.first().map_or(0, |b| b.window_ms);
    let rate_header = format!("failure rate/{}", age(window));
    let calls_header = format!("calls/{}", age(window));
    // Narrow screens keep whole names and states; the history columns give way.
    let wide = area.width >= 120;
    let columns = [
        ("channel", Constraint::Length(16), true),
        ("state", Constraint::Length(13), true),
        (
            rate_header.as_str(),
            Constraint::Length(if wide { 26 } else { 16 }),
            true,
        ),
        (calls_header.as_str(), Constraint::Length(8), true),
        ("in state", Constraint::Length(8), wide),
        ("remaining", Constraint::Length(9), true),
        ("refused", Constraint::Length(8), true),
        ("flips", Constraint::Length(6), wide),
        ("by / why", Constraint::Min(10), wide),
    ];
    let columns = Columns::new(&columns);
    let title = title(store.breakers.len());
    let text = figure(scene, theme, Item::Text);
    grid(
        scene,
        theme,
        title,
        &columns.header,
        &columns.widths,
        store.breakers.len(),
    )
    .render(frame, area, |i| {
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
            FailureRate::NotEnoughCalls { calls, minimum } if wide => (
                format!("not enough calls ({calls}/{minimum})"),
                calls.to_string(),
            ),
            FailureRate::NotEnoughCalls { calls, minimum } => {
                (format!("too few {calls}/{minimum}"), calls.to_string())
            }
        };
        let who = match (&b.owner, &b.reason) {
            (Some(owner), Some(reason)) => format!("{owner}: {reason}"),
            _ => String::new(),
        };
        let cells = vec![
            raw(fit(&b.channel, 40)),
            styled(
                format!("{} {}", breaker_glyph(b.state), b.state.label()),
                figure(scene, theme, item),
            ),
            styled(rate, text),
            styled(calls, text),
            styled(age(b.time_in_state_ms), text),
            styled(b.remaining_ms.map_or_else(|| "-".to_owned(), age), text),
            styled(b.not_permitted.to_string(), text),
            styled(b.transitions.to_string(), text),
            raw(fit(&who, 120)),
        ];
        columns.row(cells)
    });
}

fn title(breakers: usize) -> String {
    if breakers == 0 {
        " Breakers · none yet (a breaker appears with its channel's first delivery) ".to_owned()
    } else {
        format!(
            " Breakers · {breakers} · error then volume · refused: calls turned away since it opened "
        )
    }
}
