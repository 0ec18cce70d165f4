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
use crate::graph_view::{GraphArrays, GraphView};
use crate::id_map::IdMap;
use crate::simd_dot::{ScoreFn, score_fn};
use crate::types::{MemoryParts, Metric, Neighbor, PointId};
use crate::visited::Scratch;

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
        let mut graph = Self::from_parts_unindexed(p)?;
        if !graph.index_ids() {
            return Err("duplicate point id".into());
        }
        Ok(graph)
    }

    /// [`Self::from_parts`] without the id → node map: for an owner that renames the ids
    /// first and then calls [`Self::index_ids`] (a snapshot load: the map of the saved ids
    /// would be built only to be thrown away).
    pub(crate) fn from_parts_unindexed(p: GraphParts) -> Result<Self, String> {
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
        Ok(Self {
            metric: p.metric,
            m: p.m,
            ids: p.ids,
            vectors: p.vectors,
            levels: p.levels,
            links0: p.links0,
            upper_start: p.upper_start,
            upper: p.upper,
            entry: p.entry,
            by_id: IdMap::Dense(Vec::new()),
            score: score_fn(p.metric),
        })
    }

    /// (Re)builds the id → node map from the ids; false, leaving it as it was, when an id
    /// repeats.
    pub(crate) fn index_ids(&mut self) -> bool {
        match IdMap::new(&self.ids) {
            Some(map) => {
                self.by_id = map;
                true
            }
            None => false,
        }
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

    /// The graph as a borrowed view (what searches walk); only for a graph with nodes.
    #[inline(always)]
    fn view(&self) -> GraphView<'_> {
        debug_assert!(!self.ids.is_empty());
        // SAFETY: `from_parts` checked every link, every upper block and the entry point,
        // and the callers (`search`) only ask for the view of a non-empty graph.
        unsafe {
            GraphView::new_unchecked(GraphArrays {
                metric: self.metric,
                m: self.m,
                vectors: &self.vectors,
                levels: &self.levels,
                links0: &self.links0,
                upper_start: &self.upper_start,
                upper: &self.upper,
                entry: self.entry,
            })
        }
    }

    /// Approximate top-`k` of the padded `query` (breadth `ef`); only nodes with `keep(i)` are
    /// returned (all are traversed).
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
        let mut out: Vec<Neighbor> = self
            .view()
            .search(query, ef, scratch, keep)
            .into_iter()
            .map(|s| Neighbor {
                id: self.ids[s.idx as usize],
                score: s.score,
            })
            .collect();
        out.sort_by(crate::types::best_first);
        out.truncate(k);
        out
    }

    /// Heap bytes held, by part (bitsets and delta are not the graph's: zero here).
    pub(crate) fn memory_parts(&self) -> MemoryParts {
        MemoryParts {
            vectors: self.vectors.memory_bytes(),
            graph: self.levels.capacity()
                + self.links0.capacity() * 4
                + self.upper_start.capacity() * 4
                + self.upper.capacity() * 4,
            ids: self.ids.capacity() * 4 + self.by_id.memory_bytes(),
            bitsets: 0,
            delta: 0,
            scan_codes: 0,
        }
    }
}
