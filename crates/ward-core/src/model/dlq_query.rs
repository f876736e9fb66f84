//! What a DLQ query names: which set, a filter, a scan position, the groups it counts. Pure
//! data and its rules; each store turns them into its own scan.

use serde::{Deserialize, Serialize};

use super::{DlqMeta, EnvelopeId};

/// The largest number of items one store call may move: keeps every Redis script short.
pub const MAX_BATCH: usize = 500;

/// The time buckets the DLQ browser and `ward dlq ls --group` group by.
pub const GROUP_BUCKET_MS: i64 = 10 * 60 * 1000;

/// Which of a queue's failure sets an operation reads or changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FailedSet {
    /// The dead-letter queue: replayable.
    Dlq,
    /// The terminal dead list: entries the poison guard stopped.
    Dead,
}

/// A server-side DLQ filter; every field that is set must match.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DlqFilter {
    pub error_class: Option<String>,
    pub stage: Option<String>,
    pub tenant: Option<String>,
    /// The channel a delivery failed on.
    #[serde(default)]
    pub channel: Option<String>,
    /// Only entries whose last failure is at or after this time.
    pub failed_at_or_after_ms: Option<i64>,
    /// Only entries whose last failure is before this time (also the replay cut-off).
    pub failed_before_ms: Option<i64>,
    /// Free text, matched ASCII case-insensitively by the store (see `text_matches`): the
    /// entry's id, error class and message, tenant and channel, and the values of its alert's
    /// labels and annotations and its severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl DlqFilter {
    pub fn matches(&self, meta: &DlqMeta) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        eq(&self.error_class, &meta.error_class)
            && eq(&self.stage, &meta.stage)
            && eq(&self.tenant, &meta.tenant)
            && eq(&self.channel, &meta.channel)
            && self
                .failed_at_or_after_ms
                .is_none_or(|t| meta.last_failure_ms >= t)
            && self
                .failed_before_ms
                .is_none_or(|t| meta.last_failure_ms < t)
    }

    /// Whether selecting needs a scan (a field or the text is filtered), not only the time range.
    pub fn has_field_filters(&self) -> bool {
        self.error_class.is_some()
            || self.stage.is_some()
            || self.tenant.is_some()
            || self.channel.is_some()
            || self.search().is_some()
    }

    /// The search text as the store compares it (ASCII lowercase); `None` when there is none.
    pub fn search(&self) -> Option<String> {
        self.text
            .as_deref()
            .filter(|t| !t.is_empty())
            .map(str::to_ascii_lowercase)
    }

    /// The order-key range `[min, max)` the time bounds select.
    pub fn key_range(&self) -> (String, String) {
        let min = self
            .failed_at_or_after_ms
            .map_or_else(String::new, |t| format!("{:013}", t.max(0)));
        let max = self
            .failed_before_ms
            .map_or_else(|| "~".to_owned(), |t| format!("{:013}", t.max(0)));
        (min, max)
    }
}

/// A position in a DLQ scan: resume after `after` in `partition`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DlqCursor {
    pub partition: u16,
    /// The order key of the last entry examined; empty = from the start of the partition.
    pub after: String,
    /// The scan goes from the newest failure back (each partition in turn); pages only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub newest_first: bool,
}

impl DlqCursor {
    /// The start of an oldest-first scan (the order replay takes).
    pub fn start() -> Self {
        Self::default()
    }

    /// The start of a newest-first scan.
    pub fn newest() -> Self {
        Self {
            newest_first: true,
            ..Self::default()
        }
    }

    /// The same scan at another position.
    #[must_use]
    pub fn at(&self, partition: u16, after: String) -> Self {
        Self {
            partition,
            after,
            newest_first: self.newest_first,
        }
    }
}

/// How many entries of one error class failed in one time bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DlqGroup {
    pub error_class: String,
    /// The bucket's start (Unix ms, a multiple of the bucket size).
    pub bucket_ms: i64,
    pub count: u64,
}

/// Add `more` counts into `into` (both by class, then bucket), keeping the order.
pub fn merge_groups(into: &mut Vec<DlqGroup>, more: Vec<DlqGroup>) {
    let mut all: std::collections::BTreeMap<(String, i64), u64> = into
        .drain(..)
        .map(|g| ((g.error_class, g.bucket_ms), g.count))
        .collect();
    for g in more {
        *all.entry((g.error_class, g.bucket_ms)).or_default() += g.count;
    }
    into.extend(
        all.into_iter()
            .map(|((error_class, bucket_ms), count)| DlqGroup {
                error_class,
                bucket_ms,
                count,
            }),
    );
}

/// What a DLQ operation applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DlqScope {
    /// These entries (at most `MAX_BATCH` per call).
    Ids(Vec<EnvelopeId>),
    /// Entries matching the filter, resuming at the cursor.
    Filter {
        filter: DlqFilter,
        cursor: DlqCursor,
    },
}
