//! The single choke point: read-only is decided here, once, before any I/O.

use serde::{Deserialize, Serialize};

use super::Action;

/// Why an action was refused, in words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("refused: {action} is not allowed ({why})")]
pub struct Refusal {
    pub action: String,
    pub why: String,
}

/// Whether this session may change anything, and why not.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Policy {
    /// `Some(why)` when the session is read-only.
    read_only: Option<String>,
}

impl Policy {
    /// A session that may act.
    pub fn writable() -> Self {
        Self::default()
    }

    /// A read-only session, and why.
    pub fn read_only(why: impl Into<String>) -> Self {
        Self {
            read_only: Some(why.into()),
        }
    }

    /// Precedence flag > target > global: `flag` is `Some(true)` for `--read-only` and
    /// `Some(false)` for `--write`; `target` is the target's name and its config setting;
    /// `global` is the config default.
    pub fn resolve(flag: Option<bool>, target: Option<(&str, bool)>, global: bool) -> Self {
        match (flag, target) {
            (Some(true), _) => Self::read_only("read-only: --read-only"),
            (None, Some((name, true))) => {
                Self::read_only(format!("target {name} is read-only in config"))
            }
            (None, None) if global => Self::read_only("read-only in config"),
            _ => Self::writable(),
        }
    }

    /// Why the session is read-only, if it is.
    pub fn read_only_reason(&self) -> Option<&str> {
        self.read_only.as_deref()
    }

    /// Every action changes state, so a read-only session refuses every one.
    pub fn check(&self, action: &Action) -> Result<(), Refusal> {
        match &self.read_only {
            Some(why) => Err(Refusal {
                action: action.kind().as_str().to_owned(),
                why: why.clone(),
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_over_the_target_and_the_target_over_the_default() {
        assert_eq!(
            Policy::resolve(Some(true), Some(("prod", false)), false).read_only_reason(),
            Some("read-only: --read-only")
        );
        assert_eq!(
            Policy::resolve(Some(false), Some(("prod", true)), true).read_only_reason(),
            None,
            "--write overrides the config"
        );
        assert_eq!(
            Policy::resolve(None, Some(("prod", true)), false).read_only_reason(),
            Some("target prod is read-only in config")
        );
        assert_eq!(
            Policy::resolve(None, Some(("dev", false)), true).read_only_reason(),
            None
        );
        assert_eq!(
            Policy::resolve(None, None, true).read_only_reason(),
            Some("read-only in config")
        );
        assert_eq!(Policy::resolve(None, None, false).read_only_reason(), None);
    }
}
