//! One test binary for the pure engine through the public API: grouping (with proptest), time
//! intervals, matchers. Each module was its own binary; grouped, the suite builds and links far
//! fewer times.

mod grouping;
mod matchers;
mod timeinterval;
