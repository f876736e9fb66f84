//! The control room without a terminal: every view drawn on ratatui's `TestBackend` at 80×24 and
//! 160×48 (insta snapshots of a fixed snapshot), key-driven state (views, marks, the confirm
//! funnel, read-only, freeze, the command line), and hostile DLQ text rendered inert.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ward::actions::{
    Action, Outcome, Override, OverrideKind, Plan, Report, SampleRow, Scope, Tier,
};
use ward::engine::breaker::{BreakerState, FailureRate};
use ward::engine::inhibit::{InhibitRule, InhibitRuleConfig};
use ward::engine::matcher::parse_matchers;
use ward::model::{
    AlertStatus, AuditEntry, AuditRecord, DlqEntry, DlqMeta, Envelope, EnvelopeId, FailedAttempt,
    FlagState, QueueName, QueueStats, SeenAlert, ShedMode, Silence, SilenceKind,
};
use ward::sources::AlertingView;
use ward::sources::snapshot::{
    BreakerView, DlqPageView, Freshness, History, QueueView, Rates, Snapshot, SourceStatus,
    StoreSection, Target, WorkerRow, WorkersView,
};
use ward::store::{DlqCursor, FailedSet};
use ward::ui::app::{Effect, JobEvent, Overlay, Stage};
use ward::ui::{App, Keymap, Mode, Theme, View};

/// 2026-11-30 14:02:00 UTC: every time in the fixture is relative to it.
const NOW: i64 = 1_796_047_320_000;

/// Alert names and severities the fixture's entries cycle through.
const ALERTS: [(&str, &str); 3] = [
    ("HighErrorRate", "critical"),
    ("DiskFull", "warning"),
    ("CheckoutLatency", "major"),
];

fn dlq_entry(n: usize, tenant: &str, class: &str, message: &str) -> DlqEntry {
    dlq_entry_named(n, tenant, class, message, ALERTS[n % 3].0)
}

/// A delivery's DLQ entry: an alert for `slack-ops` that failed twice before, `n` seconds into
/// the last minute.
fn dlq_entry_named(
    n: usize,
    tenant: &str,
    class: &str,
    message: &str,
    alertname: &str,
) -> DlqEntry {
    let id = EnvelopeId(format!("01TESTENTRY{n:015}"));
    let at = NOW - 60_000 + n as i64 * 1_000;
    let attempts = 1 + (n as u32 * 5) % 4 + 2;
    let mut envelope = Envelope::new(
        tenant,
        serde_json::json!({
            "alert": {
                "labels": {"alertname": alertname, "service": "checkout"},
                "annotations": {"summary": "errors above 5% for 10m"},
                "severity": ALERTS[n % 3].1,
            },
            "channel": "slack-ops",
            "token": "s3cret",
        }),
        at - 600_000,
    );
    envelope.id = id.clone();
    envelope.idempotency_key = format!("alert-{n}@slack-ops");
    envelope.record_attempt(FailedAttempt::new(
        1,
        at - 300_000,
        "slack-ops",
        "timeout",
        "no answer within 10s",
    ));
    envelope.record_attempt(FailedAttempt::new(
        2,
        at - 120_000,
        "slack-ops",
        "http_503",
        "slack answered 503 Service Unavailable",
    ));
    DlqEntry {
        partition: 0,
        meta: DlqMeta {
            id,
            queue: QueueName::delivery(),
            tenant: tenant.to_owned(),
            error_class: class.to_owned(),
            error_message: message.to_owned(),
            stage: "deliver".to_owned(),
            channel: "slack-ops".to_owned(),
            attempts,
            replays: 0,
            first_failure_ms: at - 300_000,
            last_failure_ms: at,
            key: DlqMeta::order_key(at, &EnvelopeId(format!("01TESTENTRY{n:015}"))),
        },
        envelope: Ok(envelope),
    }
}

/// The 12 scheduled entries of the fixture's queues: held back by an open breaker on
/// delivery, deferred by shedding on ingest.
fn waiting_retry(queue: &QueueName) -> ward::model::ScheduledSummary {
    use ward::model::{ScheduledChannel, ScheduledSummary};
    let channel = |channel: &str, count, retrying, due, oldest| ScheduledChannel {
        channel: channel.to_owned(),
        count,
        retrying,
        next_due_ms: NOW + due,
        oldest_age_ms: oldest,
    };
    let channels = if *queue == QueueName::delivery() {
        vec![
            channel("slack-ops", 10, 0, 8_000, 310_000),
            channel("pager", 2, 2, 21_000, 45_000),
        ]
    } else {
        vec![channel("", 12, 0, 1_000, 30_000)]
    };
    ScheduledSummary {
        read: 12,
        next_due_ms: channels.iter().map(|c| c.next_due_ms).min(),
        oldest_age_ms: channels.iter().map(|c| c.oldest_age_ms).max(),
        retrying: channels.iter().map(|c| c.retrying).sum(),
        channels,
    }
}

fn queue(name: QueueName, depth: u64, dlq: u64) -> QueueView {
    QueueView {
        stats: QueueStats {
            waiting_retry: waiting_retry(&name),
            queue: name,
            depth,
            in_flight: 4,
            scheduled: 12,
            dlq,
            dead: 2,
            oldest_age_ms: Some(1_500),
        },
        warn_at: Some(400),
        shed_at: Some(1_000),
        over_warn: depth > 400,
        over_shed: depth > 1_000,
    }
}

#[allow(clippy::too_many_lines)] // one fixture, field by field
fn fixture() -> Snapshot {
    let flag = FlagState {
        value: "dlq".to_owned(),
        owner: "ana@ops-1".to_owned(),
        reason: "burst from the batch job".to_owned(),
        set_at_ms: NOW - 600_000,
        expires_at_ms: Some(NOW + 3_000_000),
    };
    let audit = (0..3)
        .map(|i| AuditEntry {
            id: format!("{}-0", NOW - i * 10_000),
            record: AuditRecord {
                at_ms: NOW - i * 10_000,
                who: "ana@ops-1".to_owned(),
                action: "replay".to_owned(),
                scope: "replay entries where error=http_500 from the DLQ of delivery".to_owned(),
                plan: serde_json::Value::Null,
                result: "completed: 57".to_owned(),
                duration_ms: 51,
                origin: "key".to_owned(),
                target: "prod".to_owned(),
                batch_id: "01PLAN".to_owned(),
                reason: "vendor outage".to_owned(),
            },
        })
        .collect();
    let breaker = |channel: &str, state, rate: FailureRate| BreakerView {
        window_ms: 60_000,
        channel: channel.to_owned(),
        state,
        failure_rate: rate,
        threshold: 0.5,
        time_in_state_ms: 42_000,
        remaining_ms: (state == BreakerState::Open).then_some(3_000),
        not_permitted: 17,
        transitions: 4,
        owner: None,
        reason: None,
    };
    let store = StoreSection {
        read_at_ms: NOW,
        queues: vec![
            queue(QueueName::ingest(), 1_200, 0),
            queue(QueueName::delivery(), 35, 57),
        ],
        breakers: vec![
            breaker(
                "slack-ops",
                BreakerState::Open,
                FailureRate::Known {
                    rate: 0.82,
                    calls: 40,
                    failures: 33,
                },
            ),
            breaker(
                "pager",
                BreakerState::HalfOpen,
                FailureRate::NotEnoughCalls {
                    calls: 2,
                    minimum: 10,
                },
            ),
            breaker(
                "mail",
                BreakerState::Closed,
                FailureRate::Known {
                    rate: 0.0,
                    calls: 120,
                    failures: 0,
                },
            ),
        ],
        overrides: vec![Override {
            kind: OverrideKind::Shedding,
            name: "shedding_mode".to_owned(),
            value: "dlq".to_owned(),
            owner: flag.owner.clone(),
            reason: flag.reason.clone(),
            set_at_ms: flag.set_at_ms,
            expires_at_ms: flag.expires_at_ms,
            age_ms: 600_000,
            expired: false,
        }],
        audit,
        workers: WorkersView {
            live: 2,
            live_consumers: 2,
            silent: 0,
            newest_beat_age_ms: Some(400),
            list: vec![WorkerRow {
                id: "ops-1:42:beef".to_owned(),
                role: ward::model::Role::All,
                beat_age_ms: 400,
                uptime_ms: 3_600_000,
                live: true,
            }],
        },
        rates: Rates {
            ingested_per_s: Some(40.0),
            delivered_per_s: Some(38.5),
            failed_per_s: Some(12.0),
            error_ratio: Some(0.237),
            dlq_growth_per_min: Some(310.0),
            window_ms: Some(5_000),
        },
        emergency_stop: None,
        channel_stops: Vec::new(),
        shedding: ShedMode::Dlq,
        shedding_flag: Some(flag),
        history: History {
            depth: (0..60).map(|i| (i * 37) % 1_300).collect(),
            delivered_per_s: (0..60).map(|i| 30 + i % 10).collect(),
            error_permille: (0..60).map(|i| if i > 40 { 800 } else { 10 }).collect(),
            dlq: (0..60).collect(),
            at_ms: (0..60).map(|i| NOW - (59 - i) * 1_000).collect(),
        },
        alerting: alerting(),
    };
    let entries = (0..6)
        .rev()
        .map(|n| {
            dlq_entry(
                n,
                if n % 2 == 0 { "team-a" } else { "team-b" },
                "http_500",
                "slack answered 500 Internal Server Error",
            )
        })
        .collect();
    Snapshot {
        version: 7,
        taken_at_ms: NOW,
        target: Target {
            label: "prod".to_owned(),
            backend: "redis".to_owned(),
            address: "redis://10.0.0.5:6379/".to_owned(),
            read_only: None,
            ..Target::default()
        },
        sources: vec![source(Freshness::Fresh)],
        mutt: None,
        mutt_page: None,
        slo: Some(std::sync::Arc::new(slo_section())),
        store: Some(store),
        dlq_page: Some(DlqPageView {
            query: ward::sources::DlqQuery {
                queue: "delivery".to_owned(),
                set: FailedSet::Dlq,
                filter: ward::store::DlqFilter::default(),
                cursor: DlqCursor::newest(),
                limit: 100,
                grouped: false,
            },
            read_at_ms: NOW,
            entries,
            next: None,
            matching: Some(57),
            error: None,
            groups: None,
        }),
    }
}

/// A silence of the fixture, its matchers as an operator types them.
fn silence(
    id: &str,
    matchers: &str,
    (starts, ends): (i64, i64),
    owner: &str,
    comment: &str,
) -> Silence {
    Silence {
        id: id.to_owned(),
        matchers: parse_matchers(matchers).unwrap(),
        starts_at_ms: starts,
        ends_at_ms: ends,
        created_by: owner.to_owned(),
        comment: comment.to_owned(),
        updated_at_ms: starts,
        kind: SilenceKind::Silence,
    }
}

/// An alert the router saw, firing or resolved.
fn seen_alert(labels: &[(&str, &str)], status: AlertStatus, started_min_ago: i64) -> SeenAlert {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|&(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    SeenAlert {
        fingerprint: ward::model::fingerprint(&labels),
        labels,
        status,
        starts_at_ms: NOW - started_min_ago * 60_000,
        ends_at_ms: (status == AlertStatus::Resolved).then_some(NOW - 120_000),
        last_seen_ms: NOW - 2_000,
    }
}

/// Silences and the alerts seen, classified by the engine the workers use: an active silence
/// ending in 3 minutes, a pending one and one expired 4 minutes ago; NodeDown on db-2 firing
/// (and inhibiting db-2's warnings), DiskFull on db-1 silenced, DiskFull on db-2 inhibited, and
/// HighErrorRate resolved.
fn alerting() -> AlertingView {
    alerting_with(
        "disk swap on db-1, OPS-12",
        &[
            ("alertname", "DiskFull"),
            ("instance", "db-1"),
            ("job", "node"),
            ("severity", "warning"),
        ],
    )
}

/// The fixture's silences and alerts, with the active silence's comment and the silenced
/// alert's labels as given.
fn alerting_with(comment: &str, silenced: &[(&str, &str)]) -> AlertingView {
    let silences = vec![
        silence(
            "01jdw7q3kx5m2n8p4r6t9v1b3c",
            "{alertname=\"DiskFull\", instance=~\"db-.*\"}",
            (NOW - 3_600_000, NOW + 180_000),
            "ana@ops-1",
            comment,
        ),
        silence(
            "01jdw9e2c4f6h8j0k2m4n6p8q0",
            "{alertname=\"CheckoutLatency\", service=\"checkout\"}",
            (NOW + 600_000, NOW + 7_800_000),
            "bo@ops-2",
            "checkout deploy window, CHG-881",
        ),
        silence(
            "01jdv1a3b5d7f9g1h3j5k7m9n1",
            "{alertname=\"HighErrorRate\"}",
            (NOW - 7_200_000, NOW - 240_000),
            "cy@ops-1",
            "vendor outage, INC-42",
        ),
    ];
    let alerts = vec![
        seen_alert(
            &[
                ("alertname", "NodeDown"),
                ("instance", "db-2"),
                ("job", "node"),
                ("severity", "critical"),
            ],
            AlertStatus::Firing,
            12,
        ),
        seen_alert(silenced, AlertStatus::Firing, 40),
        seen_alert(
            &[
                ("alertname", "DiskFull"),
                ("instance", "db-2"),
                ("job", "node"),
                ("severity", "warning"),
            ],
            AlertStatus::Firing,
            11,
        ),
        seen_alert(
            &[
                ("alertname", "HighErrorRate"),
                ("service", "checkout"),
                ("severity", "critical"),
            ],
            AlertStatus::Resolved,
            55,
        ),
    ];
    let rule = InhibitRule::new(
        &InhibitRuleConfig {
            name: "node-down-mutes-its-warnings".to_owned(),
            source_matchers: vec!["alertname=\"NodeDown\"".to_owned()],
            target_matchers: vec!["severity=\"warning\"".to_owned()],
            equal: vec!["instance".to_owned()],
        },
        0,
    )
    .unwrap();
    let rules = ward::engine::suppress::Rules {
        inhibit: vec![rule],
        maintenance: Vec::new(),
    };
    AlertingView::build(silences, alerts, &rules, false, NOW)
}

fn source(freshness: Freshness) -> SourceStatus {
    SourceStatus {
        name: "redis".to_owned(),
        address: "redis://10.0.0.5:6379/".to_owned(),
        freshness,
        last_ok_ms: (freshness != Freshness::Connecting).then_some(NOW - 2_000),
        failing_since_ms: None,
        last_error: (freshness != Freshness::Fresh)
            .then(|| "Connection refused (os error 111)".to_owned()),
        consecutive_failures: if freshness == Freshness::Fresh { 0 } else { 3 },
        next_read_ms: NOW + 4_000,
        interval_ms: 1_000,
        round_trips: 1,
        refused: false,
    }
}

fn app_with(snapshot: Snapshot, mode: Mode) -> App {
    let keymap = Keymap::new(&BTreeMap::new()).unwrap();
    App::new(
        mode,
        keymap,
        vec!["slack-ops".to_owned(), "pager".to_owned()],
        Arc::new(snapshot),
    )
}

fn app() -> App {
    app_with(fixture(), Mode::default())
}

fn theme() -> Theme {
    Theme::load("default", &[]).unwrap()
}

fn render(app: &App, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    let theme = theme();
    terminal
        .draw(|frame| ward::ui::views::draw(app.scene(), &theme, frame))
        .unwrap();
    terminal
}

fn screen(app: &App, width: u16, height: u16) -> String {
    render(app, width, height).backend().to_string()
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ch(c: char) -> KeyEvent {
    key(KeyCode::Char(c))
}

/// Snapshot a screen with wall-clock times and hosts masked (the fixture's are fixed anyway).
fn snapshot(name: &str, text: &str) {
    insta::with_settings!({filters => vec![(r"\d{2}:\d{2}:\d{2} UTC", "[clock] UTC")]}, {
        insta::assert_snapshot!(name, text);
    });
}

#[test]
fn every_view_at_two_sizes() {
    for (w, h) in [(80u16, 24u16), (200, 50)] {
        for view in View::ALL {
            let mut app = app();
            app.show(view);
            snapshot(
                &format!("{}_{w}x{h}", view.title().to_lowercase()),
                &screen(&app, w, h),
            );
        }
        let mut app = app_with(
            fixture(),
            Mode {
                wall: true,
                read_only: Some("--wall".to_owned()),
                ..Mode::default()
            },
        );
        app.show(View::Overview);
        snapshot(&format!("wall_{w}x{h}"), &screen(&app, w, h));
    }
}

#[test]
fn ingest_only_processes_are_not_counted_as_draining_the_queues() {
    let with_workers = |live: usize, live_consumers: usize| {
        let mut snapshot = fixture();
        let workers = &mut snapshot.store.as_mut().unwrap().workers;
        workers.live = live;
        workers.live_consumers = live_consumers;
        snapshot
    };
    let text = screen(&app_with(with_workers(2, 1), Mode::default()), 200, 50);
    assert!(text.contains("2 workers (1 ingest-only)"), "{text}");
    let text = screen(&app_with(with_workers(1, 0), Mode::default()), 200, 50);
    assert!(text.contains("no consumer (1 ingest-only)"), "{text}");

    let wall = Mode {
        wall: true,
        read_only: Some("--wall".to_owned()),
        ..Mode::default()
    };
    let text = screen(&app_with(with_workers(3, 2), wall), 200, 50);
    assert!(text.contains(" live workers, +1 ingest-only "), "{text}");
}

#[test]
fn overlays_and_states_at_160x48() {
    let mut help = app();
    help.key(ch('?'));
    snapshot("help_160x48", &screen(&help, 160, 48));

    let mut stale = fixture();
    stale.sources = vec![source(Freshness::Stale)];
    snapshot(
        "stale_160x48",
        &screen(&app_with(stale, Mode::default()), 160, 48),
    );

    let mut connecting = fixture();
    connecting.store = None;
    connecting.dlq_page = None;
    connecting.sources = vec![source(Freshness::Connecting)];
    snapshot(
        "diagnostic_160x48",
        &screen(&app_with(connecting, Mode::default()), 160, 48),
    );

    let mut confirm = app();
    confirm.key(ch('3'));
    confirm.key(ch('r'));
    let ticket = dialog(&confirm);
    confirm.job(
        ticket,
        JobEvent::Planned(Ok(plan_for(confirm_action(&confirm), 57))),
    );
    snapshot("confirm_160x48", &screen(&confirm, 160, 48));

    let mut inspector = app();
    inspector.key(ch('3'));
    inspector.key(key(KeyCode::Enter));
    snapshot("inspector_160x48", &screen(&inspector, 160, 48));
}

fn confirm_action(app: &App) -> Action {
    match app.ui.overlay.as_ref() {
        Some(Overlay::Confirm(confirm)) => confirm.action.clone(),
        other => panic!("no confirm dialog: {other:?}"),
    }
}

/// Four objectives: one fine, one paging (20 % errors against 99 %), one with no traffic, one
/// whose series went away five minutes ago.
fn slo_section() -> ward::sources::slo::SloSection {
    use ward::engine::slo::{Measurement, Measurements, Objective, Period, WINDOWS_S, evaluate};
    let reading = |name: &str, target: f64, m: Measurement| ward::sources::slo::SloReading {
        next_step: if name.starts_with("delivery-success") {
            "page: fast burn, act now: look at breaker slack-ops (4) and the DLQ filtered \
             channel=slack-ops (3) (the figures cover 3m of data)"
                .to_owned()
        } else {
            String::new()
        },
        name: name.to_owned(),
        description: String::new(),
        seen_at_ms: Some(if m == Measurement::Absent {
            NOW - 300_000
        } else {
            NOW - 3_000
        }),
        trend: ward::sources::slo::BurnTrend {
            short: (0..60)
                .map(|i| (i > 10).then(|| f64::from(i % 20)))
                .collect(),
            long: (0..60).map(|i| Some(f64::from(i) / 4.0)).collect(),
            threshold: 14.4,
        },
        figures: evaluate(
            &Objective::new(target, Period::Days30).unwrap(),
            &Measurements {
                windows: [m; WINDOWS_S.len()],
                period: m,
                // `ward up` started three minutes ago: every window has 3 m of data.
                history_s: Some(180),
            },
        ),
    };
    ward::sources::slo::SloSection {
        source: "prometheus http://10.0.0.9:9090".to_owned(),
        read_at_ms: Some(NOW - 3_000),
        error: None,
        readings: vec![
            reading("ingest-success", 0.999, Measurement::events(3.0, 100_000.0)),
            reading(
                "delivery-success-slack",
                0.99,
                Measurement::events(2_000.0, 10_000.0),
            ),
            reading("delivery-latency", 0.99, Measurement::NoTraffic),
            reading("pager-availability", 0.99, Measurement::Absent),
        ],
    }
}

/// The ticket of the open confirm dialog.
fn dialog(app: &App) -> u64 {
    match &app.ui.overlay {
        Some(Overlay::Confirm(confirm)) => confirm.ticket,
        other => panic!("no confirm dialog: {other:?}"),
    }
}

fn plan_for(action: Action, count: u64) -> Plan {
    let bulk = action.is_bulk();
    let (silence, preview) = match &action {
        Action::SilenceCreate {
            matchers,
            starts_at_ms,
            ends_at_ms,
            comment,
            ..
        } => (
            Some(ward::model::Silence {
                id: "01silence".to_owned(),
                matchers: matchers.clone(),
                starts_at_ms: *starts_at_ms,
                ends_at_ms: *ends_at_ms,
                created_by: "ops".to_owned(),
                comment: comment.clone(),
                updated_at_ms: NOW,
                kind: ward::model::SilenceKind::Silence,
            }),
            Some(ward::actions::SilencePreview {
                last_hour: ward::actions::PreviewCount {
                    matched: 3,
                    examined: 40,
                    total: None,
                },
                firing_now: 2,
                dlq: ward::actions::PreviewCount {
                    matched: 1,
                    examined: 5_000,
                    total: Some(12_000),
                },
                scheduled: ward::actions::PreviewCount {
                    matched: 0,
                    examined: 4,
                    total: Some(4),
                },
                sample: vec!["DiskFull {instance=\"db-1\", severity=\"warning\"}".to_owned()],
            }),
        ),
        _ => (None, None),
    };
    Plan {
        id: "01PLAN".to_owned(),
        tier: action.tier(),
        summary: action.describe(),
        action,
        target: "prod".to_owned(),
        count,
        sample: vec![SampleRow {
            id: "01TESTENTRY000000000000001".to_owned(),
            tenant: "team-a".to_owned(),
            error_class: "http_500".to_owned(),
            error_message: "slack answered 500".to_owned(),
            last_failure_ms: NOW - 30_000,
        }]
        .into_iter()
        .filter(|_| bulk)
        .collect(),
        batch_size: 50,
        rate_per_s: Some(1_000),
        eta: Some(Duration::from_millis(57)),
        warnings: Vec::new(),
        planned_at_ms: NOW,
        mutt_boundary: None,
        run_reason: None,
        silence,
        preview,
    }
}

/// The confirm dialog's box, cut out of a screen: its rows, between its corners.
fn dialog_box(screen: &str, title: &str) -> String {
    let rows: Vec<Vec<char>> = screen.lines().map(|l| l.chars().collect()).collect();
    let top_mark: Vec<char> = format!("┌ {title} ").chars().collect();
    let (top, left) = rows
        .iter()
        .enumerate()
        .find_map(|(y, row)| {
            row.windows(top_mark.len())
                .position(|w| w == top_mark.as_slice())
                .map(|x| (y, x))
        })
        .unwrap_or_else(|| panic!("no dialog titled {title}: {screen}"));
    let right = (left + 1..rows[top].len())
        .find(|&x| rows[top][x] == '┐')
        .unwrap();
    let mut out = Vec::new();
    for row in &rows[top..] {
        out.push(row[left..=right].iter().collect::<String>());
        if row[left] == '└' {
            break;
        }
    }
    out.join("\n")
}

#[test]
fn number_keys_switch_views_and_the_dlq_view_asks_for_its_page() {
    let mut app = app();
    let effects = app.key(ch('3'));
    assert_eq!(app.ui.view, View::Dlq);
    assert!(matches!(effects.as_slice(), [Effect::Browse(Some(q))] if q.queue == "delivery"));
    assert_eq!(app.key(ch('1')), vec![Effect::Browse(None)]);
    assert_eq!(app.ui.view, View::Overview);
    app.key(key(KeyCode::Tab));
    assert_eq!(app.ui.view, View::Queues);
}

#[test]
fn marks_scope_a_replay_and_the_funnel_runs_plan_confirm_execute_audit() {
    let mut app = app();
    app.key(ch('3'));
    app.key(ch(' '));
    app.key(ch(' '));
    assert_eq!(app.ui.dlq.marks.len(), 2);
    let effects = app.key(ch('r'));
    let [Effect::Plan { action, .. }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    let Action::Replay {
        scope: Scope::Ids(ids),
        ..
    } = action
    else {
        panic!("{action:?}")
    };
    assert_eq!(ids.len(), 2, "marked rows, not the page or the filter");
    app.job(
        dialog(&app),
        JobEvent::Planned(Ok(plan_for(action.clone(), 2))),
    );
    let effects = app.key(key(KeyCode::Enter));
    assert!(
        matches!(effects.as_slice(), [Effect::Execute { .. }]),
        "{effects:?}"
    );
    let report = Report {
        plan_id: "01PLAN".to_owned(),
        outcome: Outcome::Completed,
        moved: 2,
        poisoned: 0,
        vanished: 0,
        batches: 1,
        remaining: None,
        duration_ms: 3,
        audit_id: Some("1-0".to_owned()),
        test: None,
        silence_id: None,
    };
    assert_eq!(
        app.job(dialog(&app), JobEvent::Finished(Ok(report))),
        vec![Effect::Refresh]
    );
    assert!(
        matches!(&app.ui.overlay, Some(Overlay::Confirm(c)) if matches!(c.stage, Stage::Done { .. }))
    );
    app.key(key(KeyCode::Enter));
    assert!(app.ui.overlay.is_none());
    // The replay consumed the marks: the next action is not offered the same ids.
    assert!(app.ui.dlq.marks.is_empty());
    let effects = app.key(ch('D'));
    let [Effect::Plan { action, .. }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert!(
        matches!(action.dlq_scope(), Some((.., Scope::Filter(_)))),
        "{action:?}"
    );
}

#[test]
fn esc_cancels_a_plan_without_running_it() {
    let mut app = app();
    let effects = app.key(ch('s'));
    let [Effect::Plan { action, .. }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert!(
        matches!(
            action,
            Action::Shedding {
                mode: ShedMode::Off,
                ..
            }
        ),
        "shedding is on in the fixture: s turns it off"
    );
    app.job(
        dialog(&app),
        JobEvent::Planned(Ok(plan_for(action.clone(), 1))),
    );
    assert!(app.key(key(KeyCode::Esc)).is_empty());
    assert!(app.ui.overlay.is_none());
}

#[test]
fn a_purge_runs_only_after_the_count_is_typed() {
    let mut app = app();
    app.key(ch('3'));
    let effects = app.key(ch('D'));
    let [Effect::Plan { action, .. }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    let plan = plan_for(action.clone(), 57);
    assert_eq!(plan.tier, Tier::Irreversible);
    app.job(dialog(&app), JobEvent::Planned(Ok(plan)));
    assert!(app.key(key(KeyCode::Enter)).is_empty(), "no count typed");
    app.key(ch('5'));
    app.key(ch('6'));
    assert!(app.key(key(KeyCode::Enter)).is_empty(), "56 is not 57");
    app.key(key(KeyCode::Backspace));
    app.key(ch('7'));
    assert!(matches!(
        app.key(key(KeyCode::Enter)).as_slice(),
        [Effect::Execute { .. }]
    ));
}

#[test]
fn read_only_hides_and_refuses_every_mutating_key_and_says_why() {
    let mode = Mode {
        read_only: Some("--read-only".to_owned()),
        ..Mode::default()
    };
    let mut app = app_with(fixture(), mode);
    for &command in ward::ui::Command::ALL {
        if !command.is_mutating() {
            continue;
        }
        assert!(
            !app.scene().available(command),
            "{} offered read-only",
            command.name()
        );
        assert!(
            app.run(command).is_empty(),
            "{} ran read-only",
            command.name()
        );
        assert!(
            app.ui
                .toasts
                .back()
                .is_some_and(|t| t.text.contains("read-only: --read-only"))
        );
    }
    assert!(app.command_line("replay error=timeout").is_empty());
    let text = screen(&app, 160, 48);
    assert!(text.contains("READ-ONLY"));
    assert!(!text.contains("r:replay"), "the hint bar offers no action");
    app.key(ch('?'));
    let help = screen(&app, 160, 48);
    assert!(!help.contains("replay the DLQ"), "help lists no action");
}

#[test]
fn freeze_keeps_the_frame_while_reads_go_on() {
    let mut app = app();
    app.key(ch('f'));
    let mut newer = fixture();
    newer.version = 8;
    app.on_snapshot(Arc::new(newer));
    assert_eq!(app.snapshot.version, 7);
    assert!(screen(&app, 160, 48).contains("FROZEN"));
    app.key(ch('f'));
    let mut newest = fixture();
    newest.version = 9;
    app.on_snapshot(Arc::new(newest));
    assert_eq!(app.snapshot.version, 9);
}

#[test]
fn the_command_line_plans_with_its_settings_and_names_mistakes() {
    let mut app = app();
    app.key(ch(':'));
    for c in "replay error=timeout max=500 rate=50/s".chars() {
        app.key(ch(c));
    }
    let effects = app.key(key(KeyCode::Enter));
    let [
        Effect::Plan {
            settings, origin, ..
        },
    ] = effects.as_slice()
    else {
        panic!("{effects:?}")
    };
    assert_eq!(settings.max_items, Some(500));
    assert_eq!(settings.rate_per_s, Some(50));
    assert_eq!(*origin, ward::actions::Origin::Command);
    let mut app = self::app();
    assert!(app.command_line("replay colour=red").is_empty());
    assert!(
        app.ui
            .toasts
            .back()
            .is_some_and(|t| t.error && t.text.contains("colour"))
    );
}

#[test]
fn esc_clears_marks_then_the_filter_then_goes_back() {
    let mut app = app();
    app.key(ch('3'));
    app.key(ch('/'));
    for c in "error=http_500".chars() {
        app.key(ch(c));
    }
    let effects = app.key(key(KeyCode::Enter));
    assert!(
        matches!(effects.as_slice(), [Effect::Browse(Some(q))] if q.filter.error_class.as_deref() == Some("http_500"))
    );
    read_back(&mut app, None);
    app.key(ch(' '));
    app.key(key(KeyCode::Esc));
    assert!(app.ui.dlq.marks.is_empty());
    assert_eq!(app.ui.dlq.filter_text, "error=http_500");
    app.key(key(KeyCode::Esc));
    assert!(app.ui.dlq.filter_text.is_empty());
    app.key(key(KeyCode::Esc));
    assert_eq!(app.ui.view, View::Overview);
}

#[test]
fn hostile_dlq_text_renders_inert() {
    let hostile = [
        "\u{1b}[31mred\u{1b}[0m",
        "\u{1b}]52;c;ZXZpbA==\u{7}copied",
        "\u{1b}]8;;http://evil\u{1b}\\link\u{1b}]8;;\u{1b}\\",
        "abc\u{202E}gnp.exe",
        "bell\u{7}back\u{8}nul\u{0}del\u{7f}",
        "c1\u{9b}31m",
    ];
    let mut snapshot = fixture();
    let page = snapshot.dlq_page.as_mut().unwrap();
    page.entries = hostile
        .iter()
        .enumerate()
        .map(|(n, text)| dlq_entry_named(n, text, text, text, text))
        .collect();
    let mut app = app_with(snapshot, Mode::default());
    app.key(ch('3'));
    let mut frames = vec![render(&app, 160, 48)];
    app.key(key(KeyCode::Enter));
    frames.push(render(&app, 160, 48));
    for terminal in &frames {
        for cell in terminal.backend().buffer().content() {
            let symbol = cell.symbol();
            assert!(
                !symbol.chars().any(|c| c.is_control()
                    || ('\u{202A}'..='\u{202E}').contains(&c)
                    || ('\u{2066}'..='\u{2069}').contains(&c)),
                "unsafe character {symbol:?} reached the screen"
            );
        }
    }
    let text = frames[0].backend().to_string();
    assert!(
        text.contains("?[31mred"),
        "the escape is shown as a visible '?', not executed"
    );
}

#[test]
fn a_late_plan_or_error_for_a_dropped_action_is_not_shown_for_the_next_one() {
    let mut app = app();
    let effects = app.key(ch('s'));
    let [
        Effect::Plan {
            ticket: dropped_ticket,
            action: dropped,
            ..
        },
    ] = effects.as_slice()
    else {
        panic!("{effects:?}")
    };
    let (dropped_ticket, dropped) = (*dropped_ticket, dropped.clone());
    app.key(key(KeyCode::Esc));
    app.key(ch('E'));
    app.job(dropped_ticket, JobEvent::Planned(Ok(plan_for(dropped, 1))));
    app.job(
        dropped_ticket,
        JobEvent::Planned(Err("store unreachable".to_owned())),
    );
    assert!(
        matches!(&app.ui.overlay, Some(Overlay::Confirm(c)) if matches!(c.stage, Stage::Planning) && matches!(c.action, Action::EmergencyStop { .. })),
        "{:?}",
        app.ui.overlay
    );
}

#[test]
fn a_plan_that_fixed_a_cut_off_is_shown_for_its_action() {
    let mut app = app();
    let effects = app.key(ch('r'));
    let [Effect::Plan { action, .. }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    let mut planned = action.clone();
    if let Action::Replay {
        scope: Scope::Filter(filter),
        ..
    } = &mut planned
    {
        filter.failed_before_ms = Some(NOW);
    }
    assert_ne!(&planned, action, "planning changed the action");
    app.job(dialog(&app), JobEvent::Planned(Ok(plan_for(planned, 57))));
    assert!(
        matches!(&app.ui.overlay, Some(Overlay::Confirm(c)) if matches!(c.stage, Stage::Ready { .. }))
    );
}

/// Parity: `ward status --format json` carries every figure the control room draws. The views
/// drawn from the snapshot read back out of the status JSON equal the views drawn from the
/// original, cell for cell (the DLQ page's entries are the browser's, not the status's).
#[test]
fn every_figure_the_views_draw_is_in_the_status_json() {
    let original = fixture();
    let mut without_page = original.clone();
    without_page.dlq_page = None;
    let json =
        serde_json::to_string(&ward::headless::Status::new(original.clone(), Vec::new())).unwrap();
    let back: ward::headless::Status = serde_json::from_str(&json).unwrap();
    assert_eq!(back.kind, "ward.status");
    let cases = [
        (View::Overview, false),
        (View::Overview, true),
        (View::Queues, false),
        (View::Breakers, false),
        (View::Overrides, false),
        (View::Audit, false),
        (View::Slo, false),
        (View::Silences, false),
        (View::Alerts, false),
        (View::Dlq, false),
    ];
    for (view, wall) in cases {
        for (w, h) in [(200u16, 60u16), (80, 24)] {
            let draw = |snapshot: Snapshot| {
                let mut app = app_with(
                    snapshot,
                    Mode {
                        wall,
                        ..Mode::default()
                    },
                );
                app.show(view);
                render(&app, w, h).backend().buffer().clone()
            };
            let expected = if view == View::Dlq {
                draw(without_page.clone())
            } else {
                draw(original.clone())
            };
            let mut from_status = back.snapshot.clone();
            from_status.dlq_page = None;
            assert_eq!(
                draw(from_status),
                expected,
                "{view:?} (wall {wall}) at {w}x{h} differs when drawn from the status JSON"
            );
        }
    }
}

/// Every kind of action has a dialog in the operator's words: a human title, and for a single
/// change no count, batch or pace; its result says "applied", not "moved 1".
#[test]
#[allow(clippy::too_many_lines)] // one example per action kind, field by field
fn every_action_kind_has_a_dialog_in_the_operators_words() {
    use ward::actions::{ActionKind, MuttScope};
    use ward::model::mutt::MuttDlqName;
    let reason = || "incident 42".to_owned();
    let q = QueueName::delivery;
    let examples = vec![
        Action::Replay {
            queue: q(),
            from: FailedSet::Dlq,
            scope: Scope::Filter(ward::store::DlqFilter::default()),
            reset_attempts: true,
        },
        Action::Purge {
            queue: q(),
            set: FailedSet::Dlq,
            scope: Scope::Filter(ward::store::DlqFilter::default()),
        },
        Action::MoveToDead {
            queue: q(),
            scope: Scope::Filter(ward::store::DlqFilter::default()),
        },
        Action::Shedding {
            mode: ShedMode::Dlq,
            reason: reason(),
            expires_at_ms: Some(NOW + 3_600_000),
        },
        Action::SetThreshold {
            queue: q(),
            threshold: ward::model::Threshold::Shed,
            value: Some(10),
            reason: reason(),
        },
        Action::BreakerForceOpen {
            backend: "slack".into(),
            until_ms: NOW + 900_000,
            reason: reason(),
        },
        Action::BreakerDisable {
            backend: "slack".into(),
            reason: reason(),
        },
        Action::BreakerReset {
            backend: "slack".into(),
            reason: reason(),
        },
        Action::EmergencyStop {
            backend: None,
            on: true,
            reason: reason(),
            expires_at_ms: Some(NOW + 3_600_000),
        },
        Action::SetConfig {
            key: "k".into(),
            value: Some("v".into()),
            reason: reason(),
        },
        Action::SendTestAlert {
            channel: None,
            tenant: "acme".into(),
            summary: "test".into(),
        },
        Action::EndExpired {
            flag: "shedding_mode".into(),
            expected: FlagState {
                value: "dlq".into(),
                owner: "ops".into(),
                reason: "old".into(),
                set_at_ms: NOW - 10,
                expires_at_ms: Some(NOW - 1),
            },
        },
        Action::MuttReplay {
            dlq: MuttDlqName::Moog,
            scope: MuttScope::Oldest(5),
        },
        Action::MuttMoveToDead {
            dlq: MuttDlqName::Alerter,
            scope: MuttScope::Oldest(5),
        },
        Action::MuttPurge {
            dlq: MuttDlqName::Dead,
            scope: MuttScope::Oldest(5),
        },
        Action::MuttSetConfig {
            key: "alerter_shed_mode".into(),
            value: Some("defer".into()),
            reason: reason(),
        },
        Action::MuttBreaker {
            name: "moogsoft".into(),
            open_until_ms: Some(NOW + 900_000),
            reason: reason(),
        },
        Action::MuttRequeueOrphan {
            list: "mutt:processing:moog:pod-1".into(),
        },
        Action::SilenceCreate {
            matchers: vec![ward::model::LabelMatcher::new(
                "alertname",
                ward::model::MatchOp::Equal,
                "DiskFull",
            )],
            starts_at_ms: NOW,
            ends_at_ms: NOW + 7_200_000,
            comment: "disk swap, OPS-12".into(),
            replaces: None,
        },
        Action::SilenceExpire {
            id: "01silence".into(),
        },
    ];
    let kinds: std::collections::BTreeSet<ActionKind> = examples.iter().map(Action::kind).collect();
    assert_eq!(kinds.len(), ActionKind::ALL.len(), "one example per kind");
    for action in examples {
        let kind = action.kind();
        let mut app = app();
        app.propose(action.clone(), ward::actions::Origin::Key);
        let count = if action.is_bulk() { 5 } else { 1 };
        app.job(
            dialog(&app),
            JobEvent::Planned(Ok(plan_for(action.clone(), count))),
        );
        let screen = screen(&app, 200, 50);
        assert!(
            screen.contains(&format!("┌ {} ", kind.title())),
            "{kind:?}: {screen}"
        );
        if action.is_bulk() {
            assert!(screen.contains("count 5 · batch"), "{kind:?}: {screen}");
        } else {
            assert!(!screen.contains("batch"), "{kind:?}: {screen}");
            assert!(screen.contains("one change, applied at once"), "{kind:?}");
        }
        assert!(screen.contains("enter confirms"), "{kind:?}: {screen}");
        snapshot(
            &format!("dialog_{}_200x50", kind.as_str()),
            &dialog_box(&screen, kind.title()),
        );
    }
    // A single change that ran says it was applied.
    let mut app = app();
    let stop = Action::BreakerReset {
        backend: "slack".into(),
        reason: reason(),
    };
    app.propose(stop.clone(), ward::actions::Origin::Key);
    app.job(dialog(&app), JobEvent::Planned(Ok(plan_for(stop, 1))));
    let ticket = dialog(&app);
    app.key(key(KeyCode::Enter));
    app.job(
        ticket,
        JobEvent::Finished(Ok(Report {
            plan_id: "01PLAN".to_owned(),
            outcome: Outcome::Completed,
            moved: 1,
            poisoned: 0,
            vanished: 0,
            batches: 0,
            remaining: None,
            duration_ms: 3,
            audit_id: Some("1-0".to_owned()),
            test: None,
            silence_id: None,
        })),
    );
    let screen = screen(&app, 200, 50);
    assert!(screen.contains("completed · applied"), "{screen}");
    assert!(!screen.contains("moved 1"), "{screen}");
}

#[test]
fn a_replay_asks_for_a_reason_and_the_run_carries_it_to_the_audit() {
    let mut app = app();
    app.key(ch('3'));
    let effects = app.key(ch('r'));
    let [Effect::Plan { action, .. }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    app.job(
        dialog(&app),
        JobEvent::Planned(Ok(plan_for(action.clone(), 5))),
    );
    assert!(
        screen(&app, 200, 50).contains("reason (optional, kept in the audit) >"),
        "{}",
        screen(&app, 200, 50)
    );
    for c in "vendor fixed it".chars() {
        app.key(ch(c));
    }
    let effects = app.key(key(KeyCode::Enter));
    let [Effect::Execute { plan, .. }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(plan.run_reason.as_deref(), Some("vendor fixed it"));
    assert_eq!(plan.reason(), Some("vendor fixed it"));
}

#[test]
fn long_samples_and_warnings_never_push_the_confirm_hint_out() {
    let long = "upstream said: ".to_owned() + &"connection reset by peer ".repeat(30);
    let action = Action::Replay {
        queue: QueueName::delivery(),
        from: FailedSet::Dlq,
        scope: Scope::Filter(ward::store::DlqFilter::default()),
        reset_attempts: true,
    };
    let mut plan = plan_for(action.clone(), 40);
    plan.sample = (0..40)
        .map(|i| SampleRow {
            id: format!("01TESTENTRY{i:015}"),
            tenant: "team-a".to_owned(),
            error_class: "http_500".to_owned(),
            error_message: long.clone(),
            last_failure_ms: NOW - 30_000,
        })
        .collect();
    plan.warnings = vec![long.clone(), long];
    for (width, height) in [(200, 50), (80, 24), (60, 16)] {
        let mut app = app();
        app.propose(action.clone(), ward::actions::Origin::Key);
        app.job(dialog(&app), JobEvent::Planned(Ok(plan.clone())));
        let screen = screen(&app, width, height);
        let dialog = dialog_box(&screen, "Replay");
        assert!(
            dialog.contains("enter confirms"),
            "{width}x{height}: {dialog}"
        );
        assert!(
            dialog.contains("reason (optional"),
            "{width}x{height}: {dialog}"
        );
        assert!(
            dialog.contains("more sample rows"),
            "{width}x{height}: {dialog}"
        );
        for line in dialog.lines() {
            let inner: Vec<char> = line.chars().collect();
            assert!(
                matches!(inner.last(), Some('│' | '┐' | '┘')),
                "{width}x{height}: a line runs over the border: {line}"
            );
        }
    }
}

#[test]
fn a_test_alert_shows_how_its_delivery_ended() {
    let mut app = app();
    app.key(ch('t'));
    assert!(
        matches!(app.ui.overlay, Some(Overlay::Picker(_))),
        "{:?}",
        app.ui.overlay
    );
    let effects = app.key(key(KeyCode::Enter));
    let [Effect::Plan { action, .. }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    let ticket = dialog(&app);
    app.job(ticket, JobEvent::Planned(Ok(plan_for(action.clone(), 1))));
    app.key(key(KeyCode::Enter));
    assert!(
        screen(&app, 200, 50).contains("waiting for the worker to report"),
        "{}",
        screen(&app, 200, 50)
    );
    app.job(
        ticket,
        JobEvent::Finished(Ok(Report {
            plan_id: "01PLAN".to_owned(),
            outcome: Outcome::Completed,
            moved: 1,
            poisoned: 0,
            vanished: 0,
            batches: 0,
            remaining: None,
            duration_ms: 412,
            audit_id: Some("1-0".to_owned()),
            test: Some(ward::model::TestDelivery {
                status: ward::model::TestStatus::Failed,
                channel: "slack-ops".to_owned(),
                error: Some("http_500: slack answered 500 rollup_error".to_owned()),
                took_ms: 380,
                at_ms: NOW,
            }),
            silence_id: None,
        })),
    );
    let screen = screen(&app, 200, 50);
    assert!(
        screen.contains("completed · test alert failed on slack-ops: http_500: slack answered 500"),
        "{screen}"
    );
    assert!(!screen.contains("applied"), "{screen}");
    assert!(
        app.ui
            .toasts
            .iter()
            .any(|t| t.error && t.text.starts_with("test alert failed on slack-ops")),
        "{:?}",
        app.ui.toasts
    );
}

#[test]
fn narrow_screens_cut_nothing_silently_and_keep_every_tab() {
    // 80×24: whole names where a cut one could pass for another, and the header's badges.
    let mut first = app();
    let overview = screen(&first, 80, 24);
    for name in ["delivery-success", "delivery-latency", "ingest-success"] {
        assert!(overview.contains(name), "{name} cut:\n{overview}");
    }
    assert!(overview.contains("1 overrides"), "{overview}");
    first.show(View::Breakers);
    let breakers = screen(&first, 80, 24);
    assert!(breakers.contains("slack-ops"), "{breakers}");
    assert!(breakers.contains("half-open"), "{breakers}");
    for view in View::ALL {
        let mut app = app();
        app.show(view);
        for line in screen(&app, 80, 24).lines() {
            // A cut shows as `…`; a word never simply stops at a border.
            assert!(!line.contains("delivery-su│"), "{line}");
        }
    }
    // 60×16: every view keeps its tab, abbreviated.
    for view in View::ALL {
        let mut app = app();
        app.show(view);
        let screen = screen(&app, 60, 16);
        let tabs = screen.lines().nth(1).unwrap();
        for n in 1..=View::ALL.len() {
            assert!(tabs.contains(&format!(" {n}")), "tab {n} missing: {tabs}");
        }
    }
}

#[test]
fn the_light_theme_paints_every_cell_and_dialogs_too() {
    let theme = Theme::load("light", &[]).unwrap();
    let mut app = app();
    let ticket_action = Action::BreakerReset {
        backend: "slack".into(),
        reason: "x".into(),
    };
    for with_dialog in [false, true] {
        if with_dialog {
            app.propose(ticket_action.clone(), ward::actions::Origin::Key);
            app.job(
                dialog(&app),
                JobEvent::Planned(Ok(plan_for(ticket_action.clone(), 1))),
            );
        }
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        terminal
            .draw(|frame| ward::ui::views::draw(app.scene(), &theme, frame))
            .unwrap();
        let buffer = terminal.backend().buffer();
        let bare: Vec<(u16, u16)> = buffer
            .content()
            .iter()
            .enumerate()
            .filter(|(_, cell)| cell.bg == ratatui::style::Color::Reset)
            .map(|(i, _)| buffer.pos_of(i))
            .collect();
        assert!(
            bare.is_empty(),
            "unpainted cells (dialog {with_dialog}): {bare:?}"
        );
    }
}

#[test]
fn an_empty_recent_actions_box_yields_its_space() {
    let mut snapshot = fixture();
    let full = screen(&app_with(snapshot.clone(), Mode::default()), 80, 40);
    snapshot.store.as_mut().unwrap().audit.clear();
    let empty = screen(&app_with(snapshot, Mode::default()), 80, 40);
    let rows_of = |screen: &str, title: &str| {
        let lines: Vec<&str> = screen.lines().collect();
        let top = lines.iter().position(|l| l.contains(title)).unwrap();
        lines[top + 1..]
            .iter()
            .position(|l| l.contains('└'))
            .unwrap()
    };
    assert!(empty.contains("Recent actions · none yet"), "{empty}");
    assert_eq!(rows_of(&empty, "Recent actions"), 1, "{empty}");
    assert!(
        rows_of(&empty, "┌ Rates") > rows_of(&full, "┌ Rates"),
        "the panels above grow:\n{empty}"
    );
}

#[test]
fn an_slo_in_trouble_names_the_next_step_and_the_data_behind_it() {
    let mut app = app();
    app.show(View::Slo);
    app.key(key(KeyCode::Down));
    let screen = screen(&app, 200, 50);
    assert!(
        screen.contains("next: page: fast burn, act now: look at breaker slack-ops (4)"),
        "{screen}"
    );
    assert!(screen.contains("-1900.0% (3m)"), "{screen}");
    assert!(screen.contains("20.00 (3m of 1h)"), "{screen}");
    assert!(
        !screen.contains("-1900.0%  "),
        "a budget without its data: {screen}"
    );
}

#[test]
fn the_shedding_badge_says_whether_anything_is_shed_now() {
    let shedding = screen(&app(), 200, 50);
    assert!(shedding.contains("SHEDDING dlq now: ingest"), "{shedding}");
    let mut calm = fixture();
    for q in &mut calm.store.as_mut().unwrap().queues {
        q.over_shed = false;
    }
    let calm = screen(&app_with(calm, Mode::default()), 200, 50);
    assert!(calm.contains("SHED dlq armed · none over"), "{calm}");
    assert!(!calm.contains("SHEDDING"), "{calm}");
}

/// The fixture with the browser grouping: the store's counts of the whole filtered set (far more
/// than the page's six entries), complete or still being counted.
fn grouped_fixture(complete: bool) -> Snapshot {
    let mut snapshot = fixture();
    let page = snapshot.dlq_page.as_mut().unwrap();
    page.query.grouped = true;
    let bucket = |minutes_ago: i64| {
        let t = NOW - minutes_ago * 60_000;
        t - t % ward::store::GROUP_BUCKET_MS
    };
    let group = |class: &str, bucket_ms, count| ward::store::DlqGroup {
        error_class: class.to_owned(),
        bucket_ms,
        count,
    };
    page.groups = Some(ward::sources::DlqGroupsView {
        bucket_ms: ward::store::GROUP_BUCKET_MS,
        groups: vec![
            group("http_500", bucket(25), 1_200),
            group("http_500", bucket(5), 340),
            group("timeout", bucket(5), 57),
        ],
        examined: if complete { 1_597 } else { 600 },
        complete,
        started_ms: NOW - 9_000,
        finished_ms: complete.then_some(NOW - 3_000),
        error: None,
    });
    snapshot
}

/// The poller's answer to what the browser asks now: the fixture's page (or `entries`) read for
/// the browser's query.
fn read_back(app: &mut App, entries: Option<Vec<DlqEntry>>) {
    let mut snapshot = (*app.snapshot).clone();
    let page = snapshot.dlq_page.as_mut().unwrap();
    page.query = app.ui.dlq.query();
    if let Some(entries) = entries {
        page.entries = entries;
    }
    app.on_snapshot(Arc::new(snapshot));
}

/// An ingest entry (the payload is the alert itself) that routing dead-lettered.
fn ingest_entry(n: usize) -> DlqEntry {
    let mut entry = dlq_entry(n, "team-c", "validation", "alert has no tenant label");
    let alert = serde_json::json!({
        "labels": {"alertname": ALERTS[n % 3].0, "job": "node"},
        "severity": ALERTS[n % 3].1,
    });
    entry.meta.queue = QueueName::ingest();
    "route".clone_into(&mut entry.meta.stage);
    entry.meta.channel = String::new();
    entry.meta.attempts = 1;
    if let Ok(envelope) = entry.envelope.as_mut() {
        envelope.payload = ward::model::Payload::from_value(&alert);
        envelope.history.clear();
    }
    entry
}

/// Type `text` into the open input line and press Enter.
fn type_line(app: &mut App, text: &str) -> Vec<Effect> {
    for c in text.chars() {
        app.key(ch(c));
    }
    app.key(key(KeyCode::Enter))
}

fn browsed(effects: &[Effect]) -> ward::sources::DlqQuery {
    match effects {
        [Effect::Browse(Some(query))] => query.clone(),
        other => panic!("expected one browse, got {other:?}"),
    }
}

/// Every view the DLQ browser changed, at 80×24 and 200×50: the list with its alertname and
/// severity columns (newest first), the dead list of another queue, the grouping of the whole
/// set (counted, and still counting), the inspector, and the help with the browser's keys.
#[test]
fn the_dlq_browser_views_at_80x24_and_200x50() {
    for (w, h) in [(80u16, 24u16), (200, 50)] {
        let mut list = app();
        list.key(ch('3'));
        snapshot(&format!("dlq_list_{w}x{h}"), &screen(&list, w, h));

        let mut dead = app();
        dead.key(ch('3'));
        dead.command_line("dlq ingest dead");
        read_back(&mut dead, Some((0..3).rev().map(ingest_entry).collect()));
        snapshot(&format!("dlq_dead_ingest_{w}x{h}"), &screen(&dead, w, h));

        for (name, complete) in [("grouped", true), ("grouping", false)] {
            let mut grouped = app_with(grouped_fixture(complete), Mode::default());
            grouped.key(ch('3'));
            grouped.key(ch('v'));
            snapshot(&format!("dlq_{name}_{w}x{h}"), &screen(&grouped, w, h));
        }

        let mut inspector = app();
        inspector.key(ch('3'));
        inspector.key(key(KeyCode::Enter));
        snapshot(&format!("dlq_inspector_{w}x{h}"), &screen(&inspector, w, h));

        let mut help = app();
        help.key(ch('3'));
        help.key(ch('?'));
        for _ in 0..12 {
            help.key(ch('j'));
        }
        snapshot(&format!("dlq_help_{w}x{h}"), &screen(&help, w, h));
    }
}

#[test]
fn the_list_shows_each_entrys_alertname_and_severity() {
    let mut app = app();
    app.key(ch('3'));
    for (w, h) in [(80u16, 24u16), (200, 50)] {
        let screen = screen(&app, w, h);
        let row = screen
            .lines()
            .find(|l| l.contains("14:01:05"))
            .unwrap_or_else(|| panic!("{screen}"));
        // Entry 5: CheckoutLatency, major (ALERTS[5 % 3]).
        assert!(row.contains("CheckoutLatency"), "{row}");
        assert!(row.contains("major"), "{row}");
        assert!(
            screen.contains("alertname") && screen.contains("severity"),
            "{screen}"
        );
    }
}

/// `/` words go to the store, which searches the whole set (labels, annotations, errors), and
/// the title says so; the scope of an action is that same search.
#[test]
fn slash_words_are_a_store_side_search_and_the_title_says_so() {
    let mut app = app();
    app.key(ch('3'));
    app.key(ch('/'));
    let query = browsed(&type_line(&mut app, "error=http_500 Checkout eu-west"));
    assert_eq!(query.filter.error_class.as_deref(), Some("http_500"));
    assert_eq!(query.filter.text.as_deref(), Some("Checkout eu-west"));
    assert!(
        screen(&app, 200, 50).contains("(words searched by the store over the whole set)"),
        "{}",
        screen(&app, 200, 50)
    );
    let effects = app.key(ch('r'));
    let [Effect::Plan { action, .. }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert!(
        matches!(action.dlq_scope(), Some((.., Scope::Filter(f))) if f == &query.filter),
        "{action:?}"
    );
    // Until the store answers, the last page (of another filter) is not shown under this one.
    assert!(app.scene().visible_entries().is_empty());
    assert!(screen(&app, 200, 50).contains("reading…"));
    // The page the store sends back is shown as it is: no second filtering on the client.
    read_back(&mut app, None);
    assert_eq!(app.scene().visible_entries().len(), 6);
}

#[test]
fn since_and_until_bound_the_failure_time_in_the_filter_line() {
    let mut app = app();
    app.key(ch('3'));
    app.key(ch('/'));
    let query = browsed(&type_line(&mut app, "since=1h until=2026-11-30T14:00:00Z"));
    assert_eq!(query.filter.failed_at_or_after_ms, Some(NOW - 3_600_000));
    assert_eq!(query.filter.failed_before_ms, Some(NOW - 120_000));
    assert!(screen(&app, 200, 50).contains("filter: since=1h until=2026-11-30T14:00:00Z"));
    app.key(ch('/'));
    for _ in 0..60 {
        app.key(key(KeyCode::Backspace));
    }
    assert!(type_line(&mut app, "since=yesterday").is_empty());
    assert!(
        app.ui
            .toasts
            .iter()
            .any(|t| t.error && t.text.contains("since=yesterday")),
        "{:?}",
        app.ui.toasts
    );
}

/// `O` cycles the order: newest first (the store scans backwards), oldest first, then most
/// attempts within the page, which the title says.
#[test]
fn the_sort_key_cycles_newest_oldest_and_attempts() {
    let mut app = app();
    app.key(ch('3'));
    assert!(
        app.ui.dlq.query().cursor.newest_first,
        "newest first by default"
    );
    let oldest = browsed(&app.key(ch('O')));
    assert!(!oldest.cursor.newest_first);
    assert!(screen(&app, 200, 50).contains("oldest first"));
    let attempts = browsed(&app.key(ch('O')));
    assert!(
        attempts.cursor.newest_first,
        "attempts order a newest-first page"
    );
    let tries: Vec<u32> = app
        .scene()
        .visible_entries()
        .iter()
        .map(|e| e.meta.attempts)
        .collect();
    assert!(tries.windows(2).all(|w| w[0] >= w[1]), "{tries:?}");
    assert_ne!(tries[0], tries[5]);
    assert!(screen(&app, 200, 50).contains("most attempts first within this page"));
    assert!(browsed(&app.key(ch('O'))).cursor.newest_first);
}

/// Every DLQ and dead list is browsable: `Q` moves to the next queue's, `w` to its dead list,
/// and `:dlq QUEUE [dead]` names one.
#[test]
fn every_queues_dlq_and_dead_list_is_browsable_by_key_and_command() {
    let mut app = app();
    app.key(ch('3'));
    let next = browsed(&app.key(ch('Q')));
    assert_eq!((next.queue.as_str(), next.set), ("ingest", FailedSet::Dlq));
    assert!(screen(&app, 200, 50).contains("DLQ of ingest"));
    let dead = browsed(&app.key(ch('w')));
    assert_eq!((dead.queue.as_str(), dead.set), ("ingest", FailedSet::Dead));
    assert!(screen(&app, 200, 50).contains("dead list of ingest"));
    let back = browsed(&app.key(ch('Q')));
    assert_eq!(
        (back.queue.as_str(), back.set),
        ("delivery", FailedSet::Dead)
    );

    let mut app = self::app();
    let named = browsed(&app.command_line("dlq ingest"));
    assert_eq!(app.ui.view, View::Dlq);
    assert_eq!(
        (named.queue.as_str(), named.set),
        ("ingest", FailedSet::Dlq)
    );
    let dead = browsed(&app.command_line("dlq dead"));
    assert_eq!((dead.queue.as_str(), dead.set), ("ingest", FailedSet::Dead));
    assert!(app.command_line("dlq Bad!").is_empty());
    assert!(app.ui.toasts.iter().any(|t| t.error), "{:?}", app.ui.toasts);
    // A replay from here takes the list browsed.
    let effects = app.key(ch('r'));
    let [Effect::Plan { action, .. }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert!(
        matches!(action, Action::Replay { queue, from: FailedSet::Dead, .. } if queue.as_str() == "ingest"),
        "{action:?}"
    );
}

/// Grouping asks the store for the whole filtered set's counts; Enter on a group filters to its
/// error class and time bucket and lists those entries.
#[test]
fn enter_on_a_group_filters_to_its_class_and_time_bucket() {
    let mut app = app_with(grouped_fixture(true), Mode::default());
    app.key(ch('3'));
    let grouped = browsed(&app.key(ch('v')));
    assert!(grouped.grouped);
    assert!(app.scene().grouping());
    let screen = screen(&app, 200, 50);
    assert!(
        screen.contains("1200") || screen.contains("1.2k"),
        "{screen}"
    );
    assert!(
        screen.contains("whole filtered set: 1597 entries in 3 groups"),
        "{screen}"
    );
    app.key(ch('j'));
    let query = browsed(&app.key(key(KeyCode::Enter)));
    let t = NOW - 5 * 60_000;
    let bucket = t - t % ward::store::GROUP_BUCKET_MS;
    assert!(!query.grouped && !app.ui.dlq.grouped);
    assert_eq!(query.filter.error_class.as_deref(), Some("http_500"));
    assert_eq!(query.filter.failed_at_or_after_ms, Some(bucket));
    assert_eq!(
        query.filter.failed_before_ms,
        Some(bucket + ward::store::GROUP_BUCKET_MS)
    );
    assert_eq!(
        app.ui.dlq.filter_text,
        "error=http_500 since=2026-11-30T13:50:00.000Z until=2026-11-30T14:00:00.000Z"
    );
}

#[test]
fn partial_counts_say_they_cover_only_what_was_examined() {
    let mut app = app_with(grouped_fixture(false), Mode::default());
    app.key(ch('3'));
    app.key(ch('v'));
    let screen = screen(&app, 200, 50);
    assert!(
        screen.contains(
            "counting the whole filtered set: 600 entries examined so far, counts cover only those"
        ),
        "{screen}"
    );
}

/// The inspector at the narrowest layout: human times, the attempt history, and the whole
/// error, wrapped (never cut with `…`).
#[test]
fn the_inspector_wraps_the_error_and_shows_times_and_attempts_at_a_narrow_width() {
    let long = "gave up after 6 attempts (default): slack answered 500 Internal Server Error \
                with body {\"ok\":false,\"error\":\"rollup_error\",\"detail\":\"upstream \
                connect error or disconnect/reset before headers\"} trace-id \
                0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef-end";
    let mut snapshot = fixture();
    let page = snapshot.dlq_page.as_mut().unwrap();
    page.entries = vec![dlq_entry(3, "team-a", "http_500", long)];
    let mut app = app_with(snapshot, Mode::default());
    app.key(ch('3'));
    app.key(key(KeyCode::Enter));
    let (w, h) = (60u16, 70u16);
    let screen = screen(&app, w, h);
    let inner: Vec<String> = screen
        .lines()
        .filter_map(|l| {
            let l = l.trim_matches('"');
            let chars: Vec<char> = l.chars().collect();
            // The inspector's box: `│  │…│  │`, its text between the inner borders.
            (chars.len() == usize::from(w) && chars[3] == '│' && chars[chars.len() - 4] == '│')
                .then(|| chars[4..chars.len() - 4].iter().collect())
        })
        .collect();
    assert!(inner.len() > 20, "{screen}");
    let joined: String = inner
        .concat()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let wanted: String = long.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(joined.contains(&wanted), "the error is cut:\n{screen}");
    assert!(!inner.iter().any(|l| l.contains('…')), "{screen}");
    let text = inner.join("\n");
    for needle in [
        "2026-11-30T14:01:03.000Z (57s ago)",
        "#1",
        "no answer within 10s",
        "#2",
        "http_503",
        "\"token\": \"***\"",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{screen}");
    }
    assert!(!text.contains("s3cret"), "{screen}");
}

/// Keys through the real poller on a store: `Q` opens the ingest DLQ, `w` its dead list, `/`
/// searches label values in the store; each screen shows what that list holds.
#[tokio::test]
async fn keys_browse_the_ingest_dlq_and_dead_list_through_the_poller() {
    use ward::model::{FailureInfo, WorkerId};
    use ward::store::{DeadLetterRequest, DlqScope, MemoryStore, Store};
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(1));
    let ingest = QueueName::ingest();
    let alert = |name: &str, zone: &str| {
        Envelope::new(
            "acme",
            serde_json::json!({"labels": {"alertname": name, "zone": zone}, "severity": "critical"}),
            store.now_ms(),
        )
    };
    let batch = vec![
        alert("NodeDown", "eu-1"),
        alert("DiskFull", "us-2"),
        alert("Buried", "eu-1"),
    ];
    store.enqueue(&ingest, &batch).await.unwrap();
    let lease = store
        .lease(
            &ingest,
            &WorkerId::new("router"),
            3,
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let requests: Vec<_> = lease
        .items
        .into_iter()
        .map(|item| DeadLetterRequest {
            receipt: item.receipt,
            envelope: item.envelope,
            failure: FailureInfo::new("validation", "no tenant label", "route"),
        })
        .collect();
    store.dead_letter(&ingest, &requests).await.unwrap();
    let buried = vec![batch[2].id.clone()];
    store
        .bury(&ingest, &DlqScope::Ids(buried), 10)
        .await
        .unwrap();

    let config = ward::sources::PollerConfig {
        queues: vec![QueueName::ingest(), QueueName::delivery()],
        breaker: ward::engine::breaker::BreakerConfig::default(),
        interval: Duration::from_secs(60),
        timeout: Duration::from_secs(5),
        stale_after: 3,
        audit_rows: 10,
        heartbeat_interval: Duration::from_secs(1),
        rules: ward::engine::suppress::Rules::default(),
        target: ward::sources::Target::default(),
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let handle = ward::sources::spawn(store, config, stop.clone());
    let mut snapshots = handle.subscribe();
    let mut app = app_with((*handle.latest()).clone(), Mode::default());
    // Carry out the browser's effects, then take snapshots until its page is there.
    let mut press = async |app: &mut App, key: KeyEvent| {
        for effect in app.key(key) {
            if let Effect::Browse(query) = effect {
                handle.browse(query);
            }
        }
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                app.on_snapshot(snapshots.borrow_and_update().clone());
                if app.scene().dlq_page().is_some() {
                    return;
                }
                snapshots.changed().await.unwrap();
            }
        })
        .await
        .expect("the poller reads the page the browser asks for");
        screen(app, 200, 50)
    };
    press(&mut app, ch('3')).await;
    let screen = press(&mut app, ch('Q')).await;
    assert!(screen.contains("DLQ of ingest"), "{screen}");
    assert!(
        screen.contains("NodeDown") && screen.contains("DiskFull"),
        "{screen}"
    );
    assert!(!screen.contains("Buried"), "{screen}");
    let screen = press(&mut app, ch('w')).await;
    assert!(screen.contains("dead list of ingest"), "{screen}");
    assert!(
        screen.contains("Buried") && !screen.contains("NodeDown"),
        "{screen}"
    );
    app.key(ch('w'));
    app.key(ch('/'));
    for c in "US-2".chars() {
        app.key(ch(c));
    }
    let screen = press(&mut app, key(KeyCode::Enter)).await;
    assert!(
        screen.contains("DiskFull") && !screen.contains("NodeDown"),
        "{screen}"
    );
    stop.cancel();
}

/// The proposal a key or line just made.
fn proposed(effects: &[Effect]) -> Action {
    match effects {
        [Effect::Plan { action, .. }] => action.clone(),
        other => panic!("expected one plan, got {other:?}"),
    }
}

fn open_editor(app: &App) -> &ward::ui::silences::SilenceEditor {
    match &app.ui.overlay {
        Some(Overlay::Silence(editor)) => editor,
        other => panic!("no silence editor: {other:?}"),
    }
}

#[test]
fn the_expire_key_proposes_expiring_the_selected_silence() {
    let mut app = app();
    app.key(ch('8'));
    assert_eq!(app.ui.view, View::Silences);
    app.key(key(KeyCode::Down));
    let action = proposed(&app.key(ch('X')));
    assert_eq!(
        action,
        Action::SilenceExpire {
            id: "01jdw9e2c4f6h8j0k2m4n6p8q0".to_owned()
        },
        "the pending silence, second in the list"
    );
    app.key(key(KeyCode::Esc));
    // An expired silence has nothing left to end.
    app.key(ch('G'));
    assert!(app.key(ch('X')).is_empty());
    assert!(
        app.ui
            .toasts
            .back()
            .is_some_and(|t| t.text.contains("already expired")),
        "{:?}",
        app.ui.toasts
    );
    // `:expire` does the same, and `:expire ID` names one anywhere.
    app.key(ch('g'));
    let action = proposed(&app.command_line("expire"));
    assert!(
        matches!(&action, Action::SilenceExpire { id } if id == "01jdw7q3kx5m2n8p4r6t9v1b3c"),
        "{action:?}"
    );
    // The help of the Silences view lists its keys and the commands.
    let mut help = self::app();
    help.key(ch('8'));
    help.key(ch('?'));
    let text = screen(&help, 200, 80);
    for line in [
        "X  expire-silence",
        "S  silence",
        "8  view-silences",
        "9  view-alerts",
        ":silence [MATCHERS]",
        ":expire [ID]",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    let mut app = self::app();
    let action = proposed(&app.command_line("expire 01jdv1a3b5d7f9g1h3j5k7m9n1"));
    assert!(matches!(&action, Action::SilenceExpire { id } if id == "01jdv1a3b5d7f9g1h3j5k7m9n1"));
}

#[test]
fn s_on_a_dlq_entry_opens_the_editor_and_submits_a_silence_for_two_hours() {
    let mut app = app();
    app.key(ch('3'));
    app.key(key(KeyCode::Down));
    assert_eq!(
        app.scene().selected_entry().unwrap().glance().alertname,
        "DiskFull"
    );
    app.key(ch('S'));
    let shown = open_editor(&app);
    assert_eq!(
        shown.matchers,
        "{alertname=\"DiskFull\", service=\"checkout\"}"
    );
    assert_eq!(shown.duration, "2h");
    assert_eq!(shown.focus, ward::ui::silences::Field::Comment);
    snapshot("silence_editor_80x24", &screen(&app, 80, 24));
    // Enter without a comment: the editor stays, and says why under the line.
    assert!(app.key(key(KeyCode::Enter)).is_empty());
    assert!(
        open_editor(&app)
            .error
            .as_deref()
            .is_some_and(|e| e.contains("say why"))
    );
    let effects = type_line(&mut app, "disk swap on db-1, OPS-12");
    let Action::SilenceCreate {
        matchers,
        starts_at_ms,
        ends_at_ms,
        comment,
        replaces,
    } = proposed(&effects)
    else {
        panic!("{effects:?}")
    };
    assert_eq!(
        matchers,
        parse_matchers("alertname=\"DiskFull\" service=\"checkout\"").unwrap()
    );
    assert_eq!((starts_at_ms, ends_at_ms), (NOW, NOW + 2 * 3_600_000));
    assert_eq!(comment, "disk swap on db-1, OPS-12");
    assert_eq!(replaces, None);
    // The confirm dialog shows the plan's preview and asks for the comment.
    let action = confirm_action(&app);
    app.job(dialog(&app), JobEvent::Planned(Ok(plan_for(action, 1))));
    let dialog = dialog_box(&screen(&app, 200, 50), "Silence");
    assert!(dialog.contains("would have hidden 3 alerts"), "{dialog}");
    assert!(
        dialog.contains("comment > disk swap on db-1, OPS-12"),
        "{dialog}"
    );
}

#[test]
fn the_editor_checks_what_is_typed_and_moves_between_lines() {
    let mut app = app();
    app.key(ch(':'));
    type_line(&mut app, "silence alertname=DiskFull instance=~\"db-(\"");
    let text = screen(&app, 200, 50);
    assert!(text.contains("┌ New silence"), "{text}");
    assert!(text.contains("the regex does not compile"), "{text}");
    assert_eq!(open_editor(&app).focus, ward::ui::silences::Field::Matchers);
    app.key(key(KeyCode::Backspace));
    app.key(key(KeyCode::Backspace));
    type_line(&mut app, "1\"");
    // Enter on a comment-less silence: the comment line is focused and says why.
    assert_eq!(open_editor(&app).focus, ward::ui::silences::Field::Comment);
    let text = screen(&app, 200, 50);
    assert!(
        text.contains("2 matchers · match 1 of the 3 alerts firing now"),
        "{text}"
    );
    app.key(key(KeyCode::BackTab));
    for _ in 0..2 {
        app.key(key(KeyCode::Backspace));
    }
    app.key(ch('x'));
    let text = screen(&app, 200, 50);
    assert!(text.contains("\"x\" is not a duration"), "{text}");
    app.key(key(KeyCode::Backspace));
    for c in "30m".chars() {
        app.key(ch(c));
    }
    app.key(key(KeyCode::Tab));
    let action = proposed(&type_line(&mut app, "db-2 disk"));
    assert!(
        matches!(action, Action::SilenceCreate { ends_at_ms, .. } if ends_at_ms == NOW + 30 * 60_000)
    );
    // Esc drops the editor without a proposal.
    let mut app = self::app();
    app.key(ch('S'));
    assert!(app.key(key(KeyCode::Esc)).is_empty());
    assert!(app.ui.overlay.is_none());
}

#[test]
fn s_on_an_alert_or_a_silence_prefills_from_it() {
    let mut app = app();
    app.key(ch('9'));
    assert_eq!(app.ui.view, View::Alerts);
    // Firing first: NodeDown, DiskFull db-1 (silenced), DiskFull db-2 (inhibited); then resolved.
    app.key(key(KeyCode::Down));
    assert_eq!(
        app.scene().selected_alert().unwrap().alert.labels["instance"],
        "db-1"
    );
    app.key(ch('S'));
    assert_eq!(
        open_editor(&app).matchers,
        "{alertname=\"DiskFull\", job=\"node\", instance=\"db-1\"}"
    );
    app.key(key(KeyCode::Esc));
    app.key(ch('8'));
    app.key(ch('S'));
    let shown = open_editor(&app);
    assert_eq!(
        shown.replaces.as_deref(),
        Some("01jdw7q3kx5m2n8p4r6t9v1b3c")
    );
    assert_eq!(shown.comment, "disk swap on db-1, OPS-12");
    let action = proposed(&app.key(key(KeyCode::Enter)));
    assert!(
        matches!(&action, Action::SilenceCreate { replaces: Some(id), .. } if id == "01jdw7q3kx5m2n8p4r6t9v1b3c"),
        "{action:?}"
    );
    // From the inspector, and from a group of the page's entries.
    let mut app = self::app();
    app.key(ch('3'));
    app.key(key(KeyCode::Enter));
    assert!(matches!(app.ui.overlay, Some(Overlay::Inspector { .. })));
    app.key(ch('S'));
    assert!(open_editor(&app).matchers.contains("CheckoutLatency"));
    let mut snapshot = grouped_fixture(true);
    let bucket = NOW - 60_000 - (NOW - 60_000) % ward::store::GROUP_BUCKET_MS;
    snapshot
        .dlq_page
        .as_mut()
        .unwrap()
        .groups
        .as_mut()
        .unwrap()
        .groups
        .insert(
            0,
            ward::store::DlqGroup {
                error_class: "http_500".to_owned(),
                bucket_ms: bucket,
                count: 6,
            },
        );
    let mut app = app_with(snapshot, Mode::default());
    app.ui.dlq.grouped = true;
    app.key(ch('3'));
    app.key(ch('S'));
    assert_eq!(
        open_editor(&app).matchers,
        "{alertname=~\"CheckoutLatency|DiskFull|HighErrorRate\", service=\"checkout\"}"
    );
}

#[test]
fn the_alerts_say_what_holds_each_back() {
    let mut app = app();
    app.key(ch('9'));
    let wide = screen(&app, 200, 50);
    assert!(
        wide.contains("3 firing now (1 silenced · 1 inhibited)"),
        "{wide}"
    );
    assert!(
        wide.contains("silenced by 01jdw7q3kx5m2n8p4r6t9v1b3c: disk swap on db-1, OPS-12"),
        "{wide}"
    );
    assert!(wide.contains("inhibited by NodeDown/"), "{wide}");
    assert!(wide.contains("(node-down-mutes-its-warnings)"), "{wide}");
    // The resolved HighErrorRate names the silence that expired on it 4 minutes ago (#1497).
    app.key(ch('G'));
    let wide = screen(&app, 200, 50);
    assert!(
        wide.contains("01jdv1a3b5d7f9g1h3j5k7m9n1 by cy@ops-1 ended 4m ago: vendor outage"),
        "{wide}"
    );
    let mut capped = fixture();
    capped.store.as_mut().unwrap().alerting.alerts_capped = true;
    let mut app = app_with(capped, Mode::default());
    app.key(ch('9'));
    assert!(screen(&app, 200, 50).contains("newest 4 read"));
    // The silences: the flag and time left of the one ending soon, the alerts it matches now.
    let mut app = self::app();
    app.key(ch('8'));
    let wide = screen(&app, 200, 50);
    assert!(wide.contains("1 ends in < 5 m"), "{wide}");
    assert!(wide.contains("3m left <5m"), "{wide}");
    assert!(wide.contains("starts in 10m"), "{wide}");
    assert!(wide.contains("ended 4m ago"), "{wide}");
    assert!(
        wide.contains(
            "2 firing now: DiskFull instance=db-1 job=node, DiskFull instance=db-2 job=node"
        ),
        "{wide}"
    );
    // The Overview and the header say what is held back, at a glance.
    let overview = screen(&self::app(), 80, 24);
    assert!(overview.contains("2 held back"), "{overview}");
    assert!(overview.contains("1 active · 1 ends <5m"), "{overview}");
    let overview = screen(&self::app(), 200, 50);
    assert!(
        overview.contains("3 firing · 1 silenced · 1 inhibited"),
        "{overview}"
    );
}

#[test]
fn hostile_silence_comments_and_alert_labels_render_inert() {
    let hostile = "\u{1b}[31mred\u{1b}]52;c;ZXZpbA==\u{7}\u{202E}gnp";
    let mut snapshot = fixture();
    snapshot.store.as_mut().unwrap().alerting = alerting_with(
        hostile,
        &[
            ("alertname", "DiskFull"),
            ("instance", "db-1"),
            ("job", hostile),
            ("severity", "warning"),
        ],
    );
    let mut frames = Vec::new();
    for (view, with_editor) in [
        (View::Silences, false),
        (View::Alerts, false),
        (View::Alerts, true),
    ] {
        let mut app = app_with(snapshot.clone(), Mode::default());
        app.show(view);
        // The silenced alert (second), whose label carries the escape.
        app.key(key(KeyCode::Down));
        if view == View::Silences {
            app.key(ch('g'));
        }
        if with_editor {
            app.key(ch('S'));
            assert!(
                open_editor(&app).matchers.contains('\u{1b}'),
                "the value is kept"
            );
        }
        for (w, h) in [(80, 24), (200, 50)] {
            frames.push(render(&app, w, h));
        }
    }
    for terminal in &frames {
        for cell in terminal.backend().buffer().content() {
            let symbol = cell.symbol();
            assert!(
                !symbol.chars().any(|c| c.is_control()
                    || ('\u{202A}'..='\u{202E}').contains(&c)
                    || ('\u{2066}'..='\u{2069}').contains(&c)),
                "unsafe character {symbol:?} reached the screen"
            );
        }
    }
    let text = frames[1].backend().to_string();
    assert!(text.contains("?[31mred"), "{text}");
}
