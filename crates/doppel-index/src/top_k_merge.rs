//! Exact k-way merge of best-first neighbour lists (frozen graph and delta, shards).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::types::{Neighbor, best_first};

struct Head {
    n: Neighbor,
    list: usize,
    pos: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    // BinaryHeap pops the greatest: make the best neighbour the greatest.
    fn cmp(&self, other: &Self) -> Ordering {
        best_first(&other.n, &self.n).then(other.list.cmp(&self.list))
    }
}

/// Merges best-first lists into the best `k` overall, best first, ties by id ascending.
///
/// Each input must already be sorted best first (score descending, id ascending); duplicates
/// across lists are kept (callers merge disjoint id sets).
pub fn merge_top_k(lists: &[Vec<Neighbor>], k: usize) -> Vec<Neighbor> {
    let mut heap = BinaryHeap::with_capacity(lists.len());
    for (list, l) in lists.iter().enumerate() {
        if let Some(&n) = l.first() {
            heap.push(Head { n, list, pos: 0 });
        }
    }
    let total: usize = lists.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(k.min(total));
    while out.len() < k {
        let Some(head) = heap.pop() else { break };
        out.push(head.n);
        let next = head.pos + 1;
        if let Some(&n) = lists[head.list].get(next) {
            heap.push(Head {
                n,
                list: head.list,
                pos: next,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn equals_global_sort(
            lists in prop::collection::vec(
                prop::collection::vec((0u32..50, -100i32..100), 0..20), 0..6),
            k in 0usize..60,
        ) {
            let lists: Vec<Vec<Neighbor>> = lists.into_iter().map(|l| {
                let mut v: Vec<Neighbor> = l.into_iter()
                    .map(|(id, s)| Neighbor { id, score: s as f32 / 7.0 }).collect();
                v.sort_by(best_first);
                v
            }).collect();
            let mut all: Vec<Neighbor> = lists.iter().flatten().copied().collect();
            all.sort_by(best_first);
            all.truncate(k);
            prop_assert_eq!(merge_top_k(&lists, k), all);
        }
    }
}
