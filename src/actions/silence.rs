//! Silence actions: the record a plan will write, and its preview — what the silence would have
//! hidden in the last hour, in the DLQ and among scheduled sends.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Action, ActionError, Actions};
use crate::engine::matcher::{Matcher, compile_all, matches_all};
use crate::engine::silence::{validate_comment, validate_new};
use crate::model::{
    Alert, DeliveryJob, DlqCursor, DlqFilter, Envelope, FailedSet, QueueName, SEEN_RETENTION_MS,
    Silence, SilenceKind, match_labels, matchers_text, new_ulid,
};

/// Alerts seen in the last hour read for a preview, per partition.
pub const PREVIEW_SEEN_MAX: usize = 5_000;
/// DLQ entries read for a preview, per queue.
pub const PREVIEW_DLQ_MAX: usize = 5_000;
/// Scheduled entries read for a preview, per queue and partition.
pub const PREVIEW_SCHEDULED_MAX: usize = 1_000;
/// Alerts named in a preview's sample.
const PREVIEW_SAMPLE: usize = 5;

/// One place a preview looked: how many matched of how many read, and of how many there are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewCount {
    pub matched: u64,
    pub examined: u64,
    /// Everything there, when known: above `examined`, the figure covers part of it.
    pub total: Option<u64>,
}

impl PreviewCount {
    /// Every entry there was read.
    pub fn complete(&self) -> bool {
        self.total.is_none_or(|t| t <= self.examined)
    }

    /// `3`, or `3 (over the 5000 read of 12000)` when the read stopped short.
    pub fn describe(&self) -> String {
        if self.complete() {
            self.matched.to_string()
        } else {
            format!(
                "{} (over the {} read of {})",
                self.matched,
                self.examined,
                self.total.unwrap_or_default()
            )
        }
    }
}

/// What a silence would have hidden, had it been active.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilencePreview {
    /// Distinct alerts the router saw in the last hour.
    pub last_hour: PreviewCount,
    /// Of those, the ones firing now: hidden from the moment it starts.
    pub firing_now: u64,
    pub dlq: PreviewCount,
    pub scheduled: PreviewCount,
    /// A few matched alerts: `alertname {labels}`.
    pub sample: Vec<String>,
}

impl SilencePreview {
    pub fn lines(&self) -> Vec<String> {
        vec![
            format!(
                "would have hidden {} alerts seen in the last hour ({} firing now)",
                self.last_hour.describe(),
                self.firing_now
            ),
            format!(
                "DLQ entries {} · scheduled sends {}",
                self.dlq.describe(),
                self.scheduled.describe()
            ),
        ]
    }
}

impl Actions {
    /// The silence a create action will write: validated against the policy, owned by the actor.
    pub(super) fn silence_record(&self, action: &Action, now: i64) -> Result<Silence, ActionError> {
        let Action::SilenceCreate {
            matchers,
            starts_at_ms,
            ends_at_ms,
            comment,
            ..
        } = action
        else {
            return Err(ActionError::Invalid("not a silence".to_owned()));
        };
        let draft = Silence {
            id: new_ulid(now).to_ascii_lowercase(),
            matchers: matchers.clone(),
            starts_at_ms: *starts_at_ms,
            ends_at_ms: *ends_at_ms,
            created_by: self.actor.user.clone(),
            comment: comment.clone(),
            updated_at_ms: now,
            kind: SilenceKind::Silence,
        };
        validate_new(&draft, now, &self.silences)
            .map_err(|e| ActionError::Invalid(format!("silence: {e}")))
    }

    /// Count what the matchers would have hidden: alerts seen in the last hour, DLQ entries and
    /// scheduled sends (each read up to a bound, and said so when the bound cut it).
    pub(super) async fn silence_preview(
        &self,
        silence: &Silence,
        now: i64,
    ) -> Result<SilencePreview, ActionError> {
        let matchers = compile_all(&silence.matchers)
            .map_err(|e| ActionError::Invalid(format!("silence: {e}")))?;
        let mut preview = SilencePreview::default();
        let mut sample = BTreeSet::new();
        let seen = self
            .store
            .alerts_seen(now - SEEN_RETENTION_MS, PREVIEW_SEEN_MAX)
            .await?;
        preview.last_hour.examined = seen.len() as u64;
        for alert in &seen {
            if matches_all(&matchers, &alert.labels) {
                preview.last_hour.matched += 1;
                preview.firing_now += u64::from(alert.is_firing(now));
                note_sample(&mut sample, &alert.labels);
            }
        }
        for queue in [QueueName::ingest(), QueueName::delivery()] {
            let dlq = self.dlq_matches(&queue, &matchers, &mut sample).await?;
            add(&mut preview.dlq, &dlq);
            let entries = self
                .store
                .scheduled_entries(&queue, PREVIEW_SCHEDULED_MAX)
                .await?;
            let mut scheduled = PreviewCount {
                examined: entries.len() as u64,
                ..PreviewCount::default()
            };
            for envelope in &entries {
                if let Some(labels) = labels_of(envelope)
                    && matches_all(&matchers, &labels)
                {
                    scheduled.matched += 1;
                    note_sample(&mut sample, &labels);
                }
            }
            let stats = self.store.stats(std::slice::from_ref(&queue)).await?;
            scheduled.total = stats.queues.first().map(|q| q.scheduled);
            add(&mut preview.scheduled, &scheduled);
        }
        preview.sample = sample.into_iter().take(PREVIEW_SAMPLE).collect();
        Ok(preview)
    }

    /// An unknown id is refused; an expired silence and the alerts it hides now are said.
    pub(super) async fn expire_warnings(
        &self,
        id: &str,
        now: i64,
    ) -> Result<Vec<String>, ActionError> {
        let Some(silence) = self.store.silence_get(id).await? else {
            return Err(ActionError::Invalid(format!(
                "silence_expire: no silence {:?}",
                crate::model::sanitize(id)
            )));
        };
        if silence.state(now) == crate::model::SilenceState::Expired {
            return Ok(vec!["it has already expired: nothing changes".to_owned()]);
        }
        let matchers = compile_all(&silence.matchers)
            .map_err(|e| ActionError::Invalid(format!("silence: {e}")))?;
        let hidden = self
            .store
            .alerts_seen(now - SEEN_RETENTION_MS, PREVIEW_SEEN_MAX)
            .await?
            .iter()
            .filter(|a| a.is_firing(now) && matches_all(&matchers, &a.labels))
            .count();
        Ok(if hidden > 0 && silence.is_active(now) {
            vec![format!(
                "{hidden} firing alerts it hides now are delivered again from their next send"
            )]
        } else {
            Vec::new()
        })
    }

    /// The plan as confirmed: a comment edited in the confirm dialog goes into the silence it
    /// writes, checked against the policy as the planned one was. `None` when nothing changed.
    pub(super) fn confirmed_silence(
        &self,
        plan: &super::Plan,
    ) -> Result<Option<super::Plan>, ActionError> {
        let (Action::SilenceCreate { comment, .. }, Some(silence)) = (&plan.action, &plan.silence)
        else {
            return Ok(None);
        };
        if *comment == silence.comment {
            return Ok(None);
        }
        validate_comment(comment, &self.silences)
            .map_err(|e| ActionError::Invalid(format!("silence: {e}")))?;
        let mut plan = plan.clone();
        if let Some(silence) = plan.silence.as_mut() {
            silence.comment.clone_from(comment);
        }
        Ok(Some(plan))
    }

    /// Write a planned silence (ending the one it replaces); its id.
    pub(super) async fn create_silence(
        &self,
        plan: &super::Plan,
    ) -> crate::store::StoreResult<String> {
        let now = self.store.now_ms();
        let Some(silence) = &plan.silence else {
            return Err(crate::store::StoreError::Invalid(
                "the plan holds no silence".to_owned(),
            ));
        };
        if silence.ends_at_ms <= now {
            return Err(crate::store::StoreError::Invalid(
                "the silence's end passed before it was confirmed: plan it again".to_owned(),
            ));
        }
        self.store.silence_put(silence).await?;
        if let Action::SilenceCreate {
            replaces: Some(old),
            ..
        } = &plan.action
            && let Some(previous) = self.store.silence_get(old).await?
        {
            self.store.silence_put(&previous.expired_at(now)).await?;
        }
        Ok(silence.id.clone())
    }

    /// End a silence now: 1 when it changed, 0 when it had already ended.
    pub(super) async fn expire_silence(&self, id: &str) -> crate::store::StoreResult<u64> {
        let now = self.store.now_ms();
        let Some(silence) = self.store.silence_get(id).await? else {
            return Err(crate::store::StoreError::Invalid(format!(
                "no silence {:?}",
                crate::model::sanitize(id)
            )));
        };
        if silence.state(now) == crate::model::SilenceState::Expired {
            return Ok(0);
        }
        self.store.silence_put(&silence.expired_at(now)).await?;
        Ok(1)
    }

    async fn dlq_matches(
        &self,
        queue: &QueueName,
        matchers: &[Matcher],
        sample: &mut BTreeSet<String>,
    ) -> Result<PreviewCount, ActionError> {
        let filter = DlqFilter::default();
        let mut count = PreviewCount {
            total: Some(
                self.store
                    .failed_count(queue, FailedSet::Dlq, &filter)
                    .await?,
            ),
            ..PreviewCount::default()
        };
        let mut cursor = Some(DlqCursor::newest());
        while let Some(at) = cursor.take() {
            let left = PREVIEW_DLQ_MAX.saturating_sub(count.examined as usize);
            if left == 0 {
                break;
            }
            let page = self
                .store
                .failed_page(queue, FailedSet::Dlq, &filter, &at, left.min(500))
                .await?;
            count.examined += page.entries.len() as u64;
            for entry in &page.entries {
                if let Ok(envelope) = &entry.envelope
                    && let Some(labels) = labels_of(envelope)
                    && matches_all(matchers, &labels)
                {
                    count.matched += 1;
                    note_sample(sample, &labels);
                }
            }
            cursor = page.next;
        }
        Ok(count)
    }
}

fn add(into: &mut PreviewCount, more: &PreviewCount) {
    into.matched += more.matched;
    into.examined += more.examined;
    into.total = match (into.total, more.total) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    };
}

/// The labels silences see for a stored item: a delivery job's alert, or an ingested alert.
fn labels_of(envelope: &Envelope) -> Option<BTreeMap<String, String>> {
    envelope
        .payload
        .decode::<DeliveryJob>()
        .map(|job| job.alert)
        .or_else(|_| envelope.payload.decode::<Alert>())
        .ok()
        .map(|alert| match_labels(&alert).into_owned())
}

fn note_sample(sample: &mut BTreeSet<String>, labels: &BTreeMap<String, String>) {
    if sample.len() < PREVIEW_SAMPLE * 4 {
        let name = labels.get("alertname").map_or("", String::as_str);
        let rest: Vec<crate::model::LabelMatcher> = labels
            .iter()
            .filter(|(k, _)| *k != "alertname")
            .map(|(k, v)| crate::model::LabelMatcher::new(k, crate::model::MatchOp::Equal, v))
            .collect();
        let line = format!("{name} {}", matchers_text(&rest));
        sample.insert(crate::model::sanitize(&line).into_owned());
    }
}
