//! Delivery backends behind one trait: Slack, SMTP, generic webhook, stdout.
//!
//! A backend sends one job and classifies any failure; the delivery worker owns retries, the
//! breaker and the DLQ. Every error message a backend returns is already free of secrets.
//!
//! Channels are configured as a `[[channels]]` list (see [`config`]); [`build_backends`] turns
//! that list into backends, replacing a misconfigured channel by a stdout backend of the same
//! name and reporting why.

pub mod config;
mod http;
pub mod null;
pub mod payload;
pub mod secret;
pub mod slack;
pub mod smtp;
pub mod stdout;
#[cfg(test)]
mod test_support;
pub mod webhook;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::model::DeliveryJob;

pub use config::{ChannelConfig, ChannelsSection, ConfigProblem, build_backends};
pub use http::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, HttpTimeouts, parse_retry_after};
pub use null::NullBackend;
pub use secret::{Secret, redact_url};
pub use slack::SlackBackend;
pub use smtp::SmtpBackend;
pub use stdout::{SharedWriter, StdoutBackend};
pub use webhook::WebhookBackend;

/// What a failure means for the next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Worth trying again (5xx, timeout, connection refused): a breaker failure.
    Retryable,
    /// The receiver asked us to slow down (429): retry no earlier than this, not a breaker
    /// failure. `None` when it gave no usable `Retry-After`.
    RateLimited(Option<Duration>),
    /// Will never work as sent (4xx other than 429, bad address, a reply that is not HTTP):
    /// straight to the DLQ.
    Permanent,
}

/// A classified delivery failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{class}: {message}")]
pub struct SendError {
    /// Short and stable, for metrics and DLQ filters: `http_500`, `http_429`, `timeout`,
    /// `connect`, `network`, `protocol`, `smtp_550`, `invalid_payload`, …
    pub class: String,
    /// Human-readable detail, secrets redacted.
    pub message: String,
    pub disposition: Disposition,
}

impl SendError {
    pub fn retryable(class: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(class.into(), message.into(), Disposition::Retryable)
    }
    pub fn permanent(class: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(class.into(), message.into(), Disposition::Permanent)
    }
    pub fn rate_limited(message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        Self::new(
            "http_429".to_owned(),
            message.into(),
            Disposition::RateLimited(retry_after),
        )
    }

    /// Every delivery error is built here: the receiver's words lose their invisible format
    /// characters (zero-width, bidi) once, before they reach the DLQ, the history or a log.
    fn new(class: String, message: String, disposition: Disposition) -> Self {
        Self {
            class,
            message: crate::model::strip_invisible(message),
            disposition,
        }
    }
}

/// Which implementation a configured channel uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    Slack,
    Smtp,
    Webhook,
    Stdout,
    /// Accepts everything, sends nothing: benchmarks and dry runs.
    Null,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Smtp => "smtp",
            Self::Webhook => "webhook",
            Self::Stdout => "stdout",
            Self::Null => "null",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a channel's settings cannot make a working backend. Messages never contain a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("`{field}` is empty")]
    Empty { field: &'static str },
    #[error("`{field}` is not a valid URL: {reason}")]
    InvalidUrl { field: &'static str, reason: String },
    #[error("`{field}` must be an http or https URL, not {scheme}:")]
    UnsupportedScheme { field: &'static str, scheme: String },
    #[error("`{field}` {value:?} is not a valid mail address: {reason}")]
    InvalidAddress {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("`{field}` is invalid: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("`{field}` must be greater than zero")]
    ZeroTimeout { field: &'static str },
    #[error("`{field}` is set but `{missing}` is not")]
    Incomplete {
        field: &'static str,
        missing: &'static str,
    },
    #[error("cannot set up TLS for {host:?}: {reason}")]
    Tls { host: String, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(String),
}

/// A configured channel.
#[async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// The channel's configured name (e.g. `slack-ops`): metric label and breaker key.
    fn name(&self) -> &str;
    fn kind(&self) -> BackendKind;
    /// Send one job. `idempotency_key` goes to the receiver where it can use one
    /// (webhook header `Idempotency-Key`), so a re-delivery is a no-op there too.
    async fn send(&self, job: &DeliveryJob, idempotency_key: &str) -> Result<(), SendError>;
}
