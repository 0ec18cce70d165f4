//! ALS recovers the planted tastes; k-means on its vectors recovers them as clusters.

use std::collections::HashMap;

use doppel_synth::REFERENCE_TIME_MS;
use doppel_train::{SegmentConfig, segment_customers};

use crate::support::{TASTES, planted};

/// Mean share of own-taste items in a customer's top 10 that the model must reach. Chance
/// is 1/6 ≈ 0.17; 85 % of synth events fall on own-taste items.
const MIN_TOP_10_SHARE: f64 = 0.9;
/// Share of customers whose top 10 must be mostly (> half) their own taste.
const MIN_MOSTLY_OWN: f64 = 0.95;

#[test]
fn top_items_are_mostly_of_the_customers_taste() {
    let p = planted();
    let customers = p.model.customer_ids.len();
    assert!(customers > 1_000, "only {customers} customers have vectors");
    let mut share_sum = 0.0;
    let mut mostly_own = 0usize;
    for row in 0..customers {
        let share = p.top_k_share(p.model.customer_vector(row), 10, p.customer_taste(row));
        share_sum += share;
        mostly_own += usize::from(share > 0.5);
    }
    let mean = share_sum / customers as f64;
    let mostly = mostly_own as f64 / customers as f64;
    assert!(mean >= MIN_TOP_10_SHARE, "mean own-taste share {mean:.3}");
    assert!(mostly >= MIN_MOSTLY_OWN, "mostly-own share {mostly:.3}");
}

#[test]
fn behavioural_clusters_follow_the_tastes() {
    let p = planted();
    let mut cfg = SegmentConfig::new(REFERENCE_TIME_MS);
    cfg.clusters = TASTES;
    // With a single k-means run this seed merges two tastes (purity 0.85); the restarts
    // must recover from it.
    cfg.seed = 3;
    let segments = segment_customers(&p.data.events, &p.model, &cfg).expect("valid config");
    // Purity: each cluster votes for its majority taste.
    let mut votes: HashMap<(u32, usize), usize> = HashMap::new();
    let mut clustered = 0usize;
    for s in &segments {
        let (Some(cluster), Some(row)) = (s.cluster, p.model.customer_position(&s.customer_id))
        else {
            continue;
        };
        *votes.entry((cluster, p.customer_taste(row))).or_default() += 1;
        clustered += 1;
    }
    let majority: usize = (0..TASTES as u32)
        .map(|c| {
            votes
                .iter()
                .filter(|((cluster, _), _)| *cluster == c)
                .map(|(_, n)| *n)
                .max()
                .unwrap_or(0)
        })
        .sum();
    let purity = majority as f64 / clustered as f64;
    assert!(purity > 0.95, "cluster purity {purity:.3}");
}
