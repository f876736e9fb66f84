//! GCRA rate limiting (DOMAIN.md §4): one stored timestamp per key, the "theoretical arrival
//! time" (TAT). The store runs the same arithmetic atomically in a script; this is the reference.
//!
//! A limit is `count` requests per `period` with bursts of up to `burst` at once. With the
//! emission interval T = period / count and tolerance τ = T · burst: a request at `now` moves the
//! TAT to max(TAT, now) + T and is refused if that lands more than τ after `now`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A rate limit: `count` per `period`, bursts up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    pub count: u32,
    pub period_ms: u64,
    pub burst: u32,
}

impl RateLimit {
    pub fn per_second(count: u32, burst: u32) -> Self {
        Self {
            count,
            period_ms: 1000,
            burst,
        }
    }

    /// T in microseconds: the spacing of requests at the sustained rate.
    pub fn emission_interval_us(&self) -> i64 {
        let period_us = i64::try_from(self.period_ms.saturating_mul(1000)).unwrap_or(i64::MAX);
        (period_us / i64::from(self.count.max(1))).max(1)
    }

    /// τ in microseconds.
    fn tolerance_us(&self) -> i64 {
        self.emission_interval_us()
            .saturating_mul(i64::from(self.burst.max(1)))
    }
}

/// The verdict for one request, with what the headers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// The TAT to store (unchanged when refused).
    pub tat_us: i64,
    /// Requests that would still be allowed right now.
    pub remaining: u32,
    /// When refused: how long until this request would be allowed.
    pub retry_after: Duration,
    /// How long until the limit is fully replenished.
    pub reset_after: Duration,
}

fn micros(d: i64) -> Duration {
    Duration::from_micros(u64::try_from(d).unwrap_or(0))
}

/// Decide one request of weight `quantity` at `now_us`, given the stored TAT (if any).
pub fn gcra(limit: &RateLimit, stored_tat_us: Option<i64>, now_us: i64, quantity: u32) -> Verdict {
    let t = limit.emission_interval_us();
    let tau = limit.tolerance_us();
    let tat = stored_tat_us.unwrap_or(now_us).max(now_us);
    let new_tat = tat.saturating_add(t.saturating_mul(i64::from(quantity)));
    let allow_at = new_tat - tau;
    if now_us < allow_at {
        let remaining_room = tau - (tat - now_us);
        return Verdict {
            allowed: false,
            tat_us: stored_tat_us.unwrap_or(now_us),
            remaining: u32::try_from((remaining_room / t).max(0)).unwrap_or(0),
            retry_after: micros(allow_at - now_us),
            reset_after: micros(tat - now_us),
        };
    }
    Verdict {
        allowed: true,
        tat_us: new_tat,
        remaining: u32::try_from(((tau - (new_tat - now_us)) / t).max(0)).unwrap_or(0),
        retry_after: Duration::ZERO,
        reset_after: micros(new_tat - now_us),
    }
}

/// `RateLimit-Policy`, `RateLimit` and (when refused) `Retry-After` header values
/// (draft-ietf-httpapi-ratelimit-headers). Seconds are rounded up so a client never comes early.
pub fn headers(
    policy_name: &str,
    limit: &RateLimit,
    verdict: &Verdict,
) -> Vec<(&'static str, String)> {
    let ceil_secs = |d: Duration| d.as_millis().div_ceil(1000);
    let window = limit.period_ms.div_ceil(1000).max(1);
    let mut out = vec![
        (
            "RateLimit-Policy",
            format!("\"{policy_name}\";q={};w={window}", limit.count),
        ),
        (
            "RateLimit",
            format!(
                "\"{policy_name}\";r={};t={}",
                verdict.remaining,
                ceil_secs(verdict.reset_after)
            ),
        ),
    ];
    if !verdict.allowed {
        out.push((
            "Retry-After",
            ceil_secs(verdict.retry_after).max(1).to_string(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const NOW: i64 = 1_000_000_000_000;

    #[test]
    fn a_burst_is_allowed_then_the_sustained_rate() {
        let limit = RateLimit::per_second(10, 5);
        let mut tat = None;
        for i in 0..5 {
            let v = gcra(&limit, tat, NOW, 1);
            assert!(v.allowed, "request {i} of the burst");
            assert_eq!(v.remaining, 4 - i);
            tat = Some(v.tat_us);
        }
        let refused = gcra(&limit, tat, NOW, 1);
        assert!(!refused.allowed);
        assert_eq!(
            refused.retry_after,
            Duration::from_millis(100),
            "T = 100 ms at 10/s"
        );
        assert_eq!(refused.tat_us, tat.unwrap(), "a refusal stores nothing new");
        let later = gcra(&limit, tat, NOW + 100_000, 1);
        assert!(later.allowed);
    }

    #[test]
    fn headers_follow_the_draft() {
        let limit = RateLimit {
            count: 100,
            period_ms: 60_000,
            burst: 10,
        };
        let v = gcra(&limit, Some(NOW + 600_000 * 10), NOW, 1);
        assert!(!v.allowed);
        let h = headers("tenant-acme", &limit, &v);
        assert_eq!(
            h[0],
            ("RateLimit-Policy", "\"tenant-acme\";q=100;w=60".to_owned())
        );
        assert!(h[1].1.starts_with("\"tenant-acme\";r=0;t="));
        assert_eq!(h[2], ("Retry-After", "1".to_owned()));
    }

    proptest! {
        /// Over any stretch of time, at most burst + elapsed / T requests get through.
        #[test]
        fn never_more_than_burst_plus_the_rate(
            count in 1u32..1000,
            burst in 1u32..50,
            gaps in prop::collection::vec(0i64..50_000, 1..300),
        ) {
            let limit = RateLimit::per_second(count, burst);
            let t = limit.emission_interval_us();
            let mut tat = None;
            let mut now = NOW;
            let mut allowed = 0i64;
            for gap in gaps {
                now += gap;
                let v = gcra(&limit, tat, now, 1);
                if v.allowed {
                    allowed += 1;
                    tat = Some(v.tat_us);
                } else {
                    prop_assert!(v.retry_after > Duration::ZERO);
                    let retry = gcra(&limit, tat, now + i64::try_from(v.retry_after.as_micros()).unwrap(), 1);
                    prop_assert!(retry.allowed, "allowed once retry_after has passed");
                }
            }
            let budget = i64::from(burst) + (now - NOW) / t + 1;
            prop_assert!(allowed <= budget, "{allowed} > {budget}");
        }
    }
}
