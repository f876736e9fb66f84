//! Remediation on the memory store and a real redis-server: nothing replays while the channel's
//! breaker is open; once it closes, a healthy entry is delivered exactly once and a poison entry
//! reaches the dead list after the configured replays and stays there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::{Harness, Kind, alert_envelope, operator, queue, start_worker};
use tokio_util::sync::CancellationToken;
use ward::actions::Action;
use ward::config::Config;
use ward::delivery::{Backend, BackendKind, SendError};
use ward::model::{DeliveryJob, Envelope, QueueName};
use ward::pipeline::Pipeline;
use ward::store::Store;

const MIN_AGE: Duration = Duration::from_secs(60);
const MAX_REPLAYS: u32 = 2;

/// Refuses alerts labelled `poison` for good, and everything while `broken`.
#[derive(Debug, Default)]
struct Picky {
    broken: AtomicBool,
    attempts: Mutex<BTreeMap<String, u32>>,
    delivered: Mutex<Vec<String>>,
}

#[async_trait]
impl Backend for Picky {
    fn name(&self) -> &'static str {
        "picky"
    }
    fn kind(&self) -> BackendKind {
        BackendKind::Null
    }
    async fn send(&self, job: &DeliveryJob, _idempotency_key: &str) -> Result<(), SendError> {
        let id = job.alert.correlation_id.clone();
        *self.attempts.lock().unwrap().entry(id.clone()).or_default() += 1;
        if job.alert.labels.contains_key("poison") {
            return Err(SendError::permanent("http_400", "this alert is refused"));
        }
        if self.broken.load(Ordering::SeqCst) {
            return Err(SendError::permanent(
                "http_403",
                "the channel is misconfigured",
            ));
        }
        self.delivered.lock().unwrap().push(id);
        Ok(())
    }
}

fn alert(name: &str, poison: bool, now: i64) -> Envelope {
    let labels: &[(&str, &str)] = if poison { &[("poison", "yes")] } else { &[] };
    alert_envelope(name, labels, now)
}

async fn start(h: &Harness, backend: Arc<Picky>, stop: &CancellationToken) -> Arc<Pipeline> {
    start_with(h, backend, stop, |_| {}).await
}

async fn start_with(
    h: &Harness,
    backend: Arc<Picky>,
    stop: &CancellationToken,
    tweak: impl FnOnce(&mut Config),
) -> Arc<Pipeline> {
    start_worker(&h.store, backend, stop, |w| {
        w.workers.remediation_interval_ms = 20;
        w.workers.remediation_min_age_ms = MIN_AGE.as_millis() as u64;
        w.workers.remediation_cooldown_ms = 0;
        w.queues.max_replays = MAX_REPLAYS;
        tweak(w);
    })
    .await
}

/// (delivery DLQ size, delivery dead size)
async fn failed(store: &dyn Store) -> (u64, u64) {
    let stats = store.stats(&[queue("delivery")]).await.unwrap();
    (stats.queues[0].dlq, stats.queues[0].dead)
}

async fn until(what: &str, mut ok: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok().await {
        assert!(Instant::now() < deadline, "{what}: timed out");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Wait until this worker has run remediation `n` more times.
async fn runs(pipeline: &Pipeline, n: u64) {
    let target = pipeline.metrics().remediation_runs.get() + n;
    until("remediation runs", async || {
        pipeline.metrics().remediation_runs.get() >= target
    })
    .await;
}

async fn act(store: &Arc<dyn Store>, action: Action) {
    common::act(&operator(store.clone()), action).await;
}

async fn poison_goes_dead_healthy_is_delivered_once_nothing_while_open(h: Harness) {
    let backend = Arc::new(Picky::default());
    backend.broken.store(true, Ordering::SeqCst);
    let stop = CancellationToken::new();
    let pipeline = start(&h, backend.clone(), &stop).await;
    let now = h.store.now_ms();
    h.store
        .enqueue(
            &QueueName::ingest(),
            &[alert("healthy", false, now), alert("poison", true, now)],
        )
        .await
        .unwrap();
    until("both in the DLQ", async || {
        failed(h.store.as_ref()).await == (2, 0)
    })
    .await;

    // The channel is mended but its breaker is held open: remediation leaves it alone.
    backend.broken.store(false, Ordering::SeqCst);
    act(
        &h.store,
        Action::BreakerForceOpen {
            backend: "picky".into(),
            until_ms: now + 3_600_000,
            reason: "vendor outage".into(),
        },
    )
    .await;
    h.clock.advance(MIN_AGE * 2);
    runs(&pipeline, 3).await;
    assert_eq!(
        failed(h.store.as_ref()).await,
        (2, 0),
        "replayed while the breaker was open"
    );
    assert!(backend.delivered.lock().unwrap().is_empty());

    act(
        &h.store,
        Action::BreakerReset {
            backend: "picky".into(),
            reason: "vendor fixed it".into(),
        },
    )
    .await;
    until("healthy delivered", async || {
        !backend.delivered.lock().unwrap().is_empty()
    })
    .await;
    // The poison entry fails again each time it is replayed; once old enough it is replayed
    // again, until the guard sends it to the dead list.
    for _ in 0..=MAX_REPLAYS + 2 {
        if failed(h.store.as_ref()).await == (0, 1) {
            break;
        }
        until("poison back in the DLQ or dead", async || {
            let (dlq, dead) = failed(h.store.as_ref()).await;
            dlq + dead == 1
        })
        .await;
        h.clock.advance(MIN_AGE * 2);
        runs(&pipeline, 2).await;
    }
    assert_eq!(
        failed(h.store.as_ref()).await,
        (0, 1),
        "the poison entry is dead"
    );
    // It stays dead: more runs, more time, nothing moves.
    h.clock.advance(MIN_AGE * 10);
    runs(&pipeline, 3).await;
    assert_eq!(failed(h.store.as_ref()).await, (0, 1));
    let attempts = backend.attempts.lock().unwrap().clone();
    assert_eq!(
        attempts["poison"],
        1 + MAX_REPLAYS,
        "sent once, then once per replay the guard allowed"
    );
    assert_eq!(
        *backend.delivered.lock().unwrap(),
        ["healthy"],
        "delivered exactly once"
    );
    let replays = h.store.audit_recent(50).await.unwrap();
    assert!(
        replays
            .iter()
            .any(|e| e.record.origin == "automatic" && e.record.action == "replay"),
        "automatic replays are audited"
    );
    stop.cancel();
}

fn skipped(pipeline: &Pipeline, reason: &str) -> bool {
    pipeline.metrics().render().lines().any(|l| {
        l.starts_with("ward_remediation_skipped_total") && l.contains(reason) && !l.ends_with(" 0")
    })
}

/// A channel that always fails: one alert goes to the DLQ, is replayed once, fails again, and is
/// old enough to be replayed again when this returns; remediation then ran three more times.
/// Returns how often the alert was sent, and the worker.
async fn failing_twice(
    h: &Harness,
    stop: &CancellationToken,
    tweak: impl FnOnce(&mut Config),
) -> (Arc<Picky>, Arc<Pipeline>) {
    let backend = Arc::new(Picky::default());
    backend.broken.store(true, Ordering::SeqCst);
    let pipeline = start_with(h, backend.clone(), stop, tweak).await;
    let now = h.store.now_ms();
    h.store
        .enqueue(&QueueName::ingest(), &[alert("flappy", false, now)])
        .await
        .unwrap();
    let in_dlq = async || failed(h.store.as_ref()).await == (1, 0);
    until("in the DLQ", in_dlq).await;
    h.clock.advance(MIN_AGE * 2);
    until("replayed once", async || sends(&backend) == 2).await;
    until("back in the DLQ", in_dlq).await;
    h.clock.advance(MIN_AGE * 2);
    runs(&pipeline, 3).await;
    (backend, pipeline)
}

fn sends(backend: &Picky) -> u32 {
    backend.attempts.lock().unwrap()["flappy"]
}

async fn a_cooldown_holds_a_channel_back_and_dry_run_changes_nothing(h: Harness) {
    let stop = CancellationToken::new();
    let (backend, pipeline) = failing_twice(&h, &stop, |w| {
        w.workers.remediation_cooldown_ms = 600_000;
    })
    .await;
    assert_eq!(sends(&backend), 2, "replayed inside the cooldown");
    assert!(skipped(&pipeline, "cooldown"));
    h.clock.advance(Duration::from_secs(600));
    until("replayed after the cooldown", async || sends(&backend) == 3).await;
    stop.cancel();

    // Dry run: the run is planned and audited, nothing moves.
    until("in the DLQ", async || {
        failed(h.store.as_ref()).await == (1, 0)
    })
    .await;
    let stop = CancellationToken::new();
    let dry = start_with(&h, Arc::new(Picky::default()), &stop, |w| {
        w.workers.dry_run = true;
    })
    .await;
    h.clock.advance(Duration::from_secs(3_600));
    runs(&dry, 2).await;
    let audit = h.store.audit_recent(20).await.unwrap();
    assert!(audit.iter().any(|e| e.record.result.starts_with("dry-run")));
    assert_eq!(
        failed(h.store.as_ref()).await,
        (1, 0),
        "a dry run moved an entry"
    );
    stop.cancel();
}

async fn automatic_replays_stop_at_their_hourly_limit(h: Harness) {
    let stop = CancellationToken::new();
    let (backend, pipeline) = failing_twice(&h, &stop, |w| {
        w.workers.automatic_replays_per_hour = 1;
    })
    .await;
    assert_eq!(
        sends(&backend),
        2,
        "a second automatic replay within the hour"
    );
    assert!(skipped(&pipeline, "rate_limit"));
    h.clock.advance(Duration::from_secs(3_600));
    until("replayed in the next hour", async || sends(&backend) == 3).await;
    stop.cancel();
}

macro_rules! on_both {
    ($($case:ident),* $(,)?) => {
        mod memory { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $case() { super::$case(super::Harness::new(super::Kind::Memory, 2).await).await } )* }
        mod redis { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $case() { super::$case(super::Harness::new(super::Kind::Redis, 2).await).await } )* }
    };
}

on_both!(
    poison_goes_dead_healthy_is_delivered_once_nothing_while_open,
    a_cooldown_holds_a_channel_back_and_dry_run_changes_nothing,
    automatic_replays_stop_at_their_hourly_limit,
);
