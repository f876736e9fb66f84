//! Alertmanager's API v2 silences on Ward: an HTTP round trip on the memory store and a real
//! redis-server (create, list, filter, get, replace, expire, refusals, audit records), the API
//! keys, and the real `amtool` against a real `ward up` on Redis.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

use crate::common;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use ward::store::prelude::*;

use common::{Harness, Kind, RedisServer, T0};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use ward::config::{ApiKey, Config, IngestConfig};
use ward::delivery::{NullBackend, Secret};
use ward::engine::breaker::BreakerConfig;
use ward::engine::clock::{Clock, ManualClock, SystemClock};
use ward::engine::routing::RoutingConfig;
use ward::model::time::format_rfc3339_ms;
use ward::model::{MatchOp, SilenceState};
use ward::pipeline::{Pipeline, PipelineParts};
use ward::telemetry::{EventLog, Metrics};

const OPS_KEY: &str = "ops-key-0123456789abcdef";
const ACME_KEY: &str = "acme-key-0123456789abcdef";

/// A pipeline on the harness's store serving HTTP on a free loopback port, until dropped.
struct Served {
    base: String,
    http: reqwest::Client,
    stop: CancellationToken,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn serve(h: &Harness, api_keys: Vec<ApiKey>) -> Served {
    let mut config = Config::default();
    config.workers.idle_poll_ms = 5;
    let pipeline = Pipeline::new(PipelineParts {
        store: h.store.clone(),
        backends: vec![Arc::new(NullBackend::new("void"))],
        routing: RoutingConfig {
            default_channels: vec!["void".into()],
            ..RoutingConfig::default()
        },
        policies: Vec::new(),
        breaker: BreakerConfig::default(),
        ingest: IngestConfig {
            bind: "127.0.0.1:0".into(),
            api_keys,
            ..IngestConfig::default()
        },
        queues: config.queues,
        workers: config.workers,
        metrics: Metrics::new(),
        events: EventLog::disabled(),
        alerting: ward::config::alerting::AlertingConfig::default(),
    })
    .unwrap();
    let stop = CancellationToken::new();
    let running = pipeline.spawn(&stop, true).await.unwrap();
    let address = running.address.expect("the server listens");
    tokio::spawn(running.join());
    Served {
        base: format!("http://{address}"),
        http: reqwest::Client::new(),
        stop,
    }
}

impl Served {
    async fn get(&self, path: &str) -> (u16, Value) {
        answer(
            self.http
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn post(&self, body: &Value) -> (u16, Value) {
        answer(
            self.http
                .post(format!("{}/api/v2/silences", self.base))
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn delete(&self, id: &str) -> (u16, Value) {
        answer(
            self.http
                .delete(format!("{}/api/v2/silence/{id}", self.base))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// The listed silences' ids with `filter` matchers (and any other query).
    async fn ids(&self, query: &[(&str, &str)]) -> Vec<String> {
        let query: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        let (status, body) = self
            .get(&format!("/api/v2/silences?{}", query.join("&")))
            .await;
        assert_eq!(status, 200, "{query:?}: {body}");
        body.as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Percent-encode a query value (every byte but letters and digits).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Status and JSON body (`null` when empty).
async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    (status, body)
}

fn disk_silence(starts_ms: i64, ends_ms: i64, comment: &str) -> Value {
    json!({
        "matchers": [
            { "name": "alertname", "value": "Disk", "isRegex": false, "isEqual": true },
            { "name": "instance", "value": "db-.*", "isRegex": true },
        ],
        "startsAt": format_rfc3339_ms(starts_ms),
        "endsAt": format_rfc3339_ms(ends_ms),
        "createdBy": "ann",
        "comment": comment,
    })
}

async fn the_silences_api_round_trips(h: Harness) {
    let api = serve(&h, Vec::new()).await;
    let now = h.store.now_ms();
    let (status, body) = api
        .post(&disk_silence(now - 5_000, now + 7_200_000, "disk swap"))
        .await;
    assert_eq!(status, 200, "{body}");
    let id = body["silenceID"].as_str().unwrap().to_owned();

    let (status, list) = api.get("/api/v2/silences").await;
    assert_eq!(status, 200);
    assert_eq!(
        list,
        json!([{
            "id": id,
            "status": { "state": "active" },
            "updatedAt": format_rfc3339_ms(now),
            "matchers": [
                { "name": "alertname", "value": "Disk", "isRegex": false, "isEqual": true },
                { "name": "instance", "value": "db-.*", "isRegex": true, "isEqual": true },
            ],
            "startsAt": format_rfc3339_ms(now),
            "endsAt": format_rfc3339_ms(now + 7_200_000),
            "createdBy": "ann",
            "comment": "disk swap",
        }]),
        "a start in the past becomes now"
    );
    let (status, one) = api.get(&format!("/api/v2/silence/{id}")).await;
    assert_eq!((status, &one), (200, &list[0]));
    let stored = h.store.silence_get(&id).await.unwrap().unwrap();
    assert_eq!(stored.created_by, "ann");
    assert_eq!(stored.matchers[1].op, MatchOp::Regex);
    let audit = h.store.audit_recent(1).await.unwrap();
    let record = &audit[0].record;
    assert_eq!(
        (
            record.action.as_str(),
            record.origin.as_str(),
            record.who.as_str()
        ),
        ("silence_create", "api", "ann@api")
    );
    assert_eq!(record.reason, "disk swap");

    // Filters keep silences holding the same matcher (Alertmanager's rule), not ones it matches.
    assert_eq!(
        api.ids(&[("filter", "alertname=\"Disk\"")]).await,
        [id.as_str()]
    );
    assert_eq!(
        api.ids(&[
            ("filter", "alertname=Disk"),
            ("filter", "instance=~\"db-.*\"")
        ])
        .await,
        [id.as_str()]
    );
    assert!(api.ids(&[("filter", "instance=\"db-1\"")]).await.is_empty());
    assert!(api.ids(&[("filter", "alertname=Cpu")]).await.is_empty());
    let (status, body) = api.get("/api/v2/silences?filter=a%3D~%22(%22").await;
    assert_eq!(status, 400);
    assert!(
        body.as_str().unwrap().contains("does not compile"),
        "{body}"
    );

    // A change is a new silence; the one it replaces expires.
    let mut change = disk_silence(now, now + 3_600_000, "disk swap, one hour");
    change["id"] = json!(id);
    let (status, body) = api.post(&change).await;
    assert_eq!(status, 200, "{body}");
    let new_id = body["silenceID"].as_str().unwrap().to_owned();
    assert_ne!(new_id, id);
    // A silence ends at its last millisecond: read it after that.
    h.clock.advance(Duration::from_millis(1));
    let (_, old) = api.get(&format!("/api/v2/silence/{id}")).await;
    assert_eq!(old["status"]["state"], "expired");
    assert_eq!(api.ids(&[("expired", "false")]).await, [new_id.as_str()]);
    change["id"] = json!("01kaxxxxxxxxxxxxxxxxxxxxxx");
    let (status, body) = api.post(&change).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.as_str().unwrap().contains("not found"), "{body}");

    // Expire: the state says so, the store and the audit agree; unknown ids are 404.
    h.clock.advance(Duration::from_secs(1));
    let (status, body) = api.delete(&new_id).await;
    assert_eq!((status, body), (200, Value::Null));
    h.clock.advance(Duration::from_millis(1));
    let (_, expired) = api.get(&format!("/api/v2/silence/{new_id}")).await;
    assert_eq!(expired["status"]["state"], "expired");
    assert_eq!(expired["endsAt"], format_rfc3339_ms(now + 1_001));
    assert_eq!(
        h.store
            .silence_get(&new_id)
            .await
            .unwrap()
            .unwrap()
            .state(h.store.now_ms() + 1),
        SilenceState::Expired
    );
    let audit = h.store.audit_recent(1).await.unwrap();
    assert_eq!(
        (
            audit[0].record.action.as_str(),
            audit[0].record.origin.as_str()
        ),
        ("silence_expire", "api")
    );
    assert_eq!(
        api.ids(&[]).await,
        [new_id.as_str(), id.as_str()],
        "expired, the most recently ended first"
    );
    assert!(api.ids(&[("expired", "false")]).await.is_empty());
    for (status, body) in [
        api.delete("01kaxxxxxxxxxxxxxxxxxxxxxx").await,
        api.get("/api/v2/silence/01kaxxxxxxxxxxxxxxxxxxxxxx").await,
    ] {
        assert_eq!(status, 404, "{body}");
    }
}

async fn bad_silences_are_refused_with_a_clear_message(h: Harness) {
    let api = serve(&h, Vec::new()).await;
    let now = h.store.now_ms();
    let good = disk_silence(now, now + 3_600_000, "disk swap");
    let with = |pointer: &str, value: Value| {
        let mut body = good.clone();
        *body.pointer_mut(pointer).unwrap() = value;
        body
    };
    let cases = [
        (
            with("/matchers/0/name", json!("1alert")),
            "matchers[0]: \"1alert\" is not a label name",
        ),
        (with("/matchers/1/value", json!("(")), "does not compile"),
        (
            json!({ "matchers": [{ "name": "team", "value": ".*", "isRegex": true }],
                    "startsAt": good["startsAt"], "endsAt": good["endsAt"],
                    "createdBy": "ann", "comment": "x" }),
            "would hide every alert",
        ),
        (with("/matchers", json!([])), "at least one matcher"),
        (
            with("/endsAt", json!(format_rfc3339_ms(now - 3_600_000))),
            "the end is in the past",
        ),
        (
            with("/startsAt", json!(format_rfc3339_ms(now + 7_200_000))),
            "the end must come after the start",
        ),
        (
            with("/endsAt", json!("tomorrow")),
            "endsAt: \"tomorrow\" is not an RFC 3339 time",
        ),
        (with("/comment", json!(" ")), "a reason is required"),
        (with("/createdBy", json!("")), "say who creates the silence"),
        (
            json!({ "matchers": good["matchers"], "startsAt": good["startsAt"],
                    "endsAt": good["endsAt"], "comment": "x" }),
            "missing field `createdBy`",
        ),
    ];
    for (body, says) in cases {
        let (status, answer) = api.post(&body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let message = answer.as_str().expect("the message is a JSON string");
        assert!(message.contains(says), "{says:?} not in {message:?}");
    }
    let response = api
        .http
        .post(format!("{}/api/v2/silences", api.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert!(h.store.silences().await.unwrap().is_empty());
    assert!(
        h.store.audit_recent(10).await.unwrap().is_empty(),
        "a refused plan changes nothing, so it is not audited"
    );
}

conformance!(
    the_silences_api_round_trips,
    bad_silences_are_refused_with_a_clear_message,
);

#[tokio::test]
async fn api_keys_guard_the_silences_api_and_name_the_caller() {
    let h = Harness::new(Kind::Memory, 1).await;
    let key = |name: &str, key: &str, tenant: Option<&str>| ApiKey {
        name: name.into(),
        key: Secret::new(key),
        tenant: tenant.map(str::to_owned),
    };
    let api = serve(
        &h,
        vec![
            key("ops", OPS_KEY, None),
            key("acme", ACME_KEY, Some("acme")),
        ],
    )
    .await;
    let url = format!("{}/api/v2/silences", api.base);
    let body = disk_silence(T0, T0 + 3_600_000, "disk swap");
    for (request, want) in [
        (api.http.get(&url), 401),
        (api.http.get(&url).bearer_auth("nope-nope-nope-nope"), 401),
        (api.http.post(&url).json(&body), 401),
        (api.http.get(&url).bearer_auth(ACME_KEY), 403),
        (api.http.post(&url).json(&body).bearer_auth(ACME_KEY), 403),
        (api.http.get(&url).bearer_auth(OPS_KEY), 200),
        (api.http.get(&url).header("x-api-key", OPS_KEY), 200),
        (
            api.http
                .get(format!("{}/api/v2/status", api.base))
                .bearer_auth(OPS_KEY),
            200,
        ),
    ] {
        let (status, answer) = answer(request.send().await.unwrap()).await;
        assert_eq!(status, want, "{answer}");
        if want == 403 {
            assert!(
                answer.as_str().unwrap().contains("without a tenant"),
                "{answer}"
            );
        }
    }
    assert!(h.store.silences().await.unwrap().is_empty());
    let (status, created) = answer(
        api.http
            .post(&url)
            .json(&body)
            .bearer_auth(OPS_KEY)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let audit = h.store.audit_recent(1).await.unwrap();
    assert_eq!(audit[0].record.who, "ann@api:ops", "the key's name is kept");
}

// The real amtool against a real `ward up`.

/// amtool, or a failure saying how to get it: this test must not pass without running.
fn amtool() -> PathBuf {
    common::which("amtool").unwrap_or_else(|| {
        panic!(
            "amtool is not installed: this test runs the real amtool against ward up \
             (apt-get install -y prometheus-alertmanager, or run `bash .ci/test`)"
        )
    })
}

/// A running `ward up`, killed when dropped (its log printed if the test failed).
struct WardUp {
    child: Child,
    base: String,
    log: PathBuf,
}

impl WardUp {
    fn start(config: &Path) -> Self {
        let log = config.with_file_name("ward.log");
        let mut child = common::ward_process(config.parent().unwrap())
            .arg("up")
            .env("WARD_CONFIG", config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("spawn ward up");
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let mut ward = Self {
            child,
            base: String::new(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("ward up: ingest on ") {
                        assert!(rest.contains("/api/v2/silences"), "{line}");
                        rest.split_whitespace()
                            .next()
                            .unwrap()
                            .clone_into(&mut ward.base);
                        return ward;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(status) = ward.child.try_wait().unwrap() {
                        panic!("ward up exited before it was ready: {status}");
                    }
                    assert!(Instant::now() < deadline, "ward up was not ready in 20 s");
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("ward up closed its stdout before it was ready");
                }
            }
        }
    }
}

impl Drop for WardUp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- ward up log ---\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

/// Runs amtool against one `ward up`, with or without the bearer-token HTTP config.
struct Amtool {
    binary: PathBuf,
    url: String,
    http_config: Option<PathBuf>,
}

impl Amtool {
    /// Exit success, stdout, stderr.
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let mut command = Command::new(&self.binary);
        command
            .arg(format!("--alertmanager.url={}", self.url))
            .env_remove("HOME")
            .stdin(Stdio::null());
        if let Some(file) = &self.http_config {
            command.arg(format!("--http.config.file={}", file.display()));
        }
        let out = command.args(args).output().expect("run amtool");
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args);
        assert!(ok, "amtool {args:?} failed:\n{stdout}\n{stderr}");
        stdout
    }

    fn query_json(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["-o", "json", "silence", "query"];
        all.extend_from_slice(args);
        let out = self.ok(&all);
        serde_json::from_str::<Value>(&out)
            .unwrap_or_else(|e| panic!("amtool's JSON ({e}): {out}"))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn amtool_adds_queries_updates_and_expires_silences_on_ward_up() {
    let binary = amtool();
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ward.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[store]
backend = "redis"
redis_url = "{}"

[ingest]
bind = "127.0.0.1:0"
api_keys = [{{ name = "ops", key = "{OPS_KEY}" }}]

[routing]
default_channels = ["void"]

[[delivery.channels]]
name = "void"
kind = "null"
"#,
            redis.url()
        ),
    )
    .unwrap();
    let http_config = dir.path().join("amtool-http.yml");
    std::fs::write(
        &http_config,
        format!("authorization:\n  type: Bearer\n  credentials: {OPS_KEY}\n"),
    )
    .unwrap();
    let ward = WardUp::start(&config);
    let amtool = Amtool {
        binary,
        url: ward.base.clone(),
        http_config: Some(http_config),
    };
    let store = common::redis_store(
        &redis.url(),
        ward::config::Config::default().store.partitions,
        ManualClock::new(SystemClock.now_ms()),
    )
    .await;

    // Without the key, amtool fails and says why.
    let anonymous = Amtool {
        binary: amtool.binary.clone(),
        url: amtool.url.clone(),
        http_config: None,
    };
    let (ok, _, stderr) = anonymous.run(&["silence", "query"]);
    assert!(!ok, "no key, no silences");
    assert!(
        stderr.contains("401") || stderr.contains("API key"),
        "{stderr}"
    );

    let before = SystemClock.now_ms();
    let added = amtool.ok(&[
        "silence",
        "add",
        "alertname=Disk",
        "instance=~\"db-.*\"",
        "--comment=disk swap",
        "--author=ann",
        "--duration=2h",
    ]);
    let id = added.trim().to_owned();
    assert_eq!(id.len(), 26, "amtool prints the new id: {added:?}");

    let listed = amtool.query_json(&[]);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let silence = &listed[0];
    assert_eq!(silence["id"], id.as_str());
    assert_eq!(silence["status"]["state"], "active");
    assert_eq!(silence["createdBy"], "ann");
    assert_eq!(silence["comment"], "disk swap");
    assert_eq!(
        silence["matchers"],
        json!([
            { "name": "alertname", "value": "Disk", "isRegex": false, "isEqual": true },
            { "name": "instance", "value": "db-.*", "isRegex": true, "isEqual": true },
        ])
    );
    assert_eq!(
        amtool
            .ok(&["silence", "query", "-q", "instance=~\"db-.*\""])
            .trim(),
        id,
        "a filter amtool sends"
    );
    assert_eq!(
        amtool.ok(&["silence", "query", "-q", "Cpu"]).trim(),
        "",
        "amtool's bare word is an alertname"
    );

    let stored = store.silence_get(&id).await.unwrap().expect("stored");
    assert_eq!(stored.created_by, "ann");
    assert_eq!(stored.comment, "disk swap");
    let length = stored.ends_at_ms - stored.starts_at_ms;
    assert!(
        (7_200_000 - 5_000..=7_200_000).contains(&length),
        "two hours: {length} ms"
    );
    assert!(stored.starts_at_ms >= before - 1_000);
    let audit = store.audit_recent(1).await.unwrap();
    assert_eq!(
        (
            audit[0].record.action.as_str(),
            audit[0].record.origin.as_str(),
            audit[0].record.who.as_str()
        ),
        ("silence_create", "api", "ann@api:ops")
    );

    // `silence update` reads the silence, posts it back with its id: Ward makes a new one.
    // (amtool 0.25's `update -q` prints a pointer, not the id: its table names the new one.)
    let updated = amtool.ok(&["silence", "update", &id, "--comment=disk swap, OPS-12"]);
    let listed = amtool.query_json(&[]);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let new_id = listed[0]["id"].as_str().unwrap().to_owned();
    assert!(new_id != id && updated.contains(&new_id), "{updated}");
    assert_eq!(listed[0]["comment"], "disk swap, OPS-12");
    assert_eq!(
        store
            .silence_get(&id)
            .await
            .unwrap()
            .unwrap()
            .state(SystemClock.now_ms() + 1),
        SilenceState::Expired,
        "the replaced silence ended"
    );

    amtool.ok(&["silence", "expire", &new_id]);
    assert!(amtool.query_json(&[]).is_empty(), "nothing active");
    let expired = amtool.query_json(&["--expired"]);
    let ids: Vec<&str> = expired.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2, "{expired:?}");
    assert!(ids.contains(&id.as_str()) && ids.contains(&new_id.as_str()));
    assert_eq!(
        store
            .silence_get(&new_id)
            .await
            .unwrap()
            .unwrap()
            .state(SystemClock.now_ms() + 1),
        SilenceState::Expired
    );
    let audit = store.audit_recent(1).await.unwrap();
    assert_eq!(
        (
            audit[0].record.action.as_str(),
            audit[0].record.who.as_str()
        ),
        ("silence_expire", "anonymous@api:ops")
    );

    // A refusal reaches the operator: amtool fails and prints Ward's message.
    let (ok, _, stderr) = amtool.run(&[
        "silence",
        "add",
        "team=~\".*\"",
        "--comment=everything",
        "--author=ann",
    ]);
    assert!(!ok);
    assert!(stderr.contains("would hide every alert"), "{stderr}");
    let (ok, _, stderr) = amtool.run(&["silence", "expire", "01kaxxxxxxxxxxxxxxxxxxxxxx"]);
    assert!(!ok, "an unknown id fails: {stderr}");
    drop(ward);
}
