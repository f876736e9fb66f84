//! The file layer: what a TOML file may say. Every key is optional and remembers its span, so
//! validation can point at the exact line; unknown keys are rejected.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::{Backend, LogFormat};
use crate::model::Profile;

type Opt<T> = Option<Spanned<T>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub store: Option<FileStore>,
    pub queues: Option<FileQueues>,
    pub dlq: Option<FileDlq>,
    pub log: Option<FileLog>,
    pub ingest: Option<Spanned<super::IngestConfig>>,
    pub workers: Option<Spanned<super::WorkersConfig>>,
    pub breaker: Option<Spanned<crate::engine::breaker::BreakerConfig>>,
    pub routing: Option<Spanned<crate::engine::routing::RoutingConfig>>,
    pub delivery: Option<Spanned<super::DeliveryConfig>>,
    pub tui: Option<Spanned<super::TuiConfig>>,
    pub slo: Option<Spanned<super::slo::SloConfig>>,
    pub mutt: Option<Spanned<super::mutt::MuttConfig>>,
    pub alerting: Option<Spanned<super::alerting::AlertingConfig>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileStore {
    pub backend: Opt<Backend>,
    pub redis_url: Opt<String>,
    pub profile: Opt<Profile>,
    pub key_prefix: Opt<String>,
    pub partitions: Opt<u16>,
    pub response_timeout_ms: Opt<u64>,
    pub connect_timeout_ms: Opt<u64>,
    pub replica_acks: Opt<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileQueues {
    pub names: Opt<Vec<Spanned<String>>>,
    pub lease_ms: Opt<u64>,
    pub heartbeat_ms: Opt<u64>,
    pub janitor_interval_ms: Opt<u64>,
    pub max_attempts: Opt<u32>,
    pub max_replays: Opt<u32>,
    pub batch_size: Opt<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileDlq {
    pub replay_batch: Opt<usize>,
    pub replay_rate_per_s: Opt<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileLog {
    pub level: Opt<String>,
    pub format: Opt<LogFormat>,
    pub file: Opt<PathBuf>,
}
