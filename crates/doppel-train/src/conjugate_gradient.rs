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
//!
//! On a CPU with AVX2 and FMA (checked once at run time) the whole solve is compiled for
//! them, with fused multiply-adds; elsewhere it is portable code. Either way a row's result
//! does not depend on the number of threads, but the two differ in their last bits.

use crate::dense::{Kernels, Portable};
#[cfg(target_arch = "x86_64")]
use crate::fused_dense::Fused;

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
    /// `α₀YᵀY` plus λI when the penalty is the same for every row, row-major `f × f`
    /// (symmetric).
    pub gram: &'a [f32],
    /// α₀, the weight of the unobserved cells.
    pub unobserved: f32,
    /// `Y`, row-major `n × f`.
    pub factors: &'a [f32],
    /// `f`.
    pub dim: usize,
}

/// One row's system: its stored cells and the penalty beyond what the shared Gram holds.
pub(crate) struct RowSystem<'a> {
    /// The columns of the stored cells.
    pub columns: &'a [u32],
    /// Their confidences.
    pub confidences: &'a [f32],
    /// The row's own penalty λ_u (0 when `FixedSide::gram` holds it).
    pub penalty: f32,
}

/// Improves `x` in place towards the solution of `row`'s system, by at most `steps` CG
/// steps.
pub(crate) fn solve_row(
    fixed: &FixedSide<'_>,
    row: &RowSystem<'_>,
    x: &mut [f32],
    steps: usize,
    scratch: &mut CgScratch,
) {
    #[cfg(target_arch = "x86_64")]
    if let Some(fused) = Fused::detect() {
        // SAFETY: `Fused::detect` has checked that this CPU has AVX2 and FMA.
        unsafe { solve_row_fused(fused, fixed, row, x, steps, scratch) };
        return;
    }
    solve_row_with(Portable, fixed, row, x, steps, scratch);
}

/// [`solve_row_with`] compiled for AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn solve_row_fused(
    fused: Fused,
    fixed: &FixedSide<'_>,
    row: &RowSystem<'_>,
    x: &mut [f32],
    steps: usize,
    scratch: &mut CgScratch,
) {
    solve_row_with(fused, fixed, row, x, steps, scratch);
}

/// The solve, on kernels `k`.
#[inline(always)]
fn solve_row_with(
    k: impl Kernels,
    fixed: &FixedSide<'_>,
    row: &RowSystem<'_>,
    x: &mut [f32],
    steps: usize,
    scratch: &mut CgScratch,
) {
    let RowSystem {
        columns,
        confidences,
        penalty,
    } = *row;
    let f = fixed.dim;
    let y_of = |i: u32| &fixed.factors[i as usize * f..(i as usize + 1) * f];
    let CgScratch {
        residual: r,
        direction: p,
        a_direction: ap,
    } = scratch;

    // r = b − A x
    let a0 = fixed.unobserved;
    k.symmetric_mat_vec(fixed.gram, x, r);
    if penalty != 0.0 {
        k.axpy(penalty, x, r);
    }
    r.iter_mut().for_each(|v| *v = -*v);
    for (&i, &c) in columns.iter().zip(confidences) {
        let y = y_of(i);
        k.axpy(c - (c - a0) * k.dot(y, x), y, r);
    }
    p.copy_from_slice(r);
    let mut rs_old = k.dot(r, r);
    if rs_old < CONVERGED {
        return;
    }
    for _ in 0..steps {
        k.symmetric_mat_vec(fixed.gram, p, ap);
        if penalty != 0.0 {
            k.axpy(penalty, p, ap);
        }
        for (&i, &c) in columns.iter().zip(confidences) {
            let y = y_of(i);
            k.axpy((c - a0) * k.dot(y, p), y, ap);
        }
        let curvature = k.dot(p, ap);
        // A is positive definite for λ > 0; stop rather than divide by ~0 (or NaN) when
        // λ = 0 leaves it singular.
        if curvature.is_nan() || curvature <= 0.0 {
            return;
        }
        let step = rs_old / curvature;
        k.axpy(step, p, x);
        k.axpy(-step, ap, r);
        let rs_new = k.dot(r, r);
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
        let row = RowSystem {
            columns: &[0, 2],
            confidences: &[3.0, 2.0],
            penalty: 0.0,
        };
        solve_row(&fixed, &row, &mut x, 2, &mut CgScratch::new(2));
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
        let row = RowSystem {
            columns: &[0, 2],
            confidences: &[3.0, 2.0],
            penalty: 0.25,
        };
        solve_row(&fixed, &row, &mut x, 2, &mut scratch);
        let (a, b) = ([[5.25f32, 2.0], [2.0, 2.75]], [5.0f32, 2.0]);
        for k in 0..2 {
            let ax = a[k][0] * x[0] + a[k][1] * x[1];
            assert!((ax - b[k]).abs() < 1e-5, "{x:?}");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn fused_and_portable_solves_agree() {
        let Some(fused) = Fused::detect() else {
            return;
        };
        // 37 factors: neither kernel's block size divides it, so every tail runs.
        let (f, n) = (37, 60);
        let y: Vec<f32> = (0..n * f)
            .map(|i| (((i * 7919) % 211) as f32 / 211.0 - 0.5) * 0.3)
            .collect();
        let gram = Gram::new(&y, f).scaled_f32(1.0, 0.1);
        let fixed = FixedSide {
            gram: &gram,
            unobserved: 1.0,
            factors: &y,
            dim: f,
        };
        let columns: Vec<u32> = (0..n as u32).step_by(3).collect();
        let confidences: Vec<f32> = columns.iter().map(|&c| 1.0 + (c % 5) as f32).collect();
        let row = RowSystem {
            columns: &columns,
            confidences: &confidences,
            penalty: 0.05,
        };
        let start: Vec<f32> = (0..f).map(|k| (k as f32 - 18.0) * 0.001).collect();
        let (mut portable, mut fast) = (start.clone(), start);
        let mut scratch = CgScratch::new(f);
        solve_row_with(Portable, &fixed, &row, &mut portable, 3, &mut scratch);
        solve_row_with(fused, &fixed, &row, &mut fast, 3, &mut scratch);
        for (a, b) in portable.iter().zip(&fast) {
            assert!((a - b).abs() <= 1e-3 * a.abs().max(0.1), "{a} vs {b}");
        }
    }
}
