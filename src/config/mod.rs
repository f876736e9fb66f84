//! Typed configuration: TOML file, `WARD_*` env and flags layered over defaults.
//!
//! Precedence is **flag > env (`WARD_*`) > file > default**. The file layer
//! ([`file`]) has every key optional and rejects unknown keys; the command line
//! and the environment arrive together as [`Overrides`] (clap merges a flag with its `env`
//! fallback); [`Config::load`] merges the layers and validates the result. Every error names
//! the file, line, column and key, or the flag / environment variable that supplied the value.
//! The user's file is only ever read.
//!
//! Adding a section: a `File…` struct in `file.rs`, a resolved struct here (with `Default`), a
//! `resolve_…` step in `load.rs`, and its documentation in `template.rs` (a test checks that the
//! template covers every key).

pub mod alerting;
mod error;
mod file;
mod load;
mod location;
pub mod mutt;
mod pipeline;
pub mod slo;
pub mod template;
mod tui;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{Profile, QueueName};

pub use error::{ConfigError, Origin};
pub use load::{OVERRIDE_SPECS, OverrideSpec, Overrides};
pub use location::{CONFIG_ENV, ConfigLocation, LocationSource};
pub use pipeline::{ApiKey, DeliveryConfig, IngestConfig, WorkersConfig};
pub use tui::{MIN_REFRESH_MS, TuiConfig};

use crate::engine::breaker::BreakerConfig;
use crate::engine::routing::RoutingConfig;

/// Most partitions a deployment may have.
pub const MAX_PARTITIONS: u16 = 1024;

/// Largest `queues.batch_size` and `dlq.replay_batch`: the store's per-call limit.
pub const MAX_BATCH_SIZE: usize = crate::model::MAX_BATCH;

/// The fully resolved configuration: every layer merged, every value validated.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Config {
    pub store: StoreConfig,
    pub queues: QueuesConfig,
    pub dlq: DlqConfig,
    pub log: LogConfig,
    pub ingest: IngestConfig,
    pub workers: WorkersConfig,
    pub breaker: BreakerConfig,
    pub routing: RoutingConfig,
    pub delivery: DeliveryConfig,
    pub tui: TuiConfig,
    pub slo: slo::SloConfig,
    pub mutt: mutt::MuttConfig,
    pub alerting: alerting::AlertingConfig,
}

impl Config {
    /// The resolved config as TOML (a valid config file; `log.file` is omitted when unset).
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }

    /// A copy safe to print or log: the password in `store.redis_url` is replaced by `***`.
    #[must_use]
    pub fn redacted(&self) -> Self {
        let mut copy = self.clone();
        copy.store.redis_url = redact_url(&self.store.redis_url);
        copy
    }
}

/// Replaces the password of a `scheme://user:password@host…` URL with `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// The schemes that name a cluster's seed nodes.
const CLUSTER_SCHEMES: [(&str, &str); 2] = [
    ("redis+cluster://", "redis://"),
    ("rediss+cluster://", "rediss://"),
];

/// A cluster URL is `redis+cluster://[user:password@]host:port[,host:port…]` (`rediss+cluster://`
/// for TLS): seed nodes, any of which tells the client the rest.
/// The seed nodes of a cluster URL, each as a plain `redis://` URL carrying the credentials;
/// `None` when `url` names a single server.
pub fn cluster_seeds(url: &str) -> Option<Result<Vec<String>, String>> {
    let (scheme, rest) = CLUSTER_SCHEMES
        .iter()
        .find_map(|(cluster, plain)| url.strip_prefix(cluster).map(|rest| (*plain, rest)))?;
    let rest = rest.trim_end_matches('/');
    let (auth, hosts) = match rest.rsplit_once('@') {
        Some((auth, hosts)) => (format!("{auth}@"), hosts),
        None => (String::new(), rest),
    };
    if hosts.contains('/') || hosts.contains('?') {
        return Some(Err(
            "a cluster URL names seed nodes only (host:port,host:port): a cluster has no \
             database number"
                .to_owned(),
        ));
    }
    let seeds: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|host| !host.is_empty())
        .map(|host| format!("{scheme}{auth}{host}/"))
        .collect();
    if seeds.is_empty() {
        return Some(Err(
            "a cluster URL needs at least one seed node: redis+cluster://host:port[,host:port]"
                .to_owned(),
        ));
    }
    Some(Ok(seeds))
}

/// Which store implementation to run against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// In-process store: fast, lost on exit. Good for demos and tests.
    #[default]
    Memory,
    /// A Redis server at `store.redis_url`.
    Redis,
}

impl Backend {
    pub const ALL: [Self; 2] = [Self::Memory, Self::Redis];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis => "redis",
        }
    }
}

/// How log lines are formatted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    pub const ALL: [Self; 2] = [Self::Text, Self::Json];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
        }
    }
}

macro_rules! str_enum_traits {
    ($ty:ty, $what:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .into_iter()
                    .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
                    .ok_or_else(|| {
                        let names: Vec<_> = Self::ALL.iter().map(|v| v.as_str()).collect();
                        format!(
                            "unknown {} `{s}`, expected one of: {}",
                            $what,
                            names.join(", ")
                        )
                    })
            }
        }
    };
}

str_enum_traits!(Backend, "store backend");
str_enum_traits!(LogFormat, "log format");

/// Parses a key-schema profile name (`ward` or `mutt`), for flags and environment variables.
pub fn parse_profile(s: &str) -> Result<Profile, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "ward" => Ok(Profile::Ward),
        "mutt" => Ok(Profile::Mutt),
        _ => Err(format!(
            "unknown profile `{s}`, expected one of: ward, mutt"
        )),
    }
}

/// `[store]`: where pipeline state lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreConfig {
    /// `memory` or `redis`.
    pub backend: Backend,
    /// `redis://`, `rediss://` (TLS) or `redis+unix://` URL; used when `backend = "redis"`.
    pub redis_url: String,
    /// Key-schema profile: Ward's own layout or an existing MUTT deployment.
    pub profile: Profile,
    /// Prefix of every Redis key.
    pub key_prefix: String,
    /// Number of partitions, `1..=MAX_PARTITIONS`.
    pub partitions: u16,
    /// How long to wait for a Redis reply, in milliseconds.
    pub response_timeout_ms: u64,
    /// How long to wait for a Redis connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Replicas that must confirm a new alert before it is accepted; `None`: 1 on a cluster,
    /// 0 on a single server.
    pub replica_acks: Option<u32>,
}

impl StoreConfig {
    /// What plans and audit records name as the target: the server without credentials (its
    /// scheme names the backend) and the key prefix.
    pub fn target_label(&self) -> String {
        match self.backend {
            Backend::Memory => "memory".to_owned(),
            Backend::Redis => {
                let server = redact_url(&self.redis_url);
                format!("{server} ({})", self.short_label())
            }
        }
    }

    /// The short name of a deployment for headers, where the server is shown beside it: the
    /// key prefix (it tells deployments on one Redis apart).
    pub fn short_label(&self) -> String {
        match (self.backend, self.profile) {
            (Backend::Memory, _) => "memory".to_owned(),
            (Backend::Redis, Profile::Mutt) => "mutt".to_owned(),
            (Backend::Redis, Profile::Ward) => self.key_prefix.clone(),
        }
    }

    pub fn response_timeout(&self) -> Duration {
        Duration::from_millis(self.response_timeout_ms)
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Memory,
            redis_url: "redis://127.0.0.1:6379".to_owned(),
            profile: Profile::Ward,
            key_prefix: "ward".to_owned(),
            partitions: 1,
            response_timeout_ms: 2000,
            connect_timeout_ms: 1000,
            replica_acks: None,
        }
    }
}

/// `[queues]`: work queues, leases and retry limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueuesConfig {
    /// The queues the pipeline uses; non-empty, no duplicates.
    pub names: Vec<QueueName>,
    /// How long a leased envelope stays invisible to other workers, in milliseconds.
    pub lease_ms: u64,
    /// How often a worker extends its leases, in milliseconds; less than `lease_ms`.
    pub heartbeat_ms: u64,
    /// How often the janitor requeues envelopes whose lease expired, in milliseconds.
    pub janitor_interval_ms: u64,
    /// Delivery attempts before an envelope goes to the DLQ (at least 1), counting the first:
    /// the ceiling of every retry policy (a delivery gives up at the lower of the two).
    pub max_attempts: u32,
    /// How often one envelope may be replayed from the DLQ.
    pub max_replays: u32,
    /// Envelopes leased per store call, `1..=MAX_BATCH_SIZE`.
    pub batch_size: usize,
}

impl QueuesConfig {
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }

    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }

    pub fn janitor_interval(&self) -> Duration {
        Duration::from_millis(self.janitor_interval_ms)
    }
}

impl Default for QueuesConfig {
    fn default() -> Self {
        Self {
            names: default_queue_names(),
            lease_ms: 30_000,
            heartbeat_ms: 5_000,
            janitor_interval_ms: 5_000,
            max_attempts: 8,
            max_replays: 3,
            batch_size: 100,
        }
    }
}

fn default_queue_names() -> Vec<QueueName> {
    ["ingest", "delivery"]
        .into_iter()
        .filter_map(|n| QueueName::new(n).ok())
        .collect()
}

/// `[dlq]`: dead-letter replay limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DlqConfig {
    /// Entries moved per replay call, `1..=MAX_BATCH_SIZE`.
    pub replay_batch: usize,
    /// Most entries replayed per second (at least 1).
    pub replay_rate_per_s: u32,
}

impl Default for DlqConfig {
    fn default() -> Self {
        Self {
            // About 0.7 ms of Redis time per call (13 µs an entry), well under 5 ms.
            replay_batch: 50,
            replay_rate_per_s: 1000,
        }
    }
}

/// `[log]`: diagnostics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogConfig {
    /// A level (`trace`, `debug`, `info`, `warn`, `error`, `off`) or `tracing` directives such as
    /// `info,ward::store=debug`. `RUST_LOG`, when set, takes precedence.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
    /// Append logs to this file instead of stderr.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: LogFormat::Text,
            file: None,
        }
    }
}

#[cfg(test)]
mod cluster_url_tests {
    use super::*;

    #[test]
    fn cluster_urls_name_their_seeds() {
        assert!(cluster_seeds("redis://h:1/").is_none());
        assert_eq!(
            cluster_seeds("redis+cluster://a:7000,b:7001")
                .unwrap()
                .unwrap(),
            ["redis://a:7000/", "redis://b:7001/"]
        );
        assert_eq!(
            cluster_seeds("rediss+cluster://u:pw@a:7000,b:7001/")
                .unwrap()
                .unwrap(),
            ["rediss://u:pw@a:7000/", "rediss://u:pw@b:7001/"]
        );
        assert!(cluster_seeds("redis+cluster://a:7000/0").unwrap().is_err());
        assert!(cluster_seeds("redis+cluster://").unwrap().is_err());
    }
}
