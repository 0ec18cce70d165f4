//! doppel's serving logic: model versions in memory, lookalike audiences and next-best
//! offers over the vector indexes. Synchronous: no tokio, no tonic.
//!
//! Layout:
//! * [`config`] — [`EngineConfig`]
//! * [`error`] — [`Error`], [`Result`]
//! * `id_slots` — string ids → dense slots shared by every version (one bitset for all shards)
//! * `profiles` — consent, attributes, purchases, catalogue, popularity
//! * `loaded_version` — one version's customer shard indexes and item index
//! * [`lookalike_query`] — audience request/answer types
//! * `seed_prototypes` — centroid, coherence and k-means prototypes of a seed set
//! * `lookalike` — audience scoring (exact scan or graph search, by size)
//! * [`shard_scoring`] — the seed lookup and partial audience a shard node computes for a router
//! * [`recommend`] — next-best offers, popular fallback, similar items
//! * [`segment_view`] — segment sizes and member pages from the `segment.*` attributes
//! * `snapshot` — versions saved to / loaded from disk (checksummed, ids renumbered on load)
//! * [`snapshot_dir`] — [`SnapshotRoot`]: snapshot paths from version names, and their deletion
//! * [`engine`] — [`Engine`], the `&self` API the gRPC layer calls

pub mod config;
pub mod engine;
pub mod error;
mod id_slots;
mod loaded_version;
mod lookalike;
pub mod lookalike_query;
mod profiles;
pub mod recommend;
mod seed_prototypes;
pub mod segment_view;
pub mod shard_scoring;
mod snapshot;
pub mod snapshot_dir;

pub use config::EngineConfig;
pub use engine::{Engine, IndexDescription, LoadVersion, ShardInstall, VersionSummary};
pub use error::{Error, Result};
pub use lookalike::{
    CENTROID_MIN_COHERENCE, CENTROID_MIN_TWO_MODE_RATIO, EXPLAIN_MAX_SEEDS, NEGATIVE_WEIGHT,
    ScorerSpec, check_size as check_audience_size, plan_scorer, target as audience_target,
};
pub use lookalike_query::{Audience, AudienceSize, LookalikeQuery, Prospect, Strategy};
pub use recommend::{Offer, RecommendQuery, Recommendation, SimilarItemsResult};
pub use segment_view::{SegmentPage, SegmentSize};
pub use shard_scoring::{FoundSeed, SeedLookup, ShardAudience, ShardScoring};
pub use snapshot_dir::SnapshotRoot;
