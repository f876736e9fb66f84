//! The views of a MUTT deployment (`--profile mutt`), drawn from MUTT's own figures. Where
//! MUTT keeps nothing (leases, scheduled retries, failure times, operator overrides, worker
//! totals), a view says so instead of showing 0.

use std::fmt::Write as _;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::grid::{GridRow, grid, raw, styled};
use super::{block, figure};
use crate::model::mutt::{MuttBreaker, MuttLoad, MuttSection};
use crate::ui::state::Scene;
use crate::ui::theme::{Item, Theme};
use crate::ui::widgets::{age, count, fit};

fn breaker_item(b: &MuttBreaker) -> Item {
    match b.effective_state() {
        "OPEN" => Item::Error,
        "HALF_OPEN" => Item::Warn,
        _ => Item::Ok,
    }
}

/// What MUTT does not keep, said once where a Ward view would show it.
const NOT_KEPT: &str = "MUTT keeps no leases, scheduled retries, failure times or worker totals: \
                        those figures are not shown";

pub fn overview(scene: Scene<'_>, m: &MuttSection, theme: &Theme, frame: &mut Frame, area: Rect) {
    let mut lines = list_lines(scene, m, theme);
    lines.push(Line::raw(""));
    lines.extend(state_lines(scene, m, theme));
    lines.push(Line::raw(""));
    lines.push(Line::styled(NOT_KEPT, theme.style(Item::Dim)));
    frame.render_widget(
        Paragraph::new(lines)
            .block(block(theme, " MUTT · overview "))
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn label(theme: &Theme, text: &str) -> Span<'static> {
    Span::styled(format!("{text:<16} "), theme.style(Item::Dim))
}

/// The queues and DLQ lists, one line each.
fn list_lines(scene: Scene<'_>, m: &MuttSection, theme: &Theme) -> Vec<Line<'static>> {
    let text = figure(scene, theme, Item::Text);
    let mut lines = Vec::new();
    for q in &m.queues {
        let item = match (q.name.as_str(), m.shedding.load) {
            ("alert", MuttLoad::Shedding) => Item::Error,
            ("alert", MuttLoad::OverWarn) => Item::Warn,
            _ => Item::Text,
        };
        lines.push(Line::from(vec![
            label(theme, &format!("queue {}", q.name)),
            Span::styled(format!("{:>9}", count(q.depth)), figure(scene, theme, item)),
            Span::styled(
                format!(
                    "  in flight {}  ({}, read by {})",
                    count(q.in_flight),
                    fit(&q.key, 32),
                    q.consumer
                ),
                text,
            ),
        ]));
    }
    for d in &m.dlqs {
        let item = if d.count > 0 { Item::Warn } else { Item::Ok };
        let target = d.replays_to.as_deref().map_or_else(
            || "terminal".to_owned(),
            |to| format!("replays to {}", fit(to, 28)),
        );
        lines.push(Line::from(vec![
            label(theme, &format!("dlq {}", d.name)),
            Span::styled(format!("{:>9}", count(d.count)), figure(scene, theme, item)),
            Span::styled(format!("  {} · {target}", fit(&d.key, 28)), text),
        ]));
    }
    lines
}

/// Breakers, pods, shedding and the ingestor's counters.
fn state_lines(scene: Scene<'_>, m: &MuttSection, theme: &Theme) -> Vec<Line<'static>> {
    let text = figure(scene, theme, Item::Text);
    let mut lines = Vec::new();
    for b in &m.breakers {
        lines.push(Line::from(vec![
            label(theme, &format!("breaker {}", fit(&b.name, 8))),
            Span::styled(
                b.describe(scene.ui.now_ms),
                figure(scene, theme, breaker_item(b)),
            ),
        ]));
    }
    let orphans: Vec<_> = m.orphans().collect();
    let pods_item = if m.pods.is_empty() {
        Item::Error
    } else {
        Item::Ok
    };
    let orphan_item = if orphans.is_empty() {
        Item::Ok
    } else {
        Item::Warn
    };
    lines.push(Line::from(vec![
        label(theme, "pods"),
        Span::styled(
            format!("{} live (heartbeats)", m.pods.len()),
            figure(scene, theme, pods_item),
        ),
        Span::styled(
            format!(
                " · {} orphaned processing lists ({} entries)",
                orphans.len(),
                orphans.iter().map(|p| p.length).sum::<u64>()
            ),
            figure(scene, theme, orphan_item),
        ),
    ]));
    let sh = &m.shedding;
    let (state, item) = match sh.load {
        MuttLoad::Shedding => ("SHEDDING NOW", Item::Error),
        MuttLoad::OverWarn => ("over the warn depth", Item::Warn),
        MuttLoad::Normal => ("not shedding", Item::Ok),
    };
    lines.push(Line::from(vec![
        label(theme, "shedding"),
        Span::styled(state, figure(scene, theme, item)),
        Span::styled(
            format!(
                " · mode {} · alert queue warn {}{} / shed {}{} · ingest cap {}",
                fit(&sh.mode, 8),
                count(sh.warn.at),
                fit(&sh.warn.provenance(), 60),
                count(sh.shed.at),
                fit(&sh.shed.provenance(), 60),
                count(sh.ingest_cap)
            ),
            text,
        ),
    ]));
    let c = &m.ingested;
    let n = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), count);
    lines.push(Line::from(vec![
        label(theme, "ingested"),
        Span::styled(
            format!(
                "this minute {} · last minute {} · this hour {} · today {}  (mutt:metrics, UTC)",
                n(c.this_minute),
                n(c.last_minute),
                n(c.this_hour),
                n(c.today)
            ),
            text,
        ),
    ]));
    lines
}

/// Queues, then the pods' processing lists (orphans first) and the live pods.
pub fn queues(scene: Scene<'_>, m: &MuttSection, theme: &Theme, frame: &mut Frame, area: Rect) {
    let [top, bottom] = Layout::vertical([
        Constraint::Length(m.queues.len() as u16 + 4),
        Constraint::Min(3),
    ])
    .areas(area);
    let text = figure(scene, theme, Item::Text);
    let lines: Vec<Line> = m
        .queues
        .iter()
        .map(|q| {
            Line::from(vec![
                Span::styled(format!("{:<8}", q.name), text),
                Span::styled(format!("{:>10}", count(q.depth)), text),
                Span::styled(format!("  in flight {:>6}", count(q.in_flight)), text),
                Span::styled(format!("  {}", fit(&q.key, 40)), theme.style(Item::Dim)),
            ])
        })
        .chain([Line::styled(
            "scheduled retries: MUTT's forwarder sleeps them in the worker, nothing to read",
            theme.style(Item::Dim),
        )])
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(block(theme, " MUTT · queues (LLEN) ")),
        top,
    );
    let header = ["processing list", "service", "pod", "entries", "heartbeat"];
    let widths = [
        Constraint::Min(24),
        Constraint::Length(8),
        Constraint::Length(24),
        Constraint::Length(8),
        Constraint::Length(24),
    ];
    let rows = m.processing_by_concern();
    let title = format!(
        " Processing lists · {} · {} live pods ",
        rows.len(),
        m.pods.len()
    );
    grid(scene, theme, title, &header, &widths, rows.len()).render(frame, bottom, |i| {
        let p = rows[i];
        let (beat, item) = if p.orphan {
            ("ORPHAN: no heartbeat".to_owned(), Item::Warn)
        } else {
            ("live".to_owned(), Item::Ok)
        };
        GridRow::new(vec![
            raw(fit(&p.key, 48)),
            raw(fit(&p.service, 8)),
            raw(fit(&p.pod, 24)),
            styled(count(p.length), text),
            styled(beat, figure(scene, theme, item)),
        ])
    });
}

/// MUTT's DLQ lists, newest first, paged by position.
pub fn dlq(scene: Scene<'_>, m: &MuttSection, theme: &Theme, frame: &mut Frame, area: Rect) {
    let [tabs, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(3)]).areas(area);
    let mut spans = Vec::new();
    for d in &m.dlqs {
        let style = if d.name == scene.ui.mutt.dlq.as_str() {
            theme.style(Item::Selection)
        } else {
            theme.style(Item::Text)
        };
        spans.push(Span::styled(
            format!(" {} {} ", d.name, count(d.count)),
            style,
        ));
        spans.push(Span::raw(" "));
    }
    let switch = scene
        .ui
        .keymap
        .key(crate::ui::Command::ToggleDead)
        .map_or_else(String::new, |k| format!("{k} switches list · "));
    spans.push(Span::styled(
        format!("{switch}newest first · MUTT keeps no failure time or error"),
        theme.style(Item::Dim),
    ));
    frame.render_widget(Paragraph::new(Line::from(spans)), tabs);
    let entries = scene.visible_mutt_entries();
    let page = scene.snapshot.mutt_page.as_ref();
    let total = page.map_or(0, |p| p.total);
    let mut title = match page {
        Some(p) if p.total == 0 => format!(" {} · empty ", fit(&p.key, 30)),
        Some(p) => format!(
            " {} · {}–{} of {} · {} marked ",
            fit(&p.key, 30),
            p.offset + 1,
            p.offset + p.entries.len() as u64,
            count(total),
            scene.ui.mutt.marks.len()
        ),
        None => " reading… ".to_owned(),
    };
    if let Some(needle) = scene.ui.dlq.needle.as_deref() {
        // MUTT's lists are plain Redis lists: no store-side search.
        let _ = write!(
            title,
            "· search {:?} covers this page only ",
            fit(needle, 30)
        );
    }
    let header = ["", "#", "id", "host", "counters", "message"];
    let widths = [
        Constraint::Length(1),
        Constraint::Length(7),
        Constraint::Length(16),
        Constraint::Length(16),
        Constraint::Length(30),
        Constraint::Min(20),
    ];
    let marked = theme.style(Item::Marked);
    grid(scene, theme, title, &header, &widths, entries.len()).render(frame, body, |i| {
        let e = entries[i];
        let is_marked = scene.ui.mutt.marks.contains(&e.id);
        let row = GridRow::new(vec![
            raw(if is_marked { "*" } else { " " }),
            raw(e.index.to_string()),
            raw(e.id.clone()),
            raw(fit(&e.host, 16)),
            raw(fit(&e.counters(), 30)),
            raw(fit(&e.message, 120)),
        ]);
        if is_marked { row.style(marked) } else { row }
    });
}

pub fn breakers(scene: Scene<'_>, m: &MuttSection, theme: &Theme, frame: &mut Frame, area: Rect) {
    let header = ["breaker", "state", "failures", "opened", "half-opens"];
    let widths = [
        Constraint::Length(14),
        Constraint::Length(24),
        Constraint::Length(9),
        Constraint::Length(12),
        Constraint::Min(14),
    ];
    let now = scene.ui.now_ms;
    let title = " MUTT breakers · consecutive failures; MUTT half-opens after its timeout ";
    grid(
        scene,
        theme,
        title.to_owned(),
        &header,
        &widths,
        m.breakers.len(),
    )
    .render(frame, area, |i| {
        let b = &m.breakers[i];
        let state = b
            .state
            .as_deref()
            .map_or_else(|| "CLOSED (no key yet)".to_owned(), |s| fit(s, 24));
        let opened = b.open_time_ms.map_or_else(
            || "-".to_owned(),
            |at| format!("{} ago", age(u64::try_from(now - at).unwrap_or(0))),
        );
        let half = b.half_opens_at_ms().map_or_else(
            || "-".to_owned(),
            |at| {
                let left = at - now;
                if left > 0 {
                    format!("in {}", age(left as u64))
                } else {
                    "on MUTT's next read".to_owned()
                }
            },
        );
        GridRow::new(vec![
            raw(fit(&b.name, 14)),
            styled(state, figure(scene, theme, breaker_item(b))),
            raw(b.failures.map_or_else(|| "-".to_owned(), count)),
            raw(opened),
            raw(half),
        ])
    });
}

/// MUTT keeps no overrides with an owner or a reason: its dynamic settings are listed instead
/// (Ward's audit has who changed them through Ward).
pub fn settings(scene: Scene<'_>, m: &MuttSection, theme: &Theme, frame: &mut Frame, area: Rect) {
    let header = ["setting", "value"];
    let widths = [Constraint::Length(36), Constraint::Min(20)];
    let title = format!(
        " MUTT settings · {} · MUTT keeps no owner, reason or expiry: see Audit ",
        m.config.len()
    );
    grid(scene, theme, title, &header, &widths, m.config.len()).render(frame, area, |i| {
        let (key, value) = &m.config[i];
        GridRow::new(vec![raw(fit(key, 36)), raw(fit(value, 80))])
    });
}

/// Ward's own audit of actions on this MUTT deployment.
pub fn audit(scene: Scene<'_>, m: &MuttSection, theme: &Theme, frame: &mut Frame, area: Rect) {
    let title = format!(
        " Audit (Ward's, outside MUTT's keys) · newest {} ",
        m.audit.len()
    );
    super::parts::audit_rows(scene, theme, frame, area, title, &m.audit);
}
