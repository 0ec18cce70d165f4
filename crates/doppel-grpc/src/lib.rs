//! doppel's public gRPC API (`doppel.v1`): thin handlers that validate, convert, call the
//! store and the engine, and convert back.
//!
//! Layout:
//! * [`server`] — `run(listener, node, shutdown)`: services, health, reflection, drain;
//! * [`node`] — a single node's state: the store, the engine, startup replay;
//! * [`convert`] — protobuf ⇄ domain conversions (`TryFrom`s that validate and name fields);
//! * [`status`] — the one mapping of store and engine errors to `tonic::Status`;
//! * one file per service: [`ingest_service`], [`model_admin_service`],
//!   [`audiences_service`], [`recommendations_service`];
//! * [`version_gc`], [`version_recovery`] — deleting versions (old ones after an activation,
//!   or on request) and reconciling versions a crash left unfinished;
//! * [`rpc_metrics`] — the tower layer that records latency and status of every RPC.

pub mod audiences_service;
pub mod convert;
pub mod ingest_service;
pub mod model_admin_service;
pub mod node;
pub mod recommendations_service;
pub mod rpc_metrics;
pub mod segments;
pub mod server;
pub mod status;
pub mod training;
pub mod version_gc;
pub mod version_recovery;

pub use node::{Node, NodeConfig};
pub use server::{ServeOptions, run};
