//! Named commands and the keys bound to them. Every key runs a command with a stable name
//! (`replay`, `toggle-freeze`, …); `[tui.bindings]` rebinds them, `ward keys` prints the table,
//! and the help overlay and hint bar are generated from it, so they cannot drift.

use std::collections::{BTreeMap, BTreeSet};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Where a command applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Everywhere,
    Dlq,
    Breakers,
    Overrides,
    Silences,
}

macro_rules! commands {
    ($( $variant:ident => $name:literal, $context:ident, $mutating:literal, $help:literal, [$($key:literal),*]; )*) => {
        /// Everything a key can do.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Command { $($variant),* }

        impl Command {
            pub const ALL: &'static [Command] = &[$(Command::$variant),*];

            pub fn name(self) -> &'static str {
                match self { $(Command::$variant => $name),* }
            }

            pub fn context(self) -> Context {
                match self { $(Command::$variant => Context::$context),* }
            }

            /// Changes the deployment (hidden and refused in read-only mode).
            pub fn is_mutating(self) -> bool {
                match self { $(Command::$variant => $mutating),* }
            }

            pub fn help(self) -> &'static str {
                match self { $(Command::$variant => $help),* }
            }

            fn default_keys(self) -> &'static [&'static str] {
                match self { $(Command::$variant => &[$($key),*]),* }
            }
        }
    };
}

commands! {
    Quit => "quit", Everywhere, false, "quit", ["q"];
    Interrupt => "interrupt", Everywhere, false, "quit (or cancel a running action)", ["ctrl-c"];
    Help => "help", Everywhere, false, "show this help", ["?"];
    Back => "back", Everywhere, false, "close, clear the filter, go back", ["esc"];
    CommandLine => "command-line", Everywhere, false, "type a command (:replay error=timeout max=500 rate=50/s)", [":"];
    Filter => "filter", Dlq, false, "filter (error= channel= since=1h …; words: store search)", ["/"];
    Refresh => "refresh", Everywhere, false, "read the store now", ["ctrl-r"];
    ToggleFreeze => "toggle-freeze", Everywhere, false, "freeze the display (reads go on)", ["f"];
    ViewOverview => "view-overview", Everywhere, false, "overview", ["1"];
    ViewQueues => "view-queues", Everywhere, false, "queues", ["2"];
    ViewDlq => "view-dlq", Everywhere, false, "DLQ browser", ["3"];
    ViewBreakers => "view-breakers", Everywhere, false, "breakers", ["4"];
    ViewOverrides => "view-overrides", Everywhere, false, "overrides inventory", ["5"];
    ViewAudit => "view-audit", Everywhere, false, "audit log", ["6"];
    ViewSlo => "view-slo", Everywhere, false, "service level objectives and burn rates", ["7"];
    ViewSilences => "view-silences", Everywhere, false, "silences: active, pending, expired, and what they match", ["8"];
    ViewAlerts => "view-alerts", Everywhere, false, "alerts seen, and what holds each back", ["9"];
    NextView => "next-view", Everywhere, false, "next view", ["tab"];
    PrevView => "prev-view", Everywhere, false, "previous view", ["shift-tab"];
    Up => "up", Everywhere, false, "move up", ["up", "k"];
    Down => "down", Everywhere, false, "move down", ["down", "j"];
    PageUp => "page-up", Everywhere, false, "page up", ["pgup", "ctrl-u"];
    PageDown => "page-down", Everywhere, false, "page down", ["pgdn", "ctrl-d"];
    Top => "top", Everywhere, false, "first row", ["home", "g"];
    Bottom => "bottom", Everywhere, false, "last row", ["end", "G"];
    HistoryLonger => "history-longer", Everywhere, false, "longer sparkline window", ["+"];
    HistoryShorter => "history-shorter", Everywhere, false, "shorter sparkline window", ["-"];
    Replay => "replay", Everywhere, true, "replay the DLQ: marked rows, else the current filter", ["r"];
    ToggleShedding => "toggle-shedding", Everywhere, true, "load shedding on (dlq) or off", ["s"];
    CycleSheddingMode => "cycle-shedding-mode", Everywhere, true, "shedding mode: off → dlq → defer", ["M"];
    Silence => "silence", Everywhere, true, "silence the selected alert or DLQ entry (edit a silence)", ["S"];
    TestAlert => "test-alert", Everywhere, true, "send a test alert (pick the channel)", ["t"];
    EmergencyStop => "emergency-stop", Everywhere, true, "emergency stop on/off (all sending)", ["E"];
    Mark => "mark", Dlq, false, "mark the row", ["space"];
    MarkRange => "mark-range", Dlq, false, "mark from the last mark to here", ["V"];
    ClearMarks => "clear-marks", Dlq, false, "clear marks", ["ctrl-\\"];
    Inspect => "inspect", Dlq, false, "inspect the entry, or list the selected group", ["enter"];
    Copy => "copy", Dlq, false, "copy the entry's id, or its JSON in the inspector (OSC52)", ["y"];
    NextPage => "next-page", Dlq, false, "next page", ["n", "]"];
    PrevPage => "prev-page", Dlq, false, "previous page", ["p", "["];
    ToggleGrouping => "toggle-grouping", Dlq, false, "group the whole filtered set by error class × 10 min", ["v"];
    ToggleDead => "toggle-dead", Dlq, false, "browse the dead list instead of the DLQ", ["w"];
    CycleQueue => "cycle-queue", Dlq, false, "browse the next queue's DLQ (ingest, delivery, …)", ["Q"];
    CycleSort => "cycle-sort", Dlq, false, "order: newest → oldest → most attempts (in the page)", ["O"];
    Purge => "purge", Dlq, true, "delete marked rows or the filter's entries for good", ["D"];
    MoveToDead => "move-to-dead", Dlq, true, "give up on marked rows or the filter's entries", ["b"];
    ForceOpen => "force-open", Breakers, true, "hold the breaker open for 15 minutes", ["o"];
    ResetBreaker => "reset-breaker", Breakers, true, "reset the breaker to closed", ["c"];
    DisableBreaker => "disable-breaker", Breakers, true, "disable the breaker", ["x"];
    LiftOverride => "lift-override", Overrides, true, "lift the selected override", ["d"];
    ExpireSilence => "expire-silence", Silences, true, "expire the selected silence now", ["X"];
}

/// A key as written in config and shown in help: `q`, `ctrl-c`, `shift-tab`, `pgdn`, `space`.
pub fn parse_key(text: &str) -> Option<KeyEvent> {
    let mut modifiers = KeyModifiers::NONE;
    let mut rest = text;
    loop {
        if let Some(r) = rest.strip_prefix("ctrl-") {
            modifiers |= KeyModifiers::CONTROL;
            rest = r;
        } else if let Some(r) = rest.strip_prefix("alt-") {
            modifiers |= KeyModifiers::ALT;
            rest = r;
        } else if let Some(r) = rest.strip_prefix("shift-").filter(|r| r.len() > 1) {
            modifiers |= KeyModifiers::SHIFT;
            rest = r;
        } else {
            break;
        }
    }
    let code = match rest {
        "esc" => KeyCode::Esc,
        "enter" => KeyCode::Enter,
        "tab" if modifiers.contains(KeyModifiers::SHIFT) => {
            modifiers.remove(KeyModifiers::SHIFT);
            KeyCode::BackTab
        }
        "tab" => KeyCode::Tab,
        "backtab" => KeyCode::BackTab,
        "space" => KeyCode::Char(' '),
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "pgup" => KeyCode::PageUp,
        "pgdn" => KeyCode::PageDown,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        "backspace" => KeyCode::Backspace,
        "delete" => KeyCode::Delete,
        f if f.len() > 1 && f.starts_with('f') => KeyCode::F(f[1..].parse().ok()?),
        c => {
            let mut chars = c.chars();
            let ch = chars.next()?;
            if chars.next().is_some() {
                return None;
            }
            KeyCode::Char(ch)
        }
    };
    Some(KeyEvent::new(code, modifiers))
}

/// A key event as `parse_key` reads it, with shift folded into the character.
fn normalise(key: KeyEvent) -> (KeyCode, KeyModifiers) {
    let mut modifiers = key.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT);
    let code = match key.code {
        KeyCode::Char(c) => {
            // Terminals report ctrl-\ as ctrl-4 on some keyboards.
            if modifiers.contains(KeyModifiers::CONTROL) && c == '4' {
                KeyCode::Char('\\')
            } else {
                KeyCode::Char(c)
            }
        }
        KeyCode::BackTab => KeyCode::BackTab,
        other => {
            if key.modifiers.contains(KeyModifiers::SHIFT) {
                modifiers |= KeyModifiers::SHIFT;
            }
            other
        }
    };
    (code, modifiers)
}

/// Whether `key` suspends the control room (ctrl-z, as in a shell): no command can have it.
pub fn suspends(key: KeyEvent) -> bool {
    let (code, modifiers) = normalise(key);
    code == KeyCode::Char('z') && modifiers.contains(KeyModifiers::CONTROL)
}

/// A binding problem in `[tui.bindings]` (the messages leave the setting's name to the caller).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeymapError {
    #[error("{0:?} is not a key (try q, ctrl-x, shift-tab, pgdn, space, f5)")]
    BadKey(String),
    #[error("{key:?} names {command:?}, which is not a command (see `ward keys`)")]
    UnknownCommand { key: String, command: String },
    /// The key is a default of a command the bindings leave alone.
    #[error(
        "key {key:?} for {command} is already bound to {other}; bind {other} to another key as \
         well (then {key:?} moves to {command})"
    )]
    Taken {
        key: String,
        command: &'static str,
        other: &'static str,
    },
    /// Two bindings are spellings of one key (`backtab` and `shift-tab`).
    #[error(
        "key {key:?} for {command} is already bound to {other} (as {other_key:?}); bind one of \
         them to another key"
    )]
    Duplicate {
        key: String,
        command: &'static str,
        other: &'static str,
        other_key: String,
    },
    #[error("key {key:?} for {command} is reserved: it suspends ward (fg resumes it)")]
    Reserved { key: String, command: &'static str },
}

impl KeymapError {
    /// The binding at fault, as written in `[tui.bindings]`.
    pub fn key(&self) -> &str {
        match self {
            Self::BadKey(key)
            | Self::UnknownCommand { key, .. }
            | Self::Taken { key, .. }
            | Self::Duplicate { key, .. }
            | Self::Reserved { key, .. } => key,
        }
    }
}

type Slot = (String, u8);

/// The effective key table.
#[derive(Debug, Clone)]
pub struct Keymap {
    by_key: BTreeMap<Slot, Command>,
    keys: BTreeMap<Command, Vec<String>>,
}

fn slot(key: KeyEvent) -> Slot {
    let (code, modifiers) = normalise(key);
    (format!("{code:?}"), modifiers.bits())
}

impl Keymap {
    /// The defaults with `overrides` (key → command name) applied. A command keeps its default
    /// keys; an override may take another command's default key only when that command is
    /// itself given a key in `overrides`, so no command is left unreachable by accident.
    pub fn new(overrides: &BTreeMap<String, String>) -> Result<Self, KeymapError> {
        let mut wanted = Vec::with_capacity(overrides.len());
        for (key, name) in overrides {
            let event = parse_key(key).ok_or_else(|| KeymapError::BadKey(key.clone()))?;
            let command = Command::ALL
                .iter()
                .copied()
                .find(|c| c.name() == name)
                .ok_or_else(|| KeymapError::UnknownCommand {
                    key: key.clone(),
                    command: name.clone(),
                })?;
            if suspends(event) {
                return Err(KeymapError::Reserved {
                    key: key.clone(),
                    command: command.name(),
                });
            }
            wanted.push((key, slot(event), command));
        }
        let rebound: BTreeSet<Command> = wanted.iter().map(|&(_, _, c)| c).collect();

        let mut map = Self {
            by_key: BTreeMap::new(),
            keys: BTreeMap::new(),
        };
        for &command in Command::ALL {
            for &key in command.default_keys() {
                let event = parse_key(key).ok_or_else(|| KeymapError::BadKey(key.to_owned()))?;
                map.bind(key, &slot(event), command);
            }
        }
        let mut from_overrides: BTreeMap<Slot, (&String, Command)> = BTreeMap::new();
        for (key, slot, command) in wanted {
            if let Some((other_key, other)) = from_overrides.insert(slot.clone(), (key, command))
                && other != command
            {
                return Err(KeymapError::Duplicate {
                    key: key.clone(),
                    command: command.name(),
                    other: other.name(),
                    other_key: other_key.clone(),
                });
            }
            if let Some(&holder) = map.by_key.get(&slot)
                && holder != command
                && !rebound.contains(&holder)
            {
                return Err(KeymapError::Taken {
                    key: key.clone(),
                    command: command.name(),
                    other: holder.name(),
                });
            }
            map.bind(key, &slot, command);
        }
        Ok(map)
    }

    /// Binds `key` (which is `slot`) to `command`, taking it from any command that had it.
    fn bind(&mut self, key: &str, slot: &Slot, command: Command) {
        if let Some(old) = self.by_key.insert(slot.clone(), command)
            && let Some(keys) = self.keys.get_mut(&old)
        {
            keys.retain(|k| parse_key(k).map(self::slot).as_ref() != Some(slot));
        }
        self.keys.entry(command).or_default().push(key.to_owned());
    }

    pub fn command(&self, key: KeyEvent) -> Option<Command> {
        self.by_key.get(&slot(key)).copied()
    }

    /// The keys bound to `command`, as written in config.
    pub fn keys(&self, command: Command) -> &[String] {
        self.keys.get(&command).map_or(&[], Vec::as_slice)
    }

    /// The first key of `command`, for hints (`None` when unbound).
    pub fn key(&self, command: Command) -> Option<&str> {
        self.keys(command).first().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_key_parses_and_reaches_its_command() {
        let map = Keymap::new(&BTreeMap::new()).unwrap();
        for &command in Command::ALL {
            for key in command.default_keys() {
                let event = parse_key(key).unwrap();
                assert_eq!(map.command(event), Some(command), "{key}");
            }
        }
    }

    #[test]
    fn names_are_unique_and_kebab_case() {
        let mut names: Vec<_> = Command::ALL.iter().map(|c| c.name()).collect();
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        );
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Command::ALL.len());
    }

    fn bindings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|&(k, c)| (k.to_owned(), c.to_owned()))
            .collect()
    }

    fn key(text: &str) -> KeyEvent {
        parse_key(text).unwrap()
    }

    #[test]
    fn a_rebinding_moves_the_key_and_keeps_the_others() {
        // disable-breaker gets a key of its own, so its x may move to quit.
        let map = Keymap::new(&bindings(&[("x", "quit"), ("z", "disable-breaker")])).unwrap();
        assert_eq!(map.command(key("x")), Some(Command::Quit));
        assert_eq!(map.command(key("q")), Some(Command::Quit));
        assert_eq!(map.keys(Command::Quit), ["q", "x"]);
        assert_eq!(map.keys(Command::DisableBreaker), ["z"]);
        assert_eq!(map.command(key("z")), Some(Command::DisableBreaker));
        assert!(Command::ALL.iter().all(|&c| !map.keys(c).is_empty()));
    }

    #[test]
    fn a_free_key_or_a_commands_own_key_is_no_clash() {
        let map = Keymap::new(&bindings(&[
            ("ctrl-x", "quit"),
            ("?", "help"),
            ("backtab", "prev-view"),
        ]))
        .unwrap();
        assert_eq!(map.keys(Command::Quit), ["q", "ctrl-x"]);
        assert_eq!(map.keys(Command::Help), ["?"]);
        // Another spelling of the command's own key replaces it; it is not listed twice.
        assert_eq!(map.keys(Command::PrevView), ["backtab"]);
        assert_eq!(map.command(key("shift-tab")), Some(Command::PrevView));
    }

    #[test]
    fn taking_the_key_of_a_command_left_alone_is_reported() {
        let err = Keymap::new(&bindings(&[("r", "refresh")])).unwrap_err();
        assert_eq!(
            err,
            KeymapError::Taken {
                key: "r".to_owned(),
                command: "refresh",
                other: "replay",
            }
        );
        assert_eq!(
            err.to_string(),
            "key \"r\" for refresh is already bound to replay; bind replay to another key as \
             well (then \"r\" moves to refresh)"
        );
        assert_eq!(err.key(), "r");
        let taken = |pairs: &[(&str, &str)]| match Keymap::new(&bindings(pairs)) {
            Err(KeymapError::Taken { other, .. }) => Some(other),
            _ => None,
        };
        // One of a command's two keys is still its key.
        assert_eq!(taken(&[("k", "toggle-freeze")]), Some("up"));
        // Spellings of one key are one key (ctrl-4 is how terminals report ctrl-\).
        assert_eq!(taken(&[("shift-tab", "help")]), Some("prev-view"));
        assert_eq!(taken(&[("ctrl-4", "mark")]), Some("clear-marks"));
        // A key runs one command whatever the view, so other contexts clash too.
        assert_eq!(taken(&[("o", "purge")]), Some("force-open"));
        assert_eq!(taken(&[("d", "replay")]), Some("lift-override"));
    }

    #[test]
    fn two_bindings_of_one_key_to_two_commands_are_reported() {
        let err =
            Keymap::new(&bindings(&[("alt-ctrl-x", "help"), ("ctrl-alt-x", "quit")])).unwrap_err();
        assert_eq!(
            err,
            KeymapError::Duplicate {
                key: "ctrl-alt-x".to_owned(),
                command: "quit",
                other: "help",
                other_key: "alt-ctrl-x".to_owned(),
            }
        );
        assert!(
            err.to_string().contains("bind one of them to another key"),
            "{err}"
        );
        // The same command under two spellings is only redundant.
        let map =
            Keymap::new(&bindings(&[("alt-ctrl-x", "quit"), ("ctrl-alt-x", "quit")])).unwrap();
        assert_eq!(map.command(key("ctrl-alt-x")), Some(Command::Quit));
        // A key taken from a rebound command cannot be taken twice either.
        let err = Keymap::new(&bindings(&[
            ("backtab", "quit"),
            ("f5", "prev-view"),
            ("shift-tab", "help"),
        ]))
        .unwrap_err();
        assert!(
            matches!(&err, KeymapError::Duplicate { other: "quit", other_key, .. } if other_key == "backtab"),
            "{err:?}"
        );
    }

    #[test]
    fn ctrl_z_suspends_and_cannot_be_bound() {
        assert!(suspends(key("ctrl-z")));
        assert!(!suspends(key("z")));
        assert_eq!(
            Keymap::new(&bindings(&[("ctrl-z", "quit")])).unwrap_err(),
            KeymapError::Reserved {
                key: "ctrl-z".to_owned(),
                command: "quit",
            }
        );
    }

    #[test]
    fn bad_bindings_are_named() {
        let bad_key = BTreeMap::from([("ctrl-".to_owned(), "quit".to_owned())]);
        assert!(matches!(Keymap::new(&bad_key), Err(KeymapError::BadKey(_))));
        let bad_command = BTreeMap::from([("x".to_owned(), "explode".to_owned())]);
        assert!(matches!(
            Keymap::new(&bad_command),
            Err(KeymapError::UnknownCommand { .. })
        ));
    }

    #[test]
    fn shifted_letters_and_backtab_match_as_typed() {
        let map = Keymap::new(&BTreeMap::new()).unwrap();
        let shift_g = KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(map.command(shift_g), Some(Command::Bottom));
        let backtab = KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT);
        assert_eq!(map.command(backtab), Some(Command::PrevView));
    }
}
