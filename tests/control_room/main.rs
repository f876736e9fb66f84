//! One test binary for the control room: views, actions, round trips, staleness and the terminal
//! under a pty. Each module was its own binary; grouped, the suite builds and links far fewer
//! times.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;
#[path = "../common/counting.rs"]
mod counting;

mod actions;
mod pty;
mod round_trips;
mod stale;
mod views;
