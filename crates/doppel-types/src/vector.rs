//! Embedding vector checks shared by import, fold-in and queries.

use thiserror::Error;

/// Why a vector was refused.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum VectorError {
    /// Wrong number of components.
    #[error("expected {expected} dimensions, got {actual}")]
    Dimension {
        /// What the model version uses.
        expected: usize,
        /// What was given.
        actual: usize,
    },
    /// A NaN or infinite component.
    #[error("component {index} is not finite")]
    NotFinite {
        /// Position of the first bad component.
        index: usize,
    },
    /// All components are zero: no direction, so no cosine.
    #[error("vector has zero norm")]
    ZeroNorm,
}

/// Checks dimension and finiteness.
pub fn validate_vector(vector: &[f32], dim: usize) -> Result<(), VectorError> {
    if vector.len() != dim {
        return Err(VectorError::Dimension {
            expected: dim,
            actual: vector.len(),
        });
    }
    if let Some(index) = vector.iter().position(|x| !x.is_finite()) {
        return Err(VectorError::NotFinite { index });
    }
    Ok(())
}

/// Scales `vector` to unit length (for cosine similarity as an inner product).
pub fn normalize_in_place(vector: &mut [f32]) -> Result<(), VectorError> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return Err(VectorError::ZeroNorm);
    }
    vector.iter_mut().for_each(|x| *x /= norm);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_vectors() {
        assert_eq!(
            validate_vector(&[1.0], 2),
            Err(VectorError::Dimension {
                expected: 2,
                actual: 1
            })
        );
        assert_eq!(
            validate_vector(&[1.0, f32::NAN], 2),
            Err(VectorError::NotFinite { index: 1 })
        );
        assert_eq!(
            normalize_in_place(&mut [0.0, 0.0]),
            Err(VectorError::ZeroNorm)
        );
        let mut v = [3.0, 4.0];
        normalize_in_place(&mut v).unwrap();
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
    }
}
