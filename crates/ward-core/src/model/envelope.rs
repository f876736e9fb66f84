use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::ids::EnvelopeId;

/// A queue's name: lowercase ASCII letters, digits, `_` and `-`, so it is always safe inside a key.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct QueueName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("queue name {0:?} must be 1-64 characters of a-z, 0-9, '_' or '-'")]
pub struct QueueNameError(pub String);

impl QueueName {
    pub fn new(name: &str) -> Result<Self, QueueNameError> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(QueueNameError(name.to_owned()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Where accepted alerts wait for the router.
    pub fn ingest() -> Self {
        Self("ingest".to_owned())
    }
    /// Where routed deliveries wait for a delivery worker.
    pub fn delivery() -> Self {
        Self("delivery".to_owned())
    }
}

impl TryFrom<String> for QueueName {
    type Error = QueueNameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}

impl From<QueueName> for String {
    fn from(value: QueueName) -> Self {
        value.0
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One unit of work in a queue. `attempts` and `replays` are owned by the store (counted
/// server-side by the janitor and the replay guard) and filled in when the envelope is leased.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: EnvelopeId,
    pub idempotency_key: String,
    #[serde(default)]
    pub tenant: String,
    pub payload: Payload,
    pub created_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failure_ms: Option<i64>,
    /// The newest failed attempts (at most `ATTEMPT_HISTORY`), oldest first; entries written
    /// before Ward kept a history have none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<FailedAttempt>,
    #[serde(skip)]
    pub attempts: u32,
    #[serde(skip)]
    pub replays: u32,
}

impl Envelope {
    /// A new envelope; its idempotency key defaults to its id.
    #[allow(
        clippy::needless_pass_by_value,
        reason = "callers build the value inline with json!"
    )]
    pub fn new(tenant: &str, payload: serde_json::Value, now_ms: i64) -> Self {
        Self::with_payload(tenant, Payload::from_value(&payload), now_ms)
    }

    /// A new envelope around an already encoded payload.
    pub fn with_payload(tenant: &str, payload: Payload, now_ms: i64) -> Self {
        let id = EnvelopeId::generate(now_ms);
        Self {
            idempotency_key: id.0.clone(),
            id,
            tenant: tenant.to_owned(),
            payload,
            created_at_ms: now_ms,
            last_error: None,
            first_failure_ms: None,
            history: Vec::new(),
            attempts: 0,
            replays: 0,
        }
    }

    /// Keep a failed attempt in the history, dropping the oldest past `ATTEMPT_HISTORY`.
    pub fn record_attempt(&mut self, attempt: FailedAttempt) {
        self.history.push(attempt);
        let over = self.history.len().saturating_sub(ATTEMPT_HISTORY);
        self.history.drain(..over);
    }

    #[must_use]
    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = key.into();
        self
    }
}

/// An envelope's payload, kept as JSON text: the store moves it without parsing it, and only the
/// stage that reads it decodes it, straight into its own type. Shared, so copies of an envelope
/// (a lease from the memory store, a retry) do not copy the text.
#[derive(Clone)]
pub struct Payload(Arc<serde_json::value::RawValue>);

impl Payload {
    /// Encode `value` as a payload.
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(|raw| Self(Arc::from(raw)))
    }

    /// A payload holding `value`; a JSON value always encodes.
    pub fn from_value(value: &serde_json::Value) -> Self {
        Self::encode(value).unwrap_or_else(|_| Self::null())
    }

    pub fn null() -> Self {
        Self(Arc::from(serde_json::value::RawValue::NULL.to_owned()))
    }

    /// Decode the payload as `T`.
    pub fn decode<'a, T: Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }

    /// The payload parsed into a JSON value (for display and tests).
    pub fn to_value(&self) -> serde_json::Value {
        self.decode().unwrap_or(serde_json::Value::Null)
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }
}

impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Box::<serde_json::value::RawValue>::deserialize(deserializer)
            .map(|raw| Self(Arc::from(raw)))
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many failed attempts an envelope keeps (the newest).
pub const ATTEMPT_HISTORY: usize = 10;
/// The longest error text kept per attempt in the history, in characters.
pub const ATTEMPT_ERROR_CHARS: usize = 500;

/// One failed attempt, as the worker saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedAttempt {
    /// Its number (1 = the first send); attempts a lease expiry took leave gaps.
    #[serde(default)]
    pub attempt: u32,
    pub at_ms: i64,
    /// The channel it was sent to; empty before routing.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub channel: String,
    pub error_class: String,
    /// The error, cut to `ATTEMPT_ERROR_CHARS` characters.
    pub error: String,
}

impl FailedAttempt {
    pub fn new(attempt: u32, at_ms: i64, channel: &str, error_class: &str, error: &str) -> Self {
        Self {
            attempt,
            at_ms,
            channel: channel.to_owned(),
            error_class: error_class.to_owned(),
            error: error.chars().take(ATTEMPT_ERROR_CHARS).collect(),
        }
    }
}

/// Why an envelope failed, as the worker saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureInfo {
    /// A short stable class for grouping and filters: `timeout`, `http_500`, `decode`, `shed`, …
    pub error_class: String,
    pub error_message: String,
    /// The pipeline stage that failed: `ingest`, `route`, `deliver`, …
    pub stage: String,
    /// The channel a delivery failed on; empty before routing.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub channel: String,
}

impl FailureInfo {
    /// Invisible format characters in the message are dropped: it is stored and shown as is.
    pub fn new(error_class: &str, error_message: impl Into<String>, stage: &str) -> Self {
        Self {
            error_class: error_class.to_owned(),
            error_message: super::text::strip_invisible(error_message.into()),
            stage: stage.to_owned(),
            channel: String::new(),
        }
    }

    /// The same failure, on a channel.
    #[must_use]
    pub fn on(mut self, channel: &str) -> Self {
        channel.clone_into(&mut self.channel);
        self
    }
}

/// The metadata the store keeps next to every DLQ or dead entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DlqMeta {
    pub id: EnvelopeId,
    pub queue: QueueName,
    pub tenant: String,
    pub error_class: String,
    pub error_message: String,
    pub stage: String,
    /// The channel a delivery failed on (what remediation and filters select by).
    #[serde(default)]
    pub channel: String,
    pub attempts: u32,
    pub replays: u32,
    pub first_failure_ms: i64,
    pub last_failure_ms: i64,
    /// The entry's position in the DLQ: zero-padded failure time then id, so order and cursors are exact.
    pub key: String,
}

impl DlqMeta {
    pub fn order_key(last_failure_ms: i64, id: &EnvelopeId) -> String {
        format!("{:013}:{}", last_failure_ms.max(0), id.0)
    }
}

/// One DLQ (or dead) entry as read back: its metadata and its envelope, or the raw text when the
/// stored envelope does not decode.
#[derive(Debug, Clone, PartialEq)]
pub struct DlqEntry {
    pub partition: u16,
    pub meta: DlqMeta,
    pub envelope: Result<Envelope, String>,
}
