//! String ids → dense slots (`u32`), shared by every model version so one bitset can say
//! "eligible" for all shards at once. Erasing an id frees its name (the slot stays, empty);
//! the same id coming back later gets a new slot.

use std::collections::HashMap;

use doppel_index::PointId;

/// Interned ids of one entity kind.
#[derive(Debug, Default)]
pub(crate) struct IdSlots {
    by_id: HashMap<String, PointId>,
    names: Vec<Option<String>>,
}

impl IdSlots {
    /// The slot of `id`, if it has one.
    pub(crate) fn get(&self, id: &str) -> Option<PointId> {
        self.by_id.get(id).copied()
    }

    /// The slot of `id`, created if needed.
    pub(crate) fn intern(&mut self, id: &str) -> PointId {
        if let Some(&slot) = self.by_id.get(id) {
            return slot;
        }
        let slot = PointId::try_from(self.names.len()).expect("fewer than 4 billion ids");
        self.names.push(Some(id.to_owned()));
        self.by_id.insert(id.to_owned(), slot);
        slot
    }

    /// Slots handed out so far (erased ones included).
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    /// The id held by `slot` (None once erased).
    pub(crate) fn name(&self, slot: PointId) -> Option<&str> {
        self.names.get(slot as usize).and_then(|n| n.as_deref())
    }

    /// Approximate heap bytes: the hash table (key, slot, control byte per bucket), the slot
    /// table, and each id's text twice (key and name).
    pub(crate) fn memory_bytes(&self) -> usize {
        let text: usize = self.names.iter().flatten().map(String::capacity).sum();
        self.by_id.capacity() * (std::mem::size_of::<(String, PointId)>() + 1)
            + self.names.capacity() * std::mem::size_of::<Option<String>>()
            + 2 * text
    }

    /// Forgets `id`; returns its former slot.
    pub(crate) fn forget(&mut self, id: &str) -> Option<PointId> {
        let slot = self.by_id.remove(id)?;
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
        assert_eq!(slots.name(b), Some("b"));
        assert_eq!(slots.forget("a"), Some(a));
        assert_eq!(slots.get("a"), None);
        assert_eq!(slots.name(a), None);
        assert_ne!(slots.intern("a"), a, "a returning id gets a new slot");
    }
}
