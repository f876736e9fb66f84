//! `ward silence add|ls|expire`: silences from the command line, through the same actions (plan,
//! confirm, audit) as the control room; `ls` only reads.

use std::io::Write;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use super::action_cmd::{Request, RunArgs};
use super::{UsageError, attached};
use crate::actions::Action;
use crate::config::Config;
use crate::engine::matcher::parse_matchers;
use crate::model::time::{parse_rfc3339_ms, short_duration};
use crate::model::{Profile, SilenceState, matchers_text, sanitize};
use crate::sources::{AlertingView, SilenceRow};

/// Version of `ward silence ls --format json`.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Subcommand)]
pub enum SilenceCommand {
    /// Create a silence: alerts matching every matcher are not delivered until it ends
    Add(AddArgs),
    /// List silences with their state, owner, comment, time left and alerts matched now
    Ls(LsArgs),
    /// End a silence now (a pending one never starts); nothing is deleted
    Expire(ExpireArgs),
}

/// `ward silence add`.
#[derive(Debug, Clone, Args)]
pub struct AddArgs {
    /// Matchers in Alertmanager's syntax: `alertname=Disk 'instance=~"db-.*"'` or
    /// `'{alertname="Disk", env!="dev"}'`; a first word without an operator is the alertname
    #[arg(value_name = "MATCHER", required = true)]
    pub matchers: Vec<String>,
    /// Why (required; shown in the inventory and kept in the audit)
    #[arg(long, short = 'c', value_name = "TEXT")]
    pub comment: String,
    /// How long from its start (30m, 2h, 1d)
    #[arg(long, short = 'd', value_name = "DURATION", default_value = "2h")]
    pub duration: String,
    /// When it starts (RFC 3339; default now): a later start makes it pending
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// When it ends (RFC 3339), instead of --duration
    #[arg(long, value_name = "TIME", conflicts_with = "duration")]
    pub end: Option<String>,
    /// The silence this one replaces: it ends as this one is created
    #[arg(long, value_name = "ID")]
    pub replaces: Option<String>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum StateArg {
    /// Active and pending ones
    #[default]
    Current,
    Active,
    Pending,
    Expired,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LsFormat {
    #[default]
    Text,
    Json,
}

/// `ward silence ls`.
#[derive(Debug, Clone, Args)]
pub struct LsArgs {
    #[arg(long, value_enum, default_value_t = StateArg::Current)]
    pub state: StateArg,
    #[arg(long, value_enum, default_value_t = LsFormat::Text)]
    pub format: LsFormat,
}

/// `ward silence expire`.
#[derive(Debug, Clone, Args)]
pub struct ExpireArgs {
    /// The silence's id (as `ward silence ls` lists it)
    pub id: String,
    #[command(flatten)]
    pub run: RunArgs,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The create action `ward silence add` asks for.
pub fn add(args: &AddArgs) -> anyhow::Result<Request<'_>> {
    let now = now_ms();
    let matchers =
        parse_matchers(&args.matchers.join(" ")).map_err(|e| UsageError(e.to_string()))?;
    let time = |flag: &str, text: &str| {
        parse_rfc3339_ms(text).ok_or_else(|| {
            UsageError(format!(
                "--{flag} {text}: write an RFC 3339 time like 2026-12-07T14:00:00Z"
            ))
        })
    };
    let starts_at_ms = args
        .start
        .as_deref()
        .map(|t| time("start", t))
        .transpose()?
        .unwrap_or(now);
    let ends_at_ms = if let Some(end) = &args.end {
        time("end", end)?
    } else {
        let length = crate::ui::command::duration_ms(&args.duration).ok_or_else(|| {
            UsageError(format!("--duration {}: write 30m, 2h or 1d", args.duration))
        })?;
        starts_at_ms.max(now) + length
    };
    let action = Action::SilenceCreate {
        matchers,
        starts_at_ms,
        ends_at_ms,
        comment: args.comment.clone(),
        replaces: args.replaces.clone(),
    };
    Ok(request(action, &args.run))
}

pub fn expire(args: &ExpireArgs) -> Request<'_> {
    request(
        Action::SilenceExpire {
            id: args.id.clone(),
        },
        &args.run,
    )
}

fn request(action: Action, run: &RunArgs) -> Request<'_> {
    Request {
        action,
        mutt: Err("silences are Ward's: a MUTT deployment has none".to_owned()),
        run,
        pace: None,
        test_wait: None,
    }
}

#[derive(Serialize)]
struct Listing<'a> {
    format_version: u32,
    read_at_ms: i64,
    silences: Vec<&'a SilenceRow>,
    firing_now: usize,
    silenced_now: usize,
    inhibited_now: usize,
}

/// `ward silence ls`: one read of the silences and the alerts seen in the last hour.
pub fn ls(config: &Config, args: &LsArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    if config.store.profile == Profile::Mutt {
        return Err(UsageError("silences are Ward's: a MUTT deployment has none".into()).into());
    }
    let config = attached(config);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (view, now) = runtime.block_on(async {
        let store = crate::store::open_observer(&config.store).await?;
        let now = store.now_ms();
        let silences = store.silences().await?;
        let alerts = store
            .alerts_seen(
                now - crate::model::SEEN_RETENTION_MS,
                crate::store::CONTROL_ALERTS,
            )
            .await?;
        let capped = alerts.len() >= crate::store::CONTROL_ALERTS;
        let rules = config.alerting.rules();
        anyhow::Ok((
            AlertingView::build(silences, alerts, &rules, capped, now),
            now,
        ))
    })?;
    let shown: Vec<&SilenceRow> = view
        .silences
        .iter()
        .filter(|row| match args.state {
            StateArg::Current => row.state != SilenceState::Expired,
            StateArg::Active => row.state == SilenceState::Active,
            StateArg::Pending => row.state == SilenceState::Pending,
            StateArg::Expired => row.state == SilenceState::Expired,
            StateArg::All => true,
        })
        .collect();
    match args.format {
        LsFormat::Json => {
            let listing = Listing {
                format_version: FORMAT_VERSION,
                read_at_ms: now,
                silences: shown,
                firing_now: view.firing_now,
                silenced_now: view.silenced_now,
                inhibited_now: view.inhibited_now,
            };
            writeln!(out, "{}", crate::headless::json::to_string(&listing)?)?;
        }
        LsFormat::Text => write_table(&shown, &view, now, out)?,
    }
    out.flush()?;
    Ok(())
}

fn write_table(
    rows: &[&SilenceRow],
    view: &AlertingView,
    now: i64,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{} active, {} pending, {} expired · {} firing alerts: {} silenced, {} inhibited",
        view.active,
        view.pending,
        view.expired,
        view.firing_now,
        view.silenced_now,
        view.inhibited_now
    )?;
    if rows.is_empty() {
        return writeln!(out, "no silences");
    }
    writeln!(
        out,
        "{:<26}  {:<8}  {:<12}  {:>7}  {:<12}  MATCHERS  ·  COMMENT",
        "ID", "STATE", "WHEN", "MATCHED", "OWNER"
    )?;
    for row in rows {
        let silence = &row.silence;
        let when = match row.state {
            SilenceState::Active => format!(
                "{} left",
                short_duration((silence.ends_at_ms - now).max(0) as u64)
            ),
            SilenceState::Pending => format!(
                "in {}",
                short_duration((silence.starts_at_ms - now).max(0) as u64)
            ),
            SilenceState::Expired => format!(
                "{} ago",
                short_duration((now - silence.ends_at_ms).max(0) as u64)
            ),
        };
        writeln!(
            out,
            "{:<26}  {:<8}  {:<12}  {:>7}  {:<12}  {}  ·  {}",
            sanitize(&silence.id),
            row.state.as_str(),
            when,
            row.matched_now,
            sanitize(&silence.created_by),
            sanitize(&matchers_text(&silence.matchers)),
            sanitize(&silence.comment)
        )?;
    }
    Ok(())
}
