//! The config error type: every message names where the bad value came from (file, line, column,
//! or the flag / environment variable) and the key.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::location::LocationSource;

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Ward's built-in default.
    Default,
    /// A config file, with the 1-based line and column of the value when known.
    File {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
    },
    /// A flag or an environment variable, e.g. "environment variable WARD_PARTITIONS".
    Override(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("built-in defaults"),
            Self::File {
                path,
                line: Some(line),
                column: Some(column),
            } => write!(f, "{} line {line} column {column}", path.display()),
            Self::File {
                path,
                line: Some(line),
                column: None,
            } => write!(f, "{} line {line}", path.display()),
            Self::File { path, .. } => write!(f, "{}", path.display()),
            Self::Override(label) => f.write_str(label),
        }
    }
}

/// Everything that can go wrong while locating, reading, parsing or validating the config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file named explicitly (`--config` or `WARD_CONFIG`) does not exist.
    #[error("config file {} (named by {chosen_by}) does not exist", .path.display())]
    Missing {
        path: PathBuf,
        chosen_by: LocationSource,
    },
    /// The file exists but could not be read (permissions, not UTF-8, a directory, ...).
    #[error("cannot read config file {}: {err}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        err: io::Error,
    },
    /// TOML syntax error, unknown key, wrong type or unknown enum value.
    #[error("config error in {at}: {message}{}", key_suffix(.key.as_deref()))]
    Parse {
        /// Always [`Origin::File`].
        at: Origin,
        /// Dotted key path (`store.partitions`) when it could be determined.
        key: Option<String>,
        message: String,
    },
    /// A value parsed but is not acceptable (out of range, malformed URL, inconsistent pair).
    #[error("config error in {at}: `{key}` {message}")]
    Invalid {
        at: Origin,
        /// Dotted key path, e.g. `store.partitions`.
        key: String,
        message: String,
    },
}

impl ConfigError {
    /// The dotted key path the error is about, when known.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Parse { key, .. } => key.as_deref(),
            Self::Invalid { key, .. } => Some(key),
            Self::Missing { .. } | Self::Read { .. } => None,
        }
    }

    /// Where the offending value came from, when it is a single place.
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            Self::Parse { at, .. } | Self::Invalid { at, .. } => Some(at),
            Self::Missing { .. } | Self::Read { .. } => None,
        }
    }
}

fn key_suffix(key: Option<&str>) -> String {
    key.map(|k| format!(" (key `{k}`)")).unwrap_or_default()
}
