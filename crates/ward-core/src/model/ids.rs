use std::cell::Cell;
use std::fmt;

use serde::{Deserialize, Serialize};

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A ULID: 48 bits of milliseconds then 80 random bits. Monotonic per thread: ids one thread
/// makes in the same millisecond increase, so a batch's ids sort in the order they were made.
pub fn new_ulid(now_ms: i64) -> String {
    const RANDOM_BITS: u128 = (1u128 << 80) - 1;
    thread_local! {
        static LAST: Cell<(u128, u128)> = const { Cell::new((u128::MAX, 0)) };
    }
    let ms = (now_ms.max(0) as u128) & ((1u128 << 48) - 1);
    let fresh = (u128::from(fastrand::u64(..)) << 16 | u128::from(fastrand::u16(..))) & RANDOM_BITS;
    let random = LAST.with(|last| {
        let (last_ms, last_random) = last.get();
        let random = if ms == last_ms && last_random < RANDOM_BITS {
            last_random + 1
        } else {
            fresh
        };
        last.set((ms, random));
        random
    });
    let mut value = ms << 80 | random;
    let mut out = [0u8; 26];
    for slot in out.iter_mut().rev() {
        *slot = CROCKFORD[(value & 31) as usize];
        value >>= 5;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

/// A ULID derived from a parent id and a salt: the same inputs always give the same id, with the
/// parent's time (or `fallback_ms`). Re-deriving after a crash therefore re-creates the same
/// item, which the store's idempotent enqueue skips.
pub fn derived_ulid(parent: &str, salt: &str, fallback_ms: i64) -> String {
    let mut hash: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for byte in parent.bytes().chain([0]).chain(salt.bytes()) {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    let ms = ulid_timestamp_ms(parent).unwrap_or(fallback_ms).max(0) as u128 & ((1u128 << 48) - 1);
    let mut value = ms << 80 | (hash & ((1u128 << 80) - 1));
    let mut out = [0u8; 26];
    for slot in out.iter_mut().rev() {
        *slot = CROCKFORD[(value & 31) as usize];
        value >>= 5;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

/// The creation time encoded in a ULID, or `None` when the text is not one (hand-written ids).
pub fn ulid_timestamp_ms(id: &str) -> Option<i64> {
    if id.len() != 26 {
        return None;
    }
    let mut value: u128 = 0;
    for byte in id.bytes().take(10) {
        let digit = CROCKFORD
            .iter()
            .position(|&c| c == byte.to_ascii_uppercase())?;
        value = value << 5 | digit as u128;
    }
    // 10 chars = 50 bits; the top 2 bits are padding.
    i64::try_from(value & ((1u128 << 48) - 1)).ok()
}

/// The id of one envelope; unique across the deployment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EnvelopeId(pub String);

impl EnvelopeId {
    pub fn generate(now_ms: i64) -> Self {
        Self(new_ulid(now_ms))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EnvelopeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for EnvelopeId {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// Who holds a lease: `user@host` style, plus a per-process suffix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WorkerId(pub String);

impl WorkerId {
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulid_round_trips_its_timestamp() {
        let ms = 1_795_558_031_728;
        let id = new_ulid(ms);
        assert_eq!(id.len(), 26);
        assert_eq!(ulid_timestamp_ms(&id), Some(ms));
        assert_eq!(ulid_timestamp_ms("not-a-ulid"), None);
    }

    #[test]
    fn ulids_made_in_one_millisecond_keep_their_order() {
        let ids: Vec<_> = (0..1000).map(|_| new_ulid(5_000)).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn derived_ulids_are_stable_and_keep_the_parent_time() {
        let parent = new_ulid(1_795_558_031_728);
        let a = derived_ulid(&parent, "slack-ops", 0);
        assert_eq!(a, derived_ulid(&parent, "slack-ops", 0));
        assert_ne!(a, derived_ulid(&parent, "email", 0));
        assert_eq!(ulid_timestamp_ms(&a), Some(1_795_558_031_728));
        assert_eq!(
            ulid_timestamp_ms(&derived_ulid("hand-written", "x", 42)),
            Some(42)
        );
    }

    #[test]
    fn ulids_sort_by_time() {
        let a = new_ulid(1_000);
        let b = new_ulid(2_000);
        assert!(a < b);
    }
}
