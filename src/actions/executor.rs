//! Running a plan: bounded atomic batches at the planned pace, progress after each batch, cancel
//! between batches, counts reconciled at the end, one audit record.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Action, ActionError, Actions, Plan, Scope};
use crate::model::{
    Alert, AlertStatus, AuditRecord, DlqCursor, DlqScope, Envelope, Flag, FlagState, Payload,
    QueueName, Severity, TEST_CHANNEL_LABEL, TestDelivery, TestStatus, fingerprint, new_ulid,
};
use crate::store::{BatchResult, ReplayOptions, StoreResult, update_breaker};

/// How far a running plan has got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Entries moved (or poisoned) so far.
    pub done: u64,
    /// The plan's count.
    pub total: u64,
    pub batches: u32,
    pub elapsed: Duration,
}

impl Progress {
    /// Entries per second so far; `None` before a second has passed (one batch is no rate).
    pub fn rate(&self) -> Option<f64> {
        let secs = self.elapsed.as_secs_f64();
        (secs >= 1.0).then(|| self.done as f64 / secs)
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "detail", rename_all = "snake_case")]
pub enum Outcome {
    Completed,
    /// Stopped between batches: every count is exact.
    Cancelled,
    /// A batch's answer was lost: the counts are re-read, not assumed.
    Indeterminate(String),
    /// Nothing was changed: the engine runs in dry-run mode.
    DryRun,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Indeterminate(_) => "indeterminate",
            Self::DryRun => "dry-run",
        }
    }
}

/// What a run did, reconciled against the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub plan_id: String,
    pub outcome: Outcome,
    /// Entries replayed, purged or buried (1 for a single change that was applied).
    pub moved: u64,
    /// Entries the poison guard sent to the dead list instead of replaying.
    pub poisoned: u64,
    /// Entries gone before their batch reached them (a MUTT DLQ: MUTT's remediation took them).
    #[serde(default)]
    pub vanished: u64,
    pub batches: u32,
    /// Entries still matching the scope afterwards, re-read from the store (bulk filters only).
    pub remaining: Option<u64>,
    pub duration_ms: u64,
    /// The audit record's id, `None` if it could not be written (the error is logged).
    pub audit_id: Option<String>,
    /// How a test alert ended: followed until its worker reports, or the timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<TestDelivery>,
    /// The id of the silence created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silence_id: Option<String>,
}

impl Report {
    /// The report of a run that has not moved anything yet.
    pub(super) fn start(plan: &Plan) -> Self {
        Self {
            plan_id: plan.id.clone(),
            outcome: Outcome::Completed,
            moved: 0,
            poisoned: 0,
            vanished: 0,
            batches: 0,
            remaining: None,
            duration_ms: 0,
            audit_id: None,
            test: None,
            silence_id: None,
        }
    }
}

impl Actions {
    /// Run a plan. Refused before any I/O when the policy forbids its action.
    pub async fn execute(
        &self,
        plan: &Plan,
        cancel: &CancellationToken,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<Report, ActionError> {
        self.policy.check(&plan.action)?;
        let confirmed = self.confirmed_silence(plan)?;
        let plan = confirmed.as_ref().unwrap_or(plan);
        let started = Instant::now();
        let mut report = Report::start(plan);
        let run = if self.settings.dry_run {
            report.outcome = Outcome::DryRun;
            Ok(())
        } else if plan.action.dlq_scope().is_some() {
            self.run_bulk(plan, cancel, progress, &mut report, started)
                .await
        } else if let Action::SendTestAlert {
            channel,
            tenant,
            summary,
        } = &plan.action
        {
            let sent = (channel.as_deref(), tenant.as_str(), summary.as_str());
            self.send_test(sent, cancel).await.map(|test| {
                report.moved = 1;
                if test.is_none() {
                    report.outcome = Outcome::Cancelled;
                }
                report.test = test;
            })
        } else if let Action::SilenceCreate { .. } = &plan.action {
            self.create_silence(plan).await.map(|id| {
                report.moved = 1;
                report.silence_id = Some(id);
            })
        } else {
            self.apply_single(&plan.action).await.map(|changed| {
                report.moved = changed;
            })
        };
        if let Err(error) = run {
            // The change may or may not have happened: say so, and re-read what can be re-read.
            report.outcome = Outcome::Indeterminate(error.to_string());
            if plan.action.dlq_scope().is_some() {
                report.remaining = self.remaining(&plan.action).await;
            }
        }
        report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        report.audit_id = self.audit(plan, &report).await;
        Ok(report)
    }

    async fn run_bulk(
        &self,
        plan: &Plan,
        cancel: &CancellationToken,
        progress: &mut (dyn FnMut(&Progress) + Send),
        report: &mut Report,
        started: Instant,
    ) -> StoreResult<()> {
        let Some((_, _, scope)) = plan.action.dlq_scope() else {
            return Ok(());
        };
        let batch = plan.batch_size.max(1);
        let mut next = match scope {
            Scope::Ids(_) => None,
            Scope::Filter(filter) => Some(DlqScope::Filter {
                filter: filter.clone(),
                cursor: DlqCursor::start(),
            }),
        };
        let mut id_chunks = match scope {
            Scope::Ids(ids) => ids.chunks(batch).collect::<Vec<_>>().into_iter(),
            Scope::Filter(_) => Vec::new().into_iter(),
        };
        loop {
            let step_scope = match scope {
                Scope::Ids(_) => match id_chunks.next() {
                    Some(chunk) => DlqScope::Ids(chunk.to_vec()),
                    None => break,
                },
                Scope::Filter(_) => match next.take() {
                    Some(s) => s,
                    None => break,
                },
            };
            if cancel.is_cancelled() {
                report.outcome = Outcome::Cancelled;
                break;
            }
            let done = report.moved + report.poisoned;
            let left = self
                .settings
                .max_items
                .map_or(u64::MAX, |max| max.saturating_sub(done));
            if left == 0 {
                break;
            }
            let step_batch = usize::try_from(left).map_or(batch, |left| batch.min(left));
            let result = self
                .bulk_step(&plan.action, &step_scope, step_batch)
                .await?;
            report.batches += 1;
            report.moved += result.moved as u64;
            report.poisoned += result.poisoned as u64;
            if let (DlqScope::Filter { filter, .. }, Some(cursor)) = (&step_scope, result.next) {
                next = Some(DlqScope::Filter {
                    filter: filter.clone(),
                    cursor,
                });
            }
            let done = report.moved + report.poisoned;
            progress(&Progress {
                done,
                total: plan.count,
                batches: report.batches,
                elapsed: started.elapsed(),
            });
            let more = match scope {
                Scope::Ids(_) => id_chunks.len() > 0,
                Scope::Filter(_) => next.is_some(),
            };
            if more && !pace(plan, done, started, cancel).await {
                report.outcome = Outcome::Cancelled;
                break;
            }
        }
        if matches!(scope, Scope::Filter(_)) {
            report.remaining = self.remaining(&plan.action).await;
        }
        Ok(())
    }

    /// One store call, never more than `batch` entries.
    async fn bulk_step(
        &self,
        action: &Action,
        scope: &DlqScope,
        batch: usize,
    ) -> StoreResult<BatchResult> {
        match action {
            Action::Replay {
                queue,
                from,
                reset_attempts,
                ..
            } => {
                let options = ReplayOptions {
                    max_items: batch,
                    max_replays: self.settings.max_replays,
                    reset_attempts: *reset_attempts,
                };
                self.store.replay(queue, *from, scope, options).await
            }
            Action::Purge { queue, set, .. } => self.store.purge(queue, *set, scope, batch).await,
            Action::MoveToDead { queue, .. } => self.store.bury(queue, scope, batch).await,
            _ => Ok(BatchResult::default()),
        }
    }

    /// Send a test alert and follow it until a worker reports how it ended (or the timeout);
    /// `None` when cancelled while waiting.
    async fn send_test(
        &self,
        (channel, tenant, summary): (Option<&str>, &str, &str),
        cancel: &CancellationToken,
    ) -> StoreResult<Option<TestDelivery>> {
        let (id, envelope) = test_alert(channel, tenant, summary, self.store.now_ms());
        self.store
            .enqueue(&QueueName::ingest(), std::slice::from_ref(&envelope))
            .await?;
        let timeout = self.settings.test_timeout;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(result) = self.store.test_result_get(&id).await? {
                return Ok(Some(result));
            }
            if Instant::now() >= deadline {
                return Ok(Some(TestDelivery {
                    status: TestStatus::TimedOut,
                    channel: channel.unwrap_or("stdout").to_owned(),
                    error: Some(format!(
                        "no worker reported an outcome within {} s: is `ward up` running, and \
                         are its queues moving?",
                        timeout.as_secs()
                    )),
                    took_ms: 0,
                    at_ms: self.store.now_ms(),
                }));
            }
            tokio::select! {
                () = cancel.cancelled() => return Ok(None),
                () = tokio::time::sleep(TEST_POLL) => {}
            }
        }
    }

    /// Entries of a filter scope still in their set.
    async fn remaining(&self, action: &Action) -> Option<u64> {
        let (queue, set, Scope::Filter(filter)) = action.dlq_scope()? else {
            return None;
        };
        self.store.failed_count(queue, set, filter).await.ok()
    }

    fn provenance(&self, value: &str, reason: &str, expires_at_ms: Option<i64>) -> FlagState {
        FlagState {
            value: value.to_owned(),
            owner: self.actor.to_string(),
            reason: reason.to_owned(),
            set_at_ms: self.store.now_ms(),
            expires_at_ms,
        }
    }

    /// Apply one change; returns how many settings changed (0 when a guarded change found the
    /// state already different).
    async fn apply_single(&self, action: &Action) -> StoreResult<u64> {
        match action {
            Action::EndExpired { flag, expected } => {
                let Some(flag) = Flag::from_name(flag) else {
                    return Ok(0);
                };
                let cleared = self.store.clear_flag_if(&flag, expected).await?;
                Ok(u64::from(cleared))
            }
            Action::SilenceExpire { id } => self.expire_silence(id).await,
            other => self.apply_change(other).await.map(|()| 1),
        }
    }

    async fn apply_change(&self, action: &Action) -> StoreResult<()> {
        let now = self.store.now_ms();
        let owner = self.actor.to_string();
        let store = self.store.as_ref();
        match action {
            Action::Shedding {
                mode,
                reason,
                expires_at_ms,
            } => {
                let state = (*mode != crate::model::ShedMode::Off)
                    .then(|| self.provenance(mode.as_str(), reason, *expires_at_ms));
                store.set_flag(&Flag::SheddingMode, state.as_ref()).await
            }
            Action::SetThreshold {
                queue,
                threshold,
                value,
                reason,
            } => {
                let key = threshold.config_key(queue);
                self.set_config(&key, value.map(|v| v.to_string()).as_deref(), reason)
                    .await
            }
            Action::BreakerForceOpen {
                backend,
                until_ms,
                reason,
            } => update_breaker(store, backend, |b| {
                b.force_open(now, *until_ms, &owner, reason);
            })
            .await
            .map(drop),
            Action::BreakerDisable { backend, reason } => {
                update_breaker(store, backend, |b| b.disable(now, &owner, reason))
                    .await
                    .map(drop)
            }
            Action::BreakerReset { backend, reason } => {
                update_breaker(store, backend, |b| b.reset(now, &owner, reason))
                    .await
                    .map(drop)
            }
            Action::EmergencyStop {
                backend,
                on,
                reason,
                expires_at_ms,
            } => {
                let state = on.then(|| self.provenance("on", reason, *expires_at_ms));
                store
                    .set_flag(&Flag::EmergencyStop(backend.clone()), state.as_ref())
                    .await
            }
            Action::SetConfig { key, value, reason } => {
                self.set_config(key, value.as_deref(), reason).await
            }
            Action::SendTestAlert { .. }
            | Action::Replay { .. }
            | Action::Purge { .. }
            | Action::MoveToDead { .. }
            | Action::EndExpired { .. }
            | Action::SilenceCreate { .. }
            | Action::SilenceExpire { .. } => Ok(()),
            Action::MuttReplay { .. }
            | Action::MuttMoveToDead { .. }
            | Action::MuttPurge { .. }
            | Action::MuttSetConfig { .. }
            | Action::MuttBreaker { .. }
            | Action::MuttRequeueOrphan { .. } => Err(crate::store::StoreError::Invalid(format!(
                "{} acts on a MUTT deployment: attach with --profile mutt",
                action.kind().as_str()
            ))),
        }
    }

    /// A dynamic config value, with its provenance kept as an override for the inventory.
    async fn set_config(&self, key: &str, value: Option<&str>, reason: &str) -> StoreResult<()> {
        self.store.config_set(key, value).await?;
        let state = value.map(|v| self.provenance(v, reason, None));
        self.store
            .set_flag(&Flag::ConfigOverride(key.to_owned()), state.as_ref())
            .await
    }

    async fn audit(&self, plan: &Plan, report: &Report) -> Option<String> {
        let record = audit_record(
            plan,
            report,
            (&self.actor, self.origin, &self.target),
            self.store.now_ms(),
        );
        match self.store.audit_append(&record).await {
            Ok(id) => Some(id),
            Err(error) => {
                tracing::error!(%error, plan = %plan.id, "could not write the audit record");
                None
            }
        }
    }
}

/// The one audit record of a run: who (actor, origin, target), the plan and the result.
pub(super) fn audit_record(
    plan: &Plan,
    report: &Report,
    (actor, origin, target): (&super::Actor, super::Origin, &str),
    at_ms: i64,
) -> AuditRecord {
    AuditRecord {
        at_ms,
        who: actor.to_string(),
        action: plan.action.kind().as_str().to_owned(),
        scope: plan.summary.clone(),
        plan: serde_json::to_value(plan).unwrap_or(serde_json::Value::Null),
        result: result_line(report),
        duration_ms: report.duration_ms,
        origin: origin.as_str().to_owned(),
        target: target.to_owned(),
        batch_id: plan.id.clone(),
        reason: plan.reason().unwrap_or_default().to_owned(),
    }
}

/// Wait until `done` entries are due at the planned rate; false if cancelled meanwhile.
pub(super) async fn pace(
    plan: &Plan,
    done: u64,
    started: Instant,
    cancel: &CancellationToken,
) -> bool {
    let Some(rate) = plan.rate_per_s.filter(|r| *r > 0) else {
        return !cancel.is_cancelled();
    };
    let due = started + Duration::from_secs_f64(done as f64 / f64::from(rate));
    tokio::select! {
        () = cancel.cancelled() => false,
        () = tokio::time::sleep_until(due) => true,
    }
}

/// The audit record's result: `completed: 12 moved, 1 poisoned in 1 batches`.
pub(super) fn result_line(report: &Report) -> String {
    if let Some(test) = &report.test {
        return format!("{}: test alert {}", report.outcome.as_str(), test.summary());
    }
    let detail = match &report.outcome {
        Outcome::Indeterminate(detail) => format!(" ({detail})"),
        _ => String::new(),
    };
    let remaining = report
        .remaining
        .map(|r| format!("; {r} still match"))
        .unwrap_or_default();
    let vanished = if report.vanished > 0 {
        format!("; {} gone before they were reached", report.vanished)
    } else {
        String::new()
    };
    format!(
        "{}: {} moved, {} poisoned in {} batches{detail}{remaining}{vanished}",
        report.outcome.as_str(),
        report.moved,
        report.poisoned,
        report.batches
    )
}

/// How often a sender looks for its test alert's outcome.
const TEST_POLL: Duration = Duration::from_millis(100);

/// A test alert, marked as one, for the ingest queue, with the id its outcome is kept under.
fn test_alert(channel: Option<&str>, tenant: &str, summary: &str, now: i64) -> (String, Envelope) {
    let mut labels = BTreeMap::from([("alertname".to_owned(), "WardTestAlert".to_owned())]);
    if let Some(channel) = channel {
        labels.insert(TEST_CHANNEL_LABEL.to_owned(), channel.to_owned());
    }
    let id = new_ulid(now);
    let alert = Alert {
        fingerprint: fingerprint(&labels),
        labels,
        annotations: BTreeMap::from([("summary".to_owned(), summary.to_owned())]),
        severity: Severity::Info,
        status: AlertStatus::Firing,
        tenant: tenant.to_owned(),
        starts_at_ms: now,
        ends_at_ms: None,
        generator_url: None,
        correlation_id: format!("test-{id}"),
        test: true,
    };
    let payload = Payload::encode(&alert).unwrap_or_else(|_| Payload::null());
    let envelope =
        Envelope::with_payload(tenant, payload, now).with_idempotency_key(format!("test-{id}"));
    (alert.correlation_id, envelope)
}
