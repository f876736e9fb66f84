//! The Redis store's guards: dedup claims, rate limits and circuit breakers.

use std::collections::BTreeMap;
use std::time::Duration;

use ::redis::AsyncCommands;
use async_trait::async_trait;

use super::{RedisStore, decode_json_pairs, scripts};
use crate::engine::breaker::Breaker;
use crate::engine::clock::duration_ms;
use crate::engine::ratelimit::{RateLimit, Verdict, gcra};
use crate::store::{
    DedupClaim, DedupFinish, GuardStore, MAX_BATCH, Store, StoreError, StoreResult, encode_json,
};

#[async_trait]
impl GuardStore for RedisStore {
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

/// How much longer Redis keeps an idempotency record than its expiry by the workers' clock,
/// so clock skew between a worker and Redis cannot drop a live record.
const DEDUP_GRACE_MS: i64 = 60_000;

/// State and holder of a record that has not expired by `now`; `None` if it lapsed or is unreadable.
fn live_record(record: &str, now: i64) -> Option<(&str, &str)> {
    let (state, rest) = record.split_once(':')?;
    let (expiry, holder) = rest.split_once(':').unwrap_or((rest, ""));
    (expiry.parse::<i64>().ok()? > now).then_some((state, holder))
}

/// One compare-and-set record operation: its place in the answer, key, op and duration (ms).
type DedupOp<'k> = (usize, &'k str, &'static str, i64);

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

#[cfg(test)]
mod tests {
    use super::*;

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
