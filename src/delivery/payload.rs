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
//! ## `group` (grouped routes only)
//!
//! A route that groups alerts (Alertmanager's `group_by`) sends one notification per
//! aggregation group. Its payload has the fields above, with `alert` the group's first alert
//! (so a receiver reading one alert keeps working), plus a `group` object; the key is absent
//! for an ungrouped alert:
//!
//! ```json
//! "group": {
//!   "group_key": "ops:{alertname=\"DiskFull\"}",
//!   "route": "ops",
//!   "group_labels": {"alertname": "DiskFull"},
//!   "status": "firing",
//!   "notification_reason": "new alerts added",
//!   "title": "[FIRING:2] ops:{alertname=\"DiskFull\"}",
//!   "alerts": [
//!     {"title": "DiskFull", "status": "firing", "fingerprint": "…", "…": "…"},
//!     {"title": "DiskFull", "status": "firing", "fingerprint": "…", "…": "…"},
//!     {"title": "DiskFull", "status": "resolved", "ends_at_ms": 1764000600000, "…": "…"}
//!   ],
//!   "resolved_after_notified": ["5e6f…"]
//! }
//! ```
//!
//! `status` is `firing` when any listed alert fires, else `resolved`. `alerts` holds every
//! alert of the notification in the shape of `alert` above, firing first, then resolved (each
//! with its own `status` and `ends_at_ms`). `resolved_after_notified` lists the fingerprints of
//! resolved alerts whose firing an earlier notification of the group carried (a receiver can
//! pair them with it); it is `[]` when there are none.
//!
//! # Moog payload (`format = "moog"`)
//!
//! MUTT's forwarder shape: `signature` and `source_id` are the host (`hostname`, `host` or
//! `instance` label, else the tenant), `external_id` the correlation id, `class` the team
//! (`team_assignment` or `team` label, else the tenant), `severity` Moog's integer (Critical 5 …
//! Info 1, **0 = Clear for a resolved alert**), `description` the title and description,
//! `agent_time` epoch seconds of the event (start, or end once resolved), `custom_info` the whole
//! version-1 payload above.
//!
//! Moog deduplicates one event per alert, so a grouped notification is still **one** event, built
//! from the job's `alert` (the group's first: a firing one while any fires, else the first
//! resolved one, which then clears it); every other alert of the group, firing or resolved,
//! reaches Moog only inside `custom_info.group`. A route whose alerts each need their own Moog
//! event and clear should not group.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::model::{Alert, AlertStatus, DeliveryJob, GroupNotification, Severity};

/// Version of [`WebhookPayload`].
pub const WEBHOOK_PAYLOAD_VERSION: u32 = 1;

/// The generic webhook body and the stdout line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookPayload<'a> {
    pub version: u32,
    pub channel: &'a str,
    pub idempotency_key: &'a str,
    pub alert: AlertPayload<'a>,
    /// A grouped route's notification; absent for an ungrouped alert.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupPayload<'a>>,
}

/// The `group` object of [`WebhookPayload`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupPayload<'a> {
    pub group_key: &'a str,
    pub route: &'a str,
    pub group_labels: &'a BTreeMap<String, String>,
    pub status: AlertStatus,
    pub notification_reason: &'a str,
    pub title: String,
    pub alerts: Vec<AlertPayload<'a>>,
    pub resolved_after_notified: &'a [String],
}

impl<'a> GroupPayload<'a> {
    pub fn new(group: &'a GroupNotification) -> Self {
        Self {
            group_key: &group.group_key,
            route: &group.route,
            group_labels: &group.group_labels,
            status: group.status,
            notification_reason: &group.reason,
            title: group.title(),
            alerts: group.alerts.iter().map(AlertPayload::new).collect(),
            resolved_after_notified: &group.resolved_after_notified,
        }
    }
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

impl<'a> AlertPayload<'a> {
    pub fn new(alert: &'a Alert) -> Self {
        Self {
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
        }
    }
}

impl<'a> WebhookPayload<'a> {
    pub fn new(job: &'a DeliveryJob, idempotency_key: &'a str) -> Self {
        Self {
            version: WEBHOOK_PAYLOAD_VERSION,
            channel: &job.channel,
            idempotency_key,
            alert: AlertPayload::new(&job.alert),
            group: job.group.as_ref().map(GroupPayload::new),
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
    use serde_json::json;

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

    #[test]
    fn ungrouped_payload_has_no_group_key() {
        let job = job(AlertStatus::Firing);
        let json = serde_json::to_value(WebhookPayload::new(&job, "k")).unwrap();
        assert!(json.get("group").is_none(), "{json}");
    }

    #[test]
    fn group_payload_lists_every_alert_with_its_status() {
        let job = crate::delivery::test_support::group_of_three("hook");
        let json = serde_json::to_value(WebhookPayload::new(&job, "k")).unwrap();
        assert_eq!(json["alert"]["labels"]["instance"], "db-1");
        let group = &json["group"];
        assert_eq!(group["group_key"], "ops:{alertname=\"DiskFull\"}");
        assert_eq!(group["route"], "ops");
        assert_eq!(group["group_labels"]["alertname"], "DiskFull");
        assert_eq!(group["status"], "firing");
        assert_eq!(group["notification_reason"], "new alerts added");
        assert_eq!(group["title"], "[FIRING:2] ops:{alertname=\"DiskFull\"}");
        let alerts = group["alerts"].as_array().unwrap();
        let shape: Vec<(&str, &str)> = alerts
            .iter()
            .map(|a| {
                (
                    a["labels"]["instance"].as_str().unwrap(),
                    a["status"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [("db-1", "firing"), ("db-2", "firing"), ("db-3", "resolved")]
        );
        assert!(alerts[0]["ends_at_ms"].is_null());
        assert_eq!(alerts[2]["ends_at_ms"], 1_764_000_600_000_i64);
        assert_eq!(alerts[2].as_object().unwrap().len(), 13);
        assert_eq!(
            group["resolved_after_notified"],
            json!([alerts[2]["fingerprint"]])
        );
    }

    #[test]
    fn moog_sends_one_event_for_the_group_with_the_group_inside() {
        let job = crate::delivery::test_support::group_of_three("moog");
        let json = serde_json::to_value(MoogPayload::new(&job, "k")).unwrap();
        assert_eq!(json["signature"], "db-1");
        assert_eq!(json["severity"], 4);
        assert_eq!(
            json["custom_info"]["group"]["alerts"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
    }
}
