//! A trained model as a model version stores and serves it.
//!
//! ALS scores an item for a customer by the inner product `u·y`; doppel's indexes rank by
//! cosine. The standard reduction (Bachrach et al., 2014, "Speeding up the Xbox recommender
//! system using a Euclidean transformation for inner-product spaces") appends one
//! coordinate: items become `[y, sqrt(M² − |y|²)]` with `M` the largest item norm (so every
//! item has norm `M`), customers become `[u, 0]`. Then `cos([u,0], [y,e]) = u·y / (|u| M)`:
//! for one customer, the cosine order of items *is* the inner-product order, and between
//! customers the cosine is the cosine of their factors. The version's dimension is
//! `factors + 1` (`factors + 2` with the recent-popularity prior, see
//! [`doppel_types::offer_prior`]).

use doppel_types::VectorLayout;

use crate::model::Model;

/// Vectors of one model version, ready to store and index.
#[derive(Clone, Debug)]
pub struct ServingVectors {
    /// Factors, prior coordinate, padding ([`VectorLayout::dim`] is the dimension).
    pub layout: VectorLayout,
    /// `(customer id, [u, 0…])`; customers with a zero vector are left out.
    pub customers: Vec<(String, Vec<f32>)>,
    /// `(item id, [y, (p,) sqrt(M² − |y|² (− p²))])`.
    pub items: Vec<(String, Vec<f32>)>,
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

/// A customer's stored vector in `layout` (`[u, 0…]`), or `None` if `u` has no direction.
pub fn serving_customer_vector(u: &[f32], layout: &VectorLayout) -> Option<Vec<f32>> {
    let n = norm(u);
    if !n.is_finite() || n <= f32::EPSILON {
        return None;
    }
    Some(layout.customer_vector(u))
}

impl ServingVectors {
    /// The serving vectors of `model` (plain inner product, no prior).
    pub fn from_model(model: &Model) -> Self {
        Self::with_prior(model, 0.0, &[])
    }

    /// The serving vectors of `model` with the recent-popularity prior `prior` (one value
    /// per model item, standardised) weighted by `weight` at query time; no prior
    /// coordinate when `weight` is 0 (see [`doppel_types::offer_prior`]).
    pub fn with_prior(model: &Model, weight: f32, prior: &[f32]) -> Self {
        let f = model.factors;
        let has_prior = weight > 0.0 && prior.len() == model.item_ids.len();
        let layout = VectorLayout {
            factors: f,
            prior_weight: if has_prior { weight } else { 0.0 },
        };
        let prior_of = |i: usize| if has_prior { prior[i] } else { 0.0 };
        let max_norm = (0..model.item_ids.len())
            .map(|i| norm(model.item_vector(i)).hypot(prior_of(i)))
            .fold(0f32, f32::max)
            .max(f32::EPSILON);
        let items = model
            .item_ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let y = model.item_vector(i);
                let n = norm(y).hypot(prior_of(i));
                let mut v = Vec::with_capacity(layout.dim());
                v.extend_from_slice(y);
                if has_prior {
                    v.push(prior[i]);
                }
                v.push((max_norm * max_norm - n * n).max(0.0).sqrt());
                (id.clone(), v)
            })
            .collect();
        let customers = model
            .customer_ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| {
                serving_customer_vector(model.customer_vector(i), &layout).map(|v| (id.clone(), v))
            })
            .collect();
        Self {
            layout,
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
        assert_eq!(s.layout.dim(), 3);
        let u = &s.customers[0].1;
        let cos =
            |v: &[f32]| v.iter().zip(u).map(|(a, b)| a * b).sum::<f32>() / (norm(v) * norm(u));
        let scores: Vec<f32> = s.items.iter().map(|(_, v)| cos(v)).collect();
        assert!(scores[0] > scores[1] && scores[1] > scores[2], "{scores:?}");
        let m = norm(&s.items[0].1);
        assert!(s.items.iter().all(|(_, v)| (norm(v) - m).abs() < 1e-4));
        assert_eq!(s.layout.factors_of(&s.items[1].1), &[0.5, 0.1]);
    }
}
