//! Actions on a MUTT deployment (`--profile mutt`), through the same path as Ward's own: the
//! policy refuses before any I/O, the plan is the dry run (exact count, a redacted sample, the
//! pace, what MUTT will do), the run moves bounded atomic batches with progress and cancel, and
//! one audit record goes to Ward's own stream (outside MUTT's namespace).

use std::sync::Arc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{
    Action, ActionError, Actor, MuttScope, Origin, Outcome, Plan, Policy, Progress, Report,
    SampleRow, Settings,
};
use crate::model::MAX_BATCH;
use crate::model::mutt::{MuttDlqName, ReplayEdit, edit_for_replay, entry_from_raw};
use crate::store::mutt::{MuttDestination, MuttMove, MuttStore};
use crate::store::{StoreError, StoreResult};

/// Settings MUTT's services read only when they start: a change waits for a restart.
const READ_AT_START: &[&str] = &[
    "ingest_max_rate",
    "ingest_rate_window",
    "circuit_breaker_threshold",
    "circuit_breaker_timeout",
];
/// Settings MUTT reads nowhere (its remediation's config client never starts).
const NEVER_READ: &[&str] = &[
    "remediation_interval",
    "remediation_batch_size",
    "max_poison_retries",
];

/// The context of actions on a MUTT deployment.
#[derive(Clone)]
pub struct MuttActions {
    pub store: Arc<MuttStore>,
    pub policy: Policy,
    pub actor: Actor,
    pub origin: Origin,
    pub target: String,
    pub settings: Settings,
}

impl std::fmt::Debug for MuttActions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MuttActions")
            .field("policy", &self.policy)
            .field("actor", &self.actor)
            .field("origin", &self.origin)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

fn not_for_mutt(action: &Action) -> ActionError {
    ActionError::Invalid(format!(
        "{}: Ward's own action; on a MUTT deployment use its MUTT form (replay, dead, purge, \
         config set|unset, breaker open|reset)",
        action.kind().as_str()
    ))
}

fn sample_row(index_from_oldest: usize, raw: &[u8]) -> SampleRow {
    let entry = entry_from_raw(index_from_oldest as u64, raw);
    SampleRow {
        error_class: entry.counters(),
        id: entry.id,
        tenant: entry.host,
        error_message: entry.message,
        last_failure_ms: 0,
    }
}

impl MuttActions {
    /// The dry run. Refused before any I/O when the policy forbids the action.
    pub async fn plan(&self, action: Action) -> Result<Plan, ActionError> {
        self.policy.check(&action)?;
        let now = self.store.now_ms();
        action.validate(now)?;
        let mut warnings = Vec::new();
        let (action, count, sample) = match action {
            Action::MuttReplay { dlq, ref scope }
            | Action::MuttMoveToDead { dlq, ref scope }
            | Action::MuttPurge { dlq, ref scope } => {
                let (scope, count, sample) =
                    self.plan_scope(dlq, scope.clone(), &mut warnings).await?;
                let action = match action {
                    Action::MuttReplay { .. } => Action::MuttReplay { dlq, scope },
                    Action::MuttMoveToDead { .. } => Action::MuttMoveToDead { dlq, scope },
                    _ => Action::MuttPurge { dlq, scope },
                };
                (action, count, sample)
            }
            Action::MuttSetConfig {
                ref key, ref value, ..
            } => {
                if let Some(value) = value {
                    let note = crate::model::mutt::check_setting(key, value)
                        .map_err(|why| ActionError::Invalid(format!("mutt_set_config: {why}")))?;
                    warnings.extend(note);
                }
                (action, 1, Vec::new())
            }
            Action::MuttBreaker { ref name, .. } => {
                let known = self.store.keys().breakers.contains(name)
                    || self.store.breaker_exists(name).await?;
                if !known {
                    return Err(ActionError::Invalid(format!(
                        "mutt_breaker: MUTT has no breaker named {:?} (configured: {}; others \
                         are found by their state key)",
                        crate::model::sanitize(name),
                        self.store.keys().breakers.join(", ")
                    )));
                }
                (action, 1, Vec::new())
            }
            Action::MuttRequeueOrphan { ref list } => {
                if self.store.keys().processing_list(list).is_none() {
                    return Err(ActionError::Invalid(format!(
                        "mutt_requeue_orphan: {} is not a MUTT processing list (`ward status` \
                         lists the orphans)",
                        crate::model::sanitize(list)
                    )));
                }
                if self.store.pod_alive(list).await? {
                    return Err(ActionError::Invalid(format!(
                        "mutt_requeue_orphan: {list} belongs to a pod with a live heartbeat; \
                         a running pod owns its in-flight entries"
                    )));
                }
                let count = self.store.processing_len(list).await?;
                let sample = self
                    .store
                    .list_oldest(list, self.settings.sample_size.min(count as usize))
                    .await?
                    .iter()
                    .enumerate()
                    .map(|(i, raw)| sample_row(i, raw))
                    .collect();
                warnings.push(
                    "MUTT's janitor does this only when a pod of that service restarts; the \
                     entries go back to the head of their queue, as the janitor puts them"
                        .to_owned(),
                );
                (action, count, sample)
            }
            other => return Err(not_for_mutt(&other)),
        };
        self.warnings(&action, &mut warnings).await;
        let boundary = match action.mutt_scope() {
            Some((dlq, MuttScope::Oldest(n))) => self.store.nth_oldest(dlq, *n).await?,
            _ => None,
        };
        let mut plan = Plan::assemble(
            action,
            &self.target,
            &self.settings,
            (count, sample),
            warnings,
            now,
        );
        plan.mutt_boundary = boundary;
        Ok(plan)
    }

    /// The scope fixed at planning time (all → the oldest N there now; marked entries checked
    /// to be there still), its count and a sample.
    async fn plan_scope(
        &self,
        dlq: MuttDlqName,
        scope: MuttScope,
        warnings: &mut Vec<String>,
    ) -> Result<(MuttScope, u64, Vec<SampleRow>), ActionError> {
        let sample_size = self.settings.sample_size;
        match scope {
            MuttScope::All | MuttScope::Oldest(_) => {
                let len = self.store.dlq_len(dlq).await?;
                let n = match scope {
                    MuttScope::Oldest(n) => n.min(len),
                    _ => len,
                };
                let n = self.settings.max_items.map_or(n, |max| n.min(max));
                let oldest = self.store.oldest(dlq, sample_size.min(n as usize)).await?;
                let sample = oldest
                    .iter()
                    .enumerate()
                    .map(|(i, raw)| sample_row(i, raw))
                    .collect();
                Ok((MuttScope::Oldest(n), n, sample))
            }
            MuttScope::Entries(ids) => {
                let found = self.store.find(dlq, &ids).await?;
                if found.len() < ids.len() {
                    warnings.push(format!(
                        "{} of the {} marked entries are no longer in the DLQ",
                        ids.len() - found.len(),
                        ids.len()
                    ));
                }
                let sample = found
                    .iter()
                    .take(sample_size)
                    .enumerate()
                    .map(|(i, raw)| sample_row(i, raw))
                    .collect();
                let ids: Vec<String> = found
                    .iter()
                    .map(|raw| crate::model::mutt::content_id(raw))
                    .collect();
                let count = ids.len() as u64;
                Ok((MuttScope::Entries(ids), count, sample))
            }
        }
    }

    /// What the operator should know: what MUTT does next, and what would undo the action.
    async fn warnings(&self, action: &Action, out: &mut Vec<String>) {
        match action {
            Action::MuttReplay { dlq, .. } => {
                out.push(format!(
                    "{} is reset to 0 and Ward counts the replay in _ward_replays; an entry \
                     replayed {} times, or one that is not a JSON object (MUTT would discard it), \
                     goes to MUTT's dead list instead",
                    dlq.retry_counters().join(", "),
                    self.settings.max_replays
                ));
                // MUTT's own gates (DOMAIN §8.10.5): say so before feeding a failing stage.
                if let Ok((section, _, _)) = self.store.read(0, None).await {
                    for b in section
                        .breakers
                        .iter()
                        .filter(|b| b.effective_state() == "OPEN" && *dlq == MuttDlqName::Moog)
                    {
                        out.push(format!(
                            "the {} breaker is OPEN: replayed alerts fail again until it closes",
                            b.name
                        ));
                    }
                    if *dlq == MuttDlqName::Alerter && section.shedding.active() {
                        out.push(format!(
                            "the alert queue is over its shed threshold ({}): the alerter sheds \
                             replayed events back to its DLQ",
                            section.shedding.shed.at
                        ));
                    }
                }
            }
            Action::MuttPurge { .. } => {
                out.push("purged entries cannot be recovered".to_owned());
            }
            Action::MuttSetConfig { key, .. } => {
                if READ_AT_START.contains(&key.as_str()) {
                    out.push(format!(
                        "MUTT reads {key} only when a service starts: it applies after a restart"
                    ));
                } else if NEVER_READ.contains(&key.as_str()) {
                    out.push(format!(
                        "MUTT never reads {key} (its remediation takes these from the \
                         environment): this changes nothing"
                    ));
                }
            }
            Action::MuttBreaker {
                open_until_ms: Some(_),
                ..
            } => out.push(format!(
                "MUTT half-opens a breaker {} s after its open_time: Ward writes open_time so \
                 that this happens at the end chosen, and MUTT then probes on its own",
                self.store.breaker_timeout().as_secs()
            )),
            _ => {}
        }
    }

    /// Run a plan. Refused before any I/O when the policy forbids its action.
    pub async fn execute(
        &self,
        plan: &Plan,
        cancel: &CancellationToken,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<Report, ActionError> {
        self.policy.check(&plan.action)?;
        let started = Instant::now();
        let mut report = Report::start(plan);
        let run = if self.settings.dry_run {
            report.outcome = Outcome::DryRun;
            Ok(())
        } else if let Some((dlq, scope)) = plan.action.mutt_scope() {
            self.run_bulk(plan, dlq, scope, cancel, progress, &mut report, started)
                .await
        } else if let Action::MuttRequeueOrphan { list } = &plan.action {
            self.run_requeue(plan, list, cancel, progress, &mut report, started)
                .await
        } else {
            self.apply_single(&plan.action).await.map(|()| {
                report.moved = 1;
            })
        };
        if let Err(error) = run {
            report.outcome = Outcome::Indeterminate(error.to_string());
        }
        report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        // A setting set or a list emptied shows on the next read, not after the next walk.
        self.store.forget_discovery();
        report.audit_id = self.audit(plan, &report).await;
        Ok(report)
    }

    #[allow(clippy::too_many_arguments)] // the run's context, passed apart to borrow it apart
    async fn run_bulk(
        &self,
        plan: &Plan,
        dlq: MuttDlqName,
        scope: &MuttScope,
        cancel: &CancellationToken,
        progress: &mut (dyn FnMut(&Progress) + Send),
        report: &mut Report,
        started: Instant,
    ) -> StoreResult<()> {
        let batch = plan.batch_size.clamp(1, MAX_BATCH);
        // Marked entries are found again now: they may have moved since the plan.
        let mut marked = match scope {
            MuttScope::Entries(ids) => {
                let found = self.store.find(dlq, ids).await?;
                report.vanished += ids.len().saturating_sub(found.len()) as u64;
                Some(found.into_iter())
            }
            _ => None,
        };
        let total = plan.count;
        let mut processed = report.vanished;
        while processed < total {
            if cancel.is_cancelled() {
                report.outcome = Outcome::Cancelled;
                break;
            }
            let left = total - processed;
            let want = usize::try_from(left).map_or(batch, |left| batch.min(left));
            let (entries, last) = if let Some(found) = marked.as_mut() {
                (found.by_ref().take(want).collect(), false)
            } else if let Some(taken) = self.oldest_planned(plan, dlq, want, left).await? {
                taken
            } else {
                // Every planned entry is gone (taken from the same end by MUTT).
                report.vanished += left;
                break;
            };
            if entries.is_empty() {
                break;
            }
            processed += entries.len() as u64;
            let moves = self.moves(&plan.action, entries);
            let moved = self.store.move_batch(dlq, &moves).await?;
            report.batches += 1;
            report.vanished += moved.missing;
            match plan.action {
                Action::MuttReplay { .. } => {
                    report.moved += moved.to_queue;
                    report.poisoned += moved.to_dead;
                }
                Action::MuttMoveToDead { .. } => report.moved += moved.to_dead,
                _ => report.moved += moved.purged,
            }
            progress(&Progress {
                done: report.moved + report.poisoned,
                total,
                batches: report.batches,
                elapsed: started.elapsed(),
            });
            if last {
                // Planned entries not met before the newest planned one were taken by others.
                report.vanished += total.saturating_sub(processed);
                break;
            }
            if processed < total && !super::executor::pace(plan, processed, started, cancel).await {
                report.outcome = Outcome::Cancelled;
                break;
            }
        }
        Ok(())
    }

    /// A dead pod's list back on its queue in bounded batches; stops if the pod comes back.
    async fn run_requeue(
        &self,
        plan: &Plan,
        list: &str,
        cancel: &CancellationToken,
        progress: &mut (dyn FnMut(&Progress) + Send),
        report: &mut Report,
        started: Instant,
    ) -> StoreResult<()> {
        let batch = plan.batch_size.clamp(1, MAX_BATCH);
        while report.moved < plan.count {
            if cancel.is_cancelled() {
                report.outcome = Outcome::Cancelled;
                break;
            }
            let want = usize::try_from(plan.count - report.moved).map_or(batch, |n| batch.min(n));
            let Some(moved) = self.store.requeue_orphan(list, want).await? else {
                report.outcome = Outcome::Indeterminate(
                    "the pod came back (its heartbeat exists): it owns the rest".to_owned(),
                );
                break;
            };
            report.batches += 1;
            report.moved += moved;
            progress(&Progress {
                done: report.moved,
                total: plan.count,
                batches: report.batches,
                elapsed: started.elapsed(),
            });
            if moved == 0 || !super::executor::pace(plan, report.moved, started, cancel).await {
                break;
            }
        }
        report.remaining = Some(self.store.processing_len(list).await?);
        Ok(())
    }

    /// The next oldest entries of an "oldest N" plan, never past the newest one planned: up to
    /// `want`, and whether the batch reaches it. `None` when the planned entries are all gone.
    async fn oldest_planned(
        &self,
        plan: &Plan,
        dlq: MuttDlqName,
        want: usize,
        left: u64,
    ) -> StoreResult<Option<(Vec<Vec<u8>>, bool)>> {
        let mut entries = self.store.oldest(dlq, want).await?;
        let Some(boundary) = plan.mutt_boundary.as_deref() else {
            return Ok(Some((entries, false)));
        };
        if let Some(at) = entries.iter().position(|e| e == boundary) {
            entries.truncate(at + 1);
            return Ok(Some((entries, true)));
        }
        // The boundary is further on: these entries are older, so planned, unless something
        // else took planned entries from this end (then the boundary is nearer, or gone).
        let still = self.store.nth_oldest(dlq, left).await?.as_deref() == Some(boundary)
            || self.store.among_oldest(dlq, boundary, left).await?;
        Ok(still.then_some((entries, false)))
    }

    /// What each entry of a batch becomes.
    fn moves(&self, action: &Action, entries: Vec<Vec<u8>>) -> Vec<MuttMove> {
        let as_is = |raw: Vec<u8>, to| MuttMove {
            push: raw.clone(),
            raw,
            to,
        };
        entries
            .into_iter()
            .map(|raw| match action {
                Action::MuttReplay { dlq, .. } => {
                    match edit_for_replay(&raw, dlq.retry_counters(), self.settings.max_replays) {
                        ReplayEdit::Replay(push) => MuttMove {
                            raw,
                            to: MuttDestination::Queue,
                            push: push.into_bytes(),
                        },
                        ReplayEdit::Poison | ReplayEdit::NotJson => {
                            as_is(raw, MuttDestination::Dead)
                        }
                    }
                }
                Action::MuttMoveToDead { .. } => as_is(raw, MuttDestination::Dead),
                _ => MuttMove {
                    raw,
                    to: MuttDestination::Purge,
                    push: Vec::new(),
                },
            })
            .collect()
    }

    async fn apply_single(&self, action: &Action) -> StoreResult<()> {
        match action {
            Action::MuttSetConfig { key, value, .. } => {
                self.store.config_set(key, value.as_deref()).await
            }
            Action::MuttBreaker {
                name,
                open_until_ms,
                ..
            } => {
                let timeout = self.store.effective_breaker_timeout().await?.as_millis() as i64;
                let open_time = open_until_ms.map(|until| until.saturating_sub(timeout));
                self.store.breaker_set(name, open_time).await
            }
            other => Err(StoreError::Invalid(format!(
                "{} is not an action on a MUTT deployment",
                other.kind().as_str()
            ))),
        }
    }

    async fn audit(&self, plan: &Plan, report: &Report) -> Option<String> {
        let record = super::executor::audit_record(
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
