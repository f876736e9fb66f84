//! Headless output over the control room's Snapshot: the status document and its schema, text
//! and markdown summaries, and `ward check`'s thresholds and exit codes.

pub mod check;
pub mod dlq;
pub mod json;
pub mod mutt;
pub mod render;
pub mod slo_api;
pub mod status;

pub use check::{Finding, Severity, Thresholds, Verdict, evaluate};
pub use status::{Status, poller_config, schema};
