//! The operator-actions layer on the memory store and a real redis-server: read-only refuses
//! every action before any I/O; plans count exactly; bulk actions run in bounded batches with
//! progress, cancel and reconciled counts; every run leaves one audit record; the overrides
//! inventory shows who set what and why, and expired overrides end by themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::counting;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::{Harness, Kind, act, fill_dlq, queue};
use counting::CountingStore;
use tokio_util::sync::CancellationToken;
use ward::actions::{
    Action, ActionError, ActionKind, Actions, Actor, Origin, Outcome, OverrideKind, Plan, Policy,
    Scope, Settings, overrides,
};
use ward::config::{IngestConfig, QueuesConfig, WorkersConfig};
use ward::delivery::{HttpTimeouts, NullBackend, Secret, SlackBackend};
use ward::engine::breaker::{BreakerConfig, BreakerState};
use ward::engine::routing::RoutingConfig;
use ward::model::{
    Flag, FlagState, LabelMatcher, MatchOp, ShedMode, Silence, SilenceKind, TestStatus, Threshold,
};
use ward::pipeline::{Pipeline, PipelineParts};
use ward::store::{DlqFilter, FailedSet, Store};
use ward::telemetry::{EventLog, Metrics};

fn actions(store: Arc<dyn Store>, policy: Policy, settings: Settings) -> Actions {
    Actions {
        store,
        policy,
        actor: Actor {
            user: "ops".into(),
            host: "bastion".into(),
        },
        origin: Origin::Headless,
        target: "test".into(),
        settings,
        channels: Vec::new(),
        silences: ward::engine::silence::SilencePolicy::default(),
    }
}

/// One example of every action.
fn every_action(now: i64) -> Vec<Action> {
    let q = queue("delivery");
    let reason = "incident 42".to_owned();
    vec![
        Action::Replay {
            queue: q.clone(),
            from: FailedSet::Dlq,
            scope: Scope::Filter(DlqFilter::default()),
            reset_attempts: true,
        },
        Action::Purge {
            queue: q.clone(),
            set: FailedSet::Dlq,
            scope: Scope::Filter(DlqFilter::default()),
        },
        Action::MoveToDead {
            queue: q.clone(),
            scope: Scope::Filter(DlqFilter::default()),
        },
        Action::Shedding {
            mode: ShedMode::Dlq,
            reason: reason.clone(),
            expires_at_ms: None,
        },
        Action::SetThreshold {
            queue: q,
            threshold: Threshold::Shed,
            value: Some(10),
            reason: reason.clone(),
        },
        Action::BreakerForceOpen {
            backend: "slack".into(),
            until_ms: now + 60_000,
            reason: reason.clone(),
        },
        Action::BreakerDisable {
            backend: "slack".into(),
            reason: reason.clone(),
        },
        Action::BreakerReset {
            backend: "slack".into(),
            reason: reason.clone(),
        },
        Action::EmergencyStop {
            backend: None,
            on: true,
            reason: reason.clone(),
            expires_at_ms: None,
        },
        Action::SetConfig {
            key: "workers.recheck_ms".into(),
            value: Some("500".into()),
            reason,
        },
        Action::SendTestAlert {
            channel: None,
            tenant: "acme".into(),
            summary: "test".into(),
        },
        Action::EndExpired {
            flag: "emergency_stop:nowhere".into(),
            expected: FlagState {
                value: "on".into(),
                owner: "ops@bastion".into(),
                reason: "old".into(),
                set_at_ms: now - 10,
                expires_at_ms: Some(now - 1),
            },
        },
        Action::SilenceCreate {
            matchers: vec![LabelMatcher::new("alertname", MatchOp::Equal, "Disk")],
            starts_at_ms: now,
            ends_at_ms: now + 3_600_000,
            comment: "disk swap".into(),
            replaces: None,
        },
        Action::SilenceExpire {
            id: "s-existing".into(),
        },
    ]
}

/// A silence already in the store, as `SilenceExpire { id: "s-existing" }` expects.
async fn existing_silence(h: &Harness) -> Silence {
    let now = h.store.now_ms();
    let silence = Silence {
        id: "s-existing".into(),
        matchers: vec![LabelMatcher::new("alertname", MatchOp::Equal, "Disk")],
        starts_at_ms: now,
        ends_at_ms: now + 3_600_000,
        created_by: "ann".into(),
        comment: "disk swap".into(),
        updated_at_ms: now,
        kind: SilenceKind::Silence,
    };
    h.store.silence_put(&silence).await.unwrap();
    silence
}

async fn read_only_refuses_every_action_before_any_io(h: Harness) {
    fill_dlq(&h, "delivery", 3, "acme", "timeout", "deliver").await;
    let silence = existing_silence(&h).await;
    let now = h.store.now_ms();
    let examples = every_action(now);
    let kinds: BTreeSet<ActionKind> = examples.iter().map(Action::kind).collect();
    assert_eq!(
        kinds,
        ActionKind::ALL
            .into_iter()
            .filter(|k| !k.is_mutt())
            .collect(),
        "every Action variant on Ward's store has an example (tests/store/mutt.rs has MUTT's)"
    );
    let writable = actions(h.store.clone(), Policy::writable(), Settings::default());
    let counting = Arc::new(CountingStore::new(h.store.clone()));
    let read_only = actions(
        counting.clone(),
        Policy::read_only("read-only: --read-only"),
        Settings::default(),
    );
    for action in examples {
        let kind = action.kind();
        let planned = read_only.plan(action.clone()).await;
        assert!(
            matches!(&planned, Err(ActionError::Refused(r)) if r.why == "read-only: --read-only"),
            "{kind:?}: plan was not refused: {planned:?}"
        );
        // A plan made elsewhere is refused too when it reaches a read-only executor.
        let plan = writable.plan(action).await.unwrap();
        let executed = read_only
            .execute(&plan, &CancellationToken::new(), &mut |_| {})
            .await;
        assert!(
            matches!(executed, Err(ActionError::Refused(_))),
            "{kind:?}: execute was not refused"
        );
        assert_eq!(counting.writes(), 0, "{kind:?}: a read-only action wrote");
        assert_eq!(counting.calls(), 0, "{kind:?}: refused only after I/O");
    }
    let stats = h.store.stats(&[queue("delivery")]).await.unwrap();
    assert_eq!(stats.queues[0].dlq, 3, "nothing moved");
    assert!(h.store.flags().await.unwrap().is_empty(), "no flag set");
    assert!(h.store.audit_recent(10).await.unwrap().is_empty());
    assert_eq!(
        h.store.silences().await.unwrap(),
        vec![silence],
        "no silence created or expired"
    );
}

async fn plan(h: &Harness, action: Action, settings: Settings) -> (Actions, Plan) {
    let actions = actions(h.store.clone(), Policy::writable(), settings);
    let plan = actions.plan(action).await.unwrap();
    (actions, plan)
}

async fn replay_by_filter_runs_in_bounded_batches_and_reconciles(h: Harness) {
    fill_dlq(&h, "delivery", 23, "acme", "timeout", "deliver").await;
    fill_dlq(&h, "delivery", 4, "acme", "http_404", "deliver").await;
    let settings = Settings {
        batch_size: 5,
        rate_per_s: None,
        ..Settings::default()
    };
    let filter = DlqFilter {
        error_class: Some("timeout".into()),
        ..DlqFilter::default()
    };
    let action = Action::Replay {
        queue: queue("delivery"),
        from: FailedSet::Dlq,
        scope: Scope::Filter(filter),
        reset_attempts: true,
    };
    let (actions, plan) = plan(&h, action, settings).await;
    assert_eq!(
        plan.count, 23,
        "the plan counts exactly what the filter selects"
    );
    assert_eq!(plan.sample.len(), 5);
    assert!(plan.sample.iter().all(|r| r.error_class == "timeout"));
    assert_eq!(plan.batch_size, 5);
    let mut seen = Vec::new();
    let report = actions
        .execute(&plan, &CancellationToken::new(), &mut |p| {
            seen.push(p.done);
        })
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Completed);
    assert_eq!(report.moved, 23);
    assert_eq!(report.remaining, Some(0));
    assert!(!seen.is_empty(), "progress was reported");
    assert!(seen.windows(2).all(|w| w[1] >= w[0] && w[1] - w[0] <= 5));
    assert_eq!(seen.last(), Some(&23));
    let stats = h.store.stats(&[queue("delivery")]).await.unwrap();
    assert_eq!(
        (stats.queues[0].depth, stats.queues[0].dlq),
        (23, 4),
        "the timeouts are back in the queue, the 404s untouched"
    );
    let audit = h.store.audit_recent(5).await.unwrap();
    assert_eq!(audit.len(), 1, "one audit record per action");
    let record = &audit[0].record;
    assert_eq!(record.who, "ops@bastion");
    assert_eq!(record.action, "replay");
    assert_eq!(record.origin, "headless");
    assert_eq!(record.target, "test");
    assert_eq!(record.batch_id, plan.id);
    assert!(record.scope.contains("error=timeout"), "{}", record.scope);
    assert!(
        record.result.starts_with("completed: 23 moved"),
        "{}",
        record.result
    );
    assert_eq!(record.plan["count"], 23);
}

async fn cancel_stops_between_batches_with_exact_counts(h: Harness) {
    fill_dlq(&h, "delivery", 30, "acme", "timeout", "deliver").await;
    let settings = Settings {
        batch_size: 4,
        rate_per_s: None,
        ..Settings::default()
    };
    let action = Action::MoveToDead {
        queue: queue("delivery"),
        scope: Scope::Filter(DlqFilter::default()),
    };
    let (actions, plan) = plan(&h, action, settings).await;
    let cancel = CancellationToken::new();
    let mut done_at_cancel = 0;
    let report = actions
        .execute(&plan, &cancel, &mut |p| {
            if p.batches == 3 {
                done_at_cancel = p.done;
                cancel.cancel();
            }
        })
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Cancelled);
    assert_eq!(report.batches, 3, "no batch started after the cancel");
    assert!(done_at_cancel > 0 && done_at_cancel <= 12);
    assert_eq!(report.moved, done_at_cancel);
    assert_eq!(report.remaining, Some(30 - done_at_cancel));
    let stats = h.store.stats(&[queue("delivery")]).await.unwrap();
    assert_eq!(
        (stats.queues[0].dlq, stats.queues[0].dead),
        (30 - done_at_cancel, done_at_cancel),
        "the counts are exact"
    );
    let audit = h.store.audit_recent(1).await.unwrap();
    let expected = format!("cancelled: {done_at_cancel} moved");
    assert!(audit[0].record.result.starts_with(&expected));
}

async fn single_actions_change_state_with_provenance(h: Harness) {
    let now = h.store.now_ms();
    existing_silence(&h).await;
    // No worker runs here: the test alert is followed only briefly, and times out.
    let settings = Settings {
        test_timeout: std::time::Duration::from_millis(200),
        ..Settings::default()
    };
    for action in every_action(now)
        .into_iter()
        .filter(|a| a.dlq_scope().is_none())
    {
        let (actions, plan) = plan(&h, action, settings).await;
        assert_eq!(plan.count, 1);
        let report = actions
            .execute(&plan, &CancellationToken::new(), &mut |_| {})
            .await
            .unwrap();
        assert_eq!(report.outcome, Outcome::Completed, "{}", plan.summary);
        if let Some(test) = &report.test {
            assert_eq!(test.status, TestStatus::TimedOut, "{test:?}");
        }
    }
    let flags = h.store.flags().await.unwrap();
    let names: BTreeSet<&str> = flags.iter().map(|(n, _)| n.as_str()).collect();
    for name in [
        Flag::EmergencyStop(None).name(),
        Flag::SheddingMode.name(),
        Flag::ConfigOverride("workers.recheck_ms".into()).name(),
        Flag::ConfigOverride(Threshold::Shed.config_key(&queue("delivery"))).name(),
    ] {
        assert!(
            names.contains(name.as_str()),
            "{name} missing from {names:?}"
        );
    }
    assert!(flags.iter().all(|(_, f)| f.owner == "ops@bastion"));
    let (_, stop) = flags.iter().find(|(n, _)| n == "emergency_stop").unwrap();
    assert_eq!(stop.reason, "incident 42");
    assert_eq!(
        h.store.config_get("shedding.delivery.shed").await.unwrap(),
        Some("10".into())
    );
    // The breaker went forced-open, disabled, then reset: closed again.
    let breakers = h.store.breakers().await.unwrap();
    assert_eq!(breakers.len(), 1);
    assert_eq!(breakers[0].1.state, BreakerState::Closed);
    // The test alert waits on the ingest queue, marked as a test.
    let stats = h.store.stats(&[queue("ingest")]).await.unwrap();
    assert_eq!(stats.queues[0].depth, 1);
    // A silence was created, and the existing one expired in place.
    let silences = h.store.silences().await.unwrap();
    assert_eq!(silences.len(), 2);
    let states: BTreeSet<(&str, ward::model::SilenceState)> = silences
        .iter()
        .map(|s| {
            let id = if s.id == "s-existing" { "old" } else { "new" };
            (id, s.state(now + 1))
        })
        .collect();
    assert_eq!(
        states,
        BTreeSet::from([
            ("new", ward::model::SilenceState::Active),
            ("old", ward::model::SilenceState::Expired)
        ])
    );
    let audit = h.store.audit_recent(20).await.unwrap();
    assert_eq!(audit.len(), 11, "one record per executed action");
}

async fn ending_an_expired_override_spares_one_set_again(h: Harness) {
    let now = h.store.now_ms();
    let actions = actions(h.store.clone(), Policy::writable(), Settings::default());
    let stop = |reason: &str, expires: i64| Action::EmergencyStop {
        backend: None,
        on: true,
        reason: reason.into(),
        expires_at_ms: Some(expires),
    };
    let run = |action: Action| act(&actions, action);
    run(stop("first", now + 1_000)).await;
    h.clock.advance(std::time::Duration::from_secs(2));
    let (_, expired) = h.store.flags().await.unwrap().remove(0);
    assert!(expired.is_expired(h.store.now_ms()));
    // The operator sets it again before the janitor gets to the expired one.
    run(stop("second", h.store.now_ms() + 60_000)).await;
    let end = Action::EndExpired {
        flag: "emergency_stop".into(),
        expected: expired.clone(),
    };
    let report = run(end.clone()).await;
    assert_eq!(report.moved, 0, "the new stop was lifted");
    let flags = h.store.flags().await.unwrap();
    assert_eq!(flags.len(), 1);
    assert_eq!(flags[0].1.reason, "second");
    // Had nobody touched it, it would have ended.
    h.store
        .set_flag(&Flag::EmergencyStop(None), Some(&expired))
        .await
        .unwrap();
    assert_eq!(run(end).await.moved, 1);
    assert!(h.store.flags().await.unwrap().is_empty());
}

async fn invalid_actions_are_refused_before_planning(h: Harness) {
    let now = h.store.now_ms();
    let actions = actions(h.store.clone(), Policy::writable(), Settings::default());
    let no_reason = Action::EmergencyStop {
        backend: None,
        on: true,
        reason: "  ".into(),
        expires_at_ms: None,
    };
    let past = Action::BreakerForceOpen {
        backend: "slack".into(),
        until_ms: now,
        reason: "maintenance".into(),
    };
    for action in [no_reason, past] {
        let result = actions.plan(action).await;
        assert!(matches!(result, Err(ActionError::Invalid(_))), "{result:?}");
    }
}

async fn dry_run_changes_nothing_but_is_audited(h: Harness) {
    fill_dlq(&h, "delivery", 6, "acme", "timeout", "deliver").await;
    let settings = Settings {
        dry_run: true,
        ..Settings::default()
    };
    let action = Action::Purge {
        queue: queue("delivery"),
        set: FailedSet::Dlq,
        scope: Scope::Filter(DlqFilter::default()),
    };
    let (actions, plan) = plan(&h, action, settings).await;
    assert_eq!(plan.count, 6);
    let report = actions
        .execute(&plan, &CancellationToken::new(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::DryRun);
    let stats = h.store.stats(&[queue("delivery")]).await.unwrap();
    assert_eq!(stats.queues[0].dlq, 6);
    let audit = h.store.audit_recent(1).await.unwrap();
    assert!(audit[0].record.result.starts_with("dry-run"));
}

/// A worker's parts on `h`'s store: `backends`, alerts routed to `channel`, the janitor every
/// 10 ms; a test changes what it is about.
fn worker_parts(
    h: &Harness,
    backends: Vec<Arc<dyn ward::delivery::Backend>>,
    channel: &str,
) -> PipelineParts {
    let queues = QueuesConfig {
        janitor_interval_ms: 10,
        ..QueuesConfig::default()
    };
    PipelineParts {
        store: h.store.clone(),
        backends,
        routing: RoutingConfig {
            default_channels: vec![channel.to_owned()],
            ..RoutingConfig::default()
        },
        policies: Vec::new(),
        breaker: BreakerConfig::default(),
        ingest: IngestConfig::default(),
        queues,
        workers: WorkersConfig::default(),
        metrics: Metrics::new(),
        events: EventLog::disabled(),
        alerting: ward::config::alerting::AlertingConfig::default(),
    }
}

async fn spawn_worker(parts: PipelineParts, stop: &CancellationToken) -> ward::pipeline::Running {
    Pipeline::new(parts)
        .unwrap()
        .spawn(stop, false)
        .await
        .unwrap()
}

/// One worker (router, delivery to a null channel, janitor every 10 ms) on `h`'s store.
async fn start_worker(h: &Harness, stop: &CancellationToken) -> ward::pipeline::Running {
    let parts = worker_parts(h, vec![Arc::new(NullBackend::new("null"))], "null");
    spawn_worker(parts, stop).await
}

async fn overrides_show_owner_reason_age_and_expiry_and_end_by_themselves(h: Harness) {
    let now = h.store.now_ms();
    let actions = actions(h.store.clone(), Policy::writable(), Settings::default());
    let run = |action: Action| act(&actions, action);
    run(Action::EmergencyStop {
        backend: Some("slack".into()),
        on: true,
        reason: "vendor outage".into(),
        expires_at_ms: Some(now + 60_000),
    })
    .await;
    run(Action::Shedding {
        mode: ShedMode::Defer,
        reason: "load test".into(),
        expires_at_ms: None,
    })
    .await;
    run(Action::BreakerForceOpen {
        backend: "smtp".into(),
        until_ms: now + 30_000,
        reason: "relay maintenance".into(),
    })
    .await;
    h.clock.advance(std::time::Duration::from_secs(10));
    let list = overrides(h.store.as_ref()).await.unwrap();
    let kinds: Vec<OverrideKind> = list.iter().map(|o| o.kind).collect();
    assert_eq!(
        kinds,
        [
            OverrideKind::EmergencyStop,
            OverrideKind::Shedding,
            OverrideKind::Breaker
        ]
    );
    for item in &list {
        assert_eq!(item.owner, "ops@bastion");
        assert_eq!(item.age_ms, 10_000);
        assert!(!item.expired);
    }
    assert_eq!(list[0].reason, "vendor outage");
    assert_eq!(list[0].expires_at_ms, Some(now + 60_000));
    assert_eq!(list[1].expires_at_ms, None);
    assert_eq!(list[2].name, "smtp");
    assert_eq!(list[2].value, "forced_open");
    assert_eq!(list[2].reason, "relay maintenance");
    assert_eq!(list[2].expires_at_ms, Some(now + 30_000));

    h.clock.advance(std::time::Duration::from_secs(60));
    let list = overrides(h.store.as_ref()).await.unwrap();
    let expired: Vec<&str> = list
        .iter()
        .filter(|o| o.expired)
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(expired, ["emergency_stop:slack", "smtp"]);

    // A running worker's janitor ends them; what has no expiry stays.
    let stop = CancellationToken::new();
    let running = start_worker(&h, &stop).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let names: Vec<String> = overrides(h.store.as_ref())
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.name)
            .collect();
        if names == ["shedding_mode"] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {names:?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    stop.cancel();
    running.join().await;
    let breakers = h.store.breakers().await.unwrap();
    assert_eq!(breakers[0].1.state, BreakerState::Closed);
    let audit = h.store.audit_recent(10).await.unwrap();
    let lifted = audit
        .iter()
        .find(|e| e.record.origin == "automatic")
        .expect("the lifted stop is audited");
    assert_eq!(lifted.record.action, "end_expired");
    assert!(lifted.record.who.starts_with("ward@"));
    assert_eq!(
        lifted.record.plan["action"]["expected"]["reason"],
        "vendor outage"
    );
}

/// What the plan says is what runs: a bounded run (`max`) plans that many, and a paced run
/// moves at most a second's worth per batch, so the pace holds from the first batch.
async fn a_bounded_paced_plan_says_what_runs(h: Harness) {
    fill_dlq(&h, "delivery", 9, "acme", "http_500", "deliver").await;
    let settings = Settings {
        batch_size: 50,
        rate_per_s: Some(2),
        max_items: Some(5),
        ..Settings::default()
    };
    let action = Action::Replay {
        queue: queue("delivery"),
        from: FailedSet::Dlq,
        scope: Scope::Filter(DlqFilter::default()),
        reset_attempts: true,
    };
    let (actions, bounded) = plan(&h, action, settings).await;
    assert_eq!(bounded.count, 5, "max=5 plans 5, not the 9 that match");
    assert_eq!(
        bounded.batch_size, 2,
        "a batch is at most a second's worth at 2/s"
    );
    assert_eq!(bounded.eta, Some(std::time::Duration::from_millis(2_500)));
    let mut batches = Vec::new();
    let report = actions
        .execute(&bounded, &CancellationToken::new(), &mut |p| {
            batches.push(p.done);
        })
        .await
        .unwrap();
    assert_eq!(report.moved, 5);
    assert_eq!(batches.last(), Some(&5));
    let mut before = 0;
    for done in &batches {
        assert!(
            done - before <= 2,
            "a batch over a second's worth: {batches:?}"
        );
        before = *done;
    }
    assert!(
        report.duration_ms >= 1_000,
        "paced from the first batch: {} ms for {batches:?}",
        report.duration_ms
    );
    // A single change has no pace and no batch to speak of.
    let (_, single) = plan(
        &h,
        Action::BreakerForceOpen {
            backend: "slack".into(),
            until_ms: h.store.now_ms() + 60_000,
            reason: "vendor outage".into(),
        },
        Settings::default(),
    )
    .await;
    assert_eq!(
        (single.count, single.rate_per_s, single.eta),
        (1, None, None)
    );
    assert!(
        single
            .summary
            .starts_with("force the slack breaker open until 20"),
        "the expiry is in the words: {}",
        single.summary
    );
}

async fn marks_are_read_again_before_a_plan(h: Harness) {
    let ids = fill_dlq(&h, "delivery", 4, "acme", "http_500", "deliver").await;
    let marked = Scope::Ids(ids.clone());
    let replay = |scope| Action::Replay {
        queue: queue("delivery"),
        from: FailedSet::Dlq,
        scope,
        reset_attempts: true,
    };
    // Two of the four marked entries are replayed…
    let (actions, first) = plan(
        &h,
        replay(Scope::Ids(ids[..2].to_vec())),
        Settings::default(),
    )
    .await;
    assert_eq!(first.count, 2);
    assert_eq!(
        first.sample[0].error_class, "http_500",
        "sampled from the store"
    );
    assert!(first.sample[0].last_failure_ms > 0);
    let report = actions
        .execute(&first, &CancellationToken::new(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(report.moved, 2);
    // …so a purge of all four marks plans the two still there, and says why.
    let purge = Action::Purge {
        queue: queue("delivery"),
        set: FailedSet::Dlq,
        scope: marked,
    };
    let (actions, second) = plan(&h, purge, Settings::default()).await;
    assert_eq!(second.count, 2, "{second:?}");
    assert_eq!(
        second.action.dlq_scope().map(|s| s.2),
        Some(&Scope::Ids(ids[2..].to_vec()))
    );
    assert!(
        second.warnings[0].starts_with("2 of the 4 marked entries are no longer in the DLQ"),
        "{:?}",
        second.warnings
    );
    let sampled: Vec<&str> = second.sample.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(sampled, vec![ids[2].0.as_str(), ids[3].0.as_str()]);
    let report = actions
        .execute(&second, &CancellationToken::new(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(report.moved, 2);
    let dlq = h
        .store
        .failed_count(&queue("delivery"), FailedSet::Dlq, &DlqFilter::default())
        .await
        .unwrap();
    assert_eq!(dlq, 0);
    assert_eq!(
        h.store.stats(&[queue("delivery")]).await.unwrap().queues[0].depth,
        2,
        "the replayed two were not purged"
    );
}

/// A Slack channel at a wiremock server answering every post with `status`.
async fn slack_answering(name: &str, status: u16) -> (wiremock::MockServer, Arc<SlackBackend>) {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(status).set_body_string("vendor says no"))
        .mount(&server)
        .await;
    let url = Secret::new(format!("{}/services/T0/B0/test", server.uri()));
    let timeouts = HttpTimeouts {
        request: std::time::Duration::from_secs(5),
        connect: std::time::Duration::from_secs(5),
    };
    let backend = SlackBackend::new(name, url, timeouts).unwrap();
    (server, Arc::new(backend))
}

async fn a_test_alert_reports_how_its_delivery_ended(h: Harness) {
    let (ok_server, ok) = slack_answering("slack-ok", 200).await;
    let (bad_server, bad) = slack_answering("slack-bad", 500).await;
    let stop = CancellationToken::new();
    let backends: Vec<Arc<dyn ward::delivery::Backend>> =
        vec![ok, bad, Arc::new(NullBackend::new("stdout"))];
    let running = spawn_worker(worker_parts(&h, backends, "stdout"), &stop).await;
    let mut operator = actions(h.store.clone(), Policy::writable(), Settings::default());
    operator.channels = vec!["slack-ok".into(), "slack-bad".into()];
    let test_to = |channel: &str| Action::SendTestAlert {
        channel: Some(channel.to_owned()),
        tenant: "acme".into(),
        summary: "is the pager wired?".into(),
    };

    let report = act(&operator, test_to("slack-ok")).await;
    let test = report.test.clone().expect("followed to its end");
    assert_eq!(test.status, TestStatus::Delivered, "{test:?}");
    assert_eq!(test.channel, "slack-ok");
    assert_eq!(ok_server.received_requests().await.unwrap().len(), 1);

    let report = act(&operator, test_to("slack-bad")).await;
    let test = report.test.clone().expect("followed to its end");
    assert_eq!(test.status, TestStatus::Failed, "{test:?}");
    let error = test.error.clone().unwrap();
    assert!(error.starts_with("http_500"), "{error}");
    assert!(error.contains("vendor says no"), "{error}");
    // A test is one attempt: not retried, not dead-lettered, and the audit says how it went.
    assert_eq!(bad_server.received_requests().await.unwrap().len(), 1);
    let stats = h.store.stats(&[queue("delivery")]).await.unwrap();
    assert_eq!((stats.queues[0].scheduled, stats.queues[0].dlq), (0, 0));
    let audit = h.store.audit_recent(1).await.unwrap();
    assert!(
        audit[0]
            .record
            .result
            .contains("test alert failed on slack-bad: http_500"),
        "{:?}",
        audit[0].record
    );

    // An unknown channel is refused before anything is sent.
    let unknown = operator.plan(test_to("nosuch")).await.unwrap_err();
    assert!(
        matches!(&unknown, ActionError::Invalid(m) if m.contains("nosuch")),
        "{unknown}"
    );

    stop.cancel();
    running.join().await;
    // With no worker running, nothing reports: the wait ends and says so.
    operator.settings.test_timeout = std::time::Duration::from_millis(300);
    let report = act(&operator, test_to("slack-ok")).await;
    let test = report.test.expect("a timed-out test still reports");
    assert_eq!(test.status, TestStatus::TimedOut);
    assert!(test.error.unwrap().contains("ward up"));
}

/// Alerts held back by a breaker an operator forced open are listed by channel, held (not
/// failed), with when they are tried next, for as long as they wait.
async fn work_held_by_an_open_breaker_is_visible_by_channel(h: Harness) {
    let stop = CancellationToken::new();
    let running = start_worker(&h, &stop).await;
    let operator = common::operator(h.store.clone());
    act(
        &operator,
        Action::BreakerForceOpen {
            backend: "null".into(),
            until_ms: h.store.now_ms() + 600_000,
            reason: "vendor outage".into(),
        },
    )
    .await;
    let now = h.store.now_ms();
    let alerts: Vec<_> = (0..5)
        .map(|i| common::alert_envelope(&format!("Disk{i}"), &[("channel", "#ops")], now))
        .collect();
    h.store.enqueue(&queue("ingest"), &alerts).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let summary = loop {
        let stats = h.store.stats(&[queue("delivery")]).await.unwrap();
        let summary = stats.queues[0].waiting_retry.clone();
        if summary.channels.first().is_some_and(|c| c.count == 5) {
            break summary;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never held: {stats:?}"
        );
        tokio::task::yield_now().await;
    };
    let channel = &summary.channels[0];
    assert_eq!(channel.channel, "null");
    assert_eq!(
        (channel.count, channel.retrying),
        (5, 0),
        "held, not failed"
    );
    assert!(
        summary.next_due_ms.is_some_and(|due| due > now),
        "{summary:?}"
    );
    stop.cancel();
    running.join().await;
}

/// `queues.max_attempts` caps a retry policy that allows more: the lower wins, and the DLQ
/// entry says which limit stopped it.
async fn queues_max_attempts_caps_every_retry_policy(h: Harness) {
    use ward::engine::retry::{Backoff, Jitter, RetryPolicy};
    let (server, bad) = slack_answering("slack-bad", 500).await;
    let stop = CancellationToken::new();
    let mut parts = worker_parts(&h, vec![bad], "slack-bad");
    parts.queues.max_attempts = 3;
    parts.workers.scheduler_interval_ms = 10;
    parts.workers.idle_poll_ms = 5;
    "fast".clone_into(&mut parts.routing.default_retry_policy);
    parts.breaker.minimum_calls = u32::MAX;
    let parts = PipelineParts {
        policies: vec![RetryPolicy {
            name: "fast".to_owned(),
            backoff: Backoff::Fixed {
                delay: std::time::Duration::from_millis(10),
            },
            jitter: Jitter::None,
            max_attempts: 8,
            max_elapsed: None,
        }],
        ..parts
    };
    let running = spawn_worker(parts, &stop).await;
    let alert = common::alert_envelope("Disk", &[], h.store.now_ms());
    h.store.enqueue(&queue("ingest"), &[alert]).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let entry = loop {
        let page = h
            .store
            .failed_page(
                &queue("delivery"),
                FailedSet::Dlq,
                &DlqFilter::default(),
                &ward::store::DlqCursor::start(),
                10,
            )
            .await
            .unwrap();
        if let Some(entry) = page.entries.into_iter().next() {
            break entry;
        }
        assert!(std::time::Instant::now() < deadline, "never dead-lettered");
        // The harness's clock is manual: retries come due as it moves.
        h.clock.advance(std::time::Duration::from_millis(20));
        tokio::task::yield_now().await;
    };
    assert!(
        entry
            .meta
            .error_message
            .starts_with("gave up after 3 attempts (queues.max_attempts 3)"),
        "{}",
        entry.meta.error_message
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    stop.cancel();
    running.join().await;
}

macro_rules! on_both {
    ($($case:ident),* $(,)?) => {
        mod memory { $( #[tokio::test] async fn $case() { super::$case(super::Harness::new(super::Kind::Memory, 3).await).await } )* }
        mod redis { $( #[tokio::test] async fn $case() { super::$case(super::Harness::new(super::Kind::Redis, 3).await).await } )* }
    };
}

on_both!(
    read_only_refuses_every_action_before_any_io,
    replay_by_filter_runs_in_bounded_batches_and_reconciles,
    cancel_stops_between_batches_with_exact_counts,
    single_actions_change_state_with_provenance,
    invalid_actions_are_refused_before_planning,
    dry_run_changes_nothing_but_is_audited,
    overrides_show_owner_reason_age_and_expiry_and_end_by_themselves,
    ending_an_expired_override_spares_one_set_again,
    a_bounded_paced_plan_says_what_runs,
    marks_are_read_again_before_a_plan,
    a_test_alert_reports_how_its_delivery_ended,
    work_held_by_an_open_breaker_is_visible_by_channel,
    queues_max_attempts_caps_every_retry_policy,
);
