//! Headless renderers over the control-room Snapshot: json, ndjson, text, markdown, and check exit codes.
