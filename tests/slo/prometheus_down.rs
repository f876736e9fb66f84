//! With Prometheus down, the SLO source keeps the last good figures with the time they were
//! read, reports the error, and never hangs; the SLO view shows both. A real Prometheus scrapes
//! a small exporter, then is stopped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio_util::sync::CancellationToken;

use common::prometheus::PrometheusServer;
use ward::config::slo::{Sli, SloSpec};
use ward::engine::slo::{Period, SloState};
use ward::sources::Snapshot;
use ward::sources::prometheus::PrometheusClient;
use ward::sources::slo::{SloFeed, SloSection, spawn_prometheus};
use ward::ui::{App, Keymap, Mode, Theme, View};

/// An exporter whose `events_total` grows by 100 (2 of them bad) on every scrape.
async fn exporter() -> String {
    let scrapes = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let n = scrapes.fetch_add(1, Ordering::Relaxed);
            async move {
                format!(
                    "# TYPE events counter\nevents_total{{outcome=\"good\"}} {}\nevents_total{{outcome=\"bad\"}} {}\n",
                    n * 98,
                    n * 2
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address.to_string()
}

async fn wait_for(
    feed: &mut SloFeed,
    what: &str,
    accept: impl Fn(&SloSection) -> bool,
) -> Arc<SloSection> {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if let Some(section) = feed.borrow_and_update().clone()
            && accept(&section)
        {
            return section;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "{what}: not within 40 s: {:?}",
            feed.borrow()
        );
        let _ = tokio::time::timeout(left, feed.changed()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_down_keeps_the_last_figures_with_their_age_and_shows_the_error() {
    let target = exporter().await;
    let prometheus = PrometheusServer::start(&[target], Duration::from_secs(1));
    let slo = SloSpec {
        name: "events".to_owned(),
        description: String::new(),
        target: 0.9,
        period: Period::Days30,
        sli: Sli::Availability {
            total: "events_total".to_owned(),
            errors: Some(r#"events_total{outcome="bad"}"#.to_owned()),
            good: None,
        },
    }
    .definition()
    .unwrap();
    let client = PrometheusClient::new(&prometheus.url, Duration::from_millis(500)).unwrap();
    let stop = CancellationToken::new();
    let mut feed = spawn_prometheus(client, vec![slo], Duration::from_millis(200), stop.clone());

    // 2 % errors against a 10 % budget: ok, with figures.
    let good = wait_for(&mut feed, "a good read", |s| {
        s.error.is_none()
            && s.readings
                .first()
                .is_some_and(|r| r.figures.state == SloState::Ok)
    })
    .await;
    let ratio = good.readings[0].figures.windows[0].error_ratio.unwrap();
    assert!((ratio - 0.02).abs() < 1e-9, "{ratio}");

    drop(prometheus);
    let stopped = Instant::now();
    let failed = wait_for(&mut feed, "the error", |s| s.error.is_some()).await;
    assert!(
        stopped.elapsed() < Duration::from_secs(3),
        "the failure took {:?} to show",
        stopped.elapsed()
    );
    let error = failed.error.clone().unwrap();
    assert!(error.contains("events"), "names the objective: {error}");
    assert_eq!(failed.readings.len(), 1, "the last figures are kept");
    assert_eq!(failed.readings[0].figures.state, SloState::Ok);
    let read_at = failed.read_at_ms.unwrap();
    assert!(
        read_at <= good.read_at_ms.unwrap() + 1_000,
        "read_at is the last good read"
    );

    // The view shows the figures, the age of the last good read and the error.
    let snapshot = Snapshot {
        slo: Some(failed.clone()),
        store: Some(ward::sources::StoreSection::default()),
        ..Snapshot::default()
    };
    let mut app = App::new(
        Mode::default(),
        Keymap::new(&BTreeMap::new()).unwrap(),
        Vec::new(),
        Arc::new(snapshot),
    );
    app.tick(read_at + 42_000);
    app.show(View::Slo);
    let theme = Theme::load("default", &[]).unwrap();
    let mut terminal = Terminal::new(TestBackend::new(200, 30)).unwrap();
    terminal
        .draw(|frame| ward::ui::views::draw(app.scene(), &theme, frame))
        .unwrap();
    let screen = terminal.backend().to_string();
    assert!(screen.contains("read 42s ago"), "{screen}");
    assert!(screen.contains("ERROR events:"), "{screen}");
    assert!(
        screen.contains("events ") && screen.contains(" ok "),
        "{screen}"
    );
    stop.cancel();
}
