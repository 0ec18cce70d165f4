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

use doppel_index::{IndexFile, PointId, VectorIndex};
use doppel_types::VersionInfo;

use crate::config::EngineConfig;
use crate::customer_lengths::LengthTable;
use crate::error::{Error, Result};
use crate::id_slots::IdSlots;
use crate::loaded_version::LoadedVersion;
use crate::slot_map::SlotMap;
use crate::snapshot_dir::{clear_temp, replace_with, temp_sibling};

const MANIFEST: &str = "manifest.txt";
/// Format 2 adds each customer's vector length to the customer id tables (format 1
/// snapshots are refused, so the version is rebuilt from the store once).
const FORMAT: &str = "doppel-snapshot 2";

pub(super) fn refused(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::FailedPrecondition(format!("snapshot {}: {reason}", path.display()))
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| refused(path, e)
}

pub(super) fn shard_file(dir: &Path, shard: usize, ext: &str) -> PathBuf {
    dir.join(format!("shard-{shard:04}.{ext}"))
}

/// `slot\tid` lines (`slot\tid\tlength` with `lengths`: customer tables), then
/// `crc32\t<hex>` of everything before it.
fn write_ids(
    path: &Path,
    index: &VectorIndex,
    slots: &IdSlots,
    lengths: Option<&LengthTable>,
) -> Result<()> {
    let mut text = String::new();
    index.for_each_live(&mut |slot, _| {
        if let Some(name) = slots.name(slot) {
            match lengths {
                Some(l) => text.push_str(&format!("{slot}\t{name}\t{}\n", l.get(slot))),
                None => text.push_str(&format!("{slot}\t{name}\n")),
            }
        }
    });
    let crc = crc32fast::hash(text.as_bytes());
    text.push_str(&format!("crc32\t{crc:08x}\n"));
    fs::write(path, text).map_err(io(path))
}

/// The rows of an id table: slot, id and, in customer tables, the vector length.
pub(super) type IdRow = (PointId, String, Option<f32>);

pub(super) fn read_ids(path: &Path) -> Result<Vec<IdRow>> {
    let text = fs::read_to_string(path).map_err(io(path))?;
    let body_end = text
        .rfind("crc32\t")
        .ok_or_else(|| refused(path, "no checksum line"))?;
    let (body, tail) = text.split_at(body_end);
    let expected = tail.trim_end().trim_start_matches("crc32\t");
    if format!("{:08x}", crc32fast::hash(body.as_bytes())) != expected {
        return Err(refused(path, "id table checksum mismatch"));
    }
    body.lines()
        .map(|line| {
            let mut fields = line.split('\t');
            let (Some(slot), Some(id)) = (fields.next(), fields.next()) else {
                return Err(refused(path, "malformed id line"));
            };
            let slot = slot.parse().map_err(|_| refused(path, "malformed slot"))?;
            let length = match fields.next() {
                Some(l) => Some(
                    l.parse::<f32>()
                        .ok()
                        .filter(|l| l.is_finite() && *l >= 0.0)
                        .ok_or_else(|| refused(path, "malformed vector length"))?,
                ),
                None => None,
            };
            Ok((slot, id.to_owned(), length))
        })
        .collect()
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

/// What an id row of a snapshot is in this process, found without changing the slots.
#[derive(Clone, Copy)]
pub(super) enum Lookup {
    /// Left out (erased).
    Skip,
    /// Already has this slot (the start-up replay interned most ids before any load).
    Known(PointId),
    /// Needs a new slot.
    New,
}

/// Looks `rows` up in `slots` (read-only, so shards can be looked up in parallel).
pub(super) fn look_up(
    rows: &[IdRow],
    slots: &IdSlots,
    skip: &(dyn Fn(&str) -> bool + Sync),
) -> Vec<Lookup> {
    rows.iter()
        .map(|(old, id, _)| {
            if skip(id) {
                Lookup::Skip
            } else if slots.name(*old) == Some(id.as_str()) {
                // Kept its slot (a restart that read the ids in the order the saving process
                // gave them slots, as after an import): no hashing. An id has one slot at
                // most, so this is the slot `get` would find.
                Lookup::Known(*old)
            } else {
                slots.get(id).map_or(Lookup::New, Lookup::Known)
            }
        })
        .collect()
}

/// Interns the id rows `rows` (read from `ids`, looked up as `found`) into `slots`, adding
/// old → new to `table`; returns the vector lengths by new slot, refused, with
/// `need_lengths`, unless every row has its vector length. The only step of a load that
/// changes the slots, so the file reads and lookups around it can run in parallel.
pub(super) fn intern_rows(
    rows: Vec<IdRow>,
    found: Vec<Lookup>,
    ids: &Path,
    slots: &mut IdSlots,
    need_lengths: bool,
    table: &mut SlotMap,
) -> Result<Vec<(PointId, f32)>> {
    let mut lengths = Vec::with_capacity(if need_lengths { rows.len() } else { 0 });
    for ((old, id, length), found) in rows.into_iter().zip(found) {
        let slot = match found {
            Lookup::Skip => continue,
            Lookup::Known(slot) => slot,
            Lookup::New => slots.intern(&id),
        };
        if !table.insert(old, slot) {
            return Err(refused(ids, format!("slot {old} is listed twice")));
        }
        match length {
            Some(l) => lengths.push((slot, l)),
            None if need_lengths => return Err(refused(ids, "no vector lengths")),
            None => {}
        }
    }
    Ok(lengths)
}

/// Reads and checks the id table `ids` (items, or a shard node's shard: no vector lengths
/// needed) and interns its ids into `slots` (those `skip` names are left out).
pub(super) fn intern_ids(
    ids: &Path,
    slots: &mut IdSlots,
    skip: &(dyn Fn(&str) -> bool + Sync),
) -> Result<SlotMap> {
    let rows = read_ids(ids)?;
    let found = look_up(&rows, slots, skip);
    let mut table = SlotMap::with_rows(rows.len());
    intern_rows(rows, found, ids, slots, false, &mut table)?;
    Ok(table)
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
        &[
            ("version", info.version.clone()),
            ("dim", info.dim.to_string()),
            ("shards", config.shard_count.to_string()),
            ("shard", shard.to_string()),
        ],
    )?;
    let file = read_index(&dir.join("shard.seg"), info.dim)?;
    let table = intern_ids(&dir.join("shard.ids"), slots, &|_| false)?;
    relabel(file, &table)
}
