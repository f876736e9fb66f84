//! The table views: Queues, Overrides (the inventory of operator-set state) and Audit.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Row, Table, TableState};

use super::{block, figure};
use crate::ui::app::App;
use crate::ui::theme::{Item, Theme};
use crate::ui::widgets::{age, clock, count, fit};

fn render(app: &App, theme: &Theme, frame: &mut Frame, area: Rect, table: Table<'_>) {
    let mut state = TableState::default().with_selected(Some(app.row()));
    frame.render_stateful_widget(
        table.row_highlight_style(theme.style(Item::Selection)),
        area,
        &mut state,
    );
}

pub fn queues(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(store) = app.snapshot.store.as_ref() else {
        return;
    };
    let header = Row::new([
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
    ])
    .style(theme.style(Item::TableHeader));
    let rows = store.queues.iter().map(|q| {
        let s = &q.stats;
        let (state, item) = if q.over_shed {
            ("over shed", Item::Error)
        } else if q.over_warn {
            ("over warn", Item::Warn)
        } else {
            ("ok", Item::Ok)
        };
        Row::new(vec![
            Span::raw(s.queue.to_string()),
            Span::styled(count(s.depth), figure(app, theme, item)),
            Span::styled(count(s.in_flight), figure(app, theme, Item::Text)),
            Span::styled(count(s.scheduled), figure(app, theme, Item::Text)),
            Span::styled(
                s.oldest_age_ms.map_or_else(|| "-".to_owned(), age),
                figure(app, theme, Item::Text),
            ),
            Span::raw(q.warn_at.map_or_else(|| "-".to_owned(), count)),
            Span::raw(q.shed_at.map_or_else(|| "-".to_owned(), count)),
            Span::styled(state, figure(app, theme, item)),
            Span::styled(count(s.dlq), figure(app, theme, Item::Text)),
            Span::styled(count(s.dead), figure(app, theme, Item::Text)),
        ])
    });
    let widths = [10, 8, 10, 10, 8, 8, 8, 10, 8, 8].map(Constraint::Length);
    let title = format!(" Queues · shedding {} ", store.shedding.as_str());
    render(
        app,
        theme,
        frame,
        area,
        Table::new(rows, widths)
            .header(header)
            .block(block(theme, title)),
    );
}

pub fn overrides(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(store) = app.snapshot.store.as_ref() else {
        return;
    };
    let header = Row::new(["kind", "name", "value", "owner", "reason", "age", "expires"])
        .style(theme.style(Item::TableHeader));
    let now = app.now_ms;
    let rows = store.overrides.iter().map(|o| {
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
        Row::new(vec![
            Span::raw(format!("{:?}", o.kind).to_lowercase()),
            Span::raw(fit(&o.name, 28)),
            Span::raw(fit(&o.value, 14)),
            Span::raw(fit(&o.owner, 20)),
            Span::raw(fit(&o.reason, 40)),
            Span::styled(age(o.age_ms), figure(app, theme, item)),
            Span::styled(expires, figure(app, theme, item)),
        ])
    });
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
    render(
        app,
        theme,
        frame,
        area,
        Table::new(rows, widths)
            .header(header)
            .block(block(theme, title)),
    );
}

pub fn audit(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(store) = app.snapshot.store.as_ref() else {
        return;
    };
    let header = Row::new(["time", "who", "origin", "action", "scope", "result", "took"])
        .style(theme.style(Item::TableHeader));
    let rows = store.audit.iter().map(|e| {
        let r = &e.record;
        let item = match r.result.as_str() {
            "completed" => Item::Ok,
            "cancelled" | "dry-run" => Item::Warn,
            _ => Item::Error,
        };
        Row::new(vec![
            Span::raw(clock(r.at_ms)),
            Span::raw(fit(&r.who, 24)),
            Span::raw(fit(&r.origin, 9)),
            Span::raw(fit(&r.action, 20)),
            Span::raw(fit(&r.scope, 40)),
            Span::styled(fit(&r.result, 14), theme.style(item)),
            Span::raw(age(r.duration_ms)),
        ])
    });
    let widths = [
        Constraint::Length(8),
        Constraint::Length(20),
        Constraint::Length(9),
        Constraint::Length(18),
        Constraint::Min(16),
        Constraint::Length(13),
        Constraint::Length(6),
    ];
    let title = format!(" Audit · newest {} ", store.audit.len());
    render(
        app,
        theme,
        frame,
        area,
        Table::new(rows, widths)
            .header(header)
            .block(block(theme, title)),
    );
}
