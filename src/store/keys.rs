//! Every Redis key name Ward uses comes from here, chosen by profile. No key literals elsewhere.
//! Profile `ward` is Ward's own partitioned layout ([`KeySchema`]); profile `mutt` reads an
//! existing MUTT deployment through [`MuttKeys`], which names each of MUTT's keys explicitly.

use crate::config::mutt::MuttConfig;
use crate::model::mutt::MuttDlqName;
use crate::model::{Profile, QueueName};

/// Key names for one deployment. Profile `ward` is partitioned: every per-item key carries the
/// partition's hash tag (`ward:{p3}:q:delivery`) so a multi-key script stays in one Cluster slot;
/// global state (flags, config, audit) sits under its own tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySchema {
    profile: Profile,
    prefix: String,
    partitions: u16,
}

impl KeySchema {
    pub fn new(profile: Profile, prefix: &str, partitions: u16) -> Self {
        let prefix = if prefix.is_empty() { "ward" } else { prefix };
        Self {
            profile,
            prefix: prefix.to_owned(),
            partitions: partitions.max(1),
        }
    }

    pub fn ward(prefix: &str, partitions: u16) -> Self {
        Self::new(Profile::Ward, prefix, partitions)
    }

    pub fn profile(&self) -> Profile {
        self.profile
    }
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    pub fn partitions(&self) -> u16 {
        self.partitions
    }

    fn part(&self, partition: u16, rest: &str) -> String {
        format!("{}:{{p{partition}}}:{rest}", self.prefix)
    }
    fn global(&self, rest: &str) -> String {
        format!("{}:{{g}}:{rest}", self.prefix)
    }

    /// Waiting items (list of ids; pushed left, popped right).
    pub fn queue(&self, partition: u16, queue: &QueueName) -> String {
        self.part(partition, &format!("q:{queue}"))
    }
    /// Leased items (zset `<lease token>|<id>` → lease deadline ms): the member is the fence
    /// for ack/extend/retry/DLQ, the score what the janitor recovers by.
    pub fn leases(&self, partition: u16, queue: &QueueName) -> String {
        self.part(partition, &format!("lease:{queue}"))
    }
    /// Retries waiting for their due time (zset id → due ms).
    pub fn scheduled(&self, partition: u16, queue: &QueueName) -> String {
        self.part(partition, &format!("sched:{queue}"))
    }
    /// Dead-letter queue (zset, all scores 0, member = DlqMeta::order_key).
    pub fn dlq(&self, partition: u16, queue: &QueueName) -> String {
        self.part(partition, &format!("dlq:{queue}"))
    }
    /// Terminal dead list for entries the poison guard stopped (same layout as the DLQ).
    pub fn dead(&self, partition: u16, queue: &QueueName) -> String {
        self.part(partition, &format!("dead:{queue}"))
    }
    /// Stored items (hash id → `<attempts>:<replays>:<envelope JSON>`), shared by every queue
    /// of the partition; the counters are the store's, the replay count the poison guard's memory.
    pub fn bodies(&self, partition: u16) -> String {
        self.part(partition, "env")
    }
    /// DLQ and dead metadata (hash id → DlqMeta JSON).
    pub fn dlq_meta(&self, partition: u16) -> String {
        self.part(partition, "dlqmeta")
    }
    /// Which layout of these keys the data is in (string), checked when a store connects.
    pub fn layout(&self) -> String {
        self.global("layout")
    }
    /// Operator flags (hash name → FlagState JSON).
    pub fn flags(&self) -> String {
        self.global("flags")
    }
    /// Dynamic config (hash key → value).
    pub fn config(&self) -> String {
        self.global("config")
    }
    /// Pub/sub channel announcing config and flag changes.
    pub fn updates_channel(&self) -> String {
        self.global("updates")
    }
    /// Append-only audit log (stream).
    pub fn audit(&self) -> String {
        self.global("audit")
    }
    /// Worker heartbeats (hash worker id → WorkerBeat JSON).
    pub fn workers(&self) -> String {
        self.global("workers")
    }
    /// Breaker states (hash name → Breaker JSON), one per channel, shared by every worker.
    pub fn breakers(&self) -> String {
        self.global("breakers")
    }
    /// Breaker versions (hash name → integer), the compare-and-set guard of `breakers`.
    pub fn breaker_versions(&self) -> String {
        self.global("breaker_ver")
    }
    /// One idempotency record (string `sending:<hold>:<window end>:<call>:<slot>:<owner>`, with
    /// a Redis TTL): in its partition's slot, so one script may settle a partition's records.
    pub fn dedup_record(&self, key: &str) -> String {
        self.part(self.dedup_partition(key), &format!("dedup:{key}"))
    }
    /// The successes of one dedup claim call among a partition's records (bitmap: bit `slot`
    /// set once that claim was delivered, with a TTL); `call` is hex.
    pub fn dedup_done(&self, partition: u16, call: &str) -> String {
        self.part(partition, &format!("dedupok:{call}"))
    }
    /// The partition an idempotency record lives in: a stable hash of the key.
    pub fn dedup_partition(&self, key: &str) -> u16 {
        crate::engine::partition::partition_for("", key, self.partitions)
    }
    /// How one test alert ended (string of TestDelivery JSON, with a TTL).
    pub fn test_result(&self, id: &str) -> String {
        format!("{}:test:{id}", self.prefix)
    }
    /// Silences (hash id → Silence JSON), every state, kept until pruned after retention.
    pub fn silences(&self) -> String {
        self.global("silences")
    }
    /// Silences by end (zset id → ends_at ms): what pruning reads.
    pub fn silences_by_end(&self) -> String {
        self.global("silences:end")
    }
    /// Alerts the router saw (hash fingerprint → SeenAlert JSON), in the fingerprint's partition.
    pub fn seen_alerts(&self, partition: u16) -> String {
        self.part(partition, "seen")
    }
    /// When each seen alert was last seen (zset fingerprint → ms).
    pub fn seen_alerts_by_time(&self, partition: u16) -> String {
        self.part(partition, "seen:at")
    }
    /// The partition an alert's seen record lives in: a stable hash of its fingerprint.
    pub fn alert_partition(&self, fingerprint: &str) -> u16 {
        crate::engine::partition::partition_for("", fingerprint, self.partitions)
    }
    /// The partition an aggregation group (a target group id) lives in.
    pub fn group_partition(&self, id: &str) -> u16 {
        crate::engine::partition::partition_for("", id, self.partitions)
    }
    /// One aggregation group (hash: `v` version, `s` GroupState JSON).
    pub fn group(&self, id: &str) -> String {
        self.part(self.group_partition(id), &format!("ag:{id}"))
    }
    /// Groups by their next flush (zset id → ms), per partition: what flushers claim from.
    pub fn groups_due(&self, partition: u16) -> String {
        self.part(partition, "ag:due")
    }
    /// A group's notification log (string of NotifyLog JSON, with a TTL).
    pub fn notify_log(&self, id: &str) -> String {
        self.part(self.group_partition(id), &format!("nflog:{id}"))
    }
    /// One rate limiter's theoretical arrival time, in microseconds (string with a TTL).
    pub fn rate_limit(&self, name: &str) -> String {
        format!("{}:rl:{name}", self.prefix)
    }
    /// One partition's bucket of a limiter split over the partitions (ingest's per-tenant
    /// limits): in the partition's slot, so one script checks it and enqueues.
    pub fn rate_limit_in(&self, partition: u16, name: &str) -> String {
        self.part(partition, &format!("rl:{name}"))
    }
}

/// MUTT's keys (`--profile mutt`), each named by `[mutt]` in the config: MUTT's DLQ names do not
/// follow its queue names, so nothing here is derived from another key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MuttKeys {
    pub ingest_queue: String,
    pub alert_queue: String,
    pub alerter_dlq: String,
    pub moog_dlq: String,
    pub dead: String,
    pub alerter_processing_prefix: String,
    pub moog_processing_prefix: String,
    pub heartbeat_prefix: String,
    pub breaker_prefix: String,
    /// Breakers listed even before MUTT writes them.
    pub breakers: Vec<String>,
    pub config_prefix: String,
    pub config_channel: String,
    pub metrics_prefix: String,
    /// Ward's own audit stream: outside MUTT's namespace.
    pub audit: String,
}

impl MuttKeys {
    pub fn new(config: &MuttConfig) -> Self {
        Self {
            ingest_queue: config.ingest_queue.clone(),
            alert_queue: config.alert_queue.clone(),
            alerter_dlq: config.alerter_dlq.clone(),
            moog_dlq: config.moog_dlq.clone(),
            dead: config.dead_letter_queue.clone(),
            alerter_processing_prefix: config.alerter_processing_prefix.clone(),
            moog_processing_prefix: config.moog_processing_prefix.clone(),
            heartbeat_prefix: config.heartbeat_prefix.clone(),
            breaker_prefix: config.breaker_prefix.clone(),
            breakers: config.breakers.clone(),
            config_prefix: config.config_prefix.clone(),
            config_channel: config.config_channel.clone(),
            metrics_prefix: config.metrics_prefix.clone(),
            audit: config.audit_stream(),
        }
    }

    /// A DLQ list's key.
    pub fn dlq(&self, dlq: MuttDlqName) -> &str {
        match dlq {
            MuttDlqName::Alerter => &self.alerter_dlq,
            MuttDlqName::Moog => &self.moog_dlq,
            MuttDlqName::Dead => &self.dead,
        }
    }

    /// Where a replay of this DLQ pushes, as MUTT's own remediation does for the alerter's DLQ:
    /// the queue the failed stage reads. The dead list has no source.
    pub fn replay_target(&self, dlq: MuttDlqName) -> Option<&str> {
        match dlq {
            MuttDlqName::Alerter => Some(&self.ingest_queue),
            MuttDlqName::Moog => Some(&self.alert_queue),
            MuttDlqName::Dead => None,
        }
    }

    pub fn breaker_state(&self, name: &str) -> String {
        format!("{}{name}:state", self.breaker_prefix)
    }
    pub fn breaker_failures(&self, name: &str) -> String {
        format!("{}{name}:failures", self.breaker_prefix)
    }
    pub fn breaker_open_time(&self, name: &str) -> String {
        format!("{}{name}:open_time", self.breaker_prefix)
    }

    /// One dynamic config setting's key.
    pub fn config(&self, setting: &str) -> String {
        format!("{}{setting}", self.config_prefix)
    }

    /// The ingestor's counter for one UTC bucket: `1m:2026-12-06T20:15`, `1h:2026-12-06T20`,
    /// `24h:2026-12-06`.
    pub fn metric(&self, bucket: &str) -> String {
        format!("{}{bucket}", self.metrics_prefix)
    }

    /// A processing list's service, the queue its entries came from, and the heartbeat keys that
    /// prove its pod alive (`<prefix><service>:<pod>` and `<prefix><pod>`); `None` for a key
    /// that is not a processing list.
    pub fn processing_list(&self, key: &str) -> Option<(&'static str, &str, [String; 2])> {
        let (service, pod, queue) =
            if let Some(pod) = key.strip_prefix(self.alerter_processing_prefix.as_str()) {
                ("alerter", pod, self.ingest_queue.as_str())
            } else if let Some(pod) = key.strip_prefix(self.moog_processing_prefix.as_str()) {
                ("moog", pod, self.alert_queue.as_str())
            } else {
                return None;
            };
        if pod.is_empty() {
            return None;
        }
        let beats = [
            format!("{}{service}:{pod}", self.heartbeat_prefix),
            format!("{}{pod}", self.heartbeat_prefix),
        ];
        Some((service, queue, beats))
    }

    /// Prefixes of the keys MUTT creates per pod, per breaker and per setting.
    pub fn scan_prefixes(&self) -> [String; 5] {
        [
            self.alerter_processing_prefix.clone(),
            self.moog_processing_prefix.clone(),
            self.heartbeat_prefix.clone(),
            self.breaker_prefix.clone(),
            self.config_prefix.clone(),
        ]
    }
}

/// The longest prefix all of `names` share (on a char boundary).
pub fn common_prefix(names: &[String]) -> &str {
    let Some(first) = names.first() else {
        return "";
    };
    let mut end = first.len();
    for name in &names[1..] {
        end = first
            .char_indices()
            .zip(name.chars())
            .take_while(|((_, a), b)| a == b)
            .last()
            .map_or(0, |((i, a), _)| i + a.len_utf8())
            .min(end);
    }
    &first[..end]
}

/// One SCAN pattern matching every key under `prefixes` and as little else as a glob can say:
/// their shared prefix, then a class of the characters that follow it (`mutt:[chp]*` for
/// MUTT's config, circuit_breaker, heartbeat and processing keys), so the server filters out
/// the rest (metrics, unhandled counters, rate limits).
pub fn scan_pattern(prefixes: &[String]) -> String {
    let shared = common_prefix(prefixes);
    let mut next: Vec<char> = prefixes
        .iter()
        .filter_map(|p| p[shared.len()..].chars().next())
        .collect();
    next.sort_unstable();
    next.dedup();
    // A prefix that is the shared part itself leaves every key under it in play.
    if next.is_empty() || prefixes.iter().any(|p| p.len() == shared.len()) {
        return format!("{}*", glob_escape(shared));
    }
    let class: String = next
        .iter()
        .map(|c| {
            if matches!(c, ']' | '\\' | '^' | '-' | '[') {
                format!("\\{c}")
            } else {
                c.to_string()
            }
        })
        .collect();
    format!("{}[{class}]*", glob_escape(shared))
}

/// A key prefix as a literal in a SCAN pattern.
pub fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ward_keys_carry_one_hash_tag_per_partition() {
        let keys = KeySchema::ward("ward", 4);
        let q = QueueName::new("delivery").unwrap();
        assert_eq!(keys.queue(3, &q), "ward:{p3}:q:delivery");
        assert_eq!(keys.dlq(3, &q), "ward:{p3}:dlq:delivery");
        assert_eq!(keys.bodies(3), "ward:{p3}:env");
        assert_eq!(keys.flags(), "ward:{g}:flags");
        assert_eq!(
            keys.rate_limit_in(2, "ingest:a{b}"),
            "ward:{p2}:rl:ingest:a{b}",
            "the first hash tag decides the slot, whatever the tenant holds"
        );
        for key in [
            keys.queue(1, &q),
            keys.leases(1, &q),
            keys.bodies(1),
            keys.dlq_meta(1),
        ] {
            assert!(key.contains("{p1}"), "{key} must share partition 1's slot");
        }
    }

    #[test]
    fn mutt_keys_name_each_of_mutts_lists_explicitly() {
        let keys = MuttKeys::new(&MuttConfig::default());
        assert_eq!(keys.ingest_queue, "mutt:ingest_queue");
        assert_eq!(keys.alert_queue, "mutt:alert_queue");
        assert_eq!(keys.dlq(MuttDlqName::Alerter), "mutt:dlq:alerter");
        assert_eq!(keys.dlq(MuttDlqName::Moog), "mutt:dlq:moog");
        assert_eq!(keys.dlq(MuttDlqName::Dead), "mutt:dlq:dead");
        assert_eq!(
            keys.replay_target(MuttDlqName::Alerter),
            Some("mutt:ingest_queue")
        );
        assert_eq!(
            keys.replay_target(MuttDlqName::Moog),
            Some("mutt:alert_queue")
        );
        assert_eq!(keys.replay_target(MuttDlqName::Dead), None);
        assert_eq!(
            keys.breaker_open_time("moogsoft"),
            "mutt:circuit_breaker:moogsoft:open_time"
        );
        assert_eq!(
            keys.config("alerter_shed_mode"),
            "mutt:config:alerter_shed_mode"
        );
        assert_eq!(keys.audit, "ward-audit:log");
        assert_eq!(common_prefix(&keys.scan_prefixes()), "mutt:");
        assert_eq!(scan_pattern(&keys.scan_prefixes()), "mutt:[chp]*");
        assert_eq!(
            scan_pattern(&["a:".to_owned(), "a:b".to_owned()]),
            "a:*",
            "one prefix is the shared part: everything under it"
        );
        assert_eq!(
            common_prefix(&["ab:c".to_owned(), "ab:d".to_owned(), "x".to_owned()]),
            ""
        );
        assert_eq!(glob_escape("a*b[1]"), "a\\*b\\[1\\]");
        let (service, queue, beats) = keys
            .processing_list("mutt:processing:moog:moog-5c4b")
            .unwrap();
        assert_eq!((service, queue), ("moog", "mutt:alert_queue"));
        assert_eq!(
            beats,
            ["mutt:heartbeat:moog:moog-5c4b", "mutt:heartbeat:moog-5c4b"]
        );
        assert!(keys.processing_list("mutt:dlq:moog").is_none());
        // A renamed DLQ is used as named, never derived from a queue name.
        let renamed = MuttKeys::new(&MuttConfig {
            moog_dlq: "ops:forwarder_failures".to_owned(),
            ..MuttConfig::default()
        });
        assert_eq!(renamed.dlq(MuttDlqName::Moog), "ops:forwarder_failures");
    }
}
