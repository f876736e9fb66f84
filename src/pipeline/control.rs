//! Operator controls as the workers see them: flags and shedding thresholds, re-read on every
//! change the store announces (and on an interval, in case a notice is lost), and the
//! backpressure step that checks queue depths against them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::{FlagsView, Shared};
use crate::engine::shedding::{Pressure, pressure};
use crate::model::{FailureInfo, QueueName, ShedMode, Threshold};
use crate::store::{DeadLetterRequest, DedupClaim, DedupFinish, MAX_BATCH, StoreResult, Update};
use crate::telemetry::metrics::{QueueLabels, ShedLabels};

/// Items one worker sheds per check: bounded, so a huge excess drains over a few checks.
const SHED_BUDGET: u64 = 5 * MAX_BATCH as u64;

/// A queue's thresholds, from dynamic config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Thresholds {
    pub warn: Option<u64>,
    pub shed: Option<u64>,
}

/// The controls as last read, and the pressure they gave.
#[derive(Debug, Clone, Default)]
pub struct Controls {
    pub mode: ShedMode,
    pub thresholds: BTreeMap<QueueName, Thresholds>,
    pub pressure: BTreeMap<QueueName, Pressure>,
    pub read_at_ms: i64,
    /// How many reads made it: tells a waiting caller that a new read happened.
    pub reads: u64,
}

impl Controls {
    /// Whatever feeds `queue` must hold back.
    pub fn deferring(&self, queue: &QueueName) -> bool {
        self.pressure.get(queue) == Some(&Pressure::Defer)
    }
}

/// Thresholds from the dynamic config entries `shedding.<queue>.<warn|shed>`.
fn thresholds(config: &[(String, String)]) -> BTreeMap<QueueName, Thresholds> {
    let mut out: BTreeMap<QueueName, Thresholds> = BTreeMap::new();
    for (key, value) in config {
        let Some(rest) = key.strip_prefix("shedding.") else {
            continue;
        };
        let Some((queue, which)) = rest.rsplit_once('.') else {
            continue;
        };
        let (Ok(queue), Ok(value)) = (QueueName::new(queue), value.trim().parse::<u64>()) else {
            tracing::warn!(key, value, "ignoring an unreadable shedding threshold");
            continue;
        };
        let entry = out.entry(queue).or_default();
        match which {
            w if w == Threshold::Warn.as_str() => entry.warn = Some(value),
            w if w == Threshold::Shed.as_str() => entry.shed = Some(value),
            _ => tracing::warn!(key, "ignoring an unknown shedding threshold"),
        }
    }
    out
}

/// What the controls reader needs: the shared part (whose views it refreshes), the inhibition
/// rules, how often to read, and the lease it sheds under.
#[derive(Debug, Clone)]
pub struct ControlWorker {
    pub(super) shared: Arc<Shared>,
    pub(super) rules: crate::engine::suppress::Rules,
    pub(super) every: Duration,
    pub(super) lease: Duration,
}

/// Re-read the controls and check the queues, until stopped.
pub async fn run(worker: ControlWorker, stop: CancellationToken) {
    let mut updates = match worker.shared.store.subscribe().await {
        Ok(updates) => Some(updates),
        Err(error) => {
            tracing::warn!(%error, "no update notices; controls are read every interval");
            None
        }
    };
    while !stop.is_cancelled() {
        if let Err(error) = check(&worker).await {
            tracing::warn!(%error, "could not read the operator controls");
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(worker.every) => {}
            closed = notice(&mut updates) => {
                if closed {
                    updates = None;
                }
            }
        }
    }
}

/// Inhibition sources are the alerts seen within this long (they fire for at most the resolve
/// timeout after their last sighting unless they carry a later end).
const INHIBIT_LOOKBACK_MS: i64 = 24 * 3_600_000;
/// Most alerts read per partition as inhibition sources.
const INHIBIT_SOURCES_MAX: usize = 5_000;

/// Read the silences (and, with inhibition rules, the firing alerts) every worker obeys.
async fn refresh_suppressor(worker: &ControlWorker, now: i64) -> StoreResult<()> {
    let store = worker.shared.store.as_ref();
    let silences = store.silences().await?;
    let alerts = if worker.rules.inhibit.is_empty() {
        Vec::new()
    } else {
        store
            .alerts_seen(now - INHIBIT_LOOKBACK_MS, INHIBIT_SOURCES_MAX)
            .await?
    };
    let previous = worker.shared.suppressor();
    let suppressor = crate::engine::suppress::Suppressor::renewed(
        &previous,
        silences,
        &worker.rules,
        &alerts,
        now,
    );
    // Said once per rebuild, not on every read of unchanged silences.
    let rebuilt = !Arc::ptr_eq(&previous.silences, &suppressor.silences);
    if rebuilt && suppressor.silences.unreadable > 0 {
        tracing::warn!(
            skipped = suppressor.silences.unreadable,
            "silences whose matchers do not compile are ignored"
        );
    }
    worker.shared.set_suppressor(suppressor);
    Ok(())
}

/// Wait for the next update notice; true once the channel has closed.
async fn notice(updates: &mut Option<broadcast::Receiver<Update>>) -> bool {
    match updates {
        Some(receiver) => matches!(
            receiver.recv().await,
            Err(broadcast::error::RecvError::Closed)
        ),
        None => std::future::pending().await,
    }
}

/// One read of the controls, then one backpressure step per queue with thresholds.
pub async fn check(worker: &ControlWorker) -> StoreResult<()> {
    let shared = &*worker.shared;
    let store = shared.store.as_ref();
    let now = store.now_ms();
    let flags = store.flags().await?;
    let mode = flags
        .iter()
        .find(|(name, state)| name == "shedding_mode" && !state.is_expired(now))
        .and_then(|(_, state)| ShedMode::parse(&state.value))
        .unwrap_or_default();
    shared.set_flags(FlagsView {
        flags,
        read_at_ms: now,
    });
    // Silences unread this round keep the last ones read; shedding must not wait on them.
    if let Err(error) = refresh_suppressor(worker, now).await {
        tracing::warn!(%error, "could not read silences and inhibition sources");
    }
    let thresholds = thresholds(&store.config_all().await?);
    let mut pressures = BTreeMap::new();
    if !thresholds.is_empty() {
        let queues: Vec<QueueName> = thresholds.keys().cloned().collect();
        let stats = store.stats(&queues).await?;
        let before = shared.controls().pressure;
        for q in &stats.queues {
            let limits = thresholds.get(&q.queue).copied().unwrap_or_default();
            let now_pressure = pressure(q.depth, limits.warn, limits.shed, mode);
            let was = before.get(&q.queue).copied().unwrap_or(Pressure::Normal);
            report(shared, &q.queue, q.depth, limits, was, now_pressure);
            if let (Pressure::Shed { .. }, Some(limit)) = (now_pressure, limits.shed) {
                let moved = shed_step(worker, &q.queue, limit).await?;
                shared
                    .metrics
                    .shed_items
                    .get_or_create(&QueueLabels {
                        queue: q.queue.to_string(),
                    })
                    .inc_by(moved);
            }
            pressures.insert(q.queue.clone(), now_pressure);
        }
    }
    shared.set_controls(Controls {
        mode,
        thresholds,
        pressure: pressures,
        read_at_ms: now,
        reads: 0, // counted by set_controls, under its lock
    });
    Ok(())
}

/// Gauges, shed-event counts and a log line when a queue's pressure changes.
fn report(
    shared: &Shared,
    queue: &QueueName,
    depth: u64,
    limits: Thresholds,
    was: Pressure,
    now: Pressure,
) {
    let labels = QueueLabels {
        queue: queue.to_string(),
    };
    shared
        .metrics
        .queue_pressure
        .get_or_create(&labels)
        .set(now.level());
    if now.level() == was.level() {
        return;
    }
    let mode = match now {
        Pressure::Shed { .. } => Some("dlq"),
        Pressure::Defer => Some("defer"),
        Pressure::Normal | Pressure::Warn => None,
    };
    if let Some(mode) = mode {
        shared
            .metrics
            .shed_events
            .get_or_create(&ShedLabels {
                queue: queue.to_string(),
                mode,
            })
            .inc();
        tracing::warn!(%queue, depth, shed = ?limits.shed, mode, "queue over its shed depth: shedding");
    } else if now == Pressure::Warn {
        tracing::warn!(%queue, depth, warn = ?limits.warn, "queue over its warn depth");
    } else {
        tracing::info!(%queue, depth, "queue back under its thresholds");
    }
}

/// One worker at a time sheds a queue, down to `limit` as it reads the depth once its turn is
/// held, so workers that saw the same depth do not each remove the whole excess.
async fn shed_step(worker: &ControlWorker, queue: &QueueName, limit: u64) -> StoreResult<u64> {
    let hold = worker.every.saturating_mul(4);
    let moved = one_at_a_time(&worker.shared, &format!("shed-step:{queue}"), hold, async {
        let stats = worker
            .shared
            .store
            .stats(std::slice::from_ref(queue))
            .await?;
        let depth = stats.queues.first().map_or(0, |q| q.depth);
        let excess = depth.saturating_sub(limit).min(SHED_BUDGET);
        if excess == 0 {
            return Ok(0);
        }
        let reason = format!("{queue} held {depth} items, over its shed depth {limit}");
        shed_oldest(worker, queue, excess, &reason).await
    })
    .await?;
    Ok(moved.unwrap_or(0))
}

/// Run `work` unless another worker is running the step named `turn`: `None` when it is. The
/// turn is a claim record (the dedup claim: set-if-absent with expiry), released when the step
/// ends and lapsing after `hold` if its worker dies mid-step.
pub(crate) async fn one_at_a_time<T, E>(
    shared: &Shared,
    turn: &str,
    hold: Duration,
    work: impl Future<Output = Result<T, E>>,
) -> Result<Option<T>, E>
where
    E: From<crate::store::StoreError>,
{
    let turn = vec![turn.to_owned()];
    let owner = shared.worker.as_str();
    let claim = shared.store.dedup_claim(owner, &turn, hold, hold).await?;
    if !matches!(claim.first(), Some(DedupClaim::Claimed(_))) {
        return Ok(None);
    }
    let result = work.await;
    let released = shared
        .store
        .dedup_finish(owner, &[(turn[0].clone(), DedupFinish::Release)])
        .await;
    let value = result?;
    released?;
    Ok(Some(value))
}

/// Move up to `count` of the oldest waiting items of `queue` to its DLQ with the `shed` class:
/// leased, then dead-lettered under that lease, two atomic steps (a crash between them leaves
/// the items to the janitor, not lost). Returns how many moved.
async fn shed_oldest(
    worker: &ControlWorker,
    queue: &QueueName,
    count: u64,
    reason: &str,
) -> StoreResult<u64> {
    let mut moved = 0;
    while moved < count {
        let want = usize::try_from(count - moved)
            .unwrap_or(MAX_BATCH)
            .min(MAX_BATCH);
        let shared = &worker.shared;
        let lease = shared
            .store
            .lease(queue, &shared.worker, want, worker.lease)
            .await?;
        if lease.items.is_empty() {
            break;
        }
        let requests: Vec<DeadLetterRequest> = lease
            .items
            .into_iter()
            .map(|item| DeadLetterRequest {
                receipt: item.receipt,
                envelope: item.envelope,
                failure: FailureInfo::new("shed", reason, "shed"),
            })
            .collect();
        let outcome = shared.store.dead_letter(queue, &requests).await?;
        moved += outcome.applied as u64;
    }
    Ok(moved)
}

/// The queues a deferring queue holds back: the router stops taking from ingest while delivery
/// defers; ingest itself answers 503 while the ingest queue defers.
pub fn feeds(shared: &Shared, source: &QueueName) -> BTreeSet<QueueName> {
    let mut out = BTreeSet::new();
    if *source == shared.ingest_queue {
        out.insert(shared.delivery_queue.clone());
    }
    out
}
