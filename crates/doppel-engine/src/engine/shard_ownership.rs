//! Which logical shards' customers this engine holds, and shards changing hands.
//!
//! A single node holds every shard. A shard node holds the ones it owns and changes them
//! during a hand-off:
//!
//! ```text
//!            hold_shard                install_shard[_from_snapshot]
//! not held ────────────▶ held, empty ─────────────────────────────▶ held, indexed
//!    ▲                                                                    │
//!    └─────────────────────────── release_shard ──────────────────────────┘
//! ```
//!
//! Holding comes first so that the shard's profiles and events are kept while its index
//! is being filled.

use doppel_index::{NoProgress, PointId, VectorIndex};
use doppel_types::shard::shard_of;

use super::{Engine, check_rows};
use crate::error::Result;
use crate::loaded_version::{LoadedVersion, Rows};

impl Engine {
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

    /// `all`, or the held shards comma-separated (what a version snapshot must match).
    pub(super) fn held_description(&self) -> String {
        let held = self.held_shards();
        if held.len() == self.config.shard_count as usize {
            return "all".to_owned();
        }
        held.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
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
        let mut built = Rows::default();
        let erasures_seen;
        {
            let erased = self.erased.read();
            let mut profiles = self.profiles.write();
            erasures_seen = self.erased_slots.lock().len();
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
            VectorIndex::new(params)?
        } else {
            VectorIndex::build(params, &built.slots, &built.vectors, &NoProgress)?
        };
        // The shard's moments are dropped after the swap (a computation pinned before it
        // is then not kept).
        v.lengths.set_rows(&built.slots, &built.vectors, v.dim);
        let replaced = index.replace_with(fresh);
        v.lengths.shard(shard as usize).replaced();
        replaced?;
        v.warm_moments(Some(shard as usize));
        {
            let mut members = v.members.write();
            for slot in &built.slots {
                members.insert(*slot);
            }
        }
        self.remove_erased_since(&v, shard, erasures_seen);
        Ok(built.slots.len())
    }

    /// Removes from `shard` of `v` again the customers erased since the `seen`-th erasure
    /// (an install noted that count as it interned the shard's rows): an erasure that ran
    /// while the new index was built removed the customer from the index it replaced.
    /// One that runs after this finds the new index in place.
    pub(super) fn remove_erased_since(&self, v: &LoadedVersion, shard: u32, seen: usize) {
        for (id, slot) in self.erased_since(seen) {
            if shard_of(&id, v.shard_count) == shard {
                v.remove_customer(&id, slot);
            }
        }
    }

    /// The erasures noted since the `seen`-th, copied out so that no lock is held while
    /// they are removed (an erasure notes its own under the profiles' write lock).
    pub(super) fn erased_since(&self, seen: usize) -> Vec<(String, PointId)> {
        self.erased_slots
            .lock()
            .get(seen..)
            .map(<[_]>::to_vec)
            .unwrap_or_default()
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
            let replaced = index.replace_with(VectorIndex::new(index.params().clone())?);
            drop(members);
            v.lengths.shard(shard as usize).replaced();
            replaced?;
        }
        for id in ids {
            profiles.erase_customer(&id);
        }
        Ok(())
    }
}
