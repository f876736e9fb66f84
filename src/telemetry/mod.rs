//! Prometheus metrics and `/metrics`, the JSONL delivery-event log, audit helpers.

pub mod events;
pub mod metrics;
pub mod slo_rules;

pub use events::{DeliveryEvent, EventLog};
pub use metrics::{DeliveryOutcome, Metrics, OPENMETRICS_CONTENT_TYPE};
