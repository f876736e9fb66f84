//! Every Redis key name Ward uses comes from here, chosen by profile. No key literals elsewhere.

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
        let prefix = match profile {
            Profile::Ward if prefix.is_empty() => "ward".to_owned(),
            Profile::Ward => prefix.to_owned(),
            Profile::Mutt => "mutt".to_owned(),
        };
        let partitions = match profile {
            Profile::Ward => partitions.max(1),
            Profile::Mutt => 1,
        };
        Self {
            profile,
            prefix,
            partitions,
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
        match self.profile {
            Profile::Ward => self.part(partition, &format!("q:{queue}")),
            Profile::Mutt => format!("mutt:{queue}_queue"),
        }
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
        match self.profile {
            Profile::Ward => self.part(partition, &format!("dlq:{queue}")),
            Profile::Mutt => format!("mutt:dlq:{queue}"),
        }
    }
    /// Terminal dead list for entries the poison guard stopped (same layout as the DLQ).
    pub fn dead(&self, partition: u16, queue: &QueueName) -> String {
        match self.profile {
            Profile::Ward => self.part(partition, &format!("dead:{queue}")),
            Profile::Mutt => "mutt:dlq:dead".to_owned(),
        }
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
    /// Dynamic config (hash key → value). MUTT keeps one string per key instead: `mutt:config:<key>`.
    pub fn config(&self) -> String {
        match self.profile {
            Profile::Ward => self.global("config"),
            Profile::Mutt => "mutt:config:".to_owned(),
        }
    }
    /// Pub/sub channel announcing config and flag changes.
    pub fn updates_channel(&self) -> String {
        match self.profile {
            Profile::Ward => self.global("updates"),
            Profile::Mutt => "mutt:config:updates".to_owned(),
        }
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
    /// One idempotency record (string `done:<expiry>` or `sending:<expiry>:<owner>`, with a
    /// Redis TTL): in its partition's slot, so one script may settle a partition's records.
    pub fn dedup_record(&self, key: &str) -> String {
        self.part(self.dedup_partition(key), &format!("dedup:{key}"))
    }
    /// The partition an idempotency record lives in: a stable hash of the key.
    pub fn dedup_partition(&self, key: &str) -> u16 {
        crate::engine::partition::partition_for("", key, self.partitions)
    }
    /// One rate limiter's theoretical arrival time, in microseconds (string with a TTL).
    pub fn rate_limit(&self, name: &str) -> String {
        format!("{}:rl:{name}", self.prefix)
    }
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
    fn mutt_profile_names_match_a_mutt_deployment() {
        let keys = KeySchema::new(Profile::Mutt, "ignored", 8);
        let q = QueueName::new("alert").unwrap();
        assert_eq!(keys.partitions(), 1);
        assert_eq!(keys.queue(0, &q), "mutt:alert_queue");
        assert_eq!(
            keys.dlq(0, &QueueName::new("moog").unwrap()),
            "mutt:dlq:moog"
        );
        assert_eq!(keys.dead(0, &q), "mutt:dlq:dead");
        assert_eq!(keys.updates_channel(), "mutt:config:updates");
    }
}
