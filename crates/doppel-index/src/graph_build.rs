//! Builds an HNSW graph with hnsw_rs and freezes it into a [`FrozenSegment`].
//!
//! Inputs are validated by the caller (finite, right dimension, normalised for cosine), and
//! `m` is capped at [`crate::types::MAX_M`], so none of hnsw_rs's panics or its `exit` are
//! reachable. hnsw_rs is given doppel's own distance on padded rows: `1 - dot` clamped at 0
//! for cosine (it never sees a negative distance), squared L2 otherwise.

use hnsw_rs::prelude::{Distance, Hnsw};

use crate::aligned_rows::AlignedRows;
use crate::error::{Error, Result};
use crate::frozen_segment::{FrozenSegment, NONE, SegmentParts};
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

/// Builds and freezes a segment from `ids` and their padded, validated rows.
pub(crate) fn build_segment(
    params: &BuildParams,
    ids: Vec<PointId>,
    rows: AlignedRows,
    progress: &dyn Progress,
) -> Result<FrozenSegment> {
    let n = ids.len();
    progress.set_total(n as u64);
    if n == 0 {
        return Ok(FrozenSegment::empty(params.dim, params.metric, params.m));
    }
    let run = || build_graph(params, &rows, progress);
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
    FrozenSegment::from_parts(SegmentParts {
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
    .map_err(|reason| Error::corrupt(format!("freeze produced an invalid graph: {reason}")))
}

type Graph = (Vec<u8>, Vec<u32>, Vec<u32>, Vec<u32>, u32);

fn build_graph(params: &BuildParams, rows: &AlignedRows, progress: &dyn Progress) -> Graph {
    let n = rows.len();
    let dist = GraphDistance {
        score: score_fn(params.metric),
        metric: params.metric,
    };
    let hnsw = Hnsw::<f32, GraphDistance>::new(params.m, n, MAX_LAYER, params.ef_construction, dist);
    let data: Vec<(&[f32], usize)> = (0..n).map(|i| (rows.row(i), i)).collect();
    for chunk in data.chunks(INSERT_CHUNK) {
        hnsw.parallel_insert_slice(&chunk.to_vec());
        progress.inc(chunk.len() as u64);
    }
    freeze(&hnsw, params.m, n)
}

/// Copies hnsw_rs's graph (Arc-linked points) into flat arrays indexed by data id.
fn freeze(hnsw: &Hnsw<f32, GraphDistance>, m: usize, n: usize) -> Graph {
    let (s0, su) = (1 + 2 * m, 1 + m);
    let mut levels = vec![0u8; n];
    let mut links0 = vec![0u32; n * s0];
    let mut upper_lists: Vec<Vec<Vec<u32>>> = vec![Vec::new(); n];
    for point in hnsw.get_point_indexation() {
        let i = point.get_origin_id();
        if i >= n {
            continue;
        }
        let level = point.get_point_id().0 as usize;
        levels[i] = level as u8;
        let hood = point.get_neighborhood_id();
        for (layer, list) in hood.iter().enumerate().take(level + 1) {
            let cap = if layer == 0 { 2 * m } else { m };
            let mut ns: Vec<u32> = list
                .iter()
                .map(|nb| nb.d_id)
                .filter(|&d| d < n && d != i)
                .map(|d| d as u32)
                .collect();
            ns.dedup();
            ns.truncate(cap);
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
    let entry = (0..n).max_by_key(|&i| (levels[i], std::cmp::Reverse(i))).unwrap_or(0) as u32;
    (levels, links0, upper_start, upper, entry)
}
