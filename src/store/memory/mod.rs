//! The embedded store: one lock around plain collections, with exactly the Redis backend's
//! semantics (the same order keys, the same fences, the same counters). Envelopes are kept
//! decoded; text written by hand (tests of corrupt entries) is kept as text and decoded, or
//! refused, exactly as Redis's copy would be.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// Per-item maps hashed with foldhash (seeded per process): SipHash was a tenth of the pipeline.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use tokio::sync::broadcast;

use super::{
    BatchResult, DlqCursor, DlqFilter, DlqScope, FailedSet, KeySchema, MAX_BATCH, Receipt,
    ReceiptOutcome, SCAN_BUDGET, Store, StoreResult, Update, check_batch, check_receipts,
    decode_envelope, encode_envelope, next_after_step, step_budget, text_matches,
};
use crate::engine::breaker::Breaker;
use crate::engine::clock::{Clock, SharedClock, SystemClock};
use crate::engine::grouping::{GroupState, NotifyLog};
use crate::engine::partition::partition_for;
use crate::model::{
    AuditEntry, DlqEntry, DlqMeta, Envelope, FlagState, QueueName, QueueStats, SCHEDULED_SAMPLE,
    ScheduledItem, ScheduledSummary, SeenAlert, Silence, StoreStats, TestDelivery, WorkerBeat,
    ulid_timestamp_ms,
};

mod alerts;
mod audit;
mod controls;
mod dlq;
mod guards;
mod queues;
mod stats;

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

    /// Store a new item leased to `token` until `deadline`; false if the id is held.
    fn add_held(
        &mut self,
        queue: &QueueName,
        id: String,
        body: Body,
        (deadline, token): (i64, &str),
    ) -> bool {
        if self.bodies.contains_key(&id) {
            return false;
        }
        self.bodies.insert(id.clone(), Stored::new(body));
        let q = self.queue(queue);
        q.leases.insert((deadline, id.clone()));
        q.lease_of.insert(id, (deadline, token.to_owned()));
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
    /// Idempotency records by key.
    dedup: HashMap<String, DedupRecord>,
    /// Numbers the dedup claim calls, as tickets name them.
    dedup_calls: u64,
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

/// One idempotency record: claim `call` of `owner`, sending until `hold_until` unless `done`,
/// and kept until its window ends (ms): a success arriving after the hold still counts.
#[derive(Debug)]
struct DedupRecord {
    done: bool,
    hold_until: i64,
    window_end: i64,
    owner: String,
    call: u64,
}

impl DedupRecord {
    fn kept_until(&self) -> i64 {
        self.window_end.max(self.hold_until)
    }
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
        self.dedup.retain(|_, record| record.kept_until() > now);
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
                let budget = step_budget(filter, SCAN_BUDGET);
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
