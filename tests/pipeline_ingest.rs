//! The pipeline in process on the memory store: alerts posted over real HTTP come out of a
//! stdout channel exactly once; bad input is refused with a clear 4xx and enqueues nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use ward::config::{Config, IngestConfig};
use ward::delivery::{Backend, StdoutBackend};
use ward::engine::ratelimit::RateLimit;
use ward::engine::routing::RoutingConfig;
use ward::model::QueueName;
use ward::pipeline::{Pipeline, PipelineParts, WorkerConfig};
use ward::store::{MemoryStore, Store};
use ward::telemetry::{EventLog, Metrics};

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
    out: Captured,
    stop: CancellationToken,
    http: reqwest::Client,
}

async fn start(ingest: IngestConfig) -> Running {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(1));
    let out = Captured::default();
    let backend: Arc<dyn Backend> = Arc::new(StdoutBackend::with_writer(
        "out",
        Arc::new(Mutex::new(out.clone())),
    ));
    let mut workers = WorkerConfig::from_config(&Config::default());
    workers.idle_poll_ms = 5;
    let pipeline = Pipeline::new(PipelineParts {
        store: store.clone(),
        backends: vec![backend],
        routing: RoutingConfig {
            default_channels: vec!["out".to_owned()],
            ..RoutingConfig::default()
        },
        policies: Vec::new(),
        breaker: ward::engine::breaker::BreakerConfig::default(),
        ingest: IngestConfig {
            bind: "127.0.0.1:0".to_owned(),
            ..ingest
        },
        workers,
        metrics: Metrics::new(),
        events: EventLog::disabled(),
    })
    .unwrap();
    let stop = CancellationToken::new();
    let running = pipeline.spawn(&stop, true).await.unwrap();
    let base = format!("http://{}", running.address.unwrap());
    tokio::spawn(running.join());
    Running {
        base,
        store,
        out,
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
