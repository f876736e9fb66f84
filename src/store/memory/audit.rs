//! The memory store's audit log.

use async_trait::async_trait;

use super::{AUDIT_CAPACITY, MemoryStore};
use crate::model::{AuditEntry, AuditRecord};
use crate::store::{AuditStore, StoreResult};

#[async_trait]
impl AuditStore for MemoryStore {
    async fn audit_append(&self, record: &AuditRecord) -> StoreResult<String> {
        let mut state = self.lock();
        state.audit_seq += 1;
        let id = format!("{}-{}", record.at_ms.max(0), state.audit_seq);
        state.audit.push_back(AuditEntry {
            id: id.clone(),
            record: record.clone(),
        });
        while state.audit.len() > AUDIT_CAPACITY {
            state.audit.pop_front();
        }
        Ok(id)
    }

    async fn audit_recent(&self, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        Ok(self
            .lock()
            .audit
            .iter()
            .rev()
            .take(limit)
            .cloned()
            .collect())
    }
}
