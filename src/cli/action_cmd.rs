//! Every operator action as a subcommand (`ward replay|purge|dead|shed|breaker|stop|test-alert`,
//! `ward config set|unset`): the same `Action` the control room builds, the same plan, the same
//! policy. The plan is printed and runs only with `--yes` (or after a typed confirmation on a
//! terminal); progress goes to stderr, the result to stdout; every run leaves an audit record.

use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use tokio_util::sync::CancellationToken;

use super::UsageError;
use crate::actions::mutt::MuttActions;
use crate::actions::{
    Action, Actions, Actor, MuttScope, Operator, Origin, Outcome, Plan, Policy, Progress, Report,
    Scope, Settings, Tier,
};
use crate::config::Config;
use crate::model::Profile;
use crate::model::mutt::MuttDlqName;
use crate::model::{EnvelopeId, QueueName, ShedMode, sanitize};
use crate::store::{DlqFilter, FailedSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// How an action runs: shared by every action subcommand.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Running")]
#[allow(clippy::struct_excessive_bools, reason = "command-line switches")]
pub struct RunArgs {
    /// Print the plan (count, sample, batch, rate, ETA) and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Run without asking; required when stdin is not a terminal
    #[arg(long)]
    pub yes: bool,
    /// Allow changes even when tui.read_only is set in the config (--read-only wins)
    #[arg(long)]
    pub write: bool,
    /// Output format of the plan and the result
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Which DLQ entries a bulk action takes: a filter, or listed ids.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Entries")]
pub struct ScopeArgs {
    /// The queue whose DLQ is used
    #[arg(long, default_value = "delivery", value_name = "QUEUE")]
    pub queue: String,
    /// Only entries with this error class (e.g. timeout, http_500)
    #[arg(long = "error", value_name = "CLASS")]
    pub error_class: Option<String>,
    /// Only entries that failed in this stage (route, deliver, shed, …)
    #[arg(long, value_name = "STAGE")]
    pub stage: Option<String>,
    /// Only this tenant's entries
    #[arg(long, value_name = "TENANT")]
    pub tenant: Option<String>,
    /// Only entries that failed on this channel
    #[arg(long, value_name = "CHANNEL")]
    pub channel: Option<String>,
    /// Only these entries (repeat the flag); overrides the filters
    #[arg(long = "id", value_name = "ID")]
    pub ids: Vec<String>,
    /// With --profile mutt: which of MUTT's lists, alerter, moog or dead (ids are the content
    /// ids `ward status` and the control room show)
    #[arg(long, value_name = "DLQ")]
    pub dlq: Option<String>,
}

impl ScopeArgs {
    fn queue(&self) -> anyhow::Result<QueueName> {
        Ok(QueueName::new(&self.queue).map_err(|e| UsageError(e.to_string()))?)
    }

    /// The MUTT list and entries these flags name.
    fn mutt(&self, verb: &str) -> Result<(MuttDlqName, MuttScope), String> {
        self.mutt_or(verb, None)
    }

    /// The MUTT list and entries, `implied` naming the list when `--dlq` does not.
    fn mutt_or(
        &self,
        verb: &str,
        implied: Option<MuttDlqName>,
    ) -> Result<(MuttDlqName, MuttScope), String> {
        let field_filters = [
            ("--error", &self.error_class),
            ("--stage", &self.stage),
            ("--tenant", &self.tenant),
            ("--channel", &self.channel),
        ];
        if let Some((flag, _)) = field_filters.iter().find(|(_, v)| v.is_some()) {
            return Err(format!(
                "{verb}: MUTT's DLQ entries carry no error class, stage, tenant or channel, so \
                 {flag} cannot select them; use --id (content ids) or --max"
            ));
        }
        let dlq = match (self.dlq.as_deref(), implied) {
            (None, Some(dlq)) => dlq,
            (None, None) => {
                return Err(format!(
                    "{verb}: with --profile mutt, name the list: --dlq alerter, moog or dead"
                ));
            }
            (Some(text), _) => {
                let named = MuttDlqName::parse(text).ok_or_else(|| {
                    format!(
                        "{verb}: --dlq {:?} is not alerter, moog or dead",
                        sanitize(text)
                    )
                })?;
                if implied.is_some_and(|i| i != named) {
                    return Err(format!(
                        "{verb}: --dead and --dlq {named} name two lists; give one"
                    ));
                }
                named
            }
        };
        let scope = if self.ids.is_empty() {
            MuttScope::All
        } else {
            MuttScope::Entries(self.ids.clone())
        };
        Ok((dlq, scope))
    }

    fn scope(&self) -> Scope {
        if self.ids.is_empty() {
            Scope::Filter(DlqFilter {
                error_class: self.error_class.clone(),
                stage: self.stage.clone(),
                tenant: self.tenant.clone(),
                channel: self.channel.clone(),
                ..DlqFilter::default()
            })
        } else {
            Scope::Ids(self.ids.iter().cloned().map(EnvelopeId).collect())
        }
    }
}

/// Pace (and reason) of a bulk action.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Pace")]
pub struct PaceArgs {
    /// Why this run happens (kept in the audit record)
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Entries per store call [default: dlq.replay_batch]
    #[arg(long, value_name = "N")]
    pub batch: Option<usize>,
    /// Entries per second, 0 for as fast as the store answers [default: dlq.replay_rate_per_s]
    #[arg(long, value_name = "PER_SECOND")]
    pub rate: Option<u32>,
    /// Stop after this many entries
    #[arg(long, value_name = "N")]
    pub max: Option<u64>,
}

/// Replay DLQ entries (all, a filter's, or listed ids) back to their queue.
#[derive(Debug, Clone, Default, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Replay from the dead list instead of the DLQ (the poison guard does not apply)
    #[arg(long)]
    pub dead: bool,
    /// Keep the entries' attempt counters (by default a replayed entry starts at attempt 0)
    #[arg(long)]
    pub keep_attempts: bool,
    #[command(flatten)]
    pub pace: PaceArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Delete DLQ (or dead-list) entries for good.
#[derive(Debug, Clone, Default, Args)]
pub struct PurgeArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Purge the dead list instead of the DLQ
    #[arg(long)]
    pub dead: bool,
    #[command(flatten)]
    pub pace: PaceArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Give up on DLQ entries: move them to the dead list, which replay and remediation leave alone.
#[derive(Debug, Clone, Default, Args)]
pub struct DeadArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
    #[command(flatten)]
    pub pace: PaceArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// The operator's reason and how long an override lasts.
#[derive(Debug, Clone, Default, Args)]
pub struct OverrideArgs {
    /// Why (shown in the overrides inventory and the audit); required to set an override
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// How long it lasts: 90s, 15m, 2h, 1d
    #[arg(long = "for", value_name = "DURATION")]
    pub duration: Option<String>,
}

impl OverrideArgs {
    /// The reason; lifting an override may go without one.
    fn reason(&self, setting: bool, what: &str) -> anyhow::Result<String> {
        match self.reason.as_deref().map(str::trim) {
            Some(reason) if !reason.is_empty() => Ok(sanitize(reason).into_owned()),
            _ if setting => Err(UsageError(format!(
                "{what}: a reason is required: --reason '…' (it is shown in the overrides inventory)"
            ))
            .into()),
            _ => Ok("lifted from the command line".to_owned()),
        }
    }

    /// `--for` as an expiry time, else `default_ms` from now.
    fn expiry(&self, now_ms: i64, default_ms: Option<i64>) -> anyhow::Result<Option<i64>> {
        match &self.duration {
            Some(text) => {
                let ms = crate::ui::command::duration_ms(text)
                    .ok_or_else(|| UsageError(format!("--for {text}: write 90s, 15m, 2h or 1d")))?;
                Ok(Some(now_ms.saturating_add(ms)))
            }
            None => Ok(default_ms.map(|d| now_ms + d)),
        }
    }
}

/// Shedding mode for every worker.
#[derive(Debug, Clone, Args)]
pub struct ShedArgs {
    /// off, dlq (park excess in the DLQ) or defer (leave it queued)
    #[arg(value_name = "MODE")]
    pub mode: String,
    #[command(flatten)]
    pub what: OverrideArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BreakerOp {
    /// Hold it open until --for ends (default 15m)
    Open,
    /// Back to closed, statistics cleared
    Reset,
    /// Let every call through and record nothing, until reset
    Disable,
}

/// Force, reset or disable a channel's circuit breaker.
#[derive(Debug, Clone, Args)]
pub struct BreakerArgs {
    #[arg(value_enum)]
    pub op: BreakerOp,
    /// The channel (backend) whose breaker it is
    #[arg(value_name = "CHANNEL")]
    pub channel: String,
    #[command(flatten)]
    pub what: OverrideArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

/// Emergency stop: stop (on) or resume (off) all sending, or one channel's.
#[derive(Debug, Clone, Args)]
pub struct StopArgs {
    #[arg(value_enum)]
    pub state: OnOff,
    /// Only this channel
    #[arg(long, value_name = "CHANNEL")]
    pub channel: Option<String>,
    #[command(flatten)]
    pub what: OverrideArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Send a test alert through the real path (counted apart; to stdout unless a channel is named).
#[derive(Debug, Clone, Args)]
pub struct TestAlertArgs {
    /// The channel to deliver it to [default: stdout, never anyone real]
    #[arg(value_name = "CHANNEL")]
    pub channel: Option<String>,
    /// The tenant it is sent as
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Its summary line
    #[arg(long, default_value = "Ward test alert from the command line")]
    pub summary: String,
    /// How long to wait for a worker to report the outcome (90s, 2m)
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub wait: String,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Set (or with no value, delete) a dynamic config value.
#[derive(Debug, Clone, Args)]
pub struct ConfigSetArgs {
    #[arg(value_name = "KEY")]
    pub key: String,
    #[arg(value_name = "VALUE")]
    pub value: String,
    /// Why (kept in the audit and the overrides inventory)
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// With --profile mutt: a dead pod's processing list back onto its queue.
#[derive(Debug, Clone, Args)]
pub struct RequeueArgs {
    /// The processing list, e.g. mutt:processing:moog:moog-5c4b (`ward status` lists orphans)
    #[arg(value_name = "LIST")]
    pub list: String,
    #[command(flatten)]
    pub pace: PaceArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Delete a dynamic config value.
#[derive(Debug, Clone, Args)]
pub struct ConfigUnsetArgs {
    #[arg(value_name = "KEY")]
    pub key: String,
    /// Why (kept in the audit)
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// One action, ready to plan.
pub struct Request<'a> {
    pub action: Action,
    /// The same request on a MUTT deployment (`--profile mutt`), or why it has none there.
    pub mutt: Result<Action, String>,
    pub run: &'a RunArgs,
    pub pace: Option<&'a PaceArgs>,
    /// How long a test alert is followed (`--wait`).
    pub test_wait: Option<std::time::Duration>,
}

fn no_mutt_form(what: &str) -> Result<Action, String> {
    Err(format!(
        "{what}: MUTT has no such state, so there is nothing to do on a MUTT deployment"
    ))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn failed_set(dead: bool) -> FailedSet {
    if dead {
        FailedSet::Dead
    } else {
        FailedSet::Dlq
    }
}

pub fn replay(args: &ReplayArgs) -> anyhow::Result<Request<'_>> {
    Ok(Request {
        action: Action::Replay {
            queue: args.scope.queue()?,
            from: failed_set(args.dead),
            scope: args.scope.scope(),
            reset_attempts: !args.keep_attempts,
        },
        mutt: if args.dead {
            Err("replay --dead: MUTT's dead list names no source queue; replay with --dlq alerter or moog".to_owned())
        } else if args.keep_attempts {
            Err("replay --keep-attempts: MUTT dead-letters an entry again at once unless its retry counters are reset".to_owned())
        } else {
            args.scope
                .mutt("replay")
                .map(|(dlq, scope)| Action::MuttReplay { dlq, scope })
        },
        run: &args.run,
        pace: Some(&args.pace),
        test_wait: None,
    })
}

pub fn purge(args: &PurgeArgs) -> anyhow::Result<Request<'_>> {
    Ok(Request {
        action: Action::Purge {
            queue: args.scope.queue()?,
            set: failed_set(args.dead),
            scope: args.scope.scope(),
        },
        mutt: args
            .scope
            .mutt_or("purge", args.dead.then_some(MuttDlqName::Dead))
            .map(|(dlq, scope)| Action::MuttPurge { dlq, scope }),
        run: &args.run,
        pace: Some(&args.pace),
        test_wait: None,
    })
}

pub fn dead(args: &DeadArgs) -> anyhow::Result<Request<'_>> {
    Ok(Request {
        action: Action::MoveToDead {
            queue: args.scope.queue()?,
            scope: args.scope.scope(),
        },
        mutt: args
            .scope
            .mutt("dead")
            .map(|(dlq, scope)| Action::MuttMoveToDead { dlq, scope }),
        run: &args.run,
        pace: Some(&args.pace),
        test_wait: None,
    })
}

pub fn shed(args: &ShedArgs) -> anyhow::Result<Request<'_>> {
    let mode = ShedMode::parse(&args.mode).ok_or_else(|| {
        UsageError(format!(
            "shed: {:?} is not off, dlq or defer",
            sanitize(&args.mode)
        ))
    })?;
    let setting = mode != ShedMode::Off;
    let reason = args.what.reason(setting, "shed")?;
    Ok(Request {
        mutt: match mode {
            ShedMode::Off => Err(
                "shed off: MUTT's alerter sheds whenever the alert queue passes \
                 alerter_queue_shed_threshold; raise it with `ward config set \
                 alerter_queue_shed_threshold N`"
                    .to_owned(),
            ),
            mode if args.what.duration.is_some() => Err(format!(
                "shed {} --for: MUTT's settings have no expiry; set alerter_shed_mode without --for",
                mode.as_str()
            )),
            mode => Ok(Action::MuttSetConfig {
                key: "alerter_shed_mode".to_owned(),
                value: Some(mode.as_str().to_owned()),
                reason: reason.clone(),
            }),
        },
        action: Action::Shedding {
            mode,
            reason,
            expires_at_ms: args.what.expiry(now_ms(), setting.then_some(3_600_000))?,
        },
        run: &args.run,
        pace: None,
        test_wait: None,
    })
}

pub fn breaker(args: &BreakerArgs) -> anyhow::Result<Request<'_>> {
    let backend = args.channel.clone();
    let mutt = match args.op {
        BreakerOp::Open => Ok(Action::MuttBreaker {
            name: backend.clone(),
            open_until_ms: args.what.expiry(now_ms(), Some(15 * 60_000))?,
            reason: args.what.reason(true, "breaker open")?,
        }),
        BreakerOp::Reset => Ok(Action::MuttBreaker {
            name: backend.clone(),
            open_until_ms: None,
            reason: args.what.reason(false, "breaker reset")?,
        }),
        BreakerOp::Disable => no_mutt_form("breaker disable"),
    };
    let action = match args.op {
        BreakerOp::Open => Action::BreakerForceOpen {
            backend,
            until_ms: args
                .what
                .expiry(now_ms(), Some(15 * 60_000))?
                .unwrap_or_default(),
            reason: args.what.reason(true, "breaker open")?,
        },
        BreakerOp::Reset => Action::BreakerReset {
            backend,
            reason: args.what.reason(false, "breaker reset")?,
        },
        BreakerOp::Disable => Action::BreakerDisable {
            backend,
            reason: args.what.reason(true, "breaker disable")?,
        },
    };
    Ok(Request {
        action,
        mutt,
        run: &args.run,
        pace: None,
        test_wait: None,
    })
}

pub fn stop(args: &StopArgs) -> anyhow::Result<Request<'_>> {
    let on = args.state == OnOff::On;
    Ok(Request {
        action: Action::EmergencyStop {
            backend: args.channel.clone(),
            on,
            reason: args.what.reason(on, "stop")?,
            expires_at_ms: args.what.expiry(now_ms(), on.then_some(3_600_000))?,
        },
        mutt: no_mutt_form("stop"),
        run: &args.run,
        pace: None,
        test_wait: None,
    })
}

pub fn test_alert(args: &TestAlertArgs) -> anyhow::Result<Request<'_>> {
    let wait = crate::ui::command::duration_ms(&args.wait)
        .and_then(|ms| u64::try_from(ms).ok())
        .map(std::time::Duration::from_millis)
        .ok_or_else(|| UsageError(format!("--wait {}: write 30s, 2m or 1h", args.wait)))?;
    Ok(Request {
        action: Action::SendTestAlert {
            channel: args.channel.clone().filter(|c| c != "stdout"),
            tenant: args.tenant.clone(),
            summary: args.summary.clone(),
        },
        mutt: Err(
            "test-alert: Ward cannot inject into MUTT's pipeline; POST to MUTT's ingestor"
                .to_owned(),
        ),
        run: &args.run,
        pace: None,
        test_wait: Some(wait),
    })
}

pub fn requeue_orphan(args: &RequeueArgs) -> Request<'_> {
    let action = Action::MuttRequeueOrphan {
        list: args.list.clone(),
    };
    Request {
        mutt: Ok(action.clone()),
        action,
        run: &args.run,
        pace: Some(&args.pace),
        test_wait: None,
    }
}

pub fn config_set(args: &ConfigSetArgs) -> anyhow::Result<Request<'_>> {
    let what = OverrideArgs {
        reason: args.reason.clone(),
        duration: None,
    };
    Ok(Request {
        action: Action::SetConfig {
            key: args.key.clone(),
            value: Some(args.value.clone()),
            reason: what.reason(true, "config set")?,
        },
        mutt: Ok(Action::MuttSetConfig {
            key: args.key.clone(),
            value: Some(args.value.clone()),
            reason: what.reason(true, "config set")?,
        }),
        run: &args.run,
        pace: None,
        test_wait: None,
    })
}

pub fn config_unset(args: &ConfigUnsetArgs) -> anyhow::Result<Request<'_>> {
    let what = OverrideArgs {
        reason: args.reason.clone(),
        duration: None,
    };
    Ok(Request {
        action: Action::SetConfig {
            key: args.key.clone(),
            value: None,
            reason: what.reason(false, "config unset")?,
        },
        mutt: Ok(Action::MuttSetConfig {
            key: args.key.clone(),
            value: None,
            reason: what.reason(false, "config unset")?,
        }),
        run: &args.run,
        pace: None,
        test_wait: None,
    })
}

/// The actions context on the deployment the config names: Ward's store or MUTT's.
async fn operator(config: &Config, policy: Policy, settings: Settings) -> anyhow::Result<Operator> {
    let target = crate::headless::status::action_target(config);
    Ok(match config.store.profile {
        Profile::Ward => Operator::Ward(Actions {
            store: crate::store::open(&config.store).await.with_context(|| {
                format!("cannot open the {} store", config.store.backend.as_str())
            })?,
            policy,
            actor: Actor::current(),
            origin: Origin::Headless,
            target,
            settings,
            channels: config
                .delivery
                .channels
                .iter()
                .map(|c| c.name().to_owned())
                .collect(),
            silences: config.alerting.silence_policy(),
        }),
        Profile::Mutt => {
            Operator::Mutt(MuttActions {
                store: std::sync::Arc::new(crate::store::open_mutt(config).await.map_err(|e| {
                    refused_or_unreachable(e, "cannot attach to the MUTT deployment")
                })?),
                policy,
                actor: Actor::current(),
                origin: Origin::Headless,
                target,
                settings,
            })
        }
    })
}

/// A permanent attach error (refused password, wrong settings) is a usage error (exit 2); an
/// unreachable server stays one (exit 3).
fn refused_or_unreachable(error: crate::store::StoreError, what: &str) -> anyhow::Error {
    if error.is_permanent() {
        UsageError(format!("{what}: {error}")).into()
    } else {
        anyhow::Error::new(error).context(what.to_owned())
    }
}

/// The run was cancelled (ctrl-c) between batches; its report was printed.
#[derive(Debug, thiserror::Error)]
#[error("interrupted: stopped between batches, the counts above are exact")]
pub struct Interrupted;

/// A test alert was not delivered; the report says how it ended.
#[derive(Debug, thiserror::Error)]
#[error("the test alert was not delivered: {0}")]
pub struct NotDelivered(pub String);

/// A batch's answer was lost; the report says what was re-read.
#[derive(Debug, thiserror::Error)]
#[error("the outcome is indeterminate: {0}")]
pub struct Indeterminate(pub String);

/// Plan, confirm and run one request, on the deployment's store. `read_only` is why the whole
/// run is read-only (the global `--read-only`), if it is.
pub fn run(
    config: &Config,
    request: anyhow::Result<Request<'_>>,
    read_only: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let request = request?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(execute(&super::attached(config), request, read_only, out))
}

async fn execute(
    config: &Config,
    request: Request<'_>,
    read_only: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let Request {
        action,
        mutt,
        run,
        pace,
        test_wait,
    } = request;
    let action = match config.store.profile {
        Profile::Ward if action.kind().is_mutt() => {
            return Err(UsageError(format!(
                "{} acts on a MUTT deployment: attach with --profile mutt",
                action.kind().as_str()
            ))
            .into());
        }
        Profile::Ward => action,
        Profile::Mutt => mutt.map_err(UsageError)?,
    };
    let policy = match read_only {
        Some(why) => Policy::read_only(format!("read-only: {why}")),
        None => Policy::resolve(run.write.then_some(false), None, config.tui.read_only),
    };
    // Refused before the store is even opened.
    policy.check(&action)?;
    let pace = pace.cloned().unwrap_or_default();
    let settings = run_settings(config, &pace, test_wait);
    let actions = operator(config, policy, settings).await?;
    let mut plan = actions.plan(action).await?;
    plan.run_reason = pace
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| sanitize(r).into_owned());
    if run.dry_run {
        return print_plan(&plan, run.format, out);
    }
    if !run.yes {
        if !std::io::stdin().is_terminal() {
            print_plan(&plan, run.format, out)?;
            return Err(UsageError(
                "not run: stdin is not a terminal, pass --yes to run the plan above (nothing was changed)"
                    .into(),
            )
            .into());
        }
        confirm(&plan)?;
    }
    let verb = plan.action.kind().as_str();
    let cancel = CancellationToken::new();
    let on_interrupt = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("ward {verb}: stopping after the current batch (ctrl-c again to quit now)");
            on_interrupt.cancel();
        }
        // Handling SIGINT replaced its default: a second one must still end a stuck call.
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("ward {verb}: quitting; the last batch's outcome is unknown");
            std::process::exit(i32::from(super::EXIT_INTERRUPTED));
        }
    });
    let bulk = plan.action.is_bulk();
    let mut last_shown = Instant::now();
    let report = actions
        .execute(&plan, &cancel, &mut |progress: &Progress| {
            if bulk
                && (last_shown.elapsed() >= Duration::from_millis(500)
                    || progress.done >= plan.count)
            {
                last_shown = Instant::now();
                eprintln!(
                    "ward {verb}: {}/{} entries, {} batches, {}",
                    progress.done,
                    progress.total,
                    progress.batches,
                    progress
                        .rate()
                        .map_or_else(|| "rate not known yet".to_owned(), |r| format!("{r:.0}/s"))
                );
            }
        })
        .await?;
    print_report(&plan, &report, run.format, out)?;
    if let Some(test) = report.test.as_ref().filter(|t| !t.delivered()) {
        return Err(NotDelivered(test.summary()).into());
    }
    match report.outcome {
        Outcome::Cancelled => Err(Interrupted.into()),
        Outcome::Indeterminate(detail) => Err(Indeterminate(detail).into()),
        Outcome::Completed | Outcome::DryRun => Ok(()),
    }
}

/// How a headless run goes: the flags, else the config's replay pace.
fn run_settings(
    config: &Config,
    pace: &PaceArgs,
    test_wait: Option<std::time::Duration>,
) -> Settings {
    Settings {
        batch_size: pace.batch.unwrap_or(config.dlq.replay_batch),
        rate_per_s: Some(pace.rate.unwrap_or(config.dlq.replay_rate_per_s)).filter(|r| *r > 0),
        max_replays: config.queues.max_replays,
        max_items: pace.max,
        test_timeout: test_wait.unwrap_or(Settings::default().test_timeout),
        ..Settings::default()
    }
}

/// Ask on the terminal. What cannot be undone is confirmed by typing the number of entries,
/// not by `y`.
fn confirm(plan: &Plan) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let mut err = std::io::stderr().lock();
    write_plan_text(plan, &mut err)?;
    let irreversible = plan.tier == Tier::Irreversible;
    if irreversible {
        write!(
            err,
            "{}: this cannot be undone; type {} to confirm: ",
            plan.summary, plan.count
        )?;
    } else {
        write!(err, "{}? [y/N] ", plan.summary)?;
    }
    err.flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    let answer = answer.trim();
    let yes = if irreversible {
        answer == plan.count.to_string()
    } else {
        matches!(answer, "y" | "Y" | "yes")
    };
    if yes {
        Ok(())
    } else {
        Err(UsageError("not confirmed: nothing was changed".into()).into())
    }
}

fn write_plan_text(plan: &Plan, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "plan {} on {}: {}",
        plan.id,
        sanitize(&plan.target),
        sanitize(&plan.summary)
    )?;
    if let Some(reason) = plan.reason() {
        writeln!(out, "  reason: {}", sanitize(reason))?;
    }
    if let Some(silence) = &plan.silence {
        writeln!(
            out,
            "  silence {} by {}, {} to {}",
            silence.id,
            sanitize(&silence.created_by),
            crate::model::time::format_rfc3339_ms(silence.starts_at_ms),
            crate::model::time::format_rfc3339_ms(silence.ends_at_ms)
        )?;
    }
    if let Some(preview) = &plan.preview {
        for line in preview.lines() {
            writeln!(out, "  {line}")?;
        }
        for alert in &preview.sample {
            writeln!(out, "    {}", sanitize(alert))?;
        }
    }
    if !plan.action.is_bulk() {
        for warning in &plan.warnings {
            writeln!(out, "  note: {}", sanitize(warning))?;
        }
        return Ok(());
    }
    writeln!(out, "  entries: {}", plan.count)?;
    for row in &plan.sample {
        writeln!(
            out,
            "    {}  {}  {}  {}",
            row.id,
            sanitize(&row.tenant),
            sanitize(&row.error_class),
            sanitize(&row.error_message)
        )?;
    }
    let rate = plan.rate_per_s.map_or_else(
        || "as fast as the store answers".to_owned(),
        |r| format!("{r}/s"),
    );
    writeln!(out, "  batch: {}, rate: {rate}", plan.batch_size)?;
    if let Some(eta) = plan.eta {
        writeln!(out, "  time: about {:.0} s", eta.as_secs_f64().ceil())?;
    }
    for warning in &plan.warnings {
        writeln!(out, "  note: {}", sanitize(warning))?;
    }
    Ok(())
}

fn print_plan(plan: &Plan, format: Format, out: &mut dyn Write) -> anyhow::Result<()> {
    match format {
        Format::Text => write_plan_text(plan, out)?,
        Format::Json => writeln!(
            out,
            "{}",
            crate::headless::json::to_string(&serde_json::json!({ "plan": plan }))?
        )?,
    }
    out.flush()?;
    Ok(())
}

fn print_report(
    plan: &Plan,
    report: &Report,
    format: Format,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match format {
        Format::Text => {
            let what = match &plan.action {
                Action::Replay { .. } => format!(
                    "{} replayed, {} to the dead list (poison guard) in {} batches",
                    report.moved, report.poisoned, report.batches
                ),
                Action::MuttRequeueOrphan { .. } => format!(
                    "{} put back on their queue in {} batches",
                    report.moved, report.batches
                ),
                Action::Purge { .. } | Action::MuttPurge { .. } => {
                    format!("{} purged in {} batches", report.moved, report.batches)
                }
                Action::MoveToDead { .. } | Action::MuttMoveToDead { .. } => format!(
                    "{} moved to the dead list in {} batches",
                    report.moved, report.batches
                ),
                Action::MuttReplay { .. } => format!(
                    "{} replayed with counters reset, {} to MUTT's dead list (replayed too often) in {} batches",
                    report.moved, report.poisoned, report.batches
                ),
                Action::SilenceCreate { .. } => format!(
                    "silence {} created",
                    report.silence_id.as_deref().unwrap_or("(none)")
                ),
                Action::SilenceExpire { id } if report.moved == 0 => {
                    format!("silence {} had already expired", sanitize(id))
                }
                Action::SendTestAlert { .. } => match &report.test {
                    Some(test) => format!("test alert {}", sanitize(&test.summary())),
                    None => "test alert sent, outcome not followed".to_owned(),
                },
                other => sanitize(&other.describe()).into_owned(),
            };
            writeln!(
                out,
                "{}: {what}, {:.1} s (audit {})",
                report.outcome.as_str(),
                report.duration_ms as f64 / 1000.0,
                report.audit_id.as_deref().unwrap_or("not written")
            )?;
            if let Some(remaining) = report.remaining {
                writeln!(out, "{remaining} matching entries remain")?;
            }
            if report.vanished > 0 {
                writeln!(
                    out,
                    "{} planned entries were gone before their batch (taken by MUTT's remediation)",
                    report.vanished
                )?;
            }
        }
        Format::Json => writeln!(
            out,
            "{}",
            crate::headless::json::to_string(
                &serde_json::json!({ "plan": plan, "report": report })
            )?
        )?,
    }
    out.flush()?;
    Ok(())
}
