//! The store's error type.
//!
//! redb's errors are sorted on the way in: an I/O error of the disk under the store
//! becomes [`Error::DiskFull`] (no space, quota or file-size limit) or [`Error::Io`], the two
//! errors after which the embedded store reopens its database; everything else is
//! [`Error::Storage`].

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Why a store operation failed.
#[derive(Clone, Debug, Error)]
pub enum Error {
    /// The named record does not exist (e.g. activating an unknown version).
    #[error("{what} {id:?} not found")]
    NotFound {
        /// Kind of record: `"version"`, `"customer"`, ...
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// A write would go over a limit the caller set (saved audiences and their members);
    /// nothing was written.
    #[error("{field}: {reason}")]
    LimitExceeded {
        /// The request field to blame.
        field: &'static str,
        /// Which limit.
        reason: String,
    },
    /// The backend failed (transaction, a panicked worker, a bad Redis reply).
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
    /// The disk under the store refused a write for lack of space (`ENOSPC`), over a quota
    /// (`EDQUOT`) or past the file-size limit (`EFBIG`). Nothing was written; earlier
    /// acknowledged writes are intact. Writes succeed again once space is freed.
    #[error("data disk full ({}): {reason}; free space and retry", path.display())]
    DiskFull {
        /// The database file.
        path: PathBuf,
        /// The operating system's message.
        reason: String,
    },
    /// Any other I/O error of the disk under the store, or an operation on a database
    /// handle that an I/O error poisoned. The embedded store reopens its database.
    #[error("storage I/O error ({}): {reason}", path.display())]
    Io {
        /// The database file.
        path: PathBuf,
        /// The operating system's (or redb's) message.
        reason: String,
    },
}

/// Result of store operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Is this an I/O failure of the disk ([`Error::DiskFull`] or [`Error::Io`])?
    pub fn is_io(&self) -> bool {
        matches!(self, Error::DiskFull { .. } | Error::Io { .. })
    }

    /// Names `path` in an I/O error that does not name its file yet (conversions from
    /// redb's errors cannot know it).
    pub(crate) fn at_path(self, file: &Path) -> Self {
        match self {
            Error::DiskFull { path, reason } if path.as_os_str().is_empty() => Error::DiskFull {
                path: file.to_owned(),
                reason,
            },
            Error::Io { path, reason } if path.as_os_str().is_empty() => Error::Io {
                path: file.to_owned(),
                reason,
            },
            other => other,
        }
    }
}

/// Is `error` the disk running out of room: no space, over quota, or past the file-size
/// limit?
fn is_disk_full(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge
    )
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        let (path, reason) = (PathBuf::new(), e.to_string());
        if is_disk_full(&e) {
            Error::DiskFull { path, reason }
        } else {
            Error::Io { path, reason }
        }
    }
}

impl From<redb::Error> for Error {
    fn from(e: redb::Error) -> Self {
        match e {
            redb::Error::Io(io) => io.into(),
            redb::Error::PreviousIo | redb::Error::DatabaseClosed => Error::Io {
                path: PathBuf::new(),
                reason: e.to_string(),
            },
            other => Error::Storage(other.to_string()),
        }
    }
}

macro_rules! through_redb_error {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                redb::Error::from(e).into()
            }
        }
    )*};
}

through_redb_error!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError,
);

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Storage(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_space_quota_and_file_size_are_disk_full() {
        // What ENOSPC, EDQUOT and EFBIG become.
        for kind in [
            io::ErrorKind::StorageFull,
            io::ErrorKind::QuotaExceeded,
            io::ErrorKind::FileTooLarge,
        ] {
            let e = Error::from(redb::StorageError::Io(io::Error::from(kind)));
            assert!(matches!(e, Error::DiskFull { .. }), "{kind:?}: {e}");
        }
        let e = Error::from(redb::CommitError::Storage(redb::StorageError::Io(
            io::Error::other("EIO"),
        )));
        assert!(matches!(e, Error::Io { .. }), "{e}");
        let e = Error::from(redb::TransactionError::Storage(
            redb::StorageError::PreviousIo,
        ));
        assert!(matches!(e, Error::Io { .. }), "{e}");
    }

    #[test]
    fn the_message_names_the_file() {
        let e = Error::from(io::Error::from(io::ErrorKind::StorageFull))
            .at_path(Path::new("/d/doppel.redb"));
        let message = e.to_string();
        assert!(
            message.starts_with("data disk full (/d/doppel.redb): "),
            "{message}"
        );
        assert!(message.ends_with("; free space and retry"), "{message}");
    }
}
