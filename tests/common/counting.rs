//! A store that counts the calls made through it, to prove that something did no I/O (or no
//! writes) — the read-only tests. It wraps a real store; it does not imitate one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;
use ward::engine::breaker::Breaker;
use ward::engine::ratelimit::{RateLimit, Verdict};
use ward::model::{
    AuditEntry, AuditRecord, Envelope, Flag, FlagState, QueueName, StoreStats, WorkerBeat, WorkerId,
};
use ward::store::{
    AlertStore, AuditStore, BatchResult, ControlRead, ControlStore, DeadLetterRequest, DedupClaim,
    DedupFinish, DlqCursor, DlqFilter, DlqPage, DlqScope, DlqStore, FailedSet, ForwardOutcome,
    ForwardRequest, GuardStore, Hold, IngestLimits, IngestOutcome, KeySchema, Lease, QueueStore,
    Receipt, ReceiptOutcome, ReplayOptions, RetryRequest, StatsStore, Store, StoreResult, Update,
};

#[derive(Debug)]
pub struct CountingStore {
    inner: Arc<dyn Store>,
    calls: AtomicUsize,
    writes: AtomicUsize,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            calls: AtomicUsize::new(0),
            writes: AtomicUsize::new(0),
        }
    }
    /// Every store call made through this wrapper.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    /// The calls that can change the store.
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }
    fn count(&self, write: bool) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if write {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Store for CountingStore {
    fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }
    fn keys(&self) -> &KeySchema {
        self.inner.keys()
    }
    fn now_ms(&self) -> i64 {
        self.inner.now_ms()
    }
}

#[async_trait]
impl QueueStore for CountingStore {
    async fn enqueue(&self, queue: &QueueName, envelopes: &[Envelope]) -> StoreResult<usize> {
        self.count(true);
        self.inner.enqueue(queue, envelopes).await
    }
    async fn ingest(
        &self,
        queue: &QueueName,
        limits: &IngestLimits<'_>,
        envelopes: &[Envelope],
    ) -> StoreResult<IngestOutcome> {
        self.count(true);
        self.inner.ingest(queue, limits, envelopes).await
    }
    async fn lease(
        &self,
        queue: &QueueName,
        worker: &WorkerId,
        max: usize,
        lease_for: Duration,
    ) -> StoreResult<Lease> {
        self.count(true);
        self.inner.lease(queue, worker, max, lease_for).await
    }
    async fn ack(&self, queue: &QueueName, receipts: &[Receipt]) -> StoreResult<ReceiptOutcome> {
        self.count(true);
        self.inner.ack(queue, receipts).await
    }
    async fn forward(
        &self,
        from: &QueueName,
        to: &QueueName,
        requests: &[ForwardRequest],
    ) -> StoreResult<ForwardOutcome> {
        self.count(true);
        self.inner.forward(from, to, requests).await
    }
    async fn forward_held(
        &self,
        from: &QueueName,
        to: &QueueName,
        requests: &[ForwardRequest],
        hold: Hold<'_>,
    ) -> StoreResult<ForwardOutcome> {
        self.count(true);
        self.inner.forward_held(from, to, requests, hold).await
    }
    async fn extend(
        &self,
        queue: &QueueName,
        receipts: &[Receipt],
        lease_for: Duration,
    ) -> StoreResult<ReceiptOutcome> {
        self.count(true);
        self.inner.extend(queue, receipts, lease_for).await
    }
    async fn schedule_retry(
        &self,
        queue: &QueueName,
        retries: &[RetryRequest],
    ) -> StoreResult<ReceiptOutcome> {
        self.count(true);
        self.inner.schedule_retry(queue, retries).await
    }
    async fn defer(
        &self,
        queue: &QueueName,
        receipts: &[Receipt],
        due_at_ms: i64,
    ) -> StoreResult<ReceiptOutcome> {
        self.count(true);
        self.inner.defer(queue, receipts, due_at_ms).await
    }
    async fn release(
        &self,
        queue: &QueueName,
        receipts: &[Receipt],
    ) -> StoreResult<ReceiptOutcome> {
        self.count(true);
        self.inner.release(queue, receipts).await
    }
    async fn promote_due(&self, queue: &QueueName, max: usize) -> StoreResult<usize> {
        self.count(true);
        self.inner.promote_due(queue, max).await
    }
    async fn dead_letter(
        &self,
        queue: &QueueName,
        requests: &[DeadLetterRequest],
    ) -> StoreResult<ReceiptOutcome> {
        self.count(true);
        self.inner.dead_letter(queue, requests).await
    }
    async fn recover_expired(&self, queue: &QueueName, max: usize) -> StoreResult<usize> {
        self.count(true);
        self.inner.recover_expired(queue, max).await
    }
    async fn scheduled_entries(
        &self,
        queue: &ward::model::QueueName,
        max_per_partition: usize,
    ) -> StoreResult<Vec<ward::model::Envelope>> {
        self.count(false);
        self.inner.scheduled_entries(queue, max_per_partition).await
    }
}

#[async_trait]
impl DlqStore for CountingStore {
    async fn failed_count(
        &self,
        queue: &QueueName,
        set: FailedSet,
        filter: &DlqFilter,
    ) -> StoreResult<u64> {
        self.count(false);
        self.inner.failed_count(queue, set, filter).await
    }
    async fn failed_page(
        &self,
        queue: &QueueName,
        set: FailedSet,
        filter: &DlqFilter,
        cursor: &DlqCursor,
        limit: usize,
    ) -> StoreResult<DlqPage> {
        self.count(false);
        self.inner
            .failed_page(queue, set, filter, cursor, limit)
            .await
    }
    async fn failed_entries(
        &self,
        queue: &QueueName,
        set: FailedSet,
        ids: &[ward::model::EnvelopeId],
    ) -> StoreResult<Vec<ward::model::DlqEntry>> {
        self.count(false);
        self.inner.failed_entries(queue, set, ids).await
    }
    async fn failed_groups(
        &self,
        queue: &QueueName,
        set: FailedSet,
        filter: &DlqFilter,
        bucket_ms: i64,
        cursor: &DlqCursor,
    ) -> StoreResult<ward::store::GroupStep> {
        self.count(false);
        self.inner
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
        self.count(true);
        self.inner.replay(queue, from, scope, options).await
    }
    async fn purge(
        &self,
        queue: &QueueName,
        set: FailedSet,
        scope: &DlqScope,
        max_items: usize,
    ) -> StoreResult<BatchResult> {
        self.count(true);
        self.inner.purge(queue, set, scope, max_items).await
    }
    async fn bury(
        &self,
        queue: &QueueName,
        scope: &DlqScope,
        max_items: usize,
    ) -> StoreResult<BatchResult> {
        self.count(true);
        self.inner.bury(queue, scope, max_items).await
    }
}

#[async_trait]
impl ControlStore for CountingStore {
    async fn test_result_put(
        &self,
        id: &str,
        result: &ward::model::TestDelivery,
    ) -> StoreResult<()> {
        self.count(true);
        self.inner.test_result_put(id, result).await
    }
    async fn test_result_get(&self, id: &str) -> StoreResult<Option<ward::model::TestDelivery>> {
        self.count(false);
        self.inner.test_result_get(id).await
    }
    async fn set_flag(&self, flag: &Flag, state: Option<&FlagState>) -> StoreResult<()> {
        self.count(true);
        self.inner.set_flag(flag, state).await
    }
    async fn clear_flag_if(&self, flag: &Flag, expected: &FlagState) -> StoreResult<bool> {
        self.count(true);
        self.inner.clear_flag_if(flag, expected).await
    }
    async fn flags(&self) -> StoreResult<Vec<(String, FlagState)>> {
        self.count(false);
        self.inner.flags().await
    }
    async fn config_set(&self, key: &str, value: Option<&str>) -> StoreResult<()> {
        self.count(true);
        self.inner.config_set(key, value).await
    }
    async fn config_get(&self, key: &str) -> StoreResult<Option<String>> {
        self.count(false);
        self.inner.config_get(key).await
    }
    async fn config_all(&self) -> StoreResult<Vec<(String, String)>> {
        self.count(false);
        self.inner.config_all().await
    }
    async fn subscribe(&self) -> StoreResult<broadcast::Receiver<Update>> {
        self.count(false);
        self.inner.subscribe().await
    }
}

#[async_trait]
impl AlertStore for CountingStore {
    async fn group_load(
        &self,
        id: &str,
    ) -> StoreResult<Option<(u64, ward::engine::grouping::GroupState)>> {
        self.count(false);
        self.inner.group_load(id).await
    }
    async fn group_store(
        &self,
        id: &str,
        expected: u64,
        state: &ward::engine::grouping::GroupState,
    ) -> StoreResult<bool> {
        self.count(true);
        self.inner.group_store(id, expected, state).await
    }
    async fn group_delete(&self, id: &str, expected: u64) -> StoreResult<bool> {
        self.count(true);
        self.inner.group_delete(id, expected).await
    }
    async fn groups_due(&self, max: usize, hold: Duration) -> StoreResult<Vec<String>> {
        self.count(true);
        self.inner.groups_due(max, hold).await
    }
    async fn groups_summary(&self) -> StoreResult<(u64, Option<i64>)> {
        self.count(false);
        self.inner.groups_summary().await
    }
    async fn notify_log_get(
        &self,
        id: &str,
    ) -> StoreResult<Option<ward::engine::grouping::NotifyLog>> {
        self.count(false);
        self.inner.notify_log_get(id).await
    }
    async fn notify_log_put(
        &self,
        id: &str,
        log: &ward::engine::grouping::NotifyLog,
        ttl_ms: u64,
    ) -> StoreResult<()> {
        self.count(true);
        self.inner.notify_log_put(id, log, ttl_ms).await
    }
    async fn silence_put(&self, silence: &ward::model::Silence) -> StoreResult<()> {
        self.count(true);
        self.inner.silence_put(silence).await
    }
    async fn silences(&self) -> StoreResult<Vec<ward::model::Silence>> {
        self.count(false);
        self.inner.silences().await
    }
    async fn silence_get(&self, id: &str) -> StoreResult<Option<ward::model::Silence>> {
        self.count(false);
        self.inner.silence_get(id).await
    }
    async fn silences_prune(&self, ended_before_ms: i64) -> StoreResult<usize> {
        self.count(true);
        self.inner.silences_prune(ended_before_ms).await
    }
    async fn alerts_note(&self, alerts: &[ward::model::SeenAlert]) -> StoreResult<()> {
        self.count(true);
        self.inner.alerts_note(alerts).await
    }
    async fn alerts_seen(
        &self,
        since_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<ward::model::SeenAlert>> {
        self.count(false);
        self.inner.alerts_seen(since_ms, limit).await
    }
    async fn alerts_prune(&self, seen_before_ms: i64) -> StoreResult<usize> {
        self.count(true);
        self.inner.alerts_prune(seen_before_ms).await
    }
}

#[async_trait]
impl AuditStore for CountingStore {
    async fn audit_append(&self, record: &AuditRecord) -> StoreResult<String> {
        self.count(true);
        self.inner.audit_append(record).await
    }
    async fn audit_recent(&self, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        self.count(false);
        self.inner.audit_recent(limit).await
    }
}

#[async_trait]
impl GuardStore for CountingStore {
    async fn dedup_claim(
        &self,
        owner: &str,
        keys: &[String],
        hold: Duration,
        window: Duration,
    ) -> StoreResult<Vec<DedupClaim>> {
        self.count(true);
        self.inner.dedup_claim(owner, keys, hold, window).await
    }
    async fn dedup_finish(
        &self,
        owner: &str,
        outcomes: &[(String, DedupFinish)],
    ) -> StoreResult<()> {
        self.count(true);
        self.inner.dedup_finish(owner, outcomes).await
    }
    async fn rate_limit(
        &self,
        name: &str,
        limit: &RateLimit,
        quantity: u32,
    ) -> StoreResult<Verdict> {
        self.count(true);
        self.inner.rate_limit(name, limit, quantity).await
    }
    async fn breaker_load(&self, name: &str) -> StoreResult<Option<(u64, Breaker)>> {
        self.count(false);
        self.inner.breaker_load(name).await
    }
    async fn breaker_store(
        &self,
        name: &str,
        expected: u64,
        breaker: &Breaker,
    ) -> StoreResult<bool> {
        self.count(true);
        self.inner.breaker_store(name, expected, breaker).await
    }
    async fn breakers(&self) -> StoreResult<Vec<(String, Breaker)>> {
        self.count(false);
        self.inner.breakers().await
    }
}

#[async_trait]
impl StatsStore for CountingStore {
    async fn stats(&self, queues: &[QueueName]) -> StoreResult<StoreStats> {
        self.count(false);
        self.inner.stats(queues).await
    }
    async fn control_read(
        &self,
        queues: &[QueueName],
        audit_limit: usize,
    ) -> StoreResult<ControlRead> {
        self.count(false);
        self.inner.control_read(queues, audit_limit).await
    }
    async fn beat(&self, worker: &str, beat: Option<&WorkerBeat>) -> StoreResult<()> {
        self.count(true);
        self.inner.beat(worker, beat).await
    }
}
