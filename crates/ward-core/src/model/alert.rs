use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How bad an alert is. Ordered: `Critical` is the greatest.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Minor,
    #[default]
    Warning,
    Major,
    Critical,
}

impl Severity {
    pub const ALL: [Self; 5] = [
        Self::Info,
        Self::Minor,
        Self::Warning,
        Self::Major,
        Self::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Minor => "minor",
            Self::Warning => "warning",
            Self::Major => "major",
            Self::Critical => "critical",
        }
    }

    /// Moogsoft's numeric scale (DOMAIN.md §8.4): Critical 5 … Info 1 (0 is Clear, a resolve).
    pub fn moog_level(self) -> u8 {
        match self {
            Self::Info => 1,
            Self::Minor => 2,
            Self::Warning => 3,
            Self::Major => 4,
            Self::Critical => 5,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "info" | "informational" => Ok(Self::Info),
            "minor" | "low" => Ok(Self::Minor),
            "warning" | "warn" => Ok(Self::Warning),
            "major" | "high" | "error" => Ok(Self::Major),
            "critical" | "crit" | "page" => Ok(Self::Critical),
            other => Err(format!(
                "unknown severity {other:?}: use info, minor, warning, major or critical"
            )),
        }
    }
}

/// Whether the problem is happening or over.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    #[default]
    Firing,
    Resolved,
}

/// The label that picks a test alert's channel (without it, a test goes to `stdout`).
pub const TEST_CHANNEL_LABEL: &str = "ward_test_channel";

/// One alert as Ward carries it from ingest to delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub severity: Severity,
    #[serde(default)]
    pub status: AlertStatus,
    pub tenant: String,
    /// Stable identity of the alert's label set (Alertmanager's, or computed by Ward).
    pub fingerprint: String,
    pub starts_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
    pub correlation_id: String,
    /// Sent through the real path by an operator's test: counted apart, never pages anyone real
    /// unless a channel was chosen.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

impl Alert {
    /// `alertname`, else the `summary` annotation, else the fingerprint.
    pub fn title(&self) -> &str {
        self.labels
            .get("alertname")
            .or_else(|| self.annotations.get("summary"))
            .map_or(self.fingerprint.as_str(), String::as_str)
    }

    /// `description`, else `summary`, else empty.
    pub fn description(&self) -> &str {
        self.annotations
            .get("description")
            .or_else(|| self.annotations.get("summary"))
            .map_or("", String::as_str)
    }
}

/// 16 hex digits of FNV-1a over the sorted label set, like Alertmanager's fingerprint length.
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (key, value) in labels {
        for byte in key.bytes().chain([0xff]).chain(value.bytes()).chain([0xfe]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// One delivery: an alert for one channel (a configured backend), queued on `delivery`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryJob {
    pub alert: Alert,
    /// The name of the configured backend to send through.
    pub channel: String,
    /// The retry policy's name, for telemetry and the next attempt's delay.
    pub retry_policy: String,
    /// The delay chosen before this attempt (decorrelated jitter needs it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_delay_ms: Option<u64>,
    /// A grouped route's notification: every alert of the group it lists (`alert` is its
    /// first, for what reads one alert: telemetry, the DLQ's glance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupNotification>,
}

/// One notification for an aggregation group (Alertmanager's grouping): its firing alerts and
/// those resolved since the last one, and why it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupNotification {
    /// The route and group labels: `ops:{alertname="Disk"}`.
    pub group_key: String,
    pub route: String,
    pub group_labels: BTreeMap<String, String>,
    /// `firing` when any listed alert fires, else `resolved`.
    pub status: AlertStatus,
    /// Alertmanager's `notification_reason`: `first notification`, `new alerts added`, …
    pub reason: String,
    /// Firing first, then resolved; a resolved alert carries its end.
    pub alerts: Vec<Alert>,
    /// Resolved alerts whose firing an earlier notification of this group carried.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved_after_notified: Vec<String>,
}

impl GroupNotification {
    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.alerts
            .iter()
            .filter(|a| a.status == AlertStatus::Firing)
    }

    pub fn resolved(&self) -> impl Iterator<Item = &Alert> {
        self.alerts
            .iter()
            .filter(|a| a.status == AlertStatus::Resolved)
    }

    /// `[FIRING:2] ops:{alertname="Disk"}`, or `[RESOLVED] …`.
    pub fn title(&self) -> String {
        match self.status {
            AlertStatus::Firing => format!("[FIRING:{}] {}", self.firing().count(), self.group_key),
            AlertStatus::Resolved => format!("[RESOLVED] {}", self.group_key),
        }
    }
}
