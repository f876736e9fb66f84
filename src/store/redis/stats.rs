//! The Redis store's statistics: queue stats, the control read and heartbeats.

use ::redis::{AsyncCommands, Value};
use async_trait::async_trait;

use super::audit::{audit_read_cmd, decode_audit};
use super::{
    RedisStore, SCHEDULED_SCRIPT, SEEN_SCRIPT, decode_flags, decode_json_pairs, decode_record,
    decode_scheduled, newest_first, value_string,
};
use crate::model::{
    QueueName, QueueStats, SCHEDULED_SAMPLE, ScheduledSummary, SeenAlert, Silence, StoreStats,
    WorkerBeat, ulid_timestamp_ms,
};
use crate::store::{ControlRead, StatsStore, Store, StoreError, StoreResult, encode_json};

#[async_trait]
impl StatsStore for RedisStore {
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
                .arg(crate::store::CONTROL_ALERTS);
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
}

impl RedisStore {
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
