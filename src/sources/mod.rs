//! What the control room reads: the store poller (one pipelined read per refresh, on Redis or
//! the in-process memory store) and the snapshot it publishes. Prometheus arrives with SLOs.

pub mod poller;
pub mod snapshot;

pub use poller::{PollerConfig, SourceHandle, spawn};
pub use snapshot::{
    BreakerView, DlqPageView, DlqQuery, Freshness, Snapshot, SourceStatus, StoreSection, Target,
};
