//! The customers a lookalike evaluation scores, as a served version holds them: each
//! customer's unit vector and the length it had, and the moments of all of them, so that
//! audiences are planned by the engine's own [`plan_scorer`] (centroid, max-similarity
//! or the classifier) and scored the way a node scores them.

use std::collections::{BTreeSet, HashMap};

use doppel_engine::{CLASSIFIER_RIDGE, ClassifierInputs, Moments, Strategy, plan_scorer};
use doppel_train::Model;

/// Every customer's unit vector and length, by customer id, and their moments.
pub struct Population {
    rows: HashMap<u64, (Vec<f32>, f32)>,
    moments: Moments,
    dim: usize,
}

fn unit_and_length(v: &[f32]) -> (Vec<f32>, f32) {
    let length = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let scale = length.max(f32::EPSILON);
    (v.iter().map(|x| x / scale).collect(), length)
}

impl Population {
    /// The customers of `ids` that `model` has.
    pub fn new(model: &Model, ids: impl Iterator<Item = u64>) -> Self {
        let dim = model.factors;
        let mut rows = HashMap::new();
        let mut moments = Moments::new(dim);
        for c in ids {
            let Some(row) = model.customer_position(&c.to_string()) else {
                continue;
            };
            let (unit, length) = unit_and_length(model.customer_vector(row));
            moments.add(&unit, length);
            rows.insert(c, (unit, length));
        }
        Self { rows, moments, dim }
    }

    /// The unit vector of customer `c`.
    pub fn unit(&self, c: u64) -> Option<&[f32]> {
        self.rows.get(&c).map(|(u, _)| u.as_slice())
    }

    /// The best `n` of `candidates` for `seeds` with `strategy`, ties by id, and the
    /// strategy the engine used.
    pub fn audience(
        &self,
        strategy: Strategy,
        seeds: &BTreeSet<u64>,
        candidates: &[u64],
        n: usize,
    ) -> (Vec<u64>, Strategy) {
        let (vectors, lengths): (Vec<Vec<f32>>, Vec<f32>) = seeds
            .iter()
            .filter_map(|c| self.rows.get(c).cloned())
            .unzip();
        let (spec, used) = plan_scorer(
            strategy,
            &vectors,
            &[],
            self.dim,
            Some(ClassifierInputs {
                seed_lengths: &lengths,
                population: &self.moments,
                ridge: CLASSIFIER_RIDGE,
            }),
        );
        let mut scored: Vec<(f32, u64)> = candidates
            .iter()
            .map(|c| {
                let s = self
                    .rows
                    .get(c)
                    .map_or(f32::NEG_INFINITY, |(u, l)| spec.score(u, *l));
                (s, *c)
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        (scored.into_iter().take(n).map(|(_, c)| c).collect(), used)
    }
}
