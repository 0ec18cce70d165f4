//! doppel's serving logic: model versions in memory, lookalike audiences and next-best
//! offers over the vector indexes. Synchronous: no tokio, no tonic.
//!
//! Layout:
//! * [`cancellation`] — [`Cancellation`]: long queries stop when their caller goes away
//! * [`config`] — [`EngineConfig`]
//! * [`error`] — [`Error`], [`Result`]
//! * `id_slots` — string ids → dense slots shared by every version (one bitset for all shards)
//! * `profiles` — consent, attributes, purchases, catalogue, popularity
//! * `profile_checkpoints` — what the event log built in `profiles`, read out for an event checkpoint and set back
//! * `exposures` — one customer's impressions, bounded, for frequency caps
//! * [`frequency_caps`] — cap counts, blocked items and the capped pick of offers
//! * `loaded_version` — one version's customer shard indexes and item index
//! * `context_ranking` — a version's context lifts per resolved context, cached, for offers
//! * [`lookalike_query`] — audience request/answer types
//! * [`classifier`] — population moments and the ridge-LDA fit of classifier audiences
//! * `customer_lengths` — each customer's vector length in a version, and per-shard moments
//! * `seed_prototypes` — centroid, coherence and k-means prototypes of a seed set
//! * `quantized_scan` — exact audiences from int8 scans (bounded scores, floats re-read only near the cut)
//! * `lookalike` — audience scoring (exact scan, int8 scan or graph search, by size)
//! * [`shard_scoring`] — the seed lookup and partial audience a shard node computes for a router
//! * [`recommend`] — next-best offers, popular fallback, similar items
//! * [`customer_segments`] — customer segment sizes and member pages from the `segment.*`
//!   attributes
//! * `snapshot` — versions saved to / loaded from disk (checksummed, ids renumbered on load)
//! * [`snapshot_dir`] — [`SnapshotRoot`]: snapshot paths from version names, and their deletion
//! * [`engine`] — [`Engine`], the `&self` API the gRPC layer calls, and its request/answer
//!   types; its methods live in one child module per concern:
//!   * `engine::profile_updates` — customers, items, events in; erasure
//!   * `engine::version_build` — a version's indexes built from vectors; fold-in upserts
//!   * `engine::version_lifecycle` — activate, rollback target, unload, describe
//!   * `engine::snapshots` — versions and shards saved and loaded
//!   * `engine::shard_ownership` — shards held, installed and released
//!   * `engine::queries` — lookalike, shard scoring, offers, similar items, customer segments
//!
//! Words: a *segment* here is always a customer segment (RFM, CLV tier, cluster). The
//! vector index's on-disk graphs are *index files* in a snapshot.
//!
//! Modules only import downwards: nothing imports `engine` but the crate root's
//! re-exports, and no module imports one that imports it back.

mod attribute_columns;
pub mod audience_groups;
pub mod cancellation;
pub mod classifier;
pub mod config;
mod context_ranking;
mod customer_lengths;
pub mod customer_segments;
pub mod engine;
pub mod error;
mod exposures;
pub mod fairness;
pub mod frequency_caps;
mod id_slots;
mod loaded_version;
mod lookalike;
pub mod lookalike_query;
mod profile_checkpoints;
mod profiles;
mod purchase_history;
mod quantized_scan;
pub mod reach;
pub mod recommend;
mod seed_prototypes;
pub mod shard_scoring;
mod slot_map;
mod snapshot;
pub mod snapshot_dir;
mod snapshot_ids;
mod snapshot_read;
mod snapshot_refusal;

pub use audience_groups::{Groups, MAX_GROUP_ATTRIBUTES, MAX_GROUP_VALUES};
pub use cancellation::{CancelOnDrop, Cancellation};
pub use classifier::{CLASSIFIER_MAX_DIM, CLASSIFIER_RIDGE, LinearScorer, Moments};
pub use config::EngineConfig;
pub use customer_segments::{SegmentPage, SegmentSize};
pub use engine::{
    Engine, IndexDescription, LoadVersion, MemoryBreakdown, ShardInstall, VersionSummary,
};
pub use error::{Error, Result};
pub use fairness::{FOUR_FIFTHS, GroupAudit};
pub use frequency_caps::CapCount;
pub use loaded_version::SCAN_VECTORS_PARAM;
pub use lookalike::{
    AUTO_CENTROID_MIN_SEEDS, AUTO_CLASSIFIER_MIN_SEEDS, CENTROID_MIN_COHERENCE,
    CENTROID_MIN_TWO_MODE_RATIO, ClassifierInputs, EXPLAIN_MAX_SEEDS, NEGATIVE_WEIGHT, ScorerSpec,
    check_size as check_audience_size, plan_scorer, target as audience_target, wants_classifier,
};
pub use lookalike_query::{
    Audience, AudienceSize, Balance, LookalikeQuery, Prospect, Strategy, mean_score,
};
pub use profile_checkpoints::ShardRoster;
pub use profiles::ProfileMemory;
pub use reach::{DEFAULT_REACH_PERCENTS, MAX_REACH_POINTS, ReachCurve, ReachCut, ReachPoint};
pub use recommend::{Offer, RecommendQuery, Recommendation, SimilarItemsResult};
pub use shard_scoring::{FoundSeed, SeedLookup, ShardAudience, ShardScoring};
pub use snapshot_dir::SnapshotRoot;
pub use snapshot_read::ReadSnapshot;
