use serde::{Deserialize, Serialize};

use super::envelope::QueueName;

/// Which deployment layout the key schema follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Ward's own partitioned layout.
    #[default]
    Ward,
    /// An existing MUTT deployment (lists, plain string breaker keys, `mutt:config:*`).
    Mutt,
}

/// Operator-set switches every worker obeys.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Flag {
    /// Stop all sending (`None`) or sending through one backend.
    EmergencyStop(Option<String>),
    /// Load-shedding mode: `off`, `dlq` or `defer`.
    SheddingMode,
}

impl Flag {
    pub fn name(&self) -> String {
        match self {
            Self::EmergencyStop(None) => "emergency_stop".to_owned(),
            Self::EmergencyStop(Some(backend)) => format!("emergency_stop:{backend}"),
            Self::SheddingMode => "shedding_mode".to_owned(),
        }
    }
}

/// A flag's value with its provenance, as the Overrides view lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at_ms: i64,
    pub who: String,
    pub action: String,
    pub scope: String,
    #[serde(default)]
    pub plan: serde_json::Value,
    pub result: String,
    pub duration_ms: u64,
}

/// An audit record as read back, with the id the store gave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: String,
    pub record: AuditRecord,
}

/// The figures of one queue, summed over partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    pub queue: QueueName,
    pub depth: u64,
    pub in_flight: u64,
    pub scheduled: u64,
    pub dlq: u64,
    pub dead: u64,
    /// Age of the oldest waiting item (by creation time), `None` when empty or unknown.
    pub oldest_age_ms: Option<u64>,
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
        }
    }
}

/// Everything the control room needs from the store, read in one round trip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStats {
    pub read_at_ms: i64,
    pub queues: Vec<QueueStats>,
    pub flags: Vec<(String, FlagState)>,
}
