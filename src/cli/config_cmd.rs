//! `ward config path` and `ward config show`.

use std::io::Write;

use crate::config::{Config, ConfigLocation, LocationSource};

/// Prints the resolved config file path, whether it exists and which rule chose it.
pub(super) fn path(location: &ConfigLocation, out: &mut dyn Write) -> anyhow::Result<()> {
    match &location.path {
        Some(path) => writeln!(out, "path:      {}", path.display())?,
        None => writeln!(
            out,
            "path:      (none; using defaults, environment and flags only)"
        )?,
    }
    let exists = match (location.exists(), location.chosen_by.is_explicit()) {
        (true, _) => "yes",
        (false, true) => "no (an error: this file was named explicitly)",
        (false, false) => "no (fine: defaults apply)",
    };
    if location.path.is_some() {
        writeln!(out, "exists:    {exists}")?;
    }
    writeln!(out, "chosen by: {}", location.chosen_by)?;
    writeln!(
        out,
        "lookup:    --config, then ${}, then $XDG_CONFIG_HOME/ward/config.toml, \
         then $HOME/.config/ward/config.toml",
        crate::config::CONFIG_ENV
    )?;
    Ok(())
}

/// Prints the resolved config as TOML (passwords redacted), preceded by a comment saying
/// where it came from.
pub(super) fn show(
    location: &ConfigLocation,
    config: &Config,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let file = match (&location.path, location.exists()) {
        (Some(path), true) => format!("{} (chosen by {})", path.display(), location.chosen_by),
        (Some(path), false) => format!("none ({} does not exist)", path.display()),
        (None, _) => format!("none ({})", LocationSource::Nowhere),
    };
    writeln!(
        out,
        "# Resolved Ward configuration: flags > WARD_* env > file > defaults."
    )?;
    writeln!(out, "# File: {file}")?;
    writeln!(out, "# Passwords are shown as ***.")?;
    writeln!(out)?;
    out.write_all(config.redacted().to_toml()?.as_bytes())?;
    Ok(())
}
