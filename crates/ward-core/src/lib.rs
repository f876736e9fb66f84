//! Ward's core: the domain types, the pure engine logic and the control room's `Snapshot`, shared
//! by every layer of the `ward` crate. It depends on no I/O crate (no tokio, redis, reqwest or
//! ratatui; see its Cargo.toml), so nothing here can reach a socket, a terminal or a store.
//!
//! Dependency arrows point one way: `snapshot → engine → model`.

// Unit tests may unwrap; library code may not (see `[workspace.lints.clippy]`).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod engine;
pub mod model;
pub mod snapshot;
