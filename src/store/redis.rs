//! The production store: Redis, one server or a Cluster (see `redis_conn`). Every move is
//! atomic: one Lua script per partition (loaded once, called by SHA; ingest and enqueue hand it
//! the bodies to store, one variadic HSET being cheaper than a command per body); lease reads
//! bodies and dedup records travel as plain pipelined commands. Every read for the control room
//! is one pipeline.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncCommands, Client, Script, Value};
use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::redis_conn::Conn;
use super::redis_ingest::{IngestRequest, IngestWriters, ScriptVerdict, WriterParts};
use super::replication::Replication;
use super::{
    BatchResult, ControlRead, DeadLetterRequest, DedupClaim, DedupFinish, DlqCursor, DlqFilter,
    DlqGroup, DlqPage, DlqScope, FailedSet, ForwardOutcome, ForwardRequest, GROUP_BUCKET_MS,
    GROUP_SCAN_BUDGET, GroupStep, IngestLimits, IngestOutcome, KeySchema, Lease, LeasedItem,
    MAX_BATCH, Receipt, ReceiptOutcome, ReplayOptions, RetryRequest, SCAN_BUDGET, Store,
    StoreError, StoreResult, Update, cap_share, check_batch, check_bucket, check_forward,
    check_ingest, check_step, decode_envelope, dlq_meta_for, encode_envelope, encode_json,
    ingest_partition, is_empty_scope, lease_token, merge_groups, next_after_step,
    page_across_partitions, partition_share, settle_corrupt, tenant_quantities,
};
use crate::config::cluster_seeds;
use crate::engine::breaker::Breaker;
use crate::engine::clock::{SharedClock, SystemClock, duration_ms};
use crate::engine::grouping::{GroupState, NotifyLog};
use crate::engine::partition::partition_for;
use crate::engine::ratelimit::{RateLimit, Verdict, gcra};
use crate::model::{
    AuditEntry, AuditRecord, DlqEntry, DlqMeta, Envelope, EnvelopeId, Flag, FlagState, Profile,
    QueueName, QueueStats, SCHEDULED_SAMPLE, ScheduledItem, ScheduledSummary, SeenAlert, Silence,
    StoreStats, TestDelivery, WorkerBeat, WorkerId, ulid_timestamp_ms,
};

const AUDIT_MAX_LEN: usize = 100_000;

struct Scripts {
    lease: Script,
    settle: Script,
    move_due: Script,
    failed: Script,
    dedup: Script,
    gcra: Script,
    breaker_cas: Script,
    flag_cad: Script,
    prune: Script,
    group_store: Script,
    group_delete: Script,
    groups_due: Script,
    enqueue: Script,
}

fn scripts() -> &'static Scripts {
    static SCRIPTS: OnceLock<Scripts> = OnceLock::new();
    SCRIPTS.get_or_init(|| Scripts {
        lease: Script::new(include_str!("lua/lease.lua")),
        settle: Script::new(include_str!("lua/settle.lua")),
        move_due: Script::new(include_str!("lua/move_due.lua")),
        failed: Script::new(include_str!("lua/failed.lua")),
        dedup: Script::new(include_str!("lua/dedup.lua")),
        gcra: Script::new(include_str!("lua/gcra.lua")),
        breaker_cas: Script::new(include_str!("lua/breaker_cas.lua")),
        flag_cad: Script::new(include_str!("lua/flag_cad.lua")),
        prune: Script::new(include_str!("lua/prune.lua")),
        group_store: Script::new(include_str!("lua/group_store.lua")),
        group_delete: Script::new(include_str!("lua/group_delete.lua")),
        groups_due: Script::new(include_str!("lua/groups_due.lua")),
        enqueue: Script::new(include_str!("lua/enqueue.lua")),
    })
}

/// How to reach Redis.
#[derive(Debug, Clone)]
pub struct RedisStoreOptions {
    pub url: String,
    pub keys: KeySchema,
    /// Longest wait for any reply. Every script is bounded, so a slow reply means trouble.
    pub response_timeout: Duration,
    pub connect_timeout: Duration,
    pub clock: SharedClock,
    /// Only reads (`ward status`, `check`, `watch`): never marks the data layout of an empty
    /// store, and leaves the scripts to load on first use.
    pub observer: bool,
    /// Replicas that must have a new alert before it is accepted; `None`: 1 on a cluster, 0 on
    /// a single server.
    pub replica_acks: Option<u32>,
}

impl RedisStoreOptions {
    pub fn new(url: &str, keys: KeySchema) -> Self {
        Self {
            url: url.to_owned(),
            keys,
            response_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
            clock: Arc::new(SystemClock),
            observer: false,
            replica_acks: None,
        }
    }
}

struct Inner {
    /// One client per server (one, or a cluster's seeds) for the updates subscription.
    clients: Vec<Client>,
    conn: Conn,
    keys: KeySchema,
    clock: SharedClock,
    lease_start: AtomicUsize,
    /// New alerts count as accepted once their primary's replicas have them too (WAIT).
    replication: Arc<Replication>,
    /// One group-committing ingest writer per partition.
    ingest_writers: IngestWriters,
    updates: OnceLock<broadcast::Sender<Update>>,
    /// True while the updates listener is subscribed.
    listening: tokio::sync::watch::Sender<bool>,
    _stop_listener: DropGuard,
    listener_token: CancellationToken,
}

/// Store backed by Redis (single server or anything speaking its protocol).
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("keys", &self.inner.keys)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connect and load every script, failing within the connect timeout if Redis is away.
    pub async fn connect(options: RedisStoreOptions) -> StoreResult<Self> {
        if options.keys.profile() == Profile::Mutt {
            return Err(StoreError::Invalid(
                "the mutt profile reads a MUTT deployment through its own adapter; Ward's \
                 pipeline does not run on MUTT's keys"
                    .to_owned(),
            ));
        }
        let (clients, mut conn) = if let Some(seeds) = cluster_seeds(&options.url) {
            let seeds = seeds.map_err(StoreError::Invalid)?;
            let clients = seeds
                .iter()
                .map(|seed| Client::open(seed.as_str()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::redis("open"))?;
            let conn =
                Conn::cluster(&seeds, options.response_timeout, options.connect_timeout).await?;
            (clients, conn)
        } else {
            let client = Client::open(options.url.as_str()).map_err(StoreError::redis("open"))?;
            let conn =
                connect_client(&client, options.response_timeout, options.connect_timeout).await?;
            (vec![client], Conn::Single(conn))
        };
        check_server(&mut conn).await?;
        check_layout(&mut conn, &options.keys, !options.observer).await?;
        // A cluster's primaries have replicas by design; a single server's rarely.
        let replica_acks = options.replica_acks.unwrap_or(u32::from(conn.is_cluster()));
        let replication = Arc::new(Replication::new(replica_acks, options.response_timeout / 2));
        let ingest_writers = IngestWriters::new(
            WriterParts {
                conn: conn.clone(),
                keys: options.keys.clone(),
                replication: replication.clone(),
            },
            options.keys.partitions(),
        );
        let s = scripts();
        let load = if options.observer {
            &[][..]
        } else {
            &[
                &s.lease,
                &s.settle,
                &s.move_due,
                &s.failed,
                &s.dedup,
                &s.gcra,
                &s.breaker_cas,
                &s.flag_cad,
            ][..]
        };
        for script in load {
            script
                .load_async(&mut conn)
                .await
                .map_err(StoreError::redis("script load"))?;
        }
        let listener_token = CancellationToken::new();
        Ok(Self {
            inner: Arc::new(Inner {
                clients,
                conn,
                keys: options.keys,
                clock: options.clock,
                lease_start: AtomicUsize::new(0),
                replication,
                ingest_writers,
                updates: OnceLock::new(),
                listening: tokio::sync::watch::Sender::new(false),
                _stop_listener: listener_token.clone().drop_guard(),
                listener_token,
            }),
        })
    }

    fn conn(&self) -> Conn {
        self.inner.conn.clone()
    }

    fn partition_of(&self, envelope: &Envelope) -> u16 {
        partition_for(
            &envelope.tenant,
            &envelope.idempotency_key,
            self.inner.keys.partitions(),
        )
    }

    fn partitions(&self) -> u16 {
        self.inner.keys.partitions()
    }

    /// One partition's enqueue: one call of enqueue.lua with the ids and bodies (and the acks
    /// of the items they were routed from when forwarding). Returns how many ids were added and
    /// which acks were stale.
    fn enqueue_in(
        &self,
        p: u16,
        queue: &QueueName,
        items: Vec<(&str, Vec<u8>)>,
        acks: Option<(&QueueName, &[&Receipt])>,
    ) -> impl Future<Output = ::redis::RedisResult<(usize, Vec<String>)>> + use<> {
        let keys = &self.inner.keys;
        let (from, receipts) = acks.unwrap_or((queue, &[]));
        let mut call = scripts().enqueue.prepare_invoke();
        call.key(keys.queue(p, queue))
            .key(keys.bodies(p))
            .key(keys.leases(p, from))
            .arg(receipts.len());
        for receipt in receipts {
            call.arg(receipt.id.as_str())
                .arg(lease_member(&receipt.token, &receipt.id));
        }
        for (id, body) in items {
            call.arg(id).arg(body);
        }
        let mut conn = self.conn();
        async move { call.invoke_async(&mut conn).await }
    }

    /// One settle script call per partition touched.
    async fn settle(
        &self,
        queue: &QueueName,
        op: &'static str,
        deadline: Option<i64>,
        items: Vec<(&Receipt, String, String)>,
    ) -> StoreResult<ReceiptOutcome> {
        let keys = &self.inner.keys;
        let mut outcome = ReceiptOutcome::default();
        let mut by_partition: Vec<Vec<(&Receipt, String, String)>> =
            (0..self.partitions()).map(|_| Vec::new()).collect();
        for item in items {
            let slot = by_partition
                .get_mut(usize::from(item.0.partition))
                .ok_or_else(|| {
                    StoreError::Invalid(format!(
                        "receipt for unknown partition {}",
                        item.0.partition
                    ))
                })?;
            slot.push(item);
        }
        // One call per partition touched, all sent at once on the multiplexed connection.
        let calls = by_partition
            .into_iter()
            .enumerate()
            .filter(|(_, items)| !items.is_empty())
            .map(|(partition, items)| {
                let p = partition as u16;
                let mut call = scripts().settle.prepare_invoke();
                call.key(keys.leases(p, queue))
                    .key(keys.bodies(p))
                    .key(keys.dlq_meta(p))
                    .key(keys.scheduled(p, queue))
                    .key(keys.dlq(p, queue))
                    .key(keys.queue(p, queue))
                    .arg(op)
                    .arg(deadline.map_or_else(String::new, |d| d.to_string()));
                let count = items.len();
                for (receipt, a, b) in items {
                    call.arg(receipt.id.as_str())
                        .arg(lease_member(&receipt.token, &receipt.id))
                        .arg(a)
                        .arg(b);
                }
                let mut conn = self.conn();
                async move {
                    let stale: Vec<String> = call.invoke_async(&mut conn).await?;
                    Ok::<_, ::redis::RedisError>((count, stale))
                }
            });
        let replies = futures::future::try_join_all(calls)
            .await
            .map_err(StoreError::redis(op))?;
        for (count, stale) in replies {
            outcome.applied += count - stale.len();
            outcome.stale.extend(stale.into_iter().map(EnvelopeId));
        }
        Ok(outcome)
    }

    /// One call of `failed.lua` on the cursor's partition.
    async fn failed_step(
        &self,
        queue: &QueueName,
        set: FailedSet,
        step: &Step<'_>,
    ) -> StoreResult<FailedStep> {
        let (filter, from) = (step.filter, step.from);
        let partition = from.partition;
        let keys = &self.inner.keys;
        let set_key = match set {
            FailedSet::Dlq => keys.dlq(partition, queue),
            FailedSet::Dead => keys.dead(partition, queue),
        };
        let (start, stop) = from.lex_bounds(filter);
        let text = filter.search().unwrap_or_default();
        let text_json = serde_json::to_string(&text).unwrap_or_default();
        let text_json = text_json
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or_default();
        let mut call = scripts().failed.prepare_invoke();
        call.key(set_key)
            .key(keys.dlq_meta(partition))
            .key(keys.queue(partition, queue))
            .key(keys.dead(partition, queue))
            .key(keys.bodies(partition))
            .arg(step.op)
            .arg(start)
            .arg(stop)
            .arg(step.max_hits)
            .arg(filter.step_budget(step.budget))
            .arg(field_needle("error_class", filter.error_class.as_deref()))
            .arg(field_needle("stage", filter.stage.as_deref()))
            .arg(field_needle("tenant", filter.tenant.as_deref()))
            .arg(field_needle("channel", filter.channel.as_deref()))
            .arg(step.options.max_replays)
            .arg(if step.options.reset_attempts {
                "1"
            } else {
                "0"
            })
            .arg(if set == FailedSet::Dlq { "1" } else { "0" })
            .arg(if step.ids.is_some() { "ids" } else { "filter" })
            .arg(&text)
            .arg(text_json)
            .arg(if from.newest_first { "desc" } else { "asc" })
            .arg(step.bucket_ms);
        for id in step.ids.unwrap_or_default() {
            call.arg(id.as_str());
        }
        let mut conn = self.conn();
        let reply: Vec<Value> = call
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::redis("dlq step"))?;
        FailedStep::parse(partition, step.op == "groups", reply)
    }

    /// Purge or bury: one bounded step of a move without the replay guard's options.
    async fn failed_move(
        &self,
        queue: &QueueName,
        set: FailedSet,
        op: &str,
        scope: &DlqScope,
        max_items: usize,
    ) -> StoreResult<BatchResult> {
        check_step(max_items)?;
        if is_empty_scope(scope) {
            return Ok(BatchResult::default());
        }
        let options = ReplayOptions {
            max_items,
            ..ReplayOptions::default()
        };
        self.failed_batch(queue, set, op, scope, options).await
    }

    /// Replay or purge: one bounded step, by ids on every partition or by filter on the cursor's.
    async fn failed_batch(
        &self,
        queue: &QueueName,
        set: FailedSet,
        op: &str,
        scope: &DlqScope,
        options: ReplayOptions,
    ) -> StoreResult<BatchResult> {
        let mut result = BatchResult::default();
        match scope {
            DlqScope::Ids(ids) => {
                check_batch(ids.len())?;
                let no_filter = DlqFilter::default();
                for partition in 0..self.partitions() {
                    let remaining = options.max_items - result.touched();
                    if remaining == 0 {
                        break;
                    }
                    let from = DlqCursor::start().at(partition, String::new());
                    let args = Step {
                        max_hits: remaining,
                        options,
                        ids: Some(ids),
                        ..Step::new(op, &no_filter, &from)
                    };
                    let step = self.failed_step(queue, set, &args).await?;
                    result.moved += step.moved;
                    result.poisoned += step.poisoned;
                }
                result.scanned = ids.len();
            }
            DlqScope::Filter { filter, cursor } => {
                if cursor.partition >= self.partitions() {
                    return Ok(result);
                }
                let args = Step {
                    max_hits: options.max_items,
                    options,
                    ..Step::new(op, filter, cursor)
                };
                let step = self.failed_step(queue, set, &args).await?;
                result.moved = step.moved;
                result.poisoned = step.poisoned;
                result.scanned = step.examined;
                result.next = next_after_step(cursor, step.done, step.last, self.partitions());
            }
        }
        Ok(result)
    }

    fn updates_sender(&self) -> &broadcast::Sender<Update> {
        self.inner.updates.get_or_init(|| {
            let (tx, _) = broadcast::channel(1024);
            let clients = self.inner.clients.clone();
            let channel = self.inner.keys.updates_channel();
            let stop = self.inner.listener_token.clone();
            let forward = tx.clone();
            let listening = self.inner.listening.clone();
            tokio::spawn(async move {
                let mut backoff = Duration::from_millis(100);
                // A cluster broadcasts PUBLISH to every node: any seed that answers will do.
                for client in clients.iter().cycle() {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = listen(client, &channel, &forward, &listening) => {}
                    }
                    listening.send_replace(false);
                    tracing::warn!(channel, "updates subscription lost; reconnecting");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            });
            tx
        })
    }

    async fn publish(&self, update: &Update) -> StoreResult<()> {
        let payload = encode_json("update", update)?;
        let mut conn = self.conn();
        let _: i64 = conn
            .publish(self.inner.keys.updates_channel(), payload)
            .await
            .map_err(StoreError::redis("publish"))?;
        Ok(())
    }
}

/// Forward messages until the subscription breaks.
async fn listen(
    client: &Client,
    channel: &str,
    forward: &broadcast::Sender<Update>,
    listening: &tokio::sync::watch::Sender<bool>,
) {
    let Ok(mut pubsub) = client.get_async_pubsub().await else {
        return;
    };
    if pubsub.subscribe(channel).await.is_err() {
        return;
    }
    listening.send_replace(true);
    let mut messages = pubsub.on_message();
    while let Some(message) = messages.next().await {
        let Ok(payload) = message.get_payload::<String>() else {
            continue;
        };
        match serde_json::from_str::<Update>(&payload) {
            Ok(update) => {
                let _ = forward.send(update);
            }
            Err(error) => tracing::warn!(%error, "ignoring malformed update message"),
        }
    }
}

/// What one call of `failed.lua` is asked to do.
struct Step<'a> {
    op: &'a str,
    filter: &'a DlqFilter,
    /// The partition, position and direction.
    from: &'a DlqCursor,
    max_hits: usize,
    budget: usize,
    options: ReplayOptions,
    /// Only these entries (the filter and cursor position are then ignored).
    ids: Option<&'a [EnvelopeId]>,
    bucket_ms: i64,
}

impl<'a> Step<'a> {
    fn new(op: &'a str, filter: &'a DlqFilter, from: &'a DlqCursor) -> Self {
        Self {
            op,
            filter,
            from,
            max_hits: usize::MAX >> 1,
            budget: SCAN_BUDGET,
            options: ReplayOptions::default(),
            ids: None,
            bucket_ms: GROUP_BUCKET_MS,
        }
    }
}

struct FailedStep {
    done: bool,
    last: String,
    examined: usize,
    moved: usize,
    poisoned: usize,
    entries: Vec<DlqEntry>,
    groups: Vec<DlqGroup>,
}

impl FailedStep {
    fn parse(partition: u16, groups: bool, reply: Vec<Value>) -> StoreResult<Self> {
        let protocol = |detail: &str| StoreError::Protocol {
            op: "dlq step",
            detail: detail.to_owned(),
        };
        let mut fields = reply.into_iter();
        let mut next_int = || -> StoreResult<i64> {
            match fields.next() {
                Some(Value::Int(n)) => Ok(n),
                _ => Err(protocol("expected an integer")),
            }
        };
        let done = next_int()? == 1;
        let last = match fields.next() {
            Some(v) => value_string(v).ok_or_else(|| protocol("expected the last key"))?,
            None => return Err(protocol("short reply")),
        };
        let mut next_int = || -> StoreResult<i64> {
            match fields.next() {
                Some(Value::Int(n)) => Ok(n),
                _ => Err(protocol("expected an integer")),
            }
        };
        let examined = next_int()? as usize;
        let moved = next_int()? as usize;
        let poisoned = next_int()? as usize;
        let rest: Vec<Value> = fields.collect();
        let mut step = Self {
            done,
            last,
            examined,
            moved,
            poisoned,
            entries: Vec::new(),
            groups: Vec::new(),
        };
        if groups {
            for chunk in rest.chunks_exact(3) {
                let (Value::Int(bucket_ms), Value::Int(count)) = (&chunk[1], &chunk[2]) else {
                    return Err(protocol("expected a bucket and a count"));
                };
                step.groups.push(DlqGroup {
                    error_class: lossy(&chunk[0]),
                    bucket_ms: *bucket_ms,
                    count: u64::try_from(*count).unwrap_or(0),
                });
            }
            let unsorted = std::mem::take(&mut step.groups);
            merge_groups(&mut step.groups, unsorted);
            return Ok(step);
        }
        step.entries.reserve(rest.len() / 2);
        for chunk in rest.chunks_exact(2) {
            let meta: DlqMeta = serde_json::from_str(&lossy(&chunk[0]))
                .map_err(|e| protocol(&format!("DLQ metadata does not decode: {e}")))?;
            let envelope = match strict(&chunk[1]) {
                Some(stored) => {
                    let (attempts, replays, json) = split_stored(&stored);
                    decode_envelope(json, attempts, replays).map_err(|_| json.to_owned())
                }
                None => Err(lossy(&chunk[1])),
            };
            step.entries.push(DlqEntry {
                partition,
                meta,
                envelope,
            });
        }
        Ok(step)
    }
}

/// Text of a reply value, invalid UTF-8 replaced (ids, counters: never user bytes that matter).
fn lossy(value: &Value) -> String {
    match value {
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(n) => n.to_string(),
        _ => String::new(),
    }
}

/// Text of a reply value, `None` unless it is valid UTF-8.
fn strict(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// A filter field for the script: '' matches anything, '=v' only v (so `Some("")` is not "any").
/// What a DLQ metadata record (compact JSON written by `serde_json`) contains exactly when its
/// `field` equals `value`: `"field":"value"` with the value JSON-escaped. Inside a string value
/// every quote is escaped, so the needle cannot match there; finding it is far cheaper in Lua
/// than decoding the record. Empty when the field is not filtered.
fn field_needle(field: &str, value: Option<&str>) -> String {
    value.map_or_else(String::new, |v| {
        let quoted = serde_json::to_string(v).unwrap_or_default();
        format!("\"{field}\":{quoted}")
    })
}

const SCHEDULED_SCRIPT: &str = include_str!("lua/scheduled.lua");
const SEEN_SCRIPT: &str = include_str!("lua/seen.lua");
const SCHEDULED_BODIES_SCRIPT: &str = include_str!("lua/scheduled_bodies.lua");
/// Seen alerts read per partition at most: the script unpacks them into one HMGET.
const SEEN_READ_MAX: usize = 5_000;

/// Newest sighting first, ties by fingerprint descending (ZREVRANGEBYSCORE's order).
pub(crate) fn newest_first<T: std::borrow::Borrow<SeenAlert>>(alerts: &mut [T]) {
    alerts.sort_by(|a, b| {
        let (a, b) = (a.borrow(), b.borrow());
        b.last_seen_ms
            .cmp(&a.last_seen_ms)
            .then_with(|| b.fingerprint.cmp(&a.fingerprint))
    });
}

fn decode_record<T: serde::de::DeserializeOwned>(op: &'static str, raw: &str) -> StoreResult<T> {
    serde_json::from_str(raw).map_err(|e| StoreError::Protocol {
        op,
        detail: e.to_string(),
    })
}

/// The reply of `scheduled.lua`: flat (id, due, attempts, channel) quadruples.
fn decode_scheduled(reply: Option<Value>) -> Vec<ScheduledItem> {
    let Some(Value::Array(values)) = reply else {
        return Vec::new();
    };
    values
        .chunks_exact(4)
        .filter_map(|item| {
            let text = |v: &Value| value_string(v.clone());
            Some(ScheduledItem {
                id: text(&item[0])?,
                due_ms: text(&item[1])?.parse::<f64>().ok()? as i64,
                attempts: text(&item[2])?.parse().unwrap_or(0),
                channel: text(&item[3]).unwrap_or_default(),
            })
        })
        .collect()
}

pub(crate) fn value_string(value: Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
        Value::SimpleString(s) => Some(s),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

impl RedisStore {
    /// Forget every member a zset scores below `bound`, from it and its hash, in bounded steps.
    async fn prune(&self, hash: &str, zset: &str, bound: i64) -> StoreResult<usize> {
        let mut conn = self.conn();
        let mut pruned = 0;
        loop {
            let n: usize = scripts()
                .prune
                .key(hash)
                .key(zset)
                .arg(bound)
                .arg(MAX_BATCH)
                .invoke_async(&mut conn)
                .await
                .map_err(StoreError::redis("prune"))?;
            pruned += n;
            if n < MAX_BATCH {
                return Ok(pruned);
            }
        }
    }

    /// Six commands per queue and partition: the figures `decode_stats` reads back.
    fn queue_stats_commands(&self, pipe: &mut ::redis::Pipeline, queues: &[QueueName]) {
        let keys = &self.inner.keys;
        for queue in queues {
            for p in 0..self.partitions() {
                pipe.llen(keys.queue(p, queue))
                    .zcard(keys.leases(p, queue))
                    .zcard(keys.scheduled(p, queue))
                    .zcard(keys.dlq(p, queue))
                    .zcard(keys.dead(p, queue))
                    .lindex(keys.queue(p, queue), -1);
                // EVAL, not EVALSHA: a NOSCRIPT would fail the whole pipeline of a read.
                pipe.cmd("EVAL")
                    .arg(SCHEDULED_SCRIPT)
                    .arg(2)
                    .arg(keys.scheduled(p, queue))
                    .arg(keys.bodies(p))
                    .arg(SCHEDULED_SAMPLE)
                    .arg(if *queue == QueueName::delivery() {
                        "1"
                    } else {
                        "0"
                    });
            }
        }
    }

    /// The replies of `queue_stats_commands` followed by the flags hash.
    fn decode_stats(
        &self,
        replies: &mut impl Iterator<Item = Value>,
        queues: &[QueueName],
        now: i64,
    ) -> StoreStats {
        let mut out = Vec::with_capacity(queues.len());
        for queue in queues {
            let mut stats = QueueStats::empty(queue.clone());
            let mut scheduled = Vec::new();
            for _ in 0..self.partitions() {
                let mut int = || match replies.next() {
                    Some(Value::Int(n)) => n.max(0) as u64,
                    _ => 0,
                };
                stats.depth += int();
                stats.in_flight += int();
                stats.scheduled += int();
                stats.dlq += int();
                stats.dead += int();
                let age = replies
                    .next()
                    .and_then(value_string)
                    .and_then(|id| ulid_timestamp_ms(&id))
                    .map(|created| now.saturating_sub(created).max(0) as u64);
                stats.oldest_age_ms = stats.oldest_age_ms.max(age);
                scheduled.extend(decode_scheduled(replies.next()));
            }
            stats.waiting_retry = ScheduledSummary::of(&scheduled, now);
            out.push(stats);
        }
        let flags = replies
            .next()
            .and_then(|v| ::redis::FromRedisValue::from_redis_value(v).ok())
            .map(decode_flags)
            .unwrap_or_default();
        StoreStats {
            read_at_ms: now,
            queues: out,
            flags,
        }
    }
}

#[async_trait]
impl Store for RedisStore {
    fn backend_name(&self) -> &'static str {
        "redis"
    }

    fn keys(&self) -> &KeySchema {
        &self.inner.keys
    }

    fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    async fn enqueue(&self, queue: &QueueName, envelopes: &[Envelope]) -> StoreResult<usize> {
        check_batch(envelopes.len())?;
        let mut by_partition: Vec<Vec<(&str, Vec<u8>)>> =
            (0..self.partitions()).map(|_| Vec::new()).collect();
        for envelope in envelopes {
            by_partition[usize::from(self.partition_of(envelope))]
                .push((envelope.id.as_str(), encode_stored(envelope)?));
        }
        let touched: Vec<String> = by_partition
            .iter()
            .enumerate()
            .filter(|(_, items)| !items.is_empty())
            .map(|(partition, _)| self.inner.keys.queue(partition as u16, queue))
            .collect();
        // One call per partition touched, all sent at once on the multiplexed connection.
        let calls = by_partition
            .into_iter()
            .enumerate()
            .filter(|(_, items)| !items.is_empty())
            .map(|(partition, items)| self.enqueue_in(partition as u16, queue, items, None));
        let replies = futures::future::try_join_all(calls)
            .await
            .map_err(StoreError::redis("enqueue"))?;
        self.inner.replication.wait(&self.conn(), &touched).await?;
        Ok(replies.into_iter().map(|(added, _)| added).sum())
    }

    async fn ingest(
        &self,
        queue: &QueueName,
        limits: &IngestLimits<'_>,
        envelopes: &[Envelope],
    ) -> StoreResult<IngestOutcome> {
        check_ingest(envelopes)?;
        let partitions = self.partitions();
        let p = ingest_partition(envelopes, partitions);
        let share = partition_share(&limits.rate_limit, partitions);
        let cap = cap_share(limits.queue_cap, partitions);
        let tenants = tenant_quantities(envelopes);
        let now_us = self.now_ms().saturating_mul(1000);
        let items = envelopes
            .iter()
            .map(|envelope| Ok((envelope.id.0.clone(), encode_stored(envelope)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        let request = IngestRequest {
            queue: queue.clone(),
            limiter: limits.limiter.to_owned(),
            share,
            cap,
            tenants: tenants
                .iter()
                .map(|(tenant, quantity)| ((*tenant).to_owned(), *quantity))
                .collect(),
            items,
            now_us,
        };
        // The partition's writer sends it with whatever else arrived meanwhile (one EVALSHA).
        let verdict = self.inner.ingest_writers.submit(p, request).await?;
        match verdict {
            ScriptVerdict::Stored { added } => Ok(IngestOutcome::Accepted {
                partition: p,
                added,
                ids: envelopes.iter().map(|e| e.id.clone()).collect(),
            }),
            ScriptVerdict::Full { depth } => Ok(IngestOutcome::Full {
                partition: p,
                depth,
                cap,
            }),
            ScriptVerdict::Rated { tenant, tat_seen } => {
                let protocol = |detail: &str| StoreError::Protocol {
                    op: "ingest",
                    detail: detail.to_owned(),
                };
                let (tenant, quantity) = tenants
                    .get(tenant)
                    .ok_or_else(|| protocol("refusing tenant out of range"))?;
                let verdict = gcra(&share, tat_seen, now_us, *quantity);
                if verdict.allowed {
                    return Err(protocol("the script and the engine disagree"));
                }
                Ok(IngestOutcome::RateLimited {
                    tenant: (*tenant).to_owned(),
                    limit: share,
                    verdict,
                })
            }
        }
    }

    async fn forward(
        &self,
        from: &QueueName,
        to: &QueueName,
        requests: &[ForwardRequest],
    ) -> StoreResult<ForwardOutcome> {
        check_forward(requests, self.partitions())?;
        let mut by_partition: Vec<(Vec<&Receipt>, Vec<(&str, Vec<u8>)>)> =
            (0..self.partitions()).map(|_| Default::default()).collect();
        for request in requests {
            let (receipts, items) = &mut by_partition[usize::from(request.receipt.partition)];
            receipts.push(&request.receipt);
            for envelope in &request.envelopes {
                items.push((envelope.id.as_str(), encode_stored(envelope)?));
            }
        }
        let touched: Vec<(usize, Vec<&Receipt>, Vec<(&str, Vec<u8>)>)> = by_partition
            .into_iter()
            .enumerate()
            .filter(|(_, (receipts, _))| !receipts.is_empty())
            .map(|(partition, (receipts, items))| (partition, receipts, items))
            .collect();
        let mut calls = Vec::with_capacity(touched.len());
        let mut counts = Vec::with_capacity(touched.len());
        for (partition, receipts, items) in touched {
            counts.push(receipts.len());
            calls.push(self.enqueue_in(partition as u16, to, items, Some((from, &receipts))));
        }
        let replies = futures::future::try_join_all(calls)
            .await
            .map_err(StoreError::redis("forward"))?;
        let mut outcome = ForwardOutcome::default();
        for (receipts, (added, stale)) in counts.into_iter().zip(replies) {
            outcome.enqueued += added;
            outcome.acked.applied += receipts - stale.len();
            outcome
                .acked
                .stale
                .extend(stale.into_iter().map(EnvelopeId));
        }
        Ok(outcome)
    }

    async fn lease(
        &self,
        queue: &QueueName,
        worker: &WorkerId,
        max: usize,
        lease_for: Duration,
    ) -> StoreResult<Lease> {
        check_batch(max)?;
        let keys = &self.inner.keys;
        let now = self.now_ms();
        let deadline = now.saturating_add(duration_ms(lease_for));
        // At least 64 bytes: Redis keeps a zset of up to 128 members of up to 64 bytes as a
        // listpack, whose every insert and lookup scans it; longer members keep it a hash table.
        let token = format!("{:.<64}", lease_token(worker));
        let partitions = usize::from(self.partitions());
        let start = self.inner.lease_start.fetch_add(1, Ordering::Relaxed) % partitions;
        let mut lease = Lease {
            deadline_ms: deadline,
            ..Lease::default()
        };
        let mut conn = self.conn();
        let mut leased: Vec<(u16, Vec<String>)> = Vec::new();
        let mut taken = 0;
        for offset in 0..partitions {
            if taken >= max {
                break;
            }
            let p = ((start + offset) % partitions) as u16;
            let ids: Vec<String> = scripts()
                .lease
                .key(keys.queue(p, queue))
                .key(keys.leases(p, queue))
                .arg(max - taken)
                .arg(deadline)
                .arg(&token)
                .invoke_async(&mut conn)
                .await
                .map_err(StoreError::redis("lease"))?;
            if !ids.is_empty() {
                taken += ids.len();
                leased.push((p, ids));
            }
        }
        if leased.is_empty() {
            return Ok(lease);
        }
        // Leased to this token now, so the bodies cannot change; if this read fails, the
        // janitor hands the items out again when the lease lapses. One round trip for all.
        let mut pipe = ::redis::pipe();
        for (p, ids) in &leased {
            pipe.cmd("HMGET").arg(keys.bodies(*p)).arg(ids);
        }
        let bodies: Vec<Vec<Value>> = match pipe.query_async(&mut conn).await {
            Ok(bodies) => bodies,
            Err(error) => {
                // Handed back at once, counting no attempt; if that fails too, the janitor does.
                let receipts: Vec<Receipt> = leased
                    .iter()
                    .flat_map(|(p, ids)| {
                        ids.iter().map(|id| Receipt {
                            partition: *p,
                            id: EnvelopeId(id.clone()),
                            token: token.clone(),
                        })
                    })
                    .collect();
                let _ = self.release(queue, &receipts).await;
                return Err(StoreError::redis("lease")(error));
            }
        };
        let mut corrupt = Vec::new();
        for ((p, ids), bodies) in leased.into_iter().zip(bodies) {
            for (id, body) in ids.into_iter().zip(bodies) {
                let receipt = Receipt {
                    partition: p,
                    id: EnvelopeId(id),
                    token: token.clone(),
                };
                // A body that is not even UTF-8 is corrupt like any other undecodable one.
                let decoded = match body {
                    Value::BulkString(bytes) => String::from_utf8(bytes)
                        .map_err(|_| "stored envelope is not UTF-8".to_owned())
                        .and_then(|stored| {
                            let (attempts, replays, json) = split_stored(&stored);
                            decode_envelope(json, attempts, replays)
                        }),
                    _ => decode_envelope("", 0, 0),
                };
                match decoded {
                    Ok(envelope) => lease.items.push(LeasedItem { receipt, envelope }),
                    Err(error) => corrupt.push((receipt, error)),
                }
            }
        }
        lease.dead_lettered_corrupt = settle_corrupt(self, queue, corrupt).await;
        Ok(lease)
    }

    async fn ack(&self, queue: &QueueName, receipts: &[Receipt]) -> StoreResult<ReceiptOutcome> {
        check_batch(receipts.len())?;
        let items = receipts
            .iter()
            .map(|r| (r, String::new(), String::new()))
            .collect();
        self.settle(queue, "ack", None, items).await
    }

    async fn extend(
        &self,
        queue: &QueueName,
        receipts: &[Receipt],
        lease_for: Duration,
    ) -> StoreResult<ReceiptOutcome> {
        check_batch(receipts.len())?;
        let deadline = self.now_ms().saturating_add(duration_ms(lease_for));
        let items = receipts
            .iter()
            .map(|r| (r, String::new(), String::new()))
            .collect();
        self.settle(queue, "extend", Some(deadline), items).await
    }

    async fn schedule_retry(
        &self,
        queue: &QueueName,
        retries: &[RetryRequest],
    ) -> StoreResult<ReceiptOutcome> {
        check_batch(retries.len())?;
        let items = retries
            .iter()
            .map(|r| {
                Ok((
                    &r.receipt,
                    r.due_at_ms.to_string(),
                    encode_envelope(&r.envelope)?,
                ))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        self.settle(queue, "retry", None, items).await
    }

    async fn defer(
        &self,
        queue: &QueueName,
        receipts: &[Receipt],
        due_at_ms: i64,
    ) -> StoreResult<ReceiptOutcome> {
        check_batch(receipts.len())?;
        let items = receipts
            .iter()
            .map(|r| (r, due_at_ms.to_string(), String::new()))
            .collect();
        self.settle(queue, "defer", None, items).await
    }

    async fn release(
        &self,
        queue: &QueueName,
        receipts: &[Receipt],
    ) -> StoreResult<ReceiptOutcome> {
        check_batch(receipts.len())?;
        // Pushed to the front last-first, so the batch keeps its order.
        let items = receipts
            .iter()
            .rev()
            .map(|r| (r, String::new(), String::new()))
            .collect();
        self.settle(queue, "release", None, items).await
    }

    async fn promote_due(&self, queue: &QueueName, max: usize) -> StoreResult<usize> {
        self.move_due(queue, max, MoveDue::Promote).await
    }

    async fn dead_letter(
        &self,
        queue: &QueueName,
        requests: &[DeadLetterRequest],
    ) -> StoreResult<ReceiptOutcome> {
        check_batch(requests.len())?;
        let now = self.now_ms();
        let items = requests
            .iter()
            .map(|r| {
                let meta = dlq_meta_for(queue, r, now);
                Ok((
                    &r.receipt,
                    meta.key.clone(),
                    encode_json("DLQ metadata", &meta)?,
                ))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        self.settle(queue, "dlq", None, items).await
    }

    async fn recover_expired(&self, queue: &QueueName, max: usize) -> StoreResult<usize> {
        self.move_due(queue, max, MoveDue::Recover).await
    }

    async fn failed_count(
        &self,
        queue: &QueueName,
        set: FailedSet,
        filter: &DlqFilter,
    ) -> StoreResult<u64> {
        let keys = &self.inner.keys;
        let mut conn = self.conn();
        let set_key = |p: u16| match set {
            FailedSet::Dlq => keys.dlq(p, queue),
            FailedSet::Dead => keys.dead(p, queue),
        };
        if !filter.has_field_filters() {
            // Every partition's count in one round trip.
            let (lower, upper) = DlqCursor::start().lex_bounds(filter);
            let mut pipe = ::redis::pipe();
            for p in 0..self.partitions() {
                pipe.cmd("ZLEXCOUNT")
                    .arg(set_key(p))
                    .arg(&lower)
                    .arg(&upper);
            }
            let counts: Vec<u64> = pipe
                .query_async(&mut conn)
                .await
                .map_err(StoreError::redis("dlq count"))?;
            return Ok(counts.into_iter().sum());
        }
        let mut total = 0u64;
        let mut from = Some(DlqCursor::start());
        while let Some(cursor) = from {
            let step = self
                .failed_step(queue, set, &Step::new("count", filter, &cursor))
                .await?;
            total += step.moved as u64;
            from = next_after_step(&cursor, step.done, step.last, self.partitions());
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
        page_across_partitions(self.partitions(), cursor, limit, |from, want| async move {
            let args = Step {
                max_hits: want,
                ..Step::new("page", filter, &from)
            };
            let step = self.failed_step(queue, set, &args).await?;
            Ok((step.entries, step.done, step.last))
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
        let mut found: Vec<DlqEntry> = Vec::new();
        if ids.is_empty() {
            return Ok(found);
        }
        let filter = DlqFilter::default();
        for partition in 0..self.partitions() {
            let from = DlqCursor::start().at(partition, String::new());
            let args = Step {
                max_hits: ids.len(),
                ids: Some(ids),
                ..Step::new("page", &filter, &from)
            };
            let step = self.failed_step(queue, set, &args).await?;
            found.extend(step.entries);
        }
        found.sort_by_key(|e| ids.iter().position(|id| *id == e.meta.id));
        found.dedup_by(|a, b| a.meta.id == b.meta.id);
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
        if cursor.partition >= self.partitions() {
            return Ok(GroupStep::default());
        }
        let args = Step {
            max_hits: GROUP_SCAN_BUDGET,
            budget: GROUP_SCAN_BUDGET,
            bucket_ms,
            ..Step::new("groups", filter, cursor)
        };
        let step = self.failed_step(queue, set, &args).await?;
        Ok(GroupStep {
            groups: step.groups,
            examined: step.examined as u64,
            next: next_after_step(cursor, step.done, step.last, self.partitions()),
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
        self.failed_batch(queue, from, "replay", scope, options)
            .await
    }

    async fn purge(
        &self,
        queue: &QueueName,
        set: FailedSet,
        scope: &DlqScope,
        max_items: usize,
    ) -> StoreResult<BatchResult> {
        self.failed_move(queue, set, "purge", scope, max_items)
            .await
    }

    async fn bury(
        &self,
        queue: &QueueName,
        scope: &DlqScope,
        max_items: usize,
    ) -> StoreResult<BatchResult> {
        self.failed_move(queue, FailedSet::Dlq, "bury", scope, max_items)
            .await
    }

    async fn set_flag(&self, flag: &Flag, state: Option<&FlagState>) -> StoreResult<()> {
        let name = flag.name();
        let mut conn = self.conn();
        match state {
            Some(value) => {
                let json = encode_json("flag", value)?;
                let _: i64 = conn
                    .hset(self.inner.keys.flags(), &name, json)
                    .await
                    .map_err(StoreError::redis("set flag"))?;
            }
            None => {
                let _: i64 = conn
                    .hdel(self.inner.keys.flags(), &name)
                    .await
                    .map_err(StoreError::redis("clear flag"))?;
            }
        }
        self.publish(&Update::Flag(name)).await
    }

    async fn clear_flag_if(&self, flag: &Flag, expected: &FlagState) -> StoreResult<bool> {
        let name = flag.name();
        let json = encode_json("flag", expected)?;
        let mut conn = self.conn();
        let cleared: i64 = scripts()
            .flag_cad
            .key(self.inner.keys.flags())
            .arg(&name)
            .arg(json)
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::redis("clear flag"))?;
        if cleared == 1 {
            self.publish(&Update::Flag(name)).await?;
        }
        Ok(cleared == 1)
    }

    async fn flags(&self) -> StoreResult<Vec<(String, FlagState)>> {
        let mut conn = self.conn();
        let raw: Vec<(String, String)> = conn
            .hgetall(self.inner.keys.flags())
            .await
            .map_err(StoreError::redis("flags"))?;
        Ok(decode_flags(raw))
    }

    async fn config_set(&self, key: &str, value: Option<&str>) -> StoreResult<()> {
        let mut conn = self.conn();
        match value {
            Some(v) => {
                let _: i64 = conn
                    .hset(self.inner.keys.config(), key, v)
                    .await
                    .map_err(StoreError::redis("config set"))?;
            }
            None => {
                let _: i64 = conn
                    .hdel(self.inner.keys.config(), key)
                    .await
                    .map_err(StoreError::redis("config delete"))?;
            }
        }
        self.publish(&Update::Config(key.to_owned())).await
    }

    async fn test_result_put(&self, id: &str, result: &TestDelivery) -> StoreResult<()> {
        let json = serde_json::to_string(result).map_err(|e| StoreError::Protocol {
            op: "test result",
            detail: e.to_string(),
        })?;
        let mut conn = self.conn();
        conn.pset_ex::<_, _, ()>(
            self.inner.keys.test_result(id),
            json,
            super::TEST_RESULT_TTL_MS.unsigned_abs(),
        )
        .await
        .map_err(StoreError::redis("test result put"))
    }

    async fn test_result_get(&self, id: &str) -> StoreResult<Option<TestDelivery>> {
        let mut conn = self.conn();
        let raw: Option<String> = conn
            .get(self.inner.keys.test_result(id))
            .await
            .map_err(StoreError::redis("test result get"))?;
        raw.map(|raw| {
            serde_json::from_str(&raw).map_err(|e| StoreError::Protocol {
                op: "test result",
                detail: e.to_string(),
            })
        })
        .transpose()
    }

    async fn scheduled_entries(
        &self,
        queue: &QueueName,
        max_per_partition: usize,
    ) -> StoreResult<Vec<Envelope>> {
        let keys = &self.inner.keys;
        let mut pipe = ::redis::pipe();
        for p in 0..self.partitions() {
            pipe.cmd("EVAL")
                .arg(SCHEDULED_BODIES_SCRIPT)
                .arg(2)
                .arg(keys.scheduled(p, queue))
                .arg(keys.bodies(p))
                .arg(max_per_partition.clamp(1, SEEN_READ_MAX));
        }
        let mut conn = self.conn();
        let replies: Vec<Vec<Option<String>>> = pipe
            .query_async(&mut conn)
            .await
            .map_err(StoreError::redis("scheduled entries"))?;
        Ok(replies
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|stored| {
                let (attempts, replays, json) = split_stored(&stored);
                decode_envelope(json, attempts, replays).ok()
            })
            .collect())
    }

    async fn group_load(&self, id: &str) -> StoreResult<Option<(u64, GroupState)>> {
        let mut conn = self.conn();
        let (version, state): (Option<u64>, Option<String>) = ::redis::cmd("HMGET")
            .arg(self.inner.keys.group(id))
            .arg("v")
            .arg("s")
            .query_async(&mut conn)
            .await
            .map_err(StoreError::redis("group load"))?;
        match (version, state) {
            (Some(version), Some(state)) => {
                Ok(Some((version, decode_record("aggregation group", &state)?)))
            }
            _ => Ok(None),
        }
    }

    async fn group_store(&self, id: &str, expected: u64, state: &GroupState) -> StoreResult<bool> {
        let keys = &self.inner.keys;
        let mut conn = self.conn();
        let written: i64 = scripts()
            .group_store
            .key(keys.group(id))
            .key(keys.groups_due(keys.group_partition(id)))
            .arg(expected)
            .arg(encode_json("aggregation group", state)?)
            .arg(state.next_flush_ms)
            .arg(id)
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::redis("group store"))?;
        Ok(written == 1)
    }

    async fn group_delete(&self, id: &str, expected: u64) -> StoreResult<bool> {
        let keys = &self.inner.keys;
        let mut conn = self.conn();
        let deleted: i64 = scripts()
            .group_delete
            .key(keys.group(id))
            .key(keys.groups_due(keys.group_partition(id)))
            .arg(expected)
            .arg(id)
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::redis("group delete"))?;
        Ok(deleted == 1)
    }

    async fn groups_due(&self, max: usize, hold: Duration) -> StoreResult<Vec<String>> {
        let keys = &self.inner.keys;
        let now = self.now_ms();
        let until = now + duration_ms(hold);
        let mut conn = self.conn();
        let mut out = Vec::new();
        for p in 0..self.partitions() {
            if out.len() >= max {
                break;
            }
            let ids: Vec<String> = scripts()
                .groups_due
                .key(keys.groups_due(p))
                .arg(now)
                .arg(until)
                .arg(max - out.len())
                .invoke_async(&mut conn)
                .await
                .map_err(StoreError::redis("groups due"))?;
            out.extend(ids);
        }
        Ok(out)
    }

    async fn groups_summary(&self) -> StoreResult<(u64, Option<i64>)> {
        let keys = &self.inner.keys;
        let mut pipe = ::redis::pipe();
        for p in 0..self.partitions() {
            pipe.zcard(keys.groups_due(p))
                .zrange_withscores(keys.groups_due(p), 0, 0);
        }
        let mut conn = self.conn();
        let replies: Vec<Value> = pipe
            .query_async(&mut conn)
            .await
            .map_err(StoreError::redis("groups summary"))?;
        let mut count = 0;
        let mut soonest: Option<i64> = None;
        for pair in replies.chunks(2) {
            count += ::redis::FromRedisValue::from_redis_value(pair[0].clone()).unwrap_or(0u64);
            let first: Vec<(String, f64)> =
                ::redis::FromRedisValue::from_redis_value(pair[1].clone()).unwrap_or_default();
            if let Some((_, at)) = first.first() {
                let at = *at as i64;
                soonest = Some(soonest.map_or(at, |s| s.min(at)));
            }
        }
        Ok((count, soonest))
    }

    async fn notify_log_get(&self, id: &str) -> StoreResult<Option<NotifyLog>> {
        let mut conn = self.conn();
        let raw: Option<String> = conn
            .get(self.inner.keys.notify_log(id))
            .await
            .map_err(StoreError::redis("notify log get"))?;
        raw.map(|raw| decode_record("notification log", &raw))
            .transpose()
    }

    async fn notify_log_put(&self, id: &str, log: &NotifyLog, ttl_ms: u64) -> StoreResult<()> {
        let mut conn = self.conn();
        conn.pset_ex::<_, _, ()>(
            self.inner.keys.notify_log(id),
            encode_json("notification log", log)?,
            ttl_ms.max(1),
        )
        .await
        .map_err(StoreError::redis("notify log put"))
    }

    async fn silence_put(&self, silence: &Silence) -> StoreResult<()> {
        let keys = &self.inner.keys;
        let json = encode_json("silence", silence)?;
        let mut conn = self.conn();
        ::redis::pipe()
            .atomic()
            .hset(keys.silences(), &silence.id, json)
            .ignore()
            .zadd(keys.silences_by_end(), &silence.id, silence.ends_at_ms)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(StoreError::redis("silence put"))?;
        self.publish(&Update::Silence(silence.id.clone())).await
    }

    async fn silences(&self) -> StoreResult<Vec<Silence>> {
        let mut conn = self.conn();
        let all: Vec<(String, String)> = conn
            .hgetall(self.inner.keys.silences())
            .await
            .map_err(StoreError::redis("silences"))?;
        let mut out = Vec::with_capacity(all.len());
        for (id, raw) in all {
            match decode_record::<Silence>("silence", &raw) {
                Ok(silence) => out.push(silence),
                Err(error) => tracing::warn!(id, %error, "skipping an unreadable silence"),
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn silence_get(&self, id: &str) -> StoreResult<Option<Silence>> {
        let mut conn = self.conn();
        let raw: Option<String> = conn
            .hget(self.inner.keys.silences(), id)
            .await
            .map_err(StoreError::redis("silence get"))?;
        raw.map(|raw| decode_record("silence", &raw)).transpose()
    }

    async fn silences_prune(&self, ended_before_ms: i64) -> StoreResult<usize> {
        let keys = &self.inner.keys;
        self.prune(&keys.silences(), &keys.silences_by_end(), ended_before_ms)
            .await
    }

    async fn alerts_note(&self, alerts: &[SeenAlert]) -> StoreResult<()> {
        if alerts.is_empty() {
            return Ok(());
        }
        let keys = &self.inner.keys;
        // One HSET and one ZADD per partition for the whole batch (each command costs Redis
        // more than a field of it); a fingerprint named twice keeps its last record.
        let mut by_partition: BTreeMap<u16, SeenRecords<'_>> = BTreeMap::new();
        for alert in alerts {
            let partition = keys.alert_partition(&alert.fingerprint);
            let (records, times) = by_partition.entry(partition).or_default();
            records.push((&alert.fingerprint, encode_json("seen alert", alert)?));
            times.push((alert.last_seen_ms, &alert.fingerprint));
        }
        let mut pipe = ::redis::pipe();
        for (partition, (records, times)) in &by_partition {
            pipe.hset_multiple(keys.seen_alerts(*partition), records)
                .ignore()
                .zadd_multiple(keys.seen_alerts_by_time(*partition), times)
                .ignore();
        }
        let mut conn = self.conn();
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(StoreError::redis("alerts note"))
    }

    async fn alerts_seen(&self, since_ms: i64, limit: usize) -> StoreResult<Vec<SeenAlert>> {
        let keys = &self.inner.keys;
        let mut pipe = ::redis::pipe();
        for p in 0..self.partitions() {
            pipe.cmd("EVAL")
                .arg(SEEN_SCRIPT)
                .arg(2)
                .arg(keys.seen_alerts(p))
                .arg(keys.seen_alerts_by_time(p))
                .arg(since_ms)
                .arg(limit.min(SEEN_READ_MAX));
        }
        let mut conn = self.conn();
        let replies: Vec<Vec<Option<String>>> = pipe
            .query_async(&mut conn)
            .await
            .map_err(StoreError::redis("alerts seen"))?;
        let mut out: Vec<SeenAlert> = replies
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|raw| decode_record("seen alert", &raw).ok())
            .collect();
        newest_first(&mut out);
        Ok(out)
    }

    async fn alerts_prune(&self, seen_before_ms: i64) -> StoreResult<usize> {
        let keys = &self.inner.keys;
        let mut pruned = 0;
        for p in 0..self.partitions() {
            pruned += self
                .prune(
                    &keys.seen_alerts(p),
                    &keys.seen_alerts_by_time(p),
                    seen_before_ms,
                )
                .await?;
        }
        Ok(pruned)
    }

    async fn config_get(&self, key: &str) -> StoreResult<Option<String>> {
        let mut conn = self.conn();
        conn.hget(self.inner.keys.config(), key)
            .await
            .map_err(StoreError::redis("config get"))
    }

    async fn config_all(&self) -> StoreResult<Vec<(String, String)>> {
        let mut conn = self.conn();
        let mut all: Vec<(String, String)> = conn
            .hgetall(self.inner.keys.config())
            .await
            .map_err(StoreError::redis("config all"))?;
        all.sort();
        Ok(all)
    }

    async fn subscribe(&self) -> StoreResult<broadcast::Receiver<Update>> {
        let receiver = self.updates_sender().subscribe();
        // Changes are only seen once our own listener is subscribed: wait for it.
        let wait = Duration::from_secs(2);
        let mut ready = self.inner.listening.subscribe();
        match tokio::time::timeout(wait, ready.wait_for(|listening| *listening)).await {
            Ok(Ok(_)) => Ok(receiver),
            _ => Err(StoreError::Timeout {
                op: "subscribe",
                timeout: wait,
            }),
        }
    }

    async fn audit_append(&self, record: &AuditRecord) -> StoreResult<String> {
        audit_append_to(
            &mut self.conn(),
            &self.inner.keys.audit(),
            AUDIT_MAX_LEN,
            record,
        )
        .await
    }

    async fn audit_recent(&self, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        audit_recent_from(&mut self.conn(), &self.inner.keys.audit(), limit).await
    }

    async fn stats(&self, queues: &[QueueName]) -> StoreResult<StoreStats> {
        let now = self.now_ms();
        let mut pipe = ::redis::pipe();
        self.queue_stats_commands(&mut pipe, queues);
        pipe.hgetall(self.inner.keys.flags());
        let mut conn = self.conn();
        let replies: Vec<Value> = pipe
            .query_async(&mut conn)
            .await
            .map_err(StoreError::redis("stats"))?;
        let mut replies = replies.into_iter();
        Ok(self.decode_stats(&mut replies, queues, now))
    }

    async fn control_read(
        &self,
        queues: &[QueueName],
        audit_limit: usize,
    ) -> StoreResult<ControlRead> {
        let keys = &self.inner.keys;
        let now = self.now_ms();
        let mut pipe = ::redis::pipe();
        self.queue_stats_commands(&mut pipe, queues);
        pipe.hgetall(keys.flags())
            .hgetall(keys.breakers())
            .hgetall(keys.config())
            .hgetall(keys.workers());
        pipe.add_command(audit_read_cmd(&keys.audit(), audit_limit.max(1)));
        pipe.hgetall(keys.silences());
        for p in 0..self.partitions() {
            pipe.cmd("EVAL")
                .arg(SEEN_SCRIPT)
                .arg(2)
                .arg(keys.seen_alerts(p))
                .arg(keys.seen_alerts_by_time(p))
                .arg(now - crate::model::SEEN_RETENTION_MS)
                .arg(super::CONTROL_ALERTS);
        }
        let mut conn = self.conn();
        let replies: Vec<Value> = pipe
            .query_async(&mut conn)
            .await
            .map_err(StoreError::redis("control read"))?;
        let mut replies = replies.into_iter();
        let stats = self.decode_stats(&mut replies, queues, now);
        let mut pairs = || -> Vec<(String, String)> {
            replies
                .next()
                .and_then(|v| ::redis::FromRedisValue::from_redis_value(v).ok())
                .unwrap_or_default()
        };
        let mut breakers = decode_json_pairs("breaker", pairs());
        breakers.sort_by(|a, b| a.0.cmp(&b.0));
        let mut config = pairs();
        config.sort();
        let mut workers = decode_json_pairs("heartbeat", pairs());
        workers.sort_by(|a, b| a.0.cmp(&b.0));
        let audit = replies
            .next()
            .and_then(|v| {
                ::redis::FromRedisValue::from_redis_value(v)
                    .ok()
                    .map(decode_audit)
            })
            .unwrap_or_default();
        let silence_pairs: Vec<(String, String)> = replies
            .next()
            .and_then(|v| ::redis::FromRedisValue::from_redis_value(v).ok())
            .unwrap_or_default();
        let mut silences: Vec<Silence> = silence_pairs
            .into_iter()
            .filter_map(|(_, raw)| decode_record("silence", &raw).ok())
            .collect();
        silences.sort_by(|a, b| a.id.cmp(&b.id));
        let mut alerts: Vec<SeenAlert> = replies
            .filter_map(|v| {
                ::redis::FromRedisValue::from_redis_value(v)
                    .ok()
                    .map(|raws: Vec<Option<String>>| raws)
            })
            .flatten()
            .flatten()
            .filter_map(|raw| decode_record("seen alert", &raw).ok())
            .collect();
        newest_first(&mut alerts);
        Ok(ControlRead {
            stats,
            breakers,
            config,
            workers,
            audit: audit.into_iter().take(audit_limit).collect(),
            silences,
            alerts,
        })
    }

    async fn beat(&self, worker: &str, beat: Option<&WorkerBeat>) -> StoreResult<()> {
        let key = self.inner.keys.workers();
        let mut conn = self.conn();
        match beat {
            Some(beat) => {
                let json = encode_json("heartbeat", beat)?;
                let _: i64 = conn
                    .hset(key, worker, json)
                    .await
                    .map_err(StoreError::redis("heartbeat"))?;
            }
            None => {
                let _: i64 = conn
                    .hdel(key, worker)
                    .await
                    .map_err(StoreError::redis("heartbeat"))?;
            }
        }
        Ok(())
    }

    async fn dedup_claim(
        &self,
        owner: &str,
        keys: &[String],
        hold: Duration,
    ) -> StoreResult<Vec<DedupClaim>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let schema = &self.inner.keys;
        let now = self.now_ms();
        let hold_ms = duration_ms(hold).max(1);
        let claim = format!("sending:{}:{owner}", now.saturating_add(hold_ms));
        // The common case costs one SET per key: NX claims an absent record, GET shows a present one.
        let mut pipe = ::redis::pipe();
        for key in keys {
            pipe.cmd("SET")
                .arg(schema.dedup_record(key))
                .arg(&claim)
                .arg("NX")
                .arg("PX")
                .arg(hold_ms.saturating_add(DEDUP_GRACE_MS))
                .arg("GET");
        }
        let mut conn = self.conn();
        let previous: Vec<Option<String>> = pipe
            .query_async(&mut conn)
            .await
            .map_err(StoreError::redis("dedup claim"))?;
        let mut answers = Vec::with_capacity(keys.len());
        let mut lapsed = Vec::new();
        for (index, (key, previous)) in keys.iter().zip(&previous).enumerate() {
            let answer = match previous.as_deref().map(|v| live_record(v, now)) {
                None => DedupClaim::Claimed,
                Some(Some(("done", _))) => DedupClaim::AlreadyDone,
                Some(Some(_)) => DedupClaim::InFlight,
                Some(None) => {
                    lapsed.push((index, key.as_str(), "take", hold_ms));
                    DedupClaim::InFlight
                }
            };
            answers.push(answer);
        }
        // A lapsed record is taken over by compare-and-set, so two claimers cannot both win.
        if !lapsed.is_empty() {
            for (index, answer) in self.dedup_cas(owner, now, lapsed).await? {
                answers[index] = match answer.as_str() {
                    "claimed" => DedupClaim::Claimed,
                    "done" => DedupClaim::AlreadyDone,
                    _ => DedupClaim::InFlight,
                };
            }
        }
        Ok(answers)
    }

    async fn dedup_finish(
        &self,
        owner: &str,
        outcomes: &[(String, DedupFinish)],
    ) -> StoreResult<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let now = self.now_ms();
        let ops: Vec<DedupOp<'_>> = outcomes
            .iter()
            .enumerate()
            .map(|(index, (key, outcome))| match outcome {
                DedupFinish::Done(ttl) => (index, key.as_str(), "done", duration_ms(*ttl).max(1)),
                DedupFinish::Release => (index, key.as_str(), "release", 0),
                DedupFinish::Hold(hold) => (index, key.as_str(), "hold", duration_ms(*hold).max(1)),
            })
            .collect();
        // Successes alone (the common case) are plain SETs: a success overwrites whatever is
        // there, as the send happened. Any guarded op sends the whole call through the script,
        // which applies it in order.
        if ops.iter().any(|op| op.2 != "done") {
            return self.dedup_cas(owner, now, ops).await.map(drop);
        }
        let schema = &self.inner.keys;
        let mut pipe = ::redis::pipe();
        for (_, key, _, ttl_ms) in &ops {
            pipe.cmd("SET")
                .arg(schema.dedup_record(key))
                .arg(format!("done:{}", now.saturating_add(*ttl_ms)))
                .arg("PX")
                .arg(ttl_ms.saturating_add(DEDUP_GRACE_MS))
                .ignore();
        }
        let mut conn = self.conn();
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(StoreError::redis("dedup finish"))
    }

    async fn rate_limit(
        &self,
        name: &str,
        limit: &RateLimit,
        quantity: u32,
    ) -> StoreResult<Verdict> {
        let now_us = self.now_ms().saturating_mul(1000);
        let t = limit.emission_interval_us();
        let tau = t.saturating_mul(i64::from(limit.burst.max(1)));
        let mut conn = self.conn();
        let (allowed, stored): (i64, String) = scripts()
            .gcra
            .key(self.inner.keys.rate_limit(name))
            .arg(now_us)
            .arg(t)
            .arg(tau)
            .arg(quantity)
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::redis("rate limit"))?;
        let verdict = gcra(limit, stored.parse().ok(), now_us, quantity);
        if verdict.allowed != (allowed == 1) {
            return Err(StoreError::Protocol {
                op: "rate limit",
                detail: "the script and the engine disagree".to_owned(),
            });
        }
        Ok(verdict)
    }

    async fn breaker_load(&self, name: &str) -> StoreResult<Option<(u64, Breaker)>> {
        let keys = &self.inner.keys;
        let mut conn = self.conn();
        let (json, version): (Option<String>, Option<u64>) = ::redis::pipe()
            .hget(keys.breakers(), name)
            .hget(keys.breaker_versions(), name)
            .query_async(&mut conn)
            .await
            .map_err(StoreError::redis("breaker load"))?;
        match (json, version) {
            (Some(json), Some(version)) => {
                let breaker = serde_json::from_str(&json).map_err(|e| StoreError::Protocol {
                    op: "breaker load",
                    detail: format!("breaker {name} does not decode: {e}"),
                })?;
                Ok(Some((version, breaker)))
            }
            _ => Ok(None),
        }
    }

    async fn breaker_store(
        &self,
        name: &str,
        expected: u64,
        breaker: &Breaker,
    ) -> StoreResult<bool> {
        let keys = &self.inner.keys;
        let json = encode_json("breaker", breaker)?;
        let mut conn = self.conn();
        let stored: i64 = scripts()
            .breaker_cas
            .key(keys.breakers())
            .key(keys.breaker_versions())
            .arg(name)
            .arg(expected)
            .arg(json)
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::redis("breaker store"))?;
        Ok(stored == 1)
    }

    async fn breakers(&self) -> StoreResult<Vec<(String, Breaker)>> {
        let mut conn = self.conn();
        let raw: Vec<(String, String)> = conn
            .hgetall(self.inner.keys.breakers())
            .await
            .map_err(StoreError::redis("breakers"))?;
        let mut out = decode_json_pairs("breaker", raw);
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

/// Refuse a server older than 7.0, which lacks `SET … NX GET` and `ZMSCORE`, with the reason
/// rather than a syntax error on the first delivery. A server that hides INFO is trusted.
/// Warns when Redis may evict keys: queues and idempotency records must never vanish.
/// A connection manager for `url`, connected within the connect timeout's budget.
pub(crate) async fn connect_manager(
    url: &str,
    response_timeout: Duration,
    connect_timeout: Duration,
) -> StoreResult<ConnectionManager> {
    let client = Client::open(url).map_err(StoreError::redis("open"))?;
    connect_client(&client, response_timeout, connect_timeout).await
}

async fn connect_client(
    client: &Client,
    response_timeout: Duration,
    connect_timeout: Duration,
) -> StoreResult<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(response_timeout))
        .set_connection_timeout(Some(connect_timeout))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(1));
    let connect = ConnectionManager::new_with_config(client.clone(), config);
    let budget = connect_timeout * 4;
    tokio::time::timeout(budget, connect)
        .await
        .map_err(|_| StoreError::Timeout {
            op: "connect",
            timeout: budget,
        })?
        .map_err(StoreError::redis("connect"))
}

pub(crate) async fn check_server(conn: &mut Conn) -> StoreResult<()> {
    // A server that wants a password accepts the connection and refuses every command after.
    if let Err(error) = ::redis::cmd("PING").query_async::<String>(conn).await {
        let refused = matches!(error.code(), Some("NOAUTH" | "WRONGPASS" | "NOPERM"))
            || error.kind() == ::redis::ErrorKind::AuthenticationFailed;
        return Err(if refused {
            StoreError::Invalid(format!(
                "the server refused the credentials ({error}): put them in the URL, \
                 redis://USER:PASSWORD@host:port/"
            ))
        } else {
            StoreError::redis("ping")(error)
        });
    }
    if !conn.is_cluster() {
        let cluster: String = ::redis::cmd("INFO")
            .arg("cluster")
            .query_async(conn)
            .await
            .unwrap_or_default();
        if cluster.contains("cluster_enabled:1") {
            return Err(StoreError::Invalid(
                "the server is a node of a Redis Cluster: name the cluster's seed nodes, \
                 redis+cluster://host:port[,host:port]"
                    .to_owned(),
            ));
        }
    }
    let mut info = ::redis::cmd("INFO");
    info.arg("server");
    match conn.on_every_primary(info).await {
        Ok(replies) => {
            for (node, reply) in replies {
                let info: String = ::redis::from_redis_value(reply).unwrap_or_default();
                if let Some(version) = too_old(&info) {
                    let at = if node.is_empty() {
                        String::new()
                    } else {
                        format!(" at {node}")
                    };
                    return Err(StoreError::Invalid(format!(
                        "Ward needs Redis 7.0 or newer; the server{at} reports version {version:?}"
                    )));
                }
            }
        }
        Err(error) => tracing::warn!(%error, "could not read the Redis version"),
    }
    let mut policy = ::redis::cmd("CONFIG");
    policy.arg("GET").arg("maxmemory-policy");
    for (node, reply) in conn.on_every_primary(policy).await.unwrap_or_default() {
        let pair: Vec<String> = ::redis::from_redis_value(reply).unwrap_or_default();
        if let Some(policy) = pair.get(1)
            && policy != "noeviction"
        {
            tracing::warn!(
                policy,
                node,
                "Redis may evict keys under memory pressure (maxmemory-policy); set noeviction, \
                 or queued alerts and idempotency records can vanish"
            );
        }
    }
    Ok(())
}

/// The layout of Ward's data that this build reads and writes.
const LAYOUT: &str = "2";

/// Refuse a key prefix written by a build with another layout, and mark an unmarked one with
/// this layout. Reads first, so attaching to a marked deployment (or a replica) writes nothing.
async fn check_layout(conn: &mut Conn, keys: &KeySchema, claim: bool) -> StoreResult<()> {
    let key = keys.layout();
    let mut found: Option<String> = conn.get(&key).await.map_err(StoreError::redis("layout"))?;
    if found.is_none() && !claim {
        // Nothing written yet: nothing to disagree with, and an observer writes nothing.
        return Ok(());
    }
    if found.is_none() {
        let claimed: Result<Option<String>, _> = ::redis::cmd("SET")
            .arg(&key)
            .arg(LAYOUT)
            .arg("NX")
            .arg("GET")
            .query_async(conn)
            .await;
        found = match claimed {
            // SET … NX GET answers what was there: nothing, so ours now, or a racing build's.
            Ok(previous) => previous.or_else(|| Some(LAYOUT.to_owned())),
            Err(error) => {
                tracing::warn!(%error, "could not mark the data layout");
                Some(LAYOUT.to_owned())
            }
        };
    }
    match found.as_deref() {
        Some(LAYOUT) => Ok(()),
        other => Err(StoreError::Invalid(format!(
            "the data under {key} is in layout {other:?} and this build uses {LAYOUT:?}: drain the \
             queues with the build that wrote them, or use another key prefix"
        ))),
    }
}

/// The version an INFO reply reports, if it is older than 7.0.
fn too_old(info: &str) -> Option<&str> {
    let version = info
        .lines()
        .find_map(|line| line.strip_prefix("redis_version:"))?
        .trim();
    let major: u32 = version.split('.').next()?.parse().ok()?;
    (major < 7).then_some(version)
}

/// How much longer Redis keeps an idempotency record than its expiry by the workers' clock,
/// so clock skew between a worker and Redis cannot drop a live record.
const DEDUP_GRACE_MS: i64 = 60_000;

/// State and holder of a record that has not expired by `now`; `None` if it lapsed or is unreadable.
fn live_record(record: &str, now: i64) -> Option<(&str, &str)> {
    let (state, rest) = record.split_once(':')?;
    let (expiry, holder) = rest.split_once(':').unwrap_or((rest, ""));
    (expiry.parse::<i64>().ok()? > now).then_some((state, holder))
}

impl RedisStore {
    /// Compare-and-set record operations (take, hold, release): one script call per partition
    /// and 500 records, sent together on the multiplexed connection. Answers come back with the
    /// index each op carried.
    async fn dedup_cas(
        &self,
        owner: &str,
        now: i64,
        ops: Vec<DedupOp<'_>>,
    ) -> StoreResult<Vec<(usize, String)>> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let keys = &self.inner.keys;
        let mut by_partition: BTreeMap<u16, Vec<DedupOp<'_>>> = BTreeMap::new();
        for op in ops {
            by_partition
                .entry(keys.dedup_partition(op.1))
                .or_default()
                .push(op);
        }
        let calls: Vec<&[DedupOp<'_>]> = by_partition
            .values()
            .flat_map(|group| group.chunks(MAX_BATCH))
            .collect();
        let replies: Vec<Vec<String>> = futures::future::try_join_all(calls.iter().map(|group| {
            let mut invocation = scripts().dedup.prepare_invoke();
            invocation.arg(now).arg(owner).arg(DEDUP_GRACE_MS);
            for (_, key, op, span_ms) in *group {
                invocation
                    .key(keys.dedup_record(key))
                    .arg(*op)
                    .arg(*span_ms);
            }
            let mut conn = self.conn();
            async move { invocation.invoke_async(&mut conn).await }
        }))
        .await
        .map_err(StoreError::redis("dedup"))?;
        Ok(calls
            .iter()
            .zip(replies)
            .flat_map(|(group, reply)| group.iter().map(|op| op.0).zip(reply))
            .collect())
    }
}

/// One compare-and-set record operation: its place in the answer, key, op and duration (ms).
type DedupOp<'k> = (usize, &'k str, &'static str, i64);

#[derive(Clone, Copy)]
enum MoveDue {
    /// Due retries back to the end of their queue.
    Promote,
    /// Expired leases back to the front of their queue, an attempt counted.
    Recover,
}

impl RedisStore {
    async fn move_due(&self, queue: &QueueName, max: usize, what: MoveDue) -> StoreResult<usize> {
        check_batch(max)?;
        let now = self.now_ms();
        let keys = &self.inner.keys;
        let mut conn = self.conn();
        let mut moved = 0;
        for p in 0..self.partitions() {
            if moved >= max {
                break;
            }
            let (source, mode) = match what {
                MoveDue::Promote => (keys.scheduled(p, queue), "promote"),
                MoveDue::Recover => (keys.leases(p, queue), "recover"),
            };
            let n: usize = scripts()
                .move_due
                .key(source)
                .key(keys.queue(p, queue))
                .key(keys.bodies(p))
                .arg(now)
                .arg(max - moved)
                .arg(mode)
                .invoke_async(&mut conn)
                .await
                .map_err(StoreError::redis(mode))?;
            moved += n;
        }
        Ok(moved)
    }
}

/// A stored body: the store-owned counters in front of the envelope JSON, so one hash field
/// carries an item and the scripts count attempts and replays without a second structure.
/// One partition's seen alerts of a batch: (fingerprint, record) and (last seen ms, fingerprint).
type SeenRecords<'a> = (Vec<(&'a str, String)>, Vec<(i64, &'a str)>);

fn encode_stored(envelope: &Envelope) -> StoreResult<Vec<u8>> {
    let mut stored = Vec::with_capacity(512);
    stored.extend_from_slice(b"0:0:");
    serde_json::to_writer(&mut stored, envelope).map_err(|source| StoreError::Encode {
        what: "envelope",
        source,
    })?;
    Ok(stored)
}

/// Attempts, replays and JSON of a stored body; text without the counters is all JSON.
fn split_stored(stored: &str) -> (u32, u32, &str) {
    let mut parts = stored.splitn(3, ':');
    if let (Some(a), Some(r), Some(json)) = (parts.next(), parts.next(), parts.next())
        && let (Ok(attempts), Ok(replays)) = (a.parse(), r.parse())
    {
        return (attempts, replays, json);
    }
    (0, 0, stored)
}

/// The leases-zset member of one lease: its token fences it, its id names the item.
fn lease_member(token: &str, id: &EnvelopeId) -> String {
    format!("{token}|{}", id.as_str())
}

fn decode_flags(raw: Vec<(String, String)>) -> Vec<(String, FlagState)> {
    let mut flags = decode_json_pairs("flag", raw);
    flags.sort_by(|a, b| a.0.cmp(&b.0));
    flags
}

/// Append one record to an audit stream kept near `max_len` records; returns its id.
pub(crate) async fn audit_append_to(
    conn: &mut (impl ConnectionLike + Send),
    key: &str,
    max_len: usize,
    record: &AuditRecord,
) -> StoreResult<String> {
    let json = encode_json("audit record", record)?;
    ::redis::cmd("XADD")
        .arg(key)
        .arg("MAXLEN")
        .arg("~")
        .arg(max_len)
        .arg("*")
        .arg("r")
        .arg(json)
        .query_async(conn)
        .await
        .map_err(StoreError::redis("audit append"))
}

/// The newest `limit` records of an audit stream, newest first (for a pipeline).
pub(crate) fn audit_read_cmd(key: &str, limit: usize) -> ::redis::Cmd {
    let mut cmd = ::redis::cmd("XREVRANGE");
    cmd.arg(key).arg("+").arg("-").arg("COUNT").arg(limit);
    cmd
}

/// The newest `limit` records of an audit stream, newest first.
pub(crate) async fn audit_recent_from(
    conn: &mut (impl ConnectionLike + Send),
    key: &str,
    limit: usize,
) -> StoreResult<Vec<AuditEntry>> {
    let reply: ::redis::streams::StreamRangeReply = audit_read_cmd(key, limit)
        .query_async(conn)
        .await
        .map_err(StoreError::redis("audit read"))?;
    Ok(decode_audit(reply))
}

/// Audit records as XREVRANGE returns them, skipping (and logging) unreadable ones.
pub(crate) fn decode_audit(reply: ::redis::streams::StreamRangeReply) -> Vec<AuditEntry> {
    reply
        .ids
        .into_iter()
        .filter_map(|entry| {
            let raw: String = entry.get("r")?;
            match serde_json::from_str(&raw) {
                Ok(record) => Some(AuditEntry {
                    id: entry.id,
                    record,
                }),
                Err(error) => {
                    tracing::warn!(id = entry.id, %error, "skipping unreadable audit record");
                    None
                }
            }
        })
        .collect()
}

/// A hash of JSON values, skipping (and logging) the ones that do not decode.
fn decode_json_pairs<T: serde::de::DeserializeOwned>(
    what: &'static str,
    raw: Vec<(String, String)>,
) -> Vec<(String, T)> {
    raw.into_iter()
        .filter_map(|(name, json)| match serde_json::from_str(&json) {
            Ok(value) => Some((name, value)),
            Err(error) => {
                tracing::warn!(name, %error, "ignoring an unreadable {what}");
                None
            }
        })
        .collect()
}

const _: () = assert!(MAX_BATCH <= 500);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_bodies_carry_their_counters_in_front() {
        let envelope = Envelope::new("t", serde_json::json!({"a": 1}), 0);
        let stored = String::from_utf8(encode_stored(&envelope).unwrap()).unwrap();
        let (attempts, replays, json) = split_stored(&stored);
        assert_eq!((attempts, replays), (0, 0));
        assert_eq!(decode_envelope(json, 3, 1).unwrap().id, envelope.id);
        assert_eq!(split_stored("12:4:{}"), (12, 4, "{}"));
        // Text without counters (put there by hand, or corrupt) is all JSON, to be reported.
        assert_eq!(split_stored("{\"x\":1}"), (0, 0, "{\"x\":1}"));
        assert_eq!(split_stored("1:x:{}"), (0, 0, "1:x:{}"));
        assert_eq!(split_stored(""), (0, 0, ""));
    }

    #[test]
    fn servers_older_than_7_are_named() {
        assert_eq!(
            too_old("# Server\r\nredis_version:6.2.14\r\n"),
            Some("6.2.14")
        );
        assert_eq!(
            too_old("redis_version:7.0.15\r\nredis_mode:standalone"),
            None
        );
        assert_eq!(too_old("redis_version:8.0.2"), None);
        assert_eq!(too_old("no version here"), None);
    }

    #[test]
    fn dedup_records_are_live_until_their_expiry() {
        assert_eq!(live_record("done:2000", 1999), Some(("done", "")));
        assert_eq!(live_record("done:2000", 2000), None);
        assert_eq!(
            live_record("sending:5000:w1#ab", 10),
            Some(("sending", "w1#ab"))
        );
        assert_eq!(live_record("garbage", 0), None);
        assert_eq!(live_record("done:soon", 0), None);
    }
}
