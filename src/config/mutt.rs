//! `[mutt]`: how Ward reads and acts on an existing MUTT deployment (`--profile mutt`). Every
//! name defaults to what MUTT v2.5 uses; a deployment that renamed a list through MUTT's own
//! environment variables (`INGEST_QUEUE_NAME`, `ALERTER_DLQ_NAME`, …) renames it here.

use serde::{Deserialize, Serialize};

/// `[mutt]`: MUTT's key map, named key by key (nothing is derived from another name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MuttConfig {
    /// The ingestor's queue, read by the alerter (`INGEST_QUEUE_NAME`).
    pub ingest_queue: String,
    /// The alerter's output, read by the forwarder (`ALERT_QUEUE_NAME`).
    pub alert_queue: String,
    /// The alerter's DLQ (poison and shed events; `ALERTER_DLQ_NAME`); replays to `ingest_queue`.
    pub alerter_dlq: String,
    /// The forwarder's DLQ (retries exhausted; `MOOG_DLQ_NAME`); replays to `alert_queue`.
    pub moog_dlq: String,
    /// The terminal dead list (`DEAD_LETTER_QUEUE`).
    pub dead_letter_queue: String,
    /// Prefix of the alerter's processing lists, one per pod (`ALERTER_PROCESSING_LIST_PREFIX`).
    pub alerter_processing_prefix: String,
    /// Prefix of the forwarder's processing lists (`MOOG_PROCESSING_LIST_PREFIX`).
    pub moog_processing_prefix: String,
    /// Prefix of every pod heartbeat (`mutt:heartbeat:<service>:<pod>` or `mutt:heartbeat:<pod>`).
    pub heartbeat_prefix: String,
    /// Prefix of the circuit breakers' keys (`<prefix><name>:state|failures|open_time`).
    pub breaker_prefix: String,
    /// Breakers shown even before MUTT first writes them.
    pub breakers: Vec<String>,
    /// MUTT's `CIRCUIT_BREAKER_TIMEOUT`: seconds from open_time until MUTT half-opens the breaker.
    pub breaker_timeout_s: u64,
    /// Prefix of the dynamic config keys, one string per setting.
    pub config_prefix: String,
    /// Pub/sub channel MUTT's services listen on for config changes.
    pub config_channel: String,
    /// Prefix of the ingestor's counters (`<prefix>1m:<YYYY-MM-DDTHH:MM>`, `1h:`, `24h:`).
    pub metrics_prefix: String,
    /// Where Ward keeps its own audit of actions on MUTT: the stream `<audit_prefix>log`. Never
    /// inside MUTT's namespace.
    pub audit_prefix: String,
    /// MUTT's `ALERTER_MAX_RETRIES`: the alerter dead-letters an event whose `_retry_count` is over it.
    pub alerter_max_retries: u32,
    /// MUTT's `MOOG_MAX_RETRIES`: the forwarder dead-letters an alert whose `_moog_retry_count` is over it.
    pub moog_max_retries: u32,
}

impl Default for MuttConfig {
    fn default() -> Self {
        Self {
            ingest_queue: "mutt:ingest_queue".to_owned(),
            alert_queue: "mutt:alert_queue".to_owned(),
            alerter_dlq: "mutt:dlq:alerter".to_owned(),
            moog_dlq: "mutt:dlq:moog".to_owned(),
            dead_letter_queue: "mutt:dlq:dead".to_owned(),
            alerter_processing_prefix: "mutt:processing:alerter:".to_owned(),
            moog_processing_prefix: "mutt:processing:moog:".to_owned(),
            heartbeat_prefix: "mutt:heartbeat:".to_owned(),
            breaker_prefix: "mutt:circuit_breaker:".to_owned(),
            breakers: vec!["moogsoft".to_owned()],
            breaker_timeout_s: 300,
            config_prefix: "mutt:config:".to_owned(),
            config_channel: "mutt:config:updates".to_owned(),
            metrics_prefix: "mutt:metrics:".to_owned(),
            audit_prefix: "ward-audit:".to_owned(),
            alerter_max_retries: 3,
            moog_max_retries: 5,
        }
    }
}

impl MuttConfig {
    pub(super) fn validate(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, message: String| Err((format!("mutt.{key}"), message));
        let names = [
            ("ingest_queue", &self.ingest_queue),
            ("alert_queue", &self.alert_queue),
            ("alerter_dlq", &self.alerter_dlq),
            ("moog_dlq", &self.moog_dlq),
            ("dead_letter_queue", &self.dead_letter_queue),
            ("alerter_processing_prefix", &self.alerter_processing_prefix),
            ("moog_processing_prefix", &self.moog_processing_prefix),
            ("heartbeat_prefix", &self.heartbeat_prefix),
            ("breaker_prefix", &self.breaker_prefix),
            ("config_prefix", &self.config_prefix),
            ("config_channel", &self.config_channel),
            ("metrics_prefix", &self.metrics_prefix),
            ("audit_prefix", &self.audit_prefix),
        ];
        for (key, value) in names {
            if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return bad(
                    key,
                    format!("must be a Redis key name without spaces, got {value:?}"),
                );
            }
            if value.contains(['*', '?', '[']) {
                return bad(
                    key,
                    format!("must not contain glob characters (* ? [), got {value:?}"),
                );
            }
        }
        let lists = [
            &self.ingest_queue,
            &self.alert_queue,
            &self.alerter_dlq,
            &self.moog_dlq,
            &self.dead_letter_queue,
        ];
        for (i, a) in lists.iter().enumerate() {
            if lists[i + 1..].contains(a) {
                return bad(
                    "ingest_queue",
                    format!("{a:?} is named twice among the queues and DLQs"),
                );
            }
        }
        // Ward's audit must never land among MUTT's keys, nor in their namespace (`mutt:`).
        let namespace = self
            .ingest_queue
            .split_once(':')
            .map_or(self.ingest_queue.as_str(), |(ns, _)| ns);
        if self.audit_prefix.split(':').next() == Some(namespace) {
            return bad(
                "audit_prefix",
                format!(
                    "{:?} is inside MUTT's namespace {namespace:?}: Ward's audit must stay out of MUTT's keys",
                    self.audit_prefix
                ),
            );
        }
        for (key, prefix) in names.iter().take(names.len() - 1) {
            if self.audit_prefix.starts_with(prefix.as_str())
                || prefix.starts_with(&self.audit_prefix)
            {
                return bad(
                    "audit_prefix",
                    format!(
                        "{:?} overlaps mutt.{key} ({prefix:?}): Ward's audit must stay out of MUTT's keys",
                        self.audit_prefix
                    ),
                );
            }
        }
        if self
            .breakers
            .iter()
            .any(|b| b.is_empty() || b.contains(':'))
        {
            return bad("breakers", "each breaker is a name without ':'".to_owned());
        }
        if self.breaker_timeout_s == 0 {
            return bad("breaker_timeout_s", "must be at least 1".to_owned());
        }
        Ok(())
    }

    /// Ward's audit stream on a MUTT Redis: the one key Ward ever adds there.
    pub fn audit_stream(&self) -> String {
        format!("{}log", self.audit_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_name_mutts_keys() {
        let config = MuttConfig::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.audit_stream(), "ward-audit:log");
    }

    #[test]
    fn an_audit_prefix_inside_mutts_namespace_is_refused() {
        let config = MuttConfig {
            audit_prefix: "mutt:config:ward".to_owned(),
            ..MuttConfig::default()
        };
        let (key, message) = config.validate().unwrap_err();
        assert_eq!(key, "mutt.audit_prefix");
        assert!(message.contains("namespace"), "{message}");
    }

    #[test]
    fn a_list_named_twice_is_refused() {
        let config = MuttConfig {
            moog_dlq: "mutt:dlq:alerter".to_owned(),
            ..MuttConfig::default()
        };
        assert!(config.validate().is_err());
    }
}
