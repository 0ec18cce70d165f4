//! A compressed sparse row (CSR) matrix of confidences.

/// Rows of `(column, value)` pairs stored flat: row `r` is
/// `columns[offsets[r]..offsets[r + 1]]` with the matching `values`. Columns within a row
/// are strictly increasing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SparseRows {
    offsets: Vec<usize>,
    columns: Vec<u32>,
    values: Vec<f32>,
    cols: usize,
}

impl SparseRows {
    /// Builds `rows × cols` from cells sorted by (row, column) without duplicates.
    pub(crate) fn from_sorted_cells(rows: usize, cols: usize, cells: &[(u32, u32, f32)]) -> Self {
        let mut offsets = vec![0usize; rows + 1];
        for &(r, _, _) in cells {
            offsets[r as usize + 1] += 1;
        }
        for r in 0..rows {
            offsets[r + 1] += offsets[r];
        }
        debug_assert!(
            cells
                .windows(2)
                .all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1))
        );
        Self {
            offsets,
            columns: cells.iter().map(|c| c.1).collect(),
            values: cells.iter().map(|c| c.2).collect(),
            cols,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Number of stored cells.
    pub fn nnz(&self) -> usize {
        self.columns.len()
    }

    /// Columns and values of row `r` (panics if `r >= rows()`).
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let span = self.offsets[r]..self.offsets[r + 1];
        (&self.columns[span.clone()], &self.values[span])
    }

    /// Sum of all stored values.
    pub fn value_sum(&self) -> f64 {
        self.values.iter().map(|&v| f64::from(v)).sum()
    }

    /// The transpose (`cols × rows`), by a counting sort over columns; rows of the result
    /// come out sorted because the input rows are visited in order.
    pub fn transpose(&self) -> Self {
        let mut offsets = vec![0usize; self.cols + 1];
        for &c in &self.columns {
            offsets[c as usize + 1] += 1;
        }
        for c in 0..self.cols {
            offsets[c + 1] += offsets[c];
        }
        let mut next = offsets.clone();
        let mut columns = vec![0u32; self.nnz()];
        let mut values = vec![0f32; self.nnz()];
        for r in 0..self.rows() {
            let (cols, vals) = self.row(r);
            for (&c, &v) in cols.iter().zip(vals) {
                let at = next[c as usize];
                columns[at] = r as u32;
                values[at] = v;
                next[c as usize] += 1;
            }
        }
        Self {
            offsets,
            columns,
            values,
            cols: self.rows(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_swaps_cells_and_keeps_rows_sorted() {
        let m = SparseRows::from_sorted_cells(
            3,
            4,
            &[(0, 1, 1.0), (0, 3, 2.0), (2, 0, 3.0), (2, 1, 4.0)],
        );
        assert_eq!(m.row(1), (&[][..], &[][..]));
        let t = m.transpose();
        assert_eq!((t.rows(), t.cols(), t.nnz()), (4, 3, 4));
        assert_eq!(t.row(0), (&[2u32][..], &[3.0f32][..]));
        assert_eq!(t.row(1), (&[0u32, 2][..], &[1.0f32, 4.0][..]));
        assert_eq!(t.row(2), (&[][..], &[][..]));
        assert_eq!(t.row(3), (&[0u32][..], &[2.0f32][..]));
        assert_eq!(t.transpose(), m);
    }
}
