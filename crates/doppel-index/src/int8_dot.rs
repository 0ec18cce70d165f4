//! The inner product of an f32 query with an int8 row (codes widened to f32 in registers):
//! AVX-512 / AVX2+FMA picked once at runtime, scalar fallback.

use std::sync::OnceLock;

use crate::simd_dot::{Isa, isa};

type DotI8 = fn(&[f32], &[i8]) -> f32;

fn kernel() -> DotI8 {
    static K: OnceLock<DotI8> = OnceLock::new();
    // The same CPU detection as the f32 kernels (`simd_dot::isa`).
    *K.get_or_init(|| match isa() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => x86::dot_i8_avx512_safe,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => x86::dot_i8_avx2_safe,
        _ => dot_i8_scalar,
    })
}

/// `Σ q[i] · codes[i]` over `q.len()` coordinates; `codes` holds at least `q.len()`
/// rounded up to 16 (zero padding).
#[inline]
pub(crate) fn dot_i8(q: &[f32], codes: &[i8]) -> f32 {
    debug_assert!(codes.len() >= q.len().div_ceil(16) * 16);
    (kernel())(q, codes)
}

fn dot_i8_scalar(q: &[f32], codes: &[i8]) -> f32 {
    q.iter().zip(codes).map(|(&a, &c)| a * f32::from(c)).sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::dot_i8_scalar;

    pub(super) fn dot_i8_avx512_safe(q: &[f32], codes: &[i8]) -> f32 {
        // SAFETY: selected only after `is_x86_feature_detected!("avx512f")`.
        unsafe { dot_i8_avx512(q, codes) }
    }

    pub(super) fn dot_i8_avx2_safe(q: &[f32], codes: &[i8]) -> f32 {
        // SAFETY: selected only after avx2 and fma were detected.
        unsafe { dot_i8_avx2(q, codes) }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn dot_i8_avx512(q: &[f32], codes: &[i8]) -> f32 {
        let blocks = (q.len() / 16).min(codes.len() / 16);
        let mut acc = _mm512_setzero_ps();
        for b in 0..blocks {
            // SAFETY: b < blocks, so 16 floats of q and 16 bytes of codes from b * 16 are in
            // bounds; unaligned loads.
            unsafe {
                let c = _mm_loadu_si128(codes.as_ptr().add(b * 16).cast::<__m128i>());
                let c = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(c));
                acc = _mm512_fmadd_ps(_mm512_loadu_ps(q.as_ptr().add(b * 16)), c, acc);
            }
        }
        let tail = blocks * 16;
        _mm512_reduce_add_ps(acc) + dot_i8_scalar(&q[tail..], &codes[tail..])
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_i8_avx2(q: &[f32], codes: &[i8]) -> f32 {
        let blocks = (q.len() / 8).min(codes.len() / 8);
        let mut acc = _mm256_setzero_ps();
        for b in 0..blocks {
            // SAFETY: b < blocks, so 8 floats of q and 8 bytes of codes from b * 8 are in
            // bounds; unaligned loads.
            unsafe {
                let c = _mm_loadl_epi64(codes.as_ptr().add(b * 8).cast::<__m128i>());
                let c = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c));
                acc = _mm256_fmadd_ps(_mm256_loadu_ps(q.as_ptr().add(b * 8)), c, acc);
            }
        }
        let lanes = {
            let hi = _mm256_extractf128_ps::<1>(acc);
            let lo = _mm256_castps256_ps128(acc);
            let s = _mm_add_ps(hi, lo);
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<1>(s, s)))
        };
        let tail = blocks * 8;
        lanes + dot_i8_scalar(&q[tail..], &codes[tail..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_agrees_with_the_scalar_loop() {
        for dim in [1usize, 7, 16, 33, 64, 100] {
            let q: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.37).sin()).collect();
            let mut codes: Vec<i8> = (0..dim).map(|i| ((i * 53) % 255) as i16 as i8).collect();
            codes.resize(dim.div_ceil(16) * 16, 0);
            let fast = dot_i8(&q, &codes);
            let slow = dot_i8_scalar(&q, &codes);
            assert!(
                (fast - slow).abs() <= 1e-3 * (1.0 + slow.abs()),
                "{dim}: {fast} vs {slow}"
            );
        }
    }
}
