//! Ingest on Redis as group commit: one writer task per partition takes the requests that
//! arrived while its earlier calls were out and sends them as one script call (`ingest.lua`),
//! which checks and stores each in order exactly as if it came alone. Alone, a request is one
//! call as before; under load, many requests share a round trip, a Lua call and an LPUSH.

use std::sync::{Arc, Mutex, PoisonError};

use ::redis::{Script, Value};
use tokio::sync::{mpsc, oneshot};

use super::conn::Conn;
use super::replication::Replication;
use super::value_string;
use crate::engine::ratelimit::RateLimit;
use crate::model::QueueName;
use crate::store::keys::KeySchema;
use crate::store::{MAX_INGEST, StoreError, StoreResult};

/// The most requests one call takes; with `MAX_INGEST` alerts in all, it bounds the call.
const MAX_REQUESTS_PER_CALL: usize = 64;
/// Script calls a partition's writer keeps out at once. With one, the writer and the HTTP
/// connections waiting on it idle while a call is in Redis (a quarter of both cores in the
/// ingest bench); with two, the next call gathers what arrives meanwhile: +12 % requests/s.
/// Redis runs them in turn, and requests out together are concurrent, so either order is one
/// they could have arrived in.
const CALLS_IN_FLIGHT: usize = 2;
/// Requests waiting for their partition's writer before senders wait too.
const QUEUED_REQUESTS: usize = 1_024;

/// One ingest request, its bodies encoded, for its partition's writer.
pub(crate) struct IngestRequest {
    pub queue: QueueName,
    pub limiter: String,
    pub share: RateLimit,
    pub cap: u64,
    /// Each tenant and how many alerts it posts, in the order they are checked.
    pub tenants: Vec<(String, u32)>,
    /// (id, stored body) of each alert.
    pub items: Vec<(String, Vec<u8>)>,
    pub now_us: i64,
}

impl IngestRequest {
    /// Requests of one call share the queue and the limits.
    fn joins(&self, other: &Self) -> bool {
        self.queue == other.queue
            && self.limiter == other.limiter
            && self.share == other.share
            && self.cap == other.cap
    }
}

/// A request waiting for its writer, and where its verdict goes.
struct Job {
    request: IngestRequest,
    reply: oneshot::Sender<StoreResult<ScriptVerdict>>,
}

/// What the script said of one request.
#[derive(Debug)]
pub(crate) enum ScriptVerdict {
    Stored {
        added: usize,
    },
    /// The tenant at this index (from 0) was over its limit; the TAT it saw (µs), if any.
    Rated {
        tenant: usize,
        tat_seen: Option<i64>,
    },
    Full {
        depth: u64,
    },
}

/// What a writer needs: nothing that keeps the store itself alive, so dropping the store ends
/// its writers (their channels close).
#[derive(Clone)]
pub(crate) struct WriterParts {
    pub conn: Conn,
    pub keys: KeySchema,
    pub replication: Arc<Replication>,
}

/// The writers, one per partition, started on first use and again if one has stopped (its
/// runtime ended, as between tests).
pub(crate) struct IngestWriters {
    parts: WriterParts,
    senders: Vec<Mutex<Option<mpsc::Sender<Job>>>>,
}

impl IngestWriters {
    pub(crate) fn new(parts: WriterParts, partitions: u16) -> Self {
        Self {
            parts,
            senders: (0..partitions).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// Hand `request` to `partition`'s writer and wait for its verdict.
    pub(crate) async fn submit(
        &self,
        partition: u16,
        request: IngestRequest,
    ) -> StoreResult<ScriptVerdict> {
        let (reply, verdict) = oneshot::channel();
        let mut job = Job { request, reply };
        for _attempt in 0..2 {
            let sender = self.sender(partition);
            match sender.send(job).await {
                Ok(()) => {
                    return verdict.await.unwrap_or_else(|_| {
                        Err(StoreError::Unreachable(
                            "the ingest writer stopped before answering".to_owned(),
                        ))
                    });
                }
                Err(mpsc::error::SendError(back)) => {
                    job = back;
                    self.forget(partition, &sender);
                }
            }
        }
        Err(StoreError::Unreachable(
            "no ingest writer could be started".to_owned(),
        ))
    }

    fn sender(&self, partition: u16) -> mpsc::Sender<Job> {
        let mut slot = self.senders[usize::from(partition)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = slot.as_ref().filter(|s| !s.is_closed()) {
            return sender.clone();
        }
        let (sender, receiver) = mpsc::channel(QUEUED_REQUESTS);
        tokio::spawn(write(self.parts.clone(), partition, receiver));
        *slot = Some(sender.clone());
        sender
    }

    fn forget(&self, partition: u16, stopped: &mpsc::Sender<Job>) {
        let mut slot = self.senders[usize::from(partition)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|s| s.same_channel(stopped)) {
            *slot = None;
        }
    }
}

fn script() -> &'static Script {
    static SCRIPT: std::sync::OnceLock<Script> = std::sync::OnceLock::new();
    SCRIPT.get_or_init(|| Script::new(include_str!("lua/ingest.lua")))
}

/// A partition's writer: up to `CALLS_IN_FLIGHT` calls out at once, each carrying every
/// request queued meanwhile.
async fn write(parts: WriterParts, partition: u16, mut receiver: mpsc::Receiver<Job>) {
    use futures::StreamExt as _;
    let mut next: Option<Job> = None;
    let mut calls = futures::stream::FuturesUnordered::new();
    let mut open = true;
    loop {
        // Ends (`else`) once the senders are gone and every job is answered.
        let first = tokio::select! {
            biased;
            Some(()) = calls.next(), if !calls.is_empty() => continue,
            job = async {
                match next.take() {
                    Some(job) => Some(job),
                    None => receiver.recv().await,
                }
            }, if (open || next.is_some()) && calls.len() < CALLS_IN_FLIGHT => {
                let Some(job) = job else {
                    open = false;
                    continue;
                };
                job
            }
            else => return,
        };
        let mut alerts = first.request.items.len();
        let mut batch = vec![first];
        while batch.len() < MAX_REQUESTS_PER_CALL {
            let Ok(job) = receiver.try_recv() else { break };
            let items = job.request.items.len();
            if batch[0].request.joins(&job.request) && alerts + items <= MAX_INGEST {
                alerts += items;
                batch.push(job);
            } else {
                next = Some(job);
                break;
            }
        }
        calls.push(answer(&parts, partition, batch));
    }
}

/// Makes `batch`'s call and sends each job its verdict.
async fn answer(parts: &WriterParts, partition: u16, batch: Vec<Job>) {
    let requests: Vec<&IngestRequest> = batch.iter().map(|job| &job.request).collect();
    match call(parts, partition, &requests).await {
        Ok((verdicts, replicated)) => {
            for (job, verdict) in batch.into_iter().zip(verdicts) {
                // Only what was stored waited for the replicas; a refusal stands as it is.
                let reply = match (&verdict, &replicated) {
                    (ScriptVerdict::Stored { .. }, Err(error)) => Err(copy_error(error)),
                    _ => Ok(verdict),
                };
                let _ = job.reply.send(reply);
            }
        }
        Err(error) => {
            for job in batch {
                let _ = job.reply.send(Err(copy_error(&error)));
            }
        }
    }
}

/// One script call for `batch`, its verdicts, and then (on a cluster) whether the replicas
/// confirmed what it stored. The call is made at the latest of the requests' times.
async fn call(
    parts: &WriterParts,
    partition: u16,
    batch: &[&IngestRequest],
) -> StoreResult<(Vec<ScriptVerdict>, StoreResult<()>)> {
    let head = batch[0];
    let keys = &parts.keys;
    let queue_key = keys.queue(partition, &head.queue);
    let mut invoke = script().prepare_invoke();
    invoke.key(&queue_key).key(keys.bodies(partition));
    // Each tenant's TAT key once, however many requests name it; a request names it by index.
    let mut tat_names: Vec<String> = Vec::new();
    let mut indices: Vec<Vec<usize>> = Vec::with_capacity(batch.len());
    for job in batch {
        let mut mine = Vec::with_capacity(job.tenants.len());
        for (tenant, _) in &job.tenants {
            let name = format!("{}:{tenant}", job.limiter);
            let index = if let Some(i) = tat_names.iter().position(|known| *known == name) {
                i
            } else {
                invoke.key(keys.rate_limit_in(partition, &name));
                tat_names.push(name);
                tat_names.len() - 1
            };
            mine.push(index + 1);
        }
        indices.push(mine);
    }
    let t = head.share.emission_interval_us();
    let tau = t.saturating_mul(i64::from(head.share.burst.max(1)));
    let now_us = batch
        .iter()
        .map(|job| job.now_us)
        .max()
        .unwrap_or(head.now_us);
    invoke
        .arg(now_us)
        .arg(t)
        .arg(tau)
        .arg(head.cap)
        .arg(batch.len());
    for (job, indices) in batch.iter().zip(&indices) {
        invoke.arg(job.tenants.len());
        for ((_, quantity), index) in job.tenants.iter().zip(indices) {
            invoke.arg(*index).arg(*quantity);
        }
        invoke.arg(job.items.len());
        for (id, body) in &job.items {
            invoke.arg(id.as_str()).arg(body.as_slice());
        }
    }
    let mut conn = parts.conn.clone();
    let reply: Vec<Value> = invoke
        .invoke_async(&mut conn)
        .await
        .map_err(StoreError::redis("ingest"))?;
    let verdicts = reply
        .into_iter()
        .map(decode)
        .collect::<StoreResult<Vec<_>>>()?;
    if verdicts.len() != batch.len() {
        return Err(protocol("a verdict per request"));
    }
    // Even a request whose ids were all stored before waits: its first try may not have.
    let stored = verdicts
        .iter()
        .any(|v| matches!(v, ScriptVerdict::Stored { .. }));
    let replicated = if stored {
        parts
            .replication
            .wait(&conn, std::slice::from_ref(&queue_key))
            .await
    } else {
        Ok(())
    };
    Ok((verdicts, replicated))
}

fn decode(value: Value) -> StoreResult<ScriptVerdict> {
    let Value::Array(fields) = value else {
        return Err(protocol("a verdict is an array"));
    };
    let mut fields = fields.into_iter();
    let word = fields.next().and_then(value_string);
    match (word.as_deref(), fields.next(), fields.next()) {
        (Some("ok"), Some(Value::Int(added)), _) => Ok(ScriptVerdict::Stored {
            added: usize::try_from(added).unwrap_or(0),
        }),
        (Some("full"), Some(Value::Int(depth)), _) => Ok(ScriptVerdict::Full {
            depth: u64::try_from(depth).unwrap_or(0),
        }),
        (Some("rate"), Some(Value::Int(index)), seen) => Ok(ScriptVerdict::Rated {
            tenant: usize::try_from(index - 1).map_err(|_| protocol("tenant index from 1"))?,
            tat_seen: seen.and_then(value_string).and_then(|s| s.parse().ok()),
        }),
        _ => Err(protocol("unexpected verdict")),
    }
}

fn protocol(detail: &str) -> StoreError {
    StoreError::Protocol {
        op: "ingest",
        detail: detail.to_owned(),
    }
}

/// The batch's error for each of its requests (a Redis error is not `Clone`).
fn copy_error(error: &StoreError) -> StoreError {
    match error {
        StoreError::NotReplicated {
            acked,
            wanted,
            timeout,
        } => StoreError::NotReplicated {
            acked: *acked,
            wanted: *wanted,
            timeout: *timeout,
        },
        StoreError::Timeout { op, timeout } => StoreError::Timeout {
            op,
            timeout: *timeout,
        },
        other if other.is_unavailable() => StoreError::Unreachable(other.to_string()),
        other => StoreError::Protocol {
            op: "ingest",
            detail: other.to_string(),
        },
    }
}
