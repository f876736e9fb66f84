//! The production store: Redis, one server or a Cluster (see `conn`). Every move is
//! atomic: one Lua script per partition (loaded once, called by SHA; ingest and enqueue hand it
//! the bodies to store, one variadic HSET being cheaper than a command per body); lease reads
//! bodies and dedup claims travel as plain pipelined commands. Every read for the control room
//! is one pipeline.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncCommands, Client, Script, Value};
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{
    BackendFailure, KeySchema, MAX_BATCH, Receipt, ReceiptOutcome, Store, StoreError, StoreResult,
    Update, encode_json,
};
use crate::config::cluster_seeds;
use crate::engine::clock::{SharedClock, SystemClock};
use crate::engine::partition::partition_for;
use crate::model::{Envelope, EnvelopeId, FlagState, Profile, QueueName, ScheduledItem, SeenAlert};
pub(crate) use audit::{audit_append_to, audit_read_cmd, audit_recent_from, decode_audit};
pub(crate) use conn::Conn;
use ingest::{IngestWriters, WriterParts};
use replication::Replication;

mod alerts;
mod audit;
mod conn;
mod controls;
mod dlq;
mod guards;
mod ingest;
mod queues;
mod replication;
mod stats;

struct Scripts {
    lease: Script,
    settle: Script,
    move_due: Script,
    failed: Script,
    dedup: Script,
    dedup_done: Script,
    gcra: Script,
    breaker_cas: Script,
    flag_cad: Script,
    prune: Script,
    group_store: Script,
    group_delete: Script,
    groups_due: Script,
    enqueue: Script,
}

impl StoreError {
    /// A Redis error in neutral terms: whether the server was unavailable or refused the
    /// call for its settings decides what callers do; the text keeps Redis's own words.
    pub(crate) fn redis(op: &'static str) -> impl FnOnce(::redis::RedisError) -> Self {
        move |source| {
            let failure =
                if source.is_io_error() || source.is_timeout() || source.is_connection_dropped() {
                    BackendFailure::Unavailable
                } else if matches!(
                    source.kind(),
                    ::redis::ErrorKind::AuthenticationFailed
                        | ::redis::ErrorKind::InvalidClientConfig
                        | ::redis::ErrorKind::Server(::redis::ServerErrorKind::NoPerm)
                ) || matches!(source.code(), Some("WRONGTYPE" | "NOAUTH" | "WRONGPASS"))
                {
                    BackendFailure::Refused
                } else {
                    BackendFailure::Failed
                };
            Self::Backend {
                backend: "redis",
                op,
                failure,
                detail: source.to_string(),
            }
        }
    }
}

fn scripts() -> &'static Scripts {
    static SCRIPTS: OnceLock<Scripts> = OnceLock::new();
    SCRIPTS.get_or_init(|| Scripts {
        lease: Script::new(include_str!("lua/lease.lua")),
        settle: Script::new(include_str!("lua/settle.lua")),
        move_due: Script::new(include_str!("lua/move_due.lua")),
        failed: Script::new(include_str!("lua/failed.lua")),
        dedup: Script::new(include_str!("lua/dedup.lua")),
        dedup_done: Script::new(include_str!("lua/dedup_done.lua")),
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
                &s.dedup_done,
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
    /// of the items they were routed from when forwarding), the new items pushed or, `held`,
    /// leased to its token until its deadline. Returns how many ids were added, which acks
    /// were stale and which ids were held.
    fn enqueue_in(
        &self,
        p: u16,
        queue: &QueueName,
        items: Vec<(&str, Vec<u8>)>,
        acks: Option<(&QueueName, &[&Receipt])>,
        held: Option<(i64, &str)>,
    ) -> impl Future<Output = ::redis::RedisResult<(usize, Vec<String>, Vec<String>)>> + use<> {
        let keys = &self.inner.keys;
        let (from, receipts) = acks.unwrap_or((queue, &[]));
        let mut call = scripts().enqueue.prepare_invoke();
        call.key(keys.queue(p, queue))
            .key(keys.bodies(p))
            .key(keys.leases(p, from))
            .key(keys.leases(p, queue))
            .arg(receipts.len());
        match held {
            Some((deadline, token)) => call.arg(deadline).arg(token),
            None => call.arg("").arg(""),
        };
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
}

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

/// A lease token of `worker` as the leases zset keeps it: at least 64 bytes, as Redis keeps a
/// zset of up to 128 members of up to 64 bytes as a listpack, whose every insert and lookup
/// scans it; longer members keep it a hash table.
fn redis_lease_token(worker: &crate::model::WorkerId) -> String {
    format!("{:.<64}", crate::store::lease_token(worker))
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
    use crate::store::decode_envelope;

    #[test]
    fn redis_errors_are_classed_in_neutral_terms() {
        let class = |error: ::redis::RedisError| StoreError::redis("lease")(error);
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let down = class(refused.into());
        assert!(down.is_unavailable() && !down.is_permanent(), "{down:?}");
        assert!(down.to_string().starts_with("redis lease: "), "{down}");
        let wrong_type = class(::redis::make_extension_error("WRONGTYPE".into(), None));
        let auth = class((::redis::ErrorKind::AuthenticationFailed, "bad password").into());
        for refused in [wrong_type, auth] {
            assert!(
                refused.is_permanent() && !refused.is_unavailable(),
                "{refused:?}"
            );
        }
        let other = class((::redis::ErrorKind::Client, "odd reply").into());
        assert!(
            !other.is_permanent() && !other.is_unavailable(),
            "{other:?}"
        );
    }

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
}
