//! The control room's state apart from its snapshot (views, overlays, the confirm funnel's
//! stages, the DLQ and MUTT browsers), and the `Scene` every view draws from.

use std::collections::{BTreeSet, VecDeque};

use super::command::RunSettings;
use super::keymap::{Command, Context, Keymap};
use crate::actions::{Action, MuttScope, Origin, Plan, Progress, Report, Scope};
use crate::model::mutt::{MuttDlqName, MuttEntry, MuttPageQuery};
use crate::model::{DlqCursor, DlqFilter, FailedSet, Profile, QueueName, ShedMode};
use crate::sources::snapshot::{AlertRow, SilenceRow};
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

    pub(crate) fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }

    pub(crate) fn context(self) -> Context {
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
    pub(super) fn new(queue: QueueName) -> Self {
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

/// The control room's own state: where the operator is and what they see, apart from the
/// snapshot itself.
#[derive(Debug, Clone)]
pub struct UiState {
    pub mode: Mode,
    pub keymap: Keymap,
    pub view: View,
    pub frozen: bool,
    pub rows: [usize; View::ALL.len()],
    pub dlq: DlqBrowser,
    pub mutt: MuttBrowser,
    pub overlay: Option<Overlay>,
    pub toasts: VecDeque<Toast>,
    /// The last confirm dialog's ticket.
    pub(crate) tickets: u64,
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

/// What every view draws from: the snapshot shown and the control room's own state, nothing
/// else (no store, no App). Cheap to copy; its read-only questions (the visible rows, the
/// selected entry, whether a command is available) answer from those two alone.
#[derive(Debug, Clone, Copy)]
pub struct Scene<'a> {
    pub snapshot: &'a Snapshot,
    pub ui: &'a UiState,
}

impl<'a> Scene<'a> {
    /// Attached to a MUTT deployment: MUTT's own figures and actions.
    pub fn is_mutt(self) -> bool {
        self.snapshot.target.profile == Profile::Mutt
    }

    pub fn stale(self) -> bool {
        self.snapshot
            .sources
            .iter()
            .any(|s| s.freshness == Freshness::Stale)
    }

    /// Why nothing may be changed now: the store is STALE or not read yet. An action planned
    /// on figures the operator cannot trust, or sent to a store that does not answer, would
    /// end indeterminate.
    pub fn unreadable(self) -> Option<String> {
        if let Some(source) = self
            .snapshot
            .sources
            .iter()
            .find(|s| s.freshness == Freshness::Stale)
        {
            let since = source
                .age_ms(self.ui.now_ms)
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
    pub fn available(self, command: Command) -> bool {
        if command.is_mutating() && self.ui.mode.read_only.is_some() {
            return false;
        }
        match command.context() {
            Context::Everywhere => true,
            context => self.ui.view.context() == context,
        }
    }

    /// Rows in the current view (for moving the selection).
    pub fn row_count(self) -> usize {
        if let Some(mutt) = self.snapshot.mutt.as_ref() {
            return match self.ui.view {
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
        match self.ui.view {
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

    pub fn row(self) -> usize {
        self.row_within(self.row_count())
    }

    /// The selected row among `count` rows (for draw code that has already counted them).
    pub fn row_within(self, count: usize) -> usize {
        self.ui.rows[self.ui.view.index()].min(count.saturating_sub(1))
    }

    /// The page read for what the browser asks now; `None` until the poller has read it (a page
    /// of another queue, list, filter or order is never shown under this one's title).
    pub fn dlq_page(self) -> Option<&'a crate::sources::DlqPageView> {
        let asked = self.ui.dlq.query();
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
    pub fn visible_entries(self) -> Vec<&'a crate::model::DlqEntry> {
        let Some(page) = self.dlq_page() else {
            return Vec::new();
        };
        let mut entries: Vec<_> = page.entries.iter().collect();
        self.ui.dlq.sort.arrange(&mut entries);
        entries
    }

    /// The browser shows groups instead of entries.
    pub fn grouping(self) -> bool {
        self.ui.view == View::Dlq && self.ui.dlq.grouped && !self.is_mutt()
    }

    /// The store's counts by error class × time bucket of the whole filtered set.
    pub fn visible_groups(self) -> Option<&'a DlqGroupsView> {
        self.dlq_page()?.groups.as_ref()
    }

    /// MUTT DLQ entries of the page that pass the free-text filter.
    pub fn visible_mutt_entries(self) -> Vec<&'a MuttEntry> {
        let Some(page) = self.snapshot.mutt_page.as_ref() else {
            return Vec::new();
        };
        page.entries
            .iter()
            .filter(|e| {
                self.ui.dlq.needle.as_deref().is_none_or(|needle| {
                    [&e.id, &e.host, &e.message, &e.team]
                        .iter()
                        .any(|field| field.to_lowercase().contains(needle))
                })
            })
            .collect()
    }

    pub fn selected_mutt_entry(self) -> Option<&'a MuttEntry> {
        if self.ui.view != View::Dlq {
            return None;
        }
        self.visible_mutt_entries().get(self.row()).copied()
    }

    pub fn selected_entry(self) -> Option<&'a crate::model::DlqEntry> {
        if self.ui.view != View::Dlq {
            return None;
        }
        self.visible_entries().get(self.row()).copied()
    }

    pub(crate) fn shedding(self) -> ShedMode {
        self.snapshot
            .store
            .as_ref()
            .map_or(ShedMode::Off, |s| s.shedding)
    }

    /// The silence under the cursor in the Silences view.
    pub fn selected_silence(self) -> Option<&'a SilenceRow> {
        if self.ui.view != View::Silences {
            return None;
        }
        let store = self.snapshot.store.as_ref()?;
        store.alerting.silences.get(self.row())
    }

    /// The alert under the cursor in the Alerts view.
    pub fn selected_alert(self) -> Option<&'a AlertRow> {
        if self.ui.view != View::Alerts {
            return None;
        }
        let store = self.snapshot.store.as_ref()?;
        store.alerting.alerts.get(self.row())
    }
}
