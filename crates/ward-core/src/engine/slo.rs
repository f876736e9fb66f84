//! SLO arithmetic (DOMAIN §1, the SRE Workbook's "Alerting on SLOs"): error ratios over windows,
//! burn rates, the error budget, time to exhaustion, and the multiwindow, multi-burn-rate alerts.
//! Pure: counts in, figures out. No traffic is unknown, never 0 % or 100 %; a missing series is
//! absent, never zero.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Seconds in the windows the alerts and the views use.
pub const MINUTE_S: u64 = 60;
pub const HOUR_S: u64 = 3_600;
pub const DAY_S: u64 = 86_400;

/// The windows every SLO is measured over (the period comes on top): 5m, 30m, 1h, 2h, 6h, 1d, 3d.
pub const WINDOWS_S: [u64; 7] = [
    5 * MINUTE_S,
    30 * MINUTE_S,
    HOUR_S,
    2 * HOUR_S,
    6 * HOUR_S,
    DAY_S,
    3 * DAY_S,
];

/// The compliance period: a rolling 30 or 28 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Period {
    #[serde(rename = "30d")]
    Days30,
    #[serde(rename = "28d")]
    Days28,
}

impl Period {
    pub fn days(self) -> u64 {
        match self {
            Self::Days30 => 30,
            Self::Days28 => 28,
        }
    }

    pub fn seconds(self) -> u64 {
        self.days() * DAY_S
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Days30 => "30d",
            Self::Days28 => "28d",
        }
    }
}

/// A window as Prometheus writes a duration: `5m`, `1h`, `3d`, `30d`.
pub fn window_name(seconds: u64) -> String {
    if seconds.is_multiple_of(DAY_S) {
        format!("{}d", seconds / DAY_S)
    } else if seconds.is_multiple_of(HOUR_S) {
        format!("{}h", seconds / HOUR_S)
    } else if seconds.is_multiple_of(MINUTE_S) {
        format!("{}m", seconds / MINUTE_S)
    } else {
        format!("{seconds}s")
    }
}

/// Who an alert wakes: a page is critical, a ticket a warning.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ticket,
    Page,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Page => "page",
            Self::Ticket => "ticket",
        }
    }
}

/// One multiwindow alert: it fires when the burn rate over both windows exceeds `factor`, the
/// rate that spends `budget_fraction` of the period's budget within the long window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct AlertWindow {
    pub severity: Severity,
    pub budget_fraction: f64,
    pub long_s: u64,
    pub short_s: u64,
}

/// The Workbook's table 5-8 (pages) with Sloth's fast ticket: 2 % of the budget in 1 h, 5 % in
/// 6 h, 10 % in 1 d, 10 % in 3 d; each short window is 1/12 of its long one.
pub const ALERT_WINDOWS: [AlertWindow; 4] = [
    AlertWindow {
        severity: Severity::Page,
        budget_fraction: 0.02,
        long_s: HOUR_S,
        short_s: 5 * MINUTE_S,
    },
    AlertWindow {
        severity: Severity::Page,
        budget_fraction: 0.05,
        long_s: 6 * HOUR_S,
        short_s: 30 * MINUTE_S,
    },
    AlertWindow {
        severity: Severity::Ticket,
        budget_fraction: 0.10,
        long_s: DAY_S,
        short_s: 2 * HOUR_S,
    },
    AlertWindow {
        severity: Severity::Ticket,
        budget_fraction: 0.10,
        long_s: 3 * DAY_S,
        short_s: 6 * HOUR_S,
    },
];

impl AlertWindow {
    /// The burn-rate threshold b = f·P/w: 14.4, 6, 3, 1 over 30 days; 13.44, 5.6, 2.8, 0.933
    /// over 28.
    pub fn factor(&self, period: Period) -> f64 {
        self.budget_fraction * period.seconds() as f64 / self.long_s as f64
    }
}

/// What is known of one window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Measurement {
    /// `bad` of `total` events (counts from `increase()` may be fractional).
    Events { bad: f64, total: f64 },
    /// The series are there but nothing happened in the window (0/0): unknown, not 0 %.
    NoTraffic,
    /// A series is missing (a target down, a counter never written): unknown, and said so.
    Absent,
}

impl Measurement {
    /// Counts as read; no traffic when the total is 0, and counts that make no sense (negative,
    /// NaN, more bad than total) are clamped into range rather than trusted or dropped.
    pub fn events(bad: f64, total: f64) -> Self {
        if !total.is_finite() || !bad.is_finite() {
            return Self::Absent;
        }
        let total = total.max(0.0);
        if total == 0.0 {
            return Self::NoTraffic;
        }
        Self::Events {
            bad: bad.clamp(0.0, total),
            total,
        }
    }

    /// E(w) = bad / total, when there was traffic.
    pub fn error_ratio(&self) -> Option<f64> {
        match *self {
            Self::Events { bad, total } => Some(bad / total),
            Self::NoTraffic | Self::Absent => None,
        }
    }
}

/// The objective, validated: 0 < target < 1 (100 % leaves no budget: every burn rate infinite).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Objective {
    pub target: f64,
    pub period: Period,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ObjectiveError {
    #[error(
        "a target of 100 % leaves no error budget (every burn rate would be infinite): use at most 99.999 %"
    )]
    NoBudget,
    #[error("the target must be a fraction between 0 and 1 (99.9 % is 0.999), got {0}")]
    OutOfRange(f64),
}

impl Objective {
    // Exactly 100 % gets its own explanation; anything else out of range the generic one.
    #[allow(clippy::float_cmp)]
    pub fn new(target: f64, period: Period) -> Result<Self, ObjectiveError> {
        if target == 1.0 {
            return Err(ObjectiveError::NoBudget);
        }
        if !(target > 0.0 && target < 1.0) {
            return Err(ObjectiveError::OutOfRange(target));
        }
        Ok(Self { target, period })
    }

    /// B = 1 − target.
    pub fn budget(&self) -> f64 {
        1.0 - self.target
    }

    /// BR = E / B.
    pub fn burn_rate(&self, error_ratio: f64) -> f64 {
        error_ratio / self.budget()
    }
}

/// The measurements of one SLO: one per entry of [`WINDOWS_S`] (in that order) and the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Measurements {
    pub windows: [Measurement; WINDOWS_S.len()],
    pub period: Measurement,
    /// How far back the data goes, in seconds, when that is known; a window longer than this
    /// is computed over only this much.
    pub history_s: Option<u64>,
}

impl Measurements {
    pub fn window(&self, seconds: u64) -> Measurement {
        WINDOWS_S
            .iter()
            .position(|&w| w == seconds)
            .map_or(Measurement::Absent, |i| self.windows[i])
    }

    /// Nothing known anywhere.
    pub fn absent() -> Self {
        Self {
            windows: [Measurement::Absent; WINDOWS_S.len()],
            period: Measurement::Absent,
            history_s: None,
        }
    }
}

/// One window's figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct WindowFigures {
    pub window_s: u64,
    pub measurement: Measurement,
    pub error_ratio: Option<f64>,
    pub burn_rate: Option<f64>,
    /// Seconds of data behind the figures, when less than the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covered_s: Option<u64>,
}

/// One alert's state: `firing` is `None` when a window has no figure and the other does not
/// already rule the alert out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct AlertFigures {
    pub severity: Severity,
    pub long_s: u64,
    pub short_s: u64,
    pub factor: f64,
    pub long_burn: Option<f64>,
    pub short_burn: Option<f64>,
    pub firing: Option<bool>,
}

/// When the budget runs out at the current (1 h) burn rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Exhaustion {
    /// Already spent.
    Exhausted,
    /// In this many seconds, from now.
    In {
        seconds: f64,
    },
    /// Not burning: no errors in the last hour.
    NotBurning,
    Unknown,
}

/// The overall state: critical when a page fires, warning when a ticket fires, unknown when no
/// alert can be decided, else ok.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SloState {
    Ok,
    Unknown,
    Warning,
    Critical,
}

impl SloState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Unknown => "unknown",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for SloState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything Ward shows about one SLO.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct SloFigures {
    pub target: f64,
    pub period: Period,
    /// A(P) = 1 − E(P).
    pub availability: Option<f64>,
    /// C = E(P) / B.
    pub budget_consumed: Option<f64>,
    /// R = 1 − C; below 0 when overspent (bars clamp, the number does not).
    pub budget_remaining: Option<f64>,
    pub windows: Vec<WindowFigures>,
    pub alerts: Vec<AlertFigures>,
    pub exhaustion: Exhaustion,
    pub state: SloState,
    /// Seconds of data behind the period's figures (availability, budget), when less than the
    /// period: a budget from minutes of data is not a month's budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_covered_s: Option<u64>,
}

/// The window whose burn rate is "current" for the time to exhaustion.
pub const CURRENT_WINDOW_S: u64 = HOUR_S;

/// All of an SLO's figures from its measurements.
pub fn evaluate(objective: &Objective, measured: &Measurements) -> SloFigures {
    let windows: Vec<WindowFigures> = WINDOWS_S
        .iter()
        .zip(measured.windows)
        .map(|(&window_s, measurement)| {
            let error_ratio = measurement.error_ratio();
            WindowFigures {
                window_s,
                measurement,
                error_ratio,
                burn_rate: error_ratio.map(|e| objective.burn_rate(e)),
                covered_s: measured.history_s.filter(|&h| h < window_s),
            }
        })
        .collect();
    let burn = |seconds: u64| {
        windows
            .iter()
            .find(|w| w.window_s == seconds)
            .and_then(|w| w.burn_rate)
    };
    let alerts: Vec<AlertFigures> = ALERT_WINDOWS
        .iter()
        .map(|alert| {
            let factor = alert.factor(objective.period);
            let (long_burn, short_burn) = (burn(alert.long_s), burn(alert.short_s));
            let above = |b: Option<f64>| b.map(|b| b > factor);
            let firing = match (above(long_burn), above(short_burn)) {
                (Some(long), Some(short)) => Some(long && short),
                (Some(false), None) | (None, Some(false)) => Some(false),
                _ => None,
            };
            AlertFigures {
                severity: alert.severity,
                long_s: alert.long_s,
                short_s: alert.short_s,
                factor,
                long_burn,
                short_burn,
                firing,
            }
        })
        .collect();
    let period_ratio = measured.period.error_ratio();
    let budget_consumed = period_ratio.map(|e| objective.burn_rate(e));
    let budget_remaining = budget_consumed.map(|c| 1.0 - c);
    let exhaustion = match (budget_remaining, burn(CURRENT_WINDOW_S)) {
        (Some(r), _) if r <= 0.0 => Exhaustion::Exhausted,
        (Some(_), Some(b)) if b <= 0.0 => Exhaustion::NotBurning,
        (Some(r), Some(b)) => Exhaustion::In {
            seconds: r * objective.period.seconds() as f64 / b,
        },
        _ => Exhaustion::Unknown,
    };
    let fires = |severity| {
        alerts
            .iter()
            .any(|a| a.severity == severity && a.firing == Some(true))
    };
    let state = if fires(Severity::Page) {
        SloState::Critical
    } else if fires(Severity::Ticket) {
        SloState::Warning
    } else if alerts.iter().all(|a| a.firing.is_none()) {
        SloState::Unknown
    } else {
        SloState::Ok
    };
    SloFigures {
        target: objective.target,
        period: objective.period,
        availability: period_ratio.map(|e| 1.0 - e),
        budget_consumed,
        budget_remaining,
        windows,
        alerts,
        exhaustion,
        state,
        period_covered_s: measured
            .history_s
            .filter(|&h| h < objective.period.seconds()),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const EPS: f64 = 1e-9;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < EPS * b.abs().max(1.0)
    }

    fn objective(target: f64, period: Period) -> Objective {
        Objective::new(target, period).unwrap()
    }

    /// Every window at the same error ratio (or the given overrides), the period too.
    fn uniform(ratio: f64, total: f64) -> Measurements {
        let m = Measurement::events(ratio * total, total);
        Measurements {
            windows: [m; WINDOWS_S.len()],
            period: m,
            history_s: None,
        }
    }

    fn with_window(mut m: Measurements, seconds: u64, value: Measurement) -> Measurements {
        let i = WINDOWS_S.iter().position(|&w| w == seconds).unwrap();
        m.windows[i] = value;
        m
    }

    #[test]
    fn factors_are_the_workbook_and_sloth_tables() {
        let thirty: Vec<f64> = ALERT_WINDOWS
            .iter()
            .map(|a| a.factor(Period::Days30))
            .collect();
        for (got, want) in thirty.iter().zip([14.4, 6.0, 3.0, 1.0]) {
            assert!(close(*got, want), "{thirty:?}");
        }
        let eight: Vec<f64> = ALERT_WINDOWS
            .iter()
            .map(|a| a.factor(Period::Days28))
            .collect();
        for (got, want) in eight.iter().zip([13.44, 5.6, 2.8, 0.1 * 28.0 / 3.0]) {
            assert!(close(*got, want), "{eight:?}");
        }
        for alert in ALERT_WINDOWS {
            assert_eq!(alert.short_s * 12, alert.long_s, "short = long / 12");
        }
    }

    /// Burning at 14.4 for one hour of a 30-day period spends 2 % of the budget; table 5-4: at
    /// 2 the budget lasts 15 days, at 10 three days, at 1 000 about 43 minutes.
    #[test]
    fn burn_rates_spend_the_budget_as_the_workbook_says() {
        let o = objective(0.999, Period::Days30);
        let burn = o.burn_rate(0.0144);
        assert!(close(burn, 14.4));
        let spent = burn * HOUR_S as f64 / Period::Days30.seconds() as f64;
        assert!(close(spent, 0.02));
        for (burn, lasts_s) in [(2.0, 15.0 * DAY_S as f64), (10.0, 3.0 * DAY_S as f64)] {
            assert!(close(Period::Days30.seconds() as f64 / burn, lasts_s));
        }
        let minutes = Period::Days30.seconds() as f64 / 1_000.0 / 60.0;
        assert!((minutes - 43.2).abs() < 1e-9);
        // From a fresh budget at burn 2 (0.2 % errors over the last hour): 15 days.
        let figures = evaluate(
            &o,
            &with_window(uniform(0.0, 1e6), HOUR_S, Measurement::events(2.0, 1_000.0)),
        );
        let Exhaustion::In { seconds } = figures.exhaustion else {
            panic!("{:?}", figures.exhaustion)
        };
        assert!(close(seconds, 15.0 * DAY_S as f64), "{seconds}");
    }

    #[test]
    fn a_page_fires_only_while_both_windows_burn() {
        let o = objective(0.999, Period::Days30);
        // 2 % errors everywhere: burn 20 > 14.4 on 1 h and 5 m.
        let burning = uniform(0.02, 100_000.0);
        let figures = evaluate(&o, &burning);
        assert_eq!(figures.state, SloState::Critical);
        assert_eq!(figures.alerts[0].firing, Some(true));
        // Errors stopped five minutes ago: the short window clears the page at once.
        let recovered = with_window(burning, 5 * MINUTE_S, Measurement::events(0.0, 5_000.0));
        let figures = evaluate(&o, &recovered);
        assert_eq!(figures.alerts[0].firing, Some(false));
        // ...but 6 h & 30 m at burn 20 > 6 still page.
        assert_eq!(figures.alerts[1].firing, Some(true));
        assert_eq!(figures.state, SloState::Critical);
    }

    #[test]
    fn a_slow_burn_opens_a_ticket_not_a_page() {
        let o = objective(0.999, Period::Days30);
        // 0.4 % errors: burn 4, over the 3 of the 1 d & 2 h ticket, under every page.
        let figures = evaluate(&o, &uniform(0.004, 1e6));
        assert_eq!(
            figures.alerts.iter().map(|a| a.firing).collect::<Vec<_>>(),
            [Some(false), Some(false), Some(true), Some(true)]
        );
        assert_eq!(figures.state, SloState::Warning);
        assert_eq!(evaluate(&o, &uniform(0.0005, 1e6)).state, SloState::Ok);
    }

    #[test]
    fn no_traffic_and_absent_series_are_unknown_never_zero_or_full() {
        let o = objective(0.99, Period::Days30);
        for nothing in [Measurement::NoTraffic, Measurement::Absent] {
            let m = Measurements {
                windows: [nothing; WINDOWS_S.len()],
                period: nothing,
                history_s: None,
            };
            let figures = evaluate(&o, &m);
            assert_eq!(figures.state, SloState::Unknown);
            assert_eq!(figures.availability, None);
            assert_eq!(figures.budget_remaining, None);
            assert_eq!(figures.exhaustion, Exhaustion::Unknown);
            assert!(
                figures
                    .windows
                    .iter()
                    .all(|w| w.error_ratio.is_none() && w.burn_rate.is_none())
            );
            assert!(figures.windows.iter().all(|w| w.measurement == nothing));
        }
        assert_eq!(Measurement::events(0.0, 0.0), Measurement::NoTraffic);
        assert_eq!(Measurement::events(f64::NAN, 10.0), Measurement::Absent);
        // A quiet last five minutes: the fast page cannot be decided, the others can.
        let quiet = with_window(uniform(0.0, 1e6), 5 * MINUTE_S, Measurement::NoTraffic);
        let figures = evaluate(&o, &quiet);
        assert_eq!(
            figures.alerts[0].firing,
            Some(false),
            "the hour alone rules it out"
        );
        assert_eq!(figures.state, SloState::Ok);
    }

    #[test]
    fn an_overspent_budget_is_negative_and_exhausted() {
        let o = objective(0.999, Period::Days30);
        let figures = evaluate(&o, &uniform(0.0025, 1e6));
        let remaining = figures.budget_remaining.unwrap();
        assert!(close(remaining, -1.5), "{remaining}");
        assert!(close(figures.budget_consumed.unwrap(), 2.5));
        assert!(close(figures.availability.unwrap(), 0.9975));
        assert_eq!(figures.exhaustion, Exhaustion::Exhausted);
    }

    #[test]
    fn twenty_eight_days_scale_the_thresholds() {
        // Burn 14 is under 14.4 (30 d) but over 13.44 (28 d).
        let m = uniform(0.014, 1e6);
        assert_eq!(
            evaluate(&objective(0.999, Period::Days30), &m).alerts[0].firing,
            Some(false)
        );
        assert_eq!(
            evaluate(&objective(0.999, Period::Days28), &m).alerts[0].firing,
            Some(true)
        );
    }

    #[test]
    fn a_target_of_100_percent_is_refused() {
        assert_eq!(
            Objective::new(1.0, Period::Days30),
            Err(ObjectiveError::NoBudget)
        );
        assert!(matches!(
            Objective::new(99.9, Period::Days30),
            Err(ObjectiveError::OutOfRange(_))
        ));
        assert!(matches!(
            Objective::new(0.0, Period::Days30),
            Err(ObjectiveError::OutOfRange(_))
        ));
        assert!(matches!(
            Objective::new(f64::NAN, Period::Days30),
            Err(ObjectiveError::OutOfRange(_))
        ));
    }

    #[test]
    fn windows_are_named_as_prometheus_writes_them() {
        let names: Vec<String> = WINDOWS_S.iter().map(|&w| window_name(w)).collect();
        assert_eq!(names, ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]);
        assert_eq!(window_name(Period::Days28.seconds()), "28d");
    }

    proptest! {
        #[test]
        fn figures_follow_the_formulas(
            target in 0.9f64..0.99999,
            bad in prop::collection::vec(0u32..1_000, WINDOWS_S.len() + 1),
            total in prop::collection::vec(0u32..100_000, WINDOWS_S.len() + 1),
            twenty_eight in any::<bool>(),
        ) {
            let period = if twenty_eight { Period::Days28 } else { Period::Days30 };
            let o = objective(target, period);
            let m: Vec<Measurement> = bad
                .iter()
                .zip(&total)
                .map(|(&b, &t)| Measurement::events(f64::from(b), f64::from(t)))
                .collect();
            let measured = Measurements {
                windows: m[..WINDOWS_S.len()].try_into().unwrap(),
                period: m[WINDOWS_S.len()],
                history_s: None,
            };
            let figures = evaluate(&o, &measured);
            let budget = 1.0 - target;
            for w in &figures.windows {
                match w.measurement {
                    Measurement::Events { bad, total } => {
                        prop_assert!(bad <= total);
                        let e = w.error_ratio.unwrap();
                        prop_assert!((0.0..=1.0).contains(&e));
                        prop_assert!(close(w.burn_rate.unwrap(), e / budget));
                    }
                    _ => prop_assert!(w.burn_rate.is_none()),
                }
            }
            if let (Some(c), Some(r)) = (figures.budget_consumed, figures.budget_remaining) {
                prop_assert!(close(c + r, 1.0));
            }
            for a in &figures.alerts {
                match a.firing {
                    Some(true) => prop_assert!(a.long_burn.unwrap() > a.factor && a.short_burn.unwrap() > a.factor),
                    Some(false) => prop_assert!(
                        a.long_burn.is_some_and(|b| b <= a.factor) || a.short_burn.is_some_and(|b| b <= a.factor)
                    ),
                    None => prop_assert!(a.long_burn.is_none() || a.short_burn.is_none()),
                }
            }
            let page = figures.alerts.iter().any(|a| a.severity == Severity::Page && a.firing == Some(true));
            prop_assert_eq!(page, figures.state == SloState::Critical);
        }
    }
}
