//! The pipeline workers as tokio tasks, each stopped by one `CancellationToken`: ingest (HTTP),
//! router, delivery, scheduler (due retries), janitor (expired leases and overrides), a stats
//! publisher, the controls reader (flags, shedding) and remediation (DLQ replay). The ingest
//! server also serves Alertmanager's API v2 silences (`am_api`).

pub mod am_api;
pub mod control;
pub mod delivery;
pub mod demo;
pub mod grouping;
pub mod ingest;
pub mod maintenance;
pub mod remediation;
pub mod router;
pub mod server;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{IngestConfig, QueuesConfig, WorkersConfig};
use crate::delivery::Backend;
use crate::engine::breaker::BreakerConfig;
use crate::engine::retry::RetryPolicy;
use crate::engine::routing::{Router, RoutingConfig};
pub use crate::model::Role;
use crate::model::{FlagState, QueueName, WorkerId};
use crate::store::Store;
use crate::telemetry::{EventLog, Metrics};

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

/// Everything the workers share. Its fields are the pipeline module's own: from outside, a
/// pipeline is built, spawned and read through its methods.
pub struct Pipeline {
    store: Arc<dyn Store>,
    metrics: Metrics,
    events: EventLog,
    backends: BTreeMap<String, Arc<dyn Backend>>,
    policies: BTreeMap<String, RetryPolicy>,
    default_policy: RetryPolicy,
    router: RwLock<Arc<Router>>,
    breaker: BreakerConfig,
    ingest: IngestConfig,
    queues: QueuesConfig,
    workers: WorkersConfig,
    /// Where accepted alerts wait for the router, and routed deliveries for delivery.
    ingest_queue: QueueName,
    delivery_queue: QueueName,
    worker: WorkerId,
    flags: RwLock<FlagsView>,
    controls: RwLock<control::Controls>,
    /// Inhibition rules and maintenance windows from the config.
    rules: crate::engine::suppress::Rules,
    /// The rules silences created through this worker (its API) follow.
    silence_policy: crate::engine::silence::SilencePolicy,
    /// Silences and inhibition as last read (see `control::check`).
    suppressor: RwLock<Arc<crate::engine::suppress::Suppressor>>,
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
    pub queues: QueuesConfig,
    pub workers: WorkersConfig,
    pub metrics: Metrics,
    pub events: EventLog,
    pub alerting: crate::config::alerting::AlertingConfig,
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
        for (name, backend) in &backends {
            parts.metrics.init_channel(name, backend.kind().as_str());
        }
        for endpoint in ["alerts", "alertmanager"] {
            parts.metrics.init_ingest(endpoint);
        }
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
            queues: parts.queues,
            workers: parts.workers,
            ingest_queue: QueueName::ingest(),
            delivery_queue: QueueName::delivery(),
            // Unique per pipeline, so two in one process (tests, the demo) are two workers.
            worker: WorkerId::new(format!(
                "{host}:{}:{:04x}",
                std::process::id(),
                fastrand::u16(..)
            )),
            flags: RwLock::new(FlagsView::default()),
            controls: RwLock::new(control::Controls::default()),
            rules: parts.alerting.rules(),
            silence_policy: parts.alerting.silence_policy(),
            suppressor: RwLock::new(Arc::default()),
        }))
    }

    /// This worker's metrics (what `/metrics` renders).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
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

    /// The actions context of this worker's automatic steps: audited as `ward@<worker>`.
    pub fn automatic_actions(&self) -> crate::actions::Actions {
        crate::actions::Actions {
            store: self.store.clone(),
            policy: crate::actions::Policy::writable(),
            actor: crate::actions::Actor {
                user: "ward".to_owned(),
                host: self.worker.as_str().to_owned(),
            },
            origin: crate::actions::Origin::Automatic,
            target: self.store.backend_name().to_owned(),
            settings: crate::actions::Settings {
                batch_size: self.workers.remediation_batch,
                rate_per_s: None,
                max_replays: self.queues.max_replays,
                sample_size: 5,
                dry_run: self.workers.dry_run,
                max_items: Some(self.workers.remediation_max_per_run),
                ..crate::actions::Settings::default()
            },
            channels: self.backends.keys().cloned().collect(),
            silences: self.silence_policy.clone(),
        }
    }

    pub fn suppressor(&self) -> Arc<crate::engine::suppress::Suppressor> {
        self.suppressor
            .read()
            .map_or_else(|poisoned| poisoned.into_inner().clone(), |s| s.clone())
    }

    /// Wait (at most 5 s) for the first read of silences and inhibition sources, so a worker
    /// that just started does not send what a silence holds back; a store that cannot be read
    /// by then leaves the worker to send as it can.
    pub async fn first_controls(&self, stop: &CancellationToken) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let idle = Duration::from_millis(self.workers.idle_poll_ms.clamp(1, 50));
        while !self.suppressor().loaded && tokio::time::Instant::now() < deadline {
            if !pause(stop, idle).await {
                return;
            }
        }
    }

    pub fn controls(&self) -> control::Controls {
        self.controls
            .read()
            .map_or_else(|poisoned| poisoned.into_inner().clone(), |c| c.clone())
    }

    /// `queue` is deferring under load (read in place: this is on every lease and request).
    pub fn deferring(&self, queue: &QueueName) -> bool {
        self.controls.read().map_or_else(
            |poisoned| poisoned.into_inner().deferring(queue),
            |c| c.deferring(queue),
        )
    }

    /// Leasing from `source` waits: a queue it feeds is deferring under load.
    pub fn holding_back(&self, source: &QueueName) -> bool {
        control::feeds(self, source)
            .iter()
            .any(|q| self.deferring(q))
    }

    /// The queues the workers consume, ingest first.
    pub fn queue_names(&self) -> [QueueName; 2] {
        [self.ingest_queue.clone(), self.delivery_queue.clone()]
    }

    pub fn policy(&self, name: &str) -> &RetryPolicy {
        self.policies.get(name).unwrap_or(&self.default_policy)
    }

    /// Start every worker (and, if `serve_http`, the ingest server with Alertmanager's silences
    /// API) until `stop` is cancelled.
    pub async fn spawn(
        self: &Arc<Self>,
        stop: &CancellationToken,
        serve_http: bool,
    ) -> Result<Running, PipelineError> {
        let role = if serve_http { Role::All } else { Role::Workers };
        self.spawn_serving(stop, role, axum::Router::new()).await
    }

    /// As [`Pipeline::spawn`] for one `role`, the ingest server also serving `routes` (e.g.
    /// `/api/v1/slo`).
    pub async fn spawn_serving(
        self: &Arc<Self>,
        stop: &CancellationToken,
        role: Role,
        routes: axum::Router,
    ) -> Result<Running, PipelineError> {
        let mut tasks = JoinSet::new();
        let mut address = None;
        if role.serves_http() {
            let listener = tokio::net::TcpListener::bind(&self.ingest.bind)
                .await
                .map_err(|source| PipelineError::Bind {
                    bind: self.ingest.bind.clone(),
                    source,
                })?;
            address = listener.local_addr().ok();
            let app = ingest::app(self.clone())
                .merge(am_api::app(self.clone()))
                .merge(routes);
            let limits = server::ServerLimits::from_config(&self.ingest);
            tasks.spawn(server::serve(
                listener,
                app,
                limits,
                self.metrics.clone(),
                stop.clone(),
            ));
        }
        // Every role reads the operator's controls (an ingest node defers while shedding) and
        // beats with its figures.
        tasks.spawn(maintenance::stats(self.clone(), stop.clone(), role));
        tasks.spawn(control::run(self.clone(), stop.clone()));
        if role.consumes() {
            tasks.spawn(router::run(self.clone(), stop.clone()));
            tasks.spawn(delivery::run(self.clone(), stop.clone()));
            tasks.spawn(maintenance::scheduler(self.clone(), stop.clone()));
            tasks.spawn(maintenance::janitor(self.clone(), stop.clone()));
            tasks.spawn(remediation::run(self.clone(), stop.clone()));
            tasks.spawn(grouping::run(self.clone(), stop.clone()));
        }
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

/// The next batch from `queue`, waiting (idle poll, or longer after a store error) while there is
/// none; `None` once stopped.
pub(crate) async fn next_batch(
    pipeline: &Pipeline,
    queue: &QueueName,
    stop: &CancellationToken,
    who: &str,
) -> Option<Vec<crate::store::LeasedItem>> {
    let idle = Duration::from_millis(pipeline.workers.idle_poll_ms);
    while !stop.is_cancelled() {
        if pipeline.holding_back(queue) {
            if !pause(stop, idle).await {
                return None;
            }
            continue;
        }
        let wait = match lease_batch(pipeline, queue).await {
            Ok(lease) if !lease.items.is_empty() => return Some(lease.items),
            Ok(_) => idle,
            Err(error) => {
                tracing::warn!(%error, "{who}: could not lease");
                idle * 20
            }
        };
        if !pause(stop, wait).await {
            return None;
        }
    }
    None
}

/// One batch of `queue` for this worker, with the configured size and lease.
async fn lease_batch(
    pipeline: &Pipeline,
    queue: &QueueName,
) -> crate::store::StoreResult<crate::store::Lease> {
    pipeline
        .store
        .lease(
            queue,
            &pipeline.worker,
            pipeline.queues.batch_size,
            pipeline.queues.lease(),
        )
        .await
}

/// One lease attempt, for a worker to take its next batch while the last one settles: `None`
/// when stopped, the queue is empty or the store fails (the caller's loop then waits as usual).
pub(crate) async fn lease_once(
    pipeline: &Pipeline,
    queue: &QueueName,
    stop: &CancellationToken,
) -> Option<Vec<crate::store::LeasedItem>> {
    if stop.is_cancelled()
        || pipeline.flags().global_stop(pipeline.store.now_ms())
        || pipeline.holding_back(queue)
    {
        return None;
    }
    match lease_batch(pipeline, queue).await {
        Ok(lease) if !lease.items.is_empty() => Some(lease.items),
        Ok(_) => None,
        Err(error) => {
            tracing::warn!(%error, "could not lease");
            None
        }
    }
}

/// Hand back a batch leased ahead that will not be worked on (shutdown).
pub(crate) async fn hand_back(
    pipeline: &Pipeline,
    queue: &QueueName,
    items: Option<Vec<crate::store::LeasedItem>>,
) {
    let Some(items) = items else { return };
    let receipts: Vec<_> = items.into_iter().map(|i| i.receipt).collect();
    for chunk in receipts.chunks(crate::model::MAX_BATCH) {
        if let Err(error) = pipeline.store.release(queue, chunk).await {
            tracing::warn!(%error, "could not hand back a batch; the janitor will");
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
