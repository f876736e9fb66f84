//! Pipeline end to end: alerts enqueued on the ingest queue → router → delivery (null backend)
//! → ack, per second, on the memory store and on a real Redis.
//!
//! `cargo bench --bench pipeline` starts a private `redis-server` (or uses `WARD_BENCH_REDIS_URL`).
//! `WARD_BENCH_ITEMS` sets the alert count per run (default 200 000); `WARD_BENCH_ONLY=memory`
//! or `=redis` runs one half, `=silences` only the cost of 1 000 active silences; `WARD_BENCH_BATCH` overrides `queues.batch_size` (default 100).
//! Each figure is the median of three runs (`WARD_BENCH_RUNS` to change); redis-benchmark's LPUSH
//! (unpipelined, the target's unit: each Redis figure is printed as a ratio of it) is measured
//! between the Redis configurations (`WARD_BENCH_CONFIGS="4x2,4x4"`: partitions ×
//! workers). Each Redis figure also gives the CPU time per alert of Ward (this process, the
//! producer's enqueue included, not the building of its alerts) and of redis-server, which vary
//! far less than rates on a shared machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use ward::config::{Config, IngestConfig};
use ward::delivery::{Backend, NullBackend};
use ward::engine::breaker::BreakerConfig;
use ward::engine::routing::RoutingConfig;
use ward::model::{Alert, AlertStatus, Envelope, Payload, QueueName, Severity, fingerprint};
use ward::pipeline::{Pipeline, PipelineParts};
use ward::store::{KeySchema, MAX_BATCH, MemoryStore, RedisStore, RedisStoreOptions, Store};
use ward::telemetry::{EventLog, Metrics};

// The allocator the `ward` binary ships with (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn alert(i: usize, now: i64) -> Envelope {
    let labels: BTreeMap<String, String> = [
        ("alertname".to_owned(), "DiskFull".to_owned()),
        ("instance".to_owned(), format!("db-{i}:9100")),
    ]
    .into_iter()
    .collect();
    let alert = Alert {
        fingerprint: fingerprint(&labels),
        labels,
        annotations: BTreeMap::new(),
        severity: Severity::Critical,
        status: AlertStatus::Firing,
        tenant: "bench".to_owned(),
        starts_at_ms: now,
        ends_at_ms: None,
        generator_url: None,
        correlation_id: format!("bench-{i}"),
        test: false,
    };
    Envelope::with_payload("bench", Payload::encode(&alert).unwrap(), now)
}

/// `items` alerts in batches of 500. Building and encoding them is the sender's work (as it is
/// wrk's in the ingest bench), so it is done before the clock starts and the CPU count begins.
fn alerts(items: usize, now: i64) -> Vec<Vec<Envelope>> {
    (0..items)
        .step_by(MAX_BATCH)
        .map(|first| {
            (first..(first + MAX_BATCH).min(items))
                .map(|i| alert(i, now))
                .collect()
        })
        .collect()
}

/// `workers` pipelines (router + delivery each) on `store`, one producer enqueueing `batches`.
/// Returns alerts delivered per second, first enqueue to last ack.
async fn run(store: Arc<dyn Store>, batches: Vec<Vec<Envelope>>, workers: usize) -> f64 {
    run_with(store, batches, workers, 0).await
}

/// `silences` active silences that match none of the bench's alerts, as operators write them
/// (an alertname and an instance): every delivery is checked against them all.
async fn add_silences(store: &Arc<dyn Store>, silences: usize) {
    let now = store.now_ms();
    for i in 0..silences {
        let silence = ward::model::Silence {
            id: format!("bench-{i}"),
            matchers: ward::engine::matcher::parse_matchers(&format!(
                "alertname=Other{} instance=host-{i}",
                i % 50
            ))
            .unwrap(),
            starts_at_ms: now - 1_000,
            ends_at_ms: now + 3_600_000,
            created_by: "bench".into(),
            comment: "bench".into(),
            updated_at_ms: now,
            kind: ward::model::SilenceKind::Silence,
        };
        store.silence_put(&silence).await.unwrap();
    }
}

async fn run_with(
    store: Arc<dyn Store>,
    batches: Vec<Vec<Envelope>>,
    workers: usize,
    silences: usize,
) -> f64 {
    add_silences(&store, silences).await;
    let items: usize = batches.iter().map(Vec::len).sum();
    let null = Arc::new(NullBackend::new("null"));
    let stop = CancellationToken::new();
    let mut config = Config::default();
    config.workers.idle_poll_ms = 1;
    config.workers.stats_interval_ms = 60_000;
    config.workers.concurrency = 256;
    if let Some(batch) = std::env::var("WARD_BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.queues.batch_size = batch;
    }
    let mut running = Vec::new();
    for _ in 0..workers {
        let backend: Arc<dyn Backend> = null.clone();
        let pipeline = Pipeline::new(PipelineParts {
            store: store.clone(),
            backends: vec![backend],
            routing: RoutingConfig {
                default_channels: vec!["null".to_owned()],
                ..RoutingConfig::default()
            },
            policies: Vec::new(),
            breaker: BreakerConfig::default(),
            ingest: IngestConfig::default(),
            queues: config.queues.clone(),
            workers: config.workers.clone(),
            metrics: Metrics::new(),
            events: EventLog::disabled(),
            alerting: ward::config::alerting::AlertingConfig::default(),
        })
        .unwrap();
        running.push(pipeline.spawn(&stop, false).await.unwrap());
        let deadline = Instant::now() + Duration::from_secs(60);
        while pipeline.suppressor().silences.len() < silences {
            assert!(
                Instant::now() < deadline,
                "the workers never read the silences"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let queue = QueueName::ingest();
    let started = Instant::now();
    let producer = {
        let store = store.clone();
        tokio::spawn(async move {
            for batch in batches {
                store.enqueue(&queue, &batch).await.unwrap();
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(600);
    while null.accepted() < items as u64 {
        assert!(Instant::now() < deadline, "the pipeline stalled");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let rate = items as f64 / started.elapsed().as_secs_f64();
    producer.await.unwrap();
    stop.cancel();
    for r in running {
        r.join().await;
    }
    assert_eq!(null.accepted(), items as u64, "delivered more than once");
    rate
}

/// Runs per figure; the median is reported, as this machine's neighbours come and go.
const RUNS: usize = 3;
fn runs() -> usize {
    std::env::var("WARD_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(RUNS)
}

/// (partitions, workers) per Redis figure; `WARD_BENCH_CONFIGS="4x2,4x4"` to choose.
fn redis_configs() -> Vec<(u16, usize)> {
    let parsed: Option<Vec<(u16, usize)>> = std::env::var("WARD_BENCH_CONFIGS").ok().map(|v| {
        v.split(',')
            .filter_map(|c| {
                let (p, w) = c.trim().split_once('x')?;
                Some((p.parse().ok()?, w.parse().ok()?))
            })
            .collect()
    });
    parsed
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| vec![(1, 1), (1, 2), (4, 2), (4, 4)])
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn spread(values: &[f64]) -> String {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(0.0, f64::max);
    format!("(runs {low:.0}–{high:.0})")
}

/// The same run with and without 1 000 active silences, alternating so load changes hit both;
/// the target is a loss of at most 10 %.
async fn silence_cost(items: usize, only: &str) {
    const SILENCES: usize = 1_000;
    let (_server, url) = if only == "memory" {
        (None, String::new())
    } else {
        common::start_redis()
    };
    for backend in ["memory", "redis"] {
        if (backend == "redis" && only == "memory") || (backend == "memory" && only == "redis") {
            continue;
        }
        let (mut plain, mut silenced) = (Vec::new(), Vec::new());
        for run_index in 0..runs() {
            for (silences, into) in [(0, &mut plain), (SILENCES, &mut silenced)] {
                let store: Arc<dyn Store> = if backend == "memory" {
                    Arc::new(MemoryStore::new(1))
                } else {
                    let prefix = format!("benchs{silences}r{run_index}");
                    let options = RedisStoreOptions::new(&url, KeySchema::ward(&prefix, 1));
                    Arc::new(RedisStore::connect(options).await.unwrap())
                };
                let batches = alerts(items, store.now_ms());
                into.push(run_with(store, batches, 1, silences).await);
            }
        }
        let (p, s) = (median(plain.clone()), median(silenced.clone()));
        println!(
            "  {backend:<6}  1 worker, {SILENCES} silences: {s:>10.0} alerts/s {} vs {p:.0} without {}: {:+.1} % (target ≥ -10 %)",
            spread(&silenced),
            spread(&plain),
            (s / p - 1.0) * 100.0
        );
    }
}

fn main() {
    let items = common::items(200_000);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        println!(
            "pipeline end to end (enqueue → route → deliver to null → ack), {items} alerts per run, \
             median of {} runs",
            runs()
        );
        let only = std::env::var("WARD_BENCH_ONLY").unwrap_or_default();
        if only == "silences" {
            silence_cost(items, "").await;
            return;
        }
        for workers in [1, 2] {
            if only == "redis" {
                break;
            }
            let mut rates = Vec::new();
            for _ in 0..runs() {
                let memory: Arc<dyn Store> = Arc::new(MemoryStore::new(1));
                let batches = alerts(items, memory.now_ms());
                rates.push(run(memory, batches, workers).await);
            }
            println!(
                "  memory  {workers} worker(s):                 {:>10.0} alerts/s {}",
                median(rates.clone()),
                spread(&rates)
            );
        }
        silence_cost(items, &only).await;
        if only == "memory" {
            return;
        }
        let (_server, url) = common::start_redis();
        let mut lpush = Vec::new();
        let mut results = Vec::new();
        for (partitions, workers) in redis_configs() {
            // The reference is measured between the runs, on the same server, as load varies.
            lpush.extend(common::lpush_rate(&url));
            let (mut rates, mut ward_cpu, mut redis_cpu) = (Vec::new(), Vec::new(), Vec::new());
            for run_index in 0..runs() {
                let prefix = format!("benchp{partitions}w{workers}r{run_index}");
                let schema = KeySchema::ward(&prefix, partitions);
                let options = RedisStoreOptions::new(&url, schema);
                let redis: Arc<dyn Store> = Arc::new(RedisStore::connect(options).await.unwrap());
                let batches = alerts(items, redis.now_ms());
                let before = (common::own_cpu_seconds(), common::redis_cpu_seconds(&url));
                rates.push(run(redis, batches, workers).await);
                let after = (common::own_cpu_seconds(), common::redis_cpu_seconds(&url));
                if let (Some(w0), Some(r0), Some(w1), Some(r1)) = (before.0, before.1, after.0, after.1)
                {
                    ward_cpu.push((w1 - w0) / items as f64 * 1e6);
                    redis_cpu.push((r1 - r0) / items as f64 * 1e6);
                }
            }
            results.push((partitions, workers, rates, ward_cpu, redis_cpu));
        }
        lpush.extend(common::lpush_rate(&url));
        let reference = (!lpush.is_empty()).then(|| median(lpush.clone()));
        match reference {
            None => println!("  redis-benchmark not available: no LPUSH reference"),
            Some(reference) => println!(
                "  redis-benchmark LPUSH (unpipelined), same server: {reference:>10.0} req/s {} \
                 (target: Ward on Redis ≥ 1.0 × this)",
                spread(&lpush),
            ),
        }
        for (partitions, workers, rates, ward_cpu, redis_cpu) in results {
            // CPU per alert varies far less than the rate on a shared machine.
            let cpu = if ward_cpu.is_empty() {
                String::new()
            } else {
                format!(
                    "; CPU per alert: Ward {:.1} µs, Redis {:.1} µs",
                    median(ward_cpu),
                    median(redis_cpu)
                )
            };
            let rate = median(rates.clone());
            let ratio = reference.map_or_else(String::new, |r| format!(" = {:.2} × LPUSH", rate / r));
            println!(
                "  redis   {workers} worker(s), {partitions} partition(s):  {rate:>10.0} alerts/s{ratio} {}{cpu}",
                spread(&rates)
            );
        }
    });
}
