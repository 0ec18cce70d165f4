//! The crate's error type.

use doppel_types::vector::VectorError;

/// Why an index operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A vector or query has the wrong number of components.
    #[error("expected {expected} dimensions, got {actual}")]
    Dimension {
        /// The index's dimension.
        expected: usize,
        /// What was given.
        actual: usize,
    },
    /// A NaN or infinite component (for batches: the flat position of the first bad value).
    #[error("component {index} is not finite")]
    NotFinite {
        /// Position of the first bad component.
        index: usize,
    },
    /// A zero vector under the cosine metric (no direction).
    #[error("vector has zero norm, which cosine similarity cannot use")]
    ZeroNorm,
    /// A vector whose squared norm overflows or underflows `f32`, so it cannot be
    /// normalised.
    #[error("{0}")]
    Magnitude(String),
    /// A parameter is out of its allowed range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing a segment file failed.
    #[error("segment file I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A segment file is damaged (bad magic, checksum, truncated, inconsistent).
    #[error("corrupt segment file: {reason}")]
    Corrupt {
        /// What check failed.
        reason: String,
    },
    /// A segment file written by a format version this build cannot read.
    #[error("unsupported segment format version {version}")]
    UnsupportedFormat {
        /// The version found in the file.
        version: u32,
    },
    /// A rayon thread pool for the build could not be created.
    #[error("could not start build threads: {0}")]
    ThreadPool(String),
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<VectorError> for Error {
    fn from(e: VectorError) -> Self {
        match e {
            VectorError::Dimension { expected, actual } => Error::Dimension { expected, actual },
            VectorError::NotFinite { index } => Error::NotFinite { index },
            VectorError::ZeroNorm => Error::ZeroNorm,
            e @ (VectorError::Overflow { .. } | VectorError::Underflow { .. }) => {
                Error::Magnitude(e.to_string())
            }
        }
    }
}

impl Error {
    pub(crate) fn invalid(name: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidParameter {
            name,
            reason: reason.into(),
        }
    }

    pub(crate) fn corrupt(reason: impl Into<String>) -> Self {
        Error::Corrupt {
            reason: reason.into(),
        }
    }
}
