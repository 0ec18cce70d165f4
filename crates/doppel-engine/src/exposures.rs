//! One customer's exposure memory: the offers shown (impressions), by item slot and time,
//! bounded to the most recent [`MAX_EXPOSURES_PER_CUSTOMER`] and to the longest window a
//! cap may have. Rebuilt from the event log like purchases, so it survives a restart and
//! follows the customer's shard; erased with the customer.

use doppel_index::PointId;
use doppel_types::contact_policy::{MAX_CAP_WINDOW_SECONDS, MAX_EXPOSURES_PER_CUSTOMER};

/// Impressions as `(item slot, timestamp ms)`, in timestamp order.
#[derive(Debug, Default)]
pub(crate) struct Exposures {
    shown: Vec<(PointId, i64)>,
}

impl Exposures {
    /// Heap bytes held.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.shown.capacity() * std::mem::size_of::<(PointId, i64)>()
    }

    /// Remembers that `item` was shown at `timestamp_ms`.
    pub(crate) fn record(&mut self, item: PointId, timestamp_ms: i64) {
        let at = self.shown.partition_point(|(_, t)| *t <= timestamp_ms);
        self.shown.insert(at, (item, timestamp_ms));
        let horizon = doppel_types::clock::now_ms()
            .saturating_sub(i64::try_from(MAX_CAP_WINDOW_SECONDS * 1_000).unwrap_or(i64::MAX));
        let old = self.shown.partition_point(|(_, t)| *t <= horizon);
        let over = self.shown.len().saturating_sub(MAX_EXPOSURES_PER_CUSTOMER);
        let drop = old.max(over);
        if drop > 0 {
            self.shown.drain(..drop);
        }
    }

    /// Impressions with a timestamp after `since_ms`, oldest first.
    pub(crate) fn since(&self, since_ms: i64) -> &[(PointId, i64)] {
        let from = self.shown.partition_point(|(_, t)| *t <= since_ms);
        &self.shown[from..]
    }

    /// Every impression remembered, oldest first.
    pub(crate) fn all(&self) -> &[(PointId, i64)] {
        &self.shown
    }

    /// True when nothing was shown.
    pub(crate) fn is_empty(&self) -> bool {
        self.shown.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impressions_stay_ordered_and_bounded() {
        let now = doppel_types::clock::now_ms();
        let mut e = Exposures::default();
        e.record(1, now - 10);
        e.record(2, now - 30);
        e.record(3, now - 20);
        assert_eq!(e.since(now - 25), &[(3, now - 20), (1, now - 10)]);
        // Older than the longest window a cap may have: forgotten.
        e.record(4, now - (MAX_CAP_WINDOW_SECONDS as i64 + 1) * 1_000);
        assert_eq!(e.since(i64::MIN).len(), 3);
        for i in 0..MAX_EXPOSURES_PER_CUSTOMER as i64 {
            e.record(9, now - 5 + i % 3);
        }
        assert_eq!(e.since(i64::MIN).len(), MAX_EXPOSURES_PER_CUSTOMER);
        assert!(e.since(i64::MIN).iter().all(|(item, _)| *item == 9));
    }
}
