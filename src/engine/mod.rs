//! Pure logic, no I/O, clock injected: retry policy, breaker, rate-limit maths, routing, shedding,
//! SLO maths. Later issues fill it; the clock and partitioning live here from the start.

pub mod clock;
pub mod partition;
