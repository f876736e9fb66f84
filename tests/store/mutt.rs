//! `--profile mutt` against a real redis-server seeded with MUTT's exact layout
//! (`tests/fixtures/mutt/seed.sh` writes the keys as MUTT's services do), behind a password:
//! the figures equal redis-cli's, entries are paged newest first with secrets redacted, actions
//! move exactly what they planned with MUTT's counters reset, nothing outside the documented
//! keys is created, read-only refuses every action, and a wrong setting is a refusal (exit 2),
//! never "unreachable".

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{RedisServer, ward_command};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio_util::sync::CancellationToken;
use ward::actions::mutt::MuttActions;
use ward::actions::{Action, ActionError, ActionKind, Actor, MuttScope, Origin, Policy, Settings};
use ward::config::{Config, Overrides};
use ward::engine::clock::ManualClock;
use ward::model::Profile;
use ward::model::mutt::{MuttDlqName, MuttPageQuery, content_id};
use ward::store::MuttKeys;
use ward::store::mutt::{MuttStore, MuttStoreOptions};
use ward::ui::{App, Keymap, Mode, Theme, View};

const PASSWORD: &str = "mutt-pw-1";
/// 2026-12-06T20:15:00Z: the seed's clock and the store's.
const NOW_S: i64 = 1_796_588_100;
const NOW_MS: i64 = NOW_S * 1000;

struct Mutt {
    server: RedisServer,
    home: tempfile::TempDir,
}

impl Mutt {
    /// A password-protected redis-server holding MUTT's layout, seeded at `NOW_S` (or now).
    fn start(at: Option<i64>) -> Self {
        let server = RedisServer::start_with_password(PASSWORD);
        let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mutt/seed.sh");
        let mut command = Command::new("bash");
        command.arg(seed).arg(server.url());
        if let Some(at) = at {
            command.arg(at.to_string());
        }
        let status = command.status().expect("run seed.sh");
        assert!(status.success(), "seed.sh failed");
        Self {
            server,
            home: tempfile::tempdir().unwrap(),
        }
    }

    /// `redis-cli` on this server: the reference every figure is compared with.
    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.server.port.to_string(), "--no-auth-warning"])
            .args(["--user", "default", "--pass", PASSWORD])
            .args(args)
            .output()
            .expect("redis-cli");
        assert!(out.status.success(), "redis-cli {args:?} failed");
        String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
    }

    fn llen(&self, key: &str) -> u64 {
        self.cli(&["LLEN", key]).parse().unwrap()
    }

    fn keys(&self) -> BTreeSet<String> {
        self.cli(&["--scan", "--pattern", "*"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Every key with its DUMP: equal before and after means nothing changed.
    fn dump_all(&self) -> Vec<(String, String)> {
        self.keys()
            .into_iter()
            .map(|k| {
                let dump = self.cli(&["--no-raw", "DUMP", &k]);
                (k, dump)
            })
            .collect()
    }

    fn ward(&self) -> assert_cmd::Command {
        let mut cmd = ward_command(self.home.path());
        cmd.args(["--profile", "mutt", "--redis", &self.server.url()])
            .timeout(Duration::from_secs(30));
        cmd
    }

    fn config(&self) -> Config {
        Config::from_overrides(&Overrides {
            redis_url: Some(self.server.url()),
            profile: Some(Profile::Mutt),
            ..Overrides::default()
        })
        .unwrap()
    }

    async fn store(&self, clock: Option<ManualClock>) -> MuttStore {
        let config = self.config();
        let mut options =
            MuttStoreOptions::new(&config.store.redis_url, MuttKeys::new(&config.mutt));
        if let Some(clock) = clock {
            options.clock = Arc::new(clock);
        }
        MuttStore::connect(options).await.unwrap()
    }

    async fn actions(&self, policy: Policy) -> MuttActions {
        MuttActions {
            store: Arc::new(self.store(None).await),
            policy,
            actor: Actor {
                user: "ops".into(),
                host: "ci".into(),
            },
            origin: Origin::Headless,
            target: "mutt-test".into(),
            settings: Settings {
                rate_per_s: None,
                ..Settings::default()
            },
        }
    }
}

fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// `ward status --format json`'s MUTT section.
fn status_json(m: &Mutt) -> serde_json::Value {
    let out = m
        .ward()
        .args(["status", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    assert!(
        doc["store"].is_null(),
        "no Ward section on a MUTT deployment"
    );
    assert_eq!(doc["target"]["profile"], "mutt");
    doc["mutt"].clone()
}

#[test]
fn status_lists_and_breakers_equal_redis_cli() {
    let m = Mutt::start(None);
    let mutt = &status_json(&m);
    for q in mutt["queues"].as_array().unwrap() {
        let key = q["key"].as_str().unwrap();
        assert_eq!(q["depth"].as_u64().unwrap(), m.llen(key), "{key}");
    }
    let queue = |name: &str| {
        mutt["queues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(queue("ingest")["key"], "mutt:ingest_queue");
    assert_eq!(
        queue("alert")["in_flight"],
        2,
        "the dead forwarder pod's list"
    );
    assert_eq!(queue("ingest")["in_flight"], 1);
    let dlqs = mutt["dlqs"].as_array().unwrap();
    assert_eq!(dlqs.len(), 3);
    for d in dlqs {
        let key = d["key"].as_str().unwrap();
        assert_eq!(d["count"].as_u64().unwrap(), m.llen(key), "{key}");
    }
    assert_eq!(dlqs[0]["replays_to"], "mutt:ingest_queue");
    assert_eq!(dlqs[1]["key"], "mutt:dlq:moog");
    assert_eq!(dlqs[1]["replays_to"], "mutt:alert_queue");
    assert!(dlqs[2]["replays_to"].is_null());
    let breaker = &mutt["breakers"][0];
    assert_eq!(breaker["name"], "moogsoft");
    assert_eq!(
        breaker["state"].as_str().unwrap(),
        m.cli(&["GET", "mutt:circuit_breaker:moogsoft:state"])
    );
    assert_eq!(
        breaker["failures"].as_u64().unwrap().to_string(),
        m.cli(&["GET", "mutt:circuit_breaker:moogsoft:failures"])
    );
    let open_time: f64 = m
        .cli(&["GET", "mutt:circuit_breaker:moogsoft:open_time"])
        .parse()
        .unwrap();
    assert_eq!(
        breaker["open_time_ms"].as_i64().unwrap(),
        (open_time * 1000.0).round() as i64
    );
}

#[test]
fn status_pods_settings_and_counters_equal_redis_cli() {
    let m = Mutt::start(None);
    let mutt = &status_json(&m);
    for pair in mutt["config"].as_array().unwrap() {
        let (key, value) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
        assert_eq!(
            value,
            m.cli(&["GET", &format!("mutt:config:{key}")]),
            "{key}"
        );
    }
    let settings: BTreeSet<String> = m
        .cli(&["--scan", "--pattern", "mutt:config:*"])
        .lines()
        .map(|k| k.trim_start_matches("mutt:config:").to_owned())
        .collect();
    let shown: BTreeSet<String> = mutt["config"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(shown, settings);
    let lists: BTreeSet<String> = m
        .cli(&["--scan", "--pattern", "mutt:processing:*"])
        .lines()
        .map(str::to_owned)
        .collect();
    let processing = mutt["processing"].as_array().unwrap();
    let shown: BTreeSet<String> = processing
        .iter()
        .map(|p| p["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(shown, lists);
    for p in processing {
        let key = p["key"].as_str().unwrap();
        assert_eq!(p["length"].as_u64().unwrap(), m.llen(key));
        assert_eq!(
            p["orphan"].as_bool().unwrap(),
            key.ends_with("moog-5c4b-dead"),
            "{key}: a list is an orphan exactly when its pod has no heartbeat"
        );
    }
    let beats: BTreeSet<String> = m
        .cli(&["--scan", "--pattern", "mutt:heartbeat:*"])
        .lines()
        .map(str::to_owned)
        .collect();
    let pods: BTreeSet<String> = mutt["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(pods, beats);
    // MUTT's counters, for the buckets of the instant read.
    let read_at = mutt["read_at_ms"].as_i64().unwrap();
    let minute = ward::model::time::format_rfc3339_ms(read_at)[..16].to_owned();
    let got = m.cli(&["GET", &format!("mutt:metrics:1m:{minute}")]);
    assert_eq!(
        mutt["ingested"]["this_minute"]
            .as_u64()
            .map(|n| n.to_string()),
        (!got.is_empty()).then_some(got)
    );
    // Text and markdown name what MUTT does not keep instead of showing 0.
    let text = m.ward().args(["status"]).output().unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("not kept by MUTT"), "{text}");
    assert!(
        text.contains("orphan mutt:processing:moog:moog-5c4b-dead"),
        "{text}"
    );
    assert!(!text.contains("moog-secret-key"), "{text}");
    // A DLQ's entries, paged, newest first, redacted.
    let out = m
        .ward()
        .args(["status", "--dlq", "moog", "--offset", "1", "--limit", "2"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("entries of mutt:dlq:moog: positions 1-2 of 5"),
        "{text}"
    );
    let hosts: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .map(|l| l.split_whitespace().nth(2).unwrap())
        .collect();
    assert_eq!(hosts, ["dbd-4", "dbd-3"], "{text}");
    assert!(!text.contains("moog-secret-key"), "{text}");
    let out = m
        .ward()
        .args(["status", "--dlq", "moog", "--format", "json"])
        .output()
        .unwrap();
    let doc = json(&out);
    assert_eq!(doc["mutt_page"]["entries"][0]["host"], "dbd-5");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("moog-secret-key"));
}

#[test]
fn check_reports_mutts_breaker_and_orphans() {
    let m = Mutt::start(None);
    let out = m.ward().arg("check").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(2), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("CRITICAL breaker moogsoft: OPEN, 10 consecutive failures"),
        "{text}"
    );
    assert!(
        text.contains(
            "WARNING processing: 2 entries in 1 processing lists of pods without a heartbeat"
        ),
        "{text}"
    );
    m.cli(&["SET", "mutt:circuit_breaker:moogsoft:state", "CLOSED"]);
    m.cli(&["DEL", "mutt:processing:moog:moog-5c4b-dead"]);
    let out = m
        .ward()
        .args(["check", "--dlq-crit", "5"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("CRITICAL dlq moog: 5 entries (threshold 5)"),
        "{text}"
    );
    m.cli(&["DEL", "mutt:dlq:moog"]);
    let out = m
        .ward()
        .args(["check", "--dlq-crit", "5"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.starts_with("OK mutt (MUTT)"), "{text}");
}

#[tokio::test]
async fn dlq_pages_are_newest_first_sanitized_and_redacted() {
    let m = Mutt::start(Some(NOW_S));
    let store = m.store(Some(ManualClock::new(NOW_MS))).await;
    let page = |dlq, offset, limit| MuttPageQuery { dlq, offset, limit };
    let (_, first, _) = store
        .read(10, Some(page(MuttDlqName::Moog, 0, 2)))
        .await
        .unwrap();
    let first = first.unwrap();
    assert_eq!(first.total, 5);
    let hosts: Vec<&str> = first.entries.iter().map(|e| e.host.as_str()).collect();
    assert_eq!(hosts, ["dbd-5", "dbd-4"], "newest first, as LINDEX 0 is");
    let newest: serde_json::Value =
        serde_json::from_str(&m.cli(&["LINDEX", "mutt:dlq:moog", "0"])).unwrap();
    assert_eq!(newest["hostname"], "dbd-5");
    assert_eq!(
        first.entries[0].id,
        content_id(m.cli(&["LINDEX", "mutt:dlq:moog", "0"]).as_bytes())
    );
    let (_, second, _) = store
        .read(10, Some(page(MuttDlqName::Moog, 2, 2)))
        .await
        .unwrap();
    let hosts: Vec<String> = second
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.host)
        .collect();
    assert_eq!(hosts, ["dbd-3", "dbd-2"]);
    for e in &first.entries {
        assert!(!e.payload.contains("moog-secret-key"), "{}", e.payload);
        assert!(e.payload.contains(r#""api_key":"***""#), "{}", e.payload);
        assert_eq!(e.moog_retry_count, Some(6));
    }
    let (_, alerter, _) = store
        .read(10, Some(page(MuttDlqName::Alerter, 0, 10)))
        .await
        .unwrap();
    let alerter = alerter.unwrap();
    assert_eq!(alerter.entries[0].payload, "not json at all api_key=***");
    assert!(
        alerter.entries.iter().any(|e| e.message.contains('\u{1b}')),
        "raw in the data"
    );
    // Drawn, the ESC is inert and no secret appears.
    let (section, page_view, _) = store
        .read(10, Some(page(MuttDlqName::Alerter, 0, 10)))
        .await
        .unwrap();
    let mut app = mutt_app(section, page_view, Mode::default());
    app.ui.mutt.dlq = MuttDlqName::Alerter;
    app.show(View::Dlq);
    let screen = render(&app, 160, 48);
    assert!(!screen.contains('\u{1b}'), "{screen}");
    assert!(screen.contains("poison two ?[31mred?[0m"), "{screen}");
    assert!(!screen.contains("plain-secret"), "{screen}");
}

fn mutt_app(
    section: ward::model::mutt::MuttSection,
    page: Option<ward::model::mutt::MuttPage>,
    mode: Mode,
) -> App {
    let config = Config::from_overrides(&Overrides {
        redis_url: Some("redis://:pw@mutt-redis:6379/".into()),
        profile: Some(Profile::Mutt),
        ..Overrides::default()
    })
    .unwrap();
    let poller = ward::headless::poller_config(&config, Duration::from_secs(1));
    let mut builder = ward::sources::poller::Builder::new(poller, "redis", NOW_MS);
    let query = page.as_ref().map(|p| MuttPageQuery {
        dlq: MuttDlqName::parse(&p.dlq).unwrap(),
        offset: p.offset,
        limit: p.limit,
    });
    builder.apply_mutt(
        ward::sources::poller::MuttRead {
            result: Ok((section, page)),
            permanent: false,
            round_trips: 2,
        },
        query,
        NOW_MS,
    );
    let snapshot = Arc::new(builder.snapshot(NOW_MS));
    App::new(
        mode,
        Keymap::new(&std::collections::BTreeMap::default()).unwrap(),
        Vec::new(),
        snapshot,
    )
}

/// No plan was asked for: nothing left the app.
fn plans_nothing(effects: &[ward::ui::app::Effect]) -> bool {
    !effects
        .iter()
        .any(|e| matches!(e, ward::ui::app::Effect::Plan { .. }))
}

/// The plan of replaying all of the forwarder's DLQ.
async fn replay_all_of_moog(actions: &MuttActions) -> ward::actions::Plan {
    actions
        .plan(Action::MuttReplay {
            dlq: MuttDlqName::Moog,
            scope: MuttScope::All,
        })
        .await
        .unwrap()
}

fn render(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    let theme = Theme::load("default", &[]).unwrap();
    terminal
        .draw(|frame| ward::ui::views::draw(app.scene(), &theme, frame))
        .unwrap();
    terminal.backend().to_string()
}

/// One read of the seeded deployment at `NOW_MS`, with the first page of the forwarder's DLQ.
async fn seeded_read() -> (
    ward::model::mutt::MuttSection,
    Option<ward::model::mutt::MuttPage>,
) {
    let m = Mutt::start(Some(NOW_S));
    let store = m.store(Some(ManualClock::new(NOW_MS))).await;
    let query = MuttPageQuery {
        dlq: MuttDlqName::Moog,
        offset: 0,
        limit: 100,
    };
    let (section, page, _) = store.read(10, Some(query)).await.unwrap();
    (section, page)
}

#[tokio::test]
async fn every_view_shows_mutts_figures_or_says_it_has_none() {
    let (section, page) = seeded_read().await;
    for (w, h) in [(160u16, 48u16), (80, 24)] {
        let mut screens = Vec::new();
        for view in View::ALL {
            let mut app = mutt_app(section.clone(), page.clone(), Mode::default());
            app.show(view);
            let screen = render(&app, w, h);
            assert!(!screen.contains("moog-secret-key"), "{view:?}: {screen}");
            screens.push((view, screen));
        }
        if w == 160 {
            for (view, screen) in &screens {
                insta::assert_snapshot!(
                    format!("mutt_{}_160x48", view.title().to_lowercase()),
                    screen
                );
            }
        }
        let find = |view: View| &screens.iter().find(|(v, _)| *v == view).unwrap().1;
        assert!(find(View::Overview).contains("MUTT"), "header badge");
        assert!(
            find(View::Overview).contains("OPEN"),
            "{}",
            find(View::Overview)
        );
        assert!(
            find(View::Queues).contains("ORPHAN"),
            "{}",
            find(View::Queues)
        );
        assert!(find(View::Dlq).contains("dbd-5"), "{}", find(View::Dlq));
        assert!(
            find(View::Breakers).contains("moogsoft"),
            "{}",
            find(View::Breakers)
        );
        assert!(
            find(View::Overrides).contains("alerter_shed_mode"),
            "{}",
            find(View::Overrides)
        );
    }
    let app = mutt_app(section, page, Mode::default());
    let overview = render(&app, 160, 48);
    assert!(overview.contains("MUTT keeps no leases"), "{overview}");
}

#[tokio::test]
async fn keys_in_the_control_room_propose_mutt_actions() {
    let (section, page) = seeded_read().await;
    let newest = page.as_ref().unwrap().entries[0].id.clone();
    let mut app = mutt_app(section.clone(), page.clone(), Mode::default());
    app.show(View::Dlq);
    app.run(ward::ui::Command::Mark);
    let effects = app.run(ward::ui::Command::Replay);
    let action = effects
        .iter()
        .find_map(|e| match e {
            ward::ui::app::Effect::Plan { action, .. } => Some(action.clone()),
            _ => None,
        })
        .expect("a plan is asked for");
    assert_eq!(
        action,
        Action::MuttReplay {
            dlq: MuttDlqName::Moog,
            scope: MuttScope::Entries(vec![newest]),
        }
    );
    // Read-only: no action leaves the app.
    let mut read_only = mutt_app(
        section,
        page,
        Mode {
            read_only: Some("--read-only".into()),
            ..Mode::default()
        },
    );
    read_only.show(View::Dlq);
    for command in [
        ward::ui::Command::Replay,
        ward::ui::Command::Purge,
        ward::ui::Command::MoveToDead,
    ] {
        let effects = read_only.run(command);
        assert!(
            !effects
                .iter()
                .any(|e| matches!(e, ward::ui::app::Effect::Plan { .. })),
            "{command:?}"
        );
    }
}

/// MUTT's lists are plain Redis lists: `/` words filter the page only (the title says so), and
/// neither words nor `since=`/`until=` (MUTT keeps no failure time) can scope an action, which
/// then asks for marks instead of taking the whole list.
#[tokio::test]
async fn words_and_times_filter_only_mutts_page_so_actions_need_marks() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let (section, page) = seeded_read().await;
    for filter in ["dbd-1", "since=1h"] {
        let mut app = mutt_app(section.clone(), page.clone(), Mode::default());
        app.show(View::Dlq);
        app.run(ward::ui::Command::Filter);
        for c in filter.chars().map(KeyCode::Char).chain([KeyCode::Enter]) {
            app.key(KeyEvent::new(c, KeyModifiers::NONE));
        }
        if filter == "dbd-1" {
            let screen = render(&app, 160, 48);
            assert!(
                screen.contains("search \"dbd-1\" covers this page only"),
                "{screen}"
            );
        }
        let effects = app.run(ward::ui::Command::Replay);
        assert!(plans_nothing(&effects), "{filter}: {effects:?}");
        assert!(
            app.ui
                .toasts
                .iter()
                .any(|t| t.error && t.text.contains("mark entries instead")),
            "{filter}: {:?}",
            app.ui.toasts
        );
        app.run(ward::ui::Command::Mark);
        let effects = app.run(ward::ui::Command::Replay);
        assert!(
            !plans_nothing(&effects),
            "{filter}: marked entries can be replayed"
        );
    }
}

#[tokio::test]
async fn replay_moves_exactly_the_planned_entries_with_counters_reset() {
    let m = Mutt::start(Some(NOW_S));
    let actions = m.actions(Policy::writable()).await;
    let plan = replay_all_of_moog(&actions).await;
    assert_eq!(plan.count, 5);
    assert_eq!(
        plan.action,
        Action::MuttReplay {
            dlq: MuttDlqName::Moog,
            scope: MuttScope::Oldest(5)
        }
    );
    assert_eq!(
        plan.sample[0].tenant, "dbd-1",
        "the sample is the oldest first"
    );
    assert!(
        plan.warnings.iter().any(|w| w.contains("breaker is OPEN")),
        "{:?}",
        plan.warnings
    );
    let audit_json = serde_json::to_string(&plan).unwrap();
    assert!(!audit_json.contains("moog-secret-key"), "{audit_json}");
    // Two alerts fail after the plan: they are not taken.
    m.cli(&[
        "LPUSH",
        "mutt:dlq:moog",
        r#"{"hostname":"late-1","_moog_retry_count":6}"#,
    ]);
    m.cli(&[
        "LPUSH",
        "mutt:dlq:moog",
        r#"{"hostname":"late-2","_moog_retry_count":6}"#,
    ]);
    let report = actions
        .execute(&plan, &CancellationToken::new(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!((report.moved, report.poisoned, report.vanished), (5, 0, 0));
    assert_eq!(m.llen("mutt:dlq:moog"), 2);
    let left: Vec<serde_json::Value> = m
        .cli(&["LRANGE", "mutt:dlq:moog", "0", "-1"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(left[0]["hostname"], "late-2");
    assert_eq!(left[1]["hostname"], "late-1");
    assert_eq!(m.llen("mutt:alert_queue"), 3 + 5);
    let pushed: Vec<serde_json::Value> = m
        .cli(&["LRANGE", "mutt:alert_queue", "0", "4"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let hosts: Vec<&str> = pushed
        .iter()
        .map(|v| v["hostname"].as_str().unwrap())
        .collect();
    assert_eq!(
        hosts,
        ["dbd-5", "dbd-4", "dbd-3", "dbd-2", "dbd-1"],
        "oldest consumed first"
    );
    for v in &pushed {
        assert_eq!(v["_moog_retry_count"], 0, "{v}");
        assert_eq!(v["_ward_replays"], 1, "{v}");
        assert!(
            v["api_key"]
                .as_str()
                .unwrap()
                .starts_with("moog-secret-key"),
            "the data keeps its key: only what is shown is redacted"
        );
    }
    assert_eq!(
        m.cli(&["XLEN", "ward-audit:log"]),
        "1",
        "one audit record per run"
    );
}

#[tokio::test]
async fn marked_entries_are_found_by_their_text_and_the_poison_guard_holds() {
    let m = Mutt::start(Some(NOW_S));
    let actions = m.actions(Policy::writable()).await;
    // Marked entries: exactly those, found by their text.
    let raw = m.cli(&["LINDEX", "mutt:dlq:alerter", "2"]);
    let plan = actions
        .plan(Action::MuttReplay {
            dlq: MuttDlqName::Alerter,
            scope: MuttScope::Entries(vec![content_id(raw.as_bytes())]),
        })
        .await
        .unwrap();
    assert_eq!(plan.count, 1);
    let report = actions
        .execute(&plan, &CancellationToken::new(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(report.moved, 1);
    assert_eq!(m.llen("mutt:dlq:alerter"), 3);
    let replayed: serde_json::Value =
        serde_json::from_str(&m.cli(&["LINDEX", "mutt:ingest_queue", "0"])).unwrap();
    let original: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(replayed["_correlation_id"], original["_correlation_id"]);
    assert_eq!(replayed["_retry_count"], 0, "MUTT's alerter counter reset");
    // The poison guard: an entry Ward replayed too often goes to MUTT's dead list.
    m.cli(&[
        "LPUSH",
        "mutt:dlq:alerter",
        r#"{"hostname":"loop","_retry_count":4,"_ward_replays":3}"#,
    ]);
    let plan = actions
        .plan(Action::MuttReplay {
            dlq: MuttDlqName::Alerter,
            scope: MuttScope::Entries(vec![content_id(
                br#"{"hostname":"loop","_retry_count":4,"_ward_replays":3}"#,
            )]),
        })
        .await
        .unwrap();
    let report = actions
        .execute(&plan, &CancellationToken::new(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!((report.moved, report.poisoned), (0, 1));
    assert_eq!(
        m.cli(&["LINDEX", "mutt:dlq:dead", "0"]),
        r#"{"hostname":"loop","_retry_count":4,"_ward_replays":3}"#
    );
    // Each run left one audit record, in Ward's own stream.
    assert_eq!(m.cli(&["XLEN", "ward-audit:log"]), "2");
}

#[tokio::test]
async fn bury_purge_and_config_do_what_mutt_does() {
    let m = Mutt::start(Some(NOW_S));
    let actions = m.actions(Policy::writable()).await;
    let run = |action| run(&actions, action);
    let r = run(Action::MuttMoveToDead {
        dlq: MuttDlqName::Alerter,
        scope: MuttScope::Oldest(2),
    })
    .await;
    assert_eq!(r.moved, 2);
    assert_eq!(
        (m.llen("mutt:dlq:alerter"), m.llen("mutt:dlq:dead")),
        (2, 3)
    );
    let r = run(Action::MuttPurge {
        dlq: MuttDlqName::Dead,
        scope: MuttScope::All,
    })
    .await;
    assert_eq!(r.moved, 3);
    assert_eq!(m.llen("mutt:dlq:dead"), 0);
    // Config: SET + PUBLISH on MUTT's channel, as MUTT's dynamic_config does.
    let client = redis::Client::open(m.server.url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe("mutt:config:updates").await.unwrap();
    run(Action::MuttSetConfig {
        key: "alerter_queue_shed_threshold".into(),
        value: Some("5000".into()),
        reason: "burst".into(),
    })
    .await;
    assert_eq!(
        m.cli(&["GET", "mutt:config:alerter_queue_shed_threshold"]),
        "5000"
    );
    let message = tokio::time::timeout(
        Duration::from_secs(5),
        futures::StreamExt::next(&mut pubsub.on_message()),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        message.get_payload::<String>().unwrap(),
        "alerter_queue_shed_threshold"
    );
    run(Action::MuttSetConfig {
        key: "alerter_queue_shed_threshold".into(),
        value: None,
        reason: "over".into(),
    })
    .await;
    assert_eq!(
        m.cli(&["EXISTS", "mutt:config:alerter_queue_shed_threshold"]),
        "0"
    );
    let audit = actions.store.audit_recent(10).await.unwrap();
    assert_eq!(audit.len(), 4);
    assert_eq!(audit[0].record.action, "mutt_set_config");
    assert_eq!(audit[0].record.who, "ops@ci");
}

async fn run(actions: &MuttActions, action: Action) -> ward::actions::Report {
    let plan = actions.plan(action).await.unwrap();
    actions
        .execute(&plan, &CancellationToken::new(), &mut |_| {})
        .await
        .unwrap()
}

#[tokio::test]
async fn breaker_open_and_close_are_what_mutt_writes() {
    let m = Mutt::start(Some(NOW_S));
    let actions = m.actions(Policy::writable()).await;
    let run = |action| run(&actions, action);
    // Open until T means open_time = T − MUTT's timeout; close is MUTT's reset.
    let until = actions.store.now_ms() + 600_000;
    run(Action::MuttBreaker {
        name: "moogsoft".into(),
        open_until_ms: Some(until),
        reason: "maintenance".into(),
    })
    .await;
    assert_eq!(
        m.cli(&["GET", "mutt:circuit_breaker:moogsoft:state"]),
        "OPEN"
    );
    let open_time: f64 = m
        .cli(&["GET", "mutt:circuit_breaker:moogsoft:open_time"])
        .parse()
        .unwrap();
    assert_eq!((open_time * 1000.0).round() as i64, until - 300_000);
    run(Action::MuttBreaker {
        name: "moogsoft".into(),
        open_until_ms: None,
        reason: "recovered".into(),
    })
    .await;
    assert_eq!(
        m.cli(&["GET", "mutt:circuit_breaker:moogsoft:state"]),
        "CLOSED"
    );
    assert_eq!(
        m.cli(&["GET", "mutt:circuit_breaker:moogsoft:failures"]),
        "0"
    );
    assert_eq!(
        m.cli(&["EXISTS", "mutt:circuit_breaker:moogsoft:open_time"]),
        "0"
    );
    let audit = actions.store.audit_recent(10).await.unwrap();
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[0].record.action, "mutt_breaker");
    assert_eq!(audit[0].record.who, "ops@ci");
}

#[test]
fn reads_write_nothing_and_actions_only_their_documented_keys() {
    let m = Mutt::start(None);
    let before = m.dump_all();
    for args in [
        vec!["status", "--format", "json"],
        vec!["status", "--format", "markdown"],
        vec!["check"],
        vec!["watch", "--count", "2", "--interval", "250ms"],
        vec!["replay", "--dlq", "moog", "--dry-run"],
    ] {
        m.ward().args(&args).output().unwrap();
    }
    assert_eq!(m.dump_all(), before, "reading wrote to MUTT's Redis");
    let keys_before = m.keys();
    for args in [
        vec!["replay", "--dlq", "moog", "--yes"],
        vec!["dead", "--dlq", "alerter", "--yes"],
        vec!["purge", "--dlq", "dead", "--yes"],
        vec![
            "config",
            "set",
            "alerter_shed_mode",
            "defer",
            "--reason",
            "t",
            "--yes",
        ],
        vec!["config", "unset", "moog_rate_limit", "--yes"],
        vec![
            "breaker", "open", "moogsoft", "--for", "10m", "--reason", "t", "--yes",
        ],
        vec!["breaker", "reset", "moogsoft", "--yes"],
        vec![
            "requeue-orphan",
            "mutt:processing:moog:moog-5c4b-dead",
            "--yes",
        ],
    ] {
        let out = m.ward().args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let after = m.keys();
    let created: BTreeSet<&String> = after.difference(&keys_before).collect();
    assert_eq!(
        created,
        BTreeSet::from([&"ward-audit:log".to_owned()]),
        "the only new key is Ward's audit stream"
    );
    assert!(
        after.iter().all(|k| !k.starts_with("ward:")),
        "no Ward-layout key: {after:?}"
    );
    assert_eq!(m.cli(&["XLEN", "ward-audit:log"]), "8");
}

#[tokio::test]
async fn read_only_refuses_every_mutt_action() {
    let m = Mutt::start(Some(NOW_S));
    let before = m.dump_all();
    let now = NOW_MS + 1_000_000_000;
    let examples = vec![
        Action::MuttReplay {
            dlq: MuttDlqName::Moog,
            scope: MuttScope::All,
        },
        Action::MuttMoveToDead {
            dlq: MuttDlqName::Alerter,
            scope: MuttScope::All,
        },
        Action::MuttPurge {
            dlq: MuttDlqName::Dead,
            scope: MuttScope::All,
        },
        Action::MuttSetConfig {
            key: "alerter_shed_mode".into(),
            value: Some("defer".into()),
            reason: "r".into(),
        },
        Action::MuttBreaker {
            name: "moogsoft".into(),
            open_until_ms: Some(now),
            reason: "r".into(),
        },
        Action::MuttRequeueOrphan {
            list: "mutt:processing:moog:moog-5c4b-dead".into(),
        },
    ];
    let kinds: BTreeSet<ActionKind> = examples.iter().map(Action::kind).collect();
    let mutt_kinds: BTreeSet<ActionKind> = ActionKind::ALL
        .into_iter()
        .filter(|k| k.is_mutt())
        .collect();
    assert_eq!(kinds, mutt_kinds, "every MUTT action has an example");
    let writable = m.actions(Policy::writable()).await;
    let read_only = m.actions(Policy::read_only("read-only: --read-only")).await;
    for action in examples {
        let kind = action.kind();
        let planned = read_only.plan(action.clone()).await;
        assert!(
            matches!(&planned, Err(ActionError::Refused(_))),
            "{kind:?}: {planned:?}"
        );
        let plan = writable.plan(action).await.unwrap();
        let executed = read_only
            .execute(&plan, &CancellationToken::new(), &mut |_| {})
            .await;
        assert!(matches!(executed, Err(ActionError::Refused(_))), "{kind:?}");
    }
    for args in [
        vec!["replay", "--dlq", "moog"],
        vec!["dead", "--dlq", "alerter"],
        vec!["purge", "--dlq", "dead"],
        vec![
            "config",
            "set",
            "alerter_shed_mode",
            "defer",
            "--reason",
            "t",
        ],
        vec!["config", "unset", "moog_rate_limit"],
        vec!["breaker", "open", "moogsoft", "--reason", "t"],
        vec!["breaker", "reset", "moogsoft"],
        vec!["requeue-orphan", "mutt:processing:moog:moog-5c4b-dead"],
    ] {
        let out = m
            .ward()
            .args(&args)
            .args(["--read-only", "--yes"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(4), "{args:?}");
    }
    assert_eq!(
        m.dump_all(),
        before,
        "a refused action changed MUTT's Redis"
    );
}

#[test]
fn a_wrong_setting_is_a_refusal_not_unreachable() {
    let m = Mutt::start(None);
    m.cli(&["DEL", "mutt:alert_queue"]);
    m.cli(&["SET", "mutt:alert_queue", "oops"]);
    let out = m.ward().args(["status"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("mutt:alert_queue holds a string, expected a list"),
        "{stderr}"
    );
    assert!(!stderr.contains("unreachable"), "{stderr}");
    // watch stops on it instead of retrying forever.
    let out = m
        .ward()
        .args(["watch", "--interval", "250ms"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = m.ward().args(["check"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "a check that cannot run is UNKNOWN"
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("UNKNOWN configuration: "));
    // A refused password too.
    let bad = m.server.url().replace(PASSWORD, "wrong");
    let out = ward_command(m.home.path())
        .args(["--profile", "mutt", "--redis", &bad, "status"])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.to_lowercase().contains("auth"), "{stderr}");
    // A server that is gone is unreachable (exit 3), as before.
    let url = m.server.url();
    let Mutt { mut server, home } = m;
    server.kill();
    let out = ward_command(home.path())
        .args(["--profile", "mutt", "--redis", &url, "status"])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn ward_up_and_demo_refuse_the_mutt_profile() {
    let home = tempfile::tempdir().unwrap();
    for command in ["up", "demo"] {
        let out = ward_command(home.path())
            .args(["--profile", "mutt", command])
            .timeout(Duration::from_secs(30))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{command}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("attaches to a running MUTT"));
    }
}

#[test]
fn ward_tui_attaches_to_mutt_draws_and_replays_a_marked_entry() {
    use common::pty::Pty;
    let m = Mutt::start(None);
    let url = m.server.url();
    let mut pty = Pty::ward(
        m.home.path(),
        &["--profile", "mutt", "--redis", &url, "tui"],
    );
    pty.wait_for("MUTT's overview", Duration::from_secs(20), |s| {
        (s.contains("MUTT · overview") && s.contains("breaker moogsoft")).then_some(())
    });
    pty.press("3");
    pty.wait_for(
        "the forwarder DLQ, newest first",
        Duration::from_secs(10),
        |s| s.contains("mutt:dlq:moog · 1–5 of 5").then_some(()),
    );
    // Mark the newest entry and replay it.
    pty.press(" ");
    pty.press("r");
    pty.wait_for("the replay plan", Duration::from_secs(10), |s| {
        (s.contains("replay 1 marked entry of MUTT's moog DLQ") && s.contains("count 1"))
            .then_some(())
    });
    pty.press("\r");
    let done = regex::Regex::new(r"completed · moved (\d+)").unwrap();
    let moved: u64 = pty.wait_for("the replay to complete", Duration::from_secs(20), |s| {
        done.captures(s).and_then(|c| c[1].parse().ok())
    });
    assert_eq!(moved, 1);
    pty.press("\r");
    let status = pty.quit();
    assert!(
        matches!(status, Some(rexpect::process::WaitStatus::Exited(_, 0))),
        "exit status {status:?}; screen:\n{}",
        pty.screen()
    );
    assert_eq!(m.llen("mutt:dlq:moog"), 4);
    assert_eq!(m.llen("mutt:alert_queue"), 4);
    let replayed: serde_json::Value =
        serde_json::from_str(&m.cli(&["LINDEX", "mutt:alert_queue", "0"])).unwrap();
    assert_eq!(replayed["hostname"], "dbd-5");
    assert_eq!(replayed["_moog_retry_count"], 0);
    let audit = m.cli(&["XREVRANGE", "ward-audit:log", "+", "-", "COUNT", "1"]);
    assert!(audit.contains("mutt_replay"), "{audit}");
    assert!(
        audit.contains(r#"\"origin\":\"key\""#) || audit.contains(r#""origin":"key""#),
        "{audit}"
    );
}

#[tokio::test]
async fn an_orphan_goes_back_to_its_queue_and_a_live_pod_keeps_its_list() {
    let m = Mutt::start(None);
    let actions = m.actions(Policy::writable()).await;
    let orphan = "mutt:processing:moog:moog-5c4b-dead";
    let plan = actions
        .plan(Action::MuttRequeueOrphan {
            list: orphan.into(),
        })
        .await
        .unwrap();
    assert_eq!(plan.count, 2);
    assert_eq!(plan.sample[0].error_message, "orphan 1", "oldest first");
    let report = run(&actions, plan.action.clone()).await;
    assert_eq!((report.moved, report.remaining), (2, Some(0)));
    assert_eq!(m.cli(&["EXISTS", orphan]), "0");
    assert_eq!(m.llen("mutt:alert_queue"), 3 + 2);
    // RPOPLPUSH, as MUTT's janitor: the oldest goes first, so the newest ends at the head.
    let head: serde_json::Value =
        serde_json::from_str(&m.cli(&["LINDEX", "mutt:alert_queue", "0"])).unwrap();
    assert_eq!(head["message_body"], "orphan 2");
    // A pod with a heartbeat owns its list.
    let live = actions
        .plan(Action::MuttRequeueOrphan {
            list: "mutt:processing:alerter:alerter-7d9f-abc".into(),
        })
        .await;
    assert!(
        matches!(&live, Err(ActionError::Invalid(why)) if why.contains("live heartbeat")),
        "{live:?}"
    );
    assert_eq!(m.llen("mutt:processing:alerter:alerter-7d9f-abc"), 1);
    // Not a processing list: a usage error, nothing touched.
    let out = m
        .ward()
        .args(["requeue-orphan", "mutt:dlq:moog", "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(m.llen("mutt:dlq:moog"), 5);
}

#[tokio::test]
async fn replay_on_an_orphan_row_proposes_its_requeue() {
    let (section, page) = seeded_read().await;
    let mut app = mutt_app(section, page, Mode::default());
    app.show(View::Queues);
    let effects = app.run(ward::ui::Command::Replay);
    let action = effects.iter().find_map(|e| match e {
        ward::ui::app::Effect::Plan { action, .. } => Some(action.clone()),
        _ => None,
    });
    assert_eq!(
        action,
        Some(Action::MuttRequeueOrphan {
            list: "mutt:processing:moog:moog-5c4b-dead".into()
        }),
        "orphans are listed first"
    );
    app.run(ward::ui::Command::Down);
    let effects = app.run(ward::ui::Command::Replay);
    assert!(plans_nothing(&effects), "a live pod's list is not requeued");
}

#[tokio::test]
async fn a_replay_never_takes_entries_newer_than_its_plan_even_when_mutt_took_some() {
    let m = Mutt::start(Some(NOW_S));
    let actions = m.actions(Policy::writable()).await;
    let plan = replay_all_of_moog(&actions).await;
    assert_eq!(plan.count, 5);
    // Between plan and run, MUTT-like consumers take the two oldest from the same end, and two
    // alerts fail anew.
    m.cli(&["RPOP", "mutt:dlq:moog", "2"]);
    m.cli(&[
        "LPUSH",
        "mutt:dlq:moog",
        r#"{"hostname":"late-1"}"#,
        r#"{"hostname":"late-2"}"#,
    ]);
    let report = actions
        .execute(&plan, &CancellationToken::new(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!((report.moved, report.vanished), (3, 2), "{report:?}");
    let left = m.cli(&["LRANGE", "mutt:dlq:moog", "0", "-1"]);
    assert_eq!(left.lines().count(), 2, "{left}");
    assert!(left.contains("late-1") && left.contains("late-2"), "{left}");
    // All planned entries gone: nothing is taken.
    let plan = replay_all_of_moog(&actions).await;
    m.cli(&["DEL", "mutt:dlq:moog"]);
    m.cli(&["LPUSH", "mutt:dlq:moog", r#"{"hostname":"later"}"#]);
    let report = actions
        .execute(&plan, &CancellationToken::new(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!((report.moved, report.vanished), (0, 2), "{report:?}");
    assert_eq!(m.llen("mutt:dlq:moog"), 1);
}

#[tokio::test]
async fn entries_that_are_not_json_objects_are_not_replayed_into_a_queue() {
    let m = Mutt::start(Some(NOW_S));
    let actions = m.actions(Policy::writable()).await;
    let raw = "not json at all api_key=plain-secret";
    let report = run(
        &actions,
        Action::MuttReplay {
            dlq: MuttDlqName::Alerter,
            scope: MuttScope::Entries(vec![content_id(raw.as_bytes())]),
        },
    )
    .await;
    assert_eq!((report.moved, report.poisoned), (0, 1));
    assert_eq!(m.cli(&["LINDEX", "mutt:dlq:dead", "0"]), raw);
    assert_eq!(
        m.llen("mutt:ingest_queue"),
        7,
        "MUTT's alerter would have discarded it"
    );
}

#[test]
fn settings_and_breaker_names_are_checked_before_anything_is_written() {
    let m = Mutt::start(None);
    let before = m.dump_all();
    for (args, why) in [
        (
            vec!["config", "set", "alerter_queue_shed_threshold", "lots"],
            "takes a whole number",
        ),
        (
            vec!["config", "set", "alerter_shed_mode", "bogus"],
            "dlq or defer",
        ),
        (vec!["breaker", "reset", "moogsfot"], "no breaker named"),
    ] {
        let out = m
            .ward()
            .args(&args)
            .args(["--reason", "t", "--yes"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(why), "{args:?}: {stderr}");
    }
    assert_eq!(m.dump_all(), before);
    let out = m
        .ward()
        .args([
            "config",
            "set",
            "alerter_shed_modee",
            "dlq",
            "--reason",
            "t",
            "--dry-run",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("not known to read a setting named alerter_shed_modee"),
        "{text}"
    );
}

#[test]
fn a_stray_key_is_left_out_and_said_and_a_missing_password_is_refused() {
    let m = Mutt::start(None);
    m.cli(&["HSET", "mutt:config:weird", "a", "1"]);
    let mutt = status_json(&m);
    assert_eq!(mutt["skipped_keys"][0], "mutt:config:weird (hash)");
    assert!(
        mutt["config"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p[0] != "weird")
    );
    // No password at all: the server accepts the connection and refuses every command.
    let bare = format!("redis://127.0.0.1:{}/", m.server.port);
    let out = ward_command(m.home.path())
        .args(["--profile", "mutt", "--redis", &bare, "status"])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("refused the credentials"), "{stderr}");
}

#[test]
fn secrets_inside_values_never_reach_the_output() {
    let m = Mutt::start(None);
    m.cli(&[
        "LPUSH",
        "mutt:dlq:moog",
        r#"{"hostname":"s","message_body":"login password=hunter2 failed","raw_json":"[{\"api_key\":\"deep-secret\"}]","auth":"Authorization: Bearer sk-abc.def"}"#,
    ]);
    for format in ["json", "text"] {
        let out = m
            .ward()
            .args(["status", "--dlq", "moog", "--format", format])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        for secret in ["hunter2", "deep-secret", "sk-abc", "moog-secret-key"] {
            assert!(!text.contains(secret), "{format}: {secret} in {text}");
        }
    }
}
