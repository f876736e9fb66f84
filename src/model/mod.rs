//! Domain types shared by every layer. Imports nothing else from the crate.

mod alert;
mod envelope;
mod ids;
pub mod mutt;
mod state;
mod text;
pub mod time;

pub use alert::{Alert, AlertStatus, DeliveryJob, Severity, TEST_CHANNEL_LABEL, fingerprint};
pub use envelope::{DlqEntry, DlqMeta, Envelope, FailureInfo, Payload, QueueName, QueueNameError};
pub use ids::{EnvelopeId, WorkerId, derived_ulid, new_ulid, ulid_timestamp_ms};
pub use state::{
    AuditEntry, AuditRecord, Flag, FlagState, Profile, QueueStats, SCHEDULED_SAMPLE,
    ScheduledChannel, ScheduledItem, ScheduledSummary, ShedMode, StoreStats, TestDelivery,
    TestStatus, Threshold, WorkerBeat,
};
pub use text::sanitize;
