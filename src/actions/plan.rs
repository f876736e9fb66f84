//! The dry run: what an action would touch, read from the store without changing it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Action, ActionError, Actions, Scope, Tier};
use crate::model::{DlqCursor, MAX_BATCH, new_ulid};

/// One entry of a plan's sample, as the confirm dialog lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleRow {
    pub id: String,
    pub tenant: String,
    pub error_class: String,
    pub error_message: String,
    pub last_failure_ms: i64,
}

/// An action with everything the operator confirms: the exact count, a sample, the target,
/// the batch size, the pace and the time it will take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Kept in the audit record, so one run's effects can be found again.
    pub id: String,
    pub action: Action,
    pub summary: String,
    pub target: String,
    pub tier: Tier,
    /// Entries (bulk actions) or settings (1) the action changes.
    pub count: u64,
    pub sample: Vec<SampleRow>,
    pub batch_size: usize,
    pub rate_per_s: Option<u32>,
    pub eta: Option<Duration>,
    /// What the operator should know before confirming.
    pub warnings: Vec<String>,
    pub planned_at_ms: i64,
    /// The newest entry a MUTT "oldest N" plan covers, as read: the run stops there, so an
    /// entry that failed after the plan is never taken. Kept in memory only (it may hold secrets).
    #[serde(skip)]
    pub mutt_boundary: Option<Vec<u8>>,
    /// The operator's reason for a run whose action carries none (a bulk move): kept in the
    /// audit record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_reason: Option<String>,
    /// The silence a create will write, exactly (id, owner, times as stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silence: Option<crate::model::Silence>,
    /// What that silence would have hidden.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<super::SilencePreview>,
}

impl Plan {
    /// Why the run happens: the action's own reason (an override's), else the operator's note.
    pub fn reason(&self) -> Option<&str> {
        self.action
            .reason()
            .or(self.run_reason.as_deref())
            .filter(|r| !r.trim().is_empty())
    }
}

impl Actions {
    /// The dry run. Refused before any I/O when the policy forbids the action.
    pub async fn plan(&self, action: Action) -> Result<Plan, ActionError> {
        self.policy.check(&action)?;
        let now = self.store.now_ms();
        action.validate(now)?;
        self.check_here(&action)?;
        let mut action = with_cutoff(action, now);
        let mut stale_marks = None;
        let (count, sample) = match action.dlq_scope() {
            Some((queue, set, Scope::Filter(filter))) => {
                let count = self.store.failed_count(queue, set, filter).await?;
                let page = self
                    .store
                    .failed_page(
                        queue,
                        set,
                        filter,
                        &DlqCursor::start(),
                        self.settings.sample_size,
                    )
                    .await?;
                let rows = page.entries.iter().map(SampleRow::of).collect();
                (count, rows)
            }
            Some((queue, set, Scope::Ids(ids))) => {
                // Marks are re-read: an entry replayed or moved since it was marked is not offered.
                let mut present = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(MAX_BATCH) {
                    present.extend(self.store.failed_entries(queue, set, chunk).await?);
                }
                if present.len() < ids.len() {
                    stale_marks = Some(stale_marks_warning(ids.len(), present.len(), set));
                }
                let rows = present
                    .iter()
                    .take(self.settings.sample_size)
                    .map(SampleRow::of)
                    .collect();
                let count = present.len() as u64;
                action.set_ids(present.into_iter().map(|e| e.meta.id).collect());
                (count, rows)
            }
            None => (1, Vec::new()),
        };
        // A bounded run (`max=`) moves at most that many: the plan says so.
        let count = self.settings.max_items.map_or(count, |max| count.min(max));
        let mut warnings = warnings(&action);
        warnings.splice(0..0, stale_marks);
        let (silence, preview) = match &action {
            Action::SilenceCreate { .. } => {
                let silence = self.silence_record(&action, now)?;
                let preview = self.silence_preview(&silence, now).await?;
                (Some(silence), Some(preview))
            }
            Action::SilenceExpire { id } => {
                warnings.extend(self.expire_warnings(id, now).await?);
                (None, None)
            }
            _ => (None, None),
        };
        let mut plan = Plan::assemble(
            action,
            &self.target,
            &self.settings,
            (count, sample),
            warnings,
            now,
        );
        plan.silence = silence;
        plan.preview = preview;
        Ok(plan)
    }

    /// Refuse what cannot run on this deployment: a MUTT action, a test alert to a channel
    /// that is not configured.
    fn check_here(&self, action: &Action) -> Result<(), ActionError> {
        if action.kind().is_mutt() {
            return Err(ActionError::Invalid(format!(
                "{} acts on a MUTT deployment: attach with --profile mutt",
                action.kind().as_str()
            )));
        }
        if let Action::SendTestAlert {
            channel: Some(channel),
            ..
        } = action
            && !self.channels.is_empty()
            && !self.channels.contains(channel)
        {
            return Err(ActionError::Invalid(format!(
                "send_test_alert: no channel {channel:?} is configured (channels: {})",
                self.channels.join(", ")
            )));
        }
        Ok(())
    }
}

/// What the plan says when some marked entries went since they were marked.
fn stale_marks_warning(marked: usize, present: usize, set: crate::model::FailedSet) -> String {
    let place = match set {
        crate::model::FailedSet::Dlq => "DLQ",
        crate::model::FailedSet::Dead => "dead list",
    };
    format!(
        "{} of the {marked} marked entries are no longer in the {place} (moved since they were \
         marked): only the {present} still there are taken",
        marked - present
    )
}

impl SampleRow {
    fn of(entry: &crate::model::DlqEntry) -> Self {
        Self {
            id: entry.meta.id.0.clone(),
            tenant: entry.meta.tenant.clone(),
            error_class: entry.meta.error_class.clone(),
            error_message: entry.meta.error_message.clone(),
            last_failure_ms: entry.meta.last_failure_ms,
        }
    }
}

impl Plan {
    /// A plan for `action` with its count and sample: the pace and the time it takes follow
    /// from the settings for bulk actions.
    pub(super) fn assemble(
        action: Action,
        target: &str,
        settings: &super::Settings,
        (count, sample): (u64, Vec<SampleRow>),
        warnings: Vec<String>,
        now: i64,
    ) -> Self {
        let bulk = action.is_bulk();
        let rate_per_s = settings.rate_per_s.filter(|r| bulk && *r > 0);
        // Pacing happens between batches: a batch larger than a second's worth would outrun it.
        let batch_size = rate_per_s.map_or(settings.batch_size, |r| {
            settings
                .batch_size
                .min(usize::try_from(r).unwrap_or(usize::MAX))
        });
        Self {
            id: new_ulid(now),
            summary: action.describe(),
            target: target.to_owned(),
            tier: action.tier(),
            count,
            sample,
            batch_size: batch_size.clamp(1, MAX_BATCH),
            rate_per_s,
            eta: if bulk { settings.eta(count) } else { None },
            warnings,
            planned_at_ms: now,
            action,
            mutt_boundary: None,
            run_reason: None,
            silence: None,
            preview: None,
        }
    }
}

/// A filter scope is fixed at planning time: entries that fail again while the action runs
/// land after the cut-off and are not picked up a second time.
fn with_cutoff(mut action: Action, now: i64) -> Action {
    if let Action::Replay {
        scope: Scope::Filter(filter),
        ..
    }
    | Action::Purge {
        scope: Scope::Filter(filter),
        ..
    }
    | Action::MoveToDead {
        scope: Scope::Filter(filter),
        ..
    } = &mut action
    {
        let cutoff = now.saturating_add(1);
        filter.failed_before_ms = Some(filter.failed_before_ms.map_or(cutoff, |t| t.min(cutoff)));
    }
    action
}

fn warnings(action: &Action) -> Vec<String> {
    let mut out = Vec::new();
    match action {
        Action::Purge { .. } => out.push("purged entries cannot be recovered".to_owned()),
        Action::Replay {
            from: crate::model::FailedSet::Dead,
            ..
        } => out.push("replaying from the dead list bypasses the poison guard".to_owned()),
        Action::BreakerReset { .. } => {
            out.push("reset clears the breaker's statistics (its failure window)".to_owned());
        }
        Action::EmergencyStop { on: true, .. } => {
            out.push("nothing is sent until the stop is lifted or expires".to_owned());
        }
        _ => {}
    }
    if let Action::Replay {
        reset_attempts: true,
        ..
    } = action
    {
        out.push("replayed entries start again at attempt 0".to_owned());
    }
    out
}
