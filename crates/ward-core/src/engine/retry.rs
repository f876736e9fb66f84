//! Retry policies: when to try a failed delivery again, and when to give up (DOMAIN.md §3).
//!
//! `max_attempts` counts the **first call**: 6 attempts = the first call plus 5 retries, which is
//! what the seed schedule `5m,30m,2h,12h,24h` describes.

use std::fmt::{self, Write as _};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A source of uniform numbers in `[0, 1)`, injected so tests are deterministic.
pub trait Random {
    fn unit(&mut self) -> f64;
}

impl Random for fastrand::Rng {
    fn unit(&mut self) -> f64 {
        self.f64()
    }
}

/// How the raw delay before retry n grows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Backoff {
    /// The same delay every time.
    Fixed {
        #[serde(with = "duration_text")]
        delay: Duration,
    },
    /// `min(cap, base · factor^(n−1))` for retry n.
    Exponential {
        #[serde(with = "duration_text")]
        base: Duration,
        factor: f64,
        #[serde(with = "duration_text")]
        cap: Duration,
    },
    /// An explicit list: retry n waits `delays[n−1]`; the list's length bounds the retries.
    Schedule {
        #[serde(with = "duration_list")]
        delays: Vec<Duration>,
    },
}

/// How randomness spreads retries (AWS "Exponential Backoff and Jitter").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    /// The raw delay: synchronised retries, worst under load.
    None,
    /// `U(0, t)`: least total work.
    #[default]
    Full,
    /// `t/2 + U(0, t/2)`.
    Equal,
    /// `min(cap, U(base, 3 · previous))`.
    Decorrelated,
    /// `t · U(1 − p, 1 + p)` for p percent: keeps a schedule's order.
    Percent(u8),
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Try again after this delay.
    RetryAfter(Duration),
    /// Attempts or time are exhausted: dead-letter it.
    GiveUp,
}

/// A named retry policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub name: String,
    pub backoff: Backoff,
    #[serde(default)]
    pub jitter: Jitter,
    /// Attempts in all, the first call included. At least 1.
    pub max_attempts: u32,
    /// Give up once this much time has passed since the first failure.
    #[serde(
        default,
        with = "duration_text_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_elapsed: Option<Duration>,
}

/// The longest `Retry-After` honoured: beyond it a server is asking for something else.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

impl RetryPolicy {
    /// The seed schedule (DOMAIN.md §3.5): 5m, 30m, 2h, 12h, 24h, jittered ±20 %.
    pub fn seed_schedule() -> Self {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        Self {
            name: "schedule".to_owned(),
            backoff: Backoff::Schedule {
                delays: vec![
                    minutes(5),
                    minutes(30),
                    minutes(120),
                    minutes(720),
                    minutes(1440),
                ],
            },
            jitter: Jitter::Percent(20),
            max_attempts: 6,
            max_elapsed: None,
        }
    }

    /// Exponential with full jitter: 1 s doubling to a 5 min cap, 8 attempts.
    pub fn exponential_default() -> Self {
        Self {
            name: "exponential".to_owned(),
            backoff: Backoff::Exponential {
                base: Duration::from_secs(1),
                factor: 2.0,
                cap: Duration::from_secs(300),
            },
            jitter: Jitter::Full,
            max_attempts: 8,
            max_elapsed: None,
        }
    }

    /// Attempts actually possible: a schedule allows at most one more than its length.
    pub fn effective_max_attempts(&self) -> u32 {
        let limit = self.max_attempts.max(1);
        match &self.backoff {
            Backoff::Schedule { delays } => limit.min(
                u32::try_from(delays.len())
                    .unwrap_or(u32::MAX)
                    .saturating_add(1),
            ),
            _ => limit,
        }
    }

    /// The largest delay this policy can produce without a `Retry-After`.
    pub fn cap(&self) -> Duration {
        let widen = |d: Duration| match self.jitter {
            Jitter::Percent(p) => d.mul_f64(1.0 + f64::from(p.min(100)) / 100.0),
            _ => d,
        };
        match &self.backoff {
            Backoff::Fixed { delay } => widen(*delay),
            Backoff::Exponential { cap, .. } => widen(*cap),
            Backoff::Schedule { delays } => widen(delays.iter().max().copied().unwrap_or_default()),
        }
    }

    /// The raw (unjittered) delay before retry `n` (1-based).
    fn raw_delay(&self, n: u32) -> Duration {
        match &self.backoff {
            Backoff::Fixed { delay } => *delay,
            Backoff::Exponential { base, factor, cap } => {
                let exponent = i32::try_from(n.saturating_sub(1)).unwrap_or(i32::MAX);
                let grown = base.as_secs_f64() * factor.max(1.0).powi(exponent);
                if grown.is_finite() && grown < cap.as_secs_f64() {
                    Duration::from_secs_f64(grown)
                } else {
                    *cap
                }
            }
            Backoff::Schedule { delays } => {
                let index = usize::try_from(n.saturating_sub(1)).unwrap_or(usize::MAX);
                delays
                    .get(index)
                    .or(delays.last())
                    .copied()
                    .unwrap_or_default()
            }
        }
    }

    /// Decide after attempt number `attempts` (1 = the first call) has failed.
    ///
    /// `previous` is the delay chosen last time (for decorrelated jitter), `elapsed` the time
    /// since the first failure, `retry_after` a server's explicit wish (it wins, never shortened).
    pub fn decide(
        &self,
        attempts: u32,
        previous: Option<Duration>,
        elapsed: Duration,
        retry_after: Option<Duration>,
        rng: &mut dyn Random,
    ) -> RetryDecision {
        if attempts >= self.effective_max_attempts() {
            return RetryDecision::GiveUp;
        }
        let delay = match retry_after {
            Some(wait) => honour_retry_after(wait, self.jitter, rng),
            None => self.jittered(attempts, previous, rng),
        };
        if self
            .max_elapsed
            .is_some_and(|limit| elapsed.saturating_add(delay) > limit)
        {
            return RetryDecision::GiveUp;
        }
        RetryDecision::RetryAfter(delay)
    }

    fn jittered(&self, retry: u32, previous: Option<Duration>, rng: &mut dyn Random) -> Duration {
        let t = self.raw_delay(retry);
        match self.jitter {
            Jitter::None => t,
            Jitter::Full => t.mul_f64(rng.unit()),
            Jitter::Equal => t / 2 + (t / 2).mul_f64(rng.unit()),
            Jitter::Decorrelated => {
                let (base, cap) = match &self.backoff {
                    Backoff::Exponential { base, cap, .. } => (*base, *cap),
                    _ => (t, self.cap()),
                };
                let previous = previous.unwrap_or(base).max(base);
                let high = previous.saturating_mul(3);
                (base + high.saturating_sub(base).mul_f64(rng.unit())).min(cap)
            }
            Jitter::Percent(p) => {
                let p = f64::from(p.min(100)) / 100.0;
                t.mul_f64(1.0 - p + 2.0 * p * rng.unit())
            }
        }
    }
}

/// A server said when to come back: never earlier; spread a little later so waiting workers do
/// not return in one burst.
fn honour_retry_after(wait: Duration, jitter: Jitter, rng: &mut dyn Random) -> Duration {
    let wait = wait.min(MAX_RETRY_AFTER);
    if jitter == Jitter::None {
        return wait;
    }
    let spread = (wait / 10).min(Duration::from_secs(1));
    wait + spread.mul_f64(rng.unit())
}

/// Parse `250ms`, `5s`, `30m`, `2h`, `1d` (or a combination like `1h30m`).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError(text.to_owned()));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(DurationError(text.to_owned()));
        }
        let value: u64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError(text.to_owned()))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(value),
            "s" => Duration::from_secs(value),
            "m" => Duration::from_secs(value.saturating_mul(60)),
            "h" => Duration::from_secs(value.saturating_mul(3600)),
            "d" => Duration::from_secs(value.saturating_mul(86_400)),
            _ => return Err(DurationError(text.to_owned())),
        };
        total = total.saturating_add(unit);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Format a duration the way `parse_duration` reads it, largest units first.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if rest >= size {
            let _ = write!(out, "{}{unit}", rest / size);
            rest %= size;
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a duration: use a number and a unit (ms, s, m, h, d), e.g. 30s or 1h30m")]
pub struct DurationError(pub String);

/// A list of durations written `5m,30m,2h`.
pub fn parse_duration_list(text: &str) -> Result<Vec<Duration>, DurationError> {
    text.split(',').map(parse_duration).collect()
}

impl FromStr for Jitter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Self::None),
            "full" => Ok(Self::Full),
            "equal" => Ok(Self::Equal),
            "decorrelated" => Ok(Self::Decorrelated),
            other => other
                .strip_suffix('%')
                .and_then(|p| p.trim_start_matches('±').parse::<u8>().ok())
                .filter(|p| *p <= 100)
                .map(Self::Percent)
                .ok_or_else(|| {
                    format!("unknown jitter {other:?}: none, full, equal, decorrelated or a percentage like 20%")
                }),
        }
    }
}

impl fmt::Display for Jitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::Full => f.write_str("full"),
            Self::Equal => f.write_str("equal"),
            Self::Decorrelated => f.write_str("decorrelated"),
            Self::Percent(p) => write!(f, "{p}%"),
        }
    }
}

mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

mod duration_text_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    #[allow(clippy::ref_option)]
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::format_duration(*d)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| super::parse_duration(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

mod duration_list {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(list: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        let text: Vec<String> = list.iter().map(|d| super::format_duration(*d)).collect();
        s.serialize_str(&text.join(","))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration_list(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Always the same draw, for exact expectations.
    struct Fixed(f64);
    impl Random for Fixed {
        fn unit(&mut self) -> f64 {
            self.0
        }
    }

    fn exponential(jitter: Jitter) -> RetryPolicy {
        RetryPolicy {
            jitter,
            ..RetryPolicy::exponential_default()
        }
    }

    fn delay(decision: RetryDecision) -> Duration {
        match decision {
            RetryDecision::RetryAfter(d) => d,
            RetryDecision::GiveUp => panic!("expected a retry"),
        }
    }

    #[test]
    fn exponential_doubles_to_its_cap() {
        let policy = RetryPolicy {
            max_attempts: 20,
            ..exponential(Jitter::None)
        };
        let delays: Vec<u64> = (1..=10)
            .map(|n| delay(policy.decide(n, None, Duration::ZERO, None, &mut Fixed(0.5))).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
    }

    #[test]
    fn full_and_equal_jitter_follow_their_formulas() {
        let t = Duration::from_secs(4); // retry 3: 1 s · 2²
        let full =
            exponential(Jitter::Full).decide(3, None, Duration::ZERO, None, &mut Fixed(0.25));
        assert_eq!(delay(full), t.mul_f64(0.25));
        let equal =
            exponential(Jitter::Equal).decide(3, None, Duration::ZERO, None, &mut Fixed(0.5));
        assert_eq!(delay(equal), Duration::from_secs(3));
    }

    #[test]
    fn the_seed_schedule_allows_six_attempts_then_gives_up() {
        let policy = RetryPolicy {
            jitter: Jitter::None,
            ..RetryPolicy::seed_schedule()
        };
        let delays: Vec<Duration> = (1..=5)
            .map(|n| delay(policy.decide(n, None, Duration::ZERO, None, &mut Fixed(0.0))))
            .collect();
        assert_eq!(delays, parse_duration_list("5m,30m,2h,12h,24h").unwrap());
        assert_eq!(
            policy.decide(6, None, Duration::ZERO, None, &mut Fixed(0.0)),
            RetryDecision::GiveUp
        );
    }

    #[test]
    fn retry_after_wins_and_is_never_shortened() {
        let policy = exponential(Jitter::Full);
        let wait = Duration::from_secs(7);
        let got = delay(policy.decide(1, None, Duration::ZERO, Some(wait), &mut Fixed(0.0)));
        assert_eq!(got, wait);
        let got = delay(policy.decide(1, None, Duration::ZERO, Some(wait), &mut Fixed(0.99)));
        assert!(got >= wait && got <= wait + Duration::from_secs(1));
    }

    #[test]
    fn max_elapsed_gives_up_before_overrunning() {
        let policy = RetryPolicy {
            max_elapsed: Some(Duration::from_secs(10)),
            ..exponential(Jitter::None)
        };
        assert!(matches!(
            policy.decide(1, None, Duration::from_secs(8), None, &mut Fixed(0.0)),
            RetryDecision::RetryAfter(_)
        ));
        assert_eq!(
            policy.decide(4, None, Duration::from_secs(8), None, &mut Fixed(0.0)),
            RetryDecision::GiveUp
        );
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        for bad in ["", "5", "m", "5x", "-5s", "1.5s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
        assert_eq!("20%".parse::<Jitter>().unwrap(), Jitter::Percent(20));
        assert!("wobbly".parse::<Jitter>().is_err());
    }

    #[test]
    fn policies_round_trip_through_toml() {
        let policy = RetryPolicy::seed_schedule();
        let text = toml::to_string(&policy).unwrap();
        assert!(text.contains("5m,30m,2h,12h,1d"), "{text}");
        let back: RetryPolicy = toml::from_str(&text).unwrap();
        assert_eq!(back, policy);
    }

    fn any_jitter() -> impl Strategy<Value = Jitter> {
        prop_oneof![
            Just(Jitter::None),
            Just(Jitter::Full),
            Just(Jitter::Equal),
            Just(Jitter::Decorrelated),
            (0u8..=100).prop_map(Jitter::Percent),
        ]
    }

    fn any_policy() -> impl Strategy<Value = RetryPolicy> {
        let exponential =
            (1u64..10_000, 1.0f64..4.0, 1u64..1_000_000).prop_map(|(base, factor, cap)| {
                Backoff::Exponential {
                    base: Duration::from_millis(base),
                    factor,
                    cap: Duration::from_millis(base.max(cap)),
                }
            });
        let schedule =
            prop::collection::vec(0u64..100_000_000, 1..8).prop_map(|ms| Backoff::Schedule {
                delays: ms.into_iter().map(Duration::from_millis).collect(),
            });
        let fixed = (0u64..1_000_000).prop_map(|ms| Backoff::Fixed {
            delay: Duration::from_millis(ms),
        });
        (
            prop_oneof![exponential, schedule, fixed],
            any_jitter(),
            1u32..30,
        )
            .prop_map(|(backoff, jitter, max_attempts)| RetryPolicy {
                name: "p".to_owned(),
                backoff,
                jitter,
                max_attempts,
                max_elapsed: None,
            })
    }

    proptest! {
        #[test]
        fn every_delay_is_within_zero_and_the_cap(policy in any_policy(), draws in prop::collection::vec(0.0f64..1.0, 40)) {
            let mut previous = None;
            for (i, draw) in draws.iter().enumerate() {
                let attempt = u32::try_from(i).unwrap() + 1;
                match policy.decide(attempt, previous, Duration::ZERO, None, &mut Fixed(*draw)) {
                    RetryDecision::RetryAfter(d) => {
                        prop_assert!(d <= policy.cap() + Duration::from_millis(1), "{d:?} over cap {:?}", policy.cap());
                        previous = Some(d);
                    }
                    RetryDecision::GiveUp => {
                        prop_assert_eq!(attempt, policy.effective_max_attempts());
                        break;
                    }
                }
            }
        }

        #[test]
        fn retries_are_bounded_by_max_attempts(policy in any_policy()) {
            let mut rng = fastrand::Rng::with_seed(7);
            let retries = (1..100u32)
                .take_while(|n| matches!(policy.decide(*n, None, Duration::ZERO, None, &mut rng), RetryDecision::RetryAfter(_)))
                .count();
            prop_assert_eq!(retries, policy.effective_max_attempts() as usize - 1);
            if let Backoff::Schedule { delays } = &policy.backoff {
                prop_assert!(retries <= delays.len(), "schedule length = attempts − 1 at most");
            }
        }

        #[test]
        fn a_percent_jittered_schedule_keeps_its_order(first in 1u64..1000, step in 2u64..10) {
            let delays: Vec<_> = (0..5).map(|i| Duration::from_secs(first * step.pow(i))).collect();
            let policy = RetryPolicy {
                backoff: Backoff::Schedule { delays },
                jitter: Jitter::Percent(20),
                ..RetryPolicy::seed_schedule()
            };
            let mut rng = fastrand::Rng::with_seed(first);
            let mut last = Duration::ZERO;
            for n in 1..=5 {
                let RetryDecision::RetryAfter(d) = policy.decide(n, None, Duration::ZERO, None, &mut rng) else {
                    prop_assert!(false, "gave up early");
                    break;
                };
                prop_assert!(d >= last, "retry {n} came before retry {}", n - 1);
                last = d;
            }
        }

        #[test]
        fn retry_after_is_always_honoured(policy in any_policy(), wait_ms in 0u64..100_000_000, draw in 0.0f64..1.0) {
            let wait = Duration::from_millis(wait_ms);
            if let RetryDecision::RetryAfter(d) = policy.decide(1, None, Duration::ZERO, Some(wait), &mut Fixed(draw)) {
                prop_assert!(d >= wait.min(MAX_RETRY_AFTER));
            }
        }
    }
}
