//! `ward dlq ls` and `ward dlq show`: read a queue's DLQ or dead list with the control room's
//! filters. They only read: the store is opened as an observer.

use std::io::Write;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};

use super::{EXIT_FAILURE, Exit, UsageError, attached};
use crate::config::Config;
use crate::headless::dlq::{self, ListQuery};
use crate::model::{Profile, QueueName, sanitize};
use crate::sources::DlqSort;
use crate::store::{DlqFilter, FailedSet, MAX_BATCH};

#[derive(Debug, Clone, Subcommand)]
pub enum DlqCommand {
    /// List a queue's DLQ (or dead list) entries matching the filters, or group them
    Ls(LsArgs),
    /// Show one entry: times, attempt history and content, secrets redacted
    Show(ShowArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum DlqFormat {
    #[default]
    Text,
    Json,
}

/// Which list is read.
#[derive(Debug, Clone, Default, Args)]
pub struct SetArgs {
    /// The queue whose DLQ is read: ingest, delivery, …
    #[arg(long, default_value = "delivery", value_name = "QUEUE")]
    pub queue: String,
    /// Read the dead list instead of the DLQ
    #[arg(long)]
    pub dead: bool,
    #[arg(long, value_enum, default_value_t = DlqFormat::Text)]
    pub format: DlqFormat,
}

impl SetArgs {
    fn queue(&self) -> anyhow::Result<QueueName> {
        Ok(QueueName::new(&self.queue).map_err(|e| UsageError(e.to_string()))?)
    }

    fn set(&self) -> FailedSet {
        if self.dead {
            FailedSet::Dead
        } else {
            FailedSet::Dlq
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum SortArg {
    /// Newest failure first (the store scans backwards)
    #[default]
    Newest,
    /// Oldest failure first (the order replay takes)
    Oldest,
    /// Most attempts first, among the listed entries (of a newest-first scan)
    Attempts,
}

/// `ward dlq ls`.
#[derive(Debug, Clone, Default, Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub set: SetArgs,
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
    /// Text the store searches for (ASCII case-insensitively) in the id, error, tenant and
    /// channel and in the alert's label and annotation values and severity
    #[arg(long, value_name = "TEXT")]
    pub search: Option<String>,
    /// Only entries that failed at or after this time: an age (90s, 15m, 2h, 1d) or RFC 3339
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only entries that failed before this time: an age or RFC 3339
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    #[arg(long, value_enum, default_value_t = SortArg::Newest)]
    pub sort: SortArg,
    /// Entries to list (1-500)
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: usize,
    /// Count the whole filtered set by error class × 10 minutes instead of listing entries
    #[arg(long)]
    pub group: bool,
}

impl LsArgs {
    fn query(&self, now_ms: i64) -> anyhow::Result<ListQuery> {
        if self.limit == 0 || self.limit > MAX_BATCH {
            return Err(UsageError(format!("--limit must be 1 to {MAX_BATCH}")).into());
        }
        let when = |name: &str, text: &Option<String>| {
            text.as_deref()
                .map(|t| crate::ui::command::point_in_time(name, t, now_ms))
                .transpose()
                .map_err(|e| UsageError(format!("--{}", e.replacen('=', " ", 1))))
        };
        let filter = DlqFilter {
            error_class: self.error_class.clone(),
            stage: self.stage.clone(),
            tenant: self.tenant.clone(),
            channel: self.channel.clone(),
            failed_at_or_after_ms: when("since", &self.since)?,
            failed_before_ms: when("until", &self.until)?,
            text: self.search.clone().filter(|t| !t.is_empty()),
        };
        Ok(ListQuery {
            queue: self.set.queue()?,
            set: self.set.set(),
            filter,
            sort: match self.sort {
                SortArg::Newest => DlqSort::Newest,
                SortArg::Oldest => DlqSort::Oldest,
                SortArg::Attempts => DlqSort::Attempts,
            },
            limit: self.limit,
        })
    }
}

/// `ward dlq show`.
#[derive(Debug, Clone, Default, Args)]
pub struct ShowArgs {
    /// The entry's id (as `ward dlq ls` lists it)
    pub id: String,
    #[command(flatten)]
    pub set: SetArgs,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub fn run(config: &Config, command: &DlqCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    if config.store.profile == Profile::Mutt {
        return Err(UsageError(
            "ward dlq reads Ward's own DLQs; a MUTT deployment's lists are read with \
             `ward status --dlq alerter|moog|dead`"
                .to_owned(),
        )
        .into());
    }
    let config = attached(config);
    let now = now_ms();
    let text = match command {
        DlqCommand::Ls(args) => {
            let query = args.query(now)?;
            runtime()?.block_on(async {
                let store = crate::store::open_observer(&config.store).await?;
                anyhow::Ok(match (args.group, args.set.format) {
                    (true, DlqFormat::Json) => json(&dlq::group(store.as_ref(), &query).await?)?,
                    (true, DlqFormat::Text) => dlq::group(store.as_ref(), &query).await?.text(),
                    (false, DlqFormat::Json) => json(&dlq::list(store.as_ref(), &query).await?)?,
                    (false, DlqFormat::Text) => dlq::list(store.as_ref(), &query).await?.text(),
                })
            })?
        }
        DlqCommand::Show(args) => {
            let queue = args.set.queue()?;
            let set = args.set.set();
            let shown = runtime()?.block_on(async {
                let store = crate::store::open_observer(&config.store).await?;
                anyhow::Ok(dlq::show(store.as_ref(), &queue, set, &args.id).await?)
            })?;
            let Some(shown) = shown else {
                writeln!(
                    out,
                    "no entry {} in the {} of {queue}",
                    sanitize(&args.id),
                    if set == FailedSet::Dead {
                        "dead list"
                    } else {
                        "DLQ"
                    }
                )?;
                out.flush()?;
                return Err(Exit(EXIT_FAILURE).into());
            };
            match args.set.format {
                DlqFormat::Json => json(&shown)?,
                DlqFormat::Text => {
                    let list = if set == FailedSet::Dead {
                        "dead list"
                    } else {
                        "DLQ"
                    };
                    let mut text = format!("{list} of {queue}\n");
                    for line in crate::ui::views::parts::inspector_lines(&shown.raw, now, 100) {
                        text.push_str(&line);
                        text.push('\n');
                    }
                    text
                }
            }
        }
    };
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
    Ok(format!("{}\n", crate::headless::json::to_string(value)?))
}
