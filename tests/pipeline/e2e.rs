//! End to end on a real Redis: 10 000 alerts through both ingest endpoints to a flaky wiremock
//! Slack and an SMTP listener are each delivered exactly once or dead-lettered with their error,
//! the counts reconcile with /metrics, `Retry-After` is honoured, and duplicates and replays of a
//! delivered alert are not sent again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

use crate::common;
use crate::smtp_common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::RedisServer;
use futures::StreamExt;
use serde_json::{Value, json};
use smtp_common::{Script, SmtpStub};
use tokio_util::sync::CancellationToken;
use ward::config::{IngestConfig, QueuesConfig, WorkersConfig};
use ward::delivery::config::{SlackConfig, SmtpConfig};
use ward::delivery::smtp::SmtpMode;
use ward::delivery::{Backend, ChannelConfig, Secret};
use ward::engine::breaker::BreakerConfig;
use ward::engine::ratelimit::RateLimit;
use ward::engine::retry::{Backoff, Jitter, RetryPolicy};
use ward::engine::routing::{RouteConfig, RoutingConfig};
use ward::model::{
    Alert, AlertStatus, DeliveryJob, DlqEntry, Envelope, FailureInfo, QueueName, Severity,
    WorkerId, fingerprint,
};
use ward::pipeline::{Pipeline, PipelineParts};
use ward::store::{
    DeadLetterRequest, DlqFilter, DlqScope, FailedSet, KeySchema, MAX_BATCH, RedisStore,
    RedisStoreOptions, ReplayOptions, Store,
};
use ward::telemetry::{EventLog, Metrics};

/// Alerts in the acceptance run.
const ALERTS: u64 = 10_000;
/// Of which the first this many go through `/v1/alerts`, the rest through `/v1/alertmanager`.
const WARD_JSON: u64 = 6_000;
/// Attempts per delivery, the first call included, in the test's retry policy.
const MAX_ATTEMPTS: usize = 4;
/// Every alert whose id is a multiple of this carries `team=dba` and also goes to mail.
const MAIL_EVERY: u64 = 5;
/// The SMTP listener answers 451 (transient) to every n-th mail.
const MAIL_REFUSE_EVERY: usize = 7;
const POLICY: &str = "e2e";
const SLACK: &str = "slack";
const MAIL: &str = "mail";
/// How long the whole run may take before the test gives up waiting (a failure, not a sleep).
const DRAIN_DEADLINE: Duration = Duration::from_secs(180);

fn wall_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

// ---------------------------------------------------------------------------------------------
// The Slack mock

/// One request the Slack mock answered.
#[derive(Debug, Clone, Copy)]
struct Hit {
    status: u16,
    at: Instant,
    wall_ms: i64,
}

/// A Slack incoming webhook that answers by a fixed script per alert and attempt: about 30 %
/// 500, 5 % 429 with `Retry-After: 1`, the rest 200 `ok` (or always 200 when not flaky).
#[derive(Default)]
struct ScriptedSlack {
    flaky: bool,
    hits: Mutex<HashMap<u64, Vec<Hit>>>,
    /// Requests whose body named no `e2e_id`: must stay 0.
    unidentified: AtomicUsize,
}

/// A stable pseudo-random status for attempt `attempt` (0-based) of alert `id`, so every run
/// sees the same faults for the same alerts whatever order the workers send in.
fn scripted_status(id: u64, attempt: usize) -> u16 {
    let mut x = id.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (attempt as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 29;
    match x % 100 {
        0..30 => 500,
        30..35 => 429,
        _ => 200,
    }
}

/// The `e2e_id` label of the alert a Slack message is about (from its *Labels* section).
fn slack_alert_id(body: &[u8]) -> Option<u64> {
    let message: Value = serde_json::from_slice(body).ok()?;
    message["blocks"]
        .as_array()?
        .iter()
        .filter_map(|block| block["text"]["text"].as_str())
        .filter(|text| text.starts_with("*Labels*"))
        .flat_map(str::lines)
        .find_map(|line| line.strip_prefix("`e2e_id` = "))
        .and_then(|id| id.parse().ok())
}

impl wiremock::Respond for ScriptedSlack {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let at = Instant::now();
        let Some(id) = slack_alert_id(&request.body) else {
            self.unidentified.fetch_add(1, Ordering::SeqCst);
            return wiremock::ResponseTemplate::new(400).set_body_string("invalid_payload");
        };
        let mut hits = self.hits.lock().unwrap();
        let seen = hits.entry(id).or_default();
        let status = if self.flaky {
            scripted_status(id, seen.len())
        } else {
            200
        };
        seen.push(Hit {
            status,
            at,
            wall_ms: wall_ms(),
        });
        let response = wiremock::ResponseTemplate::new(status);
        match status {
            200 => response.set_body_string("ok"),
            429 => response
                .insert_header("Retry-After", "1")
                .set_body_string(r#"{"ok":false,"error":"rate_limited"}"#),
            _ => response.set_body_string("internal_error"),
        }
    }
}

impl ScriptedSlack {
    fn hits(&self) -> HashMap<u64, Vec<Hit>> {
        self.hits.lock().unwrap().clone()
    }
}

/// A wiremock server answering Slack webhook posts with `responder`, and the channel's config.
async fn slack_mock(responder: Arc<ScriptedSlack>) -> (wiremock::MockServer, ChannelConfig) {
    struct Shared(Arc<ScriptedSlack>);
    impl wiremock::Respond for Shared {
        fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
            self.0.respond(request)
        }
    }
    // Our own log replaces wiremock's: 15 000 recorded requests are of no use here.
    let server = wiremock::MockServer::builder()
        .disable_request_recording()
        .start()
        .await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/services/T0/B0/e2e"))
        .respond_with(Shared(responder))
        .mount(&server)
        .await;
    let channel = ChannelConfig::Slack(SlackConfig {
        name: SLACK.to_owned(),
        webhook_url: Secret::new(format!("{}/services/T0/B0/e2e", server.uri())),
        timeout_ms: Some(10_000),
        connect_timeout_ms: Some(2_000),
    });
    (server, channel)
}

/// The `e2e_id` label of the alert a mail is about (from its `Labels:` list).
fn mail_alert_id(data: &str) -> Option<u64> {
    data.lines()
        .find_map(|line| line.strip_prefix("  e2e_id = "))
        .and_then(|id| id.trim().parse().ok())
}

// ---------------------------------------------------------------------------------------------
// The pipeline

/// A Redis store with two partitions, so the workers lease across partitions.
async fn open_store(server: &RedisServer) -> Arc<dyn Store> {
    let options = RedisStoreOptions::new(&server.url(), KeySchema::ward("ward", 2));
    Arc::new(RedisStore::connect(options).await.unwrap())
}

/// Fast retries so a run takes seconds: 25 ms doubling to 400 ms, full jitter, 4 attempts.
fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        name: POLICY.to_owned(),
        backoff: Backoff::Exponential {
            base: Duration::from_millis(25),
            factor: 2.0,
            cap: Duration::from_millis(400),
        },
        jitter: Jitter::Full,
        max_attempts: MAX_ATTEMPTS as u32,
        max_elapsed: None,
    }
}

struct Running {
    base: String,
    stop: CancellationToken,
    tasks: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn start(
        store: Arc<dyn Store>,
        channels: &[ChannelConfig],
        routing: RoutingConfig,
    ) -> Self {
        let backends: Vec<Arc<dyn Backend>> = channels.iter().map(|c| c.build().unwrap()).collect();
        // Big batches and many sends in flight, and quick polling so retries come back on time.
        let queues = QueuesConfig {
            batch_size: MAX_BATCH,
            ..QueuesConfig::default()
        };
        let workers = WorkersConfig {
            concurrency: 128,
            idle_poll_ms: 5,
            scheduler_interval_ms: 10,
            stats_interval_ms: 200,
            ..WorkersConfig::default()
        };
        let pipeline = Pipeline::new(PipelineParts {
            store,
            backends,
            routing,
            policies: vec![fast_policy()],
            // The breaker never sees enough calls to judge, so it never opens: this test is
            // about retries and the DLQ, and an open breaker would only defer deliveries.
            breaker: BreakerConfig {
                minimum_calls: u32::MAX,
                ..BreakerConfig::default()
            },
            ingest: IngestConfig {
                bind: "127.0.0.1:0".to_owned(),
                // Rate limiting is tested in pipeline_ingest; here it must not refuse anything.
                rate_limit: RateLimit {
                    count: 1_000_000,
                    period_ms: 1000,
                    burst: 1_000_000,
                },
                ..IngestConfig::default()
            },
            queues,
            workers,
            metrics: Metrics::new(),
            events: EventLog::disabled(),
            alerting: ward::config::alerting::AlertingConfig::default(),
        })
        .unwrap();
        let stop = CancellationToken::new();
        let running = pipeline.spawn(&stop, true).await.unwrap();
        let base = format!("http://{}", running.address.unwrap());
        Self {
            base,
            stop,
            tasks: tokio::spawn(running.join()),
        }
    }

    /// Stop every worker and wait until they have all ended.
    async fn shut_down(self) {
        self.stop.cancel();
        self.tasks.await.unwrap();
    }

    async fn metrics(&self, http: &reqwest::Client) -> Samples {
        let response = http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        Samples::parse(&response.text().await.unwrap())
    }
}

fn routing() -> RoutingConfig {
    RoutingConfig {
        routes: vec![RouteConfig {
            name: "dba".to_owned(),
            labels: [("team".to_owned(), "dba".to_owned())].into(),
            channels: vec![SLACK.to_owned(), MAIL.to_owned()],
            ..RouteConfig::default()
        }],
        default_channels: vec![SLACK.to_owned()],
        default_retry_policy: POLICY.to_owned(),
        ..RoutingConfig::default()
    }
}

/// Wait until nothing is waiting, leased or scheduled in the ingest and delivery queues, seen
/// twice in a row (the figures of one read are per key, not one snapshot).
async fn wait_drained(store: &dyn Store) {
    let deadline = Instant::now() + DRAIN_DEADLINE;
    let mut quiet_reads = 0;
    loop {
        let stats = store
            .stats(&[QueueName::ingest(), QueueName::delivery()])
            .await
            .unwrap();
        let busy: u64 = stats
            .queues
            .iter()
            .map(|q| q.depth + q.in_flight + q.scheduled)
            .sum();
        quiet_reads = if busy == 0 { quiet_reads + 1 } else { 0 };
        if quiet_reads == 2 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "queues did not drain within {DRAIN_DEADLINE:?}: {:?}",
            stats.queues
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every entry of the delivery queue's DLQ, paged to the end.
async fn delivery_dlq(store: &dyn Store) -> Vec<DlqEntry> {
    common::failed_entries(store, &QueueName::delivery(), FailedSet::Dlq).await
}

/// The delivery job a DLQ entry holds: its channel and the alert's `e2e_id`.
fn dlq_target(entry: &DlqEntry) -> (String, u64) {
    let envelope = entry
        .envelope
        .as_ref()
        .expect("a DLQ entry keeps its envelope");
    let job: DeliveryJob = envelope.payload.decode().unwrap();
    let id = job.alert.labels["e2e_id"].parse().unwrap();
    (job.channel, id)
}

async fn post(http: &reqwest::Client, url: String, body: &Value) -> Value {
    let response = http.post(url).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, 202, "{answer}");
    answer
}

// ---------------------------------------------------------------------------------------------
// /metrics, parsed

/// The samples of an OpenMetrics exposition: (name, labels) → value.
struct Samples(HashMap<(String, BTreeMap<String, String>), f64>);

impl Samples {
    fn parse(text: &str) -> Self {
        let mut samples = HashMap::new();
        for line in text.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let name_end = line.find(['{', ' ']).expect("a sample line has a value");
            let name = line[..name_end].to_owned();
            let mut labels = BTreeMap::new();
            let mut rest = &line[name_end..];
            if let Some(inner) = rest.strip_prefix('{') {
                let mut chars = inner.char_indices();
                let mut key = String::new();
                loop {
                    let (i, c) = chars.next().expect("labels end with }");
                    match c {
                        '}' => {
                            rest = &inner[i + 1..];
                            break;
                        }
                        ',' => {}
                        '=' => {
                            assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
                            let mut value = String::new();
                            loop {
                                match chars.next().expect("a label value ends with \"").1 {
                                    '"' => break,
                                    '\\' => match chars.next().unwrap().1 {
                                        'n' => value.push('\n'),
                                        other => value.push(other),
                                    },
                                    other => value.push(other),
                                }
                            }
                            labels.insert(std::mem::take(&mut key), value);
                        }
                        other => key.push(other),
                    }
                }
            }
            let value = rest
                .split_whitespace()
                .next()
                .expect("a sample has a value");
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line}"));
            assert!(
                samples.insert((name, labels), value).is_none(),
                "sample twice: {line}"
            );
        }
        Self(samples)
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.0.get(&(name.to_owned(), labels)).copied()
    }

    /// `ward_deliveries_total` of one channel and outcome (0 when never counted).
    fn deliveries(&self, channel: &str, backend: &str, outcome: &str) -> u64 {
        self.get(
            "ward_deliveries_total",
            &[
                ("channel", channel),
                ("backend", backend),
                ("outcome", outcome),
                ("test", "false"),
            ],
        )
        .map_or(0, |v| v as u64)
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.get(name, labels).map_or(0, |v| v as u64)
    }
}

// ---------------------------------------------------------------------------------------------
// The acceptance run

fn team(id: u64) -> &'static str {
    if id.is_multiple_of(MAIL_EVERY) {
        "dba"
    } else {
        "web"
    }
}

fn ward_alert(id: u64) -> Value {
    json!({
        "labels": { "alertname": "DiskFull", "e2e_id": id.to_string(), "team": team(id), "host": format!("db-{id}") },
        "annotations": { "description": format!("disk of db-{id} is 97 % full") },
        "severity": if id.is_multiple_of(3) { "critical" } else { "major" },
    })
}

fn alertmanager_body(ids: std::ops::Range<u64>) -> Value {
    let alerts: Vec<Value> = ids
        .map(|id| {
            json!({
                "status": "firing",
                "labels": { "alertname": "Latency", "e2e_id": id.to_string(), "team": team(id), "severity": "warning" },
                "annotations": { "summary": format!("p99 of svc-{id} above 2 s") },
                "startsAt": "2026-11-25T06:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example/graph?g0.expr=up",
                "fingerprint": format!("{id:016x}"),
            })
        })
        .collect();
    json!({
        "version": "4", "status": "firing", "receiver": "ward", "groupKey": "{}:{alertname=\"Latency\"}",
        "truncatedAlerts": 0, "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://alertmanager.example", "alerts": alerts,
    })
}

/// Post every alert: `/v1/alerts` batches of 100, 250 and 500, and Alertmanager bodies of 200,
/// four requests at a time. Returns the number of requests per endpoint.
async fn post_all(http: &reqwest::Client, base: &str) -> (u64, u64) {
    let mut requests: Vec<(&str, Value, u64)> = Vec::new();
    let sizes = [100, 250, 500];
    let mut next = 0;
    while next < WARD_JSON {
        let size = sizes[requests.len() % sizes.len()].min(WARD_JSON - next);
        let batch: Vec<Value> = (next..next + size).map(ward_alert).collect();
        requests.push(("alerts", Value::Array(batch), size));
        next += size;
    }
    while next < ALERTS {
        let size = 200.min(ALERTS - next);
        requests.push(("alertmanager", alertmanager_body(next..next + size), size));
        next += size;
    }
    let counts = (
        requests.iter().filter(|r| r.0 == "alerts").count() as u64,
        requests.iter().filter(|r| r.0 == "alertmanager").count() as u64,
    );
    let accepted: Vec<u64> = futures::stream::iter(requests)
        .map(|(endpoint, body, size)| async move {
            let answer = post(http, format!("{base}/v1/{endpoint}"), &body).await;
            assert_eq!(answer["accepted"], size, "{answer}");
            size
        })
        .buffer_unordered(4)
        .collect()
        .await;
    assert_eq!(accepted.iter().sum::<u64>(), ALERTS);
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_alerts_are_delivered_once_or_dead_lettered_and_reconcile_with_metrics() {
    let started = Instant::now();
    let redis = RedisServer::start();
    let store = open_store(&redis).await;
    let slack = Arc::new(ScriptedSlack {
        flaky: true,
        ..ScriptedSlack::default()
    });
    let (_slack_server, slack_channel) = slack_mock(slack.clone()).await;
    let smtp = SmtpStub::start(Script {
        refuse_every: Some(MAIL_REFUSE_EVERY),
        ..Script::default()
    })
    .await;
    let mail_channel = ChannelConfig::Smtp(SmtpConfig {
        name: MAIL.to_owned(),
        host: "127.0.0.1".to_owned(),
        port: Some(smtp.port),
        mode: SmtpMode::Plain,
        username: None,
        password: None,
        from: "Ward <ward@example.com>".to_owned(),
        to: vec!["dba-oncall@example.com".to_owned()],
        subject: None,
        timeout_ms: Some(10_000),
        connect_timeout_ms: Some(2_000),
    });
    let pipeline = Running::start(store.clone(), &[slack_channel, mail_channel], routing()).await;
    let http = reqwest::Client::new();

    let (ward_requests, am_requests) = post_all(&http, &pipeline.base).await;
    let posted_in = started.elapsed();
    wait_drained(store.as_ref()).await;
    let drained_in = started.elapsed();
    let hits = slack.hits();
    let mails = smtp.received();
    let dlq = delivery_dlq(store.as_ref()).await;
    let samples = pipeline.metrics(&http).await;
    let drained_at = wall_ms();

    // What should have happened: every alert to Slack, the dba ones to mail too.
    let all: BTreeSet<u64> = (0..ALERTS).collect();
    let expected_mail: BTreeSet<u64> = all
        .iter()
        .copied()
        .filter(|id| id.is_multiple_of(MAIL_EVERY))
        .collect();
    assert_eq!(slack.unidentified.load(Ordering::SeqCst), 0);
    assert_eq!(
        store
            .failed_count(&QueueName::ingest(), FailedSet::Dlq, &DlqFilter::default())
            .await
            .unwrap(),
        0,
        "every alert was routed"
    );

    // The DLQ: one entry per (channel, alert), each with its error metadata.
    let mut dead: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for entry in &dlq {
        let (channel, id) = dlq_target(entry);
        assert!(
            dead.entry(channel.clone()).or_default().insert(id),
            "{channel}/{id} dead-lettered twice"
        );
        let meta = &entry.meta;
        assert_eq!(meta.stage, "deliver", "{meta:?}");
        assert_eq!(meta.queue, QueueName::delivery());
        assert_eq!(meta.tenant, "default");
        assert!(
            meta.error_message
                .contains(&format!("gave up after {MAX_ATTEMPTS} attempts ({POLICY})")),
            "{meta:?}"
        );
        assert_eq!(meta.attempts as usize, MAX_ATTEMPTS, "{meta:?}");
        // Every failed attempt is in the history the inspector shows: time, channel, error.
        let history = entry.attempt_history();
        let numbers: Vec<u32> = history.iter().map(|a| a.attempt).collect();
        assert_eq!(
            numbers,
            (1..=MAX_ATTEMPTS as u32).collect::<Vec<_>>(),
            "{history:?}"
        );
        assert!(history.iter().all(|a| a.channel == channel), "{history:?}");
        assert_eq!(
            history.last().map(|a| a.error_class.as_str()),
            Some(meta.error_class.as_str())
        );
        assert!(
            history.windows(2).all(|w| w[0].at_ms <= w[1].at_ms),
            "{history:?}"
        );
        assert_eq!(history[0].at_ms, meta.first_failure_ms, "{history:?}");
        assert!(
            meta.first_failure_ms <= meta.last_failure_ms && meta.last_failure_ms <= drained_at,
            "{meta:?}"
        );
        if channel == MAIL {
            assert_eq!(meta.error_class, "smtp_451", "{meta:?}");
            continue;
        }
        assert_eq!(channel, SLACK, "{meta:?}");
        let tried = &hits[&id];
        assert_eq!(tried.len(), MAX_ATTEMPTS, "{id}: {tried:?}");
        assert!(tried.iter().all(|h| h.status != 200), "{id}: {tried:?}");
        let last = tried.last().unwrap();
        assert_eq!(
            meta.error_class,
            format!("http_{}", last.status),
            "{meta:?}"
        );
        // Failure times come from the store's millisecond clock after the reply: within 2 ms
        // (truncation to milliseconds) of the mock's own wall-clock readings.
        assert!(
            meta.first_failure_ms >= tried[0].wall_ms - 2
                && meta.first_failure_ms <= tried[1].wall_ms + 2,
            "first failure {} not between the first two attempts {tried:?}",
            meta.first_failure_ms
        );
        assert!(
            meta.last_failure_ms >= last.wall_ms - 2,
            "last failure {} not after the last attempt {last:?}",
            meta.last_failure_ms
        );
    }
    let dead_slack = dead.remove(SLACK).unwrap_or_default();
    let dead_mail = dead.remove(MAIL).unwrap_or_default();
    assert!(dead.is_empty(), "no other channel: {dead:?}");

    // Slack: each alert answered 200 at most once and never asked again after that, or in the
    // DLQ; never both, nothing missing, nothing extra.
    let mut delivered_slack = BTreeSet::new();
    let (mut retried_500, mut retried_429, mut failures) = (0u64, 0u64, 0u64);
    let mut retry_after_checked = 0;
    for (id, tried) in &hits {
        let oks = tried.iter().filter(|h| h.status == 200).count();
        assert!(oks <= 1, "{id} answered 200 {oks} times: {tried:?}");
        if oks == 1 {
            assert_eq!(tried.last().unwrap().status, 200, "{id} sent after a 200");
            delivered_slack.insert(*id);
        }
        for (k, hit) in tried.iter().enumerate().filter(|(_, h)| h.status != 200) {
            failures += 1;
            let Some(next) = tried.get(k + 1) else {
                continue;
            };
            if hit.status == 429 {
                retried_429 += 1;
                // The mock stamps the 429 before Ward reads it, and Ward schedules from its
                // millisecond wall clock after reading it: at most ~1 ms of truncation, plus
                // monotonic-vs-wall drift, can make the gap look shorter than 1 s. 5 ms allows it.
                let gap = next.at.duration_since(hit.at);
                assert!(
                    gap >= Duration::from_millis(995),
                    "{id}: retried {gap:?} after a 429 with Retry-After: 1 ({tried:?})"
                );
                retry_after_checked += 1;
            } else {
                retried_500 += 1;
            }
        }
    }
    assert!(
        delivered_slack.is_disjoint(&dead_slack),
        "delivered and dead-lettered: {:?}",
        delivered_slack
            .intersection(&dead_slack)
            .collect::<Vec<_>>()
    );
    let reached: BTreeSet<u64> = delivered_slack.union(&dead_slack).copied().collect();
    assert_eq!(
        reached.len(),
        all.len(),
        "missing from Slack: {:?}",
        all.difference(&reached).take(10).collect::<Vec<_>>()
    );
    assert_eq!(reached, all);
    // The faults really happened, in about the scripted shares.
    let requests: usize = hits.values().map(Vec::len).sum();
    let count = |status| {
        hits.values()
            .flatten()
            .filter(|h| h.status == status)
            .count()
    };
    let (n500, n429) = (count(500), count(429));
    assert!(
        (25..=35).contains(&(n500 * 100 / requests)),
        "{n500} of {requests} were 500"
    );
    assert!(
        (3..=7).contains(&(n429 * 100 / requests)),
        "{n429} of {requests} were 429"
    );
    assert!(
        dead_slack.len() > 50 && dead_slack.len() < 500,
        "{} alerts exhausted their attempts",
        dead_slack.len()
    );
    assert!(
        retry_after_checked > 100,
        "only {retry_after_checked} retries after a 429"
    );

    // SMTP: every dba alert accepted exactly once, or in the DLQ (rarely: 4 refusals in a row).
    let mut mailed: BTreeMap<u64, usize> = BTreeMap::new();
    for mail in &mails {
        let id = mail_alert_id(&mail.data).unwrap_or_else(|| panic!("no e2e_id in {}", mail.data));
        *mailed.entry(id).or_default() += 1;
        assert_eq!(mail.rcpt_to, ["<dba-oncall@example.com>"]);
    }
    assert!(
        mailed.values().all(|n| *n == 1),
        "mailed twice: {:?}",
        mailed.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    let delivered_mail: BTreeSet<u64> = mailed.keys().copied().collect();
    assert!(delivered_mail.is_disjoint(&dead_mail), "{dead_mail:?}");
    assert_eq!(
        delivered_mail
            .union(&dead_mail)
            .copied()
            .collect::<BTreeSet<_>>(),
        expected_mail
    );
    let refused = smtp.refused() as u64;
    assert!(refused > 100, "only {refused} mails refused");

    // /metrics tells the same story.
    assert_eq!(
        samples.deliveries(SLACK, "slack", "delivered"),
        delivered_slack.len() as u64
    );
    assert_eq!(
        samples.deliveries(SLACK, "slack", "dead_lettered"),
        dead_slack.len() as u64
    );
    assert_eq!(samples.deliveries(SLACK, "slack", "retried"), retried_500);
    assert_eq!(
        samples.deliveries(SLACK, "slack", "rate_limited"),
        retried_429
    );
    assert_eq!(
        failures,
        retried_500 + retried_429 + dead_slack.len() as u64,
        "every failure was retried or ended in the DLQ"
    );
    assert_eq!(
        samples.deliveries(MAIL, "smtp", "delivered"),
        delivered_mail.len() as u64
    );
    assert_eq!(
        samples.deliveries(MAIL, "smtp", "dead_lettered"),
        dead_mail.len() as u64
    );
    let retried_mail = refused - dead_mail.len() as u64;
    assert_eq!(samples.deliveries(MAIL, "smtp", "retried"), retried_mail);
    for outcome in ["rate_limited", "deduplicated"] {
        assert_eq!(samples.deliveries(MAIL, "smtp", outcome), 0, "{outcome}");
    }
    for outcome in ["deduplicated", "breaker_open", "stopped"] {
        assert_eq!(samples.deliveries(SLACK, "slack", outcome), 0, "{outcome}");
    }
    assert_eq!(
        samples.counter("ward_retries_total", &[("policy", POLICY)]),
        retried_500 + retried_429 + retried_mail
    );
    assert_eq!(
        samples.counter("ward_dedup_hits_total", &[("channel", SLACK)]),
        0
    );
    assert_eq!(
        samples.counter(
            "ward_routed_alerts_total",
            &[("directive", "alert"), ("result", "routed")]
        ),
        ALERTS
    );
    for (endpoint, requests) in [("alerts", ward_requests), ("alertmanager", am_requests)] {
        assert_eq!(
            samples.counter(
                "ward_ingest_requests_total",
                &[
                    ("endpoint", endpoint),
                    ("status", "accepted"),
                    ("reason", "")
                ]
            ),
            requests,
            "{endpoint}"
        );
    }

    pipeline.shut_down().await;
    eprintln!(
        "e2e: {ALERTS} alerts, {requests} Slack requests ({n500} × 500, {n429} × 429), \
         {} mails ({refused} refused), {} + {} dead-lettered; posted after {posted_in:?}, \
         drained after {drained_in:?}, checked after {:?}",
        mails.len(),
        dead_slack.len(),
        dead_mail.len(),
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Dedup and replay

/// The alert posted with an explicit idempotency key and later replayed.
const REPLAYED: u64 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_and_replays_of_a_delivered_alert_are_not_sent_again() {
    let redis = RedisServer::start();
    let store = open_store(&redis).await;
    let slack = Arc::new(ScriptedSlack::default());
    let (_slack_server, slack_channel) = slack_mock(slack.clone()).await;
    let channels = [slack_channel];
    let slack_only = RoutingConfig {
        default_channels: vec![SLACK.to_owned()],
        default_retry_policy: POLICY.to_owned(),
        ..RoutingConfig::default()
    };
    let http = reqwest::Client::new();
    let first = Running::start(store.clone(), &channels, slack_only.clone()).await;

    // Alert 1 (Ward JSON, derived key), alert 2 (Alertmanager), alert 3 (explicit key): each
    // posted again after the first was delivered, well inside the dedup TTL. Alert 4 twice in
    // each request, so its copies are also claimed side by side.
    let replayed_key = "e2e-replayed-alert";
    let mut replayed_alert = ward_alert(REPLAYED);
    replayed_alert["idempotency_key"] = json!(replayed_key);
    for round in 0..2 {
        post(
            &http,
            format!("{}/v1/alerts", first.base),
            &json!([
                ward_alert(1),
                replayed_alert.clone(),
                ward_alert(4),
                ward_alert(4)
            ]),
        )
        .await;
        post(
            &http,
            format!("{}/v1/alertmanager", first.base),
            &alertmanager_body(2..3),
        )
        .await;
        wait_drained(store.as_ref()).await;
        let hits = slack.hits();
        assert_eq!(
            hits.keys().copied().collect::<BTreeSet<_>>(),
            BTreeSet::from([1, 2, REPLAYED, 4]),
            "round {round}"
        );
        assert!(
            hits.values().all(|h| h.len() == 1),
            "round {round}: {hits:?}"
        );
    }
    let samples = first.metrics(&http).await;
    assert_eq!(samples.deliveries(SLACK, "slack", "delivered"), 4);
    // 6 copies skipped: 1 of alert 4 in round 0, all 5 of round 1. A copy met while its twin
    // was being sent is counted once more as it waits (outcome only, not a dedup hit).
    assert_eq!(
        samples.counter("ward_dedup_hits_total", &[("channel", SLACK)]),
        6
    );
    assert!((6..=8).contains(&samples.deliveries(SLACK, "slack", "deduplicated")));
    first.shut_down().await;

    // Now a copy of alert 3's delivery envelope (same idempotency key) sits in the DLQ, as it
    // would after a lost reply; a fresh worker replays it, and another copy is enqueued again.
    let labels: BTreeMap<String, String> =
        serde_json::from_value(ward_alert(REPLAYED)["labels"].clone()).unwrap();
    let job = DeliveryJob {
        alert: Alert {
            fingerprint: fingerprint(&labels),
            labels,
            annotations: BTreeMap::new(),
            severity: Severity::Critical,
            status: AlertStatus::Firing,
            tenant: "default".to_owned(),
            starts_at_ms: store.now_ms(),
            ends_at_ms: None,
            generator_url: None,
            correlation_id: "replay".to_owned(),
            test: false,
        },
        channel: SLACK.to_owned(),
        retry_policy: POLICY.to_owned(),
        previous_delay_ms: None,
        group: None,
    };
    let delivery_key = format!("{replayed_key}@{SLACK}");
    let copy = || {
        Envelope::new(
            "default",
            serde_json::to_value(&job).unwrap(),
            store.now_ms(),
        )
        .with_idempotency_key(delivery_key.clone())
    };
    let queue = QueueName::delivery();
    store.enqueue(&queue, &[copy()]).await.unwrap();
    let lease = store
        .lease(
            &queue,
            &WorkerId::new("operator"),
            10,
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(lease.items.len(), 1, "nothing else was waiting");
    let item = lease.items.into_iter().next().unwrap();
    let dead_id = item.envelope.id.clone();
    store
        .dead_letter(
            &queue,
            &[DeadLetterRequest {
                receipt: item.receipt,
                envelope: item.envelope,
                failure: FailureInfo::new("timeout", "no answer within 10s", "deliver"),
            }],
        )
        .await
        .unwrap();
    assert_eq!(delivery_dlq(store.as_ref()).await.len(), 1);

    let second = Running::start(store.clone(), &channels, slack_only).await;
    let replayed = store
        .replay(
            &queue,
            FailedSet::Dlq,
            &DlqScope::Ids(vec![dead_id]),
            ReplayOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!((replayed.moved, replayed.poisoned), (1, 0));
    wait_drained(store.as_ref()).await;
    assert!(
        delivery_dlq(store.as_ref()).await.is_empty(),
        "the replay left the DLQ"
    );
    // One copy at a time: two copies in one batch would make the second wait as "in flight".
    for (copies, skipped) in [(1, "replayed"), (2, "re-enqueued")] {
        if copies == 2 {
            store.enqueue(&queue, &[copy()]).await.unwrap();
            wait_drained(store.as_ref()).await;
        }
        let hits = slack.hits();
        assert_eq!(hits[&REPLAYED].len(), 1, "{skipped} copy re-sent: {hits:?}");
        assert_eq!(hits.values().map(Vec::len).sum::<usize>(), 4);
        let samples = second.metrics(&http).await;
        assert_eq!(samples.deliveries(SLACK, "slack", "delivered"), 0);
        assert_eq!(
            samples.deliveries(SLACK, "slack", "deduplicated"),
            copies,
            "{skipped}"
        );
        assert_eq!(
            samples.counter("ward_dedup_hits_total", &[("channel", SLACK)]),
            copies,
            "{skipped}"
        );
    }
    second.shut_down().await;
}
