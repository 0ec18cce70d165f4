//! The items a customer bought, in the order of their last purchase, so offers can read
//! the newest ones (the recency shift, [`doppel_types::offer_recency`]).

use doppel_index::PointId;

/// Distinct items bought, oldest last purchase first.
///
/// Purchases arrive in log order. One at least as new as the newest seen moves its item
/// to the end; an older one (a late import of history, an event replayed out of order)
/// is kept but does not count as recent: a new item goes to the front, a known one stays
/// where it is. A plain vector: offers read the whole set (to leave bought items out) and
/// the newest few, never test one item, and a customer holds tens to a few thousand.
#[derive(Debug, Default)]
pub(crate) struct PurchaseHistory {
    items: Vec<PointId>,
    /// Timestamp of the newest purchase seen, ms (`None` before any, and after a restore:
    /// checkpoints keep the order, not the times).
    newest_ms: Option<i64>,
}

impl PurchaseHistory {
    /// Notes a purchase of `item` at `timestamp_ms`.
    pub(crate) fn record(&mut self, item: PointId, timestamp_ms: i64) {
        let known = self.items.iter().position(|&i| i == item);
        if self.newest_ms.is_none_or(|newest| timestamp_ms >= newest) {
            self.newest_ms = Some(timestamp_ms);
            if let Some(at) = known {
                self.items.remove(at);
            }
            self.items.push(item);
        } else if known.is_none() {
            self.items.insert(0, item);
        }
    }

    /// Restores one item of a checkpoint, read oldest first (it becomes the newest).
    pub(crate) fn restore(&mut self, item: PointId) {
        if let Some(at) = self.items.iter().position(|&i| i == item) {
            self.items.remove(at);
        }
        self.items.push(item);
    }

    /// Every item, oldest last purchase first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &PointId> {
        self.items.iter()
    }

    /// The items, newest last purchase first.
    pub(crate) fn newest_first(&self) -> impl Iterator<Item = PointId> + '_ {
        self.items.iter().rev().copied()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.items.capacity() * std::mem::size_of::<PointId>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_purchase_comes_first_and_late_history_does_not_count_as_recent() {
        let mut h = PurchaseHistory::default();
        h.record(1, 100);
        h.record(2, 200);
        h.record(3, 300);
        h.record(1, 300);
        assert_eq!(h.newest_first().collect::<Vec<_>>(), [1, 3, 2]);
        h.record(4, 50);
        h.record(2, 60);
        assert_eq!(h.newest_first().collect::<Vec<_>>(), [1, 3, 2, 4]);
        let mut back = PurchaseHistory::default();
        for &i in h.iter() {
            back.restore(i);
        }
        assert_eq!(back.newest_first().collect::<Vec<_>>(), [1, 3, 2, 4]);
    }
}
