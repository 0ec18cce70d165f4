//! The id tables of a snapshot: `slot\tid` lines (`slot\tid\tlength` in customer tables),
//! then `crc32\t<hex>` of everything before it. Slots are interned per process, so a load
//! renames the saved slots into this process's through these tables.

use std::fs;
use std::path::Path;

use doppel_index::{PointId, VectorIndex};

use crate::customer_lengths::LengthTable;
use crate::error::Result;
use crate::id_slots::IdSlots;
use crate::slot_map::SlotMap;
use crate::snapshot_refusal::{io, refused};

/// Writes the id table of `index`'s live points (with their vector lengths when `lengths`
/// is given: customer tables).
pub(crate) fn write_ids(
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

/// An id table read and checked. The ids stay in the file's text, each row saying where
/// its id is: no string of its own per row (a 10M-customer version has 10M rows).
pub(crate) struct IdTable {
    text: String,
    rows: Vec<IdRow>,
}

/// One row: the saved slot, the id's byte range in the text, and, in customer tables, the
/// vector length.
struct IdRow {
    old: PointId,
    start: u32,
    end: u32,
    length: Option<f32>,
}

impl IdTable {
    /// Rows in the table.
    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    fn id(&self, row: &IdRow) -> &str {
        &self.text[row.start as usize..row.end as usize]
    }
}

/// Reads and checks the id table at `path`.
pub(crate) fn read_ids(path: &Path) -> Result<IdTable> {
    let text = fs::read_to_string(path).map_err(io(path))?;
    if u32::try_from(text.len()).is_err() {
        return Err(refused(path, "id table of 4 GiB or more"));
    }
    let body_end = text
        .rfind("crc32\t")
        .ok_or_else(|| refused(path, "no checksum line"))?;
    let (body, tail) = text.split_at(body_end);
    let expected = tail.trim_end().trim_start_matches("crc32\t");
    if format!("{:08x}", crc32fast::hash(body.as_bytes())) != expected {
        return Err(refused(path, "id table checksum mismatch"));
    }
    let mut rows = Vec::new();
    let mut at = 0usize;
    for line in body.split_inclusive('\n') {
        let start = at;
        at += line.len();
        let line = line.strip_suffix('\n').unwrap_or(line);
        let mut fields = line.split('\t');
        let (Some(slot), Some(id)) = (fields.next(), fields.next()) else {
            return Err(refused(path, "malformed id line"));
        };
        let old = slot.parse().map_err(|_| refused(path, "malformed slot"))?;
        let length = match fields.next() {
            Some(l) => Some(
                l.parse::<f32>()
                    .ok()
                    .filter(|l| l.is_finite() && *l >= 0.0)
                    .ok_or_else(|| refused(path, "malformed vector length"))?,
            ),
            None => None,
        };
        // The id follows the slot and its tab; the text is below 4 GiB (checked above).
        let id_start = start + slot.len() + 1;
        rows.push(IdRow {
            old,
            start: id_start as u32,
            end: (id_start + id.len()) as u32,
            length,
        });
    }
    Ok(IdTable { text, rows })
}

/// What an id row of a snapshot is in this process, found without changing the slots.
#[derive(Clone, Copy)]
pub(crate) enum Lookup {
    /// Left out (erased).
    Skip,
    /// Already has this slot (the start-up replay interned most ids before any load).
    Known(PointId),
    /// Needs a new slot.
    New,
}

/// Looks `table`'s rows up in `slots` (read-only, so tables can be looked up in parallel).
pub(crate) fn look_up(
    table: &IdTable,
    slots: &IdSlots,
    skip: &(dyn Fn(&str) -> bool + Sync),
) -> Vec<Lookup> {
    table
        .rows
        .iter()
        .map(|row| {
            let id = table.id(row);
            if skip(id) {
                Lookup::Skip
            } else if slots.name(row.old) == Some(id) {
                // Kept its slot (a restart that read the ids in the order the saving process
                // gave them slots, as after an import): no hashing. An id has one slot at
                // most, so this is the slot `get` would find.
                Lookup::Known(row.old)
            } else {
                slots.get(id).map_or(Lookup::New, Lookup::Known)
            }
        })
        .collect()
}

/// Interns the rows of `table` (read from `path`, looked up as `found`) into `slots`,
/// adding old → new to `map`; returns the vector lengths by new slot, refused, with
/// `need_lengths`, unless every row has its vector length. The only step of a load that
/// changes the slots, so the file reads and lookups around it can run in parallel.
pub(crate) fn intern_rows(
    table: &IdTable,
    found: &[Lookup],
    path: &Path,
    slots: &mut IdSlots,
    need_lengths: bool,
    map: &mut SlotMap,
) -> Result<Vec<(PointId, f32)>> {
    let mut lengths = Vec::with_capacity(if need_lengths { table.len() } else { 0 });
    for (row, found) in table.rows.iter().zip(found) {
        let slot = match *found {
            Lookup::Skip => continue,
            Lookup::Known(slot) => slot,
            Lookup::New => slots.intern(table.id(row)),
        };
        if !map.insert(row.old, slot) {
            return Err(refused(path, format!("slot {} is listed twice", row.old)));
        }
        match row.length {
            Some(l) => lengths.push((slot, l)),
            None if need_lengths => return Err(refused(path, "no vector lengths")),
            None => {}
        }
    }
    Ok(lengths)
}

/// Interns the id table `table` (read from `path`: items, or a shard node's shard, so no
/// vector lengths needed) into `slots`, leaving out the ids `skip` names; old → new.
pub(crate) fn intern_table(
    table: &IdTable,
    path: &Path,
    slots: &mut IdSlots,
    skip: &(dyn Fn(&str) -> bool + Sync),
) -> Result<SlotMap> {
    let found = look_up(table, slots, skip);
    let max_old = table.rows.iter().map(|row| row.old).max();
    let mut map = SlotMap::for_table(table.len(), max_old);
    intern_rows(table, &found, path, slots, false, &mut map)?;
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_file(dir: &Path, body: &str) -> std::path::PathBuf {
        let path = dir.join("t.ids");
        let crc = crc32fast::hash(body.as_bytes());
        fs::write(&path, format!("{body}crc32\t{crc:08x}\n")).expect("write");
        path
    }

    #[test]
    fn rows_keep_moved_new_and_erased_ids_apart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut slots = IdSlots::default();
        for id in ["a", "b", "c"] {
            slots.intern(id);
        }
        // a kept slot 0; c was saved at slot 7; d is new; b is erased.
        let path = table_file(dir.path(), "0\ta\t1.5\n7\tc\t2\n9\td\t0\n1\tb\t3\n");
        let table = read_ids(&path).expect("read");
        assert_eq!(table.len(), 4);
        let found = look_up(&table, &slots, &|id| id == "b");
        assert!(matches!(
            found[..],
            [
                Lookup::Known(0),
                Lookup::Known(2),
                Lookup::New,
                Lookup::Skip
            ]
        ));
        let mut map = SlotMap::with_rows(table.len());
        let lengths =
            intern_rows(&table, &found, &path, &mut slots, true, &mut map).expect("intern");
        assert_eq!(lengths, vec![(0, 1.5), (2, 2.0), (3, 0.0)]);
        assert_eq!(
            (map.get(0), map.get(7), map.get(9), map.get(1)),
            (Some(0), Some(2), Some(3), None)
        );
        assert_eq!(slots.name(3), Some("d"));
    }

    #[test]
    fn damaged_tables_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut slots = IdSlots::default();
        for (body, why) in [
            ("0\ta\n", "no vector lengths"),
            ("0\ta\t-1\n", "malformed vector length"),
            ("x\ta\t1\n", "malformed slot"),
            ("0\n", "malformed id line"),
            ("0\ta\t1\n0\tb\t1\n", "listed twice"),
        ] {
            let path = table_file(dir.path(), body);
            let refused = read_ids(&path).and_then(|table| {
                let found = look_up(&table, &slots, &|_| false);
                let mut map = SlotMap::with_rows(table.len());
                intern_rows(&table, &found, &path, &mut slots, true, &mut map)
            });
            let e = refused.expect_err(body).to_string();
            assert!(e.contains(why), "{body:?}: {e}");
        }
        let path = dir.path().join("bad.ids");
        fs::write(&path, "0\ta\t1\ncrc32\t00000000\n").expect("write");
        let e = read_ids(&path).err().expect("bad checksum").to_string();
        assert!(e.contains("checksum"), "{e}");
    }
}
