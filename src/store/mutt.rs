//! The MUTT adapter (`--profile mutt`): reads an existing MUTT deployment's Redis as MUTT keeps
//! it (lists, one string per setting, the breaker's three keys) and performs the few actions an
//! operator needs, each in MUTT's own terms. It never writes a Ward-layout key into MUTT's
//! namespace: the one key it adds is Ward's audit stream, under its own prefix.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ::redis::aio::ConnectionManager;
use ::redis::{Script, Value};

use super::keys::{MuttKeys, scan_pattern};
use super::{StoreError, StoreResult};
use crate::engine::clock::{SharedClock, SystemClock};
use crate::model::mutt::{
    MuttBreaker, MuttCounters, MuttDlq, MuttDlqName, MuttPage, MuttPageQuery, MuttPod,
    MuttProcessing, MuttQueue, MuttSection, MuttShedding, entry_from_raw,
};
use crate::model::{AuditEntry, AuditRecord};

/// Keys a SCAN step examines: a few ms of Redis time at most.
const SCAN_COUNT: usize = 1_000;
/// How long the keys found by a walk of the keyspace are reused before the next walk: pods and
/// settings that appear are seen within this; keys that go are seen at once (the read checks
/// each one).
const DISCOVERY_TTL_MS: i64 = 10_000;
/// Entries one step of a search for marked entries reads.
const SEARCH_CHUNK: isize = 1_000;
/// Ward's audit stream on a MUTT Redis keeps about this many records.
const AUDIT_MAX_LEN: usize = 10_000;

const READ_SCRIPT: &str = include_str!("lua/mutt_read.lua");

struct Scripts {
    read: Script,
    mv: Script,
    breaker: Script,
    config: Script,
    requeue: Script,
}

fn scripts() -> &'static Scripts {
    static SCRIPTS: OnceLock<Scripts> = OnceLock::new();
    SCRIPTS.get_or_init(|| Scripts {
        read: Script::new(READ_SCRIPT),
        mv: Script::new(include_str!("lua/mutt_move.lua")),
        breaker: Script::new(include_str!("lua/mutt_breaker.lua")),
        config: Script::new(include_str!("lua/mutt_config.lua")),
        requeue: Script::new(include_str!("lua/mutt_requeue.lua")),
    })
}

/// How to reach a MUTT deployment.
#[derive(Debug, Clone)]
pub struct MuttStoreOptions {
    pub url: String,
    pub keys: MuttKeys,
    /// MUTT's breaker timeout (it half-opens an open breaker after this).
    pub breaker_timeout: Duration,
    pub response_timeout: Duration,
    pub connect_timeout: Duration,
    pub clock: SharedClock,
}

impl MuttStoreOptions {
    pub fn new(url: &str, keys: MuttKeys) -> Self {
        Self {
            url: url.to_owned(),
            keys,
            breaker_timeout: Duration::from_secs(300),
            response_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
            clock: Arc::new(SystemClock),
        }
    }
}

/// Where a DLQ action sends one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MuttDestination {
    /// The replay target (the DLQ's source queue).
    Queue,
    /// The dead list.
    Dead,
    /// Nowhere: purged.
    Purge,
}

/// One entry of a DLQ batch: its exact bytes as read, where it goes and what is pushed there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MuttMove {
    pub raw: Vec<u8>,
    pub to: MuttDestination,
    pub push: Vec<u8>,
}

/// How one DLQ batch went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MuttMoved {
    pub to_queue: u64,
    pub to_dead: u64,
    pub purged: u64,
    /// Entries no longer in the DLQ when the batch ran (MUTT's remediation took them).
    pub missing: u64,
}

/// The keys the last walk of the keyspace found.
#[derive(Debug, Default)]
struct Discovery {
    at_ms: Option<i64>,
    keys: Vec<String>,
    scanned: u64,
}

/// Connected to a MUTT deployment's Redis.
#[derive(Clone)]
pub struct MuttStore {
    conn: ConnectionManager,
    keys: Arc<MuttKeys>,
    breaker_timeout: Duration,
    clock: SharedClock,
    /// Shared by every clone: the control room's poller and its actions.
    discovery: Arc<std::sync::Mutex<Discovery>>,
}

impl std::fmt::Debug for MuttStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MuttStore")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl MuttStore {
    /// Connect; writes nothing.
    pub async fn connect(options: MuttStoreOptions) -> StoreResult<Self> {
        let conn = super::redis::connect_manager(
            &options.url,
            options.response_timeout,
            options.connect_timeout,
        )
        .await?;
        super::redis::check_server(&mut super::redis::Conn::Single(conn.clone())).await?;
        Ok(Self {
            conn,
            keys: Arc::new(options.keys),
            breaker_timeout: options.breaker_timeout,
            clock: options.clock,
            discovery: Arc::default(),
        })
    }

    pub fn keys(&self) -> &MuttKeys {
        &self.keys
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// MUTT's breaker timeout as configured for Ward (`mutt.breaker_timeout_s`).
    pub fn breaker_timeout(&self) -> Duration {
        self.breaker_timeout
    }

    /// The timeout MUTT's forwarder uses: its `circuit_breaker_timeout` setting when set (read
    /// at its start), else `mutt.breaker_timeout_s`.
    pub async fn effective_breaker_timeout(&self) -> StoreResult<Duration> {
        let mut conn = self.conn();
        let setting: Option<String> = ::redis::cmd("GET")
            .arg(self.keys.config("circuit_breaker_timeout"))
            .query_async(&mut conn)
            .await
            .map_err(StoreError::redis("mutt breaker timeout"))?;
        Ok(breaker_timeout_from(
            setting.as_deref(),
            self.breaker_timeout,
        ))
    }

    /// Walk the keyspace again on the next read (after an action changed it).
    pub fn forget_discovery(&self) {
        if let Ok(mut discovery) = self.discovery.lock() {
            discovery.at_ms = None;
        }
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Every figure the control room shows, and a DLQ page if asked: SCAN steps to find the
    /// per-pod, per-breaker and per-setting keys (their number grows with the keyspace, never
    /// with queue or DLQ lengths), then one script that reads every key at one instant.
    /// Returns the section, the page and the round trips taken.
    pub async fn read(
        &self,
        audit_rows: usize,
        page: Option<MuttPageQuery>,
    ) -> StoreResult<(MuttSection, Option<MuttPage>, u32)> {
        let now = self.now_ms();
        let (found, scanned, mut round_trips) = self.discover().await?;
        let plan = ReadPlan::new(&self.keys, found, now);
        let mut args: Vec<String> = plan.keys.iter().map(|(_, how)| (*how).to_owned()).collect();
        if let Some(query) = page {
            let start = i64::try_from(query.offset).unwrap_or(i64::MAX);
            let stop =
                start.saturating_add(i64::try_from(query.limit.max(1)).unwrap_or(i64::MAX) - 1);
            args.extend([
                (ReadPlan::dlq_index(query.dlq) + 1).to_string(),
                start.to_string(),
                stop.to_string(),
            ]);
        }
        let script = |verb: &str, body: &str| {
            let mut cmd = ::redis::cmd(verb);
            cmd.arg(body).arg(plan.keys.len());
            for (key, _) in &plan.keys {
                cmd.arg(key);
            }
            cmd.arg(&args);
            cmd
        };
        let audit = || super::redis::audit_read_cmd(&self.keys.audit, audit_rows.max(1));
        let mut conn = self.conn();
        let mut pipe = ::redis::pipe();
        pipe.add_command(script("EVALSHA", scripts().read.get_hash()))
            .add_command(audit());
        round_trips += 1;
        let replies: Result<(Value, ::redis::streams::StreamRangeReply), _> =
            pipe.query_async(&mut conn).await;
        let (values, audit) = match replies {
            Ok(replies) => replies,
            // Not cached yet: EVAL caches it (a script, not a key: nothing is written).
            Err(error) if error.code() == Some("NOSCRIPT") => {
                round_trips += 1;
                let mut pipe = ::redis::pipe();
                pipe.add_command(script("EVAL", READ_SCRIPT))
                    .add_command(audit());
                pipe.query_async(&mut conn)
                    .await
                    .map_err(StoreError::redis("mutt read"))?
            }
            Err(error) => return Err(StoreError::redis("mutt read")(error)),
        };
        let (mut section, page_raw) = plan.decode(values, self.breaker_timeout)?;
        section.keys_scanned = scanned;
        section.audit = super::redis::decode_audit(audit);
        let page = page.map(|query| {
            let total = section.dlq(query.dlq.as_str()).map_or(0, |d| d.count);
            MuttPage {
                dlq: query.dlq.as_str().to_owned(),
                key: self.keys.dlq(query.dlq).to_owned(),
                offset: query.offset,
                limit: query.limit,
                total,
                read_at_ms: now,
                entries: page_raw
                    .iter()
                    .enumerate()
                    .map(|(i, raw)| entry_from_raw(query.offset.saturating_add(i as u64), raw))
                    .collect(),
            }
        });
        Ok((section, page, round_trips))
    }

    /// The keys MUTT makes per pod, breaker and setting: one SCAN walk over the prefix they
    /// share (names outside MUTT's prefixes, or not UTF-8, are dropped), reused for
    /// `DISCOVERY_TTL_MS`. Returns the keys, the keyspace size and the round trips taken.
    async fn discover(&self) -> StoreResult<(Vec<String>, u64, u32)> {
        let now = self.now_ms();
        if let Ok(cached) = self.discovery.lock()
            && cached
                .at_ms
                .is_some_and(|at| (0..DISCOVERY_TTL_MS).contains(&(now - at)))
        {
            return Ok((cached.keys.clone(), cached.scanned, 0));
        }
        let prefixes = self.keys.scan_prefixes();
        let pattern = scan_pattern(&prefixes);
        let mut conn = self.conn();
        let mut found = Vec::new();
        let mut round_trips = 0;
        let mut cursor = 0u64;
        let mut scanned = 0u64;
        loop {
            let mut pipe = ::redis::pipe();
            pipe.cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT);
            // SCAN does not say how many keys it examined: the keyspace size is the bound.
            if round_trips == 0 {
                pipe.cmd("DBSIZE");
            }
            let replies: Vec<Value> = pipe
                .query_async(&mut conn)
                .await
                .map_err(StoreError::redis("mutt scan"))?;
            round_trips += 1;
            let mut replies = replies.into_iter();
            let (next, names): (u64, Vec<Vec<u8>>) =
                ::redis::FromRedisValue::from_redis_value(replies.next().unwrap_or(Value::Nil))
                    .map_err(|e| protocol(&e.to_string()))?;
            if let Some(size) = replies.next() {
                scanned = ::redis::FromRedisValue::from_redis_value(size).unwrap_or(0);
            }
            found.extend(
                names
                    .into_iter()
                    .filter_map(|name| String::from_utf8(name).ok())
                    .filter(|name| prefixes.iter().any(|p| name.starts_with(p.as_str()))),
            );
            if next == 0 {
                break;
            }
            cursor = next;
        }
        found.sort();
        found.dedup();
        if let Ok(mut cache) = self.discovery.lock() {
            *cache = Discovery {
                at_ms: Some(now),
                keys: found.clone(),
                scanned,
            };
        }
        Ok((found, scanned, round_trips))
    }

    /// LLEN of one DLQ (a key of another type is a configuration error, not an empty DLQ).
    pub async fn dlq_len(&self, dlq: MuttDlqName) -> StoreResult<u64> {
        let key = self.keys.dlq(dlq);
        let mut conn = self.conn();
        match ::redis::cmd("LLEN").arg(key).query_async(&mut conn).await {
            Ok(len) => Ok(len),
            Err(error) if error.code() == Some("WRONGTYPE") => {
                let found: String = ::redis::cmd("TYPE")
                    .arg(key)
                    .query_async(&mut conn)
                    .await
                    .unwrap_or_default();
                Err(StoreError::WrongType {
                    key: key.to_owned(),
                    found,
                    expected: "list",
                })
            }
            Err(error) => Err(StoreError::redis("mutt dlq length")(error)),
        }
    }

    /// The oldest `n` entries of a DLQ (its tail), oldest first.
    pub async fn oldest(&self, dlq: MuttDlqName, n: usize) -> StoreResult<Vec<Vec<u8>>> {
        self.list_oldest(self.keys.dlq(dlq), n).await
    }

    /// The entry `n` from the oldest end of a DLQ (1 = the oldest), if there is one.
    pub async fn nth_oldest(&self, dlq: MuttDlqName, n: u64) -> StoreResult<Option<Vec<u8>>> {
        let Ok(n) = i64::try_from(n) else {
            return Ok(None);
        };
        if n == 0 {
            return Ok(None);
        }
        let mut conn = self.conn();
        ::redis::cmd("LINDEX")
            .arg(self.keys.dlq(dlq))
            .arg(-n)
            .query_async(&mut conn)
            .await
            .map_err(StoreError::redis("mutt dlq read"))
    }

    /// Whether `entry` is still among the `within` oldest entries of a DLQ.
    pub async fn among_oldest(
        &self,
        dlq: MuttDlqName,
        entry: &[u8],
        within: u64,
    ) -> StoreResult<bool> {
        let mut conn = self.conn();
        let at: Option<i64> = ::redis::cmd("LPOS")
            .arg(self.keys.dlq(dlq))
            .arg(entry)
            .arg("RANK")
            .arg(-1)
            .arg("MAXLEN")
            .arg(within)
            .query_async(&mut conn)
            .await
            .map_err(StoreError::redis("mutt dlq search"))?;
        Ok(at.is_some())
    }

    /// The entries with these content ids (one per id listed), searched from the oldest in
    /// bounded steps; ids not found are left out.
    pub async fn find(&self, dlq: MuttDlqName, ids: &[String]) -> StoreResult<Vec<Vec<u8>>> {
        let mut wanted: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for id in ids {
            *wanted.entry(id.as_str()).or_default() += 1;
        }
        let mut found = Vec::new();
        let mut conn = self.conn();
        let mut end: isize = -1;
        while !wanted.is_empty() {
            let start = end - SEARCH_CHUNK + 1;
            let chunk: Vec<Vec<u8>> = ::redis::cmd("LRANGE")
                .arg(self.keys.dlq(dlq))
                .arg(start)
                .arg(end)
                .query_async(&mut conn)
                .await
                .map_err(StoreError::redis("mutt dlq search"))?;
            for raw in chunk.iter().rev() {
                let id = crate::model::mutt::content_id(raw);
                if let Some(left) = wanted.get_mut(id.as_str()) {
                    *left -= 1;
                    if *left == 0 {
                        wanted.remove(id.as_str());
                    }
                    found.push(raw.clone());
                }
            }
            if (chunk.len() as isize) < SEARCH_CHUNK {
                break;
            }
            end = start - 1;
        }
        Ok(found)
    }

    /// One atomic batch out of a DLQ (at most `MAX_BATCH` entries).
    pub async fn move_batch(&self, dlq: MuttDlqName, moves: &[MuttMove]) -> StoreResult<MuttMoved> {
        super::check_batch(moves.len())?;
        if moves.is_empty() {
            return Ok(MuttMoved::default());
        }
        let keys = &self.keys;
        let target = keys.replay_target(dlq).unwrap_or(&keys.dead);
        let mut invocation = scripts().mv.prepare_invoke();
        invocation.key(keys.dlq(dlq)).key(target).key(&keys.dead);
        for m in moves {
            let to = match m.to {
                MuttDestination::Queue => "queue",
                MuttDestination::Dead => "dead",
                MuttDestination::Purge => "purge",
            };
            invocation.arg(&m.raw).arg(to).arg(&m.push);
        }
        let mut conn = self.conn();
        let (to_queue, to_dead, purged, missing): (u64, u64, u64, u64) = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::redis("mutt dlq move"))?;
        Ok(MuttMoved {
            to_queue,
            to_dead,
            purged,
            missing,
        })
    }

    /// Whether MUTT has written any of a breaker's keys (a name with `:` or glob characters is
    /// no breaker name).
    pub async fn breaker_exists(&self, name: &str) -> StoreResult<bool> {
        if name.is_empty() || name.contains([':', '*', '?', '[', ' ']) {
            return Ok(false);
        }
        let keys = &self.keys;
        let mut conn = self.conn();
        let n: u64 = ::redis::cmd("EXISTS")
            .arg(keys.breaker_state(name))
            .arg(keys.breaker_failures(name))
            .arg(keys.breaker_open_time(name))
            .query_async(&mut conn)
            .await
            .map_err(StoreError::redis("mutt breaker"))?;
        Ok(n > 0)
    }

    /// Whether a processing list's pod has a heartbeat.
    pub async fn pod_alive(&self, list: &str) -> StoreResult<bool> {
        let (_, _, beats) = self
            .keys
            .processing_list(list)
            .ok_or_else(|| not_a_processing_list(list))?;
        let mut conn = self.conn();
        let alive: u64 = ::redis::cmd("EXISTS")
            .arg(&beats[..])
            .query_async(&mut conn)
            .await
            .map_err(StoreError::redis("mutt heartbeat"))?;
        Ok(alive > 0)
    }

    /// The oldest `n` entries of any MUTT list (its tail), oldest first.
    pub async fn list_oldest(&self, key: &str, n: usize) -> StoreResult<Vec<Vec<u8>>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn();
        let mut entries: Vec<Vec<u8>> = ::redis::cmd("LRANGE")
            .arg(key)
            .arg(-(n as isize))
            .arg(-1)
            .query_async(&mut conn)
            .await
            .map_err(StoreError::redis("mutt list read"))?;
        entries.reverse();
        Ok(entries)
    }

    /// LLEN of a processing list, which must be one (by its prefix).
    pub async fn processing_len(&self, list: &str) -> StoreResult<u64> {
        self.keys
            .processing_list(list)
            .ok_or_else(|| not_a_processing_list(list))?;
        let mut conn = self.conn();
        ::redis::cmd("LLEN")
            .arg(list)
            .query_async(&mut conn)
            .await
            .map_err(StoreError::redis("mutt processing length"))
    }

    /// One batch of a dead pod's in-flight entries back to their queue (oldest first, as MUTT's
    /// janitor does). `None` when the pod has a heartbeat: a live pod owns its list.
    pub async fn requeue_orphan(&self, list: &str, max: usize) -> StoreResult<Option<u64>> {
        super::check_step(max)?;
        let (_, queue, beats) = self
            .keys
            .processing_list(list)
            .ok_or_else(|| not_a_processing_list(list))?;
        let mut invocation = scripts().requeue.prepare_invoke();
        invocation.key(list).key(queue);
        for beat in &beats {
            invocation.key(beat);
        }
        invocation.arg(max);
        let mut conn = self.conn();
        let moved: i64 = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::redis("mutt requeue"))?;
        Ok(u64::try_from(moved).ok())
    }

    /// Set or delete one dynamic config setting, announced on MUTT's channel.
    pub async fn config_set(&self, setting: &str, value: Option<&str>) -> StoreResult<()> {
        let mut invocation = scripts().config.prepare_invoke();
        invocation
            .key(self.keys.config(setting))
            .arg(if value.is_some() { "set" } else { "del" })
            .arg(value.unwrap_or(""))
            .arg(&self.keys.config_channel)
            .arg(setting);
        let mut conn = self.conn();
        invocation
            .invoke_async::<i64>(&mut conn)
            .await
            .map(drop)
            .map_err(StoreError::redis("mutt config set"))
    }

    /// Open a breaker as of `open_time_ms` (MUTT half-opens it a timeout later) or close it.
    pub async fn breaker_set(&self, name: &str, open_time_ms: Option<i64>) -> StoreResult<()> {
        let keys = &self.keys;
        let mut invocation = scripts().breaker.prepare_invoke();
        invocation
            .key(keys.breaker_state(name))
            .key(keys.breaker_failures(name))
            .key(keys.breaker_open_time(name));
        match open_time_ms {
            Some(at) => invocation
                .arg("open")
                .arg(format!("{:.3}", at as f64 / 1000.0)),
            None => invocation.arg("closed").arg(""),
        };
        let mut conn = self.conn();
        invocation
            .invoke_async::<i64>(&mut conn)
            .await
            .map(drop)
            .map_err(StoreError::redis("mutt breaker"))
    }

    /// Append to Ward's own audit stream (outside MUTT's namespace).
    pub async fn audit_append(&self, record: &AuditRecord) -> StoreResult<String> {
        super::redis::audit_append_to(&mut self.conn(), &self.keys.audit, AUDIT_MAX_LEN, record)
            .await
    }

    /// The newest audit records, newest first.
    pub async fn audit_recent(&self, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        super::redis::audit_recent_from(&mut self.conn(), &self.keys.audit, limit).await
    }
}

/// How a read reads each key, and how the script's answer is decoded.
struct ReadPlan {
    keys: Vec<(String, &'static str)>,
    processing: Vec<(String, String, String)>,
    heartbeats: Vec<String>,
    breakers: Vec<String>,
    settings: Vec<String>,
    fixed: [String; 5],
    mutt: MuttKeys,
}

impl ReadPlan {
    fn new(keys: &MuttKeys, found: Vec<String>, now_ms: i64) -> Self {
        let mut processing = Vec::new();
        let mut heartbeats = Vec::new();
        let mut breakers: Vec<String> = keys.breakers.clone();
        let mut settings = Vec::new();
        for key in found {
            if let Some(pod) = key.strip_prefix(keys.alerter_processing_prefix.as_str()) {
                processing.push((key.clone(), "alerter".to_owned(), pod.to_owned()));
            } else if let Some(pod) = key.strip_prefix(keys.moog_processing_prefix.as_str()) {
                processing.push((key.clone(), "moog".to_owned(), pod.to_owned()));
            } else if key.starts_with(keys.heartbeat_prefix.as_str()) {
                heartbeats.push(key);
            } else if let Some(rest) = key.strip_prefix(keys.breaker_prefix.as_str()) {
                if let Some((name, _)) = rest.rsplit_once(':')
                    && !name.is_empty()
                    && !breakers.iter().any(|b| b == name)
                {
                    breakers.push(name.to_owned());
                }
            } else if let Some(setting) = key.strip_prefix(keys.config_prefix.as_str())
                && !setting.is_empty()
                && key != keys.config_channel
            {
                settings.push(setting.to_owned());
            }
        }
        breakers.sort();
        let fixed = [
            keys.ingest_queue.clone(),
            keys.alert_queue.clone(),
            keys.alerter_dlq.clone(),
            keys.moog_dlq.clone(),
            keys.dead.clone(),
        ];
        let metrics = metric_buckets(now_ms).map(|bucket| keys.metric(&bucket));
        let mut plan_keys: Vec<(String, &'static str)> =
            fixed.iter().map(|k| (k.clone(), "list")).collect();
        for name in &breakers {
            plan_keys.push((keys.breaker_state(name), "string"));
            plan_keys.push((keys.breaker_failures(name), "string"));
            plan_keys.push((keys.breaker_open_time(name), "string"));
        }
        for (key, _, _) in &processing {
            plan_keys.push((key.clone(), "list"));
        }
        for key in &heartbeats {
            plan_keys.push((key.clone(), "ttl"));
        }
        for setting in &settings {
            plan_keys.push((keys.config(setting), "string"));
        }
        for key in &metrics {
            plan_keys.push((key.clone(), "string"));
        }
        Self {
            keys: plan_keys,
            processing,
            heartbeats,
            breakers,
            settings,
            fixed,
            mutt: keys.clone(),
        }
    }

    /// A DLQ's place among the keys read: after the two queues, in `MuttDlqName::ALL`'s order.
    fn dlq_index(dlq: MuttDlqName) -> usize {
        2 + MuttDlqName::ALL.iter().position(|d| *d == dlq).unwrap_or(0)
    }

    #[allow(clippy::too_many_lines)] // one decode per kind of key, in the order they were asked
    fn decode(
        &self,
        values: Value,
        breaker_timeout: Duration,
    ) -> StoreResult<(MuttSection, Vec<Vec<u8>>)> {
        let Value::Array(mut items) = values else {
            return Err(protocol("the read script did not answer an array"));
        };
        if items.len() != self.keys.len() + 1 {
            return Err(protocol(
                "the read script answered the wrong number of items",
            ));
        }
        let page: Vec<Vec<u8>> =
            ::redis::FromRedisValue::from_redis_value(items.pop().unwrap_or(Value::Nil))
                .map_err(|e| protocol(&e.to_string()))?;
        let mut cells = Cells {
            answers: self
                .keys
                .iter()
                .map(|(key, _)| key.as_str())
                .zip(items)
                .collect(),
            next: 0,
            skipped: Vec::new(),
        };
        // The five lists are the key map itself: a wrong type there means the map is wrong.
        let mut lens = [0u64; 5];
        for len in &mut lens {
            *len = cells.strict("list")?.count();
        }
        let mut breakers = Vec::new();
        for name in &self.breakers {
            let state = cells.lenient("string")?.text();
            let failures = cells
                .lenient("string")?
                .text()
                .and_then(|t| t.trim().parse().ok());
            let open_time_ms = cells
                .lenient("string")?
                .text()
                .and_then(|t| t.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite())
                .map(|s| (s * 1000.0).round() as i64);
            breakers.push(MuttBreaker {
                name: name.clone(),
                state,
                failures,
                open_time_ms,
                timeout_ms: 0,
            });
        }
        let mut processing = Vec::new();
        for (key, service, pod) in &self.processing {
            // A list emptied since the walk is gone: not shown.
            let Cell::Count(length) = cells.lenient("list")? else {
                continue;
            };
            processing.push(MuttProcessing {
                key: key.clone(),
                service: service.clone(),
                pod: pod.clone(),
                length,
                orphan: true,
            });
        }
        let mut pods = Vec::new();
        for key in &self.heartbeats {
            let Cell::Ttl(ms) = cells.lenient("ttl")? else {
                continue;
            };
            let rest = key
                .strip_prefix(self.mutt.heartbeat_prefix.as_str())
                .unwrap_or(key);
            let (service, pod) = match rest.rsplit_once(':') {
                Some((service, pod)) => (Some(service.to_owned()), pod.to_owned()),
                None => (None, rest.to_owned()),
            };
            pods.push(MuttPod {
                key: key.clone(),
                service,
                pod,
                expires_in_ms: u64::try_from(ms).ok(),
            });
        }
        for list in &mut processing {
            list.orphan = !pods.iter().any(|p| {
                p.pod == list.pod && p.service.as_deref().is_none_or(|s| s == list.service)
            });
        }
        let mut config = Vec::new();
        for setting in &self.settings {
            if let Some(value) = cells.lenient("string")?.text() {
                config.push((setting.clone(), value));
            }
        }
        let mut counters = [None; 4];
        for counter in &mut counters {
            *counter = cells
                .lenient("string")?
                .text()
                .and_then(|t| t.trim().parse::<u64>().ok());
        }
        let timeout = breaker_timeout_from(
            config
                .iter()
                .find(|(k, _)| k == "circuit_breaker_timeout")
                .map(|(_, v)| v.as_str()),
            breaker_timeout,
        );
        for breaker in &mut breakers {
            breaker.timeout_ms = timeout.as_millis() as u64;
        }
        let skipped_keys = cells.skipped;
        let in_flight = |service: &str| {
            processing
                .iter()
                .filter(|p| p.service == service)
                .map(|p| p.length)
                .sum()
        };
        let queues = vec![
            MuttQueue {
                name: "ingest".to_owned(),
                key: self.fixed[0].clone(),
                depth: lens[0],
                in_flight: in_flight("alerter"),
                consumer: "alerter".to_owned(),
            },
            MuttQueue {
                name: "alert".to_owned(),
                key: self.fixed[1].clone(),
                depth: lens[1],
                in_flight: in_flight("moog"),
                consumer: "moog".to_owned(),
            },
        ];
        let dlqs = MuttDlqName::ALL
            .iter()
            .zip(&lens[2..])
            .map(|(name, count)| MuttDlq {
                name: name.as_str().to_owned(),
                key: self.mutt.dlq(*name).to_owned(),
                count: *count,
                replays_to: self.mutt.replay_target(*name).map(str::to_owned),
                fed_by: match name {
                    MuttDlqName::Alerter => "alerter: poison and shed events",
                    MuttDlqName::Moog => "forwarder: retries exhausted, 4xx",
                    MuttDlqName::Dead => "remediation and Ward: poison",
                }
                .to_owned(),
            })
            .collect();
        let shedding = MuttShedding::from_config(&config, lens[1]);
        Ok((
            MuttSection {
                read_at_ms: 0,
                queues,
                dlqs,
                breakers,
                processing,
                pods,
                config,
                ingested: MuttCounters {
                    this_minute: counters[0],
                    last_minute: counters[1],
                    this_hour: counters[2],
                    today: counters[3],
                },
                shedding,
                keys_scanned: 0,
                skipped_keys,
                audit: Vec::new(),
            },
            page,
        ))
    }
}

/// The read script's answers, key by key, in the order asked.
struct Cells<'a> {
    answers: Vec<(&'a str, Value)>,
    next: usize,
    /// Keys MUTT would not have written so (a type other than MUTT's): shown, not read.
    skipped: Vec<String>,
}

impl Cells<'_> {
    fn take(&mut self, expected: &'static str) -> StoreResult<Cell> {
        let (key, value) = self
            .answers
            .get_mut(self.next)
            .ok_or_else(|| protocol("short read"))?;
        self.next += 1;
        Cell::decode(key, expected, std::mem::replace(value, Value::Nil))
    }

    /// A key of the key map: another type is the profile's settings being wrong.
    fn strict(&mut self, expected: &'static str) -> StoreResult<Cell> {
        self.take(expected)
    }

    /// A key found by the walk: another type is noted and the key left out.
    fn lenient(&mut self, expected: &'static str) -> StoreResult<Cell> {
        match self.take(expected) {
            Err(StoreError::WrongType { key, found, .. }) => {
                self.skipped.push(format!("{key} ({found})"));
                Ok(Cell::Absent)
            }
            other => other,
        }
    }
}

/// MUTT's forwarder's breaker timeout: its `circuit_breaker_timeout` setting (seconds) when it
/// reads as one, else the configured fallback.
fn breaker_timeout_from(setting: Option<&str>, fallback: Duration) -> Duration {
    setting
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
        .map_or(fallback, Duration::from_secs_f64)
}

/// One key's answer from the read script.
enum Cell {
    Absent,
    Count(u64),
    Text(String),
    Ttl(i64),
}

impl Cell {
    fn decode(key: &str, expected: &'static str, value: Value) -> StoreResult<Self> {
        let Value::Array(parts) = value else {
            return Err(protocol("a key's answer is not an array"));
        };
        let mut parts = parts.into_iter();
        let found: String = parts
            .next()
            .and_then(|v| ::redis::FromRedisValue::from_redis_value(v).ok())
            .unwrap_or_default();
        let value = parts.next();
        match (found.as_str(), expected, value) {
            ("none", _, _) => Ok(Self::Absent),
            (_, "ttl", Some(v)) => Ok(Self::Ttl(
                ::redis::FromRedisValue::from_redis_value(v)
                    .map_err(|e| protocol(&e.to_string()))?,
            )),
            ("list", "list", Some(v)) => Ok(Self::Count(
                ::redis::FromRedisValue::from_redis_value(v)
                    .map_err(|e| protocol(&e.to_string()))?,
            )),
            ("string", "string", Some(v)) => {
                let bytes: Vec<u8> = ::redis::FromRedisValue::from_redis_value(v)
                    .map_err(|e| protocol(&e.to_string()))?;
                Ok(Self::Text(String::from_utf8_lossy(&bytes).into_owned()))
            }
            (found, expected, _) => Err(StoreError::WrongType {
                key: key.to_owned(),
                found: found.to_owned(),
                expected,
            }),
        }
    }

    fn count(&self) -> u64 {
        match self {
            Self::Count(n) => *n,
            _ => 0,
        }
    }

    fn text(self) -> Option<String> {
        match self {
            Self::Text(t) => Some(t),
            _ => None,
        }
    }
}

fn not_a_processing_list(key: &str) -> StoreError {
    StoreError::Invalid(format!(
        "{key} is not a MUTT processing list (mutt.alerter_processing_prefix or mutt.moog_processing_prefix)"
    ))
}

fn protocol(detail: &str) -> StoreError {
    StoreError::Protocol {
        op: "mutt read",
        detail: detail.to_owned(),
    }
}

/// MUTT's UTC counter buckets at `now`: this minute, the last minute, this hour, today.
fn metric_buckets(now_ms: i64) -> [String; 4] {
    let minute = |ms: i64| {
        let text = crate::model::time::format_rfc3339_ms(ms);
        text.get(..16).unwrap_or_default().to_owned()
    };
    let this = minute(now_ms);
    let last = minute(now_ms - 60_000);
    [
        format!("1m:{this}"),
        format!("1m:{last}"),
        format!("1h:{}", this.get(..13).unwrap_or_default()),
        format!("24h:{}", this.get(..10).unwrap_or_default()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_buckets_follow_mutts_utc_names() {
        // 2026-12-06T20:15:30Z
        let now = 1_796_588_130_000;
        assert_eq!(
            crate::model::time::format_rfc3339_ms(now),
            "2026-12-06T20:15:30.000Z"
        );
        assert_eq!(
            metric_buckets(now),
            [
                "1m:2026-12-06T20:15".to_owned(),
                "1m:2026-12-06T20:14".to_owned(),
                "1h:2026-12-06T20".to_owned(),
                "24h:2026-12-06".to_owned(),
            ]
        );
    }
}
