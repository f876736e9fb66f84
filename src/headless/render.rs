//! Status as words: `text` for a terminal or a log, `markdown` for an incident channel. Both are
//! sanitised like the control room (payload text never reaches a terminal raw).

use std::fmt::Write as _;

use super::status::Status;
use crate::model::format::{age, percent, rate};
use crate::model::sanitize;
use crate::sources::{Freshness, StoreSection};

fn freshness(status: &Status) -> Vec<String> {
    let now = status.snapshot.taken_at_ms;
    status
        .snapshot
        .sources
        .iter()
        .map(|s| {
            let state = match s.freshness {
                Freshness::Fresh => "fresh".to_owned(),
                Freshness::Connecting | Freshness::Lagging | Freshness::Stale if s.refused => {
                    format!(
                        "REFUSED ({})",
                        sanitize(s.last_error.as_deref().unwrap_or("no reason"))
                    )
                }
                Freshness::Connecting => format!(
                    "UNREACHABLE ({})",
                    sanitize(s.last_error.as_deref().unwrap_or("no answer"))
                ),
                Freshness::Lagging | Freshness::Stale => format!(
                    "STALE, read {} ago",
                    s.age_ms(now).map_or_else(|| "never".to_owned(), age)
                ),
            };
            format!("{} {}: {state}", s.name, sanitize(&s.address))
        })
        .collect()
}

fn flags_line(store: &StoreSection) -> String {
    let mut flags = Vec::new();
    if let Some(stop) = &store.emergency_stop {
        flags.push(format!(
            "EMERGENCY STOP by {}: {}",
            sanitize(&stop.owner),
            sanitize(&stop.reason)
        ));
    }
    for (channel, _) in &store.channel_stops {
        flags.push(format!("{} stopped", sanitize(channel)));
    }
    if store.shedding != crate::model::ShedMode::Off {
        flags.push(format!("shedding {}", store.shedding.as_str()));
    }
    let overrides = store.overrides.len();
    if overrides > 0 {
        flags.push(format!(
            "{overrides} override{}",
            if overrides == 1 { "" } else { "s" }
        ));
    }
    if flags.is_empty() {
        "none".to_owned()
    } else {
        flags.join(", ")
    }
}

/// `ingest 40/s, deliver 38/s, fail 2.0/s, errors 5.0%` (unknown ones say so).
fn rates_line(store: &StoreSection) -> String {
    let window = store.rates.window_ms.map_or_else(
        || "unknown window".to_owned(),
        |w| format!("over {}", age(w)),
    );
    format!(
        "ingest {}, deliver {}, fail {}, errors {} ({window})",
        rate(store.rates.ingested_per_s),
        rate(store.rates.delivered_per_s),
        rate(store.rates.failed_per_s),
        percent(store.rates.error_ratio)
    )
}

/// `shedding dlq by ops@host 3m ago, expires in 57m: ingest storm`.
fn override_line(o: &crate::actions::Override, now_ms: i64) -> String {
    let kind = match o.kind {
        crate::actions::OverrideKind::EmergencyStop => "stop",
        crate::actions::OverrideKind::Shedding => "shedding",
        crate::actions::OverrideKind::Config => "config",
        crate::actions::OverrideKind::Breaker => "breaker",
    };
    let expiry = match o.expires_at_ms {
        _ if o.expired => ", EXPIRED".to_owned(),
        Some(at) => format!(
            ", expires in {}",
            age(u64::try_from(at.saturating_sub(now_ms)).unwrap_or(0))
        ),
        None => ", no expiry".to_owned(),
    };
    format!(
        "{kind} {} = {} by {} {} ago{expiry}: {}",
        sanitize(&o.name),
        sanitize(&o.value),
        sanitize(&o.owner),
        age(o.age_ms),
        sanitize(&o.reason)
    )
}

fn failure_rate(rate: &crate::engine::breaker::FailureRate) -> String {
    match rate {
        crate::engine::breaker::FailureRate::Known { rate, calls, .. } => {
            format!("{:.0}% of {calls}", rate * 100.0)
        }
        crate::engine::breaker::FailureRate::NotEnoughCalls { calls, minimum } => {
            format!("not enough calls ({calls}/{minimum})")
        }
    }
}

/// A breaker's row: channel, state, failure rate, time in state.
fn breaker_cells(b: &crate::sources::BreakerView) -> [String; 4] {
    [
        sanitize(&b.channel).into_owned(),
        b.state.as_str().to_owned(),
        failure_rate(&b.failure_rate),
        age(b.time_in_state_ms),
    ]
}

/// A queue's row: name, depth, in flight, scheduled, DLQ, dead, oldest.
fn queue_cells(q: &crate::sources::snapshot::QueueView) -> [String; 7] {
    let st = &q.stats;
    [
        st.queue.as_str().to_owned(),
        st.depth.to_string(),
        st.in_flight.to_string(),
        st.scheduled.to_string(),
        st.dlq.to_string(),
        st.dead.to_string(),
        st.oldest_age_ms.map_or_else(|| "-".to_owned(), age),
    ]
}

fn slo_rows(status: &Status) -> Vec<[String; 5]> {
    let Some(section) = status.snapshot.slo.as_ref() else {
        return Vec::new();
    };
    section
        .readings
        .iter()
        .map(|r| {
            let f = &r.figures;
            [
                sanitize(&r.name).into_owned(),
                f.state.as_str().to_owned(),
                format!("{:.2}%", f.target * 100.0),
                percent(f.availability),
                f.windows
                    .first()
                    .and_then(|w| w.burn_rate)
                    .map_or_else(|| "unknown".to_owned(), |b| format!("{b:.2}")),
            ]
        })
        .collect()
}

/// A plain summary for a terminal or a log.
pub fn text(status: &Status) -> String {
    let mut out = String::new();
    let s = &status.snapshot;
    let _ = writeln!(
        out,
        "ward status: {} on {} at {}",
        sanitize(&s.target.label),
        sanitize(&s.target.address),
        crate::model::time::format_rfc3339_ms(s.taken_at_ms)
    );
    for line in freshness(status) {
        let _ = writeln!(out, "  source {line}");
    }
    if let Some(store) = &s.store {
        let _ = writeln!(
            out,
            "  workers: {}, {} silent; flags: {}",
            store.workers.live_text(),
            store.workers.silent,
            flags_line(store)
        );
        let _ = writeln!(out, "  rates: {}", rates_line(store));
        let _ = writeln!(
            out,
            "  {:<12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
            "queue", "depth", "in-flight", "scheduled", "dlq", "dead", "oldest"
        );
        for q in &store.queues {
            let [name, depth, in_flight, scheduled, dlq, dead, oldest] = queue_cells(q);
            let _ = writeln!(
                out,
                "  {name:<12} {depth:>9} {in_flight:>9} {scheduled:>9} {dlq:>9} {dead:>9} {oldest:>8}"
            );
        }
        for q in store.queues.iter().filter(|q| q.stats.scheduled > 0) {
            let summary = super::check::scheduled_summary(
                q.stats.scheduled,
                &q.stats.waiting_retry,
                store.read_at_ms,
            );
            let _ = writeln!(out, "  {}: {}", q.stats.queue, sanitize(&summary));
        }
        for recent in &status.dlq_recent {
            if let Some(n) = recent.failed.filter(|n| *n > 0) {
                let _ = writeln!(
                    out,
                    "  dlq {}: {n} failed in the last {} min",
                    recent.queue,
                    recent.window_ms / 60_000
                );
            }
        }
        for b in &store.breakers {
            let [channel, state, failures, in_state] = breaker_cells(b);
            let _ = writeln!(
                out,
                "  breaker {channel:<12} {state:<11} {failures} for {in_state}"
            );
        }
        for o in &store.overrides {
            let _ = writeln!(out, "  override {}", override_line(o, s.taken_at_ms));
        }
        let a = &store.alerting;
        if a.active + a.pending + a.firing_now > 0 {
            let _ = writeln!(
                out,
                "  alerting: {} firing, {} silenced, {} inhibited; silences {} active ({} ending within 5 min), {} pending",
                a.firing_now, a.silenced_now, a.inhibited_now, a.active, a.ending_soon, a.pending
            );
        }
    }
    if let Some(mutt) = &s.mutt {
        for line in super::mutt::text_lines(mutt, s.taken_at_ms) {
            let _ = writeln!(out, "  {line}");
        }
    }
    if let Some(page) = &s.mutt_page {
        for line in super::mutt::page_lines(page) {
            let _ = writeln!(out, "  {line}");
        }
    }
    for [name, state, target, availability, burn] in slo_rows(status) {
        let _ = writeln!(
            out,
            "  slo {name:<24} {state:<8} target {target}, availability {availability}, 5m burn {burn}"
        );
    }
    if let Some(error) = s.slo.as_ref().and_then(|slo| slo.error.as_ref()) {
        let _ = writeln!(out, "  slo source error: {}", sanitize(error));
    }
    out
}

/// A copy-paste-ready incident summary: headline, sources, tables of queues, breakers and SLOs.
pub fn markdown(status: &Status) -> String {
    let mut out = String::new();
    let s = &status.snapshot;
    let cell = |t: &str| sanitize(t).replace('|', "\\|");
    let _ = writeln!(
        out,
        "### Ward status: {} on {} ({})\n",
        cell(&s.target.label),
        cell(&s.target.address),
        crate::model::time::format_rfc3339_ms(s.taken_at_ms)
    );
    let verdict = super::check::evaluate(status, &super::check::Thresholds::default());
    let _ = writeln!(out, "**{}**", verdict.severity.as_str());
    for finding in &verdict.findings {
        let _ = writeln!(out, "- {}", cell(&finding.line()));
    }
    let _ = writeln!(out);
    for line in freshness(status) {
        let _ = writeln!(out, "- Source {}", cell(&line));
    }
    if let Some(store) = &s.store {
        for o in &store.overrides {
            let _ = writeln!(out, "- Override {}", cell(&override_line(o, s.taken_at_ms)));
        }
        let _ = writeln!(
            out,
            "- Workers: {}, {} silent\n- Flags: {}\n- Rates: {}\n",
            store.workers.live_text(),
            store.workers.silent,
            cell(&flags_line(store)),
            rates_line(store)
        );
        let _ = writeln!(
            out,
            "| Queue | Depth | In flight | Scheduled | DLQ | Dead | Oldest |\n|---|--:|--:|--:|--:|--:|--:|"
        );
        for q in &store.queues {
            let _ = writeln!(out, "| {} |", queue_cells(q).join(" | "));
        }
        for q in store.queues.iter().filter(|q| q.stats.scheduled > 0) {
            let summary = super::check::scheduled_summary(
                q.stats.scheduled,
                &q.stats.waiting_retry,
                store.read_at_ms,
            );
            let _ = writeln!(out, "\n- {}: {}", q.stats.queue, cell(&summary));
        }
        if !store.breakers.is_empty() {
            let _ = writeln!(
                out,
                "\n| Breaker | State | Failures | In state |\n|---|---|--:|--:|"
            );
            for b in &store.breakers {
                let row = breaker_cells(b).map(|c| c.replace('|', "\\|"));
                let _ = writeln!(out, "| {} |", row.join(" | "));
            }
        }
    }
    if let Some(mutt) = &s.mutt {
        out.push_str(&super::mutt::markdown(mutt, s.taken_at_ms));
    }
    let slos = slo_rows(status);
    if !slos.is_empty() {
        let _ = writeln!(
            out,
            "\n| SLO | State | Target | Availability | 5m burn |\n|---|---|--:|--:|--:|"
        );
        for [name, state, target, availability, burn] in slos {
            let _ = writeln!(
                out,
                "| {} | {state} | {target} | {availability} | {burn} |",
                name.replace('|', "\\|")
            );
        }
    }
    out
}
