//! Reading the file and merging the layers: flag > env > file > default, then validation.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::file::{FileConfig, FileDlq, FileLog, FileQueues, FileStore};
use super::{
    Backend, Config, ConfigError, ConfigLocation, DlqConfig, LogConfig, MAX_BATCH_SIZE,
    MAX_PARTITIONS, Origin, QueuesConfig, StoreConfig,
};
use crate::model::{Profile, QueueName};

/// One setting that a flag and a `WARD_*` environment variable can override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverrideSpec {
    /// Dotted config key, e.g. `store.partitions`.
    pub key: &'static str,
    /// Field of [`Overrides`] (and id of the clap argument).
    pub name: &'static str,
    /// Long flag, e.g. `--partitions`.
    pub flag: &'static str,
    /// Environment variable, e.g. `WARD_PARTITIONS`.
    pub env: &'static str,
}

/// Every flag / environment override, in the order `--help` lists them.
pub const OVERRIDE_SPECS: &[OverrideSpec] = &[
    OverrideSpec {
        key: "store.backend",
        name: "store_backend",
        flag: "--store",
        env: "WARD_STORE_BACKEND",
    },
    OverrideSpec {
        key: "store.redis_url",
        name: "redis_url",
        flag: "--redis",
        env: "WARD_REDIS_URL",
    },
    OverrideSpec {
        key: "store.profile",
        name: "profile",
        flag: "--profile",
        env: "WARD_PROFILE",
    },
    OverrideSpec {
        key: "store.key_prefix",
        name: "key_prefix",
        flag: "--key-prefix",
        env: "WARD_KEY_PREFIX",
    },
    OverrideSpec {
        key: "store.partitions",
        name: "partitions",
        flag: "--partitions",
        env: "WARD_PARTITIONS",
    },
    OverrideSpec {
        key: "log.level",
        name: "log_level",
        flag: "--log-level",
        env: "WARD_LOG_LEVEL",
    },
];

/// The flag and environment layer, already merged (flag over env) by the caller: clap does
/// that through `#[arg(env = "WARD_…")]`. Tests build this directly instead of touching the
/// process environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    pub store_backend: Option<Backend>,
    pub redis_url: Option<String>,
    pub profile: Option<Profile>,
    pub key_prefix: Option<String>,
    pub partitions: Option<u16>,
    pub log_level: Option<String>,
    /// Where each override came from, keyed by dotted config key (`store.partitions` →
    /// `environment variable WARD_PARTITIONS`); only used in error messages.
    pub labels: BTreeMap<String, String>,
}

impl Overrides {
    fn origin(&self, key: &str) -> Origin {
        Origin::Override(self.labels.get(key).cloned().unwrap_or_else(|| {
            OVERRIDE_SPECS.iter().find(|s| s.key == key).map_or_else(
                || format!("command-line or environment override of {key}"),
                |s| format!("flag {} or environment variable {}", s.flag, s.env),
            )
        }))
    }
}

impl Config {
    /// Loads the file at `location` (a missing file is fine unless it was named explicitly) and
    /// merges `overrides` over it.
    pub fn load(location: &ConfigLocation, overrides: &Overrides) -> Result<Self, ConfigError> {
        let Some(path) = location.path.as_deref() else {
            return Self::from_overrides(overrides);
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_toml_str(&text, path, overrides),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                if location.chosen_by.is_explicit() {
                    Err(ConfigError::Missing {
                        path: path.to_owned(),
                        chosen_by: location.chosen_by,
                    })
                } else {
                    Self::from_overrides(overrides)
                }
            }
            Err(err) => Err(ConfigError::Read {
                path: path.to_owned(),
                err,
            }),
        }
    }

    /// Defaults with `overrides` applied, no file.
    pub fn from_overrides(overrides: &Overrides) -> Result<Self, ConfigError> {
        Resolver {
            file: None,
            overrides,
        }
        .resolve(FileConfig::default())
    }

    /// Parses `text` as the content of the file at `path` (used only in messages) and merges
    /// `overrides` over it.
    pub fn from_toml_str(
        text: &str,
        path: &Path,
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| parse_error(text, path, &e))?;
        Resolver {
            file: Some((path, text)),
            overrides,
        }
        .resolve(file)
    }
}

fn parse_error(text: &str, path: &Path, err: &toml::de::Error) -> ConfigError {
    let span = err.span();
    let (line, column) = match &span {
        Some(span) => {
            let (line, column) = line_col(text, span.start);
            (Some(line), Some(column))
        }
        None => (None, None),
    };
    ConfigError::Parse {
        at: Origin::File {
            path: path.to_owned(),
            line,
            column,
        },
        key: span.and_then(|span| key_at(text, &span)),
        message: err.message().trim().to_owned(),
    }
}

impl Origin {
    /// Where the key at the dotted path `keys` is written in the file at `path`: the file with
    /// the key's line and column, or just the file when the key cannot be found there.
    pub fn of_key(path: &Path, keys: &[&str]) -> Self {
        let position = std::fs::read_to_string(path).ok().and_then(|text| {
            let (table, _errors) = DeTable::parse_recoverable(&text);
            let (last, parents) = keys.split_last()?;
            let mut table = table.get_ref();
            for name in parents {
                let (_, value) = table.iter().find(|(key, _)| key.get_ref() == name)?;
                let DeValue::Table(inner) = value.get_ref() else {
                    return None;
                };
                table = inner;
            }
            let (key, _) = table.iter().find(|(key, _)| key.get_ref() == last)?;
            Some(line_col(&text, key.span().start))
        });
        Self::File {
            path: path.to_owned(),
            line: position.map(|(line, _)| line),
            column: position.map(|(_, column)| column),
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The dotted path of the key an error at `span` is about: the innermost key whose name or
/// value covers it, else (after a syntax error) the last key that starts earlier on its line.
fn key_at(text: &str, span: &Range<usize>) -> Option<String> {
    struct Entry {
        key: Range<usize>,
        value: Range<usize>,
        path: String,
    }
    fn walk(table: &DeTable<'_>, prefix: &str, out: &mut Vec<Entry>) {
        for (key, value) in table {
            let path = if prefix.is_empty() {
                key.get_ref().to_string()
            } else {
                format!("{prefix}.{}", key.get_ref())
            };
            if let DeValue::Table(inner) = value.get_ref() {
                walk(inner, &path, out);
            }
            out.push(Entry {
                key: key.span(),
                value: value.span(),
                path,
            });
        }
    }
    // Recoverable parsing still yields the keys around a syntax error.
    let (table, _errors) = DeTable::parse_recoverable(text);
    let mut entries = Vec::new();
    walk(table.get_ref(), "", &mut entries);

    let at = span.start;
    let covering = entries
        .iter()
        .filter(|e| e.key.contains(&at) || e.value.contains(&at))
        .max_by_key(|e| e.path.matches('.').count());
    let line_start = text
        .get(..at.min(text.len()))
        .and_then(|before| before.rfind('\n'))
        .map_or(0, |i| i + 1);
    let same_line = || {
        entries
            .iter()
            .filter(|e| e.key.start >= line_start && e.key.start <= at)
            .max_by_key(|e| e.key.start)
    };
    covering.or_else(same_line).map(|e| e.path.clone())
}

/// A merged value and where it came from.
struct Sourced<T> {
    value: T,
    at: Origin,
}

struct Resolver<'a> {
    /// The file's path and text, for line numbers.
    file: Option<(&'a Path, &'a str)>,
    overrides: &'a Overrides,
}

fn invalid(at: Origin, key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        at,
        key: key.to_owned(),
        message: message.into(),
    }
}

impl Resolver<'_> {
    fn file_origin(&self, span: &Range<usize>) -> Origin {
        match self.file {
            Some((path, text)) => {
                let (line, column) = line_col(text, span.start);
                Origin::File {
                    path: path.to_owned(),
                    line: Some(line),
                    column: Some(column),
                }
            }
            None => Origin::Default,
        }
    }

    /// flag/env > file > default for one key.
    fn pick<T>(
        &self,
        key: &str,
        over: Option<T>,
        file: Option<Spanned<T>>,
        default: T,
    ) -> Sourced<T> {
        if let Some(value) = over {
            return Sourced {
                value,
                at: self.overrides.origin(key),
            };
        }
        if let Some(spanned) = file {
            let at = self.file_origin(&spanned.span());
            return Sourced {
                value: spanned.into_inner(),
                at,
            };
        }
        Sourced {
            value: default,
            at: Origin::Default,
        }
    }

    /// A value that must lie in `min..=max`.
    fn ranged<T>(
        &self,
        key: &str,
        over: Option<T>,
        file: Option<Spanned<T>>,
        default: T,
        (min, max): (T, T),
    ) -> Result<T, ConfigError>
    where
        T: PartialOrd + std::fmt::Display + Copy,
    {
        let picked = self.pick(key, over, file, default);
        if picked.value < min || picked.value > max {
            return Err(invalid(
                picked.at,
                key,
                format!("must be between {min} and {max}, got {}", picked.value),
            ));
        }
        Ok(picked.value)
    }

    fn resolve(&self, file: FileConfig) -> Result<Config, ConfigError> {
        let config = self.resolve_sections(file)?;
        self.check_attempts(&config)?;
        Ok(config)
    }

    /// `queues.max_attempts` caps every retry policy: a policy asking for more contradicts it.
    fn check_attempts(&self, config: &Config) -> Result<(), ConfigError> {
        let cap = config.queues.max_attempts;
        let Some((i, policy)) = config
            .delivery
            .retry_policies
            .iter()
            .enumerate()
            .find(|(_, p)| p.max_attempts > cap)
        else {
            return Ok(());
        };
        let at = match self.file {
            Some((path, _)) => Origin::of_key(path, &["delivery", "retry_policies"]),
            None => Origin::Default,
        };
        Err(invalid(
            at,
            &format!("delivery.retry_policies[{i}].max_attempts"),
            format!(
                "{} for {:?} is above queues.max_attempts = {cap}, which caps every retry \
                 policy (the lower wins: deliveries would give up after {cap}); lower it, or \
                 raise queues.max_attempts",
                policy.max_attempts, policy.name
            ),
        ))
    }

    fn resolve_sections(&self, file: FileConfig) -> Result<Config, ConfigError> {
        Ok(Config {
            store: self.store(file.store.unwrap_or_default())?,
            queues: self.queues(file.queues.unwrap_or_default())?,
            dlq: self.dlq(file.dlq.unwrap_or_default())?,
            log: self.log(file.log.unwrap_or_default())?,
            ingest: self.section(file.ingest, super::IngestConfig::validate)?,
            workers: self.section(file.workers, super::WorkersConfig::validate)?,
            breaker: self.section(file.breaker, super::pipeline::validate_breaker)?,
            routing: self.section(file.routing, |_| Ok(()))?,
            delivery: self.section(file.delivery, super::DeliveryConfig::validate)?,
            tui: self.section(file.tui, super::TuiConfig::validate)?,
            slo: self.section(file.slo, super::slo::SloConfig::validate)?,
            mutt: self.section(file.mutt, super::mutt::MuttConfig::validate)?,
            alerting: self.section(file.alerting, super::alerting::AlertingConfig::validate)?,
        })
    }

    /// A section read whole: its defaults if absent, else validated, errors pointing at it.
    fn section<T: Default>(
        &self,
        section: Option<Spanned<T>>,
        validate: impl Fn(&T) -> Result<(), (String, String)>,
    ) -> Result<T, ConfigError> {
        let Some(section) = section else {
            return Ok(T::default());
        };
        let at = self.file_origin(&section.span());
        let value = section.into_inner();
        validate(&value).map_err(|(key, message)| invalid(at, &key, message))?;
        Ok(value)
    }

    fn store(&self, f: FileStore) -> Result<StoreConfig, ConfigError> {
        let d = StoreConfig::default();
        let o = self.overrides;

        let redis_url = self.pick(
            "store.redis_url",
            o.redis_url.clone(),
            f.redis_url,
            d.redis_url,
        );
        check_redis_url(&redis_url.value)
            .map_err(|m| invalid(redis_url.at, "store.redis_url", m))?;

        let key_prefix = self.pick(
            "store.key_prefix",
            o.key_prefix.clone(),
            f.key_prefix,
            d.key_prefix,
        );
        check_key_prefix(&key_prefix.value)
            .map_err(|m| invalid(key_prefix.at, "store.key_prefix", m))?;

        // A Redis URL given as a flag (or its environment variable) means Redis, unless the
        // backend is given that way too.
        let backend = match (o.store_backend, &o.redis_url) {
            (None, Some(_)) => Backend::Redis,
            _ => {
                self.pick("store.backend", o.store_backend, f.backend, d.backend)
                    .value
            }
        };
        Ok(StoreConfig {
            backend,
            redis_url: redis_url.value,
            profile: self
                .pick("store.profile", o.profile, f.profile, d.profile)
                .value,
            key_prefix: key_prefix.value,
            partitions: self.ranged(
                "store.partitions",
                o.partitions,
                f.partitions,
                d.partitions,
                (1, MAX_PARTITIONS),
            )?,
            response_timeout_ms: self.ranged(
                "store.response_timeout_ms",
                None,
                f.response_timeout_ms,
                d.response_timeout_ms,
                (1, u64::MAX),
            )?,
            connect_timeout_ms: self.ranged(
                "store.connect_timeout_ms",
                None,
                f.connect_timeout_ms,
                d.connect_timeout_ms,
                (1, u64::MAX),
            )?,
            replica_acks: match f.replica_acks {
                Some(given) => {
                    Some(self.ranged("store.replica_acks", None, Some(given), 0, (0, 5))?)
                }
                None => d.replica_acks,
            },
        })
    }

    fn queues(&self, f: FileQueues) -> Result<QueuesConfig, ConfigError> {
        let d = QueuesConfig::default();
        let names = match f.names {
            Some(list) => self.queue_names(list)?,
            None => d.names,
        };

        let lease = self.pick("queues.lease_ms", None, f.lease_ms, d.lease_ms);
        let heartbeat = self.pick("queues.heartbeat_ms", None, f.heartbeat_ms, d.heartbeat_ms);
        if heartbeat.value == 0 {
            return Err(invalid(
                heartbeat.at,
                "queues.heartbeat_ms",
                "must be at least 1",
            ));
        }
        if lease.value <= heartbeat.value {
            // Point at whichever of the two the user actually set.
            let (at, key, message) = if lease.at == Origin::Default {
                (
                    heartbeat.at,
                    "queues.heartbeat_ms",
                    format!(
                        "({}) must be less than `queues.lease_ms` ({})",
                        heartbeat.value, lease.value
                    ),
                )
            } else {
                (
                    lease.at,
                    "queues.lease_ms",
                    format!(
                        "({}) must be greater than `queues.heartbeat_ms` ({})",
                        lease.value, heartbeat.value
                    ),
                )
            };
            return Err(invalid(
                at,
                key,
                format!("{message}, or leases expire between heartbeats"),
            ));
        }

        Ok(QueuesConfig {
            names,
            lease_ms: lease.value,
            heartbeat_ms: heartbeat.value,
            janitor_interval_ms: self.ranged(
                "queues.janitor_interval_ms",
                None,
                f.janitor_interval_ms,
                d.janitor_interval_ms,
                (1, u64::MAX),
            )?,
            max_attempts: self.ranged(
                "queues.max_attempts",
                None,
                f.max_attempts,
                d.max_attempts,
                (1, u32::MAX),
            )?,
            max_replays: self
                .pick("queues.max_replays", None, f.max_replays, d.max_replays)
                .value,
            batch_size: self.ranged(
                "queues.batch_size",
                None,
                f.batch_size,
                d.batch_size,
                (1, MAX_BATCH_SIZE),
            )?,
        })
    }

    fn queue_names(
        &self,
        list: Spanned<Vec<Spanned<String>>>,
    ) -> Result<Vec<QueueName>, ConfigError> {
        const KEY: &str = "queues.names";
        let list_at = self.file_origin(&list.span());
        let list = list.into_inner();
        if list.is_empty() {
            return Err(invalid(list_at, KEY, "must name at least one queue"));
        }
        let mut seen = BTreeSet::new();
        let mut names = Vec::with_capacity(list.len());
        for item in list {
            let at = self.file_origin(&item.span());
            let name = QueueName::new(item.get_ref())
                .map_err(|e| invalid(at.clone(), KEY, e.to_string()))?;
            if !seen.insert(name.clone()) {
                return Err(invalid(at, KEY, format!("lists queue `{name}` twice")));
            }
            names.push(name);
        }
        Ok(names)
    }

    fn dlq(&self, f: FileDlq) -> Result<DlqConfig, ConfigError> {
        let d = DlqConfig::default();
        Ok(DlqConfig {
            replay_batch: self.ranged(
                "dlq.replay_batch",
                None,
                f.replay_batch,
                d.replay_batch,
                (1, MAX_BATCH_SIZE),
            )?,
            replay_rate_per_s: self.ranged(
                "dlq.replay_rate_per_s",
                None,
                f.replay_rate_per_s,
                d.replay_rate_per_s,
                (1, u32::MAX),
            )?,
        })
    }

    fn log(&self, f: FileLog) -> Result<LogConfig, ConfigError> {
        let d = LogConfig::default();
        let level = self.pick(
            "log.level",
            self.overrides.log_level.clone(),
            f.level,
            d.level,
        );
        check_log_level(&level.value).map_err(|m| invalid(level.at, "log.level", m))?;
        let file = match f.file {
            Some(path) if path.get_ref().as_os_str().is_empty() => {
                return Err(invalid(
                    self.file_origin(&path.span()),
                    "log.file",
                    "must not be empty (remove the key to log to stderr)",
                ));
            }
            Some(path) => Some(path.into_inner()),
            None => None::<PathBuf>,
        };
        Ok(LogConfig {
            level: level.value,
            format: self.pick("log.format", None, f.format, d.format).value,
            file,
        })
    }
}

fn check_redis_url(url: &str) -> Result<(), String> {
    const SCHEMES: [&str; 3] = ["redis://", "rediss://", "redis+unix://"];
    if let Some(seeds) = super::cluster_seeds(url) {
        return seeds.map(drop);
    }
    let rest = SCHEMES
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme))
        .ok_or_else(|| {
            format!(
                "must start with redis://, rediss:// (TLS), redis+unix:// or \
                 redis+cluster:// (a Redis Cluster's seed nodes), got {url:?}"
            )
        })?;
    if rest.is_empty() || rest.chars().any(char::is_whitespace) {
        return Err(format!("is not a usable Redis URL: {url:?}"));
    }
    Ok(())
}

fn check_key_prefix(prefix: &str) -> Result<(), String> {
    let valid = !prefix.is_empty()
        && prefix.len() <= 64
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "must be 1-64 characters of A-Z, a-z, 0-9, '_', '-', '.' or ':', got {prefix:?}"
        ))
    }
}

const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

fn check_log_level(level: &str) -> Result<(), String> {
    let expected = || {
        format!(
            "must be a level ({}) or directives like `info,ward::store=debug`, got {level:?}",
            LEVELS.join(", ")
        )
    };
    let is_level = |s: &str| LEVELS.iter().any(|l| l.eq_ignore_ascii_case(s.trim()));
    if level.trim().is_empty() {
        return Err(expected());
    }
    for directive in level.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let ok = match directive.rsplit_once('=') {
            Some((target, lvl)) => !target.trim().is_empty() && is_level(lvl),
            None => is_level(directive),
        };
        if !ok {
            return Err(expected());
        }
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(level)
        .map(|_| ())
        .map_err(|e| format!("{}: {e}", expected()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("a\nbc\n", 0), (1, 1));
        assert_eq!(line_col("a\nbc\n", 3), (2, 2));
        assert_eq!(line_col("a\nbc\n", 99), (3, 1));
    }

    #[test]
    fn key_at_finds_nested_keys() {
        let text = "[store]\npartitions = \"x\"\n";
        let at = text.find("\"x\"").unwrap_or_default();
        assert_eq!(
            key_at(text, &(at..at + 3)).as_deref(),
            Some("store.partitions")
        );
    }

    #[test]
    fn log_levels() {
        assert!(check_log_level("info").is_ok());
        assert!(check_log_level("WARN").is_ok());
        assert!(check_log_level("info,ward::store=debug").is_ok());
        assert!(check_log_level("infoo").is_err());
        assert!(check_log_level("").is_err());
        assert!(check_log_level("ward=loud").is_err());
    }

    #[test]
    fn redis_urls() {
        assert!(check_redis_url("redis://localhost:6379/0").is_ok());
        assert!(check_redis_url("rediss://user:pw@host:6380").is_ok());
        assert!(check_redis_url("redis+unix:///run/redis.sock").is_ok());
        assert!(check_redis_url("redis+cluster://a:7000,b:7001").is_ok());
        assert!(check_redis_url("redis+cluster://a:7000/2").is_err());
        assert!(check_redis_url("http://localhost").is_err());
        assert!(check_redis_url("redis://").is_err());
    }
}
