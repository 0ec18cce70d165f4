//! Which loaded version answers queries, which one a rollback returns to, and when a
//! version leaves memory.
//!
//! ```text
//!  load_version / load_snapshot
//!        │
//!        ▼     activate(v)          another activated        a third activated
//!     loaded ─────────────▶ active ─────────────────▶ previous ─────────────────▶ dropped
//!        │                    ▲                          │                          ▲
//!        │                    └── activate(v): rollback ─┘                          │
//!        └──────────── unload_version, or another version activated ────────────────┘
//! ```
//!
//! Activating keeps only the new active version, the previous one and the pinned ones (the
//! arms of a running experiment) in memory; `unload_version` refuses all of those.

use super::{Engine, IndexDescription, MemoryBreakdown};
use crate::error::{Error, Result};

impl Engine {
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
        let mut keep: Vec<String> = [Some(version.to_owned()), versions.previous.clone()]
            .into_iter()
            .flatten()
            .collect();
        keep.extend(versions.pinned.iter().cloned());
        versions.loaded.retain(|name, _| keep.contains(name));
        Ok(())
    }

    /// Keeps `pinned` loaded through activations (the arms of a running experiment).
    /// Versions pinned before and no longer, neither active nor the rollback target, are
    /// dropped from memory now.
    pub fn pin_versions(&self, pinned: Vec<String>) {
        let mut versions = self.versions.write();
        let released: Vec<String> = versions
            .pinned
            .iter()
            .filter(|v| !pinned.contains(v))
            .cloned()
            .collect();
        let active = versions.active.as_ref().map(|v| v.info.version.clone());
        for version in released {
            if active.as_ref() != Some(&version) && versions.previous.as_ref() != Some(&version) {
                versions.loaded.remove(&version);
            }
        }
        versions.pinned = pinned;
    }

    /// The versions kept loaded for a running experiment.
    pub fn pinned_versions(&self) -> Vec<String> {
        self.versions.read().pinned.clone()
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
        if versions.pinned.iter().any(|p| p == version) {
            return Err(Error::FailedPrecondition(format!(
                "model_version: `{version}` serves an arm of a running experiment; stop it first"
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
        // Never two of these locks at once: an erasure holds the profiles' while it takes
        // the members'.
        let members = v.members.read().memory_bytes();
        let profiles = self.profiles.read().memory();
        let mut memory = MemoryBreakdown {
            items: v.items.stats().memory,
            members,
            profiles,
            ..MemoryBreakdown::default()
        };
        for shard in &stats[..v.shards.len()] {
            memory.customers.add(&shard.memory);
        }
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
            memory,
            int8_scan: v.int8_scan(),
        })
    }
}
