//! Inner product and squared L2 kernels: AVX-512 / AVX2+FMA picked once at runtime, scalar fallback.
//!
//! The SIMD kernels need slices whose length is a multiple of 16 (rows are zero-padded by
//! [`crate::aligned_rows`]), so they have no tail loop.

use std::sync::OnceLock;

use crate::types::Metric;

/// A similarity kernel: higher = closer.
pub(crate) type ScoreFn = fn(&[f32], &[f32]) -> f32;

#[derive(Clone, Copy)]
struct Kernels {
    dot: ScoreFn,
    neg_l2: ScoreFn,
}

fn kernels() -> Kernels {
    static K: OnceLock<Kernels> = OnceLock::new();
    *K.get_or_init(detect)
}

fn detect() -> Kernels {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Kernels {
                dot: x86::dot_avx512_safe,
                neg_l2: x86::neg_l2_avx512_safe,
            };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Kernels {
                dot: x86::dot_avx2_safe,
                neg_l2: x86::neg_l2_avx2_safe,
            };
        }
    }
    Kernels {
        dot: dot_scalar,
        neg_l2: neg_l2_scalar,
    }
}

/// Which instruction set the kernels use on this CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// AVX-512F.
    Avx512,
    /// AVX2 + FMA.
    Avx2,
    /// Portable code.
    Scalar,
}

/// The instruction set picked at runtime (once).
pub(crate) fn isa() -> Isa {
    static I: OnceLock<Isa> = OnceLock::new();
    *I.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::Avx2;
            }
        }
        Isa::Scalar
    })
}

/// The score kernel for `metric` on padded rows (length a multiple of 16).
pub(crate) fn score_fn(metric: Metric) -> ScoreFn {
    let k = kernels();
    match metric {
        Metric::Cosine => k.dot,
        Metric::L2 => k.neg_l2,
    }
}

/// Inner product of two equally long slices of any length, with the fastest kernel of
/// this CPU on the 16-float blocks and a scalar tail. For callers outside the index
/// (centroids, re-ranking, explanations).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let blocks = n - n % 16;
    let head = if blocks == 0 {
        0.0
    } else {
        (kernels().dot)(&a[..blocks], &b[..blocks])
    };
    head + dot_scalar(&a[blocks..n], &b[blocks..n])
}

/// Portable inner product (any length).
pub(crate) fn dot_scalar(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Portable minus squared L2 distance (any length).
pub(crate) fn neg_l2_scalar(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    -(acc.iter().sum::<f32>() + tail)
}

/// Hints the CPU to load `row` (up to 4 cache lines) soon.
#[inline(always)]
pub(crate) fn prefetch_row(row: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let p = row.as_ptr().cast::<i8>();
        let lines = (row.len() / 16).clamp(1, 4);
        for l in 0..lines {
            // SAFETY: prefetch never faults; the address is inside `row` (l * 64 bytes < row size,
            // since row.len() ≥ 16 * lines floats), and SSE is part of the x86_64 baseline.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.add(l * 64)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

/// Hints the CPU to load the first cache line of an adjacency block.
#[inline(always)]
pub(crate) fn prefetch_links(block: &[u32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: prefetch never faults and SSE is part of the x86_64 baseline.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(block.as_ptr().cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = block;
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use std::arch::x86_64::*;

    pub(super) fn dot_avx512_safe(a: &[f32], b: &[f32]) -> f32 {
        debug_assert!(a.len() == b.len() && a.len().is_multiple_of(16));
        // SAFETY: this kernel is only selected after `is_x86_feature_detected!("avx512f")`.
        unsafe { dot_avx512(a, b) }
    }
    pub(super) fn neg_l2_avx512_safe(a: &[f32], b: &[f32]) -> f32 {
        debug_assert!(a.len() == b.len() && a.len().is_multiple_of(16));
        // SAFETY: selected only after avx512f was detected.
        unsafe { neg_l2_avx512(a, b) }
    }
    pub(super) fn dot_avx2_safe(a: &[f32], b: &[f32]) -> f32 {
        debug_assert!(a.len() == b.len() && a.len().is_multiple_of(16));
        // SAFETY: selected only after avx2 and fma were detected.
        unsafe { dot_avx2(a, b) }
    }
    pub(super) fn neg_l2_avx2_safe(a: &[f32], b: &[f32]) -> f32 {
        debug_assert!(a.len() == b.len() && a.len().is_multiple_of(16));
        // SAFETY: selected only after avx2 and fma were detected.
        unsafe { neg_l2_avx2(a, b) }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len()) / 16;
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut i = 0;
        while i + 1 < n {
            // SAFETY: i + 1 < n so both 16-lane loads are inside the slices.
            unsafe {
                acc0 = _mm512_fmadd_ps(
                    _mm512_loadu_ps(pa.add(i * 16)),
                    _mm512_loadu_ps(pb.add(i * 16)),
                    acc0,
                );
                acc1 = _mm512_fmadd_ps(
                    _mm512_loadu_ps(pa.add(i * 16 + 16)),
                    _mm512_loadu_ps(pb.add(i * 16 + 16)),
                    acc1,
                );
            }
            i += 2;
        }
        if i < n {
            // SAFETY: i < n, one full 16-lane block remains.
            unsafe {
                acc0 = _mm512_fmadd_ps(
                    _mm512_loadu_ps(pa.add(i * 16)),
                    _mm512_loadu_ps(pb.add(i * 16)),
                    acc0,
                );
            }
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) unsafe fn neg_l2_avx512(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len()) / 16;
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut i = 0;
        while i + 1 < n {
            // SAFETY: i + 1 < n so both 16-lane loads are inside the slices.
            unsafe {
                let d0 = _mm512_sub_ps(
                    _mm512_loadu_ps(pa.add(i * 16)),
                    _mm512_loadu_ps(pb.add(i * 16)),
                );
                let d1 = _mm512_sub_ps(
                    _mm512_loadu_ps(pa.add(i * 16 + 16)),
                    _mm512_loadu_ps(pb.add(i * 16 + 16)),
                );
                acc0 = _mm512_fmadd_ps(d0, d0, acc0);
                acc1 = _mm512_fmadd_ps(d1, d1, acc1);
            }
            i += 2;
        }
        if i < n {
            // SAFETY: i < n, one full 16-lane block remains.
            unsafe {
                let d0 = _mm512_sub_ps(
                    _mm512_loadu_ps(pa.add(i * 16)),
                    _mm512_loadu_ps(pb.add(i * 16)),
                );
                acc0 = _mm512_fmadd_ps(d0, d0, acc0);
            }
        }
        -_mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn hsum256(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps::<1>(v);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps::<1>(s, s));
        _mm_cvtss_f32(s)
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(crate) unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len()) / 16;
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        for i in 0..n {
            // SAFETY: i < n, so 16 floats from i * 16 are inside both slices.
            unsafe {
                acc0 = _mm256_fmadd_ps(
                    _mm256_loadu_ps(pa.add(i * 16)),
                    _mm256_loadu_ps(pb.add(i * 16)),
                    acc0,
                );
                acc1 = _mm256_fmadd_ps(
                    _mm256_loadu_ps(pa.add(i * 16 + 8)),
                    _mm256_loadu_ps(pb.add(i * 16 + 8)),
                    acc1,
                );
            }
        }
        // SAFETY: same target features as this function.
        unsafe { hsum256(_mm256_add_ps(acc0, acc1)) }
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(crate) unsafe fn neg_l2_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len()) / 16;
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        for i in 0..n {
            // SAFETY: i < n, so 16 floats from i * 16 are inside both slices.
            unsafe {
                let d0 = _mm256_sub_ps(
                    _mm256_loadu_ps(pa.add(i * 16)),
                    _mm256_loadu_ps(pb.add(i * 16)),
                );
                let d1 = _mm256_sub_ps(
                    _mm256_loadu_ps(pa.add(i * 16 + 8)),
                    _mm256_loadu_ps(pb.add(i * 16 + 8)),
                );
                acc0 = _mm256_fmadd_ps(d0, d0, acc0);
                acc1 = _mm256_fmadd_ps(d1, d1, acc1);
            }
        }
        // SAFETY: same target features as this function.
        -unsafe { hsum256(_mm256_add_ps(acc0, acc1)) }
    }

    #[cfg(test)]
    pub(super) fn all() -> Vec<(super::ScoreFn, super::ScoreFn)> {
        let mut v: Vec<(super::ScoreFn, super::ScoreFn)> = Vec::new();
        if std::arch::is_x86_feature_detected!("avx512f") {
            v.push((dot_avx512_safe, neg_l2_avx512_safe));
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            v.push((dot_avx2_safe, neg_l2_avx2_safe));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_agree_with_scalar() {
        for len in [16usize, 32, 48, 64, 784] {
            let a: Vec<f32> = (0..len)
                .map(|i| ((i * 7) % 13) as f32 / 13.0 - 0.4)
                .collect();
            let b: Vec<f32> = (0..len)
                .map(|i| ((i * 5) % 11) as f32 / 11.0 - 0.5)
                .collect();
            let (d, l) = (dot_scalar(&a, &b), neg_l2_scalar(&a, &b));
            #[cfg(target_arch = "x86_64")]
            for (fd, fl) in x86::all() {
                assert!((fd(&a, &b) - d).abs() < 1e-3, "dot len {len}");
                assert!((fl(&a, &b) - l).abs() < 1e-3, "l2 len {len}");
            }
            assert!((score_fn(Metric::Cosine)(&a, &b) - d).abs() < 1e-3);
            assert!((score_fn(Metric::L2)(&a, &b) - l).abs() < 1e-3);
        }
    }
}
