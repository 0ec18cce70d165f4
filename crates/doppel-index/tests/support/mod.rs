//! Seeded clustered data and recall helpers shared by the integration tests.
#![allow(dead_code)]

use doppel_index::{
    BuildParams, Metric, Neighbor, NoProgress, PointId, SearchRequest, VectorIndex,
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rand_distr::{Distribution, Normal};

pub const DIM: usize = 48;
pub const N: usize = 6_000;
pub const K: usize = 10;

/// `n` points from a mixture of `clusters` Gaussians in `dim` dimensions.
pub fn clustered(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<f32> {
    // The centres depend only on the shape, so base points, queries and later upserts come
    // from the same clusters; `seed` picks the samples.
    let mut centre_rng = StdRng::seed_from_u64((clusters * 1_000 + dim) as u64);
    let mut rng = StdRng::seed_from_u64(seed);
    let centre = Normal::new(0.0f32, 1.0).unwrap_or_else(|e| panic!("{e}"));
    let noise = Normal::new(0.0f32, 0.35).unwrap_or_else(|e| panic!("{e}"));
    let centres: Vec<f32> = (0..clusters * dim)
        .map(|_| centre.sample(&mut centre_rng))
        .collect();
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = rng.random_range(0..clusters);
        for d in 0..dim {
            out.push(centres[c * dim + d] + noise.sample(&mut rng));
        }
    }
    out
}

pub fn build(metric: Metric) -> (VectorIndex, Vec<f32>) {
    let data = clustered(N, DIM, 40, 7);
    let ids: Vec<PointId> = (0..N as PointId).collect();
    let mut p = BuildParams::new(DIM, metric);
    p.ef_construction = 100;
    let index = VectorIndex::build(p, &ids, &data, &NoProgress).expect("build");
    (index, data)
}

pub fn queries(n: usize) -> Vec<Vec<f32>> {
    clustered(n, DIM, 40, 7_000_001)
        .chunks(DIM)
        .map(<[f32]>::to_vec)
        .collect()
}

/// Mean recall@k of `search` against `exact_search` over `queries`.
pub fn recall(
    index: &VectorIndex,
    queries: &[Vec<f32>],
    ef: usize,
    allowed: Option<&doppel_index::Bitset>,
) -> f64 {
    let mut hit = 0usize;
    let mut total = 0usize;
    for q in queries {
        let req = SearchRequest {
            query: q,
            k: K,
            ef,
            allowed,
        };
        let got = index.search(&req).expect("search");
        let want = index.exact_search(&req).expect("exact");
        assert!(got.len() <= K);
        assert_best_first(&got);
        total += want.len();
        hit += want
            .iter()
            .filter(|w| got.iter().any(|g| g.id == w.id))
            .count();
    }
    if total == 0 {
        1.0
    } else {
        hit as f64 / total as f64
    }
}

pub fn assert_best_first(v: &[Neighbor]) {
    for w in v.windows(2) {
        assert!(w[0].score >= w[1].score, "not best first: {w:?}");
    }
}
