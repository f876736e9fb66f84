//! Numbers and times as the control room and the headless reports print them (one formatter
//! each, so a figure reads the same on every surface).

/// `850ms`, `12s`, `3m`, `2h`, `4d`.
pub fn age(ms: u64) -> String {
    crate::model::time::short_duration(ms)
}

/// `1234567` → `1.2M`; small numbers as they are.
pub fn count(n: u64) -> String {
    match n {
        0..10_000 => n.to_string(),
        10_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{:.1}G", n as f64 / 1e9),
    }
}

/// A rate, or "unknown" (never a made-up 0).
pub fn rate(per_s: Option<f64>) -> String {
    match per_s {
        Some(r) if r >= 100.0 => format!("{r:.0}/s"),
        Some(r) => format!("{r:.1}/s"),
        None => "unknown".to_owned(),
    }
}

pub fn percent(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "unknown".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

/// `HH:MM:SS` (UTC) of a time in milliseconds.
pub fn clock(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}
