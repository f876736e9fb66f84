//! `[alerting]`: who may silence and for how long, inhibition rules, maintenance windows.

use serde::{Deserialize, Serialize};

use crate::engine::inhibit::{InhibitRule, InhibitRuleConfig, compile_rules};
use crate::engine::matcher::{Matcher, parse_matchers};
use crate::engine::silence::{DEFAULT_MAX_SILENCE_MS, SilencePolicy};
use crate::engine::suppress::MaintenanceWindow;
use crate::engine::timeinterval::{TimeInterval, TimeIntervalSpec, TimeIntervals};

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    pub silences: SilencesConfig,
    /// Alertmanager's `inhibit_rules`: a firing source mutes matching targets.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inhibit_rules: Vec<InhibitRuleConfig>,
    /// Recurring windows of planned work: matching alerts are held back while one is open.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub maintenance: Vec<MaintenanceConfig>,
}

/// One maintenance window as written: `every = "Sun 02:00-04:00 Europe/Berlin"`, or
/// Alertmanager's `time_intervals`, and the matchers of the alerts it holds back.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceConfig {
    pub name: String,
    /// The short form: weekdays, a time range and a zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
    /// Alertmanager's time interval fields (times, weekdays, days_of_month, months, years,
    /// location), ORed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub time_intervals: Vec<TimeIntervalSpec>,
    /// Matchers in Alertmanager's syntax, e.g. `cluster="db"`; all must match.
    pub matchers: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
}

impl MaintenanceConfig {
    fn compile(&self) -> Result<MaintenanceWindow, String> {
        if self.name.trim().is_empty() {
            return Err("a window needs a name".to_owned());
        }
        let intervals = match (&self.every, self.time_intervals.is_empty()) {
            (Some(every), true) => TimeIntervals(vec![
                TimeInterval::parse_short(every).map_err(|e| e.to_string())?,
            ]),
            (None, false) => TimeIntervals(
                self.time_intervals
                    .iter()
                    .map(|spec| TimeInterval::new(spec.clone()).map_err(|e| e.to_string()))
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err("give either every or time_intervals".to_owned()),
        };
        let mut matchers = Vec::new();
        for text in &self.matchers {
            for spec in parse_matchers(text).map_err(|e| e.to_string())? {
                matchers.push(Matcher::compile(&spec).map_err(|e| e.to_string())?);
            }
        }
        if matchers.iter().all(|m| m.matches_value("")) {
            return Err(
                "its matchers would hold back every alert: add one like alertname=\"…\"".to_owned(),
            );
        }
        Ok(MaintenanceWindow {
            name: self.name.clone(),
            intervals,
            matchers,
            comment: self.comment.clone(),
        })
    }
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
        let mut names = std::collections::BTreeSet::new();
        for (at, window) in self.maintenance.iter().enumerate() {
            let key = format!("alerting.maintenance[{at}]");
            window
                .compile()
                .map_err(|m| (key.clone(), format!("{:?}: {m}", window.name)))?;
            if !names.insert(window.name.as_str()) {
                return Err((key, format!("the name {:?} is used twice", window.name)));
            }
        }
        Ok(())
    }

    /// The maintenance windows, compiled (invalid ones were refused at load).
    pub fn maintenance_windows(&self) -> Vec<MaintenanceWindow> {
        self.maintenance
            .iter()
            .filter_map(|w| w.compile().ok())
            .collect()
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

    /// Inhibition rules and maintenance windows, compiled.
    pub fn rules(&self) -> crate::engine::suppress::Rules {
        crate::engine::suppress::Rules {
            inhibit: self.inhibit_rules(),
            maintenance: self.maintenance_windows(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> AlertingConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_weekly_window_opens_in_its_zone_and_names_its_next_opening() {
        let config = parse(
            r#"
            [[maintenance]]
            name = "db-patching"
            every = "Sun 02:00-04:00 Europe/Berlin"
            matchers = ['cluster="db"']
            "#,
        );
        config.validate().unwrap();
        let window = &config.maintenance_windows()[0];
        // Sunday 2026-12-06 01:30 UTC is 02:30 in Berlin (CET, UTC+1): open.
        let inside = crate::model::time::parse_rfc3339_ms("2026-12-06T01:30:00Z").unwrap();
        assert!(window.is_open(inside));
        let after = crate::model::time::parse_rfc3339_ms("2026-12-06T03:00:00Z").unwrap();
        assert!(!window.is_open(after), "04:00 Berlin has passed");
        let next = window.current_or_next(after).unwrap();
        assert_eq!(
            crate::model::time::format_rfc3339_ms(next.start_ms),
            "2026-12-13T01:00:00.000Z"
        );
        let row = window.as_silence(after);
        assert_eq!(row.starts_at_ms, next.start_ms);
        assert!(
            row.comment.contains("Sun 02:00–04:00 Europe/Berlin"),
            "{}",
            row.comment
        );
    }

    #[test]
    fn bad_windows_are_refused_naming_the_window() {
        for (text, says) in [
            (
                "[[maintenance]]\nname = \"a\"\nmatchers = ['x=\"y\"']",
                "either every or time_intervals",
            ),
            (
                "[[maintenance]]\nname = \"a\"\nevery = \"Sun\"\nmatchers = ['x=~\".*\"']",
                "every alert",
            ),
            (
                "[[maintenance]]\nname = \"a\"\nevery = \"Sun 02:00-04:00 Mars/Olympus\"\nmatchers = ['x=\"y\"']",
                "Mars/Olympus",
            ),
            (
                "[[maintenance]]\nname = \"a\"\nevery = \"Sun\"\nmatchers = ['x=\"y\"']\n[[maintenance]]\nname = \"a\"\nevery = \"Mon\"\nmatchers = ['x=\"y\"']",
                "used twice",
            ),
        ] {
            let (key, message) = parse(text).validate().unwrap_err();
            assert!(key.starts_with("alerting.maintenance["), "{key}");
            assert!(message.contains(says), "{message}");
        }
    }
}
