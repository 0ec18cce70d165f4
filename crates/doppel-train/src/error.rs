//! The crate's error type.

/// Why training or segmentation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A hyper-parameter or configuration value is out of its allowed range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The field's name, as spelled in its struct (`factors`, `alpha`, ...).
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// There is nothing to factorise: no customer has a positive interaction.
    #[error("no positive interactions to train on")]
    NoInteractions,
    /// A rayon thread pool for training could not be created.
    #[error("could not start training threads: {0}")]
    ThreadPool(String),
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for an [`Error::InvalidParameter`].
pub(crate) fn invalid(name: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidParameter {
        name,
        reason: reason.into(),
    }
}
