//! Scalar-quantised (int8) copies of a frozen graph's rows, for scans that read a quarter
//! of the bytes.
//!
//! Each row keeps its own scale, `max |x| / 127`, and codes `round(x / scale)`, so every
//! coordinate is off by at most `scale / 2` and an inner product with a query `q` is off by
//! at most `scale / 2 · ‖q‖₁` ([`ScanRow::error`]). Callers use that bound to re-score
//! exactly only the rows that could still make the cut, so answers stay exact.

use rayon::prelude::*;

use crate::aligned_rows::AlignedRows;
use crate::int8_dot::dot_i8;
use crate::simd_dot::dot;

/// Absolute slack added to every bound for float rounding in both dot products.
const FLOAT_SLACK: f32 = 1e-4;

/// Int8 codes of `n` rows (stride: the dimension rounded up to 16) and one scale per row.
pub(crate) struct Int8Rows {
    stride: usize,
    codes: Vec<i8>,
    scales: Vec<f32>,
}

impl Int8Rows {
    /// Quantises the first `dim` coordinates of every row.
    pub(crate) fn quantize(rows: &AlignedRows, dim: usize) -> Self {
        let stride = dim.div_ceil(16) * 16;
        let n = rows.len();
        let mut codes = vec![0i8; n * stride];
        let mut scales = vec![0f32; n];
        let one = |i: usize, out: &mut [i8], scale: &mut f32| {
            let row = &rows.row(i)[..dim];
            let max = row.iter().fold(0f32, |m, x| m.max(x.abs()));
            *scale = max / 127.0;
            if max > 0.0 {
                let inv = 127.0 / max;
                for (c, &x) in out.iter_mut().zip(row) {
                    *c = (x * inv).round().clamp(-127.0, 127.0) as i8;
                }
            }
        };
        if rayon::current_thread_index().is_some() {
            // Inside a pool (a build's): spread over it.
            codes
                .par_chunks_mut(stride.max(1))
                .zip(scales.par_iter_mut())
                .enumerate()
                .for_each(|(i, (out, scale))| one(i, out, scale));
        } else {
            // Called from outside any pool (fold-in, erasure merges): the global pool may
            // run at idle priority behind serving, so the caller does the work itself.
            for (i, (out, scale)) in codes
                .chunks_mut(stride.max(1))
                .zip(scales.iter_mut())
                .enumerate()
            {
                one(i, out, scale);
            }
        }
        Self {
            stride,
            codes,
            scales,
        }
    }

    /// Row `i`.
    pub(crate) fn row(&self, i: usize) -> ScanRow<'_> {
        ScanRow::Int8 {
            codes: &self.codes[i * self.stride..(i + 1) * self.stride],
            scale: self.scales[i],
        }
    }

    /// Heap bytes held.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.codes.capacity() + self.scales.capacity() * 4
    }
}

/// A row as a scan sees it: the exact floats, or int8 codes with their scale.
#[derive(Clone, Copy, Debug)]
pub enum ScanRow<'a> {
    /// The row itself (normalised for cosine).
    F32(&'a [f32]),
    /// Codes (zero-padded to a multiple of 16) and the row's scale.
    Int8 {
        /// `round(x / scale)`.
        codes: &'a [i8],
        /// `max |x| / 127`.
        scale: f32,
    },
}

impl ScanRow<'_> {
    /// Inner product with `q` (the index's dimension): exact for [`ScanRow::F32`], within
    /// [`ScanRow::error`] of it for [`ScanRow::Int8`].
    #[inline]
    pub fn dot(&self, q: &[f32]) -> f32 {
        match *self {
            ScanRow::F32(v) => dot(q, v),
            ScanRow::Int8 { codes, scale } => dot_i8(q, codes) * scale,
        }
    }

    /// A bound on `|self.dot(q) − exact dot|` for any query with `‖q‖₁ ≤ q_l1` (0 for exact
    /// rows).
    #[inline]
    pub fn error(&self, q_l1: f32) -> f32 {
        match *self {
            ScanRow::F32(_) => 0.0,
            ScanRow::Int8 { scale, .. } => 0.5 * scale * q_l1 + FLOAT_SLACK,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantised_dots_stay_within_their_bound() {
        let dim = 37;
        let mut rows = AlignedRows::new(dim);
        let mut state = 1u64;
        let mut next = || {
            state = crate::upper_layers::splitmix64(state);
            (state % 2_001) as f32 / 1_000.0 - 1.0
        };
        let data: Vec<Vec<f32>> = (0..200)
            .map(|_| (0..dim).map(|_| next()).collect())
            .collect();
        for row in &data {
            rows.push(row);
        }
        rows.push(&vec![0.0; dim]);
        let q8 = Int8Rows::quantize(&rows, dim);
        for _ in 0..20 {
            let q: Vec<f32> = (0..dim).map(|_| next()).collect();
            let l1: f32 = q.iter().map(|x| x.abs()).sum();
            for (i, row) in data.iter().enumerate() {
                let exact: f32 = q.iter().zip(row).map(|(a, b)| a * b).sum();
                let approx = q8.row(i).dot(&q);
                let bound = q8.row(i).error(l1);
                assert!(
                    (approx - exact).abs() <= bound,
                    "{approx} vs {exact} ± {bound}"
                );
                // ‖q‖₁ · max|x| / 254 ≈ 18.5 / 254 here: the bound is useful, not vacuous.
                assert!(bound < 0.1, "{bound}");
            }
            assert_eq!(q8.row(200).dot(&q), 0.0, "a zero row scores 0");
        }
    }
}
