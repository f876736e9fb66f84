//! The store poller: one task per control room that reads the store on an interval and publishes
//! owned snapshots. Single-flight by construction (one read at a time; refresh requests made
//! meanwhile coalesce into the next one), every read under a timeout, backoff with jitter while
//! the store fails, and the last good figures kept (and marked stale) rather than dropped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::snapshot::{
    BreakerView, DlqGroupsView, DlqPageView, DlqQuery, Freshness, History, QueueView, Rates,
    Snapshot, SourceStatus, StoreSection, Target, WorkerRow, WorkersView,
};
use crate::engine::breaker::{BreakerConfig, TransitionCause};
use crate::engine::overrides::overrides_from;
use crate::model::mutt::MuttPageQuery;
use crate::model::mutt::{MuttPage, MuttSection};
use crate::model::{
    DlqCursor, DlqFilter, FailedSet, Flag, GROUP_BUCKET_MS, QueueName, ShedMode, Threshold,
    WorkerBeat, merge_groups,
};
use crate::store::mutt::MuttStore;
use crate::store::{ControlRead, Store};

/// Points of history kept per series (10 minutes at the default 1 s refresh).
pub const HISTORY_POINTS: usize = 600;

/// Grouping steps (round trips) one refresh may take; a pass over a larger set goes on at the
/// next refresh.
pub const GROUP_STEPS: u32 = 8;

/// A heartbeat older than this many stats intervals means the worker is not running.
const LIVE_BEATS: i64 = 5;

/// How the poller reads.
#[derive(Debug, Clone)]
pub struct PollerConfig {
    pub queues: Vec<QueueName>,
    pub breaker: BreakerConfig,
    pub interval: Duration,
    pub timeout: Duration,
    /// Failed reads before the STALE banner (figures dim from the first).
    pub stale_after: u32,
    pub audit_rows: usize,
    /// Workers write heartbeats this often.
    pub heartbeat_interval: Duration,
    pub target: Target,
    /// Inhibition rules and maintenance windows, so the control room says what they hold back.
    pub rules: crate::engine::suppress::Rules,
}

/// The control room's side of a running poller.
#[derive(Debug, Clone)]
pub struct SourceHandle {
    snapshots: watch::Receiver<Arc<Snapshot>>,
    refresh: Arc<Notify>,
    browse: Arc<watch::Sender<Browse>>,
}

/// The DLQ page read on every refresh, if the browser is open.
#[derive(Debug, Clone, Default, PartialEq)]
struct Browse {
    ward: Option<DlqQuery>,
    mutt: Option<MuttPageQuery>,
}

impl SourceHandle {
    /// A receiver of snapshots (the newest is always at hand; older ones are dropped).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshots.clone()
    }

    pub fn latest(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }

    /// Read now (coalesced with any read already asked for).
    pub fn refresh(&self) {
        self.refresh.notify_one();
    }

    /// Open (or change, or close with `None`) the DLQ page read on every refresh.
    pub fn browse(&self, query: Option<DlqQuery>) {
        self.browse_with(|b| &mut b.ward, query);
    }

    /// Open (or change, or close) the MUTT DLQ page read on every refresh.
    pub fn browse_mutt(&self, query: Option<MuttPageQuery>) {
        self.browse_with(|b| &mut b.mutt, query);
    }

    fn browse_with<T: PartialEq>(
        &self,
        field: impl Fn(&mut Browse) -> &mut Option<T>,
        query: Option<T>,
    ) {
        self.browse.send_if_modified(|current| {
            let current = field(current);
            if *current == query {
                false
            } else {
                *current = query;
                true
            }
        });
        self.refresh();
    }
}

/// What a poller reads: Ward's store, or a MUTT deployment's keys.
pub enum Attached {
    Ward(Arc<dyn Store>),
    Mutt(MuttStore),
}

impl Attached {
    fn now_ms(&self) -> i64 {
        match self {
            Self::Ward(store) => store.now_ms(),
            Self::Mutt(store) => store.now_ms(),
        }
    }

    /// One read folded into `builder`.
    async fn read_into(&self, builder: &mut Builder, browse: &Browse) {
        match self {
            Self::Ward(store) => {
                let query = browse.ward.as_ref();
                let mut read = read_once(store.as_ref(), &builder.config, query).await;
                let timeout = builder.config.timeout;
                if let (Some(query), Ok(_)) = (query.filter(|q| q.grouped), &read.control) {
                    read.round_trips +=
                        read_groups(store.as_ref(), timeout, query, &mut builder.groups).await;
                }
                builder.apply(read, query, store.now_ms());
            }
            Self::Mutt(store) => {
                let read = read_mutt(store, &builder.config, browse.mutt).await;
                builder.apply_mutt(read, browse.mutt, store.now_ms());
            }
        }
    }
}

/// Start polling `store` until `stop`.
pub fn spawn(store: Arc<dyn Store>, config: PollerConfig, stop: CancellationToken) -> SourceHandle {
    spawn_with_slo(store, config, None, stop)
}

/// Start polling `store` until `stop`; every snapshot also carries the latest of `slo`.
pub fn spawn_with_slo(
    store: Arc<dyn Store>,
    config: PollerConfig,
    slo: Option<crate::sources::slo::SloFeed>,
    stop: CancellationToken,
) -> SourceHandle {
    let backend = store.backend_name();
    spawn_attached(Attached::Ward(store), backend, config, slo, stop)
}

/// Start polling a MUTT deployment until `stop`.
pub fn spawn_mutt(
    store: MuttStore,
    config: PollerConfig,
    slo: Option<crate::sources::slo::SloFeed>,
    stop: CancellationToken,
) -> SourceHandle {
    spawn_attached(Attached::Mutt(store), "redis", config, slo, stop)
}

fn spawn_attached(
    source: Attached,
    backend: &str,
    config: PollerConfig,
    slo: Option<crate::sources::slo::SloFeed>,
    stop: CancellationToken,
) -> SourceHandle {
    let now = source.now_ms();
    let builder = Builder::new(config, backend, now);
    let (tx, rx) = watch::channel(Arc::new(builder.snapshot(now)));
    let refresh = Arc::new(Notify::new());
    let (browse_tx, browse_rx) = watch::channel(Browse::default());
    let handle = SourceHandle {
        snapshots: rx,
        refresh: refresh.clone(),
        browse: Arc::new(browse_tx),
    };
    tokio::spawn(run(source, builder, tx, refresh, browse_rx, slo, stop));
    handle
}

async fn run(
    source: Attached,
    mut builder: Builder,
    tx: watch::Sender<Arc<Snapshot>>,
    refresh: Arc<Notify>,
    mut browse: watch::Receiver<Browse>,
    slo: Option<crate::sources::slo::SloFeed>,
    stop: CancellationToken,
) {
    loop {
        let query = browse.borrow_and_update().clone();
        tokio::select! {
            () = stop.cancelled() => return,
            () = source.read_into(&mut builder, &query) => {}
        }
        let now = source.now_ms();
        if let Some(slo) = slo.as_ref() {
            builder.slo.clone_from(&slo.borrow());
        }
        let wait = builder.next_wait();
        builder.status.next_read_ms = now.saturating_add(wait.as_millis() as i64);
        if tx.send(Arc::new(builder.snapshot(now))).is_err() {
            return;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
            () = refresh.notified() => {}
            _ = browse.changed() => {}
        }
    }
}

/// What one read of a MUTT deployment gave.
pub struct MuttRead {
    pub result: Result<(MuttSection, Option<MuttPage>), String>,
    /// The error will not go away by asking again (a key of the wrong type, a refused password).
    pub permanent: bool,
    pub round_trips: u32,
}

/// One read of a MUTT deployment, under the timeout.
pub async fn read_mutt(
    store: &MuttStore,
    config: &PollerConfig,
    page: Option<MuttPageQuery>,
) -> MuttRead {
    match tokio::time::timeout(config.timeout, store.read(config.audit_rows, page)).await {
        Ok(Ok((mut section, page, round_trips))) => {
            section.read_at_ms = store.now_ms();
            MuttRead {
                result: Ok((section, page)),
                permanent: false,
                round_trips,
            }
        }
        Ok(Err(error)) => MuttRead {
            permanent: error.is_permanent(),
            result: Err(error.to_string()),
            round_trips: 1,
        },
        Err(_) => MuttRead {
            result: Err(format!(
                "no answer within {} ms",
                config.timeout.as_millis()
            )),
            permanent: false,
            round_trips: 1,
        },
    }
}

/// What one refresh read.
pub struct Read {
    pub control: Result<ControlRead, String>,
    pub page: Option<DlqPageView>,
    pub round_trips: u32,
}

/// One refresh: the control read, plus the DLQ page when the browser is open. Each call is
/// under the timeout; nothing here waits longer.
pub async fn read_once(store: &dyn Store, config: &PollerConfig, query: Option<&DlqQuery>) -> Read {
    let mut round_trips = 1;
    let control = match tokio::time::timeout(
        config.timeout,
        store.control_read(&config.queues, config.audit_rows),
    )
    .await
    {
        Ok(Ok(read)) => Ok(read),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!(
            "no answer within {} ms",
            config.timeout.as_millis()
        )),
    };
    let page = match (query, &control) {
        (Some(query), Ok(_)) => {
            let (page, trips) = read_page(store, config.timeout, query).await;
            round_trips += trips;
            Some(page)
        }
        _ => None,
    };
    Read {
        control,
        page,
        round_trips,
    }
}

/// The page, and the round trips it took: one per partition stepped through, one for the count.
async fn read_page(store: &dyn Store, timeout: Duration, query: &DlqQuery) -> (DlqPageView, u32) {
    let mut round_trips = 0;
    let mut view = DlqPageView {
        query: query.clone(),
        read_at_ms: store.now_ms(),
        entries: Vec::new(),
        next: None,
        matching: None,
        error: None,
        groups: None,
    };
    let queue = match QueueName::new(&query.queue) {
        Ok(queue) => queue,
        Err(error) => {
            view.error = Some(error.to_string());
            return (view, round_trips);
        }
    };
    let page = store.failed_page(&queue, query.set, &query.filter, &query.cursor, query.limit);
    match tokio::time::timeout(timeout, page).await {
        Ok(Ok(page)) => {
            round_trips += u32::from(page.steps);
            view.entries = page.entries;
            view.next = page.next;
        }
        Ok(Err(error)) => {
            round_trips += 1;
            view.error = Some(error.to_string());
        }
        Err(_) => {
            round_trips += 1;
            view.error = Some(format!("no answer within {} ms", timeout.as_millis()));
        }
    }
    // Counting under field filters or a text search is a scan: left to the plan (which counts
    // exactly) and to grouping (bounded steps across refreshes).
    if !query.filter.has_field_filters() {
        round_trips += 1;
        let count = store.failed_count(&queue, query.set, &query.filter);
        if let Ok(Ok(n)) = tokio::time::timeout(timeout, count).await {
            view.matching = Some(n);
        }
    }
    (view, round_trips)
}

/// The DLQ browser's grouping between refreshes: the pass under way and the last one done.
#[derive(Debug, Clone, Default)]
pub struct GroupScan {
    /// What is grouped: a new queue, set or filter starts over.
    of: Option<(String, FailedSet, DlqFilter)>,
    /// Where the pass under way continues; `None` before it starts.
    cursor: Option<DlqCursor>,
    current: DlqGroupsView,
    /// The last pass that walked the whole set.
    done: Option<DlqGroupsView>,
}

impl GroupScan {
    /// The counts to show: the last finished pass, else the first one so far.
    pub fn view(&self) -> Option<DlqGroupsView> {
        self.of.as_ref()?;
        let mut view = self.done.clone().unwrap_or_else(|| self.current.clone());
        view.error.clone_from(&self.current.error);
        Some(view)
    }
}

/// Up to `GROUP_STEPS` bounded grouping steps of `query`'s set, each under the timeout, carried
/// on from where the last refresh left `scan`; returns the round trips taken.
pub async fn read_groups(
    store: &dyn Store,
    timeout: Duration,
    query: &DlqQuery,
    scan: &mut GroupScan,
) -> u32 {
    let of = (query.queue.clone(), query.set, query.filter.clone());
    if scan.of.as_ref() != Some(&of) {
        *scan = GroupScan {
            of: Some(of),
            ..GroupScan::default()
        };
    }
    let queue = match crate::model::QueueName::new(&query.queue) {
        Ok(queue) => queue,
        Err(error) => {
            scan.current.error = Some(error.to_string());
            return 0;
        }
    };
    let mut trips = 0;
    while trips < GROUP_STEPS {
        let cursor = if let Some(cursor) = scan.cursor.take() {
            cursor
        } else {
            scan.current = DlqGroupsView {
                bucket_ms: GROUP_BUCKET_MS,
                started_ms: store.now_ms(),
                ..DlqGroupsView::default()
            };
            DlqCursor::start()
        };
        trips += 1;
        let step = store.failed_groups(&queue, query.set, &query.filter, GROUP_BUCKET_MS, &cursor);
        let step = match tokio::time::timeout(timeout, step).await {
            Ok(Ok(step)) => step,
            Ok(Err(error)) => {
                scan.current.error = Some(error.to_string());
                scan.cursor = Some(cursor);
                break;
            }
            Err(_) => {
                scan.current.error = Some(format!("no answer within {} ms", timeout.as_millis()));
                scan.cursor = Some(cursor);
                break;
            }
        };
        scan.current.error = None;
        scan.current.examined += step.examined;
        merge_groups(&mut scan.current.groups, step.groups);
        if step.next.is_none() {
            scan.current.complete = true;
            scan.current.finished_ms = Some(store.now_ms());
            scan.done = Some(scan.current.clone());
            // The next refresh starts a new pass; this one has its answer.
            break;
        }
        scan.cursor = step.next;
    }
    trips
}

/// Turns reads into snapshots: freshness, rates, history.
pub struct Builder {
    pub config: PollerConfig,
    pub status: SourceStatus,
    section: Option<StoreSection>,
    page: Option<DlqPageView>,
    history: RingHistory,
    beats: HashMap<String, BeatRates>,
    version: u64,
    /// The latest SLO figures, when an SLO source feeds this poller.
    pub slo: Option<Arc<crate::sources::slo::SloSection>>,
    mutt: Option<MuttSection>,
    mutt_page: Option<MuttPage>,
    /// The DLQ browser's grouping, carried across refreshes.
    pub groups: GroupScan,
}

/// A worker's last heartbeat and the rates its last two distinct beats gave.
#[derive(Debug, Clone, Copy, Default)]
struct BeatRates {
    beat: WorkerBeat,
    ingested: f64,
    delivered: f64,
    failed: f64,
    /// The interval between the two beats the rates come from.
    interval_ms: i64,
    known: bool,
}

#[derive(Debug, Default)]
struct RingHistory {
    points: std::collections::VecDeque<Point>,
}

#[derive(Debug, Clone, Copy)]
struct Point {
    at_ms: i64,
    depth: u64,
    delivered_per_s: u64,
    error_permille: u64,
    dlq: u64,
}

impl Builder {
    pub fn new(config: PollerConfig, backend: &str, now: i64) -> Self {
        let status = SourceStatus {
            name: backend.to_owned(),
            address: config.target.address.clone(),
            freshness: Freshness::Connecting,
            last_ok_ms: None,
            failing_since_ms: None,
            last_error: None,
            consecutive_failures: 0,
            next_read_ms: now,
            interval_ms: config.interval.as_millis() as u64,
            round_trips: 0,
            refused: false,
        };
        Self {
            config,
            status,
            section: None,
            page: None,
            history: RingHistory::default(),
            beats: HashMap::new(),
            version: 0,
            slo: None,
            mutt: None,
            mutt_page: None,
            groups: GroupScan::default(),
        }
    }

    /// Fold one read in.
    pub fn apply(&mut self, read: Read, query: Option<&DlqQuery>, now: i64) {
        self.version += 1;
        self.status.round_trips = read.round_trips;
        match read.control {
            Ok(control) => {
                self.record_ok(now);
                let section = self.section_from(control, now);
                self.section = Some(section);
                // A page for a query the browser has since left is not shown.
                self.page = read.page.filter(|p| Some(&p.query) == query);
                if let Some(page) = self.page.as_mut().filter(|p| p.query.grouped) {
                    page.groups = self.groups.view();
                }
            }
            Err(error) => {
                self.record_failure(error, now);
                if query.is_none() {
                    self.page = None;
                }
            }
        }
    }

    /// Fold one read of a MUTT deployment in.
    pub fn apply_mutt(&mut self, read: MuttRead, query: Option<MuttPageQuery>, now: i64) {
        self.version += 1;
        self.status.round_trips = read.round_trips;
        match read.result {
            Ok((section, page)) => {
                self.record_ok(now);
                self.mutt = Some(section);
                self.mutt_page = page.filter(|p| {
                    query.is_some_and(|q| q.dlq.as_str() == p.dlq && q.offset == p.offset)
                });
            }
            Err(error) => {
                self.record_failure(error, now);
                self.status.refused = read.permanent;
                if query.is_none() {
                    self.mutt_page = None;
                }
            }
        }
    }

    fn record_ok(&mut self, now: i64) {
        self.status.refused = false;
        self.status.freshness = Freshness::Fresh;
        self.status.last_ok_ms = Some(now);
        self.status.failing_since_ms = None;
        self.status.last_error = None;
        self.status.consecutive_failures = 0;
    }

    fn record_failure(&mut self, error: String, now: i64) {
        self.status.refused = false;
        self.status.consecutive_failures += 1;
        self.status.failing_since_ms.get_or_insert(now);
        self.status.last_error = Some(error);
        self.status.freshness = if self.status.last_ok_ms.is_none() {
            Freshness::Connecting
        } else if self.status.consecutive_failures >= self.config.stale_after {
            Freshness::Stale
        } else {
            Freshness::Lagging
        };
    }

    /// The pause before the next read: the interval, or a growing backoff with jitter while
    /// reads fail.
    pub fn next_wait(&self) -> Duration {
        let failures = self.status.consecutive_failures;
        if failures == 0 {
            return self.config.interval;
        }
        let factor = 1u32 << (failures - 1).min(3);
        let base = self.config.interval.saturating_mul(factor);
        let jitter = base.mul_f64(fastrand::f64() * 0.2);
        (base + jitter).min(Duration::from_secs(10))
    }

    pub fn snapshot(&self, now: i64) -> Snapshot {
        let mut section = self.section.clone();
        if let Some(section) = section.as_mut() {
            section.history = self.history.export();
        }
        Snapshot {
            version: self.version,
            taken_at_ms: now,
            target: self.config.target.clone(),
            sources: vec![self.status.clone()],
            store: section,
            dlq_page: self.page.clone(),
            slo: self.slo.clone(),
            mutt: self.mutt.clone(),
            mutt_page: self.mutt_page.clone(),
        }
    }

    // One figure after another, in the order the snapshot lists them.
    #[allow(clippy::too_many_lines)]
    fn section_from(&mut self, read: ControlRead, now: i64) -> StoreSection {
        let config: HashMap<&str, &str> = read
            .config
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let threshold = |queue: &QueueName, which: Threshold| {
            config
                .get(which.config_key(queue).as_str())
                .and_then(|v| v.parse::<u64>().ok())
        };
        let queues: Vec<QueueView> = read
            .stats
            .queues
            .iter()
            .map(|stats| {
                let warn_at = threshold(&stats.queue, Threshold::Warn);
                let shed_at = threshold(&stats.queue, Threshold::Shed);
                QueueView {
                    over_warn: warn_at.is_some_and(|t| stats.depth > t),
                    over_shed: shed_at.is_some_and(|t| stats.depth > t),
                    warn_at,
                    shed_at,
                    stats: stats.clone(),
                }
            })
            .collect();
        let mut breakers: Vec<BreakerView> = read
            .breakers
            .iter()
            .map(|(channel, breaker)| {
                let mut breaker = breaker.clone();
                breaker.tick(&self.config.breaker, now);
                let (owner, reason) = match breaker.last_transition.as_ref().map(|t| &t.cause) {
                    Some(
                        TransitionCause::Forced { owner, reason }
                        | TransitionCause::Disabled { owner, reason }
                        | TransitionCause::Reset { owner, reason },
                    ) => (Some(owner.clone()), Some(reason.clone())),
                    _ => (None, None),
                };
                BreakerView {
                    channel: channel.clone(),
                    state: breaker.state,
                    failure_rate: breaker.failure_rate(&self.config.breaker, now),
                    threshold: self.config.breaker.failure_rate_threshold,
                    time_in_state_ms: breaker.time_in_state(now).as_millis() as u64,
                    remaining_ms: breaker.remaining(now).map(|d| d.as_millis() as u64),
                    not_permitted: breaker.not_permitted,
                    transitions: breaker.transitions,
                    owner,
                    reason,
                    window_ms: self.config.breaker.window_ms,
                }
            })
            .collect();
        breakers.sort_by_key(BreakerView::sort_key);
        let flags = &read.stats.flags;
        let active = |name: &str| {
            flags
                .iter()
                .find(|(n, s)| n == name && !s.is_expired(now))
                .map(|(_, s)| s.clone())
        };
        let shedding_flag = active(&Flag::SheddingMode.name());
        let shedding = shedding_flag
            .as_ref()
            .and_then(|s| ShedMode::parse(&s.value))
            .unwrap_or_default();
        let channel_stops = flags
            .iter()
            .filter(|(_, s)| !s.is_expired(now))
            .filter_map(|(name, s)| match Flag::from_name(name) {
                Some(Flag::EmergencyStop(Some(channel))) => Some((channel, s.clone())),
                _ => None,
            })
            .collect();
        let workers = self.workers(&read.workers, now);
        // A partition's cap can only have cut the read when the read holds at least that many.
        let alerts_capped = read.alerts.len() >= crate::store::CONTROL_ALERTS;
        let mut rates = self.rates(&workers);
        let dlq_total: u64 = queues.iter().map(|q| q.stats.dlq).sum();
        rates.dlq_growth_per_min = self.history.growth_per_min(now, dlq_total);
        self.history.push(
            Point {
                at_ms: now,
                depth: queues.iter().map(|q| q.stats.depth).sum(),
                delivered_per_s: rates.delivered_per_s.map_or(0, |r| r.round() as u64),
                error_permille: rates.error_ratio.map_or(0, |r| (r * 1000.0).round() as u64),
                dlq: dlq_total,
            },
            HISTORY_POINTS,
        );
        StoreSection {
            read_at_ms: read.stats.read_at_ms,
            overrides: overrides_from(flags, &read.breakers, now),
            emergency_stop: active(&Flag::EmergencyStop(None).name()),
            channel_stops,
            shedding,
            shedding_flag,
            queues,
            breakers,
            audit: read.audit,
            workers,
            rates,
            history: History::default(),
            alerting: crate::sources::snapshot::AlertingView::build(
                read.silences,
                read.alerts,
                &self.config.rules,
                alerts_capped,
                now,
            ),
        }
    }

    fn workers(&mut self, beats: &[(String, WorkerBeat)], now: i64) -> WorkersView {
        let live_window = self.config.heartbeat_interval.as_millis() as i64 * LIVE_BEATS;
        let mut view = WorkersView::default();
        let mut seen = HashMap::with_capacity(beats.len());
        for (id, beat) in beats {
            let age = now.saturating_sub(beat.at_ms).max(0);
            let live = age <= live_window;
            if live {
                view.live += 1;
                if beat.role.consumes() {
                    view.live_consumers += 1;
                }
            } else {
                view.silent += 1;
            }
            let age_ms = age as u64;
            view.newest_beat_age_ms =
                Some(view.newest_beat_age_ms.map_or(age_ms, |a| a.min(age_ms)));
            view.list.push(WorkerRow {
                id: id.clone(),
                role: beat.role,
                beat_age_ms: age_ms,
                uptime_ms: now.saturating_sub(beat.started_ms).max(0) as u64,
                live,
            });
            let mut entry = self.beats.get(id).copied().unwrap_or(BeatRates {
                beat: *beat,
                ..BeatRates::default()
            });
            let dt = beat.at_ms - entry.beat.at_ms;
            if dt > 0 && beat.started_ms == entry.beat.started_ms {
                let per_s =
                    |now: u64, before: u64| now.saturating_sub(before) as f64 * 1000.0 / dt as f64;
                entry.ingested = per_s(beat.ingested, entry.beat.ingested);
                entry.delivered = per_s(beat.delivered, entry.beat.delivered);
                entry.failed = per_s(beat.failed, entry.beat.failed);
                entry.interval_ms = dt;
                entry.known = true;
            }
            entry.beat = *beat;
            if !live {
                entry.known = false;
            }
            seen.insert(id.clone(), entry);
        }
        self.beats = seen;
        view
    }

    fn rates(&self, workers: &WorkersView) -> Rates {
        let known: Vec<&BeatRates> = self.beats.values().filter(|b| b.known).collect();
        if known.is_empty() {
            // Live workers without two beats yet: unknown. No live worker at all: nothing flows.
            return if workers.live == 0 && !self.beats.is_empty() {
                Rates {
                    ingested_per_s: Some(0.0),
                    delivered_per_s: Some(0.0),
                    failed_per_s: Some(0.0),
                    ..Rates::default()
                }
            } else {
                Rates::default()
            };
        }
        let ingested: f64 = known.iter().map(|b| b.ingested).sum();
        let delivered: f64 = known.iter().map(|b| b.delivered).sum();
        let failed: f64 = known.iter().map(|b| b.failed).sum();
        Rates {
            ingested_per_s: Some(ingested),
            delivered_per_s: Some(delivered),
            failed_per_s: Some(failed),
            error_ratio: (delivered + failed > 0.0).then(|| failed / (delivered + failed)),
            dlq_growth_per_min: None,
            window_ms: known
                .iter()
                .map(|b| u64::try_from(b.interval_ms).unwrap_or(0))
                .max(),
        }
    }
}

impl RingHistory {
    fn push(&mut self, point: Point, cap: usize) {
        if self.points.len() == cap {
            self.points.pop_front();
        }
        self.points.push_back(point);
    }

    /// DLQ change per minute against the oldest point of the last minute.
    fn growth_per_min(&self, now: i64, dlq: u64) -> Option<f64> {
        let since = now - 60_000;
        let oldest = self.points.iter().find(|p| p.at_ms >= since)?;
        let dt = now - oldest.at_ms;
        (dt >= 1_000).then(|| (dlq as f64 - oldest.dlq as f64) * 60_000.0 / dt as f64)
    }

    fn export(&self) -> History {
        History {
            depth: self.points.iter().map(|p| p.depth).collect(),
            delivered_per_s: self.points.iter().map(|p| p.delivered_per_s).collect(),
            error_permille: self.points.iter().map(|p| p.error_permille).collect(),
            dlq: self.points.iter().map(|p| p.dlq).collect(),
            at_ms: self.points.iter().map(|p| p.at_ms).collect(),
        }
    }
}
