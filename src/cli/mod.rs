//! Command-line definitions and one handler per subcommand; no business logic.
//!
//! Only this layer reads the real process environment: clap supplies each global flag's
//! `WARD_*` fallback, and [`GlobalArgs::location`] reads `$XDG_CONFIG_HOME` / `$HOME`.

pub mod action_cmd;
mod config_cmd;
pub mod dlq_cmd;
pub mod logging;
pub mod silence_cmd;
mod slo_cmd;
pub mod status_cmd;
mod template_cmd;
mod tui_cmd;
mod up_cmd;

pub use action_cmd::{Format, ReplayArgs};
pub use tui_cmd::{TuiArgs, runner as tui_runner};

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{
    Backend, Config, ConfigError, ConfigLocation, LocationSource, LogConfig, OVERRIDE_SPECS,
    Origin, Overrides, parse_profile,
};
use crate::model::Profile;

/// The environment fallback of `--read-only` (any of 1, true, yes, on).
pub const READ_ONLY_ENV: &str = "WARD_READ_ONLY";

/// Exit code for usage and configuration errors.
pub const EXIT_USAGE: u8 = 2;
/// Exit code for every other failure (and an indeterminate outcome).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code when the store cannot be reached.
pub const EXIT_UNREACHABLE: u8 = 3;
/// Exit code when the policy refuses an action (read-only).
pub const EXIT_REFUSED: u8 = 4;
/// Exit code of a `ward check` that could not decide (a source unreachable, or the check itself
/// failed to run), as monitoring plugins report UNKNOWN.
pub const EXIT_CHECK_UNKNOWN: u8 = 3;
/// Exit code when an action was interrupted between batches (ctrl-c).
pub const EXIT_INTERRUPTED: u8 = 130;

/// `ward`: alert-pipeline engine and terminal control room.
#[derive(Debug, Parser)]
#[command(
    name = "ward",
    version,
    about = "Alert-pipeline engine and terminal control room",
    long_about = "Alert-pipeline engine and terminal control room.\n\n\
        Settings come from, in order of precedence: command-line flags, WARD_* environment \
        variables, the config file, built-in defaults. See `ward print-config-template`.",
    propagate_version = true,
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted by every subcommand. Each has a `WARD_*` environment fallback.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Config file to read; it must exist [default: $XDG_CONFIG_HOME/ward/config.toml]
    #[arg(long, global = true, env = "WARD_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Store backend: memory or redis (overrides store.backend)
    #[arg(
        long = "store",
        global = true,
        env = "WARD_STORE_BACKEND",
        value_name = "BACKEND"
    )]
    pub store_backend: Option<Backend>,

    /// Redis URL: redis://, rediss:// or redis+unix:// (overrides store.redis_url; implies --store redis)
    #[arg(
        long = "redis",
        global = true,
        env = "WARD_REDIS_URL",
        value_name = "URL"
    )]
    pub redis_url: Option<String>,

    /// Key-schema profile: ward or mutt (overrides store.profile)
    #[arg(long, global = true, env = "WARD_PROFILE", value_name = "PROFILE", value_parser = parse_profile)]
    pub profile: Option<Profile>,

    /// Prefix of every store key (overrides store.key_prefix)
    #[arg(long, global = true, env = "WARD_KEY_PREFIX", value_name = "PREFIX")]
    pub key_prefix: Option<String>,

    /// Number of partitions, 1-1024 (overrides store.partitions)
    #[arg(long, global = true, env = "WARD_PARTITIONS", value_name = "N")]
    pub partitions: Option<u16>,

    /// Log level or tracing directives (overrides log.level; RUST_LOG wins when set)
    #[arg(long, global = true, env = "WARD_LOG_LEVEL", value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// Refuse every action, headless or in the control room (--write does not lift it)
    #[arg(
        long,
        global = true,
        env = READ_ONLY_ENV,
        value_parser = BoolishValueParser::new()
    )]
    pub read_only: bool,

    /// Whether each argument above came from its flag or its environment variable, by arg id.
    #[arg(skip)]
    sources: BTreeMap<&'static str, ValueSource>,
}

/// The subcommands. Later issues add `demo`, `up`, `tui`, `status`, … here.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Inspect the configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a config file documenting every option and its default, all commented out
    PrintConfigTemplate,
    /// Run the pipeline workers and the ingest endpoint until SIGINT or SIGTERM
    Up(up_cmd::UpArgs),
    /// Replay DLQ entries to their queue: plan, confirm, run in bounded batches, audit
    Replay(ReplayArgs),
    /// Delete DLQ (or dead-list) entries for good: plan, confirm by typing the count, audit
    Purge(action_cmd::PurgeArgs),
    /// Move DLQ entries to the dead list (replay and remediation leave them alone)
    Dead(action_cmd::DeadArgs),
    /// Load shedding for every worker: off, dlq or defer
    Shed(action_cmd::ShedArgs),
    /// A channel's circuit breaker: open (forced, with an expiry), reset or disable
    Breaker(action_cmd::BreakerArgs),
    /// Emergency stop: on stops all sending (or one channel's), off resumes
    Stop(action_cmd::StopArgs),
    /// Send a test alert through the real pipeline (to stdout unless a channel is named)
    TestAlert(action_cmd::TestAlertArgs),
    /// With --profile mutt: put a dead pod's in-flight entries (a processing list without a
    /// heartbeat) back on their queue, as MUTT's janitor does when a pod restarts
    RequeueOrphan(action_cmd::RequeueArgs),
    /// Read a queue's DLQ or dead list: list or group entries with the control room's filters,
    /// or show one (read only)
    #[command(subcommand)]
    Dlq(dlq_cmd::DlqCommand),
    /// Silences: add (plan with a preview of what it would hide, confirm, audit), ls, expire
    #[command(subcommand)]
    Silence(silence_cmd::SilenceCommand),
    /// One read of the deployment: queues, DLQs, breakers, flags, overrides, SLOs, freshness
    Status(status_cmd::StatusArgs),
    /// A status read every interval, one per line, until interrupted
    Watch(status_cmd::WatchArgs),
    /// Thresholds over one status read: exit 0 ok, 1 warning, 2 critical, 3 unknown or
    /// unreachable, one line per finding
    Check(status_cmd::CheckArgs),
    /// Engine and control room in one process on the memory store, with synthetic traffic and
    /// injected faults (needs nothing installed)
    Demo(TuiArgs),
    /// The control room, attached to a deployment's Redis (--redis URL, else store.redis_url)
    Tui(TuiArgs),
    /// Service level objectives
    #[command(subcommand)]
    Slo(SloCommand),
    /// Print the control room's key bindings: command, keys, whether it changes anything
    Keys,
    /// List the built-in themes, or (--items) every item a theme file can set
    Themes {
        /// List the items a theme sets, with what each colours
        #[arg(long)]
        items: bool,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum ConfigCommand {
    /// Show where the config file is looked up, whether it exists and what chose it
    Path,
    /// Print the resolved configuration (defaults < file < environment < flags) as TOML
    Show,
    /// Set a dynamic config value in the deployment's store (every worker reads it)
    Set(action_cmd::ConfigSetArgs),
    /// Delete a dynamic config value from the deployment's store
    Unset(action_cmd::ConfigUnsetArgs),
}

#[derive(Debug, Clone, Subcommand)]
pub enum SloCommand {
    /// Write Prometheus recording and alerting rules (Sloth names) for the configured SLOs;
    /// check them with `promtool check rules`
    Rules {
        /// Write to this file instead of standard output
        #[arg(long, short, value_name = "FILE")]
        output: Option<std::path::PathBuf>,
    },
}

impl Command {
    /// Whether the handler needs the loaded config (so a broken file does not stop, say,
    /// `ward config path` from telling you where that file is).
    pub fn needs_config(&self) -> bool {
        match self {
            Self::Config(ConfigCommand::Show | ConfigCommand::Set(_) | ConfigCommand::Unset(_))
            | Self::Up(_)
            | Self::Replay(_)
            | Self::Purge(_)
            | Self::Dead(_)
            | Self::Shed(_)
            | Self::Breaker(_)
            | Self::Stop(_)
            | Self::TestAlert(_)
            | Self::RequeueOrphan(_)
            | Self::Dlq(_)
            | Self::Silence(_)
            | Self::Status(_)
            | Self::Watch(_)
            | Self::Check(_)
            | Self::Demo(_)
            | Self::Tui(_)
            | Self::Slo(_)
            | Self::Keys => true,
            Self::Config(ConfigCommand::Path) | Self::PrintConfigTemplate | Self::Themes { .. } => {
                false
            }
        }
    }

    /// The control room owns the terminal: logs must go to a file, never to stderr.
    pub fn owns_terminal(&self) -> bool {
        matches!(self, Self::Demo(_) | Self::Tui(_))
    }
}

/// Headless commands attach to the deployment's Redis: a memory store is private to its process,
/// so reading or changing a fresh one would report on nothing.
fn attached(config: &Config) -> Config {
    let mut config = config.clone();
    config.store.backend = crate::config::Backend::Redis;
    config
}

/// End with this exit code, having said everything on stdout already (`ward check`'s verdict,
/// `ward status` of an unreachable store).
#[derive(Debug, thiserror::Error)]
#[error("exit code {0}")]
pub struct Exit(pub u8);

/// A usage error found after parsing (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Parses the process arguments and `WARD_*` environment variables.
pub fn parse() -> Result<Cli, clap::Error> {
    parse_from(std::env::args_os())
}

/// Parses `args` (the first item is the program name). Environment fallbacks still come from
/// the process environment, as clap reads them; empty variables count as unset.
pub fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    // An empty `WARD_*` variable counts as unset (`WARD_CONFIG= ward …` disables it), rather
    // than as an empty value that fails to parse. clap reads the variables when the command is
    // built; dropping the env binding of such an argument makes clap ignore it.
    let command = Cli::command().mut_args(|arg| {
        let empty = arg
            .get_env()
            .is_some_and(|name| std::env::var_os(name).is_some_and(|v| v.is_empty()));
        if empty { arg.env(None) } else { arg }
    });
    let matches = command.try_get_matches_from(args)?;
    let mut cli = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut Cli::command()))?;
    cli.global.record_sources(&matches);
    Ok(cli)
}

impl GlobalArgs {
    fn record_sources(&mut self, matches: &ArgMatches) {
        let ids = OVERRIDE_SPECS
            .iter()
            .map(|s| s.name)
            .chain(["config", "read_only"]);
        for id in ids {
            if let Some(source) = matches.value_source(id) {
                self.sources.insert(id, source);
            }
        }
    }

    /// The flag / environment layer for [`Config::load`], with each value labelled by where it
    /// came from.
    pub fn overrides(&self) -> Overrides {
        let mut labels = BTreeMap::new();
        for spec in OVERRIDE_SPECS {
            let label = match self.sources.get(spec.name) {
                Some(ValueSource::CommandLine) => format!("flag {}", spec.flag),
                Some(ValueSource::EnvVariable) => format!("environment variable {}", spec.env),
                _ => format!("flag {} or environment variable {}", spec.flag, spec.env),
            };
            labels.insert(spec.key.to_owned(), label);
        }
        Overrides {
            store_backend: self.store_backend,
            redis_url: self.redis_url.clone(),
            profile: self.profile,
            key_prefix: self.key_prefix.clone(),
            partitions: self.partitions,
            log_level: self.log_level.clone(),
            labels,
        }
    }

    /// Why the whole run is read-only (`--read-only` or its variable), if it is.
    pub fn read_only_reason(&self) -> Option<String> {
        self.read_only.then(|| match self.sources.get("read_only") {
            Some(ValueSource::EnvVariable) => format!("environment variable {READ_ONLY_ENV}"),
            _ => "--read-only".to_owned(),
        })
    }

    /// Where the config file is: `--config`, `$WARD_CONFIG`, or the XDG default.
    pub fn location(&self) -> ConfigLocation {
        let explicit = self.config.clone().map(|path| {
            let source = match self.sources.get("config") {
                Some(ValueSource::EnvVariable) => LocationSource::Env,
                _ => LocationSource::Flag,
            };
            (path, source)
        });
        ConfigLocation::resolve(explicit, |name| std::env::var_os(name))
    }

    /// The resolved config: file at [`Self::location`] with [`Self::overrides`] on top, its key
    /// bindings checked as the control room reads them.
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        let location = self.location();
        let config = Config::load(&location, &self.overrides())?;
        check_bindings(&config, &location)?;
        Ok(config)
    }

    /// Log settings for commands that do not load the config file: defaults plus a valid
    /// `--log-level` / `WARD_LOG_LEVEL`.
    pub fn log_without_file(&self) -> LogConfig {
        let overrides = Overrides {
            log_level: self.log_level.clone(),
            ..Overrides::default()
        };
        Config::from_overrides(&overrides)
            .map(|c| c.log)
            .unwrap_or_default()
    }
}

/// `[tui.bindings]` through the control room's keymap (the config layer does not know the key
/// names or the commands): a bad binding is a config error, named like any other.
fn check_bindings(config: &Config, location: &ConfigLocation) -> Result<(), ConfigError> {
    crate::ui::Keymap::new(&config.tui.bindings)
        .map(drop)
        .map_err(|error| ConfigError::Invalid {
            at: location.path.as_deref().map_or(Origin::Default, |path| {
                Origin::of_key(path, &["tui", "bindings", error.key()])
            }),
            key: "tui.bindings".to_owned(),
            message: error.to_string(),
        })
}

/// Runs the subcommand, writing its output to `out`. `config` must be `Some` when
/// [`Command::needs_config`] says so.
pub fn dispatch(cli: &Cli, config: Option<&Config>, out: &mut dyn Write) -> anyhow::Result<()> {
    let loaded = || config.ok_or_else(|| anyhow::anyhow!("internal error: config was not loaded"));
    let read_only_reason = cli.global.read_only_reason();
    let read_only = read_only_reason.as_deref();
    if matches!(cli.command, Command::Up(_) | Command::Demo(_))
        && config.is_some_and(|c| c.store.profile == Profile::Mutt)
    {
        return Err(UsageError(
            "--profile mutt attaches to a running MUTT deployment (ward tui, status, watch, \
             check and the action subcommands); ward up and ward demo run Ward's own pipeline"
                .to_owned(),
        )
        .into());
    }
    if let (Command::Up(_), Some(why)) = (&cli.command, read_only) {
        return Err(UsageError(format!(
            "{why}: ward up runs the pipeline, which writes to the store by design; read-only \
             applies to actions and the control room"
        ))
        .into());
    }
    match &cli.command {
        Command::Config(ConfigCommand::Set(args)) => {
            action_cmd::run(loaded()?, action_cmd::config_set(args), read_only, out)
        }
        Command::Config(ConfigCommand::Unset(args)) => {
            action_cmd::run(loaded()?, action_cmd::config_unset(args), read_only, out)
        }
        Command::Purge(args) => action_cmd::run(loaded()?, action_cmd::purge(args), read_only, out),
        Command::Dead(args) => action_cmd::run(loaded()?, action_cmd::dead(args), read_only, out),
        Command::Shed(args) => action_cmd::run(loaded()?, action_cmd::shed(args), read_only, out),
        Command::Breaker(args) => {
            action_cmd::run(loaded()?, action_cmd::breaker(args), read_only, out)
        }
        Command::Stop(args) => action_cmd::run(loaded()?, action_cmd::stop(args), read_only, out),
        Command::TestAlert(args) => {
            action_cmd::run(loaded()?, action_cmd::test_alert(args), read_only, out)
        }
        Command::RequeueOrphan(args) => action_cmd::run(
            loaded()?,
            Ok(action_cmd::requeue_orphan(args)),
            read_only,
            out,
        ),
        Command::Dlq(command) => dlq_cmd::run(loaded()?, command, out),
        Command::Silence(silence_cmd::SilenceCommand::Add(args)) => {
            action_cmd::run(loaded()?, silence_cmd::add(args), read_only, out)
        }
        Command::Silence(silence_cmd::SilenceCommand::Expire(args)) => {
            action_cmd::run(loaded()?, Ok(silence_cmd::expire(args)), read_only, out)
        }
        Command::Silence(silence_cmd::SilenceCommand::Ls(args)) => {
            silence_cmd::ls(loaded()?, args, out)
        }
        Command::Status(args) => status_cmd::status(loaded()?, args, out),
        Command::Watch(args) => status_cmd::watch(loaded()?, args, out),
        Command::Check(args) => status_cmd::check(loaded()?, args, out),
        Command::Config(ConfigCommand::Path) => config_cmd::path(&cli.global.location(), out),
        Command::Config(ConfigCommand::Show) => {
            let config = loaded()?;
            config_cmd::show(&cli.global.location(), config, out)
        }
        Command::PrintConfigTemplate => template_cmd::print(out),
        Command::Up(args) => up_cmd::run(loaded()?, args, out),
        Command::Replay(args) => {
            action_cmd::run(loaded()?, action_cmd::replay(args), read_only, out)
        }
        Command::Demo(args) | Command::Tui(args) => {
            let config = loaded()?;
            let mut args = args.clone();
            args.read_only.clone_from(&read_only_reason);
            let location = cli.global.location();
            if let Some(dir) = location.path.as_deref().and_then(std::path::Path::parent) {
                args.theme_dirs.push(dir.join("themes"));
            }
            if matches!(cli.command, Command::Demo(_)) {
                tui_cmd::demo(config, &args)?;
            } else {
                tui_cmd::tui(config, &args)?;
            }
            if args.screenshots.is_none() {
                tui_cmd::farewell(out)?;
            }
            Ok(())
        }
        Command::Themes { items } => tui_cmd::themes(*items, out),
        Command::Slo(SloCommand::Rules { output }) => {
            slo_cmd::rules(loaded()?, output.as_deref(), out)
        }
        Command::Keys => tui_cmd::keys(loaded()?, out),
    }
}

/// Exit code for an error: 2 for config and usage errors (and actions that cannot be planned as
/// asked), 3 for an unreachable store, 4 for a refusal by policy, 130 for an interrupted action,
/// 1 otherwise.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if let Some(Exit(code)) = err.downcast_ref::<Exit>() {
        return *code;
    }
    let any = |test: &dyn Fn(&(dyn std::error::Error + 'static)) -> bool| err.chain().any(test);
    if any(&|e| {
        e.is::<ConfigError>()
            || e.is::<UsageError>()
            || e.is::<clap::Error>()
            // An action that cannot be planned as asked (no reason, a past expiry, a bad list).
            || e.downcast_ref::<crate::actions::ActionError>()
                .is_some_and(|a| matches!(a, crate::actions::ActionError::Invalid(_)))
    }) {
        EXIT_USAGE
    } else if any(&|e| {
        e.is::<crate::actions::Refusal>()
            || e.downcast_ref::<crate::actions::ActionError>()
                .is_some_and(|a| matches!(a, crate::actions::ActionError::Refused(_)))
    }) {
        EXIT_REFUSED
    } else if any(&|e| e.is::<action_cmd::Interrupted>()) {
        EXIT_INTERRUPTED
    } else if any(&|e| {
        e.downcast_ref::<crate::store::StoreError>()
            .is_some_and(crate::store::StoreError::is_unavailable)
            || e.downcast_ref::<crate::actions::ActionError>().is_some_and(
                |a| matches!(a, crate::actions::ActionError::Store(s) if s.is_unavailable()),
            )
    }) {
        EXIT_UNREACHABLE
    } else {
        EXIT_FAILURE
    }
}

/// Whether the error is a write to a closed pipe (`ward … | head -1`): not a failure. A broken
/// connection to the store is one (its cause is an `EPIPE` too), and is not mistaken for this.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .take_while(|e| {
            !e.is::<crate::store::StoreError>() && !e.is::<crate::actions::ActionError>()
        })
        .any(|e| {
            e.downcast_ref::<io::Error>()
                .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
        })
}
