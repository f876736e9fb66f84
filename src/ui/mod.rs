//! The ratatui control room: app state and keys (`app`), named commands (`keymap`), the `:`
//! line (`command`), pure drawing (`views`), themes, and the loop that owns the terminal (`run`).

pub mod app;
pub mod command;
pub mod export;
pub mod keymap;
pub mod run;
pub mod silences;
pub mod state;
pub mod theme;
pub mod views;
pub mod widgets;

pub use app::{App, Effect, JobEvent, Mode, View};
pub use keymap::{Command, Keymap};
pub use state::{Scene, UiState};
pub use theme::Theme;
