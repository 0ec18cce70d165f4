//! A trained model as a model version stores and serves it.
//!
//! ALS scores an item for a customer by the inner product `u·y`; doppel's indexes rank by
//! cosine. The standard reduction (Bachrach et al., 2014, "Speeding up the Xbox recommender
//! system using a Euclidean transformation for inner-product spaces") appends one
//! coordinate: items become `[y, sqrt(M² − |y|²)]` with `M` the largest item norm (so every
//! item has norm `M`), customers become `[u, 0]`. Then `cos([u,0], [y,e]) = u·y / (|u| M)`:
//! for one customer, the cosine order of items *is* the inner-product order, and between
//! customers the cosine is the cosine of their factors. The version's dimension is
//! `factors + 1`.

use crate::model::Model;

/// Vectors of one model version, ready to store and index.
#[derive(Clone, Debug, Default)]
pub struct ServingVectors {
    /// `factors + 1`.
    pub dim: usize,
    /// `(customer id, [u, 0])`; customers with a zero vector are left out.
    pub customers: Vec<(String, Vec<f32>)>,
    /// `(item id, [y, sqrt(M² − |y|²)])`.
    pub items: Vec<(String, Vec<f32>)>,
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

/// A customer's serving vector `[u, 0]`, or `None` if `u` has no direction.
pub fn serving_customer_vector(u: &[f32]) -> Option<Vec<f32>> {
    let n = norm(u);
    if !n.is_finite() || n <= f32::EPSILON {
        return None;
    }
    let mut v = Vec::with_capacity(u.len() + 1);
    v.extend_from_slice(u);
    v.push(0.0);
    Some(v)
}

/// The raw item factors inside a stored serving vector (drops the norm coordinate).
pub fn raw_factors(serving: &[f32]) -> &[f32] {
    &serving[..serving.len().saturating_sub(1)]
}

impl ServingVectors {
    /// The serving vectors of `model`.
    pub fn from_model(model: &Model) -> Self {
        let f = model.factors;
        let max_norm = (0..model.item_ids.len())
            .map(|i| norm(model.item_vector(i)))
            .fold(0f32, f32::max)
            .max(f32::EPSILON);
        let items = model
            .item_ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let y = model.item_vector(i);
                let n = norm(y);
                let mut v = Vec::with_capacity(f + 1);
                v.extend_from_slice(y);
                v.push((max_norm * max_norm - n * n).max(0.0).sqrt());
                (id.clone(), v)
            })
            .collect();
        let customers = model
            .customer_ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| {
                serving_customer_vector(model.customer_vector(i)).map(|v| (id.clone(), v))
            })
            .collect();
        Self {
            dim: f + 1,
            customers,
            items,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_over_serving_vectors_ranks_items_by_inner_product() {
        let model = Model {
            factors: 2,
            customer_ids: vec!["c".into()],
            item_ids: vec!["big".into(), "small".into(), "wrong".into()],
            customer_factors: vec![1.0, 0.2],
            // "big" is less aligned than "small" but much longer: it wins on u·y.
            item_factors: vec![3.0, 3.0, 0.5, 0.1, -1.0, 0.0],
        };
        let s = ServingVectors::from_model(&model);
        assert_eq!(s.dim, 3);
        let u = &s.customers[0].1;
        let cos =
            |v: &[f32]| v.iter().zip(u).map(|(a, b)| a * b).sum::<f32>() / (norm(v) * norm(u));
        let scores: Vec<f32> = s.items.iter().map(|(_, v)| cos(v)).collect();
        assert!(scores[0] > scores[1] && scores[1] > scores[2], "{scores:?}");
        let m = norm(&s.items[0].1);
        assert!(s.items.iter().all(|(_, v)| (norm(v) - m).abs() < 1e-4));
        assert_eq!(raw_factors(&s.items[1].1), &[0.5, 0.1]);
    }
}
