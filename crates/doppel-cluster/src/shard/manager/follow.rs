//! The event-log follower's read: every event after the position, in sequence order,
//! applied fully for customers of held shards (then folded in) and to item popularity for
//! the others; skipped numbers re-read until they commit or
//! [`GAP_PATIENCE`](super::GAP_PATIENCE) runs out.

use std::collections::BTreeSet;
use std::time::Instant;

use doppel_node::Result;

use super::{Manager, PAGE};

impl Manager {
    pub(super) async fn poll_events(&mut self) -> Result<()> {
        let from = self.position();
        let now = Instant::now();
        let mut touched = BTreeSet::new();
        loop {
            let page = self.node.store().scan_events(self.after, PAGE).await?;
            for (seq, event) in &page {
                if *seq > self.after + 1 {
                    self.gaps.note(self.after + 1, seq - 1, now);
                }
                self.apply(*seq, event, &mut touched);
                self.after = *seq;
            }
            if page.len() < PAGE {
                break;
            }
        }
        if let (Some(&first), Some(&last)) = (
            self.gaps.missing.keys().next(),
            self.gaps.missing.keys().next_back(),
        ) {
            let late = self
                .node
                .store()
                .scan_events(first - 1, (last - first + 1) as usize)
                .await?;
            for (seq, event) in late {
                if self.gaps.missing.remove(&seq).is_some() {
                    self.apply(seq, &event, &mut touched);
                }
            }
        }
        // Old events left the log past where this scan started (before it, or while it
        // read; the store sets the removal's number before it removes): what it applied is
        // dropped with the counts and the shards, and the next poll reads from the
        // removal's number. One check a poll, after the read, catches both.
        if self.resync_if_compacted_past(from).await? {
            return Ok(());
        }
        self.gaps.expire(now);
        if !touched.is_empty() {
            self.node
                .fold_in_customers(touched.into_iter().collect())
                .await?;
        }
        self.placement.mark_applied(self.after);
        Ok(())
    }

    /// Applies event `seq`; a held customer's is folded in after the page (not for an
    /// impression: being shown an offer is not a taste signal to re-solve for).
    fn apply(&self, seq: u64, event: &doppel_types::Event, touched: &mut BTreeSet<String>) {
        let held = if seq <= self.items_through {
            self.node.apply_customer_event(event)
        } else {
            self.node.apply_event(event)
        };
        if held && event.kind != doppel_types::EventType::Impression {
            touched.insert(event.customer_id.clone());
        }
    }
}
