//! The audit log: one record per administrative call and per erasure.

use serde::{Deserialize, Serialize};

/// Most audit events kept; older ones are dropped first.
pub const MAX_AUDIT_EVENTS: u64 = 1_000_000;

/// One administrative call or erasure.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Assigned by the store, increasing (0 before it is stored).
    pub seq: u64,
    /// When the call answered, ms since the epoch.
    pub time_ms: i64,
    /// The caller's API key id (`""`: the server has no keys, or the key was unknown).
    pub key_id: String,
    /// The RPC path, e.g. `/doppel.v1.Ingest/DeleteCustomer`.
    pub rpc: String,
    /// What it acted on: a model version, a customer id (`""` when none).
    pub target: String,
    /// The gRPC status code name it answered with (`OK`, `PERMISSION_DENIED`, ...).
    pub outcome: String,
}
