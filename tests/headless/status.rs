//! Headless mode through the real binary on a real redis-server: `ward status` in three formats
//! (the JSON validated against the committed schema), `ward watch`, `ward check`'s exit codes in
//! a scripted incident, and every action subcommand's refusal, dry run, run and audit record.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{RedisServer, output, queue};
use serde_json::Value;
use ward::model::{Envelope, FailureInfo, WorkerId};
use ward::store::{DeadLetterRequest, Store};

/// `ward` attached to `redis`, with no config file and no stray WARD_* variables.
fn ward_process(redis: &RedisServer, home: &Path) -> std::process::Command {
    let mut cmd = common::ward_process(home);
    cmd.env("USER", "ops")
        .env("HOSTNAME", "ci")
        .args(["--redis", &redis.url()]);
    cmd
}

fn ward(redis: &RedisServer, home: &Path) -> assert_cmd::Command {
    assert_cmd::Command::from_std(ward_process(redis, home))
}

/// `n` alerts through the delivery queue into its DLQ, failed just now (by the system clock).
async fn fail_into_dlq(store: &Arc<dyn Store>, n: usize, class: &str) {
    let delivery = queue("delivery");
    let envelopes: Vec<Envelope> = (0..n)
        .map(|i| Envelope::new("acme", serde_json::json!({ "n": i }), store.now_ms()))
        .collect();
    store.enqueue(&delivery, &envelopes).await.unwrap();
    let lease = store
        .lease(
            &delivery,
            &WorkerId::new("test"),
            n,
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let requests: Vec<DeadLetterRequest> = lease
        .items
        .into_iter()
        .map(|item| DeadLetterRequest {
            receipt: item.receipt,
            envelope: item.envelope,
            failure: FailureInfo::new(class, "boom", "deliver").on("slack"),
        })
        .collect();
    store.dead_letter(&delivery, &requests).await.unwrap();
}

fn schema() -> Value {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/status.schema.json"),
    )
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn assert_valid(document: &Value) {
    let validator = jsonschema::validator_for(&schema()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(document)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "status JSON breaks the schema: {errors:#?}"
    );
}

#[test]
fn the_committed_schema_is_the_one_the_binary_prints() {
    let redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    let (code, printed, _) = output(ward(&redis, home.path()).args(["status", "--schema"]));
    assert_eq!(code, 0);
    let printed: Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(
        printed,
        schema(),
        "docs/status.schema.json is stale: regenerate it with `ward status --schema > docs/status.schema.json`"
    );
}

/// Compatibility: a document written by format version 1 (every section filled: queues,
/// breakers, overrides, audit, workers, SLOs) still validates and still reads. Renaming or
/// removing a field breaks this; that change must bump `FORMAT_VERSION` and freeze a new sample.
#[test]
fn a_version_1_document_still_validates_and_reads() {
    let sample: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/status/v1.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(sample["format_version"], 1);
    assert_eq!(ward::headless::status::FORMAT_VERSION, 2);
    // A version 1 document still reads: what version 2 added takes its default.
    let read: ward::headless::Status = serde_json::from_value(sample.clone()).unwrap();
    let again = serde_json::to_value(&read).unwrap();
    let queues = again["store"]["queues"].as_array().unwrap();
    assert!(!queues.is_empty());
    for (old, new) in sample["store"]["queues"]
        .as_array()
        .unwrap()
        .iter()
        .zip(queues)
    {
        assert_eq!(old["stats"]["depth"], new["stats"]["depth"], "nothing lost");
        assert_eq!(new["stats"]["waiting_retry"]["read"], 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_in_three_formats_validates_and_tells_the_same_figures() {
    let redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    let store = common::default_redis_store(&redis).await;
    fail_into_dlq(&store, 7, "timeout").await;

    let (code, json, _) = output(ward(&redis, home.path()).args(["status", "--format", "json"]));
    assert_eq!(code, 0);
    assert_eq!(json.lines().count(), 1, "one document, one line");
    let doc: Value = serde_json::from_str(&json).unwrap();
    assert_valid(&doc);
    // The schema has teeth: a figure of the wrong type, or a required one missing, is caught.
    let validator = jsonschema::validator_for(&schema()).unwrap();
    let mut broken = doc.clone();
    broken["store"]["queues"][0]["stats"]["depth"] = Value::from("many");
    assert!(!validator.is_valid(&broken));
    let mut broken = doc.clone();
    broken["sources"][0]
        .as_object_mut()
        .unwrap()
        .remove("freshness");
    assert!(!validator.is_valid(&broken));
    assert_eq!(doc["kind"], "ward.status");
    assert_eq!(doc["format_version"], 2);
    assert_eq!(doc["sources"][0]["freshness"], "fresh");
    let delivery = doc["store"]["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["stats"]["queue"] == "delivery")
        .unwrap();
    assert_eq!(delivery["stats"]["dlq"], 7);
    let recent = doc["dlq_recent"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == "delivery")
        .unwrap();
    assert_eq!(recent["failed"], 7, "all seven failed within the window");

    let (code, text, _) = output(ward(&redis, home.path()).args(["status"]));
    assert_eq!(code, 0);
    assert!(text.contains("redis"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("delivery") && l.contains(" 7 ")),
        "{text}"
    );
    assert!(
        text.contains("dlq delivery: 7 failed in the last 5 min"),
        "{text}"
    );

    let (code, markdown, _) =
        output(ward(&redis, home.path()).args(["status", "--format", "markdown"]));
    assert_eq!(code, 0);
    assert!(markdown.starts_with("### Ward status: "), "{markdown}");
    assert!(
        markdown.contains("| delivery | 0 | 0 | 0 | 7 | 0 | - |"),
        "{markdown}"
    );
}

/// Reading changes nothing: not even the layout mark an empty store gets from its first worker.
#[test]
fn status_watch_and_check_write_nothing() {
    let redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    for args in [
        &["status", "--format", "json"][..],
        &["check"][..],
        &["watch", "--count", "2", "--interval", "250ms"][..],
    ] {
        let (code, _, err) = output(ward(&redis, home.path()).args(args));
        assert_eq!(code, 0, "{args:?}: {err}");
    }
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut redis.connection())
        .unwrap();
    assert!(keys.is_empty(), "a read wrote {keys:?}");
}

#[test]
fn status_of_an_unreachable_store_still_prints_a_valid_document_and_exits_3() {
    let mut redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    redis.kill();
    let started = Instant::now();
    let (code, json, _) = output(ward(&redis, home.path()).args(["status", "--format", "json"]));
    assert_eq!(code, 3);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "it did not hang"
    );
    let doc: Value = serde_json::from_str(&json).unwrap();
    assert_valid(&doc);
    assert_eq!(doc["store"], Value::Null, "unknown, never zero");
    assert_eq!(doc["sources"][0]["freshness"], "connecting");
    assert!(
        doc["sources"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{doc}"
    );
}

#[test]
fn watch_prints_one_document_per_line_and_its_second_has_rates_history() {
    let redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    let (code, out, _) =
        output(ward(&redis, home.path()).args(["watch", "--interval", "250ms", "--count", "3"]));
    assert_eq!(code, 0);
    let docs: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 3);
    for doc in &docs {
        assert_valid(doc);
    }
    let versions: Vec<u64> = docs
        .iter()
        .map(|d| d["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2, 3], "one builder across reads");
    assert_eq!(
        docs[2]["store"]["history"]["dlq"].as_array().unwrap().len(),
        3,
        "history accumulates like the control room's"
    );
}

/// `ward watch` running, after its first line: the child and the rest of its stdout.
fn watching(
    redis: &RedisServer,
    home: &Path,
) -> (std::process::Child, BufReader<std::process::ChildStdout>) {
    let mut child = ward_process(redis, home)
        .args(["watch", "--interval", "250ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    assert!(first.starts_with("{\"kind\":\"ward.status\""), "{first}");
    (child, lines)
}

/// The child's exit status and stderr, polled for up to 10 s.
fn exited(mut child: std::process::Child, what: &str) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status, stderr)
}

#[test]
fn watch_ends_cleanly_on_ctrl_c() {
    let redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    let (child, _lines) = watching(&redis, home.path());
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let (status, stderr) = exited(child, "watch ignored ctrl-c");
    assert!(status.success(), "{status:?}: {stderr}");
}

#[test]
fn watch_into_a_closed_pipe_exits_cleanly() {
    let redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    let (child, lines) = watching(&redis, home.path());
    drop(lines); // `| head -1`
    let (status, stderr) = exited(child, "watch kept running after its reader left");
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The incident script: ok → the DLQ grows → a breaker opens → Redis goes away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_walks_every_exit_code_through_an_incident() {
    let mut redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    let check = |redis: &RedisServer| output(ward(redis, home.path()).arg("check"));

    let (code, out, _) = check(&redis);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("OK "), "{out}");
    assert_eq!(out.lines().count(), 1);
    // A check that cannot run is UNKNOWN to a monitor, never CRITICAL (clap's usage code is 2).
    let (code, _, err) = output(ward(&redis, home.path()).args(["check", "--dlq-warn", "lots"]));
    assert_eq!(code, 3, "{err}");
    let (code, _, _) = output(ward(&redis, home.path()).args(["status", "--format", "yaml"]));
    assert_eq!(code, 2, "other commands keep the usage code");

    let store = common::default_redis_store(&redis).await;
    fail_into_dlq(&store, 3, "http_500").await;
    let (code, out, _) = check(&redis);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        out.trim(),
        "WARNING dlq delivery: growing: 3 entries failed in the last 5 min (threshold 1)"
    );
    // Thresholds are the operator's: off, the growth is not a finding.
    let (code, _, _) =
        output(ward(&redis, home.path()).args(["check", "--dlq-growth-warn", "off"]));
    assert_eq!(code, 0);
    let (code, out, _) =
        output(ward(&redis, home.path()).args(["check", "--dlq-growth-crit", "3"]));
    assert_eq!(code, 2, "{out}");

    // The slack breaker trips on real outcomes, as a worker would record them.
    let config = ward::engine::breaker::BreakerConfig::default();
    ward::store::update_breaker(store.as_ref(), "slack", |breaker| {
        let now = store.now_ms();
        for _ in 0..config.minimum_calls {
            breaker.record(
                &config,
                now,
                ward::engine::breaker::CallOutcome::Failure,
                false,
            );
        }
    })
    .await
    .unwrap();
    let (code, out, _) = check(&redis);
    assert_eq!(code, 2, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "one line per finding: {out}");
    assert!(
        lines[0].starts_with("CRITICAL breaker slack: open, 100% failures over 20 calls"),
        "worst first: {out}"
    );
    assert!(lines[1].starts_with("WARNING dlq delivery"), "{out}");

    let (code, out, _) = output(ward(&redis, home.path()).args(["check", "--format", "json"]));
    assert_eq!(code, 2);
    let verdict: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(verdict["severity"], "critical");
    assert_eq!(verdict["exit_code"], 2);
    assert_eq!(verdict["findings"].as_array().unwrap().len(), 2);
    assert_valid(&verdict["status"]);

    redis.kill();
    let (code, out, _) = check(&redis);
    assert_eq!(code, 3, "{out}");
    assert!(out.starts_with("UNKNOWN source redis: "), "{out}");
    assert!(out.contains("unreachable"), "{out}");
}

/// Every action subcommand, each with what it changes when it runs.
fn subcommands() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        (
            "replay",
            vec!["replay", "--error", "timeout", "--reason", "vendor fixed"],
        ),
        ("purge", vec!["purge", "--error", "timeout"]),
        ("move_to_dead", vec!["dead", "--error", "timeout"]),
        (
            "shedding",
            vec!["shed", "dlq", "--reason", "burst", "--for", "10m"],
        ),
        (
            "breaker_force_open",
            vec!["breaker", "open", "slack", "--reason", "vendor outage"],
        ),
        (
            "breaker_disable",
            vec!["breaker", "disable", "slack", "--reason", "flapping"],
        ),
        ("breaker_reset", vec!["breaker", "reset", "slack"]),
        ("emergency_stop", vec!["stop", "on", "--reason", "storm"]),
        ("send_test_alert", vec!["test-alert", "--wait", "1s"]),
        (
            "set_config",
            vec![
                "config",
                "set",
                "shedding.delivery.warn",
                "500",
                "--reason",
                "tuning",
            ],
        ),
        (
            "set_config",
            vec!["config", "unset", "shedding.delivery.warn"],
        ),
    ]
}

/// What a run could have changed: audit, flags, breakers, config, queues.
fn fingerprint(redis: &RedisServer) -> Vec<String> {
    let mut conn = redis.connection();
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    keys.sort();
    keys.into_iter()
        .map(|key| {
            let dump: Option<Vec<u8>> = redis::cmd("DUMP").arg(&key).query(&mut conn).unwrap();
            format!("{key} {dump:?}")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_refuses_without_yes_and_under_read_only_and_changes_nothing() {
    let redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    let store = common::default_redis_store(&redis).await;
    fail_into_dlq(&store, 4, "timeout").await;
    let before = fingerprint(&redis);

    let read_only_config = home.path().join("read-only.toml");
    std::fs::write(&read_only_config, "[tui]\nread_only = true\n").unwrap();

    for (kind, args) in subcommands() {
        // No --yes, no terminal: the plan is printed, nothing runs.
        let (code, out, err) = output(ward(&redis, home.path()).args(&args));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.starts_with("plan "), "{args:?} prints its plan: {out}");
        assert!(err.contains("pass --yes"), "{args:?}: {err}");

        let (code, _, err) = output(
            ward(&redis, home.path())
                .args(&args)
                .args(["--read-only", "--yes"]),
        );
        assert_eq!(code, 4, "{args:?} under --read-only: {err}");
        assert!(err.contains(kind) && err.contains("--read-only"), "{err}");

        // The same global flag before the subcommand, and its environment variable.
        let (code, _, err) = output(
            ward(&redis, home.path())
                .arg("--read-only")
                .args(&args)
                .arg("--yes"),
        );
        assert_eq!(code, 4, "--read-only {args:?}: {err}");
        assert!(err.contains(kind) && err.contains("--read-only"), "{err}");
        let (code, _, err) = output(
            ward(&redis, home.path())
                .env(ward::cli::READ_ONLY_ENV, "1")
                .args(&args)
                .arg("--yes"),
        );
        assert_eq!(code, 4, "{args:?} with WARD_READ_ONLY=1: {err}");
        assert!(
            err.contains(kind) && err.contains("WARD_READ_ONLY"),
            "{err}"
        );

        let (code, _, err) = output(
            ward(&redis, home.path())
                .arg("--config")
                .arg(&read_only_config)
                .args(&args)
                .arg("--yes"),
        );
        assert_eq!(code, 4, "{args:?} with tui.read_only: {err}");
        assert!(err.contains("read-only in config"), "{err}");

        let (code, out, err) =
            output(
                ward(&redis, home.path())
                    .args(&args)
                    .args(["--dry-run", "--format", "json"]),
            );
        assert_eq!(code, 0, "{args:?} --dry-run: {err}");
        let plan: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(plan["plan"]["action"]["action"], kind, "{out}");

        assert_eq!(fingerprint(&redis), before, "{args:?} changed the store");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_runs_with_yes_and_leaves_a_headless_audit_record() {
    let redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    let store = common::default_redis_store(&redis).await;
    fail_into_dlq(&store, 6, "timeout").await;

    let commands = subcommands();
    for (kind, args) in &commands {
        let bulk = ["replay", "purge", "move_to_dead"].contains(kind);
        if bulk {
            fail_into_dlq(&store, 2, "timeout").await;
        }
        let (code, out, err) = output(
            ward(&redis, home.path())
                .args(args)
                .args(["--yes", "--format", "json"]),
        );
        let result: Value = serde_json::from_str(&out).unwrap();
        if *kind == "send_test_alert" {
            // No worker runs here: the test alert is followed until --wait and says so.
            assert_eq!(code, 1, "{args:?}: {err}");
            assert_eq!(result["report"]["test"]["status"], "timed_out", "{out}");
            assert!(err.contains("not delivered: timed out"), "{err}");
        } else {
            assert_eq!(code, 0, "{args:?}: {err}");
        }
        assert_eq!(result["report"]["outcome"]["outcome"], "completed", "{out}");
        assert!(result["report"]["audit_id"].is_string(), "{out}");
        assert_eq!(result["plan"]["action"]["action"], *kind);
        if bulk {
            assert!(result["report"]["moved"].as_u64().unwrap() >= 2, "{out}");
        }
    }
    let mut audit = store.audit_recent(100).await.unwrap();
    audit.reverse();
    let recorded: Vec<&str> = audit.iter().map(|e| e.record.action.as_str()).collect();
    let expected: Vec<&str> = commands.iter().map(|(kind, _)| *kind).collect();
    assert_eq!(recorded, expected, "one record per run, in order");
    for entry in &audit {
        assert_eq!(entry.record.origin, "headless");
        assert_eq!(entry.record.who, "ops@ci");
    }
    // The operator's reason is in the record: a bulk run's own, an override's.
    let reasons: Vec<&str> = audit.iter().map(|e| e.record.reason.as_str()).collect();
    assert_eq!(reasons[0], "vendor fixed", "{reasons:?}");
    assert_eq!(reasons[1], "", "a purge without --reason: {reasons:?}");
    assert_eq!(reasons[3], "burst", "{reasons:?}");

    // And the changes are visible to the next status read.
    fail_into_dlq(&store, 1, "http_500").await;
    let (_, json, _) = output(ward(&redis, home.path()).args(["status", "--format", "json"]));
    let doc: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["store"]["shedding"], "dlq");
    assert!(doc["store"]["emergency_stop"].is_object(), "{doc}");

    // Text output: the result on stdout, one line.
    let (code, out, _) = output(ward(&redis, home.path()).args(["stop", "off", "--yes"]));
    assert_eq!(code, 0);
    assert!(out.starts_with("completed: resume all sending"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_alert_to_an_unknown_channel_is_a_usage_error_and_sends_nothing() {
    let redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("channels.toml");
    std::fs::write(
        &config,
        "[[delivery.channels]]\nname = \"pager\"\nkind = \"null\"\n",
    )
    .unwrap();
    let _layout_written = common::default_redis_store(&redis).await;
    let before = fingerprint(&redis);
    let (code, _, err) = output(
        ward(&redis, home.path())
            .arg("--config")
            .arg(&config)
            .args(["test-alert", "nosuch", "--yes"]),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("no channel \"nosuch\" is configured (channels: pager)"),
        "{err}"
    );
    assert_eq!(
        fingerprint(&redis),
        before,
        "nothing was enqueued or audited"
    );
}
