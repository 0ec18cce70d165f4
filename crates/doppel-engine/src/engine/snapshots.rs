//! Versions and shards saved to and loaded from disk (the format is the crate's `snapshot`
//! module). A snapshot is only ever a faster start: the store stays the truth, so a
//! damaged or mismatched snapshot is refused with nothing changed, and the caller
//! rebuilds from the store.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use doppel_index::{NoProgress, PointId};
use doppel_types::VersionInfo;
use doppel_types::shard::shard_of;

use super::{Engine, MERGE_DELTA_AT, ShardInstall, VersionSummary, check_rows};
use crate::customer_lengths::euclidean_length;
use crate::error::Result;
use crate::seed_prototypes::normalize;
use crate::snapshot;
use crate::snapshot_read::{self, ReadSnapshot};

/// A snapshot's vector still matches the store's when no component differs by more.
const SNAPSHOT_TOLERANCE: f32 = 1e-5;

impl Engine {
    /// Saves a loaded version's indexes under `dir` (see the `snapshot` module).
    pub fn save_snapshot(&self, version: &str, dir: &Path) -> Result<()> {
        let v = self.loaded(version)?;
        let profiles = self.profiles.read();
        snapshot::save(
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
        dir: &Path,
        erased: &[String],
    ) -> Result<VersionSummary> {
        let read = self.read_snapshot(info, dir)?;
        self.install_snapshot(read, erased)
    }

    /// The first half of [`Self::load_snapshot`]: reads and checks the snapshot's files,
    /// without any lock and without changing anything, so it can run while the node is
    /// still reading its profiles.
    pub fn read_snapshot(&self, info: VersionInfo, dir: &Path) -> Result<ReadSnapshot> {
        snapshot_read::read(dir, info, &self.config, &self.held_description())
    }

    /// The second half of [`Self::load_snapshot`]: interns the ids of a snapshot
    /// [`Self::read_snapshot`] read (customers in `erased` and those erased here left
    /// out) under the profiles' write lock, and adds the version.
    pub fn install_snapshot(
        &self,
        read: ReadSnapshot,
        erased: &[String],
    ) -> Result<VersionSummary> {
        if read.held() != self.held_description() {
            return Err(crate::Error::FailedPrecondition(format!(
                "snapshot of {}: read while this node held shards {}, which changed since",
                read.info().version,
                read.held()
            )));
        }
        let mut erased_set: HashSet<String> = erased.iter().cloned().collect();
        let name = read.info().version.clone();
        // An erasure notes its id, then forgets the customer and removes it from every
        // loaded version under the profiles' write lock. Reading the ids under that lock
        // and listing the version before letting go of it, every erasure either ran before
        // (its id is left out here) or finds the version loaded.
        // (`erased` first, as every path that holds both takes them.)
        let erased_here = self.erased.read();
        let mut guard = self.profiles.write();
        erased_set.extend(erased_here.iter().cloned());
        drop(erased_here);
        let profiles = &mut *guard;
        let loaded = read.intern(
            &mut profiles.customer_slots,
            &mut profiles.item_slots,
            &erased_set,
        )?;
        let summary = VersionSummary {
            version: name.clone(),
            customers: loaded.customer_count(),
            items: loaded.items.len(),
            erased_skipped: 0,
            build_seconds: loaded.build_seconds,
        };
        let loaded = Arc::new(loaded);
        let mut versions = self.versions.write();
        *loaded.context.write() = self.context_for(&versions, &name);
        versions.loaded.insert(name, Arc::clone(&loaded));
        drop((versions, guard));
        loaded.warm_moments(None);
        Ok(summary)
    }

    /// Saves `shard` of a loaded `version` under `dir` (what
    /// [`Engine::install_shard_from_snapshot`] reads).
    pub fn save_shard_snapshot(&self, version: &str, shard: u32, dir: &Path) -> Result<()> {
        let v = self.loaded(version)?;
        let index = v.shard(shard)?;
        let profiles = self.profiles.read();
        snapshot::save_shard(index, &profiles.customer_slots, &v, shard, dir)
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
        dir: &Path,
    ) -> Result<ShardInstall> {
        let v = self.loaded(version)?;
        check_rows("customer_vectors", &rows, v.dim)?;
        let index = v.shard(shard)?;
        let mut lengths = Vec::new();
        let erasures_seen;
        let (loaded, wanted) = {
            let erased = self.erased.read();
            let mut profiles = self.profiles.write();
            erasures_seen = self.erased_slots.lock().len();
            let loaded = snapshot::load_shard(
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
                    let slot = profiles.customer_slots.intern(&id);
                    lengths.push((slot, euclidean_length(&vector)));
                    normalize(&mut vector);
                    (slot, vector)
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
        // Lengths change only now, past every fallible step but the swap, and the shard's
        // moments are dropped after the swap either way (a computation pinned before it is
        // then not kept).
        for (slot, length) in lengths {
            v.lengths.set(slot, length);
        }
        let replaced = index.replace_with(loaded);
        v.lengths.shard(shard as usize).replaced();
        replaced?;
        v.warm_moments(Some(shard as usize));
        {
            let mut members = v.members.write();
            for slot in wanted.keys() {
                members.insert(*slot);
            }
        }
        self.remove_erased_since(&v, shard, erasures_seen);
        Ok(ShardInstall {
            customers: wanted.len(),
            patched,
        })
    }
}
