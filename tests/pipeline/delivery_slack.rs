//! The Slack backend against a real HTTP server (wiremock): payload, success and every
//! failure class, and that the webhook URL never leaks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::delivery_common;

use std::time::{Duration, Instant};

use delivery_common::{
    assert_hidden, assert_permanent, assert_retryable, group_job, job, refused_addr,
};
use ward::delivery::{
    Backend, BackendKind, Disposition, HttpTimeouts, Secret, SendError, SlackBackend,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The secret part of the webhook URL: must never show up in errors or Debug output.
const TOKEN: &str = "XyZsEcReT0123456789";

fn webhook_path() -> String {
    format!("/services/T0000/B0000/{TOKEN}")
}

fn timeouts() -> HttpTimeouts {
    HttpTimeouts {
        request: Duration::from_millis(300),
        connect: Duration::from_millis(300),
    }
}

fn backend_at(base: &str) -> SlackBackend {
    let url = Secret::new(format!("{base}{}", webhook_path()));
    SlackBackend::new("slack-ops", url, timeouts()).unwrap()
}

async fn server_answering(response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(webhook_path()))
        .respond_with(response)
        .mount(&server)
        .await;
    server
}

/// Sends one job and checks the error hides the URL in every rendering.
async fn send_failing(backend: &SlackBackend) -> SendError {
    let err = backend
        .send(&job("slack-ops"), "key-1")
        .await
        .expect_err("should fail");
    assert_hidden(
        TOKEN,
        &[format!("{err}"), format!("{err:?}"), format!("{backend:?}")],
    );
    err
}

#[tokio::test]
async fn success_posts_text_and_blocks() {
    let server = server_answering(ResponseTemplate::new(200).set_body_string("ok")).await;
    let backend = backend_at(&server.uri());
    assert_eq!(backend.name(), "slack-ops");
    assert_eq!(backend.kind(), BackendKind::Slack);
    backend.send(&job("slack-ops"), "key-1").await.unwrap();

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        request.headers.get("content-type").unwrap(),
        "application/json"
    );
    let body: serde_json::Value = request.body_json().unwrap();
    assert_eq!(body["text"], "[CRITICAL] FIRING HighLatency (acme)");
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert!(
        blocks[0]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("HighLatency")
    );
    let all = body.to_string();
    for expected in [
        "*Severity*\\ncritical",
        "*Status*\\nfiring",
        "*Tenant*\\nacme",
        "p99 latency above 2 s for 10 minutes",
        "`service` = checkout",
        "<https://prometheus.example/graph?g0.expr=up|Open in source>",
        "corr-42",
    ] {
        assert!(all.contains(expected), "{expected} missing from {all}");
    }
    assert!(!all.contains("[TEST]"), "{all}");
    assert_hidden(TOKEN, &[format!("{backend:?}")]);
}

#[tokio::test]
async fn a_group_is_one_post_listing_every_alert() {
    let server = server_answering(ResponseTemplate::new(200).set_body_string("ok")).await;
    let backend = backend_at(&server.uri());
    backend
        .send(&group_job("slack-ops"), "key-g")
        .await
        .unwrap();

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let body: serde_json::Value = requests[0].body_json().unwrap();
    assert_eq!(
        body["text"],
        "[FIRING:2] payments:{alertname=\"HighLatency\"} (new alerts added)"
    );
    assert!(
        body["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .ends_with("[FIRING:2] payments:{alertname=\"HighLatency\"}"),
        "{body}"
    );
    let parts = body["attachments"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{body}");
    let firing = parts[0].to_string();
    let resolved = parts[1].to_string();
    assert!(firing.contains("*Firing (2)*"), "{firing}");
    assert!(firing.contains("`instance` = api-7:9090"), "{firing}");
    assert!(firing.contains("`instance` = api-8:9090"), "{firing}");
    assert!(
        firing.contains("p99 latency above 2 s for 10 minutes"),
        "{firing}"
    );
    assert!(resolved.contains("*Resolved (1)*"), "{resolved}");
    assert!(resolved.contains("`instance` = api-9:9090"), "{resolved}");
    assert!(
        resolved.contains("resolved (was notified firing)"),
        "{resolved}"
    );
    assert_ne!(parts[0]["color"], parts[1]["color"]);
}

#[tokio::test]
async fn test_alerts_are_marked() {
    let server = server_answering(ResponseTemplate::new(200).set_body_string("ok")).await;
    let backend = backend_at(&server.uri());
    let mut job = job("slack-ops");
    job.alert.test = true;
    backend.send(&job, "key-1").await.unwrap();
    let body: serde_json::Value = server.received_requests().await.unwrap()[0]
        .body_json()
        .unwrap();
    assert!(
        body["text"].as_str().unwrap().starts_with("[TEST] "),
        "{body}"
    );
    assert!(
        body["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("[TEST]"),
        "{body}"
    );
}

#[tokio::test]
async fn server_errors_are_retryable() {
    let server = server_answering(ResponseTemplate::new(500).set_body_string("rollup_error")).await;
    let err = send_failing(&backend_at(&server.uri())).await;
    assert_retryable(&err, "http_500");
    assert!(err.message.contains("rollup_error"), "{err}");

    let server = server_answering(ResponseTemplate::new(503)).await;
    assert_retryable(&send_failing(&backend_at(&server.uri())).await, "http_503");
}

#[tokio::test]
async fn rate_limit_honours_retry_after_header() {
    let server = server_answering(
        ResponseTemplate::new(429)
            .insert_header("Retry-After", "1")
            .set_body_string(r#"{"ok":false,"error":"rate_limited","retry_after":5}"#),
    )
    .await;
    let err = send_failing(&backend_at(&server.uri())).await;
    assert_eq!(err.class, "http_429");
    assert_eq!(
        err.disposition,
        Disposition::RateLimited(Some(Duration::from_secs(1)))
    );
}

#[tokio::test]
async fn rate_limit_falls_back_to_body_retry_after() {
    let server = server_answering(
        ResponseTemplate::new(429)
            .set_body_string(r#"{"retry_after":2}"#)
            .insert_header("content-type", "application/json"),
    )
    .await;
    let err = send_failing(&backend_at(&server.uri())).await;
    assert_eq!(
        err.disposition,
        Disposition::RateLimited(Some(Duration::from_secs(2)))
    );

    let server = server_answering(ResponseTemplate::new(429).set_body_string("slow down")).await;
    let err = send_failing(&backend_at(&server.uri())).await;
    assert_eq!(err.disposition, Disposition::RateLimited(None));
}

#[tokio::test]
async fn client_errors_are_permanent_with_slacks_error_string() {
    for (status, text) in [
        (404, "channel_not_found"),
        (400, "invalid_payload"),
        (403, "action_prohibited"),
        (410, "channel_is_archived"),
        (401, "invalid_token"),
    ] {
        let server = server_answering(ResponseTemplate::new(status).set_body_string(text)).await;
        let err = send_failing(&backend_at(&server.uri())).await;
        assert_permanent(&err, &format!("http_{status}"));
        assert!(err.message.contains(text), "{err}");
    }
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let server = server_answering(
        ResponseTemplate::new(200)
            .set_body_string("ok")
            .set_delay(Duration::from_secs(30)),
    )
    .await;
    let backend = backend_at(&server.uri());
    let started = Instant::now();
    let err = send_failing(&backend).await;
    let elapsed = started.elapsed();
    assert_retryable(&err, "timeout");
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(3),
        "took {elapsed:?}"
    );
}

#[tokio::test]
async fn connection_refused_is_retryable_connect() {
    let backend = backend_at(&format!("http://{}", refused_addr()));
    let err = send_failing(&backend).await;
    assert_retryable(&err, "connect");
}
