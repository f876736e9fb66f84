//! One test binary for the pipeline: ingest, routing, delivery to real receivers, grouping,
//! shedding, remediation, silences and the processes of `ward up`. Each module was its own binary;
//! grouped, the suite builds and links far fewer times.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;
#[path = "../delivery_common/mod.rs"]
mod delivery_common;
#[path = "../smtp_common/mod.rs"]
mod smtp_common;

mod am_api;
mod deliver_on_route;
mod delivery_slack;
mod delivery_smtp;
mod delivery_webhook;
mod e2e;
mod grouping;
mod ingest;
mod processes;
mod remediation;
mod shedding;
mod silences;
