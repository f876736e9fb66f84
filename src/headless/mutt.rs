//! A MUTT deployment's figures as words (`ward status|check --profile mutt`). MUTT keeps no
//! leases, schedules, failure times or operator flags: those lines are absent, not zero.

use std::fmt::Write as _;

use super::check::{Finding, Severity, Thresholds, over};
use crate::model::mutt::MuttSection;
use crate::model::sanitize;

fn count(n: Option<u64>) -> String {
    n.map_or_else(|| "-".to_owned(), |n| n.to_string())
}

/// The lines of `ward status --profile mutt` (text).
pub fn text_lines(m: &MuttSection, now_ms: i64) -> Vec<String> {
    let mut out = Vec::new();
    let live = m.pods.len();
    let orphans: u64 = m.orphans().map(|p| p.length).sum();
    out.push(format!(
        "pods: {live} with a live heartbeat; processing lists: {} ({} orphaned, {orphans} entries)",
        m.processing.len(),
        m.orphans().count()
    ));
    out.push(format!(
        "ingested (mutt:metrics): this minute {}, last minute {}, this hour {}, today {}",
        count(m.ingested.this_minute),
        count(m.ingested.last_minute),
        count(m.ingested.this_hour),
        count(m.ingested.today)
    ));
    let sh = &m.shedding;
    out.push(format!(
        "shedding: {} (mode {}, alert queue warn {}{} / shed {}{}; ingest cap {})",
        if sh.active() {
            "SHEDDING NOW"
        } else {
            "not shedding"
        },
        sanitize(&sh.mode),
        sh.warn.at,
        sanitize(&sh.warn.provenance()),
        sh.shed.at,
        sanitize(&sh.shed.provenance()),
        sh.ingest_cap
    ));
    out.push(format!(
        "{:<8} {:<28} {:>9} {:>9}",
        "queue", "key", "depth", "in-flight"
    ));
    for q in &m.queues {
        out.push(format!(
            "{:<8} {:<28} {:>9} {:>9}",
            q.name,
            sanitize(&q.key),
            q.depth,
            q.in_flight
        ));
    }
    for d in &m.dlqs {
        out.push(format!(
            "dlq {:<8} {:<24} {:>9} entries, replays to {}",
            d.name,
            sanitize(&d.key),
            d.count,
            d.replays_to
                .as_deref()
                .map_or("nothing (terminal)".into(), sanitize)
        ));
    }
    for b in &m.breakers {
        out.push(format!(
            "breaker {:<10} {}",
            sanitize(&b.name),
            b.describe(now_ms)
        ));
    }
    for p in m.orphans() {
        out.push(format!(
            "orphan {} ({} entries, no heartbeat of pod {})",
            sanitize(&p.key),
            p.length,
            sanitize(&p.pod)
        ));
    }
    for (key, value) in &m.config {
        out.push(format!("config {} = {}", sanitize(key), sanitize(value)));
    }
    out.push(
        "not kept by MUTT: leases, scheduled retries, failure times of DLQ entries, operator \
         overrides (see Ward's audit)"
            .to_owned(),
    );
    out
}

/// The lines of a MUTT DLQ page (`ward status --dlq`): newest first, redacted, sanitised.
pub fn page_lines(page: &crate::model::mutt::MuttPage) -> Vec<String> {
    let mut out = vec![match page.entries.len() as u64 {
        0 => format!(
            "entries of {}: none from position {} ({} in all)",
            sanitize(&page.key),
            page.offset,
            page.total
        ),
        n => format!(
            "entries of {}: positions {}-{} of {}, newest first (position, id, host, counters, message):",
            sanitize(&page.key),
            page.offset,
            page.offset.saturating_add(n - 1),
            page.total
        ),
    }];
    for e in &page.entries {
        out.push(format!(
            "  #{:<5} {} {:<16} {:<28} {}",
            e.index,
            e.id,
            sanitize(&e.host),
            sanitize(&e.counters()),
            sanitize(&e.message)
        ));
    }
    out
}

/// The markdown body of `ward status --profile mutt --format markdown`.
pub fn markdown(m: &MuttSection, now_ms: i64) -> String {
    let cell = |t: &str| sanitize(t).replace('|', "\\|");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "- Pods: {} live; orphaned processing lists: {}\n",
        m.pods.len(),
        m.orphans().count()
    );
    let _ = writeln!(
        out,
        "| Queue | Key | Depth | In flight |\n|---|---|--:|--:|"
    );
    for q in &m.queues {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            q.name,
            cell(&q.key),
            q.depth,
            q.in_flight
        );
    }
    let _ = writeln!(
        out,
        "\n| DLQ | Key | Entries | Replays to |\n|---|---|--:|---|"
    );
    for d in &m.dlqs {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            d.name,
            cell(&d.key),
            d.count,
            d.replays_to.as_deref().map_or("-".into(), cell)
        );
    }
    let _ = writeln!(out, "\n| Breaker | State |\n|---|---|");
    for b in &m.breakers {
        let _ = writeln!(out, "| {} | {} |", cell(&b.name), cell(&b.describe(now_ms)));
    }
    out
}

/// `ward check --profile mutt`: what MUTT's figures say.
pub fn findings(m: &MuttSection, thresholds: &Thresholds, findings: &mut Vec<Finding>) {
    for b in &m.breakers {
        let severity = match b.effective_state() {
            "OPEN" => Severity::Critical,
            "HALF_OPEN" => Severity::Warning,
            _ => continue,
        };
        findings.push(Finding::new(
            severity,
            format!("breaker {}", sanitize(&b.name)),
            b.describe(m.read_at_ms),
        ));
    }
    let live = !m.pods.is_empty();
    for q in &m.queues {
        let subject = format!("queue {}", q.name);
        if q.depth > 0
            && !m
                .pods
                .iter()
                .any(|p| p.service.as_deref().is_none_or(|s| s == q.consumer))
        {
            findings.push(Finding::new(
                Severity::Critical,
                subject.clone(),
                format!(
                    "{} waiting and no live {} pod (no heartbeat{})",
                    q.depth,
                    q.consumer,
                    if live { " of that service" } else { " at all" }
                ),
            ));
        }
        if q.name == "ingest" && q.depth >= m.shedding.ingest_cap {
            findings.push(Finding::new(
                Severity::Critical,
                subject.clone(),
                format!(
                    "{} at the ingest cap {}: the ingestor refuses events (503)",
                    q.depth, m.shedding.ingest_cap
                ),
            ));
        }
        if q.name == "alert" && m.shedding.active() {
            findings.push(Finding::new(
                Severity::Warning,
                subject.clone(),
                format!(
                    "{} over the shed threshold {}: the alerter sheds ({})",
                    q.depth,
                    m.shedding.shed.at,
                    sanitize(&m.shedding.mode)
                ),
            ));
        } else if q.name == "alert" && (m.shedding.load == crate::model::mutt::MuttLoad::OverWarn) {
            findings.push(Finding::new(
                Severity::Warning,
                subject.clone(),
                format!("{} over the warn threshold {}", q.depth, m.shedding.warn.at),
            ));
        }
        if let Some((severity, limit)) = over(q.depth, thresholds.depth_warn, thresholds.depth_crit)
        {
            findings.push(Finding::new(
                severity,
                subject,
                format!("depth {} (threshold {limit})", q.depth),
            ));
        }
    }
    for d in &m.dlqs {
        if let Some((severity, limit)) = over(d.count, thresholds.dlq_warn, thresholds.dlq_crit) {
            findings.push(Finding::new(
                severity,
                format!("dlq {}", d.name),
                format!("{} entries (threshold {limit})", d.count),
            ));
        }
    }
    let orphans: Vec<_> = m.orphans().collect();
    if !orphans.is_empty() {
        findings.push(Finding::new(
            Severity::Warning,
            "processing".to_owned(),
            format!(
                "{} entries in {} processing lists of pods without a heartbeat (MUTT re-queues them only when a pod of that service restarts; `ward requeue-orphan LIST` does it now)",
                orphans.iter().map(|p| p.length).sum::<u64>(),
                orphans.len()
            ),
        ));
    }
}
