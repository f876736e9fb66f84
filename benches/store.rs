//! Store throughput: enqueue + lease + ack per second, on the memory store and on a real Redis.
//!
//! `cargo bench --bench store` starts a private `redis-server` (or uses `WARD_BENCH_REDIS_URL`).
//! Set `WARD_BENCH_ITEMS` to change the item count (default 200 000 per run).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use ward::model::{Envelope, QueueName, WorkerId};
use ward::store::{
    DeadLetterRequest, DlqCursor, DlqFilter, DlqScope, FailedSet, KeySchema, MemoryStore,
    RedisStore, RedisStoreOptions, ReplayOptions, Store,
};

const LEASE: Duration = Duration::from_secs(60);

/// `workers` concurrent loops, each: enqueue a batch, lease it, ack it. Returns items per second.
async fn cycle(store: Arc<dyn Store>, items: usize, batch: usize, workers: usize) -> f64 {
    let q = QueueName::new("bench").unwrap();
    let per_worker = items / workers;
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let store = store.clone();
            let q = q.clone();
            tokio::spawn(async move {
                let worker = WorkerId::new(format!("bench-{w}"));
                let mut done = 0;
                while done < per_worker {
                    let now = store.now_ms();
                    let envelopes: Vec<_> = (0..batch)
                        .map(|i| {
                            Envelope::new(
                                "bench",
                                json!({ "i": i, "text": "disk full on db-1" }),
                                now,
                            )
                        })
                        .collect();
                    store.enqueue(&q, &envelopes).await.unwrap();
                    let lease = store.lease(&q, &worker, batch, LEASE).await.unwrap();
                    let receipts: Vec<_> = lease.items.into_iter().map(|i| i.receipt).collect();
                    let outcome = store.ack(&q, &receipts).await.unwrap();
                    done += outcome.applied;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// Fill the DLQ with `items` entries, then time a full replay by filter in 500-entry batches.
async fn replay(store: Arc<dyn Store>, items: usize) -> (f64, usize) {
    let q = QueueName::new("replay").unwrap();
    let worker = WorkerId::new("bench");
    let mut filled = 0;
    while filled < items {
        let now = store.now_ms();
        let envelopes: Vec<_> = (0..500)
            .map(|i| Envelope::new("bench", json!(i), now))
            .collect();
        store.enqueue(&q, &envelopes).await.unwrap();
        let lease = store.lease(&q, &worker, 500, LEASE).await.unwrap();
        let requests: Vec<_> = lease
            .items
            .into_iter()
            .map(|i| DeadLetterRequest {
                receipt: i.receipt,
                envelope: i.envelope,
                failure: ward::model::FailureInfo::new("timeout", "bench", "deliver"),
            })
            .collect();
        filled += store.dead_letter(&q, &requests).await.unwrap().applied;
    }
    let started = Instant::now();
    let mut cursor = DlqCursor::start();
    let mut calls = 0;
    loop {
        let scope = DlqScope::Filter {
            filter: DlqFilter::default(),
            cursor,
        };
        let batch = store
            .replay(&q, FailedSet::Dlq, &scope, ReplayOptions::default())
            .await
            .unwrap();
        calls += 1;
        match batch.next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    (items as f64 / started.elapsed().as_secs_f64(), calls)
}

/// Fill a DLQ with `items` alert-shaped entries (delivery jobs, about 600 bytes each).
async fn fill_alerts(store: &Arc<dyn Store>, q: &QueueName, items: usize) {
    let worker = WorkerId::new("bench");
    let mut filled = 0;
    while filled < items {
        let now = store.now_ms();
        let envelopes: Vec<_> = (0..500)
            .map(|i| {
                let alert = json!({
                    "labels": {"alertname": format!("DiskFull{}", i % 7), "host": format!("db-{i}"),
                               "service": "checkout", "region": "eu-west-1"},
                    "annotations": {"summary": "Disk usage is above 95% on the data volume",
                                    "runbook": "https://runbooks.example.com/disk-full"},
                    "severity": "critical", "status": "firing", "tenant": "bench",
                    "fingerprint": "0123456789abcdef", "starts_at_ms": now,
                    "correlation_id": format!("corr-{i}"),
                });
                Envelope::new(
                    "bench",
                    json!({"alert": alert, "channel": "slack-ops", "retry_policy": "default"}),
                    now,
                )
            })
            .collect();
        store.enqueue(q, &envelopes).await.unwrap();
        let lease = store.lease(q, &worker, 500, LEASE).await.unwrap();
        let requests: Vec<_> = lease
            .items
            .into_iter()
            .map(|i| DeadLetterRequest {
                receipt: i.receipt,
                envelope: i.envelope,
                failure: ward::model::FailureInfo::new("http_500", "slack answered 500", "deliver")
                    .on("slack-ops"),
            })
            .collect();
        filled += store.dead_letter(q, &requests).await.unwrap().applied;
    }
}

/// Script time (server side, `INFO commandstats`) of `evalsha` so far: (calls, µs).
fn script_usec(url: &str) -> (u64, u64) {
    let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut conn)
        .unwrap();
    let line = info.lines().find(|l| l.starts_with("cmdstat_evalsha:"));
    let field = |name: &str| {
        line.and_then(|l| l.split([':', ',']).find_map(|f| f.strip_prefix(name)))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("calls="), field("usec="))
}

/// The server time of one full-budget DLQ step, by kind: grouping steps, and page steps under a
/// field filter or a text search whose text the JSON holds only as a key (every body decoded:
/// the worst case) or nowhere. Returns (kind, µs a step, entries a step examines).
async fn dlq_steps(
    store: Arc<dyn Store>,
    url: &str,
    items: usize,
) -> Vec<(&'static str, f64, u64)> {
    let q = QueueName::new("steps").unwrap();
    fill_alerts(&store, &q, items).await;
    let search = |text: &str| DlqFilter {
        text: Some(text.to_owned()),
        ..DlqFilter::default()
    };
    let class = DlqFilter {
        error_class: Some("no-such-class".to_owned()),
        ..DlqFilter::default()
    };
    let cursor = DlqCursor::start();
    let runs = 20;
    let mut out = Vec::new();
    for (name, filter, group) in [
        ("group step, no search", DlqFilter::default(), true),
        ("group step, search on every key", search("alertname"), true),
        ("page step, field filter matching nothing", class, false),
        ("page step, search on every key", search("alertname"), false),
        (
            "page step, search matching nothing",
            search("no-such-text"),
            false,
        ),
    ] {
        let (calls, usec) = script_usec(url);
        let mut examined = if filter.text.is_some() {
            ward::store::TEXT_SCAN_BUDGET
        } else {
            ward::store::SCAN_BUDGET
        } as u64;
        for _ in 0..runs {
            if group {
                let step = store
                    .failed_groups(
                        &q,
                        FailedSet::Dlq,
                        &filter,
                        ward::store::GROUP_BUCKET_MS,
                        &cursor,
                    )
                    .await
                    .unwrap();
                examined = step.examined;
            } else {
                store
                    .failed_page(&q, FailedSet::Dlq, &filter, &cursor, 100)
                    .await
                    .unwrap();
            }
        }
        let (calls_after, usec_after) = script_usec(url);
        let per = (usec_after - usec) as f64 / (calls_after - calls).max(1) as f64;
        out.push((name, per, examined));
    }
    out
}

fn main() {
    let items = common::items(200_000);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        println!("store throughput: enqueue + lease + ack, {items} items per run");
        for (batch, workers) in [(1, 1), (100, 1), (500, 1), (500, 4)] {
            let n = if batch == 1 { items / 20 } else { items };
            let memory: Arc<dyn Store> = Arc::new(MemoryStore::new(1));
            let rate = cycle(memory, n, batch, workers).await;
            println!("  memory  batch {batch:>3} x {workers} workers: {rate:>12.0} items/s");
        }
        let (_server, url) = common::start_redis();
        if let Some(rate) = common::lpush_rate(&url) {
            println!("  redis-benchmark LPUSH (unpipelined), same server: {rate:>10.0} req/s");
        }
        for (partitions, batch, workers) in [(1, 1, 1), (1, 100, 1), (1, 500, 1), (1, 500, 4), (4, 500, 4)] {
            let n = if batch == 1 { items / 20 } else { items };
            let options = RedisStoreOptions::new(&url, KeySchema::ward(&format!("bench{partitions}{batch}{workers}"), partitions));
            let redis: Arc<dyn Store> = Arc::new(RedisStore::connect(options).await.unwrap());
            let rate = cycle(redis, n, batch, workers).await;
            println!("  redis   batch {batch:>3} x {workers} workers, {partitions} partition(s): {rate:>12.0} items/s");
        }
        let memory: Arc<dyn Store> = Arc::new(MemoryStore::new(1));
        let (rate, calls) = replay(memory, items).await;
        println!("DLQ replay by filter, {items} entries: memory {rate:.0} entries/s in {calls} calls");
        let options = RedisStoreOptions::new(&url, KeySchema::ward("benchreplay", 1));
        let redis: Arc<dyn Store> = Arc::new(RedisStore::connect(options).await.unwrap());
        let (rate, calls) = replay(redis, items).await;
        println!("DLQ replay by filter, {items} entries: redis  {rate:.0} entries/s in {calls} calls");
        let options = RedisStoreOptions::new(&url, KeySchema::ward("benchsteps", 1));
        let redis: Arc<dyn Store> = Arc::new(RedisStore::connect(options).await.unwrap());
        for (name, micros, examined) in dlq_steps(redis, &url, 20_000).await {
            println!("DLQ {name}: {micros:.0} µs of script time a step ({examined} entries examined)");
        }
    });
}
