//! The pipeline's sections: `[ingest]`, `[workers]`, `[breaker]`, `[routing]` and `[delivery]`.
//! Each is read whole by serde (unknown keys rejected, every key defaulted) and then validated
//! here, with errors naming the key.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::delivery::Secret;
use crate::engine::ratelimit::RateLimit;
use crate::engine::retry::{Backoff, RetryPolicy};

/// One API key and the tenant it speaks for (none = the request names its tenant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    pub name: String,
    pub key: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// `[ingest]`: the HTTP endpoint alerts arrive on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    pub bind: String,
    pub api_keys: Vec<ApiKey>,
    pub body_limit_bytes: usize,
    pub max_alerts_per_request: usize,
    pub rate_limit: RateLimit,
    pub queue_cap: u64,
    pub default_tenant: String,
    /// Longest wait for a request's headers (and for the next request on a kept-alive
    /// connection); a client that takes longer is disconnected.
    pub header_timeout_ms: u64,
    /// Longest wait for a request's body once its headers are in; then 408.
    pub body_timeout_ms: u64,
    /// Connections open at once; those past it are closed as they arrive.
    pub max_connections: usize,
    /// Requests one kept-alive connection may carry; the last answer closes it.
    pub max_requests_per_connection: u32,
    pub max_labels_per_alert: usize,
    pub max_annotations_per_alert: usize,
    /// Bytes of one alert's label and annotation names and values together.
    pub max_alert_text_bytes: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".to_owned(),
            api_keys: Vec::new(),
            body_limit_bytes: 1024 * 1024,
            max_alerts_per_request: 500,
            rate_limit: RateLimit {
                count: 1000,
                period_ms: 1000,
                burst: 2000,
            },
            queue_cap: 1_000_000,
            default_tenant: "default".to_owned(),
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            max_connections: 4096,
            max_requests_per_connection: 1000,
            max_labels_per_alert: 64,
            max_annotations_per_alert: 64,
            max_alert_text_bytes: 16 * 1024,
        }
    }
}

impl IngestConfig {
    pub(super) fn validate(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, message: String| Err((format!("ingest.{key}"), message));
        if self.bind.parse::<std::net::SocketAddr>().is_err() {
            return bad(
                "bind",
                format!("{:?} is not an address like 127.0.0.1:8080", self.bind),
            );
        }
        if self.body_limit_bytes < 1024 {
            return bad("body_limit_bytes", "must be at least 1024".to_owned());
        }
        if !(1..=10_000).contains(&self.max_alerts_per_request) {
            return bad(
                "max_alerts_per_request",
                "must be between 1 and 10000".to_owned(),
            );
        }
        if self.rate_limit.count == 0
            || self.rate_limit.period_ms == 0
            || self.rate_limit.burst == 0
        {
            return bad(
                "rate_limit",
                "count, period_ms and burst must all be at least 1".to_owned(),
            );
        }
        if self.queue_cap == 0 {
            return bad("queue_cap", "must be at least 1".to_owned());
        }
        let at_least_one = [
            ("header_timeout_ms", self.header_timeout_ms),
            ("body_timeout_ms", self.body_timeout_ms),
            ("max_connections", self.max_connections as u64),
            (
                "max_requests_per_connection",
                u64::from(self.max_requests_per_connection),
            ),
            ("max_labels_per_alert", self.max_labels_per_alert as u64),
        ];
        if let Some((key, _)) = at_least_one.iter().find(|(_, v)| *v == 0) {
            return bad(key, "must be at least 1".to_owned());
        }
        if self.max_connections > 1_000_000 {
            return bad("max_connections", "must be at most 1000000".to_owned());
        }
        if self.max_alert_text_bytes < 256 {
            return bad("max_alert_text_bytes", "must be at least 256".to_owned());
        }
        if let Some(key) = self.api_keys.iter().find(|k| k.key.expose().len() < 16) {
            return bad(
                "api_keys",
                format!("key {:?} is shorter than 16 characters", key.name),
            );
        }
        Ok(())
    }
}

/// `[workers]`: how a worker process runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkersConfig {
    /// Deliveries in flight at once per worker.
    pub concurrency: usize,
    pub send_timeout_ms: u64,
    /// How long a delivered alert is remembered (from its claim) so a duplicate is not sent again.
    pub dedup_ttl_ms: u64,
    pub idle_poll_ms: u64,
    pub scheduler_interval_ms: u64,
    pub stats_interval_ms: u64,
    /// How often workers re-read operator controls (flags, shedding thresholds) and check queue
    /// depths against them; a change announced by the store is read at once.
    pub control_interval_ms: u64,
    /// When a channel is stopped or its breaker open, look again after this long.
    pub recheck_ms: u64,
    /// How often the remediation step replays DLQ entries of healthy channels; 0 turns it off.
    pub remediation_interval_ms: u64,
    /// Only entries that failed at least this long ago are replayed.
    pub remediation_min_age_ms: u64,
    /// Entries per store call when remediation replays.
    pub remediation_batch: usize,
    /// Entries one remediation run replays at most, per channel.
    pub remediation_max_per_run: u64,
    /// After replaying a channel's entries, leave that channel alone this long; 0 = no cooldown.
    pub remediation_cooldown_ms: u64,
    /// Automatic actions of every kind allowed per hour across every worker.
    pub automatic_actions_per_hour: u32,
    /// Automatic replays (remediation runs, one per channel) allowed per hour across every worker.
    pub automatic_replays_per_hour: u32,
    /// Automatic actions are planned and audited but change nothing.
    pub dry_run: bool,
    /// The router sends each alert it routes itself, under its lease on the alert: only a
    /// delivery that must wait (a retry, a deferral, a dead letter) is stored on the delivery
    /// queue. Off, every delivery is stored there for the delivery workers.
    pub deliver_on_route: bool,
    /// Append one JSON line per delivery attempt to this file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_log: Option<PathBuf>,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        Self {
            concurrency: 64,
            send_timeout_ms: 15_000,
            dedup_ttl_ms: 24 * 3_600_000,
            idle_poll_ms: 50,
            scheduler_interval_ms: 250,
            stats_interval_ms: 1_000,
            control_interval_ms: 250,
            recheck_ms: 5_000,
            remediation_interval_ms: 60_000,
            remediation_min_age_ms: 300_000,
            remediation_batch: 100,
            remediation_max_per_run: 1_000,
            remediation_cooldown_ms: 300_000,
            automatic_actions_per_hour: 120,
            automatic_replays_per_hour: 60,
            dry_run: false,
            deliver_on_route: true,
            events_log: None,
        }
    }
}

impl WorkersConfig {
    pub(super) fn validate(&self) -> Result<(), (String, String)> {
        let positive = [
            ("concurrency", self.concurrency as u64),
            ("send_timeout_ms", self.send_timeout_ms),
            ("dedup_ttl_ms", self.dedup_ttl_ms),
            ("idle_poll_ms", self.idle_poll_ms),
            ("scheduler_interval_ms", self.scheduler_interval_ms),
            ("stats_interval_ms", self.stats_interval_ms),
            ("control_interval_ms", self.control_interval_ms),
            ("recheck_ms", self.recheck_ms),
            ("remediation_batch", self.remediation_batch as u64),
            ("remediation_max_per_run", self.remediation_max_per_run),
            (
                "automatic_actions_per_hour",
                u64::from(self.automatic_actions_per_hour),
            ),
            (
                "automatic_replays_per_hour",
                u64::from(self.automatic_replays_per_hour),
            ),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err((format!("workers.{key}"), "must be at least 1".to_owned()));
        }
        if self.remediation_batch > crate::model::MAX_BATCH {
            return Err((
                "workers.remediation_batch".to_owned(),
                format!("must be at most {}", crate::model::MAX_BATCH),
            ));
        }
        Ok(())
    }
}

/// `[delivery]`: channels (`[[delivery.channels]]`) and retry policies.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Where alerts can go: Slack, SMTP, webhook, stdout or null channels, by name.
    pub channels: Vec<crate::delivery::ChannelConfig>,
    /// Named retry policies, beside the built-in `exponential` and `schedule`.
    pub retry_policies: Vec<RetryPolicy>,
}

impl DeliveryConfig {
    pub(super) fn validate(&self) -> Result<(), (String, String)> {
        let mut seen = std::collections::BTreeSet::new();
        for (i, policy) in self.retry_policies.iter().enumerate() {
            let key = |field: &str| format!("delivery.retry_policies[{i}].{field}");
            if policy.name.is_empty() || !seen.insert(policy.name.as_str()) {
                return Err((
                    key("name"),
                    format!("{:?} is empty or used twice", policy.name),
                ));
            }
            if policy.max_attempts == 0 {
                return Err((
                    key("max_attempts"),
                    "must be at least 1 (it counts the first call)".to_owned(),
                ));
            }
            if let Backoff::Schedule { delays } = &policy.backoff
                && delays.is_empty()
            {
                return Err((
                    key("backoff.delays"),
                    "must list at least one delay".to_owned(),
                ));
            }
        }
        Ok(())
    }
}

/// `[breaker]`: thresholds every channel's breaker uses.
pub(super) fn validate_breaker(
    b: &crate::engine::breaker::BreakerConfig,
) -> Result<(), (String, String)> {
    let bad = |key: &str, message: &str| Err((format!("breaker.{key}"), message.to_owned()));
    if !(b.failure_rate_threshold > 0.0 && b.failure_rate_threshold <= 1.0) {
        return bad("failure_rate_threshold", "must be above 0 and at most 1");
    }
    if b.buckets == 0 || b.window_ms < u64::from(b.buckets) {
        return bad("buckets", "must be at least 1 and at most window_ms");
    }
    if b.half_open_probes == 0 {
        return bad("half_open_probes", "must be at least 1");
    }
    if b.open_wait_ms == 0 {
        return bad("open_wait_ms", "must be at least 1");
    }
    Ok(())
}
