//! The compact, read-only serving layout of an HNSW graph and its search.
//!
//! ```text
//! vectors      n rows × padded_dim f32, 64-byte aligned        (AlignedRows)
//! links0       n × (1 + 2m) u32: [count, neighbours...]         layer 0, fixed stride
//! upper_start  n u32: first block of the node in `upper`, or NONE
//! upper        per node with level L ≥ 1: L blocks of (1 + m) u32, layers 1..=L
//! levels       n u8; ids: n external ids; entry: node with the top level
//! ```

use crate::aligned_rows::AlignedRows;
use crate::id_map::IdMap;
#[cfg(target_arch = "x86_64")]
use crate::simd_dot::x86;
use crate::simd_dot::{Isa, ScoreFn, isa, prefetch_links, prefetch_row, score_fn};
use crate::types::{Metric, Neighbor, PointId};
use crate::visited::{Scored, Scratch, Worst};

/// Marks a node without upper layers in `upper_start`.
pub(crate) const NONE: u32 = u32::MAX;

/// A frozen HNSW graph (internal node indices are `0..len`).
pub(crate) struct FrozenGraph {
    pub(crate) metric: Metric,
    pub(crate) m: usize,
    pub(crate) ids: Vec<PointId>,
    pub(crate) vectors: AlignedRows,
    pub(crate) levels: Vec<u8>,
    pub(crate) links0: Vec<u32>,
    pub(crate) upper_start: Vec<u32>,
    pub(crate) upper: Vec<u32>,
    pub(crate) entry: u32,
    pub(crate) by_id: IdMap,
    score: ScoreFn,
}

/// Raw parts of a frozen graph, as produced by a build or read from a file.
pub(crate) struct GraphParts {
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

impl FrozenGraph {
    /// An empty graph.
    pub(crate) fn empty(dim: usize, metric: Metric, m: usize) -> Self {
        Self {
            metric,
            m,
            ids: Vec::new(),
            vectors: AlignedRows::new(dim),
            levels: Vec::new(),
            links0: Vec::new(),
            upper_start: Vec::new(),
            upper: Vec::new(),
            entry: 0,
            by_id: IdMap::Dense(Vec::new()),
            score: score_fn(metric),
        }
    }

    /// Checks every index in `p` so searches cannot go out of bounds; `Err` names the problem.
    pub(crate) fn from_parts(p: GraphParts) -> Result<Self, String> {
        let n = p.ids.len();
        let (s0, su) = (1 + 2 * p.m, 1 + p.m);
        if p.dim == 0 || p.vectors.len() != n || p.levels.len() != n || p.upper_start.len() != n {
            return Err("section lengths disagree with the point count".into());
        }
        if p.links0.len() != n * s0 {
            return Err("layer-0 adjacency has the wrong size".into());
        }
        if n > 0 && p.entry as usize >= n {
            return Err("entry point out of range".into());
        }
        let levels = &p.levels;
        // A link must point at a node that exists on the link's layer.
        let bad_link = |block: &[u32], cap: usize, layer: usize| {
            let c = block[0] as usize;
            c > cap
                || block[1..=c]
                    .iter()
                    .any(|&x| levels.get(x as usize).is_none_or(|&l| (l as usize) < layer))
        };
        if p.links0.chunks_exact(s0).any(|b| bad_link(b, 2 * p.m, 0)) {
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
            let blocks = p.upper[start..start + lv * su].chunks_exact(su);
            if blocks.enumerate().any(|(l, b)| bad_link(b, p.m, l + 1)) {
                return Err("upper-layer link out of range".into());
            }
        }
        if n > 0 && p.levels.iter().any(|&l| l > p.levels[p.entry as usize]) {
            return Err("entry point is not on the top level".into());
        }
        Self::from_parts_unchecked(p).ok_or_else(|| "duplicate point id".to_string())
    }

    fn from_parts_unchecked(p: GraphParts) -> Option<Self> {
        let by_id = IdMap::new(&p.ids)?;
        Some(Self {
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
        })
    }

    /// Number of nodes (including tombstoned ones).
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Internal index of an external id.
    pub(crate) fn internal(&self, id: PointId) -> Option<u32> {
        self.by_id.get(id)
    }

    /// Score of padded `query` against node `i`.
    #[inline(always)]
    pub(crate) fn score(&self, query: &[f32], i: u32) -> f32 {
        (self.score)(query, self.vectors.row(i as usize))
    }

    #[inline(always)]
    fn prefetch_node(&self, i: u32) {
        // SAFETY: as in `score_node`.
        prefetch_row(unsafe { self.vectors.row_unchecked(i as usize) });
    }

    #[inline(always)]
    fn layer0(&self, i: u32) -> &[u32] {
        let s = 1 + 2 * self.m;
        let start = i as usize * s;
        debug_assert!(start + s <= self.links0.len());
        // SAFETY: i < len (validated links), links0 holds len * s entries, and the count in
        // the block's first slot was checked to be ≤ 2m in `from_parts`.
        unsafe {
            let b = self.links0.as_ptr().add(start);
            std::slice::from_raw_parts(b.add(1), *b as usize)
        }
    }

    #[inline(always)]
    fn upper_links(&self, i: u32, layer: usize) -> &[u32] {
        let s = 1 + self.m;
        let start = self.upper_start[i as usize] as usize + (layer - 1) * s;
        let b = &self.upper[start..start + s];
        &b[1..=b[0] as usize]
    }

    /// Greedy walk from the entry point down to layer 1, to a local optimum on every layer.
    #[inline(always)]
    fn descend(&self, score_node: &impl Fn(u32) -> f32) -> Scored {
        let mut cur = Scored {
            idx: self.entry,
            score: score_node(self.entry),
        };
        let top = self.levels[self.entry as usize] as usize;
        for layer in (1..=top).rev() {
            loop {
                let mut improved = false;
                for &nb in self.upper_links(cur.idx, layer) {
                    let s = score_node(nb);
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
    /// (all are traversed). Dispatches once to a copy of the walk compiled for the CPU's SIMD
    /// level, so the distance kernel is inlined into the loop instead of called through a pointer.
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
        #[cfg(target_arch = "x86_64")]
        match isa() {
            // SAFETY: `isa()` reported the features these copies are compiled for.
            Isa::Avx512 => return unsafe { self.search_avx512(query, k, ef, scratch, keep) },
            // SAFETY: as above.
            Isa::Avx2 => return unsafe { self.search_avx2(query, k, ef, scratch, keep) },
            Isa::Scalar => {}
        }
        let f = self.score;
        self.walk(query, k, ef, scratch, keep, f)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn search_avx512(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        scratch: &mut Scratch,
        keep: impl Fn(u32) -> bool,
    ) -> Vec<Neighbor> {
        match self.metric {
            // SAFETY (both arms): this function only runs where avx512f is available, rows are
            // padded to multiples of 16 floats.
            Metric::Cosine => self.walk(query, k, ef, scratch, keep, |a, b| unsafe {
                x86::dot_avx512(a, b)
            }),
            Metric::L2 => self.walk(query, k, ef, scratch, keep, |a, b| unsafe {
                x86::neg_l2_avx512(a, b)
            }),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn search_avx2(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        scratch: &mut Scratch,
        keep: impl Fn(u32) -> bool,
    ) -> Vec<Neighbor> {
        match self.metric {
            // SAFETY (both arms): only runs where avx2 and fma are available.
            Metric::Cosine => self.walk(query, k, ef, scratch, keep, |a, b| unsafe {
                x86::dot_avx2(a, b)
            }),
            Metric::L2 => self.walk(query, k, ef, scratch, keep, |a, b| unsafe {
                x86::neg_l2_avx2(a, b)
            }),
        }
    }

    /// The walk itself: greedy descent, then hnswlib's layer-0 beam search.
    #[inline(always)]
    fn walk(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        scratch: &mut Scratch,
        keep: impl Fn(u32) -> bool,
        score: impl Fn(&[f32], &[f32]) -> f32,
    ) -> Vec<Neighbor> {
        // SAFETY: every link and the entry point were checked to be < len in `from_parts`.
        let score_node = |i: u32| score(query, unsafe { self.vectors.row_unchecked(i as usize) });
        let start = self.descend(&score_node);
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
            if let Some(next) = candidates.peek() {
                let s = 1 + 2 * self.m;
                prefetch_links(&self.links0[next.idx as usize * s..]);
            }
            let links = self.layer0(c.idx);
            if let Some(&first) = links.first() {
                self.prefetch_node(first);
            }
            for (j, &nb) in links.iter().enumerate() {
                if let Some(&next) = links.get(j + 1) {
                    self.prefetch_node(next);
                }
                if !visited.insert(nb) {
                    continue;
                }
                let s = score_node(nb);
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
            + self.by_id.memory_bytes()
    }
}
