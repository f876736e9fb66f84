//! The pipeline in process on the memory store: alerts posted over real HTTP come out of a
//! stdout channel exactly once; bad input is refused with a clear 4xx and enqueues nothing; a
//! send slower than the lease keeps its lease by heartbeat and is not sent twice; hostile
//! clients and receivers are held to their limits (`hardening`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use ward::config::{Config, IngestConfig};
use ward::delivery::{Backend, BackendKind, SendError, StdoutBackend};
use ward::engine::ratelimit::RateLimit;
use ward::engine::routing::RoutingConfig;
use ward::model::{DeliveryJob, Envelope, QueueName};
use ward::pipeline::{Pipeline, PipelineParts};
use ward::store::{MemoryStore, Store};
use ward::telemetry::{EventLog, Metrics};

mod hardening;

/// Lines written by the stdout channel.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

struct Running {
    base: String,
    store: Arc<dyn Store>,
    pipeline: Arc<Pipeline>,
    /// What the stdout channel wrote (empty when the pipeline runs another backend).
    out: Captured,
    stop: CancellationToken,
    http: reqwest::Client,
}

/// A pipeline whose only channel, `out`, writes to [`Running::out`].
async fn start(ingest: IngestConfig) -> Running {
    let out = Captured::default();
    let backend: Arc<dyn Backend> = Arc::new(StdoutBackend::with_writer(
        "out",
        Arc::new(Mutex::new(out.clone())),
    ));
    Running {
        out,
        ..start_with(ingest, backend, |_| {}).await
    }
}

/// A pipeline on the memory store routing every alert to `backend`, with `tweak` applied to the
/// default worker settings.
async fn start_with(
    ingest: IngestConfig,
    backend: Arc<dyn Backend>,
    tweak: impl FnOnce(&mut Config),
) -> Running {
    start_on(Arc::new(MemoryStore::new(1)), ingest, backend, tweak).await
}

/// [`start_with`] on a given store.
async fn start_on(
    store: Arc<dyn Store>,
    ingest: IngestConfig,
    backend: Arc<dyn Backend>,
    tweak: impl FnOnce(&mut Config),
) -> Running {
    let channel = backend.name().to_owned();
    let mut config = Config::default();
    config.workers.idle_poll_ms = 5;
    tweak(&mut config);
    let pipeline = Pipeline::new(PipelineParts {
        store: store.clone(),
        backends: vec![backend],
        routing: RoutingConfig {
            default_channels: vec![channel],
            ..RoutingConfig::default()
        },
        policies: Vec::new(),
        breaker: ward::engine::breaker::BreakerConfig::default(),
        ingest: IngestConfig {
            bind: "127.0.0.1:0".to_owned(),
            ..ingest
        },
        queues: config.queues,
        workers: config.workers,
        metrics: Metrics::new(),
        events: EventLog::disabled(),
        alerting: ward::config::alerting::AlertingConfig::default(),
    })
    .unwrap();
    let stop = CancellationToken::new();
    let running = pipeline.spawn(&stop, true).await.unwrap();
    let base = format!("http://{}", running.address.unwrap());
    tokio::spawn(running.join());
    Running {
        base,
        store,
        pipeline,
        out: Captured::default(),
        stop,
        http: reqwest::Client::new(),
    }
}

impl Running {
    async fn post(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.json().await.unwrap())
    }

    async fn wait_for_lines(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let lines = self.out.lines();
            if lines.len() >= n || Instant::now() > deadline {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn unsettled(&self) -> u64 {
        let stats = self
            .store
            .stats(&[QueueName::ingest(), QueueName::delivery()])
            .await
            .unwrap();
        stats
            .queues
            .iter()
            .map(|q| q.depth + q.in_flight + q.scheduled + q.dlq)
            .sum()
    }

    async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// The value of the one series named exactly `series` (name and labels as rendered), if shown.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter_map(|line| line.rsplit_once(' '))
        .find(|(name, _)| *name == series)
        .and_then(|(_, value)| value.parse().ok())
}

fn alert(i: usize) -> Value {
    json!({ "labels": { "alertname": "DiskFull", "host": format!("db-{i}") }, "severity": "critical" })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_alerts_are_delivered_exactly_once() {
    let p = start(IngestConfig::default()).await;
    let batch: Vec<Value> = (0..50).map(alert).collect();
    let (status, headers, body) = p
        .post("/v1/alerts", serde_json::to_vec(&batch).unwrap())
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 50);
    assert!(headers.contains_key("x-correlation-id"));
    // The same alert again: accepted, but delivered once.
    let (status, ..) = p
        .post("/v1/alerts", serde_json::to_vec(&alert(7)).unwrap())
        .await;
    assert_eq!(status, 202);
    let am = json!({
        "version": "4", "status": "firing", "receiver": "ward", "groupKey": "{}:{}", "unknownField": 1,
        "alerts": [
            { "status": "firing", "labels": { "alertname": "Latency", "severity": "warning" }, "annotations": {},
              "startsAt": "2026-11-25T06:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "aaaabbbbccccdddd" },
            { "status": "resolved", "labels": { "alertname": "Latency", "severity": "warning" }, "annotations": {},
              "startsAt": "2026-11-25T05:00:00Z", "endsAt": "2026-11-25T05:30:00Z", "fingerprint": "aaaabbbbccccdddd" }
        ]
    });
    let (status, _, body) = p
        .post("/v1/alertmanager", serde_json::to_vec(&am).unwrap())
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 2);

    let lines = p.wait_for_lines(52).await;
    assert_eq!(
        lines.len(),
        52,
        "50 + 2 Alertmanager alerts, the duplicate not sent"
    );
    let keys: std::collections::HashSet<_> = lines
        .iter()
        .map(|l| l["idempotency_key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 52, "no alert delivered twice");
    let resolved = lines
        .iter()
        .filter(|l| l["alert"]["status"] == "resolved")
        .count();
    assert_eq!(resolved, 1);
    // Everything settled: nothing waiting, leased or dead.
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.unsettled().await != 0 {
        assert!(Instant::now() < deadline, "queues did not drain");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let metrics = p
        .http
        .get(format!("{}/metrics", p.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains(r#"ward_deliveries_total{channel="out",backend="stdout",outcome="delivered",test="false"} 52"#), "{metrics}");
    assert!(metrics.contains(r#"ward_dedup_hits_total{channel="out"} 1"#));
    p.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_error_and_enqueues_nothing() {
    let p = start(IngestConfig {
        body_limit_bytes: 4096,
        ..IngestConfig::default()
    })
    .await;
    let cases: Vec<(&str, Vec<u8>, u16, &str, &str)> = vec![
        ("/v1/alerts", b"{not json".to_vec(), 400, "json", ""),
        (
            "/v1/alerts",
            br#"{"labels":{"a":"b"},"colour":"red"}"#.to_vec(),
            400,
            "validation",
            "colour",
        ),
        (
            "/v1/alerts",
            br#"{"labels":{"a":1}}"#.to_vec(),
            400,
            "validation",
            "labels.a",
        ),
        (
            "/v1/alerts",
            br#"{"labels":{"a":"b\u001b[31m"}}"#.to_vec(),
            400,
            "validation",
            "labels.a: control characters",
        ),
        (
            "/v1/alerts",
            br#"{"labels":{"a":"b"},"severity":"meh"}"#.to_vec(),
            400,
            "validation",
            "severity",
        ),
        (
            "/v1/alerts",
            br#"[{"labels":{"a":"b"}},{"labels":{}}]"#.to_vec(),
            400,
            "validation",
            "[1].labels",
        ),
        (
            "/v1/alerts",
            vec![b' '; 10 * 1024 * 1024],
            413,
            "too_large",
            "limit",
        ),
        (
            "/v1/alertmanager",
            br#"{"version":"4","alerts":[{"labels":{"a":"b"},"startsAt":"yesterday"}]}"#.to_vec(),
            400,
            "validation",
            "alerts[0].startsAt",
        ),
    ];
    for (path, body, want_status, want_error, want_in_message) in cases {
        let response = p
            .http
            .post(format!("{}{path}", p.base))
            .body(body)
            .send()
            .await;
        let Ok(response) = response else {
            assert_eq!(want_status, 413, "only an oversized body may be cut off");
            continue;
        };
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, want_status, "{body}");
        assert_eq!(body["error"], want_error, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains(want_in_message),
            "{body}"
        );
    }
    // One good alert in a bad batch: nothing partial.
    assert_eq!(p.unsettled().await, 0);
    assert!(p.out.lines().is_empty());
    p.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_queue_caps_refuse_with_headers() {
    let limited = IngestConfig {
        rate_limit: RateLimit {
            count: 1,
            period_ms: 60_000,
            burst: 2,
        },
        ..IngestConfig::default()
    };
    let p = start(limited).await;
    for _ in 0..2 {
        assert_eq!(
            p.post("/v1/alerts", serde_json::to_vec(&alert(1)).unwrap())
                .await
                .0,
            202
        );
    }
    let (status, headers, body) = p
        .post("/v1/alerts", serde_json::to_vec(&alert(2)).unwrap())
        .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "rate_limit");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(
        headers["ratelimit-policy"].to_str().unwrap(),
        "\"default\";q=1;w=60"
    );
    assert!(
        headers["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with("\"default\";r=0;t=")
    );
    p.stop.cancel();

    let capped = start(IngestConfig {
        queue_cap: 3,
        ..IngestConfig::default()
    })
    .await;
    let four: Vec<Value> = (0..4).map(alert).collect();
    let (status, _, body) = capped
        .post("/v1/alerts", serde_json::to_vec(&four).unwrap())
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "queue_full");
    assert_eq!(body["queue_limit"], 3);
    assert_eq!(
        capped.unsettled().await,
        0,
        "a refused request enqueues nothing"
    );
    capped.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_partitions_refusals_report_the_share_that_refused() {
    // Three partitions: each bucket keeps 1 alert per 180 s with a burst of 1, and each
    // partition's queue 1 alert (⌈3 / 3⌉).
    let ingest = IngestConfig {
        rate_limit: RateLimit {
            count: 1,
            period_ms: 60_000,
            burst: 3,
        },
        queue_cap: 3,
        ..IngestConfig::default()
    };
    let backend: Arc<dyn Backend> = Arc::new(StdoutBackend::with_writer(
        "out",
        Arc::new(Mutex::new(Captured::default())),
    ));
    let p = start_on(Arc::new(MemoryStore::new(3)), ingest, backend, |_| {}).await;
    let one = serde_json::to_vec(&alert(1)).unwrap();
    assert_eq!(p.post("/v1/alerts", one.clone()).await.0, 202);
    // The same alert again: the same partition, whose bucket is spent.
    let (status, headers, body) = p.post("/v1/alerts", one).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(
        headers["ratelimit-policy"].to_str().unwrap(),
        "\"default\";q=1;w=180",
        "the policy of the bucket that refused: 1 per 3 × 60 s"
    );
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=180).contains(&retry_after), "{retry_after}");
    // Two tenants with budget left, two alerts: over the partition's share of the cap.
    let two = json!([
        { "labels": { "alertname": "A" }, "tenant": "t1" },
        { "labels": { "alertname": "B" }, "tenant": "t2" },
    ]);
    let (status, _, body) = p
        .post("/v1/alerts", serde_json::to_vec(&two).unwrap())
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "queue_full");
    assert_eq!(
        body["queue_limit"], 1,
        "the share it compared with: ⌈3 / 3⌉"
    );
    assert!(body["queue_depth"].is_u64(), "{body}");
    p.stop.cancel();
}

/// A channel whose every send takes `delay`; counts the sends begun and finished.
#[derive(Debug)]
struct SlowBackend {
    delay: Duration,
    started: AtomicUsize,
    finished: AtomicUsize,
}

#[async_trait]
impl Backend for SlowBackend {
    fn name(&self) -> &'static str {
        "slow"
    }
    fn kind(&self) -> BackendKind {
        BackendKind::Null
    }
    async fn send(&self, _job: &DeliveryJob, _idempotency_key: &str) -> Result<(), SendError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.finished.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

const LEASE_MS: u64 = 400;

/// A pipeline whose only channel, `slow`, takes three leases per send; leases are extended every
/// 100 ms and the janitor looks for expired ones every 50 ms.
async fn start_slow() -> (Arc<SlowBackend>, Running) {
    let backend = Arc::new(SlowBackend {
        // Three leases long: without a heartbeat the janitor returns the alert mid-send.
        delay: Duration::from_millis(3 * LEASE_MS),
        started: AtomicUsize::new(0),
        finished: AtomicUsize::new(0),
    });
    let running = start_with(IngestConfig::default(), backend.clone(), |w| {
        w.queues.lease_ms = LEASE_MS;
        w.queues.heartbeat_ms = 100;
        w.queues.janitor_interval_ms = 50;
        w.workers.send_timeout_ms = 60_000;
    })
    .await;
    (backend, running)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_slower_than_the_lease_keeps_its_lease_and_is_sent_once() {
    let (backend, p) = start_slow().await;
    // A second delivery worker, as a second process would run: had the janitor returned the
    // lease mid-send, this one would lease the alert and (its dedup claim lapsed with the
    // lease) send it again, while the first worker is still busy.
    tokio::spawn(ward::pipeline::delivery::run(
        p.pipeline.delivery_worker(),
        p.stop.clone(),
    ));

    let (status, _, body) = p
        .post("/v1/alerts", serde_json::to_vec(&alert(1)).unwrap())
        .await;
    assert_eq!(status, 202, "{body}");

    let deadline = Instant::now() + Duration::from_secs(20);
    while backend.finished.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the alert was never sent");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A repeated send keeps the alert leased until it ends, so "settled" means every send is over.
    while p.unsettled().await != 0 {
        assert!(Instant::now() < deadline, "queues did not drain");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    assert_eq!(
        backend.started.load(Ordering::SeqCst),
        1,
        "the alert was sent more than once"
    );
    assert_eq!(backend.finished.load(Ordering::SeqCst), 1);
    let metrics = p.metrics().await;
    assert_eq!(
        metric(&metrics, "ward_recovered_leases_total"),
        Some(0.0),
        "the janitor recovered a lease the worker was heartbeating\n{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            r#"ward_deliveries_total{channel="slow",backend="null",outcome="delivered",test="false"}"#
        ),
        Some(1.0),
        "{metrics}"
    );
    p.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_batch_keeps_the_leases_of_items_it_does_not_send() {
    let (backend, p) = start_slow().await;
    // One batch, enqueued in one call so one lease takes both: a job for the slow channel, and
    // one for a channel this worker does not have, dead-lettered only when the batch settles.
    let now = p.store.now_ms();
    let job = |channel: &str| {
        json!({
            "alert": {
                "labels": { "alertname": "DiskFull" }, "severity": "critical", "tenant": "t",
                "fingerprint": "0123456789abcdef", "starts_at_ms": now, "correlation_id": "c",
            },
            "channel": channel,
            "retry_policy": "default",
        })
    };
    let batch = [
        Envelope::new("t", job("slow"), now),
        Envelope::new("t", job("gone"), now),
    ];
    assert_eq!(
        p.store
            .enqueue(&QueueName::delivery(), &batch)
            .await
            .unwrap(),
        2
    );

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stats = p.store.stats(&[QueueName::delivery()]).await.unwrap();
        let q = &stats.queues[0];
        if backend.finished.load(Ordering::SeqCst) > 0
            && q.depth + q.in_flight + q.scheduled == 0
            && q.dlq == 1
        {
            break;
        }
        assert!(Instant::now() < deadline, "batch not settled: {q:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(backend.started.load(Ordering::SeqCst), 1);
    let metrics = p.metrics().await;
    assert_eq!(
        metric(&metrics, "ward_recovered_leases_total"),
        Some(0.0),
        "the janitor recovered the lease of an item waiting for its batch to settle\n{metrics}"
    );
    p.stop.cancel();
}
