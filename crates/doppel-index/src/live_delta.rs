//! The live delta: points upserted since the last freeze, scanned exactly.

use std::collections::HashMap;

use crate::aligned_rows::AlignedRows;
use crate::point_id::PointId;

/// Recent points, each with its latest (normalised, padded) vector.
#[derive(Clone, Debug)]
pub(crate) struct LiveDelta {
    pub(crate) ids: Vec<PointId>,
    pub(crate) rows: AlignedRows,
    pos: HashMap<PointId, usize>,
}

impl LiveDelta {
    /// An empty delta for `dim` components.
    pub(crate) fn new(dim: usize) -> Self {
        Self {
            ids: Vec::new(),
            rows: AlignedRows::new(dim),
            pos: HashMap::new(),
        }
    }

    /// Number of points.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// The padded row of `id`, if present.
    pub(crate) fn get(&self, id: PointId) -> Option<&[f32]> {
        self.pos.get(&id).map(|&i| self.rows.row(i))
    }

    /// True if `id` is in the delta.
    pub(crate) fn contains(&self, id: PointId) -> bool {
        self.pos.contains_key(&id)
    }

    /// Inserts or replaces the vector of `id`.
    pub(crate) fn upsert(&mut self, id: PointId, row: &[f32]) {
        if let Some(&i) = self.pos.get(&id) {
            self.rows.set_row(i, row);
        } else {
            self.pos.insert(id, self.ids.len());
            self.ids.push(id);
            self.rows.push(row);
        }
    }

    /// Removes `id`; true if it was present.
    pub(crate) fn remove(&mut self, id: PointId) -> bool {
        let Some(i) = self.pos.remove(&id) else {
            return false;
        };
        self.ids.swap_remove(i);
        self.rows.swap_remove(i);
        if let Some(&moved) = self.ids.get(i) {
            self.pos.insert(moved, i);
        }
        true
    }

    /// Heap bytes held.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.rows.memory_bytes() + self.ids.capacity() * 4 + self.pos.capacity() * 16
    }
}
