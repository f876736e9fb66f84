//! Grouped jobs shared by the backends' unit tests.

use std::collections::BTreeMap;

use crate::model::{Alert, AlertStatus, DeliveryJob, GroupNotification, Severity};

/// A `DiskFull` alert on `instance`, firing or resolved (then ended ten minutes later).
pub(crate) fn disk_alert(instance: &str, status: AlertStatus) -> Alert {
    let labels: BTreeMap<String, String> = [
        ("alertname", "DiskFull"),
        ("instance", instance),
        ("team", "storage"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    Alert {
        fingerprint: crate::model::fingerprint(&labels),
        labels,
        annotations: [("summary".to_owned(), format!("{instance} disk above 90%"))].into(),
        severity: Severity::Major,
        status,
        tenant: "acme".to_owned(),
        starts_at_ms: 1_764_000_000_000,
        ends_at_ms: (status == AlertStatus::Resolved).then_some(1_764_000_600_000),
        generator_url: Some("https://prom.example/graph?g0.expr=disk".to_owned()),
        correlation_id: format!("corr-{instance}"),
        test: false,
    }
}

/// A group job listing `alerts` (firing first), every resolved one notified firing before.
pub(crate) fn group_job(channel: &str, alerts: Vec<Alert>) -> DeliveryJob {
    let status = if alerts.iter().any(|a| a.status == AlertStatus::Firing) {
        AlertStatus::Firing
    } else {
        AlertStatus::Resolved
    };
    let resolved_after_notified = alerts
        .iter()
        .filter(|a| a.status == AlertStatus::Resolved)
        .map(|a| a.fingerprint.clone())
        .collect();
    let group = GroupNotification {
        group_key: "ops:{alertname=\"DiskFull\"}".to_owned(),
        route: "ops".to_owned(),
        group_labels: [("alertname".to_owned(), "DiskFull".to_owned())].into(),
        status,
        reason: "new alerts added".to_owned(),
        alerts,
        resolved_after_notified,
    };
    DeliveryJob {
        alert: group.alerts[0].clone(),
        channel: channel.to_owned(),
        retry_policy: "default".to_owned(),
        previous_delay_ms: None,
        group: Some(group),
    }
}

/// Two firing alerts (db-1, db-2) and one resolved (db-3) that was notified firing.
pub(crate) fn group_of_three(channel: &str) -> DeliveryJob {
    group_job(
        channel,
        vec![
            disk_alert("db-1", AlertStatus::Firing),
            disk_alert("db-2", AlertStatus::Firing),
            disk_alert("db-3", AlertStatus::Resolved),
        ],
    )
}
