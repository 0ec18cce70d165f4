//! Why the engine refused a request. Every variant names what the caller got wrong, so the
//! gRPC layer can map it to a status without guessing.

/// An engine error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field has a value the engine cannot use.
    #[error("{field}: {reason}")]
    InvalidArgument {
        /// Dotted field name, e.g. `count`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A referenced customer, item or version does not exist.
    #[error("{field}: `{id}` not found")]
    NotFound {
        /// The field that held the id.
        field: &'static str,
        /// The id that was not found.
        id: String,
    },
    /// The engine is not in a state that allows the request (e.g. no active version).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A request is larger than the engine accepts.
    #[error("{field}: {reason}")]
    ResourceExhausted {
        /// The field that is too large.
        field: &'static str,
        /// The bound that was exceeded.
        reason: String,
    },
    /// The caller went away (cancelled, or its deadline passed); the work was stopped.
    #[error("cancelled: the caller went away or its deadline passed")]
    Cancelled,
    /// The vector index refused an operation.
    #[error("index: {0}")]
    Index(#[from] doppel_index::Error),
}

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn not_found(field: &'static str, id: impl Into<String>) -> Self {
        Error::NotFound {
            field,
            id: id.into(),
        }
    }

    pub(crate) fn no_active_version() -> Self {
        Error::FailedPrecondition(
            "no active model version: import embeddings (or train) and activate a version first"
                .to_owned(),
        )
    }
}
