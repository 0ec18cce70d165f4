//! The recent-popularity prior of a trained version's offers, and the vector layout that
//! serves it through the cosine item index.
//!
//! A trained version scores item `i` for customer `u` by
//!
//! ```text
//! score(u, i) = z_u(u·y_i) + β·p_i
//! ```
//!
//! where `z_u` standardises the customer's inner products over the catalogue and
//! `p_i = z(ln(1 + distinct buyers of i in the last D days before training))`, standardised
//! over the catalogue. β and D are chosen on a validation window (`doppel evaluate --tune`).
//! Shifting and scaling one customer's scores does not change their order, so the order is
//! that of `u·y_i + β·σ_u·p_i`, with `σ_u = sqrt(uᵀ C u)` the standard deviation of the
//! customer's inner products and `C` the covariance of the item factors (the mean drops
//! out).
//!
//! That is an inner product, so the index serves it exactly as it serves plain ALS
//! (see `doppel_train::ServingVectors`): items are stored as `[y, p, pad]` with
//! `pad = sqrt(M² − |y|² − p²)` (every item has norm `M`), customers as `[u, 0, 0]`, and the
//! offer query is `[u, β·σ_u, 0]`. Cosine over the stored vectors keeps what it meant before
//! for customers (lookalikes) and items alike; only offers read the prior.
//!
//! Indexes keep vectors normalised, which divides every item by the same `M`: `σ_u` read
//! from normalised items is `σ_u / M`, and so is the spread of their prior coordinate, whose
//! raw values are standardised (spread 1). The query uses their ratio, so it is the same
//! whether the items it was computed from were normalised or not.

use crate::version::{VersionInfo, VersionSource};

/// `VersionInfo.params` key of β (absent or 0: the version has no prior).
pub const WEIGHT_PARAM: &str = "recent_popularity_weight";
/// `VersionInfo.params` key of D, in days.
pub const DAYS_PARAM: &str = "recent_popularity_days";
/// `VersionInfo.params` key of the number of latent factors of a trained version.
pub const FACTORS_PARAM: &str = "factors";
/// Longest window of the prior, in days.
pub const MAX_DAYS: f32 = 365.0;
/// Largest β.
pub const MAX_WEIGHT: f32 = 100.0;

/// How a trained version's vectors are laid out: `factors` latent factors, then the prior
/// coordinate when the version has one, then the norm padding.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VectorLayout {
    /// Latent factors.
    pub factors: usize,
    /// β, 0 when the version has no prior coordinate.
    pub prior_weight: f32,
}

impl VectorLayout {
    /// The stored dimension: factors, the prior coordinate if any, the padding.
    pub fn dim(&self) -> usize {
        self.factors + usize::from(self.has_prior()) + 1
    }

    /// True when items carry the prior coordinate.
    pub fn has_prior(&self) -> bool {
        self.prior_weight > 0.0
    }

    /// The layout of a trained version (`None` for an imported one, or when its params do
    /// not describe its dimension). Without a recorded factor count the version is the
    /// plain `[factors, pad]` layout.
    pub fn of(info: &VersionInfo) -> Option<Self> {
        if info.source != VersionSource::Trained {
            return None;
        }
        let factors: usize = match info.params.get(FACTORS_PARAM) {
            Some(f) => f.parse().ok()?,
            None => (info.dim as usize).checked_sub(1)?,
        };
        let prior_weight = info
            .params
            .get(WEIGHT_PARAM)
            .and_then(|w| w.parse::<f32>().ok())
            .filter(|w| w.is_finite() && *w > 0.0)
            .unwrap_or(0.0);
        let layout = Self {
            factors,
            prior_weight,
        };
        (layout.dim() == info.dim as usize).then_some(layout)
    }

    /// The latent factors inside a stored vector of this layout.
    pub fn factors_of<'a>(&self, stored: &'a [f32]) -> &'a [f32] {
        &stored[..self.factors.min(stored.len())]
    }

    /// A customer's stored vector: `u` followed by zeros.
    pub fn customer_vector(&self, u: &[f32]) -> Vec<f32> {
        let mut v = Vec::with_capacity(self.dim());
        v.extend_from_slice(u);
        v.resize(self.dim(), 0.0);
        v
    }
}

/// What offers of a version with a prior need at query time: β and the covariance of the
/// item factors.
#[derive(Clone, Debug)]
pub struct OfferPrior {
    layout: VectorLayout,
    /// `factors × factors`, row-major.
    covariance: Vec<f64>,
    /// The spread of the items' prior coordinate (1 before normalisation, `1/M` after).
    prior_spread: f64,
}

impl OfferPrior {
    /// From the layout and the version's stored item vectors; `None` when the layout has no
    /// prior or there are no items.
    pub fn new<'a>(layout: VectorLayout, items: impl Iterator<Item = &'a [f32]>) -> Option<Self> {
        if !layout.has_prior() {
            return None;
        }
        let f = layout.factors;
        let mut sum = vec![0f64; f];
        let mut products = vec![0f64; f * f];
        let (mut prior_sum, mut prior_squares) = (0f64, 0f64);
        let mut n = 0usize;
        for stored in items {
            let y = layout.factors_of(stored);
            if y.len() != f || stored.len() != layout.dim() {
                continue;
            }
            n += 1;
            let p = f64::from(stored[f]);
            prior_sum += p;
            prior_squares += p * p;
            for (a, &ya) in y.iter().enumerate() {
                sum[a] += f64::from(ya);
                let row = &mut products[a * f..a * f + a + 1];
                for (p, &yb) in row.iter_mut().zip(y) {
                    *p += f64::from(ya) * f64::from(yb);
                }
            }
        }
        if n == 0 {
            return None;
        }
        let n = n as f64;
        let mut covariance = vec![0f64; f * f];
        for a in 0..f {
            for b in 0..=a {
                let c = products[a * f + b] / n - (sum[a] / n) * (sum[b] / n);
                covariance[a * f + b] = c;
                covariance[b * f + a] = c;
            }
        }
        let prior_mean = prior_sum / n;
        let prior_spread = (prior_squares / n - prior_mean * prior_mean)
            .max(0.0)
            .sqrt();
        Some(Self {
            layout,
            covariance,
            prior_spread,
        })
    }

    /// The standard deviation of `u·y` over the catalogue.
    pub fn spread(&self, u: &[f32]) -> f64 {
        let f = self.layout.factors;
        let mut total = 0f64;
        for (a, &ua) in u.iter().enumerate().take(f) {
            let row = &self.covariance[a * f..(a + 1) * f];
            let cu: f64 = row.iter().zip(u).map(|(c, &ub)| c * f64::from(ub)).sum();
            total += f64::from(ua) * cu;
        }
        total.max(0.0).sqrt()
    }

    /// The offer query of a customer's stored vector `[u, 0, 0]`: `[u, β·σ_u, 0]` (in the
    /// items' own scale; 0 when the prior is flat).
    pub fn query(&self, customer: &[f32]) -> Vec<f32> {
        let f = self.layout.factors;
        let mut q = self
            .layout
            .customer_vector(self.layout.factors_of(customer));
        if q.len() > f && self.prior_spread > 1e-12 {
            let weight = f64::from(self.layout.prior_weight);
            q[f] = (weight * self.spread(&q[..f]) / self.prior_spread) as f32;
        }
        q
    }

    /// The version's layout.
    pub fn layout(&self) -> VectorLayout {
        self.layout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum()
    }

    #[test]
    fn the_query_ranks_items_by_standardised_score_plus_weighted_prior() {
        let layout = VectorLayout {
            factors: 2,
            prior_weight: 1.5,
        };
        let ys = [
            [1.0f32, 0.2],
            [0.3, 0.9],
            [-0.5, 0.4],
            [0.8, -0.7],
            [0.1, 0.1],
        ];
        let raw = [-1.2f32, 0.9, 1.6, -0.4, -0.9];
        let mean = raw.iter().sum::<f32>() / 5.0;
        let sd = (raw.iter().map(|p| (p - mean).powi(2)).sum::<f32>() / 5.0).sqrt();
        let priors = raw.map(|p| (p - mean) / sd);
        let m: f32 = 3.0;
        let items: Vec<Vec<f32>> = ys
            .iter()
            .zip(priors)
            .map(|(y, p)| {
                let n2 = y[0] * y[0] + y[1] * y[1] + p * p;
                vec![y[0], y[1], p, (m * m - n2).sqrt()]
            })
            .collect();
        let u = [0.7f32, -0.3];
        let scores: Vec<f64> = ys.iter().map(|y| dot(&u, y)).collect();
        let mean = scores.iter().sum::<f64>() / 5.0;
        let sd = (scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / 5.0).sqrt();
        let order = |key: &dyn Fn(usize) -> f64| {
            let mut o: Vec<usize> = (0..5).collect();
            o.sort_by(|&a, &b| key(b).total_cmp(&key(a)));
            o
        };
        let wanted = order(&|i| (scores[i] - mean) / sd + 1.5 * f64::from(priors[i]));
        // As stored, and as an index keeps them (normalised), with a normalised customer.
        let normalised: Vec<Vec<f32>> = items
            .iter()
            .map(|v| v.iter().map(|x| x / m).collect())
            .collect();
        for (stored, scale) in [(&items, 1.0f32), (&normalised, 0.25)] {
            let prior = OfferPrior::new(layout, stored.iter().map(Vec::as_slice)).expect("prior");
            let q = prior.query(&layout.customer_vector(&u.map(|x| x * scale)));
            assert_eq!(q.len(), 4);
            let served = order(&|i| dot(&q, &stored[i]));
            assert_eq!(served, wanted);
        }
        let prior = OfferPrior::new(layout, items.iter().map(Vec::as_slice)).expect("prior");
        assert!(
            (prior.spread(&u) - sd).abs() < 1e-6,
            "{} vs {sd}",
            prior.spread(&u)
        );
    }

    #[test]
    fn layouts_come_from_trained_params_matching_the_dimension() {
        let mut info = VersionInfo {
            dim: 130,
            source: VersionSource::Trained,
            ..VersionInfo::default()
        };
        let old = VectorLayout::of(&info).expect("no factors recorded");
        assert_eq!((old.factors, old.has_prior()), (129, false));
        info.params.insert(FACTORS_PARAM.into(), "128".into());
        assert_eq!(VectorLayout::of(&info), None, "129 without a prior");
        info.params.insert(WEIGHT_PARAM.into(), "3.2".into());
        let layout = VectorLayout::of(&info).expect("layout");
        assert!(layout.has_prior());
        info.params.insert(WEIGHT_PARAM.into(), "0".into());
        assert_eq!(VectorLayout::of(&info), None);
        info.dim = 129;
        assert!(!VectorLayout::of(&info).expect("plain").has_prior());
        info.source = VersionSource::Imported;
        assert_eq!(VectorLayout::of(&info), None);
    }
}
