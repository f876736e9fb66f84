//! Reliability under crashes, concurrency and bulk replay, on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

use crate::common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ward::store::prelude::*;

use common::{Harness, Kind, RedisServer, queue, redis_store};
use serde_json::json;
use ward::engine::clock::{Clock, ManualClock, SystemClock};
use ward::model::{Envelope, EnvelopeId, FailureInfo, QueueName, WorkerId};
use ward::store::{
    DeadLetterRequest, DlqCursor, DlqFilter, DlqScope, FailedSet, MAX_BATCH, Receipt,
    ReplayOptions, Store,
};

const LEASE: Duration = Duration::from_secs(60);
const CHILD_URL: &str = "WARD_TEST_CRASH_CHILD_URL";

async fn enqueue_all(store: &dyn Store, q: &QueueName, n: usize, now: i64) -> HashSet<EnvelopeId> {
    let batch: Vec<_> = (0..n)
        .map(|i| Envelope::new(&format!("tenant-{}", i % 5), json!({ "i": i }), now))
        .collect();
    for chunk in batch.chunks(MAX_BATCH) {
        store.enqueue(q, chunk).await.unwrap();
    }
    batch.into_iter().map(|e| e.id).collect()
}

/// Every id that reached the DLQ, by paging it to the end.
async fn dlq_ids(store: &dyn Store, q: &QueueName, set: FailedSet) -> Vec<EnvelopeId> {
    common::failed_entries(store, q, set)
        .await
        .into_iter()
        .map(|e| e.meta.id)
        .collect()
}

/// Acks applied per id, counted from the store's answers.
#[derive(Default)]
struct Ledger {
    acked: Mutex<HashMap<EnvelopeId, u32>>,
}

impl Ledger {
    async fn settle(&self, store: &dyn Store, q: &QueueName, receipts: Vec<Receipt>) {
        // Every 10th item fails permanently, so the DLQ is part of the reconciliation.
        let (to_dlq, to_ack): (Vec<_>, Vec<_>) = receipts
            .into_iter()
            .partition(|r| r.id.0.ends_with(['0', 'A', 'K']));
        let outcome = store.ack(q, &to_ack).await.unwrap();
        let stale: HashSet<_> = outcome.stale.into_iter().collect();
        {
            let mut acked = self.acked.lock().unwrap();
            for r in &to_ack {
                if !stale.contains(&r.id) {
                    *acked.entry(r.id.clone()).or_default() += 1;
                }
            }
        }
        let requests: Vec<_> = to_dlq
            .into_iter()
            .map(|receipt| DeadLetterRequest {
                envelope: Envelope::new("", json!(null), 0),
                failure: FailureInfo::new("http_404", "channel_not_found", "deliver"),
                receipt,
            })
            .collect();
        store.dead_letter(q, &requests).await.unwrap();
    }
}

async fn drain(store: &dyn Store, q: &QueueName, ledger: &Ledger) {
    loop {
        let lease = store
            .lease(q, &WorkerId::new("drainer"), 200, LEASE)
            .await
            .unwrap();
        if lease.items.is_empty() {
            return;
        }
        ledger
            .settle(
                store,
                q,
                lease.items.into_iter().map(|i| i.receipt).collect(),
            )
            .await;
    }
}

async fn reconcile(
    store: &dyn Store,
    q: &QueueName,
    expected: &HashSet<EnvelopeId>,
    ledger: &Ledger,
) {
    let acked = ledger.acked.lock().unwrap().clone();
    let twice: Vec<_> = acked.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "acked more than once: {twice:?}");
    let dlq: HashSet<_> = dlq_ids(store, q, FailedSet::Dlq)
        .await
        .into_iter()
        .collect();
    let acked: HashSet<_> = acked.into_keys().collect();
    assert!(
        acked.is_disjoint(&dlq),
        "an id was both acked and dead-lettered"
    );
    let stats = store.stats(std::slice::from_ref(q)).await.unwrap();
    assert_eq!(
        (
            stats.queues[0].depth,
            stats.queues[0].in_flight,
            stats.queues[0].scheduled
        ),
        (0, 0, 0)
    );
    let accounted: HashSet<_> = acked.union(&dlq).cloned().collect();
    let missing: Vec<_> = expected.difference(&accounted).collect();
    assert!(
        missing.is_empty(),
        "{} ids lost, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    assert_eq!(accounted.len(), expected.len(), "no unknown ids appeared");
    assert!(!dlq.is_empty() && !acked.is_empty());
}

/// The child half of the Redis crash test: lease and hold, never ack, until killed.
#[tokio::test]
#[ignore = "runs only as the child process of no_loss_when_consumers_are_killed_redis"]
async fn crash_child_consumer() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let clock = ManualClock::new(SystemClock.now_ms());
    let store = redis_store(&url, 2, clock).await;
    let q = queue("delivery");
    let mut held = 0;
    loop {
        let lease = store
            .lease(&q, &WorkerId::new("doomed"), 50, LEASE)
            .await
            .unwrap();
        held += lease.items.len();
        println!("held {held}");
        if lease.items.is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Connections the servers currently serve, not counting the ones asking.
fn client_count(servers: &mut dyn FnMut() -> Vec<redis::Connection>) -> usize {
    servers()
        .iter_mut()
        .map(|conn| {
            let list: String = redis::cmd("CLIENT").arg("LIST").query(conn).unwrap();
            list.lines().count() - 1
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_loss_when_consumers_are_killed_redis() {
    let server = RedisServer::start();
    no_loss_when_consumers_are_killed(&server.url(), &mut || vec![server.connection()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_loss_when_consumers_are_killed_cluster() {
    let cluster = tokio::task::spawn_blocking(common::RedisCluster::start)
        .await
        .unwrap();
    let ports = cluster.ports();
    no_loss_when_consumers_are_killed(&cluster.url(), &mut || {
        ports.iter().map(|port| cluster.node(*port)).collect()
    })
    .await;
}

/// A consumer process holding 2 000 leases is SIGKILLed: its leases come back when they
/// expire, and every item is settled exactly once.
async fn no_loss_when_consumers_are_killed(
    url: &str,
    servers: &mut dyn FnMut() -> Vec<redis::Connection>,
) {
    let clock = ManualClock::new(SystemClock.now_ms());
    let store = redis_store(url, 2, clock.clone()).await;
    let q = queue("delivery");
    let expected = enqueue_all(&store, &q, 10_000, clock.now_ms()).await;
    let ledger = Ledger::default();

    let clients_before = client_count(servers);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &child_test_name(),
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_URL, url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(n) = line
                .strip_prefix("held ")
                .and_then(|n| n.parse::<usize>().ok())
            {
                let _ = held_tx.send(n);
            }
        }
    });
    // Healthy consumers race the doomed one until it holds at least 2 000 leases.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let lease = store
            .lease(&q, &WorkerId::new("healthy"), 20, LEASE)
            .await
            .unwrap();
        ledger
            .settle(
                &store,
                &q,
                lease.items.into_iter().map(|i| i.receipt).collect(),
            )
            .await;
        if held_rx.try_iter().any(|n| n >= 2_000) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the child never leased 2 000 items"
        );
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no ack, nothing handed back
    child.wait().unwrap();
    // Redis still runs what the child sent before dying; once its connection is gone, nothing
    // more can arrive from it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while client_count(servers) > clients_before {
        assert!(
            std::time::Instant::now() < deadline,
            "redis never noticed the killed child"
        );
        tokio::task::yield_now().await;
    }

    let in_flight = store.stats(std::slice::from_ref(&q)).await.unwrap().queues[0].in_flight;
    assert!(
        in_flight >= 2_000,
        "the killed consumer's leases are still out: {in_flight}"
    );
    // Past the child's leases, which its own clock (started later than ours) dated.
    clock.set(SystemClock.now_ms() + (LEASE + Duration::from_secs(1)).as_millis() as i64);
    let mut recovered = 0;
    loop {
        let n = store.recover_expired(&q, MAX_BATCH).await.unwrap();
        if n == 0 {
            break;
        }
        recovered += n;
    }
    assert_eq!(recovered as u64, in_flight);
    drain(&store, &q, &ledger).await;
    reconcile(&store, &q, &expected, &ledger).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_loss_when_consumers_are_killed_memory() {
    let h = Harness::new(Kind::Memory, 2).await;
    let store = h.store.clone();
    let q = queue("delivery");
    let expected = enqueue_all(store.as_ref(), &q, 10_000, h.clock.now_ms()).await;
    let ledger = Arc::new(Ledger::default());
    let (held_tx, mut held_rx) = tokio::sync::mpsc::unbounded_channel();
    let doomed: Vec<_> = (0..2)
        .map(|i| {
            let store = store.clone();
            let q = q.clone();
            let held_tx = held_tx.clone();
            tokio::spawn(async move {
                loop {
                    let lease = store
                        .lease(&q, &WorkerId::new(format!("doomed-{i}")), 50, LEASE)
                        .await
                        .unwrap();
                    let _ = held_tx.send(lease.items.len());
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let mut held = 0;
    while held < 2_000 {
        let lease = store
            .lease(&q, &WorkerId::new("healthy"), 20, LEASE)
            .await
            .unwrap();
        ledger
            .settle(
                store.as_ref(),
                &q,
                lease.items.into_iter().map(|i| i.receipt).collect(),
            )
            .await;
        while let Ok(n) = held_rx.try_recv() {
            held += n;
        }
        tokio::task::yield_now().await;
    }
    for task in doomed {
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
    }
    h.clock.advance(LEASE);
    while store.recover_expired(&q, MAX_BATCH).await.unwrap() > 0 {}
    drain(store.as_ref(), &q, &ledger).await;
    reconcile(store.as_ref(), &q, &expected, &ledger).await;
}

/// Who holds what, checked at every lease: a second holder of a live lease is a violation.
#[derive(Default)]
struct Holders {
    by_id: Mutex<HashMap<EnvelopeId, (usize, i64)>>,
    violations: Mutex<Vec<String>>,
    leases: Mutex<HashMap<EnvelopeId, u32>>,
}

impl Holders {
    fn leased(&self, consumer: usize, deadline: i64, ids: &[EnvelopeId], now: i64) {
        let mut by_id = self.by_id.lock().unwrap();
        let mut leases = self.leases.lock().unwrap();
        for id in ids {
            *leases.entry(id.clone()).or_default() += 1;
            if let Some((other, other_deadline)) = by_id.insert(id.clone(), (consumer, deadline))
                && other_deadline > now
            {
                self.violations.lock().unwrap().push(format!(
                    "{id} leased by {consumer} while {other} held it until {other_deadline}"
                ));
            }
        }
    }

    fn released(&self, ids: &[EnvelopeId]) {
        let mut by_id = self.by_id.lock().unwrap();
        for id in ids {
            by_id.remove(id);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_double_lease_with_four_concurrent_consumers_redis() {
    let server = RedisServer::start();
    let clock = ManualClock::new(SystemClock.now_ms());
    let store: Arc<dyn Store> = Arc::new(redis_store(&server.url(), 2, clock.clone()).await);
    let q = queue("delivery");
    let expected = enqueue_all(store.as_ref(), &q, 50_000, clock.now_ms()).await;
    let holders = Arc::new(Holders::default());

    // A stalled consumer takes 500 items and sits on them past their lease.
    let stalled = store
        .lease(&q, &WorkerId::new("stalled"), 500, LEASE)
        .await
        .unwrap();
    let stalled_ids: Vec<_> = stalled
        .items
        .iter()
        .map(|i| i.envelope.id.clone())
        .collect();
    holders.leased(99, stalled.deadline_ms, &stalled_ids, clock.now_ms());
    clock.advance(LEASE);
    assert_eq!(store.recover_expired(&q, MAX_BATCH).await.unwrap(), 500);

    let acked = Arc::new(Mutex::new(HashMap::<EnvelopeId, u32>::new()));
    let consumers: Vec<_> = (0..4)
        .map(|consumer| {
            let (store, q, holders, acked, clock) = (
                store.clone(),
                q.clone(),
                holders.clone(),
                acked.clone(),
                clock.clone(),
            );
            tokio::spawn(async move {
                let worker = WorkerId::new(format!("consumer-{consumer}"));
                loop {
                    let lease = store.lease(&q, &worker, 100, LEASE).await.unwrap();
                    if lease.items.is_empty() {
                        return;
                    }
                    let ids: Vec<_> = lease.items.iter().map(|i| i.envelope.id.clone()).collect();
                    holders.leased(consumer, lease.deadline_ms, &ids, clock.now_ms());
                    // Released before the ack is sent: from here on, another lease would be legal.
                    holders.released(&ids);
                    let receipts: Vec<_> = lease.items.into_iter().map(|i| i.receipt).collect();
                    let outcome = store.ack(&q, &receipts).await.unwrap();
                    assert!(outcome.stale.is_empty(), "a live lease was refused");
                    let mut acked = acked.lock().unwrap();
                    for id in ids {
                        *acked.entry(id).or_default() += 1;
                    }
                }
            })
        })
        .collect();
    for consumer in consumers {
        consumer.await.unwrap();
    }
    // The stalled consumer wakes up: every one of its receipts is refused.
    let receipts: Vec<_> = stalled.items.into_iter().map(|i| i.receipt).collect();
    let late = store.ack(&q, &receipts).await.unwrap();
    assert_eq!((late.applied, late.stale.len()), (0, 500));

    let violations = holders.violations.lock().unwrap();
    assert!(
        violations.is_empty(),
        "{} double leases, e.g. {:?}",
        violations.len(),
        violations.first()
    );
    let acked = acked.lock().unwrap();
    assert_eq!(acked.len(), expected.len());
    assert!(
        acked.values().all(|n| *n == 1),
        "every id acked exactly once"
    );
    let leases = holders.leases.lock().unwrap();
    let relet = leases.values().filter(|n| **n == 2).count();
    assert_eq!(
        relet, 500,
        "only the stalled consumer's items were leased twice"
    );
    assert!(leases.values().all(|n| *n <= 2));
}

async fn replay_of_100k_entries_is_bounded_and_reconciles(h: Harness) {
    let store = h.store.as_ref();
    let q = queue("delivery");
    let total = 100_000;
    let expected = enqueue_all(store, &q, total, h.clock.now_ms()).await;
    let fail_all = |why: &'static str| FailureInfo::new("timeout", why, "deliver");
    let dead_letter_everything = async |why: &'static str| {
        let mut count = 0;
        loop {
            let lease = store
                .lease(&q, &WorkerId::new("w"), MAX_BATCH, LEASE)
                .await
                .unwrap();
            if lease.items.is_empty() {
                return count;
            }
            count += lease.items.len();
            let requests: Vec<_> = lease
                .items
                .into_iter()
                .map(|i| DeadLetterRequest {
                    receipt: i.receipt,
                    envelope: i.envelope,
                    failure: fail_all(why),
                })
                .collect();
            store.dead_letter(&q, &requests).await.unwrap();
        }
    };
    assert_eq!(dead_letter_everything("first").await, total);

    // 20 000 entries have already been replayed once and failed again: with max_replays = 1
    // they are poison now.
    let options = ReplayOptions {
        max_items: MAX_BATCH,
        max_replays: 1,
        reset_attempts: false,
    };
    let all_ids = dlq_ids(store, &q, FailedSet::Dlq).await;
    let poison: HashSet<_> = all_ids.iter().take(20_000).cloned().collect();
    for chunk in all_ids[..20_000].chunks(MAX_BATCH) {
        let batch = store
            .replay(&q, FailedSet::Dlq, &DlqScope::Ids(chunk.to_vec()), options)
            .await
            .unwrap();
        assert_eq!(batch.moved, chunk.len());
    }
    h.clock.advance(Duration::from_secs(1));
    assert_eq!(dead_letter_everything("again").await, 20_000);
    let cutoff = h.clock.now_ms() + 1;

    let filter = DlqFilter {
        failed_before_ms: Some(cutoff),
        ..DlqFilter::default()
    };
    let mut cursor = DlqCursor::start();
    let (mut moved, mut poisoned, mut calls) = (0, 0, 0);
    let mut before = store.stats(std::slice::from_ref(&q)).await.unwrap().queues[0].clone();
    loop {
        let scope = DlqScope::Filter {
            filter: filter.clone(),
            cursor: cursor.clone(),
        };
        let batch = store
            .replay(&q, FailedSet::Dlq, &scope, options)
            .await
            .unwrap();
        calls += 1;
        let after = store.stats(std::slice::from_ref(&q)).await.unwrap().queues[0].clone();
        let left_dlq = before.dlq - after.dlq;
        assert!(
            left_dlq <= MAX_BATCH as u64,
            "one call moved {left_dlq} entries"
        );
        assert_eq!(
            left_dlq,
            batch.touched() as u64,
            "the store's count matches what moved"
        );
        assert_eq!(after.depth - before.depth, batch.moved as u64);
        assert_eq!(after.dead - before.dead, batch.poisoned as u64);
        before = after;
        moved += batch.moved;
        poisoned += batch.poisoned;
        match batch.next {
            Some(next) => cursor = next,
            None => break,
        }
        assert!(calls < 10_000, "replay must terminate");
    }
    assert!(calls >= total / MAX_BATCH);
    assert_eq!((moved, poisoned), (80_000, 20_000));
    let stats = store.stats(std::slice::from_ref(&q)).await.unwrap().queues[0].clone();
    assert_eq!(
        (stats.depth, stats.dlq, stats.dead, stats.in_flight),
        (80_000, 0, 20_000, 0)
    );
    let dead: HashSet<_> = dlq_ids(store, &q, FailedSet::Dead)
        .await
        .into_iter()
        .collect();
    assert_eq!(dead, poison, "exactly the poison entries are dead");
    // Reconcile: every id is either waiting in the queue or dead.
    let mut waiting = HashSet::new();
    loop {
        let lease = store
            .lease(&q, &WorkerId::new("count"), MAX_BATCH, LEASE)
            .await
            .unwrap();
        if lease.items.is_empty() {
            break;
        }
        waiting.extend(lease.items.into_iter().map(|i| i.envelope.id));
    }
    assert_eq!(waiting.len(), 80_000);
    assert!(waiting.is_disjoint(&dead));
    let all: HashSet<_> = waiting.union(&dead).cloned().collect();
    assert_eq!(all, expected);
}

#[tokio::test]
async fn replay_of_100k_entries_memory() {
    replay_of_100k_entries_is_bounded_and_reconciles(Harness::new(Kind::Memory, 2).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_of_100k_entries_redis() {
    replay_of_100k_entries_is_bounded_and_reconciles(Harness::new(Kind::Redis, 2).await).await;
}

/// The child test's name as the harness lists it: its module path within this test binary.
fn child_test_name() -> String {
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    format!("{module}::crash_child_consumer")
}
