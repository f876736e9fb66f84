//! The memory store's guards: dedup claims, rate limits and circuit breakers.

use std::time::Duration;

use async_trait::async_trait;

use super::{DedupRecord, MemoryStore};
use crate::engine::breaker::Breaker;
use crate::engine::clock::duration_ms;
use crate::engine::ratelimit::{RateLimit, Verdict, gcra};
use crate::store::{DedupClaim, DedupFinish, DedupTicket, GuardStore, Store, StoreResult};

#[async_trait]
impl GuardStore for MemoryStore {
    async fn dedup_claim(
        &self,
        owner: &str,
        keys: &[String],
        hold: Duration,
        window: Duration,
    ) -> StoreResult<Vec<DedupClaim>> {
        let now = self.now_ms();
        let hold_until = now.saturating_add(duration_ms(hold));
        let window_end = now.saturating_add(duration_ms(window));
        let mut state = self.lock();
        state.prune_dedup(now);
        state.dedup_calls += 1;
        let call = state.dedup_calls;
        Ok(keys
            .iter()
            .enumerate()
            .map(|(slot, key)| match state.dedup.get(key.as_str()) {
                Some(r) if r.done && r.window_end > now => DedupClaim::AlreadyDone,
                Some(r) if !r.done && r.hold_until > now => DedupClaim::InFlight,
                _ => {
                    let record = DedupRecord {
                        done: false,
                        hold_until,
                        window_end,
                        owner: owner.to_owned(),
                        call,
                    };
                    state.dedup.insert(key.clone(), record);
                    DedupClaim::Claimed(DedupTicket {
                        call,
                        slot: u32::try_from(slot).unwrap_or(u32::MAX),
                        window_end_ms: window_end,
                    })
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
            let Some(record) = state.dedup.get_mut(key.as_str()) else {
                continue;
            };
            let live_claim = !record.done && record.hold_until > now && record.owner == owner;
            match outcome {
                // The send happened, even if the claim lapsed meanwhile, unless another claim
                // took the record over.
                DedupFinish::Done(ticket) if record.call == ticket.call => record.done = true,
                DedupFinish::Release if live_claim => {
                    state.dedup.remove(key.as_str());
                }
                DedupFinish::Hold(hold) if live_claim => {
                    record.hold_until = now.saturating_add(duration_ms(*hold));
                }
                DedupFinish::Done(_) | DedupFinish::Release | DedupFinish::Hold(_) => {}
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
