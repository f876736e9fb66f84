use serde::{Deserialize, Serialize};

use super::envelope::QueueName;

/// Which deployment layout the key schema follows.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Ward's own partitioned layout.
    #[default]
    Ward,
    /// An existing MUTT deployment (lists, plain string breaker keys, `mutt:config:*`).
    Mutt,
}

impl Profile {
    pub fn is_ward(&self) -> bool {
        *self == Self::Ward
    }
}

/// Operator-set switches every worker obeys.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Flag {
    /// Stop all sending (`None`) or sending through one backend.
    EmergencyStop(Option<String>),
    /// Load-shedding mode: `off`, `dlq` or `defer`.
    SheddingMode,
    /// The provenance of an operator-set dynamic config value (its value is the config's).
    ConfigOverride(String),
}

impl Flag {
    /// The flag a stored name stands for (`None` for a name Ward does not know).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "emergency_stop" => Some(Self::EmergencyStop(None)),
            "shedding_mode" => Some(Self::SheddingMode),
            _ => name
                .strip_prefix("emergency_stop:")
                .map(|b| Self::EmergencyStop(Some(b.to_owned())))
                .or_else(|| {
                    name.strip_prefix("config:")
                        .map(|k| Self::ConfigOverride(k.to_owned()))
                }),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Self::EmergencyStop(None) => "emergency_stop".to_owned(),
            Self::EmergencyStop(Some(backend)) => format!("emergency_stop:{backend}"),
            Self::SheddingMode => "shedding_mode".to_owned(),
            Self::ConfigOverride(key) => format!("config:{key}"),
        }
    }
}

/// What workers do with a queue deeper than its shed threshold.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ShedMode {
    /// No shedding: depth is only reported.
    #[default]
    Off,
    /// Move the oldest waiting items to the DLQ with the `shed` reason, in bounded steps.
    Dlq,
    /// Lease nothing from the queue until it drains below the threshold.
    Defer,
}

impl ShedMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Dlq => "dlq",
            Self::Defer => "defer",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "off" => Some(Self::Off),
            "dlq" => Some(Self::Dlq),
            "defer" => Some(Self::Defer),
            _ => None,
        }
    }
}

/// A queue's depth thresholds, set at runtime through dynamic config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Threshold {
    /// Over it: a warning and a metric.
    Warn,
    /// Over it: shedding, in the current mode.
    Shed,
}

impl Threshold {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warn => "warn",
            Self::Shed => "shed",
        }
    }

    /// The dynamic config entry holding this threshold for `queue`.
    pub fn config_key(self, queue: &QueueName) -> String {
        format!("shedding.{}.{}", queue.as_str(), self.as_str())
    }
}

/// A flag's value with its provenance, as the Overrides view lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FlagState {
    pub value: String,
    pub owner: String,
    pub reason: String,
    pub set_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<i64>,
}

impl FlagState {
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expires_at_ms.is_some_and(|at| at <= now_ms)
    }
}

/// One audit record: who did what, when, to which scope, and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditRecord {
    pub at_ms: i64,
    pub who: String,
    pub action: String,
    pub scope: String,
    #[serde(default)]
    pub plan: serde_json::Value,
    pub result: String,
    pub duration_ms: u64,
    /// Where the action came from: `key`, `command`, `headless`, `automatic` or `api`.
    #[serde(default)]
    pub origin: String,
    /// The deployment acted on (its label or profile).
    #[serde(default)]
    pub target: String,
    /// The plan's id, so the items one run moved can be found again.
    #[serde(default)]
    pub batch_id: String,
    /// The operator's reason, when one was given.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// An audit record as read back, with the id the store gave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditEntry {
    pub id: String,
    pub record: AuditRecord,
}

/// The figures of one queue, summed over partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct QueueStats {
    pub queue: QueueName,
    pub depth: u64,
    pub in_flight: u64,
    pub scheduled: u64,
    pub dlq: u64,
    pub dead: u64,
    /// Age of the oldest waiting item (by creation time), `None` when empty or unknown.
    pub oldest_age_ms: Option<u64>,
    /// The scheduled work (retries, and sends held back) by channel, with when it is due.
    #[serde(default)]
    pub waiting_retry: ScheduledSummary,
}

impl QueueStats {
    pub fn empty(queue: QueueName) -> Self {
        Self {
            queue,
            depth: 0,
            in_flight: 0,
            scheduled: 0,
            dlq: 0,
            dead: 0,
            oldest_age_ms: None,
            waiting_retry: ScheduledSummary::default(),
        }
    }
}

/// A queue's scheduled entries as far as one read looks: the due-soonest of each partition,
/// up to `SCHEDULED_SAMPLE` each. The soonest due time is always exact; the other figures cover
/// `read` of the queue's `scheduled` entries, which the views and `ward check` say when short.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScheduledSummary {
    /// Entries these figures were computed from.
    pub read: u64,
    /// When the soonest is due.
    pub next_due_ms: Option<i64>,
    /// Age, since it was created, of the oldest entry read.
    pub oldest_age_ms: Option<u64>,
    /// Entries read that failed at least once; the others are held back unsent (an open
    /// breaker, an emergency stop, deferred shedding).
    pub retrying: u64,
    /// By channel, most entries first (`""`: not routed yet, the ingest queue).
    pub channels: Vec<ScheduledChannel>,
}

/// One channel's scheduled entries among those read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScheduledChannel {
    pub channel: String,
    pub count: u64,
    pub retrying: u64,
    pub next_due_ms: i64,
    pub oldest_age_ms: u64,
}

/// Scheduled entries read per partition for `ScheduledSummary` (due-soonest first).
pub const SCHEDULED_SAMPLE: usize = 100;

/// One scheduled entry as a store reads it for the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledItem {
    pub id: String,
    pub due_ms: i64,
    pub attempts: u32,
    pub channel: String,
}

impl ScheduledSummary {
    /// The summary of the entries read, across partitions.
    pub fn of(items: &[ScheduledItem], now_ms: i64) -> Self {
        let age = |id: &str| {
            super::ulid_timestamp_ms(id).map_or(0, |created| {
                u64::try_from(now_ms.saturating_sub(created)).unwrap_or(0)
            })
        };
        let mut channels: Vec<ScheduledChannel> = Vec::new();
        for item in items {
            let age = age(&item.id);
            let retrying = u64::from(item.attempts > 0);
            match channels.iter_mut().find(|c| c.channel == item.channel) {
                Some(c) => {
                    c.count += 1;
                    c.retrying += retrying;
                    c.next_due_ms = c.next_due_ms.min(item.due_ms);
                    c.oldest_age_ms = c.oldest_age_ms.max(age);
                }
                None => channels.push(ScheduledChannel {
                    channel: item.channel.clone(),
                    count: 1,
                    retrying,
                    next_due_ms: item.due_ms,
                    oldest_age_ms: age,
                }),
            }
        }
        channels.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.channel.cmp(&b.channel))
        });
        Self {
            read: items.len() as u64,
            next_due_ms: items.iter().map(|i| i.due_ms).min(),
            oldest_age_ms: items.iter().map(|i| age(&i.id)).max(),
            retrying: items.iter().filter(|i| i.attempts > 0).count() as u64,
            channels,
        }
    }
}

/// Everything the control room needs from the store, read in one round trip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StoreStats {
    pub read_at_ms: i64,
    pub queues: Vec<QueueStats>,
    pub flags: Vec<(String, FlagState)>,
}

/// A worker process's heartbeat: when it last wrote, and its running totals since it started
/// (the control room turns the differences between two reads into rates).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct WorkerBeat {
    pub at_ms: i64,
    pub started_ms: i64,
    /// What the process runs; beats written before roles existed are `all`.
    #[serde(default)]
    pub role: Role,
    #[serde(default)]
    pub ingested: u64,
    #[serde(default)]
    pub routed: u64,
    #[serde(default)]
    pub delivered: u64,
    /// Failed sends (retried or dead-lettered).
    #[serde(default)]
    pub failed: u64,
    #[serde(default)]
    pub dead_lettered: u64,
    /// Deliveries held back by a silence, inhibition or maintenance window.
    #[serde(default)]
    pub suppressed: u64,
}

/// What one `ward up` process runs: a deployment may split the ingest endpoint from the
/// consumers (route, deliver, schedule, remediate, group) and scale each apart on one store.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The ingest endpoint and every consumer.
    #[default]
    All,
    /// Only the ingest endpoint (and the control and stats loops every role runs).
    Ingest,
    /// Only the consumers: no HTTP endpoint.
    Workers,
}

impl Role {
    pub const ALL: [Role; 3] = [Self::All, Self::Ingest, Self::Workers];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Ingest => "ingest",
            Self::Workers => "workers",
        }
    }
    pub fn serves_http(self) -> bool {
        matches!(self, Self::All | Self::Ingest)
    }
    /// Leases from the queues: a queue with only non-consumers live is not being drained.
    pub fn consumes(self) -> bool {
        matches!(self, Self::All | Self::Workers)
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| format!("unknown role {text:?}: all, ingest or workers"))
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a test alert ended, as the delivery worker that handled it reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TestDelivery {
    pub status: TestStatus,
    /// The channel it was sent to (`stdout` when none was picked).
    pub channel: String,
    /// The error class and message, when it was not delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The send's duration (0 when nothing was sent).
    pub took_ms: u64,
    pub at_ms: i64,
}

impl TestDelivery {
    pub fn delivered(&self) -> bool {
        self.status == TestStatus::Delivered
    }

    /// One line: `delivered to slack-ops in 120ms`, `failed on pager: http_500 …`.
    pub fn summary(&self) -> String {
        let error = self.error.as_deref().unwrap_or("no error given");
        match self.status {
            TestStatus::Delivered => {
                format!("delivered to {} in {}ms", self.channel, self.took_ms)
            }
            TestStatus::Failed => format!("failed on {}: {error}", self.channel),
            TestStatus::NotSent => format!("not sent to {}: {error}", self.channel),
            TestStatus::TimedOut => format!("timed out: {error}"),
        }
    }
}

/// The end of a test alert: a test is one attempt, never retried and never dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TestStatus {
    Delivered,
    /// The channel answered with an error.
    Failed,
    /// Held back before sending: an open breaker, an emergency stop, an unknown channel.
    NotSent,
    /// No worker reported an outcome in time (none running, or the queues are backed up).
    TimedOut,
}
