//! Builds an HNSW graph with hnsw_rs and freezes it into a `FrozenGraph` (`frozen_graph`).
//!
//! Inputs are validated by the caller (finite, right dimension, normalised for cosine), and
//! `m` is capped at [`crate::types::MAX_M`], so none of hnsw_rs's panics or its `exit` are
//! reachable. hnsw_rs is given doppel's own distance on padded rows: `1 - dot` clamped at 0
//! for cosine (it never sees a negative distance), squared L2 otherwise.

use std::time::Instant;

use hnsw_rs::prelude::{Distance, Hnsw};

use crate::aligned_rows::AlignedRows;
use crate::error::{Error, Result};
use crate::frozen_graph::{FrozenGraph, GraphParts, NONE};
use crate::neighbor_prune::reprune_layer0;
use crate::simd_dot::{ScoreFn, score_fn};
use crate::types::{BuildParams, Metric, PointId, Progress};

/// hnsw_rs's layer cap; `file_dump` and friends assume 16.
const MAX_LAYER: usize = 16;
/// Points handed to one `parallel_insert_slice` call (the unit of progress).
const INSERT_CHUNK: usize = 4096;

/// doppel's distance for hnsw_rs (lower = closer, never negative).
struct GraphDistance {
    score: ScoreFn,
    metric: Metric,
}

impl Distance<f32> for GraphDistance {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        let s = (self.score)(a, b);
        match self.metric {
            Metric::Cosine => (1.0 - s).max(0.0),
            Metric::L2 => -s,
        }
    }
}

/// Wall-clock split of a build.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BuildTimings {
    /// Seconds in hnsw_rs's parallel insert.
    pub graph_s: f64,
    /// Seconds converting to the compact layout (copy, re-prune, checks).
    pub freeze_s: f64,
}

/// Builds and freezes a graph from `ids` and their padded, validated rows.
pub(crate) fn build_frozen_graph(
    params: &BuildParams,
    ids: Vec<PointId>,
    rows: AlignedRows,
    progress: &dyn Progress,
) -> Result<(FrozenGraph, BuildTimings)> {
    let n = ids.len();
    progress.set_total(n as u64);
    if n == 0 {
        let empty = FrozenGraph::empty(params.dim, params.metric, params.m);
        return Ok((empty, BuildTimings::default()));
    }
    let mut timings = BuildTimings::default();
    let mut run = || build_graph(params, &rows, progress, &mut timings);
    let parts = if params.threads == 0 {
        run()
    } else {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(params.threads)
            .build()
            .map_err(|e| Error::ThreadPool(e.to_string()))?;
        pool.install(run)
    };
    let (levels, links0, upper_start, upper, entry) = parts;
    let checks = Instant::now();
    let frozen = FrozenGraph::from_parts(GraphParts {
        dim: params.dim,
        metric: params.metric,
        m: params.m,
        ids,
        vectors: rows,
        levels,
        links0,
        upper_start,
        upper,
        entry,
    })
    .map_err(|reason| Error::corrupt(format!("freeze produced an invalid graph: {reason}")))?;
    timings.freeze_s += checks.elapsed().as_secs_f64();
    Ok((frozen, timings))
}

type Graph = (Vec<u8>, Vec<u32>, Vec<u32>, Vec<u32>, u32);

fn build_graph(
    params: &BuildParams,
    rows: &AlignedRows,
    progress: &dyn Progress,
    timings: &mut BuildTimings,
) -> Graph {
    let started = Instant::now();
    let n = rows.len();
    let dist = GraphDistance {
        score: score_fn(params.metric),
        metric: params.metric,
    };
    let hnsw =
        Hnsw::<f32, GraphDistance>::new(params.m, n, MAX_LAYER, params.ef_construction, dist);
    let data: Vec<(&[f32], usize)> = (0..n).map(|i| (rows.row(i), i)).collect();
    for chunk in data.chunks(INSERT_CHUNK) {
        hnsw.parallel_insert_slice(&chunk.to_vec());
        progress.inc(chunk.len() as u64);
    }
    timings.graph_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let (levels, links0, upper_start, upper, entry) = freeze(&hnsw, params.m, n);
    drop(hnsw);
    // Measured on 200k × 64 (cosine, m=16, ef_c=200): re-pruning with the diversity rule and
    // filling the free slots with the pruned candidates lifts recall@10 at ef=32 from 0.956
    // to 0.971 for +1.3 s of freeze; pure RNG pruning (no fill) leaves lists short and loses recall.
    let links0 = reprune_layer0(rows, score_fn(params.metric), &links0, 2 * params.m, true);
    timings.freeze_s = started.elapsed().as_secs_f64();
    (levels, links0, upper_start, upper, entry)
}

/// Copies hnsw_rs's graph (Arc-linked points) into flat arrays indexed by data id.
///
/// hnsw_rs may list, at layer l, points whose own level is below l (and keeps links above a
/// point's level); those are dropped so every upper-layer walk stays on its layer.
fn freeze(hnsw: &Hnsw<f32, GraphDistance>, m: usize, n: usize) -> Graph {
    let (s0, su) = (1 + 2 * m, 1 + m);
    let mut levels = vec![0u8; n];
    for point in hnsw.get_point_indexation() {
        if let Some(l) = levels.get_mut(point.get_origin_id()) {
            *l = point.get_point_id().0;
        }
    }
    let mut links0 = vec![0u32; n * s0];
    let mut upper_lists: Vec<Vec<Vec<u32>>> = vec![Vec::new(); n];
    for point in hnsw.get_point_indexation() {
        let i = point.get_origin_id();
        if i >= n {
            continue;
        }
        let level = levels[i] as usize;
        let hood = point.get_neighborhood_id();
        for (layer, list) in hood.iter().enumerate().take(level + 1) {
            let cap = if layer == 0 { 2 * m } else { m };
            let mut ns: Vec<u32> = Vec::with_capacity(cap);
            for nb in list {
                let d = nb.d_id;
                if d < n
                    && d != i
                    && levels[d] as usize >= layer
                    && !ns.contains(&(d as u32))
                    && ns.len() < cap
                {
                    ns.push(d as u32);
                }
            }
            if layer == 0 {
                let b = &mut links0[i * s0..(i + 1) * s0];
                b[0] = ns.len() as u32;
                b[1..=ns.len()].copy_from_slice(&ns);
            } else {
                upper_lists[i].push(ns);
            }
        }
    }
    let mut upper_start = vec![NONE; n];
    let mut upper = Vec::new();
    for (i, lists) in upper_lists.into_iter().enumerate() {
        let level = levels[i] as usize;
        if level == 0 {
            continue;
        }
        upper_start[i] = upper.len() as u32;
        for layer in 1..=level {
            let mut block = vec![0u32; su];
            if let Some(ns) = lists.get(layer - 1) {
                block[0] = ns.len() as u32;
                block[1..=ns.len()].copy_from_slice(ns);
            }
            upper.extend_from_slice(&block);
        }
    }
    let entry = (0..n)
        .max_by_key(|&i| (levels[i], std::cmp::Reverse(i)))
        .unwrap_or(0) as u32;
    (levels, links0, upper_start, upper, entry)
}
