//! The control room's loop: terminal lifecycle (panic hook, signals, hang-up, suspend, resize),
//! input, snapshots and job results in; a frame out only when something changed, wrapped in
//! synchronized output. Actions run as single-flight jobs on the runtime, never on this loop.

use std::io::Write;
use std::time::Duration;

use crossterm::event::{Event, EventStream, KeyEventKind};
use crossterm::terminal::{BeginSynchronizedUpdate, EndSynchronizedUpdate};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::app::{App, Effect, JobEvent, View};
use super::theme::Theme;
use crate::actions::{Operator, Origin};
use crate::sources::SourceHandle;

/// What the loop needs besides the app state.
pub struct Runner {
    pub app: App,
    pub theme: Theme,
    pub source: SourceHandle,
    /// The actions context (store, policy, actor, target, settings); origin is set per action.
    pub actions: Operator,
    /// Wall display: switch views this often.
    pub wall_cycle: Option<Duration>,
}

/// Run the control room in this terminal until quit, a signal or a hang-up.
pub async fn run(mut runner: Runner, stop: CancellationToken) -> anyhow::Result<()> {
    let mut terminal = ratatui::init();
    let result = event_loop(&mut runner, &mut terminal, &stop).await;
    ratatui::restore();
    result
}

async fn event_loop(
    runner: &mut Runner,
    terminal: &mut ratatui::DefaultTerminal,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let mut events = EventStream::new();
    let mut snapshots = runner.source.subscribe();
    let (jobs_tx, mut jobs) = mpsc::unbounded_channel();
    let mut running: Option<CancellationToken> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut signals = Signals::new()?;
    let mut last_cycle = tokio::time::Instant::now();
    let mut dirty = true;
    loop {
        if dirty {
            draw(terminal, &runner.app, &runner.theme)?;
            dirty = false;
        }
        let effects = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            () = signals.next() => return Ok(()),
            event = events.next() => match event {
                Some(Ok(Event::Key(key))) if key.kind != KeyEventKind::Release => {
                    dirty = true;
                    runner.app.key(key)
                }
                Some(Ok(Event::Resize(..))) => {
                    dirty = true;
                    Vec::new()
                }
                Some(Ok(_)) => Vec::new(),
                // The terminal is gone (closed pty, hang-up): quit rather than spin.
                Some(Err(_)) | None => return Ok(()),
            },
            changed = snapshots.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
                let snapshot = snapshots.borrow_and_update().clone();
                dirty = runner.app.snapshot.version != snapshot.version || !runner.app.ui.frozen;
                runner.app.on_snapshot(snapshot);
                if dirty {
                    // This frame shows the ages too: the next tick is a second after it, so a
                    // screen refreshed every second is drawn once a second, not twice.
                    runner.app.tick(runner.actions.now_ms());
                    tick.reset();
                }
                Vec::new()
            }
            Some((ticket, job)) = jobs.recv() => {
                dirty = true;
                runner.app.job(ticket, job)
            }
            _ = tick.tick() => {
                dirty = true;
                on_tick(runner, &mut last_cycle)
            }
        };
        for effect in effects {
            match apply(effect, runner, terminal, &jobs_tx, &mut running)? {
                After::Quit => return Ok(()),
                After::Redraw => dirty = true,
                After::Continue => {}
            }
        }
    }
}

/// A second passed: ages and toasts tick (nothing else redraws an idle screen), and a wall
/// cycling its views shows the next one when its time is up.
fn on_tick(runner: &mut Runner, last_cycle: &mut tokio::time::Instant) -> Vec<Effect> {
    runner.app.tick(runner.actions.now_ms());
    let Some(every) = runner.wall_cycle else {
        return Vec::new();
    };
    if last_cycle.elapsed() < every {
        return Vec::new();
    }
    *last_cycle = tokio::time::Instant::now();
    // The large-type summary, then each view in turn.
    runner.app.ui.wall_page = (runner.app.ui.wall_page + 1) % (View::ALL.len() + 1);
    let view = View::ALL[runner.app.ui.wall_page.saturating_sub(1)];
    runner.app.show(view)
}

/// What an effect asks of the event loop afterwards.
enum After {
    Continue,
    Redraw,
    Quit,
}

/// Carry out one effect the app asked for: store reads, planning and running actions (as
/// tasks that report back on `jobs`), the clipboard, suspending.
fn apply(
    effect: Effect,
    runner: &mut Runner,
    terminal: &mut ratatui::DefaultTerminal,
    jobs: &mpsc::UnboundedSender<(u64, JobEvent)>,
    running: &mut Option<CancellationToken>,
) -> anyhow::Result<After> {
    match effect {
        Effect::Quit => return Ok(After::Quit),
        Effect::Refresh => runner.source.refresh(),
        Effect::Browse(query) => runner.source.browse(query),
        Effect::BrowseMutt(query) => runner.source.browse_mutt(query),
        Effect::Plan {
            ticket,
            action,
            origin,
            settings,
        } => {
            let actions = context(&runner.actions, origin, settings);
            let tx = jobs.clone();
            tokio::spawn(async move {
                let plan = actions.plan(action).await.map_err(|e| e.to_string());
                let _ = tx.send((ticket, JobEvent::Planned(plan)));
            });
        }
        Effect::Execute {
            ticket,
            plan,
            origin,
            settings,
        } => {
            let actions = context(&runner.actions, origin, settings);
            let cancel = CancellationToken::new();
            *running = Some(cancel.clone());
            let tx = jobs.clone();
            tokio::spawn(async move {
                let progress_tx = tx.clone();
                let mut progress = move |p: &crate::actions::Progress| {
                    let _ = progress_tx.send((ticket, JobEvent::Progress(p.clone())));
                };
                let report = actions
                    .execute(&plan, &cancel, &mut progress)
                    .await
                    .map_err(|e| e.to_string());
                let _ = tx.send((ticket, JobEvent::Finished(report)));
            });
        }
        Effect::Cancel => {
            if let Some(cancel) = running.take() {
                cancel.cancel();
            }
        }
        Effect::Copy(text) => copy_osc52(&text)?,
        Effect::Suspend => {
            suspend(terminal)?;
            return Ok(After::Redraw);
        }
    }
    Ok(After::Continue)
}

fn context(base: &Operator, origin: Origin, settings: super::command::RunSettings) -> Operator {
    let mut actions = base.clone();
    actions.set_origin(origin);
    settings.apply(actions.settings_mut());
    actions
}

/// One frame, wrapped so the terminal shows it whole (no tearing over SSH).
fn draw(terminal: &mut ratatui::DefaultTerminal, app: &App, theme: &Theme) -> std::io::Result<()> {
    crossterm::queue!(std::io::stdout(), BeginSynchronizedUpdate)?;
    terminal.draw(|frame| super::views::draw(app.scene(), theme, frame))?;
    crossterm::execute!(std::io::stdout(), EndSynchronizedUpdate)?;
    Ok(())
}

/// ctrl-z: give the terminal back, stop, and redraw everything on resume.
fn suspend(terminal: &mut ratatui::DefaultTerminal) -> anyhow::Result<()> {
    ratatui::restore();
    #[cfg(unix)]
    signal_hook::low_level::raise(signal_hook::consts::SIGTSTP)?;
    *terminal = ratatui::init();
    terminal.clear()?;
    Ok(())
}

/// Copy through the terminal (works over SSH): OSC 52.
fn copy_osc52(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout();
    write!(out, "\u{1b}]52;c;{}\u{7}", base64(text.as_bytes()))?;
    out.flush()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// SIGTERM and SIGHUP end the control room cleanly (raw mode turns off ISIG, so ctrl-c is a
/// key, but these still arrive).
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                term: signal(SignalKind::terminate())?,
                hup: signal(SignalKind::hangup())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.hup.recv() => {}
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(super::base64(b""), "");
        assert_eq!(super::base64(b"f"), "Zg==");
        assert_eq!(super::base64(b"fo"), "Zm8=");
        assert_eq!(super::base64(b"foo"), "Zm9v");
        assert_eq!(super::base64(b"foobar"), "Zm9vYmFy");
    }
}
