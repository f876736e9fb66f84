//! What a DLQ entry says to an operator, the same in the control room and `ward dlq`: its
//! alert's name and severity, its attempt history, and its content with secrets redacted.

use super::envelope::{DlqEntry, FailedAttempt};

/// Keys whose values are secrets wherever they appear in a payload.
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "webhook_url",
    "auth",
];

/// Replace the value of every secret-named key, at any depth, with `***`.
pub fn redact(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let k = key.to_lowercase();
                if SECRET_KEYS.iter().any(|s| k.contains(s)) {
                    *v = serde_json::Value::String("***".to_owned());
                } else {
                    redact(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// An entry's alert at a glance (unsanitised: callers fit or escape it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertGlance {
    /// The `alertname` label, else empty.
    pub alertname: String,
    /// The alert's severity, else empty.
    pub severity: String,
}

impl DlqEntry {
    /// The alert's name and severity: from the payload's `alert` (a delivery job) or the payload
    /// itself (an ingest entry); empty when the payload is not an alert.
    pub fn glance(&self) -> AlertGlance {
        let Ok(envelope) = &self.envelope else {
            return AlertGlance::default();
        };
        let payload = envelope.payload.to_value();
        let alert = payload
            .get("alert")
            .filter(|a| a.is_object())
            .unwrap_or(&payload);
        let text = |v: Option<&serde_json::Value>| {
            v.and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        AlertGlance {
            alertname: text(alert.get("labels").and_then(|l| l.get("alertname"))),
            severity: text(alert.get("severity")),
        }
    }

    /// The alert's labels as silences see them (string labels, with `severity` from the field
    /// when no label carries it): from the payload's `alert` or the payload itself; empty when
    /// the payload is not an alert. Unsanitised.
    pub fn alert_labels(&self) -> std::collections::BTreeMap<String, String> {
        let Ok(envelope) = &self.envelope else {
            return std::collections::BTreeMap::new();
        };
        let payload = envelope.payload.to_value();
        let alert = payload
            .get("alert")
            .filter(|a| a.is_object())
            .unwrap_or(&payload);
        let mut labels: std::collections::BTreeMap<String, String> = alert
            .get("labels")
            .and_then(serde_json::Value::as_object)
            .map(|map| {
                map.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        if !labels.is_empty()
            && let Some(severity) = alert.get("severity").and_then(serde_json::Value::as_str)
        {
            labels
                .entry("severity".to_owned())
                .or_insert_with(|| severity.to_owned());
        }
        labels
    }

    /// Every failed attempt known, oldest first: those the envelope kept (at most
    /// `ATTEMPT_HISTORY`), then the failure that put it here, from the metadata.
    pub fn attempt_history(&self) -> Vec<FailedAttempt> {
        let mut history = self
            .envelope
            .as_ref()
            .map(|e| e.history.clone())
            .unwrap_or_default();
        let meta = &self.meta;
        let last = FailedAttempt::new(
            meta.attempts,
            meta.last_failure_ms,
            &meta.channel,
            &meta.error_class,
            &meta.error_message,
        );
        let already = history
            .last()
            .is_some_and(|a| a.at_ms == last.at_ms && a.error_class == last.error_class);
        if !already {
            history.push(last);
        }
        history
    }

    /// The entry as one JSON document, secrets redacted: metadata, attempt history, envelope
    /// fields and payload (or the stored text when it does not decode).
    pub fn document(&self) -> serde_json::Value {
        let mut doc = serde_json::json!({
            "meta": self.meta,
            "partition": self.partition,
            "attempt_history": self.attempt_history(),
        });
        match &self.envelope {
            Ok(envelope) => {
                doc["tenant"] = serde_json::Value::String(envelope.tenant.clone());
                doc["created_at_ms"] = envelope.created_at_ms.into();
                doc["idempotency_key"] =
                    serde_json::Value::String(envelope.idempotency_key.clone());
                doc["payload"] = envelope.payload.to_value();
            }
            Err(raw) => doc["undecodable"] = serde_json::Value::String(raw.clone()),
        }
        redact(&mut doc);
        doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DlqMeta, Envelope, EnvelopeId, QueueName};

    fn entry(payload: serde_json::Value) -> DlqEntry {
        let mut envelope = Envelope::new("acme", payload, 1_000);
        envelope.record_attempt(FailedAttempt::new(1, 1_000, "slack", "http_500", "500"));
        let id = EnvelopeId("01ENTRY".to_owned());
        DlqEntry {
            partition: 0,
            meta: DlqMeta {
                id: id.clone(),
                queue: QueueName::delivery(),
                tenant: "acme".to_owned(),
                error_class: "timeout".to_owned(),
                error_message: "no answer".to_owned(),
                stage: "deliver".to_owned(),
                channel: "slack".to_owned(),
                attempts: 2,
                replays: 0,
                first_failure_ms: 1_000,
                last_failure_ms: 2_000,
                key: DlqMeta::order_key(2_000, &id),
            },
            envelope: Ok(envelope),
        }
    }

    #[test]
    fn a_delivery_job_or_an_alert_gives_its_name_and_severity() {
        let alert =
            serde_json::json!({"labels": {"alertname": "DiskFull"}, "severity": "critical"});
        let glance = entry(serde_json::json!({ "alert": alert, "channel": "slack" })).glance();
        assert_eq!(glance.alertname, "DiskFull");
        assert_eq!(glance.severity, "critical");
        assert_eq!(entry(alert).glance().alertname, "DiskFull");
        assert_eq!(entry(serde_json::json!(7)).glance(), AlertGlance::default());
    }

    #[test]
    fn the_history_ends_with_the_failure_that_dead_lettered_it() {
        let history = entry(serde_json::json!({})).attempt_history();
        let classes: Vec<_> = history.iter().map(|a| a.error_class.as_str()).collect();
        assert_eq!(classes, ["http_500", "timeout"]);
        assert_eq!(history[1].attempt, 2);
    }

    #[test]
    fn the_document_redacts_secrets_at_any_depth() {
        let doc = entry(serde_json::json!({"alert": {"annotations": {"api_key": "k"}}})).document();
        assert_eq!(doc["payload"]["alert"]["annotations"]["api_key"], "***");
        assert_eq!(doc["attempt_history"][0]["channel"], "slack");
    }
}
