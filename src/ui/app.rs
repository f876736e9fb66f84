//! The control room's state and how keys change it. No I/O: a key returns `Effect`s, which the
//! runner carries out (store reads, plans, runs), and their results come back as `JobEvent`s.
//! Every mutation leaves here as one `Action` through the one confirm funnel.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::command::{self, Parsed, RunSettings};
use super::keymap::{Command, Context, Keymap};
use crate::actions::{
    Action, MuttScope, Origin, OverrideKind, Plan, Progress, Report, Scope, Tier,
};
use crate::model::mutt::MuttPageQuery;
use crate::model::mutt::{MuttDlqName, MuttEntry};
use crate::model::{
    DlqCursor, DlqFilter, FailedSet, Flag, Profile, QueueName, ShedMode, Threshold, sanitize,
};
use crate::sources::{DlqGroupsView, DlqQuery, DlqSort, Freshness, Snapshot};

/// The views, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Overview,
    Queues,
    Dlq,
    Breakers,
    Overrides,
    Audit,
    Slo,
    Silences,
    Alerts,
}

impl View {
    pub const ALL: [View; 9] = [
        View::Overview,
        View::Queues,
        View::Dlq,
        View::Breakers,
        View::Overrides,
        View::Audit,
        View::Slo,
        View::Silences,
        View::Alerts,
    ];

    /// The tab's name on a narrow terminal.
    pub fn short_title(self) -> &'static str {
        match self {
            Self::Overview => "Ovw",
            Self::Queues => "Que",
            Self::Dlq => "DLQ",
            Self::Breakers => "Brk",
            Self::Overrides => "Ovr",
            Self::Audit => "Aud",
            Self::Slo => "SLO",
            Self::Silences => "Sil",
            Self::Alerts => "Alr",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Queues => "Queues",
            View::Dlq => "DLQ",
            View::Breakers => "Breakers",
            View::Overrides => "Overrides",
            View::Audit => "Audit",
            View::Slo => "SLOs",
            View::Silences => "Silences",
            View::Alerts => "Alerts",
        }
    }

    fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }

    fn context(self) -> Context {
        match self {
            View::Dlq => Context::Dlq,
            View::Breakers => Context::Breakers,
            View::Overrides => Context::Overrides,
            View::Silences => Context::Silences,
            _ => Context::Everywhere,
        }
    }
}

/// How the control room runs.
#[derive(Debug, Clone, Default)]
pub struct Mode {
    /// Why actions are refused (`--read-only`, config, wall).
    pub read_only: Option<String>,
    /// The large-type wall layout.
    pub wall: bool,
    /// ctrl-c does not quit.
    pub no_exit_on_ctrl_c: bool,
    /// The refresh interval cannot be changed.
    pub lock_refresh: bool,
}

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

/// One action on its way through the funnel.
#[derive(Debug, Clone)]
pub struct Confirm {
    /// Which dialog this is: events of a job started from an earlier one are not for it.
    pub ticket: u64,
    pub action: Action,
    pub origin: Origin,
    pub settings: RunSettings,
    pub stage: Stage,
}

#[derive(Debug, Clone)]
pub enum Stage {
    Planning,
    /// Waiting for the operator: `input` is the reason, or the count typed for a tier-3 action.
    Ready {
        plan: Box<Plan>,
        input: String,
    },
    Running {
        plan: Box<Plan>,
        progress: Option<Progress>,
    },
    Done {
        plan: Box<Plan>,
        result: Result<Report, String>,
    },
    Failed(String),
}

/// A text input line (`:` commands and `/` filters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Input {
    pub text: String,
}

/// The channel picker of the test alert.
#[derive(Debug, Clone)]
pub struct Picker {
    pub options: Vec<String>,
    pub selected: usize,
}

#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // at most one, held by the app
pub enum Overlay {
    Help {
        scroll: usize,
    },
    Confirm(Confirm),
    Command(Input),
    Filter(Input),
    Picker(Picker),
    Inspector {
        scroll: usize,
    },
    /// The silence editor: matchers, duration and comment, before the confirm funnel.
    Silence(super::silences::SilenceEditor),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toast {
    pub text: String,
    pub error: bool,
    pub until_ms: i64,
}

/// The DLQ browser's state: what to read and what is marked.
#[derive(Debug, Clone)]
pub struct DlqBrowser {
    pub queue: QueueName,
    pub set: FailedSet,
    pub filter_text: String,
    /// The filter the store applies, free words included (its text search).
    pub filter: DlqFilter,
    /// Free words of the filter in lowercase, matched on the page of MUTT's lists (which the
    /// store cannot search).
    pub needle: Option<String>,
    pub sort: DlqSort,
    /// Cursors of the pages before the current one, to page back.
    pub pages: Vec<DlqCursor>,
    pub cursor: DlqCursor,
    pub marks: BTreeSet<String>,
    pub last_mark: Option<usize>,
    pub grouped: bool,
    pub page_size: usize,
}

impl DlqBrowser {
    fn new(queue: QueueName) -> Self {
        Self {
            queue,
            set: FailedSet::Dlq,
            filter_text: String::new(),
            filter: DlqFilter::default(),
            needle: None,
            sort: DlqSort::default(),
            pages: Vec::new(),
            cursor: DlqSort::default().start(),
            marks: BTreeSet::new(),
            last_mark: None,
            grouped: false,
            page_size: 100,
        }
    }

    pub fn query(&self) -> DlqQuery {
        DlqQuery {
            queue: self.queue.as_str().to_owned(),
            set: self.set,
            filter: self.filter.clone(),
            cursor: self.cursor.clone(),
            limit: self.page_size,
            grouped: self.grouped,
        }
    }

    /// The action scope: marked rows, else the whole filter (never just the page).
    pub fn scope(&self) -> Scope {
        if self.marks.is_empty() {
            Scope::Filter(self.filter.clone())
        } else {
            Scope::Ids(
                self.marks
                    .iter()
                    .map(|id| crate::model::EnvelopeId(id.clone()))
                    .collect(),
            )
        }
    }
}

/// The MUTT DLQ browser (`--profile mutt`): MUTT's lists, newest first, paged by position;
/// marks hold entries' content ids, as MUTT's entries have no ids of their own.
#[derive(Debug, Clone)]
pub struct MuttBrowser {
    pub dlq: MuttDlqName,
    /// Position of the page's first entry (0 = the newest).
    pub offset: u64,
    pub page_size: u64,
    pub marks: BTreeSet<String>,
    pub last_mark: Option<usize>,
}

impl Default for MuttBrowser {
    fn default() -> Self {
        Self {
            // The forwarder's DLQ first: MUTT itself never replays it.
            dlq: MuttDlqName::Moog,
            offset: 0,
            page_size: 100,
            marks: BTreeSet::new(),
            last_mark: None,
        }
    }
}

impl MuttBrowser {
    pub fn query(&self) -> MuttPageQuery {
        MuttPageQuery {
            dlq: self.dlq,
            offset: self.offset,
            limit: self.page_size,
        }
    }

    /// Marked entries, else the whole list (never just the page).
    pub fn scope(&self) -> MuttScope {
        if self.marks.is_empty() {
            MuttScope::All
        } else {
            MuttScope::Entries(self.marks.iter().cloned().collect())
        }
    }
}

/// The whole control-room state.
#[derive(Debug, Clone)]
pub struct App {
    pub mode: Mode,
    pub keymap: Keymap,
    pub view: View,
    /// The snapshot drawn (the newest, or the one frozen).
    pub snapshot: Arc<Snapshot>,
    pub frozen: bool,
    pub rows: [usize; View::ALL.len()],
    pub dlq: DlqBrowser,
    pub mutt: MuttBrowser,
    pub overlay: Option<Overlay>,
    pub toasts: VecDeque<Toast>,
    /// The last confirm dialog's ticket.
    tickets: u64,
    /// Points of history the sparklines show.
    pub spark_points: usize,
    /// Channels a test alert can go to.
    pub channels: Vec<String>,
    pub now_ms: i64,
    /// The wall's current view when cycling.
    pub wall_page: usize,
    /// The environment's colour (config `tui.accent`), else the theme's.
    pub accent: Option<ratatui::style::Color>,
}

const TOAST_MS: i64 = 4_000;
const FORCE_OPEN_MS: i64 = 15 * 60 * 1000;
const OVERRIDE_TTL_MS: i64 = 60 * 60 * 1000;
const REASON: &str = "set from the control room";

impl App {
    pub fn new(mode: Mode, keymap: Keymap, channels: Vec<String>, snapshot: Arc<Snapshot>) -> Self {
        let queue = QueueName::delivery();
        Self {
            mode,
            keymap,
            view: View::Overview,
            now_ms: snapshot.taken_at_ms,
            snapshot,
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
        }
    }

    /// A new snapshot arrived (ignored while frozen, except for freshness).
    pub fn on_snapshot(&mut self, snapshot: Arc<Snapshot>) {
        self.now_ms = snapshot.taken_at_ms;
        if !self.frozen {
            self.snapshot = snapshot;
        }
    }

    pub fn tick(&mut self, now_ms: i64) {
        self.now_ms = now_ms;
        while self.toasts.front().is_some_and(|t| t.until_ms <= now_ms) {
            self.toasts.pop_front();
        }
    }

    pub fn toast(&mut self, text: impl Into<String>, error: bool) {
        self.toasts.push_back(Toast {
            text: text.into(),
            error,
            until_ms: self.now_ms + TOAST_MS,
        });
        while self.toasts.len() > 3 {
            self.toasts.pop_front();
        }
    }

    /// Attached to a MUTT deployment: MUTT's own figures and actions.
    pub fn is_mutt(&self) -> bool {
        self.snapshot.target.profile == Profile::Mutt
    }

    pub fn stale(&self) -> bool {
        self.snapshot
            .sources
            .iter()
            .any(|s| s.freshness == Freshness::Stale)
    }

    /// Why nothing may be changed now: the store is STALE or not read yet. An action planned
    /// on figures the operator cannot trust, or sent to a store that does not answer, would
    /// end indeterminate.
    pub fn unreadable(&self) -> Option<String> {
        if let Some(source) = self
            .snapshot
            .sources
            .iter()
            .find(|s| s.freshness == Freshness::Stale)
        {
            let since = source
                .age_ms(self.now_ms)
                .map_or_else(|| "ever".to_owned(), crate::ui::widgets::age);
            return Some(format!(
                "{} is STALE (no good read for {since}: {})",
                source.name,
                source.last_error.as_deref().unwrap_or("no answer")
            ));
        }
        (self.snapshot.store.is_none() && self.snapshot.mutt.is_none())
            .then(|| "the store has not been read yet".to_owned())
    }

    /// Commands usable here and now (help and hints list only these).
    pub fn available(&self, command: Command) -> bool {
        if command.is_mutating() && self.mode.read_only.is_some() {
            return false;
        }
        match command.context() {
            Context::Everywhere => true,
            context => self.view.context() == context,
        }
    }

    /// An event of the job started from dialog `ticket`; ignored once that dialog is gone.
    pub fn job(&mut self, ticket: u64, event: JobEvent) -> Vec<Effect> {
        let Some(Overlay::Confirm(confirm)) = self.overlay.as_mut() else {
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
                    self.mutt.marks.clear();
                    self.mutt.last_mark = None;
                }
                if !failed && matches!(plan.action.dlq_scope(), Some((.., Scope::Ids(_)))) {
                    self.dlq.marks.clear();
                    self.dlq.last_mark = None;
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
        if let Some(overlay) = self.overlay.take() {
            return self.overlay_key(overlay, key);
        }
        if super::keymap::suspends(key) {
            return vec![Effect::Suspend];
        }
        let Some(command) = self.keymap.command(key) else {
            return Vec::new();
        };
        self.run(command)
    }

    /// Run a named command (from a key). One arm per command, by design.
    #[allow(clippy::too_many_lines)]
    pub fn run(&mut self, command: Command) -> Vec<Effect> {
        if command.is_mutating()
            && let Some(why) = self.mode.read_only.clone()
        {
            self.toast(format!("read-only: {why}"), true);
            return Vec::new();
        }
        if command.context() != Context::Everywhere && command.context() != self.view.context() {
            self.toast(format!("{} works in another view", command.name()), false);
            return Vec::new();
        }
        match command {
            Command::Interrupt if self.mode.no_exit_on_ctrl_c => {
                self.toast(
                    "ctrl-c does not quit here (no_exit_on_ctrl_c): press q",
                    false,
                );
                Vec::new()
            }
            Command::Quit | Command::Interrupt => vec![Effect::Quit],
            Command::Help => {
                self.overlay = Some(Overlay::Help { scroll: 0 });
                Vec::new()
            }
            Command::Back => self.back(),
            Command::CommandLine => {
                self.overlay = Some(Overlay::Command(Input::default()));
                Vec::new()
            }
            Command::Filter => {
                self.overlay = Some(Overlay::Filter(Input {
                    text: self.dlq.filter_text.clone(),
                }));
                Vec::new()
            }
            Command::Refresh => vec![Effect::Refresh],
            Command::ToggleFreeze => {
                self.frozen = !self.frozen;
                Vec::new()
            }
            Command::ViewOverview => self.show(View::Overview),
            Command::ViewQueues => self.show(View::Queues),
            Command::ViewDlq => self.show(View::Dlq),
            Command::ViewBreakers => self.show(View::Breakers),
            Command::ViewOverrides => self.show(View::Overrides),
            Command::ViewAudit => self.show(View::Audit),
            Command::ViewSlo => self.show(View::Slo),
            Command::ViewSilences => self.show(View::Silences),
            Command::ViewAlerts => self.show(View::Alerts),
            Command::NextView => self.show(View::ALL[(self.view.index() + 1) % View::ALL.len()]),
            Command::PrevView => {
                self.show(View::ALL[(self.view.index() + View::ALL.len() - 1) % View::ALL.len()])
            }
            Command::Up => self.move_row(-1),
            Command::Down => self.move_row(1),
            Command::PageUp => self.move_row(-10),
            Command::PageDown => self.move_row(10),
            Command::Top => self.move_row(i64::MIN / 2),
            Command::Bottom => self.move_row(i64::MAX / 2),
            Command::HistoryLonger => {
                self.spark_points =
                    (self.spark_points * 2).min(crate::sources::poller::HISTORY_POINTS);
                Vec::new()
            }
            Command::HistoryShorter => {
                self.spark_points = (self.spark_points / 2).max(15);
                Vec::new()
            }
            Command::Replay => self.replay(),
            Command::ToggleShedding if self.is_mutt() => {
                self.toast(
                    "MUTT sheds whenever the alert queue passes alerter_queue_shed_threshold: \
                     `:set alerter_queue_shed_threshold=N`, or cycle the mode",
                    false,
                );
                Vec::new()
            }
            Command::CycleSheddingMode if self.is_mutt() => {
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
            Command::TestAlert | Command::EmergencyStop if self.is_mutt() => {
                self.toast(
                    format!("{}: MUTT has no such control", command.name()),
                    false,
                );
                Vec::new()
            }
            Command::ToggleShedding => {
                let mode = if self.shedding() == ShedMode::Off {
                    ShedMode::Dlq
                } else {
                    ShedMode::Off
                };
                self.shedding_action(mode)
            }
            Command::CycleSheddingMode => {
                let mode = match self.shedding() {
                    ShedMode::Off => ShedMode::Dlq,
                    ShedMode::Dlq => ShedMode::Defer,
                    ShedMode::Defer => ShedMode::Off,
                };
                self.shedding_action(mode)
            }
            Command::TestAlert => {
                let mut options = self.channels.clone();
                options.insert(0, "stdout".to_owned());
                options.dedup();
                self.overlay = Some(Overlay::Picker(Picker {
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
                        expires_at_ms: on.then_some(self.now_ms + OVERRIDE_TTL_MS),
                    },
                    Origin::Key,
                )
            }
            Command::Mark if self.is_mutt() => self.mark_mutt(false),
            Command::MarkRange if self.is_mutt() => self.mark_mutt(true),
            Command::Mark => self.mark(false),
            Command::MarkRange => self.mark(true),
            Command::ClearMarks => {
                self.dlq.marks.clear();
                self.dlq.last_mark = None;
                self.mutt.marks.clear();
                self.mutt.last_mark = None;
                Vec::new()
            }
            Command::Inspect if self.grouping() => self.filter_to_group(),
            Command::Inspect => {
                if self.selected_entry().is_some() || self.selected_mutt_entry().is_some() {
                    self.overlay = Some(Overlay::Inspector { scroll: 0 });
                }
                Vec::new()
            }
            Command::Copy if self.is_mutt() => match self.selected_mutt_entry() {
                Some(entry) => {
                    let id = entry.id.clone();
                    self.toast(format!("copied {id}"), false);
                    vec![Effect::Copy(id)]
                }
                None => Vec::new(),
            },
            Command::NextPage if self.is_mutt() => {
                let total = self.snapshot.mutt_page.as_ref().map_or(0, |p| p.total);
                if self.mutt.offset + self.mutt.page_size < total {
                    self.mutt.offset += self.mutt.page_size;
                    self.rows[View::Dlq.index()] = 0;
                    self.browse()
                } else {
                    self.toast("last page", false);
                    Vec::new()
                }
            }
            Command::PrevPage if self.is_mutt() => {
                if self.mutt.offset == 0 {
                    return Vec::new();
                }
                self.mutt.offset = self.mutt.offset.saturating_sub(self.mutt.page_size);
                self.rows[View::Dlq.index()] = 0;
                self.browse()
            }
            Command::ToggleDead if self.is_mutt() => {
                self.mutt.dlq = match self.mutt.dlq {
                    MuttDlqName::Alerter => MuttDlqName::Moog,
                    MuttDlqName::Moog => MuttDlqName::Dead,
                    MuttDlqName::Dead => MuttDlqName::Alerter,
                };
                self.reset_pages();
                self.browse()
            }
            Command::Copy => match self.selected_entry() {
                Some(entry) => {
                    let id = entry.meta.id.0.clone();
                    self.toast(format!("copied {id}"), false);
                    vec![Effect::Copy(id)]
                }
                None => Vec::new(),
            },
            Command::NextPage => {
                let next = self.dlq_page().and_then(|p| p.next.clone());
                if let Some(next) = next {
                    let current = std::mem::replace(&mut self.dlq.cursor, next);
                    self.dlq.pages.push(current);
                    self.rows[View::Dlq.index()] = 0;
                    self.browse()
                } else {
                    self.toast("last page", false);
                    Vec::new()
                }
            }
            Command::PrevPage => match self.dlq.pages.pop() {
                Some(cursor) => {
                    self.dlq.cursor = cursor;
                    self.rows[View::Dlq.index()] = 0;
                    self.browse()
                }
                None => Vec::new(),
            },
            Command::ToggleGrouping if self.is_mutt() => {
                self.toast("MUTT's entries carry no error class to group by", false);
                Vec::new()
            }
            Command::ToggleGrouping => {
                self.dlq.grouped = !self.dlq.grouped;
                self.rows[View::Dlq.index()] = 0;
                self.browse()
            }
            Command::CycleQueue if self.is_mutt() => self.run(Command::ToggleDead),
            Command::CycleQueue => {
                let queues: Vec<QueueName> = self.snapshot.store.as_ref().map_or_else(
                    || vec![QueueName::ingest(), QueueName::delivery()],
                    |s| s.queues.iter().map(|q| q.stats.queue.clone()).collect(),
                );
                let at = queues.iter().position(|q| *q == self.dlq.queue);
                let next = at.map_or(0, |at| (at + 1) % queues.len().max(1));
                match queues.get(next).cloned() {
                    Some(queue) => self.browse_queue(queue, self.dlq.set),
                    None => Vec::new(),
                }
            }
            Command::CycleSort if self.is_mutt() => {
                self.toast("MUTT's lists are shown newest first", false);
                Vec::new()
            }
            Command::CycleSort => {
                self.dlq.sort = self.dlq.sort.next();
                self.reset_pages();
                self.browse()
            }
            Command::ToggleDead => {
                self.dlq.set = match self.dlq.set {
                    FailedSet::Dlq => FailedSet::Dead,
                    FailedSet::Dead => FailedSet::Dlq,
                };
                self.reset_pages();
                self.browse()
            }
            Command::Purge => self.propose(
                Action::Purge {
                    queue: self.dlq.queue.clone(),
                    set: self.dlq.set,
                    scope: self.dlq.scope(),
                },
                Origin::Key,
            ),
            Command::MoveToDead => self.propose(
                Action::MoveToDead {
                    queue: self.dlq.queue.clone(),
                    scope: self.dlq.scope(),
                },
                Origin::Key,
            ),
            Command::ForceOpen | Command::ResetBreaker | Command::DisableBreaker => {
                self.breaker_action(command)
            }
            Command::LiftOverride => self.lift_override(),
            Command::Silence => self.open_silence_editor(None, Origin::Key),
            Command::ExpireSilence => self.expire_selected_silence(Origin::Key),
        }
    }

    fn back(&mut self) -> Vec<Effect> {
        if self.view == View::Dlq && !self.mutt.marks.is_empty() {
            self.mutt.marks.clear();
            Vec::new()
        } else if self.view == View::Dlq && !self.dlq.marks.is_empty() {
            self.dlq.marks.clear();
            Vec::new()
        } else if self.view == View::Dlq && !self.dlq.filter_text.is_empty() {
            self.apply_filter(String::new())
        } else if self.view != View::Overview {
            self.show(View::Overview)
        } else {
            Vec::new()
        }
    }

    pub fn show(&mut self, view: View) -> Vec<Effect> {
        let was = self.view;
        self.view = view;
        match (was == View::Dlq, view == View::Dlq) {
            (false, true) => self.browse(),
            (true, false) if self.is_mutt() => vec![Effect::BrowseMutt(None)],
            (true, false) => vec![Effect::Browse(None)],
            _ => Vec::new(),
        }
    }

    /// Browse `queue`'s DLQ or dead list (the filter and sort stay).
    pub fn browse_queue(&mut self, queue: QueueName, set: FailedSet) -> Vec<Effect> {
        self.dlq.queue = queue;
        self.dlq.set = set;
        self.reset_pages();
        if self.view == View::Dlq {
            self.browse()
        } else {
            self.show(View::Dlq)
        }
    }

    fn browse(&self) -> Vec<Effect> {
        if self.is_mutt() {
            vec![Effect::BrowseMutt(Some(self.mutt.query()))]
        } else {
            vec![Effect::Browse(Some(self.dlq.query()))]
        }
    }

    fn reset_pages(&mut self) {
        self.mutt.offset = 0;
        self.mutt.marks.clear();
        self.mutt.last_mark = None;
        self.dlq.pages.clear();
        self.dlq.cursor = self.dlq.sort.start();
        self.dlq.marks.clear();
        self.dlq.last_mark = None;
        self.rows[View::Dlq.index()] = 0;
    }

    /// Rows in the current view (for moving the selection).
    pub fn row_count(&self) -> usize {
        if let Some(mutt) = self.snapshot.mutt.as_ref() {
            return match self.view {
                View::Overview | View::Silences | View::Alerts => 0,
                View::Queues => mutt.processing.len(),
                View::Dlq => self.visible_mutt_entries().len(),
                View::Breakers => mutt.breakers.len(),
                View::Overrides => mutt.config.len(),
                View::Audit => mutt.audit.len(),
                View::Slo => self.snapshot.slo.as_ref().map_or(0, |s| s.readings.len()),
            };
        }
        let store = self.snapshot.store.as_ref();
        match self.view {
            View::Overview => 0,
            View::Queues => store.map_or(0, |s| s.queues.len()),
            View::Dlq if self.grouping() => self.visible_groups().map_or(0, |g| g.groups.len()),
            View::Dlq => self.visible_entries().len(),
            View::Breakers => store.map_or(0, |s| s.breakers.len()),
            View::Overrides => store.map_or(0, |s| s.overrides.len()),
            View::Audit => store.map_or(0, |s| s.audit.len()),
            View::Slo => self.snapshot.slo.as_ref().map_or(0, |s| s.readings.len()),
            View::Silences => store.map_or(0, |s| s.alerting.silences.len()),
            View::Alerts => store.map_or(0, |s| s.alerting.alerts.len()),
        }
    }

    pub fn row(&self) -> usize {
        self.row_within(self.row_count())
    }

    /// The selected row among `count` rows (for draw code that has already counted them).
    pub fn row_within(&self, count: usize) -> usize {
        self.rows[self.view.index()].min(count.saturating_sub(1))
    }

    fn move_row(&mut self, by: i64) -> Vec<Effect> {
        if let Some(Overlay::Inspector { scroll } | Overlay::Help { scroll }) =
            self.overlay.as_mut()
        {
            *scroll = (*scroll as i64 + by).max(0) as usize;
            return Vec::new();
        }
        let count = self.row_count() as i64;
        let current = self.row() as i64;
        self.rows[self.view.index()] = (current + by).clamp(0, (count - 1).max(0)) as usize;
        Vec::new()
    }

    /// The page read for what the browser asks now; `None` until the poller has read it (a page
    /// of another queue, list, filter or order is never shown under this one's title).
    pub fn dlq_page(&self) -> Option<&crate::sources::DlqPageView> {
        let asked = self.dlq.query();
        self.snapshot.dlq_page.as_ref().filter(|p| {
            let q = &p.query;
            (&q.queue, q.set, &q.filter, &q.cursor, q.limit)
                == (
                    &asked.queue,
                    asked.set,
                    &asked.filter,
                    &asked.cursor,
                    asked.limit,
                )
        })
    }

    /// DLQ entries of the page in the browser's order (the store applied the whole filter).
    pub fn visible_entries(&self) -> Vec<&crate::model::DlqEntry> {
        let Some(page) = self.dlq_page() else {
            return Vec::new();
        };
        let mut entries: Vec<_> = page.entries.iter().collect();
        self.dlq.sort.arrange(&mut entries);
        entries
    }

    /// The browser shows groups instead of entries.
    pub fn grouping(&self) -> bool {
        self.view == View::Dlq && self.dlq.grouped && !self.is_mutt()
    }

    /// The store's counts by error class × time bucket of the whole filtered set.
    pub fn visible_groups(&self) -> Option<&DlqGroupsView> {
        self.dlq_page()?.groups.as_ref()
    }

    /// Enter on a group: filter to its error class and time bucket, and list its entries.
    fn filter_to_group(&mut self) -> Vec<Effect> {
        let Some((group, bucket_ms)) = self
            .visible_groups()
            .and_then(|v| Some((v.groups.get(self.row())?.clone(), v.bucket_ms)))
        else {
            self.toast("no group selected", false);
            return Vec::new();
        };
        let filter = DlqFilter {
            error_class: Some(group.error_class),
            failed_at_or_after_ms: Some(group.bucket_ms),
            failed_before_ms: Some(group.bucket_ms.saturating_add(bucket_ms)),
            ..self.dlq.filter.clone()
        };
        self.dlq.grouped = false;
        self.apply_filter(command::filter_text(&filter))
    }

    /// MUTT DLQ entries of the page that pass the free-text filter.
    pub fn visible_mutt_entries(&self) -> Vec<&MuttEntry> {
        let Some(page) = self.snapshot.mutt_page.as_ref() else {
            return Vec::new();
        };
        page.entries
            .iter()
            .filter(|e| {
                self.dlq.needle.as_deref().is_none_or(|needle| {
                    [&e.id, &e.host, &e.message, &e.team]
                        .iter()
                        .any(|field| field.to_lowercase().contains(needle))
                })
            })
            .collect()
    }

    pub fn selected_mutt_entry(&self) -> Option<&MuttEntry> {
        if self.view != View::Dlq {
            return None;
        }
        self.visible_mutt_entries().get(self.row()).copied()
    }

    fn mark_mutt(&mut self, range: bool) -> Vec<Effect> {
        let row = self.row();
        let ids: Vec<String> = self
            .visible_mutt_entries()
            .iter()
            .map(|e| e.id.clone())
            .collect();
        let Some(id) = ids.get(row) else {
            return Vec::new();
        };
        if range {
            let from = self.mutt.last_mark.unwrap_or(row);
            for id in &ids[from.min(row)..=from.max(row).min(ids.len() - 1)] {
                self.mutt.marks.insert(id.clone());
            }
        } else if !self.mutt.marks.remove(id) {
            self.mutt.marks.insert(id.clone());
        }
        self.mutt.last_mark = Some(row);
        self.move_row(1)
    }

    /// The MUTT entries a browser scope names: the marks (or, outside the browser, the whole
    /// list); `Err` for a filter MUTT's entries cannot be selected by.
    fn mutt_scope(&self, scope: &Scope) -> Result<MuttScope, String> {
        let in_browser = self.view == View::Dlq;
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
                    && self.mutt.marks.is_empty()
                    && (f.failed_at_or_after_ms.is_some()
                        || f.failed_before_ms.is_some()
                        || f.text.is_some()) =>
            {
                Err("MUTT's DLQ entries carry no failure time, and words only filter the page: mark entries instead".to_owned())
            }
            _ if in_browser => Ok(self.mutt.scope()),
            _ => Ok(MuttScope::All),
        }
    }

    /// An action in MUTT's terms: the same proposal, on MUTT's lists, settings and breakers
    /// (`Err` when MUTT has nothing like it).
    fn mutt_form(&self, action: Action) -> Result<Action, String> {
        let scope = |scope: &Scope| self.mutt_scope(scope);
        let dlq = self.mutt.dlq;
        let shed_key = |t: Threshold| match t {
            Threshold::Warn => "alerter_queue_warn_threshold",
            Threshold::Shed => "alerter_queue_shed_threshold",
        };
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
                key: shed_key(threshold).to_owned(),
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

    pub fn selected_entry(&self) -> Option<&crate::model::DlqEntry> {
        if self.view != View::Dlq {
            return None;
        }
        self.visible_entries().get(self.row()).copied()
    }

    fn mark(&mut self, range: bool) -> Vec<Effect> {
        let row = self.row();
        let ids: Vec<String> = self
            .visible_entries()
            .iter()
            .map(|e| e.meta.id.0.clone())
            .collect();
        let Some(id) = ids.get(row) else {
            return Vec::new();
        };
        if range {
            let from = self.dlq.last_mark.unwrap_or(row);
            for id in &ids[from.min(row)..=from.max(row).min(ids.len() - 1)] {
                self.dlq.marks.insert(id.clone());
            }
        } else if !self.dlq.marks.remove(id) {
            self.dlq.marks.insert(id.clone());
        }
        self.dlq.last_mark = Some(row);
        self.move_row(1)
    }

    fn mutt_breaker_action(&mut self, command: Command) -> Vec<Effect> {
        let Some(name) = self
            .snapshot
            .mutt
            .as_ref()
            .and_then(|m| m.breakers.get(self.row()))
            .map(|b| b.name.clone())
        else {
            self.toast("no breaker selected", false);
            return Vec::new();
        };
        let reason = REASON.to_owned();
        let action = match command {
            Command::ForceOpen => Action::MuttBreaker {
                name,
                open_until_ms: Some(self.now_ms + FORCE_OPEN_MS),
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

    fn shedding(&self) -> ShedMode {
        self.snapshot
            .store
            .as_ref()
            .map_or(ShedMode::Off, |s| s.shedding)
    }

    fn shedding_action(&mut self, mode: ShedMode) -> Vec<Effect> {
        let expires_at_ms = (mode != ShedMode::Off).then_some(self.now_ms + OVERRIDE_TTL_MS);
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
        if self.view == View::Queues
            && let Some(m) = self.snapshot.mutt.as_ref()
        {
            let selected = m.processing_by_concern().get(self.row()).copied().cloned();
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
        let (queue, from, scope) = if self.view == View::Dlq {
            (self.dlq.queue.clone(), self.dlq.set, self.dlq.scope())
        } else {
            (
                self.dlq.queue.clone(),
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
        if self.is_mutt() {
            return self.mutt_breaker_action(command);
        }
        let Some(breaker) = self
            .snapshot
            .store
            .as_ref()
            .and_then(|s| s.breakers.get(self.row()))
        else {
            self.toast("no breaker selected", false);
            return Vec::new();
        };
        let backend = breaker.channel.clone();
        let reason = REASON.to_owned();
        let action = match command {
            Command::ForceOpen => Action::BreakerForceOpen {
                backend,
                until_ms: self.now_ms + FORCE_OPEN_MS,
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
            let Some((key, _)) = mutt.config.get(self.row()).cloned() else {
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
            .and_then(|s| s.overrides.get(self.row()))
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
        if let Some(why) = self.mode.read_only.clone() {
            self.toast(format!("read-only: {why}"), true);
            return Vec::new();
        }
        if let Some(why) = self.unreadable() {
            self.toast(format!("refused, nothing changed: {why}"), true);
            return Vec::new();
        }
        let action = if self.is_mutt() {
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
        self.tickets += 1;
        let ticket = self.tickets;
        self.overlay = Some(Overlay::Confirm(Confirm {
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
        match command::parse_filter(&text, self.now_ms) {
            Ok((filter, needle)) => {
                self.dlq.filter = filter;
                self.dlq.needle = needle;
                self.dlq.filter_text = text;
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
        let command = self.keymap.command(key);
        match overlay {
            Overlay::Help { scroll } => match command {
                Some(Command::Up) => {
                    self.overlay = Some(Overlay::Help {
                        scroll: scroll.saturating_sub(1),
                    });
                    Vec::new()
                }
                Some(Command::Down) => {
                    self.overlay = Some(Overlay::Help { scroll: scroll + 1 });
                    Vec::new()
                }
                Some(Command::Quit) => vec![Effect::Quit],
                _ => Vec::new(),
            },
            Overlay::Inspector { scroll } => match command {
                Some(Command::Up) => {
                    self.overlay = Some(Overlay::Inspector {
                        scroll: scroll.saturating_sub(1),
                    });
                    Vec::new()
                }
                Some(Command::Down) => {
                    self.overlay = Some(Overlay::Inspector { scroll: scroll + 1 });
                    Vec::new()
                }
                Some(Command::PageDown) => {
                    self.overlay = Some(Overlay::Inspector {
                        scroll: scroll + 10,
                    });
                    Vec::new()
                }
                Some(Command::PageUp) => {
                    self.overlay = Some(Overlay::Inspector {
                        scroll: scroll.saturating_sub(10),
                    });
                    Vec::new()
                }
                Some(Command::Copy) => {
                    self.overlay = Some(Overlay::Inspector { scroll });
                    self.copy_inspected()
                }
                // Silence the inspected entry's alert: the editor takes the inspector's place.
                Some(Command::Silence) => self.run(Command::Silence),

                Some(Command::Quit) => vec![Effect::Quit],
                _ => Vec::new(),
            },
            Overlay::Command(mut input) => match edit(&mut input.text, key) {
                Edit::Cancel => Vec::new(),
                Edit::Submit => self.command_line(&input.text),
                Edit::Changed => {
                    self.overlay = Some(Overlay::Command(input));
                    Vec::new()
                }
            },
            Overlay::Filter(mut input) => match edit(&mut input.text, key) {
                Edit::Cancel => Vec::new(),
                Edit::Submit => self.apply_filter(input.text),
                Edit::Changed => {
                    self.overlay = Some(Overlay::Filter(input));
                    Vec::new()
                }
            },
            Overlay::Picker(mut picker) => match (key.code, command) {
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
                    self.overlay = Some(Overlay::Picker(picker));
                    Vec::new()
                }
                (_, Some(Command::Down)) => {
                    picker.selected =
                        (picker.selected + 1).min(picker.options.len().saturating_sub(1));
                    self.overlay = Some(Overlay::Picker(picker));
                    Vec::new()
                }
                _ => {
                    self.overlay = Some(Overlay::Picker(picker));
                    Vec::new()
                }
            },
            Overlay::Confirm(confirm) => self.confirm_key(confirm, key),
            Overlay::Silence(editor) => self.silence_editor_key(editor, key),
        }
    }

    /// The inspected entry's text to the clipboard.
    fn copy_inspected(&mut self) -> Vec<Effect> {
        let text = if self.is_mutt() {
            self.selected_mutt_entry()
                .map(super::views::mutt::inspector_text)
        } else {
            self.selected_entry().map(super::views::dlq::inspector_text)
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
                self.overlay = Some(Overlay::Confirm(confirm));
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
                self.overlay = Some(Overlay::Confirm(confirm));
                Vec::new()
            }
            Stage::Done { .. } | Stage::Failed(_) => {
                if matches!(key.code, KeyCode::Esc | KeyCode::Enter) || ctrl_c {
                    return Vec::new();
                }
                self.overlay = Some(Overlay::Confirm(confirm));
                Vec::new()
            }
            Stage::Ready { plan, input } => {
                if key.code == KeyCode::Enter {
                    if plan.tier == Tier::Irreversible && input.trim() != plan.count.to_string() {
                        self.toast(format!("type {} to confirm", plan.count), true);
                        self.overlay = Some(Overlay::Confirm(confirm));
                        return Vec::new();
                    }
                    let mut plan = plan.clone();
                    let typed = input.trim();
                    if plan.tier != Tier::Irreversible
                        && let Some(reason) = plan.action.reason_mut()
                    {
                        if typed.is_empty() {
                            self.toast("a reason is required", true);
                            self.overlay = Some(Overlay::Confirm(confirm));
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
                    self.overlay = Some(Overlay::Confirm(confirm));
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
                self.overlay = Some(Overlay::Confirm(confirm));
                Vec::new()
            }
        }
    }

    /// A `:` command line.
    pub fn command_line(&mut self, text: &str) -> Vec<Effect> {
        let context = command::Context {
            now_ms: self.now_ms,
            dlq_queue: self.dlq.queue.clone(),
            dlq_scope: (self.view == View::Dlq).then(|| self.dlq.scope()),
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
