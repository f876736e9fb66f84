//! The store: every pipeline state change is one atomic call. Two backends, memory and Redis,
//! with exactly the same semantics, proven by one conformance suite (`tests/store/conformance.rs`).

pub mod keys;
mod lazy;
pub mod memory;
pub mod mutt;
pub mod redis;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::engine::breaker::Breaker;
use crate::engine::grouping::{GroupState, NotifyLog};
use crate::engine::ratelimit::{RateLimit, Verdict};
use crate::model::{
    AuditEntry, AuditRecord, DlqEntry, DlqMeta, Envelope, EnvelopeId, FailureInfo, Flag, FlagState,
    QueueName, SeenAlert, Silence, StoreStats, TestDelivery, WorkerBeat, WorkerId,
};

pub use crate::model::{
    DlqCursor, DlqFilter, DlqGroup, DlqScope, FailedSet, GROUP_BUCKET_MS, MAX_BATCH, merge_groups,
};
pub use keys::{KeySchema, MuttKeys};
pub use memory::MemoryStore;
pub use redis::{RedisStore, RedisStoreOptions};

/// Every capability trait, for code that calls a concrete store (`MemoryStore`, `RedisStore`)
/// rather than a `dyn Store`.
pub mod prelude {
    pub use super::{
        AlertStore, AuditStore, ControlStore, DlqStore, GuardStore, QueueStore, StatsStore, Store,
    };
}

/// How long a test alert's outcome is kept for whoever sent it.
pub const TEST_RESULT_TTL_MS: i64 = 3_600_000;

/// How many DLQ entries one filtered scan step may examine before returning a cursor: about
/// 0.7 ms of Redis time (5 µs an entry): a 4 ms stall of the machine still leaves it under the
/// 5 ms any one command may take. A text search examines fewer (`TEXT_SCAN_BUDGET`).
pub const SCAN_BUDGET: usize = 150;

/// How many DLQ entries one step may examine under a text search: it lowercases every entry's
/// body and decodes those holding the text, up to 16 µs an entry when every body holds it
/// (`cargo bench --bench store`), so a step stays under 1 ms.
pub const TEXT_SCAN_BUDGET: usize = 50;

/// How many DLQ entries one grouping step may examine (no text search): grouping reads the
/// metadata as a filtered page does and tallies it, 2.6 µs an entry measured against 2.2 for a
/// page step (`cargo bench --bench store`): about 0.65 ms a step.
pub const GROUP_SCAN_BUDGET: usize = 250;

/// The error class given to envelopes whose stored JSON does not decode.
pub const DECODE_ERROR_CLASS: &str = "decode";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed the call; `failure` says whether asking again can help.
    #[error("{backend} {op}: {detail}")]
    Backend {
        backend: &'static str,
        op: &'static str,
        failure: BackendFailure,
        detail: String,
    },
    #[error("{op}: no answer from the store within {timeout:?}")]
    Timeout { op: &'static str, timeout: Duration },
    #[error("batch of {got} is over the limit of {max} items per call")]
    BatchTooLarge { got: usize, max: usize },
    #[error("could not encode {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("unexpected reply from the store for {op}: {detail}")]
    Protocol { op: &'static str, detail: String },
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// Written on the primary, but its replicas did not confirm it in time: a failover now
    /// could lose it, so the caller is told to send it again.
    #[error(
        "{acked} of {wanted} replicas confirmed the write within {timeout:?}; it is on the \
         primary only"
    )]
    NotReplicated {
        acked: u32,
        wanted: u32,
        timeout: Duration,
    },
    /// Not connected: the last attempt (under a second ago) failed with this.
    #[error("not connected: {0}")]
    Unreachable(String),
    /// A key holds another type than the layout says: the profile or key names are wrong.
    #[error("{key} holds a {found}, expected a {expected}: check the key names of the profile")]
    WrongType {
        key: String,
        found: String,
        expected: &'static str,
    },
}

impl StoreError {
    /// The store could not be reached or did not answer in time (not a refused request).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Timeout { .. } | Self::Unreachable(_) => true,
            Self::Backend { failure, .. } => *failure == BackendFailure::Unavailable,
            _ => false,
        }
    }

    /// Asking again will not help: the settings are wrong (a refused profile or password, a
    /// key of the wrong type), not the network.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Invalid(_) | Self::WrongType { .. } => true,
            Self::Backend { failure, .. } => *failure == BackendFailure::Refused,
            _ => false,
        }
    }
}

/// What a backend's failure means for the caller, in no backend's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendFailure {
    /// Not reached, dropped or timed out: the same call may succeed later.
    Unavailable,
    /// Refused for its settings (credentials, permissions, a key of the wrong type): asking
    /// again will not help.
    Refused,
    /// Any other error the backend answered with.
    Failed,
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Proof of holding a lease on one item. Every state change of a leased item presents it; a
/// receipt whose lease has expired (and been recovered) is refused as stale.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Receipt {
    pub partition: u16,
    pub id: EnvelopeId,
    pub token: String,
}

/// An item handed to a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct LeasedItem {
    pub receipt: Receipt,
    pub envelope: Envelope,
}

/// The result of one lease call.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Lease {
    pub deadline_ms: i64,
    pub items: Vec<LeasedItem>,
    /// Items whose stored envelope did not decode: already moved to the DLQ (class `decode`).
    pub dead_lettered_corrupt: Vec<EnvelopeId>,
}

/// How a batch of receipt-based operations went.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReceiptOutcome {
    pub applied: usize,
    /// Receipts refused because the lease was no longer theirs.
    pub stale: Vec<EnvelopeId>,
}

/// A leased item that routing turned into envelopes for another queue (none when dropped).
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardRequest {
    pub receipt: Receipt,
    pub envelopes: Vec<Envelope>,
}

/// How a `forward` went.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ForwardOutcome {
    /// Envelopes added to the destination queue (ids the store already held are skipped).
    pub enqueued: usize,
    /// The acks of the forwarded items.
    pub acked: ReceiptOutcome,
    /// `forward_held` only: a receipt for each envelope it added, leased to the caller.
    pub held: Vec<Receipt>,
}

/// Whom `forward_held` leases the envelopes it adds to, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Hold<'a> {
    pub worker: &'a WorkerId,
    pub lease_for: Duration,
}

/// A leased item to try again later.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryRequest {
    pub receipt: Receipt,
    /// The envelope as it should be stored (e.g. `last_error`, `first_failure_ms` updated).
    pub envelope: Envelope,
    pub due_at_ms: i64,
}

/// A leased item to move to the DLQ.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetterRequest {
    pub receipt: Receipt,
    pub envelope: Envelope,
    pub failure: FailureInfo,
}

/// One bounded step of grouping a DLQ: counts over the entries it examined.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupStep {
    /// By error class, then bucket.
    pub groups: Vec<DlqGroup>,
    /// Entries examined (matching or not).
    pub examined: u64,
    /// Where to continue; `None` when the scan reached the end.
    pub next: Option<DlqCursor>,
}

/// The examine budget of one step of this filter: `base`, or `TEXT_SCAN_BUDGET` under a
/// text search.
pub(crate) fn step_budget(filter: &DlqFilter, base: usize) -> usize {
    if filter.search().is_some() {
        base.min(TEXT_SCAN_BUDGET)
    } else {
        base
    }
}

/// Whether a DLQ entry matches the search `needle` (ASCII lowercase, see `DlqFilter::search`):
/// one of its metadata's id, error class, error message, tenant or channel, or one of its
/// alert's label values, annotation values or severity, contains it, ASCII case-insensitively.
/// The alert is the payload's `alert` (a delivery job) or the payload itself (an ingest entry).
/// `failed.lua` applies exactly this test.
pub(crate) fn text_matches(
    needle: &str,
    meta: &DlqMeta,
    payload: Option<&serde_json::Value>,
) -> bool {
    let contains = |s: &str| s.to_ascii_lowercase().contains(needle);
    let in_meta = [
        meta.id.as_str(),
        &meta.error_class,
        &meta.error_message,
        &meta.tenant,
        &meta.channel,
    ]
    .into_iter()
    .any(contains);
    if in_meta {
        return true;
    }
    let Some(payload) = payload else {
        return false;
    };
    let alert = match payload.get("alert") {
        Some(alert @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => alert,
        _ => payload,
    };
    let string_values = |value: Option<&serde_json::Value>| -> Vec<String> {
        let strings = |v: &serde_json::Value| v.as_str().map(str::to_owned);
        match value {
            Some(serde_json::Value::Object(map)) => map.values().filter_map(strings).collect(),
            Some(serde_json::Value::Array(items)) => items.iter().filter_map(strings).collect(),
            _ => Vec::new(),
        }
    };
    string_values(alert.get("labels"))
        .iter()
        .chain(&string_values(alert.get("annotations")))
        .any(|v| contains(v))
        || alert
            .get("severity")
            .and_then(serde_json::Value::as_str)
            .is_some_and(contains)
}

/// One page of a DLQ.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DlqPage {
    pub entries: Vec<DlqEntry>,
    /// Where to continue; `None` when the scan reached the end.
    pub next: Option<DlqCursor>,
    /// Partition steps this page took: one round trip each on Redis.
    pub steps: u16,
}

/// Options of a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayOptions {
    /// Items moved (replayed or poisoned) per call, at most `MAX_BATCH`.
    pub max_items: usize,
    /// An entry replayed this many times goes to the dead list on its next replay.
    pub max_replays: u32,
    /// Reset the attempt counter of replayed entries (the confirm dialog says which).
    pub reset_attempts: bool,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        Self {
            max_items: MAX_BATCH,
            max_replays: 3,
            reset_attempts: true,
        }
    }
}

/// The result of one bounded DLQ batch (replay or purge).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchResult {
    /// Entries replayed to their queue (or purged).
    pub moved: usize,
    /// Entries the poison guard sent to the dead list instead.
    pub poisoned: usize,
    /// Entries examined.
    pub scanned: usize,
    /// Where to continue; `None` when the scope is exhausted.
    pub next: Option<DlqCursor>,
}

impl BatchResult {
    pub fn touched(&self) -> usize {
        self.moved + self.poisoned
    }
}

/// A change announced on the updates channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum Update {
    Config(String),
    Flag(String),
    /// A silence was created, changed or expired (its id).
    Silence(String),
}

/// What the control room reads on each refresh (see `Store::control_read`).
#[derive(Debug, Clone, PartialEq)]
pub struct ControlRead {
    pub stats: StoreStats,
    pub breakers: Vec<(String, Breaker)>,
    pub config: Vec<(String, String)>,
    pub workers: Vec<(String, WorkerBeat)>,
    /// Newest first.
    pub audit: Vec<AuditEntry>,
    /// Every silence kept (active, pending, expired within retention).
    pub silences: Vec<Silence>,
    /// Alerts seen in the last hour, newest first, at most `CONTROL_ALERTS` per partition.
    pub alerts: Vec<SeenAlert>,
}

/// The most envelopes one `Store::ingest` call takes: an ingest request's limit
/// (`ingest.max_alerts_per_request`). Its script only checks limits and stores bodies, about a
/// microsecond of Redis time an alert, in steps of `MAX_BATCH`.
pub const MAX_INGEST: usize = 20 * MAX_BATCH;

/// What an ingest request must satisfy before its alerts are stored (see `Store::ingest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestLimits<'a> {
    /// The limiters' name prefix: each tenant's bucket is `<limiter>:<tenant>` in the
    /// request's partition (`KeySchema::rate_limit_in`).
    pub limiter: &'a str,
    /// The per-tenant limit over all partitions; each partition's bucket applies its share
    /// (`partition_share`).
    pub rate_limit: RateLimit,
    /// The most alerts the queue may hold over all partitions; each partition compares its own
    /// depth with its share (`cap_share`).
    pub queue_cap: u64,
}

/// How an ingest call went. A refused call stores nothing and charges no limiter.
#[derive(Debug, Clone, PartialEq)]
pub enum IngestOutcome {
    /// Stored, durably enqueued in `partition`; `added` of them were new (a retried call skips
    /// ids already stored), `ids` every envelope's id in order.
    Accepted {
        partition: u16,
        added: usize,
        ids: Vec<EnvelopeId>,
    },
    /// `tenant`'s bucket in the partition refused: `limit` is that bucket's share of the
    /// configured limit and `verdict` its state, for the 429 headers.
    RateLimited {
        tenant: String,
        limit: RateLimit,
        verdict: Verdict,
    },
    /// The partition's queue holds `depth` alerts, and `depth` plus the request's would pass
    /// `cap`, the partition's share of the queue cap.
    Full {
        partition: u16,
        depth: u64,
        cap: u64,
    },
}

/// One partition's share of a rate limit over `partitions`: the emission interval × N (the
/// same count over N times the period) and ⌈burst / N⌉, at least 1. With one partition, the
/// limit itself.
pub fn partition_share(limit: &RateLimit, partitions: u16) -> RateLimit {
    let n = u32::from(partitions.max(1));
    RateLimit {
        count: limit.count,
        period_ms: limit.period_ms.saturating_mul(u64::from(n)),
        burst: limit.burst.div_ceil(n).max(1),
    }
}

/// One partition's share of the ingest queue cap: ⌈cap / N⌉, at least 1.
pub fn cap_share(cap: u64, partitions: u16) -> u64 {
    cap.div_ceil(u64::from(partitions.max(1))).max(1)
}

/// The partition one ingest request goes to: its first alert's, by tenant and idempotency key.
pub fn ingest_partition(envelopes: &[Envelope], partitions: u16) -> u16 {
    envelopes.first().map_or(0, |first| {
        crate::engine::partition::partition_for(&first.tenant, &first.idempotency_key, partitions)
    })
}

/// How many of `envelopes` each tenant posts, by tenant name (the order limits are checked in).
pub(crate) fn tenant_quantities(envelopes: &[Envelope]) -> Vec<(&str, u32)> {
    let mut counts: Vec<(&str, u32)> = Vec::with_capacity(1);
    for envelope in envelopes {
        match counts.binary_search_by(|(t, _)| (*t).cmp(envelope.tenant.as_str())) {
            Ok(i) => counts[i].1 = counts[i].1.saturating_add(1),
            Err(i) => counts.insert(i, (envelope.tenant.as_str(), 1)),
        }
    }
    counts
}

/// `ingest`'s bounds: at least one envelope, at most `MAX_INGEST`.
pub(crate) fn check_ingest(envelopes: &[Envelope]) -> StoreResult<()> {
    if envelopes.is_empty() {
        return Err(StoreError::Invalid("an ingest of no alerts".to_owned()));
    }
    if envelopes.len() > MAX_INGEST {
        return Err(StoreError::BatchTooLarge {
            got: envelopes.len(),
            max: MAX_INGEST,
        });
    }
    Ok(())
}

/// Seen alerts a control read takes per partition: the newest, enough for a screen.
pub const CONTROL_ALERTS: usize = 500;

/// The one interface to pipeline state, one capability trait per concern; every method is one
/// atomic step per partition.
pub trait Store:
    QueueStore
    + DlqStore
    + ControlStore
    + AlertStore
    + AuditStore
    + GuardStore
    + StatsStore
    + std::fmt::Debug
{
    /// `memory` or `redis`, for status lines.
    fn backend_name(&self) -> &'static str;
    fn keys(&self) -> &KeySchema;
    fn now_ms(&self) -> i64;
}

/// Reliable queues: enqueue, lease, settle (ack, retry, defer, release, dead-letter), and
/// the janitor's moves of due and expired items.
#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Add envelopes to the back of a queue, each in its partition; at most `MAX_BATCH`.
    /// An id the store already holds is skipped, so a retried enqueue never duplicates;
    /// returns how many were added.
    async fn enqueue(&self, queue: &QueueName, envelopes: &[Envelope]) -> StoreResult<usize>;

    /// An ingest request in one atomic step (one round trip on Redis): every envelope goes to
    /// one partition (`ingest_partition`); each tenant's bucket there (its share of
    /// `limits.rate_limit`) is charged its alert count, the partition's queue depth is compared
    /// with its share of `limits.queue_cap`, and only if all pass are the envelopes stored and
    /// enqueued (ids already held are skipped, as in `enqueue`). A refusal stores nothing and
    /// charges nothing. At most `MAX_INGEST` envelopes, at least one.
    async fn ingest(
        &self,
        queue: &QueueName,
        limits: &IngestLimits<'_>,
        envelopes: &[Envelope],
    ) -> StoreResult<IngestOutcome>;

    /// Take up to `max` items (≤ `MAX_BATCH`) from the front of the queue, across partitions,
    /// leasing each until now + `lease_for`.
    async fn lease(
        &self,
        queue: &QueueName,
        worker: &WorkerId,
        max: usize,
        lease_for: Duration,
    ) -> StoreResult<Lease>;

    /// Done: forget the items.
    async fn ack(&self, queue: &QueueName, receipts: &[Receipt]) -> StoreResult<ReceiptOutcome>;

    /// Routing's step: enqueue each request's envelopes on `to` in its receipt's partition (an
    /// alert's deliveries live where the alert does), then ack the receipt on `from`; one atomic
    /// step per partition. At most `MAX_BATCH` requests and `MAX_BATCH` envelopes. Ids the store
    /// already holds are skipped, as in `enqueue`. A stale receipt's envelopes are enqueued all
    /// the same: whoever holds that item now routes it to the same ids, and one already
    /// delivered and acked is not sent again, as its dedup record stands.
    async fn forward(
        &self,
        from: &QueueName,
        to: &QueueName,
        requests: &[ForwardRequest],
    ) -> StoreResult<ForwardOutcome>;

    /// `forward`, but each envelope added is leased to `hold.worker` instead of queued, its
    /// receipt in `held`: the router's step for deliveries it attempted itself that must be
    /// stored to be retried, deferred or dead-lettered (it settles them at once with those
    /// receipts). An id the store already holds is skipped and gets no receipt.
    async fn forward_held(
        &self,
        from: &QueueName,
        to: &QueueName,
        requests: &[ForwardRequest],
        hold: Hold<'_>,
    ) -> StoreResult<ForwardOutcome>;

    /// Heartbeat: push the lease deadline to now + `lease_for`.
    async fn extend(
        &self,
        queue: &QueueName,
        receipts: &[Receipt],
        lease_for: Duration,
    ) -> StoreResult<ReceiptOutcome>;

    /// Give leased items back for a later attempt (attempts + 1, envelope rewritten).
    async fn schedule_retry(
        &self,
        queue: &QueueName,
        retries: &[RetryRequest],
    ) -> StoreResult<ReceiptOutcome>;

    /// Put leased items off until `due_at_ms` without counting an attempt (breaker open, channel
    /// stopped, someone else sending the same alert).
    async fn defer(
        &self,
        queue: &QueueName,
        receipts: &[Receipt],
        due_at_ms: i64,
    ) -> StoreResult<ReceiptOutcome>;

    /// Hand leased items back to the front of their queue, in order, without counting an attempt
    /// (graceful shutdown).
    async fn release(&self, queue: &QueueName, receipts: &[Receipt])
    -> StoreResult<ReceiptOutcome>;

    /// Move up to `max` due retries back to the queue; returns how many moved.
    async fn promote_due(&self, queue: &QueueName, max: usize) -> StoreResult<usize>;

    /// Move leased items to the DLQ with their failure metadata.
    async fn dead_letter(
        &self,
        queue: &QueueName,
        requests: &[DeadLetterRequest],
    ) -> StoreResult<ReceiptOutcome>;

    /// The janitor's step: up to `max` expired leases back to the front of their queue,
    /// attempts + 1. Returns how many moved.
    async fn recover_expired(&self, queue: &QueueName, max: usize) -> StoreResult<usize>;

    /// The scheduled entries (retries, held-back sends) due soonest, at most `max_per_partition`
    /// from each partition; entries that do not decode are left out.
    async fn scheduled_entries(
        &self,
        queue: &QueueName,
        max_per_partition: usize,
    ) -> StoreResult<Vec<Envelope>>;
}

/// The dead-letter queue: count, page, search, group, and the remediations (replay, purge, bury).
#[async_trait]
pub trait DlqStore: Send + Sync {
    /// Count entries matching the filter (scans in bounded steps when field filters are set).
    async fn failed_count(
        &self,
        queue: &QueueName,
        set: FailedSet,
        filter: &DlqFilter,
    ) -> StoreResult<u64>;

    /// One page of matching entries, oldest first, from the cursor.
    async fn failed_page(
        &self,
        queue: &QueueName,
        set: FailedSet,
        filter: &DlqFilter,
        cursor: &DlqCursor,
        limit: usize,
    ) -> StoreResult<DlqPage>;

    /// The listed entries that are still in the set (at most `MAX_BATCH` ids), in the order
    /// listed: an id already replayed, purged or moved elsewhere is left out.
    async fn failed_entries(
        &self,
        queue: &QueueName,
        set: FailedSet,
        ids: &[EnvelopeId],
    ) -> StoreResult<Vec<DlqEntry>>;

    /// One bounded step of grouping the entries matching the filter by error class × time
    /// bucket (`bucket_ms` wide, by last failure): one partition from the cursor, at most
    /// `GROUP_SCAN_BUDGET` entries examined (`TEXT_SCAN_BUDGET` under a text search). Callers
    /// add the steps up (`merge_groups`) until `next` is `None`.
    async fn failed_groups(
        &self,
        queue: &QueueName,
        set: FailedSet,
        filter: &DlqFilter,
        bucket_ms: i64,
        cursor: &DlqCursor,
    ) -> StoreResult<GroupStep>;

    /// One bounded batch of replay from the DLQ (or, by explicit choice, the dead list) back to
    /// the queue, with the poison guard.
    async fn replay(
        &self,
        queue: &QueueName,
        from: FailedSet,
        scope: &DlqScope,
        options: ReplayOptions,
    ) -> StoreResult<BatchResult>;

    /// One bounded batch of deletion from the DLQ or the dead list.
    async fn purge(
        &self,
        queue: &QueueName,
        set: FailedSet,
        scope: &DlqScope,
        max_items: usize,
    ) -> StoreResult<BatchResult>;

    /// One bounded batch moved from the DLQ to the dead list (metadata kept): entries an
    /// operator gives up on, which replay and remediation then leave alone.
    async fn bury(
        &self,
        queue: &QueueName,
        scope: &DlqScope,
        max_items: usize,
    ) -> StoreResult<BatchResult>;
}

/// Operator controls: flags (emergency stop, shedding, pauses), runtime config, change
/// notifications and test-alert results.
#[async_trait]
pub trait ControlStore: Send + Sync {
    /// Keep how a test alert ended, for an hour, for whoever sent it.
    async fn test_result_put(&self, id: &str, result: &TestDelivery) -> StoreResult<()>;

    /// How a test alert ended, once its worker has said.
    async fn test_result_get(&self, id: &str) -> StoreResult<Option<TestDelivery>>;

    /// Set (`Some`) or clear (`None`) an operator flag, announcing the change.
    async fn set_flag(&self, flag: &Flag, state: Option<&FlagState>) -> StoreResult<()>;
    /// Clear a flag only while it still holds `expected` (as read); true if it was cleared.
    async fn clear_flag_if(&self, flag: &Flag, expected: &FlagState) -> StoreResult<bool>;
    /// Every flag currently set (expired ones included: callers decide with `is_expired`).
    async fn flags(&self) -> StoreResult<Vec<(String, FlagState)>>;

    /// Set (`Some`) or delete (`None`) a dynamic config value, announcing the change.
    async fn config_set(&self, key: &str, value: Option<&str>) -> StoreResult<()>;
    async fn config_get(&self, key: &str) -> StoreResult<Option<String>>;
    async fn config_all(&self) -> StoreResult<Vec<(String, String)>>;
    /// Changes to flags and config, as they happen.
    async fn subscribe(&self) -> StoreResult<broadcast::Receiver<Update>>;
}

/// Alerting state: silences, the alerts seen, aggregation groups and their notify log.
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Create or replace a silence (by id), announcing the change.
    async fn silence_put(&self, silence: &Silence) -> StoreResult<()>;

    /// Every silence kept: active, pending, and expired ones not yet pruned.
    async fn silences(&self) -> StoreResult<Vec<Silence>>;

    async fn silence_get(&self, id: &str) -> StoreResult<Option<Silence>>;

    /// Forget silences that ended before `ended_before_ms`; how many went.
    async fn silences_prune(&self, ended_before_ms: i64) -> StoreResult<usize>;

    /// Record alerts as seen, each replacing what was known of its fingerprint.
    async fn alerts_note(&self, alerts: &[SeenAlert]) -> StoreResult<()>;

    /// Alerts last seen at or after `since_ms`, newest first, at most `limit` per partition.
    async fn alerts_seen(&self, since_ms: i64, limit: usize) -> StoreResult<Vec<SeenAlert>>;

    /// Forget alerts last seen before `seen_before_ms`; how many went.
    async fn alerts_prune(&self, seen_before_ms: i64) -> StoreResult<usize>;

    /// An aggregation group (by target group id) and its version, for compare-and-set.
    async fn group_load(&self, id: &str) -> StoreResult<Option<(u64, GroupState)>>;

    /// Write a group if its version is still `expected` (0: it must not exist yet), and schedule
    /// its next flush at `state.next_flush_ms`; false when another writer came first.
    async fn group_store(&self, id: &str, expected: u64, state: &GroupState) -> StoreResult<bool>;

    /// Delete a group (and its schedule) if its version is still `expected`.
    async fn group_delete(&self, id: &str, expected: u64) -> StoreResult<bool>;

    /// Claim up to `max` groups due at or before now, across partitions: each is re-scheduled
    /// `hold` ahead so no other flusher takes it meanwhile. Their ids.
    async fn groups_due(&self, max: usize, hold: Duration) -> StoreResult<Vec<String>>;

    /// How many groups exist, and the soonest next flush (for the control room).
    async fn groups_summary(&self) -> StoreResult<(u64, Option<i64>)>;

    async fn notify_log_get(&self, id: &str) -> StoreResult<Option<NotifyLog>>;

    /// Record what a group's last notification held, kept `ttl_ms`.
    async fn notify_log_put(&self, id: &str, log: &NotifyLog, ttl_ms: u64) -> StoreResult<()>;
}

/// The append-only audit log.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Append an audit record; returns its id.
    async fn audit_append(&self, record: &AuditRecord) -> StoreResult<String>;
    /// The newest `limit` audit records, newest first.
    async fn audit_recent(&self, limit: usize) -> StoreResult<Vec<AuditEntry>>;
}

/// What guards a send: dedup claims, rate limits and circuit breakers, shared by every worker.
#[async_trait]
pub trait GuardStore: Send + Sync {
    /// Claim idempotency keys for `owner` before sending, one answer per key in order: `Claimed`
    /// (send now, then `dedup_finish` with its ticket), `AlreadyDone` (delivered within the
    /// window of an earlier claim: do not send) or `InFlight` (someone is sending it now, or the
    /// key came earlier in `keys`). A claim lapses after `hold` if its holder dies; a success
    /// stands for `window` from its claim, so recording it writes no record per key. One round
    /// trip for the whole batch (on Redis, a second one reads the successes of the claims found,
    /// and a third takes over records that lapsed).
    async fn dedup_claim(
        &self,
        owner: &str,
        keys: &[String],
        hold: Duration,
        window: Duration,
    ) -> StoreResult<Vec<DedupClaim>>;
    /// After the sends: remember success for `Done(ticket)`; `Release` or `Hold` the claim, which
    /// applies only while `owner` still holds it (a lapsed claim may be someone else's now).
    /// One round trip for the whole batch; on Redis two when it records successes and also
    /// releases or holds claims (successes first).
    async fn dedup_finish(
        &self,
        owner: &str,
        outcomes: &[(String, DedupFinish)],
    ) -> StoreResult<()>;

    /// One GCRA step for `name`: the same arithmetic as `engine::ratelimit::gcra`, atomically.
    async fn rate_limit(
        &self,
        name: &str,
        limit: &RateLimit,
        quantity: u32,
    ) -> StoreResult<Verdict>;

    /// A breaker's shared state and version, `None` if never written.
    async fn breaker_load(&self, name: &str) -> StoreResult<Option<(u64, Breaker)>>;
    /// Write a breaker if its version is still `expected` (0 = never written); false on conflict.
    async fn breaker_store(
        &self,
        name: &str,
        expected: u64,
        breaker: &Breaker,
    ) -> StoreResult<bool>;
    /// Every breaker, by name.
    async fn breakers(&self) -> StoreResult<Vec<(String, Breaker)>>;
}

/// What the control room and `ward status` read: queue statistics, one control read and
/// worker heartbeats.
#[async_trait]
pub trait StatsStore: Send + Sync {
    /// The queue figures and flags every worker obeys, in one round trip.
    async fn stats(&self, queues: &[QueueName]) -> StoreResult<StoreStats>;

    /// Everything the control room shows, in one round trip whatever the queue and DLQ sizes:
    /// the `stats` figures, breakers, dynamic config, heartbeats and the newest audit records.
    async fn control_read(
        &self,
        queues: &[QueueName],
        audit_limit: usize,
    ) -> StoreResult<ControlRead>;

    /// Write (`Some`) or remove (`None`) a worker's heartbeat.
    async fn beat(&self, worker: &str, beat: Option<&WorkerBeat>) -> StoreResult<()>;
}

/// The answer to a dedup claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DedupClaim {
    Claimed(DedupTicket),
    AlreadyDone,
    InFlight,
}

/// What names one claim when its success is recorded: the claim call it came from, its place
/// in that call and when its window ends. On Redis a call's successes are one bitmap, so a
/// chunk of successes costs one command, not one record per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupTicket {
    pub(crate) call: u64,
    pub(crate) slot: u32,
    pub(crate) window_end_ms: i64,
}

/// How a claimed send ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DedupFinish {
    /// Delivered: duplicates are not sent again until the claim's window ends.
    Done(DedupTicket),
    /// Not delivered: forget the claim.
    Release,
    /// Still sending (the heartbeat): keep a live claim for this long from now. A claim that
    /// already lapsed is not revived.
    Hold(Duration),
}

/// Read a breaker, apply `change`, and write it back under compare-and-set, retrying on
/// conflict. Returns the breaker as stored. A stored breaker that `change` left as it was is
/// not written again (a closed breaker's permits are the common case).
pub async fn update_breaker(
    store: &dyn Store,
    name: &str,
    mut change: impl FnMut(&mut Breaker),
) -> StoreResult<Breaker> {
    for _ in 0..16 {
        let (version, mut breaker) = store
            .breaker_load(name)
            .await?
            .unwrap_or_else(|| (0, Breaker::new(store.now_ms())));
        let before = (version > 0).then(|| breaker.clone());
        change(&mut breaker);
        if before.as_ref() == Some(&breaker) {
            return Ok(breaker);
        }
        if store.breaker_store(name, version, &breaker).await? {
            return Ok(breaker);
        }
    }
    Err(StoreError::Protocol {
        op: "breaker update",
        detail: format!("breaker {name} kept changing under 16 attempts"),
    })
}

pub(crate) fn check_batch(got: usize) -> StoreResult<()> {
    if got > MAX_BATCH {
        Err(StoreError::BatchTooLarge {
            got,
            max: MAX_BATCH,
        })
    } else {
        Ok(())
    }
}

/// A grouping's time bucket must be positive, or nothing would group.
pub(crate) fn check_bucket(bucket_ms: i64) -> StoreResult<()> {
    if bucket_ms <= 0 {
        return Err(StoreError::Invalid(format!(
            "a group bucket of {bucket_ms} ms makes no groups"
        )));
    }
    Ok(())
}

/// A step that could move or read nothing is a caller's mistake (and would stall a cursor).
pub(crate) fn check_step(n: usize) -> StoreResult<()> {
    check_batch(n)?;
    if n == 0 {
        return Err(StoreError::Invalid(
            "a step of 0 items makes no progress".to_owned(),
        ));
    }
    Ok(())
}

/// `forward`'s bounds: requests and envelopes each within `MAX_BATCH`, receipts in range.
pub(crate) fn check_forward(requests: &[ForwardRequest], partitions: u16) -> StoreResult<()> {
    check_batch(requests.len())?;
    check_batch(requests.iter().map(|r| r.envelopes.len()).sum())?;
    check_receipts(requests.iter().map(|r| &r.receipt), partitions)
}

/// Every receipt must name a partition this store has, before anything is applied.
pub(crate) fn check_receipts<'a>(
    receipts: impl IntoIterator<Item = &'a Receipt>,
    partitions: u16,
) -> StoreResult<()> {
    match receipts.into_iter().find(|r| r.partition >= partitions) {
        Some(r) => Err(StoreError::Invalid(format!(
            "receipt for {} names partition {}, but there are {partitions}",
            r.id, r.partition
        ))),
        None => Ok(()),
    }
}

/// An ids scope without ids selects nothing (never "everything").
pub(crate) fn is_empty_scope(scope: &DlqScope) -> bool {
    matches!(scope, DlqScope::Ids(ids) if ids.is_empty())
}

pub(crate) fn encode_envelope(envelope: &Envelope) -> StoreResult<String> {
    serde_json::to_string(envelope).map_err(|source| StoreError::Encode {
        what: "envelope",
        source,
    })
}

pub(crate) fn encode_json<T: Serialize>(what: &'static str, value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|source| StoreError::Encode { what, source })
}

/// Decode a stored envelope, filling in the store-owned counters.
pub(crate) fn decode_envelope(raw: &str, attempts: u32, replays: u32) -> Result<Envelope, String> {
    serde_json::from_str::<Envelope>(raw)
        .map(|mut envelope| {
            envelope.attempts = attempts;
            envelope.replays = replays;
            envelope
        })
        .map_err(|e| e.to_string())
}

/// The metadata written when an item is dead-lettered.
/// The receipt names the entry: the envelope only contributes tenant and counters.
pub(crate) fn dlq_meta_for(queue: &QueueName, request: &DeadLetterRequest, now_ms: i64) -> DlqMeta {
    let (envelope, failure, id) = (&request.envelope, &request.failure, &request.receipt.id);
    DlqMeta {
        id: id.clone(),
        queue: queue.clone(),
        tenant: envelope.tenant.clone(),
        error_class: failure.error_class.clone(),
        error_message: failure.error_message.clone(),
        stage: failure.stage.clone(),
        channel: failure.channel.clone(),
        attempts: envelope.attempts,
        replays: envelope.replays,
        first_failure_ms: envelope.first_failure_ms.unwrap_or(now_ms),
        last_failure_ms: now_ms,
        key: DlqMeta::order_key(now_ms, id),
    }
}

/// A leased item whose stored body did not decode: (receipt, decode error).
pub(crate) type CorruptItem = (Receipt, String);

/// Move leased items whose stored envelope does not decode to the DLQ (class `decode`). The raw
/// text stays stored with the entry, so nothing is lost; returns their ids. If the move fails the
/// items simply stay leased until the janitor returns them, and the lease still succeeds.
pub(crate) async fn settle_corrupt(
    store: &dyn Store,
    queue: &QueueName,
    corrupt: Vec<CorruptItem>,
) -> Vec<EnvelopeId> {
    if corrupt.is_empty() {
        return Vec::new();
    }
    let now = store.now_ms();
    let requests: Vec<DeadLetterRequest> = corrupt
        .into_iter()
        .map(|(receipt, error)| DeadLetterRequest {
            envelope: Envelope {
                id: receipt.id.clone(),
                idempotency_key: receipt.id.0.clone(),
                tenant: String::new(),
                payload: crate::model::Payload::null(),
                created_at_ms: crate::model::ulid_timestamp_ms(&receipt.id.0).unwrap_or(now),
                last_error: None,
                first_failure_ms: None,
                history: Vec::new(),
                attempts: 0,
                replays: 0,
            },
            failure: FailureInfo::new(
                DECODE_ERROR_CLASS,
                format!("stored envelope is not valid: {error}"),
                queue.as_str(),
            ),
            receipt,
        })
        .collect();
    match store.dead_letter(queue, &requests).await {
        Ok(_) => requests.into_iter().map(|r| r.receipt.id).collect(),
        Err(error) => {
            tracing::warn!(%error, count = requests.len(), "could not dead-letter corrupt envelopes; the janitor will return them");
            Vec::new()
        }
    }
}

/// One page of a DLQ scan across partitions: `step(from, want)` scans one partition from the
/// cursor `from` and returns (entries, reached its end, last key examined).
pub(crate) async fn page_across_partitions<F, Fut>(
    partitions: u16,
    cursor: &DlqCursor,
    limit: usize,
    mut step: F,
) -> StoreResult<DlqPage>
where
    F: FnMut(DlqCursor, usize) -> Fut,
    Fut: std::future::Future<Output = StoreResult<(Vec<DlqEntry>, bool, String)>>,
{
    let mut page = DlqPage::default();
    let mut from = cursor.clone();
    while from.partition < partitions {
        let partition = from.partition;
        let (entries, done, last) = step(from, limit - page.entries.len()).await?;
        page.steps += 1;
        page.entries.extend(entries);
        if !done {
            page.next = Some(cursor.at(partition, last));
            return Ok(page);
        }
        from = cursor.at(partition + 1, String::new());
        if page.entries.len() >= limit {
            break;
        }
    }
    page.next = (from.partition < partitions).then_some(from);
    Ok(page)
}

/// Where a one-partition step that examined up to `last` continues: the next partition when it
/// reached the end (`None` after the last one).
pub(crate) fn next_after_step(
    cursor: &DlqCursor,
    done: bool,
    last: String,
    partitions: u16,
) -> Option<DlqCursor> {
    if done {
        (cursor.partition + 1 < partitions).then(|| cursor.at(cursor.partition + 1, String::new()))
    } else {
        Some(cursor.at(cursor.partition, last))
    }
}

/// Token naming one lease call: the worker plus randomness, so two calls never share a fence.
/// Never contains `|`, which ends the token in a Redis lease member.
pub(crate) fn lease_token(worker: &WorkerId) -> String {
    format!(
        "{}#{:016x}",
        worker.as_str().replace('|', "/"),
        fastrand::u64(..)
    )
}

/// Open the store a config names: the embedded memory store, or Redis (connected, scripts loaded).
pub async fn open(config: &crate::config::StoreConfig) -> StoreResult<std::sync::Arc<dyn Store>> {
    open_with(config, false).await
}

/// The store for a process that only reads it (`ward status`, `check`, `watch`): on Redis it
/// writes nothing, not even the layout mark of an empty store.
pub async fn open_observer(
    config: &crate::config::StoreConfig,
) -> StoreResult<std::sync::Arc<dyn Store>> {
    open_with(config, true).await
}

/// Attach to a MUTT deployment (`--profile mutt`): connects, writes nothing.
pub async fn open_mutt(config: &crate::config::Config) -> StoreResult<mutt::MuttStore> {
    let mut options =
        mutt::MuttStoreOptions::new(&config.store.redis_url, MuttKeys::new(&config.mutt));
    options.breaker_timeout = Duration::from_secs(config.mutt.breaker_timeout_s);
    options.response_timeout = config.store.response_timeout();
    options.connect_timeout = config.store.connect_timeout();
    mutt::MuttStore::connect(options).await
}

/// The store for the control room: when Redis does not answer yet, a store that connects on
/// first use, so the control room starts and shows what it tried until Redis is back.
pub async fn open_attached(
    config: &crate::config::StoreConfig,
) -> StoreResult<std::sync::Arc<dyn Store>> {
    match open_with(config, false).await {
        Err(error) if error.is_unavailable() && config.backend == crate::config::Backend::Redis => {
            Ok(std::sync::Arc::new(lazy::LazyStore::new(
                redis_options(config, false),
                &error,
            )))
        }
        other => other,
    }
}

fn redis_options(config: &crate::config::StoreConfig, observer: bool) -> RedisStoreOptions {
    let mut options = RedisStoreOptions::new(
        &config.redis_url,
        KeySchema::new(config.profile, &config.key_prefix, config.partitions),
    );
    options.response_timeout = config.response_timeout();
    options.connect_timeout = config.connect_timeout();
    options.observer = observer;
    options.replica_acks = config.replica_acks;
    options
}

async fn open_with(
    config: &crate::config::StoreConfig,
    observer: bool,
) -> StoreResult<std::sync::Arc<dyn Store>> {
    match config.backend {
        crate::config::Backend::Memory => {
            Ok(std::sync::Arc::new(MemoryStore::new(config.partitions)))
        }
        crate::config::Backend::Redis => Ok(std::sync::Arc::new(
            RedisStore::connect(redis_options(config, observer)).await?,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_partition_gets_its_share_of_the_ingest_limits() {
        let limit = RateLimit {
            count: 1000,
            period_ms: 1000,
            burst: 2000,
        };
        assert_eq!(
            partition_share(&limit, 1),
            limit,
            "one partition: the limit itself"
        );
        let share = partition_share(&limit, 3);
        assert_eq!(
            share.emission_interval_us(),
            3 * limit.emission_interval_us()
        );
        assert_eq!(share.burst, 667, "⌈2000 / 3⌉");
        let tiny = RateLimit {
            count: 1,
            period_ms: 60_000,
            burst: 1,
        };
        assert_eq!(partition_share(&tiny, 4).burst, 1, "never below one");
        assert_eq!(cap_share(1_000_000, 1), 1_000_000);
        assert_eq!(cap_share(10, 3), 4);
        assert_eq!(cap_share(1, 8), 1);
    }

    #[test]
    fn a_request_goes_where_its_first_alert_does_and_counts_per_tenant() {
        let envelopes: Vec<Envelope> = ["b", "a", "b", "c", "a", "b"]
            .iter()
            .map(|t| Envelope::new(t, serde_json::json!(1), 0).with_idempotency_key("k"))
            .collect();
        assert_eq!(
            tenant_quantities(&envelopes),
            vec![("a", 2), ("b", 3), ("c", 1)]
        );
        let p = crate::engine::partition::partition_for("b", "k", 8);
        assert_eq!(ingest_partition(&envelopes, 8), p);
        assert_eq!(ingest_partition(&envelopes, 1), 0);
        assert!(check_ingest(&[]).is_err());
        assert!(check_ingest(&envelopes).is_ok());
    }
}
