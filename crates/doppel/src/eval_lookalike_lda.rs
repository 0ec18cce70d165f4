//! An experiment towards issue 12's `Strategy.CLASSIFIER`, measured on doppel's own customer
//! vectors: ridge linear discriminant audiences (the recipe of `benches/eval/research.md`,
//! "Lookalike scorers"). For seeds `S` among the customers `U`:
//! `w = (Σ + λ·tr(Σ)/d·I)⁻¹ (μ_S − μ_rest)`, with `Σ` the covariance of every customer's
//! vector and `μ_rest` the mean of the non-seeds, and a candidate scores `x·w`. Run on the
//! raw factors (what activity the vector's length carries counts) and on unit vectors (what
//! the cosine index keeps today). λ = 10, the research's choice; not tuned here.

use std::collections::BTreeSet;

use doppel_train::Model;

/// Ridge strength relative to the mean variance.
const LAMBDA: f64 = 10.0;

/// Every customer's vector (raw or unit), by customer id.
pub struct Population {
    ids: Vec<u64>,
    vectors: Vec<Vec<f64>>,
    sum: Vec<f64>,
    covariance: Vec<f64>,
    dim: usize,
}

impl Population {
    /// The customers of `ids` that `model` has, raw or scaled to unit length.
    pub fn new(model: &Model, ids: impl Iterator<Item = u64>, unit: bool) -> Self {
        let dim = model.factors;
        let mut out = Self {
            ids: Vec::new(),
            vectors: Vec::new(),
            sum: vec![0.0; dim],
            covariance: vec![0.0; dim * dim],
            dim,
        };
        for c in ids {
            let Some(row) = model.customer_position(&c.to_string()) else {
                continue;
            };
            let mut v: Vec<f64> = model
                .customer_vector(row)
                .iter()
                .map(|x| f64::from(*x))
                .collect();
            if unit {
                let n = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
                v.iter_mut().for_each(|x| *x /= n);
            }
            for (a, &va) in v.iter().enumerate() {
                out.sum[a] += va;
                for (b, &vb) in v.iter().enumerate() {
                    out.covariance[a * dim + b] += va * vb;
                }
            }
            out.ids.push(c);
            out.vectors.push(v);
        }
        let n = out.ids.len().max(1) as f64;
        for a in 0..dim {
            for b in 0..dim {
                out.covariance[a * dim + b] =
                    out.covariance[a * dim + b] / n - (out.sum[a] / n) * (out.sum[b] / n);
            }
        }
        out
    }

    /// The best `n` of `candidates` for `seeds`, ties by id.
    pub fn audience(&self, seeds: &BTreeSet<u64>, candidates: &[u64], n: usize) -> Vec<u64> {
        let d = self.dim;
        let (mut seed_sum, mut m) = (vec![0.0; d], 0usize);
        for (c, v) in self.ids.iter().zip(&self.vectors) {
            if seeds.contains(c) {
                seed_sum.iter_mut().zip(v).for_each(|(s, x)| *s += x);
                m += 1;
            }
        }
        let rest = self.ids.len().saturating_sub(m).max(1) as f64;
        let diff: Vec<f64> = (0..d)
            .map(|a| seed_sum[a] / m.max(1) as f64 - (self.sum[a] - seed_sum[a]) / rest)
            .collect();
        let trace: f64 = (0..d).map(|a| self.covariance[a * d + a]).sum();
        let mut matrix = self.covariance.clone();
        for a in 0..d {
            matrix[a * d + a] += LAMBDA * trace / d as f64;
        }
        let w = cholesky_solve(&mut matrix, &diff, d);
        let index: std::collections::HashMap<u64, &Vec<f64>> =
            self.ids.iter().copied().zip(&self.vectors).collect();
        let mut scored: Vec<(f64, u64)> = candidates
            .iter()
            .map(|c| {
                let s = index.get(c).map_or(f64::NEG_INFINITY, |v| {
                    v.iter().zip(&w).map(|(x, y)| x * y).sum()
                });
                (s, *c)
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.into_iter().take(n).map(|(_, c)| c).collect()
    }
}

/// Solves `A x = b` for a symmetric positive definite `A` (`d × d`, overwritten by its
/// Cholesky factor).
fn cholesky_solve(a: &mut [f64], b: &[f64], d: usize) -> Vec<f64> {
    for j in 0..d {
        let mut diag = a[j * d + j];
        for k in 0..j {
            diag -= a[j * d + k] * a[j * d + k];
        }
        let diag = diag.max(1e-300).sqrt();
        a[j * d + j] = diag;
        for i in j + 1..d {
            let mut v = a[i * d + j];
            for k in 0..j {
                v -= a[i * d + k] * a[j * d + k];
            }
            a[i * d + j] = v / diag;
        }
    }
    let mut y = b.to_vec();
    for i in 0..d {
        for k in 0..i {
            y[i] -= a[i * d + k] * y[k];
        }
        y[i] /= a[i * d + i];
    }
    for i in (0..d).rev() {
        for k in i + 1..d {
            y[i] -= a[k * d + i] * y[k];
        }
        y[i] /= a[i * d + i];
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_small_system() {
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let x = cholesky_solve(&mut a, &[6.0, 5.0], 2);
        assert!(
            (x[0] - 1.0).abs() < 1e-12 && (x[1] - 1.0).abs() < 1e-12,
            "{x:?}"
        );
    }
}
