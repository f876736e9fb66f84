//! A Redis store that connects on first use and again after a failed attempt: the control
//! room starts (and shows what it tried) while Redis is down, and attaches once it answers.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Mutex, broadcast};

use super::redis::{RedisStore, RedisStoreOptions};
use super::{AlertStore, AuditStore, ControlStore, DlqStore, GuardStore, QueueStore, StatsStore};
use super::{
    BatchResult, ControlRead, DeadLetterRequest, DedupClaim, DedupFinish, DlqCursor, DlqFilter,
    DlqPage, DlqScope, FailedSet, ForwardOutcome, ForwardRequest, Hold, IngestLimits,
    IngestOutcome, KeySchema, Lease, Receipt, ReceiptOutcome, ReplayOptions, RetryRequest, Store,
    StoreError, StoreResult, Update,
};
use crate::engine::breaker::Breaker;
use crate::engine::ratelimit::{RateLimit, Verdict};
use crate::model::{
    AuditEntry, AuditRecord, Envelope, Flag, FlagState, QueueName, StoreStats, WorkerBeat, WorkerId,
};

/// Attempts to connect are at least this far apart, however often the store is called.
const RETRY_EVERY: Duration = Duration::from_secs(1);

pub struct LazyStore {
    options: RedisStoreOptions,
    /// Set once connected: every call after that goes straight to it, with no lock.
    connected: std::sync::OnceLock<Arc<RedisStore>>,
    /// The last failed attempt (when, and why); held while an attempt runs, so one at a time.
    failed: Mutex<Option<(tokio::time::Instant, String)>>,
}

impl std::fmt::Debug for LazyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyStore")
            .field("keys", &self.options.keys)
            .finish_non_exhaustive()
    }
}

impl LazyStore {
    /// A store that has not connected yet; `first_error` is why the first attempt failed.
    pub fn new(options: RedisStoreOptions, first_error: &StoreError) -> Self {
        Self {
            options,
            connected: std::sync::OnceLock::new(),
            failed: Mutex::new(Some((tokio::time::Instant::now(), first_error.to_string()))),
        }
    }

    /// The connected store, connecting now unless the last attempt was under a second ago.
    async fn store(&self) -> StoreResult<Arc<RedisStore>> {
        if let Some(store) = self.connected.get() {
            return Ok(store.clone());
        }
        let mut failed = self.failed.lock().await;
        // Another caller may have connected while this one waited for the lock.
        if let Some(store) = self.connected.get() {
            return Ok(store.clone());
        }
        if let Some((at, why)) = failed.as_ref()
            && at.elapsed() < RETRY_EVERY
        {
            return Err(StoreError::Unreachable(why.clone()));
        }
        match RedisStore::connect(self.options.clone()).await {
            Ok(store) => {
                *failed = None;
                Ok(self.connected.get_or_init(|| Arc::new(store)).clone())
            }
            Err(error) => {
                *failed = Some((tokio::time::Instant::now(), error.to_string()));
                Err(error)
            }
        }
    }
}

impl Store for LazyStore {
    fn backend_name(&self) -> &'static str {
        "redis"
    }
    fn keys(&self) -> &KeySchema {
        &self.options.keys
    }
    fn now_ms(&self) -> i64 {
        self.options.clock.now_ms()
    }
}

#[async_trait]
impl QueueStore for LazyStore {
    async fn enqueue(&self, queue: &QueueName, envelopes: &[Envelope]) -> StoreResult<usize> {
        self.store().await?.enqueue(queue, envelopes).await
    }
    async fn ingest(
        &self,
        queue: &QueueName,
        limits: &IngestLimits<'_>,
        envelopes: &[Envelope],
    ) -> StoreResult<IngestOutcome> {
        self.store().await?.ingest(queue, limits, envelopes).await
    }
    async fn lease(
        &self,
        queue: &QueueName,
        worker: &WorkerId,
        max: usize,
        lease_for: Duration,
    ) -> StoreResult<Lease> {
        self.store()
            .await?
            .lease(queue, worker, max, lease_for)
            .await
    }
    async fn ack(&self, queue: &QueueName, receipts: &[Receipt]) -> StoreResult<ReceiptOutcome> {
        self.store().await?.ack(queue, receipts).await
    }
    async fn forward(
        &self,
        from: &QueueName,
        to: &QueueName,
        requests: &[ForwardRequest],
    ) -> StoreResult<ForwardOutcome> {
        self.store().await?.forward(from, to, requests).await
    }
    async fn forward_held(
        &self,
        from: &QueueName,
        to: &QueueName,
        requests: &[ForwardRequest],
        hold: Hold<'_>,
    ) -> StoreResult<ForwardOutcome> {
        self.store()
            .await?
            .forward_held(from, to, requests, hold)
            .await
    }
    async fn extend(
        &self,
        queue: &QueueName,
        receipts: &[Receipt],
        lease_for: Duration,
    ) -> StoreResult<ReceiptOutcome> {
        self.store().await?.extend(queue, receipts, lease_for).await
    }
    async fn schedule_retry(
        &self,
        queue: &QueueName,
        retries: &[RetryRequest],
    ) -> StoreResult<ReceiptOutcome> {
        self.store().await?.schedule_retry(queue, retries).await
    }
    async fn defer(
        &self,
        queue: &QueueName,
        receipts: &[Receipt],
        due_at_ms: i64,
    ) -> StoreResult<ReceiptOutcome> {
        self.store().await?.defer(queue, receipts, due_at_ms).await
    }
    async fn release(
        &self,
        queue: &QueueName,
        receipts: &[Receipt],
    ) -> StoreResult<ReceiptOutcome> {
        self.store().await?.release(queue, receipts).await
    }
    async fn promote_due(&self, queue: &QueueName, max: usize) -> StoreResult<usize> {
        self.store().await?.promote_due(queue, max).await
    }
    async fn dead_letter(
        &self,
        queue: &QueueName,
        requests: &[DeadLetterRequest],
    ) -> StoreResult<ReceiptOutcome> {
        self.store().await?.dead_letter(queue, requests).await
    }
    async fn recover_expired(&self, queue: &QueueName, max: usize) -> StoreResult<usize> {
        self.store().await?.recover_expired(queue, max).await
    }
    async fn scheduled_entries(
        &self,
        queue: &crate::model::QueueName,
        max_per_partition: usize,
    ) -> StoreResult<Vec<crate::model::Envelope>> {
        self.store()
            .await?
            .scheduled_entries(queue, max_per_partition)
            .await
    }
}

#[async_trait]
impl DlqStore for LazyStore {
    async fn failed_count(
        &self,
        queue: &QueueName,
        set: FailedSet,
        filter: &DlqFilter,
    ) -> StoreResult<u64> {
        self.store().await?.failed_count(queue, set, filter).await
    }
    async fn failed_page(
        &self,
        queue: &QueueName,
        set: FailedSet,
        filter: &DlqFilter,
        cursor: &DlqCursor,
        limit: usize,
    ) -> StoreResult<DlqPage> {
        self.store()
            .await?
            .failed_page(queue, set, filter, cursor, limit)
            .await
    }
    async fn failed_entries(
        &self,
        queue: &QueueName,
        set: FailedSet,
        ids: &[crate::model::EnvelopeId],
    ) -> StoreResult<Vec<crate::model::DlqEntry>> {
        self.store().await?.failed_entries(queue, set, ids).await
    }
    async fn failed_groups(
        &self,
        queue: &QueueName,
        set: FailedSet,
        filter: &DlqFilter,
        bucket_ms: i64,
        cursor: &DlqCursor,
    ) -> StoreResult<super::GroupStep> {
        self.store()
            .await?
            .failed_groups(queue, set, filter, bucket_ms, cursor)
            .await
    }
    async fn replay(
        &self,
        queue: &QueueName,
        from: FailedSet,
        scope: &DlqScope,
        options: ReplayOptions,
    ) -> StoreResult<BatchResult> {
        self.store()
            .await?
            .replay(queue, from, scope, options)
            .await
    }
    async fn purge(
        &self,
        queue: &QueueName,
        set: FailedSet,
        scope: &DlqScope,
        max_items: usize,
    ) -> StoreResult<BatchResult> {
        self.store()
            .await?
            .purge(queue, set, scope, max_items)
            .await
    }
    async fn bury(
        &self,
        queue: &QueueName,
        scope: &DlqScope,
        max_items: usize,
    ) -> StoreResult<BatchResult> {
        self.store().await?.bury(queue, scope, max_items).await
    }
}

#[async_trait]
impl ControlStore for LazyStore {
    async fn test_result_put(
        &self,
        id: &str,
        result: &crate::model::TestDelivery,
    ) -> StoreResult<()> {
        self.store().await?.test_result_put(id, result).await
    }
    async fn test_result_get(&self, id: &str) -> StoreResult<Option<crate::model::TestDelivery>> {
        self.store().await?.test_result_get(id).await
    }
    async fn set_flag(&self, flag: &Flag, state: Option<&FlagState>) -> StoreResult<()> {
        self.store().await?.set_flag(flag, state).await
    }
    async fn clear_flag_if(&self, flag: &Flag, expected: &FlagState) -> StoreResult<bool> {
        self.store().await?.clear_flag_if(flag, expected).await
    }
    async fn flags(&self) -> StoreResult<Vec<(String, FlagState)>> {
        self.store().await?.flags().await
    }
    async fn config_set(&self, key: &str, value: Option<&str>) -> StoreResult<()> {
        self.store().await?.config_set(key, value).await
    }
    async fn config_get(&self, key: &str) -> StoreResult<Option<String>> {
        self.store().await?.config_get(key).await
    }
    async fn config_all(&self) -> StoreResult<Vec<(String, String)>> {
        self.store().await?.config_all().await
    }
    async fn subscribe(&self) -> StoreResult<broadcast::Receiver<Update>> {
        self.store().await?.subscribe().await
    }
}

#[async_trait]
impl AlertStore for LazyStore {
    async fn group_load(
        &self,
        id: &str,
    ) -> StoreResult<Option<(u64, crate::engine::grouping::GroupState)>> {
        self.store().await?.group_load(id).await
    }
    async fn group_store(
        &self,
        id: &str,
        expected: u64,
        state: &crate::engine::grouping::GroupState,
    ) -> StoreResult<bool> {
        self.store().await?.group_store(id, expected, state).await
    }
    async fn group_delete(&self, id: &str, expected: u64) -> StoreResult<bool> {
        self.store().await?.group_delete(id, expected).await
    }
    async fn groups_due(&self, max: usize, hold: Duration) -> StoreResult<Vec<String>> {
        self.store().await?.groups_due(max, hold).await
    }
    async fn groups_summary(&self) -> StoreResult<(u64, Option<i64>)> {
        self.store().await?.groups_summary().await
    }
    async fn notify_log_get(
        &self,
        id: &str,
    ) -> StoreResult<Option<crate::engine::grouping::NotifyLog>> {
        self.store().await?.notify_log_get(id).await
    }
    async fn notify_log_put(
        &self,
        id: &str,
        log: &crate::engine::grouping::NotifyLog,
        ttl_ms: u64,
    ) -> StoreResult<()> {
        self.store().await?.notify_log_put(id, log, ttl_ms).await
    }
    async fn silence_put(&self, silence: &crate::model::Silence) -> StoreResult<()> {
        self.store().await?.silence_put(silence).await
    }
    async fn silences(&self) -> StoreResult<Vec<crate::model::Silence>> {
        self.store().await?.silences().await
    }
    async fn silence_get(&self, id: &str) -> StoreResult<Option<crate::model::Silence>> {
        self.store().await?.silence_get(id).await
    }
    async fn silences_prune(&self, ended_before_ms: i64) -> StoreResult<usize> {
        self.store().await?.silences_prune(ended_before_ms).await
    }
    async fn alerts_note(&self, alerts: &[crate::model::SeenAlert]) -> StoreResult<()> {
        self.store().await?.alerts_note(alerts).await
    }
    async fn alerts_seen(
        &self,
        since_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<crate::model::SeenAlert>> {
        self.store().await?.alerts_seen(since_ms, limit).await
    }
    async fn alerts_prune(&self, seen_before_ms: i64) -> StoreResult<usize> {
        self.store().await?.alerts_prune(seen_before_ms).await
    }
}

#[async_trait]
impl AuditStore for LazyStore {
    async fn audit_append(&self, record: &AuditRecord) -> StoreResult<String> {
        self.store().await?.audit_append(record).await
    }
    async fn audit_recent(&self, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        self.store().await?.audit_recent(limit).await
    }
}

#[async_trait]
impl GuardStore for LazyStore {
    async fn dedup_claim(
        &self,
        owner: &str,
        keys: &[String],
        hold: Duration,
        window: Duration,
    ) -> StoreResult<Vec<DedupClaim>> {
        self.store()
            .await?
            .dedup_claim(owner, keys, hold, window)
            .await
    }
    async fn dedup_finish(
        &self,
        owner: &str,
        outcomes: &[(String, DedupFinish)],
    ) -> StoreResult<()> {
        self.store().await?.dedup_finish(owner, outcomes).await
    }
    async fn rate_limit(
        &self,
        name: &str,
        limit: &RateLimit,
        quantity: u32,
    ) -> StoreResult<Verdict> {
        self.store().await?.rate_limit(name, limit, quantity).await
    }
    async fn breaker_load(&self, name: &str) -> StoreResult<Option<(u64, Breaker)>> {
        self.store().await?.breaker_load(name).await
    }
    async fn breaker_store(
        &self,
        name: &str,
        expected: u64,
        breaker: &Breaker,
    ) -> StoreResult<bool> {
        self.store()
            .await?
            .breaker_store(name, expected, breaker)
            .await
    }
    async fn breakers(&self) -> StoreResult<Vec<(String, Breaker)>> {
        self.store().await?.breakers().await
    }
}

#[async_trait]
impl StatsStore for LazyStore {
    async fn stats(&self, queues: &[QueueName]) -> StoreResult<StoreStats> {
        self.store().await?.stats(queues).await
    }
    async fn control_read(
        &self,
        queues: &[QueueName],
        audit_limit: usize,
    ) -> StoreResult<ControlRead> {
        self.store().await?.control_read(queues, audit_limit).await
    }
    async fn beat(&self, worker: &str, beat: Option<&WorkerBeat>) -> StoreResult<()> {
        self.store().await?.beat(worker, beat).await
    }
}
