//! The operator-set state in the store (the inventory itself is `engine::overrides`), and the
//! step that ends expired overrides.

use super::{Action, ActionError, Actions};
use crate::engine::breaker::BreakerConfig;
pub use crate::engine::overrides::{Override, OverrideKind, overrides_from};
use crate::model::FlagState;
use crate::store::{Store, StoreResult, update_breaker};

/// Every override in the store, oldest first.
pub async fn overrides(store: &dyn Store) -> StoreResult<Vec<Override>> {
    let flags = store.flags().await?;
    let breakers = store.breakers().await?;
    Ok(overrides_from(&flags, &breakers, store.now_ms()))
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
