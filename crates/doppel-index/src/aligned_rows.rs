//! Contiguous vector storage with 64-byte aligned rows zero-padded to a multiple of 16 floats.

/// One cache line of floats; the unit of allocation so every row starts 64-byte aligned.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Line([f32; 16]);

/// Rounds a dimension up to whole cache lines of f32.
pub(crate) fn padded_dim(dim: usize) -> usize {
    dim.div_ceil(16) * 16
}

/// `len` rows of `padded` floats each, contiguous and aligned.
#[derive(Clone, Debug, Default)]
pub(crate) struct AlignedRows {
    lines: Vec<Line>,
    padded: usize,
    len: usize,
}

impl AlignedRows {
    /// Empty storage for rows of `dim` components.
    pub(crate) fn new(dim: usize) -> Self {
        Self {
            lines: Vec::new(),
            padded: padded_dim(dim),
            len: 0,
        }
    }

    /// Reserves room for `rows` more rows.
    pub(crate) fn reserve(&mut self, rows: usize) {
        self.lines.reserve(rows * self.padded / 16);
    }

    /// Appends one row (`row.len() <= padded`), zero-padding it.
    pub(crate) fn push(&mut self, row: &[f32]) {
        let per = self.padded / 16;
        for c in 0..per {
            let mut line = [0f32; 16];
            let start = c * 16;
            if start < row.len() {
                let end = row.len().min(start + 16);
                line[..end - start].copy_from_slice(&row[start..end]);
            }
            self.lines.push(Line(line));
        }
        self.len += 1;
    }

    /// Number of rows.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// All floats, row-major, padded.
    #[inline]
    pub(crate) fn as_flat(&self) -> &[f32] {
        // SAFETY: `Line` is repr(C) over [f32; 16] with no padding bytes (64 bytes = 16 × 4),
        // so `lines.len()` lines are exactly `lines.len() * 16` initialised, contiguous f32s.
        unsafe {
            std::slice::from_raw_parts(self.lines.as_ptr().cast::<f32>(), self.lines.len() * 16)
        }
    }

    /// Row `i` (padded). Panics if out of range (internal indices only).
    #[inline]
    pub(crate) fn row(&self, i: usize) -> &[f32] {
        let p = self.padded;
        &self.as_flat()[i * p..(i + 1) * p]
    }

    /// Overwrites row `i` with `row`, zero-padding it.
    pub(crate) fn set_row(&mut self, i: usize, row: &[f32]) {
        let per = self.padded / 16;
        for c in 0..per {
            let mut line = [0f32; 16];
            let start = c * 16;
            if start < row.len() {
                let end = row.len().min(start + 16);
                line[..end - start].copy_from_slice(&row[start..end]);
            }
            self.lines[i * per + c] = Line(line);
        }
    }

    /// Moves the last row into slot `i` and drops the last row.
    pub(crate) fn swap_remove(&mut self, i: usize) {
        let per = self.padded / 16;
        let last = self.len - 1;
        if i != last {
            for c in 0..per {
                self.lines[i * per + c] = self.lines[last * per + c];
            }
        }
        self.lines.truncate(last * per);
        self.len = last;
    }

    /// Row `i` without a bounds check (the graph walk's hot path).
    ///
    /// # Safety
    /// `i < self.len()`.
    #[inline(always)]
    pub(crate) unsafe fn row_unchecked(&self, i: usize) -> &[f32] {
        debug_assert!(i < self.len);
        // SAFETY: the caller guarantees i < len, so the `padded` floats starting at i * padded
        // lie inside the `len * padded` initialised floats of `lines`.
        unsafe {
            std::slice::from_raw_parts(
                self.lines.as_ptr().cast::<f32>().add(i * self.padded),
                self.padded,
            )
        }
    }

    /// Heap bytes held.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.lines.capacity() * 64
    }

    /// Empty storage for rows of `dim` components with room for `rows` rows, filled by
    /// [`AlignedRows::extend_le_lines`].
    pub(crate) fn with_capacity(dim: usize, rows: usize) -> Self {
        let padded = padded_dim(dim);
        Self {
            lines: Vec::with_capacity(rows * padded / 16),
            padded,
            len: 0,
        }
    }

    /// Appends 64-byte lines of padded rows saved as little-endian floats (`bytes` is whole
    /// lines; the rows are whole once every line of the last one is in), without a float
    /// copy in between (a snapshot's vectors are most of its bytes).
    pub(crate) fn extend_le_lines(&mut self, bytes: &[u8]) {
        debug_assert!(bytes.len().is_multiple_of(64));
        self.lines.extend(bytes.chunks_exact(64).map(|c| {
            let mut l = [0f32; 16];
            for (x, b) in l.iter_mut().zip(c.chunks_exact(4)) {
                *x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            Line(l)
        }));
        self.len = self.lines.len() * 16 / self.padded;
    }

    /// True when every stored float is finite.
    pub(crate) fn all_finite(&self) -> bool {
        self.lines.iter().all(|l| l.0.iter().all(|x| x.is_finite()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_from_bytes_equal_rows_from_floats() {
        let dim = 20;
        let padded = padded_dim(dim);
        let flat: Vec<f32> = (0..3 * padded).map(|i| i as f32 * 0.25 - 7.0).collect();
        let bytes: Vec<u8> = flat.iter().flat_map(|x| x.to_le_bytes()).collect();
        let from_bytes = |bytes: &[u8]| {
            let mut rows = AlignedRows::with_capacity(dim, 3);
            // In two parts, as a file is read in chunks of whole lines.
            let (head, tail) = bytes.split_at(64);
            rows.extend_le_lines(head);
            rows.extend_le_lines(tail);
            rows
        };
        let mut a = AlignedRows::new(dim);
        flat.chunks_exact(padded).for_each(|row| a.push(row));
        let b = from_bytes(&bytes);
        assert_eq!(b.len(), 3);
        for i in 0..3 {
            assert_eq!(a.row(i), b.row(i));
        }
        assert!(b.all_finite());

        let mut poisoned = bytes.clone();
        poisoned[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(!from_bytes(&poisoned).all_finite());
    }
}
