//! A version's context lifts as offers use them: per resolved context, every item's lift
//! and the items in falling lift order, computed once and cached (requests repeat a few
//! contexts: channels × devices × countries × hours); and the map between the model's
//! item indexes and the engine's item slots, so serving never hashes an id.

use std::collections::HashMap;
use std::sync::Arc;

use doppel_index::PointId;
use doppel_types::context_model::ActiveContext;
use doppel_types::{Context, ContextLifts, ContextModel};
use parking_lot::RwLock;

use crate::id_slots::IdSlots;

/// No model item at this slot.
const NO_ITEM: u32 = u32::MAX;

/// Most contexts cached per version before the cache starts over.
const CACHED_CONTEXTS: usize = 4_096;
/// Most lift entries (items × contexts) cached per version: 8 bytes each (lift and
/// order), so 64 MiB; a large catalogue caches fewer contexts.
const CACHED_ENTRIES: usize = 8 << 20;

/// Every item's lift under one context.
pub(crate) struct LiftTable {
    /// By the model's item index.
    pub(crate) by_item: Vec<f32>,
    /// Model item indexes, highest lift first.
    pub(crate) order: Vec<u32>,
}

/// Model item index ↔ engine item slot.
pub(crate) struct SlotMap {
    /// `IdSlots::len` when built: new slots since mean a rebuild.
    built_for: usize,
    /// By model item index.
    pub(crate) slot_of: Vec<Option<PointId>>,
    /// By slot: the model item index, or `NO_ITEM`.
    index_of: Vec<u32>,
}

impl SlotMap {
    /// The model index of the item at `slot`.
    pub(crate) fn index(&self, slot: PointId) -> Option<u32> {
        self.index_of
            .get(slot as usize)
            .copied()
            .filter(|&i| i != NO_ITEM)
    }
}

/// The lifts of a version and its cache of [`LiftTable`]s.
pub(crate) struct ContextRanking {
    pub(crate) lifts: ContextLifts,
    tables: RwLock<HashMap<ActiveContext, Arc<LiftTable>>>,
    slots: RwLock<Option<Arc<SlotMap>>>,
}

impl ContextRanking {
    pub(crate) fn new(model: &ContextModel) -> Self {
        Self {
            lifts: ContextLifts::new(model),
            tables: RwLock::default(),
            slots: RwLock::default(),
        }
    }

    /// The slot map for the engine's `items` (rebuilt when items were added since).
    pub(crate) fn slots(&self, items: &IdSlots) -> Arc<SlotMap> {
        if let Some(map) = self
            .slots
            .read()
            .as_ref()
            .filter(|m| m.built_for == items.len())
        {
            return Arc::clone(map);
        }
        let slot_of: Vec<Option<PointId>> = (0..self.lifts.item_count() as u32)
            .map(|i| self.lifts.item_id(i).and_then(|id| items.get(id)))
            .collect();
        let mut index_of = vec![NO_ITEM; items.len()];
        for (i, slot) in slot_of.iter().enumerate() {
            if let Some(s) = slot {
                index_of[*s as usize] = i as u32;
            }
        }
        let map = Arc::new(SlotMap {
            built_for: items.len(),
            slot_of,
            index_of,
        });
        *self.slots.write() = Some(Arc::clone(&map));
        map
    }

    /// The resolved context and its table, or `None` when the model ignores context or
    /// knows none of the request's values.
    pub(crate) fn table(
        &self,
        context: &Context,
        timestamp_ms: i64,
    ) -> Option<(ActiveContext, Arc<LiftTable>)> {
        if !self.lifts.is_used() {
            return None;
        }
        let active = self.lifts.resolve(context, timestamp_ms);
        if active.is_empty() {
            return None;
        }
        if let Some(table) = self.tables.read().get(&active) {
            return Some((active, Arc::clone(table)));
        }
        let by_item: Vec<f32> = (0..self.lifts.item_count() as u32)
            .map(|i| self.lifts.lift(&active, i))
            .collect();
        let mut order: Vec<u32> = (0..by_item.len() as u32).collect();
        order.sort_by(|&a, &b| by_item[b as usize].total_cmp(&by_item[a as usize]));
        let table = Arc::new(LiftTable { by_item, order });
        let per_table = self.lifts.item_count().max(1);
        let most = (CACHED_ENTRIES / per_table).clamp(1, CACHED_CONTEXTS);
        let mut tables = self.tables.write();
        if tables.len() >= most {
            tables.clear();
        }
        tables.insert(active.clone(), Arc::clone(&table));
        Some((active, table))
    }
}
