//! Which live node should own each logical shard: rendezvous (highest-random-weight)
//! hashing over the live node ids. Every node computes the same answer from the same
//! member set, and when a node joins or leaves only the shards it wins or held move.

use std::collections::BTreeSet;

/// FNV-1a over the node id and the shard, then a finaliser so nearby shards spread.
fn weight(node_id: &str, shard: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node_id.as_bytes().iter().chain(&shard.to_le_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// The node that should own `shard` among `nodes` (`None` when there are none).
pub fn desired_owner(nodes: &BTreeSet<String>, shard: u32) -> Option<&str> {
    nodes
        .iter()
        .max_by_key(|id| (weight(id, shard), std::cmp::Reverse(id.as_str())))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_joining_node_takes_only_shards_from_others_and_a_fair_share() {
        let two = set(&["shard-0", "shard-1"]);
        let three = set(&["shard-0", "shard-1", "shard-2"]);
        let mut moved = 0;
        let mut won = 0;
        for shard in 0..64 {
            let before = desired_owner(&two, shard).unwrap();
            let after = desired_owner(&three, shard).unwrap();
            if before != after {
                moved += 1;
                assert_eq!(after, "shard-2", "shards move only to the newcomer");
            }
            if after == "shard-2" {
                won += 1;
            }
        }
        assert_eq!(moved, won);
        assert!((12..=32).contains(&won), "a fair share, got {won} of 64");
        assert_eq!(desired_owner(&BTreeSet::new(), 3), None);
    }
}
