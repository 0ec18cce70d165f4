//! String ids → dense slots (`u32`), shared by every model version so one bitset can say
//! "eligible" for all shards at once. Erasing an id frees its name (the slot stays, empty);
//! the same id coming back later gets a new slot.

use std::borrow::Cow;
use std::hash::BuildHasher;

use doppel_index::PointId;
use foldhash::fast::RandomState;
use hashbrown::HashTable;

/// Interned ids of one entity kind.
///
/// Each id's text is held once, in `names`; the hash table holds only slots and finds a
/// slot's text through `names` (a table keyed by `String` kept every id twice: 40–55 of
/// the ~107 bytes per customer the id tables took at 1M). The hasher is foldhash, randomly
/// seeded per table.
#[derive(Debug, Default)]
pub(crate) struct IdSlots {
    by_id: HashTable<PointId>,
    names: Vec<Option<String>>,
    hasher: RandomState,
}

impl IdSlots {
    fn hash(&self, id: &str) -> u64 {
        self.hasher.hash_one(id)
    }

    /// The slot of `id`, if it has one.
    pub(crate) fn get(&self, id: &str) -> Option<PointId> {
        let names = &self.names;
        self.by_id
            .find(self.hash(id), |&slot| {
                names[slot as usize].as_deref() == Some(id)
            })
            .copied()
    }

    /// The slot of `id`, created if needed.
    pub(crate) fn intern(&mut self, id: &str) -> PointId {
        self.intern_cow(Cow::Borrowed(id))
    }

    /// [`Self::intern`] for an id the caller owns: a new one is kept as it is, not copied
    /// (a start-up interns millions).
    pub(crate) fn intern_owned(&mut self, id: String) -> PointId {
        self.intern_cow(Cow::Owned(id))
    }

    fn intern_cow(&mut self, id: Cow<'_, str>) -> PointId {
        let hash = self.hash(&id);
        let Self {
            by_id,
            names,
            hasher,
        } = self;
        let entry = by_id.entry(
            hash,
            |&slot| names[slot as usize].as_deref() == Some(&*id),
            |&slot| hasher.hash_one(names[slot as usize].as_deref().unwrap_or_default()),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(found) => *found.get(),
            hashbrown::hash_table::Entry::Vacant(room) => {
                let slot = PointId::try_from(names.len()).expect("fewer than 4 billion ids");
                names.push(Some(id.into_owned()));
                room.insert(slot);
                slot
            }
        }
    }

    /// Makes room for `more` ids if the memory is there (a hint: without it the table
    /// grows as ids come).
    pub(crate) fn reserve(&mut self, more: usize) {
        let Self {
            by_id,
            names,
            hasher,
        } = self;
        let _ = by_id.try_reserve(more, |&slot| {
            hasher.hash_one(names[slot as usize].as_deref().unwrap_or_default())
        });
        let _ = names.try_reserve(more);
    }

    /// Slots handed out so far (erased ones included).
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    /// The id held by `slot` (None once erased).
    pub(crate) fn name(&self, slot: PointId) -> Option<&str> {
        self.names.get(slot as usize).and_then(|n| n.as_deref())
    }

    /// Approximate heap bytes: the hash table (slot and control byte per bucket), the slot
    /// table, and each id's text.
    pub(crate) fn memory_bytes(&self) -> usize {
        let text: usize = self.names.iter().flatten().map(String::capacity).sum();
        self.by_id.capacity() * (std::mem::size_of::<PointId>() + 1)
            + self.names.capacity() * std::mem::size_of::<Option<String>>()
            + text
    }

    /// Forgets `id`; returns its former slot.
    pub(crate) fn forget(&mut self, id: &str) -> Option<PointId> {
        let hash = self.hash(id);
        let names = &self.names;
        let found = self
            .by_id
            .find_entry(hash, |&slot| names[slot as usize].as_deref() == Some(id))
            .ok()?;
        let (slot, _) = found.remove();
        self.names[slot as usize] = None;
        Some(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_forgetting_frees_the_name() {
        let mut slots = IdSlots::default();
        let a = slots.intern("a");
        assert_eq!(slots.intern("a"), a);
        let b = slots.intern("b");
        assert_ne!(a, b);
        assert_eq!(
            slots.intern_owned("b".to_owned()),
            b,
            "owned or not, one slot"
        );
        let owned = slots.intern_owned("o".to_owned());
        assert_eq!(
            (slots.get("o"), slots.name(owned)),
            (Some(owned), Some("o"))
        );
        assert_eq!(slots.name(b), Some("b"));
        assert_eq!(slots.forget("a"), Some(a));
        assert_eq!(slots.get("a"), None);
        assert_eq!(slots.name(a), None);
        assert_ne!(slots.intern("a"), a, "a returning id gets a new slot");
        // Many ids: the table grows (rehashing reads each slot's name) and finds them all.
        let many: Vec<PointId> = (0..10_000)
            .map(|i| slots.intern(&format!("c{i}")))
            .collect();
        for (i, slot) in many.iter().enumerate() {
            assert_eq!(slots.get(&format!("c{i}")), Some(*slot));
            assert_eq!(slots.name(*slot), Some(format!("c{i}").as_str()));
        }
        assert_eq!(slots.forget("c5"), Some(many[5]));
        assert_eq!(slots.get("c5"), None);
        assert_eq!(slots.get("c6"), Some(many[6]));
    }
}
