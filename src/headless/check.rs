//! `ward check`: thresholds over one status read, as findings and a monitoring-plugin exit code
//! (0 ok, 1 warning, 2 critical, 3 unknown or unreachable).

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::Serialize;

use super::status::Status;
use crate::engine::breaker::BreakerState;
use crate::engine::slo::SloState;
use crate::sources::Freshness;

/// How bad a finding is; the worst one is the exit code.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Ok,
    /// A source could not be read: nothing can be said about it (exit 3). It ranks above ok and
    /// below any known problem, as monitoring plugins combine states: a failed SLO query must
    /// not hide an open breaker.
    Unknown,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Warning => "WARNING",
            Self::Critical => "CRITICAL",
            Self::Unknown => "UNKNOWN",
        }
    }

    /// The monitoring-plugin exit code (Nagios, Icinga, Sensu).
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Warning => 1,
            Self::Critical => 2,
            Self::Unknown => 3,
        }
    }
}

/// One reason for a non-ok check, printed as one line.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, JsonSchema)]
pub struct Finding {
    pub severity: Severity,
    /// What it is about: `source redis`, `queue delivery`, `breaker slack`, `slo ingest-success`.
    pub subject: String,
    pub message: String,
}

impl Finding {
    pub(crate) fn new(
        severity: Severity,
        subject: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity,
            subject: subject.into(),
            message: message.into(),
        }
    }

    /// `CRITICAL breaker slack: open, 62% failures over 20 calls (threshold 50%)`.
    pub fn line(&self) -> String {
        format!(
            "{} {}: {}",
            self.severity.as_str(),
            crate::model::sanitize(&self.subject),
            crate::model::sanitize(&self.message)
        )
    }
}

/// The thresholds `ward check` applies; `None` switches one off.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    pub dlq_warn: Option<u64>,
    pub dlq_crit: Option<u64>,
    /// Entries failed within the recent window (DLQ growth).
    pub dlq_recent_warn: Option<u64>,
    pub dlq_recent_crit: Option<u64>,
    /// Queue depth; a queue's own warn/shed thresholds from config apply as well.
    pub depth_warn: Option<u64>,
    pub depth_crit: Option<u64>,
    pub oldest_warn_ms: Option<u64>,
    pub oldest_crit_ms: Option<u64>,
    /// An SLO whose state cannot be decided (no traffic, absent series) is a warning.
    pub slo_unknown_warns: bool,
    /// An active silence (not a maintenance window) ending within this long warns: someone
    /// should extend it or be ready for its alerts.
    pub silences_ending_ms: Option<u64>,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            dlq_warn: None,
            dlq_crit: None,
            dlq_recent_warn: Some(1),
            dlq_recent_crit: None,
            depth_warn: None,
            depth_crit: None,
            oldest_warn_ms: Some(60_000),
            oldest_crit_ms: Some(300_000),
            slo_unknown_warns: false,
            silences_ending_ms: None,
        }
    }
}

/// The verdict: every finding, worst first, and the worst severity.
#[derive(Debug, Clone, Serialize, serde::Deserialize, JsonSchema)]
pub struct Verdict {
    pub severity: Severity,
    pub findings: Vec<Finding>,
}

impl Verdict {
    /// One line per finding; a single `OK` line when there is none.
    pub fn text(&self, status: &Status) -> String {
        let mut out = String::new();
        if self.findings.is_empty()
            && let Some(mutt) = status.snapshot.mutt.as_ref()
        {
            let _ = writeln!(
                out,
                "OK {} (MUTT) on {}: {} queued, {} in DLQs, {} live pods",
                crate::model::sanitize(&status.snapshot.target.label),
                crate::model::sanitize(&status.snapshot.target.address),
                mutt.queues.iter().map(|q| q.depth).sum::<u64>(),
                mutt.dlq_total(),
                mutt.pods.len(),
            );
        } else if self.findings.is_empty() {
            let store = status.snapshot.store.as_ref();
            let _ = writeln!(
                out,
                "OK {} on {}: {} queued, {} in the DLQ, {} breakers closed",
                crate::model::sanitize(&status.snapshot.target.label),
                crate::model::sanitize(&status.snapshot.target.address),
                store.map_or(0, |s| s.queues.iter().map(|q| q.stats.depth).sum::<u64>()),
                store.map_or(0, crate::sources::StoreSection::dlq_total),
                store.map_or(0, |s| s.breakers.len()),
            );
        }
        for finding in &self.findings {
            let _ = writeln!(out, "{}", finding.line());
        }
        out
    }
}

/// Apply `thresholds` to one status read.
pub fn evaluate(status: &Status, thresholds: &Thresholds) -> Verdict {
    let mut findings = Vec::new();
    sources(status, &mut findings);
    if let Some(store) = status.snapshot.store.as_ref() {
        queues(store, thresholds, &mut findings);
        dlq(status, store, thresholds, &mut findings);
        breakers(store, &mut findings);
        flags(store, &mut findings);
        silences(status, store, thresholds, &mut findings);
    }
    if let Some(mutt) = status.snapshot.mutt.as_ref() {
        super::mutt::findings(mutt, thresholds, &mut findings);
    }
    slos(status, thresholds, &mut findings);
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    Verdict {
        severity: findings
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::Ok),
        findings,
    }
}

fn silences(
    status: &Status,
    store: &crate::sources::StoreSection,
    thresholds: &Thresholds,
    findings: &mut Vec<Finding>,
) {
    let Some(within) = thresholds.silences_ending_ms else {
        return;
    };
    let now = status.snapshot.taken_at_ms;
    for row in &store.alerting.silences {
        let silence = &row.silence;
        let left = silence.ends_at_ms - now;
        if row.state == crate::model::SilenceState::Active
            && silence.kind == crate::model::SilenceKind::Silence
            && left <= i64::try_from(within).unwrap_or(i64::MAX)
        {
            findings.push(Finding::new(
                Severity::Warning,
                format!("silence {}", crate::model::sanitize(&silence.id)),
                format!(
                    "ends in {} ({} by {}: {}), matching {} firing alerts now",
                    crate::model::time::short_duration(left.max(0) as u64),
                    crate::model::sanitize(&crate::model::matchers_text(&silence.matchers)),
                    crate::model::sanitize(&silence.created_by),
                    crate::model::sanitize(&silence.comment),
                    row.matched_now
                ),
            ));
        }
    }
}

fn sources(status: &Status, findings: &mut Vec<Finding>) {
    for source in &status.snapshot.sources {
        let subject = format!("source {}", source.name);
        let error = source.last_error.as_deref().unwrap_or("no answer");
        match source.freshness {
            Freshness::Fresh => {}
            _ if source.refused => findings.push(Finding::new(
                Severity::Unknown,
                subject,
                format!("refused: {error}"),
            )),
            Freshness::Connecting => findings.push(Finding::new(
                Severity::Unknown,
                subject,
                format!("{} unreachable: {error}", source.address),
            )),
            Freshness::Lagging | Freshness::Stale => findings.push(Finding::new(
                Severity::Unknown,
                subject,
                format!(
                    "stale: {} reads failed, last error: {error}",
                    source.consecutive_failures
                ),
            )),
        }
    }
}

pub(crate) fn over(value: u64, warn: Option<u64>, crit: Option<u64>) -> Option<(Severity, u64)> {
    match (crit, warn) {
        (Some(c), _) if value >= c => Some((Severity::Critical, c)),
        (_, Some(w)) if value >= w => Some((Severity::Warning, w)),
        _ => None,
    }
}

fn queues(
    store: &crate::sources::StoreSection,
    thresholds: &Thresholds,
    findings: &mut Vec<Finding>,
) {
    for queue in &store.queues {
        let subject = format!("queue {}", queue.stats.queue);
        let depth = queue.stats.depth;
        // The queue's own thresholds (config or an override) come first: they are what sheds.
        let own = if queue.over_shed {
            queue
                .shed_at
                .map(|t| (Severity::Critical, t, "over its shed depth"))
        } else if queue.over_warn {
            queue
                .warn_at
                .map(|t| (Severity::Warning, t, "over its warn depth"))
        } else {
            None
        };
        let given = over(depth, thresholds.depth_warn, thresholds.depth_crit)
            .map(|(s, t)| (s, t, "at or over the threshold"));
        // Both apply: the worse one is reported.
        let flagged = match (own, given) {
            (Some(own), Some(given)) if given.0 > own.0 => Some(given),
            (own, given) => own.or(given),
        };
        if let Some((severity, limit, what)) = flagged {
            findings.push(Finding::new(
                severity,
                subject.clone(),
                format!("depth {depth} is {what} {limit}"),
            ));
        }
        if let Some(age) = queue.stats.oldest_age_ms
            && let Some((severity, limit)) =
                over(age, thresholds.oldest_warn_ms, thresholds.oldest_crit_ms)
        {
            findings.push(Finding::new(
                severity,
                subject.clone(),
                format!(
                    "oldest item waited {} s (threshold {} s)",
                    age / 1000,
                    limit / 1000
                ),
            ));
        }
        let waiting = &queue.stats.waiting_retry;
        if queue.stats.scheduled > 0
            && let Some(age) = waiting.oldest_age_ms
            && let Some((severity, limit)) =
                over(age, thresholds.oldest_warn_ms, thresholds.oldest_crit_ms)
        {
            findings.push(Finding::new(
                severity,
                subject.clone(),
                format!(
                    "{} (oldest {} s, threshold {} s)",
                    scheduled_summary(queue.stats.scheduled, waiting, store.read_at_ms),
                    age / 1000,
                    limit / 1000
                ),
            ));
        }
        // Only a consumer drains a queue: live ingest-only processes do not count.
        let workers = &store.workers;
        if depth > 0 && workers.live_consumers == 0 && !workers.list.is_empty() {
            let ingest_only = match workers.live_ingest_only() {
                0 => String::new(),
                n => format!(", {n} ingest-only live"),
            };
            findings.push(Finding::new(
                Severity::Critical,
                subject,
                format!(
                    "{depth} waiting and no live worker ({} silent{ingest_only})",
                    workers.silent
                ),
            ));
        }
    }
}

/// `42 waiting to retry or held back: slack-ops 40 (40 held), pager 2; next try in 12 s`, and
/// what part of the set the channels were counted over when not all of it.
pub fn scheduled_summary(
    scheduled: u64,
    waiting: &crate::model::ScheduledSummary,
    now_ms: i64,
) -> String {
    let channels: Vec<String> = waiting
        .channels
        .iter()
        .map(|c| {
            let name = if c.channel.is_empty() {
                "not routed yet"
            } else {
                &c.channel
            };
            let held = c.count - c.retrying;
            if held > 0 {
                format!("{name} {} ({held} held)", c.count)
            } else {
                format!("{name} {}", c.count)
            }
        })
        .collect();
    let next = match waiting.next_due_ms {
        Some(due) if due > now_ms => format!("; next try in {} s", (due - now_ms + 999) / 1000),
        Some(_) => "; next try due now".to_owned(),
        None => String::new(),
    };
    let over = if waiting.read < scheduled {
        format!(" (channels over the {} due soonest)", waiting.read)
    } else {
        String::new()
    };
    format!(
        "{scheduled} waiting to retry or held back: {}{over}{next}",
        channels.join(", ")
    )
}

fn dlq(
    status: &Status,
    store: &crate::sources::StoreSection,
    thresholds: &Thresholds,
    findings: &mut Vec<Finding>,
) {
    for queue in &store.queues {
        let size = queue.stats.dlq;
        if let Some((severity, limit)) = over(size, thresholds.dlq_warn, thresholds.dlq_crit) {
            findings.push(Finding::new(
                severity,
                format!("dlq {}", queue.stats.queue),
                format!("{size} entries (threshold {limit})"),
            ));
        }
    }
    for recent in &status.dlq_recent {
        let subject = format!("dlq {}", recent.queue);
        let minutes = recent.window_ms / 60_000;
        match recent.failed {
            Some(n) => {
                if let Some((severity, limit)) =
                    over(n, thresholds.dlq_recent_warn, thresholds.dlq_recent_crit)
                {
                    findings.push(Finding::new(
                        severity,
                        subject,
                        format!("growing: {n} entries failed in the last {minutes} min (threshold {limit})"),
                    ));
                }
            }
            None => findings.push(Finding::new(
                Severity::Unknown,
                subject,
                "its recent failures could not be counted",
            )),
        }
    }
}

fn breakers(store: &crate::sources::StoreSection, findings: &mut Vec<Finding>) {
    for breaker in &store.breakers {
        let subject = format!("breaker {}", breaker.channel);
        let rate = match breaker.failure_rate {
            crate::engine::breaker::FailureRate::Known { rate, calls, .. } => format!(
                ", {:.0}% failures over {calls} calls (threshold {:.0}%)",
                rate * 100.0,
                breaker.threshold * 100.0
            ),
            crate::engine::breaker::FailureRate::NotEnoughCalls { .. } => String::new(),
        };
        let by = |what: &str| {
            format!(
                "{what} by {}: {}",
                breaker.owner.as_deref().unwrap_or("an operator"),
                breaker.reason.as_deref().unwrap_or("no reason given")
            )
        };
        match breaker.state {
            BreakerState::Closed => {}
            BreakerState::Open => findings.push(Finding::new(
                Severity::Critical,
                subject,
                format!("open{rate}"),
            )),
            BreakerState::HalfOpen => findings.push(Finding::new(
                Severity::Warning,
                subject,
                format!("half-open, probing{rate}"),
            )),
            BreakerState::ForcedOpen => {
                findings.push(Finding::new(Severity::Warning, subject, by("forced open")));
            }
            BreakerState::Disabled => {
                findings.push(Finding::new(Severity::Warning, subject, by("disabled")));
            }
        }
    }
}

fn flags(store: &crate::sources::StoreSection, findings: &mut Vec<Finding>) {
    if let Some(stop) = &store.emergency_stop {
        findings.push(Finding::new(
            Severity::Critical,
            "emergency stop",
            format!("all sending stopped by {}: {}", stop.owner, stop.reason),
        ));
    }
    for (channel, stop) in &store.channel_stops {
        findings.push(Finding::new(
            Severity::Warning,
            format!("emergency stop {channel}"),
            format!("sending stopped by {}: {}", stop.owner, stop.reason),
        ));
    }
    if store.shedding != crate::model::ShedMode::Off {
        let who = store
            .shedding_flag
            .as_ref()
            .map(|f| format!(" by {}: {}", f.owner, f.reason))
            .unwrap_or_default();
        findings.push(Finding::new(
            Severity::Warning,
            "shedding",
            format!("load shedding is on ({}){who}", store.shedding.as_str()),
        ));
    }
}

fn slos(status: &Status, thresholds: &Thresholds, findings: &mut Vec<Finding>) {
    let Some(section) = status.snapshot.slo.as_ref() else {
        return;
    };
    if section.read_at_ms.is_none() {
        findings.push(Finding::new(
            Severity::Unknown,
            format!("source {}", section.source),
            section
                .error
                .clone()
                .unwrap_or_else(|| "not read".to_owned()),
        ));
        return;
    }
    if let Some(error) = &section.error {
        findings.push(Finding::new(
            Severity::Unknown,
            format!("source {}", section.source),
            error.clone(),
        ));
    }
    for reading in &section.readings {
        let figures = &reading.figures;
        let severity = match figures.state {
            SloState::Warning => Severity::Warning,
            SloState::Critical => Severity::Critical,
            SloState::Unknown if thresholds.slo_unknown_warns => Severity::Warning,
            SloState::Ok | SloState::Unknown => continue,
        };
        let burn = figures
            .windows
            .first()
            .and_then(|w| w.burn_rate)
            .map_or_else(|| "unknown".to_owned(), |b| format!("{b:.1}"));
        let remaining = figures
            .budget_remaining
            .map_or_else(|| "unknown".to_owned(), |r| format!("{:.0}%", r * 100.0));
        // Figures over less data than their window say so.
        let data = figures
            .period_covered_s
            .map(|s| {
                format!(
                    " (from {} of data)",
                    crate::model::time::short_duration(s * 1_000)
                )
            })
            .unwrap_or_default();
        let next = if reading.next_step.is_empty() {
            String::new()
        } else {
            format!("; {}", reading.next_step)
        };
        findings.push(Finding::new(
            severity,
            format!("slo {}", reading.name),
            format!(
                "{}: burn rate {burn} over 5m, error budget remaining {remaining}{data}{next}",
                figures.state.as_str()
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::engine::slo::{
        Measurement, Measurements, Objective, Period, WINDOWS_S, evaluate as figures,
    };
    use crate::model::{QueueName, QueueStats};
    use crate::sources::slo::{BurnTrend, SloReading, SloSection};
    use crate::sources::snapshot::{QueueView, Snapshot, SourceStatus, StoreSection};

    fn status(store: Option<StoreSection>, slo: Option<SloSection>) -> Status {
        let source = SourceStatus {
            name: "redis".into(),
            address: "redis://127.0.0.1:6379".into(),
            freshness: if store.is_some() {
                Freshness::Fresh
            } else {
                Freshness::Connecting
            },
            last_ok_ms: None,
            failing_since_ms: None,
            last_error: store.is_none().then(|| "connection refused".to_owned()),
            consecutive_failures: 0,
            next_read_ms: 0,
            interval_ms: 1_000,
            round_trips: 1,
            refused: false,
        };
        Status::new(
            Snapshot {
                sources: vec![source],
                store,
                slo: slo.map(Arc::new),
                ..Snapshot::default()
            },
            Vec::new(),
        )
    }

    fn queue(depth: u64, oldest_ms: Option<u64>, shed_at: Option<u64>) -> QueueView {
        QueueView {
            stats: QueueStats {
                depth,
                oldest_age_ms: oldest_ms,
                ..QueueStats::empty(QueueName::delivery())
            },
            warn_at: None,
            shed_at,
            over_shed: shed_at.is_some_and(|t| depth > t),
            over_warn: false,
        }
    }

    fn reading(bad: f64, total: f64) -> SloReading {
        let objective = Objective {
            target: 0.99,
            period: Period::Days30,
        };
        let measurement = if total == 0.0 {
            Measurement::NoTraffic
        } else {
            Measurement::Events { bad, total }
        };
        let measured = Measurements {
            windows: [measurement; WINDOWS_S.len()],
            period: measurement,
            history_s: None,
        };
        SloReading {
            name: "delivery-success".into(),
            description: String::new(),
            figures: figures(&objective, &measured),
            trend: BurnTrend::default(),
            seen_at_ms: Some(0),
            next_step: String::new(),
        }
    }

    fn slo(readings: Vec<SloReading>, read: bool, error: Option<&str>) -> SloSection {
        SloSection {
            source: "prometheus http://127.0.0.1:9090".into(),
            read_at_ms: read.then_some(1),
            error: error.map(str::to_owned),
            readings,
        }
    }

    #[test]
    fn nothing_to_say_is_ok_and_an_unreachable_store_is_unknown() {
        let ok = evaluate(
            &status(Some(StoreSection::default()), None),
            &Thresholds::default(),
        );
        assert_eq!(ok.severity, Severity::Ok);
        assert!(ok.findings.is_empty());

        let down = evaluate(&status(None, None), &Thresholds::default());
        assert_eq!(down.severity, Severity::Unknown);
        assert_eq!(down.severity.exit_code(), 3);
        assert_eq!(
            down.findings[0].line(),
            "UNKNOWN source redis: redis://127.0.0.1:6379 unreachable: connection refused"
        );
    }

    #[test]
    fn work_waiting_to_retry_is_reported_by_channel_with_its_next_try() {
        use crate::model::{ScheduledChannel, ScheduledSummary};
        let mut waiting = queue(0, None, None);
        waiting.stats.scheduled = 42;
        waiting.stats.waiting_retry = ScheduledSummary {
            read: 42,
            next_due_ms: Some(12_000),
            oldest_age_ms: Some(400_000),
            retrying: 2,
            channels: vec![
                ScheduledChannel {
                    channel: "slack-ops".into(),
                    count: 40,
                    retrying: 0,
                    next_due_ms: 12_000,
                    oldest_age_ms: 400_000,
                },
                ScheduledChannel {
                    channel: "pager".into(),
                    count: 2,
                    retrying: 2,
                    next_due_ms: 30_000,
                    oldest_age_ms: 20_000,
                },
            ],
        };
        let store = StoreSection {
            read_at_ms: 1_000,
            queues: vec![waiting],
            ..StoreSection::default()
        };
        let verdict = evaluate(&status(Some(store), None), &Thresholds::default());
        let lines: Vec<String> = verdict.findings.iter().map(Finding::line).collect();
        assert_eq!(
            lines,
            [
                "CRITICAL queue delivery: 42 waiting to retry or held back: slack-ops 40 (40 held), \
              pager 2; next try in 11 s (oldest 400 s, threshold 300 s)"
            ]
        );
    }

    #[test]
    fn a_queue_over_its_own_shed_depth_is_critical_and_old_work_warns() {
        let store = StoreSection {
            queues: vec![queue(600, Some(90_000), Some(500))],
            ..StoreSection::default()
        };
        let verdict = evaluate(&status(Some(store), None), &Thresholds::default());
        let lines: Vec<String> = verdict.findings.iter().map(Finding::line).collect();
        assert_eq!(
            lines,
            [
                "CRITICAL queue delivery: depth 600 is over its shed depth 500",
                "WARNING queue delivery: oldest item waited 90 s (threshold 60 s)",
            ]
        );
        let relaxed = Thresholds {
            oldest_warn_ms: None,
            ..Thresholds::default()
        };
        let store = StoreSection {
            queues: vec![queue(600, Some(90_000), None)],
            ..StoreSection::default()
        };
        assert_eq!(
            evaluate(&status(Some(store), None), &relaxed).severity,
            Severity::Ok
        );

        // A queue's own warn depth does not hide a worse command-line threshold.
        let mut warned = queue(10_000, None, None);
        warned.warn_at = Some(100);
        warned.over_warn = true;
        let store = StoreSection {
            queues: vec![warned],
            ..StoreSection::default()
        };
        let strict = Thresholds {
            depth_crit: Some(5_000),
            ..Thresholds::default()
        };
        assert_eq!(
            evaluate(&status(Some(store), None), &strict).findings[0].line(),
            "CRITICAL queue delivery: depth 10000 is at or over the threshold 5000"
        );
    }

    #[test]
    fn waiting_work_with_only_ingest_only_processes_live_is_critical() {
        use crate::model::Role;
        use crate::sources::snapshot::{WorkerRow, WorkersView};
        let row = |id: &str, role| WorkerRow {
            id: id.to_owned(),
            role,
            beat_age_ms: 500,
            uptime_ms: 60_000,
            live: true,
        };
        let section = |workers| StoreSection {
            queues: vec![queue(40, None, None)],
            workers,
            ..StoreSection::default()
        };
        let ingest_only = WorkersView {
            live: 1,
            live_consumers: 0,
            silent: 0,
            newest_beat_age_ms: Some(500),
            list: vec![row("front:1:aa", Role::Ingest)],
        };
        let lines: Vec<String> = evaluate(
            &status(Some(section(ingest_only)), None),
            &Thresholds::default(),
        )
        .findings
        .iter()
        .map(Finding::line)
        .collect();
        assert_eq!(
            lines,
            [
                "CRITICAL queue delivery: 40 waiting and no live worker (0 silent, 1 ingest-only live)"
            ]
        );
        let with_a_consumer = WorkersView {
            live: 2,
            live_consumers: 1,
            silent: 0,
            newest_beat_age_ms: Some(500),
            list: vec![
                row("front:1:aa", Role::Ingest),
                row("back:2:bb", Role::Workers),
            ],
        };
        assert_eq!(
            evaluate(
                &status(Some(section(with_a_consumer.clone())), None),
                &Thresholds::default()
            )
            .severity,
            Severity::Ok
        );
        assert_eq!(with_a_consumer.live_text(), "2 live (1 ingest-only)");
    }

    #[test]
    fn a_known_problem_outranks_an_unreadable_source() {
        let store = StoreSection {
            queues: vec![queue(600, None, Some(500))],
            ..StoreSection::default()
        };
        let half_read = slo(vec![reading(0.0, 100.0)], true, Some("latency: timeout"));
        let verdict = evaluate(
            &status(Some(store), Some(half_read)),
            &Thresholds::default(),
        );
        assert_eq!(verdict.severity, Severity::Critical);
        assert_eq!(verdict.severity.exit_code(), 2);
        assert_eq!(verdict.findings[1].severity, Severity::Unknown);
    }

    #[test]
    fn slo_states_map_to_severities_and_no_traffic_passes_unless_asked() {
        let store = Some(StoreSection::default());
        // 20 % errors against a 1 % budget: every alert fires.
        let burning = slo(vec![reading(20.0, 100.0)], true, None);
        let verdict = evaluate(
            &status(store.clone(), Some(burning)),
            &Thresholds::default(),
        );
        assert_eq!(verdict.severity, Severity::Critical);
        assert!(
            verdict.findings[0]
                .line()
                .starts_with("CRITICAL slo delivery-success: critical: burn rate 20.0 over 5m"),
            "{:?}",
            verdict.findings
        );

        let idle = slo(vec![reading(0.0, 0.0)], true, None);
        let verdict = evaluate(
            &status(store.clone(), Some(idle.clone())),
            &Thresholds::default(),
        );
        assert_eq!(verdict.severity, Severity::Ok, "{:?}", verdict.findings);
        let strict = Thresholds {
            slo_unknown_warns: true,
            ..Thresholds::default()
        };
        assert_eq!(
            evaluate(&status(store.clone(), Some(idle)), &strict).severity,
            Severity::Warning
        );

        let never_read = slo(Vec::new(), false, Some("connection refused"));
        let verdict = evaluate(&status(store, Some(never_read)), &Thresholds::default());
        assert_eq!(verdict.severity, Severity::Unknown);
        assert_eq!(
            verdict.findings[0].line(),
            "UNKNOWN source prometheus http://127.0.0.1:9090: connection refused"
        );
    }
}
