//! The Redis store's alerting state: silences, alerts seen, groups and the notify log.

use std::collections::BTreeMap;
use std::time::Duration;

use ::redis::{AsyncCommands, Value};
use async_trait::async_trait;

use super::{
    RedisStore, SEEN_READ_MAX, SEEN_SCRIPT, SeenRecords, decode_record, newest_first, scripts,
};
use crate::engine::clock::duration_ms;
use crate::engine::grouping::{GroupState, NotifyLog};
use crate::model::{SeenAlert, Silence};
use crate::store::{AlertStore, Store, StoreError, StoreResult, Update, encode_json};

#[async_trait]
impl AlertStore for RedisStore {
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
}
