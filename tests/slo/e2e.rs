//! SLOs end to end: a real Prometheus (1 s scrapes) scrapes a real `ward up` on a real Redis
//! whose webhook fails on cue. `ward up` reads its SLOs back from that Prometheus and serves
//! them at `/api/v1/slo`: the burn rate it reports equals the one computed from Ward's own
//! counters (its `/metrics`), and the delivery SLO goes ok → critical → ok.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value, json};

use common::RedisServer;
use common::prometheus::PrometheusServer;

const SLO: &str = "delivery-success-webhook";
/// The builtin delivery objective: 99 %, so the error budget is 1 %.
const BUDGET: f64 = 0.01;

/// A webhook that answers 500 while `failing`.
#[derive(Clone, Default)]
struct Sink {
    failing: Arc<AtomicBool>,
    calls: Arc<AtomicU64>,
}

impl Sink {
    async fn start(&self) -> String {
        let sink = self.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let sink = sink.clone();
                async move {
                    sink.calls.fetch_add(1, Ordering::Relaxed);
                    if sink.failing.load(Ordering::Relaxed) {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{address}/hook")
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `ward up` on Redis, ingest on `port`, one webhook channel whose failures go straight to the
/// DLQ (one attempt, a breaker that never opens), SLOs read from `prometheus`.
fn write_config(
    dir: &Path,
    redis_url: &str,
    hook: &str,
    port: u16,
    prometheus: &str,
) -> std::path::PathBuf {
    let text = format!(
        r#"
[store]
backend = "redis"
redis_url = "{redis_url}"

[ingest]
bind = "127.0.0.1:{port}"
rate_limit = {{ count = 100000, period_ms = 1000, burst = 100000 }}

[workers]
idle_poll_ms = 10
stats_interval_ms = 100

[breaker]
minimum_calls = 1000000

[routing]
default_channels = ["hook"]
default_retry_policy = "once"

[[delivery.channels]]
name = "hook"
kind = "webhook"
url = "{hook}"

[[delivery.retry_policies]]
name = "once"
max_attempts = 1
jitter = "none"
backoff = {{ kind = "fixed", delay = "100ms" }}

[slo]
prometheus_url = "{prometheus}"
"#
    );
    let file = dir.join("ward.toml");
    std::fs::write(&file, text).unwrap();
    file
}

/// A running `ward up`, killed when dropped (its log printed if the test failed).
struct Ward {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

impl Ward {
    fn start(config: &Path) -> Self {
        let log = config.with_file_name("ward.log");
        let mut child = ward_with(config)
            .arg("up")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("spawn ward up");
        let stdout = child.stdout.take().unwrap();
        let mut first = String::new();
        BufReader::new(stdout).read_line(&mut first).unwrap();
        let base = first
            .strip_prefix("ward up: ingest on ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("ward up did not start: {first:?}"))
            .to_owned();
        assert!(first.contains("/api/v1/slo"), "{first}");
        Self { child, base, log }
    }
}

impl Drop for Ward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- ward up log ---\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

/// `ward` reading only `config` (no WARD_* variables, no user config).
fn ward_with(config: &Path) -> Command {
    let mut command = common::ward_process(config.parent().unwrap_or(config));
    command.env("WARD_CONFIG", config);
    command
}

/// A headless command on the same config: its exit code and stdout.
fn headless(config: &Path, args: &[&str]) -> (i32, String) {
    let out = ward_with(config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ward");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
    )
}

async fn post_alerts(http: &reqwest::Client, base: &str, from: usize, count: usize) {
    for chunk_start in (from..from + count).step_by(500) {
        let alerts: Vec<Value> = (chunk_start..(chunk_start + 500).min(from + count))
            .map(|i| {
                json!({
                    "labels": { "alertname": "SloEndToEnd", "n": i.to_string() },
                    "idempotency_key": format!("slo-e2e-{i}"),
                })
            })
            .collect();
        let response = http
            .post(format!("{base}/v1/alerts"))
            .json(&alerts)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status().as_u16(),
            202,
            "{:?}",
            response.text().await
        );
    }
}

/// `ward_deliveries_total` of channel `hook` with `outcome`, from Ward's own `/metrics`.
async fn counter(http: &reqwest::Client, base: &str, outcome: &str) -> f64 {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| {
            line.starts_with("ward_deliveries_total{")
                && line.contains("channel=\"hook\"")
                && line.contains(&format!("outcome=\"{outcome}\""))
                && line.contains("test=\"false\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Wait until Ward has settled `delivered` and `dead_lettered` deliveries.
async fn wait_settled(http: &reqwest::Client, base: &str, delivered: f64, dead: f64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = (
            counter(http, base, "delivered").await,
            counter(http, base, "dead_lettered").await,
        );
        if now == (delivered, dead) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries not settled in 30 s: {now:?}, want {:?}",
            (delivered, dead)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The objective's entry in `/api/v1/slo` once `accept` holds for it (polled, 60 s at most).
async fn wait_slo(
    http: &reqwest::Client,
    base: &str,
    what: &str,
    accept: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let report: Value = http
            .get(format!("{base}/api/v1/slo"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ours = report["slos"]
            .as_array()
            .and_then(|slos| slos.iter().find(|s| s["name"] == SLO));
        if let Some(entry) = ours
            && accept(entry)
        {
            return entry.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not reached in 60 s; last report: error {}, ours {:#}",
            report["error"],
            ours.cloned().unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Until Prometheus has scraped `ward up` once.
async fn wait_scraped(http: &reqwest::Client, prometheus: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer: Value = http
            .get(format!("{prometheus}/api/v1/query?query=up"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if answer["data"]["result"][0]["value"][1] == "1" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no scrape of ward up in 30 s: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Minutes of data, not the windows': each figure says how much backs it, and the state
/// names the next step.
fn assert_data_and_next_step_are_named(reading: &Value) {
    let covered = reading["figures"]["windows"][2]["covered_s"].as_u64();
    assert!(
        covered.is_some_and(|s| s < 600),
        "1h window over minutes: {reading:#}"
    );
    assert!(
        reading["figures"]["period_covered_s"]
            .as_u64()
            .is_some_and(|s| s < 600),
        "{reading:#}"
    );
    assert!(
        reading["next_step"]
            .as_str()
            .is_some_and(|s| s.starts_with("page: ") && s.contains("webhook channels")),
        "{reading:#}"
    );
}

/// Without Prometheus in its config, `ward status` reads the figures this `ward up` serves.
fn assert_status_reads_ward_up_without_prometheus(config: &Path, prometheus: &str, port: u16) {
    let attached = config.with_file_name("attached.toml");
    std::fs::write(
        &attached,
        std::fs::read_to_string(config)
            .unwrap()
            .replace(&format!("prometheus_url = \"{prometheus}\""), ""),
    )
    .unwrap();
    let (code, json) = headless(&attached, &["status", "--format", "json"]);
    assert_eq!(code, 0);
    let status: Value = serde_json::from_str(&json).unwrap();
    assert!(
        status["slo"]["source"]
            .as_str()
            .is_some_and(|s| s.starts_with(&format!("ward up http://127.0.0.1:{port}/"))),
        "{:#}",
        status["slo"]
    );
    let served = status["slo"]["readings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == SLO)
        .unwrap();
    assert_eq!(served["figures"]["state"], "critical", "{served:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_burn_rates_match_wards_counters_and_the_state_follows_the_failures() {
    let redis = RedisServer::start();
    let sink = Sink::default();
    let hook = sink.start().await;
    let port = free_port();
    let prometheus =
        PrometheusServer::start(&[format!("127.0.0.1:{port}")], Duration::from_secs(1));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &redis.url(), &hook, port, &prometheus.url);
    let ward = Ward::start(&config);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    // Prometheus must hold a sample of the counters at 0 before any delivery: a counter's
    // first sample is a starting point, not an increase.
    wait_scraped(&http, &prometheus.url).await;

    // All good: ok.
    post_alerts(&http, &ward.base, 0, 100).await;
    wait_settled(&http, &ward.base, 100.0, 0.0).await;
    wait_slo(&http, &ward.base, "ok while delivering", |e| {
        e["state"] == "ok"
    })
    .await;

    // 30 failures after 100 deliveries: 23 % errors, a burn of 23 over every window, past the
    // fast page's 14.4.
    sink.failing.store(true, Ordering::Relaxed);
    post_alerts(&http, &ward.base, 100, 30).await;
    wait_settled(&http, &ward.base, 100.0, 30.0).await;
    let delivered = counter(&http, &ward.base, "delivered").await;
    let dead = counter(&http, &ward.base, "dead_lettered").await;
    let expected_burn = dead / (delivered + dead) / BUDGET;
    // Ratios of `increase()`s over the same scrapes: Prometheus's extrapolation scales both
    // counts alike, so the burn read back matches Ward's counters closely.
    let tolerance = 0.02 * expected_burn;
    let critical = wait_slo(&http, &ward.base, "critical with the counters' burn", |e| {
        e["state"] == "critical"
            && e["burn_rates"]["5m"]
                .as_f64()
                .is_some_and(|b| (b - expected_burn).abs() <= tolerance)
    })
    .await;
    for window in ["5m", "1h", "6h", "1d", "3d"] {
        let burn = critical["burn_rates"][window].as_f64().unwrap();
        assert!(
            (burn - expected_burn).abs() <= tolerance,
            "{window}: burn {burn}, Ward's counters say {expected_burn}"
        );
    }
    let remaining = critical["budget_remaining"].as_f64().unwrap();
    assert!(
        (remaining - (1.0 - expected_burn)).abs() <= tolerance,
        "budget remaining {remaining}, expected {}",
        1.0 - expected_burn
    );

    // Headless reads the same Prometheus: `ward status` carries the objective's figures and
    // `ward check` pages (the DLQ's growth is switched off to leave the SLO alone).
    let (code, json) = headless(&config, &["status", "--format", "json"]);
    assert_eq!(code, 0);
    let status: Value = serde_json::from_str(&json).unwrap();
    let reading = status["slo"]["readings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == SLO)
        .unwrap()
        .clone();
    assert_eq!(reading["figures"]["state"], "critical", "{reading:#}");
    assert_data_and_next_step_are_named(&reading);
    assert_status_reads_ward_up_without_prometheus(&config, &prometheus.url, port);
    let (code, out) = headless(&config, &["check", "--dlq-growth-warn", "off"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with(&format!("CRITICAL slo {SLO}: critical: burn rate "))),
        "{out}"
    );

    // Healthy again, and enough good deliveries that 30 errors are under 1 % of every window
    // (the slowest ticket's burn of 1): back to ok.
    sink.failing.store(false, Ordering::Relaxed);
    post_alerts(&http, &ward.base, 130, 4_000).await;
    wait_settled(&http, &ward.base, 4_100.0, 30.0).await;
    let recovered = wait_slo(&http, &ward.base, "ok after recovery", |e| {
        e["state"] == "ok"
    })
    .await;
    assert!(
        recovered["burn_rates"]["5m"].as_f64().unwrap() < 1.0,
        "{recovered:#}"
    );
    let (code, out) = headless(&config, &["check", "--dlq-growth-warn", "off"]);
    assert_eq!(code, 0, "healthy again: {out}");
    assert!(sink.calls.load(Ordering::Relaxed) >= 4_130);
}
