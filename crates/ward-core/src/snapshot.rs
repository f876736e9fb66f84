//! The control room's one state model: an owned, cloneable, serialisable `Snapshot` that the TUI
//! draws, the wall layout enlarges and headless output prints. Every store figure sits in a
//! section stamped with the source it came from and when it was read.

use serde::Serialize;

use crate::engine::breaker::{BreakerState, FailureRate};
use crate::engine::overrides::Override;
use crate::engine::slo::SloFigures;
use crate::model::{
    AuditEntry, DlqCursor, DlqEntry, DlqFilter, DlqGroup, FailedSet, FlagState, QueueStats,
    ShedMode,
};

/// Everything the control room shows at one instant.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Snapshot {
    /// Bumped on every change, so the renderer can skip identical frames.
    pub version: u64,
    /// When this snapshot was built (the clock the ages below are measured against).
    pub taken_at_ms: i64,
    pub target: Target,
    pub sources: Vec<SourceStatus>,
    /// The last good read of the store; kept (and dimmed) while the store is unreachable.
    pub store: Option<StoreSection>,
    /// The DLQ page the browser asked for, if it is open.
    pub dlq_page: Option<DlqPageView>,
    /// Service level objectives, when a source for them is configured.
    pub slo: Option<std::sync::Arc<SloSection>>,
    /// A MUTT deployment's own figures (`--profile mutt`), in place of `store`: MUTT keeps no
    /// leases, schedules, heartbeat totals or operator flags, so none is shown as 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutt: Option<crate::model::mutt::MuttSection>,
    /// The MUTT DLQ page the browser asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutt_page: Option<crate::model::mutt::MuttPage>,
}

impl Snapshot {
    /// Whether the deployment was read (Ward's store or MUTT's keys).
    pub fn attached(&self) -> bool {
        self.store.is_some() || self.mutt.is_some()
    }
}

/// The deployment the control room is attached to.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Target {
    /// Shown in the header and every confirm dialog.
    pub label: String,
    /// `memory` or `redis`.
    pub backend: String,
    /// The key layout read: `mutt` for an existing MUTT deployment; absent means `ward`.
    #[serde(default, skip_serializing_if = "crate::model::Profile::is_ward")]
    pub profile: crate::model::Profile,
    /// Where the store is (password redacted).
    pub address: String,
    /// Why actions are refused, when they are.
    pub read_only: Option<String>,
}

/// How a source is doing.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Freshness {
    /// Never read successfully yet.
    Connecting,
    Fresh,
    /// Some reads missed: figures are dimmed.
    Lagging,
    /// Too many reads missed: the STALE banner.
    Stale,
}

/// One source's health, as the status bar and the diagnostic screen show it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct SourceStatus {
    pub name: String,
    pub address: String,
    pub freshness: Freshness,
    pub last_ok_ms: Option<i64>,
    /// The first failure of the current run of failures (the STALE banner's "since").
    pub failing_since_ms: Option<i64>,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
    /// When the next read is due.
    pub next_read_ms: i64,
    pub interval_ms: u64,
    /// Round trips the last read took.
    pub round_trips: u32,
    /// The last error is a refusal (a password, a key of the wrong type: the settings), not an
    /// outage: asking again will not help.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refused: bool,
}

impl SourceStatus {
    pub fn age_ms(&self, now_ms: i64) -> Option<u64> {
        self.last_ok_ms
            .map(|at| u64::try_from(now_ms.saturating_sub(at)).unwrap_or(0))
    }
}

/// Everything read from the store in one round trip, with derived rates and history.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct StoreSection {
    pub read_at_ms: i64,
    pub queues: Vec<QueueView>,
    pub breakers: Vec<BreakerView>,
    pub overrides: Vec<Override>,
    pub audit: Vec<AuditEntry>,
    pub workers: WorkersView,
    pub rates: Rates,
    pub emergency_stop: Option<FlagState>,
    /// Per-channel stops, by channel.
    pub channel_stops: Vec<(String, FlagState)>,
    pub shedding: ShedMode,
    pub shedding_flag: Option<FlagState>,
    pub history: History,
    /// Silences, and the alerts seen lately with what holds each back.
    #[serde(default)]
    pub alerting: AlertingView,
}

/// Silences and the alerts they (and inhibition) hold back, as last read.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct AlertingView {
    /// Active (ending soonest first), then pending, then expired (latest end first).
    pub silences: Vec<SilenceRow>,
    /// Alerts seen in the last hour: firing first, then newest.
    pub alerts: Vec<AlertRow>,
    /// The newest `CONTROL_ALERTS` per partition are read: more may have been seen.
    pub alerts_capped: bool,
    pub active: usize,
    pub pending: usize,
    pub expired: usize,
    /// Active silences ending within five minutes.
    pub ending_soon: usize,
    pub firing_now: usize,
    pub silenced_now: usize,
    pub inhibited_now: usize,
}

/// Active silences ending within this long are flagged.
pub const ENDING_SOON_MS: i64 = 5 * 60_000;

/// One silence, with how many firing alerts it matches now.
#[derive(Debug, Clone, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct SilenceRow {
    pub silence: crate::model::Silence,
    pub state: crate::model::SilenceState,
    /// Firing alerts (of those read) its matchers match now.
    pub matched_now: usize,
}

/// One alert seen lately, and what holds it back now.
#[derive(Debug, Clone, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct AlertRow {
    pub alert: crate::model::SeenAlert,
    pub firing: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<crate::model::Suppression>,
}

impl AlertingView {
    /// Classify what was read at `now_ms`, with the same engine the workers use.
    pub fn build(
        silences: Vec<crate::model::Silence>,
        alerts: Vec<crate::model::SeenAlert>,
        rules: &crate::engine::suppress::Rules,
        capped: bool,
        now_ms: i64,
    ) -> Self {
        use crate::model::SilenceState;
        let suppressor =
            crate::engine::suppress::Suppressor::new(silences.clone(), rules, &alerts, now_ms);
        // Maintenance windows are listed with the silences, over their current or next opening.
        let silences: Vec<crate::model::Silence> = silences
            .into_iter()
            .chain(rules.maintenance.iter().map(|w| w.as_silence(now_ms)))
            .collect();
        let mut view = Self {
            alerts_capped: capped,
            ..Self::default()
        };
        let mut rows: Vec<AlertRow> = alerts
            .into_iter()
            .map(|alert| {
                let firing = alert.is_firing(now_ms);
                let suppressed = firing
                    .then(|| suppressor.check(&alert.fingerprint, &alert.labels, now_ms))
                    .flatten();
                AlertRow {
                    alert,
                    firing,
                    suppressed,
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            b.firing
                .cmp(&a.firing)
                .then(b.alert.last_seen_ms.cmp(&a.alert.last_seen_ms))
        });
        let mut matched: std::collections::HashMap<String, usize> =
            std::collections::HashMap::new();
        for row in rows.iter().filter(|r| r.firing) {
            view.firing_now += 1;
            for silence in suppressor.silences.matching(&row.alert.labels) {
                *matched.entry(silence.id.clone()).or_default() += 1;
            }
            for window in rules
                .maintenance
                .iter()
                .filter(|w| crate::engine::matcher::matches_all(&w.matchers, &row.alert.labels))
            {
                *matched
                    .entry(format!("maintenance:{}", window.name))
                    .or_default() += 1;
            }
            match &row.suppressed {
                Some(crate::model::Suppression::Inhibited { .. }) => view.inhibited_now += 1,
                Some(_) => view.silenced_now += 1,
                None => {}
            }
        }
        let mut silences: Vec<SilenceRow> = silences
            .into_iter()
            .map(|silence| {
                let state = silence.state(now_ms);
                match state {
                    SilenceState::Active => {
                        view.active += 1;
                        if silence.ends_at_ms - now_ms <= ENDING_SOON_MS {
                            view.ending_soon += 1;
                        }
                    }
                    SilenceState::Pending => view.pending += 1,
                    SilenceState::Expired => view.expired += 1,
                }
                SilenceRow {
                    matched_now: matched.get(&silence.id).copied().unwrap_or_default(),
                    silence,
                    state,
                }
            })
            .collect();
        silences.sort_by(|a, b| {
            a.state.cmp(&b.state).then_with(|| match a.state {
                SilenceState::Active => a.silence.ends_at_ms.cmp(&b.silence.ends_at_ms),
                SilenceState::Pending => a.silence.starts_at_ms.cmp(&b.silence.starts_at_ms),
                SilenceState::Expired => b.silence.ends_at_ms.cmp(&a.silence.ends_at_ms),
            })
        });
        view.silences = silences;
        view.alerts = rows;
        view
    }
}

impl StoreSection {
    pub fn dlq_total(&self) -> u64 {
        self.queues.iter().map(|q| q.stats.dlq).sum()
    }

    pub fn dead_total(&self) -> u64 {
        self.queues.iter().map(|q| q.stats.dead).sum()
    }

    pub fn queue(&self, name: &str) -> Option<&QueueView> {
        self.queues.iter().find(|q| q.stats.queue.as_str() == name)
    }
}

/// One queue with its thresholds.
#[derive(Debug, Clone, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct QueueView {
    pub stats: QueueStats,
    pub warn_at: Option<u64>,
    pub shed_at: Option<u64>,
    /// Deeper than its shed threshold.
    pub over_shed: bool,
    pub over_warn: bool,
}

/// A breaker as the Breakers view lists it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct BreakerView {
    pub channel: String,
    pub state: BreakerState,
    pub failure_rate: FailureRate,
    /// The rate at which the breaker opens (0–1).
    pub threshold: f64,
    pub time_in_state_ms: u64,
    /// Before probing (open) or before the override ends (forced open).
    pub remaining_ms: Option<u64>,
    pub not_permitted: u64,
    pub transitions: u64,
    /// Who set an operator state, and why.
    pub owner: Option<String>,
    pub reason: Option<String>,
    /// The sliding window the failure rate and call count cover.
    #[serde(default)]
    pub window_ms: u64,
}

impl BreakerView {
    /// Rows sort error first, then volume (Hystrix's order).
    pub fn sort_key(&self) -> (u8, i64, i64) {
        let severity = match self.state {
            BreakerState::Open | BreakerState::ForcedOpen => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Closed => 2,
            BreakerState::Disabled => 3,
        };
        let (rate, calls) = match self.failure_rate {
            FailureRate::Known { rate, calls, .. } => ((rate * 1e6) as i64, i64::from(calls)),
            FailureRate::NotEnoughCalls { calls, .. } => (-1, i64::from(calls)),
        };
        (severity, -rate, -calls)
    }
}

/// The workers that write heartbeats (the dead man's switch).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct WorkersView {
    /// Heartbeat within the live window.
    pub live: usize,
    /// Live and consuming (role `all` or `workers`): an ingest-only process drains nothing.
    #[serde(default)]
    pub live_consumers: usize,
    /// Heartbeat older than the live window (a process that stopped or lost the store).
    pub silent: usize,
    /// Age of the newest heartbeat; `None` when no worker ever wrote one.
    pub newest_beat_age_ms: Option<u64>,
    pub list: Vec<WorkerRow>,
}

impl WorkersView {
    /// Live processes that only take alerts in (`ward up --role ingest`).
    pub fn live_ingest_only(&self) -> usize {
        self.live.saturating_sub(self.live_consumers)
    }

    /// `3 live` or `3 live (1 ingest-only)`.
    pub fn live_text(&self) -> String {
        match self.live_ingest_only() {
            0 => format!("{} live", self.live),
            n => format!("{} live ({n} ingest-only)", self.live),
        }
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct WorkerRow {
    pub id: String,
    #[serde(default)]
    pub role: crate::model::Role,
    pub beat_age_ms: u64,
    pub uptime_ms: u64,
    pub live: bool,
}

/// Rates over the last refresh interval, from the workers' heartbeat totals. `None`: unknown
/// (one read is not enough, or no worker reports).
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Rates {
    pub ingested_per_s: Option<f64>,
    pub delivered_per_s: Option<f64>,
    pub failed_per_s: Option<f64>,
    /// Failed ÷ (delivered + failed) over the interval.
    pub error_ratio: Option<f64>,
    /// DLQ growth per minute (negative while it drains).
    pub dlq_growth_per_min: Option<f64>,
    /// The span the rates are computed over: the workers' last heartbeat interval.
    #[serde(default)]
    pub window_ms: Option<u64>,
}

/// Short history for sparklines: one point per store read, newest last.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct History {
    pub depth: Vec<u64>,
    pub delivered_per_s: Vec<u64>,
    /// Error ratio in per mille.
    pub error_permille: Vec<u64>,
    pub dlq: Vec<u64>,
    /// When each point was read, so a sparkline can say the time it spans.
    #[serde(default)]
    pub at_ms: Vec<i64>,
}

impl History {
    /// The time the last `points` points span (0 with fewer than two).
    pub fn span_ms(&self, points: usize) -> u64 {
        let shown = &self.at_ms[self.at_ms.len().saturating_sub(points)..];
        match (shown.first(), shown.last()) {
            (Some(first), Some(last)) => u64::try_from(last - first).unwrap_or(0),
            _ => 0,
        }
    }
}

/// The order DLQ entries are listed in.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum DlqSort {
    /// Newest failure first: the store scans backwards.
    #[default]
    Newest,
    /// Oldest failure first, as the store scans (the order replay takes).
    Oldest,
    /// Most attempts first, within each page of a newest-first scan: attempt counts are not
    /// indexed, so the order covers the page, not the whole set.
    Attempts,
}

impl DlqSort {
    pub const ALL: [Self; 3] = [Self::Newest, Self::Oldest, Self::Attempts];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oldest => "oldest",
            Self::Newest => "newest",
            Self::Attempts => "attempts",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The next order (the browser's sort key cycles through them).
    #[must_use]
    pub fn next(self) -> Self {
        match self {
            Self::Newest => Self::Oldest,
            Self::Oldest => Self::Attempts,
            Self::Attempts => Self::Newest,
        }
    }

    /// Where the store's scan starts.
    pub fn start(self) -> DlqCursor {
        match self {
            Self::Oldest => DlqCursor::start(),
            Self::Newest | Self::Attempts => DlqCursor::newest(),
        }
    }

    /// The entries of a page in this order (the store gave them in scan order).
    pub fn arrange<T: std::borrow::Borrow<DlqEntry>>(self, entries: &mut [T]) {
        if self == Self::Attempts {
            // Stable: equal counts keep the scan's newest-first order.
            entries.sort_by_key(|e| std::cmp::Reverse(e.borrow().meta.attempts));
        }
    }

    /// The order as a title says it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Oldest => "oldest first",
            Self::Newest => "newest first",
            Self::Attempts => "most attempts first within this page",
        }
    }
}

/// What the DLQ browser asks for: one page of one queue's failed set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct DlqQuery {
    pub queue: String,
    pub set: FailedSet,
    pub filter: DlqFilter,
    /// Where the page starts (`DlqCursor::start()` for the first page).
    pub cursor: DlqCursor,
    pub limit: usize,
    /// Also count the whole filtered set by error class × time bucket (`DlqGroupsView`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub grouped: bool,
}

/// A page of the DLQ browser.
#[derive(Debug, Clone, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct DlqPageView {
    pub query: DlqQuery,
    pub read_at_ms: i64,
    #[serde(skip)]
    pub entries: Vec<DlqEntry>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<DlqCursor>,
    /// Entries of the whole set matching the filter, when that costs no scan (no field filter).
    pub matching: Option<u64>,
    pub error: Option<String>,
    /// The whole filtered set by error class × time bucket, when the query asks for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<DlqGroupsView>,
}

/// Counts by error class × time bucket over the whole filtered set (not the page), made by the
/// store in bounded steps across refreshes: a pass walks the set and the next one starts over.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct DlqGroupsView {
    pub bucket_ms: i64,
    /// By error class, then bucket.
    pub groups: Vec<DlqGroup>,
    /// Entries the pass examined, matching the filter or not.
    pub examined: u64,
    /// The pass walked the whole set: the counts cover every matching entry. Otherwise the
    /// first pass is still under way and they cover only the `examined` entries read so far.
    pub complete: bool,
    /// When the pass began, and when it ended.
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    /// Why the last step failed (the counts shown are older).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl DlqGroupsView {
    /// Entries counted in all groups.
    pub fn counted(&self) -> u64 {
        self.groups.iter().map(|g| g.count).sum()
    }
}

/// One objective's figures as shown: what it is, and the engine's evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct SloReading {
    pub name: String,
    pub description: String,
    pub figures: SloFigures,
    /// The fast page's burn rates over the last hour, oldest first, for the sparklines.
    pub trend: BurnTrend,
    /// When its total series was last there (read within the shortest window); while it is
    /// absent, the view shows how long ago that was.
    pub seen_at_ms: Option<i64>,
    /// What to do about its state, in a line (empty when there is nothing to do).
    #[serde(default)]
    pub next_step: String,
}

/// Burn rates over the last [`TREND_RANGE_S`], one point per column: the short (5 m) and long
/// (1 h) windows of the fast page, and the threshold they are compared with. `None` points are
/// unknown (no traffic, no series).
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct BurnTrend {
    pub short: Vec<Option<f64>>,
    pub long: Vec<Option<f64>>,
    pub threshold: f64,
}

/// The SLO part of a snapshot: the last good evaluation of every objective, kept (with its
/// time) while the source fails, and the source's last error.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct SloSection {
    /// Where the figures come from: `prometheus <url>` or `this process's counters`.
    pub source: String,
    /// When the figures below were read; `None` before the first good read.
    pub read_at_ms: Option<i64>,
    /// Why the last read failed, if it did (shown in the SLO widget, not hidden in a log).
    pub error: Option<String>,
    pub readings: Vec<SloReading>,
}

/// How far back the sparklines reach, and in how many points.
pub const TREND_RANGE_S: u64 = 3_600;
pub const TREND_POINTS: u16 = 60;
