//! The solver's dense kernels with AVX2 fused multiply-adds, for CPUs that have them.
//!
//! [`Fused`] is a proof that the CPU has AVX2 and FMA: the only way to get one is
//! [`Fused::detect`], which checks. Its [`Kernels`] are `#[inline(always)]` so a caller
//! compiled for the same features (`conjugate_gradient`'s fused solve) inlines them and
//! keeps the vectors in registers. `dot` keeps four 8-float accumulators, enough to hide the latency
//! of the multiply-adds; its summation order is fixed, so results do not depend on threads.

use std::arch::x86_64::{
    __m256, _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_movehl_ps, _mm_shuffle_ps, _mm256_add_ps,
    _mm256_castps256_ps128, _mm256_extractf128_ps, _mm256_fmadd_ps, _mm256_loadu_ps,
    _mm256_set1_ps, _mm256_setzero_ps, _mm256_storeu_ps,
};

use crate::dense::Kernels;

/// Floats in one AVX register.
const WIDTH: usize = 8;

/// Evidence that this CPU has AVX2 and FMA.
#[derive(Clone, Copy)]
pub(crate) struct Fused(());

impl Fused {
    /// `Some` when this CPU has AVX2 and FMA (the standard library caches the check).
    pub(crate) fn detect() -> Option<Self> {
        (std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"))
            .then_some(Self(()))
    }
}

impl Kernels for Fused {
    #[inline(always)]
    fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: `self` exists only when AVX2 and FMA were detected.
        unsafe { dot(a, b) }
    }

    #[inline(always)]
    fn axpy(self, alpha: f32, x: &[f32], y: &mut [f32]) {
        // SAFETY: as in `dot`.
        unsafe { axpy(alpha, x, y) }
    }

    /// By columns (`A` is symmetric, so its rows are its columns): `out = Σ_j x_j A_j`,
    /// one multiply-add per element and no horizontal sums.
    #[inline(always)]
    fn symmetric_mat_vec(self, a: &[f32], x: &[f32], out: &mut [f32]) {
        out.fill(0.0);
        for (row, &xj) in a.chunks_exact(x.len()).zip(x) {
            self.axpy(xj, row, out);
        }
    }
}

/// The sum of a register's eight lanes.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn horizontal_sum(v: __m256) -> f32 {
    let quad = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
    _mm_cvtss_f32(_mm_add_ss(pair, _mm_shuffle_ps::<0b01>(pair, pair)))
}

#[target_feature(enable = "avx2,fma")]
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 4 * WIDTH <= n {
        for (k, lane) in acc.iter_mut().enumerate() {
            let at = i + k * WIDTH;
            // SAFETY: `at + WIDTH <= n`, inside both slices.
            let (x, y) = unsafe {
                (
                    _mm256_loadu_ps(a.as_ptr().add(at)),
                    _mm256_loadu_ps(b.as_ptr().add(at)),
                )
            };
            *lane = _mm256_fmadd_ps(x, y, *lane);
        }
        i += 4 * WIDTH;
    }
    while i + WIDTH <= n {
        // SAFETY: `i + WIDTH <= n`.
        let (x, y) = unsafe {
            (
                _mm256_loadu_ps(a.as_ptr().add(i)),
                _mm256_loadu_ps(b.as_ptr().add(i)),
            )
        };
        acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
        i += WIDTH;
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let tail: f32 = a[i..].iter().zip(&b[i..]).map(|(x, y)| x * y).sum();
    horizontal_sum(sum) + tail
}

#[target_feature(enable = "avx2,fma")]
#[inline]
fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let scale = _mm256_set1_ps(alpha);
    let mut i = 0;
    while i + WIDTH <= n {
        // SAFETY: `i + WIDTH <= n`, inside both slices; `y` is borrowed mutably, so the
        // store aliases nothing else.
        unsafe {
            let yv = _mm256_loadu_ps(y.as_ptr().add(i));
            let xv = _mm256_loadu_ps(x.as_ptr().add(i));
            _mm256_storeu_ps(y.as_mut_ptr().add(i), _mm256_fmadd_ps(scale, xv, yv));
        }
        i += WIDTH;
    }
    for (yi, xi) in y[i..n].iter_mut().zip(&x[i..n]) {
        *yi += alpha * xi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fused_kernels_match_the_naive_formulas() {
        let Some(k) = Fused::detect() else {
            return;
        };
        for n in [0, 3, 8, 19, 32, 64, 77, 128] {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
            let b: Vec<f32> = (0..n).map(|i| 1.0 - i as f32 * 0.25).collect();
            let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!(
                (k.dot(&a, &b) - naive).abs() < 1e-4 * naive.abs().max(1.0),
                "{n}"
            );

            let mut y = b.clone();
            k.axpy(2.0, &a, &mut y);
            for i in 0..n {
                assert!((y[i] - (b[i] + 2.0 * a[i])).abs() < 1e-5, "{n} {i}");
            }
        }
        let m = [1.0, 2.0, 2.0, 4.0];
        let mut out = [0.0; 2];
        k.symmetric_mat_vec(&m, &[1.0, -1.0], &mut out);
        assert_eq!(out, [-1.0, -2.0]);
    }
}
