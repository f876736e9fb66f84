//! Whether an alert is held back, and by what: inhibition first, then maintenance windows,
//! then silences (Alertmanager's order: inhibit, time intervals, silence). The pipeline asks
//! before each send; the control room asks the same question of the alerts it shows.

use std::collections::BTreeMap;

use super::inhibit::{InhibitRule, Inhibitor};
use super::matcher::{Matcher, matches_all};
use super::silence::SilenceIndex;
use super::timeinterval::{Occurrence, TimeIntervals};
use crate::model::{SeenAlert, Silence, SilenceKind, Suppression};

/// Planned work that silences itself: matching alerts are held back while a window is open.
#[derive(Debug, Clone)]
pub struct MaintenanceWindow {
    pub name: String,
    pub intervals: TimeIntervals,
    pub matchers: Vec<Matcher>,
    pub comment: String,
}

impl MaintenanceWindow {
    pub fn is_open(&self, at_ms: i64) -> bool {
        self.intervals.any_contains(at_ms)
    }

    /// The occurrence open at `at_ms`, else the next one.
    pub fn current_or_next(&self, at_ms: i64) -> Option<Occurrence> {
        self.intervals.current_or_next(at_ms)
    }

    pub fn holds(&self, labels: &BTreeMap<String, String>, at_ms: i64) -> bool {
        matches_all(&self.matchers, labels) && self.is_open(at_ms)
    }

    /// The window as an inventory row: a silence of kind maintenance over its current or next
    /// occurrence (an expired one when none is ahead), owned by the config.
    pub fn as_silence(&self, at_ms: i64) -> Silence {
        let occurrence = self.current_or_next(at_ms);
        let (starts_at_ms, ends_at_ms) = occurrence.map_or((at_ms - 1, at_ms - 1), |o| {
            (o.start_ms, o.end_ms.saturating_sub(1))
        });
        Silence {
            id: format!("maintenance:{}", self.name),
            matchers: self.matchers.iter().map(|m| m.spec().clone()).collect(),
            starts_at_ms,
            ends_at_ms,
            created_by: "config".to_owned(),
            comment: if self.comment.is_empty() {
                format!("every {}", self.intervals)
            } else {
                format!("{} (every {})", self.comment, self.intervals)
            },
            updated_at_ms: at_ms,
            kind: SilenceKind::Maintenance,
        }
    }
}

/// What the configuration holds back with: inhibition rules and maintenance windows.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub inhibit: Vec<InhibitRule>,
    pub maintenance: Vec<MaintenanceWindow>,
}

/// Silences, maintenance windows, and inhibition over the alerts firing when it was built.
#[derive(Debug, Default)]
pub struct Suppressor {
    pub silences: std::sync::Arc<SilenceIndex>,
    pub inhibitor: Inhibitor,
    pub maintenance: Vec<MaintenanceWindow>,
    /// When the silences and alerts were read (ms).
    pub read_at_ms: i64,
    /// Built from a read (the default, before any read, holds nothing back).
    pub loaded: bool,
}

impl Suppressor {
    pub fn new(silences: Vec<Silence>, rules: &Rules, alerts: &[SeenAlert], now_ms: i64) -> Self {
        Self {
            silences: std::sync::Arc::new(SilenceIndex::new(silences, now_ms)),
            inhibitor: Inhibitor::new(&rules.inhibit, alerts, now_ms),
            maintenance: rules.maintenance.clone(),
            read_at_ms: now_ms,
            loaded: true,
        }
    }

    /// As [`Suppressor::new`], keeping `previous`'s silence index when the silences are the
    /// same (workers re-read them every control interval).
    pub fn renewed(
        previous: &Self,
        silences: Vec<Silence>,
        rules: &Rules,
        alerts: &[SeenAlert],
        now_ms: i64,
    ) -> Self {
        let index =
            if previous.loaded && previous.silences.digest == SilenceIndex::digest_of(&silences) {
                previous.silences.clone()
            } else {
                std::sync::Arc::new(SilenceIndex::new(silences, now_ms))
            };
        Self {
            silences: index,
            inhibitor: Inhibitor::new(&rules.inhibit, alerts, now_ms),
            maintenance: rules.maintenance.clone(),
            read_at_ms: now_ms,
            loaded: true,
        }
    }

    /// Nothing could hold an alert back.
    pub fn is_idle(&self) -> bool {
        self.silences.is_empty() && self.inhibitor.is_empty() && self.maintenance.is_empty()
    }

    /// Whether this alert (its labels and severity) could be held back at all: false lets the
    /// pipeline skip building its label set for the full check.
    pub fn may_hold(&self, labels: &BTreeMap<String, String>, severity: &str) -> bool {
        !self.inhibitor.is_empty()
            || !self.maintenance.is_empty()
            || self.silences.has_candidates(
                labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .chain(std::iter::once(("severity", severity))),
            )
    }

    /// Why this alert is held back at `now_ms`, if it is.
    pub fn check(
        &self,
        fingerprint: &str,
        labels: &BTreeMap<String, String>,
        now_ms: i64,
    ) -> Option<Suppression> {
        if let Some(inhibited) = self.inhibitor.inhibited_by(fingerprint, labels) {
            return Some(inhibited);
        }
        if let Some(window) = self.maintenance.iter().find(|w| w.holds(labels, now_ms)) {
            return Some(Suppression::Maintenance {
                window: window.name.clone(),
            });
        }
        let ids = self.silences.silenced_by(labels, now_ms);
        (!ids.is_empty()).then_some(Suppression::Silenced { ids })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::matcher::parse_matchers;

    fn silence(id: &str, matchers: &str) -> Silence {
        Silence {
            id: id.to_owned(),
            matchers: parse_matchers(matchers).unwrap(),
            starts_at_ms: 0,
            ends_at_ms: 1_000,
            created_by: "ann".to_owned(),
            comment: "why".to_owned(),
            updated_at_ms: 0,
            kind: SilenceKind::Silence,
        }
    }

    #[test]
    fn unchanged_silences_keep_their_index_and_a_change_rebuilds_it() {
        let rules = Rules::default();
        let first = Suppressor::new(vec![silence("a", "x=~\"db-.*\"")], &rules, &[], 10);
        let same = Suppressor::renewed(&first, vec![silence("a", "x=~\"db-.*\"")], &rules, &[], 20);
        assert!(std::sync::Arc::ptr_eq(&first.silences, &same.silences));
        assert_eq!(same.read_at_ms, 20);
        let mut expired = silence("a", "x=~\"db-.*\"");
        expired.ends_at_ms = 15;
        let changed = Suppressor::renewed(&same, vec![expired], &rules, &[], 20);
        assert!(!std::sync::Arc::ptr_eq(&same.silences, &changed.silences));
        let labels = [("x".to_owned(), "db-1".to_owned())].into();
        assert!(same.check("fp", &labels, 20).is_some());
        assert!(
            changed.check("fp", &labels, 20).is_none(),
            "the end moved: rebuilt"
        );
        let unloaded = Suppressor::default();
        let built = Suppressor::renewed(&unloaded, Vec::new(), &rules, &[], 1);
        assert!(built.loaded);
    }
}
