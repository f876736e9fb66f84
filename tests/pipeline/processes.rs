//! `ward up` worker processes on one real Redis: the breaker one process opens holds every
//! process back until probes close it, SIGTERM loses nothing and sends nothing twice, and
//! SIGKILL loses nothing and re-sends only what the dead worker had not recorded as sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

use crate::common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use ward::store::prelude::*;

use common::{RedisServer, redis_store};
use serde_json::{Value, json};
use ward::engine::breaker::{Breaker, BreakerState, TransitionCause};
use ward::engine::clock::{Clock, ManualClock, SystemClock};
use ward::model::{QueueName, Role};
use ward::store::{FailedSet, KeySchema, RedisStore};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const PARTITIONS: u16 = 2;
const CHANNEL: &str = "hook";
/// How long a trapped request waits for its answer: far longer than any test.
const HANG: Duration = Duration::from_secs(60);

/// Each test runs a Redis, two `ward up` processes and a load generator: on two cores they
/// run one at a time, so one test's load does not stretch another's timings.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------------------------
// The webhook receiver

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Hit {
    /// The alert's idempotency key as posted (without the `@hook` suffix Ward adds).
    key: String,
    at: Instant,
    /// Wall-clock arrival, comparable with the store's times (same host, same clock).
    at_ms: i64,
    status: u16,
    /// Held by the trap: never answered while the test runs.
    hung: bool,
}

struct HookState {
    status: u16,
    delay: Duration,
    /// Hang the next request that arrives while another is still being answered.
    armed: bool,
    hits: Vec<Hit>,
}

/// Records every request; answers `status` after `delay`. Requests are answered in the
/// order they arrive, one lock at a time (wiremock calls responders serially).
#[derive(Clone)]
struct Responder(Arc<Mutex<HookState>>);

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let key = request
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let key = key
            .strip_suffix(&format!("@{CHANNEL}"))
            .unwrap_or(key)
            .to_owned();
        let mut state = self.0.lock().unwrap();
        let now = Instant::now();
        let delay = state.delay;
        // With one delivering worker, a request that arrives while an earlier one is still
        // unanswered belongs to the same batch: a worker starts its next batch only once
        // every send of the current one has ended.
        let hung = state.armed
            && state
                .hits
                .iter()
                .any(|h| !h.hung && now.duration_since(h.at) < delay);
        if hung {
            state.armed = false;
        }
        let status = state.status;
        state.hits.push(Hit {
            key,
            at: now,
            at_ms: SystemClock.now_ms(),
            status,
            hung,
        });
        ResponseTemplate::new(status).set_delay(if hung { HANG } else { delay })
    }
}

/// A wiremock webhook receiver the `hook` channel posts to.
struct Hook {
    state: Arc<Mutex<HookState>>,
    url: String,
    _server: MockServer,
}

impl Hook {
    async fn start(status: u16, delay: Duration) -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(HookState {
            status,
            delay,
            armed: false,
            hits: Vec::new(),
        }));
        Mock::given(method("POST"))
            .and(path("/hook"))
            .respond_with(Responder(state.clone()))
            .mount(&server)
            .await;
        Self {
            state,
            url: format!("{}/hook", server.uri()),
            _server: server,
        }
    }

    fn set_status(&self, status: u16) {
        self.state.lock().unwrap().status = status;
    }

    fn arm_trap(&self) {
        self.state.lock().unwrap().armed = true;
    }

    fn hits(&self) -> Vec<Hit> {
        self.state.lock().unwrap().hits.clone()
    }

    /// Requests received and not answered yet.
    fn in_progress(&self) -> usize {
        let state = self.state.lock().unwrap();
        state
            .hits
            .iter()
            .filter(|h| h.hung || h.at.elapsed() < state.delay)
            .count()
    }

    /// Keys of the requests answered by now (the trapped one never is).
    fn answered(&self) -> HashSet<String> {
        let state = self.state.lock().unwrap();
        state
            .hits
            .iter()
            .filter(|h| !h.hung && h.at.elapsed() >= state.delay)
            .map(|h| h.key.clone())
            .collect()
    }

    /// Requests received, by key (what the receiving end saw, answered or not).
    fn received(&self) -> HashMap<String, usize> {
        count_keys(self.hits().iter())
    }

    /// Requests answered with a 2xx, by key: deliveries.
    fn delivered(&self) -> HashMap<String, usize> {
        count_keys(
            self.hits()
                .iter()
                .filter(|h| !h.hung && (200..300).contains(&h.status)),
        )
    }
}

fn count_keys<'a>(hits: impl Iterator<Item = &'a Hit>) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for hit in hits {
        *counts.entry(hit.key.clone()).or_default() += 1;
    }
    counts
}

// ---------------------------------------------------------------------------------------------
// `ward up` processes

/// What differs between the tests' worker configs.
struct Setup {
    batch_size: usize,
    concurrency: usize,
    lease_ms: u64,
    janitor_interval_ms: u64,
    /// The channel's HTTP timeout and the workers' send timeout.
    send_timeout_ms: u64,
    /// The `[breaker]` section's body.
    breaker: &'static str,
}

/// A config file for `ward up`: Redis store, ingest on a free port, one webhook channel `hook`
/// with a fast retry policy (fixed 100 ms, 20 attempts).
fn write_config(dir: &Path, redis_url: &str, hook_url: &str, setup: &Setup) -> PathBuf {
    let Setup {
        batch_size,
        concurrency,
        lease_ms,
        janitor_interval_ms,
        send_timeout_ms,
        breaker,
    } = setup;
    let heartbeat_ms = lease_ms / 3;
    let text = format!(
        r#"
[store]
backend = "redis"
redis_url = "{redis_url}"
partitions = {PARTITIONS}

[queues]
lease_ms = {lease_ms}
heartbeat_ms = {heartbeat_ms}
janitor_interval_ms = {janitor_interval_ms}
batch_size = {batch_size}
max_attempts = 20

[ingest]
bind = "127.0.0.1:0"

[workers]
concurrency = {concurrency}
send_timeout_ms = {send_timeout_ms}
idle_poll_ms = 10
scheduler_interval_ms = 50
stats_interval_ms = 100
recheck_ms = 500

[breaker]
{breaker}

[routing]
default_channels = ["{CHANNEL}"]
default_retry_policy = "fast"

[[delivery.channels]]
name = "{CHANNEL}"
kind = "webhook"
url = "{hook_url}"
timeout_ms = {send_timeout_ms}

[[delivery.retry_policies]]
name = "fast"
max_attempts = 20
jitter = "none"
backoff = {{ kind = "fixed", delay = "100ms" }}

[log]
level = "info"
"#
    );
    let file = dir.join("ward.toml");
    std::fs::write(&file, text).unwrap();
    file
}

/// What every process test starts with: a Redis, a store on it, the webhook receiver answering
/// `status` after `delay`, and a `ward up` config for both in a temporary directory.
struct Rig {
    redis: RedisServer,
    store: RedisStore,
    hook: Hook,
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Rig {
    async fn start(status: u16, delay: Duration, setup: Setup) -> Self {
        let redis = RedisServer::start();
        let store = store_for(&redis.url()).await;
        let hook = Hook::start(status, delay).await;
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), &redis.url(), &hook.url, &setup);
        Self {
            redis,
            store,
            hook,
            dir,
            config,
        }
    }
}

/// A running `ward up`; killed (and its log printed, if the test failed) when dropped.
struct Worker {
    name: &'static str,
    child: Child,
    /// `http://host:port` of its ingest endpoint.
    base: String,
    log: PathBuf,
}

impl Worker {
    /// Start `ward up` with `config` and wait for its "ingest on" line.
    async fn start(name: &'static str, config: &Path) -> Self {
        Self::start_as(name, config, "all").await
    }

    /// Start `ward up --role <role>` and wait until it says it runs (a workers-only process
    /// has no endpoint: its `base` stays empty).
    async fn start_as(name: &'static str, config: &Path, role: &str) -> Self {
        Self::start_with(name, config, &["--role", role]).await
    }

    /// Start `ward up <args>` and wait until it says it runs.
    async fn start_with(name: &'static str, config: &Path, args: &[&str]) -> Self {
        let log = config.with_file_name(format!("{name}.log"));
        let child = common::ward_process(config.parent().unwrap_or(config))
            .arg("up")
            .args(args)
            .env("WARD_CONFIG", config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("spawn ward up");
        let mut worker = Self {
            name,
            child,
            base: String::new(),
            log,
        };
        let stdout = worker.child.stdout.take().unwrap();
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match lines.try_recv() {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("ward up: ingest on ") {
                        rest.split_whitespace()
                            .next()
                            .unwrap()
                            .clone_into(&mut worker.base);
                        return worker;
                    }
                    if line.starts_with("ward up: workers only") {
                        return worker;
                    }
                }
                Err(mpsc::TryRecvError::Empty) => {
                    if let Some(status) = worker.child.try_wait().unwrap() {
                        panic!("{name} exited before it was ready: {status}");
                    }
                    assert!(Instant::now() < deadline, "{name} was not ready in 20 s");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(mpsc::TryRecvError::Disconnected) => {
                    panic!("{name} closed its stdout before it was ready");
                }
            }
        }
    }

    /// SIGTERM, as a service manager stops it.
    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM {}", self.child.id());
    }

    /// SIGKILL: no destructor runs, nothing is handed back.
    fn kill_hard(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {within:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn metrics(&self, http: &reqwest::Client) -> String {
        http.get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!(
                "----- {} log -----\n{log}----- end of {} log -----",
                self.name, self.name
            );
        }
    }
}

/// The sum of every sample of `name` whose labels include all of `labels` (counters and
/// gauges here are whole numbers).
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> i64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
            let matches = series_name == name
                && labels
                    .iter()
                    .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")));
            matches.then(|| value.parse::<f64>().ok()).flatten()
        })
        .map(|v| v.round() as i64)
        .sum()
}

// ---------------------------------------------------------------------------------------------
// Alerts in, results out

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Post one alert per key (each its own idempotency key); the ingest ids on 202.
async fn post(http: &reqwest::Client, base: &str, keys: &[String]) -> Result<Vec<String>, String> {
    let alerts: Vec<Value> = keys
        .iter()
        .map(|key| {
            json!({
                "labels": { "alertname": "ProcessTest", "key": key },
                "severity": "critical",
                "idempotency_key": key,
            })
        })
        .collect();
    let response = http
        .post(format!("{base}/v1/alerts"))
        .json(&alerts)
        .send()
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    let status = response.status().as_u16();
    let body: Value = response
        .json()
        .await
        .map_err(|e| format!("{status}: {e}"))?;
    if status != 202 {
        return Err(format!("refused with {status}: {body}"));
    }
    let ids: Vec<String> = body["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), keys.len(), "{body}");
    Ok(ids)
}

/// Alerts a load generator got a 202 for (ingest id → key), and every key it tried.
#[derive(Default)]
struct Posted {
    accepted: BTreeMap<String, String>,
    attempted: HashSet<String>,
    /// Why it stopped: the first failed post.
    ended_by: String,
}

/// Post five alerts every 40 ms to `base` until it stops accepting them.
fn stream(base: String, prefix: &'static str) -> tokio::task::JoinHandle<Posted> {
    tokio::spawn(async move {
        let http = http();
        let mut posted = Posted::default();
        let mut pace = tokio::time::interval(Duration::from_millis(40));
        for n in 0.. {
            pace.tick().await;
            let keys: Vec<String> = (0..5).map(|i| format!("{prefix}-{n}-{i}")).collect();
            posted.attempted.extend(keys.iter().cloned());
            match post(&http, &base, &keys).await {
                Ok(ids) => posted.accepted.extend(ids.into_iter().zip(keys)),
                Err(error) => {
                    posted.ended_by = error;
                    break;
                }
            }
        }
        posted
    })
}

/// The load generator's result, once the worker it posts to has gone.
async fn finished(load: tokio::task::JoinHandle<Posted>) -> Posted {
    tokio::time::timeout(Duration::from_secs(15), load)
        .await
        .expect("the load generator kept posting to a stopped worker")
        .unwrap()
}

async fn store_for(url: &str) -> RedisStore {
    redis_store(url, PARTITIONS, ManualClock::new(SystemClock.now_ms())).await
}

fn queues() -> [QueueName; 2] {
    [QueueName::ingest(), QueueName::delivery()]
}

/// (waiting, leased, scheduled) over both queues.
async fn backlog(store: &dyn Store) -> (u64, u64, u64) {
    let stats = store.stats(&queues()).await.unwrap();
    stats.queues.iter().fold((0, 0, 0), |(d, i, s), q| {
        (d + q.depth, i + q.in_flight, s + q.scheduled)
    })
}

/// Keys of every alert in either queue's DLQ.
async fn dlq_keys(store: &dyn Store) -> HashSet<String> {
    let mut keys = HashSet::new();
    for queue in queues() {
        for entry in common::failed_entries(store, &queue, FailedSet::Dlq).await {
            let envelope = entry.envelope.expect("a DLQ entry that decodes");
            let key = envelope.idempotency_key;
            let key = key.strip_suffix(&format!("@{CHANNEL}")).unwrap_or(&key);
            keys.insert(key.to_owned());
        }
    }
    keys
}

/// Wait until nothing is waiting, leased or scheduled and every key in `keys` is delivered
/// or dead-lettered.
async fn wait_drained(store: &dyn Store, hook: &Hook, keys: &[String], within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let backlog = backlog(store).await;
        let delivered = hook.delivered();
        let dlq = dlq_keys(store).await;
        let open = keys
            .iter()
            .filter(|k| !delivered.contains_key(*k) && !dlq.contains(*k))
            .count();
        if backlog == (0, 0, 0) && open == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not drained in {within:?}: (waiting, leased, scheduled) = {backlog:?}, \
             {open} of {} alerts neither delivered nor dead-lettered",
            keys.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Zero loss: every accepted alert was delivered or is in the DLQ, never both, and nothing
/// is left anywhere.
async fn assert_nothing_lost(store: &dyn Store, hook: &Hook, posted: &Posted) {
    let delivered = hook.delivered();
    let dlq = dlq_keys(store).await;
    let missing: Vec<_> = posted
        .accepted
        .iter()
        .filter(|(_, key)| !delivered.contains_key(*key) && !dlq.contains(*key))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} accepted alerts lost (id, key), e.g. {:?}",
        missing.len(),
        posted.accepted.len(),
        missing.first()
    );
    let both: Vec<_> = dlq.iter().filter(|k| delivered.contains_key(*k)).collect();
    assert!(both.is_empty(), "delivered and dead-lettered: {both:?}");
    // The receiver always ends up answering 200 and the retry budget is large: nothing has a
    // reason to be dead-lettered, so a DLQ entry would be a fault (say, leases recovered until
    // the attempts ran out).
    assert!(dlq.is_empty(), "dead-lettered: {dlq:?}");
    let unknown: Vec<_> = hook
        .received()
        .into_keys()
        .filter(|k| !posted.attempted.contains(k))
        .collect();
    assert!(
        unknown.is_empty(),
        "the receiver got alerts nobody posted: {unknown:?}"
    );
    assert_eq!(backlog(store).await, (0, 0, 0));
}

// ---------------------------------------------------------------------------------------------
// Reading Redis directly: what a killed worker left behind

/// Idempotency records of `keys` as the workers left them: `done:…`, `sending:…` or none.
/// Whether the store records each alert's delivery on `CHANNEL` as done: its claim record
/// (`sending:<hold>:<window end>:<call>:<slot>:<owner>`) has its bit set in its call's bitmap.
fn dedup_done(server: &RedisServer, schema: &KeySchema, keys: &[String]) -> Vec<bool> {
    let mut conn = server.connection();
    keys.iter()
        .map(|k| {
            let key = format!("{k}@{CHANNEL}");
            let record: Option<String> = redis::cmd("GET")
                .arg(schema.dedup_record(&key))
                .query(&mut conn)
                .unwrap();
            let Some(record) = record else {
                return false;
            };
            let fields: Vec<&str> = record.splitn(6, ':').collect();
            assert_eq!(fields[0], "sending", "a claim record: {record}");
            let bit: u8 = redis::cmd("GETBIT")
                .arg(schema.dedup_done(schema.dedup_partition(&key), fields[3]))
                .arg(fields[4])
                .query(&mut conn)
                .unwrap();
            bit == 1
        })
        .collect()
}

/// Keys of the alerts being delivered right now, over every partition: those of the deliveries
/// leased on the delivery queue, and those of the alerts the routers hold while they deliver
/// them themselves (`workers.deliver_on_route`).
fn leased_delivery_keys(server: &RedisServer, schema: &KeySchema) -> Vec<String> {
    let mut conn = server.connection();
    let mut keys = Vec::new();
    for queue in [QueueName::delivery(), QueueName::ingest()] {
        for p in 0..PARTITIONS {
            let members: Vec<String> = redis::cmd("ZRANGE")
                .arg(schema.leases(p, &queue))
                .arg(0)
                .arg(-1)
                .query(&mut conn)
                .unwrap();
            // Lease members are `<token>|<id>`.
            let ids: Vec<&str> = members
                .iter()
                .map(|m| m.split_once('|').unwrap().1)
                .collect();
            if ids.is_empty() {
                continue;
            }
            let bodies: Vec<Option<String>> = redis::cmd("HMGET")
                .arg(schema.bodies(p))
                .arg(&ids)
                .query(&mut conn)
                .unwrap();
            for body in bodies.into_iter().flatten() {
                // Stored bodies are `<attempts>:<replays>:<json>`.
                let json = body.splitn(3, ':').nth(2).unwrap();
                let envelope: Value = serde_json::from_str(json).unwrap();
                let key = envelope["idempotency_key"].as_str().unwrap();
                // A delivery's key is its alert's and the channel's.
                let suffix = format!("@{CHANNEL}");
                keys.push(key.strip_suffix(&suffix).unwrap_or(key).to_owned());
            }
        }
    }
    keys
}

// ---------------------------------------------------------------------------------------------
// 1. The breaker, shared through the store

async fn breaker(store: &dyn Store) -> Option<Breaker> {
    store.breaker_load(CHANNEL).await.unwrap().map(|(_, b)| b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_opened_by_one_process_holds_back_another_until_probes_close_it() {
    let _serial = SERIAL.lock().await;
    // One alert per lease and one send at a time: the breaker sees each call on its own, so
    // "opens after the threshold" is exact.
    let Rig {
        redis: _redis,
        store,
        hook,
        dir: _dir,
        config,
    } = Rig::start(
        500,
        Duration::ZERO,
        Setup {
            batch_size: 1,
            concurrency: 1,
            lease_ms: 10_000,
            janitor_interval_ms: 200,
            send_timeout_ms: 5_000,
            breaker: "failure_rate_threshold = 0.5\nminimum_calls = 4\nwindow_ms = 60000\n\
                      buckets = 10\nopen_wait_ms = 5000\nhalf_open_probes = 2",
        },
    )
    .await;
    let http = http();
    let keys: Vec<String> = (0..10).map(|i| format!("brk-{i}")).collect();

    // Worker A alone against a receiver failing 100 %.
    let a = Worker::start("worker-a", &config).await;
    post(&http, &a.base, &keys[..6]).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let open = loop {
        if let Some(b) = breaker(&store).await
            && b.state != BreakerState::Closed
        {
            break b;
        }
        assert!(Instant::now() < deadline, "the breaker never opened");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(open.state, BreakerState::Open, "{open:?}");
    let until = open.until_ms.unwrap();
    assert_eq!(until, open.since_ms + 5000);
    let transition = open.last_transition.clone().unwrap();
    assert_eq!(
        (transition.from, transition.to),
        (BreakerState::Closed, BreakerState::Open)
    );
    match transition.cause {
        TransitionCause::FailureRate { rate, calls } => {
            assert_eq!(calls, 4, "opened at minimum_calls");
            assert!((rate - 1.0).abs() < f64::EPSILON, "{rate}");
        }
        other => panic!("opened for {other:?}"),
    }
    let hits = hook.hits();
    assert_eq!(
        hits.len(),
        4,
        "exactly the threshold's calls went out: {hits:?}"
    );
    assert!(
        hits.iter()
            .all(|h| h.status == 500 && h.at_ms <= open.since_ms)
    );

    // Worker B starts while the breaker is open and gets work of its own.
    let b = Worker::start("worker-b", &config).await;
    post(&http, &b.base, &keys[6..]).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = b.metrics(&http).await;
        let refused = metric(
            &text,
            "ward_deliveries_total",
            &[("channel", CHANNEL), ("outcome", "breaker_open")],
        );
        if refused >= 1 {
            assert_eq!(
                metric(&text, "ward_breaker_state", &[("channel", CHANNEL)]),
                1,
                "B reports the breaker A opened"
            );
            break;
        }
        assert!(Instant::now() < deadline, "B never consulted the breaker");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        breaker(&store).await.unwrap().state,
        BreakerState::Open,
        "still open"
    );
    assert_eq!(hook.hits().len(), 4, "nothing sent while open, by A or B");

    // The receiver recovers before the wait is over; the probes will find it healthy.
    hook.set_status(200);
    assert!(
        SystemClock.now_ms() < until,
        "the test took the whole open wait to get here; the rest would prove nothing"
    );

    // The test reads the store as a third observer until the breaker is closed again.
    let deadline = Instant::now() + Duration::from_secs(15);
    let closed = loop {
        let b = breaker(&store).await.unwrap();
        if b.state == BreakerState::Closed {
            break b;
        }
        assert!(Instant::now() < deadline, "the breaker never closed: {b:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let transition = closed.last_transition.clone().unwrap();
    assert_eq!(
        (transition.from, transition.to, transition.cause),
        (
            BreakerState::HalfOpen,
            BreakerState::Closed,
            TransitionCause::ProbesSucceeded
        )
    );
    assert_eq!(
        closed.transitions, 3,
        "closed → open → half-open → closed, nothing else: {closed:?}"
    );

    let hits = hook.hits();
    // While open — from the fourth failure until the wait elapsed — nobody sent anything.
    let during_open: Vec<_> = hits[4..].iter().filter(|h| h.at_ms < until).collect();
    assert!(during_open.is_empty(), "sent while open: {during_open:?}");
    // Half-open let exactly the probes through, and they succeeded: the two requests after
    // the wait are answered 200, and a third reached the receiver only once it had closed.
    let probes = &hits[4..6];
    assert!(
        probes
            .iter()
            .all(|h| h.status == 200 && h.at_ms <= closed.since_ms),
        "half_open_probes = 2: {probes:?}"
    );
    if let Some(third) = hits.get(6) {
        assert!(
            third.at_ms >= closed.since_ms,
            "sent while half-open: {third:?}"
        );
    }

    // Closed again: everything held back goes out, each alert once.
    wait_drained(&store, &hook, &keys, Duration::from_secs(15)).await;
    let delivered = hook.delivered();
    for key in &keys {
        assert_eq!(delivered.get(key), Some(&1), "{key} delivered once");
    }
    assert!(dlq_keys(&store).await.is_empty());

    // Both processes' /metrics: A opened it; one of them half-opened it and one closed it;
    // both report it closed now.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (ma, mb) = loop {
        let (ma, mb) = (a.metrics(&http).await, b.metrics(&http).await);
        let state = |t: &str| metric(t, "ward_breaker_state", &[("channel", CHANNEL)]);
        if state(&ma) == 0 && state(&mb) == 0 {
            break (ma, mb);
        }
        assert!(
            Instant::now() < deadline,
            "a worker still reports the breaker not closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let transitions = |text: &str, from: &str, to: &str| {
        metric(
            text,
            "ward_breaker_transitions_total",
            &[("channel", CHANNEL), ("from", from), ("to", to)],
        )
    };
    assert_eq!(transitions(&ma, "closed", "open"), 1);
    assert_eq!(
        transitions(&mb, "closed", "open"),
        0,
        "B never saw it closed"
    );
    for (from, to) in [("open", "half_open"), ("half_open", "closed")] {
        assert_eq!(
            transitions(&ma, from, to) + transitions(&mb, from, to),
            1,
            "{from} → {to} once across both processes"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 2. SIGTERM under load

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_finishes_in_flight_sends_and_loses_nothing() {
    let _serial = SERIAL.lock().await;
    // A long lease: if the stopping worker kept its leases instead of handing them back, the
    // next worker could not have them for 30 s and the drain below would time out.
    let Rig {
        redis,
        store,
        hook,
        dir: _dir,
        config,
    } = Rig::start(
        200,
        Duration::from_millis(100),
        Setup {
            batch_size: 8,
            concurrency: 8,
            lease_ms: 30_000,
            janitor_interval_ms: 5_000,
            send_timeout_ms: 5_000,
            breaker: "",
        },
    )
    .await;

    let mut a = Worker::start("worker-a", &config).await;
    let load = stream(a.base.clone(), "term");
    // Mid-flight: a fair amount delivered and sends waiting for the slow receiver right now.
    let deadline = Instant::now() + Duration::from_secs(15);
    while hook.hits().len() < 40 || hook.in_progress() == 0 {
        assert!(Instant::now() < deadline, "the load never got going");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    a.terminate();
    let status = a.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "ward up exits 0 on SIGTERM");
    let posted = finished(load).await;
    assert!(
        posted.ended_by.starts_with("no answer"),
        "the load ran until the worker stopped listening: {}",
        posted.ended_by
    );

    // What A left: every send it started was finished and recorded, and no lease is held.
    let sent: Vec<String> = hook.received().into_keys().collect();
    let done = dedup_done(&redis, store.keys(), &sent);
    let unfinished: Vec<_> = sent.iter().zip(&done).filter(|(_, done)| !**done).collect();
    assert!(
        unfinished.is_empty(),
        "sends abandoned on SIGTERM: {unfinished:?}"
    );
    assert_eq!(
        hook.in_progress(),
        0,
        "no request was still being answered after A exited"
    );
    let (waiting, leased, _) = backlog(&store).await;
    assert_eq!(leased, 0, "A handed every lease back ({waiting} waiting)");

    // A fresh worker drains the rest.
    let mut b = Worker::start("worker-b", &config).await;
    let keys: Vec<String> = posted.accepted.values().cloned().collect();
    wait_drained(&store, &hook, &keys, Duration::from_secs(20)).await;
    assert_nothing_lost(&store, &hook, &posted).await;
    let twice: Vec<_> = hook
        .received()
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .collect();
    assert!(twice.is_empty(), "received more than once: {twice:?}");
    eprintln!(
        "sigterm: {} accepted, {} sent before SIGTERM, {waiting} waiting for the next worker",
        keys.len(),
        sent.len()
    );
    b.terminate();
    assert_eq!(b.wait_exit(Duration::from_secs(10)).await.code(), Some(0));
}

// ---------------------------------------------------------------------------------------------
// Roles: an ingest-only process and a workers-only process share one Redis

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_node_only_accepts_and_a_workers_node_only_delivers() {
    let _serial = SERIAL.lock().await;
    let Rig {
        redis: _redis,
        store,
        hook,
        dir: _dir,
        config,
    } = Rig::start(
        200,
        Duration::ZERO,
        Setup {
            batch_size: 8,
            concurrency: 8,
            lease_ms: 5_000,
            janitor_interval_ms: 1_000,
            send_timeout_ms: 5_000,
            breaker: "",
        },
    )
    .await;
    // The ingest node as benchmarked: one thread, the current-thread scheduler.
    let mut front = Worker::start_with(
        "ingest-node",
        &config,
        &["--role", "ingest", "--threads", "1"],
    )
    .await;
    let http = http();
    let keys: Vec<String> = (0..20).map(|i| format!("role-{i}")).collect();
    post(&http, &front.base, &keys).await.unwrap();

    // The ingest node beats (its stats loop runs) but never leases: two beats later, with a
    // router that would poll every 10 ms, all 20 still wait and nothing was sent.
    let first_beat = wait_for_beat(&store, i64::MIN).await;
    wait_for_beat(&store, first_beat + 200).await;
    assert_eq!(
        backlog(&store).await,
        (20, 0, 0),
        "the ingest node consumed nothing"
    );
    assert!(hook.hits().is_empty(), "nothing was sent");

    let back = Worker::start_as("workers-node", &config, "workers").await;
    assert!(back.base.is_empty(), "a workers node serves no endpoint");
    wait_drained(&store, &hook, &keys, Duration::from_secs(20)).await;
    let delivered = hook.delivered();
    for key in &keys {
        assert!(delivered.contains_key(key), "{key} was delivered");
    }
    // Each beats with its role, so the control room and `ward check` can tell a process that
    // drains the queues from one that only fills them.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let read = store.control_read(&[], 0).await.unwrap();
        let mut roles: Vec<Role> = read.workers.iter().map(|(_, beat)| beat.role).collect();
        roles.sort_by_key(|role| role.as_str());
        if roles == [Role::Ingest, Role::Workers] {
            break;
        }
        assert!(Instant::now() < deadline, "heartbeat roles: {roles:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    front.terminate();
    assert_eq!(
        front.wait_exit(Duration::from_secs(10)).await.code(),
        Some(0),
        "the one-thread ingest node stops cleanly on SIGTERM"
    );
}

/// The newest heartbeat's time once it is at least `after` (ms), polling the store.
async fn wait_for_beat(store: &dyn Store, after: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let read = store.control_read(&[], 0).await.unwrap();
        if let Some(at) = read.workers.iter().map(|(_, beat)| beat.at_ms).max()
            && at >= after
        {
            return at;
        }
        assert!(
            Instant::now() < deadline,
            "no heartbeat at or after {after}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 3. SIGKILL under load

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_nothing_and_resends_only_unrecorded_sends() {
    let _serial = SERIAL.lock().await;
    // A batch's sends all run at once (concurrency = batch size); a short lease and a busy
    // janitor let the next worker take over the dead one's leases within seconds.
    let Rig {
        redis,
        store,
        hook,
        dir: _dir,
        config,
    } = Rig::start(
        200,
        Duration::from_millis(100),
        Setup {
            batch_size: 5,
            concurrency: 5,
            lease_ms: 4_000,
            janitor_interval_ms: 100,
            send_timeout_ms: 20_000,
            breaker: "",
        },
    )
    .await;
    let schema = store.keys().clone();

    let mut a = Worker::start("worker-a", &config).await;
    let load = stream(a.base.clone(), "kill");
    let deadline = Instant::now() + Duration::from_secs(15);
    while hook.hits().len() < 30 {
        assert!(Instant::now() < deadline, "the load never got going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The receiver now holds one send of a batch unanswered (the trap), so A stays inside
    // that batch: its other sends are answered, its leases are held, nothing is acked.
    hook.arm_trap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let (trapped, batch) = loop {
        let hits = hook.hits();
        if let Some(trap) = hits.iter().find(|h| h.hung) {
            let batch = leased_delivery_keys(&redis, &schema);
            let answered = hook.answered();
            let others_answered = batch.iter().all(|k| *k == trap.key || answered.contains(k));
            if batch.len() >= 2 && batch.contains(&trap.key) && others_answered {
                break (trap.key.clone(), batch);
            }
        }
        assert!(
            Instant::now() < deadline,
            "the trap never held a batch of two or more"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    // Let A record what it finished. A worker that records each send as it completes does
    // so within milliseconds; one that records a whole batch at once waits for the trapped
    // send and never gets there. Both are allowed: the assertions below use what the store
    // holds at the kill, and A, stuck on the trap, cannot change it any more.
    let others: Vec<String> = batch.iter().filter(|k| **k != trapped).cloned().collect();
    let grace = Instant::now() + Duration::from_secs(1);
    let recorded = loop {
        let states = dedup_done(&redis, &schema, &others);
        let done: HashSet<String> = others
            .iter()
            .zip(&states)
            .filter(|(_, done)| **done)
            .map(|(k, _)| k.clone())
            .collect();
        if done.len() == others.len() || Instant::now() >= grace {
            break done;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    a.kill_hard();
    let posted = finished(load).await;
    let sent_by_a = hook.received();

    // B takes over: its janitor returns A's expired leases, B delivers the rest.
    let b = Worker::start("worker-b", &config).await;
    let http = http();
    let keys: Vec<String> = posted.accepted.values().cloned().collect();
    wait_drained(&store, &hook, &keys, Duration::from_secs(20)).await;
    assert_nothing_lost(&store, &hook, &posted).await;

    // What the design guarantees for a worker that dies without a word:
    // - a send whose success is recorded (dedup record `done`) is not sent again: the worker
    //   that recovers the lease finds the record and acks without sending;
    // - a send without a record has only a claim, which lapses with the lease: it is sent
    //   again, once — at least once, since the receiver may have acted on the first request.
    //   Only the dead worker's last batch can be in that state.
    let received = hook.received();
    assert_eq!(sent_by_a.get(&trapped), Some(&1));
    assert_eq!(
        received.get(&trapped),
        Some(&2),
        "the send in flight at the kill is sent again"
    );
    for key in &recorded {
        assert_eq!(
            received.get(key),
            Some(&1),
            "{key} was recorded as delivered before the kill, yet sent again"
        );
    }
    let repeated: Vec<_> = received
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, n)| (k.clone(), *n))
        .collect();
    for (key, n) in &repeated {
        assert!(
            *n == 2 && batch.contains(key) && !recorded.contains(key),
            "{key} received {n} times; only unrecorded sends of A's last batch may repeat, once"
        );
    }
    let text = b.metrics(&http).await;
    let dedup_hits = metric(&text, "ward_dedup_hits_total", &[("channel", CHANNEL)]);
    assert!(
        dedup_hits >= recorded.len() as i64,
        "B found the {} recorded-but-unacked alerts of A's batch already delivered \
         ({dedup_hits} dedup hits)",
        recorded.len()
    );
    assert!(
        metric(&text, "ward_recovered_leases_total", &[]) >= batch.len() as i64,
        "B's janitor returned A's leases"
    );
    eprintln!(
        "sigkill: {} accepted, {} received before the kill; A's last batch {} alerts, \
         {} recorded delivered at the kill, {} sent again; {dedup_hits} dedup hits on B",
        keys.len(),
        sent_by_a.len(),
        batch.len(),
        recorded.len(),
        repeated.len()
    );
}

// ---------------------------------------------------------------------------------------------
// 4. A Redis Cluster primary killed under load

/// Post five alerts every 40 ms to `base` until `stop` is set, going on through refusals (a
/// store that fails over answers 503 for a while).
fn stream_through(
    base: String,
    prefix: &'static str,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<(Posted, usize)> {
    tokio::spawn(async move {
        let http = http();
        let mut posted = Posted::default();
        let mut refused = 0;
        let mut pace = tokio::time::interval(Duration::from_millis(40));
        for n in 0.. {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            pace.tick().await;
            let keys: Vec<String> = (0..5).map(|i| format!("{prefix}-{n}-{i}")).collect();
            posted.attempted.extend(keys.iter().cloned());
            match post(&http, &base, &keys).await {
                Ok(ids) => posted.accepted.extend(ids.into_iter().zip(keys)),
                Err(error) => {
                    refused += 1;
                    posted.ended_by = error;
                }
            }
        }
        (posted, refused)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_primary_killed_under_load_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let mut cluster = tokio::task::spawn_blocking(common::RedisCluster::start)
        .await
        .unwrap();
    let store = store_for(&cluster.url()).await;
    let schema = store.keys().clone();
    let hook = Hook::start(200, Duration::from_millis(20)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &cluster.url(),
        &hook.url,
        &Setup {
            batch_size: 5,
            concurrency: 5,
            lease_ms: 4_000,
            janitor_interval_ms: 100,
            send_timeout_ms: 5_000,
            breaker: "",
        },
    );
    let a = Worker::start("worker-a", &config).await;
    let b = Worker::start("worker-b", &config).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load_a = stream_through(a.base.clone(), "fa", stop.clone());
    let load_b = stream_through(b.base.clone(), "fb", stop.clone());
    let deadline = Instant::now() + Duration::from_secs(15);
    while hook.hits().len() < 50 {
        assert!(Instant::now() < deadline, "the load never got going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // The primary of partition 0's ingest queue dies mid-run; its replica takes over.
    let victim = cluster.primary_for(&schema.queue(0, &QueueName::ingest()));
    cluster.kill(victim);
    let killed_at = hook.hits().len();
    let cluster = Arc::new(cluster);
    let watch = cluster.clone();
    tokio::task::spawn_blocking(move || watch.wait_healthy(Duration::from_secs(30)))
        .await
        .unwrap();
    let promoted = cluster.primary_for(&schema.queue(0, &QueueName::ingest()));
    assert_ne!(promoted, victim, "a replica serves partition 0 now");
    // Both workers go on: new alerts are accepted and delivered after the failover.
    let deadline = Instant::now() + Duration::from_secs(30);
    while hook.hits().len() < killed_at + 100 {
        assert!(
            Instant::now() < deadline,
            "deliveries did not resume after the failover"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (posted_a, refused_a) = load_a.await.unwrap();
    let (posted_b, refused_b) = load_b.await.unwrap();
    let mut posted = posted_a;
    posted.accepted.extend(posted_b.accepted);
    posted.attempted.extend(posted_b.attempted);

    let keys: Vec<String> = posted.accepted.values().cloned().collect();
    wait_drained(&store, &hook, &keys, Duration::from_secs(60)).await;
    assert_nothing_lost(&store, &hook, &posted).await;
    // At least once: an alert is sent again only when the failover took the record of its
    // first send (a send in flight, or recorded on the primary and not yet replicated).
    let received = hook.received();
    let repeated: Vec<_> = received.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.iter().all(|(_, n)| **n == 2),
        "an alert was sent more than twice: {repeated:?}"
    );
    assert!(
        repeated.len() <= 2 * 5 * 2,
        "more repeats ({}) than two workers' batches in flight around the failover",
        repeated.len()
    );
    eprintln!(
        "cluster failover: {} accepted, {} posts refused during the failover, {} sent twice",
        keys.len(),
        refused_a + refused_b,
        repeated.len()
    );
    drop((a, b));
}
