//! Alertmanager grouping on the store: the router adds each alert of a grouped route to its
//! aggregation group (state in the store, so groups survive restarts and every worker shares
//! them); the flusher claims due groups, drops what silences and inhibition hold back, asks the
//! notification log whether to send, and hands one notification per group to the delivery queue.
//!
//! A notification is logged once it is durable on the delivery queue, which retries and
//! dead-letters it like any delivery: a crash between the two may send a group twice, never
//! lose one (at least once, as Alertmanager's HA accepts).

use std::collections::BTreeSet;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Shared, pause};
use crate::engine::grouping::{
    FlushBatch, GroupState, GroupedAlert, group_key, group_labels, nflog_ttl_ms, target_group_id,
};
use crate::engine::routing::Target;
use crate::model::{Alert, AlertStatus, DeliveryJob, Envelope, GroupNotification, Payload};
use crate::store::{StoreError, StoreResult};

/// Compare-and-set attempts before a step gives up (another writer kept winning).
const CAS_ATTEMPTS: usize = 16;
/// Groups one flusher claims per tick.
const FLUSH_BATCH: usize = 100;
/// How long a claimed group is held from other flushers: its send deadline.
const FLUSH_HOLD: Duration = Duration::from_secs(30);

/// Add `alert` to its group on `target`'s route (creating the group, whose first flush is
/// `group_wait` away); the group's timer is not reset by later alerts.
pub async fn join(shared: &Shared, target: &Target, alert: &Alert) -> StoreResult<()> {
    let router = shared.router();
    let Some(grouping) = router.grouping(&target.route) else {
        return Ok(());
    };
    let labels = group_labels(grouping.config, &alert.labels);
    let id = target_group_id(&group_key(&target.route, &labels), &target.channel);
    let store = shared.store.as_ref();
    for _ in 0..CAS_ATTEMPTS {
        let now = store.now_ms();
        let (version, state) = match store.group_load(&id).await? {
            Some((version, mut state)) => {
                state.insert(alert, now);
                (version, state)
            }
            None => (
                0,
                GroupState::new(&target.route, &target.channel, grouping.config, alert, now),
            ),
        };
        if store.group_store(&id, version, &state).await? {
            return Ok(());
        }
    }
    Err(StoreError::Invalid(format!(
        "group {id}: {CAS_ATTEMPTS} concurrent writers won in a row"
    )))
}

/// What the flusher needs: the shared part and how often to look for due groups.
#[derive(Debug, Clone)]
pub struct GroupingWorker {
    pub(super) shared: std::sync::Arc<Shared>,
    pub(super) every: Duration,
    pub(super) idle: Duration,
}

/// Claim due groups and flush them, until stopped.
pub async fn run(worker: GroupingWorker, stop: CancellationToken) {
    let shared = &*worker.shared;
    shared.first_controls(&stop, worker.idle).await;
    loop {
        match shared.store.groups_due(FLUSH_BATCH, FLUSH_HOLD).await {
            Ok(ids) => {
                for id in ids {
                    if let Err(error) = flush(shared, &id).await {
                        tracing::warn!(%error, group = id, "flusher: group not flushed; retried at its next tick");
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "flusher: could not claim due groups"),
        }
        if !pause(&stop, worker.every).await {
            return;
        }
    }
}

/// One group's flush: re-arm its timer, decide, enqueue its notification, log it, and drop the
/// resolved alerts it carried.
async fn flush(shared: &Shared, id: &str) -> StoreResult<()> {
    let store = shared.store.as_ref();
    let now = store.now_ms();
    let Some((version, mut state)) = store.group_load(id).await? else {
        return Ok(());
    };
    let router = shared.router();
    let Some(grouping) = router.grouping(&state.route) else {
        // The route no longer groups (config changed): the group has nowhere to go.
        tracing::warn!(
            group = %state.key,
            alerts = state.alerts.len(),
            "flusher: the route no longer groups; its pending group is dropped unsent"
        );
        store.group_delete(id, version).await?;
        return Ok(());
    };
    if !state.due(now) {
        // Claimed early (another flusher advanced it): put its own schedule back.
        store.group_store(id, version, &state).await?;
        return Ok(());
    }
    let batch = state.begin_flush(now, grouping.config);
    if !store.group_store(id, version, &state).await? {
        return Ok(());
    }
    let suppressor = shared.suppressor();
    let muted: BTreeSet<String> = batch
        .alerts
        .iter()
        .filter(|a| {
            suppressor
                .check(
                    &a.fingerprint,
                    &crate::model::labels_with_severity(&a.labels, a.severity),
                    now,
                )
                .is_some()
        })
        .map(|a| a.fingerprint.clone())
        .collect();
    let log = store.notify_log_get(id).await?;
    let plan = batch.plan(
        &muted,
        log.as_ref(),
        grouping.send_resolved,
        grouping.config.repeat_interval_ms,
        now,
    );
    if plan.transmit() {
        let resolved_after_notified = log
            .as_ref()
            .map(|l| batch.resolved_previously_notified(l))
            .unwrap_or_default();
        let notification = GroupNotification {
            group_key: batch.group_key.clone(),
            route: batch.route.clone(),
            group_labels: batch.group_labels.clone(),
            status: plan.status,
            reason: plan.decision.reason.as_str().to_owned(),
            alerts: plan.alerts.iter().map(|a| to_alert(a, &batch)).collect(),
            resolved_after_notified,
        };
        let envelope = notification_envelope(
            notification,
            &batch,
            grouping.retry_policy,
            &plan.digest,
            now,
        )?;
        store.enqueue(&shared.delivery_queue, &[envelope]).await?;
        shared.metrics.group_notifications.inc();
    }
    if let Some(entry) = plan.log_entry(now) {
        store
            .notify_log_put(id, &entry, nflog_ttl_ms(grouping.config.repeat_interval_ms))
            .await?;
    }
    settle(shared, id, &batch).await
}

/// Drop the resolved alerts the flush carried (unless updated since), and the group once empty.
async fn settle(shared: &Shared, id: &str, batch: &FlushBatch) -> StoreResult<()> {
    let store = shared.store.as_ref();
    for _ in 0..CAS_ATTEMPTS {
        let Some((version, mut state)) = store.group_load(id).await? else {
            return Ok(());
        };
        let done = if state.after_success(batch) {
            store.group_delete(id, version).await?
        } else {
            store.group_store(id, version, &state).await?
        };
        if done {
            return Ok(());
        }
    }
    Err(StoreError::Invalid(format!(
        "group {id}: {CAS_ATTEMPTS} concurrent writers won in a row"
    )))
}

fn to_alert(alert: &GroupedAlert, batch: &FlushBatch) -> Alert {
    Alert {
        labels: alert.labels.clone(),
        annotations: alert.annotations.clone(),
        severity: alert.severity,
        status: alert.status,
        tenant: String::new(),
        fingerprint: alert.fingerprint.clone(),
        starts_at_ms: alert.starts_at_ms,
        ends_at_ms: alert.ends_at_ms,
        generator_url: alert.generator_url.clone(),
        correlation_id: format!("{}#{}", batch.group_key, batch.flush),
        test: false,
    }
}

/// The delivery of one notification: its idempotency key is the content's digest and the flush
/// index, so a repeat after `repeat_interval` is a new send while a retry of this one is not.
fn notification_envelope(
    notification: GroupNotification,
    batch: &FlushBatch,
    retry_policy: &str,
    digest: &str,
    now: i64,
) -> StoreResult<Envelope> {
    let mut first = notification
        .alerts
        .first()
        .cloned()
        .ok_or_else(|| StoreError::Invalid("a notification without alerts".to_owned()))?;
    first.status = notification.status;
    if first.status == AlertStatus::Firing {
        first.ends_at_ms = None;
    }
    let job = DeliveryJob {
        alert: first,
        channel: batch.channel.clone(),
        retry_policy: retry_policy.to_owned(),
        previous_delay_ms: None,
        group: Some(notification),
    };
    let payload = Payload::encode(&job).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let mut envelope = Envelope::with_payload("group", payload, now);
    envelope.idempotency_key = format!("group:{digest}:{}", batch.flush);
    Ok(envelope)
}
