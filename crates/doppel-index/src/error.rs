//! The crate's error type.

use doppel_types::vector::VectorError;

/// Why an index operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A vector or query was refused: wrong dimension, a NaN or infinite component (for
    /// batches: the flat position of the first bad value), a zero vector under the cosine
    /// metric, or a squared norm that overflows or underflows `f32`. The one definition of
    /// these checks lives in [`doppel_types::vector`].
    #[error(transparent)]
    Vector(#[from] VectorError),
    /// A parameter is out of its allowed range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing an index file failed.
    #[error("index file I/O: {0}")]
    Io(#[from] std::io::Error),
    /// An index file is damaged (bad magic, checksum, truncated, inconsistent).
    #[error("corrupt index file: {reason}")]
    Corrupt {
        /// What check failed.
        reason: String,
    },
    /// An index file written by a format version this build cannot read.
    #[error("unsupported index file format version {version}")]
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
