//! Domain types shared by every layer. Imports nothing else from the crate.

mod alert;
mod dlq;
mod dlq_query;
mod envelope;
pub mod format;
mod ids;
pub mod mutt;
mod silence;
mod state;
mod text;
pub mod time;

pub use alert::{
    Alert, AlertStatus, DeliveryJob, GroupNotification, Severity, TEST_CHANNEL_LABEL, fingerprint,
};
pub use dlq::{AlertGlance, redact};
pub use dlq_query::{
    DlqCursor, DlqFilter, DlqGroup, DlqScope, FailedSet, GROUP_BUCKET_MS, MAX_BATCH, merge_groups,
};
pub use envelope::{
    ATTEMPT_ERROR_CHARS, ATTEMPT_HISTORY, DlqEntry, DlqMeta, Envelope, FailedAttempt, FailureInfo,
    Payload, QueueName, QueueNameError,
};
pub use ids::{EnvelopeId, WorkerId, derived_ulid, new_ulid, ulid_timestamp_ms};
pub use silence::{
    LabelMatcher, MatchOp, RESOLVE_TIMEOUT_MS, SEEN_RETENTION_MS, SILENCE_RETENTION_MS, SeenAlert,
    Silence, SilenceKind, SilenceState, Suppression, labels_with_severity, match_labels,
    matchers_text,
};
pub use state::{
    AuditEntry, AuditRecord, Flag, FlagState, Profile, QueueStats, Role, SCHEDULED_SAMPLE,
    ScheduledChannel, ScheduledItem, ScheduledSummary, ShedMode, StoreStats, TestDelivery,
    TestStatus, Threshold, WorkerBeat,
};
pub use text::{is_invisible_format, sanitize, strip_invisible};
