//! The store's error type.

use thiserror::Error;

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum Error {
    /// The named record does not exist (e.g. activating an unknown version).
    #[error("{what} {id:?} not found")]
    NotFound {
        /// Kind of record: `"version"`, `"customer"`, ...
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// The backend failed (I/O, transaction, a panicked worker).
    #[error("storage error: {0}")]
    Storage(String),
    /// A stored value could not be decoded.
    #[error("corrupt {what} at {key:?}: {reason}")]
    Corrupt {
        /// Kind of record.
        what: &'static str,
        /// Its key, printed.
        key: String,
        /// Decoder message.
        reason: String,
    },
    /// The backend cannot be reached right now; the caller may retry (network stores).
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// Result of store operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

macro_rules! storage_from {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Storage(e.to_string())
            }
        }
    )*};
}

storage_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError,
    std::io::Error,
    tokio::task::JoinError,
);
