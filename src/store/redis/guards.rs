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
    DedupClaim, DedupFinish, DedupTicket, GuardStore, MAX_BATCH, Store, StoreError, StoreResult,
    encode_json,
};

#[async_trait]
impl GuardStore for RedisStore {
    async fn dedup_claim(
        &self,
        owner: &str,
        keys: &[String],
        hold: Duration,
        window: Duration,
    ) -> StoreResult<Vec<DedupClaim>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let schema = &self.inner.keys;
        let now = self.now_ms();
        let claim = ClaimCall {
            call: fastrand::u64(..),
            now,
            hold_ms: duration_ms(hold).max(1),
            window_end_ms: now.saturating_add(duration_ms(window)),
        };
        let head = format!(
            "sending:{}:{}:{:016x}:",
            now.saturating_add(claim.hold_ms),
            claim.window_end_ms,
            claim.call
        );
        let ttl_ms = claim.ttl_ms();
        // The common case costs one SET per key: NX claims an absent record, GET shows a present one.
        let mut pipe = ::redis::pipe();
        for (slot, key) in keys.iter().enumerate() {
            pipe.cmd("SET")
                .arg(schema.dedup_record(key))
                .arg(format!("{head}{slot}:{owner}"))
                .arg("NX")
                .arg("PX")
                .arg(ttl_ms)
                .arg("GET");
        }
        let mut conn = self.conn();
        let previous: Vec<Option<String>> = pipe
            .query_async(&mut conn)
            .await
            .map_err(StoreError::redis("dedup claim"))?;
        let mut answers = Vec::with_capacity(keys.len());
        // Claims found: whether each succeeded is a bit of its call's bitmap, read next.
        let mut found: Vec<(usize, &str, Claim<'_>)> = Vec::new();
        let mut lapsed: Vec<DedupOp<'_>> = Vec::new();
        for (slot, (key, previous)) in keys.iter().zip(&previous).enumerate() {
            let answer = match previous.as_deref().map(parse_record) {
                None => DedupClaim::Claimed(claim.ticket(slot)),
                Some(Record::Done { until }) if until > now => DedupClaim::AlreadyDone,
                Some(Record::Claim(found_claim)) => {
                    found.push((slot, key.as_str(), found_claim));
                    DedupClaim::InFlight
                }
                Some(_) => {
                    lapsed.push((slot, key.as_str(), "take", claim.hold_ms, slot));
                    DedupClaim::InFlight
                }
            };
            answers.push(answer);
        }
        if !found.is_empty() {
            let mut pipe = ::redis::pipe();
            for (_, key, found_claim) in &found {
                let partition = schema.dedup_partition(key);
                pipe.cmd("GETBIT")
                    .arg(schema.dedup_done(partition, found_claim.call))
                    .arg(found_claim.slot);
            }
            let succeeded: Vec<bool> = pipe
                .query_async(&mut conn)
                .await
                .map_err(StoreError::redis("dedup claim"))?;
            for ((slot, key, found_claim), succeeded) in found.into_iter().zip(succeeded) {
                if succeeded && found_claim.window_end_ms > now {
                    answers[slot] = DedupClaim::AlreadyDone;
                } else if succeeded || found_claim.hold_until_ms <= now {
                    lapsed.push((slot, key, "take", claim.hold_ms, slot));
                }
            }
        }
        // A lapsed record is taken over by compare-and-set, so two claimers cannot both win.
        if !lapsed.is_empty() {
            for (index, answer) in self.dedup_cas(owner, &claim, lapsed).await? {
                answers[index] = match answer.as_str() {
                    "claimed" => DedupClaim::Claimed(claim.ticket(index)),
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
        let schema = &self.inner.keys;
        // Successes: bits of their calls' bitmaps, by partition and call.
        let mut successes: BTreeMap<u16, BTreeMap<u64, (i64, Vec<u32>)>> = BTreeMap::new();
        let mut guarded: Vec<DedupOp<'_>> = Vec::new();
        for (index, (key, outcome)) in outcomes.iter().enumerate() {
            match outcome {
                DedupFinish::Done(ticket) => {
                    successes
                        .entry(schema.dedup_partition(key))
                        .or_default()
                        .entry(ticket.call)
                        .or_insert_with(|| (ticket.window_end_ms, Vec::new()))
                        .1
                        .push(ticket.slot);
                }
                DedupFinish::Release => guarded.push((index, key.as_str(), "release", 0, 0)),
                DedupFinish::Hold(hold) => {
                    guarded.push((index, key.as_str(), "hold", duration_ms(*hold).max(1), 0));
                }
            }
        }
        let calls = successes.into_iter().map(|(partition, calls)| {
            let mut invocation = scripts().dedup_done.prepare_invoke();
            for (call, (window_end_ms, slots)) in calls {
                let ttl_ms = window_end_ms
                    .saturating_sub(now)
                    .max(1)
                    .saturating_add(DEDUP_GRACE_MS);
                invocation
                    .key(schema.dedup_done(partition, &format!("{call:016x}")))
                    .arg(ttl_ms)
                    .arg(slots.len())
                    .arg(slots);
            }
            let mut conn = self.conn();
            async move { invocation.invoke_async::<()>(&mut conn).await }
        });
        // Successes first: a release checks its claim's bit, so it never drops a success
        // recorded in the same call.
        futures::future::try_join_all(calls)
            .await
            .map_err(StoreError::redis("dedup finish"))?;
        let claim = ClaimCall {
            call: 0,
            now,
            hold_ms: 0,
            window_end_ms: now,
        };
        self.dedup_cas(owner, &claim, guarded).await.map(drop)
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

/// An idempotency record as read: a claim, an older-form success, or unreadable (lapsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Record<'r> {
    Claim(Claim<'r>),
    Done { until: i64 },
    Unreadable,
}

/// A claim record: held until `hold_until_ms` unless bit `slot` of `call`'s bitmap says it
/// succeeded, which stands until `window_end_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Claim<'r> {
    hold_until_ms: i64,
    window_end_ms: i64,
    call: &'r str,
    slot: u32,
}

fn parse_record(record: &str) -> Record<'_> {
    let parsed = || -> Option<Record<'_>> {
        let (state, rest) = record.split_once(':')?;
        if state == "done" {
            return Some(Record::Done {
                until: rest.parse().ok()?,
            });
        }
        if state != "sending" {
            return None;
        }
        let mut fields = rest.splitn(5, ':');
        let hold_until_ms = fields.next()?.parse().ok()?;
        let window_end_ms = fields.next()?.parse().ok()?;
        let call = fields.next()?;
        let slot = fields.next()?.parse().ok()?;
        fields.next()?;
        (!call.is_empty() && call.bytes().all(|b| b.is_ascii_hexdigit())).then_some(Record::Claim(
            Claim {
                hold_until_ms,
                window_end_ms,
                call,
                slot,
            },
        ))
    };
    parsed().unwrap_or(Record::Unreadable)
}

/// One dedup claim call: its id (the bitmap its successes go to), when it was made, how long
/// its claims hold and when their window ends.
struct ClaimCall {
    call: u64,
    now: i64,
    hold_ms: i64,
    window_end_ms: i64,
}

impl ClaimCall {
    /// The records' Redis TTL: the later of hold and window, plus the grace.
    fn ttl_ms(&self) -> i64 {
        self.hold_ms
            .max(self.window_end_ms.saturating_sub(self.now))
            .saturating_add(DEDUP_GRACE_MS)
    }

    fn ticket(&self, slot: usize) -> DedupTicket {
        DedupTicket {
            call: self.call,
            slot: u32::try_from(slot).unwrap_or(u32::MAX),
            window_end_ms: self.window_end_ms,
        }
    }
}

/// One compare-and-set record operation: its place in the answer, key, op, duration (ms) and
/// the slot a take claims under.
type DedupOp<'k> = (usize, &'k str, &'static str, i64, usize);

impl RedisStore {
    /// Compare-and-set record operations (take, hold, release): one script call per partition
    /// and 500 records, sent together on the multiplexed connection. Answers come back with the
    /// index each op carried.
    async fn dedup_cas(
        &self,
        owner: &str,
        claim: &ClaimCall,
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
            let partition = keys.dedup_partition(group[0].1);
            let mut invocation = scripts().dedup.prepare_invoke();
            invocation
                .arg(claim.now)
                .arg(owner)
                .arg(DEDUP_GRACE_MS)
                .arg(keys.dedup_done(partition, ""))
                .arg(format!("{:016x}", claim.call))
                .arg(claim.window_end_ms);
            for (_, key, op, span_ms, slot) in *group {
                invocation
                    .key(keys.dedup_record(key))
                    .arg(*op)
                    .arg(*span_ms)
                    .arg(*slot);
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
    fn dedup_records_parse_as_claims_successes_or_unreadable() {
        assert_eq!(
            parse_record("sending:5000:9000:00ab:7:w1#ab:x"),
            Record::Claim(Claim {
                hold_until_ms: 5000,
                window_end_ms: 9000,
                call: "00ab",
                slot: 7,
            })
        );
        assert_eq!(parse_record("done:2000"), Record::Done { until: 2000 });
        // The older claim form names no call: read as lapsed, so it is taken over.
        assert_eq!(parse_record("sending:5000:w1#ab"), Record::Unreadable);
        assert_eq!(
            parse_record("sending:5000:9000:xyz:7:w1"),
            Record::Unreadable
        );
        assert_eq!(parse_record("garbage"), Record::Unreadable);
        assert_eq!(parse_record("done:soon"), Record::Unreadable);
    }
}
