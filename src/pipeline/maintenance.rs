//! Background steps every worker process runs: the scheduler (due retries back to their queue),
//! the janitor (expired leases back to their queue) and the stats publisher (gauges and the
//! flags every worker obeys).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{FlagsView, Role, Shared, pause};
use crate::model::{MAX_BATCH, WorkerBeat};

/// What the background steps need: the shared part, the automatic actions' context (audited as
/// this worker), breaker settings and their intervals.
pub struct Maintenance {
    pub(super) shared: Arc<Shared>,
    pub(super) actions: crate::actions::Actions,
    pub(super) breaker: crate::engine::breaker::BreakerConfig,
    pub(super) scheduler_every: Duration,
    pub(super) janitor_every: Duration,
    pub(super) stats_every: Duration,
}

/// Move due retries back to their queues, in bounded steps.
pub async fn scheduler(maintenance: Arc<Maintenance>, stop: CancellationToken) {
    let shared = &*maintenance.shared;
    let every = maintenance.scheduler_every;
    loop {
        for queue in shared.queue_names() {
            loop {
                match shared.store.promote_due(&queue, MAX_BATCH).await {
                    Ok(MAX_BATCH) if !stop.is_cancelled() => {}
                    Ok(_) => break,
                    Err(error) => {
                        tracing::warn!(%error, %queue, "scheduler: could not promote due retries");
                        break;
                    }
                }
            }
        }
        if !pause(&stop, every).await {
            return;
        }
    }
}

/// Return expired leases (crashed or stalled workers) to the front of their queues, and end
/// expired operator overrides.
pub async fn janitor(maintenance: Arc<Maintenance>, stop: CancellationToken) {
    let shared = &*maintenance.shared;
    let every = maintenance.janitor_every;
    loop {
        for queue in shared.queue_names() {
            loop {
                match shared.store.recover_expired(&queue, MAX_BATCH).await {
                    Ok(0) => break,
                    Ok(n) => {
                        shared.metrics.recovered_leases.inc_by(n as u64);
                        tracing::info!(%queue, recovered = n, "janitor: returned expired leases");
                        if n < MAX_BATCH || stop.is_cancelled() {
                            break;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, %queue, "janitor: could not recover leases");
                        break;
                    }
                }
            }
        }
        end_expired_overrides(&maintenance).await;
        forget_old(shared).await;
        if !pause(&stop, every).await {
            return;
        }
    }
}

/// Forget silences expired past their retention and alerts last seen more than an hour ago
/// (idempotent, so every janitor may do it).
async fn forget_old(shared: &Shared) {
    let store = shared.store.as_ref();
    let now = store.now_ms();
    if let Err(error) = store
        .silences_prune(now - crate::model::SILENCE_RETENTION_MS)
        .await
    {
        tracing::warn!(%error, "janitor: could not prune old silences");
    }
    if let Err(error) = store
        .alerts_prune(now - crate::model::SEEN_RETENTION_MS)
        .await
    {
        tracing::warn!(%error, "janitor: could not prune old alerts");
    }
}

/// Lift expired operator overrides (one worker at a time), through the actions layer so the
/// audit shows each one ended.
async fn end_expired_overrides(maintenance: &Maintenance) {
    let hold = maintenance.janitor_every.saturating_mul(4);
    let turn = "expire-overrides";
    let ended = super::control::one_at_a_time(&maintenance.shared, turn, hold, async {
        crate::actions::end_expired(&maintenance.actions, &maintenance.breaker).await
    })
    .await;
    match ended {
        Ok(Some(n)) if n > 0 => tracing::info!(ended = n, "janitor: ended expired overrides"),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "janitor: could not end expired overrides"),
    }
}

/// Read the store's figures once per interval (queue gauges, breaker gauges and the flags) and
/// write this worker's heartbeat; on stop, remove it.
pub async fn stats(maintenance: Arc<Maintenance>, stop: CancellationToken, role: Role) {
    let shared = &*maintenance.shared;
    let every = maintenance.stats_every;
    let mut updates = shared.store.subscribe().await.ok();
    let started_ms = shared.store.now_ms();
    let mut last_beat_ms = i64::MIN;
    loop {
        refresh(shared).await;
        let now = shared.store.now_ms();
        // Flag changes wake this loop early; the heartbeat keeps its own pace.
        if now.saturating_sub(last_beat_ms) >= every.as_millis() as i64 {
            last_beat_ms = now;
            let beat = WorkerBeat {
                role,
                ..shared.metrics.totals.beat(started_ms, now)
            };
            if let Err(error) = shared.store.beat(shared.worker.as_str(), Some(&beat)).await {
                tracing::warn!(%error, "stats: could not write the heartbeat");
            }
            forget_dead_workers(shared, now).await;
        }
        // Wake early when an operator changes a flag, so a stop reaches every worker at once.
        let changed = async {
            match updates.as_mut() {
                Some(rx) => {
                    let _ = rx.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(every) => {}
            () = changed => {}
        }
    }
    if let Err(error) = shared.store.beat(shared.worker.as_str(), None).await {
        tracing::debug!(%error, "stats: could not remove the heartbeat");
    }
}

/// A heartbeat this old belongs to a process that is gone (killed, or its host lost).
const FORGET_WORKER_AFTER_MS: i64 = 15 * 60 * 1000;

/// Remove heartbeats of workers long dead, so the list stays the size of the fleet. Only every
/// minute or so: the read is a full control read.
async fn forget_dead_workers(shared: &Shared, now: i64) {
    if fastrand::u8(..) >= 4 {
        return;
    }
    let Ok(read) = shared.store.control_read(&[], 0).await else {
        return;
    };
    for (id, beat) in read.workers {
        if now.saturating_sub(beat.at_ms) > FORGET_WORKER_AFTER_MS {
            let _ = shared.store.beat(&id, None).await;
        }
    }
}

/// One refresh of the flags and gauges; the workers read the result.
pub async fn refresh(shared: &Shared) {
    match shared.store.stats(&shared.queue_names()).await {
        Ok(stats) => {
            shared.metrics.observe_stats(&stats);
            let view = FlagsView {
                flags: stats.flags,
                read_at_ms: stats.read_at_ms,
            };
            shared.set_flags(view);
        }
        Err(error) => tracing::warn!(%error, "stats: could not read the store"),
    }
    if let Ok(breakers) = shared.store.breakers().await {
        for (name, breaker) in breakers {
            shared.metrics.set_breaker(&name, breaker.state);
        }
    }
}
