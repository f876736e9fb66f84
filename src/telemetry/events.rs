//! One JSON line per delivery attempt, for offline analysis: which backend, what happened, which
//! retry policy, which attempt, the delay chosen, the correlation id.

use std::path::Path;

use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryEvent {
    pub at_ms: i64,
    pub correlation_id: String,
    pub fingerprint: String,
    pub channel: String,
    pub alert_backend: &'static str,
    /// `delivered`, `retried`, `dead_lettered`, `deduplicated`, `rate_limited`, `breaker_open`,
    /// `stopped`.
    pub alert_status: &'static str,
    pub retry_policy: String,
    pub attempt: u32,
    /// The delay before the next attempt, when one was scheduled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_class: Option<String>,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

/// Where events go: a file written by a background task, or nowhere. Recording never blocks a
/// worker: when the writer falls behind by more than the buffer, events are counted as dropped.
#[derive(Debug, Clone)]
pub struct EventLog {
    sender: Option<mpsc::Sender<DeliveryEvent>>,
}

impl EventLog {
    pub fn disabled() -> Self {
        Self { sender: None }
    }

    /// Append events to `path` (created if missing). Returns the log and the writer task.
    pub async fn to_file(path: &Path) -> std::io::Result<(Self, tokio::task::JoinHandle<()>)> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await?;
        let (sender, mut receiver) = mpsc::channel::<DeliveryEvent>(8192);
        let task = tokio::spawn(async move {
            let mut out = tokio::io::BufWriter::new(file);
            while let Some(event) = receiver.recv().await {
                let mut line = serde_json::to_vec(&event).unwrap_or_default();
                line.push(b'\n');
                if out.write_all(&line).await.is_err() {
                    break;
                }
                if receiver.is_empty() && out.flush().await.is_err() {
                    break;
                }
            }
            let _ = out.flush().await;
        });
        Ok((
            Self {
                sender: Some(sender),
            },
            task,
        ))
    }

    pub fn record(&self, event: DeliveryEvent) {
        if let Some(sender) = &self.sender
            && sender.try_send(event).is_err()
        {
            tracing::debug!("delivery event log is behind; event dropped");
        }
    }
}
