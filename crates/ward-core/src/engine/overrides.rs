//! The inventory of operator-set state — stop flags, shedding, config overrides, breaker
//! overrides — each with owner, reason, age and expiry, computed from flags and breakers already
//! read (the actions read them and end expired ones; the poller shows them).

use serde::{Deserialize, Serialize};

use crate::engine::breaker::{Breaker, BreakerState, TransitionCause};
use crate::model::{Flag, FlagState};

/// What kind of state an override is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OverrideKind {
    EmergencyStop,
    Shedding,
    Config,
    Breaker,
}

/// One operator-set state, as the Overrides view lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Override {
    pub kind: OverrideKind,
    /// The flag's name, or the breaker's backend.
    pub name: String,
    pub value: String,
    pub owner: String,
    pub reason: String,
    pub set_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub age_ms: u64,
    /// Past its expiry, not yet ended by a worker.
    pub expired: bool,
}

fn age(now_ms: i64, since_ms: i64) -> u64 {
    u64::try_from(now_ms.saturating_sub(since_ms)).unwrap_or(0)
}

/// The overrides among flags and breakers already read, oldest first.
pub fn overrides_from(
    flags: &[(String, FlagState)],
    breakers: &[(String, Breaker)],
    now: i64,
) -> Vec<Override> {
    let mut out = Vec::new();
    for (name, state) in flags {
        let kind = match Flag::from_name(name) {
            Some(Flag::EmergencyStop(_)) => OverrideKind::EmergencyStop,
            Some(Flag::SheddingMode) => OverrideKind::Shedding,
            Some(Flag::ConfigOverride(_)) => OverrideKind::Config,
            None => continue,
        };
        out.push(Override {
            kind,
            expired: state.is_expired(now),
            age_ms: age(now, state.set_at_ms),
            name: name.clone(),
            value: state.value.clone(),
            owner: state.owner.clone(),
            reason: state.reason.clone(),
            set_at_ms: state.set_at_ms,
            expires_at_ms: state.expires_at_ms,
        });
    }
    for (backend, breaker) in breakers {
        if !matches!(
            breaker.state,
            BreakerState::ForcedOpen | BreakerState::Disabled
        ) {
            continue;
        }
        let (owner, reason) = match breaker.last_transition.as_ref().map(|t| &t.cause) {
            Some(
                TransitionCause::Forced { owner, reason }
                | TransitionCause::Disabled { owner, reason },
            ) => (owner.clone(), reason.clone()),
            _ => (String::new(), String::new()),
        };
        let expires_at_ms = (breaker.state == BreakerState::ForcedOpen)
            .then_some(breaker.until_ms)
            .flatten();
        out.push(Override {
            kind: OverrideKind::Breaker,
            name: backend.clone(),
            value: breaker.state.as_str().to_owned(),
            owner,
            reason,
            set_at_ms: breaker.since_ms,
            expires_at_ms,
            age_ms: age(now, breaker.since_ms),
            expired: expires_at_ms.is_some_and(|at| at <= now),
        });
    }
    out.sort_by_key(|o| (o.set_at_ms, o.kind, o.name.clone()));
    out
}
