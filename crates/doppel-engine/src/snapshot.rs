//! Version snapshots on disk, so a restarting node loads its indexes instead of rebuilding
//! them: one checksummed index file per customer shard and one for items (the vector
//! index's own one-file format), each with a checksummed id table (slot → id), because
//! slots are interned per process and are renumbered on load. A manifest names the version
//! and its shape. Anything that does not match — checksum, shape, version — is refused;
//! the caller rebuilds from the store.
//!
//! Index files end in `.seg` (from the index's old name for a frozen graph); the extension
//! stays so that snapshots already on disk still load. These files have nothing to do with
//! customer segments.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use doppel_index::{IndexFile, VectorIndex};
use doppel_types::VersionInfo;

use crate::config::EngineConfig;
use crate::error::Result;
use crate::id_slots::IdSlots;
use crate::loaded_version::LoadedVersion;
use crate::slot_map::SlotMap;
use crate::snapshot_dir::{clear_temp, replace_with, temp_sibling};
use crate::snapshot_ids::{intern_table, read_ids, write_ids};
use crate::snapshot_refusal::{io, refused};

const MANIFEST: &str = "manifest.txt";
/// Format 2 adds each customer's vector length to the customer id tables (format 1
/// snapshots are refused, so the version is rebuilt from the store once).
const FORMAT: &str = "doppel-snapshot 2";

pub(super) fn shard_file(dir: &Path, shard: usize, ext: &str) -> PathBuf {
    dir.join(format!("shard-{shard:04}.{ext}"))
}

/// Writes `version` under `dir` (replacing an older snapshot of it atomically enough: a
/// temporary directory renamed into place).
pub(crate) fn save(
    version: &LoadedVersion,
    customers: &IdSlots,
    items: &IdSlots,
    dir: &Path,
    held: &str,
) -> Result<()> {
    let tmp = temp_sibling(dir)?;
    clear_temp(&tmp)?;
    fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let lengths = version.lengths.read();
    for (n, shard) in version.shards.iter().enumerate() {
        shard.save(&shard_file(&tmp, n, "seg"))?;
        write_ids(
            &shard_file(&tmp, n, "ids"),
            shard,
            customers,
            Some(&lengths),
        )?;
    }
    version.items.save(&tmp.join("items.seg"))?;
    write_ids(&tmp.join("items.ids"), &version.items, items, None)?;
    let manifest = format!(
        "{FORMAT}\nversion\t{}\ndim\t{}\nshards\t{}\nm\t{}\nef_construction\t{}\nheld\t{}\n",
        version.info.version,
        version.dim,
        version.shard_count,
        version.config.m,
        version.config.ef_construction,
        held
    );
    fs::write(tmp.join(MANIFEST), manifest).map_err(io(&tmp))?;
    replace_with(&tmp, dir)
}

/// The manifest fields a snapshot of `info` under `config` has, and `which` (the shards it
/// holds: `held` for a version's snapshot, `shard` for one shard's).
pub(super) fn manifest_fields(
    info: &VersionInfo,
    config: &EngineConfig,
    which: (&'static str, String),
) -> [(&'static str, String); 4] {
    [
        ("version", info.version.clone()),
        ("dim", info.dim.to_string()),
        ("shards", config.shard_count.to_string()),
        which,
    ]
}

/// Refuses `dir` unless its manifest has the known format and every `(key, value)`.
pub(super) fn check_manifest(dir: &Path, expect: &[(&str, String)]) -> Result<()> {
    let path = dir.join(MANIFEST);
    let text = fs::read_to_string(&path).map_err(io(&path))?;
    let mut lines = text.lines();
    if lines.next() != Some(FORMAT) {
        return Err(refused(&path, "unknown format"));
    }
    let fields: HashMap<&str, &str> = lines.filter_map(|l| l.split_once('\t')).collect();
    for (key, want) in expect {
        if fields.get(key).copied() != Some(want.as_str()) {
            return Err(refused(
                &path,
                format!("{key} does not match (want {want})"),
            ));
        }
    }
    Ok(())
}

/// Reads and checks the index file `path`; refused unless its dimension is `dim`.
pub(super) fn read_index(path: &Path, dim: u32) -> Result<IndexFile> {
    let file = IndexFile::read(path)?;
    if file.dim() != dim as usize {
        return Err(refused(path, "dimension does not match the version"));
    }
    Ok(file)
}

/// The index file `file` with the ids `table` maps it to.
pub(super) fn relabel(file: IndexFile, table: &SlotMap) -> Result<VectorIndex> {
    Ok(file.relabel(&|old| table.get(old))?)
}

/// A shard node's snapshot of one shard of a version: `shard.seg` (the index file),
/// `shard.ids` (slot → id, checksummed) and a manifest naming version, dimension, shard
/// count and shard. Written to a temporary directory renamed into place.
pub(crate) fn save_shard(
    index: &VectorIndex,
    slots: &IdSlots,
    version: &LoadedVersion,
    shard: u32,
    dir: &Path,
) -> Result<()> {
    let tmp = temp_sibling(dir)?;
    clear_temp(&tmp)?;
    fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    index.save(&tmp.join("shard.seg"))?;
    write_ids(
        &tmp.join("shard.ids"),
        index,
        slots,
        Some(&version.lengths.read()),
    )?;
    let manifest = format!(
        "{FORMAT}\nversion\t{}\ndim\t{}\nshards\t{}\nshard\t{shard}\n",
        version.info.version, version.dim, version.shard_count
    );
    fs::write(tmp.join(MANIFEST), manifest).map_err(io(&tmp))?;
    replace_with(&tmp, dir)
}

/// Loads one shard saved by [`save_shard`], interning its ids; refused when damaged or when
/// it is not `shard` of `info` with `config`'s shard count.
pub(crate) fn load_shard(
    dir: &Path,
    info: &VersionInfo,
    config: &EngineConfig,
    shard: u32,
    slots: &mut IdSlots,
) -> Result<VectorIndex> {
    check_manifest(
        dir,
        &manifest_fields(info, config, ("shard", shard.to_string())),
    )?;
    let file = read_index(&dir.join("shard.seg"), info.dim)?;
    let ids = dir.join("shard.ids");
    let table = intern_table(&read_ids(&ids)?, &ids, slots, &|_| false)?;
    relabel(file, &table)
}
