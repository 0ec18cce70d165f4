//! doppel's domain types, shared by every other crate and depending on none of them.
//!
//! Layout:
//! * [`clock`] — the one wall clock (`now_ms`);
//! * [`contact_policy`] — frequency caps on offers, and their validation;
//! * [`context_model`] — what a version learned about context: per-item log-lifts by channel, device, country, hour and weekday;
//! * [`entity`] — customers, consent, items, events and their context;
//! * [`event_checkpoint`] — checkpoints of what the event log built (popularity, purchases, impressions);
//! * [`experiment`] — experiments and canaries: arms, sticky buckets, allocations;
//! * [`offer_prior`] — the recent-popularity prior of trained offers and the vector layout serving it;
//! * [`offer_recency`] — the recency shift of trained offers towards a customer's newest purchases;
//! * [`shard`] — the stable customer → logical shard hash;
//! * [`version`] — model versions and their lifecycle states;
//! * [`limits`] — the size bound of every request, as named constants;
//! * [`vector`] — validation and normalisation of embedding vectors.

pub mod audit;
pub mod clock;
pub mod contact_policy;
pub mod context_model;
pub mod entity;
pub mod event_checkpoint;
pub mod experiment;
pub mod limits;
pub mod offer_prior;
pub mod offer_recency;
pub mod privacy_floor;
pub mod saved_audience;
pub mod segment;
pub mod shard;
pub mod vector;
pub mod version;

pub use audit::AuditEvent;
pub use contact_policy::{CapScope, ContactPolicy, FrequencyCap};
pub use context_model::{ContextLifts, ContextModel};
pub use entity::{Consent, Context, Customer, Entity, Event, EventType, Item};
pub use event_checkpoint::{CheckpointScope, CustomerHistory, EventCheckpoint, ItemCounts};
pub use experiment::{Arm, CanaryGuard, Experiment, ExperimentBook, ExperimentKind};
pub use offer_prior::{OfferPrior, VectorLayout};
pub use offer_recency::RecencyShift;
pub use privacy_floor::PrivacyFloor;
pub use saved_audience::{SavedAudienceInfo, SavedAudienceLimits, SavedAudienceWrite, SavedMember};
pub use shard::{ShardId, shard_of};
pub use vector::{VectorError, normalize_in_place, validate_vector};
pub use version::{VersionInfo, VersionSource, VersionState, is_valid_version_name};
