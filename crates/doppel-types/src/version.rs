//! Model versions: one training run or one import of customer and item vectors.
//!
//! ```text
//! staging ──► building ──► ready ──► active ──► retired
//!    │            │                    ▲  │
//!    └────────────┴──► failed          └──┘ (rollback re-activates a retired version)
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where a version's vectors come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum VersionSource {
    /// Brought by the client through `ImportEmbeddings`.
    #[default]
    Imported,
    /// Learned by doppel from the event log.
    Trained,
}

/// Lifecycle state of a model version.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum VersionState {
    /// Vectors are arriving.
    #[default]
    Staging,
    /// Indexes are being built.
    Building,
    /// Indexes built, may be activated.
    Ready,
    /// Serving queries.
    Active,
    /// Was active, superseded.
    Retired,
    /// Import or build failed; never activated.
    Failed,
}

/// Metadata of a model version, as stored and listed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// Client-chosen or generated name, e.g. `v20261122-1`.
    pub version: String,
    /// Vector dimension (same for customers and items).
    pub dim: u32,
    /// Imported or trained.
    pub source: VersionSource,
    /// Lifecycle state.
    pub state: VersionState,
    /// Creation time, ms since the Unix epoch.
    pub created_ms: i64,
    /// Number of customer vectors.
    pub customer_count: u64,
    /// Number of item vectors.
    pub item_count: u64,
    /// Hyper-parameters and other free-form metadata.
    pub params: BTreeMap<String, String>,
}
