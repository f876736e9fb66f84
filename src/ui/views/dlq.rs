//! The DLQ browser: one server-side page at a time (oldest first, the order replay takes), a
//! filter, marks, grouping by error class × time bucket, and an inspector with pretty,
//! redacted, sanitised JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::grid::{Grid, GridRow, raw, styled};
use super::{block, figure};
use crate::model::{DlqEntry, sanitize};
use crate::store::FailedSet;
use crate::ui::app::App;
use crate::ui::theme::{Item, Theme};
use crate::ui::widgets::{clock, count, fit};

/// Time buckets of the grouped view.
const BUCKET_MS: i64 = 10 * 60 * 1000;

#[allow(clippy::too_many_lines)] // title, states and table of one view
pub fn draw(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let browser = &app.dlq;
    let page = app.snapshot.dlq_page.as_ref();
    let set = match browser.set {
        FailedSet::Dlq => "DLQ",
        FailedSet::Dead => "dead list",
    };
    let total = app
        .snapshot
        .store
        .as_ref()
        .and_then(|s| s.queue(browser.queue.as_str()))
        .map(|q| match browser.set {
            FailedSet::Dlq => q.stats.dlq,
            FailedSet::Dead => q.stats.dead,
        });
    let entries = app.visible_entries();
    let mut title = format!(" {set} of {} · ", browser.queue);
    match (page.and_then(|p| p.matching), total) {
        (Some(matching), Some(total)) if !browser.filter_text.is_empty() => {
            let _ = write!(title, "{} matching of {} · ", count(matching), count(total));
        }
        (_, Some(total)) => {
            let _ = write!(title, "{} entries · ", count(total));
        }
        _ => {}
    }
    let _ = write!(
        title,
        "page {} shows {} · oldest first ",
        browser.pages.len() + 1,
        entries.len()
    );
    if !browser.filter_text.is_empty() {
        let _ = write!(title, "· filter: {} ", fit(&browser.filter_text, 40));
    }
    if !browser.marks.is_empty() {
        let _ = write!(title, "· {} marked ", browser.marks.len());
    }
    let block = block(theme, title);
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
    if browser.grouped {
        draw_groups(app, theme, frame, area, &entries, block);
        return;
    }
    let header = [
        "", "failed", "id", "tenant", "error", "channel", "stage", "tries", "message",
    ];
    let widths = [
        Constraint::Length(1),
        Constraint::Length(8),
        Constraint::Length(26),
        Constraint::Length(10),
        Constraint::Length(12),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Min(10),
    ];
    let empty = entries.is_empty();
    let error_style = figure(app, theme, Item::Warn);
    Grid {
        block,
        header: &header,
        header_style: theme.style(Item::TableHeader),
        widths: &widths,
        len: entries.len(),
        selected: Some((app.row_within(entries.len()), theme.style(Item::Selection))),
    }
    .render(frame, area, |i| {
        let m = &entries[i].meta;
        let marked = browser.marks.contains(&m.id.0);
        let row = GridRow::new(vec![
            raw(if marked { "✓" } else { " " }),
            raw(clock(m.last_failure_ms)),
            raw(fit(&m.id.0, 26)),
            raw(fit(&m.tenant, 12)),
            styled(fit(&m.error_class, 14), error_style),
            raw(fit(&m.channel, 12)),
            raw(fit(&m.stage, 9)),
            raw(format!("{}/{}", m.attempts, m.replays)),
            raw(fit(&m.error_message, 80)),
        ]);
        if marked {
            row.style(theme.style(Item::Marked))
        } else {
            row
        }
    });
    if empty {
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

fn draw_groups(
    app: &App,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
    entries: &[&DlqEntry],
    block: ratatui::widgets::Block<'_>,
) {
    let mut groups: BTreeMap<(String, i64), usize> = BTreeMap::new();
    for e in entries {
        let bucket = e.meta.last_failure_ms.div_euclid(BUCKET_MS) * BUCKET_MS;
        *groups
            .entry((e.meta.error_class.clone(), bucket))
            .or_default() += 1;
    }
    let max = groups.values().copied().max().unwrap_or(1);
    let groups: Vec<_> = groups.into_iter().collect();
    let header = ["error class", "from", "entries", ""];
    let widths = [
        Constraint::Length(20),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Min(10),
    ];
    let title_note = Line::styled(
        format!(
            " grouped by error × 10 min over the {} entries of this page ",
            entries.len()
        ),
        theme.style(Item::Dim),
    );
    let (text, gauge) = (
        figure(app, theme, Item::Text),
        figure(app, theme, Item::Gauge),
    );
    Grid {
        block: block.title_bottom(title_note),
        header: &header,
        header_style: theme.style(Item::TableHeader),
        widths: &widths,
        len: groups.len(),
        selected: None,
    }
    .render(frame, area, |i| {
        let ((class, bucket), n) = &groups[i];
        GridRow::new(vec![
            raw(fit(class, 20)),
            raw(clock(*bucket)),
            styled(n.to_string(), text),
            styled("█".repeat((n * 30).div_ceil(max)), gauge),
        ])
    });
}

/// Keys whose values are secrets wherever they appear in a payload.
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "webhook_url",
    "auth",
];

fn redact(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let k = key.to_lowercase();
                if SECRET_KEYS.iter().any(|s| k.contains(s)) {
                    *v = serde_json::Value::String("***".to_owned());
                } else {
                    redact(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// The entry as the inspector shows (and copies) it: metadata and payload as pretty JSON,
/// secrets redacted, every line sanitised.
pub fn inspector_text(entry: &DlqEntry) -> String {
    let mut doc = serde_json::json!({ "meta": entry.meta });
    match &entry.envelope {
        Ok(envelope) => {
            doc["tenant"] = serde_json::Value::String(envelope.tenant.clone());
            doc["created_at_ms"] = envelope.created_at_ms.into();
            doc["payload"] = envelope.payload.to_value();
        }
        Err(raw) => doc["undecodable"] = serde_json::Value::String(raw.clone()),
    }
    redact(&mut doc);
    let pretty =
        serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("(cannot show: {e})"));
    pretty
        .lines()
        .map(|l| sanitize(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}
