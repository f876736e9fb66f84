//! One test binary for headless use: the status document, the CLI, the DLQ and silence subcommands,
//! configuration. Each module was its own binary; grouped, the suite builds and links far fewer
//! times.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod cli;
mod config;
mod dlq_cli;
mod silences_cli;
mod status;
