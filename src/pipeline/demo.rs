//! `ward demo`'s engine: the real pipeline on the memory store, fed by synthetic traffic through
//! its real ingest endpoint, delivering to in-process sinks with injected faults: a Slack sink
//! that fails in waves (its breaker opens, retries pile up, the DLQ grows), a slow pager, and
//! bursts that push the ingest queue past its shed threshold.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use axum::http::StatusCode;
use tokio_util::sync::CancellationToken;

use super::{Pipeline, PipelineParts, Running};
use crate::actions::Actor;
use crate::config::{Config, Overrides};
use crate::delivery::build_backends;
use crate::model::{Flag, FlagState, QueueName, Threshold};
use crate::store::{MemoryStore, Store};
use crate::telemetry::{EventLog, Metrics};

/// One fault cycle of the flaky Slack sink: healthy, then failing.
const CYCLE_MS: u64 = 60_000;
const FAILING_FROM_MS: u64 = 20_000;
const FAILING_UNTIL_MS: u64 = 42_000;
/// Synthetic alerts per second, and the burst that trips shedding.
const ALERTS_PER_S: u64 = 40;
const BURST: usize = 1_500;
const BURST_EVERY_S: u64 = 45;
/// When, in its cycle, the burst comes: inside the first failure wave.
const BURST_AT_S: u64 = 30;

/// A running demo.
pub struct Demo {
    pub store: Arc<dyn Store>,
    pub channels: Vec<String>,
    /// The pipeline's counters: the demo's SLOs are read from them.
    pub metrics: Metrics,
    /// Ward's builtin objectives for the demo's channels, and any configured ones.
    pub slos: Vec<crate::config::slo::SloDefinition>,
    running: Running,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Demo {
    pub async fn join(self) {
        self.running.join().await;
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

fn demo_config(sink: std::net::SocketAddr) -> String {
    format!(
        r#"
[ingest]
bind = "127.0.0.1:0"

[workers]
stats_interval_ms = 1000
remediation_interval_ms = 20000
remediation_min_age_ms = 10000

[breaker]
failure_rate_threshold = 0.5
minimum_calls = 10
window_ms = 10000
open_wait_ms = 5000

[routing]
default_channels = ["slack-ops", "pager"]
default_retry_policy = "demo"

[[delivery.channels]]
name = "slack-ops"
kind = "slack"
webhook_url = "http://{sink}/slack"
timeout_ms = 1000

[[delivery.channels]]
name = "pager"
kind = "webhook"
url = "http://{sink}/pager"
timeout_ms = 2000

[[delivery.channels]]
name = "stdout"
kind = "null"

[[delivery.retry_policies]]
name = "demo"
max_attempts = 3
jitter = "none"
backoff = {{ kind = "fixed", delay = "500ms" }}
"#
    )
}

/// Start the sinks, the pipeline and the traffic; everything stops with `stop`.
pub async fn start(base: &Config, stop: &CancellationToken) -> anyhow::Result<Demo> {
    let started = tokio::time::Instant::now();
    let sink = start_sink(started, stop.clone()).await?;
    let text = demo_config(sink);
    let mut config =
        Config::from_toml_str(&text, std::path::Path::new("(demo)"), &Overrides::default())
            .context("the demo's built-in config does not load")?;
    config.tui = base.tui.clone();
    config.slo = base.slo.clone();
    let slos = config
        .slo
        .definitions(&config.delivery)
        .map_err(|(key, message)| anyhow::anyhow!("{key}: {message}"))?;
    let metrics = Metrics::new();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(1));
    let (backends, problems) = build_backends(&config.delivery.channels);
    for problem in &problems {
        problem.log();
    }
    let channels = config
        .delivery
        .channels
        .iter()
        .map(|c| c.name().to_owned())
        .filter(|c| c != "stdout")
        .collect();
    let pipeline = Pipeline::new(PipelineParts {
        store: store.clone(),
        backends,
        routing: config.routing.clone(),
        policies: config.delivery.retry_policies.clone(),
        breaker: config.breaker.clone(),
        ingest: config.ingest.clone(),
        queues: config.queues.clone(),
        workers: config.workers.clone(),
        metrics: metrics.clone(),
        events: EventLog::disabled(),
        alerting: config.alerting.clone(),
    })?;
    seed(store.as_ref()).await?;
    let running = pipeline.spawn(stop, true).await?;
    let address = running
        .address
        .context("the demo's ingest endpoint did not start")?;
    let traffic = tokio::spawn(traffic(address, stop.clone()));
    Ok(Demo {
        store,
        channels,
        metrics,
        slos,
        running,
        tasks: vec![traffic],
    })
}

/// Thresholds and shedding mode so the bursts show shedding.
async fn seed(store: &dyn Store) -> anyhow::Result<()> {
    let ingest = QueueName::ingest();
    store
        .config_set(&Threshold::Warn.config_key(&ingest), Some("400"))
        .await?;
    store
        .config_set(&Threshold::Shed.config_key(&ingest), Some("1000"))
        .await?;
    let actor = Actor {
        user: "demo".to_owned(),
        host: "ward".to_owned(),
    };
    let state = FlagState {
        value: "dlq".to_owned(),
        owner: actor.to_string(),
        reason: "demo: shed bursts to the DLQ".to_owned(),
        set_at_ms: store.now_ms(),
        expires_at_ms: None,
    };
    store.set_flag(&Flag::SheddingMode, Some(&state)).await?;
    Ok(())
}

/// The sinks: `/slack` fails in waves, `/pager` is slow but fine.
async fn start_sink(
    started: tokio::time::Instant,
    stop: CancellationToken,
) -> anyhow::Result<std::net::SocketAddr> {
    let calls = Arc::new(AtomicU64::new(0));
    let slack = move || {
        let calls = calls.clone();
        async move {
            let n = calls.fetch_add(1, Ordering::Relaxed);
            let phase = started.elapsed().as_millis() as u64 % CYCLE_MS;
            if (FAILING_FROM_MS..FAILING_UNTIL_MS).contains(&phase) || n.is_multiple_of(50) {
                (StatusCode::INTERNAL_SERVER_ERROR, "injected fault")
            } else {
                (StatusCode::OK, "ok")
            }
        }
    };
    let pager = || async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        StatusCode::OK
    };
    let app = axum::Router::new()
        .route("/slack", axum::routing::post(slack))
        .route("/pager", axum::routing::post(pager));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("the demo sink cannot listen")?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
    });
    Ok(address)
}

/// Alerts at a steady rate, with a burst now and then.
async fn traffic(address: std::net::SocketAddr, stop: CancellationToken) {
    let Ok(client) = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    else {
        return;
    };
    let url = format!("http://{address}/v1/alerts");
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / ALERTS_PER_S));
    let mut n: u64 = 0;
    let services = ["checkout", "search", "payments", "auth", "db-primary"];
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        n += 1;
        let burst = n % (ALERTS_PER_S * BURST_EVERY_S) == ALERTS_PER_S * BURST_AT_S;
        let count = if burst { BURST } else { 1 };
        let alerts: Vec<serde_json::Value> = (0..count)
            .map(|i| {
                let service = services[(n as usize + i) % services.len()];
                serde_json::json!({
                    "labels": { "alertname": "HighErrorRate", "service": service, "env": "demo", "seq": format!("{n}-{i}") },
                    "annotations": { "summary": format!("{service}: error rate above 5%") },
                    "severity": if (n + i as u64).is_multiple_of(7) { "critical" } else { "warning" },
                    "tenant": if (n as usize + i).is_multiple_of(3) { "team-a" } else { "team-b" },
                })
            })
            .collect();
        for chunk in alerts.chunks(500) {
            let _ = client.post(&url).json(chunk).send().await;
        }
    }
}
