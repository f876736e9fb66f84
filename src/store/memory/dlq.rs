//! The memory store's dead-letter queue: pages, search, groups and remediation.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Body, MemoryStore, Moved, Stored};
use crate::model::{DlqEntry, EnvelopeId, QueueName};
use crate::store::{
    BatchResult, DlqCursor, DlqFilter, DlqGroup, DlqPage, DlqScope, DlqStore, FailedSet, GroupStep,
    ReplayOptions, SCAN_BUDGET, StoreResult, check_batch, check_bucket, check_step, is_empty_scope,
    next_after_step, page_across_partitions, step_budget,
};

#[async_trait]
impl DlqStore for MemoryStore {
    async fn failed_count(
        &self,
        queue: &QueueName,
        set: FailedSet,
        filter: &DlqFilter,
    ) -> StoreResult<u64> {
        let mut state = self.lock();
        let mut total = 0u64;
        for part in &mut state.partitions {
            total += if filter.has_field_filters() {
                let from = DlqCursor::start();
                let (hits, ..) = part.scan(queue, set, filter, &from, (usize::MAX, usize::MAX));
                hits.len() as u64
            } else {
                // Like ZLEXCOUNT: the entries in the time range.
                let (min, max) = filter.key_range();
                if min >= max {
                    0
                } else {
                    part.set(queue, set).range(min..max).count() as u64
                }
            };
        }
        Ok(total)
    }

    async fn failed_page(
        &self,
        queue: &QueueName,
        set: FailedSet,
        filter: &DlqFilter,
        cursor: &DlqCursor,
        limit: usize,
    ) -> StoreResult<DlqPage> {
        check_step(limit)?;
        let partitions = self.keys.partitions();
        page_across_partitions(partitions, cursor, limit, |from, want| {
            let mut state = self.lock();
            let partition = from.partition;
            let part = &mut state.partitions[usize::from(partition)];
            let budget = step_budget(filter, SCAN_BUDGET);
            let (hits, _, last, done) = part.scan(queue, set, filter, &from, (want, budget));
            let entries = hits
                .iter()
                .filter_map(|id| part.entry(partition, id))
                .collect();
            std::future::ready(Ok((entries, done, last)))
        })
        .await
    }

    async fn failed_entries(
        &self,
        queue: &QueueName,
        set: FailedSet,
        ids: &[EnvelopeId],
    ) -> StoreResult<Vec<DlqEntry>> {
        check_batch(ids.len())?;
        let mut state = self.lock();
        let mut found = Vec::new();
        for id in ids {
            for (partition, part) in state.partitions.iter_mut().enumerate() {
                let Some(key) = part.meta.get(&id.0).map(|m| m.key.clone()) else {
                    continue;
                };
                let q = part.queue(queue);
                let in_set = match set {
                    FailedSet::Dlq => q.dlq.contains(&key),
                    FailedSet::Dead => q.dead.contains(&key),
                };
                if in_set
                    && !found.iter().any(|e: &DlqEntry| e.meta.id == *id)
                    && let Some(entry) = part.entry(partition as u16, &id.0)
                {
                    found.push(entry);
                }
            }
        }
        Ok(found)
    }

    async fn failed_groups(
        &self,
        queue: &QueueName,
        set: FailedSet,
        filter: &DlqFilter,
        bucket_ms: i64,
        cursor: &DlqCursor,
    ) -> StoreResult<GroupStep> {
        check_bucket(bucket_ms)?;
        let mut state = self.lock();
        let partitions = state.partitions.len() as u16;
        let Some(part) = state.partitions.get_mut(usize::from(cursor.partition)) else {
            return Ok(GroupStep::default());
        };
        let budget = step_budget(filter, crate::store::GROUP_SCAN_BUDGET);
        let (hits, examined, last, done) = part.scan(queue, set, filter, cursor, (budget, budget));
        let mut counts: std::collections::BTreeMap<(String, i64), u64> =
            std::collections::BTreeMap::new();
        for id in &hits {
            if let Some(meta) = part.meta.get(id) {
                let bucket = meta.last_failure_ms.max(0);
                let bucket = bucket - bucket % bucket_ms;
                *counts
                    .entry((meta.error_class.clone(), bucket))
                    .or_default() += 1;
            }
        }
        Ok(GroupStep {
            groups: counts
                .into_iter()
                .map(|((error_class, bucket_ms), count)| DlqGroup {
                    error_class,
                    bucket_ms,
                    count,
                })
                .collect(),
            examined: examined as u64,
            next: next_after_step(cursor, done, last, partitions),
        })
    }

    async fn replay(
        &self,
        queue: &QueueName,
        from: FailedSet,
        scope: &DlqScope,
        options: ReplayOptions,
    ) -> StoreResult<BatchResult> {
        check_step(options.max_items)?;
        if is_empty_scope(scope) {
            return Ok(BatchResult::default());
        }
        self.apply_batch(queue, from, scope, options.max_items, |part, id| {
            let Some(key) = part.meta.get(id).map(|m| m.key.clone()) else {
                return Moved::Skipped;
            };
            let q = part.queue(queue);
            let in_set = match from {
                FailedSet::Dlq => q.dlq.contains(&key),
                FailedSet::Dead => q.dead.contains(&key),
            };
            if !in_set {
                return Moved::Skipped;
            }
            // A missing body keeps its count too (an empty one that leases as corrupt).
            let stored = part
                .bodies
                .entry(id.to_owned())
                .or_insert_with(|| Stored::new(Body::Raw(Arc::from(""))));
            stored.replays += 1;
            let poisoned = from == FailedSet::Dlq && stored.replays > options.max_replays;
            if !poisoned && options.reset_attempts {
                stored.attempts = 0;
            }
            let q = part.queue(queue);
            match from {
                FailedSet::Dlq => q.dlq.remove(&key),
                FailedSet::Dead => q.dead.remove(&key),
            };
            if poisoned {
                q.dead.insert(key);
                return Moved::Poisoned;
            }
            q.waiting.push_back(id.to_owned());
            part.meta.remove(id);
            Moved::Applied
        })
    }

    async fn purge(
        &self,
        queue: &QueueName,
        set: FailedSet,
        scope: &DlqScope,
        max_items: usize,
    ) -> StoreResult<BatchResult> {
        check_step(max_items)?;
        if is_empty_scope(scope) {
            return Ok(BatchResult::default());
        }
        self.apply_batch(queue, set, scope, max_items, |part, id| {
            if part.take(queue, set, id).is_none() {
                return Moved::Skipped;
            }
            part.forget(id);
            Moved::Applied
        })
    }

    async fn bury(
        &self,
        queue: &QueueName,
        scope: &DlqScope,
        max_items: usize,
    ) -> StoreResult<BatchResult> {
        check_step(max_items)?;
        if is_empty_scope(scope) {
            return Ok(BatchResult::default());
        }
        self.apply_batch(queue, FailedSet::Dlq, scope, max_items, |part, id| {
            let Some(key) = part.take(queue, FailedSet::Dlq, id) else {
                return Moved::Skipped;
            };
            part.queue(queue).dead.insert(key);
            Moved::Applied
        })
    }
}
