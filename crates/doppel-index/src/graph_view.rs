//! A borrowed view of an HNSW graph in the compact layout, and its search.
//!
//! Both the frozen graph (`frozen_graph`) and the layer-0 builder (`layer0_insert`, which
//! searches the graph it is growing) walk graphs through this view, so the search is written
//! once: greedy descent over the upper layers, then hnswlib's layer-0 beam search, compiled
//! once per SIMD level so the distance kernel is inlined into the loop.

use crate::aligned_rows::AlignedRows;
#[cfg(target_arch = "x86_64")]
use crate::simd_dot::x86;
use crate::simd_dot::{Isa, ScoreFn, isa, prefetch_links, prefetch_row, score_fn};
use crate::types::Metric;
use crate::visited::{Scored, Scratch, Worst};

/// The arrays of a graph (layout in `frozen_graph`).
#[derive(Clone, Copy)]
pub(crate) struct GraphArrays<'a> {
    pub(crate) metric: Metric,
    pub(crate) m: usize,
    pub(crate) vectors: &'a AlignedRows,
    pub(crate) levels: &'a [u8],
    pub(crate) links0: &'a [u32],
    pub(crate) upper_start: &'a [u32],
    pub(crate) upper: &'a [u32],
    pub(crate) entry: u32,
}

/// A graph that upholds the invariants of [`GraphView::new_unchecked`].
#[derive(Clone, Copy)]
pub(crate) struct GraphView<'a> {
    g: GraphArrays<'a>,
    score: ScoreFn,
}

impl<'a> GraphView<'a> {
    /// Wraps `g` for searching.
    ///
    /// # Safety
    /// `g` must hold at least one node; `links0` holds `n × (1 + 2m)` words whose block counts
    /// are ≤ 2m and whose links are < n; every node of level L ≥ 1 has L blocks of `1 + m` words
    /// at `upper_start` with counts ≤ m and links to nodes of at least that layer; `entry` < n
    /// and is on the top level. Searches read rows and blocks without bounds checks.
    pub(crate) unsafe fn new_unchecked(g: GraphArrays<'a>) -> Self {
        debug_assert!(g.vectors.len() == g.levels.len() && (g.entry as usize) < g.levels.len());
        Self {
            score: score_fn(g.metric),
            g,
        }
    }

    #[inline(always)]
    fn prefetch_node(&self, i: u32) {
        // SAFETY: links are < n (the constructor's contract).
        prefetch_row(unsafe { self.g.vectors.row_unchecked(i as usize) });
    }

    #[inline(always)]
    fn layer0(&self, i: u32) -> &'a [u32] {
        let s = 1 + 2 * self.g.m;
        let start = i as usize * s;
        debug_assert!(start + s <= self.g.links0.len());
        // SAFETY: i < n, links0 holds n * s entries, and the count in the block's first slot
        // is ≤ 2m (the constructor's contract).
        unsafe {
            let b = self.g.links0.as_ptr().add(start);
            std::slice::from_raw_parts(b.add(1), *b as usize)
        }
    }

    #[inline(always)]
    fn upper_links(&self, i: u32, layer: usize) -> &'a [u32] {
        let s = 1 + self.g.m;
        let start = self.g.upper_start[i as usize] as usize + (layer - 1) * s;
        let b = &self.g.upper[start..start + s];
        &b[1..=b[0] as usize]
    }

    /// Greedy walk from the entry point down to layer 1, to a local optimum on every layer.
    #[inline(always)]
    fn descend(&self, score_node: &impl Fn(u32) -> f32) -> Scored {
        let mut cur = Scored {
            idx: self.g.entry,
            score: score_node(self.g.entry),
        };
        let top = self.g.levels[self.g.entry as usize] as usize;
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

    /// The best `ef` nodes with `keep(i)` for the padded `query`, unordered (all nodes are
    /// traversed). Dispatches once to a copy of the walk compiled for the CPU's SIMD level.
    pub(crate) fn search(
        &self,
        query: &[f32],
        ef: usize,
        scratch: &mut Scratch,
        keep: impl Fn(u32) -> bool,
    ) -> Vec<Scored> {
        #[cfg(target_arch = "x86_64")]
        match isa() {
            // SAFETY: `isa()` reported the features these copies are compiled for.
            Isa::Avx512 => return unsafe { self.search_avx512(query, ef, scratch, keep) },
            // SAFETY: as above.
            Isa::Avx2 => return unsafe { self.search_avx2(query, ef, scratch, keep) },
            Isa::Scalar => {}
        }
        let f = self.score;
        self.walk(query, ef, scratch, keep, f)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn search_avx512(
        &self,
        query: &[f32],
        ef: usize,
        scratch: &mut Scratch,
        keep: impl Fn(u32) -> bool,
    ) -> Vec<Scored> {
        match self.g.metric {
            // SAFETY (both arms): this function only runs where avx512f is available, rows are
            // padded to multiples of 16 floats.
            Metric::Cosine => self.walk(query, ef, scratch, keep, |a, b| unsafe {
                x86::dot_avx512(a, b)
            }),
            Metric::L2 => self.walk(query, ef, scratch, keep, |a, b| unsafe {
                x86::neg_l2_avx512(a, b)
            }),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn search_avx2(
        &self,
        query: &[f32],
        ef: usize,
        scratch: &mut Scratch,
        keep: impl Fn(u32) -> bool,
    ) -> Vec<Scored> {
        match self.g.metric {
            // SAFETY (both arms): only runs where avx2 and fma are available.
            Metric::Cosine => self.walk(query, ef, scratch, keep, |a, b| unsafe {
                x86::dot_avx2(a, b)
            }),
            Metric::L2 => self.walk(query, ef, scratch, keep, |a, b| unsafe {
                x86::neg_l2_avx2(a, b)
            }),
        }
    }

    /// The walk itself: greedy descent, then hnswlib's layer-0 beam search.
    #[inline(always)]
    fn walk(
        &self,
        query: &[f32],
        ef: usize,
        scratch: &mut Scratch,
        keep: impl Fn(u32) -> bool,
        score: impl Fn(&[f32], &[f32]) -> f32,
    ) -> Vec<Scored> {
        let vectors = self.g.vectors;
        // SAFETY: every link and the entry point are < n (the constructor's contract).
        let score_node = |i: u32| score(query, unsafe { vectors.row_unchecked(i as usize) });
        let start = self.descend(&score_node);
        let Scratch {
            visited,
            candidates,
            results,
            ..
        } = scratch;
        visited.reset(self.g.levels.len());
        candidates.clear();
        results.clear();
        visited.insert(start.idx);
        candidates.push(start);
        if keep(start.idx) {
            results.push(Worst(start));
        }
        let stride = 1 + 2 * self.g.m;
        let mut bound = f32::NEG_INFINITY;
        while let Some(c) = candidates.pop() {
            // hnswlib's stop rule: the best open candidate is worse than the worst kept result.
            if c.score < bound && results.len() >= ef {
                break;
            }
            if let Some(next) = candidates.peek() {
                prefetch_links(&self.g.links0[next.idx as usize * stride..]);
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
        results.drain().map(|w| w.0).collect()
    }
}
