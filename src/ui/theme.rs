//! Control-room themes: named style slots ([`Item`]) read from TOML, with partial overrides
//! (`extends`), four builtins and a NO_COLOR mode. `themes/README.md` documents the format.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::PathBuf;

use ratatui::style::{Color, Modifier, Style};

macro_rules! items {
    ($( $variant:ident => $name:literal, [$($bare:ident),*], $describe:literal; )*) => {
        /// Named style slots. Every one must be present in default.toml.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Item { $(#[doc = $describe] $variant),* }

        impl Item {
            pub const ALL: [Item; [$(Item::$variant),*].len()] = [$(Item::$variant),*];

            /// The kebab-case key used in theme files.
            pub fn name(self) -> &'static str {
                match self { $(Item::$variant => $name),* }
            }

            /// One line, for `ward themes --items`.
            pub fn describe(self) -> &'static str {
                match self { $(Item::$variant => $describe),* }
            }

            /// What keeps the item's state visible once NO_COLOR has dropped the colours.
            fn no_color_emphasis(self) -> Modifier {
                match self { $(Item::$variant => Modifier::empty() $(| Modifier::$bare)*),* }
            }
        }
    };
}

// Item => key in theme files, [modifiers added under NO_COLOR], description.
items! {
    Text => "text", [], "body text: table cells, details, plain values";
    Dim => "dim", [DIM], "secondary text: timestamps, labels, empty states";
    Title => "title", [BOLD], "pane and dialog titles";
    Border => "border", [], "borders of unfocused panes";
    BorderFocus => "border-focus", [BOLD], "border of the focused pane";
    Header => "header", [BOLD], "the status bar across the top";
    Badge => "badge", [REVERSED], "neutral badge in the header (view, store, counts)";
    BadgeReadOnly => "badge-read-only", [REVERSED], "badge: the session is read-only";
    BadgeFrozen => "badge-frozen", [REVERSED], "badge: the display is frozen (reads go on)";
    BadgeStale => "badge-stale", [REVERSED], "badge: the last store read is too old";
    BadgeStop => "badge-stop", [REVERSED, BOLD], "badge: emergency stop is on";
    BadgeShedding => "badge-shedding", [REVERSED, BOLD], "badge: load shedding is on";
    Accent => "accent", [], "highlights: active tab, counts, matched filter text";
    Selection => "selection", [REVERSED], "the row under the cursor";
    Marked => "marked", [BOLD], "rows marked for a bulk action";
    Ok => "ok", [], "healthy: closed breakers, empty queues, successes";
    Warn => "warn", [], "warnings: over the warn depth, half-open breakers";
    Error => "error", [BOLD], "failures: open breakers, over the shed depth, errors";
    Info => "info", [], "informational notes and neutral states";
    StaleBanner => "stale-banner", [REVERSED], "banner over data that could not be refreshed";
    Sparkline => "sparkline", [], "rate sparklines";
    Gauge => "gauge", [], "gauges (queue depth against its thresholds)";
    KeyHint => "key-hint", [], "the key-hint bar's descriptions";
    KeyHintKey => "key-hint-key", [BOLD], "the keys in the key-hint bar and help";
    Dialog => "dialog", [BOLD], "dialogs: plans, confirmations, forms";
    DialogDanger => "dialog-danger", [REVERSED, BOLD], "dialogs confirming a destructive action";
    Toast => "toast", [REVERSED], "transient notifications";
    ToastError => "toast-error", [REVERSED, BOLD], "transient error notifications";
    TableHeader => "table-header", [BOLD], "column headings of tables";
}

impl Item {
    pub fn from_name(name: &str) -> Option<Item> {
        Item::ALL.into_iter().find(|item| item.name() == name)
    }
}

/// What went wrong. Messages name the file (for [`Theme::parse`], the theme), the key and why.
#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    #[error("{file}: TOML syntax error at line {line}: {reason}")]
    Syntax {
        file: String,
        line: usize,
        reason: String,
    },
    /// Unknown item, key or modifier, bad colour, wrong type, unknown base, cycle, missing items.
    #[error("{file}: {at}: {reason}")]
    Invalid {
        file: String,
        at: String,
        reason: String,
    },
    #[error("theme `{name}` not found (looked for {looked})")]
    NotFound { name: String, looked: String },
    #[error("cannot read theme file {file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
}

type Styles = BTreeMap<Item, Style>;

#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    name: String,
    styles: Styles,
    no_color: bool,
}

impl Theme {
    pub const BUILTIN: [&'static str; 4] = ["default", "dark", "light", "high-contrast"];

    /// A builtin theme (`None` for any other name; the builtins are tested to parse).
    pub fn builtin(name: &str) -> Option<Theme> {
        builtin_text(name).and_then(|_| Theme::load(name, &[]).ok())
    }

    /// `<dir>/<name>.toml` from the first dir that has it, else the builtin of that name.
    pub fn load(name: &str, dirs: &[PathBuf]) -> Result<Theme, ThemeError> {
        let mut resolver = Resolver::new(dirs);
        let source = resolver.find(name, 0)?;
        Ok(Theme::new(name, resolver.resolve(&source, name)?))
    }

    /// Parses theme text; here `extends` may name only builtins.
    pub fn parse(name: &str, text: &str) -> Result<Theme, ThemeError> {
        let (origin, text, pos) = (format!("theme `{name}`"), text.to_owned(), 0);
        let styles = Resolver::new(&[]).resolve(&Source { origin, text, pos }, name)?;
        Ok(Theme::new(name, styles))
    }

    fn new(name: &str, styles: Styles) -> Theme {
        Theme {
            name: name.to_owned(),
            styles,
            no_color: false,
        }
    }

    /// NO_COLOR: every colour dropped; state-bearing items keep or gain REVERSED / BOLD (see
    /// the table under `items!`).
    #[must_use]
    pub fn no_color(self) -> Theme {
        let mut theme = self;
        for (&item, style) in &mut theme.styles {
            // A fresh Style has no fg, bg or underline colour, whatever ratatui's features.
            let bare = Style::new().add_modifier(style.add_modifier);
            *style = bare
                .remove_modifier(style.sub_modifier)
                .add_modifier(item.no_color_emphasis());
        }
        theme.no_color = true;
        theme
    }

    pub fn style(&self, item: Item) -> Style {
        // Every constructor checks that all items are present, so the default is never used.
        self.styles.get(&item).copied().unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn is_no_color(&self) -> bool {
        self.no_color
    }
}

/// A colour written as in theme files (also `tui.accent`); `None` for anything else, "" included.
pub fn parse_color(text: &str) -> Option<Color> {
    let text = text.trim().to_ascii_lowercase();
    // ratatui's parser takes the ANSI names in any spelling, #rrggbb and 0-255, but also `+7`.
    let index = text
        .strip_prefix("indexed(")
        .and_then(|r| r.strip_suffix(')'));
    match index {
        _ if text.contains('+') => None,
        Some(index) => index.parse().ok().map(Color::Indexed),
        None => text.parse().ok(),
    }
}

fn builtin_text(name: &str) -> Option<&'static str> {
    match name {
        "default" => Some(include_str!("../../themes/default.toml")),
        "dark" => Some(include_str!("../../themes/dark.toml")),
        "light" => Some(include_str!("../../themes/light.toml")),
        "high-contrast" => Some(include_str!("../../themes/high-contrast.toml")),
        _ => None,
    }
}

/// Theme text and where it came from; `pos` indexes the search dirs (`dirs.len()`: builtin).
struct Source {
    origin: String,
    text: String,
    pos: usize,
}

/// Follows `extends` through the search dirs and the builtins; `chain` catches cycles.
struct Resolver<'a> {
    dirs: &'a [PathBuf],
    chain: Vec<String>,
}

impl Resolver<'_> {
    fn new(dirs: &[PathBuf]) -> Resolver<'_> {
        let chain = Vec::new();
        Resolver { dirs, chain }
    }

    /// `<name>.toml` from the first of `dirs[from..]` that has it, else the builtin.
    fn find(&self, name: &str, from: usize) -> Result<Source, ThemeError> {
        // Only plain names are looked up in dirs, so a name cannot reach outside them.
        let plain = !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\']);
        let mut looked = Vec::new();
        for (pos, dir) in self.dirs.iter().enumerate().skip(from).filter(|_| plain) {
            let path = dir.join(format!("{name}.toml"));
            let origin = path.display().to_string();
            match std::fs::read_to_string(&path) {
                Ok(text) => return Ok(Source { origin, text, pos }),
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                    looked.push(origin);
                }
                Err(source) => {
                    return Err(ThemeError::Io {
                        file: origin,
                        source,
                    });
                }
            }
        }
        let (origin, pos) = (format!("builtin themes/{name}.toml"), self.dirs.len());
        if let Some(text) = builtin_text(name).map(str::to_owned) {
            return Ok(Source { origin, text, pos });
        }
        looked.push(format!("the builtins {}", Theme::BUILTIN.join(", ")));
        let (name, looked) = (name.to_owned(), looked.join(", "));
        Err(ThemeError::NotFound { name, looked })
    }

    fn resolve(&mut self, source: &Source, name: &str) -> Result<Styles, ThemeError> {
        let file = File(&source.origin);
        let seen = self.chain.contains(&source.origin);
        self.chain.push(source.origin.clone());
        if seen {
            return Err(file.invalid("extends", format!("cycle {}", self.chain.join(" -> "))));
        }
        let (extends, items) = file.parse(&source.text)?;
        let mut styles = if let Some(base) = extends {
            // A builtin extends only builtins; a file may extend the theme it shadows: look past it.
            let from = match source.pos {
                pos if pos >= self.dirs.len() => self.dirs.len(),
                pos if base == name => pos + 1,
                _ => 0,
            };
            let base_source = self.find(&base, from).map_err(|e| match e {
                ThemeError::NotFound { looked, .. } => file.invalid(
                    "extends",
                    format!("unknown base theme `{base}` (looked for {looked})"),
                ),
                e => e,
            })?;
            self.resolve(&base_source, &base)?
        } else {
            let missing = Item::ALL.into_iter().filter(|i| !items.contains_key(i));
            let missing: Vec<_> = missing.map(Item::name).collect();
            if !missing.is_empty() {
                let missing = missing.join(", ");
                let reason = format!("no `extends`, so every item is needed; missing: {missing}");
                return Err(file.invalid("items", reason));
            }
            Styles::new()
        };
        styles.extend(items);
        Ok(styles)
    }
}

/// The file being parsed, named in every error.
#[derive(Clone, Copy)]
struct File<'a>(&'a str);

impl File<'_> {
    fn invalid(self, at: impl Into<String>, reason: impl Into<String>) -> ThemeError {
        let (file, at, reason) = (self.0.to_owned(), at.into(), reason.into());
        ThemeError::Invalid { file, at, reason }
    }

    fn parse(self, text: &str) -> Result<(Option<String>, Styles), ThemeError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let start = e.span().map_or(0, |span| span.start);
            let line = text.get(..start).unwrap_or("").matches('\n').count() + 1;
            let (file, reason) = (self.0.to_owned(), e.message().trim().to_owned());
            ThemeError::Syntax { file, line, reason }
        })?;
        let (mut extends, mut items) = (None, Styles::new());
        for (key, value) in table {
            match (key.as_str(), value) {
                ("extends", toml::Value::String(base)) => extends = Some(base),
                ("extends", _) => return Err(self.invalid(key, "must be a theme name string")),
                ("items", toml::Value::Table(entries)) => {
                    for (item_name, spec) in entries {
                        let at = format!("items.{item_name}");
                        let Some(item) = Item::from_name(&item_name) else {
                            let known = Item::ALL.map(Item::name).join(", ");
                            return Err(self.invalid(at, format!("unknown item (known: {known})")));
                        };
                        items.insert(item, self.style(&at, spec)?);
                    }
                }
                ("items", _) => return Err(self.invalid(key, "must be a table")),
                _ => return Err(self.invalid(key, "unknown key (expected extends or items)")),
            }
        }
        Ok((extends, items))
    }

    fn style(self, at: &str, spec: toml::Value) -> Result<Style, ThemeError> {
        let toml::Value::Table(fields) = spec else {
            return Err(self.invalid(at, "must be a table such as { fg = \"red\" }"));
        };
        let mut style = Style::new();
        for (key, value) in fields {
            let at = format!("{at}.{key}");
            match (key.as_str(), value) {
                ("fg", value) => style.fg = Some(self.colour(&at, &value)?),
                ("bg", value) => style.bg = Some(self.colour(&at, &value)?),
                ("modifiers", toml::Value::Array(list)) => {
                    for entry in &list {
                        style = style.add_modifier(self.modifier(&at, entry)?);
                    }
                }
                ("modifiers", _) => return Err(self.invalid(at, "must be a list of strings")),
                _ => return Err(self.invalid(at, "unknown key (expected fg, bg or modifiers)")),
            }
        }
        Ok(style)
    }

    fn colour(self, at: &str, value: &toml::Value) -> Result<Color, ThemeError> {
        let text = match value {
            toml::Value::Integer(index) => index.to_string(),
            _ => shown(value),
        };
        let reason = || format!("`{}` is not a colour (expected {COLOURS})", shown(value));
        parse_color(&text).ok_or_else(|| self.invalid(at, reason()))
    }

    fn modifier(self, at: &str, value: &toml::Value) -> Result<Modifier, ThemeError> {
        let name = shown(value).to_ascii_lowercase().replace(['-', '_'], "");
        let modifier = match name.as_str() {
            "bold" => Modifier::BOLD,
            "dim" => Modifier::DIM,
            "italic" => Modifier::ITALIC,
            "underlined" => Modifier::UNDERLINED,
            "reversed" => Modifier::REVERSED,
            "crossedout" => Modifier::CROSSED_OUT,
            _ => {
                let reason = format!("unknown modifier `{}` (expected {MODIFIERS})", shown(value));
                return Err(self.invalid(at, reason));
            }
        };
        Ok(modifier)
    }
}

const COLOURS: &str = "an ANSI name such as red or dark-gray, reset, #rrggbb, indexed(N) or 0-255";
const MODIFIERS: &str = "bold, dim, italic, underlined, reversed or crossed-out";

/// A value as the user wrote it, without TOML's quotes around a string.
fn shown(value: &toml::Value) -> String {
    match value {
        toml::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "extends = \"default\"\n[items]\n";

    fn fails(text: &str, wanted: &str) {
        let e = Theme::parse("mine", text).unwrap_err().to_string();
        assert!(e.starts_with("theme `mine`: ") && e.contains(wanted), "{e}");
    }

    fn has(theme: &Theme, item: Item, modifier: Modifier) -> bool {
        theme.style(item).add_modifier.contains(modifier)
    }

    #[test]
    fn every_builtin_parses_and_defines_every_item_itself() {
        for name in Theme::BUILTIN {
            assert_eq!(Theme::load(name, &[]).unwrap().name(), name);
            let (extends, items) = File(name).parse(builtin_text(name).unwrap()).unwrap();
            assert_eq!((extends, items.len()), (None, Item::ALL.len()), "{name}");
        }
        assert!(Theme::builtin("nope").is_none());
        // default follows the terminal's palette: ANSI-16 names and reset only.
        let default = Theme::builtin("default").unwrap();
        for style in Item::ALL.map(|item| default.style(item)) {
            let fixed = |c: Option<Color>| matches!(c, Some(Color::Rgb(..) | Color::Indexed(_)));
            assert!(!fixed(style.fg) && !fixed(style.bg), "{style:?}");
        }
    }

    #[test]
    fn item_names_are_kebab_case_and_round_trip() {
        for item in Item::ALL {
            let kebab = |b: u8| b.is_ascii_lowercase() || b == b'-';
            assert!(item.name().bytes().all(kebab) && !item.describe().is_empty());
            assert_eq!(Item::from_name(item.name()), Some(item));
        }
        assert_eq!(Item::BadgeReadOnly.name(), "badge-read-only");
        assert_eq!(Item::from_name("badge_read_only"), None);
    }

    #[test]
    fn a_partial_override_changes_only_its_items() {
        let text = format!("{BASE}text = {{ fg = \"#102030\" }}\n[items.dim]\nbg = 42\n");
        let mine = Theme::parse("mine", &text).unwrap();
        assert_eq!(
            mine.style(Item::Text),
            Style::new().fg(Color::Rgb(16, 32, 48))
        );
        assert_eq!(mine.style(Item::Dim), Style::new().bg(Color::Indexed(42)));
        let base = Theme::builtin("default").unwrap();
        // Item::ALL starts with Text and Dim.
        for item in Item::ALL.into_iter().skip(2) {
            assert_eq!(mine.style(item), base.style(item), "{}", item.name());
        }
    }

    #[test]
    fn colours_and_modifiers_accept_every_documented_spelling() {
        let colours = [
            ("\"dark-gray\"", Color::DarkGray),
            ("\"DARK_GRAY\"", Color::DarkGray),
            ("\"LightCyan\"", Color::LightCyan),
            ("\"reset\"", Color::Reset),
            ("\"#FFa500\"", Color::Rgb(255, 165, 0)),
            ("\"indexed(208)\"", Color::Indexed(208)),
            ("\"7\"", Color::Indexed(7)),
            ("255", Color::Indexed(255)),
        ];
        for (text, colour) in colours {
            let theme = Theme::parse("t", &format!("{BASE}text = {{ fg = {text} }}")).unwrap();
            assert_eq!(theme.style(Item::Text).fg, Some(colour), "{text}");
        }
        let text = format!("{BASE}ok = {{ modifiers = [\"Crossed_Out\", \"italic\"] }}");
        let theme = Theme::parse("t", &text).unwrap();
        assert!(has(
            &theme,
            Item::Ok,
            Modifier::CROSSED_OUT | Modifier::ITALIC
        ));
    }

    #[test]
    fn errors_name_the_file_the_key_and_the_problem() {
        fails(
            &format!("{BASE}txet = {{}}"),
            "items.txet: unknown item (known: text, dim",
        );
        for bad in [
            "\"purple\"",
            "\"#12345\"",
            "\"#+12345\"",
            "256",
            "\"indexed(-1)\"",
        ] {
            let reason = format!("items.text.fg: `{}` is not a colour", bad.trim_matches('"'));
            fails(&format!("{BASE}text = {{ fg = {bad} }}"), &reason);
        }
        let blink = format!("{BASE}text = {{ modifiers = [\"bold\", \"blink\"] }}");
        fails(&blink, "items.text.modifiers: unknown modifier `blink`");
        fails(
            &format!("{BASE}text = {{ fgg = 1 }}"),
            "items.text.fgg: unknown key",
        );
        fails(
            &format!("{BASE}text = \"red\""),
            "items.text: must be a table",
        );
        fails("colours = 1", "colours: unknown key");
        fails("extends = \"nope\"", "extends: unknown base theme `nope`");
        fails(
            "[items]\ntext = {}",
            "items: no `extends`, so every item is needed; missing: dim,",
        );
        fails(
            "extends = \"default\"\n[items\n",
            "TOML syntax error at line 2",
        );
    }

    #[test]
    fn an_extends_cycle_is_an_error_naming_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), "extends = \"b\"").unwrap();
        std::fs::write(dir.path().join("b.toml"), "extends = \"a\"").unwrap();
        let e = Theme::load("a", &[dir.path().to_path_buf()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a.toml: extends: cycle ") && e.contains("b.toml -> "),
            "{e}"
        );
        assert!(e.ends_with("a.toml"), "{e}");
    }

    #[test]
    fn no_color_drops_every_colour_and_keeps_state_visible() {
        for name in Theme::BUILTIN {
            let theme = Theme::builtin(name).unwrap().no_color();
            assert!(theme.is_no_color());
            for style in Item::ALL.map(|item| theme.style(item)) {
                assert_eq!((style.fg, style.bg), (None, None), "{name}");
            }
            assert!(has(&theme, Item::Selection, Modifier::REVERSED));
            assert!(has(
                &theme,
                Item::BadgeStop,
                Modifier::REVERSED | Modifier::BOLD
            ));
            assert!(has(&theme, Item::TableHeader, Modifier::BOLD));
        }
    }

    #[test]
    fn load_prefers_the_first_dir_with_the_file_and_may_extend_what_it_shadows() {
        let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let dirs = [
            one.path().join("absent"),
            one.path().into(),
            two.path().into(),
        ];
        let text = "extends = \"dark\"\n[items]\ntext = { fg = \"red\" }";
        std::fs::write(dirs[1].join("dark.toml"), text).unwrap();
        std::fs::write(dirs[2].join("dark.toml"), text.replace("text", "dim")).unwrap();
        let theme = Theme::load("dark", &dirs).unwrap();
        assert_eq!(theme.style(Item::Text), Style::new().fg(Color::Red));
        assert_eq!(theme.style(Item::Dim), Style::new().fg(Color::Red));
        let builtin = Theme::builtin("dark").unwrap();
        assert_eq!(theme.style(Item::Title), builtin.style(Item::Title));
        assert_eq!(Theme::load("light", &dirs).ok(), Theme::builtin("light"));
        let e = Theme::load("nope", &dirs).unwrap_err().to_string();
        assert!(
            e.contains("absent/nope.toml, ") && e.contains("builtins default, dark"),
            "{e}"
        );
        let e = Theme::load("../dark", &dirs).unwrap_err().to_string();
        assert!(
            e.starts_with("theme `../dark` not found (looked for the builtins"),
            "{e}"
        );
    }
}
