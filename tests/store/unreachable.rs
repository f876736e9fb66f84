//! An unreachable or vanished Redis is an error value, promptly: never a hang, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use common::{Harness, Kind, queue};
use ward::config::{Backend, StoreConfig};
use ward::model::{Envelope, WorkerId};

/// Generous: only a hang trips it; the real bound is the store's own timeouts.
const HANG: Duration = Duration::from_secs(20);

#[tokio::test]
async fn connecting_to_nothing_fails_with_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = StoreConfig {
        backend: Backend::Redis,
        redis_url: format!("redis://127.0.0.1:{port}/"),
        ..StoreConfig::default()
    };
    let result = tokio::time::timeout(HANG, ward::store::open(&config))
        .await
        .expect("connect must not hang");
    let message = result.unwrap_err().to_string();
    assert!(message.contains("connect"), "{message}");
}

#[tokio::test]
async fn a_server_that_goes_away_turns_calls_into_errors() {
    let mut h = Harness::new(Kind::Redis, 1).await;
    let q = queue("delivery");
    let envelope = Envelope::new("t", serde_json::json!(1), h.store.now_ms());
    h.store
        .enqueue(&q, std::slice::from_ref(&envelope))
        .await
        .unwrap();
    h.server.as_mut().unwrap().kill();
    let lease = tokio::time::timeout(
        HANG,
        h.store
            .lease(&q, &WorkerId::new("w"), 1, Duration::from_secs(30)),
    )
    .await
    .expect("a call to a dead server must not hang");
    assert!(lease.is_err());
    let stats = tokio::time::timeout(HANG, h.store.stats(&[q]))
        .await
        .expect("stats must not hang");
    assert!(stats.is_err());
}

#[tokio::test]
async fn the_memory_backend_is_the_default() {
    let store = ward::store::open(&StoreConfig::default()).await.unwrap();
    assert_eq!(store.backend_name(), "memory");
}
