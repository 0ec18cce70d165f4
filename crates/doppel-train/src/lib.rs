//! doppel's model training: from an event log to customer and item vectors, and from
//! vectors and purchases to customer segments.
//!
//! A synchronous, pure-computation library (no async runtime, no storage): callers hand
//! it events and get back a [`Model`] or [`CustomerSegments`]; rayon parallelises the
//! heavy loops. Every result is deterministic for a given seed, whatever the thread count
//! (bit-identical on CPUs of one kind: with AVX2 + FMA the solves use fused multiply-adds).
//!
//! Layout:
//! * [`confidence`] — [`ConfidenceConfig`]: event → signed strength → confidence
//! * [`context_fit`] — [`fit_context`]: a version's context lifts, and their weight fitted on a validation window
//! * [`recorded_params`] — the settings a version records, read back for its fold-in state
//! * [`reference_time`] — the "now" decay is measured to: a high quantile of the log, not its max
//! * [`interactions`] — [`Interactions`]: dense ids and the sparse confidence matrix
//! * [`sparse_rows`] — [`SparseRows`], the CSR matrix (and its transpose)
//! * [`als_params`] — [`AlsParams`], defaults and bounds
//! * [`als`] — [`train`]: implicit ALS, alternating half-steps of parallel row solves
//! * `conjugate_gradient` — one row's warm-started CG solve, allocation-free
//! * [`gram`] — [`Gram`], `YᵀY` summed in a thread-independent order
//! * [`model`] — [`Model`]: ids and row-major factors
//! * [`fold_in`](mod@fold_in) — [`fold_in()`]: one customer's exact solve against fixed items
//! * [`segments`] — RFM scores and segments, CLV tiers, spherical k-means clusters
//! * [`serving_vectors`] — [`ServingVectors`]: a model as cosine-indexable version vectors (inner product preserved)
//! * [`recent_popularity`] — [`PriorSettings`] and the recent-popularity prior of offers
//! * [`prior_fit`] — [`choose_prior_weight`]: the prior's weight chosen on the newest part of the log
//! * [`fold_in_model`] — [`FoldInModel`]: fold-in state rebuilt from a stored version
//! * `dense` — dot / axpy kernels the compiler vectorises, and the `Kernels` a solve runs on
//! * `fused_dense` — the same kernels with AVX2 fused multiply-adds (x86-64 CPUs that have them)
//! * [`error`] — [`Error`] and [`Result`]
//!
//! ```text
//! events ──Interactions::from_events──▶ Interactions ──train──▶ Model ──segment_customers──▶ segments
//!                                            │                    │
//!                  new events ──confidence_row──▶ row ──fold_in (Model::item_gram)──▶ vector
//! ```

pub mod als;
pub mod als_params;
pub mod confidence;
mod conjugate_gradient;
pub mod context_fit;
mod dense;
pub mod error;
pub mod fold_in;
pub mod fold_in_model;
#[cfg(target_arch = "x86_64")]
mod fused_dense;
pub mod gram;
pub mod interactions;
pub mod model;
pub mod prior_fit;
pub mod recent_popularity;
pub mod recorded_params;
pub mod reference_time;
pub mod segments;
pub mod serving_vectors;
pub mod sparse_rows;

pub use als::{TrainStep, no_progress, train};
pub use als_params::{AlsParams, SolveWeights};
pub use confidence::ConfidenceConfig;
pub use context_fit::{ContextFit, ContextFitReport, fit_context};
pub use error::{Error, Result};
pub use fold_in::fold_in;
pub use fold_in_model::FoldInModel;
pub use gram::Gram;
pub use interactions::Interactions;
pub use model::Model;
pub use prior_fit::{PriorFit, choose_prior_weight};
pub use recent_popularity::{PriorSettings, recent_popularity};
pub use reference_time::reference_time_ms;
pub use segments::{
    ClvTier, CustomerSegments, RfmScore, RfmSegment, SegmentConfig, segment_customers,
};
pub use serving_vectors::{ServingVectors, serving_customer_vector};
pub use sparse_rows::SparseRows;
