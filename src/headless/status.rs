//! `ward status`: one read of every source into the control room's `Snapshot`, wrapped in a
//! versioned document whose JSON Schema is committed (`docs/status.schema.json`).

use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Serialize;

use crate::config::Config;
use crate::model::{DlqFilter, FailedSet, QueueName};
use crate::sources::poller::{Builder, PollerConfig, Read, read_once};
use crate::sources::slo::SloSection;
use crate::sources::{Snapshot, Target};
use crate::store::Store;

/// The document's name, so a consumer can tell it from other JSON.
pub const KIND: &str = "ward.status";
/// Bumped when fields are added, change meaning or go away, so a consumer can rely on every
/// field its version names (2: scheduled work by channel, `waiting_retry`). Older documents
/// still read: new fields default.
pub const FORMAT_VERSION: u32 = 2;
/// The window of [`DlqRecent`]: DLQ growth from one read, without waiting for a second.
pub const RECENT_WINDOW: Duration = Duration::from_secs(300);

/// One status document: the snapshot the control room draws, plus what a single read can add.
#[derive(Debug, Clone, Serialize, serde::Deserialize, JsonSchema)]
pub struct Status {
    /// Always `ward.status`.
    pub kind: String,
    /// The shape's version (see `docs/status.schema.json`).
    pub format_version: u32,
    /// The control room's snapshot. Rates and `dlq_growth_per_min` need two reads: a single
    /// `ward status` leaves them `null` (unknown); `ward watch` fills them from its second line.
    #[serde(flatten)]
    pub snapshot: Snapshot,
    /// Per queue, DLQ entries whose last failure is in the recent window.
    pub dlq_recent: Vec<DlqRecent>,
}

/// DLQ entries that failed within the last `window_ms`: growth seen in one read.
#[derive(Debug, Clone, Serialize, serde::Deserialize, JsonSchema)]
pub struct DlqRecent {
    pub queue: String,
    pub window_ms: u64,
    /// `None` when the count could not be read.
    pub failed: Option<u64>,
}

impl Status {
    pub fn new(snapshot: Snapshot, dlq_recent: Vec<DlqRecent>) -> Self {
        Self {
            kind: KIND.to_owned(),
            format_version: FORMAT_VERSION,
            snapshot,
            dlq_recent,
        }
    }

    /// Whether the store was read (else every store figure is missing, not zero).
    pub fn store_reachable(&self) -> bool {
        self.snapshot.attached()
    }
}

/// The JSON Schema of [`Status`], as committed in `docs/status.schema.json`.
pub fn schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(Status).to_value();
    if let Some(object) = schema.as_object_mut() {
        object.insert(
            "$id".to_owned(),
            serde_json::Value::String(format!(
                "https://ward.invalid/schemas/status-v{FORMAT_VERSION}.json"
            )),
        );
    }
    schema
}

/// What plans and audit records name as the target: `tui.label`, else the server and prefix.
pub fn action_target(config: &Config) -> String {
    if config.tui.label.is_empty() {
        config.store.target_label()
    } else {
        config.tui.label.clone()
    }
}

/// How the control room and headless commands read this config's deployment.
pub fn poller_config(config: &Config, interval: Duration) -> PollerConfig {
    PollerConfig {
        queues: vec![QueueName::ingest(), QueueName::delivery()],
        breaker: config.breaker.clone(),
        interval,
        timeout: Duration::from_millis(config.tui.timeout_ms),
        stale_after: config.tui.stale_after_polls.max(1),
        audit_rows: config.tui.audit_rows,
        heartbeat_interval: Duration::from_millis(config.workers.stats_interval_ms),
        rules: config.alerting.rules(),
        target: Target {
            label: if config.tui.label.is_empty() {
                config.store.short_label()
            } else {
                config.tui.label.clone()
            },
            backend: config.store.backend.as_str().to_owned(),
            profile: config.store.profile,
            address: match config.store.backend {
                crate::config::Backend::Redis => crate::config::redact_url(&config.store.redis_url),
                crate::config::Backend::Memory => "in-process".to_owned(),
            },
            // Actions from here would be refused: say so, as the control room's header does.
            read_only: config
                .tui
                .read_only
                .then(|| "tui.read_only in the config".to_owned()),
        },
    }
}

/// One status read into `builder` (which keeps what rates need between reads): the store, or
/// why it could not be opened, plus the SLO section read alongside. Every call is under the
/// read timeout.
pub async fn read(
    store: Result<&dyn Store, &str>,
    builder: &mut Builder,
    slo: Option<Arc<SloSection>>,
    now_ms: i64,
) -> Status {
    let (read, recent) = match store {
        Ok(store) => {
            tokio::join!(
                read_once(store, &builder.config, None),
                recent(store, &builder.config, now_ms)
            )
        }
        Err(error) => (
            Read {
                control: Err(error.to_owned()),
                page: None,
                round_trips: 0,
            },
            Vec::new(),
        ),
    };
    builder.apply(read, None, now_ms);
    builder.slo = slo;
    Status::new(builder.snapshot(now_ms), recent)
}

/// One status read of a MUTT deployment into `builder`; `Err` when the error is permanent (a
/// key of the wrong type, a refused password): asking again would not help.
pub async fn read_mutt(
    store: Result<&crate::store::mutt::MuttStore, &str>,
    builder: &mut Builder,
    slo: Option<Arc<SloSection>>,
    now_ms: i64,
    page: Option<crate::model::mutt::MuttPageQuery>,
) -> Result<Status, String> {
    let read = match store {
        Ok(store) => crate::sources::poller::read_mutt(store, &builder.config, page).await,
        Err(error) => crate::sources::poller::MuttRead {
            result: Err(error.to_owned()),
            permanent: false,
            round_trips: 0,
        },
    };
    if read.permanent {
        return Err(read.result.err().unwrap_or_default());
    }
    builder.apply_mutt(read, page, now_ms);
    builder.slo = slo;
    Ok(Status::new(builder.snapshot(now_ms), Vec::new()))
}

async fn recent(store: &dyn Store, poller: &PollerConfig, now_ms: i64) -> Vec<DlqRecent> {
    let window_ms = RECENT_WINDOW.as_millis() as u64;
    let filter = DlqFilter {
        failed_at_or_after_ms: Some(now_ms - window_ms as i64),
        ..DlqFilter::default()
    };
    let counts = poller.queues.iter().map(|queue| {
        let filter = &filter;
        async move {
            let count = store.failed_count(queue, FailedSet::Dlq, filter);
            DlqRecent {
                queue: queue.to_string(),
                window_ms,
                failed: tokio::time::timeout(poller.timeout, count)
                    .await
                    .ok()
                    .and_then(Result::ok),
            }
        }
    });
    futures::future::join_all(counts).await
}

/// Reads SLO figures once, for `ward status` and `ward check`: from Prometheus, else from the
/// `ward up` the config points at.
pub enum SloReader {
    Prometheus(Box<crate::sources::slo::PrometheusReader>),
    /// `named`: `slo.api_url` is set, so a `ward up` is meant to answer there.
    Api {
        reader: crate::sources::slo::ApiReader,
        named: bool,
    },
}

impl SloReader {
    /// The reader the config asks for; `None` when there is neither a Prometheus nor a fixed
    /// `ward up` address (a headless command has no counters of its own to read).
    pub fn from_config(config: &Config) -> Result<Option<Self>, String> {
        if config.slo.prometheus_url.is_empty() {
            let Some(url) = config.slo.api_section_url(&config.ingest.bind) else {
                return Ok(None);
            };
            let reader = crate::sources::slo::ApiReader::new(
                &url,
                Duration::from_millis(config.slo.timeout_ms),
            )?;
            return Ok(Some(Self::Api {
                reader,
                named: !config.slo.api_url.is_empty(),
            }));
        }
        let slos = config
            .slo
            .definitions(&config.delivery)
            .map_err(|(key, message)| format!("{key}: {message}"))?;
        let client = crate::sources::prometheus::PrometheusClient::new(
            &config.slo.prometheus_url,
            Duration::from_millis(config.slo.timeout_ms),
        )
        .map_err(|e| format!("slo.prometheus_url: {e}"))?;
        Ok(Some(Self::Prometheus(Box::new(
            crate::sources::slo::PrometheusReader::new(client, slos),
        ))))
    }

    /// One read; `None` when the only source is a `ward up` guessed from `ingest.bind` that
    /// does not answer (none may be running: that is no SLO source, not an outage).
    pub async fn read_once(&self, now_ms: i64) -> Option<SloSection> {
        match self {
            Self::Prometheus(reader) => Some(reader.read_once(now_ms).await),
            Self::Api { reader, named } => {
                let section = reader.read_once().await;
                (*named || section.error.is_none()).then_some(section)
            }
        }
    }
}
