//! A trained factorisation: one vector per customer and per item.

use serde::{Deserialize, Serialize};

use crate::dense::dot;
use crate::gram::Gram;

/// Customer and item factors from `train`. A customer's affinity for
/// an item is the dot product of their vectors; customers with similar vectors behave alike.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Dimensions per vector.
    pub factors: usize,
    /// Customer ids, sorted; row `n` of `customer_factors` belongs to `customer_ids[n]`.
    pub customer_ids: Vec<String>,
    /// Item ids, sorted; row `n` of `item_factors` belongs to `item_ids[n]`.
    pub item_ids: Vec<String>,
    /// Row-major `customer_ids.len() × factors`.
    pub customer_factors: Vec<f32>,
    /// Row-major `item_ids.len() × factors`.
    pub item_factors: Vec<f32>,
}

impl Model {
    /// Vector of the customer at `index` (panics if out of range).
    pub fn customer_vector(&self, index: usize) -> &[f32] {
        &self.customer_factors[index * self.factors..(index + 1) * self.factors]
    }

    /// Vector of the item at `index` (panics if out of range).
    pub fn item_vector(&self, index: usize) -> &[f32] {
        &self.item_factors[index * self.factors..(index + 1) * self.factors]
    }

    /// Row of a customer id (binary search: ids are sorted).
    pub fn customer_position(&self, id: &str) -> Option<usize> {
        self.customer_ids
            .binary_search_by(|probe| probe.as_str().cmp(id))
            .ok()
    }

    /// Row of an item id (binary search: ids are sorted).
    pub fn item_position(&self, id: &str) -> Option<usize> {
        self.item_ids
            .binary_search_by(|probe| probe.as_str().cmp(id))
            .ok()
    }

    /// `YᵀY` of the item factors, for `fold_in()`.
    pub fn item_gram(&self) -> Gram {
        Gram::new(&self.item_factors, self.factors)
    }

    /// The `k` items with the highest dot product with `customer_vector`, best first, as
    /// (item row, score); ties go to the lower row. Exact scan — for tests and small
    /// catalogues; serving uses the vector index.
    pub fn top_items(&self, customer_vector: &[f32], k: usize) -> Vec<(usize, f32)> {
        let mut scored: Vec<(usize, f32)> = (0..self.item_ids.len())
            .map(|i| (i, dot(customer_vector, self.item_vector(i))))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(k);
        scored
    }
}
