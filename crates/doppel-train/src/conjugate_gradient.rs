//! One row's least-squares solve by a few conjugate-gradient steps (Takács et al. 2011, as
//! in the `implicit` library), warm-started from the row's current vector.
//!
//! For a customer `u` with confidences `c_i` on items `i` (preference 1 there, 0 elsewhere)
//! and fixed item factors `Y`, the exact update solves
//!
//! ```text
//! (α₀YᵀY + λ_u I + Σ_i (c_i − α₀) y_i y_iᵀ) x = Σ_i c_i y_i
//! ```
//!
//! where α₀ weighs the unobserved cells (1 in Hu–Koren–Volinsky) and `λ_u` is the row's
//! penalty. CG never forms that matrix: `α₀YᵀY` (plus λ when every row has the same) is
//! shared by every row of the half-step, a row's own penalty is added as `λ_u p`, and the
//! sparse correction is applied as `Σ (c_i − α₀)(y_i · p) y_i`. Each step costs
//! `O(f² + nnz·f)`; three steps from the previous iteration's vector are enough once
//! training is under way, because the vector barely moves between iterations.

use crate::dense::{axpy, dot, mat_vec};

/// Residual norm² below which a row counts as solved.
const CONVERGED: f32 = 1e-20;

/// Per-thread work vectors, so the hot loop never allocates.
pub(crate) struct CgScratch {
    residual: Vec<f32>,
    direction: Vec<f32>,
    a_direction: Vec<f32>,
}

impl CgScratch {
    /// Work vectors for `factors` dimensions.
    pub(crate) fn new(factors: usize) -> Self {
        Self {
            residual: vec![0.0; factors],
            direction: vec![0.0; factors],
            a_direction: vec![0.0; factors],
        }
    }
}

/// The fixed side of a half-step.
pub(crate) struct FixedSide<'a> {
    /// `α₀YᵀY` plus λI when the penalty is the same for every row, row-major `f × f`.
    pub gram: &'a [f32],
    /// α₀, the weight of the unobserved cells.
    pub unobserved: f32,
    /// `Y`, row-major `n × f`.
    pub factors: &'a [f32],
    /// `f`.
    pub dim: usize,
}

/// Improves `x` in place towards the solution for the row `(columns, confidences)`, whose
/// penalty beyond what `fixed.gram` holds is `penalty`.
pub(crate) fn solve_row(
    fixed: &FixedSide<'_>,
    columns: &[u32],
    confidences: &[f32],
    penalty: f32,
    x: &mut [f32],
    steps: usize,
    scratch: &mut CgScratch,
) {
    let f = fixed.dim;
    let y_of = |i: u32| &fixed.factors[i as usize * f..(i as usize + 1) * f];
    let CgScratch {
        residual: r,
        direction: p,
        a_direction: ap,
    } = scratch;

    // r = b − A x
    let a0 = fixed.unobserved;
    mat_vec(fixed.gram, x, r);
    if penalty != 0.0 {
        axpy(penalty, x, r);
    }
    r.iter_mut().for_each(|v| *v = -*v);
    for (&i, &c) in columns.iter().zip(confidences) {
        let y = y_of(i);
        axpy(c - (c - a0) * dot(y, x), y, r);
    }
    p.copy_from_slice(r);
    let mut rs_old = dot(r, r);
    if rs_old < CONVERGED {
        return;
    }
    for _ in 0..steps {
        mat_vec(fixed.gram, p, ap);
        if penalty != 0.0 {
            axpy(penalty, p, ap);
        }
        for (&i, &c) in columns.iter().zip(confidences) {
            let y = y_of(i);
            axpy((c - a0) * dot(y, p), y, ap);
        }
        let curvature = dot(p, ap);
        // A is positive definite for λ > 0; stop rather than divide by ~0 (or NaN) when
        // λ = 0 leaves it singular.
        if curvature.is_nan() || curvature <= 0.0 {
            return;
        }
        let step = rs_old / curvature;
        axpy(step, p, x);
        axpy(-step, ap, r);
        let rs_new = dot(r, r);
        if rs_new < CONVERGED {
            return;
        }
        let beta = rs_new / rs_old;
        for (pk, &rk) in p.iter_mut().zip(r.iter()) {
            *pk = rk + beta * *pk;
        }
        rs_old = rs_new;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gram::Gram;

    #[test]
    fn enough_steps_reach_the_exact_solution() {
        // f = 2, so two CG steps are exact (up to rounding).
        let y = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let gram = Gram::new(&y, 2).scaled_f32(1.0, 0.5);
        let fixed = FixedSide {
            gram: &gram,
            unobserved: 1.0,
            factors: &y,
            dim: 2,
        };
        let mut x = [0.0, 0.0];
        solve_row(
            &fixed,
            &[0, 2],
            &[3.0, 2.0],
            0.0,
            &mut x,
            2,
            &mut CgScratch::new(2),
        );
        // A = YᵀY + 0.5I + 2·e0e0ᵀ + 1·(1,1)(1,1)ᵀ = [[5.5, 2], [2, 3.5]], b = (5, 2).
        let (a, b) = ([[5.5f32, 2.0], [2.0, 3.5]], [5.0f32, 2.0]);
        for k in 0..2 {
            let ax = a[k][0] * x[0] + a[k][1] * x[1];
            assert!((ax - b[k]).abs() < 1e-5, "{x:?}");
        }
    }

    #[test]
    fn unobserved_weight_and_row_penalty_enter_the_system() {
        // α₀ = 0.5, λ_u = 0.25 given per row:
        // A = 0.5·YᵀY + 0.25I + 2.5·e0e0ᵀ + 1.5·(1,1)(1,1)ᵀ = [[5.25, 2], [2, 2.75]].
        let y = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let gram = Gram::new(&y, 2).scaled_f32(0.5, 0.0);
        let fixed = FixedSide {
            gram: &gram,
            unobserved: 0.5,
            factors: &y,
            dim: 2,
        };
        let mut x = [0.0, 0.0];
        let mut scratch = CgScratch::new(2);
        solve_row(&fixed, &[0, 2], &[3.0, 2.0], 0.25, &mut x, 2, &mut scratch);
        let (a, b) = ([[5.25f32, 2.0], [2.0, 2.75]], [5.0f32, 2.0]);
        for k in 0..2 {
            let ax = a[k][0] * x[0] + a[k][1] * x[1];
            assert!((ax - b[k]).abs() < 1e-5, "{x:?}");
        }
    }
}
