//! The delivery worker: lease → emergency stop → breaker → dedup → send → ack | retry | DLQ.
//!
//! Per leased batch and channel the shared breaker is read and updated twice under
//! compare-and-set (permits, then outcomes), so every worker and every control room sees one
//! breaker without a store write per alert.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt as _, StreamExt as _};
use tokio_util::sync::CancellationToken;

use super::{Leasing, Shared, hand_back, lease_once, next_batch, pause};
use crate::config::{QueuesConfig, WorkersConfig};
use crate::delivery::{Backend, Disposition, SendError};
use crate::engine::breaker::{BreakerState, CallOutcome, Permit};
use crate::engine::clock::duration_ms;
use crate::engine::retry::RetryDecision;
use crate::engine::retry::RetryPolicy;
use crate::model::{
    DeliveryJob, EnvelopeId, FailedAttempt, FailureInfo, Payload, QueueName, Suppression,
    TestDelivery, TestStatus, match_labels,
};
use crate::store::{
    DeadLetterRequest, DedupClaim, DedupFinish, DedupTicket, ForwardRequest, Hold, LeasedItem,
    MAX_BATCH, Receipt, RetryRequest, StoreResult, update_breaker,
};
use crate::telemetry::EventLog;
use crate::telemetry::metrics::{ChannelLabels, TransitionLabels};
use crate::telemetry::{DeliveryEvent, DeliveryOutcome};

/// The retry policies by name, and the one a job naming none (or an unknown one) follows.
#[derive(Debug)]
pub struct Policies {
    pub(super) by_name: BTreeMap<String, RetryPolicy>,
    pub(super) default: RetryPolicy,
}

impl Policies {
    fn get(&self, name: &str) -> &RetryPolicy {
        self.by_name.get(name).unwrap_or(&self.default)
    }
}

/// What a delivery worker needs: how to lease (with the shared part), the channels, retry
/// policies, breaker settings, the event log, and its worker and queue settings.
pub struct DeliveryWorker {
    pub(super) leasing: Leasing,
    pub(super) backends: Arc<BTreeMap<String, Arc<dyn Backend>>>,
    pub(super) policies: Arc<Policies>,
    pub(super) breaker: crate::engine::breaker::BreakerConfig,
    pub(super) events: EventLog,
    pub(super) workers: WorkersConfig,
    pub(super) queues: QueuesConfig,
}

impl DeliveryWorker {
    fn shared(&self) -> &Shared {
        &self.leasing.shared
    }
}

pub async fn run(delivery: DeliveryWorker, stop: CancellationToken) {
    let idle = delivery.leasing.idle;
    let queue = delivery.shared().delivery_queue.clone();
    let mut ahead = None;
    delivery.shared().first_controls(&stop, idle).await;
    while !stop.is_cancelled() {
        let items = if let Some(items) = ahead.take() {
            items
        } else {
            if delivery
                .shared()
                .flags()
                .global_stop(delivery.shared().store.now_ms())
            {
                // Emergency stop: nothing is leased, so nothing is sent and nothing ages in a
                // lease.
                if !pause(&stop, idle * 10).await {
                    return;
                }
                continue;
            }
            let Some(items) = next_batch(&delivery.leasing, &queue, &stop, "delivery").await else {
                return;
            };
            items
        };
        // The next batch is leased while this one settles, so their round trips overlap.
        let next = lease_once(&delivery.leasing, &queue, &stop);
        let (settled, next) = deliver_batch(&delivery, items, &stop, next).await;
        if let Err(error) = settled {
            tracing::warn!(%error, "delivery: batch not settled; the janitor will return it");
        }
        ahead = next;
    }
    hand_back(delivery.shared(), &queue, ahead).await;
}

/// The error class of a delivery that failed in Ward's store, not in the backend.
const STORE_CLASS: &str = "store";

/// What happened to one leased delivery.
enum Step {
    Delivered,
    Duplicate,
    /// Another worker is sending the same alert right now.
    InFlight,
    Failed(SendError),
}

/// A delivery the breaker let through.
struct Permitted {
    backend: Arc<dyn Backend>,
    item: LeasedItem,
    job: DeliveryJob,
    probe: bool,
    /// Its dedup claim, once claimed: what records its success.
    ticket: Option<DedupTicket>,
}

struct Attempt {
    item: LeasedItem,
    job: DeliveryJob,
    probe: bool,
    ticket: Option<DedupTicket>,
    step: Step,
    took: Duration,
}

/// The store calls that settle one batch.
#[derive(Default)]
struct Settlement {
    acks: Vec<Receipt>,
    retries: Vec<RetryRequest>,
    dead: Vec<DeadLetterRequest>,
    deferred: BTreeMap<i64, Vec<Receipt>>,
    released: Vec<Receipt>,
    /// Test alerts that ended here, by correlation id, for whoever sent them.
    tests: Vec<(String, TestDelivery)>,
}

impl Settlement {
    /// The ids of items that do not end with this batch: retried, dead-lettered, deferred or
    /// released.
    fn waiting(&self) -> std::collections::BTreeSet<EnvelopeId> {
        let deferred = self.deferred.values().flatten();
        self.retries
            .iter()
            .map(|r| &r.receipt)
            .chain(self.dead.iter().map(|d| &d.receipt))
            .chain(deferred)
            .chain(&self.released)
            .map(|r| r.id.clone())
            .collect()
    }

    /// Swap each waiting item's receipt for `new`'s, dropping the items it has none for.
    fn rebind(&mut self, new: impl Fn(&Receipt) -> Option<Receipt>) {
        self.retries.retain_mut(|r| rebound(&mut r.receipt, &new));
        self.dead.retain_mut(|d| rebound(&mut d.receipt, &new));
        for receipts in self.deferred.values_mut() {
            receipts.retain_mut(|r| rebound(r, &new));
        }
        self.released.retain_mut(|r| rebound(r, &new));
    }

    fn defer(&mut self, receipt: Receipt, until_ms: i64) {
        self.deferred.entry(until_ms).or_default().push(receipt);
    }

    fn dead_letter(&mut self, item: LeasedItem, channel: &str, class: &str, message: String) {
        self.dead.push(DeadLetterRequest {
            failure: FailureInfo::new(class, message, "deliver").on(channel),
            receipt: item.receipt,
            envelope: item.envelope,
        });
    }

    /// A test alert ends at its first answer: acknowledged, its outcome kept for its sender.
    fn end_test(
        &mut self,
        receipt: Receipt,
        job: &DeliveryJob,
        (status, error): (TestStatus, Option<String>),
        took: Duration,
        now: i64,
    ) {
        self.acks.push(receipt);
        self.tests.push((
            job.alert.correlation_id.clone(),
            TestDelivery {
                status,
                channel: job.channel.clone(),
                error,
                took_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
                at_ms: now,
            },
        ));
    }

    async fn apply(self, delivery: &DeliveryWorker) -> StoreResult<()> {
        let store = delivery.shared().store.as_ref();
        let queue = &delivery.shared().delivery_queue;
        for chunk in self.acks.chunks(MAX_BATCH) {
            store.ack(queue, chunk).await?;
        }
        for chunk in self.retries.chunks(MAX_BATCH) {
            store.schedule_retry(queue, chunk).await?;
        }
        for chunk in self.dead.chunks(MAX_BATCH) {
            store.dead_letter(queue, chunk).await?;
        }
        for (until, receipts) in self.deferred {
            for chunk in receipts.chunks(MAX_BATCH) {
                store.defer(queue, chunk, until).await?;
            }
        }
        for chunk in self.released.chunks(MAX_BATCH) {
            store.release(queue, chunk).await?;
        }
        for (id, result) in &self.tests {
            store.test_result_put(id, result).await?;
        }
        Ok(())
    }
}

fn rebound(receipt: &mut Receipt, new: impl Fn(&Receipt) -> Option<Receipt>) -> bool {
    match new(receipt) {
        Some(found) => {
            *receipt = found;
            true
        }
        None => false,
    }
}

/// The batch's jobs by channel; what cannot be sent here (not a job, a channel this worker
/// does not have) is settled at once.
fn by_channel(
    delivery: &DeliveryWorker,
    items: Vec<(LeasedItem, Option<DeliveryJob>)>,
    now: i64,
    settlement: &mut Settlement,
) -> BTreeMap<String, Vec<(LeasedItem, DeliveryJob)>> {
    let mut by_channel: BTreeMap<String, Vec<(LeasedItem, DeliveryJob)>> = BTreeMap::new();
    for (item, job) in items {
        let job = job.map_or_else(|| item.envelope.payload.decode::<DeliveryJob>(), Ok);
        match job {
            Ok(job) if delivery.backends.contains_key(&job.channel) => {
                by_channel
                    .entry(job.channel.clone())
                    .or_default()
                    .push((item, job));
            }
            Ok(job) => {
                let message = format!("channel {:?} is not configured on this worker", job.channel);
                if job.alert.test {
                    let error = Some(format!("unknown_channel: {message}"));
                    let outcome = (TestStatus::NotSent, error);
                    settlement.end_test(item.receipt, &job, outcome, Duration::ZERO, now);
                } else {
                    settlement.dead_letter(item, &job.channel, "unknown_channel", message);
                }
            }
            Err(error) => {
                settlement.dead_letter(item, "", "decode", format!("not a delivery job: {error}"));
            }
        }
    }
    by_channel
}

/// Acknowledge, unsent, the jobs a silence or inhibition holds back (test alerts excepted: they
/// test the channel).
fn hold_back_suppressed(
    delivery: &DeliveryWorker,
    by_channel: &mut BTreeMap<String, Vec<(LeasedItem, DeliveryJob)>>,
    now: i64,
    settlement: &mut Settlement,
) {
    let suppressor = delivery.shared().suppressor();
    if suppressor.is_idle() {
        return;
    }
    for (channel, jobs) in by_channel.iter_mut() {
        let Some(backend) = delivery.backends.get(channel) else {
            continue;
        };
        jobs.retain(|(item, job)| {
            // A group's notification was filtered when it was flushed.
            if job.alert.test || job.group.is_some() {
                return true;
            }
            if !suppressor.may_hold(&job.alert.labels, job.alert.severity.as_str()) {
                return true;
            }
            let labels = match_labels(&job.alert);
            let Some(why) = suppressor.check(&job.alert.fingerprint, &labels, now) else {
                return true;
            };
            let outcome = match why {
                Suppression::Silenced { .. } => DeliveryOutcome::silenced,
                Suppression::Inhibited { .. } => DeliveryOutcome::inhibited,
                Suppression::Maintenance { .. } => DeliveryOutcome::muted,
            };
            count(delivery, backend, job, outcome);
            tracing::debug!(channel, fingerprint = %job.alert.fingerprint, %why, "delivery: held back");
            settlement.acks.push(item.receipt.clone());
            false
        });
    }
}

/// Deliver one leased batch and settle every item in it, running `following` beside the
/// settlement.
async fn deliver_batch<T>(
    delivery: &DeliveryWorker,
    items: Vec<LeasedItem>,
    stop: &CancellationToken,
    following: impl Future<Output = T>,
) -> (StoreResult<()>, T) {
    // Every item stays leased until the batch settles at the end, not only those being sent:
    // one deferred or dead-lettered meanwhile would otherwise lapse, be recovered by the
    // janitor (counting an attempt) and be handed to another worker.
    let held: Vec<Receipt> = items.iter().map(|i| i.receipt.clone()).collect();
    let queue = &delivery.shared().delivery_queue;
    let items = items.into_iter().map(|item| (item, None)).collect();
    let sent = send_batch(delivery, items, stop, (queue, &held)).await;
    tokio::join!(finish_batch(delivery, sent, Held::Leased), following)
}

/// Deliver what the router just routed, under its leases on the alerts (`routed`'s receipts),
/// running `following` beside the settlement: deliveries that end here (sent, duplicates, held
/// back by a silence) store nothing; the others are stored as their alerts are acked, and
/// settled as a leased batch's would be. `jobs` are the deliveries' jobs as the router built
/// them, in the order of `routed`'s envelopes, so they are not decoded again.
pub(super) async fn deliver_routed<T>(
    delivery: &DeliveryWorker,
    routed: &[ForwardRequest],
    jobs: Vec<DeliveryJob>,
    stop: &CancellationToken,
    following: impl Future<Output = T>,
) -> (StoreResult<()>, T) {
    let items: Vec<(LeasedItem, Option<DeliveryJob>)> = routed
        .iter()
        .flat_map(|request| {
            request.envelopes.iter().map(|envelope| LeasedItem {
                receipt: Receipt {
                    partition: request.receipt.partition,
                    id: envelope.id.clone(),
                    // Not stored, so held by no lease yet: `settle_routed` gives it one if needed.
                    token: String::new(),
                },
                envelope: envelope.clone(),
            })
        })
        .zip(
            jobs.into_iter()
                .map(Some)
                .chain(std::iter::repeat_with(|| None)),
        )
        .collect();
    let alerts: Vec<Receipt> = routed.iter().map(|r| r.receipt.clone()).collect();
    let queue = &delivery.shared().ingest_queue;
    let sent = send_batch(delivery, items, stop, (queue, &alerts)).await;
    tokio::join!(
        finish_batch(delivery, sent, Held::Routed(routed)),
        following
    )
}

/// A batch after its sends: each attempt, what is settled already, and the claims to finish.
struct Sent {
    attempts: Vec<Attempt>,
    settlement: Settlement,
    owner: String,
    last_sends: Vec<(String, DedupFinish)>,
}

/// Where a batch's items are while it is sent.
enum Held<'a> {
    /// Leased from the delivery queue.
    Leased,
    /// Routed by this worker and not stored: each request's receipt is its alert's lease on the
    /// ingest queue, its envelopes the alert's deliveries.
    Routed(&'a [ForwardRequest]),
}

/// Check, claim and send one batch, extending the leases `held` names (on their queue) while
/// it runs.
async fn send_batch(
    delivery: &DeliveryWorker,
    items: Vec<(LeasedItem, Option<DeliveryJob>)>,
    stop: &CancellationToken,
    held: (&QueueName, &[Receipt]),
) -> Sent {
    let now = delivery.shared().store.now_ms();
    let recheck = i64::try_from(delivery.workers.recheck_ms).unwrap_or(i64::MAX);
    let mut settlement = Settlement::default();
    let mut by_channel = by_channel(delivery, items, now, &mut settlement);
    hold_back_suppressed(delivery, &mut by_channel, now, &mut settlement);
    let flags = delivery.shared().flags();
    let mut permitted: Vec<Permitted> = Vec::new();
    for (channel, jobs) in by_channel {
        let Some(backend) = delivery.backends.get(&channel).cloned() else {
            continue;
        };
        if stop.is_cancelled() {
            settlement
                .released
                .extend(jobs.into_iter().map(|(item, _)| item.receipt));
            continue;
        }
        if flags.channel_stop(&channel, now) {
            for (item, job) in jobs {
                count(delivery, &backend, &job, DeliveryOutcome::stopped);
                if job.alert.test {
                    let error = Some("stopped: an emergency stop holds this channel".to_owned());
                    let outcome = (TestStatus::NotSent, error);
                    settlement.end_test(item.receipt, &job, outcome, Duration::ZERO, now);
                } else {
                    settlement.defer(item.receipt, now + recheck);
                }
            }
            continue;
        }
        let mut permits = Vec::new();
        let mut before = BreakerState::Closed;
        let updated = update_breaker(delivery.shared().store.as_ref(), &channel, |b| {
            before = b.state;
            permits = jobs
                .iter()
                .map(|_| b.permit(&delivery.breaker, now))
                .collect();
        })
        .await;
        let breaker = match updated {
            Ok(breaker) => breaker,
            Err(error) => {
                // The breaker is unknown: send nothing on this channel now, count no attempt.
                tracing::warn!(%error, channel, "delivery: could not read the breaker");
                for (item, job) in jobs {
                    count(delivery, &backend, &job, DeliveryOutcome::store_error);
                    settlement.defer(item.receipt, now + 1000);
                }
                continue;
            }
        };
        note_transition(delivery, &channel, before, breaker.state);
        for ((item, job), permit) in jobs.into_iter().zip(permits) {
            match permit {
                Permit::Call | Permit::Probe => permitted.push(Permitted {
                    backend: backend.clone(),
                    item,
                    job,
                    probe: permit == Permit::Probe,
                    ticket: None,
                }),
                Permit::Rejected { retry_in } => {
                    count(delivery, &backend, &job, DeliveryOutcome::breaker_open);
                    if job.alert.test {
                        let error = Some(format!(
                            "breaker_open: the {channel} breaker is open (next probe in {} s)",
                            retry_in.as_secs()
                        ));
                        let outcome = (TestStatus::NotSent, error);
                        settlement.end_test(item.receipt, &job, outcome, Duration::ZERO, now);
                    } else {
                        let wait = duration_ms(retry_in).clamp(1000, recheck.max(1000));
                        settlement.defer(item.receipt, now + wait);
                    }
                }
            }
        }
    }

    let claims = Claims::new(delivery);
    let (attempts, last_sends) = with_heartbeat(
        delivery,
        held,
        &claims,
        claim_and_send(delivery, permitted, &claims),
    )
    .await;
    Sent {
        attempts,
        settlement,
        owner: claims.owner,
        last_sends,
    }
}

/// Record the last sends for dedup and then settle the batch's attempts, telling the breakers
/// meanwhile: a delivery is remembered before its ack, and the breakers are independent.
async fn finish_batch(delivery: &DeliveryWorker, sent: Sent, held: Held<'_>) -> StoreResult<()> {
    let Sent {
        attempts,
        mut settlement,
        owner,
        last_sends,
    } = sent;
    let outcomes = breaker_outcomes(&attempts);
    let done = delivery.shared().store.now_ms();
    for attempt in attempts {
        settle_one(delivery, attempt, done, &mut settlement);
    }
    let settle = async {
        record_finish(delivery, &owner, &last_sends).await;
        match held {
            Held::Leased => settlement.apply(delivery).await,
            Held::Routed(routed) => settle_routed(delivery, settlement, routed).await,
        }
    };
    let (recorded, settled) = tokio::join!(record_outcomes(delivery, outcomes), settle);
    if let Err(error) = recorded {
        // The sends happened: they are settled anyway, or the janitor would hand them out again.
        tracing::warn!(%error, "delivery: could not update the breakers");
    }
    settled
}

/// Settle deliveries the router attempted. Those that must wait (a retry, a deferral, a dead
/// letter, a release) are stored leased to this worker as their alerts are acked, in one step
/// per partition (`forward_held`), then settled with the receipts that returns; the alerts
/// whose deliveries all ended are acked in the same step, storing nothing more.
async fn settle_routed(
    delivery: &DeliveryWorker,
    mut settlement: Settlement,
    routed: &[ForwardRequest],
) -> StoreResult<()> {
    let shared = delivery.shared();
    // Acks of routed deliveries have nothing to remove: they were never stored.
    settlement.acks.clear();
    let waiting = settlement.waiting();
    let requests: Vec<ForwardRequest> = routed
        .iter()
        .map(|request| ForwardRequest {
            receipt: request.receipt.clone(),
            envelopes: request
                .envelopes
                .iter()
                .filter(|e| waiting.contains(&e.id))
                .cloned()
                .collect(),
        })
        .collect();
    let hold = Hold {
        worker: &shared.worker,
        lease_for: delivery.queues.lease(),
    };
    let receipts: BTreeMap<EnvelopeId, Receipt> =
        super::router::forward(shared, &requests, Some(hold))
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
    // A delivery stored already (its alert routed before) is settled by whoever holds it.
    settlement.rebind(|receipt| receipts.get(&receipt.id).cloned());
    settlement.apply(delivery).await
}

/// This batch's claims: the owner token it claims under, and the keys claimed and not yet
/// finished.
struct Claims {
    owner: String,
    open: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl Claims {
    fn new(delivery: &DeliveryWorker) -> Self {
        Self {
            owner: format!(
                "{}#{:016x}",
                delivery.shared().worker.as_str(),
                fastrand::u64(..)
            ),
            open: std::sync::Mutex::default(),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut std::collections::BTreeSet<String>) -> R) -> R {
        f(&mut self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// Run `work` while extending, every heartbeat, the leases on `held` and the claims still
/// sending, so a batch of slow sends is neither handed to another worker by the janitor nor
/// sent again by one holding a copy of the alert. The heartbeat runs beside the sends, never
/// in their way.
async fn with_heartbeat<T>(
    delivery: &DeliveryWorker,
    (queue, held): (&QueueName, &[Receipt]),
    claims: &Claims,
    work: impl std::future::Future<Output = T>,
) -> T {
    let every = Duration::from_millis(delivery.queues.heartbeat_ms.max(1));
    let heartbeat = async {
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            beat.tick().await;
            for chunk in held.chunks(MAX_BATCH) {
                match delivery
                    .shared()
                    .store
                    .extend(queue, chunk, delivery.queues.lease())
                    .await
                {
                    Ok(outcome) if !outcome.stale.is_empty() => tracing::warn!(
                        lost = outcome.stale.len(),
                        "delivery: leases lapsed mid-batch; the janitor has handed them on"
                    ),
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "delivery: could not extend leases"),
                }
            }
            let holds: Vec<(String, DedupFinish)> = claims.with(|keys| {
                keys.iter()
                    .map(|k| (k.clone(), DedupFinish::Hold(delivery.queues.lease())))
                    .collect()
            });
            if !holds.is_empty()
                && let Err(error) = delivery
                    .shared()
                    .store
                    .dedup_finish(&claims.owner, &holds)
                    .await
            {
                tracing::warn!(%error, "delivery: could not extend dedup claims");
            }
        }
    };
    tokio::select! {
        done = work => done,
        () = heartbeat => unreachable!("the heartbeat loop never ends"),
    }
}

/// Claim idempotency keys just before sending, one wave of `concurrency` deliveries per store
/// call, send what was claimed, and record the results as they complete, except the last
/// chunk's, which are returned to be recorded beside the batch's settlement. Claims are held
/// for one lease and extended by the heartbeat, so a dead worker's claims lapse with its leases.
async fn claim_and_send(
    delivery: &DeliveryWorker,
    permitted: Vec<Permitted>,
    claims: &Claims,
) -> (Vec<Attempt>, Vec<(String, DedupFinish)>) {
    let concurrency = delivery.workers.concurrency.max(1);
    let hold = delivery.queues.lease();
    let window = Duration::from_millis(delivery.workers.dedup_ttl_ms);
    let mut waves = permitted.into_iter().peekable();
    let mut claimed: std::collections::VecDeque<Permitted> = std::collections::VecDeque::new();
    let mut sending = futures::stream::FuturesUnordered::new();
    // Sends that completed and are not yet recorded; filled also while a store call runs.
    let mut finished: Vec<Attempt> = Vec::new();
    let mut attempts = Vec::new();
    loop {
        // Keep `concurrency` sends going, claiming the next wave only when it is needed.
        while sending.len() < concurrency {
            if let Some(p) = claimed.pop_front() {
                sending.push(send(delivery, p));
                continue;
            }
            if waves.peek().is_none() {
                break;
            }
            let wave: Vec<Permitted> = waves.by_ref().take(concurrency).collect();
            let claim = claim_wave(delivery, &claims.owner, wave, (hold, window));
            for ready in polling(claim, &mut sending, &mut finished).await {
                match ready {
                    Claimed::Send(p) => {
                        claims.with(|keys| keys.insert(p.item.envelope.idempotency_key.clone()));
                        claimed.push_back(p);
                    }
                    Claimed::Decided(attempt) => attempts.push(attempt),
                }
            }
        }
        // Successes are recorded as they complete, in whatever chunk is ready: after a crash
        // only the sends still in flight can be repeated, and a fast backend still gets one
        // store call per chunk instead of one per alert.
        if finished.is_empty() {
            let Some(first) = sending.next().await else {
                break;
            };
            finished.push(first);
        }
        while finished.len() < MAX_BATCH
            && let Some(Some(more)) = sending.next().now_or_never()
        {
            finished.push(more);
        }
        let chunk = std::mem::take(&mut finished);
        let outcomes: Vec<(String, DedupFinish)> = chunk
            .iter()
            .map(|a| {
                let finish = match (&a.step, a.ticket) {
                    (Step::Delivered, Some(ticket)) => DedupFinish::Done(ticket),
                    _ => DedupFinish::Release,
                };
                (a.item.envelope.idempotency_key.clone(), finish)
            })
            .collect();
        if sending.is_empty() && claimed.is_empty() && waves.peek().is_none() {
            attempts.extend(chunk);
            return (attempts, outcomes);
        }
        let record = record_finish(delivery, &claims.owner, &outcomes);
        polling(record, &mut sending, &mut finished).await;
        claims.with(|keys| {
            for (key, _) in &outcomes {
                keys.remove(key);
            }
        });
        attempts.extend(chunk);
    }
    (attempts, Vec::new())
}

/// Await a store call while the sends in flight keep running (their timeouts are counting),
/// collecting those that complete meanwhile.
async fn polling<T, S>(
    call: impl std::future::Future<Output = T>,
    sending: &mut futures::stream::FuturesUnordered<S>,
    finished: &mut Vec<Attempt>,
) -> T
where
    S: std::future::Future<Output = Attempt>,
{
    let mut call = std::pin::pin!(call);
    loop {
        tokio::select! {
            biased;
            out = &mut call => return out,
            Some(done) = sending.next(), if !sending.is_empty() => finished.push(done),
        }
    }
}

/// A delivery after its claim: to send, or already decided.
enum Claimed {
    Send(Permitted),
    /// A duplicate, in flight elsewhere, or the store failed.
    Decided(Attempt),
}

/// Claim one wave of deliveries in one store call.
async fn claim_wave(
    delivery: &DeliveryWorker,
    owner: &str,
    wave: Vec<Permitted>,
    (hold, window): (Duration, Duration),
) -> Vec<Claimed> {
    let keys: Vec<String> = wave
        .iter()
        .map(|p| p.item.envelope.idempotency_key.clone())
        .collect();
    let claims: Vec<Result<DedupClaim, String>> = match delivery
        .shared()
        .store
        .dedup_claim(owner, &keys, hold, window)
        .await
    {
        Ok(claims) if claims.len() == keys.len() => claims.into_iter().map(Ok).collect(),
        Ok(claims) => {
            let message = format!("{} dedup answers for {} keys", claims.len(), keys.len());
            vec![Err(message); keys.len()]
        }
        Err(error) => {
            // Some partitions' claims may have been written before the error: free them.
            let release: Vec<(String, DedupFinish)> = keys
                .iter()
                .map(|k| (k.clone(), DedupFinish::Release))
                .collect();
            let _ = delivery.shared().store.dedup_finish(owner, &release).await;
            vec![Err(format!("could not claim the alert: {error}")); keys.len()]
        }
    };
    wave.into_iter()
        .zip(claims)
        .map(|(p, claim)| {
            let step = match claim {
                Ok(DedupClaim::Claimed(ticket)) => {
                    return Claimed::Send(Permitted {
                        ticket: Some(ticket),
                        ..p
                    });
                }
                Ok(DedupClaim::AlreadyDone) => Step::Duplicate,
                Ok(DedupClaim::InFlight) => Step::InFlight,
                Err(message) => Step::Failed(SendError::retryable(STORE_CLASS, message)),
            };
            Claimed::Decided(Attempt {
                item: p.item,
                job: p.job,
                probe: p.probe,
                ticket: None,
                step,
                took: Duration::ZERO,
            })
        })
        .collect()
}

/// Remember how claimed sends ended; one retry, since a lost `done` lets a later copy of the
/// alert be sent again once the claim lapses.
async fn record_finish(delivery: &DeliveryWorker, owner: &str, outcomes: &[(String, DedupFinish)]) {
    if outcomes.is_empty()
        || delivery
            .shared()
            .store
            .dedup_finish(owner, outcomes)
            .await
            .is_ok()
    {
        return;
    }
    if let Err(error) = delivery.shared().store.dedup_finish(owner, outcomes).await {
        tracing::warn!(%error, "could not record the deliveries for dedup");
    }
}

/// Send one claimed delivery through its backend, within the send timeout.
async fn send(delivery: &DeliveryWorker, permitted: Permitted) -> Attempt {
    let Permitted {
        backend,
        item,
        job,
        probe,
        ticket,
    } = permitted;
    let started = Instant::now();
    let timeout = Duration::from_millis(delivery.workers.send_timeout_ms);
    let sent = tokio::time::timeout(timeout, backend.send(&job, &item.envelope.idempotency_key))
        .await
        .unwrap_or_else(|_| {
            Err(SendError::retryable(
                "timeout",
                format!("no answer within {timeout:?}"),
            ))
        });
    Attempt {
        item,
        job,
        probe,
        ticket,
        step: sent.map_or_else(Step::Failed, |()| Step::Delivered),
        took: started.elapsed(),
    }
}

/// What each channel's breaker learns from a batch's attempts: (outcome, was a probe).
fn breaker_outcomes(attempts: &[Attempt]) -> BTreeMap<String, Vec<(CallOutcome, bool)>> {
    let mut per_channel: BTreeMap<String, Vec<(CallOutcome, bool)>> = BTreeMap::new();
    for a in attempts {
        let outcome = match &a.step {
            Step::Delivered => CallOutcome::Success,
            Step::Failed(e)
                if e.disposition == Disposition::Retryable && e.class != STORE_CLASS =>
            {
                CallOutcome::Failure
            }
            _ => CallOutcome::Ignored,
        };
        if let Some(outcomes) = per_channel.get_mut(a.job.channel.as_str()) {
            outcomes.push((outcome, a.probe));
        } else {
            per_channel.insert(a.job.channel.clone(), vec![(outcome, a.probe)]);
        }
    }
    per_channel
}

/// Feed the batch's outcomes into each channel's shared breaker.
async fn record_outcomes(
    delivery: &DeliveryWorker,
    per_channel: BTreeMap<String, Vec<(CallOutcome, bool)>>,
) -> StoreResult<()> {
    let now = delivery.shared().store.now_ms();
    for (channel, outcomes) in per_channel {
        let mut before = BreakerState::Closed;
        let breaker = update_breaker(delivery.shared().store.as_ref(), &channel, |b| {
            before = b.state;
            for (outcome, probe) in &outcomes {
                b.record(&delivery.breaker, now, *outcome, *probe);
            }
        })
        .await?;
        note_transition(delivery, &channel, before, breaker.state);
    }
    Ok(())
}

fn note_transition(delivery: &DeliveryWorker, channel: &str, from: BreakerState, to: BreakerState) {
    delivery.shared().metrics.set_breaker(channel, to);
    if from != to {
        tracing::info!(
            channel,
            from = from.as_str(),
            to = to.as_str(),
            "breaker changed state"
        );
        delivery
            .shared()
            .metrics
            .breaker_transitions
            .get_or_create(&TransitionLabels {
                channel: channel.to_owned(),
                from: from.as_str(),
                to: to.as_str(),
            })
            .inc();
    }
}

fn count(
    delivery: &DeliveryWorker,
    backend: &Arc<dyn Backend>,
    job: &DeliveryJob,
    outcome: DeliveryOutcome,
) {
    delivery.shared().metrics.delivery(
        &job.channel,
        backend.kind().as_str(),
        outcome,
        job.alert.test,
    );
}

fn settle_one(delivery: &DeliveryWorker, a: Attempt, now: i64, settlement: &mut Settlement) {
    let backend_kind = delivery
        .backends
        .get(&a.job.channel)
        .map_or("unknown", |b| b.kind().as_str());
    let attempt_no = a.item.envelope.attempts + 1;
    let mut event = DeliveryEvent {
        at_ms: now,
        correlation_id: a.job.alert.correlation_id.clone(),
        fingerprint: a.job.alert.fingerprint.clone(),
        channel: a.job.channel.clone(),
        alert_backend: backend_kind,
        alert_status: "delivered",
        retry_policy: a.job.retry_policy.clone(),
        attempt: attempt_no,
        delay_ms: None,
        error_class: None,
        duration_ms: u64::try_from(a.took.as_millis()).unwrap_or(u64::MAX),
        test: a.job.alert.test,
    };
    let labels = ChannelLabels {
        channel: a.job.channel.clone(),
    };
    let outcome = match a.step {
        Step::Delivered => {
            delivery
                .shared()
                .metrics
                .delivery_latency
                .get_or_create(&labels)
                .observe(a.took.as_secs_f64());
            if a.job.alert.test {
                let outcome = (TestStatus::Delivered, None);
                settlement.end_test(a.item.receipt, &a.job, outcome, a.took, now);
            } else {
                settlement.acks.push(a.item.receipt);
            }
            DeliveryOutcome::delivered
        }
        Step::Duplicate => {
            delivery
                .shared()
                .metrics
                .dedup_hits
                .get_or_create(&labels)
                .inc();
            settlement.acks.push(a.item.receipt);
            DeliveryOutcome::deduplicated
        }
        Step::InFlight => {
            settlement.defer(a.item.receipt, now + 1000);
            DeliveryOutcome::deduplicated
        }
        Step::Failed(error) if error.class == STORE_CLASS => {
            // Nothing was sent: the store could not claim the alert. Try again soon, with no
            // attempt counted against the alert for Ward's own outage.
            event.error_class = Some(error.class.clone());
            settlement.defer(a.item.receipt, now + 1000);
            DeliveryOutcome::store_error
        }
        Step::Failed(error) if a.job.alert.test => {
            // A test reports the channel's answer now: not retried, not dead-lettered.
            event.error_class = Some(error.class.clone());
            let outcome = (
                TestStatus::Failed,
                Some(format!("{}: {}", error.class, error.message)),
            );
            settlement.end_test(a.item.receipt, &a.job, outcome, a.took, now);
            DeliveryOutcome::failed
        }
        Step::Failed(error) => {
            event.error_class = Some(error.class.clone());
            fail(
                delivery,
                a.item,
                a.job.clone(),
                &error,
                now,
                settlement,
                &mut event,
            )
        }
    };
    event.alert_status = outcome_str(outcome);
    delivery
        .shared()
        .metrics
        .delivery(&a.job.channel, backend_kind, outcome, a.job.alert.test);
    delivery.events.record(event);
}

/// A failed send: retry per the job's policy, or dead-letter it.
fn fail(
    delivery: &DeliveryWorker,
    mut item: LeasedItem,
    mut job: DeliveryJob,
    error: &SendError,
    now: i64,
    settlement: &mut Settlement,
    event: &mut DeliveryEvent,
) -> DeliveryOutcome {
    // The store counted the earlier attempts; a DLQ entry must count this failed one too.
    item.envelope.attempts += 1;
    let attempts = item.envelope.attempts;
    let retry_after = match error.disposition {
        Disposition::Permanent => {
            let message = format!("{} (permanent)", error.message);
            settlement.dead_letter(item, &job.channel, &error.class, message);
            return DeliveryOutcome::dead_lettered;
        }
        Disposition::RateLimited(wait) => wait,
        Disposition::Retryable => None,
    };
    let policy = delivery.policies.get(&job.retry_policy);
    let first_failure = item.envelope.first_failure_ms.unwrap_or(now);
    let elapsed = Duration::from_millis(u64::try_from(now - first_failure).unwrap_or(0));
    let previous = job.previous_delay_ms.map(Duration::from_millis);
    let mut rng = fastrand::Rng::new();
    let ceiling = delivery.queues.max_attempts.max(1);
    let decision = if attempts >= ceiling {
        RetryDecision::GiveUp
    } else {
        policy.decide(attempts, previous, elapsed, retry_after, &mut rng)
    };
    match decision {
        RetryDecision::RetryAfter(delay) => {
            let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
            job.previous_delay_ms = Some(delay_ms);
            let mut envelope = item.envelope;
            envelope.payload = Payload::encode(&job).unwrap_or(envelope.payload);
            envelope.last_error = Some(format!("{}: {}", error.class, error.message));
            envelope.first_failure_ms = Some(first_failure);
            envelope.record_attempt(FailedAttempt::new(
                attempts,
                now,
                &job.channel,
                &error.class,
                &error.message,
            ));
            delivery
                .shared()
                .metrics
                .retries
                .get_or_create(&crate::telemetry::metrics::PolicyLabels {
                    policy: policy.name.clone(),
                })
                .inc();
            event.delay_ms = Some(delay_ms);
            settlement.retries.push(RetryRequest {
                receipt: item.receipt,
                envelope,
                due_at_ms: now.saturating_add(duration_ms(delay)),
            });
            if retry_after.is_some() {
                DeliveryOutcome::rate_limited
            } else {
                DeliveryOutcome::retried
            }
        }
        RetryDecision::GiveUp => {
            let limit = if attempts >= ceiling && ceiling < policy.effective_max_attempts() {
                format!("queues.max_attempts {ceiling}")
            } else {
                policy.name.clone()
            };
            let message = format!(
                "gave up after {attempts} attempts ({limit}): {}",
                error.message
            );
            settlement.dead_letter(item, &job.channel, &error.class, message);
            DeliveryOutcome::dead_lettered
        }
    }
}

fn outcome_str(outcome: DeliveryOutcome) -> &'static str {
    match outcome {
        DeliveryOutcome::delivered => "delivered",
        DeliveryOutcome::retried => "retried",
        DeliveryOutcome::dead_lettered => "dead_lettered",
        DeliveryOutcome::deduplicated => "deduplicated",
        DeliveryOutcome::rate_limited => "rate_limited",
        DeliveryOutcome::breaker_open => "breaker_open",
        DeliveryOutcome::stopped => "stopped",
        DeliveryOutcome::store_error => "store_error",
        DeliveryOutcome::failed => "failed",
        DeliveryOutcome::silenced => "silenced",
        DeliveryOutcome::inhibited => "inhibited",
        DeliveryOutcome::muted => "muted",
    }
}
