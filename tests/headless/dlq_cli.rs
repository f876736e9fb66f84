//! `ward dlq ls` and `ward dlq show` through the real binary on a real redis-server: the
//! control room's filters (fields, since/until, the store's text search), its orders, grouping
//! of the whole set, text and JSON, sanitised and redacted output, and exit codes 2 (usage),
//! 3 (unreachable) and 1 (no such entry). Neither writes to the store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{RedisServer, output, queue};
use serde_json::{Value, json};
use ward::model::{Envelope, FailedAttempt, FailureInfo, WorkerId};
use ward::store::{DeadLetterRequest, DlqScope, Store};

fn ward(redis: &RedisServer, home: &Path) -> assert_cmd::Command {
    let mut cmd = common::ward_command(home);
    cmd.args(["--redis", &redis.url()]);
    cmd
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A delivery of alert `name` (labels, severity) to slack-ops that failed once before.
fn delivery(store: &Arc<dyn Store>, name: &str, zone: &str, severity: &str) -> Envelope {
    let now = store.now_ms();
    let mut envelope = Envelope::new(
        "acme",
        json!({
            "alert": {"labels": {"alertname": name, "zone": zone}, "severity": severity,
                      "annotations": {"api_key": "k-123"}},
            "channel": "slack-ops",
            "retry_policy": "default",
        }),
        now,
    );
    envelope.record_attempt(FailedAttempt::new(
        1,
        now - 60_000,
        "slack-ops",
        "http_503",
        "HTTP 503",
    ));
    envelope
}

/// Put `envelopes` in `q`'s DLQ, failed now with `failure`.
async fn dead_letter(
    store: &Arc<dyn Store>,
    q: &str,
    envelopes: Vec<Envelope>,
    failure: FailureInfo,
) {
    let q = queue(q);
    let n = envelopes.len();
    for chunk in envelopes.chunks(500) {
        store.enqueue(&q, chunk).await.unwrap();
    }
    let mut left = n;
    while left > 0 {
        let lease = store
            .lease(
                &q,
                &WorkerId::new("test"),
                left.min(500),
                Duration::from_secs(30),
            )
            .await
            .unwrap();
        left -= lease.items.len();
        let requests: Vec<_> = lease
            .items
            .into_iter()
            .map(|item| {
                let mut envelope = item.envelope;
                envelope.attempts += 2;
                DeadLetterRequest {
                    receipt: item.receipt,
                    envelope,
                    failure: failure.clone(),
                }
            })
            .collect();
        store.dead_letter(&q, &requests).await.unwrap();
    }
}

/// The DLQs the tests read: delivery (150 DiskFull timeouts in eu-1, then NodeDown and an
/// ANSI-laden http_500 in us-2), ingest (one validation failure) and ingest's dead list.
async fn fill(redis: &RedisServer) -> Arc<dyn Store> {
    let store = common::default_redis_store(redis).await;
    let many = (0..150)
        .map(|_| delivery(&store, "DiskFull", "eu-1", "warning"))
        .collect();
    dead_letter(
        &store,
        "delivery",
        many,
        FailureInfo::new("timeout", "no answer in 10s", "deliver").on("slack-ops"),
    )
    .await;
    let node = delivery(&store, "NodeDown", "us-2", "critical");
    dead_letter(
        &store,
        "delivery",
        vec![node],
        FailureInfo::new("http_500", "slack said \u{1b}[31mno\u{1b}[0m", "deliver").on("slack-ops"),
    )
    .await;
    let ingest = vec![
        common::alert_envelope("Unrouted", &[("team", "none")], store.now_ms()),
        common::alert_envelope("Buried", &[("team", "none")], store.now_ms()),
    ];
    let buried = ingest[1].id.clone();
    dead_letter(
        &store,
        "ingest",
        ingest,
        FailureInfo::new("validation", "no route", "route"),
    )
    .await;
    store
        .bury(&queue("ingest"), &DlqScope::Ids(vec![buried]), 10)
        .await
        .unwrap();
    store
}

#[tokio::test]
async fn ls_lists_with_the_control_rooms_filters_and_orders() {
    let redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    fill(&redis).await;
    let ls = |args: &[&str]| {
        let mut cmd = ward(&redis, home.path());
        cmd.args(["dlq", "ls"]).args(args);
        output(&mut cmd)
    };

    // Text: newest first, the alert's name and severity, escapes made inert.
    let (code, text, err) = ls(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        text.starts_with("DLQ of delivery · 151 matching · 20 listed · newest first"),
        "{text}"
    );
    let first = text.lines().nth(2).unwrap();
    assert!(
        first.contains("NodeDown") && first.contains("critical") && first.contains("http_500"),
        "{first}"
    );
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(text.contains("?[31mno"), "{text}");

    // JSON: the same, escaped.
    let (code, out, _) = ls(&["--format", "json", "--limit", "200"]);
    assert_eq!(code, 0);
    assert!(out.contains("\\u001b[31mno"), "{out}");
    let doc = json_of(&out);
    assert_eq!(doc["kind"], "ward.dlq.list");
    assert_eq!(doc["matching"], 151);
    assert_eq!(doc["entries"].as_array().unwrap().len(), 151);
    assert_eq!(doc["more"], false);
    assert_eq!(doc["sort_scope"], "store");
    assert_eq!(doc["entries"][0]["alertname"], "NodeDown");
    assert_eq!(doc["entries"][1]["severity"], "warning");

    // The text search reaches label values; fields, time bounds and the order combine with it.
    let (_, out, _) = ls(&["--search", "US-2", "--format", "json"]);
    let doc = json_of(&out);
    assert_eq!(doc["matching"], 1);
    assert_eq!(doc["entries"][0]["alertname"], "NodeDown");
    assert_eq!(doc["filter"]["text"], "US-2");
    for (args, matching) in [
        (vec!["--error", "timeout"], 150),
        (vec!["--channel", "slack-ops", "--search", "eu-1"], 150),
        (vec!["--since", "1h"], 151),
        (vec!["--until", "1h"], 0),
        (
            vec![
                "--since",
                "2020-01-01T00:00:00Z",
                "--until",
                "2020-01-02T00:00:00Z",
            ],
            0,
        ),
        (vec!["--tenant", "nobody"], 0),
    ] {
        let mut all = args.clone();
        all.extend(["--format", "json"]);
        let (code, out, err) = ls(&all);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert_eq!(json_of(&out)["matching"], matching, "{args:?}");
    }
    let (_, out, _) = ls(&["--sort", "oldest", "--limit", "1", "--format", "json"]);
    let doc = json_of(&out);
    assert_eq!(doc["entries"][0]["alertname"], "DiskFull");
    assert_eq!(doc["more"], true);
    let (_, out, _) = ls(&["--sort", "attempts", "--format", "json"]);
    assert_eq!(json_of(&out)["sort_scope"], "listed");

    // Every DLQ and dead list.
    let (_, out, _) = ls(&["--queue", "ingest", "--format", "json"]);
    let doc = json_of(&out);
    assert_eq!(
        (
            doc["matching"].clone(),
            doc["entries"][0]["alertname"].clone()
        ),
        (json!(1), json!("Unrouted"))
    );
    let (_, text, _) = ls(&["--queue", "ingest", "--dead"]);
    assert!(
        text.starts_with("dead list of ingest · 1 matching"),
        "{text}"
    );
    assert!(text.contains("Buried"), "{text}");
}

#[tokio::test]
async fn ls_group_counts_the_whole_filtered_set() {
    let redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    fill(&redis).await;
    let (code, out, err) =
        output(ward(&redis, home.path()).args(["dlq", "ls", "--group", "--format", "json"]));
    assert_eq!(code, 0, "{err}");
    let doc = json_of(&out);
    assert_eq!(doc["kind"], "ward.dlq.groups");
    assert_eq!(doc["matching"], 151, "every entry, not a page of 20");
    let counts: Vec<(String, u64)> = doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["error_class"].as_str().unwrap().to_owned(),
                g["count"].as_u64().unwrap(),
            )
        })
        .fold(Vec::new(), |mut acc, (class, n)| {
            match acc.iter_mut().find(|(c, _)| *c == class) {
                Some((_, total)) => *total += n,
                None => acc.push((class, n)),
            }
            acc
        });
    assert_eq!(
        counts,
        [("http_500".to_owned(), 1), ("timeout".to_owned(), 150)]
    );
    let (_, text, _) =
        output(ward(&redis, home.path()).args(["dlq", "ls", "--group", "--search", "eu-1"]));
    assert!(
        text.contains("150 matching of 151 examined (the whole set)"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("timeout") && l.trim_end().ends_with("150")),
        "{text}"
    );
}

#[tokio::test]
async fn show_prints_times_attempts_and_redacted_content() {
    let redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    fill(&redis).await;
    let (_, out, _) =
        output(ward(&redis, home.path()).args(["dlq", "ls", "--limit", "1", "--format", "json"]));
    let id = json_of(&out)["entries"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (code, text, err) = output(ward(&redis, home.path()).args(["dlq", "show", &id]));
    assert_eq!(code, 0, "{err}");
    assert!(text.starts_with("DLQ of delivery\n"), "{text}");
    assert!(text.contains(&format!("id        {id}")), "{text}");
    assert!(text.contains("alert     NodeDown · critical"), "{text}");
    assert!(text.contains("s ago)"), "relative times: {text}");
    assert!(
        text.contains("attempt history (2 recorded of 2 attempts"),
        "{text}"
    );
    assert!(
        text.contains("HTTP 503") && text.contains("http_500"),
        "{text}"
    );
    assert!(text.contains("\"api_key\": \"***\""), "{text}");
    assert!(
        !text.contains("k-123") && !text.contains('\u{1b}'),
        "{text}"
    );

    let (code, out, _) =
        output(ward(&redis, home.path()).args(["dlq", "show", &id, "--format", "json"]));
    assert_eq!(code, 0);
    let doc = json_of(&out);
    assert_eq!(doc["kind"], "ward.dlq.entry");
    assert_eq!(doc["alertname"], "NodeDown");
    assert_eq!(doc["entry"]["attempt_history"].as_array().unwrap().len(), 2);
    assert_eq!(
        doc["entry"]["payload"]["alert"]["annotations"]["api_key"],
        "***"
    );
    assert!(!out.contains("k-123"));

    // Another list does not hold it; an unknown id is a failure, said on stdout.
    let (code, text, _) = output(ward(&redis, home.path()).args(["dlq", "show", &id, "--dead"]));
    assert_eq!(code, 1);
    assert!(
        text.contains("no entry") && text.contains("dead list of delivery"),
        "{text}"
    );
}

#[tokio::test]
async fn usage_errors_exit_2_an_unreachable_store_3_and_nothing_is_written() {
    let mut redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    for args in [
        vec!["dlq", "ls", "--limit", "0"],
        vec!["dlq", "ls", "--since", "yesterday"],
        vec!["dlq", "ls", "--queue", "Bad!"],
        vec!["dlq", "ls", "--sort", "loudest"],
        vec!["--profile", "mutt", "dlq", "ls"],
        vec!["dlq", "show"],
    ] {
        let (code, _, err) = output(ward(&redis, home.path()).args(&args));
        assert_eq!(code, 2, "{args:?}: {err}");
    }
    let (_, err) = {
        let (code, _, err) =
            output(ward(&redis, home.path()).args(["dlq", "ls", "--since", "yesterday"]));
        (code, err)
    };
    assert!(err.contains("--since yesterday"), "{err}");
    // Reading an empty store leaves it empty.
    let (code, text, _) = output(ward(&redis, home.path()).args(["dlq", "ls"]));
    assert_eq!(code, 0);
    assert!(text.contains("nothing matches"), "{text}");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut redis.connection())
        .unwrap();
    assert!(keys.is_empty(), "a read wrote {keys:?}");
    redis.kill();
    for args in [
        vec!["dlq", "ls"],
        vec!["dlq", "show", "01X"],
        vec!["dlq", "ls", "--group"],
    ] {
        let (code, _, err) = output(ward(&redis, home.path()).args(&args));
        assert_eq!(code, 3, "{args:?}: {err}");
    }
}
