//! The one place where errors of the layers below become gRPC statuses.
//!
//! Every variant is matched explicitly (no `_ =>`), so a new error kind breaks the build
//! until someone decides which status it deserves.

use tonic::Status;

/// A request field that failed validation at the edge.
#[derive(Debug)]
pub struct FieldViolation {
    /// Dotted path of the field, e.g. `filter.max_price`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<FieldViolation> for Status {
    fn from(v: FieldViolation) -> Self {
        Status::invalid_argument(format!("{}: {}", v.field, v.reason))
    }
}

/// Maps engine errors.
pub fn engine_status(error: doppel_engine::Error) -> Status {
    use doppel_engine::Error as E;
    match error {
        E::InvalidArgument { field, reason } => {
            Status::invalid_argument(format!("{field}: {reason}"))
        }
        E::NotFound { field, id } => Status::not_found(format!("{field}: `{id}` not found")),
        E::FailedPrecondition(reason) => Status::failed_precondition(reason),
        E::ResourceExhausted { field, reason } => {
            Status::resource_exhausted(format!("{field}: {reason}"))
        }
        E::Cancelled => Status::cancelled("the caller went away or its deadline passed"),
        E::Index(inner) => index_status(inner),
    }
}

/// Maps index errors (vectors that reached the index despite validation, snapshot files).
pub fn index_status(error: doppel_index::Error) -> Status {
    use doppel_index::Error as E;
    let message = error.to_string();
    match error {
        E::Vector(_) | E::InvalidParameter { .. } => {
            Status::invalid_argument(format!("vector: {message}"))
        }
        E::Io(_) | E::Corrupt { .. } | E::UnsupportedFormat { .. } | E::ThreadPool(_) => {
            Status::internal(format!("index: {message}"))
        }
    }
}

/// Maps store errors.
pub fn store_status(error: doppel_store::Error) -> Status {
    use doppel_store::Error as E;
    match error {
        E::NotFound { what, id } => Status::not_found(format!("{what}: `{id}` not found")),
        E::Unavailable(reason) => Status::unavailable(format!("store unavailable: {reason}")),
        // Names the disk; the store takes writes again once space is freed.
        E::DiskFull { .. } => Status::resource_exhausted(error.to_string()),
        // The embedded store is reopening its database: worth retrying.
        E::Io { .. } => Status::unavailable(format!("store: {error}; reopening")),
        E::LimitExceeded { .. } => Status::resource_exhausted(error.to_string()),
        E::Corrupt { .. } | E::Storage(_) => Status::internal(format!("store: {error}")),
    }
}

/// Maps training errors.
pub fn train_status(error: doppel_train::Error) -> Status {
    use doppel_train::Error as E;
    match error {
        E::InvalidParameter { name, reason } => FieldViolation::new(name, reason).into(),
        E::NoInteractions => Status::failed_precondition(
            "the event log has no positive interactions to learn from (record events first)",
        ),
        E::ThreadPool(reason) => Status::internal(format!("training threads: {reason}")),
    }
}

/// Maps node errors: the one way an error of the node layer becomes a status. (A function,
/// not `From`: neither type is this crate's, and the node crate has no tonic.)
pub fn node_status(error: doppel_node::Error) -> Status {
    use doppel_node::Error as E;
    match error {
        E::InvalidArgument { field, reason } => FieldViolation::new(field, reason).into(),
        E::NotFound(message) => Status::not_found(message),
        E::AlreadyExists(message) => Status::already_exists(message),
        E::FailedPrecondition(message) => Status::failed_precondition(message),
        E::Unavailable(message) => Status::unavailable(message),
        E::Store(e) => store_status(e),
        E::Engine(e) => engine_status(e),
        E::Train(e) => train_status(e),
        E::Task { .. } => Status::internal(error.to_string()),
    }
}
