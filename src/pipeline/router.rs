//! The router worker: ingest queue → routing table → one delivery envelope per channel.
//!
//! Delivery envelope ids are derived from the ingest envelope and the channel, so routing the
//! same item twice (after a crash between enqueue and ack) re-creates the same deliveries, which
//! the store's idempotent enqueue skips.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Pipeline, next_batch};
use crate::model::{Alert, DeliveryJob, Envelope, EnvelopeId, FailureInfo, Payload, derived_ulid};
use crate::store::{DeadLetterRequest, LeasedItem, MAX_BATCH, Receipt, StoreResult};
use crate::telemetry::metrics::RouteLabels;

pub async fn run(pipeline: Arc<Pipeline>, stop: CancellationToken) {
    let queue = pipeline.workers.ingest_queue.clone();
    while let Some(items) = next_batch(&pipeline, &queue, &stop, "router").await {
        if let Err(error) = route_batch(&pipeline, items).await {
            // Unsettled items come back through the janitor once their lease expires.
            tracing::warn!(%error, "router: batch not settled");
        }
    }
}

/// Route one leased batch: enqueue the deliveries, then ack what was routed and dead-letter
/// what cannot be.
pub async fn route_batch(pipeline: &Pipeline, items: Vec<LeasedItem>) -> StoreResult<()> {
    let router = pipeline.router();
    let now = pipeline.store.now_ms();
    let mut deliveries = Vec::new();
    let mut done: Vec<Receipt> = Vec::new();
    let mut invalid: Vec<DeadLetterRequest> = Vec::new();
    for item in items {
        let alert = match item.envelope.payload.decode::<Alert>() {
            Ok(alert) => alert,
            Err(error) => {
                invalid.push(DeadLetterRequest {
                    receipt: item.receipt,
                    envelope: item.envelope,
                    failure: FailureInfo::new("decode", format!("not an alert: {error}"), "route"),
                });
                continue;
            }
        };
        let decision = match router.route(&alert) {
            Ok(decision) => decision,
            Err(error) => {
                pipeline
                    .metrics
                    .routed
                    .get_or_create(&RouteLabels {
                        directive: "invalid",
                        result: "invalid",
                    })
                    .inc();
                invalid.push(DeadLetterRequest {
                    receipt: item.receipt,
                    envelope: item.envelope,
                    failure: FailureInfo::new("validation", error, "route"),
                });
                continue;
            }
        };
        let result = if decision.targets.is_empty() {
            "dropped"
        } else {
            "routed"
        };
        pipeline
            .metrics
            .routed
            .get_or_create(&RouteLabels {
                directive: decision.directive.as_str(),
                result,
            })
            .inc();
        for target in decision.targets {
            let job = DeliveryJob {
                alert: alert.clone(),
                channel: target.channel.clone(),
                retry_policy: target.retry_policy,
                previous_delay_ms: None,
            };
            let id = derived_ulid(item.envelope.id.as_str(), &target.channel, now);
            deliveries.push(Envelope {
                id: EnvelopeId(id),
                idempotency_key: format!("{}@{}", item.envelope.idempotency_key, target.channel),
                tenant: item.envelope.tenant.clone(),
                payload: Payload::encode(&job).unwrap_or_else(|_| Payload::null()),
                created_at_ms: item.envelope.created_at_ms,
                last_error: None,
                first_failure_ms: None,
                attempts: 0,
                replays: 0,
            });
        }
        done.push(item.receipt);
    }
    for chunk in deliveries.chunks(MAX_BATCH) {
        pipeline
            .store
            .enqueue(&pipeline.workers.delivery_queue, chunk)
            .await?;
    }
    let queue = &pipeline.workers.ingest_queue;
    for chunk in done.chunks(MAX_BATCH) {
        pipeline.store.ack(queue, chunk).await?;
    }
    for chunk in invalid.chunks(MAX_BATCH) {
        pipeline.store.dead_letter(queue, chunk).await?;
    }
    Ok(())
}
