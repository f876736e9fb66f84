//! Edge cases of the store contract, found in review: each once broke one backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

use crate::common;

use std::collections::HashSet;
use std::time::Duration;
use ward::store::prelude::*;

use common::{Harness, Kind, queue};
use serde_json::json;
use ward::engine::ratelimit::RateLimit;
use ward::model::{Envelope, EnvelopeId, FailureInfo, WorkerId};
use ward::store::{
    DeadLetterRequest, DedupClaim, DedupFinish, DlqCursor, DlqFilter, DlqScope, FailedSet,
    IngestLimits, IngestOutcome, Receipt, RedisStore, RedisStoreOptions, ReplayOptions, StoreError,
    update_breaker,
};

const LEASE: Duration = Duration::from_secs(30);

fn w(name: &str) -> WorkerId {
    WorkerId::new(name)
}

/// `n` envelopes of `tenant` into the DLQ of "delivery", one second apart.
async fn fill_dlq(h: &Harness, n: usize, tenant: &str, class: &str) -> Vec<EnvelopeId> {
    common::fill_dlq(h, "delivery", n, tenant, class, "deliver").await
}

async fn figures(h: &Harness) -> (u64, u64, u64, u64) {
    let s = h.store.stats(&[queue("delivery")]).await.unwrap();
    let s = &s.queues[0];
    (s.depth, s.in_flight, s.dlq, s.dead)
}

// an empty id list replays / purges nothing.
async fn empty_ids_scope_touches_nothing(h: Harness) {
    let q = queue("delivery");
    fill_dlq(&h, 5, "acme", "timeout").await;
    let purged = h
        .store
        .purge(&q, FailedSet::Dlq, &DlqScope::Ids(vec![]), 100)
        .await
        .unwrap();
    assert_eq!(purged.moved, 0, "empty selection purged {}", purged.moved);
    let replayed = h
        .store
        .replay(
            &q,
            FailedSet::Dlq,
            &DlqScope::Ids(vec![]),
            ReplayOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        replayed.touched(),
        0,
        "empty selection replayed {}",
        replayed.moved
    );
    assert_eq!(figures(&h).await, (0, 0, 5, 0));
}

// the same id twice in one batch moves it once (no double delivery, never in two places).
async fn duplicate_ids_in_a_replay_batch_move_once(h: Harness) {
    let q = queue("delivery");
    let ids = fill_dlq(&h, 1, "acme", "timeout").await;
    let options = ReplayOptions {
        max_items: 10,
        max_replays: 1,
        reset_attempts: true,
    };
    let r = h
        .store
        .replay(
            &q,
            FailedSet::Dlq,
            &DlqScope::Ids(vec![ids[0].clone(), ids[0].clone()]),
            options,
        )
        .await
        .unwrap();
    let figs = figures(&h).await;
    assert_eq!(
        (r.moved, r.poisoned),
        (1, 0),
        "batch result {r:?}, figures {figs:?}"
    );
    assert_eq!(figs, (1, 0, 0, 0), "(depth, in_flight, dlq, dead)");
}

async fn duplicate_ids_in_a_purge_batch_count_once(h: Harness) {
    let q = queue("delivery");
    let ids = fill_dlq(&h, 1, "acme", "timeout").await;
    let r = h
        .store
        .purge(
            &q,
            FailedSet::Dlq,
            &DlqScope::Ids(vec![ids[0].clone(), ids[0].clone()]),
            10,
        )
        .await
        .unwrap();
    assert_eq!(r.moved, 1);
}

// the same receipt twice in one ack or forward settles it once: the second copy is stale.
async fn a_receipt_twice_in_one_call_settles_once(h: Harness) {
    let (from, to) = (queue("ingest"), queue("delivery"));
    let items: Vec<Envelope> = (0..2)
        .map(|i| Envelope::new("acme", json!(i), h.store.now_ms()))
        .collect();
    h.store.enqueue(&from, &items).await.unwrap();
    let lease = h.store.lease(&from, &w("w"), 2, LEASE).await.unwrap();
    let (a, b) = (&lease.items[0].receipt, &lease.items[1].receipt);
    let acked = h.store.ack(&from, &[a.clone(), a.clone()]).await.unwrap();
    assert_eq!(
        (acked.applied, acked.stale.clone()),
        (1, vec![a.id.clone()])
    );
    let request = ward::store::ForwardRequest {
        receipt: b.clone(),
        envelopes: Vec::new(),
    };
    let forwarded = h
        .store
        .forward(&from, &to, &[request.clone(), request])
        .await
        .unwrap();
    assert_eq!(
        (forwarded.acked.applied, forwarded.acked.stale),
        (1, vec![b.id.clone()])
    );
    let stats = h.store.stats(&[from]).await.unwrap();
    assert_eq!(stats.queues[0].depth + stats.queues[0].in_flight, 0);
}

// a receipt naming a partition the store does not have is an error, and nothing is applied.
async fn receipt_for_unknown_partition_is_an_error(h: Harness) {
    let q = queue("delivery");
    let batch: Vec<_> = (0..2)
        .map(|i| Envelope::new("t", json!(i), h.store.now_ms()))
        .collect();
    h.store.enqueue(&q, &batch).await.unwrap();
    let lease = h.store.lease(&q, &w("w"), 2, LEASE).await.unwrap();
    let good = lease.items[0].receipt.clone();
    let bad = Receipt {
        partition: 7,
        ..lease.items[1].receipt.clone()
    };
    let store = h.store.clone();
    let (g, b, q2) = (good.clone(), bad, q.clone());
    let joined = tokio::spawn(async move { store.ack(&q2, &[g, b]).await }).await;
    match joined {
        Err(panic) => panic!(
            "ack panicked: {panic}; in_flight now {}",
            figures(&h).await.1
        ),
        Ok(result) => assert!(result.is_err(), "unknown partition accepted: {result:?}"),
    }
    assert_eq!(figures(&h).await.1, 2, "a refused batch applies nothing");
}

// an inverted time range selects nothing; it must not panic nor lose metadata.
async fn inverted_time_filter_selects_nothing(h: Harness) {
    let q = queue("delivery");
    fill_dlq(&h, 3, "acme", "timeout").await;
    let now = h.store.now_ms();
    let inverted = DlqFilter {
        failed_at_or_after_ms: Some(now),
        failed_before_ms: Some(now - 10_000),
        ..DlqFilter::default()
    };
    let store = h.store.clone();
    let q2 = q.clone();
    let joined =
        tokio::spawn(async move { store.failed_count(&q2, FailedSet::Dlq, &inverted).await }).await;
    let after = h
        .store
        .failed_count(&q, FailedSet::Dlq, &DlqFilter::default())
        .await
        .unwrap();
    let page = h
        .store
        .failed_page(
            &q,
            FailedSet::Dlq,
            &DlqFilter::default(),
            &DlqCursor::start(),
            10,
        )
        .await
        .unwrap();
    assert!(
        joined.is_ok(),
        "failed_count panicked; afterwards count={after}, page={}",
        page.entries.len()
    );
    assert_eq!(joined.unwrap().unwrap(), 0);
    assert_eq!((after, page.entries.len()), (3, 3));
}

// a field filter set to the empty string matches only entries whose field is empty.
async fn empty_string_field_filter_is_not_a_wildcard(h: Harness) {
    let q = queue("delivery");
    fill_dlq(&h, 2, "acme", "timeout").await;
    fill_dlq(&h, 1, "", "timeout").await;
    let filter = DlqFilter {
        tenant: Some(String::new()),
        ..DlqFilter::default()
    };
    assert_eq!(
        h.store
            .failed_count(&q, FailedSet::Dlq, &filter)
            .await
            .unwrap(),
        1
    );
    let scope = DlqScope::Filter {
        filter,
        cursor: DlqCursor::start(),
    };
    let mut purged = 0;
    let mut scope = scope;
    loop {
        let r = h
            .store
            .purge(&q, FailedSet::Dlq, &scope, 100)
            .await
            .unwrap();
        purged += r.moved;
        match (r.next, &scope) {
            (Some(next), DlqScope::Filter { filter, .. }) => {
                scope = DlqScope::Filter {
                    filter: filter.clone(),
                    cursor: next,
                }
            }
            _ => break,
        }
    }
    assert_eq!(
        purged, 1,
        "purging tenant \"\" must not purge acme's entries"
    );
}

// The same envelope enqueued twice (a retried enqueue whose reply was lost) is stored once.
async fn enqueueing_an_id_twice_adds_it_once(h: Harness) {
    let q = queue("delivery");
    let e = Envelope::new("t", json!(1), h.store.now_ms());
    assert_eq!(
        h.store.enqueue(&q, std::slice::from_ref(&e)).await.unwrap(),
        1
    );
    assert_eq!(
        h.store.enqueue(&q, std::slice::from_ref(&e)).await.unwrap(),
        0
    );
    assert_eq!(h.store.enqueue(&q, &[e.clone(), e]).await.unwrap(), 0);
    assert_eq!(figures(&h).await, (1, 0, 0, 0));
    let lease = h.store.lease(&q, &w("a"), 10, LEASE).await.unwrap();
    assert_eq!(lease.items.len(), 1);
    // While it is leased, or in the DLQ, the id is still known: no second copy sneaks in.
    let again = Envelope {
        payload: ward::model::Payload::from_value(&json!(2)),
        ..lease.items[0].envelope.clone()
    };
    assert_eq!(h.store.enqueue(&q, &[again]).await.unwrap(), 0);
}

// A zero-size step is refused: it could only stall a cursor.
async fn zero_item_steps_are_refused(h: Harness) {
    let q = queue("delivery");
    fill_dlq(&h, 3, "acme", "timeout").await;
    let scope = DlqScope::Filter {
        filter: DlqFilter::default(),
        cursor: DlqCursor::start(),
    };
    let options = ReplayOptions {
        max_items: 0,
        ..ReplayOptions::default()
    };
    assert!(
        h.store
            .replay(&q, FailedSet::Dlq, &scope, options)
            .await
            .is_err()
    );
    assert!(h.store.purge(&q, FailedSet::Dlq, &scope, 0).await.is_err());
    let page = h
        .store
        .failed_page(
            &q,
            FailedSet::Dlq,
            &DlqFilter::default(),
            &DlqCursor::start(),
            0,
        )
        .await;
    assert!(page.is_err());
    assert_eq!(figures(&h).await, (0, 0, 3, 0));
}

// items recovered from one expired lease come back in their original order.
async fn recovered_batch_keeps_its_order(h: Harness) {
    let q = queue("delivery");
    let batch: Vec<_> = (0..3)
        .map(|i| Envelope::new("t", json!(i), h.store.now_ms()))
        .collect();
    h.store.enqueue(&q, &batch).await.unwrap();
    let first = h.store.lease(&q, &w("a"), 3, LEASE).await.unwrap();
    let before: Vec<_> = first.items.iter().map(|i| i.envelope.id.clone()).collect();
    h.clock.advance(LEASE);
    assert_eq!(h.store.recover_expired(&q, 10).await.unwrap(), 3);
    let again = h.store.lease(&q, &w("b"), 3, LEASE).await.unwrap();
    let after: Vec<_> = again.items.iter().map(|i| i.envelope.id.clone()).collect();
    if h.store.keys().partitions() == 1 {
        assert_eq!(after, before);
    } else {
        // Across partitions the lease order rotates; each id still comes back exactly once.
        let mut after = after;
        let mut before = before;
        after.sort();
        before.sort();
        assert_eq!(after, before);
    }
}

// Purging the dead list, and a filter scan reports how many entries it examined.
async fn purge_from_the_dead_list_and_scan_counts(h: Harness) {
    let q = queue("delivery");
    let ids = fill_dlq(&h, 4, "acme", "timeout").await;
    let options = ReplayOptions {
        max_items: 10,
        max_replays: 0,
        reset_attempts: true,
    };
    let poisoned = h
        .store
        .replay(&q, FailedSet::Dlq, &DlqScope::Ids(ids.clone()), options)
        .await
        .unwrap();
    assert_eq!(
        poisoned.poisoned, 4,
        "max_replays 0: the first replay is already poison"
    );
    assert_eq!(figures(&h).await, (0, 0, 0, 4));
    let mut cursor = DlqCursor::start();
    let mut purged = 0;
    loop {
        let scope = DlqScope::Filter {
            filter: DlqFilter::default(),
            cursor,
        };
        let step = h.store.purge(&q, FailedSet::Dead, &scope, 3).await.unwrap();
        assert!(step.moved <= 3);
        assert_eq!(step.scanned, step.moved, "every entry examined matched");
        purged += step.moved;
        match step.next {
            Some(next) if purged < 3 => cursor = next,
            _ => break,
        }
    }
    assert!(purged >= 3);
    let left = h
        .store
        .purge(&q, FailedSet::Dead, &DlqScope::Ids(ids), 10)
        .await
        .unwrap();
    assert_eq!(purged + left.moved, 4);
    assert_eq!(figures(&h).await, (0, 0, 0, 0));
}

// Replay keeps the attempt count unless told to reset it.
async fn replay_keeps_attempts_unless_reset(h: Harness) {
    let q = queue("delivery");
    h.store
        .enqueue(&q, &[Envelope::new("t", json!(1), h.store.now_ms())])
        .await
        .unwrap();
    for _ in 0..2 {
        h.store.lease(&q, &w("crashy"), 1, LEASE).await.unwrap();
        h.clock.advance(LEASE);
        assert_eq!(h.store.recover_expired(&q, 10).await.unwrap(), 1);
    }
    let item = h
        .store
        .lease(&q, &w("w"), 1, LEASE)
        .await
        .unwrap()
        .items
        .remove(0);
    assert_eq!(item.envelope.attempts, 2);
    let id = item.envelope.id.clone();
    h.store
        .dead_letter(
            &q,
            &[DeadLetterRequest {
                receipt: item.receipt,
                envelope: item.envelope,
                failure: FailureInfo::new("timeout", "x", "deliver"),
            }],
        )
        .await
        .unwrap();
    let page = h
        .store
        .failed_page(
            &q,
            FailedSet::Dlq,
            &DlqFilter::default(),
            &DlqCursor::start(),
            10,
        )
        .await
        .unwrap();
    assert_eq!(page.entries[0].meta.attempts, 2);
    let keep = ReplayOptions {
        max_items: 10,
        max_replays: 5,
        reset_attempts: false,
    };
    h.store
        .replay(&q, FailedSet::Dlq, &DlqScope::Ids(vec![id]), keep)
        .await
        .unwrap();
    let again = h.store.lease(&q, &w("w"), 1, LEASE).await.unwrap();
    assert_eq!(again.items[0].envelope.attempts, 2, "kept");
}

// Deferring and releasing count no attempt; release keeps the batch's order at the front.
async fn defer_and_release_count_no_attempt(h: Harness) {
    let q = queue("delivery");
    let batch: Vec<_> = (0..3)
        .map(|i| Envelope::new("t", json!(i), h.store.now_ms()))
        .collect();
    h.store.enqueue(&q, &batch).await.unwrap();
    let lease = h.store.lease(&q, &w("a"), 3, LEASE).await.unwrap();
    let receipts: Vec<_> = lease.items.iter().map(|i| i.receipt.clone()).collect();
    let due = h.store.now_ms() + 5_000;
    assert_eq!(
        h.store
            .defer(&q, &receipts[..1], due)
            .await
            .unwrap()
            .applied,
        1
    );
    assert_eq!(
        h.store.release(&q, &receipts[1..]).await.unwrap().applied,
        2
    );
    assert_eq!(
        h.store
            .release(&q, &receipts[1..])
            .await
            .unwrap()
            .stale
            .len(),
        2,
        "spent receipts"
    );
    let stats = h
        .store
        .stats(std::slice::from_ref(&q))
        .await
        .unwrap()
        .queues[0]
        .clone();
    assert_eq!((stats.depth, stats.in_flight, stats.scheduled), (2, 0, 1));
    let again = h.store.lease(&q, &w("b"), 3, LEASE).await.unwrap();
    let ids: Vec<_> = again.items.iter().map(|i| i.envelope.id.clone()).collect();
    if h.store.keys().partitions() == 1 {
        let released: Vec<_> = lease.items[1..]
            .iter()
            .map(|i| i.envelope.id.clone())
            .collect();
        assert_eq!(ids, released, "released in order, at the front");
    }
    assert!(again.items.iter().all(|i| i.envelope.attempts == 0));
    h.clock.advance(Duration::from_secs(5));
    assert_eq!(h.store.promote_due(&q, 10).await.unwrap(), 1);
    let deferred = h.store.lease(&q, &w("c"), 3, LEASE).await.unwrap();
    assert_eq!(
        deferred.items[0].envelope.attempts, 0,
        "a deferral is not an attempt"
    );
}

async fn a_worker_id_with_a_bar_leases_recovers_and_acks(h: Harness) {
    let q = queue("delivery");
    let batch: Vec<_> = (0..3)
        .map(|i| Envelope::new("t", json!(i), h.store.now_ms()))
        .collect();
    h.store.enqueue(&q, &batch).await.unwrap();
    let odd = w("host|7|worker");
    let lease = h.store.lease(&q, &odd, 3, LEASE).await.unwrap();
    assert_eq!(lease.items.len(), 3);
    let receipts: Vec<Receipt> = lease.items.iter().map(|i| i.receipt.clone()).collect();
    assert_eq!(h.store.ack(&q, &receipts[..1]).await.unwrap().applied, 1);
    h.clock.advance(LEASE);
    assert_eq!(h.store.recover_expired(&q, 10).await.unwrap(), 2);
    let again = h.store.lease(&q, &odd, 3, LEASE).await.unwrap();
    let ids: HashSet<_> = again.items.iter().map(|i| i.envelope.id.clone()).collect();
    let expected: HashSet<_> = lease.items[1..]
        .iter()
        .map(|i| i.envelope.id.clone())
        .collect();
    assert_eq!(ids, expected, "recovered ids, not lease members");
    assert!(again.items.iter().all(|i| i.envelope.attempts == 1));
    let receipts: Vec<Receipt> = again.items.iter().map(|i| i.receipt.clone()).collect();
    assert_eq!(h.store.ack(&q, &receipts).await.unwrap().applied, 2);
    assert_eq!(figures(&h).await, (0, 0, 0, 0));
}

async fn two_workers_taking_over_a_lapsed_claim_get_it_once(h: Harness) {
    let hold = Duration::from_secs(30);
    let key = vec!["lapsed".to_owned()];
    let first = h.store.dedup_claim("dead", &key, hold, hold).await.unwrap();
    assert!(matches!(first[..], [DedupClaim::Claimed(_)]));
    h.clock.advance(hold);
    for round in 0..5 {
        let (a, b) = tokio::join!(
            h.store.dedup_claim("a", &key, hold, hold),
            h.store.dedup_claim("b", &key, hold, hold)
        );
        let answers = [a.unwrap()[0], b.unwrap()[0]];
        let claimed = answers
            .iter()
            .filter(|c| matches!(c, DedupClaim::Claimed(_)))
            .count();
        assert_eq!(claimed, 1, "round {round}: {answers:?}");
        assert!(answers.contains(&DedupClaim::InFlight));
        h.clock.advance(hold);
    }
}

async fn one_finish_call_applies_its_outcomes_in_order(h: Harness) {
    let hold = Duration::from_secs(30);
    let window = Duration::from_secs(3600);
    let keys: Vec<String> = ["x", "y"].iter().map(|k| (*k).to_owned()).collect();
    let claims = h
        .store
        .dedup_claim("w1", &keys, hold, window)
        .await
        .unwrap();
    let [DedupClaim::Claimed(x), DedupClaim::Claimed(y)] = claims[..] else {
        panic!("both claimed: {claims:?}");
    };
    h.store
        .dedup_finish(
            "w1",
            &[
                ("x".to_owned(), DedupFinish::Hold(hold)),
                ("x".to_owned(), DedupFinish::Done(x)),
                ("y".to_owned(), DedupFinish::Done(y)),
                ("y".to_owned(), DedupFinish::Release),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        h.store
            .dedup_claim("w2", &keys, hold, window)
            .await
            .unwrap(),
        vec![DedupClaim::AlreadyDone, DedupClaim::AlreadyDone],
        "a success is kept; release after it forgets nothing"
    );
}

async fn an_unchanged_breaker_is_not_written_again(h: Harness) {
    let store = h.store.as_ref();
    update_breaker(store, "slack", |_| {}).await.unwrap();
    let (version, _) = store.breaker_load("slack").await.unwrap().unwrap();
    update_breaker(store, "slack", |_| {}).await.unwrap();
    let (again, _) = store.breaker_load("slack").await.unwrap().unwrap();
    assert_eq!(again, version);
    update_breaker(store, "slack", |b| {
        b.force_open(h.store.now_ms(), h.store.now_ms() + 60_000, "op", "test");
    })
    .await
    .unwrap();
    let (changed, _) = store.breaker_load("slack").await.unwrap().unwrap();
    assert!(changed > version);
}

conformance!(
    defer_and_release_count_no_attempt,
    empty_ids_scope_touches_nothing,
    duplicate_ids_in_a_replay_batch_move_once,
    duplicate_ids_in_a_purge_batch_count_once,
    a_receipt_twice_in_one_call_settles_once,
    receipt_for_unknown_partition_is_an_error,
    inverted_time_filter_selects_nothing,
    empty_string_field_filter_is_not_a_wildcard,
    enqueueing_an_id_twice_adds_it_once,
    zero_item_steps_are_refused,
    recovered_batch_keeps_its_order,
    purge_from_the_dead_list_and_scan_counts,
    replay_keeps_attempts_unless_reset,
    a_worker_id_with_a_bar_leases_recovers_and_acks,
    two_workers_taking_over_a_lapsed_claim_get_it_once,
    one_finish_call_applies_its_outcomes_in_order,
    an_unchanged_breaker_is_not_written_again,
);

#[tokio::test]
async fn redis_leases_stay_a_hash_table_and_counters_ride_in_the_body() {
    let h = Harness::new(Kind::Redis, 1).await;
    let q = queue("delivery");
    let batch: Vec<_> = (0..3)
        .map(|i| Envelope::new("t", json!(i), h.store.now_ms()))
        .collect();
    h.store.enqueue(&q, &batch).await.unwrap();
    let lease = h.store.lease(&q, &w("w"), 3, LEASE).await.unwrap();
    let keys = h.store.keys();
    let mut conn = h.server.as_ref().unwrap().connection();
    let encoding: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(keys.leases(0, &q))
        .query(&mut conn)
        .unwrap();
    assert_eq!(
        encoding, "skiplist",
        "a listpack would scan on every lookup"
    );
    let stored: String = redis::cmd("HGET")
        .arg(keys.bodies(0))
        .arg(lease.items[0].envelope.id.as_str())
        .query(&mut conn)
        .unwrap();
    assert!(stored.starts_with("0:0:{"), "{stored}");
}

#[tokio::test]
async fn redis_refuses_data_in_another_layout() {
    let h = Harness::new(Kind::Redis, 1).await;
    let server = h.server.as_ref().unwrap();
    let keys = h.store.keys().clone();
    let mut conn = server.connection();
    let layout: String = redis::cmd("GET")
        .arg(keys.layout())
        .query(&mut conn)
        .unwrap();
    assert_eq!(layout, "2", "a connecting store claims its prefix");
    redis::cmd("SET")
        .arg(keys.layout())
        .arg("1")
        .query::<()>(&mut conn)
        .unwrap();
    let error = RedisStore::connect(RedisStoreOptions::new(&server.url(), keys))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("layout"), "{error}");
}

// Redis only: a body that is not UTF-8 must be dead-lettered like any corrupt body.
#[tokio::test]
async fn redis_non_utf8_body_is_dead_lettered_not_an_error() {
    let h = Harness::new(Kind::Redis, 1).await;
    let q = queue("delivery");
    h.store
        .enqueue(&q, &[Envelope::new("t", json!(1), h.store.now_ms())])
        .await
        .unwrap();
    let keys = h.store.keys();
    let mut conn = h.server.as_ref().unwrap().connection();
    redis::pipe()
        .hset(keys.bodies(0), "bad", &b"\xff\xfe{"[..])
        .ignore()
        .lpush(keys.queue(0, &q), "bad")
        .ignore()
        .query::<()>(&mut conn)
        .unwrap();
    let lease = h.store.lease(&q, &w("w"), 10, LEASE).await;
    let in_flight = figures(&h).await.1;
    let lease = lease.unwrap_or_else(|e| panic!("lease failed: {e}; in_flight now {in_flight}"));
    assert_eq!(lease.items.len(), 1);
    assert_eq!(lease.dead_lettered_corrupt, vec![EnvelopeId("bad".into())]);
}

// Redis only: a DLQ page whose entry has a non-UTF-8 body must still page (raw kept as Err).
#[tokio::test]
async fn redis_non_utf8_body_in_the_dlq_still_pages() {
    let h = Harness::new(Kind::Redis, 1).await;
    let q = queue("delivery");
    let ids = fill_dlq(&h, 2, "acme", "timeout").await;
    let mut conn = h.server.as_ref().unwrap().connection();
    redis::cmd("HSET")
        .arg(h.store.keys().bodies(0))
        .arg(ids[0].as_str())
        .arg(&b"\xff"[..])
        .query::<()>(&mut conn)
        .unwrap();
    let page = h
        .store
        .failed_page(
            &q,
            FailedSet::Dlq,
            &DlqFilter::default(),
            &DlqCursor::start(),
            10,
        )
        .await;
    let page = page.unwrap_or_else(|e| panic!("page failed: {e}"));
    assert_eq!(page.entries.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_dedup_records_expire_in_redis_a_grace_period_after_their_window() {
    let h = Harness::new(Kind::Redis, 3).await;
    let hold = Duration::from_secs(30);
    let window = Duration::from_secs(3600);
    let grace_ms = 60_000;
    let keys: Vec<String> = (0..5).map(|i| format!("k-{i}")).collect();
    let claims = h.store.dedup_claim("w", &keys, hold, window).await.unwrap();
    let DedupClaim::Claimed(ticket) = claims[0] else {
        panic!("claimed: {claims:?}");
    };
    h.store
        .dedup_finish(
            "w",
            &[
                (keys[0].clone(), DedupFinish::Done(ticket)),
                (keys[1].clone(), DedupFinish::Release),
            ],
        )
        .await
        .unwrap();
    let mut conn = h.server.as_ref().unwrap().connection();
    let pttl = |conn: &mut redis::Connection, key: &str| -> i64 {
        redis::cmd("PTTL").arg(key).query(conn).unwrap()
    };
    // Redis forgets records by itself; the grace covers clock skew between workers and Redis.
    // A claim lives as long as the success it may become; its success is one bit of its
    // call's bitmap, which lives as long.
    let in_window = |ttl: i64| ttl > 3_600_000 && ttl <= 3_600_000 + grace_ms;
    for key in [&keys[0], &keys[2], &keys[3], &keys[4]] {
        let ttl = pttl(&mut conn, &h.store.keys().dedup_record(key));
        assert!(in_window(ttl), "{key}: {ttl}");
    }
    let released = pttl(&mut conn, &h.store.keys().dedup_record(&keys[1]));
    assert_eq!(released, -2, "a released claim is gone");
    let bitmaps: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*dedupok:*", h.store.keys().prefix()))
        .query(&mut conn)
        .unwrap();
    assert_eq!(bitmaps.len(), 1, "{bitmaps:?}");
    let ttl = pttl(&mut conn, &bitmaps[0]);
    assert!(in_window(ttl), "bitmap: {ttl}");
    // Records live in their partition's slot.
    let partitions: HashSet<u16> = (0..50)
        .map(|i| h.store.keys().dedup_partition(&format!("spread-{i}")))
        .collect();
    assert_eq!(partitions.len(), 3);
    assert!(
        h.store
            .keys()
            .dedup_record("k-1")
            .contains(&format!("{{p{}}}", h.store.keys().dedup_partition("k-1")))
    );
}

/// A one-partition Redis store at `url` on a manual clock, for the ingest cases.
async fn ingest_store(url: &str) -> RedisStore {
    common::redis_store(url, 1, ward::engine::clock::ManualClock::new(common::T0)).await
}

/// Ingest limits no test here reaches, but the queue cap.
fn no_limits(queue_cap: u64) -> IngestLimits<'static> {
    IngestLimits {
        limiter: "ingest",
        rate_limit: RateLimit::per_second(1_000_000, 1_000_000),
        queue_cap,
    }
}

/// Ingest requests that arrive together for a partition share one script call on Redis
/// (group commit): 200 at once take far fewer calls than 200, and every one is stored.
#[tokio::test]
async fn concurrent_ingest_requests_share_script_calls() {
    let server = common::RedisServer::start();
    let store = ingest_store(&server.url()).await;
    let q = queue("ingest");
    let limits = no_limits(1_000_000);
    let requests: Vec<[Envelope; 1]> = (0..200)
        .map(|i| [Envelope::new("acme", json!({ "i": i }), common::T0)])
        .collect();
    let mut conn = server.connection();
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut conn)
        .unwrap();
    let outcomes =
        futures::future::join_all(requests.iter().map(|r| store.ingest(&q, &limits, r))).await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Ok(IngestOutcome::Accepted { added: 1, .. }))),
        "{outcomes:?}"
    );
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut conn)
        .unwrap();
    let calls: usize = stats
        .lines()
        .filter(|line| line.starts_with("cmdstat_evalsha:") || line.starts_with("cmdstat_eval:"))
        .filter_map(|line| {
            line.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .sum();
    assert!(
        (1..=20).contains(&calls),
        "{calls} script calls for 200 requests:\n{stats}"
    );
    let depth = store.stats(std::slice::from_ref(&q)).await.unwrap().queues[0].depth;
    assert_eq!(depth, 200);
}

/// On a cluster an alert is accepted once its primary's replica has it too: while the replica
/// is frozen (connected, not answering) ingest is refused as not replicated, and once it is
/// back ingest is accepted again with nothing in between lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_ingest_is_refused_while_the_replica_does_not_confirm() {
    let cluster = tokio::task::spawn_blocking(common::RedisCluster::start)
        .await
        .unwrap();
    let store = ingest_store(&cluster.url()).await;
    let q = queue("ingest");
    let limits = no_limits(1_000);
    let alert = |i: u32| [Envelope::new("acme", json!({ "i": i }), common::T0)];
    // The replica is connected before the store first asks how many its primary has.
    let primary = cluster.primary_for(&store.keys().queue(0, &q));
    let replica = cluster.replica_of(primary);
    let first = store.ingest(&q, &limits, &alert(0)).await.unwrap();
    assert!(
        matches!(first, IngestOutcome::Accepted { added: 1, .. }),
        "{first:?}"
    );

    cluster.pause(replica);
    let refused = store.ingest(&q, &limits, &alert(1)).await;
    cluster.resume(replica);
    assert!(
        matches!(
            refused,
            Err(StoreError::NotReplicated {
                acked: 0,
                wanted: 1,
                ..
            })
        ),
        "{refused:?}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut i = 2;
    loop {
        match store.ingest(&q, &limits, &alert(i)).await {
            Ok(IngestOutcome::Accepted { added: 1, .. }) => break,
            other => assert!(
                std::time::Instant::now() < deadline,
                "ingest not accepted again after the replica came back: {other:?}"
            ),
        }
        i += 1;
    }
    // The refused alert stayed on the primary (a retry may deliver it twice, never zero times).
    let stats = store.stats(std::slice::from_ref(&q)).await.unwrap();
    assert_eq!(stats.queues[0].depth, u64::from(i) + 1, "{stats:?}");
}

/// A Redis Cluster moves the slot of partition 0 to another primary, key by key, between a
/// consumer's leases and acks: the client follows ASK and MOVED, a script whose keys are split
/// between the two nodes mid-move is refused whole (TRYAGAIN) and tried again later, and every
/// item is settled exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_slot_moving_under_a_consumer_loses_nothing() {
    let cluster = tokio::task::spawn_blocking(common::RedisCluster::start)
        .await
        .unwrap();
    let clock = ward::engine::clock::ManualClock::new(common::T0);
    let store = common::redis_store(&cluster.url(), 1, clock).await;
    let q = queue("delivery");
    let envelopes: Vec<Envelope> = (0..2_000)
        .map(|i| Envelope::new("acme", json!({ "i": i }), common::T0))
        .collect();
    let expected: HashSet<EnvelopeId> = envelopes.iter().map(|e| e.id.clone()).collect();
    for chunk in envelopes.chunks(500) {
        store.enqueue(&q, chunk).await.unwrap();
    }
    let mut acked = HashSet::new();
    let mut unacked: Vec<Receipt> = Vec::new();
    let mut failures = 0;
    // A few leases and acks: the calls that fail mid-move leave their receipts for later.
    let mut consume = async |rounds: usize, acked: &mut HashSet<EnvelopeId>| {
        for _ in 0..rounds {
            match store.lease(&q, &w("mover"), 20, LEASE).await {
                Ok(lease) => unacked.extend(lease.items.into_iter().map(|i| i.receipt)),
                Err(_) => failures += 1,
            }
            match store.ack(&q, &unacked).await {
                Ok(outcome) => {
                    assert!(outcome.stale.is_empty(), "{:?}", outcome.stale);
                    for receipt in unacked.drain(..) {
                        assert!(acked.insert(receipt.id), "leased twice");
                    }
                }
                Err(_) => failures += 1,
            }
        }
    };
    consume(20, &mut acked).await;
    let moving = cluster.begin_slot_move(&store.keys().queue(0, &q));
    while moving.migrate_one(&cluster) {
        consume(5, &mut acked).await;
    }
    moving.finish(&cluster);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while acked.len() < expected.len() {
        assert!(
            std::time::Instant::now() < deadline,
            "not drained: {} acked",
            acked.len()
        );
        consume(1, &mut acked).await;
    }
    assert_eq!(acked, expected);
    let stats = store.stats(std::slice::from_ref(&q)).await.unwrap();
    assert_eq!((stats.queues[0].depth, stats.queues[0].in_flight), (0, 0));
    eprintln!(
        "slot {} moved from {} to {} under load; {failures} calls refused mid-move and retried",
        moving.slot, moving.from, moving.to
    );
}

/// A single-server URL that names a cluster node is refused with what to write instead, not
/// with the first MOVED.
#[tokio::test]
async fn a_cluster_node_named_as_a_single_server_is_refused_with_the_cluster_url() {
    let cluster = tokio::task::spawn_blocking(common::RedisCluster::shared)
        .await
        .unwrap();
    let url = format!("redis://127.0.0.1:{}/", cluster.ports()[0]);
    let error = RedisStore::connect(RedisStoreOptions::new(
        &url,
        ward::store::KeySchema::ward("ward", 1),
    ))
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("redis+cluster://"), "{error}");
}
