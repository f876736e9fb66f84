//! Alertmanager grouping semantics (DOMAIN.md §9.2, §9.3) through `ward::engine::grouping`: the
//! flush timers, a simulated timeline on tokio's paused clock driven by a tiny flusher loop, and
//! properties of group labels and keys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use tokio::sync::Notify;
use tokio::time::Instant;
use ward::engine::grouping::{
    FlushPlan, GroupState, GroupingConfig, NotifyLog, NotifyReason, group_id, group_key,
    group_labels,
};
use ward::model::{Alert, AlertStatus, Severity, fingerprint};

const S: i64 = 1_000;

fn alert(host: &str, starts_at_ms: i64) -> Alert {
    let labels: BTreeMap<String, String> = [("alertname", "Disk"), ("team", "db"), ("host", host)]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Alert {
        fingerprint: fingerprint(&labels),
        labels,
        annotations: BTreeMap::new(),
        severity: Severity::Major,
        status: AlertStatus::Firing,
        tenant: "acme".to_owned(),
        starts_at_ms,
        ends_at_ms: None,
        generator_url: None,
        correlation_id: host.to_owned(),
        test: false,
    }
}

fn resolve(mut alert: Alert, ends_at_ms: i64) -> Alert {
    alert.status = AlertStatus::Resolved;
    alert.ends_at_ms = Some(ends_at_ms);
    alert
}

fn config(group_wait_s: i64, group_interval_s: i64, repeat_interval_s: i64) -> GroupingConfig {
    GroupingConfig {
        group_by: Some(vec!["alertname".to_owned(), "team".to_owned()]),
        group_wait_ms: (group_wait_s * S) as u64,
        group_interval_ms: (group_interval_s * S) as u64,
        repeat_interval_ms: (repeat_interval_s * S) as u64,
    }
}

// ---- timers -------------------------------------------------------------------------------

#[test]
fn a_new_group_waits_group_wait() {
    let config = config(30, 60, 3_600);
    let now = 1_000 * S;
    let group = GroupState::new("db", "slack", &config, &alert("h1", now - 5 * S), now);
    assert_eq!(group.next_flush_ms, now + 30 * S);
    assert!(!group.due(now + 30 * S - 1));
    assert!(group.due(now + 30 * S));
}

#[test]
fn an_old_alert_flushes_at_once() {
    let config = config(30, 60, 3_600);
    let now = 1_000 * S;
    let old = GroupState::new("db", "slack", &config, &alert("h1", now - 30 * S), now);
    assert_eq!(
        old.next_flush_ms, now,
        "starts_at + group_wait = now: already past"
    );
    assert!(old.due(now));
    let recent = GroupState::new("db", "slack", &config, &alert("h1", now - 30 * S + 1), now);
    assert_eq!(
        recent.next_flush_ms,
        now + 30 * S,
        "one ms younger: a full wait"
    );
}

#[test]
fn a_second_alert_does_not_reset_the_timer() {
    let config = config(30, 60, 3_600);
    let mut group = GroupState::new("db", "slack", &config, &alert("h1", 0), 0);
    group.insert(&alert("h2", 20 * S), 20 * S);
    group.insert(&alert("h3", -3_600 * S), 25 * S);
    assert_eq!(
        group.next_flush_ms,
        30 * S,
        "neither a later nor an old alert moves it"
    );
    assert_eq!(group.alerts.len(), 3);
}

#[test]
fn after_a_flush_the_next_is_group_interval_later() {
    let config = config(30, 60, 3_600);
    let mut group = GroupState::new("db", "slack", &config, &alert("h1", 0), 0);
    let batch = group.begin_flush(30 * S, &config);
    assert_eq!(group.next_flush_ms, 90 * S);
    assert_eq!((batch.flush, batch.taken_at_ms), (1, 30 * S));
    assert!(!group.due(90 * S - 1));
    group.after_success(&batch);
    group.begin_flush(95 * S, &config);
    assert_eq!(
        group.next_flush_ms,
        155 * S,
        "re-armed from the tick that ran, before flushing"
    );
}

#[test]
fn repeat_interval_only_takes_effect_at_ticks() {
    // group_interval 60 s, repeat_interval 200 s: an unchanged group re-sends at the first tick
    // where the log entry is older than 200 s (270 s, then 510 s), not at 230 s.
    let config = config(30, 60, 200);
    let mut group = GroupState::new("db", "slack", &config, &alert("h1", 0), 0);
    let mut entry: Option<NotifyLog> = None;
    let mut sends = Vec::new();
    let mut now = 0;
    while now <= 600 * S {
        if group.due(now) {
            let batch = group.begin_flush(now, &config);
            let plan = batch.plan(
                &BTreeSet::new(),
                entry.as_ref(),
                true,
                config.repeat_interval_ms,
                now,
            );
            if plan.transmit() {
                sends.push((now / S, plan.decision.reason));
            }
            entry = plan.log_entry(now).or(entry);
            group.after_success(&batch);
        }
        now += S;
    }
    assert_eq!(
        sends,
        [
            (30, NotifyReason::FirstNotification),
            (270, NotifyReason::RepeatIntervalElapsed),
            (510, NotifyReason::RepeatIntervalElapsed),
        ]
    );
}

// ---- timeline on tokio's paused clock -----------------------------------------------------

/// What went over the wire at one flush, by host.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sent {
    status: AlertStatus,
    firing: Vec<String>,
    resolved: Vec<String>,
}

impl Sent {
    fn of(plan: &FlushPlan) -> Self {
        let hosts = |status| {
            plan.alerts
                .iter()
                .filter(|a| a.status == status)
                .map(|a| a.labels["host"].clone())
                .collect()
        };
        Self {
            status: plan.status,
            firing: hosts(AlertStatus::Firing),
            resolved: hosts(AlertStatus::Resolved),
        }
    }
}

fn sent(status: AlertStatus, firing: &[&str], resolved: &[&str]) -> Sent {
    let own = |hosts: &[&str]| hosts.iter().map(|h| (*h).to_owned()).collect();
    Sent {
        status,
        firing: own(firing),
        resolved: own(resolved),
    }
}

/// One flush as the flusher saw it: when (s), the dedup verdict, what was transmitted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tick {
    at_s: i64,
    reason: NotifyReason,
    transmitted: Option<Sent>,
}

/// The store: one route, one channel, one group key (all alerts share alertname and team).
#[derive(Debug, Default)]
struct World {
    group: Option<GroupState>,
    log: Option<NotifyLog>,
    ticks: Vec<Tick>,
    destroyed_at_s: Option<i64>,
}

struct Sim {
    world: Mutex<World>,
    /// Wakes the flusher when a group is opened (inserts never move the timer).
    opened: Notify,
    start: Instant,
    config: GroupingConfig,
    send_resolved: bool,
}

impl Sim {
    fn now_ms(&self) -> i64 {
        (Instant::now() - self.start).as_millis() as i64
    }

    fn receive(&self, alert: &Alert) {
        let now = self.now_ms();
        let mut world = self.world.lock().unwrap();
        let key = group_key("db", &group_labels(&self.config, &alert.labels));
        if let Some(group) = world.group.as_mut() {
            assert_eq!(group.key, key);
            group.insert(alert, now);
        } else {
            world.group = Some(GroupState::new("db", "slack", &self.config, alert, now));
            self.opened.notify_one();
        }
    }

    /// One tick: flush if due, "send" (always succeeds), write the log, drop resolved alerts.
    fn flush(&self) {
        let now = self.now_ms();
        let mut world = self.world.lock().unwrap();
        let World {
            group,
            log,
            ticks,
            destroyed_at_s,
        } = &mut *world;
        let Some(state) = group.as_mut() else { return };
        if !state.due(now) {
            return;
        }
        let batch = state.begin_flush(now, &self.config);
        let plan = batch.plan(
            &BTreeSet::new(),
            log.as_ref(),
            self.send_resolved,
            self.config.repeat_interval_ms,
            now,
        );
        ticks.push(Tick {
            at_s: now / S,
            reason: plan.decision.reason,
            transmitted: plan.transmit().then(|| Sent::of(&plan)),
        });
        if let Some(entry) = plan.log_entry(now) {
            *log = Some(entry);
        }
        if state.after_success(&batch) {
            *group = None;
            *destroyed_at_s = Some(now / S);
        }
    }

    /// The flusher worker in miniature: sleep until the group's next flush, then flush it.
    async fn flusher(self: Arc<Self>) {
        loop {
            let next = self
                .world
                .lock()
                .unwrap()
                .group
                .as_ref()
                .map(|g| g.next_flush_ms);
            match next {
                None => self.opened.notified().await,
                Some(at) => {
                    let deadline = self.start + Duration::from_millis(at as u64);
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => self.flush(),
                        () = self.opened.notified() => {}
                    }
                }
            }
        }
    }
}

/// Alerts h1, h2, h3 arrive at 0 s, 10 s and 40 s (group_wait 30 s, group_interval 60 s); h1
/// resolves at 100 s, h2 and h3 at 160 s. Time moves one second at a time up to 400 s.
///
/// Run on a runtime started paused (`start_paused`, i.e. `tokio::time::pause()` before the timer
/// driver starts): pausing later leaves the timer's millisecond grid offset from our clock by a
/// fraction of a millisecond, and every sleep would fire a whole step late.
async fn timeline(send_resolved: bool) -> World {
    let sim = Arc::new(Sim {
        world: Mutex::new(World::default()),
        opened: Notify::new(),
        start: Instant::now(),
        config: config(30, 60, 4 * 3_600),
        send_resolved,
    });
    let (h1, h2, h3) = (alert("h1", 0), alert("h2", 10 * S), alert("h3", 40 * S));
    let events: Vec<(i64, Alert)> = vec![
        (0, h1.clone()),
        (10, h2.clone()),
        (40, h3.clone()),
        (100, resolve(h1, 100 * S)),
        (160, resolve(h2, 160 * S)),
        (160, resolve(h3, 160 * S)),
    ];
    let flusher = tokio::spawn(Arc::clone(&sim).flusher());
    for second in 0..=400 {
        assert_eq!(sim.now_ms(), second * S);
        for (_, alert) in events.iter().filter(|(at, _)| *at == second) {
            sim.receive(alert);
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
    }
    flusher.abort();
    std::mem::take(&mut *sim.world.lock().unwrap())
}

#[tokio::test(start_paused = true)]
async fn timeline_with_send_resolved() {
    let world = timeline(true).await;
    assert_eq!(
        world.ticks,
        [
            Tick {
                at_s: 30,
                reason: NotifyReason::FirstNotification,
                transmitted: Some(sent(AlertStatus::Firing, &["h1", "h2"], &[])),
            },
            Tick {
                at_s: 90,
                reason: NotifyReason::NewAlertsAdded,
                transmitted: Some(sent(AlertStatus::Firing, &["h1", "h2", "h3"], &[])),
            },
            Tick {
                at_s: 150,
                reason: NotifyReason::SomeResolved,
                transmitted: Some(sent(AlertStatus::Firing, &["h2", "h3"], &["h1"])),
            },
            Tick {
                at_s: 210,
                reason: NotifyReason::AllResolved,
                transmitted: Some(sent(AlertStatus::Resolved, &[], &["h2", "h3"])),
            },
        ]
    );
    assert_eq!(
        world.destroyed_at_s,
        Some(210),
        "destroyed after the successful all-resolved flush, and no tick since"
    );
    assert!(world.group.is_none());
    let log = world.log.unwrap();
    assert_eq!(
        (log.sent_at_ms, log.firing.len(), log.resolved.len()),
        (210 * S, 0, 2)
    );
}

#[tokio::test(start_paused = true)]
async fn timeline_without_send_resolved() {
    let world = timeline(false).await;
    assert_eq!(
        world.ticks,
        [
            Tick {
                at_s: 30,
                reason: NotifyReason::FirstNotification,
                transmitted: Some(sent(AlertStatus::Firing, &["h1", "h2"], &[])),
            },
            Tick {
                at_s: 90,
                reason: NotifyReason::NewAlertsAdded,
                transmitted: Some(sent(AlertStatus::Firing, &["h1", "h2", "h3"], &[])),
            },
            Tick {
                at_s: 150,
                reason: NotifyReason::NothingToSend,
                transmitted: None,
            },
            Tick {
                at_s: 210,
                reason: NotifyReason::AllResolved,
                transmitted: None,
            },
        ],
        "h1 resolving while others fire sends nothing; all resolved transmits nothing"
    );
    assert_eq!(world.destroyed_at_s, Some(210));
    let log = world.log.unwrap();
    assert_eq!(
        (log.sent_at_ms, log.firing.len()),
        (210 * S, 0),
        "the all-resolved send still wrote the log"
    );
}

// ---- properties of group labels and keys --------------------------------------------------

fn label_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("alertname".to_owned()),
        Just("team".to_owned()),
        r#"[a_."=,]{1,3}"#,
    ]
}

fn label_value() -> impl Strategy<Value = String> {
    r#"[a"\\=,{}:. \n]{0,4}"#.prop_map(String::from)
}

fn label_set() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(label_name(), label_value(), 0..4)
}

proptest! {
    #[test]
    fn group_labels_and_keys_are_deterministic_and_order_free(
        (pairs, shuffled) in prop::collection::btree_map(label_name(), label_value(), 0..6)
            .prop_flat_map(|m| {
                let pairs: Vec<(String, String)> = m.into_iter().collect();
                (Just(pairs.clone()), Just(pairs).prop_shuffle())
            }),
        (group_by, group_by_shuffled) in prop::collection::btree_set(label_name(), 0..5)
            .prop_flat_map(|s| {
                let names: Vec<String> = s.into_iter().collect();
                (Just(names.clone()), Just(names).prop_shuffle())
            }),
    ) {
        let mut labels = BTreeMap::new();
        for (k, v) in &pairs {
            labels.insert(k.clone(), v.clone());
        }
        let mut labels_shuffled = BTreeMap::new();
        for (k, v) in shuffled.iter().rev() {
            labels_shuffled.insert(k.clone(), v.clone());
        }
        let config = GroupingConfig { group_by: Some(group_by), ..GroupingConfig::default() };
        let config_shuffled =
            GroupingConfig { group_by: Some(group_by_shuffled), ..GroupingConfig::default() };
        let picked = group_labels(&config, &labels);
        prop_assert_eq!(&picked, &group_labels(&config, &labels));
        prop_assert_eq!(&picked, &group_labels(&config_shuffled, &labels_shuffled));
        let key = group_key("route", &picked);
        prop_assert_eq!(&key, &group_key("route", &group_labels(&config_shuffled, &labels_shuffled)));
        prop_assert_eq!(group_id(&key), group_id(&key));
        // Exactly the non-empty labels named (all of them for "...").
        let named = config.group_by.as_ref().unwrap();
        let all = named.iter().any(|n| n == "...");
        for (name, value) in &labels {
            let wanted = !value.is_empty() && (all || named.contains(name));
            prop_assert_eq!(picked.get(name), wanted.then_some(value));
        }
        prop_assert!(picked.keys().all(|name| labels.contains_key(name)));
    }

    #[test]
    fn different_group_label_sets_never_share_a_key(
        route_a in r#"[r:{}"]{0,3}"#,
        route_b in r#"[r:{}"]{0,3}"#,
        a in label_set(),
        b in label_set(),
    ) {
        let same = (&route_a, &a) == (&route_b, &b);
        let (key_a, key_b) = (group_key(&route_a, &a), group_key(&route_b, &b));
        prop_assert_eq!(key_a == key_b, same, "{:?} vs {:?}", key_a, key_b);
        prop_assert_eq!(group_id(&key_a) == group_id(&key_b), same);
        // Same route, different labels: the common case.
        prop_assert_eq!(group_key(&route_a, &a) == group_key(&route_a, &b), a == b);
    }
}
