//! What the control room reads: the store poller (one pipelined read per refresh, on Redis or
//! the in-process memory store) and the snapshot it publishes. Prometheus arrives with SLOs.

pub mod poller;
pub mod prometheus;
pub mod scrape;
pub mod slo;
pub use ward_core::snapshot;

pub use poller::{PollerConfig, SourceHandle, spawn, spawn_mutt, spawn_with_slo};
pub use snapshot::{
    AlertRow, AlertingView, BreakerView, DlqGroupsView, DlqPageView, DlqQuery, DlqSort,
    ENDING_SOON_MS, Freshness, SilenceRow, Snapshot, SourceStatus, StoreSection, Target,
};
