//! Reach curves at 1M eligible customers: `Engine::estimate_reach` with the default 12
//! shares, with and without a fairness audit, beside a naive peer in the same process
//! (score every vector against the centroid, sort all scores, cut the shares: the least
//! any exact curve must do), and a 1 % `FindLookalikes` for scale.
//!
//! The first audit of an attribute builds a column of its value codes; it is timed apart.
//!
//! `cargo bench -p doppel-engine --bench reach` (DOPPEL_BENCH_CUSTOMERS overrides 1M,
//! DOPPEL_BENCH_DIM 32, DOPPEL_BENCH_CALLS 30). The index is built with a small graph
//! (m 8, ef_construction 32): reach curves and percentage audiences scan every vector and
//! never walk the graph, so its quality does not matter here and the setup stays minutes.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use doppel_engine::{
    AudienceSize, DEFAULT_REACH_PERCENTS, Engine, EngineConfig, LoadVersion, LookalikeQuery,
    ReachCut, Strategy,
};
use doppel_index::{NoProgress, dot};
use doppel_synth::{SynthConfig, generate};
use doppel_types::{VersionInfo, VersionState};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// p50 and p99 of `calls` runs of `f`, in milliseconds.
fn latency(calls: usize, mut f: impl FnMut()) -> (f64, f64) {
    let mut times: Vec<Duration> = (0..calls)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    (at(0.5), at(0.99))
}

/// The naive peer's curve: every score, sorted, cut at each share.
fn naive_curve(vectors: &[(String, Vec<f32>)], centroid: &[f32]) -> Vec<(usize, f32)> {
    let mut scores: Vec<f32> = vectors.iter().map(|(_, v)| dot(v, centroid)).collect();
    scores.sort_unstable_by(|a, b| b.total_cmp(a));
    DEFAULT_REACH_PERCENTS
        .iter()
        .map(|p| {
            let n = ((scores.len() as f64 * p / 100.0).ceil() as usize).clamp(1, scores.len());
            (n, scores[n - 1])
        })
        .collect()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env("DOPPEL_BENCH_CUSTOMERS", 1_000_000);
    let dim = env("DOPPEL_BENCH_DIM", 32);
    let calls = env("DOPPEL_BENCH_CALLS", 30);
    let started = Instant::now();
    let mut data = generate(&SynthConfig {
        customers: n,
        items: 2_000,
        categories: 20,
        dim,
        tastes: 16,
        events_per_customer: 1,
        seed: 17,
        context_effect: 0.0,
    });
    // Everyone eligible (the synthetic base withholds ads consent from some).
    for c in &mut data.customers {
        c.consent.ads_personalization = true;
    }
    let engine = Engine::new(EngineConfig {
        m: 8,
        ef_construction: 32,
        ..EngineConfig::default()
    });
    data.customers
        .iter()
        .for_each(|x| engine.upsert_customer(x));
    data.items.iter().for_each(|x| engine.upsert_item(x));
    let info = VersionInfo {
        version: "bench".into(),
        dim: dim as u32,
        state: VersionState::Ready,
        ..VersionInfo::default()
    };
    engine
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
        "setup: {n} customers × {dim} dims generated and indexed in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    let seeds: Vec<String> = data
        .customers
        .iter()
        .zip(&data.customer_taste)
        .filter(|(_, t)| **t == 3)
        .take(500)
        .map(|(c, _)| c.id.clone())
        .collect();
    let query = |audit: Vec<String>, size| LookalikeQuery {
        seed_customer_ids: seeds.clone(),
        negative_customer_ids: Vec::new(),
        size,
        strategy: Strategy::Centroid,
        exclude_existing_customers: false,
        filter: BTreeMap::new(),
        explain: false,
        seed_segments: Vec::new(),
        exclude_segments: Vec::new(),
        audit_attributes: audit,
        balance: None,
        cancel: Default::default(),
    };
    let cuts: Vec<ReachCut> = DEFAULT_REACH_PERCENTS
        .iter()
        .map(|&p| ReachCut::TopPercent(p))
        .collect();
    let plain = query(Vec::new(), AudienceSize::TopPercent(100.0));
    let audited = query(vec!["country".into()], AudienceSize::TopPercent(100.0));
    let one_percent = query(Vec::new(), AudienceSize::TopPercent(1.0));
    let curve = engine.estimate_reach(&plain, &cuts).expect("reach");
    eprintln!(
        "eligible {} · 1 % = {} (cut-off {:.4}) · 20 % = {}",
        curve.eligible_population,
        curve.points[0].size,
        curve.points[0].min_score,
        curve.points[11].size
    );

    let mut centroid = vec![0f32; dim];
    for (_, v) in data
        .customer_vectors
        .iter()
        .filter(|(id, _)| seeds.contains(id))
    {
        centroid.iter_mut().zip(v).for_each(|(c, x)| *c += x);
    }
    let norm = dot(&centroid, &centroid).sqrt();
    centroid.iter_mut().for_each(|c| *c /= norm);

    // The first audit of an attribute builds its column of value codes (then kept in step
    // with profile writes): timed once here, apart from the rounds.
    let cold = Instant::now();
    black_box(engine.estimate_reach(&audited, &cuts).expect("reach"));
    let cold_ms = cold.elapsed().as_secs_f64() * 1e3;

    // Interleaved rounds, so a noisy neighbour hurts both sides alike.
    let mut rows: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for _ in 0..2 {
        rows.entry("doppel reach, 12 shares")
            .or_default()
            .push(latency(calls, || {
                black_box(engine.estimate_reach(&plain, &cuts).expect("reach"));
            }));
        rows.entry("doppel reach, 12 shares + audit by country")
            .or_default()
            .push(latency(calls, || {
                black_box(engine.estimate_reach(&audited, &cuts).expect("reach"));
            }));
        rows.entry("doppel FindLookalikes top 1 %")
            .or_default()
            .push(latency(calls, || {
                black_box(engine.lookalike(&one_percent).expect("lookalike"));
            }));
        rows.entry("naive peer: score all, sort, cut")
            .or_default()
            .push(latency(calls, || {
                black_box(naive_curve(&data.customer_vectors, &centroid));
            }));
    }
    println!("reach at {n} eligible customers × {dim} dims, {calls} calls per round, 2 rounds:");
    println!("  first audit by country (builds the attribute column): {cold_ms:.0} ms");
    for (name, rounds) in &rows {
        let p50 = rounds.iter().map(|r| r.0).fold(f64::MAX, f64::min);
        let p99 = rounds.iter().map(|r| r.1).fold(0.0, f64::max);
        println!("  {name:<44} p50 {p50:>7.1} ms   p99 {p99:>7.1} ms");
    }
}
