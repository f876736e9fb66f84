//! `ward replay`: the replay action as a subcommand — plan, confirm, run in bounded batches with
//! progress on stderr, cancel on ctrl-c between batches, one audit record.

use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use tokio_util::sync::CancellationToken;

use super::UsageError;
use crate::actions::{
    Action, Actions, Actor, Origin, Outcome, Plan, Policy, Progress, Report, Scope, Settings,
};
use crate::config::Config;
use crate::model::{EnvelopeId, QueueName, sanitize};
use crate::store::{DlqFilter, FailedSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// Replay DLQ entries (all, a filter's, or listed ids) back to their queue.
#[derive(Debug, Clone, Default, Args)]
#[allow(clippy::struct_excessive_bools, reason = "command-line switches")]
pub struct ReplayArgs {
    /// The queue whose DLQ is replayed
    #[arg(long, default_value = "delivery", value_name = "QUEUE")]
    pub queue: String,
    /// Replay from the dead list instead of the DLQ (the poison guard does not apply)
    #[arg(long)]
    pub dead: bool,
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
    /// Entries per store call [default: dlq.replay_batch]
    #[arg(long, value_name = "N")]
    pub batch: Option<usize>,
    /// Entries per second, 0 for as fast as the store answers [default: dlq.replay_rate_per_s]
    #[arg(long, value_name = "PER_SECOND")]
    pub rate: Option<u32>,
    /// Keep the entries' attempt counters (by default a replayed entry starts at attempt 0)
    #[arg(long)]
    pub keep_attempts: bool,
    /// Print the plan (count, sample, batch, rate, ETA) and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Run without asking; required when stdin is not a terminal
    #[arg(long)]
    pub yes: bool,
    /// Refuse every change (this session is read-only)
    #[arg(long)]
    pub read_only: bool,
    /// Output format of the plan and the report
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// The run was cancelled (ctrl-c) between batches; its report was printed.
#[derive(Debug, thiserror::Error)]
#[error("interrupted: stopped between batches, the counts above are exact")]
pub struct Interrupted;

/// A batch's answer was lost; the report says what was re-read.
#[derive(Debug, thiserror::Error)]
#[error("the outcome is indeterminate: {0}")]
pub struct Indeterminate(pub String);

pub fn run(config: &Config, args: &ReplayArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let action = action(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(replay(config, args, action, out))
}

fn action(args: &ReplayArgs) -> anyhow::Result<Action> {
    let queue = QueueName::new(&args.queue).map_err(|e| UsageError(e.to_string()))?;
    let scope = if args.ids.is_empty() {
        Scope::Filter(DlqFilter {
            error_class: args.error_class.clone(),
            stage: args.stage.clone(),
            tenant: args.tenant.clone(),
            channel: args.channel.clone(),
            ..DlqFilter::default()
        })
    } else {
        Scope::Ids(args.ids.iter().cloned().map(EnvelopeId).collect())
    };
    Ok(Action::Replay {
        queue,
        from: if args.dead {
            FailedSet::Dead
        } else {
            FailedSet::Dlq
        },
        scope,
        reset_attempts: !args.keep_attempts,
    })
}

async fn replay(
    config: &Config,
    args: &ReplayArgs,
    action: Action,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let policy = Policy::resolve(args.read_only.then_some(true), None, false);
    // Refused before the store is even opened.
    policy.check(&action)?;
    let store = crate::store::open(&config.store)
        .await
        .with_context(|| format!("cannot open the {} store", config.store.backend.as_str()))?;
    let actions = Actions {
        store,
        policy,
        actor: Actor::current(),
        origin: Origin::Headless,
        target: config.store.target_label(),
        settings: Settings {
            batch_size: args.batch.unwrap_or(config.dlq.replay_batch),
            rate_per_s: Some(args.rate.unwrap_or(config.dlq.replay_rate_per_s)).filter(|r| *r > 0),
            max_replays: config.queues.max_replays,
            ..Settings::default()
        },
    };
    let plan = actions.plan(action).await?;
    if args.dry_run {
        return print_plan(&plan, args.format, out);
    }
    if !args.yes {
        confirm(&plan)?;
    }
    let cancel = CancellationToken::new();
    let on_interrupt = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("ward replay: stopping after the current batch (ctrl-c again to quit now)");
            on_interrupt.cancel();
        }
        // Handling SIGINT replaced its default: a second one must still end a stuck call.
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("ward replay: quitting; the last batch's outcome is unknown");
            std::process::exit(i32::from(super::EXIT_INTERRUPTED));
        }
    });
    let mut last_shown = Instant::now();
    let report = actions
        .execute(&plan, &cancel, &mut |progress: &Progress| {
            if last_shown.elapsed() >= Duration::from_millis(500) || progress.done >= plan.count {
                last_shown = Instant::now();
                eprintln!(
                    "ward replay: {}/{} entries, {} batches, {:.0}/s",
                    progress.done,
                    progress.total,
                    progress.batches,
                    progress.rate()
                );
            }
        })
        .await?;
    print_report(&plan, &report, args.format, out)?;
    match report.outcome {
        Outcome::Cancelled => Err(Interrupted.into()),
        Outcome::Indeterminate(detail) => Err(Indeterminate(detail).into()),
        Outcome::Completed | Outcome::DryRun => Ok(()),
    }
}

/// Ask on the terminal; without one, `--yes` is required.
fn confirm(plan: &Plan) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(UsageError(
            "stdin is not a terminal: pass --yes to run without confirming (or --dry-run)".into(),
        )
        .into());
    }
    let mut err = std::io::stderr().lock();
    write_plan_text(plan, &mut err)?;
    write!(err, "{}? [y/N] ", plan.summary)?;
    err.flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(UsageError("not confirmed: nothing was changed".into()).into())
    }
}

fn write_plan_text(plan: &Plan, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "plan {} on {}: {}", plan.id, plan.target, plan.summary)?;
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
        writeln!(out, "  note: {warning}")?;
    }
    Ok(())
}

fn print_plan(plan: &Plan, format: Format, out: &mut dyn Write) -> anyhow::Result<()> {
    match format {
        Format::Text => write_plan_text(plan, out)?,
        Format::Json => writeln!(out, "{}", serde_json::json!({ "plan": plan }))?,
    }
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
            writeln!(
                out,
                "{}: {} replayed, {} to the dead list (poison guard) in {} batches, {:.1} s",
                report.outcome.as_str(),
                report.moved,
                report.poisoned,
                report.batches,
                report.duration_ms as f64 / 1000.0
            )?;
            if let Some(remaining) = report.remaining {
                writeln!(out, "{remaining} matching entries remain")?;
            }
        }
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::json!({ "plan": plan, "report": report })
        )?,
    }
    out.flush()?;
    Ok(())
}
