//! Why a node operation failed. Every variant says what the caller can do about it; the
//! gRPC layer maps each to one status code in one exhaustive match.

/// A node error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field has a value the node cannot use.
    #[error("{field}: {reason}")]
    InvalidArgument {
        /// Dotted field name, e.g. `ids[3]`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A referenced version, customer or segment does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A version of that name exists or is being written.
    #[error("{0}")]
    AlreadyExists(String),
    /// The node's state does not allow the request (version not ready, active, ...).
    #[error("{0}")]
    FailedPrecondition(String),
    /// Retry elsewhere or later: the customer's shard is not (or no longer) held here.
    #[error("{0}")]
    Unavailable(String),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] doppel_store::Error),
    /// The engine refused or failed.
    #[error(transparent)]
    Engine(#[from] doppel_engine::Error),
    /// Training refused its parameters or failed.
    #[error(transparent)]
    Train(#[from] doppel_train::Error),
    /// A blocking task (index build, training, snapshot load) panicked or was cancelled.
    #[error("{what} task: {reason}")]
    Task {
        /// Which task.
        what: &'static str,
        /// The join error.
        reason: String,
    },
}

/// Result with the node's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An invalid field.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A failure of the server rather than of the request (what a canary's error-rate
    /// guard counts): the store, a task, an index, an unavailable shard.
    pub fn is_server_side(&self) -> bool {
        match self {
            Error::Store(_) | Error::Task { .. } | Error::Unavailable(_) | Error::Train(_) => true,
            Error::Engine(e) => match e {
                doppel_engine::Error::Index(_) => true,
                doppel_engine::Error::InvalidArgument { .. }
                | doppel_engine::Error::NotFound { .. }
                | doppel_engine::Error::FailedPrecondition(_)
                | doppel_engine::Error::ResourceExhausted { .. }
                | doppel_engine::Error::Cancelled => false,
            },
            Error::InvalidArgument { .. }
            | Error::NotFound(_)
            | Error::AlreadyExists(_)
            | Error::FailedPrecondition(_) => false,
        }
    }

    /// A blocking task that did not finish.
    pub fn task(what: &'static str, e: tokio::task::JoinError) -> Self {
        Error::Task {
            what,
            reason: e.to_string(),
        }
    }
}

/// Runs `f` on the blocking pool; a panic or cancellation is [`Error::Task`].
pub async fn blocking<T, F>(what: &'static str, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::task(what, e))
}
