//! doppel's public gRPC API (`doppel.v1`): thin handlers that validate, convert, call the
//! store and the engine, and convert back.
//!
//! Layout:
//! * [`server`] — `run(listener, node, shutdown)`: services, health, reflection, drain;
//! * the node's state and operations live in `doppel-node`; handlers here validate and
//!   convert, call the node, and map its error ([`status::node_status`]);
//! * [`convert`] — protobuf ⇄ domain conversions (`TryFrom`s that validate and name fields);
//! * [`status`] — the one mapping of store and engine errors to `tonic::Status`;
//! * one file per service: [`ingest_service`], [`model_admin_service`],
//!   [`audiences_service`], [`recommendations_service`], [`policies_service`],
//!   [`experiments_service`];
//! * [`admission`] — two cost classes with concurrency limits, and oversize messages
//!   (RESOURCE_EXHAUSTED for both);
//! * [`rpc_metrics`] — the tower layer that records latency and status of every RPC;
//! * [`tls`] — TLS and mTLS settings of the public port from PEM files.

pub mod admission;
pub mod audiences_service;
pub mod audit_log;
pub mod auth;
pub mod convert;
pub mod experiments_service;
pub mod ingest_service;
pub mod model_admin_service;
pub mod page_stream;
pub mod policies_service;
pub mod recommendations_service;
pub mod rpc_metrics;
pub mod saved_audiences;
pub mod segments;
pub mod server;
pub mod status;
pub mod stream_idle;
pub mod tls;
pub mod training;

pub use doppel_node::{Node, NodeConfig};
pub use server::{ServeOptions, run};
