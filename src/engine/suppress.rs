//! Whether an alert is held back, and by what: inhibition first, then silences (Alertmanager's
//! order). The pipeline asks before each send; the control room asks the same question of the
//! alerts it shows.

use std::collections::BTreeMap;

use super::inhibit::{InhibitRule, Inhibitor};
use super::silence::SilenceIndex;
use crate::model::{SeenAlert, Silence, Suppression};

/// Silences, and inhibition over the alerts firing when it was built.
#[derive(Debug, Default)]
pub struct Suppressor {
    pub silences: SilenceIndex,
    pub inhibitor: Inhibitor,
    /// When the silences and alerts were read (ms).
    pub read_at_ms: i64,
}

impl Suppressor {
    pub fn new(
        silences: Vec<Silence>,
        rules: &[InhibitRule],
        alerts: &[SeenAlert],
        now_ms: i64,
    ) -> Self {
        Self {
            silences: SilenceIndex::new(silences, now_ms),
            inhibitor: Inhibitor::new(rules, alerts, now_ms),
            read_at_ms: now_ms,
        }
    }

    /// Nothing could hold an alert back.
    pub fn is_idle(&self) -> bool {
        self.silences.is_empty() && self.inhibitor.is_empty()
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
        let ids = self.silences.silenced_by(labels, now_ms);
        (!ids.is_empty()).then_some(Suppression::Silenced { ids })
    }
}
