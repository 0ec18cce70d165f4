//! Exact (brute-force) top-k: a bounded heap fed by linear scans.

use std::collections::BinaryHeap;

use crate::types::{Neighbor, PointId, best_first};
use crate::visited::{Scored, Worst};

/// Keeps the best `k` (id, score) pairs seen; ties prefer the smaller id.
pub(crate) struct TopK {
    heap: BinaryHeap<Worst>,
    k: usize,
}

impl TopK {
    /// An empty collector for `k` results.
    pub(crate) fn new(k: usize) -> Self {
        Self {
            heap: BinaryHeap::with_capacity(k.min(4096) + 1),
            k,
        }
    }

    /// Offers one candidate.
    #[inline]
    pub(crate) fn push(&mut self, id: PointId, score: f32) {
        if self.k == 0 {
            return;
        }
        let s = Worst(Scored { score, idx: id });
        if self.heap.len() < self.k {
            self.heap.push(s);
        } else if let Some(mut top) = self.heap.peek_mut()
            && s < *top
        {
            *top = s;
        }
    }

    /// The results, best first.
    pub(crate) fn into_sorted(self) -> Vec<Neighbor> {
        let mut v: Vec<Neighbor> = self
            .heap
            .into_iter()
            .map(|w| Neighbor {
                id: w.0.idx,
                score: w.0.score,
            })
            .collect();
        v.sort_by(best_first);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_best_with_id_ties() {
        let mut t = TopK::new(3);
        for (id, s) in [(5, 1.0), (1, 3.0), (2, 1.0), (9, 2.0), (0, 0.5), (7, 1.0)] {
            t.push(id, s);
        }
        let ids: Vec<_> = t.into_sorted().iter().map(|n| n.id).collect();
        assert_eq!(ids, vec![1, 9, 2]);
    }
}
