//! The table views: Queues, Overrides (the inventory of operator-set state) and Audit.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};

use super::figure;
use super::grid::{Columns, GridRow, grid, raw, styled};
use super::parts::audit_rows;
use crate::ui::state::Scene;
use crate::ui::theme::{Item, Theme};
use crate::ui::widgets::{age, count, fit};

pub fn queues(scene: Scene<'_>, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(store) = scene.snapshot.store.as_ref() else {
        return;
    };
    // Narrow screens merge the thresholds and let the depth's colour say the state.
    let wide = area.width >= 100;
    let columns = [
        ("queue", 10, true),
        ("depth", 8, true),
        ("in flight", 9, true),
        ("scheduled", 13, true),
        ("oldest", 7, true),
        ("warn/shed", 10, !wide),
        ("warn", 8, wide),
        ("shed", 8, wide),
        ("state", 10, wide),
        ("DLQ", 7, true),
        ("dead", 6, true),
    ];
    let columns =
        Columns::new(&columns.map(|(name, width, shown)| (name, Constraint::Length(width), shown)));
    let title = format!(" Queues · shedding {} ", store.shedding.as_str());
    let text = figure(scene, theme, Item::Text);
    let [top, bottom] = Layout::vertical([
        Constraint::Length(store.queues.len() as u16 + 3),
        Constraint::Min(3),
    ])
    .areas(area);
    grid(
        scene,
        theme,
        title,
        &columns.header,
        &columns.widths,
        store.queues.len(),
    )
    .render(frame, top, |i| {
        let q = &store.queues[i];
        let s = &q.stats;
        let (state, item) = if q.over_shed {
            ("over shed", Item::Error)
        } else if q.over_warn {
            ("over warn", Item::Warn)
        } else {
            ("ok", Item::Ok)
        };
        let threshold = |t: Option<u64>| t.map_or_else(|| "-".to_owned(), count);
        let cells = vec![
            raw(s.queue.to_string()),
            styled(count(s.depth), figure(scene, theme, item)),
            styled(count(s.in_flight), text),
            styled(super::scheduled_cell(scene.ui.now_ms, s), text),
            styled(s.oldest_age_ms.map_or_else(|| "-".to_owned(), age), text),
            raw(format!("{}/{}", threshold(q.warn_at), threshold(q.shed_at))),
            raw(threshold(q.warn_at)),
            raw(threshold(q.shed_at)),
            styled(state, figure(scene, theme, item)),
            styled(count(s.dlq), text),
            styled(count(s.dead), text),
        ];
        columns.row(cells)
    });
    scheduled_by_channel(scene, theme, frame, bottom, store);
}

/// The work waiting for a due time, by queue and channel: retries, and sends held back.
fn scheduled_by_channel(
    scene: Scene<'_>,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
    store: &crate::sources::StoreSection,
) {
    let rows: Vec<(&str, &crate::model::ScheduledChannel)> = store
        .queues
        .iter()
        .flat_map(|q| {
            q.stats
                .waiting_retry
                .channels
                .iter()
                .map(move |c| (q.stats.queue.as_str(), c))
        })
        .collect();
    let scheduled: u64 = store.queues.iter().map(|q| q.stats.scheduled).sum();
    let read: u64 = store
        .queues
        .iter()
        .map(|q| q.stats.waiting_retry.read)
        .sum();
    let mut title = if scheduled == 0 {
        " Waiting to retry · nothing scheduled ".to_owned()
    } else {
        format!(" Waiting to retry or held back · {} ", count(scheduled))
    };
    if read < scheduled {
        // The figures below cover the due-soonest entries read, not the whole set.
        title = format!("{title}· by channel over the {} due soonest ", count(read));
    }
    let header = [
        "queue", "channel", "entries", "retrying", "held", "next try", "oldest",
    ];
    let widths = [
        Constraint::Length(10),
        Constraint::Min(14),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Length(8),
    ];
    let text = figure(scene, theme, Item::Text);
    let mut table = grid(scene, theme, title, &header, &widths, rows.len());
    table.selected = None;
    table.render(frame, area, |i| {
        let (queue, c) = rows[i];
        let channel = if c.channel.is_empty() {
            "(not routed yet)"
        } else {
            &c.channel
        };
        GridRow::new(vec![
            raw(queue.to_owned()),
            raw(fit(channel, 30)),
            styled(count(c.count), text),
            styled(count(c.retrying), text),
            styled(count(c.count - c.retrying), text),
            styled(super::next_try(scene.ui.now_ms, Some(c.next_due_ms)), text),
            styled(age(c.oldest_age_ms), text),
        ])
    });
}

pub fn overrides(scene: Scene<'_>, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(store) = scene.snapshot.store.as_ref() else {
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
    let now = scene.ui.now_ms;
    grid(scene, theme, title, &header, &widths, store.overrides.len()).render(frame, area, |i| {
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
            raw(fit(&o.reason, 200)),
            styled(age(o.age_ms), figure(scene, theme, item)),
            styled(expires, figure(scene, theme, item)),
        ])
    });
}

pub fn audit(scene: Scene<'_>, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(store) = scene.snapshot.store.as_ref() else {
        return;
    };
    let title = format!(" Audit · newest {} ", store.audit.len());
    audit_rows(scene, theme, frame, area, title, &store.audit);
}
