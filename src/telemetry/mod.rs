//! Prometheus registry and /metrics, JSONL event log, audit record helpers.
