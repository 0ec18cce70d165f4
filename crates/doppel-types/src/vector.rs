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
    /// The squared norm overflows `f32` (components around 1e19 or larger), so the vector
    /// cannot be normalised; scale it down.
    #[error("squared norm overflows f32 (largest |component| {largest:e}); scale the vector down")]
    Overflow {
        /// The largest absolute component.
        largest: f32,
    },
    /// The squared norm underflows to zero although some component is not zero
    /// (components around 1e-19 or smaller); scale the vector up.
    #[error("squared norm underflows f32 (largest |component| {largest:e}); scale the vector up")]
    Underflow {
        /// The largest absolute component.
        largest: f32,
    },
}

/// Checks dimension, finiteness, and that the squared norm neither overflows nor
/// underflows `f32` (so the vector can be normalised). An all-zero vector passes here;
/// callers that need a direction check for it.
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
    let squared: f32 = vector.iter().map(|x| x * x).sum();
    let largest = vector.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if !squared.is_finite() {
        return Err(VectorError::Overflow { largest });
    }
    if squared == 0.0 && largest > 0.0 {
        return Err(VectorError::Underflow { largest });
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
        assert!(matches!(
            validate_vector(&[3e38, 1.0], 2),
            Err(VectorError::Overflow { .. })
        ));
        assert!(matches!(
            validate_vector(&[1e-30, 0.0], 2),
            Err(VectorError::Underflow { .. })
        ));
        assert_eq!(validate_vector(&[0.0, 0.0], 2), Ok(()));
        let mut v = [3.0, 4.0];
        normalize_in_place(&mut v).unwrap();
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
    }
}
