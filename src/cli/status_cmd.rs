//! `ward status`, `ward watch` and `ward check`: the control room's snapshot without the control
//! room, for scripts, cron and monitoring.

use std::io::Write;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use super::{Exit, UsageError, attached};
use crate::config::Config;
use crate::headless::status::{self, SloReader, Status};
use crate::headless::{Thresholds, render};
use crate::model::Profile;
use crate::sources::poller::Attached;
use crate::sources::poller::Builder;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum StatusFormat {
    #[default]
    Text,
    Json,
    Markdown,
}

/// `ward status`.
#[derive(Debug, Clone, Default, Args)]
pub struct StatusArgs {
    /// text (a summary), json (the versioned document, see --schema) or markdown (for an
    /// incident channel)
    #[arg(long, value_enum, default_value_t = StatusFormat::Text)]
    pub format: StatusFormat,
    /// Print the JSON Schema of `--format json` and exit
    #[arg(long)]
    pub schema: bool,
    /// With --profile mutt: also list this DLQ's entries (alerter, moog or dead), newest first,
    /// secrets redacted
    #[arg(long, value_name = "DLQ")]
    pub dlq: Option<String>,
    /// Entries to skip from the newest (with --dlq)
    #[arg(long, default_value_t = 0, requires = "dlq", value_name = "N")]
    pub offset: u64,
    /// Entries to list (with --dlq)
    #[arg(long, default_value_t = 20, requires = "dlq", value_name = "N")]
    pub limit: u64,
}

impl StatusArgs {
    /// The MUTT DLQ page `--dlq` asks for.
    fn page(&self, config: &Config) -> anyhow::Result<Option<crate::model::mutt::MuttPageQuery>> {
        let Some(text) = self.dlq.as_deref() else {
            return Ok(None);
        };
        if config.store.profile != Profile::Mutt {
            return Err(UsageError(
                "--dlq lists a MUTT DLQ (--profile mutt); Ward's own DLQ is browsed in the control room"
                    .to_owned(),
            )
            .into());
        }
        let dlq = crate::model::mutt::MuttDlqName::parse(text).ok_or_else(|| {
            UsageError(format!(
                "--dlq {:?} is not alerter, moog or dead",
                crate::model::sanitize(text)
            ))
        })?;
        Ok(Some(crate::model::mutt::MuttPageQuery {
            dlq,
            offset: self.offset,
            limit: self.limit.clamp(1, 1_000),
        }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum WatchFormat {
    /// One JSON status document per line
    #[default]
    Ndjson,
    Text,
}

/// `ward watch`.
#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    /// Time between reads: 2s, 1m (at least 250ms)
    #[arg(long, default_value = "2s", value_parser = parse_interval)]
    pub interval: Duration,
    #[arg(long, value_enum, default_value_t = WatchFormat::Ndjson)]
    pub format: WatchFormat,
    /// Stop after this many reads [default: until interrupted]
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

/// A threshold, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(pub Option<u64>);

impl FromStr for Limit {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        if text == "off" {
            return Ok(Self(None));
        }
        text.parse::<u64>()
            .map(|n| Self(Some(n)))
            .map_err(|_| format!("{text:?} is not a number or off"))
    }
}

/// A time threshold (`60s`, `5m`), or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgeLimit(pub Option<u64>);

impl FromStr for AgeLimit {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        if text == "off" {
            return Ok(Self(None));
        }
        crate::ui::command::duration_ms(text)
            .map(|ms| Self(Some(ms as u64)))
            .ok_or_else(|| format!("{text:?} is not a duration (90s, 5m, 2h) or off"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum CheckFormat {
    /// One line per finding (a single OK line when there is none)
    #[default]
    Text,
    /// {"severity", "exit_code", "findings", "status"}
    Json,
}

/// `ward check`: exit 0 ok, 1 warning, 2 critical, 3 unknown or unreachable.
#[derive(Debug, Clone, Args)]
#[command(
    next_help_heading = "Thresholds (a number, a duration, or off)",
    after_help = "Always checked: a source that cannot be read (unknown); an open breaker \
        (critical) and a half-open, forced or disabled one (warning); a queue with work and no \
        live worker (critical); an emergency stop (critical for all sending, warning for one \
        channel); load shedding (warning); SLOs (a firing page is critical, a ticket a warning). \
        The worst finding is the exit code; known problems rank above unknowns."
)]
pub struct CheckArgs {
    /// DLQ entries at which a queue warns
    #[arg(long, default_value = "off", value_name = "N")]
    pub dlq_warn: Limit,
    /// DLQ entries at which a queue is critical
    #[arg(long, default_value = "off", value_name = "N")]
    pub dlq_crit: Limit,
    /// DLQ growth: entries failed in the last 5 minutes at which a queue warns
    #[arg(long, default_value = "1", value_name = "N")]
    pub dlq_growth_warn: Limit,
    /// DLQ growth: entries failed in the last 5 minutes at which a queue is critical
    #[arg(long, default_value = "off", value_name = "N")]
    pub dlq_growth_crit: Limit,
    /// Queue depth that warns (a queue's own warn and shed depths apply too)
    #[arg(long, default_value = "off", value_name = "N")]
    pub depth_warn: Limit,
    /// Queue depth that is critical
    #[arg(long, default_value = "off", value_name = "N")]
    pub depth_crit: Limit,
    /// Age of the oldest waiting item that warns
    #[arg(long, default_value = "60s", value_name = "AGE")]
    pub oldest_warn: AgeLimit,
    /// Age of the oldest waiting item that is critical
    #[arg(long, default_value = "5m", value_name = "AGE")]
    pub oldest_crit: AgeLimit,
    /// An SLO that cannot be decided (no traffic, absent series) warns instead of passing
    #[arg(long)]
    pub slo_unknown_warns: bool,
    /// Warn about active silences ending within this long (e.g. 15m); off by default
    #[arg(long, default_value = "off", value_name = "AGE")]
    pub silences_ending: AgeLimit,
    #[arg(long, value_enum, default_value_t = CheckFormat::Text, help_heading = "Output")]
    pub format: CheckFormat,
}

impl CheckArgs {
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            dlq_warn: self.dlq_warn.0,
            dlq_crit: self.dlq_crit.0,
            dlq_recent_warn: self.dlq_growth_warn.0,
            dlq_recent_crit: self.dlq_growth_crit.0,
            depth_warn: self.depth_warn.0,
            depth_crit: self.depth_crit.0,
            oldest_warn_ms: self.oldest_warn.0,
            oldest_crit_ms: self.oldest_crit.0,
            slo_unknown_warns: self.slo_unknown_warns,
            silences_ending_ms: self.silences_ending.0,
        }
    }
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    let ms = match text.strip_suffix("ms") {
        Some(n) => n.parse::<i64>().ok(),
        None => crate::ui::command::duration_ms(text),
    }
    .ok_or_else(|| format!("{text:?} is not a duration (500ms, 2s, 1m)"))?;
    Ok(Duration::from_millis(ms.max(250) as u64))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // One thread: a status read is a handful of round trips, and startup time is the budget.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Attach for reading only: on Redis nothing is written, not even a layout mark.
async fn open(config: &Config) -> Result<Attached, crate::store::StoreError> {
    match config.store.profile {
        Profile::Ward => crate::store::open_observer(&config.store)
            .await
            .map(Attached::Ward),
        Profile::Mutt => crate::store::open_mutt(config).await.map(Attached::Mutt),
    }
}

/// A read that cannot succeed by asking again: the profile's settings are wrong (exit 2, and
/// `ward watch` stops), never reported as an unreachable store.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the deployment: {0}")]
pub struct Refused(pub String);

/// What a headless read needs: the store (opened lazily, retried while it fails) and the SLO
/// source, with one builder so a second read has rates.
struct Reader {
    config: Config,
    store: Option<Attached>,
    slo: Option<SloReader>,
    /// The last SLO read: Prometheus is asked at most every `PROMETHEUS_INTERVAL`, however
    /// often `ward watch` reads the store.
    last_slo: Option<(std::time::Instant, Arc<crate::sources::slo::SloSection>)>,
    builder: Builder,
    /// A MUTT DLQ page to read along (`ward status --dlq`).
    page: Option<crate::model::mutt::MuttPageQuery>,
}

impl Reader {
    fn new(config: &Config, interval: Duration) -> anyhow::Result<Self> {
        let slo = SloReader::from_config(config).map_err(UsageError)?;
        let poller = status::poller_config(config, interval);
        let builder = Builder::new(poller, config.store.backend.as_str(), now_ms());
        Ok(Self {
            config: config.clone(),
            store: None,
            slo,
            last_slo: None,
            builder,
            page: None,
        })
    }

    async fn read(&mut self) -> Result<Status, Refused> {
        let now = now_ms();
        let fresh = self
            .last_slo
            .as_ref()
            .filter(|(at, _)| at.elapsed() < crate::sources::slo::PROMETHEUS_INTERVAL);
        let slo = async {
            match (&self.slo, fresh) {
                (_, Some((_, section))) => Some((None, section.clone())),
                (Some(reader), None) => reader
                    .read_once(now)
                    .await
                    .map(|section| (Some(std::time::Instant::now()), Arc::new(section))),
                (None, None) => None,
            }
        };
        let store = async {
            if self.store.is_none() {
                match open(&self.config).await {
                    Ok(store) => self.store = Some(store),
                    Err(error) if error.is_permanent() => return Err(Refused(error.to_string())),
                    Err(error) => return Ok(Err(error.to_string())),
                }
            }
            Ok(Ok(()))
        };
        let (store, slo) = tokio::join!(store, slo);
        let slo = slo.map(|(read_at, section)| {
            if let Some(at) = read_at {
                self.last_slo = Some((at, section.clone()));
            }
            section
        });
        let opened = store?;
        match (&self.store, opened) {
            (Some(Attached::Ward(store)), Ok(())) => {
                Ok(status::read(Ok(store.as_ref()), &mut self.builder, slo, now).await)
            }
            (Some(Attached::Mutt(store)), Ok(())) => {
                status::read_mutt(Ok(store), &mut self.builder, slo, now, self.page)
                    .await
                    .map_err(Refused)
            }
            (_, Err(error)) => match self.config.store.profile {
                Profile::Ward => Ok(status::read(Err(&error), &mut self.builder, slo, now).await),
                Profile::Mutt => status::read_mutt(Err(&error), &mut self.builder, slo, now, None)
                    .await
                    .map_err(Refused),
            },
            (None, Ok(())) => {
                Ok(status::read(Err("not opened"), &mut self.builder, slo, now).await)
            }
        }
    }
}

pub fn status(config: &Config, args: &StatusArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    if args.schema {
        // Serialised first: a closed pipe must surface as an io::Error (a clean exit).
        writeln!(out, "{}", serde_json::to_string_pretty(&status::schema())?)?;
        return Ok(());
    }
    let config = attached(config);
    let mut reader = Reader::new(&config, Duration::from_millis(config.tui.refresh_ms))?;
    reader.page = args.page(&config)?;
    let status = runtime()?
        .block_on(reader.read())
        .map_err(|refused| UsageError(refused.to_string()))?;
    match args.format {
        StatusFormat::Json => {
            writeln!(out, "{}", crate::headless::json::to_string(&status)?)?;
        }
        StatusFormat::Text => out.write_all(render::text(&status).as_bytes())?,
        StatusFormat::Markdown => out.write_all(render::markdown(&status).as_bytes())?,
    }
    out.flush()?;
    if status.store_reachable() {
        Ok(())
    } else {
        Err(Exit(super::EXIT_UNREACHABLE).into())
    }
}

pub fn watch(config: &Config, args: &WatchArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let config = attached(config);
    let mut reader = Reader::new(&config, args.interval)?;
    // A worker thread hears ctrl-c even while this thread is blocked writing to a full pipe.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let interrupted = tokio_util::sync::CancellationToken::new();
    let on_interrupt = interrupted.clone();
    runtime.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_interrupt.cancel();
            // Stuck in a write nobody reads: leave anyway.
            tokio::time::sleep(Duration::from_secs(2)).await;
            std::process::exit(0);
        }
    });
    runtime.block_on(async {
        let mut tick = tokio::time::interval(args.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut printed = 0u64;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = interrupted.cancelled() => return Ok(()),
            }
            let status = tokio::select! {
                status = reader.read() => status.map_err(|refused| UsageError(refused.to_string()))?,
                () = interrupted.cancelled() => return Ok(()),
            };
            match args.format {
                WatchFormat::Ndjson => {
                    writeln!(out, "{}", crate::headless::json::to_string(&status)?)?;
                }
                WatchFormat::Text => writeln!(out, "{}", render::text(&status))?,
            }
            out.flush()?;
            printed += 1;
            if args.count.is_some_and(|n| printed >= n) {
                return Ok(());
            }
        }
    })
}

pub fn check(config: &Config, args: &CheckArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let config = attached(config);
    let mut reader = Reader::new(&config, Duration::from_millis(config.tui.refresh_ms))?;
    let status = match runtime()?.block_on(reader.read()) {
        Ok(status) => status,
        // A check that cannot run is UNKNOWN, as for a broken config: never CRITICAL.
        Err(refused) => {
            let line = format!(
                "UNKNOWN configuration: {}\n",
                crate::model::sanitize(&refused.0)
            );
            match out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
                Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(error.into());
                }
                _ => {}
            }
            return Err(Exit(crate::cli::EXIT_CHECK_UNKNOWN).into());
        }
    };
    let verdict = crate::headless::evaluate(&status, &args.thresholds());
    let text = match args.format {
        CheckFormat::Text => verdict.text(&status),
        CheckFormat::Json => {
            let document = serde_json::json!({
                "kind": "ward.check",
                "format_version": status::FORMAT_VERSION,
                "severity": verdict.severity,
                "exit_code": verdict.severity.exit_code(),
                "findings": verdict.findings,
                "status": status,
            });
            format!("{}\n", crate::headless::json::to_string(&document)?)
        }
    };
    // The exit code is the verdict: a reader that left early (`| head -1`) does not change it.
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => return Err(error.into()),
        _ => {}
    }
    match verdict.severity.exit_code() {
        0 => Ok(()),
        code => Err(Exit(code).into()),
    }
}
