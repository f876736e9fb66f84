//! Pure logic, no I/O, clock injected: retry policy, breaker, rate-limit maths, routing, grouping,
//! silences and inhibition, shedding, SLO maths, recurring time intervals.

pub mod breaker;
pub mod clock;
pub mod grouping;
pub mod inhibit;
pub mod matcher;
pub mod overrides;
pub mod partition;
pub mod ratelimit;
pub mod retry;
pub mod routing;
pub mod shedding;
pub mod silence;
pub mod slo;
pub mod suppress;
pub mod timeinterval;
