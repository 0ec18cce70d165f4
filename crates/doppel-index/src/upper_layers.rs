//! hnsw_rs's part of a build: the graph over the points that reach layer 1.
//!
//! Every point draws its HNSW level as hnswlib does (`⌊−ln U / ln m⌋`), so about one point in
//! `m` reaches layer 1. hnsw_rs builds its graph over that sample only; its layer l becomes
//! doppel's layer l + 1 (hnsw_rs draws the sample's own levels with the same `1/ln m` scale, so
//! the level distribution is hnswlib's), and its layer-0 lists seed doppel's layer 0 among the
//! sample. `layer0_insert` then inserts every other point into layer 0 with doppel's own
//! kernels.
//!
//! hnsw_rs is given doppel's own distance on padded rows: `1 - dot` clamped at 0 for cosine
//! (it never sees a negative distance), squared L2 otherwise. Inputs are validated by the
//! caller and `m` is capped at [`crate::types::MAX_M`], so none of hnsw_rs's panics or its
//! `exit` are reachable.

use hnsw_rs::prelude::{Distance, Hnsw};

use crate::aligned_rows::AlignedRows;
use crate::frozen_graph::NONE;
use crate::neighbor_prune::select_diverse;
use crate::simd_dot::{ScoreFn, score_fn};
use crate::types::{Metric, Progress};

/// hnsw_rs's layer cap; `file_dump` and friends assume 16.
const MAX_LAYER: usize = 16;
/// Points handed to one `parallel_insert_slice` call (the unit of progress).
const INSERT_CHUNK: usize = 4096;
/// Seed of the level draw (builds are reproducible up to hnsw_rs's parallel insert).
const LEVEL_SEED: u64 = 0x6c65_7665_6c73;

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

/// The upper layers of a graph and the seed of its layer 0.
pub(crate) struct UpperLayers {
    /// Level of every point (0 for points outside the sample).
    pub(crate) levels: Vec<u8>,
    /// Layer-0 blocks (`[count, links..]`, stride `1 + 2m`): filled for the sample, empty
    /// (count 0) for every other point.
    pub(crate) links0: Vec<u32>,
    pub(crate) upper_start: Vec<u32>,
    pub(crate) upper: Vec<u32>,
    pub(crate) entry: u32,
    /// The sample (points of level ≥ 1), ascending.
    pub(crate) sample: Vec<u32>,
}

/// splitmix64: a uniform draw per (seed, index).
pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The points that reach layer 1: P = 1/m each, at least one.
fn draw_sample(n: usize, m: usize) -> Vec<u32> {
    let threshold = u64::MAX / m as u64;
    let mut sample: Vec<u32> = (0..n as u32)
        .filter(|&i| splitmix64(LEVEL_SEED ^ u64::from(i)) < threshold)
        .collect();
    if sample.is_empty() {
        sample.push(0);
    }
    sample
}

/// Builds the upper layers with hnsw_rs over the sample of `rows` (n ≥ 1).
pub(crate) fn build_upper_layers(
    rows: &AlignedRows,
    metric: Metric,
    m: usize,
    ef_construction: usize,
    progress: &dyn Progress,
) -> UpperLayers {
    let n = rows.len();
    let sample = draw_sample(n, m);
    let dist = GraphDistance {
        score: score_fn(metric),
        metric,
    };
    let hnsw = Hnsw::<f32, GraphDistance>::new(m, sample.len(), MAX_LAYER, ef_construction, dist);
    let data: Vec<(&[f32], usize)> = sample
        .iter()
        .enumerate()
        .map(|(local, &i)| (rows.row(i as usize), local))
        .collect();
    for chunk in data.chunks(INSERT_CHUNK) {
        hnsw.parallel_insert_slice(&chunk.to_vec());
        progress.inc(chunk.len() as u64);
    }
    let local = read_hnsw(&hnsw, m, sample.len());
    drop(hnsw);
    to_global(rows, metric, m, n, sample, local)
}

/// hnsw_rs's graph over the sample, in local indices (`0..sample.len()`).
struct LocalGraph {
    levels: Vec<u8>,
    /// Per point, one list per layer `0..=level`.
    lists: Vec<Vec<Vec<u32>>>,
    entry: u32,
}

/// Copies hnsw_rs's graph (Arc-linked points) into lists indexed by data id.
///
/// hnsw_rs may list, at layer l, points whose own level is below l (and keeps links above a
/// point's level); those are dropped so every upper-layer walk stays on its layer.
fn read_hnsw(hnsw: &Hnsw<f32, GraphDistance>, m: usize, n: usize) -> LocalGraph {
    let mut levels = vec![0u8; n];
    for point in hnsw.get_point_indexation() {
        if let Some(l) = levels.get_mut(point.get_origin_id()) {
            *l = point.get_point_id().0;
        }
    }
    let mut lists: Vec<Vec<Vec<u32>>> = vec![Vec::new(); n];
    for point in hnsw.get_point_indexation() {
        let i = point.get_origin_id();
        if i >= n {
            continue;
        }
        let level = levels[i] as usize;
        let hood = point.get_neighborhood_id();
        let mut per_layer = vec![Vec::new(); level + 1];
        for (layer, list) in hood.iter().enumerate().take(level + 1) {
            let cap = if layer == 0 { 2 * m } else { m };
            let ns = &mut per_layer[layer];
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
        }
        lists[i] = per_layer;
    }
    let entry = (0..n)
        .max_by_key(|&i| (levels[i], std::cmp::Reverse(i)))
        .unwrap_or(0) as u32;
    LocalGraph {
        levels,
        lists,
        entry,
    }
}

/// Maps the sample's graph to global indices one layer up; hnsw_rs's layer 0 (up to 2m links)
/// is re-pruned to m for doppel's layer 1 and also seeds doppel's layer 0.
fn to_global(
    rows: &AlignedRows,
    metric: Metric,
    m: usize,
    n: usize,
    sample: Vec<u32>,
    local: LocalGraph,
) -> UpperLayers {
    let (s0, su) = (1 + 2 * m, 1 + m);
    let score = score_fn(metric);
    let mut levels = vec![0u8; n];
    let mut links0 = vec![0u32; n * s0];
    let mut upper_start = vec![NONE; n];
    let mut upper = Vec::new();
    let (mut cand, mut kept, mut pruned) = (Vec::new(), Vec::new(), Vec::new());
    for (j, &g) in sample.iter().enumerate() {
        let g = g as usize;
        let level = local.levels[j] as usize + 1;
        levels[g] = level as u8;
        let lists = &local.lists[j];
        let base0: Vec<u32> = lists
            .first()
            .map(|l| l.iter().map(|&x| sample[x as usize]).collect())
            .unwrap_or_default();
        let b = &mut links0[g * s0..(g + 1) * s0];
        b[0] = base0.len() as u32;
        b[1..=base0.len()].copy_from_slice(&base0);
        cand.clear();
        let row = rows.row(g);
        cand.extend(base0.iter().map(|&c| (score(row, rows.row(c as usize)), c)));
        cand.sort_unstable_by(|a: &(f32, u32), b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        select_diverse(rows, score, &cand, m, false, &mut kept, &mut pruned);
        upper_start[g] = upper.len() as u32;
        for layer in 1..=level {
            let ns: Vec<u32> = if layer == 1 {
                kept.iter().map(|&(_, c)| c).collect()
            } else {
                lists
                    .get(layer - 1)
                    .map(|l| l.iter().map(|&x| sample[x as usize]).collect())
                    .unwrap_or_default()
            };
            let mut block = vec![0u32; su];
            block[0] = ns.len() as u32;
            block[1..=ns.len()].copy_from_slice(&ns);
            upper.extend_from_slice(&block);
        }
    }
    let entry = sample[local.entry as usize];
    UpperLayers {
        levels,
        links0,
        upper_start,
        upper,
        entry,
        sample,
    }
}
