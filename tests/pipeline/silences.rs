//! Silences and inhibition through the real parts: actions plan (with a preview) and write them,
//! workers on the memory store and a real redis-server hold matching alerts back, a wiremock
//! Slack receives only the rest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::{Harness, Kind, act, alert_envelope, operator, queue};
use tokio_util::sync::CancellationToken;
use ward::actions::{Action, ActionError};
use ward::config::alerting::AlertingConfig;
use ward::config::{Config, IngestConfig};
use ward::delivery::{HttpTimeouts, Secret, SlackBackend};
use ward::engine::breaker::BreakerConfig;
use ward::engine::inhibit::InhibitRuleConfig;
use ward::engine::matcher::parse_matchers;
use ward::engine::routing::RoutingConfig;
use ward::model::{AlertStatus, FailureInfo, SeenAlert, SilenceState, WorkerId, fingerprint};
use ward::pipeline::{Pipeline, PipelineParts};
use ward::store::{DeadLetterRequest, RetryRequest};
use ward::telemetry::{EventLog, Metrics};

const LEASE: Duration = Duration::from_secs(30);

fn seen(name: &str, instance: &str, status: AlertStatus, now: i64) -> SeenAlert {
    let labels: std::collections::BTreeMap<String, String> = [
        ("alertname".to_owned(), name.to_owned()),
        ("instance".to_owned(), instance.to_owned()),
    ]
    .into();
    SeenAlert {
        fingerprint: fingerprint(&labels),
        labels,
        status,
        starts_at_ms: now - 60_000,
        ends_at_ms: None,
        last_seen_ms: now - 1_000,
    }
}

fn silence_disk(now: i64) -> Action {
    Action::SilenceCreate {
        matchers: parse_matchers("alertname=Disk").unwrap(),
        starts_at_ms: now - 5_000,
        ends_at_ms: now + 3_600_000,
        comment: "disk swap on db-1, OPS-12".into(),
        replaces: None,
    }
}

async fn a_silence_plan_previews_what_it_would_hide_and_runs_exactly_that(h: Harness) {
    let now = h.store.now_ms();
    let ingest = queue("ingest");
    // Seen in the last hour: three Disk alerts (one resolved) and two others.
    let sightings = [
        seen("Disk", "db-1", AlertStatus::Firing, now),
        seen("Disk", "db-2", AlertStatus::Firing, now),
        seen("Disk", "db-3", AlertStatus::Resolved, now),
        seen("Cpu", "db-1", AlertStatus::Firing, now),
        seen("Mem", "web-1", AlertStatus::Firing, now),
    ];
    h.store.alerts_note(&sightings).await.unwrap();
    // Two Disk alerts and a Cpu one dead-lettered, one Disk alert waiting for its retry.
    let stored = [
        alert_envelope("Disk", &[("instance", "db-1")], now),
        alert_envelope("Disk", &[("instance", "db-4")], now),
        alert_envelope("Cpu", &[("instance", "db-1")], now),
        alert_envelope("Disk", &[("instance", "db-5")], now),
    ];
    h.store.enqueue(&ingest, &stored).await.unwrap();
    let leased = h
        .store
        .lease(&ingest, &WorkerId::new("w"), 10, LEASE)
        .await
        .unwrap()
        .items;
    assert_eq!(leased.len(), 4);
    let (retry, dead): (Vec<_>, Vec<_>) = leased
        .into_iter()
        .partition(|item| item.envelope.id == stored[3].id);
    let dead: Vec<DeadLetterRequest> = dead
        .into_iter()
        .map(|item| DeadLetterRequest {
            receipt: item.receipt,
            envelope: item.envelope,
            failure: FailureInfo::new("timeout", "boom", "route"),
        })
        .collect();
    h.store.dead_letter(&ingest, &dead).await.unwrap();
    let retry: Vec<RetryRequest> = retry
        .into_iter()
        .map(|item| RetryRequest {
            receipt: item.receipt,
            envelope: item.envelope,
            due_at_ms: now + 60_000,
        })
        .collect();
    h.store.schedule_retry(&ingest, &retry).await.unwrap();

    let operator = operator(h.store.clone());
    let plan = operator.plan(silence_disk(now)).await.unwrap();
    let preview = plan.preview.clone().expect("a silence plan previews");
    assert_eq!(preview.last_hour.matched, 3, "{preview:?}");
    assert_eq!(preview.last_hour.examined, 5);
    assert_eq!(preview.firing_now, 2);
    assert_eq!((preview.dlq.matched, preview.dlq.examined), (2, 3));
    assert!(preview.dlq.complete());
    assert_eq!(
        (preview.scheduled.matched, preview.scheduled.total),
        (1, Some(1))
    );
    assert!(preview.sample.iter().any(|s| s.starts_with("Disk ")));
    let planned = plan
        .silence
        .clone()
        .expect("the plan holds the record it writes");
    assert_eq!(planned.starts_at_ms, now, "a start in the past becomes now");
    assert_eq!(planned.created_by, "ops", "owned by the operator");

    let report = operator
        .execute(&plan, &CancellationToken::new(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(report.silence_id.as_deref(), Some(planned.id.as_str()));
    assert_eq!(h.store.silences().await.unwrap(), vec![planned.clone()]);
    let audit = h.store.audit_recent(1).await.unwrap();
    assert_eq!(audit[0].record.action, "silence_create");
    assert_eq!(audit[0].record.reason, "disk swap on db-1, OPS-12");

    // Expiring says what comes back, then ends it now; a second expiry changes nothing.
    let expire = Action::SilenceExpire {
        id: planned.id.clone(),
    };
    let plan = operator.plan(expire.clone()).await.unwrap();
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.starts_with("2 firing alerts")),
        "{:?}",
        plan.warnings
    );
    let report = act(&operator, expire.clone()).await;
    assert_eq!(report.moved, 1);
    let ended = h.store.silence_get(&planned.id).await.unwrap().unwrap();
    assert_eq!(ended.ends_at_ms, now);
    h.clock.advance(Duration::from_millis(1));
    assert_eq!(ended.state(h.store.now_ms()), SilenceState::Expired);
    let report = act(&operator, expire).await;
    assert_eq!(report.moved, 0, "an expired silence stays as it was");

    // What would hide everything, or say nothing, or name no silence, is refused.
    let mut everything = silence_disk(now);
    if let Action::SilenceCreate { matchers, .. } = &mut everything {
        *matchers = parse_matchers("team=~\".*\"").unwrap();
    }
    let mut silent = silence_disk(now);
    if let Action::SilenceCreate { comment, .. } = &mut silent {
        comment.clear();
    }
    let unknown = Action::SilenceExpire { id: "nope".into() };
    for (action, says) in [
        (everything, "every alert"),
        (silent, "reason is required"),
        (unknown, "no silence"),
    ] {
        let error = operator.plan(action).await.unwrap_err();
        assert!(
            matches!(&error, ActionError::Invalid(m) if m.contains(says)),
            "{error}"
        );
    }
}

/// A Slack channel at a wiremock server answering 200.
async fn slack() -> (wiremock::MockServer, Arc<SlackBackend>) {
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
    let backend = SlackBackend::new("slack", url, timeouts).unwrap();
    (server, Arc::new(backend))
}

async fn worker(
    h: &Harness,
    alerting: AlertingConfig,
    stop: &CancellationToken,
) -> (Arc<Pipeline>, wiremock::MockServer) {
    let (server, backend) = slack().await;
    let mut config = Config::default();
    config.workers.idle_poll_ms = 5;
    config.workers.control_interval_ms = 20;
    let pipeline = Pipeline::new(PipelineParts {
        store: h.store.clone(),
        backends: vec![backend],
        routing: RoutingConfig {
            default_channels: vec!["slack".into()],
            ..RoutingConfig::default()
        },
        policies: Vec::new(),
        breaker: BreakerConfig::default(),
        ingest: IngestConfig::default(),
        queues: config.queues,
        workers: config.workers,
        metrics: Metrics::new(),
        events: EventLog::disabled(),
        alerting,
    })
    .unwrap();
    let running = pipeline.clone().spawn(stop, false).await.unwrap();
    tokio::spawn(running.join());
    (pipeline, server)
}

/// Poll `done` every 10 ms for up to 10 s.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn bodies(server: &wiremock::MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect()
}

async fn a_worker_holds_back_silenced_alerts_and_counts_them(h: Harness) {
    let now = h.store.now_ms();
    let stop = CancellationToken::new();
    act(&operator(h.store.clone()), silence_disk(now)).await;
    let (pipeline, server) = worker(&h, AlertingConfig::default(), &stop).await;
    eventually("the worker reads the silence", || {
        pipeline.suppressor().silences.len() == 1
    })
    .await;
    let alerts = [
        alert_envelope("Disk", &[("instance", "db-1")], now),
        alert_envelope("Cpu", &[("instance", "db-1")], now),
    ];
    h.store.enqueue(&queue("ingest"), &alerts).await.unwrap();
    let totals = &pipeline.metrics().totals;
    eventually("one delivered, one held back", || {
        totals.delivered.load(std::sync::atomic::Ordering::Relaxed) == 1
            && totals.suppressed.load(std::sync::atomic::Ordering::Relaxed) == 1
    })
    .await;
    let sent = bodies(&server).await;
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].contains("Cpu") && !sent[0].contains("Disk"),
        "{sent:?}"
    );
    // The counters move as the sends end; the batch's ack follows them to the store.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stats = h
            .store
            .stats(&[queue("ingest"), queue("delivery")])
            .await
            .unwrap();
        let open: Vec<_> = stats
            .queues
            .iter()
            .filter(|q| (q.depth, q.in_flight, q.scheduled, q.dlq) != (0, 0, 0, 0))
            .collect();
        if open.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a held-back alert is settled: {open:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let metrics = pipeline.metrics().render();
    assert!(
        metrics.contains(r#"outcome="silenced""#),
        "the metric counts it: {metrics}"
    );
    // The router recorded both alerts for the control room and the preview.
    let recorded = h.store.alerts_seen(now - 1, 100).await.unwrap();
    assert_eq!(recorded.len(), 2);
    stop.cancel();
}

async fn a_firing_source_inhibits_targets_of_its_instance(h: Harness) {
    let now = h.store.now_ms();
    let stop = CancellationToken::new();
    let alerting = AlertingConfig {
        inhibit_rules: vec![InhibitRuleConfig {
            name: "node-down".into(),
            source_matchers: vec![r#"alertname="NodeDown""#.into()],
            target_matchers: vec![r#"severity="warning""#.into()],
            equal: vec!["instance".into()],
        }],
        ..AlertingConfig::default()
    };
    let (pipeline, server) = worker(&h, alerting, &stop).await;
    let source = alert_envelope("NodeDown", &[("instance", "a")], now);
    h.store.enqueue(&queue("ingest"), &[source]).await.unwrap();
    eventually("the source is read as firing", || {
        !pipeline.suppressor().inhibitor.is_empty()
    })
    .await;
    let targets = [
        alert_envelope("Disk", &[("instance", "a"), ("severity", "warning")], now),
        alert_envelope("Disk", &[("instance", "b"), ("severity", "warning")], now),
    ];
    h.store.enqueue(&queue("ingest"), &targets).await.unwrap();
    let totals = &pipeline.metrics().totals;
    eventually(
        "source and instance b delivered, instance a inhibited",
        || {
            totals.delivered.load(std::sync::atomic::Ordering::Relaxed) == 2
                && totals.suppressed.load(std::sync::atomic::Ordering::Relaxed) == 1
        },
    )
    .await;
    let sent = bodies(&server).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(
        pipeline
            .metrics()
            .render()
            .contains(r#"outcome="inhibited""#)
    );
    stop.cancel();
}

async fn a_maintenance_window_holds_back_while_open_and_is_listed(h: Harness) {
    let now = h.store.now_ms();
    let stop = CancellationToken::new();
    let config: AlertingConfig = toml::from_str(
        r#"
        [[maintenance]]
        name = "db-patching"
        every = "Mon-Sun"
        matchers = ['cluster="db"']
        comment = "rolling kernel updates"
        "#,
    )
    .unwrap();
    let rules = config.rules();
    let (pipeline, server) = worker(&h, config, &stop).await;
    eventually("the worker reads its controls", || {
        !pipeline.suppressor().maintenance.is_empty()
    })
    .await;
    let alerts = [
        alert_envelope("Disk", &[("cluster", "db")], now),
        alert_envelope("Disk", &[("cluster", "web")], now),
    ];
    h.store.enqueue(&queue("ingest"), &alerts).await.unwrap();
    let totals = &pipeline.metrics().totals;
    eventually("web delivered, db held back", || {
        totals.delivered.load(std::sync::atomic::Ordering::Relaxed) == 1
            && totals.suppressed.load(std::sync::atomic::Ordering::Relaxed) == 1
    })
    .await;
    let sent = bodies(&server).await;
    assert!(
        sent[0].contains("web") && !sent[0].contains("\"db\""),
        "{sent:?}"
    );
    assert!(pipeline.metrics().render().contains(r#"outcome="muted""#));
    // The control room lists the window as an active silence of kind maintenance.
    let seen = h.store.alerts_seen(now - 1, 100).await.unwrap();
    let view = ward::sources::AlertingView::build(Vec::new(), seen, &rules, false, now);
    let row = &view.silences[0];
    assert_eq!(row.silence.id, "maintenance:db-patching");
    assert_eq!(row.silence.kind, ward::model::SilenceKind::Maintenance);
    assert_eq!(row.state, SilenceState::Active);
    assert_eq!(row.matched_now, 1);
    assert!(
        row.silence.comment.contains("rolling kernel updates"),
        "{:?}",
        row.silence.comment
    );
    let held = view
        .alerts
        .iter()
        .find(|a| a.alert.labels.get("cluster").map(String::as_str) == Some("db"))
        .unwrap();
    assert_eq!(
        held.suppressed,
        Some(ward::model::Suppression::Maintenance {
            window: "db-patching".into()
        })
    );
    stop.cancel();
}

/// The confirm dialog lets the operator edit the comment after the plan: the silence written
/// carries the comment confirmed, checked as the planned one was.
async fn a_comment_edited_at_confirm_is_the_one_written(h: Harness) {
    let now = h.store.now_ms();
    let operator = operator(h.store.clone());
    let plan = operator.plan(silence_disk(now)).await.unwrap();
    let mut blank = plan.clone();
    if let Some(comment) = blank.action.reason_mut() {
        "  ".clone_into(comment);
    }
    let error = operator
        .execute(&blank, &CancellationToken::new(), &mut |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ActionError::Invalid(m) if m.contains("comment")),
        "{error}"
    );
    assert!(
        h.store.silences().await.unwrap().is_empty(),
        "nothing written"
    );
    let mut edited = plan.clone();
    if let Some(comment) = edited.action.reason_mut() {
        "disk swap on db-1 and db-2, OPS-13".clone_into(comment);
    }
    let report = operator
        .execute(&edited, &CancellationToken::new(), &mut |_| {})
        .await
        .unwrap();
    let written = h.store.silences().await.unwrap();
    assert_eq!(written.len(), 1);
    assert_eq!(Some(written[0].id.as_str()), report.silence_id.as_deref());
    assert_eq!(written[0].comment, "disk swap on db-1 and db-2, OPS-13");
    let audit = h.store.audit_recent(1).await.unwrap();
    assert_eq!(audit[0].record.reason, "disk swap on db-1 and db-2, OPS-13");
}

conformance!(
    a_maintenance_window_holds_back_while_open_and_is_listed,
    a_silence_plan_previews_what_it_would_hide_and_runs_exactly_that,
    a_comment_edited_at_confirm_is_the_one_written,
    a_worker_holds_back_silenced_alerts_and_counts_them,
    a_firing_source_inhibits_targets_of_its_instance,
);
