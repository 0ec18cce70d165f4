//! Recall of the frozen graph search against exact search, with an explicit failure budget.

mod support;

use std::sync::OnceLock;

use doppel_index::{Bitset, Metric, PointId, VectorIndex};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rstest::rstest;
use support::{N, queries, recall};

/// The failure budget: mean recall@10 over 200 queries must reach this at ef = [`EF`].
const MIN_RECALL: f64 = 0.95;
/// Search breadth for the recall budget (in-distribution queries; ~0.99 expected, 0.95 required).
const EF: usize = 32;

fn shared(metric: Metric) -> &'static VectorIndex {
    static COS: OnceLock<VectorIndex> = OnceLock::new();
    static L2: OnceLock<VectorIndex> = OnceLock::new();
    let cell = match metric {
        Metric::Cosine => &COS,
        Metric::L2 => &L2,
    };
    cell.get_or_init(|| support::build(metric).0)
}

fn random_subset(fraction: f64, seed: u64) -> Bitset {
    let mut rng = StdRng::seed_from_u64(seed);
    Bitset::from_ids((0..N as PointId).filter(|_| rng.random_bool(fraction)), N)
}

#[rstest]
fn unfiltered(#[values(Metric::Cosine, Metric::L2)] metric: Metric) {
    let r = recall(shared(metric), &queries(200), EF, None);
    assert!(r >= MIN_RECALL, "{metric:?}: recall {r}");
}

#[rstest]
fn filtered(
    #[values(Metric::Cosine, Metric::L2)] metric: Metric,
    #[values(0.5, 0.1, 0.01, 0.001)] fraction: f64,
) {
    let allowed = random_subset(fraction, 11);
    let index = shared(metric);
    let r = recall(index, &queries(200), EF, Some(&allowed));
    assert!(r >= MIN_RECALL, "{metric:?} at {fraction}: recall {r}");
    for q in queries(20) {
        let req = doppel_index::SearchRequest {
            query: &q,
            k: 10,
            ef: 64,
            allowed: Some(&allowed),
        };
        for n in index.search(&req).expect("search") {
            assert!(allowed.contains(n.id), "{} is not allowed", n.id);
        }
    }
}

#[test]
fn ef_below_k_is_raised() {
    let index = shared(Metric::Cosine);
    let q = &queries(1)[0];
    let req = doppel_index::SearchRequest {
        query: q,
        k: 10,
        ef: 1,
        allowed: None,
    };
    assert_eq!(index.search(&req).expect("search").len(), 10);
}

#[test]
fn point_finds_itself() {
    let index = shared(Metric::Cosine);
    for id in [0u32, 17, 999, 5_999] {
        let v = index.vector(id).expect("stored");
        let req = doppel_index::SearchRequest {
            query: &v,
            k: 1,
            ef: 32,
            allowed: None,
        };
        let got = index.search(&req).expect("search");
        assert_eq!(got[0].id, id);
        assert!((got[0].score - 1.0).abs() < 1e-4);
    }
}

/// Prints recall per ef (run with `--ignored --nocapture` when tuning).
#[test]
#[ignore = "tuning aid"]
fn ef_sweep() {
    for metric in [Metric::Cosine, Metric::L2] {
        for ef in [16, 32, 64, 128, 256, 512] {
            eprintln!(
                "{metric:?} ef={ef}: {:.4}",
                recall(shared(metric), &queries(200), ef, None)
            );
        }
    }
}
