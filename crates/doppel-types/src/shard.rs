//! Customer → logical shard, by a hash that never changes between builds or platforms.
//!
//! `std::hash` is randomly seeded and may change between Rust releases, so the shard of a
//! customer is FNV-1a (64-bit) of the id's UTF-8 bytes modulo the shard count. The cluster
//! maps logical shards to nodes; moving a shard moves all its customers at once.

/// A logical shard number in `0..shard_count`.
pub type ShardId = u32;

/// Default number of logical shards. Fixed for the lifetime of a deployment.
pub const DEFAULT_SHARD_COUNT: u32 = 16;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of `bytes`.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    })
}

/// The logical shard that owns `customer_id`. `shard_count` must be > 0.
pub fn shard_of(customer_id: &str, shard_count: u32) -> ShardId {
    let count = u64::from(shard_count.max(1));
    // The remainder is < shard_count, which fits in u32.
    (stable_hash(customer_id.as_bytes()) % count) as ShardId
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_fnv1a_and_stable() {
        // Reference values of FNV-1a 64.
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(shard_of("customer-17", 64), shard_of("customer-17", 64));
    }

    #[test]
    fn shards_are_spread() {
        let mut counts = [0u32; 16];
        for i in 0..16_000 {
            counts[shard_of(&format!("c{i}"), 16) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }
}
