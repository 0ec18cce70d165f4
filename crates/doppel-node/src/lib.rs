//! One doppel node under the gRPC handlers: its state and operations, with its own
//! [`Error`]. No tonic, no prost — handlers in `doppel-grpc` validate and convert, call
//! the node, and map the error; the shard node in `doppel-cluster` composes the same node
//! with a [`Placement`] that knows which shards it holds.
//!
//! Layout:
//! * [`node`] — [`Node`]: store, engine, placement; replay of the store
//! * `startup` — `Node::open`: replay, snapshot refresher, crash recovery, active version
//! * [`config`] — [`NodeConfig`]
//! * [`error`] — [`Error`], [`Result`], the blocking-pool helper
//! * [`placement`] — [`Placement`]: which customers are served here ([`Everyone`] on a single node)
//! * [`store_pages`] — the one paged reader of the store
//! * [`event_checkpoints`] — checkpoints of what the event log built, so start-up reads only the events after them
//! * [`ingest`] — profiles, items, events (idempotent by event id), erasure, customer view
//! * [`offers`] — the contact policy, offers recorded as impressions, routed to experiment arms
//! * [`experiments`] — experiments across versions: arms, sticky assignment, following the store
//! * [`canary`] — canary activations: start, promotion, automatic rollback
//! * [`canary_guard`] — judging a canary's guards
//! * [`serving_stats`] — per-version calls, errors and latencies while a canary runs
//! * [`experiment_report`] — per-arm counts from the event log
//! * [`experiment_stats`] — Wilson intervals, z-tests, the sample-ratio chi-square
//! * [`fold_in`](mod@fold_in) — customers re-solved after new events
//! * [`customer_segments`] — RFM / CLV / cluster attributes on profiles
//! * [`training`] — [`TrainPlan`] runs with progress
//! * [`versions`] — imports, activation, rollback target, listing, describing
//! * `version_load` — building a version in memory (snapshot or store)
//! * `memory_trim` — freed build memory returned to the OS after each build
//! * [`snapshots`] — snapshot paths, writes, loads, refresh after fold-in
//! * [`version_gc`] — deleting versions (on request, and old ones after an activation)
//! * [`version_recovery`] — versions a crash left unfinished
//! * [`build_progress`] — [`BuildProgress`]
//!
//! "Segment" in this crate always means a customer segment.

pub mod build_progress;
pub mod canary;
pub mod canary_guard;
pub mod config;
pub mod customer_segments;
pub mod error;
pub mod event_checkpoints;
pub mod event_retention;
pub mod experiment_report;
pub mod experiment_stats;
pub mod experiments;
pub mod fold_in;
pub mod ingest;
mod memory_trim;
pub mod node;
pub mod offers;
pub mod placement;
pub mod serving_stats;
pub mod snapshots;
mod startup;
pub mod store_pages;
pub mod training;
pub mod version_gc;
mod version_load;
pub mod version_recovery;
pub mod versions;

pub use build_progress::BuildProgress;
pub use config::{DEFAULT_SNAPSHOT_REFRESH, NodeConfig};
pub use error::{Error, Result};
pub use experiments::{ArmRoute, NewExperiment};
pub use ingest::{CustomerView, RecordedBatch};
pub use node::{Node, WritingGuard};
pub use offers::Offers;
pub use placement::{Everyone, Placement};
pub use training::{ProgressReceiver, TrainPlan, TrainProgress};
pub use versions::{ImportSession, ImportSummary, VersionView};
