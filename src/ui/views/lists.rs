//! The table views: Queues, Overrides (the inventory of operator-set state) and Audit.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};

use super::figure;
use super::grid::{GridRow, grid, raw, styled};
use crate::ui::app::App;
use crate::ui::theme::{Item, Theme};
use crate::ui::widgets::{age, clock, count, fit};

pub fn queues(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(store) = app.snapshot.store.as_ref() else {
        return;
    };
    let header = [
        "queue",
        "depth",
        "in flight",
        "scheduled",
        "oldest",
        "warn",
        "shed",
        "state",
        "DLQ",
        "dead",
    ];
    let widths = [10, 8, 10, 10, 8, 8, 8, 10, 8, 8].map(Constraint::Length);
    let title = format!(" Queues · shedding {} ", store.shedding.as_str());
    let text = figure(app, theme, Item::Text);
    grid(app, theme, title, &header, &widths, store.queues.len()).render(frame, area, |i| {
        let q = &store.queues[i];
        let s = &q.stats;
        let (state, item) = if q.over_shed {
            ("over shed", Item::Error)
        } else if q.over_warn {
            ("over warn", Item::Warn)
        } else {
            ("ok", Item::Ok)
        };
        GridRow::new(vec![
            raw(s.queue.to_string()),
            styled(count(s.depth), figure(app, theme, item)),
            styled(count(s.in_flight), text),
            styled(count(s.scheduled), text),
            styled(s.oldest_age_ms.map_or_else(|| "-".to_owned(), age), text),
            raw(q.warn_at.map_or_else(|| "-".to_owned(), count)),
            raw(q.shed_at.map_or_else(|| "-".to_owned(), count)),
            styled(state, figure(app, theme, item)),
            styled(count(s.dlq), text),
            styled(count(s.dead), text),
        ])
    });
}

pub fn overrides(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(store) = app.snapshot.store.as_ref() else {
        return;
    };
    let header = ["kind", "name", "value", "owner", "reason", "age", "expires"];
    let widths = [
        Constraint::Length(14),
        Constraint::Length(24),
        Constraint::Length(10),
        Constraint::Length(16),
        Constraint::Min(16),
        Constraint::Length(6),
        Constraint::Length(10),
    ];
    let title = if store.overrides.is_empty() {
        " Overrides · none: every setting is as configured ".to_owned()
    } else {
        format!(" Overrides · {} ", store.overrides.len())
    };
    let now = app.now_ms;
    grid(app, theme, title, &header, &widths, store.overrides.len()).render(frame, area, |i| {
        let o = &store.overrides[i];
        let expires = match o.expires_at_ms {
            Some(_) if o.expired => "EXPIRED".to_owned(),
            Some(at) => format!("in {}", age(u64::try_from(at - now).unwrap_or(0))),
            None => "never".to_owned(),
        };
        let item = if o.expired {
            Item::Error
        } else if o.age_ms > 4 * 3_600_000 {
            Item::Warn
        } else {
            Item::Text
        };
        GridRow::new(vec![
            raw(format!("{:?}", o.kind).to_lowercase()),
            raw(fit(&o.name, 28)),
            raw(fit(&o.value, 14)),
            raw(fit(&o.owner, 20)),
            raw(fit(&o.reason, 40)),
            styled(age(o.age_ms), figure(app, theme, item)),
            styled(expires, figure(app, theme, item)),
        ])
    });
}

pub fn audit(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(store) = app.snapshot.store.as_ref() else {
        return;
    };
    let title = format!(" Audit · newest {} ", store.audit.len());
    audit_rows(app, theme, frame, area, title, &store.audit);
}

/// Audit records, newest first, under `title`.
pub fn audit_rows(
    app: &App,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
    title: String,
    audit: &[crate::model::AuditEntry],
) {
    // Narrow screens keep what an incident review reads first: when, who, what, why, result.
    let wide = area.width >= 120;
    let columns = [
        ("time", Constraint::Length(8), true),
        ("who", Constraint::Length(if wide { 20 } else { 12 }), true),
        ("origin", Constraint::Length(9), wide),
        (
            "action",
            Constraint::Length(if wide { 18 } else { 14 }),
            true,
        ),
        ("scope", Constraint::Min(16), true),
        ("reason", Constraint::Min(10), true),
        ("result", Constraint::Length(13), true),
        ("took", Constraint::Length(6), wide),
    ];
    let shown: Vec<bool> = columns.iter().map(|c| c.2).collect();
    let header: Vec<&str> = columns.iter().filter(|c| c.2).map(|c| c.0).collect();
    let widths: Vec<Constraint> = columns.iter().filter(|c| c.2).map(|c| c.1).collect();
    grid(app, theme, title, &header, &widths, audit.len()).render(frame, area, |i| {
        let r = &audit[i].record;
        // The outcome leads the result: `completed: 5 moved, …`.
        let item = match r.result.split(':').next().unwrap_or_default() {
            "completed" => Item::Ok,
            "cancelled" | "dry-run" => Item::Warn,
            _ => Item::Error,
        };
        let cells = vec![
            raw(clock(r.at_ms)),
            raw(fit(&r.who, 24)),
            raw(fit(&r.origin, 9)),
            raw(fit(&r.action, 20)),
            raw(fit(&r.scope, 40)),
            raw(fit(if r.reason.is_empty() { "-" } else { &r.reason }, 40)),
            styled(fit(&r.result, 14), theme.style(item)),
            raw(age(r.duration_ms)),
        ];
        GridRow::new(
            cells
                .into_iter()
                .zip(&shown)
                .filter_map(|(cell, shown)| shown.then_some(cell))
                .collect(),
        )
    });
}
