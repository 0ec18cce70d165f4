//! The two steps of loading a version's snapshot (the format is the `snapshot` module's):
//! [`read`] reads and checks the files, needing nothing of the engine and holding no lock;
//! [`ReadSnapshot::intern`] interns the ids into this process's slots and relabels the
//! indexes, under the profiles' write lock.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use doppel_index::{Bitset, IndexFile, PointId, VectorIndex};
use doppel_types::VersionInfo;
use parking_lot::RwLock;
use rayon::prelude::*;

use crate::config::EngineConfig;
use crate::customer_lengths::CustomerLengths;
use crate::error::{Error, Result};
use crate::id_slots::IdSlots;
use crate::loaded_version::{LoadedVersion, offer_prior_of, recency_of};
use crate::slot_map::SlotMap;
use crate::snapshot::{check_manifest, manifest_fields, read_index, relabel, shard_file};
use crate::snapshot_ids::{IdTable, Lookup, intern_rows, intern_table, look_up, read_ids};

/// A version's snapshot read from disk and checked, its ids not yet this process's
/// (`Engine::read_snapshot` makes one, `Engine::install_snapshot` loads it).
pub struct ReadSnapshot {
    dir: PathBuf,
    info: VersionInfo,
    config: EngineConfig,
    /// Seconds the read took (a load's time is the read's and the interning's, not the
    /// wait between them).
    read_seconds: f64,
    /// The shards the node held when it was read (`held` in the manifest).
    held: String,
    shards: Vec<IndexFile>,
    items: IndexFile,
    /// The shards' id tables, then the items'.
    ids: Vec<IdTable>,
}

/// A pool of this load's own, a thread per core, at normal priority (rayon's global pool is
/// the heavy pool, which a serving node runs at idle priority).
fn load_pool() -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(std::thread::available_parallelism().map_or(1, |n| n.get()))
        .thread_name(|i| format!("doppel-snapshot-{i}"))
        .build()
        .map_err(|e| Error::Index(doppel_index::Error::ThreadPool(e.to_string())))
}

/// Reads and checks `info`'s snapshot from `dir` (the manifest, the 17 index files and
/// their id tables, in parallel): most of a load, and it needs nothing of the engine, so no
/// lock is held and a node starting up reads it while it reads the profiles.
/// [`ReadSnapshot::intern`] does the rest.
pub(crate) fn read(
    dir: &Path,
    info: VersionInfo,
    config: &EngineConfig,
    held: &str,
) -> Result<ReadSnapshot> {
    let started = Instant::now();
    check_manifest(
        dir,
        &manifest_fields(&info, config, ("held", held.to_owned())),
    )?;
    let shard_count = config.shard_count as usize;
    let (mut files, ids): (Vec<IndexFile>, Vec<IdTable>) = load_pool()?.install(|| {
        (0..=shard_count)
            .into_par_iter()
            .map(|n| {
                let (seg, ids) = files_of(dir, n, shard_count);
                Ok((read_index(&seg, info.dim)?, read_ids(&ids)?))
            })
            .collect::<Result<Vec<_>>>()
            .map(|pairs| pairs.into_iter().unzip())
    })?;
    let items = files.pop().expect("the items file is read last");
    Ok(ReadSnapshot {
        dir: dir.to_owned(),
        info,
        config: config.clone(),
        read_seconds: started.elapsed().as_secs_f64(),
        held: held.to_owned(),
        shards: files,
        items,
        ids,
    })
}

/// The index file and the id table of shard `n` (of `shard_count`; `n == shard_count` is
/// the items).
fn files_of(dir: &Path, n: usize, shard_count: usize) -> (PathBuf, PathBuf) {
    if n == shard_count {
        (dir.join("items.seg"), dir.join("items.ids"))
    } else {
        (shard_file(dir, n, "seg"), shard_file(dir, n, "ids"))
    }
}

impl ReadSnapshot {
    /// The version read.
    pub fn info(&self) -> &VersionInfo {
        &self.info
    }

    /// The shards the node held when this was read.
    pub(crate) fn held(&self) -> &str {
        &self.held
    }

    /// Interns the snapshot's ids into this process's slots (customers in `erased` are
    /// left out) and relabels the indexes read: the part of a load that needs the
    /// profiles' write lock.
    ///
    /// The id tables are looked up in parallel; the ids new to this process are interned
    /// one after another (the slots are one table); then the indexes are relabelled in
    /// parallel.
    pub(crate) fn intern(
        self,
        customers: &mut IdSlots,
        item_slots: &mut IdSlots,
        erased: &HashSet<String>,
    ) -> Result<LoadedVersion> {
        let Self {
            dir,
            info,
            config,
            read_seconds,
            held: _,
            shards: files,
            items: item_file,
            mut ids,
        } = self;
        let started = Instant::now();
        let dir = dir.as_path();
        let shard_count = config.shard_count as usize;
        let item_ids = ids.pop().expect("the items' id table is read last");
        let rows: usize = files.iter().map(IndexFile::points).sum();
        let (shards, lengths_by_shard): (Vec<VectorIndex>, Vec<Vec<(PointId, f32)>>) = load_pool()?
            .install(|| {
                let slots = &*customers;
                let found: Vec<Vec<Lookup>> = ids
                    .par_iter()
                    .map(|table| look_up(table, slots, &|id| erased.contains(id)))
                    .collect();
                let mut map = SlotMap::with_rows(rows);
                let mut lengths = Vec::with_capacity(shard_count);
                for (n, (table, found)) in ids.iter().zip(&found).enumerate() {
                    let path = shard_file(dir, n, "ids");
                    lengths.push(intern_rows(table, found, &path, customers, true, &mut map)?);
                }
                drop(ids);
                let shards = files
                    .into_par_iter()
                    .map(|file| relabel(file, &map))
                    .collect::<Result<Vec<_>>>()?;
                Ok::<_, Error>((shards, lengths))
            })?;
        let lengths = CustomerLengths::new(shard_count);
        for (slot, length) in lengths_by_shard.into_iter().flatten() {
            lengths.set(slot, length);
        }
        let path = dir.join("items.ids");
        let map = intern_table(&item_ids, &path, item_slots, &|_| false)?;
        let items = relabel(item_file, &map)?;
        let mut members = Bitset::new(0);
        for shard in &shards {
            shard.for_each_live(&mut |slot, _| {
                members.insert(slot);
            });
        }
        let mut item_vectors = Vec::new();
        items.for_each_live(&mut |_, v| item_vectors.extend_from_slice(v));
        let offer_prior =
            offer_prior_of(&info, item_vectors.chunks_exact((info.dim as usize).max(1)));
        let recency = recency_of(&info);
        let version = LoadedVersion {
            dim: info.dim as usize,
            info,
            shard_count: config.shard_count,
            shards,
            items,
            members: RwLock::new(members),
            config,
            build_seconds: read_seconds + started.elapsed().as_secs_f64(),
            from_snapshot: true,
            context: RwLock::default(),
            offer_prior,
            recency,
            lengths,
        };
        version.apply_scan_vectors();
        Ok(version)
    }
}
