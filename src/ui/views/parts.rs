//! Pieces more than one view draws: state glyphs and styles, the entry inspectors, audit rows,
//! the silence editor. Views share these, never each other.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::figure;
use super::grid::{Columns, grid, raw, styled};
use crate::engine::breaker::BreakerState;
use crate::engine::matcher::{compile_all, matches_all};
use crate::engine::slo::{Measurement, SloState, WindowFigures};
use crate::model::time::format_rfc3339_ms;
use crate::model::{DlqEntry, SeenAlert, sanitize};
use crate::sources::slo::SloSection;
use crate::sources::snapshot::AlertingView;
use crate::ui::silences::{Field, SilenceEditor};
use crate::ui::state::Scene;
use crate::ui::theme::{Item, Theme};
use crate::ui::widgets::{age, clock, fit, wrap};

pub fn breaker_glyph(state: BreakerState) -> &'static str {
    match state {
        BreakerState::Closed => "●",
        BreakerState::Open => "○",
        BreakerState::HalfOpen => "◐",
        BreakerState::ForcedOpen => "⊘",
        BreakerState::Disabled => "◌",
    }
}

/// A time as UTC and relative to now: `2026-11-30T14:01:00.000Z (1m ago)`.
pub fn human_time(ms: i64, now_ms: i64) -> String {
    let relative = if ms <= now_ms {
        format!("{} ago", age(u64::try_from(now_ms - ms).unwrap_or(0)))
    } else {
        format!("in {}", age(u64::try_from(ms - now_ms).unwrap_or(0)))
    };
    format!("{} ({relative})", format_rfc3339_ms(ms))
}

/// `label     value`, the value wrapped to `width` under itself.
pub(super) fn field(lines: &mut Vec<String>, label: &str, value: &str, width: usize) {
    const LABEL: usize = 10;
    let text_width = width.saturating_sub(LABEL).max(10);
    for (i, line) in wrap(value, text_width).into_iter().enumerate() {
        let label = if i == 0 { label } else { "" };
        lines.push(format!("{label:<LABEL$}{line}"));
    }
}

/// A pre-formatted line (JSON) broken every `width` columns rather than cut.
pub(super) fn hard_wrap(line: &str, width: usize, lines: &mut Vec<String>) {
    use unicode_width::UnicodeWidthChar;
    let width = width.max(1);
    let mut current = String::new();
    let mut used = 0;
    for c in sanitize(line).chars() {
        let w = c.width().unwrap_or(0);
        if used + w > width {
            lines.push(std::mem::take(&mut current));
            used = 0;
        }
        current.push(c);
        used += w;
    }
    lines.push(current);
}

/// The inspector's lines for `entry` at `width` columns: what failed and when (UTC and
/// relative), the attempt history, then the payload as pretty JSON with secrets redacted.
/// Every untrusted string is sanitised, and nothing is cut: long text wraps.
pub fn inspector_lines(entry: &DlqEntry, now_ms: i64, width: usize) -> Vec<String> {
    let m = &entry.meta;
    let glance = entry.glance();
    let mut lines = Vec::new();
    field(&mut lines, "id", &m.id.0, width);
    field(
        &mut lines,
        "queue",
        &format!("{} · partition {}", m.queue, entry.partition),
        width,
    );
    if !glance.alertname.is_empty() || !glance.severity.is_empty() {
        field(
            &mut lines,
            "alert",
            &format!("{} · {}", glance.alertname, glance.severity),
            width,
        );
    }
    field(&mut lines, "tenant", &m.tenant, width);
    field(
        &mut lines,
        "failed",
        &format!(
            "{} in stage {} on channel {}",
            human_time(m.last_failure_ms, now_ms),
            m.stage,
            if m.channel.is_empty() {
                "-"
            } else {
                &m.channel
            }
        ),
        width,
    );
    field(
        &mut lines,
        "first",
        &format!("failure {}", human_time(m.first_failure_ms, now_ms)),
        width,
    );
    if let Ok(envelope) = &entry.envelope {
        field(
            &mut lines,
            "created",
            &human_time(envelope.created_at_ms, now_ms),
            width,
        );
    }
    field(
        &mut lines,
        "counters",
        &format!("{} attempts, replayed {} times", m.attempts, m.replays),
        width,
    );
    field(&mut lines, "error", &m.error_class, width);
    field(&mut lines, "", &m.error_message, width);
    attempt_lines(&mut lines, entry, now_ms, width);
    content_lines(&mut lines, entry, width);
    lines
}

/// The entry's attempt history, newest kept, one field per attempt and its error.
fn attempt_lines(lines: &mut Vec<String>, entry: &DlqEntry, now_ms: i64, width: usize) {
    lines.push(String::new());
    let history = entry.attempt_history();
    lines.push(format!(
        "attempt history ({} recorded of {} attempts; the newest {} are kept)",
        history.len(),
        entry.meta.attempts,
        crate::model::ATTEMPT_HISTORY
    ));
    for a in &history {
        let channel = if a.channel.is_empty() {
            "-"
        } else {
            &a.channel
        };
        field(
            lines,
            &format!("  #{}", a.attempt),
            &format!(
                "{} · {channel} · {}",
                human_time(a.at_ms, now_ms),
                a.error_class
            ),
            width,
        );
        field(lines, "", &a.error, width);
    }
}

/// The entry's content as stored, secrets redacted, pretty-printed and wrapped to `width`.
fn content_lines(lines: &mut Vec<String>, entry: &DlqEntry, width: usize) {
    lines.push(String::new());
    lines.push("content (secrets redacted)".to_owned());
    let mut doc = entry.document();
    if let Some(map) = doc.as_object_mut() {
        map.remove("meta");
        map.remove("attempt_history");
    }
    let pretty =
        serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("(cannot show: {e})"));
    for line in pretty.lines() {
        hard_wrap(line, width, lines);
    }
}

/// The inspector's text for the selected MUTT entry: summary and payload, secrets redacted.
pub fn mutt_inspector_text(entry: &crate::model::mutt::MuttEntry) -> String {
    let pretty = if entry.is_json {
        serde_json::from_str::<serde_json::Value>(&entry.payload)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| entry.payload.clone())
    } else {
        entry.payload.clone()
    };
    let opt = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |n| n.to_string());
    format!(
        "position   {} (0 = newest)\nid         {} (hash of the entry's text)\nhost       {}\nretries    _retry_count {} · _moog_retry_count {} · replayed by Ward {}\nshed       {}\nbytes      {}\n\n{pretty}",
        entry.index,
        entry.id,
        entry.host,
        opt(entry.retry_count),
        opt(entry.moog_retry_count),
        entry.ward_replays,
        entry.shedding_reason.as_deref().unwrap_or("-"),
        entry.bytes,
    )
}

/// Audit records, newest first, under `title`.
pub fn audit_rows(
    scene: Scene<'_>,
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
        (
            "result",
            Constraint::Length(if wide { 24 } else { 14 }),
            true,
        ),
        ("took", Constraint::Length(6), wide),
    ];
    let columns = Columns::new(&columns);
    grid(
        scene,
        theme,
        title,
        &columns.header,
        &columns.widths,
        audit.len(),
    )
    .render(frame, area, |i| {
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
            raw(fit(&r.scope, 200)),
            raw(fit(if r.reason.is_empty() { "-" } else { &r.reason }, 200)),
            // Narrow: the outcome and the count moved (`completed: 12`), never a cut number.
            styled(
                if wide {
                    r.result.as_str()
                } else {
                    r.result
                        .find(" moved")
                        .map_or(r.result.as_str(), |at| &r.result[..at])
                },
                theme.style(item),
            ),
            raw(age(r.duration_ms)),
        ];
        columns.row(cells)
    });
}

/// One line per objective for the Overview's health panel: state, name and budget left.
pub fn summary(section: &SloSection) -> Vec<(String, SloState)> {
    section
        .readings
        .iter()
        .map(|r| {
            let left = r.figures.budget_remaining.map_or_else(
                || unknown(&r.figures.windows),
                |l| match r.figures.period_covered_s {
                    Some(s) => format!("{:.1}% left ({} of data)", l * 100.0, age(s * 1_000)),
                    None => format!("{:.1}% left", l * 100.0),
                },
            );
            (
                format!(
                    "{:<8} {} · {left}",
                    r.figures.state.as_str(),
                    fit(&r.name, 22)
                ),
                r.figures.state,
            )
        })
        .collect()
}

/// The style of a state, for the Overview.
pub fn state_style(scene: Scene<'_>, theme: &Theme, state: SloState) -> Style {
    figure(
        scene,
        theme,
        match state {
            SloState::Ok => Item::Ok,
            SloState::Warning => Item::Warn,
            SloState::Critical => Item::Error,
            SloState::Unknown => Item::Dim,
        },
    )
}

/// A state in one glyph, for narrow panels: ✓ ok, ! warning, ✗ critical, ? unknown.
pub fn state_glyph(state: SloState) -> &'static str {
    match state {
        SloState::Ok => "✓",
        SloState::Warning => "!",
        SloState::Critical => "✗",
        SloState::Unknown => "?",
    }
}

/// Why a figure is missing: no traffic, or a series that is not there.
pub(super) fn unknown(windows: &[WindowFigures]) -> String {
    if windows.iter().all(|w| w.measurement == Measurement::Absent) {
        "absent".to_owned()
    } else {
        "no traffic".to_owned()
    }
}

/// The firing alerts a silence's matchers match now; `None` when they do not compile.
pub(super) fn firing_matches<'a>(
    alerting: &'a AlertingView,
    matchers: &[crate::model::LabelMatcher],
) -> Option<Vec<&'a SeenAlert>> {
    let compiled = compile_all(matchers).ok()?;
    Some(
        alerting
            .alerts
            .iter()
            .filter(|a| a.firing && matches_all(&compiled, &a.alert.labels))
            .map(|a| &a.alert)
            .collect(),
    )
}

/// The last `width` columns of `text`, sanitised, with `…` when its start is cut: a line being
/// typed shows its end.
pub(super) fn tail(text: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    let clean = crate::model::sanitize(text);
    let total: usize = clean.chars().map(|c| c.width().unwrap_or(0)).sum();
    if total <= width {
        return clean.into_owned();
    }
    let mut kept: Vec<char> = Vec::new();
    let mut used = 1;
    for c in clean.chars().rev() {
        let w = c.width().unwrap_or(0);
        if used + w > width {
            break;
        }
        used += w;
        kept.push(c);
    }
    std::iter::once('…').chain(kept.into_iter().rev()).collect()
}

/// What the editor says under a line: the check of what is typed.
pub(super) fn check(scene: Scene<'_>, editor: &SilenceEditor, field: Field) -> (String, Item) {
    let now = scene.ui.now_ms;
    match field {
        Field::Matchers => match editor.parsed_matchers() {
            Err(why) => (why, Item::Error),
            Ok(matchers) => {
                let alerting = scene.snapshot.store.as_ref().map(|s| &s.alerting);
                let firing = alerting.map_or(0, |a| a.firing_now);
                let matched = alerting
                    .and_then(|a| firing_matches(a, &matchers))
                    .map_or(0, |m| m.len());
                (
                    format!(
                        "{} matchers · match {matched} of the {firing} alerts firing now (the plan counts the last hour, the DLQ and scheduled sends)",
                        matchers.len()
                    ),
                    Item::Ok,
                )
            }
        },
        Field::Duration => match editor.duration_ms() {
            Err(why) => (why, Item::Error),
            Ok(ms) => (
                format!(
                    "starts now, ends {} UTC ({} from now)",
                    clock(now.saturating_add(ms)),
                    age(u64::try_from(ms).unwrap_or(0))
                ),
                Item::Dim,
            ),
        },
        Field::Comment => match editor.comment_error() {
            Some(why) => (why.to_owned(), Item::Warn),
            None => (
                "kept with the silence, with you as its owner, and in the audit".to_owned(),
                Item::Dim,
            ),
        },
    }
}

/// The silence editor, over the view it was opened from.
pub fn editor(
    scene: Scene<'_>,
    theme: &Theme,
    frame: &mut Frame,
    body: Rect,
    editor: &SilenceEditor,
) {
    let width = 100.min(body.width);
    let inner = usize::from(width.saturating_sub(2)).max(1);
    let mut lines = vec![
        Line::from(vec![
            Span::styled("target   ", theme.style(Item::Dim)),
            Span::styled(
                format!(" {} ", fit(&scene.snapshot.target.label, 40)),
                scene.ui.accent.map_or_else(
                    || theme.style(Item::Accent),
                    |c| ratatui::style::Style::default().fg(c),
                ),
            ),
        ]),
        Line::styled(
            fit(&format!("from      {}", editor.source), inner),
            theme.style(Item::Dim),
        ),
        Line::raw(""),
    ];
    for field in Field::ALL {
        let focused = field == editor.focus;
        let label = format!("{:<9}> ", field.label());
        let room = inner.saturating_sub(label.len() + 1);
        let text = editor.text(field);
        let shown = if focused {
            format!("{}▏", tail(text, room))
        } else {
            fit(text, room)
        };
        let label_item = if focused { Item::KeyHintKey } else { Item::Dim };
        lines.push(Line::from(vec![
            Span::styled(label, theme.style(label_item)),
            Span::raw(shown),
        ]));
        let (note, item) = check(scene, editor, field);
        for line in wrap(&note, inner.saturating_sub(11)) {
            lines.push(Line::styled(format!("{:11}{line}", ""), theme.style(item)));
        }
    }
    if let Some(error) = editor.error.as_deref() {
        lines.push(Line::raw(""));
        for line in wrap(error, inner) {
            lines.push(Line::styled(line, theme.style(Item::Error)));
        }
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        fit(
            "tab next line · enter plans it (preview, then confirm) · esc cancels",
            inner,
        ),
        theme.style(Item::KeyHint),
    ));
    let title = match editor.replaces.as_deref() {
        Some(id) => format!(" Edit silence {} (a new one replaces it) ", fit(id, 30)),
        None => " New silence ".to_owned(),
    };
    let area = centered(body, width, lines.len() as u16 + 2);
    super::clear(theme, frame, area);
    frame.render_widget(
        Paragraph::new(lines).block(dialog_block(theme, &title, false)),
        area,
    );
}

pub(super) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(ratatui::layout::Flex::Center)
        .areas(area);
    let [cell] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(ratatui::layout::Flex::Center)
        .areas(row);
    cell
}

pub(super) fn dialog_block<'a>(theme: &Theme, title: &str, danger: bool) -> Block<'a> {
    let item = if danger {
        Item::DialogDanger
    } else {
        Item::Dialog
    };
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.style(item))
        .title(title.to_owned())
        .title_style(theme.style(item))
}
