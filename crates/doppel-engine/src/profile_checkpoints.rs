//! The parts of [`Profiles`] the event log builds — item counts, and each customer's
//! purchases and impressions — read out for an event checkpoint and set back from one
//! (see [`doppel_types::event_checkpoint`]).

use std::collections::HashMap;

use doppel_index::PointId;
use doppel_types::shard::shard_of;
use doppel_types::{CustomerHistory, EventCheckpoint, ItemCounts};

use crate::profiles::Profiles;

/// Customer slots by logical shard, from one pass over the ids (so a checkpoint round
/// hashes each id once, not once per shard). Slots are never reused, so customers that
/// arrive later are those at or past `slots_seen`.
pub struct ShardRoster {
    shard_count: u32,
    by_shard: Vec<Vec<PointId>>,
    slots_seen: PointId,
}

/// A shard checkpoint being filled (see [`Profiles::add_histories`]), with its item
/// dictionary.
#[derive(Default)]
pub(crate) struct HistoryBuilder {
    item_index: HashMap<PointId, u32>,
    pub(crate) checkpoint: EventCheckpoint,
}

impl HistoryBuilder {
    /// The dictionary index of item `slot`, added when new.
    fn index_of(&mut self, profiles: &Profiles, item: PointId) -> u32 {
        let checkpoint = &mut self.checkpoint;
        *self.item_index.entry(item).or_insert_with(|| {
            let name = profiles.item_slots.name(item).unwrap_or_default();
            checkpoint.item_ids.push(name.to_owned());
            (checkpoint.item_ids.len() - 1) as u32
        })
    }
}

impl Profiles {
    /// The roster of every customer slot by logical shard (of `shard_count`).
    pub(crate) fn shard_roster(&self, shard_count: u32) -> ShardRoster {
        let mut by_shard = vec![Vec::new(); shard_count as usize];
        let slots_seen = self.customer_slots.len() as PointId;
        for slot in 0..slots_seen {
            if let Some(id) = self.customer_slots.name(slot) {
                by_shard[shard_of(id, shard_count) as usize].push(slot);
            }
        }
        ShardRoster {
            shard_count,
            by_shard,
            slots_seen,
        }
    }

    /// Every item's counts, in slot order (items only seen in events included).
    pub(crate) fn item_counts(&self) -> Vec<ItemCounts> {
        (0..self.item_slots.len() as PointId)
            .filter_map(|slot| {
                let record = self.item(slot)?;
                let id = self.item_slots.name(slot)?;
                (record.popularity != 0.0 || record.purchases != 0).then(|| ItemCounts {
                    item_id: id.to_owned(),
                    popularity: record.popularity,
                    purchases: record.purchases,
                })
            })
            .collect()
    }

    /// Sets every item's counts to the checkpoint's: those it does not list to none.
    pub(crate) fn reset_item_counts(&mut self, items: &[ItemCounts]) {
        self.clear_item_counts();
        self.restore_item_counts(items);
    }

    /// Sets the counts of the checkpoint's items (every other item starts at none).
    pub(crate) fn restore_item_counts(&mut self, items: &[ItemCounts]) {
        for counts in items {
            let record = self.item_record_mut(&counts.item_id);
            record.popularity = counts.popularity.max(0.0);
            record.purchases = counts.purchases;
        }
    }

    /// The slots of logical shard `shard`'s customers: the roster's, then those that
    /// arrived after it.
    pub(crate) fn shard_slots(&self, roster: &ShardRoster, shard: u32) -> Vec<PointId> {
        let late = (roster.slots_seen..self.customer_slots.len() as PointId).filter(|&slot| {
            self.customer_slots
                .name(slot)
                .is_some_and(|id| shard_of(id, roster.shard_count) == shard)
        });
        roster.by_shard[shard as usize]
            .iter()
            .copied()
            .chain(late)
            .collect()
    }

    /// Adds the purchases and impressions of the customers at `slots` (those with any) to
    /// `out`.
    pub(crate) fn add_histories(&self, slots: &[PointId], out: &mut HistoryBuilder) {
        for &slot in slots {
            let (Some(record), Some(id)) = (self.customer(slot), self.customer_slots.name(slot))
            else {
                continue;
            };
            let exposures = record.exposures.lock();
            if record.purchased.is_empty() && exposures.is_empty() {
                continue;
            }
            let history = CustomerHistory {
                customer_id: id.to_owned(),
                // Oldest last purchase first: restored in this order, the newest stay newest.
                purchased: record
                    .purchased
                    .iter()
                    .map(|&item| out.index_of(self, item))
                    .collect(),
                exposures: exposures
                    .all()
                    .iter()
                    .map(|&(item, t)| (out.index_of(self, item), t))
                    .collect(),
            };
            out.checkpoint.customers.push(history);
        }
    }

    /// Adds a shard checkpoint's purchases and impressions, but not those of customers
    /// `skip` names (erased since); a customer without a profile gets an empty one, as
    /// its events would have given it.
    pub(crate) fn restore_histories(
        &mut self,
        checkpoint: &EventCheckpoint,
        skip: &dyn Fn(&str) -> bool,
    ) {
        let items: Vec<PointId> = checkpoint
            .item_ids
            .iter()
            .map(|id| self.item_slots.intern(id))
            .collect();
        for history in &checkpoint.customers {
            if skip(&history.customer_id) {
                continue;
            }
            let record = self.customer_record_mut(&history.customer_id);
            for &i in &history.purchased {
                if let Some(&item) = items.get(i as usize) {
                    record.purchased.restore(item);
                }
            }
            let exposures = record.exposures.get_mut();
            for &(i, t) in &history.exposures {
                if let Some(&item) = items.get(i as usize) {
                    exposures.record(item, t);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use doppel_types::{Event, EventType};

    use super::*;

    fn event(customer: &str, item: &str, kind: EventType, t: i64) -> Event {
        Event {
            customer_id: customer.into(),
            item_id: item.into(),
            kind,
            quantity: 1,
            timestamp_ms: t,
            ..Event::default()
        }
    }

    /// What the events built, per customer: (purchased ids, newest last purchase first;
    /// exposures).
    fn state(p: &Profiles, id: &str) -> (Vec<String>, Vec<(String, i64)>) {
        let record = p.customer(p.customer_slots.get(id).unwrap()).unwrap();
        let name = |slot| p.item_slots.name(slot).unwrap().to_owned();
        let bought: Vec<String> = record.purchased.newest_first().map(name).collect();
        let shown = record
            .exposures
            .lock()
            .all()
            .iter()
            .map(|&(s, t)| (name(s), t))
            .collect();
        (bought, shown)
    }

    fn shard_histories(p: &Profiles, roster: &ShardRoster, shard: u32) -> EventCheckpoint {
        let mut out = HistoryBuilder::default();
        p.add_histories(&p.shard_slots(roster, shard), &mut out);
        out.checkpoint
    }

    #[test]
    fn checkpoints_give_back_what_the_events_built() {
        let now = doppel_types::clock::now_ms();
        let events: Vec<Event> = (0..200)
            .map(|i| {
                let kind = [EventType::Purchase, EventType::Impression, EventType::View][i % 3];
                event(
                    &format!("c{}", i % 23),
                    &format!("i{}", i % 7),
                    kind,
                    now - i as i64,
                )
            })
            .collect();
        let mut full = Profiles::default();
        for e in &events {
            full.record_event(e);
        }
        let shard_count = 4;
        let roster = full.shard_roster(shard_count);
        // A customer arriving after the roster is still in its shard's checkpoint.
        full.record_event(&event("late", "i1", EventType::Purchase, now));
        let mut restored = Profiles::default();
        restored.restore_item_counts(&full.item_counts());
        for shard in 0..shard_count {
            restored.restore_histories(&shard_histories(&full, &roster, shard), &|_| false);
        }
        for i in 0..7 {
            let slot = |p: &Profiles| p.item_slots.get(&format!("i{i}")).unwrap();
            let (a, b) = (
                full.item(slot(&full)).unwrap(),
                restored.item(slot(&restored)).unwrap(),
            );
            assert_eq!((a.popularity, a.purchases), (b.popularity, b.purchases));
        }
        for id in (0..23).map(|i| format!("c{i}")).chain(["late".to_owned()]) {
            assert_eq!(state(&full, &id), state(&restored, &id), "{id}");
        }
        // An erased customer is skipped.
        let mut without = Profiles::default();
        let shard = shard_of("c1", shard_count);
        without.restore_histories(&shard_histories(&full, &roster, shard), &|id| id == "c1");
        assert!(!without.knows_customer("c1"));
    }

    #[test]
    fn a_reset_gives_the_checkpoints_counts_whatever_was_counted_before() {
        let now = doppel_types::clock::now_ms();
        let mut checkpointed = Profiles::default();
        checkpointed.record_event(&event("c1", "i1", EventType::Purchase, now));
        checkpointed.record_event(&event("c2", "i2", EventType::View, now));
        // Counted here, but not in the checkpoint (i3), or differently (i1).
        let mut here = Profiles::default();
        here.record_event(&event("c1", "i1", EventType::Purchase, now));
        here.record_event(&event("c1", "i1", EventType::Purchase, now));
        here.record_event(&event("c3", "i3", EventType::Purchase, now));
        here.reset_item_counts(&checkpointed.item_counts());
        let mut counts = here.item_counts();
        counts.sort_by(|a, b| a.item_id.cmp(&b.item_id));
        assert_eq!(counts, checkpointed.item_counts());
    }
}
