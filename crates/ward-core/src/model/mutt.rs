//! MUTT's own data as Ward shows it (`--profile mutt`): the figures one read gives, and the
//! entries of MUTT's DLQ lists. MUTT's entries carry no id, no error and no failure time: an
//! entry is its text, told apart by a hash of it, and what it says about itself (retry
//! counters, `shedding_reason`) is all there is. Secrets in payloads (`api_key`) are redacted
//! here, before any figure leaves this module.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::format::age;
use super::{AuditEntry, sanitize};

/// MUTT's three DLQ lists.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum MuttDlqName {
    /// The alerter's DLQ: poison and shed ingest events.
    Alerter,
    /// The forwarder's DLQ: alerts whose retries ran out (MUTT itself never reads it).
    Moog,
    /// The terminal dead list.
    Dead,
}

impl MuttDlqName {
    pub const ALL: [Self; 3] = [Self::Alerter, Self::Moog, Self::Dead];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alerter => "alerter",
            Self::Moog => "moog",
            Self::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == text.trim())
    }

    /// The retry counter of the stage that dead-lettered entries of this list; a replay resets
    /// it (DOMAIN §8.10.4). An alerter entry keeps `_moog_retry_count`, which MUTT's own
    /// remediation reads to spot poison.
    pub fn retry_counters(self) -> &'static [&'static str] {
        match self {
            Self::Alerter => &["_retry_count"],
            Self::Moog => &["_moog_retry_count"],
            Self::Dead => &[],
        }
    }
}

impl std::fmt::Display for MuttDlqName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything one read of a MUTT deployment gives, for the control room and headless output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MuttSection {
    pub read_at_ms: i64,
    /// `ingest` and `alert`, with the key each is.
    pub queues: Vec<MuttQueue>,
    /// `alerter`, `moog` and `dead`.
    pub dlqs: Vec<MuttDlq>,
    pub breakers: Vec<MuttBreaker>,
    /// Pods' in-flight lists; an orphan has no live heartbeat (MUTT's janitor re-queues it only
    /// when some pod of that service restarts).
    pub processing: Vec<MuttProcessing>,
    /// Pods with a live heartbeat.
    pub pods: Vec<MuttPod>,
    /// Every `mutt:config:*` value, by setting name.
    pub config: Vec<(String, String)>,
    /// The ingestor's own counters (`mutt:metrics:*`).
    pub ingested: MuttCounters,
    /// Shedding as MUTT's alerter decides it: the alert queue's depth against its thresholds.
    pub shedding: MuttShedding,
    /// Keys examined to find processing lists, heartbeats, breakers and settings.
    pub keys_scanned: u64,
    /// Keys under MUTT's prefixes holding a type MUTT does not write there (`key (type)`): left
    /// out of the figures.
    #[serde(default)]
    pub skipped_keys: Vec<String>,
    /// Ward's own audit of actions on this deployment, newest first.
    pub audit: Vec<AuditEntry>,
}

impl MuttSection {
    pub fn queue(&self, name: &str) -> Option<&MuttQueue> {
        self.queues.iter().find(|q| q.name == name)
    }
    pub fn dlq(&self, name: &str) -> Option<&MuttDlq> {
        self.dlqs.iter().find(|d| d.name == name)
    }
    pub fn config_value(&self, key: &str) -> Option<&str> {
        self.config
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    pub fn orphans(&self) -> impl Iterator<Item = &MuttProcessing> {
        self.processing.iter().filter(|p| p.orphan)
    }
    /// Processing lists in the order the Queues view lists them: orphans first.
    pub fn processing_by_concern(&self) -> Vec<&MuttProcessing> {
        let mut rows: Vec<&MuttProcessing> = self.processing.iter().collect();
        rows.sort_by_key(|p| !p.orphan);
        rows
    }
    /// Entries in DLQ lists that can be replayed (not the dead list).
    pub fn dlq_total(&self) -> u64 {
        self.dlqs
            .iter()
            .filter(|d| d.replays_to.is_some())
            .map(|d| d.count)
            .sum()
    }
}

/// One MUTT queue (a Redis list, LPUSHed, consumed from the tail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MuttQueue {
    /// `ingest` or `alert`.
    pub name: String,
    pub key: String,
    /// LLEN.
    pub depth: u64,
    /// Entries in its consumers' processing lists.
    pub in_flight: u64,
    /// The service consuming it (`alerter`, `moog`).
    pub consumer: String,
}

/// One MUTT DLQ list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MuttDlq {
    /// `alerter`, `moog` or `dead`.
    pub name: String,
    pub key: String,
    /// LLEN.
    pub count: u64,
    /// The queue key a replay pushes to; `None` for the dead list.
    pub replays_to: Option<String>,
    /// Who pushes here, in MUTT's words.
    pub fed_by: String,
}

/// A MUTT circuit breaker, from its three keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MuttBreaker {
    pub name: String,
    /// `CLOSED`, `OPEN` or `HALF_OPEN` as stored; `None` when MUTT has not written it yet
    /// (MUTT reads a missing state as CLOSED).
    pub state: Option<String>,
    /// Consecutive failures.
    pub failures: Option<u64>,
    /// When it opened (MUTT's `open_time`, epoch seconds as written), if it is open.
    pub open_time_ms: Option<i64>,
    /// MUTT's timeout: it half-opens the breaker at open_time + this.
    pub timeout_ms: u64,
}

impl MuttBreaker {
    /// `OPEN, 10 failures, opened 4m ago, half-opens in 1m` (MUTT's own terms).
    pub fn describe(&self, now_ms: i64) -> String {
        let mut parts = vec![match &self.state {
            Some(state) => sanitize(state).into_owned(),
            None => "CLOSED (never written)".to_owned(),
        }];
        if let Some(failures) = self.failures {
            parts.push(format!("{failures} consecutive failures"));
        }
        if let Some(at) = self.open_time_ms {
            let since = now_ms.saturating_sub(at);
            parts.push(if since >= 0 {
                format!("opened {} ago", age(since as u64))
            } else {
                format!("open_time {} ahead", age(since.unsigned_abs()))
            });
        }
        if let Some(at) = self.half_opens_at_ms() {
            let left = at.saturating_sub(now_ms);
            parts.push(if left > 0 {
                format!("half-opens in {}", age(left as u64))
            } else {
                "half-opens on MUTT's next read".to_owned()
            });
        }
        parts.join(", ")
    }

    /// The state MUTT acts on: a missing key reads as CLOSED.
    pub fn effective_state(&self) -> &str {
        self.state.as_deref().unwrap_or("CLOSED")
    }
    /// When MUTT will let a probe through (half-open), for an open breaker.
    pub fn half_opens_at_ms(&self) -> Option<i64> {
        (self.effective_state() == "OPEN").then_some(
            self.open_time_ms?
                .saturating_add(i64::try_from(self.timeout_ms).unwrap_or(i64::MAX)),
        )
    }
}

/// A pod's processing list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MuttProcessing {
    pub key: String,
    /// `alerter` or `moog`.
    pub service: String,
    pub pod: String,
    pub length: u64,
    /// No heartbeat of this pod is alive.
    pub orphan: bool,
}

/// A live pod heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MuttPod {
    pub key: String,
    /// The service when the key names one (`mutt:heartbeat:<service>:<pod>`).
    pub service: Option<String>,
    pub pod: String,
    /// Time before the heartbeat expires; `None` if it has no expiry.
    pub expires_in_ms: Option<u64>,
}

/// The ingestor's counters of accepted events (UTC buckets).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct MuttCounters {
    pub this_minute: Option<u64>,
    /// The last whole minute: the rate MUTT ingested at.
    pub last_minute: Option<u64>,
    pub this_hour: Option<u64>,
    pub today: Option<u64>,
}

/// MUTT's alerter sheds when the alert queue is deeper than its shed threshold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MuttShedding {
    /// `dlq` or `defer` (`alerter_shed_mode`, MUTT's default `dlq`).
    pub mode: String,
    /// `alerter_queue_warn_threshold`: the alerter logs over it.
    pub warn: MuttThreshold,
    /// `alerter_queue_shed_threshold`: the alerter sheds over it.
    pub shed: MuttThreshold,
    /// The alert queue's depth against both, now.
    pub load: MuttLoad,
    /// `max_ingest_queue_size`: the ingestor refuses (503) at this depth.
    pub ingest_cap: u64,
}

/// One of MUTT's depth thresholds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MuttThreshold {
    pub at: u64,
    /// The setting is absent or unreadable: MUTT's fallback applies.
    pub from_default: bool,
    /// The setting's text when it is not a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

/// The alert queue's depth against the alerter's thresholds.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MuttLoad {
    #[default]
    Normal,
    OverWarn,
    /// Over the shed threshold: the alerter is shedding now.
    Shedding,
}

/// Settings MUTT's services read (DOMAIN §8.3), and what their values must be.
const NUMERIC_SETTINGS: &[&str] = &[
    "max_ingest_queue_size",
    "ingest_max_rate",
    "ingest_rate_window",
    "cache_reload_interval",
    "unhandled_threshold",
    "unhandled_expiry_seconds",
    "alerter_queue_warn_threshold",
    "alerter_queue_shed_threshold",
    "alerter_defer_sleep_ms",
    "moog_rate_limit",
    "moog_rate_period",
    "circuit_breaker_threshold",
    "circuit_breaker_timeout",
    "remediation_interval",
    "remediation_batch_size",
    "max_poison_retries",
];

/// A value for one of MUTT's settings: `Err` when MUTT could not use it, `Ok(Some(note))` for a
/// setting MUTT is not known to read.
pub fn check_setting(key: &str, value: &str) -> Result<Option<String>, String> {
    let value = value.trim();
    let number = |what: &str| {
        value
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(|_| None)
            .ok_or_else(|| format!("{key} takes {what}, not {value:?}"))
    };
    if key == "alerter_shed_mode" {
        return match value {
            "dlq" | "defer" => Ok(None),
            _ => Err(format!("alerter_shed_mode is dlq or defer, not {value:?}")),
        };
    }
    if NUMERIC_SETTINGS.contains(&key) {
        return value
            .parse::<u64>()
            .map(|_| None)
            .map_err(|_| format!("{key} takes a whole number, not {value:?}"));
    }
    let slo = key.strip_prefix("slo_").is_some_and(|rest| {
        [
            "_window_hours",
            "_burn_rate_warning",
            "_burn_rate_critical",
            "_upper_bound_warning",
            "_upper_bound_critical",
        ]
        .iter()
        .any(|suffix| rest.ends_with(suffix))
    });
    if slo {
        return number("a number");
    }
    Ok(Some(format!(
        "MUTT is not known to read a setting named {key} (a typo?)"
    )))
}

/// The fallbacks MUTT's services use when a setting is absent.
pub mod defaults {
    pub const WARN_THRESHOLD: u64 = 1_000;
    pub const SHED_THRESHOLD: u64 = 2_000;
    pub const SHED_MODE: &str = "dlq";
    pub const INGEST_CAP: u64 = 1_000_000;
}

impl MuttThreshold {
    /// What follows the figure: nothing, ` (default)`, or ` (default: setting "lots" unreadable)`.
    pub fn provenance(&self) -> String {
        match (&self.unreadable, self.from_default) {
            (Some(text), _) => format!(" (default: setting {text:?} unreadable)"),
            (None, true) => " (default)".to_owned(),
            (None, false) => String::new(),
        }
    }
}

impl MuttShedding {
    /// From the settings read and the alert queue's depth.
    pub fn from_config(config: &[(String, String)], alert_depth: u64) -> Self {
        let get = |key: &str| config.iter().find(|(k, _)| k == key).map(|(_, v)| v.trim());
        let threshold = |key: &str, fallback: u64| match get(key).map(|v| (v, v.parse::<u64>())) {
            Some((_, Ok(at))) => MuttThreshold {
                at,
                from_default: false,
                unreadable: None,
            },
            Some((text, Err(_))) => MuttThreshold {
                at: fallback,
                from_default: true,
                unreadable: Some(text.to_owned()),
            },
            None => MuttThreshold {
                at: fallback,
                from_default: true,
                unreadable: None,
            },
        };
        let warn = threshold("alerter_queue_warn_threshold", defaults::WARN_THRESHOLD);
        let shed = threshold("alerter_queue_shed_threshold", defaults::SHED_THRESHOLD);
        let load = if alert_depth > shed.at {
            MuttLoad::Shedding
        } else if alert_depth > warn.at {
            MuttLoad::OverWarn
        } else {
            MuttLoad::Normal
        };
        Self {
            mode: get("alerter_shed_mode")
                .filter(|m| !m.is_empty())
                .unwrap_or(defaults::SHED_MODE)
                .to_owned(),
            warn,
            shed,
            load,
            ingest_cap: get("max_ingest_queue_size")
                .and_then(|v| v.parse().ok())
                .unwrap_or(defaults::INGEST_CAP),
        }
    }

    /// The alerter is shedding now.
    pub fn active(&self) -> bool {
        self.load == MuttLoad::Shedding
    }
}

/// One page of a MUTT DLQ list, newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MuttPage {
    /// `alerter`, `moog` or `dead`.
    pub dlq: String,
    pub key: String,
    /// Position of the first entry: 0 is the newest.
    pub offset: u64,
    pub limit: u64,
    /// LLEN when the page was read.
    pub total: u64,
    pub read_at_ms: i64,
    pub entries: Vec<MuttEntry>,
}

/// One DLQ entry, redacted and summarised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MuttEntry {
    /// Position in the list when read: 0 is the newest (MUTT LPUSHes).
    pub index: u64,
    /// A hash of the entry's exact text: how a marked entry is found again.
    pub id: String,
    /// `hostname` (events and alerts).
    pub host: String,
    /// `message` (events) or `message_body` (alerts).
    pub message: String,
    /// `team_assignment` (alerts).
    pub team: String,
    /// `_retry_count` (the alerter's).
    pub retry_count: Option<u64>,
    /// `_moog_retry_count` (the forwarder's).
    pub moog_retry_count: Option<u64>,
    /// Replays Ward made of this entry (`_ward_replays`).
    pub ward_replays: u64,
    /// Why the alerter shed it (`shedding_reason`), if it did.
    pub shedding_reason: Option<String>,
    pub correlation_id: Option<String>,
    /// The entry as JSON with secrets redacted, or its text when it is not JSON.
    pub payload: String,
    pub is_json: bool,
    pub bytes: u64,
}

impl MuttEntry {
    /// What the entry says about its failures: `_retry_count 4, _moog_retry_count 6, replayed
    /// 1, shed: queue_depth_exceeded:2500>2000` (MUTT keeps nothing else).
    pub fn counters(&self) -> String {
        let mut parts = Vec::new();
        if let Some(n) = self.retry_count {
            parts.push(format!("_retry_count {n}"));
        }
        if let Some(n) = self.moog_retry_count {
            parts.push(format!("_moog_retry_count {n}"));
        }
        if self.ward_replays > 0 {
            parts.push(format!("replayed {}", self.ward_replays));
        }
        if let Some(reason) = &self.shedding_reason {
            parts.push(format!("shed: {reason}"));
        }
        parts.join(", ")
    }
}

/// The field Ward counts its replays of an entry in; the poison guard reads it.
pub const REPLAYS_FIELD: &str = "_ward_replays";

/// Payload fields whose values are secrets: never shown, logged, exported or audited.
const SECRET_KEYS: &[&str] = &[
    "api_key",
    "apikey",
    "api-key",
    "x-api-key",
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "auth_token",
    "access_token",
];

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_KEYS
        .iter()
        .any(|s| key == *s || key.ends_with(&format!("_{s}")))
}

/// The text shown for a redacted value.
pub const REDACTED: &str = "***";

/// A JSON value with every secret field's value replaced, at any depth, and every string
/// redacted as text; a string that is itself JSON (MUTT's `raw_json` may be one) is redacted
/// inside too.
fn redact_value(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if is_secret_key(key) {
                    *v = serde_json::Value::String(REDACTED.to_owned());
                } else {
                    redact_value(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_value),
        serde_json::Value::String(text) => {
            let trimmed = text.trim_start();
            let nested = (trimmed.starts_with('{') || trimmed.starts_with('['))
                .then(|| serde_json::from_str::<serde_json::Value>(text).ok())
                .flatten();
            *text = match nested {
                Some(mut inner) => {
                    redact_value(&mut inner);
                    inner.to_string()
                }
                None => redact_text(text),
            };
        }
        _ => {}
    }
}

/// Redact `key=value`, `"key": "value"` and `Bearer <token>` secrets in text.
pub fn redact_text(text: &str) -> String {
    static PATTERNS: std::sync::OnceLock<Option<[regex::Regex; 2]>> = std::sync::OnceLock::new();
    let patterns = PATTERNS.get_or_init(|| {
        let keys = SECRET_KEYS
            .iter()
            .map(|k| regex::escape(k))
            .collect::<Vec<_>>()
            .join("|");
        let pairs = regex::Regex::new(&format!(r#"(?i)((?:{keys})"?\s*[:=]\s*"?)([^"\s,}}&]+)"#));
        let schemes = regex::Regex::new(r"(?i)\b((?:bearer|basic|token)\s+)[A-Za-z0-9._~+/=:-]+");
        Some([schemes.ok()?, pairs.ok()?])
    });
    match patterns {
        Some([schemes, pairs]) => {
            let text = schemes.replace_all(text, format!("${{1}}{REDACTED}"));
            pairs
                .replace_all(&text, format!("${{1}}{REDACTED}"))
                .into_owned()
        }
        // The patterns are constants: unreachable, but never show the text unredacted.
        None => REDACTED.to_owned(),
    }
}

/// A stable id for an entry's exact bytes (FNV-1a, 64 bits, hex): shown, marked, found again.
pub fn content_id(raw: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in raw {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

fn field_u64(map: &serde_json::Map<String, serde_json::Value>, key: &str) -> Option<u64> {
    match map.get(key)? {
        serde_json::Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn field_str(map: &serde_json::Map<String, serde_json::Value>, keys: &[&str]) -> String {
    keys.iter()
        .find_map(|k| match map.get(*k)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        })
        .unwrap_or_default()
}

/// An entry read at `index`, summarised and redacted (bytes that are not UTF-8 are shown as
/// replacement characters).
pub fn entry_from_raw(index: u64, raw: &[u8]) -> MuttEntry {
    let id = content_id(raw);
    let bytes = raw.len() as u64;
    let text = String::from_utf8_lossy(raw);
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(map)) => {
            let field = |keys: &[&str]| redact_text(&field_str(&map, keys));
            let optional = |key: &str| Some(field(&[key])).filter(|s| !s.is_empty());
            let summary = MuttEntry {
                index,
                id,
                host: field(&["hostname", "host"]),
                message: field(&["message", "message_body"]),
                team: field(&["team_assignment"]),
                retry_count: field_u64(&map, "_retry_count"),
                moog_retry_count: field_u64(&map, "_moog_retry_count"),
                ward_replays: field_u64(&map, REPLAYS_FIELD).unwrap_or(0),
                shedding_reason: optional("shedding_reason"),
                correlation_id: optional("_correlation_id"),
                payload: String::new(),
                is_json: true,
                bytes,
            };
            let mut value = serde_json::Value::Object(map);
            redact_value(&mut value);
            MuttEntry {
                payload: value.to_string(),
                ..summary
            }
        }
        _ => MuttEntry {
            index,
            id,
            host: String::new(),
            message: redact_text(text.lines().next().unwrap_or("")),
            team: String::new(),
            retry_count: None,
            moog_retry_count: None,
            ward_replays: 0,
            shedding_reason: None,
            correlation_id: None,
            payload: redact_text(&text),
            is_json: false,
            bytes,
        },
    }
}

/// What a replay does to one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayEdit {
    /// Push this text (counters reset, replay counted) back to the source queue.
    Replay(String),
    /// Replayed `max` times already: to the dead list, as it is.
    Poison,
    /// Not a JSON object: MUTT would discard it unprocessed, so it goes to the dead list as it
    /// is rather than to a queue.
    NotJson,
}

/// The entry as a replay pushes it back: MUTT's retry counters (`counters`) that it carries set
/// to 0 and Ward's replay count raised; every other field keeps its text and its place. An
/// entry replayed `max_replays` times already is poison.
pub fn edit_for_replay(raw: &[u8], counters: &[&str], max_replays: u32) -> ReplayEdit {
    let Some(fields) = std::str::from_utf8(raw)
        .ok()
        .and_then(|text| ordered_fields(text).ok())
    else {
        return ReplayEdit::NotJson;
    };
    let replays = fields
        .iter()
        .rev()
        .find(|(k, _)| k == REPLAYS_FIELD)
        .and_then(|(_, v)| v.get().trim().trim_matches('"').parse::<u64>().ok())
        .unwrap_or(0);
    if replays >= u64::from(max_replays) {
        return ReplayEdit::Poison;
    }
    let mut out = String::with_capacity(raw.len() + 24);
    out.push('{');
    for (key, value) in &fields {
        if key == REPLAYS_FIELD {
            continue;
        }
        let value = if counters.contains(&key.as_str()) {
            "0"
        } else {
            value.get()
        };
        push_field(&mut out, key, value);
    }
    push_field(&mut out, REPLAYS_FIELD, &(replays + 1).to_string());
    out.push('}');
    ReplayEdit::Replay(out)
}

fn push_field(out: &mut String, key: &str, value: &str) {
    if out.len() > 1 {
        out.push(',');
    }
    out.push_str(&serde_json::Value::String(key.to_owned()).to_string());
    out.push(':');
    out.push_str(value);
}

/// A JSON object's fields in their order, each value as its exact text.
fn ordered_fields(raw: &str) -> Result<Vec<(String, Box<RawValue>)>, serde_json::Error> {
    struct Fields;
    impl<'de> serde::de::Visitor<'de> for Fields {
        type Value = Vec<(String, Box<RawValue>)>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((key, value)) = map.next_entry::<String, Box<RawValue>>()? {
                out.push((key, value));
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_str(raw);
    let fields = serde::Deserializer::deserialize_map(&mut de, Fields)?;
    de.end()?;
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_at_any_depth_and_in_embedded_json() {
        let raw = r#"{"api_key":"sk-live-123","hostname":"db1","raw_json":"{\"api_key\":\"inner\",\"x\":1}","nested":{"Password":"p"}}"#;
        let entry = entry_from_raw(0, raw.as_bytes());
        assert!(!entry.payload.contains("sk-live-123"), "{}", entry.payload);
        assert!(!entry.payload.contains("inner"), "{}", entry.payload);
        assert!(!entry.payload.contains("\"p\""), "{}", entry.payload);
        assert!(entry.payload.contains("db1"));
        let text = entry_from_raw(1, b"not json api_key=abc123 and token: xyz");
        assert_eq!(text.payload, "not json api_key=*** and token: ***");
        assert!(!text.is_json);
        // Secrets inside values, in embedded arrays, and bearer tokens.
        let raw = br#"{"message_body":"login password=hunter2 failed","raw_json":"[{"api_key":"deep"}]","h":"Authorization: Bearer sk-abc.def"}"#;
        let entry = entry_from_raw(2, raw);
        for secret in ["hunter2", "deep", "sk-abc"] {
            assert!(
                !entry.payload.contains(secret),
                "{secret}: {}",
                entry.payload
            );
        }
        assert!(!entry.message.contains("hunter2"), "{}", entry.message);
        let bytes = entry_from_raw(3, b"\xff\xfe not utf-8");
        assert!(!bytes.is_json);
        assert_eq!(bytes.id, content_id(b"\xff\xfe not utf-8"));
    }

    #[test]
    fn a_summary_reads_mutts_fields() {
        let raw = r#"{"hostname":"web-1","message":"disk full","_retry_count":4,"shedding_reason":"queue_depth_exceeded:2500>2000","_correlation_id":"c-1"}"#;
        let entry = entry_from_raw(3, raw.as_bytes());
        assert_eq!(entry.index, 3);
        assert_eq!(entry.host, "web-1");
        assert_eq!(entry.message, "disk full");
        assert_eq!(entry.retry_count, Some(4));
        assert_eq!(entry.moog_retry_count, None);
        assert_eq!(
            entry.shedding_reason.as_deref(),
            Some("queue_depth_exceeded:2500>2000")
        );
        assert_eq!(entry.id, content_id(raw.as_bytes()));
        assert_ne!(entry.id, content_id(b"{}"));
    }

    #[test]
    fn replay_resets_counters_counts_the_replay_and_keeps_every_other_byte() {
        let raw = r#"{"hostname": "db1", "_retry_count": 4, "ts": 1795558031.7283456, "big": 123456789012345678901234567890, "raw_json": {"a": [1, 2]}}"#;
        let ReplayEdit::Replay(out) =
            edit_for_replay(raw.as_bytes(), &["_retry_count", "_moog_retry_count"], 3)
        else {
            panic!("not poison");
        };
        assert_eq!(
            out,
            r#"{"hostname":"db1","_retry_count":0,"ts":1795558031.7283456,"big":123456789012345678901234567890,"raw_json":{"a": [1, 2]},"_ward_replays":1}"#
        );
        let ReplayEdit::Replay(again) = edit_for_replay(out.as_bytes(), &["_retry_count"], 3)
        else {
            panic!("not poison yet");
        };
        assert!(again.ends_with(r#""_ward_replays":2}"#), "{again}");
        let thrice = r#"{"hostname":"db1","_ward_replays":3}"#;
        assert_eq!(
            edit_for_replay(thrice.as_bytes(), &["_retry_count"], 3),
            ReplayEdit::Poison
        );
        for not_an_object in [&b"plain text"[..], b"[1, 2]", b"{\"a\": \xff}"] {
            assert_eq!(
                edit_for_replay(not_an_object, &["_retry_count"], 3),
                ReplayEdit::NotJson
            );
        }
    }

    #[test]
    fn shedding_follows_mutts_thresholds_and_fallbacks() {
        let config = vec![
            ("alerter_queue_shed_threshold".to_owned(), "50".to_owned()),
            ("alerter_shed_mode".to_owned(), "defer".to_owned()),
        ];
        let s = MuttShedding::from_config(&config, 51);
        assert!(s.active());
        assert_eq!(
            s.shed,
            MuttThreshold {
                at: 50,
                from_default: false,
                unreadable: None,
            }
        );
        assert_eq!(
            s.warn,
            MuttThreshold {
                at: defaults::WARN_THRESHOLD,
                from_default: true,
                unreadable: None,
            }
        );
        assert_eq!(s.mode, "defer");
        let lots = vec![("alerter_queue_shed_threshold".to_owned(), "lots".to_owned())];
        let unreadable = MuttShedding::from_config(&lots, 0);
        assert_eq!(unreadable.shed.unreadable.as_deref(), Some("lots"));
        assert_eq!(unreadable.shed.at, defaults::SHED_THRESHOLD);
        assert_eq!(
            MuttShedding::from_config(&config, 50).load,
            MuttLoad::Normal
        );
        let warn_only = vec![("alerter_queue_warn_threshold".to_owned(), "10".to_owned())];
        assert_eq!(
            MuttShedding::from_config(&warn_only, 11).load,
            MuttLoad::OverWarn
        );
    }

    #[test]
    fn settings_are_checked_as_mutt_reads_them() {
        assert_eq!(
            check_setting("alerter_queue_shed_threshold", "5000"),
            Ok(None)
        );
        assert!(check_setting("alerter_queue_shed_threshold", "lots").is_err());
        assert!(check_setting("alerter_shed_mode", "bogus").is_err());
        assert_eq!(check_setting("alerter_shed_mode", "defer"), Ok(None));
        assert_eq!(
            check_setting("slo_ingestor_availability_window_hours", "24"),
            Ok(None)
        );
        assert!(check_setting("slo_x_burn_rate_warning", "high").is_err());
        assert!(matches!(
            check_setting("alerter_shed_modee", "dlq"),
            Ok(Some(_))
        ));
    }

    #[test]
    fn an_open_breaker_half_opens_after_its_timeout() {
        let b = MuttBreaker {
            name: "moogsoft".into(),
            state: Some("OPEN".into()),
            failures: Some(10),
            open_time_ms: Some(1_000),
            timeout_ms: 300_000,
        };
        assert_eq!(b.half_opens_at_ms(), Some(301_000));
        let never = MuttBreaker { state: None, ..b };
        assert_eq!(never.effective_state(), "CLOSED");
        assert_eq!(never.half_opens_at_ms(), None);
    }
}

/// A DLQ page to read along with the figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MuttPageQuery {
    pub dlq: MuttDlqName,
    /// 0 = the newest entry.
    pub offset: u64,
    pub limit: u64,
}
