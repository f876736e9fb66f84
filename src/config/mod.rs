//! Typed configuration: TOML file, `WARD_*` env and flags layered over defaults.
