//! The Redis store's dead-letter queue: pages, search, groups and remediation.

use ::redis::Value;
use async_trait::async_trait;

use super::{RedisStore, scripts, split_stored, value_string};
use crate::model::{DlqEntry, DlqMeta, EnvelopeId, QueueName};
use crate::store::{
    BatchResult, DlqCursor, DlqFilter, DlqGroup, DlqPage, DlqScope, DlqStore, FailedSet,
    GROUP_BUCKET_MS, GROUP_SCAN_BUDGET, GroupStep, ReplayOptions, SCAN_BUDGET, StoreError,
    StoreResult, check_batch, check_bucket, check_step, decode_envelope, is_empty_scope,
    merge_groups, next_after_step, page_across_partitions, step_budget,
};

#[async_trait]
impl DlqStore for RedisStore {
    async fn failed_count(
        &self,
        queue: &QueueName,
        set: FailedSet,
        filter: &DlqFilter,
    ) -> StoreResult<u64> {
        let keys = &self.inner.keys;
        let mut conn = self.conn();
        let set_key = |p: u16| match set {
            FailedSet::Dlq => keys.dlq(p, queue),
            FailedSet::Dead => keys.dead(p, queue),
        };
        if !filter.has_field_filters() {
            // Every partition's count in one round trip.
            let (lower, upper) = lex_bounds(&DlqCursor::start(), filter);
            let mut pipe = ::redis::pipe();
            for p in 0..self.partitions() {
                pipe.cmd("ZLEXCOUNT")
                    .arg(set_key(p))
                    .arg(&lower)
                    .arg(&upper);
            }
            let counts: Vec<u64> = pipe
                .query_async(&mut conn)
                .await
                .map_err(StoreError::redis("dlq count"))?;
            return Ok(counts.into_iter().sum());
        }
        let mut total = 0u64;
        let mut from = Some(DlqCursor::start());
        while let Some(cursor) = from {
            let step = self
                .failed_step(queue, set, &Step::new("count", filter, &cursor))
                .await?;
            total += step.moved as u64;
            from = next_after_step(&cursor, step.done, step.last, self.partitions());
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
        page_across_partitions(self.partitions(), cursor, limit, |from, want| async move {
            let args = Step {
                max_hits: want,
                ..Step::new("page", filter, &from)
            };
            let step = self.failed_step(queue, set, &args).await?;
            Ok((step.entries, step.done, step.last))
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
        let mut found: Vec<DlqEntry> = Vec::new();
        if ids.is_empty() {
            return Ok(found);
        }
        let filter = DlqFilter::default();
        for partition in 0..self.partitions() {
            let from = DlqCursor::start().at(partition, String::new());
            let args = Step {
                max_hits: ids.len(),
                ids: Some(ids),
                ..Step::new("page", &filter, &from)
            };
            let step = self.failed_step(queue, set, &args).await?;
            found.extend(step.entries);
        }
        found.sort_by_key(|e| ids.iter().position(|id| *id == e.meta.id));
        found.dedup_by(|a, b| a.meta.id == b.meta.id);
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
        if cursor.partition >= self.partitions() {
            return Ok(GroupStep::default());
        }
        let args = Step {
            max_hits: GROUP_SCAN_BUDGET,
            budget: GROUP_SCAN_BUDGET,
            bucket_ms,
            ..Step::new("groups", filter, cursor)
        };
        let step = self.failed_step(queue, set, &args).await?;
        Ok(GroupStep {
            groups: step.groups,
            examined: step.examined as u64,
            next: next_after_step(cursor, step.done, step.last, self.partitions()),
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
        self.failed_batch(queue, from, "replay", scope, options)
            .await
    }

    async fn purge(
        &self,
        queue: &QueueName,
        set: FailedSet,
        scope: &DlqScope,
        max_items: usize,
    ) -> StoreResult<BatchResult> {
        self.failed_move(queue, set, "purge", scope, max_items)
            .await
    }

    async fn bury(
        &self,
        queue: &QueueName,
        scope: &DlqScope,
        max_items: usize,
    ) -> StoreResult<BatchResult> {
        self.failed_move(queue, FailedSet::Dlq, "bury", scope, max_items)
            .await
    }
}

/// What one call of `failed.lua` is asked to do.
struct Step<'a> {
    op: &'a str,
    filter: &'a DlqFilter,
    /// The partition, position and direction.
    from: &'a DlqCursor,
    max_hits: usize,
    budget: usize,
    options: ReplayOptions,
    /// Only these entries (the filter and cursor position are then ignored).
    ids: Option<&'a [EnvelopeId]>,
    bucket_ms: i64,
}

impl<'a> Step<'a> {
    fn new(op: &'a str, filter: &'a DlqFilter, from: &'a DlqCursor) -> Self {
        Self {
            op,
            filter,
            from,
            max_hits: usize::MAX >> 1,
            budget: SCAN_BUDGET,
            options: ReplayOptions::default(),
            ids: None,
            bucket_ms: GROUP_BUCKET_MS,
        }
    }
}

struct FailedStep {
    done: bool,
    last: String,
    examined: usize,
    moved: usize,
    poisoned: usize,
    entries: Vec<DlqEntry>,
    groups: Vec<DlqGroup>,
}

impl FailedStep {
    fn parse(partition: u16, groups: bool, reply: Vec<Value>) -> StoreResult<Self> {
        let protocol = |detail: &str| StoreError::Protocol {
            op: "dlq step",
            detail: detail.to_owned(),
        };
        let mut fields = reply.into_iter();
        let mut next_int = || -> StoreResult<i64> {
            match fields.next() {
                Some(Value::Int(n)) => Ok(n),
                _ => Err(protocol("expected an integer")),
            }
        };
        let done = next_int()? == 1;
        let last = match fields.next() {
            Some(v) => value_string(v).ok_or_else(|| protocol("expected the last key"))?,
            None => return Err(protocol("short reply")),
        };
        let mut next_int = || -> StoreResult<i64> {
            match fields.next() {
                Some(Value::Int(n)) => Ok(n),
                _ => Err(protocol("expected an integer")),
            }
        };
        let examined = next_int()? as usize;
        let moved = next_int()? as usize;
        let poisoned = next_int()? as usize;
        let rest: Vec<Value> = fields.collect();
        let mut step = Self {
            done,
            last,
            examined,
            moved,
            poisoned,
            entries: Vec::new(),
            groups: Vec::new(),
        };
        if groups {
            for chunk in rest.chunks_exact(3) {
                let (Value::Int(bucket_ms), Value::Int(count)) = (&chunk[1], &chunk[2]) else {
                    return Err(protocol("expected a bucket and a count"));
                };
                step.groups.push(DlqGroup {
                    error_class: lossy(&chunk[0]),
                    bucket_ms: *bucket_ms,
                    count: u64::try_from(*count).unwrap_or(0),
                });
            }
            let unsorted = std::mem::take(&mut step.groups);
            merge_groups(&mut step.groups, unsorted);
            return Ok(step);
        }
        step.entries.reserve(rest.len() / 2);
        for chunk in rest.chunks_exact(2) {
            let meta: DlqMeta = serde_json::from_str(&lossy(&chunk[0]))
                .map_err(|e| protocol(&format!("DLQ metadata does not decode: {e}")))?;
            let envelope = match strict(&chunk[1]) {
                Some(stored) => {
                    let (attempts, replays, json) = split_stored(&stored);
                    decode_envelope(json, attempts, replays).map_err(|_| json.to_owned())
                }
                None => Err(lossy(&chunk[1])),
            };
            step.entries.push(DlqEntry {
                partition,
                meta,
                envelope,
            });
        }
        Ok(step)
    }
}

/// Text of a reply value, invalid UTF-8 replaced (ids, counters: never user bytes that matter).
fn lossy(value: &Value) -> String {
    match value {
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(n) => n.to_string(),
        _ => String::new(),
    }
}

/// Text of a reply value, `None` unless it is valid UTF-8.
fn strict(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// A filter field for the script: '' matches anything, '=v' only v (so `Some("")` is not "any").
/// What a DLQ metadata record (compact JSON written by `serde_json`) contains exactly when its
/// `field` equals `value`: `"field":"value"` with the value JSON-escaped. Inside a string value
/// every quote is escaped, so the needle cannot match there; finding it is far cheaper in Lua
/// than decoding the record. Empty when the field is not filtered.
fn field_needle(field: &str, value: Option<&str>) -> String {
    value.map_or_else(String::new, |v| {
        let quoted = serde_json::to_string(v).unwrap_or_default();
        format!("\"{field}\":{quoted}")
    })
}

impl RedisStore {
    /// One call of `failed.lua` on the cursor's partition.
    async fn failed_step(
        &self,
        queue: &QueueName,
        set: FailedSet,
        step: &Step<'_>,
    ) -> StoreResult<FailedStep> {
        let (filter, from) = (step.filter, step.from);
        let partition = from.partition;
        let keys = &self.inner.keys;
        let set_key = match set {
            FailedSet::Dlq => keys.dlq(partition, queue),
            FailedSet::Dead => keys.dead(partition, queue),
        };
        let (start, stop) = lex_bounds(from, filter);
        let text = filter.search().unwrap_or_default();
        let text_json = serde_json::to_string(&text).unwrap_or_default();
        let text_json = text_json
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or_default();
        let mut call = scripts().failed.prepare_invoke();
        call.key(set_key)
            .key(keys.dlq_meta(partition))
            .key(keys.queue(partition, queue))
            .key(keys.dead(partition, queue))
            .key(keys.bodies(partition))
            .arg(step.op)
            .arg(start)
            .arg(stop)
            .arg(step.max_hits)
            .arg(step_budget(filter, step.budget))
            .arg(field_needle("error_class", filter.error_class.as_deref()))
            .arg(field_needle("stage", filter.stage.as_deref()))
            .arg(field_needle("tenant", filter.tenant.as_deref()))
            .arg(field_needle("channel", filter.channel.as_deref()))
            .arg(step.options.max_replays)
            .arg(if step.options.reset_attempts {
                "1"
            } else {
                "0"
            })
            .arg(if set == FailedSet::Dlq { "1" } else { "0" })
            .arg(if step.ids.is_some() { "ids" } else { "filter" })
            .arg(&text)
            .arg(text_json)
            .arg(if from.newest_first { "desc" } else { "asc" })
            .arg(step.bucket_ms);
        for id in step.ids.unwrap_or_default() {
            call.arg(id.as_str());
        }
        let mut conn = self.conn();
        let reply: Vec<Value> = call
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::redis("dlq step"))?;
        FailedStep::parse(partition, step.op == "groups", reply)
    }

    /// Purge or bury: one bounded step of a move without the replay guard's options.
    async fn failed_move(
        &self,
        queue: &QueueName,
        set: FailedSet,
        op: &str,
        scope: &DlqScope,
        max_items: usize,
    ) -> StoreResult<BatchResult> {
        check_step(max_items)?;
        if is_empty_scope(scope) {
            return Ok(BatchResult::default());
        }
        let options = ReplayOptions {
            max_items,
            ..ReplayOptions::default()
        };
        self.failed_batch(queue, set, op, scope, options).await
    }

    /// Replay or purge: one bounded step, by ids on every partition or by filter on the cursor's.
    async fn failed_batch(
        &self,
        queue: &QueueName,
        set: FailedSet,
        op: &str,
        scope: &DlqScope,
        options: ReplayOptions,
    ) -> StoreResult<BatchResult> {
        let mut result = BatchResult::default();
        match scope {
            DlqScope::Ids(ids) => {
                check_batch(ids.len())?;
                let no_filter = DlqFilter::default();
                for partition in 0..self.partitions() {
                    let remaining = options.max_items - result.touched();
                    if remaining == 0 {
                        break;
                    }
                    let from = DlqCursor::start().at(partition, String::new());
                    let args = Step {
                        max_hits: remaining,
                        options,
                        ids: Some(ids),
                        ..Step::new(op, &no_filter, &from)
                    };
                    let step = self.failed_step(queue, set, &args).await?;
                    result.moved += step.moved;
                    result.poisoned += step.poisoned;
                }
                result.scanned = ids.len();
            }
            DlqScope::Filter { filter, cursor } => {
                if cursor.partition >= self.partitions() {
                    return Ok(result);
                }
                let args = Step {
                    max_hits: options.max_items,
                    options,
                    ..Step::new(op, filter, cursor)
                };
                let step = self.failed_step(queue, set, &args).await?;
                result.moved = step.moved;
                result.poisoned = step.poisoned;
                result.scanned = step.examined;
                result.next = next_after_step(cursor, step.done, step.last, self.partitions());
            }
        }
        Ok(result)
    }
}

/// The order-key bounds of a step from `cursor` under `filter`, in Redis `ZRANGEBYLEX`
/// syntax: (where the step starts, where it stops), in the scan's direction.
fn lex_bounds(cursor: &DlqCursor, filter: &DlqFilter) -> (String, String) {
    let (min, max) = filter.key_range();
    let bounded = filter.failed_before_ms.is_some();
    let after = cursor.after.as_str();
    if cursor.newest_first {
        let start = if after.is_empty() || (bounded && after > max.as_str()) {
            if bounded {
                format!("({max}")
            } else {
                "+".to_owned()
            }
        } else {
            format!("({after}")
        };
        let stop = if min.is_empty() {
            "-".to_owned()
        } else {
            format!("[{min}")
        };
        (start, stop)
    } else {
        let start = if after.is_empty() || after < min.as_str() {
            if min.is_empty() {
                "-".to_owned()
            } else {
                format!("[{min}")
            }
        } else {
            format!("({after}")
        };
        let stop = if bounded {
            format!("({max}")
        } else {
            "+".to_owned()
        };
        (start, stop)
    }
}
