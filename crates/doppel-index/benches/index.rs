//! criterion benches of the index: build, freeze (via merge), search ef sweep, filtered search, load.
//! Small seeded data (20k × 64 clustered, cosine) so a run takes a few minutes on 2 cores.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_main};
use doppel_index::{Bitset, BuildParams, Metric, NoProgress, PointId, SearchRequest, VectorIndex};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rand_distr::{Distribution, Normal};

const N: usize = 20_000;
const DIM: usize = 64;

fn clustered(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let unit = Normal::new(0.0f32, 1.0).unwrap_or_else(|e| panic!("{e}"));
    let centres: Vec<f32> = (0..100 * DIM).map(|_| unit.sample(&mut rng)).collect();
    let mut out = Vec::with_capacity(n * DIM);
    for _ in 0..n {
        let c = rng.random_range(0..100);
        for d in 0..DIM {
            out.push(centres[c * DIM + d] + 0.35 * unit.sample(&mut rng));
        }
    }
    out
}

fn params() -> BuildParams {
    let mut p = BuildParams::new(DIM, Metric::Cosine);
    p.ef_construction = 100;
    p
}

fn benches(c: &mut Criterion) {
    let data = clustered(N, 1);
    let ids: Vec<PointId> = (0..N as PointId).collect();
    let queries = clustered(200, 2);

    let mut g = c.benchmark_group("build");
    g.sample_size(10);
    g.bench_function("build_5k", |b| {
        b.iter(|| VectorIndex::build(params(), &ids[..5000], &data[..5000 * DIM], &NoProgress))
    });
    g.finish();

    let index =
        VectorIndex::build(params(), &ids, &data, &NoProgress).unwrap_or_else(|e| panic!("{e}"));
    let mut g = c.benchmark_group("freeze");
    g.sample_size(10);
    g.bench_function("timed_split_5k", |b| {
        b.iter(|| {
            let (_, t) =
                VectorIndex::build_timed(params(), &ids[..5000], &data[..5000 * DIM], &NoProgress)
                    .unwrap_or_else(|e| panic!("{e}"));
            black_box(t.freeze_s)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("search");
    for ef in [16usize, 32, 64, 128] {
        g.bench_with_input(BenchmarkId::new("ef", ef), &ef, |b, &ef| {
            let mut i = 0;
            b.iter(|| {
                let q = &queries[(i % 200) * DIM..(i % 200 + 1) * DIM];
                i += 1;
                black_box(index.search(&SearchRequest {
                    query: q,
                    k: 10,
                    ef,
                    allowed: None,
                }))
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("filtered");
    for frac in [0.5f64, 0.1, 0.01] {
        let mut rng = StdRng::seed_from_u64(3);
        let allowed = Bitset::from_ids((0..N as PointId).filter(|_| rng.random_bool(frac)), N);
        g.bench_with_input(
            BenchmarkId::new("fraction", frac),
            &allowed,
            |b, allowed| {
                let mut i = 0;
                b.iter(|| {
                    let q = &queries[(i % 200) * DIM..(i % 200 + 1) * DIM];
                    i += 1;
                    black_box(index.search(&SearchRequest {
                        query: q,
                        k: 10,
                        ef: 64,
                        allowed: Some(allowed),
                    }))
                })
            },
        );
    }
    g.finish();

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("bench.dpx");
    index.save(&path).unwrap_or_else(|e| panic!("{e}"));
    let mut g = c.benchmark_group("load");
    g.sample_size(20);
    g.bench_function("load_20k", |b| b.iter(|| VectorIndex::load(&path)));
    g.finish();
}

/// Holds the generated (undocumented) criterion group fn out of the public surface.
mod group {
    criterion::criterion_group!(index_benches, super::benches);
}
use group::index_benches;
criterion_main!(index_benches);
