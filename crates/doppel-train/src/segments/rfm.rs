//! Recency / frequency / monetary scores and the named segment they map to.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::purchase_history::PurchaseHistory;
use super::quintile::quintile_scores;

/// Quintile scores, each 1 (worst) ..= 5 (best), among customers who bought.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RfmScore {
    /// Recency: 5 = bought most recently.
    pub r: u8,
    /// Frequency: 5 = most distinct purchase days.
    pub f: u8,
    /// Monetary: 5 = highest net value.
    pub m: u8,
}

/// The named RFM segment; see the table in the [module docs](super).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RfmSegment {
    /// Bought recently and often.
    Champions,
    /// Buy often, fairly recently.
    LoyalCustomers,
    /// Recent, with a few orders.
    PotentialLoyalists,
    /// Very recent, one order.
    NewCustomers,
    /// Recent, one order.
    Promising,
    /// Middling on both.
    NeedAttention,
    /// Middling recency, few orders.
    AboutToSleep,
    /// Used to buy often, not lately.
    AtRisk,
    /// Bought the most, long ago.
    CantLoseThem,
    /// Long ago and rarely.
    Hibernating,
    /// Least recent and least frequent.
    Lost,
    /// Has never bought (views, carts or only returns): no RFM score.
    Prospect,
}

impl RfmSegment {
    /// The segment for recency and frequency scores (monetary does not enter the map).
    pub fn from_scores(r: u8, f: u8) -> Self {
        match (r, f) {
            (..=1, ..=1) => Self::Lost,
            (..=2, ..=2) => Self::Hibernating,
            (..=2, 3 | 4) => Self::AtRisk,
            (..=2, _) => Self::CantLoseThem,
            (3, ..=2) => Self::AboutToSleep,
            (3, 3) => Self::NeedAttention,
            (4, ..=1) => Self::Promising,
            (4, 2 | 3) => Self::PotentialLoyalists,
            (3 | 4, _) => Self::LoyalCustomers,
            (_, ..=1) => Self::NewCustomers,
            (_, 2 | 3) => Self::PotentialLoyalists,
            _ => Self::Champions,
        }
    }

    /// The display name (`"Can't Lose Them"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Champions => "Champions",
            Self::LoyalCustomers => "Loyal Customers",
            Self::PotentialLoyalists => "Potential Loyalists",
            Self::NewCustomers => "New Customers",
            Self::Promising => "Promising",
            Self::NeedAttention => "Need Attention",
            Self::AboutToSleep => "About To Sleep",
            Self::AtRisk => "At Risk",
            Self::CantLoseThem => "Can't Lose Them",
            Self::Hibernating => "Hibernating",
            Self::Lost => "Lost",
            Self::Prospect => "Prospect",
        }
    }
}

impl fmt::Display for RfmSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// RFM scores of `histories` as of `now_ms`; `None` for customers who never bought.
/// Quintiles are taken among buyers only.
pub fn rfm_scores(histories: &[PurchaseHistory], now_ms: i64) -> Vec<Option<RfmScore>> {
    let buyers: Vec<&PurchaseHistory> = histories
        .iter()
        .filter(|h| h.last_purchase_ms.is_some())
        .collect();
    // Fewer days since the last purchase is better: score the negated recency.
    let recency: Vec<f64> = buyers
        .iter()
        .map(|h| -h.recency_days(now_ms).unwrap_or(f64::INFINITY))
        .collect();
    let frequency: Vec<f64> = buyers.iter().map(|h| f64::from(h.purchase_days)).collect();
    let monetary: Vec<f64> = buyers.iter().map(|h| h.net_value()).collect();
    let (r, f, m) = (
        quintile_scores(&recency),
        quintile_scores(&frequency),
        quintile_scores(&monetary),
    );
    let mut scores = (0..buyers.len()).map(|n| RfmScore {
        r: r[n],
        f: f[n],
        m: m[n],
    });
    histories
        .iter()
        .map(|h| h.last_purchase_ms.and_then(|_| scores.next()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_score_pair_has_a_segment_as_in_the_table() {
        let table = [
            "Lost        Hibernating  About To Sleep   Promising      New Customers",
            "Hibernating Hibernating  About To Sleep   Potential Loyalists Potential Loyalists",
            "At Risk     At Risk      Need Attention   Potential Loyalists Potential Loyalists",
            "At Risk     At Risk      Loyal Customers  Loyal Customers     Champions",
            "Can't Lose Them Can't Lose Them Loyal Customers Loyal Customers Champions",
        ];
        for (f, line) in (1..=5u8).zip(table) {
            let mut rest = line;
            for r in 1..=5u8 {
                let name = RfmSegment::from_scores(r, f).name();
                rest = rest.trim_start();
                assert!(rest.starts_with(name), "r={r} f={f}: {name} vs {rest}");
                rest = &rest[name.len()..];
            }
        }
    }
}
