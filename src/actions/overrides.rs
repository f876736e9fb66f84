//! The inventory of operator-set state — stop flags, shedding, config overrides, breaker
//! overrides — each with owner, reason, age and expiry; and the step that ends expired ones.

use serde::{Deserialize, Serialize};

use super::{Action, ActionError, Actions};
use crate::engine::breaker::{Breaker, BreakerConfig, BreakerState, TransitionCause};
use crate::model::Flag;
use crate::model::FlagState;
use crate::store::{Store, StoreResult, update_breaker};

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

/// Every override in the store, oldest first.
pub async fn overrides(store: &dyn Store) -> StoreResult<Vec<Override>> {
    let flags = store.flags().await?;
    let breakers = store.breakers().await?;
    Ok(overrides_from(&flags, &breakers, store.now_ms()))
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

/// End every expired override: a flag through `EndExpired` (audited, and only if nobody set it
/// again meanwhile), a forced-open breaker by its own clock. Returns how many ended.
pub async fn end_expired(actions: &Actions, breaker: &BreakerConfig) -> Result<usize, ActionError> {
    // Lifting what already expired is housekeeping, not an automatic action: dry-run mode does
    // not hold it back (else every janitor pass would plan it again).
    let mut actions = actions.clone();
    actions.settings.dry_run = false;
    let actions = &actions;
    let store = actions.store.as_ref();
    let now = store.now_ms();
    let mut ended = 0;
    for item in overrides(store).await?.into_iter().filter(|o| o.expired) {
        if item.kind == OverrideKind::Breaker {
            // The breaker's own clock ends it; still a change, so still subject to the policy.
            actions.policy.check(&Action::BreakerReset {
                backend: item.name.clone(),
                reason: "override expired".to_owned(),
            })?;
            update_breaker(store, &item.name, |b| b.tick(breaker, now)).await?;
            ended += 1;
            continue;
        }
        let action = Action::EndExpired {
            expected: FlagState {
                value: item.value,
                owner: item.owner,
                reason: item.reason,
                set_at_ms: item.set_at_ms,
                expires_at_ms: item.expires_at_ms,
            },
            flag: item.name,
        };
        let plan = actions.plan(action).await?;
        let cancel = tokio_util::sync::CancellationToken::new();
        let report = actions.execute(&plan, &cancel, &mut |_| {}).await?;
        ended += usize::try_from(report.moved).unwrap_or(0);
    }
    Ok(ended)
}
