//! Operator actions. Every mutation — from a key, a `:` command, a headless subcommand or an
//! automatic worker — is one `Action`. `Policy::check` refuses it in read-only mode before any
//! I/O; `Actions::plan` is the dry run (count, sample, batch, rate, ETA); `Actions::execute` runs
//! a plan in bounded batches with progress and cancel, and writes one audit record.

mod executor;
pub mod mutt;
mod overrides;
mod plan;
mod policy;
mod silence;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use executor::{Outcome, Progress, Report};
pub use overrides::{Override, OverrideKind, end_expired, overrides, overrides_from};
pub use plan::{Plan, SampleRow};
pub use policy::{Policy, Refusal};
pub use silence::{PreviewCount, SilencePreview};

use crate::model::mutt::MuttDlqName;
use crate::model::{
    DlqFilter, EnvelopeId, FailedSet, FlagState, LabelMatcher, QueueName, ShedMode, Threshold,
};
use crate::store::StoreError;

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
    /// A silence: alerts whose labels match every matcher are not delivered from start to end.
    /// With `replaces`, the silence it edits ends as this one is created (a changed silence is a
    /// new one, as in Alertmanager, so history is kept).
    SilenceCreate {
        matchers: Vec<LabelMatcher>,
        starts_at_ms: i64,
        ends_at_ms: i64,
        /// Why: shown in the Silences view and kept in the audit.
        comment: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replaces: Option<String>,
    },
    /// End a silence now (a pending one never starts); an expired one is left as it is.
    SilenceExpire { id: String },
    /// Lift an expired override (a flag by name), only if it still holds the value read: an
    /// operator may have set it again meanwhile.
    EndExpired { flag: String, expected: FlagState },
    /// MUTT: entries of a MUTT DLQ back to the queue MUTT reads them from (alerter → ingest,
    /// moog → alert), oldest first, MUTT's retry counters reset and Ward's replay counted; an
    /// entry replayed `max_replays` times goes to MUTT's dead list instead.
    MuttReplay { dlq: MuttDlqName, scope: MuttScope },
    /// MUTT: entries of a MUTT DLQ to MUTT's dead list, as they are.
    MuttMoveToDead { dlq: MuttDlqName, scope: MuttScope },
    /// MUTT: delete entries of a MUTT DLQ (or the dead list) for good.
    MuttPurge { dlq: MuttDlqName, scope: MuttScope },
    /// MUTT: set (or with `None` delete) one `mutt:config:*` setting, announced to MUTT's
    /// services on its updates channel.
    MuttSetConfig {
        key: String,
        value: Option<String>,
        reason: String,
    },
    /// MUTT: open a MUTT breaker until `open_until_ms` (MUTT half-opens it then), or with
    /// `None` close it as MUTT's reset does (failures 0, open_time deleted).
    MuttBreaker {
        name: String,
        open_until_ms: Option<i64>,
        reason: String,
    },
    /// MUTT: a dead pod's processing list (no heartbeat) back onto the queue its entries came
    /// from, as MUTT's janitor does only when a pod of that service restarts.
    MuttRequeueOrphan { list: String },
}

/// Which entries of a MUTT DLQ an action takes. MUTT's entries have no ids: they are taken
/// oldest first up to a count fixed when planned, or found again by the hash of their text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MuttScope {
    /// Every entry there when the plan is made (the plan turns it into `Oldest`).
    All,
    /// The oldest `n` entries (MUTT LPUSHes, so the tail): entries failing after the plan are
    /// not taken.
    Oldest(u64),
    /// These entries, by content id (`model::mutt::content_id`).
    Entries(Vec<String>),
}

impl MuttScope {
    pub fn describe(&self) -> String {
        match self {
            Self::All => "all entries".to_owned(),
            Self::Oldest(1) => "the oldest entry".to_owned(),
            Self::Oldest(n) => format!("the oldest {n} entries"),
            Self::Entries(ids) if ids.len() == 1 => "1 marked entry".to_owned(),
            Self::Entries(ids) => format!("{} marked entries", ids.len()),
        }
    }
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
    SilenceCreate,
    SilenceExpire,
    MuttReplay,
    MuttMoveToDead,
    MuttPurge,
    MuttSetConfig,
    MuttBreaker,
    MuttRequeueOrphan,
}

impl ActionKind {
    pub const ALL: [Self; 20] = [
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
        Self::SilenceCreate,
        Self::SilenceExpire,
        Self::MuttReplay,
        Self::MuttMoveToDead,
        Self::MuttPurge,
        Self::MuttSetConfig,
        Self::MuttBreaker,
        Self::MuttRequeueOrphan,
    ];

    /// The operator's name for it: dialog titles and help.
    pub fn title(self) -> &'static str {
        match self {
            Self::Replay | Self::MuttReplay => "Replay",
            Self::Purge | Self::MuttPurge => "Purge",
            Self::MoveToDead | Self::MuttMoveToDead => "Move to the dead list",
            Self::Shedding => "Load shedding",
            Self::SetThreshold => "Queue threshold",
            Self::BreakerForceOpen => "Force breaker open",
            Self::BreakerDisable => "Disable breaker",
            Self::BreakerReset => "Reset breaker",
            Self::EmergencyStop => "Emergency stop",
            Self::SetConfig | Self::MuttSetConfig => "Setting",
            Self::SendTestAlert => "Test alert",
            Self::EndExpired => "End an expired override",
            Self::SilenceCreate => "Silence",
            Self::SilenceExpire => "Expire a silence",
            Self::MuttBreaker => "Breaker",
            Self::MuttRequeueOrphan => "Requeue a dead pod's entries",
        }
    }

    /// Acts on a MUTT deployment (`--profile mutt`), not on Ward's store.
    pub fn is_mutt(self) -> bool {
        matches!(
            self,
            Self::MuttReplay
                | Self::MuttMoveToDead
                | Self::MuttPurge
                | Self::MuttSetConfig
                | Self::MuttBreaker
                | Self::MuttRequeueOrphan
        )
    }

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
            Self::SilenceCreate => "silence_create",
            Self::SilenceExpire => "silence_expire",
            Self::MuttReplay => "mutt_replay",
            Self::MuttMoveToDead => "mutt_move_to_dead",
            Self::MuttPurge => "mutt_purge",
            Self::MuttSetConfig => "mutt_set_config",
            Self::MuttBreaker => "mutt_breaker",
            Self::MuttRequeueOrphan => "mutt_requeue_orphan",
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
            Self::SilenceCreate { .. } => ActionKind::SilenceCreate,
            Self::SilenceExpire { .. } => ActionKind::SilenceExpire,
            Self::MuttReplay { .. } => ActionKind::MuttReplay,
            Self::MuttMoveToDead { .. } => ActionKind::MuttMoveToDead,
            Self::MuttPurge { .. } => ActionKind::MuttPurge,
            Self::MuttSetConfig { .. } => ActionKind::MuttSetConfig,
            Self::MuttBreaker { .. } => ActionKind::MuttBreaker,
            Self::MuttRequeueOrphan { .. } => ActionKind::MuttRequeueOrphan,
        }
    }

    /// The MUTT DLQ and entries of a MUTT bulk action.
    pub fn mutt_scope(&self) -> Option<(MuttDlqName, &MuttScope)> {
        match self {
            Self::MuttReplay { dlq, scope }
            | Self::MuttMoveToDead { dlq, scope }
            | Self::MuttPurge { dlq, scope } => Some((*dlq, scope)),
            _ => None,
        }
    }

    /// Moves entries in bounded batches (with a count, a pace and progress).
    pub fn is_bulk(&self) -> bool {
        self.dlq_scope().is_some()
            || self.mutt_scope().is_some()
            || matches!(self, Self::MuttRequeueOrphan { .. })
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

    /// Narrow a DLQ action's listed entries to `ids` (those a plan found still there).
    pub fn set_ids(&mut self, ids: Vec<EnvelopeId>) {
        if let Self::Replay { scope, .. }
        | Self::Purge { scope, .. }
        | Self::MoveToDead { scope, .. } = self
            && let Scope::Ids(listed) = scope
        {
            *listed = ids;
        }
    }

    pub fn tier(&self) -> Tier {
        match self {
            Self::Purge { .. } | Self::MuttPurge { .. } => Tier::Irreversible,
            Self::MuttReplay {
                scope: MuttScope::Entries(ids),
                ..
            } if ids.len() == 1 => Tier::Single,
            Self::Replay {
                scope: Scope::Ids(ids),
                ..
            } if ids.len() == 1 => Tier::Single,
            Self::SendTestAlert { .. } | Self::EndExpired { .. } | Self::SilenceExpire { .. } => {
                Tier::Single
            }
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
            | Self::SetConfig { reason, .. }
            | Self::MuttSetConfig { reason, .. }
            | Self::MuttBreaker { reason, .. }
            | Self::SilenceCreate {
                comment: reason, ..
            } => Some(reason),
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
            | Self::SetConfig { reason, .. }
            | Self::MuttSetConfig { reason, .. }
            | Self::MuttBreaker { reason, .. }
            | Self::SilenceCreate {
                comment: reason, ..
            } => Some(reason),
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
            Self::MuttBreaker {
                open_until_ms: Some(until),
                ..
            } if *until <= now_ms => Err(ActionError::Invalid(
                "mutt_breaker: the end of the opening must be in the future".into(),
            )),
            Self::MuttReplay {
                dlq: MuttDlqName::Dead,
                ..
            } => Err(ActionError::Invalid(
                "mutt_replay: MUTT's dead list mixes events and alerts and names no source queue; \
                 replay from the alerter or moog DLQ, or purge"
                    .into(),
            )),
            Self::MuttMoveToDead {
                dlq: MuttDlqName::Dead,
                ..
            } => Err(ActionError::Invalid(
                "mutt_move_to_dead: the entries are already in the dead list".into(),
            )),
            Self::MuttSetConfig { key, .. }
                if key.is_empty()
                    || key.contains(['*', '?', '[', ' '])
                    || key.chars().any(char::is_control) =>
            {
                Err(ActionError::Invalid(format!(
                    "mutt_set_config: {:?} is not a setting name",
                    crate::model::sanitize(key)
                )))
            }
            _ if matches!(self.mutt_scope(), Some((_, MuttScope::Entries(ids))) if ids.is_empty()) => {
                Err(ActionError::Invalid(format!(
                    "{}: no entries selected",
                    self.kind().as_str()
                )))
            }
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
            Self::Shedding {
                mode,
                expires_at_ms,
                ..
            } => format!("set shedding to {}{}", mode.as_str(), until(*expires_at_ms)),
            Self::SetThreshold {
                queue,
                threshold,
                value,
                ..
            } => match value {
                Some(v) => format!("set the {} depth of {queue} to {v}", threshold.as_str()),
                None => format!("remove the {} depth of {queue}", threshold.as_str()),
            },
            Self::BreakerForceOpen {
                backend, until_ms, ..
            } => format!("force the {backend} breaker open{}", until(Some(*until_ms))),
            Self::BreakerDisable { backend, .. } => format!("disable the {backend} breaker"),
            Self::BreakerReset { backend, .. } => format!("reset the {backend} breaker"),
            Self::EmergencyStop {
                backend,
                on,
                expires_at_ms,
                ..
            } => {
                let what = backend
                    .as_deref()
                    .map_or_else(|| "all sending".to_owned(), |b| format!("sending to {b}"));
                if *on {
                    format!("emergency stop: {what}{}", until(*expires_at_ms))
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
            Self::SilenceCreate {
                matchers,
                starts_at_ms,
                ends_at_ms,
                replaces,
                ..
            } => {
                let from = crate::model::time::format_rfc3339_ms(*starts_at_ms);
                let to = crate::model::time::format_rfc3339_ms(*ends_at_ms);
                let edit = replaces
                    .as_deref()
                    .map_or_else(String::new, |id| format!(" (replacing {id})"));
                format!(
                    "silence {} from {from} until {to}{edit}",
                    crate::model::sanitize(&crate::model::matchers_text(matchers))
                )
            }
            Self::SilenceExpire { id } => format!("expire silence {}", crate::model::sanitize(id)),
            mutt => mutt.describe_mutt(),
        }
    }

    /// The MUTT actions' line (see `describe`).
    fn describe_mutt(&self) -> String {
        match self {
            Self::MuttReplay { dlq, scope } => format!(
                "replay {} of MUTT's {dlq} DLQ to the {} queue",
                scope.describe(),
                match dlq {
                    MuttDlqName::Alerter => "ingest",
                    _ => "alert",
                }
            ),
            Self::MuttMoveToDead { dlq, scope } => format!(
                "move {} of MUTT's {dlq} DLQ to MUTT's dead list",
                scope.describe()
            ),
            Self::MuttPurge { dlq, scope } => {
                let list = if *dlq == MuttDlqName::Dead {
                    "MUTT's dead list".to_owned()
                } else {
                    format!("MUTT's {dlq} DLQ")
                };
                format!("purge {} of {list}", scope.describe())
            }
            Self::MuttSetConfig { key, value, .. } => match value {
                Some(v) => format!("set MUTT setting {key} to {v}"),
                None => format!("delete MUTT setting {key}"),
            },
            Self::MuttBreaker {
                name,
                open_until_ms,
                ..
            } => match open_until_ms {
                Some(until) => format!(
                    "open MUTT's {name} breaker until {}",
                    crate::model::time::format_rfc3339_ms(*until)
                ),
                None => format!("close MUTT's {name} breaker (failures to 0)"),
            },
            Self::MuttRequeueOrphan { list } => {
                format!("put the in-flight entries of {list} back on their queue")
            }
            _ => String::new(),
        }
    }
}

/// ` until 2026-12-06T14:30:00.000Z`, or nothing without an expiry.
fn until(at_ms: Option<i64>) -> String {
    at_ms.map_or_else(String::new, |at| {
        format!(" until {}", crate::model::time::format_rfc3339_ms(at))
    })
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
            if let Some(text) = filter.text.as_deref().filter(|t| !t.is_empty()) {
                parts.push(format!("search={:?}", crate::model::sanitize(text)));
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
    /// Alertmanager's API v2 on `ward up` (e.g. `amtool`).
    Api,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Command => "command",
            Self::Headless => "headless",
            Self::Automatic => "automatic",
            Self::Api => "api",
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
    /// How long a test alert is followed before it is reported as timed out.
    pub test_timeout: Duration,
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
            test_timeout: Duration::from_secs(30),
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
    /// The channels a test alert may name; empty = not known here, not checked.
    pub channels: Vec<String>,
    /// The rules new silences follow (`[alerting.silences]`).
    pub silences: crate::engine::silence::SilencePolicy,
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

/// The actions context of a session: Ward's own store, or a MUTT deployment.
#[derive(Debug, Clone)]
pub enum Operator {
    Ward(Actions),
    Mutt(mutt::MuttActions),
}

impl Operator {
    /// The dry run (refused before any I/O by the policy).
    pub async fn plan(&self, action: Action) -> Result<Plan, ActionError> {
        match self {
            Self::Ward(actions) => actions.plan(action).await,
            Self::Mutt(actions) => actions.plan(action).await,
        }
    }

    /// Run a plan (refused before any I/O by the policy).
    pub async fn execute(
        &self,
        plan: &Plan,
        cancel: &tokio_util::sync::CancellationToken,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<Report, ActionError> {
        match self {
            Self::Ward(actions) => actions.execute(plan, cancel, progress).await,
            Self::Mutt(actions) => actions.execute(plan, cancel, progress).await,
        }
    }

    pub fn now_ms(&self) -> i64 {
        match self {
            Self::Ward(actions) => actions.store.now_ms(),
            Self::Mutt(actions) => actions.store.now_ms(),
        }
    }

    pub fn settings_mut(&mut self) -> &mut Settings {
        match self {
            Self::Ward(actions) => &mut actions.settings,
            Self::Mutt(actions) => &mut actions.settings,
        }
    }

    pub fn set_origin(&mut self, origin: Origin) {
        match self {
            Self::Ward(actions) => actions.origin = origin,
            Self::Mutt(actions) => actions.origin = origin,
        }
    }

    pub fn policy(&self) -> &Policy {
        match self {
            Self::Ward(actions) => &actions.policy,
            Self::Mutt(actions) => &actions.policy,
        }
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
