//! `ward slo …`: the configured objectives, and Prometheus rules for them.

use std::io::Write;

use anyhow::Context as _;

use crate::config::Config;
use crate::telemetry::slo_rules;

/// `ward slo rules [--output FILE]`.
pub(super) fn rules(
    config: &Config,
    output: Option<&std::path::Path>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let slos = config
        .slo
        .definitions(&config.delivery)
        .map_err(|(key, message)| anyhow::anyhow!("{key}: {message}"))?;
    let text = slo_rules::prometheus_rules(&slos);
    match output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write the rules to {}", path.display())),
        None => Ok(out.write_all(text.as_bytes())?),
    }
}
