//! Customer lifetime value: margin to date plus a simple forward estimate, and its tiers.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::SegmentConfig;
use super::purchase_history::PurchaseHistory;
use super::quintile::tie_positions;
use crate::confidence::MS_PER_DAY;

/// Shortest tenure a purchase rate is computed over, so a customer whose first order was
/// yesterday is not projected to order every day.
pub const MIN_TENURE_DAYS: f64 = 30.0;
/// Share of profitable customers (by position) from which the tier is
/// [`ClvTier::VeryProfitable`]: the top 20 %.
pub const VERY_PROFITABLE_FROM: f64 = 0.8;
/// Share of profitable customers from which the tier is [`ClvTier::Profitable`]: the next 30 %.
pub const PROFITABLE_FROM: f64 = 0.5;

/// Where a customer's CLV estimate ranks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClvTier {
    /// Top 20 % of customers with a positive net margin.
    VeryProfitable,
    /// The next 30 %.
    Profitable,
    /// The bottom half of customers with a positive net margin.
    Emerging,
    /// No positive net margin: never bought, or returned as much as bought.
    Unprofitable,
}

impl fmt::Display for ClvTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::VeryProfitable => "Very Profitable",
            Self::Profitable => "Profitable",
            Self::Emerging => "Emerging",
            Self::Unprofitable => "Unprofitable",
        })
    }
}

/// CLV of one customer in margin terms:
///
/// ```text
/// historical = net × margin_rate
/// forward    = average order value × orders per day × horizon_days × margin_rate
///            = net × horizon_days / max(tenure_days, MIN_TENURE_DAYS) × margin_rate
/// ```
///
/// where tenure runs from the first purchase to `now`. With `net ≤ 0` there is no forward
/// part and the estimate is the (non-positive) historical margin.
pub fn clv_estimate(history: &PurchaseHistory, cfg: &SegmentConfig) -> f64 {
    let net = history.net_value();
    let margin = f64::from(cfg.margin_rate);
    let historical = net * margin;
    let (Some(first), true) = (history.first_purchase_ms, net > 0.0) else {
        return historical;
    };
    let orders = f64::from(history.purchase_days.max(1));
    let tenure_days = (cfg.now_ms.saturating_sub(first) as f64 / MS_PER_DAY).max(MIN_TENURE_DAYS);
    let average_order = net / orders;
    let orders_per_day = orders / tenure_days;
    historical + average_order * orders_per_day * f64::from(cfg.horizon_days) * margin
}

/// Tiers for `estimates` whose customers have net values `nets`: `Unprofitable` where
/// `net ≤ 0`, otherwise by the tie-aware position of the estimate among those customers
/// (position / count ≥ [`VERY_PROFITABLE_FROM`], ≥ [`PROFITABLE_FROM`], else `Emerging`).
pub fn clv_tiers(estimates: &[f64], nets: &[f64]) -> Vec<ClvTier> {
    let profitable: Vec<usize> = (0..estimates.len()).filter(|&n| nets[n] > 0.0).collect();
    let values: Vec<f64> = profitable.iter().map(|&n| estimates[n]).collect();
    let positions = tie_positions(&values);
    let mut tiers = vec![ClvTier::Unprofitable; estimates.len()];
    for (&n, &p) in profitable.iter().zip(&positions) {
        let share = p as f64 / profitable.len() as f64;
        tiers[n] = if share >= VERY_PROFITABLE_FROM {
            ClvTier::VeryProfitable
        } else if share >= PROFITABLE_FROM {
            ClvTier::Profitable
        } else {
            ClvTier::Emerging
        };
    }
    tiers
}
