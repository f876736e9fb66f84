//! Ward: an alert-pipeline engine and the terminal control room that runs it.
//!
//! Dependency arrows point one way: `cli → ui/headless → actions/sources → store → ward-core`
//! (`ward-core`: `snapshot → engine → model`, re-exported here as `model`, `engine` and
//! `sources::snapshot`).

// Unit tests may unwrap; library code may not (see `[workspace.lints.clippy]` in Cargo.toml).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub use ward_core::{engine, model};

pub mod actions;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod headless;
pub mod pipeline;
pub mod sources;
pub mod store;
pub mod telemetry;
pub mod ui;
