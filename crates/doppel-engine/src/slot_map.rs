//! Old slot → new slot of a snapshot's ids, as a load renames them into this process's slots.

use std::collections::HashMap;

use doppel_index::PointId;
use foldhash::fast::RandomState;

/// Old slot → new slot, for one id table or for all of a version's shards at once (a
/// process's slots are one numbering, so the shards' old slots never collide).
///
/// Dense (an array by old slot) while the largest old slot stays below twice the rows
/// expected: the saving process's slots are dense unless erasures left holes. Hashed past
/// that, so a table with a large slot number allocates no more than its rows.
pub(crate) enum SlotMap {
    /// `by_old[old]` = new, or `UNMAPPED`; grown up to `limit` entries.
    Dense { by_old: Vec<PointId>, limit: usize },
    /// old → new.
    Sparse(HashMap<PointId, PointId, RandomState>),
}

/// No new slot (dense maps only: a real slot is below 4 billion ids).
const UNMAPPED: PointId = PointId::MAX;

impl SlotMap {
    /// An empty map for about `rows` rows.
    pub(crate) fn with_rows(rows: usize) -> Self {
        Self::Dense {
            by_old: Vec::new(),
            limit: rows.saturating_mul(2).saturating_add(1024),
        }
    }

    /// An empty map for `rows` rows whose largest old slot is `max_old`: dense only if
    /// that fits the same bound (a shard's slots are about one in shard-count of the
    /// node's, so a shard node's single table is usually hashed from the start).
    pub(crate) fn for_table(rows: usize, max_old: Option<PointId>) -> Self {
        let map = Self::with_rows(rows);
        match (&map, max_old) {
            (Self::Dense { limit, .. }, Some(max)) if max as usize >= *limit => Self::Sparse(
                HashMap::with_capacity_and_hasher(rows, RandomState::default()),
            ),
            _ => map,
        }
    }

    /// Maps `old` to `new`; false when `old` was mapped already (a slot listed twice).
    pub(crate) fn insert(&mut self, old: PointId, new: PointId) -> bool {
        let i = old as usize;
        if let Self::Dense { by_old, limit } = self
            && i >= by_old.len()
        {
            if i < *limit {
                by_old.resize(i + 1, UNMAPPED);
            } else {
                let mut table =
                    HashMap::with_capacity_and_hasher(*limit / 2, RandomState::default());
                table.extend(
                    by_old
                        .iter()
                        .enumerate()
                        .filter(|&(_, &new)| new != UNMAPPED)
                        .map(|(old, &new)| (old as PointId, new)),
                );
                *self = Self::Sparse(table);
            }
        }
        match self {
            Self::Dense { by_old, .. } => std::mem::replace(&mut by_old[i], new) == UNMAPPED,
            Self::Sparse(table) => table.insert(old, new).is_none(),
        }
    }

    /// The new slot of `old`, if it has one.
    pub(crate) fn get(&self, old: PointId) -> Option<PointId> {
        match self {
            Self::Dense { by_old, .. } => by_old
                .get(old as usize)
                .copied()
                .filter(|&new| new != UNMAPPED),
            Self::Sparse(table) => table.get(&old).copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_maps_grow_go_sparse_past_their_limit_and_refuse_a_slot_twice() {
        let mut map = SlotMap::with_rows(10);
        assert!(map.insert(5, 50));
        assert!(map.insert(0, 7));
        assert!(matches!(map, SlotMap::Dense { .. }));
        assert_eq!(map.get(5), Some(50));
        assert_eq!(map.get(0), Some(7));
        assert_eq!(map.get(3), None, "a hole in range");
        assert_eq!(map.get(1_000_000), None, "out of range");
        assert!(!map.insert(5, 51), "slot 5 listed twice");
        // Far past twice the rows expected (+ 1024): hashed from then on, nothing lost.
        assert!(map.insert(5_000, 1));
        assert!(matches!(map, SlotMap::Sparse(_)));
        assert_eq!(map.get(5_000), Some(1));
        assert_eq!(map.get(0), Some(7));
        assert_eq!(map.get(5), Some(51));
        assert_eq!(map.get(3), None);
        assert!(!map.insert(0, 8), "slot 0 listed twice, hashed");
    }
}
