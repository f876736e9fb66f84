//! The memory store's guards: dedup claims, rate limits and circuit breakers.

use std::time::Duration;

use async_trait::async_trait;

use super::{DedupRecord, MemoryStore};
use crate::engine::breaker::Breaker;
use crate::engine::clock::duration_ms;
use crate::engine::ratelimit::{RateLimit, Verdict, gcra};
use crate::store::{DedupClaim, DedupFinish, GuardStore, Store, StoreResult};

#[async_trait]
impl GuardStore for MemoryStore {
    async fn dedup_claim(
        &self,
        owner: &str,
        keys: &[String],
        hold: Duration,
    ) -> StoreResult<Vec<DedupClaim>> {
        let now = self.now_ms();
        let expires = now.saturating_add(duration_ms(hold));
        let mut state = self.lock();
        state.prune_dedup(now);
        Ok(keys
            .iter()
            .map(|key| match state.dedup.get(key.as_str()) {
                Some(r) if r.expires > now && r.done => DedupClaim::AlreadyDone,
                Some(r) if r.expires > now => DedupClaim::InFlight,
                _ => {
                    let record = DedupRecord {
                        done: false,
                        expires,
                        owner: owner.to_owned(),
                    };
                    state.dedup.insert(key.clone(), record);
                    DedupClaim::Claimed
                }
            })
            .collect())
    }

    async fn dedup_finish(
        &self,
        owner: &str,
        outcomes: &[(String, DedupFinish)],
    ) -> StoreResult<()> {
        let now = self.now_ms();
        let mut state = self.lock();
        for (key, outcome) in outcomes {
            let live_claim = state
                .dedup
                .get(key.as_str())
                .is_some_and(|r| !r.done && r.expires > now && r.owner == owner);
            match outcome {
                DedupFinish::Done(ttl) => {
                    let record = DedupRecord {
                        done: true,
                        expires: now.saturating_add(duration_ms(*ttl)),
                        owner: String::new(),
                    };
                    state.dedup.insert(key.clone(), record);
                }
                DedupFinish::Release if live_claim => {
                    state.dedup.remove(key.as_str());
                }
                DedupFinish::Hold(hold) if live_claim => {
                    if let Some(record) = state.dedup.get_mut(key.as_str()) {
                        record.expires = now.saturating_add(duration_ms(*hold));
                    }
                }
                DedupFinish::Release | DedupFinish::Hold(_) => {}
            }
        }
        Ok(())
    }

    async fn rate_limit(
        &self,
        name: &str,
        limit: &RateLimit,
        quantity: u32,
    ) -> StoreResult<Verdict> {
        let now = self.now_ms();
        let now_us = now.saturating_mul(1000);
        let mut state = self.lock();
        let stored = state
            .limiters
            .get(name)
            .filter(|(_, expires)| *expires > now)
            .map(|(tat, _)| *tat);
        let verdict = gcra(limit, stored, now_us, quantity);
        if verdict.allowed {
            // Kept a minute past its TAT, like the Redis key: an old TAT decides nothing.
            let expires = now + (verdict.tat_us - now_us) / 1000 + 60_000;
            state
                .limiters
                .insert(name.to_owned(), (verdict.tat_us, expires));
        }
        Ok(verdict)
    }

    async fn breaker_load(&self, name: &str) -> StoreResult<Option<(u64, Breaker)>> {
        Ok(self.lock().breakers.get(name).cloned())
    }

    async fn breaker_store(
        &self,
        name: &str,
        expected: u64,
        breaker: &Breaker,
    ) -> StoreResult<bool> {
        let mut state = self.lock();
        let current = state.breakers.get(name).map_or(0, |(version, _)| *version);
        if current != expected {
            return Ok(false);
        }
        state
            .breakers
            .insert(name.to_owned(), (expected + 1, breaker.clone()));
        Ok(true)
    }

    async fn breakers(&self) -> StoreResult<Vec<(String, Breaker)>> {
        Ok(self
            .lock()
            .breakers
            .iter()
            .map(|(name, (_, breaker))| (name.clone(), breaker.clone()))
            .collect())
    }
}
