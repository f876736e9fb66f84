//! The Redis store's audit log.

use ::redis::aio::ConnectionLike;
use async_trait::async_trait;

use super::RedisStore;
use crate::model::{AuditEntry, AuditRecord};
use crate::store::{AuditStore, StoreError, StoreResult, encode_json};

#[async_trait]
impl AuditStore for RedisStore {
    async fn audit_append(&self, record: &AuditRecord) -> StoreResult<String> {
        audit_append_to(
            &mut self.conn(),
            &self.inner.keys.audit(),
            AUDIT_MAX_LEN,
            record,
        )
        .await
    }

    async fn audit_recent(&self, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        audit_recent_from(&mut self.conn(), &self.inner.keys.audit(), limit).await
    }
}

const AUDIT_MAX_LEN: usize = 100_000;

/// Append one record to an audit stream kept near `max_len` records; returns its id.
pub(crate) async fn audit_append_to(
    conn: &mut (impl ConnectionLike + Send),
    key: &str,
    max_len: usize,
    record: &AuditRecord,
) -> StoreResult<String> {
    let json = encode_json("audit record", record)?;
    ::redis::cmd("XADD")
        .arg(key)
        .arg("MAXLEN")
        .arg("~")
        .arg(max_len)
        .arg("*")
        .arg("r")
        .arg(json)
        .query_async(conn)
        .await
        .map_err(StoreError::redis("audit append"))
}

/// The newest `limit` records of an audit stream, newest first (for a pipeline).
pub(crate) fn audit_read_cmd(key: &str, limit: usize) -> ::redis::Cmd {
    let mut cmd = ::redis::cmd("XREVRANGE");
    cmd.arg(key).arg("+").arg("-").arg("COUNT").arg(limit);
    cmd
}

/// The newest `limit` records of an audit stream, newest first.
pub(crate) async fn audit_recent_from(
    conn: &mut (impl ConnectionLike + Send),
    key: &str,
    limit: usize,
) -> StoreResult<Vec<AuditEntry>> {
    let reply: ::redis::streams::StreamRangeReply = audit_read_cmd(key, limit)
        .query_async(conn)
        .await
        .map_err(StoreError::redis("audit read"))?;
    Ok(decode_audit(reply))
}

/// Audit records as XREVRANGE returns them, skipping (and logging) unreadable ones.
pub(crate) fn decode_audit(reply: ::redis::streams::StreamRangeReply) -> Vec<AuditEntry> {
    reply
        .ids
        .into_iter()
        .filter_map(|entry| {
            let raw: String = entry.get("r")?;
            match serde_json::from_str(&raw) {
                Ok(record) => Some(AuditEntry {
                    id: entry.id,
                    record,
                }),
                Err(error) => {
                    tracing::warn!(id = entry.id, %error, "skipping unreadable audit record");
                    None
                }
            }
        })
        .collect()
}
