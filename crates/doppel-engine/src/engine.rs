//! [`Engine`]: profiles, loaded model versions and the active one, behind `&self`; and the
//! types its API takes and returns.
//!
//! The methods are grouped by concern in the child modules (each an `impl Engine` block,
//! so the fields stay private to this module and its children):
//! * `profile_updates` — customers, items and events in; erasure
//! * `version_build` — a version's indexes built from vectors; one customer's vector set
//! * `version_lifecycle` — activation, rollback target, unload, describe
//! * `snapshots` — versions and shards saved to / loaded from disk
//! * `shard_ownership` — which logical shards this engine holds; shard install and release
//! * `queries` — lookalike, shard scoring for a router, offers, similar items, customer
//!   segment views
//!
//! Locking: one `RwLock` over profiles (queries read, ingest writes briefly) and one over
//! the set of loaded versions. Queries hold the profile read lock for their whole run, so
//! an erasure (which takes the write lock, then tombstones the customer in every version)
//! is never half-visible to a query.

mod event_checkpoints;
mod profile_updates;
mod queries;
mod shard_ownership;
mod snapshots;
mod version_build;
mod version_lifecycle;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use doppel_types::vector::{VectorError, validate_vector};
use doppel_types::{ContactPolicy, VersionInfo};
use parking_lot::RwLock;

use crate::config::EngineConfig;
use crate::context_ranking::ContextRanking;
use crate::error::{Error, Result};
use crate::loaded_version::LoadedVersion;
use crate::profiles::{ProfileMemory, Profiles};
use doppel_index::MemoryParts;

/// A customer index merges its live delta into a new frozen graph past this many points.
const MERGE_DELTA_AT: usize = 4_096;

/// What a shard install from a snapshot did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardInstall {
    /// Customers the shard holds now.
    pub customers: usize,
    /// Vectors patched because the store changed since the snapshot.
    pub patched: usize,
}

/// A version's vectors, to be built into indexes.
#[derive(Clone, Debug)]
pub struct LoadVersion {
    /// The version (its `dim` is authoritative).
    pub info: VersionInfo,
    /// `(customer id, vector)` rows.
    pub customer_vectors: Vec<(String, Vec<f32>)>,
    /// `(item id, vector)` rows.
    pub item_vectors: Vec<(String, Vec<f32>)>,
}

/// What a version build did.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionSummary {
    /// The version.
    pub version: String,
    /// Customers indexed.
    pub customers: usize,
    /// Items indexed.
    pub items: usize,
    /// Customer rows dropped because the customer was erased.
    pub erased_skipped: usize,
    /// Wall-clock seconds of the build.
    pub build_seconds: f64,
}

/// Size and parameters of a loaded version.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexDescription {
    /// The version.
    pub version: String,
    /// Vector dimension.
    pub dim: usize,
    /// Live customers over all shards.
    pub customer_count: usize,
    /// Live items.
    pub item_count: usize,
    /// Logical customer shards.
    pub shard_count: u32,
    /// Approximate heap bytes of every index of the version.
    pub memory_bytes: usize,
    /// HNSW links per node.
    pub m: usize,
    /// HNSW construction breadth.
    pub ef_construction: usize,
    /// HNSW search breadth.
    pub ef_search: usize,
    /// Tombstoned points (erased or superseded) awaiting a merge.
    pub deleted: usize,
    /// Points in live deltas (written after the build).
    pub delta: usize,
    /// The indexes were loaded from a snapshot rather than built.
    pub from_snapshot: bool,
    /// `memory_bytes` by part, with the node's profiles beside it.
    pub memory: MemoryBreakdown,
    /// Customer scans read int8 codes (the version's `scan_vectors = int8`).
    pub int8_scan: bool,
}

/// Heap bytes of a loaded version by part, and of the node-wide profiles every version
/// shares (approximate: allocator overhead is not counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryBreakdown {
    /// The customer indexes of every logical shard, by part.
    pub customers: MemoryParts,
    /// The item index, by part.
    pub items: MemoryParts,
    /// The version's bitset of customers with a vector.
    pub members: usize,
    /// Profiles and id tables (node-wide, not per version).
    pub profiles: ProfileMemory,
}

impl MemoryBreakdown {
    /// Bytes one customer costs: its share of the customer indexes, the member bitset,
    /// customer profiles and id tables (the item-id table is counted too; it is small).
    pub fn bytes_per_customer(&self, customers: usize) -> f64 {
        let total = self.customers.total()
            + self.members
            + self.profiles.customers
            + self.profiles.id_tables;
        if customers == 0 {
            0.0
        } else {
            total as f64 / customers as f64
        }
    }
}

/// The serving engine of one node. `Send + Sync`; share it as `Arc<Engine>`.
pub struct Engine {
    config: EngineConfig,
    profiles: RwLock<Profiles>,
    versions: RwLock<Versions>,
    /// Customers erased since start: their vectors are refused by later loads too.
    erased: RwLock<HashSet<String>>,
    /// `(id, slot)` of each erasure since start, in order, noted under the profiles' write
    /// lock as the slot is forgotten: a build or shard install that ran beside erasures
    /// removes these customers again by slot (the id no longer finds it).
    erased_slots: parking_lot::Mutex<Vec<(String, doppel_index::PointId)>>,
    /// Which logical shards' customers this engine holds (all, unless it is a shard node).
    held: RwLock<Vec<bool>>,
    /// The contact policy (frequency caps) offers obey.
    policy: RwLock<Arc<ContactPolicy>>,
    /// Context models set before their version was loaded, taken by the load, so a
    /// version is never listed without its model.
    staged_context: RwLock<HashMap<String, Arc<ContextRanking>>>,
}

/// The loaded versions, the active one and the rollback target (see `version_lifecycle`).
#[derive(Default)]
struct Versions {
    loaded: HashMap<String, Arc<LoadedVersion>>,
    active: Option<Arc<LoadedVersion>>,
    previous: Option<String>,
    /// Versions kept loaded whatever is activated (the arms of a running experiment).
    pinned: Vec<String>,
}

impl Engine {
    /// An empty engine.
    pub fn new(config: EngineConfig) -> Self {
        let shard_count = config.shard_count.max(1);
        let held = (0..shard_count).map(|s| config.owns_shard(s)).collect();
        Self {
            held: RwLock::new(held),
            config: EngineConfig {
                shard_count,
                ..config
            },
            profiles: RwLock::default(),
            versions: RwLock::default(),
            policy: RwLock::default(),
            staged_context: RwLock::default(),
            erased: RwLock::default(),
            erased_slots: parking_lot::Mutex::default(),
        }
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The active version, or why there is none.
    fn active(&self) -> Result<Arc<LoadedVersion>> {
        self.versions
            .read()
            .active
            .clone()
            .ok_or_else(Error::no_active_version)
    }

    /// The context model a version being inserted under `name` starts with: the one
    /// staged for it, else the one of the version it replaces.
    fn context_for(&self, versions: &Versions, name: &str) -> Option<Arc<ContextRanking>> {
        self.staged_context.write().remove(name).or_else(|| {
            versions
                .loaded
                .get(name)
                .and_then(|v| v.context.read().clone())
        })
    }

    /// A loaded version by name.
    fn loaded(&self, version: &str) -> Result<Arc<LoadedVersion>> {
        self.versions
            .read()
            .loaded
            .get(version)
            .cloned()
            .ok_or_else(|| Error::not_found("model_version", version))
    }
}

/// Refuses `rows` (of request field `field`) unless every vector is finite with `dim`
/// components.
fn check_rows(field: &'static str, rows: &[(String, Vec<f32>)], dim: usize) -> Result<()> {
    for (id, v) in rows {
        validate_vector(v, dim).map_err(|e| row_error(field, id, e))?;
    }
    Ok(())
}

fn row_error(field: &'static str, id: &str, e: VectorError) -> Error {
    Error::invalid(field, format!("`{id}`: {e}"))
}
