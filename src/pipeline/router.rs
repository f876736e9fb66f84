//! The router worker: ingest queue → routing table → one delivery envelope per channel.
//!
//! Each delivery job carries the ingested alert text as it is, and lives in the ingested alert's
//! partition: its enqueue and the alert's ack are one store step (`Store::forward`). Delivery
//! envelope ids are derived from the ingest envelope and the channel, so routing an item again
//! (after its lease lapsed mid-route) re-creates the same deliveries: the store's idempotent
//! enqueue skips those still stored, and dedup stops a second send of those already delivered.
//! With `workers.deliver_on_route` the router sends them itself (`delivery::deliver_routed`)
//! and stores only those that must wait, as the alert is acked (`Store::forward_held`).

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::delivery::DeliveryWorker;
use super::{Leasing, Shared, hand_back, lease_once, next_batch};
use crate::engine::routing::Target;
use crate::model::{
    Alert, DeliveryJob, Envelope, EnvelopeId, FailureInfo, Payload, SeenAlert, derived_ulid,
};
use crate::store::{
    DeadLetterRequest, ForwardRequest, Hold, LeasedItem, MAX_BATCH, Receipt, StoreResult,
};
use crate::telemetry::metrics::RouteLabels;

/// What the router needs: how to lease (which holds the shared part, the routes among it),
/// and the delivery worker it sends through itself when `workers.deliver_on_route` is on.
pub struct RouterWorker {
    pub(super) leasing: Leasing,
    pub(super) deliver: Option<std::sync::Arc<DeliveryWorker>>,
}

pub async fn run(worker: RouterWorker, stop: CancellationToken) {
    let leasing = &worker.leasing;
    let shared = &*leasing.shared;
    let queue = shared.ingest_queue.clone();
    let mut ahead = None;
    while !stop.is_cancelled() {
        let items = match ahead.take() {
            Some(items) => items,
            None => match next_batch(leasing, &queue, &stop, "router").await {
                Some(items) => items,
                None => break,
            },
        };
        // The next batch is leased while this one is acked, so their round trips overlap.
        let next = lease_once(leasing, &queue, &stop);
        let deliver = worker.deliver.as_deref();
        let (routed, next) = route_batch(shared, deliver, items, next, &stop).await;
        ahead = next;
        if let Err(error) = routed {
            // Unsettled items come back through the janitor once their lease expires.
            tracing::warn!(%error, "router: batch not settled");
            if !super::pause(&stop, leasing.idle * 20).await {
                break;
            }
        }
    }
    hand_back(shared, &queue, ahead).await;
}

/// Route one leased batch: each routed item's deliveries are sent here (`deliver`) or enqueued,
/// and the item acked in one store step (`forward`), items that cannot be routed are
/// dead-lettered, and the next batch is leased with `next` meanwhile.
async fn route_batch(
    shared: &Shared,
    deliver: Option<&DeliveryWorker>,
    items: Vec<LeasedItem>,
    next: impl Future<Output = Option<Vec<LeasedItem>>>,
    stop: &CancellationToken,
) -> (StoreResult<()>, Option<Vec<LeasedItem>>) {
    let router = shared.router();
    let now = shared.store.now_ms();
    let mut routed: Vec<ForwardRequest> = Vec::new();
    let mut invalid: Vec<DeadLetterRequest> = Vec::new();
    let mut seen: Vec<SeenAlert> = Vec::new();
    let mut grouped: Vec<(Target, Alert)> = Vec::new();
    let mut jobs: Vec<DeliveryJob> = Vec::new();
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
        if !alert.test {
            seen.push(SeenAlert::of(&alert, now));
        }
        // More deliveries than one store step takes is refused; no routing table needs them.
        let decision = match router.route(&alert).and_then(|decision| {
            if decision.targets.len() > MAX_BATCH {
                Err(format!(
                    "routed to {} channels, more than {MAX_BATCH}",
                    decision.targets.len()
                ))
            } else {
                Ok(decision)
            }
        }) {
            Ok(decision) => decision,
            Err(error) => {
                shared
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
        shared
            .metrics
            .routed
            .get_or_create(&RouteLabels {
                directive: decision.directive.as_str(),
                result,
            })
            .inc();
        shared
            .metrics
            .totals
            .routed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (to_groups, direct): (Vec<Target>, Vec<Target>) =
            decision.targets.into_iter().partition(|t| t.grouped);
        grouped.extend(to_groups.into_iter().map(|t| (t, alert.clone())));
        let envelopes = direct
            .iter()
            .map(|target| delivery(&item.envelope, target, now))
            .collect();
        // What the router sends itself needs no decoding of the envelopes it just encoded.
        if deliver.is_some() {
            jobs.extend(
                direct
                    .into_iter()
                    .map(|target| routed_delivery_job(&alert, target)),
            );
        }
        routed.push(ForwardRequest {
            receipt: item.receipt,
            envelopes,
        });
    }
    let batch = RoutedBatch {
        routed,
        jobs,
        invalid,
        seen,
        grouped,
    };
    settle(shared, deliver, batch, next, stop).await
}

/// One batch as routing left it: the deliveries of each alert (and, when this worker sends
/// them, their jobs in the same order), the alerts that could not be routed, the alerts seen,
/// and the alerts bound for a group.
struct RoutedBatch {
    routed: Vec<ForwardRequest>,
    jobs: Vec<DeliveryJob>,
    invalid: Vec<DeadLetterRequest>,
    seen: Vec<SeenAlert>,
    grouped: Vec<(Target, Alert)>,
}

/// Settle a routed batch — into groups, then its deliveries sent here (`deliver`) or enqueued,
/// and what could not be routed dead-lettered — leasing the next batch with `next` meanwhile.
async fn settle(
    shared: &Shared,
    deliver: Option<&DeliveryWorker>,
    batch: RoutedBatch,
    next: impl Future<Output = Option<Vec<LeasedItem>>>,
    stop: &CancellationToken,
) -> (StoreResult<()>, Option<Vec<LeasedItem>>) {
    let RoutedBatch {
        routed,
        jobs,
        invalid,
        seen,
        grouped,
    } = batch;
    let (routed, invalid, seen, grouped) = (&routed, &invalid, &seen, &grouped);
    // Into their groups first: an item is acked (by `forward`) only once its alert is there.
    let into_groups = async {
        for (target, alert) in grouped {
            super::grouping::join(shared, target, alert).await?;
        }
        Ok(())
    };
    // Under an emergency stop nothing is sent: the deliveries wait on their queue.
    let deliver = deliver.filter(|_| !shared.flags().global_stop(shared.store.now_ms()));
    let Some(delivery) = deliver else {
        let settle = async {
            into_groups.await?;
            let forwarded = forward(shared, routed, None);
            let (forwarded, rest) =
                tokio::join!(forwarded, dead_letter_and_note(shared, invalid, seen));
            forwarded.map(drop).and(rest)
        };
        return tokio::join!(settle, next);
    };
    if let Err(error) = into_groups.await {
        return (Err(error), next.await);
    }
    // The next batch is leased once these sends are done, while they settle, as a delivery
    // worker does: its leases do not age behind slow sends.
    let rest = async { tokio::join!(dead_letter_and_note(shared, invalid, seen), next) };
    let (delivered, (noted, next)) =
        super::delivery::deliver_routed(delivery, routed, jobs, stop, rest).await;
    (delivered.and(noted), next)
}

/// Store the routed deliveries on the delivery queue, each alert acked as its deliveries are
/// stored: queued for the delivery workers, or (`hold`) leased to this worker, whose receipts
/// for them are returned.
pub(super) async fn forward(
    shared: &Shared,
    routed: &[ForwardRequest],
    hold: Option<Hold<'_>>,
) -> StoreResult<Vec<Receipt>> {
    let mut held = Vec::new();
    for chunk in forward_chunks(routed) {
        let (from, to) = (&shared.ingest_queue, &shared.delivery_queue);
        let outcome = match hold {
            None => shared.store.forward(from, to, chunk).await?,
            Some(hold) => shared.store.forward_held(from, to, chunk, hold).await?,
        };
        if !outcome.acked.stale.is_empty() {
            tracing::warn!(
                lost = outcome.acked.stale.len(),
                "router: leases lapsed mid-batch; the janitor has handed those items on"
            );
        }
        held.extend(outcome.held);
    }
    Ok(held)
}

/// Dead-letter what could not be routed, and record the alerts seen meanwhile.
async fn dead_letter_and_note(
    shared: &Shared,
    invalid: &[DeadLetterRequest],
    seen: &[SeenAlert],
) -> StoreResult<()> {
    let dead_letter = async {
        for chunk in invalid.chunks(MAX_BATCH) {
            shared
                .store
                .dead_letter(&shared.ingest_queue, chunk)
                .await?;
        }
        Ok(())
    };
    // What silences match and inhibition reads; losing a sighting costs only freshness.
    let note = async {
        if let Err(error) = shared.store.alerts_note(seen).await {
            tracing::warn!(%error, "router: could not record the alerts seen");
        }
    };
    tokio::join!(dead_letter, note).0
}

/// The delivery of `alert` to one routing target; its id is derived, so routing the alert again
/// re-creates it.
fn delivery(alert: &Envelope, target: &Target, now: i64) -> Envelope {
    Envelope {
        id: EnvelopeId(derived_ulid(alert.id.as_str(), &target.channel, now)),
        idempotency_key: format!("{}@{}", alert.idempotency_key, target.channel),
        tenant: alert.tenant.clone(),
        payload: routed_job(&alert.payload, &target.channel, &target.retry_policy),
        created_at_ms: alert.created_at_ms,
        last_error: None,
        first_failure_ms: None,
        history: Vec::new(),
        attempts: 0,
        replays: 0,
    }
}

/// Consecutive runs of `requests` within the store's limits of `MAX_BATCH` requests and
/// `MAX_BATCH` envelopes per `forward` call.
fn forward_chunks(requests: &[ForwardRequest]) -> impl Iterator<Item = &[ForwardRequest]> {
    let mut rest = requests;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut envelopes = 0;
        let mut take = 0;
        for request in rest.iter().take(MAX_BATCH) {
            envelopes += request.envelopes.len();
            // One request over the limit goes alone, for the store to refuse.
            if envelopes > MAX_BATCH && take > 0 {
                break;
            }
            take += 1;
        }
        let (chunk, tail) = rest.split_at(take);
        rest = tail;
        Some(chunk)
    })
}

/// A `DeliveryJob` whose alert is the ingested payload as it is: the alert was just decoded
/// from that text and is delivered unchanged, so it is not encoded again.
#[derive(Serialize)]
struct RoutedJob<'a> {
    alert: &'a Payload,
    channel: &'a str,
    retry_policy: &'a str,
}

/// The job `routed_job` encodes, as decoding it would give it back.
fn routed_delivery_job(alert: &Alert, target: Target) -> DeliveryJob {
    DeliveryJob {
        alert: alert.clone(),
        channel: target.channel,
        retry_policy: target.retry_policy,
        previous_delay_ms: None,
        group: None,
    }
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
    use crate::model::{AlertStatus, Severity, fingerprint};

    fn request(envelopes: usize) -> ForwardRequest {
        ForwardRequest {
            receipt: crate::store::Receipt {
                partition: 0,
                id: EnvelopeId("i".to_owned()),
                token: "t".to_owned(),
            },
            envelopes: (0..envelopes)
                .map(|_| Envelope::new("t", serde_json::json!(1), 0))
                .collect(),
        }
    }

    #[test]
    fn forward_chunks_keep_within_the_store_limits_and_in_order() {
        let sizes = |requests: &[ForwardRequest]| -> Vec<(usize, usize)> {
            forward_chunks(requests)
                .map(|c| (c.len(), c.iter().map(|r| r.envelopes.len()).sum()))
                .collect()
        };
        let dropped: Vec<_> = (0..=MAX_BATCH).map(|_| request(0)).collect();
        assert_eq!(sizes(&dropped), vec![(MAX_BATCH, 0), (1, 0)]);
        let fanned: Vec<_> = (0..300).map(|_| request(2)).collect();
        assert_eq!(
            sizes(&fanned),
            vec![(250, 500), (50, 100)],
            "no call over MAX_BATCH envelopes"
        );
        let huge = vec![request(1), request(MAX_BATCH + 1), request(1)];
        assert_eq!(
            sizes(&huge),
            vec![(1, 1), (1, MAX_BATCH + 1), (1, 1)],
            "an item over the limit goes alone, for the store to refuse"
        );
        assert_eq!(sizes(&[]), Vec::<(usize, usize)>::new());
    }

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
        let target = Target {
            channel: "slack".to_owned(),
            retry_policy: "default".to_owned(),
            route: "r".to_owned(),
            grouped: false,
        };
        // The router sends the job it built, and stores the encoded one: they must agree.
        assert_eq!(job, routed_delivery_job(&alert, target));
        assert_eq!(
            job,
            DeliveryJob {
                alert,
                channel: "slack".to_owned(),
                retry_policy: "default".to_owned(),
                previous_delay_ms: None,
                group: None,
            }
        );
    }
}
