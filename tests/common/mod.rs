//! Test harness: a real `redis-server` on a free loopback port, and one store of each backend.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod prometheus;
pub mod pty;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ward::engine::clock::ManualClock;
use ward::model::{EnvelopeId, FailureInfo, QueueName};
use ward::store::{
    DeadLetterRequest, KeySchema, MAX_BATCH, MemoryStore, RedisStore, RedisStoreOptions, Store,
};

/// `ward` with a clean environment: no WARD_* variables, RUST_LOG unset, and HOME pointing at
/// `home` so the developer's own config never leaks in.
pub fn ward_process(home: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ward"));
    for spec in ward::config::OVERRIDE_SPECS {
        cmd.env_remove(spec.env);
    }
    cmd.env_remove("WARD_CONFIG")
        .env_remove(ward::cli::READ_ONLY_ENV)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("RUST_LOG")
        .env("HOME", home);
    cmd
}

/// [`ward_process`] for assert_cmd.
pub fn ward_command(home: &std::path::Path) -> assert_cmd::Command {
    assert_cmd::Command::from_std(ward_process(home))
}

/// Exit code, stdout, stderr; a command that hangs fails the test instead of the suite.
pub fn output(cmd: &mut assert_cmd::Command) -> (i32, String, String) {
    let out = cmd.timeout(Duration::from_secs(60)).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The store `ward` uses on `redis` by default (prefix `ward`, one partition).
pub async fn default_redis_store(redis: &RedisServer) -> Arc<dyn Store> {
    let options =
        ward::store::RedisStoreOptions::new(&redis.url(), ward::store::KeySchema::ward("ward", 1));
    Arc::new(ward::store::RedisStore::connect(options).await.unwrap())
}

/// A fixed start time (2026-11-25T00:00:00Z) so failure times and ages are predictable.
pub const T0: i64 = 1_795_564_800_000;

/// A private redis-server, killed when dropped.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    /// `requirepass`, when the server asks for one.
    pub password: Option<String>,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A server that refuses clients without this password.
    pub fn start_with_password(password: &str) -> Self {
        Self::start_with(Some(password))
    }

    fn start_with(password: Option<&str>) -> Self {
        let binary = which("redis-server").unwrap_or_else(|| {
            panic!(
                "redis-server is not installed: the Redis half of the suite needs it \
                 (apt-get install -y redis-server, or run `bash .ci/test`)"
            )
        });
        for _ in 0..5 {
            let port = free_port();
            let child = spawn_redis(&binary, port, password);
            let mut server = Self {
                child,
                port,
                password: password.map(str::to_owned),
            };
            if server.wait_ready(Duration::from_secs(10)) {
                return server;
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    pub fn url(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}/", self.port),
            None => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    fn wait_ready(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false; // exited: port taken, most likely
            }
            if let Ok(client) = redis::Client::open(self.url())
                && let Ok(mut conn) = client.get_connection()
                && redis::cmd("PING").query::<String>(&mut conn).is_ok()
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// Stop the server now (tests of an unreachable store).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Start it again on the same port (empty: it keeps nothing).
    pub fn restart(&mut self) {
        self.kill();
        let binary = which("redis-server").expect("redis-server is installed");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            self.child = spawn_redis(&binary, self.port, self.password.as_deref());
            // The old socket may linger a moment: try again until the port is free.
            if self.wait_ready(Duration::from_secs(2)) {
                return;
            }
        }
        panic!("redis-server did not restart on port {}", self.port);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// redis-server on `port`, loopback only, keeping nothing on disk.
fn spawn_redis(binary: &std::path::Path, port: u16, password: Option<&str>) -> Child {
    let mut command = Command::new(binary);
    if let Some(password) = password {
        command.args(["--requirepass", password]);
    }
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .args(["--loglevel", "warning", "--protected-mode", "yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memory,
    Redis,
}

/// One store under test plus the clock it reads.
pub struct Harness {
    pub store: Arc<dyn Store>,
    pub clock: ManualClock,
    pub kind: Kind,
    pub server: Option<RedisServer>,
    pub memory: Option<MemoryStore>,
}

impl Harness {
    pub async fn new(kind: Kind, partitions: u16) -> Self {
        let clock = ManualClock::new(T0);
        match kind {
            Kind::Memory => {
                let store = MemoryStore::with_clock(partitions, Arc::new(clock.clone()));
                Self {
                    store: Arc::new(store.clone()),
                    clock,
                    kind,
                    server: None,
                    memory: Some(store),
                }
            }
            Kind::Redis => {
                let server = RedisServer::start();
                let store = redis_store(&server.url(), partitions, clock.clone()).await;
                Self {
                    store: Arc::new(store),
                    clock,
                    kind,
                    server: Some(server),
                    memory: None,
                }
            }
        }
    }

    /// Write a queue entry by hand, bypassing the store (corrupt-input tests).
    pub fn write_raw(&self, partition: u16, queue: &QueueName, id: &str, raw: &str) {
        match (&self.memory, &self.server) {
            (Some(memory), _) => memory.inject_raw(partition, queue, id, raw),
            (None, Some(server)) => {
                let keys = self.store.keys();
                let mut conn = server.connection();
                redis::pipe()
                    .hset(keys.bodies(partition), id, raw)
                    .ignore()
                    .lpush(keys.queue(partition, queue), id)
                    .ignore()
                    .query::<()>(&mut conn)
                    .unwrap();
            }
            (None, None) => unreachable!("a harness has a backend"),
        }
    }
}

pub async fn redis_store(url: &str, partitions: u16, clock: ManualClock) -> RedisStore {
    let mut options = RedisStoreOptions::new(url, KeySchema::ward("ward", partitions));
    options.clock = Arc::new(clock);
    RedisStore::connect(options)
        .await
        .expect("connect to the test redis-server")
}

pub fn queue(name: &str) -> QueueName {
    QueueName::new(name).unwrap()
}

/// Run each case against memory and Redis, with one and three partitions: the same body four
/// times. The calling crate imports `Harness` and `Kind`.
#[macro_export]
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod memory_1 { $( #[tokio::test] async fn $case() { super::$case(super::Harness::new(super::Kind::Memory, 1).await).await } )* }
        mod memory_3 { $( #[tokio::test] async fn $case() { super::$case(super::Harness::new(super::Kind::Memory, 3).await).await } )* }
        mod redis_1 { $( #[tokio::test] async fn $case() { super::$case(super::Harness::new(super::Kind::Redis, 1).await).await } )* }
        mod redis_3 { $( #[tokio::test] async fn $case() { super::$case(super::Harness::new(super::Kind::Redis, 3).await).await } )* }
    };
}

/// Put `n` envelopes in the DLQ of `q`, each failure one second apart, with the given class.
pub async fn fill_dlq(
    h: &Harness,
    q: &str,
    n: usize,
    tenant: &str,
    class: &str,
    stage: &str,
) -> Vec<EnvelopeId> {
    fill_dlq_with(h, q, n, tenant, &FailureInfo::new(class, "boom", stage)).await
}

/// Put `n` envelopes in the DLQ of `q`, each failure one second apart, failed with `failure`.
pub async fn fill_dlq_with(
    h: &Harness,
    q: &str,
    n: usize,
    tenant: &str,
    failure: &FailureInfo,
) -> Vec<EnvelopeId> {
    let q = queue(q);
    let mut ids = Vec::new();
    for chunk in (0..n)
        .map(|i| {
            ward::model::Envelope::new(tenant, serde_json::json!({ "n": i }), h.store.now_ms())
        })
        .collect::<Vec<_>>()
        .chunks(MAX_BATCH)
    {
        h.store.enqueue(&q, chunk).await.unwrap();
    }
    loop {
        let lease = h
            .store
            .lease(
                &q,
                &ward::model::WorkerId::new("filler"),
                MAX_BATCH,
                Duration::from_secs(30),
            )
            .await
            .unwrap();
        if lease.items.is_empty() {
            break;
        }
        let requests: Vec<_> = lease
            .items
            .into_iter()
            .map(|item| {
                ids.push(item.envelope.id.clone());
                DeadLetterRequest {
                    receipt: item.receipt,
                    envelope: item.envelope,
                    failure: failure.clone(),
                }
            })
            .collect();
        let outcome = h.store.dead_letter(&q, &requests).await.unwrap();
        assert!(outcome.stale.is_empty());
        h.clock.advance(Duration::from_secs(1));
    }
    ids
}

/// Every entry of one queue's DLQ or dead list, paged to the end.
pub async fn failed_entries(
    store: &dyn Store,
    queue: &QueueName,
    set: ward::store::FailedSet,
) -> Vec<ward::model::DlqEntry> {
    let mut cursor = ward::store::DlqCursor::start();
    let mut entries = Vec::new();
    loop {
        let page = store
            .failed_page(
                queue,
                set,
                &ward::store::DlqFilter::default(),
                &cursor,
                MAX_BATCH,
            )
            .await
            .unwrap();
        entries.extend(page.entries);
        match page.next {
            Some(next) => cursor = next,
            None => return entries,
        }
    }
}

/// An alert envelope for the ingest queue: `alertname` = `name` plus `labels`, tenant `acme`,
/// correlation id `name` (what test backends record).
pub fn alert_envelope(name: &str, labels: &[(&str, &str)], now: i64) -> ward::model::Envelope {
    use std::collections::BTreeMap;
    let mut all = BTreeMap::from([("alertname".to_owned(), name.to_owned())]);
    all.extend(
        labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let alert = ward::model::Alert {
        fingerprint: ward::model::fingerprint(&all),
        labels: all,
        annotations: BTreeMap::new(),
        severity: ward::model::Severity::Critical,
        status: ward::model::AlertStatus::Firing,
        tenant: "acme".to_owned(),
        starts_at_ms: now,
        ends_at_ms: None,
        generator_url: None,
        correlation_id: name.to_owned(),
        test: false,
    };
    let payload = ward::model::Payload::encode(&alert).unwrap();
    ward::model::Envelope::with_payload("acme", payload, now)
}

/// An operator (`ops@test`, headless, writable) acting on `store`.
pub fn operator(store: Arc<dyn Store>) -> ward::actions::Actions {
    ward::actions::Actions {
        store,
        policy: ward::actions::Policy::writable(),
        actor: ward::actions::Actor {
            user: "ops".into(),
            host: "test".into(),
        },
        origin: ward::actions::Origin::Headless,
        target: "test".into(),
        settings: ward::actions::Settings::default(),
        channels: Vec::new(),
        silences: ward::engine::silence::SilencePolicy::default(),
    }
}

/// Plan and run `action` to the end.
pub async fn act(
    actions: &ward::actions::Actions,
    action: ward::actions::Action,
) -> ward::actions::Report {
    let plan = actions.plan(action).await.unwrap();
    actions
        .execute(
            &plan,
            &tokio_util::sync::CancellationToken::new(),
            &mut |_| {},
        )
        .await
        .unwrap()
}

/// One worker on `store` routing every alert to `backend` (idle poll 5 ms, `tweak` applied),
/// running until `stop` is cancelled.
pub async fn start_worker(
    store: &Arc<dyn Store>,
    backend: Arc<dyn ward::delivery::Backend>,
    stop: &tokio_util::sync::CancellationToken,
    tweak: impl FnOnce(&mut ward::pipeline::WorkerConfig),
) -> Arc<ward::pipeline::Pipeline> {
    let mut workers = ward::pipeline::WorkerConfig::from_config(&ward::config::Config::default());
    workers.idle_poll_ms = 5;
    tweak(&mut workers);
    let channel = backend.name().to_owned();
    let pipeline = ward::pipeline::Pipeline::new(ward::pipeline::PipelineParts {
        store: store.clone(),
        backends: vec![backend],
        routing: ward::engine::routing::RoutingConfig {
            default_channels: vec![channel],
            ..ward::engine::routing::RoutingConfig::default()
        },
        policies: Vec::new(),
        breaker: ward::engine::breaker::BreakerConfig::default(),
        ingest: ward::config::IngestConfig::default(),
        workers,
        metrics: ward::telemetry::Metrics::new(),
        events: ward::telemetry::EventLog::disabled(),
        alerting: ward::config::alerting::AlertingConfig::default(),
    })
    .unwrap();
    let running = pipeline.spawn(stop, false).await.unwrap();
    tokio::spawn(running.join());
    pipeline
}
