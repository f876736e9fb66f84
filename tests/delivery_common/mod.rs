//! Shared by the delivery tests: a realistic job and an address nobody listens on.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};

use ward::delivery::{Disposition, SendError};
use ward::model::{Alert, AlertStatus, DeliveryJob, Severity};

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
