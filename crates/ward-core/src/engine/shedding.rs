//! Backpressure: what a queue's depth means against its warn and shed thresholds.

use crate::model::ShedMode;

/// A queue's state under load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pressure {
    Normal,
    /// Over the warn depth (or over the shed depth with shedding off): reported, nothing else.
    Warn,
    /// Over the shed depth in `dlq` mode: the `excess` oldest items go to the DLQ.
    Shed {
        excess: u64,
    },
    /// Over the shed depth in `defer` mode: whatever feeds the queue holds back.
    Defer,
}

impl Pressure {
    /// The gauge value: 0 normal, 1 warn, 2 shedding to the DLQ, 3 deferring.
    pub fn level(self) -> i64 {
        match self {
            Self::Normal => 0,
            Self::Warn => 1,
            Self::Shed { .. } => 2,
            Self::Defer => 3,
        }
    }
}

/// A queue's pressure at `depth`. Thresholds are exclusive: a queue exactly at its threshold is
/// not over it.
pub fn pressure(depth: u64, warn: Option<u64>, shed: Option<u64>, mode: ShedMode) -> Pressure {
    match shed {
        Some(limit) if depth > limit => match mode {
            ShedMode::Dlq => Pressure::Shed {
                excess: depth - limit,
            },
            ShedMode::Defer => Pressure::Defer,
            ShedMode::Off => Pressure::Warn,
        },
        _ if warn.is_some_and(|limit| depth > limit) => Pressure::Warn,
        _ => Pressure::Normal,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn thresholds_are_exclusive_and_the_mode_decides_what_shedding_does() {
        assert_eq!(
            pressure(10, Some(5), Some(10), ShedMode::Dlq),
            Pressure::Warn
        );
        assert_eq!(
            pressure(14, Some(5), Some(10), ShedMode::Dlq),
            Pressure::Shed { excess: 4 }
        );
        assert_eq!(
            pressure(14, None, Some(10), ShedMode::Defer),
            Pressure::Defer
        );
        assert_eq!(pressure(14, None, Some(10), ShedMode::Off), Pressure::Warn);
        assert_eq!(pressure(5, Some(5), None, ShedMode::Dlq), Pressure::Normal);
        assert_eq!(pressure(1_000, None, None, ShedMode::Dlq), Pressure::Normal);
    }

    proptest! {
        #[test]
        fn shedding_never_takes_the_queue_below_its_threshold(depth in 0u64..1_000_000, limit in 0u64..1_000_000) {
            match pressure(depth, None, Some(limit), ShedMode::Dlq) {
                Pressure::Shed { excess } => prop_assert_eq!(depth - excess, limit),
                other => prop_assert!(depth <= limit, "{other:?} at {depth} over {limit}"),
            }
        }
    }
}
