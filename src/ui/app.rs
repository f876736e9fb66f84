//! The control room's state and how keys change it. No I/O: a key returns `Effect`s, which the
//! runner carries out (store reads, plans, runs), and their results come back as `JobEvent`s.
//! Every mutation leaves here as one `Action` through the one confirm funnel.

use std::collections::VecDeque;
use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::command::{self, Parsed, RunSettings};
use super::keymap::{Command, Context, Keymap};
use super::state::{Scene, UiState};
use crate::actions::{
    Action, MuttScope, Origin, OverrideKind, Plan, Progress, Report, Scope, Tier,
};
use crate::model::mutt::MuttDlqName;
use crate::model::mutt::MuttPageQuery;
use crate::model::{DlqFilter, FailedSet, Flag, QueueName, ShedMode, Threshold, sanitize};
use crate::sources::{DlqQuery, Snapshot};

/// What the runner must do for a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Quit,
    Refresh,
    Browse(Option<DlqQuery>),
    /// The MUTT DLQ page to read on every refresh (`--profile mutt`).
    BrowseMutt(Option<MuttPageQuery>),
    /// `ticket` names the dialog: the job's events come back with it.
    Plan {
        ticket: u64,
        action: Action,
        origin: Origin,
        settings: RunSettings,
    },
    Execute {
        ticket: u64,
        plan: Box<Plan>,
        origin: Origin,
        settings: RunSettings,
    },
    Cancel,
    Copy(String),
    Suspend,
}

/// What a job sends back.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // one at a time, through a channel
pub enum JobEvent {
    Planned(Result<Plan, String>),
    Progress(Progress),
    Finished(Result<Report, String>),
}

pub use super::state::{
    Confirm, DlqBrowser, Input, Mode, MuttBrowser, Overlay, Picker, Stage, Toast, View,
};

/// The whole control-room state: the snapshot drawn and the state around it.
#[derive(Debug, Clone)]
pub struct App {
    /// The snapshot drawn (the newest, or the one frozen).
    pub snapshot: Arc<Snapshot>,
    pub ui: UiState,
}

const TOAST_MS: i64 = 4_000;
const FORCE_OPEN_MS: i64 = 15 * 60 * 1000;
const OVERRIDE_TTL_MS: i64 = 60 * 60 * 1000;
const REASON: &str = "set from the control room";

impl App {
    /// What the views draw from.
    pub fn scene(&self) -> Scene<'_> {
        Scene {
            snapshot: &self.snapshot,
            ui: &self.ui,
        }
    }

    pub fn new(mode: Mode, keymap: Keymap, channels: Vec<String>, snapshot: Arc<Snapshot>) -> Self {
        let queue = QueueName::delivery();
        let ui = UiState {
            mode,
            keymap,
            view: View::Overview,
            now_ms: snapshot.taken_at_ms,
            frozen: false,
            rows: [0; View::ALL.len()],
            dlq: DlqBrowser::new(queue),
            mutt: MuttBrowser::default(),
            overlay: None,
            toasts: VecDeque::new(),
            tickets: 0,
            spark_points: 60,
            channels,
            wall_page: 0,
            accent: None,
        };
        Self { snapshot, ui }
    }

    /// A new snapshot arrived (ignored while frozen, except for freshness).
    pub fn on_snapshot(&mut self, snapshot: Arc<Snapshot>) {
        self.ui.now_ms = snapshot.taken_at_ms;
        if !self.ui.frozen {
            self.snapshot = snapshot;
        }
    }

    pub fn tick(&mut self, now_ms: i64) {
        self.ui.now_ms = now_ms;
        while self.ui.toasts.front().is_some_and(|t| t.until_ms <= now_ms) {
            self.ui.toasts.pop_front();
        }
    }

    pub fn toast(&mut self, text: impl Into<String>, error: bool) {
        self.ui.toasts.push_back(Toast {
            text: text.into(),
            error,
            until_ms: self.ui.now_ms + TOAST_MS,
        });
        while self.ui.toasts.len() > 3 {
            self.ui.toasts.pop_front();
        }
    }

    /// An event of the job started from dialog `ticket`; ignored once that dialog is gone.
    pub fn job(&mut self, ticket: u64, event: JobEvent) -> Vec<Effect> {
        let Some(Overlay::Confirm(confirm)) = self.ui.overlay.as_mut() else {
            return Vec::new();
        };
        if confirm.ticket != ticket {
            return Vec::new();
        }
        match (event, &mut confirm.stage) {
            (JobEvent::Planned(Ok(plan)), Stage::Planning) => {
                let input = if plan.tier == Tier::Irreversible {
                    String::new()
                } else {
                    plan.reason().unwrap_or_default().to_owned()
                };
                confirm.stage = Stage::Ready {
                    plan: Box::new(plan),
                    input,
                };
            }
            (JobEvent::Planned(Err(error)), Stage::Planning) => {
                confirm.stage = Stage::Failed(error);
            }
            (JobEvent::Progress(p), Stage::Running { progress, .. }) => *progress = Some(p),
            (JobEvent::Finished(result), Stage::Running { plan, .. }) => {
                let text = match &result {
                    Ok(report) => match &report.test {
                        Some(test) => format!("test alert {}", test.summary()),
                        None => format!("{}: {}", plan.summary, report.outcome.as_str()),
                    },
                    Err(error) => format!("{}: {error}", plan.summary),
                };
                let failed = match &result {
                    Ok(report) => report.test.as_ref().is_some_and(|t| !t.delivered()),
                    Err(_) => true,
                };
                // Marked entries an action took were consumed: never offer them to another.
                if !failed && plan.action.mutt_scope().is_some() {
                    self.ui.mutt.marks.clear();
                    self.ui.mutt.last_mark = None;
                }
                if !failed && matches!(plan.action.dlq_scope(), Some((.., Scope::Ids(_)))) {
                    self.ui.dlq.marks.clear();
                    self.ui.dlq.last_mark = None;
                }
                confirm.stage = Stage::Done {
                    plan: plan.clone(),
                    result,
                };
                self.toast(text, failed);
                return vec![Effect::Refresh];
            }
            _ => {}
        }
        Vec::new()
    }

    /// A key press.
    pub fn key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if let Some(overlay) = self.ui.overlay.take() {
            return self.overlay_key(overlay, key);
        }
        if super::keymap::suspends(key) {
            return vec![Effect::Suspend];
        }
        let Some(command) = self.ui.keymap.command(key) else {
            return Vec::new();
        };
        self.run(command)
    }

    /// Run a named command (from a key): the guards, then one arm per group of commands.
    pub fn run(&mut self, command: Command) -> Vec<Effect> {
        if command.is_mutating()
            && let Some(why) = self.ui.mode.read_only.clone()
        {
            self.toast(format!("read-only: {why}"), true);
            return Vec::new();
        }
        if command.context() != Context::Everywhere && command.context() != self.ui.view.context() {
            self.toast(format!("{} works in another view", command.name()), false);
            return Vec::new();
        }
        match command {
            Command::ViewOverview
            | Command::ViewQueues
            | Command::ViewDlq
            | Command::ViewBreakers
            | Command::ViewOverrides
            | Command::ViewAudit
            | Command::ViewSlo
            | Command::ViewSilences
            | Command::ViewAlerts
            | Command::NextView
            | Command::PrevView
            | Command::Up
            | Command::Down
            | Command::PageUp
            | Command::PageDown
            | Command::Top
            | Command::Bottom => self.run_navigation(command),
            Command::ToggleShedding
            | Command::CycleSheddingMode
            | Command::TestAlert
            | Command::EmergencyStop => self.run_control(command),
            Command::Mark
            | Command::MarkRange
            | Command::Copy
            | Command::NextPage
            | Command::PrevPage
            | Command::ToggleDead
            | Command::ToggleGrouping
            | Command::CycleQueue
            | Command::CycleSort => {
                if self.scene().is_mutt() {
                    self.run_mutt_browse(command)
                } else {
                    self.run_dlq_browse(command)
                }
            }
            Command::Replay
            | Command::ClearMarks
            | Command::Inspect
            | Command::Purge
            | Command::MoveToDead => self.run_dlq_action(command),
            Command::ForceOpen | Command::ResetBreaker | Command::DisableBreaker => {
                self.breaker_action(command)
            }
            Command::LiftOverride => self.lift_override(),
            Command::Silence => self.open_silence_editor(None, Origin::Key),
            Command::ExpireSilence => self.expire_selected_silence(Origin::Key),
            Command::Interrupt
            | Command::Quit
            | Command::Help
            | Command::Back
            | Command::CommandLine
            | Command::Filter
            | Command::Refresh
            | Command::ToggleFreeze
            | Command::HistoryLonger
            | Command::HistoryShorter => self.run_general(command),
        }
    }

    /// Switching views and moving the selection.
    fn run_navigation(&mut self, command: Command) -> Vec<Effect> {
        let views = View::ALL.len();
        match command {
            Command::ViewOverview => self.show(View::Overview),
            Command::ViewQueues => self.show(View::Queues),
            Command::ViewDlq => self.show(View::Dlq),
            Command::ViewBreakers => self.show(View::Breakers),
            Command::ViewOverrides => self.show(View::Overrides),
            Command::ViewAudit => self.show(View::Audit),
            Command::ViewSlo => self.show(View::Slo),
            Command::ViewSilences => self.show(View::Silences),
            Command::ViewAlerts => self.show(View::Alerts),
            Command::NextView => self.show(View::ALL[(self.ui.view.index() + 1) % views]),
            Command::PrevView => self.show(View::ALL[(self.ui.view.index() + views - 1) % views]),
            Command::Up => self.move_row(-1),
            Command::Down => self.move_row(1),
            Command::PageUp => self.move_row(-10),
            Command::PageDown => self.move_row(10),
            Command::Top => self.move_row(i64::MIN / 2),
            Command::Bottom => self.move_row(i64::MAX / 2),
            _ => Vec::new(),
        }
    }

    /// Replay, purge and bury over the marks, the filter or the selection; marks and the inspector.
    fn run_dlq_action(&mut self, command: Command) -> Vec<Effect> {
        match command {
            Command::Replay => self.replay(),
            Command::ClearMarks => {
                self.ui.dlq.marks.clear();
                self.ui.dlq.last_mark = None;
                self.ui.mutt.marks.clear();
                self.ui.mutt.last_mark = None;
                Vec::new()
            }
            Command::Inspect if self.scene().grouping() => self.filter_to_group(),
            Command::Inspect => {
                if self.scene().selected_entry().is_some()
                    || self.scene().selected_mutt_entry().is_some()
                {
                    self.ui.overlay = Some(Overlay::Inspector { scroll: 0 });
                }
                Vec::new()
            }
            Command::Purge => self.propose(
                Action::Purge {
                    queue: self.ui.dlq.queue.clone(),
                    set: self.ui.dlq.set,
                    scope: self.ui.dlq.scope(),
                },
                Origin::Key,
            ),
            Command::MoveToDead => self.propose(
                Action::MoveToDead {
                    queue: self.ui.dlq.queue.clone(),
                    scope: self.ui.dlq.scope(),
                },
                Origin::Key,
            ),
            _ => Vec::new(),
        }
    }

    /// Quitting, overlays, refresh and the history length.
    fn run_general(&mut self, command: Command) -> Vec<Effect> {
        match command {
            Command::Interrupt if self.ui.mode.no_exit_on_ctrl_c => {
                self.toast(
                    "ctrl-c does not quit here (no_exit_on_ctrl_c): press q",
                    false,
                );
            }
            Command::Quit | Command::Interrupt => return vec![Effect::Quit],
            Command::Help => self.ui.overlay = Some(Overlay::Help { scroll: 0 }),
            Command::Back => return self.back(),
            Command::CommandLine => self.ui.overlay = Some(Overlay::Command(Input::default())),
            Command::Filter => {
                self.ui.overlay = Some(Overlay::Filter(Input {
                    text: self.ui.dlq.filter_text.clone(),
                }));
            }
            Command::Refresh => return vec![Effect::Refresh],
            Command::ToggleFreeze => self.ui.frozen = !self.ui.frozen,
            Command::HistoryLonger => {
                self.ui.spark_points =
                    (self.ui.spark_points * 2).min(crate::sources::poller::HISTORY_POINTS);
            }
            Command::HistoryShorter => self.ui.spark_points = (self.ui.spark_points / 2).max(15),
            _ => {}
        }
        Vec::new()
    }

    /// Shedding, the test alert and the emergency stop; MUTT has only its shedding mode.
    fn run_control(&mut self, command: Command) -> Vec<Effect> {
        let mutt = self.scene().is_mutt();
        match command {
            Command::ToggleShedding if mutt => {
                self.toast(
                    "MUTT sheds whenever the alert queue passes alerter_queue_shed_threshold: \
                     `:set alerter_queue_shed_threshold=N`, or cycle the mode",
                    false,
                );
                Vec::new()
            }
            Command::CycleSheddingMode if mutt => {
                let next = match self
                    .snapshot
                    .mutt
                    .as_ref()
                    .map(|m| m.shedding.mode.as_str())
                {
                    Some("defer") => ShedMode::Dlq,
                    _ => ShedMode::Defer,
                };
                self.shedding_action(next)
            }
            Command::TestAlert | Command::EmergencyStop if mutt => {
                self.toast(
                    format!("{}: MUTT has no such control", command.name()),
                    false,
                );
                Vec::new()
            }
            Command::ToggleShedding => {
                let mode = if self.scene().shedding() == ShedMode::Off {
                    ShedMode::Dlq
                } else {
                    ShedMode::Off
                };
                self.shedding_action(mode)
            }
            Command::CycleSheddingMode => {
                let mode = match self.scene().shedding() {
                    ShedMode::Off => ShedMode::Dlq,
                    ShedMode::Dlq => ShedMode::Defer,
                    ShedMode::Defer => ShedMode::Off,
                };
                self.shedding_action(mode)
            }
            Command::TestAlert => {
                let mut options = self.ui.channels.clone();
                options.insert(0, "stdout".to_owned());
                options.dedup();
                self.ui.overlay = Some(Overlay::Picker(Picker {
                    options,
                    selected: 0,
                }));
                Vec::new()
            }
            Command::EmergencyStop => {
                let on = self
                    .snapshot
                    .store
                    .as_ref()
                    .is_none_or(|s| s.emergency_stop.is_none());
                self.propose(
                    Action::EmergencyStop {
                        backend: None,
                        on,
                        reason: REASON.to_owned(),
                        expires_at_ms: on.then_some(self.ui.now_ms + OVERRIDE_TTL_MS),
                    },
                    Origin::Key,
                )
            }
            _ => Vec::new(),
        }
    }

    /// Copy the selected entry's id (to the clipboard, by the runner).
    fn copy(&mut self, id: Option<String>) -> Vec<Effect> {
        let Some(id) = id else { return Vec::new() };
        self.toast(format!("copied {id}"), false);
        vec![Effect::Copy(id)]
    }

    /// Browsing MUTT's lists: pages by offset, three lists, newest first, no groups.
    fn run_mutt_browse(&mut self, command: Command) -> Vec<Effect> {
        match command {
            Command::Mark => self.mark_mutt(false),
            Command::MarkRange => self.mark_mutt(true),
            Command::Copy => {
                let id = self.scene().selected_mutt_entry().map(|e| e.id.clone());
                self.copy(id)
            }
            Command::NextPage => {
                let total = self.snapshot.mutt_page.as_ref().map_or(0, |p| p.total);
                if self.ui.mutt.offset + self.ui.mutt.page_size < total {
                    self.ui.mutt.offset += self.ui.mutt.page_size;
                    self.ui.rows[View::Dlq.index()] = 0;
                    self.browse()
                } else {
                    self.toast("last page", false);
                    Vec::new()
                }
            }
            Command::PrevPage => {
                if self.ui.mutt.offset == 0 {
                    return Vec::new();
                }
                self.ui.mutt.offset = self.ui.mutt.offset.saturating_sub(self.ui.mutt.page_size);
                self.ui.rows[View::Dlq.index()] = 0;
                self.browse()
            }
            Command::ToggleDead | Command::CycleQueue => {
                self.ui.mutt.dlq = match self.ui.mutt.dlq {
                    MuttDlqName::Alerter => MuttDlqName::Moog,
                    MuttDlqName::Moog => MuttDlqName::Dead,
                    MuttDlqName::Dead => MuttDlqName::Alerter,
                };
                self.reset_pages();
                self.browse()
            }
            Command::ToggleGrouping => {
                self.toast("MUTT's entries carry no error class to group by", false);
                Vec::new()
            }
            Command::CycleSort => {
                self.toast("MUTT's lists are shown newest first", false);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Browsing Ward's DLQ: cursor pages, groups, sort orders, the queue and the set shown.
    fn run_dlq_browse(&mut self, command: Command) -> Vec<Effect> {
        match command {
            Command::Mark => self.mark(false),
            Command::MarkRange => self.mark(true),
            Command::Copy => {
                let id = self.scene().selected_entry().map(|e| e.meta.id.0.clone());
                self.copy(id)
            }
            Command::NextPage => {
                let next = self.scene().dlq_page().and_then(|p| p.next.clone());
                if let Some(next) = next {
                    let current = std::mem::replace(&mut self.ui.dlq.cursor, next);
                    self.ui.dlq.pages.push(current);
                    self.ui.rows[View::Dlq.index()] = 0;
                    self.browse()
                } else {
                    self.toast("last page", false);
                    Vec::new()
                }
            }
            Command::PrevPage => match self.ui.dlq.pages.pop() {
                Some(cursor) => {
                    self.ui.dlq.cursor = cursor;
                    self.ui.rows[View::Dlq.index()] = 0;
                    self.browse()
                }
                None => Vec::new(),
            },
            Command::ToggleGrouping => {
                self.ui.dlq.grouped = !self.ui.dlq.grouped;
                self.ui.rows[View::Dlq.index()] = 0;
                self.browse()
            }
            Command::CycleQueue => {
                let queues: Vec<QueueName> = self.snapshot.store.as_ref().map_or_else(
                    || vec![QueueName::ingest(), QueueName::delivery()],
                    |s| s.queues.iter().map(|q| q.stats.queue.clone()).collect(),
                );
                let at = queues.iter().position(|q| *q == self.ui.dlq.queue);
                let next = at.map_or(0, |at| (at + 1) % queues.len().max(1));
                match queues.get(next).cloned() {
                    Some(queue) => self.browse_queue(queue, self.ui.dlq.set),
                    None => Vec::new(),
                }
            }
            Command::CycleSort => {
                self.ui.dlq.sort = self.ui.dlq.sort.next();
                self.reset_pages();
                self.browse()
            }
            Command::ToggleDead => {
                self.ui.dlq.set = match self.ui.dlq.set {
                    FailedSet::Dlq => FailedSet::Dead,
                    FailedSet::Dead => FailedSet::Dlq,
                };
                self.reset_pages();
                self.browse()
            }
            _ => Vec::new(),
        }
    }

    fn back(&mut self) -> Vec<Effect> {
        if self.ui.view == View::Dlq && !self.ui.mutt.marks.is_empty() {
            self.ui.mutt.marks.clear();
            Vec::new()
        } else if self.ui.view == View::Dlq && !self.ui.dlq.marks.is_empty() {
            self.ui.dlq.marks.clear();
            Vec::new()
        } else if self.ui.view == View::Dlq && !self.ui.dlq.filter_text.is_empty() {
            self.apply_filter(String::new())
        } else if self.ui.view != View::Overview {
            self.show(View::Overview)
        } else {
            Vec::new()
        }
    }

    pub fn show(&mut self, view: View) -> Vec<Effect> {
        let was = self.ui.view;
        self.ui.view = view;
        match (was == View::Dlq, view == View::Dlq) {
            (false, true) => self.browse(),
            (true, false) if self.scene().is_mutt() => vec![Effect::BrowseMutt(None)],
            (true, false) => vec![Effect::Browse(None)],
            _ => Vec::new(),
        }
    }

    /// Browse `queue`'s DLQ or dead list (the filter and sort stay).
    pub fn browse_queue(&mut self, queue: QueueName, set: FailedSet) -> Vec<Effect> {
        self.ui.dlq.queue = queue;
        self.ui.dlq.set = set;
        self.reset_pages();
        if self.ui.view == View::Dlq {
            self.browse()
        } else {
            self.show(View::Dlq)
        }
    }

    fn browse(&self) -> Vec<Effect> {
        if self.scene().is_mutt() {
            vec![Effect::BrowseMutt(Some(self.ui.mutt.query()))]
        } else {
            vec![Effect::Browse(Some(self.ui.dlq.query()))]
        }
    }

    fn reset_pages(&mut self) {
        self.ui.mutt.offset = 0;
        self.ui.mutt.marks.clear();
        self.ui.mutt.last_mark = None;
        self.ui.dlq.pages.clear();
        self.ui.dlq.cursor = self.ui.dlq.sort.start();
        self.ui.dlq.marks.clear();
        self.ui.dlq.last_mark = None;
        self.ui.rows[View::Dlq.index()] = 0;
    }

    fn move_row(&mut self, by: i64) -> Vec<Effect> {
        if let Some(Overlay::Inspector { scroll } | Overlay::Help { scroll }) =
            self.ui.overlay.as_mut()
        {
            *scroll = (*scroll as i64 + by).max(0) as usize;
            return Vec::new();
        }
        let count = self.scene().row_count() as i64;
        let current = self.scene().row() as i64;
        self.ui.rows[self.ui.view.index()] = (current + by).clamp(0, (count - 1).max(0)) as usize;
        Vec::new()
    }

    /// Enter on a group: filter to its error class and time bucket, and list its entries.
    fn filter_to_group(&mut self) -> Vec<Effect> {
        let Some((group, bucket_ms)) = self
            .scene()
            .visible_groups()
            .and_then(|v| Some((v.groups.get(self.scene().row())?.clone(), v.bucket_ms)))
        else {
            self.toast("no group selected", false);
            return Vec::new();
        };
        let filter = DlqFilter {
            error_class: Some(group.error_class),
            failed_at_or_after_ms: Some(group.bucket_ms),
            failed_before_ms: Some(group.bucket_ms.saturating_add(bucket_ms)),
            ..self.ui.dlq.filter.clone()
        };
        self.ui.dlq.grouped = false;
        self.apply_filter(command::filter_text(&filter))
    }

    fn mark_mutt(&mut self, range: bool) -> Vec<Effect> {
        let row = self.scene().row();
        let ids: Vec<String> = self
            .scene()
            .visible_mutt_entries()
            .iter()
            .map(|e| e.id.clone())
            .collect();
        let Some(id) = ids.get(row) else {
            return Vec::new();
        };
        if range {
            let from = self.ui.mutt.last_mark.unwrap_or(row);
            for id in &ids[from.min(row)..=from.max(row).min(ids.len() - 1)] {
                self.ui.mutt.marks.insert(id.clone());
            }
        } else if !self.ui.mutt.marks.remove(id) {
            self.ui.mutt.marks.insert(id.clone());
        }
        self.ui.mutt.last_mark = Some(row);
        self.move_row(1)
    }

    /// The MUTT entries a browser scope names: the marks (or, outside the browser, the whole
    /// list); `Err` for a filter MUTT's entries cannot be selected by.
    fn mutt_scope(&self, scope: &Scope) -> Result<MuttScope, String> {
        let in_browser = self.ui.view == View::Dlq;
        match scope {
            Scope::Filter(f)
                if f.error_class.is_some()
                    || f.stage.is_some()
                    || f.tenant.is_some()
                    || f.channel.is_some() =>
            {
                Err("MUTT's DLQ entries carry no error class, stage, tenant or channel to filter by: mark entries instead".to_owned())
            }
            Scope::Filter(f)
                if in_browser
                    && self.ui.mutt.marks.is_empty()
                    && (f.failed_at_or_after_ms.is_some()
                        || f.failed_before_ms.is_some()
                        || f.text.is_some()) =>
            {
                Err("MUTT's DLQ entries carry no failure time, and words only filter the page: mark entries instead".to_owned())
            }
            _ if in_browser => Ok(self.ui.mutt.scope()),
            _ => Ok(MuttScope::All),
        }
    }

    /// An action in MUTT's terms: the same proposal, on MUTT's lists, settings and breakers
    /// (`Err` when MUTT has nothing like it).
    fn mutt_form(&self, action: Action) -> Result<Action, String> {
        let scope = |scope: &Scope| self.mutt_scope(scope);
        let dlq = self.ui.mutt.dlq;
        match action {
            Action::Replay {
                from: FailedSet::Dead,
                ..
            } => Err("MUTT's dead list names no source queue to replay to".to_owned()),
            Action::Replay { .. } if dlq == MuttDlqName::Dead => Err(
                "MUTT's dead list names no source queue: switch to the alerter or moog DLQ"
                    .to_owned(),
            ),
            Action::Replay { scope: s, .. } => Ok(Action::MuttReplay {
                dlq,
                scope: scope(&s)?,
            }),
            Action::Purge { set, scope: s, .. } => Ok(Action::MuttPurge {
                dlq: if set == FailedSet::Dead {
                    MuttDlqName::Dead
                } else {
                    dlq
                },
                scope: scope(&s)?,
            }),
            Action::MoveToDead { scope: s, .. } => Ok(Action::MuttMoveToDead {
                dlq,
                scope: scope(&s)?,
            }),
            Action::SetConfig { key, value, reason } => {
                Ok(Action::MuttSetConfig { key, value, reason })
            }
            Action::Shedding {
                mode: mode @ (ShedMode::Dlq | ShedMode::Defer),
                reason,
                ..
            } => Ok(Action::MuttSetConfig {
                key: "alerter_shed_mode".to_owned(),
                value: Some(mode.as_str().to_owned()),
                reason,
            }),
            Action::SetThreshold {
                queue,
                threshold,
                value,
                reason,
            } if queue.as_str() == "alert" => Ok(Action::MuttSetConfig {
                key: mutt_threshold_key(threshold).to_owned(),
                value: value.map(|v| v.to_string()),
                reason,
            }),
            Action::BreakerForceOpen {
                backend,
                until_ms,
                reason,
            } => Ok(Action::MuttBreaker {
                name: backend,
                open_until_ms: Some(until_ms),
                reason,
            }),
            Action::BreakerReset { backend, reason } => Ok(Action::MuttBreaker {
                name: backend,
                open_until_ms: None,
                reason,
            }),
            action @ (Action::MuttReplay { .. }
            | Action::MuttMoveToDead { .. }
            | Action::MuttPurge { .. }
            | Action::MuttSetConfig { .. }
            | Action::MuttBreaker { .. }
            | Action::MuttRequeueOrphan { .. }) => Ok(action),
            other => Err(format!(
                "{}: MUTT has no such control",
                other.kind().as_str()
            )),
        }
    }

    fn mark(&mut self, range: bool) -> Vec<Effect> {
        let row = self.scene().row();
        let ids: Vec<String> = self
            .scene()
            .visible_entries()
            .iter()
            .map(|e| e.meta.id.0.clone())
            .collect();
        let Some(id) = ids.get(row) else {
            return Vec::new();
        };
        if range {
            let from = self.ui.dlq.last_mark.unwrap_or(row);
            for id in &ids[from.min(row)..=from.max(row).min(ids.len() - 1)] {
                self.ui.dlq.marks.insert(id.clone());
            }
        } else if !self.ui.dlq.marks.remove(id) {
            self.ui.dlq.marks.insert(id.clone());
        }
        self.ui.dlq.last_mark = Some(row);
        self.move_row(1)
    }

    fn mutt_breaker_action(&mut self, command: Command) -> Vec<Effect> {
        let Some(name) = self
            .snapshot
            .mutt
            .as_ref()
            .and_then(|m| m.breakers.get(self.scene().row()))
            .map(|b| b.name.clone())
        else {
            self.toast("no breaker selected", false);
            return Vec::new();
        };
        let reason = REASON.to_owned();
        let action = match command {
            Command::ForceOpen => Action::MuttBreaker {
                name,
                open_until_ms: Some(self.ui.now_ms + FORCE_OPEN_MS),
                reason,
            },
            Command::DisableBreaker => {
                self.toast("MUTT's breakers have no disabled state", false);
                return Vec::new();
            }
            _ => Action::MuttBreaker {
                name,
                open_until_ms: None,
                reason,
            },
        };
        self.propose(action, Origin::Key)
    }

    fn shedding_action(&mut self, mode: ShedMode) -> Vec<Effect> {
        let expires_at_ms = (mode != ShedMode::Off).then_some(self.ui.now_ms + OVERRIDE_TTL_MS);
        self.propose(
            Action::Shedding {
                mode,
                reason: REASON.to_owned(),
                expires_at_ms,
            },
            Origin::Key,
        )
    }

    fn replay(&mut self) -> Vec<Effect> {
        // On MUTT's Queues view, replay means: put the selected orphan's entries back.
        if self.ui.view == View::Queues
            && let Some(m) = self.snapshot.mutt.as_ref()
        {
            let selected = m
                .processing_by_concern()
                .get(self.scene().row())
                .copied()
                .cloned();
            return match selected {
                Some(list) if list.orphan => {
                    self.propose(Action::MuttRequeueOrphan { list: list.key }, Origin::Key)
                }
                Some(list) => {
                    self.toast(
                        format!(
                            "{} has a live pod: it owns its entries",
                            sanitize(&list.key)
                        ),
                        false,
                    );
                    Vec::new()
                }
                None => Vec::new(),
            };
        }
        let (queue, from, scope) = if self.ui.view == View::Dlq {
            (
                self.ui.dlq.queue.clone(),
                self.ui.dlq.set,
                self.ui.dlq.scope(),
            )
        } else {
            (
                self.ui.dlq.queue.clone(),
                FailedSet::Dlq,
                Scope::Filter(DlqFilter::default()),
            )
        };
        self.propose(
            Action::Replay {
                queue,
                from,
                scope,
                reset_attempts: true,
            },
            Origin::Key,
        )
    }

    fn breaker_action(&mut self, command: Command) -> Vec<Effect> {
        if self.scene().is_mutt() {
            return self.mutt_breaker_action(command);
        }
        let Some(breaker) = self
            .snapshot
            .store
            .as_ref()
            .and_then(|s| s.breakers.get(self.scene().row()))
        else {
            self.toast("no breaker selected", false);
            return Vec::new();
        };
        let backend = breaker.channel.clone();
        let reason = REASON.to_owned();
        let action = match command {
            Command::ForceOpen => Action::BreakerForceOpen {
                backend,
                until_ms: self.ui.now_ms + FORCE_OPEN_MS,
                reason,
            },
            Command::DisableBreaker => Action::BreakerDisable { backend, reason },
            _ => Action::BreakerReset { backend, reason },
        };
        self.propose(action, Origin::Key)
    }

    fn lift_override(&mut self) -> Vec<Effect> {
        if let Some(mutt) = self.snapshot.mutt.as_ref() {
            // MUTT keeps no overrides: the view lists its settings, and lifting one deletes it.
            let Some((key, _)) = mutt.config.get(self.scene().row()).cloned() else {
                self.toast("no setting selected", false);
                return Vec::new();
            };
            return self.propose(
                Action::MuttSetConfig {
                    key,
                    value: None,
                    reason: REASON.to_owned(),
                },
                Origin::Key,
            );
        }
        let Some(item) = self
            .snapshot
            .store
            .as_ref()
            .and_then(|s| s.overrides.get(self.scene().row()))
            .cloned()
        else {
            self.toast("no override selected", false);
            return Vec::new();
        };
        let reason = REASON.to_owned();
        let action = match (item.kind, Flag::from_name(&item.name)) {
            (OverrideKind::Breaker, _) => Action::BreakerReset {
                backend: item.name,
                reason,
            },
            (_, Some(Flag::EmergencyStop(backend))) => Action::EmergencyStop {
                backend,
                on: false,
                reason,
                expires_at_ms: None,
            },
            (_, Some(Flag::SheddingMode)) => Action::Shedding {
                mode: ShedMode::Off,
                reason,
                expires_at_ms: None,
            },
            (_, Some(Flag::ConfigOverride(key))) => Action::SetConfig {
                key,
                value: None,
                reason,
            },
            (_, None) => {
                self.toast(format!("{} cannot be lifted from here", item.name), true);
                return Vec::new();
            }
        };
        self.propose(action, Origin::Key)
    }

    /// Into the funnel: plan first (the runner checks the policy before any I/O).
    pub fn propose(&mut self, action: Action, origin: Origin) -> Vec<Effect> {
        self.propose_with(action, origin, RunSettings::default())
    }

    fn propose_with(
        &mut self,
        action: Action,
        origin: Origin,
        settings: RunSettings,
    ) -> Vec<Effect> {
        if let Some(why) = self.ui.mode.read_only.clone() {
            self.toast(format!("read-only: {why}"), true);
            return Vec::new();
        }
        if let Some(why) = self.scene().unreadable() {
            self.toast(format!("refused, nothing changed: {why}"), true);
            return Vec::new();
        }
        let action = if self.scene().is_mutt() {
            match self.mutt_form(action) {
                Ok(action) => action,
                Err(why) => {
                    self.toast(why, true);
                    return Vec::new();
                }
            }
        } else {
            action
        };
        self.ui.tickets += 1;
        let ticket = self.ui.tickets;
        self.ui.overlay = Some(Overlay::Confirm(Confirm {
            ticket,
            action: action.clone(),
            origin,
            settings,
            stage: Stage::Planning,
        }));
        vec![Effect::Plan {
            ticket,
            action,
            origin,
            settings,
        }]
    }

    fn apply_filter(&mut self, text: String) -> Vec<Effect> {
        match command::parse_filter(&text, self.ui.now_ms) {
            Ok((filter, needle)) => {
                self.ui.dlq.filter = filter;
                self.ui.dlq.needle = needle;
                self.ui.dlq.filter_text = text;
                self.reset_pages();
                self.browse()
            }
            Err(error) => {
                self.toast(error, true);
                Vec::new()
            }
        }
    }

    fn overlay_key(&mut self, overlay: Overlay, key: KeyEvent) -> Vec<Effect> {
        let command = self.ui.keymap.command(key);
        match overlay {
            Overlay::Help { scroll } => match command {
                Some(Command::Up) => {
                    self.ui.overlay = Some(Overlay::Help {
                        scroll: scroll.saturating_sub(1),
                    });
                    Vec::new()
                }
                Some(Command::Down) => {
                    self.ui.overlay = Some(Overlay::Help { scroll: scroll + 1 });
                    Vec::new()
                }
                Some(Command::Quit) => vec![Effect::Quit],
                _ => Vec::new(),
            },
            Overlay::Inspector { scroll } => self.inspector_key(scroll, command),
            Overlay::Command(mut input) => match edit(&mut input.text, key) {
                Edit::Cancel => Vec::new(),
                Edit::Submit => self.command_line(&input.text),
                Edit::Changed => {
                    self.ui.overlay = Some(Overlay::Command(input));
                    Vec::new()
                }
            },
            Overlay::Filter(mut input) => match edit(&mut input.text, key) {
                Edit::Cancel => Vec::new(),
                Edit::Submit => self.apply_filter(input.text),
                Edit::Changed => {
                    self.ui.overlay = Some(Overlay::Filter(input));
                    Vec::new()
                }
            },
            Overlay::Picker(picker) => self.picker_key(picker, key.code, command),
            Overlay::Confirm(confirm) => self.confirm_key(confirm, key),
            Overlay::Silence(editor) => self.silence_editor_key(editor, key),
        }
    }

    /// A key in the entry inspector: scroll, copy, silence, close.
    fn inspector_key(&mut self, scroll: usize, command: Option<Command>) -> Vec<Effect> {
        match command {
            Some(Command::Up) => {
                self.ui.overlay = Some(Overlay::Inspector {
                    scroll: scroll.saturating_sub(1),
                });
                Vec::new()
            }
            Some(Command::Down) => {
                self.ui.overlay = Some(Overlay::Inspector { scroll: scroll + 1 });
                Vec::new()
            }
            Some(Command::PageDown) => {
                self.ui.overlay = Some(Overlay::Inspector {
                    scroll: scroll + 10,
                });
                Vec::new()
            }
            Some(Command::PageUp) => {
                self.ui.overlay = Some(Overlay::Inspector {
                    scroll: scroll.saturating_sub(10),
                });
                Vec::new()
            }
            Some(Command::Copy) => {
                self.ui.overlay = Some(Overlay::Inspector { scroll });
                self.copy_inspected()
            }
            // Silence the inspected entry's alert: the editor takes the inspector's place.
            Some(Command::Silence) => self.run(Command::Silence),

            Some(Command::Quit) => vec![Effect::Quit],
            _ => Vec::new(),
        }
    }

    /// A key in the test alert's channel picker: move, choose, cancel.
    fn picker_key(
        &mut self,
        mut picker: Picker,
        code: KeyCode,
        command: Option<Command>,
    ) -> Vec<Effect> {
        match (code, command) {
            (KeyCode::Esc, _) => Vec::new(),
            (KeyCode::Enter, _) => {
                let channel = picker.options.get(picker.selected).cloned();
                let channel = channel.filter(|c| c != "stdout");
                self.propose(
                    Action::SendTestAlert {
                        channel,
                        tenant: "default".to_owned(),
                        summary: "Ward test alert from the control room".to_owned(),
                    },
                    Origin::Key,
                )
            }
            (_, Some(Command::Up)) => {
                picker.selected = picker.selected.saturating_sub(1);
                self.ui.overlay = Some(Overlay::Picker(picker));
                Vec::new()
            }
            (_, Some(Command::Down)) => {
                picker.selected = (picker.selected + 1).min(picker.options.len().saturating_sub(1));
                self.ui.overlay = Some(Overlay::Picker(picker));
                Vec::new()
            }
            _ => {
                self.ui.overlay = Some(Overlay::Picker(picker));
                Vec::new()
            }
        }
    }

    /// The inspected entry's text to the clipboard.
    fn copy_inspected(&mut self) -> Vec<Effect> {
        let text = if self.scene().is_mutt() {
            self.scene()
                .selected_mutt_entry()
                .map(super::views::parts::mutt_inspector_text)
        } else {
            self.scene()
                .selected_entry()
                .map(super::views::dlq::inspector_text)
        };
        match text {
            Some(text) => {
                self.toast("copied the entry's JSON", false);
                vec![Effect::Copy(text)]
            }
            None => Vec::new(),
        }
    }

    fn confirm_key(&mut self, mut confirm: Confirm, key: KeyEvent) -> Vec<Effect> {
        let ctrl_c =
            key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
        match &mut confirm.stage {
            Stage::Running { .. } => {
                self.ui.overlay = Some(Overlay::Confirm(confirm));
                if key.code == KeyCode::Esc || ctrl_c {
                    self.toast("cancelling after the current batch", false);
                    return vec![Effect::Cancel];
                }
                Vec::new()
            }
            Stage::Planning => {
                if key.code == KeyCode::Esc || ctrl_c {
                    return Vec::new();
                }
                self.ui.overlay = Some(Overlay::Confirm(confirm));
                Vec::new()
            }
            Stage::Done { .. } | Stage::Failed(_) => {
                if matches!(key.code, KeyCode::Esc | KeyCode::Enter) || ctrl_c {
                    return Vec::new();
                }
                self.ui.overlay = Some(Overlay::Confirm(confirm));
                Vec::new()
            }
            Stage::Ready { plan, input } => {
                if key.code == KeyCode::Enter {
                    if plan.tier == Tier::Irreversible && input.trim() != plan.count.to_string() {
                        self.toast(format!("type {} to confirm", plan.count), true);
                        self.ui.overlay = Some(Overlay::Confirm(confirm));
                        return Vec::new();
                    }
                    let mut plan = plan.clone();
                    let typed = input.trim();
                    if plan.tier != Tier::Irreversible
                        && let Some(reason) = plan.action.reason_mut()
                    {
                        if typed.is_empty() {
                            self.toast("a reason is required", true);
                            self.ui.overlay = Some(Overlay::Confirm(confirm));
                            return Vec::new();
                        }
                        *reason = sanitize(typed).into_owned();
                    } else if plan.tier != Tier::Irreversible && !typed.is_empty() {
                        plan.run_reason = Some(sanitize(typed).into_owned());
                    }
                    let (ticket, origin, settings) =
                        (confirm.ticket, confirm.origin, confirm.settings);
                    confirm.stage = Stage::Running {
                        plan: plan.clone(),
                        progress: None,
                    };
                    self.ui.overlay = Some(Overlay::Confirm(confirm));
                    return vec![Effect::Execute {
                        ticket,
                        plan,
                        origin,
                        settings,
                    }];
                }
                if key.code == KeyCode::Esc || ctrl_c {
                    self.toast("cancelled: nothing changed", false);
                    return Vec::new();
                }
                let _ = edit(input, key);
                self.ui.overlay = Some(Overlay::Confirm(confirm));
                Vec::new()
            }
        }
    }

    /// A `:` command line.
    pub fn command_line(&mut self, text: &str) -> Vec<Effect> {
        let context = command::Context {
            now_ms: self.ui.now_ms,
            dlq_queue: self.ui.dlq.queue.clone(),
            dlq_scope: (self.ui.view == View::Dlq).then(|| self.ui.dlq.scope()),
        };
        match command::parse(text, &context) {
            Ok(Parsed::Quit) => vec![Effect::Quit],
            Ok(Parsed::Run(command)) => self.run(command),
            Ok(Parsed::View(view)) => self.show(view),
            Ok(Parsed::Browse { queue, set }) => self.browse_queue(queue, set),
            Ok(Parsed::Action { action, settings }) => {
                self.propose_with(action, Origin::Command, settings)
            }
            Ok(Parsed::Silence(matchers)) => self.open_silence_editor(matchers, Origin::Command),
            Ok(Parsed::Expire) => self.expire_selected_silence(Origin::Command),
            Err(error) => {
                self.toast(error, true);
                Vec::new()
            }
        }
    }
}

pub(super) enum Edit {
    Cancel,
    Submit,
    Changed,
}

/// Line editing for inputs: characters, backspace, ctrl-u clears, Esc cancels, Enter submits.
fn edit(text: &mut String, key: KeyEvent) -> Edit {
    edit_within(text, key, 200)
}

/// `edit`, for a line of at most `max` characters.
pub(super) fn edit_within(text: &mut String, key: KeyEvent, max: usize) -> Edit {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Esc => Edit::Cancel,
        KeyCode::Char('c') if ctrl => Edit::Cancel,
        KeyCode::Enter => Edit::Submit,
        KeyCode::Backspace => {
            text.pop();
            Edit::Changed
        }
        KeyCode::Char('u') if ctrl => {
            text.clear();
            Edit::Changed
        }
        KeyCode::Char(c) if !ctrl && !c.is_control() && text.chars().count() < max => {
            text.push(c);
            Edit::Changed
        }
        _ => Edit::Changed,
    }
}

/// MUTT's config key for the alert queue's threshold `t`.
fn mutt_threshold_key(t: Threshold) -> &'static str {
    match t {
        Threshold::Warn => "alerter_queue_warn_threshold",
        Threshold::Shed => "alerter_queue_shed_threshold",
    }
}
