//! The memory store's alerting state: silences, alerts seen, groups and the notify log.

use std::time::Duration;

use async_trait::async_trait;

use super::MemoryStore;
use crate::engine::clock::duration_ms;
use crate::engine::grouping::{GroupState, NotifyLog};
use crate::model::{SeenAlert, Silence};
use crate::store::{AlertStore, Store, StoreResult, Update};

#[async_trait]
impl AlertStore for MemoryStore {
    async fn group_load(&self, id: &str) -> StoreResult<Option<(u64, GroupState)>> {
        Ok(self
            .lock()
            .groups
            .get(id)
            .map(|(version, state, _)| (*version, state.clone())))
    }

    async fn group_store(&self, id: &str, expected: u64, state: &GroupState) -> StoreResult<bool> {
        let mut guard = self.lock();
        let current = guard.groups.get(id).map_or(0, |(v, _, _)| *v);
        if current != expected {
            return Ok(false);
        }
        guard.groups.insert(
            id.to_owned(),
            (expected + 1, state.clone(), state.next_flush_ms),
        );
        Ok(true)
    }

    async fn group_delete(&self, id: &str, expected: u64) -> StoreResult<bool> {
        let mut guard = self.lock();
        if guard.groups.get(id).map(|(v, _, _)| *v) != Some(expected) {
            return Ok(false);
        }
        guard.groups.remove(id);
        Ok(true)
    }

    async fn groups_due(&self, max: usize, hold: Duration) -> StoreResult<Vec<String>> {
        let now = self.now_ms();
        let mut guard = self.lock();
        let mut due: Vec<(i64, String)> = guard
            .groups
            .iter()
            .filter(|(_, (_, _, at))| *at <= now)
            .map(|(id, (_, _, at))| (*at, id.clone()))
            .collect();
        due.sort();
        due.truncate(max);
        let until = now + duration_ms(hold);
        for (_, id) in &due {
            if let Some(entry) = guard.groups.get_mut(id) {
                entry.2 = until;
            }
        }
        Ok(due.into_iter().map(|(_, id)| id).collect())
    }

    async fn groups_summary(&self) -> StoreResult<(u64, Option<i64>)> {
        let guard = self.lock();
        Ok((
            guard.groups.len() as u64,
            guard.groups.values().map(|(_, _, at)| *at).min(),
        ))
    }

    async fn notify_log_get(&self, id: &str) -> StoreResult<Option<NotifyLog>> {
        let now = self.now_ms();
        Ok(self
            .lock()
            .notify_logs
            .get(id)
            .filter(|(_, expires)| *expires > now)
            .map(|(log, _)| log.clone()))
    }

    async fn notify_log_put(&self, id: &str, log: &NotifyLog, ttl_ms: u64) -> StoreResult<()> {
        let now = self.now_ms();
        let mut guard = self.lock();
        guard.notify_logs.retain(|_, (_, expires)| *expires > now);
        let expires = now.saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
        guard
            .notify_logs
            .insert(id.to_owned(), (log.clone(), expires));
        Ok(())
    }

    async fn silence_put(&self, silence: &Silence) -> StoreResult<()> {
        self.lock()
            .silences
            .insert(silence.id.clone(), silence.clone());
        self.announce(Update::Silence(silence.id.clone()));
        Ok(())
    }

    async fn silences(&self) -> StoreResult<Vec<Silence>> {
        Ok(self.lock().silences.values().cloned().collect())
    }

    async fn silence_get(&self, id: &str) -> StoreResult<Option<Silence>> {
        Ok(self.lock().silences.get(id).cloned())
    }

    async fn silences_prune(&self, ended_before_ms: i64) -> StoreResult<usize> {
        let mut state = self.lock();
        let before = state.silences.len();
        state
            .silences
            .retain(|_, s| s.ends_at_ms >= ended_before_ms);
        Ok(before - state.silences.len())
    }

    async fn alerts_note(&self, alerts: &[SeenAlert]) -> StoreResult<()> {
        let mut state = self.lock();
        for alert in alerts {
            state.seen.insert(alert.fingerprint.clone(), alert.clone());
        }
        Ok(())
    }

    async fn alerts_seen(&self, since_ms: i64, limit: usize) -> StoreResult<Vec<SeenAlert>> {
        Ok(self.seen_since(&self.lock(), since_ms, limit))
    }

    async fn alerts_prune(&self, seen_before_ms: i64) -> StoreResult<usize> {
        let mut state = self.lock();
        let before = state.seen.len();
        state.seen.retain(|_, a| a.last_seen_ms >= seen_before_ms);
        Ok(before - state.seen.len())
    }
}
