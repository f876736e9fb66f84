//! The embedded store: one lock around plain collections, with exactly the Redis backend's
//! semantics (the same order keys, the same fences, the same counters). Envelopes are kept
//! decoded; text written by hand (tests of corrupt entries) is kept as text and decoded, or
//! refused, exactly as Redis's copy would be.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Per-item maps hashed with foldhash (seeded per process): SipHash was a tenth of the pipeline.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use async_trait::async_trait;
use tokio::sync::broadcast;

use super::{
    BatchResult, ControlRead, DeadLetterRequest, DedupClaim, DedupFinish, DlqCursor, DlqFilter,
    DlqGroup, DlqPage, DlqScope, FailedSet, ForwardOutcome, ForwardRequest, GroupStep,
    IngestLimits, IngestOutcome, KeySchema, Lease, LeasedItem, MAX_BATCH, Receipt, ReceiptOutcome,
    ReplayOptions, RetryRequest, SCAN_BUDGET, Store, StoreResult, Update, cap_share, check_batch,
    check_bucket, check_forward, check_ingest, check_receipts, check_step, decode_envelope,
    dlq_meta_for, encode_envelope, ingest_partition, is_empty_scope, lease_token, next_after_step,
    page_across_partitions, partition_share, settle_corrupt, tenant_quantities, text_matches,
};
use crate::engine::breaker::Breaker;
use crate::engine::clock::{Clock, SharedClock, SystemClock, duration_ms};
use crate::engine::grouping::{GroupState, NotifyLog};
use crate::engine::partition::partition_for;
use crate::engine::ratelimit::{RateLimit, Verdict, gcra};
use crate::model::{
    AuditEntry, AuditRecord, DlqEntry, DlqMeta, Envelope, EnvelopeId, Flag, FlagState, QueueName,
    QueueStats, SCHEDULED_SAMPLE, ScheduledItem, ScheduledSummary, SeenAlert, Silence, StoreStats,
    TestDelivery, WorkerBeat, WorkerId, ulid_timestamp_ms,
};

const AUDIT_CAPACITY: usize = 100_000;

#[derive(Debug, Default)]
struct QueueState {
    /// Front = oldest = next to lease (Redis: the list's right end).
    waiting: VecDeque<String>,
    leases: BTreeSet<(i64, String)>,
    lease_of: HashMap<String, (i64, String)>,
    scheduled: BTreeSet<(i64, String)>,
    dlq: BTreeSet<String>,
    dead: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct Partition {
    /// A handful of queues: a linear search finds one without allocating a key.
    queues: Vec<(QueueName, QueueState)>,
    /// Items with their counters: one lookup per item per step, as on Redis.
    bodies: HashMap<String, Stored>,
    meta: HashMap<String, DlqMeta>,
}

/// A stored item and the store-owned counters.
#[derive(Debug)]
struct Stored {
    /// Shared so a lease copies a pointer under the lock and clones after releasing it.
    body: Body,
    attempts: u32,
    replays: u32,
}

impl Stored {
    fn new(body: Body) -> Self {
        Self {
            body,
            attempts: 0,
            replays: 0,
        }
    }
}

/// An envelope as enqueued, or raw text put there by hand.
#[derive(Debug, Clone)]
enum Body {
    Envelope(Arc<Envelope>),
    Raw(Arc<str>),
}

impl Body {
    /// The envelope with the store's counters, or the decode error.
    fn decode(&self, attempts: u32, replays: u32) -> Result<Envelope, String> {
        match self {
            Self::Envelope(envelope) => {
                let mut envelope = Envelope::clone(envelope);
                envelope.attempts = attempts;
                envelope.replays = replays;
                Ok(envelope)
            }
            Self::Raw(raw) => decode_envelope(raw, attempts, replays),
        }
    }

    /// The channel a delivery job names, if it is one.
    fn channel(&self) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Job {
            channel: String,
        }
        match self {
            Self::Envelope(envelope) => envelope.payload.decode::<Job>().ok().map(|j| j.channel),
            Self::Raw(raw) => decode_envelope(raw, 0, 0)
                .ok()
                .and_then(|e| e.payload.decode::<Job>().ok())
                .map(|j| j.channel),
        }
    }

    /// The envelope's payload as JSON, as the text search reads it (`None` when the stored
    /// text is not a JSON object with a payload).
    fn payload(&self) -> Option<serde_json::Value> {
        match self {
            Self::Envelope(envelope) => Some(envelope.payload.to_value()),
            Self::Raw(raw) => serde_json::from_str::<serde_json::Value>(raw)
                .ok()?
                .get_mut("payload")
                .map(serde_json::Value::take),
        }
    }

    /// The stored text (what a DLQ entry shows when it does not decode).
    fn text(&self) -> String {
        match self {
            Self::Envelope(envelope) => encode_envelope(envelope).unwrap_or_default(),
            Self::Raw(raw) => raw.to_string(),
        }
    }
}

/// The fence shared by every change to a leased item (Redis: `settle.lua`): for each item
/// whose receipt still holds its lease, drop the lease and `apply`; else report it stale.
fn fence<'a, T: 'a>(
    state: &mut State,
    queue: &QueueName,
    items: impl Iterator<Item = &'a T>,
    receipt: impl Fn(&T) -> &Receipt,
    mut apply: impl FnMut(&mut Partition, &T),
) -> ReceiptOutcome {
    let mut outcome = ReceiptOutcome::default();
    for item in items {
        let r = receipt(item);
        let part = &mut state.partitions[usize::from(r.partition)];
        if part.holds(queue, &r.id.0, &r.token) {
            part.release(queue, &r.id.0);
            apply(part, item);
            outcome.applied += 1;
        } else {
            outcome.stale.push(r.id.clone());
        }
    }
    outcome
}

fn queue_in<'a>(
    queues: &'a mut Vec<(QueueName, QueueState)>,
    name: &QueueName,
) -> &'a mut QueueState {
    let index = queues
        .iter()
        .position(|(n, _)| n == name)
        .unwrap_or_else(|| {
            queues.push((name.clone(), QueueState::default()));
            queues.len() - 1
        });
    &mut queues[index].1
}

impl Partition {
    fn queue(&mut self, name: &QueueName) -> &mut QueueState {
        queue_in(&mut self.queues, name)
    }

    /// The fence: the lease on `id` is held by `token`.
    fn holds(&mut self, queue: &QueueName, id: &str, token: &str) -> bool {
        self.queue(queue)
            .lease_of
            .get(id)
            .is_some_and(|(_, holder)| holder == token)
    }

    fn release(&mut self, queue: &QueueName, id: &str) {
        let q = self.queue(queue);
        if let Some((deadline, _)) = q.lease_of.remove(id) {
            q.leases.remove(&(deadline, id.to_owned()));
        }
    }

    /// Store a new item at the back of `queue`; false (and nothing changes) if the id is held.
    fn add(&mut self, queue: &QueueName, id: String, body: Body) -> bool {
        if self.bodies.contains_key(&id) {
            return false;
        }
        self.bodies.insert(id.clone(), Stored::new(body));
        self.queue(queue).waiting.push_back(id);
        true
    }

    fn forget(&mut self, id: &str) {
        self.bodies.remove(id);
        self.meta.remove(id);
    }

    fn set(&mut self, queue: &QueueName, set: FailedSet) -> &mut BTreeSet<String> {
        let q = self.queue(queue);
        match set {
            FailedSet::Dlq => &mut q.dlq,
            FailedSet::Dead => &mut q.dead,
        }
    }

    /// Remove `id` from a failure set; its order key if it was there.
    fn take(&mut self, queue: &QueueName, set: FailedSet, id: &str) -> Option<String> {
        let key = self.meta.get(id).map(|m| m.key.clone())?;
        self.set(queue, set).remove(&key).then_some(key)
    }

    /// A filtered scan of one failure set from the cursor (see `scan_filtered`).
    fn scan(
        &mut self,
        queue: &QueueName,
        set: FailedSet,
        filter: &DlqFilter,
        from: &DlqCursor,
        limits: (usize, usize),
    ) -> (Vec<String>, usize, String, bool) {
        let q = queue_in(&mut self.queues, queue);
        let keys = match set {
            FailedSet::Dlq => &q.dlq,
            FailedSet::Dead => &q.dead,
        };
        let search = filter.search();
        let matches = |id: &str| {
            let Some(meta) = self.meta.get(id) else {
                return false;
            };
            filter.matches(meta)
                && search.as_deref().is_none_or(|needle| {
                    let payload = self.bodies.get(id).and_then(|b| b.body.payload());
                    text_matches(needle, meta, payload.as_ref())
                })
        };
        scan_filtered(keys, filter, from, limits, matches)
    }

    fn entry(&self, partition: u16, id: &str) -> Option<DlqEntry> {
        let meta = self.meta.get(id)?.clone();
        let envelope = match self.bodies.get(id) {
            Some(stored) => stored
                .body
                .decode(stored.attempts, stored.replays)
                .map_err(|_| stored.body.text()),
            None => Err(String::new()),
        };
        Some(DlqEntry {
            partition,
            meta,
            envelope,
        })
    }
}

#[derive(Debug, Default)]
struct State {
    partitions: Vec<Partition>,
    flags: HashMap<String, FlagState>,
    config: HashMap<String, String>,
    audit: VecDeque<AuditEntry>,
    audit_seq: u64,
    /// Rotates the partition a lease starts from, so no partition starves.
    lease_start: usize,
    /// Idempotency records: key → (`sending` | `done`, expiry ms).
    dedup: HashMap<String, DedupRecord>,
    /// Expired records are swept when `dedup` reaches this size (amortised O(1) per claim).
    dedup_sweep_at: usize,
    /// Rate limiters: name → (TAT µs, expiry ms).
    limiters: HashMap<String, (i64, i64)>,
    breakers: BTreeMap<String, (u64, Breaker)>,
    workers: BTreeMap<String, WorkerBeat>,
    /// Test alert outcomes: id → (outcome, expiry ms).
    test_results: HashMap<String, (TestDelivery, i64)>,
    silences: BTreeMap<String, Silence>,
    /// Alerts the router saw, by fingerprint.
    seen: HashMap<String, SeenAlert>,
    /// Aggregation groups: id → (version, state, scheduled flush ms).
    groups: HashMap<String, (u64, GroupState, i64)>,
    /// Notification logs: id → (log, expiry ms).
    notify_logs: HashMap<String, (NotifyLog, i64)>,
}

/// One idempotency record: delivered, or being sent by `owner`, until `expires` (ms).
#[derive(Debug)]
struct DedupRecord {
    done: bool,
    expires: i64,
    owner: String,
}

impl State {
    fn stats(&self, queues: &[QueueName], now: i64) -> StoreStats {
        let mut out = Vec::with_capacity(queues.len());
        for queue in queues {
            let mut stats = QueueStats::empty(queue.clone());
            let mut scheduled = Vec::new();
            let jobs = *queue == QueueName::delivery();
            for part in &self.partitions {
                let Some((_, q)) = part.queues.iter().find(|(name, _)| name == queue) else {
                    continue;
                };
                stats.depth += q.waiting.len() as u64;
                stats.in_flight += q.leases.len() as u64;
                stats.scheduled += q.scheduled.len() as u64;
                stats.dlq += q.dlq.len() as u64;
                stats.dead += q.dead.len() as u64;
                let age = q
                    .waiting
                    .front()
                    .and_then(|id| ulid_timestamp_ms(id))
                    .map(|created| now.saturating_sub(created).max(0) as u64);
                stats.oldest_age_ms = stats.oldest_age_ms.max(age);
                scheduled.extend(q.scheduled.iter().take(SCHEDULED_SAMPLE).map(|(due, id)| {
                    let stored = part.bodies.get(id);
                    ScheduledItem {
                        id: id.clone(),
                        due_ms: *due,
                        attempts: stored.map_or(0, |s| s.attempts),
                        channel: stored
                            .filter(|_| jobs)
                            .and_then(|s| s.body.channel())
                            .unwrap_or_default(),
                    }
                }));
            }
            stats.waiting_retry = ScheduledSummary::of(&scheduled, now);
            out.push(stats);
        }
        let mut flags: Vec<_> = self
            .flags
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        flags.sort_by(|a, b| a.0.cmp(&b.0));
        StoreStats {
            read_at_ms: now,
            queues: out,
            flags,
        }
    }
    /// Drop expired idempotency records once the map has doubled since the last sweep.
    fn prune_dedup(&mut self, now: i64) {
        if self.dedup.len() < self.dedup_sweep_at {
            return;
        }
        self.dedup.retain(|_, record| record.expires > now);
        self.dedup_sweep_at = (self.dedup.len() * 2).max(DEDUP_SWEEP_MIN);
    }
}

const DEDUP_SWEEP_MIN: usize = 4096;

/// In-process store: the embedded default for `ward demo` and the reference for the suite.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    keys: KeySchema,
    clock: SharedClock,
    updates: broadcast::Sender<Update>,
}

impl MemoryStore {
    pub fn new(partitions: u16) -> Self {
        Self::with_clock(partitions, Arc::new(SystemClock))
    }

    pub fn with_clock(partitions: u16, clock: SharedClock) -> Self {
        let keys = KeySchema::ward("ward", partitions);
        let state = State {
            partitions: (0..keys.partitions())
                .map(|_| Partition::default())
                .collect(),
            ..State::default()
        };
        let (updates, _) = broadcast::channel(1024);
        Self {
            state: Arc::new(Mutex::new(state)),
            keys,
            clock,
            updates,
        }
    }

    /// Alerts seen at or after `since_ms`, newest first, at most `limit` per partition.
    fn seen_since(&self, state: &State, since_ms: i64, limit: usize) -> Vec<SeenAlert> {
        let mut by_partition: BTreeMap<u16, Vec<&SeenAlert>> = BTreeMap::new();
        for alert in state.seen.values().filter(|a| a.last_seen_ms >= since_ms) {
            by_partition
                .entry(self.keys.alert_partition(&alert.fingerprint))
                .or_default()
                .push(alert);
        }
        let mut out: Vec<SeenAlert> = by_partition
            .into_values()
            .flat_map(|mut alerts| {
                super::redis::newest_first(&mut alerts);
                alerts.into_iter().take(limit).cloned()
            })
            .collect();
        super::redis::newest_first(&mut out);
        out
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied move: every operation
        // mutates only after its checks, so the data is still consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn partition_of(&self, envelope: &Envelope) -> u16 {
        partition_for(
            &envelope.tenant,
            &envelope.idempotency_key,
            self.keys.partitions(),
        )
    }

    /// Put raw text in a queue as if written by hand (tests of corrupt input).
    #[doc(hidden)]
    pub fn inject_raw(&self, partition: u16, queue: &QueueName, id: &str, raw: &str) {
        let mut state = self.lock();
        let part = &mut state.partitions[usize::from(partition)];
        part.bodies
            .insert(id.to_owned(), Stored::new(Body::Raw(raw.into())));
        part.queue(queue).waiting.push_back(id.to_owned());
    }

    fn announce(&self, update: Update) {
        // No subscriber is fine: nobody is listening yet.
        let _ = self.updates.send(update);
    }

    fn each_partition(&self, scope: &DlqScope) -> Vec<u16> {
        match scope {
            DlqScope::Ids(_) => (0..self.keys.partitions()).collect(),
            DlqScope::Filter { cursor, .. } => (cursor.partition..self.keys.partitions()).collect(),
        }
    }
}

/// The ids a filtered scan selects in one partition, from the cursor in its direction: at most
/// `max_hits` hits and `budget` examined. Returns (hits, examined, last key examined, reached
/// the end).
fn scan_filtered(
    set: &BTreeSet<String>,
    filter: &DlqFilter,
    from: &DlqCursor,
    (max_hits, budget): (usize, usize),
    matches: impl Fn(&str) -> bool,
) -> (Vec<String>, usize, String, bool) {
    use std::ops::Bound::{Excluded, Included};
    let (min, max) = filter.key_range();
    let after = from.after.as_str();
    let range: Box<dyn Iterator<Item = &String>> = if from.newest_first {
        let upper = if after.is_empty() || after > max.as_str() {
            max
        } else {
            after.to_owned()
        };
        if min > upper {
            return (Vec::new(), 0, after.to_owned(), true);
        }
        Box::new(set.range((Included(min), Excluded(upper))).rev())
    } else {
        let (lower, start) = if after.is_empty() || after < min.as_str() {
            (Included(min.clone()), min)
        } else {
            (Excluded(after.to_owned()), after.to_owned())
        };
        if start >= max {
            return (Vec::new(), 0, after.to_owned(), true); // an empty (or inverted) range
        }
        Box::new(set.range((lower, Excluded(max))))
    };
    let mut hits = Vec::new();
    let mut examined = 0;
    let mut last = after.to_owned();
    for key in range {
        if hits.len() >= max_hits || examined >= budget {
            return (hits, examined, last, false);
        }
        examined += 1;
        last.clone_from(key);
        let id = key_id(key);
        if matches(id) {
            hits.push(id.to_owned());
        }
    }
    (hits, examined, last, true)
}

fn key_id(order_key: &str) -> &str {
    order_key.split_once(':').map_or(order_key, |(_, id)| id)
}

#[async_trait]
impl Store for MemoryStore {
    fn backend_name(&self) -> &'static str {
        "memory"
    }

    fn keys(&self) -> &KeySchema {
        &self.keys
    }

    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    async fn enqueue(&self, queue: &QueueName, envelopes: &[Envelope]) -> StoreResult<usize> {
        check_batch(envelopes.len())?;
        let bodies: Vec<_> = envelopes
            .iter()
            .map(|e| {
                let body = Body::Envelope(Arc::new(e.clone()));
                (self.partition_of(e), e.id.0.clone(), body)
            })
            .collect();
        let mut state = self.lock();
        let mut added = 0;
        for (partition, id, body) in bodies {
            added += usize::from(state.partitions[usize::from(partition)].add(queue, id, body));
        }
        Ok(added)
    }

    async fn ingest(
        &self,
        queue: &QueueName,
        limits: &IngestLimits<'_>,
        envelopes: &[Envelope],
    ) -> StoreResult<IngestOutcome> {
        check_ingest(envelopes)?;
        let partitions = self.keys.partitions();
        let p = ingest_partition(envelopes, partitions);
        let share = partition_share(&limits.rate_limit, partitions);
        let cap = cap_share(limits.queue_cap, partitions);
        let tenants: Vec<(String, u32)> = tenant_quantities(envelopes)
            .into_iter()
            .map(|(tenant, quantity)| {
                let name = format!("{}:{tenant}", limits.limiter);
                (self.keys.rate_limit_in(p, &name), quantity)
            })
            .collect();
        let bodies: Vec<_> = envelopes
            .iter()
            .map(|e| (e.id.0.clone(), Body::Envelope(Arc::new(e.clone()))))
            .collect();
        let now = self.now_ms();
        let now_us = now.saturating_mul(1000);
        let mut state = self.lock();
        // Every bucket first (as the script does): a refusal charges none.
        let mut tats = Vec::with_capacity(tenants.len());
        for (index, (key, quantity)) in tenants.iter().enumerate() {
            let stored = state
                .limiters
                .get(key)
                .filter(|(_, expires)| *expires > now)
                .map(|(tat, _)| *tat);
            let verdict = gcra(&share, stored, now_us, *quantity);
            if !verdict.allowed {
                let tenant = tenant_quantities(envelopes)
                    .get(index)
                    .map_or_else(String::new, |(t, _)| (*t).to_owned());
                return Ok(IngestOutcome::RateLimited {
                    tenant,
                    limit: share,
                    verdict,
                });
            }
            tats.push(verdict.tat_us);
        }
        let part = &mut state.partitions[usize::from(p)];
        let depth = part.queue(queue).waiting.len() as u64;
        if depth + envelopes.len() as u64 > cap {
            return Ok(IngestOutcome::Full {
                partition: p,
                depth,
                cap,
            });
        }
        let mut added = 0;
        for (id, body) in bodies {
            added += usize::from(part.add(queue, id, body));
        }
        for ((key, _), tat) in tenants.into_iter().zip(tats) {
            // Kept a minute past its TAT, like the Redis key.
            let expires = now + (tat - now_us) / 1000 + 60_000;
            state.limiters.insert(key, (tat, expires));
        }
        Ok(IngestOutcome::Accepted {
            partition: p,
            added,
            ids: envelopes.iter().map(|e| e.id.clone()).collect(),
        })
    }

    async fn lease(
        &self,
        queue: &QueueName,
        worker: &WorkerId,
        max: usize,
        lease_for: Duration,
    ) -> StoreResult<Lease> {
        check_batch(max)?;
        let now = self.now_ms();
        let deadline = now.saturating_add(duration_ms(lease_for));
        let token = lease_token(worker);
        let mut taken = Vec::new();
        {
            let mut state = self.lock();
            let count = state.partitions.len();
            let start = state.lease_start % count;
            state.lease_start = state.lease_start.wrapping_add(1);
            for offset in 0..count {
                let partition = (start + offset) % count;
                let part = &mut state.partitions[partition];
                while taken.len() < max {
                    let Some(id) = part.queue(queue).waiting.pop_front() else {
                        break;
                    };
                    part.release(queue, &id);
                    let q = part.queue(queue);
                    q.leases.insert((deadline, id.clone()));
                    q.lease_of.insert(id.clone(), (deadline, token.clone()));
                    let (body, attempts, replays) = match part.bodies.get(&id) {
                        Some(stored) => (stored.body.clone(), stored.attempts, stored.replays),
                        None => (Body::Raw(Arc::from("")), 0, 0),
                    };
                    taken.push((partition as u16, id, body, attempts, replays));
                }
            }
        }
        // Copying after the lock is released lets the other workers' calls proceed meanwhile.
        let mut corrupt = Vec::new();
        let mut lease = Lease {
            deadline_ms: deadline,
            ..Lease::default()
        };
        for (partition, id, body, attempts, replays) in taken {
            let receipt = Receipt {
                partition,
                id: EnvelopeId(id),
                token: token.clone(),
            };
            match body.decode(attempts, replays) {
                Ok(envelope) => lease.items.push(LeasedItem { receipt, envelope }),
                Err(error) => corrupt.push((receipt, error)),
            }
        }
        lease.dead_lettered_corrupt = settle_corrupt(self, queue, corrupt).await;
        Ok(lease)
    }

    async fn ack(&self, queue: &QueueName, receipts: &[Receipt]) -> StoreResult<ReceiptOutcome> {
        self.settle(
            queue,
            receipts.iter(),
            |r| r,
            |part, r| part.forget(&r.id.0),
        )
    }

    async fn forward(
        &self,
        from: &QueueName,
        to: &QueueName,
        requests: &[ForwardRequest],
    ) -> StoreResult<ForwardOutcome> {
        check_forward(requests, self.keys.partitions())?;
        let bodies: Vec<_> = requests
            .iter()
            .flat_map(|r| {
                r.envelopes.iter().map(|e| {
                    let body = Body::Envelope(Arc::new(e.clone()));
                    (r.receipt.partition, e.id.0.clone(), body)
                })
            })
            .collect();
        let mut state = self.lock();
        let mut outcome = ForwardOutcome::default();
        for (partition, id, body) in bodies {
            let part = &mut state.partitions[usize::from(partition)];
            outcome.enqueued += usize::from(part.add(to, id, body));
        }
        outcome.acked = fence(
            &mut state,
            from,
            requests.iter(),
            |r| &r.receipt,
            |part, r| part.forget(&r.receipt.id.0),
        );
        Ok(outcome)
    }

    async fn extend(
        &self,
        queue: &QueueName,
        receipts: &[Receipt],
        lease_for: Duration,
    ) -> StoreResult<ReceiptOutcome> {
        let deadline = self.now_ms().saturating_add(duration_ms(lease_for));
        self.settle(
            queue,
            receipts.iter(),
            |r| r,
            |part, r| {
                let q = part.queue(queue);
                q.leases.insert((deadline, r.id.0.clone()));
                q.lease_of
                    .insert(r.id.0.clone(), (deadline, r.token.clone()));
            },
        )
    }

    async fn schedule_retry(
        &self,
        queue: &QueueName,
        retries: &[RetryRequest],
    ) -> StoreResult<ReceiptOutcome> {
        check_batch(retries.len())?;
        let bodies: Vec<_> = retries
            .iter()
            .map(|r| (r, Body::Envelope(Arc::new(r.envelope.clone()))))
            .collect();
        self.settle(
            queue,
            bodies.iter(),
            |(r, _)| &r.receipt,
            |part, (r, body)| {
                let id = &r.receipt.id.0;
                let stored = part
                    .bodies
                    .entry(id.clone())
                    .or_insert_with(|| Stored::new(body.clone()));
                stored.body = body.clone();
                stored.attempts += 1;
                part.queue(queue)
                    .scheduled
                    .insert((r.due_at_ms, id.clone()));
            },
        )
    }

    async fn defer(
        &self,
        queue: &QueueName,
        receipts: &[Receipt],
        due_at_ms: i64,
    ) -> StoreResult<ReceiptOutcome> {
        self.settle(
            queue,
            receipts.iter(),
            |r| r,
            |part, r| {
                part.queue(queue)
                    .scheduled
                    .insert((due_at_ms, r.id.0.clone()));
            },
        )
    }

    async fn release(
        &self,
        queue: &QueueName,
        receipts: &[Receipt],
    ) -> StoreResult<ReceiptOutcome> {
        // Pushed to the front last-first, so the batch keeps its order.
        let mut outcome = self.settle(
            queue,
            receipts.iter().rev(),
            |r| r,
            |part, r| {
                part.queue(queue).waiting.push_front(r.id.0.clone());
            },
        )?;
        outcome.stale.reverse();
        Ok(outcome)
    }

    async fn promote_due(&self, queue: &QueueName, max: usize) -> StoreResult<usize> {
        check_batch(max)?;
        let now = self.now_ms();
        let mut state = self.lock();
        let mut moved = 0;
        for part in &mut state.partitions {
            let q = part.queue(queue);
            while moved < max {
                match q.scheduled.first() {
                    Some((due, _)) if *due <= now => {}
                    _ => break,
                }
                if let Some((_, id)) = q.scheduled.pop_first() {
                    q.waiting.push_back(id);
                    moved += 1;
                }
            }
        }
        Ok(moved)
    }

    async fn dead_letter(
        &self,
        queue: &QueueName,
        requests: &[DeadLetterRequest],
    ) -> StoreResult<ReceiptOutcome> {
        let now = self.now_ms();
        self.settle(
            queue,
            requests.iter(),
            |r| &r.receipt,
            |part, r| {
                let meta = dlq_meta_for(queue, r, now);
                part.queue(queue).dlq.insert(meta.key.clone());
                part.meta.insert(r.receipt.id.0.clone(), meta);
            },
        )
    }

    async fn recover_expired(&self, queue: &QueueName, max: usize) -> StoreResult<usize> {
        check_batch(max)?;
        let now = self.now_ms();
        let mut state = self.lock();
        let mut moved = 0;
        for part in &mut state.partitions {
            let q = part.queue(queue);
            let mut expired = Vec::new();
            while moved + expired.len() < max {
                match q.leases.first() {
                    Some((deadline, _)) if *deadline <= now => {}
                    _ => break,
                }
                if let Some((_, id)) = q.leases.pop_first() {
                    q.lease_of.remove(&id);
                    expired.push(id);
                }
            }
            // To the front in reverse, so the earliest deadline is leased first again.
            for id in expired.iter().rev() {
                q.waiting.push_front(id.clone());
            }
            moved += expired.len();
            for id in expired {
                if let Some(stored) = part.bodies.get_mut(&id) {
                    stored.attempts += 1;
                }
            }
        }
        Ok(moved)
    }

    async fn failed_count(
        &self,
        queue: &QueueName,
        set: FailedSet,
        filter: &DlqFilter,
    ) -> StoreResult<u64> {
        let mut state = self.lock();
        let mut total = 0u64;
        for part in &mut state.partitions {
            total += if filter.has_field_filters() {
                let from = DlqCursor::start();
                let (hits, ..) = part.scan(queue, set, filter, &from, (usize::MAX, usize::MAX));
                hits.len() as u64
            } else {
                // Like ZLEXCOUNT: the entries in the time range.
                let (min, max) = filter.key_range();
                if min >= max {
                    0
                } else {
                    part.set(queue, set).range(min..max).count() as u64
                }
            };
        }
        Ok(total)
    }

    async fn failed_page(
        &self,
        queue: &QueueName,
        set: FailedSet,
        filter: &DlqFilter,
        cursor: &DlqCursor,
        limit: usize,
    ) -> StoreResult<DlqPage> {
        check_step(limit)?;
        let partitions = self.keys.partitions();
        page_across_partitions(partitions, cursor, limit, |from, want| {
            let mut state = self.lock();
            let partition = from.partition;
            let part = &mut state.partitions[usize::from(partition)];
            let budget = filter.step_budget(SCAN_BUDGET);
            let (hits, _, last, done) = part.scan(queue, set, filter, &from, (want, budget));
            let entries = hits
                .iter()
                .filter_map(|id| part.entry(partition, id))
                .collect();
            std::future::ready(Ok((entries, done, last)))
        })
        .await
    }

    async fn failed_entries(
        &self,
        queue: &QueueName,
        set: FailedSet,
        ids: &[EnvelopeId],
    ) -> StoreResult<Vec<DlqEntry>> {
        check_batch(ids.len())?;
        let mut state = self.lock();
        let mut found = Vec::new();
        for id in ids {
            for (partition, part) in state.partitions.iter_mut().enumerate() {
                let Some(key) = part.meta.get(&id.0).map(|m| m.key.clone()) else {
                    continue;
                };
                let q = part.queue(queue);
                let in_set = match set {
                    FailedSet::Dlq => q.dlq.contains(&key),
                    FailedSet::Dead => q.dead.contains(&key),
                };
                if in_set
                    && !found.iter().any(|e: &DlqEntry| e.meta.id == *id)
                    && let Some(entry) = part.entry(partition as u16, &id.0)
                {
                    found.push(entry);
                }
            }
        }
        Ok(found)
    }

    async fn failed_groups(
        &self,
        queue: &QueueName,
        set: FailedSet,
        filter: &DlqFilter,
        bucket_ms: i64,
        cursor: &DlqCursor,
    ) -> StoreResult<GroupStep> {
        check_bucket(bucket_ms)?;
        let mut state = self.lock();
        let partitions = state.partitions.len() as u16;
        let Some(part) = state.partitions.get_mut(usize::from(cursor.partition)) else {
            return Ok(GroupStep::default());
        };
        let budget = filter.step_budget(crate::store::GROUP_SCAN_BUDGET);
        let (hits, examined, last, done) = part.scan(queue, set, filter, cursor, (budget, budget));
        let mut counts: std::collections::BTreeMap<(String, i64), u64> =
            std::collections::BTreeMap::new();
        for id in &hits {
            if let Some(meta) = part.meta.get(id) {
                let bucket = meta.last_failure_ms.max(0);
                let bucket = bucket - bucket % bucket_ms;
                *counts
                    .entry((meta.error_class.clone(), bucket))
                    .or_default() += 1;
            }
        }
        Ok(GroupStep {
            groups: counts
                .into_iter()
                .map(|((error_class, bucket_ms), count)| DlqGroup {
                    error_class,
                    bucket_ms,
                    count,
                })
                .collect(),
            examined: examined as u64,
            next: next_after_step(cursor, done, last, partitions),
        })
    }

    async fn replay(
        &self,
        queue: &QueueName,
        from: FailedSet,
        scope: &DlqScope,
        options: ReplayOptions,
    ) -> StoreResult<BatchResult> {
        check_step(options.max_items)?;
        if is_empty_scope(scope) {
            return Ok(BatchResult::default());
        }
        self.apply_batch(queue, from, scope, options.max_items, |part, id| {
            let Some(key) = part.meta.get(id).map(|m| m.key.clone()) else {
                return Moved::Skipped;
            };
            let q = part.queue(queue);
            let in_set = match from {
                FailedSet::Dlq => q.dlq.contains(&key),
                FailedSet::Dead => q.dead.contains(&key),
            };
            if !in_set {
                return Moved::Skipped;
            }
            // A missing body keeps its count too (an empty one that leases as corrupt).
            let stored = part
                .bodies
                .entry(id.to_owned())
                .or_insert_with(|| Stored::new(Body::Raw(Arc::from(""))));
            stored.replays += 1;
            let poisoned = from == FailedSet::Dlq && stored.replays > options.max_replays;
            if !poisoned && options.reset_attempts {
                stored.attempts = 0;
            }
            let q = part.queue(queue);
            match from {
                FailedSet::Dlq => q.dlq.remove(&key),
                FailedSet::Dead => q.dead.remove(&key),
            };
            if poisoned {
                q.dead.insert(key);
                return Moved::Poisoned;
            }
            q.waiting.push_back(id.to_owned());
            part.meta.remove(id);
            Moved::Applied
        })
    }

    async fn purge(
        &self,
        queue: &QueueName,
        set: FailedSet,
        scope: &DlqScope,
        max_items: usize,
    ) -> StoreResult<BatchResult> {
        check_step(max_items)?;
        if is_empty_scope(scope) {
            return Ok(BatchResult::default());
        }
        self.apply_batch(queue, set, scope, max_items, |part, id| {
            if part.take(queue, set, id).is_none() {
                return Moved::Skipped;
            }
            part.forget(id);
            Moved::Applied
        })
    }

    async fn bury(
        &self,
        queue: &QueueName,
        scope: &DlqScope,
        max_items: usize,
    ) -> StoreResult<BatchResult> {
        check_step(max_items)?;
        if is_empty_scope(scope) {
            return Ok(BatchResult::default());
        }
        self.apply_batch(queue, FailedSet::Dlq, scope, max_items, |part, id| {
            let Some(key) = part.take(queue, FailedSet::Dlq, id) else {
                return Moved::Skipped;
            };
            part.queue(queue).dead.insert(key);
            Moved::Applied
        })
    }

    async fn set_flag(&self, flag: &Flag, state: Option<&FlagState>) -> StoreResult<()> {
        let name = flag.name();
        {
            let mut guard = self.lock();
            match state {
                Some(value) => guard.flags.insert(name.clone(), value.clone()),
                None => guard.flags.remove(&name),
            };
        }
        self.announce(Update::Flag(name));
        Ok(())
    }

    async fn clear_flag_if(&self, flag: &Flag, expected: &FlagState) -> StoreResult<bool> {
        let name = flag.name();
        let cleared = {
            let mut guard = self.lock();
            let same = guard.flags.get(&name) == Some(expected);
            if same {
                guard.flags.remove(&name);
            }
            same
        };
        if cleared {
            self.announce(Update::Flag(name));
        }
        Ok(cleared)
    }

    async fn flags(&self) -> StoreResult<Vec<(String, FlagState)>> {
        let mut flags: Vec<_> = self
            .lock()
            .flags
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        flags.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(flags)
    }

    async fn config_set(&self, key: &str, value: Option<&str>) -> StoreResult<()> {
        {
            let mut guard = self.lock();
            match value {
                Some(v) => guard.config.insert(key.to_owned(), v.to_owned()),
                None => guard.config.remove(key),
            };
        }
        self.announce(Update::Config(key.to_owned()));
        Ok(())
    }

    async fn test_result_put(&self, id: &str, result: &TestDelivery) -> StoreResult<()> {
        let now = self.now_ms();
        let mut state = self.lock();
        state.test_results.retain(|_, (_, expires)| *expires > now);
        state.test_results.insert(
            id.to_owned(),
            (result.clone(), now + super::TEST_RESULT_TTL_MS),
        );
        Ok(())
    }

    async fn scheduled_entries(
        &self,
        queue: &QueueName,
        max_per_partition: usize,
    ) -> StoreResult<Vec<Envelope>> {
        let state = self.lock();
        let mut out = Vec::new();
        for part in &state.partitions {
            let Some((_, q)) = part.queues.iter().find(|(name, _)| name == queue) else {
                continue;
            };
            out.extend(
                q.scheduled
                    .iter()
                    .take(max_per_partition)
                    .filter_map(|(_, id)| part.bodies.get(id))
                    .filter_map(|s| s.body.decode(s.attempts, s.replays).ok()),
            );
        }
        Ok(out)
    }

    async fn group_load(&self, id: &str) -> StoreResult<Option<(u64, GroupState)>> {
        Ok(self
            .lock()
            .groups
            .get(id)
            .map(|(version, state, _)| (*version, state.clone())))
    }

    async fn group_store(&self, id: &str, expected: u64, state: &GroupState) -> StoreResult<bool> {
        let mut guard = self.lock();
        let current = guard.groups.get(id).map_or(0, |(v, _, _)| *v);
        if current != expected {
            return Ok(false);
        }
        guard.groups.insert(
            id.to_owned(),
            (expected + 1, state.clone(), state.next_flush_ms),
        );
        Ok(true)
    }

    async fn group_delete(&self, id: &str, expected: u64) -> StoreResult<bool> {
        let mut guard = self.lock();
        if guard.groups.get(id).map(|(v, _, _)| *v) != Some(expected) {
            return Ok(false);
        }
        guard.groups.remove(id);
        Ok(true)
    }

    async fn groups_due(&self, max: usize, hold: Duration) -> StoreResult<Vec<String>> {
        let now = self.now_ms();
        let mut guard = self.lock();
        let mut due: Vec<(i64, String)> = guard
            .groups
            .iter()
            .filter(|(_, (_, _, at))| *at <= now)
            .map(|(id, (_, _, at))| (*at, id.clone()))
            .collect();
        due.sort();
        due.truncate(max);
        let until = now + duration_ms(hold);
        for (_, id) in &due {
            if let Some(entry) = guard.groups.get_mut(id) {
                entry.2 = until;
            }
        }
        Ok(due.into_iter().map(|(_, id)| id).collect())
    }

    async fn groups_summary(&self) -> StoreResult<(u64, Option<i64>)> {
        let guard = self.lock();
        Ok((
            guard.groups.len() as u64,
            guard.groups.values().map(|(_, _, at)| *at).min(),
        ))
    }

    async fn notify_log_get(&self, id: &str) -> StoreResult<Option<NotifyLog>> {
        let now = self.now_ms();
        Ok(self
            .lock()
            .notify_logs
            .get(id)
            .filter(|(_, expires)| *expires > now)
            .map(|(log, _)| log.clone()))
    }

    async fn notify_log_put(&self, id: &str, log: &NotifyLog, ttl_ms: u64) -> StoreResult<()> {
        let now = self.now_ms();
        let mut guard = self.lock();
        guard.notify_logs.retain(|_, (_, expires)| *expires > now);
        let expires = now.saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
        guard
            .notify_logs
            .insert(id.to_owned(), (log.clone(), expires));
        Ok(())
    }

    async fn silence_put(&self, silence: &Silence) -> StoreResult<()> {
        self.lock()
            .silences
            .insert(silence.id.clone(), silence.clone());
        self.announce(Update::Silence(silence.id.clone()));
        Ok(())
    }

    async fn silences(&self) -> StoreResult<Vec<Silence>> {
        Ok(self.lock().silences.values().cloned().collect())
    }

    async fn silence_get(&self, id: &str) -> StoreResult<Option<Silence>> {
        Ok(self.lock().silences.get(id).cloned())
    }

    async fn silences_prune(&self, ended_before_ms: i64) -> StoreResult<usize> {
        let mut state = self.lock();
        let before = state.silences.len();
        state
            .silences
            .retain(|_, s| s.ends_at_ms >= ended_before_ms);
        Ok(before - state.silences.len())
    }

    async fn alerts_note(&self, alerts: &[SeenAlert]) -> StoreResult<()> {
        let mut state = self.lock();
        for alert in alerts {
            state.seen.insert(alert.fingerprint.clone(), alert.clone());
        }
        Ok(())
    }

    async fn alerts_seen(&self, since_ms: i64, limit: usize) -> StoreResult<Vec<SeenAlert>> {
        Ok(self.seen_since(&self.lock(), since_ms, limit))
    }

    async fn alerts_prune(&self, seen_before_ms: i64) -> StoreResult<usize> {
        let mut state = self.lock();
        let before = state.seen.len();
        state.seen.retain(|_, a| a.last_seen_ms >= seen_before_ms);
        Ok(before - state.seen.len())
    }

    async fn test_result_get(&self, id: &str) -> StoreResult<Option<TestDelivery>> {
        let now = self.now_ms();
        Ok(self
            .lock()
            .test_results
            .get(id)
            .filter(|(_, expires)| *expires > now)
            .map(|(result, _)| result.clone()))
    }

    async fn config_get(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(self.lock().config.get(key).cloned())
    }

    async fn config_all(&self) -> StoreResult<Vec<(String, String)>> {
        let mut all: Vec<_> = self
            .lock()
            .config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort();
        Ok(all)
    }

    async fn subscribe(&self) -> StoreResult<broadcast::Receiver<Update>> {
        Ok(self.updates.subscribe())
    }

    async fn audit_append(&self, record: &AuditRecord) -> StoreResult<String> {
        let mut state = self.lock();
        state.audit_seq += 1;
        let id = format!("{}-{}", record.at_ms.max(0), state.audit_seq);
        state.audit.push_back(AuditEntry {
            id: id.clone(),
            record: record.clone(),
        });
        while state.audit.len() > AUDIT_CAPACITY {
            state.audit.pop_front();
        }
        Ok(id)
    }

    async fn audit_recent(&self, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        Ok(self
            .lock()
            .audit
            .iter()
            .rev()
            .take(limit)
            .cloned()
            .collect())
    }

    async fn stats(&self, queues: &[QueueName]) -> StoreResult<StoreStats> {
        let now = self.now_ms();
        Ok(self.lock().stats(queues, now))
    }

    async fn control_read(
        &self,
        queues: &[QueueName],
        audit_limit: usize,
    ) -> StoreResult<ControlRead> {
        let now = self.now_ms();
        let state = self.lock();
        let mut config: Vec<_> = state
            .config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        config.sort();
        Ok(ControlRead {
            stats: state.stats(queues, now),
            breakers: state
                .breakers
                .iter()
                .map(|(name, (_, breaker))| (name.clone(), breaker.clone()))
                .collect(),
            config,
            workers: state
                .workers
                .iter()
                .map(|(id, beat)| (id.clone(), *beat))
                .collect(),
            audit: state
                .audit
                .iter()
                .rev()
                .take(audit_limit)
                .cloned()
                .collect(),
            silences: state.silences.values().cloned().collect(),
            alerts: self.seen_since(
                &state,
                now - crate::model::SEEN_RETENTION_MS,
                super::CONTROL_ALERTS,
            ),
        })
    }

    async fn beat(&self, worker: &str, beat: Option<&WorkerBeat>) -> StoreResult<()> {
        let mut state = self.lock();
        match beat {
            Some(beat) => state.workers.insert(worker.to_owned(), *beat),
            None => state.workers.remove(worker),
        };
        Ok(())
    }

    async fn dedup_claim(
        &self,
        owner: &str,
        keys: &[String],
        hold: Duration,
    ) -> StoreResult<Vec<DedupClaim>> {
        let now = self.now_ms();
        let expires = now.saturating_add(duration_ms(hold));
        let mut state = self.lock();
        state.prune_dedup(now);
        Ok(keys
            .iter()
            .map(|key| match state.dedup.get(key.as_str()) {
                Some(r) if r.expires > now && r.done => DedupClaim::AlreadyDone,
                Some(r) if r.expires > now => DedupClaim::InFlight,
                _ => {
                    let record = DedupRecord {
                        done: false,
                        expires,
                        owner: owner.to_owned(),
                    };
                    state.dedup.insert(key.clone(), record);
                    DedupClaim::Claimed
                }
            })
            .collect())
    }

    async fn dedup_finish(
        &self,
        owner: &str,
        outcomes: &[(String, DedupFinish)],
    ) -> StoreResult<()> {
        let now = self.now_ms();
        let mut state = self.lock();
        for (key, outcome) in outcomes {
            let live_claim = state
                .dedup
                .get(key.as_str())
                .is_some_and(|r| !r.done && r.expires > now && r.owner == owner);
            match outcome {
                DedupFinish::Done(ttl) => {
                    let record = DedupRecord {
                        done: true,
                        expires: now.saturating_add(duration_ms(*ttl)),
                        owner: String::new(),
                    };
                    state.dedup.insert(key.clone(), record);
                }
                DedupFinish::Release if live_claim => {
                    state.dedup.remove(key.as_str());
                }
                DedupFinish::Hold(hold) if live_claim => {
                    if let Some(record) = state.dedup.get_mut(key.as_str()) {
                        record.expires = now.saturating_add(duration_ms(*hold));
                    }
                }
                DedupFinish::Release | DedupFinish::Hold(_) => {}
            }
        }
        Ok(())
    }

    async fn rate_limit(
        &self,
        name: &str,
        limit: &RateLimit,
        quantity: u32,
    ) -> StoreResult<Verdict> {
        let now = self.now_ms();
        let now_us = now.saturating_mul(1000);
        let mut state = self.lock();
        let stored = state
            .limiters
            .get(name)
            .filter(|(_, expires)| *expires > now)
            .map(|(tat, _)| *tat);
        let verdict = gcra(limit, stored, now_us, quantity);
        if verdict.allowed {
            // Kept a minute past its TAT, like the Redis key: an old TAT decides nothing.
            let expires = now + (verdict.tat_us - now_us) / 1000 + 60_000;
            state
                .limiters
                .insert(name.to_owned(), (verdict.tat_us, expires));
        }
        Ok(verdict)
    }

    async fn breaker_load(&self, name: &str) -> StoreResult<Option<(u64, Breaker)>> {
        Ok(self.lock().breakers.get(name).cloned())
    }

    async fn breaker_store(
        &self,
        name: &str,
        expected: u64,
        breaker: &Breaker,
    ) -> StoreResult<bool> {
        let mut state = self.lock();
        let current = state.breakers.get(name).map_or(0, |(version, _)| *version);
        if current != expected {
            return Ok(false);
        }
        state
            .breakers
            .insert(name.to_owned(), (expected + 1, breaker.clone()));
        Ok(true)
    }

    async fn breakers(&self) -> StoreResult<Vec<(String, Breaker)>> {
        Ok(self
            .lock()
            .breakers
            .iter()
            .map(|(name, (_, breaker))| (name.clone(), breaker.clone()))
            .collect())
    }
}

#[derive(Clone, Copy)]
enum Moved {
    Applied,
    Poisoned,
    Skipped,
}

impl MemoryStore {
    /// `fence` under the lock, after checking the batch and its receipts.
    fn settle<'a, T: 'a>(
        &self,
        queue: &QueueName,
        items: impl ExactSizeIterator<Item = &'a T> + Clone,
        receipt: impl Fn(&T) -> &Receipt,
        apply: impl FnMut(&mut Partition, &T),
    ) -> StoreResult<ReceiptOutcome> {
        check_batch(items.len())?;
        check_receipts(items.clone().map(&receipt), self.keys.partitions())?;
        Ok(fence(&mut self.lock(), queue, items, receipt, apply))
    }

    /// One bounded DLQ batch: by ids (every partition, each id where it lives) or by filter from
    /// the cursor (one partition's scan per call, like one Redis script).
    fn apply_batch(
        &self,
        queue: &QueueName,
        set: FailedSet,
        scope: &DlqScope,
        max_items: usize,
        mut apply: impl FnMut(&mut Partition, &str) -> Moved,
    ) -> StoreResult<BatchResult> {
        let mut state = self.lock();
        let partitions = state.partitions.len() as u16;
        let mut result = BatchResult::default();
        match scope {
            DlqScope::Ids(ids) => {
                check_batch(ids.len())?;
                for partition in self.each_partition(scope) {
                    let part = &mut state.partitions[usize::from(partition)];
                    for id in ids {
                        if result.touched() >= max_items {
                            break;
                        }
                        tally(&mut result, apply(part, &id.0));
                    }
                }
                result.scanned = ids.len();
            }
            DlqScope::Filter { filter, cursor } => {
                if cursor.partition >= partitions {
                    return Ok(result);
                }
                let part = &mut state.partitions[usize::from(cursor.partition)];
                let budget = filter.step_budget(SCAN_BUDGET);
                let (hits, examined, last, done) =
                    part.scan(queue, set, filter, cursor, (max_items, budget));
                for id in &hits {
                    tally(&mut result, apply(part, id));
                }
                result.scanned = examined;
                result.next = next_after_step(cursor, done, last, partitions);
            }
        }
        debug_assert!(result.touched() <= MAX_BATCH);
        Ok(result)
    }
}

fn tally(result: &mut BatchResult, moved: Moved) {
    match moved {
        Moved::Applied => result.moved += 1,
        Moved::Poisoned => result.poisoned += 1,
        Moved::Skipped => {}
    }
}

/// The `Clock` the memory store reads, for callers that share it.
impl MemoryStore {
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }
}
