//! Customer segments: RFM, CLV tiers and behavioural clusters.
//!
//! Layout:
//! * [`purchase_history`] — per-customer purchase days, first/last purchase, net value
//! * [`quintile`] — tie-aware ranks and quintile scores
//! * [`rfm`] — [`RfmScore`] and the [`RfmSegment`] map below
//! * [`clv`] — [`clv_estimate`] and [`ClvTier`]
//! * [`kmeans`] — [`spherical_kmeans`] over model vectors
//!
//! # RFM
//!
//! Among customers with at least one purchase: **recency** = days since the last purchase,
//! **frequency** = distinct purchase days, **monetary** = purchases minus returns (by
//! `|value|`). Each becomes a quintile score 1..=5 (5 best: most recent, most frequent,
//! highest value) as `1 + ⌊5 × position / n⌋`, where `position` counts the customers
//! strictly worse — so ties share the lower score, independent of ids and input order.
//!
//! The segment comes from R and F (the usual map; M is reported but not used):
//!
//! | F \ R | 1               | 2               | 3               | 4                   | 5                   |
//! |-------|-----------------|-----------------|-----------------|---------------------|---------------------|
//! | **5** | Can't Lose Them | Can't Lose Them | Loyal Customers | Loyal Customers     | Champions           |
//! | **4** | At Risk         | At Risk         | Loyal Customers | Loyal Customers     | Champions           |
//! | **3** | At Risk         | At Risk         | Need Attention  | Potential Loyalists | Potential Loyalists |
//! | **2** | Hibernating     | Hibernating     | About To Sleep  | Potential Loyalists | Potential Loyalists |
//! | **1** | Lost            | Hibernating     | About To Sleep  | Promising           | New Customers       |
//!
//! Customers who never bought have no score and the segment `Prospect`.
//!
//! # CLV
//!
//! `estimate = net × margin_rate × (1 + horizon_days / max(tenure_days, 30))` — the margin
//! to date plus average order value × orders per day × horizon (see [`clv_estimate`]).
//! Tiers: **Unprofitable** if net ≤ 0 (never bought, or returned as much as bought);
//! among the others, by tie-aware position of the estimate: top 20 % **VeryProfitable**,
//! next 30 % **Profitable**, bottom 50 % **Emerging**.
//!
//! # Clusters
//!
//! Spherical k-means on the model's customer vectors (direction = taste, length ≈ activity),
//! k-means++ seeded, best of a few seeded runs; customers without a vector have no cluster.

pub mod clv;
pub mod kmeans;
pub mod purchase_history;
pub mod quintile;
pub mod rfm;

use doppel_types::Event;
use serde::{Deserialize, Serialize};

pub use clv::{ClvTier, clv_estimate, clv_tiers};
pub use kmeans::{Clusters, KMeansParams, spherical_kmeans};
pub use purchase_history::{PurchaseHistory, purchase_histories};
pub use rfm::{RfmScore, RfmSegment, rfm_scores};

use crate::error::{Result, invalid};
use crate::model::Model;

/// Default [`SegmentConfig::margin_rate`].
pub const DEFAULT_MARGIN_RATE: f32 = 0.3;
/// Default [`SegmentConfig::horizon_days`].
pub const DEFAULT_HORIZON_DAYS: f32 = 365.0;
/// Default [`SegmentConfig::clusters`].
pub const DEFAULT_CLUSTERS: usize = 8;
/// Default [`SegmentConfig::kmeans_iterations`].
pub const DEFAULT_KMEANS_ITERATIONS: usize = 25;
/// Default [`SegmentConfig::kmeans_restarts`].
pub const DEFAULT_KMEANS_RESTARTS: usize = 4;
/// Largest accepted [`SegmentConfig::clusters`].
pub const MAX_CLUSTERS: usize = 1_024;
/// Largest accepted [`SegmentConfig::kmeans_iterations`].
pub const MAX_KMEANS_ITERATIONS: usize = 1_000;
/// Largest accepted [`SegmentConfig::kmeans_restarts`].
pub const MAX_KMEANS_RESTARTS: usize = 100;

/// Settings of [`segment_customers`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentConfig {
    /// "Today", ms since the epoch: recency and tenure are measured to it.
    pub now_ms: i64,
    /// Share of revenue that is margin, in [0, 1].
    pub margin_rate: f32,
    /// How far ahead the forward CLV looks, in days (finite, ≥ 0).
    pub horizon_days: f32,
    /// Number of behavioural clusters, 1..=[`MAX_CLUSTERS`] (capped at the customers with
    /// vectors).
    pub clusters: usize,
    /// Lloyd rounds at most, 1..=[`MAX_KMEANS_ITERATIONS`].
    pub kmeans_iterations: usize,
    /// Independent k-means runs, the tightest kept; 1..=[`MAX_KMEANS_RESTARTS`].
    pub kmeans_restarts: usize,
    /// Seed of the k-means++ seeding.
    pub seed: u64,
}

impl SegmentConfig {
    /// Defaults, measured to `now_ms`.
    pub fn new(now_ms: i64) -> Self {
        Self {
            now_ms,
            margin_rate: DEFAULT_MARGIN_RATE,
            horizon_days: DEFAULT_HORIZON_DAYS,
            clusters: DEFAULT_CLUSTERS,
            kmeans_iterations: DEFAULT_KMEANS_ITERATIONS,
            kmeans_restarts: DEFAULT_KMEANS_RESTARTS,
            seed: 0,
        }
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.margin_rate) {
            return Err(invalid(
                "margin_rate",
                format!("must be in [0, 1], got {}", self.margin_rate),
            ));
        }
        if !self.horizon_days.is_finite() || self.horizon_days < 0.0 {
            return Err(invalid(
                "horizon_days",
                format!("must be finite and >= 0, got {}", self.horizon_days),
            ));
        }
        let counts = [
            ("clusters", self.clusters, MAX_CLUSTERS),
            (
                "kmeans_iterations",
                self.kmeans_iterations,
                MAX_KMEANS_ITERATIONS,
            ),
            ("kmeans_restarts", self.kmeans_restarts, MAX_KMEANS_RESTARTS),
        ];
        for (name, value, max) in counts {
            if !(1..=max).contains(&value) {
                return Err(invalid(name, format!("must be in 1..={max}, got {value}")));
            }
        }
        Ok(())
    }
}

/// Everything known about one customer's segments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomerSegments {
    /// Customer id.
    pub customer_id: String,
    /// RFM quintiles; `None` if the customer never bought.
    pub rfm: Option<RfmScore>,
    /// Named RFM segment (`Prospect` without purchases).
    pub rfm_segment: RfmSegment,
    /// CLV tier.
    pub clv_tier: ClvTier,
    /// CLV estimate in margin currency (historical + forward).
    pub clv_estimate: f64,
    /// Behavioural cluster; `None` if the model has no vector for the customer.
    pub cluster: Option<u32>,
}

/// Segments of every customer in `events` or in `model`, sorted by customer id.
pub fn segment_customers(
    events: &[Event],
    model: &Model,
    cfg: &SegmentConfig,
) -> Result<Vec<CustomerSegments>> {
    cfg.validate()?;
    let mut histories = purchase_histories(events);
    let without_events: Vec<PurchaseHistory> = model
        .customer_ids
        .iter()
        .filter(|id| {
            histories
                .binary_search_by(|h| h.customer_id.as_str().cmp(id.as_str()))
                .is_err()
        })
        .map(|id| PurchaseHistory {
            customer_id: id.clone(),
            ..PurchaseHistory::default()
        })
        .collect();
    if !without_events.is_empty() {
        histories.extend(without_events);
        histories.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
    }

    let rfm = rfm_scores(&histories, cfg.now_ms);
    let estimates: Vec<f64> = histories.iter().map(|h| clv_estimate(h, cfg)).collect();
    let nets: Vec<f64> = histories.iter().map(PurchaseHistory::net_value).collect();
    let tiers = clv_tiers(&estimates, &nets);
    let kmeans = KMeansParams {
        k: cfg.clusters,
        iterations: cfg.kmeans_iterations,
        restarts: cfg.kmeans_restarts,
        seed: cfg.seed,
    };
    let clusters = spherical_kmeans(&model.customer_factors, model.factors, &kmeans);

    Ok(histories
        .into_iter()
        .enumerate()
        .map(|(n, h)| CustomerSegments {
            cluster: model
                .customer_position(&h.customer_id)
                .and_then(|row| clusters.assignment.get(row).copied()),
            rfm: rfm[n],
            rfm_segment: rfm[n].map_or(RfmSegment::Prospect, |s| RfmSegment::from_scores(s.r, s.f)),
            clv_tier: tiers[n],
            clv_estimate: estimates[n],
            customer_id: h.customer_id,
        })
        .collect())
}
