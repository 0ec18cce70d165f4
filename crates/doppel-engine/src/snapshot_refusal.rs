//! How a snapshot that cannot be used is refused: `FailedPrecondition` naming the file, so
//! the caller rebuilds the version from the store.

use std::path::Path;

use crate::error::Error;

/// The snapshot file `path` refused, and why.
pub(crate) fn refused(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::FailedPrecondition(format!("snapshot {}: {reason}", path.display()))
}

/// An I/O failure on the snapshot file `path`, as a refusal.
pub(crate) fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| refused(path, e)
}
