//! `ward print-config-template`.

use std::io::Write;

use crate::config::template;

pub(super) fn print(out: &mut dyn Write) -> anyhow::Result<()> {
    out.write_all(template::render().as_bytes())?;
    Ok(())
}
