//! What the control room reads: Redis poller, Prometheus HTTP client, /metrics scraper, in-process source.
