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

/// What every worker of this process shares: the store, who it is, its metrics, the queues and
/// routes, and the operator's controls as the control loop last read them.
pub struct Shared {
    store: Arc<dyn Store>,
    metrics: Metrics,
    worker: WorkerId,
    /// Where accepted alerts wait for the router, and routed deliveries for delivery.
    ingest_queue: QueueName,
    delivery_queue: QueueName,
    router: Arc<Router>,
    flags: RwLock<FlagsView>,
    controls: RwLock<control::Controls>,
    /// Silences and inhibition as last read (see `control::check`).
    suppressor: RwLock<Arc<crate::engine::suppress::Suppressor>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("store", &self.store)
            .field("worker", &self.worker)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub fn router(&self) -> Arc<Router> {
        self.router.clone()
    }

    pub fn flags(&self) -> FlagsView {
        read_view(&self.flags)
    }

    fn set_flags(&self, flags: FlagsView) {
        *write_view(&self.flags) = flags;
    }

    pub fn suppressor(&self) -> Arc<crate::engine::suppress::Suppressor> {
        read_view(&self.suppressor)
    }

    fn set_suppressor(&self, suppressor: crate::engine::suppress::Suppressor) {
        *write_view(&self.suppressor) = Arc::new(suppressor);
    }

    pub fn controls(&self) -> control::Controls {
        read_view(&self.controls)
    }

    /// Replace the controls read, counting the read in the same locked step.
    fn set_controls(&self, mut controls: control::Controls) {
        let mut current = write_view(&self.controls);
        controls.reads = current.reads + 1;
        *current = controls;
    }

    /// Wait (at most 5 s) for the first read of silences and inhibition sources, so a worker
    /// that just started does not send what a silence holds back; a store that cannot be read
    /// by then leaves the worker to send as it can.
    pub async fn first_controls(&self, stop: &CancellationToken, idle: Duration) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let idle = idle.clamp(Duration::from_millis(1), Duration::from_millis(50));
        while !self.suppressor().loaded && tokio::time::Instant::now() < deadline {
            if !pause(stop, idle).await {
                return;
            }
        }
    }

    /// The queues the workers consume, ingest first.
    pub fn queue_names(&self) -> [QueueName; 2] {
        [self.ingest_queue.clone(), self.delivery_queue.clone()]
    }

    /// `queue` is deferring under load (read in place: this is on every lease and request).
    pub fn deferring(&self, queue: &QueueName) -> bool {
        self.controls
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .deferring(queue)
    }

    /// Leasing from `source` waits: a queue it feeds is deferring under load.
    pub fn holding_back(&self, source: &QueueName) -> bool {
        control::feeds(self, source)
            .iter()
            .any(|q| self.deferring(q))
    }
}

/// A copy of a view the control loop keeps; a writer that panicked left a whole value behind.
fn read_view<T: Clone>(view: &RwLock<T>) -> T {
    view.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

fn write_view<T>(view: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    view.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How a consuming worker leases: from the shared store, in batches of the configured size.
#[derive(Debug, Clone)]
pub struct Leasing {
    shared: Arc<Shared>,
    batch_size: usize,
    lease: Duration,
    idle: Duration,
}

/// The built pipeline: the shared part and each worker's settings, handed to each worker as the
/// context it needs when spawned. Its fields are the pipeline module's own.
pub struct Pipeline {
    shared: Arc<Shared>,
    events: EventLog,
    backends: Arc<BTreeMap<String, Arc<dyn Backend>>>,
    policies: Arc<delivery::Policies>,
    breaker: BreakerConfig,
    ingest: IngestConfig,
    queues: QueuesConfig,
    workers: WorkersConfig,
    /// Inhibition rules and maintenance windows from the config.
    rules: crate::engine::suppress::Rules,
    /// The rules silences created through this worker (its API) follow.
    silence_policy: crate::engine::silence::SilencePolicy,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("store", &self.shared.store)
            .field("worker", &self.shared.worker)
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
        let shared = Shared {
            store: parts.store,
            metrics: parts.metrics,
            // Unique per pipeline, so two in one process (tests, the demo) are two workers.
            worker: WorkerId::new(format!(
                "{host}:{}:{:04x}",
                std::process::id(),
                fastrand::u16(..)
            )),
            ingest_queue: QueueName::ingest(),
            delivery_queue: QueueName::delivery(),
            router: Arc::new(router),
            flags: RwLock::new(FlagsView::default()),
            controls: RwLock::new(control::Controls::default()),
            suppressor: RwLock::new(Arc::default()),
        };
        Ok(Arc::new(Self {
            shared: Arc::new(shared),
            events: parts.events,
            backends: Arc::new(backends),
            policies: Arc::new(delivery::Policies {
                by_name: policies,
                default: default_policy,
            }),
            breaker: parts.breaker,
            ingest: parts.ingest,
            queues: parts.queues,
            workers: parts.workers,
            rules: parts.alerting.rules(),
            silence_policy: parts.alerting.silence_policy(),
        }))
    }

    /// This worker's metrics (what `/metrics` renders).
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Silences and inhibition as this worker last read them.
    pub fn suppressor(&self) -> Arc<crate::engine::suppress::Suppressor> {
        self.shared.suppressor()
    }

    /// The operator's controls (shedding, thresholds, pressure) as this worker last read them.
    pub fn controls(&self) -> control::Controls {
        self.shared.controls()
    }

    fn channels(&self) -> Vec<String> {
        self.backends.keys().cloned().collect()
    }

    /// The actions context of this worker's automatic steps: audited as `ward@<worker>`.
    fn automatic_actions(&self) -> crate::actions::Actions {
        crate::actions::Actions {
            store: self.shared.store.clone(),
            policy: crate::actions::Policy::writable(),
            actor: crate::actions::Actor {
                user: "ward".to_owned(),
                host: self.shared.worker.as_str().to_owned(),
            },
            origin: crate::actions::Origin::Automatic,
            target: self.shared.store.backend_name().to_owned(),
            settings: crate::actions::Settings {
                batch_size: self.workers.remediation_batch,
                rate_per_s: None,
                max_replays: self.queues.max_replays,
                sample_size: 5,
                dry_run: self.workers.dry_run,
                max_items: Some(self.workers.remediation_max_per_run),
                ..crate::actions::Settings::default()
            },
            channels: self.channels(),
            silences: self.silence_policy.clone(),
        }
    }

    fn leasing(&self) -> Leasing {
        Leasing {
            shared: self.shared.clone(),
            batch_size: self.queues.batch_size,
            lease: self.queues.lease(),
            idle: Duration::from_millis(self.workers.idle_poll_ms),
        }
    }

    /// What the ingest endpoints need: the shared part and the ingest settings.
    pub fn ingest_api(&self) -> ingest::IngestApi {
        ingest::IngestApi {
            shared: self.shared.clone(),
            ingest: self.ingest.clone(),
        }
    }

    /// What Alertmanager's silences API needs.
    pub fn silences_api(&self) -> am_api::SilencesApi {
        am_api::SilencesApi {
            shared: self.shared.clone(),
            silence_policy: self.silence_policy.clone(),
            channels: self.channels(),
            api_keys: self.ingest.api_keys.clone(),
            body_limit_bytes: self.ingest.body_limit_bytes,
        }
    }

    pub fn router_worker(&self) -> router::RouterWorker {
        router::RouterWorker {
            leasing: self.leasing(),
            deliver: self
                .workers
                .deliver_on_route
                .then(|| Arc::new(self.delivery_worker())),
        }
    }

    /// What a delivery worker needs: leasing, the channels, retry policies, breaker settings and
    /// its events.
    pub fn delivery_worker(&self) -> delivery::DeliveryWorker {
        delivery::DeliveryWorker {
            leasing: self.leasing(),
            backends: self.backends.clone(),
            policies: self.policies.clone(),
            breaker: self.breaker.clone(),
            events: self.events.clone(),
            workers: self.workers.clone(),
            queues: self.queues.clone(),
        }
    }

    pub fn control_worker(&self) -> control::ControlWorker {
        control::ControlWorker {
            shared: self.shared.clone(),
            rules: self.rules.clone(),
            every: Duration::from_millis(self.workers.control_interval_ms),
            lease: self.queues.lease(),
        }
    }

    pub fn grouping_worker(&self) -> grouping::GroupingWorker {
        grouping::GroupingWorker {
            shared: self.shared.clone(),
            every: Duration::from_millis(self.workers.scheduler_interval_ms.max(10)),
            idle: Duration::from_millis(self.workers.idle_poll_ms),
        }
    }

    pub fn maintenance(&self) -> maintenance::Maintenance {
        maintenance::Maintenance {
            shared: self.shared.clone(),
            actions: self.automatic_actions(),
            breaker: self.breaker.clone(),
            scheduler_every: Duration::from_millis(self.workers.scheduler_interval_ms),
            janitor_every: Duration::from_millis(self.queues.janitor_interval_ms),
            stats_every: Duration::from_millis(self.workers.stats_interval_ms),
        }
    }

    pub fn remediation(&self) -> remediation::Remediation {
        remediation::Remediation {
            shared: self.shared.clone(),
            actions: self.automatic_actions(),
            breaker: self.breaker.clone(),
            channels: self.channels(),
            workers: self.workers.clone(),
        }
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
            let app = ingest::app(Arc::new(self.ingest_api()))
                .merge(am_api::app(Arc::new(self.silences_api())))
                .merge(routes);
            let limits = server::ServerLimits::from_config(&self.ingest);
            tasks.spawn(server::serve(
                listener,
                app,
                limits,
                self.shared.metrics.clone(),
                stop.clone(),
            ));
        }
        // Every role reads the operator's controls (an ingest node defers while shedding) and
        // beats with its figures.
        let maintenance = Arc::new(self.maintenance());
        tasks.spawn(maintenance::stats(maintenance.clone(), stop.clone(), role));
        tasks.spawn(control::run(self.control_worker(), stop.clone()));
        if role.consumes() {
            tasks.spawn(router::run(self.router_worker(), stop.clone()));
            tasks.spawn(delivery::run(self.delivery_worker(), stop.clone()));
            tasks.spawn(maintenance::scheduler(maintenance.clone(), stop.clone()));
            tasks.spawn(maintenance::janitor(maintenance, stop.clone()));
            tasks.spawn(remediation::run(self.remediation(), stop.clone()));
            tasks.spawn(grouping::run(self.grouping_worker(), stop.clone()));
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
    leasing: &Leasing,
    queue: &QueueName,
    stop: &CancellationToken,
    who: &str,
) -> Option<Vec<crate::store::LeasedItem>> {
    let idle = leasing.idle;
    while !stop.is_cancelled() {
        if leasing.shared.holding_back(queue) {
            if !pause(stop, idle).await {
                return None;
            }
            continue;
        }
        let wait = match lease_batch(leasing, queue).await {
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
    leasing: &Leasing,
    queue: &QueueName,
) -> crate::store::StoreResult<crate::store::Lease> {
    let shared = &leasing.shared;
    shared
        .store
        .lease(queue, &shared.worker, leasing.batch_size, leasing.lease)
        .await
}

/// One lease attempt, for a worker to take its next batch while the last one settles: `None`
/// when stopped, the queue is empty or the store fails (the caller's loop then waits as usual).
pub(crate) async fn lease_once(
    leasing: &Leasing,
    queue: &QueueName,
    stop: &CancellationToken,
) -> Option<Vec<crate::store::LeasedItem>> {
    let shared = &leasing.shared;
    if stop.is_cancelled()
        || shared.flags().global_stop(shared.store.now_ms())
        || shared.holding_back(queue)
    {
        return None;
    }
    match lease_batch(leasing, queue).await {
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
    shared: &Shared,
    queue: &QueueName,
    items: Option<Vec<crate::store::LeasedItem>>,
) {
    let Some(items) = items else { return };
    let receipts: Vec<_> = items.into_iter().map(|i| i.receipt).collect();
    for chunk in receipts.chunks(crate::model::MAX_BATCH) {
        if let Err(error) = shared.store.release(queue, chunk).await {
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
