//! Control-room frame time: every view, and the wall layout, drawn at 200×60 on ratatui's
//! `TestBackend` from a realistic snapshot (both queues holding items, a DLQ of a few hundred
//! entries with its first page loaded, breakers in every state, flags, thresholds, audit
//! records, live workers and ten minutes of history), built the way the control room builds it:
//! the poller's `read_once` folded in by its `Builder`, here on the memory store.
//!
//! `cargo bench --bench tui`. Each figure is over `WARD_BENCH_FRAMES` frames (default 2 000)
//! after 200 frames of warm-up, and the whole `terminal.draw` is timed (layout and widgets,
//! ratatui's diff against the previous frame, the backend write). Three cases per view:
//! - steady: the same state drawn again (the diff finds nothing to write);
//! - tick: the clock one second on each frame, as the once-a-second idle redraw (ages change);
//! - full: after `terminal.clear()` (untimed), so every cell is diffed against an empty screen,
//!   as on the first frame, a resize or a resume.
//!
//! Per case: the median and p99 of the frame's wall time, and the mean CPU time per frame of
//! the drawing thread (/proc, 10 ms ticks over the whole run), which preemption on a busy
//! machine does not inflate as it does the p99.
//!
//! `WARD_BENCH_ONLY=<row>` (e.g. `Overview`, `wall`) measures one row only.
//!
//! Target: ≤ 1 ms per frame.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ward::store::prelude::*;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ward::engine::breaker::{Breaker, BreakerConfig, CallOutcome};
use ward::engine::clock::ManualClock;
use ward::model::{
    AuditRecord, Envelope, FailureInfo, Flag, FlagState, QueueName, Threshold, WorkerBeat, WorkerId,
};
use ward::sources::poller::{Builder, HISTORY_POINTS, PollerConfig, read_once};
use ward::sources::{DlqQuery, Snapshot, Target};
use ward::store::{
    DeadLetterRequest, DlqCursor, DlqFilter, DlqScope, FailedSet, MAX_BATCH, MemoryStore,
    RetryRequest,
};
use ward::ui::{App, Keymap, Mode, Theme, View};

// The allocator the `ward` binary ships with (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const WIDTH: u16 = 200;
const HEIGHT: u16 = 60;
const WARM_UP: usize = 200;
/// 2026-11-25T00:00:00Z: a fixed start, so every run draws the same figures.
const T0: i64 = 1_795_564_800_000;
const TARGET_MS: f64 = 1.0;

fn frames() -> usize {
    std::env::var("WARD_BENCH_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

fn envelope(i: usize, now: i64) -> Envelope {
    let tenant = ["team-a", "team-b", "payments", "search"][i % 4];
    let alertname = ["HighErrorRate", "DiskFull", "LatencyP99", "PodCrashLoop"][i % 4];
    let service = ["checkout", "search", "billing"][i % 3];
    Envelope::new(
        tenant,
        serde_json::json!({
            "labels": {
                "alertname": alertname,
                "service": service,
                "instance": format!("node-{}:9100", i % 37),
            },
            "annotations": {"summary": format!("alert number {i} of the bench")},
        }),
        now,
    )
}

async fn enqueue(store: &MemoryStore, queue: &QueueName, from: usize, n: usize) {
    let now = store.now_ms();
    let envelopes: Vec<Envelope> = (from..from + n).map(|i| envelope(i, now)).collect();
    for chunk in envelopes.chunks(MAX_BATCH) {
        store.enqueue(queue, chunk).await.unwrap();
    }
}

/// `n` entries in the DLQ of `queue`, through the store (enqueue, lease, dead-letter), with
/// failures spread over classes, channels and failure times.
async fn fill_dlq(store: &MemoryStore, clock: &ManualClock, queue: &QueueName, n: usize) {
    const FAILURES: [(&str, &str, &str, &str); 5] = [
        (
            "http_500",
            "slack answered 500 Internal Server Error",
            "deliver",
            "slack-ops",
        ),
        (
            "timeout",
            "no answer from pagerduty within 10 s",
            "deliver",
            "pager",
        ),
        (
            "http_429",
            "rate limited by the webhook (retry-after 30)",
            "deliver",
            "webhook-ci",
        ),
        (
            "tls",
            "TLS handshake failed: certificate expired",
            "deliver",
            "mail",
        ),
        ("route", "no route for tenant search", "route", ""),
    ];
    enqueue(store, queue, 100_000, n).await;
    let worker = WorkerId::new("bench-filler");
    let mut k = 0;
    loop {
        let lease = store
            .lease(queue, &worker, 50, Duration::from_secs(30))
            .await
            .unwrap();
        if lease.items.is_empty() {
            break;
        }
        let requests: Vec<DeadLetterRequest> = lease
            .items
            .into_iter()
            .map(|item| {
                let (class, message, stage, channel) = FAILURES[k % FAILURES.len()];
                k += 1;
                DeadLetterRequest {
                    receipt: item.receipt,
                    envelope: item.envelope,
                    failure: FailureInfo::new(class, message, stage).on(channel),
                }
            })
            .collect();
        store.dead_letter(queue, &requests).await.unwrap();
        clock.advance(Duration::from_secs(7));
    }
}

fn flag(value: &str, reason: &str, now: i64) -> FlagState {
    FlagState {
        value: value.to_owned(),
        owner: "ana@ops-1".to_owned(),
        reason: reason.to_owned(),
        set_at_ms: now - 600_000,
        expires_at_ms: Some(now + 3_000_000),
    }
}

async fn breakers(store: &MemoryStore, config: &BreakerConfig, now: i64) {
    let calls = |breaker: &mut Breaker, at: i64, n: usize, failures: usize| {
        for i in 0..n {
            let outcome = if i < failures {
                CallOutcome::Failure
            } else {
                CallOutcome::Success
            };
            breaker.record(config, at, outcome, false);
        }
    };
    // Opened just now: still open, counting down.
    let mut open = Breaker::new(now - 3_600_000);
    calls(&mut open, now - 5_000, 40, 33);
    // Opened 40 s ago: half-open by now (open wait 30 s).
    let mut half_open = Breaker::new(now - 3_600_000);
    calls(&mut half_open, now - 40_000, 30, 30);
    let mut closed = Breaker::new(now - 3_600_000);
    calls(&mut closed, now - 2_000, 120, 3);
    let mut quiet = Breaker::new(now - 3_600_000);
    calls(&mut quiet, now - 2_000, 4, 0);
    let mut forced = Breaker::new(now - 3_600_000);
    forced.force_open(
        now - 60_000,
        now + 840_000,
        "ana@ops-1",
        "vendor incident #4711",
    );
    let mut disabled = Breaker::new(now - 3_600_000);
    disabled.disable(now - 90_000, "bo@ops-2", "migrating the SMTP relay");
    for (name, breaker) in [
        ("slack-ops", open),
        ("pager", half_open),
        ("mail", closed),
        ("teams", quiet),
        ("webhook-ci", forced),
        ("sms", disabled),
    ] {
        assert!(store.breaker_store(name, 0, &breaker).await.unwrap());
    }
}

async fn flags_and_config(store: &MemoryStore, now: i64) {
    let ingest = QueueName::ingest();
    let delivery = QueueName::delivery();
    for (key, value) in [
        (Threshold::Warn.config_key(&ingest), "400"),
        (Threshold::Shed.config_key(&ingest), "1000"),
        (Threshold::Warn.config_key(&delivery), "200"),
        (Threshold::Shed.config_key(&delivery), "2000"),
    ] {
        store.config_set(&key, Some(value)).await.unwrap();
    }
    let flags = [
        (
            Flag::SheddingMode,
            flag("dlq", "burst from the batch job", now),
        ),
        (
            Flag::EmergencyStop(Some("webhook-ci".to_owned())),
            flag("1", "CI webhook loops on its own alerts", now),
        ),
        (
            Flag::ConfigOverride(Threshold::Shed.config_key(&ingest)),
            flag("1000", "raised during the incident", now),
        ),
    ];
    for (name, state) in flags {
        store.set_flag(&name, Some(&state)).await.unwrap();
    }
}

async fn audit(store: &MemoryStore, now: i64) {
    let actions = [
        (
            "replay",
            "replay entries where error=http_500 from the DLQ of delivery",
            "completed: 57",
        ),
        ("shedding", "set shedding_mode to dlq", "completed"),
        (
            "force_open",
            "force open breaker webhook-ci for 15m",
            "completed",
        ),
        (
            "purge",
            "purge entries where tenant=search from the DLQ of delivery",
            "cancelled after 1 000 of 4 212",
        ),
        (
            "test_alert",
            "send a test alert to pager",
            "failed: timeout",
        ),
    ];
    for i in 0..60i64 {
        let (action, scope, result) = actions[i as usize % actions.len()];
        let record = AuditRecord {
            at_ms: now - (60 - i) * 45_000,
            who: ["ana@ops-1", "bo@ops-2", "automatic@ward"][i as usize % 3].to_owned(),
            action: action.to_owned(),
            scope: scope.to_owned(),
            plan: serde_json::Value::Null,
            result: result.to_owned(),
            duration_ms: 40 + i as u64 * 3,
            origin: ["key", "command", "headless", "automatic"][i as usize % 4].to_owned(),
            target: "prod".to_owned(),
            batch_id: format!("01PLAN{i:020}"),
            reason: String::new(),
        };
        store.audit_append(&record).await.unwrap();
    }
}

/// A control room's view of a busy deployment: the snapshot the poller's own builder makes after
/// `HISTORY_POINTS` one-second reads (full sparklines), the last with the DLQ browser's page.
#[allow(clippy::too_many_lines)] // one fixture, step by step
async fn snapshot(dlq_query: &DlqQuery) -> Arc<Snapshot> {
    let clock = ManualClock::new(T0);
    let store = MemoryStore::with_clock(1, Arc::new(clock.clone()));
    let ingest = QueueName::ingest();
    let delivery = QueueName::delivery();
    fill_dlq(&store, &clock, &delivery, 320).await;
    // A few entries given up on: the dead list.
    let oldest = store
        .failed_page(
            &delivery,
            FailedSet::Dlq,
            &DlqFilter::default(),
            &DlqCursor::start(),
            9,
        )
        .await
        .unwrap();
    let ids = oldest.entries.into_iter().map(|e| e.meta.id).collect();
    store
        .bury(&delivery, &DlqScope::Ids(ids), MAX_BATCH)
        .await
        .unwrap();
    let config = BreakerConfig::default();
    let now = store.now_ms();
    breakers(&store, &config, now).await;
    flags_and_config(&store, now).await;
    audit(&store, now).await;
    enqueue(&store, &ingest, 0, 1_200).await;
    enqueue(&store, &delivery, 10_000, 350).await;
    let worker = WorkerId::new("bench-worker");
    // In flight (leased for the whole run), a dozen of them scheduled for a retry instead.
    let leased = store
        .lease(&delivery, &worker, 40, Duration::from_secs(86_400))
        .await
        .unwrap();
    let retries: Vec<RetryRequest> = leased.items[..12]
        .iter()
        .map(|item| RetryRequest {
            receipt: item.receipt.clone(),
            envelope: item.envelope.clone(),
            due_at_ms: now + 3_600_000,
        })
        .collect();
    store.schedule_retry(&delivery, &retries).await.unwrap();

    let poller = PollerConfig {
        queues: vec![ingest.clone(), delivery.clone()],
        breaker: config,
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(2),
        stale_after: 2,
        audit_rows: 50,
        heartbeat_interval: Duration::from_secs(1),
        rules: ward::engine::suppress::Rules::default(),
        target: Target {
            label: "prod-eu-west".to_owned(),
            backend: "memory".to_owned(),
            address: "in-process".to_owned(),
            read_only: None,
            ..Target::default()
        },
    };
    let mut builder = Builder::new(poller, store.backend_name(), now);
    let workers = ["ops-1:4242:beef", "ops-2:4243:cafe", "ops-3:977:f00d"];
    let started = now - 3_600_000;
    let mut delivered = [0u64; 3];
    for step in 0..HISTORY_POINTS {
        clock.advance(Duration::from_secs(1));
        let at = store.now_ms();
        // Some traffic, so the depth sparkline moves.
        enqueue(&store, &ingest, 200_000 + step * 8, step % 9).await;
        let taken = store
            .lease(&ingest, &worker, (step + 3) % 8, Duration::from_secs(30))
            .await
            .unwrap();
        let receipts: Vec<_> = taken.items.into_iter().map(|i| i.receipt).collect();
        store.ack(&ingest, &receipts).await.unwrap();
        for (n, id) in workers.iter().enumerate() {
            delivered[n] += 30 + (step as u64 * 7 + n as u64) % 15;
            let beat = WorkerBeat {
                at_ms: at,
                started_ms: started,
                role: ward::model::Role::All,
                ingested: delivered[n] + 40,
                routed: delivered[n] + 20,
                delivered: delivered[n],
                failed: (step as u64 / 10) * (n as u64 + 1),
                dead_lettered: step as u64 / 40,
                suppressed: 0,
            };
            store.beat(id, Some(&beat)).await.unwrap();
        }
        let query = (step + 1 == HISTORY_POINTS).then_some(dlq_query);
        let read = read_once(&store, &builder.config, query).await;
        builder.apply(read, query, at);
    }
    Arc::new(builder.snapshot(store.now_ms()))
}

#[derive(Debug, Clone, Copy)]
enum Case {
    /// The same state again: the diff writes nothing.
    Steady,
    /// The clock a second on: header time and ages change, as on the idle tick.
    Tick,
    /// After `terminal.clear()`: every cell diffed against an empty screen.
    Full,
}

/// CPU time this thread has used, in clock ticks (1/100 s), from /proc; `None` off Linux.
fn thread_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// What one row and case measured.
struct Figures {
    /// Wall time of each measured frame, in microseconds.
    times: Vec<f64>,
    /// This thread's CPU time over the measured frames ÷ frames, in microseconds: a mean that
    /// time spent preempted (a busy machine) does not inflate. Includes the untimed steps.
    cpu_mean: Option<f64>,
}

impl Figures {
    fn print(mut self) -> f64 {
        self.times.sort_by(f64::total_cmp);
        let at = |q: f64| self.times[((self.times.len() - 1) as f64 * q).round() as usize];
        let (median, p99) = (at(0.5), at(0.99));
        let cpu = self
            .cpu_mean
            .map_or_else(|| "?".to_owned(), |c| format!("{c:.0}"));
        print!(" {median:>8.1} {p99:>8.1} {cpu:>7}");
        p99
    }
}

/// `frames` frames after the warm-up, each prepared by `prepare` (untimed) then drawn by `draw`.
fn frames_of(
    terminal: &mut Terminal<TestBackend>,
    frames: usize,
    mut prepare: impl FnMut(&mut Terminal<TestBackend>, usize),
    mut draw: impl FnMut(&mut Terminal<TestBackend>),
) -> Figures {
    let mut times = Vec::with_capacity(frames);
    let mut cpu_start = None;
    for i in 0..WARM_UP + frames {
        if i == WARM_UP {
            cpu_start = thread_cpu_ticks();
        }
        prepare(terminal, i);
        let start = Instant::now();
        draw(terminal);
        let elapsed = start.elapsed();
        if i >= WARM_UP {
            times.push(elapsed.as_secs_f64() * 1e6);
        }
    }
    let cpu_mean = cpu_start
        .zip(thread_cpu_ticks())
        .map(|(start, end)| (end - start) as f64 * 10_000.0 / frames as f64);
    Figures { times, cpu_mean }
}

/// One view (or the wall) drawn `frames` times in one case.
fn measure(app: &mut App, theme: &Theme, case: Case, frames: usize) -> Figures {
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).unwrap();
    let base = app.ui.now_ms;
    let app = std::cell::RefCell::new(app);
    let figures = frames_of(
        &mut terminal,
        frames,
        |terminal, i| match case {
            Case::Steady => {}
            // A minute of seconds, round and round: ages stay what a 1 s refresh shows.
            Case::Tick => app.borrow_mut().tick(base + (i % 60) as i64 * 1_000),
            Case::Full => terminal.clear().unwrap(),
        },
        |terminal| {
            let app = app.borrow();
            terminal
                .draw(|frame| ward::ui::views::draw(app.scene(), theme, frame))
                .unwrap();
        },
    );
    app.borrow_mut().tick(base);
    figures
}

/// ratatui's own floor at this size: frames with nothing drawn (buffer reset, diff, swap).
fn empty_frames(cases: &[(&str, Case)], frames: usize) {
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).unwrap();
    print!("  {:<14}", "(empty frame)");
    for &(_, case) in cases {
        let figures = frames_of(
            &mut terminal,
            frames,
            |terminal, _| {
                if matches!(case, Case::Full) {
                    terminal.clear().unwrap();
                }
            },
            |terminal| {
                terminal.draw(|_| {}).unwrap();
            },
        );
        figures.print();
    }
    println!();
}

/// What the snapshot holds, so the figures can be read against it.
fn describe(snapshot: &Snapshot) {
    let store = snapshot.store.as_ref().unwrap();
    let page = snapshot.dlq_page.as_ref().unwrap();
    assert!(
        page.error.is_none(),
        "the DLQ page failed: {:?}",
        page.error
    );
    println!(
        "  snapshot: {} queued, {} in flight, {} scheduled, DLQ {} (page of {} loaded), dead {}, \
         {} breakers, {} overrides, {} audit rows, {} workers, {} history points",
        store.queues.iter().map(|q| q.stats.depth).sum::<u64>(),
        store.queues.iter().map(|q| q.stats.in_flight).sum::<u64>(),
        store.queues.iter().map(|q| q.stats.scheduled).sum::<u64>(),
        store.dlq_total(),
        page.entries.len(),
        store.dead_total(),
        store.breakers.len(),
        store.overrides.len(),
        store.audit.len(),
        store.workers.live,
        store.history.depth.len(),
    );
}

fn main() {
    let frames = frames();
    let theme = Theme::load("default", &[])
        .unwrap_or_else(|error| panic!("cannot load the default theme: {error}"));
    let keymap = Keymap::new(&BTreeMap::new()).unwrap();
    let channels: Vec<String> = ["slack-ops", "pager", "mail", "teams", "webhook-ci", "sms"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    // The browser's own first-page query, so the page drawn is the one it would ask for.
    let probe = App::new(
        Mode::default(),
        keymap.clone(),
        channels.clone(),
        Arc::new(Snapshot::default()),
    );
    let query = probe.ui.dlq.query();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let snapshot = runtime.block_on(snapshot(&query));
    println!(
        "control-room frame time at {WIDTH}×{HEIGHT} on TestBackend, terminal.draw timed whole \
         (draw + diff + backend), {frames} frames per figure after {WARM_UP} of warm-up"
    );
    describe(&snapshot);
    let cases = [
        ("steady", Case::Steady),
        ("tick (1 s)", Case::Tick),
        ("full redraw", Case::Full),
    ];
    print!("  {:<14}", "µs per frame");
    for (name, _) in cases {
        print!(" {name:>25}");
    }
    println!();
    print!("  {:<14}", "");
    for _ in cases {
        print!(" {:>8} {:>8} {:>7}", "median", "p99", "CPU");
    }
    println!();
    empty_frames(&cases, frames);
    let layouts: [(&str, View, bool, bool); 8] = [
        ("Overview", View::Overview, false, false),
        ("Queues", View::Queues, false, false),
        ("DLQ", View::Dlq, false, false),
        ("DLQ grouped", View::Dlq, true, false),
        ("Breakers", View::Breakers, false, false),
        ("Overrides", View::Overrides, false, false),
        ("Audit", View::Audit, false, false),
        ("wall", View::Overview, false, true),
    ];
    let only = std::env::var("WARD_BENCH_ONLY").unwrap_or_default();
    let mut worst: (f64, &str, &str) = (0.0, "", "");
    for (name, view, grouped, wall) in layouts {
        if !only.is_empty() && !name.eq_ignore_ascii_case(&only) {
            continue;
        }
        let mode = Mode {
            wall,
            ..Mode::default()
        };
        let mut app = App::new(mode, keymap.clone(), channels.clone(), snapshot.clone());
        let _ = app.show(view);
        app.ui.dlq.grouped = grouped;
        print!("  {name:<14}");
        for (case_name, case) in cases {
            let p99 = measure(&mut app, &theme, case, frames).print();
            if p99 > worst.0 {
                worst = (p99, name, case_name);
            }
        }
        println!();
    }
    let verdict = if worst.0 <= TARGET_MS * 1_000.0 {
        "within"
    } else {
        "OVER"
    };
    println!(
        "  worst p99: {:.1} µs ({}, {}): {verdict} the {TARGET_MS} ms target",
        worst.0, worst.1, worst.2
    );
}
