//! Matching one alert against many active silences: the index (candidates by one equality
//! matcher) beside a scan of every silence, and what inhibition costs.
//!
//! `cargo bench --bench silences`; `WARD_BENCH_SILENCES` sets the silence count (default
//! 10 000). Target: under 50 µs per alert with 10 000 active silences.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use ward::engine::inhibit::{InhibitRuleConfig, compile_rules};
use ward::engine::matcher::{compile_all, matches_all, parse_matchers};
use ward::engine::silence::SilenceIndex;
use ward::engine::suppress::{Rules, Suppressor};
use ward::model::{AlertStatus, SeenAlert, Silence, SilenceKind};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NOW: i64 = 1_800_000_000_000;

/// Silences as operators write them: an alertname and an instance, some by regex, a few on a
/// team or environment only.
fn silences(n: usize) -> Vec<Silence> {
    (0..n)
        .map(|i| {
            let text = match i % 10 {
                0 => format!("alertname=Alert{} instance=~\"host-{}.*\"", i % 300, i),
                1 => format!("team=team-{} env!=dev", i % 50),
                _ => format!("alertname=Alert{} instance=host-{i}", i % 300),
            };
            Silence {
                id: format!("s{i}"),
                matchers: parse_matchers(&text).unwrap(),
                starts_at_ms: NOW - 60_000,
                ends_at_ms: NOW + 3_600_000,
                created_by: "bench".into(),
                comment: "bench".into(),
                updated_at_ms: NOW,
                kind: SilenceKind::Silence,
            }
        })
        .collect()
}

fn alert(i: usize) -> BTreeMap<String, String> {
    [
        ("alertname", format!("Alert{}", i % 300)),
        ("instance", format!("host-{}", (i * 7919) % 20_000)),
        ("team", format!("team-{}", i % 80)),
        (
            "env",
            if i.is_multiple_of(3) { "dev" } else { "prod" }.to_owned(),
        ),
        ("job", "node".to_owned()),
        ("severity", "warning".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Nanoseconds per call of `f` over `alerts`, and the share of alerts it found silenced.
fn per_alert(
    alerts: &[BTreeMap<String, String>],
    mut f: impl FnMut(&BTreeMap<String, String>) -> bool,
) -> (f64, f64, f64) {
    let mut times = Vec::with_capacity(alerts.len());
    let mut hits = 0usize;
    for labels in alerts {
        let started = Instant::now();
        hits += usize::from(black_box(f(labels)));
        times.push(started.elapsed().as_nanos() as f64);
    }
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    times.sort_by(f64::total_cmp);
    let p99 = times[times.len() * 99 / 100];
    (mean, p99, hits as f64 / alerts.len() as f64)
}

fn main() {
    let n = std::env::var("WARD_BENCH_SILENCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let all = silences(n);
    let alerts: Vec<_> = (0..20_000).map(alert).collect();
    let built = Instant::now();
    let index = SilenceIndex::new(all.clone(), NOW);
    let build_ms = built.elapsed().as_secs_f64() * 1e3;
    println!(
        "matching one alert against {n} active silences ({} alerts)",
        alerts.len()
    );
    println!("  index built in {build_ms:.1} ms");
    let (mean, p99, share) =
        per_alert(&alerts, |labels| !index.silenced_by(labels, NOW).is_empty());
    println!(
        "  index:         mean {:>8.2} µs, p99 {:>8.2} µs per alert ({:.0} % silenced) (target < 50 µs)",
        mean / 1e3,
        p99 / 1e3,
        share * 100.0
    );
    let compiled: Vec<_> = all
        .iter()
        .map(|s| compile_all(&s.matchers).unwrap())
        .collect();
    let sample = &alerts[..2_000];
    let (mean, p99, scan_share) = per_alert(sample, |labels| {
        compiled.iter().any(|m| matches_all(m, labels))
    });
    println!(
        "  scan of all:   mean {:>8.2} µs, p99 {:>8.2} µs per alert ({:.0} % silenced; the reference)",
        mean / 1e3,
        p99 / 1e3,
        scan_share * 100.0
    );
    // Inhibition with 1 000 firing sources, beside the silences (the worker's whole check).
    let rules = Rules {
        inhibit: compile_rules(&[InhibitRuleConfig {
            name: "node-down".into(),
            source_matchers: vec!["alertname=NodeDown".into()],
            target_matchers: vec!["severity=warning".into()],
            equal: vec!["instance".into()],
        }])
        .unwrap(),
        maintenance: Vec::new(),
    };
    let sources: Vec<SeenAlert> = (0..1_000)
        .map(|i| {
            let labels: BTreeMap<String, String> = [
                ("alertname".to_owned(), "NodeDown".to_owned()),
                ("instance".to_owned(), format!("host-{}", i * 13)),
            ]
            .into();
            SeenAlert {
                fingerprint: format!("src{i}"),
                labels,
                status: AlertStatus::Firing,
                starts_at_ms: NOW,
                ends_at_ms: None,
                last_seen_ms: NOW,
            }
        })
        .collect();
    let suppressor = Suppressor::new(all, &rules, &sources, NOW);
    let (mean, p99, share) = per_alert(&alerts, |labels| {
        suppressor.check("x", labels, NOW).is_some()
    });
    println!(
        "  full check:    mean {:>8.2} µs, p99 {:>8.2} µs per alert ({:.0} % held back; silences + 1 000 inhibition sources)",
        mean / 1e3,
        p99 / 1e3,
        share * 100.0
    );
}
