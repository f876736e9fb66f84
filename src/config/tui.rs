//! `[tui]`: the control room (`ward tui`, `ward demo`). Read whole by serde (unknown keys
//! rejected, every key defaulted) and then validated here, with errors naming the key.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Lowest `tui.refresh_ms`.
pub const MIN_REFRESH_MS: u64 = 250;

/// `[tui]`: the control room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TuiConfig {
    /// How often the control room reads the store, in milliseconds (floor 250).
    pub refresh_ms: u64,
    /// Operators cannot change the refresh interval from the keyboard.
    pub lock_refresh: bool,
    /// Time allowed for one read before it counts as failed, in milliseconds.
    pub timeout_ms: u64,
    /// Missed reads after which figures are dimmed; after twice as many the STALE banner shows.
    pub stale_after_polls: u32,
    /// Theme name: a builtin (default, dark, light, high-contrast) or a file <config dir>/themes/<name>.toml.
    pub theme: String,
    /// Refuse every action, in the control room and as headless subcommands (`--write` overrides).
    pub read_only: bool,
    /// The deployment's name in the header, plans and audit (empty: the key prefix in the
    /// header, the server and key prefix in plans and audit).
    pub label: String,
    /// The label's colour, e.g. "red" for production (empty: the theme's accent).
    pub accent: String,
    /// Wall display: seconds between views when cycling (0: no cycling).
    pub wall_cycle_s: u64,
    /// ctrl-c does not quit (q and :q still do); useful when ctrl-c is muscle memory for "cancel".
    pub no_exit_on_ctrl_c: bool,
    /// Rows of audit history read on each refresh.
    pub audit_rows: usize,
    /// Key → command overrides, e.g. "ctrl-x" = "quit" (see `ward keys`).
    pub bindings: BTreeMap<String, String>,
}

impl Default for TuiConfig {
    fn default() -> Self {
        Self {
            refresh_ms: 1_000,
            lock_refresh: false,
            timeout_ms: 2_000,
            stale_after_polls: 2,
            theme: "default".to_owned(),
            read_only: false,
            label: String::new(),
            accent: String::new(),
            wall_cycle_s: 0,
            no_exit_on_ctrl_c: false,
            audit_rows: 50,
            bindings: BTreeMap::new(),
        }
    }
}

impl TuiConfig {
    pub fn refresh(&self) -> Duration {
        Duration::from_millis(self.refresh_ms)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Time between views on a wall display; `None` when cycling is off.
    pub fn wall_cycle(&self) -> Option<Duration> {
        (self.wall_cycle_s > 0).then(|| Duration::from_secs(self.wall_cycle_s))
    }

    // `bindings` is checked against the keymap the UI owns, by the CLI when it loads the config.
    pub(super) fn validate(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, message: String| Err((format!("tui.{key}"), message));
        if self.refresh_ms < MIN_REFRESH_MS {
            return bad(
                "refresh_ms",
                format!(
                    "must be at least {MIN_REFRESH_MS}, got {}: a faster refresh loads Redis for nothing",
                    self.refresh_ms
                ),
            );
        }
        if !(100..=60_000).contains(&self.timeout_ms) {
            return bad(
                "timeout_ms",
                format!("must be between 100 and 60000, got {}", self.timeout_ms),
            );
        }
        if self.stale_after_polls == 0 {
            return bad("stale_after_polls", "must be at least 1".to_owned());
        }
        if self.theme.is_empty() || self.theme.contains(['/', '\\']) {
            return bad(
                "theme",
                format!(
                    "must be a theme name (no '/' or '\\'), got {:?}",
                    self.theme
                ),
            );
        }
        if !(1..=500).contains(&self.audit_rows) {
            return bad(
                "audit_rows",
                format!("must be between 1 and 500, got {}", self.audit_rows),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(c: &TuiConfig) -> Option<String> {
        c.validate().err().map(|(key, _)| key)
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(TuiConfig::default().validate(), Ok(()));
        assert_eq!(TuiConfig::default().refresh(), Duration::from_secs(1));
        assert_eq!(TuiConfig::default().timeout(), Duration::from_secs(2));
        assert_eq!(TuiConfig::default().wall_cycle(), None);
    }

    #[test]
    fn bad_values_name_their_key() {
        let d = TuiConfig::default;
        let cases = [
            (
                TuiConfig {
                    refresh_ms: 249,
                    ..d()
                },
                "tui.refresh_ms",
            ),
            (
                TuiConfig {
                    timeout_ms: 99,
                    ..d()
                },
                "tui.timeout_ms",
            ),
            (
                TuiConfig {
                    timeout_ms: 60_001,
                    ..d()
                },
                "tui.timeout_ms",
            ),
            (
                TuiConfig {
                    stale_after_polls: 0,
                    ..d()
                },
                "tui.stale_after_polls",
            ),
            (
                TuiConfig {
                    theme: String::new(),
                    ..d()
                },
                "tui.theme",
            ),
            (
                TuiConfig {
                    theme: "../x".to_owned(),
                    ..d()
                },
                "tui.theme",
            ),
            (
                TuiConfig {
                    theme: "a\\b".to_owned(),
                    ..d()
                },
                "tui.theme",
            ),
            (
                TuiConfig {
                    audit_rows: 0,
                    ..d()
                },
                "tui.audit_rows",
            ),
            (
                TuiConfig {
                    audit_rows: 501,
                    ..d()
                },
                "tui.audit_rows",
            ),
        ];
        for (config, key) in cases {
            assert_eq!(key_of(&config).as_deref(), Some(key), "{config:?}");
        }
        let edges = TuiConfig {
            refresh_ms: 250,
            timeout_ms: 60_000,
            audit_rows: 500,
            wall_cycle_s: 30,
            ..d()
        };
        assert_eq!(edges.validate(), Ok(()));
        assert_eq!(edges.wall_cycle(), Some(Duration::from_secs(30)));
    }
}
