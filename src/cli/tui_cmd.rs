//! `ward tui` (attach the control room to a deployment) and `ward demo` (engine and control room
//! in one process on the memory store, with synthetic traffic and injected faults).

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::actions::{Actions, Actor, Operator, Origin, Policy, Settings};
use crate::config::Config;
use crate::store::Store;
use crate::ui::run::Runner;
use crate::ui::{App, Keymap, Mode, Theme};

/// Options of the control room (`ward tui`, `ward demo`).
#[derive(Debug, Clone, Default, Args)]
#[allow(clippy::struct_excessive_bools)] // independent command-line switches
pub struct TuiArgs {
    /// Allow actions even if tui.read_only is set in the config (--read-only wins)
    #[arg(long)]
    pub write: bool,
    /// Wall display: large type, read-only, optional view cycling (tui.wall_cycle_s)
    #[arg(long)]
    pub wall: bool,
    /// Theme: default, dark, light, high-contrast or a file in <config dir>/themes (overrides tui.theme)
    #[arg(long, value_name = "NAME")]
    pub theme: Option<String>,
    /// Milliseconds between reads of the store (overrides tui.refresh_ms; floor 250)
    #[arg(long, value_name = "MS")]
    pub refresh_ms: Option<u64>,
    /// Colourless output even where NO_COLOR is not set
    #[arg(long)]
    pub no_color: bool,
    /// Write the main views as SVG and text into DIR after the demo has run a while, then exit
    /// (no terminal needed; screenshots/make.sh turns them into PNGs)
    #[arg(long, value_name = "DIR", hide = true)]
    pub screenshots: Option<std::path::PathBuf>,
    /// Where theme files are looked up (next to the config file).
    #[arg(skip)]
    pub theme_dirs: Vec<std::path::PathBuf>,
    /// Why the whole run is read-only (the global `--read-only`), if it is.
    #[arg(skip)]
    pub read_only: Option<String>,
}

/// `ward tui`.
pub fn tui(config: &Config, args: &TuiArgs) -> anyhow::Result<()> {
    require_terminal()?;
    let runtime = runtime()?;
    runtime.block_on(async {
        let stop = CancellationToken::new();
        let config = &super::attached(config);
        if config.store.profile == crate::model::Profile::Mutt {
            let store = crate::store::open_mutt(config).await.map_err(|error| {
                if error.is_permanent() {
                    anyhow::Error::new(super::UsageError(format!(
                        "cannot attach to the MUTT deployment: {error}"
                    )))
                } else {
                    anyhow::Error::new(error).context("cannot reach the MUTT deployment's redis")
                }
            })?;
            let slo = crate::sources::slo::from_config(config, None, &stop)
                .map_err(anyhow::Error::msg)?;
            let runner = mutt_runner(config, args, store, slo, &stop)?;
            let result = crate::ui::run::run(runner, stop.clone()).await;
            stop.cancel();
            return result;
        }
        let store = crate::store::open_attached(&config.store)
            .await
            .context("cannot open the redis store")?;
        let channels = config
            .delivery
            .channels
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        let slo =
            crate::sources::slo::from_config(config, None, &stop).map_err(anyhow::Error::msg)?;
        let runner = runner(config, args, store, channels, slo, &stop)?;
        let result = crate::ui::run::run(runner, stop.clone()).await;
        stop.cancel();
        result
    })
}

/// `ward demo`.
pub fn demo(config: &Config, args: &TuiArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.screenshots {
        return screenshots(config, args, dir);
    }
    require_terminal()?;
    let runtime = runtime()?;
    runtime.block_on(async {
        let stop = CancellationToken::new();
        let (demo, runner) = start_demo(config, args, &stop).await?;
        let result = crate::ui::run::run(runner, stop.clone()).await;
        stop.cancel();
        demo.join().await;
        result
    })
}

/// The demo engine and a control room attached to it (labelled `demo` unless configured).
async fn start_demo(
    config: &Config,
    args: &TuiArgs,
    stop: &CancellationToken,
) -> anyhow::Result<(crate::pipeline::demo::Demo, Runner)> {
    let demo = crate::pipeline::demo::start(config, stop).await?;
    let mut config = config.clone();
    if config.tui.label.is_empty() {
        "demo".clone_into(&mut config.tui.label);
    }
    let metrics = demo.metrics.clone();
    let slo = crate::sources::slo::spawn_local(
        move || metrics.render(),
        demo.slos.clone(),
        crate::sources::slo::LOCAL_INTERVAL,
        stop.child_token(),
    );
    let runner = runner(
        &config,
        args,
        demo.store.clone(),
        demo.channels.clone(),
        Some(slo),
        stop,
    )?;
    Ok((demo, runner))
}

fn require_terminal() -> anyhow::Result<()> {
    if std::io::stdout().is_terminal() && std::io::stdin().is_terminal() {
        Ok(())
    } else {
        Err(super::UsageError(
            "the control room needs a terminal; for scripts use `ward status` (headless)"
                .to_owned(),
        )
        .into())
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Why this session may not act, if it may not.
fn read_only_reason(config: &Config, args: &TuiArgs) -> Option<String> {
    if args.wall {
        Some("--wall".to_owned())
    } else if let Some(why) = &args.read_only {
        Some(why.clone())
    } else if config.tui.read_only && !args.write {
        Some("tui.read_only in the config".to_owned())
    } else {
        None
    }
}

fn poller(config: &Config, args: &TuiArgs) -> crate::sources::PollerConfig {
    let refresh = Duration::from_millis(args.refresh_ms.unwrap_or(config.tui.refresh_ms).max(250));
    let mut poller = crate::headless::poller_config(config, refresh);
    poller.target.read_only = read_only_reason(config, args);
    poller
}

fn settings(config: &Config) -> Settings {
    Settings {
        batch_size: config.dlq.replay_batch,
        max_replays: config.queues.max_replays,
        ..Settings::default()
    }
}

fn policy(config: &Config, args: &TuiArgs) -> Policy {
    match read_only_reason(config, args) {
        Some(why) => Policy::read_only(why),
        None => Policy::writable(),
    }
}

/// The control room attached to a MUTT deployment: MUTT's figures, MUTT's actions.
fn mutt_runner(
    config: &Config,
    args: &TuiArgs,
    store: crate::store::mutt::MuttStore,
    slo: Option<crate::sources::slo::SloFeed>,
    stop: &CancellationToken,
) -> anyhow::Result<Runner> {
    let source =
        crate::sources::spawn_mutt(store.clone(), poller(config, args), slo, stop.child_token());
    let actions = Operator::Mutt(crate::actions::mutt::MuttActions {
        store: Arc::new(store),
        policy: policy(config, args),
        actor: Actor::current(),
        origin: Origin::Key,
        target: crate::headless::status::action_target(config),
        settings: settings(config),
    });
    finish_runner(config, args, source, actions, Vec::new())
}

/// Everything the loop needs: the poller, the app state, the theme and the actions context.
pub fn runner(
    config: &Config,
    args: &TuiArgs,
    store: Arc<dyn Store>,
    channels: Vec<String>,
    slo: Option<crate::sources::slo::SloFeed>,
    stop: &CancellationToken,
) -> anyhow::Result<Runner> {
    let mut poller = poller(config, args);
    // The demo's engine shares its in-process store with the control room.
    store.backend_name().clone_into(&mut poller.target.backend);
    if poller.target.backend == "memory" {
        "in-process".clone_into(&mut poller.target.address);
    }
    let source = crate::sources::spawn_with_slo(store.clone(), poller, slo, stop.child_token());
    let actions = Operator::Ward(Actions {
        store,
        policy: policy(config, args),
        actor: Actor::current(),
        origin: Origin::Key,
        target: crate::headless::status::action_target(config),
        settings: settings(config),
        channels: channels.clone(),
        silences: config.alerting.silence_policy(),
    });
    finish_runner(config, args, source, actions, channels)
}

fn finish_runner(
    config: &Config,
    args: &TuiArgs,
    source: crate::sources::SourceHandle,
    actions: Operator,
    channels: Vec<String>,
) -> anyhow::Result<Runner> {
    let tui = &config.tui;
    let read_only = read_only_reason(config, args);
    let theme_name = args.theme.clone().unwrap_or_else(|| tui.theme.clone());
    let mut theme = Theme::load(&theme_name, &args.theme_dirs)?;
    if args.no_color || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        theme = theme.no_color();
    }
    let keymap = keymap(config)?;
    let mode = Mode {
        read_only: read_only.clone(),
        wall: args.wall,
        no_exit_on_ctrl_c: tui.no_exit_on_ctrl_c,
        lock_refresh: tui.lock_refresh,
    };
    let mut app = App::new(mode, keymap, channels, source.latest());
    app.ui.accent = crate::ui::theme::parse_color(&tui.accent);
    let wall_cycle =
        (args.wall && tui.wall_cycle_s > 0).then(|| Duration::from_secs(tui.wall_cycle_s));
    Ok(Runner {
        app,
        theme,
        source,
        actions,
        wall_cycle,
    })
}

/// The effective keymap; the binary has checked the bindings with the config already.
fn keymap(config: &Config) -> anyhow::Result<Keymap> {
    Keymap::new(&config.tui.bindings)
        .map_err(|error| super::UsageError(format!("tui.bindings: {error}")).into())
}

/// Printed after the control room closes, so the incident channel has a trace.
pub fn farewell(out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "ward: control room closed (if the terminal looks wrong, run `reset`)"
    )
}

/// `ward keys`: the effective bindings (defaults with `[tui.bindings]` applied).
pub fn keys(config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let keymap = keymap(config)?;
    writeln!(
        out,
        "{:<22} {:<18} {:<9} what",
        "command", "keys", "changes"
    )?;
    for &command in crate::ui::Command::ALL {
        writeln!(
            out,
            "{:<22} {:<18} {:<9} {}",
            command.name(),
            keymap.keys(command).join(" "),
            if command.is_mutating() { "yes" } else { "no" },
            command.help()
        )?;
    }
    Ok(())
}

/// When the demo's screenshots are taken: the hero while traffic flows and Slack is healthy
/// (before its first failure wave), the rest mid-way through that wave, with the breaker open,
/// the DLQ growing and the first burst tripping shedding.
const HERO_AFTER: Duration = Duration::from_secs(19);
const SCREENSHOT_AFTER: Duration = Duration::from_secs(36);

/// `ward demo --screenshots DIR`: the real engine and the real views, drawn off-screen.
fn screenshots(config: &Config, args: &TuiArgs, dir: &std::path::Path) -> anyhow::Result<()> {
    use crate::ui::View;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let runtime = runtime()?;
    runtime.block_on(async {
        let stop = CancellationToken::new();
        let (demo, mut runner) = start_demo(config, args, &stop).await?;
        let started = tokio::time::Instant::now();
        let mut shots: Vec<(String, crate::ui::App)> = Vec::new();
        tokio::time::sleep_until(started + HERO_AFTER).await;
        fresh_view(&mut runner, View::Overview).await;
        shots.push(("overview".to_owned(), runner.app.clone()));
        tokio::time::sleep_until(started + SCREENSHOT_AFTER).await;
        for view in View::ALL {
            fresh_view(&mut runner, view).await;
            let name = match view {
                View::Overview => "incident".to_owned(),
                _ => view.title().to_lowercase(),
            };
            shots.push((name, runner.app.clone()));
        }
        shots.extend(overlay_shots(&mut runner).await);
        for (name, app) in shots {
            let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(160, 48))?;
            terminal.draw(|frame| crate::ui::views::draw(app.scene(), &runner.theme, frame))?;
            let buffer = terminal.backend().buffer();
            std::fs::write(
                dir.join(format!("{name}.svg")),
                crate::ui::export::svg(buffer),
            )?;
            std::fs::write(
                dir.join(format!("{name}.txt")),
                crate::ui::export::text(buffer),
            )?;
        }
        stop.cancel();
        demo.join().await;
        Ok(())
    })
}

/// Show `view` and wait for one fresh read, so its page (the DLQ's) is in the snapshot drawn.
async fn fresh_view(runner: &mut Runner, view: crate::ui::View) {
    for effect in runner.app.show(view) {
        if let crate::ui::Effect::Browse(query) = effect {
            runner.source.browse(query);
        }
    }
    let mut rx = runner.source.subscribe();
    let app = &mut runner.app;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while rx.changed().await.is_ok() {
            let snapshot = rx.borrow_and_update().clone();
            let ready = view != crate::ui::View::Dlq || snapshot.dlq_page.is_some();
            app.on_snapshot(snapshot);
            if ready {
                break;
            }
        }
    })
    .await;
}

/// The help, the wall, a replay's confirm dialog planned by the real engine, the inspector on
/// a DLQ entry, and the STALE banner (the demo's in-process store never goes away: its source
/// status is marked as a failed Redis's would be).
async fn overlay_shots(runner: &mut Runner) -> Vec<(String, crate::ui::App)> {
    use crate::ui::View;
    let mut shots = Vec::new();
    let mut help = runner.app.clone();
    help.show(View::Overview);
    help.run(crate::ui::Command::Help);
    shots.push(("help".to_owned(), help));
    let mut wall = runner.app.clone();
    wall.ui.mode.wall = true;
    shots.push(("wall".to_owned(), wall));
    fresh_view(runner, View::Dlq).await;
    let mut inspector = runner.app.clone();
    inspector.run(crate::ui::Command::Inspect);
    shots.push(("inspector".to_owned(), inspector));
    let mut confirm = runner.app.clone();
    for effect in confirm.run(crate::ui::Command::Replay) {
        if let crate::ui::Effect::Plan { ticket, action, .. } = effect {
            let planned = runner.actions.plan(action).await.map_err(|e| e.to_string());
            confirm.job(ticket, crate::ui::app::JobEvent::Planned(planned));
        }
    }
    shots.push(("confirm".to_owned(), confirm));
    let mut stale = runner.app.clone();
    stale.show(View::Overview);
    let mut snapshot = crate::sources::Snapshot::clone(&stale.snapshot);
    for source in &mut snapshot.sources {
        source.freshness = crate::sources::Freshness::Stale;
        source.failing_since_ms = source.last_ok_ms;
        source.consecutive_failures = 4;
        source.last_error = Some("no answer within 2s".to_owned());
    }
    stale.on_snapshot(std::sync::Arc::new(snapshot));
    shots.push(("stale".to_owned(), stale));
    shots
}

/// `ward themes [--items]`.
pub fn themes(items: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    use crate::ui::theme::Item;
    if items {
        for item in Item::ALL {
            writeln!(out, "{:<16} {}", item.name(), item.describe())?;
        }
    } else {
        for name in Theme::BUILTIN {
            writeln!(out, "{name}")?;
        }
        writeln!(
            out,
            "(files in <config dir>/themes/<name>.toml add to these; `extends` one to change a few items)"
        )?;
    }
    Ok(())
}
