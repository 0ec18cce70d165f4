//! The Gram matrix `YᵀY` of a factor matrix, computed once per half-step or per model.

use rayon::prelude::*;

/// Rows per parallel partial sum. Fixed (not derived from the thread count) so the
/// floating-point summation order, and therefore the result, never depends on threads.
const ROWS_PER_CHUNK: usize = 2_048;

/// `YᵀY` of a row-major `n × factors` matrix `Y`, in f64.
#[derive(Clone, Debug, PartialEq)]
pub struct Gram {
    factors: usize,
    values: Vec<f64>,
}

impl Gram {
    /// `YᵀY` of `rows` (row-major, `factors` columns; a trailing partial row is ignored).
    /// Partial sums over fixed chunks run in parallel and are added in chunk order.
    pub fn new(rows: &[f32], factors: usize) -> Self {
        let f = factors;
        if f == 0 {
            return Self {
                factors,
                values: Vec::new(),
            };
        }
        let usable = rows.len() - rows.len() % f;
        let partials: Vec<Vec<f64>> = rows[..usable]
            .par_chunks(ROWS_PER_CHUNK * f)
            .map(|chunk| {
                let mut acc = vec![0f64; f * f];
                for y in chunk.chunks_exact(f) {
                    for (j, &yj) in y.iter().enumerate() {
                        let yj = f64::from(yj);
                        let out = &mut acc[j * f..(j + 1) * f];
                        // Lower triangle only; mirrored below.
                        for (o, &yk) in out[..=j].iter_mut().zip(y) {
                            *o += yj * f64::from(yk);
                        }
                    }
                }
                acc
            })
            .collect();
        let mut values = vec![0f64; f * f];
        for partial in partials {
            values.iter_mut().zip(&partial).for_each(|(v, p)| *v += p);
        }
        for j in 0..f {
            for k in 0..j {
                values[k * f + j] = values[j * f + k];
            }
        }
        Self { factors, values }
    }

    /// The side of the matrix.
    pub fn factors(&self) -> usize {
        self.factors
    }

    /// Row-major `factors × factors` entries.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// `scale × YᵀY + reg × I` in f32, the matrix every row solve of a half-step shares.
    pub(crate) fn scaled_f32(&self, scale: f32, reg: f32) -> Vec<f32> {
        let f = self.factors;
        let scale = f64::from(scale);
        let mut out: Vec<f32> = self.values.iter().map(|&v| (scale * v) as f32).collect();
        for j in 0..f {
            out[j * f + j] += reg;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gram_is_y_transpose_y() {
        // Y = [[1, 2], [3, 4], [5, 6]] → YᵀY = [[35, 44], [44, 56]].
        let g = Gram::new(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2);
        assert_eq!(g.values(), [35.0, 44.0, 44.0, 56.0]);
        assert_eq!(g.scaled_f32(1.0, 1.0), [36.0, 44.0, 44.0, 57.0]);
    }

    #[test]
    fn chunking_gives_the_same_sums() {
        let f = 3;
        let rows: Vec<f32> = (0..(ROWS_PER_CHUNK * 2 + 5) * f)
            .map(|i| ((i * 7919) % 101) as f32 / 101.0)
            .collect();
        let g = Gram::new(&rows, f);
        let mut naive = vec![0f64; f * f];
        for y in rows.chunks_exact(f) {
            for j in 0..f {
                for k in 0..f {
                    naive[j * f + k] += f64::from(y[j]) * f64::from(y[k]);
                }
            }
        }
        for (a, b) in g.values().iter().zip(&naive) {
            assert!((a - b).abs() < 1e-6 * b.abs().max(1.0));
        }
    }
}
