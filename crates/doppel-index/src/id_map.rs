//! External id → internal node index: a dense table when ids are dense-ish, else a hash map.

use std::collections::HashMap;

use foldhash::fast::RandomState;

use crate::point_id::PointId;

const ABSENT: u32 = u32::MAX;

/// Maps external ids to node indices `0..n`.
pub(crate) enum IdMap {
    /// `table[id]` = node or ABSENT; used when the largest id < 2n + 1024 (one load per lookup,
    /// which keeps the exact scan of small allowed sets fast).
    Dense(Vec<u32>),
    /// Anything sparser (a shard's ids are the node's slots of the customers hashed to it,
    /// about one in shard-count spread over all of them), hashed
    /// with foldhash: no attacker chooses the ids, which are this process's own slots.
    Sparse(HashMap<PointId, u32, RandomState>),
}

impl IdMap {
    /// Builds the map; `None` if an id repeats.
    pub(crate) fn new(ids: &[PointId]) -> Option<Self> {
        let max = ids.iter().copied().max().map_or(0, |m| m as usize + 1);
        if max <= 2 * ids.len() + 1024 {
            let mut table = vec![ABSENT; max];
            for (i, &id) in ids.iter().enumerate() {
                let slot = &mut table[id as usize];
                if *slot != ABSENT {
                    return None;
                }
                *slot = i as u32;
            }
            Some(IdMap::Dense(table))
        } else {
            let mut map = HashMap::with_capacity_and_hasher(ids.len(), RandomState::default());
            for (i, &id) in ids.iter().enumerate() {
                if map.insert(id, i as u32).is_some() {
                    return None;
                }
            }
            Some(IdMap::Sparse(map))
        }
    }

    /// Node index of `id`.
    #[inline]
    pub(crate) fn get(&self, id: PointId) -> Option<u32> {
        match self {
            IdMap::Dense(t) => t.get(id as usize).copied().filter(|&i| i != ABSENT),
            IdMap::Sparse(m) => m.get(&id).copied(),
        }
    }

    /// Heap bytes held.
    pub(crate) fn memory_bytes(&self) -> usize {
        match self {
            IdMap::Dense(t) => t.capacity() * 4,
            IdMap::Sparse(m) => m.capacity() * 12,
        }
    }
}
