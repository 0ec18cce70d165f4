//! doppel's part of a build: inserting every point outside the sample into layer 0.
//!
//! Points go in, in a seeded random order, by batches that grow with the graph (each at most
//! the size of the graph already built and at most [`MAX_BATCH_FRACTION`] of all points).
//! Each batch runs in two phases, so no lock is needed:
//! 1. **search**, in parallel and read-only: each point walks the current graph (upper layers
//!    from hnsw_rs, layer 0 as built so far) with breadth `ef_construction` and keeps `m`
//!    neighbours by the diversity rule, as hnswlib does for a new point;
//! 2. **link**: each point's list is written, and every chosen neighbour gets the reverse link;
//!    a list that would overflow `2m` is re-pruned by the diversity rule, in parallel per
//!    neighbour.
//!
//! Points of one batch do not see each other while they search; the growing batch sizes keep
//! that share small (ParlayANN's prefix-doubling build works the same way), and the later
//! re-prune (`neighbor_prune`) also considers every reverse link.

use rayon::prelude::*;

use crate::aligned_rows::AlignedRows;
use crate::graph_view::{GraphArrays, GraphView};
use crate::neighbor_prune::select_diverse;
use crate::simd_dot::score_fn;
use crate::types::{Metric, Progress};
use crate::upper_layers::{UpperLayers, splitmix64};
use crate::visited::with_scratch;

/// A batch holds at most this fraction of all points.
const MAX_BATCH_FRACTION: f64 = 0.02;
/// ... and never fewer than this many (when the graph is at least that big).
const MIN_BATCH: usize = 256;
/// Seed of the insertion order.
const ORDER_SEED: u64 = 0x006f_7264_6572;

/// Inserts every point outside `upper.sample` into `upper.links0`.
pub(crate) fn insert_layer0(
    rows: &AlignedRows,
    metric: Metric,
    m: usize,
    ef_construction: usize,
    upper: &mut UpperLayers,
    progress: &dyn Progress,
) {
    let n = rows.len();
    let order = insertion_order(n, &upper.sample);
    let max_batch = ((n as f64 * MAX_BATCH_FRACTION) as usize).max(MIN_BATCH);
    let score = score_fn(metric);
    let (s0, m0) = (1 + 2 * m, 2 * m);
    let mut built = upper.sample.len();
    let mut at = 0;
    while at < order.len() {
        let size = built.min(max_batch).max(1).min(order.len() - at);
        let batch = &order[at..at + size];
        // SAFETY: the sample's blocks hold links to sample points only; every other block is
        // either empty or was written by an earlier batch with links to inserted points; the
        // upper layers and the entry come from `upper_layers`, which keeps links on their layer.
        let view = unsafe {
            GraphView::new_unchecked(GraphArrays {
                metric,
                m,
                vectors: rows,
                levels: &upper.levels,
                links0: &upper.links0,
                upper_start: &upper.upper_start,
                upper: &upper.upper,
                entry: upper.entry,
            })
        };
        let chosen: Vec<Vec<u32>> = batch
            .par_iter()
            .map_init(
                || (Vec::new(), Vec::new(), Vec::new()),
                |(cand, kept, pruned), &p| {
                    let found = with_scratch(|s| {
                        view.search(rows.row(p as usize), ef_construction, s, |_| true)
                    });
                    cand.clear();
                    cand.extend(found.iter().map(|s| (s.score, s.idx)));
                    cand.sort_unstable_by(|a: &(f32, u32), b| {
                        b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
                    });
                    select_diverse(rows, score, cand, m, false, kept, pruned);
                    kept.iter().map(|&(_, c)| c).collect()
                },
            )
            .collect();
        let mut reverse: Vec<(u32, u32)> = Vec::with_capacity(size * m);
        for (&p, links) in batch.iter().zip(&chosen) {
            let b = &mut upper.links0[p as usize * s0..(p as usize + 1) * s0];
            b[0] = links.len() as u32;
            b[1..=links.len()].copy_from_slice(links);
            reverse.extend(links.iter().map(|&q| (q, p)));
        }
        reverse.sort_unstable();
        let groups: Vec<&[(u32, u32)]> = reverse.chunk_by(|a, b| a.0 == b.0).collect();
        let links0 = &upper.links0;
        let updated: Vec<(u32, Vec<u32>)> = groups
            .par_iter()
            .map_init(
                || (Vec::new(), Vec::new(), Vec::new()),
                |(cand, kept, pruned), group| {
                    let q = group[0].0;
                    let b = &links0[q as usize * s0..(q as usize + 1) * s0];
                    let current = &b[1..=b[0] as usize];
                    let added = group.iter().map(|&(_, p)| p);
                    if current.len() + group.len() <= m0 {
                        return (q, current.iter().copied().chain(added).collect());
                    }
                    let row = rows.row(q as usize);
                    cand.clear();
                    cand.extend(
                        current
                            .iter()
                            .copied()
                            .chain(added)
                            .map(|c| (score(row, rows.row(c as usize)), c)),
                    );
                    cand.sort_unstable_by(|a: &(f32, u32), b| {
                        b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
                    });
                    select_diverse(rows, score, cand, m0, false, kept, pruned);
                    (q, kept.iter().map(|&(_, c)| c).collect())
                },
            )
            .collect();
        for (q, links) in updated {
            let b = &mut upper.links0[q as usize * s0..(q as usize + 1) * s0];
            b[0] = links.len() as u32;
            b[1..=links.len()].copy_from_slice(&links);
        }
        built += size;
        at += size;
        progress.inc(size as u64);
    }
}

/// Every point outside `sample` (ascending), in a seeded random order.
fn insertion_order(n: usize, sample: &[u32]) -> Vec<u32> {
    let mut order = Vec::with_capacity(n - sample.len());
    let mut next_sample = sample.iter().peekable();
    for i in 0..n as u32 {
        if next_sample.peek() == Some(&&i) {
            next_sample.next();
        } else {
            order.push(i);
        }
    }
    for i in (1..order.len()).rev() {
        let j = (splitmix64(ORDER_SEED ^ i as u64) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}
