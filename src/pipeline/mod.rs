//! The pipeline workers as tokio tasks, each stopped by one `CancellationToken`: ingest (HTTP),
//! router, delivery, scheduler (due retries), janitor (expired leases) and a stats publisher.

pub mod delivery;
pub mod ingest;
pub mod maintenance;
pub mod router;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::delivery::{Backend, Secret};
use crate::engine::breaker::BreakerConfig;
use crate::engine::ratelimit::RateLimit;
use crate::engine::retry::RetryPolicy;
use crate::engine::routing::{Router, RoutingConfig};
use crate::model::{FlagState, QueueName, WorkerId};
use crate::store::Store;
use crate::telemetry::{EventLog, Metrics};

/// One API key and the tenant it speaks for (`None` = the request names its tenant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    pub name: String,
    pub key: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// The HTTP ingest endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Address to listen on; loopback unless you mean otherwise.
    pub bind: String,
    /// Accepted keys (header `X-API-Key` or `Authorization: Bearer`); empty = no auth.
    pub api_keys: Vec<ApiKey>,
    pub body_limit_bytes: usize,
    pub max_alerts_per_request: usize,
    /// Per-tenant limit on alerts (a request of n alerts costs n).
    pub rate_limit: RateLimit,
    /// 503 once the ingest queue holds this many items.
    pub queue_cap: u64,
    /// Tenant of alerts that name none and come with a key bound to none.
    pub default_tenant: String,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".to_owned(),
            api_keys: Vec::new(),
            body_limit_bytes: 1024 * 1024,
            max_alerts_per_request: 500,
            rate_limit: RateLimit {
                count: 1000,
                period_ms: 1000,
                burst: 2000,
            },
            queue_cap: 1_000_000,
            default_tenant: "default".to_owned(),
        }
    }
}

/// How the workers run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    pub ingest_queue: QueueName,
    pub delivery_queue: QueueName,
    pub batch_size: usize,
    pub lease_ms: u64,
    /// Deliveries in flight at once per worker.
    pub concurrency: usize,
    pub send_timeout_ms: u64,
    /// How long a delivered alert is remembered, so a duplicate is not sent again.
    pub dedup_ttl_ms: u64,
    /// Sleep when a queue is empty.
    pub idle_poll_ms: u64,
    pub scheduler_interval_ms: u64,
    pub janitor_interval_ms: u64,
    pub stats_interval_ms: u64,
    /// When a channel is stopped or its breaker open, look again after this long.
    pub recheck_ms: u64,
    /// JSONL event per delivery attempt, if set.
    pub events_log: Option<PathBuf>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            ingest_queue: QueueName::ingest(),
            delivery_queue: QueueName::delivery(),
            batch_size: 100,
            lease_ms: 30_000,
            concurrency: 64,
            send_timeout_ms: 15_000,
            dedup_ttl_ms: 24 * 3_600_000,
            idle_poll_ms: 50,
            scheduler_interval_ms: 250,
            janitor_interval_ms: 5_000,
            stats_interval_ms: 1_000,
            recheck_ms: 5_000,
            events_log: None,
        }
    }
}

impl WorkerConfig {
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }
    pub fn queues(&self) -> [QueueName; 2] {
        [self.ingest_queue.clone(), self.delivery_queue.clone()]
    }
}

/// Operator flags as the workers last read them.
#[derive(Debug, Clone, Default)]
pub struct FlagsView {
    pub flags: Vec<(String, FlagState)>,
    pub read_at_ms: i64,
}

impl FlagsView {
    fn active(&self, name: &str, now_ms: i64) -> bool {
        self.flags
            .iter()
            .any(|(n, f)| n == name && !f.is_expired(now_ms) && f.value != "off")
    }
    /// Sending is stopped everywhere.
    pub fn global_stop(&self, now_ms: i64) -> bool {
        self.active("emergency_stop", now_ms)
    }
    /// Sending through this channel is stopped.
    pub fn channel_stop(&self, channel: &str, now_ms: i64) -> bool {
        self.global_stop(now_ms) || self.active(&format!("emergency_stop:{channel}"), now_ms)
    }
}

/// Everything the workers share.
pub struct Pipeline {
    pub store: Arc<dyn Store>,
    pub metrics: Metrics,
    pub events: EventLog,
    pub backends: BTreeMap<String, Arc<dyn Backend>>,
    pub policies: BTreeMap<String, RetryPolicy>,
    pub default_policy: RetryPolicy,
    pub router: RwLock<Arc<Router>>,
    pub breaker: BreakerConfig,
    pub ingest: IngestConfig,
    pub workers: WorkerConfig,
    pub worker: WorkerId,
    pub flags: RwLock<FlagsView>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("store", &self.store)
            .field("worker", &self.worker)
            .field("channels", &self.backends.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// What a pipeline is built from.
pub struct PipelineParts {
    pub store: Arc<dyn Store>,
    pub backends: Vec<Arc<dyn Backend>>,
    pub routing: RoutingConfig,
    pub policies: Vec<RetryPolicy>,
    pub breaker: BreakerConfig,
    pub ingest: IngestConfig,
    pub workers: WorkerConfig,
    pub metrics: Metrics,
    pub events: EventLog,
}

/// A pipeline that cannot start: the configuration is inconsistent.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("routing: {0}")]
    Routing(#[from] crate::engine::routing::RoutingError),
    #[error("route {route:?} names retry policy {policy:?}, which is not configured")]
    UnknownPolicy { route: String, policy: String },
    #[error("ingest: cannot listen on {bind}: {source}")]
    Bind {
        bind: String,
        #[source]
        source: std::io::Error,
    },
}

impl Pipeline {
    pub fn new(parts: PipelineParts) -> Result<Arc<Self>, PipelineError> {
        let backends: BTreeMap<String, Arc<dyn Backend>> = parts
            .backends
            .into_iter()
            .map(|b| (b.name().to_owned(), b))
            .collect();
        let mut policies: BTreeMap<String, RetryPolicy> = [
            RetryPolicy::exponential_default(),
            RetryPolicy::seed_schedule(),
        ]
        .into_iter()
        .map(|p| (p.name.clone(), p))
        .collect();
        policies.extend(parts.policies.into_iter().map(|p| (p.name.clone(), p)));
        let channels: Vec<String> = backends.keys().cloned().collect();
        let router = Router::new(&parts.routing, &channels)?;
        for route in &parts.routing.routes {
            if let Some(policy) = &route.retry_policy
                && !policies.contains_key(policy)
            {
                return Err(PipelineError::UnknownPolicy {
                    route: route.name.clone(),
                    policy: policy.clone(),
                });
            }
        }
        let default_policy = policies
            .get(&parts.routing.default_retry_policy)
            .cloned()
            .ok_or_else(|| PipelineError::UnknownPolicy {
                route: "(default)".to_owned(),
                policy: parts.routing.default_retry_policy.clone(),
            })?;
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_owned());
        Ok(Arc::new(Self {
            store: parts.store,
            metrics: parts.metrics,
            events: parts.events,
            backends,
            policies,
            default_policy,
            router: RwLock::new(Arc::new(router)),
            breaker: parts.breaker,
            ingest: parts.ingest,
            workers: parts.workers,
            worker: WorkerId::new(format!("{host}:{}", std::process::id())),
            flags: RwLock::new(FlagsView::default()),
        }))
    }

    pub fn router(&self) -> Arc<Router> {
        self.router
            .read()
            .map_or_else(|poisoned| poisoned.into_inner().clone(), |r| r.clone())
    }

    pub fn flags(&self) -> FlagsView {
        self.flags
            .read()
            .map_or_else(|poisoned| poisoned.into_inner().clone(), |f| f.clone())
    }

    pub fn policy(&self, name: &str) -> &RetryPolicy {
        self.policies.get(name).unwrap_or(&self.default_policy)
    }

    /// Start every worker (and, if `serve_http`, the ingest server) until `stop` is cancelled.
    pub async fn spawn(
        self: &Arc<Self>,
        stop: &CancellationToken,
        serve_http: bool,
    ) -> Result<Running, PipelineError> {
        let mut tasks = JoinSet::new();
        let mut address = None;
        if serve_http {
            let listener = tokio::net::TcpListener::bind(&self.ingest.bind)
                .await
                .map_err(|source| PipelineError::Bind {
                    bind: self.ingest.bind.clone(),
                    source,
                })?;
            address = listener.local_addr().ok();
            let app = ingest::app(self.clone());
            let stop = stop.clone();
            tasks.spawn(async move {
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await;
                if let Err(error) = served {
                    tracing::error!(%error, "ingest server stopped");
                }
            });
        }
        tasks.spawn(router::run(self.clone(), stop.clone()));
        tasks.spawn(delivery::run(self.clone(), stop.clone()));
        tasks.spawn(maintenance::scheduler(self.clone(), stop.clone()));
        tasks.spawn(maintenance::janitor(self.clone(), stop.clone()));
        tasks.spawn(maintenance::stats(self.clone(), stop.clone()));
        Ok(Running { tasks, address })
    }
}

/// Handle to a started pipeline.
pub struct Running {
    pub tasks: JoinSet<()>,
    /// Where the ingest server listens (its real port when bound to port 0).
    pub address: Option<std::net::SocketAddr>,
}

impl Running {
    /// Wait for every task to end (after the stop token is cancelled).
    pub async fn join(mut self) {
        while let Some(result) = self.tasks.join_next().await {
            if let Err(error) = result
                && error.is_panic()
            {
                tracing::error!(%error, "a pipeline task panicked");
            }
        }
    }
}

/// Sleep, or return early (false) when stopped.
pub(crate) async fn pause(stop: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        () = stop.cancelled() => false,
        () = tokio::time::sleep(duration) => true,
    }
}
