//! The router worker: ingest queue → routing table → one delivery envelope per channel.
//!
//! Each delivery job carries the ingested alert text as it is. Delivery envelope ids are derived
//! from the ingest envelope and the channel, so routing the same item twice (after a crash
//! between enqueue and ack) re-creates the same deliveries, which the store's idempotent enqueue
//! skips.

use std::sync::Arc;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{Pipeline, hand_back, lease_once, next_batch};
use crate::model::{Alert, Envelope, EnvelopeId, FailureInfo, Payload, derived_ulid};
use crate::store::{DeadLetterRequest, LeasedItem, MAX_BATCH, Receipt, StoreResult};
use crate::telemetry::metrics::RouteLabels;

pub async fn run(pipeline: Arc<Pipeline>, stop: CancellationToken) {
    let queue = pipeline.workers.ingest_queue.clone();
    let mut ahead = None;
    while !stop.is_cancelled() {
        let items = match ahead.take() {
            Some(items) => items,
            None => match next_batch(&pipeline, &queue, &stop, "router").await {
                Some(items) => items,
                None => break,
            },
        };
        // The next batch is leased while this one is acked, so their round trips overlap.
        let next = lease_once(&pipeline, &queue, &stop);
        let (routed, next) = route_batch(&pipeline, items, next).await;
        if let Err(error) = routed {
            // Unsettled items come back through the janitor once their lease expires.
            tracing::warn!(%error, "router: batch not settled");
        }
        ahead = next;
    }
    hand_back(&pipeline, &queue, ahead).await;
}

/// Route one leased batch: enqueue the deliveries, then ack what was routed and dead-letter
/// what cannot be, leasing the next batch with `next` beside the acks (once the deliveries are
/// enqueued; not at all if they could not be).
async fn route_batch(
    pipeline: &Pipeline,
    items: Vec<LeasedItem>,
    next: impl Future<Output = Option<Vec<LeasedItem>>>,
) -> (StoreResult<()>, Option<Vec<LeasedItem>>) {
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
            let job = routed_job(
                &item.envelope.payload,
                &target.channel,
                &target.retry_policy,
            );
            let id = derived_ulid(item.envelope.id.as_str(), &target.channel, now);
            deliveries.push(Envelope {
                id: EnvelopeId(id),
                idempotency_key: format!("{}@{}", item.envelope.idempotency_key, target.channel),
                tenant: item.envelope.tenant.clone(),
                payload: job,
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
        if let Err(error) = pipeline
            .store
            .enqueue(&pipeline.workers.delivery_queue, chunk)
            .await
        {
            // Nothing is acked before its deliveries are stored.
            return (Err(error), None);
        }
    }
    let settle = async {
        let queue = &pipeline.workers.ingest_queue;
        for chunk in done.chunks(MAX_BATCH) {
            pipeline.store.ack(queue, chunk).await?;
        }
        for chunk in invalid.chunks(MAX_BATCH) {
            pipeline.store.dead_letter(queue, chunk).await?;
        }
        Ok(())
    };
    tokio::join!(settle, next)
}

/// A `DeliveryJob` whose alert is the ingested payload as it is: the alert was just decoded
/// from that text and is delivered unchanged, so it is not encoded again.
#[derive(Serialize)]
struct RoutedJob<'a> {
    alert: &'a Payload,
    channel: &'a str,
    retry_policy: &'a str,
}

fn routed_job(alert: &Payload, channel: &str, retry_policy: &str) -> Payload {
    let job = RoutedJob {
        alert,
        channel,
        retry_policy,
    };
    Payload::encode(&job).unwrap_or_else(|_| Payload::null())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{AlertStatus, DeliveryJob, Severity, fingerprint};

    #[test]
    fn a_routed_job_decodes_as_the_delivery_job_it_stands_for() {
        let labels: BTreeMap<String, String> =
            [("alertname".to_owned(), "Disk \"full\"".to_owned())]
                .into_iter()
                .collect();
        let alert = Alert {
            fingerprint: fingerprint(&labels),
            labels,
            annotations: BTreeMap::new(),
            severity: Severity::Critical,
            status: AlertStatus::Firing,
            tenant: "acme".to_owned(),
            starts_at_ms: 1,
            ends_at_ms: None,
            generator_url: None,
            correlation_id: "c-1".to_owned(),
            test: false,
        };
        let payload = Payload::encode(&alert).unwrap();
        let job: DeliveryJob = routed_job(&payload, "slack", "default").decode().unwrap();
        assert_eq!(
            job,
            DeliveryJob {
                alert,
                channel: "slack".to_owned(),
                retry_policy: "default".to_owned(),
                previous_delay_ms: None,
            }
        );
    }
}
