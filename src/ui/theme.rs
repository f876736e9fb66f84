//! Placeholder until the theme module lands (same API).
use ratatui::style::{Color, Style};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Item {
    Text,
    Dim,
    Title,
    Border,
    BorderFocus,
    Header,
    Badge,
    BadgeReadOnly,
    BadgeFrozen,
    BadgeStale,
    BadgeStop,
    BadgeShedding,
    Accent,
    Selection,
    Marked,
    Ok,
    Warn,
    Error,
    Info,
    StaleBanner,
    Sparkline,
    Gauge,
    KeyHint,
    KeyHintKey,
    Dialog,
    DialogDanger,
    Toast,
    ToastError,
    TableHeader,
}

#[derive(Debug, Clone, Default)]
pub struct Theme;
impl Theme {
    pub fn load(_name: &str, _dirs: &[std::path::PathBuf]) -> Result<Theme, std::io::Error> {
        Ok(Theme)
    }
    pub fn style(&self, _item: Item) -> Style {
        Style::default()
    }
    #[must_use]
    pub fn no_color(self) -> Theme {
        self
    }
}

pub fn parse_color(_text: &str) -> Option<Color> {
    None
}
