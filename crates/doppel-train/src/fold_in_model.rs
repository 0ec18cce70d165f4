//! Everything fold-in needs from a trained version, rebuilt from what the version stores
//! (its serving item vectors and recorded hyper-parameters), so it survives a restart.

use std::collections::HashMap;

use doppel_types::{Event, VectorLayout};

use crate::als_params::SolveWeights;
use crate::confidence::ConfidenceConfig;
use crate::fold_in::fold_in;
use crate::gram::Gram;
use crate::serving_vectors::serving_customer_vector;

/// Fixed item factors of a version, their Gram matrix and the confidence settings.
#[derive(Clone, Debug)]
pub struct FoldInModel {
    layout: VectorLayout,
    factors: usize,
    item_rows: HashMap<String, u32>,
    item_factors: Vec<f32>,
    gram: Gram,
    weights: SolveWeights,
    confidence: ConfidenceConfig,
}

impl FoldInModel {
    /// From the version's stored item vectors (laid out as `layout` says, see
    /// [`ServingVectors`](crate::ServingVectors)) and its training settings.
    pub fn from_serving_items(
        items: &[(String, Vec<f32>)],
        layout: VectorLayout,
        weights: SolveWeights,
        confidence: ConfidenceConfig,
    ) -> Option<Self> {
        let factors = layout.factors;
        if factors == 0 || items.is_empty() {
            return None;
        }
        let mut item_rows = HashMap::with_capacity(items.len());
        let mut item_factors = Vec::with_capacity(items.len() * factors);
        for (row, (id, v)) in items.iter().enumerate() {
            let y = layout.factors_of(v);
            if y.len() != factors || v.len() != layout.dim() {
                return None;
            }
            item_rows.insert(id.clone(), row as u32);
            item_factors.extend_from_slice(y);
        }
        let gram = Gram::new(&item_factors, factors);
        Some(Self {
            layout,
            factors,
            item_rows,
            item_factors,
            gram,
            weights,
            confidence,
        })
    }

    /// The stored vector (`[u, 0…]`) of a customer with `events`, solved against the fixed
    /// items; `None` when the events carry no positive signal on known items. Decay is
    /// measured from the newest of `now_ms` and the events.
    pub fn customer_vector(&self, events: &[Event], now_ms: i64) -> Option<Vec<f32>> {
        let now = events
            .iter()
            .filter(|e| self.confidence.carries_signal(e))
            .map(|e| e.timestamp_ms)
            .fold(now_ms, i64::max);
        let mut strength: HashMap<u32, f64> = HashMap::new();
        for e in events {
            if let Some(&row) = self.item_rows.get(&e.item_id) {
                *strength.entry(row).or_default() += self.confidence.event_strength(e, now);
            }
        }
        let mut row: Vec<(u32, f32)> = strength
            .into_iter()
            .filter(|(_, s)| *s > 0.0)
            .map(|(item, s)| (item, self.confidence.confidence(s)))
            .collect();
        if row.is_empty() {
            return None;
        }
        row.sort_unstable_by_key(|(item, _)| *item);
        let u = fold_in(
            &self.item_factors,
            self.factors,
            &self.gram,
            &row,
            &self.weights,
        );
        serving_customer_vector(&u, &self.layout)
    }
}
