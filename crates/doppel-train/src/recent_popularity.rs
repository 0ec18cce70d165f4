//! The recent-popularity prior a trained version adds to its offers (see
//! [`doppel_types::offer_prior`]): how many distinct customers bought each item in the
//! last days before training's reference time, on a log scale, standardised over the
//! catalogue.

use std::collections::{HashMap, HashSet};

use doppel_types::offer_prior::{MAX_DAYS, MAX_WEIGHT};
use doppel_types::offer_recency;
use doppel_types::{Event, EventType};

use crate::error::{Result, invalid};

const MS_PER_DAY: f64 = 86_400_000.0;

/// β and D of the prior, and w of the recency shift: how a trained version ranks its offers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PriorSettings {
    /// β, the weight of the standardised prior against the customer's standardised
    /// scores; 0 = no prior (plain ALS offers); `None` = chosen by the training run on the
    /// newest part of its log ([`choose_prior_weight`](crate::choose_prior_weight)).
    pub weight: Option<f32>,
    /// D, the window counted, in days (default 14, chosen by `doppel evaluate --tune` on
    /// Online Retail's validation window).
    pub days: f32,
    /// `w` of the offers' recency shift ([`doppel_types::offer_recency`]), in [0, 10]; 0 =
    /// none; `None` = chosen by the training run with β.
    pub recency_weight: Option<f32>,
}

impl Default for PriorSettings {
    fn default() -> Self {
        Self {
            weight: None,
            days: 14.0,
            recency_weight: None,
        }
    }
}

impl PriorSettings {
    /// Checks the ranges: weight in [0, 100], days in (0, 365].
    pub fn validate(&self) -> Result<()> {
        if let Some(weight) = self.weight
            && !(weight.is_finite() && (0.0..=MAX_WEIGHT).contains(&weight))
        {
            return Err(invalid(
                "recent_popularity_weight",
                format!("must be in [0, {MAX_WEIGHT}], got {weight}"),
            ));
        }
        if let Some(weight) = self.recency_weight
            && !(weight.is_finite() && (0.0..=offer_recency::MAX_WEIGHT).contains(&weight))
        {
            return Err(invalid(
                "recency_weight",
                format!(
                    "must be in [0, {}], got {weight}",
                    offer_recency::MAX_WEIGHT
                ),
            ));
        }
        if !(self.days.is_finite() && self.days > 0.0 && self.days <= MAX_DAYS) {
            return Err(invalid(
                "recent_popularity_days",
                format!("must be in (0, {MAX_DAYS}], got {}", self.days),
            ));
        }
        Ok(())
    }
}

/// `z(ln(1 + distinct buyers in [reference_ms − days, reference_ms]))` per item of
/// `item_ids` (in that order): purchases only, standardised over `item_ids`. All zeros
/// when every item has the same count.
pub fn recent_popularity(
    events: &[Event],
    item_ids: &[String],
    reference_ms: i64,
    days: f32,
) -> Vec<f32> {
    let from = reference_ms.saturating_sub((f64::from(days) * MS_PER_DAY) as i64);
    let mut buyers: HashMap<&str, HashSet<&str>> = HashMap::new();
    for e in events {
        if e.kind == EventType::Purchase
            && e.quantity > 0
            && (from..=reference_ms).contains(&e.timestamp_ms)
        {
            buyers
                .entry(e.item_id.as_str())
                .or_default()
                .insert(e.customer_id.as_str());
        }
    }
    let raw: Vec<f64> = item_ids
        .iter()
        .map(|i| (buyers.get(i.as_str()).map_or(0, HashSet::len) as f64).ln_1p())
        .collect();
    let n = raw.len().max(1) as f64;
    let mean = raw.iter().sum::<f64>() / n;
    let sd = (raw.iter().map(|p| (p - mean).powi(2)).sum::<f64>() / n).sqrt();
    if sd <= 1e-12 {
        return vec![0.0; raw.len()];
    }
    raw.iter().map(|p| ((p - mean) / sd) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buy(c: &str, i: &str, day: i64) -> Event {
        Event {
            customer_id: c.into(),
            item_id: i.into(),
            kind: EventType::Purchase,
            quantity: 1,
            timestamp_ms: day * 86_400_000,
            ..Event::default()
        }
    }

    #[test]
    fn counts_distinct_recent_buyers_and_standardises() {
        let events = vec![
            buy("a", "hot", 99),
            buy("b", "hot", 98),
            buy("b", "hot", 97),
            buy("c", "hot", 95),
            buy("a", "old", 10),
            buy("b", "old", 11),
            buy("c", "old", 12),
            buy("a", "warm", 100),
        ];
        let items = vec!["hot".to_owned(), "old".to_owned(), "warm".to_owned()];
        let p = recent_popularity(&events, &items, 100 * 86_400_000, 14.0);
        assert!(p[0] > p[2] && p[2] > p[1], "{p:?}");
        let mean: f32 = p.iter().sum::<f32>() / 3.0;
        assert!(mean.abs() < 1e-5);
        let flat = recent_popularity(&events, &items, 500 * 86_400_000, 14.0);
        assert_eq!(flat, vec![0.0; 3]);
    }

    #[test]
    fn settings_out_of_range_name_the_field() {
        let bad = PriorSettings {
            weight: Some(-1.0),
            ..PriorSettings::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("recent_popularity_weight")
        );
        let bad = PriorSettings {
            days: 0.0,
            ..PriorSettings::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("recent_popularity_days")
        );
        let bad = PriorSettings {
            recency_weight: Some(10.5),
            ..PriorSettings::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("recency_weight")
        );
        PriorSettings::default().validate().expect("defaults");
    }
}
