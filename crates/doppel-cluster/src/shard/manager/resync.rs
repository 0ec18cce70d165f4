//! A follower the event log's retention passed: the node was paused (or cut off) past its
//! lease, dropped out of the live nodes whose positions bound the removal, and old events
//! it had not read yet left the log. Counting on from its position would leave them out
//! for good: item popularity and the purchases and impressions of its held shards would
//! miss them. So it starts over from the event checkpoints, which hold every removed
//! event:
//! * item counts are set to the items checkpoint's, and the follower counts no event up
//!   to that checkpoint's number again for them (its position may still be before it);
//! * every held shard is let go; the next membership round takes the ones this node
//!   should own over again, from their checkpoints plus the events after them, as any
//!   takeover does (another node held them meanwhile and wrote those checkpoints);
//! * the position moves to the removal's number (events up to it are in the checkpoints),
//!   and the lease is renewed at once, so the removal waits for this node again.
//!
//! The store sets the removal's number before it removes anything, so one comparison
//! after each read, with the position the read started from, catches a removal before the
//! read and one during it; membership rounds check too, before claiming shards back.

use doppel_node::{Error, Result};
use doppel_store::Store;
use doppel_types::CheckpointScope;

use super::Manager;
use crate::LEASE_TTL;

impl Manager {
    /// Starts over from the checkpoints (see the module) when the log was compacted past
    /// `position` (the follower's, or where its last scan started); true when it did.
    pub(super) async fn resync_if_compacted_past(&mut self, position: u64) -> Result<bool> {
        let compacted = self.store.events_compacted_through().await?;
        if compacted <= position {
            return Ok(false);
        }
        // Stale either way: let go before anything else can fail.
        let engine = self.node.engine();
        let held = engine.held_shards();
        for shard in &held {
            engine.release_shard(*shard)?;
            self.placement.fence(*shard, false);
        }
        self.handoffs.clear();
        self.second_pass.clear();
        let items = self
            .store
            .event_checkpoint(CheckpointScope::Items)
            .await?
            .filter(|c| c.through_seq >= compacted)
            .ok_or_else(|| {
                Error::Unavailable(format!(
                    "the event log was compacted through {compacted}, past this node's \
                     position {position}, and the items checkpoint does not hold what was \
                     removed"
                ))
            })?;
        engine.reset_item_counts(&items.items);
        self.items_through = self.items_through.max(items.through_seq);
        self.after = compacted;
        // Every number a gap awaits is up to the old position: settled by the removal, or
        // read again from the new position.
        self.gaps.missing.clear();
        if let Err(e) = self.store.renew_lease(&self.record(), &[], LEASE_TTL).await {
            tracing::warn!(error = %e, "lease not renewed after the resync; the next round renews it");
        }
        tracing::warn!(
            compacted,
            position,
            items_checkpoint = items.through_seq,
            released = ?held,
            "old events left the log before this node read them: item counts set to the \
             items checkpoint's, held shards let go to be taken over again from theirs"
        );
        Ok(true)
    }
}
