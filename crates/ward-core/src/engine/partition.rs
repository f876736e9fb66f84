/// FNV-1a: stable across Rust versions and machines, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The partition an alert lives in, from its tenant and idempotency key, so one alert's retries,
/// DLQ entry and replays always stay in one Redis Cluster slot.
pub fn partition_for(tenant: &str, idempotency_key: &str, partitions: u16) -> u16 {
    if partitions <= 1 {
        return 0;
    }
    let mut bytes = Vec::with_capacity(tenant.len() + idempotency_key.len() + 1);
    bytes.extend_from_slice(tenant.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(idempotency_key.as_bytes());
    (fnv1a(&bytes) % u64::from(partitions)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_stable_and_in_range() {
        assert_eq!(partition_for("acme", "k1", 1), 0);
        let p = partition_for("acme", "k1", 8);
        assert!(p < 8);
        assert_eq!(p, partition_for("acme", "k1", 8));
        let spread: std::collections::HashSet<u16> = (0..200)
            .map(|i| partition_for("t", &format!("k{i}"), 8))
            .collect();
        assert_eq!(
            spread.len(),
            8,
            "200 keys should touch every one of 8 partitions"
        );
    }
}
