//! One test binary for SLOs: rules checked by promtool, end to end with a real Prometheus,
//! Prometheus down, the SLO API. Each module was its own binary; grouped, the suite builds and
//! links far fewer times.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod e2e;
mod prometheus_api;
mod prometheus_down;
mod rules;
