//! Remediation: on an interval, replay the DLQ entries of channels whose breaker is closed, in
//! bounded batches, through the actions layer (planned, rate-limited, audited). The poison guard
//! in the store sends an entry replayed too often to the dead list, so this always terminates.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Shared, pause};
use crate::actions::{Action, ActionError, Outcome, Scope};
use crate::config::WorkersConfig;
use crate::engine::breaker::BreakerState;
use crate::engine::ratelimit::RateLimit;
use crate::store::{DlqFilter, FailedSet};
use crate::telemetry::metrics::{ChannelLabels, SkipLabels};

/// Why a channel's entries were left in the DLQ this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Its breaker is open, forced open or probing.
    Breaker,
    /// Sending through it is stopped.
    Stopped,
    /// It was replayed less than the cooldown ago.
    Cooldown,
    /// Automatic actions are over their hourly limit.
    RateLimit,
}

impl Skip {
    fn as_str(self) -> &'static str {
        match self {
            Self::Breaker => "breaker",
            Self::Stopped => "stopped",
            Self::Cooldown => "cooldown",
            Self::RateLimit => "rate_limit",
        }
    }
}

/// What remediation needs: the shared part, the automatic actions' context, the channels, breaker
/// settings and its limits.
pub struct Remediation {
    pub(super) shared: Arc<Shared>,
    pub(super) actions: crate::actions::Actions,
    pub(super) breaker: crate::engine::breaker::BreakerConfig,
    pub(super) channels: Vec<String>,
    pub(super) workers: WorkersConfig,
}

pub async fn run(remediation: Remediation, stop: CancellationToken) {
    let every = remediation.workers.remediation_interval_ms;
    if every == 0 {
        return;
    }
    // The first run waits one interval, so a restart does not replay at once.
    while pause(&stop, Duration::from_millis(every)).await {
        let hold = Duration::from_millis(every.max(60_000));
        let ran = super::control::one_at_a_time(&remediation.shared, "remediation", hold, async {
            remediate(&remediation, &stop).await
        })
        .await;
        if let Err(error) = ran {
            remediation.shared.metrics.remediation_failures.inc();
            tracing::warn!(%error, "remediation: run failed");
        }
    }
}

/// One remediation run over every configured channel.
pub async fn remediate(
    remediation: &Remediation,
    stop: &CancellationToken,
) -> Result<(), ActionError> {
    let shared = &*remediation.shared;
    shared.metrics.remediation_runs.inc();
    let store = shared.store.as_ref();
    let now = store.now_ms();
    let breakers = store.breakers().await?;
    // The stop flags as the controls reader last read them (within its interval).
    let stops = shared.flags();
    let actions = &remediation.actions;
    let w = &remediation.workers;
    for channel in &remediation.channels {
        if stop.is_cancelled() {
            break;
        }
        let state = breakers.iter().find(|(name, _)| name == channel).map_or(
            BreakerState::Closed,
            |(_, b)| {
                let mut b = b.clone();
                b.tick(&remediation.breaker, now);
                b.state
            },
        );
        let skip = if matches!(
            state,
            BreakerState::Open | BreakerState::ForcedOpen | BreakerState::HalfOpen
        ) {
            Some(Skip::Breaker)
        } else if stops.channel_stop(channel, now) {
            Some(Skip::Stopped)
        } else {
            None
        };
        if let Some(skip) = skip {
            skipped(shared, channel, skip);
            continue;
        }
        let min_age = i64::try_from(w.remediation_min_age_ms).unwrap_or(i64::MAX);
        let action = Action::Replay {
            queue: shared.delivery_queue.clone(),
            from: FailedSet::Dlq,
            scope: Scope::Filter(DlqFilter {
                channel: Some(channel.clone()),
                failed_before_ms: Some(now.saturating_sub(min_age)),
                ..DlqFilter::default()
            }),
            reset_attempts: true,
        };
        let plan = actions.plan(action).await?;
        if plan.count == 0 {
            continue;
        }
        if let Some(skip) = over_limits(shared, w, channel).await? {
            skipped(shared, channel, skip);
            continue;
        }
        let report = actions.execute(&plan, stop, &mut |_| {}).await?;
        let labels = ChannelLabels {
            channel: channel.clone(),
        };
        shared
            .metrics
            .remediation_replayed
            .get_or_create(&labels)
            .inc_by(report.moved);
        shared
            .metrics
            .remediation_poisoned
            .get_or_create(&labels)
            .inc_by(report.poisoned);
        match report.outcome {
            Outcome::Indeterminate(detail) => {
                shared.metrics.remediation_failures.inc();
                tracing::warn!(%channel, detail, "remediation: replay indeterminate");
            }
            outcome => tracing::info!(
                %channel,
                replayed = report.moved,
                poisoned = report.poisoned,
                outcome = outcome.as_str(),
                "remediation: replayed DLQ entries"
            ),
        }
    }
    Ok(())
}

/// The channel's cooldown, then the hourly limits of automatic replays and of all automatic
/// actions, kept in the store so every worker shares them.
async fn over_limits(
    shared: &Shared,
    w: &WorkersConfig,
    channel: &str,
) -> Result<Option<Skip>, ActionError> {
    let store = shared.store.as_ref();
    if w.remediation_cooldown_ms > 0 {
        let cooldown = RateLimit {
            count: 1,
            period_ms: w.remediation_cooldown_ms,
            burst: 1,
        };
        let key = format!("auto:replay:{channel}");
        if !store.rate_limit(&key, &cooldown, 1).await?.allowed {
            return Ok(Some(Skip::Cooldown));
        }
    }
    // This kind's own limit, then the one all automatic actions share.
    let hourly = |count: u32| RateLimit {
        count,
        period_ms: 3_600_000,
        burst: count,
    };
    let limits = [
        ("auto:action:replay", w.automatic_replays_per_hour),
        ("auto:actions", w.automatic_actions_per_hour),
    ];
    for (key, count) in limits {
        if !store.rate_limit(key, &hourly(count), 1).await?.allowed {
            return Ok(Some(Skip::RateLimit));
        }
    }
    Ok(None)
}

fn skipped(shared: &Shared, channel: &str, skip: Skip) {
    shared
        .metrics
        .remediation_skipped
        .get_or_create(&SkipLabels {
            channel: channel.to_owned(),
            reason: skip.as_str(),
        })
        .inc();
}
