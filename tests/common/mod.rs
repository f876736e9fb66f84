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
    let mut command = redis_command(binary, port);
    if let Some(password) = password {
        command.args(["--requirepass", password]);
    }
    command.spawn().expect("spawn redis-server")
}

/// redis-server on loopback `port`, keeping nothing on disk, quiet.
fn redis_command(binary: &std::path::Path, port: u16) -> Command {
    let mut command = Command::new(binary);
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .args(["--loglevel", "warning", "--protected-mode", "yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
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

/// A private Redis Cluster: six redis-server processes on loopback, three primaries with one
/// replica each, made by `redis-cli --cluster create`. A watchdog process stops them and removes
/// their directory once the test process is gone, so a cluster shared by a whole test binary
/// (`RedisCluster::shared`) outlives no run.
pub struct RedisCluster {
    nodes: Vec<(u16, Option<Child>)>,
    dir: tempfile::TempDir,
}

/// How long a silent primary has before its replica takes over (Redis's default is 15 s).
pub const CLUSTER_NODE_TIMEOUT_MS: u64 = 1_000;

impl RedisCluster {
    pub fn start() -> Self {
        let binary = which("redis-server").unwrap_or_else(|| {
            panic!("redis-server is not installed (apt-get install -y redis-server, or run `bash .ci/test`)")
        });
        let cli = which("redis-cli").expect("redis-cli is installed with redis-server");
        for _attempt in 0..5 {
            let mut cluster = Self {
                nodes: Vec::new(),
                dir: tempfile::tempdir().unwrap(),
            };
            for _ in 0..6 {
                let port = free_port();
                let child = spawn_cluster_node(&binary, port, cluster.dir.path());
                cluster.nodes.push((port, Some(child)));
            }
            cluster.watchdog();
            if !cluster.nodes_ready(Duration::from_secs(10)) {
                continue; // a port was taken between asking and binding: try others
            }
            let status = Command::new(&cli)
                .args(["--cluster", "create"])
                .args(
                    cluster
                        .nodes
                        .iter()
                        .map(|(port, _)| format!("127.0.0.1:{port}")),
                )
                .args(["--cluster-replicas", "1", "--cluster-yes"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "redis-cli --cluster create failed");
            cluster.wait_healthy(Duration::from_secs(30));
            return cluster;
        }
        panic!("no Redis Cluster started on any of 5 sets of free ports");
    }

    /// One cluster for every test of this binary, each test under its own key prefix.
    pub fn shared() -> &'static RedisCluster {
        static CLUSTER: std::sync::OnceLock<RedisCluster> = std::sync::OnceLock::new();
        CLUSTER.get_or_init(RedisCluster::start)
    }

    /// `redis+cluster://` with every node as a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|(port, _)| format!("127.0.0.1:{port}"))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|(port, _)| *port).collect()
    }

    pub fn node(&self, port: u16) -> redis::Connection {
        assert!(
            self.ports().contains(&port),
            "{port} is not a node of this cluster"
        );
        redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// A cluster connection for writing by hand (corrupt-input tests).
    pub fn connection(&self) -> redis::cluster::ClusterConnection {
        let seeds: Vec<String> = self
            .ports()
            .iter()
            .map(|port| format!("redis://127.0.0.1:{port}/"))
            .collect();
        redis::cluster::ClusterClient::new(seeds)
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// The port of the primary that holds `key`'s slot.
    pub fn primary_for(&self, key: &str) -> u16 {
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut self.node(self.ports()[0]))
            .unwrap();
        for port in self.live_ports() {
            if !self.is_primary(port) {
                continue;
            }
            let owned: String = redis::cmd("CLUSTER")
                .arg("NODES")
                .query(&mut self.node(port))
                .unwrap();
            let mine = owned.lines().find(|line| line.contains("myself")).unwrap();
            let holds = mine.split_whitespace().skip(8).any(|range| {
                let (from, to) = range.split_once('-').unwrap_or((range, range));
                let (Ok(from), Ok(to)) = (from.parse::<u16>(), to.parse::<u16>()) else {
                    return false;
                };
                (from..=to).contains(&slot)
            });
            if holds {
                return port;
            }
        }
        panic!("no primary holds the slot of {key}");
    }

    /// Start moving the slot of `key` to another primary the way `redis-cli --cluster reshard`
    /// does: IMPORTING on the target, MIGRATING on the source; then `migrate_one` key at a
    /// time and `finish` (SETSLOT NODE).
    pub fn begin_slot_move(&self, key: &str) -> SlotMove {
        let from = self.primary_for(key);
        let to = self
            .live_ports()
            .into_iter()
            .find(|port| *port != from && self.is_primary(*port))
            .unwrap();
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut self.node(from))
            .unwrap();
        let id = |port: u16| -> String {
            redis::cmd("CLUSTER")
                .arg("MYID")
                .query(&mut self.node(port))
                .unwrap()
        };
        let moving = SlotMove {
            slot,
            from,
            to,
            to_id: id(to),
        };
        moving.setslot(self, to, &["IMPORTING", &id(from)]);
        moving.setslot(self, from, &["MIGRATING", &moving.to_id]);
        moving
    }

    fn is_primary(&self, port: u16) -> bool {
        let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut self.node(port)).unwrap();
        matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master")
    }

    /// Stop one node at once (SIGKILL: no goodbye to the cluster).
    pub fn kill(&mut self, port: u16) {
        let node = self.nodes.iter_mut().find(|(p, _)| *p == port).unwrap();
        if let Some(mut child) = node.1.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The port of a replica connected to the primary on `primary` (from its ROLE), waiting
    /// for one to connect (just after the cluster forms, a replica may still be syncing).
    pub fn replica_of(&self, primary: u16) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let role: Vec<redis::Value> =
                redis::cmd("ROLE").query(&mut self.node(primary)).unwrap();
            if let Some(redis::Value::Array(replicas)) = role.get(2)
                && let Some(redis::Value::Array(first)) = replicas.first()
            {
                return redis::from_redis_value::<String>(first[1].clone())
                    .unwrap()
                    .parse()
                    .unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "{primary} has no replica connected: {role:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Freeze a node (SIGSTOP): its connections stay open and nothing is answered.
    pub fn pause(&self, port: u16) {
        self.signal(port, "-STOP");
    }

    /// Let a paused node go on (SIGCONT).
    pub fn resume(&self, port: u16) {
        self.signal(port, "-CONT");
    }

    fn signal(&self, port: u16, signal: &str) {
        let (_, child) = self.nodes.iter().find(|(p, _)| *p == port).unwrap();
        let pid = child.as_ref().expect("the node is running").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }

    fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|(_, child)| child.is_some())
            .map(|(port, _)| *port)
            .collect()
    }

    /// Wait until every live node sees every slot served and every replica is in sync.
    pub fn wait_healthy(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let healthy = self.live_ports().into_iter().all(|port| {
                let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else {
                    return false;
                };
                let Ok(mut conn) = client.get_connection() else {
                    return false;
                };
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut conn)
                    .unwrap_or_default();
                let replication: String = redis::cmd("INFO")
                    .arg("replication")
                    .query(&mut conn)
                    .unwrap_or_default();
                info.contains("cluster_state:ok")
                    && (!replication.contains("role:slave")
                        || replication.contains("master_link_status:up"))
            });
            if healthy {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the Redis Cluster did not settle within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn nodes_ready(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        for (port, child) in &mut self.nodes {
            loop {
                if let Some(child) = child
                    && let Ok(Some(_)) = child.try_wait()
                {
                    return false;
                }
                let ready = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                    .ok()
                    .and_then(|client| client.get_connection().ok())
                    .is_some_and(|mut conn| redis::cmd("PING").query::<String>(&mut conn).is_ok());
                if ready {
                    break;
                }
                if Instant::now() > deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        true
    }

    /// A shell that stops the nodes and removes their files when this process is gone.
    fn watchdog(&self) {
        let pids: Vec<String> = self
            .nodes
            .iter()
            .filter_map(|(_, child)| child.as_ref().map(|c| c.id().to_string()))
            .collect();
        let script = format!(
            "while kill -0 {me} 2>/dev/null; do sleep 0.5; done; kill -9 {pids} 2>/dev/null; rm -rf '{dir}'",
            me = std::process::id(),
            pids = pids.join(" "),
            dir = self.dir.path().display(),
        );
        // Never waited for: it outlives this process on purpose.
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.nodes {
            if let Some(mut child) = child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// A slot on its way from one primary to another.
pub struct SlotMove {
    pub slot: u16,
    pub from: u16,
    pub to: u16,
    to_id: String,
}

impl SlotMove {
    fn setslot(&self, cluster: &RedisCluster, port: u16, args: &[&str]) {
        let _: () = redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(self.slot)
            .arg(args)
            .query(&mut cluster.node(port))
            .unwrap();
    }

    /// Move one more key of the slot; false once none is left on the source.
    pub fn migrate_one(&self, cluster: &RedisCluster) -> bool {
        let keys: Vec<String> = redis::cmd("CLUSTER")
            .arg("GETKEYSINSLOT")
            .arg(self.slot)
            .arg(1)
            .query(&mut cluster.node(self.from))
            .unwrap();
        if keys.is_empty() {
            return false;
        }
        let _: redis::Value = redis::cmd("MIGRATE")
            .arg("127.0.0.1")
            .arg(self.to)
            .arg("")
            .arg(0)
            .arg(5_000)
            .arg("KEYS")
            .arg(&keys)
            .query(&mut cluster.node(self.from))
            .unwrap();
        true
    }

    /// Every primary learns the slot's new owner.
    pub fn finish(&self, cluster: &RedisCluster) {
        for port in cluster.live_ports() {
            if cluster.is_primary(port) {
                self.setslot(cluster, port, &["NODE", &self.to_id]);
            }
        }
    }
}

/// A cluster node on `port` keeping its cluster state in `dir`, nothing else on disk.
fn spawn_cluster_node(binary: &std::path::Path, port: u16, dir: &std::path::Path) -> Child {
    redis_command(binary, port)
        .args(["--cluster-enabled", "yes"])
        .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
        .args([
            "--cluster-node-timeout",
            &CLUSTER_NODE_TIMEOUT_MS.to_string(),
        ])
        .arg("--dir")
        .arg(dir)
        .spawn()
        .expect("spawn redis-server")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memory,
    Redis,
    /// The binary's shared Redis Cluster, under a key prefix of the harness's own.
    Cluster,
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
            Kind::Cluster => {
                static NEXT_PREFIX: std::sync::atomic::AtomicU32 =
                    std::sync::atomic::AtomicU32::new(0);
                let cluster = tokio::task::spawn_blocking(RedisCluster::shared)
                    .await
                    .unwrap();
                let n = NEXT_PREFIX.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let prefix = format!("ward{}-{n}", std::process::id());
                let mut options =
                    RedisStoreOptions::new(&cluster.url(), KeySchema::ward(&prefix, partitions));
                options.clock = Arc::new(clock.clone());
                let store = RedisStore::connect(options)
                    .await
                    .expect("connect to the test Redis Cluster");
                Self {
                    store: Arc::new(store),
                    clock,
                    kind,
                    server: None,
                    memory: None,
                }
            }
        }
    }

    /// Write a queue entry by hand, bypassing the store (corrupt-input tests).
    pub fn write_raw(&self, partition: u16, queue: &QueueName, id: &str, raw: &str) {
        match (&self.memory, &self.server) {
            (Some(memory), _) => memory.inject_raw(partition, queue, id, raw),
            (None, server) => {
                let keys = self.store.keys();
                let mut pipe = redis::pipe();
                pipe.hset(keys.bodies(partition), id, raw)
                    .ignore()
                    .lpush(keys.queue(partition, queue), id)
                    .ignore();
                match server {
                    Some(server) => pipe.query::<()>(&mut server.connection()).unwrap(),
                    // The cluster's sync connection pipelines only with cluster_pipe().
                    None => redis::cluster::cluster_pipe()
                        .hset(keys.bodies(partition), id, raw)
                        .ignore()
                        .lpush(keys.queue(partition, queue), id)
                        .ignore()
                        .query::<()>(&mut RedisCluster::shared().connection())
                        .unwrap(),
                }
            }
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

/// Run each case against memory and Redis, with one and three partitions, and on a Redis
/// Cluster with three partitions: the same body five times. The calling crate imports `Harness` and `Kind`.
#[macro_export]
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod memory_1 { $( #[tokio::test] async fn $case() { super::$case(super::Harness::new(super::Kind::Memory, 1).await).await } )* }
        mod memory_3 { $( #[tokio::test] async fn $case() { super::$case(super::Harness::new(super::Kind::Memory, 3).await).await } )* }
        mod redis_1 { $( #[tokio::test] async fn $case() { super::$case(super::Harness::new(super::Kind::Redis, 1).await).await } )* }
        mod redis_3 { $( #[tokio::test] async fn $case() { super::$case(super::Harness::new(super::Kind::Redis, 3).await).await } )* }
        mod cluster_3 { $( #[tokio::test] async fn $case() { super::$case(super::Harness::new(super::Kind::Cluster, 3).await).await } )* }
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

/// An alert: `alertname` = `name` plus `labels`, critical, firing since `now`, tenant `acme`,
/// correlation id `name` (what test backends record).
pub fn alert(name: &str, labels: &[(&str, &str)], now: i64) -> ward::model::Alert {
    use std::collections::BTreeMap;
    let mut all = BTreeMap::from([("alertname".to_owned(), name.to_owned())]);
    all.extend(
        labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    ward::model::Alert {
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
    }
}

/// [`alert`] as an envelope for the ingest queue.
pub fn alert_envelope(name: &str, labels: &[(&str, &str)], now: i64) -> ward::model::Envelope {
    let alert = alert(name, labels, now);
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
    tweak: impl FnOnce(&mut ward::config::Config),
) -> Arc<ward::pipeline::Pipeline> {
    let mut config = ward::config::Config::default();
    config.workers.idle_poll_ms = 5;
    tweak(&mut config);
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
        queues: config.queues,
        workers: config.workers,
        metrics: ward::telemetry::Metrics::new(),
        events: ward::telemetry::EventLog::disabled(),
        alerting: ward::config::alerting::AlertingConfig::default(),
    })
    .unwrap();
    let running = pipeline.spawn(stop, false).await.unwrap();
    tokio::spawn(running.join());
    pipeline
}
