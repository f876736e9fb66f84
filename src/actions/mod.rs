//! Operator actions. Every mutation — from a key, a `:` command, a headless subcommand or an
//! automatic worker — is one `Action`. `Policy::check` refuses it in read-only mode before any
//! I/O; `Actions::plan` is the dry run (count, sample, batch, rate, ETA); `Actions::execute` runs
//! a plan in bounded batches with progress and cancel, and writes one audit record.

mod executor;
mod overrides;
mod plan;
mod policy;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use executor::{Outcome, Progress, Report};
pub use overrides::{Override, OverrideKind, end_expired, overrides, overrides_from};
pub use plan::{Plan, SampleRow};
pub use policy::{Policy, Refusal};

use crate::model::{EnvelopeId, FlagState, QueueName, ShedMode, Threshold};
use crate::store::{DlqFilter, FailedSet, StoreError};

/// What a DLQ action applies to: marked entries, or everything a filter selects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Ids(Vec<EnvelopeId>),
    Filter(DlqFilter),
}

/// One operator mutation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Entries from the DLQ (or, by explicit choice, the dead list) back to their queue, with
    /// the poison guard.
    Replay {
        queue: QueueName,
        from: FailedSet,
        scope: Scope,
        reset_attempts: bool,
    },
    /// Delete entries for good.
    Purge {
        queue: QueueName,
        set: FailedSet,
        scope: Scope,
    },
    /// Give up on DLQ entries: to the dead list, which replay and remediation leave alone.
    MoveToDead { queue: QueueName, scope: Scope },
    /// Shedding mode for every worker (`Off` clears it).
    Shedding {
        mode: ShedMode,
        reason: String,
        expires_at_ms: Option<i64>,
    },
    /// A queue's warn or shed depth (`None` removes it).
    SetThreshold {
        queue: QueueName,
        threshold: Threshold,
        value: Option<u64>,
        reason: String,
    },
    /// Hold a backend's breaker open until `until_ms` (an expiry is mandatory).
    BreakerForceOpen {
        backend: String,
        until_ms: i64,
        reason: String,
    },
    /// Let every call through a backend and record nothing, until reset.
    BreakerDisable { backend: String, reason: String },
    /// Back to closed; clears the breaker's statistics.
    BreakerReset { backend: String, reason: String },
    /// Stop (or resume) sending everywhere (`backend: None`) or through one backend.
    EmergencyStop {
        backend: Option<String>,
        on: bool,
        reason: String,
        expires_at_ms: Option<i64>,
    },
    /// A dynamic config value (`None` deletes it).
    SetConfig {
        key: String,
        value: Option<String>,
        reason: String,
    },
    /// A test alert through the real path: counted apart, and delivered only to `channel` when
    /// one is picked (else to `stdout`, never to anyone real).
    SendTestAlert {
        channel: Option<String>,
        tenant: String,
        summary: String,
    },
    /// Lift an expired override (a flag by name), only if it still holds the value read: an
    /// operator may have set it again meanwhile.
    EndExpired { flag: String, expected: FlagState },
}

/// The variants of `Action`, for lists and for the test that every one is refused read-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Replay,
    Purge,
    MoveToDead,
    Shedding,
    SetThreshold,
    BreakerForceOpen,
    BreakerDisable,
    BreakerReset,
    EmergencyStop,
    SetConfig,
    SendTestAlert,
    EndExpired,
}

impl ActionKind {
    pub const ALL: [Self; 12] = [
        Self::Replay,
        Self::Purge,
        Self::MoveToDead,
        Self::Shedding,
        Self::SetThreshold,
        Self::BreakerForceOpen,
        Self::BreakerDisable,
        Self::BreakerReset,
        Self::EmergencyStop,
        Self::SetConfig,
        Self::SendTestAlert,
        Self::EndExpired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Replay => "replay",
            Self::Purge => "purge",
            Self::MoveToDead => "move_to_dead",
            Self::Shedding => "shedding",
            Self::SetThreshold => "set_threshold",
            Self::BreakerForceOpen => "breaker_force_open",
            Self::BreakerDisable => "breaker_disable",
            Self::BreakerReset => "breaker_reset",
            Self::EmergencyStop => "emergency_stop",
            Self::SetConfig => "set_config",
            Self::SendTestAlert => "send_test_alert",
            Self::EndExpired => "end_expired",
        }
    }
}

/// How dangerous an action is, which decides how it is confirmed (UX §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// One low-risk change: a one-key confirm naming the target.
    Single,
    /// Bulk or stateful: plan, then confirm.
    Bulk,
    /// Cannot be undone: confirm by typing the target or the count.
    Irreversible,
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Self::Replay { .. } => ActionKind::Replay,
            Self::Purge { .. } => ActionKind::Purge,
            Self::MoveToDead { .. } => ActionKind::MoveToDead,
            Self::Shedding { .. } => ActionKind::Shedding,
            Self::SetThreshold { .. } => ActionKind::SetThreshold,
            Self::BreakerForceOpen { .. } => ActionKind::BreakerForceOpen,
            Self::BreakerDisable { .. } => ActionKind::BreakerDisable,
            Self::BreakerReset { .. } => ActionKind::BreakerReset,
            Self::EmergencyStop { .. } => ActionKind::EmergencyStop,
            Self::SetConfig { .. } => ActionKind::SetConfig,
            Self::SendTestAlert { .. } => ActionKind::SendTestAlert,
            Self::EndExpired { .. } => ActionKind::EndExpired,
        }
    }

    /// The DLQ (or dead list) scope of a bulk action.
    pub fn dlq_scope(&self) -> Option<(&QueueName, FailedSet, &Scope)> {
        match self {
            Self::Replay {
                queue, from, scope, ..
            } => Some((queue, *from, scope)),
            Self::Purge { queue, set, scope } => Some((queue, *set, scope)),
            Self::MoveToDead { queue, scope } => Some((queue, FailedSet::Dlq, scope)),
            _ => None,
        }
    }

    pub fn tier(&self) -> Tier {
        match self {
            Self::Purge { .. } => Tier::Irreversible,
            Self::Replay {
                scope: Scope::Ids(ids),
                ..
            } if ids.len() == 1 => Tier::Single,
            Self::SendTestAlert { .. } | Self::EndExpired { .. } => Tier::Single,
            _ => Tier::Bulk,
        }
    }

    /// The operator's reason, where the action records one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Shedding { reason, .. }
            | Self::BreakerForceOpen { reason, .. }
            | Self::BreakerDisable { reason, .. }
            | Self::BreakerReset { reason, .. }
            | Self::EmergencyStop { reason, .. }
            | Self::SetThreshold { reason, .. }
            | Self::SetConfig { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// The reason to edit before confirming (the confirm dialog's reason line).
    pub fn reason_mut(&mut self) -> Option<&mut String> {
        match self {
            Self::Shedding { reason, .. }
            | Self::BreakerForceOpen { reason, .. }
            | Self::BreakerDisable { reason, .. }
            | Self::BreakerReset { reason, .. }
            | Self::EmergencyStop { reason, .. }
            | Self::SetThreshold { reason, .. }
            | Self::SetConfig { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// Refuse what cannot be planned: overrides without a reason, a forced-open breaker without
    /// a future expiry, an empty id list.
    pub fn validate(&self, now_ms: i64) -> Result<(), ActionError> {
        if let Some(reason) = self.reason()
            && reason.trim().is_empty()
        {
            return Err(ActionError::Invalid(format!(
                "{}: a reason is required (it is shown in the overrides inventory and the audit)",
                self.kind().as_str()
            )));
        }
        match self {
            Self::BreakerForceOpen { until_ms, .. } if *until_ms <= now_ms => Err(
                ActionError::Invalid("breaker_force_open: the expiry must be in the future".into()),
            ),
            Self::Shedding {
                expires_at_ms: Some(at),
                ..
            }
            | Self::EmergencyStop {
                expires_at_ms: Some(at),
                ..
            } if *at <= now_ms => Err(ActionError::Invalid(format!(
                "{}: the expiry must be in the future",
                self.kind().as_str()
            ))),
            _ => match self.dlq_scope() {
                Some((_, _, Scope::Ids(ids))) if ids.is_empty() => Err(ActionError::Invalid(
                    format!("{}: no entries selected", self.kind().as_str()),
                )),
                _ => Ok(()),
            },
        }
    }

    /// One line for confirm dialogs, audit records and logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Replay {
                queue, from, scope, ..
            } => format!(
                "replay {} from {} of {queue}",
                describe_scope(scope),
                set_name(*from)
            ),
            Self::Purge { queue, set, scope } => format!(
                "purge {} from {} of {queue}",
                describe_scope(scope),
                set_name(*set)
            ),
            Self::MoveToDead { queue, scope } => format!(
                "move {} from the DLQ of {queue} to the dead list",
                describe_scope(scope)
            ),
            Self::Shedding { mode, .. } => format!("set shedding to {}", mode.as_str()),
            Self::SetThreshold {
                queue,
                threshold,
                value,
                ..
            } => match value {
                Some(v) => format!("set the {} depth of {queue} to {v}", threshold.as_str()),
                None => format!("remove the {} depth of {queue}", threshold.as_str()),
            },
            Self::BreakerForceOpen { backend, .. } => {
                format!("force the {backend} breaker open")
            }
            Self::BreakerDisable { backend, .. } => format!("disable the {backend} breaker"),
            Self::BreakerReset { backend, .. } => format!("reset the {backend} breaker"),
            Self::EmergencyStop { backend, on, .. } => {
                let what = backend
                    .as_deref()
                    .map_or_else(|| "all sending".to_owned(), |b| format!("sending to {b}"));
                if *on {
                    format!("emergency stop: {what}")
                } else {
                    format!("resume {what}")
                }
            }
            Self::SetConfig { key, value, .. } => match value {
                Some(_) => format!("set config {key}"),
                None => format!("delete config {key}"),
            },
            Self::SendTestAlert { channel, .. } => format!(
                "send a test alert to {}",
                channel.as_deref().unwrap_or("stdout")
            ),
            Self::EndExpired { flag, expected } => format!(
                "end the expired override {flag} (set by {}: {})",
                expected.owner, expected.reason
            ),
        }
    }
}

fn set_name(set: FailedSet) -> &'static str {
    match set {
        FailedSet::Dlq => "the DLQ",
        FailedSet::Dead => "the dead list",
    }
}

/// The scope as an operator reads it: `3 marked entries` or `entries where error=timeout`.
pub fn describe_scope(scope: &Scope) -> String {
    match scope {
        Scope::Ids(ids) if ids.len() == 1 => "1 marked entry".to_owned(),
        Scope::Ids(ids) => format!("{} marked entries", ids.len()),
        Scope::Filter(filter) => {
            let mut parts = Vec::new();
            let fields = [
                ("error", &filter.error_class),
                ("stage", &filter.stage),
                ("tenant", &filter.tenant),
                ("channel", &filter.channel),
            ];
            for (name, value) in fields {
                if let Some(value) = value {
                    parts.push(format!("{name}={value}"));
                }
            }
            if let Some(t) = filter.failed_at_or_after_ms {
                parts.push(format!(
                    "failed>={}",
                    crate::model::time::format_rfc3339_ms(t)
                ));
            }
            if let Some(t) = filter.failed_before_ms {
                parts.push(format!(
                    "failed<{}",
                    crate::model::time::format_rfc3339_ms(t)
                ));
            }
            if parts.is_empty() {
                "all entries".to_owned()
            } else {
                format!("entries where {}", parts.join(" "))
            }
        }
    }
}

/// Who acts: `user@host`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub user: String,
    pub host: String,
}

impl Actor {
    /// The user and host of this process, from the environment.
    pub fn current() -> Self {
        let pick = |names: &[&str], default: &str| {
            names
                .iter()
                .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
                .unwrap_or_else(|| default.to_owned())
        };
        Self {
            user: pick(&["USER", "LOGNAME"], "unknown"),
            host: pick(&["HOSTNAME"], "localhost"),
        }
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.user, self.host)
    }
}

/// Where an action came from, kept in its audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Key,
    Command,
    Headless,
    Automatic,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Command => "command",
            Self::Headless => "headless",
            Self::Automatic => "automatic",
        }
    }
}

/// How bulk actions run: batch size per store call and the pace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Entries per store call, at most `MAX_BATCH`.
    pub batch_size: usize,
    /// Entries per second; `None` = as fast as the store answers.
    pub rate_per_s: Option<u32>,
    /// An entry replayed this many times goes to the dead list on its next replay.
    pub max_replays: u32,
    /// Rows in a plan's sample.
    pub sample_size: usize,
    /// Plan and audit, change nothing (the engine's dry-run mode).
    pub dry_run: bool,
    /// Stop a bulk action after this many entries (automatic runs are bounded); `None` = all.
    pub max_items: Option<u64>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            batch_size: 100,
            rate_per_s: Some(1000),
            max_replays: 3,
            sample_size: 5,
            dry_run: false,
            max_items: None,
        }
    }
}

impl Settings {
    /// The time `count` entries take at this pace.
    pub fn eta(&self, count: u64) -> Option<Duration> {
        self.rate_per_s
            .filter(|r| *r > 0)
            .map(|r| Duration::from_secs_f64(count as f64 / f64::from(r)))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{0}")]
    Refused(#[from] Refusal),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The context every action runs in: the store, the policy, who acts, from where, on what.
#[derive(Clone)]
pub struct Actions {
    pub store: std::sync::Arc<dyn crate::store::Store>,
    pub policy: Policy,
    pub actor: Actor,
    pub origin: Origin,
    /// The deployment's label, shown in plans and kept in audit records.
    pub target: String,
    pub settings: Settings,
}

impl std::fmt::Debug for Actions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actions")
            .field("policy", &self.policy)
            .field("actor", &self.actor)
            .field("origin", &self.origin)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_reads_as_words_and_utc_times() {
        let filter = DlqFilter {
            error_class: Some("timeout".to_owned()),
            channel: Some("pager".to_owned()),
            failed_before_ms: Some(1_795_564_800_000),
            ..DlqFilter::default()
        };
        assert_eq!(
            describe_scope(&Scope::Filter(filter)),
            "entries where error=timeout channel=pager failed<2026-11-25T00:00:00.000Z"
        );
        assert_eq!(
            describe_scope(&Scope::Filter(DlqFilter::default())),
            "all entries"
        );
    }
}
