//! The compact, read-only serving layout of an HNSW graph and its search.
//!
//! ```text
//! vectors      n rows × padded_dim f32, 64-byte aligned        (AlignedRows)
//! links0       n × (1 + 2m) u32: [count, neighbours...]         layer 0, fixed stride
//! upper_start  n u32: first block of the node in `upper`, or NONE
//! upper        per node with level L ≥ 1: L blocks of (1 + m) u32, layers 1..=L
//! levels       n u8; ids: n external ids; entry: node with the top level
//! ```

use std::collections::HashMap;

use crate::aligned_rows::AlignedRows;
use crate::simd_dot::{ScoreFn, prefetch_row, score_fn};
use crate::types::{Metric, Neighbor, PointId};
use crate::visited::{Scored, Scratch, Worst};

/// Marks a node without upper layers in `upper_start`.
pub(crate) const NONE: u32 = u32::MAX;

/// A frozen HNSW segment (internal node indices are `0..len`).
pub(crate) struct FrozenSegment {
    pub(crate) dim: usize,
    pub(crate) metric: Metric,
    pub(crate) m: usize,
    pub(crate) ids: Vec<PointId>,
    pub(crate) vectors: AlignedRows,
    pub(crate) levels: Vec<u8>,
    pub(crate) links0: Vec<u32>,
    pub(crate) upper_start: Vec<u32>,
    pub(crate) upper: Vec<u32>,
    pub(crate) entry: u32,
    pub(crate) by_id: HashMap<PointId, u32>,
    score: ScoreFn,
}

/// Raw parts of a segment, as produced by a build or read from a file.
pub(crate) struct SegmentParts {
    pub(crate) dim: usize,
    pub(crate) metric: Metric,
    pub(crate) m: usize,
    pub(crate) ids: Vec<PointId>,
    pub(crate) vectors: AlignedRows,
    pub(crate) levels: Vec<u8>,
    pub(crate) links0: Vec<u32>,
    pub(crate) upper_start: Vec<u32>,
    pub(crate) upper: Vec<u32>,
    pub(crate) entry: u32,
}

impl FrozenSegment {
    /// An empty segment.
    pub(crate) fn empty(dim: usize, metric: Metric, m: usize) -> Self {
        Self::from_parts_unchecked(SegmentParts {
            dim,
            metric,
            m,
            ids: Vec::new(),
            vectors: AlignedRows::new(dim),
            levels: Vec::new(),
            links0: Vec::new(),
            upper_start: Vec::new(),
            upper: Vec::new(),
            entry: 0,
        })
    }

    /// Checks every index in `p` so searches cannot go out of bounds; `Err` names the problem.
    pub(crate) fn from_parts(p: SegmentParts) -> Result<Self, String> {
        let n = p.ids.len();
        let (s0, su) = (1 + 2 * p.m, 1 + p.m);
        if p.vectors.len() != n || p.levels.len() != n || p.upper_start.len() != n {
            return Err("section lengths disagree with the point count".into());
        }
        if p.links0.len() != n * s0 {
            return Err("layer-0 adjacency has the wrong size".into());
        }
        if n > 0 && p.entry as usize >= n {
            return Err("entry point out of range".into());
        }
        let bad_link = |block: &[u32], cap: usize| {
            let c = block[0] as usize;
            c > cap || block[1..=c].iter().any(|&x| x as usize >= n)
        };
        if p.links0.chunks_exact(s0).any(|b| bad_link(b, 2 * p.m)) {
            return Err("layer-0 link out of range".into());
        }
        for i in 0..n {
            let lv = p.levels[i] as usize;
            let st = p.upper_start[i];
            if lv == 0 {
                continue;
            }
            let start = st as usize;
            if st == NONE || start.checked_add(lv * su).is_none_or(|e| e > p.upper.len()) {
                return Err("upper adjacency out of range".into());
            }
            if p.upper[start..start + lv * su].chunks_exact(su).any(|b| bad_link(b, p.m)) {
                return Err("upper-layer link out of range".into());
            }
        }
        if n > 0 && p.levels.iter().any(|&l| l > p.levels[p.entry as usize]) {
            return Err("entry point is not on the top level".into());
        }
        let seg = Self::from_parts_unchecked(p);
        if seg.by_id.len() != n {
            return Err("duplicate point id".into());
        }
        Ok(seg)
    }

    fn from_parts_unchecked(p: SegmentParts) -> Self {
        let by_id = p.ids.iter().enumerate().map(|(i, &id)| (id, i as u32)).collect();
        Self {
            dim: p.dim,
            metric: p.metric,
            m: p.m,
            ids: p.ids,
            vectors: p.vectors,
            levels: p.levels,
            links0: p.links0,
            upper_start: p.upper_start,
            upper: p.upper,
            entry: p.entry,
            by_id,
            score: score_fn(p.metric),
        }
    }

    /// Number of nodes (including tombstoned ones).
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Internal index of an external id.
    pub(crate) fn internal(&self, id: PointId) -> Option<u32> {
        self.by_id.get(&id).copied()
    }

    /// Score of padded `query` against node `i`.
    #[inline(always)]
    pub(crate) fn score(&self, query: &[f32], i: u32) -> f32 {
        (self.score)(query, self.vectors.row(i as usize))
    }

    #[inline(always)]
    fn layer0(&self, i: u32) -> &[u32] {
        let s = 1 + 2 * self.m;
        let b = &self.links0[i as usize * s..(i as usize + 1) * s];
        &b[1..=b[0] as usize]
    }

    #[inline(always)]
    fn upper_links(&self, i: u32, layer: usize) -> &[u32] {
        let s = 1 + self.m;
        let start = self.upper_start[i as usize] as usize + (layer - 1) * s;
        let b = &self.upper[start..start + s];
        &b[1..=b[0] as usize]
    }

    /// Greedy walk from the entry point down to layer 1, to a local optimum on every layer.
    fn descend(&self, query: &[f32]) -> Scored {
        let mut cur = Scored {
            idx: self.entry,
            score: self.score(query, self.entry),
        };
        let top = self.levels[self.entry as usize] as usize;
        for layer in (1..=top).rev() {
            loop {
                let mut improved = false;
                for &nb in self.upper_links(cur.idx, layer) {
                    let s = self.score(query, nb);
                    if s > cur.score {
                        cur = Scored { idx: nb, score: s };
                        improved = true;
                    }
                }
                if !improved {
                    break;
                }
            }
        }
        cur
    }

    /// Approximate top-`ef` search for the padded `query`; only nodes with `keep(i)` are returned
    /// (all are traversed). Results are left in `scratch.results`; returns them best first.
    pub(crate) fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        scratch: &mut Scratch,
        keep: impl Fn(u32) -> bool,
    ) -> Vec<Neighbor> {
        if self.ids.is_empty() {
            return Vec::new();
        }
        let start = self.descend(query);
        let Scratch {
            visited,
            candidates,
            results,
            ..
        } = scratch;
        visited.reset(self.len());
        candidates.clear();
        results.clear();
        visited.insert(start.idx);
        candidates.push(start);
        if keep(start.idx) {
            results.push(Worst(start));
        }
        let mut bound = f32::NEG_INFINITY;
        while let Some(c) = candidates.pop() {
            // hnswlib's stop rule: the best open candidate is worse than the worst kept result.
            if c.score < bound && results.len() >= ef {
                break;
            }
            let links = self.layer0(c.idx);
            if let Some(&first) = links.first() {
                prefetch_row(self.vectors.row(first as usize));
            }
            for (j, &nb) in links.iter().enumerate() {
                if let Some(&next) = links.get(j + 1) {
                    prefetch_row(self.vectors.row(next as usize));
                }
                if !visited.insert(nb) {
                    continue;
                }
                let s = self.score(query, nb);
                if results.len() < ef || s > bound {
                    candidates.push(Scored { score: s, idx: nb });
                    if keep(nb) {
                        results.push(Worst(Scored { score: s, idx: nb }));
                        if results.len() > ef {
                            results.pop();
                        }
                    }
                    if results.len() >= ef
                        && let Some(w) = results.peek()
                    {
                        bound = w.0.score;
                    }
                }
            }
        }
        let mut out: Vec<Neighbor> = results
            .drain()
            .map(|w| Neighbor {
                id: self.ids[w.0.idx as usize],
                score: w.0.score,
            })
            .collect();
        out.sort_by(crate::types::best_first);
        out.truncate(k);
        out
    }

    /// Heap bytes held.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.vectors.memory_bytes()
            + self.ids.capacity() * 4
            + self.levels.capacity()
            + self.links0.capacity() * 4
            + self.upper_start.capacity() * 4
            + self.upper.capacity() * 4
            + self.by_id.capacity() * 12
    }
}
