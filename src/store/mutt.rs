//! The MUTT adapter (`--profile mutt`): reads an existing MUTT deployment's Redis as MUTT keeps
//! it (lists, one string per setting, the breaker's three keys) and performs the few actions an
//! operator needs, each in MUTT's own terms. It never writes a Ward-layout key into MUTT's
//! namespace: the one key it adds is Ward's audit stream, under its own prefix.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ::redis::aio::ConnectionManager;
use ::redis::{Script, Value};

use super::keys::MuttKeys;
use super::{StoreError, StoreResult, encode_json};
use crate::engine::clock::{SharedClock, SystemClock};
use crate::model::mutt::{
    MuttBreaker, MuttCounters, MuttDlq, MuttDlqName, MuttPage, MuttPod, MuttProcessing, MuttQueue,
    MuttSection, MuttShedding, entry_from_raw,
};
use crate::model::{AuditEntry, AuditRecord};

/// Keys a SCAN step examines: a few ms of Redis time at most.
const SCAN_COUNT: usize = 1_000;
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

/// A DLQ page to read along with the figures.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct MuttPageQuery {
    pub dlq: MuttDlqName,
    /// 0 = the newest entry.
    pub offset: u64,
    pub limit: u64,
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

/// One entry of a DLQ batch: its exact text as read, where it goes and what is pushed there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MuttMove {
    pub raw: String,
    pub to: MuttDestination,
    pub push: String,
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

/// Connected to a MUTT deployment's Redis.
#[derive(Clone)]
pub struct MuttStore {
    conn: ConnectionManager,
    keys: Arc<MuttKeys>,
    breaker_timeout: Duration,
    clock: SharedClock,
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
        let mut conn = super::redis::connect_manager(
            &options.url,
            options.response_timeout,
            options.connect_timeout,
        )
        .await?;
        super::redis::check_server(&mut conn).await?;
        Ok(Self {
            conn,
            keys: Arc::new(options.keys),
            breaker_timeout: options.breaker_timeout,
            clock: options.clock,
        })
    }

    pub fn keys(&self) -> &MuttKeys {
        &self.keys
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn breaker_timeout(&self) -> Duration {
        self.breaker_timeout
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
            let start = query.offset as i64;
            let stop = start + query.limit.max(1) as i64 - 1;
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
        let audit = || {
            let mut cmd = ::redis::cmd("XREVRANGE");
            cmd.arg(&self.keys.audit)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(audit_rows.max(1));
            cmd
        };
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
                    .map(|(i, raw)| entry_from_raw(query.offset + i as u64, raw))
                    .collect(),
            }
        });
        Ok((section, page, round_trips))
    }

    /// SCAN for the keys MUTT makes per pod, breaker and setting: every pattern's walk advances
    /// in the same round trip.
    async fn discover(&self) -> StoreResult<(Vec<String>, u64, u32)> {
        let patterns = self.keys.scan_patterns();
        let mut cursors: Vec<Option<u64>> = vec![Some(0); patterns.len()];
        let mut found = Vec::new();
        let mut round_trips = 0;
        let mut conn = self.conn();
        while cursors.iter().any(Option::is_some) {
            let mut pipe = ::redis::pipe();
            let active: Vec<usize> = (0..patterns.len())
                .filter(|i| cursors[*i].is_some())
                .collect();
            for &i in &active {
                pipe.cmd("SCAN")
                    .arg(cursors[i].unwrap_or(0))
                    .arg("MATCH")
                    .arg(&patterns[i])
                    .arg("COUNT")
                    .arg(SCAN_COUNT);
            }
            let replies: Vec<(u64, Vec<String>)> = pipe
                .query_async(&mut conn)
                .await
                .map_err(StoreError::redis("mutt scan"))?;
            round_trips += 1;
            for (i, (next, keys)) in active.into_iter().zip(replies) {
                found.extend(keys);
                cursors[i] = (next != 0).then_some(next);
            }
        }
        found.sort();
        found.dedup();
        // SCAN does not say how many keys it examined: the keyspace size is the bound.
        let scanned: u64 = ::redis::cmd("DBSIZE")
            .query_async(&mut conn)
            .await
            .unwrap_or(0);
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
    pub async fn oldest(&self, dlq: MuttDlqName, n: usize) -> StoreResult<Vec<String>> {
        self.list_oldest(self.keys.dlq(dlq), n).await
    }

    /// The entries with these content ids (one per id listed), searched from the oldest in
    /// bounded steps; ids not found are left out.
    pub async fn find(&self, dlq: MuttDlqName, ids: &[String]) -> StoreResult<Vec<String>> {
        let mut wanted: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for id in ids {
            *wanted.entry(id.as_str()).or_default() += 1;
        }
        let mut found = Vec::new();
        let mut conn = self.conn();
        let mut end: isize = -1;
        while !wanted.is_empty() {
            let start = end - SEARCH_CHUNK + 1;
            let chunk: Vec<String> = ::redis::cmd("LRANGE")
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
    pub async fn list_oldest(&self, key: &str, n: usize) -> StoreResult<Vec<String>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn();
        let mut entries: Vec<String> = ::redis::cmd("LRANGE")
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
        let json = encode_json("audit record", record)?;
        let mut conn = self.conn();
        ::redis::cmd("XADD")
            .arg(&self.keys.audit)
            .arg("MAXLEN")
            .arg("~")
            .arg(AUDIT_MAX_LEN)
            .arg("*")
            .arg("r")
            .arg(json)
            .query_async(&mut conn)
            .await
            .map_err(StoreError::redis("audit append"))
    }

    /// The newest audit records, newest first.
    pub async fn audit_recent(&self, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        let mut conn = self.conn();
        let reply: ::redis::streams::StreamRangeReply = ::redis::cmd("XREVRANGE")
            .arg(&self.keys.audit)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(limit)
            .query_async(&mut conn)
            .await
            .map_err(StoreError::redis("audit read"))?;
        Ok(super::redis::decode_audit(reply))
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

    fn dlq_index(dlq: MuttDlqName) -> usize {
        match dlq {
            MuttDlqName::Alerter => 2,
            MuttDlqName::Moog => 3,
            MuttDlqName::Dead => 4,
        }
    }

    #[allow(clippy::too_many_lines)] // one decode per kind of key, in the order they were asked
    fn decode(
        &self,
        values: Value,
        breaker_timeout: Duration,
    ) -> StoreResult<(MuttSection, Vec<String>)> {
        let Value::Array(mut items) = values else {
            return Err(protocol("the read script did not answer an array"));
        };
        if items.len() != self.keys.len() + 1 {
            return Err(protocol(
                "the read script answered the wrong number of items",
            ));
        }
        let page: Vec<String> =
            ::redis::FromRedisValue::from_redis_value(items.pop().unwrap_or(Value::Nil))
                .map_err(|e| protocol(&e.to_string()))?;
        let mut cells = self.keys.iter().zip(items);
        let mut next = |expected: &'static str| -> StoreResult<Cell> {
            let ((key, _), value) = cells.next().ok_or_else(|| protocol("short read"))?;
            Cell::decode(key, expected, value)
        };
        let mut lens = [0u64; 5];
        for len in &mut lens {
            *len = next("list")?.count();
        }
        let mut breakers = Vec::new();
        for name in &self.breakers {
            let state = next("string")?.text();
            let failures = next("string")?.text().and_then(|t| t.trim().parse().ok());
            let open_time_ms = next("string")?
                .text()
                .and_then(|t| t.trim().parse::<f64>().ok())
                .map(|s| (s * 1000.0).round() as i64);
            breakers.push(MuttBreaker {
                name: name.clone(),
                state,
                failures,
                open_time_ms,
                timeout_ms: breaker_timeout.as_millis() as u64,
            });
        }
        let mut processing = Vec::new();
        for (key, service, pod) in &self.processing {
            let length = next("list")?.count();
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
            let ttl = next("ttl")?;
            let Cell::Ttl(ms) = ttl else { continue };
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
            if let Some(value) = next("string")?.text() {
                config.push((setting.clone(), value));
            }
        }
        let mut counters = [None; 4];
        for counter in &mut counters {
            *counter = next("string")?
                .text()
                .and_then(|t| t.trim().parse::<u64>().ok());
        }
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
                audit: Vec::new(),
            },
            page,
        ))
    }
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
            ("string", "string", Some(v)) => Ok(Self::Text(
                ::redis::FromRedisValue::from_redis_value(v)
                    .map_err(|e| protocol(&e.to_string()))?,
            )),
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
