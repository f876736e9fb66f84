//! Ward's Prometheus metrics (OpenMetrics text), one registry per process.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::engine::breaker::BreakerState;
use crate::model::StoreStats;

/// The content type `/metrics` answers with.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IngestLabels {
    pub endpoint: &'static str,
    /// `accepted` or `rejected`.
    pub status: &'static str,
    /// Empty when accepted; else `auth`, `json`, `validation`, `too_large`, `rate_limit`,
    /// `queue_full`, `shedding`, `store`.
    pub reason: &'static str,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum DeliveryOutcome {
    delivered,
    retried,
    dead_lettered,
    deduplicated,
    rate_limited,
    breaker_open,
    stopped,
    /// Not attempted: Ward's store could not claim the alert; deferred without an attempt.
    store_error,
    /// A test alert the channel refused: reported to its sender, never retried.
    failed,
    /// Held back by an active silence: acknowledged, never sent.
    silenced,
    /// Held back because a firing alert inhibits it.
    inhibited,
    /// Held back by an open maintenance window.
    muted,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub channel: String,
    pub backend: &'static str,
    pub outcome: DeliveryOutcome,
    /// `true` for operators' test alerts, counted apart.
    pub test: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    pub channel: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShedLabels {
    pub queue: String,
    /// `dlq` or `defer`.
    pub mode: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SkipLabels {
    pub channel: String,
    /// `breaker`, `stopped`, `cooldown` or `rate_limit`.
    pub reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    pub policy: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    pub channel: String,
    pub from: &'static str,
    pub to: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub directive: &'static str,
    /// `routed` (at least one channel), `dropped` (no channel), `invalid`.
    pub result: &'static str,
}

type GaugeFamily<L> = Family<L, Gauge<i64, std::sync::atomic::AtomicI64>>;

/// Every metric Ward exports. Cheap to clone (all handles are shared).
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub ingest_requests: Family<IngestLabels, Counter>,
    pub ingest_latency: Histogram,
    pub rate_limit_hits: Counter,
    /// Ingest connections closed on arrival because `ingest.max_connections` were open.
    pub ingest_connections_refused: Counter,
    pub routed: Family<RouteLabels, Counter>,
    pub deliveries: Family<DeliveryLabels, Counter>,
    pub delivery_latency: Family<ChannelLabels, Histogram>,
    pub retries: Family<PolicyLabels, Counter>,
    pub dedup_hits: Family<ChannelLabels, Counter>,
    pub breaker_state: GaugeFamily<ChannelLabels>,
    pub breaker_transitions: Family<TransitionLabels, Counter>,
    pub queue_depth: GaugeFamily<QueueLabels>,
    pub queue_in_flight: GaugeFamily<QueueLabels>,
    pub queue_scheduled: GaugeFamily<QueueLabels>,
    pub dlq_size: GaugeFamily<QueueLabels>,
    pub dead_size: GaugeFamily<QueueLabels>,
    pub recovered_leases: Counter<u64, AtomicU64>,
    /// Group notifications handed to the delivery queue.
    pub group_notifications: Counter<u64, AtomicU64>,
    pub queue_pressure: GaugeFamily<QueueLabels>,
    pub shed_events: Family<ShedLabels, Counter>,
    pub shed_items: Family<QueueLabels, Counter>,
    pub remediation_runs: Counter,
    pub remediation_replayed: Family<ChannelLabels, Counter>,
    pub remediation_poisoned: Family<ChannelLabels, Counter>,
    pub remediation_skipped: Family<SkipLabels, Counter>,
    pub remediation_failures: Counter,
    /// Plain running totals, for the heartbeat each worker writes to the store.
    pub totals: Arc<Totals>,
}

/// Running totals since the process started (the control room's rates come from these).
#[derive(Debug, Default)]
pub struct Totals {
    pub ingested: AtomicU64,
    pub routed: AtomicU64,
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub dead_lettered: AtomicU64,
    /// Deliveries held back by a silence, inhibition or maintenance window.
    pub suppressed: AtomicU64,
}

impl Totals {
    /// The totals as a heartbeat written at `at_ms` by a process started at `started_ms`.
    pub fn beat(&self, started_ms: i64, at_ms: i64) -> crate::model::WorkerBeat {
        let read = |n: &AtomicU64| n.load(Ordering::Relaxed);
        crate::model::WorkerBeat {
            at_ms,
            started_ms,
            role: crate::model::Role::All,
            ingested: read(&self.ingested),
            routed: read(&self.routed),
            delivered: read(&self.delivered),
            failed: read(&self.failed),
            dead_lettered: read(&self.dead_lettered),
            suppressed: read(&self.suppressed),
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Bucket bounds of delivery durations, in seconds: round numbers, so an SLO's latency
/// threshold (`threshold_s`) can be one of them.
pub const DELIVERY_DURATION_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(DELIVERY_DURATION_BUCKETS)
}

fn add<M: prometheus_client::registry::Metric + Clone>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    metric: M,
) -> M {
    registry.register(name, help, metric.clone());
    metric
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    // A list with one entry per metric, long but without logic.
    #[allow(clippy::too_many_lines)]
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("ward");
        let ingest_latency = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        let delivery_latency = Family::<ChannelLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        Self {
            ingest_requests: add(
                &mut r,
                "ingest_requests",
                "Ingest HTTP requests by endpoint, status and reason",
                Family::default(),
            ),
            ingest_latency: add(
                &mut r,
                "ingest_latency_seconds",
                "Ingest request handling time",
                ingest_latency,
            ),
            rate_limit_hits: add(
                &mut r,
                "rate_limit_hits",
                "Ingest requests refused by a tenant's rate limit",
                Counter::default(),
            ),
            ingest_connections_refused: add(
                &mut r,
                "ingest_connections_refused",
                "Ingest connections closed on arrival because ingest.max_connections were open",
                Counter::default(),
            ),
            routed: add(
                &mut r,
                "routed_alerts",
                "Alerts routed, by directive and result",
                Family::default(),
            ),
            deliveries: add(
                &mut r,
                "deliveries",
                "Delivery attempts by channel, backend and outcome",
                Family::default(),
            ),
            delivery_latency: add(
                &mut r,
                "delivery_duration_seconds",
                "Time spent in a backend's send",
                delivery_latency,
            ),
            retries: add(
                &mut r,
                "retries",
                "Retries scheduled, by retry policy",
                Family::default(),
            ),
            dedup_hits: add(
                &mut r,
                "dedup_hits",
                "Deliveries skipped because the alert was already delivered",
                Family::default(),
            ),
            breaker_state: add(
                &mut r,
                "breaker_state",
                "Breaker state: 0 closed, 1 open, 2 half-open, 3 disabled, 4 forced open",
                Family::default(),
            ),
            breaker_transitions: add(
                &mut r,
                "breaker_transitions",
                "Breaker state changes",
                Family::default(),
            ),
            queue_depth: add(
                &mut r,
                "queue_depth",
                "Items waiting in a queue",
                Family::default(),
            ),
            queue_in_flight: add(
                &mut r,
                "queue_in_flight",
                "Items leased by workers",
                Family::default(),
            ),
            queue_scheduled: add(
                &mut r,
                "queue_scheduled",
                "Items waiting for a retry",
                Family::default(),
            ),
            dlq_size: add(
                &mut r,
                "dlq_size",
                "Entries in a queue's dead-letter queue",
                Family::default(),
            ),
            dead_size: add(
                &mut r,
                "dead_size",
                "Entries in a queue's terminal dead list",
                Family::default(),
            ),
            recovered_leases: add(
                &mut r,
                "recovered_leases",
                "Expired leases the janitor returned to their queue",
                Counter::default(),
            ),
            group_notifications: add(
                &mut r,
                "group_notifications",
                "Notifications of aggregation groups handed to the delivery queue",
                Counter::default(),
            ),
            queue_pressure: add(
                &mut r,
                "queue_pressure",
                "Queue depth against its thresholds: 0 normal, 1 over warn, 2 shedding to the DLQ, 3 deferring",
                Family::default(),
            ),
            shed_events: add(
                &mut r,
                "shed_events",
                "Times a queue started shedding, by mode",
                Family::default(),
            ),
            shed_items: add(
                &mut r,
                "shed_items",
                "Items shedding moved to the DLQ",
                Family::default(),
            ),
            remediation_runs: add(
                &mut r,
                "remediation_runs",
                "Remediation runs this worker made",
                Counter::default(),
            ),
            remediation_replayed: add(
                &mut r,
                "remediation_replayed",
                "DLQ entries remediation replayed, by channel",
                Family::default(),
            ),
            remediation_poisoned: add(
                &mut r,
                "remediation_poisoned",
                "DLQ entries the poison guard sent to the dead list during remediation",
                Family::default(),
            ),
            remediation_skipped: add(
                &mut r,
                "remediation_skipped",
                "Channels remediation left alone, by reason",
                Family::default(),
            ),
            remediation_failures: add(
                &mut r,
                "remediation_failures",
                "Remediation runs that failed or ended indeterminate",
                Counter::default(),
            ),
            totals: Arc::new(Totals::default()),
            registry: Arc::new(r),
        }
    }

    /// The OpenMetrics exposition (ends with `# EOF`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn delivery(
        &self,
        channel: &str,
        backend: &'static str,
        outcome: DeliveryOutcome,
        test: bool,
    ) {
        let bump = |n: &AtomicU64| {
            n.fetch_add(1, Ordering::Relaxed);
        };
        match outcome {
            DeliveryOutcome::delivered => bump(&self.totals.delivered),
            DeliveryOutcome::retried => bump(&self.totals.failed),
            DeliveryOutcome::dead_lettered => {
                bump(&self.totals.failed);
                bump(&self.totals.dead_lettered);
            }
            DeliveryOutcome::silenced | DeliveryOutcome::inhibited | DeliveryOutcome::muted => {
                bump(&self.totals.suppressed);
            }
            _ => {}
        }
        self.deliveries
            .get_or_create(&DeliveryLabels {
                channel: channel.to_owned(),
                backend,
                outcome,
                test: if test { "true" } else { "false" },
            })
            .inc();
    }

    /// Create the delivery counters of `channel` at 0 for the outcomes SLOs count, so the first
    /// failure is an increase Prometheus sees, not a new series whose first value it cannot
    /// count.
    pub fn init_channel(&self, channel: &str, backend: &'static str) {
        for outcome in [
            DeliveryOutcome::delivered,
            DeliveryOutcome::retried,
            DeliveryOutcome::dead_lettered,
        ] {
            let _ = self.deliveries.get_or_create(&DeliveryLabels {
                channel: channel.to_owned(),
                backend,
                outcome,
                test: "false",
            });
        }
    }

    /// Create the ingest counters at 0 for `endpoint`: accepted and every refusal that is Ward's
    /// own doing (what the ingest SLO counts).
    pub fn init_ingest(&self, endpoint: &'static str) {
        let _ = self.ingest_requests.get_or_create(&IngestLabels {
            endpoint,
            status: "accepted",
            reason: "",
        });
        for reason in ["queue_full", "shedding", "store"] {
            let _ = self.ingest_requests.get_or_create(&IngestLabels {
                endpoint,
                status: "rejected",
                reason,
            });
        }
    }

    pub fn ingest(&self, endpoint: &'static str, reason: &'static str, count: u64) {
        let status = if reason.is_empty() {
            self.totals.ingested.fetch_add(count, Ordering::Relaxed);
            "accepted"
        } else {
            "rejected"
        };
        self.ingest_requests
            .get_or_create(&IngestLabels {
                endpoint,
                status,
                reason,
            })
            .inc_by(count);
    }

    pub fn set_breaker(&self, channel: &str, state: BreakerState) {
        let value = match state {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
            BreakerState::Disabled => 3,
            BreakerState::ForcedOpen => 4,
        };
        self.breaker_state
            .get_or_create(&ChannelLabels {
                channel: channel.to_owned(),
            })
            .set(value);
    }

    /// Publish the store's figures as gauges.
    pub fn observe_stats(&self, stats: &StoreStats) {
        for q in &stats.queues {
            let labels = QueueLabels {
                queue: q.queue.to_string(),
            };
            let set = |family: &GaugeFamily<QueueLabels>, value: u64| {
                family
                    .get_or_create(&labels)
                    .set(i64::try_from(value).unwrap_or(i64::MAX));
            };
            set(&self.queue_depth, q.depth);
            set(&self.queue_in_flight, q.in_flight);
            set(&self.queue_scheduled, q.scheduled);
            set(&self.dlq_size, q.dlq);
            set(&self.dead_size, q.dead);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_openmetrics_with_ward_prefix() {
        let metrics = Metrics::new();
        metrics.ingest("alerts", "", 3);
        metrics.ingest("alerts", "rate_limit", 1);
        metrics.delivery("slack-ops", "slack", DeliveryOutcome::delivered, false);
        metrics.set_breaker("slack-ops", BreakerState::Open);
        let text = metrics.render();
        assert!(
            text.contains(
                r#"ward_ingest_requests_total{endpoint="alerts",status="accepted",reason=""} 3"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"ward_deliveries_total{channel="slack-ops",backend="slack",outcome="delivered",test="false"} 1"#));
        assert!(text.contains(r#"ward_breaker_state{channel="slack-ops"} 1"#));
        assert!(text.trim_end().ends_with("# EOF"));
    }
}
