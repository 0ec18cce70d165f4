//! Events → dense ids and a sparse customer × item confidence matrix.
//!
//! Ids are strings at the edge and dense `u32` indices inside: customers and items are
//! numbered in lexicographic id order, so the same set of events always yields the same
//! numbering whatever order it arrives in. Only customers and items with at least one
//! positive cell get an index — someone who only returned things has nothing to learn
//! from, and a model never carries a vector that was not trained.

use std::collections::HashMap;

use doppel_types::Event;

use crate::confidence::ConfidenceConfig;
use crate::sparse_rows::SparseRows;

/// The training input: id tables and the confidence matrix, by customer and by item.
#[derive(Clone, Debug, Default)]
pub struct Interactions {
    customer_ids: Vec<String>,
    item_ids: Vec<String>,
    customer_index: HashMap<String, u32>,
    item_index: HashMap<String, u32>,
    by_customer: SparseRows,
    by_item: SparseRows,
}

impl Interactions {
    /// Aggregates `events` into confidences as of `now_ms` (see [`crate::confidence`]).
    /// `cfg` should have passed [`ConfidenceConfig::validate`]; events whose strength is
    /// not finite are skipped.
    pub fn from_events(events: &[Event], cfg: &ConfidenceConfig, now_ms: i64) -> Self {
        let (customer_names, customer_of) = sorted_ids(events.iter().map(|e| &*e.customer_id));
        let (item_names, item_of) = sorted_ids(events.iter().map(|e| &*e.item_id));
        let triplets = events
            .iter()
            .enumerate()
            .map(|(n, e)| (customer_of[n], item_of[n], cfg.event_strength(e, now_ms)))
            .collect();
        let mut cells = positive_cells(triplets);

        // Drop ids without a positive cell; the renumbering is monotone, so the cells
        // stay sorted by (customer, item).
        let customer_new = compact(customer_names.len(), cells.iter().map(|c| c.0));
        let item_new = compact(item_names.len(), cells.iter().map(|c| c.1));
        let customer_ids = kept_names(&customer_names, &customer_new);
        let item_ids = kept_names(&item_names, &item_new);
        for cell in &mut cells {
            cell.0 = customer_new[cell.0 as usize];
            cell.1 = item_new[cell.1 as usize];
        }
        let cells: Vec<(u32, u32, f32)> = cells
            .into_iter()
            .map(|(c, i, r)| (c, i, cfg.confidence(r)))
            .collect();
        let by_customer = SparseRows::from_sorted_cells(customer_ids.len(), item_ids.len(), &cells);
        let by_item = by_customer.transpose();
        Self {
            customer_index: index_of(&customer_ids),
            item_index: index_of(&item_ids),
            customer_ids,
            item_ids,
            by_customer,
            by_item,
        }
    }

    /// One customer's confidence row from `events`, against this item table: what
    /// `fold_in()` takes. Every event counts whatever its
    /// `customer_id` (pass one customer's events); items unknown here are skipped.
    pub fn confidence_row(
        &self,
        events: &[Event],
        cfg: &ConfidenceConfig,
        now_ms: i64,
    ) -> Vec<(u32, f32)> {
        let triplets = events
            .iter()
            .filter_map(|e| {
                let item = self.item_index(&e.item_id)?;
                Some((0, item, cfg.event_strength(e, now_ms)))
            })
            .collect();
        positive_cells(triplets)
            .into_iter()
            .map(|(_, item, r)| (item, cfg.confidence(r)))
            .collect()
    }

    /// Customer ids, in index order (sorted).
    pub fn customer_ids(&self) -> &[String] {
        &self.customer_ids
    }

    /// Item ids, in index order (sorted).
    pub fn item_ids(&self) -> &[String] {
        &self.item_ids
    }

    /// Dense index of a customer id, if it has positive interactions.
    pub fn customer_index(&self, id: &str) -> Option<u32> {
        self.customer_index.get(id).copied()
    }

    /// Dense index of an item id, if it has positive interactions.
    pub fn item_index(&self, id: &str) -> Option<u32> {
        self.item_index.get(id).copied()
    }

    /// Confidences by customer: row = customer index, column = item index.
    pub fn by_customer(&self) -> &SparseRows {
        &self.by_customer
    }

    /// Confidences by item: row = item index, column = customer index.
    pub fn by_item(&self) -> &SparseRows {
        &self.by_item
    }

    /// Number of (customer, item) cells with a positive confidence.
    pub fn nnz(&self) -> usize {
        self.by_customer.nnz()
    }
}

/// Distinct names sorted, and the sorted position of each input.
fn sorted_ids<'a>(names: impl Iterator<Item = &'a str>) -> (Vec<&'a str>, Vec<u32>) {
    let mut first_seen: HashMap<&str, u32> = HashMap::new();
    let mut distinct = Vec::new();
    let provisional: Vec<u32> = names
        .map(|name| {
            *first_seen.entry(name).or_insert_with(|| {
                distinct.push(name);
                (distinct.len() - 1) as u32
            })
        })
        .collect();
    let mut order: Vec<u32> = (0..distinct.len() as u32).collect();
    order.sort_unstable_by_key(|&p| distinct[p as usize]);
    let mut rank = vec![0u32; distinct.len()];
    for (position, &p) in order.iter().enumerate() {
        rank[p as usize] = position as u32;
    }
    let sorted = order.iter().map(|&p| distinct[p as usize]).collect();
    (
        sorted,
        provisional.into_iter().map(|p| rank[p as usize]).collect(),
    )
}

/// Sums strengths per (row, column) and keeps the cells whose sum is > 0. The sort is
/// stable, so a cell's events are summed in input order and the result is reproducible.
fn positive_cells(mut triplets: Vec<(u32, u32, f64)>) -> Vec<(u32, u32, f64)> {
    triplets.retain(|t| t.2.is_finite());
    triplets.sort_by_key(|t| (t.0, t.1));
    let mut cells: Vec<(u32, u32, f64)> = Vec::new();
    for (r, c, s) in triplets {
        match cells.last_mut() {
            Some(last) if (last.0, last.1) == (r, c) => last.2 += s,
            _ => cells.push((r, c, s)),
        }
    }
    cells.retain(|c| c.2 > 0.0);
    cells
}

/// New index of every old index that is `used` (`u32::MAX` for the others).
fn compact(len: usize, used: impl Iterator<Item = u32>) -> Vec<u32> {
    let mut new = vec![u32::MAX; len];
    for old in used {
        new[old as usize] = 0;
    }
    let mut next = 0u32;
    for slot in &mut new {
        if *slot == 0 {
            *slot = next;
            next += 1;
        }
    }
    new
}

fn kept_names(names: &[&str], new: &[u32]) -> Vec<String> {
    names
        .iter()
        .zip(new)
        .filter(|(_, n)| **n != u32::MAX)
        .map(|(name, _)| (*name).to_owned())
        .collect()
}

fn index_of(ids: &[String]) -> HashMap<String, u32> {
    ids.iter()
        .enumerate()
        .map(|(n, id)| (id.clone(), n as u32))
        .collect()
}

#[cfg(test)]
mod tests {
    use doppel_types::EventType;

    use super::*;

    fn event(customer: &str, item: &str, kind: EventType, quantity: i32) -> Event {
        Event {
            customer_id: customer.into(),
            item_id: item.into(),
            kind,
            quantity,
            ..Event::default()
        }
    }

    fn no_decay() -> ConfidenceConfig {
        ConfidenceConfig {
            half_life_days: 0.0,
            alpha: 2.0,
            ..ConfidenceConfig::default()
        }
    }

    #[test]
    fn ids_are_sorted_and_confidences_summed() {
        let events = [
            event("c2", "i9", EventType::Purchase, 1),
            event("c1", "i9", EventType::View, 1),
            event("c2", "i9", EventType::View, 1),
            event("c1", "i1", EventType::AddToCart, 1),
        ];
        let m = Interactions::from_events(&events, &no_decay(), 0);
        assert_eq!(m.customer_ids(), ["c1", "c2"]);
        assert_eq!(m.item_ids(), ["i1", "i9"]);
        assert_eq!(m.customer_index("c2"), Some(1));
        let (cols, vals) = m.by_customer().row(1);
        assert_eq!(cols, [1]);
        assert!((vals[0] - (1.0 + 2.0 * 1.1)).abs() < 1e-6);
        let (cols, _) = m.by_item().row(1);
        assert_eq!(cols, [0, 1]);
        assert_eq!(m.nnz(), 3);
    }

    #[test]
    fn returned_purchases_and_their_ids_disappear() {
        let events = [
            event("c1", "i1", EventType::Purchase, 2),
            event("c1", "i1", EventType::Return, 2),
            event("c2", "i2", EventType::Purchase, 1),
            event("c2", "i3", EventType::Purchase, 3),
            event("c2", "i3", EventType::Purchase, -3),
        ];
        let m = Interactions::from_events(&events, &no_decay(), 0);
        assert_eq!(m.customer_ids(), ["c2"]);
        assert_eq!(m.item_ids(), ["i2"]);
        assert_eq!(m.customer_index("c1"), None);
        assert_eq!(m.nnz(), 1);
    }

    #[test]
    fn confidence_row_uses_known_items_only() {
        let events = [
            event("c1", "i1", EventType::Purchase, 1),
            event("c1", "i2", EventType::Purchase, 1),
        ];
        let m = Interactions::from_events(&events, &no_decay(), 0);
        let new = [
            event("new", "i2", EventType::View, 1),
            event("new", "unknown", EventType::Purchase, 1),
            event("new", "i2", EventType::View, 1),
        ];
        let row = m.confidence_row(&new, &no_decay(), 0);
        assert_eq!(row.len(), 1);
        assert_eq!(row[0].0, 1);
        assert!((row[0].1 - 1.4).abs() < 1e-6);
    }
}
