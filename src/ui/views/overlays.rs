//! Overlays: help (from the live keymap), the confirm funnel's dialog, the command and filter
//! lines, the channel picker and the DLQ inspector.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::parts::{centered, dialog_block, inspector_lines};
use crate::actions::Tier;
use crate::ui::command::VERBS;
use crate::ui::keymap::Command;
use crate::ui::state::Scene;
use crate::ui::state::{Overlay, Stage};
use crate::ui::theme::{Item, Theme};
use crate::ui::widgets::{age, clock, fit, wrap};

pub fn draw(scene: Scene<'_>, theme: &Theme, frame: &mut Frame, body: Rect) {
    let Some(overlay) = scene.ui.overlay.as_ref() else {
        return;
    };
    match overlay {
        Overlay::Help { scroll } => help(scene, theme, frame, body, *scroll),
        Overlay::Confirm(confirm) => confirm_dialog(scene, theme, frame, body, confirm),
        Overlay::Command(input) => input_line(theme, frame, body, ":", &input.text),
        Overlay::Filter(input) => input_line(theme, frame, body, "/", &input.text),
        Overlay::Silence(editor) => super::parts::editor(scene, theme, frame, body, editor),
        Overlay::Picker(picker) => {
            let area = centered(body, 40, picker.options.len() as u16 + 2);
            super::clear(theme, frame, area);
            let lines: Vec<Line> = picker
                .options
                .iter()
                .enumerate()
                .map(|(i, option)| {
                    let style = if i == picker.selected {
                        theme.style(Item::Selection)
                    } else {
                        theme.style(Item::Text)
                    };
                    Line::styled(format!(" {} ", fit(option, 36)), style)
                })
                .collect();
            frame.render_widget(
                Paragraph::new(lines).block(dialog_block(
                    theme,
                    " Test alert to… (enter / esc) ",
                    false,
                )),
                area,
            );
        }
        Overlay::Inspector { scroll } => {
            let area = centered(
                body,
                body.width.saturating_sub(6),
                body.height.saturating_sub(2),
            );
            let width = usize::from(area.width.saturating_sub(2));
            let entry = if scene.is_mutt() {
                scene.selected_mutt_entry().map(|e| {
                    (
                        super::parts::mutt_inspector_text(e)
                            .lines()
                            .map(|l| fit(l, width))
                            .collect(),
                        format!(
                            " entry {} · secrets redacted · y copies · esc closes ",
                            e.id
                        ),
                    )
                })
            } else {
                scene.selected_entry().map(|e| {
                    (
                        inspector_lines(e, scene.ui.now_ms, width),
                        format!(
                            " {} · y copies the JSON · esc closes ",
                            fit(&e.meta.id.0, 30)
                        ),
                    )
                })
            };
            if let Some((lines, title)) = entry {
                inspector(theme, frame, area, (&lines, &title), *scroll);
            }
        }
    }
}

/// An entry's lines (sanitised, fitted to the width) in `area`, scrolled.
fn inspector(
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
    (text, title): (&[String], &str),
    scroll: usize,
) {
    super::clear(theme, frame, area);
    let lines: Vec<Line> = text
        .iter()
        .skip(scroll)
        .map(|l| Line::raw(l.as_str()))
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(dialog_block(theme, title, false)),
        area,
    );
}

/// How a run ended, in the terms of what it did: entries for bulk actions, the change for others.
fn done_line(action: &crate::actions::Action, report: &crate::actions::Report) -> String {
    if let Some(test) = &report.test {
        return format!(
            "{} · test alert {}",
            report.outcome.as_str(),
            test.summary()
        );
    }
    if !action.is_bulk() {
        let what = if report.moved > 0 {
            "applied"
        } else {
            "nothing changed: the state had changed meanwhile"
        };
        return format!("{} · {what}", report.outcome.as_str());
    }
    let gone = if report.vanished > 0 {
        format!(" · {} gone before their batch", report.vanished)
    } else {
        String::new()
    };
    format!(
        "{} · moved {} · poisoned {} · {} batches{gone}",
        report.outcome.as_str(),
        report.moved,
        report.poisoned,
        report.batches
    )
}

fn help(scene: Scene<'_>, theme: &Theme, frame: &mut Frame, body: Rect, scroll: usize) {
    let area = centered(body, 96.min(body.width), body.height);
    super::clear(theme, frame, area);
    let mut lines = Vec::new();
    if let Some(why) = scene.ui.mode.read_only.as_deref() {
        lines.push(Line::styled(
            format!("read-only ({}): action keys are hidden", fit(why, 60)),
            theme.style(Item::BadgeReadOnly),
        ));
    }
    for &command in Command::ALL {
        if !scene.available(command) {
            continue;
        }
        let keys = scene.ui.keymap.keys(command).join(" ");
        if keys.is_empty() {
            continue;
        }
        lines.push(Line::from(vec![
            Span::styled(format!("{keys:>14}  "), theme.style(Item::KeyHintKey)),
            Span::styled(format!("{:<20}", command.name()), theme.style(Item::Dim)),
            Span::raw(command.help()),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("commands (:)", theme.style(Item::Title)));
    for (verb, args) in VERBS {
        lines.push(Line::from(vec![
            Span::styled(format!("  :{verb} "), theme.style(Item::KeyHintKey)),
            Span::raw(*args),
        ]));
    }
    let lines: Vec<Line> = lines.into_iter().skip(scroll).collect();
    frame.render_widget(
        Paragraph::new(lines).block(dialog_block(
            theme,
            " Help · keys from the live keymap · esc closes ",
            false,
        )),
        area,
    );
}

fn input_line(theme: &Theme, frame: &mut Frame, body: Rect, prompt: &str, text: &str) {
    let area = Rect {
        y: body.bottom().saturating_sub(1),
        height: 1,
        ..body
    };
    super::clear(theme, frame, area);
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(prompt.to_owned(), theme.style(Item::KeyHintKey)),
            Span::raw(fit(text, 200)),
            Span::raw("▏"),
        ])),
        area,
    );
}

/// Lines a plan's warning may take in the dialog; the CLI's `--dry-run` prints it whole.
const WARNING_LINES: usize = 3;

/// The dialog's lines by part: sample rows give way first when the screen is short.
#[derive(Default)]
struct DialogLines {
    head: Vec<Line<'static>>,
    sample: Vec<Line<'static>>,
    notes: Vec<Line<'static>>,
    tail: Vec<Line<'static>>,
}

/// What every part of the dialog is drawn with: the theme and the inner width.
struct Pen<'t> {
    theme: &'t Theme,
    inner: usize,
}

impl Pen<'_> {
    fn wrapped(&self, text: &str, item: Item) -> Vec<Line<'static>> {
        wrap(text, self.inner)
            .into_iter()
            .map(|l| Line::styled(l, self.theme.style(item)))
            .collect()
    }

    fn dim(&self, text: &str) -> Line<'static> {
        Line::styled(fit(text, self.inner), self.theme.style(Item::Dim))
    }
}

/// The confirm dialog: every line fits its width (long text wraps at words), and the key hint
/// is always on the last line; sample rows give way first when the screen is short.
fn confirm_dialog(
    scene: Scene<'_>,
    theme: &Theme,
    frame: &mut Frame,
    body: Rect,
    confirm: &crate::ui::state::Confirm,
) {
    let danger = confirm.action.tier() == Tier::Irreversible;
    let width = 100.min(body.width);
    let pen = Pen {
        theme,
        inner: usize::from(width.saturating_sub(2)).max(1),
    };
    let mut parts = DialogLines::default();
    parts.head.push(Line::from(vec![
        Span::styled("target  ", theme.style(Item::Dim)),
        Span::styled(
            format!(
                " {} ",
                fit(&scene.snapshot.target.label, pen.inner.saturating_sub(10))
            ),
            scene.ui.accent.map_or_else(
                || theme.style(Item::Accent),
                |c| ratatui::style::Style::default().fg(c),
            ),
        ),
    ]));
    let hint = match &confirm.stage {
        Stage::Planning => {
            parts
                .head
                .extend(pen.wrapped(&confirm.action.describe(), Item::Text));
            parts.head.push(Line::styled(
                "planning (counting, sampling)…",
                theme.style(Item::Dim),
            ));
            "esc cancels"
        }
        Stage::Failed(error) => {
            parts
                .head
                .extend(pen.wrapped(&confirm.action.describe(), Item::Text));
            parts.head.extend(pen.wrapped(error, Item::Error));
            "esc closes"
        }
        Stage::Ready { plan, input } => {
            ready_lines(&pen, plan, input, &mut parts);
            "enter confirms · esc cancels"
        }
        Stage::Running { plan, progress } => {
            running_lines(&pen, plan, progress.as_ref(), &mut parts.head);
            "esc cancels after the current batch"
        }
        Stage::Done { plan, result } => {
            done_lines(&pen, plan, result, &mut parts.head);
            "enter closes"
        }
    };
    parts.tail.push(Line::raw(""));
    parts
        .tail
        .push(Line::styled(hint, theme.style(Item::KeyHint)));
    let lines = fit_to_room(parts, usize::from(body.height.saturating_sub(2)), theme);
    let area = centered(body, width, lines.len() as u16 + 2);
    super::clear(theme, frame, area);
    let title = format!(" {} ", confirm.action.kind().title());
    frame.render_widget(
        Paragraph::new(lines).block(dialog_block(theme, &title, danger)),
        area,
    );
}

/// Cuts sample rows first, then whatever precedes the tail: the key hint is always the last line.
fn fit_to_room(parts: DialogLines, room: usize, theme: &Theme) -> Vec<Line<'static>> {
    let DialogLines {
        head,
        mut sample,
        notes,
        tail,
    } = parts;
    let fixed = head.len() + notes.len() + tail.len();
    if fixed + sample.len() > room && !sample.is_empty() {
        let shown = room.saturating_sub(fixed + 1);
        let hidden = sample.len() - shown.min(sample.len());
        sample.truncate(shown);
        sample.push(Line::styled(
            format!("  … {hidden} more sample rows"),
            theme.style(Item::Dim),
        ));
    }
    let mut lines = head;
    lines.extend(sample);
    lines.extend(notes);
    // The hint is the last line whatever is cut: the operator must see how to confirm.
    let keep = room.saturating_sub(tail.len());
    lines.truncate(keep);
    lines.extend(tail);
    lines
}

/// A plan ready to confirm: its figures, what it would change, samples, warnings and the input.
fn ready_lines(pen: &Pen<'_>, plan: &crate::actions::Plan, input: &str, parts: &mut DialogLines) {
    parts.head.extend(pen.wrapped(&plan.summary, Item::Title));
    if plan.action.is_bulk() {
        parts.head.push(Line::raw(fit(
            &format!(
                "count {} · batch {} · rate {} · ETA {}",
                plan.count,
                plan.batch_size,
                plan.rate_per_s
                    .map_or_else(|| "unpaced".to_owned(), |r| format!("{r}/s")),
                plan.eta
                    .map_or_else(|| "-".to_owned(), |d| age(d.as_millis() as u64)),
            ),
            pen.inner,
        )));
    } else {
        parts.head.push(Line::raw("one change, applied at once"));
    }
    if let Some(silence) = &plan.silence {
        parts.head.extend(pen.wrapped(
            &format!(
                "id {} · owner {} · {}",
                silence.id,
                crate::model::sanitize(&silence.created_by),
                crate::model::time::short_duration(
                    (silence.ends_at_ms - silence.starts_at_ms).max(0) as u64
                )
            ),
            Item::Dim,
        ));
    }
    if let Some(preview) = &plan.preview {
        for line in preview.lines() {
            parts.head.extend(pen.wrapped(&line, Item::Text));
        }
        for alert in &preview.sample {
            parts.sample.push(pen.dim(&format!("  {alert}")));
        }
    }
    for row in &plan.sample {
        // A marked id or a MUTT entry carries no failure time: say so, not 00:00:00.
        let when = if row.last_failure_ms > 0 {
            clock(row.last_failure_ms)
        } else {
            "--:--:--".to_owned()
        };
        parts.sample.push(pen.dim(&format!(
            "  {} {} {} {} {}",
            when, row.id, row.tenant, row.error_class, row.error_message
        )));
    }
    for warning in &plan.warnings {
        let mut lines = pen.wrapped(&format!("! {warning}"), Item::Warn);
        if lines.len() > WARNING_LINES {
            lines.truncate(WARNING_LINES);
            lines.push(Line::styled("  …", pen.theme.style(Item::Warn)));
        }
        parts.notes.extend(lines);
    }
    input_lines(pen, plan, input, &mut parts.tail);
}

/// What the operator types: the count for an irreversible plan, else the reason or comment.
fn input_lines(
    pen: &Pen<'_>,
    plan: &crate::actions::Plan,
    input: &str,
    tail: &mut Vec<Line<'static>>,
) {
    let inner = pen.inner;
    if plan.tier == Tier::Irreversible {
        tail.extend(pen.wrapped(
            &format!("cannot be undone: type {} and press enter", plan.count),
            Item::Error,
        ));
        tail.push(Line::raw(format!(
            "> {}▏",
            fit(input, inner.saturating_sub(3))
        )));
    } else if plan.action.reason().is_some() {
        let label = if matches!(plan.action, crate::actions::Action::SilenceCreate { .. }) {
            "comment"
        } else {
            "reason"
        };
        tail.push(Line::raw(format!(
            "{label} > {}▏",
            fit(input, inner.saturating_sub(11))
        )));
    } else if plan.action.is_bulk() {
        tail.push(Line::raw(format!(
            "reason (optional, kept in the audit) > {}▏",
            fit(input, inner.saturating_sub(40))
        )));
    }
}

fn running_lines(
    pen: &Pen<'_>,
    plan: &crate::actions::Plan,
    progress: Option<&crate::actions::Progress>,
    head: &mut Vec<Line<'static>>,
) {
    head.extend(pen.wrapped(&plan.summary, Item::Title));
    match progress {
        Some(p) => head.push(Line::raw(format!(
            "{} / {} · {} batches · {}",
            p.done,
            p.total,
            p.batches,
            p.rate()
                .map_or_else(|| "rate not known yet".to_owned(), |r| format!("{r:.0}/s"))
        ))),
        None if matches!(plan.action, crate::actions::Action::SendTestAlert { .. }) => {
            head.push(Line::raw(
                "sent; waiting for the worker to report how it went…",
            ));
        }
        None => head.push(Line::raw("starting…")),
    }
}

fn done_lines(
    pen: &Pen<'_>,
    plan: &crate::actions::Plan,
    result: &Result<crate::actions::Report, String>,
    head: &mut Vec<Line<'static>>,
) {
    head.extend(pen.wrapped(&plan.summary, Item::Title));
    match result {
        Ok(report) => {
            let item = match &report.test {
                Some(test) if !test.delivered() => Item::Error,
                _ => Item::Ok,
            };
            head.extend(pen.wrapped(&done_line(&plan.action, report), item));
            if let Some(remaining) = report.remaining {
                head.push(Line::raw(format!("still matching: {remaining}")));
            }
            head.push(pen.dim(&format!(
                "audit {} · batch {}",
                report.audit_id.as_deref().unwrap_or("not written"),
                plan.id
            )));
        }
        Err(error) => head.extend(pen.wrapped(error, Item::Error)),
    }
}
