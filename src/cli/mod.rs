//! Command-line definitions and one handler per subcommand; no business logic.
