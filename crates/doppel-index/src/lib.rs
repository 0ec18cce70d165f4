//! doppel's vector index: hnsw_rs-built graphs frozen into a compact serving layout, with a
//! live delta, filters, tombstones and snapshots.
//!
//! A synchronous library (no async runtime). hnsw_rs builds the graph; doppel then *freezes* it
//! into flat arrays it owns and searches those with its own SIMD kernels, because hnsw_rs's
//! Arc-per-node layout is several times slower than hnswlib (see `shared/notes/hnsw_rs.md`).
//!
//! Layout:
//! * [`types`] — ids, [`Metric`], [`Neighbor`], [`BuildParams`], [`SearchRequest`], [`IndexStats`], [`Progress`]
//! * [`error`] — [`Error`] and [`Result`]
//! * [`bitset`] — [`Bitset`] for allowed sets and tombstones
//! * `simd_dot` — dot / L2 kernels (AVX-512, AVX2+FMA, scalar), picked at runtime; prefetch
//! * `aligned_rows` — contiguous 64-byte aligned, zero-padded vector rows
//! * `visited` — per-thread epoch-tagged visited set and heaps (no per-query allocation)
//! * [`graph_build`] — hnsw_rs build (validated input, `max_layer = 16`) and the freeze into flat arrays
//! * `neighbor_prune` — layer-0 re-pruning with the diversity (RNG) heuristic after the freeze
//! * `id_map` — external id → node index (dense table or hash map)
//! * `frozen_segment` — the compact segment and its search (greedy descent, layer-0 beam search with filters)
//! * `exact` — brute-force top-k
//! * `live_delta` — points written since the last freeze
//! * [`vector_index`] — [`VectorIndex`]: segment + delta + tombstones, merge, save/load
//! * `segment_file` — the one-file format with header and crc32
//! * [`top_k_merge`] — [`merge_top_k`], the exact k-way merge

mod aligned_rows;
pub mod bitset;
pub mod error;
mod exact;
mod frozen_segment;
pub mod graph_build;
mod id_map;
mod live_delta;
mod neighbor_prune;
mod segment_file;
mod simd_dot;
pub mod top_k_merge;
pub mod types;
pub mod vector_index;
mod visited;

pub use bitset::Bitset;
pub use error::{Error, Result};
pub use graph_build::BuildTimings;
pub use segment_file::FORMAT_VERSION;
pub use simd_dot::dot;
pub use top_k_merge::merge_top_k;
pub use types::{
    BuildParams, IndexStats, MAX_DIM, MAX_K, MAX_M, Metric, Neighbor, NoProgress, PointId,
    Progress, SearchRequest,
};
pub use vector_index::{
    EXACT_SCAN_MAX_ALLOWED, EXACT_SCAN_MAX_FRACTION, VectorIndex, use_exact_scan,
};
