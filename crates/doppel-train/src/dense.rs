//! Dense vector kernels for the solvers.
//!
//! The portable kernels, written so the compiler vectorises them without `unsafe`: the dot
//! product keeps eight independent accumulators (a single running sum would force
//! sequential float additions). The summation order is fixed, so results do not depend on
//! threads. `fused_dense` has the AVX2 ones; [`Kernels`] is what a solve is written
//! against, and the solver picks one at run time.

/// The kernels a solver runs on: [`Portable`] here, or `fused_dense::Fused` on a CPU with
/// AVX2 and FMA.
pub(crate) trait Kernels: Copy {
    /// `a · b` of equally long slices.
    fn dot(self, a: &[f32], b: &[f32]) -> f32;

    /// `y += alpha × x` for equally long slices.
    fn axpy(self, alpha: f32, x: &[f32], y: &mut [f32]);

    /// `out = A x` for a row-major symmetric `A` of side `x.len()`.
    #[inline(always)]
    fn symmetric_mat_vec(self, a: &[f32], x: &[f32], out: &mut [f32]) {
        for (row, o) in a.chunks_exact(x.len()).zip(out.iter_mut()) {
            *o = self.dot(row, x);
        }
    }
}

/// The kernels below, which any CPU runs.
#[derive(Clone, Copy)]
pub(crate) struct Portable;

impl Kernels for Portable {
    #[inline(always)]
    fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        dot(a, b)
    }

    #[inline(always)]
    fn axpy(self, alpha: f32, x: &[f32], y: &mut [f32]) {
        axpy(alpha, x, y);
    }
}

/// Lanes of independent partial sums in [`dot`].
const LANES: usize = 8;

/// `a · b` (the shorter length wins; callers pass equal lengths).
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let a_chunks = a.chunks_exact(LANES);
    let b_chunks = b.chunks_exact(LANES);
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    let mut acc = [0f32; LANES];
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..LANES {
            acc[lane] += x[lane] * y[lane];
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// `y += alpha × x`.
#[inline]
pub(crate) fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// `v / |v|`, or `v` unchanged if it is zero.
pub(crate) fn normalize(v: &mut [f32]) {
    let norm = dot(v, v).sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_match_the_naive_formulas() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.25).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-4);

        let mut y = b.clone();
        axpy(2.0, &a, &mut y);
        assert_eq!(y[3], b[3] + 2.0 * a[3]);

        let m = [1.0, 2.0, 2.0, 4.0];
        let mut out = [0.0; 2];
        Portable.symmetric_mat_vec(&m, &[1.0, -1.0], &mut out);
        assert_eq!(out, [-1.0, -2.0]);

        let mut v = [3.0, 4.0];
        normalize(&mut v);
        assert_eq!(v, [0.6, 0.8]);
    }
}
