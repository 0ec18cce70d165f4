//! What the engine knows about customers and items apart from vectors: consent,
//! attributes, purchases, catalogue data and popularity. Fed by ingest and by the replay
//! of the store at start.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use doppel_index::{Bitset, PointId};
use doppel_types::{Consent, Customer, Event, EventType, Item};
use parking_lot::Mutex;

use crate::attribute_columns::{AttributeColumns, Column};
use crate::exposures::Exposures;
use crate::id_slots::IdSlots;
use crate::purchase_history::PurchaseHistory;

/// How much one event of each kind adds to an item's popularity (per unit of quantity).
fn popularity_weight(kind: EventType) -> f64 {
    match kind {
        EventType::Purchase => 1.0,
        EventType::AddToCart => 0.3,
        EventType::View => 0.05,
        EventType::Return => -1.0,
        EventType::Click => 0.05,
        EventType::Impression => 0.0,
    }
}

/// One customer's serving-relevant profile.
#[derive(Debug, Default)]
pub(crate) struct CustomerRecord {
    pub(crate) ads_consent: bool,
    pub(crate) onsite_consent: bool,
    pub(crate) attributes: BTreeMap<String, String>,
    /// Slots of items this customer bought (returns do not remove them: they were bought),
    /// in the order of their last purchase.
    pub(crate) purchased: PurchaseHistory,
    /// Offers shown (impressions), for frequency caps: at most
    /// [`MAX_EXPOSURES_PER_CUSTOMER`](doppel_types::contact_policy::MAX_EXPOSURES_PER_CUSTOMER),
    /// the most recent, in timestamp order. Behind its own lock, so impressions of served
    /// offers are recorded under the profiles' shared lock (see
    /// [`Profiles::record_impression_shared`]) and never stall other requests.
    pub(crate) exposures: Mutex<Exposures>,
}

impl CustomerRecord {
    /// True if the customer is in customer segment `(kind, name)` (its `segment.<kind>`
    /// attribute is `name`).
    pub(crate) fn in_customer_segment(&self, kind: &str, name: &str) -> bool {
        self.attributes
            .get(&doppel_types::segment::segment_key(kind))
            .is_some_and(|v| v == name)
    }

    /// True if every `(key, value)` of `filter` equals the customer's attribute.
    pub(crate) fn matches(&self, filter: &BTreeMap<String, String>) -> bool {
        filter
            .iter()
            .all(|(k, v)| self.attributes.get(k).is_some_and(|a| a == v))
    }
}

/// One item's catalogue data and popularity.
#[derive(Debug)]
pub(crate) struct ItemRecord {
    pub(crate) item: Item,
    /// Weighted event count (purchases 1, carts 0.3, views and clicks 0.05, returns −1;
    /// impressions 0), ≥ 0.
    pub(crate) popularity: f64,
    /// Units purchased.
    pub(crate) purchases: u64,
}

/// Customers and items, addressed by slot.
#[derive(Debug, Default)]
pub(crate) struct Profiles {
    pub(crate) customer_slots: IdSlots,
    customers: Vec<Option<CustomerRecord>>,
    pub(crate) item_slots: IdSlots,
    items: Vec<Option<ItemRecord>>,
    /// Slots of customers with ads consent (kept in step with the records).
    ads_consent: Bitset,
    /// Slots of catalogue items in stock (kept in step with the records).
    in_stock: Bitset,
    /// Slots of catalogue items by category (kept in step with the records), so a
    /// category cap at its cap removes its items in one pass over words.
    category_items: HashMap<String, Bitset>,
    /// Cached attribute columns for audits (kept in step with the records).
    columns: AttributeColumns,
}

fn slot_mut<T: Default>(rows: &mut Vec<Option<T>>, slot: PointId) -> &mut T {
    let i = slot as usize;
    if rows.len() <= i {
        rows.resize_with(i + 1, || None);
    }
    rows[i].get_or_insert_with(T::default)
}

impl Default for ItemRecord {
    fn default() -> Self {
        Self {
            item: Item::default(),
            popularity: 0.0,
            purchases: 0,
        }
    }
}

/// Approximate heap bytes of the profiles (allocator overhead and the attribute-column
/// cache, rebuilt on demand, are not counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProfileMemory {
    /// Customer records: consent, attributes, purchase sets, exposures, the consent bitset.
    pub customers: usize,
    /// Item records and the in-stock bitset.
    pub items: usize,
    /// Id ↔ slot tables of customers and items.
    pub id_tables: usize,
}

/// Heap bytes of a string map (each entry's text plus about 8 bytes of tree per entry).
fn map_bytes(map: &BTreeMap<String, String>) -> usize {
    map.iter()
        .map(|(k, v)| k.capacity() + v.capacity() + 2 * std::mem::size_of::<String>() + 8)
        .sum()
}

impl Profiles {
    /// What the profiles hold, by part (one pass over every record).
    pub(crate) fn memory(&self) -> ProfileMemory {
        let customers: usize = self
            .customers
            .iter()
            .flatten()
            .map(|c| {
                map_bytes(&c.attributes)
                    + c.purchased.heap_bytes()
                    + c.exposures.lock().memory_bytes()
            })
            .sum();
        let items: usize = self
            .items
            .iter()
            .flatten()
            .map(|i| {
                i.item.id.capacity() + i.item.category.capacity() + map_bytes(&i.item.attributes)
            })
            .sum();
        ProfileMemory {
            customers: customers
                + self.customers.capacity() * std::mem::size_of::<Option<CustomerRecord>>()
                + self.ads_consent.memory_bytes(),
            items: items
                + self.items.capacity() * std::mem::size_of::<Option<ItemRecord>>()
                + self
                    .category_items
                    .iter()
                    .map(|(c, s)| c.capacity() + s.memory_bytes())
                    .sum::<usize>()
                + self.in_stock.memory_bytes(),
            id_tables: self.customer_slots.memory_bytes() + self.item_slots.memory_bytes(),
        }
    }

    /// Makes room for `more` customers (a start-up that knows roughly how many it will
    /// read grows the id table once, not by doubling and rehashing every id).
    pub(crate) fn reserve_customers(&mut self, more: usize) {
        self.customer_slots.reserve(more);
        // A hint: refused memory only means the records grow as they come.
        let _ = self.customers.try_reserve(more);
    }

    /// Inserts or replaces a customer's profile (purchases are kept), moving it in.
    pub(crate) fn upsert_customer(&mut self, customer: Customer) {
        let slot = self.customer_slots.intern_owned(customer.id);
        self.set_profile(slot, customer.consent, customer.attributes);
    }

    /// [`Self::upsert_customer`] from a borrowed profile (the id is copied only if new).
    pub(crate) fn upsert_customer_ref(&mut self, customer: &Customer) {
        let slot = self.customer_slots.intern(&customer.id);
        self.set_profile(slot, customer.consent, customer.attributes.clone());
    }

    fn set_profile(
        &mut self,
        slot: PointId,
        consent: Consent,
        attributes: BTreeMap<String, String>,
    ) {
        self.columns.update(slot, Some(&attributes));
        let record = slot_mut(&mut self.customers, slot);
        record.ads_consent = consent.ads_personalization;
        record.onsite_consent = consent.onsite_personalization;
        record.attributes = attributes;
        if consent.ads_personalization {
            self.ads_consent.insert(slot);
        } else {
            self.ads_consent.remove(slot);
        }
    }

    /// Inserts or replaces an item (popularity is kept).
    pub(crate) fn upsert_item(&mut self, item: &Item) {
        let slot = self.item_slots.intern(&item.id);
        let record = slot_mut(&mut self.items, slot);
        let before = std::mem::replace(&mut record.item, item.clone());
        if before.category != item.category || before.id.is_empty() {
            if let Some(items) = self.category_items.get_mut(&before.category) {
                items.remove(slot);
                if items.is_empty() {
                    self.category_items.remove(&before.category);
                }
            }
            if !item.id.is_empty() {
                self.category_items
                    .entry(item.category.clone())
                    .or_default()
                    .insert(slot);
            }
        }
        if item.in_stock && !item.id.is_empty() {
            self.in_stock.insert(slot);
        } else {
            self.in_stock.remove(slot);
        }
    }

    /// Applies one event: purchases and popularity. Unknown ids get an empty profile
    /// (no consent), so an event never gets lost.
    pub(crate) fn record_event(&mut self, event: &Event) {
        self.record_purchase(event);
        self.record_popularity(event);
    }

    /// Applies an impression of a known item to a known customer with only the shared
    /// lock: the customer's exposure memory is all it changes (an impression weighs
    /// nothing in popularity). False, and nothing done, for anything else.
    pub(crate) fn record_impression_shared(&self, event: &Event) -> bool {
        if event.kind != EventType::Impression {
            return false;
        }
        let (Some(customer), Some(item)) = (
            self.customer_slots.get(&event.customer_id),
            self.item_slots.get(&event.item_id),
        ) else {
            return false;
        };
        let Some(row) = self.customer(customer) else {
            return false;
        };
        if self.item(item).is_none() {
            return false;
        }
        row.exposures.lock().record(item, event.timestamp_ms);
        true
    }

    /// Only the customer side of `record_event`: the purchased set.
    pub(crate) fn record_purchase(&mut self, event: &Event) {
        let customer = self.customer_slots.intern(&event.customer_id);
        let item = self.item_slots.intern(&event.item_id);
        let row = slot_mut(&mut self.customers, customer);
        match event.kind {
            EventType::Purchase if event.quantity >= 0 => {
                row.purchased.record(item, event.timestamp_ms);
            }
            EventType::Impression => row.exposures.get_mut().record(item, event.timestamp_ms),
            _ => {}
        }
    }

    /// The record of customer `id`, created (empty, no consent) if it has none.
    pub(crate) fn customer_record_mut(&mut self, id: &str) -> &mut CustomerRecord {
        let slot = self.customer_slots.intern(id);
        slot_mut(&mut self.customers, slot)
    }

    /// The record of item `id`, created (no catalogue entry) if it has none.
    pub(crate) fn item_record_mut(&mut self, id: &str) -> &mut ItemRecord {
        let slot = self.item_slots.intern(id);
        slot_mut(&mut self.items, slot)
    }

    /// Sets every item's popularity and purchase count to none (before the counts of a
    /// checkpoint are set).
    pub(crate) fn clear_item_counts(&mut self) {
        for record in self.items.iter_mut().flatten() {
            record.popularity = 0.0;
            record.purchases = 0;
        }
    }

    /// Only the item side of `record_event`: popularity and purchase counts.
    pub(crate) fn record_popularity(&mut self, event: &Event) {
        let item = self.item_slots.intern(&event.item_id);
        let units = f64::from(event.quantity.unsigned_abs().max(1));
        // An item only seen in events has an empty catalogue entry until it is upserted.
        let record = slot_mut(&mut self.items, item);
        // A purchase with a negative quantity is a cancellation (Online Retail's convention).
        let weight = if event.kind == EventType::Purchase && event.quantity < 0 {
            popularity_weight(EventType::Return)
        } else {
            popularity_weight(event.kind)
        };
        record.popularity = (record.popularity + weight * units).max(0.0);
        if event.kind == EventType::Purchase && event.quantity >= 0 {
            record.purchases += units as u64;
        }
    }

    /// Forgets a customer entirely; returns its former slot.
    pub(crate) fn erase_customer(&mut self, id: &str) -> Option<PointId> {
        let slot = self.customer_slots.forget(id)?;
        if let Some(row) = self.customers.get_mut(slot as usize) {
            *row = None;
        }
        self.columns.update(slot, None);
        self.ads_consent.remove(slot);
        Some(slot)
    }

    /// Slots of customers with ads consent.
    pub(crate) fn ads_consent(&self) -> &Bitset {
        &self.ads_consent
    }

    /// The column of attribute `key` by slot (built on first use); `None` when the
    /// attribute has too many values to cache.
    pub(crate) fn attribute_column(&self, key: &str) -> Option<Arc<Column>> {
        self.columns
            .get(key, self.customers().map(|(slot, c)| (slot, &c.attributes)))
    }

    /// The profile at `slot`.
    pub(crate) fn customer(&self, slot: PointId) -> Option<&CustomerRecord> {
        self.customers.get(slot as usize).and_then(Option::as_ref)
    }

    /// True if a customer profile exists for `id`.
    pub(crate) fn knows_customer(&self, id: &str) -> bool {
        self.customer_slots
            .get(id)
            .is_some_and(|s| self.customer(s).is_some())
    }

    /// Slots of the catalogue items in `category` (`None`: none).
    pub(crate) fn category_items(&self, category: &str) -> Option<&Bitset> {
        self.category_items.get(category)
    }

    /// The item at `slot`.
    pub(crate) fn item(&self, slot: PointId) -> Option<&ItemRecord> {
        self.items.get(slot as usize).and_then(Option::as_ref)
    }

    /// True if the catalogue holds `id` (not merely seen in an event).
    pub(crate) fn knows_item(&self, id: &str) -> bool {
        self.item_slots
            .get(id)
            .and_then(|s| self.item(s))
            .is_some_and(|r| !r.item.id.is_empty())
    }

    /// Every customer slot with a profile, with its record.
    pub(crate) fn customers(&self) -> impl Iterator<Item = (PointId, &CustomerRecord)> {
        self.customers
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().map(|r| (i as PointId, r)))
    }

    /// Items a recommendation may offer: in stock, in `categories` (if any), at most
    /// `max_price`, and not bought by `buyer` unless purchases are included.
    pub(crate) fn offerable_items(
        &self,
        categories: &[String],
        max_price: Option<f64>,
        bought: Option<&PurchaseHistory>,
        except: Option<PointId>,
    ) -> Bitset {
        let mut allowed = self.in_stock.clone();
        if let Some(slot) = except {
            allowed.remove(slot);
        }
        if let Some(bought) = bought {
            for slot in bought.iter() {
                allowed.remove(*slot);
            }
        }
        if !categories.is_empty() || max_price.is_some() {
            let candidates: Vec<PointId> = allowed.iter().collect();
            for slot in candidates {
                let keep = self.item(slot).is_some_and(|r| {
                    (categories.is_empty() || categories.contains(&r.item.category))
                        && max_price.is_none_or(|p| r.item.price <= p)
                });
                if !keep {
                    allowed.remove(slot);
                }
            }
        }
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, category: &str) -> Item {
        Item {
            id: id.into(),
            category: category.into(),
            in_stock: true,
            ..Item::default()
        }
    }

    fn members(profiles: &Profiles, category: &str) -> Vec<PointId> {
        profiles
            .category_items(category)
            .map(|s| s.iter().collect())
            .unwrap_or_default()
    }

    #[test]
    fn category_items_follow_the_catalogue() {
        let mut p = Profiles::default();
        // Seen in an event first: no catalogue entry, in no category.
        p.record_event(&Event {
            customer_id: "c".into(),
            item_id: "b".into(),
            ..Event::default()
        });
        assert!(members(&p, "").is_empty());
        p.upsert_item(&item("a", "mugs"));
        p.upsert_item(&item("b", "mugs"));
        let (a, b) = (
            p.item_slots.get("a").unwrap(),
            p.item_slots.get("b").unwrap(),
        );
        assert_eq!(members(&p, "mugs"), {
            let mut v = vec![a, b];
            v.sort_unstable();
            v
        });
        // Moved: leaves the old category, which disappears once empty.
        p.upsert_item(&item("a", "lamps"));
        p.upsert_item(&item("b", "lamps"));
        p.upsert_item(&item("b", "lamps"));
        assert!(p.category_items("mugs").is_none());
        assert_eq!(members(&p, "lamps").len(), 2);
    }
}
