//! The serving path in-process: a lookalike audience of 1 % of 200k customers, and
//! RecommendOffers. Each doppel measurement runs beside a naive peer in the same process
//! (score every vector in a `Vec<Vec<f32>>`, sort), so the ratio survives noisy machines.
//!
//! `cargo bench -p doppel-engine --bench serving` (DOPPEL_BENCH_CUSTOMERS overrides 200k).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_main};
use doppel_engine::{
    AudienceSize, Engine, EngineConfig, LoadVersion, LookalikeQuery, RecommendQuery, Strategy,
};
use doppel_index::{NoProgress, dot};
use doppel_synth::{SynthConfig, generate};
use doppel_types::{VersionInfo, VersionState};

fn customers() -> usize {
    std::env::var("DOPPEL_BENCH_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000)
}

/// The naive peer: every vector scored against the seed centroid, fully sorted.
fn naive_top(vectors: &[(String, Vec<f32>)], centroid: &[f32], n: usize) -> Vec<(f32, usize)> {
    let mut scored: Vec<(f32, usize)> = vectors
        .iter()
        .enumerate()
        .map(|(i, (_, v))| (v.iter().zip(centroid).map(|(a, b)| a * b).sum(), i))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.truncate(n);
    scored
}

fn serving(c: &mut Criterion) {
    let n = customers();
    let started = Instant::now();
    let data = generate(&SynthConfig {
        customers: n,
        items: 5_000,
        categories: 40,
        dim: 32,
        tastes: 16,
        events_per_customer: 5,
        seed: 11,
        context_effect: 0.0,
    });
    let engine = Engine::new(EngineConfig::default());
    data.customers
        .iter()
        .for_each(|x| engine.upsert_customer(x));
    data.items.iter().for_each(|x| engine.upsert_item(x));
    data.events.iter().for_each(|x| engine.record_event(x));
    let info = VersionInfo {
        version: "bench".into(),
        dim: 32,
        state: VersionState::Ready,
        ..VersionInfo::default()
    };
    let summary = engine
        .load_version(
            LoadVersion {
                info,
                customer_vectors: data.customer_vectors.clone(),
                item_vectors: data.item_vectors.clone(),
            },
            &NoProgress,
        )
        .expect("load");
    engine.activate("bench").expect("activate");
    eprintln!(
        "setup: {n} customers generated and indexed in {:.1}s (index build {:.1}s)",
        started.elapsed().as_secs_f64(),
        summary.build_seconds
    );

    let seeds: Vec<String> = data
        .customers
        .iter()
        .zip(&data.customer_taste)
        .filter(|(c, t)| **t == 3 && c.consent.ads_personalization)
        .take(500)
        .map(|(c, _)| c.id.clone())
        .collect();
    let audience = (n / 100) as u64;
    let query = |strategy, size| LookalikeQuery {
        seed_customer_ids: seeds.clone(),
        negative_customer_ids: Vec::new(),
        size,
        strategy,
        exclude_existing_customers: false,
        filter: BTreeMap::new(),
        explain: false,
        seed_segments: Vec::new(),
        exclude_segments: Vec::new(),
        audit_attributes: Vec::new(),
        balance: None,
        cancel: Default::default(),
    };
    let mut centroid = vec![0f32; 32];
    let seed_rows: Vec<&Vec<f32>> = data
        .customer_vectors
        .iter()
        .filter(|(id, _)| seeds.contains(id))
        .map(|(_, v)| v)
        .collect();
    for v in &seed_rows {
        centroid.iter_mut().zip(v.iter()).for_each(|(c, x)| *c += x);
    }
    let norm = dot(&centroid, &centroid).sqrt();
    centroid.iter_mut().for_each(|c| *c /= norm);

    let mut group = c.benchmark_group("lookalike_1pct");
    group.sample_size(20);
    group.bench_function("doppel_centroid", |b| {
        let q = query(Strategy::Centroid, AudienceSize::Count(audience));
        b.iter(|| black_box(engine.lookalike(&q).expect("lookalike")));
    });
    group.bench_function("doppel_max_similarity", |b| {
        let q = query(Strategy::MaxSimilarity, AudienceSize::Count(audience));
        b.iter(|| black_box(engine.lookalike(&q).expect("lookalike")));
    });
    group.bench_function("doppel_top_percent", |b| {
        let q = query(Strategy::Centroid, AudienceSize::TopPercent(1.0));
        b.iter(|| black_box(engine.lookalike(&q).expect("lookalike")));
    });
    group.bench_function("naive_peer_centroid_sort", |b| {
        b.iter(|| {
            black_box(naive_top(
                &data.customer_vectors,
                &centroid,
                audience as usize,
            ))
        });
    });
    group.finish();

    let mut group = c.benchmark_group("lookalike_small");
    group.bench_function("doppel_count_50", |b| {
        let q = query(Strategy::Centroid, AudienceSize::Count(50));
        b.iter(|| black_box(engine.lookalike(&q).expect("lookalike")));
    });
    group.bench_function("naive_peer_count_50", |b| {
        b.iter(|| black_box(naive_top(&data.customer_vectors, &centroid, 50)));
    });
    group.finish();

    let people: Vec<&str> = data
        .customers
        .iter()
        .filter(|c| c.consent.onsite_personalization)
        .take(1_000)
        .map(|c| c.id.as_str())
        .collect();
    let mut group = c.benchmark_group("recommend_offers_k10");
    group.bench_function("doppel", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % people.len();
            let q = RecommendQuery {
                customer_id: people[i].to_owned(),
                k: 10,
                ..RecommendQuery::default()
            };
            black_box(engine.recommend(&q).expect("recommend"))
        });
    });
    group.bench_function("naive_peer_item_scan", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % 1_000;
            black_box(naive_top(
                &data.item_vectors,
                &data.customer_vectors[i].1,
                10,
            ))
        });
    });
    group.finish();
}

mod group {
    criterion::criterion_group!(serving_benches, super::serving);
}
use group::serving_benches;
criterion_main!(serving_benches);
