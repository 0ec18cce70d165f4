//! Plain data types of the index API: ids, metric, neighbours, parameters, requests, stats.

use serde::{Deserialize, Serialize};

use crate::bitset::Bitset;
use crate::error::{Error, Result};
pub use crate::point_id::PointId;

/// Largest `m` accepted (hnsw_rs exits the process above 256; layer 0 keeps `2 * m` links).
pub const MAX_M: usize = 128;
/// Largest `k` a single search may ask for; bigger audiences use
/// `VectorIndex::for_each_live` (not linked: this module sits below `vector_index`).
pub const MAX_K: usize = 100_000;
/// Largest dimension accepted.
pub const MAX_DIM: usize = 65_536;

/// Similarity measure of an index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Metric {
    /// Cosine similarity: vectors and queries are normalised by the index; score = dot product.
    Cosine,
    /// Euclidean distance; score = minus the squared distance.
    L2,
}

impl Metric {
    pub(crate) fn code(self) -> u8 {
        match self {
            Metric::Cosine => 0,
            Metric::L2 => 1,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Metric::Cosine),
            1 => Some(Metric::L2),
            _ => None,
        }
    }
}

/// One search hit. A HIGHER score is closer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Neighbor {
    /// The point's id.
    pub id: PointId,
    /// Cosine: dot product of normalised vectors; L2: minus the squared distance.
    pub score: f32,
}

/// Orders neighbours best first, ties by id ascending.
pub(crate) fn best_first(a: &Neighbor, b: &Neighbor) -> std::cmp::Ordering {
    b.score.total_cmp(&a.score).then(a.id.cmp(&b.id))
}

/// Parameters of an index build.
#[derive(Clone, Debug)]
pub struct BuildParams {
    /// Vector dimension.
    pub dim: usize,
    /// Similarity measure.
    pub metric: Metric,
    /// Links per node on the upper layers (layer 0 keeps `2 * m`), 2..=[`MAX_M`].
    pub m: usize,
    /// Candidate list size during construction (≥ 1).
    pub ef_construction: usize,
    /// Build threads; 0 = all cores.
    pub threads: usize,
}

impl BuildParams {
    /// Defaults: m = 16, ef_construction = 200, all cores.
    pub fn new(dim: usize, metric: Metric) -> Self {
        Self {
            dim,
            metric,
            m: 16,
            ef_construction: 200,
            threads: 0,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.dim == 0 || self.dim > MAX_DIM {
            return Err(Error::invalid("dim", format!("must be in 1..={MAX_DIM}")));
        }
        if !(2..=MAX_M).contains(&self.m) {
            return Err(Error::invalid("m", format!("must be in 2..={MAX_M}")));
        }
        if self.ef_construction == 0 || self.ef_construction > 10_000 {
            return Err(Error::invalid("ef_construction", "must be in 1..=10000"));
        }
        Ok(())
    }
}

/// One k-nearest-neighbour query.
#[derive(Clone, Copy, Debug)]
pub struct SearchRequest<'a> {
    /// The query vector (normalised by the index for cosine).
    pub query: &'a [f32],
    /// Number of neighbours wanted, 1..=[`MAX_K`].
    pub k: usize,
    /// Search breadth; raised to `k` when smaller.
    pub ef: usize,
    /// Only ids in this set may be returned (they are still traversed in the graph).
    pub allowed: Option<&'a Bitset>,
}

/// Size and shape of an index.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexStats {
    /// Live points (frozen and not deleted/superseded, plus delta).
    pub len: usize,
    /// Tombstoned copies in the frozen graph (deleted or superseded by the delta).
    pub deleted: usize,
    /// Points in the live delta.
    pub delta_len: usize,
    /// Vector dimension.
    pub dim: usize,
    /// Similarity measure.
    pub metric: Metric,
    /// Links per node on the upper layers.
    pub m: usize,
    /// Construction breadth.
    pub ef_construction: usize,
    /// Approximate heap bytes held by the index (`memory.total()`).
    pub memory_bytes: usize,
    /// The same bytes by part.
    pub memory: MemoryParts,
}

/// Heap bytes of an index by part (allocator overhead not counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryParts {
    /// Vector rows of the frozen graph (padded to 16 floats).
    pub vectors: usize,
    /// HNSW adjacency: layer-0 and upper-layer links, levels, upper-layer offsets.
    pub graph: usize,
    /// External ids and the id → node table.
    pub ids: usize,
    /// Tombstones.
    pub bitsets: usize,
    /// The live delta (rows, ids, positions).
    pub delta: usize,
    /// Int8 codes and scales of the frozen rows (when scans are quantised).
    pub scan_codes: usize,
}

impl MemoryParts {
    /// Sum of the parts.
    pub fn total(&self) -> usize {
        self.vectors + self.graph + self.ids + self.bitsets + self.delta + self.scan_codes
    }

    /// Adds `other` part by part.
    pub fn add(&mut self, other: &MemoryParts) {
        self.vectors += other.vectors;
        self.graph += other.graph;
        self.ids += other.ids;
        self.bitsets += other.bitsets;
        self.delta += other.delta;
        self.scan_codes += other.scan_codes;
    }
}

/// Receives progress of long jobs (build, merge).
pub trait Progress: Sync {
    /// Announces the total amount of work.
    fn set_total(&self, total: u64);
    /// Reports `n` more units done.
    fn inc(&self, n: u64);
}

/// A [`Progress`] that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn set_total(&self, _total: u64) {}
    fn inc(&self, _n: u64) {}
}
