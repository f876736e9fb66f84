//! Stdout: one JSON line per job ([`WebhookPayload`], version 1, with its `group` for a grouped
//! route's notification) through one shared, locked
//! writer, so lines from concurrent workers never interleave. Also the fallback for a
//! misconfigured channel.
//!
//! It never fails except when the output is gone (a closed pipe: `stdout_closed`, any other
//! write error: `io`), both retryable: the job stays queued until someone reads again.

use std::fmt;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;

use super::payload::WebhookPayload;
use super::{Backend, BackendKind, SendError};
use crate::model::DeliveryJob;

/// A writer shared by every stdout backend. Tests pass `Arc::new(Mutex::new(Vec::new()))`.
pub type SharedWriter = Arc<Mutex<dyn Write + Send>>;

/// The process's stdout, one lock for all backends.
pub fn shared_stdout() -> SharedWriter {
    static STDOUT: OnceLock<SharedWriter> = OnceLock::new();
    Arc::clone(STDOUT.get_or_init(|| Arc::new(Mutex::new(io::stdout()))))
}

/// Writes each job as one JSON line.
pub struct StdoutBackend {
    name: String,
    writer: SharedWriter,
}

impl StdoutBackend {
    /// Writes to the process's stdout.
    pub fn new(name: impl Into<String>) -> Self {
        Self::with_writer(name, shared_stdout())
    }

    /// Writes to `writer` (tests capture output this way).
    pub fn with_writer(name: impl Into<String>, writer: SharedWriter) -> Self {
        Self {
            name: name.into(),
            writer,
        }
    }
}

impl fmt::Debug for StdoutBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StdoutBackend")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Backend for StdoutBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Stdout
    }

    async fn send(&self, job: &DeliveryJob, idempotency_key: &str) -> Result<(), SendError> {
        let mut line = serde_json::to_vec(&WebhookPayload::new(job, idempotency_key))
            .map_err(|err| SendError::permanent("invalid_payload", err.to_string()))?;
        line.push(b'\n');
        // A panic while holding the lock cannot leave a half-valid writer worse than a torn
        // line, so a poisoned lock is still used.
        let mut writer = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        writer
            .write_all(&line)
            .and_then(|()| writer.flush())
            .map_err(|err| classify_io(&err))
    }
}

/// A closed pipe is `stdout_closed`, anything else `io`; both retryable.
pub(crate) fn classify_io(err: &io::Error) -> SendError {
    let class = if err.kind() == io::ErrorKind::BrokenPipe {
        "stdout_closed"
    } else {
        "io"
    };
    SendError::retryable(class, format!("cannot write to stdout: {err}"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::delivery::{Disposition, NullBackend};
    use crate::model::{Alert, AlertStatus, Severity};

    fn job() -> DeliveryJob {
        DeliveryJob {
            alert: Alert {
                labels: [("alertname".to_owned(), "Down".to_owned())].into(),
                annotations: BTreeMap::new(),
                severity: Severity::Critical,
                status: AlertStatus::Firing,
                tenant: "acme".to_owned(),
                fingerprint: "0123456789abcdef".to_owned(),
                starts_at_ms: 1,
                ends_at_ms: None,
                generator_url: None,
                correlation_id: "c".to_owned(),
                test: false,
            },
            channel: "debug".to_owned(),
            retry_policy: "default".to_owned(),
            previous_delay_ms: None,
            group: None,
        }
    }

    /// Refuses every write, like stdout after the reader went away.
    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _buf: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn writes_one_json_line_per_job() {
        let captured = Arc::new(Mutex::new(Vec::<u8>::new()));
        let writer: SharedWriter = captured.clone();
        let a = StdoutBackend::with_writer("debug", Arc::clone(&writer));
        let b = StdoutBackend::with_writer("other", writer);
        a.send(&job(), "k1").await.unwrap();
        b.send(&job(), "k2").await.unwrap();
        let text = String::from_utf8(captured.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["idempotency_key"], "k1");
        assert_eq!(lines[1]["idempotency_key"], "k2");
        assert_eq!(lines[0]["version"], 1);
        assert_eq!(lines[0]["alert"]["title"], "Down");
        assert!(text.ends_with('\n'));
    }

    #[tokio::test]
    async fn a_group_is_one_line_carrying_every_alert() {
        let captured = Arc::new(Mutex::new(Vec::<u8>::new()));
        let backend = StdoutBackend::with_writer("debug", captured.clone());
        let mut job = crate::delivery::test_support::group_of_three("debug");
        job.group.as_mut().unwrap().alerts[0]
            .labels
            .insert("instance".to_owned(), "db-1\n{\"x\":1}\u{7}".to_owned());
        backend.send(&job, "k").await.unwrap();
        let text = String::from_utf8(captured.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        let line: serde_json::Value = serde_json::from_str(&text).unwrap();
        let group = &line["group"];
        assert_eq!(group["status"], "firing");
        assert_eq!(group["notification_reason"], "new alerts added");
        let statuses: Vec<&str> = group["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["firing", "firing", "resolved"]);
        assert_eq!(
            group["alerts"][0]["labels"]["instance"],
            "db-1\n{\"x\":1}\u{7}"
        );
        assert_eq!(
            group["resolved_after_notified"].as_array().unwrap().len(),
            1
        );
    }

    #[tokio::test]
    async fn a_closed_pipe_is_the_only_failure() {
        let backend = StdoutBackend::with_writer("debug", Arc::new(Mutex::new(ClosedPipe)));
        let err = backend.send(&job(), "k").await.unwrap_err();
        assert_eq!(err.class, "stdout_closed");
        assert_eq!(err.disposition, Disposition::Retryable);
    }

    #[tokio::test]
    async fn null_accepts_everything() {
        let null = NullBackend::new("bench");
        for _ in 0..3 {
            null.send(&job(), "k").await.unwrap();
        }
        assert_eq!(null.accepted(), 3);
        assert_eq!(null.kind(), BackendKind::Null);
    }

    #[test]
    fn broken_pipe_is_retryable() {
        let err = classify_io(&io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(err.class, "stdout_closed");
        assert_eq!(err.disposition, Disposition::Retryable);
        let err = classify_io(&io::Error::other("disk full"));
        assert_eq!(err.class, "io");
        assert_eq!(err.disposition, Disposition::Retryable);
    }
}
