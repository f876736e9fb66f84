//! The control room with its Redis stopped mid-session (a real redis-server, killed and started
//! again): snapshots keep coming, the second failed read raises STALE with the time of the last
//! good read while the last figures stay on screen, and the first good read after Redis returns
//! clears it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::RedisServer;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use ward::engine::breaker::BreakerConfig;
use ward::model::{Envelope, QueueName};
use ward::sources::{Freshness, PollerConfig, Snapshot, Target};
use ward::store::{KeySchema, RedisStore, RedisStoreOptions, Store};
use ward::ui::{App, Keymap, Mode, Theme};

const INTERVAL: Duration = Duration::from_millis(200);

/// The first snapshot that satisfies `want`, within a deadline.
async fn wait_for(
    rx: &mut watch::Receiver<Arc<Snapshot>>,
    what: &str,
    want: impl Fn(&Snapshot) -> bool,
) -> Arc<Snapshot> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let current = rx.borrow_and_update().clone();
        if want(&current) {
            return current;
        }
        let changed = tokio::time::timeout_at(deadline, rx.changed()).await;
        assert!(
            changed.is_ok(),
            "no snapshot {what} within 20 s; last: {:?}",
            current.sources
        );
    }
}

fn screen(snapshot: Arc<Snapshot>) -> String {
    let keymap = Keymap::new(&BTreeMap::new()).unwrap();
    let app = App::new(Mode::default(), keymap, Vec::new(), snapshot);
    let theme = Theme::load("default", &[]).unwrap();
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).unwrap();
    terminal
        .draw(|frame| ward::ui::views::draw(app.scene(), &theme, frame))
        .unwrap();
    terminal.backend().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_within_two_reads_of_a_stopped_redis_and_fresh_again_when_it_returns() {
    let mut server = RedisServer::start();
    let store: Arc<dyn Store> = Arc::new(
        RedisStore::connect(RedisStoreOptions::new(
            &server.url(),
            KeySchema::ward("ward", 1),
        ))
        .await
        .unwrap(),
    );
    let queue = QueueName::delivery();
    let envelopes: Vec<_> = (0..3)
        .map(|i| Envelope::new("t", serde_json::json!({ "n": i }), store.now_ms()))
        .collect();
    store.enqueue(&queue, &envelopes).await.unwrap();
    let config = PollerConfig {
        queues: vec![QueueName::ingest(), queue],
        breaker: BreakerConfig::default(),
        interval: INTERVAL,
        timeout: Duration::from_millis(500),
        stale_after: 2,
        audit_rows: 10,
        heartbeat_interval: Duration::from_secs(1),
        rules: ward::engine::suppress::Rules::default(),
        target: Target {
            label: "test".to_owned(),
            backend: "redis".to_owned(),
            address: server.url(),
            read_only: None,
            ..Target::default()
        },
    };
    let stop = CancellationToken::new();
    let source = ward::sources::spawn(store.clone(), config, stop.clone());
    let mut rx = source.subscribe();

    let fresh = wait_for(&mut rx, "fresh", |s| {
        s.sources[0].freshness == Freshness::Fresh
    })
    .await;
    assert_eq!(
        fresh
            .store
            .as_ref()
            .unwrap()
            .queue("delivery")
            .unwrap()
            .stats
            .depth,
        3
    );
    let last_ok = fresh.sources[0].last_ok_ms;

    server.kill();
    let lagging = wait_for(&mut rx, "lagging", |s| {
        s.sources[0].freshness != Freshness::Fresh
    })
    .await;
    assert_eq!(
        lagging.sources[0].freshness,
        Freshness::Lagging,
        "one failed read dims, it does not yet alarm"
    );
    assert_eq!(lagging.sources[0].consecutive_failures, 1);
    let stale = wait_for(&mut rx, "stale", |s| {
        s.sources[0].freshness == Freshness::Stale
    })
    .await;
    assert_eq!(
        stale.sources[0].consecutive_failures, 2,
        "STALE on the second failed read"
    );
    assert!(stale.sources[0].last_ok_ms >= last_ok);
    assert!(stale.sources[0].last_error.is_some());
    let text = screen(stale.clone());
    assert!(text.contains("STALE since"), "{text}");
    assert!(
        text.contains("delivery"),
        "the last figures stay on screen: {text}"
    );

    // Reads go on in the background (with backoff) while Redis is down: nothing blocks.
    let later = wait_for(&mut rx, "a later failed read", |s| {
        s.sources[0].consecutive_failures >= 3
    })
    .await;
    assert!(later.version > stale.version);

    server.restart();
    store
        .enqueue(&QueueName::delivery(), &envelopes[..1])
        .await
        .ok();
    let back = wait_for(&mut rx, "fresh again", |s| {
        s.sources[0].freshness == Freshness::Fresh
    })
    .await;
    assert_eq!(back.sources[0].consecutive_failures, 0);
    let text = screen(back);
    assert!(!text.contains("STALE"), "{text}");
    stop.cancel();
}
