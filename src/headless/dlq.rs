//! `ward dlq ls` and `ward dlq show`: the DLQ browser without the control room. The same store
//! calls and filters (fields, time bounds and the store's text search), the same order, the same
//! grouping; text and JSON out, every untrusted string sanitised (text) or escaped (JSON), and
//! secrets redacted.

use std::fmt::Write as _;

use serde::Serialize;

use crate::model::time::format_rfc3339_ms;
use crate::model::{
    DlqCursor, DlqEntry, DlqFilter, DlqGroup, EnvelopeId, FailedSet, GROUP_BUCKET_MS, MAX_BATCH,
    QueueName, merge_groups, sanitize,
};
use crate::sources::DlqSort;
use crate::store::{Store, StoreError, StoreResult};

/// The version of the `ward dlq` JSON documents.
pub const FORMAT_VERSION: u32 = 1;

/// What `ward dlq ls` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub queue: QueueName,
    pub set: FailedSet,
    pub filter: DlqFilter,
    pub sort: DlqSort,
    /// Entries to list (at most `MAX_BATCH`).
    pub limit: usize,
}

/// One listed entry.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub id: String,
    pub failed_at: String,
    pub failed_at_ms: i64,
    pub first_failure_at: String,
    pub alertname: String,
    pub severity: String,
    pub error_class: String,
    pub error_message: String,
    pub stage: String,
    pub channel: String,
    pub tenant: String,
    pub attempts: u32,
    pub replays: u32,
    pub partition: u16,
}

impl Row {
    fn of(entry: &DlqEntry) -> Self {
        let m = &entry.meta;
        let glance = entry.glance();
        Self {
            id: m.id.0.clone(),
            failed_at: format_rfc3339_ms(m.last_failure_ms),
            failed_at_ms: m.last_failure_ms,
            first_failure_at: format_rfc3339_ms(m.first_failure_ms),
            alertname: glance.alertname,
            severity: glance.severity,
            error_class: m.error_class.clone(),
            error_message: m.error_message.clone(),
            stage: m.stage.clone(),
            channel: m.channel.clone(),
            tenant: m.tenant.clone(),
            attempts: m.attempts,
            replays: m.replays,
            partition: entry.partition,
        }
    }
}

/// `ward dlq ls`: the first `limit` matching entries in the asked order.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub kind: &'static str,
    pub format_version: u32,
    pub queue: String,
    pub set: FailedSet,
    pub filter: DlqFilter,
    pub sort: DlqSort,
    /// `store`: the store's scan order over the whole set; `listed`: only the listed entries
    /// are ordered (attempt counts are not indexed).
    pub sort_scope: &'static str,
    /// Entries matching the filter in the whole set (counted by the store).
    pub matching: u64,
    pub entries: Vec<Row>,
    /// More matching entries follow the listed ones.
    pub more: bool,
}

/// One group of `ward dlq ls --group`.
#[derive(Debug, Clone, Serialize)]
pub struct GroupRow {
    pub error_class: String,
    pub from: String,
    pub to: String,
    pub bucket_ms: i64,
    pub count: u64,
}

/// `ward dlq ls --group`: the whole filtered set by error class × time bucket.
#[derive(Debug, Clone, Serialize)]
pub struct Grouping {
    pub kind: &'static str,
    pub format_version: u32,
    pub queue: String,
    pub set: FailedSet,
    pub filter: DlqFilter,
    pub bucket_ms: i64,
    /// Entries examined (the whole set in the filter's time range).
    pub examined: u64,
    /// Entries counted in the groups: every one matching the filter.
    pub matching: u64,
    pub groups: Vec<GroupRow>,
}

/// `ward dlq show`: one entry.
#[derive(Debug, Clone, Serialize)]
pub struct Shown {
    pub kind: &'static str,
    pub format_version: u32,
    pub queue: String,
    pub set: FailedSet,
    #[serde(flatten)]
    pub row: Row,
    /// Metadata, attempt history and payload, secrets redacted.
    pub entry: serde_json::Value,
    /// The entry as read (for the text form, which the control room's inspector draws).
    #[serde(skip)]
    pub raw: DlqEntry,
}

/// Read the listing: pages of the store's scan until `limit` entries or the end, and the count.
pub async fn list(store: &dyn Store, query: &ListQuery) -> StoreResult<Listing> {
    if query.limit == 0 || query.limit > MAX_BATCH {
        return Err(StoreError::Invalid(format!(
            "--limit must be 1 to {MAX_BATCH}"
        )));
    }
    let mut entries = Vec::new();
    let mut cursor = Some(query.sort.start());
    while let Some(at) = cursor.take() {
        let want = query.limit - entries.len();
        let page = store
            .failed_page(&query.queue, query.set, &query.filter, &at, want)
            .await?;
        entries.extend(page.entries);
        cursor = page.next;
        if entries.len() >= query.limit {
            break;
        }
    }
    let matching = store
        .failed_count(&query.queue, query.set, &query.filter)
        .await?;
    query.sort.arrange(&mut entries);
    Ok(Listing {
        kind: "ward.dlq.list",
        format_version: FORMAT_VERSION,
        queue: query.queue.to_string(),
        set: query.set,
        filter: query.filter.clone(),
        sort: query.sort,
        sort_scope: if query.sort == DlqSort::Attempts {
            "listed"
        } else {
            "store"
        },
        matching,
        more: matching > entries.len() as u64,
        entries: entries.iter().map(Row::of).collect(),
    })
}

/// Group the whole filtered set: the store's bounded steps, to the end.
pub async fn group(store: &dyn Store, query: &ListQuery) -> StoreResult<Grouping> {
    let mut groups: Vec<DlqGroup> = Vec::new();
    let mut examined = 0;
    let mut cursor = Some(DlqCursor::start());
    while let Some(at) = cursor.take() {
        let step = store
            .failed_groups(&query.queue, query.set, &query.filter, GROUP_BUCKET_MS, &at)
            .await?;
        examined += step.examined;
        merge_groups(&mut groups, step.groups);
        cursor = step.next;
    }
    Ok(Grouping {
        kind: "ward.dlq.groups",
        format_version: FORMAT_VERSION,
        queue: query.queue.to_string(),
        set: query.set,
        filter: query.filter.clone(),
        bucket_ms: GROUP_BUCKET_MS,
        examined,
        matching: groups.iter().map(|g| g.count).sum(),
        groups: groups
            .into_iter()
            .map(|g| GroupRow {
                from: format_rfc3339_ms(g.bucket_ms),
                to: format_rfc3339_ms(g.bucket_ms.saturating_add(GROUP_BUCKET_MS)),
                error_class: g.error_class,
                bucket_ms: g.bucket_ms,
                count: g.count,
            })
            .collect(),
    })
}

/// One entry, if it is still in the set.
pub async fn show(
    store: &dyn Store,
    queue: &QueueName,
    set: FailedSet,
    id: &str,
) -> StoreResult<Option<Shown>> {
    let found = store
        .failed_entries(queue, set, &[EnvelopeId(id.to_owned())])
        .await?;
    Ok(found.into_iter().next().map(|entry| Shown {
        kind: "ward.dlq.entry",
        format_version: FORMAT_VERSION,
        queue: queue.to_string(),
        set,
        row: Row::of(&entry),
        entry: entry.document(),
        raw: entry,
    }))
}

fn set_name(set: FailedSet) -> &'static str {
    match set {
        FailedSet::Dlq => "DLQ",
        FailedSet::Dead => "dead list",
    }
}

/// A cell of a text table: sanitised, blank shown as `-`.
fn cell(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        sanitize(text).into_owned()
    }
}

impl Listing {
    /// One header line, then one line per entry (the message last and whole).
    pub fn text(&self) -> String {
        let mut out = format!(
            "{} of {} · {} matching · {} listed · {}{}\n",
            set_name(self.set),
            self.queue,
            self.matching,
            self.entries.len(),
            self.sort
                .describe()
                .replace("this page", "the listed entries"),
            if self.more {
                " · more follow (--limit)"
            } else {
                ""
            }
        );
        if self.entries.is_empty() {
            out.push_str("nothing matches\n");
            return out;
        }
        let _ = writeln!(
            out,
            "{:<24}  {:<26}  {:<20}  {:<8}  {:<14}  {:<12}  {:>5}  MESSAGE",
            "FAILED (UTC)", "ID", "ALERTNAME", "SEVERITY", "ERROR", "CHANNEL", "TRIES"
        );
        for r in &self.entries {
            let _ = writeln!(
                out,
                "{:<24}  {:<26}  {:<20}  {:<8}  {:<14}  {:<12}  {:>5}  {}",
                r.failed_at,
                cell(&r.id),
                cell(&r.alertname),
                cell(&r.severity),
                cell(&r.error_class),
                cell(&r.channel),
                format!("{}/{}", r.attempts, r.replays),
                cell(&r.error_message)
            );
        }
        out
    }
}

impl Grouping {
    pub fn text(&self) -> String {
        let mut out = format!(
            "{} of {} by error class × {} min · {} matching of {} examined (the whole set)\n",
            set_name(self.set),
            self.queue,
            self.bucket_ms / 60_000,
            self.matching,
            self.examined
        );
        if self.groups.is_empty() {
            out.push_str("nothing matches\n");
            return out;
        }
        let _ = writeln!(
            out,
            "{:<20}  {:<24}  {:<24}  {:>8}",
            "ERROR", "FROM", "TO", "ENTRIES"
        );
        for g in &self.groups {
            let _ = writeln!(
                out,
                "{:<20}  {:<24}  {:<24}  {:>8}",
                cell(&g.error_class),
                g.from,
                g.to,
                g.count
            );
        }
        out
    }
}
