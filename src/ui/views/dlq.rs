//! The DLQ browser: one server-side page at a time of any queue's DLQ or dead list, oldest or
//! newest first or by attempts within the page, a filter the store applies (fields, times and a
//! text search), marks, grouping of the whole filtered set by error class × time bucket (counted
//! by the store), and an inspector with human times, the attempt history and the redacted
//! payload, wrapped to the width.

use std::fmt::Write as _;

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph};

use super::grid::{Grid, GridRow, raw, styled};
use super::{block, figure};
use crate::model::time::format_rfc3339_ms;
use crate::model::{DlqEntry, FailedSet, sanitize};
use crate::sources::DlqGroupsView;
use crate::ui::state::Scene;
use crate::ui::theme::{Item, Theme};
use crate::ui::widgets::{age, clock, count, fit};

/// Inner widths from which the table shows tenant, stage and id too.
const WIDE: u16 = 140;

pub fn draw(scene: Scene<'_>, theme: &Theme, frame: &mut Frame, area: Rect) {
    let block = block(theme, title(scene));
    let page = scene.dlq_page();
    if let Some(error) = page.and_then(|p| p.error.as_deref()) {
        frame.render_widget(
            Paragraph::new(Line::styled(
                format!("could not read this page: {}", fit(error, 100)),
                theme.style(Item::Error),
            ))
            .block(block),
            area,
        );
        return;
    }
    if page.is_none() {
        frame.render_widget(
            Paragraph::new("reading…")
                .style(theme.style(Item::Dim))
                .block(block),
            area,
        );
        return;
    }
    if scene.grouping() {
        draw_groups(scene, theme, frame, area, block);
        return;
    }
    let entries = scene.visible_entries();
    draw_entries(scene, theme, frame, area, block, &entries);
    if entries.is_empty() {
        let inner = Rect {
            x: area.x + 2,
            y: area.y + 2,
            width: area.width.saturating_sub(4),
            height: 1,
        };
        frame.render_widget(
            Paragraph::new("nothing here").style(theme.style(Item::Dim)),
            inner,
        );
    }
}

/// ` DLQ of delivery · 57 entries · page 1 shows 6 · oldest first · filter: … `
fn title(scene: Scene<'_>) -> String {
    let browser = &scene.ui.dlq;
    let set = match browser.set {
        FailedSet::Dlq => "DLQ",
        FailedSet::Dead => "dead list",
    };
    let total = scene
        .snapshot
        .store
        .as_ref()
        .and_then(|s| s.queue(browser.queue.as_str()))
        .map(|q| match browser.set {
            FailedSet::Dlq => q.stats.dlq,
            FailedSet::Dead => q.stats.dead,
        });
    let page = scene.dlq_page();
    let mut parts = vec![format!("{set} of {}", browser.queue)];
    match (page.and_then(|p| p.matching), total) {
        (Some(matching), Some(total)) if !browser.filter_text.is_empty() => {
            parts.push(format!("{} matching of {}", count(matching), count(total)));
        }
        (_, Some(total)) => parts.push(format!("{} entries", count(total))),
        _ => {}
    }
    if scene.grouping() {
        parts.push("grouped by error class × 10 min (enter lists a group)".to_owned());
    } else {
        parts.push(format!(
            "page {} shows {}",
            browser.pages.len() + 1,
            page.map_or(0, |p| p.entries.len())
        ));
        parts.push(browser.sort.describe().to_owned());
    }
    if !browser.filter_text.is_empty() {
        let mut filter = format!("filter: {}", fit(&browser.filter_text, 40));
        if browser.filter.text.is_some() {
            filter.push_str(" (words searched by the store over the whole set)");
        }
        parts.push(filter);
    }
    if !browser.marks.is_empty() {
        parts.push(format!("{} marked", browser.marks.len()));
    }
    format!(" {} ", parts.join(" · "))
}

/// The DLQ table's headers and widths: every field when `wide`, the essentials otherwise.
fn entry_columns(wide: bool) -> (&'static [&'static str], Vec<Constraint>) {
    if wide {
        (
            &[
                "",
                "failed",
                "alertname",
                "severity",
                "error",
                "channel",
                "attempts/replays",
                "tenant",
                "stage",
                "id",
                "message",
            ],
            vec![
                Constraint::Length(1),
                Constraint::Length(8),
                Constraint::Length(22),
                Constraint::Length(8),
                Constraint::Length(14),
                Constraint::Length(12),
                Constraint::Length(16),
                Constraint::Length(12),
                Constraint::Length(8),
                Constraint::Length(26),
                Constraint::Min(10),
            ],
        )
    } else {
        (
            &[
                "",
                "failed",
                "alertname",
                "severity",
                "error",
                "channel",
                "att/rep",
                "message",
            ],
            vec![
                Constraint::Length(1),
                Constraint::Length(8),
                Constraint::Length(16),
                Constraint::Length(8),
                Constraint::Length(10),
                Constraint::Length(9),
                Constraint::Length(7),
                Constraint::Min(10),
            ],
        )
    }
}

fn draw_entries(
    scene: Scene<'_>,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
    block: Block<'_>,
    entries: &[&DlqEntry],
) {
    let wide = area.width.saturating_sub(2) >= WIDE;
    let (header, widths) = entry_columns(wide);
    let error_style = figure(scene, theme, Item::Warn);
    let marks = &scene.ui.dlq.marks;
    Grid {
        block,
        header,
        header_style: theme.style(Item::TableHeader),
        widths: &widths,
        len: entries.len(),
        selected: Some((
            scene.row_within(entries.len()),
            theme.style(Item::Selection),
        )),
    }
    .render(frame, area, |i| {
        let e = entries[i];
        let m = &e.meta;
        let glance = e.glance();
        let marked = marks.contains(&m.id.0);
        let or_dash = |s: &str, width: usize| {
            if s.is_empty() {
                "-".to_owned()
            } else {
                fit(s, width)
            }
        };
        let mut cells = vec![
            raw(if marked { "✓" } else { " " }),
            raw(clock(m.last_failure_ms)),
            raw(or_dash(&glance.alertname, if wide { 22 } else { 16 })),
            raw(or_dash(&glance.severity, 8)),
            styled(fit(&m.error_class, 14), error_style),
            raw(fit(&m.channel, 12)),
            raw(format!("{}/{}", m.attempts, m.replays)),
        ];
        if wide {
            cells.push(raw(fit(&m.tenant, 12)));
            cells.push(raw(fit(&m.stage, 9)));
            cells.push(raw(fit(&m.id.0, 26)));
        }
        cells.push(raw(fit(&m.error_message, 120)));
        let row = GridRow::new(cells);
        if marked {
            row.style(theme.style(Item::Marked))
        } else {
            row
        }
    });
}

/// What the group counts cover, in words: the whole set as of a pass, or so far.
fn coverage(scene: Scene<'_>, view: Option<&DlqGroupsView>) -> String {
    let Some(view) = view else {
        return " the store is counting the whole filtered set… ".to_owned();
    };
    let mut note = if view.complete {
        let at = view.finished_ms.unwrap_or(view.started_ms);
        format!(
            " whole filtered set: {} entries in {} groups, counted by the store {} ago ",
            count(view.counted()),
            view.groups.len(),
            age(u64::try_from(scene.ui.now_ms.saturating_sub(at)).unwrap_or(0))
        )
    } else {
        format!(
            " counting the whole filtered set: {} entries examined so far, counts cover only those ",
            count(view.examined)
        )
    };
    if let Some(error) = view.error.as_deref() {
        let _ = write!(note, "· last step failed: {} ", fit(error, 40));
    }
    note
}

fn draw_groups(scene: Scene<'_>, theme: &Theme, frame: &mut Frame, area: Rect, block: Block<'_>) {
    let view = scene.visible_groups();
    let groups = view.map_or(&[][..], |v| v.groups.as_slice());
    let bucket_ms = view.map_or(crate::model::GROUP_BUCKET_MS, |v| v.bucket_ms);
    let max = groups.iter().map(|g| g.count).max().unwrap_or(1).max(1);
    let header = ["error class", "failed from (UTC)", "to", "entries", ""];
    let widths = [
        Constraint::Length(20),
        Constraint::Length(17),
        Constraint::Length(5),
        Constraint::Length(8),
        Constraint::Min(10),
    ];
    let style = if view.is_some_and(|v| v.complete) {
        theme.style(Item::Dim)
    } else {
        theme.style(Item::Warn)
    };
    let (text, gauge) = (
        figure(scene, theme, Item::Text),
        figure(scene, theme, Item::Gauge),
    );
    Grid {
        block: block.title_bottom(Line::styled(coverage(scene, view), style)),
        header: &header,
        header_style: theme.style(Item::TableHeader),
        widths: &widths,
        len: groups.len(),
        selected: Some((scene.row_within(groups.len()), theme.style(Item::Selection))),
    }
    .render(frame, area, |i| {
        let g = &groups[i];
        let from = format_rfc3339_ms(g.bucket_ms);
        let to = format_rfc3339_ms(g.bucket_ms.saturating_add(bucket_ms));
        GridRow::new(vec![
            raw(fit(&g.error_class, 20)),
            raw(from[..16].replace('T', " ")),
            raw(to[11..16].to_owned()),
            styled(count(g.count), text),
            styled("█".repeat((g.count * 30).div_ceil(max) as usize), gauge),
        ])
    });
}

/// The entry as the inspector copies it: the whole document (metadata, attempt history,
/// payload) as pretty JSON, secrets redacted, every line sanitised.
pub fn inspector_text(entry: &DlqEntry) -> String {
    let pretty = serde_json::to_string_pretty(&entry.document())
        .unwrap_or_else(|e| format!("(cannot show: {e})"));
    pretty
        .lines()
        .map(|l| sanitize(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}
