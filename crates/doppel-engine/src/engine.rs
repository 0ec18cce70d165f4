//! [`Engine`]: profiles, loaded model versions and the active one, behind `&self`.
//!
//! Locking: one `RwLock` over profiles (queries read, ingest writes briefly) and one over
//! the set of loaded versions. Queries hold the profile read lock for their whole run, so
//! an erasure (which takes the write lock, then tombstones the customer in every version)
//! is never half-visible to a query.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use doppel_index::{NoProgress, PointId, Progress};
use doppel_types::shard::shard_of;
use doppel_types::vector::{VectorError, validate_vector};
use doppel_types::{Customer, Event, Item, VersionInfo};
use parking_lot::RwLock;

use crate::config::EngineConfig;
use crate::error::{Error, Result};
use crate::loaded_version::{LoadedVersion, Rows};
use crate::lookalike::lookalike;
use crate::lookalike_query::{Audience, LookalikeQuery};
use crate::profiles::Profiles;
use crate::recommend::{
    RecommendQuery, Recommendation, SimilarItemsResult, recommend, similar_items,
};

/// A customer index merges its live delta into a new frozen segment past this many points.
const MERGE_DELTA_AT: usize = 4_096;
/// A snapshot's vector still matches the store's when no component differs by more.
const SNAPSHOT_TOLERANCE: f32 = 1e-5;

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
}

/// The serving engine of one node. `Send + Sync`; share it as `Arc<Engine>`.
pub struct Engine {
    config: EngineConfig,
    profiles: RwLock<Profiles>,
    versions: RwLock<Versions>,
    /// Customers erased since start: their vectors are refused by later loads too.
    erased: RwLock<HashSet<String>>,
    /// Which logical shards' customers this engine holds (all, unless it is a shard node).
    held: RwLock<Vec<bool>>,
}

#[derive(Default)]
struct Versions {
    loaded: HashMap<String, Arc<LoadedVersion>>,
    active: Option<Arc<LoadedVersion>>,
    previous: Option<String>,
}

fn check_rows(field: &'static str, rows: &[(String, Vec<f32>)], dim: usize) -> Result<()> {
    for (id, v) in rows {
        validate_vector(v, dim).map_err(|e| row_error(field, id, e))?;
    }
    Ok(())
}

fn row_error(field: &'static str, id: &str, e: VectorError) -> Error {
    Error::invalid(field, format!("`{id}`: {e}"))
}

impl Engine {
    /// An empty engine.
    pub fn new(config: EngineConfig) -> Self {
        let shard_count = config.shard_count.max(1);
        let held = (0..shard_count).map(|s| config.owns_shard(s)).collect();
        Self {
            held: RwLock::new(held),
            config: EngineConfig {
                shard_count: config.shard_count.max(1),
                ..config
            },
            profiles: RwLock::default(),
            versions: RwLock::default(),
            erased: RwLock::default(),
        }
    }

    /// `all`, or the held shards comma-separated (what a snapshot must match).
    fn held_description(&self) -> String {
        let held = self.held_shards();
        if held.len() == self.config.shard_count as usize {
            return "all".to_owned();
        }
        held.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Does this engine hold logical shard `shard`?
    pub fn owns_shard(&self, shard: u32) -> bool {
        self.held
            .read()
            .get(shard as usize)
            .copied()
            .unwrap_or(false)
    }

    /// Does this engine hold customer `id` (its logical shard)?
    pub fn owns_customer(&self, id: &str) -> bool {
        self.owns_shard(shard_of(id, self.config.shard_count))
    }

    /// The logical shards held, in order.
    pub fn held_shards(&self) -> Vec<u32> {
        let held = self.held.read();
        (0..held.len() as u32)
            .filter(|s| held[*s as usize])
            .collect()
    }

    /// Starts holding `shard` (a shard node taking it over): from now on its customers'
    /// profiles and events are kept. Fill it with [`Engine::install_shard`].
    pub fn hold_shard(&self, shard: u32) {
        if let Some(h) = self.held.write().get_mut(shard as usize) {
            *h = true;
        }
    }

    /// Builds `shard`'s index of a loaded `version` from `rows` and swaps it in (customers
    /// erased are left out). Returns the number of customers indexed.
    pub fn install_shard(
        &self,
        version: &str,
        shard: u32,
        rows: Vec<(String, Vec<f32>)>,
    ) -> Result<usize> {
        let v = self.loaded(version)?;
        check_rows("customer_vectors", &rows, v.dim)?;
        let index = v.shard(shard)?;
        let mut built = Rows {
            slots: Vec::new(),
            vectors: Vec::new(),
        };
        {
            let erased = self.erased.read();
            let mut profiles = self.profiles.write();
            for (id, vector) in &rows {
                if erased.contains(id) || shard_of(id, v.shard_count) != shard {
                    continue;
                }
                built.slots.push(profiles.customer_slots.intern(id));
                built.vectors.extend_from_slice(vector);
            }
        }
        let params = index.params().clone();
        let fresh = if built.slots.is_empty() {
            doppel_index::VectorIndex::new(params)?
        } else {
            doppel_index::VectorIndex::build(params, &built.slots, &built.vectors, &NoProgress)?
        };
        index.replace_with(fresh)?;
        let mut members = v.members.write();
        for slot in &built.slots {
            members.insert(*slot);
        }
        Ok(built.slots.len())
    }

    /// Like [`Engine::install_shard`], but starts from the shard's snapshot under `dir`
    /// when there is a good one: the store's `rows` stay the truth — vectors that changed,
    /// appeared or vanished since the snapshot are patched into it — and the graph is not
    /// rebuilt. A damaged or mismatched snapshot is an error (nothing changed); the caller
    /// rebuilds with [`Engine::install_shard`].
    pub fn install_shard_from_snapshot(
        &self,
        version: &str,
        shard: u32,
        rows: Vec<(String, Vec<f32>)>,
        dir: &std::path::Path,
    ) -> Result<ShardInstall> {
        let v = self.loaded(version)?;
        check_rows("customer_vectors", &rows, v.dim)?;
        let index = v.shard(shard)?;
        let (loaded, wanted) = {
            let erased = self.erased.read();
            let mut profiles = self.profiles.write();
            let loaded = crate::snapshot::load_shard(
                dir,
                &v.info,
                &self.config,
                shard,
                &mut profiles.customer_slots,
            )?;
            let wanted: HashMap<PointId, Vec<f32>> = rows
                .into_iter()
                .filter(|(id, _)| !erased.contains(id) && shard_of(id, v.shard_count) == shard)
                .map(|(id, mut vector)| {
                    crate::seed_prototypes::normalize(&mut vector);
                    (profiles.customer_slots.intern(&id), vector)
                })
                .collect();
            (loaded, wanted)
        };
        let mut stale = Vec::new();
        let mut seen = HashSet::new();
        loaded.for_each_live(&mut |slot, stored| {
            seen.insert(slot);
            let same = wanted.get(&slot).is_some_and(|w| {
                w.iter()
                    .zip(stored)
                    .all(|(a, b)| (a - b).abs() <= SNAPSHOT_TOLERANCE)
            });
            if !same {
                stale.push(slot);
            }
        });
        let mut patched = 0;
        for slot in stale {
            match wanted.get(&slot) {
                Some(vector) => loaded.upsert(slot, vector)?,
                None => {
                    loaded.delete(slot);
                }
            }
            patched += 1;
        }
        for (slot, vector) in &wanted {
            if !seen.contains(slot) {
                loaded.upsert(*slot, vector)?;
                patched += 1;
            }
        }
        if loaded.stats().delta_len >= MERGE_DELTA_AT {
            loaded.merge_delta(&NoProgress)?;
        }
        index.replace_with(loaded)?;
        let mut members = v.members.write();
        for slot in wanted.keys() {
            members.insert(*slot);
        }
        Ok(ShardInstall {
            customers: wanted.len(),
            patched,
        })
    }

    /// Saves `shard` of a loaded `version` under `dir` (what
    /// [`Engine::install_shard_from_snapshot`] reads).
    pub fn save_shard_snapshot(
        &self,
        version: &str,
        shard: u32,
        dir: &std::path::Path,
    ) -> Result<()> {
        let v = self.loaded(version)?;
        let index = v.shard(shard)?;
        let profiles = self.profiles.read();
        crate::snapshot::save_shard(index, &profiles.customer_slots, &v, shard, dir)
    }

    /// Stops holding `shard` (handed off to another node): its customers' profiles and its
    /// index in every loaded version are dropped. Nothing is erased in the store.
    pub fn release_shard(&self, shard: u32) -> Result<()> {
        if let Some(h) = self.held.write().get_mut(shard as usize) {
            *h = false;
        }
        let mut profiles = self.profiles.write();
        let ids: Vec<String> = profiles
            .customers()
            .filter_map(|(slot, _)| profiles.customer_slots.name(slot))
            .filter(|id| shard_of(id, self.config.shard_count) == shard)
            .map(str::to_owned)
            .collect();
        let versions = self.versions.read();
        for v in versions.loaded.values() {
            let Some(index) = v.shards.get(shard as usize) else {
                continue;
            };
            let mut members = v.members.write();
            index.for_each_live(&mut |slot, _| {
                members.remove(slot);
            });
            index.replace_with(doppel_index::VectorIndex::new(index.params().clone())?)?;
        }
        for id in ids {
            profiles.erase_customer(&id);
        }
        Ok(())
    }

    /// Applies the customer side of an event only (purchases), for a shard being taken
    /// over whose events already counted for item popularity here.
    pub fn record_customer_event(&self, event: &Event) {
        self.profiles.write().record_purchase(event);
    }

    /// Inserts or replaces a customer profile.
    pub fn upsert_customer(&self, customer: &Customer) {
        self.profiles.write().upsert_customer(customer);
    }

    /// Inserts or replaces a catalogue item.
    pub fn upsert_item(&self, item: &Item) {
        self.profiles.write().upsert_item(item);
    }

    /// Applies one behavioural event (purchases, popularity).
    pub fn record_event(&self, event: &Event) {
        self.profiles.write().record_event(event);
    }

    /// True if a profile exists for `id`.
    pub fn known_customer(&self, id: &str) -> bool {
        self.profiles.read().knows_customer(id)
    }

    /// True if the catalogue holds `id`.
    pub fn known_item(&self, id: &str) -> bool {
        self.profiles.read().knows_item(id)
    }

    /// Forgets a customer: profile, purchases, and its vector in every loaded version
    /// (tombstoned at once; a later merge drops it for good). True if it was known.
    pub fn erase_customer(&self, id: &str) -> bool {
        self.erased.write().insert(id.to_owned());
        let mut profiles = self.profiles.write();
        let Some(slot) = profiles.erase_customer(id) else {
            return false;
        };
        let versions = self.versions.read();
        for version in versions.loaded.values() {
            version.remove_customer(id, slot);
        }
        true
    }

    /// Builds the indexes of a version (it is not active until [`Engine::activate`]).
    /// Replaces an already loaded version of the same name.
    pub fn load_version(
        &self,
        request: LoadVersion,
        progress: &dyn Progress,
    ) -> Result<VersionSummary> {
        let LoadVersion {
            info,
            customer_vectors,
            item_vectors,
        } = request;
        let dim = info.dim as usize;
        if dim == 0 || dim > doppel_types::limits::MAX_DIM {
            return Err(Error::invalid(
                "dim",
                format!("must be in 1..={}", doppel_types::limits::MAX_DIM),
            ));
        }
        check_rows("customer_vectors", &customer_vectors, dim)?;
        check_rows("item_vectors", &item_vectors, dim)?;
        let shard_count = self.config.shard_count as usize;
        let mut customers: Vec<Rows> = (0..shard_count)
            .map(|_| Rows {
                slots: Vec::new(),
                vectors: Vec::new(),
            })
            .collect();
        let mut items = Rows {
            slots: Vec::new(),
            vectors: Vec::new(),
        };
        let mut erased_skipped = 0;
        {
            let erased = self.erased.read();
            let mut profiles = self.profiles.write();
            let mut seen = HashSet::new();
            for (id, v) in &customer_vectors {
                if !self.owns_customer(id) {
                    continue;
                }
                if erased.contains(id) {
                    erased_skipped += 1;
                    continue;
                }
                let slot = profiles.customer_slots.intern(id);
                if !seen.insert(slot) {
                    return Err(Error::invalid(
                        "customer_vectors",
                        format!("`{id}` appears twice"),
                    ));
                }
                let rows = &mut customers[shard_of(id, self.config.shard_count) as usize];
                rows.slots.push(slot);
                rows.vectors.extend_from_slice(v);
            }
            let mut seen = HashSet::new();
            for (id, v) in &item_vectors {
                let slot = profiles.item_slots.intern(id);
                if !seen.insert(slot) {
                    return Err(Error::invalid(
                        "item_vectors",
                        format!("`{id}` appears twice"),
                    ));
                }
                items.slots.push(slot);
                items.vectors.extend_from_slice(v);
            }
        }
        drop((customer_vectors, item_vectors));
        let name = info.version.clone();
        let built = LoadedVersion::build(info, &self.config, customers, items, progress)?;
        // Customers erased while the build ran must not come back.
        {
            let erased = self.erased.read();
            let profiles = self.profiles.read();
            for id in erased.iter() {
                if let Some(slot) = profiles.customer_slots.get(id) {
                    built.remove_customer(id, slot);
                }
            }
        }
        let summary = VersionSummary {
            version: name.clone(),
            customers: built.customer_count(),
            items: built.items.len(),
            erased_skipped,
            build_seconds: built.build_seconds,
        };
        let mut versions = self.versions.write();
        versions.loaded.insert(name, Arc::new(built));
        Ok(summary)
    }

    /// Saves a loaded version's indexes under `dir` (see the `snapshot` module).
    pub fn save_snapshot(&self, version: &str, dir: &std::path::Path) -> Result<()> {
        let v = self.loaded(version)?;
        let profiles = self.profiles.read();
        crate::snapshot::save(
            &v,
            &profiles.customer_slots,
            &profiles.item_slots,
            dir,
            &self.held_description(),
        )
    }

    /// Loads `info`'s indexes from a snapshot under `dir` instead of building them;
    /// customers in `erased` (the store's ledger) are left out. Refused (nothing changes)
    /// when the snapshot is damaged or does not match the version or the shard count.
    pub fn load_snapshot(
        &self,
        info: VersionInfo,
        dir: &std::path::Path,
        erased: &[String],
    ) -> Result<VersionSummary> {
        let mut erased_set: HashSet<String> = erased.iter().cloned().collect();
        erased_set.extend(self.erased.read().iter().cloned());
        let name = info.version.clone();
        let held = self.held_description();
        let loaded = {
            let mut profiles = self.profiles.write();
            let profiles = &mut *profiles;
            crate::snapshot::load(
                dir,
                info,
                &self.config,
                &mut profiles.customer_slots,
                &mut profiles.item_slots,
                &erased_set,
                &held,
            )?
        };
        let summary = VersionSummary {
            version: name.clone(),
            customers: loaded.customer_count(),
            items: loaded.items.len(),
            erased_skipped: 0,
            build_seconds: loaded.build_seconds,
        };
        self.versions.write().loaded.insert(name, Arc::new(loaded));
        Ok(summary)
    }

    /// Makes a loaded version the one that answers queries. The previously active version
    /// stays loaded (for a rollback); older ones are dropped from memory.
    pub fn activate(&self, version: &str) -> Result<()> {
        let mut versions = self.versions.write();
        let next = versions
            .loaded
            .get(version)
            .cloned()
            .ok_or_else(|| Error::not_found("model_version", version))?;
        let previous = versions
            .active
            .replace(next)
            .map(|v| v.info.version.clone());
        if previous.as_deref() != Some(version) {
            versions.previous = previous;
        }
        let keep: Vec<String> = [Some(version.to_owned()), versions.previous.clone()]
            .into_iter()
            .flatten()
            .collect();
        versions.loaded.retain(|name, _| keep.contains(name));
        Ok(())
    }

    /// Drops a loaded version that is neither active nor the rollback target (it was
    /// deleted); true if it was loaded.
    pub fn unload_version(&self, version: &str) -> Result<bool> {
        let mut versions = self.versions.write();
        let active = versions.active.as_ref().map(|v| v.info.version.as_str());
        if active == Some(version) || versions.previous.as_deref() == Some(version) {
            return Err(Error::FailedPrecondition(format!(
                "model_version: `{version}` is active or the rollback target"
            )));
        }
        Ok(versions.loaded.remove(version).is_some())
    }

    /// The version a rollback would re-activate (loaded, and not the active one).
    pub fn previous_version(&self) -> Option<String> {
        let versions = self.versions.read();
        versions
            .previous
            .clone()
            .filter(|p| versions.loaded.contains_key(p))
    }

    /// The active version's name.
    pub fn active_version(&self) -> Option<String> {
        self.versions
            .read()
            .active
            .as_ref()
            .map(|v| v.info.version.clone())
    }

    /// Names of the loaded versions, sorted.
    pub fn loaded_versions(&self) -> Vec<String> {
        let mut names: Vec<String> = self.versions.read().loaded.keys().cloned().collect();
        names.sort();
        names
    }

    fn active(&self) -> Result<Arc<LoadedVersion>> {
        self.versions
            .read()
            .active
            .clone()
            .ok_or_else(Error::no_active_version)
    }

    fn loaded(&self, version: &str) -> Result<Arc<LoadedVersion>> {
        self.versions
            .read()
            .loaded
            .get(version)
            .cloned()
            .ok_or_else(|| Error::not_found("model_version", version))
    }

    /// Size and parameters of `version` (the active one when `None`).
    pub fn describe(&self, version: Option<&str>) -> Result<IndexDescription> {
        let v = match version {
            Some(name) => self.loaded(name)?,
            None => self.active()?,
        };
        let stats: Vec<_> = v
            .shards
            .iter()
            .chain(std::iter::once(&v.items))
            .map(|i| i.stats())
            .collect();
        Ok(IndexDescription {
            version: v.info.version.clone(),
            dim: v.dim,
            customer_count: v.customer_count(),
            item_count: v.items.len(),
            shard_count: v.shard_count,
            memory_bytes: v.memory_bytes(),
            m: v.config.m,
            ef_construction: v.config.ef_construction,
            ef_search: self.config.ef_search,
            deleted: stats.iter().map(|s| s.deleted).sum(),
            delta: stats.iter().map(|s| s.delta_len).sum(),
            from_snapshot: v.from_snapshot,
        })
    }

    /// Sets (or replaces) one customer's vector in a loaded version, searchable at once —
    /// for fold-in of new behaviour and for brand-new customers.
    pub fn upsert_customer_vector(
        &self,
        version: &str,
        customer_id: &str,
        vector: &[f32],
    ) -> Result<()> {
        let v = self.loaded(version)?;
        validate_vector(vector, v.dim).map_err(|e| row_error("vector", customer_id, e))?;
        if self.erased.read().contains(customer_id) {
            return Err(Error::FailedPrecondition(format!(
                "customer_id: `{customer_id}` was erased; its vector cannot be set"
            )));
        }
        let slot = self.profiles.write().customer_slots.intern(customer_id);
        let shard = v.shard_for(customer_id);
        shard.upsert(slot, vector)?;
        v.members.write().insert(slot);
        if shard.stats().delta_len >= MERGE_DELTA_AT {
            shard.merge_delta(&NoProgress)?;
        }
        Ok(())
    }

    /// A lookalike audience from the active version.
    pub fn lookalike(&self, query: &LookalikeQuery) -> Result<Audience> {
        let version = self.active()?;
        let profiles = self.profiles.read();
        lookalike(&version, &profiles, self.config.ef_search, query)
    }

    /// The seeds of a lookalike held on `shards` of a loaded `version` (for a router).
    pub fn lookup_seeds(
        &self,
        version: &str,
        shards: &[u32],
        ids: &[String],
        negatives: &[String],
        segments: &[(String, String)],
    ) -> Result<crate::SeedLookup> {
        let version = self.loaded(version)?;
        let profiles = self.profiles.read();
        crate::shard_scoring::lookup_seeds(&version, &profiles, shards, ids, negatives, segments)
    }

    /// This engine's part of an audience over `shards` of a loaded `version`, scored with
    /// a router's scorer.
    pub fn score_audience(
        &self,
        version: &str,
        request: &crate::ShardScoring,
    ) -> Result<crate::ShardAudience> {
        let version = self.loaded(version)?;
        let profiles = self.profiles.read();
        crate::shard_scoring::score_on_shards(&version, &profiles, self.config.ef_search, request)
    }

    /// Item popularity from an event of a customer held elsewhere (a shard node follows
    /// every node's events for the popular-offers fallback).
    pub fn record_foreign_event(&self, event: &Event) {
        self.profiles.write().record_popularity(event);
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Next-best offers from the active version.
    pub fn recommend(&self, query: &RecommendQuery) -> Result<Recommendation> {
        if query.k == 0 || query.k > doppel_types::limits::MAX_K {
            return Err(Error::invalid(
                "k",
                format!("must be in 1..={}", doppel_types::limits::MAX_K),
            ));
        }
        let version = self.active()?;
        let profiles = self.profiles.read();
        recommend(&version, &profiles, self.config.ef_search, query)
    }

    /// In-stock items closest to `item_id` in the active version.
    pub fn similar_items(&self, item_id: &str, k: usize) -> Result<SimilarItemsResult> {
        if k == 0 || k > doppel_types::limits::MAX_K {
            return Err(Error::invalid(
                "k",
                format!("must be in 1..={}", doppel_types::limits::MAX_K),
            ));
        }
        let version = self.active()?;
        let profiles = self.profiles.read();
        similar_items(&version, &profiles, self.config.ef_search, item_id, k)
    }

    /// Sizes of the segments of the last training run (of one kind, when given).
    pub fn segment_sizes(&self, kind: Option<&str>) -> Result<Vec<crate::SegmentSize>> {
        crate::segment_view::sizes(&self.profiles.read(), kind)
    }

    /// Up to `limit` members of segment `(kind, name)` with ids after `after`.
    pub fn segment_members(
        &self,
        kind: &str,
        name: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<crate::SegmentPage> {
        crate::segment_view::members(&self.profiles.read(), kind, name, after, limit)
    }
}
