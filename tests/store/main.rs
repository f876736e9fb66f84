//! One test binary for the store: the conformance suite and edge cases on memory, Redis and a Redis
//! Cluster, crash tests, the unreachable store, the million-entry replay, the MUTT profile. Each
//! module was its own binary; grouped, the suite builds and links far fewer times.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod conformance;
mod edge_cases;
mod mutt;
mod reliability;
mod replay_million;
mod unreachable;
