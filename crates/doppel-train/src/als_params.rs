//! Hyper-parameters of implicit ALS, their defaults and their bounds.

use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};

/// Default [`AlsParams::factors`].
pub const DEFAULT_FACTORS: usize = 64;
/// Default [`AlsParams::regularization`].
pub const DEFAULT_REGULARIZATION: f32 = 0.05;
/// Default [`AlsParams::iterations`].
pub const DEFAULT_ITERATIONS: usize = 15;
/// Default [`AlsParams::cg_steps`]: what `implicit` uses; more buys little once warm.
pub const DEFAULT_CG_STEPS: usize = 3;
/// Default [`AlsParams::seed`].
pub const DEFAULT_SEED: u64 = 42;

/// Largest accepted [`AlsParams::factors`].
pub const MAX_FACTORS: usize = 1_024;
/// Largest accepted [`AlsParams::iterations`].
pub const MAX_ITERATIONS: usize = 1_000;
/// Largest accepted [`AlsParams::cg_steps`].
pub const MAX_CG_STEPS: usize = 64;
/// Largest accepted [`AlsParams::threads`].
pub const MAX_THREADS: usize = 1_024;

/// Implicit-ALS hyper-parameters. The confidence slope `alpha` lives in
/// [`ConfidenceConfig`](crate::confidence::ConfidenceConfig): it shapes the input matrix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlsParams {
    /// Latent dimensions per vector, 1..=[`MAX_FACTORS`].
    pub factors: usize,
    /// L2 penalty λ on every vector; finite and ≥ 0 (0 risks ill-conditioned solves).
    pub regularization: f32,
    /// Alternating sweeps (customers then items), 1..=[`MAX_ITERATIONS`].
    pub iterations: usize,
    /// Conjugate-gradient steps per row solve, 1..=[`MAX_CG_STEPS`].
    pub cg_steps: usize,
    /// Seed of the initial vectors: same data + same seed = bit-identical model.
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
        if !self.regularization.is_finite() || self.regularization < 0.0 {
            return Err(invalid(
                "regularization",
                format!("must be finite and >= 0, got {}", self.regularization),
            ));
        }
        in_range("iterations", self.iterations, 1, MAX_ITERATIONS)?;
        in_range("cg_steps", self.cg_steps, 1, MAX_CG_STEPS)?;
        in_range("threads", self.threads, 0, MAX_THREADS)
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
