//! Where the config file is looked up: `--config`, then `$WARD_CONFIG`, then the XDG default
//! (`$XDG_CONFIG_HOME/ward/config.toml`, else `$HOME/.config/ward/config.toml`).

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

/// The environment variable naming the config file explicitly.
pub const CONFIG_ENV: &str = "WARD_CONFIG";

/// Which rule chose the config file path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocationSource {
    /// `--config PATH` on the command line.
    Flag,
    /// `$WARD_CONFIG`.
    Env,
    /// `$XDG_CONFIG_HOME/ward/config.toml`.
    XdgConfigHome,
    /// `$HOME/.config/ward/config.toml` (the XDG default when `$XDG_CONFIG_HOME` is unset).
    Home,
    /// Neither `$XDG_CONFIG_HOME` nor `$HOME` is usable: only defaults, env and flags apply.
    Nowhere,
}

impl LocationSource {
    /// Whether the file was named explicitly, so that its absence is an error.
    pub fn is_explicit(self) -> bool {
        matches!(self, Self::Flag | Self::Env)
    }
}

impl fmt::Display for LocationSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Flag => "--config",
            Self::Env => CONFIG_ENV,
            Self::XdgConfigHome => "XDG default ($XDG_CONFIG_HOME/ward/config.toml)",
            Self::Home => "XDG default ($HOME/.config/ward/config.toml)",
            Self::Nowhere => "nothing (neither $XDG_CONFIG_HOME nor $HOME is set)",
        })
    }
}

/// The resolved place to read the config file from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigLocation {
    /// `None` only when [`LocationSource::Nowhere`].
    pub path: Option<PathBuf>,
    pub chosen_by: LocationSource,
}

impl ConfigLocation {
    /// A file named explicitly by `--config` or `$WARD_CONFIG`: it must exist.
    pub fn explicit(path: impl Into<PathBuf>, chosen_by: LocationSource) -> Self {
        Self {
            path: Some(path.into()),
            chosen_by,
        }
    }

    /// The XDG default from the given `$XDG_CONFIG_HOME` and `$HOME` values. Per the XDG spec a
    /// relative or empty `$XDG_CONFIG_HOME` is ignored. A missing file here is fine.
    pub fn xdg_default(xdg_config_home: Option<&Path>, home: Option<&Path>) -> Self {
        let usable = |p: &&Path| !p.as_os_str().is_empty() && p.is_absolute();
        if let Some(xdg) = xdg_config_home.filter(usable) {
            return Self {
                path: Some(xdg.join("ward").join("config.toml")),
                chosen_by: LocationSource::XdgConfigHome,
            };
        }
        if let Some(home) = home.filter(|p| !p.as_os_str().is_empty()) {
            return Self {
                path: Some(home.join(".config").join("ward").join("config.toml")),
                chosen_by: LocationSource::Home,
            };
        }
        Self {
            path: None,
            chosen_by: LocationSource::Nowhere,
        }
    }

    /// Resolves the location: an explicit path (from `--config` or `$WARD_CONFIG`, already
    /// merged by the caller) wins; otherwise the XDG default computed from `lookup`, which reads
    /// an environment variable (pass `std::env::var_os` in production, a map in tests).
    pub fn resolve(
        explicit: Option<(PathBuf, LocationSource)>,
        lookup: impl Fn(&str) -> Option<OsString>,
    ) -> Self {
        if let Some((path, chosen_by)) = explicit {
            return Self::explicit(path, chosen_by);
        }
        let xdg = lookup("XDG_CONFIG_HOME").map(PathBuf::from);
        let home = lookup("HOME").map(PathBuf::from);
        Self::xdg_default(xdg.as_deref(), home.as_deref())
    }

    /// Whether the file exists (false when there is no path at all).
    pub fn exists(&self) -> bool {
        self.path.as_deref().is_some_and(Path::exists)
    }
}
