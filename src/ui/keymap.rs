//! Named commands and the keys bound to them. Every key runs a command with a stable name
//! (`replay`, `toggle-freeze`, …); `[tui.bindings]` rebinds them, `ward keys` prints the table,
//! and the help overlay and hint bar are generated from it, so they cannot drift.

use std::collections::BTreeMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Where a command applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Everywhere,
    Dlq,
    Breakers,
    Overrides,
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
    Filter => "filter", Dlq, false, "filter the DLQ (error=… stage=… tenant=… channel=… text)", ["/"];
    Refresh => "refresh", Everywhere, false, "read the store now", ["ctrl-r"];
    ToggleFreeze => "toggle-freeze", Everywhere, false, "freeze the display (reads go on)", ["f"];
    ViewOverview => "view-overview", Everywhere, false, "overview", ["1"];
    ViewQueues => "view-queues", Everywhere, false, "queues", ["2"];
    ViewDlq => "view-dlq", Everywhere, false, "DLQ browser", ["3"];
    ViewBreakers => "view-breakers", Everywhere, false, "breakers", ["4"];
    ViewOverrides => "view-overrides", Everywhere, false, "overrides inventory", ["5"];
    ViewAudit => "view-audit", Everywhere, false, "audit log", ["6"];
    ViewSlo => "view-slo", Everywhere, false, "service level objectives and burn rates", ["7"];
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
    CycleSheddingMode => "cycle-shedding-mode", Everywhere, true, "shedding mode: off → dlq → defer", ["S"];
    TestAlert => "test-alert", Everywhere, true, "send a test alert (pick the channel)", ["t"];
    EmergencyStop => "emergency-stop", Everywhere, true, "emergency stop on/off (all sending)", ["E"];
    Mark => "mark", Dlq, false, "mark the row", ["space"];
    MarkRange => "mark-range", Dlq, false, "mark from the last mark to here", ["V"];
    ClearMarks => "clear-marks", Dlq, false, "clear marks", ["ctrl-\\"];
    Inspect => "inspect", Dlq, false, "inspect the entry (pretty, redacted JSON)", ["enter"];
    Copy => "copy", Dlq, false, "copy the entry's id, or its JSON in the inspector (OSC52)", ["y"];
    NextPage => "next-page", Dlq, false, "next page", ["n", "]"];
    PrevPage => "prev-page", Dlq, false, "previous page", ["p", "["];
    ToggleGrouping => "toggle-grouping", Dlq, false, "group by error class × time", ["v"];
    ToggleDead => "toggle-dead", Dlq, false, "browse the dead list instead of the DLQ", ["w"];
    Purge => "purge", Dlq, true, "delete marked rows or the filter's entries for good", ["D"];
    MoveToDead => "move-to-dead", Dlq, true, "give up on marked rows or the filter's entries", ["b"];
    ForceOpen => "force-open", Breakers, true, "hold the breaker open for 15 minutes", ["o"];
    ResetBreaker => "reset-breaker", Breakers, true, "reset the breaker to closed", ["c"];
    DisableBreaker => "disable-breaker", Breakers, true, "disable the breaker", ["x"];
    LiftOverride => "lift-override", Overrides, true, "lift the selected override", ["d"];
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

/// A binding problem in `[tui.bindings]`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeymapError {
    #[error("tui.bindings: {0:?} is not a key (try q, ctrl-x, shift-tab, pgdn, space, f5)")]
    BadKey(String),
    #[error("tui.bindings: {key:?} names {command:?}, which is not a command (see `ward keys`)")]
    UnknownCommand { key: String, command: String },
}

/// The effective key table.
#[derive(Debug, Clone)]
pub struct Keymap {
    by_key: BTreeMap<(String, u8), Command>,
    keys: BTreeMap<Command, Vec<String>>,
}

fn slot(key: KeyEvent) -> (String, u8) {
    let (code, modifiers) = normalise(key);
    (format!("{code:?}"), modifiers.bits())
}

impl Keymap {
    /// The defaults with `overrides` (key → command name) applied: a rebound key leaves its old
    /// command, which keeps its other keys.
    pub fn new(overrides: &BTreeMap<String, String>) -> Result<Self, KeymapError> {
        let mut map = Self {
            by_key: BTreeMap::new(),
            keys: BTreeMap::new(),
        };
        for &command in Command::ALL {
            for key in command.default_keys() {
                map.bind(key, command)?;
            }
        }
        for (key, name) in overrides {
            let command = Command::ALL
                .iter()
                .copied()
                .find(|c| c.name() == name)
                .ok_or_else(|| KeymapError::UnknownCommand {
                    key: key.clone(),
                    command: name.clone(),
                })?;
            map.bind(key, command)?;
        }
        Ok(map)
    }

    fn bind(&mut self, key: &str, command: Command) -> Result<(), KeymapError> {
        let event = parse_key(key).ok_or_else(|| KeymapError::BadKey(key.to_owned()))?;
        if let Some(old) = self.by_key.insert(slot(event), command)
            && let Some(keys) = self.keys.get_mut(&old)
        {
            keys.retain(|k| k != key);
        }
        self.keys.entry(command).or_default().push(key.to_owned());
        Ok(())
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

    #[test]
    fn a_rebinding_moves_the_key_and_keeps_the_others() {
        let overrides = BTreeMap::from([("x".to_owned(), "quit".to_owned())]);
        let map = Keymap::new(&overrides).unwrap();
        assert_eq!(map.command(parse_key("x").unwrap()), Some(Command::Quit));
        assert_eq!(map.command(parse_key("q").unwrap()), Some(Command::Quit));
        assert!(map.keys(Command::DisableBreaker).is_empty());
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
