//! `Strategy::Classifier`: a ridge-regularised linear discriminant (ridge-LDA) fitted at
//! query time on the seeds against the rest of the version's customers.
//!
//! The index keeps unit vectors (cosine), but what tells buyers apart is mostly the
//! length of a customer's factor vector (activity) together with its direction, so a
//! version also keeps each customer's vector length and scores **raw** vectors
//! `x = length · x̂` (see `benches/eval/research.md`, "Recommended recipe").
//!
//! * Per logical shard, once per change of its vectors: the [`Moments`] `n`, `Σx` and
//!   `Σxxᵀ` of every customer with a vector. A router adds the shards' moments up in shard
//!   order, exactly as a single node does, so the fit — and the audience — is the same.
//! * Per query, with the seeds' sum `s_S` over `m` seeds:
//!   `μ_S = s_S/m`, `μ_R = (Σx − s_S)/(n − m)`, `Σ = Σxxᵀ/n − μμᵀ` and
//!   `w = (Σ + λ·(tr Σ/d')·I)⁻¹ (μ_S − μ_R)` with `d'` the coordinates that vary, solved by
//!   Cholesky in f64.
//! * A customer scores `z = (x·w − μ·w) / √(wᵀΣw)`, a standardised score comparable across
//!   queries, reported as `z / (1 + |z|)` so that it stays in `(−1, 1)` like the cosine
//!   strategies' scores (and `min_score` keeps its range), without saturating in f32.

use doppel_index::dot;

/// The ridge `λ`, relative to the mean variance of the customer vectors. Chosen on the
/// validation split of Online Retail: precision is flat from 10 to 1000 (research.md,
/// "Recommended recipe").
pub const CLASSIFIER_RIDGE: f64 = 10.0;
/// What `DescribeVersion` says of the vectors audiences score.
pub const AUDIENCE_VECTORS: &str = "offer customer vectors: unit vectors for CENTROID and \
MAX_SIMILARITY; for CLASSIFIER, each at the length it was given (kept per customer)";
/// Largest vector dimension classifier audiences serve: the moments of a shard are
/// `d(d+1)/2` doubles (1 MiB at 512) and the fit is a `d×d` Cholesky per query.
pub const CLASSIFIER_MAX_DIM: usize = 512;

/// First and second moments of a set of raw customer vectors: `n`, `Σx`, and `Σxxᵀ` as
/// the packed upper triangle (row by row), all in f64.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Moments {
    /// Vectors added.
    pub n: u64,
    /// `Σx`, `dim` values.
    pub sum: Vec<f64>,
    /// `Σxxᵀ`, upper triangle packed row by row: `dim·(dim+1)/2` values.
    pub gram: Vec<f64>,
}

impl Moments {
    /// Nothing added yet, for vectors of `dim` values.
    pub fn new(dim: usize) -> Self {
        Self {
            n: 0,
            sum: vec![0.0; dim],
            gram: vec![0.0; packed_len(dim)],
        }
    }

    /// The dimension these moments are of.
    pub fn dim(&self) -> usize {
        self.sum.len()
    }

    /// True when the shape is that of `dim`-dimensional moments.
    pub fn fits(&self, dim: usize) -> bool {
        self.sum.len() == dim && self.gram.len() == packed_len(dim)
    }

    /// Adds the raw vector `length · unit`.
    pub fn add(&mut self, unit: &[f32], length: f32) {
        let x: Vec<f64> = unit.iter().map(|&u| raw(u, length)).collect();
        self.n += 1;
        let mut at = 0;
        for (i, &xi) in x.iter().enumerate() {
            self.sum[i] += xi;
            for &xj in &x[i..] {
                self.gram[at] += xi * xj;
                at += 1;
            }
        }
    }

    /// Takes out the raw vector `length · unit`, added before.
    pub fn remove(&mut self, unit: &[f32], length: f32) {
        let x: Vec<f64> = unit.iter().map(|&u| raw(u, length)).collect();
        self.n = self.n.saturating_sub(1);
        let mut at = 0;
        for (i, &xi) in x.iter().enumerate() {
            self.sum[i] -= xi;
            for &xj in &x[i..] {
                self.gram[at] -= xi * xj;
                at += 1;
            }
        }
    }

    /// Adds `other`'s vectors (same dimension). Callers add shards in shard order, so that
    /// every process gets the same sums.
    pub fn merge(&mut self, other: &Moments) {
        self.n += other.n;
        self.sum
            .iter_mut()
            .zip(&other.sum)
            .for_each(|(a, b)| *a += b);
        self.gram
            .iter_mut()
            .zip(&other.gram)
            .for_each(|(a, b)| *a += b);
    }
}

/// One coordinate of a raw vector, as every sum here computes it (f32 product, then f64).
fn raw(unit: f32, length: f32) -> f64 {
    f64::from(unit * length)
}

fn packed_len(dim: usize) -> usize {
    dim * (dim + 1) / 2
}

/// A fitted linear scorer over unit vectors and their lengths.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearScorer {
    /// `w`, in the version's vector space, of unit length.
    pub weights: Vec<f32>,
    /// `μ·w`: the population's mean raw score.
    pub offset: f32,
    /// `√(wᵀΣw)`: the population's standard deviation of the raw score (> 0).
    pub scale: f32,
}

impl LinearScorer {
    /// The standardised score of a raw dot product `length · (x̂·w)`, squashed into (−1, 1).
    pub fn squash(&self, length: f32, unit_dot: f32) -> f32 {
        // In f64: no finite input overflows, so z is never ±∞ (which would give NaN).
        let z = (f64::from(length) * f64::from(unit_dot) - f64::from(self.offset))
            / f64::from(self.scale);
        (z / (1.0 + z.abs())) as f32
    }

    /// The score of the unit vector `unit` of length `length`.
    pub fn score(&self, unit: &[f32], length: f32) -> f32 {
        self.squash(length, dot(unit, &self.weights))
    }

    /// A bound on the score's error when `x̂·w` is off by at most `dot_error`: the squash
    /// is 1-Lipschitz in `z`.
    pub fn error(&self, length: f32, dot_error: f32) -> f32 {
        length * dot_error / self.scale
    }

    /// `Σ|w|`, for int8 error bounds.
    pub fn l1(&self) -> f32 {
        self.weights.iter().map(|w| w.abs()).sum()
    }
}

/// Fits the classifier of `seeds` (unit vectors and their lengths) against `population`
/// (the moments of every customer of the version, seeds included) with relative ridge
/// `ridge`. `None` when there is nothing to separate: no seeds, no other customers, or
/// seeds whose mean is the population's.
pub fn fit(seeds: &[(&[f32], f32)], population: &Moments, ridge: f64) -> Option<LinearScorer> {
    let d = population.dim();
    let m = seeds.len() as u64;
    if m == 0 || population.n <= m || d == 0 {
        return None;
    }
    let mut seed_sum = vec![0f64; d];
    for (unit, length) in seeds {
        if unit.len() != d {
            return None;
        }
        seed_sum
            .iter_mut()
            .zip(unit.iter())
            .for_each(|(s, &u)| *s += raw(u, *length));
    }
    let n = population.n as f64;
    let mean: Vec<f64> = population.sum.iter().map(|s| s / n).collect();
    let rest = (population.n - m) as f64;
    let diff: Vec<f64> = (0..d)
        .map(|i| seed_sum[i] / m as f64 - (population.sum[i] - seed_sum[i]) / rest)
        .collect();
    let covariance = covariance(population, &mean);
    let trace: f64 = (0..d).map(|i| covariance[i * d + i]).sum();
    // The mean variance over the coordinates that vary, so that constant coordinates (a
    // layout's padding or its offer-prior slot) do not change what `ridge` means.
    let varying = (0..d)
        .filter(|&i| covariance[i * d + i] > 0.0)
        .count()
        .max(1);
    let w = if trace > 0.0 && trace.is_finite() {
        let mut a = covariance.clone();
        let shift = ridge * trace / varying as f64;
        (0..d).for_each(|i| a[i * d + i] += shift);
        cholesky_solve(&mut a, &diff, d).unwrap_or_else(|| diff.clone())
    } else {
        diff
    };
    // Scaled to unit length (z does not change): the int8 scan's error bound and its
    // float slack assume a query of about unit length.
    let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
    if !(norm.is_finite() && norm > 0.0) {
        return None;
    }
    let w: Vec<f64> = w.iter().map(|x| x / norm).collect();
    let offset: f64 = mean.iter().zip(&w).map(|(a, b)| a * b).sum();
    let variance: f64 = (0..d)
        .map(|i| w[i] * (0..d).map(|j| covariance[i * d + j] * w[j]).sum::<f64>())
        .sum();
    let weights: Vec<f32> = w.iter().map(|&x| x as f32).collect();
    let usable = weights.iter().all(|x| x.is_finite()) && weights.iter().any(|&x| x != 0.0);
    if !usable {
        return None;
    }
    let scale = variance.sqrt() as f32;
    Some(LinearScorer {
        weights,
        offset: offset as f32,
        scale: if scale.is_finite() && scale >= f32::MIN_POSITIVE {
            scale
        } else {
            1.0
        },
    })
}

/// `Σxxᵀ/n − μμᵀ`, full `d×d`, row-major.
fn covariance(population: &Moments, mean: &[f64]) -> Vec<f64> {
    let d = mean.len();
    let n = population.n as f64;
    let mut c = vec![0f64; d * d];
    let mut at = 0;
    for i in 0..d {
        for j in i..d {
            let v = population.gram[at] / n - mean[i] * mean[j];
            c[i * d + j] = v;
            c[j * d + i] = v;
            at += 1;
        }
    }
    c
}

/// Solves `A w = b` for a symmetric positive definite `A` (`d×d`, row-major, overwritten
/// by its Cholesky factor). `None` when `A` is not positive definite.
fn cholesky_solve(a: &mut [f64], b: &[f64], d: usize) -> Option<Vec<f64>> {
    for j in 0..d {
        let mut diag = a[j * d + j];
        for k in 0..j {
            diag -= a[j * d + k] * a[j * d + k];
        }
        if diag.is_nan() || diag <= 0.0 || !diag.is_finite() {
            return None;
        }
        let diag = diag.sqrt();
        a[j * d + j] = diag;
        for i in j + 1..d {
            let mut v = a[i * d + j];
            for k in 0..j {
                v -= a[i * d + k] * a[j * d + k];
            }
            a[i * d + j] = v / diag;
        }
    }
    // L y = b, then Lᵀ w = y.
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
    Some(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(rows: &[(Vec<f32>, f32)]) -> Moments {
        let mut m = Moments::new(rows[0].0.len());
        for (u, l) in rows {
            m.add(u, *l);
        }
        m
    }

    #[test]
    fn cholesky_solves_a_small_system() {
        // A = [[4, 2], [2, 3]], b = [2, 1] → w = [0.5, 0].
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let w = cholesky_solve(&mut a, &[2.0, 1.0], 2).expect("SPD");
        assert!((w[0] - 0.5).abs() < 1e-12 && w[1].abs() < 1e-12, "{w:?}");
        let mut singular = vec![1.0, 1.0, 1.0, 1.0];
        assert!(cholesky_solve(&mut singular, &[1.0, 0.0], 2).is_none());
    }

    #[test]
    fn moments_merge_like_one_pass() {
        let rows: Vec<(Vec<f32>, f32)> = (0..10)
            .map(|i| (vec![(i as f32).cos(), (i as f32).sin()], 1.0 + i as f32))
            .collect();
        let whole = moments(&rows);
        let mut halves = moments(&rows[..4]);
        halves.merge(&moments(&rows[4..]));
        assert_eq!(whole.n, halves.n);
        for (a, b) in whole.gram.iter().zip(&halves.gram) {
            assert!((a - b).abs() < 1e-9);
        }
    }

    #[test]
    fn removing_a_vector_undoes_adding_it() {
        let rows: Vec<(Vec<f32>, f32)> = (0..6)
            .map(|i| (vec![(i as f32).cos(), (i as f32).sin()], 0.5 + i as f32))
            .collect();
        let mut m = moments(&rows);
        m.remove(&rows[5].0, rows[5].1);
        let fresh = moments(&rows[..5]);
        assert_eq!(m.n, fresh.n);
        for (a, b) in m
            .sum
            .iter()
            .chain(&m.gram)
            .zip(fresh.sum.iter().chain(&fresh.gram))
        {
            assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        }
    }

    #[test]
    fn the_fit_ignores_a_high_variance_direction_the_seeds_do_not_differ_in() {
        // Dimension 0 tells seeds (x0 ≈ 1) from the rest (x0 ≈ 0); dimension 1 varies a
        // lot for everyone. w must lean on dimension 0.
        let mut rows = Vec::new();
        let mut seeds = Vec::new();
        for i in 0..200 {
            let noise = if i % 2 == 0 { 3.0 } else { -3.0 };
            let signal = if i < 50 { 1.0 } else { 0.0 };
            let x = [signal + 0.01 * (i % 7) as f32, noise];
            let length = (x[0] * x[0] + x[1] * x[1]).sqrt();
            let unit = vec![x[0] / length, x[1] / length];
            if i < 50 {
                seeds.push((unit.clone(), length));
            }
            rows.push((unit, length));
        }
        let population = moments(&rows);
        let seeds: Vec<(&[f32], f32)> = seeds.iter().map(|(u, l)| (u.as_slice(), *l)).collect();
        let fitted = fit(&seeds, &population, 0.1).expect("fit");
        assert!(
            fitted.weights[0].abs() > 10.0 * fitted.weights[1].abs(),
            "{:?}",
            fitted.weights
        );
        // Seeds score above the rest.
        let (u, l) = &rows[0];
        let (v, k) = &rows[100];
        assert!(fitted.score(u, *l) > fitted.score(v, *k));
        assert!(fitted.score(u, *l) < 1.0 && fitted.score(v, *k) > -1.0);
    }

    #[test]
    fn nothing_to_fit_without_seeds_or_other_customers() {
        let rows = vec![(vec![1.0, 0.0], 1.0), (vec![0.0, 1.0], 2.0)];
        let population = moments(&rows);
        assert!(fit(&[], &population, 10.0).is_none());
        let all: Vec<(&[f32], f32)> = rows.iter().map(|(u, l)| (u.as_slice(), *l)).collect();
        assert!(fit(&all, &population, 10.0).is_none());
    }
}
