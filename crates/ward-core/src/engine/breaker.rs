//! The circuit-breaker state machine (DOMAIN.md §2), pure and serialisable so the store can keep
//! one breaker per backend that every worker and every control room sees.
//!
//! Closed → Open when the failure rate over a time window reaches the threshold (only once the
//! window holds the minimum number of calls); Open → HalfOpen when the wait has elapsed (lazily,
//! at the next permit or tick); HalfOpen lets N probes through: all succeed → Closed, one fails
//! → Open. Operators may force it open (with a mandatory expiry), disable it, or reset it (which
//! clears its statistics).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::clock::duration_ms;

/// Tuning of one breaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Open when failures / calls reaches this (0 < r ≤ 1).
    pub failure_rate_threshold: f64,
    /// Below this many calls in the window the rate is unknown and cannot trip.
    pub minimum_calls: u32,
    /// The sliding window the rate is computed over, in milliseconds.
    pub window_ms: u64,
    /// How many buckets the window is cut into (its resolution).
    pub buckets: u32,
    /// How long the breaker stays open before probing, in milliseconds.
    pub open_wait_ms: u64,
    /// Probes allowed while half-open; all must succeed to close.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_rate_threshold: 0.5,
            minimum_calls: 20,
            window_ms: 60_000,
            buckets: 10,
            open_wait_ms: 30_000,
            half_open_probes: 3,
        }
    }
}

impl BreakerConfig {
    fn bucket_ms(&self) -> i64 {
        i64::try_from(self.window_ms / u64::from(self.buckets.max(1)))
            .unwrap_or(i64::MAX)
            .max(1)
    }
    fn open_wait(&self) -> i64 {
        i64::try_from(self.open_wait_ms).unwrap_or(i64::MAX)
    }
}

/// The state a breaker is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
    /// Held open by an operator until an expiry.
    ForcedOpen,
    /// Turned off by an operator: every call passes, nothing is recorded.
    Disabled,
}

impl BreakerState {
    /// How the control room writes it: `half-open`, `forced-open`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half-open",
            Self::ForcedOpen => "forced-open",
            Self::Disabled => "disabled",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
            Self::ForcedOpen => "forced_open",
            Self::Disabled => "disabled",
        }
    }
}

/// Why a transition happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum TransitionCause {
    FailureRate {
        rate: f64,
        calls: u32,
    },
    WaitElapsed,
    ProbesSucceeded,
    ProbeFailed,
    /// Probes were issued but their outcomes never came back (a worker died mid-probe).
    ProbesLost,
    Forced {
        owner: String,
        reason: String,
    },
    Disabled {
        owner: String,
        reason: String,
    },
    Reset {
        owner: String,
        reason: String,
    },
    OverrideExpired,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Transition {
    pub from: BreakerState,
    pub to: BreakerState,
    pub at_ms: i64,
    #[serde(flatten)]
    pub cause: TransitionCause,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
struct Bucket {
    index: i64,
    calls: u32,
    failures: u32,
}

/// Whether a call may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// A normal call: report its outcome with `record(.., false)`.
    Call,
    /// A half-open probe: report its outcome with `record(.., true)`.
    Probe,
    /// Not now; `retry_in` says when it may be worth asking again.
    Rejected { retry_in: Duration },
}

/// What a call's outcome means to the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    Success,
    Failure,
    /// Neither: e.g. a 429 (the server is pacing us, not failing) or our own bad request.
    Ignored,
}

/// The failure rate over the window, or why there is none.
#[derive(
    Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FailureRate {
    /// Fewer calls than the minimum: shown as "not enough calls (n/min)", never 0 %.
    NotEnoughCalls { calls: u32, minimum: u32 },
    Known {
        rate: f64,
        calls: u32,
        failures: u32,
    },
}

/// One breaker's complete state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Breaker {
    pub state: BreakerState,
    pub since_ms: i64,
    /// Open: when probing may start. ForcedOpen: when the override expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<i64>,
    #[serde(default)]
    window: Vec<Bucket>,
    #[serde(default)]
    pub probes_issued: u32,
    #[serde(default)]
    pub probe_successes: u32,
    /// Calls refused since the breaker last left Closed.
    #[serde(default)]
    pub not_permitted: u64,
    #[serde(default)]
    pub transitions: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition: Option<Transition>,
}

impl Breaker {
    pub fn new(now_ms: i64) -> Self {
        Self {
            state: BreakerState::Closed,
            since_ms: now_ms,
            until_ms: None,
            window: Vec::new(),
            probes_issued: 0,
            probe_successes: 0,
            not_permitted: 0,
            transitions: 0,
            last_transition: None,
        }
    }

    fn go(&mut self, to: BreakerState, now_ms: i64, until_ms: Option<i64>, cause: TransitionCause) {
        let from = self.state;
        self.state = to;
        self.since_ms = now_ms;
        self.until_ms = until_ms;
        self.probes_issued = 0;
        self.probe_successes = 0;
        if matches!(to, BreakerState::Closed | BreakerState::Disabled) {
            self.window.clear();
            self.not_permitted = 0;
        }
        self.transitions += 1;
        self.last_transition = Some(Transition {
            from,
            to,
            at_ms: now_ms,
            cause,
        });
    }

    /// Apply whatever time alone changes: an elapsed wait, an expired override, lost probes.
    pub fn tick(&mut self, config: &BreakerConfig, now_ms: i64) {
        match self.state {
            BreakerState::Open if self.until_ms.is_none_or(|until| now_ms >= until) => {
                self.go(
                    BreakerState::HalfOpen,
                    now_ms,
                    None,
                    TransitionCause::WaitElapsed,
                );
            }
            BreakerState::ForcedOpen if self.until_ms.is_none_or(|until| now_ms >= until) => {
                self.go(
                    BreakerState::Closed,
                    now_ms,
                    None,
                    TransitionCause::OverrideExpired,
                );
            }
            BreakerState::HalfOpen
                if self.probes_issued > 0
                    && now_ms.saturating_sub(self.since_ms) >= config.open_wait() =>
            {
                // Outcomes that never came back must not hold the breaker half-open forever.
                self.go(
                    BreakerState::HalfOpen,
                    now_ms,
                    None,
                    TransitionCause::ProbesLost,
                );
            }
            _ => {}
        }
    }

    /// Ask to make a call now.
    pub fn permit(&mut self, config: &BreakerConfig, now_ms: i64) -> Permit {
        self.tick(config, now_ms);
        let wait = |until: Option<i64>| {
            Duration::from_millis(u64::try_from(until.unwrap_or(now_ms) - now_ms).unwrap_or(0))
        };
        match self.state {
            BreakerState::Closed | BreakerState::Disabled => Permit::Call,
            BreakerState::HalfOpen if self.probes_issued < config.half_open_probes.max(1) => {
                self.probes_issued += 1;
                Permit::Probe
            }
            BreakerState::HalfOpen => {
                self.not_permitted += 1;
                Permit::Rejected {
                    retry_in: Duration::from_millis(config.open_wait_ms / 10),
                }
            }
            BreakerState::Open | BreakerState::ForcedOpen => {
                self.not_permitted += 1;
                Permit::Rejected {
                    retry_in: wait(self.until_ms),
                }
            }
        }
    }

    /// Report a call's outcome.
    pub fn record(
        &mut self,
        config: &BreakerConfig,
        now_ms: i64,
        outcome: CallOutcome,
        probe: bool,
    ) {
        if outcome == CallOutcome::Ignored {
            return;
        }
        match self.state {
            BreakerState::Closed if !probe => {
                self.add(config, now_ms, outcome == CallOutcome::Failure);
                if outcome == CallOutcome::Failure
                    && let FailureRate::Known { rate, calls, .. } =
                        self.failure_rate(config, now_ms)
                    && rate >= config.failure_rate_threshold
                {
                    let until = now_ms.saturating_add(config.open_wait());
                    self.go(
                        BreakerState::Open,
                        now_ms,
                        Some(until),
                        TransitionCause::FailureRate { rate, calls },
                    );
                }
            }
            BreakerState::HalfOpen if probe && outcome == CallOutcome::Failure => {
                let until = now_ms.saturating_add(config.open_wait());
                self.go(
                    BreakerState::Open,
                    now_ms,
                    Some(until),
                    TransitionCause::ProbeFailed,
                );
            }
            BreakerState::HalfOpen if probe => {
                self.probe_successes += 1;
                if self.probe_successes >= config.half_open_probes.max(1) {
                    self.go(
                        BreakerState::Closed,
                        now_ms,
                        None,
                        TransitionCause::ProbesSucceeded,
                    );
                }
            }
            // Late outcomes of calls permitted in another state change nothing.
            _ => {}
        }
    }

    fn add(&mut self, config: &BreakerConfig, now_ms: i64, failed: bool) {
        let index = now_ms.div_euclid(config.bucket_ms());
        self.prune(config, index);
        match self.window.last_mut() {
            Some(bucket) if bucket.index == index => {
                bucket.calls += 1;
                bucket.failures += u32::from(failed);
            }
            _ => self.window.push(Bucket {
                index,
                calls: 1,
                failures: u32::from(failed),
            }),
        }
    }

    fn prune(&mut self, config: &BreakerConfig, current: i64) {
        let oldest = current - i64::from(config.buckets.max(1)) + 1;
        self.window.retain(|b| b.index >= oldest);
    }

    /// The failure rate over the window ending now.
    pub fn failure_rate(&self, config: &BreakerConfig, now_ms: i64) -> FailureRate {
        let oldest = now_ms.div_euclid(config.bucket_ms()) - i64::from(config.buckets.max(1)) + 1;
        let (calls, failures) = self
            .window
            .iter()
            .filter(|b| b.index >= oldest)
            .fold((0u32, 0u32), |(c, f), b| (c + b.calls, f + b.failures));
        if calls == 0 || calls < config.minimum_calls {
            FailureRate::NotEnoughCalls {
                calls,
                minimum: config.minimum_calls,
            }
        } else {
            FailureRate::Known {
                rate: f64::from(failures) / f64::from(calls),
                calls,
                failures,
            }
        }
    }

    /// Hold the breaker open until `until_ms` (an expiry is mandatory), then resume.
    pub fn force_open(&mut self, now_ms: i64, until_ms: i64, owner: &str, reason: &str) {
        let cause = TransitionCause::Forced {
            owner: owner.to_owned(),
            reason: reason.to_owned(),
        };
        self.go(BreakerState::ForcedOpen, now_ms, Some(until_ms), cause);
    }

    /// Let every call through and record nothing, until reset.
    pub fn disable(&mut self, now_ms: i64, owner: &str, reason: &str) {
        let cause = TransitionCause::Disabled {
            owner: owner.to_owned(),
            reason: reason.to_owned(),
        };
        self.go(BreakerState::Disabled, now_ms, None, cause);
    }

    /// Back to Closed. Clears the window: the statistics are lost (the confirm dialog says so).
    pub fn reset(&mut self, now_ms: i64, owner: &str, reason: &str) {
        let cause = TransitionCause::Reset {
            owner: owner.to_owned(),
            reason: reason.to_owned(),
        };
        self.go(BreakerState::Closed, now_ms, None, cause);
    }

    /// Time left before probing (Open) or before the override ends (ForcedOpen).
    pub fn remaining(&self, now_ms: i64) -> Option<Duration> {
        self.until_ms
            .map(|until| Duration::from_millis(u64::try_from(until - now_ms).unwrap_or(0)))
    }

    /// Time spent in the current state.
    pub fn time_in_state(&self, now_ms: i64) -> Duration {
        Duration::from_millis(u64::try_from(now_ms - self.since_ms).unwrap_or(0))
    }
}

/// Milliseconds of a duration, for callers building `until_ms`.
pub fn after(now_ms: i64, wait: Duration) -> i64 {
    now_ms.saturating_add(duration_ms(wait))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const T: i64 = 1_000_000;

    fn config() -> BreakerConfig {
        BreakerConfig {
            minimum_calls: 10,
            half_open_probes: 2,
            ..BreakerConfig::default()
        }
    }

    fn call(b: &mut Breaker, c: &BreakerConfig, now: i64, outcome: CallOutcome) -> Permit {
        let permit = b.permit(c, now);
        match permit {
            Permit::Call => b.record(c, now, outcome, false),
            Permit::Probe => b.record(c, now, outcome, true),
            Permit::Rejected { .. } => {}
        }
        permit
    }

    #[test]
    fn opens_at_the_threshold_only_after_the_minimum_calls() {
        let c = config();
        let mut b = Breaker::new(T);
        for i in 0..9 {
            call(&mut b, &c, T + i, CallOutcome::Failure);
        }
        assert_eq!(
            b.state,
            BreakerState::Closed,
            "9 calls < minimum 10 cannot trip"
        );
        assert_eq!(
            b.failure_rate(&c, T + 9),
            FailureRate::NotEnoughCalls {
                calls: 9,
                minimum: 10
            }
        );
        call(&mut b, &c, T + 9, CallOutcome::Failure);
        assert_eq!(b.state, BreakerState::Open);
        assert!(matches!(
            b.last_transition,
            Some(Transition {
                cause: TransitionCause::FailureRate { calls: 10, .. },
                ..
            })
        ));
    }

    #[test]
    fn a_rate_below_the_threshold_stays_closed() {
        let c = config();
        let mut b = Breaker::new(T);
        for i in 0..100 {
            let outcome = if i % 3 == 0 {
                CallOutcome::Failure
            } else {
                CallOutcome::Success
            };
            call(&mut b, &c, T + i, outcome);
        }
        assert_eq!(b.state, BreakerState::Closed);
        let FailureRate::Known { rate, .. } = b.failure_rate(&c, T + 100) else {
            panic!("known")
        };
        assert!((rate - 0.34).abs() < 0.01);
    }

    #[test]
    fn the_full_cycle_open_half_open_closed() {
        let c = config();
        let mut b = Breaker::new(T);
        for i in 0..10 {
            call(&mut b, &c, T + i, CallOutcome::Failure);
        }
        let opened = T + 9;
        assert!(
            matches!(b.permit(&c, opened + 29_999), Permit::Rejected { retry_in } if retry_in == Duration::from_millis(1))
        );
        assert_eq!(b.not_permitted, 1);
        let at = opened + 30_000;
        assert_eq!(b.permit(&c, at), Permit::Probe);
        assert_eq!(b.state, BreakerState::HalfOpen);
        assert_eq!(b.permit(&c, at), Permit::Probe);
        assert!(
            matches!(b.permit(&c, at), Permit::Rejected { .. }),
            "only 2 probes at once"
        );
        b.record(&c, at, CallOutcome::Success, true);
        assert_eq!(b.state, BreakerState::HalfOpen);
        b.record(&c, at, CallOutcome::Success, true);
        assert_eq!(b.state, BreakerState::Closed);
        assert_eq!(
            b.failure_rate(&c, at),
            FailureRate::NotEnoughCalls {
                calls: 0,
                minimum: 10
            },
            "a fresh window"
        );
        assert_eq!(b.transitions, 3);
    }

    #[test]
    fn a_failed_probe_reopens() {
        let c = config();
        let mut b = Breaker::new(T);
        for i in 0..10 {
            call(&mut b, &c, T + i, CallOutcome::Failure);
        }
        let at = T + 9 + 30_000;
        assert_eq!(call(&mut b, &c, at, CallOutcome::Failure), Permit::Probe);
        assert_eq!(b.state, BreakerState::Open);
        assert_eq!(b.until_ms, Some(at + 30_000));
    }

    #[test]
    fn lost_probes_do_not_hold_it_half_open_forever() {
        let c = config();
        let mut b = Breaker::new(T);
        for i in 0..10 {
            call(&mut b, &c, T + i, CallOutcome::Failure);
        }
        let at = T + 9 + 30_000;
        assert_eq!(b.permit(&c, at), Permit::Probe);
        assert_eq!(b.permit(&c, at), Permit::Probe);
        assert!(matches!(b.permit(&c, at + 29_999), Permit::Rejected { .. }));
        assert_eq!(
            b.permit(&c, at + 30_000),
            Permit::Probe,
            "probes re-issued after the wait"
        );
    }

    #[test]
    fn old_failures_leave_the_window() {
        let c = config();
        let mut b = Breaker::new(T);
        for i in 0..9 {
            call(&mut b, &c, T + i, CallOutcome::Failure);
        }
        // A minute later the 9 failures have aged out: one more failure is 1 of 1 call.
        call(&mut b, &c, T + 61_000, CallOutcome::Failure);
        assert_eq!(b.state, BreakerState::Closed);
        assert_eq!(
            b.failure_rate(&c, T + 61_000),
            FailureRate::NotEnoughCalls {
                calls: 1,
                minimum: 10
            }
        );
    }

    #[test]
    fn ignored_outcomes_count_for_nothing() {
        let c = config();
        let mut b = Breaker::new(T);
        for i in 0..50 {
            call(&mut b, &c, T + i, CallOutcome::Ignored);
        }
        assert_eq!(
            b.failure_rate(&c, T + 50),
            FailureRate::NotEnoughCalls {
                calls: 0,
                minimum: 10
            }
        );
    }

    #[test]
    fn operator_overrides() {
        let c = config();
        let mut b = Breaker::new(T);
        b.force_open(T, T + 60_000, "ops@host", "vendor maintenance");
        assert!(matches!(b.permit(&c, T + 59_999), Permit::Rejected { .. }));
        assert_eq!(b.remaining(T + 50_000), Some(Duration::from_secs(10)));
        assert_eq!(
            b.permit(&c, T + 60_000),
            Permit::Call,
            "the override expires by itself"
        );
        assert!(matches!(
            b.last_transition,
            Some(Transition {
                cause: TransitionCause::OverrideExpired,
                ..
            })
        ));

        b.disable(T, "ops@host", "known flaky");
        for i in 0..100 {
            assert_eq!(call(&mut b, &c, T + i, CallOutcome::Failure), Permit::Call);
        }
        assert_eq!(b.state, BreakerState::Disabled);
        b.reset(T + 100, "ops@host", "fixed");
        assert_eq!(b.state, BreakerState::Closed);
    }

    #[test]
    fn the_state_round_trips_through_json() {
        let c = config();
        let mut b = Breaker::new(T);
        for i in 0..10 {
            call(&mut b, &c, T + i, CallOutcome::Failure);
        }
        let json = serde_json::to_string(&b).unwrap();
        let back: Breaker = serde_json::from_str(&json).unwrap();
        assert_eq!(back, b);
    }

    proptest! {
        #[test]
        fn invariants_hold_for_any_call_sequence(
            steps in prop::collection::vec((0i64..5_000, 0u8..3), 1..400),
        ) {
            let c = config();
            let mut b = Breaker::new(T);
            let mut now = T;
            for (advance, kind) in steps {
                now += advance;
                let was = b.state;
                let outcome = match kind { 0 => CallOutcome::Success, 1 => CallOutcome::Failure, _ => CallOutcome::Ignored };
                let permit = b.permit(&c, now);
                if was == BreakerState::Open && b.state == BreakerState::Open {
                    prop_assert!(matches!(permit, Permit::Rejected { .. }), "open never lets a call through");
                    prop_assert!(b.until_ms.is_some_and(|u| now < u));
                }
                if b.state == BreakerState::HalfOpen {
                    prop_assert!(b.probes_issued <= c.half_open_probes);
                }
                match permit {
                    Permit::Call => b.record(&c, now, outcome, false),
                    Permit::Probe => b.record(&c, now, outcome, true),
                    Permit::Rejected { .. } => {}
                }
                if b.state == BreakerState::Closed
                    && let FailureRate::Known { rate, .. } = b.failure_rate(&c, now)
                {
                    prop_assert!(rate < c.failure_rate_threshold || outcome != CallOutcome::Failure,
                        "closed after a failure that put the rate at {rate}");
                }
            }
        }
    }
}
