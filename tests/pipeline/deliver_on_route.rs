//! The router delivers what it routes (`workers.deliver_on_route`): a delivery that ends at
//! once stores nothing, and only one that must wait — a retry, a dead letter — is stored on the
//! delivery queue, under the router's lease, then settled as any leased delivery is.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use ward::delivery::{Backend, BackendKind, SendError};
use ward::model::{DeliveryJob, Envelope, QueueName, QueueStats};
use ward::store::{MAX_BATCH, Store};

use crate::common::{Harness, Kind, alert_envelope, start_worker};

/// A receiver answering by the alert's name: `ok-*` at once, `flaky-*` with a retryable error
/// the first time, `bad-*` with a permanent one. It counts the sends per name.
#[derive(Debug, Default)]
struct Scripted {
    sends: Mutex<BTreeMap<String, u32>>,
    /// Each send's idempotency key and the alert name its job carried.
    keyed: Mutex<Vec<(String, String)>>,
}

impl Scripted {
    fn sends(&self) -> BTreeMap<String, u32> {
        self.sends.lock().unwrap().clone()
    }
}

#[async_trait]
impl Backend for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }
    fn kind(&self) -> BackendKind {
        BackendKind::Null
    }
    async fn send(&self, job: &DeliveryJob, idempotency_key: &str) -> Result<(), SendError> {
        let name = job.alert.labels["alertname"].clone();
        self.keyed
            .lock()
            .unwrap()
            .push((idempotency_key.to_owned(), name.clone()));
        let count = {
            let mut sends = self.sends.lock().unwrap();
            let count = sends.entry(name.clone()).or_insert(0);
            *count += 1;
            *count
        };
        if name.starts_with("bad") {
            Err(SendError::permanent("http_4xx", "the receiver refuses it"))
        } else if name.starts_with("flaky") && count == 1 {
            Err(SendError::retryable("http_5xx", "the receiver is busy"))
        } else {
            Ok(())
        }
    }
}

/// Enqueue one alert per name; returns each alert's idempotency key on the `scripted` channel
/// and its name.
async fn enqueue(store: &Arc<dyn Store>, names: &[String]) -> BTreeMap<String, String> {
    let now = store.now_ms();
    let envelopes: Vec<Envelope> = names
        .iter()
        .map(|name| alert_envelope(name, &[], now))
        .collect();
    for chunk in envelopes.chunks(MAX_BATCH) {
        store.enqueue(&QueueName::ingest(), chunk).await.unwrap();
    }
    envelopes
        .iter()
        .zip(names)
        .map(|(e, name)| (format!("{}@scripted", e.idempotency_key), name.clone()))
        .collect()
}

async fn stats(store: &Arc<dyn Store>) -> (QueueStats, QueueStats) {
    let mut read = store
        .stats(&[QueueName::ingest(), QueueName::delivery()])
        .await
        .unwrap()
        .queues;
    let delivery = read.pop().unwrap();
    (read.pop().unwrap(), delivery)
}

/// Poll `check` until it holds, for at most ten seconds.
async fn until<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn only_what_must_wait_is_stored_and_it_settles_as_a_lease_would(h: Harness) {
    let backend = Arc::new(Scripted::default());
    let stop = CancellationToken::new();
    let channel: Arc<dyn Backend> = backend.clone();
    start_worker(&h.store, channel, &stop, |_| {}).await;
    let mut names: Vec<String> = (0..20).map(|i| format!("ok-{i}")).collect();
    names.extend(["flaky-0".to_owned(), "bad-0".to_owned()]);
    let keys = enqueue(&h.store, &names).await;

    let store = h.store.clone();
    let (ingest, delivery) = until("every alert routed and attempted", async || {
        let (ingest, delivery) = stats(&store).await;
        let settled = ingest.depth + ingest.in_flight == 0
            && delivery.in_flight == 0
            && delivery.scheduled + delivery.dlq == 2;
        settled.then_some((ingest, delivery))
    })
    .await;
    assert_eq!((ingest.dlq, delivery.depth), (0, 0));
    assert_eq!(
        (delivery.scheduled, delivery.dlq),
        (1, 1),
        "the retry waits on the delivery queue, the permanent failure in its DLQ"
    );
    let sends = backend.sends();
    assert!(
        names.iter().all(|n| sends.get(n) == Some(&1)),
        "each alert sent once: {sends:?}"
    );
    // The router sends the jobs it built beside the envelopes it stores: each send's key is
    // its own alert's.
    for (key, name) in backend.keyed.lock().unwrap().iter() {
        assert_eq!(keys.get(key), Some(name), "the send keyed {key}");
    }
    let waiting = h
        .store
        .scheduled_entries(&QueueName::delivery(), 10)
        .await
        .unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].attempts, 1, "the router's attempt is counted");
    assert!(
        waiting[0]
            .last_error
            .as_ref()
            .is_some_and(|e| e.contains("the receiver is busy")),
        "{:?}",
        waiting[0].last_error
    );

    // Its retry comes due: the delivery workers send it from the queue, once more.
    h.clock.advance(Duration::from_secs(3_600));
    let sent = until("the retry sent", async || {
        let (_, delivery) = stats(&store).await;
        let sends = backend.sends();
        (delivery.scheduled + delivery.depth + delivery.in_flight == 0
            && sends.get("flaky-0") == Some(&2))
        .then_some(sends)
    })
    .await;
    assert_eq!(sent.get("bad-0"), Some(&1), "a dead letter is not retried");
    stop.cancel();
}

/// On Redis, what the store writes: the alert bodies are stored by the enqueue, and an alert
/// whose deliveries all succeed has no other body written for it (one HSET on the bodies hash);
/// with `deliver_on_route` off each delivery is written again for the delivery workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_alert_is_written_once() {
    let mut writes = Vec::new();
    for deliver_on_route in [true, false] {
        let h = Harness::new(Kind::Redis, 1).await;
        let server = h.server.as_ref().unwrap();
        let mut admin = server.connection();
        ::redis::cmd("CONFIG")
            .arg("SET")
            .arg("notify-keyspace-events")
            .arg("Kh")
            .query::<()>(&mut admin)
            .unwrap();
        let bodies = h.store.keys().bodies(0);
        let (events, received) = std::sync::mpsc::channel::<String>();
        let mut listener = server.connection();
        let channel = format!("__keyspace@0__:{bodies}");
        let (subscribed, ready) = std::sync::mpsc::channel::<()>();
        let listening = std::thread::spawn(move || {
            let mut pubsub = listener.as_pubsub();
            pubsub.subscribe(&channel).unwrap();
            pubsub
                .set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            subscribed.send(()).unwrap();
            // Until the test drops its receiver (a quiet read sends an empty event to find out).
            loop {
                if let Ok(message) = pubsub.get_message() {
                    let event: String = message.get_payload().unwrap();
                    if events.send(event).is_err() {
                        return;
                    }
                } else if events.send(String::new()).is_err() {
                    return;
                }
            }
        });
        ready.recv().unwrap();

        let backend = Arc::new(Scripted::default());
        let stop = CancellationToken::new();
        let channel: Arc<dyn Backend> = backend.clone();
        start_worker(&h.store, channel, &stop, |c| {
            c.workers.deliver_on_route = deliver_on_route;
        })
        .await;
        let names: Vec<String> = (0..50).map(|i| format!("ok-{i}")).collect();
        enqueue(&h.store, &names).await;
        let store = h.store.clone();
        until("all delivered and settled", async || {
            let (ingest, delivery) = stats(&store).await;
            let done = backend.sends().len() == names.len()
                && ingest.depth + ingest.in_flight + delivery.depth + delivery.in_flight == 0;
            done.then_some(())
        })
        .await;
        stop.cancel();
        // A write of another kind marks the end: keyspace events arrive in the order of the
        // writes, so every HSET before it has been counted once it shows.
        ::redis::cmd("HINCRBY")
            .arg(&bodies)
            .arg("end-of-test")
            .arg(1)
            .query::<i64>(&mut admin)
            .unwrap();
        let mut hset = 0;
        loop {
            match received
                .recv_timeout(Duration::from_secs(5))
                .unwrap()
                .as_str()
            {
                "hincrby" => break,
                "hset" => hset += 1,
                _ => {}
            }
        }
        drop(received);
        listening.join().unwrap();
        writes.push(hset);
    }
    assert_eq!(
        writes[0], 1,
        "delivered on route: only the enqueue wrote bodies"
    );
    assert!(
        writes[1] > 1,
        "forwarded: the deliveries' bodies were written too ({} HSETs)",
        writes[1]
    );
}

macro_rules! on_both {
    ($($case:ident),* $(,)?) => {
        mod memory { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $case() { super::$case(super::Harness::new(super::Kind::Memory, 2).await).await } )* }
        mod redis { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $case() { super::$case(super::Harness::new(super::Kind::Redis, 2).await).await } )* }
    };
}

on_both!(only_what_must_wait_is_stored_and_it_settles_as_a_lease_would);
