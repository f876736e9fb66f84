//! The memory store's statistics: queue stats, the control read and heartbeats.

use async_trait::async_trait;

use super::MemoryStore;
use crate::model::{QueueName, StoreStats, WorkerBeat};
use crate::store::{ControlRead, StatsStore, Store, StoreResult};

#[async_trait]
impl StatsStore for MemoryStore {
    async fn stats(&self, queues: &[QueueName]) -> StoreResult<StoreStats> {
        let now = self.now_ms();
        Ok(self.lock().stats(queues, now))
    }

    async fn control_read(
        &self,
        queues: &[QueueName],
        audit_limit: usize,
    ) -> StoreResult<ControlRead> {
        let now = self.now_ms();
        let state = self.lock();
        let mut config: Vec<_> = state
            .config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        config.sort();
        Ok(ControlRead {
            stats: state.stats(queues, now),
            breakers: state
                .breakers
                .iter()
                .map(|(name, (_, breaker))| (name.clone(), breaker.clone()))
                .collect(),
            config,
            workers: state
                .workers
                .iter()
                .map(|(id, beat)| (id.clone(), *beat))
                .collect(),
            audit: state
                .audit
                .iter()
                .rev()
                .take(audit_limit)
                .cloned()
                .collect(),
            silences: state.silences.values().cloned().collect(),
            alerts: self.seen_since(
                &state,
                now - crate::model::SEEN_RETENTION_MS,
                crate::store::CONTROL_ALERTS,
            ),
        })
    }

    async fn beat(&self, worker: &str, beat: Option<&WorkerBeat>) -> StoreResult<()> {
        let mut state = self.lock();
        match beat {
            Some(beat) => state.workers.insert(worker.to_owned(), *beat),
            None => state.workers.remove(worker),
        };
        Ok(())
    }
}
