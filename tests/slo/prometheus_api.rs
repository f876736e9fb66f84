//! The Prometheus API client against a real Prometheus scraping a counter this test controls, and
//! against fake servers for the failures a real one will not produce on demand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use common::prometheus::PrometheusServer;
use tokio::task::JoinHandle;
use ward::sources::prometheus::{PromError, PrometheusClient, range_step};

const COUNTER: &str = "ward_test_events_total";
const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);
/// Long enough for Prometheus to start, scrape a few times and answer; short enough to fail fast.
const DATA_WITHIN: Duration = Duration::from_secs(15);

/// A `/metrics` endpoint serving one counter whose value the test sets.
struct CounterTarget {
    address: String,
    value: Arc<AtomicU64>,
    server: JoinHandle<()>,
}

impl CounterTarget {
    async fn start(initial: f64) -> Self {
        let value = Arc::new(AtomicU64::new(initial.to_bits()));
        let shared = value.clone();
        let app = axum::Router::new().route(
            "/metrics",
            get(move || {
                let current = f64::from_bits(shared.load(Ordering::SeqCst));
                async move {
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        format!("# TYPE {COUNTER} counter\n{COUNTER} {current}\n"),
                    )
                }
            }),
        );
        let (address, server) = serve(app).await;
        Self {
            address,
            value,
            server,
        }
    }

    fn set(&self, value: f64) {
        self.value.store(value.to_bits(), Ordering::SeqCst);
    }
}

impl Drop for CounterTarget {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Serves `app` on a free loopback port; returns `host:port` and the server task.
async fn serve(app: axum::Router) -> (String, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (address, server)
}

/// A real Prometheus scraping `target` every second (started off the async threads: the harness
/// blocks while it waits for readiness).
async fn prometheus_scraping(target: &CounterTarget) -> PrometheusServer {
    let targets = vec![target.address.clone()];
    tokio::task::spawn_blocking(move || PrometheusServer::start(&targets, SCRAPE_INTERVAL))
        .await
        .unwrap()
}

/// Runs `attempt` every 50 ms until it gives `Some`, panicking with `what` after `within`.
async fn poll<T, F, Fut>(within: Duration, what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, PromError>>,
{
    let deadline = Instant::now() + within;
    loop {
        let last = match attempt().await {
            Ok(Some(found)) => return found,
            Ok(None) => "not the awaited answer yet".to_owned(),
            Err(err) => err.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "{what}: not within {within:?} (last: {last})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The single value of an instant query, `None` while it returns no series.
async fn single_value(client: &PrometheusClient, promql: &str) -> Result<Option<f64>, PromError> {
    let samples = client.query(promql).await?;
    assert!(samples.len() <= 1, "{promql}: {samples:?}");
    Ok(samples.first().map(|sample| sample.value))
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn client(url: &str, timeout: Duration) -> PrometheusClient {
    PrometheusClient::new(url, timeout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instant_queries_read_the_scraped_counter() {
    let target = CounterTarget::start(5.0).await;
    let prometheus = prometheus_scraping(&target).await;
    let client = client(&prometheus.url, Duration::from_secs(2));
    let total = format!("sum({COUNTER})");

    let equals = |expected: f64| {
        let (client, total) = (&client, &total);
        move || async move {
            Ok(single_value(client, total)
                .await?
                .filter(|value| (value - expected).abs() < 1e-9))
        }
    };
    poll(DATA_WITHIN, "the first scrape (5)", equals(5.0)).await;
    let samples = client.query(COUNTER).await.unwrap();
    assert_eq!(samples.len(), 1, "{samples:?}");
    assert_eq!(samples[0].labels["job"], "ward_test");
    assert_eq!(samples[0].labels["instance"], target.address);
    assert!(
        (samples[0].timestamp_s - now_s()).abs() < 5.0,
        "an instant query is evaluated now: {samples:?}"
    );

    target.set(12.0);
    poll(
        DATA_WITHIN,
        "the scrape after the change (12)",
        equals(12.0),
    )
    .await;

    // `increase` extrapolates to the edges of the window: never below the raw 7, and with at
    // least five samples (4 s between first and last, at most 0.5 s added before and 1.1 s after)
    // at most 7 × 5.6 / 4 = 9.8. Hence the tolerance [7, 7 × 1.5].
    let increase =
        format!("sum(increase({COUNTER}[1m])) and on() sum(count_over_time({COUNTER}[1m])) >= 5");
    let increased = poll(DATA_WITHIN, "five samples in the window", || {
        single_value(&client, &increase)
    })
    .await;
    assert!(
        (7.0 - 1e-9..=7.0 * 1.5).contains(&increased),
        "increase = {increased}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_queries_return_points_at_the_requested_step() {
    let target = CounterTarget::start(3.0).await;
    let prometheus = prometheus_scraping(&target).await;
    let client = client(&prometheus.url, Duration::from_secs(2));

    // Four samples: data for the last 3 s at least.
    let count = format!("sum(count_over_time({COUNTER}[1m])) >= 4");
    poll(DATA_WITHIN, "four samples", || {
        single_value(&client, &count)
    })
    .await;

    let range_s = 6.0;
    let step_s = range_step(range_s, 4, SCRAPE_INTERVAL.as_secs_f64());
    assert!((step_s - 1.5).abs() < 1e-9, "{step_s}");
    let end_s = now_s();
    let start_s = end_s - range_s;
    let series = client
        .query_range(&format!("sum({COUNTER})"), start_s, end_s, step_s)
        .await
        .unwrap();

    assert_eq!(series.len(), 1, "{series:?}");
    let points = &series[0].points;
    assert!(
        points.len() >= 3,
        "points over the last 3 s at least: {points:?}"
    );
    for (timestamp_s, value) in points {
        assert!(
            (start_s - 1e-3..=end_s + 1e-3).contains(timestamp_s),
            "{timestamp_s} outside [{start_s}, {end_s}]"
        );
        let steps_from_start = (timestamp_s - start_s) / step_s;
        assert!(
            (steps_from_start - steps_from_start.round()).abs() < 1e-3,
            "{timestamp_s} is not on the step grid from {start_s}"
        );
        assert!((value - 3.0).abs() < 1e-9, "{points:?}");
    }
    for pair in points.windows(2) {
        assert!(
            (pair[1].0 - pair[0].0 - step_s).abs() < 1e-3,
            "points are {step_s} s apart: {points:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_promql_is_refused_in_prometheus_words() {
    let target = CounterTarget::start(1.0).await;
    let prometheus = prometheus_scraping(&target).await;
    let client = client(&prometheus.url, Duration::from_secs(2));

    // The server answers well-formed queries (so the errors below are about the queries).
    let scalar = client.query("2 * 21").await.unwrap();
    assert_eq!(scalar.len(), 1, "{scalar:?}");
    assert!(scalar[0].labels.is_empty());
    assert!((scalar[0].value - 42.0).abs() < 1e-9);

    let err = client
        .query(&format!("sum(rate({COUNTER}[1m])"))
        .await
        .unwrap_err();
    match &err {
        PromError::Http { status, message } => {
            assert_eq!(*status, 400, "{err}");
            assert!(message.starts_with("bad_data: "), "{message}");
            assert!(message.contains("parse error"), "{message}");
        }
        other => panic!("expected an HTTP 400, got {other:?}"),
    }
    assert!(!err.to_string().contains('\n'), "one line: {err}");

    let err = client
        .query_range(COUNTER, now_s(), now_s() - 60.0, 1.0)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PromError::Http { status: 400, message } if message.contains("end timestamp must not be before start time")),
        "{err:?}"
    );

    let err = client.query(&format!("{COUNTER}[1m]")).await.unwrap_err();
    assert!(matches!(err, PromError::Unexpected(_)), "{err:?}");
}

#[tokio::test]
async fn a_port_with_nothing_listening_is_unreachable_quickly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = client(&format!("http://127.0.0.1:{port}"), Duration::from_secs(5));
    let started = Instant::now();
    let err = client.query("up").await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, PromError::Unreachable(_)), "{err:?}");
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
    let message = err.to_string();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(message.to_lowercase().contains("refused"), "{message}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_on_time() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket); // accepted, read from never, answered never
        }
    });
    let timeout = Duration::from_millis(500);
    let client = client(&format!("http://{address}"), timeout);

    let started = Instant::now();
    let err = client.query("up").await.unwrap_err();
    let elapsed = started.elapsed();
    silent.abort();

    assert!(matches!(err, PromError::Timeout { ms: 500 }), "{err:?}");
    assert!(
        (Duration::from_millis(450)..timeout + Duration::from_secs(1)).contains(&elapsed),
        "took {elapsed:?} for a {timeout:?} timeout"
    );
    assert!(err.to_string().contains("500 ms"), "{err}");
}

/// A fake Prometheus answering every query with `status` and `body`, recording the requests'
/// content types and bodies.
async fn fake_prometheus(
    status: StatusCode,
    body: &'static str,
) -> (String, Arc<Mutex<Vec<(String, String)>>>, JoinHandle<()>) {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    let answer = move |headers: HeaderMap, request: String| {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        seen.lock().unwrap().push((content_type, request));
        async move { (status, [(header::CONTENT_TYPE, "application/json")], body) }
    };
    let app = axum::Router::new()
        .route("/api/v1/query", post(answer.clone()))
        .route("/api/v1/query_range", post(answer));
    let (address, server) = serve(app).await;
    (format!("http://{address}"), requests, server)
}

#[tokio::test]
async fn malformed_json_is_a_decode_error() {
    let (url, _, server) = fake_prometheus(
        StatusCode::OK,
        r#"{"status":"success","data":{"resultType":"vec"#,
    )
    .await;
    let err = client(&url, Duration::from_secs(2))
        .query("up")
        .await
        .unwrap_err();
    server.abort();
    assert!(matches!(err, PromError::Decode(_)), "{err:?}");
    assert!(err.to_string().contains("malformed JSON"), "{err}");
}

#[tokio::test]
async fn an_error_status_in_a_200_answer_is_an_api_error() {
    let (url, _, server) = fake_prometheus(
        StatusCode::OK,
        r#"{"status":"error","errorType":"execution","error":"query timed out in expression evaluation"}"#,
    )
    .await;
    let err = client(&url, Duration::from_secs(2))
        .query("up")
        .await
        .unwrap_err();
    server.abort();
    match err {
        PromError::Api { kind, message } => {
            assert_eq!(kind, "execution");
            assert_eq!(message, "query timed out in expression evaluation");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn queries_are_url_encoded_form_posts() {
    let (url, requests, server) = fake_prometheus(
        StatusCode::OK,
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"b"},"values":[[10,"1"],[12,"+Inf"]]}]}}"#,
    )
    .await;
    let promql = r#"sum(rate(x{queue="a b&c"}[5m])) / 2"#;
    let series = client(&url, Duration::from_secs(2))
        .query_range(promql, 10.0, 12.5, 2.0)
        .await
        .unwrap();
    server.abort();

    assert_eq!(series.len(), 1);
    assert_eq!(series[0].labels["a"], "b");
    assert_eq!(series[0].points[0], (10.0, 1.0));
    assert!(series[0].points[1].1.is_infinite());
    let requests = requests.lock().unwrap();
    let (content_type, body) = &requests[0];
    assert_eq!(content_type, "application/x-www-form-urlencoded");
    assert_eq!(
        body,
        "query=sum%28rate%28x%7Bqueue%3D%22a+b%26c%22%7D%5B5m%5D%29%29+%2F+2\
         &start=10&end=12.5&step=2"
    );
}
