//! How a new alert is made to survive its primary's loss: once it is written, WAIT until the
//! primary's replicas have it, and refuse the request (the client retries) when they do not
//! confirm in time. Redis replicates asynchronously, so without this a failover drops what the
//! replica had not received yet, though the client was told it was accepted.
//!
//! Only the replicas a primary has connected are waited for: a primary whose replicas are all
//! gone (the one just promoted by a failover, say) keeps accepting, as a single server does,
//! and says so in the log.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::conn::Conn;
use crate::engine::clock::{Clock, SystemClock};
use crate::store::{StoreError, StoreResult};

/// How long a primary's count of connected replicas is trusted before ROLE is asked again.
const ROLE_FRESH_MS: i64 = 1_000;

pub(crate) struct Replication {
    /// Replicas that must confirm each new alert (fewer if the primary has fewer connected).
    wanted: u32,
    timeout: Duration,
    /// Per key: its primary's connected replicas, and when that was read (ms since the epoch).
    connected: Mutex<HashMap<String, (u32, i64)>>,
}

impl Replication {
    pub(crate) fn new(wanted: u32, timeout: Duration) -> Self {
        Self {
            wanted,
            timeout,
            connected: Mutex::new(HashMap::new()),
        }
    }

    /// Wait until the writes to `keys` sent so far on `conn` are on their primaries' replicas.
    pub(crate) async fn wait(&self, conn: &Conn, keys: &[String]) -> StoreResult<()> {
        if self.wanted == 0 {
            return Ok(());
        }
        let waits = keys.iter().map(|key| self.wait_one(conn.clone(), key));
        for outcome in futures::future::join_all(waits).await {
            outcome?;
        }
        Ok(())
    }

    async fn wait_one(&self, mut conn: Conn, key: &str) -> StoreResult<()> {
        let target = self.wanted.min(self.connected(&mut conn, key).await?);
        if target == 0 {
            return Ok(());
        }
        let acked = conn
            .wait_replicated(key, target, self.timeout)
            .await
            .map_err(StoreError::redis("wait"))?;
        if acked >= target {
            return Ok(());
        }
        // The replica may be gone: ask again on the next write instead of trusting the count.
        self.lock().remove(key);
        Err(StoreError::NotReplicated {
            acked,
            wanted: target,
            timeout: self.timeout,
        })
    }

    /// The replicas connected to `key`'s primary, read at most once a second per key.
    async fn connected(&self, conn: &mut Conn, key: &str) -> StoreResult<u32> {
        let now = SystemClock.now_ms();
        let known = self.lock().get(key).copied();
        if let Some((count, read_at)) = known
            && now - read_at < ROLE_FRESH_MS
        {
            return Ok(count);
        }
        let count = conn
            .connected_replicas(key)
            .await
            .map_err(StoreError::redis("role"))?;
        let before = known.map(|(count, _)| count);
        if count < self.wanted && before.is_none_or(|before| before >= self.wanted) {
            tracing::warn!(
                key,
                connected = count,
                wanted = self.wanted,
                "the primary of this key has fewer replicas than store.replica_acks asks: new \
                 alerts are accepted once the {count} it has confirm them"
            );
        } else if count >= self.wanted && before.is_some_and(|before| before < self.wanted) {
            tracing::info!(
                key,
                connected = count,
                "the primary of this key has its replicas back"
            );
        }
        self.lock().insert(key.to_owned(), (count, now));
        Ok(count)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u32, i64)>> {
        // A panic elsewhere cannot leave the cache inconsistent: it only holds counts.
        self.connected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
