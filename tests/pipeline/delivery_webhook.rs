//! The generic webhook backend against a real HTTP server (wiremock): both payload formats,
//! headers, success statuses, every failure class, and that URL and token never leak.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::delivery_common;

use std::time::{Duration, Instant};

use delivery_common::{
    assert_hidden, assert_permanent, assert_retryable, group_job, job, refused_addr,
};
use ward::delivery::webhook::WebhookFormat;
use ward::delivery::{
    Backend, BackendKind, Disposition, HttpTimeouts, Secret, SendError, WebhookBackend,
};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const URL_SECRET: &str = "hookSecretPath987";
const TOKEN: &str = "bearer-TOKEN-abc123";

fn hook_path() -> String {
    format!("/ingest/{URL_SECRET}")
}

fn backend_at(base: &str, format: WebhookFormat) -> WebhookBackend {
    WebhookBackend::new(
        "ops-hook",
        Secret::new(format!("{base}{}", hook_path())),
        Some(Secret::new(TOKEN)),
        format,
        HttpTimeouts {
            request: Duration::from_millis(300),
            connect: Duration::from_millis(300),
        },
    )
    .unwrap()
}

async fn server_answering(response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(hook_path()))
        .respond_with(response)
        .mount(&server)
        .await;
    server
}

async fn send_failing(backend: &WebhookBackend) -> SendError {
    let err = backend
        .send(&job("ops-hook"), "idem-1")
        .await
        .expect_err("should fail");
    let texts = [format!("{err}"), format!("{err:?}"), format!("{backend:?}")];
    assert_hidden(URL_SECRET, &texts);
    assert_hidden(TOKEN, &texts);
    err
}

#[tokio::test]
async fn posts_the_ward_payload_with_idempotency_key_and_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(hook_path()))
        .and(header("Idempotency-Key", "01JD8X-ops-hook"))
        .and(header("Authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(202))
        .expect(1)
        .mount(&server)
        .await;
    let backend = backend_at(&server.uri(), WebhookFormat::Ward);
    assert_eq!(backend.kind(), BackendKind::Webhook);
    backend
        .send(&job("ops-hook"), "01JD8X-ops-hook")
        .await
        .unwrap();

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        request.headers.get("idempotency-key").unwrap(),
        "01JD8X-ops-hook"
    );
    assert_eq!(
        request.headers.get("content-type").unwrap(),
        "application/json"
    );
    let body: serde_json::Value = request.body_json().unwrap();
    assert_eq!(body["version"], 1);
    assert_eq!(body["channel"], "ops-hook");
    assert_eq!(body["idempotency_key"], "01JD8X-ops-hook");
    let alert = &body["alert"];
    assert_eq!(alert["title"], "HighLatency");
    assert_eq!(alert["description"], "p99 latency above 2 s for 10 minutes");
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["tenant"], "acme");
    assert_eq!(alert["correlation_id"], "corr-42");
    assert_eq!(alert["labels"]["service"], "checkout");
    assert_eq!(
        alert["annotations"]["runbook"],
        "https://runbooks.example/latency"
    );
    assert_eq!(alert["starts_at_ms"], 1_795_564_800_000_i64);
    assert!(alert["ends_at_ms"].is_null());
    assert_eq!(
        alert["generator_url"],
        "https://prometheus.example/graph?g0.expr=up"
    );
    assert_eq!(alert["test"], false);
    assert_eq!(alert["fingerprint"].as_str().unwrap().len(), 16);
}

#[tokio::test]
async fn a_group_is_one_post_carrying_every_alert() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(hook_path()))
        .and(header("Idempotency-Key", "idem-group"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let backend = backend_at(&server.uri(), WebhookFormat::Ward);
    backend
        .send(&group_job("ops-hook"), "idem-group")
        .await
        .unwrap();

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let body: serde_json::Value = requests[0].body_json().unwrap();
    assert_eq!(body["version"], 1);
    assert_eq!(body["alert"]["labels"]["instance"], "api-7:9090");
    let group = &body["group"];
    assert_eq!(group["group_key"], "payments:{alertname=\"HighLatency\"}");
    assert_eq!(group["route"], "payments");
    assert_eq!(group["group_labels"]["alertname"], "HighLatency");
    assert_eq!(group["status"], "firing");
    assert_eq!(group["notification_reason"], "new alerts added");
    let alerts = group["alerts"].as_array().unwrap();
    let listed: Vec<(&str, &str)> = alerts
        .iter()
        .map(|a| {
            (
                a["labels"]["instance"].as_str().unwrap(),
                a["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("api-7:9090", "firing"),
            ("api-8:9090", "firing"),
            ("api-9:9090", "resolved")
        ]
    );
    assert_eq!(alerts[2]["ends_at_ms"], 1_795_565_400_000_i64);
    assert_eq!(
        group["resolved_after_notified"],
        serde_json::json!([alerts[2]["fingerprint"]])
    );
}

#[tokio::test]
async fn moog_format_sends_one_event_for_a_group() {
    let server = server_answering(ResponseTemplate::new(200)).await;
    let backend = backend_at(&server.uri(), WebhookFormat::Moog);
    backend
        .send(&group_job("ops-hook"), "idem-g")
        .await
        .unwrap();

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let body: serde_json::Value = requests[0].body_json().unwrap();
    assert_eq!(body["signature"], "api-7:9090");
    assert_eq!(body["severity"], 5);
    let alerts = body["custom_info"]["group"]["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 3);
    assert_eq!(alerts[2]["status"], "resolved");
}

#[tokio::test]
async fn moog_format_sends_the_mutt_shape() {
    let server = server_answering(ResponseTemplate::new(200)).await;
    let backend = backend_at(&server.uri(), WebhookFormat::Moog);
    let mut job = job("ops-hook");
    job.alert.test = true;
    backend.send(&job, "idem-moog").await.unwrap();

    let request = &server.received_requests().await.unwrap()[0];
    assert_eq!(request.headers.get("idempotency-key").unwrap(), "idem-moog");
    assert_eq!(
        request.headers.get("authorization").unwrap(),
        format!("Bearer {TOKEN}").as_str()
    );
    let body: serde_json::Value = request.body_json().unwrap();
    assert_eq!(body["signature"], "api-7:9090");
    assert_eq!(body["source_id"], "api-7:9090");
    assert_eq!(body["external_id"], "corr-42");
    assert_eq!(body["class"], "payments");
    assert_eq!(body["type"], "Alert");
    assert_eq!(body["severity"], 5);
    assert_eq!(body["manager"], "Ward");
    assert_eq!(body["agent_time"], 1_795_564_800);
    assert_eq!(
        body["description"],
        "[TEST] HighLatency: p99 latency above 2 s for 10 minutes"
    );
    assert!(body["agent"].as_str().unwrap().starts_with("Ward v"));
    assert_eq!(body["custom_info"]["idempotency_key"], "idem-moog");
    assert_eq!(body["custom_info"]["alert"]["test"], true);
}

#[tokio::test]
async fn accepted_statuses_succeed_and_odd_2xx_do_not() {
    for status in [200, 201, 202, 204] {
        let server = server_answering(ResponseTemplate::new(status)).await;
        backend_at(&server.uri(), WebhookFormat::Ward)
            .send(&job("ops-hook"), "idem-1")
            .await
            .unwrap_or_else(|err| panic!("{status}: {err}"));
    }
    let server = server_answering(ResponseTemplate::new(206)).await;
    let err = send_failing(&backend_at(&server.uri(), WebhookFormat::Ward)).await;
    assert_permanent(&err, "http_206");
}

#[tokio::test]
async fn server_errors_are_retryable() {
    let server = server_answering(ResponseTemplate::new(500).set_body_string("boom")).await;
    let err = send_failing(&backend_at(&server.uri(), WebhookFormat::Ward)).await;
    assert_retryable(&err, "http_500");
    assert!(err.message.contains("boom"), "{err}");
}

#[tokio::test]
async fn rate_limits_read_header_then_body() {
    let server =
        server_answering(ResponseTemplate::new(429).insert_header("Retry-After", "1")).await;
    let err = send_failing(&backend_at(&server.uri(), WebhookFormat::Ward)).await;
    assert_eq!(
        err.disposition,
        Disposition::RateLimited(Some(Duration::from_secs(1)))
    );

    let server =
        server_answering(ResponseTemplate::new(429).set_body_string(r#"{"retry_after":2}"#)).await;
    let err = send_failing(&backend_at(&server.uri(), WebhookFormat::Ward)).await;
    assert_eq!(
        err.disposition,
        Disposition::RateLimited(Some(Duration::from_secs(2)))
    );
}

#[tokio::test]
async fn client_errors_are_permanent_with_the_receivers_words() {
    let server = server_answering(
        ResponseTemplate::new(404).set_body_string(r#"{"error":"channel_not_found"}"#),
    )
    .await;
    let err = send_failing(&backend_at(&server.uri(), WebhookFormat::Ward)).await;
    assert_permanent(&err, "http_404");
    assert!(err.message.contains("channel_not_found"), "{err}");

    // A receiver that echoes the token back does not get it into our messages.
    let server = server_answering(
        ResponseTemplate::new(401).set_body_string(format!("bad token Bearer {TOKEN}")),
    )
    .await;
    let err = send_failing(&backend_at(&server.uri(), WebhookFormat::Ward)).await;
    assert_permanent(&err, "http_401");
    assert!(err.message.contains("bad token Bearer ***"), "{err}");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = server_answering(
        ResponseTemplate::new(301).insert_header("Location", "http://127.0.0.1:9/elsewhere"),
    )
    .await;
    let err = send_failing(&backend_at(&server.uri(), WebhookFormat::Ward)).await;
    assert_permanent(&err, "http_301");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let server =
        server_answering(ResponseTemplate::new(200).set_delay(Duration::from_secs(30))).await;
    let started = Instant::now();
    let err = send_failing(&backend_at(&server.uri(), WebhookFormat::Ward)).await;
    let elapsed = started.elapsed();
    assert_retryable(&err, "timeout");
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(3),
        "took {elapsed:?}"
    );
}

#[tokio::test]
async fn connection_refused_is_retryable_connect() {
    let backend = backend_at(&format!("http://{}", refused_addr()), WebhookFormat::Ward);
    let err = send_failing(&backend).await;
    assert_retryable(&err, "connect");
}

/// A TCP server that answers its first connection with `reply` whatever was asked.
async fn answering_raw(reply: &'static [u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf).await;
        let _ = stream.write_all(reply).await;
        // Read on until the client hangs up, so it sees the reply rather than a reset.
        while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
    });
    base
}

#[tokio::test]
async fn a_reply_that_is_not_http_is_a_permanent_protocol_error() {
    for reply in [
        &b"HTTP/1.1 200 \x01OK\r\ncontent-length: 0\r\n\r\n"[..],
        b"HTTP/1.1 2OO OK\r\ncontent-length: 0\r\n\r\n",
        b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nx-bad\x01header: 1\r\ncontent-length: 0\r\n\r\n",
    ] {
        let base = answering_raw(reply).await;
        let err = send_failing(&backend_at(&base, WebhookFormat::Ward)).await;
        assert_permanent(&err, "protocol");
        assert!(
            !err.message.contains('\u{1}'),
            "{:?}: {err}",
            String::from_utf8_lossy(reply)
        );
    }
}
