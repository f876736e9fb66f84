//! Alertmanager grouping through the real parts: two workers on the memory store and on a real
//! redis-server share the groups; a wiremock webhook receives one notification per group flush;
//! a group outlives its workers; a resolved alert pairs with the firing one notified before.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::{Harness, Kind, queue};
use tokio_util::sync::CancellationToken;
use ward::config::alerting::AlertingConfig;
use ward::config::{Config, IngestConfig};
use ward::delivery::{Backend, HttpTimeouts, Secret, WebhookBackend};
use ward::engine::breaker::BreakerConfig;
use ward::engine::grouping::GroupingConfig;
use ward::engine::routing::{RouteConfig, RoutingConfig};
use ward::model::{Alert, AlertStatus, Envelope, Payload, Severity, fingerprint};
use ward::pipeline::{Pipeline, PipelineParts};
use ward::telemetry::{EventLog, Metrics};

fn alert(name: &str, team: &str, status: AlertStatus, now: i64) -> Envelope {
    let labels: std::collections::BTreeMap<String, String> = [
        ("alertname".to_owned(), name.to_owned()),
        ("team".to_owned(), team.to_owned()),
    ]
    .into();
    let alert = Alert {
        fingerprint: fingerprint(&labels),
        labels,
        annotations: std::collections::BTreeMap::new(),
        severity: Severity::Warning,
        status,
        tenant: "acme".to_owned(),
        starts_at_ms: now,
        ends_at_ms: (status == AlertStatus::Resolved).then_some(now),
        generator_url: None,
        correlation_id: name.to_owned(),
        test: false,
    };
    Envelope::with_payload("acme", Payload::encode(&alert).unwrap(), now)
}

/// A generic webhook receiver (wiremock) answering 200: its bodies carry Ward's group payload.
async fn receiver() -> (wiremock::MockServer, Arc<dyn Backend>) {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let url = Secret::new(format!("{}/services/T0/B0/test", server.uri()));
    let timeouts = HttpTimeouts {
        request: Duration::from_secs(5),
        connect: Duration::from_secs(5),
    };
    let backend = WebhookBackend::new(
        "hook",
        url,
        None,
        ward::delivery::webhook::WebhookFormat::default(),
        timeouts,
    )
    .unwrap();
    (server, Arc::new(backend))
}

fn routing() -> RoutingConfig {
    RoutingConfig {
        routes: vec![RouteConfig {
            name: "ops".into(),
            channels: vec!["hook".into()],
            grouping: GroupingConfig {
                group_by: Some(vec!["team".into()]),
                group_wait_ms: 30_000,
                group_interval_ms: 60_000,
                repeat_interval_ms: 4 * 3_600_000,
            },
            ..RouteConfig::default()
        }],
        ..RoutingConfig::default()
    }
}

async fn worker(h: &Harness, hook: Arc<dyn Backend>, stop: &CancellationToken) -> Arc<Pipeline> {
    let mut config = Config::default();
    config.workers.idle_poll_ms = 5;
    config.workers.scheduler_interval_ms = 10;
    config.workers.control_interval_ms = 20;
    let pipeline = Pipeline::new(PipelineParts {
        store: h.store.clone(),
        backends: vec![hook],
        routing: routing(),
        policies: Vec::new(),
        breaker: BreakerConfig::default(),
        ingest: IngestConfig::default(),
        queues: config.queues,
        workers: config.workers,
        metrics: Metrics::new(),
        events: EventLog::disabled(),
        alerting: AlertingConfig::default(),
    })
    .unwrap();
    let running = pipeline.clone().spawn(stop, false).await.unwrap();
    tokio::spawn(running.join());
    pipeline
}

async fn eventually<F: Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The router has taken (and settled) everything enqueued: it is in its group.
async fn routed(h: &Harness) -> bool {
    let stats = h.store.stats(&[queue("ingest")]).await.unwrap();
    stats.queues[0].depth == 0 && stats.queues[0].in_flight == 0
}

async fn requests(server: &wiremock::MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

/// Notifications the workers handed to the delivery queue.
fn jobs(pipelines: &[&Arc<Pipeline>]) -> u64 {
    pipelines
        .iter()
        .map(|p| p.metrics().group_notifications.get())
        .sum()
}

async fn one_notification_per_group_flush_across_workers_and_restarts(h: Harness) {
    let (server, backend) = receiver().await;
    let now = h.store.now_ms();
    let stop = CancellationToken::new();
    let a = worker(&h, backend.clone(), &stop).await;
    let b = worker(&h, backend.clone(), &stop).await;
    let ingest = queue("ingest");
    h.store
        .enqueue(
            &ingest,
            &[
                alert("Disk", "db", AlertStatus::Firing, now),
                alert("Cpu", "db", AlertStatus::Firing, now),
                alert("Mem", "web", AlertStatus::Firing, now),
            ],
        )
        .await
        .unwrap();
    eventually("every alert in its group", || routed(&h)).await;
    assert_eq!(h.store.groups_summary().await.unwrap().0, 2, "db and web");
    assert_eq!(requests(&server).await, 0, "nothing before group_wait");
    h.clock.advance(Duration::from_secs(30));
    eventually("one notification per group", || async {
        requests(&server).await == 2
    })
    .await;
    assert_eq!(jobs(&[&a, &b]), 2, "two workers, one flush each group");

    // A new alert waits for the group's interval, not its wait; the workers stop meanwhile and
    // a new one takes over the stored group.
    stop.cancel();
    let stop = CancellationToken::new();
    let c = worker(&h, backend.clone(), &stop).await;
    h.store
        .enqueue(
            &ingest,
            &[alert("Net", "db", AlertStatus::Firing, now + 30_000)],
        )
        .await
        .unwrap();
    eventually("the alert joins its group", || routed(&h)).await;
    h.clock.advance(Duration::from_secs(30));
    h.clock.advance(Duration::from_secs(31));
    eventually("the db group notified again", || async {
        requests(&server).await == 3
    })
    .await;
    assert_eq!(
        jobs(&[&c]),
        1,
        "the web group had nothing new: no repeat before 4 h"
    );

    // Disk resolves: the next flush says so and pairs it with the firing notified before.
    h.store
        .enqueue(
            &ingest,
            &[alert("Disk", "db", AlertStatus::Resolved, now + 61_000)],
        )
        .await
        .unwrap();
    eventually("the resolution joins its group", || routed(&h)).await;
    h.clock.advance(Duration::from_secs(61));
    eventually("the resolution notified", || async {
        requests(&server).await == 4
    })
    .await;
    let group = last_group(&server).await;
    assert_eq!(
        group["notification_reason"], "some alerts resolved",
        "{group}"
    );
    assert_eq!(group["status"], "firing", "Cpu and Net still fire");
    let states: Vec<(String, String)> = group["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap().to_owned(),
                a["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(states.len(), 3, "{states:?}");
    assert!(
        states.contains(&("Disk".into(), "resolved".into())),
        "{states:?}"
    );
    assert_eq!(
        group["resolved_after_notified"].as_array().unwrap().len(),
        1
    );
    stop.cancel();
}

/// The group object of the newest body the receiver got.
async fn last_group(server: &wiremock::MockServer) -> serde_json::Value {
    let requests = server.received_requests().await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&requests.last().unwrap().body).unwrap();
    body["group"].clone()
}

conformance!(one_notification_per_group_flush_across_workers_and_restarts,);
