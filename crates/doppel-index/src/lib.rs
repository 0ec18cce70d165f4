//! doppel's vector index: HNSW graphs (hnsw_rs builds the upper layers, doppel layer 0) in a
//! compact serving layout, with a live delta, filters, tombstones and snapshots.
//!
//! A synchronous library (no async runtime). hnsw_rs builds the upper layers of the graph over
//! a sample; doppel inserts the other points into layer 0 over flat arrays it owns and searches
//! those with its own SIMD kernels, because hnsw_rs's Arc-per-node layout is several times
//! slower than hnswlib, to build and to search (see `shared/notes/hnsw_rs.md`).
//!
//! Words: the index's read-only HNSW layout is the *frozen graph* (`FrozenGraph` in
//! `frozen_graph`), written with its tombstones and delta to one *index file*. "Segment" is
//! reserved, in this crate and across doppel, for customer segments (RFM, CLV tiers, clusters);
//! the index never uses the word.
//!
//! Layout (each module imports only modules listed above it, never one that imports it back):
//! * `point_id` — [`PointId`], the external id of a point
//! * [`error`] — [`Error`] (vector errors wrap the one [`doppel_types::vector::VectorError`]) and [`Result`]
//! * [`bitset`] — [`Bitset`] for allowed sets and tombstones
//! * [`types`] — [`Metric`], [`Neighbor`], [`BuildParams`], [`SearchRequest`], [`IndexStats`], [`MemoryParts`], [`Progress`]
//! * `aligned_rows` — contiguous 64-byte aligned, zero-padded vector rows
//! * `simd_dot` — dot / L2 kernels (AVX-512, AVX2+FMA, scalar), picked at runtime; prefetch
//! * `visited` — per-thread epoch-tagged visited set and heaps (no per-query allocation)
//! * `id_map` — external id → node index (dense table or hash map)
//! * `graph_view` — a borrowed view of a graph in the compact layout and its search (greedy descent, layer-0 beam search with filters)
//! * `frozen_graph` — the compact frozen graph (owned arrays, checked on load) searched through `graph_view`
//! * `neighbor_prune` — the diversity (RNG) heuristic; layer-0 re-pruning after a build
//! * `upper_layers` — hnsw_rs builds the upper layers over the ~1/m of points that reach layer 1 (`max_layer = 16`)
//! * `layer0_insert` — doppel inserts every other point into layer 0, in parallel batches
//! * `reachability` — gives every node layer-0 links from the entry point's side after the re-prune
//! * [`graph_build`] — the build (upper layers, layer 0, re-prune) and the freeze into a frozen graph
//! * `int8_dot` — f32 query · int8 row kernels (AVX-512, AVX2+FMA, scalar)
//! * `int8_rows` — scalar-quantised rows for scans, [`ScanRow`] with its error bound
//! * `exact` — brute-force top-k
//! * [`top_k_merge`] — [`merge_top_k`], the exact k-way merge
//! * `live_delta` — points written since the last freeze
//! * `index_file` — the one-file format (header, crc32; frozen graph, tombstones, delta)
//! * [`vector_index`] — [`VectorIndex`]: frozen graph + delta + tombstones, merge, save/load

mod aligned_rows;
pub mod bitset;
pub mod error;
mod exact;
mod frozen_graph;
pub mod graph_build;
mod graph_view;
mod id_map;
mod index_file;
mod int8_dot;
mod int8_rows;
mod layer0_insert;
mod live_delta;
mod neighbor_prune;
mod point_id;
mod reachability;
mod simd_dot;
pub mod top_k_merge;
pub mod types;
mod upper_layers;
pub mod vector_index;
mod visited;

pub use bitset::Bitset;
pub use error::{Error, Result};
pub use graph_build::BuildTimings;
pub use index_file::{FORMAT_VERSION, IndexFile};
pub use int8_rows::ScanRow;

/// Checks `bytes` as the loader reads an index file (header, checksums, graph, bitsets,
/// delta): an error for anything malformed, never a panic. For fuzzing and tools.
pub fn check_index_file(bytes: &[u8]) -> Result<()> {
    index_file::decode(bytes, bytes.len() as u64, true).map(|_| ())
}
pub use point_id::PointId;
pub use simd_dot::dot;
pub use top_k_merge::merge_top_k;
pub use types::{
    BuildParams, IndexStats, MAX_DIM, MAX_K, MAX_M, MemoryParts, Metric, Neighbor, NoProgress,
    Progress, SearchRequest,
};
pub use vector_index::{
    EXACT_SCAN_MAX_ALLOWED, EXACT_SCAN_MAX_FRACTION, LiveRows, VectorIndex, use_exact_scan,
};
