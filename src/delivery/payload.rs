//! The JSON shapes Ward sends: the generic webhook payload (also the stdout line) and the
//! Moog-style payload (DOMAIN.md §8.4).
//!
//! # Webhook payload, version 1 (`format = "ward"`)
//!
//! Stable: fields may be added, none renamed or removed without a new `version`.
//!
//! ```json
//! {
//!   "version": 1,
//!   "channel": "ops-hook",
//!   "idempotency_key": "01JD…-ops-hook",
//!   "alert": {
//!     "title": "HighLatency",
//!     "description": "p99 above 2 s",
//!     "status": "firing",
//!     "severity": "critical",
//!     "tenant": "acme",
//!     "fingerprint": "3f2a9c0d1e4b5a67",
//!     "correlation_id": "c-42",
//!     "labels": {"alertname": "HighLatency", "service": "api"},
//!     "annotations": {"description": "p99 above 2 s"},
//!     "starts_at_ms": 1764000000000,
//!     "ends_at_ms": null,
//!     "generator_url": "https://prometheus.example/graph?g0.expr=…",
//!     "test": false
//!   }
//! }
//! ```
//!
//! `status` is `firing` or `resolved`; `severity` one of `info`, `minor`, `warning`, `major`,
//! `critical`; `ends_at_ms` and `generator_url` are `null` when unknown. The same key is sent in
//! the `Idempotency-Key` header.
//!
//! # Moog payload (`format = "moog"`)
//!
//! MUTT's forwarder shape: `signature` and `source_id` are the host (`hostname`, `host` or
//! `instance` label, else the tenant), `external_id` the correlation id, `class` the team
//! (`team_assignment` or `team` label, else the tenant), `severity` Moog's integer (Critical 5 …
//! Info 1, **0 = Clear for a resolved alert**), `description` the title and description,
//! `agent_time` epoch seconds of the event (start, or end once resolved), `custom_info` the whole
//! version-1 payload above.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::model::{Alert, AlertStatus, DeliveryJob, Severity};

/// Version of [`WebhookPayload`].
pub const WEBHOOK_PAYLOAD_VERSION: u32 = 1;

/// The generic webhook body and the stdout line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookPayload<'a> {
    pub version: u32,
    pub channel: &'a str,
    pub idempotency_key: &'a str,
    pub alert: AlertPayload<'a>,
}

/// The alert inside [`WebhookPayload`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertPayload<'a> {
    pub title: &'a str,
    pub description: &'a str,
    pub status: AlertStatus,
    pub severity: Severity,
    pub tenant: &'a str,
    pub fingerprint: &'a str,
    pub correlation_id: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub annotations: &'a BTreeMap<String, String>,
    pub starts_at_ms: i64,
    pub ends_at_ms: Option<i64>,
    pub generator_url: Option<&'a str>,
    pub test: bool,
}

impl<'a> WebhookPayload<'a> {
    pub fn new(job: &'a DeliveryJob, idempotency_key: &'a str) -> Self {
        let alert = &job.alert;
        Self {
            version: WEBHOOK_PAYLOAD_VERSION,
            channel: &job.channel,
            idempotency_key,
            alert: AlertPayload {
                title: alert.title(),
                description: alert.description(),
                status: alert.status,
                severity: alert.severity,
                tenant: &alert.tenant,
                fingerprint: &alert.fingerprint,
                correlation_id: &alert.correlation_id,
                labels: &alert.labels,
                annotations: &alert.annotations,
                starts_at_ms: alert.starts_at_ms,
                ends_at_ms: alert.ends_at_ms,
                generator_url: alert.generator_url.as_deref(),
                test: alert.test,
            },
        }
    }
}

/// `manager` in the Moog payload.
pub const MOOG_MANAGER: &str = "Ward";
/// `source` in the Moog payload.
pub const MOOG_SOURCE: &str = "Ward Delivery";
/// `agent_location` in the Moog payload.
pub const MOOG_AGENT_LOCATION: &str = "Delivery Worker";

/// A Moogsoft event (DOMAIN.md §8.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MoogPayload<'a> {
    pub signature: &'a str,
    pub source_id: &'a str,
    pub external_id: &'a str,
    pub manager: &'static str,
    pub source: &'static str,
    pub class: &'a str,
    pub agent: String,
    pub agent_location: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub severity: u8,
    pub description: String,
    pub agent_time: i64,
    pub custom_info: WebhookPayload<'a>,
}

impl<'a> MoogPayload<'a> {
    pub fn new(job: &'a DeliveryJob, idempotency_key: &'a str) -> Self {
        let alert = &job.alert;
        let host = first_label(alert, &["hostname", "host", "instance"]).unwrap_or(&alert.tenant);
        let class = first_label(alert, &["team_assignment", "team"]).unwrap_or(&alert.tenant);
        let (severity, event_ms) = match alert.status {
            AlertStatus::Firing => (alert.severity.moog_level(), alert.starts_at_ms),
            AlertStatus::Resolved => (0, alert.ends_at_ms.unwrap_or(alert.starts_at_ms)),
        };
        let mut description = String::new();
        if alert.test {
            description.push_str("[TEST] ");
        }
        description.push_str(alert.title());
        if !alert.description().is_empty() {
            description.push_str(": ");
            description.push_str(alert.description());
        }
        Self {
            signature: host,
            source_id: host,
            external_id: &alert.correlation_id,
            manager: MOOG_MANAGER,
            source: MOOG_SOURCE,
            class,
            agent: format!("Ward v{}", env!("CARGO_PKG_VERSION")),
            agent_location: MOOG_AGENT_LOCATION,
            kind: "Alert",
            severity,
            description,
            agent_time: event_ms.div_euclid(1000),
            custom_info: WebhookPayload::new(job, idempotency_key),
        }
    }
}

fn first_label<'a>(alert: &'a Alert, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .filter_map(|key| alert.labels.get(*key))
        .map(String::as_str)
        .find(|value| !value.is_empty())
}

/// `Tue, 24 Nov 2026 10:00:00 GMT`, or the raw number if it is before 1970.
pub(crate) fn time_text(ms: i64) -> String {
    u64::try_from(ms).map_or_else(
        |_| ms.to_string(),
        |ms| httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_millis(ms)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(status: AlertStatus) -> DeliveryJob {
        let labels: BTreeMap<String, String> = [
            ("alertname", "DiskFull"),
            ("instance", "db-1:9100"),
            ("team", "storage"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        DeliveryJob {
            alert: Alert {
                labels,
                annotations: [("description".to_owned(), "95% used".to_owned())].into(),
                severity: Severity::Major,
                status,
                tenant: "acme".to_owned(),
                fingerprint: "0011223344556677".to_owned(),
                starts_at_ms: 1_764_000_000_123,
                ends_at_ms: Some(1_764_000_600_999),
                generator_url: None,
                correlation_id: "corr-1".to_owned(),
                test: false,
            },
            channel: "moog".to_owned(),
            retry_policy: "default".to_owned(),
            previous_delay_ms: None,
            group: None,
        }
    }

    #[test]
    fn webhook_payload_shape_is_stable() {
        let job = job(AlertStatus::Firing);
        let json = serde_json::to_value(WebhookPayload::new(&job, "key-1")).unwrap();
        assert_eq!(json["version"], 1);
        assert_eq!(json["channel"], "moog");
        assert_eq!(json["idempotency_key"], "key-1");
        let alert = &json["alert"];
        assert_eq!(alert["title"], "DiskFull");
        assert_eq!(alert["description"], "95% used");
        assert_eq!(alert["status"], "firing");
        assert_eq!(alert["severity"], "major");
        assert_eq!(alert["labels"]["team"], "storage");
        assert_eq!(alert["starts_at_ms"], 1_764_000_000_123_i64);
        assert!(alert["generator_url"].is_null());
        assert_eq!(alert["test"], false);
        let keys: Vec<&str> = alert
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 13, "{keys:?}");
    }

    #[test]
    fn times_render_as_http_dates() {
        assert_eq!(time_text(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(time_text(-5), "-5");
    }

    #[test]
    fn moog_payload_maps_mutt_fields() {
        let firing = job(AlertStatus::Firing);
        let json = serde_json::to_value(MoogPayload::new(&firing, "key-1")).unwrap();
        assert_eq!(json["signature"], "db-1:9100");
        assert_eq!(json["source_id"], "db-1:9100");
        assert_eq!(json["external_id"], "corr-1");
        assert_eq!(json["class"], "storage");
        assert_eq!(json["type"], "Alert");
        assert_eq!(json["severity"], 4);
        assert_eq!(json["description"], "DiskFull: 95% used");
        assert_eq!(json["agent_time"], 1_764_000_000);
        assert_eq!(json["manager"], MOOG_MANAGER);
        assert_eq!(json["custom_info"]["idempotency_key"], "key-1");

        let resolved = job(AlertStatus::Resolved);
        let json = serde_json::to_value(MoogPayload::new(&resolved, "k")).unwrap();
        assert_eq!(json["severity"], 0, "resolved is Clear");
        assert_eq!(json["agent_time"], 1_764_000_600);
    }
}
