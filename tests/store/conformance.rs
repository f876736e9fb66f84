//! One conformance suite, the same bodies against the memory store and a real redis-server, with
//! one and with three partitions. A behaviour that is not here does not exist.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

use crate::common;

use std::collections::HashSet;
use std::time::Duration;

use common::{Harness, Kind, T0, fill_dlq, fill_dlq_with, queue};
use serde_json::json;
use ward::engine::breaker::{Breaker, BreakerConfig, BreakerState, CallOutcome};
use ward::engine::ratelimit::RateLimit;
use ward::model::{
    AlertStatus, AuditRecord, Envelope, EnvelopeId, FailedAttempt, FailureInfo, Flag, FlagState,
    LabelMatcher, MatchOp, SeenAlert, Silence, SilenceKind, WorkerId,
};
use ward::store::{
    DECODE_ERROR_CLASS, DeadLetterRequest, DedupClaim, DedupFinish, DedupTicket, DlqCursor,
    DlqFilter, DlqGroup, DlqScope, FailedSet, ForwardRequest, GROUP_BUCKET_MS, GROUP_SCAN_BUDGET,
    Hold, IngestLimits, IngestOutcome, MAX_BATCH, MAX_INGEST, ReplayOptions, RetryRequest,
    StoreError, TEXT_SCAN_BUDGET, Update, cap_share, ingest_partition, merge_groups,
    partition_share, update_breaker,
};

const LEASE: Duration = Duration::from_secs(30);

fn worker(name: &str) -> WorkerId {
    WorkerId::new(name)
}

fn envelopes(h: &Harness, n: usize, tenant: &str) -> Vec<Envelope> {
    (0..n)
        .map(|i| Envelope::new(tenant, json!({ "n": i }), h.clock_now()))
        .collect()
}

trait Now {
    fn clock_now(&self) -> i64;
}
impl Now for Harness {
    fn clock_now(&self) -> i64 {
        self.store.now_ms()
    }
}

async fn enqueue_lease_ack_in_fifo_order(h: Harness) {
    let q = queue("delivery");
    let batch = envelopes(&h, 5, "acme");
    h.store.enqueue(&q, &batch).await.unwrap();
    let stats = h.store.stats(std::slice::from_ref(&q)).await.unwrap();
    assert_eq!(stats.queues[0].depth, 5);

    let mut seen = Vec::new();
    loop {
        let lease = h.store.lease(&q, &worker("w1"), 2, LEASE).await.unwrap();
        if lease.items.is_empty() {
            break;
        }
        assert!(lease.items.len() <= 2);
        assert_eq!(lease.deadline_ms, h.clock_now() + 30_000);
        for item in &lease.items {
            assert_eq!(item.envelope.attempts, 0);
            assert_eq!(item.envelope.tenant, "acme");
        }
        let receipts: Vec<_> = lease.items.iter().map(|i| i.receipt.clone()).collect();
        seen.extend(lease.items.into_iter().map(|i| i.envelope));
        let stats = h.store.stats(std::slice::from_ref(&q)).await.unwrap();
        assert_eq!(stats.queues[0].in_flight, receipts.len() as u64);
        let outcome = h.store.ack(&q, &receipts).await.unwrap();
        assert_eq!(outcome.applied, receipts.len());
        assert!(outcome.stale.is_empty());
    }
    let ids: HashSet<_> = seen.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids.len(), 5, "every envelope leased exactly once");
    if h.store.keys().partitions() == 1 {
        assert_eq!(seen, batch, "one partition is strictly first in, first out");
    }
    let stats = h.store.stats(&[q]).await.unwrap();
    assert_eq!(stats.queues[0].depth + stats.queues[0].in_flight, 0);
}

async fn batches_over_the_limit_are_refused(h: Harness) {
    let q = queue("delivery");
    let too_many = envelopes(&h, MAX_BATCH + 1, "t");
    let err = h.store.enqueue(&q, &too_many).await.unwrap_err();
    assert!(
        matches!(err, StoreError::BatchTooLarge { got: 501, max: 500 }),
        "{err}"
    );
    let err = h
        .store
        .lease(&q, &worker("w"), MAX_BATCH + 1, LEASE)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::BatchTooLarge { .. }));
    let options = ReplayOptions {
        max_items: MAX_BATCH + 1,
        ..ReplayOptions::default()
    };
    let scope = DlqScope::Filter {
        filter: DlqFilter::default(),
        cursor: DlqCursor::start(),
    };
    let err = h
        .store
        .replay(&q, FailedSet::Dlq, &scope, options)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::BatchTooLarge { .. }));
    let stats = h.store.stats(&[q]).await.unwrap();
    assert_eq!(stats.queues[0].depth, 0, "a refused batch writes nothing");
}

async fn an_expired_lease_is_recovered_and_its_old_receipt_is_stale(h: Harness) {
    let q = queue("delivery");
    h.store.enqueue(&q, &envelopes(&h, 1, "t")).await.unwrap();
    let first = h.store.lease(&q, &worker("slow"), 1, LEASE).await.unwrap();
    let old = first.items[0].receipt.clone();

    h.clock.advance(Duration::from_secs(29));
    assert_eq!(
        h.store.recover_expired(&q, 100).await.unwrap(),
        0,
        "not expired yet"
    );
    h.clock.advance(Duration::from_secs(1));
    assert_eq!(h.store.recover_expired(&q, 100).await.unwrap(), 1);

    let second = h.store.lease(&q, &worker("fast"), 1, LEASE).await.unwrap();
    assert_eq!(second.items.len(), 1);
    assert_eq!(second.items[0].envelope.id, old.id);
    assert_eq!(
        second.items[0].envelope.attempts, 1,
        "a recovered lease counts an attempt"
    );

    let stale = h.store.ack(&q, std::slice::from_ref(&old)).await.unwrap();
    assert_eq!(stale.applied, 0);
    assert_eq!(stale.stale, vec![old.id.clone()]);
    let stale = h
        .store
        .extend(&q, std::slice::from_ref(&old), LEASE)
        .await
        .unwrap();
    assert_eq!(stale.stale.len(), 1, "the old holder cannot extend either");

    let fresh = h
        .store
        .ack(&q, &[second.items[0].receipt.clone()])
        .await
        .unwrap();
    assert_eq!(fresh.applied, 1);
}

async fn recovered_items_go_to_the_front_of_the_queue(h: Harness) {
    let q = queue("delivery");
    let batch = envelopes(&h, 3, "t");
    h.store.enqueue(&q, &batch[..1]).await.unwrap();
    let lease = h.store.lease(&q, &worker("w"), 1, LEASE).await.unwrap();
    h.store.enqueue(&q, &batch[1..]).await.unwrap();
    h.clock.advance(LEASE);
    assert_eq!(h.store.recover_expired(&q, 10).await.unwrap(), 1);
    if h.store.keys().partitions() == 1 {
        let next = h.store.lease(&q, &worker("w"), 1, LEASE).await.unwrap();
        assert_eq!(next.items[0].envelope.id, lease.items[0].envelope.id);
    }
}

async fn a_heartbeat_extends_the_lease(h: Harness) {
    let q = queue("delivery");
    h.store.enqueue(&q, &envelopes(&h, 2, "t")).await.unwrap();
    let lease = h
        .store
        .lease(&q, &worker("w"), 2, Duration::from_secs(10))
        .await
        .unwrap();
    let receipts: Vec<_> = lease.items.iter().map(|i| i.receipt.clone()).collect();
    h.clock.advance(Duration::from_secs(8));
    let outcome = h
        .store
        .extend(&q, &receipts[..1], Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(outcome.applied, 1);
    h.clock.advance(Duration::from_secs(8));
    assert_eq!(
        h.store.recover_expired(&q, 10).await.unwrap(),
        1,
        "only the unextended one"
    );
    assert_eq!(h.store.ack(&q, &receipts[..1]).await.unwrap().applied, 1);
}

async fn a_retry_waits_until_due_and_carries_its_error(h: Harness) {
    let q = queue("delivery");
    h.store.enqueue(&q, &envelopes(&h, 1, "t")).await.unwrap();
    let lease = h.store.lease(&q, &worker("w"), 1, LEASE).await.unwrap();
    let item = lease.items.into_iter().next().unwrap();
    let mut envelope = item.envelope.clone();
    envelope.last_error = Some("HTTP 503".to_owned());
    envelope.first_failure_ms = Some(h.clock_now());
    let due = h.clock_now() + 5_000;
    let outcome = h
        .store
        .schedule_retry(
            &q,
            &[RetryRequest {
                receipt: item.receipt.clone(),
                envelope,
                due_at_ms: due,
            }],
        )
        .await
        .unwrap();
    assert_eq!(outcome.applied, 1);
    let stats = h.store.stats(std::slice::from_ref(&q)).await.unwrap();
    assert_eq!(
        (stats.queues[0].scheduled, stats.queues[0].in_flight),
        (1, 0)
    );

    assert_eq!(h.store.promote_due(&q, 100).await.unwrap(), 0);
    h.clock.advance(Duration::from_millis(4_999));
    assert_eq!(h.store.promote_due(&q, 100).await.unwrap(), 0);
    h.clock.advance(Duration::from_millis(1));
    assert_eq!(h.store.promote_due(&q, 100).await.unwrap(), 1);

    let again = h.store.lease(&q, &worker("w"), 1, LEASE).await.unwrap();
    let envelope = &again.items[0].envelope;
    assert_eq!(envelope.attempts, 1);
    assert_eq!(envelope.last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(envelope.first_failure_ms, Some(T0));
    // The fence also guards retries: the first receipt is spent.
    let stale = h
        .store
        .schedule_retry(
            &q,
            &[RetryRequest {
                receipt: item.receipt,
                envelope: envelope.clone(),
                due_at_ms: due,
            }],
        )
        .await
        .unwrap();
    assert_eq!(stale.stale.len(), 1);
}

async fn scheduled_work_is_summarised_by_channel_with_its_due_times(h: Harness) {
    let q = queue("delivery");
    let job = |channel: &str, label: &str| {
        Envelope::new(
            "t",
            json!({
                "alert": { "labels": { "alertname": "Disk", "channel": label } },
                "channel": channel,
                "retry_policy": "default"
            }),
            h.clock_now(),
        )
    };
    let jobs = vec![
        job("slack-ops", "#ops"),
        job("slack-ops", "#ops"),
        job("slack-ops", "#db"),
        job("pager", "#ops"),
        job("pager", "#ops"),
    ];
    h.store.enqueue(&q, &jobs).await.unwrap();
    let mut leased = Vec::new();
    while leased.len() < jobs.len() {
        leased.extend(
            h.store
                .lease(&q, &worker("w"), 5, LEASE)
                .await
                .unwrap()
                .items,
        );
    }
    let now = h.clock_now();
    for item in &leased {
        let slack = item.envelope.payload.as_str().contains("slack-ops");
        if slack {
            let due = now + 5_000 + i64::from(item.envelope.id.0.as_bytes()[25] % 3) * 1_000;
            let retry = RetryRequest {
                receipt: item.receipt.clone(),
                envelope: item.envelope.clone(),
                due_at_ms: due,
            };
            h.store.schedule_retry(&q, &[retry]).await.unwrap();
        } else {
            h.store
                .defer(&q, std::slice::from_ref(&item.receipt), now + 1_000)
                .await
                .unwrap();
        }
    }
    h.clock.advance(Duration::from_secs(2));
    let stats = h.store.stats(std::slice::from_ref(&q)).await.unwrap();
    let summary = &stats.queues[0].waiting_retry;
    assert_eq!(stats.queues[0].scheduled, 5);
    assert_eq!(summary.read, 5, "every entry read: the figures are exact");
    assert_eq!(
        summary.next_due_ms,
        Some(now + 1_000),
        "already due counts as due"
    );
    assert_eq!(summary.retrying, 3, "the deferred ones never failed");
    assert_eq!(summary.oldest_age_ms, Some(2_000));
    let channels: Vec<(&str, u64, u64)> = summary
        .channels
        .iter()
        .map(|c| (c.channel.as_str(), c.count, c.retrying))
        .collect();
    assert_eq!(
        channels,
        [("slack-ops", 3, 3), ("pager", 2, 0)],
        "the job's channel, not a label named channel"
    );
    assert_eq!(summary.channels[1].next_due_ms, now + 1_000);
    assert!(summary.channels[0].next_due_ms >= now + 5_000);
    // The entries themselves, due soonest first in each partition, with their counters.
    let entries = h.store.scheduled_entries(&q, 100).await.unwrap();
    let mut ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
    ids.sort_unstable();
    let mut want: Vec<&str> = leased.iter().map(|i| i.envelope.id.as_str()).collect();
    want.sort_unstable();
    assert_eq!(ids, want);
    let one = h.store.scheduled_entries(&q, 1).await.unwrap();
    let partitions = usize::from(h.store.keys().partitions());
    assert!(!one.is_empty() && one.len() <= partitions);
    if partitions == 1 {
        assert!(
            one[0].payload.as_str().contains("pager"),
            "the due-soonest first"
        );
    }
}

async fn dead_letters_keep_their_error_metadata(h: Harness) {
    let q = queue("delivery");
    h.store
        .enqueue(&q, &envelopes(&h, 1, "acme"))
        .await
        .unwrap();
    let item = h
        .store
        .lease(&q, &worker("w"), 1, LEASE)
        .await
        .unwrap()
        .items
        .remove(0);
    let mut envelope = item.envelope.clone();
    envelope.first_failure_ms = Some(T0 - 60_000);
    h.clock.advance(Duration::from_secs(5));
    let outcome = h
        .store
        .dead_letter(
            &q,
            &[DeadLetterRequest {
                receipt: item.receipt.clone(),
                envelope,
                failure: FailureInfo::new("http_404", "channel_not_found", "deliver"),
            }],
        )
        .await
        .unwrap();
    assert_eq!(outcome.applied, 1);

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
    assert_eq!(page.entries.len(), 1);
    assert!(page.next.is_none());
    let entry = &page.entries[0];
    assert_eq!(entry.meta.error_class, "http_404");
    assert_eq!(entry.meta.error_message, "channel_not_found");
    assert_eq!(entry.meta.stage, "deliver");
    assert_eq!(entry.meta.tenant, "acme");
    assert_eq!(entry.meta.first_failure_ms, T0 - 60_000);
    assert_eq!(entry.meta.last_failure_ms, T0 + 5_000);
    assert_eq!(entry.envelope.as_ref().unwrap().id, item.envelope.id);
    let stats = h.store.stats(std::slice::from_ref(&q)).await.unwrap();
    assert_eq!((stats.queues[0].dlq, stats.queues[0].in_flight), (1, 0));
    // A spent receipt cannot dead-letter twice.
    let again = h
        .store
        .dead_letter(
            &q,
            &[DeadLetterRequest {
                receipt: item.receipt,
                envelope: item.envelope,
                failure: FailureInfo::new("x", "y", "z"),
            }],
        )
        .await
        .unwrap();
    assert_eq!(again.stale.len(), 1);
}

async fn dlq_filters_count_and_page_server_side(h: Harness) {
    fill_dlq(&h, "delivery", 30, "acme", "timeout", "deliver").await;
    let mid = h.clock_now();
    fill_dlq(&h, "delivery", 20, "globex", "http_500", "deliver").await;
    fill_dlq(&h, "delivery", 10, "acme", "decode", "route").await;
    let q = queue("delivery");
    let count = |filter: DlqFilter| {
        let store = h.store.clone();
        let q = q.clone();
        async move {
            store
                .failed_count(&q, FailedSet::Dlq, &filter)
                .await
                .unwrap()
        }
    };
    assert_eq!(count(DlqFilter::default()).await, 60);
    assert_eq!(
        count(DlqFilter {
            error_class: Some("timeout".into()),
            ..DlqFilter::default()
        })
        .await,
        30
    );
    assert_eq!(
        count(DlqFilter {
            tenant: Some("acme".into()),
            ..DlqFilter::default()
        })
        .await,
        40
    );
    assert_eq!(
        count(DlqFilter {
            stage: Some("route".into()),
            ..DlqFilter::default()
        })
        .await,
        10
    );
    assert_eq!(
        count(DlqFilter {
            failed_before_ms: Some(mid),
            ..DlqFilter::default()
        })
        .await,
        30
    );
    assert_eq!(
        count(DlqFilter {
            failed_at_or_after_ms: Some(mid),
            ..DlqFilter::default()
        })
        .await,
        30
    );
    assert_eq!(
        count(DlqFilter {
            tenant: Some("acme".into()),
            failed_at_or_after_ms: Some(mid),
            ..DlqFilter::default()
        })
        .await,
        10
    );
    assert_eq!(
        count(DlqFilter {
            error_class: Some("nope".into()),
            ..DlqFilter::default()
        })
        .await,
        0
    );

    // Paging by cursor visits every match once, oldest first.
    let filter = DlqFilter {
        tenant: Some("acme".into()),
        ..DlqFilter::default()
    };
    let mut cursor = DlqCursor::start();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = h
            .store
            .failed_page(&q, FailedSet::Dlq, &filter, &cursor, 7)
            .await
            .unwrap();
        assert!(page.entries.len() <= 7);
        pages += 1;
        seen.extend(page.entries.into_iter().map(|e| e.meta));
        match page.next {
            Some(next) => cursor = next,
            None => break,
        }
        assert!(pages < 100, "paging must terminate");
    }
    assert_eq!(seen.len(), 40);
    assert!(seen.iter().all(|m| m.tenant == "acme"));
    let unique: HashSet<_> = seen.iter().map(|m| m.id.clone()).collect();
    assert_eq!(unique.len(), 40);
    if h.store.keys().partitions() == 1 {
        assert!(seen.windows(2).all(|w| w[0].key < w[1].key), "oldest first");
    }
}

async fn replay_by_ids_returns_entries_and_the_poison_guard_stops_repeats(h: Harness) {
    let q = queue("delivery");
    let ids = fill_dlq(&h, "delivery", 3, "t", "timeout", "deliver").await;
    let options = ReplayOptions {
        max_items: 10,
        max_replays: 1,
        reset_attempts: true,
    };

    let first = h
        .store
        .replay(&q, FailedSet::Dlq, &DlqScope::Ids(ids.clone()), options)
        .await
        .unwrap();
    assert_eq!((first.moved, first.poisoned), (3, 0));
    let again = h
        .store
        .replay(&q, FailedSet::Dlq, &DlqScope::Ids(ids.clone()), options)
        .await
        .unwrap();
    assert_eq!(
        again.touched(),
        0,
        "entries no longer in the DLQ are not replayed twice"
    );
    let stats = h.store.stats(std::slice::from_ref(&q)).await.unwrap();
    assert_eq!((stats.queues[0].depth, stats.queues[0].dlq), (3, 0));

    // They fail again and come back to the DLQ, carrying their replay count.
    let lease = h.store.lease(&q, &worker("w"), 10, LEASE).await.unwrap();
    assert!(lease.items.iter().all(|i| i.envelope.replays == 1));
    let requests: Vec<_> = lease
        .items
        .into_iter()
        .map(|i| DeadLetterRequest {
            receipt: i.receipt,
            envelope: i.envelope,
            failure: FailureInfo::new("timeout", "again", "deliver"),
        })
        .collect();
    h.store.dead_letter(&q, &requests).await.unwrap();
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
    assert!(page.entries.iter().all(|e| e.meta.replays == 1));

    let poisoned = h
        .store
        .replay(&q, FailedSet::Dlq, &DlqScope::Ids(ids.clone()), options)
        .await
        .unwrap();
    assert_eq!((poisoned.moved, poisoned.poisoned), (0, 3));
    let stats = h.store.stats(std::slice::from_ref(&q)).await.unwrap();
    assert_eq!(
        (
            stats.queues[0].depth,
            stats.queues[0].dlq,
            stats.queues[0].dead
        ),
        (0, 0, 3)
    );
    let dead = h
        .store
        .failed_page(
            &q,
            FailedSet::Dead,
            &DlqFilter::default(),
            &DlqCursor::start(),
            10,
        )
        .await
        .unwrap();
    assert_eq!(dead.entries.len(), 3);
    assert_eq!(dead.entries[0].meta.error_message, "again");

    // Dead entries stay dead under DLQ replay; only an explicit replay from the dead list moves them.
    let from_dlq = h
        .store
        .replay(&q, FailedSet::Dlq, &DlqScope::Ids(ids.clone()), options)
        .await
        .unwrap();
    assert_eq!(from_dlq.touched(), 0);
    let explicit = h
        .store
        .replay(&q, FailedSet::Dead, &DlqScope::Ids(ids), options)
        .await
        .unwrap();
    assert_eq!((explicit.moved, explicit.poisoned), (3, 0));
    let lease = h.store.lease(&q, &worker("w"), 10, LEASE).await.unwrap();
    assert_eq!(lease.items.len(), 3);
    assert!(
        lease.items.iter().all(|i| i.envelope.attempts == 0),
        "reset_attempts applied"
    );
}

async fn replay_by_filter_moves_bounded_batches_up_to_the_cutoff(h: Harness) {
    let q = queue("delivery");
    fill_dlq(&h, "delivery", 25, "acme", "timeout", "deliver").await;
    fill_dlq(&h, "delivery", 5, "acme", "http_404", "deliver").await;
    let cutoff = h.clock_now();
    let filter = DlqFilter {
        error_class: Some("timeout".into()),
        failed_before_ms: Some(cutoff),
        ..DlqFilter::default()
    };
    let options = ReplayOptions {
        max_items: 4,
        max_replays: 3,
        reset_attempts: false,
    };
    let mut cursor = DlqCursor::start();
    let mut moved = 0;
    let mut calls = 0;
    loop {
        let scope = DlqScope::Filter {
            filter: filter.clone(),
            cursor: cursor.clone(),
        };
        let batch = h
            .store
            .replay(&q, FailedSet::Dlq, &scope, options)
            .await
            .unwrap();
        assert!(batch.touched() <= 4, "one call moves at most max_items");
        moved += batch.moved;
        calls += 1;
        // Re-failures land after the cut-off and are never picked up again.
        let lease = h.store.lease(&q, &worker("w"), 10, LEASE).await.unwrap();
        h.clock.advance(Duration::from_millis(10));
        let requests: Vec<_> = lease
            .items
            .into_iter()
            .map(|i| DeadLetterRequest {
                receipt: i.receipt,
                envelope: i.envelope,
                failure: FailureInfo::new("timeout", "again", "deliver"),
            })
            .collect();
        h.store.dead_letter(&q, &requests).await.unwrap();
        match batch.next {
            Some(next) => cursor = next,
            None => break,
        }
        assert!(calls < 100);
    }
    assert_eq!(moved, 25);
    let stats = h.store.stats(std::slice::from_ref(&q)).await.unwrap();
    assert_eq!(
        stats.queues[0].dlq, 30,
        "every timeout re-failed once, the 404s untouched"
    );
    let after = DlqFilter {
        failed_at_or_after_ms: Some(cutoff),
        ..DlqFilter::default()
    };
    assert_eq!(
        h.store
            .failed_count(&q, FailedSet::Dlq, &after)
            .await
            .unwrap(),
        25
    );
}

async fn purge_by_ids_and_by_filter(h: Harness) {
    let q = queue("delivery");
    let ids = fill_dlq(&h, "delivery", 10, "acme", "timeout", "deliver").await;
    fill_dlq(&h, "delivery", 6, "globex", "http_500", "deliver").await;
    let purged = h
        .store
        .purge(&q, FailedSet::Dlq, &DlqScope::Ids(ids[..3].to_vec()), 100)
        .await
        .unwrap();
    assert_eq!(purged.moved, 3);
    let filter = DlqFilter {
        tenant: Some("globex".into()),
        ..DlqFilter::default()
    };
    let mut cursor = DlqCursor::start();
    let mut total = 0;
    loop {
        let scope = DlqScope::Filter {
            filter: filter.clone(),
            cursor: cursor.clone(),
        };
        let batch = h.store.purge(&q, FailedSet::Dlq, &scope, 2).await.unwrap();
        assert!(batch.moved <= 2);
        total += batch.moved;
        match batch.next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    assert_eq!(total, 6);
    let stats = h.store.stats(std::slice::from_ref(&q)).await.unwrap();
    assert_eq!(stats.queues[0].dlq, 7);
    // Purged entries are gone for good: replaying them finds nothing.
    let replayed = h
        .store
        .replay(
            &q,
            FailedSet::Dlq,
            &DlqScope::Ids(ids[..3].to_vec()),
            ReplayOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(replayed.touched(), 0);
}

async fn bury_moves_dlq_entries_to_the_dead_list(h: Harness) {
    let q = queue("delivery");
    let ids = fill_dlq(&h, "delivery", 8, "acme", "timeout", "deliver").await;
    fill_dlq(&h, "delivery", 5, "globex", "http_404", "deliver").await;
    let by_ids = h
        .store
        .bury(&q, &DlqScope::Ids(ids[..2].to_vec()), 100)
        .await
        .unwrap();
    assert_eq!(by_ids.moved, 2);
    let again = h
        .store
        .bury(&q, &DlqScope::Ids(ids[..2].to_vec()), 100)
        .await
        .unwrap();
    assert_eq!(again.moved, 0, "an entry already buried is not moved twice");
    let filter = DlqFilter {
        error_class: Some("http_404".into()),
        ..DlqFilter::default()
    };
    let (mut cursor, mut total) = (DlqCursor::start(), 0);
    loop {
        let scope = DlqScope::Filter {
            filter: filter.clone(),
            cursor: cursor.clone(),
        };
        let batch = h.store.bury(&q, &scope, 2).await.unwrap();
        assert!(batch.moved <= 2, "never more than the batch per call");
        total += batch.moved;
        match batch.next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    assert_eq!(total, 5);
    let stats = h.store.stats(std::slice::from_ref(&q)).await.unwrap();
    assert_eq!((stats.queues[0].dlq, stats.queues[0].dead), (6, 7));
    // Buried entries keep their metadata and can be read from the dead list.
    let dead = h
        .store
        .failed_count(&q, FailedSet::Dead, &filter)
        .await
        .unwrap();
    assert_eq!(dead, 5);
    // A DLQ replay no longer finds them.
    let replayed = h
        .store
        .replay(
            &q,
            FailedSet::Dlq,
            &DlqScope::Ids(ids[..2].to_vec()),
            ReplayOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(replayed.touched(), 0);
}

async fn listed_entries_are_read_only_while_still_in_their_set(h: Harness) {
    let q = queue("delivery");
    let ids = fill_dlq(&h, "delivery", 6, "acme", "timeout", "deliver").await;
    let missing = ward::model::EnvelopeId("01NOSUCHENTRY0000000000000".to_owned());
    let listed = vec![
        ids[4].clone(),
        missing,
        ids[1].clone(),
        ids[4].clone(),
        ids[0].clone(),
    ];
    let found = h
        .store
        .failed_entries(&q, FailedSet::Dlq, &listed)
        .await
        .unwrap();
    let found_ids: Vec<&str> = found.iter().map(|e| e.meta.id.0.as_str()).collect();
    assert_eq!(
        found_ids,
        [ids[4].0.as_str(), ids[1].0.as_str(), ids[0].0.as_str()],
        "in the order listed, once each"
    );
    assert_eq!(found[0].meta.error_class, "timeout");
    assert!(found[0].envelope.is_ok(), "with its envelope");
    h.store
        .bury(&q, &DlqScope::Ids(vec![ids[1].clone()]), 10)
        .await
        .unwrap();
    let found = h
        .store
        .failed_entries(&q, FailedSet::Dlq, &listed)
        .await
        .unwrap();
    assert_eq!(found.len(), 2, "a buried entry is no longer in the DLQ");
    let dead = h
        .store
        .failed_entries(&q, FailedSet::Dead, &listed)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].meta.id, ids[1]);
    assert!(
        h.store
            .failed_entries(&q, FailedSet::Dlq, &[])
            .await
            .unwrap()
            .is_empty()
    );
}

async fn dlq_entries_keep_their_channel_and_filter_by_it(h: Harness) {
    let q = queue("delivery");
    let failure = |channel: &str| FailureInfo::new("http_500", "boom", "deliver").on(channel);
    fill_dlq_with(&h, "delivery", 7, "acme", &failure("slack-ops")).await;
    fill_dlq_with(&h, "delivery", 4, "acme", &failure("smtp")).await;
    let on = |channel: &str| DlqFilter {
        channel: Some(channel.to_owned()),
        ..DlqFilter::default()
    };
    assert_eq!(
        h.store
            .failed_count(&q, FailedSet::Dlq, &on("slack-ops"))
            .await
            .unwrap(),
        7
    );
    assert_eq!(
        h.store
            .failed_count(&q, FailedSet::Dlq, &on("smtp"))
            .await
            .unwrap(),
        4
    );
    let page = h
        .store
        .failed_page(&q, FailedSet::Dlq, &on("smtp"), &DlqCursor::start(), 10)
        .await
        .unwrap();
    assert_eq!(page.entries.len(), 4);
    assert!(page.entries.iter().all(|e| e.meta.channel == "smtp"));
    let (mut cursor, mut replayed) = (DlqCursor::start(), 0);
    loop {
        let scope = DlqScope::Filter {
            filter: on("smtp"),
            cursor: cursor.clone(),
        };
        let batch = h
            .store
            .replay(&q, FailedSet::Dlq, &scope, ReplayOptions::default())
            .await
            .unwrap();
        replayed += batch.moved;
        match batch.next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    assert_eq!(replayed, 4);
    assert_eq!(
        h.store
            .failed_count(&q, FailedSet::Dlq, &DlqFilter::default())
            .await
            .unwrap(),
        7
    );
}

async fn corrupt_envelopes_go_to_the_dlq_as_decode_errors(h: Harness) {
    let q = queue("delivery");
    h.store.enqueue(&q, &envelopes(&h, 1, "t")).await.unwrap();
    h.write_raw(0, &q, "hand-written-1", "{not json");
    h.write_raw(0, &q, "hand-written-2", r#"{"id":"x"}"#);
    let lease = h.store.lease(&q, &worker("w"), 10, LEASE).await.unwrap();
    assert_eq!(lease.items.len(), 1, "the good envelope is still delivered");
    let mut corrupt: Vec<_> = lease
        .dead_lettered_corrupt
        .iter()
        .map(|id| id.0.clone())
        .collect();
    corrupt.sort();
    assert_eq!(corrupt, ["hand-written-1", "hand-written-2"]);

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
    assert_eq!(page.entries.len(), 2);
    for entry in &page.entries {
        assert_eq!(entry.meta.error_class, DECODE_ERROR_CLASS);
        assert!(
            entry.envelope.is_err(),
            "the raw text is kept, not replaced"
        );
    }
    let raw: Vec<_> = page
        .entries
        .iter()
        .map(|e| e.envelope.clone().unwrap_err())
        .collect();
    assert!(
        raw.contains(&"{not json".to_owned()),
        "nothing lost: {raw:?}"
    );
    let stats = h.store.stats(&[q]).await.unwrap();
    assert_eq!(
        (
            stats.queues[0].dlq,
            stats.queues[0].in_flight,
            stats.queues[0].depth
        ),
        (2, 1, 0)
    );
}

async fn stats_report_every_figure_and_the_oldest_age(h: Harness) {
    let q = queue("delivery");
    let other = queue("ingest");
    h.store.enqueue(&q, &envelopes(&h, 4, "t")).await.unwrap();
    h.clock.advance(Duration::from_secs(90));
    h.store.enqueue(&q, &envelopes(&h, 2, "t")).await.unwrap();
    let lease = h.store.lease(&q, &worker("w"), 1, LEASE).await.unwrap();
    let item = lease.items.into_iter().next().unwrap();
    h.store
        .schedule_retry(
            &q,
            &[RetryRequest {
                receipt: item.receipt,
                envelope: item.envelope,
                due_at_ms: h.clock_now() + 1000,
            }],
        )
        .await
        .unwrap();
    h.store.lease(&q, &worker("w"), 1, LEASE).await.unwrap();
    h.clock.advance(Duration::from_secs(10));
    let stats = h.store.stats(&[q.clone(), other.clone()]).await.unwrap();
    let s = &stats.queues[0];
    assert_eq!(stats.read_at_ms, h.clock_now());
    assert_eq!(
        (s.depth, s.in_flight, s.scheduled, s.dlq, s.dead),
        (4, 1, 1, 0, 0)
    );
    assert_eq!(
        s.oldest_age_ms,
        Some(100_000),
        "oldest waiting item was created 100 s ago"
    );
    assert_eq!(stats.queues[1].queue, other);
    assert_eq!(
        (stats.queues[1].depth, stats.queues[1].oldest_age_ms),
        (0, None)
    );
}

async fn flags_are_shared_and_announced(h: Harness) {
    let mut updates = h.store.subscribe().await.unwrap();
    let state = FlagState {
        value: "on".into(),
        owner: "ops@host".into(),
        reason: "incident 42".into(),
        set_at_ms: T0,
        expires_at_ms: Some(T0 + 3_600_000),
    };
    h.store
        .set_flag(&Flag::EmergencyStop(None), Some(&state))
        .await
        .unwrap();
    h.store
        .set_flag(&Flag::EmergencyStop(Some("slack".into())), Some(&state))
        .await
        .unwrap();
    let flags = h.store.flags().await.unwrap();
    assert_eq!(flags.len(), 2);
    assert_eq!(flags[0], ("emergency_stop".to_owned(), state.clone()));
    assert_eq!(flags[1].0, "emergency_stop:slack");
    assert!(!state.is_expired(T0) && state.is_expired(T0 + 3_600_000));
    let got = tokio::time::timeout(Duration::from_secs(5), updates.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, Update::Flag("emergency_stop".into()));
    h.store
        .set_flag(&Flag::EmergencyStop(None), None)
        .await
        .unwrap();
    assert_eq!(h.store.flags().await.unwrap().len(), 1);
    let stats = h.store.stats(&[]).await.unwrap();
    assert_eq!(
        stats.flags.len(),
        1,
        "stats carry the flags in the same round trip"
    );
}

async fn dynamic_config_round_trips_and_announces(h: Harness) {
    let mut updates = h.store.subscribe().await.unwrap();
    h.store
        .config_set("shed_threshold", Some("2000"))
        .await
        .unwrap();
    h.store
        .config_set("warn_threshold", Some("1000"))
        .await
        .unwrap();
    assert_eq!(
        h.store
            .config_get("shed_threshold")
            .await
            .unwrap()
            .as_deref(),
        Some("2000")
    );
    assert_eq!(h.store.config_get("missing").await.unwrap(), None);
    assert_eq!(
        h.store.config_all().await.unwrap(),
        vec![
            ("shed_threshold".into(), "2000".into()),
            ("warn_threshold".into(), "1000".into())
        ]
    );
    let mut seen = Vec::new();
    while seen.len() < 2 {
        seen.push(
            tokio::time::timeout(Duration::from_secs(5), updates.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert_eq!(
        seen,
        vec![
            Update::Config("shed_threshold".into()),
            Update::Config("warn_threshold".into())
        ]
    );
    h.store.config_set("shed_threshold", None).await.unwrap();
    assert_eq!(h.store.config_get("shed_threshold").await.unwrap(), None);
}

async fn the_audit_log_is_append_only_and_reads_newest_first(h: Harness) {
    for i in 0..5 {
        let record = AuditRecord {
            at_ms: T0 + i,
            who: "ops@host".into(),
            action: format!("replay-{i}"),
            scope: "error=timeout".into(),
            plan: json!({ "count": i }),
            result: "ok".into(),
            duration_ms: 3,
            origin: "headless".into(),
            target: "test".into(),
            batch_id: format!("plan-{i}"),
            reason: String::new(),
        };
        h.store.audit_append(&record).await.unwrap();
    }
    let recent = h.store.audit_recent(3).await.unwrap();
    let actions: Vec<_> = recent.iter().map(|e| e.record.action.as_str()).collect();
    assert_eq!(actions, ["replay-4", "replay-3", "replay-2"]);
    assert_eq!(recent[0].record.plan, json!({ "count": 4 }));
    let ids: HashSet<_> = recent.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids.len(), 3);
}

async fn partitions_spread_items_and_leases_cover_them_all(h: Harness) {
    let q = queue("delivery");
    let batch: Vec<_> = (0..60)
        .map(|i| Envelope::new(&format!("tenant-{}", i % 7), json!(i), h.clock_now()))
        .collect();
    h.store.enqueue(&q, &batch).await.unwrap();
    let lease = h.store.lease(&q, &worker("w"), 60, LEASE).await.unwrap();
    assert_eq!(
        lease.items.len(),
        60,
        "one lease call reaches every partition"
    );
    let partitions: HashSet<_> = lease.items.iter().map(|i| i.receipt.partition).collect();
    assert_eq!(partitions.len(), usize::from(h.store.keys().partitions()));
}

async fn forward_enqueues_in_the_items_partition_and_acks_it_in_one_step(h: Harness) {
    let (from, to) = (queue("ingest"), queue("delivery"));
    let alerts: Vec<_> = (0..12)
        .map(|i| Envelope::new(&format!("tenant-{i}"), json!(i), h.clock_now()))
        .collect();
    h.store.enqueue(&from, &alerts).await.unwrap();
    let lease = h
        .store
        .lease(&from, &worker("router"), 12, LEASE)
        .await
        .unwrap();
    assert_eq!(lease.items.len(), 12);
    // Two deliveries per alert, none for the last (dropped by routing).
    let requests: Vec<ForwardRequest> = lease
        .items
        .iter()
        .enumerate()
        .map(|(n, item)| ForwardRequest {
            receipt: item.receipt.clone(),
            envelopes: if n == 11 {
                Vec::new()
            } else {
                ["slack", "email"]
                    .iter()
                    .map(|channel| {
                        let parent = item.envelope.id.as_str();
                        Envelope::new(
                            "other",
                            json!({ "parent": parent, "channel": channel }),
                            h.clock_now(),
                        )
                    })
                    .collect()
            },
        })
        .collect();
    let outcome = h.store.forward(&from, &to, &requests).await.unwrap();
    assert_eq!(outcome.enqueued, 22);
    assert_eq!(outcome.acked.applied, 12);
    assert!(outcome.acked.stale.is_empty());
    let stats = h.store.stats(&[from.clone(), to.clone()]).await.unwrap();
    assert_eq!(
        stats.queues[0].depth + stats.queues[0].in_flight,
        0,
        "acked"
    );
    assert_eq!(stats.queues[1].depth, 22);

    let partition_of: std::collections::HashMap<String, u16> = lease
        .items
        .iter()
        .map(|i| (i.envelope.id.0.clone(), i.receipt.partition))
        .collect();
    let deliveries = h.store.lease(&to, &worker("w"), 50, LEASE).await.unwrap();
    assert_eq!(deliveries.items.len(), 22);
    for item in &deliveries.items {
        let parent = item.envelope.payload.decode::<serde_json::Value>().unwrap()["parent"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            item.receipt.partition, partition_of[&parent],
            "a delivery lives in its alert's partition, whatever its own tenant"
        );
    }

    // A retried call (reply lost): nothing is enqueued twice and every ack is now stale.
    let again = h.store.forward(&from, &to, &requests).await.unwrap();
    assert_eq!(again.enqueued, 0);
    assert_eq!(again.acked.applied, 0);
    assert_eq!(again.acked.stale.len(), 12);

    // A stale receipt's deliveries are stored all the same; its holder routes to the same ids.
    let late = Envelope::new("t", json!("late"), h.clock_now());
    h.store
        .enqueue(&from, std::slice::from_ref(&late))
        .await
        .unwrap();
    let held = h.store.lease(&from, &worker("a"), 1, LEASE).await.unwrap();
    let mut wrong = held.items[0].receipt.clone();
    "someone-else".clone_into(&mut wrong.token);
    let delivery = Envelope::new("t", json!("late-delivery"), h.clock_now());
    let outcome = h
        .store
        .forward(
            &from,
            &to,
            &[ForwardRequest {
                receipt: wrong,
                envelopes: vec![delivery.clone()],
            }],
        )
        .await
        .unwrap();
    assert_eq!(outcome.enqueued, 1);
    assert_eq!(outcome.acked.stale, vec![late.id.clone()]);
    let retry = ForwardRequest {
        receipt: held.items[0].receipt.clone(),
        envelopes: vec![delivery],
    };
    let outcome = h.store.forward(&from, &to, &[retry]).await.unwrap();
    assert_eq!((outcome.enqueued, outcome.acked.applied), (0, 1));

    // Over the limits, or a receipt naming a partition that does not exist: refused, unwritten.
    let too_many = ForwardRequest {
        receipt: held.items[0].receipt.clone(),
        envelopes: envelopes(&h, MAX_BATCH + 1, "t"),
    };
    let err = h.store.forward(&from, &to, &[too_many]).await.unwrap_err();
    assert!(matches!(err, StoreError::BatchTooLarge { .. }), "{err}");
    let mut nowhere = held.items[0].receipt.clone();
    nowhere.partition = h.store.keys().partitions();
    let request = ForwardRequest {
        receipt: nowhere,
        envelopes: envelopes(&h, 1, "t"),
    };
    let err = h.store.forward(&from, &to, &[request]).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    let stats = h.store.stats(&[to]).await.unwrap();
    assert_eq!(stats.queues[0].depth, 1, "only the late delivery waits");
}

/// `forward_held`: the new envelopes are leased to the caller (not queued), and its receipts
/// settle them like any lease; an id already stored gets none; a lapsed hold comes back.
async fn forward_held_leases_what_it_adds_to_the_caller(h: Harness) {
    let (from, to) = (queue("ingest"), queue("delivery"));
    h.store
        .enqueue(&from, &envelopes(&h, 3, "t"))
        .await
        .unwrap();
    let lease = h
        .store
        .lease(&from, &worker("router"), 3, LEASE)
        .await
        .unwrap();
    let deliveries: Vec<Envelope> = envelopes(&h, 3, "d");
    let requests: Vec<ForwardRequest> = lease
        .items
        .iter()
        .zip(&deliveries)
        .map(|(item, delivery)| ForwardRequest {
            receipt: item.receipt.clone(),
            envelopes: vec![delivery.clone()],
        })
        .collect();
    let hold = Hold {
        worker: &worker("router"),
        lease_for: LEASE,
    };
    let outcome = h
        .store
        .forward_held(&from, &to, &requests, hold)
        .await
        .unwrap();
    assert_eq!((outcome.enqueued, outcome.acked.applied), (3, 3));
    let mut held: Vec<String> = outcome.held.iter().map(|r| r.id.0.clone()).collect();
    let mut wanted: Vec<String> = deliveries.iter().map(|d| d.id.0.clone()).collect();
    held.sort();
    wanted.sort();
    assert_eq!(held, wanted, "a receipt per envelope added");
    for receipt in &outcome.held {
        let request = requests
            .iter()
            .find(|r| r.envelopes[0].id == receipt.id)
            .unwrap();
        assert_eq!(
            receipt.partition, request.receipt.partition,
            "held in its alert's partition"
        );
    }
    let stats = h.store.stats(&[from.clone(), to.clone()]).await.unwrap();
    assert_eq!(
        stats.queues[0].depth + stats.queues[0].in_flight,
        0,
        "acked"
    );
    assert_eq!(
        (stats.queues[1].depth, stats.queues[1].in_flight),
        (0, 3),
        "held, not queued"
    );
    assert!(
        h.store
            .lease(&to, &worker("other"), 10, LEASE)
            .await
            .unwrap()
            .items
            .is_empty(),
        "no other worker can lease a held envelope"
    );

    // The receipts settle like a lease's: a retry counts its attempt and schedules it.
    let retry = RetryRequest {
        receipt: outcome.held[0].clone(),
        envelope: deliveries
            .iter()
            .find(|d| d.id == outcome.held[0].id)
            .unwrap()
            .clone(),
        due_at_ms: h.clock_now() + 60_000,
    };
    let retried = h.store.schedule_retry(&to, &[retry]).await.unwrap();
    assert_eq!(retried.applied, 1);
    let acked = h.store.ack(&to, &outcome.held[1..2]).await.unwrap();
    assert_eq!(acked.applied, 1);

    // The same call again (its reply lost): only the id no longer stored (acked since) is
    // added and held; the others get no receipt, and the acks are stale now.
    let again = h
        .store
        .forward_held(&from, &to, &requests, hold)
        .await
        .unwrap();
    assert_eq!(again.enqueued, 1);
    assert_eq!(
        again.held.iter().map(|r| &r.id).collect::<Vec<_>>(),
        vec![&outcome.held[1].id]
    );
    assert_eq!(again.acked.stale.len(), 3);
    assert_eq!(h.store.ack(&to, &again.held).await.unwrap().applied, 1);

    // The one left unsettled: its hold lapses and the janitor puts it back in the queue.
    h.clock.advance(LEASE + Duration::from_secs(1));
    assert_eq!(h.store.recover_expired(&to, 10).await.unwrap(), 1);
    let back = h
        .store
        .lease(&to, &worker("other"), 10, LEASE)
        .await
        .unwrap();
    assert_eq!(back.items.len(), 1);
    assert_eq!(back.items[0].envelope.id, outcome.held[2].id);
    assert_eq!(
        back.items[0].envelope.attempts, 1,
        "a lapsed hold counts an attempt"
    );
}

const HOLD: Duration = Duration::from_secs(30);
const WINDOW: Duration = Duration::from_secs(3600);

async fn claim(h: &Harness, key: &str) -> DedupClaim {
    let claims = h
        .store
        .dedup_claim("w1", &[key.to_owned()], HOLD, WINDOW)
        .await
        .unwrap();
    assert_eq!(claims.len(), 1);
    claims[0]
}

/// The ticket of a claim that was won.
fn won(claim: DedupClaim) -> DedupTicket {
    match claim {
        DedupClaim::Claimed(ticket) => ticket,
        other => panic!("expected a won claim, got {other:?}"),
    }
}

/// Each answer's kind, tickets aside.
fn kinds(claims: &[DedupClaim]) -> Vec<&'static str> {
    claims
        .iter()
        .map(|c| match c {
            DedupClaim::Claimed(_) => "claimed",
            DedupClaim::AlreadyDone => "done",
            DedupClaim::InFlight => "in flight",
        })
        .collect()
}

async fn finish(h: &Harness, key: &str, outcome: DedupFinish) {
    h.store
        .dedup_finish("w1", &[(key.to_owned(), outcome)])
        .await
        .unwrap();
}

async fn dedup_claims_once_and_remembers_success(h: Harness) {
    let first = won(claim(&h, "slack:a1").await);
    assert_eq!(claim(&h, "slack:a1").await, DedupClaim::InFlight);
    let smtp = won(claim(&h, "smtp:a1").await);
    won(claim(&h, "webhook:a1").await);

    // A failed send releases its claim so the retry can send.
    finish(&h, "slack:a1", DedupFinish::Release).await;
    let second = won(claim(&h, "slack:a1").await);
    finish(&h, "slack:a1", DedupFinish::Done(first)).await;
    assert_eq!(
        claim(&h, "slack:a1").await,
        DedupClaim::InFlight,
        "a success names its claim: the released one marks nothing"
    );
    finish(&h, "slack:a1", DedupFinish::Done(second)).await;
    assert_eq!(claim(&h, "slack:a1").await, DedupClaim::AlreadyDone);
    finish(&h, "slack:a1", DedupFinish::Release).await;
    assert_eq!(
        claim(&h, "slack:a1").await,
        DedupClaim::AlreadyDone,
        "release never forgets a success"
    );

    // A claim whose holder died lapses; a send that ended after its hold still counts; a
    // success is forgotten once the window from its claim ends.
    h.clock.advance(HOLD);
    won(claim(&h, "webhook:a1").await);
    finish(&h, "smtp:a1", DedupFinish::Done(smtp)).await;
    assert_eq!(claim(&h, "smtp:a1").await, DedupClaim::AlreadyDone);
    h.clock.advance(WINDOW.saturating_sub(HOLD));
    won(claim(&h, "slack:a1").await);
    won(claim(&h, "smtp:a1").await);
}

async fn dedup_batches_answer_per_key_in_order(h: Harness) {
    let keys = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    let batch = |names: &[&str]| {
        let store = h.store.clone();
        let keys = keys(names);
        async move { store.dedup_claim("w1", &keys, HOLD, WINDOW).await.unwrap() }
    };
    assert!(batch(&[]).await.is_empty());
    h.store.dedup_finish("w1", &[]).await.unwrap();
    let first = batch(&["a", "b", "a"]).await;
    assert_eq!(
        kinds(&first),
        ["claimed", "claimed", "in flight"],
        "a key repeated in one batch is claimed once"
    );
    assert_ne!(first[0], first[1], "each claim has its own ticket");
    h.store
        .dedup_finish(
            "w1",
            &[
                ("a".to_owned(), DedupFinish::Done(won(first[0]))),
                ("b".to_owned(), DedupFinish::Release),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        kinds(&batch(&["c", "b", "a"]).await),
        ["claimed", "claimed", "done"]
    );
    // The heartbeat holds a live claim longer; a lapsed one is not revived.
    won(claim(&h, "held").await);
    won(claim(&h, "lapsed").await);
    h.clock.advance(HOLD / 2);
    finish(&h, "held", DedupFinish::Hold(HOLD)).await;
    h.clock.advance(HOLD / 2 + Duration::from_millis(1));
    finish(&h, "lapsed", DedupFinish::Hold(HOLD)).await;
    assert_eq!(
        claim(&h, "held").await,
        DedupClaim::InFlight,
        "held past its first hold"
    );
    won(claim(&h, "lapsed").await);
    finish(&h, "held", DedupFinish::Release).await;
    won(claim(&h, "held").await);

    // Thousands of lapsed claims are taken again, and successes recorded in one call.
    let many: Vec<String> = (0..5000).map(|i| format!("bulk-{i}")).collect();
    let claim_many = |owner: &'static str| {
        let (store, many) = (h.store.clone(), many.clone());
        async move { store.dedup_claim(owner, &many, HOLD, WINDOW).await.unwrap() }
    };
    assert!(
        kinds(&claim_many("w1").await)
            .iter()
            .all(|k| *k == "claimed")
    );
    h.clock.advance(HOLD);
    let claims = claim_many("w1").await;
    assert!(
        kinds(&claims).iter().all(|k| *k == "claimed"),
        "lapsed claims can be taken again"
    );
    let outcomes: Vec<(String, DedupFinish)> = many
        .iter()
        .zip(&claims)
        .step_by(2)
        .map(|(key, claim)| (key.clone(), DedupFinish::Done(won(*claim))))
        .collect();
    h.store.dedup_finish("w1", &outcomes).await.unwrap();
    h.clock.advance(HOLD);
    let again = claim_many("w2").await;
    for (n, kind) in kinds(&again).into_iter().enumerate() {
        let expected = if n % 2 == 0 { "done" } else { "claimed" };
        assert_eq!(kind, expected, "bulk-{n}");
    }
}

async fn dedup_release_and_hold_touch_only_the_owners_live_claim(h: Harness) {
    let hold = Duration::from_secs(30);
    let key = || vec!["k".to_owned()];
    let claim = |owner: &'static str| {
        let store = h.store.clone();
        async move { store.dedup_claim(owner, &key(), hold, hold).await.unwrap()[0] }
    };
    let finish = |owner: &'static str, outcome: DedupFinish| {
        let store = h.store.clone();
        async move {
            store
                .dedup_finish(owner, &[("k".to_owned(), outcome)])
                .await
                .unwrap();
        }
    };
    won(claim("w1").await);
    finish("w2", DedupFinish::Release).await;
    finish("w2", DedupFinish::Hold(hold * 10)).await;
    assert_eq!(
        claim("w3").await,
        DedupClaim::InFlight,
        "not w2's to release"
    );
    // w1's claim lapses; w2 takes the key; w1, late, cannot release or hold w2's claim.
    h.clock.advance(hold);
    won(claim("w2").await);
    finish("w1", DedupFinish::Release).await;
    finish("w1", DedupFinish::Hold(hold * 10)).await;
    assert_eq!(
        claim("w3").await,
        DedupClaim::InFlight,
        "w2's claim survives w1"
    );
    h.clock.advance(hold);
    assert!(
        matches!(claim("w3").await, DedupClaim::Claimed(_)),
        "and w1 did not extend it"
    );
    finish("w3", DedupFinish::Release).await;
    assert!(
        matches!(claim("w1").await, DedupClaim::Claimed(_)),
        "the owner's release frees it"
    );
}

async fn rate_limits_follow_gcra_per_name(h: Harness) {
    let limit = RateLimit::per_second(10, 3);
    let mut allowed = 0;
    for _ in 0..5 {
        if h.store
            .rate_limit("tenant:acme", &limit, 1)
            .await
            .unwrap()
            .allowed
        {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 3, "the burst, then refusals");
    let refused = h.store.rate_limit("tenant:acme", &limit, 1).await.unwrap();
    assert!(!refused.allowed);
    assert_eq!(refused.retry_after, Duration::from_millis(100));
    assert!(
        h.store
            .rate_limit("tenant:globex", &limit, 1)
            .await
            .unwrap()
            .allowed,
        "limits are per name"
    );
    h.clock.advance(Duration::from_millis(100));
    let later = h.store.rate_limit("tenant:acme", &limit, 1).await.unwrap();
    assert!(later.allowed);
    assert_eq!(later.remaining, 0);
    h.clock.advance(Duration::from_secs(3600));
    assert_eq!(
        h.store
            .rate_limit("tenant:acme", &limit, 1)
            .await
            .unwrap()
            .remaining,
        2,
        "fully replenished"
    );
}

/// A request of `n` alerts: the first of `tenant` with idempotency key `key` (which picks the
/// partition), the rest of `others` (or `tenant`) with keys of their own.
fn request(h: &Harness, n: usize, tenant: &str, key: &str, others: Option<&str>) -> Vec<Envelope> {
    (0..n)
        .map(|i| {
            let t = if i == 0 {
                tenant
            } else {
                others.unwrap_or(tenant)
            };
            let e = Envelope::new(t, json!({ "n": i }), h.clock_now());
            if i == 0 {
                e.with_idempotency_key(key)
            } else {
                e
            }
        })
        .collect()
}

/// An idempotency key that puts `tenant`'s alert in `partition`.
fn key_in(tenant: &str, partition: u16, partitions: u16) -> String {
    (0..10_000)
        .map(|i| format!("k{i}"))
        .find(|k| ward::engine::partition::partition_for(tenant, k, partitions) == partition)
        .unwrap()
}

/// Requests that arrive together (Redis sends those of a partition in one script call) are
/// each checked and stored as if it came alone: a burst's worth is accepted and no more, the
/// cap is never passed, and the same request sent twice at once is stored once.
async fn ingest_of_concurrent_requests_is_as_if_each_came_alone(h: Harness) {
    let q = queue("ingest");
    let partitions = h.store.keys().partitions();
    let key = key_in("acme", 0, partitions);
    let limits = IngestLimits {
        limiter: "ingest",
        rate_limit: RateLimit {
            count: 10,
            period_ms: 1000,
            burst: 40 * u32::from(partitions),
        },
        queue_cap: 1_000_000,
    };
    let burst = partition_share(&limits.rate_limit, partitions).burst as usize;
    assert_eq!(burst, 40);
    let depth = async || {
        h.store
            .stats(std::slice::from_ref(&q))
            .await
            .unwrap()
            .queues[0]
            .depth
    };
    let at_once = async |limits: &IngestLimits<'_>| {
        let requests: Vec<Vec<Envelope>> = (0..100)
            .map(|_| request(&h, 1, "acme", &key, None))
            .collect();
        let outcomes =
            futures::future::join_all(requests.iter().map(|r| h.store.ingest(&q, limits, r))).await;
        let count = |want: fn(&IngestOutcome) -> bool| {
            outcomes
                .iter()
                .filter(|o| o.as_ref().is_ok_and(want))
                .count()
        };
        (
            count(|o| matches!(o, IngestOutcome::Accepted { added: 1, .. })),
            count(|o| matches!(o, IngestOutcome::RateLimited { .. })),
            count(|o| matches!(o, IngestOutcome::Full { .. })),
        )
    };

    assert_eq!(
        at_once(&limits).await,
        (burst, 100 - burst, 0),
        "the burst and no more"
    );
    assert_eq!(depth().await, burst as u64);
    // Another limiter (its own buckets), so only the cap can refuse.
    let capped = IngestLimits {
        limiter: "unlimited",
        queue_cap: (burst as u64 + 25) * u64::from(partitions),
        rate_limit: RateLimit::per_second(1_000_000, 1_000_000),
    };
    assert_eq!(
        at_once(&capped).await,
        (25, 0, 75),
        "up to the cap and no further"
    );
    assert_eq!(depth().await, burst as u64 + 25);

    let roomy = IngestLimits {
        queue_cap: 1_000_000,
        ..capped
    };
    let twice = request(&h, 3, "acme", &key, None);
    let (a, b) = tokio::join!(
        h.store.ingest(&q, &roomy, &twice),
        h.store.ingest(&q, &roomy, &twice)
    );
    let added = |o: &IngestOutcome| match o {
        IngestOutcome::Accepted { added, .. } => *added,
        other => panic!("expected acceptance, got {other:?}"),
    };
    assert_eq!(added(&a.unwrap()) + added(&b.unwrap()), 3, "stored once");
    assert_eq!(depth().await, burst as u64 + 28);

    // Past the script's steps of 500, with a retry of it in the same call: stored once.
    let big = request(&h, 1_200, "acme", &key, None);
    let (a, b) = tokio::join!(
        h.store.ingest(&q, &roomy, &big),
        h.store.ingest(&q, &roomy, &big)
    );
    assert_eq!(
        added(&a.unwrap()) + added(&b.unwrap()),
        1_200,
        "stored once"
    );
    assert_eq!(depth().await, burst as u64 + 1_228);
}

async fn ingest_checks_the_partitions_limits_and_cap_then_enqueues_in_one_step(h: Harness) {
    let q = queue("ingest");
    let partitions = h.store.keys().partitions();
    let configured = RateLimit {
        count: 10,
        period_ms: 1000,
        burst: 6,
    };
    let limits = IngestLimits {
        limiter: "ingest",
        rate_limit: configured,
        queue_cap: 1_000,
    };
    // Each partition's bucket: 1/N of the rate (emission interval × N), ⌈burst / N⌉ of the burst.
    let share = partition_share(&configured, partitions);
    assert_eq!(
        share.emission_interval_us(),
        configured.emission_interval_us() * i64::from(partitions)
    );
    assert_eq!(share.burst, 6u32.div_ceil(u32::from(partitions)));
    if partitions == 1 {
        assert_eq!(
            share, configured,
            "one partition: exactly the configured limit"
        );
    }
    let burst = share.burst as usize;
    let depth = |h: &Harness| {
        let store = h.store.clone();
        let q = q.clone();
        async move { store.stats(std::slice::from_ref(&q)).await.unwrap().queues[0].depth }
    };

    // A whole burst in one request, of two tenants: every alert in the first one's partition.
    let first = request(&h, burst, "acme", "k-acme", Some("globex"));
    let p = ingest_partition(&first, partitions);
    let outcome = h.store.ingest(&q, &limits, &first).await.unwrap();
    assert_eq!(
        outcome,
        IngestOutcome::Accepted {
            partition: p,
            added: burst,
            ids: first.iter().map(|e| e.id.clone()).collect(),
        }
    );
    assert_eq!(depth(&h).await, burst as u64);
    let leased = h.store.lease(&q, &worker("w"), 50, LEASE).await.unwrap();
    assert_eq!(leased.items.len(), burst);
    assert!(
        leased.items.iter().all(|i| i.receipt.partition == p),
        "one request, one partition"
    );
    let receipts: Vec<_> = leased.items.iter().map(|i| i.receipt.clone()).collect();
    h.store.ack(&q, &receipts).await.unwrap();

    // acme's bucket in p is now full (the first alert was acme's, the rest globex's when
    // burst > 1): one more acme alert there is refused, with the state the headers need.
    let fill = request(&h, burst - 1, "acme", "k-acme", None);
    if !fill.is_empty() {
        assert!(matches!(
            h.store.ingest(&q, &limits, &fill).await.unwrap(),
            IngestOutcome::Accepted { .. }
        ));
    }
    let over = request(&h, 1, "acme", "k-acme", None);
    let before = depth(&h).await;
    match h.store.ingest(&q, &limits, &over).await.unwrap() {
        IngestOutcome::RateLimited {
            tenant,
            limit,
            verdict,
        } => {
            assert_eq!(tenant, "acme");
            assert_eq!(
                limit, share,
                "the refusing bucket's own limit, for the headers"
            );
            assert!(!verdict.allowed);
            assert_eq!(verdict.remaining, 0);
            assert_eq!(
                verdict.retry_after,
                Duration::from_micros(share.emission_interval_us().unsigned_abs())
            );
        }
        other => panic!("expected a rate limit, got {other:?}"),
    }
    assert_eq!(depth(&h).await, before, "a refused request stores nothing");

    // A request naming a tenant over its limit is refused whole, and charges no other tenant.
    let mixed = request(&h, 2, "acme", "k-acme", Some("initech"));
    match h.store.ingest(&q, &limits, &mixed).await.unwrap() {
        IngestOutcome::RateLimited { tenant, .. } => assert_eq!(tenant, "acme"),
        other => panic!("expected acme's refusal, got {other:?}"),
    }
    let initech = request(
        &h,
        burst,
        "initech",
        &key_in("initech", p, partitions),
        None,
    );
    assert_eq!(ingest_partition(&initech, partitions), p);
    assert!(
        matches!(
            h.store.ingest(&q, &limits, &initech).await.unwrap(),
            IngestOutcome::Accepted { .. }
        ),
        "initech's bucket was not charged by the refused request"
    );
    // More than a bucket's burst at once is never allowed.
    let huge = request(&h, burst + 1, "umbrella", "k-u", None);
    assert!(matches!(
        h.store.ingest(&q, &limits, &huge).await.unwrap(),
        IngestOutcome::RateLimited { .. }
    ));

    // Refilled after the emission interval: acme is allowed again.
    h.clock.advance(Duration::from_micros(
        share.emission_interval_us().unsigned_abs(),
    ));
    let again = request(&h, 1, "acme", "k-acme", None);
    let accepted = h.store.ingest(&q, &limits, &again).await.unwrap();
    assert!(
        matches!(accepted, IngestOutcome::Accepted { added: 1, .. }),
        "{accepted:?}"
    );
    // The same call again (its reply lost): nothing stored twice.
    h.clock.advance(Duration::from_secs(60));
    assert_eq!(
        h.store.ingest(&q, &limits, &again).await.unwrap(),
        IngestOutcome::Accepted {
            partition: p,
            added: 0,
            ids: vec![again[0].id.clone()],
        }
    );

    // The cap: the partition's own depth against its share of the cap.
    let leased = h.store.lease(&q, &worker("w"), 500, LEASE).await.unwrap();
    let receipts: Vec<_> = leased.items.iter().map(|i| i.receipt.clone()).collect();
    h.store.ack(&q, &receipts).await.unwrap();
    assert_eq!(depth(&h).await, 0);
    let capped = IngestLimits {
        queue_cap: 3 * u64::from(partitions),
        rate_limit: RateLimit::per_second(1_000_000, 1_000_000),
        ..limits
    };
    assert_eq!(cap_share(capped.queue_cap, partitions), 3);
    let five = request(&h, 5, "acme", "k-acme", None);
    assert_eq!(
        h.store.ingest(&q, &capped, &five).await.unwrap(),
        IngestOutcome::Full {
            partition: p,
            depth: 0,
            cap: 3
        },
        "more than the cap in one request"
    );
    assert_eq!(depth(&h).await, 0, "a full queue stores nothing");
    let two = request(&h, 2, "acme", "k-acme", None);
    assert!(matches!(
        h.store.ingest(&q, &capped, &two).await.unwrap(),
        IngestOutcome::Accepted { added: 2, .. }
    ));
    let two_more = request(&h, 2, "acme", "k-acme", None);
    assert_eq!(
        h.store.ingest(&q, &capped, &two_more).await.unwrap(),
        IngestOutcome::Full {
            partition: p,
            depth: 2,
            cap: 3
        }
    );
    assert_eq!(depth(&h).await, 2, "a full queue stores nothing");
    let one_more = request(&h, 1, "acme", "k-acme", None);
    assert!(matches!(
        h.store.ingest(&q, &capped, &one_more).await.unwrap(),
        IngestOutcome::Accepted { added: 1, .. }
    ));
    if let Some(server) = &h.server {
        // Every key the script touched is in the partition's slot.
        let key = h.store.keys().rate_limit_in(p, "ingest:acme");
        assert!(key.contains(&format!("{{p{p}}}")));
        let exists: bool = redis::cmd("EXISTS")
            .arg(&key)
            .query(&mut server.connection())
            .unwrap();
        assert!(exists, "{key} holds acme's bucket");
    }

    // Bounds: at least one alert, at most MAX_INGEST.
    assert!(matches!(
        h.store.ingest(&q, &limits, &[]).await.unwrap_err(),
        StoreError::Invalid(_)
    ));
    let too_many = envelopes(&h, MAX_INGEST + 1, "t");
    assert!(matches!(
        h.store.ingest(&q, &limits, &too_many).await.unwrap_err(),
        StoreError::BatchTooLarge { .. }
    ));
}

async fn breakers_are_shared_under_compare_and_set(h: Harness) {
    assert!(h.store.breaker_load("slack-ops").await.unwrap().is_none());
    let config = BreakerConfig {
        minimum_calls: 2,
        ..BreakerConfig::default()
    };
    let now = h.clock_now();
    let mut breaker = Breaker::new(now);
    assert!(
        h.store
            .breaker_store("slack-ops", 0, &breaker)
            .await
            .unwrap()
    );
    assert!(
        !h.store
            .breaker_store("slack-ops", 0, &breaker)
            .await
            .unwrap(),
        "a stale version loses"
    );
    for _ in 0..2 {
        breaker.record(&config, now, CallOutcome::Failure, false);
    }
    assert_eq!(breaker.state, BreakerState::Open);
    assert!(
        h.store
            .breaker_store("slack-ops", 1, &breaker)
            .await
            .unwrap()
    );
    let (version, loaded) = h.store.breaker_load("slack-ops").await.unwrap().unwrap();
    assert_eq!((version, loaded.clone()), (2, breaker));
    let updated = update_breaker(h.store.as_ref(), "slack-ops", |b| {
        b.reset(now, "ops", "fixed");
    })
    .await
    .unwrap();
    assert_eq!(updated.state, BreakerState::Closed);
    update_breaker(h.store.as_ref(), "smtp", |_| {})
        .await
        .unwrap();
    let all = h.store.breakers().await.unwrap();
    let names: Vec<_> = all.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["slack-ops", "smtp"]);
    assert_eq!(all[0].1.state, BreakerState::Closed);
    assert_eq!(all[0].1.transitions, 2);
}

/// Enqueue `batch` on `q`, lease it and dead-letter every item with `failure`; the ids in order.
async fn dead_letter_all(h: &Harness, q: &str, batch: Vec<Envelope>, failure: &FailureInfo) {
    let q = queue(q);
    let n = batch.len();
    h.store.enqueue(&q, &batch).await.unwrap();
    let lease = h.store.lease(&q, &worker("w"), n, LEASE).await.unwrap();
    assert_eq!(lease.items.len(), n);
    let requests: Vec<_> = lease
        .items
        .into_iter()
        .map(|item| DeadLetterRequest {
            receipt: item.receipt,
            envelope: item.envelope,
            failure: failure.clone(),
        })
        .collect();
    assert!(
        h.store
            .dead_letter(&q, &requests)
            .await
            .unwrap()
            .stale
            .is_empty()
    );
}

/// Every match of `filter`, paged (7 at a time) to the end from `start`.
async fn paged(
    h: &Harness,
    q: &str,
    filter: &DlqFilter,
    start: DlqCursor,
) -> Vec<ward::model::DlqEntry> {
    let q = queue(q);
    let mut cursor = start;
    let mut seen = Vec::new();
    for _ in 0..1_000 {
        let page = h
            .store
            .failed_page(&q, FailedSet::Dlq, filter, &cursor, 7)
            .await
            .unwrap();
        assert!(page.entries.len() <= 7);
        seen.extend(page.entries);
        match page.next {
            Some(next) => cursor = next,
            None => return seen,
        }
    }
    panic!("paging must terminate");
}

// The text search reads values, never keys: metadata fields, label and annotation values, the
// severity; ASCII case-insensitively, with quotes and non-ASCII text as they are. Count, page,
// grouping and replay all select by it.
async fn the_text_search_matches_label_annotation_and_error_values(h: Harness) {
    let now = h.clock_now();
    let job = |tenant: &str, alert: serde_json::Value| {
        Envelope::new(
            tenant,
            json!({ "alert": alert, "channel": "slack", "retry_policy": "p" }),
            now,
        )
    };
    let disk = job(
        "acme",
        json!({"labels": {"alertname": "DiskFull", "host": "db-1"},
               "annotations": {"summary": "Disk \"/var\" is 95% full"}, "severity": "critical"}),
    );
    // An ingest entry: the payload is the alert itself.
    let latency = Envelope::new(
        "acme",
        json!({"labels": {"alertname": "HighLatency", "service": "checkout"},
               "annotations": {"description": "p99 over 2s"}, "severity": "warning"}),
        now,
    );
    let other = Envelope::new("acme", json!({ "n": 1 }), now);
    let zurich = job(
        "globex",
        json!({"labels": {"alertname": "Down", "region": "eu-west", "zone": "Zürich"}}),
    );
    let ids: Vec<EnvelopeId> = [&disk, &latency, &other, &zurich]
        .iter()
        .map(|e| e.id.clone())
        .collect();
    dead_letter_all(
        &h,
        "delivery",
        vec![disk],
        &FailureInfo::new("http_500", "Slack said 500", "deliver").on("slack"),
    )
    .await;
    dead_letter_all(
        &h,
        "delivery",
        vec![latency],
        &FailureInfo::new("timeout", "no answer from pager", "deliver"),
    )
    .await;
    dead_letter_all(
        &h,
        "delivery",
        vec![other],
        &FailureInfo::new("decode", "bad JSON in labels field", "route"),
    )
    .await;
    dead_letter_all(
        &h,
        "delivery",
        vec![zurich],
        &FailureInfo::new("timeout", "no answer", "deliver"),
    )
    .await;
    let q = queue("delivery");
    let search = |text: &str| DlqFilter {
        text: Some(text.to_owned()),
        ..DlqFilter::default()
    };
    let cases: &[(DlqFilter, &[usize])] = &[
        (search("diskfull"), &[0]),
        (search("DB-1"), &[0]),
        (search("\"/var\""), &[0]),
        (search("critical"), &[0]),
        (search("HTTP_500"), &[0]),
        (search("checkout"), &[1]),
        (search("p99 over"), &[1]),
        (search("pager"), &[1]),
        (search("labels"), &[2]),
        (search("alertname"), &[]),
        (search("region"), &[]),
        (search("eu-west"), &[3]),
        (search("zürich"), &[3]),
        (search("globex"), &[3]),
        (search(ids[1].as_str()), &[1]),
        (search("acme"), &[0, 1, 2]),
        (
            DlqFilter {
                error_class: Some("timeout".into()),
                ..search("checkout")
            },
            &[1],
        ),
        (
            DlqFilter {
                error_class: Some("http_500".into()),
                ..search("checkout")
            },
            &[],
        ),
    ];
    for (filter, want) in cases {
        let mut want: Vec<&EnvelopeId> = want.iter().map(|&i| &ids[i]).collect();
        want.sort();
        let count = h
            .store
            .failed_count(&q, FailedSet::Dlq, filter)
            .await
            .unwrap();
        assert_eq!(count, want.len() as u64, "count of {filter:?}");
        for start in [DlqCursor::start(), DlqCursor::newest()] {
            let mut got: Vec<EnvelopeId> = paged(&h, "delivery", filter, start)
                .await
                .into_iter()
                .map(|e| e.meta.id)
                .collect();
            got.sort();
            assert_eq!(got.iter().collect::<Vec<_>>(), want, "page of {filter:?}");
        }
        let groups = group_all(&h, "delivery", FailedSet::Dlq, filter).await.0;
        assert_eq!(
            groups.iter().map(|g| g.count).sum::<u64>(),
            want.len() as u64,
            "groups of {filter:?}"
        );
    }
    // A replay of the search moves exactly what it shows.
    let mut cursor = Some(DlqCursor::start());
    let mut moved = 0;
    while let Some(at) = cursor {
        let result = h
            .store
            .replay(
                &q,
                FailedSet::Dlq,
                &DlqScope::Filter {
                    filter: search("ZÜRICH"),
                    cursor: at,
                },
                ReplayOptions::default(),
            )
            .await
            .unwrap();
        moved += result.moved;
        cursor = result.next;
    }
    assert_eq!(moved, 0, "non-ASCII letters compare exactly");
    let mut cursor = Some(DlqCursor::start());
    while let Some(at) = cursor {
        let result = h
            .store
            .purge(
                &q,
                FailedSet::Dlq,
                &DlqScope::Filter {
                    filter: search("CHECKOUT"),
                    cursor: at,
                },
                MAX_BATCH,
            )
            .await
            .unwrap();
        moved += result.moved;
        cursor = result.next;
    }
    assert_eq!(moved, 1);
    let left: Vec<EnvelopeId> = common::failed_entries(h.store.as_ref(), &q, FailedSet::Dlq)
        .await
        .into_iter()
        .map(|e| e.meta.id)
        .collect();
    assert_eq!(left.len(), 3);
    assert!(!left.contains(&ids[1]));
}

// A newest-first scan visits every match once, each partition from its newest failure back,
// within the time bounds; the oldest-first scan is its mirror.
async fn newest_first_pages_walk_each_partition_backwards(h: Harness) {
    fill_dlq(&h, "delivery", 30, "acme", "timeout", "deliver").await;
    let mid = h.clock_now();
    fill_dlq(&h, "delivery", 20, "globex", "http_500", "deliver").await;
    fill_dlq(&h, "delivery", 10, "acme", "decode", "route").await;
    let by_partition = |entries: &[ward::model::DlqEntry]| {
        let mut keys = std::collections::BTreeMap::<u16, Vec<String>>::new();
        for e in entries {
            keys.entry(e.partition)
                .or_default()
                .push(e.meta.key.clone());
        }
        keys
    };
    for (filter, expected) in [
        (DlqFilter::default(), 60),
        (
            DlqFilter {
                tenant: Some("acme".into()),
                ..DlqFilter::default()
            },
            40,
        ),
        (
            DlqFilter {
                failed_before_ms: Some(mid),
                ..DlqFilter::default()
            },
            30,
        ),
        (
            DlqFilter {
                failed_at_or_after_ms: Some(mid),
                ..DlqFilter::default()
            },
            30,
        ),
        (
            DlqFilter {
                failed_at_or_after_ms: Some(mid),
                failed_before_ms: Some(mid + 1_000),
                ..DlqFilter::default()
            },
            20,
        ),
    ] {
        let newest = paged(&h, "delivery", &filter, DlqCursor::newest()).await;
        let oldest = paged(&h, "delivery", &filter, DlqCursor::start()).await;
        assert_eq!(newest.len(), expected, "{filter:?}");
        let unique: HashSet<_> = newest.iter().map(|e| e.meta.id.clone()).collect();
        assert_eq!(unique.len(), expected);
        assert!(newest.iter().all(|e| filter.matches(&e.meta)));
        for (partition, keys) in by_partition(&newest) {
            assert!(
                keys.windows(2).all(|w| w[0] > w[1]),
                "partition {partition} newest first"
            );
        }
        let mut mirrored = by_partition(&oldest);
        for keys in mirrored.values_mut() {
            keys.reverse();
        }
        assert_eq!(by_partition(&newest), mirrored, "{filter:?}");
    }
    if h.store.keys().partitions() == 1 {
        let first = h
            .store
            .failed_page(
                &queue("delivery"),
                FailedSet::Dlq,
                &DlqFilter::default(),
                &DlqCursor::newest(),
                1,
            )
            .await
            .unwrap();
        assert_eq!(
            first.entries[0].meta.error_class, "decode",
            "the newest failure comes first"
        );
    }
}

/// Group a whole set: every step to the end; (groups, steps, the largest step's examined).
async fn group_all(
    h: &Harness,
    q: &str,
    set: FailedSet,
    filter: &DlqFilter,
) -> (Vec<DlqGroup>, usize, u64) {
    let q = queue(q);
    let mut groups = Vec::new();
    let (mut steps, mut widest) = (0, 0);
    let mut cursor = Some(DlqCursor::start());
    while let Some(at) = cursor {
        let step = h
            .store
            .failed_groups(&q, set, filter, GROUP_BUCKET_MS, &at)
            .await
            .unwrap();
        steps += 1;
        widest = widest.max(step.examined);
        merge_groups(&mut groups, step.groups);
        cursor = step.next;
        assert!(steps < 10_000, "grouping must terminate");
    }
    (groups, steps, widest)
}

/// Which entries a filter should keep, said in Rust.
type Keep = Box<dyn Fn(&ward::model::DlqMeta) -> bool>;

/// The groups of the entries themselves, counted here from a full read.
async fn groups_of(
    h: &Harness,
    q: &str,
    set: FailedSet,
    keep: impl Fn(&ward::model::DlqMeta) -> bool,
) -> Vec<DlqGroup> {
    let entries = common::failed_entries(h.store.as_ref(), &queue(q), set).await;
    let mut groups = Vec::new();
    merge_groups(
        &mut groups,
        entries
            .iter()
            .filter(|e| keep(&e.meta))
            .map(|e| DlqGroup {
                error_class: e.meta.error_class.clone(),
                bucket_ms: e.meta.last_failure_ms - e.meta.last_failure_ms % GROUP_BUCKET_MS,
                count: 1,
            })
            .collect(),
    );
    groups
}

// Grouping counts the whole filtered set, far more than a page, in bounded steps that add up
// to exactly what the entries say, on the DLQ and the dead list.
async fn groups_count_the_whole_filtered_set_in_bounded_steps(h: Harness) {
    fill_dlq(&h, "delivery", 1_600, "acme", "timeout", "deliver").await;
    h.clock.advance(Duration::from_secs(600));
    let later = h.clock_now();
    fill_dlq(&h, "delivery", 150, "globex", "http_500", "deliver").await;
    h.clock.advance(Duration::from_secs(600));
    fill_dlq(&h, "delivery", 50, "acme", "timeout", "deliver").await;
    let all = DlqFilter::default();
    let (groups, steps, widest) = group_all(&h, "delivery", FailedSet::Dlq, &all).await;
    assert_eq!(
        groups,
        groups_of(&h, "delivery", FailedSet::Dlq, |_| true).await
    );
    assert_eq!(groups.iter().map(|g| g.count).sum::<u64>(), 1_800);
    assert!(groups.len() >= 3, "{groups:?}");
    assert!(
        widest <= GROUP_SCAN_BUDGET as u64,
        "a step examined {widest}"
    );
    let partitions = usize::from(h.store.keys().partitions());
    assert!(steps >= partitions, "one step per partition at least");
    if partitions == 1 {
        assert!(steps >= 2, "1 800 entries take several steps");
    }
    let classes: Vec<&str> = groups.iter().map(|g| g.error_class.as_str()).collect();
    assert!(
        classes.windows(2).all(|w| w[0] <= w[1]),
        "by class, then bucket"
    );

    let filters: [(DlqFilter, Keep); 4] = [
        (
            DlqFilter {
                tenant: Some("acme".into()),
                ..DlqFilter::default()
            },
            Box::new(|m| m.tenant == "acme"),
        ),
        (
            DlqFilter {
                error_class: Some("http_500".into()),
                ..DlqFilter::default()
            },
            Box::new(|m| m.error_class == "http_500"),
        ),
        (
            DlqFilter {
                failed_at_or_after_ms: Some(later),
                ..DlqFilter::default()
            },
            Box::new(move |m| m.last_failure_ms >= later),
        ),
        (
            DlqFilter {
                text: Some("GLOBEX".into()),
                ..DlqFilter::default()
            },
            Box::new(|m| m.tenant == "globex"),
        ),
    ];
    for (filter, keep) in filters {
        let (groups, _, widest) = group_all(&h, "delivery", FailedSet::Dlq, &filter).await;
        assert_eq!(
            groups,
            groups_of(&h, "delivery", FailedSet::Dlq, keep).await,
            "{filter:?}"
        );
        let budget = if filter.text.is_some() {
            TEXT_SCAN_BUDGET
        } else {
            GROUP_SCAN_BUDGET
        };
        assert!(
            widest <= budget as u64,
            "{filter:?}: a step examined {widest}"
        );
    }

    let q = queue("delivery");
    let http = DlqFilter {
        error_class: Some("http_500".into()),
        ..DlqFilter::default()
    };
    let mut cursor = Some(DlqCursor::start());
    let mut buried = 0;
    while let Some(at) = cursor {
        let scope = DlqScope::Filter {
            filter: http.clone(),
            cursor: at,
        };
        let result = h.store.bury(&q, &scope, MAX_BATCH).await.unwrap();
        buried += result.moved;
        cursor = result.next;
    }
    assert_eq!(buried, 150);
    let (dead, ..) = group_all(&h, "delivery", FailedSet::Dead, &all).await;
    assert_eq!(
        dead,
        groups_of(&h, "delivery", FailedSet::Dead, |_| true).await
    );
    assert!(dead.iter().all(|g| g.error_class == "http_500"));
    assert!(matches!(
        h.store
            .failed_groups(&q, FailedSet::Dlq, &all, 0, &DlqCursor::start())
            .await,
        Err(StoreError::Invalid(_))
    ));
    let past_the_end = DlqCursor::start().at(h.store.keys().partitions(), String::new());
    let empty = h
        .store
        .failed_groups(&q, FailedSet::Dlq, &all, GROUP_BUCKET_MS, &past_the_end)
        .await
        .unwrap();
    assert_eq!((empty.groups.len(), empty.next), (0, None));
}

// The attempt history an envelope carries survives a retry and the move to the DLQ.
async fn the_attempt_history_travels_with_the_envelope(h: Harness) {
    let q = queue("delivery");
    h.store.enqueue(&q, &envelopes(&h, 1, "t")).await.unwrap();
    let item = h
        .store
        .lease(&q, &worker("w"), 1, LEASE)
        .await
        .unwrap()
        .items
        .remove(0);
    let mut envelope = item.envelope.clone();
    envelope.record_attempt(FailedAttempt::new(
        1,
        h.clock_now(),
        "slack",
        "http_503",
        "HTTP 503",
    ));
    let due = h.clock_now();
    h.store
        .schedule_retry(
            &q,
            &[RetryRequest {
                receipt: item.receipt,
                envelope,
                due_at_ms: due,
            }],
        )
        .await
        .unwrap();
    assert_eq!(h.store.promote_due(&q, 10).await.unwrap(), 1);
    let mut item = h
        .store
        .lease(&q, &worker("w"), 1, LEASE)
        .await
        .unwrap()
        .items
        .remove(0);
    assert_eq!(item.envelope.history.len(), 1);
    // As the delivery worker does: the failed attempt counts in the DLQ entry.
    item.envelope.attempts += 1;
    assert_eq!(item.envelope.history[0].error_class, "http_503");
    h.clock.advance(Duration::from_secs(60));
    let failure = FailureInfo::new("timeout", "no answer", "deliver").on("slack");
    h.store
        .dead_letter(
            &q,
            &[DeadLetterRequest {
                receipt: item.receipt,
                envelope: item.envelope,
                failure,
            }],
        )
        .await
        .unwrap();
    let entry = common::failed_entries(h.store.as_ref(), &q, FailedSet::Dlq)
        .await
        .remove(0);
    let history = entry.attempt_history();
    let seen: Vec<_> = history
        .iter()
        .map(|a| (a.attempt, a.error_class.as_str(), a.at_ms))
        .collect();
    assert_eq!(seen, [(1, "http_503", T0), (2, "timeout", T0 + 60_000)]);
}

fn a_silence(id: &str, ends_at_ms: i64) -> Silence {
    Silence {
        id: id.to_owned(),
        matchers: vec![LabelMatcher::new("alertname", MatchOp::Equal, "Disk")],
        starts_at_ms: T0,
        ends_at_ms,
        created_by: "ann".to_owned(),
        comment: "disk swap".to_owned(),
        updated_at_ms: T0,
        kind: SilenceKind::Silence,
    }
}

async fn silences_are_shared_announced_kept_and_pruned_after_they_end(h: Harness) {
    let mut updates = h.store.subscribe().await.unwrap();
    let early = a_silence("s-early", T0 + 60_000);
    let late = a_silence("s-late", T0 + 3_600_000);
    h.store.silence_put(&early).await.unwrap();
    h.store.silence_put(&late).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), updates.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, Update::Silence("s-early".into()));
    let mut all = h.store.silences().await.unwrap();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(all, vec![early.clone(), late.clone()]);
    // Expiring rewrites in place: same id, new end.
    let expired = early.expired_at(T0 + 1_000);
    h.store.silence_put(&expired).await.unwrap();
    assert_eq!(
        h.store.silence_get("s-early").await.unwrap(),
        Some(expired.clone())
    );
    assert_eq!(h.store.silence_get("nope").await.unwrap(), None);
    assert_eq!(
        h.store.silences_prune(T0 + 1_000).await.unwrap(),
        0,
        "the bound is exclusive"
    );
    assert_eq!(h.store.silences_prune(T0 + 1_001).await.unwrap(), 1);
    assert_eq!(h.store.silences().await.unwrap(), vec![late]);
}

fn seen(fp: &str, at: i64) -> SeenAlert {
    SeenAlert {
        fingerprint: fp.to_owned(),
        labels: [("alertname".to_owned(), format!("A-{fp}"))].into(),
        status: AlertStatus::Firing,
        starts_at_ms: at,
        ends_at_ms: None,
        last_seen_ms: at,
    }
}

async fn seen_alerts_read_newest_first_per_partition_and_prune_by_time(h: Harness) {
    let alerts: Vec<SeenAlert> = (0..20)
        .map(|i| seen(&format!("fp{i:02}"), T0 + i))
        .collect();
    h.store.alerts_note(&alerts).await.unwrap();
    // A fingerprint seen again replaces what was known.
    let mut again = seen("fp03", T0 + 100);
    again.status = AlertStatus::Resolved;
    h.store
        .alerts_note(std::slice::from_ref(&again))
        .await
        .unwrap();
    let all = h.store.alerts_seen(T0, 1_000).await.unwrap();
    assert_eq!(all.len(), 20);
    assert_eq!(all[0], again, "newest first");
    assert!(
        all.windows(2)
            .all(|w| w[0].last_seen_ms >= w[1].last_seen_ms)
    );
    let recent = h.store.alerts_seen(T0 + 15, 1_000).await.unwrap();
    assert_eq!(recent.len(), 6, "fp15..fp19 and fp03 again");
    let partitions = usize::from(h.store.keys().partitions());
    let capped = h.store.alerts_seen(T0, 2).await.unwrap();
    assert!(capped.len() <= 2 * partitions && !capped.is_empty());
    assert_eq!(capped[0], again);
    assert_eq!(
        h.store.alerts_prune(T0 + 10).await.unwrap(),
        9,
        "fp00..fp09 but fp03"
    );
    assert_eq!(h.store.alerts_seen(0, 1_000).await.unwrap().len(), 11);

    // Named twice in one batch (one router batch), the later sighting is what stays.
    let first = seen("fp50", T0 + 200);
    let mut later = seen("fp50", T0 + 300);
    later.status = AlertStatus::Resolved;
    h.store.alerts_note(&[first, later.clone()]).await.unwrap();
    let newest = h.store.alerts_seen(T0 + 250, 1_000).await.unwrap();
    assert_eq!(
        newest,
        vec![later],
        "one record, the later one, by its later time"
    );
}

fn grouped_alert(name: &str, now: i64) -> ward::model::Alert {
    ward::model::Alert {
        severity: ward::model::Severity::Warning,
        ..common::alert(name, &[], now)
    }
}

async fn groups_are_written_by_compare_and_set_and_claimed_once_when_due(h: Harness) {
    use ward::engine::grouping::{GroupState, GroupingConfig, NotifyLog};
    let now = h.clock_now();
    let config = GroupingConfig {
        group_by: Some(vec!["alertname".to_owned()]),
        group_wait_ms: 30_000,
        ..GroupingConfig::default()
    };
    let mut state = GroupState::new("ops", "slack", &config, &grouped_alert("Disk", now), now);
    let id = state.id();
    assert_eq!(h.store.group_load(&id).await.unwrap(), None);
    assert!(h.store.group_store(&id, 0, &state).await.unwrap());
    assert!(
        !h.store.group_store(&id, 0, &state).await.unwrap(),
        "exists already"
    );
    let (version, loaded) = h.store.group_load(&id).await.unwrap().unwrap();
    assert_eq!(loaded, state);
    state.insert(&grouped_alert("Disk", now), now + 1);
    assert!(h.store.group_store(&id, version, &state).await.unwrap());
    assert!(
        !h.store.group_store(&id, version, &state).await.unwrap(),
        "a stale version loses"
    );
    assert_eq!(
        h.store.groups_summary().await.unwrap(),
        (1, Some(now + 30_000))
    );

    // Not due yet; then due, claimed once, and held from other flushers.
    let due = || h.store.groups_due(10, Duration::from_secs(60));
    assert!(due().await.unwrap().is_empty());
    h.clock.advance(Duration::from_secs(30));
    assert_eq!(due().await.unwrap(), vec![id.clone()]);
    assert!(due().await.unwrap().is_empty());
    h.clock.advance(Duration::from_secs(60));
    assert_eq!(
        due().await.unwrap(),
        vec![id.clone()],
        "a flusher that died lets the group go after its hold"
    );

    // The notification log expires with its TTL.
    let log = NotifyLog::after_send(
        [state.alerts.keys().next().unwrap().clone()].into(),
        std::collections::BTreeSet::new(),
        h.clock_now(),
    );
    h.store.notify_log_put(&id, &log, 5_000).await.unwrap();
    assert_eq!(h.store.notify_log_get(&id).await.unwrap(), Some(log));
    let (version, _) = h.store.group_load(&id).await.unwrap().unwrap();
    assert!(!h.store.group_delete(&id, version + 1).await.unwrap());
    assert!(h.store.group_delete(&id, version).await.unwrap());
    assert_eq!(h.store.group_load(&id).await.unwrap(), None);
    assert_eq!(h.store.groups_summary().await.unwrap(), (0, None));
}

conformance!(
    enqueue_lease_ack_in_fifo_order,
    batches_over_the_limit_are_refused,
    an_expired_lease_is_recovered_and_its_old_receipt_is_stale,
    recovered_items_go_to_the_front_of_the_queue,
    a_heartbeat_extends_the_lease,
    a_retry_waits_until_due_and_carries_its_error,
    scheduled_work_is_summarised_by_channel_with_its_due_times,
    dead_letters_keep_their_error_metadata,
    dlq_filters_count_and_page_server_side,
    replay_by_ids_returns_entries_and_the_poison_guard_stops_repeats,
    replay_by_filter_moves_bounded_batches_up_to_the_cutoff,
    purge_by_ids_and_by_filter,
    bury_moves_dlq_entries_to_the_dead_list,
    listed_entries_are_read_only_while_still_in_their_set,
    dlq_entries_keep_their_channel_and_filter_by_it,
    corrupt_envelopes_go_to_the_dlq_as_decode_errors,
    stats_report_every_figure_and_the_oldest_age,
    flags_are_shared_and_announced,
    dynamic_config_round_trips_and_announces,
    the_audit_log_is_append_only_and_reads_newest_first,
    partitions_spread_items_and_leases_cover_them_all,
    forward_enqueues_in_the_items_partition_and_acks_it_in_one_step,
    forward_held_leases_what_it_adds_to_the_caller,
    dedup_claims_once_and_remembers_success,
    dedup_batches_answer_per_key_in_order,
    dedup_release_and_hold_touch_only_the_owners_live_claim,
    rate_limits_follow_gcra_per_name,
    ingest_checks_the_partitions_limits_and_cap_then_enqueues_in_one_step,
    ingest_of_concurrent_requests_is_as_if_each_came_alone,
    breakers_are_shared_under_compare_and_set,
    the_text_search_matches_label_annotation_and_error_values,
    newest_first_pages_walk_each_partition_backwards,
    groups_count_the_whole_filtered_set_in_bounded_steps,
    the_attempt_history_travels_with_the_envelope,
    silences_are_shared_announced_kept_and_pruned_after_they_end,
    seen_alerts_read_newest_first_per_partition_and_prune_by_time,
    groups_are_written_by_compare_and_set_and_claimed_once_when_due,
);
