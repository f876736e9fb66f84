//! Backpressure on the memory store and a real redis-server, with two workers: a shed depth
//! lowered at runtime starts shedding within a second, the shed items sit in the DLQ with the
//! `shed` reason, raising it stops shedding, `defer` holds the router back, and every alert is
//! delivered once or sits in the DLQ.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::{Harness, Kind, act, alert_envelope, operator, queue, start_worker};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use ward::actions::{Action, Actions};
use ward::delivery::{Backend, BackendKind, SendError};
use ward::model::{DeliveryJob, Envelope, QueueName, ShedMode, Threshold};
use ward::pipeline::Pipeline;
use ward::store::{DlqCursor, DlqFilter, FailedSet, MAX_BATCH, Store};

/// A channel that holds every send until its gate opens; records what it delivered.
#[derive(Debug)]
struct Gated {
    open: watch::Receiver<bool>,
    delivered: Mutex<Vec<String>>,
}

#[async_trait]
impl Backend for Gated {
    fn name(&self) -> &'static str {
        "gated"
    }
    fn kind(&self) -> BackendKind {
        BackendKind::Null
    }
    async fn send(&self, job: &DeliveryJob, _idempotency_key: &str) -> Result<(), SendError> {
        let mut open = self.open.clone();
        let _ = open.wait_for(|o| *o).await;
        self.delivered
            .lock()
            .unwrap()
            .push(job.alert.correlation_id.clone());
        Ok(())
    }
}

struct Setup {
    store: Arc<dyn Store>,
    workers: Vec<Arc<Pipeline>>,
    gate: watch::Sender<bool>,
    backend: Arc<Gated>,
    stop: CancellationToken,
    actions: Actions,
    sent: usize,
}

/// Two workers on `h`'s store, each with one send in flight at a time. Their routers store
/// every delivery on the delivery queue (`deliver_on_route` off), so a closed gate fills that
/// queue: the depth the shedding thresholds here watch.
async fn start(h: &Harness) -> Setup {
    let (gate, open) = watch::channel(false);
    let backend = Arc::new(Gated {
        open,
        delivered: Mutex::new(Vec::new()),
    });
    let stop = CancellationToken::new();
    let mut pipelines = Vec::new();
    for _ in 0..2 {
        let channel: Arc<dyn Backend> = backend.clone();
        pipelines.push(
            start_worker(&h.store, channel, &stop, |w| {
                w.queues.batch_size = 1;
                w.workers.concurrency = 1;
                w.workers.deliver_on_route = false;
            })
            .await,
        );
    }
    let actions = operator(h.store.clone());
    Setup {
        store: h.store.clone(),
        workers: pipelines,
        gate,
        backend,
        stop,
        actions,
        sent: 0,
    }
}

impl Setup {
    async fn send_alerts(&mut self, n: usize) {
        let now = self.store.now_ms();
        let envelopes: Vec<Envelope> = (self.sent..self.sent + n)
            .map(|i| alert_envelope(&format!("alert-{i}"), &[], now))
            .collect();
        for chunk in envelopes.chunks(MAX_BATCH) {
            self.store
                .enqueue(&QueueName::ingest(), chunk)
                .await
                .unwrap();
        }
        self.sent += n;
    }

    async fn act(&self, action: Action) {
        act(&self.actions, action).await;
    }

    async fn set_shed_depth(&self, value: Option<u64>) {
        self.act(Action::SetThreshold {
            queue: queue("delivery"),
            threshold: Threshold::Shed,
            value,
            reason: "load test".into(),
        })
        .await;
    }

    async fn set_mode(&self, mode: ShedMode) {
        self.act(Action::Shedding {
            mode,
            reason: "load test".into(),
            expires_at_ms: None,
        })
        .await;
    }

    /// (ingest depth, delivery depth, delivery DLQ size)
    async fn depths(&self) -> (u64, u64, u64) {
        let stats = self
            .store
            .stats(&[queue("ingest"), queue("delivery")])
            .await
            .unwrap();
        (
            stats.queues[0].depth,
            stats.queues[1].depth,
            stats.queues[1].dlq,
        )
    }

    async fn wait_for(
        &self,
        what: &str,
        within: Duration,
        mut ok: impl FnMut((u64, u64, u64)) -> bool,
    ) -> (u64, u64, u64) {
        let deadline = Instant::now() + within;
        loop {
            let depths = self.depths().await;
            if ok(depths) {
                return depths;
            }
            assert!(Instant::now() < deadline, "{what}: still {depths:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Every alert is delivered exactly once or sits in the DLQ, never both.
    async fn reconcile(&self) {
        let _ = self.gate.send(true);
        let total = self.sent as u64;
        let (_, _, dlq) = self
            .wait_for("drain", Duration::from_secs(30), |(i, d, q)| {
                i == 0 && d == 0 && self.backend.delivered.lock().unwrap().len() as u64 + q == total
            })
            .await;
        let delivered = self.backend.delivered.lock().unwrap().clone();
        let unique: HashSet<&String> = delivered.iter().collect();
        assert_eq!(
            unique.len(),
            delivered.len(),
            "an alert was delivered twice"
        );
        let mut shed = HashSet::new();
        let mut cursor = DlqCursor::start();
        loop {
            let page = self
                .store
                .failed_page(
                    &queue("delivery"),
                    FailedSet::Dlq,
                    &DlqFilter::default(),
                    &cursor,
                    500,
                )
                .await
                .unwrap();
            for entry in page.entries {
                let job: DeliveryJob = entry.envelope.unwrap().payload.decode().unwrap();
                shed.insert(job.alert.correlation_id);
            }
            match page.next {
                Some(next) => cursor = next,
                None => break,
            }
        }
        assert_eq!(shed.len() as u64, dlq);
        assert!(
            unique.iter().all(|id| !shed.contains(*id)),
            "delivered and shed"
        );
        self.stop.cancel();
    }
}

async fn a_lowered_shed_depth_sheds_within_a_second_and_raising_it_stops(h: Harness) {
    let mut s = start(&h).await;
    s.set_mode(ShedMode::Dlq).await;
    s.send_alerts(200).await;
    s.wait_for("routing", Duration::from_secs(10), |(i, d, _)| {
        i == 0 && d >= 190
    })
    .await;

    let lowered = Instant::now();
    s.set_shed_depth(Some(50)).await;
    s.wait_for("first shed", Duration::from_secs(1), |(_, _, q)| q > 0)
        .await;
    let first = lowered.elapsed();
    assert!(
        first < Duration::from_secs(1),
        "shedding began after {first:?}"
    );
    let (_, depth, dlq) = s
        .wait_for(
            "shed to the threshold",
            Duration::from_secs(5),
            |(_, d, _)| d <= 50,
        )
        .await;
    assert!(depth >= 40, "shed far past the threshold: {depth} left");
    for worker in &s.workers {
        assert_eq!(worker.controls().mode, ShedMode::Dlq);
    }
    let page = s
        .store
        .failed_page(
            &queue("delivery"),
            FailedSet::Dlq,
            &DlqFilter::default(),
            &DlqCursor::start(),
            10,
        )
        .await
        .unwrap();
    assert!(!page.entries.is_empty());
    for entry in &page.entries {
        assert_eq!(entry.meta.error_class, "shed");
        assert_eq!(entry.meta.stage, "shed");
        assert!(
            entry.meta.error_message.contains("over its shed depth 50"),
            "{}",
            entry.meta.error_message
        );
    }

    s.set_shed_depth(Some(10_000)).await;
    let deadline = Instant::now() + Duration::from_secs(1);
    while s.workers.iter().any(|w| {
        w.controls()
            .thresholds
            .get(&queue("delivery"))
            .and_then(|t| t.shed)
            != Some(10_000)
    }) {
        assert!(
            Instant::now() < deadline,
            "the raised threshold did not reach every worker"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s.send_alerts(100).await;
    let (_, _, after) = s
        .wait_for(
            "routing after raising",
            Duration::from_secs(10),
            |(i, d, _)| i == 0 && d >= depth + 90,
        )
        .await;
    assert_eq!(after, dlq, "nothing shed once the threshold was raised");
    s.reconcile().await;
}

async fn defer_holds_the_router_back_until_the_queue_drains(h: Harness) {
    let mut s = start(&h).await;
    s.send_alerts(30).await;
    s.wait_for("routing", Duration::from_secs(10), |(i, d, _)| {
        i == 0 && d >= 25
    })
    .await;
    s.set_mode(ShedMode::Defer).await;
    s.set_shed_depth(Some(20)).await;
    let deadline = Instant::now() + Duration::from_secs(1);
    while !s
        .workers
        .iter()
        .all(|w| w.controls().deferring(&queue("delivery")))
    {
        assert!(
            Instant::now() < deadline,
            "the workers did not start deferring"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s.send_alerts(100).await;
    // Two more control reads by every worker: the router had time to route, and did not.
    let seen: Vec<u64> = s.workers.iter().map(|w| w.controls().reads + 1).collect();
    let (_, _, _) = s
        .wait_for("two control reads", Duration::from_secs(2), |_| {
            s.workers
                .iter()
                .zip(&seen)
                .all(|(w, at)| w.controls().reads > *at)
        })
        .await;
    let (ingest, _, dlq) = s.depths().await;
    assert_eq!(ingest, 100, "the router routed while delivery deferred");
    assert_eq!(dlq, 0, "defer sheds nothing");
    // Removing the threshold lets the router go on.
    s.set_shed_depth(None).await;
    s.wait_for("router resumes", Duration::from_secs(10), |(i, _, _)| {
        i == 0
    })
    .await;
    s.reconcile().await;
}

macro_rules! on_both {
    ($($case:ident),* $(,)?) => {
        mod memory { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $case() { super::$case(super::Harness::new(super::Kind::Memory, 2).await).await } )* }
        mod redis { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $case() { super::$case(super::Harness::new(super::Kind::Redis, 2).await).await } )* }
    };
}

on_both!(
    a_lowered_shed_depth_sheds_within_a_second_and_raising_it_stops,
    defer_holds_the_router_back_until_the_queue_drains,
);
