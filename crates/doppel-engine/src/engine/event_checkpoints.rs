//! Event checkpoints of the engine's state (see [`doppel_types::event_checkpoint`]): read
//! out by the node that writes them, set back at start-up and on a shard takeover before
//! the events after them are applied.

use std::collections::HashSet;

use doppel_types::{EventCheckpoint, ItemCounts};

use super::Engine;
use crate::profile_checkpoints::{HistoryBuilder, ShardRoster};

/// Customers copied under one read lock of the profiles.
const HISTORY_CHUNK: usize = 4_096;

impl Engine {
    /// Every customer slot by logical shard, for the shard checkpoints of one round.
    pub fn shard_roster(&self) -> ShardRoster {
        self.profiles.read().shard_roster(self.config.shard_count)
    }

    /// The purchases and impressions of logical shard `shard`'s customers, as a checkpoint
    /// body (the caller sets `through_seq`). Read in chunks, each under its own short read
    /// lock, so offers and writes of other shards are never held up for a whole shard; the
    /// caller keeps the shard's own events out meanwhile.
    pub fn shard_histories(&self, roster: &ShardRoster, shard: u32) -> EventCheckpoint {
        let slots = self.profiles.read().shard_slots(roster, shard);
        let mut out = HistoryBuilder::default();
        for chunk in slots.chunks(HISTORY_CHUNK) {
            self.profiles.read().add_histories(chunk, &mut out);
        }
        out.checkpoint
    }

    /// Every item's popularity and purchase count, for the items checkpoint.
    pub fn item_counts(&self) -> Vec<ItemCounts> {
        self.profiles.read().item_counts()
    }

    /// Sets item counts from the items checkpoint (at start-up, before any event).
    pub fn restore_item_counts(&self, items: &[ItemCounts]) {
        self.profiles.write().restore_item_counts(items);
    }

    /// Sets item counts back to the items checkpoint's, whatever events counted before (a
    /// shard node whose follower missed events the log no longer holds).
    pub fn reset_item_counts(&self, items: &[ItemCounts]) {
        self.profiles.write().reset_item_counts(items);
    }

    /// Adds a shard checkpoint's purchases and impressions, skipping erased customers:
    /// those in `ledger` (the store's erasure ledger) and those erased here.
    pub fn restore_shard_histories(&self, checkpoint: &EventCheckpoint, ledger: &HashSet<String>) {
        let erased = self.erased.read();
        self.profiles
            .write()
            .restore_histories(checkpoint, &|id| ledger.contains(id) || erased.contains(id));
    }
}
