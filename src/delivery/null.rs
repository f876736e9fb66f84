//! Null: accepts every job and sends nothing (benchmarks, dry runs). Counts what it accepted.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use super::{Backend, BackendKind, SendError};
use crate::model::DeliveryJob;

#[derive(Debug)]
pub struct NullBackend {
    name: String,
    accepted: AtomicU64,
}

impl NullBackend {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            accepted: AtomicU64::new(0),
        }
    }

    /// Jobs accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl Backend for NullBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Null
    }

    async fn send(&self, _job: &DeliveryJob, _idempotency_key: &str) -> Result<(), SendError> {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
