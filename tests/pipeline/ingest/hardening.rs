//! Ingest hardening against hostile clients, over real sockets: slow headers and bodies, too many
//! connections, long keep-alive connections, oversized alerts, duplicate JSON keys, compressed
//! bodies, receivers whose words hide invisible characters or are not HTTP at all, API keys.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use ward::config::{ApiKey, IngestConfig};
use ward::delivery::webhook::WebhookFormat;
use ward::delivery::{HttpTimeouts, Secret, WebhookBackend};
use ward::model::{DlqEntry, QueueName};
use ward::store::{DlqCursor, DlqFilter, FailedSet};

use super::{Running, alert, start, start_with};

/// How long a test waits for something that should take a fraction of it.
const PATIENCE: Duration = Duration::from_secs(5);

fn address(p: &Running) -> SocketAddr {
    p.base.trim_start_matches("http://").parse().unwrap()
}

/// Everything the server sends until it closes the connection; `None` if it is still open after
/// [`PATIENCE`]. `head` is written at once, then `drip` one byte every 50 ms, round and round.
async fn drip(addr: SocketAddr, head: &[u8], drip: &'static [u8]) -> Option<Vec<u8>> {
    let (mut reader, mut writer) = TcpStream::connect(addr).await.unwrap().into_split();
    writer.write_all(head).await.unwrap();
    let dripping = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        for byte in drip.iter().cycle() {
            tick.tick().await;
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
        }
    });
    let answer = tokio::time::timeout(PATIENCE, read_to_close(&mut reader)).await;
    dripping.abort();
    answer.ok()
}

/// Bytes read until end of stream (or a reset, which ends it too).
async fn read_to_close(reader: &mut (impl AsyncReadExt + Unpin)) -> Vec<u8> {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return answer,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
}

/// Status line, lower-cased head and body of the first HTTP response in `bytes`.
fn response(bytes: &[u8]) -> (u16, String, String) {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn healthz() -> &'static [u8] {
    b"GET /healthz HTTP/1.1\r\nhost: ward\r\n\r\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off_and_idle_connections_closed() {
    let p = start(IngestConfig {
        header_timeout_ms: 200,
        ..IngestConfig::default()
    })
    .await;
    let addr = address(&p);

    // Headers that never end: one more header line every 50 ms.
    let answer = drip(
        addr,
        b"POST /v1/alerts HTTP/1.1\r\nhost: ward\r\n",
        b"x-slow: 1\r\n",
    )
    .await;
    assert!(
        answer.is_some(),
        "a client dripping its headers was still connected after {PATIENCE:?}"
    );

    // A kept-alive connection that goes quiet after its answer is closed too.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(healthz()).await.unwrap();
    let answer = tokio::time::timeout(PATIENCE, read_to_close(&mut stream))
        .await
        .expect("an idle kept-alive connection stayed open");
    let (status, ..) = response(&answer);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    p.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_get_408_and_enqueue_nothing() {
    let p = start(IngestConfig {
        body_timeout_ms: 200,
        ..IngestConfig::default()
    })
    .await;
    let addr = address(&p);
    for path in ["/v1/alerts", "/v1/alertmanager", "/api/v2/silences"] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: ward\r\ncontent-type: application/json\r\n\
             content-length: 1000\r\n\r\n{{\"labels\":"
        );
        let answer = drip(addr, head.as_bytes(), b" ")
            .await
            .unwrap_or_else(|| panic!("{path}: a client dripping its body was still connected"));
        let (status, head, body) = response(&answer);
        assert_eq!(status, 408, "{path}: {head}\n{body}");
        assert!(head.contains("connection: close"), "{path}: {head}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"], "timeout", "{path}: {body}");
        if path.starts_with("/v1/") {
            assert!(
                body["message"]
                    .as_str()
                    .unwrap()
                    .contains("ingest.body_timeout_ms = 200"),
                "{body}"
            );
        }
    }
    assert_eq!(p.unsettled().await, 0);
    let metrics = p.metrics().await;
    assert!(
        metrics.contains(
            r#"ward_ingest_requests_total{endpoint="alerts",status="rejected",reason="timeout"} 1"#
        ),
        "{metrics}"
    );
    p.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_are_closed_at_once() {
    let p = start(IngestConfig {
        max_connections: 2,
        ..IngestConfig::default()
    })
    .await;
    let addr = address(&p);
    let held = [
        TcpStream::connect(addr).await.unwrap(),
        TcpStream::connect(addr).await.unwrap(),
    ];

    let mut third = TcpStream::connect(addr).await.unwrap();
    let answer = tokio::time::timeout(PATIENCE, read_to_close(&mut third))
        .await
        .expect("a connection past the cap was kept waiting");
    if !answer.is_empty() {
        let (status, ..) = response(&answer);
        assert_eq!(status, 503, "{}", String::from_utf8_lossy(&answer));
    }

    // A slot freed is a slot served again.
    drop(held);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nhost: ward\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = tokio::time::timeout(PATIENCE, read_to_close(&mut stream))
            .await
            .unwrap();
        let (status, _, body) = response(&answer);
        if status == 200 {
            assert!(
                body.contains("ward_ingest_connections_refused_total "),
                "{body}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no slot came free after the held connections closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    p.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_alive_connection_carries_a_bounded_number_of_requests() {
    let p = start(IngestConfig {
        max_requests_per_connection: 2,
        ..IngestConfig::default()
    })
    .await;
    let mut stream = TcpStream::connect(address(&p)).await.unwrap();
    // Three requests pipelined on one connection: two are answered, then it is closed.
    stream.write_all(&healthz().repeat(3)).await.unwrap();
    let answer = tokio::time::timeout(PATIENCE, read_to_close(&mut stream))
        .await
        .expect("the connection stayed open past its last request");
    let text = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert_eq!(text.matches("http/1.1 200 ok").count(), 2, "{text}");
    let last = text.rsplit("http/1.1 200 ok").next().unwrap();
    assert!(last.contains("connection: close"), "{text}");
    p.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_alerts_are_refused_naming_the_limit_and_the_alert() {
    let p = start(IngestConfig {
        max_labels_per_alert: 4,
        max_annotations_per_alert: 2,
        max_alert_text_bytes: 300,
        ..IngestConfig::default()
    })
    .await;
    let labels = |n: usize| -> Value {
        (0..n)
            .map(|i| (format!("l{i}"), json!("v")))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let at_the_limits = json!({
        "labels": labels(4),
        "annotations": { "summary": "x".repeat(100), "runbook": "y" },
    });
    let (status, _, body) = p
        .post("/v1/alerts", serde_json::to_vec(&at_the_limits).unwrap())
        .await;
    assert_eq!(status, 202, "{body}");

    let cases = [
        (
            "/v1/alerts",
            json!([alert(1), { "labels": labels(5) }]),
            "[1].labels: 5 labels; the limit is ingest.max_labels_per_alert = 4",
        ),
        (
            "/v1/alertmanager",
            json!({ "version": "4", "alerts": [
                { "labels": labels(1), "annotations": { "a": "1", "b": "2", "c": "3" } }
            ] }),
            "alerts[0].annotations: 3 annotations; the limit is ingest.max_annotations_per_alert = 2",
        ),
        (
            "/v1/alerts",
            json!([alert(1), alert(2), { "labels": labels(1), "annotations": { "s": "z".repeat(400) } }]),
            "[2]: labels and annotations take 404 bytes; the limit is ingest.max_alert_text_bytes = 300",
        ),
        (
            "/v1/alerts",
            json!({ "labels": labels(1), "annotations": { "s": "z".repeat(400) } }),
            "alert: labels and annotations take 404 bytes",
        ),
    ];
    for (path, payload, want) in cases {
        let (status, _, body) = p.post(path, serde_json::to_vec(&payload).unwrap()).await;
        assert_eq!(status, 413, "{body}");
        assert_eq!(body["error"], "too_large", "{body}");
        assert!(
            body["message"].as_str().unwrap().contains(want),
            "{want}\n{body}"
        );
    }
    // Only the alert at the limits went in.
    assert_eq!(p.wait_for_lines(1).await.len(), 1);
    p.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_keys_and_compressed_bodies_are_refused_by_name() {
    let p = start(IngestConfig::default()).await;
    let cases: [(&str, &[u8], &str); 5] = [
        (
            "/v1/alerts",
            br#"{"labels":{"team":"db","team":"web"}}"#,
            r#"labels: duplicate key "team""#,
        ),
        (
            "/v1/alerts",
            br#"[{"labels":{"a":"b"}},{"labels":{"a":"b"},"severity":"minor","severity":"critical"}]"#,
            r#"[1]: duplicate key "severity""#,
        ),
        (
            "/v1/alerts",
            br#"{"labels":{"a":"b"},"annotations":{"x":"1"},"labels":{"a":"c"}}"#,
            r#"duplicate key "labels""#,
        ),
        (
            "/v1/alertmanager",
            br#"{"version":"4","alerts":[{"labels":{"a":"b"},"annotations":{"s":"1","s":"2"}}]}"#,
            r#"alerts[0].annotations: duplicate key "s""#,
        ),
        (
            "/v1/alertmanager",
            br#"{"version":"4","alerts":[{"labels":{"a":"b"}}],"extra":{"k":1,"k":2}}"#,
            r#"extra: duplicate key "k""#,
        ),
    ];
    for (path, payload, want) in cases {
        let (status, _, body) = p.post(path, payload.to_vec()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "validation", "{body}");
        assert!(
            body["message"].as_str().unwrap().contains(want),
            "{want}\n{body}"
        );
    }

    let plain = serde_json::to_vec(&alert(1)).unwrap();
    for (encoding, want) in [
        ("gzip", 415),
        ("br", 415),
        ("identity, deflate", 415),
        ("identity", 202),
        ("IDENTITY", 202),
    ] {
        let response = p
            .http
            .post(format!("{}/v1/alerts", p.base))
            .header("content-encoding", encoding)
            .body(plain.clone())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, want, "{encoding}: {body}");
        if want == 415 {
            assert_eq!(body["error"], "encoding", "{body}");
            let named = encoding.rsplit(", ").next().unwrap();
            assert!(
                body["message"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("Content-Encoding \"{named}\"")),
                "{body}"
            );
        }
    }
    // The same alert twice (identity): delivered once; nothing else went in.
    assert_eq!(p.wait_for_lines(1).await.len(), 1);
    p.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_match_whole_and_only_whole() {
    let key = "correct-horse-battery-staple";
    let p = start(IngestConfig {
        api_keys: vec![ApiKey {
            name: "ops".to_owned(),
            key: Secret::new(key),
            tenant: None,
        }],
        ..IngestConfig::default()
    })
    .await;
    let body = serde_json::to_vec(&alert(1)).unwrap();
    for (presented, want) in [
        ("correct-horse-battery", 401),
        ("correct-horse-battery-staple!", 401),
        ("correct-horse-battery-staplE", 401),
        ("", 401),
        (key, 202),
    ] {
        let status = p
            .http
            .post(format!("{}/v1/alerts", p.base))
            .header("x-api-key", presented)
            .body(body.clone())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(status, want, "{presented:?}");
    }
    p.stop.cancel();
}

/// The DLQ of the delivery queue, whole.
async fn dead_letters(p: &Running) -> Vec<DlqEntry> {
    p.store
        .failed_page(
            &QueueName::delivery(),
            FailedSet::Dlq,
            &DlqFilter::default(),
            &DlqCursor::start(),
            100,
        )
        .await
        .unwrap()
        .entries
}

async fn wait_for_dead_letter(p: &Running) -> DlqEntry {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(entry) = dead_letters(p).await.pop() {
            return entry;
        }
        assert!(Instant::now() < deadline, "nothing was dead-lettered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn webhook(url: &str) -> Arc<WebhookBackend> {
    Arc::new(
        WebhookBackend::new(
            "hook",
            Secret::new(url),
            None,
            WebhookFormat::Ward,
            HttpTimeouts {
                request: Duration::from_secs(2),
                connect: Duration::from_secs(2),
            },
        )
        .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_error_texts_lose_invisible_characters() {
    use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};
    let receiver = MockServer::start().await;
    let hostile = "quota\u{200B} exceeded for \u{202E}exe.txt\u{202C} \u{2066}x\u{2069}\u{FEFF}";
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string(hostile))
        .mount(&receiver)
        .await;
    let p = start_with(
        IngestConfig::default(),
        webhook(&format!("{}/hook", receiver.uri())),
        |w| w.queues.max_attempts = 2,
    )
    .await;
    let (status, _, body) = p
        .post("/v1/alerts", serde_json::to_vec(&alert(1)).unwrap())
        .await;
    assert_eq!(status, 202, "{body}");

    let entry = wait_for_dead_letter(&p).await;
    let envelope = entry.envelope.unwrap();
    let mut texts = vec![entry.meta.error_message.clone()];
    texts.extend(envelope.last_error.clone());
    texts.extend(envelope.history.iter().map(|a| a.error.clone()));
    assert_eq!(
        texts.len(),
        3,
        "the message, the last error, one retried attempt"
    );
    for text in &texts {
        assert!(
            !text.chars().any(ward::model::is_invisible_format),
            "{text:?}"
        );
        assert!(text.contains("quota exceeded for exe.txt x"), "{text:?}");
    }
    p.stop.cancel();
}

/// A TCP server answering every connection with `reply`; counts the connections.
async fn not_http(reply: &'static [u8]) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(reply).await;
                // Read on until the client hangs up, so it sees the reply, not a reset.
                let _ = read_to_close(&mut stream).await;
            });
        }
    });
    (url, connections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_is_not_http_is_dead_lettered_at_once_as_protocol() {
    let (url, connections) = not_http(b"HTTP/1.1 200 \x01OK\r\ncontent-length: 0\r\n\r\n").await;
    let p = start_with(IngestConfig::default(), webhook(&url), |_| {}).await;
    let (status, _, body) = p
        .post("/v1/alerts", serde_json::to_vec(&alert(1)).unwrap())
        .await;
    assert_eq!(status, 202, "{body}");

    let entry = wait_for_dead_letter(&p).await;
    assert_eq!(entry.meta.error_class, "protocol", "{:?}", entry.meta);
    assert_eq!(entry.meta.attempts, 1, "{:?}", entry.meta);
    assert!(
        entry.meta.error_message.contains("(permanent)"),
        "{:?}",
        entry.meta
    );
    assert_eq!(connections.load(Ordering::SeqCst), 1, "it was sent again");
    p.stop.cancel();
}
