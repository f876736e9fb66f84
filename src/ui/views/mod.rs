//! Drawing: a pure function of the app state (with its snapshot) and the theme. No I/O, no
//! awaits, no locks; every untrusted string goes through `widgets::fit` (sanitised).

mod breakers;
pub mod dlq;
mod grid;
mod lists;
pub mod mutt;
mod overlays;
mod overview;
pub mod parts;
mod silences;
mod slo;
mod wall;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::keymap::Command;
use super::state::View;
use super::theme::{Item, Theme};
use super::widgets::{age, clock, fit};
use crate::sources::{Freshness, SourceStatus};
use crate::ui::state::Scene;

/// The smallest terminal the layout is drawn in.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 12;

/// Draw one frame.
pub fn draw(scene: Scene<'_>, theme: &Theme, frame: &mut Frame) {
    let area = frame.area();
    // The theme's background everywhere, not only under text (a light theme on a dark terminal).
    frame.render_widget(Block::default().style(theme.style(Item::Text)), area);
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "terminal too small: {}×{} (needs {MIN_WIDTH}×{MIN_HEIGHT})",
            area.width, area.height
        );
        frame.render_widget(
            Paragraph::new(text)
                .style(theme.style(Item::Warn))
                .wrap(Wrap { trim: true }),
            area,
        );
        return;
    }
    let banner = stale_banner(scene);
    let [header, tabs, banner_area, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(if banner.is_some() { 3 } else { 0 }),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(scene, theme, frame, header);
    draw_tabs(scene, theme, frame, tabs);
    if let Some(text) = banner {
        let block = Paragraph::new(vec![Line::raw(""), Line::raw(text), Line::raw("")])
            .alignment(ratatui::layout::Alignment::Center)
            .style(theme.style(Item::StaleBanner));
        frame.render_widget(block, banner_area);
    }
    if let Some(m) = scene.snapshot.mutt.as_ref() {
        match scene.ui.view {
            _ if scene.ui.mode.wall && scene.ui.wall_page == 0 => {
                mutt::overview(scene, m, theme, frame, body);
            }
            View::Overview => mutt::overview(scene, m, theme, frame, body),
            View::Queues => mutt::queues(scene, m, theme, frame, body),
            View::Dlq => mutt::dlq(scene, m, theme, frame, body),
            View::Breakers => mutt::breakers(scene, m, theme, frame, body),
            View::Overrides => mutt::settings(scene, m, theme, frame, body),
            View::Audit => mutt::audit(scene, m, theme, frame, body),
            View::Slo => slo::draw(scene, theme, frame, body),
            View::Silences | View::Alerts => frame.render_widget(
                Paragraph::new(
                    "Silences and held-back alerts are Ward's own: MUTT keeps none that Ward reads",
                )
                .style(theme.style(Item::Dim))
                .block(block(theme, format!(" {} ", scene.ui.view.title()))),
                body,
            ),
        }
    } else if scene.snapshot.store.is_none() {
        draw_diagnostic(scene, theme, frame, body);
    } else if scene.ui.mode.wall && scene.ui.wall_page == 0 {
        wall::draw(scene, theme, frame, body);
    } else {
        match scene.ui.view {
            View::Overview => overview::draw(scene, theme, frame, body),
            View::Queues => lists::queues(scene, theme, frame, body),
            View::Dlq => dlq::draw(scene, theme, frame, body),
            View::Breakers => breakers::draw(scene, theme, frame, body),
            View::Overrides => lists::overrides(scene, theme, frame, body),
            View::Audit => lists::audit(scene, theme, frame, body),
            View::Slo => slo::draw(scene, theme, frame, body),
            View::Silences => silences::silences(scene, theme, frame, body),
            View::Alerts => silences::alerts(scene, theme, frame, body),
        }
    }
    draw_status(scene, theme, frame, status);
    overlays::draw(scene, theme, frame, body);
}

/// Blank `area` for an overlay, in the theme's background.
pub fn clear(theme: &Theme, frame: &mut Frame, area: Rect) {
    frame.render_widget(Clear, area);
    frame.render_widget(Block::default().style(theme.style(Item::Text)), area);
}

/// When scheduled work is next tried: `in 12s`, `due now`, or `-` when nothing waits.
pub fn next_try(now_ms: i64, next_due_ms: Option<i64>) -> String {
    match next_due_ms {
        None => "-".to_owned(),
        Some(due) if due <= now_ms => "due now".to_owned(),
        Some(due) => format!("in {}", age(u64::try_from(due - now_ms).unwrap_or(0))),
    }
}

/// A queue's scheduled count with its next try: `42 in 12s`, `3 due now`, `0`.
pub fn scheduled_cell(now_ms: i64, stats: &crate::model::QueueStats) -> String {
    if stats.scheduled == 0 {
        return "0".to_owned();
    }
    format!(
        "{} {}",
        super::widgets::count(stats.scheduled),
        next_try(now_ms, stats.waiting_retry.next_due_ms)
    )
}

/// The style of figures: dimmed while the source lags or is stale.
pub fn figure(scene: Scene<'_>, theme: &Theme, item: Item) -> Style {
    let style = theme.style(item);
    match scene.snapshot.sources.first().map(|s| s.freshness) {
        Some(Freshness::Fresh) | None => style,
        Some(_) => style
            .patch(theme.style(Item::Dim))
            .add_modifier(Modifier::DIM),
    }
}

/// The banner text when a source is stale.
fn stale_banner(scene: Scene<'_>) -> Option<String> {
    let source = scene
        .snapshot
        .sources
        .iter()
        .find(|s| s.freshness == Freshness::Stale)?;
    let since = source.last_ok_ms.map_or_else(|| "start".to_owned(), clock);
    let why = if source.refused {
        "refused"
    } else {
        "unreachable"
    };
    Some(format!(
        "STALE since {since} — {} {why} ({})",
        source.name,
        fit(source.last_error.as_deref().unwrap_or("no answer"), 160)
    ))
}

/// The header's badges: what is true of this session and deployment right now.
fn header_badges<'a>(scene: Scene<'_>, theme: &Theme) -> Vec<Span<'a>> {
    let snap = &scene.snapshot;
    let mut spans: Vec<Span> = Vec::new();
    let mut badge = |text: String, item: Item| {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(format!(" {text} "), theme.style(item)));
    };
    if scene.ui.mode.read_only.is_some() {
        badge("READ-ONLY".to_owned(), Item::BadgeReadOnly);
    }
    if scene.ui.frozen {
        badge("FROZEN".to_owned(), Item::BadgeFrozen);
    }
    if scene.stale() {
        badge("STALE".to_owned(), Item::BadgeStale);
    }
    if let Some(m) = snap.mutt.as_ref() {
        badge("MUTT".to_owned(), Item::Badge);
        if m.shedding.active() {
            badge(
                format!("SHEDDING {}", fit(&m.shedding.mode, 8)),
                Item::BadgeShedding,
            );
        }
        let open = m
            .breakers
            .iter()
            .filter(|b| b.effective_state() == "OPEN")
            .count();
        if open > 0 {
            badge(format!("{open} breaker open"), Item::BadgeStop);
        }
    }
    if let Some(store) = snap.store.as_ref() {
        if store.emergency_stop.is_some() {
            badge("■ STOPPED".to_owned(), Item::BadgeStop);
        } else if !store.channel_stops.is_empty() {
            badge(
                format!("■ {} channel stopped", store.channel_stops.len()),
                Item::BadgeStop,
            );
        }
        if store.shedding != crate::model::ShedMode::Off {
            // The mode only arms shedding: a queue over its shed depth is what sheds.
            let shedding_now: Vec<&str> = store
                .queues
                .iter()
                .filter(|q| q.over_shed)
                .map(|q| q.stats.queue.as_str())
                .collect();
            if shedding_now.is_empty() {
                badge(
                    format!("SHED {} armed · none over", store.shedding.as_str()),
                    Item::Badge,
                );
            } else {
                badge(
                    format!(
                        "SHEDDING {} now: {}",
                        store.shedding.as_str(),
                        shedding_now.join(",")
                    ),
                    Item::BadgeShedding,
                );
            }
        }
        if !store.overrides.is_empty() {
            badge(format!("{} overrides", store.overrides.len()), Item::Badge);
        }
        if let Some(text) = held_back_badge(&store.alerting) {
            badge(text, Item::Badge);
        }
    }
    spans
}

/// `2 held back`: alerts silenced or inhibited now (`None` when none), so every view shows
/// that alerts are being held back.
fn held_back_badge(alerting: &crate::sources::AlertingView) -> Option<String> {
    let held = alerting.silenced_now + alerting.inhibited_now;
    (held > 0).then(|| format!("{held} held back"))
}

fn draw_header(scene: Scene<'_>, theme: &Theme, frame: &mut Frame, area: Rect) {
    let snap = &scene.snapshot;
    let head = vec![
        Span::styled(
            " WARD ",
            theme.style(Item::Title).add_modifier(Modifier::BOLD),
        ),
        Span::raw(" "),
        Span::styled(
            format!(" {} ", fit(&snap.target.label, 24)),
            scene.ui.accent.map_or_else(
                || theme.style(Item::Accent),
                |c| Style::default().fg(c).add_modifier(Modifier::BOLD),
            ),
        ),
    ];
    let spans = header_badges(scene, theme);
    // Badges say what is happening; the address gives way to them on a narrow terminal.
    let fixed: usize = head.iter().chain(&spans).map(Span::width).sum();
    let room = usize::from(area.width).saturating_sub(fixed + 1);
    let address = format!("{} {}", snap.target.backend, snap.target.address);
    let mut line = head;
    if room >= 8 {
        line.push(Span::styled(
            format!(" {}", fit(&address, room - 1)),
            theme.style(Item::Dim),
        ));
    }
    line.extend(spans);
    let spans = line;
    let used: usize = spans.iter().map(Span::width).sum();
    frame.render_widget(
        Paragraph::new(Line::from(spans)).style(theme.style(Item::Header)),
        area,
    );
    let time = clock(scene.ui.now_ms);
    // Badges matter more than the clock on a narrow terminal.
    if used + time.len() + 6 > usize::from(area.width) {
        return;
    }
    let right = Rect {
        x: area.right().saturating_sub(time.len() as u16 + 5),
        width: time.len() as u16 + 5,
        ..area
    };
    frame.render_widget(
        Paragraph::new(format!("{time} UTC ")).style(theme.style(Item::Header)),
        right,
    );
}

/// Every view keeps its tab: full titles, else the current one's with the others short, else
/// short ones, else numbers with the current view's short title.
fn draw_tabs(scene: Scene<'_>, theme: &Theme, frame: &mut Frame, area: Rect) {
    let title = |view: View| match view {
        // MUTT keeps no overrides: that tab lists its settings.
        View::Overrides if scene.is_mutt() => "Settings",
        _ => view.title(),
    };
    let short = |view: View| match view {
        View::Overrides if scene.is_mutt() => "Set",
        _ => view.short_title(),
    };
    let tabs = |name: &dyn Fn(View) -> String, gap: &str| -> Vec<Span> {
        let mut spans = Vec::new();
        for (i, view) in View::ALL.iter().enumerate() {
            let style = if *view == scene.ui.view {
                theme.style(Item::Selection)
            } else {
                theme.style(Item::Text)
            };
            spans.push(Span::styled(format!(" {}{} ", i + 1, name(*view)), style));
            spans.push(Span::raw(gap.to_owned()));
        }
        spans
    };
    let width = |spans: &[Span]| spans.iter().map(Span::width).sum::<usize>();
    let room = usize::from(area.width);
    let mut spans = tabs(&|v| format!(" {}", title(v)), " ");
    if width(&spans) > room {
        // The current view keeps its whole title, the others are abbreviated.
        spans = tabs(
            &|v| {
                if v == scene.ui.view {
                    format!(" {}", title(v))
                } else {
                    format!(" {}", short(v))
                }
            },
            "",
        );
    }
    if width(&spans) > room {
        spans = tabs(&|v| format!(" {}", short(v)), "");
    }
    if width(&spans) > room {
        spans = tabs(
            &|v| {
                if v == scene.ui.view {
                    format!(" {}", short(v))
                } else {
                    String::new()
                }
            },
            "",
        );
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// Source ages on the left; the live key hints on the right.
fn draw_status(scene: Scene<'_>, theme: &Theme, frame: &mut Frame, area: Rect) {
    let mut spans = Vec::new();
    for source in &scene.snapshot.sources {
        spans.extend(source_span(scene, theme, source));
    }
    if let Some(store) = scene.snapshot.store.as_ref() {
        let (text, item) = workers_text(&store.workers);
        spans.push(Span::raw(" · "));
        spans.push(Span::styled(text, figure(scene, theme, item)));
    }
    if let Some(m) = scene.snapshot.mutt.as_ref() {
        let (text, item) = match m.pods.len() {
            0 => ("no live MUTT pods".to_owned(), Item::Error),
            1 => ("1 pod".to_owned(), Item::Ok),
            n => (format!("{n} pods"), Item::Ok),
        };
        spans.push(Span::raw(" · "));
        spans.push(Span::styled(text, figure(scene, theme, item)));
    }
    let hints = hint_line(scene, theme);
    let hints_width: u16 = hints.iter().map(|s| s.width() as u16).sum();
    let left_width = area.width.saturating_sub(hints_width + 1);
    // What does not fit is cut visibly (`…`), never in the middle of a word without a mark.
    let mut used: usize = spans.iter().map(Span::width).sum();
    if used > usize::from(left_width) {
        while used + 1 > usize::from(left_width) {
            let Some(last) = spans.pop() else { break };
            used -= last.width();
        }
        spans.push(Span::styled("…", theme.style(Item::Dim)));
    }
    frame.render_widget(
        Paragraph::new(Line::from(spans)),
        Rect {
            width: left_width,
            ..area
        },
    );
    if hints_width <= area.width {
        frame.render_widget(
            Paragraph::new(Line::from(hints)),
            Rect {
                x: area.right() - hints_width,
                width: hints_width,
                ..area
            },
        );
    }
    draw_toast(scene, theme, frame, area);
}

/// How many workers beat, and whether any consumes (ingest-only processes are named apart).
fn workers_text(workers: &crate::sources::snapshot::WorkersView) -> (String, Item) {
    let ingest_only = workers.live_ingest_only();
    match (workers.live, workers.newest_beat_age_ms) {
        (0, None) => ("no workers".to_owned(), Item::Warn),
        (0, Some(age_ms)) => (
            format!("no live workers (last beat {} ago)", age(age_ms)),
            Item::Error,
        ),
        (n, _) if workers.live_consumers == 0 => {
            (format!("no consumer ({n} ingest-only)"), Item::Error)
        }
        (n, _) if ingest_only > 0 => (format!("{n} workers ({ingest_only} ingest-only)"), Item::Ok),
        (1, _) => ("1 worker".to_owned(), Item::Ok),
        (n, _) => (format!("{n} workers"), Item::Ok),
    }
}

/// The newest toast, over the status line's right end.
fn draw_toast(scene: Scene<'_>, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(toast) = scene.ui.toasts.back() else {
        return;
    };
    let text = fit(&toast.text, area.width.saturating_sub(2) as usize);
    let width = (text.chars().count() as u16 + 2).min(area.width);
    let toast_area = Rect {
        x: area.right().saturating_sub(width),
        y: area.y.saturating_sub(1),
        width,
        height: 1,
    };
    clear(theme, frame, toast_area);
    let item = if toast.error {
        Item::ToastError
    } else {
        Item::Toast
    };
    frame.render_widget(
        Paragraph::new(format!(" {text} ")).style(theme.style(item)),
        toast_area,
    );
}

fn source_span<'a>(scene: Scene<'_>, theme: &Theme, source: &'a SourceStatus) -> Vec<Span<'a>> {
    let (text, item) = match (source.freshness, source.age_ms(scene.ui.now_ms)) {
        (Freshness::Connecting, _) => ("connecting…".to_owned(), Item::Warn),
        (Freshness::Fresh, Some(ms)) => (format!("{} ago", age(ms)), Item::Ok),
        (Freshness::Lagging, Some(ms)) => (format!("{} ago, retrying", age(ms)), Item::Warn),
        (_, ms) => (
            format!(
                "stale {}",
                ms.map_or_else(String::new, |ms| format!("{} ago", age(ms)))
            ),
            Item::Error,
        ),
    };
    vec![
        Span::styled(format!(" {} ", source.name), theme.style(Item::Dim)),
        Span::styled(text, theme.style(item)),
    ]
}

/// The always-visible hints, from the live keymap (only usable commands).
fn hint_line<'a>(scene: Scene<'_>, theme: &Theme) -> Vec<Span<'a>> {
    let wanted: &[Command] = match scene.ui.view {
        View::Dlq => &[
            Command::Filter,
            Command::Mark,
            Command::Replay,
            Command::Inspect,
            Command::Help,
            Command::Quit,
        ],
        View::Breakers => &[
            Command::ForceOpen,
            Command::ResetBreaker,
            Command::Help,
            Command::Quit,
        ],
        View::Overrides => &[Command::LiftOverride, Command::Help, Command::Quit],
        View::Silences => &[
            Command::ExpireSilence,
            Command::Silence,
            Command::Help,
            Command::Quit,
        ],
        View::Alerts => &[Command::Silence, Command::Help, Command::Quit],
        _ => &[
            Command::Replay,
            Command::ToggleShedding,
            Command::TestAlert,
            Command::Help,
            Command::Quit,
        ],
    };
    let mut spans = Vec::new();
    for &command in wanted {
        if !scene.available(command) {
            continue;
        }
        let Some(key) = scene.ui.keymap.key(command) else {
            continue;
        };
        spans.push(Span::styled(key.to_owned(), theme.style(Item::KeyHintKey)));
        spans.push(Span::styled(
            format!(":{} ", short_name(command)),
            theme.style(Item::KeyHint),
        ));
    }
    spans
}

fn short_name(command: Command) -> &'static str {
    match command {
        Command::ToggleShedding => "shed",
        Command::TestAlert => "test",
        Command::ForceOpen => "open",
        Command::ResetBreaker => "reset",
        Command::LiftOverride => "lift",
        Command::ExpireSilence => "expire",
        other => other.name(),
    }
}

/// Before the first good read: what was tried, the error, likely causes, the next attempt.
fn draw_diagnostic(scene: Scene<'_>, theme: &Theme, frame: &mut Frame, area: Rect) {
    let mut lines = vec![
        Line::styled("Waiting for the store", theme.style(Item::Title)),
        Line::raw(""),
    ];
    for source in &scene.snapshot.sources {
        lines.push(Line::from(vec![
            Span::styled("tried      ", theme.style(Item::Dim)),
            Span::raw(format!("{} at {}", source.name, fit(&source.address, 80))),
        ]));
        let error = source.last_error.as_deref().unwrap_or("(no answer yet)");
        lines.push(Line::from(vec![
            Span::styled("error      ", theme.style(Item::Dim)),
            Span::styled(fit(error, 100), theme.style(Item::Error)),
        ]));
        lines.push(Line::from(vec![
            Span::styled("attempts   ", theme.style(Item::Dim)),
            Span::raw(source.consecutive_failures.to_string()),
        ]));
        let next = u64::try_from(source.next_read_ms.saturating_sub(scene.ui.now_ms)).unwrap_or(0);
        lines.push(Line::from(vec![
            Span::styled("next try   ", theme.style(Item::Dim)),
            Span::raw(format!("in {}", age(next))),
        ]));
        lines.push(Line::raw(""));
        for cause in likely_causes(error) {
            lines.push(Line::raw(format!("  • {cause}")));
        }
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "The dashboard opens by itself once a read succeeds. q quits.",
        theme.style(Item::Dim),
    ));
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.style(Item::Border));
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn likely_causes(error: &str) -> Vec<&'static str> {
    let e = error.to_lowercase();
    let mut causes = Vec::new();
    if e.contains("refused") {
        causes.push(
            "Redis is not running, or listens on another port (check --redis / store.redis_url)",
        );
    }
    if e.contains("tls") || e.contains("handshake") || e.contains("certificate") {
        causes.push("TLS: a TLS server needs a rediss:// URL (and a plain one redis://)");
    }
    if e.contains("auth") || e.contains("noperm") || e.contains("wrongpass") {
        causes.push("authentication: check the user and password in the URL");
    }
    if e.contains("no answer") || e.contains("timed out") || e.contains("timeout") {
        causes.push("no answer: a firewall, a wrong host, or a Redis busy with a long command");
    }
    if e.contains("dns") || e.contains("resolve") || e.contains("lookup") {
        causes.push("the host name does not resolve");
    }
    if causes.is_empty() {
        causes.push("see the error above; `ward config path` shows which config file was read");
    }
    causes
}

/// A bordered block with a title, focused or not.
pub fn block<'a>(theme: &Theme, title: impl Into<Line<'a>>) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.style(Item::Border))
        .title(title)
        .title_style(theme.style(Item::Title))
}
