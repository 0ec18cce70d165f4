//! Hyper-parameters of implicit ALS, their defaults and their bounds.

use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};

// The defaults of factors, regularisation, its exponent, the unobserved weight and
// iterations (and of alpha and the half-life in `confidence`) are what `doppel evaluate
// --tune` chose on Online Retail's validation split (benches/eval/PROTOCOL.md §2.1), never
// on the test window; benches/eval/results.md has the search.

/// Default [`AlsParams::factors`].
pub const DEFAULT_FACTORS: usize = 128;
/// Default [`AlsParams::regularization`] (0.008366 chosen, rounded): with the default
/// exponent 1 a customer with `n` purchases among `N` items is penalised by
/// `0.0084 × (n + N)`.
pub const DEFAULT_REGULARIZATION: f32 = 0.0084;
/// Default [`AlsParams::iterations`].
pub const DEFAULT_ITERATIONS: usize = 10;
/// Default [`AlsParams::cg_steps`]: what `implicit` uses; more buys little once warm.
pub const DEFAULT_CG_STEPS: usize = 3;
/// Default [`AlsParams::seed`].
pub const DEFAULT_SEED: u64 = 42;
/// Default [`AlsParams::unobserved_weight`]: Hu–Koren–Volinsky's 1.
pub const DEFAULT_UNOBSERVED_WEIGHT: f32 = 1.0;
/// Default [`AlsParams::regularization_exponent`]: penalties grow with the row's mass
/// (Rendle et al. 2021's frequency scaling).
pub const DEFAULT_REGULARIZATION_EXPONENT: f32 = 1.0;

/// Largest accepted [`AlsParams::factors`].
pub const MAX_FACTORS: usize = 1_024;
/// Largest accepted [`AlsParams::iterations`].
pub const MAX_ITERATIONS: usize = 1_000;
/// Largest accepted [`AlsParams::cg_steps`].
pub const MAX_CG_STEPS: usize = 64;
/// Largest accepted [`AlsParams::threads`].
pub const MAX_THREADS: usize = 1_024;
/// Largest accepted [`AlsParams::unobserved_weight`].
pub const MAX_UNOBSERVED_WEIGHT: f32 = 1_000.0;

/// Implicit-ALS hyper-parameters. The confidence slope `alpha` lives in
/// [`ConfidenceConfig`](crate::confidence::ConfidenceConfig): it shapes the input matrix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlsParams {
    /// Latent dimensions per vector, 1..=[`MAX_FACTORS`].
    pub factors: usize,
    /// L2 penalty λ on every vector; finite and ≥ 0 (0 risks ill-conditioned solves).
    /// Scaled per row by [`Self::regularization_exponent`].
    pub regularization: f32,
    /// Weight α₀ of the unobserved cells (preference 0), in (0, [`MAX_UNOBSERVED_WEIGHT`]];
    /// observed cells weigh their confidence. Rendle et al. (2021) tune it well below 1.
    pub unobserved_weight: f32,
    /// ν in [0, 1]: a row with `n` observed cells out of `N` is penalised by
    /// `λ × (n + α₀·N)^ν` (frequency-scaled regularisation, Rendle et al. 2021); 0 gives
    /// every row the plain λ.
    pub regularization_exponent: f32,
    /// Alternating sweeps (customers then items), 1..=[`MAX_ITERATIONS`].
    pub iterations: usize,
    /// Conjugate-gradient steps per row solve, 1..=[`MAX_CG_STEPS`].
    pub cg_steps: usize,
    /// Seed of the initial vectors: same data + same seed = bit-identical model (on CPUs of
    /// one kind: with AVX2 + FMA the solves use fused multiply-adds, which round
    /// differently from the portable code).
    pub seed: u64,
    /// Worker threads; 0 uses rayon's global pool, otherwise a pool of its own
    /// (≤ [`MAX_THREADS`]). The result does not depend on it.
    pub threads: usize,
    /// Compute the training loss after each iteration (about one CG step's extra work).
    pub compute_loss: bool,
}

impl Default for AlsParams {
    fn default() -> Self {
        Self {
            factors: DEFAULT_FACTORS,
            regularization: DEFAULT_REGULARIZATION,
            unobserved_weight: DEFAULT_UNOBSERVED_WEIGHT,
            regularization_exponent: DEFAULT_REGULARIZATION_EXPONENT,
            iterations: DEFAULT_ITERATIONS,
            cg_steps: DEFAULT_CG_STEPS,
            seed: DEFAULT_SEED,
            threads: 0,
            compute_loss: true,
        }
    }
}

impl AlsParams {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        in_range("factors", self.factors, 1, MAX_FACTORS)?;
        self.solve_weights().validate()?;
        in_range("iterations", self.iterations, 1, MAX_ITERATIONS)?;
        in_range("cg_steps", self.cg_steps, 1, MAX_CG_STEPS)?;
        in_range("threads", self.threads, 0, MAX_THREADS)
    }

    /// The weights every row solve uses (training and fold-in alike).
    pub fn solve_weights(&self) -> SolveWeights {
        SolveWeights {
            regularization: self.regularization,
            unobserved_weight: self.unobserved_weight,
            regularization_exponent: self.regularization_exponent,
        }
    }
}

/// What one row's least-squares solve weighs: the L2 penalty, its frequency scaling and the
/// weight of the unobserved cells. Training and fold-in must use the same, so a folded-in
/// customer is solved exactly as training would have solved them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SolveWeights {
    /// λ.
    pub regularization: f32,
    /// α₀.
    pub unobserved_weight: f32,
    /// ν.
    pub regularization_exponent: f32,
}

impl Default for SolveWeights {
    fn default() -> Self {
        AlsParams::default().solve_weights()
    }
}

impl SolveWeights {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        if !self.regularization.is_finite() || self.regularization < 0.0 {
            return Err(invalid(
                "regularization",
                format!("must be finite and >= 0, got {}", self.regularization),
            ));
        }
        let a0 = self.unobserved_weight;
        if !(a0.is_finite() && a0 > 0.0 && a0 <= MAX_UNOBSERVED_WEIGHT) {
            return Err(invalid(
                "unobserved_weight",
                format!("must be in (0, {MAX_UNOBSERVED_WEIGHT}], got {a0}"),
            ));
        }
        let nu = self.regularization_exponent;
        if !(0.0..=1.0).contains(&nu) {
            return Err(invalid(
                "regularization_exponent",
                format!("must be in [0, 1], got {nu}"),
            ));
        }
        Ok(())
    }

    /// The penalty of a row with `observed` cells out of `columns`:
    /// `λ × (observed + α₀ × columns)^ν`.
    pub fn row_penalty(&self, observed: usize, columns: usize) -> f32 {
        if self.regularization_exponent == 0.0 {
            return self.regularization;
        }
        let mass = observed as f64 + f64::from(self.unobserved_weight) * columns as f64;
        (f64::from(self.regularization) * mass.powf(f64::from(self.regularization_exponent))) as f32
    }
}

fn in_range(name: &'static str, value: usize, min: usize, max: usize) -> Result<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            name,
            format!("must be in {min}..={max}, got {value}"),
        ))
    }
}
