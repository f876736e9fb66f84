//! The memory store's queues: enqueue, ingest, lease, settle and the janitor's moves.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{Body, MemoryStore, Stored, fence};
use crate::engine::clock::duration_ms;
use crate::engine::ratelimit::gcra;
use crate::model::{Envelope, EnvelopeId, QueueName, WorkerId};
use crate::store::{
    DeadLetterRequest, ForwardOutcome, ForwardRequest, Hold, IngestLimits, IngestOutcome, Lease,
    LeasedItem, QueueStore, Receipt, ReceiptOutcome, RetryRequest, Store, StoreResult, cap_share,
    check_batch, check_forward, check_ingest, dlq_meta_for, ingest_partition, lease_token,
    partition_share, settle_corrupt, tenant_quantities,
};

#[async_trait]
impl QueueStore for MemoryStore {
    async fn enqueue(&self, queue: &QueueName, envelopes: &[Envelope]) -> StoreResult<usize> {
        check_batch(envelopes.len())?;
        let bodies: Vec<_> = envelopes
            .iter()
            .map(|e| {
                let body = Body::Envelope(Arc::new(e.clone()));
                (self.partition_of(e), e.id.0.clone(), body)
            })
            .collect();
        let mut state = self.lock();
        let mut added = 0;
        for (partition, id, body) in bodies {
            added += usize::from(state.partitions[usize::from(partition)].add(queue, id, body));
        }
        Ok(added)
    }

    async fn ingest(
        &self,
        queue: &QueueName,
        limits: &IngestLimits<'_>,
        envelopes: &[Envelope],
    ) -> StoreResult<IngestOutcome> {
        check_ingest(envelopes)?;
        let partitions = self.keys.partitions();
        let p = ingest_partition(envelopes, partitions);
        let share = partition_share(&limits.rate_limit, partitions);
        let cap = cap_share(limits.queue_cap, partitions);
        let tenants: Vec<(String, u32)> = tenant_quantities(envelopes)
            .into_iter()
            .map(|(tenant, quantity)| {
                let name = format!("{}:{tenant}", limits.limiter);
                (self.keys.rate_limit_in(p, &name), quantity)
            })
            .collect();
        let bodies: Vec<_> = envelopes
            .iter()
            .map(|e| (e.id.0.clone(), Body::Envelope(Arc::new(e.clone()))))
            .collect();
        let now = self.now_ms();
        let now_us = now.saturating_mul(1000);
        let mut state = self.lock();
        // Every bucket first (as the script does): a refusal charges none.
        let mut tats = Vec::with_capacity(tenants.len());
        for (index, (key, quantity)) in tenants.iter().enumerate() {
            let stored = state
                .limiters
                .get(key)
                .filter(|(_, expires)| *expires > now)
                .map(|(tat, _)| *tat);
            let verdict = gcra(&share, stored, now_us, *quantity);
            if !verdict.allowed {
                let tenant = tenant_quantities(envelopes)
                    .get(index)
                    .map_or_else(String::new, |(t, _)| (*t).to_owned());
                return Ok(IngestOutcome::RateLimited {
                    tenant,
                    limit: share,
                    verdict,
                });
            }
            tats.push(verdict.tat_us);
        }
        let part = &mut state.partitions[usize::from(p)];
        let depth = part.queue(queue).waiting.len() as u64;
        if depth + envelopes.len() as u64 > cap {
            return Ok(IngestOutcome::Full {
                partition: p,
                depth,
                cap,
            });
        }
        let mut added = 0;
        for (id, body) in bodies {
            added += usize::from(part.add(queue, id, body));
        }
        for ((key, _), tat) in tenants.into_iter().zip(tats) {
            // Kept a minute past its TAT, like the Redis key.
            let expires = now + (tat - now_us) / 1000 + 60_000;
            state.limiters.insert(key, (tat, expires));
        }
        Ok(IngestOutcome::Accepted {
            partition: p,
            added,
            ids: envelopes.iter().map(|e| e.id.clone()).collect(),
        })
    }

    async fn lease(
        &self,
        queue: &QueueName,
        worker: &WorkerId,
        max: usize,
        lease_for: Duration,
    ) -> StoreResult<Lease> {
        check_batch(max)?;
        let now = self.now_ms();
        let deadline = now.saturating_add(duration_ms(lease_for));
        let token = lease_token(worker);
        let mut taken = Vec::new();
        {
            let mut state = self.lock();
            let count = state.partitions.len();
            let start = state.lease_start % count;
            state.lease_start = state.lease_start.wrapping_add(1);
            for offset in 0..count {
                let partition = (start + offset) % count;
                let part = &mut state.partitions[partition];
                while taken.len() < max {
                    let Some(id) = part.queue(queue).waiting.pop_front() else {
                        break;
                    };
                    part.release(queue, &id);
                    let q = part.queue(queue);
                    q.leases.insert((deadline, id.clone()));
                    q.lease_of.insert(id.clone(), (deadline, token.clone()));
                    let (body, attempts, replays) = match part.bodies.get(&id) {
                        Some(stored) => (stored.body.clone(), stored.attempts, stored.replays),
                        None => (Body::Raw(Arc::from("")), 0, 0),
                    };
                    taken.push((partition as u16, id, body, attempts, replays));
                }
            }
        }
        // Copying after the lock is released lets the other workers' calls proceed meanwhile.
        let mut corrupt = Vec::new();
        let mut lease = Lease {
            deadline_ms: deadline,
            ..Lease::default()
        };
        for (partition, id, body, attempts, replays) in taken {
            let receipt = Receipt {
                partition,
                id: EnvelopeId(id),
                token: token.clone(),
            };
            match body.decode(attempts, replays) {
                Ok(envelope) => lease.items.push(LeasedItem { receipt, envelope }),
                Err(error) => corrupt.push((receipt, error)),
            }
        }
        lease.dead_lettered_corrupt = settle_corrupt(self, queue, corrupt).await;
        Ok(lease)
    }

    async fn ack(&self, queue: &QueueName, receipts: &[Receipt]) -> StoreResult<ReceiptOutcome> {
        self.settle(
            queue,
            receipts.iter(),
            |r| r,
            |part, r| part.forget(&r.id.0),
        )
    }

    async fn forward(
        &self,
        from: &QueueName,
        to: &QueueName,
        requests: &[ForwardRequest],
    ) -> StoreResult<ForwardOutcome> {
        self.forward_into(from, to, requests, None)
    }

    async fn forward_held(
        &self,
        from: &QueueName,
        to: &QueueName,
        requests: &[ForwardRequest],
        hold: Hold<'_>,
    ) -> StoreResult<ForwardOutcome> {
        let deadline = self.now_ms().saturating_add(duration_ms(hold.lease_for));
        let token = lease_token(hold.worker);
        self.forward_into(from, to, requests, Some((deadline, &token)))
    }

    async fn extend(
        &self,
        queue: &QueueName,
        receipts: &[Receipt],
        lease_for: Duration,
    ) -> StoreResult<ReceiptOutcome> {
        let deadline = self.now_ms().saturating_add(duration_ms(lease_for));
        self.settle(
            queue,
            receipts.iter(),
            |r| r,
            |part, r| {
                let q = part.queue(queue);
                q.leases.insert((deadline, r.id.0.clone()));
                q.lease_of
                    .insert(r.id.0.clone(), (deadline, r.token.clone()));
            },
        )
    }

    async fn schedule_retry(
        &self,
        queue: &QueueName,
        retries: &[RetryRequest],
    ) -> StoreResult<ReceiptOutcome> {
        check_batch(retries.len())?;
        let bodies: Vec<_> = retries
            .iter()
            .map(|r| (r, Body::Envelope(Arc::new(r.envelope.clone()))))
            .collect();
        self.settle(
            queue,
            bodies.iter(),
            |(r, _)| &r.receipt,
            |part, (r, body)| {
                let id = &r.receipt.id.0;
                let stored = part
                    .bodies
                    .entry(id.clone())
                    .or_insert_with(|| Stored::new(body.clone()));
                stored.body = body.clone();
                stored.attempts += 1;
                part.queue(queue)
                    .scheduled
                    .insert((r.due_at_ms, id.clone()));
            },
        )
    }

    async fn defer(
        &self,
        queue: &QueueName,
        receipts: &[Receipt],
        due_at_ms: i64,
    ) -> StoreResult<ReceiptOutcome> {
        self.settle(
            queue,
            receipts.iter(),
            |r| r,
            |part, r| {
                part.queue(queue)
                    .scheduled
                    .insert((due_at_ms, r.id.0.clone()));
            },
        )
    }

    async fn release(
        &self,
        queue: &QueueName,
        receipts: &[Receipt],
    ) -> StoreResult<ReceiptOutcome> {
        // Pushed to the front last-first, so the batch keeps its order.
        let mut outcome = self.settle(
            queue,
            receipts.iter().rev(),
            |r| r,
            |part, r| {
                part.queue(queue).waiting.push_front(r.id.0.clone());
            },
        )?;
        outcome.stale.reverse();
        Ok(outcome)
    }

    async fn promote_due(&self, queue: &QueueName, max: usize) -> StoreResult<usize> {
        check_batch(max)?;
        let now = self.now_ms();
        let mut state = self.lock();
        let mut moved = 0;
        for part in &mut state.partitions {
            let q = part.queue(queue);
            while moved < max {
                match q.scheduled.first() {
                    Some((due, _)) if *due <= now => {}
                    _ => break,
                }
                if let Some((_, id)) = q.scheduled.pop_first() {
                    q.waiting.push_back(id);
                    moved += 1;
                }
            }
        }
        Ok(moved)
    }

    async fn dead_letter(
        &self,
        queue: &QueueName,
        requests: &[DeadLetterRequest],
    ) -> StoreResult<ReceiptOutcome> {
        let now = self.now_ms();
        self.settle(
            queue,
            requests.iter(),
            |r| &r.receipt,
            |part, r| {
                let meta = dlq_meta_for(queue, r, now);
                part.queue(queue).dlq.insert(meta.key.clone());
                part.meta.insert(r.receipt.id.0.clone(), meta);
            },
        )
    }

    async fn recover_expired(&self, queue: &QueueName, max: usize) -> StoreResult<usize> {
        check_batch(max)?;
        let now = self.now_ms();
        let mut state = self.lock();
        let mut moved = 0;
        for part in &mut state.partitions {
            let q = part.queue(queue);
            let mut expired = Vec::new();
            while moved + expired.len() < max {
                match q.leases.first() {
                    Some((deadline, _)) if *deadline <= now => {}
                    _ => break,
                }
                if let Some((_, id)) = q.leases.pop_first() {
                    q.lease_of.remove(&id);
                    expired.push(id);
                }
            }
            // To the front in reverse, so the earliest deadline is leased first again.
            for id in expired.iter().rev() {
                q.waiting.push_front(id.clone());
            }
            moved += expired.len();
            for id in expired {
                if let Some(stored) = part.bodies.get_mut(&id) {
                    stored.attempts += 1;
                }
            }
        }
        Ok(moved)
    }

    async fn scheduled_entries(
        &self,
        queue: &QueueName,
        max_per_partition: usize,
    ) -> StoreResult<Vec<Envelope>> {
        let state = self.lock();
        let mut out = Vec::new();
        for part in &state.partitions {
            let Some((_, q)) = part.queues.iter().find(|(name, _)| name == queue) else {
                continue;
            };
            out.extend(
                q.scheduled
                    .iter()
                    .take(max_per_partition)
                    .filter_map(|(_, id)| part.bodies.get(id))
                    .filter_map(|s| s.body.decode(s.attempts, s.replays).ok()),
            );
        }
        Ok(out)
    }
}

impl MemoryStore {
    /// `forward`'s step: each request's envelopes added on `to` (leased to `held`'s token
    /// until its deadline, when given, else queued), then the requests' receipts acked on
    /// `from`.
    fn forward_into(
        &self,
        from: &QueueName,
        to: &QueueName,
        requests: &[ForwardRequest],
        held: Option<(i64, &str)>,
    ) -> StoreResult<ForwardOutcome> {
        check_forward(requests, self.keys.partitions())?;
        let bodies: Vec<_> = requests
            .iter()
            .flat_map(|r| {
                r.envelopes.iter().map(|e| {
                    let body = Body::Envelope(Arc::new(e.clone()));
                    (r.receipt.partition, e.id.0.clone(), body)
                })
            })
            .collect();
        let mut state = self.lock();
        let mut outcome = ForwardOutcome::default();
        for (partition, id, body) in bodies {
            let part = &mut state.partitions[usize::from(partition)];
            let added = match held {
                None => part.add(to, id, body),
                Some((deadline, token)) => {
                    let receipt_id = EnvelopeId(id.clone());
                    let added = part.add_held(to, id, body, (deadline, token));
                    if added {
                        outcome.held.push(Receipt {
                            partition,
                            id: receipt_id,
                            token: token.to_owned(),
                        });
                    }
                    added
                }
            };
            outcome.enqueued += usize::from(added);
        }
        outcome.acked = fence(
            &mut state,
            from,
            requests.iter(),
            |r| &r.receipt,
            |part, r| part.forget(&r.receipt.id.0),
        );
        Ok(outcome)
    }
}
