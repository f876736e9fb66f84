//! Shared by the delivery tests: a realistic job and an address nobody listens on.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};

use ward::delivery::{Disposition, SendError};
use ward::model::{Alert, AlertStatus, DeliveryJob, GroupNotification, Severity};

/// A firing critical alert for `channel`.
pub fn job(channel: &str) -> DeliveryJob {
    let labels: BTreeMap<String, String> = [
        ("alertname", "HighLatency"),
        ("service", "checkout"),
        ("instance", "api-7:9090"),
        ("team", "payments"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let annotations: BTreeMap<String, String> = [
        ("description", "p99 latency above 2 s for 10 minutes"),
        ("runbook", "https://runbooks.example/latency"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    DeliveryJob {
        alert: Alert {
            fingerprint: ward::model::fingerprint(&labels),
            labels,
            annotations,
            severity: Severity::Critical,
            status: AlertStatus::Firing,
            tenant: "acme".to_owned(),
            starts_at_ms: 1_795_564_800_000,
            ends_at_ms: None,
            generator_url: Some("https://prometheus.example/graph?g0.expr=up".to_owned()),
            correlation_id: "corr-42".to_owned(),
            test: false,
        },
        channel: channel.to_owned(),
        retry_policy: "default".to_owned(),
        previous_delay_ms: None,
        group: None,
    }
}

/// A grouped route's notification for `channel`: `HighLatency` on api-7 and api-8 firing, on
/// api-9 resolved after an earlier notification carried its firing.
pub fn group_job(channel: &str) -> DeliveryJob {
    let alert = |instance: &str, status: AlertStatus| {
        let mut alert = job(channel).alert;
        alert
            .labels
            .insert("instance".to_owned(), format!("{instance}:9090"));
        alert.fingerprint = ward::model::fingerprint(&alert.labels);
        alert.status = status;
        alert.correlation_id = format!("corr-{instance}");
        if status == AlertStatus::Resolved {
            alert.severity = Severity::Major;
            alert.ends_at_ms = Some(alert.starts_at_ms + 600_000);
        }
        alert
    };
    let alerts = vec![
        alert("api-7", AlertStatus::Firing),
        alert("api-8", AlertStatus::Firing),
        alert("api-9", AlertStatus::Resolved),
    ];
    let group = GroupNotification {
        group_key: "payments:{alertname=\"HighLatency\"}".to_owned(),
        route: "payments".to_owned(),
        group_labels: [("alertname".to_owned(), "HighLatency".to_owned())].into(),
        status: AlertStatus::Firing,
        reason: "new alerts added".to_owned(),
        resolved_after_notified: vec![alerts[2].fingerprint.clone()],
        alerts,
    };
    DeliveryJob {
        alert: group.alerts[0].clone(),
        group: Some(group),
        ..job(channel)
    }
}

/// A loopback address that refuses connections: a port that was just free.
pub fn refused_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

pub fn assert_retryable(err: &SendError, class: &str) {
    assert_eq!(err.class, class, "{err}");
    assert_eq!(err.disposition, Disposition::Retryable, "{err}");
}

pub fn assert_permanent(err: &SendError, class: &str) {
    assert_eq!(err.class, class, "{err}");
    assert_eq!(err.disposition, Disposition::Permanent, "{err}");
}

/// None of `texts` contains `secret`.
pub fn assert_hidden(secret: &str, texts: &[String]) {
    for text in texts {
        assert!(
            !text.contains(secret),
            "secret {secret:?} leaked in: {text}"
        );
    }
}
