//! `[alerting]`: who may silence and for how long, inhibition rules, maintenance windows.

use serde::{Deserialize, Serialize};

use crate::engine::inhibit::{InhibitRule, InhibitRuleConfig, compile_rules};
use crate::engine::silence::{DEFAULT_MAX_SILENCE_MS, SilencePolicy};

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    pub silences: SilencesConfig,
    /// Alertmanager's `inhibit_rules`: a firing source mutes matching targets.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inhibit_rules: Vec<InhibitRuleConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SilencesConfig {
    /// Longest silence an operator may create, in hours.
    pub max_duration_h: u32,
    /// Shortest comment accepted: a silence says why.
    pub min_comment_chars: usize,
    /// A regex the comment must contain, e.g. `[A-Z]+-[0-9]+` for a ticket; empty = none.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub comment_pattern: String,
}

impl Default for SilencesConfig {
    fn default() -> Self {
        Self {
            max_duration_h: (DEFAULT_MAX_SILENCE_MS / 3_600_000) as u32,
            min_comment_chars: 1,
            comment_pattern: String::new(),
        }
    }
}

impl AlertingConfig {
    pub(super) fn validate(&self) -> Result<(), (String, String)> {
        if self.silences.max_duration_h == 0 {
            return Err((
                "alerting.silences.max_duration_h".to_owned(),
                "must be at least 1 hour".to_owned(),
            ));
        }
        if !self.silences.comment_pattern.is_empty() {
            regex::Regex::new(&self.silences.comment_pattern).map_err(|e| {
                (
                    "alerting.silences.comment_pattern".to_owned(),
                    format!("does not compile: {e}"),
                )
            })?;
        }
        compile_rules(&self.inhibit_rules)
            .map_err(|e| ("alerting.inhibit_rules".to_owned(), e.to_string()))?;
        Ok(())
    }

    /// The rules new silences must follow (the config was validated at load).
    pub fn silence_policy(&self) -> SilencePolicy {
        SilencePolicy {
            max_duration_ms: i64::from(self.silences.max_duration_h) * 3_600_000,
            min_comment_chars: self.silences.min_comment_chars,
            comment_pattern: (!self.silences.comment_pattern.is_empty())
                .then(|| regex::Regex::new(&self.silences.comment_pattern).ok())
                .flatten(),
        }
    }

    /// The inhibition rules, compiled (invalid ones were refused at load).
    pub fn inhibit_rules(&self) -> Vec<InhibitRule> {
        compile_rules(&self.inhibit_rules).unwrap_or_default()
    }
}
