//! Alertmanager's aggregation groups and notification log (DOMAIN.md §9.2, §9.3, §9.7) as pure
//! transitions over serde state: a store keeps the state as JSON, a flusher calls these with the
//! time it read.
//!
//! One group per route + channel + group labels. Its life:
//! 1. [`group_labels`] and [`group_key`] place an alert; [`GroupState::new`] opens a group with
//!    its first alert (flush after `group_wait`, or at once for an old alert) and
//!    [`GroupState::insert`] merges later ones without touching the timer.
//! 2. When [`GroupState::due`], [`GroupState::begin_flush`] re-arms the timer to
//!    now + `group_interval` and hands back a [`FlushBatch`] of every alert in the group.
//! 3. [`FlushBatch::plan`] drops muted alerts, applies the §9.3 dedup table ([`decide`]) against
//!    the channel's [`NotifyLog`] entry and says what to transmit, under which idempotency key,
//!    and which entry to write once the send succeeded.
//! 4. Once the flush completed (sent, or nothing needed sending), [`GroupState::after_success`]
//!    deletes the resolved alerts it carried; an empty group is destroyed by the caller. After a
//!    failure nothing changes: the next tick retries.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use crate::model::{Alert, AlertStatus, Severity};

/// `group_by = ["..."]`: group by every label (one group per label set).
pub const GROUP_BY_ALL: &str = "...";
pub const DEFAULT_GROUP_WAIT_MS: u64 = 30_000;
pub const DEFAULT_GROUP_INTERVAL_MS: u64 = 300_000;
pub const DEFAULT_REPEAT_INTERVAL_MS: u64 = 14_400_000;
/// Alertmanager's `--data.retention`: no notification-log entry outlives it.
pub const NFLOG_RETENTION_MS: u64 = 120 * 3_600_000;

fn default_group_wait_ms() -> u64 {
    DEFAULT_GROUP_WAIT_MS
}
fn default_group_interval_ms() -> u64 {
    DEFAULT_GROUP_INTERVAL_MS
}
fn default_repeat_interval_ms() -> u64 {
    DEFAULT_REPEAT_INTERVAL_MS
}
// Serde's skip_serializing_if hands a reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_default_group_wait(ms: &u64) -> bool {
    *ms == DEFAULT_GROUP_WAIT_MS
}
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_default_group_interval(ms: &u64) -> bool {
    *ms == DEFAULT_GROUP_INTERVAL_MS
}
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_default_repeat_interval(ms: &u64) -> bool {
    *ms == DEFAULT_REPEAT_INTERVAL_MS
}

/// A route's grouping options. Field names are prefixed (`group_*`, `repeat_*`) so the struct can
/// be `#[serde(flatten)]`-ed into a route table; defaults are skipped when serialising.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupingConfig {
    /// Labels that split the route's alerts into groups. Absent = grouping off (one notification
    /// per alert); `[]` = one group for the route; `["..."]` = every label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Vec<String>>,
    /// How long a new group waits for more alerts before its first notification.
    #[serde(
        default = "default_group_wait_ms",
        skip_serializing_if = "is_default_group_wait"
    )]
    pub group_wait_ms: u64,
    /// Time between a group's flushes (new alerts wait up to this long).
    #[serde(
        default = "default_group_interval_ms",
        skip_serializing_if = "is_default_group_interval"
    )]
    pub group_interval_ms: u64,
    /// An unchanged group is notified again after this long (checked at flushes only).
    #[serde(
        default = "default_repeat_interval_ms",
        skip_serializing_if = "is_default_repeat_interval"
    )]
    pub repeat_interval_ms: u64,
}

impl Default for GroupingConfig {
    fn default() -> Self {
        Self {
            group_by: None,
            group_wait_ms: DEFAULT_GROUP_WAIT_MS,
            group_interval_ms: DEFAULT_GROUP_INTERVAL_MS,
            repeat_interval_ms: DEFAULT_REPEAT_INTERVAL_MS,
        }
    }
}

/// A grouping option that cannot work, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct GroupingConfigError {
    pub field: &'static str,
    pub message: String,
}

impl GroupingConfig {
    /// Whether the route groups at all (`group_by` present).
    pub fn is_enabled(&self) -> bool {
        self.group_by.is_some()
    }

    /// Alertmanager's load-time checks (DOMAIN.md §9.1).
    pub fn validate(&self) -> Result<(), GroupingConfigError> {
        let error = |field, message: String| Err(GroupingConfigError { field, message });
        if let Some(group_by) = &self.group_by {
            let mut seen = BTreeSet::new();
            for name in group_by {
                if name.is_empty() {
                    return error("group_by", "an empty label name".to_owned());
                }
                if !seen.insert(name.as_str()) {
                    return error("group_by", format!("duplicate label {name:?}"));
                }
            }
            if group_by.len() > 1 && seen.contains(GROUP_BY_ALL) {
                return error(
                    "group_by",
                    "\"...\" groups by every label and must be the only entry".to_owned(),
                );
            }
        }
        if self.group_interval_ms == 0 {
            return error("group_interval_ms", "must be greater than 0".to_owned());
        }
        if self.repeat_interval_ms == 0 {
            return error("repeat_interval_ms", "must be greater than 0".to_owned());
        }
        Ok(())
    }

    /// Legal but surprising settings, for a load-time warning.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.repeat_interval_ms > NFLOG_RETENTION_MS {
            warnings.push(format!(
                "repeat_interval_ms {} is above the notification log's 120 h retention: \
                 notifications repeat every 120 h",
                self.repeat_interval_ms
            ));
        }
        if self.repeat_interval_ms < self.group_interval_ms {
            warnings.push(format!(
                "repeat_interval_ms {} is below group_interval_ms {}: repeats are only checked \
                 at flushes, so they come every group interval",
                self.repeat_interval_ms, self.group_interval_ms
            ));
        }
        warnings
    }
}

/// The alert's values for the `group_by` labels it has, `...` meaning all. An empty value counts
/// as absent (Alertmanager drops such labels at ingest). Empty when grouping is off.
pub fn group_labels(
    config: &GroupingConfig,
    labels: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let Some(group_by) = &config.group_by else {
        return BTreeMap::new();
    };
    let pick = |(name, value): (&String, &String)| {
        (!value.is_empty()).then(|| (name.clone(), value.clone()))
    };
    if group_by.iter().any(|name| name == GROUP_BY_ALL) {
        labels.iter().filter_map(pick).collect()
    } else {
        group_by
            .iter()
            .filter_map(|name| labels.get_key_value(name))
            .filter_map(pick)
            .collect()
    }
}

/// A label name as Prometheus writes it bare; anything else is quoted.
fn is_plain_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn push_quoted(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The group's identity, Alertmanager style: `{route}:{labels}`, labels sorted by name, values
/// quoted with `"`, `\` and newline escaped, names quoted only when not `[A-Za-z_][A-Za-z0-9_]*`,
/// no spaces: `checkout:{alertname="Disk",team="db"}`, `checkout:{}` for one group per route.
/// The label part parses unambiguously from the end, so distinct (route, labels) never share a key.
pub fn group_key(route: &str, group_labels: &BTreeMap<String, String>) -> String {
    let mut key = String::with_capacity(route.len() + 3 + group_labels.len() * 16);
    key.push_str(route);
    key.push_str(":{");
    for (i, (name, value)) in group_labels.iter().enumerate() {
        if i > 0 {
            key.push(',');
        }
        if is_plain_label_name(name) {
            key.push_str(name);
        } else {
            push_quoted(&mut key, name);
        }
        key.push('=');
        push_quoted(&mut key, value);
    }
    key.push('}');
    key
}

fn fnv1a_64(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parts.iter().flat_map(|p| p.iter()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

fn fnv1a_128(parts: &[&[u8]]) -> u128 {
    let mut hash: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for byte in parts.iter().flat_map(|p| p.iter()) {
        hash ^= u128::from(*byte);
        hash = hash.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    hash
}

/// 16 hex digits (FNV-1a 64) of a group key, short enough for Redis key names.
pub fn group_id(key: &str) -> String {
    format!("{:016x}", fnv1a_64(&[key.as_bytes()]))
}

/// 16 hex digits naming one group's state and its notification log: the group key for one
/// channel (the channel is length-prefixed, so no two pairs share the hashed text).
pub fn target_group_id(key: &str, channel: &str) -> String {
    let prefix = format!("{}:", channel.len());
    format!(
        "{:016x}",
        fnv1a_64(&[prefix.as_bytes(), channel.as_bytes(), key.as_bytes()])
    )
}

fn add_ms(at_ms: i64, duration_ms: u64) -> i64 {
    at_ms.saturating_add(i64::try_from(duration_ms).unwrap_or(i64::MAX))
}

/// What a group remembers of an alert (JSON-able, without the pipeline's bookkeeping).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupedAlert {
    pub fingerprint: String,
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub severity: Severity,
    pub status: AlertStatus,
    pub starts_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at_ms: Option<i64>,
    /// When Ward received this version: decides merges and whether a flush may delete it.
    pub updated_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
}

impl GroupedAlert {
    pub fn from_alert(alert: &Alert, now_ms: i64) -> Self {
        Self {
            fingerprint: alert.fingerprint.clone(),
            labels: alert.labels.clone(),
            annotations: alert.annotations.clone(),
            severity: alert.severity,
            status: alert.status,
            starts_at_ms: alert.starts_at_ms,
            ends_at_ms: alert.ends_at_ms,
            updated_at_ms: now_ms,
            generator_url: alert.generator_url.clone(),
        }
    }

    /// Resolved if marked so or if its end time has passed (§9.7).
    pub fn is_resolved_at(&self, now_ms: i64) -> bool {
        self.status == AlertStatus::Resolved || self.ends_at_ms.is_some_and(|end| end <= now_ms)
    }

    /// Until when this version was active, for deciding whether a newer copy continues it.
    fn active_until(&self) -> i64 {
        match (self.status, self.ends_at_ms) {
            (AlertStatus::Resolved, end) => end.unwrap_or(self.updated_at_ms),
            (AlertStatus::Firing, end) => end.unwrap_or(i64::MAX),
        }
    }

    /// The copy a flush at `now_ms` sends: firing ones lose their end time, resolved ones are
    /// marked resolved and always carry one.
    fn flushed_at(&self, now_ms: i64) -> Self {
        let mut copy = self.clone();
        if self.is_resolved_at(now_ms) {
            copy.status = AlertStatus::Resolved;
            copy.ends_at_ms = Some(self.ends_at_ms.unwrap_or(self.updated_at_ms));
        } else {
            copy.status = AlertStatus::Firing;
            copy.ends_at_ms = None;
        }
        copy
    }
}

/// Merge two versions of one alert: the newest update wins and, when the newer continues the
/// older's activity (it started before the older ended), the earliest start is kept. A copy
/// that starts after the older resolved is a new firing and keeps its own start.
fn merge(current: &GroupedAlert, incoming: GroupedAlert) -> GroupedAlert {
    let (older, mut newer) = if incoming.updated_at_ms >= current.updated_at_ms {
        (current.clone(), incoming)
    } else {
        (incoming, current.clone())
    };
    if newer.starts_at_ms <= older.active_until() {
        newer.starts_at_ms = newer.starts_at_ms.min(older.starts_at_ms);
    }
    newer
}

/// Payload order (Alertmanager's `AlertSlice`): by `job`, then `instance` (alerts without one
/// last), then the label set, then fingerprint.
fn payload_order(a: &GroupedAlert, b: &GroupedAlert) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for name in ["job", "instance"] {
        let by_name = match (a.labels.get(name), b.labels.get(name)) {
            (None, None) => Ordering::Equal,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(x), Some(y)) => x.cmp(y),
        };
        if by_name != Ordering::Equal {
            return by_name;
        }
    }
    a.labels
        .cmp(&b.labels)
        .then_with(|| a.fingerprint.cmp(&b.fingerprint))
}

/// One aggregation group for one channel: what the store keeps between flushes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupState {
    /// [`group_key`] of the route and group labels.
    pub key: String,
    pub route: String,
    pub channel: String,
    pub group_labels: BTreeMap<String, String>,
    /// By fingerprint.
    pub alerts: BTreeMap<String, GroupedAlert>,
    pub created_at_ms: i64,
    pub next_flush_ms: i64,
    /// Flushes begun so far (a flush index).
    pub flushes: u64,
}

impl GroupState {
    /// Open a group with its first alert. The first flush comes `group_wait` later, or now when
    /// the alert started `group_wait` ago already (an old alert, e.g. after a restart).
    pub fn new(
        route: &str,
        channel: &str,
        config: &GroupingConfig,
        first: &Alert,
        now_ms: i64,
    ) -> Self {
        let labels = group_labels(config, &first.labels);
        let next_flush_ms = if add_ms(first.starts_at_ms, config.group_wait_ms) <= now_ms {
            now_ms
        } else {
            add_ms(now_ms, config.group_wait_ms)
        };
        let mut state = Self {
            key: group_key(route, &labels),
            route: route.to_owned(),
            channel: channel.to_owned(),
            group_labels: labels,
            alerts: BTreeMap::new(),
            created_at_ms: now_ms,
            next_flush_ms,
            flushes: 0,
        };
        state.insert(first, now_ms);
        state
    }

    /// Where the store keeps this group and its notification log: [`target_group_id`].
    pub fn id(&self) -> String {
        target_group_id(&self.key, &self.channel)
    }

    /// Add or merge an alert by fingerprint: the newest update wins, one firing keeps its earliest
    /// start. The flush timer is not touched.
    pub fn insert(&mut self, alert: &Alert, now_ms: i64) {
        let incoming = GroupedAlert::from_alert(alert, now_ms);
        match self.alerts.entry(alert.fingerprint.clone()) {
            Entry::Vacant(slot) => {
                slot.insert(incoming);
            }
            Entry::Occupied(mut slot) => {
                let merged = merge(slot.get(), incoming);
                slot.insert(merged);
            }
        }
    }

    pub fn due(&self, now_ms: i64) -> bool {
        now_ms >= self.next_flush_ms
    }

    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }

    /// Re-arm the timer to now + `group_interval` first, then take every alert (firing, and
    /// resolved not yet flushed) in payload order, firing copies without an end time.
    pub fn begin_flush(&mut self, now_ms: i64, config: &GroupingConfig) -> FlushBatch {
        self.next_flush_ms = add_ms(now_ms, config.group_interval_ms);
        self.flushes += 1;
        let mut alerts: Vec<GroupedAlert> = self
            .alerts
            .values()
            .map(|alert| alert.flushed_at(now_ms))
            .collect();
        alerts.sort_by(payload_order);
        FlushBatch {
            group_key: self.key.clone(),
            route: self.route.clone(),
            channel: self.channel.clone(),
            group_labels: self.group_labels.clone(),
            taken_at_ms: now_ms,
            flush: self.flushes,
            alerts,
        }
    }

    /// The flush completed (sent, or nothing needed sending): delete the resolved alerts it
    /// carried, unless updated since it was taken. Returns whether the group is now empty, in
    /// which case the caller destroys it. After a failed flush, call nothing.
    pub fn after_success(&mut self, batch: &FlushBatch) -> bool {
        for sent in batch
            .alerts
            .iter()
            .filter(|a| a.status == AlertStatus::Resolved)
        {
            let unchanged = self.alerts.get(&sent.fingerprint).is_some_and(|stored| {
                stored.updated_at_ms == sent.updated_at_ms
                    && stored.is_resolved_at(batch.taken_at_ms)
            });
            if unchanged {
                self.alerts.remove(&sent.fingerprint);
            }
        }
        self.is_empty()
    }
}

/// What one flush took from a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlushBatch {
    pub group_key: String,
    pub route: String,
    pub channel: String,
    pub group_labels: BTreeMap<String, String>,
    pub taken_at_ms: i64,
    /// The group's flush index ([`GroupState::flushes`] after this one began).
    pub flush: u64,
    /// In payload order; `status` is exact (firing copies have no `ends_at_ms`).
    pub alerts: Vec<GroupedAlert>,
}

impl FlushBatch {
    /// Fingerprints of the firing alerts.
    pub fn firing(&self) -> BTreeSet<String> {
        self.fingerprints(AlertStatus::Firing)
    }

    /// Fingerprints of the resolved alerts.
    pub fn resolved(&self) -> BTreeSet<String> {
        self.fingerprints(AlertStatus::Resolved)
    }

    fn fingerprints(&self, status: AlertStatus) -> BTreeSet<String> {
        self.alerts
            .iter()
            .filter(|a| a.status == status)
            .map(|a| a.fingerprint.clone())
            .collect()
    }

    /// Resolved alerts whose firing the log says was notified ("resolved; was notified firing at
    /// `log.sent_at_ms`"), in payload order.
    pub fn resolved_previously_notified(&self, log: &NotifyLog) -> Vec<String> {
        self.alerts
            .iter()
            .filter(|a| a.status == AlertStatus::Resolved && log.firing.contains(&a.fingerprint))
            .map(|a| a.fingerprint.clone())
            .collect()
    }

    /// What to do with this batch for its channel: drop `muted` fingerprints (silenced,
    /// inhibited, muted by time), apply [`decide`] and pick the payload (resolved alerts stripped
    /// without `send_resolved`).
    pub fn plan(
        &self,
        muted: &BTreeSet<String>,
        entry: Option<&NotifyLog>,
        send_resolved: bool,
        repeat_interval_ms: u64,
        now_ms: i64,
    ) -> FlushPlan {
        let kept: Vec<&GroupedAlert> = self
            .alerts
            .iter()
            .filter(|a| !muted.contains(&a.fingerprint))
            .collect();
        let of = |status: AlertStatus| -> BTreeSet<String> {
            kept.iter()
                .filter(|a| a.status == status)
                .map(|a| a.fingerprint.clone())
                .collect()
        };
        let firing = of(AlertStatus::Firing);
        let resolved = of(AlertStatus::Resolved);
        let decision = decide(
            entry,
            &firing,
            &resolved,
            send_resolved,
            repeat_interval_ms,
            now_ms,
        );
        let alerts: Vec<GroupedAlert> = if decision.send {
            kept.into_iter()
                .filter(|a| send_resolved || a.status == AlertStatus::Firing)
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        FlushPlan {
            status: payload_status(&alerts, now_ms),
            digest: dedup_digest(&self.group_key, &self.channel, &firing, &resolved),
            decision,
            firing,
            resolved,
            alerts,
        }
    }
}

/// A batch's verdict for one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlushPlan {
    pub decision: NotifyDecision,
    /// F and R of §9.3: after muting, before stripping.
    pub firing: BTreeSet<String>,
    pub resolved: BTreeSet<String>,
    /// The payload; empty unless `decision.send`, and empty for an all-resolved send without
    /// `send_resolved` (nothing transmitted, the log still written).
    pub alerts: Vec<GroupedAlert>,
    /// [`payload_status`] of `alerts`.
    pub status: AlertStatus,
    /// [`dedup_digest`]: the send claim and idempotency key.
    pub digest: String,
}

impl FlushPlan {
    /// Whether anything goes over the wire.
    pub fn transmit(&self) -> bool {
        self.decision.send && !self.alerts.is_empty()
    }

    /// The entry to write once the send succeeded (none when nothing was to be sent).
    pub fn log_entry(&self, now_ms: i64) -> Option<NotifyLog> {
        self.decision
            .send
            .then(|| NotifyLog::after_send(self.firing.clone(), self.resolved.clone(), now_ms))
    }
}

/// The notification log entry for one group and channel: the last successful send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyLog {
    pub sent_at_ms: i64,
    pub firing: BTreeSet<String>,
    pub resolved: BTreeSet<String>,
}

impl NotifyLog {
    /// The entry replacing the old one after a successful send of F and R (pass the sets given
    /// to [`decide`], not the stripped payload).
    pub fn after_send(firing: BTreeSet<String>, resolved: BTreeSet<String>, now_ms: i64) -> Self {
        Self {
            sent_at_ms: now_ms,
            firing,
            resolved,
        }
    }
}

/// Why a flush notifies, Alertmanager's `notification_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyReason {
    FirstNotification,
    NewAlertsAdded,
    AllResolved,
    SomeResolved,
    RepeatIntervalElapsed,
    /// Nothing new for this channel: no send, the log untouched.
    NothingToSend,
}

impl NotifyReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FirstNotification => "first notification",
            Self::NewAlertsAdded => "new alerts added",
            Self::AllResolved => "all alerts resolved",
            Self::SomeResolved => "some alerts resolved",
            Self::RepeatIntervalElapsed => "repeat interval elapsed",
            Self::NothingToSend => "nothing to send",
        }
    }
}

impl fmt::Display for NotifyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyDecision {
    pub send: bool,
    pub reason: NotifyReason,
}

/// Alertmanager's dedup stage (DOMAIN.md §9.3, notify/dedup_stage.go): the first row that holds
/// decides. F and R are the firing and resolved fingerprints after muting.
///
/// | row | condition | result |
/// |---|---|---|
/// | 1 | no entry | send if F ≠ ∅ (first notification) |
/// | 2 | F ⊄ entry.firing | send (new alerts added; first notification if entry.firing = ∅) |
/// | 3 | F = ∅ | send if entry.firing ≠ ∅ (all resolved) |
/// | 4 | send_resolved and R ⊄ entry.resolved | send (some resolved) |
/// | 5 | entry older than repeat_interval | send (repeat interval elapsed) |
/// | 6 | else | nothing |
///
/// "Older" is strict, as Alertmanager's `entry.Timestamp.Before(now - repeat)`.
pub fn decide(
    entry: Option<&NotifyLog>,
    firing: &BTreeSet<String>,
    resolved: &BTreeSet<String>,
    send_resolved: bool,
    repeat_interval_ms: u64,
    now_ms: i64,
) -> NotifyDecision {
    let send = |reason| NotifyDecision { send: true, reason };
    let nothing = NotifyDecision {
        send: false,
        reason: NotifyReason::NothingToSend,
    };
    let Some(entry) = entry else {
        return if firing.is_empty() {
            nothing
        } else {
            send(NotifyReason::FirstNotification)
        };
    };
    if !firing.is_subset(&entry.firing) {
        return send(if entry.firing.is_empty() {
            NotifyReason::FirstNotification
        } else {
            NotifyReason::NewAlertsAdded
        });
    }
    if firing.is_empty() {
        return if entry.firing.is_empty() {
            nothing
        } else {
            send(NotifyReason::AllResolved)
        };
    }
    if send_resolved && !resolved.is_subset(&entry.resolved) {
        return send(NotifyReason::SomeResolved);
    }
    let repeat = i64::try_from(repeat_interval_ms).unwrap_or(i64::MAX);
    if entry.sent_at_ms < now_ms.saturating_sub(repeat) {
        return send(NotifyReason::RepeatIntervalElapsed);
    }
    nothing
}

/// How long a log entry is kept: min(120 h retention, 2 × repeat_interval).
pub fn nflog_ttl_ms(repeat_interval_ms: u64) -> u64 {
    NFLOG_RETENTION_MS.min(repeat_interval_ms.saturating_mul(2))
}

/// 32 hex digits (FNV-1a 128) of group key, channel, F and R: the send claim and idempotency key.
/// The same content gives the same digest, so a receiver deduplicating on it for longer than
/// `repeat_interval` would also swallow repeats.
pub fn dedup_digest(
    group_key: &str,
    channel: &str,
    firing: &BTreeSet<String>,
    resolved: &BTreeSet<String>,
) -> String {
    // Length-prefixed fields: no two inputs share the hashed text.
    let mut text = String::from("ward-dedup-v1");
    let mut field = |s: &str| {
        let _ = write!(text, "\n{}:{s}", s.len());
    };
    field(group_key);
    field(channel);
    field(&firing.len().to_string());
    for fingerprint in firing {
        field(fingerprint);
    }
    field(&resolved.len().to_string());
    for fingerprint in resolved {
        field(fingerprint);
    }
    format!("{:032x}", fnv1a_128(&[text.as_bytes()]))
}

/// The payload's status (§9.7): `firing` if any alert sent fires at `now_ms`, else `resolved`.
pub fn payload_status<'a>(
    alerts: impl IntoIterator<Item = &'a GroupedAlert>,
    now_ms: i64,
) -> AlertStatus {
    if alerts.into_iter().any(|a| !a.is_resolved_at(now_ms)) {
        AlertStatus::Firing
    } else {
        AlertStatus::Resolved
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fingerprint;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn alert(pairs: &[(&str, &str)], starts_at_ms: i64) -> Alert {
        let labels = labels(pairs);
        Alert {
            fingerprint: fingerprint(&labels),
            labels,
            annotations: BTreeMap::new(),
            severity: Severity::Major,
            status: AlertStatus::Firing,
            tenant: "acme".to_owned(),
            starts_at_ms,
            ends_at_ms: None,
            generator_url: None,
            correlation_id: "c".to_owned(),
            test: false,
        }
    }

    fn resolved(mut alert: Alert, ends_at_ms: i64) -> Alert {
        alert.status = AlertStatus::Resolved;
        alert.ends_at_ms = Some(ends_at_ms);
        alert
    }

    fn config(group_by: &[&str]) -> GroupingConfig {
        GroupingConfig {
            group_by: Some(group_by.iter().map(|s| (*s).to_owned()).collect()),
            ..GroupingConfig::default()
        }
    }

    fn log(sent_at_ms: i64, firing: &[&str], resolved: &[&str]) -> NotifyLog {
        NotifyLog::after_send(set(firing), set(resolved), sent_at_ms)
    }

    const REPEAT: u64 = 1_000;

    /// DOMAIN.md §9.3, the first row that holds decides.
    #[test]
    #[allow(clippy::too_many_lines)] // one table row per case
    fn dedup_table_row_by_row() {
        use NotifyReason::{
            AllResolved, FirstNotification, NewAlertsAdded, NothingToSend, RepeatIntervalElapsed,
            SomeResolved,
        };
        struct Row {
            case: &'static str,
            entry: Option<NotifyLog>,
            firing: &'static [&'static str],
            resolved: &'static [&'static str],
            send_resolved: bool,
            now: i64,
            want: (bool, NotifyReason),
        }
        let rows = [
            Row {
                case: "1: no entry, F ≠ ∅ → first notification",
                entry: None,
                firing: &["a"],
                resolved: &[],
                send_resolved: false,
                now: 0,
                want: (true, FirstNotification),
            },
            Row {
                case: "1: no entry, F = ∅ (resolved before any notification) → nothing",
                entry: None,
                firing: &[],
                resolved: &["a"],
                send_resolved: true,
                now: 0,
                want: (false, NothingToSend),
            },
            Row {
                case: "2: F ⊄ entry.firing → new alerts added",
                entry: Some(log(0, &["a"], &[])),
                firing: &["a", "b"],
                resolved: &[],
                send_resolved: false,
                now: 10,
                want: (true, NewAlertsAdded),
            },
            Row {
                case: "2: F ⊄ entry.firing while another resolved → still new alerts added",
                entry: Some(log(0, &["a"], &[])),
                firing: &["b"],
                resolved: &["a"],
                send_resolved: false,
                now: 10,
                want: (true, NewAlertsAdded),
            },
            Row {
                case: "2: F ⊄ entry.firing = ∅ → first notification",
                entry: Some(log(0, &[], &["a"])),
                firing: &["b"],
                resolved: &["a"],
                send_resolved: false,
                now: 10,
                want: (true, FirstNotification),
            },
            Row {
                case: "3: F = ∅, entry.firing ≠ ∅ → all resolved, even without send_resolved",
                entry: Some(log(0, &["a", "b"], &[])),
                firing: &[],
                resolved: &["a", "b"],
                send_resolved: false,
                now: 10,
                want: (true, AllResolved),
            },
            Row {
                case: "3: F = ∅, entry.firing = ∅ → nothing, even with send_resolved and new R",
                entry: Some(log(0, &[], &["a"])),
                firing: &[],
                resolved: &["a", "b"],
                send_resolved: true,
                now: 10_000,
                want: (false, NothingToSend),
            },
            Row {
                case: "3: F = ∅ wins over row 5 when nothing was firing",
                entry: Some(log(0, &[], &[])),
                firing: &[],
                resolved: &[],
                send_resolved: false,
                now: 10_000,
                want: (false, NothingToSend),
            },
            Row {
                case: "4: send_resolved, R ⊄ entry.resolved → some resolved",
                entry: Some(log(0, &["a", "b"], &[])),
                firing: &["b"],
                resolved: &["a"],
                send_resolved: true,
                now: 10,
                want: (true, SomeResolved),
            },
            Row {
                case: "4 skipped without send_resolved: one resolving while others fire → nothing",
                entry: Some(log(0, &["a", "b"], &[])),
                firing: &["b"],
                resolved: &["a"],
                send_resolved: false,
                now: 10,
                want: (false, NothingToSend),
            },
            Row {
                case: "4: R ⊆ entry.resolved → falls through to row 6",
                entry: Some(log(0, &["b"], &["a"])),
                firing: &["b"],
                resolved: &["a"],
                send_resolved: true,
                now: 10,
                want: (false, NothingToSend),
            },
            Row {
                case: "5: entry older than repeat_interval → repeat",
                entry: Some(log(0, &["a"], &[])),
                firing: &["a"],
                resolved: &[],
                send_resolved: false,
                now: 1_001,
                want: (true, RepeatIntervalElapsed),
            },
            Row {
                case: "5: F shrank but the entry is old → repeat",
                entry: Some(log(0, &["a", "b"], &[])),
                firing: &["a"],
                resolved: &["b"],
                send_resolved: false,
                now: 1_001,
                want: (true, RepeatIntervalElapsed),
            },
            Row {
                case: "6: entry exactly repeat_interval old is not older → nothing",
                entry: Some(log(0, &["a"], &[])),
                firing: &["a"],
                resolved: &[],
                send_resolved: false,
                now: 1_000,
                want: (false, NothingToSend),
            },
            Row {
                case: "6: F ⊆ entry.firing, nothing else → nothing",
                entry: Some(log(0, &["a", "b"], &[])),
                firing: &["a", "b"],
                resolved: &[],
                send_resolved: true,
                now: 10,
                want: (false, NothingToSend),
            },
        ];
        for row in rows {
            let got = decide(
                row.entry.as_ref(),
                &set(row.firing),
                &set(row.resolved),
                row.send_resolved,
                REPEAT,
                row.now,
            );
            assert_eq!((got.send, got.reason), row.want, "row {}", row.case);
        }
    }

    fn batch_of(alerts: &[Alert], taken_at_ms: i64) -> (GroupState, FlushBatch) {
        let config = config(&["alertname"]);
        let mut group = GroupState::new("r", "slack", &config, &alerts[0], 0);
        for a in &alerts[1..] {
            group.insert(a, 0);
        }
        let batch = group.begin_flush(taken_at_ms, &config);
        (group, batch)
    }

    #[test]
    fn without_send_resolved_resolved_alerts_are_stripped_from_the_payload() {
        let a = alert(&[("alertname", "Disk"), ("host", "a")], 0);
        let b = resolved(alert(&[("alertname", "Disk"), ("host", "b")], 0), 5);
        let c = alert(&[("alertname", "Disk"), ("host", "c")], 0);
        let (_, batch) = batch_of(&[a.clone(), b.clone(), c.clone()], 10);
        let entry = log(0, &[&a.fingerprint, &b.fingerprint], &[]);

        let plan = batch.plan(&BTreeSet::new(), Some(&entry), false, REPEAT, 10);
        assert_eq!(plan.decision.reason, NotifyReason::NewAlertsAdded);
        let sent: Vec<&str> = plan.alerts.iter().map(|a| a.fingerprint.as_str()).collect();
        assert_eq!(sent, [a.fingerprint.as_str(), c.fingerprint.as_str()]);
        assert_eq!(plan.status, AlertStatus::Firing);
        assert_eq!(
            plan.resolved,
            set(&[&b.fingerprint]),
            "the log still records R"
        );
        assert_eq!(
            plan.log_entry(10).map(|l| l.resolved),
            Some(set(&[&b.fingerprint]))
        );

        let with = batch.plan(&BTreeSet::new(), Some(&entry), true, REPEAT, 10);
        assert_eq!(with.alerts.len(), 3, "send_resolved keeps the resolved one");
        assert_eq!(with.status, AlertStatus::Firing);
    }

    #[test]
    fn all_resolved_sends_nothing_over_the_wire_without_send_resolved_but_writes_the_log() {
        let a = resolved(alert(&[("alertname", "Disk"), ("host", "a")], 0), 5);
        let b = resolved(alert(&[("alertname", "Disk"), ("host", "b")], 0), 5);
        let (mut group, batch) = batch_of(&[a.clone(), b.clone()], 10);
        let entry = log(0, &[&a.fingerprint, &b.fingerprint], &[]);

        let plan = batch.plan(&BTreeSet::new(), Some(&entry), false, REPEAT, 10);
        assert_eq!(
            plan.decision,
            NotifyDecision {
                send: true,
                reason: NotifyReason::AllResolved
            }
        );
        assert!(plan.alerts.is_empty() && !plan.transmit());
        let written = plan.log_entry(10).unwrap();
        assert!(written.firing.is_empty());
        assert!(
            !decide(
                Some(&written),
                &set(&[]),
                &plan.resolved,
                true,
                REPEAT,
                5_000
            )
            .send,
            "once logged, the resolved group stays quiet"
        );

        let plan = batch.plan(&BTreeSet::new(), Some(&entry), true, REPEAT, 10);
        assert!(plan.transmit());
        assert_eq!(plan.status, AlertStatus::Resolved);
        assert!(
            group.after_success(&batch),
            "the group is empty: destroy it"
        );
    }

    #[test]
    fn muted_alerts_are_neither_counted_nor_sent_and_a_muted_resolve_stays_silent() {
        let a = alert(&[("alertname", "Disk"), ("host", "a")], 0);
        let b = resolved(alert(&[("alertname", "Disk"), ("host", "b")], 0), 5);
        let (mut group, batch) = batch_of(&[a.clone(), b.clone()], 10);
        let entry = log(0, &[&a.fingerprint, &b.fingerprint], &[]);
        let muted = set(&[&b.fingerprint]);
        let plan = batch.plan(&muted, Some(&entry), true, REPEAT, 10);
        assert!(plan.resolved.is_empty());
        assert!(!plan.decision.send, "F shrank and R is empty after muting");
        assert!(plan.log_entry(10).is_none());
        assert!(!group.after_success(&batch));
        assert_eq!(
            group.alerts.keys().collect::<Vec<_>>(),
            [&a.fingerprint],
            "the muted resolved alert is gone all the same"
        );
    }

    #[test]
    fn resolved_alerts_pair_with_their_notified_firing() {
        let a = resolved(alert(&[("alertname", "Disk"), ("host", "a")], 0), 5);
        let b = resolved(alert(&[("alertname", "Disk"), ("host", "b")], 0), 5);
        let c = alert(&[("alertname", "Disk"), ("host", "c")], 0);
        let (_, batch) = batch_of(&[a.clone(), b.clone(), c.clone()], 10);
        assert_eq!(batch.firing(), set(&[&c.fingerprint]));
        assert_eq!(batch.resolved(), set(&[&a.fingerprint, &b.fingerprint]));
        let entry = log(0, &[&a.fingerprint, &c.fingerprint], &[]);
        assert_eq!(
            batch.resolved_previously_notified(&entry),
            [a.fingerprint.as_str()]
        );
    }

    #[test]
    fn payload_status_is_firing_if_any_alert_fires() {
        let firing = GroupedAlert::from_alert(&alert(&[("a", "1")], 0), 0);
        let mut ended = firing.clone();
        ended.ends_at_ms = Some(50);
        let mut later = firing.clone();
        later.ends_at_ms = Some(500);
        let gone = GroupedAlert::from_alert(&resolved(alert(&[("a", "2")], 0), 50), 60);
        assert_eq!(payload_status([&firing, &gone], 100), AlertStatus::Firing);
        assert_eq!(
            payload_status([&later, &gone], 100),
            AlertStatus::Firing,
            "ends in the future"
        );
        assert_eq!(
            payload_status([&ended, &gone], 100),
            AlertStatus::Resolved,
            "an end time passed is resolved"
        );
        assert_eq!(payload_status([], 100), AlertStatus::Resolved);
    }

    #[test]
    fn flushed_copies_clear_firing_end_times_and_mark_passed_ones_resolved() {
        let mut prom = alert(&[("alertname", "A"), ("host", "a")], 0);
        prom.ends_at_ms = Some(1_000);
        let mut expired = alert(&[("alertname", "A"), ("host", "b")], 0);
        expired.ends_at_ms = Some(50);
        let mut no_end = resolved(alert(&[("alertname", "A"), ("host", "c")], 0), 0);
        no_end.ends_at_ms = None;
        let (_, batch) = batch_of(&[prom, expired, no_end], 100);
        let by_host = |h: &str| {
            batch
                .alerts
                .iter()
                .find(|a| a.labels["host"] == h)
                .unwrap()
                .clone()
        };
        assert_eq!(
            (by_host("a").status, by_host("a").ends_at_ms),
            (AlertStatus::Firing, None)
        );
        assert_eq!(
            (by_host("b").status, by_host("b").ends_at_ms),
            (AlertStatus::Resolved, Some(50))
        );
        assert_eq!(
            (by_host("c").status, by_host("c").ends_at_ms),
            (AlertStatus::Resolved, Some(0)),
            "a resolve without an end time ends when Ward heard of it"
        );
    }

    #[test]
    fn payload_order_is_job_then_instance_then_labels() {
        let a = alert(&[("alertname", "A"), ("job", "b"), ("instance", "1")], 0);
        let b = alert(&[("alertname", "A"), ("job", "a"), ("instance", "2")], 0);
        let c = alert(&[("alertname", "A"), ("job", "a"), ("instance", "1")], 0);
        let d = alert(&[("alertname", "A")], 0);
        let (_, batch) = batch_of(&[d, a, b, c], 0);
        let order: Vec<String> = batch
            .alerts
            .iter()
            .map(|a| {
                format!(
                    "{}/{}",
                    a.labels.get("job").map_or("-", String::as_str),
                    a.labels.get("instance").map_or("-", String::as_str)
                )
            })
            .collect();
        assert_eq!(order, ["a/1", "a/2", "b/1", "-/-"]);
    }

    #[test]
    fn merges_keep_the_newest_update_and_the_earliest_start_of_one_firing() {
        let config = config(&["alertname"]);
        let mut first = alert(&[("alertname", "A")], 100);
        first
            .annotations
            .insert("summary".to_owned(), "old".to_owned());
        let mut group = GroupState::new("r", "c", &config, &first, 1_000);
        let fp = first.fingerprint.clone();

        let mut again = first.clone();
        again.starts_at_ms = 200;
        again
            .annotations
            .insert("summary".to_owned(), "new".to_owned());
        group.insert(&again, 2_000);
        let stored = &group.alerts[&fp];
        assert_eq!(stored.annotations["summary"], "new", "newest update wins");
        assert_eq!(stored.starts_at_ms, 100, "earliest start kept");
        assert_eq!(stored.updated_at_ms, 2_000);

        let mut stale = first.clone();
        stale
            .annotations
            .insert("summary".to_owned(), "stale".to_owned());
        stale.starts_at_ms = 50;
        group.insert(&stale, 1_500);
        let stored = &group.alerts[&fp];
        assert_eq!(
            stored.annotations["summary"], "new",
            "an older copy never wins"
        );
        assert_eq!(stored.starts_at_ms, 50, "but its earlier start counts");
        assert_eq!(stored.updated_at_ms, 2_000);

        group.insert(&resolved(first.clone(), 3_000), 3_000);
        assert_eq!(group.alerts[&fp].status, AlertStatus::Resolved);
        let mut refire = first.clone();
        refire.starts_at_ms = 4_000;
        group.insert(&refire, 4_000);
        let stored = &group.alerts[&fp];
        assert_eq!(stored.status, AlertStatus::Firing);
        assert_eq!(
            stored.starts_at_ms, 4_000,
            "firing again after the resolve is a new firing"
        );
    }

    #[test]
    fn after_success_keeps_resolved_alerts_updated_during_the_flush() {
        let config = config(&["alertname"]);
        let a = alert(&[("alertname", "A"), ("host", "a")], 0);
        let b = alert(&[("alertname", "A"), ("host", "b")], 0);
        let c = alert(&[("alertname", "A"), ("host", "c")], 0);
        let mut group = GroupState::new("r", "c", &config, &a, 0);
        group.insert(&resolved(b.clone(), 10), 10);
        group.insert(&resolved(c.clone(), 10), 10);
        let batch = group.begin_flush(30_000, &config);
        group.insert(&c, 30_001);
        assert!(!group.after_success(&batch));
        let left: BTreeSet<String> = group.alerts.keys().cloned().collect();
        assert_eq!(
            left,
            set(&[&a.fingerprint, &c.fingerprint]),
            "b deleted; c fired again during the flush and stays; a fires"
        );

        let mut same_ms = GroupState::new("r", "c", &config, &resolved(b.clone(), 10), 10);
        let batch = same_ms.begin_flush(20, &config);
        same_ms.insert(&b, 10);
        assert!(
            !same_ms.after_success(&batch),
            "re-fired within the same ms: not deleted"
        );
    }

    #[test]
    fn failure_changes_nothing_and_the_next_tick_retries() {
        let config = config(&["alertname"]);
        let a = alert(&[("alertname", "A")], 0);
        let mut group = GroupState::new("r", "c", &config, &resolved(a, 5), 10);
        let first = group.begin_flush(30_010, &config);
        // The send failed: no after_success, no log entry.
        assert!(!group.is_empty());
        assert!(!group.due(30_011));
        assert!(group.due(330_010));
        let retry = group.begin_flush(330_010, &config);
        assert_eq!(retry.alerts, first.alerts);
        assert_eq!(retry.flush, 2);
        assert!(group.after_success(&retry));
    }

    #[test]
    fn config_defaults_validation_and_field_names() {
        let config: GroupingConfig = toml::from_str("").unwrap();
        assert_eq!(config, GroupingConfig::default());
        assert_eq!(
            (
                config.group_wait_ms,
                config.group_interval_ms,
                config.repeat_interval_ms
            ),
            (30_000, 300_000, 14_400_000)
        );
        assert!(!config.is_enabled());
        assert!(config.validate().is_ok());

        let field = |text: &str| {
            toml::from_str::<GroupingConfig>(text)
                .unwrap()
                .validate()
                .unwrap_err()
                .field
        };
        assert_eq!(field("group_interval_ms = 0"), "group_interval_ms");
        assert_eq!(field("repeat_interval_ms = 0"), "repeat_interval_ms");
        assert_eq!(field(r#"group_by = ["a", "b", "a"]"#), "group_by");
        assert_eq!(field(r#"group_by = ["...", "a"]"#), "group_by");
        assert_eq!(field(r#"group_by = [""]"#), "group_by");
        let err = toml::from_str::<GroupingConfig>(r#"group_by = ["a", "a"]"#)
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(err.to_string(), "group_by: duplicate label \"a\"");
        for ok in [
            "group_by = []",
            r#"group_by = ["..."]"#,
            "group_wait_ms = 0",
        ] {
            assert!(
                toml::from_str::<GroupingConfig>(ok)
                    .unwrap()
                    .validate()
                    .is_ok(),
                "{ok}"
            );
        }
        assert!(toml::from_str::<GroupingConfig>("group_wiat_ms = 1").is_err());
        let long = GroupingConfig {
            repeat_interval_ms: 200 * 3_600_000,
            ..GroupingConfig::default()
        };
        assert_eq!(long.warnings().len(), 1);
    }

    /// The wiring `RouteConfig` will use: flattened into a `deny_unknown_fields` table.
    #[test]
    fn flattens_into_a_strict_route_table() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Route {
            name: String,
            #[serde(default)]
            channels: Vec<String>,
            #[serde(flatten)]
            grouping: GroupingConfig,
        }
        let route: Route = toml::from_str(
            r#"
            name = "db"
            channels = ["slack"]
            group_by = ["alertname", "team"]
            group_wait_ms = 10000
        "#,
        )
        .unwrap();
        assert_eq!(
            route.grouping,
            GroupingConfig {
                group_by: Some(vec!["alertname".to_owned(), "team".to_owned()]),
                group_wait_ms: 10_000,
                ..GroupingConfig::default()
            }
        );
        let plain: Route = toml::from_str(r#"name = "x""#).unwrap();
        assert_eq!(plain.grouping, GroupingConfig::default());
        assert_eq!(
            toml::to_string(&plain).unwrap().trim(),
            "name = \"x\"\nchannels = []",
            "defaults are not written back"
        );
        let typo = toml::from_str::<Route>("name = \"x\"\ngroup_intervall_ms = 5").unwrap_err();
        assert!(
            typo.to_string().contains("group_intervall_ms"),
            "unknown fields still rejected: {typo}"
        );
        let json: Route = serde_json::from_str(r#"{"name":"x","group_by":[]}"#).unwrap();
        assert_eq!(json.grouping.group_by, Some(vec![]));
    }

    #[test]
    fn group_labels_pick_what_the_alert_has() {
        let alert_labels = labels(&[
            ("alertname", "Disk"),
            ("team", "db"),
            ("host", "h1"),
            ("empty", ""),
        ]);
        assert_eq!(
            group_labels(&config(&["team", "alertname", "cluster"]), &alert_labels),
            labels(&[("alertname", "Disk"), ("team", "db")]),
            "missing labels are left out"
        );
        assert_eq!(
            group_labels(&config(&["..."]), &alert_labels),
            labels(&[("alertname", "Disk"), ("team", "db"), ("host", "h1")]),
            "every label; empty ones count as absent"
        );
        assert!(group_labels(&config(&[]), &alert_labels).is_empty());
        assert!(group_labels(&config(&["empty"]), &alert_labels).is_empty());
        assert!(group_labels(&GroupingConfig::default(), &alert_labels).is_empty());
    }

    #[test]
    fn group_key_format_and_ids() {
        let key = group_key(
            "checkout",
            &labels(&[("team", "db"), ("alertname", "Disk")]),
        );
        assert_eq!(key, r#"checkout:{alertname="Disk",team="db"}"#);
        assert_eq!(group_key("checkout", &BTreeMap::new()), "checkout:{}");
        assert_eq!(
            group_key(
                "r",
                &labels(&[("a", "say \"hi\"\\\n"), ("service.name", "x")])
            ),
            r#"r:{a="say \"hi\"\\\n","service.name"="x"}"#
        );
        // Pinned: ids name stored state, so they must not change between versions.
        assert_eq!(group_id(&key), "ad0b6ac3dfbfec26");
        assert_eq!(group_id(""), "cbf29ce484222325");
        assert_eq!(group_id(&key).len(), 16);
        assert_ne!(
            target_group_id(&key, "slack"),
            target_group_id(&key, "email")
        );
        assert_ne!(target_group_id("b", "a"), target_group_id("", "ab"));
        let group = GroupState::new(
            "checkout",
            "slack",
            &config(&["alertname", "team"]),
            &alert(&[("alertname", "Disk"), ("team", "db"), ("host", "1")], 0),
            0,
        );
        assert_eq!(group.key, key);
        assert_eq!(group.id(), target_group_id(&key, "slack"));
    }

    #[test]
    fn dedup_digest_is_stable_and_content_sensitive() {
        let digest = dedup_digest("r:{}", "slack", &set(&["a", "b"]), &set(&["c"]));
        assert_eq!(
            digest, "1a5b69e99e03cddd0aff35e74adb8045",
            "pinned: stored claims use it"
        );
        assert_eq!(
            digest,
            dedup_digest("r:{}", "slack", &set(&["b", "a"]), &set(&["c"]))
        );
        for other in [
            dedup_digest("r:{}", "email", &set(&["a", "b"]), &set(&["c"])),
            dedup_digest("r:{}", "slack", &set(&["a", "b", "c"]), &set(&[])),
            dedup_digest("r:{}", "slack", &set(&["a"]), &set(&["b", "c"])),
            dedup_digest("s:{}", "slack", &set(&["a", "b"]), &set(&["c"])),
        ] {
            assert_ne!(digest, other);
        }
    }

    #[test]
    fn nflog_ttl_is_twice_the_repeat_capped_at_retention() {
        assert_eq!(nflog_ttl_ms(3_600_000), 7_200_000);
        assert_eq!(nflog_ttl_ms(14_400_000), 28_800_000);
        assert_eq!(nflog_ttl_ms(100 * 3_600_000), 120 * 3_600_000);
        assert_eq!(nflog_ttl_ms(u64::MAX), NFLOG_RETENTION_MS);
    }

    #[test]
    fn state_round_trips_through_json() {
        let config = config(&["alertname"]);
        let mut group = GroupState::new("r", "c", &config, &alert(&[("alertname", "A")], 0), 7);
        group.insert(&resolved(alert(&[("alertname", "A"), ("x", "1")], 0), 9), 9);
        let json = serde_json::to_string(&group).unwrap();
        assert_eq!(serde_json::from_str::<GroupState>(&json).unwrap(), group);
        let batch = group.begin_flush(40_000, &config);
        let json = serde_json::to_string(&batch).unwrap();
        assert_eq!(serde_json::from_str::<FlushBatch>(&json).unwrap(), batch);
        let entry = log(1, &["a"], &["b"]);
        let json = serde_json::to_string(&entry).unwrap();
        assert_eq!(serde_json::from_str::<NotifyLog>(&json).unwrap(), entry);
        assert_eq!(
            serde_json::to_string(&NotifyReason::RepeatIntervalElapsed).unwrap(),
            "\"repeat_interval_elapsed\""
        );
    }
}
