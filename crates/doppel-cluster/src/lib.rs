//! doppel as a cluster. Customers are split into a fixed number of logical shards (a
//! stable hash of the id); each **shard node** loads the shards it owns from Redis into its
//! indexes and serves them on an internal gRPC API; stateless **routers** serve the public
//! `doppel.v1` API, sending per-customer calls to the owning node and fanning lookalike
//! queries out to every node, merging their sorted answers exactly.
//!
//! ```text
//!   clients ──doppel.v1──► router ──doppel.internal.v1 + doppel.v1──► shard node 0 ─┐
//!                            │                                          shard node 1 ─┤
//!                            └───────── leases, shard map, active version ── Redis ◄──┘
//! ```
//!
//! Layout:
//! * [`topology`] — which node serves which shard, refreshed from the leases in Redis;
//! * [`shard`] — the shard node: ownership, lease, event follower, internal service;
//! * [`router`] — the router: one file per public service, plus the fan-out merge.

pub mod router;
pub mod shard;
pub mod topology;

/// How long a lease lives without renewal.
pub const LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(6);
/// How often a node renews its lease (and a router re-reads the topology).
pub const LEASE_RENEW_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// The health service name a shard node's readiness reports.
pub const SHARD_SERVICE_NAME: &str = "doppel.internal.v1.Shard";
