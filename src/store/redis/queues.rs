//! The Redis store's queues: enqueue, ingest, lease, settle and the janitor's moves.

use std::sync::atomic::Ordering;
use std::time::Duration;

use ::redis::Value;
use async_trait::async_trait;

use super::ingest::{IngestRequest, ScriptVerdict};
use super::{
    RedisStore, SCHEDULED_BODIES_SCRIPT, SEEN_READ_MAX, encode_stored, redis_lease_token, scripts,
    split_stored,
};
use crate::engine::clock::duration_ms;
use crate::engine::ratelimit::gcra;
use crate::model::{Envelope, EnvelopeId, QueueName, WorkerId};
use crate::store::{
    DeadLetterRequest, ForwardOutcome, ForwardRequest, Hold, IngestLimits, IngestOutcome, Lease,
    LeasedItem, QueueStore, Receipt, ReceiptOutcome, RetryRequest, Store, StoreError, StoreResult,
    cap_share, check_batch, check_forward, check_ingest, decode_envelope, dlq_meta_for,
    encode_envelope, encode_json, ingest_partition, partition_share, settle_corrupt,
    tenant_quantities,
};

#[async_trait]
impl QueueStore for RedisStore {
    async fn enqueue(&self, queue: &QueueName, envelopes: &[Envelope]) -> StoreResult<usize> {
        check_batch(envelopes.len())?;
        let mut by_partition: Vec<Vec<(&str, Vec<u8>)>> =
            (0..self.partitions()).map(|_| Vec::new()).collect();
        for envelope in envelopes {
            by_partition[usize::from(self.partition_of(envelope))]
                .push((envelope.id.as_str(), encode_stored(envelope)?));
        }
        let touched: Vec<String> = by_partition
            .iter()
            .enumerate()
            .filter(|(_, items)| !items.is_empty())
            .map(|(partition, _)| self.inner.keys.queue(partition as u16, queue))
            .collect();
        // One call per partition touched, all sent at once on the multiplexed connection.
        let calls = by_partition
            .into_iter()
            .enumerate()
            .filter(|(_, items)| !items.is_empty())
            .map(|(partition, items)| self.enqueue_in(partition as u16, queue, items, None, None));
        let replies = futures::future::try_join_all(calls)
            .await
            .map_err(StoreError::redis("enqueue"))?;
        self.inner.replication.wait(&self.conn(), &touched).await?;
        Ok(replies.into_iter().map(|(added, _, _)| added).sum())
    }

    async fn ingest(
        &self,
        queue: &QueueName,
        limits: &IngestLimits<'_>,
        envelopes: &[Envelope],
    ) -> StoreResult<IngestOutcome> {
        check_ingest(envelopes)?;
        let partitions = self.partitions();
        let p = ingest_partition(envelopes, partitions);
        let share = partition_share(&limits.rate_limit, partitions);
        let cap = cap_share(limits.queue_cap, partitions);
        let tenants = tenant_quantities(envelopes);
        let now_us = self.now_ms().saturating_mul(1000);
        let items = envelopes
            .iter()
            .map(|envelope| Ok((envelope.id.0.clone(), encode_stored(envelope)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        let request = IngestRequest {
            queue: queue.clone(),
            limiter: limits.limiter.to_owned(),
            share,
            cap,
            tenants: tenants
                .iter()
                .map(|(tenant, quantity)| ((*tenant).to_owned(), *quantity))
                .collect(),
            items,
            now_us,
        };
        // The partition's writer sends it with whatever else arrived meanwhile (one EVALSHA).
        let verdict = self.inner.ingest_writers.submit(p, request).await?;
        match verdict {
            ScriptVerdict::Stored { added } => Ok(IngestOutcome::Accepted {
                partition: p,
                added,
                ids: envelopes.iter().map(|e| e.id.clone()).collect(),
            }),
            ScriptVerdict::Full { depth } => Ok(IngestOutcome::Full {
                partition: p,
                depth,
                cap,
            }),
            ScriptVerdict::Rated { tenant, tat_seen } => {
                let protocol = |detail: &str| StoreError::Protocol {
                    op: "ingest",
                    detail: detail.to_owned(),
                };
                let (tenant, quantity) = tenants
                    .get(tenant)
                    .ok_or_else(|| protocol("refusing tenant out of range"))?;
                let verdict = gcra(&share, tat_seen, now_us, *quantity);
                if verdict.allowed {
                    return Err(protocol("the script and the engine disagree"));
                }
                Ok(IngestOutcome::RateLimited {
                    tenant: (*tenant).to_owned(),
                    limit: share,
                    verdict,
                })
            }
        }
    }

    async fn forward(
        &self,
        from: &QueueName,
        to: &QueueName,
        requests: &[ForwardRequest],
    ) -> StoreResult<ForwardOutcome> {
        self.forward_into(from, to, requests, None).await
    }

    async fn forward_held(
        &self,
        from: &QueueName,
        to: &QueueName,
        requests: &[ForwardRequest],
        hold: Hold<'_>,
    ) -> StoreResult<ForwardOutcome> {
        let deadline = self.now_ms().saturating_add(duration_ms(hold.lease_for));
        let token = redis_lease_token(hold.worker);
        self.forward_into(from, to, requests, Some((deadline, &token)))
            .await
    }

    async fn lease(
        &self,
        queue: &QueueName,
        worker: &WorkerId,
        max: usize,
        lease_for: Duration,
    ) -> StoreResult<Lease> {
        check_batch(max)?;
        let keys = &self.inner.keys;
        let now = self.now_ms();
        let deadline = now.saturating_add(duration_ms(lease_for));
        let token = redis_lease_token(worker);
        let partitions = usize::from(self.partitions());
        let start = self.inner.lease_start.fetch_add(1, Ordering::Relaxed) % partitions;
        let mut lease = Lease {
            deadline_ms: deadline,
            ..Lease::default()
        };
        let mut conn = self.conn();
        let mut leased: Vec<(u16, Vec<String>)> = Vec::new();
        let mut taken = 0;
        for offset in 0..partitions {
            if taken >= max {
                break;
            }
            let p = ((start + offset) % partitions) as u16;
            let ids: Vec<String> = scripts()
                .lease
                .key(keys.queue(p, queue))
                .key(keys.leases(p, queue))
                .arg(max - taken)
                .arg(deadline)
                .arg(&token)
                .invoke_async(&mut conn)
                .await
                .map_err(StoreError::redis("lease"))?;
            if !ids.is_empty() {
                taken += ids.len();
                leased.push((p, ids));
            }
        }
        if leased.is_empty() {
            return Ok(lease);
        }
        // Leased to this token now, so the bodies cannot change; if this read fails, the
        // janitor hands the items out again when the lease lapses. One round trip for all.
        let mut pipe = ::redis::pipe();
        for (p, ids) in &leased {
            pipe.cmd("HMGET").arg(keys.bodies(*p)).arg(ids);
        }
        let bodies: Vec<Vec<Value>> = match pipe.query_async(&mut conn).await {
            Ok(bodies) => bodies,
            Err(error) => {
                // Handed back at once, counting no attempt; if that fails too, the janitor does.
                let receipts: Vec<Receipt> = leased
                    .iter()
                    .flat_map(|(p, ids)| {
                        ids.iter().map(|id| Receipt {
                            partition: *p,
                            id: EnvelopeId(id.clone()),
                            token: token.clone(),
                        })
                    })
                    .collect();
                let _ = self.release(queue, &receipts).await;
                return Err(StoreError::redis("lease")(error));
            }
        };
        let mut corrupt = Vec::new();
        for ((p, ids), bodies) in leased.into_iter().zip(bodies) {
            for (id, body) in ids.into_iter().zip(bodies) {
                let receipt = Receipt {
                    partition: p,
                    id: EnvelopeId(id),
                    token: token.clone(),
                };
                // A body that is not even UTF-8 is corrupt like any other undecodable one.
                let decoded = match body {
                    Value::BulkString(bytes) => String::from_utf8(bytes)
                        .map_err(|_| "stored envelope is not UTF-8".to_owned())
                        .and_then(|stored| {
                            let (attempts, replays, json) = split_stored(&stored);
                            decode_envelope(json, attempts, replays)
                        }),
                    _ => decode_envelope("", 0, 0),
                };
                match decoded {
                    Ok(envelope) => lease.items.push(LeasedItem { receipt, envelope }),
                    Err(error) => corrupt.push((receipt, error)),
                }
            }
        }
        lease.dead_lettered_corrupt = settle_corrupt(self, queue, corrupt).await;
        Ok(lease)
    }

    async fn ack(&self, queue: &QueueName, receipts: &[Receipt]) -> StoreResult<ReceiptOutcome> {
        check_batch(receipts.len())?;
        let items = receipts
            .iter()
            .map(|r| (r, String::new(), String::new()))
            .collect();
        self.settle(queue, "ack", None, items).await
    }

    async fn extend(
        &self,
        queue: &QueueName,
        receipts: &[Receipt],
        lease_for: Duration,
    ) -> StoreResult<ReceiptOutcome> {
        check_batch(receipts.len())?;
        let deadline = self.now_ms().saturating_add(duration_ms(lease_for));
        let items = receipts
            .iter()
            .map(|r| (r, String::new(), String::new()))
            .collect();
        self.settle(queue, "extend", Some(deadline), items).await
    }

    async fn schedule_retry(
        &self,
        queue: &QueueName,
        retries: &[RetryRequest],
    ) -> StoreResult<ReceiptOutcome> {
        check_batch(retries.len())?;
        let items = retries
            .iter()
            .map(|r| {
                Ok((
                    &r.receipt,
                    r.due_at_ms.to_string(),
                    encode_envelope(&r.envelope)?,
                ))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        self.settle(queue, "retry", None, items).await
    }

    async fn defer(
        &self,
        queue: &QueueName,
        receipts: &[Receipt],
        due_at_ms: i64,
    ) -> StoreResult<ReceiptOutcome> {
        check_batch(receipts.len())?;
        let items = receipts
            .iter()
            .map(|r| (r, due_at_ms.to_string(), String::new()))
            .collect();
        self.settle(queue, "defer", None, items).await
    }

    async fn release(
        &self,
        queue: &QueueName,
        receipts: &[Receipt],
    ) -> StoreResult<ReceiptOutcome> {
        check_batch(receipts.len())?;
        // Pushed to the front last-first, so the batch keeps its order.
        let items = receipts
            .iter()
            .rev()
            .map(|r| (r, String::new(), String::new()))
            .collect();
        self.settle(queue, "release", None, items).await
    }

    async fn promote_due(&self, queue: &QueueName, max: usize) -> StoreResult<usize> {
        self.move_due(queue, max, MoveDue::Promote).await
    }

    async fn dead_letter(
        &self,
        queue: &QueueName,
        requests: &[DeadLetterRequest],
    ) -> StoreResult<ReceiptOutcome> {
        check_batch(requests.len())?;
        let now = self.now_ms();
        let items = requests
            .iter()
            .map(|r| {
                let meta = dlq_meta_for(queue, r, now);
                Ok((
                    &r.receipt,
                    meta.key.clone(),
                    encode_json("DLQ metadata", &meta)?,
                ))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        self.settle(queue, "dlq", None, items).await
    }

    async fn recover_expired(&self, queue: &QueueName, max: usize) -> StoreResult<usize> {
        self.move_due(queue, max, MoveDue::Recover).await
    }

    async fn scheduled_entries(
        &self,
        queue: &QueueName,
        max_per_partition: usize,
    ) -> StoreResult<Vec<Envelope>> {
        let keys = &self.inner.keys;
        let mut pipe = ::redis::pipe();
        for p in 0..self.partitions() {
            pipe.cmd("EVAL")
                .arg(SCHEDULED_BODIES_SCRIPT)
                .arg(2)
                .arg(keys.scheduled(p, queue))
                .arg(keys.bodies(p))
                .arg(max_per_partition.clamp(1, SEEN_READ_MAX));
        }
        let mut conn = self.conn();
        let replies: Vec<Vec<Option<String>>> = pipe
            .query_async(&mut conn)
            .await
            .map_err(StoreError::redis("scheduled entries"))?;
        Ok(replies
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|stored| {
                let (attempts, replays, json) = split_stored(&stored);
                decode_envelope(json, attempts, replays).ok()
            })
            .collect())
    }
}

/// One partition's part of a `forward`: the receipts to ack, and the (id, stored body) of each
/// envelope to add.
type PartitionForward<'a> = (Vec<&'a Receipt>, Vec<(&'a str, Vec<u8>)>);

#[derive(Clone, Copy)]
enum MoveDue {
    /// Due retries back to the end of their queue.
    Promote,
    /// Expired leases back to the front of their queue, an attempt counted.
    Recover,
}

impl RedisStore {
    /// `forward`'s step, the new envelopes pushed or (`held`) leased to its token until its
    /// deadline: one enqueue.lua call per partition touched.
    async fn forward_into(
        &self,
        from: &QueueName,
        to: &QueueName,
        requests: &[ForwardRequest],
        held: Option<(i64, &str)>,
    ) -> StoreResult<ForwardOutcome> {
        check_forward(requests, self.partitions())?;
        let mut by_partition: Vec<PartitionForward<'_>> =
            (0..self.partitions()).map(|_| Default::default()).collect();
        for request in requests {
            let (receipts, items) = &mut by_partition[usize::from(request.receipt.partition)];
            receipts.push(&request.receipt);
            for envelope in &request.envelopes {
                items.push((envelope.id.as_str(), encode_stored(envelope)?));
            }
        }
        let mut calls = Vec::new();
        let mut counts = Vec::new();
        for (partition, (receipts, items)) in by_partition.into_iter().enumerate() {
            if receipts.is_empty() {
                continue;
            }
            let partition = partition as u16;
            counts.push((partition, receipts.len()));
            calls.push(self.enqueue_in(partition, to, items, Some((from, &receipts)), held));
        }
        let replies = futures::future::try_join_all(calls)
            .await
            .map_err(StoreError::redis("forward"))?;
        let mut outcome = ForwardOutcome::default();
        for ((partition, receipts), (added, stale, ids)) in counts.into_iter().zip(replies) {
            outcome.enqueued += added;
            outcome.acked.applied += receipts - stale.len();
            outcome
                .acked
                .stale
                .extend(stale.into_iter().map(EnvelopeId));
            if let Some((_, token)) = held {
                outcome.held.extend(ids.into_iter().map(|id| Receipt {
                    partition,
                    id: EnvelopeId(id),
                    token: token.to_owned(),
                }));
            }
        }
        Ok(outcome)
    }

    async fn move_due(&self, queue: &QueueName, max: usize, what: MoveDue) -> StoreResult<usize> {
        check_batch(max)?;
        let now = self.now_ms();
        let keys = &self.inner.keys;
        let mut conn = self.conn();
        let mut moved = 0;
        for p in 0..self.partitions() {
            if moved >= max {
                break;
            }
            let (source, mode) = match what {
                MoveDue::Promote => (keys.scheduled(p, queue), "promote"),
                MoveDue::Recover => (keys.leases(p, queue), "recover"),
            };
            let n: usize = scripts()
                .move_due
                .key(source)
                .key(keys.queue(p, queue))
                .key(keys.bodies(p))
                .arg(now)
                .arg(max - moved)
                .arg(mode)
                .invoke_async(&mut conn)
                .await
                .map_err(StoreError::redis(mode))?;
            moved += n;
        }
        Ok(moved)
    }
}
