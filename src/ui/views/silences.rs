//! Silences and alerts: the inventory of silences (state, kind, matchers, owner, comment, age,
//! time left, the alerts each matches now, a flag when one ends within five minutes), the
//! alerts seen lately with what holds each back, a detail pane under each, and the silence
//! editor.

use std::fmt::Write as _;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::figure;
use super::grid::{Columns, grid, styled};
use super::parts::firing_matches;
use super::parts::human_time;
use crate::engine::matcher::{compile_all, matches_all};
use crate::model::{SeenAlert, SilenceState, Suppression, matchers_text};
use crate::sources::snapshot::{AlertRow, AlertingView, ENDING_SOON_MS, SilenceRow};
use crate::ui::silences::IDENTIFYING;
use crate::ui::state::Scene;
use crate::ui::theme::{Item, Theme};
use crate::ui::widgets::{age, fit, wrap};

/// Inner widths from which the tables show every column.
const WIDE: u16 = 140;
/// Expired silences that ended this recently are named on the alerts they would match
/// (alertmanager #1497: who silenced this before, and why).
const RECENTLY_EXPIRED_MS: i64 = 10 * 60_000;
/// Lines of the detail pane, borders included.
const DETAIL_HEIGHT: u16 = 9;

fn ago(now_ms: i64, at_ms: i64) -> String {
    age(u64::try_from(now_ms.saturating_sub(at_ms)).unwrap_or(0))
}

/// Whether an active silence ends within five minutes.
fn ending_soon(row: &SilenceRow, now_ms: i64) -> bool {
    row.state == SilenceState::Active && row.silence.ends_at_ms - now_ms <= ENDING_SOON_MS
}

/// `12m left`, `starts in 10m`, `ended 2h ago`, and how it is shown.
fn time_left(row: &SilenceRow, now_ms: i64) -> (String, Item) {
    let s = &row.silence;
    match row.state {
        SilenceState::Active if ending_soon(row, now_ms) => (
            format!("{} left <5m", ago(s.ends_at_ms, now_ms)),
            Item::Warn,
        ),
        SilenceState::Active => (format!("{} left", ago(s.ends_at_ms, now_ms)), Item::Text),
        SilenceState::Pending => (
            format!("starts in {}", ago(s.starts_at_ms, now_ms)),
            Item::Info,
        ),
        SilenceState::Expired => (
            format!("ended {} ago", ago(now_ms, s.ends_at_ms)),
            Item::Dim,
        ),
    }
}

fn state_item(state: SilenceState) -> Item {
    match state {
        SilenceState::Active => Item::Ok,
        SilenceState::Pending => Item::Info,
        SilenceState::Expired => Item::Dim,
    }
}

/// ` Silences · 2 active (1 ends in < 5 m) · 1 pending · 1 expired `
fn silences_title(alerting: &AlertingView) -> String {
    if alerting.silences.is_empty() {
        return " Silences · none (S on an alert or a DLQ entry makes one) ".to_owned();
    }
    let mut parts = vec![format!("{} active", alerting.active)];
    if alerting.ending_soon > 0 {
        let _ = write!(parts[0], " ({} ends in < 5 m: !)", alerting.ending_soon);
    }
    parts.push(format!("{} pending", alerting.pending));
    parts.push(format!("{} expired (kept 120 h)", alerting.expired));
    format!(" Silences · {} ", parts.join(" · "))
}

/// The silences table's columns; the history columns give way on a narrow screen.
fn silence_columns(wide: bool) -> Columns<'static> {
    Columns::new(&[
        ("", Constraint::Length(1), true),
        ("state", Constraint::Length(7), true),
        ("kind", Constraint::Length(11), wide),
        (
            "matchers",
            Constraint::Min(if wide { 40 } else { 18 }),
            true,
        ),
        (
            "owner",
            Constraint::Length(if wide { 16 } else { 10 }),
            true,
        ),
        ("comment", Constraint::Min(12), true),
        ("started", Constraint::Length(9), wide),
        ("time left", Constraint::Length(13), true),
        ("alerts", Constraint::Length(6), true),
        ("id", Constraint::Length(26), wide),
    ])
}

pub fn silences(scene: Scene<'_>, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(store) = scene.snapshot.store.as_ref() else {
        return;
    };
    let alerting = &store.alerting;
    let rows = &alerting.silences;
    let (table, details) = split(area, rows.len());
    let wide = area.width.saturating_sub(2) >= WIDE;
    let columns = silence_columns(wide);
    let now = scene.ui.now_ms;
    let text = figure(scene, theme, Item::Text);
    grid(
        scene,
        theme,
        silences_title(alerting),
        &columns.header,
        &columns.widths,
        rows.len(),
    )
    .render(frame, table, |i| {
        let row = &rows[i];
        let s = &row.silence;
        let (left, left_item) = time_left(row, now);
        let started = if s.starts_at_ms <= now {
            format!("{} ago", ago(now, s.starts_at_ms))
        } else {
            format!("in {}", ago(s.starts_at_ms, now))
        };
        let soon = ending_soon(row, now);
        // An active silence that matches nothing hides nothing now: worth a look (#5459).
        let matched_item = if row.state == SilenceState::Active && row.matched_now == 0 {
            Item::Dim
        } else {
            Item::Text
        };
        columns.row(vec![
            styled(
                if soon { "!" } else { " " },
                figure(scene, theme, Item::Warn),
            ),
            styled(
                row.state.as_str(),
                figure(scene, theme, state_item(row.state)),
            ),
            styled(s.kind.as_str(), text),
            styled(fit(&matchers_text(&s.matchers), 200), text),
            styled(fit(or_dash(&s.created_by), 24), text),
            styled(fit(or_dash(&s.comment), 200), text),
            styled(started, text),
            styled(left, figure(scene, theme, left_item)),
            styled(
                row.matched_now.to_string(),
                figure(scene, theme, matched_item),
            ),
            styled(fit(&s.id, 26), text),
        ])
    });
    if rows.is_empty() {
        empty_note(
            theme,
            frame,
            table,
            "no silences: nothing is held back by one",
        );
    }
    if let Some(details) = details {
        silence_details(scene, theme, frame, details, alerting);
    }
}

fn or_dash(text: &str) -> &str {
    if text.trim().is_empty() { "-" } else { text }
}

/// The table over a detail pane, when the height allows one.
fn split(area: Rect, rows: usize) -> (Rect, Option<Rect>) {
    if area.height < DETAIL_HEIGHT + 6 {
        return (area, None);
    }
    let table_height = (rows as u16 + 3).clamp(5, area.height - DETAIL_HEIGHT);
    let [table, details] = Layout::vertical([
        Constraint::Length(table_height),
        Constraint::Min(DETAIL_HEIGHT),
    ])
    .areas(area);
    (table, Some(details))
}

fn empty_note(theme: &Theme, frame: &mut Frame, table: Rect, text: &str) {
    let inner = Rect {
        x: table.x + 2,
        y: table.y + 2,
        width: table.width.saturating_sub(4),
        height: 1,
    };
    if table.height > 3 {
        frame.render_widget(Paragraph::new(text).style(theme.style(Item::Dim)), inner);
    }
}

/// `label     value`, the value wrapped to the width under itself.
fn field_lines<'a>(theme: &Theme, label: &str, value: &str, width: usize) -> Vec<Line<'a>> {
    const LABEL: usize = 10;
    wrap(value, width.saturating_sub(LABEL).max(10))
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            let label = if i == 0 { label } else { "" };
            Line::from(vec![
                Span::styled(format!("{label:<LABEL$}"), theme.style(Item::Dim)),
                Span::raw(line),
            ])
        })
        .collect()
}

/// `DiskFull instance=db-1 job=node`: an alert by its identifying labels.
fn alert_name(alert: &SeenAlert) -> String {
    let name = alert.alertname();
    let labels = identifying_labels(alert);
    match (name.is_empty(), labels.is_empty()) {
        (true, _) => format!("{} {labels}", alert.fingerprint),
        (false, true) => name.to_owned(),
        (false, false) => format!("{name} {labels}"),
    }
}

/// The identifying labels but `alertname`, the most specific first (a cut column still tells
/// two alerts apart): `instance=db-1 job=node`.
fn identifying_labels(alert: &SeenAlert) -> String {
    IDENTIFYING[1..]
        .iter()
        .rev()
        .filter_map(|name| Some(format!("{name}={}", alert.labels.get(*name)?)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn silence_details(
    scene: Scene<'_>,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
    alerting: &AlertingView,
) {
    let now = scene.ui.now_ms;
    let width = usize::from(area.width.saturating_sub(2));
    let Some(row) = scene.selected_silence() else {
        frame.render_widget(
            Paragraph::new("select a silence to see it whole")
                .style(theme.style(Item::Dim))
                .block(super::block(theme, " Silence ")),
            area,
        );
        return;
    };
    let s = &row.silence;
    let (left, _) = time_left(row, now);
    let mut lines = field_lines(theme, "matchers", &matchers_text(&s.matchers), width);
    lines.extend(field_lines(
        theme,
        "owner",
        &format!("{} · kind {}", or_dash(&s.created_by), s.kind.as_str()),
        width,
    ));
    lines.extend(field_lines(theme, "comment", or_dash(&s.comment), width));
    lines.extend(field_lines(
        theme,
        "from",
        &format!(
            "{} until {}",
            human_time(s.starts_at_ms, now),
            human_time(s.ends_at_ms, now)
        ),
        width,
    ));
    let matched = match firing_matches(alerting, &s.matchers) {
        None => "its matchers do not compile: it holds nothing back".to_owned(),
        Some(alerts) if alerts.is_empty() => {
            "no firing alert now (of those read): it hides nothing now".to_owned()
        }
        Some(alerts) => format!(
            "{} firing now: {}",
            alerts.len(),
            alerts
                .iter()
                .map(|a| alert_name(a))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    lines.extend(field_lines(theme, "matches", &matched, width));
    let title = format!(
        " Silence {} · {} · {left}{} ",
        fit(&s.id, 40),
        row.state.as_str(),
        if ending_soon(row, now) {
            " · ends in < 5 m"
        } else {
            ""
        }
    );
    frame.render_widget(
        Paragraph::new(lines).block(super::block(theme, title)),
        area,
    );
}

/// What holds an alert back, in words: `silenced by <id>: <comment>`, `inhibited by
/// <alertname>/<fingerprint> (<rule>)`. Unsanitised: callers fit it.
pub fn held_back(alerting: &AlertingView, suppression: &Suppression, with_id: bool) -> String {
    match suppression {
        Suppression::Silenced { ids } => {
            let Some(first) = ids.first() else {
                return "silenced".to_owned();
            };
            let comment = alerting
                .silences
                .iter()
                .find(|r| &r.silence.id == first)
                .map_or("", |r| r.silence.comment.as_str());
            let more = if ids.len() > 1 {
                format!(" (+{} more)", ids.len() - 1)
            } else {
                String::new()
            };
            if with_id {
                format!("silenced by {first}: {comment}{more}")
            } else {
                format!("silenced: {comment}{more}")
            }
        }
        Suppression::Inhibited { rule, source } => {
            let name = alerting
                .alerts
                .iter()
                .find(|a| &a.alert.fingerprint == source)
                .map(|a| a.alert.alertname())
                .filter(|n| !n.is_empty());
            match name {
                Some(name) => format!("inhibited by {name}/{source} ({rule})"),
                None => format!("inhibited by {source} ({rule})"),
            }
        }
        other @ Suppression::Maintenance { .. } => other.to_string(),
    }
}

/// An alert's state in a word: `firing`, `silenced`, `inhibited`, `resolved`.
fn alert_state(row: &AlertRow) -> (&'static str, Item) {
    match (&row.suppressed, row.firing) {
        (_, false) => ("resolved", Item::Dim),
        (None, true) => ("firing", Item::Error),
        (Some(Suppression::Inhibited { .. }), true) => ("inhibited", Item::Info),
        (Some(Suppression::Maintenance { .. }), true) => ("maint.", Item::Info),
        (Some(Suppression::Silenced { .. }), true) => ("silenced", Item::Info),
    }
}

/// ` Alerts seen in the last hour · 3 firing now (1 silenced · 1 inhibited) · newest 500 read `
fn alerts_title(alerting: &AlertingView) -> String {
    let mut title = format!(
        " Alerts seen in the last hour · {} firing now ({} silenced · {} inhibited)",
        alerting.firing_now, alerting.silenced_now, alerting.inhibited_now
    );
    if alerting.alerts_capped {
        let _ = write!(
            title,
            " · newest {} read: there may be more",
            alerting.alerts.len()
        );
    }
    title.push(' ');
    title
}

pub fn alerts(scene: Scene<'_>, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(store) = scene.snapshot.store.as_ref() else {
        return;
    };
    let alerting = &store.alerting;
    let rows = &alerting.alerts;
    let (table, details) = split(area, rows.len());
    let wide = area.width.saturating_sub(2) >= WIDE;
    let columns = Columns::new(&[
        ("state", Constraint::Length(9), true),
        (
            "alertname",
            Constraint::Length(if wide { 24 } else { 16 }),
            true,
        ),
        ("labels", Constraint::Min(if wide { 36 } else { 12 }), true),
        ("since", Constraint::Length(6), true),
        ("seen", Constraint::Length(6), wide),
        (
            "held back by",
            Constraint::Min(if wide { 40 } else { 22 }),
            true,
        ),
    ]);
    let now = scene.ui.now_ms;
    let text = figure(scene, theme, Item::Text);
    grid(
        scene,
        theme,
        alerts_title(alerting),
        &columns.header,
        &columns.widths,
        rows.len(),
    )
    .render(frame, table, |i| {
        let row = &rows[i];
        let a = &row.alert;
        let (state, item) = alert_state(row);
        let held = match &row.suppressed {
            Some(s) => held_back(alerting, s, wide),
            None if row.firing => "nothing".to_owned(),
            None => "-".to_owned(),
        };
        columns.row(vec![
            styled(state, figure(scene, theme, item)),
            styled(fit(or_dash(a.alertname()), 40), text),
            styled(fit(&identifying_labels(a), 200), text),
            styled(ago(now, a.starts_at_ms), text),
            styled(format!("{} ago", ago(now, a.last_seen_ms)), text),
            styled(fit(&held, 300), text),
        ])
    });
    if rows.is_empty() {
        empty_note(theme, frame, table, "no alerts seen in the last hour");
    }
    if let Some(details) = details {
        alert_details(scene, theme, frame, details, alerting);
    }
}

/// The silences that ended within `RECENTLY_EXPIRED_MS` and matched this alert: why it may
/// have come back.
fn recently_expired(alerting: &AlertingView, a: &SeenAlert, now: i64) -> Vec<String> {
    alerting
        .silences
        .iter()
        .filter(|r| {
            r.state == SilenceState::Expired && now - r.silence.ends_at_ms <= RECENTLY_EXPIRED_MS
        })
        .filter(|r| compile_all(&r.silence.matchers).is_ok_and(|m| matches_all(&m, &a.labels)))
        .map(|r| {
            format!(
                "{} by {} ended {} ago: {}",
                r.silence.id,
                or_dash(&r.silence.created_by),
                ago(now, r.silence.ends_at_ms),
                or_dash(&r.silence.comment)
            )
        })
        .collect()
}

fn alert_details(
    scene: Scene<'_>,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
    alerting: &AlertingView,
) {
    let now = scene.ui.now_ms;
    let width = usize::from(area.width.saturating_sub(2));
    let Some(row) = scene.selected_alert() else {
        frame.render_widget(
            Paragraph::new("select an alert to see it whole")
                .style(theme.style(Item::Dim))
                .block(super::block(theme, " Alert ")),
            area,
        );
        return;
    };
    let a = &row.alert;
    let labels = a
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut lines = field_lines(theme, "labels", &labels, width);
    let state = if row.firing {
        format!("firing since {}", human_time(a.starts_at_ms, now))
    } else {
        format!(
            "resolved{}",
            a.ends_at_ms
                .map_or_else(String::new, |end| format!(" at {}", human_time(end, now)))
        )
    };
    lines.extend(field_lines(
        theme,
        "state",
        &format!("{state} · last seen {} ago", ago(now, a.last_seen_ms)),
        width,
    ));
    let held = match &row.suppressed {
        Some(s) => held_back(alerting, s, true),
        None if row.firing => "nothing: no silence or inhibition holds it back".to_owned(),
        None => "-".to_owned(),
    };
    lines.extend(field_lines(theme, "held back", &held, width));
    let recent = recently_expired(alerting, a, now);
    if !recent.is_empty() {
        lines.extend(field_lines(theme, "expired", &recent.join("; "), width));
    }
    let key = scene
        .ui
        .keymap
        .key(crate::ui::Command::Silence)
        .filter(|_| scene.available(crate::ui::Command::Silence));
    if let Some(key) = key {
        lines.push(Line::styled(
            format!("{key} silences it: the editor takes its alertname and identifying labels"),
            theme.style(Item::KeyHint),
        ));
    }
    let title = format!(
        " Alert {} · {} ",
        fit(or_dash(a.alertname()), 40),
        fit(&a.fingerprint, 24)
    );
    frame.render_widget(
        Paragraph::new(lines).block(super::block(theme, title)),
        area,
    );
}
