//! Silences, the alerts Ward has seen, and why an alert was held back: plain data, shared by the
//! store, the engine that evaluates it and the views that show it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::alert::{Alert, AlertStatus};

/// How a matcher compares a label's value (Alertmanager's four operators).
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
pub enum MatchOp {
    #[serde(rename = "=")]
    Equal,
    #[serde(rename = "!=")]
    NotEqual,
    #[serde(rename = "=~")]
    Regex,
    #[serde(rename = "!~")]
    NotRegex,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Equal => "=",
            Self::NotEqual => "!=",
            Self::Regex => "=~",
            Self::NotRegex => "!~",
        }
    }

    pub fn is_regex(self) -> bool {
        matches!(self, Self::Regex | Self::NotRegex)
    }

    pub fn is_equal(self) -> bool {
        matches!(self, Self::Equal | Self::Regex)
    }

    /// The operator Alertmanager's API describes with `isRegex` and `isEqual`.
    pub fn from_flags(is_regex: bool, is_equal: bool) -> Self {
        match (is_regex, is_equal) {
            (false, true) => Self::Equal,
            (false, false) => Self::NotEqual,
            (true, true) => Self::Regex,
            (true, false) => Self::NotRegex,
        }
    }
}

/// One label matcher as written: `name op "value"`. Compiled (regexes anchored) by the engine.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct LabelMatcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
}

impl LabelMatcher {
    pub fn new(name: impl Into<String>, op: MatchOp, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            op,
            value: value.into(),
        }
    }
}

impl fmt::Display for LabelMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}\"", self.name, self.op.as_str())?;
        for c in self.value.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

/// Matchers in Alertmanager's written form: `{a="b", c=~"d"}`.
pub fn matchers_text(matchers: &[LabelMatcher]) -> String {
    let parts: Vec<String> = matchers.iter().map(ToString::to_string).collect();
    format!("{{{}}}", parts.join(", "))
}

/// What made a silence: an operator, an acknowledgement, or a configured maintenance window.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SilenceKind {
    #[default]
    Silence,
    Maintenance,
}

impl SilenceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Silence => "silence",
            Self::Maintenance => "maintenance",
        }
    }
}

/// Where a silence stands at a moment: derived from its times, never stored.
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
pub enum SilenceState {
    Active,
    Pending,
    Expired,
}

impl SilenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Pending => "pending",
            Self::Expired => "expired",
        }
    }
}

/// Expired silences stay listed this long (Alertmanager's `--data.retention`).
pub const SILENCE_RETENTION_MS: i64 = 120 * 3_600_000;

/// A silence: alerts whose labels match every matcher are not delivered while it is active.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<LabelMatcher>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub created_by: String,
    pub comment: String,
    pub updated_at_ms: i64,
    #[serde(default)]
    pub kind: SilenceKind,
}

impl Silence {
    /// Pending before its start, active from start to end inclusive, then expired.
    pub fn state(&self, now_ms: i64) -> SilenceState {
        if now_ms < self.starts_at_ms {
            SilenceState::Pending
        } else if now_ms <= self.ends_at_ms {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    pub fn is_active(&self, now_ms: i64) -> bool {
        self.state(now_ms) == SilenceState::Active
    }

    /// The silence ended now: an active one ends, a pending one never starts, an expired one
    /// is left as it was.
    #[must_use]
    pub fn expired_at(&self, now_ms: i64) -> Self {
        let mut out = self.clone();
        match self.state(now_ms) {
            SilenceState::Active => out.ends_at_ms = now_ms,
            SilenceState::Pending => {
                out.starts_at_ms = now_ms;
                out.ends_at_ms = now_ms;
            }
            SilenceState::Expired => return out,
        }
        out.updated_at_ms = now_ms;
        out
    }
}

/// An alert as last seen by the router: what silences, inhibition and the control room match on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SeenAlert {
    pub fingerprint: String,
    /// The alert's labels, with `severity` added when only the field carried it.
    pub labels: BTreeMap<String, String>,
    pub status: AlertStatus,
    pub starts_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at_ms: Option<i64>,
    pub last_seen_ms: i64,
}

/// An alert posted without an end is taken as resolved this long after it was last seen
/// (Alertmanager's `resolve_timeout`).
pub const RESOLVE_TIMEOUT_MS: i64 = 5 * 60_000;

/// Seen alerts are kept this long after they were last seen: the silence preview looks back an
/// hour.
pub const SEEN_RETENTION_MS: i64 = 3_600_000;

impl SeenAlert {
    pub fn of(alert: &Alert, now_ms: i64) -> Self {
        Self {
            fingerprint: alert.fingerprint.clone(),
            labels: match_labels(alert).into_owned(),
            status: alert.status,
            starts_at_ms: alert.starts_at_ms,
            ends_at_ms: alert.ends_at_ms,
            last_seen_ms: now_ms,
        }
    }

    /// Firing now: not resolved, its end (or the resolve timeout) not yet reached.
    pub fn is_firing(&self, now_ms: i64) -> bool {
        self.status == AlertStatus::Firing
            && self
                .ends_at_ms
                .map_or(self.last_seen_ms + RESOLVE_TIMEOUT_MS > now_ms, |end| {
                    end > now_ms
                })
    }

    pub fn alertname(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }
}

/// The labels silences and inhibition rules see: the alert's own, plus `severity` from the field
/// when no label carries it.
pub fn match_labels(alert: &Alert) -> std::borrow::Cow<'_, BTreeMap<String, String>> {
    labels_with_severity(&alert.labels, alert.severity)
}

/// `labels`, with `severity` added when no label carries it (cloned only then).
pub fn labels_with_severity(
    labels: &BTreeMap<String, String>,
    severity: super::alert::Severity,
) -> std::borrow::Cow<'_, BTreeMap<String, String>> {
    if labels.contains_key("severity") {
        return std::borrow::Cow::Borrowed(labels);
    }
    let mut labels = labels.clone();
    labels.insert("severity".to_owned(), severity.as_str().to_owned());
    std::borrow::Cow::Owned(labels)
}

/// Why an alert was held back, so the control room can say by what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Suppression {
    /// Active silences (ids) whose matchers all match.
    Silenced { ids: Vec<String> },
    /// A firing alert (fingerprint) inhibits it through a rule.
    Inhibited { rule: String, source: String },
    /// A configured maintenance window is open.
    Maintenance { window: String },
}

impl Suppression {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Silenced { .. } => "silenced",
            Self::Inhibited { .. } => "inhibited",
            Self::Maintenance { .. } => "maintenance",
        }
    }
}

impl fmt::Display for Suppression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Silenced { ids } => write!(f, "silenced by {}", ids.join(", ")),
            Self::Inhibited { rule, source } => write!(f, "inhibited by {source} ({rule})"),
            Self::Maintenance { window } => write!(f, "maintenance window {window}"),
        }
    }
}
