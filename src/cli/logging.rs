//! Tracing setup: `fmt` to stderr (or to `log.file`), filtered by `RUST_LOG` when set, else by
//! `log.level`.

use std::fs::OpenOptions;
use std::io::{self, IsTerminal, Write as _};
use std::sync::Mutex;

use anyhow::Context as _;
use tracing_subscriber::EnvFilter;

use super::UsageError;
use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. Call once, before anything logs.
pub fn init(log: &LogConfig) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        // A bad RUST_LOG is a usage error (exit 2), like a bad flag.
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::builder()
            .parse(&directives)
            .map_err(|e| UsageError(format!("invalid RUST_LOG {directives:?}: {e}")))?,
        _ => EnvFilter::builder()
            .parse(&log.level)
            .with_context(|| format!("invalid log level {:?}", log.level))?,
    };
    // A log file that cannot be opened is reported loudly but does not stop the command:
    // the logs go to stderr instead.
    let (file, file_error) = match &log.file {
        Some(path) => match OpenOptions::new().create(true).append(true).open(path) {
            Ok(file) => (Some(file), None),
            Err(err) => (
                None,
                Some(format!("cannot open log file {}: {err}", path.display())),
            ),
        },
        None => (None, None),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match (file, log.format) {
        (Some(file), format) => {
            let builder = builder.with_ansi(false).with_writer(Mutex::new(file));
            match format {
                LogFormat::Text => builder.try_init(),
                LogFormat::Json => builder.json().try_init(),
            }
        }
        (None, LogFormat::Text) => builder
            .with_ansi(io::stderr().is_terminal())
            .with_writer(io::stderr)
            .try_init(),
        (None, LogFormat::Json) => builder
            .with_ansi(false)
            .json()
            .with_writer(io::stderr)
            .try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))?;
    if let Some(message) = file_error {
        let _ = writeln!(
            io::stderr(),
            "warning: {message}; logging to stderr instead"
        );
    }
    Ok(())
}
