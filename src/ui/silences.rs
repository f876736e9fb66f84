//! Silences from the control room: the editor (matchers prefilled from what is selected, a
//! duration, a comment) that proposes `SilenceCreate`, and the expiry of the selected silence.
//! Nothing here writes: both leave through the one confirm funnel.

use std::collections::{BTreeMap, BTreeSet};

use crossterm::event::{KeyCode, KeyEvent};

use super::app::{App, Edit, Effect, Overlay, View, edit_within};
use crate::actions::{Action, Origin};
use crate::engine::matcher::{compile_all, parse_matchers};
use crate::engine::silence::SilenceError;
use crate::model::{LabelMatcher, MatchOp, SilenceState, matchers_text, sanitize};

/// Labels that say which thing an alert is about, from the most general to the most specific:
/// the editor's matchers take those the selection carries, `alertname` first.
pub const IDENTIFYING: [&str; 8] = [
    "alertname",
    "cluster",
    "namespace",
    "service",
    "job",
    "instance",
    "pod",
    "host",
];

/// How long a new silence lasts unless the operator says otherwise.
pub const DEFAULT_DURATION: &str = "2h";

/// Characters the matchers line holds (a group's alternations run long); other lines hold 200.
const MATCHERS_MAX: usize = 1_000;
const FIELD_MAX: usize = 200;

/// The editor's lines, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Matchers,
    Duration,
    Comment,
}

impl Field {
    pub const ALL: [Field; 3] = [Field::Matchers, Field::Duration, Field::Comment];

    pub fn label(self) -> &'static str {
        match self {
            Self::Matchers => "matchers",
            Self::Duration => "duration",
            Self::Comment => "comment",
        }
    }

    #[must_use]
    fn next(self) -> Self {
        match self {
            Self::Matchers => Self::Duration,
            Self::Duration => Self::Comment,
            Self::Comment => Self::Matchers,
        }
    }

    #[must_use]
    fn prev(self) -> Self {
        self.next().next()
    }
}

/// A silence being written: three lines of text, checked as they are typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilenceEditor {
    /// Alertmanager's form, `{alertname="DiskFull", instance=~"db-.*"}`, or amtool's.
    pub matchers: String,
    /// `30m`, `2h`, `1d`: the silence starts now and lasts this long.
    pub duration: String,
    pub comment: String,
    pub focus: Field,
    /// The silence this one replaces (editing a silence makes a new one, as in Alertmanager).
    pub replaces: Option<String>,
    /// What the matchers came from, for the dialog (`DLQ entry 01…`, `alert DiskFull`);
    /// untrusted, drawn sanitised.
    pub source: String,
    /// Why the last submit was refused.
    pub error: Option<String>,
    pub origin: Origin,
}

impl SilenceEditor {
    pub fn new(matchers: String, source: String, origin: Origin) -> Self {
        Self {
            matchers,
            duration: DEFAULT_DURATION.to_owned(),
            comment: String::new(),
            // With matchers prefilled, the comment is what is left to say.
            focus: Field::Matchers,
            replaces: None,
            source,
            error: None,
            origin,
        }
    }

    /// The matchers parsed and compiled (regexes too), refusing a silence of every alert.
    pub fn parsed_matchers(&self) -> Result<Vec<LabelMatcher>, String> {
        let matchers = parse_matchers(&self.matchers).map_err(|e| e.to_string())?;
        if matchers.is_empty() {
            return Err("write at least one matcher, e.g. alertname=\"DiskFull\"".to_owned());
        }
        let compiled = compile_all(&matchers).map_err(|e| e.to_string())?;
        if compiled.iter().all(|m| m.matches_value("")) {
            return Err(SilenceError::MatchesEverything.to_string());
        }
        Ok(matchers)
    }

    /// How long the silence lasts, in milliseconds.
    pub fn duration_ms(&self) -> Result<i64, String> {
        let text = self.duration.trim();
        super::command::duration_ms(text).ok_or_else(|| {
            format!(
                "{:?} is not a duration: write 30m, 2h or 1d",
                sanitize(text)
            )
        })
    }

    /// Why the comment cannot be used yet.
    pub fn comment_error(&self) -> Option<&'static str> {
        self.comment
            .trim()
            .is_empty()
            .then_some("required: say why (shown in the Silences view and the audit)")
    }

    /// The action to propose at `now_ms`: it starts now. Else the line at fault and why.
    pub fn action(&self, now_ms: i64) -> Result<Action, (Field, String)> {
        let matchers = self.parsed_matchers().map_err(|e| (Field::Matchers, e))?;
        let duration_ms = self.duration_ms().map_err(|e| (Field::Duration, e))?;
        if let Some(why) = self.comment_error() {
            return Err((Field::Comment, why.to_owned()));
        }
        Ok(Action::SilenceCreate {
            matchers,
            starts_at_ms: now_ms,
            ends_at_ms: now_ms.saturating_add(duration_ms),
            comment: sanitize(self.comment.trim()).into_owned(),
            replaces: self.replaces.clone(),
        })
    }

    fn focused_mut(&mut self) -> &mut String {
        match self.focus {
            Field::Matchers => &mut self.matchers,
            Field::Duration => &mut self.duration,
            Field::Comment => &mut self.comment,
        }
    }

    /// The text of a line.
    pub fn text(&self, field: Field) -> &str {
        match field {
            Field::Matchers => &self.matchers,
            Field::Duration => &self.duration,
            Field::Comment => &self.comment,
        }
    }
}

/// Matchers for alerts like these label sets, in Alertmanager's form: each identifying label
/// they all carry, with its value (`=`) or, when the values differ, all of them as one
/// alternation (`=~"a|b"`, as karma's acks do). Without an identifying label, every label they
/// share but `severity`. Empty when nothing is shared.
pub fn prefill(label_sets: &[&BTreeMap<String, String>]) -> String {
    let Some(first) = label_sets.first() else {
        return String::new();
    };
    let matcher = |name: &str| -> Option<LabelMatcher> {
        let values: BTreeSet<&str> = label_sets
            .iter()
            .map(|labels| {
                labels
                    .get(name)
                    .map(String::as_str)
                    .filter(|v| !v.is_empty())
            })
            .collect::<Option<_>>()?;
        match values.len() {
            0 => None,
            1 => Some(LabelMatcher::new(name, MatchOp::Equal, *values.first()?)),
            _ => Some(LabelMatcher::new(
                name,
                MatchOp::Regex,
                values
                    .iter()
                    .map(|v| escape(v))
                    .collect::<Vec<_>>()
                    .join("|"),
            )),
        }
    };
    let mut matchers: Vec<LabelMatcher> = IDENTIFYING.iter().filter_map(|&n| matcher(n)).collect();
    if matchers.is_empty() {
        matchers = first
            .keys()
            .filter(|name| name.as_str() != "severity")
            .filter_map(|name| matcher(name.as_str()))
            .collect();
    }
    if matchers.is_empty() {
        String::new()
    } else {
        matchers_text(&matchers)
    }
}

/// A value as a regex that matches only it: the characters regexes give a meaning escaped, and
/// no others (`db-1` stays readable).
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl App {
    /// Open the editor with `matchers`, or prefilled from what is selected: a DLQ entry or
    /// group, an alert, or a silence (then the new silence replaces it).
    pub(super) fn open_silence_editor(
        &mut self,
        matchers: Option<String>,
        origin: Origin,
    ) -> Vec<Effect> {
        if let Some(why) = self.ui.mode.read_only.clone() {
            self.toast(format!("read-only: {why}"), true);
            return Vec::new();
        }
        if self.scene().is_mutt() {
            self.toast(
                "silences are Ward's own: MUTT keeps none that Ward reads",
                false,
            );
            return Vec::new();
        }
        let editor = match matchers {
            Some(text) => SilenceEditor::new(text, "the command line".to_owned(), origin),
            None => self.editor_from_selection(origin),
        };
        self.ui.overlay = Some(Overlay::Silence(editor));
        Vec::new()
    }

    fn editor_from_selection(&self, origin: Origin) -> SilenceEditor {
        let mut editor = SilenceEditor::new(String::new(), "nothing selected".to_owned(), origin);
        match self.ui.view {
            View::Dlq if self.scene().grouping() => {
                if let Some((matchers, source)) = self.group_prefill() {
                    editor.matchers = matchers;
                    editor.source = source;
                }
            }
            View::Dlq => {
                if let Some(entry) = self.scene().selected_entry() {
                    editor.matchers = prefill(&[&entry.alert_labels()]);
                    editor.source = format!("DLQ entry {}", entry.meta.id.0);
                    if editor.matchers.is_empty() {
                        editor
                            .source
                            .push_str(" (its payload carries no alert labels)");
                    }
                }
            }
            View::Alerts => {
                if let Some(row) = self.scene().selected_alert() {
                    editor.matchers = prefill(&[&row.alert.labels]);
                    editor.source = format!(
                        "alert {} ({})",
                        row.alert.alertname(),
                        row.alert.fingerprint
                    );
                }
            }
            View::Silences => {
                if let Some(row) = self.scene().selected_silence() {
                    let s = &row.silence;
                    editor.matchers = matchers_text(&s.matchers);
                    editor.comment.clone_from(&s.comment);
                    if row.state == SilenceState::Expired {
                        editor.source = format!("expired silence {}", s.id);
                    } else {
                        editor.source = format!("silence {} (it ends when this one starts)", s.id);
                        editor.replaces = Some(s.id.clone());
                    }
                }
            }
            _ => {}
        }
        if !editor.matchers.is_empty() {
            editor.focus = if editor.comment.is_empty() {
                Field::Comment
            } else {
                Field::Duration
            };
        }
        editor
    }

    /// The matchers of the selected group's entries on this page, and what they came from.
    fn group_prefill(&self) -> Option<(String, String)> {
        let view = self.scene().visible_groups()?;
        let group = view.groups.get(self.scene().row())?;
        let end = group.bucket_ms.saturating_add(view.bucket_ms);
        let labels: Vec<BTreeMap<String, String>> = self
            .scene()
            .visible_entries()
            .iter()
            .filter(|e| {
                e.meta.error_class == group.error_class
                    && (group.bucket_ms..end).contains(&e.meta.last_failure_ms)
            })
            .map(|e| e.alert_labels())
            .filter(|l| !l.is_empty())
            .collect();
        let from = crate::ui::widgets::clock(group.bucket_ms);
        if labels.is_empty() {
            return Some((
                String::new(),
                format!(
                    "group {} from {from}: none of its entries is on this page (enter lists them)",
                    group.error_class
                ),
            ));
        }
        let refs: Vec<&BTreeMap<String, String>> = labels.iter().collect();
        Some((
            prefill(&refs),
            format!(
                "group {} from {from}: the {} of its entries on this page",
                group.error_class,
                labels.len()
            ),
        ))
    }

    /// Propose the expiry of the selected silence.
    pub(super) fn expire_selected_silence(&mut self, origin: Origin) -> Vec<Effect> {
        if self.ui.view != View::Silences {
            self.toast(
                "select a silence in the Silences view to expire it, or :expire ID",
                false,
            );
            return Vec::new();
        }
        let Some(row) = self.scene().selected_silence() else {
            self.toast("no silence selected", false);
            return Vec::new();
        };
        let id = row.silence.id.clone();
        if row.state == SilenceState::Expired {
            self.toast(
                format!("silence {} has already expired", sanitize(&id)),
                false,
            );
            return Vec::new();
        }
        self.propose(Action::SilenceExpire { id }, origin)
    }

    /// A key in the editor: tab and the arrows move between lines, enter proposes, esc drops it.
    pub(super) fn silence_editor_key(
        &mut self,
        mut editor: SilenceEditor,
        key: KeyEvent,
    ) -> Vec<Effect> {
        match key.code {
            KeyCode::Tab | KeyCode::Down => editor.focus = editor.focus.next(),
            KeyCode::BackTab | KeyCode::Up => editor.focus = editor.focus.prev(),
            _ => {
                let max = if editor.focus == Field::Matchers {
                    MATCHERS_MAX
                } else {
                    FIELD_MAX
                };
                match edit_within(editor.focused_mut(), key, max) {
                    Edit::Cancel => {
                        self.toast("no silence created", false);
                        return Vec::new();
                    }
                    Edit::Submit => return self.submit_silence(editor),
                    Edit::Changed => editor.error = None,
                }
            }
        }
        self.ui.overlay = Some(Overlay::Silence(editor));
        Vec::new()
    }

    fn submit_silence(&mut self, mut editor: SilenceEditor) -> Vec<Effect> {
        let refused = match editor.action(self.ui.now_ms) {
            Err((field, why)) => {
                editor.focus = field;
                why
            }
            Ok(action) => match self.scene().unreadable() {
                Some(why) => format!("refused, nothing changed: {why}"),
                None => return self.propose(action, editor.origin),
            },
        };
        editor.error = Some(refused);
        self.ui.overlay = Some(Overlay::Silence(editor));
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn prefill_takes_identifying_labels_alertname_first() {
        let alert = labels(&[
            ("severity", "critical"),
            ("instance", "db-1:9100"),
            ("alertname", "DiskFull"),
            ("job", "node"),
            ("team", "storage"),
        ]);
        let text = prefill(&[&alert]);
        assert_eq!(
            text,
            "{alertname=\"DiskFull\", job=\"node\", instance=\"db-1:9100\"}"
        );
        let parsed = parse_matchers(&text).unwrap();
        assert_eq!(parsed.len(), 3);
    }

    #[test]
    fn differing_values_become_one_anchored_alternation() {
        let a = labels(&[
            ("alertname", "DiskFull"),
            ("instance", "db-1"),
            ("pod", "x"),
        ]);
        let b = labels(&[("alertname", "DiskFull"), ("instance", "db.2")]);
        let text = prefill(&[&a, &b]);
        assert_eq!(
            text,
            "{alertname=\"DiskFull\", instance=~\"db-1|db\\\\.2\"}"
        );
        let parsed = parse_matchers(&text).unwrap();
        let compiled = compile_all(&parsed).unwrap();
        assert!(compiled[1].matches_value("db.2"));
        assert!(!compiled[1].matches_value("dbx2"), "the dot is escaped");
    }

    #[test]
    fn without_identifying_labels_the_shared_ones_are_taken() {
        let a = labels(&[("team", "storage"), ("severity", "warning")]);
        assert_eq!(prefill(&[&a]), "{team=\"storage\"}");
        assert_eq!(prefill(&[]), "");
        assert_eq!(prefill(&[&labels(&[("severity", "x")])]), "");
    }

    #[test]
    fn the_editor_names_the_line_at_fault() {
        let mut editor = SilenceEditor::new(
            "alertname=\"DiskFull\"".to_owned(),
            "test".to_owned(),
            Origin::Key,
        );
        assert_eq!(editor.action(0).unwrap_err().0, Field::Comment);
        editor.comment = "disk swap".to_owned();
        editor.duration = "soon".to_owned();
        let (field, why) = editor.action(0).unwrap_err();
        assert_eq!(field, Field::Duration);
        assert!(why.contains("30m"), "{why}");
        editor.duration = "90m".to_owned();
        let Action::SilenceCreate { ends_at_ms, .. } = editor.action(1_000).unwrap() else {
            panic!()
        };
        assert_eq!(ends_at_ms, 1_000 + 90 * 60_000);
        editor.matchers = "instance=~\".*\"".to_owned();
        assert_eq!(editor.action(0).unwrap_err().0, Field::Matchers);
        editor.matchers = "alertname=~\"(\"".to_owned();
        assert!(editor.action(0).unwrap_err().1.contains("regex"));
    }
}
